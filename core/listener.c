/*
 * core/listener.c — listening sockets and their gates (see listener.h).
 */
#include "core/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/inherit.h"
#include "core/tls_ctx.h"
#include "workers/addr.h"

/* ---- parsing --------------------------------------------------------------- */

/* The value after "key=" in opt, or NULL when opt is not that key. */
static const char *value_of(const char *opt, size_t n, const char *key)
{
    size_t k = strlen(key);
    if (n > k && strncmp(opt, key, k) == 0 && opt[k] == '=')
        return opt + k + 1;
    return NULL;
}

/* A number of the option [v, end) into *out within [lo, hi]; 0 or -1. */
static int num(const char *v, const char *end, long long lo, long long hi, int base, long long *out)
{
    char buf[32];
    size_t n = (size_t)(end - v);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    if (base == 10)
        return weft_parse_number(buf, lo, hi, out) == 0 ? 0 : -1;
    char *e;
    long long x = strtoll(buf, &e, base);
    if (*e || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* Copy s up to its first ',' (or end) into buf of n bytes; -1 if too long. */
static int copy_span(const char *s, char *buf, size_t n)
{
    size_t k = strcspn(s, ",");
    if (k >= n)
        return -1;
    memcpy(buf, s, k);
    buf[k] = '\0';
    return 0;
}

int weft_listener_parse(const char *spec, weft_listener_opts *o, const char **why)
{
    memset(o, 0, sizeof(*o));
    const char *w = NULL, *comma = spec ? strchr(spec, ',') : NULL;
    char addr[256];
    if (!spec || copy_span(spec, addr, sizeof(addr)) != 0 || !addr[0]) {
        w = "a listener is ADDR[,option...]";
        goto out;
    }
    o->addr = spec; /* read up to the first ',' */
    for (const char *p = comma; p && !w; p = strchr(p, ',')) {
        p++;
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        size_t n = (size_t)(end - p);
        const char *v;
        long long x = 0;
        if (n == 9 && strncmp(p, "reuseport", 9) == 0)
            o->reuseport = true;
        else if (n == 7 && strncmp(p, "nodelay", 7) == 0)
            o->nagle = false; /* the default, said explicitly */
        else if (n == 5 && strncmp(p, "nagle", 5) == 0)
            o->nagle = true;
        else if ((v = value_of(p, n, "name")) && v < end && (size_t)(end - v) < 64)
            o->name = v; /* read up to the next ',' */
        else if ((v = value_of(p, n, "backlog")) && num(v, end, 1, 1 << 20, 10, &x) == 0)
            o->backlog = (int)x;
        else if ((v = value_of(p, n, "keepalive")) && num(v, end, 1, 86400, 10, &x) == 0)
            o->keepalive_s = (uint32_t)x;
        else if ((v = value_of(p, n, "mode")) && num(v, end, 0, 0777, 8, &x) == 0)
            o->mode = (uint32_t)x;
        else if ((v = value_of(p, n, "max-conns")) && num(v, end, 1, 1 << 30, 10, &x) == 0)
            o->max_conns = (int)x;
        else if ((v = value_of(p, n, "rate")) && num(v, end, 1, 1 << 30, 10, &x) == 0)
            o->rate = (uint32_t)x;
        else if ((v = value_of(p, n, "burst")) && num(v, end, 1, 1 << 30, 10, &x) == 0)
            o->burst = (uint32_t)x;
        else if ((v = value_of(p, n, "per-source")) && num(v, end, 1, 1 << 30, 10, &x) == 0)
            o->per_source = (uint32_t)x;
        else if ((v = value_of(p, n, "tls-cert")) && v < end && o->ntls < 4 &&
                 !o->tls_cert[o->ntls])
            o->tls_cert[o->ntls] = v; /* read up to the next ',' */
        else if ((v = value_of(p, n, "tls-key")) && v < end && o->ntls < 4 && o->tls_cert[o->ntls])
            o->tls_key[o->ntls++] = v;
        else if ((v = value_of(p, n, "alpn")) && v < end)
            o->alpn = v;
        else
            w = "unknown or bad listener option (name, backlog=N, reuseport, nagle, nodelay, "
                "keepalive=S, mode=OCTAL, max-conns=N, rate=N, burst=N, per-source=N, "
                "tls-cert=FILE then tls-key=FILE (up to 4 pairs), alpn=P1:P2)";
        p = end;
        if (!*p)
            break;
    }
    if (!w && o->ntls < 4 && o->tls_cert[o->ntls])
        w = "tls-cert=FILE needs a tls-key=FILE after it";
    else if (!w && o->alpn && !o->ntls)
        w = "alpn= is for a TLS listener (tls-cert=, tls-key=)";
    if (!w) {
        wk_addr a;
        if (wk_addr_parse(addr, &a, &w) == 0 && a.len == 0)
            w = "a listener's address must be numeric (or unix:/path)";
    }
out:
    if (why)
        *why = w;
    return w ? -EINVAL : 0;
}

/* ---- binding ----------------------------------------------------------------- */

/*
 * A Unix socket's file: replace a stale one (a socket file nobody listens
 * on any more, left by a crash), never a live one or another kind of file.
 */
static int unix_stale(const struct sockaddr_un *sa, socklen_t len)
{
    struct stat st;
    if (lstat(sa->sun_path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return -errno;
    int live = connect(probe, (const struct sockaddr *)sa, len) == 0;
    close(probe);
    if (live)
        return -EADDRINUSE;
    unlink(sa->sun_path);
    return 0;
}

/* Socket, options, bind, listen; the fd or a negative errno. */
static int bind_listen(const struct sockaddr *sa, socklen_t len, int backlog, bool reuseport,
                       uint32_t mode)
{
    if (sa->sa_family == AF_UNIX) {
        int rc = unix_stale((const struct sockaddr_un *)sa, len);
        if (rc != 0)
            return rc;
    }
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, zero = 0;
    if (sa->sa_family != AF_UNIX) {
        /* Restarting while old connections sit in TIME_WAIT must not fail. */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
            goto fail;
        if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
            goto fail;
        const struct sockaddr_in6 *s6 = (const void *)sa;
        if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0)
            goto fail;
    } else if (fchmod(fd, mode) != 0) {
        /* Linux creates the socket file with the fd's mode: no umask games. */
        goto fail;
    }
    if (bind(fd, sa, len) != 0)
        goto fail;
    if (sa->sa_family == AF_UNIX && chmod(((const struct sockaddr_un *)sa)->sun_path, mode) != 0)
        goto fail;
    if (listen(fd, backlog) != 0)
        goto fail;
    return fd;
fail:;
    int err = errno;
    close(fd);
    return -err;
}

int lsn_open(const char *addr, uint16_t port, int backlog, uint16_t *bound)
{
    char spec[160];
    snprintf(spec, sizeof(spec), strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, port);
    wk_addr a;
    if (wk_addr_parse(spec, &a, NULL) != 0 || a.len == 0)
        return -EINVAL;
    int fd = inh_take((struct sockaddr *)&a.ss, a.len, NULL);
    if (fd < 0)
        fd = bind_listen((struct sockaddr *)&a.ss, a.len, backlog, false, 0);
    if (fd < 0)
        return fd;
    socklen_t len = sizeof(a.ss);
    if (getsockname(fd, (struct sockaddr *)&a.ss, &len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *bound = ntohs(a.ss.ss_family == AF_INET ? ((struct sockaddr_in *)&a.ss)->sin_port
                                             : ((struct sockaddr_in6 *)&a.ss)->sin6_port);
    return fd;
}

/* ---- per-source accounting ------------------------------------------------------- */

/* The bucket of a source address (IPv4, IPv6); -1 for others (Unix). */
static int src_bucket(int family, const uint8_t *addr)
{
    size_t n = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
    if (!n)
        return -1;
    /* FNV-1a: cheap, and good enough to spread addresses over the table. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ addr[i]) * 16777619u;
    return (int)(h & (LSN_SRC_BUCKETS - 1));
}

static int src_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return src_bucket(AF_INET, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return src_bucket(AF_INET6, (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return -1;
}

/*
 * A connection of the listener closed (on its worker's thread): its source
 * has one fewer open. An atomic per close, not per message.
 */
static void source_gone(const wk_origin *o, const weft_conn *c)
{
    const lsn *l = (const lsn *)o; /* origin is the first member */
    int b = src_bucket(c->family, c->addr);
    if (b >= 0)
        __atomic_sub_fetch(&l->src[b], 1, __ATOMIC_RELAXED);
}

int lsn_admit(lsn *l, const struct sockaddr *peer, int64_t now_ms)
{
    /* rate and burst may change at any time (weft_server_listener_limit). */
    uint64_t lim = __atomic_load_n(&l->limit, __ATOMIC_RELAXED);
    uint32_t rate = (uint32_t)(lim >> 32), burst32 = (uint32_t)lim;
    if (rate) {
        double burst = burst32 ? burst32 : rate;
        l->tokens += (double)(now_ms - l->refill_ms) * rate / 1000.0;
        if (l->tokens > burst)
            l->tokens = burst;
        l->refill_ms = now_ms;
        if (l->tokens < 1) {
            ST_ADD(&l->st, rejected_rate, 1);
            return LSN_RATE;
        }
        l->tokens -= 1;
    }
    int b = l->src ? src_of(peer) : -1;
    if (b >= 0 && __atomic_add_fetch(&l->src[b], 1, __ATOMIC_RELAXED) > l->o.per_source) {
        __atomic_sub_fetch(&l->src[b], 1, __ATOMIC_RELAXED);
        ST_ADD(&l->st, rejected_source, 1);
        return LSN_SOURCE;
    }
    return LSN_ADMIT;
}

void lsn_unadmit(lsn *l, const struct sockaddr *peer)
{
    int b = l->src ? src_of(peer) : -1;
    if (b >= 0)
        __atomic_sub_fetch(&l->src[b], 1, __ATOMIC_RELAXED);
}

void lsn_set_limit(lsn *l, uint32_t rate, uint32_t burst)
{
    __atomic_store_n(&l->limit, ((uint64_t)rate << 32) | burst, __ATOMIC_RELAXED);
}

void lsn_setup_conn(const lsn *l, int fd)
{
    if (l->family == AF_UNIX)
        return;
    int one = 1;
    /*
     * TCP_NODELAY unless the listener keeps Nagle: a turn writes each
     * connection once, so there are no small writes to coalesce, and Nagle
     * would hold the second part of a reply that two turns write (a read
     * cut by the turn's budget) until the peer's delayed ACK, 40 ms.
     * Failures only leave the kernel's defaults: not worth a close.
     */
    if (!l->o.nagle)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (l->o.keepalive_s) {
        int idle = (int)l->o.keepalive_s, intvl = idle < 75 ? idle : 75, cnt = 4;
        (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    }
}

/* ---- life ------------------------------------------------------------------------ */

/* ---- TLS ------------------------------------------------------------------------ */

/* A copy of s up to its first ',' (the spec's strings), or NULL. */
static char *span_dup(const char *s) { return s ? strndup(s, strcspn(s, ",")) : NULL; }

static void *tls_load(const lsn *l, const char **why)
{
    const char *certs[4], *keys[4];
    for (int i = 0; i < l->o.ntls; i++) {
        certs[i] = l->tls_cert[i];
        keys[i] = l->tls_key[i];
    }
    return tlsctx_server_new(certs, keys, l->o.ntls, l->tls_alpn, why);
}

/* Copy opts' TLS files into l and make its context; 0 or a negative errno. */
static int tls_setup(lsn *l, const weft_listener_opts *opts, const char **why)
{
    if (opts->ntls == 0)
        return 0;
    if (opts->ntls < 0 || opts->ntls > 4) {
        *why = "a listener has 1 to 4 TLS certificates";
        return -EINVAL;
    }
    l->o.ntls = opts->ntls;
    for (int i = 0; i < opts->ntls; i++) {
        if (!opts->tls_cert[i] || !opts->tls_key[i]) {
            *why = "each TLS certificate needs its key";
            return -EINVAL;
        }
        l->tls_cert[i] = span_dup(opts->tls_cert[i]);
        l->tls_key[i] = span_dup(opts->tls_key[i]);
        if (!l->tls_cert[i] || !l->tls_key[i])
            return -ENOMEM;
    }
    if (opts->alpn && !(l->tls_alpn = span_dup(opts->alpn)))
        return -ENOMEM;
    l->tls_ctx = tls_load(l, why);
    return l->tls_ctx ? 0 : -EINVAL;
}

int lsn_tls_reload(lsn *l, const char **why)
{
    if (!l->tls_ctx)
        return 0;
    void *ctx = tls_load(l, why);
    if (!ctx)
        return -EINVAL;
    tlsctx_unref(__atomic_exchange_n(&l->tls_next, ctx, __ATOMIC_ACQ_REL));
    return 0;
}

bool lsn_tls_swap(lsn *l)
{
    void *ctx = __atomic_exchange_n(&l->tls_next, NULL, __ATOMIC_ACQ_REL);
    if (!ctx)
        return false;
    /* Connections in flight hold their own references (SSL_new). */
    tlsctx_unref(l->tls_ctx);
    l->tls_ctx = ctx;
    return true;
}

lsn *lsn_new(const weft_listener_opts *opts, int index, const weft_handler *h, void *ud,
             int backlog, int *err, const char **why)
{
    *why = NULL;
    wk_addr a;
    char addr[256];
    if (!opts || !opts->addr || copy_span(opts->addr, addr, sizeof(addr)) != 0 ||
        wk_addr_parse(addr, &a, why) != 0 || a.len == 0 ||
        (opts->handler && !opts->handler->on_data) || opts->mode > 0777) {
        if (!*why)
            *why = "a listener needs a numeric address (or unix:/path) and a handler "
                   "with on_data";
        *err = -EINVAL;
        return NULL;
    }
    lsn *l = calloc(1, sizeof(*l));
    if (!l || (opts->per_source && !(l->src = calloc(LSN_SRC_BUCKETS, sizeof(uint32_t))))) {
        free(l);
        *err = -ENOMEM;
        return NULL;
    }
    l->fd = -1;
    if ((*err = tls_setup(l, opts, why)) != 0) {
        lsn_free(l);
        return NULL;
    }
    l->o = *opts;
    l->family = a.ss.ss_family;
    l->origin = (wk_origin){.h = opts->handler ? opts->handler : h,
                            .ud = opts->handler || opts->ud ? opts->ud : ud,
                            .listener = index,
                            .on_gone = l->src ? source_gone : NULL};
    /* A socket systemd or a predecessor passed (core/inherit.h) before a new one. */
    int origin = 0;
    int fd = inh_take((struct sockaddr *)&a.ss, a.len, &origin);
    if (fd < 0)
        fd = bind_listen((struct sockaddr *)&a.ss, a.len, opts->backlog ? opts->backlog : backlog,
                         opts->reuseport, opts->mode ? opts->mode : 0660);
    if (fd < 0) {
        lsn_free(l);
        *err = fd;
        return NULL;
    }
    l->fd = fd;
    l->inherited = origin;
    socklen_t len = sizeof(a.ss);
    if (l->family != AF_UNIX && getsockname(fd, (struct sockaddr *)&a.ss, &len) == 0)
        l->port = ntohs(l->family == AF_INET ? ((struct sockaddr_in *)&a.ss)->sin_port
                                             : ((struct sockaddr_in6 *)&a.ss)->sin6_port);
    else
        len = a.len;
    /* systemd owns the file of a socket it passed: it is never ours to remove. */
    if (l->family == AF_UNIX && origin != INH_SYSTEMD)
        snprintf(l->path, sizeof(l->path), "%s", ((struct sockaddr_un *)&a.ss)->sun_path);
    wk_addr_format((struct sockaddr *)&a.ss, len, l->addr, sizeof(l->addr));
    if (!opts->name || copy_span(opts->name, l->name, sizeof(l->name)) != 0 || !l->name[0])
        snprintf(l->name, sizeof(l->name), "%.63s", l->addr);
    l->o.addr = l->addr;
    l->o.name = l->name;
    for (int i = 0; i < l->o.ntls; i++) {
        l->o.tls_cert[i] = l->tls_cert[i];
        l->o.tls_key[i] = l->tls_key[i];
    }
    l->o.alpn = l->tls_alpn;
    l->tokens = opts->burst ? opts->burst : opts->rate;
    l->limit = ((uint64_t)opts->rate << 32) | opts->burst;
    return l;
}

void lsn_free(lsn *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    if (l->path[0] && !inh_handed_over())
        unlink(l->path);
    free(l->src);
    for (int i = 0; i < 4; i++) {
        free(l->tls_cert[i]);
        free(l->tls_key[i]);
    }
    free(l->tls_alpn);
    tlsctx_unref(l->tls_ctx);
    tlsctx_unref(l->tls_next);
    free(l);
}
