/*
 * tests/io_script.c — the scripted I/O backend (io_script.h).
 *
 * cmocka's assertions longjmp; they are fine here since every call runs on
 * the test's own thread, inside wk_turn.
 */
#include "io_script.h"

#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buffers/ring.h"
#include "workers/loop.h"
#include "workers/slab.h"
#include "workers/worker.h"

sc_script sc;

#define SC_FD0 100

sc_peer *sc_peer_of(int fd)
{
    assert_true(fd >= SC_FD0 && fd < SC_FD0 + SC_PEERS);
    sc_peer *p = &sc.peer[fd - SC_FD0];
    assert_true(p->used);
    return p;
}

void sc_reset_all(void)
{
    for (int i = 0; i < SC_PEERS; i++) {
        free(sc.peer[i].in);
        free(sc.peer[i].out);
    }
    memset(&sc, 0, sizeof(sc));
}

int sc_peer_new(size_t window)
{
    for (int i = 0; i < SC_PEERS; i++)
        if (!sc.peer[i].used) {
            sc_peer *p = &sc.peer[i];
            memset(p, 0, sizeof(*p));
            p->used = true;
            p->in = malloc(SC_BUF);
            p->out = malloc(SC_BUF + 1);
            assert_non_null(p->in);
            assert_non_null(p->out);
            p->window = window;
            return SC_FD0 + i;
        }
    fail_msg("io_script: out of peers");
    return -1;
}

void sc_give(int fd, const void *data, size_t len)
{
    sc_peer *p = sc_peer_of(fd);
    assert_true(p->in_len + len <= SC_BUF);
    memcpy(p->in + p->in_len, data, len);
    p->in_len += len;
}

void sc_eof(int fd) { sc_peer_of(fd)->eof = true; }
void sc_set_error(int fd, int err) { sc_peer_of(fd)->err = err; }

void sc_event(int fd, unsigned ev)
{
    assert_true(sc.nevents < 256);
    sc.events[sc.nevents].fd = fd;
    sc.events[sc.nevents].ev = ev;
    sc.nevents++;
}

const char *sc_output(int fd)
{
    sc_peer *p = sc_peer_of(fd);
    p->out[p->out_len] = '\0';
    return p->out;
}

/* ---- the backend ------------------------------------------------------------ */

static int s_init(wk_worker *w)
{
    sc.inits++;
    w->io_state = &sc;
    return 0;
}

static void s_destroy(wk_worker *w)
{
    sc.destroys++;
    w->io_state = NULL;
}

static int s_attach(wk_worker *w, weft_conn *c)
{
    (void)w;
    sc_peer *p = sc_peer_of(c->fd);
    assert_false(p->attached); /* invariant 2: once */
    p->attached = true;
    p->key = conn_key(c);
    return 0;
}

static ssize_t s_recv(wk_worker *w, weft_conn *c, weft_ring *in, size_t max)
{
    (void)w;
    sc_peer *p = sc_peer_of(c->fd);
    assert_false(p->closed);
    p->recvs++;
    if (p->err)
        return -p->err;
    struct iovec iov[2];
    int k = ring_free_segs(in, iov, max);
    if (k == 0)
        return -ENOBUFS;
    size_t avail = p->in_len - p->in_off, n = 0;
    for (int i = 0; i < k && n < avail; i++) {
        size_t m = iov[i].iov_len < avail - n ? iov[i].iov_len : avail - n;
        memcpy(iov[i].iov_base, p->in + p->in_off + n, m);
        n += m;
    }
    if (n == 0)
        return p->eof ? 0 : -EAGAIN;
    p->in_off += n;
    ring_produce(in, n);
    return (ssize_t)n;
}

static ssize_t s_send(wk_worker *w, weft_conn *c, weft_ring *out, size_t max)
{
    (void)w;
    sc_peer *p = sc_peer_of(c->fd);
    assert_false(p->closed);
    p->sends++;
    if (p->err)
        return -p->err;
    size_t len = weft_ring_len(out);
    if (len > max)
        len = max;
    if (len == 0)
        return 0;
    if (p->window == 0)
        return -EAGAIN;
    size_t n = len < p->window ? len : p->window;
    assert_true(p->out_len + n <= SC_BUF);
    weft_ring_copyout(out, 0, p->out + p->out_len, n);
    weft_ring_consume(out, n);
    p->out_len += n;
    p->window -= n;
    return (ssize_t)n;
}

static int s_connect(wk_worker *w, weft_conn *c, const struct sockaddr *sa, socklen_t len,
                     unsigned sockopts)
{
    (void)w;
    (void)sa;
    (void)len;
    (void)sockopts;
    sc.connects++;
    if (sc.connect_rc < 0 || sc.connect_fd < 0)
        return sc.connect_rc < 0 ? sc.connect_rc : -ECONNREFUSED;
    c->fd = sc.connect_fd;
    sc_peer *p = sc_peer_of(c->fd);
    assert_false(p->attached);
    p->attached = true;
    p->key = conn_key(c);
    return sc.connect_rc;
}

static int s_connected(wk_worker *w, weft_conn *c)
{
    (void)w;
    (void)c;
    return sc.connected_rc;
}

/* A file's bytes through the peer's window, read with pread. */
static ssize_t s_sendfile(wk_worker *w, weft_conn *c, int fd, off_t *off, size_t len)
{
    (void)w;
    sc_peer *p = sc_peer_of(c->fd);
    assert_false(p->closed);
    p->sendfiles++;
    if (p->err)
        return -p->err;
    if (p->window == 0)
        return -EAGAIN;
    size_t n = len < p->window ? len : p->window;
    assert_true(p->out_len + n <= SC_BUF);
    ssize_t k = pread(fd, p->out + p->out_len, n, *off);
    if (k <= 0)
        return k < 0 ? -errno : 0;
    *off += k;
    p->out_len += (size_t)k;
    p->window -= (size_t)k;
    return k;
}

static int s_shutdown_wr(wk_worker *w, weft_conn *c)
{
    (void)w;
    sc_peer_of(c->fd)->shut_wr = true;
    return 0;
}

static void s_close(wk_worker *w, weft_conn *c, bool reset)
{
    (void)w;
    sc_peer *p = sc_peer_of(c->fd);
    assert_false(p->closed);
    p->closed = true;
    p->reset = reset;
    c->fd = -1;
}

static void s_discard(wk_worker *w, int fd)
{
    (void)w;
    if (fd >= SC_FD0 && fd < SC_FD0 + SC_PEERS)
        sc_peer_of(fd)->closed = true;
    else
        close(fd); /* a real fd: a file the connection queued */
}

static int s_wait(wk_worker *w, int timeout_ms)
{
    sc.waits++;
    sc.last_timeout = timeout_ms;
    int n = 0;
    if (sc.woken) {
        sc.woken = 0;
        wk_io_woken(w);
        n++;
    }
    /* Events queued while reporting (none here) would wait for the next. */
    int k = sc.nevents;
    sc.nevents = 0;
    for (int i = 0; i < k; i++) {
        sc_peer *p = sc_peer_of(sc.events[i].fd);
        if (p->attached)
            wk_io_event(w, p->key, sc.events[i].ev);
        n++;
    }
    return n;
}

static void s_wake(wk_worker *w)
{
    (void)w;
    sc.woken = 1;
}

const wk_io_ops sc_ops = {
    .name = "script",
    .init = s_init,
    .destroy = s_destroy,
    .attach = s_attach,
    .recv = s_recv,
    .send = s_send,
    .sendfile = s_sendfile,
    .connect = s_connect,
    .connected = s_connected,
    .shutdown_wr = s_shutdown_wr,
    .close = s_close,
    .discard = s_discard,
    .wait = s_wait,
    .wake = s_wake,
};

/* ---- the world ---------------------------------------------------------------- */

static void sc_log(void *ctx, int level, int limit, const char *line)
{
    (void)ctx;
    (void)level;
    (void)limit;
    strncpy(sc.lastlog, line, sizeof(sc.lastlog) - 1);
    sc.nlogs++;
}

void sc_world_init(sc_world *x, const weft_config *cfg, const weft_handler *h)
{
    memset(x, 0, sizeof(*x));
    x->cfg = *cfg;
    x->h = *h;
    x->g = (wk_group){.cfg = &x->cfg,
                      .h = &x->h,
                      .srv = NULL,
                      .nworkers = 1,
                      .workers = x->ws,
                      .io = &sc_ops,
                      .log = sc_log};
    assert_int_equal(wk_create(&x->g, 0, -1, &x->w), 0);
    x->ws[0] = x->w;
    x->origin = (wk_origin){.h = &x->h, .listener = 0};
    assert_int_equal(wk_loop_init(x->w), 0);
    x->w->started = 1;
}

void sc_world_free(sc_world *x)
{
    wk_loop_fini(x->w);
    wk_destroy(x->w);
}

int sc_turn(sc_world *x) { return wk_turn(x->w); }

weft_conn *sc_adopt(sc_world *x, int fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(4242)};
    a.sin_addr.s_addr = htonl(0x7f000001);
    assert_int_equal(wk_adopt(x->w, fd, (struct sockaddr *)&a, sizeof(a), &x->origin, NULL), 0);
    assert_true(sc.woken); /* the inbox was empty: the producer woke us */
    sc_turn(x);
    sc_peer *p = sc_peer_of(fd);
    if (!p->attached)
        return NULL;
    return wk_conn_at(x->w, (uint32_t)p->key);
}
