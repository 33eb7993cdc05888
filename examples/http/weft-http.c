/*
 * weft-http — a small HTTP/1.1 server on the public weft API.
 *
 *   GET  /       "hello, world\n"
 *   GET  /stats  the latest weft snapshot as JSON (503 before the first one)
 *   HEAD         the same heads without bodies
 *
 * Keep-alive and pipelining: every complete request in the input is answered
 * in order, and the answers to one read leave in one write (the framework
 * batches a connection's output per turn). The request head is parsed
 * incrementally (http_parse.c): the head's bytes stay in the input ring until
 * it is complete, and the parser, whose state lives in the connection's user
 * data, resumes where the last read ended, so a head split at any byte costs
 * the same as a whole one. The partial head left in the ring is what the
 * framework's input-stall timeout and input cap see.
 *
 * Answers: 400 for a malformed request, 431 for a head over --max-head, 505
 * for an HTTP major version other than 1 (all three then close); 404 for
 * an unknown path; 405 for a known method other than GET and HEAD on a
 * known path; 501 for an unknown method; 501 and close for any
 * Transfer-Encoding (chunked bodies are not supported); a Content-Length
 * body is read and discarded (not buffered) after the answer, up to
 * --max-body bytes; a longer one gets 413 and the connection closes.
 * HTTP/1.0 closes after the answer unless the request asked for keep-alive;
 * "Connection: close" closes after the answer, and so does a request with
 * "Expect: 100-continue" and a body (no 100 is sent; the client may never
 * send the body after a final answer, so the connection cannot be reused).
 *
 * Pipelined requests are answered even while the output is over the high
 * watermark: the framework stops reading, so what is answered is bounded by
 * one read (read_budget plus a partial head); a client that pipelines
 * thousands of /stats requests without reading can reach output_cap and is
 * closed (WEFT_CLOSE_OUTPUT_CAP).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "weft/weft.h"

static uint32_t g_max_head = 8192;
static uint32_t g_max_body = 1048576;

/* Handler counters: answers by status class. */
enum { K_2XX, K_4XX, K_5XX, K_COUNT };
static int g_counter[K_COUNT];

/* ---- answers -------------------------------------------------------------- */

/* The fixed answers, prebuilt at start in every connection mode. */
enum { R_HELLO, R_400, R_404, R_405, R_413, R_431, R_501, R_503, R_505, R_COUNT };

static const struct {
    int status;
    const char *reason, *body, *extra;
} resp_def[R_COUNT] = {
    [R_HELLO] = {200, "OK", "hello, world\n", ""},
    [R_400] = {400, "Bad Request", "bad request\n", ""},
    [R_404] = {404, "Not Found", "not found\n", ""},
    [R_405] = {405, "Method Not Allowed", "method not allowed\n", "Allow: GET, HEAD\r\n"},
    [R_413] = {413, "Content Too Large", "content too large\n", ""},
    [R_431] = {431, "Request Header Fields Too Large", "request header fields too large\n", ""},
    [R_501] = {501, "Not Implemented", "not implemented\n", ""},
    [R_503] = {503, "Service Unavailable", "no statistics yet\n", "Retry-After: 1\r\n"},
    [R_505] = {505, "HTTP Version Not Supported", "http version not supported\n", ""},
};

/* How the connection goes on after an answer, and the header that says so. */
enum { M_KEEP11, M_KEEP10, M_CLOSE, M_COUNT };
static const char *const mode_hdr[M_COUNT] = {"", "Connection: keep-alive\r\n",
                                              "Connection: close\r\n"};

static struct {
    char buf[256];
    size_t head_len, len;
} g_resp[R_COUNT][M_COUNT];

static void build_responses(void)
{
    for (int r = 0; r < R_COUNT; r++)
        for (int m = 0; m < M_COUNT; m++) {
            int n = snprintf(g_resp[r][m].buf, sizeof(g_resp[r][m].buf),
                             "HTTP/1.1 %d %s\r\nServer: weft-http\r\n"
                             "Content-Type: text/plain\r\nContent-Length: %zu\r\n%s%s\r\n",
                             resp_def[r].status, resp_def[r].reason, strlen(resp_def[r].body),
                             resp_def[r].extra, mode_hdr[m]);
            g_resp[r][m].head_len = (size_t)n;
            n += snprintf(g_resp[r][m].buf + n, sizeof(g_resp[r][m].buf) - (size_t)n, "%s",
                          resp_def[r].body);
            g_resp[r][m].len = (size_t)n;
        }
}

/* ---- connections ---------------------------------------------------------- */

typedef struct hconn {
    http_parser p;      /* the head being read */
    uint64_t body_left; /* bytes of the last request's body still to discard */
} hconn;

static void on_open(weft_conn *c)
{
    hconn *h = malloc(sizeof(*h));
    if (!h) {
        weft_abort(c);
        return;
    }
    h->body_left = 0;
    http_parser_init(&h->p, g_max_head);
    weft_conn_set_userdata(c, h);
}

static void on_close(weft_conn *c, weft_close_reason why)
{
    (void)why;
    free(weft_conn_userdata(c));
    weft_conn_set_userdata(c, NULL);
}

static void count_status(weft_conn *c, int status)
{
    weft_counter_add(c, g_counter[status < 400 ? K_2XX : status < 500 ? K_4XX : K_5XX], 1);
}

/*
 * GET /stats: the snapshot as JSON. Returns weft_send's result, or 1 with
 * *r set to the fixed answer to send instead.
 */
static int send_stats(weft_conn *c, int mode, int head_only, int *r)
{
    int err = 0;
    weft_snapshot *snap = weft_server_snapshot(weft_conn_server(c), &err);
    char *json = snap ? weft_snapshot_format(snap, WEFT_FORMAT_JSON) : NULL;
    weft_snapshot_free(snap);
    if (!json) {
        *r = R_503;
        return 1;
    }
    size_t blen = strlen(json);
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nServer: weft-http\r\nContent-Type: application/json\r\n"
                     "Cache-Control: no-store\r\nContent-Length: %zu\r\n%s\r\n",
                     blen, mode_hdr[mode]);
    int rc = weft_send(c, head, (size_t)n);
    if (rc >= 0 && !head_only)
        rc = weft_send(c, json, blen);
    free(json);
    *r = -1;
    return rc;
}

/* Keep-alive after this request? RFC 9112 9.3. */
static int conn_mode(const http_parser *p)
{
    if (p->flags & HTTP_F_CLOSE)
        return M_CLOSE;
    if (p->version >= 11)
        return M_KEEP11;
    return (p->flags & HTTP_F_KEEP_ALIVE) ? M_KEEP10 : M_CLOSE;
}

/*
 * A client that sent "Expect: 100-continue" may never send the body after
 * a final answer (RFC 9110 10.1.1), and then the next request would be read
 * as body bytes: close after answering such a request with a body.
 */
static int expect_close(const http_parser *p, int mode)
{
    if ((p->flags & HTTP_F_EXPECT) && (p->flags & HTTP_F_CONTENT_LENGTH) && p->content_length > 0)
        return M_CLOSE;
    return mode;
}

static int path_is(const http_parser *p, const char *s)
{
    size_t n = strlen(s);
    return !(p->flags & HTTP_F_PATH_LONG) && p->path_len == n && memcmp(p->path, s, n) == 0;
}

/*
 * Answer the request whose head p holds (or p->status after a parse error).
 * Returns 0 to go on with the next request, 1 when the connection is to
 * close after the answer, -1 when it is already gone (on_close ran: the
 * handler's state is freed).
 */
static int answer(weft_conn *c, const http_parser *p, int parse_rc)
{
    int mode = expect_close(p, conn_mode(p)), head_only = p->method == HTTP_M_HEAD, r;
    if (parse_rc == HTTP_PARSE_ERROR) {
        r = p->status == 431 ? R_431 : p->status == 505 ? R_505 : R_400;
        mode = M_CLOSE;
        head_only = 0;
    } else if (p->flags & HTTP_F_TRANSFER_ENC) {
        r = R_501; /* no transfer coding is supported: the body's end is unknown */
        mode = M_CLOSE;
    } else if ((p->flags & HTTP_F_CONTENT_LENGTH) && p->content_length > g_max_body) {
        r = R_413;
        mode = M_CLOSE;
    } else if (p->method == HTTP_M_OTHER) {
        r = R_501;
    } else if (!path_is(p, "/") && !path_is(p, "/stats")) {
        r = R_404;
    } else if (p->method != HTTP_M_GET && p->method != HTTP_M_HEAD) {
        r = R_405;
    } else if (path_is(p, "/")) {
        r = R_HELLO;
    } else {
        int rc = send_stats(c, mode, head_only, &r);
        if (rc < 0)
            return -1;
        if (r < 0) {
            count_status(c, 200);
            return mode == M_CLOSE;
        }
    }
    count_status(c, resp_def[r].status);
    if (weft_send(c, g_resp[r][mode].buf,
                  head_only ? g_resp[r][mode].head_len : g_resp[r][mode].len) < 0)
        return -1;
    return mode == M_CLOSE;
}

/*
 * Feed the parser the bytes of `in` it has not seen: everything from offset
 * p.nread (the head so far stays in the ring until it is complete).
 */
static int parse_more(hconn *h, weft_ring *in)
{
    struct iovec iov[2];
    int k = weft_ring_peek(in, iov);
    size_t skip = h->p.nread, used;
    for (int i = 0; i < k; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        int rc =
            http_parse(&h->p, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip, &used);
        skip = 0;
        if (rc != HTTP_PARSE_AGAIN)
            return rc;
    }
    return HTTP_PARSE_AGAIN;
}

static void on_data(weft_conn *c, weft_ring *in)
{
    hconn *h = weft_conn_userdata(c);
    uint64_t t0 = weft_now_ns();
    for (;;) {
        size_t len = weft_ring_len(in);
        if (h->body_left > 0) {
            /* Discard the body as it comes: it is never buffered. */
            size_t n = len < h->body_left ? len : (size_t)h->body_left;
            weft_ring_consume(in, n);
            h->body_left -= n;
            if (h->body_left > 0)
                return;
            continue;
        }
        if (len == 0)
            return;
        int rc = parse_more(h, in);
        if (rc == HTTP_PARSE_AGAIN)
            return; /* a partial head: it waits in the ring */
        int next = answer(c, &h->p, rc);
        if (next < 0)
            return;
        uint64_t t1 = weft_now_ns();
        weft_record_latency(c, t1 - t0);
        t0 = t1;
        if (next > 0) {
            /* May run on_close (and free h) at once when nothing is pending. */
            weft_close(c);
            return;
        }
        weft_ring_consume(in, h->p.nread);
        if (h->p.flags & HTTP_F_CONTENT_LENGTH)
            h->body_left = h->p.content_length;
        http_parser_init(&h->p, g_max_head);
    }
}

/* ---- the program ------------------------------------------------------------ */

static void http_defaults(weft_config *cfg, void *ud)
{
    (void)ud;
    cfg->port = 8080;
}

static int http_option(weft_config *cfg, const char *name, const char *arg, const char **why,
                       void *ud)
{
    (void)cfg;
    (void)ud;
    long long v;
    int head = strcmp(name, "max-head") == 0;
    if (weft_parse_number(arg, head ? 64 : 0, head ? 1 << 20 : 0xffffffffLL, &v) != 0) {
        *why = head ? "expected a number from 64 to 1048576" : "expected a number from 0 to 4G-1";
        return -EINVAL;
    }
    *(head ? &g_max_head : &g_max_body) = (uint32_t)v;
    return 0;
}

/* The answers, and the counters of answers by status class. */
static int http_setup(weft_server *s, void *ud)
{
    (void)ud;
    static const char *const cname[K_COUNT][2] = {
        {"http_2xx", "HTTP answers with a 2xx status"},
        {"http_4xx", "HTTP answers with a 4xx status"},
        {"http_5xx", "HTTP answers with a 5xx status"},
    };
    build_responses();
    for (int i = 0; i < K_COUNT; i++)
        if ((g_counter[i] = weft_server_add_counter(s, cname[i][0], cname[i][1])) < 0)
            return g_counter[i];
    return 0;
}

static const weft_program_option http_options[] = {
    {"max-head", "BYTES", "longest request head; a longer one gets 431 (default 8192)"},
    {"max-body", "BYTES",
     "longest request body, read and discarded; a longer one\n"
     "gets 413 (default 1048576)"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    static const weft_handler h = {.on_open = on_open, .on_data = on_data, .on_close = on_close};
    const weft_program prog = {
        .name = "weft-http",
        .summary = "A small HTTP/1.1 server on weft: GET / says hello, GET /stats is the\n"
                   "server's statistics as JSON. Keep-alive and pipelining; the head a\n"
                   "client is sending counts against --input-stall from its first byte.",
        .try_hint = "curl http://%s:%u/",
        .handler = &h,
        .options = http_options,
        .defaults = http_defaults,
        .option = http_option,
        .setup = http_setup,
    };
    return weft_main(argc, argv, &prog);
}
