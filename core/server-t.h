/*
 * core/server-t.h — the types behind weft_server, weft_conn and the workers.
 *
 * Who touches what:
 *   weft_server   written by the creating thread before start; read-only
 *                 afterwards, except `stopping` (any thread, atomic) and the
 *                 acceptor's counters (the acceptor thread only).
 *   wk_worker     everything but the inbox tail and `exited` belongs to the
 *                 worker's own thread.
 *   weft_conn     the owning worker's thread only (invariant 1).
 */
#ifndef WEFT_CORE_SERVER_T_H
#define WEFT_CORE_SERVER_T_H

#include <pthread.h>
#include <stdint.h>

#include "buffers/arena.h"
#include "buffers/pool.h"
#include "core/log.h"
#include "stats/counters.h"
#include "weft/weft.h"
#include "workers/inbox.h"
#include "workers/timer.h"

/* Connection flags (weft_conn.flags). */
enum {
    C_READABLE = 1u << 0,   /* an input edge was seen and not yet drained */
    C_HUP = 1u << 1,        /* RDHUP/HUP/ERR seen: read on to EOF or error */
    C_READY = 1u << 2,      /* on the worker's ready list */
    C_FLUSH = 1u << 3,      /* on the worker's flush list */
    C_WANT_OUT = 1u << 4,   /* output hit EAGAIN: waiting for the output edge */
    C_PAUSED = 1u << 5,     /* backpressure: not reading until output drains */
    C_EOF = 1u << 6,        /* the peer sent FIN */
    C_CLOSING = 1u << 7,    /* close once output is flushed; read no more */
    C_CLOSED = 1u << 8,     /* closed; the slot is freed at the end of a turn */
    C_OPENED = 1u << 9,     /* on_open ran; on_close is owed */
    C_DRAIN_CB = 1u << 10,  /* weft_send reported 1: on_drain is owed */
    C_LINGER = 1u << 11,    /* closed for the handler; discarding input to EOF */
    C_LINGERQ = 1u << 12,   /* on the worker's linger FIFO (next_closed) */
    C_REDELIVER = 1u << 14, /* call on_data with the ring as it is (after backpressure) */
    C_PARTIAL = 1u << 15,   /* input is pending since partial_since */
    C_STARVED = 1u << 13,   /* on the starved list (next_ready; C_READY is set too):
                               reading waits for ring memory under pool_max_bytes */
};

/*
 * A connection: 128 bytes with its rings' headers, and nothing else while it
 * is idle (the rings lend their storage back to the pool when they empty).
 */
struct weft_conn {
    int fd;
    uint32_t slot; /* index in the worker's slab */
    uint32_t gen;  /* bumped each time the slot is freed: epoll keys carry it */
    uint16_t flags;
    uint8_t reason; /* close reason, for a deferred close */
    uint8_t family; /* AF_INET or AF_INET6 */
    uint16_t port;  /* peer port, network order */
    uint8_t addr[16];
    uint32_t linger_until;  /* ms (CLOCK_MONOTONIC, mod 2^32) while lingering */
    uint32_t last_in;       /* ms (mod 2^32) of the last byte read */
    uint32_t last_out;      /* ms (mod 2^32) of the last byte the peer took, or
                               of output becoming pending */
    uint32_t partial_since; /* ms (mod 2^32) when the pending input began */
    weft_ring in, out;
    struct wk_worker *w;
    void *ud;
    struct weft_conn *next_ready;  /* ready list, or the slab's free list */
    struct weft_conn *next_flush;  /* flush list */
    struct weft_conn *next_closed; /* closed this turn, awaiting reaping */
    tw_node tmr;                   /* the timeouts' single lazy timer */
    struct weft_timer *timers;     /* the handler's timers of this connection */
};

/* A handler timer (weft_timer_*); on its conn's or its worker's list. */
struct weft_timer {
    tw_node node;
    struct wk_worker *w;
    weft_conn *conn;                  /* NULL for a worker timer */
    struct weft_timer *next, **pprev; /* the owner's list */
    weft_timer_fn fn;
    void *arg;
    uint32_t every_ms;
    int firing; /* inside fn: a cancel is deferred to its return */
    int cancelled;
};

/* A FIFO of connections, linked through one of the two next pointers. */
typedef struct conn_list {
    weft_conn *head, *tail;
} conn_list;

#define WK_SLAB_CHUNK 256 /* connections per slab chunk (32 KiB) */

typedef struct wk_worker {
    st_worker st; /* first: the cache-line-aligned counters */
    struct weft_server *srv;
    int index;
    int cpu;  /* -1 when not pinned */
    int node; /* -1 when unknown */
    int epfd;
    inbox inbox;
    pthread_t tid;
    arena arena;
    pool pool;

    /* The slab: chunks of WK_SLAB_CHUNK connections, never moved. */
    weft_conn **chunks;
    uint32_t nchunks, chunks_cap;
    weft_conn *free_conns;
    uint32_t nconns; /* open connections */

    conn_list ready;            /* input to continue (next_ready) */
    conn_list flush;            /* output to write this turn (next_flush) */
    weft_conn *closed;          /* closed, slot freed once off every list (next_closed) */
    conn_list linger;           /* lingering closes, oldest first (next_closed) */
    conn_list starved;          /* waiting for ring memory (next_ready) */
    conn_list deferred;         /* used a whole read budget: bulk, run a few
                                   per turn after fresh input (next_ready) */
    tw_wheel conn_wheel;        /* connection timeouts (tmr) */
    tw_wheel user_wheel;        /* handler timers */
    int64_t now_ms;             /* CLOCK_MONOTONIC ms, read once per turn */
    int timeouts;               /* any connection timeout is configured */
    unsigned to_closes;         /* timeout closes this turn (bounded) */
    struct weft_timer *wtimers; /* the handler's worker timers */

    int inbox_woken;     /* the eventfd fired this turn */
    int timing;          /* record turn latencies (stats are on) */
    int stopping;        /* shutdown in progress */
    int64_t deadline_ms; /* shutdown deadline, CLOCK_MONOTONIC */
    int err;             /* fatal error of this worker, negative errno */
    int started;         /* atomic: placed, arena created (or failed: err) */
    int exited;          /* atomic: the loop has ended */
    int posting;         /* atomic: weft_post calls between check and push */
} wk_worker;

struct weft_server {
    weft_config cfg;
    weft_handler h;
    void *ud;
    int nworkers;
    int max_conns;
    int cpus[WEFT_MAX_CPUS];
    int ncpus;
    wk_worker **workers;

    int lfd;          /* listening socket */
    uint16_t port;    /* bound port */
    int stop_efd;     /* written by weft_server_stop */
    int reserve_fd;   /* spare fd released on EMFILE (see acceptor.c) */
    int stopping;     /* atomic: weft_server_stop was called */
    int workers_stop; /* atomic: the acceptor has stopped; workers drain */
    int started, joined;
    pthread_t acceptor_tid;
    st_acceptor ast;
    st_endpoints est; /* the stats thread's counters (that thread writes them) */

    /* Handler-defined counters (fixed once started). */
    int ncounters;
    char *counter_names[WEFT_MAX_COUNTERS];
    char *counter_help[WEFT_MAX_COUNTERS];
    struct st_service *stats;      /* NULL when stats are off */
    uint64_t *handed;              /* per worker: connections handed (acceptor only) */
    int64_t lim_last[LIM_KINDS];   /* wlog_limit: last report per kind (ms, atomic) */
    uint64_t lim_quiet[LIM_KINDS]; /* wlog_limit: hits since that report (atomic) */
};

#endif
