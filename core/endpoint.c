/*
 * core/endpoint.c — accepting and serving the stats thread's clients.
 */
#include "core/endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

int ep_init(endpoint *e, const ep_proto *proto, void *ctx, struct weft_server *srv, st_endpoint *st,
            int *spare)
{
    memset(e, 0, sizeof(*e));
    e->proto = proto;
    e->ctx = ctx;
    e->srv = srv;
    e->st = st;
    e->spare = spare;
    e->lfd = -1;
    e->clients = calloc((size_t)proto->max_clients, sizeof(*e->clients));
    return e->clients ? 0 : -ENOMEM;
}

static void client_free(endpoint *e, int i)
{
    ep_client *c = e->clients[i];
    close(c->fd);
    free(c->out);
    free(c);
    e->clients[i] = e->clients[--e->nclients];
}

void ep_fini(endpoint *e)
{
    while (e->nclients)
        client_free(e, 0);
    free(e->clients);
    e->clients = NULL;
}

void ep_answer(ep_client *c, char *text)
{
    if (!text) {
        c->closing = 1;
        return;
    }
    c->out = text;
    c->outlen = strlen(text);
    c->outoff = 0;
}

int ep_poll_max(const endpoint *e) { return 1 + e->proto->max_clients; }

uint64_t ep_pause_end(const endpoint *e) { return e->paused_until; }

int ep_poll_fill(endpoint *e, struct pollfd *pf, uint64_t now)
{
    int n = 0;
    if (e->paused_until && now >= e->paused_until)
        e->paused_until = 0;
    e->polled_listener = e->lfd >= 0 && !e->paused_until;
    if (e->polled_listener)
        pf[n++] = (struct pollfd){.fd = e->lfd, .events = POLLIN};
    for (int i = 0; i < e->nclients; i++) {
        ep_client *c = e->clients[i];
        short ev = (c->out && c->outoff < c->outlen) ? POLLOUT : 0;
        if (c->draining || !c->out)
            ev |= POLLIN;
        pf[n++] = (struct pollfd){.fd = c->fd, .events = ev};
    }
    return n;
}

/* Read what c sent (nothing while its answer is pending). 0, or -1 to close. */
static int client_read(endpoint *e, ep_client *c, uint64_t now)
{
    if (c->draining) {
        char sink[4096];
        ssize_t n = read(c->fd, sink, sizeof(sink));
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ? -1 : 0;
    }
    if (c->out || c->inlen >= e->proto->in_max)
        return 0;
    ssize_t n = read(c->fd, c->in + c->inlen, e->proto->in_max - c->inlen);
    if (n == 0)
        return -1; /* the peer closed: drop any unsent answer */
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c->inlen += (size_t)n;
    c->since = now;
    e->proto->input(e->ctx, c);
    return 0;
}

/* Send what is pending of c's answer. 0, or -1 to close. */
static int client_write(endpoint *e, ep_client *c, uint64_t now)
{
    if (c->out && c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (n > 0) {
            c->outoff += (size_t)n;
            c->since = now;
        }
    }
    if (c->out && c->outoff == c->outlen) {
        free(c->out);
        c->out = NULL;
        if (c->draining)
            shutdown(c->fd, SHUT_WR); /* the refusal is out: EOF, then drain */
        else if (!c->closing)
            e->proto->input(e->ctx, c); /* requests already read */
    }
    return 0;
}

/* One client's turn. Returns 0 to keep it, -1 to close it. */
static int client_io(endpoint *e, ep_client *c, short revents, uint64_t now)
{
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && client_read(e, c, now) != 0)
        return -1;
    if (client_write(e, c, now) != 0)
        return -1;
    if (c->closing && !c->out && !c->draining)
        return -1;
    const ep_proto *p = e->proto;
    uint64_t from = p->wait_from_accept && !c->out && !c->draining ? c->accepted : c->since;
    uint64_t limit = c->draining ? EP_DRAIN_NS : c->out ? EP_STALL_NS : p->wait_ns;
    if (now - from <= limit)
        return 0;
    ST_ADD(e->st, timeouts, 1);
    return -1;
}

static void refuse(endpoint *e, int fd, ep_refusal why)
{
    e->proto->refuse(e->ctx, fd, why);
    close(fd);
    ST_ADD(e->st, rejected, 1);
}

/* accept(2) failed with err (see the header: fd exhaustion). */
static void accept_failed(endpoint *e, int err, uint64_t now)
{
    e->paused_until = now + EP_PAUSE_MS * 1000000ull;
    if (err != EMFILE && err != ENFILE) {
        wlog_limit(e->srv, LIM_ENDPOINT_FDS, "%s: accept: %s: pausing %d ms", e->proto->name,
                   weft_strerror(err), EP_PAUSE_MS);
        return;
    }
    ST_ADD(e->st, emfile, 1);
    wlog_limit(e->srv, LIM_ENDPOINT_FDS, "%s: accept: %s: refusing what waits, pausing %d ms",
               e->proto->name, weft_strerror(err), EP_PAUSE_MS);
    if (*e->spare >= 0) {
        close(*e->spare);
        *e->spare = -1;
    }
    for (int i = 0; i < EP_ACCEPT_BATCH; i++) {
        int fd = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        refuse(e, fd, EP_NO_ROOM);
    }
    *e->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_clients(endpoint *e, uint64_t now)
{
    const ep_proto *p = e->proto;
    for (int i = 0; i < EP_ACCEPT_BATCH; i++) {
        int fd = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) /* the peer gave up while queued */
                continue;
            if (errno != EAGAIN)
                accept_failed(e, errno, now);
            return;
        }
        if (e->nclients >= p->max_clients) {
            wlog_limit(e->srv, LIM_ENDPOINT_BUSY, "%s: all %d client slots busy: refusing", p->name,
                       p->max_clients);
            refuse(e, fd, EP_BUSY);
            continue;
        }
        ep_client *c = calloc(1, sizeof(*c) + p->in_max);
        if (!c) {
            refuse(e, fd, EP_NO_ROOM);
            e->paused_until = now + EP_PAUSE_MS * 1000000ull;
            return;
        }
        c->fd = fd;
        c->accepted = c->since = now;
        e->clients[e->nclients++] = c;
    }
}

void ep_serve(endpoint *e, const struct pollfd *pf, uint64_t now)
{
    int first = e->polled_listener;
    /* Backwards: client_free moves the last client into the freed slot. */
    for (int i = e->nclients - 1; i >= 0; i--)
        if (client_io(e, e->clients[i], pf[first + i].revents, now) != 0)
            client_free(e, i);
    if (first && (pf[0].revents & POLLIN))
        accept_clients(e, now);
}
