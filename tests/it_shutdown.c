/*
 * it_shutdown — an in-process server stops in order: every connection is
 * flushed and closed exactly once, with the right reason, and every fd is
 * given back; weft_post runs on the named worker's thread.
 *
 * Two rounds, each with a fresh server (port 0, 2 workers) and 200 client
 * connections, each echoing a short greeting first:
 *   - 20 clients close before the stop: on_close with WEFT_CLOSE_PEER;
 *   - 30 clients (small receive buffers) send data they do not read, so
 *     the server holds it as pending output when the stop comes (checked
 *     from the workers' own threads with weft_post);
 *   - the stop comes from another thread (round 1) or from a SIGUSR1
 *     handler raised in this thread (round 2).
 * Asserts: weft_server_wait returns 0; on_open ran once per connection and
 * on_close exactly once, on the owning worker's thread, with the record set
 * by weft_conn_set_userdata (userdata starts NULL); connections open at the
 * stop close with WEFT_CLOSE_SHUTDOWN; the 30 clients receive all their
 * pending echo and then EOF, and every other client sees EOF (no reset);
 * functions posted before the stop ran; weft_post after the stop returns
 * -ESHUTDOWN; the stats agree; this process's fd count is back to its
 * value before the server was created.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

#include "itlib.h"
#include "weft/weft.h"

#define NCONN    200
#define NEARLY   20 /* closed by the client before the stop */
#define NFLIGHT  30 /* output pending in the server at the stop */
#define GREETING 8
#define NWORKERS 2
#define MAXREC   1024

typedef struct rec {
    weft_conn *c;
    int worker;
    uint16_t port; /* the client's port */
    atomic_int closes;
    int reason;
} rec;

static rec g_recs[MAXREC];
static atomic_int g_nrec, g_opens, g_closes, g_cb_errors, g_late_posts;
static pthread_t g_wtid[NWORKERS];
static atomic_int g_wtid_set[NWORKERS];
static weft_server *g_srv;

#define CB_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "callback check failed at line %d: %s\n", __LINE__, #cond);            \
            atomic_fetch_add(&g_cb_errors, 1);                                                     \
        }                                                                                          \
    } while (0)

static void on_open(weft_conn *c)
{
    CB_CHECK(weft_conn_userdata(c) == NULL);
    int k = atomic_fetch_add(&g_nrec, 1);
    CB_CHECK(k < MAXREC);
    if (k >= MAXREC)
        return;
    rec *r = &g_recs[k];
    r->c = c;
    r->worker = weft_conn_worker(c);
    struct sockaddr_storage ss;
    CB_CHECK(weft_conn_peer(c, &ss) == sizeof(struct sockaddr_in));
    r->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    weft_conn_set_userdata(c, r);
    CB_CHECK(r->worker >= 0 && r->worker < NWORKERS);
    if (r->worker >= 0 && r->worker < NWORKERS) {
        if (atomic_load(&g_wtid_set[r->worker]) == 0) {
            g_wtid[r->worker] = pthread_self();
            atomic_store(&g_wtid_set[r->worker], 1);
        } else {
            CB_CHECK(pthread_equal(g_wtid[r->worker], pthread_self()));
        }
    }
    /* A small send buffer keeps echoed data inside the server (pending output). */
    int sz = 32 * 1024;
    setsockopt(weft_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    atomic_fetch_add(&g_opens, 1);
}

static void on_data(weft_conn *c, weft_ring *in)
{
    int rc = weft_send_from(c, in, weft_ring_len(in));
    CB_CHECK(rc >= 0);
}

static void on_close(weft_conn *c, weft_close_reason why)
{
    rec *r = weft_conn_userdata(c);
    CB_CHECK(r != NULL);
    if (!r)
        return;
    CB_CHECK(r->c == c);
    CB_CHECK(pthread_equal(g_wtid[r->worker], pthread_self()));
    int prev = atomic_fetch_add(&r->closes, 1);
    CB_CHECK(prev == 0);
    r->reason = (int)why;
    atomic_fetch_add(&g_closes, 1);
}

/* weft_post: where did it run, and how much output waits on that worker? */
typedef struct post_probe {
    pthread_t tid;
    int worker;
    size_t pending;
    atomic_int ran;
} post_probe;

static void probe(weft_server *s, int worker, void *arg)
{
    post_probe *p = arg;
    p->tid = pthread_self();
    p->worker = worker;
    p->pending = 0;
    int n = atomic_load(&g_nrec);
    for (int k = 0; k < n && k < MAXREC; k++) {
        rec *r = &g_recs[k];
        /* Only this worker's live connections may be touched here. */
        if (r->worker == worker && atomic_load(&r->closes) == 0)
            p->pending += weft_conn_pending_output(r->c);
    }
    atomic_store(&p->ran, 1);
}

static void late_post(weft_server *s, int worker, void *arg) { atomic_fetch_add(&g_late_posts, 1); }

static void *stopper(void *arg)
{
    weft_server_stop(arg);
    weft_server_stop(arg); /* idempotent */
    return NULL;
}

static void on_usr1(int sig) { weft_server_stop(g_srv); }

static uint16_t local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    IT_CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0, "getsockname");
    return ntohs(a.sin_port);
}

static rec *rec_for_port(uint16_t port)
{
    int n = atomic_load(&g_nrec);
    for (int k = 0; k < n; k++)
        if (g_recs[k].port == port)
            return &g_recs[k];
    return NULL;
}

static void round_trip(int fd, int i)
{
    char msg[GREETING + 1], got[GREETING];
    snprintf(msg, sizeof(msg), "hi-%04d", i);
    IT_CHECK(itl_write_all(fd, msg, GREETING, 10000) == 0, "client %d: write", i);
    int rc = itl_read_exact(fd, got, GREETING, 10000, NULL);
    IT_CHECK(rc == 0 && memcmp(msg, got, GREETING) == 0, "client %d: greeting echo: %s", i,
             strerror(-rc));
}

static void run_round(int by_signal, size_t flight)
{
    const char *how = by_signal ? "SIGUSR1 handler" : "another thread";
    memset(g_recs, 0, sizeof(g_recs));
    atomic_store(&g_nrec, 0);
    atomic_store(&g_opens, 0);
    atomic_store(&g_closes, 0);
    atomic_store(&g_late_posts, 0);
    for (int i = 0; i < NWORKERS; i++)
        atomic_store(&g_wtid_set[i], 0);
    int fds0 = itl_count_fds(getpid());

    weft_config cfg = weft_config_default();
    cfg.bind_addr = "127.0.0.1";
    cfg.port = 0;
    cfg.workers = NWORKERS;
    cfg.output_high_wm = 4u << 20; /* read every in-flight byte: it becomes pending output */
    cfg.output_low_wm = 1u << 20;
    cfg.output_cap = 16u << 20;
    cfg.shutdown_timeout_ms = 60000; /* the clients drain it; this only bounds a failure */
    cfg.log_level = WEFT_LOG_WARN;
    weft_handler h = {.on_open = on_open, .on_data = on_data, .on_close = on_close};
    weft_server *s;
    int rc = weft_server_new(&cfg, &h, NULL, &s);
    IT_CHECK(rc == 0, "weft_server_new: %s", weft_strerror(rc));
    g_srv = s;
    IT_CHECK(weft_server_workers(s) == NWORKERS, "workers");
    rc = weft_server_start(s);
    IT_CHECK(rc == 0, "weft_server_start: %s", weft_strerror(rc));
    uint16_t port = weft_server_port(s);

    int fds[NCONN];
    uint16_t ports[NCONN];
    for (int i = 0; i < NCONN; i++) {
        fds[i] = itl_connect("127.0.0.1", port, 10000, i < NFLIGHT ? 8192 : 0);
        IT_CHECK(fds[i] >= 0, "connect %d: %s", i, strerror(-fds[i]));
        ports[i] = local_port(fds[i]);
        round_trip(fds[i], i);
    }
    IT_CHECK(atomic_load(&g_opens) == NCONN, "%d on_open for %d connections", atomic_load(&g_opens),
             NCONN);
    for (int i = 0; i < NWORKERS; i++)
        IT_CHECK(atomic_load(&g_wtid_set[i]), "worker %d got no connection", i);

    /* Early closes: the peer's EOF. */
    for (int i = NCONN - NEARLY; i < NCONN; i++)
        close(fds[i]);
    int64_t deadline = itl_now_ms() + 10000;
    while (atomic_load(&g_closes) < NEARLY && itl_now_ms() < deadline)
        itl_sleep_ms(5);
    IT_CHECK(atomic_load(&g_closes) == NEARLY, "%d on_close after %d peers closed",
             atomic_load(&g_closes), NEARLY);

    /* In flight: the server reads it all and holds the echo as pending output. */
    char *out = malloc(flight);
    IT_CHECK(out, "out of memory");
    for (int i = 0; i < NFLIGHT; i++) {
        itl_stream st;
        itl_stream_init(&st, 1000 + (uint64_t)i);
        itl_stream_fill(&st, out, flight);
        rc = itl_write_all(fds[i], out, flight, 20000);
        IT_CHECK(rc == 0, "client %d: in-flight write: %s", i, strerror(-rc));
    }
    uint64_t want_in = (uint64_t)NCONN * GREETING + (uint64_t)NFLIGHT * flight;
    weft_stats st;
    deadline = itl_now_ms() + 20000;
    do {
        weft_server_stats(s, &st);
    } while (st.bytes_in < want_in && itl_now_ms() < deadline && (itl_sleep_ms(5), 1));
    IT_CHECK(st.bytes_in == want_in, "server read %llu bytes, want %llu",
             (unsigned long long)st.bytes_in, (unsigned long long)want_in);

    /* weft_post runs on the worker's own thread. */
    size_t pending = 0;
    for (int i = 0; i < NWORKERS; i++) {
        post_probe p;
        memset(&p, 0, sizeof(p));
        rc = weft_post(s, i, probe, &p);
        IT_CHECK(rc == 0, "weft_post(%d): %s", i, weft_strerror(rc));
        deadline = itl_now_ms() + 10000;
        while (!atomic_load(&p.ran) && itl_now_ms() < deadline)
            itl_sleep_ms(1);
        IT_CHECK(atomic_load(&p.ran), "posted function did not run on worker %d", i);
        IT_CHECK(p.worker == i, "posted to worker %d, ran as worker %d", i, p.worker);
        IT_CHECK(pthread_equal(p.tid, g_wtid[i]),
                 "posted to worker %d: ran on a thread other than its connections'", i);
        IT_CHECK(!pthread_equal(p.tid, pthread_self()), "posted function ran on the caller");
        pending += p.pending;
    }
    IT_CHECK(!pthread_equal(g_wtid[0], g_wtid[1]), "both workers on one thread");
    IT_CHECK(pending > 0, "no output pending in the server before the stop");
    IT_CHECK(weft_post(s, NWORKERS, late_post, NULL) == -EINVAL, "weft_post to a bad worker");
    for (int i = 0; i < NWORKERS; i++)
        IT_CHECK(weft_post(s, i, late_post, NULL) == 0, "late weft_post(%d)", i);

    /* Stop. */
    pthread_t tid;
    if (by_signal) {
        IT_CHECK(raise(SIGUSR1) == 0, "raise");
    } else {
        IT_CHECK(pthread_create(&tid, NULL, stopper, s) == 0, "pthread_create");
    }

    /* The in-flight clients get all their echo, then EOF; the rest EOF. */
    char *in = malloc(flight);
    IT_CHECK(in, "out of memory");
    for (int i = 0; i < NFLIGHT; i++) {
        size_t got = 0;
        rc = itl_read_exact(fds[i], in, flight, 30000, &got);
        IT_CHECK(rc == 0, "client %d: %zu of %zu pending bytes arrived after the stop: %s", i, got,
                 flight, rc == -EPIPE ? "EOF" : strerror(-rc));
        itl_stream vs;
        itl_stream_init(&vs, 1000 + (uint64_t)i);
        IT_CHECK(itl_stream_verify(&vs, in, flight) < 0, "client %d: echo differs", i);
    }
    for (int i = 0; i < NCONN - NEARLY; i++) {
        rc = itl_expect_eof(fds[i], 30000);
        IT_CHECK(rc == 0, "client %d: %s instead of EOF after the stop", i,
                 rc == -EPROTO ? "data" : strerror(-rc));
    }
    rc = weft_server_wait(s);
    IT_CHECK(rc == 0, "weft_server_wait: %s", weft_strerror(rc));
    if (!by_signal)
        pthread_join(tid, NULL);

    IT_CHECK(atomic_load(&g_cb_errors) == 0, "%d checks failed in callbacks",
             atomic_load(&g_cb_errors));
    IT_CHECK(atomic_load(&g_opens) == NCONN, "%d on_open", atomic_load(&g_opens));
    IT_CHECK(atomic_load(&g_closes) == NCONN, "%d on_close for %d on_open", atomic_load(&g_closes),
             NCONN);
    IT_CHECK(atomic_load(&g_nrec) == NCONN, "%d records", atomic_load(&g_nrec));
    for (int i = 0; i < NCONN; i++) {
        rec *r = rec_for_port(ports[i]);
        IT_CHECK(r, "client %d: the server never opened its connection", i);
        IT_CHECK(atomic_load(&r->closes) == 1, "client %d: on_close ran %d times", i,
                 atomic_load(&r->closes));
        int want = i >= NCONN - NEARLY ? WEFT_CLOSE_PEER : WEFT_CLOSE_SHUTDOWN;
        IT_CHECK(r->reason == want, "client %d: closed for '%s', want '%s'", i,
                 weft_close_reason_name(r->reason), weft_close_reason_name(want));
    }
    IT_CHECK(atomic_load(&g_late_posts) == NWORKERS,
             "%d of %d functions posted before the stop ran", atomic_load(&g_late_posts), NWORKERS);
    IT_CHECK(weft_post(s, 0, late_post, NULL) == -ESHUTDOWN, "weft_post after the stop");
    weft_server_stats(s, &st);
    IT_CHECK(st.accepted == NCONN && st.opened == NCONN && st.closed == NCONN && st.open == 0,
             "stats: accepted %llu opened %llu closed %llu open %llu",
             (unsigned long long)st.accepted, (unsigned long long)st.opened,
             (unsigned long long)st.closed, (unsigned long long)st.open);
    IT_CHECK(st.closed_by[WEFT_CLOSE_SHUTDOWN] == NCONN - NEARLY &&
                 st.closed_by[WEFT_CLOSE_PEER] == NEARLY,
             "stats: closed_by shutdown %llu peer %llu",
             (unsigned long long)st.closed_by[WEFT_CLOSE_SHUTDOWN],
             (unsigned long long)st.closed_by[WEFT_CLOSE_PEER]);
    IT_CHECK(st.bytes_out == want_in, "stats: %llu bytes out, %llu in",
             (unsigned long long)st.bytes_out, (unsigned long long)want_in);

    for (int i = 0; i < NCONN - NEARLY; i++)
        close(fds[i]);
    weft_server_free(s);
    g_srv = NULL;
    int fds1 = itl_count_fds(getpid());
    IT_CHECK(fds1 == fds0, "this process holds %d fds after the server was freed, %d before", fds1,
             fds0);
    free(out);
    free(in);
    printf("stop from %s: %d connections, %zu bytes pending at the stop, all flushed; "
           "on_close once each; fds back\n",
           how, NCONN, pending);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    itl_raise_nofile();
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    IT_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
    run_round(0, 1u << 20);
    run_round(1, 256u << 10);
    printf("PASS\n");
    return 0;
}
