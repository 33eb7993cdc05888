/*
 * tests/ft_slow_consumer.c — slow consumers: connections that write and
 * never read, against weft-echo at its default settings.
 *
 * Part 1, every server setting at its default: N connections (each with a
 * 4 KiB receive buffer) write to weft-echo as fast as it takes and never
 * read, for HOLD_MS and until every one of them is paused (FILL_MS at
 * most: the fault side runs at SCHED_IDLE and may be starved on a busy
 * machine), beside the healthy line-echo connections. The echoes
 * pile up in each slow connection's output until the output high watermark
 * stops reading it. Then the slow clients close (with their echoes unread,
 * so the kernel resets) and the server must give everything back.
 * Asserts: each slow connection was paused (bp_pauses >= N); what the
 * server wrote to them stays within SENT_PER_CONN_MAX each (below); the ring
 * memory (pool_bytes, sampled on the admin socket) never passes what the
 * documented per-connection bounds allow (PER_CONN_MAX each, below); RSS
 * grows by no more than that plus slack (not under sanitizers, whose
 * quarantine keeps freed memory resident); after the close, open is back
 * to the healthy connections, pool_bytes to the pool caches and the fd
 * count to its start; the healthy traffic clean and flowing. The healthy
 * latency of this part is the FT_RESULT line (bench/faults.sh compares it
 * with the baseline, also at the defaults).
 *
 * Part 2, the default output stall is 60 s, longer than a test: a second
 * server with --output-stall 1000 and every other setting at its default
 * shows the stall closing them: closed_output_stall == N within the give-up
 * time, fd count back to its start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ft_lib.h"

#define HOLD_MS    3000  /* at least this long, and until every slow one is paused */
#define FILL_MS    25000 /* give up on that (a starved fault side: SCHED_IDLE, busy CPUs) */
#define GIVE_UP_MS 20000
#define STALL_MS   "1000"
/*
 * What one paused slow connection may hold in rings at the defaults: output
 * up to the high watermark (256 KiB) when reading stops, plus what the last
 * read brought over it (the read budget, 64 KiB), in rings that grow by
 * doubling (so up to twice that), plus its input ring (16 KiB).
 */
#define PER_CONN_MAX (2L * (256 + 64) * 1024 + 16 * 1024)
/*
 * What the server may have written to one connection whose peer reads
 * nothing: what the peer's small receive buffer and the window took, plus
 * what waits unsent in the server's socket, which the server keeps under
 * the output high watermark (TCP_NOTSENT_LOWAT, workers/io_sock.c), plus
 * the write that crossed it. Without that bound the kernel's autotuned
 * send buffer took up to tcp_wmem's maximum (4 MiB) per connection, all of
 * it read and echoed by the server first.
 */
#define SENT_PER_CONN_MAX (2L * 256 * 1024 + 64 * 1024 + 64 * 1024)
#define SLACK_KB          (32L << 10) /* allocator and thread overhead over the rings */
#define CACHE_MAX         (4L << 20)  /* --pool-cache default: kept per worker */

static const char *const defaults[] = {NULL};
static const char *const stall_args[] = {"--output-stall", STALL_MS, NULL};

typedef struct slow {
    int *fd;
    int n, open;
    uint64_t written;
    char junk[65536];
} slow;

static void slow_connect(slow *s, uint16_t port, int n)
{
    s->n = s->open = n;
    s->fd = calloc((size_t)n, sizeof(int));
    IT_CHECK(s->fd, "out of memory");
    memset(s->junk, 'x', sizeof(s->junk));
    for (int i = 0; i < n; i++) {
        s->fd[i] = itl_connect("127.0.0.1", port, 5000, 4096);
        IT_CHECK(s->fd[i] >= 0, "slow connect %d: %s", i, strerror(-s->fd[i]));
    }
}

/* One round of writes; a connection the server closed is closed here. */
static void slow_write(slow *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->fd[i] < 0)
            continue;
        ssize_t w = send(s->fd[i], s->junk, sizeof(s->junk), MSG_NOSIGNAL);
        if (w > 0)
            s->written += (uint64_t)w;
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            close(s->fd[i]); /* the reset of the server's unread close */
            s->fd[i] = -1;
            s->open--;
        }
    }
}

static void slow_close(slow *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->fd[i] >= 0)
            close(s->fd[i]);
    free(s->fd);
    s->fd = NULL;
}

static int defaults_part(const ft_opts *o)
{
    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o->echo, defaults, sock, NULL);
    ft_healthy *h = ft_healthy_start(srv.port, o->healthy_conns, 10, 4);
    ft_fault_nice(1);
    int base_fds = ft_settle(&srv, sock, o->healthy_conns);
    int64_t workers = ft_stat(sock, "workers");
    IT_CHECK(workers > 0, "no worker count on the admin socket");
    long rss0 = itl_vmrss_kb(srv.pid);

    int n = (int)o->n;
    static slow s;
    slow_connect(&s, srv.port, n);
    int64_t out0 = ft_stat(sock, "bytes_out");
    uint64_t healthy0 = ft_healthy_bytes(h);
    int64_t t0 = itl_now_ms();
    long rss_max = rss0;
    int64_t pool_seen = 0, pauses = 0;
    int64_t held;
    for (int round = 0;; round++) {
        held = itl_now_ms() - t0;
        if ((held >= HOLD_MS && pauses >= n) || held >= FILL_MS)
            break;
        slow_write(&s);
        long rss = itl_vmrss_kb(srv.pid);
        if (rss > rss_max)
            rss_max = rss;
        if (round % 5 == 0) {
            int64_t pb = ft_stat(sock, "pool_bytes");
            if (pb > pool_seen)
                pool_seen = pb;
            pauses = ft_stat(sock, "bp_pauses");
        }
        itl_sleep_ms(20);
    }
    pauses = ft_stat(sock, "bp_pauses");
    /* The server's own view of the wait: its loop turns (since its start,
     * the fill included), which bound how long a healthy message can wait
     * for its turn. Reported, not asserted (a timing). */
    int64_t turn_p99 = ft_stat(sock, "turn_latency_p99_ns"),
            turn_max = ft_stat(sock, "turn_latency_max_ns");
    /* The server's bytes out less the healthy echoes: what the slow
     * connections were sent (the healthy side's figure lags by at most
     * its messages in flight, 16 x 200 B). */
    int64_t sent_slow =
        ft_stat(sock, "bytes_out") - out0 - (int64_t)(ft_healthy_bytes(h) - healthy0);
    ft_healthy_expect_progress(h, 5000, "while the slow consumers hold their output");
    int closed_early = n - s.open;
    slow_close(&s);
    /* The healthy connections are still open: open must come back to them. */
    int64_t open = ft_wait_stat_eq(sock, "open", o->healthy_conns, 10000);
    int64_t pool_after = ft_wait_stat_eq(sock, "pool_bytes", 0, 2000);
    fprintf(stderr,
            "slow_consumer (defaults, %lld workers): %llu bytes written in %lld ms, rss %ld -> max "
            "%ld KiB, pool_bytes max %lld (%lld per slow conn), sent to them %lld (%lld per slow "
            "conn), bp_pauses %lld, %d closed by the server early, server turns p99 %.2f ms max "
            "%.2f ms; after the close: open %lld, pool_bytes %lld\n",
            (long long)workers, (unsigned long long)s.written, (long long)held, rss0, rss_max,
            (long long)pool_seen, (long long)(pool_seen / n), (long long)sent_slow,
            (long long)(sent_slow / n), (long long)pauses, closed_early, (double)turn_p99 / 1e6,
            (double)turn_max / 1e6, (long long)open, (long long)pool_after);
    /* The healthy side first, so its figures are reported even when the
     * fault assertions below fail. */
    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    ft_fault_nice(0);
    ft_healthy_check("slow_consumer", "fault", o->n, &r, 1);

    IT_CHECK(pauses >= n,
             "bp_pauses %lld after %lld ms: want every one of the %d slow connections paused",
             (long long)pauses, (long long)held, n);
    IT_CHECK(closed_early == 0, "%d slow connections closed within %lld ms at the defaults",
             closed_early, (long long)held);
    IT_CHECK(sent_slow <= (int64_t)n * SENT_PER_CONN_MAX,
             "the server wrote %lld bytes to %d connections that read nothing (%lld each), the "
             "bound is %ld each",
             (long long)sent_slow, n, (long long)(sent_slow / n), SENT_PER_CONN_MAX);
    long cap = (long)n * PER_CONN_MAX + (long)workers * CACHE_MAX;
    IT_CHECK(pool_seen > 0 && pool_seen <= cap, "ring memory %lld bytes, the bounds allow %ld",
             (long long)pool_seen, cap);
    IT_CHECK(FT_SANITIZED || rss_max - rss0 < cap / 1024 + SLACK_KB,
             "server RSS grew by %ld KiB, the bounds allow %ld", rss_max - rss0,
             cap / 1024 + SLACK_KB);
    IT_CHECK(open == o->healthy_conns, "open %lld after the slow clients closed, want %d",
             (long long)open, o->healthy_conns);
    IT_CHECK(pool_after >= 0 && pool_after <= workers * CACHE_MAX,
             "pool_bytes %lld after the slow clients closed, the caches hold at most %lld",
             (long long)pool_after, (long long)(workers * CACHE_MAX));
    base_fds -= o->healthy_conns;
    int fds = itl_wait_fds(srv.pid, base_fds, 5000);
    IT_CHECK(fds == base_fds, "server holds %d fds, %d before", fds, base_fds);
    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    return 0;
}

static int stall_part(const ft_opts *o)
{
    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o->echo, stall_args, sock, NULL);
    int base_fds = ft_settle(&srv, sock, 0);
    ft_fault_nice(1);
    int n = (int)o->n;
    static slow s;
    slow_connect(&s, srv.port, n);
    int64_t t0 = itl_now_ms();
    while (s.open > 0 && itl_now_ms() - t0 < GIVE_UP_MS) {
        slow_write(&s);
        itl_sleep_ms(20);
    }
    int64_t took = itl_now_ms() - t0;
    ft_fault_nice(0);
    /* A connection the server closed while our side had nothing to send
     * may not have failed a send yet: the counter is the authority. */
    int64_t stalls = ft_wait_stat(sock, "closed_output_stall", n, 5000);
    fprintf(stderr,
            "slow_consumer (--output-stall " STALL_MS "): closed_output_stall %lld in %lld ms\n",
            (long long)stalls, (long long)took);
    IT_CHECK(stalls == n, "closed_output_stall %lld, want %d", (long long)stalls, n);
    slow_close(&s);
    int fds = itl_wait_fds(srv.pid, base_fds, 5000);
    IT_CHECK(fds == base_fds, "server holds %d fds, %d before", fds, base_fds);
    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    return 0;
}

int main(int argc, char **argv)
{
    ft_opts o;
    ft_parse(argc, argv, 0, 100, &o);
    ft_need_fds(o.n + 64);
    if (o.baseline_ms > 0)
        return ft_run_baseline("slow_consumer", &o, defaults);
    defaults_part(&o);
    return stall_part(&o);
}
