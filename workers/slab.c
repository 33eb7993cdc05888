/*
 * workers/slab.c — the connection slab (slab.h).
 */
#include "workers/slab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "workers/tls.h"

static int slab_grow(wk_worker *w)
{
    if (w->nchunks == w->chunks_cap) {
        uint32_t ncap = w->chunks_cap ? w->chunks_cap * 2 : 16;
        weft_conn **nc = realloc(w->chunks, ncap * sizeof(*nc));
        if (!nc)
            return -ENOMEM;
        w->chunks = nc;
        w->chunks_cap = ncap;
    }
    weft_conn *chunk = arena_calloc(&w->arena, WK_SLAB_CHUNK * sizeof(weft_conn));
    if (!chunk)
        return -ENOMEM;
    uint32_t base = w->nchunks * WK_SLAB_CHUNK;
    w->chunks[w->nchunks++] = chunk;
    /* Push in reverse so slots are handed out in ascending order. */
    for (int i = WK_SLAB_CHUNK - 1; i >= 0; i--) {
        chunk[i].slot = base + (uint32_t)i;
        chunk[i].fd = -1;
        chunk[i].next_ready = w->free_conns;
        w->free_conns = &chunk[i];
    }
    return 0;
}

weft_conn *wk_slot_get(wk_worker *w)
{
    if (!w->free_conns && slab_grow(w) != 0)
        return NULL;
    weft_conn *c = w->free_conns;
    w->free_conns = c->next_ready;
    uint32_t slot = c->slot, gen = c->gen;
    memset(c, 0, sizeof(*c));
    c->slot = slot;
    c->gen = gen;
    c->fd = -1;
    c->w = w;
    return c;
}

void wk_slot_put(wk_worker *w, weft_conn *c)
{
    if (c->x) {
        free(c->x->sni);
        tls_ctx_unref(c->x->tls_client); /* an outbound one that never connected */
    }
    free(c->x);
    c->x = NULL;
    c->gen++;
    c->flags = 0;
    c->ud = NULL;
    c->next_ready = w->free_conns;
    w->free_conns = c;
}

weft_conn *wk_conn_at(wk_worker *w, uint32_t slot)
{
    uint32_t k = slot / WK_SLAB_CHUNK;
    if (k >= w->nchunks)
        return NULL;
    return &w->chunks[k][slot % WK_SLAB_CHUNK];
}

void wk_for_each_open(wk_worker *w, void (*fn)(wk_worker *, weft_conn *))
{
    for (uint32_t k = 0; k < w->nchunks; k++)
        for (int i = 0; i < WK_SLAB_CHUNK; i++) {
            weft_conn *c = &w->chunks[k][i];
            if ((c->flags & C_OPENED) && !(c->flags & C_CLOSED))
                fn(w, c);
        }
}

void wk_for_each_live(wk_worker *w, void (*fn)(weft_conn *, void *), void *arg)
{
    for (uint32_t k = 0; k < w->nchunks; k++)
        for (int i = 0; i < WK_SLAB_CHUNK; i++) {
            weft_conn *c = &w->chunks[k][i];
            /* A free slot has no flag; a closed one waits for the reap. */
            if (c->flags && (!(c->flags & C_CLOSED) || (c->flags & C_LINGER)))
                fn(c, arg);
        }
}

void wk_slab_destroy(wk_worker *w)
{
    for (uint32_t k = 0; k < w->nchunks; k++)
        arena_free(&w->arena, w->chunks[k], WK_SLAB_CHUNK * sizeof(weft_conn));
    free(w->chunks);
    w->chunks = NULL;
    w->nchunks = w->chunks_cap = 0;
    w->free_conns = NULL;
}
