/*
 * tests/st_admin.c — the admin socket under bad and heavy input.
 *
 * One weft-echo (stats every 100 ms) serves echo traffic from a background
 * thread for the whole test, every byte checked. Meanwhile:
 *   1. an unknown command gets one "error: unknown command ..." line;
 *   2. a 1 MiB line without a newline gets one "error: command longer ..."
 *      line and then EOF (a reset is accepted too), and the server goes on;
 *   3. a client sends "metrics\n" 100 times and never reads; while its
 *      answers are stuck, 100 admin clients connect at once and each gets a
 *      complete, well-formed answer (stats json, stats, workers, metrics in
 *      turn), the sampler keeps publishing, and the stuck client is
 *      eventually closed by the server's stall limit (admin_timeouts 1);
 *   4. the echo traffic beside all this stayed correct, and weft-echo stops
 *      cleanly (exit 0, admin socket removed).
 *
 * usage: st_admin WEFT-ECHO WEFT-STAT
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itlib.h"

#define NCLIENTS 100

static uint16_t port;
static char sock[128];
static atomic_int stop_traffic;
static atomic_ullong roundtrips;
static atomic_int traffic_failed;

/* Echo traffic: connections of 20 round trips of 1 B to 64 KB each. */
static void *traffic(void *arg)
{
    unsigned seed = 12345;
    (void)arg;
    while (!atomic_load(&stop_traffic)) {
        int fd = itl_connect("127.0.0.1", port, 10000, 0);
        if (fd < 0) {
            atomic_store(&traffic_failed, 1);
            return NULL;
        }
        for (int i = 0; i < 20; i++) {
            seed = seed * 1103515245u + 12345u;
            if (itl_echo_roundtrip(fd, 1 + (seed >> 8) % 65536, seed, 10000) != 0) {
                atomic_store(&traffic_failed, 2);
                close(fd);
                return NULL;
            }
            atomic_fetch_add(&roundtrips, 1);
        }
        close(fd);
    }
    return NULL;
}

/* One well-formed answer to cmd (as the admin protocol documents it). */
static void check_answer(const char *cmd, const char *a, int i)
{
    IT_CHECK(a && *a, "client %d (%s): empty answer", i, cmd);
    IT_CHECK(strncmp(a, "error", 5) != 0, "client %d (%s): %s", i, cmd, a);
    size_t n = strlen(a);
    IT_CHECK(a[n - 1] == '\n', "client %d (%s): answer not ended by a newline", i, cmd);
    if (!strcmp(cmd, "stats json")) {
        IT_CHECK(!strncmp(a, "{\"seq\":", 7) && strstr(a, "\"total\":{") &&
                     !strcmp(a + n - 3, "]}\n") && strchr(a, '\n') == a + n - 1,
                 "client %d: not one JSON line: %.200s", i, a);
    } else if (!strcmp(cmd, "stats")) {
        IT_CHECK(!strncmp(a, "seq ", 4) && strstr(a, "\naccepted ") && strstr(a, "\nbytes_in "),
                 "client %d: not stats lines: %.200s", i, a);
    } else if (!strcmp(cmd, "workers")) {
        IT_CHECK(!strncmp(a, "worker ", 7) && strstr(a, "\n0 ") && strstr(a, "\n1 "),
                 "client %d: not a worker table: %.200s", i, a);
    } else {
        IT_CHECK(!strncmp(a, "# HELP weft_", 12) &&
                     strstr(a, "# TYPE weft_accepted_total counter") &&
                     strstr(a, "weft_uptime_seconds "),
                 "client %d: not Prometheus text: %.200s", i, a);
    }
}

static uint64_t current_seq(void)
{
    char *a = itl_admin(sock, "stats json\nquit\n", 16, 5000, NULL);
    IT_CHECK(a, "stats json: %s", strerror(errno));
    int64_t seq = itl_json_num(a, NULL, "seq");
    IT_CHECK(seq > 0, "no seq in %.200s", a);
    free(a);
    return (uint64_t)seq;
}

static void unknown_command(void)
{
    const char cmd[] = "bogus thing\nquit\n";
    char *a = itl_admin(sock, cmd, sizeof(cmd) - 1, 5000, NULL);
    IT_CHECK(a, "unknown command: %s", strerror(errno));
    IT_CHECK(!strcmp(a, "error: unknown command 'bogus thing' (try 'help')\n"), "got '%s'", a);
    free(a);
    a = itl_admin(sock, "help\nquit\n", 10, 5000, NULL);
    IT_CHECK(a && strstr(a, "stats json") && strstr(a, "metrics") && strstr(a, "quit"), "help: %s",
             a ? a : strerror(errno));
    free(a);
    printf("unknown command: one error line\n");
}

static void huge_line(void)
{
    size_t n = 1u << 20;
    char *big = malloc(n);
    memset(big, 'x', n);
    int reset = 0;
    char *a = itl_admin(sock, big, n, 10000, &reset);
    free(big);
    IT_CHECK(a, "1 MiB line: %s", strerror(errno));
    const char *want = "error: command longer than 1023 bytes\n";
    if (reset)
        IT_CHECK(!strncmp(want, a, strlen(a)), "before the reset: '%.200s'", a);
    else
        IT_CHECK(!strcmp(a, want), "got '%.200s'", a);
    printf("1 MiB line: %s%s\n", *a ? "error line, then " : "", reset ? "reset" : "EOF");
    free(a);
    /* Still serving. */
    uint64_t s1 = current_seq();
    IT_CHECK(s1 > 0, "after the 1 MiB line");
}

/* Open the client that sends 100 "metrics" and never reads. */
static int stuck_client(void)
{
    int fd = itl_unix_connect(sock, 10000);
    IT_CHECK(fd >= 0, "connect: %s", strerror(-fd));
    char cmds[100 * 8];
    for (int i = 0; i < 100; i++)
        memcpy(cmds + i * 8, "metrics\n", 8);
    IT_CHECK(send(fd, cmds, sizeof(cmds), MSG_NOSIGNAL) == (ssize_t)sizeof(cmds), "send");
    return fd;
}

static void many_clients(void)
{
    static const char *const cmds[4] = {"stats json", "stats", "workers", "metrics"};
    int fds[NCLIENTS];
    char *ans[NCLIENTS];
    size_t len[NCLIENTS], cap[NCLIENTS];
    /* Connect all first (itl_unix_connect waits while the backlog is full),
     * then ask all, then read all: the server holds 100 clients at once. */
    for (int i = 0; i < NCLIENTS; i++) {
        fds[i] = itl_unix_connect(sock, 10000);
        IT_CHECK(fds[i] >= 0, "admin client %d: %s", i, strerror(-fds[i]));
    }
    for (int i = 0; i < NCLIENTS; i++) {
        char c[64];
        int k = snprintf(c, sizeof(c), "%s\nquit\n", cmds[i % 4]);
        IT_CHECK(send(fds[i], c, (size_t)k, MSG_NOSIGNAL) == k, "send %d", i);
        cap[i] = 65536;
        len[i] = 0;
        ans[i] = malloc(cap[i]);
    }
    int left = NCLIENTS;
    int64_t deadline = itl_now_ms() + 10000;
    while (left) {
        int wait = (int)(deadline - itl_now_ms());
        IT_CHECK(wait > 0, "%d of %d admin clients got no complete answer in 10 s", left, NCLIENTS);
        struct pollfd pf[NCLIENTS];
        for (int i = 0; i < NCLIENTS; i++)
            pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        poll(pf, NCLIENTS, wait);
        for (int i = 0; i < NCLIENTS; i++) {
            if (fds[i] < 0 || !pf[i].revents)
                continue;
            if (cap[i] - len[i] < 4096)
                ans[i] = realloc(ans[i], cap[i] *= 2);
            ssize_t r = read(fds[i], ans[i] + len[i], cap[i] - len[i] - 1);
            IT_CHECK(r >= 0 || errno == EAGAIN, "admin client %d: %s", i, strerror(errno));
            if (r > 0)
                len[i] += (size_t)r;
            if (r == 0) {
                ans[i][len[i]] = 0;
                close(fds[i]);
                fds[i] = -1;
                left--;
            }
        }
    }
    for (int i = 0; i < NCLIENTS; i++) {
        check_answer(cmds[i % 4], ans[i], i);
        free(ans[i]);
    }
    printf("%d admin clients at once: every answer complete and well-formed\n", NCLIENTS);
}

int main(int argc, char **argv)
{
    IT_CHECK(argc == 3, "usage: st_admin WEFT-ECHO WEFT-STAT");
    snprintf(sock, sizeof(sock), "%s/admin.sock", itl_tmpdir());
    const char *extra[] = {"--stats-interval", "100", "--workers", "2", NULL};
    itl_server echo;
    itl_server_opts o = {.args = extra, .admin_socket = sock, .timeout_ms = 10000};
    IT_CHECK(itl_server_spawn(&echo, argv[1], &o) == 0, "weft-echo did not start");
    port = echo.port;

    /* The first sample comes one interval after the start. */
    int64_t first = itl_now_ms() + 5000;
    for (;;) {
        char *a = itl_admin(sock, "stats json\nquit\n", 16, 5000, NULL);
        int ready = a && !strncmp(a, "{\"seq\":", 7);
        IT_CHECK(ready || (a && !strcmp(a, "error: no sample yet\n")), "first sample: %s",
                 a ? a : strerror(errno));
        free(a);
        if (ready)
            break;
        IT_CHECK(itl_now_ms() < first, "no sample within 5 s");
        itl_sleep_ms(20);
    }

    pthread_t tt;
    IT_CHECK(pthread_create(&tt, NULL, traffic, NULL) == 0, "pthread_create");

    unknown_command();
    huge_line();

    int stuck = stuck_client();
    int64_t stuck_since = itl_now_ms();
    itl_sleep_ms(300); /* let its answers fill the socket buffer */
    uint64_t seq0 = current_seq();
    int64_t t0 = itl_now_ms();
    many_clients();
    uint64_t seq1 = current_seq();
    printf("a stats json answer took %lld ms beside the stuck client\n",
           (long long)(itl_now_ms() - t0));
    /* The sampler keeps publishing (every 100 ms) beside the stuck client. */
    for (int64_t until = itl_now_ms() + 2000; seq1 <= seq0 && itl_now_ms() < until;
         seq1 = current_seq())
        itl_sleep_ms(50);
    IT_CHECK(seq1 > seq0, "the sampler stopped publishing (seq %llu -> %llu)",
             (unsigned long long)seq0, (unsigned long long)seq1);
    /* weft-stat works beside the stuck client too. */
    const char *ws[] = {argv[2], "--once", "--socket", sock, NULL};
    int status;
    char *out = itl_run(ws, 10000, &status, NULL);
    IT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(out, "worker"),
             "weft-stat --once: %s", out);
    free(out);

    /* The stuck client is closed by the stall limit: reading now, we get the
     * answers it was sent, then EOF, well before all 100 answers. */
    itl_sleep_ms(12000 - (int)(itl_now_ms() - stuck_since) > 0
                     ? 12000 - (int)(itl_now_ms() - stuck_since)
                     : 0);
    size_t got = 0;
    int eof = 0;
    int64_t deadline = itl_now_ms() + 10000;
    char buf[65536];
    while (!eof && itl_now_ms() < deadline) {
        ssize_t r = read(stuck, buf, sizeof(buf));
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || (r < 0 && errno == ECONNRESET))
            eof = 1;
        else
            itl_sleep_ms(10);
    }
    close(stuck);
    IT_CHECK(eof, "the server never closed the client that does not read");
    printf("the non-reading client was closed after its stall (it got %zu bytes)\n", got);
    /* Counted once the next sample is out (every 100 ms). */
    int64_t timeouts = 0;
    for (int64_t until = itl_now_ms() + 2000; timeouts < 1 && itl_now_ms() < until;) {
        itl_sleep_ms(50);
        char *j = itl_admin(sock, "stats json\nquit\n", 16, 5000, NULL);
        IT_CHECK(j, "stats json: %s", strerror(errno));
        timeouts = itl_json_num(j, "total", "admin_timeouts");
        free(j);
    }
    IT_CHECK(timeouts == 1, "admin_timeouts %lld after one stalled client", (long long)timeouts);

    atomic_store(&stop_traffic, 1);
    pthread_join(tt, NULL);
    IT_CHECK(!atomic_load(&traffic_failed), "echo traffic failed (%d)",
             atomic_load(&traffic_failed));
    IT_CHECK(atomic_load(&roundtrips) > 100, "only %llu echo round trips",
             (unsigned long long)atomic_load(&roundtrips));
    printf("echo traffic beside it: %llu round trips, all correct\n",
           (unsigned long long)atomic_load(&roundtrips));
    current_seq();
    int st = itl_server_stop(&echo, 10000);
    IT_CHECK(st == 0, "weft-echo exit status %d", st);
    IT_CHECK(access(sock, F_OK) != 0, "admin socket left behind");
    itl_tmpdir_cleanup();
    printf("st_admin: ok\n");
    return 0;
}
