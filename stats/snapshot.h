/*
 * stats/snapshot.h — immutable samples of every counter, and their RCU
 * publication.
 *
 * A snapshot is one contiguous allocation (the public weft_snapshot, its
 * worker rows, counter arrays and strings), so a reader's private copy is a
 * memcpy plus a pointer fix-up, and freeing is one free().
 *
 * The registry (which stat blocks exist) and the current snapshot are both
 * published with rcu_assign_pointer and read under rcu_read_lock (liburcu's
 * memb flavor: readers need no signal and no per-loop quiescent state, which
 * suits threads that are not ours). The stats thread is the only writer of
 * both pointers; it frees a replaced snapshot after synchronize_rcu, so no
 * reader can still hold it.
 */
#ifndef WEFT_STATS_SNAPSHOT_H
#define WEFT_STATS_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "stats/counters.h"
#include "weft/weft.h"

/* What the sampler reads: published once the workers run. */
typedef struct st_registry {
    int nworkers;
    const st_worker **blocks;
    const st_acceptor *acc;
    const st_endpoints *ep; /* the stats thread's own counters */
    const int *cpu, *node;
    int ncounters;
    const char *const *names;
    const char *const *help;
    const char *io; /* the I/O backend's name (static) */
    int nlisteners;
    const st_listener *lst[WEFT_MAX_LISTENERS]; /* each listener's counters */
    const char *lname[WEFT_MAX_LISTENERS], *laddr[WEFT_MAX_LISTENERS];
    const uint64_t *llimit[WEFT_MAX_LISTENERS]; /* atomic: (rate << 32) | burst */
    bool ltls[WEFT_MAX_LISTENERS];              /* the listener speaks TLS */
    const char *ktls;                           /* static sentence, or NULL */
} st_registry;

typedef struct st_snap {
    size_t size; /* bytes in this allocation */
    weft_snapshot pub;
    /* followed by the arrays pub points into */
} st_snap;

/*
 * Sample every block of reg into a new snapshot. prev (may be NULL) gives
 * the rates; uptime_s is the time since start. NULL on ENOMEM.
 */
st_snap *snap_take(const st_registry *reg, const st_snap *prev, uint64_t seq, double uptime_s,
                   double interval_s);

/* A private copy of s (one allocation), or NULL on ENOMEM. */
st_snap *snap_copy(const st_snap *s);

/* The st_snap behind a public pointer from snap_copy. */
st_snap *snap_of(const weft_snapshot *pub);

/* Sum one worker block's counters into st (server-wide fields untouched). */
void snap_sum_worker(weft_stats *st, const st_worker *b);

/* Set st's server-wide fields: the acceptor's and the stats thread's counters. */
void snap_server_wide(weft_stats *st, const st_acceptor *acc, const st_endpoints *ep);

#endif
