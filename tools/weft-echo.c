/*
 * weft-echo — the reference server: echoes every byte back, in order, on
 * every connection. Its options are named after the weft_config fields.
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

#include "weft/weft.h"

static weft_server *g_server;

static void on_signal(int sig)
{
    (void)sig;
    if (g_server)
        weft_server_stop(g_server);
}

static void echo_data(weft_conn *c, weft_ring *in)
{
    /* Moving the whole ring hands its storage to the output: no copy. */
    weft_send_from(c, in, weft_ring_len(in));
}

/*
 * --lines: echo complete newline-terminated lines only. A partial line stays
 * in the input ring (so the input-stall timeout and the input cap, which
 * --max-line sets, apply to it); the connection's user data remembers how
 * far the ring was already searched, so a long partial line is scanned once.
 */
static int g_lines;

static void lines_data(weft_conn *c, weft_ring *in)
{
    size_t from = (size_t)(uintptr_t)weft_conn_userdata(c);
    long nl;
    while ((nl = weft_ring_find(in, from, '\n')) >= 0) {
        if (weft_send_from(c, in, (size_t)nl + 1) < 0)
            return;
        from = 0;
    }
    weft_conn_set_userdata(c, (void *)(uintptr_t)weft_ring_len(in));
}

static void usage(FILE *f)
{
    weft_config d = weft_config_default();
    fprintf(f,
            "usage: weft-echo [options]\n"
            "\n"
            "The weft reference server: echoes every byte back on every connection.\n"
            "Stops cleanly on SIGINT or SIGTERM (pending output is flushed first).\n"
            "\n"
            "  --bind ADDR             IPv4 or IPv6 address to listen on (default %s;\n"
            "                          '::' for every address of both families)\n"
            "  --port N                TCP port (default %u; 0 picks a free one)\n"
            "  --backlog N             listen backlog (default %d)\n"
            "  --workers N             worker threads (default: one per CPU in the\n"
            "                          affinity mask)\n"
            "  --cpus LIST             CPUs to pin workers to, e.g. 0-3,8 (default: the\n"
            "                          affinity mask); worker i gets the i-th CPU\n"
            "  --no-pin                do not pin workers to CPUs\n"
            "  --max-conns N           connections open at once (default: from the fd\n"
            "                          limit); more are closed at accept\n"
            "  --ring-size BYTES       initial ring capacity, power of two (default %u)\n"
            "  --read-budget BYTES     bytes read per connection per turn (default %u)\n"
            "  --output-high-wm BYTES  pause reading above this much output (default %u)\n"
            "  --output-low-wm BYTES   resume reading below this (default %u)\n"
            "  --input-cap BYTES       close when unconsumed input reaches this (default %u)\n"
            "  --output-cap BYTES      close when pending output would pass this\n"
            "                          (default %u)\n"
            "  --pool-max BYTES        ring memory one worker may hold; reading pauses\n"
            "                          at it (default %u; 0 = no cap)\n"
            "  --max-conns-per-worker N  connections one worker holds (default 0: no cap)\n"
            "  --sndbuf BYTES          SO_SNDBUF per connection (default 0: the kernel's)\n"
            "  --pool-cache BYTES      ring memory kept per worker for reuse (default %u)\n"
            "  --shutdown-timeout MS   how long a stop waits for output (default %u)\n"
            "  --idle-timeout MS       close after this long with no input and no\n"
            "                          output (default %u; 0 = never)\n"
            "  --input-stall MS        close when a partial message got no byte for this\n"
            "                          long (default %u; 0 = never)\n"
            "  --output-stall MS       close when the peer took no output byte for this\n"
            "                          long (default %u; 0 = never)\n"
            "  --close-linger MS       after a graceful close, discard input for up to\n"
            "                          this long before close(2) (default %u; 0 = off)\n"
            "  --stats-interval MS     how often stats are sampled (default %u; 0 = stats,\n"
            "                          admin socket and latency timing off)\n"
            "  --stats-socket PATH     admin Unix socket (default /tmp/weft-PORT.sock;\n"
            "                          '' for none); query it with weft-stat\n"
            "  --metrics-port N        serve Prometheus GET /metrics on this port (off)\n"
            "  --metrics-bind ADDR     address of the metrics listener (default %s)\n"
            "  --lines                 echo complete newline-terminated lines only; a\n"
            "                          partial line waits (input stall and cap apply)\n"
            "  --max-line BYTES        with --lines: the longest line; a longer one\n"
            "                          closes the connection (sets --input-cap)\n"
            "  -q, --quiet             log errors and warnings only\n"
            "  -v, --verbose           log debug lines too\n"
            "  -h, --help              this text\n"
            "  -V, --version           print the version\n"
            "\n"
            "BYTES accept a K, M or G suffix (powers of 1024).\n",
            d.bind_addr, d.port, d.backlog, d.ring_size, d.read_budget, d.output_high_wm,
            d.output_low_wm, d.input_cap, d.output_cap, d.pool_max_bytes, d.pool_cache_bytes,
            d.shutdown_timeout_ms, d.idle_timeout_ms, d.input_stall_ms, d.output_stall_ms,
            d.close_linger_ms, d.stats_interval_ms, d.metrics_bind);
}

static int fail_arg(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "weft-echo: --%s '%s': %s (see --help)\n", opt, val, why);
    return 2;
}

enum { O_LINES = 1000, O_MAXLINE };

static int parse_args(int argc, char **argv, weft_config *cfg)
{
    /* The server options come from the library (weft_config_options), then ours. */
    static const struct option own[] = {
        {"lines", no_argument, 0, O_LINES},
        {"max-line", required_argument, 0, O_MAXLINE},
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
    int o;
    long long v;
    const char *why;
    while ((o = getopt_long(argc, argv, "qvhV", opts, NULL)) != -1) {
        if (o >= 256 && o < 256 + (int)n) {
            if (weft_config_option(cfg, lib[o - 256].name, optarg, &why) != 0)
                return fail_arg(lib[o - 256].name, optarg, why);
            continue;
        }
        switch (o) {
        case O_LINES:
            g_lines = 1;
            break;
        case O_MAXLINE:
            if (weft_parse_number(optarg, 64, 1 << 30, &v) != 0)
                return fail_arg("max-line", optarg, "expected a number from 64 to 1073741824");
            cfg->input_cap = (uint32_t)v;
            break;
        case 'q':
            cfg->log_level = WEFT_LOG_WARN;
            break;
        case 'v':
            cfg->log_level = WEFT_LOG_DEBUG;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("weft-echo %s\n", WEFT_VERSION);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weft-echo: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (weft_config_validate(cfg, &why) != 0) {
        fprintf(stderr, "weft-echo: invalid configuration: %s\n", why);
        return 2;
    }
    return 0;
}

/*
 * Raise the soft fd limit to the hard one (10K connections need 10K fds;
 * the usual soft default is 1024) and say when even that cannot reach
 * --max-conns.
 */
static void raise_nofile(const weft_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            printf("weft-echo: raised the open-file limit from %llu to %llu\n",
                   (unsigned long long)old, (unsigned long long)rl.rlim_cur);
    }
    if (cfg->max_conns > 0 && rl.rlim_max != RLIM_INFINITY &&
        (rlim_t)cfg->max_conns + 64 > rl.rlim_max)
        fprintf(stderr,
                "weft-echo: warning: --max-conns %d needs about %d fds but the hard "
                "RLIMIT_NOFILE is %llu; connections beyond the limit will fail at accept "
                "(raise the hard limit: ulimit -Hn, /etc/security/limits.conf or systemd "
                "LimitNOFILE)\n",
                cfg->max_conns, cfg->max_conns + 64, (unsigned long long)rl.rlim_max);
}

int main(int argc, char **argv)
{
    weft_config cfg = weft_config_default();
    int rc = parse_args(argc, argv, &cfg);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_nofile(&cfg);

    weft_handler h = {.on_data = g_lines ? lines_data : echo_data};
    weft_server *s;
    rc = weft_server_new(&cfg, &h, NULL, &s);
    if (rc != 0) {
        fprintf(stderr, "weft-echo: cannot start on %s port %u: %s\n", cfg.bind_addr, cfg.port,
                weft_strerror(rc));
        return 1;
    }
    g_server = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = weft_server_start(s);
    if (rc != 0) {
        fprintf(stderr, "weft-echo: cannot start: %s\n", weft_strerror(rc));
        weft_server_free(s);
        return 1;
    }
    int n = weft_server_workers(s);
    const char *b = cfg.bind_addr;
    int v6 = strchr(b, ':') != NULL;
    printf("weft-echo %s: listening on %s%s%s:%u, %d worker%s, max %d connections\n", WEFT_VERSION,
           v6 ? "[" : "", b, v6 ? "]" : "", weft_server_port(s), n, n == 1 ? "" : "s",
           weft_server_max_conns(s));
    for (int i = 0; i < n; i++) {
        int cpu, node;
        weft_server_worker_cpu(s, i, &cpu, &node);
        char cs[16] = "unpinned", ns[16] = "unknown";
        if (cpu >= 0)
            snprintf(cs, sizeof(cs), "%d", cpu);
        if (node >= 0)
            snprintf(ns, sizeof(ns), "%d", node);
        printf("weft-echo: worker %d on cpu %s, numa node %s\n", i, cs, ns);
    }
    const char *admin = weft_server_admin_path(s);
    if (admin)
        printf("weft-echo: admin socket %s (weft-stat --socket %s)\n", admin, admin);
    if (weft_server_metrics_port(s))
        printf("weft-echo: metrics on http://%s:%u/metrics\n", cfg.metrics_bind,
               weft_server_metrics_port(s));
    printf("weft-echo: try: nc %s %u   (Ctrl-C or SIGTERM stops)\n", v6 ? "::1" : "127.0.0.1",
           weft_server_port(s));

    rc = weft_server_wait(s);
    weft_stats st;
    weft_server_stats(s, &st);
    printf("weft-echo: stopped: %llu connections accepted, %llu closed, %llu bytes echoed\n",
           (unsigned long long)st.accepted, (unsigned long long)st.closed,
           (unsigned long long)st.bytes_out);
    weft_server_free(s);
    if (rc != 0) {
        fprintf(stderr, "weft-echo: %s\n", weft_strerror(rc));
        return 1;
    }
    return 0;
}
