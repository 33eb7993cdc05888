/*
 * workers/io_poll.c — the poll(2) backend: the portable fallback.
 *
 * Every wait hands the kernel the whole array of the worker's sockets, so a
 * turn costs O(connections) however few are active: fine for hundreds,
 * measurably slower than epoll at thousands (docs/benchmarks.md has the
 * figures). It is here for systems and sandboxes without epoll, as the
 * baseline the tutorial's Exercise 4 asks for, and as a second
 * implementation that keeps the seam honest.
 *
 * poll is level-triggered: a socket with unread input or free send space is
 * reported at every call. So before each wait the array is set from what
 * each connection waits for now (wk_io_wants): input only while the state
 * machine would read, output only after an EAGAIN, and nothing at all (the
 * fd negated, which poll skips, POLLHUP included) while it waits for
 * neither; a paused or drained connection can never make the wait return
 * at once. Setting the array is user-space memory, not a system call:
 * invariant 2 holds (no control call per message).
 *
 * Slot 0 is the wake eventfd. A closed connection's entry is marked (fd -1)
 * and the array compacted before the next wait, so closing inside a
 * dispatch never moves an entry under the loop that reports events.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>

#include "workers/io.h"
#include "workers/io_sock.h"
#include "workers/slab.h"

typedef struct pl_state {
    struct pollfd *pfd; /* [0] the wake fd, then one per connection */
    uint64_t *key;      /* conn_key of each entry (PL_DEAD for [0] and closed ones) */
    uint32_t n, cap;
    uint32_t dead; /* entries closed since the last compaction */
    int wakefd;    /* also pfd[0].fd; read by wake from other threads */
} pl_state;

/* The key of a closed entry: no connection has slot 2^32 - 1. */
#define PL_DEAD UINT64_MAX

static pl_state *st_of(const wk_worker *w) { return w->io_state; }

static int grow(pl_state *p)
{
    uint32_t ncap = p->cap ? p->cap * 2 : 256;
    struct pollfd *np = realloc(p->pfd, ncap * sizeof(*np));
    if (!np)
        return -ENOMEM;
    p->pfd = np;
    uint64_t *nk = realloc(p->key, ncap * sizeof(*nk));
    if (!nk)
        return -ENOMEM;
    p->key = nk;
    p->cap = ncap;
    return 0;
}

static int pl_init(wk_worker *w)
{
    pl_state *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    int fd = io_wake_fd_open(), rc = fd;
    if (fd < 0 || (rc = grow(p)) != 0) {
        if (fd >= 0)
            io_sock_close(fd, false);
        free(p->pfd);
        free(p->key);
        free(p);
        return rc;
    }
    p->pfd[0] = (struct pollfd){.fd = fd, .events = POLLIN};
    p->key[0] = PL_DEAD;
    p->wakefd = fd;
    p->n = 1;
    w->io_state = p;
    return 0;
}

static void pl_destroy(wk_worker *w)
{
    pl_state *p = st_of(w);
    if (!p)
        return;
    io_sock_close(p->wakefd, false);
    free(p->pfd);
    free(p->key);
    free(p);
    w->io_state = NULL;
}

static int pl_attach(wk_worker *w, weft_conn *c)
{
    pl_state *p = st_of(w);
    if (p->n == p->cap && grow(p) != 0)
        return -ENOMEM;
    io_sock_setup(c->fd, w->g->cfg);
    c->io_idx = p->n;
    p->pfd[p->n] = (struct pollfd){.fd = c->fd};
    p->key[p->n] = conn_key(c);
    p->n++;
    return 0;
}

static int pl_connect(wk_worker *w, weft_conn *c, const struct sockaddr *sa, socklen_t len,
                      unsigned sockopts)
{
    return io_sock_connect_attach(w, c, sa, len, sockopts, pl_attach);
}

static void pl_close(wk_worker *w, weft_conn *c, bool reset)
{
    pl_state *p = st_of(w);
    p->pfd[c->io_idx].fd = -1; /* never reported again; compacted later */
    p->key[c->io_idx] = PL_DEAD;
    p->dead++;
    io_sock_close(c->fd, reset);
    c->fd = -1;
}

/* Drop the closed entries, moving live ones down (their io_idx follows). */
static void compact(wk_worker *w, pl_state *p)
{
    uint32_t j = 1;
    for (uint32_t i = 1; i < p->n; i++) {
        if (p->key[i] == PL_DEAD)
            continue;
        if (i != j) {
            p->pfd[j] = p->pfd[i];
            p->key[j] = p->key[i];
            wk_conn_at(w, (uint32_t)p->key[i])->io_idx = j;
        }
        j++;
    }
    p->n = j;
    p->dead = 0;
}

/* Watch each connection for what it waits for now (see the top). */
static void arm(wk_worker *w, pl_state *p)
{
    for (uint32_t i = 1; i < p->n; i++) {
        const weft_conn *c = wk_conn_at(w, (uint32_t)p->key[i]);
        unsigned want = wk_io_wants(c);
        short ev = 0;
        if (want & WK_IO_IN)
            ev |= POLLIN | POLLRDHUP;
        if (want & WK_IO_OUT)
            ev |= POLLOUT;
        p->pfd[i].fd = ev ? c->fd : ~c->fd; /* negative: skipped */
        p->pfd[i].events = ev;
    }
}

static int pl_wait(wk_worker *w, int timeout_ms)
{
    pl_state *p = st_of(w);
    if (p->dead)
        compact(w, p);
    arm(w, p);
    int n;
    do
        n = poll(p->pfd, p->n, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    int reported = 0;
    /* Entries added while reporting (none: attach runs after the wait) or
     * closed meanwhile (fd -1, revents ignored) are handled by the marks. */
    for (uint32_t i = 0; i < p->n && reported < n; i++) {
        short rev = p->pfd[i].revents;
        if (!rev)
            continue;
        reported++;
        if (i == 0) {
            io_wake_fd_clear(p->wakefd);
            wk_io_woken(w);
            continue;
        }
        if (p->key[i] == PL_DEAD)
            continue;
        unsigned what = 0;
        if (rev & POLLIN)
            what |= WK_IO_IN;
        if (rev & POLLOUT)
            what |= WK_IO_OUT;
        if (rev & (POLLRDHUP | POLLHUP))
            what |= WK_IO_HUP;
        if (rev & (POLLERR | POLLNVAL))
            what |= WK_IO_ERR;
        wk_io_event(w, p->key[i], what);
    }
    return reported;
}

static void pl_wake(wk_worker *w) { io_wake_fd_signal(st_of(w)->wakefd); }

/* The poll backend's operations (workers/io.h). */
const wk_io_ops wk_io_poll = {
    .name = "poll",
    .init = pl_init,
    .destroy = pl_destroy,
    .attach = pl_attach,
    .recv = io_sock_op_recv,
    .send = io_sock_op_send,
    .sendfile = io_sock_op_sendfile,
    .connect = pl_connect,
    .connected = io_sock_op_connected,
    .shutdown_wr = io_sock_op_shutdown_wr,
    .close = pl_close,
    .discard = io_sock_op_discard,
    .wait = pl_wait,
    .wake = pl_wake,
};
