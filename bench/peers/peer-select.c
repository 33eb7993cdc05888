/*
 * peer-select — an echo server for the weft benchmarks, in one thread with
 * select(2). fd_set cannot hold an fd at or above FD_SETSIZE (1024), so
 * this server refuses (closes) such connections, counts them and prints the
 * count at exit: it cannot hold 10,000 connections, and the benchmark shows
 * that.
 *
 * Every byte is echoed in order; partial writes queue in a per-connection
 * buffer, and a connection whose client does not read is not read either
 * once PEER_OUT_LIMIT bytes wait for it (see peer_buf.h). The command line
 * and the frame around the loop are peer_common's.
 */
#define PEER_NAME "peer-select"

#include "peer_common.h"
#include "peer_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct peer_desc g_desc = {
    .name = PEER_NAME,
    .about = "Echo server for the weft benchmarks: one thread, select(2); connections with fd >= "
             "FD_SETSIZE are refused.",
    .threads_ignored = "this server runs one thread",
};

/*
 * fd_set holds fds below FD_SETSIZE (1024) only: FD_SET on a larger fd writes
 * past the set. Such connections are closed at once and counted; this is the
 * limit of the model that the benchmark shows.
 */
static struct peer_conn *g_conns[FD_SETSIZE];
static unsigned long g_refused;

static void conn_close(struct peer_conn *c)
{
    g_conns[c->fd] = NULL;
    peer_conn_close(c);
    free(c);
}

static void accept_all(int lfd)
{
    /* A bounded batch per wake-up, so a connect storm cannot starve the echo. */
    for (int i = 0; i < 256; i++) {
        int fd = peer_accept(lfd, SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct peer_conn *c = fd < FD_SETSIZE ? calloc(1, sizeof(*c)) : NULL;
        if (!c) {
            close(fd);
            g_refused++;
            continue;
        }
        c->fd = fd;
        g_conns[fd] = c;
    }
}

static void serve(struct peer_conn *c, bool readable, bool writable)
{
    if (writable && peer_conn_flush(c) != 0)
        goto close;
    if (readable && peer_conn_want_read(c) && peer_conn_read(c) < 0)
        goto close;
    if (!peer_conn_done(c))
        return;
close:
    conn_close(c);
}

/* Fills the sets with what each connection waits for. Returns the highest fd. */
static int fill_sets(int lfd, fd_set *rd, fd_set *wr)
{
    FD_ZERO(rd);
    FD_ZERO(wr);
    FD_SET(lfd, rd);
    int maxfd = lfd;
    for (int fd = 0; fd < FD_SETSIZE; fd++) {
        struct peer_conn *c = g_conns[fd];
        if (!c)
            continue;
        if (peer_conn_want_read(c))
            FD_SET(fd, rd);
        if (peer_conn_want_write(c))
            FD_SET(fd, wr);
        maxfd = fd > maxfd ? fd : maxfd;
    }
    return maxfd;
}

int main(int argc, char **argv)
{
    struct peer_server s;
    int rc = peer_start(argc, argv, &g_desc, &s);
    if (rc != PEER_RUN)
        return rc;
    int lfd = s.lfd;
    if (lfd >= FD_SETSIZE) {
        fprintf(stderr, PEER_NAME ": listening fd %d >= FD_SETSIZE\n", lfd);
        return 1;
    }
    peer_print_ready(s.opts.bind, s.port);

    while (!peer_stop) {
        fd_set rd, wr;
        int maxfd = fill_sets(lfd, &rd, &wr);
        int n = pselect(maxfd + 1, &rd, &wr, NULL, NULL, &s.waitmask);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, PEER_NAME ": pselect: %s\n", strerror(errno));
            return 1;
        }
        for (int fd = 0; fd <= maxfd && n > 0; fd++) {
            bool r = FD_ISSET(fd, &rd), w = FD_ISSET(fd, &wr);
            if (!r && !w)
                continue;
            n -= r + w;
            if (fd != lfd && g_conns[fd])
                serve(g_conns[fd], r, w);
        }
        if (FD_ISSET(lfd, &rd))
            accept_all(lfd);
    }
    fprintf(stderr,
            PEER_NAME ": accepted %lu connections; refused %lu with fd >= FD_SETSIZE (%d); "
                      "shed %lu when out of fds\n",
            peer_accepted, g_refused, FD_SETSIZE, peer_shed_count);
    return 0;
}
