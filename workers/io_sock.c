/*
 * workers/io_sock.c — socket calls shared by the readiness backends
 * (io_sock.h).
 */
#include "workers/io_sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "buffers/ring.h"
#include "workers/io.h"

ssize_t io_sock_recv(int fd, weft_ring *r, size_t max)
{
    struct iovec iov[2];
    int k = ring_free_segs(r, iov, max);
    if (k == 0)
        return -ENOBUFS;
    ssize_t n;
    do
        n = k == 1 ? read(fd, iov[0].iov_base, iov[0].iov_len) : readv(fd, iov, k);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    ring_produce(r, (size_t)n);
    return n;
}

ssize_t io_sock_send(int fd, weft_ring *r, size_t max)
{
    struct iovec iov[2];
    int k = weft_ring_peek(r, iov);
    if (k == 0 || max == 0)
        return 0;
    if (iov[0].iov_len >= max) {
        iov[0].iov_len = max;
        k = 1;
    } else if (k == 2 && iov[0].iov_len + iov[1].iov_len > max) {
        iov[1].iov_len = max - iov[0].iov_len;
    }
    ssize_t n;
    do {
        if (k == 1) {
            n = send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        } else {
            struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
            n = sendmsg(fd, &m, MSG_NOSIGNAL);
        }
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    weft_ring_consume(r, (size_t)n);
    return n;
}

int io_sock_shutdown_wr(int fd) { return shutdown(fd, SHUT_WR) == 0 ? 0 : -errno; }

void io_sock_close(int fd, bool reset)
{
    if (reset) {
        /* Linger {1, 0}: close(2) sends RST and discards unsent data. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    /* Closing the only reference to the socket also drops it from epoll. */
    close(fd);
}

void io_sock_setup(int fd, const weft_config *cfg)
{
    if (cfg->sndbuf > 0) {
        /* Failure only leaves the kernel's own sizing: not worth a close. */
        int sz = (int)cfg->sndbuf;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    }
    /*
     * Unsent bytes in the kernel stay under the output high watermark: a
     * write finds the socket full (EAGAIN) past it, so output waits in the
     * ring, where the watermarks and the caps see it. Without this the
     * autotuned send buffer of a peer that reads nothing grows to
     * tcp_wmem's maximum (4 MiB), all of it read and echoed first, and in
     * no count. Bytes in flight do not count: a fast reader is not slowed.
     * Not a TCP socket (Unix): the call fails, nothing changes.
     */
    if (cfg->output_high_wm > 0) {
        int lowat = (int)cfg->output_high_wm;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
    }
}

int io_sock_connect(const struct sockaddr *sa, socklen_t len, unsigned sockopts, int *fd)
{
    int s = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    if ((sockopts & WK_SOCK_NODELAY) && sa->sa_family != AF_UNIX) {
        int one = 1;
        (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    int rc;
    do
        rc = connect(s, sa, len);
    while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        *fd = s;
        return 1;
    }
    if (errno == EINPROGRESS) {
        *fd = s;
        return 0;
    }
    /* (A Unix socket whose listener's backlog is full says EAGAIN: an error.) */
    rc = -errno;
    close(s);
    return rc;
}

int io_sock_connect_attach(wk_worker *w, weft_conn *c, const struct sockaddr *sa, socklen_t len,
                           unsigned sockopts, int (*attach)(wk_worker *, weft_conn *))
{
    int fd, rc = io_sock_connect(sa, len, sockopts, &fd);
    if (rc < 0)
        return rc;
    c->fd = fd;
    int e = attach(w, c);
    if (e != 0) {
        io_sock_close(fd, false);
        c->fd = -1;
        return e;
    }
    return rc;
}

int io_sock_op_connected(wk_worker *w, weft_conn *c)
{
    (void)w;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return -errno;
    return -err;
}

ssize_t io_sock_op_recv(wk_worker *w, weft_conn *c, weft_ring *in, size_t max)
{
    (void)w;
    return io_sock_recv(c->fd, in, max);
}

ssize_t io_sock_op_send(wk_worker *w, weft_conn *c, weft_ring *out, size_t max)
{
    (void)w;
    return io_sock_send(c->fd, out, max);
}

ssize_t io_sock_sendfile(int sock, int file, off_t *off, size_t len)
{
    ssize_t n;
    do
        n = sendfile(sock, file, off, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n;
}

ssize_t io_sock_pread(int file, void *buf, size_t len, off_t off)
{
    ssize_t n;
    do
        n = pread(file, buf, len, off);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

ssize_t io_sock_op_sendfile(wk_worker *w, weft_conn *c, int fd, off_t *off, size_t len)
{
    (void)w;
    return io_sock_sendfile(c->fd, fd, off, len);
}

int io_sock_op_shutdown_wr(wk_worker *w, weft_conn *c)
{
    (void)w;
    return io_sock_shutdown_wr(c->fd);
}

void io_sock_op_discard(wk_worker *w, int fd)
{
    (void)w;
    io_sock_close(fd, false);
}

int io_wake_fd_open(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

void io_wake_fd_signal(int fd)
{
    uint64_t one = 1;
    /*
     * EAGAIN means the counter is at its maximum, so a wake-up is pending
     * anyway; EINTR cannot happen on a non-blocking eventfd write.
     */
    ssize_t n = write(fd, &one, sizeof(one));
    (void)n;
}

void io_wake_fd_clear(int fd)
{
    uint64_t v;
    /* EAGAIN: already clear (a write raced with an earlier read); harmless. */
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
}
