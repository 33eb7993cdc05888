/*
 * workers/user_timers.c — the handler's timers (user_timers.h, and the
 * timer calls of weft.h).
 *
 * Each timer is one small allocation on its owner's list (the connection's
 * or the worker's) and one node in the worker's user wheel. A callback may
 * cancel its own timer, or close its connection (which cancels the rest):
 * `firing` defers the free to the callback's return.
 */
#include "workers/user_timers.h"

#include <stddef.h>
#include <stdlib.h>

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

weft_timer *ut_new(wk_worker *w, weft_conn *c, uint32_t after_ms, uint32_t every_ms,
                   weft_timer_fn fn, void *arg)
{
    weft_timer **list = c ? &c->timers : &w->wtimers;
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
    return ut_new(c->w, c, after_ms, every_ms, fn, arg);
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

void ut_conn_close(wk_worker *w, weft_conn *c)
{
    (void)w;
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

void ut_run(wk_worker *w) { tw_expire(&w->user_wheel, w->now_ms, user_fire, w); }

int ut_wait_ms(wk_worker *w) { return tw_timeout_ms(&w->user_wheel, w->now_ms); }

void ut_worker_exit(wk_worker *w)
{
    while (w->wtimers)
        timer_free(w->wtimers);
}
