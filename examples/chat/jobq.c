/*
 * examples/chat/jobq.c — the bounded MPMC queue (see jobq.h).
 *
 * Dmitry Vyukov's bounded queue: each cell carries a sequence number that
 * says whose turn it is. A producer that finds cell[tail].seq == tail owns
 * it after a CAS of tail; it writes p and publishes with seq = tail + 1
 * (release), which the consumer of that position waits for (acquire). A
 * consumer that owns head publishes seq = head + capacity, handing the cell
 * back to the producer one lap later. A cell whose seq is behind means the
 * queue is full (producer) or empty (consumer).
 *
 * The semaphore counts entries published: a consumer first takes a unit,
 * so the cell it then claims is (or is about to be) written; it may spin a
 * few times on a producer between its CAS and its release store.
 */
#include "jobq.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

int jobq_init(jobq *q, size_t cap)
{
    size_t n = 2;
    while (n < cap)
        n <<= 1;
    q->cell = calloc(n, sizeof(*q->cell));
    if (!q->cell)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        atomic_init(&q->cell[i].seq, i);
    q->mask = n - 1;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    if (sem_init(&q->items, 0, 0) != 0) {
        free(q->cell);
        return -errno;
    }
    return 0;
}

void jobq_destroy(jobq *q)
{
    sem_destroy(&q->items);
    free(q->cell);
    q->cell = NULL;
}

int jobq_push(jobq *q, void *p)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        jobq_cell *c = &q->cell[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t d = (intptr_t)seq - (intptr_t)pos;
        if (d == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (d < 0) {
            return -EAGAIN; /* the cell of one lap ago is not consumed: full */
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
    jobq_cell *c = &q->cell[pos & q->mask];
    c->p = p;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    sem_post(&q->items);
    return 0;
}

/* Claim the entry a taken semaphore unit stands for. */
static void *take(jobq *q)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    for (;;) {
        jobq_cell *c = &q->cell[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t d = (intptr_t)seq - (intptr_t)(pos + 1);
        if (d == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                void *p = c->p;
                atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
                return p;
            }
        } else if (d < 0) {
            /* A producer has the cell but has not published it yet. */
            sched_yield();
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
}

void *jobq_pop(jobq *q)
{
    while (sem_wait(&q->items) != 0)
        ; /* EINTR: wait again */
    return take(q);
}

void *jobq_trypop(jobq *q)
{
    if (sem_trywait(&q->items) != 0)
        return NULL;
    return take(q);
}

size_t jobq_len(jobq *q)
{
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    return t > h ? t - h : 0;
}
