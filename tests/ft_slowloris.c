/*
 * tests/ft_slowloris.c — slowloris: many connections trickle a partial line.
 *
 * N connections to `weft-echo --lines --input-stall 1000` each send one byte
 * every 200 ms and never a newline, so every one holds a partial message in
 * its input ring. The input-stall defence must close all N
 * (closed_input_stall == N on the admin socket, the fd count back to the
 * start), while 16 healthy line-echo connections beside them keep getting
 * every byte back.
 *
 * Asserts: closed_input_stall == N within 10 s of the first byte; each
 * slow connection sees the close (EOF or reset); the server's fd count
 * returns to what it was before; healthy traffic clean and flowing.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ft_lib.h"

#define TRICKLE_MS 200
#define GIVE_UP_MS 10000

static const char *const args[] = {"--lines", "--input-stall", "1000", "--workers", "2", NULL};

int main(int argc, char **argv)
{
    ft_opts o;
    ft_parse(argc, argv, 0, 200, &o);
    ft_need_fds(o.n + 64);
    if (o.baseline_ms > 0)
        return ft_run_baseline("slowloris", &o, args);

    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o.echo, args, sock, NULL);
    ft_healthy *h = ft_healthy_start(srv.port, o.healthy_conns, 10, 1);
    ft_fault_nice(1);
    int base_fds = ft_settle(&srv, sock, o.healthy_conns);

    int n = (int)o.n;
    int *fd = calloc((size_t)n, sizeof(int));
    IT_CHECK(fd, "out of memory");
    for (int i = 0; i < n; i++) {
        fd[i] = itl_connect("127.0.0.1", srv.port, 5000, 0);
        IT_CHECK(fd[i] >= 0, "slow connect %d: %s", i, strerror(-fd[i]));
    }
    int64_t t0 = itl_now_ms();
    int open_left = n;
    while (open_left > 0 && itl_now_ms() - t0 < GIVE_UP_MS) {
        for (int i = 0; i < n; i++) {
            if (fd[i] < 0)
                continue;
            char c;
            ssize_t r = read(fd[i], &c, 1);
            IT_CHECK(r <= 0, "slow conn %d got an echo of a partial line", i);
            int closed = r == 0 || (r < 0 && errno != EAGAIN);
            if (!closed && send(fd[i], "s", 1, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
                closed = 1;
            if (closed) {
                close(fd[i]);
                fd[i] = -1;
                open_left--;
            }
        }
        itl_sleep_ms(TRICKLE_MS);
    }
    int64_t took = itl_now_ms() - t0;
    ft_healthy_expect_progress(h, 5000, "after the slow connections");
    int64_t stalls = ft_wait_stat(sock, "closed_input_stall", n, 3000);
    fprintf(stderr,
            "slowloris: %d of %d slow connections still open after %lld ms; "
            "closed_input_stall %lld\n",
            open_left, n, (long long)took, (long long)stalls);
    /* The healthy side first, so its figures are reported even when the
     * fault assertions below fail. */
    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    ft_fault_nice(0);
    ft_healthy_check("slowloris", "fault", o.n, &r, 1);
    IT_CHECK(open_left == 0, "%d slow connections trickling a byte every %d ms were never closed",
             open_left, TRICKLE_MS);
    IT_CHECK(stalls == n, "closed_input_stall %lld, want %d", (long long)stalls, n);
    /* The healthy connections are closed now: the start less those. */
    base_fds -= o.healthy_conns;
    int fds = itl_wait_fds(srv.pid, base_fds, 5000);
    IT_CHECK(fds == base_fds, "server holds %d fds, %d before the fault", fds, base_fds);

    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    free(fd);
    return 0;
}
