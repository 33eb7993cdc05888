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
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "weft/weft.h"

static weft_server *g_server;
static weft_config g_cfg;
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

/* ---- options -------------------------------------------------------------- */

/* An option setting a numeric or string field; the table drives getopt and --help. */
typedef struct opt {
    const char *name, *arg; /* the option and its argument's name in --help */
    char kind;              /* 'h' uint16_t, 'u' uint32_t, 'i' int, 's' string */
    void *dst;
    long long lo, hi;
    const char *help;
} opt;

static const opt g_opts[] = {
    {"bind", "ADDR", 's', &g_cfg.bind_addr, 0, 0, "IPv4 or IPv6 address to listen on"},
    {"port", "N", 'h', &g_cfg.port, 0, 65535, "TCP port (0 picks a free one)"},
    {"backlog", "N", 'i', &g_cfg.backlog, 1, INT_MAX, "listen backlog"},
    {"workers", "N", 'i', &g_cfg.workers, 0, WEFT_MAX_CPUS, "worker threads (0: one per CPU)"},
    {"max-conns", "N", 'i', &g_cfg.max_conns, 0, INT_MAX, "connections open at once (0: fd limit)"},
    {"ring-size", "BYTES", 'u', &g_cfg.ring_size, 64, 1 << 30,
     "initial ring capacity, a power of two"},
    {"read-budget", "BYTES", 'u', &g_cfg.read_budget, 1, 1 << 30,
     "bytes read per connection per turn"},
    {"output-high-wm", "BYTES", 'u', &g_cfg.output_high_wm, 1, 1 << 30,
     "pause reading above this output"},
    {"output-low-wm", "BYTES", 'u', &g_cfg.output_low_wm, 0, 1 << 30, "resume reading below this"},
    {"input-cap", "BYTES", 'u', &g_cfg.input_cap, 64, 1 << 30,
     "close when unread input reaches this"},
    {"output-cap", "BYTES", 'u', &g_cfg.output_cap, 1, 1 << 30,
     "close when output would pass this"},
    {"pool-cache", "BYTES", 'u', &g_cfg.pool_cache_bytes, 0, 1 << 30,
     "ring memory kept per worker"},
    {"shutdown-timeout", "MS", 'u', &g_cfg.shutdown_timeout_ms, 0, 3600000,
     "ms a stop waits for output"},
    {"idle-timeout", "MS", 'u', &g_cfg.idle_timeout_ms, 0, 86400000,
     "ms idle before closing (0: never)"},
    {"input-stall", "MS", 'u', &g_cfg.input_stall_ms, 0, 86400000,
     "ms a partial head may wait (0: never)"},
    {"output-stall", "MS", 'u', &g_cfg.output_stall_ms, 0, 86400000,
     "ms a peer may take no output"},
    {"close-linger", "MS", 'u', &g_cfg.close_linger_ms, 0, 3600000,
     "ms to discard input after a close"},
    {"stats-interval", "MS", 'u', &g_cfg.stats_interval_ms, 0, 3600000,
     "ms between stats samples (0: off)"},
    {"stats-socket", "PATH", 's', &g_cfg.admin_socket, 0, 0, "admin socket ('' for none)"},
    {"metrics-port", "N", 'h', &g_cfg.metrics_port, 0, 65535, "Prometheus /metrics port (0: off)"},
    {"metrics-bind", "ADDR", 's', &g_cfg.metrics_bind, 0, 0, "address of the metrics listener"},
    {"max-head", "BYTES", 'u', &g_max_head, 64, 1 << 20, "longest request head (else 431)"},
    {"max-body", "BYTES", 'u', &g_max_body, 0, 0xffffffffLL,
     "longest request body, discarded (else 413)"},
};
#define NOPTS (sizeof(g_opts) / sizeof(g_opts[0]))
enum { O_CPUS = 1000, O_NOPIN };

static void usage(FILE *f)
{
    fprintf(f, "usage: weft-http [options]\n\n"
               "A small HTTP/1.1 server on weft: GET / says hello, GET /stats is the\n"
               "server's statistics as JSON. Stops on SIGINT or SIGTERM.\n\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &g_opts[i];
        char def[64];
        if (o->kind == 's')
            snprintf(def, sizeof(def), "%s", *(const char **)o->dst ? *(const char **)o->dst : "");
        else if (o->kind == 'h')
            snprintf(def, sizeof(def), "%u", *(uint16_t *)o->dst);
        else if (o->kind == 'u')
            snprintf(def, sizeof(def), "%u", *(uint32_t *)o->dst);
        else
            snprintf(def, sizeof(def), "%d", *(int *)o->dst);
        char name[40];
        snprintf(name, sizeof(name), "%s %s", o->name, o->arg);
        fprintf(f, "  --%-22s %s (default %s)\n", name, o->help,
                o->kind == 's' && !*def ? "/tmp/weft-PORT.sock" : def);
    }
    fprintf(f,
            "  --%-22s CPUs to pin workers to, e.g. 0-3,8\n"
            "  --%-22s do not pin workers to CPUs\n"
            "  -q, --quiet              log errors and warnings only\n"
            "  -v, --verbose            log debug lines too\n"
            "  -h, --help               this text\n"
            "  -V, --version            print the version\n\n"
            "BYTES accept a K or M suffix (powers of 1024).\n",
            "cpus LIST", "no-pin");
}

/* 0 to run, 1 to exit 0 (--help), 2 on a usage error. */
static int parse_args(int argc, char **argv)
{
    struct option lo[NOPTS + 7];
    for (size_t i = 0; i < NOPTS; i++)
        lo[i] = (struct option){g_opts[i].name, required_argument, 0, (int)i + 256};
    lo[NOPTS + 0] = (struct option){"cpus", required_argument, 0, O_CPUS};
    lo[NOPTS + 1] = (struct option){"no-pin", no_argument, 0, O_NOPIN};
    lo[NOPTS + 2] = (struct option){"quiet", no_argument, 0, 'q'};
    lo[NOPTS + 3] = (struct option){"verbose", no_argument, 0, 'v'};
    lo[NOPTS + 4] = (struct option){"help", no_argument, 0, 'h'};
    lo[NOPTS + 5] = (struct option){"version", no_argument, 0, 'V'};
    lo[NOPTS + 6] = (struct option){0, 0, 0, 0};
    int o;
    while ((o = getopt_long(argc, argv, "qvhV", lo, NULL)) != -1) {
        if (o >= 256 && o < 256 + (int)NOPTS) {
            const opt *d = &g_opts[o - 256];
            long long v;
            if (d->kind == 's') {
                *(const char **)d->dst = optarg;
            } else if (weft_parse_number(optarg, d->lo, d->hi, &v) != 0) {
                fprintf(stderr, "weft-http: --%s '%s': expected a number from %lld to %lld\n",
                        d->name, optarg, d->lo, d->hi);
                return 2;
            } else if (d->kind == 'h') {
                *(uint16_t *)d->dst = (uint16_t)v;
            } else if (d->kind == 'u') {
                *(uint32_t *)d->dst = (uint32_t)v;
            } else {
                *(int *)d->dst = (int)v;
            }
            continue;
        }
        switch (o) {
        case O_CPUS:
            if (weft_parse_cpus(optarg, &g_cfg) != 0) {
                fprintf(stderr, "weft-http: --cpus '%s': expected a list such as 0-3,8\n", optarg);
                return 2;
            }
            break;
        case O_NOPIN:
            g_cfg.pin_cpus = false;
            break;
        case 'q':
            g_cfg.log_level = WEFT_LOG_WARN;
            break;
        case 'v':
            g_cfg.log_level = WEFT_LOG_DEBUG;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("weft-http %s\n", WEFT_VERSION);
            return 1;
        default:
            fprintf(stderr, "weft-http: see --help\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weft-http: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    const char *why;
    if (weft_config_validate(&g_cfg, &why) != 0) {
        fprintf(stderr, "weft-http: invalid configuration: %s\n", why);
        return 2;
    }
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    if (g_server)
        weft_server_stop(g_server);
}

int main(int argc, char **argv)
{
    g_cfg = weft_config_default();
    g_cfg.port = 8080;
    int rc = parse_args(argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    build_responses();

    weft_handler h = {.on_open = on_open, .on_data = on_data, .on_close = on_close};
    weft_server *s;
    rc = weft_server_new(&g_cfg, &h, NULL, &s);
    if (rc != 0) {
        fprintf(stderr, "weft-http: cannot listen on %s port %u: %s\n", g_cfg.bind_addr, g_cfg.port,
                weft_strerror(rc));
        return 1;
    }
    static const char *const cname[K_COUNT][2] = {
        {"http_2xx", "HTTP answers with a 2xx status"},
        {"http_4xx", "HTTP answers with a 4xx status"},
        {"http_5xx", "HTTP answers with a 5xx status"},
    };
    for (int i = 0; i < K_COUNT; i++)
        if ((g_counter[i] = weft_server_add_counter(s, cname[i][0], cname[i][1])) < 0) {
            fprintf(stderr, "weft-http: counter %s: %s\n", cname[i][0],
                    weft_strerror(g_counter[i]));
            weft_server_free(s);
            return 1;
        }
    g_server = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = weft_server_start(s);
    if (rc != 0) {
        fprintf(stderr, "weft-http: cannot start: %s\n", weft_strerror(rc));
        weft_server_free(s);
        return 1;
    }
    int v6 = strchr(g_cfg.bind_addr, ':') != NULL;
    printf("weft-http %s: listening on http://%s%s%s:%u/, %d workers\n", WEFT_VERSION,
           v6 ? "[" : "", g_cfg.bind_addr, v6 ? "]" : "", weft_server_port(s),
           weft_server_workers(s));
    rc = weft_server_wait(s);
    weft_stats st;
    weft_server_stats(s, &st);
    printf("weft-http: stopped: %llu connections, %llu bytes in, %llu bytes out\n",
           (unsigned long long)st.accepted, (unsigned long long)st.bytes_in,
           (unsigned long long)st.bytes_out);
    weft_server_free(s);
    if (rc != 0) {
        fprintf(stderr, "weft-http: %s\n", weft_strerror(rc));
        return 1;
    }
    return 0;
}
