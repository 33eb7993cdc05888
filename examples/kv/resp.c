/*
 * examples/kv/resp.c — the incremental RESP2 request parser (see resp.h).
 *
 * States of one command:
 *
 *   START ──'*'──► MBULK ──"*N\r\n", N>0──► BULKHDR ◄──────────┐
 *     │              │ N<=0: empty command     │ "$L\r\n"       │ more args
 *     │ other byte   ▼                         ▼                │
 *     └──────────► INLINE ──line──► done     BULKDATA ──L+2 bytes┘──► done
 *
 * Any state can end in ERROR, which is sticky: after a protocol error the
 * stream's framing is lost and the caller closes the connection.
 *
 * A multibulk's arguments are counted as their bulk strings arrive, and only
 * the first RESP_SMALL_ARGS spans are kept (in the parser). When the last
 * one is in, a longer command's table is allocated at its exact size and
 * filled by walking the command's bulk headers again: they were validated
 * on arrival, so the walk cannot fail, and it touches each header once more
 * (a few bytes per argument, against the argument's own bytes). A client
 * that announces "*1048576" and sends empty arguments slowly thus makes the
 * connection hold nothing but the bytes it sent, which weft counts against
 * the input cap and the worker's ring memory cap (see resp.h, "Memory").
 *
 * Error texts are Redis's own ("Protocol error: invalid bulk length", ...),
 * so clients and tests that match them keep working. Two checks are
 * stricter than Redis: a header line must end in "\r\n" (Redis looks for
 * the '\r' and skips the next byte unseen) and so must a bulk string's data.
 */
#include "resp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_START, S_INLINE, S_MBULK, S_BULKHDR, S_BULKDATA, S_ERROR };

/* A state function's "made progress, go on with the next state". */
#define AGAIN 2

resp_limits resp_limits_default(size_t max_cmd)
{
    resp_limits l = {
        .max_bulk = 512u * 1024 * 1024,
        .max_line = 64u * 1024,
        .max_args = 1024u * 1024,
        .max_cmd = max_cmd,
    };
    return l;
}

void resp_init(resp_parser *p, const resp_limits *lim)
{
    memset(p, 0, sizeof(*p));
    p->lim = *lim;
    p->slot = p->small;
    p->cap = RESP_SMALL_ARGS;
    p->state = S_START;
}

void resp_free(resp_parser *p)
{
    if (p->slot != p->small)
        free(p->slot);
    free(p->scratch);
    p->slot = p->small;
    p->cap = RESP_SMALL_ARGS;
    p->scratch = NULL;
    p->scratch_cap = 0;
}

void resp_next(resp_parser *p)
{
    if (p->cap > RESP_KEEP_SLOTS) {
        free(p->slot);
        p->slot = p->small;
        p->cap = RESP_SMALL_ARGS;
    }
    if (p->scratch_cap > RESP_KEEP_SCRATCH) {
        free(p->scratch);
        p->scratch = NULL;
        p->scratch_cap = 0;
    }
    p->argc = 0;
    p->argv = NULL;
    p->used = 0;
    p->state = S_START;
    p->pos = p->scan = p->want = p->first = p->bulk = 0;
}

int resp_strtoll(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    int neg = 0;
    if (len == 0 || len > 20)
        return -1;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (len == 1)
            return -1;
    }
    /* No leading zeros ("0" itself aside), as Redis's string2ll. */
    if (s[i] == '0') {
        if (len == 1) {
            *out = 0;
            return 0;
        }
        return -1;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -1;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(long long)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return -1;
        *out = (long long)v;
    }
    return 0;
}

/* ---- the two-segment source --------------------------------------------- */

static size_t src_len(const resp_src *s) { return s->len[0] + s->len[1]; }

static unsigned char src_byte(const resp_src *s, size_t off)
{
    return (unsigned char)(off < s->len[0] ? s->seg[0][off] : s->seg[1][off - s->len[0]]);
}

/* Offset of the first c at or after from; -1 when absent. */
static long src_find(const resp_src *s, size_t from, int c)
{
    if (from < s->len[0]) {
        const char *hit = memchr(s->seg[0] + from, c, s->len[0] - from);
        if (hit)
            return (long)(hit - s->seg[0]);
        from = s->len[0];
    }
    size_t o = from - s->len[0];
    if (o < s->len[1]) {
        const char *hit = memchr(s->seg[1] + o, c, s->len[1] - o);
        if (hit)
            return (long)(s->len[0] + (size_t)(hit - s->seg[1]));
    }
    return -1;
}

static void src_copy(const resp_src *s, size_t off, char *dst, size_t n)
{
    for (int i = 0; i < 2 && n > 0; i++) {
        if (off >= s->len[i]) {
            off -= s->len[i];
            continue;
        }
        size_t k = s->len[i] - off < n ? s->len[i] - off : n;
        memcpy(dst, s->seg[i] + off, k);
        dst += k;
        n -= k;
        off = 0;
    }
}

/* ---- helpers ------------------------------------------------------------- */

static int fail_kind(resp_parser *p, resp_err_kind kind, const char *msg)
{
    p->state = S_ERROR;
    p->err = msg;
    p->err_kind = kind;
    return RESP_ERR;
}

/* Malformed input. */
static int fail(resp_parser *p, const char *msg) { return fail_kind(p, RESP_E_PROTO, msg); }

/* Well-formed, but over a limit. */
static int fail_limit(resp_parser *p, const char *msg) { return fail_kind(p, RESP_E_LIMIT, msg); }

static int fail_nomem(resp_parser *p) { return fail_kind(p, RESP_E_NOMEM, "ERR out of memory"); }

/*
 * Room for n argument slots: exactly n when the command's size is known
 * (exact), else by doubling (an inline command's words, counted on a line
 * that is already complete).
 */
static int reserve(resp_parser *p, size_t n, int exact)
{
    if (n <= p->cap)
        return 0;
    size_t cap = p->cap * 2;
    while (cap < n)
        cap *= 2;
    if (exact)
        cap = n;
    union resp_slot *ns;
    if (p->slot == p->small) {
        ns = malloc(cap * sizeof(*ns));
        if (ns)
            memcpy(ns, p->small, sizeof(p->small));
    } else {
        ns = realloc(p->slot, cap * sizeof(*ns));
    }
    if (!ns)
        return -1;
    p->slot = ns;
    p->cap = cap;
    return 0;
}

static int add_span(resp_parser *p, size_t off, size_t len)
{
    if (p->argc >= p->cap && reserve(p, p->argc + 1, 0) != 0)
        return fail_nomem(p);
    p->slot[p->argc].span.off = off;
    p->slot[p->argc].span.len = len;
    p->argc++;
    return 0;
}

/*
 * Find the end of the line that starts at `start`. Returns 1 with *nl at its
 * '\n', 0 when it has not arrived (remembering how far it looked), or
 * RESP_ERR when it is, or already was, longer than the limits allow. The
 * decision does not depend on how the bytes were split into arrivals.
 */
static int find_line(resp_parser *p, const resp_src *src, size_t start, size_t *nl,
                     const char *too_big)
{
    size_t n = src_len(src);
    size_t from = p->scan > start ? p->scan : start;
    long hit = src_find(src, from, '\n');
    size_t end = hit >= 0 ? (size_t)hit : n; /* bytes of the line seen so far */
    if (end - start > p->lim.max_line)
        return fail_limit(p, too_big);
    if (end > p->lim.max_cmd)
        return fail_limit(p, "ERR Protocol error: command exceeds the input cap");
    if (hit < 0) {
        p->scan = n;
        return 0;
    }
    p->scan = 0;
    *nl = (size_t)hit;
    return 1;
}

/* The number between a header's type byte at `start` and "\r\n" at nl. */
static int header_num(const resp_src *src, size_t start, size_t nl, long long *v)
{
    char buf[24];
    if (nl < start + 2 || src_byte(src, nl - 1) != '\r')
        return -1;
    size_t len = nl - 1 - (start + 1);
    if (len == 0 || len > 20)
        return -1;
    src_copy(src, start + 1, buf, len);
    return resp_strtoll(buf, len, v);
}

/*
 * The spans of every argument of a complete multibulk, into a table of
 * exactly argc slots: its bulk headers are walked again from p->first.
 * Each was checked when it arrived ("$L\r\n", L digits, L+2 bytes after),
 * so the walk needs no check of its own.
 */
static int respan(resp_parser *p, const resp_src *src)
{
    if (reserve(p, p->argc, 1) != 0)
        return fail_nomem(p);
    size_t off = p->first;
    for (size_t i = 0; i < p->argc; i++) {
        size_t nl = (size_t)src_find(src, off, '\n');
        long long n = 0;
        (void)header_num(src, off, nl, &n);
        p->slot[i].span.off = nl + 1;
        p->slot[i].span.len = (size_t)n;
        off = nl + 1 + (size_t)n + 2;
    }
    return 0;
}

/* Turn the spans into pointers; copy the one that straddles the segments. */
static int complete(resp_parser *p, const resp_src *src)
{
    size_t l0 = src->len[0];
    for (size_t i = 0; i < p->argc; i++) {
        size_t off = p->slot[i].span.off, len = p->slot[i].span.len;
        const char *ptr;
        if (len == 0) {
            ptr = "";
        } else if (off + len <= l0) {
            ptr = src->seg[0] + off;
        } else if (off >= l0) {
            ptr = src->seg[1] + (off - l0);
        } else {
            if (len > p->scratch_cap) {
                char *b = malloc(len);
                if (!b)
                    return fail_nomem(p);
                free(p->scratch);
                p->scratch = b;
                p->scratch_cap = len;
            }
            src_copy(src, off, p->scratch, len);
            ptr = p->scratch;
        }
        p->slot[i].arg.p = ptr;
        p->slot[i].arg.len = len;
    }
    p->argv = &p->slot[0].arg;
    p->used = p->pos;
    p->state = S_START; /* until resp_next, parse again returns the same */
    return RESP_CMD;
}

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* ---- the states ---------------------------------------------------------- */

static int parse_inline(resp_parser *p, const resp_src *src)
{
    size_t nl;
    int r = find_line(p, src, 0, &nl, "ERR Protocol error: too big inline request");
    if (r <= 0)
        return r;
    /* Words separated by blanks; no quoting (Redis's sdssplitargs has it). */
    size_t i = 0;
    while (i < nl) {
        while (i < nl && is_blank(src_byte(src, i)))
            i++;
        if (i == nl)
            break;
        size_t w = i;
        while (i < nl && !is_blank(src_byte(src, i)))
            i++;
        if (p->argc >= p->lim.max_args)
            return fail_limit(p, "ERR Protocol error: too many arguments");
        if (add_span(p, w, i - w) != 0)
            return RESP_ERR;
    }
    p->pos = nl + 1;
    return complete(p, src);
}

static int parse_mbulk(resp_parser *p, const resp_src *src)
{
    size_t nl;
    long long n;
    int r = find_line(p, src, 0, &nl, "ERR Protocol error: too big mbulk count string");
    if (r <= 0)
        return r;
    if (header_num(src, 0, nl, &n) != 0)
        return fail(p, "ERR Protocol error: invalid multibulk length");
    if (n > (long long)p->lim.max_args) /* Redis's text for this limit, too */
        return fail_limit(p, "ERR Protocol error: invalid multibulk length");
    p->pos = nl + 1;
    if (n <= 0) /* "*0" and "*-1": an empty command, skipped like Redis */
        return complete(p, src);
    p->want = (size_t)n;
    p->first = p->pos;
    p->state = S_BULKHDR;
    return AGAIN;
}

static int parse_bulkhdr(resp_parser *p, const resp_src *src)
{
    size_t nl;
    long long n;
    if (p->pos >= src_len(src))
        return RESP_NEED;
    unsigned char c = src_byte(src, p->pos);
    if (c != '$') {
        snprintf(p->errbuf, sizeof(p->errbuf), "ERR Protocol error: expected '$', got '%c'",
                 c >= 0x20 && c < 0x7f ? c : ' ');
        return fail(p, p->errbuf);
    }
    int r = find_line(p, src, p->pos, &nl, "ERR Protocol error: too big bulk count string");
    if (r <= 0)
        return r;
    if (header_num(src, p->pos, nl, &n) != 0 || n < 0)
        return fail(p, "ERR Protocol error: invalid bulk length");
    if ((unsigned long long)n > p->lim.max_bulk)
        return fail_limit(p, "ERR Protocol error: invalid bulk length");
    /* Known now: the command spans at least this much. Refuse it early. */
    if (nl + 1 + (size_t)n + 2 > p->lim.max_cmd)
        return fail_limit(p, "ERR Protocol error: command exceeds the input cap");
    p->pos = nl + 1;
    p->bulk = (size_t)n;
    p->state = S_BULKDATA;
    return AGAIN;
}

static int parse_bulkdata(resp_parser *p, const resp_src *src)
{
    if (src_len(src) < p->pos + p->bulk + 2)
        return RESP_NEED; /* O(1) per arrival however large the string */
    size_t end = p->pos + p->bulk;
    if (src_byte(src, end) != '\r' || src_byte(src, end + 1) != '\n')
        return fail(p, "ERR Protocol error: bulk string not followed by CRLF");
    /* Only the first few spans are kept: respan finds the rest at the end. */
    if (p->argc < RESP_SMALL_ARGS) {
        p->slot[p->argc].span.off = p->pos;
        p->slot[p->argc].span.len = p->bulk;
    }
    p->argc++;
    p->pos = end + 2;
    if (p->argc == p->want) {
        if (p->argc > RESP_SMALL_ARGS && respan(p, src) != 0)
            return RESP_ERR;
        return complete(p, src);
    }
    p->state = S_BULKHDR;
    return AGAIN;
}

int resp_parse(resp_parser *p, const resp_src *src)
{
    if (p->state == S_ERROR)
        return RESP_ERR;
    if (p->argv) /* a command not yet passed to resp_next */
        return RESP_CMD;
    for (;;) {
        int r;
        switch (p->state) {
        case S_START:
            if (src_len(src) == 0)
                return RESP_NEED;
            p->state = src_byte(src, 0) == '*' ? S_MBULK : S_INLINE;
            continue;
        case S_INLINE:
            return parse_inline(p, src);
        case S_MBULK:
            r = parse_mbulk(p, src);
            break;
        case S_BULKHDR:
            r = parse_bulkhdr(p, src);
            break;
        case S_BULKDATA:
            r = parse_bulkdata(p, src);
            break;
        default:
            return RESP_ERR;
        }
        if (r != AGAIN)
            return r;
    }
}
