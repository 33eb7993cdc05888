/*
 * core/timeouts.c — connection timeouts and handler timers on a worker.
 *
 * Connection timeouts are lazy. The data path only stamps c->last_in and
 * c->last_out with the turn's clock (one store, no timer operation), and
 * each connection has one timer in the worker's conn_wheel. When it fires,
 * conn_check works out which deadline, if any, has really passed:
 *
 *   idle          max(last_in, last_out) + idle_timeout_ms
 *   input stall   partial_since + input_stall_ms, while a partial message
 *                 waits (from when it began: a trickle of bytes does not
 *                 restart the clock)
 *   output stall  last_out + output_stall_ms, while output waits
 *
 * and either closes the connection with that reason or re-arms the timer at
 * the earliest deadline that can still come. A kind that is not active now
 * (no partial input, no pending output) is re-checked after its full period,
 * so a connection costs at most one timer firing per shortest timeout.
 */
#include "core/timeouts.h"

#include <stddef.h>
#include <stdlib.h>

#include "core/conn.h"

static const weft_config *cfg_of(const wk_worker *w) { return &w->srv->cfg; }

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
    c->timers = NULL;
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

/*
 * Timeout closes per turn. Connections opened together (a flood of slow
 * readers) time out together, and closing a socket that holds megabytes of
 * unread input costs a few hundred microseconds; the rest are checked again
 * a tick later, so the healthy connections of the worker wait for at most
 * this many closes per turn.
 */
#define TO_CLOSES_PER_TURN 8

static void conn_check(wk_worker *w, weft_conn *c)
{
    const weft_config *cfg = cfg_of(w);
    int64_t now = w->now_ms, next = INT64_MAX;
    if (w->to_closes >= TO_CLOSES_PER_TURN) {
        tw_add(&w->conn_wheel, &c->tmr, now + 1);
        return;
    }
    int64_t in = unstamp(w, c->last_in), out = unstamp(w, c->last_out);
    if (cfg->output_stall_ms) {
        if (weft_ring_len(&c->out) > 0) {
            int64_t due = out + cfg->output_stall_ms;
            if (due <= now) {
                /* The peer takes nothing: what is pending will never arrive. */
                conn_close(w, c, WEFT_CLOSE_OUTPUT_STALL);
                w->to_closes++;
                return;
            }
            next = min64(next, due);
        } else {
            next = min64(next, now + cfg->output_stall_ms);
        }
    }
    if (cfg->input_stall_ms && !(c->flags & C_CLOSING)) {
        if (weft_ring_len(&c->in) > 0 && (c->flags & C_PARTIAL)) {
            int64_t due = unstamp(w, c->partial_since) + cfg->input_stall_ms;
            if (due <= now) {
                conn_close(w, c, WEFT_CLOSE_INPUT_STALL);
                w->to_closes++;
                return;
            }
            next = min64(next, due);
        } else {
            next = min64(next, now + cfg->input_stall_ms);
        }
    }
    if (cfg->idle_timeout_ms) {
        int64_t due = (in > out ? in : out) + cfg->idle_timeout_ms;
        if (due <= now) {
            conn_close_after_flush(w, c, WEFT_CLOSE_TIMEOUT);
            w->to_closes++;
            /* Still flushing: the output-stall check keeps watching it. */
            if (!(c->flags & C_CLOSED) && cfg->output_stall_ms)
                tw_add(&w->conn_wheel, &c->tmr, now + cfg->output_stall_ms);
            return;
        }
        next = min64(next, due);
    }
    if (next != INT64_MAX)
        tw_add(&w->conn_wheel, &c->tmr, next);
}

static void conn_fire(tw_node *n, void *ctx)
{
    weft_conn *c = (weft_conn *)((char *)n - offsetof(weft_conn, tmr));
    if (!(c->flags & C_CLOSED))
        conn_check(ctx, c);
}

/* ---- handler timers ------------------------------------------------------------- */

static void timer_unlink(weft_timer *t)
{
    *t->pprev = t->next;
    if (t->next)
        t->next->pprev = t->pprev;
}

static void timer_free(weft_timer *t)
{
    tw_del(&t->w->user_wheel, &t->node);
    timer_unlink(t);
    free(t);
}

static void user_fire(tw_node *n, void *ctx)
{
    wk_worker *w = ctx;
    weft_timer *t = (weft_timer *)((char *)n - offsetof(weft_timer, node));
    t->firing = 1;
    t->fn(t, t->arg);
    t->firing = 0;
    if (t->cancelled || t->every_ms == 0 || (t->conn && (t->conn->flags & C_CLOSED)))
        timer_free(t);
    else
        tw_add(&w->user_wheel, &t->node, w->now_ms + t->every_ms);
}

static weft_timer *timer_new(wk_worker *w, weft_conn *c, weft_timer **list, uint32_t after_ms,
                             uint32_t every_ms, weft_timer_fn fn, void *arg)
{
    weft_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->w = w;
    t->conn = c;
    t->fn = fn;
    t->arg = arg;
    t->every_ms = every_ms;
    t->next = *list;
    if (*list)
        (*list)->pprev = &t->next;
    *list = t;
    t->pprev = list;
    /* The turn's clock may be a little old: it only makes the timer late. */
    tw_add(&w->user_wheel, &t->node, w->now_ms + after_ms);
    return t;
}

weft_timer *weft_conn_timer(weft_conn *c, uint32_t after_ms, uint32_t every_ms, weft_timer_fn fn,
                            void *arg)
{
    if (!fn || (c->flags & (C_CLOSED | C_CLOSING)))
        return NULL;
    return timer_new(c->w, c, &c->timers, after_ms, every_ms, fn, arg);
}

weft_timer *weft_worker_timer(weft_server *s, int worker, uint32_t after_ms, uint32_t every_ms,
                              weft_timer_fn fn, void *arg)
{
    if (!fn || worker < 0 || worker >= s->nworkers)
        return NULL;
    wk_worker *w = s->workers[worker];
    return timer_new(w, NULL, &w->wtimers, after_ms, every_ms, fn, arg);
}

void weft_timer_cancel(weft_timer *t)
{
    if (!t)
        return;
    if (t->firing) {
        t->cancelled = 1; /* freed when its callback returns */
        return;
    }
    timer_free(t);
}

weft_conn *weft_timer_conn(const weft_timer *t) { return t->conn; }

/* ---- the worker's side ------------------------------------------------------------ */

void to_conn_close(wk_worker *w, weft_conn *c)
{
    tw_del(&w->conn_wheel, &c->tmr);
    while (c->timers) {
        weft_timer *t = c->timers;
        if (t->firing) { /* closed from inside its own callback */
            timer_unlink(t);
            t->next = NULL;
            t->pprev = &t->next;
            t->cancelled = 1;
            continue;
        }
        timer_free(t);
    }
}

void to_run(wk_worker *w)
{
    w->to_closes = 0;
    tw_expire(&w->conn_wheel, w->now_ms, conn_fire, w);
    tw_expire(&w->user_wheel, w->now_ms, user_fire, w);
}

int to_wait_ms(wk_worker *w)
{
    int a = tw_timeout_ms(&w->conn_wheel, w->now_ms);
    int b = tw_timeout_ms(&w->user_wheel, w->now_ms);
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

void to_worker_exit(wk_worker *w)
{
    while (w->wtimers)
        timer_free(w->wtimers);
}
