/*
 * workers/remote.h — connection ids, and sending to one from any thread.
 */
#ifndef WEFT_WORKERS_REMOTE_H
#define WEFT_WORKERS_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "workers/worker-t.h"

/* The index of the worker an id (weft_conn_id) names. */
int wk_id_worker(uint64_t id);

/*
 * Post len bytes (copied) for the connection `id` on worker w, which sends
 * them if the connection is still open. Any thread. 0, -ENOMEM, -ESHUTDOWN.
 */
int wk_send_to(wk_worker *w, uint64_t id, const void *data, size_t len);

#endif
