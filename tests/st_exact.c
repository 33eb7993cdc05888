/*
 * tests/st_exact.c — the counters are exact once the traffic is over.
 *
 * Starts weft-echo (stats sampled every 100 ms, admin socket in a private
 * directory), opens N connections, pushes a known number of bytes through
 * each (every byte echoed and checked), closes them, then polls
 * `weft-stat --json --socket ...` until a snapshot shows every connection
 * closed, and asserts that snapshot exactly: accepted == closed == N,
 * open == 0, bytes_in == bytes_out == the bytes sent, and the per-worker
 * rows add up to the totals.
 *
 * usage: st_exact WEFT-ECHO WEFT-STAT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "st_util.h"

#define N 50

int main(int argc, char **argv)
{
    ST_CHECK(argc == 3, "usage: st_exact WEFT-ECHO WEFT-STAT");
    char sock[128];
    snprintf(sock, sizeof(sock), "%s/admin.sock", st_tmpdir());
    uint16_t port;
    const char *extra[] = {"--stats-interval", "100", "--workers", "2", NULL};
    pid_t echo = st_start_echo(argv[1], sock, &port, extra);

    int fds[N];
    int64_t total = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = st_tcp_connect(port);
        ST_CHECK(fds[i] >= 0, "connect %d: %s", i, strerror(-fds[i]));
    }
    /* Sizes from 1 byte to ~200 KB, so some messages span several reads. */
    for (int i = 0; i < N; i++) {
        size_t n = 1 + (size_t)i * (size_t)i * 83;
        ST_CHECK(st_echo_roundtrip(fds[i], n, (unsigned)i) == 0, "echo of %zu bytes on %d", n, i);
        total += (int64_t)n;
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);

    const char *cmd[] = {argv[2], "--json", "--socket", sock, NULL};
    char *json = NULL;
    int64_t deadline = st_now_ms() + 15000;
    for (;;) {
        int status;
        char *err = NULL;
        free(json);
        json = st_run(cmd, 10000, &status, &err);
        ST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "weft-stat --json failed: %s", err);
        free(err);
        ST_CHECK(st_json_num(json, "total", "accepted") >= 0, "no total in %s", json);
        if (st_json_num(json, "total", "closed") == N)
            break;
        ST_CHECK(st_now_ms() < deadline, "closed never reached %d: %s", N, json);
        st_sleep_ms(50);
    }
    int64_t acc = st_json_num(json, "total", "accepted");
    int64_t opened = st_json_num(json, "total", "opened");
    int64_t closed = st_json_num(json, "total", "closed");
    int64_t open = st_json_num(json, "total", "open");
    int64_t in = st_json_num(json, "total", "bytes_in");
    int64_t out = st_json_num(json, "total", "bytes_out");
    int64_t peer = st_json_num(json, "closed_by", "peer");
    printf("accepted %lld opened %lld closed %lld open %lld bytes_in %lld bytes_out %lld "
           "(sent %lld)\n",
           (long long)acc, (long long)opened, (long long)closed, (long long)open, (long long)in,
           (long long)out, (long long)total);
    ST_CHECK(acc == N, "accepted %lld", (long long)acc);
    ST_CHECK(opened == N, "opened %lld", (long long)opened);
    ST_CHECK(closed == N, "closed %lld", (long long)closed);
    ST_CHECK(open == 0, "open %lld", (long long)open);
    ST_CHECK(in == total, "bytes_in %lld, sent %lld", (long long)in, (long long)total);
    ST_CHECK(out == total, "bytes_out %lld, sent %lld", (long long)out, (long long)total);
    ST_CHECK(peer == N, "closed_by.peer %lld", (long long)peer);

    /* The worker rows add up to the totals. */
    const char *w = strstr(json, "\"workers\":[");
    ST_CHECK(w, "no workers array");
    int64_t sum_acc = 0, sum_in = 0, sum_out = 0, sum_closed = 0;
    int nw = 0;
    for (const char *p = strstr(w, "{\"worker\":"); p; p = strstr(p + 1, "{\"worker\":")) {
        sum_acc += st_json_num(p, NULL, "accepted");
        sum_closed += st_json_num(p, NULL, "closed");
        sum_in += st_json_num(p, NULL, "bytes_in");
        sum_out += st_json_num(p, NULL, "bytes_out");
        ST_CHECK(st_json_num(p, NULL, "open") == 0, "a worker still has open connections");
        nw++;
    }
    ST_CHECK(nw == 2, "%d worker rows", nw);
    ST_CHECK(sum_acc == N && sum_closed == N && sum_in == total && sum_out == total,
             "worker rows do not add up: accepted %lld closed %lld in %lld out %lld",
             (long long)sum_acc, (long long)sum_closed, (long long)sum_in, (long long)sum_out);
    free(json);

    int st = st_stop(echo, 10000);
    ST_CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "weft-echo status %d", st);
    ST_CHECK(access(sock, F_OK) != 0, "the admin socket %s is left behind after a clean stop",
             sock);
    st_cleanup_dir();
    printf("st_exact: ok\n");
    return 0;
}
