/*
 * tests/st_lockout.c — metrics clients cannot lock the operator out.
 *
 * weft-echo with a metrics listener. 200 connections to the metrics port
 * each send half a request head (no blank line) and wait. Then:
 *   1. weft-stat --once over the admin socket answers (exit 0, a screen)
 *      within a second: the admin socket has client slots of its own;
 *   2. a full GET /metrics gets 200, or 503 with Retry-After (before the
 *      first sample too: a 503, never a 200 without metrics);
 *   3. each half-sent connection ends in one of two ways: an HTTP 503 with
 *      Retry-After at once (the listener had no slot: a text line is a
 *      failure), or a close with nothing sent once its head was not
 *      complete within the head timeout (MET_HEAD_S), not earlier, and
 *      well before the admin idle limit; at least one of each, as 200 is
 *      more than the listener's slots;
 *      metrics_rejected and metrics_timeouts count them;
 *   4. once they are gone a full GET /metrics gets 200 with Prometheus
 *      text, and weft-echo stops cleanly.
 *
 * usage: st_lockout WEFT-ECHO WEFT-STAT
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/metrics_http.h"
#include "itlib.h"

#define NHALF 200

static const char half_head[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
static const char full_get[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

typedef struct half {
    int fd;
    int64_t opened, ended; /* ms */
    size_t len;
    char buf[1024];
} half;

/* A 503 as the listener sends it when full or before the first sample. */
static int is_503(const char *a)
{
    return !strncmp(a, "HTTP/1.1 503 Service Unavailable\r\n", 34) &&
           strstr(a, "\r\nRetry-After: ") && strstr(a, "\r\n\r\n");
}

/* A 200 with Prometheus text. */
static int is_scrape(const char *a)
{
    return !strncmp(a, "HTTP/1.1 200 OK\r\n", 17) && strstr(a, "\r\n\r\n# HELP weft_") &&
           strstr(a, "# TYPE weft_accepted_total counter");
}

static void open_halves(half *h, uint16_t mport)
{
    for (int i = 0; i < NHALF; i++) {
        h[i].opened = itl_now_ms();
        h[i].fd = itl_connect("127.0.0.1", mport, 10000, 0);
        IT_CHECK(h[i].fd >= 0, "metrics connection %d: %s", i, strerror(-h[i].fd));
        /* The server may have refused it already: then the send may fail. */
        ssize_t n = send(h[i].fd, half_head, sizeof(half_head) - 1, MSG_NOSIGNAL);
        (void)n;
    }
}

/* Read every half-sent connection until the server closed each (bounded). */
static void await_halves(half *h, int64_t deadline)
{
    int left = NHALF;
    struct pollfd pf[NHALF];
    while (left) {
        int wait = (int)(deadline - itl_now_ms());
        IT_CHECK(wait > 0, "%d of %d half-sent metrics connections still open", left, NHALF);
        for (int i = 0; i < NHALF; i++)
            pf[i] = (struct pollfd){.fd = h[i].ended ? -1 : h[i].fd, .events = POLLIN};
        poll(pf, NHALF, wait);
        for (int i = 0; i < NHALF; i++) {
            if (h[i].ended || !pf[i].revents)
                continue;
            ssize_t r = read(h[i].fd, h[i].buf + h[i].len, sizeof(h[i].buf) - 1 - h[i].len);
            if (r > 0) {
                h[i].len += (size_t)r;
                continue;
            }
            if (r < 0 && errno == EAGAIN)
                continue;
            h[i].buf[h[i].len] = 0;
            h[i].ended = itl_now_ms();
            close(h[i].fd);
            left--;
        }
    }
}

int main(int argc, char **argv)
{
    IT_CHECK(argc == 3, "usage: st_lockout WEFT-ECHO WEFT-STAT");
    char sock[128], mp[16];
    snprintf(sock, sizeof(sock), "%s/admin.sock", itl_tmpdir());
    uint16_t mport = itl_free_port();
    snprintf(mp, sizeof(mp), "%u", mport);
    const char *extra[] = {"--stats-interval", "100", "--workers", "1", "--metrics-port", mp, NULL};
    itl_server echo;
    itl_server_opts o = {.args = extra, .admin_socket = sock, .timeout_ms = 10000};
    IT_CHECK(itl_server_spawn(&echo, argv[1], &o) == 0, "weft-echo did not start");

    /* A plain scrape, once the first sample is out. */
    int64_t until = itl_now_ms() + 5000;
    char *a;
    while ((a = itl_http(mport, full_get, 5000)) && !is_scrape(a) && itl_now_ms() < until) {
        IT_CHECK(is_503(a), "GET /metrics before the first sample: %.300s", a);
        free(a);
        itl_sleep_ms(20);
    }
    IT_CHECK(a && is_scrape(a), "GET /metrics: %.300s", a ? a : strerror(errno));
    free(a);

    static half h[NHALF];
    int64_t t0 = itl_now_ms();
    open_halves(h, mport);
    printf("%d half-sent requests open in %lld ms\n", NHALF, (long long)(itl_now_ms() - t0));

    /* 1. The operator gets in. */
    const char *ws[] = {argv[2], "--once", "--socket", sock, NULL};
    int status;
    int64_t t1 = itl_now_ms();
    char *out = itl_run(ws, 10000, &status, NULL);
    int64_t took = itl_now_ms() - t1;
    IT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(out, "\nworker "),
             "weft-stat --once beside %d half-sent metrics requests: %s", NHALF, out);
    IT_CHECK(took < 1000, "weft-stat --once took %lld ms", (long long)took);
    free(out);
    printf("weft-stat --once answered in %lld ms\n", (long long)took);

    /* 2. A whole request: served, or refused in HTTP. */
    a = itl_http(mport, full_get, 5000);
    IT_CHECK(a, "GET /metrics beside them: %s", strerror(errno));
    IT_CHECK(is_scrape(a) || is_503(a), "GET /metrics: %.300s", a);
    printf("GET /metrics beside them: %.32s\n", a);
    free(a);

    /* 3. Refused at once in HTTP, or closed by the head timeout. */
    await_halves(h, t0 + 4000 + 2000L * MET_HEAD_S);
    int refused = 0, timed_out = 0;
    int64_t shortest = -1, longest = 0;
    for (int i = 0; i < NHALF; i++) {
        int64_t life = h[i].ended - h[i].opened;
        if (h[i].len == 0) {
            timed_out++;
            IT_CHECK(life >= MET_HEAD_S * 1000 - 50, "connection %d closed after %lld ms", i,
                     (long long)life);
            shortest = shortest < 0 || life < shortest ? life : shortest;
            longest = life > longest ? life : longest;
        } else {
            IT_CHECK(is_503(h[i].buf), "connection %d got: %.200s", i, h[i].buf);
            refused++;
        }
    }
    printf("half-sent: %d refused with 503 + Retry-After, %d closed by the head timeout after "
           "%lld..%lld ms (limit %d s, %d slots)\n",
           refused, timed_out, (long long)shortest, (long long)longest, MET_HEAD_S,
           MET_MAX_CLIENTS);
    IT_CHECK(refused >= 1 && timed_out >= 1, "refused %d, timed out %d", refused, timed_out);
    /* Counted (the next sample is at most 100 ms away): every refusal and
     * head timeout seen here, and one refusal more at most (step 2). */
    int64_t rej = 0, tmo = 0;
    for (int64_t t = itl_now_ms() + 2000; (rej < refused || tmo < timed_out) && itl_now_ms() < t;) {
        char *j = itl_admin(sock, "stats json\nquit\n", 16, 5000, NULL);
        IT_CHECK(j, "stats json: %s", strerror(errno));
        rej = itl_json_num(j, "total", "metrics_rejected");
        tmo = itl_json_num(j, "total", "metrics_timeouts");
        free(j);
        itl_sleep_ms(50);
    }
    IT_CHECK(rej >= refused && rej <= refused + 1 && tmo == timed_out,
             "metrics_rejected %lld, metrics_timeouts %lld; seen %d and %d", (long long)rej,
             (long long)tmo, refused, timed_out);

    /* 4. Served again. */
    a = itl_http(mport, full_get, 5000);
    IT_CHECK(a && is_scrape(a), "GET /metrics after: %.300s", a ? a : strerror(errno));
    free(a);

    int st = itl_server_stop(&echo, 10000);
    IT_CHECK(st == 0, "weft-echo exit status %d", st);
    itl_tmpdir_cleanup();
    printf("st_lockout: ok\n");
    return 0;
}
