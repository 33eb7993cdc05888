/*
 * stats/counters.h — single-writer counters.
 *
 * Each worker owns one cache-line-aligned block and is its only writer; the
 * acceptor owns its own. A writer updates a counter with a relaxed load of
 * its own value and a relaxed store (an ordinary mov on x86: no lock prefix,
 * no read-modify-write), and readers sum the blocks with relaxed loads. A
 * reader may see a block mid-update (counters from slightly different
 * instants) but never a torn or lost count.
 */
#ifndef WEFT_STATS_COUNTERS_H
#define WEFT_STATS_COUNTERS_H

#include <stdint.h>

#include "stats/hist.h"
#include "weft/weft.h"

#define ST_CACHELINE 64

typedef struct st_worker {
    uint64_t opened, closed;
    uint64_t closed_by[WEFT_CLOSE_REASONS];
    uint64_t bytes_in, bytes_out;
    uint64_t reads, writes, eagain;
    uint64_t wakeups, events, deferrals;
    uint64_t bp_pauses, bp_resumes, pool_pauses;
    uint64_t rings_borrowed, rings_returned, ring_allocs, pool_bytes;
    uint64_t handoffs;
    uint64_t outbound, connects;             /* outbound connections opened / connected */
    uint64_t tls_handshakes, tls_resumed;    /* TLS handshakes completed / of them resumed */
    uint64_t closed_lsn[WEFT_MAX_LISTENERS]; /* closes, by the listener that accepted */
    uint64_t user[WEFT_MAX_COUNTERS];        /* handler-defined counters */
    uint64_t conn_state[WEFT_CONN_STATES];   /* gauges: open connections by state (ST_SET) */
    st_hist turn;    /* ns from epoll wake-up to the end of the turn's flush */
    st_hist handler; /* ns, recorded by the handler */
} __attribute__((aligned(ST_CACHELINE))) st_worker;

typedef struct st_acceptor {
    uint64_t accepted, rejected_max, rejected_worker, emfile, shed, errors;
} __attribute__((aligned(ST_CACHELINE))) st_acceptor;

/* One endpoint of the stats thread (the admin socket or the metrics listener). */
typedef struct st_endpoint {
    uint64_t rejected; /* closed at accept: every client slot busy, or out of fds */
    uint64_t timeouts; /* clients closed by a time limit */
    uint64_t emfile;   /* accept(2) failures with EMFILE/ENFILE */
} st_endpoint;

/* The stats thread's counters: it is their only writer. */
typedef struct st_endpoints {
    st_endpoint admin, metrics;
} __attribute__((aligned(ST_CACHELINE))) st_endpoints;

/* One listener's counters; the acceptor thread is the only writer. */
typedef struct st_listener {
    uint64_t accepted, rejected_max, rejected_rate, rejected_source;
} __attribute__((aligned(ST_CACHELINE))) st_listener;

/* Add n to a counter; only the block's owner thread may call this. */
#define ST_ADD(blk, field, n)                                                                      \
    __atomic_store_n(&(blk)->field, __atomic_load_n(&(blk)->field, __ATOMIC_RELAXED) + (n),        \
                     __ATOMIC_RELAXED)
/* Set a gauge; only the block's owner thread may call this. */
#define ST_SET(blk, field, v) __atomic_store_n(&(blk)->field, (v), __ATOMIC_RELAXED)
/* Read a counter from any thread. */
#define ST_GET(blk, field) __atomic_load_n(&(blk)->field, __ATOMIC_RELAXED)

#endif
