/*
 * tests/st_concurrency.c — snapshots under fast publication and churn.
 *
 * An in-process server samples its counters every millisecond
 * (stats_interval_ms = 1) while reader threads take and free private
 * snapshots in a loop (weft_server_snapshot / weft_snapshot_free) and client
 * threads churn connections (connect, echo a message, close). Asserted:
 *   - each reader sees seq never go back, and a repeated seq carries the
 *     very same figures;
 *   - every counter (totals and each worker's) never decreases, and the
 *     gauges derived from them are sane (a worker's open <= its opened);
 *   - at least 10,000 snapshots get published, and the process's RSS after
 *     10,000 publications exceeds the RSS after 1,000 by less than 8 MiB
 *     (each publication frees the snapshot it replaces);
 *   - every echo was correct, and once the churn stops the final figures
 *     are exact (accepted == closed == connections made).
 * Run it in a TSan build too (-DWEFT_SANITIZE=thread): it is the test that
 * exercises the RCU publication of snapshots from threads that are not
 * weft's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itlib.h"
#include "weft/weft.h"

#define READERS        3
#define CLIENTS        2
#define MAX_CONNS      20000 /* per client thread: the churn is bounded */
#define PUBLICATIONS   10000
#define RSS_GROWTH_MAX (8l << 20)
#define TIME_LIMIT_MS  150000

static weft_server *srv;
static atomic_int stop_readers, stop_clients;
static atomic_ullong max_seq;
static atomic_ullong conns_made;

typedef struct reader_result {
    uint64_t snapshots, distinct;
    uint64_t wraps; /* snapshots with a wrapped gauge */
    char wrap[512]; /* the first one */
    char error[512];
} reader_result;

static void on_data(weft_conn *c, weft_ring *in) { weft_send_from(c, in, weft_ring_len(in)); }

/* The counters of weft_stats that may only grow. */
// clang-format off
#define MONO(X) \
    X(accepted) X(opened) X(closed) X(bytes_in) X(bytes_out) X(reads) X(writes) X(eagain) \
    X(wakeups) X(events) X(deferrals) X(rings_borrowed) X(rings_returned) X(ring_allocs) \
    X(handoffs)
// clang-format on

/* "" when cur may follow prev, else what went wrong. */
static const char *stats_step(const weft_stats *prev, const weft_stats *cur, char *why, size_t n)
{
#define CMP(f)                                                                                     \
    if (cur->f < prev->f) {                                                                        \
        snprintf(why, n, #f " went from %llu to %llu", (unsigned long long)prev->f,                \
                 (unsigned long long)cur->f);                                                      \
        return why;                                                                                \
    }
    MONO(CMP)
#undef CMP
    for (int r = 0; r < WEFT_CLOSE_REASONS; r++)
        if (cur->closed_by[r] < prev->closed_by[r]) {
            snprintf(why, n, "closed_by[%d] went back", r);
            return why;
        }
    return "";
}

static void *reader(void *arg)
{
    reader_result *res = arg;
    weft_snapshot *prev = NULL;
    char why[256];
    while (!atomic_load(&stop_readers)) {
        int err = 0;
        weft_snapshot *s = weft_server_snapshot(srv, &err);
        if (!s) {
            if (err != -EAGAIN) {
                snprintf(res->error, sizeof(res->error), "weft_server_snapshot: %d", err);
                break;
            }
            usleep(100);
            continue;
        }
        res->snapshots++;
        /* Gauges derived from two counters must not wrap. Recorded, not
         * fatal at once, so the rest of the test still runs and reports. */
        for (int i = 0; i < s->nworkers; i++)
            if (s->workers[i].st.open > s->workers[i].st.opened ||
                s->workers[i].st.rings_in_use > s->workers[i].st.rings_borrowed) {
                if (!res->wraps++)
                    snprintf(res->wrap, sizeof(res->wrap),
                             "seq %llu worker %d: open %llu (opened %llu closed %llu), "
                             "rings_in_use %llu (borrowed %llu returned %llu)",
                             (unsigned long long)s->seq, i,
                             (unsigned long long)s->workers[i].st.open,
                             (unsigned long long)s->workers[i].st.opened,
                             (unsigned long long)s->workers[i].st.closed,
                             (unsigned long long)s->workers[i].st.rings_in_use,
                             (unsigned long long)s->workers[i].st.rings_borrowed,
                             (unsigned long long)s->workers[i].st.rings_returned);
            }
        if (s->total.rings_in_use > s->total.rings_borrowed && !res->wraps++)
            snprintf(res->wrap, sizeof(res->wrap),
                     "seq %llu: total rings_in_use %llu > borrowed %llu",
                     (unsigned long long)s->seq, (unsigned long long)s->total.rings_in_use,
                     (unsigned long long)s->total.rings_borrowed);
        const char *bad = "";
        if (!*bad && prev) {
            if (s->seq < prev->seq) {
                snprintf(why, sizeof(why), "seq went from %llu to %llu",
                         (unsigned long long)prev->seq, (unsigned long long)s->seq);
                bad = why;
            } else if (s->seq == prev->seq &&
                       memcmp(&s->total, &prev->total, sizeof(s->total)) != 0) {
                snprintf(why, sizeof(why), "seq %llu seen twice with different totals",
                         (unsigned long long)s->seq);
                bad = why;
            } else {
                bad = stats_step(&prev->total, &s->total, why, sizeof(why));
                for (int i = 0; i < s->nworkers && !*bad; i++)
                    bad = stats_step(&prev->workers[i].st, &s->workers[i].st, why, sizeof(why));
                if (!*bad && s->turn.count < prev->turn.count) {
                    snprintf(why, sizeof(why), "turn latency count went back");
                    bad = why;
                }
            }
        }
        if (*bad) {
            snprintf(res->error, sizeof(res->error), "snapshot seq %llu: %s",
                     (unsigned long long)s->seq, bad);
            weft_snapshot_free(s);
            break;
        }
        if (!prev || s->seq != prev->seq)
            res->distinct++;
        unsigned long long m = atomic_load(&max_seq);
        while (s->seq > m && !atomic_compare_exchange_weak(&max_seq, &m, s->seq))
            ;
        weft_snapshot_free(prev);
        prev = s;
        /* A breath between snapshots: on a small machine, readers spinning
         * flat out would starve the stats thread rather than test it. */
        usleep(20);
    }
    weft_snapshot_free(prev);
    return NULL;
}

typedef struct client_result {
    uint64_t conns, bytes;
    int failed;
} client_result;

static void *client(void *arg)
{
    client_result *res = arg;
    uint16_t port = weft_server_port(srv);
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&stop_clients) && res->conns < MAX_CONNS) {
        int fd = itl_connect("127.0.0.1", port, 10000, 0);
        if (fd < 0) {
            res->failed = 1;
            break;
        }
        size_t n = 1 + (seed = seed * 1103515245u + 12345u) % 4000;
        if (itl_echo_roundtrip(fd, n, seed, 10000) != 0) {
            res->failed = 2;
            close(fd);
            break;
        }
        /* Close with a reset: no TIME_WAIT, so the churn cannot use up the
         * ephemeral ports (the server counts these as closed by "error"). */
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
        res->conns++;
        res->bytes += n;
        atomic_fetch_add(&conns_made, 1);
    }
    return NULL;
}

static void wait_seq(uint64_t seq, int64_t deadline, reader_result *rr)
{
    while (atomic_load(&max_seq) < seq) {
        for (int i = 0; i < READERS; i++)
            IT_CHECK(!rr[i].error[0], "reader %d: %s", i, rr[i].error);
        IT_CHECK(itl_now_ms() < deadline, "only %llu publications in %d s",
                 (unsigned long long)atomic_load(&max_seq), TIME_LIMIT_MS / 1000);
        itl_sleep_ms(5);
    }
}

int main(void)
{
    weft_config cfg = weft_config_default();
    cfg.port = 0;
    cfg.workers = 2;
    cfg.stats_interval_ms = 1;
    cfg.admin_socket = ""; /* none: this test needs no files */
    cfg.log_level = WEFT_LOG_WARN;
    cfg.close_linger_ms = 0;
    weft_handler h = {.on_data = on_data};
    IT_CHECK(weft_server_new(&cfg, &h, NULL, &srv) == 0, "weft_server_new");
    IT_CHECK(weft_server_start(srv) == 0, "weft_server_start");
    int64_t start = itl_now_ms(), deadline = start + TIME_LIMIT_MS;

    pthread_t rt[READERS], ct[CLIENTS];
    reader_result rr[READERS];
    client_result cr[CLIENTS];
    memset(rr, 0, sizeof(rr));
    memset(cr, 0, sizeof(cr));
    for (int i = 0; i < READERS; i++)
        IT_CHECK(pthread_create(&rt[i], NULL, reader, &rr[i]) == 0, "pthread_create");
    for (int i = 0; i < CLIENTS; i++)
        IT_CHECK(pthread_create(&ct[i], NULL, client, &cr[i]) == 0, "pthread_create");

    wait_seq(1000, deadline, rr);
    long rss1000 = itl_vmrss_kb(getpid()) * 1024;
    int64_t t1000 = itl_now_ms();
    wait_seq(PUBLICATIONS, deadline, rr);
    long rss10000 = itl_vmrss_kb(getpid()) * 1024;
    int64_t t10000 = itl_now_ms();

    atomic_store(&stop_clients, 1);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(ct[i], NULL);
    /* Keep reading while the last connections close on the workers. */
    uint64_t made = atomic_load(&conns_made), sent = 0;
    for (int i = 0; i < CLIENTS; i++) {
        IT_CHECK(!cr[i].failed, "client %d failed (%d) after %llu connections", i, cr[i].failed,
                 (unsigned long long)cr[i].conns);
        sent += cr[i].bytes;
    }
    weft_snapshot *fin = NULL;
    for (;;) {
        int err;
        weft_snapshot_free(fin);
        fin = weft_server_snapshot(srv, &err);
        IT_CHECK(fin, "final snapshot: %d", err);
        if (fin->total.closed == made)
            break;
        IT_CHECK(itl_now_ms() < deadline + 10000, "closed %llu of %llu connections",
                 (unsigned long long)fin->total.closed, (unsigned long long)made);
        itl_sleep_ms(5);
    }
    atomic_store(&stop_readers, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);

    uint64_t snaps = 0;
    for (int i = 0; i < READERS; i++) {
        IT_CHECK(!rr[i].error[0], "reader %d: %s", i, rr[i].error);
        IT_CHECK(rr[i].distinct > 100, "reader %d saw only %llu distinct snapshots", i,
                 (unsigned long long)rr[i].distinct);
        snaps += rr[i].snapshots;
    }
    printf("publications: %llu (1,000 -> 10,000 in %.1f s); reader snapshots: %llu; "
           "connections: %llu (%llu bytes echoed)\n",
           (unsigned long long)fin->seq, (double)(t10000 - t1000) / 1000, (unsigned long long)snaps,
           (unsigned long long)made, (unsigned long long)sent);
    printf("RSS after 1,000 publications %ld KiB, after 10,000 %ld KiB (growth %ld KiB)\n",
           rss1000 >> 10, rss10000 >> 10, (rss10000 - rss1000) >> 10);
    IT_CHECK(fin->total.accepted == made, "accepted %llu, made %llu",
             (unsigned long long)fin->total.accepted, (unsigned long long)made);
    IT_CHECK(fin->total.open == 0, "open %llu", (unsigned long long)fin->total.open);
    IT_CHECK(fin->total.bytes_in == sent && fin->total.bytes_out == sent,
             "bytes in %llu out %llu sent %llu", (unsigned long long)fin->total.bytes_in,
             (unsigned long long)fin->total.bytes_out, (unsigned long long)sent);
    /*
     * Under ASan freed memory sits in its quarantine, so RSS says nothing
     * about reclamation there; LeakSanitizer checks for leaks instead.
     */
    if (getenv("WEFT_ASAN"))
        printf("RSS bound not checked: ASan build (LeakSanitizer checks leaks)\n");
    else
        IT_CHECK(rss10000 - rss1000 < RSS_GROWTH_MAX, "RSS grew by %ld KiB",
                 (rss10000 - rss1000) >> 10);
    for (int i = 0; i < READERS; i++)
        IT_CHECK(rr[i].wraps == 0,
                 "reader %d: %llu of %llu snapshots had a gauge below zero "
                 "(wrapped to 2^64 - k); first: %s",
                 i, (unsigned long long)rr[i].wraps, (unsigned long long)rr[i].snapshots,
                 rr[i].wrap);
    weft_snapshot_free(fin);

    weft_server_stop(srv);
    IT_CHECK(weft_server_wait(srv) == 0, "weft_server_wait");
    weft_server_free(srv);
    printf("st_concurrency: ok\n");
    return 0;
}
