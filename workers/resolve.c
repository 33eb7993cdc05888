/*
 * workers/resolve.c — the resolver thread (resolve.h).
 *
 * Off the data path: requests are rare next to messages, so a mutex and a
 * condition variable guard the queue; a worker holds the lock only to
 * append. One thread per server: a slow name delays the names behind it,
 * never a worker.
 */
#include "workers/resolve.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers/worker.h"

typedef struct rs_req {
    struct rs_req *next;
    wk_worker *w;
    uint64_t key;
    wk_resolved_fn fn;
    uint16_t port;
    int err;
    socklen_t len;
    struct sockaddr_storage ss;
    char host[256];
} rs_req;

struct wk_resolver {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t tid;
    rs_req *head, **tail;
    int stop;
};

/* On the worker: hand the answer over. */
static void answer(weft_server *s, int worker, void *arg)
{
    (void)s;
    (void)worker;
    rs_req *r = arg;
    r->fn(r->w, r->key, r->err ? NULL : (struct sockaddr *)&r->ss, r->len, r->err);
    free(r);
}

static void lookup(rs_req *r)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof(port), "%u", r->port);
    int rc = getaddrinfo(r->host, port, &hints, &res);
    if (rc != 0 || !res) {
        r->err = rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
        if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_FAIL || rc == EAI_AGAIN)
            r->err = -ENOENT;
    } else {
        /* The first address (no happy eyeballs: say so in weft.h). */
        memcpy(&r->ss, res->ai_addr, res->ai_addrlen);
        r->len = res->ai_addrlen;
        r->err = 0;
    }
    if (res)
        freeaddrinfo(res);
}

static void *rs_main(void *arg)
{
    struct wk_resolver *rs = arg;
    pthread_mutex_lock(&rs->mu);
    for (;;) {
        while (!rs->head && !rs->stop)
            pthread_cond_wait(&rs->cv, &rs->mu);
        if (rs->stop) { /* the workers are gone: nobody waits for an answer */
            while (rs->head) {
                rs_req *r = rs->head;
                rs->head = r->next;
                free(r);
            }
            break;
        }
        rs_req *r = rs->head;
        rs->head = r->next;
        if (!rs->head)
            rs->tail = &rs->head;
        pthread_mutex_unlock(&rs->mu);
        lookup(r);
        if (wk_post(r->w, answer, r) != 0)
            free(r); /* the worker has exited: nobody waits for it */
        pthread_mutex_lock(&rs->mu);
    }
    pthread_mutex_unlock(&rs->mu);
    return NULL;
}

/* The group's resolver, started on first use (workers race for it). */
static struct wk_resolver *resolver_of(wk_group *g)
{
    struct wk_resolver *rs = __atomic_load_n(&g->resolver, __ATOMIC_ACQUIRE);
    if (rs)
        return rs;
    pthread_mutex_lock(&g->resolver_mu);
    rs = g->resolver;
    if (!rs && (rs = calloc(1, sizeof(*rs))) != NULL) {
        pthread_mutex_init(&rs->mu, NULL);
        pthread_cond_init(&rs->cv, NULL);
        rs->tail = &rs->head;
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int rc = pthread_create(&rs->tid, NULL, rs_main, rs);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
            free(rs);
            rs = NULL;
        } else {
            __atomic_store_n(&g->resolver, rs, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&g->resolver_mu);
    return rs;
}

int wk_resolve(wk_worker *w, uint64_t key, const char *host, uint16_t port, wk_resolved_fn fn)
{
    struct wk_resolver *rs = resolver_of(w->g);
    if (!rs)
        return -EAGAIN;
    rs_req *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->w = w;
    r->key = key;
    r->fn = fn;
    r->port = port;
    snprintf(r->host, sizeof(r->host), "%s", host);
    pthread_mutex_lock(&rs->mu);
    *rs->tail = r;
    rs->tail = &r->next;
    pthread_cond_signal(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
    return 0;
}

void wk_resolver_stop(wk_group *g)
{
    struct wk_resolver *rs = g->resolver;
    if (!rs)
        return;
    pthread_mutex_lock(&rs->mu);
    rs->stop = 1;
    pthread_cond_signal(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
    pthread_join(rs->tid, NULL);
    pthread_cond_destroy(&rs->cv);
    pthread_mutex_destroy(&rs->mu);
    free(rs);
    g->resolver = NULL;
}
