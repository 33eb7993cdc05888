/*
 * examples/chat/auth.c — the password pool and the login limits (see auth.h).
 *
 * Why a pool: Argon2id at libsodium's "interactive" cost takes tens of
 * milliseconds and 64 MiB per hash, by design. On a worker it would stall
 * every connection of that worker for as long; on a few helper threads it
 * costs those threads only, and the pool's size bounds the memory (threads
 * x memlimit) and the CPU a login storm can take.
 *
 * Limits. A table of LIMIT_SLOTS hashed entries, one per account name (in
 * lower case) and one per source address: an account with fail_limit
 * failures inside lockout_s is locked for lockout_s; an address with
 * 4 x fail_limit failures (any accounts) likewise. A locked login is
 * refused before the KDF runs, so guessing costs the server a table
 * lookup. The table is fixed in size whatever an attacker sends: two keys
 * that hash alike share one budget (a stale entry is taken over). Only the
 * pool threads touch it, under one mutex.
 */
#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq.h"

#define LIMIT_SLOTS   4096
#define SOURCE_FACTOR 4 /* an address may fail this many times an account's limit */
#define MAX_THREADS   64

typedef struct limit_ent {
    uint64_t key;
    uint32_t fails;
    int64_t since, locked_until; /* seconds, CLOCK_MONOTONIC */
} limit_ent;

struct chat_auth {
    auth_opts o;
    chat_store *st;
    jobq q;
    int nthreads;
    pthread_t th[MAX_THREADS];
    auth_job stop; /* one per thread is pushed to stop them */
    pthread_mutex_t lock;
    limit_ent limit[LIMIT_SLOTS];
    char dummy[crypto_pwhash_STRBYTES]; /* verified against for unknown names */
};

static int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static uint64_t key_of(char kind, const char *s)
{
    uint64_t h = 1469598103934665603ull ^ (unsigned char)kind;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 1099511628211ull;
    }
    return h | 1; /* never 0: 0 marks a free entry */
}

static limit_ent *slot_for(chat_auth *a, uint64_t key, int64_t now)
{
    limit_ent *e = &a->limit[key % LIMIT_SLOTS];
    if (e->key != key &&
        (e->key == 0 || (now - e->since >= a->o.lockout_s && now >= e->locked_until))) {
        *e = (limit_ent){.key = key, .since = now};
    }
    return e;
}

/* Seconds the account or the address stays locked; 0 when neither is. */
static uint32_t locked_for(chat_auth *a, const auth_job *j, int64_t now)
{
    limit_ent *acct = slot_for(a, key_of('a', j->name), now);
    limit_ent *src = slot_for(a, key_of('s', j->source), now);
    int64_t until = acct->locked_until > src->locked_until ? acct->locked_until : src->locked_until;
    return until > now ? (uint32_t)(until - now) : 0;
}

static void count_failure(chat_auth *a, limit_ent *e, uint32_t limit, int64_t now)
{
    if (now - e->since >= a->o.lockout_s) {
        e->since = now;
        e->fails = 0;
    }
    if (++e->fails >= limit) {
        e->locked_until = now + a->o.lockout_s;
        e->fails = 0;
        e->since = now;
    }
}

static void failed(chat_auth *a, const auth_job *j)
{
    int64_t now = now_s();
    pthread_mutex_lock(&a->lock);
    count_failure(a, slot_for(a, key_of('a', j->name), now), a->o.fail_limit, now);
    count_failure(a, slot_for(a, key_of('s', j->source), now), a->o.fail_limit * SOURCE_FACTOR,
                  now);
    pthread_mutex_unlock(&a->lock);
}

static void succeeded(chat_auth *a, const auth_job *j)
{
    int64_t now = now_s();
    pthread_mutex_lock(&a->lock);
    limit_ent *e = slot_for(a, key_of('a', j->name), now);
    e->fails = 0;
    pthread_mutex_unlock(&a->lock);
}

static void do_login(chat_auth *a, store_reader *r, auth_job *j)
{
    pthread_mutex_lock(&a->lock);
    j->retry_s = locked_for(a, j, now_s());
    pthread_mutex_unlock(&a->lock);
    if (j->retry_s) {
        j->result = AUTH_THROTTLED;
        return;
    }
    char hash[crypto_pwhash_STRBYTES];
    int found = store_reader_hash(r, j->name, hash, sizeof(hash));
    if (found < 0) {
        j->result = AUTH_ERROR;
        return;
    }
    /* An unknown name costs what a wrong password costs: no name probing by time. */
    bool ok = crypto_pwhash_str_verify(found ? hash : a->dummy, j->pass, strlen(j->pass)) == 0;
    j->result = ok && found ? AUTH_OK : AUTH_BAD;
    if (j->result == AUTH_OK)
        succeeded(a, j);
    else
        failed(a, j);
}

static void do_register(chat_auth *a, store_reader *r, auth_job *j)
{
    char hash[crypto_pwhash_STRBYTES];
    int found = store_reader_hash(r, j->name, hash, sizeof(hash));
    if (found != 0) {
        /* Taken (the writer's insert checks again: two may race). */
        j->result = found > 0 ? AUTH_EXISTS : AUTH_ERROR;
        return;
    }
    j->result = crypto_pwhash_str(j->hash, j->pass, strlen(j->pass), a->o.ops, a->o.mem) == 0
                    ? AUTH_OK
                    : AUTH_ERROR;
}

static void *pool_main(void *arg)
{
    chat_auth *a = arg;
    store_reader *r = NULL;
    int rc = store_reader_open(a->st, &r);
    for (;;) {
        auth_job *j = jobq_pop(&a->q);
        if (j == &a->stop)
            break;
        if (rc != 0)
            j->result = AUTH_ERROR;
        else if (j->reg)
            do_register(a, r, j);
        else
            do_login(a, r, j);
        sodium_memzero(j->pass, sizeof(j->pass));
        a->o.done(j, a->o.ud);
    }
    store_reader_close(r);
    return NULL;
}

int auth_open(chat_auth **out, chat_store *st, const auth_opts *o)
{
    if (sodium_init() < 0)
        return -EIO;
    chat_auth *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->o = *o;
    a->st = st;
    if (a->o.threads < 1)
        a->o.threads = 1;
    if (a->o.threads > MAX_THREADS)
        a->o.threads = MAX_THREADS;
    if (crypto_pwhash_str(a->dummy, "weft-chat", 9, a->o.ops, a->o.mem) != 0 ||
        jobq_init(&a->q, (size_t)a->o.queue + MAX_THREADS) != 0) {
        free(a);
        return -ENOMEM;
    }
    pthread_mutex_init(&a->lock, NULL);
    for (; a->nthreads < a->o.threads; a->nthreads++)
        if (pthread_create(&a->th[a->nthreads], NULL, pool_main, a) != 0) {
            auth_close(a);
            return -EAGAIN;
        }
    *out = a;
    return 0;
}

int auth_push(chat_auth *a, auth_job *job)
{
    /* The queue holds queue + MAX_THREADS: the rest is for the stops. */
    if (jobq_len(&a->q) >= a->o.queue)
        return -EAGAIN;
    return jobq_push(&a->q, job);
}

void auth_close(chat_auth *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->nthreads; i++)
        while (jobq_push(&a->q, &a->stop) != 0)
            sched_yield();
    for (int i = 0; i < a->nthreads; i++)
        pthread_join(a->th[i], NULL);
    jobq_destroy(&a->q);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
