/*
 * buffers/ring.c — the byte ring (see ring.h for the representation).
 */
#include "buffers/ring.h"

#include <string.h>

#include "weft/weft.h"

static inline uint32_t idx(const weft_ring *r, uint32_t pos) { return pos & (r->cap - 1); }

void ring_attach(weft_ring *r, char *buf, uint32_t cap)
{
    r->buf = buf;
    r->cap = cap;
    r->head = r->tail = 0;
}

char *ring_detach(weft_ring *r)
{
    char *b = r->buf;
    r->buf = NULL;
    r->cap = 0;
    r->head = r->tail = 0;
    return b;
}

/* Segments of `n` bytes starting at position pos, split at the wrap. */
static int segs_at(const weft_ring *r, uint32_t pos, size_t n, struct iovec iov[2])
{
    if (n == 0)
        return 0;
    uint32_t i = idx(r, pos);
    size_t first = r->cap - i;
    iov[0].iov_base = r->buf + i;
    if (n <= first) {
        iov[0].iov_len = n;
        return 1;
    }
    iov[0].iov_len = first;
    iov[1].iov_base = r->buf;
    iov[1].iov_len = n - first;
    return 2;
}

int weft_ring_peek(const weft_ring *r, struct iovec iov[2])
{
    return segs_at(r, r->head, weft_ring_len(r), iov);
}

int ring_free_segs(const weft_ring *r, struct iovec iov[2], size_t max)
{
    size_t n = ring_space(r);
    return segs_at(r, r->tail, n < max ? n : max, iov);
}

void ring_produce(weft_ring *r, size_t n) { r->tail += (uint32_t)n; }

void weft_ring_consume(weft_ring *r, size_t n)
{
    r->head += (uint32_t)n;
    /*
     * Rewind an empty ring so the next read gets one contiguous segment
     * (one read(2) instead of readv(2)) and the buffer's start stays hot.
     */
    if (r->head == r->tail)
        r->head = r->tail = 0;
}

void ring_append(weft_ring *r, const void *data, size_t n)
{
    struct iovec iov[2];
    int k = segs_at(r, r->tail, n, iov);
    const char *p = data;
    for (int i = 0; i < k; i++) {
        memcpy(iov[i].iov_base, p, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    r->tail += (uint32_t)n;
}

size_t weft_ring_copyout(const weft_ring *r, size_t off, void *dst, size_t n)
{
    size_t len = weft_ring_len(r);
    if (off >= len)
        return 0;
    if (n > len - off)
        n = len - off;
    struct iovec iov[2];
    int k = segs_at(r, r->head + (uint32_t)off, n, iov);
    char *p = dst;
    for (int i = 0; i < k; i++) {
        memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    return n;
}

long weft_ring_find(const weft_ring *r, size_t from, int c)
{
    size_t len = weft_ring_len(r);
    if (from >= len)
        return -1;
    struct iovec iov[2];
    int k = segs_at(r, r->head + (uint32_t)from, len - from, iov);
    size_t base = from;
    for (int i = 0; i < k; i++) {
        const char *hit = memchr(iov[i].iov_base, c, iov[i].iov_len);
        if (hit)
            return (long)(base + (size_t)(hit - (const char *)iov[i].iov_base));
        base += iov[i].iov_len;
    }
    return -1;
}

char *ring_relocate(weft_ring *r, char *newbuf, uint32_t newcap)
{
    uint32_t len = (uint32_t)weft_ring_len(r);
    weft_ring_copyout(r, 0, newbuf, len);
    char *old = r->buf;
    r->buf = newbuf;
    r->cap = newcap;
    r->head = 0;
    r->tail = len;
    return old;
}

void ring_swap(weft_ring *a, weft_ring *b)
{
    weft_ring t = *a;
    *a = *b;
    *b = t;
}
