/*
 * peer-libuv — an echo server for the weft benchmarks on libuv. --threads N
 * runs N loops, each in its own thread with its own listening socket bound
 * with SO_REUSEPORT, so the kernel spreads connections over them; --threads 1
 * (the default) is the classic single libuv loop.
 */
#define PEER_NAME "peer-libuv"

#include "peer_common.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static const struct peer_desc g_desc = {
    .name = PEER_NAME,
    .about = "Echo server for the weft benchmarks: libuv, a loop per thread.",
    .threads_help = "event loops, each with its own SO_REUSEPORT socket (default 1)",
    .default_threads = 1,
};

/* ---- a connection and its ring ---------------------------------------------- */

/*
 * Each connection echoes out of one ring of RING_CAP bytes: the alloc callback
 * hands libuv the free space after the ring's tail, and the read callback
 * writes exactly the bytes read back: with uv_try_write first when no write is
 * in flight (so the common echo costs one write(2) and no epoll_ctl), and
 * whatever the socket did not take as one queued uv_write, whose callback
 * frees its bytes at the head (libuv completes a stream's writes in order). A full ring,
 * or MAX_WRITES writes in flight, stops reading until half of it has drained.
 * So a client that does not read costs one ring; a connection with nothing in
 * flight gives its ring back to the loop's pool, and an idle one holds none.
 */
#define RING_CAP   PEER_OUT_LIMIT
#define MAX_WRITES 64 /* bounds the requests, whatever the size of the reads */
#define POOL_KEEP  16 /* rings each loop keeps for reuse (4 MiB) */

struct wreq {
    uv_write_t req;
    size_t len;
    struct wreq *next; /* in the loop's free list */
};

struct loop_ctx {
    uv_loop_t loop;
    uv_tcp_t server; /* this loop's own listening socket (SO_REUSEPORT) */
    uv_async_t stop;
    uv_thread_t thread;
    struct wreq *free_reqs;
    void *free_rings; /* each free ring's first bytes point to the next */
    int nfree_rings;
    unsigned long accepted;
};

struct conn {
    uv_tcp_t tcp;
    struct loop_ctx *lc;
    char *ring; /* in flight: [head, tail), or [head, RING_CAP) + [0, tail) when wrapped */
    size_t head, tail, used;
    int nwrites;
    bool reading, eof, closing;
};

static char *ring_get(struct loop_ctx *lc)
{
    char *r = lc->free_rings;
    if (!r)
        return malloc(RING_CAP);
    memcpy(&lc->free_rings, r, sizeof(void *));
    lc->nfree_rings--;
    return r;
}

static void ring_put(struct loop_ctx *lc, char *r)
{
    if (lc->nfree_rings >= POOL_KEEP) {
        free(r);
        return;
    }
    memcpy(r, &lc->free_rings, sizeof(void *));
    lc->free_rings = r;
    lc->nfree_rings++;
}

static struct wreq *wreq_get(struct loop_ctx *lc)
{
    struct wreq *w = lc->free_reqs;
    if (!w)
        return malloc(sizeof(*w));
    lc->free_reqs = w->next;
    return w;
}

static void wreq_put(struct loop_ctx *lc, struct wreq *w)
{
    w->next = lc->free_reqs;
    lc->free_reqs = w;
}

/* Gives the ring back when nothing is in flight. */
static void release_if_idle(struct conn *c)
{
    if (c->ring && c->used == 0) {
        ring_put(c->lc, c->ring);
        c->ring = NULL;
    }
}

/*
 * The contiguous free space at the tail. The tail wraps to 0 only once it
 * reaches RING_CAP, so every write covers a range that ends at or before
 * RING_CAP and the head, freeing the same ranges in order, wraps exactly there.
 */
static size_t ring_space(struct conn *c)
{
    if (c->used == 0)
        c->head = c->tail = 0;
    bool wrapped = c->used > 0 && c->tail <= c->head;
    if (!wrapped && c->tail == RING_CAP) {
        c->tail = 0;
        wrapped = true;
    }
    return wrapped ? c->head - c->tail : RING_CAP - c->tail;
}

static void on_close(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (c->ring)
        ring_put(c->lc, c->ring);
    free(c);
}

/* Closes c; its writes still in flight complete with UV_ECANCELED before on_close. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    if (!c->ring) {
        c->ring = ring_get(c->lc);
        c->head = c->tail = c->used = 0;
        if (!c->ring) {
            *buf = uv_buf_init(NULL, 0); /* the read callback gets UV_ENOBUFS */
            return;
        }
    }
    size_t n = ring_space(c);
    *buf = uv_buf_init(c->ring + c->tail, (unsigned)n);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)((char *)req - offsetof(struct wreq, req));
    struct conn *c = req->handle->data;
    size_t len = w->len;
    wreq_put(c->lc, w);
    c->nwrites--;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->used -= len;
    c->head += len;
    if (c->used == 0)
        c->head = c->tail = 0;
    else if (c->head == RING_CAP)
        c->head = 0;
    if (c->eof) {
        if (c->nwrites == 0)
            conn_close(c);
        return;
    }
    release_if_idle(c);
    /* Resume at half, so a slow reader does not flip reading on and off per write. */
    if (!c->reading && !c->closing && c->used <= RING_CAP / 2 && c->nwrites <= MAX_WRITES / 2) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    }
}

static void stop_reading(struct conn *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread > 0) {
        /* buf->base is c->ring + c->tail: on_alloc handed it out just now. */
        c->tail += (size_t)nread;
        c->used += (size_t)nread;
        size_t sent = 0;
        if (c->nwrites == 0) {
            /*
             * Nothing in flight: try the write now, as libuv's users do
             * (uv_try_write), and queue only what the socket does not take.
             * Only then, so that the ring is freed in order: these bytes are
             * the whole ring, starting at its head.
             */
            uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
            int n = uv_try_write(s, &b, 1);
            if (n < 0 && n != UV_EAGAIN) {
                conn_close(c);
                return;
            }
            if (n > 0) {
                sent = (size_t)n;
                c->head += sent;
                c->used -= sent;
            }
            if (sent == (size_t)nread) {
                release_if_idle(c);
                return;
            }
        }
        struct wreq *w = wreq_get(c->lc);
        if (!w) {
            conn_close(c);
            return;
        }
        w->len = (size_t)nread - sent;
        uv_buf_t b = uv_buf_init(buf->base + sent, (unsigned)w->len);
        if (uv_write(&w->req, s, &b, 1, on_write) != 0) {
            wreq_put(c->lc, w);
            conn_close(c);
            return;
        }
        c->nwrites++;
        if (c->used >= RING_CAP || c->nwrites >= MAX_WRITES)
            stop_reading(c);
        return;
    }
    if (nread == 0) { /* EAGAIN */
        release_if_idle(c);
        return;
    }
    if (nread == UV_ENOBUFS && c->nwrites > 0) { /* ring full: on_write resumes */
        stop_reading(c);
        return;
    }
    if (nread == UV_EOF) { /* the client is done sending: finish the echo, then close */
        c->eof = true;
        stop_reading(c);
        if (c->nwrites == 0)
            conn_close(c);
        return;
    }
    conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct loop_ctx *lc = server->data;
    if (status < 0) {
        fprintf(stderr, PEER_NAME ": accept: %s\n", uv_strerror(status));
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        /* libuv stops accepting until uv_accept is called; nothing sensible is left. */
        fprintf(stderr, PEER_NAME ": out of memory\n");
        exit(1);
    }
    c->lc = lc;
    uv_tcp_init(&lc->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    lc->accepted++;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

/* ---- loops, threads, shutdown ----------------------------------------------- */

static void on_stop(uv_async_t *a) { uv_stop(a->loop); }

static void loop_main(void *arg)
{
    struct loop_ctx *lc = arg;
    uv_run(&lc->loop, UV_RUN_DEFAULT);
}

/*
 * Loop i on its own listening socket. With several loops each socket has
 * SO_REUSEPORT, so the kernel spreads new connections over them; the first
 * one picks the port when --port is 0.
 */
static int loop_setup(struct loop_ctx *lc, const char *addr, unsigned port, bool reuseport,
                      unsigned *bound)
{
    int fd = peer_open_listener(addr, port, reuseport, bound);
    if (fd < 0)
        return fd;
    int err = uv_loop_init(&lc->loop);
    if (err) {
        close(fd);
        return err;
    }
    uv_tcp_init(&lc->loop, &lc->server);
    lc->server.data = lc;
    if ((err = uv_tcp_open(&lc->server, fd)) != 0 ||
        (err = uv_listen((uv_stream_t *)&lc->server, 4096, on_connection)) != 0 ||
        (err = uv_async_init(&lc->loop, &lc->stop, on_stop)) != 0)
        return err;
    return 0;
}

int main(int argc, char **argv)
{
    struct peer_opts o;
    int rc = peer_init(argc, argv, &g_desc, &o);
    if (rc != PEER_RUN)
        return rc;
    /* libuv writes with write(2)/writev(2): a closed peer would raise SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    /* Blocked here, and so in every loop thread: only sigwait below takes them. */
    sigset_t sigs;
    peer_block_stop_signals(&sigs, NULL);

    struct loop_ctx *lcs = calloc((size_t)o.threads, sizeof(*lcs));
    if (!lcs) {
        fprintf(stderr, PEER_NAME ": out of memory\n");
        return 1;
    }
    unsigned port = o.port;
    for (int i = 0; i < o.threads; i++) {
        int err = loop_setup(&lcs[i], o.bind, port, o.threads > 1, &port);
        if (err) {
            fprintf(stderr, PEER_NAME ": listen on %s:%u: %s\n", o.bind, port, strerror(-err));
            return 1;
        }
    }
    for (int i = 0; i < o.threads; i++) {
        if (uv_thread_create(&lcs[i].thread, loop_main, &lcs[i]) != 0) {
            fprintf(stderr, PEER_NAME ": cannot start loop thread %d\n", i);
            return 1;
        }
    }
    peer_print_ready(o.bind, port);

    int sig;
    while (sigwait(&sigs, &sig) != 0)
        ;
    unsigned long accepted = 0;
    for (int i = 0; i < o.threads; i++)
        uv_async_send(&lcs[i].stop);
    for (int i = 0; i < o.threads; i++) {
        uv_thread_join(&lcs[i].thread);
        accepted += lcs[i].accepted;
    }
    fprintf(stderr, PEER_NAME ": %d loop%s, accepted %lu connections\n", o.threads,
            o.threads == 1 ? "" : "s", accepted);
    return 0;
}
