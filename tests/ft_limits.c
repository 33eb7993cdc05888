/*
 * tests/ft_limits.c — connect storm past --max-conns, and fd exhaustion.
 *
 * Part 1, max_conns: weft-echo with --max-conns (healthy + N/2); N more
 * connections are opened one after another. The first N/2 must be served,
 * the rest closed at accept and counted (rejected_max == N/2).
 *
 * Part 2, EMFILE: weft-echo started under `ulimit -n 128` with --max-conns
 * 1000, so the fd limit and not the gate is what runs out. N/4 connections
 * (more than it can hold) are opened while a connector keeps adding more.
 * The server must keep serving the connections it holds, count the episodes
 * (accept_emfile, accept_shed), not spin (its CPU over 2 s of exhaustion
 * under 50% of one CPU: a generous bound, a correctness check, not a
 * timing), and accept again once fds are free.
 *
 * Healthy line-echo connections run beside both.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ft_lib.h"

static const char line[] = "limit test line\n";
#define LINE_LEN (sizeof(line) - 1)

/* Echo one line on fd: 1 when it came back intact, 0 when the server closed. */
static int echo_ok(int fd, int timeout_ms)
{
    char buf[LINE_LEN];
    if (itl_write_all(fd, line, LINE_LEN, timeout_ms) != 0)
        return 0;
    size_t got = 0;
    int rc = itl_read_exact(fd, buf, LINE_LEN, timeout_ms, &got);
    if (rc == 0)
        IT_CHECK(memcmp(buf, line, LINE_LEN) == 0, "echo differs");
    return rc == 0;
}

static void max_conns_part(const ft_opts *o)
{
    int half = (int)(o->n / 2);
    char mc[32];
    snprintf(mc, sizeof(mc), "%d", half + o->healthy_conns);
    const char *const args[] = {"--workers", "2", "--max-conns", mc, NULL};
    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o->echo, args, sock, NULL);
    ft_healthy *h = ft_healthy_start(srv.port, o->healthy_conns, 10, 6);
    ft_fault_nice(1);
    IT_CHECK(ft_wait_stat_eq(sock, "open", o->healthy_conns, 5000) == o->healthy_conns,
             "healthy connections not open");

    int n = (int)o->n;
    int *fd = calloc((size_t)n, sizeof(int));
    IT_CHECK(fd, "out of memory");
    for (int i = 0; i < n; i++) {
        fd[i] = itl_connect("127.0.0.1", srv.port, 5000, 0);
        IT_CHECK(fd[i] >= 0, "connect %d: %s", i, strerror(-fd[i]));
    }
    int64_t rej = ft_wait_stat(sock, "rejected_max", n - half, 10000);
    IT_CHECK(rej == n - half, "rejected_max %lld, want %d", (long long)rej, n - half);
    ft_healthy_expect_progress(h, 5000, "at max_conns");
    for (int i = 0; i < half; i++)
        IT_CHECK(echo_ok(fd[i], 5000), "connection %d (within max_conns) not served", i);
    for (int i = half; i < n; i++) {
        char c;
        int rc = itl_read_exact(fd[i], &c, 1, 5000, NULL);
        IT_CHECK(rc == -EPIPE || rc == -ECONNRESET, "connection %d (over max_conns): %s", i,
                 strerror(-rc));
    }
    IT_CHECK(ft_stat(sock, "open") == half + o->healthy_conns, "open count");
    fprintf(stderr, "max_conns: %d served, rejected_max %lld\n", half, (long long)rej);
    for (int i = 0; i < n; i++)
        close(fd[i]);
    free(fd);
    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    ft_fault_nice(0);
    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    ft_healthy_check("max_conns", "fault", o->n, &r, 1);
}

static void emfile_part(const ft_opts *o)
{
    const char *const args[] = {"--workers", "2", "--max-conns", "1000", NULL};
    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o->echo, args, sock, "ulimit -n 128;");
    ft_healthy *h = ft_healthy_start(srv.port, 8, 10, 7);
    ft_fault_nice(1);

    int n = (int)(o->n / 4);
    int *fd = calloc((size_t)n, sizeof(int));
    int *live = calloc((size_t)n, sizeof(int));
    IT_CHECK(fd && live, "out of memory");
    for (int i = 0; i < n; i++) {
        fd[i] = itl_connect("127.0.0.1", srv.port, 5000, 0);
        IT_CHECK(fd[i] >= 0, "connect %d: %s", i, strerror(-fd[i]));
    }
    /*
     * While the fds are exhausted the admin socket cannot accept either, so
     * the counters are read only after some are freed (below).
     */
    int nlive = 0;
    for (int i = 0; i < n; i++) {
        live[i] = echo_ok(fd[i], 3000);
        nlive += live[i];
    }
    IT_CHECK(nlive >= 64 && nlive < n, "%d of %d connections served at ulimit 128", nlive, n);

    /* Exhausted, with new connections arriving: the acceptor must not spin. */
    long t0 = ft_cpu_ticks(srv.pid);
    int64_t end = itl_now_ms() + 2000;
    int extra = 0;
    while (itl_now_ms() < end) {
        int e = itl_connect("127.0.0.1", srv.port, 1000, 0);
        if (e >= 0) {
            extra++;
            close(e);
        }
        itl_sleep_ms(20);
    }
    long ticks = ft_cpu_ticks(srv.pid) - t0;
    long hz = sysconf(_SC_CLK_TCK);
    fprintf(stderr, "emfile: %d of %d served; %ld ticks (hz %ld) in 2 s with %d connects\n", nlive,
            n, ticks, hz, extra);
    IT_CHECK(ticks < hz, "server used %ld ticks of CPU in 2 s of fd exhaustion (hz %ld): spinning?",
             ticks, hz);
    ft_healthy_expect_progress(h, 5000, "during fd exhaustion");
    for (int i = 0; i < n; i++)
        if (live[i])
            IT_CHECK(echo_ok(fd[i], 3000), "held connection %d stopped being served", i);

    /* Free 20 fds; new connections must be served again. */
    int freed = 0;
    for (int i = 0; i < n && freed < 20; i++)
        if (live[i]) {
            close(fd[i]);
            fd[i] = -1;
            live[i] = 0;
            freed++;
        }
    int64_t until = itl_now_ms() + 5000;
    while (itl_count_fds(srv.pid) > 128 - freed / 2 && itl_now_ms() < until)
        itl_sleep_ms(20);
    IT_CHECK(itl_count_fds(srv.pid) <= 128 - freed / 2, "the freed connections did not close");
    int64_t em = ft_wait_stat(sock, "accept_emfile", 1, 5000);
    int64_t shed = ft_stat(sock, "accept_shed");
    fprintf(stderr, "emfile: accept_emfile %lld, accept_shed %lld\n", (long long)em,
            (long long)shed);
    IT_CHECK(em >= 1, "accept_emfile %lld after %d connections at ulimit 128", (long long)em, n);
    IT_CHECK(shed >= n - nlive, "accept_shed %lld, %d connections were not served", (long long)shed,
             n - nlive);
    int again = 0, newfd[10];
    for (int k = 0; k < 10; k++) {
        newfd[k] = -1;
        int ok = 0;
        for (int tries = 0; tries < 20 && !ok; tries++) {
            int e = itl_connect("127.0.0.1", srv.port, 3000, 0);
            if (e >= 0 && echo_ok(e, 3000)) {
                ok = 1;
                newfd[k] = e; /* keep it open: it holds one of the freed fds */
            } else {
                if (e >= 0)
                    close(e);
                itl_sleep_ms(50);
            }
        }
        again += ok;
    }
    IT_CHECK(again == 10, "only %d of 10 new connections served after fds were freed", again);
    for (int k = 0; k < 10; k++)
        close(newfd[k]);
    for (int i = 0; i < n; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    free(fd);
    free(live);
    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    ft_fault_nice(0);
    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    ft_healthy_check("emfile", "fault", o->n / 4, &r, 1);
}

int main(int argc, char **argv)
{
    ft_opts o;
    ft_parse(argc, argv, 0, 1000, &o);
    ft_need_fds(o.n + 64);
    if (o.baseline_ms > 0) {
        /* One baseline per part, each like its part without the fault:
         * the emfile part's server runs under ulimit -n 128 with 8 healthy
         * connections. */
        const char *const args[] = {"--workers", "2", NULL};
        const char *const emfile_args[] = {"--workers", "2", "--max-conns", "1000", NULL};
        ft_run_baseline("max_conns", &o, args);
        return ft_run_baseline_as("emfile", &o, emfile_args, "ulimit -n 128;", 8);
    }
    max_conns_part(&o);
    emfile_part(&o);
    return 0;
}
