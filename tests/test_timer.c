/*
 * test_timer — workers/timer.c, the hashed timing wheel: entries fire no
 * earlier than asked and within a tick after, in any order of adding,
 * across revolutions and long sleeps; deletion is O(1) and exact; a
 * callback may re-add its own entry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "workers/timer.h"

typedef struct ent {
    tw_node node;
    int64_t when;     /* asked for */
    int64_t fired_at; /* -1 until fired */
    int fires;
    int64_t every; /* re-add after this many ms when > 0 */
} ent;

static int64_t g_now;
static tw_wheel g_w;

static void on_fire(tw_node *n, void *ctx)
{
    (void)ctx;
    ent *e = (ent *)n;
    e->fired_at = g_now;
    e->fires++;
    if (e->every > 0) {
        e->when = g_now + e->every;
        tw_add(&g_w, &e->node, e->when);
    }
}

static void advance_to(int64_t t, int64_t step)
{
    while (g_now < t) {
        g_now += step;
        if (g_now > t)
            g_now = t;
        tw_expire(&g_w, g_now, on_fire, NULL);
    }
}

static void test_fires_in_its_tick(void **state)
{
    (void)state;
    g_now = 1000003;
    tw_init(&g_w, g_now);
    enum { N = 2000 };
    ent *e = calloc(N, sizeof(*e));
    srand(7);
    for (int i = 0; i < N; i++) {
        e[i].when = g_now + rand() % 100000; /* up to 100 s: > 2 revolutions */
        e[i].fired_at = -1;
        tw_add(&g_w, &e[i].node, e[i].when);
    }
    assert_int_equal(g_w.count, N);
    advance_to(g_now + 101000, 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(e[i].fires, 1);
        assert_true(e[i].fired_at >= e[i].when);
        assert_true(e[i].fired_at <= e[i].when + TW_TICK_MS);
    }
    assert_int_equal(g_w.count, 0);
    assert_int_equal(tw_timeout_ms(&g_w, g_now), -1);
    free(e);
}

static void test_delete(void **state)
{
    (void)state;
    g_now = 0;
    tw_init(&g_w, g_now);
    ent a = {.fired_at = -1}, b = {.fired_at = -1}, c = {.fired_at = -1};
    tw_add(&g_w, &a.node, 50);
    tw_add(&g_w, &b.node, 50);                         /* same slot as a */
    tw_add(&g_w, &c.node, 50 + TW_SLOTS * TW_TICK_MS); /* same slot, next revolution */
    assert_true(tw_pending(&b.node));
    tw_del(&g_w, &b.node);
    assert_false(tw_pending(&b.node));
    tw_del(&g_w, &b.node); /* a second delete is a no-op */
    assert_int_equal(g_w.count, 2);
    advance_to(100, 5);
    assert_int_equal(a.fires, 1);
    assert_int_equal(b.fires, 0);
    assert_int_equal(c.fires, 0); /* a revolution later: not yet */
    assert_true(tw_pending(&c.node));
    advance_to(50 + TW_SLOTS * TW_TICK_MS + TW_TICK_MS, 97);
    assert_int_equal(c.fires, 1);
}

static void test_long_sleep_and_past_deadlines(void **state)
{
    (void)state;
    g_now = 5000;
    tw_init(&g_w, g_now);
    ent past = {.fired_at = -1}, far = {.fired_at = -1};
    tw_add(&g_w, &past.node, 10); /* already due: fires on the next tick */
    tw_add(&g_w, &far.node, g_now + 3 * TW_SLOTS * TW_TICK_MS);
    g_now += TW_TICK_MS;
    tw_expire(&g_w, g_now, on_fire, NULL);
    assert_int_equal(past.fires, 1);
    /* One jump over several revolutions still fires it exactly once. */
    g_now += 4 * TW_SLOTS * TW_TICK_MS;
    assert_int_equal(tw_expire(&g_w, g_now, on_fire, NULL), 1);
    assert_int_equal(far.fires, 1);
}

static void test_repeating_and_timeout(void **state)
{
    (void)state;
    g_now = 0;
    tw_init(&g_w, g_now);
    ent r = {.fired_at = -1, .every = 100};
    tw_add(&g_w, &r.node, 100);
    int t = tw_timeout_ms(&g_w, g_now);
    assert_true(t >= 100 && t <= 100 + TW_TICK_MS);
    advance_to(1005, 1);
    assert_int_equal(r.fires, 10);
    tw_del(&g_w, &r.node);
    advance_to(2000, 50);
    assert_int_equal(r.fires, 10);
    assert_int_equal(tw_timeout_ms(&g_w, g_now), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_in_its_tick),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_long_sleep_and_past_deadlines),
        cmocka_unit_test(test_repeating_and_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
