/*
 * core/sdnotify.c — sd_notify's protocol (see sdnotify.h).
 */
#include "core/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sdn_notify(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
        return -EINVAL;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract: the length bounds the name */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t w;
    do
        w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    while (w < 0 && errno == EINTR);
    int err = w < 0 ? -errno : 1;
    close(fd);
    return err;
}

uint64_t sdn_watchdog_usec(void)
{
    const char *v = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
    if (!v)
        return 0;
    char *end;
    if (p) {
        errno = 0;
        long pid = strtol(p, &end, 10);
        if (errno || end == p || *end || pid != (long)getpid())
            return 0;
    }
    errno = 0;
    unsigned long long us = strtoull(v, &end, 10);
    if (errno || end == v || *end)
        return 0;
    return (uint64_t)us;
}
