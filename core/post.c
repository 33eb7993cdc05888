/*
 * core/post.c — the public calls that reach a worker from any thread:
 * weft_post, weft_broadcast, weft_send_to, and the worker-side timer and
 * counter calls that name a worker by index. Each checks the index against
 * the server and hands the work to workers/ (worker.h, remote.h).
 */
#include <errno.h>
#include <pthread.h>

#include "core/server-t.h"
#include "core/tls_ctx.h"
#include "workers/conn.h"
#include "workers/remote.h"
#include "workers/user_timers.h"
#include "workers/wlog.h"
#include "workers/worker.h"

int weft_post(weft_server *s, int worker, weft_post_fn fn, void *arg)
{
    if (worker < 0 || worker >= s->nworkers || !fn)
        return -EINVAL;
    return wk_post(s->workers[worker], fn, arg);
}

int weft_broadcast(weft_server *s, weft_post_fn fn, void *arg)
{
    int posted = 0, err = 0;
    for (int i = 0; i < s->nworkers; i++) {
        int rc = weft_post(s, i, fn, arg);
        if (rc == 0)
            posted++;
        else if (!err)
            err = rc;
    }
    return posted ? posted : err;
}

int weft_send_to(weft_server *s, uint64_t id, const void *data, size_t len)
{
    int worker = wk_id_worker(id);
    if (worker < 0 || worker >= s->nworkers)
        return -EINVAL;
    return wk_send_to(s->workers[worker], id, data, len);
}

weft_timer *weft_worker_timer(weft_server *s, int worker, uint32_t after_ms, uint32_t every_ms,
                              weft_timer_fn fn, void *arg)
{
    if (!fn || worker < 0 || worker >= s->nworkers)
        return NULL;
    return ut_new(s->workers[worker], NULL, after_ms, every_ms, fn, arg);
}

void weft_worker_counter_add(weft_server *s, int worker, int id, uint64_t n)
{
    if (worker >= 0 && worker < s->nworkers && (unsigned)id < WEFT_MAX_COUNTERS)
        ST_ADD(&s->workers[worker]->st, user[id], n);
}

int weft_connect(weft_server *s, int worker, const char *addr, const weft_connect_opts *opts,
                 const weft_handler *h, void *ud, weft_conn **out)
{
    if (worker < 0 || worker >= s->nworkers || !addr || !out)
        return -EINVAL;
    wk_worker *w = s->workers[worker];
    /* Invariant 1: only the owner may create what it will own. */
    if (!w->started || !pthread_equal(pthread_self(), w->tid))
        return -EPERM;
    void *tls = NULL;
    if (opts && opts->tls) {
        const char *why = NULL;
        tls = tlscache_get(&s->tls_clients, opts->ca_file, opts->insecure, opts->alpn, &why);
        if (!tls) {
            wk_log(&s->grp, WEFT_LOG_ERROR, "weft_connect %s: TLS: %s", addr, why);
            return -EINVAL;
        }
    }
    return wk_connect(w, addr, opts, tls, h, ud, out);
}

int weft_server_worker_hooks(weft_server *s, weft_post_fn start, weft_post_fn stop, void *arg)
{
    if (s->started)
        return -EBUSY;
    s->grp.worker_start = start;
    s->grp.worker_stop = stop;
    s->grp.worker_arg = arg;
    return 0;
}
