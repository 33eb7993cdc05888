/*
 * http_it — raw-socket checks against a running weft-http.
 *
 *   usage: http_it PORT [statuses|split|pipeline|all]
 *
 * statuses: every answer the server gives (200, 404, 405, 413, 431, 400,
 *           501, 505), on which the connection must stay open or close,
 *           HEAD framing, HTTP/1.0 and Connection: close, bodies skipped.
 * split:    three pipelined requests (the second with a body) cut in two
 *           at every byte offset, and once sent one byte at a time.
 * pipeline: 100 and 1000 requests in one write; exactly that many answers,
 *           in order, then EOF after the last ("Connection: close").
 *
 * Every read has a 5 s timeout, so a hung server fails the test instead of
 * blocking it. Exits 0 when every check passed, 1 at the first failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int g_port;
static int g_checks;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "http_it: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A connection with a read buffer. */
typedef struct conn {
    int fd;
    size_t len;
    char buf[1 << 17];
} conn;

static conn *conn_open(void)
{
    conn *c = calloc(1, sizeof(*c));
    if (!c)
        fail("out of memory");
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        fail("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        fail("connect to port %d: %s", g_port, strerror(errno));
    return c;
}

static void conn_free(conn *c)
{
    close(c->fd);
    free(c);
}

static void send_all(conn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail("send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static void send_str(conn *c, const char *s) { send_all(c, s, strlen(s)); }

/* Read more into c->buf: bytes read, 0 on EOF. Fails on a timeout or error. */
static size_t fill(conn *c)
{
    if (c->len == sizeof(c->buf))
        fail("response larger than %zu bytes", sizeof(c->buf));
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("recv: %s (%zu bytes buffered: '%.*s')", strerror(errno), c->len, (int)c->len,
                 c->buf);
        c->len += (size_t)n;
        return (size_t)n;
    }
}

typedef struct resp {
    int status;
    long clen;  /* -1 when absent */
    int close;  /* "Connection: close" */
    int keep;   /* "Connection: keep-alive" */
    int allow;  /* an Allow header */
    int json;   /* Content-Type: application/json */
    char *body; /* NUL-terminated copy (malloc) */
} resp;

static const char *header(const char *head, size_t hlen, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = head; p + n < head + hlen; p++)
        if ((p == head || p[-1] == '\n') && strncasecmp(p, name, n) == 0 && p[n] == ':')
            return p + n + 1;
    return NULL;
}

/*
 * Read one response (no body when head_only). Returns 0, or -1 on EOF before
 * its first byte. Fails on anything malformed.
 */
static int get_resp(conn *c, int head_only, resp *r)
{
    memset(r, 0, sizeof(*r));
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (fill(c) == 0) {
            if (c->len == 0)
                return -1;
            fail("EOF inside a response head: '%.*s'", (int)c->len, c->buf);
        }
    size_t hlen = (size_t)(end - c->buf) + 4;
    if (sscanf(c->buf, "HTTP/1.1 %d ", &r->status) != 1)
        fail("bad status line: '%.*s'", (int)hlen, c->buf);
    const char *v = header(c->buf, hlen, "Content-Length");
    r->clen = v ? strtol(v, NULL, 10) : -1;
    if (r->clen < 0)
        fail("response without Content-Length: '%.*s'", (int)hlen, c->buf);
    v = header(c->buf, hlen, "Connection");
    r->close = v && strncmp(v, " close\r", 7) == 0;
    r->keep = v && strncmp(v, " keep-alive\r", 12) == 0;
    r->allow = header(c->buf, hlen, "Allow") != NULL;
    v = header(c->buf, hlen, "Content-Type");
    r->json = v && strncmp(v, " application/json", 17) == 0;
    size_t blen = head_only ? 0 : (size_t)r->clen;
    while (c->len < hlen + blen)
        if (fill(c) == 0)
            fail("EOF inside a body (%zu of %zu bytes)", c->len - hlen, blen);
    r->body = malloc(blen + 1);
    memcpy(r->body, c->buf + hlen, blen);
    r->body[blen] = 0;
    memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
    c->len -= hlen + blen;
    return 0;
}

/* One response with the given status (and, for 200 on "/", the hello body). */
static resp expect(conn *c, int head_only, int status, const char *what)
{
    resp r;
    if (get_resp(c, head_only, &r) != 0)
        fail("%s: EOF, want %d", what, status);
    if (r.status != status)
        fail("%s: status %d, want %d", what, r.status, status);
    g_checks++;
    return r;
}

static void expect_hello(conn *c, const char *what)
{
    resp r = expect(c, 0, 200, what);
    if (strcmp(r.body, "hello, world\n") != 0 || r.clen != 13)
        fail("%s: body '%s' (Content-Length %ld)", what, r.body, r.clen);
    free(r.body);
}

/* The server closes: EOF with nothing more. */
static void expect_eof(conn *c, const char *what)
{
    if (c->len == 0 && fill(c) == 0) {
        g_checks++;
        return;
    }
    fail("%s: want EOF, got '%.*s'", what, (int)c->len, c->buf);
}

/* The connection still serves: another request gets its answer. */
static void expect_open(conn *c, const char *what)
{
    send_str(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_hello(c, what);
}

/* One request on a new connection; its status, and whether it closed after. */
static void check(const char *req, int status, int closes, const char *what)
{
    conn *c = conn_open();
    send_str(c, req);
    resp r = expect(c, 0, status, what);
    if (closes && !r.close)
        fail("%s: no 'Connection: close' before closing", what);
    if (status == 405 && !r.allow)
        fail("%s: 405 without Allow", what);
    free(r.body);
    if (closes)
        expect_eof(c, what);
    else
        expect_open(c, what);
    conn_free(c);
}

static void test_statuses(void)
{
    check("GET / HTTP/1.1\r\nHost: t\r\n\r\n", 200, 0, "GET /");
    check("GET /?x=1&y=2 HTTP/1.1\r\nHost: t\r\n\r\n", 200, 0, "GET /?query");
    check("\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n", 200, 0, "empty lines first");
    check("GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n", 200, 0, "absolute-form");
    check("GET / HTTP/1.1\nHost: t\n\n", 200, 0, "bare LF line ends");
    check("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 404, 0, "404");
    check("GET /statsx HTTP/1.1\r\nHost: t\r\n\r\n", 404, 0, "404 prefix of a route");
    check("DELETE /stats HTTP/1.1\r\nHost: t\r\n\r\n", 405, 0, "405 DELETE /stats");
    check("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", 405, 0,
          "405 POST / with a body");
    check("POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 405, 1,
          "405 with Expect: 100-continue closes (the body may never come)");
    check("BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501, 0, "501 unknown method");
    check("get / HTTP/1.1\r\nHost: t\r\n\r\n", 501, 0, "501 lower-case method");
    check("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
          501, 1, "501 chunked body");
    check("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413, 1, "413");
    check("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505, 1, "505");
    check("GET / HTTP/1.0\r\n\r\n", 200, 1, "HTTP/1.0 closes");
    check("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 200, 1, "Connection: close");
    check("GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, CLOSE\r\n\r\n", 200, 1,
          "Connection: ..., close");

    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: t\r\n\r\n",
        "GET / HTTX/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\rX\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nX-Del: \x7f\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char what[64];
        snprintf(what, sizeof(what), "400 case %zu", i);
        check(bad[i], 400, 1, what);
    }
    {
        /* A NUL inside a header value (strlen would stop at it). */
        static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\nX: a\0b\r\n\r\n";
        conn *c = conn_open();
        send_all(c, req, sizeof(req) - 1);
        free(expect(c, 0, 400, "400 NUL in a value").body);
        expect_eof(c, "400 NUL in a value");
        conn_free(c);
    }

    /* 431: a head over 8 KiB, and one just under it that must pass. */
    char *big = malloc(10000);
    snprintf(big, 10000, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: %09000d\r\n\r\n", 0);
    check(big, 431, 1, "431");
    snprintf(big, 10000, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: %08100d\r\n\r\n", 0);
    check(big, 200, 0, "a head just under the limit");
    free(big);

    /* HTTP/1.0 keep-alive stays open and says so. */
    conn *c = conn_open();
    send_str(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    resp r = expect(c, 0, 200, "HTTP/1.0 keep-alive");
    if (!r.keep)
        fail("HTTP/1.0 keep-alive: no 'Connection: keep-alive' in the answer");
    free(r.body);
    expect_open(c, "HTTP/1.0 keep-alive");
    conn_free(c);

    /* HEAD: the GET's Content-Length, no body (the next answer parses). */
    c = conn_open();
    send_str(c, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\nHEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    r = expect(c, 1, 200, "HEAD /");
    if (r.clen != 13)
        fail("HEAD /: Content-Length %ld, want 13", r.clen);
    free(r.body);
    free(expect(c, 1, 404, "HEAD /nope").body);
    expect_hello(c, "GET after HEADs");
    conn_free(c);

    /* A 100 KB body, sent in pieces, is skipped; the next request is answered. */
    c = conn_open();
    send_str(c, "PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    char chunk[10000];
    memset(chunk, 'b', sizeof(chunk));
    for (int i = 0; i < 10; i++) {
        send_all(c, chunk, sizeof(chunk));
        if (i == 4)
            pause_ms(20);
    }
    free(expect(c, 0, 405, "PUT / with a 100 KB body").body);
    expect_open(c, "after a skipped body");
    conn_free(c);

    /* /stats: JSON with "total" once the first sample exists (503 before). */
    for (int tries = 0;; tries++) {
        c = conn_open();
        send_str(c, "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n");
        if (get_resp(c, 0, &r) != 0)
            fail("GET /stats: EOF");
        conn_free(c);
        if (r.status == 503 && tries < 50) {
            free(r.body);
            pause_ms(100);
            continue;
        }
        if (r.status != 200 || !r.json || !strstr(r.body, "\"total\""))
            fail("GET /stats: status %d, json %d, body '%.200s'", r.status, r.json, r.body);
        free(r.body);
        g_checks++;
        break;
    }
    c = conn_open();
    send_str(c, "HEAD /stats HTTP/1.1\r\nHost: t\r\n\r\n");
    r = expect(c, 1, 200, "HEAD /stats");
    if (r.clen <= 0 || !r.json)
        fail("HEAD /stats: Content-Length %ld, json %d", r.clen, r.json);
    free(r.body);
    expect_open(c, "after HEAD /stats");
    conn_free(c);
}

/* Three pipelined requests: 200 hello, 405 (after a 5-byte body), 404. */
static const char split_reqs[] = "GET / HTTP/1.1\r\nHost: split\r\nUser-Agent: http_it\r\n\r\n"
                                 "POST /stats HTTP/1.1\r\nHost: split\r\nContent-Length: 5\r\n"
                                 "Connection: keep-alive\r\n\r\nhello"
                                 "GET /nope?q HTTP/1.1\r\nHost: split\r\n\r\n";

static void expect_split_answers(conn *c, const char *what)
{
    expect_hello(c, what);
    free(expect(c, 0, 405, what).body);
    free(expect(c, 0, 404, what).body);
}

static void test_split(void)
{
    size_t len = sizeof(split_reqs) - 1;
    char what[64];
    for (size_t k = 1; k < len; k++) {
        snprintf(what, sizeof(what), "split at byte %zu of %zu", k, len);
        conn *c = conn_open();
        send_all(c, split_reqs, k);
        pause_ms(2); /* a separate read on the server */
        send_all(c, split_reqs + k, len - k);
        expect_split_answers(c, what);
        conn_free(c);
    }
    conn *c = conn_open();
    for (size_t i = 0; i < len; i++) {
        send_all(c, split_reqs + i, 1);
        pause_ms(1);
    }
    expect_split_answers(c, "one byte at a time");
    expect_open(c, "after one byte at a time");
    conn_free(c);
}

static void pipeline(int n)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: pipe\r\n\r\n";
    static const char last[] = "GET / HTTP/1.1\r\nHost: pipe\r\nConnection: close\r\n\r\n";
    size_t len = (size_t)(n - 1) * (sizeof(req) - 1) + sizeof(last) - 1;
    char *buf = malloc(len), *p = buf;
    for (int i = 0; i < n - 1; i++, p += sizeof(req) - 1)
        memcpy(p, req, sizeof(req) - 1);
    memcpy(p, last, sizeof(last) - 1);
    conn *c = conn_open();
    send_all(c, buf, len);
    free(buf);
    int got = 0;
    resp r;
    while (get_resp(c, 0, &r) == 0) {
        if (r.status != 200 || strcmp(r.body, "hello, world\n") != 0)
            fail("pipeline of %d: answer %d: status %d body '%s'", n, got + 1, r.status, r.body);
        got++;
        if (r.close != (got == n))
            fail("pipeline of %d: answer %d: Connection: close %s", n, got,
                 r.close ? "too early" : "missing on the last");
        free(r.body);
    }
    if (got != n)
        fail("pipeline of %d requests in one write: %d answers", n, got);
    g_checks++;
    conn_free(c);
}

int main(int argc, char **argv)
{
    if (argc < 2 || (g_port = atoi(argv[1])) <= 0) {
        fprintf(stderr, "usage: http_it PORT [statuses|split|pipeline|all]\n");
        return 2;
    }
    const char *what = argc > 2 ? argv[2] : "all";
    int all = strcmp(what, "all") == 0;
    if (all || strcmp(what, "statuses") == 0)
        test_statuses();
    if (all || strcmp(what, "split") == 0)
        test_split();
    if (all || strcmp(what, "pipeline") == 0) {
        pipeline(100);
        pipeline(1000);
    }
    printf("http_it: %s: %d checks passed\n", what, g_checks);
    return 0;
}
