/*
 * http_parse.c — the request-head state machine (see http_parse.h).
 *
 *   START ──tchar──► METHOD ──SP──► TARGET0 ─'/'─► PATH ─'?'─► QUERY
 *     ▲ │CRLF           (token)        │ ─'*'─► STAR  │SP        │SP
 *     └─┘                              └─alpha► SCHEME ':' SLASH1 SLASH2
 *                                                 AUTH ─'/'─► PATH
 *   ──SP──► VERSION "HTTP/1.x" ──CRLF──► HDR0 ◄────────────────────┐
 *                                         │ tchar                  │ CRLF
 *                                         ▼                        │
 *                                       HNAME ─':'─► HOWS ──► HVAL ┘
 *                                         HDR0 ──CRLF──► DONE
 *
 * Every state takes one byte and moves on, so feeding a head one byte at a
 * time and feeding it whole give the same result at the same cost per byte.
 * The only loops that take more than one byte per step (header values, the
 * query) stop at the first byte that needs a decision.
 */
#include "http_parse.h"

#include <string.h>

enum {
    S_START,
    S_START_LF,
    S_METHOD,
    S_TARGET0,
    S_PATH,
    S_QUERY,
    S_SCHEME,
    S_SLASH1,
    S_SLASH2,
    S_AUTH,
    S_STAR,
    S_VERSION,
    S_RL_EOL,
    S_RL_LF,
    S_HDR0,
    S_HNAME,
    S_HOWS,
    S_HVAL,
    S_H_LF,
    S_END_LF,
    S_DONE,
    S_ERROR,
};

/* The headers this parser interprets. */
enum { H_OTHER, H_HOST, H_CL, H_TE, H_CONN, H_EXPECT };

/* Character classes, one bit each. */
#define C_TCHAR  0x01 /* token character (RFC 9110 5.6.2) */
#define C_VCHAR  0x02 /* visible ASCII, 0x21-0x7e */
#define C_VALUE  0x04 /* allowed in a field value: VCHAR, obs-text, SP, HTAB */
#define C_ALPHA  0x08
#define C_DIGIT  0x10
#define C_SCHEME 0x20 /* after the first letter of a scheme */

/*
 * The class of every byte, generated from the definitions above (tchar:
 * ALPHA, DIGIT and "!#$%&'*+-.^_`|~"; scheme: ALPHA, DIGIT and "+-.").
 */
static const uint8_t ctab[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x04, 0x07, 0x06, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x06, 0x07, 0x27, 0x06, 0x27, 0x27, 0x06,
    0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
    0x06, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,
    0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x06, 0x06, 0x06, 0x07, 0x07,
    0x07, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,
    0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x06, 0x07, 0x06, 0x07, 0x00,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
};

static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static const char *const method_names[] = {
    [HTTP_M_GET] = "GET",         [HTTP_M_HEAD] = "HEAD",     [HTTP_M_POST] = "POST",
    [HTTP_M_PUT] = "PUT",         [HTTP_M_DELETE] = "DELETE", [HTTP_M_CONNECT] = "CONNECT",
    [HTTP_M_OPTIONS] = "OPTIONS", [HTTP_M_TRACE] = "TRACE",   [HTTP_M_PATCH] = "PATCH",
};

const char *http_method_name(http_method m)
{
    return m > HTTP_M_NONE && m < HTTP_M_OTHER ? method_names[m] : "";
}

void http_parser_init(http_parser *p, uint32_t max_head)
{
    memset(p, 0, sizeof(*p));
    p->max_head = max_head ? max_head : 1;
    p->state = S_START;
}

static void resolve_method(http_parser *p)
{
    p->method = HTTP_M_OTHER;
    if (p->mlen > HTTP_METHOD_KEEP)
        return;
    for (int m = HTTP_M_GET; m < HTTP_M_OTHER; m++)
        if (strlen(method_names[m]) == p->mlen && memcmp(method_names[m], p->mbuf, p->mlen) == 0)
            p->method = (uint8_t)m;
}

static void path_add(http_parser *p, char c)
{
    if (p->path_len < HTTP_PATH_KEEP)
        p->path[p->path_len++] = c;
    else
        p->flags |= HTTP_F_PATH_LONG;
}

static int hname_is(const http_parser *p, const char *name)
{
    size_t n = strlen(name);
    return p->hlen == n && memcmp(p->hname, name, n) == 0;
}

/* The header name is complete: decide what its value means. 0 or an error status. */
static int header_begin(http_parser *p)
{
    p->hdr = H_OTHER;
    p->sub = 0;
    p->tlen = 0;
    if (p->hlen > HTTP_HNAME_KEEP)
        return 0;
    if (hname_is(p, "host")) {
        p->hdr = H_HOST;
        /* Two Host headers make the target ambiguous (RFC 9112 3.2). */
        if (++p->hosts > 1)
            return 400;
    } else if (hname_is(p, "content-length")) {
        p->hdr = H_CL;
        p->cl_cur = 0;
    } else if (hname_is(p, "transfer-encoding")) {
        p->hdr = H_TE;
        p->flags |= HTTP_F_TRANSFER_ENC;
    } else if (hname_is(p, "connection")) {
        p->hdr = H_CONN;
    } else if (hname_is(p, "expect")) {
        p->hdr = H_EXPECT;
        p->flags |= HTTP_F_EXPECT;
    }
    return 0;
}

/* A Connection token ended (tok holds it, lower-case). */
static void conn_token(http_parser *p)
{
    if (p->tlen == 5 && memcmp(p->tok, "close", 5) == 0)
        p->flags |= HTTP_F_CLOSE;
    else if (p->tlen == 10 && memcmp(p->tok, "keep-alive", 10) == 0)
        p->flags |= HTTP_F_KEEP_ALIVE;
    p->tlen = 0;
}

/* One byte of an interpreted header's value. 0 or an error status. */
static int value_byte(http_parser *p, unsigned char c)
{
    int ws = c == ' ' || c == '\t';
    if (p->hdr == H_CL) {
        /* sub: 0 before the digits, 1 in them, 2 in trailing whitespace. */
        if ((ctab[c] & C_DIGIT) && p->sub < 2) {
            /* 18 digits cannot overflow 64 bits; nobody sends more. */
            if (++p->tlen > 18)
                return 400;
            p->cl_cur = p->cl_cur * 10 + (uint64_t)(c - '0');
            p->sub = 1;
            return 0;
        }
        if (ws && p->sub > 0) {
            p->sub = 2;
            return 0;
        }
        return 400;
    }
    /* H_CONN: comma- or space-separated tokens, case-insensitive. */
    if (c == ',' || ws) {
        conn_token(p);
    } else if (p->tlen < HTTP_TOKEN_KEEP) {
        p->tok[p->tlen++] = (char)lower(c);
    } else {
        p->tlen = HTTP_TOKEN_KEEP; /* too long to be a token we know */
        p->tok[0] = 0;
    }
    return 0;
}

/* The value ended at its line's end. 0 or an error status. */
static int header_end(http_parser *p)
{
    if (p->hdr == H_CL) {
        if (p->sub == 0)
            return 400; /* empty */
        if ((p->flags & HTTP_F_CONTENT_LENGTH) && p->content_length != p->cl_cur)
            return 400; /* two different lengths: the framing is ambiguous */
        p->flags |= HTTP_F_CONTENT_LENGTH;
        p->content_length = p->cl_cur;
    } else if (p->hdr == H_CONN) {
        conn_token(p);
    }
    return 0;
}

/* The empty line after the headers. 0 or an error status. */
static int head_end(http_parser *p)
{
    if (p->version >= 11 && p->hosts == 0)
        return 400; /* RFC 9112 3.2: a 1.1 request without Host */
    return 0;
}

/*
 * Run the machine over buf[0, n). Returns the bytes taken; sets p->state to
 * S_DONE or S_ERROR (with p->status) when the head ended or failed.
 */
static size_t run(http_parser *p, const unsigned char *buf, size_t n)
{
    size_t i = 0;
    int err = 0;
    while (i < n) {
        unsigned char c = buf[i];
        switch (p->state) {
        case S_START:
            if (c == '\n') {
                break; /* empty lines before the request line are ignored */
            } else if (c == '\r') {
                p->state = S_START_LF;
            } else if (ctab[c] & C_TCHAR) {
                p->mbuf[0] = (char)c;
                p->mlen = 1;
                p->state = S_METHOD;
            } else {
                err = 400;
            }
            break;
        case S_START_LF:
            if (c == '\n')
                p->state = S_START;
            else
                err = 400;
            break;
        case S_METHOD:
            if (ctab[c] & C_TCHAR) {
                if (p->mlen < HTTP_METHOD_KEEP)
                    p->mbuf[p->mlen] = (char)c;
                if (p->mlen <= HTTP_METHOD_KEEP)
                    p->mlen++;
            } else if (c == ' ') {
                resolve_method(p);
                p->state = S_TARGET0;
            } else {
                err = 400;
            }
            break;
        case S_TARGET0:
            if (c == '/') {
                path_add(p, '/');
                p->state = S_PATH;
            } else if (c == '*') {
                path_add(p, '*');
                p->state = S_STAR;
            } else if (ctab[c] & C_ALPHA) {
                p->state = S_SCHEME;
            } else {
                err = 400;
            }
            break;
        case S_PATH:
            if (c == ' ') {
                p->state = S_VERSION;
                p->sub = 0;
            } else if (c == '?') {
                p->flags |= HTTP_F_QUERY;
                p->state = S_QUERY;
            } else if (ctab[c] & C_VCHAR) {
                path_add(p, (char)c);
            } else {
                err = 400;
            }
            break;
        case S_QUERY:
            while (i < n && buf[i] != ' ' && (ctab[buf[i]] & C_VCHAR))
                i++;
            if (i == n)
                continue;
            if (buf[i] == ' ') {
                p->state = S_VERSION;
                p->sub = 0;
            } else {
                err = 400;
            }
            break;
        case S_SCHEME:
            if (c == ':')
                p->state = S_SLASH1;
            else if (!(ctab[c] & C_SCHEME))
                err = 400;
            break;
        case S_SLASH1:
        case S_SLASH2:
            if (c == '/')
                p->state = p->state == S_SLASH1 ? S_SLASH2 : S_AUTH;
            else
                err = 400;
            break;
        case S_AUTH:
            if (c == '/' || c == '?' || c == ' ') {
                path_add(p, '/'); /* an empty path is "/" */
                if (c == '?')
                    p->flags |= HTTP_F_QUERY;
                p->state = c == '/' ? S_PATH : c == '?' ? S_QUERY : S_VERSION;
                p->sub = 0;
            } else if (!(ctab[c] & C_VCHAR)) {
                err = 400;
            }
            break;
        case S_STAR:
            if (c == ' ') {
                p->state = S_VERSION;
                p->sub = 0;
            } else {
                err = 400;
            }
            break;
        case S_VERSION:
            /* "HTTP/" DIGIT "." DIGIT, one byte per step. */
            if (p->sub < 5) {
                if (c != (unsigned char)"HTTP/"[p->sub])
                    err = 400;
            } else if (p->sub == 5) {
                if (!(ctab[c] & C_DIGIT))
                    err = 400;
                else if (c != '1')
                    err = 505;
            } else if (p->sub == 6) {
                if (c != '.')
                    err = 400;
            } else {
                if (!(ctab[c] & C_DIGIT))
                    err = 400;
                p->version = c == '0' ? 10 : 11;
                p->state = S_RL_EOL;
            }
            p->sub++;
            break;
        case S_RL_EOL:
            if (c == '\r')
                p->state = S_RL_LF;
            else if (c == '\n')
                p->state = S_HDR0;
            else
                err = 400;
            break;
        case S_RL_LF:
        case S_H_LF:
            if (c == '\n')
                p->state = S_HDR0;
            else
                err = 400;
            break;
        case S_HDR0:
            if (c == '\r') {
                p->state = S_END_LF;
            } else if (c == '\n') {
                if (!(err = head_end(p)))
                    p->state = S_DONE;
            } else if (ctab[c] & C_TCHAR) {
                p->hname[0] = (char)lower(c);
                p->hlen = 1;
                p->state = S_HNAME;
            } else {
                err = 400; /* including obs-fold: a line starting with SP or HTAB */
            }
            break;
        case S_HNAME:
            if (ctab[c] & C_TCHAR) {
                if (p->hlen < HTTP_HNAME_KEEP)
                    p->hname[p->hlen] = (char)lower(c);
                if (p->hlen <= HTTP_HNAME_KEEP)
                    p->hlen++;
            } else if (c == ':') {
                if (!(err = header_begin(p)))
                    p->state = S_HOWS;
            } else {
                err = 400; /* including whitespace before the colon */
            }
            break;
        case S_HOWS:
            if (c == ' ' || c == '\t')
                break;
            p->state = S_HVAL;
            continue; /* the first byte of the value: decide it there */
        case S_HVAL:
            if (p->hdr == H_CL || p->hdr == H_CONN) {
                if (c == '\r' || c == '\n') {
                    if (!(err = header_end(p)))
                        p->state = c == '\r' ? S_H_LF : S_HDR0;
                } else if (!(ctab[c] & C_VALUE)) {
                    err = 400;
                } else {
                    err = value_byte(p, c);
                }
                break;
            }
            /* A value we do not interpret: skip it in one loop. */
            while (i < n && (ctab[buf[i]] & C_VALUE))
                i++;
            if (i == n)
                continue;
            if (buf[i] == '\r')
                p->state = S_H_LF;
            else if (buf[i] == '\n')
                p->state = S_HDR0;
            else
                err = 400; /* a control character, a NUL or DEL */
            break;
        case S_END_LF:
            if (c != '\n')
                err = 400;
            else if (!(err = head_end(p)))
                p->state = S_DONE;
            break;
        }
        if (err) {
            p->state = S_ERROR;
            p->status = (uint16_t)err;
            return i;
        }
        i++;
        if (p->state == S_DONE)
            return i;
    }
    return i;
}

int http_parse(http_parser *p, const char *buf, size_t len, size_t *used)
{
    *used = 0;
    if (p->state == S_DONE)
        return HTTP_PARSE_DONE;
    if (p->state == S_ERROR)
        return HTTP_PARSE_ERROR;
    /* Never look past the limit: a head must end within max_head bytes. */
    size_t room = p->max_head - p->nread;
    size_t n = len < room ? len : room;
    size_t took = run(p, (const unsigned char *)buf, n);
    p->nread += (uint32_t)took;
    *used = took;
    if (p->state == S_DONE)
        return HTTP_PARSE_DONE;
    if (p->state == S_ERROR)
        return HTTP_PARSE_ERROR;
    if (p->nread >= p->max_head) {
        p->state = S_ERROR;
        p->status = 431;
        return HTTP_PARSE_ERROR;
    }
    return HTTP_PARSE_AGAIN;
}
