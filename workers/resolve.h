/*
 * workers/resolve.h — host names resolved off the worker threads.
 *
 * getaddrinfo blocks (a DNS query can take seconds), so a worker never
 * calls it: it queues the name here, and one resolver thread per server,
 * started on the first request, resolves it and posts the address back to
 * the worker (wk_post), which then connects. The connection is named by
 * its key (workers/conn-t.h), so an answer for a connection that closed
 * meanwhile (a connect timeout) finds a new generation and is dropped.
 */
#ifndef WEFT_WORKERS_RESOLVE_H
#define WEFT_WORKERS_RESOLVE_H

#include <stdint.h>
#include <sys/socket.h>

#include "workers/worker-t.h"

/*
 * Called on worker w's thread with the answer for the connection `key`:
 * sa/len the first address (NULL and a negative errno in err when the name
 * did not resolve).
 */
typedef void (*wk_resolved_fn)(wk_worker *w, uint64_t key, const struct sockaddr *sa, socklen_t len,
                               int err);

/*
 * Resolve host:port for the connection `key` of worker w; fn runs on w's
 * thread with the answer. From w's thread. 0, or -ENOMEM/-EAGAIN (no
 * resolver thread could start) when nothing was queued.
 */
int wk_resolve(wk_worker *w, uint64_t key, const char *host, uint16_t port, wk_resolved_fn fn);

/* Stop and join the group's resolver thread, if it started (server's thread). */
void wk_resolver_stop(wk_group *g);

#endif
