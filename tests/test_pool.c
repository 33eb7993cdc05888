/*
 * tests/test_pool.c — buffers/pool.c: a worker's ring storage.
 *
 * Base-size blocks come back from the free list (no allocator call), the
 * free list holds at most cache_bytes / base blocks, other sizes go straight
 * back to the arena, and the four pool counters in st_worker are exact after
 * every call. A seeded random test checks all of it against a model. In ASan
 * builds (-DWEFT_SYSTEM_ALLOC) cached blocks must be poisoned and borrowed
 * ones fully usable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buffers/arena.h"
#include "buffers/pool.h"
#include "stats/counters.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define BASE 4096u

typedef struct fixture {
    arena a;
    st_worker st;
    pool p;
} fixture;

static int setup(void **state)
{
    /* st_worker is cache-line aligned: calloc's alignment is not enough. */
    size_t sz = (sizeof(fixture) + ST_CACHELINE - 1) & ~(size_t)(ST_CACHELINE - 1);
    fixture *f = aligned_alloc(ST_CACHELINE, sz);
    if (!f)
        return -1;
    memset(f, 0, sizeof(*f));
    if (arena_create(&f->a) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    arena_destroy(&f->a);
    free(f);
    return 0;
}

/* The counters the pool owns, and that it leaves every other one alone. */
static void expect_counters(const fixture *f, uint64_t borrowed, uint64_t returned, uint64_t allocs,
                            uint64_t bytes)
{
    assert_int_equal(ST_GET(&f->st, rings_borrowed), borrowed);
    assert_int_equal(ST_GET(&f->st, rings_returned), returned);
    assert_int_equal(ST_GET(&f->st, ring_allocs), allocs);
    assert_int_equal(ST_GET(&f->st, pool_bytes), bytes);
    st_worker other;
    memcpy(&other, &f->st, sizeof(other));
    other.rings_borrowed = other.rings_returned = other.ring_allocs = other.pool_bytes = 0;
    st_worker zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&other, &zero, sizeof(zero));
}

/* Fill a borrowed block end to end (a short block or a poisoned tail fails
 * here), and check the fill before giving it back. */
static void stamp(char *b, uint32_t cap, unsigned id) { memset(b, (int)(id & 0xff), cap); }

static void check_stamp(const char *b, uint32_t cap, unsigned id)
{
    for (uint32_t i = 0; i < cap; i++)
        if ((unsigned char)b[i] != (unsigned char)(id & 0xff))
            fail_msg("block %p (cap %u, id %u) changed at byte %u while borrowed", (void *)b, cap,
                     id, i);
}

static void expect_poisoned(const char *b, uint32_t cap, int poisoned)
{
#ifdef HAVE_ASAN
    /* The link word stays addressable; everything after it is poisoned. */
    if (poisoned) {
        assert_int_equal(
            __asan_region_is_poisoned((void *)(b + sizeof(void *)), cap - sizeof(void *)),
            (uintptr_t)(b + sizeof(void *)));
        assert_true(__asan_address_is_poisoned(b + cap - 1));
    } else {
        assert_null(__asan_region_is_poisoned((void *)b, cap));
    }
#else
    (void)b;
    (void)cap;
    (void)poisoned;
#endif
}

static void test_init(void **state)
{
    fixture *f = *state;
    pool_init(&f->p, &f->a, &f->st, BASE, 4 * BASE);
    assert_int_equal(f->p.base, BASE);
    assert_int_equal(f->p.max_free, 4);
    assert_int_equal(f->p.nfree, 0);
    assert_null(f->p.free_list);
    expect_counters(f, 0, 0, 0, 0);
    pool_destroy(&f->p);
    expect_counters(f, 0, 0, 0, 0);

    /* The budget rounds down to whole blocks. */
    pool_init(&f->p, &f->a, &f->st, BASE, 3 * BASE - 1);
    assert_int_equal(f->p.max_free, 2);
    pool_destroy(&f->p);
}

static void test_reuse_base(void **state)
{
    fixture *f = *state;
    pool_init(&f->p, &f->a, &f->st, BASE, 4 * BASE);

    char *b = pool_get(&f->p, BASE);
    assert_non_null(b);
    stamp(b, BASE, 1);
    expect_counters(f, 1, 0, 1, BASE);
    check_stamp(b, BASE, 1);
    pool_put(&f->p, b, BASE);
    assert_int_equal(f->p.nfree, 1);
    /* Cached memory is still the pool's. */
    expect_counters(f, 1, 1, 1, BASE);
    expect_poisoned(b, BASE, 1);

    /* The same block comes back, without an allocation, usable end to end. */
    for (unsigned i = 0; i < 100; i++) {
        char *c = pool_get(&f->p, BASE);
        assert_ptr_equal(c, b);
        assert_int_equal(f->p.nfree, 0);
        expect_poisoned(c, BASE, 0);
        stamp(c, BASE, i);
        check_stamp(c, BASE, i);
        pool_put(&f->p, c, BASE);
        expect_counters(f, 2 + i, 2 + i, 1, BASE);
    }

    pool_destroy(&f->p);
    assert_int_equal(f->p.nfree, 0);
    assert_null(f->p.free_list);
    expect_counters(f, 101, 101, 1, 0);
}

static void test_cache_limit(void **state)
{
    fixture *f = *state;
    pool_init(&f->p, &f->a, &f->st, BASE, 4 * BASE);

    char *b[6];
    for (unsigned i = 0; i < 6; i++) {
        b[i] = pool_get(&f->p, BASE);
        assert_non_null(b[i]);
        stamp(b[i], BASE, i + 10);
        expect_counters(f, i + 1, 0, i + 1, (uint64_t)(i + 1) * BASE);
    }
    /* All distinct: each kept its own fill. */
    for (unsigned i = 0; i < 6; i++)
        check_stamp(b[i], BASE, i + 10);

    /* The first four returned are cached, the other two go to the arena. */
    for (unsigned i = 0; i < 6; i++) {
        pool_put(&f->p, b[i], BASE);
        unsigned cached = i + 1 < 4 ? i + 1 : 4;
        assert_int_equal(f->p.nfree, cached);
        expect_counters(f, 6, i + 1, 6, (uint64_t)(6 - (i + 1) + cached) * BASE);
    }
    for (unsigned i = 0; i < 4; i++)
        expect_poisoned(b[i], BASE, 1);

    /* Four gets are served from the cache: exactly the four cached blocks. */
    char *c[5];
    for (unsigned i = 0; i < 4; i++) {
        c[i] = pool_get(&f->p, BASE);
        int found = 0;
        for (unsigned j = 0; j < 4; j++)
            found += c[i] == b[j];
        assert_int_equal(found, 1);
        for (unsigned j = 0; j < i; j++)
            assert_ptr_not_equal(c[i], c[j]);
        stamp(c[i], BASE, i + 20);
    }
    expect_counters(f, 10, 6, 6, 4 * BASE);
    assert_int_equal(f->p.nfree, 0);
    /* The fifth allocates. */
    c[4] = pool_get(&f->p, BASE);
    assert_non_null(c[4]);
    stamp(c[4], BASE, 24);
    expect_counters(f, 11, 6, 7, 5 * BASE);
    for (unsigned i = 0; i < 5; i++)
        check_stamp(c[i], BASE, i + 20);

    for (unsigned i = 0; i < 5; i++)
        pool_put(&f->p, c[i], BASE);
    assert_int_equal(f->p.nfree, 4);
    expect_counters(f, 11, 11, 7, 4 * BASE);
    pool_destroy(&f->p);
    expect_counters(f, 11, 11, 7, 0);
}

static void test_other_sizes(void **state)
{
    fixture *f = *state;
    pool_init(&f->p, &f->a, &f->st, BASE, 8 * BASE);

    /* A grown ring's storage is allocated and freed each time, never cached. */
    char *big = pool_get(&f->p, 4 * BASE);
    assert_non_null(big);
    stamp(big, 4 * BASE, 3);
    expect_counters(f, 1, 0, 1, 4 * BASE);
    pool_put(&f->p, big, 4 * BASE);
    assert_int_equal(f->p.nfree, 0);
    expect_counters(f, 1, 1, 1, 0);
    big = pool_get(&f->p, 4 * BASE);
    assert_non_null(big);
    stamp(big, 4 * BASE, 4);
    expect_counters(f, 2, 1, 2, 4 * BASE);

    /* A cached base block is not handed out for a larger size. */
    char *b = pool_get(&f->p, BASE);
    pool_put(&f->p, b, BASE);
    expect_counters(f, 3, 2, 3, 5 * BASE);
    char *big2 = pool_get(&f->p, 2 * BASE);
    assert_non_null(big2);
    assert_ptr_not_equal(big2, b);
    assert_int_equal(f->p.nfree, 1);
    stamp(big2, 2 * BASE, 5);
    expect_counters(f, 4, 2, 4, 7 * BASE);
    check_stamp(big, 4 * BASE, 4);

    pool_put(&f->p, big2, 2 * BASE);
    pool_put(&f->p, big, 4 * BASE);
    assert_int_equal(f->p.nfree, 1);
    expect_counters(f, 4, 4, 4, BASE);
    pool_destroy(&f->p);
    expect_counters(f, 4, 4, 4, 0);
}

static void test_no_cache(void **state)
{
    fixture *f = *state;
    /* A budget under one block caches nothing. */
    pool_init(&f->p, &f->a, &f->st, BASE, BASE - 1);
    assert_int_equal(f->p.max_free, 0);
    for (unsigned i = 0; i < 3; i++) {
        char *b = pool_get(&f->p, BASE);
        assert_non_null(b);
        stamp(b, BASE, i);
        pool_put(&f->p, b, BASE);
        assert_int_equal(f->p.nfree, 0);
        assert_null(f->p.free_list);
        expect_counters(f, i + 1, i + 1, i + 1, 0);
    }
    pool_destroy(&f->p);
    expect_counters(f, 3, 3, 3, 0);
}

/* Small base sizes (down to one pointer's worth of link plus a little). */
static void test_small_base(void **state)
{
    fixture *f = *state;
    pool_init(&f->p, &f->a, &f->st, 16, 64);
    char *b[5];
    for (unsigned i = 0; i < 5; i++) {
        b[i] = pool_get(&f->p, 16);
        assert_non_null(b[i]);
        stamp(b[i], 16, i + 1);
    }
    for (unsigned i = 0; i < 5; i++)
        check_stamp(b[i], 16, i + 1);
    for (unsigned i = 0; i < 5; i++)
        pool_put(&f->p, b[i], 16);
    assert_int_equal(f->p.nfree, 4);
    expect_counters(f, 5, 5, 5, 64);
    for (unsigned i = 0; i < 4; i++) {
        char *c = pool_get(&f->p, 16);
        expect_poisoned(c, 16, 0);
        stamp(c, 16, 0x77);
        b[i] = c;
    }
    expect_counters(f, 9, 5, 5, 64);
    for (unsigned i = 0; i < 4; i++)
        pool_put(&f->p, b[i], 16);
    pool_destroy(&f->p);
    expect_counters(f, 9, 9, 5, 0);
}

/* --- randomized, against a model ------------------------------------------- */

#define MAXOUT 64

typedef struct out_block {
    char *p;
    uint32_t cap;
    unsigned id;
} out_block;

static void test_random_model(void **state)
{
    fixture *f = *state;
    uint64_t s = 0x9001;
    const uint32_t cache_blocks = 5;
    pool_init(&f->p, &f->a, &f->st, BASE, cache_blocks * BASE);

    out_block out[MAXOUT];
    unsigned nout = 0;
    char *cached[8]; /* the model's free list, as a set */
    unsigned ncached = 0;
    uint64_t borrowed = 0, returned = 0, allocs = 0, bytes = 0;
    unsigned next_id = 1;

    for (unsigned op = 0; op < 50000; op++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned r = (unsigned)(s >> 33);
        bool get = nout == 0 || (nout < MAXOUT && (r & 1));
        if (get) {
            /* Mostly base size; sometimes a grown ring. */
            uint32_t cap = (r >> 1) % 4 == 0 ? BASE << (1 + (r >> 3) % 3) : BASE;
            char *b = pool_get(&f->p, cap);
            assert_non_null(b);
            borrowed++;
            if (cap == BASE && ncached > 0) {
                unsigned j = 0;
                while (j < ncached && cached[j] != b)
                    j++;
                if (j == ncached)
                    fail_msg("op %u: pool_get(base) with %u cached returned an uncached block", op,
                             ncached);
                cached[j] = cached[--ncached];
            } else {
                allocs++;
                bytes += cap;
                for (unsigned j = 0; j < ncached; j++)
                    assert_ptr_not_equal(b, cached[j]);
            }
            expect_poisoned(b, cap, 0);
            stamp(b, cap, next_id);
            out[nout++] = (out_block){b, cap, next_id++};
        } else {
            unsigned k = (r >> 1) % nout;
            out_block o = out[k];
            out[k] = out[--nout];
            /* Nothing else wrote into it while it was borrowed. */
            check_stamp(o.p, o.cap, o.id);
            pool_put(&f->p, o.p, o.cap);
            returned++;
            if (o.cap == BASE && ncached < cache_blocks) {
                cached[ncached++] = o.p;
                expect_poisoned(o.p, o.cap, 1);
            } else {
                bytes -= o.cap;
            }
        }
        assert_int_equal(f->p.nfree, ncached);
        expect_counters(f, borrowed, returned, allocs, bytes);
    }
    while (nout > 0) {
        out_block o = out[--nout];
        check_stamp(o.p, o.cap, o.id);
        pool_put(&f->p, o.p, o.cap);
        returned++;
        if (o.cap == BASE && ncached < cache_blocks)
            ncached++;
        else
            bytes -= o.cap;
    }
    expect_counters(f, borrowed, returned, allocs, bytes);
    assert_int_equal(bytes, (uint64_t)ncached * BASE);
    pool_destroy(&f->p);
    expect_counters(f, borrowed, returned, allocs, 0);
    /* Every block borrowed was returned. */
    assert_int_equal(borrowed, returned);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reuse_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
