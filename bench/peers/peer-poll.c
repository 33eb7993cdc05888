/*
 * peer-poll — an echo server for the weft benchmarks, in one thread with
 * poll(2) over a dense pollfd array.
 *
 * Every byte is echoed in order; partial writes queue in a per-connection
 * buffer, and a connection whose client does not read is not read either
 * once PEER_OUT_LIMIT bytes wait for it (see peer_buf.h). The command line
 * and the frame around the loop are peer_common's.
 */
#define PEER_NAME "peer-poll"

#include "peer_common.h"
#include "peer_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct peer_desc g_desc = {
    .name = PEER_NAME,
    .about = "Echo server for the weft benchmarks: one thread, poll(2).",
    .threads_ignored = "this server runs one thread",
};

struct conn {
    struct peer_conn io;
    size_t slot; /* index in g_pfds and g_conns */
};

/*
 * g_pfds[0] is the listener; g_pfds[i] and g_conns[i] (i >= 1) are connection
 * i. A closed connection's slot takes the last one, so the set stays dense.
 */
static struct pollfd *g_pfds;
static struct conn **g_conns;
static size_t g_n, g_cap;
static unsigned long g_refused;

static short interest(const struct conn *c)
{
    return (short)((peer_conn_want_read(&c->io) ? POLLIN : 0) |
                   (peer_conn_want_write(&c->io) ? POLLOUT : 0));
}

/* Removes slot i; the last slot moves into it. */
static void conn_close(size_t i)
{
    struct conn *c = g_conns[i];
    peer_conn_close(&c->io);
    free(c);
    g_n--;
    g_pfds[i] = g_pfds[g_n];
    g_conns[i] = g_conns[g_n];
    if (g_conns[i])
        g_conns[i]->slot = i;
}

/* Doubles the arrays when full. Returns whether a slot is free. */
static bool make_room(void)
{
    if (g_n == g_cap) {
        size_t cap = g_cap * 2;
        struct pollfd *p = realloc(g_pfds, cap * sizeof(*p));
        if (p)
            g_pfds = p;
        struct conn **q = p ? realloc(g_conns, cap * sizeof(*q)) : NULL;
        if (q) {
            g_conns = q;
            g_cap = cap;
        }
    }
    return g_n < g_cap;
}

static void accept_all(int lfd)
{
    /* A bounded batch per wake-up, so a connect storm cannot starve the echo. */
    for (int i = 0; i < 256; i++) {
        int fd = peer_accept(lfd, SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct conn *c = make_room() ? calloc(1, sizeof(*c)) : NULL;
        if (!c) {
            close(fd);
            g_refused++;
            continue;
        }
        c->io.fd = fd;
        c->slot = g_n;
        g_conns[g_n] = c;
        g_pfds[g_n] = (struct pollfd){.fd = fd, .events = POLLIN};
        g_n++;
    }
}

/* Serves slot i; a close moves the last slot into it. */
static void serve(size_t i)
{
    struct conn *c = g_conns[i];
    short re = g_pfds[i].revents;
    g_pfds[i].revents = 0;
    if (re & POLLNVAL)
        goto close;
    /* POLLERR and POLLHUP: the read or write below sees the error or the end. */
    if ((re & (POLLOUT | POLLERR | POLLHUP)) && peer_conn_flush(&c->io) != 0)
        goto close;
    if ((re & (POLLIN | POLLERR | POLLHUP)) && peer_conn_want_read(&c->io) &&
        peer_conn_read(&c->io) < 0)
        goto close;
    if (peer_conn_done(&c->io))
        goto close;
    g_pfds[i].events = interest(c);
    return;
close:
    conn_close(i);
}

int main(int argc, char **argv)
{
    struct peer_server s;
    int rc = peer_start(argc, argv, &g_desc, &s);
    if (rc != PEER_RUN)
        return rc;
    int lfd = s.lfd;
    g_cap = 1024;
    g_pfds = malloc(g_cap * sizeof(*g_pfds));
    g_conns = malloc(g_cap * sizeof(*g_conns));
    if (!g_pfds || !g_conns) {
        fprintf(stderr, PEER_NAME ": out of memory\n");
        return 1;
    }
    g_pfds[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
    g_conns[0] = NULL;
    g_n = 1;
    peer_print_ready(s.opts.bind, s.port);

    while (!peer_stop) {
        int n = ppoll(g_pfds, g_n, NULL, &s.waitmask);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, PEER_NAME ": ppoll: %s\n", strerror(errno));
            return 1;
        }
        bool listener_ready = g_pfds[0].revents & POLLIN;
        g_pfds[0].revents = 0;
        /*
         * Walk down from the end: a close moves the last slot into the hole,
         * and that slot has been served already, so nothing is served twice or
         * skipped.
         */
        for (size_t i = g_n - 1; i >= 1; i--) {
            if (g_pfds[i].revents)
                serve(i);
        }
        if (listener_ready)
            accept_all(lfd);
    }
    fprintf(stderr, PEER_NAME ": accepted %lu connections; refused %lu; shed %lu when out of fds\n",
            peer_accepted, g_refused, peer_shed_count);
    return 0;
}
