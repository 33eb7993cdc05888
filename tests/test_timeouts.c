/*
 * tests/test_timeouts.c — workers/timeouts.c and workers/user_timers.c:
 * verdicts on connection timeouts, and the handler's timers.
 *
 * The clock is the worker's own turn clock (w->now_ms), set by hand here:
 * to_expire and ut_run read nothing else, so every deadline is exact and no
 * test sleeps. Connections come from the scripted backend.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io_script.h"
#include "workers/conn.h"
#include "workers/timeouts.h"
#include "workers/user_timers.h"

static int g_closes;
static weft_close_reason g_reason;

static void keep_data(weft_conn *c, weft_ring *in)
{
    (void)c;
    (void)in; /* leaves everything: a partial message */
}

static void echo_data(weft_conn *c, weft_ring *in) { weft_send_from(c, in, weft_ring_len(in)); }

static void on_close(weft_conn *c, weft_close_reason why)
{
    (void)c;
    g_closes++;
    g_reason = why;
}

static int setup(void **state)
{
    (void)state;
    sc_reset_all();
    g_closes = 0;
    return 0;
}

static weft_config cfg_with(uint32_t idle, uint32_t in_stall, uint32_t out_stall)
{
    weft_config cfg = weft_config_default();
    cfg.stats_interval_ms = 0;
    cfg.idle_timeout_ms = idle;
    cfg.input_stall_ms = in_stall;
    cfg.output_stall_ms = out_stall;
    cfg.close_linger_ms = 0;
    return cfg;
}

/* Verdicts at `at` ms after t0 (the turn clock). */
static unsigned verdicts_at(sc_world *x, int64_t t0, int64_t at, to_verdict *v)
{
    x->w->now_ms = t0 + at;
    return to_expire(x->w, v, TO_VERDICTS_PER_TURN);
}

/* Idle: no verdict before the deadline, exactly one after, reason timeout. */
static void test_idle_verdict(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = cfg_with(1000, 0, 0);
    weft_handler h = {.on_data = echo_data, .on_close = on_close};
    sc_world_init(&x, &cfg, &h);
    int fd = sc_peer_new(SIZE_MAX);
    weft_conn *c = sc_adopt(&x, fd);
    int64_t t0 = x.w->now_ms;
    to_verdict v[TO_VERDICTS_PER_TURN];
    assert_int_equal(verdicts_at(&x, t0, 990, v), 0);
    assert_int_equal(g_closes, 0);
    assert_int_equal(verdicts_at(&x, t0, 1100, v), 1);
    assert_ptr_equal(v[0].c, c);
    assert_int_equal(v[0].why, WEFT_CLOSE_TIMEOUT);
    /* The verdict decides; nothing closed the connection yet. */
    assert_int_equal(g_closes, 0);
    assert_false(sc_peer_of(fd)->closed);
    conn_expire(x.w, v[0].c, v[0].why);
    assert_int_equal(g_closes, 1);
    assert_int_equal(g_reason, WEFT_CLOSE_TIMEOUT);
    sc_world_free(&x);
}

/* Activity moves the idle deadline: the timer re-arms instead. */
static void test_activity_rearms(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = cfg_with(1000, 0, 0);
    weft_handler h = {.on_data = echo_data, .on_close = on_close};
    sc_world_init(&x, &cfg, &h);
    int fd = sc_peer_new(SIZE_MAX);
    weft_conn *c = sc_adopt(&x, fd);
    int64_t t0 = x.w->now_ms;
    c->last_in = (uint32_t)(t0 + 800); /* a byte arrived at t0 + 800 */
    to_verdict v[TO_VERDICTS_PER_TURN];
    assert_int_equal(verdicts_at(&x, t0, 1100, v), 0);
    assert_int_equal(to_wait_ms(x.w) <= 700 + 10, 1); /* re-armed for t0 + 1800 */
    assert_int_equal(verdicts_at(&x, t0, 1820, v), 1);
    sc_world_free(&x);
}

/* Input stall: from when the partial message began, however many bytes
 * trickle in meanwhile. */
static void test_input_stall_from_start(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = cfg_with(0, 500, 0);
    weft_handler h = {.on_data = keep_data, .on_close = on_close};
    sc_world_init(&x, &cfg, &h);
    int fd = sc_peer_new(SIZE_MAX);
    weft_conn *c = sc_adopt(&x, fd);
    sc_give(fd, "GET /", 5);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_true(c->flags & C_PARTIAL);
    int64_t t0 = (int64_t)c->partial_since;
    /* A byte now and then does not restart the clock. */
    c->last_in = (uint32_t)(t0 + 400);
    to_verdict v[TO_VERDICTS_PER_TURN];
    x.w->now_ms = t0 + 450;
    assert_int_equal(to_expire(x.w, v, TO_VERDICTS_PER_TURN), 0);
    x.w->now_ms = t0 + 520;
    assert_int_equal(to_expire(x.w, v, TO_VERDICTS_PER_TURN), 1);
    assert_int_equal(v[0].why, WEFT_CLOSE_INPUT_STALL);
    conn_expire(x.w, v[0].c, v[0].why);
    assert_int_equal(g_reason, WEFT_CLOSE_INPUT_STALL);
    assert_true(sc_peer_of(fd)->closed);
    sc_world_free(&x);
}

/* Output stall: pending output the peer takes none of, for too long. */
static void test_output_stall(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = cfg_with(0, 0, 300);
    weft_handler h = {.on_data = echo_data, .on_close = on_close};
    sc_world_init(&x, &cfg, &h);
    int fd = sc_peer_new(0);
    weft_conn *c = sc_adopt(&x, fd);
    sc_give(fd, "unread", 6);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(conn_pending_out(c), 6);
    int64_t t0 = x.w->now_ms;
    to_verdict v[TO_VERDICTS_PER_TURN];
    x.w->now_ms = t0 + 250;
    assert_int_equal(to_expire(x.w, v, TO_VERDICTS_PER_TURN), 0);
    x.w->now_ms = t0 + 320;
    assert_int_equal(to_expire(x.w, v, TO_VERDICTS_PER_TURN), 1);
    assert_int_equal(v[0].why, WEFT_CLOSE_OUTPUT_STALL);
    conn_expire(x.w, v[0].c, v[0].why);
    /* A stalled connection closes at once: its output will never arrive. */
    assert_true(sc_peer_of(fd)->closed);
    sc_world_free(&x);
}

/* Connections that time out together get at most TO_VERDICTS_PER_TURN
 * verdicts per turn; the rest come in the next ticks, none lost. */
static void test_verdicts_bounded(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = cfg_with(1000, 0, 0);
    weft_handler h = {.on_data = echo_data, .on_close = on_close};
    sc_world_init(&x, &cfg, &h);
    enum { N = 20 };
    int64_t t0 = 0;
    for (int i = 0; i < N; i++) {
        sc_adopt(&x, sc_peer_new(SIZE_MAX));
        if (i == 0)
            t0 = x.w->now_ms;
    }
    to_verdict v[TO_VERDICTS_PER_TURN];
    unsigned total = 0, turns = 0;
    int64_t at = 1200;
    while (total < N && turns < 10) {
        unsigned n = verdicts_at(&x, t0, at, v);
        assert_true(n <= TO_VERDICTS_PER_TURN);
        for (unsigned i = 0; i < n; i++)
            conn_expire(x.w, v[i].c, v[i].why);
        total += n;
        turns++;
        at += 20; /* the next ticks */
    }
    assert_int_equal(total, N);
    assert_int_equal(turns, 3); /* 8 + 8 + 4 */
    assert_int_equal(g_closes, N);
    sc_world_free(&x);
}

/* ---- handler timers ---------------------------------------------------------- */

static int g_fires;
static weft_timer *g_self;

static void count_fire(weft_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    g_fires++;
}

static void cancel_self(weft_timer *t, void *arg)
{
    (void)arg;
    g_fires++;
    weft_timer_cancel(t);
}

static void close_conn(weft_timer *t, void *arg)
{
    (void)arg;
    g_fires++;
    weft_close(weft_timer_conn(t));
}

static void test_user_timers(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = cfg_with(0, 0, 0);
    weft_handler h = {.on_data = echo_data, .on_close = on_close};
    sc_world_init(&x, &cfg, &h);
    weft_conn *c = sc_adopt(&x, sc_peer_new(SIZE_MAX));
    wk_worker *w = x.w;
    int64_t t0 = w->now_ms;
    g_fires = 0;

    /* One-shot: not before its time, then once. */
    weft_timer *t = weft_conn_timer(c, 100, 0, count_fire, NULL);
    assert_non_null(t);
    assert_ptr_equal(weft_timer_conn(t), c);
    w->now_ms = t0 + 90;
    ut_run(w);
    assert_int_equal(g_fires, 0);
    w->now_ms = t0 + 120;
    ut_run(w);
    assert_int_equal(g_fires, 1);
    w->now_ms = t0 + 500;
    ut_run(w);
    assert_int_equal(g_fires, 1);

    /* Repeating, cancelled from inside its own callback after one fire. */
    g_fires = 0;
    g_self = weft_conn_timer(c, 10, 10, cancel_self, NULL);
    w->now_ms = t0 + 530;
    ut_run(w);
    w->now_ms = t0 + 600;
    ut_run(w);
    assert_int_equal(g_fires, 1);

    /* Repeating: every period, each firing at most a tick (10 ms) late and
     * the next period counted from it: 340 ms hold 5 to 7 firings. */
    g_fires = 0;
    weft_timer *r = weft_conn_timer(c, 50, 50, count_fire, NULL);
    for (int64_t at = 660; at <= 1000; at += 10) {
        w->now_ms = t0 + at;
        ut_run(w);
    }
    assert_true(g_fires >= 5 && g_fires <= 7);
    weft_timer_cancel(r);
    int before = g_fires;
    w->now_ms = t0 + 2000;
    ut_run(w);
    assert_int_equal(g_fires, before);

    /* A worker timer lives with the worker, not a connection. */
    g_fires = 0;
    weft_timer *wt = ut_new(w, NULL, 10, 0, count_fire, NULL);
    assert_null(weft_timer_conn(wt));
    w->now_ms = t0 + 2100;
    ut_run(w);
    assert_int_equal(g_fires, 1);

    /* A timer that closes its connection; the rest of its timers are
     * cancelled without firing, and no timer survives the close. */
    g_fires = 0;
    weft_conn_timer(c, 10, 0, close_conn, NULL);
    weft_conn_timer(c, 5000, 0, count_fire, NULL);
    w->now_ms = t0 + 2200;
    ut_run(w);
    assert_int_equal(g_fires, 1);
    assert_int_equal(g_closes, 1);
    assert_null(c->timers);
    w->now_ms = t0 + 9000;
    ut_run(w);
    assert_int_equal(g_fires, 1);
    /* A closing connection takes no new timer. */
    assert_null(weft_conn_timer(c, 1, 0, count_fire, NULL));
    sc_world_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_idle_verdict, setup),
        cmocka_unit_test_setup(test_activity_rearms, setup),
        cmocka_unit_test_setup(test_input_stall_from_start, setup),
        cmocka_unit_test_setup(test_output_stall, setup),
        cmocka_unit_test_setup(test_verdicts_bounded, setup),
        cmocka_unit_test_setup(test_user_timers, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
