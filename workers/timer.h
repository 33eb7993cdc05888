/*
 * workers/timer.h — a worker's timers: a hashed timing wheel.
 *
 * Why a hashed wheel: connection activity must cost O(1) (invariant 3's
 * budget leaves no room for a heap's O(log n) on every read), and timeouts
 * of seconds need no finer clock than a tick of TW_TICK_MS. Adding and
 * removing are O(1) (a doubly linked slot list); each tick visits one slot,
 * and an entry due more than one revolution ahead (TW_SLOTS ticks, 41 s) is
 * passed over until its turn comes. Connection timeouts add laziness on top
 * (workers/timeouts.c): activity only stamps the time, and a connection's single
 * timer, when it fires, works out whether a deadline really passed or
 * re-arms itself for the next one.
 *
 * Resolution: a timer fires no earlier than asked and at most one tick
 * (plus the wait for the worker's next turn) late.
 *
 * One wheel per worker, used only on that worker's thread.
 */
#ifndef WEFT_WORKERS_TIMER_H
#define WEFT_WORKERS_TIMER_H

#include <stdint.h>
#include <time.h>

#define TW_TICK_MS 10
#define TW_SLOTS   4096 /* a power of two */

typedef struct tw_node {
    struct tw_node *next, **pprev; /* pprev NULL while not scheduled */
    uint64_t tick;                 /* absolute tick it is due at */
} tw_node;

typedef struct tw_wheel {
    uint64_t tick;      /* the last tick processed */
    uint64_t next_hint; /* no entry is due before this tick */
    uint32_t count;
    tw_node *slot[TW_SLOTS];
} tw_wheel;

/* Start the wheel at now_ms (CLOCK_MONOTONIC). */
void tw_init(tw_wheel *w, int64_t now_ms);

/* Schedule n (not scheduled) to fire at when_ms or up to a tick later. */
void tw_add(tw_wheel *w, tw_node *n, int64_t when_ms);

/* Unschedule n; a no-op when it is not scheduled. */
void tw_del(tw_wheel *w, tw_node *n);

/* CLOCK_MONOTONIC in milliseconds. */
static inline int64_t tw_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int tw_pending(const tw_node *n) { return n->pprev != 0; }

/*
 * Fire every entry due by now_ms: each is unscheduled, then fn(n, ctx) runs
 * (it may re-add n or add and delete others). Returns the number fired.
 */
unsigned tw_expire(tw_wheel *w, int64_t now_ms, void (*fn)(tw_node *n, void *ctx), void *ctx);

/* Milliseconds until the next entry may be due; -1 when there is none. */
int tw_timeout_ms(tw_wheel *w, int64_t now_ms);

#endif
