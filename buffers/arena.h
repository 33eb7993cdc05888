/*
 * buffers/arena.h — one allocator arena per worker.
 *
 * In normal builds an arena is a jemalloc arena the worker creates on its own
 * thread after pinning (arenas.create), so its pages are first touched on the
 * worker's CPU and NUMA node and no two workers contend on allocator locks.
 * Every call passes MALLOCX_TCACHE_NONE: with the automatic thread cache,
 * MALLOCX_ARENA(i) may hand back memory cached from another arena.
 *
 * Builds with WEFT_SYSTEM_ALLOC (the sanitizer builds, where ASan or TSan
 * must own malloc) route everything through the system allocator, so an
 * overrun of a ring hits a sanitizer redzone.
 */
#ifndef WEFT_BUFFERS_ARENA_H
#define WEFT_BUFFERS_ARENA_H

#include <stddef.h>

typedef struct arena {
    unsigned index; /* jemalloc arena index; 0 with the system allocator */
    int flags;      /* mallocx flags for this arena */
} arena;

/* Create an arena for the calling thread. Returns 0 or a negative errno. */
int arena_create(arena *a);
/* Destroy the arena; everything allocated from it must have been freed. */
void arena_destroy(arena *a);
/* Allocate n bytes (n > 0); NULL when out of memory. */
void *arena_alloc(const arena *a, size_t n);
/* Allocate n zeroed bytes. */
void *arena_calloc(const arena *a, size_t n);
/* Free p, allocated from a with size n. */
void arena_free(const arena *a, void *p, size_t n);
/* Bytes the allocator has in active pages for this arena; 0 when unknown. */
size_t arena_active_bytes(const arena *a);

#endif
