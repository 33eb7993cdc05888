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

/*
 * Read from fd into the free space, at most max bytes, with one read(2) or
 * readv(2). Returns what the call returned (bytes, 0 at EOF, -1 with errno);
 * the caller marks the bytes as held with ring_produce(n). With no free
 * space or max 0 it makes no call and returns -1 with errno ENOBUFS (never a
 * 0 that would read as EOF).
 */
ssize_t ring_read_fd(weft_ring *r, int fd, size_t max);

/*
 * Write the held bytes to socket fd with one send(2)/sendmsg(2)
 * (MSG_NOSIGNAL: a closed peer gives EPIPE, never SIGPIPE) and consume what
 * was written. Returns what the call returned; an empty ring makes no call
 * and returns 0.
 */
ssize_t ring_send_fd(weft_ring *r, int fd);

#endif
