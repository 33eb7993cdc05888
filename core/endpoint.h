/*
 * core/endpoint.h — a listener of the stats thread and its clients.
 *
 * The admin socket (core/admin.c) and the metrics listener
 * (core/metrics_http.c) are both an endpoint: a listening socket, a table
 * of client slots of its own, and a protocol that turns the bytes a client
 * sent into one answer at a time. This file owns what they share: accepting,
 * non-blocking reads and writes, and the time limits. The stats thread
 * (core/stats_thread.c) polls every endpoint's sockets and calls ep_serve.
 *
 * Protection: a client's next input is not read while its answer is unsent
 * (a client that never reads holds one answer at most); a client whose
 * answer makes no progress for EP_STALL_NS, or that waits for input longer
 * than its protocol allows, is closed. A burst of connections is accepted
 * EP_ACCEPT_BATCH at a time, so one endpoint's flood delays the other's
 * clients by one batch per turn at most.
 *
 * Out of file descriptors (EMFILE/ENFILE) a listener stays readable while
 * connections wait in its backlog, and polling it again at once would spin
 * the thread. As the acceptor does (core/acceptor.c), the endpoint then
 * gives up the thread's spare fd, accepts and refuses what waits (those
 * clients get an answer and a clean close instead of hanging), takes the
 * spare back, and leaves the listener out of poll for EP_PAUSE_NS. Any
 * other accept error pauses the listener the same way.
 *
 * Counted (st_endpoint, stats/counters.h): clients refused at accept,
 * clients closed by a time limit, accept failures with EMFILE/ENFILE.
 */
#ifndef WEFT_CORE_ENDPOINT_H
#define WEFT_CORE_ENDPOINT_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "stats/counters.h"

struct weft_server;

#define EP_STALL_NS     (10ull * 1000000000) /* a pending answer, no byte taken */
#define EP_DRAIN_NS     (2ull * 1000000000)  /* discarding the rest of a refused request */
#define EP_ACCEPT_BATCH 16                   /* accept(2) calls per endpoint per turn */
#define EP_PAUSE_MS     100                  /* the listener rests after a failed accept */

typedef struct ep_client {
    int fd;
    int closing;       /* close once the answer is out */
    int draining;      /* after a refused request: discard input until EOF */
    uint64_t accepted; /* ns */
    uint64_t since;    /* last progress, ns */
    char *out;         /* the pending answer (malloc'd) or NULL */
    size_t outlen, outoff;
    size_t inlen;
    char in[]; /* the protocol's in_max bytes */
} ep_client;

/* Why a new client is refused at accept. */
typedef enum ep_refusal {
    EP_BUSY,    /* every client slot is taken */
    EP_NO_ROOM, /* out of file descriptors (it got the spare's) or of memory */
} ep_refusal;

/* What differs between the endpoints. */
typedef struct ep_proto {
    const char *name;     /* in log lines: "admin socket" */
    int max_clients;      /* client slots of this endpoint */
    size_t in_max;        /* input held at once: a command line, a request head */
    uint64_t wait_ns;     /* waiting for input (no answer pending): limit */
    int wait_from_accept; /* wait_ns counts from the accept (a request head's
                             deadline), not from the last byte */
    /*
     * New input in c->in[0..c->inlen) while no answer is pending, and again
     * after each answer went out: consume what forms a request, queue at
     * most one answer (ep_answer), set closing or draining as needed.
     */
    void (*input)(void *ctx, ep_client *c);
    /* Tell fd why it is refused (non-blocking, best effort); the caller closes it. */
    void (*refuse)(void *ctx, int fd, ep_refusal why);
} ep_proto;

typedef struct endpoint {
    const ep_proto *proto;
    void *ctx;               /* the protocol's, passed to its callbacks */
    int lfd;                 /* the listener, -1 when off */
    struct weft_server *srv; /* for log lines */
    st_endpoint *st;         /* this endpoint's counters (the stats thread writes them) */
    int *spare;              /* the thread's spare fd, released on EMFILE (-1: none) */
    uint64_t paused_until;   /* ns: the listener is not polled before (0: not paused) */
    int polled_listener;     /* ep_poll_fill put lfd first in its pollfds */
    int nclients;
    ep_client **clients; /* proto->max_clients slots */
} endpoint;

/*
 * Set e up with no listener (lfd -1) and no client. st and spare are the
 * caller's and outlive e (see endpoint). Returns 0 or -ENOMEM.
 */
int ep_init(endpoint *e, const ep_proto *proto, void *ctx, struct weft_server *srv, st_endpoint *st,
            int *spare);

/* Close every client and free the slots; the listener is the owner's to close. */
void ep_fini(endpoint *e);

/* The most pollfds ep_poll_fill writes for e. */
int ep_poll_max(const endpoint *e);

/*
 * Write e's pollfds into pf: its listener (unless paused at now), then
 * each client. Returns how many.
 */
int ep_poll_fill(endpoint *e, struct pollfd *pf, uint64_t now);

/* When (ns) e's listener pause ends; 0 when it is not paused. */
uint64_t ep_pause_end(const endpoint *e);

/*
 * Serve what poll(2) reported in pf (as ep_poll_fill wrote it; revents all
 * zero after a timeout): client I/O, time limits, then new clients.
 */
void ep_serve(endpoint *e, const struct pollfd *pf, uint64_t now);

/* Queue text (malloc'd, ownership taken) as c's answer; NULL closes c instead. */
void ep_answer(ep_client *c, char *text);

#endif
