/*
 * workers/inbox.c — the wait-free handoff to a worker (see inbox.h).
 */
#include "workers/inbox.h"

/*
 * liburcu's queue orders the handoff with its own barriers (inline asm and
 * code in liburcu-cds.so) that ThreadSanitizer cannot see. Tell it what they
 * guarantee: everything the producer wrote into a message happens-before the
 * consumer reads it. No effect outside TSan builds.
 */
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#ifdef WEFT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define HANDOFF_RELEASE(m) __tsan_release(m)
#define HANDOFF_ACQUIRE(m) __tsan_acquire(m)
#else
#define HANDOFF_RELEASE(m) ((void)(m))
#define HANDOFF_ACQUIRE(m) ((void)(m))
#endif

void inbox_init(inbox *q) { cds_wfcq_init(&q->head, &q->tail); }

void inbox_destroy(inbox *q) { cds_wfcq_destroy(&q->head, &q->tail); }

bool inbox_push(inbox *q, inbox_msg *m)
{
    cds_wfcq_node_init(&m->node);
    HANDOFF_RELEASE(m);
    /* cds_wfcq_enqueue returns false when the queue was empty before. */
    return !cds_wfcq_enqueue(&q->head, &q->tail, &m->node);
}

unsigned inbox_drain(inbox *q, void (*fn)(inbox_msg *m, void *ctx), void *ctx)
{
    struct cds_wfcq_head lh;
    struct cds_wfcq_tail lt;
    cds_wfcq_init(&lh, &lt);
    /* Single consumer: the unlocked (__) splice and iteration are ours. */
    if (__cds_wfcq_splice_blocking(&lh, &lt, &q->head, &q->tail) == CDS_WFCQ_RET_SRC_EMPTY) {
        cds_wfcq_destroy(&lh, &lt);
        return 0;
    }
    unsigned n = 0;
    struct cds_wfcq_node *node, *next;
    __cds_wfcq_for_each_blocking_safe (&lh, &lt, node, next) {
        inbox_msg *m = caa_container_of(node, inbox_msg, node);
        HANDOFF_ACQUIRE(m);
        fn(m, ctx);
        n++;
    }
    cds_wfcq_destroy(&lh, &lt);
    return n;
}
