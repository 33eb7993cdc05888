/*
 * tools/hist.c — log-linear latency histogram (see hist.h for the geometry).
 */
#include "hist.h"

#include <string.h>

void hist_init(hist *h) { memset(h, 0, sizeof(*h)); }

unsigned hist_bucket_index(uint64_t v)
{
    if (v < HIST_SUB_COUNT)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* top bit, >= SUB_BITS */
    unsigned shift = e - HIST_SUB_BITS;
    /* Group e starts at index (e - SUB_BITS + 1) * SUB_COUNT; the sub-bucket is
     * the SUB_BITS bits below the top bit. */
    return ((e - HIST_SUB_BITS + 1) << HIST_SUB_BITS) +
           (unsigned)((v >> shift) & (HIST_SUB_COUNT - 1));
}

uint64_t hist_bucket_low(unsigned i)
{
    if (i < HIST_SUB_COUNT)
        return i;
    unsigned group = i >> HIST_SUB_BITS; /* >= 1 */
    unsigned shift = group - 1;
    uint64_t sub = i & (HIST_SUB_COUNT - 1);
    return (HIST_SUB_COUNT + sub) << shift;
}

uint64_t hist_bucket_high(unsigned i)
{
    if (i < HIST_SUB_COUNT)
        return i;
    unsigned shift = (i >> HIST_SUB_BITS) - 1;
    return hist_bucket_low(i) + (1ULL << shift) - 1;
}

void hist_record(hist *h, uint64_t v)
{
    if (v > HIST_MAX_VALUE) {
        v = HIST_MAX_VALUE;
        h->clamped++;
    }
    h->counts[hist_bucket_index(v)]++;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += (double)v;
}

void hist_merge(hist *dst, const hist *src)
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

uint64_t hist_percentile(const hist *h, double p)
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

double hist_mean(const hist *h) { return h->count ? h->sum / (double)h->count : 0.0; }
