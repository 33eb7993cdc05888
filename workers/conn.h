/*
 * workers/conn.h — a connection's life on its worker: the state machine.
 *
 * The diagram and the rules of each state are at the top of
 * workers/conn.c. Every function here runs on the owning worker's thread
 * (invariant 1) and makes its system calls through the worker's I/O
 * backend (workers/io.h).
 */
#ifndef WEFT_WORKERS_CONN_H
#define WEFT_WORKERS_CONN_H

#include <sys/socket.h>

#include "workers/conn-t.h"
#include "workers/worker-t.h"

/*
 * Adopt fd (a connected, non-blocking socket from peer): take a slot,
 * attach it to the backend, call on_open (with tls_ctx, an SSL_CTX, once
 * the TLS handshake is done instead). On failure the fd is closed and the
 * close counted; NULL is returned.
 */
weft_conn *conn_open(wk_worker *w, int fd, const struct sockaddr *peer, socklen_t peerlen,
                     const wk_origin *o, void *tls_ctx);

/*
 * The TLS handshake of c ended well (workers/tls.c): count it, start the
 * timeouts of an open connection, run on_open, send what waited.
 */
void conn_tls_ready(wk_worker *w, weft_conn *c);

/* Ring storage from the worker's pool (workers/tls.c's rings too). */
int conn_ring_reserve(wk_worker *w, weft_ring *r, size_t need);
void conn_ring_release(wk_worker *w, weft_ring *r);
void conn_ring_drop(wk_worker *w, weft_ring *r);

/* Remember sa as c's peer address (IPv4, IPv6; others leave it unset). */
void conn_set_peer(weft_conn *c, const struct sockaddr *sa, socklen_t len);

/*
 * Open an outbound connection to addr (workers/addr.h syntax) on w with
 * handler h and user data ud (workers/outbound.c), speaking TLS with
 * tls_ctx (an SSL_CTX reference that the connection takes, even when this
 * fails) once connected, if not NULL. On w's thread. 0 with *out set, or a
 * negative errno and nothing created.
 */
int wk_connect(wk_worker *w, const char *addr, const weft_connect_opts *opts, void *tls_ctx,
               const weft_handler *h, void *ud, weft_conn **out);

/*
 * The output event of a connecting connection came: 0 once connected
 * (on_open ran), 1 while it is still connecting, -1 when it closed.
 */
int conn_connect_done(wk_worker *w, weft_conn *c);

/* Pause / resume c's reading for the handler (weft_read_pause/resume). */
void conn_read_pause(wk_worker *w, weft_conn *c);
void conn_read_resume(wk_worker *w, weft_conn *c);

/* Queue len bytes of file fd from off after c's output (weft_send_file);
 * c owns fd from now on, also on failure. 0/1 as weft_send, or -errno. */
int conn_send_file(wk_worker *w, weft_conn *c, int fd, off_t off, uint64_t len);

/* Hand c to handler h (weft_conn_set_handler): 0, -EINVAL or -ENOMEM. */
int conn_set_handler(wk_worker *w, weft_conn *c, const weft_handler *h, void *ud);

/* Link a and b (weft_link): 0, or -EINVAL / -ENOMEM. */
int conn_link(wk_worker *w, weft_conn *a, weft_conn *b);

/* Note what the backend reported (WK_IO_*) in c's flags and queue it. */
void conn_event(wk_worker *w, weft_conn *c, unsigned events);

/*
 * Read from c, at most budget bytes (the ready phase gives read_budget, or
 * less once a turn's fresh input has read its share), and feed on_data; a
 * connection that uses the whole budget is deferred (wk_defer_push).
 * Returns the bytes read.
 */
size_t conn_read(wk_worker *w, weft_conn *c, size_t budget);

/* Hand c's pending output to the backend once; finish a pending close. */
void conn_flush(wk_worker *w, weft_conn *c);

/*
 * Close c now: on_close, the fd closed, rings back to the pool, counted by
 * reason. Idempotent. The slot is freed at the end of the turn.
 */
void conn_close(wk_worker *w, weft_conn *c, weft_close_reason why);

/* Close now with a TCP reset, discarding pending output. */
void conn_abort(wk_worker *w, weft_conn *c, weft_close_reason why);

/*
 * Close after pending output is flushed (at once when there is none); stop
 * reading meanwhile.
 */
void conn_close_after_flush(wk_worker *w, weft_conn *c, weft_close_reason why);

/*
 * Carry out a timeout verdict (workers/timeouts.h): an idle connection is
 * closed after its output flushes; a stalled one at once.
 */
void conn_expire(wk_worker *w, weft_conn *c, weft_close_reason why);

/* Put connections that wait for ring memory back in line (as bulk
 * readers), if the pool is under its cap again. */
void conn_unstarve(wk_worker *w);

/* Read and discard a lingering connection's input; end it at EOF. */
void conn_linger_read(wk_worker *w, weft_conn *c);

/*
 * End the lingers whose time is up (all of them when force is set) and
 * return the milliseconds until the next one ends, or -1 when none lingers.
 */
int conn_linger_expire(wk_worker *w, int force);

/*
 * For the handler-facing calls (workers/conn_api.c): make room for `need`
 * bytes of output in all (0 or -ENOMEM); after output grew from `before`
 * bytes, queue the flush and apply the high watermark (returns 1 when over
 * it, as weft_send does, else 0).
 */
int conn_reserve_out(wk_worker *w, weft_conn *c, size_t need);
int conn_after_send(wk_worker *w, weft_conn *c, size_t before);

/* TLS ciphertext waiting for the socket (workers/tls.c). */
size_t conn_tls_pending(const weft_conn *c);

/*
 * Pending output: bytes queued in the output ring, plus what a completion
 * backend took and has not finished sending, plus the bytes of queued files
 * (weft_send_file). Watermarks, the output stall and a close after flush
 * count them all; output_cap counts the ring alone (memory).
 */
static inline size_t conn_pending_out(const weft_conn *c)
{
    /* While lingering the union holds linger_until: nothing is in flight. */
    size_t n = weft_ring_len(&c->out) + ((c->flags & C_LINGER) ? 0 : c->out_inflight);
    return c->x ? n + c->x->file_bytes + conn_tls_pending(c) : n;
}

/* What a live connection is doing (weft_conn_state: the first that applies). */
static inline weft_conn_state conn_state_of(const weft_conn *c, bool stopping)
{
    if (c->flags & C_LINGER)
        return WEFT_CONN_LINGERING;
    if ((c->flags & C_CLOSING) || stopping)
        return WEFT_CONN_DRAINING;
    if (c->flags & C_CONNECTING)
        return WEFT_CONN_CONNECTING;
    if (c->flags & C_TLS_HS)
        return WEFT_CONN_HANDSHAKE;
    if (conn_pending_out(c) > 0)
        return WEFT_CONN_WRITING;
    if (weft_ring_len(&c->in) > 0 || (c->flags & C_READABLE))
        return WEFT_CONN_READING;
    return WEFT_CONN_IDLE;
}

#endif
