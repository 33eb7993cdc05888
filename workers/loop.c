/*
 * workers/loop.c — the event loop: one turn, phase by phase.
 *
 * One turn reads like the design, and each phase is the function of that
 * name below, called in this order by wk_turn:
 *
 *   wait      the backend waits (not at all while work is queued) and
 *             reports each event: dispatch notes it in its connection's
 *             flags and queues the connection (conn_event)
 *   inbox     adopt the connections handed to us, run posted calls
 *   drain     once the server stops: stop reading, close what has no output
 *   ready     read each connection with fresh input within its budget (a
 *             trickle once the turn read its share: WK_FRESH_BUDGETS) and
 *             flush it at once; then a few bulk readers (invariant 3)
 *   timers    close the connections whose timeouts expired (verdicts from
 *             workers/timeouts.c), fire the handler's timers
 *   flush     one write for each connection whose output is still pending
 *             (invariant 5)
 *   unstarve  ring memory is under its cap again: starved readers go on
 *   linger    end the lingering closes whose time is up
 *   deadline  at the shutdown deadline, close whatever is left
 *   reap      free the slots of connections closed this turn
 *   gauges    once per stats interval: count the connections by state
 */
#include "workers/loop.h"

#include <stdlib.h>

#include "workers/conn.h"
#include "workers/io.h"
#include "workers/slab.h"
#include "workers/timeouts.h"
#include "workers/tls.h"
#include "workers/user_timers.h"
#include "workers/wlog.h"

/* While draining at shutdown, wake at least this often (ms). */
#define WK_DRAIN_TICK_MS 50

/* ---- dispatch: called by the backend from inside its wait ---------------- */

void wk_io_event(wk_worker *w, uint64_t key, unsigned events)
{
    weft_conn *c = wk_conn_at(w, (uint32_t)key);
    if (!c || c->gen != (uint32_t)(key >> 32))
        return; /* stale: the slot was freed after the event was queued */
    conn_event(w, c, events);
}

void wk_io_woken(wk_worker *w) { w->woken = 1; }

/* ---- wait ------------------------------------------------------------------ */

/* The smaller of two timeouts, where -1 means none. */
static int min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* Milliseconds until the oldest linger ends; -1 when none lingers. */
static int linger_wait_ms(const wk_worker *w)
{
    if (!w->linger.head)
        return -1;
    int32_t left = (int32_t)(w->linger.head->linger_until - (uint32_t)w->now_ms);
    return left > 0 ? left : 0;
}

/*
 * Milliseconds until the connection states are counted again; -1: not
 * needed. Only a turn that did something can change a state, so an idle
 * worker counted after its last such turn sleeps on.
 */
static int gauges_wait_ms(const wk_worker *w)
{
    if (!w->timing || !w->gauges_dirty)
        return -1;
    int64_t left = w->gauges_due - w->now_ms;
    return left > 0 ? (int)left : 0;
}

static int wait_timeout(wk_worker *w)
{
    if (w->ready.head || w->deferred.head || w->flush.head)
        return 0; /* work is queued: only look for more */
    w->now_ms = tw_clock_ms();
    int t = min_timeout(linger_wait_ms(w), min_timeout(to_wait_ms(w), ut_wait_ms(w)));
    t = min_timeout(t, gauges_wait_ms(w));
    if (!w->stopping)
        return t;
    int64_t left = w->deadline_ms - w->now_ms;
    if (left <= 0)
        return 0;
    if (left > WK_DRAIN_TICK_MS)
        left = WK_DRAIN_TICK_MS;
    return t >= 0 && t < left ? t : (int)left;
}

static int phase_wait(wk_worker *w)
{
    int n = w->io->wait(w, wait_timeout(w));
    if (n >= 0) {
        ST_ADD(&w->st, wakeups, 1);
        ST_ADD(&w->st, events, (uint64_t)n);
    }
    return n;
}

/* ---- inbox ------------------------------------------------------------------ */

static void inbox_one(inbox_msg *m, void *ctx)
{
    wk_worker *w = ctx;
    ST_ADD(&w->st, handoffs, 1);
    if (m->kind == INBOX_CONN) {
        conn_open(w, m->fd, &m->addr.sa, sizeof(m->addr), m->origin, m->tls_ctx);
        tls_ctx_unref(m->tls_ctx); /* the connection holds its own (SSL_new) */
    } else
        m->fn(w->g->srv, w->index, m->arg);
    free(m);
}

void wk_inbox_run(wk_worker *w) { inbox_drain(&w->inbox, inbox_one, w); }

static void phase_inbox(wk_worker *w)
{
    if (!w->woken)
        return;
    w->woken = 0;
    wk_inbox_run(w);
}

/* ---- drain ------------------------------------------------------------------ */

static void begin_drain(wk_worker *w, weft_conn *c)
{
    conn_close_after_flush(w, c, WEFT_CLOSE_SHUTDOWN);
}

/*
 * Stop reading every connection; close those with nothing to send now and
 * the rest once flushed, or at the deadline (invariant 8).
 */
static void phase_drain(wk_worker *w)
{
    if (w->stopping || !__atomic_load_n(&w->g->drain, __ATOMIC_ACQUIRE))
        return;
    w->stopping = 1;
    w->deadline_ms = tw_clock_ms() + w->g->cfg->shutdown_timeout_ms;
    wk_for_each_open(w, begin_drain);
}

/* ---- ready ------------------------------------------------------------------ */

/* Run c's input, reading at most budget bytes; returns the bytes read. */
static size_t run_one(wk_worker *w, weft_conn *c, size_t budget)
{
    size_t n = 0;
    c->flags &= ~C_READY;
    if (c->flags & C_LINGER) {
        conn_linger_read(w, c);
    } else if (!(c->flags & C_CLOSED) && (c->flags & (C_READABLE | C_REDELIVER))) {
        n = conn_read(w, c, budget);
        /*
         * Write what this connection's input produced now, not after
         * every other ready connection: its ring goes back to the pool
         * while still hot, so a turn of 512 events reuses a few rings
         * instead of borrowing (and allocating) 512. Still one write per
         * connection per turn; the flush phase finds it empty.
         */
        if ((c->flags & (C_FLUSH | C_CLOSED)) == C_FLUSH)
            conn_flush(w, c);
    }
    return n;
}

/* What is left of a turn's share after n more bytes were read. */
static size_t share_after(size_t left, size_t n) { return n < left ? left - n : 0; }

/* The budget of the next fresh connection when the turn has left bytes. */
static size_t fresh_budget(size_t full, size_t left)
{
    size_t trickle = full < WK_READ_TRICKLE ? full : WK_READ_TRICKLE;
    if (left >= full)
        return full;
    return left > trickle ? left : trickle;
}

static void phase_ready(wk_worker *w)
{
    /* Detach both lists: what is queued from now on runs next turn. */
    weft_conn *c = w->ready.head;
    weft_conn *bulk = w->deferred.head, *last = w->deferred.tail;
    w->ready.head = w->ready.tail = NULL;
    w->deferred.head = w->deferred.tail = NULL;
    size_t full = w->g->cfg->read_budget;
    size_t left = WK_FRESH_BUDGETS * full;
    /* Fresh input first: full budgets while the turn's share lasts. */
    while (c) {
        weft_conn *next = c->next_ready;
        left = share_after(left, run_one(w, c, fresh_budget(full, left)));
        c = next;
    }
    /*
     * Then the oldest deferred connections, at most WK_BULK_PER_TURN of them
     * and until they read WK_FRESH_BUDGETS read budgets: fresh input waits
     * for at most that much of bulk senders, however many there are. The
     * rest go back in front of what was deferred meanwhile (round robin).
     */
    left = WK_FRESH_BUDGETS * full;
    for (int i = 0; bulk && i < WK_BULK_PER_TURN && left > 0; i++) {
        weft_conn *next = bulk->next_ready;
        left = share_after(left, run_one(w, bulk, full));
        bulk = next;
    }
    if (bulk) {
        last->next_ready = w->deferred.head;
        if (!w->deferred.head)
            w->deferred.tail = last;
        w->deferred.head = bulk;
    }
}

/* ---- timers ------------------------------------------------------------------ */

static void phase_timers(wk_worker *w)
{
    to_verdict v[TO_VERDICTS_PER_TURN];
    unsigned n = to_expire(w, v, TO_VERDICTS_PER_TURN);
    for (unsigned i = 0; i < n; i++)
        conn_expire(w, v[i].c, v[i].why);
    ut_run(w);
}

/* ---- flush ------------------------------------------------------------------ */

static void phase_flush(wk_worker *w)
{
    while (w->flush.head) {
        weft_conn *c = w->flush.head;
        w->flush.head = c->next_flush;
        if (!w->flush.head)
            w->flush.tail = NULL;
        c->flags &= ~C_FLUSH;
        conn_flush(w, c);
    }
    /* Output that used its turn's budget (queued files) goes on next turn. */
    w->flush = w->flush_more;
    w->flush_more.head = w->flush_more.tail = NULL;
}

/* ---- unstarve, linger, deadline, reap ------------------------------------------ */

static void phase_unstarve(wk_worker *w) { conn_unstarve(w); }

static void phase_linger(wk_worker *w) { conn_linger_expire(w, 0); }

static void force_close(wk_worker *w, weft_conn *c) { conn_close(w, c, WEFT_CLOSE_SHUTDOWN); }

static void phase_deadline(wk_worker *w)
{
    if (!w->stopping || w->nconns == 0 || tw_clock_ms() < w->deadline_ms)
        return;
    wk_log(w->g, WEFT_LOG_WARN,
           "worker %d: shutdown timeout: closing %u connections with output pending", w->index,
           w->nconns);
    wk_for_each_open(w, force_close);
    conn_linger_expire(w, 1);
}

/*
 * Free the slots of closed connections that no list still references. The
 * generation bump makes every event still queued for the old connection
 * stale (wk_io_event).
 */
static void phase_reap(wk_worker *w)
{
    weft_conn **pp = &w->closed;
    while (*pp) {
        weft_conn *c = *pp;
        if (c->flags & (C_READY | C_FLUSH)) {
            pp = &c->next_closed;
            continue;
        }
        *pp = c->next_closed;
        wk_slot_put(w, c);
    }
}

/* ---- gauges ------------------------------------------------------------------ */

static void count_state(weft_conn *c, void *arg)
{
    uint64_t *n = arg;
    n[conn_state_of(c, c->w->stopping)]++;
}

/*
 * Once per stats interval, while stats are on and after a turn that did
 * something (active: events, inbox messages or closes), count the live
 * connections by state into this worker's gauges. One pass over the slab
 * (a few ns per slot), so a second's worth of turns pays it once.
 */
static void phase_gauges(wk_worker *w, bool active)
{
    if (!w->timing)
        return;
    if (active)
        w->gauges_dirty = 1;
    if (!w->gauges_dirty || w->now_ms < w->gauges_due)
        return;
    w->gauges_dirty = 0;
    w->gauges_due = w->now_ms + w->g->cfg->stats_interval_ms;
    uint64_t n[WEFT_CONN_STATES] = {0};
    wk_for_each_live(w, count_state, n);
    for (int k = 0; k < WEFT_CONN_STATES; k++)
        ST_SET(&w->st, conn_state[k], n[k]);
}

/* ---- the turn ------------------------------------------------------------------ */

int wk_turn(wk_worker *w)
{
    int n = phase_wait(w);
    if (n < 0)
        return n;
    uint64_t t0 = weft_now_ns();
    w->now_ms = (int64_t)(t0 / 1000000u);
    uint64_t closed0 = w->st.closed;
    bool active = n > 0 || w->woken;
    phase_inbox(w);
    phase_drain(w);
    phase_ready(w);
    phase_timers(w);
    phase_flush(w);
    phase_unstarve(w);
    phase_linger(w);
    phase_deadline(w);
    phase_reap(w);
    phase_gauges(w, active || w->st.closed != closed0);
    if (w->timing && n > 0)
        hist_record(&w->st.turn, weft_now_ns() - t0);
    return !(w->stopping && w->nconns == 0);
}

int wk_loop_init(wk_worker *w)
{
    int rc = arena_create(&w->arena);
    if (rc != 0)
        return rc;
    const weft_config *cfg = w->g->cfg;
    pool_init(&w->pool, &w->arena, &w->st, cfg->ring_size, cfg->pool_cache_bytes);
    pool_set_max(&w->pool, cfg->pool_max_bytes);
    w->now_ms = tw_clock_ms();
    tw_init(&w->conn_wheel, w->now_ms);
    tw_init(&w->user_wheel, w->now_ms);
    w->timing = cfg->stats_interval_ms > 0;
    w->timeouts = cfg->idle_timeout_ms || cfg->input_stall_ms || cfg->output_stall_ms;
    return 0;
}

void wk_loop_fini(wk_worker *w)
{
    w->stopping = 1;
    wk_for_each_open(w, force_close);
    conn_linger_expire(w, 1);
    ut_worker_exit(w);
    /* Nothing runs the lists again: take every closed slot off them. */
    w->ready.head = w->ready.tail = w->deferred.head = w->deferred.tail = NULL;
    w->starved.head = w->starved.tail = w->flush.head = w->flush.tail = NULL;
    w->flush_more.head = w->flush_more.tail = NULL;
    for (weft_conn *c = w->closed; c; c = c->next_closed)
        c->flags &= ~(C_READY | C_FLUSH);
    phase_reap(w);
}

void wk_loop_free(wk_worker *w)
{
    pool_destroy(&w->pool);
    arena_destroy(&w->arena);
}
