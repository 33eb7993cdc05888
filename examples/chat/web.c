/*
 * examples/chat/web.c — the HTTP listener of weft-chat (see web.h).
 *
 * Deliberately small: requests are GETs of a few compiled-in files and one
 * upgrade; a request head is read whole (at most WEB_HEAD_MAX bytes) from
 * the input ring, answered, and consumed, so keep-alive and pipelining
 * work. Only GET is served (405 otherwise), so no request has a body.
 */
#include "web.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "ws.h"

static char ws_origin_marker;

void *web_ws_origin(void) { return &ws_origin_marker; }

static void reply(weft_conn *c, const char *status, const char *type, const void *body, size_t len,
                  bool close)
{
    char h[512];
    int n = snprintf(h, sizeof(h),
                     "HTTP/1.1 %s\r\nContent-Type: %s; charset=utf-8\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n%s\r\n",
                     status, type, len, close ? "Connection: close\r\n" : "");
    weft_send(c, h, (size_t)n);
    if (len)
        weft_send(c, body, len);
    if (close)
        weft_close(c);
}

static void error_reply(weft_conn *c, const char *status)
{
    reply(c, status, "text/plain", status, strlen(status), true);
}

static const web_asset *asset_of(const char *path, size_t n)
{
    if (n == 1 && path[0] == '/')
        path = "/index.html", n = 11;
    for (const web_asset *a = web_assets; a->path; a++)
        if (strlen(a->path) == n && memcmp(a->path, path, n) == 0)
            return a;
    return NULL;
}

/* One request head req[0..n): answer it. False when c was handed over or closed. */
static bool serve(weft_conn *c, const char *req, size_t n)
{
    const char *sp = memchr(req, ' ', n);
    const char *sp2 = sp ? memchr(sp + 1, ' ', n - (size_t)(sp + 1 - req)) : NULL;
    if (!sp || !sp2) {
        error_reply(c, "400 Bad Request");
        return false;
    }
    if (sp - req != 3 || memcmp(req, "GET", 3) != 0) {
        error_reply(c, "405 Method Not Allowed");
        return false;
    }
    const char *path = sp + 1;
    size_t plen = (size_t)(sp2 - path);
    const char *q = memchr(path, '?', plen);
    if (q)
        plen = (size_t)(q - path);
    if (plen == 3 && memcmp(path, "/ws", 3) == 0) {
        char resp[WS_RESPONSE_MAX];
        size_t k = ws_accept(req, n, resp);
        if (!k) {
            error_reply(c, "400 Bad Request");
            return false;
        }
        weft_send(c, resp, k);
        weft_conn_set_handler(c, chat_handler(), web_ws_origin());
        return false;
    }
    const web_asset *a = asset_of(path, plen);
    if (!a) {
        error_reply(c, "404 Not Found");
        return false;
    }
    reply(c, "200 OK", a->type, a->data, a->len, false);
    return true;
}

static void on_data(weft_conn *c, weft_ring *in)
{
    char req[WEB_HEAD_MAX];
    for (;;) {
        size_t have = weft_ring_len(in), n = have < sizeof(req) ? have : sizeof(req);
        weft_ring_copyout(in, 0, req, n);
        const char *end = NULL;
        for (size_t i = 3; i < n && !end; i++)
            if (req[i] == '\n' && req[i - 1] == '\r' && req[i - 2] == '\n' && req[i - 3] == '\r')
                end = req + i + 1;
        if (!end) {
            if (have >= sizeof(req)) {
                weft_ring_consume(in, have);
                error_reply(c, "431 Request Header Fields Too Large");
            }
            return;
        }
        size_t len = (size_t)(end - req);
        weft_ring_consume(in, len);
        if (!serve(c, req, len))
            return;
    }
}

static const weft_handler web_h = {.on_data = on_data};

const weft_handler *web_handler(void) { return &web_h; }
