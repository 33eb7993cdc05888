/*
 * http_parse — an incremental HTTP/1.x request-head parser.
 *
 * The parser reads a request line and header block fed in chunks of any
 * size (one byte at a time works) and never looks at a byte twice, so a
 * slowly arriving head costs O(n) in total. It keeps what the server needs
 * in a fixed-size struct (about 120 bytes) and stores nothing else: it does
 * not hold on to the caller's buffers, allocates nothing and needs no part
 * of the weft library (the fuzz target compiles it alone).
 *
 *     http_parser p;
 *     http_parser_init(&p, 8192);
 *     for each chunk:
 *         rc = http_parse(&p, chunk, len, &used);
 *         AGAIN: all of the chunk was taken; feed the next one
 *         DONE:  the head ends `used` bytes into this chunk; p's fields
 *                describe the request; a body and the next request follow
 *         ERROR: answer p.status (400, 431 or 505) and close
 *
 * What it accepts (RFC 9112, strictly where leniency invites smuggling):
 *   - empty lines before the request line are skipped;
 *   - request-line = method SP request-target SP "HTTP/" DIGIT "." DIGIT,
 *     with single spaces; the method is a token (case-sensitive); the target
 *     is visible ASCII in origin-form ("/path?query"), absolute-form
 *     ("http://host/path") or asterisk-form ("*");
 *   - lines end in CRLF or a bare LF; a CR not followed by LF is an error;
 *   - header names are tokens with no space before the colon; values are
 *     visible ASCII, obs-text, SP and HTAB; obs-fold (a line starting with
 *     whitespace) is an error;
 *   - Content-Length must be digits (at most 18), the same value if repeated;
 *   - HTTP/1.1 requires exactly one Host header; HTTP/1.0 allows at most one;
 *   - major version other than 1: 505.
 * The whole head, request line included, must fit in max_head bytes: 431.
 */
#ifndef WEFT_EXAMPLES_HTTP_PARSE_H
#define WEFT_EXAMPLES_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Results of http_parse. */
enum { HTTP_PARSE_ERROR = -1, HTTP_PARSE_AGAIN = 0, HTTP_PARSE_DONE = 1 };

/* Methods: the standard ones (RFC 9110 and PATCH) and everything else. */
typedef enum http_method {
    HTTP_M_NONE = 0,
    HTTP_M_GET,
    HTTP_M_HEAD,
    HTTP_M_POST,
    HTTP_M_PUT,
    HTTP_M_DELETE,
    HTTP_M_CONNECT,
    HTTP_M_OPTIONS,
    HTTP_M_TRACE,
    HTTP_M_PATCH,
    HTTP_M_OTHER, /* a valid token that names no method we know */
} http_method;

/* The first HTTP_PATH_KEEP bytes of the path are kept (routing needs no more). */
#define HTTP_PATH_KEEP 32
/* Longest method name kept for matching; longer ones are HTTP_M_OTHER. */
#define HTTP_METHOD_KEEP 8
/* Longest header name matched against the few this parser interprets. */
#define HTTP_HNAME_KEEP 20
/* Longest Connection token matched ("keep-alive"). */
#define HTTP_TOKEN_KEEP 12

/* Flags in http_parser.flags, valid after HTTP_PARSE_DONE. */
#define HTTP_F_CONTENT_LENGTH 0x01 /* a Content-Length header was present */
#define HTTP_F_TRANSFER_ENC   0x02 /* a Transfer-Encoding header was present */
#define HTTP_F_CLOSE          0x04 /* Connection: close */
#define HTTP_F_KEEP_ALIVE     0x08 /* Connection: keep-alive */
#define HTTP_F_PATH_LONG      0x10 /* the path was longer than HTTP_PATH_KEEP */
#define HTTP_F_QUERY          0x20 /* the target had a query ("?...") */
#define HTTP_F_EXPECT         0x40 /* an Expect header (100-continue) was present */

/*
 * Parser state and, after HTTP_PARSE_DONE, the request. Fields below
 * "results" are meaningful after DONE; the rest is private.
 */
typedef struct http_parser {
    /* results */
    uint32_t nread;            /* bytes of the head taken so far (the whole head after DONE) */
    uint16_t status;           /* after ERROR: the status to answer (400, 431, 505) */
    uint8_t method;            /* http_method */
    uint8_t version;           /* 10 for HTTP/1.0, 11 for HTTP/1.1 (and 1.2-1.9) */
    uint8_t flags;             /* HTTP_F_* */
    uint8_t path_len;          /* bytes kept in path (at most HTTP_PATH_KEEP) */
    char path[HTTP_PATH_KEEP]; /* the path, without query; not NUL-terminated */
    uint64_t content_length;   /* when HTTP_F_CONTENT_LENGTH */

    /* private */
    uint32_t max_head;
    uint8_t state;
    uint8_t sub;   /* a position inside the current state (version, Content-Length) */
    uint8_t hdr;   /* which interpreted header the current value belongs to */
    uint8_t hosts; /* Host headers seen */
    uint8_t mlen, hlen, tlen;
    char mbuf[HTTP_METHOD_KEEP];
    char hname[HTTP_HNAME_KEEP];
    char tok[HTTP_TOKEN_KEEP];
    uint64_t cl_cur; /* the Content-Length value being read */
} http_parser;

/* Start a new request head; the head may be at most max_head bytes (> 0). */
void http_parser_init(http_parser *p, uint32_t max_head);

/*
 * Feed len bytes (len may be 0). Returns HTTP_PARSE_AGAIN after taking all
 * of them (*used = len), HTTP_PARSE_DONE when the head ended inside them
 * (*used = the bytes that belonged to it, the last one the final LF), or
 * HTTP_PARSE_ERROR with p->status set (*used = the bytes taken before the
 * offending one). Once DONE or ERROR, further calls return the same with
 * *used = 0 until http_parser_init. Never reads outside buf[0, len).
 */
int http_parse(http_parser *p, const char *buf, size_t len, size_t *used);

/* The method's name ("GET"), or "" for NONE and OTHER. */
const char *http_method_name(http_method m);

#endif /* WEFT_EXAMPLES_HTTP_PARSE_H */
