/*
 * workers/slab.h — a worker's connections, in chunks that never move.
 *
 * Connections are allocated WK_SLAB_CHUNK at a time from the worker's arena
 * and never freed or moved until the worker is destroyed, so a slot number
 * names the same memory for the worker's whole life: backends key their
 * events by slot and generation (conn_key), and a freed slot bumps its
 * generation so stale keys are recognised. On the worker's thread only.
 */
#ifndef WEFT_WORKERS_SLAB_H
#define WEFT_WORKERS_SLAB_H

#include "workers/worker-t.h"

/* A free slot, zeroed but for slot/gen (NULL on ENOMEM). */
weft_conn *wk_slot_get(wk_worker *w);

/* Give c's slot back; its generation changes. */
void wk_slot_put(wk_worker *w, weft_conn *c);

/* The connection in slot `slot` (open or not), or NULL past the slab. */
weft_conn *wk_conn_at(wk_worker *w, uint32_t slot);

/* Call fn for every connection that is open for the handler (not closed). */
void wk_for_each_open(wk_worker *w, void (*fn)(wk_worker *, weft_conn *));

/* Call fn for every slot in use: open, in its handshake or connecting, or
 * lingering (not the closed ones waiting to be reaped). */
void wk_for_each_live(wk_worker *w, void (*fn)(weft_conn *, void *), void *arg);

/* Free every chunk (the worker has ended). */
void wk_slab_destroy(wk_worker *w);

#endif
