/*
 * tests/ft_oversize.c — oversize input: a 64 MiB line to a server whose
 * longest line is 1 MiB.
 *
 * N connections (1 in CI) each send 64 MiB with no newline to
 * `weft-echo --lines --max-line 1M`. The server must close each when its
 * partial line reaches the input cap, without buffering more than the cap.
 *
 * Asserts: closed_input_cap == N; each sender's write fails (reset or
 * broken pipe) well before 64 MiB got through; the server's RSS grew by
 * less than N x (2 x the cap) plus slack; healthy traffic clean and flowing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ft_lib.h"

#define MSG      (64L << 20)
#define CAP_KB   1024L
#define SLACK_KB (16L << 10)

static const char *const args[] = {"--lines", "--max-line", "1M", "--workers", "2", NULL};

int main(int argc, char **argv)
{
    ft_opts o;
    ft_parse(argc, argv, 0, 1, &o);
    ft_need_fds(o.n + 64);
    if (o.baseline_ms > 0)
        return ft_run_baseline("oversize", &o, args);

    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o.echo, args, sock, NULL);
    ft_healthy *h = ft_healthy_start(srv.port, o.healthy_conns, 10, 5);
    ft_fault_nice(1);
    long rss0 = itl_vmrss_kb(srv.pid);

    int n = (int)o.n;
    int *fd = calloc((size_t)n, sizeof(int));
    long *sent = calloc((size_t)n, sizeof(long));
    char *junk = malloc(65536);
    IT_CHECK(fd && sent && junk, "out of memory");
    memset(junk, 'o', 65536);
    for (int i = 0; i < n; i++) {
        fd[i] = itl_connect("127.0.0.1", srv.port, 5000, 0);
        IT_CHECK(fd[i] >= 0, "connect %d: %s", i, strerror(-fd[i]));
    }
    int64_t t0 = itl_now_ms();
    long rss_max = rss0;
    int open_left = n;
    while (open_left > 0 && itl_now_ms() - t0 < 20000) {
        for (int i = 0; i < n; i++) {
            if (fd[i] < 0)
                continue;
            size_t want = (size_t)(MSG - sent[i] < 65536 ? MSG - sent[i] : 65536);
            ssize_t w = want ? send(fd[i], junk, want, MSG_NOSIGNAL) : 0;
            if (w > 0)
                sent[i] += w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent[i] == MSG) {
                close(fd[i]);
                fd[i] = -1;
                open_left--;
            }
        }
        long rss = itl_vmrss_kb(srv.pid);
        if (rss > rss_max)
            rss_max = rss;
        itl_sleep_ms(1);
    }
    int64_t took = itl_now_ms() - t0;
    int64_t caps = ft_wait_stat(sock, "closed_input_cap", n, 5000);
    fprintf(stderr, "oversize: closed_input_cap %lld, rss %ld -> max %ld KiB, %lld ms\n",
            (long long)caps, rss0, rss_max, (long long)took);
    IT_CHECK(open_left == 0, "%d oversize senders were never cut off", open_left);
    for (int i = 0; i < n; i++)
        IT_CHECK(sent[i] < MSG / 2, "sender %d got %ld bytes through", i, sent[i]);
    IT_CHECK(caps == n, "closed_input_cap %lld, want %d", (long long)caps, n);
    IT_CHECK(FT_SANITIZED || rss_max - rss0 < n * 2 * CAP_KB + SLACK_KB,
             "server RSS grew by %ld KiB", rss_max - rss0);
    ft_healthy_expect_progress(h, 5000, "after the oversize lines");

    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    ft_fault_nice(0);
    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    free(fd);
    free(sent);
    free(junk);
    ft_healthy_check("oversize", "fault", o.n, &r, 1);
    return 0;
}
