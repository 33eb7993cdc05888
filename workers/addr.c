/*
 * workers/addr.c — parsing and printing addresses (addr.h).
 */
#include "workers/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static int fail(const char **why, const char *w)
{
    if (why)
        *why = w;
    return -EINVAL;
}

/* The port after the last ':' of s (at colon); 0 or -EINVAL. */
static int parse_port(const char *p, uint16_t *port)
{
    char *end;
    if (!*p)
        return -EINVAL;
    long v = strtol(p, &end, 10);
    if (*end || v < 0 || v > 65535 || !(*p >= '0' && *p <= '9'))
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int wk_addr_parse(const char *s, wk_addr *a, const char **why)
{
    memset(a, 0, sizeof(*a));
    if (why)
        *why = NULL;
    if (!s || !*s)
        return fail(why, "an empty address");
    if (strncmp(s, "unix:", 5) == 0) {
        struct sockaddr_un *u = (struct sockaddr_un *)&a->ss;
        const char *path = s + 5;
        if (!*path || strlen(path) >= sizeof(u->sun_path))
            return fail(why, "a Unix socket path must have 1 to 107 bytes");
        u->sun_family = AF_UNIX;
        memcpy(u->sun_path, path, strlen(path) + 1);
        a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
        return 0;
    }
    const char *colon = strrchr(s, ':');
    if (!colon)
        return fail(why, "expected HOST:PORT, [IPv6]:PORT or unix:/PATH");
    if (parse_port(colon + 1, &a->port) != 0)
        return fail(why, "the port must be a number from 0 to 65535");
    size_t hl = (size_t)(colon - s);
    char host[256];
    if (hl >= sizeof(host))
        return fail(why, "the host name is too long");
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (host[0] == '[') {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
        if (hl < 3 || host[hl - 1] != ']')
            return fail(why, "an IPv6 address goes in brackets: [::1]:PORT");
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
            return fail(why, "not an IPv6 address inside the brackets");
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        a->len = sizeof(*in6);
        return 0;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
    if (strcmp(host, "*") == 0 || hl == 0) {
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
        in4->sin_port = htons(a->port);
        a->len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(a->port);
        a->len = sizeof(*in4);
        return 0;
    }
    if (strchr(host, ':'))
        return fail(why, "an IPv6 address goes in brackets: [::1]:PORT");
    for (const char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.'))
            return fail(why, "not a host name (letters, digits, '-' and '.')");
    memcpy(a->host, host, hl + 1);
    return 0; /* a->len == 0: resolve the name */
}

void wk_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const void *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(buf, n, "%s:%u", ip, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const void *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(buf, n, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *u = (const void *)sa;
        snprintf(buf, n, "unix:%s",
                 len > offsetof(struct sockaddr_un, sun_path) ? u->sun_path : "");
    } else {
        snprintf(buf, n, "?");
    }
}
