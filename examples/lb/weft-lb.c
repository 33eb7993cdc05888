/*
 * weft-lb — an HTTP load balancer and reverse proxy (and an L4 proxy in
 * tcp mode) on the public weft API. lb.h is the map of its files; this one
 * has the options, --config and the program skeleton.
 *
 *   weft-lb --listen 127.0.0.1:8080 \
 *           --backend 127.0.0.1:9001 --backend 127.0.0.1:9002,weight=3 \
 *           --balance roundrobin --health-check /health --health-interval 500ms \
 *           --rise 2 --fall 2 --mode http --workers 2
 *
 * --config FILE holds the same options as lines "name = value" (a flag
 * alone on its line), '#' starting a comment; it is read where it appears
 * among the options, so later options override it. SIGHUP re-reads its
 * backend lines: new ones are added, missing ones removed, weights
 * updated; connections are not touched. Other options apply at start.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb.h"

lb_settings lb_cfg = {
    .mode = LB_MODE_HTTP,
    .balance = LB_BAL_RR,
    .retries = 2,
    .connect_timeout = 2000,
    .response_timeout = 30000,
    .header_timeout = 10000,
    .queue_timeout = 2000,
    .pool_size = 1024,
    .pool_idle = 4000,
    .max_head = 16384,
    .max_headers = 100,
    .health_interval = 2000,
    .rise = 2,
    .fall = 2,
};
lb_worker *lb_workers;

static const char *g_config;     /* --config FILE, for SIGHUP */
static int g_health_timeout_set; /* else it follows the interval */
static int g_in_config;          /* reading a file: no --config inside */

int lb_parse_ms(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || *s == '-')
        return -EINVAL;
    if (strcmp(end, "s") == 0)
        v *= 1000;
    else if (strcmp(end, "m") == 0)
        v *= 60000;
    else if (*end && strcmp(end, "ms") != 0)
        return -EINVAL;
    if (v < lo || v > hi)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int read_config(weft_config *cfg, const char *path, const char **why);

/* The durations: option name, field, bounds. */
static const struct {
    const char *name;
    uint32_t *field, lo, hi;
} g_durations[] = {
    {"connect-timeout", &lb_cfg.connect_timeout, 1, 3600000},
    {"response-timeout", &lb_cfg.response_timeout, 0, 3600000},
    {"header-timeout", &lb_cfg.header_timeout, 0, 3600000},
    {"queue-timeout", &lb_cfg.queue_timeout, 0, 3600000},
    {"pool-idle-timeout", &lb_cfg.pool_idle, 1, 3600000},
    {"health-interval", &lb_cfg.health_interval, 10, 3600000},
    {"health-timeout", &lb_cfg.health_timeout, 10, 3600000},
};

/* The integers: option name, field, bounds. */
static const struct {
    const char *name;
    int *field, lo, hi;
} g_ints[] = {
    {"retries", &lb_cfg.retries, 0, 63},
    {"rise", &lb_cfg.rise, 1, 100},
    {"fall", &lb_cfg.fall, 1, 100},
    {"observe-5xx", &lb_cfg.observe_5xx, 0, 1000},
    {"max-headers", &lb_cfg.max_headers, 1, 256},
};

static int lb_option(weft_config *cfg, const char *name, const char *arg, const char **why,
                     void *ud)
{
    (void)ud;
    long long v;
    if (strcmp(name, "backend") == 0)
        return lb_backend_add(arg, why) == 0 ? 0 : -EINVAL;
    if (strcmp(name, "reuseport") == 0) {
        lb_cfg.reuseport = 1;
        return 0;
    }
    if (strcmp(name, "mode") == 0) {
        *why = "expected http or tcp";
        if (strcmp(arg, "http") && strcmp(arg, "tcp"))
            return -EINVAL;
        lb_cfg.mode = strcmp(arg, "tcp") == 0 ? LB_MODE_TCP : LB_MODE_HTTP;
        return 0;
    }
    if (strcmp(name, "balance") == 0) {
        *why = "expected roundrobin, leastconn or random2";
        if (strcmp(arg, "roundrobin") == 0)
            lb_cfg.balance = LB_BAL_RR;
        else if (strcmp(arg, "leastconn") == 0)
            lb_cfg.balance = LB_BAL_LEASTCONN;
        else if (strcmp(arg, "random2") == 0)
            lb_cfg.balance = LB_BAL_RANDOM2;
        else
            return -EINVAL;
        return 0;
    }
    if (strcmp(name, "health-check") == 0) {
        *why = "expected a path starting with '/', of visible characters (at most 256)";
        if (arg[0] != '/' || strlen(arg) > 256 || strpbrk(arg, " \t\r\n"))
            return -EINVAL;
        lb_cfg.health_path = arg;
        return 0;
    }
    if (strcmp(name, "config") == 0) {
        if (g_in_config) {
            *why = "a config file may not name another";
            return -EINVAL;
        }
        g_config = arg;
        return read_config(cfg, arg, why);
    }
    if (strcmp(name, "max-head") == 0) {
        *why = "expected a number from 256 to 1048576";
        if (weft_parse_number(arg, 256, 1 << 20, &v) != 0)
            return -EINVAL;
        lb_cfg.max_head = (uint32_t)v;
        return 0;
    }
    if (strcmp(name, "pool-size") == 0) {
        *why = "expected a number from 0 to 100000";
        if (weft_parse_number(arg, 0, 100000, &v) != 0)
            return -EINVAL;
        lb_cfg.pool_size = (uint32_t)v;
        return 0;
    }
    for (size_t i = 0; i < sizeof(g_ints) / sizeof(g_ints[0]); i++)
        if (strcmp(name, g_ints[i].name) == 0) {
            *why = "expected a number in the range --help gives";
            if (weft_parse_number(arg, g_ints[i].lo, g_ints[i].hi, &v) != 0)
                return -EINVAL;
            *g_ints[i].field = (int)v;
            return 0;
        }
    for (size_t i = 0; i < sizeof(g_durations) / sizeof(g_durations[0]); i++)
        if (strcmp(name, g_durations[i].name) == 0) {
            *why = "expected a duration such as 500ms, 2s or 1m, in the range --help gives";
            g_health_timeout_set |= g_durations[i].field == &lb_cfg.health_timeout;
            return lb_parse_ms(arg, g_durations[i].lo, g_durations[i].hi, g_durations[i].field);
        }
    *why = "unknown option";
    return -EINVAL;
}

static const weft_program_option lb_options[] = {
    {"backend", "HOST:PORT[,OPT...]",
     "a backend, repeatable; options: weight=N (0-256, default 1),\n"
     "backup (used only when no primary is up), maxconn=N (requests\n"
     "in flight at once, split between the workers; 0: no cap),\n"
     "maxqueue=N (requests waiting for a slot, default 128),\n"
     "name=S (in stats and admin commands; default HOST:PORT),\n"
     "tls (speak TLS to it, its certificate verified), sni=NAME (the\n"
     "name sent and verified; default HOST, or the IP address the\n"
     "certificate must then carry), verify=CAFILE (PEM CAs; default the\n"
     "system's) or verify=none (no verification: tests only)"},
    {"mode", "http|tcp", "http: a reverse proxy per request (default); tcp: per connection"},
    {"balance", "ALGO",
     "roundrobin (smooth weighted, default), leastconn (fewest in\n"
     "flight per weight) or random2 (the less loaded of two random)"},
    {"health-check", "PATH",
     "turn on active checks: GET PATH must answer 2xx or 3xx (tcp\n"
     "mode: a connect is the check); also turns on passive marking"},
    {"health-interval", "DUR", "time between checks of a backend (default 2s)"},
    {"health-timeout", "DUR", "a check's limit (default: the interval, at most 2s)"},
    {"rise", "N", "checks passed in a row that bring a backend up (default 2)"},
    {"fall", "N", "checks failed in a row that take it down (default 2)"},
    {"observe-5xx", "N", "this many 5xx answers in a row mark a backend down (0: off)"},
    {"retries", "N",
     "other backends tried after a failed connect, or after a failure\n"
     "of an idempotent request with no body and no answer yet (default 2)"},
    {"connect-timeout", "DUR", "limit on connecting to a backend (default 2s): then 504"},
    {"response-timeout", "DUR",
     "limit from a request sent to its response head (default 30s;\n"
     "0: none): then 504, never retried"},
    {"header-timeout", "DUR",
     "limit from a request head's first byte to its end (default 10s;\n"
     "0: none): then 408"},
    {"queue-timeout", "DUR", "limit in a backend's maxconn queue (default 2s): then 503"},
    {"pool-size", "N",
     "idle keep-alive connections kept per backend per worker\n"
     "(default 1024: as many as requests in flight, or they churn)"},
    {"pool-idle-timeout", "DUR",
     "an idle pooled connection is closed after this (default 4s;\n"
     "keep it below the backends' keep-alive timeout)"},
    {"max-head", "BYTES", "longest request or response head (default 16384): then 431/502"},
    {"max-headers", "N", "most header lines in a head (default 100, at most 256): then 431"},
    {"reuseport", NULL, "SO_REUSEPORT on every listener: processes may share the port"},
    {"config", "FILE",
     "read options from FILE: lines 'name = value' or 'flag'; SIGHUP\n"
     "re-reads its backend lines"},
    {NULL, NULL, NULL},
};

/* The option named `name`, if it is one of ours. */
static const weft_program_option *lb_option_named(const char *name)
{
    for (const weft_program_option *o = lb_options; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

/* ---- --config ----------------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

/* The values read at start: the options point at them for the process's life. */
typedef struct kept {
    struct kept *next;
    char s[];
} kept;
static kept *g_kept;

static const char *keep_copy(const char *v)
{
    size_t n = strlen(v) + 1;
    kept *k = malloc(sizeof(*k) + n);
    if (!k)
        return NULL;
    memcpy(k->s, v, n);
    k->next = g_kept;
    g_kept = k;
    return k->s;
}

/*
 * Call fn for each "name = value" line of path (value NULL for a flag).
 * With keep, the values are copied for good (options keep pointers to
 * them); else they are valid during the call only.
 */
typedef int (*config_fn)(const char *name, const char *value, const char **why, void *arg);

static int each_line(const char *path, config_fn fn, void *arg, int keep, const char **why)
{
    static char msg[320];
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, sizeof(msg), "cannot open %s: %s", path, strerror(errno));
        *why = msg;
        return -EINVAL;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line), *eq = strchr(s, '=');
        if (!*s)
            continue;
        const char *value = NULL;
        if (eq) {
            *eq = 0;
            value = keep ? keep_copy(trim(eq + 1)) : trim(eq + 1);
            if (!value) {
                rc = -ENOMEM;
                break;
            }
        }
        char *name = trim(s);
        const char *w = NULL;
        rc = fn(name, value, &w, arg);
        if (rc != 0) {
            snprintf(msg, sizeof(msg), "%s:%d: %s: %s", path, lineno, name, w ? w : "not accepted");
            *why = msg;
        }
    }
    fclose(f);
    return rc;
}

static int config_option(const char *name, const char *value, const char **why, void *arg)
{
    weft_config *cfg = arg;
    const weft_program_option *o = lb_option_named(name);
    if (o) {
        if (!o->arg != !value) {
            *why = o->arg ? "needs '= value'" : "is a flag: no value";
            return -EINVAL;
        }
        return lb_option(cfg, name, value, why, NULL);
    }
    int rc = weft_config_option(cfg, name, value, why);
    if (rc == -ENOENT)
        *why = "no such option (see --help)";
    return rc;
}

static int read_config(weft_config *cfg, const char *path, const char **why)
{
    g_in_config = 1;
    int rc = each_line(path, config_option, cfg, 1, why);
    g_in_config = 0;
    return rc;
}

/* SIGHUP: the backend lines, applied to the table. */
typedef struct reload_set {
    int n;
    lb_backend b[LB_MAX_BACKENDS];
} reload_set;

static int reload_line(const char *name, const char *value, const char **why, void *arg)
{
    reload_set *set = arg;
    if (strcmp(name, "backend") != 0 || !value)
        return 0;
    if (set->n == LB_MAX_BACKENDS) {
        *why = "at most 64 backends";
        return -ENOSPC;
    }
    return lb_backend_parse(value, &set->b[set->n++], why);
}

int lb_reload(const char **why)
{
    if (!g_config) {
        *why = "no --config file to re-read";
        return -EINVAL;
    }
    reload_set *set = calloc(1, sizeof(*set));
    if (!set)
        return -ENOMEM;
    int rc = each_line(g_config, reload_line, set, 0, why);
    pthread_mutex_lock(&lb_table_lock);
    int n = rc == 0 ? __atomic_load_n(&lb_nbackends, __ATOMIC_ACQUIRE) : 0;
    for (int i = 0; i < n; i++) { /* gone from the file: removed */
        int keep = 0;
        for (int k = 0; k < set->n; k++)
            keep |= strcmp(set->b[k].name, lb_backends[i].name) == 0;
        if (!keep)
            lb_store(&lb_backends[i].state, LB_BE_REMOVED);
    }
    for (int k = 0; rc == 0 && k < set->n; k++) {
        int i = lb_backend_find(set->b[k].name);
        if (i >= 0) {
            lb_store(&lb_backends[i].weight, set->b[k].weight);
            continue;
        }
        char spec[LB_ADDR_MAX + LB_NAME_MAX + 64];
        snprintf(spec, sizeof(spec), "%s,weight=%d,maxconn=%d,maxqueue=%d,name=%s%s",
                 set->b[k].addr, set->b[k].weight, set->b[k].maxconn, set->b[k].maxqueue,
                 set->b[k].name, set->b[k].backup ? ",backup" : "");
        rc = lb_backend_add(spec, why);
    }
    pthread_mutex_unlock(&lb_table_lock);
    free(set);
    return rc;
}

/* The reload thread: waits for SIGHUP (blocked in every other thread). */
static pthread_t g_hup_thread;
static int g_hup_started;
static int g_hup_stop; /* atomic: set by teardown, read by the reload thread */

static void *hup_main(void *arg)
{
    sigset_t *set = arg;
    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0 || __atomic_load_n(&g_hup_stop, __ATOMIC_ACQUIRE))
            return NULL;
        const char *why = NULL;
        if (lb_reload(&why) == 0)
            fprintf(stderr, "weft-lb: SIGHUP: re-read the backends of %s\n", g_config);
        else
            fprintf(stderr, "weft-lb: SIGHUP: %s (kept what was applied)\n", why ? why : "failed");
    }
}

/* ---- the program ----------------------------------------------------------------- */

static void lb_defaults(weft_config *cfg, void *ud)
{
    (void)ud;
    cfg->port = 8080;
}

/* --reuseport on each listener; the default one becomes a --listen spec for it. */
static int apply_reuseport(weft_config *cfg, const char **why)
{
    static char specs[WEFT_MAX_LISTENERS][300];
    if (cfg->nlisten == 0 && cfg->bind_addr) {
        snprintf(specs[0], sizeof(specs[0]), strchr(cfg->bind_addr, ':') ? "[%s]:%u" : "%s:%u",
                 cfg->bind_addr, cfg->port);
        cfg->listen[cfg->nlisten++] = specs[0];
        cfg->bind_addr = NULL;
    }
    for (int i = 0; i < cfg->nlisten; i++) {
        if (strlen(cfg->listen[i]) + 12 > sizeof(specs[i])) {
            *why = "a --listen spec is too long for --reuseport";
            return -EINVAL;
        }
        if (specs[i] != cfg->listen[i])
            snprintf(specs[i], sizeof(specs[i]), "%s", cfg->listen[i]);
        strcat(specs[i], ",reuseport");
        cfg->listen[i] = specs[i];
    }
    return 0;
}

/* The handler depends on --mode; weft_main reads it after configure. */
static weft_handler g_handler;

static int lb_configure(weft_config *cfg, const char **why, void *ud)
{
    (void)ud;
    g_handler = lb_cfg.mode == LB_MODE_TCP ? *lb_tcp_handler() : *lb_http_handler();
    if (lb_nbackends == 0) {
        *why = "give at least one --backend HOST:PORT";
        return -EINVAL;
    }
    if (!g_health_timeout_set)
        lb_cfg.health_timeout = lb_cfg.health_interval < 2000 ? lb_cfg.health_interval : 2000;
    uint32_t shortest = lb_cfg.pool_idle;
    uint32_t t[] = {lb_cfg.header_timeout, lb_cfg.queue_timeout, lb_cfg.response_timeout};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i] && t[i] < shortest)
            shortest = t[i];
    lb_cfg.tick_ms = shortest / 4 > 10 ? shortest / 4 : 10;
    return lb_cfg.reuseport ? apply_reuseport(cfg, why) : 0;
}

static int lb_setup(weft_server *s, void *ud)
{
    (void)ud;
    lb_cfg.nworkers = weft_server_workers(s);
    lb_workers = calloc((size_t)lb_cfg.nworkers, sizeof(*lb_workers));
    if (!lb_workers)
        return -ENOMEM;
    int rc = lb_admin_setup(s);
    if (rc == 0)
        rc = weft_server_worker_hooks(s, lb_worker_start, lb_worker_stop, NULL);
    if (rc == 0 && lb_cfg.health_path)
        rc = weft_post(s, 0, lb_health_start, NULL);
    if (rc != 0)
        return rc;
    /* SIGHUP goes to the reload thread only: the mask set here is
     * inherited by the threads weft starts after setup. */
    static sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);
    if (pthread_create(&g_hup_thread, NULL, hup_main, &hup) == 0)
        g_hup_started = 1;
    return 0;
}

static void lb_teardown(weft_server *s, void *ud)
{
    (void)s;
    (void)ud;
    if (g_hup_started) {
        __atomic_store_n(&g_hup_stop, 1, __ATOMIC_RELEASE);
        pthread_kill(g_hup_thread, SIGHUP);
        pthread_join(g_hup_thread, NULL);
    }
    free(lb_workers);
    lb_workers = NULL;
}

int main(int argc, char **argv)
{
    weft_program prog = {
        .name = "weft-lb",
        .summary = "An HTTP load balancer and reverse proxy on weft (--mode tcp: an L4 proxy).\n"
                   "Requests go to the --backend servers by --balance, with health checks,\n"
                   "retries, pooled keep-alive connections and per-backend limits.",
        .epilog = "Durations (DUR) take ms (the default unit), s or m: 500ms, 2s, 1m.\n"
                  "Admin commands on the stats socket: backends [json], drain, disable,\n"
                  "enable, weight, add, remove (see docs/lb.md).",
        .try_hint = "curl http://%s:%u/",
        .handler = &g_handler,
        .options = lb_options,
        .defaults = lb_defaults,
        .option = lb_option,
        .configure = lb_configure,
        .setup = lb_setup,
        .teardown = lb_teardown,
    };
    return weft_main(argc, argv, &prog);
}
