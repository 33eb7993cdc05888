/*
 * buffers/ring.h — the byte ring behind every connection's input and output.
 *
 * A weft_ring (public layout in weft/weft.h) is a power-of-two array with
 * free-running 32-bit head and tail counters: len = tail - head, and a
 * position maps to an index with `pos & (cap - 1)`. Free-running counters
 * make full and empty distinct without a spare slot. The ring never owns
 * memory by itself: the pool lends it storage (ring_attach) and takes it
 * back (ring_detach), so an idle connection's rings hold nothing.
 *
 * All functions run on the owning worker's thread; none allocates.
 */
#ifndef WEFT_BUFFERS_RING_H
#define WEFT_BUFFERS_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "weft/weft.h"

/* Free space in bytes. */
static inline size_t ring_space(const weft_ring *r) { return r->cap - weft_ring_len(r); }

/* Give an empty ring storage of cap bytes (cap a power of two). */
void ring_attach(weft_ring *r, char *buf, uint32_t cap);

/* Take the storage back, dropping any bytes held; returns it, or NULL. */
char *ring_detach(weft_ring *r);

/*
 * Point iov[] at the free space, at most max bytes of it; returns the number
 * of segments (0 when the ring is full or max is 0).
 */
int ring_free_segs(const weft_ring *r, struct iovec iov[2], size_t max);

/* Mark n bytes, written into the free segments, as held. */
void ring_produce(weft_ring *r, size_t n);

/* Copy n bytes in at the tail; n must be at most ring_space. */
void ring_append(weft_ring *r, const void *data, size_t n);

/*
 * Copy the held bytes, in order, to the start of newbuf (of newcap bytes,
 * newcap >= len) and use newbuf from now on. Returns the old storage.
 */
char *ring_relocate(weft_ring *r, char *newbuf, uint32_t newcap);

/* Swap the storage and contents of two rings. */
void ring_swap(weft_ring *a, weft_ring *b);

#endif
