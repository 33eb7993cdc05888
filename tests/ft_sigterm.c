/*
 * tests/ft_sigterm.c — SIGTERM under load.
 *
 * N connections pump data through weft-echo (each writes a seeded stream
 * and reads its echo, up to 256 KiB outstanding) when the server gets
 * SIGTERM. The connections keep writing and reading until the server's
 * end of the stream. An orderly stop means: the server stops reading,
 * flushes the echo of everything it had read, and closes with a FIN.
 *
 * Asserts, for every connection: what came back is exactly a prefix of
 * what was sent (every byte checked), and it ended with a clean EOF, never
 * a reset. Over all connections: the bytes received equal the bytes the
 * server says it echoed (its last line "weft-echo: stopped: ... N bytes out
 * echoed"), so nothing the server sent was lost; the server exits 0.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ft_lib.h"

#define CHUNK       16384
#define OUTSTANDING (256 * 1024)

typedef struct pconn {
    int fd;
    itl_stream tx, rx;
    uint64_t sent, got;
    int eof, reset;
} pconn;

static const char *const args[] = {"--workers", "2", "--shutdown-timeout", "5000", NULL};

/* Read the server's stdout for the "stopped:" line; returns 1 at its EOF. */
static int read_server_out(int fd, char *acc, size_t cap, size_t *len)
{
    for (;;) {
        ssize_t r = read(fd, acc + *len, cap - 1 - *len);
        if (r > 0) {
            *len += (size_t)r;
            acc[*len] = '\0';
            if (*len + 1 >= cap) { /* keep the tail only */
                memmove(acc, acc + cap / 2, *len - cap / 2 + 1);
                *len -= cap / 2;
            }
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        return r == 0;
    }
}

int main(int argc, char **argv)
{
    ft_opts o;
    ft_parse(argc, argv, 0, 50, &o);
    ft_need_fds(o.n + 64);
    if (o.baseline_ms > 0) {
        printf("FT_RESULT fault=sigterm mode=baseline n=%ld ms=0 msgs=0 mismatches=0 errors=0 "
               "p50_us=0 p99_us=0 max_us=0\n",
               o.n);
        return 0;
    }
    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o.echo, args, sock, NULL);

    int n = (int)o.n;
    pconn *c = calloc((size_t)n, sizeof(*c));
    struct pollfd *pf = calloc((size_t)n + 1, sizeof(*pf));
    char *buf = malloc(CHUNK), *tx = malloc(CHUNK);
    IT_CHECK(c && pf && buf && tx, "out of memory");
    for (int i = 0; i < n; i++) {
        c[i].fd = itl_connect("127.0.0.1", srv.port, 5000, 0);
        IT_CHECK(c[i].fd >= 0, "connect %d: %s", i, strerror(-c[i].fd));
        itl_stream_init(&c[i].tx, 1000 + (uint64_t)i);
        itl_stream_init(&c[i].rx, 1000 + (uint64_t)i);
    }
    char out[8192];
    size_t outlen = 0;
    out[0] = '\0';
    int64_t start = itl_now_ms(), term_at = 0;
    int done = 0, server_eof = 0;
    uint64_t before_term = 0;
    while ((done < n || !server_eof) && itl_now_ms() - start < 30000) {
        if (!term_at && itl_now_ms() - start >= 1500) {
            for (int i = 0; i < n; i++)
                before_term += c[i].got;
            IT_CHECK(before_term > 0, "no traffic before the SIGTERM");
            term_at = itl_now_ms();
            kill(srv.pid, SIGTERM);
        }
        for (int i = 0; i < n; i++) {
            pf[i].fd = c[i].eof || c[i].reset ? -1 : c[i].fd;
            pf[i].events = POLLIN;
            if (c[i].sent - c[i].got < OUTSTANDING)
                pf[i].events |= POLLOUT;
            pf[i].revents = 0;
        }
        pf[n].fd = server_eof ? -1 : srv.out_fd;
        pf[n].events = POLLIN;
        pf[n].revents = 0;
        int r = poll(pf, (nfds_t)n + 1, 100);
        IT_CHECK(r >= 0 || errno == EINTR, "poll");
        if (pf[n].revents)
            server_eof = read_server_out(srv.out_fd, out, sizeof(out), &outlen);
        for (int i = 0; i < n; i++) {
            pconn *p = &c[i];
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t k = read(p->fd, buf, CHUNK);
                if (k > 0) {
                    IT_CHECK(p->got + (uint64_t)k <= p->sent, "conn %d: more echoed than sent", i);
                    long bad = itl_stream_verify(&p->rx, buf, (size_t)k);
                    IT_CHECK(bad < 0, "conn %d: echoed byte %llu differs", i,
                             (unsigned long long)(p->got + (uint64_t)bad));
                    p->got += (uint64_t)k;
                } else if (k == 0) {
                    IT_CHECK(term_at, "conn %d: EOF before the SIGTERM", i);
                    p->eof = 1;
                    done++;
                    close(p->fd); /* our FIN ends the server's lingering close */
                    p->fd = -1;
                } else if (errno != EAGAIN && errno != EINTR) {
                    fprintf(stderr, "conn %d: %s after %llu of %llu bytes echoed\n", i,
                            strerror(errno), (unsigned long long)p->got,
                            (unsigned long long)p->sent);
                    p->reset = 1;
                    done++;
                }
            }
            if (!p->eof && !p->reset && (pf[i].revents & POLLOUT)) {
                itl_stream tmp = p->tx;
                itl_stream_fill(&tmp, tx, CHUNK);
                ssize_t w = send(p->fd, tx, CHUNK, MSG_NOSIGNAL);
                if (w > 0) {
                    itl_stream_fill(&p->tx, tx, (size_t)w); /* advance by what went */
                    p->sent += (uint64_t)w;
                }
            }
        }
    }
    int64_t stop_ms = itl_now_ms() - term_at;
    uint64_t sent = 0, got = 0;
    int resets = 0, eofs = 0;
    for (int i = 0; i < n; i++) {
        sent += c[i].sent;
        got += c[i].got;
        resets += c[i].reset;
        eofs += c[i].eof;
        if (c[i].fd >= 0)
            close(c[i].fd);
    }
    int status = itl_server_stop(&srv, 10000);
    unlink(sock);
    const char *st = strstr(out, "stopped:");
    unsigned long long acc = 0, closed = 0, echoed = 0;
    int parsed = st && sscanf(st,
                              "stopped: %llu connections accepted, %llu closed, %*u bytes in, "
                              "%llu bytes out",
                              &acc, &closed, &echoed) == 3;
    fprintf(stderr,
            "sigterm: %d conns, %llu bytes sent, %llu echoed before the SIGTERM, %llu "
            "in all; server says %llu echoed; %d EOF, %d reset; stopped %lld ms after "
            "SIGTERM, status %d\n",
            n, (unsigned long long)sent, (unsigned long long)before_term, (unsigned long long)got,
            echoed, eofs, resets, (long long)stop_ms, status);
    IT_CHECK(parsed, "no 'stopped:' line from the server");
    IT_CHECK(resets == 0, "%d connections were reset instead of closed", resets);
    IT_CHECK(eofs == n, "%d of %d connections got their EOF", eofs, n);
    IT_CHECK(got == echoed, "received %llu bytes, the server echoed %llu", (unsigned long long)got,
             echoed);
    IT_CHECK(got > before_term, "nothing flushed after the SIGTERM");
    IT_CHECK(status == 0, "server exit status %d", status);
    printf("FT_RESULT fault=sigterm mode=fault n=%d ms=%lld msgs=%llu mismatches=0 errors=%d "
           "p50_us=0 p99_us=0 max_us=0\n",
           n, (long long)stop_ms, (unsigned long long)got, resets);
    free(c);
    free(pf);
    free(buf);
    free(tx);
    return 0;
}
