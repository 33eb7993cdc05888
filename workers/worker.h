/*
 * workers/worker.h — a worker thread: its life, and how other threads
 * reach it.
 *
 * The control plane (core/) creates the workers of a server with
 * wk_create, starts them, hands them connections with wk_adopt, posts calls
 * with wk_post, tells them to drain by setting wk_group.drain and waking
 * each (wk_wake), and joins them. Nothing else of a worker is touched from
 * outside its thread (invariant 1).
 */
#ifndef WEFT_WORKERS_WORKER_H
#define WEFT_WORKERS_WORKER_H

#include <sys/socket.h>

#include "workers/worker-t.h"

/*
 * Create worker `index` of group g, placed by config.pin around its home
 * CPU `cpu` (-1: none):
 * its inbox and the backend's wait primitive (g->io->init), not its arena,
 * which the thread creates once placed. Server's thread. 0 or -errno.
 */
int wk_create(wk_group *g, int index, int cpu, wk_worker **out);

/* Start the thread (all signals blocked in it). 0 or a negative errno. */
int wk_start(wk_worker *w);

/* Wait until the started thread is placed and ready; its error or 0. */
int wk_wait_started(wk_worker *w);

/* Join the thread; returns the worker's error (0 or a negative errno). */
int wk_join(wk_worker *w);

/* Free a worker whose thread has ended (or never started). */
void wk_destroy(wk_worker *w);

/*
 * Hand w the connected socket fd (from any thread): w owns it from now on
 * and runs o's handler for it (o must outlive the connection). 0, or
 * -ENOMEM (fd untouched: still the caller's).
 */
int wk_adopt(wk_worker *w, int fd, const struct sockaddr *peer, socklen_t len, const wk_origin *o,
             void *tls_ctx);

/*
 * Run fn(srv, w->index, arg) on w's thread soon (any thread; not from a
 * signal handler). 0, -ENOMEM or -ESHUTDOWN (the worker has exited).
 */
int wk_post(wk_worker *w, weft_post_fn fn, void *arg);

/* Wake w's loop (any thread, signal-safe): it re-reads wk_group.drain. */
void wk_wake(wk_worker *w);

/*
 * Handed connections w has closed so far: every close minus the outbound
 * connections w opened, mod 2^64, so that handed - wk_closed is what the
 * acceptor's gates count (any thread).
 */
uint64_t wk_closed(const wk_worker *w);

#endif
