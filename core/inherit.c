/*
 * core/inherit.c — sockets taken over from systemd or a predecessor (see
 * inherit.h).
 */
#include "core/inherit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "workers/addr.h"

typedef struct inh_entry {
    int fd; /* -1 once taken */
    int origin;
    char name[64];
    struct sockaddr_storage ss;
    socklen_t len;
} inh_entry;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static inh_entry g_tab[INH_MAX];
static int g_n;
static int g_handed; /* atomic */

/* 0 when fd is a listening stream socket (its address in *e), else -1. */
static int probe(int fd, inh_entry *e)
{
    int type = 0, acc = 0;
    socklen_t l = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0 || type != SOCK_STREAM)
        return -1;
    l = sizeof(acc);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) != 0 || !acc)
        return -1;
    e->len = sizeof(e->ss);
    if (getsockname(fd, (struct sockaddr *)&e->ss, &e->len) != 0)
        return -1;
    return 0;
}

int inh_add(int fd, int origin, const char *name)
{
    inh_entry e = {.fd = fd, .origin = origin};
    if (probe(fd, &e) != 0) {
        close(fd);
        return -ENOTSOCK;
    }
    /* The acceptor polls and then accepts: a listener never blocks. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    snprintf(e.name, sizeof(e.name), "%s", name ? name : "");
    pthread_mutex_lock(&g_mu);
    int rc = g_n < INH_MAX ? 0 : -ENOSPC;
    if (rc == 0)
        g_tab[g_n++] = e;
    pthread_mutex_unlock(&g_mu);
    if (rc != 0)
        close(fd);
    return rc;
}

/* The port of an IPv4 or IPv6 address, host order. */
static uint16_t port_of(const struct sockaddr *sa)
{
    return ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
                                          : ((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* An entry's address is the one wanted (see inh_take). */
static int same(const inh_entry *e, const struct sockaddr *want, socklen_t len)
{
    const struct sockaddr *have = (const struct sockaddr *)&e->ss;
    if (have->sa_family != want->sa_family)
        return 0;
    if (want->sa_family == AF_UNIX) {
        const struct sockaddr_un *a = (const void *)have, *b = (const void *)want;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        return len > off && e->len > off && strcmp(a->sun_path, b->sun_path) == 0;
    }
    uint16_t wp = port_of(want);
    if (wp && wp != port_of(have))
        return 0;
    if (want->sa_family == AF_INET)
        return ((const struct sockaddr_in *)have)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)want)->sin_addr.s_addr;
    if (want->sa_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)have)->sin6_addr,
                       &((const struct sockaddr_in6 *)want)->sin6_addr, sizeof(struct in6_addr));
    return 0;
}

int inh_take(const struct sockaddr *sa, socklen_t len, int *origin)
{
    int fd = -1;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < g_n && fd < 0; i++)
        if (g_tab[i].fd >= 0 && same(&g_tab[i], sa, len)) {
            fd = g_tab[i].fd;
            g_tab[i].fd = -1;
            if (origin)
                *origin = g_tab[i].origin;
        }
    pthread_mutex_unlock(&g_mu);
    return fd;
}

int inh_systemd_spec(int i, char *buf, size_t n)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&g_mu);
    for (int k = 0; k < g_n; k++) {
        const inh_entry *e = &g_tab[k];
        if (e->fd < 0 || e->origin != INH_SYSTEMD || i-- > 0)
            continue;
        char addr[160];
        wk_addr_format((const struct sockaddr *)&e->ss, e->len, addr, sizeof(addr));
        snprintf(buf, n, e->name[0] ? "%s,name=%s" : "%s", addr, e->name);
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

void inh_close_rest(void)
{
    pthread_mutex_lock(&g_mu);
    for (int k = 0; k < g_n; k++)
        if (g_tab[k].fd >= 0) {
            close(g_tab[k].fd);
            g_tab[k].fd = -1;
        }
    pthread_mutex_unlock(&g_mu);
}

void inh_set_handed_over(void) { __atomic_store_n(&g_handed, 1, __ATOMIC_RELEASE); }
int inh_handed_over(void) { return __atomic_load_n(&g_handed, __ATOMIC_ACQUIRE); }

/* A decimal variable of the environment into *out within [lo, hi]: 0, 1 unset, -1 bad. */
static int env_long(const char *name, long lo, long hi, long *out)
{
    const char *v = getenv(name);
    if (!v)
        return 1;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* The i-th name of LISTEN_FDNAMES (colon-separated) into buf, or "". */
static void fd_name(const char *names, long i, char *buf, size_t n)
{
    buf[0] = '\0';
    for (; names && i > 0; i--) {
        names = strchr(names, ':');
        if (names)
            names++;
    }
    if (!names)
        return;
    size_t k = strcspn(names, ":");
    /* A name becomes a listener's name= option: no ',' inside. */
    if (k < n && !memchr(names, ',', k)) {
        memcpy(buf, names, k);
        buf[k] = '\0';
    }
}

int inh_from_systemd(char *err, size_t errlen)
{
    /* sd_listen_fds(3): the sockets start at fd 3. */
    enum { SD_LISTEN_FDS_START = 3 };
    long pid = 0, nfds = 0;
    int rp = env_long("LISTEN_PID", 1, 0x7fffffff, &pid);
    if (rp == 1)
        return 0;
    int rn = env_long("LISTEN_FDS", 0, INH_MAX, &nfds);
    int rc = 0;
    if (rp < 0 || rn != 0) {
        snprintf(err, errlen, "LISTEN_PID or LISTEN_FDS is not a number (LISTEN_FDS at most %d)",
                 INH_MAX);
        rc = -EINVAL;
    } else if (pid == (long)getpid()) {
        const char *names = getenv("LISTEN_FDNAMES");
        for (long i = 0; i < nfds && rc >= 0; i++) {
            char name[64];
            fd_name(names, i, name, sizeof(name));
            int fd = SD_LISTEN_FDS_START + (int)i;
            if (inh_add(fd, INH_SYSTEMD, name) != 0) {
                snprintf(err, errlen, "LISTEN_FDS: fd %d is not a listening stream socket", fd);
                rc = -EINVAL;
            } else {
                rc++;
            }
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return rc;
}
