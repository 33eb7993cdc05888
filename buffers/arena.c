/*
 * buffers/arena.c — per-worker allocator arenas (see arena.h).
 */
#include "buffers/arena.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifndef WEFT_SYSTEM_ALLOC
#include <jemalloc/jemalloc.h>
#include <stdint.h>
#include <stdio.h>

int arena_create(arena *a)
{
    unsigned idx;
    size_t sz = sizeof(idx);
    int rc = mallctl("arenas.create", &idx, &sz, NULL, 0);
    if (rc != 0)
        return -rc;
    a->index = idx;
    a->flags = (int)(MALLOCX_ARENA(idx) | MALLOCX_TCACHE_NONE);
    return 0;
}

void arena_destroy(arena *a)
{
    char name[64];
    snprintf(name, sizeof(name), "arena.%u.destroy", a->index);
    /* Failure leaves the arena allocated but unused: harmless, not fatal. */
    (void)mallctl(name, NULL, NULL, NULL, 0);
}

void *arena_alloc(const arena *a, size_t n) { return mallocx(n, a->flags); }

void *arena_calloc(const arena *a, size_t n) { return mallocx(n, a->flags | MALLOCX_ZERO); }

void arena_free(const arena *a, void *p, size_t n)
{
    if (p)
        sdallocx(p, n, a->flags);
}

size_t arena_active_bytes(const arena *a)
{
    char name[64];
    uint64_t epoch = 1;
    size_t sz = sizeof(epoch);
    /* Refresh jemalloc's cached statistics before reading them. */
    if (mallctl("epoch", &epoch, &sz, &epoch, sz) != 0)
        return 0;
    size_t pactive = 0, page = 0;
    sz = sizeof(pactive);
    snprintf(name, sizeof(name), "stats.arenas.%u.pactive", a->index);
    if (mallctl(name, &pactive, &sz, NULL, 0) != 0)
        return 0;
    sz = sizeof(page);
    if (mallctl("arenas.page", &page, &sz, NULL, 0) != 0)
        return 0;
    return pactive * page;
}

#else /* WEFT_SYSTEM_ALLOC */

int arena_create(arena *a)
{
    a->index = 0;
    a->flags = 0;
    return 0;
}

void arena_destroy(arena *a) { (void)a; }

void *arena_alloc(const arena *a, size_t n)
{
    (void)a;
    return malloc(n);
}

void *arena_calloc(const arena *a, size_t n)
{
    (void)a;
    return calloc(1, n);
}

void arena_free(const arena *a, void *p, size_t n)
{
    (void)a;
    (void)n;
    free(p);
}

size_t arena_active_bytes(const arena *a)
{
    (void)a;
    return 0;
}
#endif
