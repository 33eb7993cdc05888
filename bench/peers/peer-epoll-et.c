/*
 * peer-epoll-et — an echo server for the weft benchmarks, in one thread with
 * edge-triggered epoll: each connection is registered once, for
 * input, output and peer half-close; each wake-up flushes, then reads until
 * EAGAIN.
 *
 * Every byte is echoed in order; partial writes queue in a per-connection
 * buffer, and a connection whose client does not read is not read either
 * once PEER_OUT_LIMIT bytes wait for it (see peer_buf.h). The command line
 * and the frame around the loop are peer_common's.
 */
#define PEER_NAME "peer-epoll-et"

#include "peer_conn.h"
#include "peer_epoll.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct peer_desc g_desc = {
    .name = PEER_NAME,
    .about = "Echo server for the weft benchmarks: one thread, edge-triggered epoll(7).",
    .threads_ignored = "this server runs one thread",
};

static int g_ep;
static unsigned long g_refused;

static void conn_close(struct peer_conn *c)
{
    peer_conn_close(c); /* the close also leaves the epoll set */
    free(c);
}

static void accept_all(int lfd)
{
    /* The listener is edge-triggered too: accept until EAGAIN, or the rest would wait for the
     * next connection. */
    for (;;) {
        int fd = peer_accept(lfd, SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct peer_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            g_refused++;
            continue;
        }
        c->fd = fd;
        /* Registered once, for everything; the steady state makes no epoll_ctl call. */
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            conn_close(c);
            g_refused++;
        }
    }
}

/*
 * Edge-triggered: an event says "something changed", not what is left, so
 * every wake-up flushes and then reads until EAGAIN. When pending output
 * stops the reading, the bytes left in the socket are picked up after the
 * output edge drains it: no input edge will come for them.
 */
static void serve(void *conn, uint32_t ev)
{
    struct peer_conn *c = conn;
    if (ev & EPOLLERR)
        goto close;
    if (peer_conn_flush(c) != 0)
        goto close;
    while (peer_conn_want_read(c)) {
        int r = peer_conn_read(c);
        if (r < 0)
            goto close;
        if (r == 0)
            break;
    }
    if (peer_conn_done(c))
        goto close;
    return;
close:
    conn_close(c);
}

int main(int argc, char **argv)
{
    struct peer_server s;
    int rc = peer_start(argc, argv, &g_desc, &s);
    if (rc != PEER_RUN)
        return rc;
    g_ep = peer_epoll_open(&s, EPOLLIN | EPOLLET);
    if (g_ep < 0)
        return 1;
    peer_print_ready(s.opts.bind, s.port);
    if (peer_epoll_run(g_ep, &s, serve, accept_all) != 0)
        return 1;
    fprintf(stderr, PEER_NAME ": accepted %lu connections; refused %lu; shed %lu when out of fds\n",
            peer_accepted, g_refused, peer_shed_count);
    return 0;
}
