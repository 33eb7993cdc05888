/*
 * workers/remote.c — reaching a connection from another thread by its id.
 *
 * Invariant 1 says only a connection's worker may touch it; everything here
 * therefore goes through that worker's inbox (wk_post). An id carries the
 * worker, the slot and the low 24 bits of the slot's generation, so bytes
 * posted for a connection that has since closed are dropped, not delivered
 * to whatever connection reuses the slot.
 */
#include "workers/remote.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "workers/slab.h"
#include "workers/worker.h"

#define ID_GEN_BITS  24
#define ID_SLOT_BITS 24
#define ID_MASK24    ((1u << 24) - 1)

uint64_t weft_conn_id(const weft_conn *c)
{
    return ((uint64_t)(unsigned)c->w->index << (ID_SLOT_BITS + ID_GEN_BITS)) |
           ((uint64_t)(c->slot & ID_MASK24) << ID_GEN_BITS) | (c->gen & ID_MASK24);
}

int wk_id_worker(uint64_t id) { return (int)(id >> (ID_SLOT_BITS + ID_GEN_BITS)); }

typedef struct remote_send {
    wk_worker *w;
    uint64_t id;
    size_t len;
    char data[];
} remote_send;

/* On the owning worker: send if the id still names an open connection. */
static void deliver(weft_server *s, int worker, void *arg)
{
    (void)s;
    (void)worker;
    remote_send *m = arg;
    uint32_t slot = (uint32_t)(m->id >> ID_GEN_BITS) & ID_MASK24;
    weft_conn *c = wk_conn_at(m->w, slot);
    if (c && (c->gen & ID_MASK24) == (m->id & ID_MASK24) && (c->flags & C_OPENED) &&
        !(c->flags & (C_CLOSED | C_CLOSING)))
        weft_send(c, m->data, m->len);
    free(m);
}

int wk_send_to(wk_worker *w, uint64_t id, const void *data, size_t len)
{
    remote_send *m = malloc(sizeof(*m) + len);
    if (!m)
        return -ENOMEM;
    m->w = w;
    m->id = id;
    m->len = len;
    memcpy(m->data, data, len);
    int rc = wk_post(w, deliver, m);
    if (rc != 0)
        free(m);
    return rc;
}
