/*
 * examples/lb/http_msg.c — HTTP/1.x heads and chunked framing for weft-lb
 * (http_msg.h says what is accepted and refused, and why).
 */
#include "http_msg.h"

#include <string.h>

/* RFC 9110 5.6.2: tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value's byte: HTAB, SP, VCHAR or obs-text. */
static int is_vbyte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Whether the n bytes at p are the lower-case word w, ignoring case. */
static int word_is(const char *p, size_t n, const char *w)
{
    if (strlen(w) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != w[i])
            return 0;
    return 1;
}

/* The headers this parser interprets. */
enum { H_OTHER, H_CL, H_TE, H_CONNECTION, H_HOP, H_HOST, H_EXPECT, H_XFF, H_XFP };

static int header_kind(const char *n, size_t len)
{
    static const struct {
        const char *name;
        int kind;
    } known[] = {
        {"content-length", H_CL}, {"transfer-encoding", H_TE}, {"connection", H_CONNECTION},
        {"keep-alive", H_HOP},    {"proxy-connection", H_HOP}, {"te", H_HOP},
        {"upgrade", H_HOP},       {"trailer", H_HOP},          {"host", H_HOST},
        {"expect", H_EXPECT},     {"x-forwarded-for", H_XFF},  {"x-forwarded-proto", H_XFP},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (word_is(n, len, known[i].name))
            return known[i].kind;
    return H_OTHER;
}

/*
 * The end of the line starting at *pos: stores the offset of its first
 * byte after the line end in *next and returns the length without it, or
 * -1 for a CR not followed by LF or a line without an end.
 */
static long line_end(const char *b, size_t len, size_t pos, size_t *next)
{
    for (size_t i = pos; i < len; i++) {
        if (b[i] == '\n') {
            *next = i + 1;
            return (long)(i - pos);
        }
        if (b[i] == '\r') {
            if (i + 1 >= len || b[i + 1] != '\n')
                return -1;
            *next = i + 2;
            return (long)(i - pos);
        }
    }
    return -1;
}

/* "HTTP/D.D" at p: the version (10, 11) or -1 (not one), -2 (major not 1). */
static int parse_version(const char *p, size_t n)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' ||
        p[7] < '0' || p[7] > '9')
        return -1;
    if (p[5] != '1')
        return -2;
    return p[7] == '0' ? 10 : 11;
}

static int fail(http_head *h, int status)
{
    h->status = status;
    return -1;
}

static int request_line(const char *b, size_t n, http_head *h)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)b[i]))
        i++;
    if (i == 0 || i >= n || b[i] != ' ')
        return fail(h, 400);
    h->method_len = (uint32_t)i;
    size_t t = ++i;
    while (i < n && (unsigned char)b[i] > 0x20 && (unsigned char)b[i] < 0x7f)
        i++;
    if (i == t || i >= n || b[i] != ' ')
        return fail(h, 400);
    h->target = (uint32_t)t;
    h->target_len = (uint32_t)(i - t);
    int v = parse_version(b + i + 1, n - i - 1);
    if (v < 0)
        return fail(h, v == -2 ? 505 : 400);
    h->version = v;
    const char *m = b;
    size_t ml = h->method_len;
    if (ml == 7 && memcmp(m, "CONNECT", 7) == 0)
        return fail(h, 501);
    static const char *const idem[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
    for (size_t k = 0; k < sizeof(idem) / sizeof(idem[0]); k++)
        if (strlen(idem[k]) == ml && memcmp(m, idem[k], ml) == 0)
            h->flags |= HTTP_MSG_IDEMPOTENT;
    if (ml == 4 && memcmp(m, "HEAD", 4) == 0)
        h->flags |= HTTP_MSG_HEAD;
    const char *tg = b + t;
    size_t tl = h->target_len;
    int origin = tg[0] == '/';
    int absolute =
        (tl > 7 && memcmp(tg, "http://", 7) == 0) || (tl > 8 && memcmp(tg, "https://", 8) == 0);
    int star = tl == 1 && tg[0] == '*' && ml == 7 && memcmp(m, "OPTIONS", 7) == 0;
    if (!origin && !absolute && !star)
        return fail(h, 400);
    return 0;
}

static int status_line(const char *b, size_t n, http_head *h)
{
    if (n < 12 || b[8] != ' ' || (n > 12 && b[12] != ' '))
        return fail(h, 502);
    int v = parse_version(b, 8);
    if (v < 0)
        return fail(h, 502);
    h->version = v;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (b[i] < '0' || b[i] > '9')
            return fail(h, 502);
        st = st * 10 + (b[i] - '0');
    }
    if (st < 100)
        return fail(h, 502);
    for (size_t i = 13; i < n; i++)
        if (!is_vbyte((unsigned char)b[i]))
            return fail(h, 502);
    h->status = st;
    return 0;
}

/* Content-Length: 1 to 18 digits (no sign, no list), the same if repeated. */
static int content_length(const char *v, size_t n, http_head *h, int seen)
{
    if (n == 0 || n > 18)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (seen && x != h->content_length)
        return -1;
    h->content_length = x;
    h->flags |= HTTP_MSG_LENGTH;
    return 0;
}

/* The tokens of a Connection value: close and keep-alive set flags; the
 * others name headers that are hop-by-hop too (kept in tok[] for later). */
#define MAX_CONN_TOKENS 8
typedef struct conn_tokens {
    int n;
    uint32_t off[MAX_CONN_TOKENS], len[MAX_CONN_TOKENS];
} conn_tokens;

static void connection_tokens(const char *b, uint32_t v, uint32_t n, http_head *h, conn_tokens *t)
{
    uint32_t i = 0;
    while (i < n) {
        while (i < n && (b[v + i] == ',' || b[v + i] == ' ' || b[v + i] == '\t'))
            i++;
        uint32_t s = i;
        while (i < n && b[v + i] != ',' && b[v + i] != ' ' && b[v + i] != '\t')
            i++;
        if (i == s)
            continue;
        if (word_is(b + v + s, i - s, "close"))
            h->flags |= HTTP_MSG_CLOSE;
        else if (word_is(b + v + s, i - s, "keep-alive"))
            h->flags |= HTTP_MSG_KEEPALIVE;
        else if (t->n < MAX_CONN_TOKENS) {
            t->off[t->n] = v + s;
            t->len[t->n++] = i - s;
        }
    }
}

/* Mark the headers that a Connection token names as hop-by-hop. */
static void mark_connection_named(const char *b, http_head *h, const conn_tokens *t)
{
    for (int i = 0; i < h->nhdrs; i++)
        for (int k = 0; k < t->n; k++) {
            http_hdr *x = &h->hdrs[i];
            if (x->name_len != t->len[k])
                continue;
            uint32_t j = 0;
            while (j < x->name_len &&
                   lower((unsigned char)b[x->name + j]) == lower((unsigned char)b[t->off[k] + j]))
                j++;
            if (j == x->name_len)
                x->flags |= HTTP_MSG_HOP;
        }
}

/* One header line [pos, pos+n): split, check, interpret. 0 or -1 (h->status set). */
static int header_line(const char *b, uint32_t pos, uint32_t n, int is_request, http_head *h,
                       int *seen, conn_tokens *ct)
{
    int bad = is_request ? 400 : 502;
    if (b[pos] == ' ' || b[pos] == '\t')
        return fail(h, bad); /* obs-fold */
    uint32_t i = 0;
    while (i < n && is_tchar((unsigned char)b[pos + i]))
        i++;
    if (i == 0 || i >= n || b[pos + i] != ':')
        return fail(h, bad);
    http_hdr *x = &h->hdrs[h->nhdrs++];
    x->name = pos;
    x->name_len = i;
    i++;
    while (i < n && (b[pos + i] == ' ' || b[pos + i] == '\t'))
        i++;
    uint32_t vs = i, ve = n;
    for (uint32_t k = vs; k < n; k++)
        if (!is_vbyte((unsigned char)b[pos + k]))
            return fail(h, bad);
    while (ve > vs && (b[pos + ve - 1] == ' ' || b[pos + ve - 1] == '\t'))
        ve--;
    x->value = pos + vs;
    x->value_len = ve - vs;
    x->flags = 0;
    const char *v = b + x->value;
    switch (header_kind(b + pos, x->name_len)) {
    case H_CL:
        if (content_length(v, x->value_len, h, seen[H_CL]++) != 0)
            return fail(h, bad);
        break;
    case H_TE:
        if (seen[H_TE]++ || !word_is(v, x->value_len, "chunked"))
            return fail(h, is_request && seen[H_TE] == 1 ? 501 : bad);
        break;
    case H_CONNECTION:
        x->flags |= HTTP_MSG_HOP;
        connection_tokens(b, x->value, x->value_len, h, ct);
        break;
    case H_HOP:
        x->flags |= HTTP_MSG_HOP;
        break;
    case H_HOST:
        seen[H_HOST]++;
        break;
    case H_EXPECT:
        if (word_is(v, x->value_len, "100-continue"))
            h->flags |= HTTP_MSG_EXPECT;
        break;
    case H_XFF:
        x->flags |= HTTP_MSG_XFF;
        break;
    case H_XFP:
        x->flags |= HTTP_MSG_XFP;
        break;
    }
    return 0;
}

int http_head_parse(const char *b, size_t len, int is_request, int max_headers, http_head *h)
{
    memset(h, 0, offsetof(http_head, hdrs));
    if (max_headers > HTTP_MSG_MAX_HEADERS || max_headers <= 0)
        max_headers = HTTP_MSG_MAX_HEADERS;
    int bad = is_request ? 400 : 502;
    size_t next;
    long n = line_end(b, len, 0, &next);
    if (n <= 0)
        return fail(h, bad);
    if ((is_request ? request_line(b, (size_t)n, h) : status_line(b, (size_t)n, h)) != 0)
        return -1;
    h->line_end = (uint32_t)next;
    int seen[H_XFP + 1] = {0};
    conn_tokens ct = {0};
    for (;;) {
        size_t pos = next;
        n = line_end(b, len, pos, &next);
        if (n < 0)
            return fail(h, bad);
        if (n == 0)
            break;
        if (h->nhdrs == max_headers)
            return fail(h, is_request ? 431 : 502);
        if (header_line(b, (uint32_t)pos, (uint32_t)n, is_request, h, seen, &ct) != 0)
            return -1;
        h->hdrs[h->nhdrs - 1].line = (uint32_t)pos;
        h->hdrs[h->nhdrs - 1].line_len = (uint32_t)(next - pos);
    }
    if (next != len)
        return fail(h, bad); /* bytes after the empty line: the caller's error */
    if (seen[H_CL] && seen[H_TE])
        return fail(h, bad);
    if (is_request && (h->version == 11 ? seen[H_HOST] != 1 : seen[H_HOST] > 1))
        return fail(h, 400);
    mark_connection_named(b, h, &ct);
    if (seen[H_TE])
        h->body = HTTP_BODY_CHUNKED;
    else if (seen[H_CL] && h->content_length > 0)
        h->body = HTTP_BODY_LENGTH;
    return 0;
}

int http_response_body(const http_head *h, int head_request)
{
    if (head_request || h->status < 200 || h->status == 204 || h->status == 304)
        return HTTP_BODY_NONE;
    if (h->body == HTTP_BODY_CHUNKED)
        return HTTP_BODY_CHUNKED;
    if (h->body == HTTP_BODY_LENGTH)
        return HTTP_BODY_LENGTH;
    /* Content-Length: 0 parses as NONE; without any length, until close. */
    return h->flags & HTTP_MSG_LENGTH ? HTTP_BODY_NONE : HTTP_BODY_CLOSE;
}

/* ---- chunked framing ---------------------------------------------------- */

enum {
    C_SIZE,    /* hex digits of a chunk size */
    C_SIZE_WS, /* blanks after the size: only ';' or CR may follow */
    C_EXT,     /* a chunk extension, up to CR */
    C_SIZE_LF, /* the LF of the size line */
    C_DATA,    /* left bytes of data */
    C_DATA_CR, /* the CR after a chunk's data */
    C_DATA_LF, /* ... and its LF */
    C_TRAILER, /* the start of a trailer line, or the final CRLF */
    C_TR_LINE, /* a trailer line, up to CR */
    C_TR_LF,   /* its LF */
    C_END_LF,  /* the final LF */
    C_DONE,
    C_ERROR,
};

#define TRAILERS_MAX 8192

void http_chunked_init(http_chunked *c) { memset(c, 0, sizeof(*c)); }

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (unsigned char)lower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* One framing byte; the new state. */
static uint8_t chunk_byte(http_chunked *c, unsigned char ch)
{
    int hv;
    switch (c->state) {
    case C_SIZE:
        if ((hv = hexval(ch)) >= 0) {
            if (++c->digits > 15)
                return C_ERROR;
            c->left = c->left * 16 + (uint64_t)hv;
            return C_SIZE;
        }
        if (c->digits == 0)
            return C_ERROR;
        if (ch == ';')
            return C_EXT;
        if (ch == '\r')
            return C_SIZE_LF;
        return ch == ' ' || ch == '\t' ? C_SIZE_WS : C_ERROR;
    case C_SIZE_WS:
        if (ch == ';')
            return C_EXT;
        if (ch == '\r')
            return C_SIZE_LF;
        return ch == ' ' || ch == '\t' ? C_SIZE_WS : C_ERROR;
    case C_EXT:
        if (ch == '\r')
            return C_SIZE_LF;
        return is_vbyte(ch) ? C_EXT : C_ERROR;
    case C_SIZE_LF:
        if (ch != '\n')
            return C_ERROR;
        return c->left ? C_DATA : C_TRAILER;
    case C_DATA_CR:
        return ch == '\r' ? C_DATA_LF : C_ERROR;
    case C_DATA_LF:
        if (ch != '\n')
            return C_ERROR;
        c->digits = 0;
        c->left = 0;
        return C_SIZE;
    case C_TRAILER:
        if (ch == '\r')
            return C_END_LF;
        /* a trailer line is a header line: no obs-fold, no bare LF */
        return is_tchar(ch) ? C_TR_LINE : C_ERROR;
    case C_TR_LINE:
        if (ch == '\r')
            return C_TR_LF;
        return is_vbyte(ch) ? C_TR_LINE : C_ERROR;
    case C_TR_LF:
        return ch == '\n' ? C_TRAILER : C_ERROR;
    case C_END_LF:
        return ch == '\n' ? C_DONE : C_ERROR;
    }
    return C_ERROR;
}

int http_chunked_feed(http_chunked *c, const char *buf, size_t len, size_t *used)
{
    size_t i = 0;
    while (i < len && c->state != C_DONE && c->state != C_ERROR) {
        if (c->state == C_DATA) {
            size_t take = len - i < c->left ? len - i : (size_t)c->left;
            i += take;
            c->left -= take;
            if (c->left == 0)
                c->state = C_DATA_CR;
            continue;
        }
        if (c->state >= C_TRAILER && ++c->tr_total > TRAILERS_MAX) {
            c->state = C_ERROR;
            break;
        }
        c->state = chunk_byte(c, (unsigned char)buf[i++]);
    }
    *used = i;
    if (c->state == C_ERROR)
        return HTTP_CHUNKED_ERROR;
    return c->state == C_DONE ? HTTP_CHUNKED_DONE : HTTP_CHUNKED_MORE;
}
