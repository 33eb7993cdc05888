/*
 * chat_test — end-to-end tests of weft-chat: start the server on a free
 * loopback port, drive many clients from one poll(2) loop, check what each
 * receives, stop the server by its PID.
 *
 *   usage: chat_test PATH-TO-weft-chat CASE [nodb]
 *   CASE:  room | msg | nick | nickcase | held | who | slow | errors
 *
 * The server runs with --allow-guests on a database in a fresh directory
 * (every room line through the store's writer), or with "nodb" without one
 * (the direct path weft-multi uses).
 *
 * Every case ends by closing its clients and checking that the server's
 * open fds return to the count they had before the first client, and that
 * SIGTERM stops the server with status 0. Every wait is bounded.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- failing ---------------------------------------------------------------- */

static pid_t g_pid = -1;
static const char *g_case = "";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chat_test %s: FAIL: ", g_case);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (g_pid > 0) {
        kill(g_pid, SIGKILL);
        waitpid(g_pid, NULL, 0);
    }
    exit(1);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            die(__VA_ARGS__);                                                                      \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    CHECK(p, "out of memory");
    return p;
}

/* ---- the server ------------------------------------------------------------- */

static int g_out = -1; /* the server's stdout */
static bool g_nodb;    /* "nodb": run weft-chat without its database */
static char g_dir[64]; /* the database's directory, removed at exit */

static void remove_dir(void)
{
    static const char *const files[] = {"chat.db", "chat.db-wal", "chat.db-shm"};
    char path[128];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", g_dir, files[i]);
        unlink(path);
    }
    rmdir(g_dir);
}

/* "--db DIR/chat.db" in a fresh directory (once), or "--db none". */
static const char *db_arg(void)
{
    static char arg[96];
    if (g_nodb)
        return "none";
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof(g_dir), "/tmp/chat_test.XXXXXX");
        CHECK(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
        atexit(remove_dir);
    }
    snprintf(arg, sizeof(arg), "%s/chat.db", g_dir);
    return arg;
}

/* Start weft-chat on a free port with args (NULL-terminated); return the port. */
static int server_start(const char *exe, const char *const *args)
{
    int p[2];
    CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
    const char *argv[64];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--stats-interval";
    argv[n++] = "0";
    argv[n++] = "--no-pin";
    argv[n++] = "-q";
    /* The guest protocol, on the default store (every room line through its writer). */
    argv[n++] = "--db";
    argv[n++] = db_arg();
    argv[n++] = "--allow-guests";
    argv[n++] = "--history"; /* replays are chat_store.py's */
    argv[n++] = "0";
    for (int i = 0; args && args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    g_pid = fork();
    CHECK(g_pid >= 0, "fork: %s", strerror(errno));
    if (g_pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    g_out = p[0];
    /* The first line names the port: "... listening on 127.0.0.1:PORT, ..." */
    char buf[1024];
    size_t len = 0;
    int64_t end = now_ms() + 10000;
    for (;;) {
        struct pollfd pfd = {.fd = g_out, .events = POLLIN};
        CHECK(now_ms() < end, "the server did not report its port in 10 s");
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t r = read(g_out, buf + len, sizeof(buf) - 1 - len);
        CHECK(r > 0, "the server exited before listening");
        len += (size_t)r;
        buf[len] = '\0';
        char *at = strstr(buf, "listening on ");
        char *nl = at ? strchr(at, '\n') : NULL;
        if (nl) {
            char *comma = strchr(at, ',');
            char *colon = comma;
            while (colon > at && *colon != ':')
                colon--;
            return atoi(colon + 1);
        }
    }
}

static int server_fds(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)g_pid);
    DIR *d = opendir(path);
    CHECK(d, "opendir %s: %s", path, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* SIGTERM, then expect a clean exit within 10 s. */
static void server_stop(void)
{
    CHECK(kill(g_pid, SIGTERM) == 0, "kill: %s", strerror(errno));
    int64_t end = now_ms() + 10000;
    int st;
    pid_t r;
    while ((r = waitpid(g_pid, &st, WNOHANG)) == 0) {
        CHECK(now_ms() < end, "the server did not stop within 10 s of SIGTERM");
        usleep(10000);
    }
    pid_t pid = g_pid;
    g_pid = -1;
    CHECK(r == pid, "waitpid: %s", strerror(errno));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the server exited with status %d (signal %d)",
          WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    close(g_out);
}

/* ---- clients ------------------------------------------------------------------ */

typedef struct tc {
    int fd; /* -1 once closed by us */
    bool eof;
    bool noread; /* a member that never reads */
    char *in;
    size_t inlen, incap;
    char *out;
    size_t outlen, outoff, outcap;
    char **lines;
    size_t nlines, linecap;
    size_t seen; /* lines before this were matched by an expect */
    int worker;
} tc;

#define MAX_CLIENTS 256
static tc *g_all[MAX_CLIENTS];
static int g_nall;
static int g_port;

static void got_line(tc *c, const char *p, size_t n)
{
    if (c->nlines == c->linecap) {
        c->linecap = c->linecap ? c->linecap * 2 : 64;
        c->lines = xrealloc(c->lines, c->linecap * sizeof(char *));
    }
    char *s = xrealloc(NULL, n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    c->lines[c->nlines++] = s;
}

static void tc_read(tc *c)
{
    for (;;) {
        if (c->incap - c->inlen < 65536) {
            c->incap = c->incap ? c->incap * 2 : 131072;
            c->in = xrealloc(c->in, c->incap);
        }
        ssize_t r = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            break;
        if (r <= 0) {
            c->eof = true;
            break;
        }
        c->inlen += (size_t)r;
    }
    size_t off = 0;
    char *nl;
    while ((nl = memchr(c->in + off, '\n', c->inlen - off))) {
        got_line(c, c->in + off, (size_t)(nl - (c->in + off)));
        off = (size_t)(nl - c->in) + 1;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
}

static void tc_write(tc *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w < 0) {
            c->outoff = c->outlen; /* the server closed it; the test sees EOF */
            break;
        }
        c->outoff += (size_t)w;
    }
    c->outoff = c->outlen = 0;
}

/* One poll round over every open client: read what came, write what is queued. */
static void pump(int ms)
{
    struct pollfd pfd[MAX_CLIENTS];
    tc *who[MAX_CLIENTS];
    int n = 0;
    for (int i = 0; i < g_nall; i++) {
        tc *c = g_all[i];
        if (c->fd < 0)
            continue;
        short ev = 0;
        if (!c->noread && !c->eof)
            ev |= POLLIN;
        if (c->outoff < c->outlen)
            ev |= POLLOUT;
        if (!ev)
            continue;
        pfd[n] = (struct pollfd){.fd = c->fd, .events = ev};
        who[n++] = c;
    }
    if (n == 0) {
        usleep((useconds_t)ms * 1000);
        return;
    }
    if (poll(pfd, (nfds_t)n, ms) <= 0)
        return;
    for (int i = 0; i < n; i++) {
        if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
            if (!who[i]->noread)
                tc_read(who[i]);
        if (pfd[i].revents & POLLOUT)
            tc_write(who[i]);
    }
}

static void tc_sendf(tc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tc_sendf(tc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (c->outlen + (size_t)n + 1 > c->outcap) {
        c->outcap = (c->outlen + (size_t)n + 1) * 2;
        c->out = xrealloc(c->out, c->outcap);
    }
    va_start(ap, fmt);
    vsnprintf(c->out + c->outlen, (size_t)n + 1, fmt, ap);
    va_end(ap);
    c->outlen += (size_t)n;
    tc_write(c);
}

/* The next unmatched line, waiting up to ms for it; NULL on timeout or EOF. */
static const char *tc_next(tc *c, int ms)
{
    int64_t end = now_ms() + ms;
    while (c->seen >= c->nlines) {
        if (c->eof || now_ms() >= end)
            return NULL;
        pump(20);
    }
    return c->lines[c->seen++];
}

/* The next line must be exactly `want`. */
static void expect(tc *c, const char *want)
{
    const char *l = tc_next(c, 10000);
    CHECK(l, "client %d: waited 10 s for \"%s\": %s", c->fd, want, c->eof ? "EOF" : "timeout");
    CHECK(strcmp(l, want) == 0, "client %d: expected \"%s\", got \"%s\"", c->fd, want, l);
}

/* The next line must start with `prefix`; returns it. */
static const char *expect_prefix(tc *c, const char *prefix)
{
    const char *l = tc_next(c, 10000);
    CHECK(l, "client %d: waited 10 s for \"%s...\": %s", c->fd, prefix, c->eof ? "EOF" : "timeout");
    CHECK(strncmp(l, prefix, strlen(prefix)) == 0, "client %d: expected \"%s...\", got \"%s\"",
          c->fd, prefix, l);
    return l;
}

/* No further line arrives within ms. */
static void expect_quiet(tc *c, int ms)
{
    const char *l = tc_next(c, ms);
    CHECK(!l, "client %d: unexpected line \"%s\"", c->fd, l ? l : "");
}

/* The server closes the connection within 10 s (after any lines still due). */
static void expect_eof(tc *c)
{
    int64_t end = now_ms() + 10000;
    while (!c->eof) {
        CHECK(now_ms() < end, "client %d: the server did not close within 10 s", c->fd);
        pump(20);
    }
}

static tc *tc_connect(void)
{
    CHECK(g_nall < MAX_CLIENTS, "too many clients");
    tc *c = calloc(1, sizeof(*c));
    CHECK(c, "out of memory");
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c->fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s", strerror(errno));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    g_all[g_nall++] = c;
    const char *l = expect_prefix(c, "* welcome to weft-chat (worker ");
    c->worker = atoi(l + strlen("* welcome to weft-chat (worker "));
    return c;
}

static void tc_free(tc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    for (size_t i = 0; i < c->nlines; i++)
        free(c->lines[i]);
    free(c->lines);
    free(c->in);
    free(c->out);
    for (int i = 0; i < g_nall; i++)
        if (g_all[i] == c) {
            g_all[i] = g_all[--g_nall];
            break;
        }
    free(c);
}

/* Connect, take `nick`, join `room` (if any): the acks come in order. */
static tc *member(const char *nick, const char *room)
{
    tc *c = tc_connect();
    char want[128];
    tc_sendf(c, "/nick %s\n", nick);
    snprintf(want, sizeof(want), "* you are now %s", nick);
    expect(c, want);
    if (room) {
        tc_sendf(c, "/join %s\n", room);
        snprintf(want, sizeof(want), "* %s joined #%s", nick, room);
        expect(c, want);
    }
    return c;
}

/* Members c[0..n) joined `room` in order: each saw every later one join. */
static void expect_joins(tc **c, const char *const *nicks, int n, const char *room)
{
    char want[128];
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            snprintf(want, sizeof(want), "* %s joined #%s", nicks[j], room);
            expect(c[i], want);
        }
}

/* Close every client; the server's fds must come back to `base`. */
static void close_all_and_check_fds(int base)
{
    while (g_nall)
        tc_free(g_all[0]);
    int64_t end = now_ms() + 10000;
    int n;
    while ((n = server_fds()) != base) {
        CHECK(now_ms() < end, "the server holds %d fds 10 s after every client closed (%d before)",
              n, base);
        usleep(20000);
    }
}

/* Pump until pred(arg) or ms pass; returns pred's last value. */
static bool pump_until(bool (*pred)(void *), void *arg, int ms)
{
    int64_t end = now_ms() + ms;
    while (!pred(arg)) {
        if (now_ms() >= end)
            return false;
        pump(20);
    }
    return true;
}

/* ---- case: room -------------------------------------------------------------- */

/*
 * Members on every worker each send numbered messages to one room, all at
 * once. Every member must get every message exactly once (its own too),
 * each sender's in order, plus the "joined" line of each later member.
 */
#define ROOM_CLIENTS 40
#define ROOM_MSGS    100

typedef struct {
    tc **c;
    int n;
    size_t want;
} lines_goal;

static bool have_lines(void *arg)
{
    lines_goal *g = arg;
    for (int i = 0; i < g->n; i++)
        if (g->c[i]->nlines - g->c[i]->seen < g->want)
            return false;
    return true;
}

static void case_room(const char *exe)
{
    const char *args[] = {"--workers", "4", NULL};
    g_port = server_start(exe, args);
    usleep(100000);
    int base = server_fds();
    tc *c[ROOM_CLIENTS];
    int on[4] = {0};
    char nick[32];
    for (int i = 0; i < ROOM_CLIENTS; i++) {
        snprintf(nick, sizeof(nick), "c%d", i);
        c[i] = member(nick, "lobby");
        CHECK(c[i]->worker >= 0 && c[i]->worker < 4, "worker %d out of range", c[i]->worker);
        on[c[i]->worker]++;
    }
    for (int k = 0; k < 4; k++)
        CHECK(on[k] == ROOM_CLIENTS / 4, "worker %d has %d of the members, not %d", k, on[k],
              ROOM_CLIENTS / 4);
    /* Each member saw every later member join, exactly once and in join order. */
    for (int i = 0; i < ROOM_CLIENTS; i++)
        for (int j = i + 1; j < ROOM_CLIENTS; j++) {
            char want[64];
            snprintf(want, sizeof(want), "* c%d joined #lobby", j);
            expect(c[i], want);
        }
    /* Everyone sends at once, interleaved. */
    for (int s = 0; s < ROOM_MSGS; s++)
        for (int i = 0; i < ROOM_CLIENTS; i++)
            tc_sendf(c[i], "m %d %d\n", i, s);
    lines_goal g = {c, ROOM_CLIENTS, (size_t)ROOM_CLIENTS * ROOM_MSGS};
    CHECK(pump_until(have_lines, &g, 60000), "not every member got %zu lines in 60 s", g.want);
    for (int i = 0; i < ROOM_CLIENTS; i++) {
        int next[ROOM_CLIENTS] = {0};
        for (size_t k = 0; k < g.want; k++) {
            const char *l = c[i]->lines[c[i]->seen++];
            int from, a, s;
            CHECK(sscanf(l, "<c%d> m %d %d", &from, &a, &s) == 3 && from == a && from >= 0 &&
                      from < ROOM_CLIENTS,
                  "member %d: unexpected line \"%s\"", i, l);
            CHECK(s == next[from],
                  "member %d: from c%d got #%d, expected #%d (lost, doubled "
                  "or reordered)",
                  i, from, s, next[from]);
            next[from]++;
        }
        expect_quiet(c[i], i == 0 ? 200 : 0);
    }
    /* /who lists exactly the 40, sorted. */
    char want[1024];
    const char *names[ROOM_CLIENTS];
    char buf[ROOM_CLIENTS][8];
    for (int i = 0; i < ROOM_CLIENTS; i++) {
        snprintf(buf[i], sizeof(buf[i]), "c%d", i);
        names[i] = buf[i];
    }
    for (int i = 1; i < ROOM_CLIENTS; i++) /* insertion sort by strcmp */
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    int n = snprintf(want, sizeof(want), "* members of #lobby (%d):", ROOM_CLIENTS);
    for (int i = 0; i < ROOM_CLIENTS; i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, " %s", names[i]);
    tc_sendf(c[7], "/who\n");
    expect(c[7], want);
    close_all_and_check_fds(base);
    server_stop();
}

/* ---- case: msg ------------------------------------------------------------------ */

/*
 * Private messages between members on every worker: each reaches its target
 * only, in the order sent; an unknown nick is an error to the sender.
 */
#define PM_CLIENTS 8
#define PM_EACH    10

static void case_msg(const char *exe)
{
    const char *args[] = {"--workers", "4", NULL};
    g_port = server_start(exe, args);
    usleep(100000);
    int base = server_fds();
    tc *c[PM_CLIENTS];
    char nick[PM_CLIENTS][32];
    for (int i = 0; i < PM_CLIENTS; i++) {
        snprintf(nick[i], sizeof(nick[i]), "p%d", i);
        c[i] = member(nick[i], i % 2 ? "odd" : NULL); /* rooms do not matter to /msg */
    }
    tc *odd[] = {c[1], c[3], c[5], c[7]};
    const char *oddn[] = {"p1", "p3", "p5", "p7"};
    expect_joins(odd, oddn, 4, "odd");
    for (int k = 0; k < PM_EACH; k++)
        for (int i = 0; i < PM_CLIENTS; i++)
            for (int j = 0; j < PM_CLIENTS; j++)
                if (j != i)
                    tc_sendf(c[i], "/msg p%d hi %d to %d #%d\n", j, i, j, k);
    lines_goal g = {c, PM_CLIENTS, (size_t)(PM_CLIENTS - 1) * PM_EACH};
    CHECK(pump_until(have_lines, &g, 30000), "not every member got its %zu messages", g.want);
    for (int j = 0; j < PM_CLIENTS; j++) {
        int next[PM_CLIENTS] = {0};
        for (size_t k = 0; k < g.want; k++) {
            const char *l = c[j]->lines[c[j]->seen++];
            int from, a, to, s;
            CHECK(sscanf(l, "*p%d* hi %d to %d #%d", &from, &a, &to, &s) == 4 && from == a &&
                      from >= 0 && from < PM_CLIENTS,
                  "p%d: unexpected line \"%s\"", j, l);
            CHECK(to == j, "p%d got a message for p%d: \"%s\"", j, to, l);
            CHECK(s == next[from], "p%d: from p%d got #%d, expected #%d", j, from, s, next[from]);
            next[from]++;
        }
    }
    for (int j = 0; j < PM_CLIENTS; j++)
        expect_quiet(c[j], j == 0 ? 300 : 0);
    /* To oneself, and to nobody. */
    tc_sendf(c[3], "/msg p3 note to self\n");
    expect(c[3], "*p3* note to self");
    tc_sendf(c[3], "/msg nobody hello?\n");
    expect(c[3], "error: no such nick nobody");
    tc_sendf(c[3], "/msg p1\n");
    expect(c[3], "error: usage: /msg NAME text");
    /*
     * A departed nick is unknown. Until p5's worker has seen its EOF, a
     * /msg still reaches p5 (and p2 hears nothing), and the release of the
     * nick is posted after that: retry briefly.
     */
    tc_free(c[5]);
    int64_t end = now_ms() + 5000;
    for (;;) {
        tc_sendf(c[2], "/msg p5 are you there\n");
        const char *l = tc_next(c[2], 300);
        if (l && strcmp(l, "error: no such nick p5") == 0)
            break;
        CHECK(!l, "p2: unexpected line \"%s\"", l);
        CHECK(now_ms() < end, "p5's nick outlived its connection by 5 s");
    }
    for (int j = 1; j < PM_CLIENTS; j += 2)
        if (j != 5)
            expect(c[j], "* p5 left #odd (peer)");
    for (int j = 0; j < PM_CLIENTS; j++)
        if (j != 5 && j != 2)
            expect_quiet(c[j], j == 0 ? 200 : 0);
    close_all_and_check_fds(base);
    server_stop();
}

/* ---- case: nick ------------------------------------------------------------------ */

typedef struct {
    tc **c;
    int n;
} answered_goal;

static bool all_answered(void *arg)
{
    answered_goal *g = arg;
    for (int i = 0; i < g->n; i++)
        if (g->c[i]->nlines <= g->c[i]->seen)
            return false;
    return true;
}

static void case_nick(const char *exe)
{
    const char *args[] = {"--workers", "4", NULL};
    g_port = server_start(exe, args);
    usleep(100000);
    int base = server_fds();

    /* Taken across workers. */
    tc *a = member("alice", "tea");
    tc *b = tc_connect();
    CHECK(a->worker != b->worker, "alice and b on the same worker");
    tc_sendf(b, "/nick alice\n");
    expect(b, "error: nick alice is taken");
    tc_sendf(b, "/join tea\n");
    expect(b, "error: choose a nick first: /nick NAME");
    tc_sendf(b, "/nick bob\n");
    expect(b, "* you are now bob");
    tc_sendf(b, "/join tea\n");
    expect(b, "* bob joined #tea");
    expect(a, "* bob joined #tea");

    /* A rename is announced, frees the old nick at once, and is idempotent. */
    tc_sendf(a, "/nick alice2\n");
    expect(a, "* you are now alice2");
    expect(a, "* alice is now known as alice2");
    expect(b, "* alice is now known as alice2");
    tc_sendf(a, "/nick alice2\n");
    expect(a, "* you are now alice2");
    tc *c = tc_connect();
    tc_sendf(c, "/nick alice\n");
    expect(c, "* you are now alice");
    tc_sendf(b, "/nick alice2\n");
    expect(b, "error: nick alice2 is taken");
    tc_sendf(a, "hello\n");
    expect(a, "<alice2> hello");
    expect(b, "<alice2> hello");

    /* Bad names. */
    tc_sendf(c, "/nick two words\n");
    expect(c, "error: usage: /nick NAME (1 to 32 of A-Z a-z 0-9 _ -)");
    tc_sendf(c, "/nick waaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaay_too_long\n");
    expect(c, "error: usage: /nick NAME (1 to 32 of A-Z a-z 0-9 _ -)");

    /* Twelve connections on four workers race for one nick: one wins. */
    tc *r[12];
    for (int i = 0; i < 12; i++)
        r[i] = tc_connect();
    for (int i = 0; i < 12; i++)
        tc_sendf(r[i], "/nick racer\n");
    answered_goal ag = {r, 12};
    CHECK(pump_until(all_answered, &ag, 10000), "not every racer got an answer");
    int won = 0;
    for (int i = 0; i < 12; i++) {
        const char *l = tc_next(r[i], 0);
        if (strcmp(l, "* you are now racer") == 0)
            won++;
        else
            CHECK(strcmp(l, "error: nick racer is taken") == 0, "racer %d: \"%s\"", i, l);
    }
    CHECK(won == 1, "%d connections won the nick", won);

    /* Pipelined after /nick: the later commands see the new nick. */
    tc *p = tc_connect();
    tc_sendf(p, "/nick piper\n/join tea\nhi all\n/who\n");
    expect(p, "* you are now piper");
    expect(p, "* piper joined #tea");
    expect(p, "<piper> hi all");
    expect(p, "* members of #tea (3): alice2 bob piper");
    expect(a, "* piper joined #tea");
    expect(a, "<piper> hi all");
    expect(b, "* piper joined #tea");
    expect(b, "<piper> hi all");

    /* A closed member's nick becomes free (released asynchronously). */
    tc_free(a);
    expect(b, "* alice2 left #tea (peer)");
    tc_sendf(c, "/nick alice2\n");
    expect(c, "* you are now alice2");
    close_all_and_check_fds(base);
    server_stop();
}

/* ---- case: nickcase ---------------------------------------------------------- */

/*
 * Nicks compare case-insensitively: "Bob" and "bob" are one user, whichever
 * worker each connection is on (each shard of the nick directory must see
 * every spelling), for /nick, /msg and /who. A nick shows as its holder
 * wrote it.
 */
static void case_nickcase(const char *exe)
{
    const char *args[] = {"--workers", "4", NULL};
    g_port = server_start(exe, args);
    usleep(100000);
    int base = server_fds();
    char want[128];
    tc *bob = member("Bob", "den");
    const char *spell[] = {"bob", "BOB", "bOb", "boB"};
    tc *o[4];
    int other_workers = 0;
    for (int i = 0; i < 4; i++) {
        o[i] = tc_connect();
        other_workers += o[i]->worker != bob->worker;
        tc_sendf(o[i], "/nick %s\n", spell[i]);
        snprintf(want, sizeof(want), "error: nick %s is taken", spell[i]);
        expect(o[i], want);
    }
    CHECK(other_workers >= 3, "only %d of the claimants on another worker than Bob", other_workers);

    /* Private messages reach Bob however the nick is written. */
    tc *alice = member("alice", "den");
    expect(bob, "* alice joined #den");
    tc_sendf(alice, "/msg BOB hi there\n");
    expect(bob, "*alice* hi there");
    tc_sendf(alice, "/msg bob again\n");
    expect(bob, "*alice* again");
    tc_sendf(bob, "/msg ALICE back\n");
    expect(alice, "*Bob* back");

    /* /who: nicks as written, sorted without regard to case. */
    tc *carol = member("carol", "den");
    expect(bob, "* carol joined #den");
    expect(alice, "* carol joined #den");
    tc_sendf(carol, "/who\n");
    expect(carol, "* members of #den (3): alice Bob carol");

    /* Another case of one's own nick is the same nick: announced, still held. */
    tc_sendf(bob, "/nick bOB\n");
    expect(bob, "* you are now bOB");
    tc *den[] = {bob, alice, carol};
    for (int i = 0; i < 3; i++)
        expect(den[i], "* Bob is now known as bOB");
    tc_sendf(o[0], "/nick Bob\n");
    expect(o[0], "error: nick Bob is taken");
    tc_sendf(alice, "/msg bob still you?\n");
    expect(bob, "*alice* still you?");

    /* A rename frees every spelling of the old nick. */
    tc_sendf(bob, "/nick robert\n");
    expect(bob, "* you are now robert");
    for (int i = 0; i < 3; i++)
        expect(den[i], "* bOB is now known as robert");
    tc_sendf(o[1], "/nick BOB\n");
    expect(o[1], "* you are now BOB");
    tc_sendf(alice, "/msg bob for the new one\n");
    expect(o[1], "*alice* for the new one");
    tc_sendf(o[2], "/nick Robert\n");
    expect(o[2], "error: nick Robert is taken");

    /* So does leaving: the release reaches the shard before the "left" line. */
    tc_free(bob);
    expect(alice, "* robert left #den (peer)");
    expect(carol, "* robert left #den (peer)");
    tc_sendf(o[2], "/nick ROBERT\n");
    expect(o[2], "* you are now ROBERT");
    expect_quiet(alice, 200);
    expect_quiet(carol, 0);
    close_all_and_check_fds(base);
    server_stop();
}

/* ---- case: held --------------------------------------------------------------- */

/*
 * Input that arrives while a /nick is in flight waits in the connection's
 * ring, under weft's caps: more than a max line of pipelined commands is
 * run in order once the answer is in, and a partial line left behind such
 * a batch is seen by the input-stall timeout like any other (it once moved
 * to a buffer of the server's own, out of the timeout's sight, where its
 * connection and that buffer stayed until the idle timeout).
 */
#define HELD_ATTACKERS 20
#define HELD_PIPE      400

static void case_held(const char *exe)
{
    const char *args[] = {"--workers", "2", "--input-stall", "2000", NULL};
    g_port = server_start(exe, args);
    usleep(100000);
    int base = server_fds();
    tc *watch = member("watch", "atk");
    char want[128];

    /* 400 room lines (9 KB, over --max-line's 4096) behind /nick and /join. */
    tc *p = tc_connect();
    size_t cap = HELD_PIPE * 32 + 64, n = 0;
    char *batch = xrealloc(NULL, cap);
    n += (size_t)snprintf(batch + n, cap - n, "/nick piper\n/join atk\n");
    for (int i = 0; i < HELD_PIPE; i++)
        n += (size_t)snprintf(batch + n, cap - n, "pipelined line %d\n", i);
    tc_sendf(p, "%s", batch);
    expect(p, "* you are now piper");
    expect(p, "* piper joined #atk");
    expect(watch, "* piper joined #atk");
    for (int i = 0; i < HELD_PIPE; i++) {
        snprintf(want, sizeof(want), "<piper> pipelined line %d", i);
        expect(p, want);
        expect(watch, want);
    }

    /* Attackers: a nick, a room, 60,000 empty lines and a partial one. */
    cap = 70000;
    batch = xrealloc(batch, cap);
    tc *a[HELD_ATTACKERS];
    for (int i = 0; i < HELD_ATTACKERS; i++)
        a[i] = tc_connect();
    for (int i = 0; i < HELD_ATTACKERS; i++) {
        n = (size_t)snprintf(batch, cap, "/nick a%d\n/join atk\n", i);
        memset(batch + n, '\n', 60000);
        n += 60000;
        batch[n++] = 'x';
        batch[n] = '\0';
        tc_sendf(a[i], "%s", batch);
    }
    free(batch);
    /*
     * Each one joins, then is closed by the input stall (2 s) and the room
     * hears why; the lines of different attackers may interleave.
     */
    int state[HELD_ATTACKERS] = {0}; /* 1 joined, 2 left */
    int left = 0;
    int64_t end = now_ms() + 20000;
    while (left < HELD_ATTACKERS) {
        const char *l = tc_next(watch, (int)(end - now_ms()));
        CHECK(l, "%d of %d attackers closed by the input stall within 20 s", left, HELD_ATTACKERS);
        int k;
        if (sscanf(l, "* a%d joined #atk", &k) == 1 && k >= 0 && k < HELD_ATTACKERS &&
            state[k] == 0) {
            state[k] = 1;
        } else if (sscanf(l, "* a%d left #atk (input_stall)", &k) == 1 && k >= 0 &&
                   k < HELD_ATTACKERS && state[k] == 1) {
            state[k] = 2;
            left++;
        } else {
            CHECK(0, "watch: unexpected line \"%s\"", l);
        }
    }
    for (int i = 0; i < HELD_ATTACKERS; i++)
        expect_eof(a[i]);
    printf("chat_test held: %d pipelined lines run in order; %d partial lines behind a "
           "/nick closed by the input stall\n",
           HELD_PIPE, HELD_ATTACKERS);
    close_all_and_check_fds(base);
    server_stop();
}

/* ---- case: who --------------------------------------------------------------- */

static void case_who(const char *exe)
{
    const char *args[] = {"--workers", "4", NULL};
    g_port = server_start(exe, args);
    usleep(100000);
    int base = server_fds();
    tc *w[12];
    char nick[32];
    char names[12][8];
    const char *np[12];
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof(names[i]), "w%d", i);
        np[i] = names[i];
        w[i] = member(names[i], i < 8 ? "r1" : "r2");
    }
    expect_joins(w, np, 8, "r1");
    expect_joins(w + 8, np + 8, 4, "r2");
    tc_sendf(w[0], "/who\n");
    expect(w[0], "* members of #r1 (8): w0 w1 w2 w3 w4 w5 w6 w7");
    tc_sendf(w[9], "/who\n");
    expect(w[9], "* members of #r2 (4): w10 w11 w8 w9");

    /* Leaving: the leaver hears it too; the room's list shrinks. */
    for (int i = 1; i <= 3; i++) {
        tc_sendf(w[i], "/leave\n");
        snprintf(nick, sizeof(nick), "* w%d left #r1", i);
        expect(w[i], nick);
        for (int j = 0; j < 8; j++) /* every member still in #r1 */
            if (j == 0 || j > i)
                expect(w[j], nick);
        tc_sendf(w[i], "/leave\n");
        expect(w[i], "error: you are in no room: /join ROOM");
        tc_sendf(w[i], "/who\n");
        expect(w[i], "error: you are in no room: /join ROOM");
    }
    tc_sendf(w[0], "/who\n");
    expect(w[0], "* members of #r1 (5): w0 w4 w5 w6 w7");

    /* Switching rooms: "left" in the old one, "joined" in the new one. */
    tc_sendf(w[4], "/join #r2\n");
    expect(w[4], "* w4 left #r1");
    expect(w[4], "* w4 joined #r2");
    for (int j = 0; j < 8; j++)
        if (j == 0 || j > 4)
            expect(w[j], "* w4 left #r1");
    for (int j = 8; j < 12; j++)
        expect(w[j], "* w4 joined #r2");
    tc_sendf(w[4], "/join r2\n");
    expect(w[4], "error: already in #r2");
    tc_sendf(w[8], "/who\n");
    expect(w[8], "* members of #r2 (5): w10 w11 w4 w8 w9");
    tc_sendf(w[0], "/who\n");
    expect(w[0], "* members of #r1 (4): w0 w5 w6 w7");
    /* A room message goes to its room only. */
    tc_sendf(w[5], "only r1\n");
    for (int i = 0; i < 12; i++) {
        if (i == 0 || (i >= 5 && i <= 7))
            expect(w[i], "<w5> only r1");
    }
    for (int i = 0; i < 12; i++)
        expect_quiet(w[i], i == 0 ? 300 : 0);
    /* /quit says goodbye, closes, and the room hears why. */
    tc_sendf(w[6], "/quit\n");
    expect(w[6], "* bye");
    expect_eof(w[6]);
    for (int j = 0; j < 8; j++)
        if (j == 0 || j == 5 || j == 7)
            expect(w[j], "* w6 left #r1 (quit)");
    close_all_and_check_fds(base);
    server_stop();
}

/* ---- case: slow ------------------------------------------------------------------- */

/*
 * A member that never reads (small receive buffer) is disconnected at the
 * output cap; the others keep receiving every message, in order.
 */
#define SLOW_SENDERS 4
#define SLOW_ROUNDS  40
#define SLOW_BATCH   25

static void case_slow(const char *exe)
{
    const char *args[] = {"--workers", "4", "--output-cap", "64K", "--sndbuf", "32K", NULL};
    g_port = server_start(exe, args);
    usleep(100000);
    int base = server_fds();
    tc *slow = tc_connect();
    int small = 4096;
    setsockopt(slow->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    tc_sendf(slow, "/nick slow\n/join busy\n");
    expect(slow, "* you are now slow");
    expect(slow, "* slow joined #busy");
    slow->noread = true;
    tc *s[SLOW_SENDERS];
    const char *np[SLOW_SENDERS] = {"s0", "s1", "s2", "s3"};
    for (int i = 0; i < SLOW_SENDERS; i++)
        s[i] = member(np[i], "busy");
    expect_joins(s, np, SLOW_SENDERS, "busy");

    char pad[121];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    int next[SLOW_SENDERS][SLOW_SENDERS] = {{0}};
    bool slow_left[SLOW_SENDERS] = {false};
    int sent = 0;
    for (int round = 0; round < SLOW_ROUNDS; round++) {
        /* A batch from everyone, then wait until every reader has it all:
         * the readers stay far below the cap, the slow member does not. */
        for (int b = 0; b < SLOW_BATCH; b++, sent++)
            for (int i = 0; i < SLOW_SENDERS; i++)
                tc_sendf(s[i], "m %d %d %s\n", i, sent, pad);
        for (int r = 0; r < SLOW_SENDERS; r++) {
            while (next[r][0] < sent || next[r][1] < sent || next[r][2] < sent ||
                   next[r][3] < sent) {
                const char *l = tc_next(s[r], 10000);
                CHECK(l, "s%d: no line for 10 s in round %d (%s)", r, round,
                      s[r]->eof ? "EOF" : "timeout");
                if (strcmp(l, "* slow left #busy (output_cap)") == 0) {
                    CHECK(!slow_left[r], "s%d: slow left twice", r);
                    slow_left[r] = true;
                    continue;
                }
                int from, a, q;
                CHECK(sscanf(l, "<s%d> m %d %d", &from, &a, &q) == 3 && from == a && from >= 0 &&
                          from < SLOW_SENDERS,
                      "s%d: unexpected line \"%.60s\"", r, l);
                CHECK(q == next[r][from], "s%d: from s%d got #%d, expected #%d", r, from, q,
                      next[r][from]);
                next[r][from]++;
            }
        }
    }
    for (int r = 0; r < SLOW_SENDERS; r++) {
        if (!slow_left[r])
            expect(s[r], "* slow left #busy (output_cap)");
        expect_quiet(s[r], r == 0 ? 200 : 0);
    }
    /* The slow member: what the kernel buffered, then the end. */
    slow->noread = false;
    expect_eof(slow);
    size_t got = slow->nlines - slow->seen;
    CHECK(got < (size_t)SLOW_SENDERS * sent, "the slow member got all %zu lines", got);
    printf("chat_test slow: the slow member got %zu of %d lines before the cap\n", got,
           SLOW_SENDERS * sent);
    close_all_and_check_fds(base);
    server_stop();
}

/* ---- case: errors ---------------------------------------------------------------- */

static void case_errors(const char *exe)
{
    const char *args[] = {"--workers", "2", "--max-line", "128", NULL};
    g_port = server_start(exe, args);
    usleep(100000);
    int base = server_fds();
    tc *c = tc_connect();
    tc_sendf(c, "hello\n");
    expect(c, "error: choose a nick first: /nick NAME");
    tc_sendf(c, "/who\n");
    expect(c, "error: you are in no room: /join ROOM");
    tc_sendf(c, "/foo bar\n");
    expect(c, "error: unknown command /foo (try /help)");
    tc_sendf(c, "/help\n");
    expect_prefix(c, "* commands: /register NAME PASSWORD");
    expect_prefix(c, "* other lines go to everyone in your room");
    tc_sendf(c, "\n\r\n/nick crlf\r\n/join r\r\nhi there\r\n//slash\n");
    expect(c, "* you are now crlf");
    expect(c, "* crlf joined #r");
    expect(c, "<crlf> hi there");
    expect(c, "<crlf> /slash");
    tc_sendf(c, "/leave\nstill here?\n");
    expect(c, "* crlf left #r");
    expect(c, "error: you are in no room: /join ROOM");
    tc_sendf(c, "/join r\n");
    expect(c, "* crlf joined #r");

    /* --max-line 128 counts the newline: 127 bytes of text pass, 128 do not. */
    char text[300];
    memset(text, 'a', 127);
    text[127] = '\0';
    char want[320];
    snprintf(want, sizeof(want), "<crlf> %s", text);
    tc_sendf(c, "%s\n", text);
    expect(c, want);
    memset(text, 'b', 128);
    text[128] = '\0';
    tc_sendf(c, "%s\nnot seen\n", text);
    expect(c, "error: line too long (at most 128 bytes with the newline)");
    expect_eof(c);
    CHECK(c->seen == c->nlines, "lines after the error: \"%s\"", c->lines[c->seen]);

    /* A partial line past the limit is refused before its newline arrives. */
    tc *d = member("dave", "r");
    memset(text, 'c', 200);
    text[200] = '\0';
    tc_sendf(d, "%s", text);
    expect(d, "error: line too long (at most 128 bytes with the newline)");
    expect_eof(d);

    /* /quit: goodbye, then the server closes. */
    tc *e = member("erin", NULL);
    tc_sendf(e, "/quit\n/nick ignored\n");
    expect(e, "* bye");
    expect_eof(e);
    CHECK(e->seen == e->nlines, "lines after bye: \"%s\"", e->lines[e->seen]);
    close_all_and_check_fds(base);
    server_stop();
}

int main(int argc, char **argv)
{
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "nodb") == 0)) {
        fprintf(stderr, "usage: chat_test PATH-TO-weft-chat "
                        "room|msg|nick|nickcase|held|who|slow|errors [nodb]\n");
        return 2;
    }
    g_nodb = argc == 4;
    signal(SIGPIPE, SIG_IGN);
    g_case = argv[2];
    if (strcmp(argv[2], "room") == 0)
        case_room(argv[1]);
    else if (strcmp(argv[2], "msg") == 0)
        case_msg(argv[1]);
    else if (strcmp(argv[2], "nick") == 0)
        case_nick(argv[1]);
    else if (strcmp(argv[2], "nickcase") == 0)
        case_nickcase(argv[1]);
    else if (strcmp(argv[2], "held") == 0)
        case_held(argv[1]);
    else if (strcmp(argv[2], "who") == 0)
        case_who(argv[1]);
    else if (strcmp(argv[2], "slow") == 0)
        case_slow(argv[1]);
    else if (strcmp(argv[2], "errors") == 0)
        case_errors(argv[1]);
    else {
        fprintf(stderr, "chat_test: unknown case %s\n", argv[2]);
        return 2;
    }
    printf("chat_test %s: ok\n", argv[2]);
    return 0;
}
