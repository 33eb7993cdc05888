/*
 * examples/chat/chat.h — the weft-chat server: rooms, nicks and private
 * messages over weft's public API. chat.c explains the design.
 */
#ifndef WEFT_CHAT_CHAT_H
#define WEFT_CHAT_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/weft.h"

typedef struct chat_server chat_server;

/*
 * Input that may wait in the ring while a command is in flight, beyond one
 * max line. A policy: a client may pipeline this much behind /nick or /who;
 * at more, weft closes it (WEFT_CLOSE_INPUT_CAP). The server's input_cap
 * is max_line + CHAT_HELD_EXTRA.
 */
#define CHAT_HELD_EXTRA (64u * 1024)

/*
 * The chat's state, empty until attached: it must be the weft server's
 * user data (weft_server_userdata). NULL on ENOMEM.
 */
chat_server *chat_server_create(void);

/* The chat handler: the callbacks of a weft server whose user data is cs. */
const weft_handler *chat_handler(void);

/*
 * Prepare cs for the (not yet started) weft server s, for lines of at most
 * max_line bytes, '\n' included (a longer one gets an error and a close;
 * s's input_cap must be max_line + CHAT_HELD_EXTRA): per-worker state and
 * the chat's counters; with a database (chat_server_set_options), open it
 * and start its writer and the password pool. 0, -ENOMEM, or -EIO (the
 * database: a line on stderr says why).
 */
int chat_server_attach(chat_server *cs, weft_server *s, uint32_t max_line);

/*
 * A command of the embedding program's, "/NAME [ARGS]": fn runs on the
 * client's worker, inside the chat's reading of that client, with ARGS
 * (leading spaces and a trailing '\r' dropped; not NUL-terminated). It
 * answers with weft_send on c, lines in the chat's style ("* ..." or
 * "error: ...\n"); a send may close c (the chat copes). /help lists it
 * with `help`. Before the server starts; name is 1 to 32 of [a-z0-9_-],
 * no chat command, both strings kept, not copied. 0, -EINVAL or -ENOSPC
 * (CHAT_MAX_COMMANDS).
 */
#define CHAT_MAX_COMMANDS 8
typedef void (*chat_command_fn)(weft_conn *c, const char *args, size_t len, void *ud);
int chat_server_command(chat_server *cs, const char *name, const char *help, chat_command_fn fn,
                        void *ud);

/*
 * The rooms worker `worker` holds members of: fn(room, nick, arg) once per
 * member of each, the room's name without '#'. Run it on that worker's
 * thread (a weft_post function); fn must not call into the chat. Every
 * member of a room is on some worker: the union over the workers is the
 * whole room.
 */
typedef void (*chat_member_fn)(const char *room, const char *nick, void *arg);
void chat_server_rooms(chat_server *cs, int worker, chat_member_fn fn, void *arg);

/*
 * weft-chat's server settings, for any program that serves the chat:
 * chat_config_defaults sets the output cap (CHAT_OUTPUT_CAP: a member this
 * far behind is dropped), its watermarks, and the input cap for lines of
 * max_line bytes; chat_config_fit, once the options are parsed, brings the
 * watermarks under a small --output-cap.
 */
#define CHAT_MAX_LINE   4096
#define CHAT_OUTPUT_CAP (256u * 1024)
void chat_config_defaults(weft_config *cfg, uint32_t max_line);
void chat_config_fit(weft_config *cfg);

/*
 * Accounts and history (weft-chat's --db and the options below). Without
 * a database (db NULL: weft-multi) the chat has no accounts, no history
 * and every client is a guest who picks a nick.
 */
typedef struct chat_options {
    const char *db;             /* SQLite file (kept, not copied); NULL: no store */
    bool db_sync_full;          /* synchronous=FULL: commits survive power loss */
    uint32_t history;           /* lines replayed on /join (and /history's default) */
    bool allow_guests;          /* with a database: /nick without an account */
    int auth_threads;           /* the password pool */
    unsigned long long kdf_ops; /* Argon2id opslimit */
    size_t kdf_mem;             /* Argon2id memlimit, bytes */
    uint32_t fail_limit;        /* failed logins of an account before it locks */
    uint32_t lockout_s;         /* the failure window and the lock's length */
    uint32_t queue;             /* room messages waiting for the writer before refusal */
    const char *spool;          /* shared files' directory; NULL: DB.files (kept, not copied) */
    uint64_t file_max;          /* the largest file a /send may announce */
    uint64_t file_quota;        /* the bytes of one user's files kept at once */
    uint32_t file_ttl_s;        /* a file is deleted this long after its upload */
    uint32_t file_timeout_s;    /* an upload must be complete this long after it starts */
} chat_options;

#define CHAT_HISTORY_DEFAULT 50
/* The defaults: no database, 50 lines, 2 threads, libsodium's interactive
 * Argon2id cost (64 MiB), 5 failures in 60 s, a queue of 16384; files of
 * 16 MiB at most, 64 MiB per user, kept a day, uploaded within 60 s. */
void chat_options_defaults(chat_options *o);
/* Use o (copied) when attaching: before chat_server_attach. */
void chat_server_set_options(chat_server *cs, const chat_options *o);

/*
 * Stop the chat's threads (the password pool, the database writer, after
 * it committed what is queued) and close the database: once the weft
 * server has stopped and before it is freed (chat_main does it in the
 * program's teardown). Idempotent.
 */
void chat_server_detach(chat_server *cs);

/* Free the chat's state; the weft server must have stopped (or never run). */
void chat_server_free(chat_server *cs);

/*
 * The main of a program that serves the chat: weft_main(argc, argv, p)
 * with p->ud set to a new chat_server (so every hook of p gets it, and it
 * is the server's user data), freed after. Returns weft_main's exit
 * status, or 1 when out of memory.
 */
int chat_main(int argc, char **argv, weft_program *p);

#endif
