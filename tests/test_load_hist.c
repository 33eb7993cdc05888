/*
 * tests/test_load_hist.c — tools/hist.c: weft-load's log-linear histogram.
 *
 * The bucket geometry is checked exhaustively at every power-of-two boundary
 * and on a seeded random sweep (each value lies inside its bucket, buckets are
 * ordered and never wider than 1/128 of their low end). Percentiles are then
 * checked against a reference computed by sorting the samples (nearest-rank
 * definition): the histogram's answer must never be below the true sample and
 * at most 1/128 above it, for several distributions spanning 1 us to 60 s.
 * Merging per-thread histograms must equal recording everything in one.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/hist.h"

/* --- helpers ---------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64*: deterministic, good enough to spread samples. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(void) { return (double)(rng_next() >> 11) / 9007199254740992.0; }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentiles in thousandths of a percent, so the reference rank is exact. */
static const unsigned k_pm[] = {0,     1000,  10000, 25000, 50000, 75000, 90000,
                                99000, 99500, 99900, 99990, 99999, 100000};

/* Reference: the nearest-rank sample of sorted[0..n). */
static uint64_t ref_percentile(const uint64_t *sorted, size_t n, unsigned pm)
{
    uint64_t rank = ((uint64_t)pm * n + 99999) / 100000;
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

/* Records samples[0..n) (clamped as the histogram does), then compares every
 * percentile in k_pm with the sorted reference. */
static void check_against_reference(uint64_t *samples, size_t n)
{
    lhist *h = malloc(sizeof(*h));
    assert_non_null(h);
    lh_init(h);
    for (size_t i = 0; i < n; i++) {
        lh_record(h, samples[i]);
        if (samples[i] > LH_MAX_VALUE)
            samples[i] = LH_MAX_VALUE;
    }
    qsort(samples, n, sizeof(*samples), cmp_u64);
    assert_int_equal(h->count, n);
    assert_int_equal(h->min, samples[0]);
    assert_int_equal(h->max, samples[n - 1]);

    for (size_t i = 0; i < sizeof(k_pm) / sizeof(k_pm[0]); i++) {
        uint64_t want = ref_percentile(samples, n, k_pm[i]);
        uint64_t got = lh_percentile(h, k_pm[i] / 1000.0);
        /* Never below the sample; above it by at most one bucket width,
         * which is <= low/128 <= want/128. */
        if (got < want || (double)(got - want) > (double)want / 128.0)
            fail_msg("p%.3f of %zu samples: histogram %llu, reference %llu", k_pm[i] / 1000.0, n,
                     (unsigned long long)got, (unsigned long long)want);
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)samples[i];
    assert_true(lh_mean(h) > sum / (double)n * 0.999999);
    assert_true(lh_mean(h) < sum / (double)n * 1.000001);
    free(h);
}

/* --- geometry ------------------------------------------------------------- */

static void check_value_in_bucket(uint64_t v)
{
    unsigned i = hist_index(v);
    assert_true(i < HIST_BUCKETS);
    uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
    if (v < lo || v > hi)
        fail_msg("value %llu outside its bucket %u [%llu, %llu]", (unsigned long long)v, i,
                 (unsigned long long)lo, (unsigned long long)hi);
    /* The precision promise: width <= low / 128. */
    assert_true((hi - lo + 1) * HIST_SUB <= (lo < HIST_SUB ? HIST_SUB : lo));
}

static void test_geometry_boundaries(void **state)
{
    (void)state;
    /* Exact below HIST_SUB. */
    for (uint64_t v = 0; v < HIST_SUB; v++) {
        assert_int_equal(hist_index(v), v);
        assert_int_equal(hist_bucket_low((unsigned)v), v);
        assert_int_equal(hist_bucket_high((unsigned)v), v);
    }
    /* Around every power of two up to the range end. */
    for (unsigned e = 1; e <= HIST_MAX_EXP; e++) {
        uint64_t p = 1ULL << e;
        check_value_in_bucket(p - 1);
        check_value_in_bucket(p);
        check_value_in_bucket(p + 1);
        if (p >= HIST_SUB)
            assert_int_equal(hist_index(p), hist_index(p - 1) + 1);
    }
    check_value_in_bucket(LH_MAX_VALUE);
    assert_int_equal(hist_index(LH_MAX_VALUE) < HIST_BUCKETS, 1);
    assert_int_equal(hist_index((1ULL << (HIST_MAX_EXP + 1)) - 1), HIST_BUCKETS - 1);
}

static void test_geometry_contiguous(void **state)
{
    (void)state;
    /* Buckets tile the range: each starts right after the previous ends. */
    for (unsigned i = 1; i < HIST_BUCKETS; i++)
        assert_int_equal(hist_bucket_low(i), hist_bucket_high(i - 1) + 1);
    rng_state = 0x9E3779B97F4A7C15ULL;
    for (int k = 0; k < 200000; k++) {
        uint64_t v = rng_next() % (LH_MAX_VALUE + 1);
        v >>= rng_next() % 36; /* spread over all exponents */
        check_value_in_bucket(v);
    }
}

/* --- percentiles ------------------------------------------------------------ */

static void test_empty(void **state)
{
    (void)state;
    lhist h;
    lh_init(&h);
    assert_int_equal(lh_percentile(&h, 50), 0);
    assert_int_equal(lh_percentile(&h, 100), 0);
    assert_true(lh_mean(&h) == 0.0);
}

static void test_small_exact(void **state)
{
    (void)state;
    /* 1..100: below 128 every value is its own bucket, so percentiles are exact. */
    lhist h;
    lh_init(&h);
    for (uint64_t v = 100; v >= 1; v--)
        lh_record(&h, v);
    assert_int_equal(lh_percentile(&h, 0), 1);
    assert_int_equal(lh_percentile(&h, 1), 1);
    assert_int_equal(lh_percentile(&h, 50), 50);
    assert_int_equal(lh_percentile(&h, 90), 90);
    assert_int_equal(lh_percentile(&h, 99), 99);
    assert_int_equal(lh_percentile(&h, 99.9), 100);
    assert_int_equal(lh_percentile(&h, 100), 100);
    assert_true(lh_mean(&h) == 50.5);
}

static void test_single_value(void **state)
{
    (void)state;
    /* One large value: every percentile is that exact value (clamped to max). */
    lhist h;
    lh_init(&h);
    lh_record(&h, 123456789);
    assert_int_equal(lh_percentile(&h, 0), 123456789);
    assert_int_equal(lh_percentile(&h, 50), 123456789);
    assert_int_equal(lh_percentile(&h, 100), 123456789);
}

static void test_log_uniform(void **state)
{
    (void)state;
    /* 1 us .. 60 s, uniform in log space: every exponent gets samples. */
    size_t n = 200000;
    uint64_t *s = malloc(n * sizeof(*s));
    assert_non_null(s);
    rng_state = 12345;
    for (size_t i = 0; i < n; i++)
        s[i] = (uint64_t)(1000.0 * exp(rng_unit() * log(60e6)));
    check_against_reference(s, n);
    free(s);
}

static void test_bimodal_with_tail(void **state)
{
    (void)state;
    /* A typical loopback latency shape: most near 20 us, some near 2 ms, a
     * thin tail out to seconds, and a few values beyond the 60 s range. */
    size_t n = 100003;
    uint64_t *s = malloc(n * sizeof(*s));
    assert_non_null(s);
    rng_state = 777;
    for (size_t i = 0; i < n; i++) {
        double u = rng_unit();
        if (i % 20000 == 7)
            s[i] = LH_MAX_VALUE + 1 + rng_next() % 1000000000ULL; /* clamped */
        else if (u < 0.9)
            s[i] = 15000 + rng_next() % 10000;
        else if (u < 0.999)
            s[i] = 1500000 + rng_next() % 1000000;
        else
            s[i] = 10000000 + rng_next() % 5000000000ULL;
    }
    check_against_reference(s, n);
    free(s);
}

static void test_few_samples(void **state)
{
    (void)state;
    /* Small n stresses the rank rounding: n = 1..50 random values. */
    uint64_t s[50];
    rng_state = 4242;
    for (size_t n = 1; n <= 50; n++) {
        for (size_t i = 0; i < n; i++)
            s[i] = 1000 + rng_next() % 100000000ULL;
        check_against_reference(s, n);
    }
}

static void test_clamp(void **state)
{
    (void)state;
    lhist h;
    lh_init(&h);
    lh_record(&h, 5);
    lh_record(&h, LH_MAX_VALUE * 3);
    assert_int_equal(h.clamped, 1);
    assert_int_equal(h.max, LH_MAX_VALUE);
    assert_int_equal(lh_percentile(&h, 100), LH_MAX_VALUE);
    assert_int_equal(lh_percentile(&h, 50), 5);
}

static void test_merge(void **state)
{
    (void)state;
    /* Recording into per-thread histograms and merging equals one histogram. */
    lhist *all = malloc(sizeof(lhist)), *a = malloc(sizeof(lhist)), *b = malloc(sizeof(lhist));
    lhist *m = malloc(sizeof(lhist));
    assert_true(all && a && b && m);
    lh_init(all);
    lh_init(a);
    lh_init(b);
    lh_init(m);
    rng_state = 99;
    for (int i = 0; i < 50000; i++) {
        uint64_t v = (rng_next() % 50000000ULL) >> (rng_next() % 20);
        lh_record(all, v);
        lh_record(i % 3 ? a : b, v);
    }
    lh_merge(m, a);
    lh_merge(m, b);
    lhist empty;
    lh_init(&empty);
    lh_merge(m, &empty); /* merging an empty one changes nothing */
    assert_int_equal(m->count, all->count);
    assert_int_equal(m->min, all->min);
    assert_int_equal(m->max, all->max);
    assert_memory_equal(m->counts, all->counts, sizeof(all->counts));
    for (size_t i = 0; i < sizeof(k_pm) / sizeof(k_pm[0]); i++)
        assert_int_equal(lh_percentile(m, k_pm[i] / 1000.0), lh_percentile(all, k_pm[i] / 1000.0));
    free(all);
    free(a);
    free(b);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry_boundaries),
        cmocka_unit_test(test_geometry_contiguous),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_small_exact),
        cmocka_unit_test(test_single_value),
        cmocka_unit_test(test_log_uniform),
        cmocka_unit_test(test_bimodal_with_tail),
        cmocka_unit_test(test_few_samples),
        cmocka_unit_test(test_clamp),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
