/*
 * core/stats_thread.h — the stats thread: the sampler on its interval, and
 * the admin socket and the metrics listener beside it.
 *
 * One thread does all three. Every stats_interval_ms it takes a sample
 * (stats/sampler.h). Between samples it serves the admin socket
 * (core/admin.h) and, when configured, the metrics listener
 * (core/metrics_http.h) with non-blocking sockets and poll(2) only: a slow
 * or stuck client can delay no worker and no other client, and each
 * endpoint has client slots of its own.
 */
#ifndef WEFT_CORE_STATS_THREAD_H
#define WEFT_CORE_STATS_THREAD_H

#include <stdint.h>

#include "stats/snapshot.h"

struct weft_server;
typedef struct st_service st_service;

/*
 * Take reg (owned from now on, freed even on failure), bind the admin
 * socket and the metrics listener, and start the thread. Returns 0 or a
 * negative errno (-EADDRINUSE when another live server owns the configured
 * admin socket path).
 */
int stsvc_start(struct weft_server *s, st_registry *reg, st_service **out);

/* Stop and join the thread (it takes a last sample), close and unlink its
 * sockets, unpublish and free everything. NULL is a no-op. */
void stsvc_stop(st_service *svc);

/*
 * The admin socket's and the metrics listener's fds (those open) into fds:
 * how many (at most 2). Before stsvc_release.
 */
int stsvc_listen_fds(const st_service *svc, int *fds, int max);

/*
 * Ask the thread to close its listening sockets (not their files): a
 * reload's successor answers there now. Clients already connected are
 * served. Any thread; NULL is a no-op.
 */
void stsvc_release(st_service *svc);

/* 1 once the thread has closed its listeners after stsvc_release (or for
 * NULL, or a thread that never started). */
int stsvc_released(const st_service *svc);

/* A private copy of the current snapshot (see weft_server_snapshot). */
weft_snapshot *stsvc_snapshot(st_service *svc, int *err);

/* The admin socket path or NULL; the bound metrics port or 0. */
const char *stsvc_admin_path(const st_service *svc);
uint16_t stsvc_metrics_port(const st_service *svc);

#endif
