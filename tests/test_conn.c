/*
 * tests/test_conn.c — workers/conn.c, the connection state machine, driven
 * through the loop by the scripted backend (tests/io_script.h): no socket,
 * no thread, every system call counted.
 *
 * Each test builds one worker, adopts scripted peers, queues the events a
 * kernel would report and runs turns, then asserts what the handler saw,
 * what reached the peer, how many reads and writes it took, and how the
 * connection closed (reason, reset or FIN, linger).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "io_script.h"
#include "workers/conn.h"
#include "workers/worker.h"

/* ---- handlers ------------------------------------------------------------ */

static struct {
    int opens, closes, datas, drains;
    weft_close_reason reason;
    size_t last_len;   /* ring length at the last on_data */
    int consume;       /* on_data consumes what it echoes (1) or leaves it (0) */
    int send_rc;       /* last weft_send/weft_send_from result */
    size_t extra_send; /* bytes on_data sends besides the echo */
} hs;

static char big[1u << 20];

static void h_open(weft_conn *c)
{
    (void)c;
    hs.opens++;
}

static void h_close(weft_conn *c, weft_close_reason why)
{
    (void)c;
    hs.closes++;
    hs.reason = why;
}

static void h_data(weft_conn *c, weft_ring *in)
{
    hs.datas++;
    hs.last_len = weft_ring_len(in);
    if (hs.extra_send)
        hs.send_rc = weft_send(c, big, hs.extra_send);
    if (hs.consume && hs.send_rc >= 0)
        hs.send_rc = weft_send_from(c, in, weft_ring_len(in));
}

static void h_drain(weft_conn *c)
{
    (void)c;
    hs.drains++;
}

static const weft_handler echo_h = {
    .on_open = h_open, .on_data = h_data, .on_drain = h_drain, .on_close = h_close};

static int setup(void **state)
{
    (void)state;
    sc_reset_all();
    memset(&hs, 0, sizeof(hs));
    hs.consume = 1;
    return 0;
}

static weft_config base_cfg(void)
{
    weft_config cfg = weft_config_default();
    cfg.stats_interval_ms = 0;
    return cfg;
}

/* ---- tests ---------------------------------------------------------------- */

/* Bytes in, the same bytes out: one read (short: drained), one write. */
static void test_echo_one_read_one_write(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    sc_world_init(&x, &cfg, &echo_h);
    int fd = sc_peer_new(SIZE_MAX);
    weft_conn *c = sc_adopt(&x, fd);
    assert_non_null(c);
    assert_int_equal(hs.opens, 1);
    assert_int_equal(x.w->nconns, 1);

    sc_give(fd, "hello", 5);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_string_equal(sc_output(fd), "hello");
    sc_peer *p = sc_peer_of(fd);
    assert_int_equal(p->recvs, 1); /* a short read means drained: no EAGAIN read */
    assert_int_equal(p->sends, 1);
    assert_int_equal(hs.datas, 1);
    /* Idle again: both rings gave their storage back (invariant 4). */
    assert_null(c->in.buf);
    assert_null(c->out.buf);

    /* No event, no call: the connection is not polled. */
    sc_turn(&x);
    assert_int_equal(p->recvs, 1);
    assert_int_equal(p->sends, 1);
    sc_world_free(&x);
    assert_true(p->closed);
    assert_int_equal(hs.closes, 1);
    assert_int_equal(hs.reason, WEFT_CLOSE_SHUTDOWN);
}

/* A peer's FIN with output pending: flush first, then close (reason peer),
 * at once (no linger after EOF). */
static void test_eof_flushes_then_closes(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    sc_world_init(&x, &cfg, &echo_h);
    int fd = sc_peer_new(0); /* takes nothing yet */
    sc_adopt(&x, fd);
    sc_give(fd, "bye", 3);
    sc_eof(fd);
    sc_event(fd, WK_IO_IN | WK_IO_HUP);
    sc_turn(&x);
    sc_peer *p = sc_peer_of(fd);
    assert_false(p->closed); /* output waits */
    assert_int_equal(hs.closes, 0);
    assert_int_equal(p->recvs, 2); /* HUP pending: read on to the EOF */
    /* The peer takes the output: the close follows the flush. */
    p->window = SIZE_MAX;
    sc_event(fd, WK_IO_OUT);
    sc_turn(&x);
    assert_string_equal(sc_output(fd), "bye");
    assert_true(p->closed);
    assert_false(p->reset);
    assert_false(p->shut_wr); /* after EOF nothing unread remains: no linger */
    assert_int_equal(hs.reason, WEFT_CLOSE_PEER);
    assert_int_equal(x.w->nconns, 0);
    sc_world_free(&x);
}

/* The read budget: a bulk sender is deferred, and fresh input on another
 * connection runs before its next slice (invariant 3). */
static void test_budget_defers_bulk(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.read_budget = 4096;
    sc_world_init(&x, &cfg, &echo_h);
    int bulk = sc_peer_new(SIZE_MAX), light = sc_peer_new(SIZE_MAX);
    sc_adopt(&x, bulk);
    sc_adopt(&x, light);
    memset(big, 'b', 20000);
    sc_give(bulk, big, 20000);
    sc_event(bulk, WK_IO_IN);
    sc_turn(&x);
    sc_peer *pb = sc_peer_of(bulk), *pl = sc_peer_of(light);
    assert_int_equal(pb->out_len, 4096); /* one budget this turn */
    assert_int_equal(x.w->st.deferrals, 1);
    /* Work is queued: the next wait does not block. */
    sc_give(light, "ping", 4);
    sc_event(light, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(sc.last_timeout, 0);
    assert_string_equal(sc_output(light), "ping");
    assert_int_equal(pb->out_len, 8192);
    while (pb->out_len < 20000)
        sc_turn(&x);
    assert_int_equal(pb->out_len, 20000);
    assert_int_equal(pl->recvs, 1);
    /* Drained: the queue is empty and the wait may block again. */
    sc_turn(&x);
    sc_turn(&x);
    assert_int_not_equal(sc.last_timeout, 0);
    sc_world_free(&x);
}

/*
 * A turn's fresh input reads 4 full budgets (WK_FRESH_BUDGETS); the bulk
 * senders after them read a trickle (4 KiB) each and are deferred, and the
 * light connection queued last is still served in that same turn. The
 * deferred ones then go on at full budgets, 4 budgets' worth per turn.
 */
static void test_turn_budget_trickles(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.read_budget = 16384;
    sc_world_init(&x, &cfg, &echo_h);
    enum { NBULK = 8 };
    int bulk[NBULK];
    enum { EACH = 40000 };
    memset(big, 'b', EACH);
    for (int i = 0; i < NBULK; i++) {
        bulk[i] = sc_peer_new(SIZE_MAX);
        sc_adopt(&x, bulk[i]); /* runs a turn: adopt all before any event */
    }
    int light = sc_peer_new(SIZE_MAX);
    sc_adopt(&x, light);
    for (int i = 0; i < NBULK; i++) {
        sc_give(bulk[i], big, EACH);
        sc_event(bulk[i], WK_IO_IN);
    }
    sc_give(light, "ping", 4);
    sc_event(light, WK_IO_IN);
    sc_turn(&x);
    for (int i = 0; i < NBULK; i++)
        assert_int_equal(sc_peer_of(bulk[i])->out_len, i < 4 ? 16384 : 4096);
    assert_string_equal(sc_output(light), "ping");
    assert_int_equal(x.w->st.deferrals, NBULK);
    /* Next turn: the first 4 deferred read a full budget each, then the
     * turn's share is used up and the other 4 wait (round robin). */
    sc_turn(&x);
    for (int i = 0; i < NBULK; i++)
        assert_int_equal(sc_peer_of(bulk[i])->out_len, i < 4 ? 2 * 16384 : 4096);
    /* They all finish. */
    for (int t = 0; t < 16; t++)
        sc_turn(&x);
    for (int i = 0; i < NBULK; i++)
        assert_int_equal(sc_peer_of(bulk[i])->out_len, EACH);
    sc_world_free(&x);
}

/* Backpressure: over the high watermark reading stops; below the low one
 * it resumes, on_drain runs, and input that waited is delivered. */
static void test_backpressure_pause_resume(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.output_high_wm = 8192;
    cfg.output_low_wm = 1024;
    sc_world_init(&x, &cfg, &echo_h);
    int fd = sc_peer_new(0);
    weft_conn *c = sc_adopt(&x, fd);
    hs.consume = 1;
    hs.extra_send = 10000; /* each message makes 10 KB of answer */
    sc_give(fd, "a", 1);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(hs.send_rc, 1); /* weft_send reported the high watermark */
    assert_true(c->flags & C_PAUSED);
    assert_true(c->flags & C_WANT_OUT);
    sc_peer *p = sc_peer_of(fd);
    unsigned recvs = p->recvs;
    /* Input arrives while paused: not read. */
    sc_give(fd, "b", 1);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(p->recvs, recvs);
    assert_int_equal(hs.datas, 1);
    assert_int_equal(wk_io_wants(c) & WK_IO_IN, 0);
    /* The peer takes most of it: below the low watermark, resume. */
    hs.extra_send = 0;
    p->window = 10001 - 512;
    sc_event(fd, WK_IO_OUT);
    sc_turn(&x);
    assert_int_equal(hs.drains, 1);
    assert_false(c->flags & C_PAUSED);
    /* The input that waited is read in the next turn, which does not block. */
    sc_turn(&x);
    assert_int_equal(sc.last_timeout, 0);
    assert_int_equal(hs.datas, 2); /* "b" delivered after the pause */
    p->window = SIZE_MAX;
    sc_event(fd, WK_IO_OUT);
    sc_turn(&x);
    assert_int_equal(p->out_len, 10002);
    assert_int_equal(p->out[10001], 'b');
    sc_world_free(&x);
}

/* A partial message that fills input_cap closes the connection, counted. */
static void test_input_cap(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.input_cap = 4096;
    cfg.ring_size = 1024;
    sc_world_init(&x, &cfg, &echo_h);
    hs.consume = 0; /* never a complete message */
    int fd = sc_peer_new(SIZE_MAX);
    sc_adopt(&x, fd);
    memset(big, 'x', 10000);
    sc_give(fd, big, 10000);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_true(sc_peer_of(fd)->closed);
    assert_int_equal(hs.reason, WEFT_CLOSE_INPUT_CAP);
    assert_true(hs.last_len <= 4096); /* the handler never saw more than the cap */
    assert_int_equal(x.w->st.closed_by[WEFT_CLOSE_INPUT_CAP], 1);
    sc_world_free(&x);
}

/* Output beyond output_cap: weft_send fails and the connection closes. */
static void test_output_cap(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.output_high_wm = 8192;
    cfg.output_low_wm = 1024;
    cfg.output_cap = 16384;
    sc_world_init(&x, &cfg, &echo_h);
    hs.extra_send = 20000;
    int fd = sc_peer_new(0);
    sc_adopt(&x, fd);
    sc_give(fd, "a", 1);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(hs.send_rc, -ENOBUFS);
    assert_int_equal(hs.reason, WEFT_CLOSE_OUTPUT_CAP);
    assert_true(sc_peer_of(fd)->closed);
    sc_world_free(&x);
}

/* weft_close with nothing pending: on_close now, FIN, then input is read
 * and dropped until the peer's EOF, and only then the fd closes. */
static void close_on_data(weft_conn *c, weft_ring *in)
{
    weft_ring_consume(in, weft_ring_len(in));
    weft_close(c);
}

/* The connection-state gauges, counted at the end of a turn once the
 * interval is due: idle, writing (output the peer has not taken), reading
 * (input on_data left in the ring), draining (closing after the flush),
 * lingering (closed for the handler, reading to the FIN). */
static void test_state_gauges(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.stats_interval_ms = 1000; /* stats on: the worker counts */
    sc_world_init(&x, &cfg, &echo_h);
    int idle = sc_peer_new(SIZE_MAX), slow = sc_peer_new(0), partial = sc_peer_new(SIZE_MAX);
    sc_adopt(&x, idle);
    weft_conn *cs = sc_adopt(&x, slow);
    sc_adopt(&x, partial);
    const uint64_t *g = x.w->st.conn_state;
    x.w->gauges_due = 0; /* each adopt ran a turn; only the first one counted */
    sc_turn(&x);
    assert_int_equal(g[WEFT_CONN_IDLE], 3);
    sc_give(slow, "hello", 5); /* echoed, and the peer takes nothing */
    sc_event(slow, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(g[WEFT_CONN_IDLE], 3); /* not due yet: the last count stands */
    x.w->gauges_due = 0;
    sc_turn(&x);
    assert_int_equal(g[WEFT_CONN_IDLE], 2);
    assert_int_equal(g[WEFT_CONN_WRITING], 1);
    hs.consume = 0; /* on_data leaves what it got */
    sc_give(partial, "abc", 3);
    sc_event(partial, WK_IO_IN);
    weft_close(cs); /* output pending: it drains first */
    x.w->gauges_due = 0;
    sc_turn(&x);
    assert_int_equal(g[WEFT_CONN_IDLE], 1);
    assert_int_equal(g[WEFT_CONN_READING], 1);
    assert_int_equal(g[WEFT_CONN_DRAINING], 1);
    assert_int_equal(g[WEFT_CONN_WRITING], 0);
    /* The slow peer takes it all: the close follows the flush and lingers. */
    sc_peer_of(slow)->window = SIZE_MAX;
    sc_event(slow, WK_IO_OUT);
    x.w->gauges_due = 0;
    sc_turn(&x);
    assert_int_equal(g[WEFT_CONN_DRAINING], 0);
    assert_int_equal(g[WEFT_CONN_LINGERING], 1);
    assert_int_equal(g[WEFT_CONN_IDLE] + g[WEFT_CONN_READING], 2);
    sc_world_free(&x);
}

static void test_lingering_close(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    weft_handler h = echo_h;
    h.on_data = close_on_data;
    sc_world_init(&x, &cfg, &h);
    int fd = sc_peer_new(SIZE_MAX);
    sc_adopt(&x, fd);
    sc_give(fd, "quit", 4);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    sc_peer *p = sc_peer_of(fd);
    assert_int_equal(hs.closes, 1);
    assert_int_equal(hs.reason, WEFT_CLOSE_HANDLER);
    assert_true(p->shut_wr);
    assert_false(p->closed);          /* lingering */
    assert_int_equal(x.w->nconns, 1); /* still holds its fd */
    sc_give(fd, "late bytes", 10);
    sc_eof(fd);
    sc_event(fd, WK_IO_IN | WK_IO_HUP);
    sc_turn(&x);
    assert_true(p->closed);
    assert_false(p->reset);
    assert_int_equal(x.w->nconns, 0);
    assert_int_equal(hs.closes, 1); /* on_close exactly once */
    assert_int_equal(x.w->st.closed_by[WEFT_CLOSE_HANDLER], 1);
    sc_world_free(&x);
}

/* weft_abort: reset, pending output dropped, on_close once. */
static void abort_on_data(weft_conn *c, weft_ring *in)
{
    weft_send_from(c, in, weft_ring_len(in));
    weft_abort(c);
}

static void test_abort_resets(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    weft_handler h = echo_h;
    h.on_data = abort_on_data;
    sc_world_init(&x, &cfg, &h);
    int fd = sc_peer_new(SIZE_MAX);
    sc_adopt(&x, fd);
    sc_give(fd, "x", 1);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    sc_peer *p = sc_peer_of(fd);
    assert_true(p->closed);
    assert_true(p->reset);
    assert_int_equal(p->out_len, 0);
    assert_int_equal(hs.closes, 1);
    sc_world_free(&x);
}

/* A read error closes with reason error; one after the peer's FIN that is a
 * reset is the peer's doing. */
static void test_errors(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    sc_world_init(&x, &cfg, &echo_h);
    int fd = sc_peer_new(SIZE_MAX);
    sc_adopt(&x, fd);
    sc_set_error(fd, ECONNRESET);
    sc_event(fd, WK_IO_IN | WK_IO_ERR);
    sc_turn(&x);
    assert_true(sc_peer_of(fd)->closed);
    assert_int_equal(hs.reason, WEFT_CLOSE_ERROR);
    sc_world_free(&x);
}

/* An event for a slot that was freed and reused is dropped (stale). */
static void test_stale_event_dropped(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    weft_handler h = echo_h;
    h.on_data = abort_on_data;
    sc_world_init(&x, &cfg, &h);
    int a = sc_peer_new(SIZE_MAX);
    weft_conn *ca = sc_adopt(&x, a);
    uint32_t slot = ca->slot, gen = ca->gen;
    sc_give(a, "x", 1);
    sc_event(a, WK_IO_IN);
    sc_turn(&x); /* aborted and reaped */
    h.on_data = h_data;
    int b = sc_peer_new(SIZE_MAX);
    weft_conn *cb = sc_adopt(&x, b);
    assert_int_equal(cb->slot, slot);   /* the slot came back ... */
    assert_int_not_equal(cb->gen, gen); /* ... with a new generation */
    /* An event queued for the old connection: a's key, not b's. */
    int datas = hs.datas;
    sc_give(b, "y", 1);
    sc_event(a, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(hs.datas, datas);
    assert_int_equal(sc_peer_of(b)->recvs, 0);
    sc_world_free(&x);
}

/* weft_conn_resume: a handler that left whole messages waits for something
 * else, then asks for its ring again without new input. */
static int g_hold;
static void hold_data(weft_conn *c, weft_ring *in)
{
    hs.datas++;
    if (!g_hold)
        weft_send_from(c, in, weft_ring_len(in));
}

static void test_resume_redelivers(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    weft_handler h = echo_h;
    h.on_data = hold_data;
    sc_world_init(&x, &cfg, &h);
    int fd = sc_peer_new(SIZE_MAX);
    weft_conn *c = sc_adopt(&x, fd);
    g_hold = 1;
    sc_give(fd, "held", 4);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(hs.datas, 1);
    assert_int_equal(sc_peer_of(fd)->out_len, 0);
    sc_turn(&x);
    assert_int_equal(hs.datas, 1); /* no input, no call */
    g_hold = 0;
    weft_conn_resume(c);
    sc_turn(&x);
    assert_int_equal(hs.datas, 2);
    assert_string_equal(sc_output(fd), "held");
    assert_int_equal(sc_peer_of(fd)->recvs, 1); /* no new read was needed */
    g_hold = 0;
    sc_world_free(&x);
}

/* The pool cap: a connection holding ring memory is parked, not failed,
 * and resumes once memory comes back. */
static void test_pool_cap_starves_then_resumes(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.ring_size = 1024;
    cfg.pool_max_bytes = 2048;
    cfg.pool_cache_bytes = 0;
    cfg.output_high_wm = 1u << 20;
    cfg.output_low_wm = 1024;
    sc_world_init(&x, &cfg, &echo_h);
    /* a holds output (its peer takes nothing): 2 KB of rings. */
    int a = sc_peer_new(0), b = sc_peer_new(SIZE_MAX);
    sc_adopt(&x, a);
    weft_conn *cb = sc_adopt(&x, b);
    memset(big, 'a', 2048);
    sc_give(a, big, 2048);
    sc_event(a, WK_IO_IN);
    sc_turn(&x);
    assert_true(x.w->pool.in_use >= 2048);
    /* b holds a partial message already (it keeps input): it must wait. */
    hs.consume = 0;
    sc_give(b, "partial", 7);
    sc_event(b, WK_IO_IN);
    sc_turn(&x);
    hs.consume = 1;
    /* The first read of b got memory (b held none); give it more. */
    sc_give(b, big, 2048);
    sc_event(b, WK_IO_IN);
    sc_turn(&x);
    assert_true(cb->flags & C_STARVED);
    assert_true(x.w->st.pool_pauses >= 1);
    /* a's peer reads: memory returns, b resumes and is served. */
    sc_peer_of(a)->window = SIZE_MAX;
    sc_event(a, WK_IO_OUT);
    for (int i = 0; i < 4; i++)
        sc_turn(&x);
    assert_false(cb->flags & C_STARVED);
    assert_int_equal(sc_peer_of(b)->out_len, 7 + 2048);
    sc_world_free(&x);
}

/* Shutdown: with output pending a connection is flushed before it closes;
 * an idle one closes at once; the loop ends when none is left. */
static void test_drain(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.close_linger_ms = 0;
    sc_world_init(&x, &cfg, &echo_h);
    int idle = sc_peer_new(SIZE_MAX), busy = sc_peer_new(0);
    sc_adopt(&x, idle);
    sc_adopt(&x, busy);
    sc_give(busy, "pending", 7);
    sc_event(busy, WK_IO_IN);
    sc_turn(&x);
    __atomic_store_n(&x.g.drain, 1, __ATOMIC_RELEASE);
    wk_wake(x.w);
    assert_int_equal(sc_turn(&x), 1);
    assert_true(sc_peer_of(idle)->closed);
    assert_false(sc_peer_of(busy)->closed);
    assert_int_equal(x.w->nconns, 1);
    sc_peer_of(busy)->window = SIZE_MAX;
    sc_event(busy, WK_IO_OUT);
    assert_int_equal(sc_turn(&x), 0); /* nothing left: the worker is done */
    assert_string_equal(sc_output(busy), "pending");
    assert_true(sc_peer_of(busy)->closed);
    assert_int_equal(hs.reason, WEFT_CLOSE_SHUTDOWN);
    sc_world_free(&x);
}

/* At the shutdown deadline what cannot flush is closed anyway. */
static void test_drain_deadline(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.shutdown_timeout_ms = 0;
    sc_world_init(&x, &cfg, &echo_h);
    int fd = sc_peer_new(0);
    sc_adopt(&x, fd);
    sc_give(fd, "stuck", 5);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    __atomic_store_n(&x.g.drain, 1, __ATOMIC_RELEASE);
    assert_int_equal(sc_turn(&x), 0);
    assert_true(sc_peer_of(fd)->closed);
    assert_int_equal(sc_peer_of(fd)->out_len, 0);
    assert_true(sc.nlogs >= 1); /* the forced close is logged */
    sc_world_free(&x);
}

/* What a level-triggered backend watches follows the state. */
static void test_wants(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.output_high_wm = 8192;
    cfg.output_low_wm = 1024;
    sc_world_init(&x, &cfg, &echo_h);
    int fd = sc_peer_new(0);
    weft_conn *c = sc_adopt(&x, fd);
    assert_int_equal(wk_io_wants(c), WK_IO_IN);
    hs.extra_send = 9000;
    sc_give(fd, "a", 1);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(wk_io_wants(c), WK_IO_OUT); /* paused, waiting for output */
    sc_world_free(&x);
}

/* ---- flow control between connections --------------------------------------- */

/* A paused connection reads nothing; on resume it reads what waited. */
static void test_read_pause_resume(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    sc_world_init(&x, &cfg, &echo_h);
    int fd = sc_peer_new(SIZE_MAX);
    weft_conn *c = sc_adopt(&x, fd);
    weft_read_pause(c);
    assert_int_equal(wk_io_wants(c) & WK_IO_IN, 0);
    sc_give(fd, "later", 5);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(sc_peer_of(fd)->recvs, 0);
    assert_int_equal(hs.datas, 0);
    weft_read_resume(c);
    sc_turn(&x);
    assert_string_equal(sc_output(fd), "later");
    sc_world_free(&x);
}

/* Two linked connections forward both ways, bytes exact, on_data unused. */
static void test_link_forwards(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    hs.consume = 0; /* on_data must not see linked bytes: it would not echo */
    sc_world_init(&x, &cfg, &echo_h);
    int a = sc_peer_new(SIZE_MAX), b = sc_peer_new(SIZE_MAX);
    weft_conn *ca = sc_adopt(&x, a), *cb = sc_adopt(&x, b);
    /* Bytes a sent before the link wait in its ring... */
    sc_give(a, "early ", 6);
    sc_event(a, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(hs.datas, 1);
    assert_int_equal(weft_link(ca, cb), 0);
    assert_ptr_equal(weft_conn_linked(ca), cb);
    /* ...and go to b at once. */
    sc_turn(&x);
    assert_string_equal(sc_output(b), "early ");
    sc_give(a, "to b", 4);
    sc_give(b, "to a", 4);
    sc_event(a, WK_IO_IN);
    sc_event(b, WK_IO_IN);
    sc_turn(&x);
    assert_string_equal(sc_output(b), "early to b");
    assert_string_equal(sc_output(a), "to a");
    assert_int_equal(hs.datas, 1);
    /* Linking twice, or to itself, is refused. */
    assert_int_equal(weft_link(ca, ca), -EINVAL);
    int c3 = sc_peer_new(SIZE_MAX);
    weft_conn *cc = sc_adopt(&x, c3);
    assert_int_equal(weft_link(ca, cc), -EINVAL);
    sc_world_free(&x);
}

/* b takes nothing: a's reading pauses over b's high watermark, b's does
 * not (the other direction flows), and a resumes as b drains. */
static void test_link_backpressure(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.output_high_wm = 8192;
    cfg.output_low_wm = 2048;
    cfg.read_budget = 4096;
    sc_world_init(&x, &cfg, &echo_h);
    int a = sc_peer_new(SIZE_MAX), b = sc_peer_new(0);
    weft_conn *ca = sc_adopt(&x, a), *cb = sc_adopt(&x, b);
    assert_int_equal(weft_link(ca, cb), 0);
    memset(big, 'a', 65536);
    sc_give(a, big, 65536);
    sc_event(a, WK_IO_IN);
    for (int i = 0; i < 10; i++)
        sc_turn(&x);
    assert_true(ca->flags & C_PAUSED);
    size_t held = conn_pending_out(cb);
    assert_true(held > 8192 && held <= 8192 + 4096); /* the watermark and one read */
    assert_false(cb->flags & C_PAUSED);
    /* The other direction still flows while a is paused. */
    sc_give(b, "reply", 5);
    sc_event(b, WK_IO_IN);
    sc_turn(&x);
    assert_string_equal(sc_output(a), "reply");
    /* b's peer reads everything: a resumes and the rest flows. */
    sc_peer_of(b)->window = SIZE_MAX;
    sc_event(b, WK_IO_OUT);
    for (int i = 0; i < 40 && sc_peer_of(b)->out_len < 65536; i++) {
        sc_turn(&x);
        if (cb->flags & C_WANT_OUT)
            sc_event(b, WK_IO_OUT);
    }
    assert_int_equal(sc_peer_of(b)->out_len, 65536);
    assert_false(ca->flags & C_PAUSED);
    sc_world_free(&x);
}

/* a's FIN becomes b's FIN after b's output; when both sides have sent FIN
 * both close, reason peer. */
static void test_link_half_close(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    sc_world_init(&x, &cfg, &echo_h);
    int a = sc_peer_new(SIZE_MAX), b = sc_peer_new(SIZE_MAX);
    weft_conn *ca = sc_adopt(&x, a), *cb = sc_adopt(&x, b);
    assert_int_equal(weft_link(ca, cb), 0);
    sc_give(a, "last words", 10);
    sc_eof(a);
    sc_event(a, WK_IO_IN | WK_IO_HUP);
    sc_turn(&x);
    assert_string_equal(sc_output(b), "last words");
    assert_true(sc_peer_of(b)->shut_wr); /* FIN passed on */
    assert_false(sc_peer_of(a)->closed); /* b -> a still open */
    sc_give(b, "answer", 6);
    sc_eof(b);
    sc_event(b, WK_IO_IN | WK_IO_HUP);
    sc_turn(&x);
    assert_string_equal(sc_output(a), "answer");
    assert_true(sc_peer_of(a)->shut_wr);
    assert_true(sc_peer_of(a)->closed);
    assert_true(sc_peer_of(b)->closed);
    assert_int_equal(hs.closes, 2);
    assert_int_equal(x.w->st.closed_by[WEFT_CLOSE_PEER], 2);
    sc_world_free(&x);
}

/* One side dies: the other flushes what it holds, then closes (link). */
static void test_link_close_passes_on(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    cfg.close_linger_ms = 0;
    sc_world_init(&x, &cfg, &echo_h);
    int a = sc_peer_new(SIZE_MAX), b = sc_peer_new(0);
    weft_conn *ca = sc_adopt(&x, a), *cb = sc_adopt(&x, b);
    assert_int_equal(weft_link(ca, cb), 0);
    sc_give(a, "flush me", 8);
    sc_event(a, WK_IO_IN);
    sc_turn(&x);
    sc_set_error(a, ECONNRESET);
    sc_event(a, WK_IO_IN | WK_IO_ERR);
    sc_turn(&x);
    assert_true(sc_peer_of(a)->closed);
    assert_false(sc_peer_of(b)->closed); /* its output waits */
    assert_null(weft_conn_linked(cb));
    sc_peer_of(b)->window = SIZE_MAX;
    sc_event(b, WK_IO_OUT);
    sc_turn(&x);
    assert_string_equal(sc_output(b), "flush me");
    assert_true(sc_peer_of(b)->closed);
    assert_int_equal(x.w->st.closed_by[WEFT_CLOSE_LINK], 1);
    sc_world_free(&x);
}

/* A sniffing handler hands the connection over; the new one gets on_open
 * and the bytes that were waiting, the old one no on_close. */
static int g_b_opens, g_b_datas, g_a_closes;
static void b_open(weft_conn *c)
{
    (void)c;
    g_b_opens++;
}
static void b_data(weft_conn *c, weft_ring *in)
{
    g_b_datas++;
    weft_send(c, "B:", 2);
    weft_send_from(c, in, weft_ring_len(in));
}
static const weft_handler b_h = {.on_open = b_open, .on_data = b_data};
static void a_close(weft_conn *c, weft_close_reason why)
{
    (void)c;
    (void)why;
    g_a_closes++;
}
static void a_data(weft_conn *c, weft_ring *in)
{
    if (weft_ring_len(in) >= 4)
        assert_int_equal(weft_conn_set_handler(c, &b_h, &g_b_opens), 0);
}

static void test_set_handler(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    weft_handler a_h = {.on_data = a_data, .on_close = a_close};
    sc_world_init(&x, &cfg, &a_h);
    int fd = sc_peer_new(SIZE_MAX);
    weft_conn *c = sc_adopt(&x, fd);
    sc_give(fd, "GE", 2);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    assert_int_equal(g_b_opens, 0);
    sc_give(fd, "T /", 3);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x); /* a hands over; b's on_open now */
    assert_int_equal(g_b_opens, 1);
    assert_ptr_equal(weft_conn_origin_userdata(c), &g_b_opens);
    assert_int_equal(weft_conn_listener(c), 0);
    sc_turn(&x); /* b's on_data with the bytes that waited */
    assert_string_equal(sc_output(fd), "B:GET /");
    assert_int_equal(weft_conn_set_handler(c, &(weft_handler){0}, NULL), -EINVAL);
    sc_world_free(&x);
    assert_int_equal(g_a_closes, 0); /* the old handler is not told */
}

/* ---- files in the output --------------------------------------------------- */

/* A temporary file of n pattern bytes, open for reading (unlinked). */
static int temp_file(size_t n)
{
    char path[] = "/tmp/weft-test-file-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    for (size_t i = 0; i < n; i++)
        big[i % sizeof(big)] = (char)('a' + i % 26);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof(big) ? n - done : sizeof(big);
        assert_int_equal(write(fd, big, k), (ssize_t)k);
        done += k;
    }
    return fd;
}

static int fd_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

static void file_data(weft_conn *c, weft_ring *in)
{
    weft_ring_consume(in, weft_ring_len(in));
    int fd = temp_file(10);
    weft_send(c, "<", 1);
    assert_int_equal(weft_send_file(c, fd, 2, 5), 0); /* "cdefg" */
    weft_send(c, ">", 1);
    hs.datas = fd;
}

/* Ring bytes before, the file's range, ring bytes after, in order; the
 * file closed once sent; over several windows. */
static void test_send_file_order(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    weft_handler h = {.on_data = file_data};
    sc_world_init(&x, &cfg, &h);
    int fd = sc_peer_new(3);
    weft_conn *c = sc_adopt(&x, fd);
    sc_give(fd, "get", 3);
    sc_event(fd, WK_IO_IN);
    sc_turn(&x);
    int file = hs.datas;
    assert_string_equal(sc_output(fd), "<cd");
    assert_int_equal(conn_pending_out(c), 4); /* "efg" and ">" */
    assert_true(fd_open(file));
    sc_peer_of(fd)->window = SIZE_MAX;
    sc_event(fd, WK_IO_OUT);
    sc_turn(&x);
    assert_string_equal(sc_output(fd), "<cdefg>");
    assert_false(fd_open(file)); /* weft closed it once sent */
    assert_int_equal(conn_pending_out(c), 0);
    sc_world_free(&x);
}

/* More than a turn's budget: it goes on next turn without an event; the
 * bytes arrive whole. */
static void test_send_file_budget(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    sc_world_init(&x, &cfg, &echo_h);
    int fd = sc_peer_new(SIZE_MAX);
    weft_conn *c = sc_adopt(&x, fd);
    size_t n = 900u << 10; /* 900 KiB: the script's buffer holds 1 MiB */
    int file = temp_file(n);
    assert_int_equal(weft_send_file(c, file, 0, n), 1); /* over the high watermark */
    sc_turn(&x);
    assert_int_equal(sc_peer_of(fd)->out_len, n);
    for (size_t i = 0; i < n; i += 4099)
        assert_int_equal(sc_peer_of(fd)->out[i], 'a' + i % 26);
    assert_int_equal(hs.drains, 1); /* on_drain once the file left */
    sc_world_free(&x);
}

/* A file shorter than queued closes the connection; a closing one drops
 * the files it still holds (their fds closed). */
static void test_send_file_errors(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    sc_world_init(&x, &cfg, &echo_h);
    int a = sc_peer_new(SIZE_MAX), b = sc_peer_new(0);
    weft_conn *ca = sc_adopt(&x, a), *cb = sc_adopt(&x, b);
    int short_file = temp_file(4);
    assert_int_equal(weft_send_file(ca, short_file, 0, 100), 0);
    sc_turn(&x);
    assert_true(sc_peer_of(a)->closed);
    assert_int_equal(hs.reason, WEFT_CLOSE_ERROR);
    assert_false(fd_open(short_file));
    int held = temp_file(8);
    assert_int_equal(weft_send_file(cb, held, 0, 8), 0);
    sc_turn(&x);
    assert_true(fd_open(held)); /* b's peer takes nothing: still queued */
    weft_abort(cb);
    assert_false(fd_open(held));
    int late = temp_file(8);
    assert_int_equal(weft_send_file(cb, late, 0, 8), -EPIPE);
    assert_false(fd_open(late)); /* weft's, even on failure */
    sc_world_free(&x);
}

/* The handoff comes before the FIN read with the same bytes: the new
 * handler still answers them, then the connection closes (peer). */
static void test_set_handler_then_eof(void **state)
{
    (void)state;
    sc_world x;
    weft_config cfg = base_cfg();
    weft_handler a_h = {.on_data = a_data, .on_close = a_close};
    sc_world_init(&x, &cfg, &a_h);
    int fd = sc_peer_new(SIZE_MAX);
    sc_adopt(&x, fd);
    g_b_opens = g_b_datas = 0;
    sc_give(fd, "GET /", 5);
    sc_eof(fd);
    sc_event(fd, WK_IO_IN | WK_IO_HUP);
    for (int i = 0; i < 3; i++)
        sc_turn(&x);
    assert_string_equal(sc_output(fd), "B:GET /");
    assert_true(sc_peer_of(fd)->closed);
    assert_int_equal(x.w->st.closed_by[WEFT_CLOSE_PEER], 1);
    sc_world_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_echo_one_read_one_write, setup),
        cmocka_unit_test_setup(test_eof_flushes_then_closes, setup),
        cmocka_unit_test_setup(test_budget_defers_bulk, setup),
        cmocka_unit_test_setup(test_turn_budget_trickles, setup),
        cmocka_unit_test_setup(test_state_gauges, setup),
        cmocka_unit_test_setup(test_backpressure_pause_resume, setup),
        cmocka_unit_test_setup(test_input_cap, setup),
        cmocka_unit_test_setup(test_output_cap, setup),
        cmocka_unit_test_setup(test_lingering_close, setup),
        cmocka_unit_test_setup(test_abort_resets, setup),
        cmocka_unit_test_setup(test_errors, setup),
        cmocka_unit_test_setup(test_stale_event_dropped, setup),
        cmocka_unit_test_setup(test_resume_redelivers, setup),
        cmocka_unit_test_setup(test_pool_cap_starves_then_resumes, setup),
        cmocka_unit_test_setup(test_drain, setup),
        cmocka_unit_test_setup(test_drain_deadline, setup),
        cmocka_unit_test_setup(test_wants, setup),
        cmocka_unit_test_setup(test_read_pause_resume, setup),
        cmocka_unit_test_setup(test_link_forwards, setup),
        cmocka_unit_test_setup(test_link_backpressure, setup),
        cmocka_unit_test_setup(test_link_half_close, setup),
        cmocka_unit_test_setup(test_link_close_passes_on, setup),
        cmocka_unit_test_setup(test_set_handler, setup),
        cmocka_unit_test_setup(test_set_handler_then_eof, setup),
        cmocka_unit_test_setup(test_send_file_order, setup),
        cmocka_unit_test_setup(test_send_file_budget, setup),
        cmocka_unit_test_setup(test_send_file_errors, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
