/*
 * examples/lb/admin.c — weft-lb's commands on the admin socket (weft-stat's
 * socket; `help` lists them) and its counters:
 *
 *   backends [json]     each backend: state, health, weight, requests in
 *                       flight, idle pooled connections, requests,
 *                       responses by class, failures, retries, reuses,
 *                       queue, response-time percentiles
 *   drain NAME          no new requests; those in flight finish
 *   disable NAME        no new requests and no health checks
 *   enable NAME         back in rotation (when healthy)
 *   weight NAME N       a new weight, 0 to 256
 *   add SPEC            a new backend, as --backend
 *   remove NAME         the backend leaves for good (its slot is not reused)
 *
 * The commands run on the stats thread and change the shared table with
 * relaxed stores (lb.h); the workers see the change at their next pick.
 * The per-worker counters are read with relaxed loads and summed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb.h"

int lb_counter[LB_K_COUNT];
pthread_mutex_t lb_table_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const g_state_name[] = {"free", "enabled", "draining", "disabled", "removed"};

/* A growing answer. */
typedef struct out {
    char *s;
    size_t len, cap;
} out;

static void outf(out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->s ? o->s + o->len : NULL, o->s ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (o->s && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap ? o->cap * 2 : 4096) + (size_t)n;
        char *p = realloc(o->s, cap);
        if (!p)
            return;
        o->s = p;
        o->cap = cap;
    }
}

static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* Backend i's counters summed over the workers. */
static void sum_stats(int i, lb_be_stats *t, int *active, int *idle)
{
    memset(t, 0, sizeof(*t));
    *active = *idle = 0;
    for (int k = 0; k < lb_cfg.nworkers; k++) {
        const lb_worker *w = &lb_workers[k];
        const lb_be_stats *s = &w->st[i];
        *active += lb_load(&w->active[i]);
        *idle += lb_load(&w->idle[i]);
        t->requests += ld(&s->requests);
        for (int c = 0; c < 5; c++)
            t->responses[c] += ld(&s->responses[c]);
        t->failures += ld(&s->failures);
        t->retries += ld(&s->retries);
        t->reused += ld(&s->reused);
        t->queued += ld(&s->queued);
        t->queue_timeouts += ld(&s->queue_timeouts);
        for (int h = 0; h < LB_HIST_BUCKETS; h++)
            t->hist[h] += ld(&s->hist[h]);
    }
}

/* The upper bound (ms) of the bucket holding quantile q; 0 when empty. */
static uint64_t quantile_ms(const lb_be_stats *t, double q)
{
    uint64_t n = 0, seen = 0;
    for (int h = 0; h < LB_HIST_BUCKETS; h++)
        n += t->hist[h];
    if (n == 0)
        return 0;
    for (int h = 0; h < LB_HIST_BUCKETS; h++) {
        seen += t->hist[h];
        if ((double)seen >= q * (double)n)
            return 1ULL << h;
    }
    return 1ULL << (LB_HIST_BUCKETS - 1);
}

static char *cmd_backends(weft_server *s, const char *args, void *ud)
{
    (void)s;
    (void)ud;
    int json = strcmp(args, "json") == 0;
    out o = {0};
    int n = __atomic_load_n(&lb_nbackends, __ATOMIC_ACQUIRE);
    if (json)
        outf(&o, "{\"backends\":[");
    else
        outf(&o, "%-20s %-22s %-8s %-4s %6s %6s %4s %10s %8s %8s %8s %8s %8s %8s %8s %6s %6s\n",
             "name", "addr", "state", "up", "weight", "active", "idle", "requests", "2xx", "3xx",
             "4xx", "5xx", "failures", "retries", "reused", "p50ms", "p99ms");
    for (int i = 0, first = 1; i < n; i++) {
        const lb_backend *b = &lb_backends[i];
        int st = lb_load(&b->state);
        if (st == LB_BE_REMOVED)
            continue;
        lb_be_stats t;
        int active, idle;
        sum_stats(i, &t, &active, &idle);
        if (json) {
            outf(&o,
                 "%s{\"name\":\"%s\",\"addr\":\"%s\",\"state\":\"%s\",\"up\":%s,\"backup\":%s,"
                 "\"weight\":%d,\"maxconn\":%d,\"active\":%d,\"idle\":%d,\"requests\":%llu,"
                 "\"responses\":[%llu,%llu,%llu,%llu,%llu],\"failures\":%llu,\"retries\":%llu,"
                 "\"reused\":%llu,\"queued\":%llu,\"queue_timeouts\":%llu,\"checks\":%llu,"
                 "\"check_failures\":%llu,\"check_transitions\":%llu,\"response_ms_hist\":[",
                 first ? "" : ",", b->name, b->addr, g_state_name[st],
                 lb_load(&b->up) ? "true" : "false", b->backup ? "true" : "false",
                 lb_load(&b->weight), b->maxconn, active, idle, (unsigned long long)t.requests,
                 (unsigned long long)t.responses[0], (unsigned long long)t.responses[1],
                 (unsigned long long)t.responses[2], (unsigned long long)t.responses[3],
                 (unsigned long long)t.responses[4], (unsigned long long)t.failures,
                 (unsigned long long)t.retries, (unsigned long long)t.reused,
                 (unsigned long long)t.queued, (unsigned long long)t.queue_timeouts,
                 (unsigned long long)__atomic_load_n(&b->checks, __ATOMIC_RELAXED),
                 (unsigned long long)__atomic_load_n(&b->check_failures, __ATOMIC_RELAXED),
                 (unsigned long long)__atomic_load_n(&b->transitions, __ATOMIC_RELAXED));
            for (int h = 0; h < LB_HIST_BUCKETS; h++)
                outf(&o, "%s%llu", h ? "," : "", (unsigned long long)t.hist[h]);
            outf(&o, "]}");
        } else {
            outf(&o,
                 "%-20s %-22s %-8s %-4s %6d %6d %4d %10llu %8llu %8llu %8llu %8llu %8llu %8llu "
                 "%8llu %6llu %6llu\n",
                 b->name, b->addr, g_state_name[st], lb_load(&b->up) ? "yes" : "no",
                 lb_load(&b->weight), active, idle, (unsigned long long)t.requests,
                 (unsigned long long)t.responses[1], (unsigned long long)t.responses[2],
                 (unsigned long long)t.responses[3], (unsigned long long)t.responses[4],
                 (unsigned long long)t.failures, (unsigned long long)t.retries,
                 (unsigned long long)t.reused, (unsigned long long)quantile_ms(&t, 0.5),
                 (unsigned long long)quantile_ms(&t, 0.99));
        }
        first = 0;
    }
    if (json)
        outf(&o, "]}\n");
    return o.s;
}

static char *answerf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return strdup(buf);
}

/* "NAME" or "NAME N" for the state commands. */
static char *set_state(const char *args, int state)
{
    pthread_mutex_lock(&lb_table_lock);
    int i = lb_backend_find(args);
    if (i >= 0)
        lb_store(&lb_backends[i].state, state);
    pthread_mutex_unlock(&lb_table_lock);
    if (i < 0)
        return answerf("error: no backend '%s' (see backends)\n", args);
    return answerf("ok: %s %s\n", lb_backends[i].name, g_state_name[state]);
}

static char *cmd_drain(weft_server *s, const char *a, void *u)
{
    (void)s, (void)u;
    return set_state(a, LB_BE_DRAINING);
}
static char *cmd_disable(weft_server *s, const char *a, void *u)
{
    (void)s, (void)u;
    return set_state(a, LB_BE_DISABLED);
}
static char *cmd_enable(weft_server *s, const char *a, void *u)
{
    (void)s, (void)u;
    return set_state(a, LB_BE_ENABLED);
}
static char *cmd_remove(weft_server *s, const char *a, void *u)
{
    (void)s, (void)u;
    return set_state(a, LB_BE_REMOVED);
}

static char *cmd_weight(weft_server *s, const char *args, void *ud)
{
    (void)s;
    (void)ud;
    char name[LB_NAME_MAX + LB_ADDR_MAX];
    const char *sp = strchr(args, ' ');
    long long v;
    if (!sp || (size_t)(sp - args) >= sizeof(name) || weft_parse_number(sp + 1, 0, 256, &v) != 0)
        return strdup("error: usage: weight NAME N (N from 0 to 256)\n");
    memcpy(name, args, (size_t)(sp - args));
    name[sp - args] = 0;
    pthread_mutex_lock(&lb_table_lock);
    int i = lb_backend_find(name);
    if (i >= 0)
        lb_store(&lb_backends[i].weight, (int)v);
    pthread_mutex_unlock(&lb_table_lock);
    if (i < 0)
        return answerf("error: no backend '%s' (see backends)\n", name);
    return answerf("ok: %s weight %lld\n", lb_backends[i].name, v);
}

static char *cmd_add(weft_server *s, const char *args, void *ud)
{
    (void)s;
    (void)ud;
    const char *why = NULL;
    pthread_mutex_lock(&lb_table_lock);
    int rc = lb_backend_add(args, &why);
    pthread_mutex_unlock(&lb_table_lock);
    if (rc != 0)
        return answerf("error: %s\n", why ? why : "refused");
    return answerf("ok: added %s\n", args);
}

int lb_admin_setup(weft_server *s)
{
    static const struct {
        int k;
        const char *name, *help;
    } counters[] = {
        {LB_K_REQUESTS, "lb_requests", "requests (tcp mode: connections) taken from clients"},
        {LB_K_RETRIES, "lb_retries", "requests sent to another backend after a failure"},
        {LB_K_REUSED, "lb_reused", "requests sent on a pooled keep-alive connection"},
        {LB_K_400, "lb_400", "requests refused as malformed (400, 505)"},
        {LB_K_408, "lb_408", "clients that did not send a whole head in time (408)"},
        {LB_K_431, "lb_431", "heads over --max-head or --max-headers (431)"},
        {LB_K_501, "lb_501", "requests for what a reverse proxy does not do (501)"},
        {LB_K_502, "lb_502", "requests no backend answered properly (502)"},
        {LB_K_503, "lb_503", "requests with no backend available or queue full/expired (503)"},
        {LB_K_504, "lb_504", "requests whose backend did not answer in time (504)"},
        {LB_K_QUEUED, "lb_queued", "requests that waited in a backend's maxconn queue"},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        int id = weft_server_add_counter(s, counters[i].name, counters[i].help);
        if (id < 0)
            return id;
        lb_counter[counters[i].k] = id;
    }
    static const struct {
        const char *name, *help;
        weft_command_fn fn;
    } cmds[] = {
        {"backends", "backends [json]: each backend's state and counters", cmd_backends},
        {"drain", "drain NAME: no new requests to a backend", cmd_drain},
        {"disable", "disable NAME: no requests and no checks", cmd_disable},
        {"enable", "enable NAME: back in rotation", cmd_enable},
        {"weight", "weight NAME N: set a backend's weight (0-256)", cmd_weight},
        {"add", "add HOST:PORT[,option...]: a new backend", cmd_add},
        {"remove", "remove NAME: take a backend out for good", cmd_remove},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        int rc = weft_server_add_command(s, cmds[i].name, cmds[i].help, cmds[i].fn, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}
