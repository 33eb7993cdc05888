/*
 * tests/test_outbound.c — workers/outbound.c: connections a handler opens,
 * through the scripted backend: a connect in progress, then connected (or
 * refused, or timed out), output queued before the connect, failures that
 * create nothing.
 */
#include <errno.h>
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

static struct {
    int opens, closes;
    weft_close_reason reason;
    void *ud;
} os;

static void o_open(weft_conn *c)
{
    os.opens++;
    os.ud = weft_conn_origin_userdata(c);
}

static void o_close(weft_conn *c, weft_close_reason why)
{
    (void)c;
    os.closes++;
    os.reason = why;
}

static void o_data(weft_conn *c, weft_ring *in) { weft_send_from(c, in, weft_ring_len(in)); }

static const weft_handler out_h = {.on_open = o_open, .on_data = o_data, .on_close = o_close};
static const weft_handler none_h = {.on_data = o_data};

static int setup(void **state)
{
    (void)state;
    sc_reset_all();
    memset(&os, 0, sizeof(os));
    return 0;
}

static void world(sc_world *x)
{
    weft_config cfg = weft_config_default();
    cfg.stats_interval_ms = 0;
    sc_world_init(x, &cfg, &none_h);
}

/* In progress, output queued, then the output event: on_open, flush. */
static void test_connect_then_open(void **state)
{
    (void)state;
    sc_world x;
    world(&x);
    int peer = sc_peer_new(SIZE_MAX);
    sc.connect_fd = peer;
    sc.connect_rc = 0; /* in progress */
    weft_conn *c = NULL;
    int tag = 7;
    assert_int_equal(wk_connect(x.w, "127.0.0.1:9", NULL, NULL, &out_h, &tag, &c), 0);
    assert_non_null(c);
    assert_int_equal(weft_conn_listener(c), -1);
    assert_int_equal(x.w->nconns, 1);
    assert_int_equal(weft_send(c, "early", 5), 0);
    sc_turn(&x);
    assert_int_equal(os.opens, 0);                /* not yet connected */
    assert_int_equal(sc_peer_of(peer)->sends, 0); /* nothing written before */
    sc.connected_rc = 0;
    sc_event(peer, WK_IO_OUT);
    sc_turn(&x);
    assert_int_equal(os.opens, 1);
    assert_ptr_equal(os.ud, &tag);
    assert_string_equal(sc_output(peer), "early");
    assert_int_equal(x.w->st.connects, 1);
    assert_int_equal(x.w->st.outbound, 1);
    /* An ordinary connection from now on: it echoes. */
    sc_give(peer, "ping", 4);
    sc_event(peer, WK_IO_IN);
    sc_turn(&x);
    assert_string_equal(sc_output(peer), "earlyping");
    sc_world_free(&x);
    assert_int_equal(os.closes, 1);
}

/* Refused after the fact: on_close with the reason, on_open never. */
static void test_connect_refused(void **state)
{
    (void)state;
    sc_world x;
    world(&x);
    int peer = sc_peer_new(SIZE_MAX);
    sc.connect_fd = peer;
    weft_conn *c;
    assert_int_equal(wk_connect(x.w, "[::1]:9", NULL, NULL, &out_h, NULL, &c), 0);
    sc.connected_rc = -ECONNREFUSED;
    sc_event(peer, WK_IO_OUT | WK_IO_ERR | WK_IO_HUP);
    sc_turn(&x);
    assert_int_equal(os.opens, 0);
    assert_int_equal(os.closes, 1);
    assert_int_equal(os.reason, WEFT_CLOSE_CONNECT_REFUSED);
    assert_true(sc_peer_of(peer)->closed);
    assert_int_equal(x.w->nconns, 0);
    assert_int_equal(x.w->st.closed_by[WEFT_CLOSE_CONNECT_REFUSED], 1);
    sc_world_free(&x);
}

/* No answer within the timeout: closed, reason connect_timeout. */
static void test_connect_timeout(void **state)
{
    (void)state;
    sc_world x;
    world(&x);
    int peer = sc_peer_new(SIZE_MAX);
    sc.connect_fd = peer;
    weft_conn *c;
    weft_connect_opts o = {.timeout_ms = 300};
    assert_int_equal(wk_connect(x.w, "127.0.0.1:9", &o, NULL, &out_h, NULL, &c), 0);
    int64_t t0 = x.w->now_ms;
    to_verdict v[TO_VERDICTS_PER_TURN];
    x.w->now_ms = t0 + 250;
    assert_int_equal(to_expire(x.w, v, TO_VERDICTS_PER_TURN), 0);
    x.w->now_ms = t0 + 320;
    assert_int_equal(to_expire(x.w, v, TO_VERDICTS_PER_TURN), 1);
    assert_int_equal(v[0].why, WEFT_CLOSE_CONNECT_TIMEOUT);
    conn_expire(x.w, v[0].c, v[0].why);
    assert_int_equal(os.closes, 1);
    assert_int_equal(os.reason, WEFT_CLOSE_CONNECT_TIMEOUT);
    assert_true(sc_peer_of(peer)->closed);
    sc_world_free(&x);
}

/* Failures at once are returned and create nothing. */
static void test_connect_fails_at_once(void **state)
{
    (void)state;
    sc_world x;
    world(&x);
    weft_conn *c = NULL;
    const char *bad[] = {"",       "nocolon",      "1.2.3.4:99999", "[::1:80",
                         "::1:80", "host name:80", "unix:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(wk_connect(x.w, bad[i], NULL, NULL, &out_h, NULL, &c), -EINVAL);
    weft_handler no_data = {.on_open = o_open};
    assert_int_equal(wk_connect(x.w, "127.0.0.1:9", NULL, NULL, &no_data, NULL, &c), -EINVAL);
    sc.connect_rc = -ECONNREFUSED;
    sc.connect_fd = sc_peer_new(SIZE_MAX);
    assert_int_equal(wk_connect(x.w, "unix:/nowhere", NULL, NULL, &out_h, NULL, &c), -ECONNREFUSED);
    assert_int_equal(x.w->nconns, 0);
    assert_int_equal(os.closes, 0);
    assert_int_equal(x.w->st.outbound, 0);
    sc_world_free(&x);
}

/* Connected at once (a Unix socket): no event needed. */
static void test_connect_at_once(void **state)
{
    (void)state;
    sc_world x;
    world(&x);
    int peer = sc_peer_new(SIZE_MAX);
    sc.connect_fd = peer;
    sc.connect_rc = 1;
    weft_conn *c;
    assert_int_equal(wk_connect(x.w, "unix:/tmp/x.sock", NULL, NULL, &out_h, NULL, &c), 0);
    weft_send(c, "now", 3);
    sc_turn(&x);
    assert_int_equal(os.opens, 1);
    assert_string_equal(sc_output(peer), "now");
    sc_world_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_connect_then_open, setup),
        cmocka_unit_test_setup(test_connect_refused, setup),
        cmocka_unit_test_setup(test_connect_timeout, setup),
        cmocka_unit_test_setup(test_connect_fails_at_once, setup),
        cmocka_unit_test_setup(test_connect_at_once, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
