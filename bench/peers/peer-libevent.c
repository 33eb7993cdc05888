/*
 * peer-libevent — an echo server for the weft benchmarks on libevent 2.1, in
 * memcached's shape (thread.c, memcached.c): the main thread accepts on its
 * own event_base and hands each fd, round robin, to a worker thread with its
 * own event_base, through a locked queue and one byte on that worker's notify
 * pipe (dispatch_conn_new / thread_libevent_process). Each connection is a
 * small state machine on one raw event (memcached's c->event and
 * update_event): it waits for input while it may read and for output while
 * output is pending; on input it reads until the socket has given what it
 * had and writes each read straight back, once. The interest changes, with
 * event_del + event_assign + event_add, only when the state does, so the
 * steady state makes no epoll_ctl call. Like memcached, it does not call
 * evthread_use_pthreads(): every event_base is used by one thread only, and
 * the acceptor reaches the workers only through the queues and pipes.
 *
 * The echo itself (read, write back, keep what the socket does not take, stop
 * reading past PEER_OUT_LIMIT) is peer_conn's, as in the other event-driven
 * peers; libevent is only the poller here, as it is in memcached.
 */
#define PEER_NAME "peer-libevent"

#include "peer_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

static const struct peer_desc g_desc = {
    .name = PEER_NAME,
    .about = "Echo server for the weft benchmarks: libevent, memcached's acceptor and workers.",
    .threads_help = "worker threads, each with its own event_base (default 2)",
    .default_threads = 2,
};

/*
 * Reads per input event, at most: a read that fills PEER_READ_CHUNK may have
 * left more behind, so it reads on (memcached's try_read_network), but a
 * pipelining client must not keep the worker from its other connections; the
 * level-triggered event reports what is left.
 */
#define READS_PER_EVENT 4

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
    char *rbuf;          /* PEER_READ_CHUNK bytes: every read of this worker's connections */
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

/* One connection (memcached's conn): the echo state and its one event. */
struct conn {
    struct peer_conn io;
    struct event ev; /* waits for ev_flags */
    short ev_flags;
    struct worker *w;
};

static void conn_close(struct conn *c)
{
    event_del(&c->ev);
    peer_conn_close(&c->io);
    free(c);
}

static void on_conn_event(evutil_socket_t fd, short which, void *arg);

/*
 * memcached's update_event: the event waits for what the connection waits
 * for now (input while it may read, output while output is pending), and is
 * re-armed only when that changes. Returns 0, or -1 when libevent fails.
 */
static int update_event(struct conn *c)
{
    short flags = EV_PERSIST | (peer_conn_want_read(&c->io) ? EV_READ : 0) |
                  (peer_conn_want_write(&c->io) ? EV_WRITE : 0);
    if (flags == c->ev_flags)
        return 0;
    if (event_del(&c->ev) != 0 ||
        event_assign(&c->ev, c->w->base, c->io.fd, flags, on_conn_event, c) != 0 ||
        event_add(&c->ev, NULL) != 0)
        return -1;
    c->ev_flags = flags;
    return 0;
}

/* memcached's drive_machine, for an echo: flush, read and echo, re-arm. */
static void on_conn_event(evutil_socket_t fd, short which, void *arg)
{
    struct conn *c = arg;
    if ((which & EV_WRITE) && peer_conn_flush(&c->io) != 0)
        goto close;
    for (int i = 0; (which & EV_READ) && i < READS_PER_EVENT && peer_conn_want_read(&c->io); i++) {
        int n = peer_conn_read_into(&c->io, c->w->rbuf);
        if (n < 0)
            goto close;
        if (n < PEER_READ_CHUNK)
            break; /* drained (a short read), EAGAIN, or the end of input */
    }
    if (peer_conn_done(&c->io) || update_event(c) != 0)
        goto close;
    return;
close:
    conn_close(c);
}

static void conn_new(struct worker *w, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->io.fd = fd;
    c->w = w;
    c->ev_flags = EV_READ | EV_PERSIST;
    if (event_assign(&c->ev, w->base, fd, c->ev_flags, on_conn_event, c) != 0 ||
        event_add(&c->ev, NULL) != 0) {
        peer_conn_close(&c->io);
        free(c);
        return;
    }
    w->conns++;
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
    w->rbuf = malloc(PEER_READ_CHUNK);
    if (!w->base || !w->rbuf || evutil_make_socket_nonblocking(w->notify_receive_fd) != 0)
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
    /* peer_buf writes with MSG_NOSIGNAL; SIGPIPE is ignored all the same. */
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
