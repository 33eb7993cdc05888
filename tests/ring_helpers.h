/*
 * tests/ring_helpers.h — guarded ring storage, a replayable random source
 * and a content check, shared by the tests of buffers/ring.c and of the
 * socket calls that fill and drain rings (workers/io_sock.c).
 *
 * Static functions in a header: each test program includes it once.
 */
#ifndef WEFT_TESTS_RING_HELPERS_H
#define WEFT_TESTS_RING_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buffers/ring.h"
#include "weft/weft.h"

/* --- guarded storage ------------------------------------------------------ */

#define GUARD  64
#define CANARY 0xA5

/* cap bytes of storage with GUARD canary bytes on each side. */
static inline char *gbuf_new(uint32_t cap)
{
    unsigned char *raw = malloc((size_t)cap + 2 * GUARD);
    assert_non_null(raw);
    memset(raw, CANARY, GUARD);
    memset(raw + GUARD, 0xEE, cap);
    memset(raw + GUARD + cap, CANARY, GUARD);
    return (char *)raw + GUARD;
}

static inline void gbuf_check(const char *buf, uint32_t cap)
{
    const unsigned char *raw = (const unsigned char *)buf - GUARD;
    for (size_t i = 0; i < GUARD; i++) {
        if (raw[i] != CANARY)
            fail_msg("canary before storage overwritten at -%zu", GUARD - i);
        if (raw[GUARD + cap + i] != CANARY)
            fail_msg("canary after storage (cap %u) overwritten at +%zu", cap, i);
    }
}

static inline void gbuf_free(char *buf, uint32_t cap)
{
    gbuf_check(buf, cap);
    free(buf - GUARD);
}

/* --- helpers --------------------------------------------------------------- */

static uint64_t rng_state;

static inline uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so a failure replays. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* Uniform in [0, n]. */
static inline size_t rnd_upto(size_t n) { return (size_t)(rnd() % (n + 1)); }

/* A ring with fresh guarded storage whose head and tail both start at pos. */
static inline void ring_new_at(weft_ring *r, uint32_t cap, uint32_t pos)
{
    ring_attach(r, gbuf_new(cap), cap);
    r->head = r->tail = pos;
}

static inline void ring_free(weft_ring *r)
{
    uint32_t cap = r->cap;
    char *b = ring_detach(r);
    if (b)
        gbuf_free(b, cap);
}

/* Append the bytes "0123456789abcdef..." pattern of n bytes starting at k. */
static inline void fill_pattern(unsigned char *dst, size_t n, unsigned k)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (unsigned char)(k + i * 7 + 1);
}

/* Assert that r holds exactly want[0..n) (via peek, copyout and byte). */
static inline void expect_contents(const weft_ring *r, const void *want, size_t n)
{
    assert_int_equal(weft_ring_len(r), n);
    assert_int_equal(ring_space(r), r->cap - n);

    struct iovec iov[2];
    int k = weft_ring_peek(r, iov);
    if (n == 0) {
        assert_int_equal(k, 0);
    } else {
        assert_true(k == 1 || k == 2);
        size_t got = 0;
        for (int i = 0; i < k; i++) {
            const char *b = iov[i].iov_base;
            assert_true(iov[i].iov_len > 0);
            assert_true(b >= r->buf && b + iov[i].iov_len <= r->buf + r->cap);
            assert_memory_equal(b, (const char *)want + got, iov[i].iov_len);
            got += iov[i].iov_len;
        }
        assert_int_equal(got, n);
        /* The first segment starts at the head; a second one means a wrap. */
        assert_ptr_equal(iov[0].iov_base, r->buf + (r->head & (r->cap - 1)));
        if (k == 2) {
            assert_ptr_equal((char *)iov[0].iov_base + iov[0].iov_len, r->buf + r->cap);
            assert_ptr_equal(iov[1].iov_base, r->buf);
        } else {
            assert_true((r->head & (r->cap - 1)) + n <= r->cap);
        }
    }

    if (n > 0) {
        unsigned char *tmp = malloc(n + 8);
        assert_non_null(tmp);
        memset(tmp, 0x5A, n + 8);
        assert_int_equal(weft_ring_copyout(r, 0, tmp, n + 8), n);
        assert_memory_equal(tmp, want, n);
        for (size_t i = n; i < n + 8; i++)
            assert_int_equal(tmp[i], 0x5A);
        free(tmp);
        /* weft_ring_byte at the ends, around the wrap and spread between
         * (every byte would be slow in sanitizer builds; copyout covers all). */
        size_t wrap = r->cap - (r->head & (r->cap - 1));
        size_t at[] = {0, n - 1, wrap - 1, wrap, n / 3, n / 2, 2 * n / 3};
        for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
            if (at[i] < n)
                assert_int_equal(weft_ring_byte(r, at[i]), ((const unsigned char *)want)[at[i]]);
    }
    if (r->buf)
        gbuf_check(r->buf, r->cap);
}

#endif
