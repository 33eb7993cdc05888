/*
 * tests/ft_lib.c — shared helpers for the fault tests (see ft_lib.h).
 */
#include "ft_lib.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "tools/hist.h"

/* ---- healthy traffic ----------------------------------------------------- */

#define MSG_MIN     8
#define MSG_MAX     200
#define REPLY_LIMIT 10000 /* ms: a slower reply is an error, not latency */

typedef struct hconn {
    int fd;
    itl_rng rng;
    char msg[MSG_MAX];
    size_t len;      /* of the message in flight, 0 when none */
    size_t sent;     /* bytes of it written */
    size_t got;      /* bytes of its echo verified */
    int64_t t_send;  /* ns: when it was sent */
    int64_t next_ms; /* when the next message is due */
    int dead;
} hconn;

struct ft_healthy {
    pthread_t thread;
    int nconns, interval_ms;
    hconn *c;
    int stop;             /* atomic */
    uint64_t msgs, bytes; /* atomic, written by the thread */
    uint64_t mismatches, errors;
    int64_t start_ms, end_ms;
    lhist lat; /* microseconds */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void h_fail(ft_healthy *h, hconn *c, const char *what, int err)
{
    if (c->dead)
        return;
    fprintf(stderr, "healthy conn %d: %s%s%s\n", (int)(c - h->c), what, err ? ": " : "",
            err ? strerror(err) : "");
    c->dead = 1;
    h->errors++;
}

/* A new line of printable bytes; the last one is '\n'. */
static void h_new_msg(hconn *c)
{
    c->len = (size_t)itl_rng_range(&c->rng, MSG_MIN, MSG_MAX);
    for (size_t i = 0; i + 1 < c->len; i++)
        c->msg[i] = (char)('!' + itl_rng_next(&c->rng) % 94);
    c->msg[c->len - 1] = '\n';
    c->sent = c->got = 0;
    c->t_send = now_ns();
}

static void h_write(ft_healthy *h, hconn *c)
{
    while (c->sent < c->len) {
        ssize_t w = send(c->fd, c->msg + c->sent, c->len - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w < 0) {
            h_fail(h, c, "write", errno);
            return;
        }
        c->sent += (size_t)w;
    }
}

static void h_read(ft_healthy *h, hconn *c)
{
    char buf[512];
    for (;;) {
        ssize_t r = read(c->fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0) {
            h_fail(h, c, "read", errno);
            return;
        }
        if (r == 0) {
            h_fail(h, c, "the server closed the connection", 0);
            return;
        }
        if (c->got + (size_t)r > c->sent || memcmp(buf, c->msg + c->got, (size_t)r) != 0) {
            fprintf(stderr, "healthy conn %d: echo differs from what was sent\n", (int)(c - h->c));
            h->mismatches++;
            c->dead = 1;
            return;
        }
        c->got += (size_t)r;
        if (c->got == c->len) {
            lh_record(&h->lat, (uint64_t)(now_ns() - c->t_send) / 1000);
            __atomic_store_n(&h->bytes, h->bytes + c->len, __ATOMIC_RELAXED);
            __atomic_store_n(&h->msgs, h->msgs + 1, __ATOMIC_RELAXED);
            c->len = 0;
        }
    }
}

static void *h_main(void *arg)
{
    ft_healthy *h = arg;
    struct pollfd *pf = calloc((size_t)h->nconns, sizeof(*pf));
    IT_CHECK(pf, "out of memory");
    while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
        int64_t now = itl_now_ms();
        int wait = 20;
        for (int i = 0; i < h->nconns; i++) {
            hconn *c = &h->c[i];
            pf[i].fd = c->dead ? -1 : c->fd;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
            if (c->dead)
                continue;
            if (c->len == 0 && now >= c->next_ms) {
                h_new_msg(c);
                c->next_ms = now + h->interval_ms;
                h_write(h, c);
            }
            if (c->len && c->sent < c->len)
                pf[i].events |= POLLOUT;
            if (c->len && (now_ns() - c->t_send) / 1000000 > REPLY_LIMIT)
                h_fail(h, c, "no reply within 10 s", 0);
            if (c->len == 0 && c->next_ms - now < wait)
                wait = (int)(c->next_ms - now);
        }
        int n = poll(pf, (nfds_t)h->nconns, wait < 0 ? 0 : wait);
        if (n < 0 && errno != EINTR)
            IT_CHECK(0, "poll: %s", strerror(errno));
        for (int i = 0; n > 0 && i < h->nconns; i++) {
            hconn *c = &h->c[i];
            if (c->dead || !pf[i].revents)
                continue;
            if (pf[i].revents & POLLOUT)
                h_write(h, c);
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR))
                h_read(h, c);
        }
    }
    free(pf);
    return NULL;
}

ft_healthy *ft_healthy_start(uint16_t port, int nconns, int interval_ms, uint64_t seed)
{
    ft_healthy *h = calloc(1, sizeof(*h));
    IT_CHECK(h, "out of memory");
    h->c = calloc((size_t)nconns, sizeof(*h->c));
    IT_CHECK(h->c, "out of memory");
    h->nconns = nconns;
    h->interval_ms = interval_ms;
    lh_init(&h->lat);
    int64_t now = itl_now_ms();
    for (int i = 0; i < nconns; i++) {
        hconn *c = &h->c[i];
        c->fd = itl_connect("127.0.0.1", port, 5000, 0);
        IT_CHECK(c->fd >= 0, "healthy connect to port %u: %s", port, strerror(-c->fd));
        c->rng.s = seed * 7919 + (uint64_t)i;
        /* Spread the sends over the interval. */
        c->next_ms = now + (int64_t)interval_ms * i / nconns;
    }
    h->start_ms = now;
    IT_CHECK(pthread_create(&h->thread, NULL, h_main, h) == 0, "pthread_create");
    return h;
}

uint64_t ft_healthy_msgs(ft_healthy *h) { return __atomic_load_n(&h->msgs, __ATOMIC_RELAXED); }

uint64_t ft_healthy_bytes(ft_healthy *h) { return __atomic_load_n(&h->bytes, __ATOMIC_RELAXED); }

void ft_healthy_expect_progress(ft_healthy *h, int timeout_ms, const char *when)
{
    uint64_t m0 = ft_healthy_msgs(h);
    int64_t deadline = itl_now_ms() + timeout_ms;
    while (ft_healthy_msgs(h) == m0 && itl_now_ms() < deadline)
        itl_sleep_ms(10);
    IT_CHECK(ft_healthy_msgs(h) > m0, "healthy traffic stalled for %d ms %s", timeout_ms, when);
}

void ft_healthy_stop(ft_healthy *h, ft_healthy_result *r)
{
    __atomic_store_n(&h->stop, 1, __ATOMIC_RELEASE);
    pthread_join(h->thread, NULL);
    h->end_ms = itl_now_ms();
    for (int i = 0; i < h->nconns; i++) {
        hconn *c = &h->c[i];
        /* A message still in flight must not be lost either: wait for it. */
        if (!c->dead && c->len) {
            for (int k = 0; k < 1000 && !c->dead && c->len && c->sent < c->len; k++) {
                h_write(h, c);
                itl_sleep_ms(1);
            }
            int64_t deadline = itl_now_ms() + REPLY_LIMIT;
            while (!c->dead && c->len && itl_now_ms() < deadline) {
                struct pollfd p = {.fd = c->fd, .events = POLLIN};
                if (poll(&p, 1, 100) > 0)
                    h_read(h, c);
            }
            if (c->len)
                h_fail(h, c, "last reply missing", 0);
        }
        close(c->fd);
    }
    memset(r, 0, sizeof(*r));
    r->msgs = h->msgs;
    r->bytes = h->bytes;
    r->mismatches = h->mismatches;
    r->errors = h->errors;
    r->p50_us = lh_percentile(&h->lat, 50);
    r->p99_us = lh_percentile(&h->lat, 99);
    r->max_us = lh_percentile(&h->lat, 100);
    r->ms = h->end_ms - h->start_ms;
    r->conns = h->nconns;
    free(h->c);
    free(h);
}

void ft_healthy_check(const char *fault, const char *mode, long n, const ft_healthy_result *r,
                      uint64_t min_msgs)
{
    printf("FT_RESULT fault=%s mode=%s n=%ld ms=%lld conns=%d msgs=%llu mismatches=%llu "
           "errors=%llu p50_us=%llu p99_us=%llu max_us=%llu\n",
           fault, mode, n, (long long)r->ms, r->conns, (unsigned long long)r->msgs,
           (unsigned long long)r->mismatches, (unsigned long long)r->errors,
           (unsigned long long)r->p50_us, (unsigned long long)r->p99_us,
           (unsigned long long)r->max_us);
    fflush(stdout);
    IT_CHECK(r->mismatches == 0, "%llu healthy echoes differed", (unsigned long long)r->mismatches);
    IT_CHECK(r->errors == 0, "%llu healthy connections failed", (unsigned long long)r->errors);
    IT_CHECK(r->msgs >= min_msgs, "only %llu healthy messages (want >= %llu)",
             (unsigned long long)r->msgs, (unsigned long long)min_msgs);
}

void ft_fault_nice(int on)
{
    /* Linux keeps the policy and the nice value per thread: pid 0 and
     * PRIO_PROCESS with a thread id are this thread. SCHED_IDLE runs only
     * on CPU time nothing else wants; where it cannot be set (an
     * unprivileged user leaving it needs RLIMIT_NICE), nice 19 instead. */
    struct sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(0, on ? SCHED_IDLE : SCHED_OTHER, &sp) != 0 || !on)
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), on ? 19 : 0);
}

/* ---- the server --------------------------------------------------------- */

void ft_server_start(itl_server *srv, const char *echo, const char *const *args, char *sock,
                     const char *prefix)
{
    static int seq;
    snprintf(sock, 108, "/tmp/ft-%d-%d.sock", (int)getpid(), seq++);
    unlink(sock);
    const char *argv[60];
    char script[256];
    int k = 0;
    const char *path = echo;
    if (prefix) {
        /* sh -c 'PREFIX exec "$0" "$@"' ECHO ARGS...: the PID stays the server's. */
        snprintf(script, sizeof(script), "%s exec \"$0\" \"$@\"", prefix);
        path = "/bin/sh";
        argv[k++] = "-c";
        argv[k++] = script;
        argv[k++] = echo;
    }
    for (int i = 0; args && args[i] && k < 50; i++)
        argv[k++] = args[i];
    argv[k++] = "--stats-socket";
    argv[k++] = sock;
    argv[k] = NULL;
    int rc = itl_server_start(srv, path, argv, 10000);
    IT_CHECK(rc == 0, "cannot start %s: %s", echo, strerror(-rc));
}

/* Connect, send "stats\nquit\n", read the answer to EOF; NULL on failure. */
static char *admin_stats(const char *sock)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    static const char cmd[] = "stats\nquit\n";
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, cmd, sizeof(cmd) - 1) != (ssize_t)(sizeof(cmd) - 1)) {
        close(fd);
        return NULL;
    }
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (buf)
        buf[len] = '\0';
    return buf;
}

int64_t ft_stat(const char *sock, const char *name)
{
    char *s = admin_stats(sock);
    if (!s)
        return -1;
    int64_t v = -1;
    size_t nl = strlen(name);
    for (char *line = s; line && *line;) {
        if (strncmp(line, name, nl) == 0 && line[nl] == ' ') {
            v = strtoll(line + nl + 1, NULL, 10);
            break;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    free(s);
    return v;
}

int64_t ft_wait_stat(const char *sock, const char *name, int64_t want, int timeout_ms)
{
    int64_t deadline = itl_now_ms() + timeout_ms, v;
    while ((v = ft_stat(sock, name)) < want && itl_now_ms() < deadline)
        itl_sleep_ms(50);
    return v;
}

int64_t ft_wait_stat_eq(const char *sock, const char *name, int64_t want, int timeout_ms)
{
    int64_t deadline = itl_now_ms() + timeout_ms, v;
    while ((v = ft_stat(sock, name)) != want && itl_now_ms() < deadline)
        itl_sleep_ms(50);
    return v;
}

int ft_settle(const itl_server *srv, const char *sock, int open)
{
    int64_t v = ft_wait_stat_eq(sock, "open", open, 10000);
    IT_CHECK(v == open, "open %lld, want %d", (long long)v, open);
    int prev = -1, n = itl_count_fds(srv->pid);
    for (int i = 0; i < 50 && n != prev; i++) {
        itl_sleep_ms(50);
        prev = n;
        n = itl_count_fds(srv->pid);
    }
    return n;
}

long ft_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the ")" that ends the command name: state is field 3,
     * utime field 14, stime field 15. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut, st;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

/* ---- the command line ---------------------------------------------------- */

void ft_parse(int argc, char **argv, int nload, long default_n, ft_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->n = default_n;
    o->healthy_conns = 16;
    if (argc < 2 + nload) {
        fprintf(stderr, "usage: %s ECHO%s [-n N] [--baseline MS]\n", argv[0], nload ? " LOAD" : "");
        exit(2);
    }
    o->echo = argv[1];
    if (nload)
        o->load = argv[2];
    for (int i = 2 + nload; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            o->n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--baseline") == 0 && i + 1 < argc)
            o->baseline_ms = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "%s: unknown argument %s\n", argv[0], argv[i]);
            exit(2);
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
}

int ft_run_baseline(const char *fault, const ft_opts *o, const char *const *args)
{
    return ft_run_baseline_as(fault, o, args, NULL, o->healthy_conns);
}

int ft_run_baseline_as(const char *fault, const ft_opts *o, const char *const *args,
                       const char *prefix, int conns)
{
    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o->echo, args, sock, prefix);
    ft_healthy *h = ft_healthy_start(srv.port, conns, 10, 1);
    itl_sleep_ms((int)o->baseline_ms);
    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    ft_healthy_check(fault, "baseline", o->n, &r, 1);
    return 0;
}

void ft_need_fds(long need)
{
    long have = itl_raise_nofile();
    IT_CHECK(have >= need, "this test needs %ld fds, RLIMIT_NOFILE allows %ld", need, have);
}
