/*
 * core/metrics_http.h — the HTTP listener that answers GET /metrics.
 *
 * HTTP/1.x, one request per connection: "GET /metrics" gets the
 * Prometheus text of the current snapshot, then the server closes. Other
 * paths get 404, other methods 405, a head over MET_HEAD_MAX bytes 431,
 * a request before the first sample 503 (Retry-After: 1).
 *
 * The listener has MET_MAX_CLIENTS client slots of its own (the admin
 * socket keeps its own, so no metrics client can lock the operator out).
 * The whole request head must arrive within MET_HEAD_NS of the accept, a
 * web server's header timeout: a client that sends half a head is closed
 * then, however slowly it trickles. When every slot is busy, a new client
 * gets "503 Service Unavailable" with Retry-After and is closed.
 */
#ifndef WEFT_CORE_METRICS_HTTP_H
#define WEFT_CORE_METRICS_HTTP_H

#include <stdint.h>

#include "core/endpoint.h"

struct weft_server;

#define MET_HEAD_MAX    8192 /* a request head */
#define MET_MAX_CLIENTS 64   /* metrics clients at once (a scraper needs one) */
#define MET_HEAD_S      5    /* seconds from the accept to the end of the head */
#define MET_HEAD_NS     ((uint64_t)MET_HEAD_S * 1000000000)

/* The metrics protocol; its ctx is the server's st_sampler (stats/sampler.h). */
extern const ep_proto metrics_proto;

/*
 * Listen on cfg.metrics_bind:cfg.metrics_port (nothing when the port is 0).
 * Returns 0 with *fd the listener (or -1 when off) and *bound its port, or
 * a negative errno (logged).
 */
int metrics_listen(struct weft_server *s, int *fd, uint16_t *bound);

#endif
