/*
 * stats/hist.h — log-linear latency histograms (HdrHistogram-style).
 *
 * Values are nanoseconds. Below 128 ns each value has its own bucket; above,
 * each power of two [2^e, 2^(e+1)) is split into 128 equal buckets, so a
 * bucket's width is at most 1/128 (0.78%) of its values: about 1% precision
 * from 1 µs to the top of the range, 2^37 ns (137 s; larger values are
 * clamped into the last bucket and still counted in max). 3,968 buckets,
 * 31 KiB a histogram.
 *
 * One thread writes a histogram (relaxed load + store per field, no
 * read-modify-write); any thread may read it or merge it into its own copy.
 */
#ifndef WEFT_STATS_HIST_H
#define WEFT_STATS_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP  36 /* the highest power of two with its own buckets */
#define HIST_BUCKETS  (HIST_SUB + (HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct st_hist {
    uint64_t count;
    uint64_t sum; /* of recorded values, ns (wraps after 584 years of latency) */
    uint64_t max;
    uint64_t b[HIST_BUCKETS];
} st_hist;

/* The bucket of value v. */
static inline unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    if (e > HIST_MAX_EXP)
        return HIST_BUCKETS - 1;
    unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) - HIST_SUB;
    return HIST_SUB + (e - HIST_SUB_BITS) * HIST_SUB + sub;
}

/* The smallest and the largest value that fall in bucket i. */
uint64_t hist_bucket_low(unsigned i);
uint64_t hist_bucket_high(unsigned i);

/* Record v; only the histogram's owner thread may call this. */
static inline void hist_record(st_hist *h, uint64_t v)
{
#define HIST_BUMP(field, n)                                                                        \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
    HIST_BUMP(h->b[hist_index(v)], 1);
    HIST_BUMP(h->count, 1);
    HIST_BUMP(h->sum, v);
    if (v > __atomic_load_n(&h->max, __ATOMIC_RELAXED))
        __atomic_store_n(&h->max, v, __ATOMIC_RELAXED);
#undef HIST_BUMP
}

/* Add src (read with relaxed loads, from any thread) into dst (caller's). */
void hist_merge(st_hist *dst, const st_hist *src);

/*
 * The value at percentile p (0..100): the highest value of the bucket that
 * holds the p-th percentile sample, capped at max; 0 for an empty histogram.
 */
uint64_t hist_percentile(const st_hist *h, double p);

#endif
