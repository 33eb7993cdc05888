/*
 * weft-stat — a live view of a running weft server's statistics.
 *
 * It is a plain client of the server's admin socket (core/admin.c): each
 * refresh connects, sends "stats json\nquit\n", reads to EOF and parses the
 * one JSON object it gets (with jansson). Nothing here links the library;
 * any program that embeds weft with stats on can be watched.
 *
 *   weft-stat                       live view of the server on port 7000
 *   weft-stat --port 8080           ... of the one on port 8080
 *   weft-stat --socket PATH         ... of the one whose admin socket is PATH
 *   weft-stat --once                one screen, no ANSI control, exit
 *   weft-stat --json                the server's JSON, unchanged, once
 *   weft-stat --prometheus          the server's "metrics" answer, once
 *
 * Rates. The server's snapshot carries rates over its own sampling interval
 * (stats_interval_ms). When two consecutive refreshes saw different samples,
 * the rates shown are instead computed here from the counter deltas over the
 * uptime between the two samples, so they cover the refresh interval the
 * user chose; the first screen (and --once) shows the server's rates.
 *
 * Exit status: 0, or 1 when no server answers (or answers nonsense), 2 on a
 * bad command line.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "weft/version.h"

#define DEFAULT_PORT 7000
/* How long one exchange with the server may take before we give up. */
#define ANSWER_TIMEOUT_MS 5000
/* A server that just started has no sample yet: how long to wait for one. */
#define FIRST_SAMPLE_WAIT_MS 3000
/* The largest answer we accept (a JSON answer is ~1.5 KB a worker). */
#define ANSWER_MAX  (64u << 20)
#define MAX_WORKERS 4096
#define MAX_REASONS 32

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- talking to the server -------------------------------------------------------------- */

/*
 * Send cmd to the admin socket at path and read the answer to EOF. Returns
 * a malloc'd NUL-terminated answer, or NULL with *why set to a static or
 * strerror text. Every wait is bounded by ANSWER_TIMEOUT_MS.
 */
static char *ask(const char *path, const char *cmd, const char **why)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        *why = strerror(ENAMETOOLONG);
        return NULL;
    }
    strcpy(sa.sun_path, path);
    int64_t deadline = now_ms() + ANSWER_TIMEOUT_MS;
    int fd = -1;
    /* A non-blocking connect to a Unix socket fails with EAGAIN while the
     * listener's backlog is full; that is worth a short retry. */
    for (;;) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            *why = strerror(errno);
            return NULL;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        int err = errno;
        close(fd);
        if (err != EAGAIN || now_ms() >= deadline) {
            *why = err == EAGAIN ? "the server's admin backlog stayed full" : strerror(err);
            return NULL;
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    size_t off = 0, n = strlen(cmd);
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        *why = strerror(ENOMEM);
        return NULL;
    }
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            *why = "no complete answer within 5 s";
            goto fail;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN | (off < n ? POLLOUT : 0)};
        int r = poll(&pf, 1, (int)left);
        if (r < 0 && errno == EINTR) {
            if (stop_flag) {
                *why = "interrupted";
                goto fail;
            }
            continue;
        }
        if (r < 0) {
            *why = strerror(errno);
            goto fail;
        }
        if (off < n && (pf.revents & POLLOUT)) {
            ssize_t w = send(fd, cmd + off, n - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                *why = strerror(errno);
                goto fail;
            }
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (cap - len < 4096) {
                if (cap >= ANSWER_MAX) {
                    *why = "answer too large";
                    goto fail;
                }
                char *nb = realloc(buf, cap * 2);
                if (!nb) {
                    *why = strerror(ENOMEM);
                    goto fail;
                }
                buf = nb;
                cap *= 2;
            }
            ssize_t got = read(fd, buf + len, cap - len - 1);
            if (got == 0)
                break;
            if (got < 0 && errno != EAGAIN && errno != EINTR) {
                /* A reset after a complete answer still leaves the answer. */
                if (len > 0 && errno == ECONNRESET)
                    break;
                *why = strerror(errno);
                goto fail;
            }
            if (got > 0)
                len += (size_t)got;
        }
    }
    close(fd);
    buf[len] = 0;
    return buf;
fail:
    close(fd);
    free(buf);
    return NULL;
}

/*
 * ask(), and retry for a little while when the server answers with an
 * error line (no sample yet right after start, too many admin clients).
 * On failure prints the reason and returns NULL.
 */
static char *ask_patiently(const char *path, const char *cmd, int quiet)
{
    int64_t give_up = now_ms() + FIRST_SAMPLE_WAIT_MS;
    for (;;) {
        const char *why = NULL;
        char *a = ask(path, cmd, &why);
        if (!a) {
            if (!quiet)
                fprintf(stderr,
                        "weft-stat: no weft server answers at %s: %s (is it running? "
                        "--socket/--port)\n",
                        path, why);
            return NULL;
        }
        if (strncmp(a, "error:", 6) != 0 && *a)
            return a;
        if (now_ms() >= give_up || stop_flag) {
            if (!quiet) {
                size_t l = strcspn(a, "\n");
                fprintf(stderr, "weft-stat: the server at %s answered: %.*s\n", path, (int)l,
                        *a ? a : "(nothing)");
            }
            free(a);
            return NULL;
        }
        free(a);
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* ---- reading the JSON answer (jansson) ------------------------------------------------ */
/*
 * Absent members read as NULL and numbers that are absent as 0, so a server
 * of another version (fewer or more fields) still shows what it has.
 */
static json_t *jget(json_t *o, const char *key)
{
    return json_is_object(o) ? json_object_get(o, key) : NULL;
}
static json_t *jidx(json_t *a, int i)
{
    return json_is_array(a) ? json_array_get(a, (size_t)i) : NULL;
}
static double jnum(json_t *v) { return json_is_number(v) ? json_number_value(v) : 0; }

/* The string member key of o into buf (empty when absent). */
static void jstr(json_t *o, const char *key, char *buf, size_t n)
{
    json_t *v = jget(o, key);
    snprintf(buf, n, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* ---- the figures ------------------------------------------------------------------------ */

enum { C_ACCEPTED, C_CLOSED, C_BYTES_IN, C_BYTES_OUT, C_READS, C_WRITES, C_EVENTS, C_WAKEUPS, NC };
static const char *const cnames[NC] = {"accepted", "closed", "bytes_in", "bytes_out",
                                       "reads",    "writes", "events",   "wakeups"};

typedef struct lat {
    double count, p50, p90, p99, p999, max, mean;
} lat;

typedef struct row {
    double c[NC];    /* counters (for a worker, accepted = connections it was handed) */
    double rate[NC]; /* per second */
    double open;
    int cpu, node;
    lat turn, handler;
} row;

/* A JSON object of name -> count, in the server's order (closed_by, conns_by_state). */
typedef struct named {
    int n;
    char name[MAX_REASONS][24];
    double v[MAX_REASONS];
} named;

static void read_named(named *d, json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (d->n == MAX_REASONS)
            break;
        snprintf(d->name[d->n], sizeof(d->name[0]), "%s", key);
        d->v[d->n++] = jnum(v);
    }
}

/* "label        name N  name N" */
static void print_named(FILE *f, const char *label, const named *d)
{
    fprintf(f, "%-13s", label);
    for (int k = 0; k < d->n; k++)
        fprintf(f, "%s%s %.0f", k ? "  " : "", d->name[k], d->v[k]);
    fputc('\n', f);
}

typedef struct sample {
    double seq, uptime, interval;
    char io[16]; /* the I/O backend */
    row total;
    double rejected, emfile, shed, accept_errors, deferrals, eagain, bp_pauses;
    double rings_in_use, pool_bytes;
    double tls_handshakes, tls_resumed;
    char ktls[128];  /* "" when no listener speaks TLS */
    double ep[6];    /* the stats thread's endpoints: epnames */
    named closed_by; /* as the server names the reasons */
    named by_state;  /* conns_by_state, as the server names the states */
    int nworkers;
    row *w;
    int nlisteners;
    struct {
        char name[64], addr[128];
        double accepted, open, rejected_max, rejected_rate, rejected_source, rate;
    } lsn[16];
} sample;

static const char *const epnames[6] = {"admin_rejected",   "admin_timeouts",   "admin_emfile",
                                       "metrics_rejected", "metrics_timeouts", "metrics_emfile"};

static void read_lat(lat *l, json_t *p)
{
    l->count = jnum(jget(p, "count"));
    l->p50 = jnum(jget(p, "p50"));
    l->p90 = jnum(jget(p, "p90"));
    l->p99 = jnum(jget(p, "p99"));
    l->p999 = jnum(jget(p, "p999"));
    l->max = jnum(jget(p, "max"));
    l->mean = jnum(jget(p, "mean"));
}

/* Fill r from a stats object st, its "rate" object and its "latency_ns". */
static void read_row(row *r, json_t *st, json_t *rate, json_t *latency)
{
    for (int i = 0; i < NC; i++) {
        r->c[i] = jnum(jget(st, cnames[i]));
        r->rate[i] = jnum(jget(rate, cnames[i]));
    }
    r->open = jnum(jget(st, "open"));
    read_lat(&r->turn, jget(latency, "turn"));
    read_lat(&r->handler, jget(latency, "handler"));
}

/* Parse the server's JSON answer; 0, or -1 when it is not what we expect. */
static int parse(sample *s, const char *text)
{
    memset(s, 0, sizeof(*s));
    json_t *root = json_loads(text, 0, NULL);
    json_t *total = jget(root, "total"), *workers = jget(root, "workers");
    if (!total || !json_is_array(workers) || !jget(total, "accepted")) {
        json_decref(root);
        return -1;
    }
    s->seq = jnum(jget(root, "seq"));
    s->uptime = jnum(jget(root, "uptime_s"));
    s->interval = jnum(jget(root, "interval_s"));
    jstr(root, "io", s->io, sizeof(s->io));
    read_row(&s->total, total, jget(root, "rate"), jget(root, "latency_ns"));
    s->rejected = jnum(jget(total, "rejected_max"));
    s->emfile = jnum(jget(total, "accept_emfile"));
    s->shed = jnum(jget(total, "accept_shed"));
    s->accept_errors = jnum(jget(total, "accept_errors"));
    s->deferrals = jnum(jget(total, "deferrals"));
    s->eagain = jnum(jget(total, "eagain"));
    s->bp_pauses = jnum(jget(total, "bp_pauses"));
    s->rings_in_use = jnum(jget(total, "rings_in_use"));
    s->pool_bytes = jnum(jget(total, "pool_bytes"));
    s->tls_handshakes = jnum(jget(total, "tls_handshakes"));
    s->tls_resumed = jnum(jget(total, "tls_resumed"));
    jstr(root, "ktls", s->ktls, sizeof(s->ktls));
    for (int i = 0; i < 6; i++)
        s->ep[i] = jnum(jget(total, epnames[i]));
    /* Whatever reasons and states the server reports, in its order. */
    read_named(&s->closed_by, jget(total, "closed_by"));
    read_named(&s->by_state, jget(total, "conns_by_state"));
    json_t *ls = jget(root, "listeners");
    for (size_t i = 0; json_is_array(ls) && i < json_array_size(ls) && i < 16; i++) {
        json_t *l = json_array_get(ls, i);
        jstr(l, "name", s->lsn[i].name, sizeof(s->lsn[i].name));
        jstr(l, "addr", s->lsn[i].addr, sizeof(s->lsn[i].addr));
        s->lsn[i].accepted = jnum(jget(l, "accepted"));
        s->lsn[i].open = jnum(jget(l, "open"));
        s->lsn[i].rejected_max = jnum(jget(l, "rejected_max"));
        s->lsn[i].rejected_rate = jnum(jget(l, "rejected_rate"));
        s->lsn[i].rejected_source = jnum(jget(l, "rejected_source"));
        s->lsn[i].rate = jnum(jget(l, "accept_rate"));
        s->nlisteners++;
    }
    int n = (int)json_array_size(workers);
    if (n > MAX_WORKERS)
        n = MAX_WORKERS;
    s->w = n ? calloc((size_t)n, sizeof(row)) : NULL;
    if (n && !s->w) {
        json_decref(root);
        return -1;
    }
    s->nworkers = n;
    for (int i = 0; i < n; i++) {
        json_t *w = jidx(workers, i);
        read_row(&s->w[i], w, jget(w, "rate"), jget(w, "latency_ns"));
        s->w[i].cpu = (int)jnum(jget(w, "cpu"));
        s->w[i].node = (int)jnum(jget(w, "node"));
    }
    json_decref(root);
    return 0;
}

/*
 * Replace the server's rates with ones over the span since prev, when prev
 * is an earlier sample of the same server run (same worker count, smaller
 * seq and uptime, counters not gone back).
 */
static void rates_since(sample *s, const sample *prev)
{
    if (!prev || prev->nworkers != s->nworkers || prev->seq >= s->seq ||
        prev->uptime >= s->uptime || prev->total.c[C_ACCEPTED] > s->total.c[C_ACCEPTED])
        return;
    double dt = s->uptime - prev->uptime;
    for (int i = 0; i < NC; i++) {
        double d = s->total.c[i] - prev->total.c[i];
        s->total.rate[i] = d > 0 ? d / dt : 0;
        for (int k = 0; k < s->nworkers; k++) {
            double dw = s->w[k].c[i] - prev->w[k].c[i];
            s->w[k].rate[i] = dw > 0 ? dw / dt : 0;
        }
    }
    s->interval = dt;
}

/* ---- rendering ------------------------------------------------------------------------ */

/* A latency in ns as "850ns", "12.3us", "4.56ms", "1.23s". */
static const char *fmt_ns(char *b, size_t n, double ns)
{
    if (ns < 1e3)
        snprintf(b, n, "%.0fns", ns);
    else if (ns < 1e6)
        snprintf(b, n, "%.1fus", ns / 1e3);
    else if (ns < 1e9)
        snprintf(b, n, "%.2fms", ns / 1e6);
    else
        snprintf(b, n, "%.2fs", ns / 1e9);
    return b;
}

/* A count with a k/M/G suffix once it gets long. */
static const char *fmt_count(char *b, size_t n, double v)
{
    if (v < 1e6)
        snprintf(b, n, "%.0f", v);
    else if (v < 1e9)
        snprintf(b, n, "%.2fM", v / 1e6);
    else
        snprintf(b, n, "%.2fG", v / 1e9);
    return b;
}

/* Bytes as "123 B", "4.5 KB", "6.7 MB", "8.9 GB" (decimal units, like MB/s). */
static const char *fmt_bytes(char *b, size_t n, double v)
{
    if (v < 1e3)
        snprintf(b, n, "%.0f B", v);
    else if (v < 1e6)
        snprintf(b, n, "%.1f KB", v / 1e3);
    else if (v < 1e9)
        snprintf(b, n, "%.1f MB", v / 1e6);
    else
        snprintf(b, n, "%.2f GB", v / 1e9);
    return b;
}

static void put_lat(FILE *f, const char *name, const lat *l)
{
    char a[5][24];
    fprintf(f, "%-8s p50 %-9s p90 %-9s p99 %-9s p99.9 %-9s max %-9s (%.0f samples)\n", name,
            fmt_ns(a[0], 24, l->p50), fmt_ns(a[1], 24, l->p90), fmt_ns(a[2], 24, l->p99),
            fmt_ns(a[3], 24, l->p999), fmt_ns(a[4], 24, l->max), l->count);
}

/* One screen. Every line ends with "erase to end of line" in the live view. */
static void render(FILE *f, const sample *s, const char *path)
{
    char a[6][32];
    const row *t = &s->total;
    unsigned long up = (unsigned long)s->uptime;
    fprintf(f, "weft-stat  %s  io %s  sample %.0f  up %lu:%02lu:%02lu  rates over %.2f s\n\n", path,
            s->io[0] ? s->io : "?", s->seq, up / 3600, up / 60 % 60, up % 60, s->interval);
    fprintf(f, "connections  open %-10.0f accepted %s (%.1f/s)  closed %s (%.1f/s)\n", t->open,
            fmt_count(a[0], 32, t->c[C_ACCEPTED]), t->rate[C_ACCEPTED],
            fmt_count(a[1], 32, t->c[C_CLOSED]), t->rate[C_CLOSED]);
    fprintf(f,
            "             rejected(max) %.0f  fd-exhaustion %.0f (shed %.0f)  accept errors %.0f\n",
            s->rejected, s->emfile, s->shed, s->accept_errors);
    if (s->by_state.n)
        print_named(f, "states", &s->by_state);
    print_named(f, "closed by", &s->closed_by);
    fprintf(f, "events       %.0f/s  wakeups %.0f/s  reads %.0f/s  writes %.0f/s\n",
            t->rate[C_EVENTS], t->rate[C_WAKEUPS], t->rate[C_READS], t->rate[C_WRITES]);
    fprintf(f, "traffic      in %.2f MB/s  out %.2f MB/s   (total in %s, out %s)\n",
            t->rate[C_BYTES_IN] / 1e6, t->rate[C_BYTES_OUT] / 1e6,
            fmt_bytes(a[2], 32, t->c[C_BYTES_IN]), fmt_bytes(a[3], 32, t->c[C_BYTES_OUT]));
    fprintf(f,
            "pressure     deferred %.0f  eagain %.0f  backpressure pauses %.0f  rings %.0f  "
            "pool %s\n",
            s->deferrals, s->eagain, s->bp_pauses, s->rings_in_use,
            fmt_bytes(a[4], 32, s->pool_bytes));
    if (s->ktls[0] || s->tls_handshakes > 0)
        fprintf(f, "tls          handshakes %.0f  resumed %.0f  kernel TLS: %s\n",
                s->tls_handshakes, s->tls_resumed, s->ktls[0] ? s->ktls : "-");
    fprintf(f,
            "endpoints    admin rejected %.0f  timeouts %.0f  fd-exhaustion %.0f   "
            "metrics rejected %.0f  timeouts %.0f  fd-exhaustion %.0f\n\n",
            s->ep[0], s->ep[1], s->ep[2], s->ep[3], s->ep[4], s->ep[5]);
    put_lat(f, "turn", &t->turn);
    if (t->handler.count > 0)
        put_lat(f, "handler", &t->handler);
    fprintf(f, "\n%-6s %4s %4s %8s %10s %6s %8s %10s %10s %9s %9s %9s\n", "worker", "cpu", "node",
            "open", "accepted", "share", "acc/s", "events/s", "reads/s", "MB_in/s", "MB_out/s",
            "turn_p99");
    for (int i = 0; i < s->nworkers; i++) {
        const row *w = &s->w[i];
        double share = t->c[C_ACCEPTED] > 0 ? 100.0 * w->c[C_ACCEPTED] / t->c[C_ACCEPTED] : 0;
        char cpu[12], node[12];
        snprintf(cpu, sizeof(cpu), w->cpu < 0 ? "-" : "%d", w->cpu);
        snprintf(node, sizeof(node), w->node < 0 ? "-" : "%d", w->node);
        fprintf(f, "%-6d %4s %4s %8.0f %10s %5.1f%% %8.1f %10.0f %10.0f %9.2f %9.2f %9s\n", i, cpu,
                node, w->open, fmt_count(a[0], 32, w->c[C_ACCEPTED]), share, w->rate[C_ACCEPTED],
                w->rate[C_EVENTS], w->rate[C_READS], w->rate[C_BYTES_IN] / 1e6,
                w->rate[C_BYTES_OUT] / 1e6, fmt_ns(a[5], 32, w->turn.p99));
    }
    if (s->nlisteners)
        fprintf(f, "\n%-16s %-28s %10s %8s %8s %8s %8s %8s\n", "listener", "address", "accepted",
                "open", "acc/s", "rej_max", "rej_rate", "rej_src");
    for (int i = 0; i < s->nlisteners; i++)
        fprintf(f, "%-16.16s %-28.28s %10s %8.0f %8.1f %8.0f %8.0f %8.0f\n", s->lsn[i].name,
                s->lsn[i].addr, fmt_count(a[0], 32, s->lsn[i].accepted), s->lsn[i].open,
                s->lsn[i].rate, s->lsn[i].rejected_max, s->lsn[i].rejected_rate,
                s->lsn[i].rejected_source);
}

/* ---- command line ------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: weft-stat [options]\n"
            "Show a running weft server's statistics, read from its admin socket.\n"
            "\n"
            "Options:\n"
            "  --port N            the server's TCP port; its socket is /tmp/weft-N.sock\n"
            "                      (default %d)\n"
            "  --socket PATH       the admin socket (weft-echo --stats-socket)\n"
            "  --interval SECONDS  refresh period of the live view (default 1; fractions\n"
            "                      such as 0.5 allowed)\n"
            "  --count N           refresh N times, then exit (default: until Ctrl-C)\n"
            "  --once              print one screen without terminal control codes, exit\n"
            "  --json              print the server's JSON snapshot (\"stats json\"), exit\n"
            "  --prometheus        print the server's Prometheus metrics (\"metrics\"), exit\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n"
            "\n"
            "Exit status: 0; 1 when no server answers; 2 on a bad command line.\n",
            DEFAULT_PORT);
}

static int bad(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "weft-stat: --%s '%s': %s (see --help)\n", opt, val, why);
    return 2;
}

/* Sleep for secs, in short steps so that Ctrl-C ends it promptly. */
static void pause_for(double secs)
{
    int64_t until = now_ms() + (int64_t)(secs * 1000);
    while (!stop_flag) {
        int64_t left = until - now_ms();
        if (left <= 0)
            return;
        if (left > 100)
            left = 100;
        struct timespec ts = {0, (long)left * 1000000};
        nanosleep(&ts, NULL);
    }
}

static void restore_terminal(void)
{
    fputs("\033[?25h", stdout); /* show the cursor again */
    fflush(stdout);
}

/* The live view (or --once): returns the exit status. */
static int live(const char *path, double interval, long count, int once)
{
    sample prev = {0};
    int have_prev = 0, status = 0, shown = 0;
    if (!once) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
    }
    for (long n = 0; !stop_flag && (count <= 0 || n < count); n++) {
        if (n > 0)
            pause_for(interval);
        if (stop_flag)
            break;
        sample cur = {0};
        /* Once the view is up, a server that goes away is shown, not fatal. */
        const char *why = NULL;
        char *json = shown ? ask(path, "stats json\nquit\n", &why)
                           : ask_patiently(path, "stats json\nquit\n", 0);
        if (!json && !shown) {
            status = 1;
            break;
        }
        if (!json || parse(&cur, json) != 0) {
            if (!shown) {
                fprintf(stderr,
                        "weft-stat: the server at %s sent an answer that is not a "
                        "weft stats snapshot\n",
                        path);
                free(json);
                free(cur.w);
                status = 1;
                break;
            }
            fprintf(stdout, "\033[H\033[2Jweft-stat  %s\n\nno answer: %s; retrying every %.2g s\n",
                    path, why ? why : "not a weft stats snapshot", interval);
            fflush(stdout);
            free(json);
            free(cur.w);
            have_prev = 0;
            continue;
        }
        free(json);
        rates_since(&cur, have_prev ? &prev : NULL);
        if (!once)
            fputs("\033[?25l\033[H\033[2J", stdout); /* hide the cursor, clear, home */
        render(stdout, &cur, path);
        fflush(stdout);
        shown = 1;
        /* Keep the previous sample when the server has not sampled since. */
        if (!have_prev || cur.seq != prev.seq) {
            free(prev.w);
            prev = cur;
            have_prev = 1;
        } else {
            free(cur.w);
        }
    }
    free(prev.w);
    if (!once && shown)
        restore_terminal();
    return status;
}

/* --json and --prometheus: the server's answer, unchanged. */
static int dump(const char *path, const char *cmd)
{
    char *a = ask_patiently(path, cmd, 0);
    if (!a)
        return 1;
    fputs(a, stdout);
    free(a);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    enum { O_PORT = 256, O_SOCKET, O_INTERVAL, O_COUNT, O_ONCE, O_JSON, O_PROM };
    static const struct option opts[] = {
        {"port", required_argument, 0, O_PORT},
        {"socket", required_argument, 0, O_SOCKET},
        {"interval", required_argument, 0, O_INTERVAL},
        {"count", required_argument, 0, O_COUNT},
        {"once", no_argument, 0, O_ONCE},
        {"json", no_argument, 0, O_JSON},
        {"prometheus", no_argument, 0, O_PROM},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    long port = DEFAULT_PORT, count = 0;
    double interval = 1.0;
    const char *socket_path = NULL;
    int mode = 0; /* 0 live, O_ONCE, O_JSON, O_PROM */
    int o;
    while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        char *end;
        switch (o) {
        case O_PORT:
            errno = 0;
            port = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || port < 1 || port > 65535)
                return bad("port", optarg, "expected a TCP port, 1 to 65535");
            break;
        case O_SOCKET:
            if (!*optarg)
                return bad("socket", optarg, "expected a path");
            socket_path = optarg;
            break;
        case O_INTERVAL:
            errno = 0;
            interval = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(interval >= 0.05) || interval > 86400)
                return bad("interval", optarg, "expected seconds, 0.05 to 86400");
            break;
        case O_COUNT:
            errno = 0;
            count = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || count < 1)
                return bad("count", optarg, "expected a positive number");
            break;
        case O_ONCE:
        case O_JSON:
        case O_PROM:
            if (mode && mode != o) {
                fprintf(stderr, "weft-stat: --once, --json and --prometheus exclude each other\n");
                return 2;
            }
            mode = o;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("weft-stat %s\n", WEFT_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weft-stat: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    if (socket_path) {
        if (strlen(socket_path) >= sizeof(path)) {
            fprintf(stderr, "weft-stat: --socket: path longer than %zu bytes\n", sizeof(path) - 1);
            return 2;
        }
        snprintf(path, sizeof(path), "%s", socket_path);
    } else {
        snprintf(path, sizeof(path), "/tmp/weft-%ld.sock", port);
    }
    switch (mode) {
    case O_JSON:
        return dump(path, "stats json\nquit\n");
    case O_PROM:
        return dump(path, "metrics\nquit\n");
    case O_ONCE:
        return live(path, interval, 1, 1);
    default:
        return live(path, interval, count, 0);
    }
}
