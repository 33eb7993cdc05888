/*
 * workers/conn.c — the connection state machine: reading, writing,
 * backpressure and closing one connection, on its worker.
 *
 *   inbox ──conn_open──► OPEN ──(input event)──► READABLE ─conn_read─► OPEN
 *                         │  ▲                    (budget used: stays
 *            weft_send ►  │  │ output < low wm     READABLE, on the
 *           over high wm  ▼  │ (on_drain)          deferred list)
 *                        PAUSED
 *                         │
 *   EOF with output ──►  CLOSING ──output flushed──► CLOSED ──end of turn──► slot free
 *   weft_close    ──►      │                          ▲  ▲
 *   stop, idle    ──►      │                          │  └── error, caps, abort,
 *                          ▼ (not after EOF)          │      stalls, shutdown deadline
 *                        LINGER: on_close ran; FIN sent; input read and
 *                        discarded until EOF or close_linger_ms ──────┘
 *
 * The states are flags (workers/conn-t.h). An event is reported once by an
 * edge-triggered backend (invariant 3), so the flags keep what it said:
 * C_READABLE until a read proves the source drained, C_WANT_OUT from an
 * EAGAIN on output until the output event arrives. Nothing here changes
 * what the backend watches: the connection was attached once, for input,
 * output and peer half-close (invariant 2). Every system call goes through
 * the backend (w->io, workers/io.h).
 *
 * A short read (fewer bytes than asked for) means the source was drained at
 * that instant: any byte that arrives later raises a new event, so we stop
 * without the extra read that would only return EAGAIN. The exception is a
 * pending FIN or error (C_HUP): no further event will come for it, so we
 * read on until the read returns 0 or fails. (nginx's ngx_unix_recv makes
 * the same call with its pending_eof.)
 */
#include "workers/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "buffers/ring.h"
#include "workers/addr.h"
#include "workers/io.h"
#include "workers/queues.h"
#include "workers/slab.h"
#include "workers/timeouts.h"
#include "workers/tls.h"
#include "workers/user_timers.h"
#include "workers/wlog.h"

/* 192 bytes on x86-64; with a slab and a poll entry an idle connection
 * stays well under 256 bytes of user-space memory (docs/architecture.md). */
_Static_assert(sizeof(weft_conn) <= 192, "an idle connection must stay within 192 bytes");

static inline const weft_config *cfg_of(const wk_worker *w) { return w->g->cfg; }
static inline const weft_handler *h_of(const weft_conn *c) { return c->o->h; }

/* Smallest power of two >= v (v <= 2^31). */
static uint32_t pow2_ceil(uint32_t v)
{
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* ---- ring storage -------------------------------------------------------- */

/* Give a ring's storage back to the pool, discarding what it holds. */
void conn_ring_drop(wk_worker *w, weft_ring *r)
{
    uint32_t cap = r->cap;
    char *b = ring_detach(r);
    if (b)
        pool_put(&w->pool, b, cap);
}

/* Give a ring that emptied its storage back to the pool (invariant 4). */
void conn_ring_release(wk_worker *w, weft_ring *r)
{
    if (r->buf && weft_ring_len(r) == 0)
        conn_ring_drop(w, r);
}

/* Make room for `need` bytes in total; 0 or -ENOMEM. */
int conn_ring_reserve(wk_worker *w, weft_ring *r, size_t need)
{
    if (r->buf && r->cap >= need)
        return 0;
    uint32_t cap = pow2_ceil((uint32_t)need);
    if (cap < cfg_of(w)->ring_size)
        cap = cfg_of(w)->ring_size;
    char *nb = pool_get(&w->pool, cap);
    if (!nb)
        return -ENOMEM;
    if (!r->buf) {
        ring_attach(r, nb, cap);
        return 0;
    }
    uint32_t oldcap = r->cap;
    pool_put(&w->pool, ring_relocate(r, nb, cap), oldcap);
    return 0;
}

/* ---- the connection's I/O: the backend's, or TLS over it ------------------- */

static inline bool is_tls(const weft_conn *c) { return c->x && c->x->tls; }

static ssize_t c_recv(wk_worker *w, weft_conn *c, weft_ring *r, size_t max)
{
    return is_tls(c) ? tls_recv(w, c, r, max) : w->io->recv(w, c, r, max);
}

static ssize_t c_send(wk_worker *w, weft_conn *c, weft_ring *r, size_t max)
{
    return is_tls(c) ? tls_send(w, c, r, max) : w->io->send(w, c, r, max);
}

static ssize_t c_sendfile(wk_worker *w, weft_conn *c, int fd, off_t *off, size_t len)
{
    return is_tls(c) ? tls_sendfile(w, c, fd, off, len) : w->io->sendfile(w, c, fd, off, len);
}

static int c_shutdown_wr(wk_worker *w, weft_conn *c)
{
    return is_tls(c) ? tls_shutdown_wr(w, c) : w->io->shutdown_wr(w, c);
}

/* Output taken from the ring but not on the wire yet (a completion
 * backend's send in flight, TLS ciphertext): the output event will come. */
static inline bool out_beyond_ring(const weft_conn *c)
{
    return c->out_inflight || (is_tls(c) && tls_pending(c));
}

/* ---- open and close ------------------------------------------------------ */

/* Count a close by reason (and listener); log the abnormal ones with c's peer
 * (c is NULL for a connection never adopted). */
static void count_close(wk_worker *w, weft_close_reason why, const wk_origin *o, const weft_conn *c)
{
    ST_ADD(&w->st, closed, 1);
    ST_ADD(&w->st, closed_by[why], 1);
    if (o->listener >= 0 && o->listener < WEFT_MAX_LISTENERS)
        ST_ADD(&w->st, closed_lsn[o->listener], 1);
    static const wk_limit kinds[WEFT_CLOSE_REASONS] = {
        [WEFT_CLOSE_PEER] = LIM_KINDS,
        [WEFT_CLOSE_ERROR] = LIM_KINDS,
        [WEFT_CLOSE_TIMEOUT] = LIM_IDLE,
        [WEFT_CLOSE_INPUT_CAP] = LIM_INPUT_CAP,
        [WEFT_CLOSE_OUTPUT_CAP] = LIM_OUTPUT_CAP,
        [WEFT_CLOSE_SHUTDOWN] = LIM_KINDS,
        [WEFT_CLOSE_HANDLER] = LIM_KINDS,
        [WEFT_CLOSE_INPUT_STALL] = LIM_INPUT_STALL,
        [WEFT_CLOSE_OUTPUT_STALL] = LIM_OUTPUT_STALL,
        [WEFT_CLOSE_CONNECT_REFUSED] = LIM_KINDS,
        [WEFT_CLOSE_CONNECT_TIMEOUT] = LIM_KINDS,
        [WEFT_CLOSE_UNREACHABLE] = LIM_KINDS,
        [WEFT_CLOSE_RESOLVE] = LIM_KINDS,
        [WEFT_CLOSE_LINK] = LIM_KINDS,
        [WEFT_CLOSE_TLS_HANDSHAKE] = LIM_TLS,
        [WEFT_CLOSE_TLS_PROTOCOL] = LIM_TLS,
        [WEFT_CLOSE_TLS_VERIFY] = LIM_TLS,
    };
    if (kinds[why] == LIM_KINDS || !wk_log_on(w->g, WEFT_LOG_WARN))
        return; /* no line, so no address to format either */
    char peer[WK_ADDR_TEXT] = "?";
    if (c) {
        struct sockaddr_storage ss;
        socklen_t len = weft_conn_peer(c, &ss);
        if (len > 0)
            wk_addr_format((const struct sockaddr *)&ss, len, peer, sizeof(peer));
    }
    wk_log_limit(w->g, kinds[why], "worker %d: closing a connection from %s: %s", w->index, peer,
                 weft_close_reason_name(why));
}

void conn_set_peer(weft_conn *c, const struct sockaddr *sa, socklen_t len)
{
    c->family = (uint8_t)(len >= sizeof(sa_family_t) ? sa->sa_family : AF_UNSPEC);
    if (c->family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const void *)sa;
        c->port = a->sin_port;
        memcpy(c->addr, &a->sin_addr, 4);
    } else if (c->family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const void *)sa;
        c->port = a->sin6_port;
        memcpy(c->addr, &a->sin6_addr, 16);
    }
}

/* Put c on the list of slots to free at the end of the turn. */
static void to_reap(wk_worker *w, weft_conn *c)
{
    c->next_closed = w->closed;
    w->closed = c;
}

/* c's fd is closed: it no longer counts as open, anywhere. */
static void conn_gone(wk_worker *w, weft_conn *c, weft_close_reason why)
{
    w->nconns--;
    count_close(w, why, c->o, c);
    if (c->o->on_gone) /* with the listener's own origin (a handoff copies ours) */
        c->o->on_gone(c->x && c->x->lsn ? c->x->lsn : c->o, c);
    if (!(c->flags & C_LINGERQ))
        to_reap(w, c);
}

static conn_ext *ext_of(weft_conn *c);

weft_conn *conn_open(wk_worker *w, int fd, const struct sockaddr *peer, socklen_t peerlen,
                     const wk_origin *o, void *tls_ctx)
{
    weft_conn *c = wk_slot_get(w);
    int rc = c ? 0 : -ENOMEM;
    if (c) {
        c->fd = fd;
        c->o = o;
        /* TLS first: a connection that cannot have it never reaches the backend. */
        if (tls_ctx && (!ext_of(c) || tls_server_start(w, c, tls_ctx) != 0))
            rc = -ENOMEM;
        if (rc == 0)
            rc = w->io->attach(w, c);
        if (rc != 0 && is_tls(c))
            tls_free(w, c);
    }
    if (rc != 0) {
        wk_log(w->g, WEFT_LOG_ERROR, "worker %d: cannot adopt a connection (%s %s)", w->index,
               c ? w->io->name : "slot", weft_strerror(rc));
        w->io->discard(w, fd);
        if (c)
            wk_slot_put(w, c);
        count_close(w, WEFT_CLOSE_ERROR, o, NULL); /* the acceptor counted it in */
        if (o->on_gone) {
            weft_conn tmp = {.family = 0};
            conn_set_peer(&tmp, peer, peerlen);
            o->on_gone(o, &tmp);
        }
        return NULL;
    }
    conn_set_peer(c, peer, peerlen);
    w->nconns++;
    ST_ADD(&w->st, opened, 1);
    c->flags |= C_OPENED;
    if (is_tls(c)) {
        /* on_open once the handshake is done (conn_tls_ready), within the
         * handshake timeout: a client that never finishes it is a slowloris. */
        c->flags |= C_TLS_HS;
        to_conn_handshaking(w, c);
    } else {
        to_conn_open(w, c);
        if (h_of(c)->on_open)
            h_of(c)->on_open(c);
    }
    if (w->stopping)
        conn_close_after_flush(w, c, WEFT_CLOSE_SHUTDOWN);
    return c;
}

void conn_tls_ready(wk_worker *w, weft_conn *c)
{
    c->flags &= ~C_TLS_HS;
    ST_ADD(&w->st, tls_handshakes, 1);
    if (tls_resumed(c))
        ST_ADD(&w->st, tls_resumed, 1);
    to_conn_connected(w, c); /* the timeouts of an open connection from now */
    /* Output the handler queued meanwhile (an outbound one) goes now. */
    c->flags &= ~C_WANT_OUT;
    if (weft_ring_len(&c->out))
        wk_flush_push(w, c);
    if (h_of(c)->on_open)
        h_of(c)->on_open(c);
}

static void drop_files(wk_worker *w, weft_conn *c);

/*
 * A linked connection closed: its partner forgets it and closes once what
 * it still has to send is flushed (a proxy's other side must not hang).
 */
static void unlink_closed(wk_worker *w, weft_conn *c)
{
    weft_conn *p = c->x->link;
    c->x->link = NULL;
    p->x->link = NULL;
    if (p->flags & C_PAUSED) /* paused for c's output, which is gone */
        p->flags &= ~C_PAUSED;
    /* Both directions ended normally (c saw its EOF and sent its FIN): p's
     * end is the peer's too; anything else ends p because of c. */
    conn_close_after_flush(w, p, c->reason == WEFT_CLOSE_PEER ? WEFT_CLOSE_PEER : WEFT_CLOSE_LINK);
}

/* The end of a connection for the handler: timers, on_close, rings. */
static void close_for_handler(wk_worker *w, weft_conn *c, weft_close_reason why)
{
    c->flags |= C_CLOSED;
    c->reason = (uint8_t)why;
    to_conn_close(w, c);
    ut_conn_close(w, c);
    if (c->x && c->x->link)
        unlink_closed(w, c);
    /* An accepted TLS connection whose handshake never ended never saw
     * on_open; an outbound one is owed on_close from weft_connect on. */
    bool owed = (c->flags & C_OPENED) && !((c->flags & C_TLS_HS) && c->o->listener >= 0);
    if (owed && h_of(c)->on_close)
        h_of(c)->on_close(c, why);
    conn_ring_drop(w, &c->in);
    conn_ring_drop(w, &c->out);
    if (c->x && c->x->files)
        drop_files(w, c);
    if (is_tls(c))
        tls_free(w, c);
}

static void close_now(wk_worker *w, weft_conn *c, weft_close_reason why, bool reset)
{
    if (c->flags & C_CLOSED)
        return;
    close_for_handler(w, c, why);
    if (c->fd >= 0) /* an outbound connection may close before it has a socket */
        w->io->close(w, c, reset);
    conn_gone(w, c, why);
}

void conn_close(wk_worker *w, weft_conn *c, weft_close_reason why) { close_now(w, c, why, false); }

void conn_abort(wk_worker *w, weft_conn *c, weft_close_reason why) { close_now(w, c, why, true); }

/* ---- lingering close ---------------------------------------------------------
 *
 * close(2) on a socket with unread input sends a reset, and a reset makes the
 * peer's kernel discard what it has received but not yet delivered: the
 * output we just flushed. So a graceful close (weft_close, stop) does what
 * nginx's lingering close does: shutdown(SHUT_WR) sends FIN after the
 * output, then the input is read and discarded until the peer's EOF or
 * close_linger_ms, and only then is the fd closed. The handler sees on_close
 * at the start: for it the connection is gone. The fd, and the connection's
 * count as open, last until the real close.
 */

/* The real close of a lingering connection. */
static void linger_end(wk_worker *w, weft_conn *c)
{
    if (!(c->flags & C_LINGER))
        return;
    c->flags &= ~C_LINGER;
    w->io->close(w, c, false);
    conn_gone(w, c, (weft_close_reason)c->reason);
}

void conn_linger_read(wk_worker *w, weft_conn *c)
{
    /* A ring over a stack buffer: what is read here is dropped at once. */
    char sink[4096];
    weft_ring r;
    size_t budget = cfg_of(w)->read_budget;
    while (c->flags & C_LINGER) {
        if (budget == 0) {
            /* Bounded work per turn here too: continue later. */
            wk_defer_push(w, c);
            return;
        }
        ring_attach(&r, sink, sizeof(sink));
        ssize_t n = w->io->recv(w, c, &r, budget);
        if (n > 0) {
            budget -= (size_t)n;
            continue;
        }
        if (n == -EAGAIN)
            return;
        linger_end(w, c); /* EOF or an error: the peer is done */
    }
}

int conn_linger_expire(wk_worker *w, int force)
{
    int64_t now = w->linger.head ? tw_clock_ms() : 0;
    while (w->linger.head) {
        weft_conn *c = w->linger.head;
        int32_t left = (int32_t)(c->linger_until - (uint32_t)now);
        if (!force && left > 0)
            return left;
        w->linger.head = c->next_closed;
        if (!w->linger.head)
            w->linger.tail = NULL;
        c->flags &= ~C_LINGERQ;
        if (c->flags & C_LINGER)
            linger_end(w, c); /* time is up */
        else
            to_reap(w, c); /* ended early: its slot can go now */
    }
    return -1;
}

/* Close for the handler now; close the fd after lingering (see above). */
static void conn_close_graceful(wk_worker *w, weft_conn *c, weft_close_reason why)
{
    uint32_t ms = cfg_of(w)->close_linger_ms;
    int64_t now = tw_clock_ms();
    if (w->stopping && w->deadline_ms - now < (int64_t)ms)
        ms = w->deadline_ms > now ? (uint32_t)(w->deadline_ms - now) : 0;
    /* After the peer's EOF nothing unread remains: no reset to fear. */
    bool at_once = ms == 0 || (c->flags & C_EOF);
    if (at_once && is_tls(c) && !(c->flags & C_FIN_SENT))
        (void)c_shutdown_wr(w, c); /* close_notify, as far as the socket takes it */
    if (at_once || ((c->flags & C_FIN_SENT) == 0 && c_shutdown_wr(w, c) != 0)) {
        conn_close(w, c, why);
        return;
    }
    close_for_handler(w, c, why);
    c->flags |= C_LINGER | C_LINGERQ;
    c->linger_until = (uint32_t)(now + ms);
    wk_list_append(&w->linger, c, offsetof(weft_conn, next_closed));
    conn_linger_read(w, c);
}

void conn_close_after_flush(wk_worker *w, weft_conn *c, weft_close_reason why)
{
    if (c->flags & (C_CLOSED | C_CLOSING))
        return;
    if (conn_pending_out(c) == 0) {
        conn_close_graceful(w, c, why);
        return;
    }
    c->flags |= C_CLOSING;
    c->reason = (uint8_t)why;
    wk_flush_push(w, c);
}

void conn_expire(wk_worker *w, weft_conn *c, weft_close_reason why)
{
    if (why == WEFT_CLOSE_TIMEOUT && !(c->flags & (C_CONNECTING | C_TLS_HS)))
        conn_close_after_flush(w, c, why); /* idle: nothing is lost by flushing */
    else
        conn_close(w, c, why); /* stalled: what waits will never arrive */
}

/* ---- events ----------------------------------------------------------------- */

void conn_event(wk_worker *w, weft_conn *c, unsigned e)
{
    if (c->flags & C_LINGER) {
        if (e & (WK_IO_IN | WK_IO_HUP | WK_IO_ERR))
            conn_linger_read(w, c);
        return;
    }
    if (c->flags & C_CLOSED)
        return; /* closed after the event was queued */
    if (e & (WK_IO_HUP | WK_IO_ERR))
        c->flags |= C_HUP;
    if (e & (WK_IO_IN | WK_IO_HUP | WK_IO_ERR)) {
        c->flags |= C_READABLE;
        wk_ready_push(w, c);
    }
    if ((e & (WK_IO_OUT | WK_IO_HUP | WK_IO_ERR)) && (c->flags & C_WANT_OUT)) {
        c->flags &= ~C_WANT_OUT;
        wk_flush_push(w, c);
    }
}

unsigned wk_io_wants(const weft_conn *c)
{
    if (c->flags & C_LINGER)
        return WK_IO_IN;
    if (c->flags & C_CLOSED)
        return 0;
    unsigned want = 0;
    if (!(c->flags & (C_READABLE | C_PAUSED | C_HPAUSED | C_CLOSING | C_EOF | C_CONNECTING)))
        want |= WK_IO_IN;
    if (c->flags & C_WANT_OUT)
        want |= WK_IO_OUT;
    return want;
}

/* ---- input ---------------------------------------------------------------- */

/* Close for a failed read or write; a reset after the peer's FIN is the peer. */
static void close_on_error(wk_worker *w, weft_conn *c, int err)
{
    if (err == EPROTO && is_tls(c)) {
        /* Tell the peer why: the alert OpenSSL wrote, as far as the socket
         * takes it now. A completion backend may hold it in a send in
         * flight: then the close waits for that send (not for more). */
        tls_send_alert(w, c);
        conn_ring_drop(w, &c->out);
        if (c->out_inflight) {
            c->flags |= C_WANT_OUT; /* its completion is the output event */
            conn_close_after_flush(w, c, tls_error(c));
        } else
            conn_close(w, c, tls_error(c));
    } else if ((c->flags & C_EOF) && (err == EPIPE || err == ECONNRESET))
        conn_close(w, c, WEFT_CLOSE_PEER);
    else
        conn_close(w, c, WEFT_CLOSE_ERROR);
}

/*
 * At pool_max_bytes a worker stops reading the connections that hold ring
 * memory (a partial message, pending output): they are what fills the pool.
 * A connection that holds none (a healthy one, whose ring normally comes
 * back within the turn: read, answered, flushed) still reads, up to twice
 * pool_max_bytes. A fresh slow reader can take one ring this way before it
 * too holds memory and pauses, so the excess is one ring and one answer per
 * such connection, and never more than the cap again. Without this a few
 * hundred readers that take nothing would stop every connection of the
 * worker until output_stall_ms closed them.
 */
static int may_read_past_cap(const wk_worker *w, const weft_conn *c)
{
    return c->in.buf == NULL && conn_pending_out(c) == 0 && w->pool.in_use / 2 < w->pool.max_bytes;
}

/*
 * The pool is at pool_max_bytes: park c (still C_READABLE) until memory
 * comes back. C_READY stays set so no event queues it twice meanwhile.
 */
static void starve(wk_worker *w, weft_conn *c)
{
    c->flags |= C_READY | C_STARVED;
    wk_list_append(&w->starved, c, offsetof(weft_conn, next_ready));
    ST_ADD(&w->st, pool_pauses, 1);
    wk_log_limit(w->g, LIM_POOL,
                 "worker %d: ring memory at pool_max_bytes (%u): pausing reads until it drains",
                 w->index, cfg_of(w)->pool_max_bytes);
}

void conn_unstarve(wk_worker *w)
{
    if (!w->starved.head || pool_full(&w->pool))
        return;
    /* They resume as bulk readers: a few per turn, after fresh input. */
    for (weft_conn *c = w->starved.head; c; c = c->next_ready)
        c->flags &= ~C_STARVED;
    if (w->deferred.tail)
        w->deferred.tail->next_ready = w->starved.head;
    else
        w->deferred.head = w->starved.head;
    w->deferred.tail = w->starved.tail;
    w->starved.head = w->starved.tail = NULL;
}

/* Make sure the input ring has free space: 1, or 0 when the connection
 * closed, or -1 when it was parked for ring memory. */
static int input_room(wk_worker *w, weft_conn *c)
{
    weft_ring *in = &c->in;
    if (in->buf && ring_space(in) > 0)
        return 1;
    size_t len = weft_ring_len(in);
    if (len >= cfg_of(w)->input_cap) {
        conn_close(w, c, WEFT_CLOSE_INPUT_CAP);
        return 0;
    }
    if (pool_full(&w->pool) && !may_read_past_cap(w, c)) {
        starve(w, c);
        return -1;
    }
    if (conn_ring_reserve(w, in, in->buf ? (size_t)in->cap * 2 : cfg_of(w)->ring_size) != 0) {
        wk_log(w->g, WEFT_LOG_ERROR, "worker %d: out of memory for input", w->index);
        conn_close(w, c, WEFT_CLOSE_ERROR);
        return 0;
    }
    return 1;
}

/*
 * The input-stall clock runs from the moment input became pending (the
 * handler left a partial message), not from the last byte: a peer that
 * trickles a byte now and then must still complete its message in time.
 */
static void note_partial(wk_worker *w, weft_conn *c)
{
    if (weft_ring_len(&c->in) == 0) {
        c->flags &= ~C_PARTIAL;
    } else if (!(c->flags & C_PARTIAL)) {
        c->flags |= C_PARTIAL;
        c->partial_since = (uint32_t)w->now_ms;
    }
}

/*
 * Hand what the input ring holds on: to the handler's on_data, or, for a
 * linked connection, to the output of its partner (whose high watermark
 * then pauses this one: producer_of).
 */
static void deliver(wk_worker *w, weft_conn *c)
{
    if (c->x && c->x->link)
        weft_send_from(c->x->link, &c->in, weft_ring_len(&c->in));
    else
        h_of(c)->on_data(c, &c->in);
}

/* on_data again with the ring as the handler left it (C_REDELIVER). */
static void redeliver(wk_worker *w, weft_conn *c)
{
    c->flags &= ~C_REDELIVER;
    if (weft_ring_len(&c->in) == 0 || (c->flags & (C_CLOSING | C_CLOSED)))
        return;
    deliver(w, c);
    if (c->flags & C_CLOSED)
        return;
    note_partial(w, c);
    conn_ring_release(w, &c->in);
}

/* After on_data consumed what it could of n fresh bytes: 0 to read on. */
static int after_data(wk_worker *w, weft_conn *c)
{
    if (c->flags & C_CLOSED)
        return -1;
    /* A handler that is closing may leave input: its close wins. */
    if (weft_ring_len(&c->in) >= cfg_of(w)->input_cap && !(c->flags & C_CLOSING)) {
        conn_close(w, c, WEFT_CLOSE_INPUT_CAP);
        return -1;
    }
    note_partial(w, c);
    conn_ring_release(w, &c->in);
    return 0;
}

/*
 * The peer sent FIN. An ordinary connection closes once its output is
 * flushed. A linked one passes the half-close on: its partner sends FIN
 * after what it still has to send (C_SHUTWR), and this one stays open for
 * the other direction until its own FIN is sent too.
 */
static void got_eof(wk_worker *w, weft_conn *c)
{
    c->flags = (c->flags & ~C_READABLE) | C_EOF;
    conn_ring_release(w, &c->in);
    weft_conn *p = c->x ? c->x->link : NULL;
    if (!p) {
        conn_close_after_flush(w, c, WEFT_CLOSE_PEER);
        return;
    }
    p->flags |= C_SHUTWR;
    wk_flush_push(w, p); /* sends the FIN now if nothing is pending */
    if (c->flags & C_FIN_SENT)
        conn_close(w, c, WEFT_CLOSE_PEER); /* both directions are done */
}

size_t conn_read(wk_worker *w, weft_conn *c, size_t budget)
{
    const weft_config *cfg = cfg_of(w);
    size_t given = budget;
    if (c->flags & C_REDELIVER) {
        redeliver(w, c);
        if (!(c->flags & C_READABLE) || (c->flags & C_CLOSED))
            return 0;
    }
    while (!(c->flags & (C_PAUSED | C_HPAUSED | C_CLOSING | C_CLOSED | C_CONNECTING | C_EOF))) {
        if (budget == 0) {
            /* Fairness (invariant 3): continue after fresh input, in turn
             * with the other bulk readers (the deferred list). */
            ST_ADD(&w->st, deferrals, 1);
            wk_defer_push(w, c);
            break;
        }
        if (input_room(w, c) <= 0)
            break;
        /*
         * Never let unconsumed input pass input_cap, so on_data can trust
         * that bound (input_room closed us if it is already reached).
         */
        size_t want = ring_space(&c->in);
        size_t room = cfg->input_cap - weft_ring_len(&c->in);
        if (want > room)
            want = room;
        if (want > budget)
            want = budget;
        ssize_t n = c_recv(w, c, &c->in, want);
        ST_ADD(&w->st, reads, 1);
        if (n > 0) {
            ST_ADD(&w->st, bytes_in, (uint64_t)n);
            c->last_in = (uint32_t)w->now_ms;
            budget -= (size_t)n;
            deliver(w, c);
            if (after_data(w, c) != 0)
                break;
            /*
             * The handler asked for its ring again (weft_conn_resume, or a
             * new handler after weft_conn_set_handler): that comes first,
             * before anything more is read, a FIN included.
             */
            if (c->flags & C_REDELIVER)
                break;
            if ((size_t)n < want && !(c->flags & C_HUP)) {
                c->flags &= ~C_READABLE; /* drained: the next byte raises an event */
                break;
            }
            continue;
        }
        if (n == 0) {
            got_eof(w, c);
            break;
        }
        if (n == -EAGAIN) {
            ST_ADD(&w->st, eagain, 1);
            c->flags &= ~(C_READABLE | C_HUP);
            conn_ring_release(w, &c->in);
            break;
        }
        close_on_error(w, c, (int)-n);
        break;
    }
    return given - budget;
}

/* ---- output --------------------------------------------------------------- */

/*
 * The connection whose reading c's output holds back: c itself (an echo, a
 * request-reply handler), or, when c is linked, its partner, which is what
 * fills c's output. Pausing c instead would stop the other direction too,
 * and a proxy whose two directions wait on each other deadlocks.
 */
static weft_conn *producer_of(weft_conn *c) { return c->x && c->x->link ? c->x->link : c; }

/* Reading resumes: see what arrived or waits in the ring meanwhile. */
static void read_again(wk_worker *w, weft_conn *p)
{
    /*
     * Input that arrived meanwhile raised no event; and a handler that
     * stopped consuming when weft_send reported 1 has whole messages
     * waiting in the ring: give it the ring again (C_REDELIVER).
     */
    if (weft_ring_len(&p->in) > 0)
        p->flags |= C_REDELIVER;
    if (p->flags & (C_READABLE | C_REDELIVER))
        wk_ready_push(w, p);
}

/* After output shrank: lift backpressure, owe or pay on_drain. */
static void output_drained(wk_worker *w, weft_conn *c)
{
    if (conn_pending_out(c) >= cfg_of(w)->output_low_wm)
        return;
    weft_conn *p = producer_of(c);
    if (p->flags & C_PAUSED) {
        p->flags &= ~C_PAUSED;
        ST_ADD(&w->st, bp_resumes, 1);
        read_again(w, p);
    }
    if (c->flags & C_DRAIN_CB) {
        c->flags &= ~C_DRAIN_CB;
        if (h_of(c)->on_drain)
            h_of(c)->on_drain(c);
    }
}

/*
 * After the output ring emptied: pass on a peer's half-close (C_SHUTWR),
 * and close a linked connection once both directions are done. 0 while
 * the connection stays open.
 */
static int output_done(wk_worker *w, weft_conn *c)
{
    if ((c->flags & (C_SHUTWR | C_FIN_SENT)) == C_SHUTWR) {
        c->flags |= C_FIN_SENT;
        if (c_shutdown_wr(w, c) != 0) {
            conn_close(w, c, WEFT_CLOSE_ERROR);
            return -1;
        }
        if (c->flags & C_EOF) {
            conn_close(w, c, WEFT_CLOSE_PEER);
            return -1;
        }
    }
    if (c->flags & C_CLOSING) {
        conn_close_graceful(w, c, (weft_close_reason)c->reason);
        return -1;
    }
    return 0;
}

/*
 * Output a connection with queued files may move in one turn: enough for a
 * disk-speed stream, small enough that a turn of many such connections
 * stays in the milliseconds (Redis's NET_MAX_WRITES_PER_EVENT plays the
 * same part for its replies).
 */
#define WK_OUT_TURN_BYTES (1u << 20)

/*
 * One send of at most max bytes of the output ring. Returns the bytes
 * taken; 0 when the socket took nothing (C_WANT_OUT set); -1 when c closed.
 */
static ssize_t send_ring(wk_worker *w, weft_conn *c, size_t max)
{
    size_t want = weft_ring_len(&c->out);
    if (want > max)
        want = max;
    ssize_t n = c_send(w, c, &c->out, want);
    ST_ADD(&w->st, writes, 1);
    if (n > 0) {
        ST_ADD(&w->st, bytes_out, (uint64_t)n);
        c->last_out = (uint32_t)w->now_ms;
        /*
         * Taking fewer bytes than asked means the socket is full; bytes a
         * completion backend still has in flight will end in an output
         * event too. Either way: wait for that event.
         */
        if ((size_t)n < want || out_beyond_ring(c))
            c->flags |= C_WANT_OUT;
        return n;
    }
    if (n == -EAGAIN || n == 0) {
        ST_ADD(&w->st, eagain, 1);
        c->flags |= C_WANT_OUT;
        return 0;
    }
    close_on_error(w, c, (int)-n);
    return -1;
}

/* One sendfile of the head file, at most max bytes; as send_ring. */
static ssize_t send_file(wk_worker *w, weft_conn *c, out_file *f, size_t max)
{
    size_t want = f->left < max ? (size_t)f->left : max;
    ssize_t n = c_sendfile(w, c, f->fd, &f->off, want);
    ST_ADD(&w->st, writes, 1);
    if (n > 0) {
        ST_ADD(&w->st, bytes_out, (uint64_t)n);
        c->last_out = (uint32_t)w->now_ms;
        f->left -= (uint64_t)n;
        c->x->file_bytes -= (uint64_t)n;
        /*
         * A short count is a full socket or the file's end: only the next
         * call tells (EAGAIN, or 0), so no C_WANT_OUT here; an output
         * event might never come if the socket was not full.
         */
        if (f->left == 0) {
            c->x->files = f->next;
            if (!c->x->files)
                c->x->files_tail = &c->x->files;
            w->io->discard(w, f->fd);
            free(f);
        }
        return n;
    }
    if (n == -EAGAIN) {
        ST_ADD(&w->st, eagain, 1);
        c->flags |= C_WANT_OUT;
        return 0;
    }
    /* 0: the file ended before its length (truncated meanwhile). */
    wk_log(w->g, WEFT_LOG_WARN, "worker %d: a queued file failed: %s", w->index,
           n == 0 ? "it is shorter than queued" : weft_strerror((int)-n));
    conn_close(w, c, WEFT_CLOSE_ERROR);
    return -1;
}

/*
 * Output with files queued: the ring bytes before each file, the file,
 * then what follows, within WK_OUT_TURN_BYTES per turn (the rest goes on
 * the next turn: flush_more). 0, or -1 when c closed.
 */
static int send_with_files(wk_worker *w, weft_conn *c)
{
    size_t budget = WK_OUT_TURN_BYTES;
    while (budget > 0 && !(c->flags & C_WANT_OUT)) {
        out_file *f = c->x->files;
        ssize_t n;
        if (!f) {
            if (weft_ring_len(&c->out) == 0)
                break;
            n = send_ring(w, c, budget);
        } else if (f->before) {
            n = send_ring(w, c, f->before < budget ? (size_t)f->before : budget);
            if (n > 0)
                f->before -= (uint64_t)n;
        } else {
            n = send_file(w, c, f, budget);
        }
        if (n < 0)
            return -1;
        budget -= (size_t)n;
    }
    /* Budget used, more to send, the socket still open: next turn. (When
     * called while queued for this turn's flush phase, that pass goes on.) */
    if (budget == 0 && !(c->flags & (C_WANT_OUT | C_FLUSH)) && conn_pending_out(c) > 0) {
        c->flags |= C_FLUSH;
        wk_list_append(&w->flush_more, c, offsetof(weft_conn, next_flush));
    }
    return 0;
}

void conn_flush(wk_worker *w, weft_conn *c)
{
    if (c->flags & C_CLOSED)
        return;
    /* Known full: the output event will queue us again; skip a sure EAGAIN. */
    if (c->flags & C_WANT_OUT)
        return;
    if ((c->flags & C_CONNECTING) && conn_connect_done(w, c) != 0)
        return;
    if (c->x && c->x->files) {
        if (send_with_files(w, c) != 0)
            return;
    } else if ((weft_ring_len(&c->out) > 0 || (is_tls(c) && tls_pending(c))) &&
               send_ring(w, c, SIZE_MAX) < 0) {
        return;
    }
    if (weft_ring_len(&c->out) == 0)
        conn_ring_release(w, &c->out);
    if (conn_pending_out(c) == 0 && output_done(w, c) != 0)
        return;
    output_drained(w, c);
}

int conn_send_file(wk_worker *w, weft_conn *c, int fd, off_t off, uint64_t len)
{
    out_file *f = NULL;
    if (c->flags & (C_CLOSED | C_CLOSING) || !ext_of(c) || !(f = malloc(sizeof(*f)))) {
        w->io->discard(w, fd);
        return c->flags & (C_CLOSED | C_CLOSING) ? -EPIPE : -ENOMEM;
    }
    if (len == 0) {
        free(f);
        w->io->discard(w, fd);
        return 0;
    }
    conn_ext *x = c->x;
    if (!x->files_tail)
        x->files_tail = &x->files;
    /* The ring bytes queued since the last file go before this one. */
    uint64_t earlier = 0;
    for (out_file *e = x->files; e; e = e->next)
        earlier += e->before;
    *f = (out_file){.fd = fd, .off = off, .left = len, .before = weft_ring_len(&c->out) - earlier};
    *x->files_tail = f;
    x->files_tail = &f->next;
    size_t before = conn_pending_out(c);
    x->file_bytes += len;
    return conn_after_send(w, c, before);
}

/* Close what c still has queued of files (c is closing). */
static void drop_files(wk_worker *w, weft_conn *c)
{
    while (c->x->files) {
        out_file *f = c->x->files;
        c->x->files = f->next;
        w->io->discard(w, f->fd);
        free(f);
    }
    c->x->files_tail = &c->x->files;
    c->x->file_bytes = 0;
}

/* ---- flow control between connections ---------------------------------------- */

void conn_read_pause(wk_worker *w, weft_conn *c)
{
    (void)w;
    c->flags |= C_HPAUSED;
}

void conn_read_resume(wk_worker *w, weft_conn *c)
{
    if (!(c->flags & C_HPAUSED))
        return;
    c->flags &= ~C_HPAUSED;
    if (!(c->flags & (C_CLOSED | C_CLOSING | C_PAUSED)))
        read_again(w, c);
}

/* c's extension, made on first need; NULL on ENOMEM. */
static conn_ext *ext_of(weft_conn *c)
{
    if (!c->x)
        c->x = calloc(1, sizeof(*c->x));
    return c->x;
}

/* After a link: who pauses for whose output, from what is pending now. */
static void link_settle(wk_worker *w, weft_conn *c)
{
    weft_conn *p = c->x->link;
    if (conn_pending_out(p) > cfg_of(w)->output_high_wm)
        c->flags |= C_PAUSED; /* p's output is full of what c sent */
    else
        c->flags &= ~C_PAUSED;
    if (c->flags & C_EOF)
        p->flags |= C_SHUTWR; /* c's peer had already half-closed */
    if (!(c->flags & C_PAUSED))
        read_again(w, c); /* bytes already in c's ring go to p now */
    wk_flush_push(w, p);
}

int conn_link(wk_worker *w, weft_conn *a, weft_conn *b)
{
    const uint32_t busy = C_CLOSED | C_CLOSING | C_LINGER;
    if (a == b || a->w != w || b->w != w || (a->flags & busy) || (b->flags & busy) ||
        (a->x && a->x->link) || (b->x && b->x->link))
        return -EINVAL;
    if (!ext_of(a) || !ext_of(b))
        return -ENOMEM;
    a->x->link = b;
    b->x->link = a;
    link_settle(w, a);
    link_settle(w, b);
    return 0;
}

int conn_set_handler(wk_worker *w, weft_conn *c, const weft_handler *h, void *ud)
{
    if (!h || !h->on_data || (c->flags & (C_CLOSED | C_CLOSING)) || (c->x && c->x->link))
        return -EINVAL;
    const wk_origin *old = c->o;
    if (!ext_of(c))
        return -ENOMEM;
    /* Same listener (its counts and per-source accounting), new handler. */
    c->x->origin =
        (wk_origin){.h = h, .ud = ud, .listener = old->listener, .on_gone = old->on_gone};
    if (old->on_gone)
        c->x->lsn = old; /* the listener's origin: on_gone needs it */
    c->o = &c->x->origin;
    if (h->on_open)
        h->on_open(c);
    if (c->flags & (C_CLOSED | C_CLOSING))
        return -EPIPE; /* the new handler's on_open closed it */
    if (weft_ring_len(&c->in) > 0) {
        c->flags |= C_REDELIVER;
        wk_ready_push(w, c);
    }
    return 0;
}

/* ---- output from the handler (workers/conn_api.c) ------------------------- */

/* Flag and report the high watermark after output grew from `before`. */
int conn_after_send(wk_worker *w, weft_conn *c, size_t before)
{
    if (before == 0)
        c->last_out = (uint32_t)w->now_ms; /* the output-stall clock starts */
    wk_flush_push(w, c);
    if (conn_pending_out(c) <= cfg_of(w)->output_high_wm)
        return 0;
    c->flags |= C_DRAIN_CB;
    weft_conn *p = producer_of(c);
    if (!(p->flags & C_PAUSED)) {
        p->flags |= C_PAUSED;
        ST_ADD(&w->st, bp_pauses, 1);
    }
    return 1;
}

int conn_reserve_out(wk_worker *w, weft_conn *c, size_t need)
{
    return conn_ring_reserve(w, &c->out, need);
}
