/*
 * examples/chat/store.h — weft-chat's database: accounts, room history and
 * offline private messages in SQLite, written by one writer thread.
 *
 * Every room line (message or notice) of a chat with a store goes through
 * the writer's queue: the writer commits a batch of them in one
 * transaction, then hands each to store_done (chat.c), which delivers it
 * to every worker. So the writer is the one sequencer of the rooms: what a
 * sender sees echoed is committed, and a history read done by the writer
 * sits at an exact place in that sequence (chat.c uses that to replay a
 * room's history on join without a gap or a duplicate).
 */
#ifndef WEFT_CHAT_STORE_H
#define WEFT_CHAT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef struct chat_store chat_store;

typedef enum store_kind {
    STORE_MSG,         /* a room message: stored, then delivered */
    STORE_PASS,        /* a room notice: not stored, delivered in sequence */
    STORE_HISTORY,     /* read the last `count` messages of `room` into `out` */
    STORE_REGISTER,    /* insert account user with hash `text`: result 0 or -EEXIST */
    STORE_OFFLINE,     /* store a private message `text` from `user` to `to` */
    STORE_INBOX,       /* take (read and delete) the offline messages of `user` into `out` */
    STORE_FENCE,       /* nothing: answered in sequence, after every item queued before it */
    STORE_FILE_NEW,    /* reserve file fid (size, name in text) for user to `to`: 0 or
                          -EDQUOT when user's files would pass `quota` bytes */
    STORE_FILE_DONE,   /* file fid is complete: it may be fetched */
    STORE_FILE_DROP,   /* forget file fid (an upload that failed) */
    STORE_FILE_GET,    /* file fid's owner (user), target (to), size, name (out): 0 or -ENOENT */
    STORE_FILE_EXPIRE, /* forget the files older than ts (ms); their IDs into out, a line each */
} store_kind;

/*
 * One request to the writer, malloc'd by its producer and owned by the
 * store until store_done hands it back. Strings are NUL-terminated.
 */
typedef struct store_item {
    store_kind kind;
    int result;     /* 0, -EEXIST (REGISTER), or a negative errno on a database error */
    int64_t id, ts; /* MSG: the row id and time (ms since the epoch), set by the writer */
    unsigned count; /* HISTORY: lines wanted; INBOX, HISTORY: lines found */
    uint64_t tag;   /* the producer's own (who asked) */
    uint64_t tag2;  /* the producer's own */
    int flags;      /* the producer's own */
    uint64_t t0;    /* the producer's own (when it was made) */
    char room[CHAT_NAME_MAX + 1];
    char user[CHAT_NAME_MAX + 1];
    char to[CHAT_NAME_MAX + 2]; /* a nick, or (files) "#room" */
    char fid[CHAT_FILE_ID_LEN + 1];
    uint64_t size, quota; /* FILE_NEW, FILE_GET */
    char *out; /* HISTORY, INBOX: "TS\tUSER\tTEXT\n" per line, malloc'd; NULL when none */
    size_t out_len;
    size_t len;  /* of text */
    size_t jlen; /* PASS: its JSON form, after the text: text[len..len+jlen) */
    char text[]; /* MSG, PASS, OFFLINE: the text; REGISTER: the password hash */
} store_item;

/* An item with room for a text of len bytes (plus a NUL), zeroed; NULL on ENOMEM. */
store_item *store_item_new(store_kind kind, size_t len);
/* Free an item and its out. */
void store_item_free(store_item *it);

/*
 * Called on the writer thread for each item once its batch committed (or
 * failed: it->result < 0), in queue order; it owns the item from then on.
 */
typedef void (*store_done_fn)(store_item *it, void *ud);

typedef struct store_opts {
    const char *path; /* the database file (created when missing) */
    bool sync_full;   /* synchronous=FULL (survives power loss) rather than NORMAL */
    uint32_t queue;   /* room messages waiting for the writer before new ones are refused */
    store_done_fn done;
    void *ud;
} store_opts;

/*
 * Open (or create) the database, check its schema, and start the writer
 * thread. 0, or a negative errno with *why set to a sentence (static or in
 * why_buf, of why_len bytes).
 */
int store_open(chat_store **out, const store_opts *o, char *why_buf, size_t why_len);

/*
 * Queue an item for the writer, from any thread, without blocking. STORE_MSG
 * is refused (-EAGAIN) once `queue` messages wait; the other kinds use the
 * rest of the queue's room (they are bounded by the connections: a join, a
 * leave, a login each). 0 or -EAGAIN; on -EAGAIN the caller keeps it.
 */
int store_push(chat_store *st, store_item *it);

/* Messages (all kinds) waiting for the writer now. */
size_t store_backlog(chat_store *st);

/*
 * The account names, for the nick directory: fn(name, arg) for each. On
 * the thread that opened the store, before anything is pushed. 0 or -EIO.
 */
int store_accounts(chat_store *st, void (*fn)(const char *name, void *arg), void *arg);

/*
 * A read-only connection for another thread (the password pool): the
 * password hash of account `name` into hash (of hash_len bytes). 1 found,
 * 0 no such account, -EIO.
 */
typedef struct store_reader store_reader;
int store_reader_open(chat_store *st, store_reader **out);
int store_reader_hash(store_reader *r, const char *name, char *hash, size_t hash_len);
void store_reader_close(store_reader *r);

/* Commit what is queued, stop the writer, close the database. NULL is fine. */
void store_close(chat_store *st);

#endif
