/*
 * workers/conn_api.c — what a handler may do with its connection (the
 * "connections" calls of weft.h). All on the owning worker's thread.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "buffers/ring.h"
#include "workers/conn.h"
#include "workers/queues.h"

static inline const weft_config *cfg_of(const weft_conn *c) { return c->w->g->cfg; }

int weft_send(weft_conn *c, const void *data, size_t len)
{
    wk_worker *w = c->w;
    if (c->flags & (C_CLOSED | C_CLOSING))
        return -EPIPE;
    size_t before = weft_ring_len(&c->out);
    if (before + len > cfg_of(c)->output_cap) {
        conn_close(w, c, WEFT_CLOSE_OUTPUT_CAP);
        return -ENOBUFS;
    }
    if (len == 0)
        return 0;
    if (conn_reserve_out(w, c, before + len) != 0) {
        conn_close(w, c, WEFT_CLOSE_ERROR);
        return -ENOMEM;
    }
    ring_append(&c->out, data, len);
    return conn_after_send(w, c, before);
}

int weft_send_from(weft_conn *c, weft_ring *from, size_t len)
{
    if (c->flags & (C_CLOSED | C_CLOSING))
        return -EPIPE;
    size_t have = weft_ring_len(from);
    if (len > have)
        len = have;
    if (len == 0)
        return 0;
    /*
     * The echo fast path: everything moves to an empty output, so the
     * storage changes hands and nothing is copied. `from` keeps the output's
     * old (empty) storage, if any, and reads as empty.
     */
    if (len == have && from != &c->out && weft_ring_len(&c->out) == 0 &&
        len <= cfg_of(c)->output_cap) {
        ring_swap(&c->out, from);
        weft_ring_consume(from, weft_ring_len(from));
        return conn_after_send(c->w, c, 0);
    }
    struct iovec iov[2];
    int k = weft_ring_peek(from, iov);
    size_t left = len;
    int rc = 0;
    for (int i = 0; i < k && left > 0; i++) {
        size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
        rc = weft_send(c, iov[i].iov_base, n);
        if (rc < 0)
            return rc;
        left -= n;
    }
    weft_ring_consume(from, len);
    return rc;
}

int weft_send_file(weft_conn *c, int fd, off_t off, uint64_t len)
{
    return conn_send_file(c->w, c, fd, off, len);
}

void weft_close(weft_conn *c) { conn_close_after_flush(c->w, c, WEFT_CLOSE_HANDLER); }

void weft_abort(weft_conn *c) { conn_abort(c->w, c, WEFT_CLOSE_HANDLER); }

void weft_conn_resume(weft_conn *c)
{
    if (c->flags & (C_CLOSED | C_CLOSING))
        return;
    c->flags |= C_REDELIVER;
    wk_ready_push(c->w, c);
}

void weft_read_pause(weft_conn *c) { conn_read_pause(c->w, c); }
void weft_read_resume(weft_conn *c) { conn_read_resume(c->w, c); }
int weft_link(weft_conn *a, weft_conn *b) { return conn_link(a->w, a, b); }
int weft_conn_set_handler(weft_conn *c, const weft_handler *h, void *ud)
{
    return conn_set_handler(c->w, c, h, ud);
}
weft_conn *weft_conn_linked(const weft_conn *c) { return c->x ? c->x->link : NULL; }
int weft_conn_listener(const weft_conn *c) { return c->o->listener; }
void *weft_conn_origin_userdata(const weft_conn *c) { return c->o->ud; }

void *weft_conn_userdata(const weft_conn *c) { return c->ud; }
void weft_conn_set_userdata(weft_conn *c, void *ud) { c->ud = ud; }
int weft_conn_worker(const weft_conn *c) { return c->w->index; }
weft_server *weft_conn_server(const weft_conn *c) { return c->w->g->srv; }
int weft_conn_fd(const weft_conn *c) { return c->fd; }
size_t weft_conn_pending_output(const weft_conn *c) { return conn_pending_out(c); }

socklen_t weft_conn_peer(const weft_conn *c, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (c->family == AF_INET) {
        struct sockaddr_in *a = (void *)ss;
        a->sin_family = AF_INET;
        a->sin_port = c->port;
        memcpy(&a->sin_addr, c->addr, 4);
        return sizeof(*a);
    }
    if (c->family == AF_INET6) {
        struct sockaddr_in6 *a = (void *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = c->port;
        memcpy(&a->sin6_addr, c->addr, 16);
        return sizeof(*a);
    }
    return 0;
}

void weft_counter_add(weft_conn *c, int id, uint64_t n)
{
    if ((unsigned)id < WEFT_MAX_COUNTERS)
        ST_ADD(&c->w->st, user[id], n);
}

void weft_record_latency(weft_conn *c, uint64_t ns) { hist_record(&c->w->st.handler, ns); }
