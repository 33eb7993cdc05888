/*
 * core/supervise.c — signals, sd_notify and the reload, for weft_main
 * (see supervise.h).
 */
#include "core/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/acceptor.h"
#include "core/inherit.h"
#include "core/log.h"
#include "core/reload.h"
#include "core/sdnotify.h"
#include "core/server-t.h"
#include "core/stats_thread.h"

/* What the pipe carries: one byte per event. */
enum { EV_STOP = 'T', EV_RELOAD = 'H', EV_QUIT = 'Q' };

static struct {
    weft_server *volatile s; /* the server the handlers stop */
    sup_opts o;
    int pipe[2];
    pthread_t tid;
    int running;
    int reloaded; /* the successor serves: this process only drains */
} g_sup = {.pipe = {-1, -1}};

static void post(char ev)
{
    if (g_sup.pipe[1] >= 0) {
        ssize_t n = write(g_sup.pipe[1], &ev, 1);
        (void)n; /* a full pipe already holds a wake-up */
    }
}

static void on_signal(int sig)
{
    int saved = errno;
    weft_server *s = g_sup.s;
    if (sig == SIGHUP) {
        post(EV_RELOAD);
    } else {
        if (s)
            weft_server_stop(s); /* async-signal-safe */
        post(EV_STOP);
    }
    errno = saved;
}

static void set_handlers(void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* The admin command `reload` (stats thread): the supervisor does it. */
static char *reload_command(weft_server *s, const char *args, void *ud)
{
    (void)s;
    (void)ud;
    if (*args)
        return strdup("error: reload takes no arguments\n");
    post(EV_RELOAD);
    return strdup("ok reloading: a successor starts; this process drains once it is ready\n");
}

int sup_prepare(weft_server *s, const sup_opts *o)
{
    g_sup.o = *o;
    g_sup.s = s;
    g_sup.reloaded = 0;
    if (g_sup.pipe[0] < 0 && pipe2(g_sup.pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -errno;
    set_handlers(on_signal);
    int rc = weft_server_add_command(s, "reload",
                                     "start a successor with the listening sockets (as SIGHUP)",
                                     reload_command, NULL);
    /* A program's own `reload` wins; stats off (no admin socket) is fine too. */
    return rc == -EINVAL || rc == -ENOSPC ? 0 : rc;
}

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * Every listening fd of s: its listeners, then the admin and metrics
 * sockets; sys[i] is 1 for a socket systemd passed (the successor treats
 * it as systemd's: it listens there even with no option naming it).
 */
static int listening_fds(weft_server *s, int *fds, char *sys, int max)
{
    int n = acc_listen_fds(s, fds, sys, max);
    int k = stsvc_listen_fds(s->stats, fds + n, max - n);
    memset(sys + n, 0, (size_t)k);
    return n + k;
}

static uint64_t open_conns(const weft_server *s)
{
    weft_stats st;
    weft_server_stats(s, &st);
    return st.open;
}

/*
 * Wait for this process's connections to close, up to drain_ms, or for a
 * stop; then stop. Clients keep their connections (and every byte in
 * flight) as long as they hold them; the successor takes every new one.
 */
static void drain(weft_server *s)
{
    uint64_t end = monotonic_us() + (uint64_t)g_sup.o.drain_ms * 1000u, left;
    while ((left = open_conns(s)) > 0 && monotonic_us() < end) {
        struct pollfd pf = {.fd = g_sup.pipe[0], .events = POLLIN};
        char ev = 0;
        if (poll(&pf, 1, 50) == 1 && read(g_sup.pipe[0], &ev, 1) == 1 && ev != EV_RELOAD)
            break;
    }
    if (left)
        wlog(s, WEFT_LOG_WARN,
             "reload: %llu connections still open after the drain timeout (%u ms): closing them",
             (unsigned long long)left, g_sup.o.drain_ms);
    else
        wlog(s, WEFT_LOG_INFO, "reload: drained; exiting");
    weft_server_stop(s);
}

/* SIGHUP or `reload`: start the successor, hand over, drain. 0 once handed over. */
static int reload(weft_server *s)
{
    char msg[64], err[256] = "";
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)monotonic_us());
    sdn_notify(msg);
    int fds[INH_MAX];
    char sys[INH_MAX];
    int n = listening_fds(s, fds, sys, INH_MAX);
    wlog(s, WEFT_LOG_INFO, "reload: starting %s with %d listening sockets", g_sup.o.exe, n);
    rld_child c;
    int rc = rld_start(g_sup.o.exe, g_sup.o.argv, fds, sys, n, &c, err, sizeof(err));
    if (rc == 0)
        rc = rld_wait_ready(&c, RLD_READY_TIMEOUT_MS, err, sizeof(err));
    if (rc != 0) {
        wlog(s, WEFT_LOG_ERROR, "reload failed: %s; this process goes on serving", err);
        sdn_notify("READY=1");
        return -1;
    }
    /* From here the successor listens: no socket file is ours to remove. */
    inh_set_handed_over();
    acc_release(s);
    stsvc_release(s->stats);
    /* Both threads close their listeners within a turn; 2 s bounds a stuck one. */
    for (int i = 0; i < 2000 && !(acc_released(s) && stsvc_released(s->stats)); i++)
        usleep(1000);
    rld_released(&c);
    g_sup.reloaded = 1;
    wlog(s, WEFT_LOG_INFO,
         "reload: successor pid %ld serves; draining %llu connections (up to %u ms)", (long)c.pid,
         (unsigned long long)open_conns(s), g_sup.o.drain_ms);
    drain(s);
    return 0;
}

static void *sup_main(void *arg)
{
    weft_server *s = arg;
    uint64_t wd = sdn_watchdog_usec();
    /* Half the interval, as sd_watchdog_enabled(3) advises. */
    int wait_ms = wd ? (int)(wd / 2000u > 0 ? wd / 2000u : 1) : -1;
    for (;;) {
        struct pollfd pf = {.fd = g_sup.pipe[0], .events = POLLIN};
        int r = poll(&pf, 1, wait_ms);
        if (r < 0 && errno != EINTR)
            break;
        if (r == 0) {
            sdn_notify("WATCHDOG=1");
            continue;
        }
        char ev;
        if (read(g_sup.pipe[0], &ev, 1) != 1)
            continue;
        if (ev == EV_QUIT)
            break;
        if (ev == EV_STOP) {
            sdn_notify("STOPPING=1");
            break;
        }
        if (ev == EV_RELOAD && reload(s) == 0)
            break;
    }
    return NULL;
}

int sup_start(weft_server *s)
{
    int successor = rld_is_successor();
    rld_ready();
    char msg[64];
    if (successor)
        snprintf(msg, sizeof(msg), "MAINPID=%ld\nREADY=1", (long)getpid());
    else
        snprintf(msg, sizeof(msg), "READY=1");
    sdn_notify(msg);
    /* The supervisor takes no signal: the handlers run on other threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = -pthread_create(&g_sup.tid, NULL, sup_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    g_sup.running = rc == 0;
    return rc;
}

int sup_finish(void)
{
    if (g_sup.running) {
        post(EV_QUIT);
        pthread_join(g_sup.tid, NULL);
        g_sup.running = 0;
    }
    g_sup.s = NULL;
    set_handlers(SIG_DFL);
    return g_sup.reloaded;
}
