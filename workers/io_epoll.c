/*
 * workers/io_epoll.c — the epoll backend (the default).
 *
 * One epoll set per worker. A connection is added once, edge-triggered, for
 * EPOLLIN | EPOLLOUT | EPOLLRDHUP (invariant 2): the steady state makes no
 * epoll_ctl call at all, and an edge is reported once, so the state machine
 * keeps what each edge said in the connection's flags (workers/conn.c).
 * The event's data is the connection's key, (generation << 32) | slot: an
 * event queued for a connection that has closed since, even one whose fd
 * number and slot were reused, is recognised and dropped (nginx's stale
 * event guard, with a generation instead of its instance bit).
 *
 * The wake channel is an eventfd in the same set, edge-triggered; a wake
 * event clears it at once, before the loop drains the inbox, which closes
 * the lost-wake-up race (workers/inbox.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "workers/io.h"
#include "workers/io_sock.h"

/* Events taken per epoll_wait: enough to amortise the call at 10K conns. */
#define EP_EVENTS 512
/* Event data of the wake eventfd; connection keys never reach it. */
#define EP_WAKE_KEY UINT64_MAX

typedef struct ep_state {
    int epfd;
    int wakefd;
    struct epoll_event ev[EP_EVENTS];
} ep_state;

static ep_state *st_of(const wk_worker *w) { return w->io_state; }

static int ep_init(wk_worker *w)
{
    ep_state *e = malloc(sizeof(*e));
    if (!e)
        return -ENOMEM;
    int rc;
    e->wakefd = io_wake_fd_open();
    if (e->wakefd < 0) {
        rc = e->wakefd;
        goto fail_wake;
    }
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        rc = -errno;
        goto fail_epoll;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = EP_WAKE_KEY};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wakefd, &ev) != 0) {
        rc = -errno;
        goto fail_ctl;
    }
    w->io_state = e;
    return 0;
fail_ctl:
    close(e->epfd);
fail_epoll:
    close(e->wakefd);
fail_wake:
    free(e);
    return rc;
}

static void ep_destroy(wk_worker *w)
{
    ep_state *e = st_of(w);
    if (!e)
        return;
    close(e->epfd);
    close(e->wakefd);
    free(e);
    w->io_state = NULL;
}

static int ep_attach(wk_worker *w, weft_conn *c)
{
    io_sock_setup(c->fd, w->g->cfg);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = conn_key(c)};
    return epoll_ctl(st_of(w)->epfd, EPOLL_CTL_ADD, c->fd, &ev) == 0 ? 0 : -errno;
}

static int ep_connect(wk_worker *w, weft_conn *c, const struct sockaddr *sa, socklen_t len,
                      unsigned sockopts)
{
    return io_sock_connect_attach(w, c, sa, len, sockopts, ep_attach);
}

static void ep_close(wk_worker *w, weft_conn *c, bool reset)
{
    (void)w;
    /*
     * close(2) of the only reference removes the fd from the set; events
     * already returned for it are dropped by the key's generation.
     */
    io_sock_close(c->fd, reset);
    c->fd = -1;
}

static int ep_wait(wk_worker *w, int timeout_ms)
{
    ep_state *e = st_of(w);
    int n;
    do
        n = epoll_wait(e->epfd, e->ev, EP_EVENTS, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        uint32_t ev = e->ev[i].events;
        if (e->ev[i].data.u64 == EP_WAKE_KEY) {
            io_wake_fd_clear(e->wakefd);
            wk_io_woken(w);
            continue;
        }
        unsigned what = 0;
        if (ev & EPOLLIN)
            what |= WK_IO_IN;
        if (ev & EPOLLOUT)
            what |= WK_IO_OUT;
        if (ev & (EPOLLRDHUP | EPOLLHUP))
            what |= WK_IO_HUP;
        if (ev & EPOLLERR)
            what |= WK_IO_ERR;
        wk_io_event(w, e->ev[i].data.u64, what);
    }
    return n;
}

static void ep_wake(wk_worker *w) { io_wake_fd_signal(st_of(w)->wakefd); }

/* The epoll backend's operations (workers/io.h). */
const wk_io_ops wk_io_epoll = {
    .name = "epoll",
    .init = ep_init,
    .destroy = ep_destroy,
    .attach = ep_attach,
    .recv = io_sock_op_recv,
    .send = io_sock_op_send,
    .sendfile = io_sock_op_sendfile,
    .connect = ep_connect,
    .connected = io_sock_op_connected,
    .shutdown_wr = io_sock_op_shutdown_wr,
    .close = ep_close,
    .discard = io_sock_op_discard,
    .wait = ep_wait,
    .wake = ep_wake,
};
