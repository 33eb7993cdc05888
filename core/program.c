/*
 * core/program.c — weft_main: the one skeleton every weft program runs.
 *
 * A server program is its handler and its own options; everything else is
 * here, once: the shared option table (core/config.c) and the program's
 * options parsed together, --help generated from both with the program's
 * own defaults, --version, validation with one clear line per mistake, the
 * fd limit raised to the hard one, SIGINT/SIGTERM wired to
 * weft_server_stop, the startup lines, the wait, the closing line and the
 * exit status (0; 1 when the server could not start or failed; 2 for a
 * usage error).
 *
 * Unlike the rest of the library this file touches the process: it is a
 * program's main, called from main, and says so in weft.h.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/conffile.h"
#include "core/config.h"
#include "core/inherit.h"
#include "core/log.h"
#include "core/reload.h"
#include "core/supervise.h"
#include "weft/weft.h"

/* ---- --help --------------------------------------------------------------- */

/* One option's lines: "  --name ARG" padded, then the help, then the default. */
static void help_entry(FILE *f, const char *name, const char *arg, const char *help,
                       const char *def)
{
    char head[64];
    snprintf(head, sizeof(head), "--%s%s%s", name, arg ? " " : "", arg ? arg : "");
    const char *line = help;
    int first = 1;
    for (;;) {
        const char *nl = strchr(line, '\n');
        int n = nl ? (int)(nl - line) : (int)strlen(line);
        fprintf(f, "  %-26s %.*s", first ? head : "", n, line);
        if (!nl) {
            if (def)
                fprintf(f, " (default %s)", *def ? def : "''");
            fputc('\n', f);
            return;
        }
        fputc('\n', f);
        line = nl + 1;
        first = 0;
    }
}

static void usage(FILE *f, const weft_program *p, const weft_config *defaults)
{
    fprintf(f, "usage: %s [options]\n\n%s\n\n", p->name, p->summary ? p->summary : "");
    size_t n;
    const weft_option *lib = weft_config_options(&n);
    fprintf(f, "Options:\n\nServer options (every weft program takes them):\n");
    for (size_t i = 0; i < n; i++) {
        char def[128];
        int has = cfg_option_default(defaults, i, def, sizeof(def)) == 0;
        help_entry(f, lib[i].name, lib[i].arg, lib[i].help, has ? def : NULL);
    }
    if (p->options && p->options[0].name) {
        fprintf(f, "\n%s options:\n", p->name);
        for (const weft_program_option *o = p->options; o->name; o++)
            help_entry(f, o->name, o->arg, o->help, NULL);
    }
    fprintf(f, "\n  --config FILE              read options from FILE first: one 'name = value'\n"
               "                             (or a flag's 'name') per line, # comments; the\n"
               "                             command line overrides it; a reload re-reads it\n"
               "  --print-config             print the settings in that format and exit\n"
               "  --log-level LEVEL          error, warn, info or debug (default info)\n"
               "  --log-format FORMAT        text or logfmt (default text); lines go to stderr\n"
               "  --drain-timeout MS         after a reload (SIGHUP, admin 'reload'), how long\n"
               "                             the old process serves its connections before\n"
               "                             it closes them (default 30000)\n"
               "  -q, --quiet                log errors and warnings only\n"
               "  -v, --verbose              log debug lines too\n"
               "  -h, --help                 this text\n"
               "  -V, --version              print the version\n");
    fprintf(f, "\nBYTES accept a K, M or G suffix (powers of 1024). SIGINT or SIGTERM stops the\n"
               "server cleanly: pending output is flushed first (up to --shutdown-timeout).\n"
               "SIGHUP reloads: a successor (this binary, these arguments, --config re-read)\n"
               "takes the listening sockets; this process drains and exits. Sockets passed\n"
               "by systemd (LISTEN_FDS) are served; READY=1 etc. go to $NOTIFY_SOCKET.\n");
    if (p->epilog)
        fprintf(f, "%s\n", p->epilog);
}

/* ---- parsing -------------------------------------------------------------------- */

enum {
    OPT_LIB = 256,
    OPT_PROG = 1024,
    OPT_CONFIG = 2048,
    OPT_PRINT,
    OPT_LOG_LEVEL,
    OPT_LOG_FORMAT,
    OPT_DRAIN
};

/* Settings of weft_main itself, beside weft_config. */
static struct {
    uint32_t drain_ms; /* --drain-timeout */
    int bind_given;    /* --bind or --port was given */
} g_prog = {.drain_ms = 30000};

/* The log sink weft_main installs: lines named by the program. */
static struct {
    const char *ident;
    int format; /* LOG_TEXT, LOG_LOGFMT */
} g_log = {"weft", LOG_TEXT};

static void program_log(void *ud, int level, const char *line)
{
    (void)ud;
    log_emit(g_log.ident, g_log.format, level, line);
}

/*
 * The value of --config in argv (before a "--"): 0 with *path set (NULL
 * when there is none), or -1 when it is given twice or has no value.
 */
static int find_config(int argc, char **argv, const char **path)
{
    *path = NULL;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--config"))
            v = i + 1 < argc ? argv[++i] : "";
        else if (!strncmp(argv[i], "--config=", 9))
            v = argv[i] + 9;
        else
            continue;
        if (*path || !*v)
            return -1;
        *path = v;
    }
    return 0;
}

/* The --config file's words: cfg points into them until weft_main returns. */
static cf_args g_cf;

/* One line for a value that was refused: where it came from, and why. */
static void option_error(const weft_program *p, const char *where, const char *name,
                         const char *arg, const char *why)
{
    fprintf(stderr, "%s: %s%s--%s%s%s%s: %s (see --help)\n", p->name, where ? where : "",
            where ? ": " : "", name, arg ? " '" : "", arg ? arg : "", arg ? "'" : "",
            why ? why : "not accepted");
}

/* --print-config: the settings as a --config file would set them. */
static void print_config(const weft_config *cfg)
{
    size_t n;
    const weft_option *lib = weft_config_options(&n);
    for (size_t i = 0; i < n; i++) {
        char v[256];
        if (cfg_option_value(cfg, i, v, sizeof(v)) == 0)
            printf(*v ? "%s = %s\n" : "%s = ''\n", lib[i].name, v);
    }
    for (int i = 0; i < cfg->nlisten; i++)
        printf("listen = %s\n", cfg->listen[i]);
    printf("log-level = %s\n", log_level_name(cfg->log_level));
    printf("log-format = %s\n", g_log.format == LOG_LOGFMT ? "logfmt" : "text");
    printf("drain-timeout = %u\n", g_prog.drain_ms);
}

/* Word i of the merged command line: the file's "FILE:LINE", or NULL. */
static const char *origin(const cf_args *cf, int i)
{
    return i >= 1 && i <= cf->argc ? cf->where[i - 1] : NULL;
}

/* A getopt failure at word av[i]: one line that names it. */
static void getopt_error(const weft_program *p, const cf_args *cf, char **av, int i, int known)
{
    const char *w = origin(cf, i);
    fprintf(stderr, "%s: %s%s%s '%s' (see --help)\n", p->name, w ? w : "", w ? ": " : "",
            known ? "a value is missing or not allowed:" : "unrecognized option", av[i]);
}

/* 0 to run, 1 to exit 0 (--help, --version, --print-config), 2 on a usage error. */
static int parse(int argc, char **argv, const weft_program *p, weft_config *cfg)
{
    size_t nlib, nprog = 0;
    const weft_option *lib = weft_config_options(&nlib);
    while (p->options && p->options[nprog].name)
        nprog++;
    /* A program with a --config of its own (weft-lb) reads its file itself. */
    bool own_config = false;
    for (size_t i = 0; i < nprog; i++)
        own_config |= strcmp(p->options[i].name, "config") == 0;
    const char *cpath = NULL;
    if (!own_config && find_config(argc, argv, &cpath) != 0) {
        fprintf(stderr, "%s: --config takes one FILE, once (see --help)\n", p->name);
        return 2;
    }
    char err[512];
    if (cpath && cf_load(cpath, &g_cf, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", p->name, err);
        cf_free(&g_cf);
        return 2;
    }
    /* The file's words first: the command line overrides them. */
    int ac = argc + g_cf.argc;
    char **av = calloc((size_t)ac + 1, sizeof(*av));
    struct option *lo = calloc(nlib + nprog + 10, sizeof(*lo));
    if (!lo || !av) {
        fprintf(stderr, "%s: out of memory\n", p->name);
        free(lo);
        free(av);
        cf_free(&g_cf);
        return 2;
    }
    av[0] = argv[0];
    for (int i = 0; i < g_cf.argc; i++)
        av[1 + i] = g_cf.argv[i];
    for (int i = 1; i < argc; i++)
        av[g_cf.argc + i] = argv[i];
    size_t k = 0;
    for (size_t i = 0; i < nlib; i++)
        lo[k++] = (struct option){lib[i].name, lib[i].has_arg, 0, OPT_LIB + (int)i};
    for (size_t i = 0; i < nprog; i++)
        lo[k++] =
            (struct option){p->options[i].name, p->options[i].arg ? required_argument : no_argument,
                            0, OPT_PROG + (int)i};
    lo[k++] = (struct option){"config", required_argument, 0, OPT_CONFIG};
    lo[k++] = (struct option){"print-config", no_argument, 0, OPT_PRINT};
    lo[k++] = (struct option){"log-level", required_argument, 0, OPT_LOG_LEVEL};
    lo[k++] = (struct option){"log-format", required_argument, 0, OPT_LOG_FORMAT};
    lo[k++] = (struct option){"drain-timeout", required_argument, 0, OPT_DRAIN};
    lo[k++] = (struct option){"quiet", no_argument, 0, 'q'};
    lo[k++] = (struct option){"verbose", no_argument, 0, 'v'};
    lo[k++] = (struct option){"help", no_argument, 0, 'h'};
    lo[k++] = (struct option){"version", no_argument, 0, 'V'};
    weft_config defaults = *cfg;
    int rc = 0, o, bind_given = 0, pin_given = 0, cpus_given = 0, print = 0;
    const char *why = NULL;
    optind = 1;
    opterr = 0; /* one line per mistake, ours */
    while (rc == 0 && (o = getopt_long(ac, av, "qvhV", lo, NULL)) != -1) {
        const char *name = NULL;
        why = NULL;
        if (o >= OPT_LIB && o < OPT_LIB + (int)nlib) {
            name = lib[o - OPT_LIB].name;
            if (weft_config_option(cfg, name, optarg, &why) != 0)
                rc = 2;
            bind_given |= !strcmp(name, "bind") || !strcmp(name, "port");
            pin_given |= !strcmp(name, "pin") || !strcmp(name, "no-pin");
            cpus_given |= !strcmp(name, "cpus");
        } else if (o >= OPT_PROG && o < OPT_PROG + (int)nprog) {
            name = p->options[o - OPT_PROG].name;
            if (!p->option || p->option(cfg, name, optarg, &why, p->ud) != 0)
                rc = 2;
        } else if (o == OPT_CONFIG) {
            if (optind - 1 <= g_cf.argc) {
                name = "config";
                why = "a config file cannot name another";
                rc = 2;
            }
        } else if (o == OPT_PRINT) {
            print = 1;
        } else if (o == OPT_LOG_LEVEL) {
            name = "log-level";
            int lv = -1;
            for (int l = WEFT_LOG_ERROR; l <= WEFT_LOG_DEBUG; l++)
                if (!strcmp(optarg, log_level_name(l)))
                    lv = l;
            if (lv < 0) {
                why = "expected error, warn, info or debug";
                rc = 2;
            } else {
                cfg->log_level = lv;
            }
        } else if (o == OPT_LOG_FORMAT) {
            name = "log-format";
            if (!strcmp(optarg, "text")) {
                g_log.format = LOG_TEXT;
            } else if (!strcmp(optarg, "logfmt")) {
                g_log.format = LOG_LOGFMT;
            } else {
                why = "expected text or logfmt";
                rc = 2;
            }
        } else if (o == OPT_DRAIN) {
            long long v;
            name = "drain-timeout";
            if (weft_parse_number(optarg, 0, 3600000, &v) != 0) {
                why = "expected a number from 0 to 3600000";
                rc = 2;
            } else {
                g_prog.drain_ms = (uint32_t)v;
            }
        } else if (o == 'q') {
            cfg->log_level = WEFT_LOG_WARN;
        } else if (o == 'v') {
            cfg->log_level = WEFT_LOG_DEBUG;
        } else if (o == 'h') {
            usage(stdout, p, &defaults);
            rc = 1;
        } else if (o == 'V') {
            if (p->version)
                printf("%s %s (weft %s)\n", p->name, p->version, weft_version());
            else
                printf("%s %s\n", p->name, weft_version());
            rc = 1;
        } else {
            int i = optind - 1 >= 1 && optind - 1 < ac ? optind - 1 : 0;
            if (i > 0 && av[i][0] == '-' && av[i][1] == '-')
                getopt_error(p, &g_cf, av, i, optopt != 0);
            else
                fprintf(stderr, "%s: unknown option or missing value (see --help)\n", p->name);
            rc = 2;
        }
        if (rc == 2 && name)
            option_error(p, origin(&g_cf, optind - 1), name, optarg, why);
    }
    int extra = rc == 0 && optind < ac ? optind : 0;
    if (extra)
        fprintf(stderr, "%s: %s%sunexpected argument '%s' (see --help)\n", p->name,
                origin(&g_cf, extra) ? origin(&g_cf, extra) : "", origin(&g_cf, extra) ? ": " : "",
                av[extra]);
    free(lo);
    free(av);
    /* cfg keeps pointers into the words (string options, --listen). */
    if (rc != 0 || extra)
        return rc ? rc : 2;
    /* CPUs named one by one are dedicated cores: pin to them, unless --pin
     * says otherwise. */
    if (cpus_given && !pin_given)
        cfg->pin = WEFT_PIN_CPU;
    g_prog.bind_given = bind_given;
    /* --listen alone replaces the default listener (--bind/--port). */
    if (cfg->nlisten > 0 && !bind_given) {
        if (cfg->tls_cert) {
            fprintf(stderr,
                    "%s: --tls-cert is for the --bind/--port listener; with --listen alone, "
                    "give tls-cert=FILE,tls-key=FILE in the --listen spec\n",
                    p->name);
            return 2;
        }
        cfg->bind_addr = NULL;
    }
    if (p->configure && p->configure(cfg, &why, p->ud) != 0) {
        fprintf(stderr, "%s: invalid configuration: %s\n", p->name, why ? why : "refused");
        return 2;
    }
    if (weft_config_validate(cfg, &why) != 0) {
        fprintf(stderr, "%s: invalid configuration: %s\n", p->name, why);
        return 2;
    }
    if (print) {
        print_config(cfg);
        return 1;
    }
    return 0;
}

/* ---- running ---------------------------------------------------------------------- */

/*
 * Raise the soft fd limit to the hard one (10K connections need 10K fds;
 * the usual soft default is 1024) and say when even that cannot reach
 * --max-conns.
 */
static void raise_nofile(const char *name, const weft_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            printf("%s: raised the open-file limit from %llu to %llu\n", name,
                   (unsigned long long)old, (unsigned long long)rl.rlim_cur);
    }
    if (cfg->max_conns > 0 && rl.rlim_max != RLIM_INFINITY &&
        (rlim_t)cfg->max_conns + 64 > rl.rlim_max)
        fprintf(stderr,
                "%s: warning: --max-conns %d needs about %d fds but the hard RLIMIT_NOFILE is "
                "%llu; connections beyond the limit will fail at accept (raise the hard "
                "limit: ulimit -Hn, /etc/security/limits.conf or systemd LimitNOFILE)\n",
                name, cfg->max_conns, cfg->max_conns + 64, (unsigned long long)rl.rlim_max);
}

static void banner(const weft_program *p, const weft_config *cfg, weft_server *s)
{
    int n = weft_server_workers(s), nl = weft_server_listeners(s);
    printf("%s %s: %s%s%s, %d worker%s (io %s), max %d connections\n", p->name, WEFT_VERSION,
           nl ? "listening on " : "no listener", nl ? weft_server_listener_addr(s, 0) : "",
           weft_server_listener_tls(s, 0) ? " (TLS)" : "", n, n == 1 ? "" : "s", weft_server_io(s),
           weft_server_max_conns(s));
    for (int i = 1; i < nl; i++)
        printf("%s: listening on %s (%s%s)\n", p->name, weft_server_listener_addr(s, i),
               weft_server_listener_name(s, i), weft_server_listener_tls(s, i) ? ", TLS" : "");
    for (int i = 0; i < n; i++) {
        int cpu, node;
        weft_server_worker_cpu(s, i, &cpu, &node);
        if (cpu >= 0)
            printf("%s: worker %d on cpu %d, numa node %d\n", p->name, i, cpu, node);
        else if (node >= 0)
            printf("%s: worker %d on numa node %d (its CPUs and memory)\n", p->name, i, node);
        else
            printf("%s: worker %d unbound\n", p->name, i);
    }
    const char *admin = weft_server_admin_path(s);
    if (admin)
        printf("%s: admin socket %s (weft-stat --socket %s)\n", p->name, admin, admin);
    if (weft_server_metrics_port(s))
        printf("%s: metrics on http://%s:%u/metrics\n", p->name, cfg->metrics_bind,
               weft_server_metrics_port(s));
    const char *first = nl ? weft_server_listener_addr(s, 0) : NULL;
    if (p->try_hint && first && strncmp(first, "unix:", 5) != 0) {
        char hint[256];
        snprintf(hint, sizeof(hint), p->try_hint, first[0] == '[' ? "::1" : "127.0.0.1",
                 weft_server_port(s));
        printf("%s: try: %s   (Ctrl-C or SIGTERM stops)\n", p->name, hint);
    }
}

/*
 * Create the server with the default listener only, then each --listen
 * spec, so a failure names the address that failed. 0 or 1 (said why).
 */
static int create(const weft_program *p, weft_config *cfg, weft_server **out)
{
    int nlisten = cfg->nlisten;
    const char *specs[WEFT_MAX_LISTENERS];
    memcpy(specs, cfg->listen, sizeof(specs));
    cfg->nlisten = 0;
    weft_server *s;
    int rc = weft_server_new(cfg, p->handler, p->ud, &s);
    if (rc != 0) {
        if (cfg->bind_addr)
            fprintf(stderr, "%s: cannot listen on %s port %u: %s\n", p->name, cfg->bind_addr,
                    cfg->port, rc == -EINVAL ? "not an IPv4 or IPv6 address" : weft_strerror(rc));
        else
            fprintf(stderr, "%s: cannot create the server: %s\n", p->name, weft_strerror(rc));
        return 1;
    }
    for (int i = 0; i < nlisten; i++) {
        weft_listener_opts o;
        const char *why = NULL;
        rc = weft_listener_parse(specs[i], &o, &why);
        if (rc == 0)
            rc = weft_server_listen(s, &o);
        if (rc < 0) {
            fprintf(stderr, "%s: cannot listen on %s: %s\n", p->name, specs[i],
                    why ? why : weft_strerror(rc));
            weft_server_free(s);
            return 1;
        }
    }
    /* systemd's sockets that no option names are listeners too. */
    char spec[256];
    while (inh_systemd_spec(0, spec, sizeof(spec)) == 0) {
        weft_listener_opts o;
        const char *why = NULL;
        rc = weft_listener_parse(spec, &o, &why);
        if (rc == 0)
            rc = weft_server_listen(s, &o);
        if (rc < 0) {
            fprintf(stderr, "%s: cannot serve the socket systemd passed (%s): %s\n", p->name, spec,
                    why ? why : weft_strerror(rc));
            weft_server_free(s);
            return 1;
        }
    }
    *out = s;
    return 0;
}

/*
 * Sockets that arrive open: systemd's (LISTEN_FDS), a predecessor's (a
 * reload). With systemd's and no --bind, --port or --listen, only those
 * listen. 0 or 1 (said why).
 */
static int take_sockets(const weft_program *p, weft_config *cfg)
{
    char err[256];
    int n = inh_from_systemd(err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "%s: socket activation: %s\n", p->name, err);
        return 1;
    }
    if (rld_receive(err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: reload: %s\n", p->name, err);
        return 1;
    }
    /* systemd's sockets, passed on by a predecessor too. */
    char spec[256];
    if (inh_systemd_spec(0, spec, sizeof(spec)) == 0 && !g_prog.bind_given && cfg->nlisten == 0)
        cfg->bind_addr = NULL;
    return 0;
}

/* The path of this binary, for a successor: resolved now, so that an
 * upgrade (a new file at the same path) runs the new one. */
static const char *self_exe(char *buf, size_t n, const char *argv0)
{
    ssize_t k = readlink("/proc/self/exe", buf, n - 1);
    if (k <= 0 || (size_t)k >= n - 1)
        return argv0;
    buf[k] = '\0';
    return buf;
}

/* Admin command "tls-reload": new certificates for this process's TLS
 * listeners, no successor; the log tells the outcome. */
static char *tls_reload_cmd(weft_server *s, const char *args, void *ud)
{
    (void)args, (void)ud;
    weft_server_reload_tls_async(s); /* the acceptor reads the files: no blocking here */
    return strdup("ok: TLS reload requested (the server's log says how it went)\n");
}

static bool any_tls(const weft_server *s)
{
    for (int i = 0; i < weft_server_listeners(s); i++)
        if (weft_server_listener_tls(s, i))
            return true;
    return false;
}

/* Run the server cfg describes until it stops: main's exit status. */
static int serve(const weft_program *p, weft_config cfg, char **argv)
{
    int rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!cfg.log) {
        g_log.ident = p->name;
        cfg.log = program_log;
    }
    raise_nofile(p->name, &cfg);
    char exe[4096];
    sup_opts so = {
        .exe = self_exe(exe, sizeof(exe), argv[0]), .argv = argv, .drain_ms = g_prog.drain_ms};

    weft_server *s;
    if (take_sockets(p, &cfg) != 0 || create(p, &cfg, &s) != 0)
        return 1;
    if (any_tls(s))
        weft_server_add_command(s, "tls-reload",
                                "reload the TLS certificates in this process (SIGHUP's\n"
                                "successor loads them too)",
                                tls_reload_cmd, NULL);
    if (p->setup && (rc = p->setup(s, p->ud)) != 0) {
        fprintf(stderr, "%s: cannot set up: %s\n", p->name, weft_strerror(rc));
        weft_server_free(s);
        return 1;
    }
    if ((rc = sup_prepare(s, &so)) != 0 || (rc = weft_server_start(s)) != 0) {
        fprintf(stderr, "%s: cannot start: %s\n", p->name, weft_strerror(rc));
        sup_finish();
        if (p->teardown)
            p->teardown(s, p->ud);
        weft_server_free(s);
        return 1;
    }
    /* What a reload's new settings left unused. */
    inh_close_rest();
    banner(p, &cfg, s);
    int sup = sup_start(s);
    if (sup != 0)
        fprintf(stderr, "%s: no supervisor thread (%s): SIGHUP cannot reload\n", p->name,
                weft_strerror(sup));
    rc = weft_server_wait(s);
    int handed = sup_finish();
    weft_stats st;
    weft_server_stats(s, &st);
    printf("%s: stopped%s: %llu connections accepted, %llu closed, %llu bytes in, %llu bytes out\n",
           p->name, handed ? " after a reload" : "", (unsigned long long)st.accepted,
           (unsigned long long)st.closed, (unsigned long long)st.bytes_in,
           (unsigned long long)st.bytes_out);
    if (p->teardown)
        p->teardown(s, p->ud);
    weft_server_free(s);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", p->name, weft_strerror(rc));
        return 1;
    }
    return 0;
}

int weft_main(int argc, char **argv, const weft_program *p)
{
    weft_config cfg = weft_config_default();
    if (p->defaults)
        p->defaults(&cfg, p->ud);
    int rc = parse(argc, argv, p, &cfg);
    if (rc == 0)
        rc = serve(p, cfg, argv);
    else if (rc == 1)
        rc = 0;
    cf_free(&g_cf);
    return rc;
}
