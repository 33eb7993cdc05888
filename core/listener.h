/*
 * core/listener.h — listening sockets: TCP (IPv4, IPv6) and Unix stream,
 * each with its handler, limits and counters.
 *
 * The server's thread creates and binds a listener; from weft_server_start
 * on only the acceptor thread touches its fd, token bucket and counters;
 * the per-source table is shared with the workers, which drop a source's
 * count when its connection closes (lsn_source_gone).
 */
#ifndef WEFT_CORE_LISTENER_H
#define WEFT_CORE_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "stats/counters.h"
#include "weft/weft.h"
#include "workers/conn-t.h"

/* Buckets of a listener's per-source table (a power of two). */
#define LSN_SRC_BUCKETS 65536

typedef struct lsn {
    wk_origin origin; /* first: the workers see only this (handler, data, index) */
    weft_listener_opts o;
    char name[64];
    char addr[128]; /* as bound: "127.0.0.1:8080", "unix:/path" */
    char path[108]; /* a Unix socket's file, unlinked at close; "" for TCP */
    int fd;
    int inherited; /* 0: bound here; INH_SYSTEMD, INH_HANDOFF: inherited (core/inherit.h) */
    int family;
    uint16_t port;
    /* The acceptor's: the token bucket, and a pause (EMFILE, rate). */
    double tokens;
    int64_t refill_ms;
    uint64_t limit; /* atomic: (rate << 32) | burst, changed by lsn_set_limit */
    int64_t paused_until_ms;
    uint32_t *src; /* LSN_SRC_BUCKETS counts (atomic), or NULL */
    st_listener st;
    /* TLS: the files (copies), the context the acceptor hands out, and a
     * reloaded one waiting for the acceptor to swap it in (atomic). */
    char *tls_cert[4], *tls_key[4], *tls_alpn;
    void *tls_ctx, *tls_next;
} lsn;

/*
 * Create and bind listener `index` from opts (copied; its strings too) for
 * a server whose handler and user data are h and ud, and default backlog.
 * Returns the listener or NULL with *err set (a negative errno; -EINVAL
 * with *why for bad options). Server's thread.
 */
lsn *lsn_new(const weft_listener_opts *opts, int index, const weft_handler *h, void *ud,
             int backlog, int *err, const char **why);

/*
 * Load l's certificates again into a new context and leave it in
 * l->tls_next for the acceptor (lsn_tls_swap). 0 (nothing to do for a
 * plain listener), or -EINVAL with *why: the running context stays.
 */
int lsn_tls_reload(lsn *l, const char **why);

/* Acceptor thread: put a reloaded context in place; true if one was. */
bool lsn_tls_swap(lsn *l);

/* Close the socket (removing a Unix socket's file) and free l. */
void lsn_free(lsn *l);

/*
 * Listen on addr:port (an IPv4 or IPv6 literal) for the stats thread's
 * metrics endpoint. Returns the fd or a negative errno; *bound the port.
 */
int lsn_open(const char *addr, uint16_t port, int backlog, uint16_t *bound);

/*
 * The acceptor's gates for a connection just accepted from peer: 0 to
 * admit it (its per-source count taken), or the stat that refused it
 * (counted): LSN_RATE, LSN_SOURCE. now_ms is CLOCK_MONOTONIC.
 */
enum { LSN_ADMIT = 0, LSN_RATE, LSN_SOURCE };
int lsn_admit(lsn *l, const struct sockaddr *peer, int64_t now_ms);

/* Give back the per-source count lsn_admit took (a handoff that failed). */
void lsn_unadmit(lsn *l, const struct sockaddr *peer);

/* Change l's accept rate and burst (any thread; the acceptor sees it next). */
void lsn_set_limit(lsn *l, uint32_t rate, uint32_t burst);

/* Socket options for a connection accepted by l (TCP_NODELAY, keepalive). */
void lsn_setup_conn(const lsn *l, int fd);

#endif
