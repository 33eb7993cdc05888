/*
 * workers/io.h — the I/O backend seam: the data plane's one interface to
 * the kernel.
 *
 * Every system call a worker makes on a connection or on its own wait
 * primitive goes through these operations; nothing else in workers/ or
 * buffers/ calls read, write, send, epoll_*, poll, shutdown or close on a
 * socket (tests/check_layout.sh fails the build's tests if one does).
 *
 * The interface is cut at connection operations, not at readiness. The
 * connection state machine (workers/conn.c) asks for exactly three things:
 * "put up to N bytes into this input ring", "take what you can of this
 * output ring", and "tell me when either could make progress". A readiness
 * backend (epoll, poll) answers the first two with one readv/sendmsg each
 * and the third with its wait; a completion backend (io_uring) answers the
 * first from receives that already completed into its provided buffers and
 * the second by taking the output ring's storage for a send in flight,
 * reporting the completions as the same events. The loop and the state
 * machine do not change between them (docs/architecture.md, "The I/O
 * backend seam", says why the cut is here and not at epoll's level).
 *
 * Events: a backend reports what it learned about a connection with
 * wk_io_event(w, key, WK_IO_*), where key is conn_key(c) as it was when the
 * backend attached c; a key whose slot was freed since is dropped there
 * (the stale-event guard). A wake-up from another thread is reported with
 * wk_io_woken(w). Both are called only from inside ops->wait, on the
 * worker's thread, and neither calls back into the backend.
 *
 * Threads: every operation runs on the worker's thread, except init and
 * destroy (the server's thread, before the worker starts / after it ended)
 * and wake (any thread, and async-signal-safe).
 */
#ifndef WEFT_WORKERS_IO_H
#define WEFT_WORKERS_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "workers/worker-t.h"

/* What an event says about a connection. */
enum {
    WK_IO_IN = 1u << 0,  /* input may be available (or a receive completed) */
    WK_IO_OUT = 1u << 1, /* output may be accepted (or a send completed) */
    WK_IO_HUP = 1u << 2, /* the peer half-closed or hung up */
    WK_IO_ERR = 1u << 3, /* an error is pending on the socket */
};

/* Socket options an outbound connection may ask for. */
enum { WK_SOCK_NODELAY = 1u << 0 };

typedef struct wk_io_ops {
    const char *name; /* "epoll", "poll", "uring": what --io, the startup line and the stats show */

    /*
     * Optional (NULL: always usable): whether this kernel and process let
     * the backend run, tried once at server start on the server's thread.
     * 0, or the -errno that made it fail (io_uring: ENOSYS on an old
     * kernel, EPERM under kernel.io_uring_disabled or a seccomp filter,
     * ENOMEM over the locked-memory limit); the server then falls back to
     * the default backend (wk_io_usable).
     */
    int (*probe)(void);

    /* Create w's wait primitive and wake channel (w->io_state). 0 or -errno. */
    int (*init)(wk_worker *w);
    /* Free what init made; every connection is closed by then. */
    void (*destroy)(wk_worker *w);

    /*
     * Start watching c (c->fd is a connected, non-blocking socket) for
     * input, output and peer half-close, for good: no later call changes
     * what is watched (invariant 2). Sets the socket options the config
     * asks for. 0 or -errno (the caller then closes c).
     */
    int (*attach)(wk_worker *w, weft_conn *c);

    /*
     * Put at most max bytes into the free space of ring `in` and mark them
     * held (ring_produce). Returns the bytes added (> 0), 0 at the peer's
     * EOF, -EAGAIN when nothing is available now (an event will say when
     * there may be), or another negative errno. A return below max with no
     * WK_IO_HUP pending means the source was drained at that instant.
     */
    ssize_t (*recv)(wk_worker *w, weft_conn *c, weft_ring *in, size_t max);

    /*
     * Take at most max bytes from the front of ring `out` for the peer and
     * consume them from it. Returns the bytes taken (> 0; fewer than held,
     * within max, means the socket is full for now), 0 when `out` is empty
     * (or max is 0), -EAGAIN when nothing
     * can be taken now (WK_IO_OUT will follow), or another negative errno
     * (-EPIPE, -ECONNRESET, ...). Never raises SIGPIPE. A completion
     * backend that takes bytes it has not sent yet (it may take the ring's
     * storage whole) counts them in c->out_inflight until the send
     * completes, then reports WK_IO_OUT (or WK_IO_ERR, with the error
     * returned by the next send).
     */
    ssize_t (*send)(wk_worker *w, weft_conn *c, weft_ring *out, size_t max);

    /*
     * Send at most len bytes of file fd from *off (which advances) to the
     * peer, without copying them through user space where the kernel can
     * (sendfile(2)). Returns the bytes sent (> 0; fewer than len means the
     * socket is full for now), 0 at the file's end, -EAGAIN, or another
     * negative errno. A backend without a zero-copy path may read and send.
     */
    ssize_t (*sendfile)(wk_worker *w, weft_conn *c, int fd, off_t *off, size_t len);

    /*
     * Start an outbound connection to sa: create the socket (non-blocking,
     * close-on-exec, with the WK_SOCK_* options asked for), start the
     * connect and attach it as attach does, setting c->fd. Returns 0 while
     * the connect is in progress (WK_IO_OUT, or WK_IO_ERR, reports its
     * end), 1 when it completed at once, or a negative errno (nothing was
     * left open).
     */
    int (*connect)(wk_worker *w, weft_conn *c, const struct sockaddr *sa, socklen_t len,
                   unsigned sockopts);

    /* The outcome of a connect whose end was reported: 0, or -errno. */
    int (*connected)(wk_worker *w, weft_conn *c);

    /* Send FIN after what was taken (shutdown(SHUT_WR)). 0 or -errno. */
    int (*shutdown_wr)(wk_worker *w, weft_conn *c);

    /*
     * Stop watching c and close its fd (with a TCP reset, discarding unsent
     * data, when `reset`); sets c->fd to -1. Nothing is reported for c
     * afterwards, even for events already queued.
     */
    void (*close)(wk_worker *w, weft_conn *c, bool reset);

    /*
     * Close an fd that is not attached: a socket the worker was handed but
     * could not attach (no slot, attach failed), or a file a connection
     * had queued (weft_send_file).
     */
    void (*discard)(wk_worker *w, int fd);

    /*
     * Wait at most timeout_ms (-1: until something happens; 0: do not
     * block) and report what happened through wk_io_event and wk_io_woken.
     * One system call per turn. Returns the number of events reported, or a
     * negative errno that ends the worker (-EINTR is retried inside).
     */
    int (*wait)(wk_worker *w, int timeout_ms);

    /* Make w's current or next wait return (any thread; signal-safe). */
    void (*wake)(wk_worker *w);
} wk_io_ops;

/* The backend called `name` ("epoll", "poll", "uring"), or NULL. */
const wk_io_ops *wk_io_find(const char *name);

/*
 * io itself when its probe passes (or it has none), else the default
 * backend, with the probe's -errno in *err (0 when io is usable).
 */
const wk_io_ops *wk_io_usable(const wk_io_ops *io, int *err);

/* Report an event for the connection whose key is `key` (see above). */
void wk_io_event(wk_worker *w, uint64_t key, unsigned events);

/* Report a wake-up (another thread called ops->wake). */
void wk_io_woken(wk_worker *w);

/*
 * What c waits for now: WK_IO_IN while it would read on an input event,
 * WK_IO_OUT while it waits for the output event. Level-triggered backends
 * (poll) watch only these, so a paused or drained connection cannot make
 * every wait return at once.
 */
unsigned wk_io_wants(const weft_conn *c);

#endif
