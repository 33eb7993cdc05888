/*
 * tests/itl_net.c — TCP and Unix connections for the tests: connect,
 * bounded reads and writes, echo round trips, a free port (see itlib.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "itl_int.h"
#include "itlib.h"

int itl_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

int itl__wait_fd(int fd, short events, int64_t deadline)
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
        int r = itl__wait_fd(fd, POLLOUT, itl_now_ms() + timeout_ms);
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
        int r = itl__wait_fd(fd, POLLOUT, deadline);
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
        int w = itl__wait_fd(fd, POLLIN, deadline);
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
        int w = itl__wait_fd(fd, POLLIN, deadline);
        if (w <= 0)
            return w == 0 ? -ETIMEDOUT : w;
    }
}

int itl_unix_connect(const char *path, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int64_t deadline = itl_now_ms() + timeout_ms;
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        int e = errno;
        close(fd);
        /* A Unix socket's connect does not wait in the background: EAGAIN
         * says the listener's backlog is full, so try again until the
         * deadline (a blocking connect would wait the same way). */
        if (e != EAGAIN && e != EINTR)
            return -e;
        if (itl_now_ms() >= deadline)
            return -ETIMEDOUT;
        itl_sleep_ms(5);
    }
}

uint16_t itl_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    IT_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    IT_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                 getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
             "bind 127.0.0.1 port 0: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

/* Round trips go chunk by chunk: small enough for any socket buffer pair. */
#define ROUNDTRIP_CHUNK 16384

int itl_echo_roundtrip(int fd, size_t n, uint64_t seed, int timeout_ms)
{
    unsigned char buf[ROUNDTRIP_CHUNK];
    itl_stream tx, rx;
    itl_stream_init(&tx, seed);
    itl_stream_init(&rx, seed);
    int64_t deadline = itl_now_ms() + timeout_ms;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
        int left = (int)(deadline - itl_now_ms());
        if (left <= 0)
            return -ETIMEDOUT;
        itl_stream_fill(&tx, buf, k);
        int rc = itl_write_all(fd, buf, k, left);
        if (rc != 0)
            return rc;
        left = (int)(deadline - itl_now_ms());
        rc = itl_read_exact(fd, buf, k, left > 0 ? left : 0, NULL);
        if (rc != 0)
            return rc;
        if (itl_stream_verify(&rx, buf, k) >= 0)
            return -EBADMSG;
        done += k;
    }
    return 0;
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
        if (itl__wait_fd(fd, POLLIN, end) < 0)
            return -errno;
    }
}
