/*
 * tools/hist.c — the load generator's latency histogram (see hist.h); the
 * bucket geometry is stats/hist.c's.
 */
#include "tools/hist.h"

#include <string.h>

void lh_init(lhist *h) { memset(h, 0, sizeof(*h)); }

void lh_record(lhist *h, uint64_t v)
{
    if (v > LH_MAX_VALUE) {
        v = LH_MAX_VALUE;
        h->clamped++;
    }
    h->counts[hist_index(v)]++;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += (double)v;
}

void lh_merge(lhist *dst, const lhist *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
}

uint64_t lh_percentile(const lhist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p < 0)
        p = 0;
    if (p > 100)
        p = 100;
    /* Rank by the nearest-rank definition; the small epsilon keeps p=99.9 of
     * 1000 values at rank 999 despite binary rounding of 0.999 * 1000. */
    double want = p / 100.0 * (double)h->count - 1e-9;
    uint64_t rank = want <= 1 ? 1 : (uint64_t)want + ((double)(uint64_t)want < want);
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist_bucket_high(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double lh_mean(const lhist *h) { return h->count ? h->sum / (double)h->count : 0.0; }
