/*
 * tests/ft_slow_consumer.c — slow consumers: connections that write and
 * never read.
 *
 * N connections (each with a small receive buffer) write to weft-echo as
 * fast as it takes and never read. The echoes pile up: output passes the
 * high watermark and the server stops reading them; ring memory reaches
 * --pool-max and reading pauses worker-wide; then --output-stall closes
 * each one. Healthy line-echo connections run beside them.
 *
 * Asserts: the server's ring memory (pool_bytes on the admin socket) never
 * passes workers x pool-max, and its RSS never grows by more than that plus
 * slack for the allocator (not under sanitizers, whose quarantine keeps
 * freed memory resident on purpose); every slow
 * connection is closed with output_stall (closed_output_stall == N); the fd
 * count returns to the start; healthy traffic clean and flowing (it may wait
 * while the pool is at its cap, but never fails).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ft_lib.h"

#define WORKERS    2
#define POOL_MAX   (4L << 20)
#define SLACK_KB   (32L << 10) /* allocator and thread overhead over the rings */
#define OVERSHOOT  (1L << 20)
#define STALL_MS   1000
#define GIVE_UP_MS 20000

static const char *const args[] = {
    "--workers",  "2",  "--output-high-wm", "64K",  "--output-low-wm", "16K",
    "--pool-max", "4M", "--output-stall",   "1000", "--sndbuf",        "64K",
    NULL};

int main(int argc, char **argv)
{
    ft_opts o;
    ft_parse(argc, argv, 0, 100, &o);
    ft_need_fds(o.n + 64);
    if (o.baseline_ms > 0)
        return ft_run_baseline("slow_consumer", &o, args);

    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o.echo, args, sock, NULL);
    ft_healthy *h = ft_healthy_start(srv.port, o.healthy_conns, 10, 4);
    ft_fault_nice(1);
    int base_fds = ft_settle(&srv, sock, o.healthy_conns);
    long rss0 = itl_vmrss_kb(srv.pid);

    int n = (int)o.n;
    int *fd = calloc((size_t)n, sizeof(int));
    char *junk = malloc(65536);
    IT_CHECK(fd && junk, "out of memory");
    memset(junk, 'x', 65536);
    for (int i = 0; i < n; i++) {
        fd[i] = itl_connect("127.0.0.1", srv.port, 5000, 4096);
        IT_CHECK(fd[i] >= 0, "slow connect %d: %s", i, strerror(-fd[i]));
    }
    int64_t t0 = itl_now_ms();
    long rss_max = rss0;
    int64_t pool_max_seen = 0;
    uint64_t written = 0;
    int round = 0;
    int open_left = n;
    while (open_left > 0 && itl_now_ms() - t0 < GIVE_UP_MS) {
        for (int i = 0; i < n; i++) {
            if (fd[i] < 0)
                continue;
            ssize_t w = send(fd[i], junk, 65536, MSG_NOSIGNAL);
            if (w > 0)
                written += (uint64_t)w;
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                close(fd[i]); /* closed by the server (the reset of an unread close) */
                fd[i] = -1;
                open_left--;
            }
        }
        long rss = itl_vmrss_kb(srv.pid);
        if (rss > rss_max)
            rss_max = rss;
        if (round++ % 10 == 0) {
            int64_t pb = ft_stat(sock, "pool_bytes");
            if (pb > pool_max_seen)
                pool_max_seen = pb;
        }
        itl_sleep_ms(20);
    }
    int64_t took = itl_now_ms() - t0;
    /* A connection the server closed while our side had nothing to send
     * may not have failed a send yet: the counter is the authority. */
    int64_t stalls = ft_wait_stat(sock, "closed_output_stall", n, 5000);
    fprintf(stderr,
            "slow_consumer: %llu bytes written, rss %ld -> max %ld KiB, "
            "pool_bytes max %lld, closed_output_stall %lld, pool_pauses %lld, bp_pauses %lld, %lld "
            "ms\n",
            (unsigned long long)written, rss0, rss_max, (long long)pool_max_seen, (long long)stalls,
            (long long)ft_stat(sock, "pool_pauses"), (long long)ft_stat(sock, "bp_pauses"),
            (long long)took);
    /* The healthy side first, so its figures are reported even when the
     * fault assertions below fail. */
    ft_healthy_expect_progress(h, 5000, "after the slow consumers");
    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    ft_fault_nice(0);
    ft_healthy_check("slow_consumer", "fault", o.n, &r, 1);
    /* pool_max stops reading the connections that hold memory; one that
     * holds none may still read until twice the cap (workers/conn.c,
     * may_read_past_cap), and a ring already being filled may finish
     * growing, so allow twice the cap and 1 MiB per worker. */
    IT_CHECK(pool_max_seen > 0 && pool_max_seen <= WORKERS * (2 * POOL_MAX + OVERSHOOT),
             "ring memory %lld bytes, caps allow %ld", (long long)pool_max_seen,
             WORKERS * (2 * POOL_MAX + OVERSHOOT));
    IT_CHECK(FT_SANITIZED || rss_max - rss0 < WORKERS * POOL_MAX / 1024 + SLACK_KB,
             "server RSS grew by %ld KiB, caps allow %ld", rss_max - rss0,
             WORKERS * POOL_MAX / 1024 + SLACK_KB);
    IT_CHECK(stalls == n, "closed_output_stall %lld, want %d", (long long)stalls, n);
    for (int i = 0; i < n; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    /* The healthy connections are closed now: the start less those. */
    base_fds -= o.healthy_conns;
    int fds = itl_wait_fds(srv.pid, base_fds, 5000);
    IT_CHECK(fds == base_fds, "server holds %d fds, %d before", fds, base_fds);

    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    free(fd);
    free(junk);
    return 0;
}
