/*
 * examples/lb/backend.c — the backend table and the choice of a backend.
 *
 * Balancing is per worker, on the worker's own state, so picking takes no
 * lock and shares no cache line with the other workers:
 *   roundrobin  smooth weighted round robin (nginx's): each pick adds every
 *               eligible backend's weight to its current value, takes the
 *               largest and subtracts the total from it. Over a cycle of
 *               sum(weights) picks each backend gets exactly its weight,
 *               spread out (1:2:3 goes c b c a b c), never in bursts.
 *   leastconn   the fewest requests in flight per unit of weight,
 *               (active + 1) / weight, ties broken from a rotating start.
 *   random2     two backends drawn at random by weight, the one with
 *               fewer requests in flight (power of two choices).
 * Backups are considered only when no primary is usable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb.h"

lb_backend lb_backends[LB_MAX_BACKENDS];
int lb_nbackends;

int lb_load(const int *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
void lb_store(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/* A single-writer counter: a relaxed load and store (invariant 7), so the
 * admin's reader sees whole values. */
void lb_add_stat(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* ---- parsing --------------------------------------------------------------- */

/* The value of "key=value" at opt (len bytes) if its key is key, else NULL. */
static const char *opt_value(const char *opt, size_t len, const char *key, size_t *vlen)
{
    size_t k = strlen(key);
    if (len <= k || strncmp(opt, key, k) != 0 || opt[k] != '=')
        return NULL;
    *vlen = len - k - 1;
    return opt + k + 1;
}

/* A number of at most 9 digits in [lo, hi] from the n bytes at v. */
static int small_number(const char *v, size_t n, int lo, int hi, int *out)
{
    char buf[12];
    long long x;
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, v, n);
    buf[n] = 0;
    if (weft_parse_number(buf, lo, hi, &x) != 0)
        return -EINVAL;
    *out = (int)x;
    return 0;
}

/*
 * One backend option. Each is a row here, so a new one (tls, when outbound
 * TLS exists) is one more branch.
 */
static int backend_option(lb_backend *b, const char *o, size_t len, const char **why)
{
    const char *v;
    size_t n;
    if (len == 6 && strncmp(o, "backup", 6) == 0) {
        b->backup = 1;
        return 0;
    }
    if (len == 3 && strncmp(o, "tls", 3) == 0) {
        b->tls = 1;
        return 0;
    }
    if ((v = opt_value(o, len, "sni", &n))) {
        *why = "sni: a host name of 1 to 255 bytes";
        if (n == 0 || n >= sizeof(b->sni))
            return -EINVAL;
        memcpy(b->sni, v, n);
        b->sni[n] = 0;
        return 0;
    }
    if ((v = opt_value(o, len, "verify", &n))) {
        *why = "verify: a PEM CA file (a path under 256 bytes), or none";
        if (n == 4 && strncmp(v, "none", 4) == 0) {
            b->insecure = 1;
            return 0;
        }
        if (n == 0 || n >= sizeof(b->ca))
            return -EINVAL;
        memcpy(b->ca, v, n);
        b->ca[n] = 0;
        return 0;
    }
    if ((v = opt_value(o, len, "weight", &n))) {
        *why = "weight: expected a number from 0 to 256";
        return small_number(v, n, 0, 256, &b->weight);
    }
    if ((v = opt_value(o, len, "maxconn", &n))) {
        *why = "maxconn: expected a number from 0 to 1000000";
        return small_number(v, n, 0, 1000000, &b->maxconn);
    }
    if ((v = opt_value(o, len, "maxqueue", &n))) {
        *why = "maxqueue: expected a number from 0 to 1000000";
        return small_number(v, n, 0, 1000000, &b->maxqueue);
    }
    if ((v = opt_value(o, len, "name", &n))) {
        *why = "name: 1 to 63 letters, digits, '-', '_' or '.'";
        if (n == 0 || n >= LB_NAME_MAX ||
            strspn(v, "abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") < n)
            return -EINVAL;
        memcpy(b->name, v, n);
        b->name[n] = 0;
        return 0;
    }
    *why = "unknown backend option (weight=N, backup, maxconn=N, maxqueue=N, name=S, tls, "
           "sni=NAME, verify=CAFILE|none)";
    return -EINVAL;
}

weft_connect_opts lb_backend_connect_opts(const lb_backend *b, uint32_t timeout_ms)
{
    return (weft_connect_opts){.timeout_ms = timeout_ms,
                               .nodelay = true,
                               .tls = b->tls != 0,
                               .insecure = b->insecure != 0,
                               .sni = b->sni[0] ? b->sni : NULL,
                               .ca_file = b->ca[0] ? b->ca : NULL};
}

int lb_backend_parse(const char *spec, lb_backend *out, const char **why)
{
    lb_backend b = {.weight = 1, .maxqueue = 128, .up = 1};
    size_t alen = strcspn(spec, ",");
    if (alen == 0 || alen >= LB_ADDR_MAX || strchr(spec, ':') == NULL ||
        strchr(spec, ':') > spec + alen) {
        *why = "expected HOST:PORT[,option...]";
        return -EINVAL;
    }
    memcpy(b.addr, spec, alen);
    for (const char *o = spec + alen; *o == ',';) {
        o++;
        size_t len = strcspn(o, ",");
        if (backend_option(&b, o, len, why) != 0)
            return -EINVAL;
        o += len;
    }
    if (!b.tls && (b.sni[0] || b.ca[0] || b.insecure)) {
        *why = "sni= and verify= are options of a tls backend (add ,tls)";
        return -EINVAL;
    }
    if (!b.name[0])
        snprintf(b.name, sizeof(b.name), "%.*s", LB_NAME_MAX - 1, b.addr);
    *out = b;
    return 0;
}

int lb_backend_add(const char *spec, const char **why)
{
    int n = __atomic_load_n(&lb_nbackends, __ATOMIC_ACQUIRE);
    if (n == LB_MAX_BACKENDS) {
        *why = "at most 64 backends (removed ones included)";
        return -ENOSPC;
    }
    lb_backend b;
    if (lb_backend_parse(spec, &b, why) != 0)
        return -EINVAL;
    if (lb_backend_find(b.name) >= 0) {
        *why = "a backend of that name exists";
        return -EINVAL;
    }
    b.state = LB_BE_ENABLED;
    lb_backends[n] = b;
    /* Publish: a worker that sees the count sees the slot. */
    __atomic_store_n(&lb_nbackends, n + 1, __ATOMIC_RELEASE);
    return 0;
}

int lb_backend_find(const char *name)
{
    int n = __atomic_load_n(&lb_nbackends, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        if (lb_load(&lb_backends[i].state) != LB_BE_REMOVED &&
            (strcmp(lb_backends[i].name, name) == 0 || strcmp(lb_backends[i].addr, name) == 0))
            return i;
    return -1;
}

int lb_backend_usable(int i)
{
    const lb_backend *b = &lb_backends[i];
    return lb_load(&b->state) == LB_BE_ENABLED && lb_load(&b->up) && lb_load(&b->weight) > 0;
}

/* ---- picking ---------------------------------------------------------------- */

static uint64_t next_random(lb_worker *w)
{
    /* xorshift64*: per worker, no shared state */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 2685821657736338717ULL;
}

/* Whether a's load per weight is below b's: (active+1)/weight, cross-multiplied. */
static int less_loaded(const lb_worker *w, int a, int b)
{
    int64_t la = (int64_t)w->active[a] + 1, lbb = (int64_t)w->active[b] + 1;
    return la * lb_load(&lb_backends[b].weight) < lbb * lb_load(&lb_backends[a].weight);
}

static int pick_rr(lb_worker *w, const int *cand, int n)
{
    int64_t total = 0;
    int best = -1;
    for (int k = 0; k < n; k++) {
        int i = cand[k];
        int wt = lb_load(&lb_backends[i].weight);
        w->swrr[i] += wt;
        total += wt;
        if (best < 0 || w->swrr[i] > w->swrr[best])
            best = i;
    }
    w->swrr[best] -= total;
    return best;
}

static int pick_leastconn(lb_worker *w, const int *cand, int n)
{
    int start = (int)(next_random(w) % (uint64_t)n), best = cand[start];
    for (int k = 1; k < n; k++) {
        int i = cand[(start + k) % n];
        if (less_loaded(w, i, best))
            best = i;
    }
    return best;
}

/* One candidate drawn with probability weight / total. */
static int draw(lb_worker *w, const int *cand, int n, int64_t total)
{
    int64_t r = (int64_t)(next_random(w) % (uint64_t)total);
    for (int k = 0; k < n; k++) {
        r -= lb_load(&lb_backends[cand[k]].weight);
        if (r < 0)
            return cand[k];
    }
    return cand[n - 1];
}

static int pick_random2(lb_worker *w, const int *cand, int n)
{
    int64_t total = 0;
    for (int k = 0; k < n; k++)
        total += lb_load(&lb_backends[cand[k]].weight);
    /* The draws weigh already: compare the loads as they are (per weight,
     * an idle pair would favour the heavier again, squaring its weight). */
    int a = draw(w, cand, n, total), b = draw(w, cand, n, total);
    return w->active[b] < w->active[a] ? b : a;
}

int lb_pick(lb_worker *w, uint64_t tried)
{
    int n = __atomic_load_n(&lb_nbackends, __ATOMIC_ACQUIRE);
    int cand[LB_MAX_BACKENDS];
    for (int backup = 0; backup <= 1; backup++) {
        int nc = 0;
        for (int i = 0; i < n; i++)
            if (lb_backends[i].backup == backup && !(tried & (1ULL << i)) && lb_backend_usable(i))
                cand[nc++] = i;
        if (nc == 0)
            continue;
        if (nc == 1)
            return cand[0];
        switch (lb_cfg.balance) {
        case LB_BAL_LEASTCONN:
            return pick_leastconn(w, cand, nc);
        case LB_BAL_RANDOM2:
            return pick_random2(w, cand, nc);
        default:
            return pick_rr(w, cand, nc);
        }
    }
    return -1;
}

int lb_maxconn_share(const lb_worker *w, int i)
{
    int m = lb_backends[i].maxconn, nw = lb_cfg.nworkers;
    if (m == 0)
        return 0;
    int share = m / nw + (w->index < m % nw);
    return share > 0 ? share : 1;
}

void lb_backend_failed(int i)
{
    lb_backend *b = &lb_backends[i];
    if (!lb_cfg.health_path || !lb_load(&b->up))
        return; /* without checks nothing would bring it back */
    lb_store(&b->passive, 1);
    lb_store(&b->up, 0);
    fprintf(stderr, "weft-lb: backend %s down (passive: a request to it failed)\n", b->name);
}

void lb_record_time(lb_worker *w, int i, uint64_t ns)
{
    uint64_t ms = ns / 1000000;
    int k = 0;
    while (k < LB_HIST_BUCKETS - 1 && ms >= (1ULL << k))
        k++;
    lb_add_stat(&w->st[i].hist[k], 1);
}
