/*
 * peer_conn — one echo connection of the event-driven peers (select, poll,
 * epoll-lt, epoll-et, libevent): its socket, whether the client has finished
 * sending, and the output still to send. The peers differ only in how they
 * learn that a connection is ready and what they tell the poller afterwards;
 * the echo itself is this.
 *
 * Reads go through one PEER_READ_CHUNK buffer per thread, whose bytes are
 * written straight back: reading costs no memory per connection. The
 * single-thread peers share one (peer_conn_read); a peer with several threads
 * gives each its own (peer_conn_read_into). A connection is used by one
 * thread only.
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

/* The most one read(2) asks for: a read that returns less drained the socket. */
#define PEER_READ_CHUNK (64 * 1024)

/*
 * One read(2) of up to PEER_READ_CHUNK bytes into buf, and its echo. Returns
 * the bytes read, 0 on EAGAIN or end of input (c->eof set), -1 when the
 * connection failed.
 */
int peer_conn_read_into(struct peer_conn *c, char *buf);

/* peer_conn_read_into with the buffer of the single-thread peers (main thread only). */
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
