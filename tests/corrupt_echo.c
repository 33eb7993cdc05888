/*
 * tests/corrupt_echo.c — a test-only echo server that damages what it echoes.
 *
 *     corrupt_echo [--every KIB] [--lifetime SECONDS] PORT
 *
 * Listens on 127.0.0.1 and ::1 (when IPv6 is available) on PORT; PORT 0 picks
 * a free port. Prints the port on stdout (one line) once it is listening, so
 * a test can start it without racing for a port. Echoes every byte, except
 * that one byte in every KIB KiB echoed (all connections together) is
 * flipped; --every 0 echoes faithfully. Exits on SIGINT/SIGTERM, or by
 * itself after --lifetime seconds (default 60) so it never outlives a test.
 *
 * One thread, level-triggered epoll. Output that does not fit the socket is
 * kept per connection and the connection is not read again until it drained,
 * so memory stays bounded by one read per connection.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (64u << 10)

typedef struct pend {
    char *buf; /* unsent output, NULL when none */
    size_t off, len;
} pend;

static volatile sig_atomic_t g_stop;
static pend *g_pend;
static int g_maxfd;
static uint64_t g_every, g_echoed, g_next_flip, g_flips;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int listen_on(int family, unsigned *port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)*port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)*port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
        close(fd);
        return -1;
    }
    if (*port == 0) {
        len = sizeof(ss);
        getsockname(fd, (struct sockaddr *)&ss, &len);
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same offset in sin6 */
    }
    return fd;
}

static void set_interest(int ep, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void drop(int fd)
{
    free(g_pend[fd].buf);
    g_pend[fd] = (pend){0};
    close(fd);
}

/* Flips the byte of buf[0..n) that crosses the next corruption point, if any. */
static void maybe_corrupt(char *buf, size_t n)
{
    if (g_every && g_echoed + n > g_next_flip) {
        buf[g_next_flip - g_echoed] ^= 0x5A;
        g_next_flip += g_every;
        g_flips++;
    }
    g_echoed += n;
}

/* Writes buf[0..n) to fd; keeps what did not fit. Returns -1 if fd was closed. */
static int send_out(int ep, int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w < 0) {
            drop(fd);
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    pend *p = &g_pend[fd];
    if (n) {
        if (!p->buf && !(p->buf = malloc(BUF_SIZE))) {
            drop(fd);
            return -1;
        }
        memmove(p->buf, buf, n);
        p->off = 0;
        p->len = n;
        set_interest(ep, fd, EPOLLOUT); /* stop reading until this drains */
    }
    return 0;
}

static void on_readable(int ep, int fd, char *buf)
{
    ssize_t n = recv(fd, buf, BUF_SIZE, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK)) {
        drop(fd);
        return;
    }
    if (n > 0) {
        maybe_corrupt(buf, (size_t)n);
        send_out(ep, fd, buf, (size_t)n);
    }
}

static void on_writable(int ep, int fd)
{
    pend *p = &g_pend[fd];
    while (p->off < p->len) {
        ssize_t w = send(fd, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* still waiting for EPOLLOUT */
        if (w < 0) {
            drop(fd);
            return;
        }
        p->off += (size_t)w;
    }
    p->off = p->len = 0;
    set_interest(ep, fd, EPOLLIN);
}

static void usage(void)
{
    fprintf(stderr, "usage: corrupt_echo [--every KIB] [--lifetime SECONDS] PORT\n"
                    "  --every KIB        flip one byte per KIB KiB echoed (default 64; 0: "
                    "never)\n"
                    "  --lifetime SECONDS exit after this long (default 60)\n"
                    "  PORT               0 picks a free port; the port is printed on stdout\n");
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned long every_kib = 64, lifetime = 60;
    int argi = 1;
    for (; argi < argc - 1; argi += 2) {
        char *end;
        unsigned long v = strtoul(argv[argi + 1], &end, 10);
        if (*end || end == argv[argi + 1])
            usage();
        if (strcmp(argv[argi], "--every") == 0)
            every_kib = v;
        else if (strcmp(argv[argi], "--lifetime") == 0)
            lifetime = v;
        else
            usage();
    }
    if (argi != argc - 1)
        usage();
    char *end;
    unsigned long p = strtoul(argv[argi], &end, 10);
    if (*end || p > 65535)
        usage();
    unsigned port = (unsigned)p;
    g_every = (uint64_t)every_kib * 1024;
    g_next_flip = g_every ? g_every - 1 : 0;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    g_maxfd = rl.rlim_cur > 1000000 ? 1000000 : (int)rl.rlim_cur;
    g_pend = calloc((size_t)g_maxfd, sizeof(pend));
    char *buf = malloc(BUF_SIZE);
    if (!g_pend || !buf)
        return 2;

    int lfd[2];
    lfd[0] = listen_on(AF_INET, &port);
    if (lfd[0] < 0) {
        perror("corrupt_echo: listen on 127.0.0.1");
        return 2;
    }
    lfd[1] = listen_on(AF_INET6, &port); /* optional: ::1 on the same port */

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < 2; i++)
        if (lfd[i] >= 0) {
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd[i]};
            epoll_ctl(ep, EPOLL_CTL_ADD, lfd[i], &ev);
        }
    printf("%u\n", port);
    fflush(stdout);

    time_t deadline = time(NULL) + (time_t)lifetime;
    struct epoll_event evs[256];
    while (!g_stop && time(NULL) < deadline) {
        int n = epoll_wait(ep, evs, 256, 200);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd[0] || fd == lfd[1]) {
                for (int k = 0; k < 64; k++) {
                    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0)
                        break;
                    if (c >= g_maxfd) {
                        close(c);
                        continue;
                    }
                    int one = 1; /* echo small messages at once, as a server should */
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                }
            } else if (g_pend[fd].len) {
                on_writable(ep, fd);
            } else {
                on_readable(ep, fd, buf);
            }
        }
    }
    fprintf(stderr, "corrupt_echo: echoed %llu bytes, flipped %llu\n", (unsigned long long)g_echoed,
            (unsigned long long)g_flips);
    return 0;
}
