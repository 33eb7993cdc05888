/*
 * tools/weft-load/engine.c — the connection engine: plain epoll threads, no
 * libweft. Each thread owns a share of the connections (connection i belongs
 * to thread i % threads) and one epoll set in which every socket is
 * registered once, edge-triggered, for input, output and peer half-close.
 * Nothing is allocated after start-up: what is sent is regenerated from the
 * message format (message.c) into a per-thread scratch buffer, and what is
 * received is checked in place (verify.c).
 *
 * One turn of a thread: the phase step (phase.c, which runs the mode), flush
 * the connections queued for output, wait for events (up to the next
 * deadline), read what arrived, flush again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* epoll_pwait2, IP_BIND_ADDRESS_NO_PORT; the build defines it too */
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "load.h"

#define MAX_EVENTS 512

static atomic_uchar g_err_seen[256]; /* connect errors already reported */
static atomic_int g_have_pwait2 = 1; /* cleared on ENOSYS (kernel < 5.11) */

void *load_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "weft-load: out of memory (%zu x %zu bytes)\n", n, size);
        exit(2);
    }
    return p;
}

/* --- connections ------------------------------------------------------------ */

void conn_queue(thr *t, conn *c)
{
    if (!c->queued) {
        c->queued = 1;
        t->ready[t->nready++] = (uint32_t)(c - t->conns);
    }
}

uint64_t conn_sent_time(const thr *t, const conn *c, uint64_t seq)
{
    if (load_cfg.mode->sent_at)
        return load_cfg.mode->sent_at(t, c, seq);
    return c->ts[seq % load_cfg.depth];
}

int conn_outstanding(const conn *c) { return c->rd < c->quota * load_cfg.size; }

void conn_release(thr *t, conn *c)
{
    if (c->state == C_OPEN)
        t->nopen--;
    if (c->fd >= 0)
        close(c->fd); /* also removes it from the epoll set: the fd is not shared */
    c->fd = -1;
    c->state = load_cfg.mode->cycles ? C_FREE : C_DONE;
    if (load_cfg.mode->cycles)
        t->free[t->nfree++] = (uint32_t)(c - t->conns);
}

void conn_connect_failed(thr *t, conn *c, int err)
{
    stats *s = &t->st;
    switch (err) {
    case ECONNREFUSED:
        s->fail_refused++;
        break;
    case ETIMEDOUT:
        s->fail_timeout++;
        break;
    case EADDRNOTAVAIL:
    case EADDRINUSE:
        s->fail_noaddr++;
        break;
    default:
        s->fail_other++;
        break;
    }
    /* One line per distinct error: 10,000 refusals say the same thing. */
    if ((unsigned)err < sizeof(g_err_seen) && !atomic_exchange(&g_err_seen[err], 1))
        fprintf(stderr, "weft-load: connect to %s port %u failed: %s\n", load_cfg.host,
                load_cfg.port, strerror(err));
    if (c->state == C_CONNECTING)
        t->inflight--;
    if (!load_cfg.mode->cycles)
        t->resolved++;
    conn_release(t, c);
}

static void connect_ok(thr *t, conn *c, uint64_t now)
{
    t->inflight--;
    if (!load_cfg.mode->cycles)
        t->resolved++;
    c->state = C_OPEN;
    t->nopen++;
    c->writable = 1;
    t->st.conn_ok++;
    lh_record(&t->st.conn_time, now - c->t_open);
    if (load_cfg.mode->opened)
        load_cfg.mode->opened(t, c);
}

void conn_open(thr *t, conn *c, uint64_t now)
{
    c->gen++;
    c->state = C_CONNECTING;
    c->quota = c->wr = c->rd = 0;
    c->bad = c->writable = 0;
    c->t_open = now;
    t->inflight++;
    if (load_cfg.mode->cycles)
        c->id = (uint32_t)(t->idx + load_cfg.threads * t->attempts);
    t->attempts++;

    int fd = socket(load_cfg.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        conn_connect_failed(t, c, errno);
        return;
    }
    c->fd = fd;
    int one = 1;
    /* Small echo messages must not wait for Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (load_cfg.close_rst) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (load_cfg.sources) {
        /* Port choice deferred to connect(), so each source address has its
         * own ephemeral port space towards the one destination. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7F000001u + c->id % load_cfg.sources);
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
            conn_connect_failed(t, c, errno);
            return;
        }
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)c->gen << 32 | (uint32_t)(c - t->conns)};
    if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        conn_connect_failed(t, c, errno);
        return;
    }
    if (connect(fd, (struct sockaddr *)&load_cfg.dst, load_cfg.dstlen) < 0 && errno != EINPROGRESS)
        conn_connect_failed(t, c, errno);
    /* Completion (even an immediate one) arrives as the output edge. */
}

void conn_lost(thr *t, conn *c, uint64_t *counter)
{
    (*counter)++;
    conn_release(t, c);
}

/* Reads everything pending on c (edge-triggered: until a short read). */
static void conn_read(thr *t, conn *c, uint32_t events, uint64_t now)
{
    for (;;) {
        ssize_t n = recv(c->fd, t->rx, RX_SIZE, 0);
        if (n > 0) {
            if (!verify_input(t, c, t->rx, (size_t)n, now))
                return;
            /* A short read drained the socket; data arriving later raises a
             * new edge. With a half-close pending, read on to see the EOF. */
            if ((size_t)n < RX_SIZE && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                break;
        } else if (n == 0) {
            conn_lost(t, c, conn_outstanding(c) ? &t->st.shorts : &t->st.peer_closed);
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            conn_lost(t, c, &t->st.resets); /* ECONNRESET and kin */
            return;
        }
    }
    if (load_cfg.mode->readable)
        load_cfg.mode->readable(t, c);
}

/* Sends whatever c's quota allows, in chunks of up to TX_CHUNK bytes. */
static void conn_flush(thr *t, conn *c, uint64_t now)
{
    const uint32_t size = load_cfg.size;
    uint64_t target = c->quota * size;
    while (c->writable && c->wr < target) {
        size_t len = target - c->wr < TX_CHUNK ? (size_t)(target - c->wr) : TX_CHUNK;
        msg_stream_fill(t->tx, c->id, size, c->wr, len);
        ssize_t n = send(c->fd, t->tx, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->writable = 0; /* the next output edge sets it again */
                break;
            }
            conn_lost(t, c, &t->st.resets); /* EPIPE, ECONNRESET */
            return;
        }
        if (!load_cfg.mode->sent_at) {
            /* Stamp the messages whose first byte went out now. */
            uint64_t first = (c->wr + size - 1) / size;
            uint64_t end = (c->wr + (uint64_t)n + size - 1) / size;
            for (uint64_t m = first; m < end; m++)
                c->ts[m % load_cfg.depth] = now;
        }
        c->wr += (uint64_t)n;
    }
}

/* --- the thread's loop ------------------------------------------------------ */

static void thr_flush(thr *t, uint64_t now)
{
    for (uint32_t i = 0; i < t->nready; i++) {
        conn *c = &t->conns[t->ready[i]];
        c->queued = 0;
        if (c->state == C_OPEN)
            conn_flush(t, c, now);
    }
    t->nready = 0;
}

static void thr_event(thr *t, const struct epoll_event *ev, uint64_t now)
{
    conn *c = &t->conns[(uint32_t)ev->data.u64];
    if (c->gen != (uint32_t)(ev->data.u64 >> 32))
        return; /* for an fd this slot has since closed */
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            conn_connect_failed(t, c, err);
            return;
        }
        if (!(ev->events & EPOLLOUT))
            return;
        connect_ok(t, c, now);
    }
    if (c->state != C_OPEN)
        return;
    if (ev->events & EPOLLOUT) {
        c->writable = 1;
        conn_queue(t, c);
    }
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_read(t, c, ev->events, now);
}

static int thr_wait(thr *t, struct epoll_event *evs, uint64_t ns)
{
    if (atomic_load_explicit(&g_have_pwait2, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = (time_t)(ns / NS), .tv_nsec = (long)(ns % NS)};
        int n = epoll_pwait2(t->ep, evs, MAX_EVENTS, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&g_have_pwait2, 0, memory_order_relaxed); /* ms timeouts then */
    }
    return epoll_wait(t->ep, evs, MAX_EVENTS, (int)((ns + 999999) / 1000000));
}

void *thr_main(void *arg)
{
    thr *t = arg;
    struct epoll_event evs[MAX_EVENTS];
    uint64_t now = now_ns();
    phase_start(t, now);
    while (t->phase != P_DONE) {
        now = now_ns();
        phase_step(t, now);
        thr_flush(t, now);
        if (t->phase == P_DONE)
            break;
        int n = thr_wait(t, evs, phase_next_wake(t, now_ns()));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "weft-load: epoll_wait: %s\n", strerror(errno));
            exit(2);
        }
        now = now_ns();
        for (int i = 0; i < n; i++)
            thr_event(t, &evs[i], now);
        thr_flush(t, now);
    }
    for (uint32_t i = 0; i < t->nconns; i++)
        if (t->conns[i].fd >= 0)
            close(t->conns[i].fd);
    return NULL;
}

void thr_init(thr *t, unsigned idx)
{
    const struct load_config *cfg = &load_cfg;
    t->idx = idx;
    t->nconns = cfg->conns / cfg->threads + (idx < cfg->conns % cfg->threads);
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    if (t->ep < 0) {
        fprintf(stderr, "weft-load: epoll_create1: %s\n", strerror(errno));
        exit(2);
    }
    t->conns = load_calloc(t->nconns, sizeof(conn));
    t->ready = load_calloc(t->nconns, sizeof(uint32_t));
    t->free = load_calloc(t->nconns, sizeof(uint32_t));
    t->rot = load_calloc(t->nconns, sizeof(uint32_t));
    uint64_t *ts =
        cfg->mode->sent_at ? NULL : load_calloc((size_t)t->nconns * cfg->depth, sizeof(uint64_t));
    for (uint32_t i = 0; i < t->nconns; i++) {
        conn *c = &t->conns[i];
        c->fd = -1;
        c->id = idx + cfg->threads * i; /* connection ids 0 .. conns-1 */
        c->ts = ts ? ts + (size_t)i * cfg->depth : NULL;
        t->free[t->nconns - 1 - i] = i; /* slot 0 pops first */
    }
    t->nfree = t->nconns;
    t->inflight_cap = (cfg->connect_inflight + cfg->threads - 1) / cfg->threads;
    t->ramp_rate = cfg->ramp / cfg->threads;
    t->rx = load_calloc(1, RX_SIZE);
    t->exp = load_calloc(1, RX_SIZE);
    t->tx = load_calloc(1, TX_CHUNK);
    lh_init(&t->st.lat);
    lh_init(&t->st.conn_time);
    t->phase = P_CONNECT;
}

void thr_free(thr *t)
{
    close(t->ep);
    free(t->nconns && t->conns[0].ts ? t->conns[0].ts : NULL);
    free(t->conns);
    free(t->ready);
    free(t->free);
    free(t->rot);
    free(t->rx);
    free(t->exp);
    free(t->tx);
}
