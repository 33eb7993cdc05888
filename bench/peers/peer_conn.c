/*
 * peer_conn — one echo connection of the event-driven peers (see peer_conn.h).
 */
#include "peer_conn.h"

#include <errno.h>
#include <unistd.h>

/* The single-thread peers' one read buffer (see peer_conn.h). */
static char g_rbuf[PEER_READ_CHUNK];

int peer_conn_read_into(struct peer_conn *c, char *buf)
{
    ssize_t n = read(c->fd, buf, PEER_READ_CHUNK);
    if (n > 0)
        return peer_buf_echo(&c->out, c->fd, buf, (size_t)n) == 0 ? (int)n : -1;
    if (n == 0) {
        c->eof = true;
        return 0;
    }
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

int peer_conn_read(struct peer_conn *c) { return peer_conn_read_into(c, g_rbuf); }

void peer_conn_close(struct peer_conn *c)
{
    close(c->fd);
    peer_buf_free(&c->out);
}
