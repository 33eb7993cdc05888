/*
 * core/timeouts.h — connection timeouts and handler timers on a worker.
 */
#ifndef WEFT_CORE_TIMEOUTS_H
#define WEFT_CORE_TIMEOUTS_H

#include "core/server-t.h"

/* Start c's timeout timer (at open), when any timeout is configured. */
void to_conn_open(wk_worker *w, weft_conn *c);

/* Stop c's timeout timer and cancel its handler timers (at close). */
void to_conn_close(wk_worker *w, weft_conn *c);

/* Fire what is due on both wheels (w->now_ms is current). */
void to_run(wk_worker *w);

/* Milliseconds until the next timer may be due; -1 for none. */
int to_wait_ms(wk_worker *w);

/* Cancel every worker timer (at the worker's exit). */
void to_worker_exit(wk_worker *w);

#endif
