/*
 * examples/kv/keyspace.c — the shared keyspace on liburcu's cds_lfht.
 *
 * Concurrency, in one place:
 *
 *   - A node (key, value, deadline) is immutable once it is in the table. A
 *     reader inside rcu_read_lock() sees either the old node or the new one,
 *     never a half-written value, and needs no lock.
 *   - SET without conditions is one cds_lfht_add_replace: whatever node the
 *     key had is unlinked atomically as the new one is linked, and freed
 *     after a grace period (call_rcu).
 *   - Every read-modify-write (INCR, SET NX/XX/KEEPTTL, lazy expiry) is a
 *     compare-and-replace loop: look the node up, compute the new node from
 *     it, then cds_lfht_replace(old -> new), which fails with -ENOENT if the
 *     old node was replaced or deleted meanwhile; then look again. A missing
 *     key is created with cds_lfht_add_unique, which fails (returns the node
 *     that won) if another thread created it first. So no update is lost
 *     and no thread ever waits for another: the loop retries only when a
 *     competing write to the same key succeeded. A per-node lock was the
 *     alternative; it would make readers of a hot key wait on its writers,
 *     and it would need a lock that outlives the node it protects.
 *   - Expired keys stay until a reader finds them (deleted then, "lazily")
 *     or a worker's sweep does (kvs_sweep): both use cds_lfht_del, which
 *     succeeds for exactly one thread, and only that thread frees the node.
 *
 * RCU flavour: liburcu's "memb" (the default <urcu.h> flavour, as in
 * libweft). Its read-side lock is a few instructions, and every thread that
 * takes it must be registered: kvs_thread_online.
 */
#include "keyspace.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <urcu.h>
#include <urcu/rculfhash.h>

#include "resp.h"

typedef struct kv_node {
    struct cds_lfht_node ln;
    struct rcu_head rcu;          /* of a retired batch's first node */
    struct kv_node *next_retired; /* the rest of its batch (retire) */
    uint64_t hash;
    int64_t expire_ms; /* CLOCK_MONOTONIC ms; 0 = never */
    uint32_t klen, vlen;
    char data[]; /* key, then value */
} kv_node;

struct kvs {
    struct cds_lfht *ht;
    uint64_t seed;
};

/* A lookup key; &ANY_KEY matches every node with the hash (the sweep). */
typedef struct kv_key {
    const char *p;
    size_t len;
} kv_key;
static const kv_key ANY_KEY;

/* ---- threads ----------------------------------------------------------- */

static pthread_key_t g_rcu_key;
static pthread_once_t g_rcu_once = PTHREAD_ONCE_INIT;
static __thread int t_online;

/*
 * A thread that exits while registered would leave liburcu's reader
 * registry pointing at its dead TLS, and the next grace period would read
 * it. weft has no worker-exit hook, so a pthread key destructor, which runs
 * as the thread exits, unregisters it.
 */
static void retire_flush(void);

static void rcu_thread_exit(void *v)
{
    (void)v;
    retire_flush();
    rcu_unregister_thread();
}

static void make_key(void)
{
    if (pthread_key_create(&g_rcu_key, rcu_thread_exit) != 0)
        abort(); /* only EAGAIN/ENOMEM at startup: nothing sane to do */
}

void kvs_thread_online(void)
{
    if (t_online)
        return;
    pthread_once(&g_rcu_once, make_key);
    rcu_register_thread();
    pthread_setspecific(g_rcu_key, (void *)1);
    t_online = 1;
}

void kvs_thread_offline(void)
{
    if (!t_online)
        return;
    pthread_setspecific(g_rcu_key, NULL);
    retire_flush();
    rcu_unregister_thread();
    t_online = 0;
}

int64_t kvs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- nodes ------------------------------------------------------------- */

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/*
 * A seeded multiply-fold hash (the wyhash idea): fast for short keys, and
 * the per-process random seed keeps clients from choosing colliding keys.
 */
static uint64_t hash_key(const kvs *ks, const char *p, size_t len)
{
    uint64_t h = ks->seed ^ mix(len, 0x9e3779b97f4a7c15ull);
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = mix(h ^ v, ks->seed ^ 0xbf58476d1ce4e5b9ull);
        p += 8;
        len -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, len);
    h = mix(h ^ v ^ ((uint64_t)len << 59), ks->seed ^ 0x94d049bb133111ebull);
    return mix(h, 0x2545f4914f6cdd1dull);
}

static int match(struct cds_lfht_node *ln, const void *arg)
{
    const kv_key *k = arg;
    if (k == &ANY_KEY)
        return 1;
    const kv_node *n = caa_container_of(ln, kv_node, ln);
    return n->klen == k->len && memcmp(n->data, k->p, k->len) == 0;
}

static kv_node *node_new(uint64_t hash, const char *key, size_t klen, const char *val, size_t vlen,
                         int64_t expire_ms)
{
    kv_node *n = malloc(sizeof(*n) + klen + vlen);
    if (!n)
        return NULL;
    cds_lfht_node_init(&n->ln);
    n->hash = hash;
    n->expire_ms = expire_ms;
    n->klen = (uint32_t)klen;
    n->vlen = (uint32_t)vlen;
    memcpy(n->data, key, klen);
    if (vlen)
        memcpy(n->data + klen, val, vlen);
    return n;
}

/*
 * Unlinked nodes are freed after a grace period in batches of RETIRE_BATCH
 * per thread: one call_rcu per batch, not per node (call_rcu was 13 % of
 * weft-kv's profile under SET -P 16, where every SET of an existing key
 * retires the old node). A thread's unfinished batch goes out when it
 * leaves RCU (kvs_thread_offline, or its exit), so at most RETIRE_BATCH - 1
 * nodes per thread wait longer than a grace period.
 */
#define RETIRE_BATCH 64

static __thread kv_node *t_retired;
static __thread unsigned t_nretired;

static void batch_free_rcu(struct rcu_head *h)
{
    kv_node *n = caa_container_of(h, kv_node, rcu);
    while (n) {
        kv_node *next = n->next_retired;
        free(n);
        n = next;
    }
}

static void retire_flush(void)
{
    if (!t_retired)
        return;
    call_rcu(&t_retired->rcu, batch_free_rcu);
    t_retired = NULL;
    t_nretired = 0;
}

/* Free an unlinked node once no reader can still hold it. */
static void retire(kv_node *n)
{
    n->next_retired = t_retired;
    t_retired = n;
    if (++t_nretired >= RETIRE_BATCH)
        retire_flush();
}

static int expired(const kv_node *n, int64_t now) { return n->expire_ms && n->expire_ms <= now; }

static kv_node *iter_node(struct cds_lfht_iter *it)
{
    struct cds_lfht_node *ln = cds_lfht_iter_get_node(it);
    return ln ? caa_container_of(ln, kv_node, ln) : NULL;
}

/* The live node of key, deleting an expired one on the way (read lock held). */
static kv_node *lookup_live(kvs *ks, uint64_t hash, const kv_key *k, int64_t now,
                            struct cds_lfht_iter *it)
{
    cds_lfht_lookup(ks->ht, hash, match, k, it);
    kv_node *n = iter_node(it);
    if (n && expired(n, now)) {
        if (cds_lfht_del(ks->ht, &n->ln) == 0)
            retire(n);
        return NULL;
    }
    return n;
}

/* ---- the table --------------------------------------------------------- */

int kvs_new(kvs **out)
{
    kvs *ks = calloc(1, sizeof(*ks));
    if (!ks)
        return -ENOMEM;
    if (getrandom(&ks->seed, sizeof(ks->seed), 0) != sizeof(ks->seed))
        ks->seed = (uint64_t)kvs_now_ms() * 0x9e3779b97f4a7c15ull; /* no entropy: still works */
    /*
     * 2^17 buckets to start (1 MiB): the table doubles (and shrinks, to 1024
     * at least) by itself in liburcu's resize thread as the node count, kept
     * in per-CPU split counters (ACCOUNTING), crosses its thresholds, but
     * from 1024 buckets it lagged behind redis-benchmark's 100,000 keys: a
     * SET -P 16 profile spent 26 % walking chains in liburcu-cds, 13 % with
     * this start.
     */
    ks->ht = cds_lfht_new(1u << 17, 1024, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
    if (!ks->ht) {
        free(ks);
        return -ENOMEM;
    }
    *out = ks;
    return 0;
}

void kvs_free(kvs *ks)
{
    if (!ks)
        return;
    int was_online = t_online;
    kvs_thread_online();
    kvs_flush(ks);
    retire_flush();
    /* Every node retired by any thread, including the workers, is freed. */
    rcu_barrier();
    if (cds_lfht_destroy(ks->ht, NULL) != 0)
        fprintf(stderr, "weft-kv: cds_lfht_destroy failed (table not empty)\n");
    free(ks);
    if (!was_online)
        kvs_thread_offline();
}

int kvs_get(kvs *ks, const char *key, size_t klen, int64_t now, kvs_value_fn fn, void *arg,
            int64_t *expire_ms)
{
    kv_key k = {key, klen};
    uint64_t hash = hash_key(ks, key, klen);
    struct cds_lfht_iter it;
    rcu_read_lock();
    kv_node *n = lookup_live(ks, hash, &k, now, &it);
    if (n) {
        if (fn)
            fn(arg, n->data + n->klen, n->vlen);
        if (expire_ms)
            *expire_ms = n->expire_ms;
    }
    rcu_read_unlock();
    return n != NULL;
}

int kvs_exists(kvs *ks, const char *key, size_t klen, int64_t now)
{
    return kvs_get(ks, key, klen, now, NULL, NULL, NULL);
}

int kvs_set(kvs *ks, const char *key, size_t klen, const char *val, size_t vlen, int64_t expire_ms,
            int flags, int64_t now)
{
    kv_key k = {key, klen};
    uint64_t hash = hash_key(ks, key, klen);
    kv_node *nn = node_new(hash, key, klen, val, vlen, expire_ms);
    if (!nn)
        return -ENOMEM;
    rcu_read_lock();
    if (!(flags & (KVS_NX | KVS_XX | KVS_KEEPTTL))) {
        struct cds_lfht_node *old = cds_lfht_add_replace(ks->ht, hash, match, &k, &nn->ln);
        if (old)
            retire(caa_container_of(old, kv_node, ln));
        rcu_read_unlock();
        return 1;
    }
    int rc;
    for (;;) {
        struct cds_lfht_iter it;
        kv_node *old = lookup_live(ks, hash, &k, now, &it);
        if (old) {
            if (flags & KVS_NX) {
                rc = 0;
                break;
            }
            if (flags & KVS_KEEPTTL)
                nn->expire_ms = old->expire_ms;
            if (cds_lfht_replace(ks->ht, &it, hash, match, &k, &nn->ln) == 0) {
                retire(old);
                rc = 1;
                break;
            }
            continue; /* old was replaced or deleted meanwhile */
        }
        if (flags & KVS_XX) {
            rc = 0;
            break;
        }
        nn->expire_ms = (flags & KVS_KEEPTTL) ? 0 : expire_ms;
        if (cds_lfht_add_unique(ks->ht, hash, match, &k, &nn->ln) == &nn->ln) {
            rc = 1;
            break;
        }
        /* Another thread created the key first: decide again against it. */
    }
    rcu_read_unlock();
    if (rc == 0)
        free(nn); /* never published: no grace period needed */
    return rc;
}

int kvs_del(kvs *ks, const char *key, size_t klen, int64_t now)
{
    kv_key k = {key, klen};
    uint64_t hash = hash_key(ks, key, klen);
    int rc = 0;
    rcu_read_lock();
    for (;;) {
        struct cds_lfht_iter it;
        kv_node *n = lookup_live(ks, hash, &k, now, &it);
        if (!n)
            break;
        if (cds_lfht_del(ks->ht, &n->ln) == 0) {
            retire(n);
            rc = 1;
            break;
        }
        /* Replaced by a SET meanwhile: that value is the one to delete. */
    }
    rcu_read_unlock();
    return rc;
}

int kvs_incrby(kvs *ks, const char *key, size_t klen, int64_t delta, int64_t now, int64_t *out)
{
    kv_key k = {key, klen};
    uint64_t hash = hash_key(ks, key, klen);
    int rc;
    rcu_read_lock();
    for (;;) {
        struct cds_lfht_iter it;
        kv_node *old = lookup_live(ks, hash, &k, now, &it);
        long long cur = 0;
        if (old && resp_strtoll(old->data + old->klen, old->vlen, &cur) != 0) {
            rc = -EINVAL;
            break;
        }
        if ((delta > 0 && cur > INT64_MAX - delta) || (delta < 0 && cur < INT64_MIN - delta)) {
            rc = -ERANGE;
            break;
        }
        int64_t v = (int64_t)cur + delta;
        char buf[24];
        int len = snprintf(buf, sizeof(buf), "%lld", (long long)v);
        kv_node *nn = node_new(hash, key, klen, buf, (size_t)len, old ? old->expire_ms : 0);
        if (!nn) {
            rc = -ENOMEM;
            break;
        }
        if (old ? cds_lfht_replace(ks->ht, &it, hash, match, &k, &nn->ln) == 0
                : cds_lfht_add_unique(ks->ht, hash, match, &k, &nn->ln) == &nn->ln) {
            if (old)
                retire(old);
            *out = v;
            rc = 0;
            break;
        }
        free(nn); /* lost the race to another write of this key: retry */
    }
    rcu_read_unlock();
    return rc;
}

uint64_t kvs_count(kvs *ks)
{
    long before, after;
    unsigned long count;
    rcu_read_lock();
    cds_lfht_count_nodes(ks->ht, &before, &count, &after);
    rcu_read_unlock();
    return count;
}

uint64_t kvs_flush(kvs *ks)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *ln;
    uint64_t n = 0;
    rcu_read_lock();
    cds_lfht_for_each(ks->ht, &it, ln)
    {
        if (cds_lfht_del(ks->ht, ln) == 0) {
            retire(caa_container_of(ln, kv_node, ln));
            n++;
        }
    }
    rcu_read_unlock();
    return n;
}

size_t kvs_sweep(kvs *ks, kvs_cursor *cur, size_t budget, int64_t now)
{
    struct cds_lfht_iter it;
    size_t gone = 0;
    rcu_read_lock();
    /*
     * Nodes can be freed between two sweeps, so the cursor is a hash, not a
     * pointer: the table is one list ordered by bit-reversed hash, and a
     * lookup that matches any node with that hash finds the place again.
     * If that node has gone, start over from the beginning.
     */
    if (cur->valid)
        cds_lfht_lookup(ks->ht, cur->hash, match, &ANY_KEY, &it);
    if (!cur->valid || !cds_lfht_iter_get_node(&it))
        cds_lfht_first(ks->ht, &it);
    kv_node *n = iter_node(&it);
    for (size_t i = 0; n && i < budget; i++) {
        if (expired(n, now) && cds_lfht_del(ks->ht, &n->ln) == 0) {
            retire(n);
            gone++;
        }
        cds_lfht_next(ks->ht, &it);
        n = iter_node(&it);
    }
    cur->valid = n != NULL;
    if (n)
        cur->hash = n->hash;
    rcu_read_unlock();
    return gone;
}
