/*
 * core/conn.c — reading, writing and closing one connection, on its worker.
 *
 * Edge-triggered epoll reports a change once (invariant 3), so this file
 * keeps what the edges said in the connection's flags: C_READABLE until a
 * read proves the socket drained, C_WANT_OUT from an EAGAIN on output until
 * the output edge arrives. Nothing here calls epoll_ctl: the fd was
 * registered once, for input, output and peer half-close (invariant 2).
 *
 * A short read (fewer bytes than asked for) means the socket was drained at
 * that instant: any byte that arrives later raises a new edge, so we stop
 * without the extra read(2) that would only return EAGAIN. The exception is
 * a pending FIN or error (C_HUP): no further edge will come for it, so we
 * read on until the read returns 0 or fails. (nginx's ngx_unix_recv makes
 * the same call with its pending_eof.)
 */
#include "core/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buffers/ring.h"
#include "core/log.h"
#include "core/timeouts.h"

_Static_assert(sizeof(weft_conn) <= 176, "an idle connection must stay within 176 bytes");

static inline const weft_config *cfg_of(const wk_worker *w) { return &w->srv->cfg; }

/* Smallest power of two >= v (v <= 2^31). */
static uint32_t pow2_ceil(uint32_t v)
{
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* ---- lists ------------------------------------------------------------- */

/*
 * Append c to a FIFO linked through the pointer at byte offset `link` in
 * each connection (next_ready or next_flush).
 */
static void list_append(conn_list *l, weft_conn *c, size_t link)
{
#define NEXT(x) (*(weft_conn **)((char *)(x) + link))
    NEXT(c) = NULL;
    if (l->tail)
        NEXT(l->tail) = c;
    else
        l->head = c;
    l->tail = c;
#undef NEXT
}

/* Queue c on one of the lists linked through next_ready (C_READY). */
static void ready_append(conn_list *l, weft_conn *c)
{
    if ((c->flags & C_READY) || (c->flags & (C_CLOSED | C_LINGER)) == C_CLOSED)
        return;
    c->flags |= C_READY;
    list_append(l, c, offsetof(weft_conn, next_ready));
}

void wk_ready_push(wk_worker *w, weft_conn *c) { ready_append(&w->ready, c); }

void wk_defer_push(wk_worker *w, weft_conn *c) { ready_append(&w->deferred, c); }

void wk_flush_push(wk_worker *w, weft_conn *c)
{
    if (c->flags & (C_FLUSH | C_CLOSED))
        return;
    c->flags |= C_FLUSH;
    list_append(&w->flush, c, offsetof(weft_conn, next_flush));
}

/* ---- ring storage -------------------------------------------------------- */

/* Give a ring's storage back to the pool, discarding what it holds. */
static void ring_drop(wk_worker *w, weft_ring *r)
{
    uint32_t cap = r->cap;
    char *b = ring_detach(r);
    if (b)
        pool_put(&w->pool, b, cap);
}

/* Give a ring that emptied its storage back to the pool. */
static void ring_release(wk_worker *w, weft_ring *r)
{
    if (r->buf && weft_ring_len(r) == 0)
        ring_drop(w, r);
}

/* Make room for `need` bytes in total; 0 or -ENOMEM. */
static int ring_reserve(wk_worker *w, weft_ring *r, size_t need)
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

/* ---- open and close ------------------------------------------------------ */

static void count_close(wk_worker *w, weft_close_reason why)
{
    ST_ADD(&w->st, closed, 1);
    ST_ADD(&w->st, closed_by[why], 1);
    static const lim_kind kinds[WEFT_CLOSE_REASONS] = {
        [WEFT_CLOSE_PEER] = LIM_KINDS,
        [WEFT_CLOSE_ERROR] = LIM_KINDS,
        [WEFT_CLOSE_TIMEOUT] = LIM_IDLE,
        [WEFT_CLOSE_INPUT_CAP] = LIM_INPUT_CAP,
        [WEFT_CLOSE_OUTPUT_CAP] = LIM_OUTPUT_CAP,
        [WEFT_CLOSE_SHUTDOWN] = LIM_KINDS,
        [WEFT_CLOSE_HANDLER] = LIM_KINDS,
        [WEFT_CLOSE_INPUT_STALL] = LIM_INPUT_STALL,
        [WEFT_CLOSE_OUTPUT_STALL] = LIM_OUTPUT_STALL,
    };
    if (kinds[why] != LIM_KINDS)
        wlog_limit(w->srv, kinds[why], "worker %d: closing a connection: %s", w->index,
                   weft_close_reason_name(why));
}

static void set_peer(weft_conn *c, const inbox_msg *m)
{
    c->family = (uint8_t)m->addr.sa.sa_family;
    if (c->family == AF_INET) {
        c->port = m->addr.in4.sin_port;
        memcpy(c->addr, &m->addr.in4.sin_addr, 4);
    } else if (c->family == AF_INET6) {
        c->port = m->addr.in6.sin6_port;
        memcpy(c->addr, &m->addr.in6.sin6_addr, 16);
    }
}

void conn_open(wk_worker *w, inbox_msg *m)
{
    int fd = m->fd;
    weft_conn *c = wk_slot_get(w);
    if (!c) {
        wlog(w->srv, WEFT_LOG_ERROR, "worker %d: out of memory for a connection", w->index);
        close(fd);
        count_close(w, WEFT_CLOSE_ERROR);
        free(m);
        return;
    }
    c->fd = fd;
    c->flags = 0;
    c->reason = 0;
    c->ud = NULL;
    c->w = w;
    memset(&c->in, 0, sizeof(c->in));
    memset(&c->out, 0, sizeof(c->out));
    c->tmr.pprev = NULL;
    c->timers = NULL;
    set_peer(c, m);
    free(m);

    /*
     * Registered once, edge-triggered, for everything we will ever want
     * (invariant 2). The key carries the slot's generation so that an event
     * queued for a connection that has since closed, and whose fd number or
     * slot was reused, is recognised as stale and dropped.
     */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = ((uint64_t)c->gen << 32) | c->slot};
    if (cfg_of(w)->sndbuf > 0) {
        /* Failure only leaves the kernel's own sizing: not worth a close. */
        int sz = (int)cfg_of(w)->sndbuf;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    }
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        wlog(w->srv, WEFT_LOG_ERROR, "worker %d: epoll_ctl: %s", w->index, weft_strerror(errno));
        w->nconns++;
        conn_close(w, c, WEFT_CLOSE_ERROR);
        return;
    }
    w->nconns++;
    ST_ADD(&w->st, opened, 1);
    c->flags |= C_OPENED;
    to_conn_open(w, c);
    if (w->srv->h.on_open)
        w->srv->h.on_open(c);
    if (w->stopping)
        conn_close_after_flush(w, c, WEFT_CLOSE_SHUTDOWN);
}

void conn_close(wk_worker *w, weft_conn *c, weft_close_reason why)
{
    if (c->flags & C_CLOSED)
        return;
    c->flags |= C_CLOSED;
    c->reason = (uint8_t)why;
    to_conn_close(w, c);
    if ((c->flags & C_OPENED) && w->srv->h.on_close)
        w->srv->h.on_close(c, why);
    /* Closing the only reference to the socket also drops it from epoll. */
    close(c->fd);
    c->fd = -1;
    ring_drop(w, &c->in);
    ring_drop(w, &c->out);
    w->nconns--;
    count_close(w, why);
    c->next_closed = w->closed;
    w->closed = c;
}

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

int64_t wk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The real close of a lingering connection. */
static void linger_end(wk_worker *w, weft_conn *c)
{
    if (!(c->flags & C_LINGER))
        return;
    c->flags &= ~C_LINGER;
    close(c->fd);
    c->fd = -1;
    w->nconns--;
    count_close(w, (weft_close_reason)c->reason);
    if (!(c->flags & C_LINGERQ)) {
        c->next_closed = w->closed;
        w->closed = c;
    }
}

void conn_linger_read(wk_worker *w, weft_conn *c)
{
    char sink[4096];
    size_t budget = cfg_of(w)->read_budget;
    while (c->flags & C_LINGER) {
        if (budget == 0) {
            /* Bounded work per turn here too: continue later. */
            wk_defer_push(w, c);
            return;
        }
        ssize_t n = read(c->fd, sink, budget < sizeof(sink) ? budget : sizeof(sink));
        if (n > 0) {
            budget -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        linger_end(w, c); /* EOF or an error: the peer is done */
    }
}

int conn_linger_expire(wk_worker *w, int force)
{
    int64_t now = w->linger.head ? wk_now_ms() : 0;
    while (w->linger.head) {
        weft_conn *c = w->linger.head;
        int32_t left = (int32_t)(c->linger_until - (uint32_t)now);
        if (!force && left > 0)
            return left;
        w->linger.head = c->next_closed;
        if (!w->linger.head)
            w->linger.tail = NULL;
        c->flags &= ~C_LINGERQ;
        if (c->flags & C_LINGER) {
            linger_end(w, c); /* time is up */
        } else {
            c->next_closed = w->closed; /* ended early: its slot can go now */
            w->closed = c;
        }
    }
    return -1;
}

/* Close for the handler now; close the fd after lingering (see above). */
static void conn_close_graceful(wk_worker *w, weft_conn *c, weft_close_reason why)
{
    uint32_t ms = cfg_of(w)->close_linger_ms;
    int64_t now = wk_now_ms();
    if (w->stopping && w->deadline_ms - now < (int64_t)ms)
        ms = w->deadline_ms > now ? (uint32_t)(w->deadline_ms - now) : 0;
    /* After the peer's EOF nothing unread remains: no reset to fear. */
    if (ms == 0 || (c->flags & C_EOF) || shutdown(c->fd, SHUT_WR) != 0) {
        conn_close(w, c, why);
        return;
    }
    c->flags |= C_CLOSED | C_LINGER | C_LINGERQ;
    c->reason = (uint8_t)why;
    to_conn_close(w, c);
    if ((c->flags & C_OPENED) && w->srv->h.on_close)
        w->srv->h.on_close(c, why);
    ring_drop(w, &c->in);
    ring_drop(w, &c->out);
    c->linger_until = (uint32_t)(now + ms);
    list_append(&w->linger, c, offsetof(weft_conn, next_closed));
    conn_linger_read(w, c);
}

void conn_close_after_flush(wk_worker *w, weft_conn *c, weft_close_reason why)
{
    if (c->flags & (C_CLOSED | C_CLOSING))
        return;
    if (weft_ring_len(&c->out) == 0) {
        conn_close_graceful(w, c, why);
        return;
    }
    c->flags |= C_CLOSING;
    c->reason = (uint8_t)why;
    wk_flush_push(w, c);
}

/* ---- input ---------------------------------------------------------------- */

/* Close for a failed read or write; a reset after the peer's FIN is the peer. */
static void close_on_error(wk_worker *w, weft_conn *c, int err)
{
    if ((c->flags & C_EOF) && (err == EPIPE || err == ECONNRESET))
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
    return c->in.buf == NULL && weft_ring_len(&c->out) == 0 &&
           w->pool.in_use / 2 < w->pool.max_bytes;
}

/*
 * The pool is at pool_max_bytes: park c (still C_READABLE) until memory
 * comes back. C_READY stays set so no edge queues it twice meanwhile.
 */
static void starve(wk_worker *w, weft_conn *c)
{
    c->flags |= C_READY | C_STARVED;
    list_append(&w->starved, c, offsetof(weft_conn, next_ready));
    ST_ADD(&w->st, pool_pauses, 1);
    wlog_limit(w->srv, LIM_POOL,
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
    if (ring_reserve(w, in, in->buf ? (size_t)in->cap * 2 : cfg_of(w)->ring_size) != 0) {
        wlog(w->srv, WEFT_LOG_ERROR, "worker %d: out of memory for input", w->index);
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

void conn_read(wk_worker *w, weft_conn *c)
{
    const weft_config *cfg = cfg_of(w);
    size_t budget = cfg->read_budget;
    if (c->flags & C_REDELIVER) {
        c->flags &= ~C_REDELIVER;
        if (weft_ring_len(&c->in) > 0 && !(c->flags & (C_CLOSING | C_CLOSED))) {
            w->srv->h.on_data(c, &c->in);
            if (c->flags & C_CLOSED)
                return;
            note_partial(w, c);
            ring_release(w, &c->in);
        }
        if (!(c->flags & C_READABLE))
            return;
    }
    while (!(c->flags & (C_PAUSED | C_CLOSING | C_CLOSED))) {
        if (budget == 0) {
            /* Fairness (invariant 3): continue after fresh input, in turn
             * with the other bulk readers (the deferred list). */
            ST_ADD(&w->st, deferrals, 1);
            wk_defer_push(w, c);
            return;
        }
        if (input_room(w, c) <= 0)
            return;
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
        ssize_t n = ring_read_fd(&c->in, c->fd, want);
        ST_ADD(&w->st, reads, 1);
        if (n > 0) {
            ring_produce(&c->in, (size_t)n);
            ST_ADD(&w->st, bytes_in, (uint64_t)n);
            c->last_in = (uint32_t)w->now_ms;
            budget -= (size_t)n;
            w->srv->h.on_data(c, &c->in);
            if (c->flags & C_CLOSED)
                return;
            /* A handler that is closing may leave input: its close wins. */
            if (weft_ring_len(&c->in) >= cfg->input_cap && !(c->flags & C_CLOSING)) {
                conn_close(w, c, WEFT_CLOSE_INPUT_CAP);
                return;
            }
            note_partial(w, c);
            ring_release(w, &c->in);
            if ((size_t)n < want && !(c->flags & C_HUP)) {
                c->flags &= ~C_READABLE; /* drained: the next byte raises an edge */
                return;
            }
            continue;
        }
        if (n == 0) {
            c->flags = (uint16_t)((c->flags & ~C_READABLE) | C_EOF);
            ring_release(w, &c->in);
            conn_close_after_flush(w, c, WEFT_CLOSE_PEER);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            ST_ADD(&w->st, eagain, 1);
            c->flags &= ~(C_READABLE | C_HUP);
            ring_release(w, &c->in);
            return;
        }
        close_on_error(w, c, errno);
        return;
    }
}

/* ---- output --------------------------------------------------------------- */

/* After output shrank: lift backpressure, owe or pay on_drain. */
static void output_drained(wk_worker *w, weft_conn *c)
{
    if (weft_ring_len(&c->out) >= cfg_of(w)->output_low_wm)
        return;
    if (c->flags & C_PAUSED) {
        c->flags &= ~C_PAUSED;
        ST_ADD(&w->st, bp_resumes, 1);
        /*
         * Input that arrived meanwhile raised no edge; and a handler that
         * stopped consuming when weft_send reported 1 has whole messages
         * waiting in the ring: give it the ring again (C_REDELIVER).
         */
        if (weft_ring_len(&c->in) > 0)
            c->flags |= C_REDELIVER;
        if (c->flags & (C_READABLE | C_REDELIVER))
            wk_ready_push(w, c);
    }
    if (c->flags & C_DRAIN_CB) {
        c->flags &= ~C_DRAIN_CB;
        if (w->srv->h.on_drain)
            w->srv->h.on_drain(c);
    }
}

void conn_flush(wk_worker *w, weft_conn *c)
{
    if (c->flags & C_CLOSED)
        return;
    /* Known full: the output edge will queue us again; skip a sure EAGAIN. */
    if (c->flags & C_WANT_OUT)
        return;
    if (weft_ring_len(&c->out) > 0) {
        ssize_t n = ring_send_fd(&c->out, c->fd);
        ST_ADD(&w->st, writes, 1);
        if (n > 0) {
            ST_ADD(&w->st, bytes_out, (uint64_t)n);
            c->last_out = (uint32_t)w->now_ms;
            /* A partial write means the socket buffer is full. */
            if (weft_ring_len(&c->out) > 0)
                c->flags |= C_WANT_OUT;
        } else if (errno == EAGAIN) {
            ST_ADD(&w->st, eagain, 1);
            c->flags |= C_WANT_OUT;
        } else if (errno == EINTR) {
            wk_flush_push(w, c); /* try again later this turn */
            return;
        } else {
            close_on_error(w, c, errno);
            return;
        }
    }
    if (weft_ring_len(&c->out) == 0) {
        ring_release(w, &c->out);
        if (c->flags & C_CLOSING) {
            conn_close_graceful(w, c, (weft_close_reason)c->reason);
            return;
        }
    }
    output_drained(w, c);
}

/* ---- the handler-facing API ------------------------------------------------ */

/* Flag and report the high watermark after output grew from `before`. */
static int after_send(wk_worker *w, weft_conn *c, size_t before)
{
    if (before == 0)
        c->last_out = (uint32_t)w->now_ms; /* the output-stall clock starts */
    wk_flush_push(w, c);
    if (weft_ring_len(&c->out) <= cfg_of(w)->output_high_wm)
        return 0;
    c->flags |= C_DRAIN_CB;
    if (!(c->flags & C_PAUSED)) {
        c->flags |= C_PAUSED;
        ST_ADD(&w->st, bp_pauses, 1);
    }
    return 1;
}

int weft_send(weft_conn *c, const void *data, size_t len)
{
    wk_worker *w = c->w;
    if (c->flags & (C_CLOSED | C_CLOSING))
        return -EPIPE;
    size_t need = weft_ring_len(&c->out) + len;
    if (need > cfg_of(w)->output_cap) {
        conn_close(w, c, WEFT_CLOSE_OUTPUT_CAP);
        return -ENOBUFS;
    }
    if (len == 0)
        return 0;
    if (ring_reserve(w, &c->out, need) != 0) {
        conn_close(w, c, WEFT_CLOSE_ERROR);
        return -ENOMEM;
    }
    size_t before = weft_ring_len(&c->out);
    ring_append(&c->out, data, len);
    return after_send(w, c, before);
}

int weft_send_from(weft_conn *c, weft_ring *from, size_t len)
{
    wk_worker *w = c->w;
    if (c->flags & (C_CLOSED | C_CLOSING))
        return -EPIPE;
    size_t have = weft_ring_len(from);
    if (len > have)
        len = have;
    if (len == 0)
        return 0;
    /*
     * The echo fast path: everything moves to an empty output, so the
     * storage changes hands and nothing is copied. `from` keeps the output's
     * old (empty) storage, if any, and reads as empty.
     */
    if (len == have && from != &c->out && weft_ring_len(&c->out) == 0 &&
        len <= cfg_of(w)->output_cap) {
        ring_swap(&c->out, from);
        weft_ring_consume(from, weft_ring_len(from));
        return after_send(w, c, 0);
    }
    struct iovec iov[2];
    int k = weft_ring_peek(from, iov);
    size_t left = len;
    int rc = 0;
    for (int i = 0; i < k && left > 0; i++) {
        size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
        rc = weft_send(c, iov[i].iov_base, n);
        if (rc < 0)
            return rc;
        left -= n;
    }
    weft_ring_consume(from, len);
    return rc;
}

void weft_close(weft_conn *c) { conn_close_after_flush(c->w, c, WEFT_CLOSE_HANDLER); }

void weft_conn_resume(weft_conn *c)
{
    if (c->flags & (C_CLOSED | C_CLOSING))
        return;
    c->flags |= C_REDELIVER;
    wk_ready_push(c->w, c);
}

void weft_abort(weft_conn *c)
{
    if (c->flags & C_CLOSED)
        return;
    /* Linger {1, 0}: close(2) sends RST and discards unsent data. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    conn_close(c->w, c, WEFT_CLOSE_HANDLER);
}

void *weft_conn_userdata(const weft_conn *c) { return c->ud; }
void weft_conn_set_userdata(weft_conn *c, void *ud) { c->ud = ud; }
int weft_conn_worker(const weft_conn *c) { return c->w->index; }
weft_server *weft_conn_server(const weft_conn *c) { return c->w->srv; }
int weft_conn_fd(const weft_conn *c) { return c->fd; }
size_t weft_conn_pending_output(const weft_conn *c) { return weft_ring_len(&c->out); }

socklen_t weft_conn_peer(const weft_conn *c, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (c->family == AF_INET) {
        struct sockaddr_in *a = (void *)ss;
        a->sin_family = AF_INET;
        a->sin_port = c->port;
        memcpy(&a->sin_addr, c->addr, 4);
        return sizeof(*a);
    }
    if (c->family == AF_INET6) {
        struct sockaddr_in6 *a = (void *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = c->port;
        memcpy(&a->sin6_addr, c->addr, 16);
        return sizeof(*a);
    }
    return 0;
}
