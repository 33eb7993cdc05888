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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

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

/* ---- the program ------------------------------------------------------------ */

/* weft-kv's defaults: weft's, with Redis's port neighbour and limits. */
static void kv_defaults(weft_config *c, void *ud)
{
    (void)ud;
    c->port = 6380;
    /*
     * Values up to tens of MiB must fit in one command: 64 MiB of input per
     * connection (weft's default of 1 MiB would refuse a 1 MiB SET). The
     * ring only grows that far for a connection that sends such a command.
     */
    c->input_cap = 64u << 20;
    c->output_cap = 0; /* 0 here: twice input_cap, decided in kv_configure */
    c->output_high_wm = 262144;
    c->idle_timeout_ms = 0; /* like Redis's "timeout 0" */
}

static int kv_option(weft_config *cfg, const char *name, const char *arg, const char **why,
                     void *ud)
{
    (void)cfg;
    kv_app *app = ud;
    long long v;
    int sweep_ms = strcmp(name, "sweep-interval") == 0;
    if (weft_parse_number(arg, sweep_ms ? 0 : 1, sweep_ms ? 3600000 : 1000000, &v) != 0) {
        *why = sweep_ms ? "expected a number from 0 to 3600000"
                        : "expected a number from 1 to 1000000";
        return -EINVAL;
    }
    if (sweep_ms)
        app->sweep_ms = (uint32_t)v;
    else
        app->sweep_keys = (uint32_t)v;
    return 0;
}

/* Replies may be twice the largest command unless --output-cap says otherwise. */
static int kv_configure(weft_config *cfg, const char **why, void *ud)
{
    (void)why;
    kv_app *app = ud;
    if (cfg->output_cap == 0) {
        uint64_t oc = 2ull * cfg->input_cap;
        cfg->output_cap = oc > (1u << 30) ? (1u << 30) : (uint32_t)oc;
        if (cfg->output_cap < cfg->output_high_wm)
            cfg->output_cap = cfg->output_high_wm;
    }
    app->input_cap = cfg->input_cap;
    return 0;
}

/* The keyspace, the per-worker state, the counters and each worker's sweep. */
static int kv_setup(weft_server *s, void *ud)
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
    kv_app *app = ud;
    app->srv = s;
    int rc = kvs_new(&app->ks);
    if (rc != 0)
        return rc;
    int n = weft_server_workers(s);
    app->workers = calloc((size_t)n, sizeof(*app->workers));
    if (!app->workers)
        return -ENOMEM;
    for (int i = 0; i < KV_NCTR; i++) {
        int id = weft_server_add_counter(s, names[i][0], names[i][1]);
        app->ctr[i] = id >= 0 ? id : -1;
    }
    app->start_ns = weft_now_ns();
    for (int i = 0; i < n; i++) {
        app->workers[i].app = app;
        app->workers[i].index = i;
        /* Runs once the worker starts. */
        if (weft_post(s, i, kv_worker_start, &app->workers[i]) != 0)
            fprintf(stderr, "weft-kv: worker %d: no expiry sweep\n", i);
    }
    return 0;
}

static void kv_teardown(weft_server *s, void *ud)
{
    (void)s;
    kv_app *app = ud;
    if (app->ks) {
        /* Every worker has exited (and left RCU): free every node, then the table. */
        kvs_thread_online();
        uint64_t keys = kvs_count(app->ks);
        kvs_free(app->ks);
        kvs_thread_offline();
        printf("weft-kv: keyspace freed: %llu keys freed\n", (unsigned long long)keys);
    }
    free(app->workers);
}

static const weft_program_option kv_options[] = {
    {"sweep-interval", "MS",
     "how often each worker looks for expired keys\n"
     "(default 100; 0: only when read)"},
    {"sweep-keys", "N", "keys each worker looks at per sweep (default 200)"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    static kv_app app = {.sweep_ms = 100, .sweep_keys = 200};
    static const weft_handler h = {.on_open = kv_open, .on_data = kv_data, .on_close = kv_close};
    const weft_program prog = {
        .name = "weft-kv",
        .version = KV_VERSION,
        .summary =
            "A Redis-protocol (RESP2) key-value server built on weft: GET, SET (NX, XX, EX,\n"
            "PX, EXAT, PXAT, KEEPTTL), MGET, MSET, DEL, EXISTS, INCR, DECR, INCRBY, DECRBY,\n"
            "TTL, PTTL, PING, ECHO and the connection commands redis-cli and\n"
            "redis-benchmark use. One keyspace, shared by every worker; nothing is\n"
            "persisted. --input-cap is the largest command plus one (default 64M here): a\n"
            "larger one gets an error reply and a close; replies may take twice that\n"
            "unless --output-cap says otherwise.",
        .try_hint = "redis-cli -h %s -p %u ping",
        .handler = &h,
        .options = kv_options,
        .ud = &app,
        .defaults = kv_defaults,
        .option = kv_option,
        .configure = kv_configure,
        .setup = kv_setup,
        .teardown = kv_teardown,
    };
    return weft_main(argc, argv, &prog);
}
