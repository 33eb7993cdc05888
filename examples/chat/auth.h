/*
 * examples/chat/auth.h — weft-chat's password work, off the worker
 * threads: a small pool of threads that run the memory-hard KDF (libsodium's
 * crypto_pwhash_str, Argon2id) and the per-account and per-address limits
 * on failed logins.
 *
 * A worker pushes an auth_job (jobq: no lock, no wait; a full queue is
 * refused at once) and goes on serving its loop; a pool thread does the
 * work and hands the job to auth_done (chat.c), which posts the answer back
 * to the client's worker.
 */
#ifndef WEFT_CHAT_AUTH_H
#define WEFT_CHAT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "store.h"

typedef struct chat_auth chat_auth;

typedef enum auth_result {
    AUTH_OK,        /* logged in, or the hash of a new password is in `hash` */
    AUTH_BAD,       /* wrong name or password (counted against both limits) */
    AUTH_THROTTLED, /* too many failures: refused without trying; retry_s says when */
    AUTH_EXISTS,    /* register: the name is taken */
    AUTH_ERROR,     /* out of memory, a database error */
} auth_result;

typedef struct auth_job {
    bool reg; /* /register rather than /login */
    auth_result result;
    uint32_t retry_s;   /* THROTTLED: seconds until the lock ends */
    uint64_t tag, tag2; /* the producer's (who asked) */
    char source[48];    /* the peer's address, for its limit */
    char name[CHAT_NAME_MAX + 1];
    char pass[CHAT_PASS_MAX + 1]; /* wiped once used */
    char hash[128];               /* register: crypto_pwhash_str's output */
} auth_job;

typedef void (*auth_done_fn)(auth_job *job, void *ud);

typedef struct auth_opts {
    int threads;            /* pool threads */
    uint32_t queue;         /* jobs waiting before new ones are refused */
    unsigned long long ops; /* crypto_pwhash opslimit */
    size_t mem;             /* crypto_pwhash memlimit, bytes */
    uint32_t fail_limit;    /* failures per account in a window before it locks */
    uint32_t lockout_s;     /* the window, and how long a lock lasts */
    auth_done_fn done;
    void *ud;
} auth_opts;

/* Start the pool on st's database. 0 or a negative errno (-ENOMEM, -EIO...). */
int auth_open(chat_auth **out, chat_store *st, const auth_opts *o);

/* Queue a job from any thread without blocking: 0 or -EAGAIN (full). */
int auth_push(chat_auth *a, auth_job *job);

/* Stop the pool (jobs queued are finished first). NULL is fine. */
void auth_close(chat_auth *a);

#endif
