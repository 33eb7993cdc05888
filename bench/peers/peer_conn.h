/*
 * peer_conn — one echo connection of the single-thread peers (select, poll,
 * epoll-lt, epoll-et): its socket, whether the client has finished sending,
 * and the output still to send. The peers differ only in how they learn that
 * a connection is ready and what they tell the poller afterwards; the echo
 * itself is this.
 *
 * Single thread only: every read goes through one shared READ_CHUNK buffer.
 */
#ifndef PEER_CONN_H
#define PEER_CONN_H

#include "peer_buf.h"

#include <stdbool.h>

struct peer_conn {
    int fd;   /* non-blocking */
    bool eof; /* the client half-closed: flush, then close */
    struct peer_buf out;
};

/*
 * One read(2) and its echo. Returns 1 when bytes were read, 0 on EAGAIN or
 * end of input (c->eof set), -1 when the connection failed.
 */
int peer_conn_read(struct peer_conn *c);

/* Sends pending output until EAGAIN. Returns 0, or -1 when the connection failed. */
static inline int peer_conn_flush(struct peer_conn *c) { return peer_buf_flush(&c->out, c->fd); }

/* Whether c may be read now: not at end of input and not held back by its output. */
static inline bool peer_conn_want_read(const struct peer_conn *c)
{
    return !c->eof && !peer_buf_over_limit(&c->out);
}

/* Whether c waits to send. */
static inline bool peer_conn_want_write(const struct peer_conn *c)
{
    return peer_buf_pending(&c->out);
}

/* Whether c is finished: the client closed its side and everything was echoed. */
static inline bool peer_conn_done(const struct peer_conn *c)
{
    return c->eof && !peer_buf_pending(&c->out);
}

/* Closes c's socket and frees its output; the struct itself is the caller's. */
void peer_conn_close(struct peer_conn *c);

#endif
