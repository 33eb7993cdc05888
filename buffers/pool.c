/*
 * buffers/pool.c — per-worker ring storage (see pool.h).
 */
#include "buffers/pool.h"

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#endif
#endif
#ifndef POISON
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

void pool_init(pool *p, const arena *a, st_worker *st, uint32_t base, uint32_t cache_bytes)
{
    p->arena = a;
    p->st = st;
    p->base = base;
    p->max_free = cache_bytes / base;
    p->nfree = 0;
    p->free_list = NULL;
    p->max_bytes = 0;
    p->in_use = 0;
}

void pool_destroy(pool *p)
{
    while (p->free_list) {
        void *b = p->free_list;
        UNPOISON(b, sizeof(void *));
        p->free_list = *(void **)b;
        arena_free(p->arena, b, p->base);
        ST_ADD(p->st, pool_bytes, -(uint64_t)p->base);
    }
    p->nfree = 0;
}

char *pool_get(pool *p, uint32_t cap)
{
    char *b;
    if (cap == p->base && p->free_list) {
        b = p->free_list;
        UNPOISON(b, cap);
        p->free_list = *(void **)b;
        p->nfree--;
    } else {
        b = arena_alloc(p->arena, cap);
        if (!b)
            return NULL;
        ST_ADD(p->st, ring_allocs, 1);
        ST_ADD(p->st, pool_bytes, cap);
    }
    ST_ADD(p->st, rings_borrowed, 1);
    p->in_use += cap;
    return b;
}

void pool_put(pool *p, char *buf, uint32_t cap)
{
    ST_ADD(p->st, rings_returned, 1);
    p->in_use -= cap;
    if (cap == p->base && p->nfree < p->max_free) {
        *(void **)buf = p->free_list;
        p->free_list = buf;
        p->nfree++;
        /* A stale pointer into a returned ring now trips ASan. */
        POISON(buf + sizeof(void *), cap - sizeof(void *));
        return;
    }
    arena_free(p->arena, buf, cap);
    ST_ADD(p->st, pool_bytes, -(uint64_t)cap);
}
