/*
 * peer-epoll-lt — an echo server for the weft benchmarks, in one thread with
 * level-triggered epoll: interest follows the connection's state
 * (input while it may read, output while output is pending).
 *
 * Every byte is echoed in order; partial writes queue in a per-connection
 * buffer, and a connection whose client does not read is not read either
 * once PEER_OUT_LIMIT bytes wait for it (see peer_buf.h). The command line
 * and the frame around the loop are peer_common's.
 */
#define PEER_NAME "peer-epoll-lt"

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
    .about = "Echo server for the weft benchmarks: one thread, level-triggered epoll(7).",
    .threads_ignored = "this server runs one thread",
};

struct conn {
    struct peer_conn io;
    uint32_t events; /* what the epoll set holds for it */
};

static int g_ep;
static unsigned long g_refused;

static void conn_close(struct conn *c)
{
    peer_conn_close(&c->io); /* the close also leaves the epoll set */
    free(c);
}

/*
 * Level-triggered: the set holds what the connection waits for now, input
 * while it may read, output while something is pending, so each change of
 * state costs one epoll_ctl (as in Redis's ae).
 */
static int update_interest(struct conn *c)
{
    uint32_t ev =
        (peer_conn_want_read(&c->io) ? EPOLLIN : 0) | (peer_conn_want_write(&c->io) ? EPOLLOUT : 0);
    if (ev == c->events)
        return 0;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->io.fd, &e) != 0)
        return -1;
    c->events = ev;
    return 0;
}

static void accept_all(int lfd)
{
    /* A bounded batch per wake-up: the level-triggered listener reports the rest. */
    for (int i = 0; i < 256; i++) {
        int fd = peer_accept(lfd, SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            g_refused++;
            continue;
        }
        c->io.fd = fd;
        c->events = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            conn_close(c);
            g_refused++;
        }
    }
}

static void serve(void *conn, uint32_t ev)
{
    struct conn *c = conn;
    /* EPOLLERR and EPOLLHUP: the read or write below sees the error or the end. */
    if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && peer_conn_flush(&c->io) != 0)
        goto close;
    /* One read per wake-up: level-triggered epoll reports what is left. */
    if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) && peer_conn_want_read(&c->io) &&
        peer_conn_read(&c->io) < 0)
        goto close;
    if (peer_conn_done(&c->io) || update_interest(c) != 0)
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
    g_ep = peer_epoll_open(&s, EPOLLIN);
    if (g_ep < 0)
        return 1;
    peer_print_ready(s.opts.bind, s.port);
    if (peer_epoll_run(g_ep, &s, serve, accept_all) != 0)
        return 1;
    fprintf(stderr, PEER_NAME ": accepted %lu connections; refused %lu; shed %lu when out of fds\n",
            peer_accepted, g_refused, peer_shed_count);
    return 0;
}
