/*
 * workers/addr.h — the address strings of listeners and outbound
 * connections: "host:port", "[v6]:port", "unix:/path".
 */
#ifndef WEFT_WORKERS_ADDR_H
#define WEFT_WORKERS_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A parsed address: numeric (sa/len filled) or a host name to resolve. */
typedef struct wk_addr {
    struct sockaddr_storage ss;
    socklen_t len;  /* 0 when `host` must be resolved first */
    char host[256]; /* the name, when not numeric */
    uint16_t port;  /* host order */
} wk_addr;

/*
 * Parse s: "unix:/path" (a Unix stream socket; path shorter than 108
 * bytes), "[v6-literal]:port", "v4-literal:port", "*:port" (every IPv4
 * address) or "name:port" (a host name, left in host to be resolved).
 * Ports are numbers from 0 to 65535. Returns 0, or -EINVAL with *why (when
 * why is not NULL) pointing at a static phrase. No system call; any thread.
 */
int wk_addr_parse(const char *s, wk_addr *a, const char **why);

/* Room for any address wk_addr_format writes ("unix:" and 108 bytes of path). */
#define WK_ADDR_TEXT 120

/* Write a's address as text ("127.0.0.1:80", "[::1]:80", "unix:/p"). */
void wk_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t n);

#endif
