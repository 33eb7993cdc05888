/*
 * stats/sampler.h — the registry sampled into snapshots, published with RCU.
 *
 * The sampler owns the registry (which stat blocks exist, stats/snapshot.h)
 * and the current snapshot. One thread, the stats thread, takes the samples
 * and is the only writer of both pointers; it frees a replaced snapshot
 * after a grace period, so a reader on any thread never sees it freed.
 *
 * Threads: sampler_sample and sampler_render on the sampling thread only,
 * between sampler_thread_online and sampler_thread_offline; sampler_copy on
 * any thread (it registers the caller as an RCU reader on first use);
 * sampler_new and sampler_free when no other thread uses the sampler.
 */
#ifndef WEFT_STATS_SAMPLER_H
#define WEFT_STATS_SAMPLER_H

#include "stats/snapshot.h"
#include "weft/weft.h"

typedef struct st_sampler st_sampler;

/*
 * A sampler of reg, which it owns from now on (freed by sampler_free; on
 * failure freed at once). No snapshot exists until the first sample.
 * Returns 0 or -ENOMEM.
 */
int sampler_new(st_registry *reg, st_sampler **out);

/* Unpublish, wait for every reader to finish, free the registry, the
 * current snapshot and sp. NULL is a no-op. */
void sampler_free(st_sampler *sp);

/* Register / unregister the calling thread as the sampling thread. */
void sampler_thread_online(void);
void sampler_thread_offline(void);

/*
 * Take a sample and publish it; the previous one is freed after a grace
 * period (this waits for readers, never for the workers). On ENOMEM the
 * previous sample stays current and the next call tries again.
 */
void sampler_sample(st_sampler *sp);

/*
 * The current snapshot rendered in fmt (malloc'd; free() it), or NULL with
 * *err = -EAGAIN (no sample yet) or -ENOMEM. Sampling thread only.
 */
char *sampler_render(st_sampler *sp, weft_format fmt, int *err);

/*
 * A private copy of the current snapshot (weft_server_snapshot's contract):
 * NULL with *err (if err is not NULL) -EAGAIN before the first sample or
 * -ENOMEM. Any thread but a signal handler.
 */
weft_snapshot *sampler_copy(st_sampler *sp, int *err);

#endif
