/*
 * workers/worker.c — a worker thread's life: creation, placement, the run
 * of its loop (workers/loop.c), its exit, and the doors other threads use
 * (the inbox, the wake-up).
 *
 * Everything here runs on the server's thread (create, start, join,
 * destroy), except wk_main (the worker's own) and wk_adopt, wk_post,
 * wk_wake and wk_closed (any thread).
 */
#include "workers/worker.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workers/cpu.h"
#include "workers/io.h"
#include "workers/loop.h"
#include "workers/slab.h"
#include "workers/tls.h"
#include "workers/wlog.h"

/*
 * Where the worker runs (config.pin). The home CPU w->cpu came from the
 * CPU list; by node, the thread may run on any CPU of the list on that
 * CPU's node, so a busy core elsewhere cannot hold its connections back,
 * and its memory still comes from the node. Refusals (a cpuset without
 * the CPU) are reported, not fatal: the worker runs unbound.
 */
static void place(wk_worker *w)
{
    const weft_config *cfg = w->g->cfg;
    int home = w->cpu, rc = 0;
    w->cpu = -1;
    if (home < 0 || cfg->pin == WEFT_PIN_NONE) {
        w->node = -1;
        return;
    }
    if (cfg->pin == WEFT_PIN_CPU) {
        rc = cpu_pin_self(home);
        if (rc == 0)
            w->cpu = home;
    } else if (w->node >= 0) {
        rc = cpu_bind_node_self(w->node, w->g->cpus, w->g->ncpus);
    }
    if (rc != 0) {
        wk_log(w->g, WEFT_LOG_WARN, "worker %d: cannot run on %s %d (%s): running unbound",
               w->index, cfg->pin == WEFT_PIN_CPU ? "cpu" : "node",
               cfg->pin == WEFT_PIN_CPU ? home : w->node, weft_strerror(rc));
        w->node = -1;
        return;
    }
    cpu_prefer_node(w->node);
}

/*
 * The end of a worker: close the door to wk_post, wait out the calls
 * already past it (sequentially consistent on both sides, so a poster
 * either sees `exited` or is counted in `posting`), run what they queued,
 * then close everything.
 */
static void wk_exit(wk_worker *w)
{
    __atomic_store_n(&w->exited, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&w->posting, __ATOMIC_SEQ_CST))
        sched_yield();
    w->stopping = 1;
    wk_inbox_run(w);
    wk_loop_fini(w);
    if (w->g->worker_stop)
        w->g->worker_stop(w->g->srv, w->index, w->g->worker_arg);
}

static void *wk_main(void *arg)
{
    wk_worker *w = arg;
    place(w);
    /* The arena is created after pinning so its pages are node-local. */
    int rc = wk_loop_init(w);
    if (rc != 0) {
        w->err = rc;
        wk_log(w->g, WEFT_LOG_ERROR, "worker %d: arena: %s", w->index, weft_strerror(rc));
    }
    __atomic_store_n(&w->started, rc == 0 ? 1 : -1, __ATOMIC_RELEASE);
    if (rc != 0)
        return NULL;
    if (w->g->worker_start)
        w->g->worker_start(w->g->srv, w->index, w->g->worker_arg);
    while ((rc = wk_turn(w)) > 0)
        ;
    if (rc < 0) {
        w->err = rc;
        wk_log(w->g, WEFT_LOG_ERROR, "worker %d: %s wait: %s", w->index, w->io->name,
               weft_strerror(rc));
    }
    wk_exit(w);
    return NULL;
}

int wk_create(wk_group *g, int index, int cpu, wk_worker **out)
{
    size_t size = (sizeof(wk_worker) + ST_CACHELINE - 1) & ~(size_t)(ST_CACHELINE - 1);
    wk_worker *w = aligned_alloc(ST_CACHELINE, size);
    if (!w)
        return -ENOMEM;
    memset(w, 0, sizeof(*w));
    w->g = g;
    w->index = index;
    w->cpu = cpu;
    w->io = g->io;
    /*
     * Looked up here, on the creating thread: libnuma fills its CPU-to-node
     * cache lazily and without a lock, so workers must not race to do it.
     */
    w->node = cpu >= 0 ? cpu_node(cpu) : -1;
    inbox_init(&w->inbox);
    int rc = w->io->init(w);
    if (rc != 0) {
        inbox_destroy(&w->inbox);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int wk_start(wk_worker *w)
{
    /*
     * Block every signal in the worker (a per-thread mask, inherited at
     * creation): process signals go to the application's threads, whose
     * handlers may call weft_server_stop.
     */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->tid, NULL, wk_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

int wk_wait_started(wk_worker *w)
{
    while (!__atomic_load_n(&w->started, __ATOMIC_ACQUIRE))
        usleep(100);
    return w->err;
}

int wk_join(wk_worker *w)
{
    pthread_join(w->tid, NULL);
    return w->err;
}

/* A message left in the inbox of a worker that never ran. */
static void discard_msg(inbox_msg *m, void *ctx)
{
    wk_worker *w = ctx;
    if (m->kind == INBOX_CONN) {
        w->io->discard(w, m->fd);
        tls_ctx_unref(m->tls_ctx);
    }
    free(m);
}

void wk_destroy(wk_worker *w)
{
    if (!w)
        return;
    inbox_drain(&w->inbox, discard_msg, w);
    wk_slab_destroy(w);
    if (w->started > 0)
        wk_loop_free(w);
    w->io->destroy(w);
    inbox_destroy(&w->inbox);
    free(w);
}

/* ---- the doors ------------------------------------------------------------------ */

/* Enqueue m on w's inbox; wake w when the inbox was empty (inbox.h). */
static void deliver(wk_worker *w, inbox_msg *m)
{
    if (inbox_push(&w->inbox, m))
        w->io->wake(w);
}

int wk_adopt(wk_worker *w, int fd, const struct sockaddr *peer, socklen_t len, const wk_origin *o,
             void *tls_ctx)
{
    inbox_msg *m = malloc(sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->kind = INBOX_CONN;
    m->fd = fd;
    m->origin = o;
    m->tls_ctx = tls_ctx;
    memset(&m->addr, 0, sizeof(m->addr));
    memcpy(&m->addr, peer, len < sizeof(m->addr) ? len : sizeof(m->addr));
    deliver(w, m);
    return 0;
}

int wk_post(wk_worker *w, weft_post_fn fn, void *arg)
{
    inbox_msg *m = malloc(sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->kind = INBOX_CALL;
    m->fd = -1;
    m->tls_ctx = NULL;
    m->fn = fn;
    m->arg = arg;
    /* Pairs with wk_exit: counted, or we see `exited`. */
    __atomic_add_fetch(&w->posting, 1, __ATOMIC_SEQ_CST);
    int rc = 0;
    if (__atomic_load_n(&w->exited, __ATOMIC_SEQ_CST)) {
        free(m);
        rc = -ESHUTDOWN;
    } else {
        deliver(w, m);
    }
    __atomic_sub_fetch(&w->posting, 1, __ATOMIC_SEQ_CST);
    return rc;
}

void wk_wake(wk_worker *w) { w->io->wake(w); }

uint64_t wk_closed(const wk_worker *w)
{
    /*
     * Closes of outbound connections are not the acceptor's business: take
     * them out, mod 2^64 (read closed first, as snap_sum_worker does, so
     * accepted - this never counts a connection as open twice).
     */
    uint64_t closed = __atomic_load_n(&w->st.closed, __ATOMIC_ACQUIRE);
    return closed - ST_GET(&w->st, outbound);
}
