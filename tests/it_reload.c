/*
 * it_reload — zero-downtime reload and upgrade under load.
 *
 * weft-echo (a copy in a temporary directory, so that it can be upgraded)
 * runs from a --config file. While HOLD long-lived connections echo a
 * seeded stream and a churn thread opens, uses and closes connection after
 * connection, the test reloads RELOADS times, alternately by SIGHUP and by
 * the admin command `reload`, once after installing a rebuilt binary at
 * the same path (an upgrade) and once with a broken config file (that
 * successor must fail and the old process go on serving). It checks:
 *
 *   - no connect is refused or fails, no byte is lost or changed, on the
 *     held connections (which stay with their process and drain) and on
 *     the churned ones;
 *   - each reload reports the successor's MAINPID and READY=1 on
 *     NOTIFY_SOCKET; the broken one READY=1 from the old process;
 *   - after each, the admin socket answers from the newest process (its
 *     uptime is shorter than the time since the reload began), and so does
 *     GET /metrics (its process_start_time_seconds is new);
 *   - the upgraded successor runs the new file, the old one the replaced;
 *   - every old process exits 0 once its held connections close.
 *
 * usage: it_reload WEFT_ECHO [HOLD] [RELOADS] [UPGRADE]   (defaults 200, 5
 * and WEFT_ECHO again: UPGRADE is the binary installed for the upgrade, a
 * rebuilt weft-echo for instance)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itlib.h"

#define MAX_PIDS 32
#define CHUNK    512

static char g_dir[64], g_conf[128], g_admin[128], g_exe[128];
static uint16_t g_port, g_metrics;
static int g_stop; /* atomic: the load threads finish */

/* What the load threads found. */
static struct {
    uint64_t held_bytes, churn_conns, churn_fail, mismatches;
    char why[256];
} g_res;

static void note_failure(uint64_t *counter, const char *fmt, long a)
{
    __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
    if (!g_res.why[0])
        snprintf(g_res.why, sizeof(g_res.why), fmt, a);
}

typedef struct held {
    int fd;
    itl_stream tx, rx;
} held;

/* HOLD connections, one round after another: CHUNK bytes out, CHUNK back, verified. */
static void *hold_main(void *arg)
{
    int n = *(int *)arg;
    held *h = calloc((size_t)n, sizeof(*h));
    IT_CHECK(h, "calloc");
    for (int i = 0; i < n; i++) {
        h[i].fd = itl_connect("127.0.0.1", g_port, 5000, 0);
        IT_CHECK(h[i].fd >= 0, "held connection %d: %s", i, strerror(-h[i].fd));
        itl_stream_init(&h[i].tx, 1000 + (uint64_t)i);
        itl_stream_init(&h[i].rx, 1000 + (uint64_t)i);
    }
    unsigned char out[CHUNK], in[CHUNK];
    while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE)) {
        for (int i = 0; i < n; i++) {
            if (h[i].fd < 0)
                continue;
            size_t got = 0;
            itl_stream_fill(&h[i].tx, out, CHUNK);
            if (itl_write_all(h[i].fd, out, CHUNK, 10000) != 0 ||
                itl_read_exact(h[i].fd, in, CHUNK, 10000, &got) != 0) {
                note_failure(&g_res.mismatches, "held connection %ld broke", i);
                close(h[i].fd);
                h[i].fd = -1;
                continue;
            }
            if (itl_stream_verify(&h[i].rx, in, CHUNK) >= 0)
                note_failure(&g_res.mismatches, "held connection %ld: bytes changed", i);
            __atomic_add_fetch(&g_res.held_bytes, CHUNK, __ATOMIC_RELAXED);
        }
    }
    for (int i = 0; i < n; i++)
        if (h[i].fd >= 0)
            close(h[i].fd);
    free(h);
    return NULL;
}

/* New connections, one after another: connect, 100 bytes each way, close. */
static void *churn_main(void *arg)
{
    (void)arg;
    itl_stream tx, rx;
    itl_stream_init(&tx, 7);
    itl_stream_init(&rx, 7);
    unsigned char out[100], in[100];
    while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE)) {
        int fd = itl_connect("127.0.0.1", g_port, 5000, 0);
        if (fd < 0) {
            note_failure(&g_res.churn_fail, "churn connect: errno %ld", -fd);
            itl_sleep_ms(10);
            continue;
        }
        size_t got = 0;
        itl_stream_fill(&tx, out, sizeof(out));
        if (itl_write_all(fd, out, sizeof(out), 10000) != 0 ||
            itl_read_exact(fd, in, sizeof(in), 10000, &got) != 0)
            note_failure(&g_res.churn_fail, "churned connection: %ld bytes echoed", (long)got);
        else if (itl_stream_verify(&rx, in, sizeof(in)) >= 0)
            note_failure(&g_res.mismatches, "churned connection: bytes changed (%ld)", 0);
        close(fd);
        __atomic_add_fetch(&g_res.churn_conns, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* Send one admin command, return its answer (static buffer) or NULL. */
static const char *admin(const char *cmd)
{
    static char buf[16384];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, g_admin, strlen(g_admin) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char line[64];
    int n = snprintf(line, sizeof(line), "%s\nquit\n", cmd);
    size_t len = 0;
    itl_set_nonblock(fd);
    if (itl_write_all(fd, line, (size_t)n, 5000) == 0) {
        size_t got;
        int rc;
        while ((rc = itl_read_exact(fd, buf + len, 1, 5000, &got)) == 0 && len < sizeof(buf) - 1)
            len++;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* The newest process's uptime through the admin socket (retried while no sample). */
static double admin_uptime(void)
{
    for (int i = 0; i < 100; i++) {
        const char *a = admin("stats");
        const char *u = a ? strstr(a, "uptime_seconds ") : NULL;
        if (u)
            return strtod(u + 15, NULL);
        itl_sleep_ms(50);
    }
    return -1;
}

/* process_start_time_seconds from one GET /metrics, or -1 (503 before the first sample). */
static double metrics_get(void)
{
    static char buf[65536];
    int fd = itl_connect("127.0.0.1", g_metrics, 5000, 0);
    if (fd < 0)
        return -1;
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    size_t len = 0, got;
    if (itl_write_all(fd, req, sizeof(req) - 1, 5000) == 0)
        while (len < sizeof(buf) - 1 && itl_read_exact(fd, buf + len, 1, 5000, &got) == 0)
            len++;
    close(fd);
    buf[len] = '\0';
    const char *p = strstr(buf, "\nprocess_start_time_seconds ");
    return p ? strtod(p + 29, NULL) : -1;
}

/* process_start_time_seconds from GET /metrics (the handed-over listener), or -1. */
static double metrics_start_time(void)
{
    double v = -1;
    for (int i = 0; i < 100 && (v = metrics_get()) < 0; i++)
        itl_sleep_ms(50);
    return v;
}

/* A port nobody listens on now (bound, read, closed). */
static uint16_t free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    IT_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                 getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
             "%s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

static void write_conf(const char *workers)
{
    FILE *f = fopen(g_conf, "w");
    IT_CHECK(f, "%s: %s", g_conf, strerror(errno));
    fprintf(f,
            "# it_reload\nworkers = %s\nstats-socket = %s\nstats-interval = 100\n"
            "drain-timeout = 60000\nshutdown-timeout = 2000\nidle-timeout = 0\n"
            "metrics-port = %u\n",
            workers, g_admin, g_metrics);
    fclose(f);
}

/* Copy src to g_exe through a temporary file and rename: what `install` does. */
static void install_binary(const char *src)
{
    char tmp[160], cmd[400];
    snprintf(tmp, sizeof(tmp), "%s.new", g_exe);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 755 '%s'", src, tmp, tmp);
    IT_CHECK(system(cmd) == 0, "%s", cmd);
    IT_CHECK(rename(tmp, g_exe) == 0, "rename: %s", strerror(errno));
}

/* Does /proc/pid/exe name a file that was replaced (" (deleted)")? */
static int exe_replaced(pid_t pid)
{
    char path[64], target[256];
    snprintf(path, sizeof(path), "/proc/%ld/exe", (long)pid);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    IT_CHECK(n > 0, "readlink %s", path);
    target[n] = '\0';
    return strstr(target, " (deleted)") != NULL;
}

/* Discard what the servers wrote on their stdout (a pipe they all share). */
static void drain_stdout(int fd)
{
    char buf[4096];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

int main(int argc, char **argv)
{
    IT_CHECK(argc >= 2, "usage: it_reload WEFT_ECHO [HOLD] [RELOADS] [UPGRADE]");
    const char *upgrade = argc > 4 ? argv[4] : argv[1];
    int hold = argc > 2 ? atoi(argv[2]) : 200, reloads = argc > 3 ? atoi(argv[3]) : 5;
    IT_CHECK(hold >= 1 && hold <= 5000 && reloads >= 3 && reloads <= 20,
             "HOLD 1..5000, RELOADS 3..20");
    itl_raise_nofile();
    snprintf(g_dir, sizeof(g_dir), "/tmp/weft-it-reload.XXXXXX");
    IT_CHECK(mkdtemp(g_dir), "mkdtemp");
    IT_CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "subreaper");
    snprintf(g_conf, sizeof(g_conf), "%s/echo.conf", g_dir);
    snprintf(g_admin, sizeof(g_admin), "%s/admin.sock", g_dir);
    snprintf(g_exe, sizeof(g_exe), "%s/weft-echo", g_dir);
    char notify[100], buf[512];
    int nfd = itl_notify_open(g_dir, notify, sizeof(notify));
    IT_CHECK(nfd >= 0, "notify socket: %s", strerror(-nfd));
    setenv("NOTIFY_SOCKET", notify, 1);
    g_metrics = free_port();
    write_conf("2");
    install_binary(argv[1]);

    itl_server srv;
    const char *args[] = {"--config", g_conf, NULL};
    IT_CHECK(itl_server_start(&srv, g_exe, args, 20000) == 0, "start %s", g_exe);
    g_port = srv.port;
    IT_CHECK(itl_notify_wait(nfd, "READY=1", buf, sizeof(buf), 10000) == 0, "no READY=1");
    pid_t pids[MAX_PIDS];
    int npids = 0;
    pids[npids++] = srv.pid;
    double started = metrics_start_time();
    IT_CHECK(started > 0, "GET /metrics on port %u: no process_start_time_seconds", g_metrics);

    pthread_t ht, ct;
    IT_CHECK(pthread_create(&ht, NULL, hold_main, &hold) == 0, "thread");
    IT_CHECK(pthread_create(&ct, NULL, churn_main, NULL) == 0, "thread");
    int64_t t0 = itl_now_ms();
    int upgraded = -1, failed_kept = 0;
    for (int r = 0; r < reloads; r++) {
        itl_sleep_ms(400);
        drain_stdout(srv.out_fd);
        pid_t cur = pids[npids - 1];
        if (r == 1) {
            /* A broken config: the successor exits 2, this process serves on. */
            write_conf("nope");
            IT_CHECK(kill(cur, SIGHUP) == 0, "SIGHUP");
            IT_CHECK(itl_notify_wait(nfd, "READY=1", buf, sizeof(buf), 15000) == 0, "no READY=1");
            IT_CHECK(!strstr(buf, "MAINPID="), "a broken successor took over: %s", buf);
            IT_CHECK(kill(cur, 0) == 0, "the old process is gone after a failed reload");
            write_conf("2");
            failed_kept = 1;
            itl_sleep_ms(300);
        }
        if (r == 2) {
            install_binary(upgrade); /* the upgrade: a new file at the same path */
            upgraded = r;
            IT_CHECK(exe_replaced(cur), "upgrade: the old process's file was not replaced");
        }
        int64_t began = itl_now_ms();
        if (r % 2 == 0) {
            IT_CHECK(kill(cur, SIGHUP) == 0, "SIGHUP");
        } else {
            const char *a = admin("reload");
            IT_CHECK(a && strstr(a, "ok reloading"), "admin reload: %s", a ? a : "(no answer)");
        }
        IT_CHECK(itl_notify_wait(nfd, "MAINPID=", buf, sizeof(buf), 20000) == 0,
                 "reload %d: no MAINPID", r);
        long next = strtol(strstr(buf, "MAINPID=") + 8, NULL, 10);
        IT_CHECK(next > 0 && next != cur && strstr(buf, "READY=1"), "reload %d: %s", r, buf);
        itl_track((pid_t)next);
        IT_CHECK(npids < MAX_PIDS, "too many");
        pids[npids++] = (pid_t)next;
        double up = admin_uptime();
        double since = (double)(itl_now_ms() - began) / 1000.0;
        IT_CHECK(up >= 0 && up <= since + 0.05,
                 "reload %d: the admin socket answers from a process up %.3f s, the reload began "
                 "%.3f s ago",
                 r, up, since);
        double st = metrics_start_time();
        IT_CHECK(st > started, "reload %d: GET /metrics answers with start time %.2f, before %.2f",
                 r, st, started);
        started = st;
        if (r == upgraded)
            IT_CHECK(!exe_replaced((pid_t)next), "upgrade: the successor runs the old binary");
    }
    int64_t t1 = itl_now_ms();
    itl_sleep_ms(300);
    __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
    pthread_join(ht, NULL);
    pthread_join(ct, NULL);
    drain_stdout(srv.out_fd);
    IT_CHECK(g_res.churn_fail == 0 && g_res.mismatches == 0,
             "%llu failed connections, %llu broken or changed streams: %s",
             (unsigned long long)g_res.churn_fail, (unsigned long long)g_res.mismatches, g_res.why);
    /* The held connections are closed: every old process drains and exits 0. */
    for (int i = 0; i < npids - 1; i++) {
        int st = itl_reap(pids[i], 20000);
        IT_CHECK(st == 0, "old process %ld exited %d", (long)pids[i], st);
    }
    pid_t last = pids[npids - 1];
    IT_CHECK(kill(last, SIGTERM) == 0, "SIGTERM");
    IT_CHECK(itl_reap(last, 10000) == 0, "the newest process did not exit 0");
    struct stat st;
    IT_CHECK(stat(g_admin, &st) != 0, "the admin socket file is left behind");
    printf("it_reload: %d reloads in %.1f s (SIGHUP and admin 'reload', one upgrade, one broken "
           "config kept the old process: %s) under %d held connections (%llu bytes echoed and "
           "verified) and %llu churned connections: 0 failed, 0 changed; %d old processes "
           "drained and exited 0\n",
           reloads, (double)(t1 - t0) / 1000.0, failed_kept ? "yes" : "no", hold,
           (unsigned long long)g_res.held_bytes, (unsigned long long)g_res.churn_conns, npids - 1);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : 1;
}
