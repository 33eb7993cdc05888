/*
 * stats/render.c — a snapshot as text, JSON, a worker table or Prometheus
 * exposition format. Every metric and its unit are listed in docs/stats.md.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/process.h"
#include "weft/weft.h"

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap + (size_t)n + 1) * 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

/* A counter of weft_stats with its export name, help and type. */
typedef struct field {
    const char *name, *help;
    size_t off;
    int gauge;
    int server_wide; /* the acceptor's or the stats thread's: no worker label */
} field;

#define F(n, h)                                                                                    \
    {                                                                                              \
#n, h, offsetof(weft_stats, n), 0, 0                                                       \
    }
#define S(n, h)                                                                                    \
    {                                                                                              \
#n, h, offsetof(weft_stats, n), 0, 1                                                       \
    }
#define G(n, h)                                                                                    \
    {                                                                                              \
#n, h, offsetof(weft_stats, n), 1, 0                                                       \
    }
static const field fields[] = {
    S(accepted, "Connections accepted and handed to a worker."),
    S(rejected_max, "Connections closed at accept: over max_conns."),
    S(rejected_worker_cap, "Connections closed at accept: every worker at its cap."),
    S(accept_emfile, "EMFILE/ENFILE episodes at the acceptor."),
    S(accept_shed, "Connections dropped while out of file descriptors."),
    S(accept_errors, "Other accept errors."),
    S(admin_rejected, "Admin socket clients refused at accept: every slot busy, or no fd."),
    S(admin_timeouts, "Admin socket clients closed by the stall or idle limit."),
    S(admin_emfile, "EMFILE/ENFILE on the admin socket's accept."),
    S(metrics_rejected, "Metrics clients answered 503 at accept: every slot busy, or no fd."),
    S(metrics_timeouts, "Metrics clients closed: head not in within the timeout, or stalled."),
    S(metrics_emfile, "EMFILE/ENFILE on the metrics listener's accept."),
    F(opened, "Connections opened on workers."),
    F(closed, "Connections closed (accepted and outbound)."),
    G(open, "Connections open now."),
    F(bytes_in, "Bytes read from connections."),
    F(bytes_out, "Bytes written to connections."),
    F(reads, "read(2)/readv(2) calls on connections."),
    F(writes, "send(2)/sendmsg(2) calls on connections."),
    F(eagain, "Reads or writes that returned EAGAIN."),
    F(wakeups, "Returns from the I/O backend's wait (epoll_wait, poll, ...)."),
    F(events, "Events the I/O backend's waits reported."),
    F(deferrals, "Connections continued next turn: read budget used up."),
    F(bp_pauses, "Backpressure: reading paused over the output high watermark."),
    F(bp_resumes, "Backpressure: reading resumed below the low watermark."),
    F(pool_pauses, "Reads paused: the worker's ring memory reached pool_max_bytes."),
    F(rings_borrowed, "Ring buffers borrowed from the pools."),
    F(rings_returned, "Ring buffers returned to the pools."),
    G(rings_in_use, "Ring buffers held by connections now."),
    F(ring_allocs, "Ring buffers allocated (pool misses and growth)."),
    G(pool_bytes, "Bytes of ring memory held by the pools (cached and in use)."),
    F(handoffs, "Inbox messages consumed by workers."),
    F(outbound, "Outbound connections opened by handlers (weft_connect)."),
    F(connects, "Outbound connections that connected."),
    F(tls_handshakes, "TLS handshakes completed."),
    F(tls_resumed, "TLS handshakes that resumed a session."),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static uint64_t val(const weft_stats *st, const field *f)
{
    return *(const uint64_t *)((const char *)st + f->off);
}

/* s as a JSON string (quotes, backslashes and control bytes escaped). */
static void put_json_str(sbuf *b, const char *s)
{
    put(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(b, "\\%c", c);
        else if (c < 0x20)
            put(b, "\\u%04x", c);
        else
            put(b, "%c", c);
    }
    put(b, "\"");
}

/* s as a Prometheus label value (backslash, quote and newline escaped). */
static void put_label(sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            put(b, "\\%c", *s);
        else if (*s == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *s);
    }
}

/* The counters of a listener row, in the order every format lists them. */
static const struct {
    const char *name, *help;
    size_t off;
} lfields[] = {
    {"accepted", "Connections accepted through the listener.",
     offsetof(weft_listener_snapshot, accepted)},
    {"open", "Connections of the listener open now.", offsetof(weft_listener_snapshot, open)},
    {"rejected_max", "Closed at accept: the listener's max-conns.",
     offsetof(weft_listener_snapshot, rejected_max)},
    {"rejected_rate", "Closed at accept: over the listener's accept rate.",
     offsetof(weft_listener_snapshot, rejected_rate)},
    {"rejected_source", "Closed at accept: over per-source for their address.",
     offsetof(weft_listener_snapshot, rejected_source)},
};
#define NLFIELDS (sizeof(lfields) / sizeof(lfields[0]))

static uint64_t lval(const weft_listener_snapshot *l, size_t k)
{
    return *(const uint64_t *)((const char *)l + lfields[k].off);
}

static void text(sbuf *b, const weft_snapshot *s)
{
    put(b, "seq %llu\nuptime_seconds %.3f\nworkers %d\nio %s\n", (unsigned long long)s->seq,
        s->uptime_s, s->nworkers, s->io ? s->io : "unknown");
    for (size_t i = 0; i < NFIELDS; i++)
        put(b, "%s %llu\n", fields[i].name, (unsigned long long)val(&s->total, &fields[i]));
    for (int r = 0; r < WEFT_CLOSE_REASONS; r++)
        put(b, "closed_%s %llu\n", weft_close_reason_name((weft_close_reason)r),
            (unsigned long long)s->total.closed_by[r]);
    for (int k = 0; k < WEFT_CONN_STATES; k++)
        put(b, "conns_%s %llu\n", weft_conn_state_name((weft_conn_state)k),
            (unsigned long long)s->total.conns_by_state[k]);
    const weft_rates *r = &s->rate;
    put(b,
        "accepted_per_second %.1f\nclosed_per_second %.1f\nbytes_in_per_second %.1f\n"
        "bytes_out_per_second %.1f\nreads_per_second %.1f\nwrites_per_second %.1f\n"
        "wakeups_per_second %.1f\nevents_per_second %.1f\n",
        r->accepted, r->closed, r->bytes_in, r->bytes_out, r->reads, r->writes, r->wakeups,
        r->events);
    const weft_latency *l[2] = {&s->turn, &s->handler};
    const char *ln[2] = {"turn", "handler"};
    for (int i = 0; i < 2; i++)
        put(b,
            "%s_latency_count %llu\n%s_latency_p50_ns %llu\n%s_latency_p90_ns %llu\n"
            "%s_latency_p99_ns %llu\n%s_latency_p999_ns %llu\n%s_latency_max_ns %llu\n",
            ln[i], (unsigned long long)l[i]->count, ln[i], (unsigned long long)l[i]->p50, ln[i],
            (unsigned long long)l[i]->p90, ln[i], (unsigned long long)l[i]->p99, ln[i],
            (unsigned long long)l[i]->p999, ln[i], (unsigned long long)l[i]->max);
    for (int k = 0; k < s->ncounters; k++)
        put(b, "user_%s %llu\n", s->counter_names[k], (unsigned long long)s->counters[k]);
    put(b, "listeners %d\n", s->nlisteners);
    for (int i = 0; i < s->nlisteners; i++) {
        const weft_listener_snapshot *ls = &s->listeners[i];
        put(b, "listener_%d_name %s\nlistener_%d_addr %s\n", i, ls->name, i, ls->addr);
        for (size_t k = 0; k < NLFIELDS; k++)
            put(b, "listener_%d_%s %llu\n", i, lfields[k].name, (unsigned long long)lval(ls, k));
    }
}

static void json_stats(sbuf *b, const weft_stats *st)
{
    for (size_t i = 0; i < NFIELDS; i++)
        put(b, "\"%s\":%llu,", fields[i].name, (unsigned long long)val(st, &fields[i]));
    put(b, "\"closed_by\":{");
    for (int r = 0; r < WEFT_CLOSE_REASONS; r++)
        put(b, "%s\"%s\":%llu", r ? "," : "", weft_close_reason_name((weft_close_reason)r),
            (unsigned long long)st->closed_by[r]);
    put(b, "},\"conns_by_state\":{");
    for (int k = 0; k < WEFT_CONN_STATES; k++)
        put(b, "%s\"%s\":%llu", k ? "," : "", weft_conn_state_name((weft_conn_state)k),
            (unsigned long long)st->conns_by_state[k]);
    put(b, "}");
}

static void json_rates(sbuf *b, const weft_rates *r)
{
    put(b,
        "{\"accepted\":%.1f,\"closed\":%.1f,\"bytes_in\":%.1f,\"bytes_out\":%.1f,"
        "\"reads\":%.1f,\"writes\":%.1f,\"wakeups\":%.1f,\"events\":%.1f}",
        r->accepted, r->closed, r->bytes_in, r->bytes_out, r->reads, r->writes, r->wakeups,
        r->events);
}

static void json_lat(sbuf *b, const weft_latency *l)
{
    put(b,
        "{\"count\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu,"
        "\"mean\":%.1f,\"le\":[",
        (unsigned long long)l->count, (unsigned long long)l->p50, (unsigned long long)l->p90,
        (unsigned long long)l->p99, (unsigned long long)l->p999, (unsigned long long)l->max,
        l->mean);
    for (int k = 0; k < WEFT_LATENCY_BUCKETS; k++)
        put(b, "%s%llu", k ? "," : "", (unsigned long long)l->le[k]);
    put(b, "]}");
}

static void json_counters(sbuf *b, const weft_snapshot *s, const uint64_t *v)
{
    put(b, "{");
    for (int k = 0; k < s->ncounters; k++)
        put(b, "%s\"%s\":%llu", k ? "," : "", s->counter_names[k], (unsigned long long)v[k]);
    put(b, "}");
}

static void json(sbuf *b, const weft_snapshot *s)
{
    put(b, "{\"seq\":%llu,\"uptime_s\":%.3f,\"interval_s\":%.3f,\"io\":\"%s\",\"version\":\"%s\",",
        (unsigned long long)s->seq, s->uptime_s, s->interval_s, s->io ? s->io : "unknown",
        WEFT_VERSION);
    /* The bounds of every "le" array below (cumulative counts), in ns. */
    put(b, "\"latency_bounds_ns\":[");
    for (int k = 0; k < WEFT_LATENCY_BUCKETS; k++)
        put(b, "%s%llu", k ? "," : "", (unsigned long long)weft_latency_bounds_ns()[k]);
    put(b, "],\"ktls\":");
    if (s->ktls)
        put_json_str(b, s->ktls);
    else
        put(b, "null");
    put(b, ",\"total\":{");
    json_stats(b, &s->total);
    put(b, "},\"rate\":");
    json_rates(b, &s->rate);
    put(b, ",\"latency_ns\":{\"turn\":");
    json_lat(b, &s->turn);
    put(b, ",\"handler\":");
    json_lat(b, &s->handler);
    put(b, "},\"counters\":");
    json_counters(b, s, s->counters);
    put(b, ",\"listeners\":[");
    for (int i = 0; i < s->nlisteners; i++) {
        const weft_listener_snapshot *l = &s->listeners[i];
        put(b, "%s{\"name\":", i ? "," : "");
        put_json_str(b, l->name);
        put(b, ",\"addr\":");
        put_json_str(b, l->addr);
        for (size_t k = 0; k < NLFIELDS; k++)
            put(b, ",\"%s\":%llu", lfields[k].name, (unsigned long long)lval(l, k));
        put(b, ",\"accept_rate\":%.1f,\"rate_limit\":%u,\"burst\":%u,\"tls\":%s}", l->accept_rate,
            l->rate_limit, l->burst, l->tls ? "true" : "false");
    }
    put(b, "],\"workers\":[");
    for (int i = 0; i < s->nworkers; i++) {
        const weft_worker_snapshot *w = &s->workers[i];
        put(b, "%s{\"worker\":%d,\"cpu\":%d,\"node\":%d,", i ? "," : "", i, w->cpu, w->node);
        json_stats(b, &w->st);
        put(b, ",\"rate\":");
        json_rates(b, &w->rate);
        put(b, ",\"latency_ns\":{\"turn\":");
        json_lat(b, &w->turn);
        put(b, ",\"handler\":");
        json_lat(b, &w->handler);
        put(b, "},\"counters\":");
        json_counters(b, s, w->counters);
        put(b, "}");
    }
    put(b, "]}\n");
}

static void workers_table(sbuf *b, const weft_snapshot *s)
{
    put(b, "%-6s %4s %4s %8s %10s %10s %10s %10s %9s %9s %9s\n", "worker", "cpu", "node", "open",
        "accepted", "events/s", "reads/s", "MB_in/s", "MB_out/s", "turn_p99", "deferred");
    for (int i = 0; i < s->nworkers; i++) {
        const weft_worker_snapshot *w = &s->workers[i];
        put(b, "%-6d %4d %4d %8llu %10llu %10.0f %10.0f %10.2f %9.2f %7.1fus %9llu\n", i, w->cpu,
            w->node, (unsigned long long)w->st.open, (unsigned long long)w->st.accepted,
            w->rate.events, w->rate.reads, w->rate.bytes_in / 1e6, w->rate.bytes_out / 1e6,
            (double)w->turn.p99 / 1e3, (unsigned long long)w->st.deferrals);
    }
    if (s->nlisteners)
        put(b, "\n%-16s %-28s %10s %8s %8s %8s %8s %8s\n", "listener", "address", "accepted",
            "open", "acc/s", "rej_max", "rej_rate", "rej_src");
    for (int i = 0; i < s->nlisteners; i++) {
        const weft_listener_snapshot *l = &s->listeners[i];
        put(b, "%-16.16s %-28.28s %10llu %8llu %8.1f %8llu %8llu %8llu\n", l->name, l->addr,
            (unsigned long long)l->accepted, (unsigned long long)l->open, l->accept_rate,
            (unsigned long long)l->rejected_max, (unsigned long long)l->rejected_rate,
            (unsigned long long)l->rejected_source);
    }
}

/* A latency as a Prometheus histogram per worker: _bucket{le}, _sum, _count. */
static void prom_lat(sbuf *b, const char *name, const char *help, const weft_snapshot *s, int h)
{
    put(b, "# HELP weft_%s_seconds %s\n# TYPE weft_%s_seconds histogram\n", name, help, name);
    const uint64_t *le = weft_latency_bounds_ns();
    for (int i = 0; i < s->nworkers; i++) {
        const weft_latency *l = h ? &s->workers[i].handler : &s->workers[i].turn;
        for (int k = 0; k < WEFT_LATENCY_BUCKETS; k++)
            put(b, "weft_%s_seconds_bucket{worker=\"%d\",le=\"%g\"} %llu\n", name, i,
                (double)le[k] / 1e9, (unsigned long long)l->le[k]);
        put(b, "weft_%s_seconds_bucket{worker=\"%d\",le=\"+Inf\"} %llu\n", name, i,
            (unsigned long long)l->count);
        put(b, "weft_%s_seconds_sum{worker=\"%d\"} %.9f\n", name, i,
            l->mean * (double)l->count / 1e9);
        put(b, "weft_%s_seconds_count{worker=\"%d\"} %llu\n", name, i,
            (unsigned long long)l->count);
    }
}

/* process_*, as the Prometheus client libraries name them, read now. */
static void prom_process(sbuf *b)
{
    st_process p;
    proc_read(&p);
    put(b,
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n"
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n"
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds %llu\n",
        p.cpu_s, (unsigned long long)p.rss_bytes, (unsigned long long)p.vsz_bytes,
        (unsigned long long)p.open_fds);
    if (p.max_fds)
        put(b,
            "# HELP process_max_fds Maximum number of open file descriptors.\n"
            "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
            (unsigned long long)p.max_fds);
    put(b,
        "# HELP process_start_time_seconds Start time of the process since unix epoch in "
        "seconds.\n"
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
        p.start_time_s);
}

static void prometheus(sbuf *b, const weft_snapshot *s)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &fields[i];
        const char *suffix = f->gauge ? "" : "_total";
        put(b, "# HELP weft_%s%s %s\n# TYPE weft_%s%s %s\n", f->name, suffix, f->help, f->name,
            suffix, f->gauge ? "gauge" : "counter");
        if (f->server_wide) {
            put(b, "weft_%s%s %llu\n", f->name, suffix, (unsigned long long)val(&s->total, f));
            continue;
        }
        for (int w = 0; w < s->nworkers; w++)
            put(b, "weft_%s%s{worker=\"%d\"} %llu\n", f->name, suffix, w,
                (unsigned long long)val(&s->workers[w].st, f));
    }
    put(b, "# HELP weft_closed_by_reason_total Connections closed, by reason.\n"
           "# TYPE weft_closed_by_reason_total counter\n");
    for (int w = 0; w < s->nworkers; w++)
        for (int r = 0; r < WEFT_CLOSE_REASONS; r++)
            put(b, "weft_closed_by_reason_total{worker=\"%d\",reason=\"%s\"} %llu\n", w,
                weft_close_reason_name((weft_close_reason)r),
                (unsigned long long)s->workers[w].st.closed_by[r]);
    put(b, "# HELP weft_connections Open connections by state, as each worker last counted "
           "them.\n# TYPE weft_connections gauge\n");
    for (int w = 0; w < s->nworkers; w++)
        for (int k = 0; k < WEFT_CONN_STATES; k++)
            put(b, "weft_connections{worker=\"%d\",state=\"%s\"} %llu\n", w,
                weft_conn_state_name((weft_conn_state)k),
                (unsigned long long)s->workers[w].st.conns_by_state[k]);
    for (size_t k = 0; s->nlisteners && k < NLFIELDS; k++) {
        const char *suffix = k == 1 ? "" : "_total";
        put(b, "# HELP weft_listener_%s%s %s\n# TYPE weft_listener_%s%s %s\n", lfields[k].name,
            suffix, lfields[k].help, lfields[k].name, suffix, k == 1 ? "gauge" : "counter");
        for (int i = 0; i < s->nlisteners; i++) {
            put(b, "weft_listener_%s%s{listener=\"", lfields[k].name, suffix);
            put_label(b, s->listeners[i].name);
            put(b, "\",addr=\"");
            put_label(b, s->listeners[i].addr);
            put(b, "\"} %llu\n", (unsigned long long)lval(&s->listeners[i], k));
        }
    }
    prom_lat(b, "turn_latency", "Time from the I/O backend's wake-up to the end of that turn.", s,
             0);
    prom_lat(b, "handler_latency", "Latency recorded by the handler.", s, 1);
    for (int k = 0; k < s->ncounters; k++) {
        put(b, "# HELP weft_user_%s_total %s\n# TYPE weft_user_%s_total counter\n",
            s->counter_names[k], s->counter_help[k], s->counter_names[k]);
        for (int w = 0; w < s->nworkers; w++)
            put(b, "weft_user_%s_total{worker=\"%d\"} %llu\n", s->counter_names[k], w,
                (unsigned long long)s->workers[w].counters[k]);
    }
    prom_process(b);
    put(b,
        "# HELP weft_build_info The weft version and the I/O backend (the labels), always 1.\n"
        "# TYPE weft_build_info gauge\nweft_build_info{version=\"%s\",io=\"%s\"} 1\n",
        WEFT_VERSION, s->io ? s->io : "unknown");
    put(b,
        "# HELP weft_uptime_seconds Seconds since the server started.\n"
        "# TYPE weft_uptime_seconds gauge\nweft_uptime_seconds %.3f\n"
        "# HELP weft_io_backend The workers' I/O backend (the label), always 1.\n"
        "# TYPE weft_io_backend gauge\nweft_io_backend{io=\"%s\"} 1\n",
        s->uptime_s, s->io ? s->io : "unknown");
}

char *weft_snapshot_format(const weft_snapshot *s, weft_format fmt)
{
    sbuf b = {.p = malloc(4096), .cap = 4096};
    if (!b.p)
        return NULL;
    b.p[0] = 0;
    switch (fmt) {
    case WEFT_FORMAT_TEXT:
        text(&b, s);
        break;
    case WEFT_FORMAT_JSON:
        json(&b, s);
        break;
    case WEFT_FORMAT_WORKERS:
        workers_table(&b, s);
        break;
    case WEFT_FORMAT_PROMETHEUS:
        prometheus(&b, s);
        break;
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
