/*
 * weft-load — a load generator for TCP echo servers (weft-echo and its peers).
 *
 * Standalone: plain epoll threads, no libweft. Each thread owns a share of the
 * connections (connection i belongs to thread i % threads) and one epoll set
 * in which every socket is registered once, edge-triggered, for input, output
 * and peer half-close. Nothing is allocated after start-up: messages are never
 * buffered, because every byte of every message is a pure function of
 * (connection id, sequence number, size) — the sender regenerates the bytes it
 * has not yet written into a per-thread scratch buffer, and the receiver
 * regenerates what it expects and compares.
 *
 * Message format (size S >= 16, all little-endian 64-bit words, the last one
 * truncated to S):
 *
 *     word 0   connection id (low 32 bits) | S (high 32 bits)
 *     word 1   sequence number on that connection, from 0
 *     word j   seed + j * 0x9E3779B97F4A7C15,  seed = mix(id, seq)
 *
 * Framing is by byte count (S is fixed), so a flipped byte never loses sync;
 * a wrong header (another connection's id, an unexpected sequence number)
 * means bytes were lost, duplicated, reordered or mixed, and the stream can
 * no longer be trusted: that connection is closed. Every mismatch is counted
 * by kind and never counted as throughput.
 *
 * Connection life (one slot; churn reuses slots, bumping `gen` so a stale
 * event for a closed fd is ignored):
 *
 *     FREE --open()--> CONNECTING --SO_ERROR 0--> OPEN --close/error--> DONE
 *                          |                        |        (churn: FREE)
 *                          +--error/timeout--> DONE (churn: FREE)
 *
 * Thread phases:
 *
 *     echo/rate:  CONNECT -> WAIT (all threads connected) -> RUN -> DRAIN -> DONE
 *     flood:      CONNECT -> WAIT -> HOLD -> DRAIN (one echo each) -> DONE
 *     churn:      RUN (connect, request, close, repeat) -> DRAIN -> DONE
 *
 * DRAIN sends nothing new and waits (up to --timeout) for every reply, so
 * every byte sent is verified before the report.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* epoll_pwait2; the build defines it too */
#endif
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tools/hist.h"

/* --- configuration ---------------------------------------------------------- */

enum mode { M_ECHO, M_RATE, M_FLOOD, M_CHURN };
static const char *const mode_names[] = {"echo", "rate", "flood", "churn"};

static struct config {
    enum mode mode;
    const char *host;
    unsigned port;
    uint32_t conns, depth, size, threads, sources, connect_inflight;
    double rate, ramp, duration, warmup, hold, timeout;
    uint64_t count; /* 0: no count bound */
    int have_duration, json, close_rst;
    struct sockaddr_storage dst;
    socklen_t dstlen;
    int family;
} cfg;

#define HDR_SIZE 16
#define MAX_SIZE (16u << 20)
#define RX_SIZE  (256u << 10) /* one recv; also bounds one verification chunk */
#define TX_CHUNK                                                                                   \
    (64u << 10) /* one send: large enough to batch, small enough to                                \
                   regenerate cheaply after a short write */
#define MAX_EVENTS   512
#define HOUSEKEEP_NS 100000000ULL /* timeout scan every 100 ms */
#define DRAIN_CHECK  10000000ULL  /* in DRAIN, look for "all answered" every 10 ms */
#define NS           1000000000ULL
#define MAX_LOGGED   5 /* mismatch details printed */

/* --- time ------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static uint64_t secs_ns(double s) { return (uint64_t)(s * 1e9); }

/* --- messages --------------------------------------------------------------- */

#define GOLDEN 0x9E3779B97F4A7C15ULL

static uint64_t msg_seed(uint32_t id, uint64_t seq)
{
    /* splitmix64's finalizer over (id, seq): neighbouring messages differ in
     * every payload word. */
    uint64_t z = ((uint64_t)id << 32 ^ seq) + GOLDEN;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Writes bytes [off, off+len) of message (id, seq) of size `size` to buf. */
static void msg_fill(unsigned char *buf, uint32_t id, uint64_t seq, uint32_t size, uint32_t off,
                     size_t len)
{
    uint64_t seed = msg_seed(id, seq);
    uint64_t j = off / 8;
    unsigned b = off % 8;
    while (len) {
        uint64_t w = j == 0   ? ((uint64_t)id | (uint64_t)size << 32)
                     : j == 1 ? seq
                              : seed + j * GOLDEN;
        w = htole64(w);
        if (b == 0 && len >= 8) {
            memcpy(buf, &w, 8);
            buf += 8;
            len -= 8;
        } else {
            size_t take = 8 - b < len ? 8 - b : len;
            memcpy(buf, (unsigned char *)&w + b, take);
            buf += take;
            len -= take;
            b = 0;
        }
        j++;
    }
}

/* Writes bytes [pos, pos+len) of connection id's stream of size-byte messages. */
static void stream_fill(unsigned char *buf, uint32_t id, uint32_t size, uint64_t pos, size_t len)
{
    while (len) {
        uint32_t off = (uint32_t)(pos % size);
        size_t take = size - off < len ? size - off : len;
        msg_fill(buf, id, pos / size, size, off, take);
        buf += take;
        pos += take;
        len -= take;
    }
}

/* --- per-thread state ------------------------------------------------------- */

enum cstate { C_FREE, C_CONNECTING, C_OPEN, C_DONE };
enum phase { P_CONNECT, P_WAIT, P_RUN, P_HOLD, P_DRAIN, P_DONE };

typedef struct conn {
    int fd;
    uint32_t id;                 /* carried in every header */
    uint32_t gen;                /* bumped on every open: stale-event guard */
    uint32_t rot;                /* rate: position in the thread's send rotation */
    uint8_t state;               /* enum cstate */
    uint8_t writable;            /* output edge seen and no EAGAIN since */
    uint8_t queued;              /* on the thread's flush list */
    uint8_t bad;                 /* wrong bytes in this message so far (counts to 2) */
    uint32_t bad_off;            /* first wrong byte in it */
    uint64_t quota;              /* messages this connection may have sent so far */
    uint64_t wr, rd;             /* stream bytes written / received and verified */
    uint64_t t_open;             /* when connect() was called */
    uint64_t *ts;                /* send time of message m at ts[m % depth] (not rate) */
    unsigned char hdr[HDR_SIZE]; /* received header of the message being verified */
} conn;

typedef struct stats {
    uint64_t msgs, bytes;         /* verified, received inside the window */
    uint64_t msgs_all, bytes_all; /* verified, whole run */
    uint64_t conn_ok, fail_refused, fail_timeout, fail_noaddr, fail_other;
    uint64_t resets, shorts, timeouts, peer_closed;
    uint64_t mm_corrupt, mm_cross, mm_seq, mm_extra;
    uint64_t cycles, cycles_win, check_ok, unsent;
    uint64_t last_recv;
    lhist lat, conn_time;
} stats;

typedef struct thr {
    unsigned idx;
    pthread_t tid;
    int ep;
    enum phase phase;
    conn *conns;
    uint32_t nconns;
    uint32_t *ready, nready; /* connections to flush this turn */
    uint32_t *free, nfree;   /* slots not yet opened (a stack) */
    uint32_t resolved;       /* slots connected or failed (not churn) */
    uint32_t nopen;          /* connections in C_OPEN */
    uint32_t inflight, inflight_cap;
    uint64_t attempts; /* connects started */
    double ramp_rate;  /* per thread; 0: no pacing */
    uint64_t ramp_t0;
    uint64_t budget; /* messages (churn: cycles) still allowed */
    uint64_t start, warm_end, run_end, hold_end, drain_end;
    uint64_t next_housekeep, next_drain_check;
    /* rate: thread message k goes to rot[k % nrot] at start + k * interval */
    uint32_t *rot, nrot;
    uint64_t k_next, k_limit;
    double interval;
    unsigned char *rx, *tx, *exp;
    stats st;
} thr;

static thr *g_thr;
static atomic_int g_stop;
static atomic_uint g_connecting; /* threads still in CONNECT */
static _Atomic uint64_t g_start; /* run start; 0 until every thread connected */
static uint32_t *g_open;         /* per thread: connections open at the barrier */
static uint64_t g_t0;            /* program start */
static atomic_uint g_logged_mm;
static atomic_uchar g_err_seen[256]; /* connect errors already reported */

/* --- connection helpers ----------------------------------------------------- */

static int uses_stamps(void) { return cfg.mode != M_RATE; }

static void queue(thr *t, conn *c)
{
    if (!c->queued) {
        c->queued = 1;
        t->ready[t->nready++] = (uint32_t)(c - t->conns);
    }
}

/* Scheduled send time of the thread's k-th message (rate mode). */
static uint64_t sched_at(const thr *t, uint64_t k)
{
    return t->start + (uint64_t)((double)k * t->interval);
}

/* When message seq of c was sent (rate: scheduled to be sent). */
static uint64_t sent_time(const thr *t, const conn *c, uint64_t seq)
{
    if (cfg.mode == M_RATE)
        return sched_at(t, seq * t->nrot + c->rot);
    return c->ts[seq % cfg.depth];
}

static void conn_release(thr *t, conn *c)
{
    if (c->state == C_OPEN)
        t->nopen--;
    if (c->fd >= 0)
        close(c->fd); /* also removes it from the epoll set: the fd is not shared */
    c->fd = -1;
    c->state = cfg.mode == M_CHURN ? C_FREE : C_DONE;
    if (cfg.mode == M_CHURN)
        t->free[t->nfree++] = (uint32_t)(c - t->conns);
}

static void connect_failed(thr *t, conn *c, int err)
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
        fprintf(stderr, "weft-load: connect to %s port %u failed: %s\n", cfg.host, cfg.port,
                strerror(err));
    if (c->state == C_CONNECTING)
        t->inflight--;
    if (cfg.mode != M_CHURN)
        t->resolved++;
    conn_release(t, c);
}

static void connect_ok(thr *t, conn *c, uint64_t now)
{
    t->inflight--;
    if (cfg.mode != M_CHURN)
        t->resolved++;
    c->state = C_OPEN;
    t->nopen++;
    c->writable = 1;
    t->st.conn_ok++;
    lh_record(&t->st.conn_time, now - c->t_open);
    if (cfg.mode == M_CHURN) {
        c->quota = 1;
        queue(t, c);
    }
}

/* Starts a non-blocking connect on slot c; a failure is counted and released. */
static void conn_open(thr *t, conn *c, uint64_t now)
{
    c->gen++;
    c->state = C_CONNECTING;
    c->quota = c->wr = c->rd = 0;
    c->bad = c->writable = 0;
    c->t_open = now;
    t->inflight++;
    if (cfg.mode == M_CHURN)
        c->id = (uint32_t)(t->idx + cfg.threads * t->attempts);
    t->attempts++;

    int fd = socket(cfg.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_failed(t, c, errno);
        return;
    }
    c->fd = fd;
    int one = 1;
    /* Small echo messages must not wait for Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cfg.close_rst) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (cfg.sources) {
        /* Port choice deferred to connect(), so each source address has its
         * own ephemeral port space towards the one destination. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7F000001u + c->id % cfg.sources);
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
            connect_failed(t, c, errno);
            return;
        }
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)c->gen << 32 | (uint32_t)(c - t->conns)};
    if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        connect_failed(t, c, errno);
        return;
    }
    if (connect(fd, (struct sockaddr *)&cfg.dst, cfg.dstlen) < 0 && errno != EINPROGRESS)
        connect_failed(t, c, errno);
    /* Completion (even an immediate one) arrives as the output edge. */
}

/* The connection is lost for `counter`'s reason. */
static void conn_lost(thr *t, conn *c, uint64_t *counter)
{
    (*counter)++;
    conn_release(t, c);
}

static int outstanding(const conn *c) { return c->rd < c->quota * cfg.size; }

/* --- verification ----------------------------------------------------------- */

static uint32_t le32_at(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

static uint64_t le64_at(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

/*
 * Message seq of c was received with at least one wrong byte: count it by
 * kind. Returns 1 if the stream is still in step (one byte flipped, or only
 * the payload damaged: the next message starts where expected), 0 if the
 * connection was closed because its bytes were lost, duplicated, reordered
 * or mixed with another connection's, after which nothing on it can be
 * trusted.
 */
static int msg_bad(thr *t, conn *c, uint64_t seq)
{
    unsigned char want[HDR_SIZE];
    msg_fill(want, c->id, seq, cfg.size, 0, HDR_SIZE);
    uint32_t gid = le32_at(c->hdr), gsize = le32_at(c->hdr + 4);
    uint64_t gseq = le64_at(c->hdr + 8);
    const char *kind;
    int in_step = 0;
    if (c->bad == 1 || memcmp(want, c->hdr, HDR_SIZE) == 0) {
        kind = c->bad == 1 ? "one corrupted byte" : "corrupted payload";
        t->st.mm_corrupt++;
        in_step = 1;
    } else if (gsize == cfg.size && gid != c->id) {
        kind = "another connection's message";
        t->st.mm_cross++;
    } else if (gsize == cfg.size && gid == c->id) {
        kind = "wrong sequence number (loss, duplication or reordering)";
        t->st.mm_seq++;
    } else {
        kind = "corrupted header";
        t->st.mm_corrupt++;
    }
    if (atomic_fetch_add(&g_logged_mm, 1) < MAX_LOGGED)
        fprintf(stderr,
                "weft-load: mismatch on connection %" PRIu32 " message %" PRIu64
                ": %s; first wrong byte at offset %" PRIu32 "; header says connection %" PRIu32
                " message %" PRIu64 " size %" PRIu32 "\n",
                c->id, seq, kind, c->bad_off, gid, gseq, gsize);
    c->bad = 0;
    if (!in_step || cfg.mode == M_CHURN) {
        conn_release(t, c);
        return 0;
    }
    return 1;
}

/* Message seq of c arrived intact at `now`. Returns 0 if c was closed. */
static int msg_good(thr *t, conn *c, uint64_t seq, uint64_t now)
{
    stats *s = &t->st;
    uint64_t sent = sent_time(t, c, seq);
    s->msgs_all++;
    s->bytes_all += cfg.size;
    s->last_recv = now;
    int in_window = now >= t->warm_end && now <= t->run_end;
    if (in_window) {
        s->msgs++;
        s->bytes += cfg.size;
    }
    /* Latency from the (scheduled) send, so a stall delays every message
     * behind it in the statistics too: no coordinated omission. */
    if (sent >= t->warm_end && now >= sent)
        lh_record(&s->lat, now - sent);
    if (cfg.mode == M_FLOOD)
        s->check_ok++;
    if (cfg.mode == M_CHURN) {
        s->cycles++;
        s->cycles_win += in_window;
        conn_release(t, c);
        return 0;
    }
    return 1;
}

/* Checks n received bytes of c's stream. Returns 0 if c was closed. */
static int conn_input(thr *t, conn *c, const unsigned char *buf, size_t n, uint64_t now)
{
    const uint32_t size = cfg.size;
    if (c->rd + n > c->wr) {
        /* More bytes than were ever sent: the server invented some. */
        if (atomic_fetch_add(&g_logged_mm, 1) < MAX_LOGGED)
            fprintf(stderr,
                    "weft-load: mismatch on connection %" PRIu32 ": %" PRIu64
                    " bytes received but only %" PRIu64 " sent\n",
                    c->id, c->rd + n, c->wr);
        t->st.mm_extra++;
        conn_release(t, c);
        return 0;
    }
    while (n) {
        uint64_t seq = c->rd / size;
        uint32_t off = (uint32_t)(c->rd % size);
        size_t take = size - off < n ? size - off : n;
        if (off < HDR_SIZE)
            memcpy(c->hdr + off, buf, HDR_SIZE - off < take ? HDR_SIZE - off : take);
        msg_fill(t->exp, c->id, seq, size, off, take);
        if (memcmp(buf, t->exp, take) != 0) {
            /* Rare path: count wrong bytes (up to 2) and note the first. */
            for (size_t i = 0; i < take && c->bad < 2; i++)
                if (buf[i] != t->exp[i] && c->bad++ == 0)
                    c->bad_off = off + (uint32_t)i;
        }
        buf += take;
        n -= take;
        c->rd += take;
        if (off + take == size) {
            if (c->bad ? !msg_bad(t, c, seq) : !msg_good(t, c, seq, now))
                return 0;
        }
    }
    return 1;
}

/* Echo mode: keep `depth` messages in flight while the run lasts. */
static void echo_grant(thr *t, conn *c)
{
    if (t->phase != P_RUN)
        return;
    uint64_t want = c->rd / cfg.size + cfg.depth;
    if (want > c->quota) {
        uint64_t add = want - c->quota;
        if (add > t->budget)
            add = t->budget;
        t->budget -= add;
        c->quota += add;
        if (add)
            queue(t, c);
    }
}

/* Reads everything pending on c (edge-triggered: until a short read). */
static void conn_read(thr *t, conn *c, uint32_t events, uint64_t now)
{
    for (;;) {
        ssize_t n = recv(c->fd, t->rx, RX_SIZE, 0);
        if (n > 0) {
            if (!conn_input(t, c, t->rx, (size_t)n, now))
                return;
            /* A short read drained the socket; data arriving later raises a
             * new edge. With a half-close pending, read on to see the EOF. */
            if ((size_t)n < RX_SIZE && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                break;
        } else if (n == 0) {
            conn_lost(t, c, outstanding(c) ? &t->st.shorts : &t->st.peer_closed);
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
    if (cfg.mode == M_ECHO)
        echo_grant(t, c);
}

/* Sends whatever c's quota allows, in chunks of up to TX_CHUNK bytes. */
static void conn_flush(thr *t, conn *c, uint64_t now)
{
    const uint32_t size = cfg.size;
    uint64_t target = c->quota * size;
    while (c->writable && c->wr < target) {
        size_t len = target - c->wr < TX_CHUNK ? (size_t)(target - c->wr) : TX_CHUNK;
        stream_fill(t->tx, c->id, size, c->wr, len);
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
        if (uses_stamps()) {
            /* Stamp the messages whose first byte went out now. */
            uint64_t first = (c->wr + size - 1) / size;
            uint64_t end = (c->wr + (uint64_t)n + size - 1) / size;
            for (uint64_t m = first; m < end; m++)
                c->ts[m % cfg.depth] = now;
        }
        c->wr += (uint64_t)n;
    }
}

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
            connect_failed(t, c, err);
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
        queue(t, c);
    }
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_read(t, c, ev->events, now);
}

/* --- phases ----------------------------------------------------------------- */

/* Starts connects while the in-flight cap, the ramp and the budget allow. */
static void open_more(thr *t, uint64_t now)
{
    while (t->nfree && t->inflight < t->inflight_cap) {
        if (t->ramp_rate > 0 &&
            now < t->ramp_t0 + (uint64_t)((double)t->attempts * 1e9 / t->ramp_rate))
            break;
        if (cfg.mode == M_CHURN) {
            if (t->budget == 0)
                break;
            t->budget--;
        }
        conn_open(t, &t->conns[t->free[--t->nfree]], now);
    }
}

/* This thread's share of `total` in proportion to `mine` of `all` (exact:
 * the shares of all threads add up to total). */
static uint64_t share(uint64_t total, uint64_t before, uint64_t mine, uint64_t all)
{
    if (all == 0)
        return 0;
    long double a = (long double)total / all;
    return (uint64_t)(a * (before + mine)) - (uint64_t)(a * before);
}

static void begin_window(thr *t, uint64_t start)
{
    t->start = start;
    t->warm_end = start + secs_ns(cfg.warmup);
    t->run_end = cfg.have_duration ? start + secs_ns(cfg.duration) : UINT64_MAX;
}

/* Every thread has connected: start the run at the common start time. */
static void begin_run(thr *t, uint64_t start)
{
    uint64_t before = 0, all = 0;
    for (unsigned i = 0; i < cfg.threads; i++) {
        before += i < t->idx ? g_open[i] : 0;
        all += g_open[i];
    }
    uint32_t mine = g_open[t->idx];
    begin_window(t, start);
    t->budget = cfg.count ? share(cfg.count, before, mine, all) : UINT64_MAX;
    if (cfg.mode == M_FLOOD) {
        t->warm_end = 0;
        t->hold_end = start + secs_ns(cfg.hold);
        t->phase = P_HOLD;
        return;
    }
    t->phase = P_RUN;
    if (cfg.mode == M_ECHO) {
        for (uint32_t i = 0; i < t->nconns; i++)
            if (t->conns[i].state == C_OPEN)
                echo_grant(t, &t->conns[i]);
    } else { /* rate: this thread's share of the rate, round-robin over its connections */
        for (uint32_t i = 0; i < t->nconns; i++)
            if (t->conns[i].state == C_OPEN) {
                t->conns[i].rot = t->nrot;
                t->rot[t->nrot++] = i;
            }
        double my_rate = all ? cfg.rate * mine / all : 0;
        t->interval = my_rate > 0 ? 1e9 / my_rate : 0;
        t->k_limit = t->nrot ? t->budget : 0;
    }
}

/* Rate mode: hand out every message scheduled at or before `now`. */
static void rate_schedule(thr *t, uint64_t now)
{
    while (t->k_next < t->k_limit && sched_at(t, t->k_next) <= now) {
        conn *c = &t->conns[t->rot[t->k_next % t->nrot]];
        if (c->state == C_OPEN) {
            c->quota++;
            queue(t, c);
        } else {
            t->st.unsent++; /* its connection was lost (already counted) */
        }
        t->k_next++;
    }
}

static void begin_drain(thr *t, uint64_t now)
{
    t->phase = P_DRAIN;
    t->drain_end = now + secs_ns(cfg.timeout);
    t->next_drain_check = now;
}

/* Closes connections that wait longer than --timeout (connect or reply). */
static void expire(thr *t, uint64_t now, int all)
{
    uint64_t limit = secs_ns(cfg.timeout);
    for (uint32_t i = 0; i < t->nconns; i++) {
        conn *c = &t->conns[i];
        if (c->state == C_CONNECTING) {
            if (all || now - c->t_open > limit)
                connect_failed(t, c, ETIMEDOUT);
        } else if (c->state == C_OPEN && outstanding(c)) {
            if (all) {
                conn_lost(t, c, &t->st.timeouts);
                continue;
            }
            /* Not-yet-written messages have no send time except in rate mode. */
            if (cfg.mode != M_RATE && c->rd >= c->wr)
                continue;
            uint64_t sent = sent_time(t, c, c->rd / cfg.size);
            if (now > sent && now - sent > limit)
                conn_lost(t, c, &t->st.timeouts);
        }
    }
}

/* Whether every connection has been answered (and none is still connecting). */
static int all_answered(const thr *t)
{
    for (uint32_t i = 0; i < t->nconns; i++) {
        const conn *c = &t->conns[i];
        if (c->state == C_CONNECTING || (c->state == C_OPEN && outstanding(c)))
            return 0;
    }
    return 1;
}

static void connect_phase_done(thr *t, uint64_t now)
{
    uint32_t open = 0;
    for (uint32_t i = 0; i < t->nconns; i++)
        open += t->conns[i].state == C_OPEN;
    g_open[t->idx] = open;
    t->phase = P_WAIT;
    /* acq_rel: the last thread sees every g_open[] before it publishes the start. */
    if (atomic_fetch_sub_explicit(&g_connecting, 1, memory_order_acq_rel) == 1)
        atomic_store_explicit(&g_start, now, memory_order_release);
}

/* Advances the thread's phase, opens connections, schedules messages. */
static void thr_step(thr *t, uint64_t now)
{
    if (atomic_load_explicit(&g_stop, memory_order_relaxed) && t->phase < P_DRAIN) {
        t->nfree = 0; /* connect nothing more */
        if (t->phase == P_CONNECT)
            connect_phase_done(t, now);
        if (t->phase != P_WAIT)
            begin_drain(t, now);
    }
    if (now >= t->next_housekeep) {
        t->next_housekeep = now + HOUSEKEEP_NS;
        expire(t, now, 0);
    }
    switch (t->phase) {
    case P_CONNECT:
        open_more(t, now);
        if (t->resolved == t->nconns)
            connect_phase_done(t, now);
        break;
    case P_WAIT: {
        uint64_t s = atomic_load_explicit(&g_start, memory_order_acquire);
        if (s) {
            begin_run(t, s);
            if (atomic_load(&g_stop))
                begin_drain(t, now);
        }
        break;
    }
    case P_RUN:
        if (now >= t->run_end) {
            if (cfg.mode == M_RATE) /* what was due before the end still goes out */
                rate_schedule(t, t->run_end - 1);
            begin_drain(t, now);
            break;
        }
        if (cfg.mode == M_RATE) {
            rate_schedule(t, now);
            if (t->k_next >= t->k_limit)
                begin_drain(t, now);
        } else if (cfg.mode == M_ECHO) {
            if (t->budget == 0 || t->nopen == 0)
                begin_drain(t, now);
        } else { /* churn */
            open_more(t, now);
            if (t->budget == 0 || t->nconns == 0)
                begin_drain(t, now);
        }
        break;
    case P_HOLD:
        if (now >= t->hold_end) {
            /* Hold is over: one echo on every connection still open. */
            for (uint32_t i = 0; i < t->nconns; i++)
                if (t->conns[i].state == C_OPEN) {
                    t->conns[i].quota = 1;
                    queue(t, &t->conns[i]);
                }
            begin_drain(t, now);
        }
        break;
    case P_DRAIN:
        if (now >= t->drain_end) {
            expire(t, now, 1);
            t->phase = P_DONE;
        } else if (now >= t->next_drain_check) {
            t->next_drain_check = now + DRAIN_CHECK;
            if (all_answered(t))
                t->phase = P_DONE;
        }
        break;
    case P_DONE:
        break;
    }
}

/* Nanoseconds until the thread next has something to do without an event. */
static uint64_t thr_next_wake(const thr *t, uint64_t now)
{
    uint64_t at = t->next_housekeep;
#define SOONER(x)                                                                                  \
    do {                                                                                           \
        uint64_t x_ = (x);                                                                         \
        if (x_ < at)                                                                               \
            at = x_;                                                                               \
    } while (0)
    int connecting = t->phase == P_CONNECT || (t->phase == P_RUN && cfg.mode == M_CHURN);
    if (connecting && t->nfree && t->inflight < t->inflight_cap && t->ramp_rate > 0)
        SOONER(t->ramp_t0 + (uint64_t)((double)t->attempts * 1e9 / t->ramp_rate));
    switch (t->phase) {
    case P_WAIT:
        SOONER(now + 1000000);
        break; /* poll the barrier every 1 ms */
    case P_RUN:
        SOONER(t->run_end);
        if (cfg.mode == M_RATE && t->k_next < t->k_limit)
            SOONER(sched_at(t, t->k_next));
        break;
    case P_HOLD:
        SOONER(t->hold_end);
        break;
    case P_DRAIN:
        SOONER(t->drain_end);
        SOONER(t->next_drain_check);
        break;
    default:
        break;
    }
#undef SOONER
    return at > now ? at - now : 0;
}

static atomic_int g_have_pwait2 = 1; /* cleared on ENOSYS (kernel < 5.11) */

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

static void *thr_main(void *arg)
{
    thr *t = arg;
    struct epoll_event evs[MAX_EVENTS];
    uint64_t now = now_ns();
    t->ramp_t0 = now;
    t->next_housekeep = now + HOUSEKEEP_NS;
    if (cfg.mode == M_CHURN) {
        begin_window(t, g_t0);
        t->budget =
            cfg.count ? cfg.count / cfg.threads + (t->idx < cfg.count % cfg.threads) : UINT64_MAX;
        t->phase = P_RUN;
    }
    while (t->phase != P_DONE) {
        now = now_ns();
        thr_step(t, now);
        thr_flush(t, now);
        if (t->phase == P_DONE)
            break;
        int n = thr_wait(t, evs, thr_next_wake(t, now_ns()));
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

/* --- arguments -------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: weft-load MODE [options]\n"
            "\n"
            "Load generator for TCP echo servers. Every echoed byte is checked: each message\n"
            "carries its connection id and sequence number and a payload derived from them,\n"
            "so corruption, loss, reordering and cross-connection mixing are detected,\n"
            "reported, and never counted as throughput.\n"
            "\n"
            "Modes:\n"
            "  echo   closed loop: --conns connections, each keeping --depth messages of\n"
            "         --size bytes in flight; a reply releases the next message.\n"
            "  rate   open loop: --rate messages/s in total, round-robin over the\n"
            "         connections, on a fixed schedule; latency is measured from each\n"
            "         message's scheduled send time, so a stalled server is charged for\n"
            "         every message it delays (no coordinated omission).\n"
            "  flood  open --conns connections as fast as allowed, hold them idle for\n"
            "         --hold seconds, then check that each still answers one echo.\n"
            "  churn  connect, one request, close, repeatedly; --conns such cycles run\n"
            "         concurrently; bounded by --count cycles and/or --duration.\n"
            "\n"
            "Target:\n"
            "  --host ADDR            server address or name, IPv4 or IPv6 (default 127.0.0.1)\n"
            "  --port PORT            server port (default 7000)\n"
            "  --sources K            bind client sockets to 127.0.0.1 .. 127.0.0.K round-robin,\n"
            "                         K times the ephemeral ports (needed above ~28K\n"
            "                         connections to one port; IPv4 only; default: no bind)\n"
            "\n"
            "Load:\n"
            "  --conns N              connections (churn: concurrent cycles) (default 100;\n"
            "                         churn 16)\n"
            "  --depth D              echo: messages in flight per connection (default 1)\n"
            "  --size S               message size in bytes, 16 .. %u (default 64)\n"
            "  --rate R               rate: total messages per second (required)\n"
            "  --threads T            client threads (default 2)\n"
            "  --ramp R               connections opened per second (default 0: as fast as\n"
            "                         --connect-inflight allows)\n"
            "  --connect-inflight N   connects in progress at once, all threads (default 256)\n"
            "  --close-rst            churn: close with RST (SO_LINGER 0) instead of FIN, so\n"
            "                         no TIME_WAIT is left on the client side\n"
            "\n"
            "Bounds (every run stops by itself):\n"
            "  --duration SECONDS     length of the measured run after all connections are\n"
            "                         up (default 10, unless --count is given) (not flood)\n"
            "  --count N              echo/rate: total messages; churn: total cycles; with\n"
            "                         --duration, whichever comes first\n"
            "  --warmup SECONDS       first part of the run left out of throughput and\n"
            "                         latency (default 0)\n"
            "  --hold SECONDS         flood: how long to hold the connections (default 10)\n"
            "  --timeout SECONDS      a connect or a reply slower than this is an error,\n"
            "                         and the longest wait for replies at the end (default 5)\n"
            "\n"
            "Output:\n"
            "  --json                 print the results as one JSON object on stdout\n"
            "                         (diagnostics go to stderr)\n"
            "  -h, --help             this text\n"
            "\n"
            "Reported: messages/s and MB/s (verified echoed bytes received, 10^6 bytes)\n"
            "inside the window; latency p50/p90/p99/p99.9/max (log-linear histogram, within\n"
            "1%% from 1 us to 60 s); connect time statistics; connections established and\n"
            "failed (refused, timed out, no local address/port, other); errors by kind:\n"
            "mismatches (corrupted bytes, another connection's data, wrong sequence,\n"
            "extra bytes), resets, short (peer closed with replies outstanding), timeouts,\n"
            "peer-closed (an idle connection closed by the server).\n"
            "\n"
            "The soft RLIMIT_NOFILE is raised to the hard limit; the run is refused if\n"
            "the connections need more descriptors than that.\n"
            "\n"
            "Exit status: 0 when every message was verified and nothing failed; 1 on any\n"
            "mismatch, when fewer than --conns connections were established (echo, rate,\n"
            "flood), on any connect failure (churn), reset, short read, timeout, peer close,\n"
            "failed flood check, or when stopped early by SIGINT/SIGTERM (the report of what\n"
            "ran is still printed); 2 on bad arguments or a setup error.\n",
            MAX_SIZE);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft-load: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(weft-load --help describes every option)\n", stderr);
    exit(2);
}

static uint64_t parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        die_usage("%s: expected a whole number from %" PRIu64 " to %" PRIu64 ", got '%s'", opt, min,
                  max, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        die_usage("%s: expected a whole number from %" PRIu64 " to %" PRIu64 ", got '%s'", opt, min,
                  max, s);
    return v;
}

static double parse_secs(const char *opt, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        die_usage("%s: expected a number from %g to %g, got '%s'", opt, min, max, s);
    return v;
}

enum {
    O_HOST = 256,
    O_PORT,
    O_CONNS,
    O_DEPTH,
    O_SIZE,
    O_RATE,
    O_THREADS,
    O_SOURCES,
    O_RAMP,
    O_INFLIGHT,
    O_DURATION,
    O_COUNT,
    O_WARMUP,
    O_HOLD,
    O_TIMEOUT,
    O_JSON,
    O_RST,
};

static void resolve(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res;
    char port[16];
    snprintf(port, sizeof(port), "%u", cfg.port);
    int rc = getaddrinfo(cfg.host, port, &hints, &res);
    if (rc != 0)
        die_usage("--host %s: %s", cfg.host, gai_strerror(rc));
    memcpy(&cfg.dst, res->ai_addr, res->ai_addrlen);
    cfg.dstlen = res->ai_addrlen;
    cfg.family = res->ai_family;
    freeaddrinfo(res);
}

static void parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"conns", required_argument, 0, O_CONNS},
        {"depth", required_argument, 0, O_DEPTH},
        {"size", required_argument, 0, O_SIZE},
        {"rate", required_argument, 0, O_RATE},
        {"threads", required_argument, 0, O_THREADS},
        {"sources", required_argument, 0, O_SOURCES},
        {"ramp", required_argument, 0, O_RAMP},
        {"connect-inflight", required_argument, 0, O_INFLIGHT},
        {"duration", required_argument, 0, O_DURATION},
        {"count", required_argument, 0, O_COUNT},
        {"warmup", required_argument, 0, O_WARMUP},
        {"hold", required_argument, 0, O_HOLD},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"json", no_argument, 0, O_JSON},
        {"close-rst", no_argument, 0, O_RST},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int seen[O_RST + 1] = {0};
    cfg.host = "127.0.0.1";
    cfg.port = 7000;
    cfg.depth = 1;
    cfg.size = 64;
    cfg.threads = 2;
    cfg.connect_inflight = 256;
    cfg.duration = 10;
    cfg.hold = 10;
    cfg.timeout = 5;

    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *name = o >= O_HOST && o <= O_RST ? opts[o - O_HOST].name : "";
        char opt[40];
        snprintf(opt, sizeof(opt), "--%s", name);
        if (o >= O_HOST && o <= O_RST)
            seen[o] = 1;
        switch (o) {
        case O_HOST:
            cfg.host = optarg;
            break;
        case O_PORT:
            cfg.port = (unsigned)parse_uint(opt, optarg, 1, 65535);
            break;
        case O_CONNS:
            cfg.conns = (uint32_t)parse_uint(opt, optarg, 1, 10000000);
            break;
        case O_DEPTH:
            cfg.depth = (uint32_t)parse_uint(opt, optarg, 1, 65536);
            break;
        case O_SIZE:
            cfg.size = (uint32_t)parse_uint(opt, optarg, HDR_SIZE, MAX_SIZE);
            break;
        case O_RATE:
            cfg.rate = parse_secs(opt, optarg, 1e-3, 1e9);
            break;
        case O_THREADS:
            cfg.threads = (uint32_t)parse_uint(opt, optarg, 1, 256);
            break;
        case O_SOURCES:
            cfg.sources = (uint32_t)parse_uint(opt, optarg, 1, 254);
            break;
        case O_RAMP:
            cfg.ramp = parse_secs(opt, optarg, 0, 1e9);
            break;
        case O_INFLIGHT:
            cfg.connect_inflight = (uint32_t)parse_uint(opt, optarg, 1, 1000000);
            break;
        case O_DURATION:
            cfg.duration = parse_secs(opt, optarg, 0.001, 86400);
            break;
        case O_COUNT:
            cfg.count = parse_uint(opt, optarg, 1, UINT64_MAX / 2);
            break;
        case O_WARMUP:
            cfg.warmup = parse_secs(opt, optarg, 0, 86400);
            break;
        case O_HOLD:
            cfg.hold = parse_secs(opt, optarg, 0, 86400);
            break;
        case O_TIMEOUT:
            cfg.timeout = parse_secs(opt, optarg, 0.001, 3600);
            break;
        case O_JSON:
            cfg.json = 1;
            break;
        case O_RST:
            cfg.close_rst = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            die_usage("unknown option or missing value (see above)");
        }
    }
    if (optind >= argc)
        die_usage("missing MODE: one of echo, rate, flood, churn");
    const char *m = argv[optind++];
    int found = 0;
    for (int i = 0; i < 4; i++)
        if (strcmp(m, mode_names[i]) == 0) {
            cfg.mode = (enum mode)i;
            found = 1;
        }
    if (!found)
        die_usage("unknown mode '%s': expected echo, rate, flood or churn", m);
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);

    /* Options that mean nothing in this mode are refused, not ignored. */
    if (seen[O_DEPTH] && cfg.mode != M_ECHO)
        die_usage("--depth applies to echo mode only");
    if (seen[O_RATE] && cfg.mode != M_RATE)
        die_usage("--rate applies to rate mode only");
    if (cfg.mode == M_RATE && !seen[O_RATE])
        die_usage("rate mode needs --rate MSGS_PER_SECOND");
    if (seen[O_HOLD] && cfg.mode != M_FLOOD)
        die_usage("--hold applies to flood mode only");
    if (cfg.mode == M_FLOOD && (seen[O_DURATION] || seen[O_COUNT] || seen[O_WARMUP]))
        die_usage("flood mode runs for --hold; --duration, --count and --warmup do not apply");
    if (seen[O_RST] && cfg.mode != M_CHURN)
        die_usage("--close-rst applies to churn mode only");

    if (!seen[O_CONNS])
        cfg.conns = cfg.mode == M_CHURN ? 16 : 100;
    /* --count alone bounds the run by count; the reply timeout still ends it
     * if the server stops answering. */
    cfg.have_duration = cfg.mode != M_FLOOD && (seen[O_DURATION] || !seen[O_COUNT]);
    if (cfg.have_duration && cfg.warmup >= cfg.duration)
        die_usage("--warmup (%g s) must be shorter than --duration (%g s)", cfg.warmup,
                  cfg.duration);
    if (cfg.threads > cfg.conns)
        cfg.threads = cfg.conns; /* a thread without connections has nothing to do */

    resolve();
    if (cfg.sources && cfg.family != AF_INET)
        die_usage("--sources binds to 127.0.0.x, so it needs an IPv4 --host (got %s)", cfg.host);
}

/* Raises the soft descriptor limit to the hard one and checks it suffices. */
static void check_limits(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "weft-load: getrlimit: %s\n", strerror(errno));
        exit(2);
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            fprintf(stderr, "weft-load: setrlimit(RLIMIT_NOFILE, %llu): %s\n",
                    (unsigned long long)rl.rlim_max, strerror(errno));
            exit(2);
        }
    }
    /* stdio, one epoll set per thread, and a little slack. */
    uint64_t need = (uint64_t)cfg.conns + cfg.threads + 8;
    if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
        fprintf(stderr,
                "weft-load: --conns %" PRIu32 " needs about %" PRIu64
                " file descriptors, but the hard limit (ulimit -Hn) is %llu; lower --conns or "
                "raise the hard limit\n",
                cfg.conns, need, (unsigned long long)rl.rlim_cur);
        exit(2);
    }
    /* Ports: one destination gives each source address one ephemeral range. */
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    unsigned lo, hi;
    if (f && fscanf(f, "%u %u", &lo, &hi) == 2 && hi >= lo && cfg.mode != M_CHURN) {
        uint64_t ports = (uint64_t)(hi - lo + 1) * (cfg.sources ? cfg.sources : 1);
        if (cfg.conns > ports) {
            fprintf(stderr,
                    "weft-load: --conns %" PRIu32 " exceeds the %" PRIu64
                    " local ports available towards one server port (ip_local_port_range %u-%u"
                    "%s); use --sources K to spread over 127.0.0.1..K\n",
                    cfg.conns, ports, lo, hi, cfg.sources ? ", per source" : "");
            exit(2);
        }
    }
    if (f)
        fclose(f);
}

/* --- report ----------------------------------------------------------------- */

typedef struct totals {
    stats s;
    uint64_t conn_fail, mismatches, window_ns, last_recv;
    double msgs_per_s, mb_per_s, cycles_per_s;
    int ok;
    char why[256];
} totals;

static void add_why(totals *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_why(totals *r, const char *fmt, ...)
{
    size_t len = strlen(r->why);
    if (len + 3 >= sizeof(r->why))
        return;
    if (len)
        strcat(r->why, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why + strlen(r->why), sizeof(r->why) - strlen(r->why), fmt, ap);
    va_end(ap);
}

static void tally(totals *r)
{
    memset(r, 0, sizeof(*r));
    stats *s = &r->s;
    lh_init(&s->lat);
    lh_init(&s->conn_time);
    uint64_t start = UINT64_MAX, warm_end = 0, run_end = 0;
    for (unsigned i = 0; i < cfg.threads; i++) {
        const stats *x = &g_thr[i].st;
        uint64_t *dst = &s->msgs;
        const uint64_t *src = &x->msgs;
        /* Every field from msgs to unsent is a plain counter. */
        for (size_t k = 0; k < offsetof(stats, last_recv) / sizeof(uint64_t); k++)
            dst[k] += src[k];
        if (x->last_recv > r->last_recv)
            r->last_recv = x->last_recv;
        lh_merge(&s->lat, &x->lat);
        lh_merge(&s->conn_time, &x->conn_time);
        if (g_thr[i].start && g_thr[i].start < start) {
            start = g_thr[i].start;
            warm_end = g_thr[i].warm_end;
            run_end = g_thr[i].run_end;
        }
    }
    r->conn_fail = s->fail_refused + s->fail_timeout + s->fail_noaddr + s->fail_other;
    r->mismatches = s->mm_corrupt + s->mm_cross + s->mm_seq + s->mm_extra;
    /* The window ends at --duration, or with the last reply when --count
     * (or a signal) ended the run sooner. A flood has no throughput window:
     * its one message per connection is a check, not load. */
    uint64_t end = run_end < r->last_recv ? run_end : r->last_recv;
    r->window_ns =
        cfg.mode != M_FLOOD && start != UINT64_MAX && end > warm_end ? end - warm_end : 0;
    if (r->window_ns) {
        double secs = (double)r->window_ns / 1e9;
        r->msgs_per_s = (double)s->msgs / secs;
        r->mb_per_s = (double)s->bytes / secs / 1e6;
        r->cycles_per_s = (double)s->cycles_win / secs;
    }

    if (r->mismatches)
        add_why(r, "%" PRIu64 " mismatched messages", r->mismatches);
    if (cfg.mode != M_CHURN && s->conn_ok < cfg.conns)
        add_why(r, "%" PRIu64 " of %" PRIu32 " connections established", s->conn_ok, cfg.conns);
    if (cfg.mode == M_CHURN && r->conn_fail)
        add_why(r, "%" PRIu64 " connect failures", r->conn_fail);
    if (s->resets + s->shorts + s->timeouts + s->peer_closed)
        add_why(r,
                "connections lost: %" PRIu64 " resets, %" PRIu64 " short, %" PRIu64
                " timeouts, %" PRIu64 " closed by peer",
                s->resets, s->shorts, s->timeouts, s->peer_closed);
    if (cfg.mode == M_FLOOD && s->check_ok < cfg.conns)
        add_why(r, "%" PRIu64 " of %" PRIu32 " connections answered after the hold", s->check_ok,
                cfg.conns);
    if (atomic_load(&g_stop))
        add_why(r, "interrupted");
    r->ok = r->why[0] == '\0';
}

static void print_hist_line(const char *name, const lhist *h)
{
    if (h->count == 0) {
        printf("%-12s none\n", name);
        return;
    }
    printf("%-12s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f us  (%" PRIu64
           " samples)\n",
           name, lh_percentile(h, 50) / 1e3, lh_percentile(h, 90) / 1e3, lh_percentile(h, 99) / 1e3,
           lh_percentile(h, 99.9) / 1e3, h->max / 1e3, lh_mean(h) / 1e3, h->count);
}

static void report_text(const totals *r)
{
    const stats *s = &r->s;
    printf("weft-load %s  %s port %u  conns %" PRIu32, mode_names[cfg.mode], cfg.host, cfg.port,
           cfg.conns);
    if (cfg.mode == M_ECHO)
        printf("  depth %" PRIu32, cfg.depth);
    if (cfg.mode == M_RATE)
        printf("  rate %g/s", cfg.rate);
    printf("  size %" PRIu32 "  threads %" PRIu32, cfg.size, cfg.threads);
    if (cfg.mode == M_FLOOD)
        printf("  hold %g s\n", cfg.hold);
    else
        printf("  window %.3f s (warmup %g s)\n", (double)r->window_ns / 1e9, cfg.warmup);
    printf("connections  %" PRIu64 " established, %" PRIu64 " failed (refused %" PRIu64
           ", timeout %" PRIu64 ", no local address %" PRIu64 ", other %" PRIu64 ")\n",
           s->conn_ok, r->conn_fail, s->fail_refused, s->fail_timeout, s->fail_noaddr,
           s->fail_other);
    print_hist_line("connect", &s->conn_time);
    if (cfg.mode == M_FLOOD) {
        printf("check        %" PRIu64 " of %" PRIu32 " connections answered after the hold\n",
               s->check_ok, cfg.conns);
        print_hist_line("check lat.", &s->lat);
    } else {
        if (cfg.mode == M_CHURN)
            printf("cycles       %" PRIu64 " (%" PRIu64 " in window, %.0f/s)\n", s->cycles,
                   s->cycles_win, r->cycles_per_s);
        printf("throughput   %.0f msg/s, %.2f MB/s  (%" PRIu64 " messages in window, %" PRIu64
               " verified in all)\n",
               r->msgs_per_s, r->mb_per_s, s->msgs, s->msgs_all);
        print_hist_line("latency", &s->lat);
    }
    printf("errors       mismatches %" PRIu64 " (corrupt %" PRIu64 ", cross-connection %" PRIu64
           ", sequence %" PRIu64 ", extra %" PRIu64 "), connect failures %" PRIu64
           ", resets %" PRIu64 ", short %" PRIu64 ", timeouts %" PRIu64 ", closed by peer %" PRIu64
           "\n",
           r->mismatches, s->mm_corrupt, s->mm_cross, s->mm_seq, s->mm_extra, r->conn_fail,
           s->resets, s->shorts, s->timeouts, s->peer_closed);
    if (r->ok)
        printf("result       OK\n");
    else
        printf("result       FAIL: %s\n", r->why);
}

static void json_hist(const char *name, const lhist *h)
{
    printf("\"%s\":{\"count\":%" PRIu64 ",\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
           "\"p999\":%.3f,\"max\":%.3f}",
           name, h->count, lh_mean(h) / 1e3, lh_percentile(h, 50) / 1e3, lh_percentile(h, 90) / 1e3,
           lh_percentile(h, 99) / 1e3, lh_percentile(h, 99.9) / 1e3, h->max / 1e3);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void report_json(const totals *r)
{
    const stats *s = &r->s;
    printf("{\"mode\":\"%s\",\"host\":", mode_names[cfg.mode]);
    json_string(cfg.host);
    printf(",\"port\":%u,\"conns\":%" PRIu32 ",\"depth\":%" PRIu32 ",\"size\":%" PRIu32
           ",\"rate\":%g,\"threads\":%" PRIu32 ",\"sources\":%" PRIu32
           ",\"duration_s\":%g,\"warmup_s\":%g,\"count\":%" PRIu64 ",\"window_s\":%.6f,",
           cfg.port, cfg.conns, cfg.mode == M_ECHO ? cfg.depth : 1, cfg.size, cfg.rate, cfg.threads,
           cfg.sources, cfg.have_duration ? cfg.duration : 0, cfg.warmup, cfg.count,
           (double)r->window_ns / 1e9);
    printf("\"messages\":%" PRIu64 ",\"messages_verified\":%" PRIu64 ",\"messages_unsent\":%" PRIu64
           ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,",
           s->msgs, s->msgs_all, s->unsent, r->msgs_per_s, r->mb_per_s);
    printf("\"connections\":{\"requested\":%" PRIu32 ",\"established\":%" PRIu64
           ",\"failed\":%" PRIu64 ",\"failed_refused\":%" PRIu64 ",\"failed_timeout\":%" PRIu64
           ",\"failed_noaddr\":%" PRIu64 ",\"failed_other\":%" PRIu64 "},",
           cfg.conns, s->conn_ok, r->conn_fail, s->fail_refused, s->fail_timeout, s->fail_noaddr,
           s->fail_other);
    json_hist("connect_us", &s->conn_time);
    putchar(',');
    json_hist("latency_us", &s->lat);
    printf(",\"errors\":{\"mismatches\":%" PRIu64 ",\"mismatch_corrupt\":%" PRIu64
           ",\"mismatch_cross_connection\":%" PRIu64 ",\"mismatch_sequence\":%" PRIu64
           ",\"mismatch_extra\":%" PRIu64 ",\"connect_failures\":%" PRIu64 ",\"resets\":%" PRIu64
           ",\"short\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"peer_closed\":%" PRIu64 "}",
           r->mismatches, s->mm_corrupt, s->mm_cross, s->mm_seq, s->mm_extra, r->conn_fail,
           s->resets, s->shorts, s->timeouts, s->peer_closed);
    if (cfg.mode == M_FLOOD)
        printf(",\"flood\":{\"hold_s\":%g,\"check_ok\":%" PRIu64 ",\"check_failed\":%" PRIu64 "}",
               cfg.hold, s->check_ok, cfg.conns - s->check_ok);
    if (cfg.mode == M_CHURN)
        printf(",\"churn\":{\"cycles\":%" PRIu64 ",\"cycles_in_window\":%" PRIu64
               ",\"cycles_per_s\":%.1f}",
               s->cycles, s->cycles_win, r->cycles_per_s);
    printf(",\"ok\":%s,\"failure\":", r->ok ? "true" : "false");
    json_string(r->why);
    printf("}\n");
}

/* --- main ------------------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, 1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "weft-load: out of memory (%zu x %zu bytes)\n", n, size);
        exit(2);
    }
    return p;
}

static void thr_init(thr *t, unsigned idx)
{
    t->idx = idx;
    t->nconns = cfg.conns / cfg.threads + (idx < cfg.conns % cfg.threads);
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    if (t->ep < 0) {
        fprintf(stderr, "weft-load: epoll_create1: %s\n", strerror(errno));
        exit(2);
    }
    t->conns = xcalloc(t->nconns, sizeof(conn));
    t->ready = xcalloc(t->nconns, sizeof(uint32_t));
    t->free = xcalloc(t->nconns, sizeof(uint32_t));
    t->rot = xcalloc(t->nconns, sizeof(uint32_t));
    uint64_t *ts = uses_stamps() ? xcalloc((size_t)t->nconns * cfg.depth, sizeof(uint64_t)) : 0;
    for (uint32_t i = 0; i < t->nconns; i++) {
        conn *c = &t->conns[i];
        c->fd = -1;
        c->id = idx + cfg.threads * i; /* connection ids 0 .. conns-1 */
        c->ts = ts ? ts + (size_t)i * cfg.depth : NULL;
        t->free[t->nconns - 1 - i] = i; /* slot 0 pops first */
    }
    t->nfree = t->nconns;
    t->inflight_cap = (cfg.connect_inflight + cfg.threads - 1) / cfg.threads;
    t->ramp_rate = cfg.ramp / cfg.threads;
    t->rx = xcalloc(1, RX_SIZE);
    t->exp = xcalloc(1, RX_SIZE);
    t->tx = xcalloc(1, TX_CHUNK);
    lh_init(&t->st.lat);
    lh_init(&t->st.conn_time);
    t->phase = P_CONNECT;
}

static void thr_free(thr *t)
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

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    check_limits();

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    g_thr = xcalloc(cfg.threads, sizeof(thr));
    g_open = xcalloc(cfg.threads, sizeof(uint32_t));
    atomic_store(&g_connecting, cfg.threads);
    for (unsigned i = 0; i < cfg.threads; i++)
        thr_init(&g_thr[i], i);
    g_t0 = now_ns();
    for (unsigned i = 0; i < cfg.threads; i++) {
        int rc = pthread_create(&g_thr[i].tid, NULL, thr_main, &g_thr[i]);
        if (rc != 0) {
            fprintf(stderr, "weft-load: pthread_create: %s\n", strerror(rc));
            exit(2);
        }
    }
    for (unsigned i = 0; i < cfg.threads; i++)
        pthread_join(g_thr[i].tid, NULL);

    totals *r = xcalloc(1, sizeof(*r));
    tally(r);
    if (cfg.json)
        report_json(r);
    else
        report_text(r);
    int rc = r->ok ? 0 : 1;
    free(r);
    for (unsigned i = 0; i < cfg.threads; i++)
        thr_free(&g_thr[i]);
    free(g_thr);
    free(g_open);
    return rc;
}
