/*
 * tests/itl_echo.c — deterministic data (a seeded PRNG and byte stream)
 * and the random echo conversation (see itlib.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itlib.h"

uint64_t itl_rng_next(itl_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t itl_rng_range(itl_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + itl_rng_next(r) % (hi - lo + 1);
}

uint64_t itl_rng_logsize(itl_rng *r, uint64_t max)
{
    int bits = 0;
    while (bits < 63 && (1ULL << (bits + 1)) <= max)
        bits++;
    uint64_t top = 1ULL << itl_rng_range(r, 0, (uint64_t)bits);
    uint64_t v = itl_rng_range(r, top, top * 2 - 1);
    return v > max ? max : v;
}

void itl_stream_init(itl_stream *st, uint64_t seed)
{
    st->rng.s = seed;
    st->left = 0;
    st->pos = 0;
    st->word = 0;
}

static unsigned char stream_byte(itl_stream *st)
{
    if (st->left == 0) {
        st->word = itl_rng_next(&st->rng);
        st->left = 8;
    }
    unsigned char b = (unsigned char)st->word;
    st->word >>= 8;
    st->left--;
    st->pos++;
    return b;
}

void itl_stream_fill(itl_stream *st, void *buf, size_t n)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = stream_byte(st);
}

long itl_stream_verify(itl_stream *st, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < n; i++)
        if (stream_byte(st) != p[i])
            return (long)i;
    return -1;
}

/* ---- the random echo conversation ------------------------------------------ */

#define ECHO_CHUNK_MAX (256 * 1024)

typedef struct echo_conn {
    int fd;
    itl_stream tx, rx;
    itl_rng rng;       /* chunk and read sizes, message sizes */
    uint64_t total;    /* bytes to send */
    uint64_t sent;     /* bytes produced into txbuf so far */
    uint64_t received; /* bytes verified */
    uint64_t msg_left; /* bytes left of the current message */
    uint64_t msgs, writes, reads;
    char *txbuf;
    size_t tx_off, tx_len;
} echo_conn;

/* Next message size: mostly small, some medium, some up to max. */
static uint64_t msg_size(itl_rng *r, uint64_t max)
{
    uint64_t k = itl_rng_next(r) % 10;
    uint64_t hi = k < 5 ? 512 : k < 8 ? 65536 : max;
    return itl_rng_range(r, 1, hi < max ? hi : max);
}

/*
 * Produce the next write: a random target size, filled message by message.
 * A large message is split over several writes; small ones are coalesced,
 * and half the time the write ends at a message boundary.
 */
static void next_chunk(echo_conn *c, uint64_t max_msg)
{
    uint64_t target = itl_rng_logsize(&c->rng, ECHO_CHUNK_MAX);
    int align = (int)(itl_rng_next(&c->rng) & 1);
    size_t n = 0;
    while (n < target && c->sent + n < c->total) {
        if (c->msg_left == 0) {
            c->msg_left = msg_size(&c->rng, max_msg);
            c->msgs++;
        }
        uint64_t take = c->msg_left;
        if (take > target - n)
            take = target - n;
        if (take > c->total - c->sent - n)
            take = c->total - c->sent - n;
        n += (size_t)take;
        c->msg_left -= take;
        if (align && c->msg_left == 0)
            break;
    }
    itl_stream_fill(&c->tx, c->txbuf, n);
    c->sent += n;
    c->tx_off = 0;
    c->tx_len = n;
}

/* Write what the socket takes; 0, or -errno on a real error. */
static int echo_write(echo_conn *c, uint64_t max_msg)
{
    for (int i = 0; i < 8; i++) {
        if (c->tx_off == c->tx_len) {
            if (c->sent == c->total)
                return 0;
            next_chunk(c, max_msg);
        }
        ssize_t w = send(c->fd, c->txbuf + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        c->writes++;
        c->tx_off += (size_t)w;
        if (c->tx_off < c->tx_len)
            return 0; /* the socket is full */
    }
    return 0;
}

/* Read and verify what arrived; 0, -EPIPE at an early EOF, -EBADMSG, -errno. */
static int echo_read(echo_conn *c, char *buf, int idx)
{
    for (int i = 0; i < 8 && c->received < c->total; i++) {
        size_t want = (size_t)itl_rng_logsize(&c->rng, ECHO_CHUNK_MAX);
        ssize_t r = read(c->fd, buf, want);
        if (r == 0)
            return -EPIPE;
        if (r < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        c->reads++;
        if (c->received + (uint64_t)r > c->sent) {
            fprintf(stderr, "conn %d: %llu bytes echoed but only %llu sent\n", idx,
                    (unsigned long long)(c->received + (uint64_t)r), (unsigned long long)c->sent);
            return -EBADMSG;
        }
        long bad = itl_stream_verify(&c->rx, buf, (size_t)r);
        if (bad >= 0) {
            fprintf(stderr, "conn %d: echoed byte %llu differs from what was sent\n", idx,
                    (unsigned long long)(c->received + (uint64_t)bad));
            return -EBADMSG;
        }
        c->received += (uint64_t)r;
        if ((size_t)r < want)
            return 0;
    }
    return 0;
}

uint64_t itl_echo_random(const char *host, uint16_t port, int nconns, uint64_t per_conn,
                         uint64_t max_msg, uint64_t seed, int timeout_ms)
{
    echo_conn *cs = calloc((size_t)nconns, sizeof(*cs));
    struct pollfd *pf = calloc((size_t)nconns, sizeof(*pf));
    char *rxbuf = malloc(ECHO_CHUNK_MAX);
    IT_CHECK(cs && pf && rxbuf, "out of memory");
    for (int i = 0; i < nconns; i++) {
        echo_conn *c = &cs[i];
        c->fd = itl_connect(host, port, 5000, 0);
        IT_CHECK(c->fd >= 0, "connect %s port %u: %s", host, port, strerror(-c->fd));
        uint64_t s = seed * 1000003ULL + (uint64_t)i;
        itl_stream_init(&c->tx, s);
        itl_stream_init(&c->rx, s);
        c->rng.s = ~s;
        c->total = per_conn;
        c->txbuf = malloc(ECHO_CHUNK_MAX);
        IT_CHECK(c->txbuf, "out of memory");
    }
    int64_t deadline = itl_now_ms() + timeout_ms;
    int done = 0;
    while (done < nconns) {
        IT_CHECK(itl_now_ms() < deadline, "echo not complete after %d ms", timeout_ms);
        int n = 0;
        for (int i = 0; i < nconns; i++) {
            echo_conn *c = &cs[i];
            if (c->received == c->total)
                continue;
            pf[n].fd = c->fd;
            pf[n].events = POLLIN;
            if (c->sent < c->total || c->tx_off < c->tx_len)
                pf[n].events |= POLLOUT;
            pf[n].revents = 0;
            n++;
        }
        int r = poll(pf, (nfds_t)n, 200);
        IT_CHECK(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
        if (r <= 0)
            continue;
        for (int k = 0, i = 0; k < n; k++) {
            while (cs[i].fd != pf[k].fd)
                i++;
            echo_conn *c = &cs[i];
            if (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                int e = echo_read(c, rxbuf, i);
                IT_CHECK(e == 0, "conn %d: read after %llu of %llu bytes: %s", i,
                         (unsigned long long)c->received, (unsigned long long)c->total,
                         e == -EPIPE ? "early EOF" : strerror(-e));
                if (c->received == c->total)
                    done++;
            }
            if (pf[k].revents & POLLOUT) {
                int e = echo_write(c, max_msg);
                IT_CHECK(e == 0, "conn %d: write: %s", i, strerror(-e));
            }
        }
    }
    uint64_t total = 0, msgs = 0, writes = 0, reads = 0;
    for (int i = 0; i < nconns; i++) {
        total += cs[i].received;
        msgs += cs[i].msgs;
        writes += cs[i].writes;
        reads += cs[i].reads;
        close(cs[i].fd);
        free(cs[i].txbuf);
    }
    fprintf(stderr,
            "echo %s port %u: %d conns, %llu bytes, %llu messages, %llu writes, %llu reads\n", host,
            port, nconns, (unsigned long long)total, (unsigned long long)msgs,
            (unsigned long long)writes, (unsigned long long)reads);
    free(cs);
    free(pf);
    free(rxbuf);
    return total;
}
