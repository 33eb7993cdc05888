/*
 * it_halfclose_reset_slow — weft-echo with peers that half-close, reset in
 * the middle of a message, or send without ever reading.
 *
 * usage: it_halfclose_reset_slow PATH-TO-WEFT-ECHO
 *
 * One weft-echo (2 workers, default limits: 256 KiB output high watermark,
 * 4 MiB output cap) and a healthy connection that echoes throughout.
 *  (a) half-close: send, shutdown(SHUT_WR), read to EOF: the whole echo
 *      arrives, in order, before the server's FIN (1000 bytes, and 3 MiB
 *      with writes and reads interleaved so the server's backpressure
 *      pauses and resumes while the FIN is pending).
 *  (b) reset: 20 connections send half a message and close with
 *      SO_LINGER {1, 0} (a RST), some before and some after echo arrived;
 *      the server stays up, the healthy connection still echoes, and the
 *      server's fd count returns to baseline + 1.
 *  (c) a connection writes up to 64 MiB without ever reading: its writes
 *      stall (EAGAIN) long before 64 MiB, the connection is not dropped,
 *      the server's VmRSS grows by less than 16 MiB, and the healthy
 *      connection echoes correctly meanwhile. Closing it returns the fd
 *      count to baseline.
 * Finally SIGTERM stops the server with exit status 0.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itlib.h"

#define MiB (1024ULL * 1024)

static itl_server srv;
static int healthy = -1;
static itl_stream h_tx, h_rx;

/* One round trip of n bytes on the healthy connection, checked. */
static void healthy_echo(size_t n, const char *when)
{
    static char out[65536], in[65536];
    IT_CHECK(n <= sizeof(out), "round trip too large");
    itl_stream_fill(&h_tx, out, n);
    int rc = itl_write_all(healthy, out, n, 10000);
    IT_CHECK(rc == 0, "healthy connection (%s): write: %s", when, strerror(-rc));
    size_t got = 0;
    rc = itl_read_exact(healthy, in, n, 10000, &got);
    IT_CHECK(rc == 0, "healthy connection (%s): echo: %s after %zu of %zu bytes", when,
             rc == -EPIPE ? "EOF" : strerror(-rc), got, n);
    IT_CHECK(itl_stream_verify(&h_rx, in, n) < 0, "healthy connection (%s): echo differs", when);
}

/* (a) Send n bytes, half-close after the last, read everything to EOF. */
static void half_close(uint64_t n, uint64_t seed)
{
    int fd = itl_connect("127.0.0.1", srv.port, 10000, 0);
    IT_CHECK(fd >= 0, "connect: %s", strerror(-fd));
    itl_stream tx, rx;
    itl_stream_init(&tx, seed);
    itl_stream_init(&rx, seed);
    char *buf = malloc(65536);
    IT_CHECK(buf, "out of memory");
    uint64_t sent = 0, got = 0;
    size_t off = 0, len = 0;
    int shut = 0, eof = 0;
    int64_t deadline = itl_now_ms() + 30000;
    while (!eof) {
        IT_CHECK(itl_now_ms() < deadline,
                 "half-close of %llu bytes: %llu sent, %llu echoed, "
                 "no EOF after 30 s",
                 (unsigned long long)n, (unsigned long long)sent, (unsigned long long)got);
        if (!shut && off == len && sent == n) {
            IT_CHECK(shutdown(fd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
            shut = 1;
        }
        struct pollfd p = {.fd = fd, .events = (short)(POLLIN | (shut ? 0 : POLLOUT))};
        if (poll(&p, 1, 200) <= 0)
            continue;
        if (!shut && (p.revents & POLLOUT)) {
            if (off == len) {
                len = (size_t)(n - sent < 65536 ? n - sent : 65536);
                itl_stream_fill(&tx, buf, len);
                sent += len;
                off = 0;
            }
            ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
            IT_CHECK(w >= 0 || errno == EAGAIN, "write: %s", strerror(errno));
            if (w > 0)
                off += (size_t)w;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char in[65536];
            ssize_t r = read(fd, in, sizeof(in));
            IT_CHECK(r >= 0 || errno == EAGAIN, "read: %s after %llu of %llu bytes",
                     strerror(errno), (unsigned long long)got, (unsigned long long)n);
            if (r == 0) {
                eof = 1;
            } else if (r > 0) {
                IT_CHECK(got + (uint64_t)r <= n, "more echoed than sent");
                IT_CHECK(itl_stream_verify(&rx, in, (size_t)r) < 0, "echo differs near %llu",
                         (unsigned long long)got);
                got += (uint64_t)r;
            }
        }
    }
    IT_CHECK(shut, "EOF before we half-closed (after %llu bytes)", (unsigned long long)got);
    IT_CHECK(got == n, "EOF after %llu of %llu echoed bytes", (unsigned long long)got,
             (unsigned long long)n);
    free(buf);
    close(fd);
}

/* (b) Half a message, then a reset; `after_echo` waits for some echo first. */
static void reset_mid_message(size_t n, int after_echo, uint64_t seed)
{
    int fd = itl_connect("127.0.0.1", srv.port, 10000, 0);
    IT_CHECK(fd >= 0, "connect: %s", strerror(-fd));
    char *buf = malloc(n);
    IT_CHECK(buf, "out of memory");
    itl_stream st;
    itl_stream_init(&st, seed);
    itl_stream_fill(&st, buf, n);
    /* The socket takes at least this much at once; the rest is dropped by the reset. */
    int rc = itl_write_all(fd, buf, n, 10000);
    IT_CHECK(rc == 0, "write: %s", strerror(-rc));
    if (after_echo) {
        char c;
        rc = itl_read_exact(fd, &c, 1, 10000, NULL);
        IT_CHECK(rc == 0 && c == buf[0], "no echo before the reset: %s", strerror(-rc));
    }
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    IT_CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, "SO_LINGER");
    close(fd);
    free(buf);
}

/* (c) Write up to `limit` bytes without reading; returns what the socket took. */
static uint64_t never_read(int fd, uint64_t limit)
{
    static char buf[65536];
    memset(buf, 'x', sizeof(buf));
    uint64_t sent = 0, next_check = MiB;
    int64_t start = itl_now_ms(), progress = start;
    /*
     * Bounded in time: stop when 1 s passes without progress (the server
     * stopped reading and every buffer on the way is full), or after 10 s.
     */
    while (sent < limit && itl_now_ms() - progress < 1000 && itl_now_ms() - start < 10000) {
        ssize_t w = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
        if (w > 0) {
            sent += (uint64_t)w;
            progress = itl_now_ms();
            if (sent >= next_check) {
                healthy_echo(4096, "while a peer never reads");
                next_check += MiB;
            }
            continue;
        }
        IT_CHECK(errno == EAGAIN || errno == EINTR,
                 "the server dropped the non-reading connection after %llu bytes: %s",
                 (unsigned long long)sent, strerror(errno));
        healthy_echo(1024, "while a peer's writes stall");
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, 100);
    }
    return sent;
}

int main(int argc, char **argv)
{
    IT_CHECK(argc == 2, "usage: it_halfclose_reset_slow PATH-TO-WEFT-ECHO");
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *args[] = {"--bind", "127.0.0.1", "--workers", "2", NULL};
    int rc = itl_server_start(&srv, argv[1], args, 20000);
    IT_CHECK(rc == 0, "start %s: %s", argv[1], strerror(-rc));
    int base = itl_count_fds(srv.pid);
    IT_CHECK(base > 0, "cannot read /proc/%d/fd", (int)srv.pid);

    healthy = itl_connect("127.0.0.1", srv.port, 10000, 0);
    IT_CHECK(healthy >= 0, "connect: %s", strerror(-healthy));
    itl_stream_init(&h_tx, 99);
    itl_stream_init(&h_rx, 99);
    healthy_echo(4096, "at start");

    /* (a) */
    half_close(1000, 1);
    half_close(3 * MiB, 2);
    healthy_echo(4096, "after the half-closes");
    int n = itl_wait_fds(srv.pid, base + 1, 10000);
    IT_CHECK(n == base + 1, "after the half-closes the server holds %d fds, want %d", n, base + 1);
    printf("(a) half-close: 1000 B and 3 MiB fully echoed before the server's EOF\n");

    /* (b) */
    for (int i = 0; i < 20; i++) {
        reset_mid_message(i % 4 == 0 ? 1 : (size_t)(1000 + i * 10000), i % 2, 100 + (uint64_t)i);
        healthy_echo(4096, "after a peer reset");
    }
    IT_CHECK(itl_server_alive(&srv), "the server died after peer resets");
    n = itl_wait_fds(srv.pid, base + 1, 10000);
    IT_CHECK(n == base + 1, "after 20 resets the server holds %d fds, want %d", n, base + 1);
    printf("(b) reset mid-message x20: server alive, healthy connection echoes, fds back\n");

    /* (c) */
    long rss0 = itl_vmrss_kb(srv.pid);
    IT_CHECK(rss0 > 0, "cannot read VmRSS of %d", (int)srv.pid);
    int stuck = itl_connect("127.0.0.1", srv.port, 10000, 0);
    IT_CHECK(stuck >= 0, "connect: %s", strerror(-stuck));
    uint64_t sent = never_read(stuck, 64 * MiB);
    long rss1 = itl_vmrss_kb(srv.pid);
    healthy_echo(65536, "after a peer's writes stalled");
    printf("(c) a peer that never reads got %.1f MiB into the connection before its writes "
           "stalled; server VmRSS %ld -> %ld KiB\n",
           (double)sent / MiB, rss0, rss1);
    IT_CHECK(sent < 64 * MiB, "the server took all 64 MiB from a peer that never reads");
    IT_CHECK(rss1 - rss0 < 16 * 1024, "server VmRSS grew by %ld KiB (limit 16 MiB)", rss1 - rss0);
    n = itl_count_fds(srv.pid);
    IT_CHECK(n == base + 2, "the non-reading connection was dropped: server holds %d fds, want %d",
             n, base + 2);
    close(stuck);
    n = itl_wait_fds(srv.pid, base + 1, 10000);
    IT_CHECK(n == base + 1, "after closing the stuck peer the server holds %d fds, want %d", n,
             base + 1);
    healthy_echo(4096, "at the end");
    close(healthy);
    n = itl_wait_fds(srv.pid, base, 10000);
    IT_CHECK(n == base, "the server holds %d fds at the end, %d at the start", n, base);

    rc = itl_server_stop(&srv, 20000);
    IT_CHECK(rc == 0, "weft-echo exit status %d after SIGTERM (want 0)", rc);
    printf("PASS\n");
    return 0;
}
