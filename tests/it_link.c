/*
 * tests/it_link.c — a linked pair (weft_link) on real sockets: 1 GiB each
 * way at once, byte-exact, through an in-process proxy (every accepted
 * connection connects to a backend and is linked to it), while the
 * backend reads slowly for its first 8 MiB; the proxy's ring memory stays
 * within what the watermarks allow the two connections; the backend's
 * FIN reaches the client after the last byte, and both proxy connections
 * close (reason peer).
 *
 * WEFT_IT_LINK_MB sets the size each way (default 1024; the sanitizer
 * builds run 256).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itlib.h"
#include "weft/weft.h"

static uint64_t g_total;
static char g_backend[64];

/* ---- the proxy ---------------------------------------------------------------- */

static void sink(weft_conn *c, weft_ring *in)
{
    (void)c;
    weft_ring_consume(in, weft_ring_len(in));
}
static const weft_handler backend_h = {.on_data = sink};

static void client_open(weft_conn *c)
{
    weft_conn *b;
    int rc = weft_connect(weft_conn_server(c), weft_conn_worker(c), g_backend, NULL, &backend_h,
                          NULL, &b);
    if (rc != 0 || weft_link(c, b) != 0)
        weft_abort(c);
}
static const weft_handler client_h = {.on_open = client_open, .on_data = sink};

/* ---- the two ends ---------------------------------------------------------------- */

typedef struct end {
    int fd;
    uint64_t seed_out, seed_in; /* the stream it sends, the one it expects */
    uint64_t slow_bytes;        /* read slowly until this many arrived */
    uint64_t sent, got;
    int eof;  /* the other end's FIN came after every byte */
    int done; /* atomic: pump returned (the main thread reads the rest after the join) */
    char err[160];
} end;

/* Send the stream and check what comes back, both at once, to the end. */
static void *pump(void *arg)
{
    end *e = arg;
    itl_stream out, in;
    itl_stream_init(&out, e->seed_out);
    itl_stream_init(&in, e->seed_in);
    static _Thread_local unsigned char wbuf[1 << 16], rbuf[1 << 16];
    size_t wlen = 0, woff = 0;
    int64_t deadline = itl_now_ms() + 240000;
    int shut = 0;
    /* Until both: everything sent (and our FIN), and the other end's FIN. */
    while (!(e->eof && shut) && !e->err[0]) {
        if (itl_now_ms() > deadline) {
            snprintf(e->err, sizeof(e->err), "timeout: sent %llu, got %llu",
                     (unsigned long long)e->sent, (unsigned long long)e->got);
            break;
        }
        if (woff == wlen && e->sent < g_total) {
            wlen = g_total - e->sent < sizeof(wbuf) ? (size_t)(g_total - e->sent) : sizeof(wbuf);
            itl_stream_fill(&out, wbuf, wlen);
            woff = 0;
        }
        if (e->sent == g_total && !shut) {
            shutdown(e->fd, SHUT_WR); /* our FIN after our last byte */
            shut = 1;
        }
        struct pollfd pf = {.fd = e->fd,
                            .events = (e->eof ? 0 : POLLIN) | (woff < wlen ? POLLOUT : 0)};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        if ((pf.revents & POLLOUT) && woff < wlen) {
            ssize_t n = write(e->fd, wbuf + woff, wlen - woff);
            if (n > 0) {
                woff += (size_t)n;
                e->sent += (uint64_t)n;
            } else if (errno != EAGAIN) {
                snprintf(e->err, sizeof(e->err), "write: %s", strerror(errno));
            }
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            size_t want = sizeof(rbuf);
            if (e->got < e->slow_bytes) {
                itl_sleep_ms(1); /* slow: 4 KiB a millisecond at most */
                want = 4096;
            }
            ssize_t n = read(e->fd, rbuf, want);
            if (n > 0) {
                long bad = itl_stream_verify(&in, rbuf, (size_t)n);
                if (bad >= 0)
                    snprintf(e->err, sizeof(e->err), "byte %llu is wrong",
                             (unsigned long long)(e->got + (uint64_t)bad));
                e->got += (uint64_t)n;
                if (e->got > g_total)
                    snprintf(e->err, sizeof(e->err), "more than %llu bytes",
                             (unsigned long long)g_total);
            } else if (n == 0) {
                if (e->got != g_total)
                    snprintf(e->err, sizeof(e->err), "EOF after %llu of %llu",
                             (unsigned long long)e->got, (unsigned long long)g_total);
                e->eof = 1;
            } else if (errno != EAGAIN) {
                snprintf(e->err, sizeof(e->err), "read: %s", strerror(errno));
            }
        }
    }
    __atomic_store_n(&e->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

int main(void)
{
    const char *mb = getenv("WEFT_IT_LINK_MB");
    g_total = (uint64_t)(mb ? atoi(mb) : 1024) << 20;

    /* The backend: a plain listening socket of this test. */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    IT_CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 4) == 0 &&
                 getsockname(lfd, (struct sockaddr *)&a, &alen) == 0,
             "backend listener");
    snprintf(g_backend, sizeof(g_backend), "127.0.0.1:%u", ntohs(a.sin_port));

    weft_config cfg = weft_config_default();
    cfg.port = 0;
    cfg.workers = 1;
    cfg.stats_interval_ms = 0;
    cfg.pool_cache_bytes = 256u << 10;
    weft_handler none = {.on_data = sink};
    weft_server *s;
    IT_CHECK(weft_server_new(&cfg, &none, NULL, &s) == 0, "server");
    weft_listener_opts lo = {.addr = "127.0.0.1:0", .handler = &client_h};
    int li = weft_server_listen(s, &lo);
    IT_CHECK(li > 0, "proxy listener");
    IT_CHECK(weft_server_start(s) == 0, "start");

    end client = {.seed_out = 11, .seed_in = 22};
    end backend = {.seed_out = 22, .seed_in = 11, .slow_bytes = 8u << 20};
    client.fd = itl_connect("127.0.0.1", weft_server_listener_port(s, li), 2000, 0);
    IT_CHECK(client.fd >= 0, "client connect");
    backend.fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    IT_CHECK(backend.fd >= 0, "the proxy's connect reached the backend");
    pthread_t tc, tb;
    int64_t t0 = itl_now_ms();
    pthread_create(&tc, NULL, pump, &client);
    pthread_create(&tb, NULL, pump, &backend);

    /* The proxy's ring memory while it runs. */
    uint64_t max_pool = 0;
    for (;;) {
        weft_stats st;
        weft_server_stats(s, &st);
        if (st.pool_bytes > max_pool)
            max_pool = st.pool_bytes;
        if (__atomic_load_n(&client.done, __ATOMIC_ACQUIRE) &&
            __atomic_load_n(&backend.done, __ATOMIC_ACQUIRE))
            break;
        itl_sleep_ms(5);
    }
    pthread_join(tc, NULL);
    pthread_join(tb, NULL);
    int64_t ms = itl_now_ms() - t0;
    IT_CHECK(!client.err[0], "client: %s", client.err);
    IT_CHECK(!backend.err[0], "backend: %s", backend.err);
    IT_CHECK(client.got == g_total && backend.got == g_total, "both got everything");

    /*
     * Each direction's output may hold the high watermark plus one read
     * before its producer pauses; a ring grows by doubling to hold it. Two
     * directions, two input rings, and the pool's cache. A ring grows by
     * moving into a ring twice its size, so for that copy the old one (at
     * most half the largest) is held beside its successor.
     */
    uint64_t out_ring = 1;
    while (out_ring < (uint64_t)cfg.output_high_wm + cfg.read_budget)
        out_ring <<= 1;
    uint64_t bound =
        2 * out_ring + out_ring / 2 + 2 * (uint64_t)cfg.ring_size + cfg.pool_cache_bytes;
    IT_CHECK(max_pool <= bound, "ring memory reached %llu bytes, bound %llu",
             (unsigned long long)max_pool, (unsigned long long)bound);

    /* Both FINs crossed: the proxy closes both sides, reason peer. */
    weft_stats st;
    for (int i = 0; i < 200; i++) {
        weft_server_stats(s, &st);
        if (st.closed == 2)
            break;
        itl_sleep_ms(10);
    }
    IT_CHECK(st.closed == 2 && st.closed_by[WEFT_CLOSE_PEER] == 2, "closed %llu (peer %llu)",
             (unsigned long long)st.closed, (unsigned long long)st.closed_by[WEFT_CLOSE_PEER]);
    close(client.fd);
    close(backend.fd);
    close(lfd);
    weft_server_stop(s);
    IT_CHECK(weft_server_wait(s) == 0, "wait");
    weft_server_free(s);
    printf("it_link: %llu MiB each way in %lld ms, byte-exact, ring memory at most %llu KiB "
           "(bound %llu KiB), both closed by peer: ok\n",
           (unsigned long long)(g_total >> 20), (long long)ms, (unsigned long long)(max_pool >> 10),
           (unsigned long long)(bound >> 10));
    return 0;
}
