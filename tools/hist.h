/*
 * tools/hist.h — the load generator's latency histogram.
 *
 * The bucket geometry is the stats histogram's (stats/hist.h, in the manner
 * of HdrHistogram): values below HIST_SUB each have their own bucket; above
 * that, every power of two [2^e, 2^(e+1)) is split into HIST_SUB equal
 * buckets, so a bucket is never wider than 1/128 of its lowest value and any
 * value reported for a percentile is within 0.8% of the sample it stands for.
 * On top of it this keeps what a load report needs: the minimum, a clamp at
 * LH_MAX_VALUE (60 s in ns; larger values are recorded as LH_MAX_VALUE and
 * counted in `clamped`), a floating sum for the mean, and nearest-rank
 * percentiles bounded by min and max. The whole histogram is one fixed-size
 * struct (about 31 KiB): recording never allocates, and one histogram per
 * thread is merged at the end.
 *
 * Not thread-safe: one writer per histogram, merge after the writers stop.
 */
#ifndef WEFT_TOOLS_HIST_H
#define WEFT_TOOLS_HIST_H

#include <stdint.h>

#include "stats/hist.h"

/* 60 s in nanoseconds (below 2^36, inside the geometry's range). */
#define LH_MAX_VALUE 60000000000ULL

typedef struct lhist {
    uint64_t count;   /* values recorded */
    uint64_t min;     /* smallest value recorded (after clamping); 0 when empty */
    uint64_t max;     /* largest value recorded (after clamping); 0 when empty */
    uint64_t clamped; /* values above LH_MAX_VALUE, recorded as LH_MAX_VALUE */
    double sum;       /* for the mean; a double because 60 s x 10^9 overflows u64 */
    uint64_t counts[HIST_BUCKETS];
} lhist;

/* Empties h. */
void lh_init(lhist *h);

/* Records one value; never fails, never allocates. */
void lh_record(lhist *h, uint64_t v);

/* Adds every value recorded in src to dst (src is unchanged). */
void lh_merge(lhist *dst, const lhist *src);

/*
 * The value at percentile p (0..100): the recorded value of rank
 * ceil(p/100 * count) (at least 1) in sorted order, reported as the highest
 * value of its bucket but never above max nor below min, so p=100 is the
 * exact max. Within 1/128 of the true sample. 0 when h is empty.
 */
uint64_t lh_percentile(const lhist *h, double p);

/* Arithmetic mean of the recorded values; 0 when empty. */
double lh_mean(const lhist *h);

#endif
