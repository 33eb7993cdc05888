/*
 * workers/timeouts.c — connection timeouts (timeouts.h).
 *
 * Connection timeouts are lazy. The data path only stamps c->last_in and
 * c->last_out with the turn's clock (one store, no timer operation), and
 * each connection has one timer in the worker's conn_wheel. When it fires,
 * check() works out which deadline, if any, has really passed:
 *
 *   idle          max(last_in, last_out) + idle_timeout_ms
 *   input stall   partial_since + input_stall_ms, while a partial message
 *                 waits (from when it began: a trickle of bytes does not
 *                 restart the clock)
 *   output stall  last_out + output_stall_ms, while output waits
 *
 * and either returns that verdict or re-arms the timer at the earliest
 * deadline that can still come. A kind that is not active now (no partial
 * input, no pending output) is re-checked after its full period, so a
 * connection costs at most one timer firing per shortest timeout.
 */
#include "workers/timeouts.h"

#include <stddef.h>

#include "workers/conn.h"

static const weft_config *cfg_of(const wk_worker *w) { return w->g->cfg; }

/* A stamp (ms mod 2^32) back into a full CLOCK_MONOTONIC millisecond. */
static int64_t unstamp(const wk_worker *w, uint32_t stamp)
{
    return w->now_ms - (int64_t)(uint32_t)((uint32_t)w->now_ms - stamp);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

void to_conn_open(wk_worker *w, weft_conn *c)
{
    c->last_in = c->last_out = (uint32_t)w->now_ms;
    c->tmr.pprev = NULL;
    if (!w->timeouts)
        return;
    const weft_config *cfg = cfg_of(w);
    int64_t first = INT64_MAX;
    if (cfg->idle_timeout_ms)
        first = min64(first, cfg->idle_timeout_ms);
    if (cfg->input_stall_ms)
        first = min64(first, cfg->input_stall_ms);
    if (cfg->output_stall_ms)
        first = min64(first, cfg->output_stall_ms);
    tw_add(&w->conn_wheel, &c->tmr, w->now_ms + first);
}

void to_conn_connecting(wk_worker *w, weft_conn *c, uint32_t ms)
{
    /* partial_since is free until the connection reads: the connect's start. */
    c->partial_since = c->last_in = c->last_out = (uint32_t)w->now_ms;
    tw_add(&w->conn_wheel, &c->tmr, w->now_ms + ms);
}

void to_conn_handshaking(wk_worker *w, weft_conn *c)
{
    tw_del(&w->conn_wheel, &c->tmr);
    to_conn_connecting(w, c, cfg_of(w)->tls_handshake_ms);
}

void to_conn_connected(wk_worker *w, weft_conn *c)
{
    tw_del(&w->conn_wheel, &c->tmr);
    to_conn_open(w, c);
}

void to_conn_close(wk_worker *w, weft_conn *c) { tw_del(&w->conn_wheel, &c->tmr); }

/* The verdict on c, or -1 with c re-armed for its next possible deadline. */
static int check(wk_worker *w, weft_conn *c)
{
    const weft_config *cfg = cfg_of(w);
    int64_t now = w->now_ms, next = INT64_MAX;
    if (c->flags & (C_CONNECTING | C_TLS_HS)) {
        bool hs = !(c->flags & C_CONNECTING);
        int64_t due =
            unstamp(w, c->partial_since) + (hs ? cfg->tls_handshake_ms : c->x->connect_ms);
        if (due <= now)
            return hs ? WEFT_CLOSE_TLS_HANDSHAKE : WEFT_CLOSE_CONNECT_TIMEOUT;
        tw_add(&w->conn_wheel, &c->tmr, due);
        return -1;
    }
    int64_t in = unstamp(w, c->last_in), out = unstamp(w, c->last_out);
    if (cfg->output_stall_ms) {
        if (conn_pending_out(c) > 0) {
            int64_t due = out + cfg->output_stall_ms;
            if (due <= now)
                return WEFT_CLOSE_OUTPUT_STALL; /* the peer takes nothing */
            next = min64(next, due);
        } else {
            next = min64(next, now + cfg->output_stall_ms);
        }
    }
    if (cfg->input_stall_ms && !(c->flags & C_CLOSING)) {
        if (weft_ring_len(&c->in) > 0 && (c->flags & C_PARTIAL)) {
            int64_t due = unstamp(w, c->partial_since) + cfg->input_stall_ms;
            if (due <= now)
                return WEFT_CLOSE_INPUT_STALL;
            next = min64(next, due);
        } else {
            next = min64(next, now + cfg->input_stall_ms);
        }
    }
    if (cfg->idle_timeout_ms && !(c->flags & C_CLOSING)) {
        int64_t due = (in > out ? in : out) + cfg->idle_timeout_ms;
        if (due <= now) {
            /* Closed after a flush: the output-stall check keeps watching. */
            if (cfg->output_stall_ms)
                tw_add(&w->conn_wheel, &c->tmr, now + cfg->output_stall_ms);
            return WEFT_CLOSE_TIMEOUT;
        }
        next = min64(next, due);
    }
    if (next != INT64_MAX)
        tw_add(&w->conn_wheel, &c->tmr, next);
    return -1;
}

typedef struct expiry {
    wk_worker *w;
    to_verdict *v;
    unsigned n, max;
} expiry;

static void fire(tw_node *node, void *ctx)
{
    expiry *x = ctx;
    weft_conn *c = (weft_conn *)((char *)node - offsetof(weft_conn, tmr));
    if (c->flags & C_CLOSED)
        return;
    if (x->n >= x->max) {
        tw_add(&x->w->conn_wheel, &c->tmr, x->w->now_ms + 1); /* next tick */
        return;
    }
    int why = check(x->w, c);
    if (why >= 0)
        x->v[x->n++] = (to_verdict){c, (weft_close_reason)why};
}

unsigned to_expire(wk_worker *w, to_verdict *v, unsigned max)
{
    expiry x = {w, v, 0, max};
    tw_expire(&w->conn_wheel, w->now_ms, fire, &x);
    return x.n;
}

int to_wait_ms(wk_worker *w) { return tw_timeout_ms(&w->conn_wheel, w->now_ms); }
