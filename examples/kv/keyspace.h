/*
 * examples/kv/keyspace.h — the key-value store shared by every worker.
 *
 * One liburcu lock-free resizable hash table (cds_lfht) holds every key.
 * A value is an immutable blob in the same node as its key; a write makes a
 * new node and swaps it in, and the old one is freed after an RCU grace
 * period. Reads take no lock and never wait for a writer; writers never
 * wait for readers.
 *
 * Threads. Every function except kvs_new and kvs_free may be called from
 * any number of threads at once, each of which must first call
 * kvs_thread_online() (cheap after the first call). Times are CLOCK_MONOTONIC
 * milliseconds (kvs_now_ms).
 */
#ifndef WEFT_KV_KEYSPACE_H
#define WEFT_KV_KEYSPACE_H

#include <stddef.h>
#include <stdint.h>

typedef struct kvs kvs;

/* Create an empty keyspace. Returns 0 or -ENOMEM. */
int kvs_new(kvs **out);

/*
 * Delete every key, wait for every deferred free (rcu_barrier) and destroy
 * the table. Only after every other thread using it has stopped.
 */
void kvs_free(kvs *ks);

/*
 * Register the calling thread as an RCU reader once; it is unregistered
 * when the thread exits (a pthread key destructor). Threads that never
 * exit while the process lives on (main) call kvs_thread_offline.
 */
void kvs_thread_online(void);
void kvs_thread_offline(void);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t kvs_now_ms(void);

/*
 * Look key up. When it exists and has not expired, call fn with its value
 * (valid only during the call, which runs inside an RCU read-side critical
 * section: fn must not block) and return 1 and the key's deadline in
 * *expire_ms (0 = none; pass NULL if unwanted). Otherwise return 0. An
 * expired key found here is deleted.
 */
typedef void (*kvs_value_fn)(void *arg, const char *val, size_t len);
int kvs_get(kvs *ks, const char *key, size_t klen, int64_t now, kvs_value_fn fn, void *arg,
            int64_t *expire_ms);

/* kvs_set flags. */
enum {
    KVS_NX = 1,      /* only if the key does not exist */
    KVS_XX = 2,      /* only if it exists */
    KVS_KEEPTTL = 4, /* keep the existing key's deadline */
};

/*
 * Store key = val, expiring at expire_ms (0 = never). Returns 1 when stored,
 * 0 when NX/XX said no, -ENOMEM.
 */
int kvs_set(kvs *ks, const char *key, size_t klen, const char *val, size_t vlen, int64_t expire_ms,
            int flags, int64_t now);

/* Delete key. Returns 1 when it existed (and had not expired), else 0. */
int kvs_del(kvs *ks, const char *key, size_t klen, int64_t now);

/* 1 when key exists and has not expired, else 0. */
int kvs_exists(kvs *ks, const char *key, size_t klen, int64_t now);

/*
 * Add delta to the integer in key (a missing key counts as 0) and store
 * the result in *out; the key keeps its deadline. Returns 0, -EINVAL (the
 * value is not a base-10 int64), -ERANGE (overflow) or -ENOMEM. Atomic:
 * concurrent increments of one key from any threads all count.
 */
int kvs_incrby(kvs *ks, const char *key, size_t klen, int64_t delta, int64_t now, int64_t *out);

/* The number of keys (expired ones not yet removed included). O(keys). */
uint64_t kvs_count(kvs *ks);

/* Delete every key; returns how many were deleted. */
uint64_t kvs_flush(kvs *ks);

/*
 * Where an incremental sweep goes on from; zero-initialise. Each thread that
 * sweeps keeps its own.
 */
typedef struct kvs_cursor {
    uint64_t hash; /* hash of the next node to look at */
    int valid;     /* 0: start from the beginning of the table */
} kvs_cursor;

/*
 * Look at up to `budget` keys from the cursor on and delete those that
 * have expired; the cursor wraps to the start after the last key. Returns
 * the number deleted.
 */
size_t kvs_sweep(kvs *ks, kvs_cursor *cur, size_t budget, int64_t now);

#endif /* WEFT_KV_KEYSPACE_H */
