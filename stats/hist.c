/*
 * stats/hist.c — log-linear latency histograms (see hist.h).
 */
#include "stats/hist.h"

#include <math.h>

uint64_t hist_bucket_low(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned k = (i - HIST_SUB) / HIST_SUB, sub = (i - HIST_SUB) % HIST_SUB;
    return (uint64_t)(HIST_SUB + sub) << k;
}

uint64_t hist_bucket_high(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned k = (i - HIST_SUB) / HIST_SUB;
    return hist_bucket_low(i) + ((uint64_t)1 << k) - 1;
}

void hist_merge(st_hist *dst, const st_hist *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->b[i] += __atomic_load_n(&src->b[i], __ATOMIC_RELAXED);
    dst->count += __atomic_load_n(&src->count, __ATOMIC_RELAXED);
    dst->sum += __atomic_load_n(&src->sum, __ATOMIC_RELAXED);
    uint64_t m = __atomic_load_n(&src->max, __ATOMIC_RELAXED);
    if (m > dst->max)
        dst->max = m;
}

uint64_t hist_percentile(const st_hist *h, double p)
{
    /* Sum the buckets rather than trust count: a concurrent writer may have
     * bumped one and not yet the other. */
    uint64_t total = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        total += h->b[i];
    if (total == 0)
        return 0;
    if (p < 0)
        p = 0;
    if (p > 100)
        p = 100;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)total);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_bucket_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}
