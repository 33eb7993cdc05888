/*
 * stats/snapshot.c — sampling the stat blocks into snapshots.
 */
#include "stats/snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "stats/hist.h"

void snap_sum_worker(weft_stats *st, const st_worker *b)
{
    /*
     * Read each "done" counter before its "started" counter (closed before
     * opened, returned before borrowed), with acquire so the compiler keeps
     * that order: whatever was counted done was counted started before, so
     * opened >= closed holds in what we read and the gauges never wrap.
     */
    uint64_t closed = __atomic_load_n(&b->closed, __ATOMIC_ACQUIRE);
    uint64_t returned = __atomic_load_n(&b->rings_returned, __ATOMIC_ACQUIRE);
    st->opened += ST_GET(b, opened);
    st->closed += closed;
    for (int r = 0; r < WEFT_CLOSE_REASONS; r++)
        st->closed_by[r] += ST_GET(b, closed_by[r]);
    st->bytes_in += ST_GET(b, bytes_in);
    st->bytes_out += ST_GET(b, bytes_out);
    st->reads += ST_GET(b, reads);
    st->writes += ST_GET(b, writes);
    st->eagain += ST_GET(b, eagain);
    st->wakeups += ST_GET(b, wakeups);
    st->events += ST_GET(b, events);
    st->deferrals += ST_GET(b, deferrals);
    st->bp_pauses += ST_GET(b, bp_pauses);
    st->bp_resumes += ST_GET(b, bp_resumes);
    st->pool_pauses += ST_GET(b, pool_pauses);
    st->rings_borrowed += ST_GET(b, rings_borrowed);
    st->rings_returned += returned;
    st->ring_allocs += ST_GET(b, ring_allocs);
    st->pool_bytes += ST_GET(b, pool_bytes);
    st->handoffs += ST_GET(b, handoffs);
    st->outbound += ST_GET(b, outbound);
    st->connects += ST_GET(b, connects);
    st->tls_handshakes += ST_GET(b, tls_handshakes);
    st->tls_resumed += ST_GET(b, tls_resumed);
    for (int k = 0; k < WEFT_CONN_STATES; k++)
        st->conns_by_state[k] += ST_GET(b, conn_state[k]);
    st->rings_in_use =
        st->rings_borrowed > st->rings_returned ? st->rings_borrowed - st->rings_returned : 0;
}

void snap_server_wide(weft_stats *st, const st_acceptor *acc, const st_endpoints *ep)
{
    st->accepted = ST_GET(acc, accepted);
    st->rejected_max = ST_GET(acc, rejected_max);
    st->rejected_worker_cap = ST_GET(acc, rejected_worker);
    st->accept_emfile = ST_GET(acc, emfile);
    st->accept_shed = ST_GET(acc, shed);
    st->accept_errors = ST_GET(acc, errors);
    st->admin_rejected = ST_GET(ep, admin.rejected);
    st->admin_timeouts = ST_GET(ep, admin.timeouts);
    st->admin_emfile = ST_GET(ep, admin.emfile);
    st->metrics_rejected = ST_GET(ep, metrics.rejected);
    st->metrics_timeouts = ST_GET(ep, metrics.timeouts);
    st->metrics_emfile = ST_GET(ep, metrics.emfile);
}

/* Prometheus's habit: 1, 2.5, 5 per decade, from 1 µs to 10 s. */
static const uint64_t g_bounds[WEFT_LATENCY_BUCKETS] = {
    1000,      2500,      5000,       10000,      25000,      50000,      100000,   250000,
    500000,    1000000,   2500000,    5000000,    10000000,   25000000,   50000000, 100000000,
    250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000};

const uint64_t *weft_latency_bounds_ns(void) { return g_bounds; }

static void latency_of(weft_latency *l, const st_hist *h)
{
    uint64_t n = 0;
    unsigned k = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        /* Every bound below this bucket's top is complete now. */
        while (k < WEFT_LATENCY_BUCKETS && hist_bucket_high(i) > g_bounds[k])
            l->le[k++] = n;
        n += h->b[i];
    }
    while (k < WEFT_LATENCY_BUCKETS)
        l->le[k++] = n;
    l->count = n;
    l->p50 = hist_percentile(h, 50);
    l->p90 = hist_percentile(h, 90);
    l->p99 = hist_percentile(h, 99);
    l->p999 = hist_percentile(h, 99.9);
    l->max = h->max;
    l->mean = n ? (double)h->sum / (double)n : 0;
}

static double per_s(uint64_t now, uint64_t before, double dt)
{
    return dt > 0 && now >= before ? (double)(now - before) / dt : 0;
}

static void rates_of(weft_rates *r, const weft_stats *now, const weft_stats *before, double dt)
{
    r->accepted = per_s(now->accepted, before->accepted, dt);
    r->closed = per_s(now->closed, before->closed, dt);
    r->bytes_in = per_s(now->bytes_in, before->bytes_in, dt);
    r->bytes_out = per_s(now->bytes_out, before->bytes_out, dt);
    r->reads = per_s(now->reads, before->reads, dt);
    r->writes = per_s(now->writes, before->writes, dt);
    r->wakeups = per_s(now->wakeups, before->wakeups, dt);
    r->events = per_s(now->events, before->events, dt);
}

/* Listener i's row: its counters, and its closes summed over the workers. */
static void listener_of(weft_listener_snapshot *r, const st_registry *reg, int i,
                        const st_snap *prev, double dt)
{
    const st_listener *b = reg->lst[i];
    uint64_t closed = 0;
    /* Closes before accepts (see snap_sum_worker): open never wraps. */
    for (int w = 0; w < reg->nworkers; w++)
        closed += __atomic_load_n(&reg->blocks[w]->closed_lsn[i], __ATOMIC_ACQUIRE);
    r->accepted = ST_GET(b, accepted);
    r->open = r->accepted > closed ? r->accepted - closed : 0;
    r->rejected_max = ST_GET(b, rejected_max);
    r->rejected_rate = ST_GET(b, rejected_rate);
    r->rejected_source = ST_GET(b, rejected_source);
    r->tls = reg->ltls[i];
    if (reg->llimit[i]) {
        uint64_t lim = __atomic_load_n(reg->llimit[i], __ATOMIC_RELAXED);
        r->rate_limit = (uint32_t)(lim >> 32);
        r->burst = (uint32_t)lim;
    }
    if (prev && i < prev->pub.nlisteners)
        r->accept_rate = per_s(r->accepted, prev->pub.listeners[i].accepted, dt);
}

/* Byte offsets of the arrays that follow the header. */
typedef struct layout {
    size_t workers, wcounters, counters, listeners, names, help, strings, size;
} layout;

static size_t align8(size_t v) { return (v + 7) & ~(size_t)7; }

static layout plan(const st_registry *reg)
{
    layout l;
    size_t nw = (size_t)reg->nworkers, nc = (size_t)reg->ncounters;
    l.workers = align8(sizeof(st_snap));
    l.wcounters = l.workers + nw * sizeof(weft_worker_snapshot);
    l.counters = align8(l.wcounters + nw * nc * sizeof(uint64_t));
    l.listeners = align8(l.counters + nc * sizeof(uint64_t));
    l.names = l.listeners + (size_t)reg->nlisteners * sizeof(weft_listener_snapshot);
    l.help = l.names + nc * sizeof(char *);
    l.strings = l.help + nc * sizeof(char *);
    size_t str = 0;
    for (size_t i = 0; i < nc; i++)
        str += strlen(reg->names[i]) + 1 + strlen(reg->help[i]) + 1;
    for (int i = 0; i < reg->nlisteners; i++)
        str += strlen(reg->lname[i]) + 1 + strlen(reg->laddr[i]) + 1;
    l.size = align8(l.strings + str);
    return l;
}

st_snap *snap_take(const st_registry *reg, const st_snap *prev, uint64_t seq, double uptime_s,
                   double interval_s)
{
    layout l = plan(reg);
    char *base = calloc(1, l.size);
    st_hist *turn = calloc(1, sizeof(*turn)), *handler = calloc(1, sizeof(*handler));
    st_hist *one = malloc(sizeof(*one));
    if (!base || !turn || !handler || !one) {
        free(base), free(turn), free(handler), free(one);
        return NULL;
    }
    st_snap *s = (st_snap *)base;
    weft_snapshot *p = &s->pub;
    int nw = reg->nworkers, nc = reg->ncounters;
    weft_worker_snapshot *ws = (weft_worker_snapshot *)(base + l.workers);
    uint64_t *wcnt = (uint64_t *)(base + l.wcounters);
    uint64_t *cnt = (uint64_t *)(base + l.counters);
    const char **names = (const char **)(base + l.names);
    const char **help = (const char **)(base + l.help);
    char *str = base + l.strings;

    s->size = l.size;
    p->seq = seq;
    p->uptime_s = uptime_s;
    p->io = reg->io; /* a static string of the library: no copy needed */
    p->ktls = reg->ktls;
    p->interval_s = interval_s;
    p->nworkers = nw;
    p->workers = ws;
    p->ncounters = nc;
    p->counters = cnt;
    p->counter_names = names;
    p->counter_help = help;
    for (int i = 0; i < nc; i++) {
        size_t a = strlen(reg->names[i]) + 1, b = strlen(reg->help[i]) + 1;
        names[i] = memcpy(str, reg->names[i], a);
        str += a;
        help[i] = memcpy(str, reg->help[i], b);
        str += b;
    }
    weft_listener_snapshot *ls = (weft_listener_snapshot *)(base + l.listeners);
    p->nlisteners = reg->nlisteners;
    p->listeners = ls;
    for (int i = 0; i < reg->nlisteners; i++) {
        size_t a = strlen(reg->lname[i]) + 1, b = strlen(reg->laddr[i]) + 1;
        ls[i].name = memcpy(str, reg->lname[i], a);
        str += a;
        ls[i].addr = memcpy(str, reg->laddr[i], b);
        str += b;
    }

    snap_server_wide(&p->total, reg->acc, reg->ep);
    for (int i = 0; i < nw; i++) {
        const st_worker *b = reg->blocks[i];
        weft_worker_snapshot *w = &ws[i];
        w->cpu = reg->cpu[i];
        w->node = reg->node[i];
        snap_sum_worker(&w->st, b);
        w->st.open = w->st.opened > w->st.closed ? w->st.opened - w->st.closed : 0;
        /* connections this worker was handed (outbound ones it opened itself) */
        w->st.accepted = w->st.opened - w->st.outbound;
        snap_sum_worker(&p->total, b);
        memset(one, 0, sizeof(*one));
        hist_merge(one, &b->turn);
        latency_of(&w->turn, one);
        hist_merge(turn, one);
        memset(one, 0, sizeof(*one));
        hist_merge(one, &b->handler);
        latency_of(&w->handler, one);
        hist_merge(handler, one);
        w->counters = wcnt + (size_t)i * (size_t)nc;
        for (int k = 0; k < nc; k++) {
            wcnt[(size_t)i * (size_t)nc + (size_t)k] = ST_GET(b, user[k]);
            cnt[k] += ST_GET(b, user[k]);
        }
        if (prev && i < prev->pub.nworkers)
            rates_of(&w->rate, &w->st, &prev->pub.workers[i].st, interval_s);
    }
    weft_stats *t = &p->total;
    t->open = t->accepted + t->outbound > t->closed ? t->accepted + t->outbound - t->closed : 0;
    for (int i = 0; i < reg->nlisteners; i++)
        listener_of(&ls[i], reg, i, prev, interval_s);
    latency_of(&p->turn, turn);
    latency_of(&p->handler, handler);
    if (prev)
        rates_of(&p->rate, t, &prev->pub.total, interval_s);
    free(turn), free(handler), free(one);
    return s;
}

/* Move every internal pointer of a copy by delta bytes. */
#define RELOC(ptr, delta) ((ptr) = (void *)((char *)(ptr) + (delta)))

st_snap *snap_copy(const st_snap *src)
{
    st_snap *s = malloc(src->size);
    if (!s)
        return NULL;
    memcpy(s, src, src->size);
    ptrdiff_t d = (char *)s - (const char *)src;
    weft_snapshot *p = &s->pub;
    RELOC(p->workers, d);
    RELOC(p->counters, d);
    RELOC(p->counter_names, d);
    RELOC(p->counter_help, d);
    RELOC(p->listeners, d);
    weft_listener_snapshot *ls = (weft_listener_snapshot *)p->listeners;
    for (int i = 0; i < p->nlisteners; i++) {
        RELOC(ls[i].name, d);
        RELOC(ls[i].addr, d);
    }
    weft_worker_snapshot *ws = (weft_worker_snapshot *)p->workers;
    for (int i = 0; i < p->nworkers; i++)
        RELOC(ws[i].counters, d);
    const char **names = (const char **)p->counter_names, **help = (const char **)p->counter_help;
    for (int i = 0; i < p->ncounters; i++) {
        RELOC(names[i], d);
        RELOC(help[i], d);
    }
    return s;
}

st_snap *snap_of(const weft_snapshot *pub)
{
    return (st_snap *)((char *)pub - offsetof(st_snap, pub));
}
