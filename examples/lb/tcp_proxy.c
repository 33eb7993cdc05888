/*
 * examples/lb/tcp_proxy.c — weft-lb's tcp mode: each client connection is
 * linked (weft_link) to a connection to a backend chosen as in http mode.
 * The link waits until the backend connection opens, so a refused or timed
 * out connect is retried on another backend (--retries) before the client
 * has lost anything: what it sent meanwhile waits in its ring, and the link
 * forwards it first. Once linked, weft_link does the rest (both ways,
 * backpressure, half-close, close).
 */
#include <errno.h>
#include <stdlib.h>

#include "lb.h"

typedef struct lb_tcp {
    weft_conn *client, *backend;
    lb_worker *w;
    int be, tries, linked;
    uint64_t tried;
} lb_tcp;

static const weft_handler tcp_backend_h;

/* Connect t to a backend not tried yet; close the client when none is left. */
static void tcp_connect(lb_tcp *t)
{
    for (;;) {
        int be = lb_pick(t->w, t->tried);
        if (be < 0) {
            weft_abort(t->client);
            return;
        }
        t->be = be;
        t->tried |= 1ULL << be;
        weft_connect_opts o = lb_backend_connect_opts(&lb_backends[be], lb_cfg.connect_timeout);
        lb_store(&t->w->active[be], t->w->active[be] + 1);
        lb_add_stat(&t->w->st[be].requests, 1);
        int rc = weft_connect(weft_conn_server(t->client), t->w->index, lb_backends[be].addr, &o,
                              &tcp_backend_h, t, &t->backend);
        if (rc == 0) {
            weft_conn_set_userdata(t->backend, t);
            return;
        }
        t->backend = NULL;
        lb_store(&t->w->active[be], t->w->active[be] - 1);
        lb_add_stat(&t->w->st[be].failures, 1);
        if (rc == -ECONNREFUSED)
            lb_backend_failed(be);
        if (t->tries++ >= lb_cfg.retries) {
            weft_abort(t->client);
            return;
        }
        lb_add_stat(&t->w->st[be].retries, 1);
    }
}

static void tcp_client_open(weft_conn *c)
{
    lb_tcp *t = calloc(1, sizeof(*t));
    if (!t) {
        weft_abort(c);
        return;
    }
    t->client = c;
    t->w = &lb_workers[weft_conn_worker(c)];
    weft_conn_set_userdata(c, t);
    weft_counter_add(c, lb_counter[LB_K_REQUESTS], 1);
    tcp_connect(t);
}

/* Before the link: the bytes wait in the ring (the link forwards them). */
static void tcp_client_data(weft_conn *c, weft_ring *in) { (void)c, (void)in; }

static void tcp_client_close(weft_conn *c, weft_close_reason r)
{
    (void)r;
    lb_tcp *t = weft_conn_userdata(c);
    if (!t)
        return;
    t->client = NULL;
    if (t->backend && !t->linked)
        weft_abort(t->backend); /* still connecting: its on_close frees t */
    else if (!t->backend)
        free(t);
}

static void tcp_backend_open(weft_conn *bc)
{
    lb_tcp *t = weft_conn_userdata(bc);
    if (weft_link(t->client, bc) != 0) {
        weft_abort(t->client);
        return;
    }
    t->linked = 1;
}

static void tcp_backend_data(weft_conn *c, weft_ring *in)
{
    (void)c;
    weft_ring_consume(in, weft_ring_len(in)); /* not reached once linked */
}

static void tcp_backend_close(weft_conn *bc, weft_close_reason r)
{
    lb_tcp *t = weft_conn_userdata(bc);
    lb_store(&t->w->active[t->be], t->w->active[t->be] - 1);
    t->backend = NULL;
    if (!t->linked && t->client) {
        /* never connected: another backend, if retries are left */
        lb_add_stat(&t->w->st[t->be].failures, 1);
        if (r == WEFT_CLOSE_CONNECT_REFUSED || r == WEFT_CLOSE_CONNECT_TIMEOUT ||
            r == WEFT_CLOSE_UNREACHABLE || r == WEFT_CLOSE_ERROR)
            lb_backend_failed(t->be);
        if (t->tries++ < lb_cfg.retries) {
            lb_add_stat(&t->w->st[t->be].retries, 1);
            tcp_connect(t);
        } else {
            weft_abort(t->client);
        }
        return;
    }
    if (!t->client)
        free(t);
}

static const weft_handler tcp_client_h = {
    .on_open = tcp_client_open,
    .on_data = tcp_client_data,
    .on_close = tcp_client_close,
};
static const weft_handler tcp_backend_h = {
    .on_open = tcp_backend_open,
    .on_data = tcp_backend_data,
    .on_close = tcp_backend_close,
};

const weft_handler *lb_tcp_handler(void) { return &tcp_client_h; }
