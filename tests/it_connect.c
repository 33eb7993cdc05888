/*
 * tests/it_connect.c — outbound connections on real sockets (weft_connect):
 * to a TCP peer, by host name, to a Unix socket; refused; timed out (a
 * peer whose accept queue is full drops the SYN); failures returned at
 * once; the owner-thread rule; and the per-worker hooks.
 *
 * The server runs in-process with two workers; each attempt is posted to
 * worker 0 (weft_post), which calls weft_connect on its own thread. The
 * peers are plain sockets served by a thread of this program.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "itlib.h"
#include "weft/weft.h"

/* ---- an echo peer on a listening socket (TCP or Unix) ------------------- */

typedef struct peer {
    int lfd;
    pthread_t tid;
    atomic_int stop;
} peer;

static void *peer_main(void *arg)
{
    peer *p = arg;
    while (!atomic_load(&p->stop)) {
        struct pollfd pf = {.fd = p->lfd, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        char buf[256];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            if (write(fd, buf, (size_t)n) != n)
                break;
        close(fd);
    }
    return NULL;
}

static uint16_t tcp_listener(int *lfd, int backlog)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    *lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    IT_CHECK(*lfd >= 0, "socket: %s", strerror(errno));
    IT_CHECK(bind(*lfd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s", strerror(errno));
    IT_CHECK(listen(*lfd, backlog) == 0, "listen: %s", strerror(errno));
    IT_CHECK(getsockname(*lfd, (struct sockaddr *)&a, &len) == 0, "getsockname");
    return ntohs(a.sin_port);
}

static void peer_start(peer *p)
{
    atomic_store(&p->stop, 0);
    IT_CHECK(pthread_create(&p->tid, NULL, peer_main, p) == 0, "peer thread");
}

static void peer_stop(peer *p)
{
    atomic_store(&p->stop, 1);
    pthread_join(p->tid, NULL);
    close(p->lfd);
}

/* ---- the handler of the outbound connections ------------------------------ */

static atomic_int g_opened, g_closed, g_reason, g_echoed;
static atomic_int g_hook_start, g_hook_stop, g_hook_wrong_thread;
static int g_tag;

static void out_open(weft_conn *c)
{
    if (weft_conn_origin_userdata(c) == &g_tag && weft_conn_listener(c) == -1)
        atomic_fetch_add(&g_opened, 1);
    weft_send(c, "ping\n", 5);
}

static void out_data(weft_conn *c, weft_ring *in)
{
    if (weft_ring_len(in) < 5)
        return;
    char b[5];
    weft_ring_copyout(in, 0, b, 5);
    weft_ring_consume(in, weft_ring_len(in));
    if (memcmp(b, "ping\n", 5) == 0)
        atomic_fetch_add(&g_echoed, 1);
    weft_close(c);
}

static void out_close(weft_conn *c, weft_close_reason why)
{
    (void)c;
    atomic_store(&g_reason, (int)why);
    atomic_fetch_add(&g_closed, 1);
}

static const weft_handler out_h = {.on_open = out_open, .on_data = out_data, .on_close = out_close};

typedef struct attempt {
    char addr[128];
    uint32_t timeout_ms;
    atomic_int rc;   /* weft_connect's result */
    atomic_int done; /* weft_connect returned */
} attempt;

static void do_connect(weft_server *s, int worker, void *arg)
{
    attempt *a = arg;
    weft_conn *c = NULL;
    weft_connect_opts o = {.timeout_ms = a->timeout_ms};
    int rc = weft_connect(s, worker, a->addr, &o, &out_h, &g_tag, &c);
    atomic_store(&a->rc, rc);
    atomic_store(&a->done, 1);
}

/* Post one attempt to worker 0; wait until it returned and, when it was
 * accepted, until its connection closed. Returns weft_connect's result. */
static int run_attempt(weft_server *s, const char *addr, uint32_t timeout_ms)
{
    static attempt a;
    memset(&a, 0, sizeof(a));
    snprintf(a.addr, sizeof(a.addr), "%s", addr);
    a.timeout_ms = timeout_ms;
    int closed0 = atomic_load(&g_closed);
    IT_CHECK(weft_post(s, 0, do_connect, &a) == 0, "weft_post");
    int64_t end = itl_now_ms() + 10000;
    while (!atomic_load(&a.done) && itl_now_ms() < end)
        itl_sleep_ms(5);
    IT_CHECK(atomic_load(&a.done), "%s: weft_connect did not return", addr);
    int rc = atomic_load(&a.rc);
    if (rc == 0) {
        while (atomic_load(&g_closed) == closed0 && itl_now_ms() < end)
            itl_sleep_ms(5);
        IT_CHECK(atomic_load(&g_closed) == closed0 + 1, "%s: no on_close", addr);
    }
    return rc;
}

static void hook_start(weft_server *s, int worker, void *arg)
{
    (void)s;
    (void)arg;
    int cpu, node;
    if (weft_server_worker_cpu(s, worker, &cpu, &node) != 0)
        atomic_fetch_add(&g_hook_wrong_thread, 1);
    atomic_fetch_add(&g_hook_start, 1);
}

static void hook_stop(weft_server *s, int worker, void *arg)
{
    (void)s;
    (void)worker;
    (void)arg;
    atomic_fetch_add(&g_hook_stop, 1);
}

static void no_data(weft_conn *c, weft_ring *in)
{
    (void)c;
    weft_ring_consume(in, weft_ring_len(in));
}

int main(void)
{
    weft_config cfg = weft_config_default();
    cfg.port = 0;
    cfg.workers = 2;
    cfg.stats_interval_ms = 0;
    weft_handler h = {.on_data = no_data};
    weft_server *s;
    IT_CHECK(weft_server_new(&cfg, &h, NULL, &s) == 0, "server");
    IT_CHECK(weft_server_worker_hooks(s, hook_start, hook_stop, NULL) == 0, "hooks");
    IT_CHECK(weft_server_start(s) == 0, "start");
    IT_CHECK(weft_server_worker_hooks(s, hook_start, hook_stop, NULL) == -EBUSY,
             "hooks after start must be refused");

    /* A TCP echo peer: connected, on_open, echoed, closed by us. */
    peer tp;
    char addr[128];
    uint16_t port = tcp_listener(&tp.lfd, 16);
    peer_start(&tp);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    IT_CHECK(run_attempt(s, addr, 2000) == 0, "connect to %s", addr);
    IT_CHECK(atomic_load(&g_opened) == 1 && atomic_load(&g_echoed) == 1, "tcp: opened %d echoed %d",
             atomic_load(&g_opened), atomic_load(&g_echoed));
    IT_CHECK(atomic_load(&g_reason) == WEFT_CLOSE_HANDLER, "tcp: reason %d",
             atomic_load(&g_reason));

    /* By host name, resolved off the worker threads. */
    snprintf(addr, sizeof(addr), "localhost:%u", port);
    IT_CHECK(run_attempt(s, addr, 2000) == 0, "connect to %s", addr);
    IT_CHECK(atomic_load(&g_echoed) == 2, "localhost: not echoed (reason %d)",
             atomic_load(&g_reason));
    IT_CHECK(run_attempt(s, "no-such-host.invalid:80", 2000) == 0, "a name to resolve");
    IT_CHECK(atomic_load(&g_reason) == WEFT_CLOSE_RESOLVE, "bad name: reason %d",
             atomic_load(&g_reason));
    peer_stop(&tp);

    /* Refused: nobody listens on the port any more. */
    IT_CHECK(run_attempt(s, addr, 2000) == 0, "a refused connect starts");
    IT_CHECK(atomic_load(&g_reason) == WEFT_CLOSE_CONNECT_REFUSED, "refused: reason %d",
             atomic_load(&g_reason));
    IT_CHECK(atomic_load(&g_opened) == 2, "a refused connection must not run on_open");

    /* Timed out: a listener that never accepts, its queue full, drops the SYN. */
    int full;
    port = tcp_listener(&full, 0);
    int fill[4], nfill = 0;
    for (int i = 0; i < 4; i++) {
        fill[i] = itl_connect("127.0.0.1", port, 300, 0);
        if (fill[i] >= 0)
            nfill++;
    }
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    int64_t t0 = itl_now_ms();
    IT_CHECK(run_attempt(s, addr, 300) == 0, "a connect that will time out starts");
    int64_t took = itl_now_ms() - t0;
    IT_CHECK(atomic_load(&g_reason) == WEFT_CLOSE_CONNECT_TIMEOUT,
             "timeout: reason %d after %lld ms (%d queue fillers)", atomic_load(&g_reason),
             (long long)took, nfill);
    for (int i = 0; i < 4; i++)
        if (fill[i] >= 0)
            close(fill[i]);
    close(full);

    /* A Unix socket peer. */
    peer up;
    char path[108];
    snprintf(path, sizeof(path), "/tmp/weft-it-connect-%d.sock", (int)getpid());
    unlink(path);
    struct sockaddr_un ua = {.sun_family = AF_UNIX};
    snprintf(ua.sun_path, sizeof(ua.sun_path), "%s", path);
    up.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    IT_CHECK(bind(up.lfd, (struct sockaddr *)&ua, sizeof(ua)) == 0 && listen(up.lfd, 8) == 0,
             "unix listener: %s", strerror(errno));
    peer_start(&up);
    snprintf(addr, sizeof(addr), "unix:%s", path);
    IT_CHECK(run_attempt(s, addr, 2000) == 0, "connect to %s", addr);
    IT_CHECK(atomic_load(&g_echoed) == 3, "unix: not echoed (reason %d)", atomic_load(&g_reason));
    peer_stop(&up);
    unlink(path);

    /* Failures at once: nothing created, nothing closed. */
    int closed0 = atomic_load(&g_closed);
    IT_CHECK(run_attempt(s, addr, 2000) == -ENOENT, "a Unix path that is gone");
    IT_CHECK(run_attempt(s, "not an address", 2000) == -EINVAL, "a bad address");
    IT_CHECK(atomic_load(&g_closed) == closed0, "failed at once must not call on_close");
    /* Only the owner may open: this thread is no worker. */
    weft_conn *c;
    IT_CHECK(weft_connect(s, 0, "127.0.0.1:9", NULL, &out_h, NULL, &c) == -EPERM,
             "weft_connect off the worker thread");

    weft_server_stop(s);
    IT_CHECK(weft_server_wait(s) == 0, "wait");
    IT_CHECK(atomic_load(&g_hook_start) == 2 && atomic_load(&g_hook_stop) == 2,
             "hooks: %d starts, %d stops", atomic_load(&g_hook_start), atomic_load(&g_hook_stop));
    IT_CHECK(atomic_load(&g_hook_wrong_thread) == 0, "hook arguments");
    weft_stats st;
    weft_server_stats(s, &st);
    IT_CHECK(st.outbound == 6 && st.connects == 3, "outbound %llu, connects %llu",
             (unsigned long long)st.outbound, (unsigned long long)st.connects);
    IT_CHECK(st.closed_by[WEFT_CLOSE_CONNECT_REFUSED] == 1 &&
                 st.closed_by[WEFT_CLOSE_CONNECT_TIMEOUT] == 1 &&
                 st.closed_by[WEFT_CLOSE_RESOLVE] == 1,
             "connect failures by reason");
    weft_server_free(s);
    printf("it_connect: tcp, name, unix, refused, timeout (%lld ms), failures at once, hooks: ok\n",
           (long long)took);
    return 0;
}
