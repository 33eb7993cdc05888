/*
 * core/conn.h — a connection's life on its worker.
 *
 * State diagram (flags in core/server-t.h):
 *
 *   inbox ──conn_open──► OPEN ──(input edge)──► READABLE ─conn_read─► OPEN
 *                         │  ▲                    (budget used: stays
 *            weft_send ►  │  │ output < low wm     READABLE, back on the
 *           over high wm  ▼  │ (on_drain)          ready list: deferral)
 *                        PAUSED
 *                         │
 *   EOF with output ──►  CLOSING ──output flushed──► CLOSED ──end of turn──► slot free
 *   weft_close    ──►      │                          ▲  ▲
 *   stop          ──►      │                          │  └── error, caps, abort,
 *                          ▼ (not after EOF)          │      shutdown deadline
 *                        LINGER: on_close ran; FIN sent; input read and
 *                        discarded until EOF or close_linger_ms ──────┘
 *
 * All functions run on the owning worker's thread.
 */
#ifndef WEFT_CORE_CONN_H
#define WEFT_CORE_CONN_H

#include "core/server-t.h"

/* Register the connection in m (an INBOX_CONN message) and call on_open. */
void conn_open(wk_worker *w, inbox_msg *m);

/*
 * Read from c, at most read_budget bytes this turn, and feed on_data; a
 * connection that uses the whole budget is deferred (wk_defer_push).
 */
void conn_read(wk_worker *w, weft_conn *c);

/* Write c's pending output with one system call; finish a pending close. */
void conn_flush(wk_worker *w, weft_conn *c);

/*
 * Close c now: on_close, close(2), rings back to the pool, counted by
 * reason. Idempotent. The slot is freed at the end of the turn.
 */
void conn_close(wk_worker *w, weft_conn *c, weft_close_reason why);

/*
 * Close after pending output is flushed (at once when there is none); stop
 * reading meanwhile.
 */
void conn_close_after_flush(wk_worker *w, weft_conn *c, weft_close_reason why);

/* Put connections that wait for ring memory back on the ready list, if the
 * pool is under its cap again. */
void conn_unstarve(wk_worker *w);

/* Read and discard a lingering connection's input; end it at EOF. */
void conn_linger_read(wk_worker *w, weft_conn *c);

/*
 * End the lingers whose time is up (all of them when force is set) and
 * return the milliseconds until the next one ends, or -1 when none lingers.
 */
int conn_linger_expire(wk_worker *w, int force);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t wk_now_ms(void);

/* Queue c on the worker's ready / flush list (no-op if already there). */
void wk_ready_push(wk_worker *w, weft_conn *c);
/* Queue c, which used a whole read budget, on the deferred (bulk) list; a
 * connection on the ready or deferred list is queued nowhere else. */
void wk_defer_push(wk_worker *w, weft_conn *c);
void wk_flush_push(wk_worker *w, weft_conn *c);

/* The connection in slot `slot` (open or not), or NULL past the slab. */
weft_conn *wk_conn_at(wk_worker *w, uint32_t slot);

/* Take a free slot (NULL on ENOMEM); give one back at the end of a turn. */
weft_conn *wk_slot_get(wk_worker *w);

#endif
