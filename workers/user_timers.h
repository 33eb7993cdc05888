/*
 * workers/user_timers.h — the handler's timers (weft_conn_timer,
 * weft_worker_timer) on a worker's user wheel.
 */
#ifndef WEFT_WORKERS_USER_TIMERS_H
#define WEFT_WORKERS_USER_TIMERS_H

#include "workers/worker-t.h"

/*
 * A timer of connection c (or of the worker when c is NULL): first after
 * after_ms, then every every_ms (0 = one-shot). NULL on ENOMEM.
 */
weft_timer *ut_new(wk_worker *w, weft_conn *c, uint32_t after_ms, uint32_t every_ms,
                   weft_timer_fn fn, void *arg);

/* Fire what is due at w->now_ms. */
void ut_run(wk_worker *w);

/* Milliseconds until the next handler timer may be due; -1 for none. */
int ut_wait_ms(wk_worker *w);

/* Cancel c's timers without firing them (c is closing). */
void ut_conn_close(wk_worker *w, weft_conn *c);

/* Cancel every worker timer (at the worker's exit). */
void ut_worker_exit(wk_worker *w);

#endif
