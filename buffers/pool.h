/*
 * buffers/pool.h — a worker's ring storage.
 *
 * Rings borrow storage while they hold bytes and give it back when they
 * empty, so an idle connection holds none. Storage of the base size (the
 * config's ring_size) is kept on a free list, up to a byte budget, so the
 * steady state borrows and returns without calling the allocator; larger
 * storage (a ring that grew) goes straight back to the arena.
 *
 * One pool per worker, used only on that worker's thread.
 */
#ifndef WEFT_BUFFERS_POOL_H
#define WEFT_BUFFERS_POOL_H

#include <stdint.h>

#include "buffers/arena.h"
#include "stats/counters.h"

typedef struct pool {
    const arena *arena;
    st_worker *st;     /* counters: borrowed, returned, allocs, bytes */
    uint32_t base;     /* the size kept on the free list */
    uint32_t max_free; /* most entries on the free list */
    uint32_t nfree;
    uint64_t max_bytes; /* cap on bytes borrowed at once; 0 = none */
    uint64_t in_use;    /* bytes borrowed now */
    void *free_list;    /* singly linked through each block's first word */
} pool;

/* Set up a pool of base-size (power of two) blocks caching cache_bytes. */
void pool_init(pool *p, const arena *a, st_worker *st, uint32_t base, uint32_t cache_bytes);
/*
 * Cap the bytes borrowed at once at max_bytes (0: no cap). The pool does not
 * enforce it (a send must not fail for it); readers check pool_full.
 */
static inline void pool_set_max(pool *p, uint64_t max_bytes) { p->max_bytes = max_bytes; }
static inline int pool_full(const pool *p) { return p->max_bytes && p->in_use >= p->max_bytes; }

/* Free every cached block. Blocks still borrowed must be returned first. */
void pool_destroy(pool *p);
/* Borrow a block of cap bytes (a power of two >= base); NULL on ENOMEM. */
char *pool_get(pool *p, uint32_t cap);
/* Return a block of cap bytes. */
void pool_put(pool *p, char *buf, uint32_t cap);

#endif
