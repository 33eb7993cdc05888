/*
 * workers/worker.h — a worker thread and its event loop.
 */
#ifndef WEFT_WORKERS_WORKER_H
#define WEFT_WORKERS_WORKER_H

#include "core/server-t.h"

/*
 * Create worker `index` of s: its epoll set and inbox (not its arena, which
 * the thread creates on its own CPU). Returns 0 or a negative errno.
 */
int wk_create(struct weft_server *s, int index, int cpu, wk_worker **out);

/* Start the thread; it signals *ready (a counter) once placed. */
int wk_start(wk_worker *w);

/* Join the thread; returns the worker's error (0 or a negative errno). */
int wk_join(wk_worker *w);

/* Free a worker whose thread has ended (or never started). */
void wk_destroy(wk_worker *w);

#endif
