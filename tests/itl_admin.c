/*
 * tests/itl_admin.c — the control endpoints as a client sees them: the
 * admin socket, HTTP (/metrics), and numbers out of a JSON answer (see
 * itlib.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itlib.h"

/* Give up on an answer after an error: close fd, free buf, keep errno e. */
static char *give_up(int fd, char *buf, int e)
{
    free(buf);
    close(fd);
    errno = e;
    return NULL;
}

/*
 * Send cmd on the connected non-blocking fd, half-close, read to EOF (or
 * a reset, *reset set) within timeout_ms; closes fd. See itl_admin.
 */
static char *exchange(int fd, const char *cmd, size_t cmdlen, int timeout_ms, int *reset)
{
    size_t off = 0, cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return give_up(fd, NULL, ENOMEM);
    int64_t deadline = itl_now_ms() + timeout_ms;
    if (reset)
        *reset = 0;
    for (;;) {
        int left = (int)(deadline - itl_now_ms());
        if (left <= 0)
            return give_up(fd, buf, ETIMEDOUT);
        struct pollfd pf = {.fd = fd, .events = POLLIN | (off < cmdlen ? POLLOUT : 0)};
        if (poll(&pf, 1, left) < 0 && errno != EINTR)
            return give_up(fd, buf, errno);
        if (off < cmdlen && (pf.revents & POLLOUT)) {
            ssize_t w = send(fd, cmd + off, cmdlen - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                off = cmdlen; /* the server may stop reading (an oversized line): keep reading */
            if (off == cmdlen)
                shutdown(fd, SHUT_WR);
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (cap - len < 4096) {
                char *nb = realloc(buf, cap *= 2);
                if (!nb)
                    return give_up(fd, buf, ENOMEM);
                buf = nb;
            }
            ssize_t r = read(fd, buf + len, cap - len - 1);
            if (r == 0)
                break;
            if (r < 0 && errno == ECONNRESET) {
                if (reset)
                    *reset = 1;
                break;
            }
            if (r < 0 && errno != EAGAIN && errno != EINTR)
                return give_up(fd, buf, errno);
            if (r > 0)
                len += (size_t)r;
        }
    }
    close(fd);
    buf[len] = '\0';
    return buf;
}

char *itl_admin(const char *path, const char *cmd, size_t cmdlen, int timeout_ms, int *reset)
{
    int fd = itl_unix_connect(path, timeout_ms);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    return exchange(fd, cmd, cmdlen, timeout_ms, reset);
}

char *itl_http(uint16_t port, const char *req, int timeout_ms)
{
    int fd = itl_connect("127.0.0.1", port, timeout_ms, 0);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    return exchange(fd, req, strlen(req), timeout_ms, NULL);
}

int64_t itl_json_num(const char *json, const char *obj, const char *key)
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
