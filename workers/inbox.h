/*
 * workers/inbox.h — the handoff to a worker.
 *
 * Any thread (the acceptor, another worker, the application) hands a worker
 * a message by enqueueing it on the worker's inbox, a liburcu wait-free
 * concurrent queue: producers never block or take a lock. inbox_push says
 * whether the queue was empty before; only then does the producer wake the
 * worker (its I/O backend's wake, workers/worker.c): while the worker has
 * not yet drained the queue, further producers skip the system call.
 *
 * Lost wake-ups: the backend clears its wake channel when it reports the
 * wake-up, before the loop drains the queue. A producer that finds the
 * queue empty after our splice wakes again, which the next wait sees.
 *
 * Exactly one thread (the owning worker) consumes. No system call here.
 */
#ifndef WEFT_WORKERS_INBOX_H
#define WEFT_WORKERS_INBOX_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <urcu/wfcqueue.h>

#include "weft/weft.h"

typedef enum inbox_kind {
    INBOX_CONN = 1, /* a new connection: fd and peer address */
    INBOX_CALL,     /* run fn(arg) on the worker (weft_post) */
} inbox_kind;

typedef struct inbox_msg {
    struct cds_wfcq_node node;
    inbox_kind kind;
    int fd;
    weft_post_fn fn;
    void *arg;
    const struct wk_origin *origin; /* INBOX_CONN: its listener's handler and data */
    void *tls_ctx;                  /* INBOX_CONN: an SSL_CTX reference, or NULL */
    /* The peer (sockaddr_in or sockaddr_in6): 64 bytes a message in all. */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
} inbox_msg;

typedef struct inbox {
    /* Producers touch tail, the consumer head: keep them on separate lines. */
    struct cds_wfcq_head head __attribute__((aligned(64)));
    struct cds_wfcq_tail tail __attribute__((aligned(64)));
} inbox;

/* Set up an empty queue. */
void inbox_init(inbox *q);
/* Tear the queue down; it must be empty (see inbox_drain). */
void inbox_destroy(inbox *q);

/*
 * Enqueue m (from any thread). Returns true when the queue was empty
 * before: the caller then wakes the consumer.
 */
bool inbox_push(inbox *q, inbox_msg *m);

/*
 * Consumer side: take every queued message and call fn(m, ctx) for each in
 * FIFO order; fn owns m from then on. Returns the number of messages.
 */
unsigned inbox_drain(inbox *q, void (*fn)(inbox_msg *m, void *ctx), void *ctx);

#endif
