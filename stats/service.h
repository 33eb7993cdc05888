/*
 * stats/service.h — the stats thread: sampling and the admin endpoint.
 *
 * One thread does both. Every stats_interval_ms it samples the stat blocks
 * into a snapshot and publishes it (stats/snapshot.h). Between samples it
 * serves the admin Unix socket and, when configured, the HTTP metrics port,
 * with non-blocking sockets only: a slow or stuck admin client can delay no
 * worker and no other admin client.
 */
#ifndef WEFT_STATS_SERVICE_H
#define WEFT_STATS_SERVICE_H

#include <stdint.h>

#include "stats/snapshot.h"

struct weft_server;
typedef struct st_service st_service;

/*
 * Publish reg (owned by the service from now on), bind the admin socket and
 * the metrics port, and start the thread. Returns 0 or a negative errno
 * (-EADDRINUSE when another live server owns the admin socket path).
 */
int stsvc_start(struct weft_server *s, st_registry *reg, st_service **out);

/* Take a last sample, stop and join the thread, unpublish and free all. */
void stsvc_stop(st_service *svc);

/* A private copy of the current snapshot (see weft_server_snapshot). */
weft_snapshot *stsvc_snapshot(st_service *svc, int *err);

/* The admin socket path or NULL; the bound metrics port or 0. */
const char *stsvc_admin_path(const st_service *svc);
uint16_t stsvc_metrics_port(const st_service *svc);

#endif
