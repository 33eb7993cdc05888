/*
 * tests/st_util.c — helpers for the statistics tests (see st_util.h).
 */
#include "st_util.h"

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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 16
static pid_t children[MAX_CHILDREN];
static char tmpdir[64];

static void forget_child(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

void st_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0)
            kill(children[i], SIGKILL);
    st_cleanup_dir();
    exit(1);
}

int64_t st_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void st_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

const char *st_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/weft-st-XXXXXX");
        ST_CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
    }
    return tmpdir;
}

void st_cleanup_dir(void)
{
    if (!tmpdir[0])
        return;
    /* Only files this test made: a socket or two and logs. */
    static const char *const names[] = {"admin.sock", "stale.sock", "echo.log"};
    char p[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    tmpdir[0] = 0;
}

pid_t st_start_echo(const char *echo, const char *sock, uint16_t *port, const char *const *extra)
{
    return st_start_echo_nofile(echo, sock, port, extra, 0);
}

pid_t st_start_echo_nofile(const char *echo, const char *sock, uint16_t *port,
                           const char *const *extra, long nofile)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = echo;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--stats-socket";
    argv[n++] = sock;
    for (; extra && *extra && n < 30; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    int pfd[2];
    ST_CHECK(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    ST_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pfd[1], 1);
        struct rlimit rl = {(rlim_t)nofile, (rlim_t)nofile};
        if (nofile > 0 && setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(126);
        execv(echo, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (!children[i]) {
            children[i] = pid;
            break;
        }
    /* Read its banner until the admin socket line (bounded). */
    char buf[4096];
    size_t len = 0;
    int64_t deadline = st_now_ms() + 10000;
    *port = 0;
    int have_admin = 0;
    while (!(*port && have_admin)) {
        int left = (int)(deadline - st_now_ms());
        ST_CHECK(left > 0, "weft-echo did not print its port and admin socket in 10 s: %.*s",
                 (int)len, buf);
        struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
        if (poll(&pf, 1, left) <= 0)
            continue;
        ssize_t r = read(pfd[0], buf + len, sizeof(buf) - 1 - len);
        ST_CHECK(r > 0, "weft-echo exited early: %.*s", (int)len, buf);
        len += (size_t)r;
        buf[len] = 0;
        const char *p = strstr(buf, "listening on 127.0.0.1:");
        if (p)
            *port = (uint16_t)atoi(p + strlen("listening on 127.0.0.1:"));
        have_admin =
            strstr(buf, "admin socket ") != NULL && strchr(strstr(buf, "admin socket "), '\n');
    }
    /* pfd[0] stays open (on purpose): closing it would make weft-echo's last
     * line ("stopped: ...") fail with EPIPE; the pipe holds that line. */
    return pid;
}

int st_stop(pid_t pid, int timeout_ms)
{
    kill(pid, SIGTERM);
    int64_t deadline = st_now_ms() + timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            forget_child(pid);
            return status;
        }
        if (st_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            forget_child(pid);
            return -1;
        }
        st_sleep_ms(10);
    }
}

int st_tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static unsigned char pattern(unsigned seed, size_t i)
{
    return (unsigned char)(seed * 31u + i * 7u + (i >> 8));
}

int st_echo_roundtrip(int fd, size_t n, unsigned seed)
{
    unsigned char buf[16384];
    size_t sent = 0, got = 0;
    /* Interleave: send a chunk, read what came back, so neither side's
     * buffers have to hold the whole message. */
    while (got < n) {
        if (sent < n) {
            size_t k = n - sent < sizeof(buf) ? n - sent : sizeof(buf);
            for (size_t i = 0; i < k; i++)
                buf[i] = pattern(seed, sent + i);
            ssize_t w = send(fd, buf, k, MSG_NOSIGNAL);
            if (w <= 0)
                return -1;
            sent += (size_t)w;
        }
        while (got < sent) {
            ssize_t r = recv(fd, buf, sent - got < sizeof(buf) ? sent - got : sizeof(buf), 0);
            if (r <= 0)
                return -1;
            for (ssize_t i = 0; i < r; i++)
                if (buf[i] != pattern(seed, got + (size_t)i))
                    return -1;
            got += (size_t)r;
        }
    }
    return 0;
}

/* Send cmd on fd (non-blocking), half-close, read to EOF: see st_admin. */
static char *exchange(int fd, const char *cmd, size_t cmdlen, int timeout_ms, int *reset)
{
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t off = 0, cap = 65536, len = 0;
    char *buf = malloc(cap);
    int64_t deadline = st_now_ms() + timeout_ms;
    if (reset)
        *reset = 0;
    for (;;) {
        int left = (int)(deadline - st_now_ms());
        if (left <= 0) {
            free(buf);
            close(fd);
            errno = ETIMEDOUT;
            return NULL;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN | (off < cmdlen ? POLLOUT : 0)};
        poll(&pf, 1, left);
        if (off < cmdlen && (pf.revents & POLLOUT)) {
            ssize_t w = send(fd, cmd + off, cmdlen - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN) {
                /* The server may stop reading (an oversized line): keep reading. */
                off = cmdlen;
            }
            if (off == cmdlen)
                shutdown(fd, SHUT_WR);
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (cap - len < 4096) {
                cap *= 2;
                buf = realloc(buf, cap);
            }
            ssize_t r = read(fd, buf + len, cap - len - 1);
            if (r == 0)
                break;
            if (r < 0 && errno == ECONNRESET) {
                if (reset)
                    *reset = 1;
                break;
            }
            if (r < 0 && errno != EAGAIN) {
                int e = errno;
                free(buf);
                close(fd);
                errno = e;
                return NULL;
            }
            if (r > 0)
                len += (size_t)r;
        }
    }
    close(fd);
    buf[len] = 0;
    return buf;
}

char *st_http(uint16_t port, const char *req, int timeout_ms)
{
    int fd = st_tcp_connect(port);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    return exchange(fd, req, strlen(req), timeout_ms, NULL);
}

uint16_t st_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ST_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    ST_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                 getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
             "bind: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

int st_unix_connect(const char *sock)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

char *st_admin(const char *sock, const char *cmd, size_t cmdlen, int timeout_ms, int *reset)
{
    int fd = st_unix_connect(sock);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    return exchange(fd, cmd, cmdlen, timeout_ms, reset);
}

int64_t st_json_num(const char *json, const char *obj, const char *key)
{
    char k[96];
    const char *p = json;
    if (obj) {
        snprintf(k, sizeof(k), "\"%s\":{", obj);
        p = strstr(json, k);
        if (!p)
            return -1;
        p += strlen(k) - 1;
    }
    snprintf(k, sizeof(k), "\"%s\":", key);
    p = strstr(p, k);
    if (!p)
        return -1;
    return strtoll(p + strlen(k), NULL, 10);
}

long st_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

char *st_run(const char *const *argv, int timeout_ms, int *status, char **err_out)
{
    int out[2], err[2];
    ST_CHECK(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0, "pipe");
    pid_t pid = fork();
    ST_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (!children[i]) {
            children[i] = pid;
            break;
        }
    size_t cap[2] = {65536, 4096}, len[2] = {0, 0};
    char *b[2] = {malloc(cap[0]), malloc(cap[1])};
    int fds[2] = {out[0], err[0]}, open_fds = 2;
    int64_t deadline = st_now_ms() + timeout_ms;
    while (open_fds) {
        int left = (int)(deadline - st_now_ms());
        ST_CHECK(left > 0, "%s did not finish in %d ms", argv[0], timeout_ms);
        struct pollfd pf[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
        poll(pf, 2, left);
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || !pf[i].revents)
                continue;
            if (cap[i] - len[i] < 4096)
                b[i] = realloc(b[i], cap[i] *= 2);
            ssize_t r = read(fds[i], b[i] + len[i], cap[i] - len[i] - 1);
            if (r > 0) {
                len[i] += (size_t)r;
            } else if (r == 0 || errno != EINTR) {
                close(fds[i]);
                fds[i] = -1;
                pf[i].fd = -1;
                open_fds--;
            }
        }
    }
    int st;
    for (;;) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        ST_CHECK(st_now_ms() < deadline, "%s did not exit in %d ms", argv[0], timeout_ms);
        st_sleep_ms(5);
    }
    forget_child(pid);
    b[0][len[0]] = 0;
    b[1][len[1]] = 0;
    *status = st;
    if (err_out)
        *err_out = b[1];
    else
        free(b[1]);
    return b[0];
}
