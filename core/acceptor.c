/*
 * core/acceptor.c — the acceptor thread: accept, gate, hand off.
 *
 * The acceptor owns the listening sockets and the server's stop eventfd. It
 * sleeps in poll(2) on all of them, then accepts a batch of connections
 * from each readable listener and hands each, round-robin, to a worker
 * (wk_adopt, workers/worker.h) with its listener's origin (handler and
 * user data): the worker that receives a connection owns it for good.
 *
 * Gates, in order, each refusal a close at once and a count: the server's
 * max_conns, the listener's max_conns, its accept rate (a token bucket),
 * its per-source limit, every worker at max_conns_per_worker.
 *
 * Open connections are counted without shared writes: the acceptor counts
 * what it hands off, each worker counts what it closes (in all, and by
 * listener), and the difference is the number open.
 *
 * fd exhaustion (EMFILE/ENFILE): a listener stays readable while its
 * backlog holds connections, so retrying at once would spin (the bug libuv
 * and others have shipped). We keep one spare fd open; on EMFILE we close
 * it, accept and immediately close the pending connections of that
 * listener (the clients see a clean close instead of hanging in the
 * backlog), reopen the spare and leave the listeners out of poll briefly.
 * Each episode is counted.
 */
#include "core/acceptor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/inherit.h"
#include "core/listener.h"
#include "core/log.h"
#include "core/server-t.h"
#include "core/tls_ctx.h"
#include "workers/timer.h"
#include "workers/worker.h"

/* Connections accepted per listener per wake-up before re-checking the stop flag. */
#define ACC_BATCH 64
/* Pause after an EMFILE episode or an allocation failure (milliseconds). */
#define ACC_PAUSE_MS 10

static uint64_t open_conns(const struct weft_server *s)
{
    uint64_t closed = 0;
    for (int i = 0; i < s->nworkers; i++)
        closed += wk_closed(s->workers[i]);
    return ST_GET(&s->ast, accepted) - closed;
}

/* Open connections that came through listener l (acceptor thread). */
static uint64_t open_of(const struct weft_server *s, const lsn *l)
{
    uint64_t closed = 0;
    int k = l->origin.listener;
    for (int i = 0; i < s->nworkers; i++)
        closed += ST_GET(&s->workers[i]->st, closed_lsn[k]);
    return ST_GET(&l->st, accepted) - closed;
}

/* Accept and drop what waits in l's backlog, using the spare fd. */
static void shed_backlog(struct weft_server *s, lsn *l)
{
    if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
        s->reserve_fd = -1;
    }
    for (int i = 0; i < ACC_BATCH; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            break;
        close(fd);
        ST_ADD(&s->ast, shed, 1);
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * Round-robin, skipping a worker at max_conns_per_worker (its open count is
 * what we handed it minus what it closed). -1 when every worker is full.
 */
static int pick_worker(struct weft_server *s, unsigned *rr)
{
    int n = s->nworkers, cap = s->cfg.max_conns_per_worker;
    for (int k = 0; k < n; k++) {
        int i = (int)((*rr + (unsigned)k) % (unsigned)n);
        if (cap <= 0 || s->handed[i] - wk_closed(s->workers[i]) < (uint64_t)cap) {
            *rr = (unsigned)i + 1;
            return i;
        }
    }
    return -1;
}

static int hand_off(struct weft_server *s, lsn *l, int fd, struct sockaddr_storage *ss,
                    socklen_t len, unsigned *rr)
{
    int i = pick_worker(s, rr);
    if (i < 0)
        return -EBUSY;
    /*
     * Counted before the handoff: the worker may close the connection
     * before wk_adopt returns, and open = accepted - closed must not dip.
     */
    s->handed[i]++;
    ST_ADD(&s->ast, accepted, 1);
    ST_ADD(&l->st, accepted, 1);
    void *tls = tlsctx_ref(l->tls_ctx); /* the worker's to drop */
    int rc = wk_adopt(s->workers[i], fd, (const struct sockaddr *)ss, len, &l->origin, tls);
    if (rc != 0) {
        tlsctx_unref(tls);
        s->handed[i]--;
        ST_ADD(&s->ast, accepted, (uint64_t)-1);
        ST_ADD(&l->st, accepted, (uint64_t)-1);
    }
    return rc;
}

/* The gates before a handoff; 0 to hand fd off, else it was refused (counted). */
static int gate(struct weft_server *s, lsn *l, const struct sockaddr_storage *ss)
{
    if (open_conns(s) >= (uint64_t)s->max_conns) {
        ST_ADD(&s->ast, rejected_max, 1);
        wlog_limit(s, LIM_MAX_CONNS, "max_conns (%d) reached: closing new connections",
                   s->max_conns);
        return -1;
    }
    if (l->o.max_conns && open_of(s, l) >= (uint64_t)l->o.max_conns) {
        ST_ADD(&l->st, rejected_max, 1);
        wlog_limit(s, LIM_MAX_CONNS, "listener %s: max-conns (%d) reached: closing new connections",
                   l->name, l->o.max_conns);
        return -1;
    }
    int why = lsn_admit(l, (const struct sockaddr *)ss, tw_clock_ms());
    if (why == LSN_RATE)
        wlog_limit(s, LIM_LSN_RATE, "listener %s: over its rate (%u/s): closing new connections",
                   l->name, (unsigned)(__atomic_load_n(&l->limit, __ATOMIC_RELAXED) >> 32));
    else if (why == LSN_SOURCE)
        wlog_limit(s, LIM_LSN_SOURCE,
                   "listener %s: a source over per-source (%u): closing its new connections",
                   l->name, l->o.per_source);
    return why == LSN_ADMIT ? 0 : -1;
}

/* One batch of accept4 calls on l. Returns a poll timeout: -1, 0, or a pause. */
static int accept_batch(struct weft_server *s, lsn *l, unsigned *rr)
{
    if (l->tls_ctx)
        tlsctx_tick(); /* session-ticket keys rotate on the thread that hands out contexts */
    for (int i = 0; i < ACC_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            switch (errno) {
            case EAGAIN:
                return -1;
            case EINTR:
            case ECONNABORTED: /* the peer gave up while queued */
                continue;
            case EMFILE:
            case ENFILE:
                ST_ADD(&s->ast, emfile, 1);
                wlog_limit(s, LIM_EMFILE, "accept: %s: shedding the backlog", weft_strerror(errno));
                shed_backlog(s, l);
                return ACC_PAUSE_MS;
            default: /* ENOBUFS, ENOMEM, EPERM (firewall) ...: wait, retry */
                ST_ADD(&s->ast, errors, 1);
                wlog_limit(s, LIM_ACCEPT, "accept: %s", weft_strerror(errno));
                return ACC_PAUSE_MS;
            }
        }
        if (gate(s, l, &ss) != 0) {
            close(fd);
            continue;
        }
        lsn_setup_conn(l, fd);
        int rc = hand_off(s, l, fd, &ss, len, rr);
        if (rc == 0)
            continue;
        lsn_unadmit(l, (const struct sockaddr *)&ss);
        close(fd);
        if (rc == -EBUSY) {
            ST_ADD(&s->ast, rejected_worker, 1);
            wlog_limit(s, LIM_WORKER_CAP,
                       "every worker holds max_conns_per_worker (%d): closing new connections",
                       s->cfg.max_conns_per_worker);
            continue;
        }
        ST_ADD(&s->ast, errors, 1);
        return ACC_PAUSE_MS;
    }
    return 0; /* more may be waiting: poll again without sleeping */
}

static void close_listeners(struct weft_server *s)
{
    for (int i = 0; i < s->nlsn; i++) {
        if (s->lsn[i]->fd >= 0)
            close(s->lsn[i]->fd);
        s->lsn[i]->fd = -1;
    }
}

void acc_release(struct weft_server *s)
{
    __atomic_store_n(&s->releasing, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    ssize_t n = write(s->stop_efd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is saturated, the acceptor wakes anyway */
}

int acc_released(const struct weft_server *s)
{
    return __atomic_load_n(&s->released, __ATOMIC_ACQUIRE);
}

int acc_listen_fds(const struct weft_server *s, int *fds, char *from_systemd, int max)
{
    int n = 0;
    for (int i = 0; i < s->nlsn && n < max; i++)
        if (s->lsn[i]->fd >= 0) {
            from_systemd[n] = s->lsn[i]->inherited == INH_SYSTEMD;
            fds[n++] = s->lsn[i]->fd;
        }
    return n;
}

/*
 * acc_release woke us: consume the wake-up and close the listeners; from
 * now on the stop eventfd is the only thing polled. A weft_server_stop
 * whose write this read consumed set `stopping` first, so the loop sees it.
 */
static void release_listeners(struct weft_server *s)
{
    uint64_t v;
    ssize_t n = read(s->stop_efd, &v, sizeof(v));
    (void)n; /* EAGAIN: nothing left to consume */
    close_listeners(s);
    __atomic_store_n(&s->released, 1, __ATOMIC_RELEASE);
    wlog(s, WEFT_LOG_INFO, "stopped accepting: the listeners are handed on");
}

/* Stop accepting first, then let every worker drain (invariant 8). */
static void stop_accepting(struct weft_server *s)
{
    close_listeners(s);
    __atomic_store_n(&s->grp.drain, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < s->nworkers; i++)
        wk_wake(s->workers[i]);
}

/*
 * The wake-up fd rang without a stop: a TLS reload. A request from a signal
 * handler (reload_tls set) loads the files here; weft_server_reload_tls
 * loaded them already. Then every listener swaps in its new context; the
 * connections open keep theirs.
 */
static void tls_reloads(struct weft_server *s)
{
    uint64_t v;
    while (read(s->stop_efd, &v, sizeof(v)) > 0) {
    }
    if (__atomic_exchange_n(&s->reload_tls, 0, __ATOMIC_ACQ_REL))
        srv_tls_reload_all(s);
    for (int i = 0; i < s->nlsn; i++)
        if (lsn_tls_swap(s->lsn[i]))
            wlog(s, WEFT_LOG_INFO, "listener %s: TLS certificates reloaded", s->lsn[i]->name);
}

void *acc_main(void *arg)
{
    struct weft_server *s = arg;
    unsigned rr = 0;
    int timeout = -1;
    struct pollfd pf[1 + WEFT_MAX_LISTENERS];
    pf[0] = (struct pollfd){.fd = s->stop_efd, .events = POLLIN};
    for (int i = 0; i < s->nlsn; i++)
        pf[1 + i] = (struct pollfd){.fd = s->lsn[i]->fd, .events = POLLIN};
    int released = 0;
    while (!__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE)) {
        /* While pausing after EMFILE, or released, wait on the stop fd only. */
        int n = poll(pf, timeout > 0 || released ? 1 : 1 + (nfds_t)s->nlsn, timeout);
        if (n < 0 && errno != EINTR) {
            wlog(s, WEFT_LOG_ERROR, "acceptor: poll: %s", weft_strerror(errno));
            break;
        }
        if (__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE))
            break;
        if (pf[0].revents & POLLIN)
            tls_reloads(s);
        if (!released && __atomic_load_n(&s->releasing, __ATOMIC_ACQUIRE)) {
            release_listeners(s);
            released = 1;
            timeout = -1;
            continue;
        }
        if (released)
            continue;
        if (timeout > 0 && n == 0) {
            timeout = -1; /* the pause is over */
            continue;
        }
        timeout = -1;
        for (int i = 0; n > 0 && i < s->nlsn; i++) {
            if (!(pf[1 + i].revents & POLLIN))
                continue;
            int t = accept_batch(s, s->lsn[i], &rr);
            if (t > timeout)
                timeout = t;
        }
    }
    stop_accepting(s);
    return NULL;
}
