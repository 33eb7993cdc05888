/*
 * examples/chat/jobq.h — a bounded multi-producer, multi-consumer queue of
 * pointers, for handing work from the worker threads to the chat's helper
 * threads (the password pool, the database writer) without a lock.
 *
 * Producers (workers) never block and never take a lock: jobq_push is a
 * compare-and-swap on the tail and a sem_post (a futex wake only when a
 * consumer sleeps). A full queue says so (-EAGAIN) and the caller refuses
 * the request: a worker never waits for a helper.
 */
#ifndef WEFT_CHAT_JOBQ_H
#define WEFT_CHAT_JOBQ_H

#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jobq_cell {
    _Atomic size_t seq;
    void *p;
} jobq_cell;

typedef struct jobq {
    jobq_cell *cell;
    size_t mask;
    _Alignas(64) _Atomic size_t head; /* next to pop */
    _Alignas(64) _Atomic size_t tail; /* next to push */
    sem_t items;                      /* what may be popped */
} jobq;

/* A queue of at least cap entries (rounded up to a power of two). 0 or -ENOMEM. */
int jobq_init(jobq *q, size_t cap);
/* Free the cells; no thread may use q any more. Entries left are not freed. */
void jobq_destroy(jobq *q);
/* Enqueue p (not NULL), from any thread, without blocking: 0 or -EAGAIN (full). */
int jobq_push(jobq *q, void *p);
/* Wait for an entry and dequeue it (consumers only). */
void *jobq_pop(jobq *q);
/* Dequeue an entry if one is ready now, else NULL (consumers only). */
void *jobq_trypop(jobq *q);
/* Entries queued now (a snapshot, exact only when no one pushes or pops). */
size_t jobq_len(jobq *q);

#endif
