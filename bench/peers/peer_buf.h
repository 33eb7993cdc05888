/*
 * peer_buf — one connection's pending output, for the event-driven peers
 * (select, poll, epoll-lt, epoll-et, libevent).
 *
 * Policy: bytes read are written straight back; only what the socket does not
 * take waits here. Once PEER_OUT_LIMIT bytes wait, the connection is not read
 * until they drain (peer_buf_over_limit), so a client that does not read
 * costs at most PEER_OUT_LIMIT plus one read. A drained buffer is freed, so a
 * connection with nothing pending holds no memory for output.
 */
#ifndef PEER_BUF_H
#define PEER_BUF_H

#include "peer_common.h"

#include <stdbool.h>
#include <stddef.h>

/* Pending output: data[off, off + len). All zero is an empty buffer. */
struct peer_buf {
    char *data;
    size_t off, len, cap;
};

/*
 * Echoes p[0, n) on fd: sends it now if nothing waits before it (order
 * allows a direct write), and keeps what the socket does not take. Returns 0,
 * or -1 when the connection failed (or memory ran out) and must be closed.
 */
int peer_buf_echo(struct peer_buf *b, int fd, const char *p, size_t n);

/*
 * Sends pending output on fd until EAGAIN; a drained buffer is freed. Returns
 * 0, or -1 when the connection failed and must be closed.
 */
int peer_buf_flush(struct peer_buf *b, int fd);

/* Frees the buffer, whatever waits in it (the connection is closing). */
void peer_buf_free(struct peer_buf *b);

/* Whether output waits to be sent. */
static inline bool peer_buf_pending(const struct peer_buf *b) { return b->len > 0; }

/* Whether so much output waits that the connection must not be read. */
static inline bool peer_buf_over_limit(const struct peer_buf *b)
{
    return b->len >= PEER_OUT_LIMIT;
}

#endif
