/*
 * peer-libevent — an echo server for the weft benchmarks on libevent 2.1, in
 * memcached's shape (thread.c): the main thread accepts on its own event_base
 * and hands each fd, round robin, to a worker thread with its own event_base,
 * through a locked queue and one byte on that worker's notify pipe
 * (dispatch_conn_new / thread_libevent_process). Workers echo with
 * bufferevents. Like memcached, it does not call evthread_use_pthreads():
 * every event_base and bufferevent is used by one thread only, and the
 * acceptor reaches the workers only through the queues and pipes.
 */
#define PEER_NAME "peer-libevent"

#include "peer_common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

static const struct peer_desc g_desc = {
    .name = PEER_NAME,
    .about = "Echo server for the weft benchmarks: libevent, memcached's acceptor and workers.",
    .threads_help = "worker threads, each with its own event_base (default 2)",
    .default_threads = 2,
};

/*
 * Backpressure with bufferevents: the read callback moves all input to the
 * output (evbuffer_add_buffer moves chains, no copy) and disables reading once
 * PEER_OUT_LIMIT bytes wait; the write low watermark OUT_LOW calls the write
 * callback as the output drains under it, which enables reading again.
 */
#define OUT_LOW (PEER_OUT_LIMIT / 2)

/* ---- workers: one event_base each (memcached's LIBEVENT_THREAD) -------------- */

struct conn_item { /* memcached's CQ_ITEM */
    int fd;
    struct conn_item *next;
};

struct worker {
    pthread_t thread;
    struct event_base *base;
    struct event *notify_event;
    int notify_receive_fd; /* the acceptor writes 'c' (a connection) or 'q' (quit) */
    int notify_send_fd;
    pthread_mutex_t lock; /* guards the queue below, filled by the acceptor */
    struct conn_item *head, *tail;
    unsigned long conns; /* written by the worker only, read after join */
};

static struct worker *g_workers;
static int g_nworkers;

static void cq_push(struct worker *w, struct conn_item *item)
{
    item->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->tail)
        w->tail->next = item;
    else
        w->head = item;
    w->tail = item;
    pthread_mutex_unlock(&w->lock);
}

static struct conn_item *cq_pop(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    struct conn_item *item = w->head;
    if (item) {
        w->head = item->next;
        if (!w->head)
            w->tail = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    return item;
}

static void echo_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    evbuffer_add_buffer(out, bufferevent_get_input(bev));
    if (evbuffer_get_length(out) >= PEER_OUT_LIMIT)
        bufferevent_disable(bev, EV_READ);
}

static void echo_write(struct bufferevent *bev, void *arg)
{
    /* The output is at or under OUT_LOW. */
    if (!(bufferevent_get_enabled(bev) & EV_READ))
        bufferevent_enable(bev, EV_READ);
}

/* After the client's end of input: called once the output is empty (watermark 0). */
static void echo_drained(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_free(bev);
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
        evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        /* Half-closed: finish the echo, then close. */
        bufferevent_disable(bev, EV_READ);
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_setcb(bev, NULL, echo_drained, echo_event, NULL);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        bufferevent_free(bev); /* BEV_OPT_CLOSE_ON_FREE closes the fd */
}

static void conn_new(struct worker *w, int fd)
{
    struct bufferevent *bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        close(fd);
        return;
    }
    w->conns++;
    bufferevent_setcb(bev, echo_read, echo_write, echo_event, NULL);
    bufferevent_setwatermark(bev, EV_WRITE, OUT_LOW, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* memcached's thread_libevent_process: one byte on the pipe per queued connection. */
static void worker_notified(evutil_socket_t fd, short which, void *arg)
{
    struct worker *w = arg;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == 'q') {
            event_base_loopbreak(w->base);
        } else if (buf[i] == 'c') {
            struct conn_item *item = cq_pop(w);
            if (item) {
                conn_new(w, item->fd);
                free(item);
            }
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static int worker_setup(struct worker *w)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    w->notify_receive_fd = fds[0];
    w->notify_send_fd = fds[1]; /* blocking: a worker far behind slows the acceptor down */
    pthread_mutex_init(&w->lock, NULL);
    w->base = event_base_new();
    if (!w->base || evutil_make_socket_nonblocking(w->notify_receive_fd) != 0)
        return -1;
    w->notify_event =
        event_new(w->base, w->notify_receive_fd, EV_READ | EV_PERSIST, worker_notified, w);
    if (!w->notify_event || event_add(w->notify_event, NULL) != 0)
        return -1;
    return 0;
}

/* Writes one command byte to w's pipe. */
static void notify_worker(struct worker *w, char cmd)
{
    while (write(w->notify_send_fd, &cmd, 1) != 1) {
        if (errno != EINTR) {
            perror(PEER_NAME ": writing to the worker notify pipe");
            return;
        }
    }
}

/* ---- the acceptor ---------------------------------------------------------- */

static unsigned long g_accepted;

/* memcached's dispatch_conn_new: queue the fd on the next worker, round robin, and wake it. */
static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    static int last;
    struct conn_item *item = malloc(sizeof(*item));
    if (!item) {
        close(fd);
        return;
    }
    g_accepted++;
    struct worker *w = &g_workers[last];
    last = (last + 1) % g_nworkers;
    item->fd = fd;
    cq_push(w, item);
    notify_worker(w, 'c');
}

/*
 * evconnlistener calls this for an accept error it does not retry by itself.
 * Out of fds, the backlog would keep the listener readable forever: shed it
 * (peer_shed).
 */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    if (err != EMFILE && err != ENFILE) {
        fprintf(stderr, PEER_NAME ": accept: %s\n", evutil_socket_error_to_string(err));
        return;
    }
    peer_shed(evconnlistener_get_fd(l));
}

static void on_signal(evutil_socket_t sig, short which, void *arg) { event_base_loopbreak(arg); }

int main(int argc, char **argv)
{
    struct peer_opts o;
    int rc = peer_init(argc, argv, &g_desc, &o);
    if (rc != PEER_RUN)
        return rc;
    /* bufferevents write with writev(2): a closed peer would raise SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    g_nworkers = o.threads;
    g_workers = calloc((size_t)g_nworkers, sizeof(*g_workers));
    if (!g_workers) {
        fprintf(stderr, PEER_NAME ": out of memory\n");
        return 1;
    }
    for (int i = 0; i < g_nworkers; i++) {
        if (worker_setup(&g_workers[i]) != 0) {
            fprintf(stderr, PEER_NAME ": cannot set up worker %d\n", i);
            return 1;
        }
    }

    struct event_base *base = event_base_new();
    unsigned port = 0;
    int lfd = peer_listen(&o, &port);
    if (lfd < 0)
        return 1;
    /* Backlog 0: the socket is listening already. Accepted fds come non-blocking. */
    struct evconnlistener *l =
        base ? evconnlistener_new(base, on_accept, NULL,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, lfd)
             : NULL;
    struct event *sigint = base ? evsignal_new(base, SIGINT, on_signal, base) : NULL;
    struct event *sigterm = base ? evsignal_new(base, SIGTERM, on_signal, base) : NULL;
    if (!l || !sigint || !sigterm || event_add(sigint, NULL) != 0 ||
        event_add(sigterm, NULL) != 0) {
        fprintf(stderr, PEER_NAME ": cannot set up the acceptor\n");
        return 1;
    }
    evconnlistener_set_error_cb(l, on_accept_error);

    /* Workers start with SIGINT and SIGTERM blocked: the acceptor's base takes them. */
    sigset_t old;
    peer_block_stop_signals(NULL, &old);
    for (int i = 0; i < g_nworkers; i++) {
        int err = pthread_create(&g_workers[i].thread, NULL, worker_main, &g_workers[i]);
        if (err) {
            fprintf(stderr, PEER_NAME ": pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    peer_print_ready(o.bind, port);

    event_base_dispatch(base);

    evconnlistener_free(l);
    unsigned long conns = 0;
    for (int i = 0; i < g_nworkers; i++)
        notify_worker(&g_workers[i], 'q');
    for (int i = 0; i < g_nworkers; i++) {
        pthread_join(g_workers[i].thread, NULL);
        conns += g_workers[i].conns;
    }
    fprintf(stderr, PEER_NAME ": %d worker%s, accepted %lu connections (%lu served); shed %lu\n",
            g_nworkers, g_nworkers == 1 ? "" : "s", g_accepted, conns, peer_shed_count);
    return 0;
}
