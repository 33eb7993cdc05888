/*
 * peer_buf — one connection's pending output (see peer_buf.h).
 */
#include "peer_buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Appends p[0, n). Returns 0, or -1 when out of memory. */
static int append(struct peer_buf *b, const char *p, size_t n)
{
    if (b->off + b->len + n > b->cap) {
        if (b->len + n <= b->cap) {
            memmove(b->data, b->data + b->off, b->len);
        } else {
            size_t cap = b->cap ? b->cap * 2 : 16 * 1024;
            while (cap < b->len + n)
                cap *= 2;
            char *nb = malloc(cap);
            if (!nb)
                return -1;
            if (b->len)
                memcpy(nb, b->data + b->off, b->len);
            free(b->data);
            b->data = nb;
            b->cap = cap;
        }
        b->off = 0;
    }
    memcpy(b->data + b->off + b->len, p, n);
    b->len += n;
    return 0;
}

int peer_buf_echo(struct peer_buf *b, int fd, const char *p, size_t n)
{
    size_t done = 0;
    if (b->len == 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        done = w > 0 ? (size_t)w : 0;
    }
    return done < n ? append(b, p + done, n - done) : 0;
}

int peer_buf_flush(struct peer_buf *b, int fd)
{
    while (b->len > 0) {
        ssize_t w = send(fd, b->data + b->off, b->len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        b->off += (size_t)w;
        b->len -= (size_t)w;
    }
    /* Drained: give the memory back, so an idle connection holds none. */
    peer_buf_free(b);
    return 0;
}

void peer_buf_free(struct peer_buf *b)
{
    free(b->data);
    *b = (struct peer_buf){0};
}
