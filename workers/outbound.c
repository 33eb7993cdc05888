/*
 * workers/outbound.c — connections a handler opens (weft_connect).
 *
 * An outbound connection is a weft_conn like an accepted one, owned by the
 * worker that opened it, so a client and its backend connection share an
 * owner (invariant 1 holds for the pair). It starts in C_CONNECTING: the
 * handler may already queue output (weft_send), which waits in the ring.
 *
 *   weft_connect ──numeric──► connect (in progress) ──output event──► connected:
 *        │                         ▲                                 on_open, flush
 *        └──name──► resolver ──────┘ (posted back)
 *   any step fails, or connect_ms passes ──► closed with a connect reason
 *                                            (on_close; on_open never ran)
 *
 * Failures the caller can see at once (a bad address, no fd, a refused Unix
 * socket) are returned by weft_connect and create nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "workers/addr.h"
#include "workers/conn.h"
#include "workers/io.h"
#include "workers/queues.h"
#include "workers/resolve.h"
#include "workers/slab.h"
#include "workers/timeouts.h"
#include "workers/tls.h"

/* Default connect timeout (ms): a backend that answers nothing in 10 s is
 * down for any client waiting behind it (HAProxy's example configs use 5 s). */
#define WK_CONNECT_MS 10000

/* The close reason a failed connect's errno means. */
static weft_close_reason connect_reason(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return WEFT_CLOSE_CONNECT_REFUSED;
    case ETIMEDOUT:
        return WEFT_CLOSE_CONNECT_TIMEOUT;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
        return WEFT_CLOSE_UNREACHABLE;
    case ENOENT:
        return WEFT_CLOSE_RESOLVE;
    default:
        return WEFT_CLOSE_ERROR;
    }
}

/* The connect is under way on c->fd: wait for its end. */
static int start(wk_worker *w, weft_conn *c, const struct sockaddr *sa, socklen_t len)
{
    int rc = w->io->connect(w, c, sa, len, c->x->sockopts);
    if (rc < 0)
        return rc;
    conn_set_peer(c, sa, len);
    if (rc == 1)
        wk_flush_push(w, c); /* connected at once: finish it this turn */
    else
        c->flags |= C_WANT_OUT; /* the output event says it ended */
    return 0;
}

/* On c's worker: the resolver's answer for the connection `key`. */
static void resolved(wk_worker *w, uint64_t key, const struct sockaddr *sa, socklen_t len, int err)
{
    weft_conn *c = wk_conn_at(w, (uint32_t)key);
    if (!c || c->gen != (uint32_t)(key >> 32) || !(c->flags & C_CONNECTING) ||
        (c->flags & C_CLOSED))
        return; /* closed meanwhile (its connect timeout, a stop) */
    if (err == 0)
        err = start(w, c, sa, len);
    if (err != 0)
        conn_close(w, c, connect_reason(-err));
}

int conn_connect_done(wk_worker *w, weft_conn *c)
{
    int rc = w->io->connected(w, c);
    if (rc == -EINPROGRESS || rc == -EALREADY) {
        c->flags |= C_WANT_OUT; /* not over yet */
        return 1;
    }
    if (rc != 0) {
        conn_close(w, c, connect_reason(-rc));
        return -1;
    }
    c->flags &= ~C_CONNECTING;
    ST_ADD(&w->st, connects, 1);
    if (c->x->tls_client) {
        /* TLS: on_open once the handshake is done (conn_tls_ready). */
        void *ctx = c->x->tls_client;
        c->x->tls_client = NULL;
        rc = tls_client_start(w, c, ctx, c->x->sni);
        tls_ctx_unref(ctx); /* the SSL holds its own reference */
        if (rc != 0) {
            conn_close(w, c, WEFT_CLOSE_ERROR);
            return -1;
        }
        c->flags |= C_TLS_HS;
        to_conn_handshaking(w, c);
    } else {
        to_conn_connected(w, c);
        if (c->o->h->on_open)
            c->o->h->on_open(c);
        if (c->flags & C_CLOSED)
            return -1;
    }
    if (c->flags & C_READABLE)
        wk_ready_push(w, c); /* input came with the connect's end */
    return 0;
}

int wk_connect(wk_worker *w, const char *addr, const weft_connect_opts *opts, void *tls_ctx,
               const weft_handler *h, void *ud, weft_conn **out)
{
    wk_addr a;
    int rc = -EINVAL;
    if (!h || !h->on_data || wk_addr_parse(addr, &a, NULL) != 0 ||
        (a.len == 0 && a.host[0] == '\0'))
        goto refuse;
    rc = -ESHUTDOWN;
    if (w->stopping)
        goto refuse;
    rc = -ENOMEM;
    weft_conn *c = wk_slot_get(w);
    conn_ext *x = c ? calloc(1, sizeof(*x)) : NULL;
    if (!x) {
        if (c)
            wk_slot_put(w, c);
        goto refuse;
    }
    c->x = x;
    x->tls_client = tls_ctx; /* the connection's reference now: the slot drops it */
    x->origin = (wk_origin){.h = h, .ud = ud, .listener = -1};
    x->connect_ms = opts && opts->timeout_ms ? opts->timeout_ms : WK_CONNECT_MS;
    x->sockopts = opts && opts->nodelay ? WK_SOCK_NODELAY : 0;
    if (tls_ctx) {
        /* The name to send and verify: the option's, else the host or IP. */
        char ip[INET6_ADDRSTRLEN] = "";
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a.ss;
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a.ss;
        if (a.ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        else if (a.ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        const char *name = opts && opts->sni ? opts->sni : a.len ? ip : a.host;
        x->sni = *name ? strdup(name) : NULL;
        if (*name && !x->sni) {
            wk_slot_put(w, c);
            return -ENOMEM;
        }
    }
    c->o = &x->origin;
    c->flags = C_CONNECTING;
    rc = a.len ? start(w, c, (struct sockaddr *)&a.ss, a.len)
               : wk_resolve(w, conn_key(c), a.host, a.port, resolved);
    if (rc != 0) {
        wk_slot_put(w, c); /* frees x too */
        return rc;
    }
    /* From here on it is open for the handler: on_close is owed. */
    c->flags |= C_OPENED;
    w->nconns++;
    ST_ADD(&w->st, opened, 1);
    ST_ADD(&w->st, outbound, 1);
    to_conn_connecting(w, c, x->connect_ms);
    *out = c;
    return 0;
refuse:
    tls_ctx_unref(tls_ctx);
    return rc;
}
