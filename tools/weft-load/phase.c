/*
 * tools/weft-load/phase.c — the phases every mode shares: CONNECT (open this
 * thread's connections), WAIT (until every thread has connected: one common
 * start time, so the threads' windows line up), the mode's own run (P_RUN or
 * P_HOLD, the mode's step), DRAIN (nothing new is sent; wait up to --timeout
 * for every reply) and DONE. A signal sends every thread to DRAIN. Every
 * HOUSEKEEP_NS the thread closes connections that waited too long.
 */
#include <errno.h>

#include "load.h"

#define HOUSEKEEP_NS 100000000ULL /* timeout scan every 100 ms */
#define DRAIN_CHECK  10000000ULL  /* in DRAIN, look for "all answered" every 10 ms */

static atomic_uint g_connecting; /* threads still in CONNECT */
static _Atomic uint64_t g_start; /* run start; 0 until every thread connected */
static uint32_t *g_open;         /* per thread: connections open at the barrier */
static uint64_t g_t0;            /* program start */

void phase_init(unsigned threads)
{
    g_open = load_calloc(threads, sizeof(uint32_t));
    atomic_store(&g_connecting, threads);
    g_t0 = now_ns();
}

void phase_start(thr *t, uint64_t now)
{
    t->ramp_t0 = now;
    t->next_housekeep = now + HOUSEKEEP_NS;
    if (load_cfg.mode->prepare)
        load_cfg.mode->prepare(t, g_t0);
}

uint64_t phase_ramp_at(const thr *t)
{
    if (t->nfree && t->inflight < t->inflight_cap && t->ramp_rate > 0)
        return t->ramp_t0 + (uint64_t)((double)t->attempts * 1e9 / t->ramp_rate);
    return UINT64_MAX;
}

void phase_open_more(thr *t, uint64_t now)
{
    while (t->nfree && t->inflight < t->inflight_cap) {
        if (t->ramp_rate > 0 &&
            now < t->ramp_t0 + (uint64_t)((double)t->attempts * 1e9 / t->ramp_rate))
            break;
        if (load_cfg.mode->cycles) {
            if (t->budget == 0)
                break;
            t->budget--;
        }
        conn_open(t, &t->conns[t->free[--t->nfree]], now);
    }
}

/* This thread's share of `total` in proportion to `mine` of `all` (exact:
 * the shares of all threads add up to total). */
static uint64_t share(uint64_t total, uint64_t before, uint64_t mine, uint64_t all)
{
    if (all == 0)
        return 0;
    long double a = (long double)total / all;
    return (uint64_t)(a * (before + mine)) - (uint64_t)(a * before);
}

void phase_begin_window(thr *t, uint64_t start)
{
    t->start = start;
    t->warm_end = start + secs_ns(load_cfg.warmup);
    t->run_end = load_cfg.have_duration ? start + secs_ns(load_cfg.duration) : UINT64_MAX;
}

/* Every thread has connected: start the run at the common start time. */
static void begin_run(thr *t, uint64_t start)
{
    uint64_t before = 0, all = 0;
    for (unsigned i = 0; i < load_cfg.threads; i++) {
        before += i < t->idx ? g_open[i] : 0;
        all += g_open[i];
    }
    uint32_t mine = g_open[t->idx];
    phase_begin_window(t, start);
    t->budget = load_cfg.count ? share(load_cfg.count, before, mine, all) : UINT64_MAX;
    t->phase = P_RUN;
    load_cfg.mode->begin(t, mine, all);
}

void phase_drain(thr *t, uint64_t now)
{
    t->phase = P_DRAIN;
    t->drain_end = now + secs_ns(load_cfg.timeout);
    t->next_drain_check = now;
}

/* Closes connections that wait longer than --timeout (connect or reply). */
static void expire(thr *t, uint64_t now, int all)
{
    uint64_t limit = secs_ns(load_cfg.timeout);
    for (uint32_t i = 0; i < t->nconns; i++) {
        conn *c = &t->conns[i];
        if (c->state == C_CONNECTING) {
            if (all || now - c->t_open > limit)
                conn_connect_failed(t, c, ETIMEDOUT);
        } else if (c->state == C_OPEN && conn_outstanding(c)) {
            if (all) {
                conn_lost(t, c, &t->st.timeouts);
                continue;
            }
            /* Not-yet-written messages have no send time unless the mode
             * sends on a schedule. */
            if (!load_cfg.mode->sent_at && c->rd >= c->wr)
                continue;
            uint64_t sent = conn_sent_time(t, c, c->rd / load_cfg.size);
            if (now > sent && now - sent > limit)
                conn_lost(t, c, &t->st.timeouts);
        }
    }
}

/* Whether every connection has been answered (and none is still connecting). */
static int all_answered(const thr *t)
{
    for (uint32_t i = 0; i < t->nconns; i++) {
        const conn *c = &t->conns[i];
        if (c->state == C_CONNECTING || (c->state == C_OPEN && conn_outstanding(c)))
            return 0;
    }
    return 1;
}

static void connect_phase_done(thr *t, uint64_t now)
{
    uint32_t open = 0;
    for (uint32_t i = 0; i < t->nconns; i++)
        open += t->conns[i].state == C_OPEN;
    g_open[t->idx] = open;
    t->phase = P_WAIT;
    /* acq_rel: the last thread sees every g_open[] before it publishes the start. */
    if (atomic_fetch_sub_explicit(&g_connecting, 1, memory_order_acq_rel) == 1)
        atomic_store_explicit(&g_start, now, memory_order_release);
}

void phase_step(thr *t, uint64_t now)
{
    if (atomic_load_explicit(&load_stop, memory_order_relaxed) && t->phase < P_DRAIN) {
        t->nfree = 0; /* connect nothing more */
        if (t->phase == P_CONNECT)
            connect_phase_done(t, now);
        if (t->phase != P_WAIT)
            phase_drain(t, now);
    }
    if (now >= t->next_housekeep) {
        t->next_housekeep = now + HOUSEKEEP_NS;
        expire(t, now, 0);
    }
    switch (t->phase) {
    case P_CONNECT:
        phase_open_more(t, now);
        if (t->resolved == t->nconns)
            connect_phase_done(t, now);
        break;
    case P_WAIT: {
        uint64_t s = atomic_load_explicit(&g_start, memory_order_acquire);
        if (s) {
            begin_run(t, s);
            if (atomic_load(&load_stop))
                phase_drain(t, now);
        }
        break;
    }
    case P_RUN:
    case P_HOLD:
        load_cfg.mode->step(t, now);
        break;
    case P_DRAIN:
        if (now >= t->drain_end) {
            expire(t, now, 1);
            t->phase = P_DONE;
        } else if (now >= t->next_drain_check) {
            t->next_drain_check = now + DRAIN_CHECK;
            if (all_answered(t))
                t->phase = P_DONE;
        }
        break;
    case P_DONE:
        break;
    }
}

static uint64_t sooner(uint64_t a, uint64_t b) { return a < b ? a : b; }

uint64_t phase_next_wake(const thr *t, uint64_t now)
{
    uint64_t at = t->next_housekeep;
    switch (t->phase) {
    case P_CONNECT:
        at = sooner(at, phase_ramp_at(t));
        break;
    case P_WAIT:
        at = sooner(at, now + 1000000); /* poll the barrier every 1 ms */
        break;
    case P_RUN:
    case P_HOLD:
        at = sooner(at, load_cfg.mode->deadline(t));
        break;
    case P_DRAIN:
        at = sooner(at, sooner(t->drain_end, t->next_drain_check));
        break;
    case P_DONE:
        break;
    }
    return at > now ? at - now : 0;
}
