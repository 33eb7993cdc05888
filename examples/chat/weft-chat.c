/*
 * weft-chat — a multi-room chat server on weft (examples/chat). Line
 * protocol: /nick NAME, /join ROOM, /leave, /who, /msg NAME TEXT, /quit;
 * other lines go to everyone in the sender's room. See README.md, and
 * chat.c for how rooms spread over the workers stay consistent.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "chat.h"
#include "weft/weft.h"

/* Chat's own defaults, where they differ from weft's. */
#define CHAT_PORT       7070
#define CHAT_MAX_LINE   4096
#define CHAT_OUTPUT_CAP (256u * 1024) /* a member this far behind is dropped */

static weft_server *g_server;

static void on_signal(int sig)
{
    (void)sig;
    if (g_server)
        weft_server_stop(g_server);
}

static void usage(FILE *f)
{
    weft_config d = weft_config_default();
    fprintf(f,
            "usage: weft-chat [options]\n"
            "\n"
            "A multi-room chat server on weft. One line per command or message:\n"
            "  /nick NAME        take a unique nick (1-32 of A-Z a-z 0-9 _ -)\n"
            "  /join ROOM        join a room (leaving the current one)\n"
            "  /leave            leave the current room\n"
            "  /who              list the members of the current room\n"
            "  /msg NAME TEXT    a private message\n"
            "  /quit             close the connection\n"
            "  anything else     '<nick> TEXT' to everyone in the room, you included\n"
            "Stops cleanly on SIGINT or SIGTERM.\n"
            "\n"
            "  --bind ADDR             IPv4 or IPv6 address to listen on (default %s)\n"
            "  --port N                TCP port (default %u; 0 picks a free one)\n"
            "  --backlog N             listen backlog (default %d)\n"
            "  --workers N             worker threads (default: one per CPU)\n"
            "  --cpus LIST             CPUs to pin workers to, e.g. 0-3,8\n"
            "  --no-pin                do not pin workers to CPUs\n"
            "  --max-conns N           connections open at once (default: from the fd limit)\n"
            "  --max-line BYTES        the longest line, newline included (default %u);\n"
            "                          a longer one gets an error and the connection closes\n"
            "  --output-cap BYTES      a member whose unread output would pass this is\n"
            "                          disconnected, so a slow reader never stalls a room\n"
            "                          (default %u)\n"
            "  --sndbuf BYTES          SO_SNDBUF of each connection (default 0: the kernel\n"
            "                          autotunes it, up to 4 MiB, before output-cap counts)\n"
            "  --output-high-wm BYTES  stop reading a member's input above this much\n"
            "                          pending output (default %u, or output-cap/2 when\n"
            "                          that is smaller)\n"
            "  --output-low-wm BYTES   resume reading below this (default %u, or high-wm/4)\n"
            "  --ring-size BYTES       initial ring capacity, power of two (default %u)\n"
            "  --read-budget BYTES     bytes read per connection per turn (default %u)\n"
            "  --pool-cache BYTES      ring memory kept per worker for reuse (default %u)\n"
            "  --shutdown-timeout MS   how long a stop waits for output (default %u)\n"
            "  --idle-timeout MS       close after this long with no input and no output\n"
            "                          (default %u; 0 = never)\n"
            "  --input-stall MS        close when a partial line got no byte for this long\n"
            "                          (default %u; 0 = never)\n"
            "  --output-stall MS       close when the peer took no output byte for this\n"
            "                          long (default %u; 0 = never)\n"
            "  --close-linger MS       after a graceful close, discard input for up to this\n"
            "                          long before close(2) (default %u; 0 = off)\n"
            "  --stats-interval MS     how often stats are sampled (default %u; 0 = off)\n"
            "  --stats-socket PATH     admin Unix socket (default /tmp/weft-PORT.sock; ''\n"
            "                          for none); weft-stat shows the chat_* counters\n"
            "  --metrics-port N        serve Prometheus GET /metrics on this port (off)\n"
            "  --metrics-bind ADDR     address of the metrics listener (default %s)\n"
            "  -q, --quiet             log errors and warnings only\n"
            "  -v, --verbose           log debug lines too\n"
            "  -h, --help              this text\n"
            "  -V, --version           print the version\n"
            "Every server option of weft-echo --help is accepted too (weft_config_options).\n"
            "\n"
            "BYTES accept a K, M or G suffix (powers of 1024).\n",
            d.bind_addr, CHAT_PORT, d.backlog, CHAT_MAX_LINE, CHAT_OUTPUT_CAP, d.output_high_wm,
            d.output_low_wm, d.ring_size, d.read_budget, d.pool_cache_bytes, d.shutdown_timeout_ms,
            d.idle_timeout_ms, d.input_stall_ms, d.output_stall_ms, d.close_linger_ms,
            d.stats_interval_ms, d.metrics_bind);
}

static int fail_arg(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "weft-chat: --%s '%s': %s (see --help)\n", opt, val, why);
    return 2;
}

enum { O_MAXLINE = 1000, O_SNDBUF };

static int parse_args(int argc, char **argv, weft_config *cfg, uint32_t *max_line, int *sndbuf)
{
    /* Ours first (--sndbuf is the chat's own), then the library's server
     * options (weft_config_options). */
    static const struct option own[] = {
        {"max-line", required_argument, 0, O_MAXLINE},
        {"sndbuf", required_argument, 0, O_SNDBUF},
        {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
    };
    enum { NOWN = sizeof(own) / sizeof(own[0]) };
    size_t n;
    const weft_option *lib = weft_config_options(&n);
    struct option opts[NOWN + n + 1];
    memcpy(opts, own, sizeof(own));
    for (size_t i = 0; i < n; i++)
        opts[NOWN + i] = (struct option){lib[i].name, lib[i].has_arg, 0, 256 + (int)i};
    opts[NOWN + n] = (struct option){0, 0, 0, 0};
    int o;
    long long v;
    const char *why;
    bool hwm_set = false, lwm_set = false;
    while ((o = getopt_long(argc, argv, "qvhV", opts, NULL)) != -1) {
        if (o >= 256 && o < 256 + (int)n) {
            const char *name = lib[o - 256].name;
            if (weft_config_option(cfg, name, optarg, &why) != 0)
                return fail_arg(name, optarg, why);
            hwm_set |= strcmp(name, "output-high-wm") == 0;
            lwm_set |= strcmp(name, "output-low-wm") == 0;
            continue;
        }
        switch (o) {
        case O_MAXLINE:
            if (weft_parse_number(optarg, 64, 1 << 24, &v) != 0)
                return fail_arg("max-line", optarg, "expected a number from 64 to 16777216");
            *max_line = (uint32_t)v;
            break;
        case O_SNDBUF:
            if (weft_parse_number(optarg, 0, 1 << 30, &v) != 0)
                return fail_arg("sndbuf", optarg, "expected a number from 0 to 1073741824");
            *sndbuf = (int)v;
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
            printf("weft-chat %s\n", WEFT_VERSION);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weft-chat: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    /* A small --output-cap brings the watermarks down with it unless they were given. */
    if (!hwm_set && cfg->output_high_wm > cfg->output_cap)
        cfg->output_high_wm = cfg->output_cap / 2;
    if (!lwm_set && cfg->output_low_wm >= cfg->output_high_wm)
        cfg->output_low_wm = cfg->output_high_wm / 4;
    cfg->input_cap = *max_line;
    if (weft_config_validate(cfg, &why) != 0) {
        fprintf(stderr, "weft-chat: invalid configuration: %s\n", why);
        return 2;
    }
    return 0;
}

/* Raise the soft fd limit to the hard one: each member is an fd. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    weft_config cfg = weft_config_default();
    cfg.port = CHAT_PORT;
    cfg.output_cap = CHAT_OUTPUT_CAP;
    uint32_t max_line = CHAT_MAX_LINE;
    int sndbuf = 0;
    int rc = parse_args(argc, argv, &cfg, &max_line, &sndbuf);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_nofile();

    chat_server *cs;
    rc = chat_server_new(&cfg, max_line, sndbuf, &cs);
    if (rc != 0) {
        fprintf(stderr, "weft-chat: cannot start on %s port %u: %s\n", cfg.bind_addr, cfg.port,
                weft_strerror(rc));
        return 1;
    }
    weft_server *s = chat_weft(cs);
    g_server = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = weft_server_start(s);
    if (rc != 0) {
        fprintf(stderr, "weft-chat: cannot start: %s\n", weft_strerror(rc));
        chat_server_free(cs);
        return 1;
    }
    int n = weft_server_workers(s);
    const char *b = cfg.bind_addr;
    int v6 = strchr(b, ':') != NULL;
    printf("weft-chat %s: listening on %s%s%s:%u, %d worker%s, max line %u, output cap %u\n",
           WEFT_VERSION, v6 ? "[" : "", b, v6 ? "]" : "", weft_server_port(s), n, n == 1 ? "" : "s",
           max_line, cfg.output_cap);
    const char *admin = weft_server_admin_path(s);
    if (admin)
        printf("weft-chat: admin socket %s (weft-stat --socket %s)\n", admin, admin);
    printf("weft-chat: try: nc %s %u   (Ctrl-C or SIGTERM stops)\n", v6 ? "::1" : "127.0.0.1",
           weft_server_port(s));

    rc = weft_server_wait(s);
    weft_stats st;
    weft_server_stats(s, &st);
    printf("weft-chat: stopped: %llu connections accepted, %llu closed\n",
           (unsigned long long)st.accepted, (unsigned long long)st.closed);
    g_server = NULL;
    chat_server_free(cs);
    if (rc != 0) {
        fprintf(stderr, "weft-chat: %s\n", weft_strerror(rc));
        return 1;
    }
    return 0;
}
