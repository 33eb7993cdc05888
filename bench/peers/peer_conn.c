/*
 * peer_conn — one echo connection of the single-thread peers (see peer_conn.h).
 */
#include "peer_conn.h"

#include <errno.h>
#include <unistd.h>

/*
 * At most READ_CHUNK bytes per read(2): one shared buffer whose bytes are
 * written straight back, so reading costs no memory per connection.
 */
#define READ_CHUNK (64 * 1024)

static char g_rbuf[READ_CHUNK];

int peer_conn_read(struct peer_conn *c)
{
    ssize_t n = read(c->fd, g_rbuf, sizeof(g_rbuf));
    if (n > 0)
        return peer_buf_echo(&c->out, c->fd, g_rbuf, (size_t)n) == 0 ? 1 : -1;
    if (n == 0) {
        c->eof = true;
        return 0;
    }
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

void peer_conn_close(struct peer_conn *c)
{
    close(c->fd);
    peer_buf_free(&c->out);
}
