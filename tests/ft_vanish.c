/*
 * tests/ft_vanish.c — vanishing clients: a process holding N connections
 * is killed with SIGKILL.
 *
 * A child process opens N connections to weft-echo, echoes one line on each
 * (so all are established and served), leaves an unread echo in its
 * receive buffer on every other one (so its kernel answers the kill with a
 * reset there and a FIN on the rest), reports ready and waits. The test
 * kills it with SIGKILL. The server must close all N.
 *
 * Asserts: open reaches healthy + N while the child lives, then returns to
 * the healthy connections only; the server's fd count returns to the start;
 * healthy traffic clean and flowing.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ft_lib.h"

static const char *const args[] = {"--workers", "2", NULL};

/* The child: open n connections, echo a line on each, then wait to die. */
static void holder(uint16_t port, long n, int ready_fd)
{
    static const char line[] = "vanishing client\n";
    char buf[sizeof(line)];
    for (long i = 0; i < n; i++) {
        int fd = itl_connect("127.0.0.1", port, 5000, 0);
        if (fd < 0 || itl_write_all(fd, line, sizeof(line) - 1, 5000) != 0 ||
            itl_read_exact(fd, buf, sizeof(line) - 1, 5000, NULL) != 0 ||
            memcmp(buf, line, sizeof(line) - 1) != 0) {
            fprintf(stderr, "holder: connection %ld failed\n", i);
            _exit(1);
        }
        if (i % 2 && itl_write_all(fd, line, sizeof(line) - 1, 5000) != 0)
            _exit(1); /* its echo stays unread: the kill sends a reset */
    }
    if (write(ready_fd, "r", 1) != 1)
        _exit(1);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    ft_opts o;
    ft_parse(argc, argv, 0, 1000, &o);
    ft_need_fds(o.n + 64);
    if (o.baseline_ms > 0)
        return ft_run_baseline("vanish", &o, args);

    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o.echo, args, sock, NULL);
    ft_healthy *h = ft_healthy_start(srv.port, o.healthy_conns, 10, 3);
    ft_fault_nice(1);
    int base_fds = ft_settle(&srv, sock, o.healthy_conns);

    int p[2];
    IT_CHECK(pipe(p) == 0, "pipe");
    pid_t parent = getpid();
    pid_t kid = fork();
    IT_CHECK(kid >= 0, "fork");
    if (kid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        close(p[0]);
        holder(srv.port, o.n, p[1]);
    }
    close(p[1]);
    char c;
    ssize_t rr = read(p[0], &c, 1); /* EOF if the holder failed */
    close(p[0]);
    if (rr != 1) {
        kill(kid, SIGKILL);
        waitpid(kid, NULL, 0);
        IT_CHECK(0, "the holder process could not open its %ld connections", o.n);
    }
    int64_t want = o.healthy_conns + o.n;
    int64_t open = ft_wait_stat_eq(sock, "open", want, 10000);
    if (open != want)
        kill(kid, SIGKILL);
    IT_CHECK(open == want, "open %lld while the holder lives, want %lld", (long long)open,
             (long long)want);

    int64_t t0 = itl_now_ms();
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    open = ft_wait_stat_eq(sock, "open", o.healthy_conns, 15000);
    int64_t took = itl_now_ms() - t0;
    IT_CHECK(open == o.healthy_conns, "open %lld after the kill, want %d", (long long)open,
             o.healthy_conns);
    int fds = itl_wait_fds(srv.pid, base_fds, 5000);
    IT_CHECK(fds == base_fds, "server holds %d fds, %d before", fds, base_fds);
    ft_healthy_expect_progress(h, 5000, "after the kill");
    fprintf(stderr,
            "vanish: %ld connections closed %lld ms after the kill; closed_peer %lld "
            "closed_error %lld\n",
            o.n, (long long)took, (long long)ft_stat(sock, "closed_peer"),
            (long long)ft_stat(sock, "closed_error"));

    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    ft_fault_nice(0);
    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    ft_healthy_check("vanish", "fault", o.n, &r, 1);
    return 0;
}
