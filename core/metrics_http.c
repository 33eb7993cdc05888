/*
 * core/metrics_http.c — GET /metrics over HTTP/1.x (see metrics_http.h).
 */
#include "core/metrics_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/listener.h"
#include "core/log.h"
#include "core/server-t.h"
#include "stats/admin_proto.h"
#include "stats/sampler.h"
#include "stats/status_page.h"

#define PROM_TYPE  "text/plain; version=0.0.4; charset=utf-8"
#define PLAIN_TYPE "text/plain; charset=utf-8"
#define HTML_TYPE  "text/html; charset=utf-8"
#define JSON_TYPE  "application/json"
/* The page is one file: its script and style inline, nothing from elsewhere. */
#define PAGE_HEADERS                                                                               \
    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"                               \
    "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "                    \
    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:\r\n"

/* Format a whole response (headers is "" or lines ending in CRLF) into r[0..cap). */
static int http_format(char *r, size_t cap, const char *status, const char *type,
                       const char *headers, const char *body)
{
    return snprintf(r, cap,
                    "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                    "Connection: close\r\n\r\n%s",
                    status, type, strlen(body), headers, body);
}

/* The same, malloc'd (NULL on ENOMEM). */
static char *http_reply(const char *status, const char *type, const char *headers, const char *body)
{
    size_t cap = strlen(body) + strlen(headers) + 256;
    char *r = malloc(cap);
    if (r)
        http_format(r, cap, status, type, headers, body);
    return r;
}

/* The latest snapshot rendered in fmt, as a 200 of type (503 before the first sample). */
static char *snapshot_reply(void *sampler, weft_format fmt, const char *type, const char *headers)
{
    int err = 0;
    char *body = sampler_render(sampler, fmt, &err);
    if (!body)
        return err == -EAGAIN ? http_reply("503 Service Unavailable", PLAIN_TYPE,
                                           "Retry-After: 1\r\n", "no sample yet\n")
                              : NULL;
    char *r = http_reply("200 OK", type, headers, body);
    free(body);
    return r;
}

/* Answer the request head in c->in once it is complete, then close. */
static void metrics_input(void *ctx, ep_client *c)
{
    adm_http r = adm_parse_http(c->in, c->inlen, MET_HEAD_MAX - 1);
    if (r == HTTP_MORE)
        return;
    c->closing = 1;
    static const char only[] = "served: GET /metrics, GET / (the status page), GET /stats.json\n";
    if (r == HTTP_METRICS) {
        ep_answer(c, snapshot_reply(ctx, WEFT_FORMAT_PROMETHEUS, PROM_TYPE, ""));
    } else if (r == HTTP_STATUS) {
        ep_answer(c, http_reply("200 OK", HTML_TYPE, PAGE_HEADERS, status_page_html()));
    } else if (r == HTTP_JSON) {
        ep_answer(c,
                  snapshot_reply(ctx, WEFT_FORMAT_JSON, JSON_TYPE, "Cache-Control: no-store\r\n"));
    } else if (r == HTTP_NOT_FOUND) {
        ep_answer(c, http_reply("404 Not Found", PLAIN_TYPE, "", only));
    } else if (r == HTTP_BAD_METHOD) {
        ep_answer(c, http_reply("405 Method Not Allowed", PLAIN_TYPE, "", only));
    } else {
        c->draining = 1;
        ep_answer(c, http_reply("431 Request Header Fields Too Large", PLAIN_TYPE, "",
                                "request too large\n"));
    }
}

/*
 * 503 with Retry-After: a slot frees within the head timeout at the latest
 * (EP_BUSY); out of fds or memory, try again soon. The request bytes that
 * already arrived are read first, so the close sends FIN, not a reset that
 * could destroy the answer before the client reads it.
 */
static void metrics_refuse(void *ctx, int fd, ep_refusal why)
{
    (void)ctx;
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    for (int i = 0; n > 0 && i < MET_HEAD_MAX / (int)sizeof(buf); i++)
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    char retry[32];
    snprintf(retry, sizeof(retry), "Retry-After: %d\r\n", why == EP_BUSY ? MET_HEAD_S : 1);
    int len = http_format(buf, sizeof(buf), "503 Service Unavailable", PLAIN_TYPE, retry,
                          why == EP_BUSY ? "too many metrics clients\n"
                                         : "the server is out of file descriptors or memory\n");
    n = send(fd, buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    shutdown(fd, SHUT_WR);
}

const ep_proto metrics_proto = {
    .name = "metrics listener",
    .max_clients = MET_MAX_CLIENTS,
    .in_max = MET_HEAD_MAX - 1,
    .wait_ns = MET_HEAD_NS,
    .wait_from_accept = 1,
    .input = metrics_input,
    .refuse = metrics_refuse,
};

int metrics_listen(struct weft_server *s, int *fd, uint16_t *bound)
{
    *fd = -1;
    *bound = 0;
    if (!s->cfg.metrics_port)
        return 0;
    int rc = lsn_open(s->cfg.metrics_bind, s->cfg.metrics_port, 64, bound);
    if (rc < 0) {
        wlog(s, WEFT_LOG_ERROR, "metrics listener %s port %u: %s", s->cfg.metrics_bind,
             s->cfg.metrics_port, weft_strerror(rc));
        return rc;
    }
    *fd = rc;
    return 0;
}
