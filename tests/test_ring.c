/*
 * tests/test_ring.c — buffers/ring.c: the byte ring.
 *
 * Directed tests pin down each promise of ring.h and the weft_ring_* part of
 * weft.h (wrap-around, full/empty, find/copyout/peek across the wrap,
 * relocate, swap); a seeded random test then runs every operation against a plain-array model.
 * Every ring's storage sits between canary bytes, so an overrun fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buffers/ring.h"
#include "weft/weft.h"

#include "ring_helpers.h"

/* --- empty, full, wrap-around ----------------------------------------------- */

static void test_attach_empty(void **state)
{
    (void)state;
    weft_ring r;
    char *buf = gbuf_new(16);
    ring_attach(&r, buf, 16);
    assert_ptr_equal(r.buf, buf);
    assert_int_equal(r.cap, 16);
    assert_int_equal(weft_ring_len(&r), 0);
    assert_int_equal(ring_space(&r), 16);
    struct iovec iov[2];
    assert_int_equal(weft_ring_peek(&r, iov), 0);
    assert_int_equal(weft_ring_find(&r, 0, 0xEE), -1);
    char c = 'x';
    assert_int_equal(weft_ring_copyout(&r, 0, &c, 1), 0);
    assert_int_equal(c, 'x');
    /* All free space in one segment from the start of the storage. */
    assert_int_equal(ring_free_segs(&r, iov, 100), 1);
    assert_ptr_equal(iov[0].iov_base, buf);
    assert_int_equal(iov[0].iov_len, 16);
    ring_free(&r);
}

static void test_detach(void **state)
{
    (void)state;
    weft_ring r;
    char *buf = gbuf_new(32);
    ring_attach(&r, buf, 32);
    ring_append(&r, "hello", 5);
    assert_ptr_equal(ring_detach(&r), buf);
    assert_null(r.buf);
    assert_int_equal(r.cap, 0);
    assert_int_equal(weft_ring_len(&r), 0);
    assert_int_equal(ring_space(&r), 0);
    struct iovec iov[2];
    assert_int_equal(weft_ring_peek(&r, iov), 0);
    assert_int_equal(ring_free_segs(&r, iov, 64), 0);
    assert_int_equal(weft_ring_find(&r, 0, 'h'), -1);
    assert_null(ring_detach(&r));
    gbuf_free(buf, 32);
}

static void test_full(void **state)
{
    (void)state;
    /* Full at several starting offsets, including ones that wrap. */
    for (uint32_t start = 0; start < 16; start++) {
        weft_ring r;
        ring_new_at(&r, 16, start);
        unsigned char want[16];
        fill_pattern(want, 16, start);
        ring_append(&r, want, 16);
        expect_contents(&r, want, 16);
        assert_int_equal(ring_space(&r), 0);
        struct iovec iov[2];
        assert_int_equal(ring_free_segs(&r, iov, 16), 0);
        assert_int_equal(weft_ring_peek(&r, iov), start == 0 ? 1 : 2);
        /* Drain it; an emptied ring rewinds to the start of its storage. */
        weft_ring_consume(&r, 5);
        expect_contents(&r, want + 5, 11);
        assert_int_equal(ring_space(&r), 5);
        weft_ring_consume(&r, 11);
        expect_contents(&r, NULL, 0);
        assert_int_equal(r.head, 0);
        assert_int_equal(r.tail, 0);
        ring_free(&r);
    }
}

static void test_wraparound(void **state)
{
    (void)state;
    weft_ring r;
    ring_new_at(&r, 16, 0);
    /* Keep 0..15 bytes in flight while pushing 10,000 bytes through. */
    unsigned char model[16];
    size_t mlen = 0;
    unsigned next_in = 0;
    for (int step = 0; step < 2000; step++) {
        size_t add = (size_t)(step % 7) + 1;
        if (add > ring_space(&r))
            add = ring_space(&r);
        unsigned char tmp[16];
        for (size_t i = 0; i < add; i++)
            tmp[i] = (unsigned char)(next_in + i);
        next_in += (unsigned)add;
        ring_append(&r, tmp, add);
        memcpy(model + mlen, tmp, add);
        mlen += add;
        expect_contents(&r, model, mlen);
        size_t take = (size_t)(step % 5) + 1;
        if (take > mlen)
            take = mlen;
        weft_ring_consume(&r, take);
        memmove(model, model + take, mlen - take);
        mlen -= take;
        expect_contents(&r, model, mlen);
    }
    ring_free(&r);
}

/* The free-running counters cross 2^32 without changing what the ring holds. */
static void test_counter_wrap(void **state)
{
    (void)state;
    weft_ring r;
    ring_new_at(&r, 64, UINT32_MAX - 20);
    unsigned char want[64];
    fill_pattern(want, 64, 3);
    ring_append(&r, want, 40); /* tail crosses 2^32 */
    assert_true(r.tail < r.head);
    expect_contents(&r, want, 40);
    assert_int_equal(weft_ring_find(&r, 0, want[30]), 30);
    ring_append(&r, want + 40, 24);
    expect_contents(&r, want, 64);
    assert_int_equal(ring_space(&r), 0);
    weft_ring_consume(&r, 30); /* head crosses 2^32 */
    expect_contents(&r, want + 30, 34);
    ring_free(&r);
}

/* --- find ---------------------------------------------------------------- */

static void test_find_across_wrap(void **state)
{
    (void)state;
    weft_ring r;
    /* Storage index of the head is 10: offsets 0..5 are at the end of the
     * storage, 6..15 at its start. */
    ring_new_at(&r, 16, 10);
    const char *s = "abcdef\nhij\nlm\0o\xff";
    ring_append(&r, s, 16);
    struct iovec iov[2];
    assert_int_equal(weft_ring_peek(&r, iov), 2);
    assert_int_equal(iov[0].iov_len, 6);

    assert_int_equal(weft_ring_find(&r, 0, 'a'), 0);
    assert_int_equal(weft_ring_find(&r, 0, 'f'), 5);     /* last before the wrap */
    assert_int_equal(weft_ring_find(&r, 0, '\n'), 6);    /* first after the wrap */
    assert_int_equal(weft_ring_find(&r, 0, 'j'), 9);     /* only after the wrap */
    assert_int_equal(weft_ring_find(&r, 0, 0xff), 15);   /* the last byte */
    assert_int_equal(weft_ring_find(&r, 0, '\0'), 13);   /* NUL is a byte like any */
    assert_int_equal(weft_ring_find(&r, 0, 'z'), -1);    /* absent */
    assert_int_equal(weft_ring_find(&r, 3, 'a'), -1);    /* only before from */
    assert_int_equal(weft_ring_find(&r, 5, 'f'), 5);     /* from is a hit */
    assert_int_equal(weft_ring_find(&r, 6, '\n'), 6);    /* from at the wrap */
    assert_int_equal(weft_ring_find(&r, 7, '\n'), 10);   /* second one */
    assert_int_equal(weft_ring_find(&r, 11, '\n'), -1);  /* past both */
    assert_int_equal(weft_ring_find(&r, 2, '\n'), 6);    /* from in the 1st seg */
    assert_int_equal(weft_ring_find(&r, 8, 'o'), 14);    /* from in the 2nd seg */
    assert_int_equal(weft_ring_find(&r, 15, 0xff), 15);  /* from = len - 1 */
    assert_int_equal(weft_ring_find(&r, 16, 'a'), -1);   /* from = len */
    assert_int_equal(weft_ring_find(&r, 1000, 'a'), -1); /* from > len */

    /* Bytes in the free space are never found. */
    weft_ring_consume(&r, 8);
    assert_int_equal(weft_ring_find(&r, 0, 'a'), -1);
    assert_int_equal(weft_ring_find(&r, 0, '\n'), 2);
    assert_int_equal(weft_ring_find(&r, 0, 0xff), 7);
    ring_free(&r);

    /* A partly filled wrapped ring: stale bytes after the tail don't count. */
    ring_new_at(&r, 16, 12);
    ring_append(&r, "wxyz12", 6); /* wxyz at 12..15, 12 at 0..1 */
    r.buf[5] = '!';               /* free space */
    assert_int_equal(weft_ring_find(&r, 0, '!'), -1);
    assert_int_equal(weft_ring_find(&r, 0, '2'), 5);
    assert_int_equal(weft_ring_find(&r, 4, 'w'), -1);
    ring_free(&r);
}

/* --- copyout -------------------------------------------------------------- */

static void test_copyout_across_wrap(void **state)
{
    (void)state;
    weft_ring r;
    ring_new_at(&r, 32, 20);
    unsigned char want[32];
    fill_pattern(want, 32, 11);
    ring_append(&r, want, 30); /* 12 bytes at the end, 18 at the start */
    for (size_t off = 0; off <= 32; off++) {
        for (size_t n = 0; n <= 34; n++) {
            unsigned char dst[40];
            memset(dst, 0x33, sizeof(dst));
            size_t expect = off >= 30 ? 0 : (n < 30 - off ? n : 30 - off);
            assert_int_equal(weft_ring_copyout(&r, off, dst, n), expect);
            if (expect)
                assert_memory_equal(dst, want + off, expect);
            for (size_t i = expect; i < sizeof(dst); i++)
                assert_int_equal(dst[i], 0x33);
        }
    }
    /* Copying out consumes nothing. */
    expect_contents(&r, want, 30);
    ring_free(&r);
}

/* --- peek and free segments ------------------------------------------------ */

static void test_peek_segments(void **state)
{
    (void)state;
    weft_ring r;
    struct iovec iov[2];

    /* Contiguous in the middle. */
    ring_new_at(&r, 16, 3);
    ring_append(&r, "abcde", 5);
    assert_int_equal(weft_ring_peek(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, r.buf + 3);
    assert_int_equal(iov[0].iov_len, 5);
    ring_free(&r);

    /* Ending exactly at the end of the storage: still one segment. */
    ring_new_at(&r, 16, 11);
    ring_append(&r, "abcde", 5);
    assert_int_equal(weft_ring_peek(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, r.buf + 11);
    assert_int_equal(iov[0].iov_len, 5);
    /* ...and the free space is one segment at the start. */
    assert_int_equal(ring_free_segs(&r, iov, 64), 1);
    assert_ptr_equal(iov[0].iov_base, r.buf);
    assert_int_equal(iov[0].iov_len, 11);
    ring_free(&r);

    /* One byte over the end: two segments. */
    ring_new_at(&r, 16, 12);
    ring_append(&r, "abcde", 5);
    assert_int_equal(weft_ring_peek(&r, iov), 2);
    assert_ptr_equal(iov[0].iov_base, r.buf + 12);
    assert_int_equal(iov[0].iov_len, 4);
    assert_ptr_equal(iov[1].iov_base, r.buf);
    assert_int_equal(iov[1].iov_len, 1);
    assert_memory_equal(iov[0].iov_base, "abcd", 4);
    assert_memory_equal(iov[1].iov_base, "e", 1);
    /* Free space is the 11 bytes between them: one segment. */
    assert_int_equal(ring_free_segs(&r, iov, 64), 1);
    assert_ptr_equal(iov[0].iov_base, r.buf + 1);
    assert_int_equal(iov[0].iov_len, 11);
    ring_free(&r);
}

static void test_free_segs_produce(void **state)
{
    (void)state;
    weft_ring r;
    struct iovec iov[2];
    ring_new_at(&r, 16, 6);
    ring_append(&r, "0123", 4); /* data at 6..9, free 10..15 and 0..5 */

    assert_int_equal(ring_free_segs(&r, iov, 0), 0);
    assert_int_equal(ring_free_segs(&r, iov, 3), 1);
    assert_ptr_equal(iov[0].iov_base, r.buf + 10);
    assert_int_equal(iov[0].iov_len, 3);
    assert_int_equal(ring_free_segs(&r, iov, 6), 1);
    assert_int_equal(iov[0].iov_len, 6);
    assert_int_equal(ring_free_segs(&r, iov, 7), 2);
    assert_int_equal(iov[0].iov_len, 6);
    assert_ptr_equal(iov[1].iov_base, r.buf);
    assert_int_equal(iov[1].iov_len, 1);
    assert_int_equal(ring_free_segs(&r, iov, SIZE_MAX), 2);
    assert_int_equal(iov[0].iov_len, 6);
    assert_int_equal(iov[1].iov_len, 6);

    /* Write into both segments and produce part of the second. */
    memcpy(iov[0].iov_base, "456789", 6);
    memcpy(iov[1].iov_base, "ABCDEF", 6);
    ring_produce(&r, 9);
    expect_contents(&r, "0123456789ABC", 13);
    assert_int_equal(ring_free_segs(&r, iov, SIZE_MAX), 1);
    assert_ptr_equal(iov[0].iov_base, r.buf + 3);
    assert_int_equal(iov[0].iov_len, 3);
    ring_free(&r);
}

/* --- relocate and swap ------------------------------------------------------ */

static void test_relocate(void **state)
{
    (void)state;
    unsigned char want[64];
    fill_pattern(want, 64, 29);

    /* A full, wrapped ring moves to a larger buffer, in order, at its start. */
    weft_ring r;
    ring_new_at(&r, 16, 9);
    ring_append(&r, want, 16);
    char *old = r.buf;
    char *nb = gbuf_new(64);
    assert_ptr_equal(ring_relocate(&r, nb, 64), old);
    assert_ptr_equal(r.buf, nb);
    assert_int_equal(r.cap, 64);
    assert_int_equal(r.head, 0);
    expect_contents(&r, want, 16);
    gbuf_free(old, 16);
    /* The ring keeps working in the new storage. */
    ring_append(&r, want + 16, 48);
    expect_contents(&r, want, 64);
    weft_ring_consume(&r, 60);
    expect_contents(&r, want + 60, 4);
    ring_free(&r);

    /* Shrinking to exactly the length held. */
    ring_new_at(&r, 64, 50);
    ring_append(&r, want, 32);
    weft_ring_consume(&r, 16); /* 16 bytes, wrapped */
    old = r.buf;
    nb = gbuf_new(16);
    assert_ptr_equal(ring_relocate(&r, nb, 16), old);
    expect_contents(&r, want + 16, 16);
    assert_int_equal(ring_space(&r), 0);
    gbuf_free(old, 64);
    ring_free(&r);

    /* An empty ring. */
    ring_new_at(&r, 16, 7);
    old = r.buf;
    nb = gbuf_new(32);
    assert_ptr_equal(ring_relocate(&r, nb, 32), old);
    expect_contents(&r, NULL, 0);
    assert_int_equal(ring_space(&r), 32);
    gbuf_free(old, 16);
    ring_free(&r);
}

static void test_swap(void **state)
{
    (void)state;
    weft_ring a, b;
    ring_new_at(&a, 16, 14);
    ring_new_at(&b, 64, 0);
    ring_append(&a, "wrapped!", 8);
    ring_append(&b, "plain", 5);
    char *abuf = a.buf, *bbuf = b.buf;
    ring_swap(&a, &b);
    assert_ptr_equal(a.buf, bbuf);
    assert_ptr_equal(b.buf, abuf);
    assert_int_equal(a.cap, 64);
    assert_int_equal(b.cap, 16);
    expect_contents(&a, "plain", 5);
    expect_contents(&b, "wrapped!", 8);
    /* Both keep working after the swap. */
    ring_append(&b, "++", 2);
    expect_contents(&b, "wrapped!++", 10);
    weft_ring_consume(&a, 2);
    expect_contents(&a, "ain", 3);
    /* Swapping with a detached ring hands the storage over. */
    weft_ring d;
    memset(&d, 0, sizeof(d));
    ring_swap(&a, &d);
    assert_null(a.buf);
    assert_int_equal(weft_ring_len(&a), 0);
    expect_contents(&d, "ain", 3);
    ring_free(&b);
    ring_free(&d);
}

/* --- randomized, against a model ------------------------------------------- */

typedef struct model {
    unsigned char *data; /* the bytes held, front first */
    size_t len;
    uint32_t cap;
} model;

#define MAXCAP (1u << 15)
static const unsigned char alphabet[] = {0, 1, 'a', '\n', '\r', 0x7f, 0x80, 0xff};

static unsigned char rnd_byte(void) { return alphabet[rnd() % sizeof(alphabet)]; }

static long model_find(const model *m, size_t from, int c)
{
    for (size_t i = from; i < m->len; i++)
        if (m->data[i] == (unsigned char)c)
            return (long)i;
    return -1;
}

static void model_check(const weft_ring *r, const model *m)
{
    assert_int_equal(r->cap, m->cap);
    expect_contents(r, m->data, m->len);
}

static void op_append(weft_ring *r, model *m)
{
    size_t n;
    switch (rnd() % 4) {
    case 0:
        n = ring_space(r); /* fill up */
        break;
    case 1:
        n = rnd_upto(ring_space(r) < 3 ? ring_space(r) : 3);
        break;
    default:
        n = rnd_upto(ring_space(r));
    }
    unsigned char tmp[MAXCAP];
    for (size_t i = 0; i < n; i++)
        tmp[i] = rnd_byte();
    ring_append(r, tmp, n);
    memcpy(m->data + m->len, tmp, n);
    m->len += n;
}

static void op_produce(weft_ring *r, model *m)
{
    size_t max = rnd() % 3 == 0 ? SIZE_MAX : rnd_upto(m->cap + 4);
    struct iovec iov[2];
    int k = ring_free_segs(r, iov, max);
    size_t space = m->cap - m->len;
    size_t expect = space < max ? space : max;
    size_t total = 0;
    assert_true(k >= 0 && k <= 2);
    assert_true((k == 0) == (expect == 0));
    for (int i = 0; i < k; i++) {
        char *b = iov[i].iov_base;
        assert_true(iov[i].iov_len > 0);
        assert_true(b >= r->buf && b + iov[i].iov_len <= r->buf + r->cap);
        /* The free space starts at the tail and wraps to the storage start. */
        if (i == 0)
            assert_ptr_equal(b, r->buf + (r->tail & (r->cap - 1)));
        else
            assert_ptr_equal(b, r->buf);
        for (size_t j = 0; j < iov[i].iov_len; j++) {
            unsigned char c = rnd_byte();
            b[j] = (char)c;
            m->data[m->len + total + j] = c; /* provisional */
        }
        total += iov[i].iov_len;
    }
    assert_int_equal(total, expect);
    size_t n = rnd() % 2 ? total : rnd_upto(total);
    ring_produce(r, n);
    m->len += n;
}

static void op_consume(weft_ring *r, model *m)
{
    size_t n = rnd() % 4 == 0 ? m->len : rnd_upto(m->len);
    weft_ring_consume(r, n);
    memmove(m->data, m->data + n, m->len - n);
    m->len -= n;
    if (m->len == 0) {
        assert_int_equal(r->head, 0);
        assert_int_equal(r->tail, 0);
    }
}

static void op_find(const weft_ring *r, const model *m)
{
    for (int t = 0; t < 4; t++) {
        size_t from = rnd() % 4 == 0 ? 0 : rnd_upto(m->len + 2);
        int c = rnd_byte();
        assert_int_equal(weft_ring_find(r, from, c), model_find(m, from, c));
    }
}

static void op_copyout(const weft_ring *r, const model *m)
{
    static unsigned char dst[MAXCAP + 16];
    size_t off = rnd_upto(m->len + 2);
    size_t n = rnd_upto(m->cap + 2);
    memset(dst, 0x42, n + 16);
    size_t expect = off >= m->len ? 0 : (n < m->len - off ? n : m->len - off);
    assert_int_equal(weft_ring_copyout(r, off, dst, n), expect);
    if (expect)
        assert_memory_equal(dst, m->data + off, expect);
    for (size_t i = expect; i < n + 16; i++)
        assert_int_equal(dst[i], 0x42);
}

static void op_relocate(weft_ring *r, model *m, uint32_t base)
{
    uint32_t newcap = base;
    while (newcap < m->len)
        newcap <<= 1;
    /* Sometimes grow by a step, within the model's bound. */
    if (rnd() % 2 && newcap < 4 * base && newcap < MAXCAP)
        newcap <<= 1;
    char *nb = gbuf_new(newcap);
    char *old = r->buf;
    uint32_t oldcap = r->cap;
    assert_ptr_equal(ring_relocate(r, nb, newcap), old);
    assert_ptr_equal(r->buf, nb);
    gbuf_free(old, oldcap);
    m->cap = newcap;
}

/* Shift both counters by a multiple of cap: same layout, new counter values
 * (so they cross 2^32 now and then). */
static void op_rebase(weft_ring *r, const model *m)
{
    uint32_t shift = (uint32_t)rnd() & ~(m->cap - 1);
    if (m->len == 0)
        shift = (uint32_t)rnd(); /* an empty ring may start anywhere */
    r->head += shift;
    r->tail += shift;
}

static void run_model(uint32_t cap, unsigned ops, uint64_t seed)
{
    rng_state = seed;
    weft_ring r[2];
    model m[2];
    for (int i = 0; i < 2; i++) {
        ring_new_at(&r[i], cap, (uint32_t)rnd());
        m[i].data = malloc(MAXCAP);
        assert_non_null(m[i].data);
        m[i].len = 0;
        m[i].cap = cap;
    }
    for (unsigned op = 0; op < ops; op++) {
        int w = rnd() % 8 == 0; /* mostly ring 0 */
        weft_ring *rr = &r[w];
        model *mm = &m[w];
        unsigned what = (unsigned)(rnd() % 100);
        if (what < 25)
            op_append(rr, mm);
        else if (what < 45)
            op_produce(rr, mm);
        else if (what < 70)
            op_consume(rr, mm);
        else if (what < 82)
            op_find(rr, mm);
        else if (what < 92)
            op_copyout(rr, mm);
        else if (what < 95)
            op_rebase(rr, mm);
        else if (what < 97)
            op_relocate(rr, mm, cap);
        else {
            ring_swap(&r[0], &r[1]);
            model t = m[0];
            m[0] = m[1];
            m[1] = t;
        }
        model_check(&r[0], &m[0]);
        model_check(&r[1], &m[1]);
    }
    for (int i = 0; i < 2; i++) {
        ring_free(&r[i]);
        free(m[i].data);
    }
}

static void test_random_model(void **state)
{
    (void)state;
    /* 200k operations over small and large capacities, fixed seeds. */
    static const uint32_t caps[] = {16, 32, 128, 1024, 4096};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        run_model(caps[i], 40000, 0x5eed0000u + caps[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attach_empty),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_counter_wrap),
        cmocka_unit_test(test_find_across_wrap),
        cmocka_unit_test(test_copyout_across_wrap),
        cmocka_unit_test(test_peek_segments),
        cmocka_unit_test(test_free_segs_produce),
        cmocka_unit_test(test_relocate),
        cmocka_unit_test(test_swap),
        cmocka_unit_test(test_random_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
