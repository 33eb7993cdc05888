/*
 * workers/loop.h — one worker's event loop, a turn at a time.
 *
 * worker.c runs the loop on the worker's thread; a test may run it on its
 * own thread with a scripted backend (tests/test_loop.c), calling wk_turn
 * itself. Everything here runs on the thread that owns the worker.
 */
#ifndef WEFT_WORKERS_LOOP_H
#define WEFT_WORKERS_LOOP_H

#include "workers/worker-t.h"

/*
 * Connections that used a whole read budget (deferred: bulk senders) run
 * after the fresh input of each turn, at most this many per turn and at
 * most WK_FRESH_BUDGETS read budgets of bytes in all.
 */
#define WK_BULK_PER_TURN 16
/*
 * Fresh input of one turn reads at most this many read budgets at full
 * budget; every connection after that reads at most WK_READ_TRICKLE bytes
 * (a request, a line) and, if it has more, is deferred with the bulk
 * readers. A burst of hundreds of connections that all have a full budget
 * to read (slow consumers filling their output, a flood of uploads) then
 * costs a turn about WK_FRESH_BUDGETS read budgets plus a trickle each,
 * not a read budget each, and the light connections behind them in the
 * ready list are served in that same turn.
 */
#define WK_FRESH_BUDGETS 4
#define WK_READ_TRICKLE  4096

/*
 * Prepare the state a turn needs (arena, ring pool, wheels) on the calling
 * thread, which becomes the worker's thread: the arena's pages are first
 * touched here. 0 or a negative errno.
 */
int wk_loop_init(wk_worker *w);

/*
 * Run one turn: wait, inbox, drain, ready, timers, flush, unstarve, linger,
 * deadline, reap, gauges (see loop.c). Returns 1 while the worker should go on, 0
 * once it has stopped and holds no connection, or the backend's negative
 * errno when its wait failed.
 */
int wk_turn(wk_worker *w);

/* Take every message in the inbox now: adopt, or run (the inbox phase). */
void wk_inbox_run(wk_worker *w);

/*
 * End the worker: close every connection at once, end every linger, cancel
 * the worker timers and free the slots. Messages still in the inbox are
 * the caller's (wk_exit drains them first).
 */
void wk_loop_fini(wk_worker *w);

/* Undo wk_loop_init (pool and arena; the slab goes with wk_destroy). */
void wk_loop_free(wk_worker *w);

#endif
