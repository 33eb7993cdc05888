/*
 * workers/queues.h — the worker's lists of connections with work to do.
 *
 * Four FIFOs link connections through next_ready (ready, deferred, starved:
 * C_READY marks a connection on any of them, so it is on at most one) and
 * one through next_flush (flush: C_FLUSH). Appending is O(1) and never
 * allocates. On the worker's thread only.
 */
#ifndef WEFT_WORKERS_QUEUES_H
#define WEFT_WORKERS_QUEUES_H

#include <stddef.h>

#include "workers/worker-t.h"

/*
 * Append c to a FIFO linked through the pointer at byte offset `link` in
 * each connection.
 */
static inline void wk_list_append(conn_list *l, weft_conn *c, size_t link)
{
#define NEXT(x) (*(weft_conn **)((char *)(x) + link))
    NEXT(c) = NULL;
    if (l->tail)
        NEXT(l->tail) = c;
    else
        l->head = c;
    l->tail = c;
#undef NEXT
}

/* Queue c on a next_ready list unless it is on one, or closed for good. */
static inline void wk_ready_append(conn_list *l, weft_conn *c)
{
    if ((c->flags & C_READY) || (c->flags & (C_CLOSED | C_LINGER)) == C_CLOSED)
        return;
    c->flags |= C_READY;
    wk_list_append(l, c, offsetof(weft_conn, next_ready));
}

/* Input to read this turn. */
static inline void wk_ready_push(wk_worker *w, weft_conn *c) { wk_ready_append(&w->ready, c); }

/* A connection that used a whole read budget: continued after fresh input. */
static inline void wk_defer_push(wk_worker *w, weft_conn *c) { wk_ready_append(&w->deferred, c); }

/* Output to write this turn (no-op if queued or closed). */
static inline void wk_flush_push(wk_worker *w, weft_conn *c)
{
    if (c->flags & (C_FLUSH | C_CLOSED))
        return;
    c->flags |= C_FLUSH;
    wk_list_append(&w->flush, c, offsetof(weft_conn, next_flush));
}

#endif
