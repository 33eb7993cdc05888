/*
 * stats/service.c — the stats thread: sampler, admin socket, metrics port.
 *
 * Admin protocol (the Unix socket; one command a line, answers in order):
 *   stats         "name value" lines
 *   stats json    one JSON object on one line
 *   workers       a table, a row per worker
 *   metrics       Prometheus text exposition format
 *   help          this list
 *   quit          close after the answers so far (scripts: "stats json\nquit\n")
 * A line longer than ADM_LINE_MAX bytes, or an unknown command, gets one
 * "error: ..." line. Answers carry no terminator: read until EOF after quit.
 *
 * Metrics port: HTTP/1.x "GET /metrics", answered and closed.
 *
 * Protection: every socket is non-blocking; a client's next command is not
 * read while its previous answer is unsent (so a client that never reads
 * holds one answer at most); a client that takes no byte for ADM_STALL_NS, or
 * stays idle for ADM_IDLE_NS, is closed; at most ADM_MAX_CLIENTS at once.
 */
#define RCU_MEMB
#include "stats/service.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <urcu.h>
/* The reader TLS (to see whether the caller registered this thread already). */
#include <urcu/static/urcu-memb.h>

#include "core/listener.h"
#include "core/log.h"
#include "core/server-t.h"
#include "stats/admin_proto.h"

/*
 * liburcu publishes with volatile accesses and waits for readers with
 * membarrier(2), which ThreadSanitizer cannot see. These annotations tell it
 * what RCU guarantees: a snapshot's contents happen-before any reader that
 * finds its pointer, and every read-side section ends before the grace
 * period that precedes the free. No effect outside TSan builds.
 */
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#ifdef WEFT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char tsan_grace;
#define PUBLISH_RELEASE(p) __tsan_release(p)
#define READER_ACQUIRE(p)  __tsan_acquire(p)
#define READER_DONE()      __tsan_release(&tsan_grace)
#define GRACE_ACQUIRE()    __tsan_acquire(&tsan_grace)
#else
#define PUBLISH_RELEASE(p) ((void)(p))
#define READER_ACQUIRE(p)  ((void)(p))
#define READER_DONE()      ((void)0)
#define GRACE_ACQUIRE()    ((void)0)
#endif

#define ADM_LINE_MAX    1024                  /* admin command line, with its newline */
#define ADM_HTTP_MAX    8192                  /* HTTP request head */
#define ADM_MAX_CLIENTS 128                   /* admin and metrics clients at once */
#define ADM_STALL_NS    (10ull * 1000000000)  /* pending answer, no progress */
#define ADM_IDLE_NS     (300ull * 1000000000) /* no command at all */
#define ADM_DRAIN_NS    (2ull * 1000000000)   /* reading the rest of a bad request */

typedef struct adm_client {
    int fd;
    int http;     /* a metrics-port client */
    int closing;  /* close once the answer is out */
    int draining; /* after an oversized request: discard input until EOF */
    size_t inlen;
    char *out;
    size_t outlen, outoff;
    uint64_t since; /* last progress, ns */
    char in[ADM_HTTP_MAX];
} adm_client;

struct st_service {
    struct weft_server *srv;
    st_registry *reg; /* RCU-published */
    st_snap *cur;     /* RCU-published */
    pthread_t tid;
    int stop_efd;
    int admin_fd, metrics_fd;
    uint16_t metrics_port;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int have_path;
    uint64_t seq, start_ns, last_ns;
    adm_client *clients[ADM_MAX_CLIENTS];
    int nclients;
};

uint64_t weft_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- sampling -------------------------------------------------------------- */

static void sample(st_service *svc)
{
    uint64_t now = weft_now_ns();
    rcu_read_lock();
    st_registry *reg = rcu_dereference(svc->reg);
    st_snap *prev = svc->cur; /* only this thread writes cur */
    st_snap *s = snap_take(reg, prev, svc->seq + 1, (double)(now - svc->start_ns) / 1e9,
                           (double)(now - svc->last_ns) / 1e9);
    rcu_read_unlock();
    if (!s)
        return; /* out of memory: keep the old snapshot, try next interval */
    svc->seq++;
    svc->last_ns = now;
    PUBLISH_RELEASE(&svc->cur);
    rcu_assign_pointer(svc->cur, s);
    if (prev) {
        /* No reader can hold prev once every read-side section has ended. */
        synchronize_rcu();
        GRACE_ACQUIRE();
        free(prev);
    }
}

/* Registration of reader threads that are not ours (weft_server_snapshot). */
static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;
static void reader_exit(void *p)
{
    (void)p;
    rcu_unregister_thread();
}
static void reader_key_init(void) { pthread_key_create(&reader_key, reader_exit); }

static void ensure_reader(void)
{
    static _Thread_local int registered;
    if (registered)
        return;
    registered = 1;
    /*
     * A program that uses liburcu itself may have registered this thread
     * already (registering twice aborts): then the registration, and the
     * unregistering at exit, are the program's.
     */
    if (URCU_TLS(urcu_memb_reader).registered)
        return;
    pthread_once(&reader_once, reader_key_init);
    rcu_register_thread();
    /* The destructor unregisters the thread when it exits. */
    pthread_setspecific(reader_key, (void *)1);
}

weft_snapshot *stsvc_snapshot(st_service *svc, int *err)
{
    ensure_reader();
    rcu_read_lock();
    st_snap *s = rcu_dereference(svc->cur);
    READER_ACQUIRE(&svc->cur);
    st_snap *copy = s ? snap_copy(s) : NULL;
    READER_DONE();
    rcu_read_unlock();
    if (!copy && err)
        *err = s ? -ENOMEM : -EAGAIN;
    return copy ? &copy->pub : NULL;
}

/* ---- clients ----------------------------------------------------------------- */

static void client_free(st_service *svc, int i)
{
    adm_client *c = svc->clients[i];
    close(c->fd);
    free(c->out);
    free(c);
    svc->clients[i] = svc->clients[--svc->nclients];
}

/* Queue an answer (takes ownership of text). */
static void answer(adm_client *c, char *text)
{
    if (!text) {
        static const char oom[] = "error: out of memory\n";
        text = strdup(oom);
        if (!text) {
            c->closing = 1;
            return;
        }
    }
    c->out = text;
    c->outlen = strlen(text);
    c->outoff = 0;
}

static char *render(st_service *svc, weft_format fmt)
{
    rcu_read_lock();
    st_snap *s = rcu_dereference(svc->cur);
    READER_ACQUIRE(&svc->cur);
    char *t = s ? weft_snapshot_format(&s->pub, fmt) : strdup("error: no sample yet\n");
    READER_DONE();
    rcu_read_unlock();
    return t;
}

static const char help_text[] = "commands:\n"
                                "  stats        counters and rates, one \"name value\" a line\n"
                                "  stats json   the same and per-worker detail as one JSON line\n"
                                "  workers      a row per worker\n"
                                "  metrics      Prometheus text exposition format\n"
                                "  help         this list\n"
                                "  quit         close after the answers\n";

static void admin_command(st_service *svc, adm_client *c, char *line)
{
    const char *word;
    switch (adm_parse_line(line, &word)) {
    case ADM_NONE:
        break;
    case ADM_STATS:
        answer(c, render(svc, WEFT_FORMAT_TEXT));
        break;
    case ADM_STATS_JSON:
        answer(c, render(svc, WEFT_FORMAT_JSON));
        break;
    case ADM_WORKERS:
        answer(c, render(svc, WEFT_FORMAT_WORKERS));
        break;
    case ADM_METRICS:
        answer(c, render(svc, WEFT_FORMAT_PROMETHEUS));
        break;
    case ADM_HELP:
        answer(c, strdup(help_text));
        break;
    case ADM_QUIT:
        c->closing = 1;
        break;
    case ADM_UNKNOWN: {
        char msg[160];
        snprintf(msg, sizeof(msg), "error: unknown command '%.64s' (try 'help')\n", word);
        answer(c, strdup(msg));
        break;
    }
    }
}

static char *http_reply(int code, const char *reason, const char *body)
{
    size_t blen = strlen(body), cap = blen + 256;
    char *r = malloc(cap);
    if (r)
        snprintf(r, cap,
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 code, reason, blen, body);
    return r;
}

/* Take the complete lines (admin) or the request head (HTTP) in c->in. */
static void parse_input(st_service *svc, adm_client *c)
{
    if (c->http) {
        adm_http r = adm_parse_http(c->in, c->inlen, ADM_HTTP_MAX - 1);
        if (r == HTTP_MORE)
            return;
        c->closing = 1;
        if (r == HTTP_METRICS) {
            char *body = render(svc, WEFT_FORMAT_PROMETHEUS);
            answer(c, body ? http_reply(200, "OK", body) : NULL);
            free(body);
        } else if (r == HTTP_NOT_FOUND) {
            answer(c, http_reply(404, "Not Found", "only GET /metrics is served\n"));
        } else if (r == HTTP_BAD_METHOD) {
            answer(c, http_reply(405, "Method Not Allowed", "only GET /metrics is served\n"));
        } else {
            c->draining = 1;
            answer(c, http_reply(431, "Request Header Fields Too Large", "request too large\n"));
        }
        return;
    }
    /* One command at a time: the next is read once this answer is out. */
    while (!c->out && !c->closing) {
        char *nl = memchr(c->in, '\n', c->inlen);
        if (!nl) {
            if (c->inlen >= ADM_LINE_MAX) {
                c->closing = c->draining = 1;
                char msg[96];
                snprintf(msg, sizeof(msg), "error: command longer than %d bytes\n",
                         ADM_LINE_MAX - 1);
                answer(c, strdup(msg));
            }
            return;
        }
        *nl = 0;
        size_t used = (size_t)(nl - c->in) + 1;
        admin_command(svc, c, c->in);
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
    }
}

/* Returns 0 to keep the client, -1 to close it. */
static int client_io(st_service *svc, adm_client *c, short revents, uint64_t now)
{
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        if (c->draining) {
            char sink[4096];
            ssize_t n = read(c->fd, sink, sizeof(sink));
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return -1;
        } else if (!c->out && c->inlen < ADM_HTTP_MAX - 1) {
            size_t room = (c->http ? ADM_HTTP_MAX - 1 : ADM_LINE_MAX) - c->inlen;
            ssize_t n = read(c->fd, c->in + c->inlen, room);
            if (n == 0)
                return -1; /* the peer closed: drop any unsent answer */
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                return -1;
            if (n > 0) {
                c->inlen += (size_t)n;
                c->since = now;
                parse_input(svc, c);
            }
        }
    }
    if (c->out && c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (n > 0) {
            c->outoff += (size_t)n;
            c->since = now;
        }
    }
    if (c->out && c->outoff == c->outlen) {
        free(c->out);
        c->out = NULL;
        if (c->closing && !c->draining)
            return -1;
        if (c->draining)
            shutdown(c->fd, SHUT_WR); /* the error line is out: EOF, then drain */
        else
            parse_input(svc, c); /* pipelined commands already read */
    }
    if (c->closing && !c->out && !c->draining)
        return -1;
    uint64_t limit = c->draining ? ADM_DRAIN_NS : c->out ? ADM_STALL_NS : ADM_IDLE_NS;
    return now - c->since > limit ? -1 : 0;
}

static void accept_clients(st_service *svc, int lfd, int http)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or an error worth no retry loop here */
        adm_client *c = svc->nclients < ADM_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
        if (!c) {
            static const char busy[] = "error: too many admin clients\n";
            ssize_t n = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)n;
            close(fd);
            continue;
        }
        c->fd = fd;
        c->http = http;
        c->since = weft_now_ns();
        svc->clients[svc->nclients++] = c;
    }
}

/* ---- the thread ---------------------------------------------------------------- */

static void *svc_main(void *arg)
{
    st_service *svc = arg;
    rcu_register_thread();
    uint64_t interval = (uint64_t)svc->srv->cfg.stats_interval_ms * 1000000u;
    uint64_t next = svc->start_ns + interval;
    struct pollfd pf[3 + ADM_MAX_CLIENTS];
    for (;;) {
        int n = 0;
        pf[n++] = (struct pollfd){.fd = svc->stop_efd, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = svc->admin_fd, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = svc->metrics_fd, .events = POLLIN};
        for (int i = 0; i < svc->nclients; i++) {
            adm_client *c = svc->clients[i];
            short ev = (c->out && c->outoff < c->outlen) ? POLLOUT : 0;
            if (c->draining || !c->out)
                ev |= POLLIN;
            pf[n++] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        uint64_t now = weft_now_ns();
        /* Wake at least every second to enforce the client time limits. */
        uint64_t wait = next > now ? next - now : 0;
        if (wait > 1000000000u)
            wait = 1000000000u;
        int r = poll(pf, (nfds_t)n, (int)(wait / 1000000u));
        if (r < 0 && errno != EINTR)
            break;
        if (pf[0].revents)
            break;
        now = weft_now_ns();
        if (now >= next) {
            sample(svc);
            next += interval;
            if (next <= now) /* we fell behind (a stopped process): skip ahead */
                next = now + interval;
        }
        if (r <= 0)
            pf[1].revents = pf[2].revents = 0;
        /* Clients first: accept_clients may move the array. */
        for (int i = n - 1; i >= 3; i--)
            if (client_io(svc, svc->clients[i - 3], r > 0 ? pf[i].revents : 0, now) != 0)
                client_free(svc, i - 3);
        if (pf[1].revents & POLLIN)
            accept_clients(svc, svc->admin_fd, 0);
        if (pf[2].revents & POLLIN)
            accept_clients(svc, svc->metrics_fd, 1);
    }
    sample(svc); /* the final figures, for whoever reads after the stop */
    rcu_unregister_thread();
    return NULL;
}

/* ---- start and stop -------------------------------------------------------------- */

/*
 * Bind the admin socket at path with mode 0600. A socket file left by a dead
 * server (connect is refused) is replaced; one that answers is a live
 * server's, and a path that is not a socket is never removed.
 */
static int admin_open(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return -EEXIST;
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return -errno;
        int live = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(probe);
        if (live)
            return -EADDRINUSE;
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Linux creates the socket file with the fd's mode: no umask games. */
    if (fchmod(fd, 0600) != 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        chmod(path, 0600) != 0 || listen(fd, 64) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int stsvc_start(struct weft_server *s, st_registry *reg, st_service **out)
{
    st_service *svc = calloc(1, sizeof(*svc));
    if (!svc)
        return -ENOMEM;
    svc->srv = s;
    svc->admin_fd = svc->metrics_fd = -1;
    svc->start_ns = svc->last_ns = weft_now_ns();
    rcu_assign_pointer(svc->reg, reg);
    int rc;
    svc->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (svc->stop_efd < 0) {
        rc = -errno;
        goto fail;
    }
    const char *path = s->cfg.admin_socket;
    int explicit_path = path != NULL;
    if (!path) {
        snprintf(svc->path, sizeof(svc->path), "/tmp/weft-%u.sock", s->port);
        path = svc->path;
    } else {
        snprintf(svc->path, sizeof(svc->path), "%s", path);
    }
    if (*path) {
        rc = admin_open(svc->path);
        if (rc < 0) {
            wlog(s, explicit_path ? WEFT_LOG_ERROR : WEFT_LOG_WARN, "admin socket %s: %s%s",
                 svc->path,
                 rc == -EADDRINUSE ? "another live server answers there" : weft_strerror(rc),
                 explicit_path ? "" : "; continuing without it");
            if (explicit_path)
                goto fail;
        } else {
            svc->admin_fd = rc;
            svc->have_path = 1;
        }
    }
    if (s->cfg.metrics_port) {
        rc = lsn_open(s->cfg.metrics_bind, s->cfg.metrics_port, 64, &svc->metrics_port);
        if (rc < 0) {
            wlog(s, WEFT_LOG_ERROR, "metrics listener %s port %u: %s", s->cfg.metrics_bind,
                 s->cfg.metrics_port, weft_strerror(rc));
            goto fail;
        }
        svc->metrics_fd = rc;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&svc->tid, NULL, svc_main, svc);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        goto fail;
    *out = svc;
    return 0;
fail:
    svc->tid = 0;
    stsvc_stop(svc);
    return rc;
}

void stsvc_stop(st_service *svc)
{
    if (!svc)
        return;
    if (svc->tid) {
        uint64_t one = 1;
        ssize_t n = write(svc->stop_efd, &one, sizeof(one));
        (void)n;
        pthread_join(svc->tid, NULL);
    }
    while (svc->nclients)
        client_free(svc, 0);
    if (svc->admin_fd >= 0) {
        close(svc->admin_fd);
        if (svc->have_path)
            unlink(svc->path);
    }
    if (svc->metrics_fd >= 0)
        close(svc->metrics_fd);
    if (svc->stop_efd >= 0)
        close(svc->stop_efd);
    st_registry *reg = svc->reg;
    st_snap *cur = svc->cur;
    rcu_assign_pointer(svc->reg, NULL);
    rcu_assign_pointer(svc->cur, NULL);
    /* Readers of weft_server_snapshot may still be inside a copy. */
    synchronize_rcu();
    GRACE_ACQUIRE();
    free(cur);
    free(reg);
    free(svc);
}

const char *stsvc_admin_path(const st_service *svc)
{
    return svc && svc->admin_fd >= 0 ? svc->path : NULL;
}

uint16_t stsvc_metrics_port(const st_service *svc) { return svc ? svc->metrics_port : 0; }
