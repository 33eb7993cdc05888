/*
 * workers/io_sock.h — the socket system calls the readiness backends share.
 *
 * epoll and poll differ only in how they wait; reading into a ring, writing
 * from one, half-closing and closing are the same calls for both, made
 * here once. A completion backend has its own.
 */
#ifndef WEFT_WORKERS_IO_SOCK_H
#define WEFT_WORKERS_IO_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "weft/weft.h"
#include "workers/worker-t.h"

/*
 * One read(2) or readv(2) of at most max bytes into r's free space, marked
 * held. Returns bytes, 0 at EOF, or a negative errno (-EAGAIN; EINTR is
 * retried). With no free space or max 0 makes no call and returns -ENOBUFS
 * (never a 0 that would read as EOF).
 */
ssize_t io_sock_recv(int fd, weft_ring *r, size_t max);

/*
 * One send(2) or sendmsg(2) (MSG_NOSIGNAL) of at most max of r's held
 * bytes, consuming what was written. Returns bytes, 0 for an empty ring or
 * max 0 (no call), or a negative errno (-EAGAIN, -EPIPE, ...; EINTR is
 * retried).
 */
ssize_t io_sock_send(int fd, weft_ring *r, size_t max);

/* One sendfile(2) of at most len bytes of file from *off to sock. */
ssize_t io_sock_sendfile(int sock, int file, off_t *off, size_t len);

/* One pread(2) of at most len bytes of file at off (EINTR retried): the
 * bytes read, 0 at the end, or a negative errno. */
ssize_t io_sock_pread(int file, void *buf, size_t len, off_t off);

/* shutdown(fd, SHUT_WR): 0 or a negative errno. */
int io_sock_shutdown_wr(int fd);

/* close(fd), first setting SO_LINGER {1, 0} when reset (close sends RST). */
void io_sock_close(int fd, bool reset);

/* Per-connection socket options from the config (SO_SNDBUF; TCP_NOTSENT_LOWAT at the
 * output high watermark); best effort. */
void io_sock_setup(int fd, const weft_config *cfg);

/*
 * A non-blocking, close-on-exec stream socket for sa with the WK_SOCK_*
 * options, its connect started: the fd in *fd and 0 (in progress) or 1
 * (connected at once), or a negative errno with nothing left open.
 */
int io_sock_connect(const struct sockaddr *sa, socklen_t len, unsigned sockopts, int *fd);

/*
 * The connect operation of a readiness backend: io_sock_connect, then
 * attach (the backend's own) on the new fd; c->fd set, or nothing left
 * open on failure.
 */
int io_sock_connect_attach(wk_worker *w, weft_conn *c, const struct sockaddr *sa, socklen_t len,
                           unsigned sockopts, int (*attach)(wk_worker *, weft_conn *));

/*
 * The wk_io_ops entries every readiness backend shares, on c->fd: recv,
 * send, shutdown_wr and discard as workers/io.h specifies them.
 */
ssize_t io_sock_op_recv(wk_worker *w, weft_conn *c, weft_ring *in, size_t max);
ssize_t io_sock_op_send(wk_worker *w, weft_conn *c, weft_ring *out, size_t max);
ssize_t io_sock_op_sendfile(wk_worker *w, weft_conn *c, int fd, off_t *off, size_t len);
int io_sock_op_shutdown_wr(wk_worker *w, weft_conn *c);
void io_sock_op_discard(wk_worker *w, int fd);
int io_sock_op_connected(wk_worker *w, weft_conn *c);

/*
 * A non-blocking eventfd for wake-ups: returns the fd or a negative errno.
 * io_wake_fd_signal writes it (any thread, signal-safe); io_wake_fd_clear
 * reads it back to zero.
 */
int io_wake_fd_open(void);
void io_wake_fd_signal(int fd);
void io_wake_fd_clear(int fd);

#endif
