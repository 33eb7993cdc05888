/*
 * weft-kv — a Redis-protocol (RESP2) key-value server on weft's public API.
 *
 * Every worker serves any key: the keyspace is one liburcu lock-free hash
 * table shared by all of them (keyspace.c), so a SET on one connection is
 * seen at once by a GET on any other, whichever worker owns it. Replies to
 * pipelined commands are queued in order and written with one send(2) per
 * connection per worker turn.
 *
 * This file: options, the handler callbacks, and the per-worker expiry
 * sweep. resp.c parses requests; commands.c runs them; clients.c lists them.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kv.h"

static weft_server *g_server;

static void on_signal(int sig)
{
    (void)sig;
    if (g_server)
        weft_server_stop(g_server);
}

/* ---- connections --------------------------------------------------------- */

static kv_app *app_of(weft_conn *c) { return weft_server_userdata(weft_conn_server(c)); }

void kv_conn_free(kv_conn *k)
{
    kv_clients_unlink(k->w, k);
    resp_free(&k->p);
    free(k);
}

static void kv_open(weft_conn *c)
{
    kvs_thread_online();
    kv_app *app = app_of(c);
    kv_conn *k = malloc(sizeof(*k));
    if (!k) {
        kv_count(c, app, KV_CTR_CLOSED_NOMEM, 1);
        weft_abort(c);
        return;
    }
    /*
     * A command may span at most input_cap - 1 bytes: the parser refuses a
     * longer one with an error reply before weft's input cap would close
     * the connection without one.
     */
    resp_limits lim = resp_limits_default((size_t)app->input_cap - 1);
    resp_init(&k->p, &lim);
    k->app = app;
    kv_worker *w = &app->workers[weft_conn_worker(c)];
    /* Unique without a shared counter: worker i hands out i, i+N, i+2N ... */
    k->id = ++w->next_id * (uint64_t)weft_server_workers(app->srv) + (uint64_t)w->index;
    k->w = w;
    k->c = c;
    k->since_ms = k->last_ms = kvs_now_ms();
    k->last_cmd = NULL;
    k->waiting = k->busy = k->closed = 0;
    k->name_len = 0;
    kv_clients_link(w, k);
    weft_conn_set_userdata(c, k);
}

void kv_count(weft_conn *c, const kv_app *app, int which, uint64_t n)
{
    if (app->ctr[which] >= 0)
        weft_counter_add(c, app->ctr[which], n);
}

static int close_counter(resp_err_kind kind)
{
    return kind == RESP_E_LIMIT   ? KV_CTR_CLOSED_LIMIT
           : kind == RESP_E_NOMEM ? KV_CTR_CLOSED_NOMEM
                                  : KV_CTR_CLOSED_PROTOCOL;
}

/*
 * Answer every complete command in the input, in order; leave a partial one
 * in the ring (the parser remembers how far it got, so it is not parsed
 * again from the start when more arrives).
 *
 * A close can happen under our feet: a reply over the output cap, or
 * weft_close with nothing left to flush, runs on_close at once and takes the
 * input ring away. After that neither `in` nor the parser's argv may be
 * touched; k->closed says so, and k itself stays valid until we return.
 */
static void kv_data(weft_conn *c, weft_ring *in)
{
    kv_conn *k = weft_conn_userdata(c);
    if (!k || k->waiting)
        return; /* a CLIENT LIST is out: its answer resumes us (clients.c) */
    kv_ctx x = {.app = k->app, .c = c, .k = k, .now = kvs_now_ms()};
    k->busy = 1;
    for (;;) {
        struct iovec iov[2];
        int nseg = weft_ring_peek(in, iov);
        resp_src src = {{NULL, NULL}, {0, 0}};
        for (int i = 0; i < nseg; i++) {
            src.seg[i] = iov[i].iov_base;
            src.len[i] = iov[i].iov_len;
        }
        int r = resp_parse(&k->p, &src);
        if (r == RESP_NEED)
            break;
        if (r == RESP_ERR) {
            kv_count(c, k->app, close_counter(k->p.err_kind), 1);
            kv_reply_error(&x, k->p.err);
            if (!k->closed) {
                weft_ring_consume(in, weft_ring_len(in)); /* the framing is lost */
                weft_close(c);
            }
            break;
        }
        if (k->p.argc > 0)
            kv_execute(&x, k->p.argc, k->p.argv);
        if (k->closed)
            break;
        weft_ring_consume(in, k->p.used);
        resp_next(&k->p);
        if (x.quit) {
            weft_ring_consume(in, weft_ring_len(in));
            weft_close(c);
            break;
        }
        if (k->waiting)
            break; /* the replies keep their order: the rest waits in the ring */
    }
    k->busy = 0;
    if (k->closed) {
        weft_conn_set_userdata(c, NULL);
        kv_conn_free(k);
    }
}

static void kv_close(weft_conn *c, weft_close_reason why)
{
    kv_conn *k = weft_conn_userdata(c);
    if (!k)
        return;
    if (k->busy) {
        k->closed = 1; /* kv_data frees it when it returns */
        return;
    }
    weft_conn_set_userdata(c, NULL);
    kv_conn_free(k);
}

/* ---- the expiry sweep ---------------------------------------------------- */

/*
 * Expired keys nobody reads again would stay forever with lazy expiry
 * alone. Each worker looks at sweep_keys keys every sweep_ms, going round
 * the table from where it stopped (Redis's active expiry does the same
 * with random samples), so the work per turn stays small and bounded.
 */
static void kv_sweep(weft_timer *t, void *arg)
{
    kv_worker *w = arg;
    size_t n = kvs_sweep(w->app->ks, &w->cursor, w->app->sweep_keys, kvs_now_ms());
    if (n && w->app->ctr[KV_CTR_EXPIRED] >= 0)
        weft_worker_counter_add(w->app->srv, w->index, w->app->ctr[KV_CTR_EXPIRED], n);
}

/* Posted to each worker at start: its RCU registration and its sweep timer. */
static void kv_worker_start(weft_server *s, int worker, void *arg)
{
    kv_worker *w = arg;
    kvs_thread_online();
    if (w->app->sweep_ms &&
        !weft_worker_timer(s, worker, w->app->sweep_ms, w->app->sweep_ms, kv_sweep, w))
        fprintf(stderr,
                "weft-kv: worker %d: no expiry sweep (out of memory); expired keys "
                "are still removed when read\n",
                worker);
}

/* ---- options --------------------------------------------------------------- */

static void usage(FILE *f, const weft_config *d)
{
    fprintf(f,
            "usage: weft-kv [options]\n"
            "\n"
            "A Redis-protocol (RESP2) key-value server built on weft: GET, SET (NX, XX, EX,\n"
            "PX, EXAT, PXAT, KEEPTTL), MGET, MSET, DEL, EXISTS, INCR, DECR, INCRBY, DECRBY,\n"
            "TTL, PTTL, PING, ECHO and the connection commands redis-cli and redis-benchmark\n"
            "use. One keyspace, shared by every worker. Nothing is persisted. Stops cleanly\n"
            "on SIGINT or SIGTERM.\n"
            "\n"
            "  --bind ADDR             IPv4 or IPv6 address to listen on (default %s)\n"
            "  --port N                TCP port (default %u; 0 picks a free one)\n"
            "  --backlog N             listen backlog (default %d)\n"
            "  --workers N             worker threads (default: one per CPU)\n"
            "  --cpus LIST             CPUs to pin workers to, e.g. 0-3,8\n"
            "  --no-pin                do not pin workers to CPUs\n"
            "  --max-conns N           connections open at once (default: from the fd\n"
            "                          limit)\n"
            "  --ring-size BYTES       initial ring capacity, power of two (default %u)\n"
            "  --read-budget BYTES     bytes read per connection per turn (default %u)\n"
            "  --output-high-wm BYTES  pause reading above this much output (default %u)\n"
            "  --output-low-wm BYTES   resume reading below this (default %u)\n"
            "  --input-cap BYTES       the largest command, in bytes, plus one (default %u);\n"
            "                          a larger one gets an error reply and a close\n"
            "  --output-cap BYTES      pending replies beyond this close the connection\n"
            "                          (default: twice --input-cap)\n"
            "  --pool-cache BYTES      ring memory kept per worker for reuse (default %u)\n"
            "  --shutdown-timeout MS   how long a stop waits for output (default %u)\n"
            "  --idle-timeout MS       close a connection idle this long (default %u:\n"
            "                          never, like Redis's 'timeout 0')\n"
            "  --input-stall MS        close when a partial command got no byte for this\n"
            "                          long (default %u; 0 = never)\n"
            "  --output-stall MS       close when the peer took no reply byte for this\n"
            "                          long (default %u; 0 = never)\n"
            "  --close-linger MS       after a close, discard input this long (default %u)\n"
            "  --stats-interval MS     stats sampling period (default %u; 0 = off)\n"
            "  --stats-socket PATH     admin Unix socket (default /tmp/weft-PORT.sock)\n"
            "  --metrics-port N        serve Prometheus GET /metrics on this port (off)\n"
            "  --metrics-bind ADDR     address of the metrics listener (default %s)\n"
            "  --sweep-interval MS     how often each worker looks for expired keys\n"
            "                          (default 100; 0 = only when read)\n"
            "  --sweep-keys N          keys each worker looks at per sweep (default 200)\n"
            "  -q, --quiet             log errors and warnings only\n"
            "  -v, --verbose           log debug lines too\n"
            "  -h, --help              this text\n"
            "  -V, --version           print the version\n"
            "Every server option of weft-echo --help is accepted too (weft_config_options).\n"
            "\n"
            "BYTES accept a K, M or G suffix (powers of 1024).\n",
            d->bind_addr, d->port, d->backlog, d->ring_size, d->read_budget, d->output_high_wm,
            d->output_low_wm, d->input_cap, d->pool_cache_bytes, d->shutdown_timeout_ms,
            d->idle_timeout_ms, d->input_stall_ms, d->output_stall_ms, d->close_linger_ms,
            d->stats_interval_ms, d->metrics_bind);
}

/* weft-kv's defaults: weft's, with Redis's port neighbour and limits. */
static weft_config kv_config_default(void)
{
    weft_config c = weft_config_default();
    c.port = 6380;
    /*
     * Values up to tens of MiB must fit in one command: 64 MiB of input per
     * connection (weft's default of 1 MiB would refuse a 1 MiB SET). The
     * ring only grows that far for a connection that sends such a command.
     */
    c.input_cap = 64u << 20;
    c.output_cap = 0; /* 0 here: twice input_cap, decided after the options */
    c.idle_timeout_ms = 0;
    return c;
}

static int fail_arg(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "weft-kv: --%s '%s': %s (see --help)\n", opt, val, why);
    return 2;
}

enum { O_SWEEPMS = 1000, O_SWEEPKEYS };

static int parse_args(int argc, char **argv, weft_config *cfg, kv_app *app)
{
    /* The server options come from the library (weft_config_options), then ours. */
    static const struct option own[] = {
        {"sweep-interval", required_argument, 0, O_SWEEPMS},
        {"sweep-keys", required_argument, 0, O_SWEEPKEYS},
        {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    size_t n;
    const weft_option *lib = weft_config_options(&n);
    struct option opts[n + sizeof(own) / sizeof(own[0])];
    for (size_t i = 0; i < n; i++)
        opts[i] = (struct option){lib[i].name, lib[i].has_arg, 0, 256 + (int)i};
    memcpy(opts + n, own, sizeof(own));
    weft_config defaults = *cfg;
    int o, idx = -1;
    long long v;
    const char *why;
    while ((o = getopt_long(argc, argv, "qvhV", opts, &idx)) != -1) {
        const char *name = idx >= 0 && o >= 256 ? opts[idx].name : "";
        const char *a = optarg;
        if (o >= 256 && o < 256 + (int)n) {
            if (weft_config_option(cfg, lib[o - 256].name, a, &why) != 0)
                return fail_arg(lib[o - 256].name, a, why);
            idx = -1;
            continue;
        }
#define NUM(lo, hi, dst)                                                                           \
    do {                                                                                           \
        if (weft_parse_number(a, (lo), (hi), &v) != 0)                                             \
            return fail_arg(name, a, "expected a number from " #lo " to " #hi);                    \
        dst = v;                                                                                   \
    } while (0)
        switch (o) {
        case O_SWEEPMS:
            NUM(0, 3600000, app->sweep_ms);
            break;
        case O_SWEEPKEYS:
            NUM(1, 1000000, app->sweep_keys);
            break;
        case 'q':
            cfg->log_level = WEFT_LOG_WARN;
            break;
        case 'v':
            cfg->log_level = WEFT_LOG_DEBUG;
            break;
        case 'h':
            usage(stdout, &defaults);
            return 1;
        case 'V':
            printf("weft-kv %s (weft %s)\n", KV_VERSION, WEFT_VERSION);
            return 1;
        default:
            usage(stderr, &defaults);
            return 2;
        }
#undef NUM
        idx = -1;
    }
    if (optind < argc) {
        fprintf(stderr, "weft-kv: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (cfg->output_cap == 0) {
        uint64_t oc = 2ull * cfg->input_cap;
        cfg->output_cap = oc > (1u << 30) ? (1u << 30) : (uint32_t)oc;
        if (cfg->output_cap < cfg->output_high_wm)
            cfg->output_cap = cfg->output_high_wm;
    }
    if (weft_config_validate(cfg, &why) != 0) {
        fprintf(stderr, "weft-kv: invalid configuration: %s\n", why);
        return 2;
    }
    return 0;
}

/* Raise the soft fd limit to the hard one: many clients need many fds. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void add_counters(kv_app *app)
{
    static const char *const names[KV_NCTR][2] = {
        [KV_CTR_COMMANDS] = {"commands", "Commands processed"},
        [KV_CTR_HITS] = {"keyspace_hits", "Reads that found their key"},
        [KV_CTR_MISSES] = {"keyspace_misses", "Reads that did not find their key"},
        [KV_CTR_EXPIRED] = {"expired_keys", "Keys removed by the expiry sweep"},
        [KV_CTR_CLOSED_PROTOCOL] = {"closed_protocol",
                                    "Connections closed after a malformed request"},
        [KV_CTR_CLOSED_LIMIT] = {"closed_limit",
                                 "Connections closed after a request over a parser limit"},
        [KV_CTR_CLOSED_NOMEM] = {"closed_nomem", "Connections closed because an allocation failed"},
    };
    for (int i = 0; i < KV_NCTR; i++) {
        int id = weft_server_add_counter(app->srv, names[i][0], names[i][1]);
        app->ctr[i] = id >= 0 ? id : -1;
    }
}

int main(int argc, char **argv)
{
    weft_config cfg = kv_config_default();
    kv_app app = {.sweep_ms = 100, .sweep_keys = 200};
    int rc = parse_args(argc, argv, &cfg, &app);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_nofile();
    app.input_cap = cfg.input_cap;

    rc = kvs_new(&app.ks);
    if (rc != 0) {
        fprintf(stderr, "weft-kv: cannot create the keyspace: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_handler h = {.on_open = kv_open, .on_data = kv_data, .on_close = kv_close};
    rc = weft_server_new(&cfg, &h, &app, &app.srv);
    if (rc != 0) {
        fprintf(stderr, "weft-kv: cannot start on %s port %u: %s\n", cfg.bind_addr, cfg.port,
                weft_strerror(rc));
        kvs_free(app.ks);
        return 1;
    }
    weft_server *s = app.srv;
    int n = weft_server_workers(s);
    app.workers = calloc((size_t)n, sizeof(*app.workers));
    if (!app.workers) {
        fprintf(stderr, "weft-kv: out of memory\n");
        weft_server_free(s);
        kvs_free(app.ks);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        app.workers[i].app = &app;
        app.workers[i].index = i;
    }
    add_counters(&app);
    app.start_ns = weft_now_ns();

    g_server = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = weft_server_start(s);
    if (rc != 0) {
        fprintf(stderr, "weft-kv: cannot start: %s\n", weft_strerror(rc));
        weft_server_free(s);
        kvs_free(app.ks);
        free(app.workers);
        return 1;
    }
    for (int i = 0; i < n; i++)
        if (weft_post(s, i, kv_worker_start, &app.workers[i]) != 0)
            fprintf(stderr, "weft-kv: worker %d: no expiry sweep\n", i);

    const char *b = cfg.bind_addr;
    int v6 = strchr(b, ':') != NULL;
    printf("weft-kv %s: listening on %s%s%s:%u, %d worker%s, input cap %u bytes\n", KV_VERSION,
           v6 ? "[" : "", b, v6 ? "]" : "", weft_server_port(s), n, n == 1 ? "" : "s",
           cfg.input_cap);
    printf("weft-kv: try: redis-cli -p %u ping   (Ctrl-C or SIGTERM stops)\n", weft_server_port(s));

    rc = weft_server_wait(s);
    weft_stats st;
    weft_server_stats(s, &st);
    /* Every worker has exited (and left RCU): free every node, then the table. */
    kvs_thread_online();
    uint64_t keys = kvs_count(app.ks);
    kvs_free(app.ks);
    kvs_thread_offline();
    printf("weft-kv: stopped: %llu connections, %llu keys freed\n", (unsigned long long)st.accepted,
           (unsigned long long)keys);
    weft_server_free(s);
    free(app.workers);
    if (rc != 0) {
        fprintf(stderr, "weft-kv: %s\n", weft_strerror(rc));
        return 1;
    }
    return 0;
}
