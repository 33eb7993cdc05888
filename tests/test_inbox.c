/*
 * tests/test_inbox.c — workers/inbox.c: the wait-free handoff to a worker.
 *
 * Single-threaded tests pin down when inbox_push reports an empty queue (the
 * producer's cue to wake the worker) and what inbox_drain takes; a
 * multi-producer test then runs the workers' wake-up protocol over a real
 * eventfd (workers/io_sock.c: a producer signals when its push found the
 * queue empty, the consumer clears the fd before it drains) and checks that
 * nothing is lost, duplicated or reordered per producer, and that the
 * consumer is never left asleep with messages queued (a lost wake-up shows
 * as a poll timeout).
 *
 * cmocka's assertions longjmp and must stay on the test's thread: producer
 * threads only record, the main thread (the consumer) asserts.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "workers/inbox.h"
#include "workers/io_sock.h"

/*
 * liburcu 0.13 orders the queue with inline-asm xchg and barriers that
 * ThreadSanitizer cannot see, so under TSan every message handed over looks
 * like a race (and the reports slow the run to a crawl). Tell TSan about the
 * hand-over the queue provides: release by the producer before the push,
 * acquire by the consumer when it receives the message.
 */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define HANDOVER_RELEASE(m) __tsan_release(m)
#define HANDOVER_ACQUIRE(m) __tsan_acquire(m)
#else
#define HANDOVER_RELEASE(m) ((void)(m))
#define HANDOVER_ACQUIRE(m) ((void)(m))
#endif

/* Is the eventfd readable right now? */
static bool efd_ready(int efd)
{
    struct pollfd p = {.fd = efd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    assert_true(n >= 0);
    return n == 1 && (p.revents & POLLIN);
}

static inbox_msg *msg_new(int producer, intptr_t seq)
{
    inbox_msg *m = malloc(sizeof(*m));
    assert_non_null(m);
    memset(m, 0, sizeof(*m));
    m->kind = INBOX_CALL;
    m->fd = producer;
    m->arg = (void *)seq;
    return m;
}

/* --- single-threaded ---------------------------------------------------- */

typedef struct seen {
    int n;
    intptr_t order[16];
} seen;

static void collect(inbox_msg *m, void *ctx)
{
    seen *s = ctx;
    if (s->n < 16)
        s->order[s->n] = (intptr_t)m->arg;
    s->n++;
    free(m);
}

static void test_init_destroy(void **state)
{
    (void)state;
    inbox q;
    inbox_init(&q);
    seen s = {0};
    assert_int_equal(inbox_drain(&q, collect, &s), 0);
    assert_int_equal(s.n, 0);
    inbox_destroy(&q);
}

static void test_push_reports_empty(void **state)
{
    (void)state;
    inbox q;
    inbox_init(&q);

    /* The first push onto an empty queue says so (the producer wakes)... */
    assert_true(inbox_push(&q, msg_new(0, 1)));
    /* ...the next ones, while it is not drained, do not. */
    assert_false(inbox_push(&q, msg_new(0, 2)));
    assert_false(inbox_push(&q, msg_new(0, 3)));
    assert_false(inbox_push(&q, msg_new(0, 4)));

    /* Drain takes all four in FIFO order. */
    seen s = {0};
    assert_int_equal(inbox_drain(&q, collect, &s), 4);
    assert_int_equal(s.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s.order[i], i + 1);

    /* Empty again: the next push reports it. */
    assert_true(inbox_push(&q, msg_new(0, 5)));
    assert_false(inbox_push(&q, msg_new(0, 6)));
    memset(&s, 0, sizeof(s));
    assert_int_equal(inbox_drain(&q, collect, &s), 2);
    assert_int_equal(s.order[0], 5);
    assert_int_equal(s.order[1], 6);
    /* Draining an empty queue is harmless. */
    assert_int_equal(inbox_drain(&q, collect, &s), 0);
    assert_int_equal(s.n, 2);

    assert_true(inbox_push(&q, msg_new(0, 7)));
    assert_int_equal(inbox_drain(&q, collect, &s), 1);
    assert_int_equal(s.order[2], 7);
    inbox_destroy(&q);
}

static void test_wake_fd(void **state)
{
    (void)state;
    int efd = io_wake_fd_open();
    assert_true(efd >= 0);
    assert_false(efd_ready(efd));
    /* Signals pile up into one readable state; one clear empties it. */
    io_wake_fd_signal(efd);
    io_wake_fd_signal(efd);
    assert_true(efd_ready(efd));
    io_wake_fd_clear(efd);
    assert_false(efd_ready(efd));
    /* Clearing a clear fd is harmless (EAGAIN inside). */
    io_wake_fd_clear(efd);
    assert_false(efd_ready(efd));
    close(efd);
}

/* The message is handed over intact, fields and all. */
static void keep(inbox_msg *m, void *ctx) { *(inbox_msg **)ctx = m; }

static void test_message_fields(void **state)
{
    (void)state;
    inbox q;
    inbox_init(&q);
    inbox_msg *m = msg_new(0, 0);
    m->kind = INBOX_CONN;
    m->fd = 1234;
    m->arg = &q;
    memset(&m->addr, 0x7b, sizeof(m->addr));
    inbox_push(&q, m);
    inbox_msg *got = NULL;
    assert_int_equal(inbox_drain(&q, keep, &got), 1);
    assert_ptr_equal(got, m);
    assert_int_equal(got->kind, INBOX_CONN);
    assert_int_equal(got->fd, 1234);
    assert_ptr_equal(got->arg, &q);
    assert_int_equal(((unsigned char *)&got->addr)[0], 0x7b);
    assert_int_equal(((unsigned char *)&got->addr)[sizeof(got->addr) - 1], 0x7b);
    free(got);
    inbox_destroy(&q);
}

/* --- many producers, one consumer ------------------------------------------ */

#define NPROD           4
#define PER_PROD        100000
#define WAKE_TIMEOUT_MS 10000

typedef struct mpsc {
    inbox q;
    int efd;
    pthread_barrier_t start;
    atomic_ulong wakes; /* pushes that returned true */
    atomic_int alloc_fail;
    /* Consumer-side (main thread) bookkeeping. */
    intptr_t next[NPROD];
    unsigned long received;
    unsigned long errors;
    char first_error[128];
} mpsc;

typedef struct prod_arg {
    mpsc *t;
    int id;
} prod_arg;

static void *producer(void *p)
{
    prod_arg *a = p;
    mpsc *t = a->t;
    unsigned long wakes = 0;
    pthread_barrier_wait(&t->start);
    for (intptr_t seq = 0; seq < PER_PROD; seq++) {
        inbox_msg *m = malloc(sizeof(*m));
        if (!m) {
            atomic_store(&t->alloc_fail, 1);
            break;
        }
        memset(m, 0, sizeof(*m));
        m->kind = INBOX_CALL;
        m->fd = a->id;
        m->arg = (void *)seq;
        HANDOVER_RELEASE(m);
        if (inbox_push(&t->q, m)) {
            io_wake_fd_signal(t->efd); /* the worker's wake (workers/worker.c) */
            wakes++;
        }
        /* Now and then let the consumer catch up, so the queue empties often
         * and the empty -> non-empty edge is exercised many times. */
        if ((seq & 1023) == 0)
            sched_yield();
    }
    atomic_fetch_add(&t->wakes, wakes);
    return NULL;
}

static void check_msg(inbox_msg *m, void *ctx)
{
    mpsc *t = ctx;
    HANDOVER_ACQUIRE(m);
    int id = m->fd;
    intptr_t seq = (intptr_t)m->arg;
    if (id < 0 || id >= NPROD || seq != t->next[id]) {
        if (t->errors++ == 0)
            snprintf(t->first_error, sizeof(t->first_error),
                     "producer %d: got seq %ld, expected %ld", id, (long)seq,
                     id >= 0 && id < NPROD ? (long)t->next[id] : -1L);
    } else {
        t->next[id]++;
    }
    t->received++;
    free(m);
}

static void test_mpsc(void **state)
{
    (void)state;
    mpsc *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    inbox_init(&t->q);
    t->efd = io_wake_fd_open();
    assert_true(t->efd >= 0);
    assert_int_equal(pthread_barrier_init(&t->start, NULL, NPROD + 1), 0);
    pthread_t th[NPROD];
    prod_arg args[NPROD];
    for (int i = 0; i < NPROD; i++) {
        args[i] = (prod_arg){.t = t, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, producer, &args[i]), 0);
    }
    pthread_barrier_wait(&t->start);

    const unsigned long total = (unsigned long)NPROD * PER_PROD;
    unsigned long drains = 0, busy_drains = 0;
    bool lost_wakeup = false;
    while (t->received < total) {
        struct pollfd p = {.fd = t->efd, .events = POLLIN};
        int n = poll(&p, 1, WAKE_TIMEOUT_MS);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            /* Messages remain but nobody woke us. */
            lost_wakeup = true;
            break;
        }
        /* The backends' order: clear the wake channel, then drain. */
        io_wake_fd_clear(t->efd);
        unsigned got = inbox_drain(&t->q, check_msg, t);
        drains++;
        if (got > 0)
            busy_drains++;
    }
    for (int i = 0; i < NPROD; i++)
        pthread_join(th[i], NULL);
    /* Whatever a lost wake-up left behind, so the report is complete. */
    unsigned got = inbox_drain(&t->q, check_msg, t);
    if (got > 0)
        busy_drains++;

    assert_int_equal(atomic_load(&t->alloc_fail), 0);
    if (lost_wakeup)
        fail_msg("lost wake-up: %lu of %lu received, eventfd silent for %d ms "
                 "(%u more were queued)",
                 t->received - got, total, WAKE_TIMEOUT_MS, got);
    if (t->errors)
        fail_msg("%lu messages out of order or duplicated; first: %s", t->errors, t->first_error);
    assert_int_equal(t->received, total);
    for (int i = 0; i < NPROD; i++)
        assert_int_equal(t->next[i], PER_PROD);
    /*
     * The queue turns non-empty only by a push that finds it empty (and
     * returns true), and empty only by a drain that takes something: with
     * everything drained, the two counts match exactly.
     */
    assert_int_equal(atomic_load(&t->wakes), busy_drains);
    assert_true(busy_drains >= 1);
    /* Nothing left. */
    assert_int_equal(inbox_drain(&t->q, check_msg, t), 0);
    io_wake_fd_clear(t->efd);
    assert_false(efd_ready(t->efd));
    print_message("mpsc: %lu messages, %lu polls woke, %lu drains took messages, %lu "
                  "eventfd writes by push\n",
                  total, drains, busy_drains, (unsigned long)atomic_load(&t->wakes));

    pthread_barrier_destroy(&t->start);
    inbox_destroy(&t->q);
    close(t->efd);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_destroy), cmocka_unit_test(test_push_reports_empty),
        cmocka_unit_test(test_wake_fd),      cmocka_unit_test(test_message_fields),
        cmocka_unit_test(test_mpsc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
