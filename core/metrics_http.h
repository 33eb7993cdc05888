/*
 * core/metrics_http.h — the HTTP listener that answers GET /metrics.
 *
 * HTTP/1.x, one request per connection: "GET /metrics" gets the
 * Prometheus text of the current snapshot, then the server closes. Other
 * paths get 404, other methods 405, a head over MET_HEAD_MAX bytes 431.
 */
#ifndef WEFT_CORE_METRICS_HTTP_H
#define WEFT_CORE_METRICS_HTTP_H

#include <stdint.h>

#include "core/endpoint.h"

struct weft_server;

#define MET_HEAD_MAX    8192                  /* a request head */
#define MET_MAX_CLIENTS 128                   /* metrics clients at once */
#define MET_IDLE_NS     (300ull * 1000000000) /* no complete head */

/* The metrics protocol; its ctx is the server's st_sampler (stats/sampler.h). */
extern const ep_proto metrics_proto;

/*
 * Listen on cfg.metrics_bind:cfg.metrics_port (nothing when the port is 0).
 * Returns 0 with *fd the listener (or -1 when off) and *bound its port, or
 * a negative errno (logged).
 */
int metrics_listen(struct weft_server *s, int *fd, uint16_t *bound);

#endif
