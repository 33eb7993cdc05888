/*
 * stats/sampler.c — sampling the registry into snapshots published with RCU.
 */
#define RCU_MEMB
#include "stats/sampler.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu.h>
/* The reader TLS (to see whether the caller registered this thread already). */
#include <urcu/static/urcu-memb.h>

/*
 * liburcu publishes with volatile accesses and waits for readers with
 * membarrier(2), which ThreadSanitizer cannot see. These annotations tell it
 * what RCU guarantees: a snapshot's contents happen-before any reader that
 * finds its pointer, and every read-side section ends before the grace
 * period that precedes the free. No effect outside TSan builds.
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
static char tsan_grace;
#define PUBLISH_RELEASE(p) __tsan_release(p)
#define READER_ACQUIRE(p)  __tsan_acquire(p)
#define READER_DONE()      __tsan_release(&tsan_grace)
#define GRACE_ACQUIRE()    __tsan_acquire(&tsan_grace)
#else
#define PUBLISH_RELEASE(p) ((void)(p))
#define READER_ACQUIRE(p)  ((void)(p))
#define READER_DONE()      ((void)0)
#define GRACE_ACQUIRE()    ((void)0)
#endif

struct st_sampler {
    st_registry *reg; /* RCU-published */
    st_snap *cur;     /* RCU-published; only the sampling thread writes it */
    uint64_t seq, start_ns, last_ns;
};

uint64_t weft_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int sampler_new(st_registry *reg, st_sampler **out)
{
    st_sampler *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        free(reg);
        return -ENOMEM;
    }
    sp->start_ns = sp->last_ns = weft_now_ns();
    rcu_assign_pointer(sp->reg, reg);
    *out = sp;
    return 0;
}

void sampler_free(st_sampler *sp)
{
    if (!sp)
        return;
    st_registry *reg = sp->reg;
    st_snap *cur = sp->cur;
    rcu_assign_pointer(sp->reg, NULL);
    rcu_assign_pointer(sp->cur, NULL);
    /* Readers of weft_server_snapshot may still be inside a copy. */
    synchronize_rcu();
    GRACE_ACQUIRE();
    free(cur);
    free(reg);
    free(sp);
}

void sampler_thread_online(void) { rcu_register_thread(); }

void sampler_thread_offline(void) { rcu_unregister_thread(); }

void sampler_sample(st_sampler *sp)
{
    uint64_t now = weft_now_ns();
    rcu_read_lock();
    st_registry *reg = rcu_dereference(sp->reg);
    st_snap *prev = sp->cur; /* only this thread writes cur */
    st_snap *s = snap_take(reg, prev, sp->seq + 1, (double)(now - sp->start_ns) / 1e9,
                           (double)(now - sp->last_ns) / 1e9);
    rcu_read_unlock();
    if (!s)
        return; /* out of memory: keep the old snapshot, try next interval */
    sp->seq++;
    sp->last_ns = now;
    PUBLISH_RELEASE(&sp->cur);
    rcu_assign_pointer(sp->cur, s);
    if (prev) {
        /* No reader can hold prev once every read-side section has ended. */
        synchronize_rcu();
        GRACE_ACQUIRE();
        free(prev);
    }
}

char *sampler_render(st_sampler *sp, weft_format fmt, int *err)
{
    rcu_read_lock();
    st_snap *s = rcu_dereference(sp->cur);
    READER_ACQUIRE(&sp->cur);
    char *t = s ? weft_snapshot_format(&s->pub, fmt) : NULL;
    READER_DONE();
    rcu_read_unlock();
    if (!t)
        *err = s ? -ENOMEM : -EAGAIN;
    return t;
}

/* Registration of reader threads that are not ours (weft_server_snapshot). */
static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;
static void reader_exit(void *p)
{
    (void)p;
    rcu_unregister_thread();
}
static void reader_key_init(void) { pthread_key_create(&reader_key, reader_exit); }

static void ensure_reader(void)
{
    static _Thread_local int registered;
    if (registered)
        return;
    registered = 1;
    /*
     * A program that uses liburcu itself may have registered this thread
     * already (registering twice aborts): then the registration, and the
     * unregistering at exit, are the program's.
     */
    if (URCU_TLS(urcu_memb_reader).registered)
        return;
    pthread_once(&reader_once, reader_key_init);
    rcu_register_thread();
    /* The destructor unregisters the thread when it exits. */
    pthread_setspecific(reader_key, (void *)1);
}

weft_snapshot *sampler_copy(st_sampler *sp, int *err)
{
    ensure_reader();
    rcu_read_lock();
    st_snap *s = rcu_dereference(sp->cur);
    READER_ACQUIRE(&sp->cur);
    st_snap *copy = s ? snap_copy(s) : NULL;
    READER_DONE();
    rcu_read_unlock();
    if (!copy && err)
        *err = s ? -ENOMEM : -EAGAIN;
    return copy ? &copy->pub : NULL;
}
