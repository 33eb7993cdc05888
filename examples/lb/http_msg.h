/*
 * http_msg — weft-lb's HTTP/1.x message parsers: a request or response head
 * that is whole in one buffer, and the chunked body framing, fed in pieces.
 * Neither needs any part of weft (the fuzz target compiles this file alone),
 * allocates, or keeps a pointer into the caller's buffer beyond the call.
 *
 * The caller finds a head's end (weft-lb scans its input ring, resuming
 * where the last read stopped, so a head that trickles in costs O(n)) and
 * skips empty lines before it; http_head_parse then reads the whole head
 * into offsets of its first line and of each header. What it refuses,
 * with the status to answer:
 *   400  a request line that is not METHOD SP TARGET SP HTTP/D.D; a CR
 *        not followed by LF; a header name that is not a token, or with
 *        white space before the colon; a control character in a value;
 *        obs-fold (a line starting with white space); Content-Length that
 *        is not 1 to 18 digits, or repeated with another value, or a list;
 *        Transfer-Encoding other than exactly "chunked", or repeated, or
 *        together with Content-Length (request smuggling: RFC 9112 6.1,
 *        6.3); HTTP/1.1 without exactly one Host, HTTP/1.0 with several
 *   431  more headers than allowed (the caller bounds the head's bytes)
 *   501  CONNECT (a tunnel, which a reverse proxy does not open)
 *   505  an HTTP major version other than 1
 * For a response (the backend's) every such problem is 502.
 */
#ifndef WEFT_EXAMPLES_LB_HTTP_MSG_H
#define WEFT_EXAMPLES_LB_HTTP_MSG_H

#include <stddef.h>
#include <stdint.h>

/* The most headers a head may carry (a --max-headers above is capped here). */
#define HTTP_MSG_MAX_HEADERS 256

/* How the message's body is framed. */
enum {
    HTTP_BODY_NONE = 0, /* no body (no length, or a bodyless response) */
    HTTP_BODY_LENGTH,   /* content_length bytes */
    HTTP_BODY_CHUNKED,  /* chunked, up to the last chunk and its trailers */
    HTTP_BODY_CLOSE,    /* a response read until the backend closes */
};

/* Flags of a parsed head. */
#define HTTP_MSG_CLOSE      0x01  /* Connection: close */
#define HTTP_MSG_KEEPALIVE  0x02  /* Connection: keep-alive */
#define HTTP_MSG_EXPECT     0x04  /* Expect: 100-continue */
#define HTTP_MSG_IDEMPOTENT 0x08  /* GET, HEAD, PUT, DELETE, OPTIONS, TRACE */
#define HTTP_MSG_HEAD       0x10  /* the method is HEAD */
#define HTTP_MSG_HOP        0x20  /* header flag: hop-by-hop, not forwarded */
#define HTTP_MSG_XFF        0x40  /* header flag: X-Forwarded-For */
#define HTTP_MSG_XFP        0x80  /* header flag: X-Forwarded-Proto (replaced) */
#define HTTP_MSG_LENGTH     0x100 /* a Content-Length header was present */

/* One header: offsets into the head's buffer. */
typedef struct http_hdr {
    uint32_t name, name_len, value, value_len; /* value without surrounding blanks */
    uint32_t line, line_len;                   /* the whole line with its CRLF / LF */
    uint32_t flags;                            /* HTTP_MSG_HOP, _XFF, _XFP */
} http_hdr;

/* A parsed head. Offsets are into the buffer given to http_head_parse. */
typedef struct http_head {
    int status;          /* a response's status code; after an error, the one to answer */
    int version;         /* 10, 11 */
    uint32_t method_len; /* request: the method at offset 0 */
    uint32_t target, target_len;
    uint32_t line_end; /* the first line's length with its line end */
    int body;          /* HTTP_BODY_* */
    uint64_t content_length;
    uint32_t flags; /* HTTP_MSG_* */
    int nhdrs;
    http_hdr hdrs[HTTP_MSG_MAX_HEADERS];
} http_head;

/*
 * Parse a whole head (len bytes, ending in its empty line) as a request
 * (is_request) or a response, with at most max_headers headers (at most
 * HTTP_MSG_MAX_HEADERS). Returns 0, or -1 with h->status the answer
 * (400, 431, 501, 505; 502 for a response). A request's body framing is
 * NONE, LENGTH or CHUNKED; a response's is decided by the caller
 * (http_response_body), which knows the request.
 */
int http_head_parse(const char *buf, size_t len, int is_request, int max_headers, http_head *h);

/* A response's body framing, given whether the request was HEAD. */
int http_response_body(const http_head *h, int head_request);

/* Chunked framing, fed in pieces: state of one body. */
typedef struct http_chunked {
    uint8_t state;
    uint8_t digits;    /* hex digits of the size read */
    uint64_t left;     /* data bytes of the current chunk still to come */
    uint32_t tr_total; /* bytes of trailers so far */
} http_chunked;

/* Results of http_chunked_feed. */
enum { HTTP_CHUNKED_ERROR = -1, HTTP_CHUNKED_MORE = 0, HTTP_CHUNKED_DONE = 1 };

void http_chunked_init(http_chunked *c);

/*
 * Take bytes of a chunked body from the len at buf: *used is how many
 * belong to it (all of them with MORE; up to the final CRLF with DONE).
 * ERROR for a bad size (not hex, more than 15 digits, none), a chunk not
 * followed by CRLF, a bare LF or CR in the framing, or trailers over 8 KiB.
 * The bytes are only checked, not changed: the caller forwards them.
 */
int http_chunked_feed(http_chunked *c, const char *buf, size_t len, size_t *used);

#endif /* WEFT_EXAMPLES_LB_HTTP_MSG_H */
