/*
 * examples/multi/admin.c — weft-multi's admin interface (base+3, bound to
 * 127.0.0.1 whatever --bind says): one command per line, answered in order.
 *
 *   help                          the commands
 *   stats                         every counter of the latest sample,
 *                                 "name value" (weft's text format)
 *   listeners                     a line per listener: index, name, address,
 *                                 accept rate and burst as set, and its
 *                                 counts from the latest sample
 *   conns                         open connections: in all (now), then per
 *                                 listener and per worker (latest sample)
 *   limit LISTENER RATE [BURST]   a listener's (a name or an index) accept
 *                                 rate per second and burst; RATE 0 lifts
 *                                 the limit; BURST defaults to RATE. The
 *                                 next connection already sees it.
 *   quit                          close
 *
 * Every answer ends with a line that starts with "ok" or with "error: ", so
 * a script reads until one. A line may be at most ADMIN_LINE bytes; a
 * longer one gets an error and the connection closes. Counts other than
 * the open total come from the stats thread's latest sample, so they lag
 * by up to --stats-interval.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multi.h"

/* The longest command line, newline included. */
#define ADMIN_LINE 256

static weft_server *g_srv;

/* Each listener's rate (high 32 bits) and burst (low), as last set. */
static uint64_t g_limit[WEFT_MAX_LISTENERS];

void multi_admin_limit_set(int i, uint32_t rate, uint32_t burst)
{
    if (i >= 0 && i < WEFT_MAX_LISTENERS)
        __atomic_store_n(&g_limit[i], (uint64_t)rate << 32 | burst, __ATOMIC_RELAXED);
}

/* ---- answers -------------------------------------------------------------------- */

/* An answer being put together; sent whole (one weft_send). */
typedef struct reply {
    char *buf;
    size_t len, cap;
    int failed; /* out of memory: the answer is an error line instead */
} reply;

static void put(reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(reply *r, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !r->failed; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(r->buf ? r->buf + r->len : NULL, r->buf ? r->cap - r->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            r->failed = 1;
        } else if (r->buf && (size_t)n < r->cap - r->len) {
            r->len += (size_t)n;
            return;
        } else {
            size_t cap = (r->cap ? r->cap : 1024) + (size_t)n * 2;
            char *b = realloc(r->buf, cap);
            if (!b)
                r->failed = 1;
            r->buf = b ? b : r->buf;
            r->cap = b ? cap : r->cap;
        }
    }
}

/* The latest sample, or NULL with an error line put. */
static weft_snapshot *sample(reply *r)
{
    int err = 0;
    weft_snapshot *snap = weft_server_snapshot(g_srv, &err);
    if (!snap)
        put(r, "error: %s\n",
            err == -ENOTSUP  ? "statistics are off (--stats-interval 0)"
            : err == -EAGAIN ? "no sample yet: try again after --stats-interval"
                             : weft_strerror(err));
    return snap;
}

static const char help_text[] =
    "help                         this list\n"
    "stats                        every counter (latest sample)\n"
    "listeners                    each listener, its limits and counts\n"
    "conns                        open connections\n"
    "limit LISTENER RATE [BURST]  set an accept rate per second "
    "(0: none)\n"
    "quit                         close this connection\n"
    "ok\n";

static void cmd_stats(reply *r)
{
    weft_snapshot *snap = sample(r);
    if (!snap)
        return;
    char *text = weft_snapshot_format(snap, WEFT_FORMAT_TEXT);
    weft_snapshot_free(snap);
    if (!text) {
        r->failed = 1;
        return;
    }
    put(r, "%sok\n", text);
    free(text);
}

static void cmd_listeners(reply *r)
{
    int err = 0, n = weft_server_listeners(g_srv);
    weft_snapshot *snap = weft_server_snapshot(g_srv, &err);
    for (int i = 0; i < n; i++) {
        uint64_t lim = __atomic_load_n(&g_limit[i], __ATOMIC_RELAXED);
        uint32_t rate = (uint32_t)(lim >> 32), burst = (uint32_t)lim;
        /* weft's rule: burst 0 means rate, and at least 1 */
        if (rate && !burst)
            burst = rate;
        put(r, "%d %s %s rate %u burst %u", i, weft_server_listener_name(g_srv, i),
            weft_server_listener_addr(g_srv, i), rate, burst);
        if (snap && i < snap->nlisteners) {
            const weft_listener_snapshot *l = &snap->listeners[i];
            put(r,
                " accepted %llu open %llu rejected_rate %llu rejected_max %llu "
                "rejected_source %llu",
                (unsigned long long)l->accepted, (unsigned long long)l->open,
                (unsigned long long)l->rejected_rate, (unsigned long long)l->rejected_max,
                (unsigned long long)l->rejected_source);
        }
        put(r, "\n");
    }
    weft_snapshot_free(snap);
    put(r, "ok\n");
}

static void cmd_conns(reply *r)
{
    weft_stats st;
    weft_server_stats(g_srv, &st);
    put(r, "open %llu accepted %llu closed %llu\n", (unsigned long long)st.open,
        (unsigned long long)st.accepted, (unsigned long long)st.closed);
    weft_snapshot *snap = sample(r);
    if (!snap)
        return;
    for (int i = 0; i < snap->nlisteners; i++)
        put(r, "listener %s open %llu\n", snap->listeners[i].name,
            (unsigned long long)snap->listeners[i].open);
    for (int i = 0; i < snap->nworkers; i++)
        put(r, "worker %d open %llu\n", i, (unsigned long long)snap->workers[i].st.open);
    weft_snapshot_free(snap);
    put(r, "ok\n");
}

/* A listener by name or index: its index, or -1. */
static int listener_of(const char *s)
{
    int n = weft_server_listeners(g_srv);
    for (int i = 0; i < n; i++)
        if (!strcmp(weft_server_listener_name(g_srv, i), s))
            return i;
    /* An index: digits only (weft_parse_number would take "1K" too). */
    long long v;
    if (s[strspn(s, "0123456789")] == '\0' && weft_parse_number(s, 0, n - 1, &v) == 0)
        return (int)v;
    return -1;
}

static void cmd_limit(reply *r, char **arg, int nargs)
{
    long long rate, burst = 0;
    int i;
    if (nargs < 2 || nargs > 3) {
        put(r, "error: usage: limit LISTENER RATE [BURST]\n");
    } else if ((i = listener_of(arg[0])) < 0) {
        put(r, "error: no listener '%s' (see listeners)\n", arg[0]);
    } else if (weft_parse_number(arg[1], 0, UINT32_MAX, &rate) != 0 ||
               (nargs == 3 && weft_parse_number(arg[2], 0, UINT32_MAX, &burst) != 0)) {
        put(r, "error: RATE and BURST are numbers from 0 to 4294967295\n");
    } else if (weft_server_listener_limit(g_srv, i, (uint32_t)rate, (uint32_t)burst) != 0) {
        put(r, "error: weft refused the limit\n");
    } else {
        multi_admin_limit_set(i, (uint32_t)rate, (uint32_t)burst);
        if (rate == 0)
            put(r, "ok %s: no accept limit\n", weft_server_listener_name(g_srv, i));
        else
            put(r, "ok %s: rate %lld/s, burst %lld\n", weft_server_listener_name(g_srv, i), rate,
                burst ? burst : rate);
    }
}

/* ---- lines ------------------------------------------------------------------------ */

/* Split line at spaces into at most max words; returns how many (max + 1: too many). */
static int split(char *line, char **word, int max)
{
    int n = 0;
    char *save;
    for (char *p = strtok_r(line, " \t\r", &save); p; p = strtok_r(NULL, " \t\r", &save)) {
        if (n == max)
            return max + 1;
        word[n++] = p;
    }
    return n;
}

/* Run one command line into r; returns 1 for quit. */
static int run(reply *r, char *line)
{
    char *w[5];
    int n = split(line, w, 4);
    if (n == 0)
        return 0; /* an empty line: nothing to answer */
    const char *cmd = w[0];
    if (!strcmp(cmd, "limit")) {
        cmd_limit(r, w + 1, n - 1);
    } else if (n > 1 &&
               (!strcmp(cmd, "help") || !strcmp(cmd, "stats") || !strcmp(cmd, "listeners") ||
                !strcmp(cmd, "conns") || !strcmp(cmd, "quit"))) {
        put(r, "error: %s takes no arguments\n", cmd);
    } else if (!strcmp(cmd, "help")) {
        put(r, "%s", help_text);
    } else if (!strcmp(cmd, "stats")) {
        cmd_stats(r);
    } else if (!strcmp(cmd, "listeners")) {
        cmd_listeners(r);
    } else if (!strcmp(cmd, "conns")) {
        cmd_conns(r);
    } else if (!strcmp(cmd, "quit")) {
        put(r, "ok bye\n");
        return 1;
    } else {
        put(r, "error: unknown command '%.32s' (try help)\n", cmd);
    }
    return 0;
}

/* Answer one line; 0 to go on, -1 when the connection is closing or gone. */
static int answer(weft_conn *c, char *line)
{
    reply r = {0};
    int quit = run(&r, line);
    int rc = 0;
    if (r.failed)
        rc = weft_send(c, "error: out of memory\n", 21);
    else if (r.len)
        rc = weft_send(c, r.buf, r.len);
    free(r.buf);
    if (rc < 0)
        return -1;
    if (quit) {
        weft_close(c);
        return -1;
    }
    return 0;
}

/*
 * Complete lines are answered; a partial one stays in the ring, and the
 * connection's user data says how far it was searched for '\n'.
 */
static void admin_data(weft_conn *c, weft_ring *in)
{
    size_t from = (size_t)(uintptr_t)weft_conn_userdata(c);
    for (;;) {
        long nl = weft_ring_find(in, from, '\n');
        size_t len = nl >= 0 ? (size_t)nl : weft_ring_len(in);
        if (len + 1 > ADMIN_LINE) {
            weft_ring_consume(in, weft_ring_len(in));
            if (weft_send(c, "error: line too long\n", 21) >= 0)
                weft_close(c);
            return;
        }
        if (nl < 0) {
            weft_conn_set_userdata(c, (void *)(uintptr_t)len);
            return;
        }
        char line[ADMIN_LINE];
        weft_ring_copyout(in, 0, line, len);
        line[len] = '\0';
        weft_ring_consume(in, len + 1);
        from = 0;
        weft_conn_set_userdata(c, NULL);
        if (answer(c, line) < 0)
            return;
    }
}

static const weft_handler admin_h = {.on_data = admin_data};

const weft_handler *multi_admin_handler(void) { return &admin_h; }

void multi_admin_setup(weft_server *s) { g_srv = s; }
