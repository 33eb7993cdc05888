/*
 * workers/worker-t.h — the workers and what they share.
 *
 * Who touches what:
 *   wk_group    written by the server's thread before the workers start;
 *               read-only afterwards, except `drain` (atomic: the acceptor
 *               sets it, every worker reads it).
 *   wk_worker   everything belongs to the worker's own thread, except
 *               `inbox` (any producer), the `started`/`exited`/`posting`
 *               atomics and what the I/O backend's wake touches (any thread).
 */
#ifndef WEFT_WORKERS_WORKER_T_H
#define WEFT_WORKERS_WORKER_T_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include "buffers/arena.h"
#include "buffers/pool.h"
#include "stats/counters.h"
#include "weft/weft.h"
#include "workers/conn-t.h"
#include "workers/inbox.h"
#include "workers/timer.h"

struct wk_io_ops;

/*
 * The log sink the control plane gives the workers. `limit` is a wk_limit
 * kind (the line is rate-limited per kind) or -1 (always emitted).
 */
typedef void (*wk_log_fn)(void *ctx, int level, int limit, const char *line);

/* What every worker of one server shares; owned by the control plane. */
typedef struct wk_group {
    const weft_config *cfg; /* the server's copy of its configuration */
    const weft_handler *h;
    weft_server *srv; /* opaque here: handed back by weft_conn_server */
    int nworkers;
    struct wk_worker **workers;
    const struct wk_io_ops *io; /* the I/O backend every worker uses */
    int drain;                  /* atomic: stop reading, flush, close, exit */
    wk_log_fn log;
    void *log_ctx;
    const int *cpus; /* the CPU list the workers' places come from */
    int ncpus;
    /* The handler's per-worker hooks, run on each worker's thread. */
    weft_post_fn worker_start, worker_stop;
    void *worker_arg;
    /* The resolver thread (workers/resolve.c), started on first use. */
    struct wk_resolver *resolver;
    pthread_mutex_t resolver_mu;
} wk_group;

#define WK_SLAB_CHUNK 256 /* connections per slab chunk */

typedef struct wk_worker {
    st_worker st; /* first: the cache-line-aligned counters */
    wk_group *g;
    int index;
    int cpu;  /* the CPU it is pinned to, or -1 (before placing: its home CPU) */
    int node; /* the NUMA node it is bound to, or -1 */
    const struct wk_io_ops *io;
    void *io_state; /* the backend's (epoll set, pollfd array, ...) */
    inbox inbox;
    pthread_t tid;
    arena arena;
    pool pool;

    /* The slab: chunks of WK_SLAB_CHUNK connections, never moved. */
    weft_conn **chunks;
    uint32_t nchunks, chunks_cap;
    weft_conn *free_conns;
    uint32_t nconns; /* open connections (lingering ones included) */

    conn_list ready;            /* fresh input to read (next_ready) */
    conn_list deferred;         /* used a whole read budget: bulk, run a few
                                   per turn after fresh input (next_ready) */
    conn_list starved;          /* waiting for ring memory (next_ready) */
    conn_list flush;            /* output to write this turn (next_flush) */
    conn_list flush_more;       /* used a turn's output budget: go on next turn */
    weft_conn *closed;          /* closed, slot freed once off every list (next_closed) */
    conn_list linger;           /* lingering closes, oldest first (next_closed) */
    tw_wheel conn_wheel;        /* connection timeouts (tmr) */
    tw_wheel user_wheel;        /* handler timers */
    int64_t now_ms;             /* CLOCK_MONOTONIC ms, read once per turn */
    int timeouts;               /* any connection timeout is configured */
    struct weft_timer *wtimers; /* the handler's worker timers */

    int woken;           /* the backend saw a wake-up this turn: drain the inbox */
    int timing;          /* record turn latencies (stats are on) */
    int64_t gauges_due;  /* CLOCK_MONOTONIC ms: count the connection states then */
    int gauges_dirty;    /* a turn did something since the last count */
    int stopping;        /* shutdown in progress */
    int64_t deadline_ms; /* shutdown deadline, CLOCK_MONOTONIC */
    int err;             /* fatal error of this worker, negative errno */
    int started;         /* atomic: placed, arena created (or failed: err) */
    int exited;          /* atomic: the loop has ended */
    int posting;         /* atomic: wk_post calls between check and push */
} wk_worker;

#endif
