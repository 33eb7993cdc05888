/*
 * workers/timer.c — a hashed timing wheel (see timer.h).
 */
#include "workers/timer.h"

#include <string.h>

static uint64_t tick_of(int64_t ms) { return ms <= 0 ? 0 : (uint64_t)ms / TW_TICK_MS; }

void tw_init(tw_wheel *w, int64_t now_ms)
{
    memset(w, 0, sizeof(*w));
    w->tick = tick_of(now_ms);
    w->next_hint = UINT64_MAX;
}

void tw_add(tw_wheel *w, tw_node *n, int64_t when_ms)
{
    /* Round up: never fire before when_ms. Past deadlines fire next tick. */
    uint64_t t = tick_of(when_ms + TW_TICK_MS - 1);
    if (t <= w->tick)
        t = w->tick + 1;
    n->tick = t;
    tw_node **head = &w->slot[t & (TW_SLOTS - 1)];
    n->next = *head;
    if (*head)
        (*head)->pprev = &n->next;
    *head = n;
    n->pprev = head;
    w->count++;
    if (t < w->next_hint)
        w->next_hint = t;
}

void tw_del(tw_wheel *w, tw_node *n)
{
    if (!n->pprev)
        return;
    *n->pprev = n->next;
    if (n->next)
        n->next->pprev = n->pprev;
    n->next = NULL;
    n->pprev = NULL;
    w->count--;
}

/* Recompute next_hint by scanning ahead from the current tick. */
static void rehint(tw_wheel *w)
{
    w->next_hint = UINT64_MAX;
    if (w->count == 0)
        return;
    for (uint64_t t = w->tick + 1; t <= w->tick + TW_SLOTS; t++) {
        for (tw_node *n = w->slot[t & (TW_SLOTS - 1)]; n; n = n->next)
            if (n->tick < w->next_hint)
                w->next_hint = n->tick;
        /* Entries in the slots not yet visited are due at t + 1 or later. */
        if (w->next_hint <= t + 1)
            return;
    }
}

unsigned tw_expire(tw_wheel *w, int64_t now_ms, void (*fn)(tw_node *n, void *ctx), void *ctx)
{
    uint64_t now = tick_of(now_ms);
    unsigned fired = 0;
    if (now <= w->tick)
        return 0;
    if (w->count == 0 || w->next_hint > now) {
        /* Nothing due: jump straight to now. */
        w->tick = now;
        return 0;
    }
    /* Visit each slot once at most, even after a long sleep. */
    uint64_t from = w->next_hint > w->tick ? w->next_hint : w->tick + 1;
    uint64_t to = now - from >= TW_SLOTS ? from + TW_SLOTS - 1 : now;
    for (uint64_t t = from; t <= to; t++) {
        w->tick = t;
        tw_node **pp = &w->slot[t & (TW_SLOTS - 1)];
        while (*pp) {
            tw_node *n = *pp;
            if (n->tick > now) {
                pp = &n->next;
                continue;
            }
            tw_del(w, n);
            fired++;
            fn(n, ctx); /* may add n back, into a later tick */
        }
    }
    w->tick = now;
    rehint(w);
    return fired;
}

int tw_timeout_ms(tw_wheel *w, int64_t now_ms)
{
    if (w->count == 0)
        return -1;
    int64_t due = (int64_t)w->next_hint * TW_TICK_MS;
    int64_t left = due - now_ms;
    if (left <= 0)
        return 0;
    return left > 60000 ? 60000 : (int)left;
}
