/*
 * tests/ft_churn.c — connection churn: N connect/request/close cycles.
 *
 * weft-load churn runs N cycles (connect, one echoed and verified message,
 * close with a reset so the client side leaves no TIME_WAIT) against
 * weft-echo in two parts, the first 10% and the rest, with healthy
 * line-echo connections beside them the whole time.
 *
 * Asserts: weft-load exits 0 both times (every message verified, no connect
 * failure, reset, short read or timeout) and reports 0 mismatches; the
 * server's fd count is back to the start; its RSS after all N cycles is
 * within 10% of what it was after the first 10% (nothing grows per
 * connection; not asserted under sanitizers, whose quarantine keeps freed
 * memory resident on purpose); healthy traffic clean and flowing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ft_lib.h"

static const char *const args[] = {"--workers", "2", NULL};

/* Run weft-load churn for `count` cycles; returns its exit status, JSON in out. */
static int churn(const char *load, uint16_t port, long count, char *out, size_t cap)
{
    char ps[16], cs[32];
    snprintf(ps, sizeof(ps), "%u", port);
    snprintf(cs, sizeof(cs), "%ld", count);
    int p[2];
    IT_CHECK(pipe(p) == 0, "pipe");
    pid_t pid = fork();
    IT_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execl(load, load, "churn", "--port", ps, "--count", cs, "--conns", "16", "--close-rst",
              "--duration", "50", "--json", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t r;
    while ((r = read(p[0], out + len, cap - 1 - len)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0)
            len += (size_t)r;
    out[len] = '\0';
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The number after "key": in json (first match), or -1. */
static double json_num(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\":", key);
    const char *p = strstr(json, k);
    return p ? strtod(p + strlen(k), NULL) : -1;
}

int main(int argc, char **argv)
{
    ft_opts o;
    ft_parse(argc, argv, 1, 20000, &o);
    ft_need_fds(256);
    if (o.baseline_ms > 0)
        return ft_run_baseline("churn", &o, args);

    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o.echo, args, sock, NULL);
    ft_healthy *h = ft_healthy_start(srv.port, o.healthy_conns, 10, 8);
    ft_fault_nice(1);
    int base_fds = ft_settle(&srv, sock, o.healthy_conns);
    static char out[16384];

    int64_t t0 = itl_now_ms();
    long first = o.n / 10;
    int rc = churn(o.load, srv.port, first, out, sizeof(out));
    IT_CHECK(rc == 0, "weft-load (first %ld cycles) exited %d: %s", first, rc, out);
    IT_CHECK(json_num(out, "mismatches") == 0, "mismatches: %s", out);
    IT_CHECK(ft_wait_stat_eq(sock, "open", o.healthy_conns, 5000) == o.healthy_conns,
             "open after the first cycles");
    long rss10 = itl_vmrss_kb(srv.pid);
    ft_healthy_expect_progress(h, 5000, "after the first cycles");

    rc = churn(o.load, srv.port, o.n - first, out, sizeof(out));
    IT_CHECK(rc == 0, "weft-load (%ld cycles) exited %d: %s", o.n - first, rc, out);
    IT_CHECK(json_num(out, "mismatches") == 0, "mismatches: %s", out);
    IT_CHECK(json_num(out, "cycles") == o.n - first, "cycles: %s", out);
    int64_t took = itl_now_ms() - t0;
    IT_CHECK(ft_wait_stat_eq(sock, "open", o.healthy_conns, 5000) == o.healthy_conns,
             "open after all cycles");
    int64_t acc = ft_wait_stat(sock, "accepted", o.n + o.healthy_conns, 5000);
    int fds = itl_wait_fds(srv.pid, base_fds, 5000);
    long rss = itl_vmrss_kb(srv.pid);
    fprintf(stderr,
            "churn: %ld cycles in %lld ms (accepted %lld); fds %d (start %d); rss %ld KiB "
            "after 10%%, %ld KiB at the end; churn p99 %.0f us\n",
            o.n, (long long)took, (long long)acc, fds, base_fds, rss10, rss,
            json_num(strstr(out, "latency_us") ? strstr(out, "latency_us") : out, "p99"));
    IT_CHECK(acc >= o.n + o.healthy_conns, "accepted %lld", (long long)acc);
    IT_CHECK(fds == base_fds, "server holds %d fds, %d at the start", fds, base_fds);
    IT_CHECK(FT_SANITIZED || rss <= rss10 + rss10 / 10, "RSS %ld KiB, more than 10%% over %ld KiB",
             rss, rss10);
    ft_healthy_expect_progress(h, 5000, "after the churn");

    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    ft_fault_nice(0);
    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    ft_healthy_check("churn", "fault", o.n, &r, 1);
    return 0;
}
