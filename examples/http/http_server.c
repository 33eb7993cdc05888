/*
 * examples/http/http_server.c — weft-http's HTTP/1.1 handler (see
 * http_server.h for the calls).
 *
 *   GET  /       "hello, world\n"
 *   GET  /stats  the latest weft snapshot as JSON (503 before the first one)
 *   GET  PATH    a route the embedding program added (http_server_route)
 *   GET  PATH    with a root (http_static_root, --root): the file under it
 *                (http_static.c: ranges, 304, no escape from the root)
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
 * Answers: 400 for a malformed request, 431 for a head over max_head, 505
 * for an HTTP major version other than 1 (all three then close); 404 for
 * an unknown path; 405 for a known method other than GET and HEAD on a
 * known path; 501 for an unknown method; 501 and close for any
 * Transfer-Encoding (chunked bodies are not supported); a Content-Length
 * body is read and discarded (not buffered) after the answer, up to
 * max_body bytes; a longer one gets 413 and the connection closes.
 * HTTP/1.0 closes after the answer unless the request asked for keep-alive;
 * "Connection: close" closes after the answer, and so does a request with
 * "Expect: 100-continue" and a body (no 100 is sent; the client may never
 * send the body after a final answer, so the connection cannot be reused).
 *
 * A route may answer later (it gathers its answer from other workers, say):
 * the request's head is consumed and its body skipped as it comes, but the
 * next request is not parsed until http_respond, which then resumes the
 * connection (weft_conn_resume), so answers stay in request order. The
 * connection's state outlives a close while a route holds it: on_close
 * only forgets the connection, and http_respond frees the state.
 *
 * Pipelined requests are answered even while the output is over the high
 * watermark: the framework stops reading, so what is answered is bounded by
 * one read (read_budget plus a partial head); a client that pipelines
 * thousands of /stats requests without reading can reach output_cap and is
 * closed (WEFT_CLOSE_OUTPUT_CAP).
 */
#include "http_server.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "http_static.h"

static uint32_t g_max_head = HTTP_MAX_HEAD;
static uint32_t g_max_body = HTTP_MAX_BODY;

/* Handler counters: answers by status class. */
enum { K_2XX, K_4XX, K_5XX, K_COUNT };
static int g_counter[K_COUNT];

/* The routes of the embedding program. */
static struct {
    char path[HTTP_PATH_KEEP];
    size_t len;
    http_route_fn fn;
    void *ud;
} g_route[HTTP_MAX_ROUTES];
static int g_nroutes;

/* ---- answers -------------------------------------------------------------- */

/* The fixed answers, prebuilt at start in every connection mode. */
enum { R_HELLO, R_400, R_404, R_405, R_413, R_431, R_500, R_501, R_503, R_505, R_COUNT };

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
    [R_500] = {500, "Internal Server Error", "internal server error\n", ""},
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

/* A connection's state; while a route holds it, also its pending request. */
struct http_req {
    http_parser p;      /* the head being read */
    uint64_t body_left; /* bytes of the last request's body still to discard */
    weft_conn *c;       /* NULL once closed */
    int worker;         /* c's worker */
    uint8_t mode;       /* the request being answered: M_* */
    uint8_t head_only;  /* ... is a HEAD */
    uint8_t waiting;    /* a route holds the request: http_respond frees a closed one */
    uint8_t in_data;    /* inside on_data: on_close leaves the freeing to it */
    uint8_t closing;    /* weft_close was called: read nothing more */
};
typedef struct http_req hconn;

static void on_open(weft_conn *c)
{
    hconn *h = calloc(1, sizeof(*h));
    if (!h) {
        weft_abort(c);
        return;
    }
    h->c = c;
    h->worker = weft_conn_worker(c);
    http_parser_init(&h->p, g_max_head);
    weft_conn_set_userdata(c, h);
}

static void on_close(weft_conn *c, weft_close_reason why)
{
    (void)why;
    hconn *h = weft_conn_userdata(c);
    weft_conn_set_userdata(c, NULL);
    if (!h)
        return;
    h->c = NULL;
    if (!h->waiting && !h->in_data)
        free(h);
}

static void count_status(weft_conn *c, int status)
{
    weft_counter_add(c, g_counter[status < 400 ? K_2XX : status < 500 ? K_4XX : K_5XX], 1);
}

static const char *reason_of(int status)
{
    for (int r = 0; r < R_COUNT; r++)
        if (resp_def[r].status == status)
            return resp_def[r].reason;
    return "Unknown";
}

/*
 * Send a generated answer (head, then the body unless HEAD) for h's request.
 * Returns weft_send's result: below 0, the connection is gone.
 */
static int send_body(hconn *h, int status, const char *ctype, const void *body, size_t blen)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: weft-http\r\nContent-Type: %s\r\n"
                     "Cache-Control: no-store\r\nContent-Length: %zu\r\n%s\r\n",
                     status, reason_of(status), ctype, blen, mode_hdr[h->mode]);
    count_status(h->c, status);
    int rc = weft_send(h->c, head, (size_t)n);
    if (rc >= 0 && !h->head_only)
        rc = weft_send(h->c, body, blen);
    return rc;
}

/* GET /stats: the snapshot as JSON, or 503 before the first one. */
static int send_stats(hconn *h)
{
    int err = 0;
    weft_snapshot *snap = weft_server_snapshot(weft_conn_server(h->c), &err);
    char *json = snap ? weft_snapshot_format(snap, WEFT_FORMAT_JSON) : NULL;
    weft_snapshot_free(snap);
    if (!json) {
        count_status(h->c, 503);
        return weft_send(h->c, g_resp[R_503][h->mode].buf,
                         h->head_only ? g_resp[R_503][h->mode].head_len
                                      : g_resp[R_503][h->mode].len);
    }
    int rc = send_body(h, 200, "application/json", json, strlen(json));
    free(json);
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

static int path_is(const http_parser *p, const char *s, size_t n)
{
    return !(p->flags & HTTP_F_PATH_LONG) && p->path_len == n && memcmp(p->path, s, n) == 0;
}

/* What answers a path: one of these, a route's index (>= 0), or A_NONE. */
enum { A_NONE = -4, A_STATIC = -3, A_HELLO = -2, A_STATS = -1 };

static int target_of(const http_parser *p)
{
    if (path_is(p, "/stats", 6))
        return A_STATS;
    for (int i = 0; i < g_nroutes; i++)
        if (path_is(p, g_route[i].path, g_route[i].len))
            return i;
    /* With --root every other path is a file ("/": the root's index.html). */
    if (http_static_enabled())
        return A_STATIC;
    return path_is(p, "/", 1) ? A_HELLO : A_NONE;
}

/*
 * Which answer the parsed request gets: a fixed one (*fixed set, the
 * result -1) or a target (A_HELLO, A_STATS, a route). Sets h->mode and
 * h->head_only for it.
 */
static int classify(hconn *h, int parse_rc, int *fixed)
{
    const http_parser *p = &h->p;
    int target = -1;
    h->mode = (uint8_t)expect_close(p, conn_mode(p));
    h->head_only = p->method == HTTP_M_HEAD;
    *fixed = -1;
    if (parse_rc == HTTP_PARSE_ERROR) {
        *fixed = p->status == 431 ? R_431 : p->status == 505 ? R_505 : R_400;
        h->mode = M_CLOSE;
        h->head_only = 0;
    } else if (p->flags & HTTP_F_TRANSFER_ENC) {
        *fixed = R_501; /* no transfer coding is supported: the body's end is unknown */
        h->mode = M_CLOSE;
    } else if ((p->flags & HTTP_F_CONTENT_LENGTH) && p->content_length > g_max_body) {
        *fixed = R_413;
        h->mode = M_CLOSE;
    } else if (p->method == HTTP_M_OTHER) {
        *fixed = R_501;
    } else if ((target = target_of(p)) == A_NONE) {
        *fixed = R_404;
    } else if (p->method != HTTP_M_GET && p->method != HTTP_M_HEAD) {
        *fixed = R_405;
    } else if (target == A_HELLO) {
        *fixed = R_HELLO;
    }
    return *fixed >= 0 ? -1 : target;
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

/* Close after the answer: nothing more is read from this connection. */
static void finish(hconn *h)
{
    h->closing = 1;
    /* May run on_close at once when nothing is pending (in_data keeps h). */
    weft_close(h->c);
}

/*
 * Answer the complete request whose head h->p holds (or the parse error).
 * Returns 0 to go on with the next request, or -1 to stop reading: the
 * connection is closing or gone, or a route holds the request.
 */
static int answer(hconn *h, weft_ring *in, int parse_rc)
{
    int fixed, target = classify(h, parse_rc, &fixed);
    http_static_req file;
    if (target == A_STATIC) /* the full target and headers, while the head is in the ring */
        http_static_parse(in, h->p.nread, &file);
    if (h->mode != M_CLOSE) {
        /* The request is taken: its head leaves the ring, its body is skipped. */
        weft_ring_consume(in, h->p.nread);
        if (h->p.flags & HTTP_F_CONTENT_LENGTH)
            h->body_left = h->p.content_length;
    }
    http_parser_init(&h->p, g_max_head);
    int rc = 0;
    if (fixed >= 0) {
        count_status(h->c, resp_def[fixed].status);
        const int m = h->mode;
        rc = weft_send(h->c, g_resp[fixed][m].buf,
                       h->head_only ? g_resp[fixed][m].head_len : g_resp[fixed][m].len);
    } else if (target == A_STATS) {
        rc = send_stats(h);
    } else if (target == A_STATIC) {
        rc = http_static_answer(h->c, &file, h->head_only, mode_hdr[h->mode], count_status);
    } else {
        /* http_respond, now or later, sends the answer and goes on. */
        h->waiting = 1;
        g_route[target].fn(h, g_route[target].ud);
        return h->waiting || !h->c || h->closing ? -1 : 0;
    }
    if (rc < 0 || !h->c)
        return -1;
    if (h->mode == M_CLOSE) {
        finish(h);
        return -1;
    }
    return 0;
}

/* Answer every complete request in `in`, in order, until one must wait. */
static void serve(hconn *h, weft_ring *in)
{
    uint64_t t0 = weft_now_ns();
    while (h->c && !h->closing) {
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
        if (h->waiting || len == 0)
            return; /* a route holds the request: http_respond resumes */
        int rc = parse_more(h, in);
        if (rc == HTTP_PARSE_AGAIN)
            return; /* a partial head: it waits in the ring */
        if (answer(h, in, rc) < 0)
            return;
        uint64_t t1 = weft_now_ns();
        weft_record_latency(h->c, t1 - t0);
        t0 = t1;
    }
}

static void on_data(weft_conn *c, weft_ring *in)
{
    hconn *h = weft_conn_userdata(c);
    if (!h)
        return;
    h->in_data = 1;
    serve(h, in);
    h->in_data = 0;
    if (!h->c && !h->waiting)
        free(h); /* closed while serving */
}

/* ---- the library's calls ------------------------------------------------------ */

int http_respond(http_req *h, int status, const char *ctype, const void *body, size_t len)
{
    h->waiting = 0;
    if (!h->c) {
        if (!h->in_data)
            free(h);
        return -EPIPE;
    }
    if (send_body(h, status, ctype, body, len) < 0 || !h->c)
        return -EPIPE; /* closed inside weft_send: on_close (or on_data) freed h */
    if (h->mode == M_CLOSE)
        finish(h);
    else if (!h->in_data)
        weft_conn_resume(h->c); /* the requests that waited behind this one */
    return 0;
}

int http_req_worker(const http_req *r) { return r->worker; }

int http_server_route(const char *path, http_route_fn fn, void *ud)
{
    size_t n = path ? strlen(path) : 0;
    if (!fn || n == 0 || n > HTTP_PATH_KEEP || path[0] != '/' || strchr(path, '?'))
        return -EINVAL;
    if (!strcmp(path, "/") || !strcmp(path, "/stats"))
        return -EINVAL;
    if (g_nroutes == HTTP_MAX_ROUTES)
        return -ENOSPC;
    memcpy(g_route[g_nroutes].path, path, n);
    g_route[g_nroutes].len = n;
    g_route[g_nroutes].fn = fn;
    g_route[g_nroutes].ud = ud;
    g_nroutes++;
    return 0;
}

int http_server_setup(weft_server *s, uint32_t max_head, uint32_t max_body)
{
    static const char *const cname[K_COUNT][2] = {
        {"http_2xx", "HTTP answers with a 2xx status"},
        {"http_4xx", "HTTP answers with a 4xx status"},
        {"http_5xx", "HTTP answers with a 5xx status"},
    };
    if (max_head < 64 || max_head > (1u << 20))
        return -EINVAL;
    g_max_head = max_head;
    g_max_body = max_body;
    build_responses();
    for (int i = 0; i < K_COUNT; i++)
        if ((g_counter[i] = weft_server_add_counter(s, cname[i][0], cname[i][1])) < 0)
            return g_counter[i];
    return 0;
}

static const weft_handler http_h = {.on_open = on_open, .on_data = on_data, .on_close = on_close};

const weft_handler *http_handler(void) { return &http_h; }
