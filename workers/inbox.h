/*
 * workers/inbox.h — the handoff to a worker.
 *
 * Any thread (the acceptor, another worker, the application) hands a worker
 * a message by enqueueing it on the worker's inbox, a liburcu wait-free
 * concurrent queue: producers never block or take a lock. The worker is
 * woken through an eventfd in its epoll set, written only when the inbox was
 * empty before the enqueue: while the worker has not yet drained the queue,
 * further producers skip the write(2).
 *
 * Exactly one thread (the owning worker) consumes.
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
    int efd; /* eventfd, EFD_NONBLOCK | EFD_CLOEXEC */
} inbox;

/* Create the queue and its eventfd. Returns 0 or a negative errno. */
int inbox_init(inbox *q);
/* Close the eventfd; the queue must be empty (see inbox_drain). */
void inbox_destroy(inbox *q);

/*
 * Enqueue m (from any thread) and wake the consumer if the queue was empty.
 * Returns true when this call wrote the eventfd.
 */
bool inbox_push(inbox *q, inbox_msg *m);

/*
 * Wake the consumer unconditionally (async-signal-safe: one write(2)).
 */
void inbox_kick(inbox *q);

/*
 * Consumer side: clear the eventfd, then take every queued message and call
 * fn(m, ctx) for each in FIFO order; fn owns m from then on. Returns the
 * number of messages. Clearing before taking closes the lost-wake-up race: a
 * producer that finds the queue empty after our splice writes the eventfd
 * again, which raises a new edge.
 */
unsigned inbox_drain(inbox *q, void (*fn)(inbox_msg *m, void *ctx), void *ctx);

#endif
