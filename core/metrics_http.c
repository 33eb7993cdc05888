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

static char *http_reply(int code, const char *reason, const char *body)
{
    size_t blen = strlen(body), cap = blen + 256;
    char *r = malloc(cap);
    if (r)
        snprintf(r, cap,
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 code, reason, blen, body);
    return r;
}

/* Answer the request head in c->in once it is complete, then close. */
static void metrics_input(void *ctx, ep_client *c)
{
    adm_http r = adm_parse_http(c->in, c->inlen, MET_HEAD_MAX - 1);
    if (r == HTTP_MORE)
        return;
    c->closing = 1;
    if (r == HTTP_METRICS) {
        int err = 0;
        char *body = sampler_render(ctx, WEFT_FORMAT_PROMETHEUS, &err);
        if (!body && err == -EAGAIN)
            body = strdup("error: no sample yet\n");
        ep_answer(c, body ? http_reply(200, "OK", body) : NULL);
        free(body);
    } else if (r == HTTP_NOT_FOUND) {
        ep_answer(c, http_reply(404, "Not Found", "only GET /metrics is served\n"));
    } else if (r == HTTP_BAD_METHOD) {
        ep_answer(c, http_reply(405, "Method Not Allowed", "only GET /metrics is served\n"));
    } else {
        c->draining = 1;
        ep_answer(c, http_reply(431, "Request Header Fields Too Large", "request too large\n"));
    }
}

static void metrics_refuse(void *ctx, int fd)
{
    (void)ctx;
    static const char busy[] = "error: too many admin clients\n";
    ssize_t n = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
}

const ep_proto metrics_proto = {
    .name = "metrics listener",
    .max_clients = MET_MAX_CLIENTS,
    .in_max = MET_HEAD_MAX - 1,
    .wait_ns = MET_IDLE_NS,
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
