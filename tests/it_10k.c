/*
 * it_10k — weft-echo holds 10,000 connections at once and gives every fd
 * back when they close.
 *
 * usage: it_10k PATH-TO-WEFT-ECHO
 *
 * Starts weft-echo --max-conns 12000 with 2 workers, notes its fd count,
 * opens 10,000 connections from this process (soft RLIMIT_NOFILE raised to
 * the hard limit), sends a unique message on each and checks each echo.
 * Asserts that all 10,000 are open at the same time (the server's fd count
 * is exactly the start value + 10,000), that after closing them all the
 * count returns exactly to the start value (polled for up to 20 s), that
 * the server still echoes, and that SIGTERM stops it with exit status 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itlib.h"

#define NCONNS  10000
#define MSG_LEN 16

static void message(int i, char *buf)
{
    /* 16 bytes, unique per connection. */
    snprintf(buf, MSG_LEN + 1, "conn-%09d.\n", i);
}

int main(int argc, char **argv)
{
    IT_CHECK(argc == 2, "usage: it_10k PATH-TO-WEFT-ECHO");
    setvbuf(stdout, NULL, _IOLBF, 0);
    long lim = itl_raise_nofile();
    IT_CHECK(lim >= NCONNS + 64, "RLIMIT_NOFILE hard limit %ld is too low for %d connections", lim,
             NCONNS);

    const char *args[] = {"--bind", "127.0.0.1", "--workers", "2", "--max-conns", "12000", NULL};
    itl_server srv;
    int rc = itl_server_start(&srv, argv[1], args, 20000);
    IT_CHECK(rc == 0, "start %s: %s", argv[1], strerror(-rc));
    int base = itl_count_fds(srv.pid);
    IT_CHECK(base > 0, "cannot read /proc/%d/fd", (int)srv.pid);
    int64_t t0 = itl_now_ms();

    int *fds = malloc(NCONNS * sizeof(int));
    IT_CHECK(fds, "out of memory");
    char msg[MSG_LEN + 1], got[MSG_LEN];
    for (int i = 0; i < NCONNS; i++) {
        /*
         * Connect one at a time: the accept queue (somaxconn) is smaller
         * than 10,000, and a SYN dropped on a full queue costs a 1 s retry.
         */
        fds[i] = itl_connect("127.0.0.1", srv.port, 10000, 0);
        IT_CHECK(fds[i] >= 0, "connection %d: connect: %s", i, strerror(-fds[i]));
        message(i, msg);
        rc = itl_write_all(fds[i], msg, MSG_LEN, 10000);
        IT_CHECK(rc == 0, "connection %d: write: %s", i, strerror(-rc));
    }
    int64_t t1 = itl_now_ms();
    for (int i = 0; i < NCONNS; i++) {
        message(i, msg);
        size_t n = 0;
        rc = itl_read_exact(fds[i], got, MSG_LEN, 10000, &n);
        IT_CHECK(rc == 0, "connection %d: echo: %s after %zu bytes", i,
                 rc == -EPIPE ? "EOF" : strerror(-rc), n);
        IT_CHECK(memcmp(got, msg, MSG_LEN) == 0, "connection %d: echo '%.*s' != '%.*s'", i,
                 MSG_LEN - 1, got, MSG_LEN - 1, msg);
    }
    /* Every echo came back, so every connection was accepted and opened. */
    int open = itl_wait_fds(srv.pid, base + NCONNS, 10000);
    IT_CHECK(open == base + NCONNS, "server holds %d fds with %d connections open, want %d", open,
             NCONNS, base + NCONNS);
    printf("10000 connections open at once, all echoed (connect+send %lld ms, echo %lld ms); "
           "server fds %d -> %d\n",
           (long long)(t1 - t0), (long long)(itl_now_ms() - t1), base, open);

    for (int i = 0; i < NCONNS; i++)
        close(fds[i]);
    int after = itl_wait_fds(srv.pid, base, 20000);
    IT_CHECK(after == base, "server holds %d fds after all %d connections closed, %d before", after,
             NCONNS, base);

    /* Still serving. */
    int fd = itl_connect("127.0.0.1", srv.port, 10000, 0);
    IT_CHECK(fd >= 0, "connect after the 10K: %s", strerror(-fd));
    message(NCONNS, msg);
    IT_CHECK(itl_write_all(fd, msg, MSG_LEN, 10000) == 0, "write");
    IT_CHECK(itl_read_exact(fd, got, MSG_LEN, 10000, NULL) == 0 && memcmp(got, msg, MSG_LEN) == 0,
             "echo after the 10K");
    close(fd);

    rc = itl_server_stop(&srv, 20000);
    IT_CHECK(rc == 0, "weft-echo exit status %d after SIGTERM (want 0)", rc);
    free(fds);
    printf("PASS\n");
    return 0;
}
