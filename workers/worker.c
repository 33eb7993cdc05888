/*
 * workers/worker.c — a worker thread: placement, the slab of connections
 * and the event loop.
 *
 * One turn of the loop reads like the design:
 *
 *   wait        epoll_wait (timeout 0 while the ready list holds work)
 *   dispatch    note each event in its connection's flags; queue it
 *   inbox       adopt new connections, run posted calls
 *   ready       read each ready connection within its budget (on_data)
 *   flush       one write per connection with output (invariant 5)
 *   reap        free the slots of connections closed this turn
 *
 * Everything here runs on the worker's own thread except wk_create,
 * wk_start and wk_join (the server's thread).
 */
#include "workers/worker.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core/conn.h"
#include "core/log.h"
#include "core/timeouts.h"
#include "workers/cpu.h"

/* Events taken per epoll_wait: enough to amortise the call at 10K conns. */
#define WK_EVENTS 512
/*
 * Connections that used a whole read budget (deferred: bulk senders) run
 * after the fresh input of each turn, at most this many per turn.
 */
#define WK_BULK_PER_TURN 16
/* epoll key of the inbox eventfd; connection keys are (gen << 32) | slot. */
#define WK_INBOX_KEY UINT64_MAX
/* While draining at shutdown, wake at least this often (ms). */
#define WK_DRAIN_TICK_MS 50

/* ---- the slab -------------------------------------------------------------- */

static int slab_grow(wk_worker *w)
{
    if (w->nchunks == w->chunks_cap) {
        uint32_t ncap = w->chunks_cap ? w->chunks_cap * 2 : 16;
        weft_conn **nc = realloc(w->chunks, ncap * sizeof(*nc));
        if (!nc)
            return -ENOMEM;
        w->chunks = nc;
        w->chunks_cap = ncap;
    }
    weft_conn *chunk = arena_calloc(&w->arena, WK_SLAB_CHUNK * sizeof(weft_conn));
    if (!chunk)
        return -ENOMEM;
    uint32_t base = w->nchunks * WK_SLAB_CHUNK;
    w->chunks[w->nchunks++] = chunk;
    /* Push in reverse so slots are handed out in ascending order. */
    for (int i = WK_SLAB_CHUNK - 1; i >= 0; i--) {
        chunk[i].slot = base + (uint32_t)i;
        chunk[i].fd = -1;
        chunk[i].next_ready = w->free_conns;
        w->free_conns = &chunk[i];
    }
    return 0;
}

weft_conn *wk_slot_get(wk_worker *w)
{
    if (!w->free_conns && slab_grow(w) != 0)
        return NULL;
    weft_conn *c = w->free_conns;
    w->free_conns = c->next_ready;
    return c;
}

weft_conn *wk_conn_at(wk_worker *w, uint32_t slot)
{
    uint32_t k = slot / WK_SLAB_CHUNK;
    if (k >= w->nchunks)
        return NULL;
    return &w->chunks[k][slot % WK_SLAB_CHUNK];
}

/*
 * Free the slots of closed connections that no list still references. The
 * generation bump makes every event still queued for the old connection
 * stale (see conn_open).
 */
static void reap_closed(wk_worker *w)
{
    weft_conn **pp = &w->closed;
    while (*pp) {
        weft_conn *c = *pp;
        if (c->flags & (C_READY | C_FLUSH)) {
            pp = &c->next_closed;
            continue;
        }
        *pp = c->next_closed;
        c->gen++;
        c->flags = 0;
        c->ud = NULL;
        c->next_ready = w->free_conns;
        w->free_conns = c;
    }
}

/* ---- one turn ---------------------------------------------------------------- */

static void dispatch(wk_worker *w, const struct epoll_event *ev)
{
    if (ev->data.u64 == WK_INBOX_KEY) {
        w->inbox_woken = 1;
        return;
    }
    weft_conn *c = wk_conn_at(w, (uint32_t)ev->data.u64);
    if (!c || c->gen != (uint32_t)(ev->data.u64 >> 32))
        return; /* stale: the slot was freed after the event was queued */
    uint32_t e = ev->events;
    if (c->flags & C_LINGER) {
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            conn_linger_read(w, c);
        return;
    }
    if (c->flags & C_CLOSED)
        return; /* closed after the event was queued */
    if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->flags |= C_HUP;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        c->flags |= C_READABLE;
        wk_ready_push(w, c);
    }
    if ((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (c->flags & C_WANT_OUT)) {
        c->flags &= ~C_WANT_OUT;
        wk_flush_push(w, c);
    }
}

static void inbox_one(inbox_msg *m, void *ctx)
{
    wk_worker *w = ctx;
    ST_ADD(&w->st, handoffs, 1);
    if (m->kind == INBOX_CONN) {
        conn_open(w, m);
        return;
    }
    m->fn(w->srv, w->index, m->arg);
    free(m);
}

static void run_one(wk_worker *w, weft_conn *c)
{
    c->flags &= ~C_READY;
    if (c->flags & C_LINGER)
        conn_linger_read(w, c);
    else if (!(c->flags & C_CLOSED) && (c->flags & (C_READABLE | C_REDELIVER))) {
        conn_read(w, c);
        /*
         * Write what this connection's input produced now, not after
         * every other ready connection: its ring goes back to the pool
         * while still hot, so a turn of 512 events reuses a few rings
         * instead of borrowing (and allocating) 512. Still one write per
         * connection per turn; the flush pass below finds it empty.
         */
        if ((c->flags & (C_FLUSH | C_CLOSED)) == C_FLUSH)
            conn_flush(w, c);
    }
}

static void run_ready(wk_worker *w)
{
    /* Detach both lists: what is queued from now on runs next turn. */
    weft_conn *c = w->ready.head;
    weft_conn *bulk = w->deferred.head, *last = w->deferred.tail;
    w->ready.head = w->ready.tail = NULL;
    w->deferred.head = w->deferred.tail = NULL;
    /* Fresh input first. */
    while (c) {
        weft_conn *next = c->next_ready;
        run_one(w, c);
        c = next;
    }
    /*
     * Then the oldest WK_BULK_PER_TURN deferred connections: fresh input
     * waits for at most that many read budgets of bulk senders, however many
     * there are. The rest go back in front of what was deferred meanwhile
     * (round robin).
     */
    for (int i = 0; bulk && i < WK_BULK_PER_TURN; i++) {
        weft_conn *next = bulk->next_ready;
        run_one(w, bulk);
        bulk = next;
    }
    if (bulk) {
        last->next_ready = w->deferred.head;
        if (!w->deferred.head)
            w->deferred.tail = last;
        w->deferred.head = bulk;
    }
}

static void run_flush(wk_worker *w)
{
    /* Connections queued while flushing (EINTR) are taken in the same pass. */
    while (w->flush.head) {
        weft_conn *c = w->flush.head;
        w->flush.head = c->next_flush;
        if (!w->flush.head)
            w->flush.tail = NULL;
        c->flags &= ~C_FLUSH;
        conn_flush(w, c);
    }
}

/* ---- shutdown ---------------------------------------------------------------- */

static void for_each_open(wk_worker *w, void (*fn)(wk_worker *, weft_conn *))
{
    for (uint32_t k = 0; k < w->nchunks; k++)
        for (int i = 0; i < WK_SLAB_CHUNK; i++) {
            weft_conn *c = &w->chunks[k][i];
            if ((c->flags & C_OPENED) && !(c->flags & C_CLOSED))
                fn(w, c);
        }
}

static void begin_drain(wk_worker *w, weft_conn *c)
{
    conn_close_after_flush(w, c, WEFT_CLOSE_SHUTDOWN);
}

static void force_close(wk_worker *w, weft_conn *c) { conn_close(w, c, WEFT_CLOSE_SHUTDOWN); }

/*
 * Stop reading every connection; close those with nothing to send now and
 * the rest once flushed, or at the deadline (design: orderly shutdown).
 */
static void begin_shutdown(wk_worker *w)
{
    w->stopping = 1;
    w->deadline_ms = wk_now_ms() + w->srv->cfg.shutdown_timeout_ms;
    for_each_open(w, begin_drain);
}

/* ---- the loop ---------------------------------------------------------------- */

/* The smaller of two epoll timeouts, where -1 means none. */
static int min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static int wait_timeout(wk_worker *w)
{
    if (w->ready.head || w->deferred.head)
        return 0;
    w->now_ms = wk_now_ms();
    int t = min_timeout(conn_linger_expire(w, 0), to_wait_ms(w));
    if (!w->stopping)
        return t;
    int64_t left = w->deadline_ms - wk_now_ms();
    if (left <= 0)
        return 0;
    if (left > WK_DRAIN_TICK_MS)
        left = WK_DRAIN_TICK_MS;
    return t >= 0 && t < left ? t : (int)left;
}

static void loop(wk_worker *w)
{
    struct epoll_event ev[WK_EVENTS];
    for (;;) {
        int n = epoll_wait(w->epfd, ev, WK_EVENTS, wait_timeout(w));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            w->err = -errno;
            wlog(w->srv, WEFT_LOG_ERROR, "worker %d: epoll_wait: %s", w->index,
                 weft_strerror(errno));
            return;
        }
        uint64_t t0 = weft_now_ns();
        w->now_ms = (int64_t)(t0 / 1000000u);
        ST_ADD(&w->st, wakeups, 1);
        ST_ADD(&w->st, events, (uint64_t)n);
        for (int i = 0; i < n; i++)
            dispatch(w, &ev[i]);
        if (w->inbox_woken) {
            w->inbox_woken = 0;
            inbox_drain(&w->inbox, inbox_one, w);
        }
        if (!w->stopping && __atomic_load_n(&w->srv->workers_stop, __ATOMIC_ACQUIRE))
            begin_shutdown(w);
        run_ready(w);
        to_run(w);
        run_flush(w);
        conn_unstarve(w);
        if (w->timing && n > 0)
            hist_record(&w->st.turn, weft_now_ns() - t0);
        if (w->stopping && w->nconns > 0 && wk_now_ms() >= w->deadline_ms) {
            wlog(w->srv, WEFT_LOG_WARN,
                 "worker %d: shutdown timeout: closing %u connections with output pending",
                 w->index, w->nconns);
            for_each_open(w, force_close);
            conn_linger_expire(w, 1);
        }
        reap_closed(w);
        if (w->stopping && w->nconns == 0)
            return;
    }
}

/* ---- thread -------------------------------------------------------------------- */

static void place(wk_worker *w)
{
    if (w->cpu >= 0) {
        int rc = cpu_pin_self(w->cpu);
        if (rc != 0) {
            wlog(w->srv, WEFT_LOG_WARN, "worker %d: cannot pin to cpu %d (%s): running unpinned",
                 w->index, w->cpu, weft_strerror(rc));
            w->cpu = -1;
            w->node = -1;
        }
    }
}

static void *wk_main(void *arg)
{
    wk_worker *w = arg;
    place(w);
    /* The arena is created after pinning so its pages are node-local. */
    int rc = arena_create(&w->arena);
    if (rc != 0) {
        w->err = rc;
        wlog(w->srv, WEFT_LOG_ERROR, "worker %d: arena: %s", w->index, weft_strerror(rc));
    } else {
        pool_init(&w->pool, &w->arena, &w->st, w->srv->cfg.ring_size, w->srv->cfg.pool_cache_bytes);
        w->now_ms = wk_now_ms();
        pool_set_max(&w->pool, w->srv->cfg.pool_max_bytes);
        tw_init(&w->conn_wheel, w->now_ms);
        tw_init(&w->user_wheel, w->now_ms);
    }
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    if (rc == 0) {
        loop(w);
        if (w->err) /* a fatal loop error: still close what we own */
            for_each_open(w, force_close);
    }
    /*
     * Close the door to weft_post, then wait out the calls already past it
     * (sequentially consistent on both sides, so a poster either sees
     * `exited` or is counted in `posting`), then run what they queued.
     */
    __atomic_store_n(&w->exited, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&w->posting, __ATOMIC_SEQ_CST))
        sched_yield();
    w->stopping = 1;
    inbox_drain(&w->inbox, inbox_one, w);
    for_each_open(w, force_close);
    conn_linger_expire(w, 1);
    to_worker_exit(w);
    reap_closed(w);
    return NULL;
}

int wk_create(struct weft_server *s, int index, int cpu, wk_worker **out)
{
    wk_worker *w =
        aligned_alloc(ST_CACHELINE, (sizeof(*w) + ST_CACHELINE - 1) & ~(size_t)(ST_CACHELINE - 1));
    if (!w)
        return -ENOMEM;
    memset(w, 0, sizeof(*w));
    w->srv = s;
    w->index = index;
    w->cpu = cpu;
    /*
     * Looked up here, on the creating thread: libnuma fills its CPU-to-node
     * cache lazily and without a lock, so workers must not race to do it.
     */
    w->node = cpu >= 0 ? cpu_node(cpu) : -1;
    w->timing = s->cfg.stats_interval_ms > 0;
    w->timeouts = s->cfg.idle_timeout_ms || s->cfg.input_stall_ms || s->cfg.output_stall_ms;
    int rc = inbox_init(&w->inbox);
    if (rc != 0)
        goto fail_inbox;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        rc = -errno;
        goto fail_epoll;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = WK_INBOX_KEY};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->inbox.efd, &ev) != 0) {
        rc = -errno;
        goto fail_ctl;
    }
    *out = w;
    return 0;
fail_ctl:
    close(w->epfd);
fail_epoll:
    inbox_destroy(&w->inbox);
fail_inbox:
    free(w);
    return rc;
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

int wk_join(wk_worker *w)
{
    pthread_join(w->tid, NULL);
    return w->err;
}

/* A message left in the inbox of a worker that never ran. */
static void discard_msg(inbox_msg *m, void *ctx)
{
    (void)ctx;
    if (m->kind == INBOX_CONN)
        close(m->fd);
    free(m);
}

void wk_destroy(wk_worker *w)
{
    if (!w)
        return;
    inbox_drain(&w->inbox, discard_msg, NULL);
    for (uint32_t k = 0; k < w->nchunks; k++)
        arena_free(&w->arena, w->chunks[k], WK_SLAB_CHUNK * sizeof(weft_conn));
    free(w->chunks);
    if (w->started) {
        pool_destroy(&w->pool);
        arena_destroy(&w->arena);
    }
    close(w->epfd);
    inbox_destroy(&w->inbox);
    free(w);
}
