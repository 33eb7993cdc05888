/*
 * tests/itlib.c — shared helpers for the integration tests (see itlib.h).
 */
#include "itlib.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Servers started by this process, killed (by PID) when a check fails. */
#define ITL_MAX_SERVERS 8
static pid_t g_servers[ITL_MAX_SERVERS];

static void track(pid_t pid, int on)
{
    for (int i = 0; i < ITL_MAX_SERVERS; i++)
        if (on ? g_servers[i] == 0 : g_servers[i] == pid) {
            g_servers[i] = on ? pid : 0;
            return;
        }
}

void itl_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    for (int i = 0; i < ITL_MAX_SERVERS; i++)
        if (g_servers[i] > 0) {
            kill(g_servers[i], SIGKILL);
            waitpid(g_servers[i], NULL, 0);
            g_servers[i] = 0;
        }
    exit(1);
}

int64_t itl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void itl_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long itl_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -1;
    }
    return rl.rlim_cur == RLIM_INFINITY ? (1L << 30) : (long)rl.rlim_cur;
}

int itl_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Wait for events on one fd until deadline; >0 ready, 0 timed out, -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - itl_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n > 0)
            return 1;
    }
}

int itl_connect(const char *host, uint16_t port, int timeout_ms, int rcvbuf)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        len = sizeof(*s6);
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    int err = 0;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        if (errno != EINPROGRESS) {
            err = -errno;
            goto fail;
        }
        int r = wait_fd(fd, POLLOUT, itl_now_ms() + timeout_ms);
        if (r <= 0) {
            err = r == 0 ? -ETIMEDOUT : r;
            goto fail;
        }
        socklen_t el = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        if (err != 0) {
            err = -err;
            goto fail;
        }
    }
    return fd;
fail:
    close(fd);
    return err;
}

int itl_write_all(int fd, const void *buf, size_t n, int timeout_ms)
{
    const char *p = buf;
    int64_t deadline = itl_now_ms() + timeout_ms;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return -errno;
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r <= 0)
            return r == 0 ? -ETIMEDOUT : r;
    }
    return 0;
}

int itl_read_exact(int fd, void *buf, size_t n, int timeout_ms, size_t *got)
{
    char *p = buf;
    size_t have = 0;
    int64_t deadline = itl_now_ms() + timeout_ms;
    int rc = 0;
    while (have < n) {
        ssize_t r = read(fd, p + have, n - have);
        if (r > 0) {
            have += (size_t)r;
            continue;
        }
        if (r == 0) {
            rc = -EPIPE;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            rc = -errno;
            break;
        }
        int w = wait_fd(fd, POLLIN, deadline);
        if (w <= 0) {
            rc = w == 0 ? -ETIMEDOUT : w;
            break;
        }
    }
    if (got)
        *got = have;
    return rc;
}

int itl_expect_eof(int fd, int timeout_ms)
{
    int64_t deadline = itl_now_ms() + timeout_ms;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r == 0)
            return 0;
        if (r > 0)
            return -EPROTO;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        int w = wait_fd(fd, POLLIN, deadline);
        if (w <= 0)
            return w == 0 ? -ETIMEDOUT : w;
    }
}

int itl_count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    /* Our own listing of /proc/self/fd holds the directory open. */
    if (pid == getpid())
        n--;
    return n;
}

int itl_wait_fds(pid_t pid, int want, int timeout_ms)
{
    int64_t deadline = itl_now_ms() + timeout_ms;
    int n;
    while ((n = itl_count_fds(pid)) != want && itl_now_ms() < deadline)
        itl_sleep_ms(20);
    return n;
}

long itl_vmrss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* ---- the weft-echo child -------------------------------------------------- */

/* Parse "... listening on ADDR:PORT, ..." (ADDR may be [v6]); 0 if absent. */
static int parse_port(const char *line, uint16_t *port)
{
    const char *p = strstr(line, "listening on ");
    if (!p)
        return 0;
    const char *end = strchr(p, ',');
    if (!end)
        return 0;
    const char *colon = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == ':')
            colon = q;
    if (!colon)
        return 0;
    long v = strtol(colon + 1, NULL, 10);
    if (v <= 0 || v > 65535)
        return 0;
    *port = (uint16_t)v;
    return 1;
}

int itl_server_start(itl_server *srv, const char *path, const char *const *args, int timeout_ms)
{
    const char *argv[64];
    int k = 0;
    argv[k++] = path;
    for (int i = 0; args && args[i] && k < 60; i++)
        argv[k++] = args[i];
    argv[k++] = "--port";
    argv[k++] = "0";
    argv[k] = NULL;

    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(p[0]);
        close(p[1]);
        return e;
    }
    if (pid == 0) {
        /* The server must not outlive a test that crashed or was killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(p[1], STDOUT_FILENO);
        execv(path, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    track(pid, 1);
    srv->pid = pid;
    srv->out_fd = p[0];
    srv->port = 0;
    itl_set_nonblock(p[0]);

    char buf[4096];
    size_t len = 0;
    int64_t deadline = itl_now_ms() + timeout_ms;
    for (;;) {
        buf[len] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n')) != NULL) {
            *nl = '\0';
            fprintf(stderr, "[server %d] %s\n", (int)pid, buf);
            int found = parse_port(buf, &srv->port);
            memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf) + 1);
            len = strlen(buf);
            if (found)
                return 0;
        }
        int w = wait_fd(p[0], POLLIN, deadline);
        ssize_t r = w > 0 ? read(p[0], buf + len, sizeof(buf) - 1 - len) : -1;
        if (r < 0 && w > 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0 || len + (size_t)r >= sizeof(buf) - 1) {
            fprintf(stderr, "itlib: %s did not print its port within %d ms\n", path, timeout_ms);
            itl_server_stop(srv, 2000);
            return -ETIMEDOUT;
        }
        len += (size_t)r;
    }
}

int itl_server_alive(itl_server *srv)
{
    int st;
    return srv->pid > 0 && waitpid(srv->pid, &st, WNOHANG) == 0;
}

/* Copy what the server printed since the port line to our stderr. */
static void drain_output(itl_server *srv)
{
    char buf[4096];
    ssize_t r;
    while ((r = read(srv->out_fd, buf, sizeof(buf))) > 0)
        fprintf(stderr, "%.*s", (int)r, buf);
}

int itl_server_stop(itl_server *srv, int timeout_ms)
{
    if (srv->pid <= 0)
        return -1;
    kill(srv->pid, SIGTERM);
    int64_t deadline = itl_now_ms() + timeout_ms;
    int st, rc = -1;
    for (;;) {
        drain_output(srv);
        pid_t r = waitpid(srv->pid, &st, WNOHANG);
        if (r == srv->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (r < 0 || itl_now_ms() >= deadline) {
            fprintf(stderr, "itlib: server %d did not exit within %d ms: killing it\n",
                    (int)srv->pid, timeout_ms);
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, &st, 0);
            break;
        }
        itl_sleep_ms(10);
    }
    drain_output(srv);
    close(srv->out_fd);
    track(srv->pid, 0);
    srv->pid = -1;
    return rc;
}

/* ---- deterministic data ---------------------------------------------------- */

uint64_t itl_rng_next(itl_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t itl_rng_range(itl_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + itl_rng_next(r) % (hi - lo + 1);
}

uint64_t itl_rng_logsize(itl_rng *r, uint64_t max)
{
    int bits = 0;
    while (bits < 63 && (1ULL << (bits + 1)) <= max)
        bits++;
    uint64_t top = 1ULL << itl_rng_range(r, 0, (uint64_t)bits);
    uint64_t v = itl_rng_range(r, top, top * 2 - 1);
    return v > max ? max : v;
}

void itl_stream_init(itl_stream *st, uint64_t seed)
{
    st->rng.s = seed;
    st->left = 0;
    st->pos = 0;
    st->word = 0;
}

static unsigned char stream_byte(itl_stream *st)
{
    if (st->left == 0) {
        st->word = itl_rng_next(&st->rng);
        st->left = 8;
    }
    unsigned char b = (unsigned char)st->word;
    st->word >>= 8;
    st->left--;
    st->pos++;
    return b;
}

void itl_stream_fill(itl_stream *st, void *buf, size_t n)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = stream_byte(st);
}

long itl_stream_verify(itl_stream *st, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < n; i++)
        if (stream_byte(st) != p[i])
            return (long)i;
    return -1;
}

/* ---- the random echo conversation ------------------------------------------ */

#define ECHO_CHUNK_MAX (256 * 1024)

typedef struct echo_conn {
    int fd;
    itl_stream tx, rx;
    itl_rng rng;       /* chunk and read sizes, message sizes */
    uint64_t total;    /* bytes to send */
    uint64_t sent;     /* bytes produced into txbuf so far */
    uint64_t received; /* bytes verified */
    uint64_t msg_left; /* bytes left of the current message */
    uint64_t msgs, writes, reads;
    char *txbuf;
    size_t tx_off, tx_len;
} echo_conn;

/* Next message size: mostly small, some medium, some up to max. */
static uint64_t msg_size(itl_rng *r, uint64_t max)
{
    uint64_t k = itl_rng_next(r) % 10;
    uint64_t hi = k < 5 ? 512 : k < 8 ? 65536 : max;
    return itl_rng_range(r, 1, hi < max ? hi : max);
}

/*
 * Produce the next write: a random target size, filled message by message.
 * A large message is split over several writes; small ones are coalesced,
 * and half the time the write ends at a message boundary.
 */
static void next_chunk(echo_conn *c, uint64_t max_msg)
{
    uint64_t target = itl_rng_logsize(&c->rng, ECHO_CHUNK_MAX);
    int align = (int)(itl_rng_next(&c->rng) & 1);
    size_t n = 0;
    while (n < target && c->sent + n < c->total) {
        if (c->msg_left == 0) {
            c->msg_left = msg_size(&c->rng, max_msg);
            c->msgs++;
        }
        uint64_t take = c->msg_left;
        if (take > target - n)
            take = target - n;
        if (take > c->total - c->sent - n)
            take = c->total - c->sent - n;
        n += (size_t)take;
        c->msg_left -= take;
        if (align && c->msg_left == 0)
            break;
    }
    itl_stream_fill(&c->tx, c->txbuf, n);
    c->sent += n;
    c->tx_off = 0;
    c->tx_len = n;
}

/* Write what the socket takes; 0, or -errno on a real error. */
static int echo_write(echo_conn *c, uint64_t max_msg)
{
    for (int i = 0; i < 8; i++) {
        if (c->tx_off == c->tx_len) {
            if (c->sent == c->total)
                return 0;
            next_chunk(c, max_msg);
        }
        ssize_t w = send(c->fd, c->txbuf + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        c->writes++;
        c->tx_off += (size_t)w;
        if (c->tx_off < c->tx_len)
            return 0; /* the socket is full */
    }
    return 0;
}

/* Read and verify what arrived; 0, -EPIPE at an early EOF, -EBADMSG, -errno. */
static int echo_read(echo_conn *c, char *buf, int idx)
{
    for (int i = 0; i < 8 && c->received < c->total; i++) {
        size_t want = (size_t)itl_rng_logsize(&c->rng, ECHO_CHUNK_MAX);
        ssize_t r = read(c->fd, buf, want);
        if (r == 0)
            return -EPIPE;
        if (r < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        c->reads++;
        if (c->received + (uint64_t)r > c->sent) {
            fprintf(stderr, "conn %d: %llu bytes echoed but only %llu sent\n", idx,
                    (unsigned long long)(c->received + (uint64_t)r), (unsigned long long)c->sent);
            return -EBADMSG;
        }
        long bad = itl_stream_verify(&c->rx, buf, (size_t)r);
        if (bad >= 0) {
            fprintf(stderr, "conn %d: echoed byte %llu differs from what was sent\n", idx,
                    (unsigned long long)(c->received + (uint64_t)bad));
            return -EBADMSG;
        }
        c->received += (uint64_t)r;
        if ((size_t)r < want)
            return 0;
    }
    return 0;
}

uint64_t itl_echo_random(const char *host, uint16_t port, int nconns, uint64_t per_conn,
                         uint64_t max_msg, uint64_t seed, int timeout_ms)
{
    echo_conn *cs = calloc((size_t)nconns, sizeof(*cs));
    struct pollfd *pf = calloc((size_t)nconns, sizeof(*pf));
    char *rxbuf = malloc(ECHO_CHUNK_MAX);
    IT_CHECK(cs && pf && rxbuf, "out of memory");
    for (int i = 0; i < nconns; i++) {
        echo_conn *c = &cs[i];
        c->fd = itl_connect(host, port, 5000, 0);
        IT_CHECK(c->fd >= 0, "connect %s port %u: %s", host, port, strerror(-c->fd));
        uint64_t s = seed * 1000003ULL + (uint64_t)i;
        itl_stream_init(&c->tx, s);
        itl_stream_init(&c->rx, s);
        c->rng.s = ~s;
        c->total = per_conn;
        c->txbuf = malloc(ECHO_CHUNK_MAX);
        IT_CHECK(c->txbuf, "out of memory");
    }
    int64_t deadline = itl_now_ms() + timeout_ms;
    int done = 0;
    while (done < nconns) {
        IT_CHECK(itl_now_ms() < deadline, "echo not complete after %d ms", timeout_ms);
        int n = 0;
        for (int i = 0; i < nconns; i++) {
            echo_conn *c = &cs[i];
            if (c->received == c->total)
                continue;
            pf[n].fd = c->fd;
            pf[n].events = POLLIN;
            if (c->sent < c->total || c->tx_off < c->tx_len)
                pf[n].events |= POLLOUT;
            pf[n].revents = 0;
            n++;
        }
        int r = poll(pf, (nfds_t)n, 200);
        IT_CHECK(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
        if (r <= 0)
            continue;
        for (int k = 0, i = 0; k < n; k++) {
            while (cs[i].fd != pf[k].fd)
                i++;
            echo_conn *c = &cs[i];
            if (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                int e = echo_read(c, rxbuf, i);
                IT_CHECK(e == 0, "conn %d: read after %llu of %llu bytes: %s", i,
                         (unsigned long long)c->received, (unsigned long long)c->total,
                         e == -EPIPE ? "early EOF" : strerror(-e));
                if (c->received == c->total)
                    done++;
            }
            if (pf[k].revents & POLLOUT) {
                int e = echo_write(c, max_msg);
                IT_CHECK(e == 0, "conn %d: write: %s", i, strerror(-e));
            }
        }
    }
    uint64_t total = 0, msgs = 0, writes = 0, reads = 0;
    for (int i = 0; i < nconns; i++) {
        total += cs[i].received;
        msgs += cs[i].msgs;
        writes += cs[i].writes;
        reads += cs[i].reads;
        close(cs[i].fd);
        free(cs[i].txbuf);
    }
    fprintf(stderr,
            "echo %s port %u: %d conns, %llu bytes, %llu messages, %llu writes, %llu reads\n", host,
            port, nconns, (unsigned long long)total, (unsigned long long)msgs,
            (unsigned long long)writes, (unsigned long long)reads);
    free(cs);
    free(pf);
    free(rxbuf);
    return total;
}

int itl_track(pid_t pid)
{
    for (int i = 0; i < ITL_MAX_SERVERS; i++)
        if (g_servers[i] == 0) {
            g_servers[i] = pid;
            return 0;
        }
    return -1;
}

int itl_notify_open(const char *dir, char *path, size_t n)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int k = snprintf(path, n, "%s/notify.sock", dir);
    if (k < 0 || (size_t)k >= n || (size_t)k >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, (size_t)k + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* buf holds a line that starts with want. */
static int has_line(const char *buf, const char *want)
{
    size_t w = strlen(want);
    for (const char *p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, want, w) == 0)
            return 1;
    return 0;
}

int itl_notify_wait(int fd, const char *want, char *buf, size_t n, int timeout_ms)
{
    int64_t end = itl_now_ms() + timeout_ms;
    for (;;) {
        ssize_t r = recv(fd, buf, n - 1, 0);
        if (r >= 0) {
            buf[r] = '\0';
            if (has_line(buf, want))
                return 0;
            continue;
        }
        int64_t left = end - itl_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        poll(&pf, 1, (int)left);
    }
}

int itl_reap(pid_t pid, int timeout_ms)
{
    int64_t end = itl_now_ms() + timeout_ms;
    int st;
    while (itl_now_ms() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        itl_sleep_ms(20);
    }
    return -1;
}
