/*
 * tools/hist.h — the load generator's latency histogram.
 *
 * A log-linear histogram in the manner of HdrHistogram: values below
 * HIST_SUB_COUNT each have their own bucket; above that, every power of two
 * [2^e, 2^(e+1)) is split into HIST_SUB_COUNT equal buckets. A bucket is then
 * never wider than 1/128 of its lowest value, so any value reported for a
 * percentile is within 0.8% of the sample it stands for. Values are plain
 * integers (weft-load records nanoseconds); the range ends at HIST_MAX_VALUE
 * (60 s in ns), and larger values are recorded as HIST_MAX_VALUE and counted
 * in `clamped`. The whole histogram is one fixed-size struct (about 30 KiB):
 * recording never allocates, and one histogram per thread is merged at the end.
 *
 * Not thread-safe: one writer per histogram, merge after the writers stop.
 */
#ifndef WEFT_TOOLS_HIST_H
#define WEFT_TOOLS_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS  7
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)
/* 60 s in nanoseconds; its top bit is bit 35. */
#define HIST_MAX_VALUE 60000000000ULL
#define HIST_MAX_EXP   35
/* Linear range (one "exponent" 0..SUB_BITS-1 as a whole) plus one group of
 * HIST_SUB_COUNT buckets for each exponent SUB_BITS..MAX_EXP. */
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 2) * HIST_SUB_COUNT)

typedef struct hist {
    uint64_t count;   /* values recorded */
    uint64_t min;     /* smallest value recorded (after clamping); 0 when empty */
    uint64_t max;     /* largest value recorded (after clamping); 0 when empty */
    uint64_t clamped; /* values above HIST_MAX_VALUE, recorded as HIST_MAX_VALUE */
    double sum;       /* for the mean; a double because 60 s x 10^9 overflows u64 */
    uint64_t counts[HIST_BUCKETS];
} hist;

/* Empties h. */
void hist_init(hist *h);

/* Records one value; never fails, never allocates. */
void hist_record(hist *h, uint64_t v);

/* Adds every value recorded in src to dst (src is unchanged). */
void hist_merge(hist *dst, const hist *src);

/*
 * The value at percentile p (0..100): the recorded value of rank
 * ceil(p/100 * count) (at least 1) in sorted order, reported as the highest
 * value of its bucket but never above max nor below min, so p=100 is the
 * exact max. Within 1/128 of the true sample. 0 when h is empty.
 */
uint64_t hist_percentile(const hist *h, double p);

/* Arithmetic mean of the recorded values; 0 when empty. */
double hist_mean(const hist *h);

/* Bucket geometry, exposed for the tests: the index a value falls in (for
 * v <= HIST_MAX_VALUE), and the lowest and highest value of bucket i. */
unsigned hist_bucket_index(uint64_t v);
uint64_t hist_bucket_low(unsigned i);
uint64_t hist_bucket_high(unsigned i);

#endif
