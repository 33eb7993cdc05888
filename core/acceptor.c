/*
 * core/acceptor.c — the acceptor thread: accept, gate, hand off.
 *
 * The acceptor owns the listening socket and the server's stop eventfd. It
 * sleeps in poll(2) on both, then accepts a batch of connections and hands
 * each, round-robin, to a worker (wk_adopt, workers/worker.h): the worker that
 * receives a connection owns it for good.
 *
 * Open connections are counted without shared writes: the acceptor counts
 * what it hands off, each worker counts what it closes, and the difference
 * is the number open. A connection over max_conns is closed at once.
 *
 * fd exhaustion (EMFILE/ENFILE): the listener stays readable while the
 * backlog holds connections, so retrying at once would spin (the bug libuv
 * and others have shipped). We keep one spare fd open; on EMFILE we close
 * it, accept and immediately close the pending connections (the clients see
 * a clean close instead of hanging in the backlog), reopen the spare and
 * pause briefly before listening again. Each episode is counted.
 */
#include "core/acceptor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/server-t.h"
#include "workers/worker.h"

/* Connections accepted per wake-up before re-checking the stop flag. */
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

/* Accept and drop what waits in the backlog, using the spare fd. */
static void shed_backlog(struct weft_server *s)
{
    if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
        s->reserve_fd = -1;
    }
    for (int i = 0; i < ACC_BATCH; i++) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
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

static int hand_off(struct weft_server *s, int fd, struct sockaddr_storage *ss, socklen_t len,
                    unsigned *rr)
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
    int rc = wk_adopt(s->workers[i], fd, (const struct sockaddr *)ss, len, &s->origin);
    if (rc != 0) {
        s->handed[i]--;
        ST_ADD(&s->ast, accepted, (uint64_t)-1);
    }
    return rc;
}

/* One batch of accept4 calls. Returns a poll timeout: -1, or a pause. */
static int accept_batch(struct weft_server *s, unsigned *rr)
{
    for (int i = 0; i < ACC_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
                shed_backlog(s);
                return ACC_PAUSE_MS;
            default: /* ENOBUFS, ENOMEM, EPERM (firewall) ...: wait, retry */
                ST_ADD(&s->ast, errors, 1);
                wlog_limit(s, LIM_ACCEPT, "accept: %s", weft_strerror(errno));
                return ACC_PAUSE_MS;
            }
        }
        if (open_conns(s) >= (uint64_t)s->max_conns) {
            close(fd);
            ST_ADD(&s->ast, rejected_max, 1);
            wlog_limit(s, LIM_MAX_CONNS, "max_conns (%d) reached: closing new connections",
                       s->max_conns);
            continue;
        }
        int rc = hand_off(s, fd, &ss, len, rr);
        if (rc == -EBUSY) {
            close(fd);
            ST_ADD(&s->ast, rejected_worker, 1);
            wlog_limit(s, LIM_WORKER_CAP,
                       "every worker holds max_conns_per_worker (%d): closing new connections",
                       s->cfg.max_conns_per_worker);
            continue;
        }
        if (rc != 0) {
            close(fd);
            ST_ADD(&s->ast, errors, 1);
            return ACC_PAUSE_MS;
        }
    }
    return 0; /* more may be waiting: poll again without sleeping */
}

void *acc_main(void *arg)
{
    struct weft_server *s = arg;
    unsigned rr = 0;
    int timeout = -1;
    struct pollfd pf[2] = {{.fd = s->stop_efd, .events = POLLIN}, {.fd = s->lfd, .events = POLLIN}};
    while (!__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE)) {
        /* While pausing after EMFILE, wait on the stop fd only. */
        int n = poll(pf, timeout > 0 ? 1 : 2, timeout);
        if (n < 0 && errno != EINTR) {
            wlog(s, WEFT_LOG_ERROR, "acceptor: poll: %s", weft_strerror(errno));
            break;
        }
        if (__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE))
            break;
        if (timeout > 0 && n == 0) {
            timeout = -1; /* the pause is over */
            continue;
        }
        if (n > 0 && (pf[1].revents & POLLIN))
            timeout = accept_batch(s, &rr);
    }
    /* Stop accepting first, then let every worker drain (design: shutdown). */
    close(s->lfd);
    s->lfd = -1;
    __atomic_store_n(&s->grp.drain, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < s->nworkers; i++)
        wk_wake(s->workers[i]);
    return NULL;
}
