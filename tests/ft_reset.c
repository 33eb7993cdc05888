/*
 * tests/ft_reset.c — reset storm: connections that send half a line and
 * abort.
 *
 * N connections to `weft-echo --lines` each send the first half of a line
 * (so the server holds a partial message for them) and close with SO_LINGER
 * {1, 0}, which sends a reset. They come in waves of 100 open at once.
 * The server must survive, close every one (as an error or a peer close),
 * and come back to the fd count it had before; the healthy connections
 * beside them keep getting every byte back.
 *
 * Asserts: the server is alive; accepted counts every aborted connection;
 * open returns to the healthy connections only; fd count back to the start;
 * healthy traffic clean and flowing during the storm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ft_lib.h"

#define WAVE 100

static const char *const args[] = {"--lines", "--workers", "2", NULL};

static void abort_conn(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

int main(int argc, char **argv)
{
    ft_opts o;
    ft_parse(argc, argv, 0, 3000, &o);
    ft_need_fds(WAVE + 64);
    if (o.baseline_ms > 0)
        return ft_run_baseline("reset", &o, args);

    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o.echo, args, sock, NULL);
    ft_healthy *h = ft_healthy_start(srv.port, o.healthy_conns, 10, 2);
    ft_fault_nice(1);
    int base_fds = ft_settle(&srv, sock, o.healthy_conns);
    int64_t acc0 = ft_stat(sock, "accepted");

    int fd[WAVE];
    int64_t t0 = itl_now_ms();
    static const char half[] = "half a li";
    for (long done = 0; done < o.n;) {
        int k = o.n - done < WAVE ? (int)(o.n - done) : WAVE;
        for (int i = 0; i < k; i++) {
            fd[i] = itl_connect("127.0.0.1", srv.port, 5000, 0);
            IT_CHECK(fd[i] >= 0, "connect %ld: %s", done + i, strerror(-fd[i]));
            IT_CHECK(itl_write_all(fd[i], half, sizeof(half) - 1, 5000) == 0, "write");
        }
        for (int i = 0; i < k; i++)
            abort_conn(fd[i]);
        done += k;
        IT_CHECK(itl_server_alive(&srv), "the server died after %ld resets", done);
    }
    int64_t took = itl_now_ms() - t0;
    ft_healthy_expect_progress(h, 5000, "after the reset storm");

    int64_t acc = ft_wait_stat(sock, "accepted", acc0 + o.n, 10000);
    IT_CHECK(acc == acc0 + o.n, "accepted %lld, want %lld", (long long)acc,
             (long long)(acc0 + o.n));
    int64_t open = ft_wait_stat_eq(sock, "open", o.healthy_conns, 10000);
    IT_CHECK(open == o.healthy_conns, "open %lld, want %d (the healthy ones)", (long long)open,
             o.healthy_conns);
    int fds = itl_wait_fds(srv.pid, base_fds, 5000);
    IT_CHECK(fds == base_fds, "server holds %d fds, %d before the storm", fds, base_fds);
    fprintf(stderr,
            "reset: %ld aborted connections in %lld ms; closed_error %lld closed_peer %lld\n", o.n,
            (long long)took, (long long)ft_stat(sock, "closed_error"),
            (long long)ft_stat(sock, "closed_peer"));

    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    ft_fault_nice(0);
    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    ft_healthy_check("reset", "fault", o.n, &r, 1);
    return 0;
}
