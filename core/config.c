/*
 * core/config.c — configuration defaults and validation.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "weft/weft.h"
#include "workers/cpu.h"
#include "workers/io.h"

weft_config weft_config_default(void)
{
    weft_config c;
    memset(&c, 0, sizeof(c));
    c.bind_addr = "127.0.0.1";
    c.port = 7000;
    c.backlog = 4096;
    c.workers = 0;
    c.pin = WEFT_PIN_NODE;
    c.max_conns = 0;
    /*
     * 16 KiB rings: one read(2) takes a full loopback segment burst for
     * typical request sizes, and a borrowed ring is a single jemalloc size
     * class. Rings grow by doubling only while a handler holds a partial
     * message or output is pending.
     */
    c.ring_size = 16384;
    /*
     * 64 KiB per connection per turn (Redis's NET_MAX_WRITES_PER_EVENT has
     * the same role for output): large enough that a bulk sender moves
     * several rings' worth per wake-up, small enough that 1,000 ready
     * connections get a turn within a few milliseconds.
     */
    c.read_budget = 65536;
    c.output_high_wm = 262144;
    c.output_low_wm = 65536;
    c.input_cap = 1u << 20;
    c.output_cap = 4u << 20;
    c.pool_cache_bytes = 4u << 20;
    /*
     * 512 MiB of rings per worker: room for 2,000 connections at the 256 KiB
     * high watermark, yet a flood of slow readers cannot take the machine.
     */
    c.pool_max_bytes = 512u << 20;
    c.shutdown_timeout_ms = 5000;
    /*
     * Timeouts for an internet-facing server (compare nginx's 60 s
     * client_body_timeout and send_timeout, 75 s keepalive_timeout): a
     * client idle for two minutes holds memory and an fd for nothing; 30 s
     * without a byte in the middle of a message is a slowloris, not a slow
     * network; 60 s without the peer taking a byte is a dead reader.
     */
    c.idle_timeout_ms = 120000;
    c.input_stall_ms = 30000;
    c.output_stall_ms = 60000;
    c.close_linger_ms = 2000;
    c.stats_interval_ms = 1000;
    c.admin_socket = NULL;
    c.metrics_port = 0;
    c.metrics_bind = "127.0.0.1";
    c.io = NULL; /* epoll */
    /* A client on a slow network finishes a handshake in a second or two;
     * ten leaves room for a loaded machine, not for a TLS slowloris. */
    c.tls_handshake_ms = 10000;
    c.log = NULL;
    c.log_ud = NULL;
    c.log_level = WEFT_LOG_INFO;
    return c;
}

static int is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

/* Every CPU of c->cpus is one this process may run on. */
static int cpus_allowed(const weft_config *c)
{
    int mask[WEFT_MAX_CPUS];
    int n = cpu_affinity_list(mask, WEFT_MAX_CPUS);
    if (n < 0)
        return 1; /* unknown: pinning will say so */
    for (int i = 0; i < c->ncpus; i++) {
        int found = 0;
        for (int k = 0; k < n && !found; k++)
            found = mask[k] == c->cpus[i];
        if (!found)
            return 0;
    }
    return 1;
}

int weft_config_validate(const weft_config *c, const char **why)
{
    const char *w = NULL;
    if (c->nlisten < 0 || c->nlisten > WEFT_MAX_LISTENERS)
        w = "nlisten must be between 0 and 16";
    else if (c->backlog < 1)
        w = "backlog must be at least 1";
    else if (c->workers < 0 || c->workers > WEFT_MAX_CPUS)
        w = "workers must be between 0 (one per CPU) and 1024";
    else if (c->pin < WEFT_PIN_NODE || c->pin > WEFT_PIN_NONE)
        w = "pin must be WEFT_PIN_NODE, WEFT_PIN_CPU or WEFT_PIN_NONE";
    else if (c->ncpus < 0 || c->ncpus > WEFT_MAX_CPUS)
        w = "ncpus must be between 0 and 1024";
    else if (c->max_conns_per_worker < 0)
        w = "max_conns_per_worker must be 0 (no cap) or positive";
    else if (c->pool_max_bytes && c->pool_max_bytes < c->ring_size)
        w = "pool_max_bytes must be 0 (no cap) or at least ring_size";
    else if (c->max_conns < 0)
        w = "max_conns must be 0 (automatic) or positive";
    else if (!is_pow2(c->ring_size) || c->ring_size < 64 || c->ring_size > (1u << 30))
        w = "ring_size must be a power of two between 64 and 1 GiB";
    else if (c->read_budget < 1)
        w = "read_budget must be at least 1";
    else if (c->output_low_wm >= c->output_high_wm)
        w = "output_low_wm must be below output_high_wm";
    else if (c->output_cap < c->output_high_wm)
        w = "output_cap must be at least output_high_wm";
    else if (c->input_cap < 64 || c->input_cap > (1u << 30))
        w = "input_cap must be between 64 bytes and 1 GiB";
    else if (c->output_cap > (1u << 30))
        w = "output_cap must be at most 1 GiB";
    else if (c->idle_timeout_ms > 86400000 || c->input_stall_ms > 86400000 ||
             c->output_stall_ms > 86400000)
        w = "timeouts must be at most one day";
    else if (c->close_linger_ms > 3600000)
        w = "close_linger_ms must be at most one hour";
    else if (c->stats_interval_ms > 3600000)
        w = "stats_interval_ms must be at most one hour";
    else if (c->admin_socket && strlen(c->admin_socket) >= 108)
        w = "admin_socket path must be shorter than 108 bytes";
    else if (c->metrics_port && (!c->metrics_bind || !*c->metrics_bind))
        w = "metrics_bind is empty";
    else if (!wk_io_find(c->io ? c->io : getenv("WEFT_IO")))
        w = "io (or the WEFT_IO environment variable) must name an I/O backend: epoll, poll or "
            "uring";
    else if (c->log_level < WEFT_LOG_ERROR || c->log_level > WEFT_LOG_DEBUG)
        w = "log_level must be one of WEFT_LOG_ERROR..WEFT_LOG_DEBUG";
    else if (!c->tls_cert != !c->tls_key)
        w = "tls_cert and tls_key go together: give both or neither";
    else if ((c->tls_cert && strchr(c->tls_cert, ',')) || (c->tls_key && strchr(c->tls_key, ',')))
        w = "tls_cert and tls_key file names cannot contain ','";
    else if (c->tls_handshake_ms < 1 || c->tls_handshake_ms > 3600000)
        w = "tls_handshake_ms must be between 1 ms and one hour";
    for (int i = 0; !w && i < c->ncpus; i++)
        if (c->cpus[i] < 0 || c->cpus[i] >= WEFT_MAX_CPUS)
            w = "cpus[] entries must be between 0 and 1023";
    for (int i = 0; !w && i < c->nlisten; i++) {
        weft_listener_opts o;
        if (weft_listener_parse(c->listen[i], &o, &w) != 0 && !w)
            w = "a listen[] spec is not valid";
    }
    if (!w && c->ncpus > 0 && !cpus_allowed(c))
        w = "cpus names a CPU outside this process's affinity mask (see taskset -p)";
    if (why)
        *why = w;
    return w ? -EINVAL : 0;
}

int weft_parse_number(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -EINVAL;
    long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1024LL * 1024 * 1024, end++;
    if (*end || v > LLONG_MAX / mul)
        return -EINVAL;
    v *= mul;
    if (v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

int weft_parse_cpus(const char *s, weft_config *cfg)
{
    cfg->ncpus = 0;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b;
        if (end == s || a < 0 || a >= WEFT_MAX_CPUS)
            return -EINVAL;
        b = a;
        s = end;
        if (*s == '-') {
            b = strtol(s + 1, &end, 10);
            if (end == s + 1 || b < a || b >= WEFT_MAX_CPUS)
                return -EINVAL;
            s = end;
        }
        for (long c = a; c <= b; c++) {
            if (cfg->ncpus >= WEFT_MAX_CPUS)
                return -EINVAL;
            for (int k = 0; k < cfg->ncpus; k++)
                if (cfg->cpus[k] == (int)c)
                    return -EINVAL; /* listed twice: two workers on one CPU */
            cfg->cpus[cfg->ncpus++] = (int)c;
        }
        if (*s == ',')
            s++;
        else if (*s)
            return -EINVAL;
    }
    return cfg->ncpus > 0 ? 0 : -EINVAL;
}

/* ---- command-line options ---------------------------------------------------- */

/* How an option's argument is stored. */
enum { K_STR, K_U16, K_U32, K_INT, K_CPUS, K_NOPIN, K_IO, K_LISTEN, K_PIN };

/* What each option sets; g_opt_names[i] names g_opts[i]. */
typedef struct cfg_opt {
    unsigned char kind;
    size_t off; /* of the field in weft_config */
    long long lo, hi;
    const char *why; /* for a bad value */
} cfg_opt;

#define F(field)      offsetof(weft_config, field)
#define RANGE(lo, hi) (lo), (hi), "expected a number from " #lo " to " #hi
/*
 * The help text says what the option does; "(default ...)" is added from
 * the program's own defaults for numbers and strings (see core/program.c),
 * except where the default is a rule rather than a value (then the text
 * says it, and g_nodef lists the option).
 */
static const weft_option g_opt_names[] = {
    {"bind", 1, "ADDR", "IPv4 or IPv6 address to listen on ('::' for both families)"},
    {"port", 1, "N", "TCP port (0 picks a free one)"},
    {"backlog", 1, "N", "listen(2) backlog"},
    {"workers", 1, "N", "worker threads (default: one per CPU of the affinity mask)"},
    {"cpus", 1, "LIST",
     "CPUs for the workers, each once, e.g. 0-3,8 (default: the\n"
     "affinity mask); worker i gets the i-th CPU, pinned to it\n"
     "unless --pin says otherwise"},
    {"no-pin", 0, NULL, "the same as --pin none"},
    {"pin", 1, "MODE",
     "where workers run: node (each on its NUMA node's CPUs and\n"
     "memory; the default), cpu (each on one CPU: for cores the\n"
     "server owns; the default with --cpus) or none"},
    {"max-conns", 1, "N",
     "connections open at once (default: from the fd limit);\n"
     "more are closed at accept"},
    {"max-conns-per-worker", 1, "N", "connections one worker holds (0: no cap)"},
    {"ring-size", 1, "BYTES", "initial ring capacity, a power of two"},
    {"read-budget", 1, "BYTES", "bytes read from one connection per turn"},
    {"output-high-wm", 1, "BYTES",
     "pause reading above this much pending output; also\n"
     "the most the kernel holds unsent (TCP_NOTSENT_LOWAT)"},
    {"output-low-wm", 1, "BYTES", "resume reading below this much"},
    {"input-cap", 1, "BYTES", "close when unconsumed input reaches this"},
    {"output-cap", 1, "BYTES", "close when pending output would pass this"},
    {"pool-max", 1, "BYTES",
     "ring memory one worker may hold; reading pauses at it\n"
     "(0: no cap)"},
    {"pool-cache", 1, "BYTES", "ring memory kept per worker for reuse"},
    {"sndbuf", 1, "BYTES", "SO_SNDBUF per connection (0: the kernel's autotuning)"},
    {"shutdown-timeout", 1, "MS", "how long a stop waits for pending output"},
    {"idle-timeout", 1, "MS",
     "close after this long with no input and no output\n"
     "(0: never)"},
    {"input-stall", 1, "MS",
     "close when a partial message is still incomplete this\n"
     "long after it began (0: never)"},
    {"output-stall", 1, "MS",
     "close when output waits and the peer takes no byte for\n"
     "this long (0: never)"},
    {"close-linger", 1, "MS",
     "after a graceful close, discard input for up to this\n"
     "long before close(2) (0: off)"},
    {"stats-interval", 1, "MS",
     "how often stats are sampled (0: stats, admin socket\n"
     "and latency timing off)"},
    {"stats-socket", 1, "PATH",
     "admin Unix socket, queried by weft-stat (default\n"
     "/tmp/weft-PORT.sock; '' for none)"},
    {"metrics-port", 1, "N", "serve Prometheus GET /metrics on this port (0: off)"},
    {"metrics-bind", 1, "ADDR", "address of the metrics listener"},
    {"io", 1, "NAME",
     "I/O backend: epoll, poll or uring (io_uring; epoll where the kernel refuses it) (default: "
     "$WEFT_IO, else epoll)"},
    {"listen", 1, "SPEC",
     "another listener, repeatable: ADDR[,option...] where ADDR is\n"
     "HOST:PORT, [IPv6]:PORT or unix:/PATH and the options are\n"
     "name=N, backlog=N, reuseport, nagle (TCP_NODELAY is on otherwise),\n"
     "keepalive=S, mode=OCTAL,\n"
     "max-conns=N, rate=N (accepts/s), burst=N, per-source=N,\n"
     "tls-cert=FILE, tls-key=FILE (up to 4 pairs: SNI), alpn=P1:P2.\n"
     "With --listen and neither --bind nor --port, only these listen"},
    {"tls-cert", 1, "FILE",
     "serve TLS on --bind/--port with this PEM certificate\n"
     "(chain allowed); needs --tls-key. Admin tls-reload or\n"
     "SIGHUP (a successor) loads it again"},
    {"tls-key", 1, "FILE", "the private key (PEM) for --tls-cert"},
    {"tls-alpn", 1, "LIST", "protocols offered by ALPN, comma-separated (http/1.1)"},
    {"tls-handshake-timeout", 1, "MS", "close a TLS connection whose handshake takes longer"},
};
/* Options whose default the help text states itself. */
static const char *const g_nodef[] = {"workers",   "cpus",         "no-pin", "pin",
                                      "max-conns", "stats-socket", "io"};
static const cfg_opt g_opts[] = {
    {K_STR, F(bind_addr), 0, 0, NULL},
    {K_U16, F(port), RANGE(0, 65535)},
    {K_INT, F(backlog), RANGE(1, 2147483647)},
    {K_INT, F(workers), RANGE(0, 1024)},
    {K_CPUS, 0, 0, 0, "expected a CPU list such as 0-3,8, each CPU once"},
    {K_NOPIN, 0, 0, 0, NULL},
    {K_PIN, 0, 0, 0, "expected node, cpu or none"},
    {K_INT, F(max_conns), RANGE(0, 2147483647)},
    {K_INT, F(max_conns_per_worker), RANGE(0, 2147483647)},
    {K_U32, F(ring_size), RANGE(64, 1073741824)},
    {K_U32, F(read_budget), RANGE(1, 1073741824)},
    {K_U32, F(output_high_wm), RANGE(1, 1073741824)},
    {K_U32, F(output_low_wm), RANGE(0, 1073741824)},
    {K_U32, F(input_cap), RANGE(64, 1073741824)},
    {K_U32, F(output_cap), RANGE(1, 1073741824)},
    {K_U32, F(pool_max_bytes), RANGE(0, 4294967295)},
    {K_U32, F(pool_cache_bytes), RANGE(0, 1073741824)},
    {K_U32, F(sndbuf), RANGE(0, 1073741824)},
    {K_U32, F(shutdown_timeout_ms), RANGE(0, 3600000)},
    {K_U32, F(idle_timeout_ms), RANGE(0, 86400000)},
    {K_U32, F(input_stall_ms), RANGE(0, 86400000)},
    {K_U32, F(output_stall_ms), RANGE(0, 86400000)},
    {K_U32, F(close_linger_ms), RANGE(0, 3600000)},
    {K_U32, F(stats_interval_ms), RANGE(0, 3600000)},
    {K_STR, F(admin_socket), 0, 0, NULL},
    {K_U16, F(metrics_port), RANGE(0, 65535)},
    {K_STR, F(metrics_bind), 0, 0, NULL},
    {K_IO, F(io), 0, 0, "expected an I/O backend: epoll, poll or uring"},
    {K_LISTEN, 0, 0, 0, "at most 16 listeners"},
    {K_STR, F(tls_cert), 0, 0, NULL},
    {K_STR, F(tls_key), 0, 0, NULL},
    {K_STR, F(tls_alpn), 0, 0, NULL},
    {K_U32, F(tls_handshake_ms), RANGE(1, 3600000)},
};
#undef F
#undef RANGE
#define NOPTS (sizeof(g_opts) / sizeof(g_opts[0]))
_Static_assert(sizeof(g_opt_names) / sizeof(g_opt_names[0]) == NOPTS, "one name per option");
_Static_assert(WEFT_MAX_CPUS == 1024, "the workers range above says 1024");

const weft_option *weft_config_options(size_t *n)
{
    *n = NOPTS;
    return g_opt_names;
}

int weft_config_option(weft_config *cfg, const char *name, const char *arg, const char **why)
{
    const char *w = NULL;
    size_t i = 0;
    while (i < NOPTS && strcmp(g_opt_names[i].name, name) != 0)
        i++;
    if (i == NOPTS)
        return -ENOENT;
    const cfg_opt *o = &g_opts[i];
    char *dst = (char *)cfg + o->off;
    long long v = 0;
    if (g_opt_names[i].has_arg && !arg)
        w = "expected a value";
    else if (o->kind == K_STR)
        memcpy(dst, &arg, sizeof(arg));
    else if (o->kind == K_LISTEN) {
        weft_listener_opts lo;
        if (cfg->nlisten >= WEFT_MAX_LISTENERS)
            w = o->why;
        else if (weft_listener_parse(arg, &lo, &w) == 0)
            cfg->listen[cfg->nlisten++] = arg;
    } else if (o->kind == K_IO) {
        if (wk_io_find(arg) && *arg)
            memcpy(dst, &arg, sizeof(arg));
        else
            w = o->why;
    } else if (o->kind == K_NOPIN)
        cfg->pin = WEFT_PIN_NONE;
    else if (o->kind == K_PIN) {
        if (!strcmp(arg, "node"))
            cfg->pin = WEFT_PIN_NODE;
        else if (!strcmp(arg, "cpu"))
            cfg->pin = WEFT_PIN_CPU;
        else if (!strcmp(arg, "none"))
            cfg->pin = WEFT_PIN_NONE;
        else
            w = o->why;
    } else if (o->kind == K_CPUS) {
        if (weft_parse_cpus(arg, cfg) != 0)
            w = o->why;
    } else if (weft_parse_number(arg, o->lo, o->hi, &v) != 0)
        w = o->why;
    else if (o->kind == K_U16)
        *(uint16_t *)(void *)dst = (uint16_t)v;
    else if (o->kind == K_U32)
        *(uint32_t *)(void *)dst = (uint32_t)v;
    else
        *(int *)(void *)dst = (int)v;
    if (why)
        *why = w;
    return w ? -EINVAL : 0;
}

int cfg_option_default(const weft_config *cfg, size_t i, char *buf, size_t len)
{
    if (i >= NOPTS)
        return -ENOENT;
    for (size_t k = 0; k < sizeof(g_nodef) / sizeof(g_nodef[0]); k++)
        if (strcmp(g_nodef[k], g_opt_names[i].name) == 0)
            return -ENOENT;
    const cfg_opt *o = &g_opts[i];
    if (o->kind != K_STR && o->kind != K_U16 && o->kind != K_U32 && o->kind != K_INT)
        return -ENOENT;
    return cfg_option_value(cfg, i, buf, len);
}

/* The CPU list of cfg as weft_parse_cpus reads it ("0,1,5"). */
static void cpus_text(const weft_config *cfg, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < cfg->ncpus && n < len; k++)
        n += (size_t)snprintf(buf + n, len - n, "%s%d", k ? "," : "", cfg->cpus[k]);
}

int cfg_option_value(const weft_config *cfg, size_t i, char *buf, size_t len)
{
    if (i >= NOPTS)
        return -ENOENT;
    const cfg_opt *o = &g_opts[i];
    const char *src = (const char *)cfg + o->off;
    if (o->kind == K_STR || o->kind == K_IO) {
        const char *v;
        memcpy(&v, src, sizeof(v));
        if (!v && o->kind == K_IO)
            return -ENOENT; /* the rule: $WEFT_IO, else epoll */
        snprintf(buf, len, "%s", v ? v : "");
    } else if (o->kind == K_U16) {
        snprintf(buf, len, "%u", *(const uint16_t *)(const void *)src);
    } else if (o->kind == K_U32) {
        snprintf(buf, len, "%u", *(const uint32_t *)(const void *)src);
    } else if (o->kind == K_INT) {
        snprintf(buf, len, "%d", *(const int *)(const void *)src);
    } else if (o->kind == K_PIN) {
        snprintf(buf, len, "%s",
                 cfg->pin == WEFT_PIN_CPU    ? "cpu"
                 : cfg->pin == WEFT_PIN_NONE ? "none"
                                             : "node");
    } else if (o->kind == K_CPUS && cfg->ncpus > 0) {
        cpus_text(cfg, buf, len);
    } else {
        return -ENOENT; /* no-pin (pin says it), listen (repeated), no cpus */
    }
    return 0;
}
