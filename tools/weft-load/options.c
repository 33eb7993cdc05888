/*
 * tools/weft-load/options.c — the command line: the usage text, the options
 * and their ranges, the mode, the options each mode refuses, the target
 * address, and the descriptor and port limits a run needs. Every error is a
 * message and exit status 2.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "load.h"
#include "weft/version.h"

struct load_config load_cfg;

static const load_mode *const modes[] = {&mode_echo, &mode_rate, &mode_flood, &mode_churn};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: weft-load MODE [options]\n"
            "\n"
            "Load generator for TCP echo servers. Every echoed byte is checked: each message\n"
            "carries its connection id and sequence number and a payload derived from them,\n"
            "so corruption, loss, reordering and cross-connection mixing are detected,\n"
            "reported, and never counted as throughput.\n"
            "\n"
            "Modes:\n"
            "  echo   closed loop: --conns connections, each keeping --depth messages of\n"
            "         --size bytes in flight; a reply releases the next message.\n"
            "  rate   open loop: --rate messages/s in total, round-robin over the\n"
            "         connections, on a fixed schedule; latency is measured from each\n"
            "         message's scheduled send time, so a stalled server is charged for\n"
            "         every message it delays (no coordinated omission).\n"
            "  flood  open --conns connections as fast as allowed, hold them idle for\n"
            "         --hold seconds, then check that each still answers one echo.\n"
            "  churn  connect, one request, close, repeatedly; --conns such cycles run\n"
            "         concurrently; bounded by --count cycles and/or --duration.\n"
            "\n"
            "Options:\n"
            "\n"
            "Target:\n"
            "  --host ADDR            server address or name, IPv4 or IPv6 (default 127.0.0.1)\n"
            "  --port PORT            server port (default 7000)\n"
            "  --sources K            bind client sockets to 127.0.0.1 .. 127.0.0.K round-robin,\n"
            "                         K times the ephemeral ports (needed above ~28K\n"
            "                         connections to one port; IPv4 only; default: no bind)\n"
            "\n"
            "Load:\n"
            "  --conns N              connections (churn: concurrent cycles) (default 100;\n"
            "                         churn 16)\n"
            "  --depth D              echo: messages in flight per connection (default 1)\n"
            "  --size S               message size in bytes, 16 .. %u (default 64)\n"
            "  --rate R               rate: total messages per second (required)\n"
            "  --threads T            client threads (default 2)\n"
            "  --ramp R               connections opened per second (default 0: as fast as\n"
            "                         --connect-inflight allows)\n"
            "  --connect-inflight N   connects in progress at once, all threads (default 256)\n"
            "  --close-rst            churn: close with RST (SO_LINGER 0) instead of FIN, so\n"
            "                         no TIME_WAIT is left on the client side\n"
            "\n"
            "Bounds (every run stops by itself):\n"
            "  --duration SECONDS     length of the measured run after all connections are\n"
            "                         up (default 10, unless --count is given) (not flood)\n"
            "  --count N              echo/rate: total messages; churn: total cycles; with\n"
            "                         --duration, whichever comes first\n"
            "  --warmup SECONDS       first part of the run left out of throughput and\n"
            "                         latency (default 0)\n"
            "  --hold SECONDS         flood: how long to hold the connections (default 10)\n"
            "  --timeout SECONDS      a connect or a reply slower than this is an error,\n"
            "                         and the longest wait for replies at the end (default 5)\n"
            "\n"
            "Output:\n"
            "  --json                 print the results as one JSON object on stdout\n"
            "                         (diagnostics go to stderr)\n"
            "  -h, --help             this text\n"
            "  -V, --version          print the version\n"
            "\n"
            "Reported: messages/s and MB/s (verified echoed bytes received, 10^6 bytes)\n"
            "inside the window; latency p50/p90/p99/p99.9/max (log-linear histogram, within\n"
            "1%% from 1 us to 60 s); connect time statistics; connections established and\n"
            "failed (refused, timed out, no local address/port, other); errors by kind:\n"
            "mismatches (corrupted bytes, another connection's data, wrong sequence,\n"
            "extra bytes), resets, short (peer closed with replies outstanding), timeouts,\n"
            "peer-closed (an idle connection closed by the server).\n"
            "\n"
            "The soft RLIMIT_NOFILE is raised to the hard limit; the run is refused if\n"
            "the connections need more descriptors than that.\n"
            "\n"
            "Exit status: 0 when every message was verified and nothing failed; 1 on any\n"
            "mismatch, when fewer than --conns connections were established (echo, rate,\n"
            "flood), on any connect failure (churn), reset, short read, timeout, peer close,\n"
            "failed flood check, or when stopped early by SIGINT/SIGTERM (the report of what\n"
            "ran is still printed); 2 on bad arguments or a setup error.\n",
            MAX_SIZE);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft-load: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(weft-load --help describes every option)\n", stderr);
    exit(2);
}

static uint64_t parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        die_usage("%s: expected a whole number from %" PRIu64 " to %" PRIu64 ", got '%s'", opt, min,
                  max, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        die_usage("%s: expected a whole number from %" PRIu64 " to %" PRIu64 ", got '%s'", opt, min,
                  max, s);
    return v;
}

static double parse_secs(const char *opt, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        die_usage("%s: expected a number from %g to %g, got '%s'", opt, min, max, s);
    return v;
}

enum {
    O_HOST = 256,
    O_PORT,
    O_CONNS,
    O_DEPTH,
    O_SIZE,
    O_RATE,
    O_THREADS,
    O_SOURCES,
    O_RAMP,
    O_INFLIGHT,
    O_DURATION,
    O_COUNT,
    O_WARMUP,
    O_HOLD,
    O_TIMEOUT,
    O_JSON,
    O_RST,
};

static void resolve(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res;
    char port[16];
    snprintf(port, sizeof(port), "%u", load_cfg.port);
    int rc = getaddrinfo(load_cfg.host, port, &hints, &res);
    if (rc != 0)
        die_usage("--host %s: %s", load_cfg.host, gai_strerror(rc));
    memcpy(&load_cfg.dst, res->ai_addr, res->ai_addrlen);
    load_cfg.dstlen = res->ai_addrlen;
    load_cfg.family = res->ai_family;
    freeaddrinfo(res);
}

static const struct option long_opts[] = {
    {"host", required_argument, 0, O_HOST},
    {"port", required_argument, 0, O_PORT},
    {"conns", required_argument, 0, O_CONNS},
    {"depth", required_argument, 0, O_DEPTH},
    {"size", required_argument, 0, O_SIZE},
    {"rate", required_argument, 0, O_RATE},
    {"threads", required_argument, 0, O_THREADS},
    {"sources", required_argument, 0, O_SOURCES},
    {"ramp", required_argument, 0, O_RAMP},
    {"connect-inflight", required_argument, 0, O_INFLIGHT},
    {"duration", required_argument, 0, O_DURATION},
    {"count", required_argument, 0, O_COUNT},
    {"warmup", required_argument, 0, O_WARMUP},
    {"hold", required_argument, 0, O_HOLD},
    {"timeout", required_argument, 0, O_TIMEOUT},
    {"json", no_argument, 0, O_JSON},
    {"close-rst", no_argument, 0, O_RST},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'},
    {0, 0, 0, 0},
};

/* Stores the value of option o (an O_ code), range-checked; opt names it. */
static void set_option(int o, const char *opt, const char *arg)
{
    struct load_config *cfg = &load_cfg;
    switch (o) {
    case O_HOST:
        cfg->host = arg;
        break;
    case O_PORT:
        cfg->port = (unsigned)parse_uint(opt, arg, 1, 65535);
        break;
    case O_CONNS:
        cfg->conns = (uint32_t)parse_uint(opt, arg, 1, 10000000);
        break;
    case O_DEPTH:
        cfg->depth = (uint32_t)parse_uint(opt, arg, 1, 65536);
        break;
    case O_SIZE:
        cfg->size = (uint32_t)parse_uint(opt, arg, HDR_SIZE, MAX_SIZE);
        break;
    case O_RATE:
        cfg->rate = parse_secs(opt, arg, 1e-3, 1e9);
        break;
    case O_THREADS:
        cfg->threads = (uint32_t)parse_uint(opt, arg, 1, 256);
        break;
    case O_SOURCES:
        cfg->sources = (uint32_t)parse_uint(opt, arg, 1, 254);
        break;
    case O_RAMP:
        cfg->ramp = parse_secs(opt, arg, 0, 1e9);
        break;
    case O_INFLIGHT:
        cfg->connect_inflight = (uint32_t)parse_uint(opt, arg, 1, 1000000);
        break;
    case O_DURATION:
        cfg->duration = parse_secs(opt, arg, 0.001, 86400);
        break;
    case O_COUNT:
        cfg->count = parse_uint(opt, arg, 1, UINT64_MAX / 2);
        break;
    case O_WARMUP:
        cfg->warmup = parse_secs(opt, arg, 0, 86400);
        break;
    case O_HOLD:
        cfg->hold = parse_secs(opt, arg, 0, 86400);
        break;
    case O_TIMEOUT:
        cfg->timeout = parse_secs(opt, arg, 0.001, 3600);
        break;
    case O_JSON:
        cfg->json = 1;
        break;
    case O_RST:
        cfg->close_rst = 1;
        break;
    }
}

/* The mode named by the first operand, and no other operand. */
static void parse_mode(int argc, char **argv)
{
    if (optind >= argc)
        die_usage("missing MODE: one of echo, rate, flood, churn");
    const char *m = argv[optind++];
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(m, modes[i]->name) == 0)
            load_cfg.mode = modes[i];
    if (!load_cfg.mode)
        die_usage("unknown mode '%s': expected echo, rate, flood or churn", m);
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
}

/* Options that mean nothing in this mode are refused, not ignored; then the
 * defaults that depend on the mode. seen[O_x] says whether O_x was given. */
static void apply_mode(const int *seen)
{
    struct load_config *cfg = &load_cfg;
    if (seen[O_DEPTH] && cfg->mode != &mode_echo)
        die_usage("--depth applies to echo mode only");
    if (seen[O_RATE] && cfg->mode != &mode_rate)
        die_usage("--rate applies to rate mode only");
    if (cfg->mode == &mode_rate && !seen[O_RATE])
        die_usage("rate mode needs --rate MSGS_PER_SECOND");
    if (seen[O_HOLD] && cfg->mode != &mode_flood)
        die_usage("--hold applies to flood mode only");
    if (cfg->mode == &mode_flood && (seen[O_DURATION] || seen[O_COUNT] || seen[O_WARMUP]))
        die_usage("flood mode runs for --hold; --duration, --count and --warmup do not apply");
    if (seen[O_RST] && cfg->mode != &mode_churn)
        die_usage("--close-rst applies to churn mode only");

    if (!seen[O_CONNS])
        cfg->conns = cfg->mode == &mode_churn ? 16 : 100;
    /* --count alone bounds the run by count; the reply timeout still ends it
     * if the server stops answering. */
    cfg->have_duration = cfg->mode != &mode_flood && (seen[O_DURATION] || !seen[O_COUNT]);
    if (cfg->have_duration && cfg->warmup >= cfg->duration)
        die_usage("--warmup (%g s) must be shorter than --duration (%g s)", cfg->warmup,
                  cfg->duration);
    if (cfg->threads > cfg->conns)
        cfg->threads = cfg->conns; /* a thread without connections has nothing to do */
}

void options_parse(int argc, char **argv)
{
    int seen[O_RST + 1] = {0};
    load_cfg.host = "127.0.0.1";
    load_cfg.port = 7000;
    load_cfg.depth = 1;
    load_cfg.size = 64;
    load_cfg.threads = 2;
    load_cfg.connect_inflight = 256;
    load_cfg.duration = 10;
    load_cfg.hold = 10;
    load_cfg.timeout = 5;

    int o;
    while ((o = getopt_long(argc, argv, "hV", long_opts, NULL)) != -1) {
        if (o == 'h') {
            usage(stdout);
            exit(0);
        }
        if (o == 'V') {
            printf("weft-load %s\n", WEFT_VERSION);
            exit(0);
        }
        if (o < O_HOST || o > O_RST)
            die_usage("unknown option or missing value (see above)");
        char opt[40];
        snprintf(opt, sizeof(opt), "--%s", long_opts[o - O_HOST].name);
        seen[o] = 1;
        set_option(o, opt, optarg);
    }
    parse_mode(argc, argv);
    apply_mode(seen);
    resolve();
    if (load_cfg.sources && load_cfg.family != AF_INET)
        die_usage("--sources binds to 127.0.0.x, so it needs an IPv4 --host (got %s)",
                  load_cfg.host);
}

void options_check_limits(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "weft-load: getrlimit: %s\n", strerror(errno));
        exit(2);
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            fprintf(stderr, "weft-load: setrlimit(RLIMIT_NOFILE, %llu): %s\n",
                    (unsigned long long)rl.rlim_max, strerror(errno));
            exit(2);
        }
    }
    /* stdio, one epoll set per thread, and a little slack. */
    uint64_t need = (uint64_t)load_cfg.conns + load_cfg.threads + 8;
    if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
        fprintf(stderr,
                "weft-load: --conns %" PRIu32 " needs about %" PRIu64
                " file descriptors, but the hard limit (ulimit -Hn) is %llu; lower --conns or "
                "raise the hard limit\n",
                load_cfg.conns, need, (unsigned long long)rl.rlim_cur);
        exit(2);
    }
    /* Ports: one destination gives each source address one ephemeral range. */
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    unsigned lo, hi;
    if (f && fscanf(f, "%u %u", &lo, &hi) == 2 && hi >= lo && load_cfg.mode != &mode_churn) {
        uint64_t ports = (uint64_t)(hi - lo + 1) * (load_cfg.sources ? load_cfg.sources : 1);
        if (load_cfg.conns > ports) {
            fprintf(stderr,
                    "weft-load: --conns %" PRIu32 " exceeds the %" PRIu64
                    " local ports available towards one server port (ip_local_port_range %u-%u"
                    "%s); use --sources K to spread over 127.0.0.1..K\n",
                    load_cfg.conns, ports, lo, hi, load_cfg.sources ? ", per source" : "");
            exit(2);
        }
    }
    if (f)
        fclose(f);
}
