/*
 * examples/http/http_static.h — static files for weft-http's --root: GET
 * and HEAD of a path under one directory, sent with weft_send_file (the
 * file's bytes go from the page cache to the socket, never through a ring).
 *
 *   Content-Length, Content-Type (by extension), Last-Modified;
 *   If-Modified-Since -> 304; Range (one range: bytes=A-B, A-, -N) -> 206,
 *   or 416 with Content-Range: bytes star/SIZE when it cannot be met (more
 *   ranges than one: the whole file, as RFC 9110 allows);
 *   a path is percent-decoded; NUL, a ".." segment or anything that would
 *   leave the root (a symlink out of it included: openat2 RESOLVE_BENEATH)
 *   is 404, like a missing file; a directory is 404 but for index.html in
 *   it ("/" serves the root's index.html).
 */
#ifndef WEFT_EXAMPLES_HTTP_STATIC_H
#define WEFT_EXAMPLES_HTTP_STATIC_H

#include <stddef.h>
#include <stdint.h>

#include "weft/weft.h"

/* Serve files under dir from now on (before the server starts). 0 or -errno. */
int http_static_root(const char *dir);

/* Whether a root is set. */
int http_static_enabled(void);

/* What the request head says that a file answer needs. */
typedef struct http_static_req {
    char path[1024]; /* decoded, without the query; "" when unusable */
    int bad;         /* the path was refused (an escape, NUL, too long) */
    int has_range, range_ok;
    uint64_t r_first, r_last; /* with a suffix range: r_first unset, r_last = N */
    int r_suffix;
    int64_t ims; /* If-Modified-Since, seconds since 1970; -1 when absent or bad */
} http_static_req;

/*
 * Read what a file answer needs from the first head_len bytes of `in` (a
 * complete request head, still in the ring). No allocation.
 */
void http_static_parse(const weft_ring *in, size_t head_len, http_static_req *r);

/* Counts an answer's status (called once, before anything is sent). */
typedef void (*http_count_fn)(weft_conn *c, int status);

/*
 * Answer r on c: 200, 206, 304, 404 or 416, with the connection header
 * conn_hdr ("" or "Connection: ...\r\n"); the body unless head_only.
 * Returns weft_send's result (below 0: c is gone).
 */
int http_static_answer(weft_conn *c, const http_static_req *r, int head_only, const char *conn_hdr,
                       http_count_fn count);

#endif
