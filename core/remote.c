/*
 * core/remote.c — reaching workers and their connections from other threads.
 *
 * Invariant 1 says only a connection's worker may touch it; everything here
 * therefore goes through that worker's inbox (weft_post). An id carries the
 * worker, the slot and the low 24 bits of the slot's generation, so bytes
 * posted for a connection that has since closed are dropped, not delivered
 * to whatever connection reuses the slot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/conn.h"

#define ID_GEN_BITS  24
#define ID_SLOT_BITS 24
#define ID_MASK24    ((1u << 24) - 1)

uint64_t weft_conn_id(const weft_conn *c)
{
    return ((uint64_t)(unsigned)c->w->index << (ID_SLOT_BITS + ID_GEN_BITS)) |
           ((uint64_t)(c->slot & ID_MASK24) << ID_GEN_BITS) | (c->gen & ID_MASK24);
}

int weft_broadcast(weft_server *s, weft_post_fn fn, void *arg)
{
    int posted = 0, err = 0;
    for (int i = 0; i < weft_server_workers(s); i++) {
        int rc = weft_post(s, i, fn, arg);
        if (rc == 0)
            posted++;
        else if (!err)
            err = rc;
    }
    return posted ? posted : err;
}

typedef struct remote_send {
    uint64_t id;
    size_t len;
    char data[];
} remote_send;

/* On the owning worker: send if the id still names an open connection. */
static void deliver(weft_server *s, int worker, void *arg)
{
    remote_send *m = arg;
    wk_worker *w = s->workers[worker];
    uint32_t slot = (uint32_t)(m->id >> ID_GEN_BITS) & ID_MASK24;
    weft_conn *c = wk_conn_at(w, slot);
    if (c && (c->gen & ID_MASK24) == (m->id & ID_MASK24) && (c->flags & C_OPENED) &&
        !(c->flags & (C_CLOSED | C_CLOSING)))
        weft_send(c, m->data, m->len);
    free(m);
}

int weft_send_to(weft_server *s, uint64_t id, const void *data, size_t len)
{
    int worker = (int)(id >> (ID_SLOT_BITS + ID_GEN_BITS));
    if (worker >= weft_server_workers(s))
        return -EINVAL;
    remote_send *m = malloc(sizeof(*m) + len);
    if (!m)
        return -ENOMEM;
    m->id = id;
    m->len = len;
    memcpy(m->data, data, len);
    int rc = weft_post(s, worker, deliver, m);
    if (rc != 0)
        free(m);
    return rc;
}
