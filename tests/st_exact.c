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

#include "itlib.h"

#define N 50

int main(int argc, char **argv)
{
    IT_CHECK(argc == 3, "usage: st_exact WEFT-ECHO WEFT-STAT");
    char sock[128];
    snprintf(sock, sizeof(sock), "%s/admin.sock", itl_tmpdir());
    const char *extra[] = {"--stats-interval", "100", "--workers", "2", NULL};
    itl_server echo;
    itl_server_opts o = {.args = extra, .admin_socket = sock, .timeout_ms = 10000};
    IT_CHECK(itl_server_spawn(&echo, argv[1], &o) == 0, "weft-echo did not start");
    uint16_t port = echo.port;

    int fds[N];
    int64_t total = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = itl_connect("127.0.0.1", port, 10000, 0);
        IT_CHECK(fds[i] >= 0, "connect %d: %s", i, strerror(-fds[i]));
    }
    /* Sizes from 1 byte to ~200 KB, so some messages span several reads. */
    for (int i = 0; i < N; i++) {
        size_t n = 1 + (size_t)i * (size_t)i * 83;
        IT_CHECK(itl_echo_roundtrip(fds[i], n, (unsigned)i, 10000) == 0, "echo of %zu bytes on %d",
                 n, i);
        total += (int64_t)n;
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);

    const char *cmd[] = {argv[2], "--json", "--socket", sock, NULL};
    char *json = NULL;
    int64_t deadline = itl_now_ms() + 15000;
    for (;;) {
        int status;
        char *err = NULL;
        free(json);
        json = itl_run(cmd, 10000, &status, &err);
        IT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "weft-stat --json failed: %s", err);
        free(err);
        IT_CHECK(itl_json_num(json, "total", "accepted") >= 0, "no total in %s", json);
        if (itl_json_num(json, "total", "closed") == N)
            break;
        IT_CHECK(itl_now_ms() < deadline, "closed never reached %d: %s", N, json);
        itl_sleep_ms(50);
    }
    int64_t acc = itl_json_num(json, "total", "accepted");
    int64_t opened = itl_json_num(json, "total", "opened");
    int64_t closed = itl_json_num(json, "total", "closed");
    int64_t open = itl_json_num(json, "total", "open");
    int64_t in = itl_json_num(json, "total", "bytes_in");
    int64_t out = itl_json_num(json, "total", "bytes_out");
    int64_t peer = itl_json_num(json, "closed_by", "peer");
    printf("accepted %lld opened %lld closed %lld open %lld bytes_in %lld bytes_out %lld "
           "(sent %lld)\n",
           (long long)acc, (long long)opened, (long long)closed, (long long)open, (long long)in,
           (long long)out, (long long)total);
    IT_CHECK(acc == N, "accepted %lld", (long long)acc);
    IT_CHECK(opened == N, "opened %lld", (long long)opened);
    IT_CHECK(closed == N, "closed %lld", (long long)closed);
    IT_CHECK(open == 0, "open %lld", (long long)open);
    IT_CHECK(in == total, "bytes_in %lld, sent %lld", (long long)in, (long long)total);
    IT_CHECK(out == total, "bytes_out %lld, sent %lld", (long long)out, (long long)total);
    IT_CHECK(peer == N, "closed_by.peer %lld", (long long)peer);

    /* The worker rows add up to the totals. */
    const char *w = strstr(json, "\"workers\":[");
    IT_CHECK(w, "no workers array");
    int64_t sum_acc = 0, sum_in = 0, sum_out = 0, sum_closed = 0;
    int nw = 0;
    for (const char *p = strstr(w, "{\"worker\":"); p; p = strstr(p + 1, "{\"worker\":")) {
        sum_acc += itl_json_num(p, NULL, "accepted");
        sum_closed += itl_json_num(p, NULL, "closed");
        sum_in += itl_json_num(p, NULL, "bytes_in");
        sum_out += itl_json_num(p, NULL, "bytes_out");
        IT_CHECK(itl_json_num(p, NULL, "open") == 0, "a worker still has open connections");
        nw++;
    }
    IT_CHECK(nw == 2, "%d worker rows", nw);
    IT_CHECK(sum_acc == N && sum_closed == N && sum_in == total && sum_out == total,
             "worker rows do not add up: accepted %lld closed %lld in %lld out %lld",
             (long long)sum_acc, (long long)sum_closed, (long long)sum_in, (long long)sum_out);
    free(json);

    int st = itl_server_stop(&echo, 10000);
    IT_CHECK(st == 0, "weft-echo exit status %d", st);
    IT_CHECK(access(sock, F_OK) != 0, "the admin socket %s is left behind after a clean stop",
             sock);
    itl_tmpdir_cleanup();
    printf("st_exact: ok\n");
    return 0;
}
