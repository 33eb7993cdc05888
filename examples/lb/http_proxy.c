/*
 * examples/lb/http_proxy.c — weft-lb's http mode.
 *
 * A client connection carries one request at a time: its head is parsed
 * whole once it is in the input ring, rewritten (hop-by-hop headers out,
 * X-Forwarded-For and -Proto in) and sent to a backend connection; the
 * body and then the response stream through, a piece per read, under
 * backpressure both ways (an output over the high watermark pauses the
 * other side's reading). A pipelined next request waits in the client's
 * ring until the response is complete; then the client is resumed.
 *
 *   client:  IDLE --head--> (QUEUED) --> ACTIVE --response done--> IDLE
 *                                                 '--close---> closed
 *   backend: CONNECTING --open--> BUSY --response done--> IDLE (pooled)
 *                                   '-- unframed, close, extra bytes --> closed
 *
 * Retries are decided in one place, backend_lost():
 *   - a connect that failed (refused, timed out, unreachable) is retried on
 *     another backend, up to --retries; the body of a request is held in
 *     the client's ring until its connection opens, so nothing was sent;
 *   - a request already sent is retried only when no byte of its response
 *     reached the client, its method is idempotent and it had no body;
 *   - a pooled connection that closes before any byte of the answer (the
 *     keep-alive race: the backend closed it as it was reused) is retried
 *     once on a fresh connection to the same backend, not counted as a
 *     failure. Requests with a body or a non-idempotent method never go on
 *     a pooled connection, so this race cannot hit them.
 * A response timeout is never retried (504): the request may have acted.
 *
 * Closing is synchronous in weft (a close runs on_close before it returns),
 * so each side marks itself `in_cb` while it calls into the other; a close
 * of the other side then only detaches, and the caller finishes the job.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_msg.h"
#include "lb.h"

enum { C_IDLE, C_QUEUED, C_ACTIVE, C_CLOSING };
enum { D_NONE, D_HEADER, D_QUEUE, D_RESPONSE, D_IDLE };

/*
 * A connection's deadline, checked by a repeating timer of the connection
 * made on first use and kept until it closes (every lb_cfg.tick_ms, a
 * quarter of the shortest timeout): setting and clearing one per request
 * allocates nothing (invariant 4); it fires up to a tick late.
 */
typedef struct lb_deadline {
    weft_timer *tick;
    uint64_t at; /* CLOCK_MONOTONIC ns; 0: none */
    int kind;    /* D_* */
} lb_deadline;

/* Set d `ms` from now; 0, or -ENOMEM (no timer: the caller answers). */
static int deadline_set(lb_deadline *d, weft_conn *c, int kind, uint32_t ms, weft_timer_fn fn,
                        void *arg)
{
    d->at = weft_now_ns() + (uint64_t)ms * 1000000;
    d->kind = kind;
    if (!d->tick)
        d->tick = weft_conn_timer(c, lb_cfg.tick_ms, lb_cfg.tick_ms, fn, arg);
    return d->tick ? 0 : -ENOMEM;
}

static void deadline_clear(lb_deadline *d) { d->at = 0, d->kind = D_NONE; }

/* The kind of d when it has passed (and clears it), else D_NONE. */
static int deadline_due(lb_deadline *d)
{
    int kind = d->kind;
    if (!d->at || weft_now_ns() < d->at)
        return D_NONE;
    deadline_clear(d);
    return kind;
}
enum { B_CONNECTING, B_BUSY, B_IDLE };
enum { R_HEAD, R_BODY };

typedef struct lb_client lb_client;

typedef struct lb_bconn {
    weft_conn *c;
    lb_client *cl; /* the request it serves; NULL when pooled or abandoned */
    lb_worker *w;
    int be, state, phase;
    int reused;   /* from the pool for this request */
    int got;      /* a byte of the response arrived */
    int timedout; /* the response deadline passed */
    int paused;   /* reading paused: the client's output is full */
    int keep;     /* reusable after this response */
    int in_cb;    /* inside a call that may close the client */
    int body;     /* the response's HTTP_BODY_* */
    uint64_t left;
    size_t scan;
    http_chunked ck;
    lb_deadline dl; /* the response timeout, or the pool's idle timeout */
    struct lb_bconn *next;
    uint64_t t0;
} lb_bconn;

struct lb_client {
    weft_conn *c;
    lb_worker *w;
    int state;
    size_t scan;
    lb_deadline dl; /* the header timeout, or the queue timeout */
    char *head;     /* the rewritten request head */
    uint32_t head_len, head_cap;
    int body; /* the request's HTTP_BODY_* */
    uint64_t left;
    http_chunked ck;
    int req_done; /* the whole request went to the backend */
    int hold;     /* body held until the backend connection opens */
    int paused;   /* reading paused: the backend's output is full */
    int flags;    /* HTTP_MSG_* of the request */
    int version;
    int keep; /* the client keeps the connection after this answer */
    int be, tries, raced;
    uint64_t tried;
    int resp_started;
    int in_cb; /* inside a call that may close the backend */
    lb_bconn *b;
    lb_client *qnext;
    char ip[INET6_ADDRSTRLEN];
};

static const weft_handler backend_h;
static void dispatch(lb_client *cl);
static void start_on(lb_client *cl, int be, int fresh);

/* Detach b from its client (b is not reused); `failed`: the backend's fault. */
static lb_client *detach(lb_bconn *b, int failed)
{
    lb_client *cl = b->cl;
    lb_worker *w = b->w;
    b->cl = NULL;
    cl->b = NULL;
    lb_store(&w->active[b->be], w->active[b->be] - 1);
    if (failed)
        lb_add_stat(&w->st[b->be].failures, 1);
    return cl;
}

/* A final status from backend b: observe_5xx in a row mark it down. */
static void observe_status(lb_bconn *b, int status)
{
    int *run = &b->w->consec_5xx[b->be];
    *run = status >= 500 ? *run + 1 : 0;
    if (lb_cfg.observe_5xx && *run >= lb_cfg.observe_5xx) {
        *run = 0;
        lb_backend_failed(b->be);
    }
}

/* ---- answers of the proxy's own ------------------------------------------- */

static const struct {
    int status, counter;
    const char *reason;
} g_answers[] = {
    {400, LB_K_400, "Bad Request"},
    {408, LB_K_408, "Request Timeout"},
    {431, LB_K_431, "Request Header Fields Too Large"},
    {501, LB_K_501, "Not Implemented"},
    {502, LB_K_502, "Bad Gateway"},
    {503, LB_K_503, "Service Unavailable"},
    {504, LB_K_504, "Gateway Timeout"},
    {505, LB_K_400, "HTTP Version Not Supported"},
};

/* Answer status with a short body and close the client after it. */
static void answer(lb_client *cl, int status)
{
    size_t k = 0;
    while (k + 1 < sizeof(g_answers) / sizeof(g_answers[0]) && g_answers[k].status != status)
        k++;
    char buf[256];
    int bl = (int)strlen(g_answers[k].reason) + 1;
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s\n",
                     status, g_answers[k].reason, bl, g_answers[k].reason);
    if (cl->state == C_CLOSING)
        return; /* answered already (a deadline may pass after an answer) */
    weft_counter_add(cl->c, lb_counter[g_answers[k].counter], 1);
    cl->keep = 0;
    cl->state = C_CLOSING; /* what the client sends now is not read */
    deadline_clear(&cl->dl);
    weft_conn *c = cl->c;
    if (weft_send(c, buf, (size_t)n) >= 0)
        weft_close(c);
}

/* ---- the worker's pool of idle backend connections ------------------------ */

static void pool_unlink(lb_bconn *b)
{
    lb_bconn **p = &b->w->pool[b->be];
    while (*p && *p != b)
        p = &(*p)->next;
    if (*p) {
        *p = b->next;
        lb_store(&b->w->idle[b->be], b->w->idle[b->be] - 1);
    }
    b->next = NULL;
}

static void backend_tick(weft_timer *t, void *arg);

/* Keep b for the next request to its backend, or close it. */
static void pool_put(lb_bconn *b)
{
    lb_worker *w = b->w;
    b->cl = NULL;
    if (b->paused) {
        b->paused = 0;
        weft_read_resume(b->c);
    }
    if (!b->keep || (uint32_t)w->idle[b->be] >= lb_cfg.pool_size ||
        lb_load(&lb_backends[b->be].state) != LB_BE_ENABLED) {
        weft_close(b->c);
        return;
    }
    b->state = B_IDLE;
    b->next = w->pool[b->be];
    w->pool[b->be] = b;
    lb_store(&w->idle[b->be], w->idle[b->be] + 1);
    if (deadline_set(&b->dl, b->c, D_IDLE, lb_cfg.pool_idle, backend_tick, b) != 0)
        weft_close(b->c);
}

static lb_bconn *pool_take(lb_worker *w, int be)
{
    lb_bconn *b = w->pool[be];
    if (!b)
        return NULL;
    pool_unlink(b);
    deadline_clear(&b->dl);
    return b;
}

/* ---- the client's request head ------------------------------------------- */

/* Drop empty lines before a request (RFC 9112 2.2 allows them). */
static void skip_empty_lines(weft_ring *in, size_t *scan)
{
    size_t n = weft_ring_len(in), i = 0;
    while (i < n) {
        unsigned char ch = weft_ring_byte(in, i);
        if (ch == '\n')
            i++;
        else if (ch == '\r' && i + 1 < n && weft_ring_byte(in, i + 1) == '\n')
            i += 2;
        else
            break;
    }
    if (i) {
        weft_ring_consume(in, i);
        *scan = 0;
    }
}

/*
 * The length of the head at the front of in (through its empty line), or
 * 0 while incomplete. *scan keeps where to resume, so each byte is looked
 * at about once however the head arrives.
 */
static size_t head_end(const weft_ring *in, size_t *scan)
{
    size_t len = weft_ring_len(in);
    for (;;) {
        long nl = weft_ring_find(in, *scan, '\n');
        if (nl < 0) {
            *scan = len;
            return 0;
        }
        size_t i = (size_t)nl;
        *scan = i + 1;
        if (i >= 1 && weft_ring_byte(in, i - 1) == '\n')
            return i + 1;
        if (i >= 2 && weft_ring_byte(in, i - 1) == '\r' && weft_ring_byte(in, i - 2) == '\n')
            return i + 1;
    }
}

static int ensure_cap(lb_client *cl, uint32_t need)
{
    if (need <= cl->head_cap)
        return 0;
    char *p = realloc(cl->head, need);
    if (!p)
        return -ENOMEM;
    cl->head = p;
    cl->head_cap = need;
    return 0;
}

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

/* A header, CRLF-terminated whatever line end it came with. */
static char *put_header(char *o, const char *b, const http_hdr *x)
{
    o = put(o, b + x->name, x->name_len);
    o = put(o, ": ", 2);
    o = put(o, b + x->value, x->value_len);
    return put(o, "\r\n", 2);
}

/* The request head as the backend gets it, into cl->head. 0 or -ENOMEM. */
static int rewrite_request(lb_client *cl, const char *b, size_t len, const http_head *h)
{
    if (ensure_cap(cl, (uint32_t)(2 * len + 256)) != 0)
        return -ENOMEM;
    char *o = cl->head;
    o = put(o, b, h->method_len);
    o = put(o, " ", 1);
    o = put(o, b + h->target, h->target_len);
    o = put(o, h->version == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n", 11);
    for (int i = 0; i < h->nhdrs; i++)
        if (!(h->hdrs[i].flags & (HTTP_MSG_HOP | HTTP_MSG_XFP | HTTP_MSG_XFF)))
            o = put_header(o, b, &h->hdrs[i]);
    /* earlier proxies' addresses, joined in order, ours last */
    o = put(o, "X-Forwarded-For: ", 17);
    for (int i = 0; i < h->nhdrs; i++)
        if (h->hdrs[i].flags & HTTP_MSG_XFF && h->hdrs[i].value_len) {
            o = put(o, b + h->hdrs[i].value, h->hdrs[i].value_len);
            o = put(o, ", ", 2);
        }
    o = put(o, cl->ip, strlen(cl->ip));
    o = put(o, "\r\nX-Forwarded-Proto: http\r\n", 27);
    if (h->version == 10)
        o = put(o, "Connection: keep-alive\r\n", 24);
    o = put(o, "\r\n", 2);
    cl->head_len = (uint32_t)(o - cl->head);
    return 0;
}

static void client_tick(weft_timer *t, void *arg);

/* A request head at the front of in: parse, rewrite, dispatch. */
static void take_request(lb_client *cl, weft_ring *in)
{
    skip_empty_lines(in, &cl->scan);
    size_t have = weft_ring_len(in);
    if (have == 0) {
        cl->scan = 0;
        return;
    }
    size_t len = head_end(in, &cl->scan);
    if (len == 0) {
        if (have > lb_cfg.max_head)
            answer(cl, 431);
        else if (cl->dl.kind != D_HEADER && lb_cfg.header_timeout &&
                 deadline_set(&cl->dl, cl->c, D_HEADER, lb_cfg.header_timeout, client_tick, cl))
            answer(cl, 503);
        return;
    }
    if (len > lb_cfg.max_head) {
        answer(cl, 431);
        return;
    }
    deadline_clear(&cl->dl);
    char *b = cl->w->scratch;
    weft_ring_copyout(in, 0, b, len);
    static _Thread_local http_head h;
    if (http_head_parse(b, len, 1, lb_cfg.max_headers, &h) != 0) {
        answer(cl, h.status);
        return;
    }
    if (rewrite_request(cl, b, len, &h) != 0) {
        answer(cl, 503);
        return;
    }
    weft_ring_consume(in, len);
    cl->scan = 0;
    cl->flags = (int)h.flags;
    cl->version = h.version;
    cl->keep = h.version == 11 ? !(h.flags & HTTP_MSG_CLOSE) : !!(h.flags & HTTP_MSG_KEEPALIVE);
    cl->body = h.body;
    cl->left = h.content_length;
    http_chunked_init(&cl->ck);
    cl->req_done = h.body == HTTP_BODY_NONE;
    cl->tried = 0;
    cl->tries = 0;
    cl->raced = 0;
    cl->resp_started = 0;
    cl->be = -1;
    weft_counter_add(cl->c, lb_counter[LB_K_REQUESTS], 1);
    dispatch(cl);
}

/* ---- sending a request ------------------------------------------------------ */

static void queue_remove(lb_client *cl)
{
    lb_worker *w = cl->w;
    lb_client **p = &w->qhead[cl->be], *prev = NULL;
    while (*p && *p != cl) {
        prev = *p;
        p = &(*p)->qnext;
    }
    if (!*p)
        return;
    *p = cl->qnext;
    if (w->qtail[cl->be] == cl)
        w->qtail[cl->be] = prev;
    w->qlen[cl->be]--;
    cl->qnext = NULL;
}

static void queue_expired(lb_client *cl)
{
    queue_remove(cl);
    lb_add_stat(&cl->w->st[cl->be].queue_timeouts, 1);
    cl->state = C_ACTIVE;
    answer(cl, 503);
}

/* A request slot of backend be on w came free: the first waiter takes it. */
static void slot_freed(lb_worker *w, int be)
{
    lb_client *cl = w->qhead[be];
    int share = lb_maxconn_share(w, be);
    if (!cl || (share && w->active[be] >= share))
        return;
    queue_remove(cl);
    deadline_clear(&cl->dl);
    cl->state = C_ACTIVE;
    if (!lb_backend_usable(be)) {
        dispatch(cl); /* it went down while they waited */
        return;
    }
    start_on(cl, be, 0);
}

static void dispatch(lb_client *cl)
{
    lb_worker *w = cl->w;
    cl->state = C_ACTIVE;
    int be = lb_pick(w, cl->tried);
    if (be < 0) {
        answer(cl, cl->tried ? 502 : 503);
        return;
    }
    int share = lb_maxconn_share(w, be);
    if (share && w->active[be] >= share) {
        lb_backend *bk = &lb_backends[be];
        if (w->qlen[be] >= (bk->maxqueue + lb_cfg.nworkers - 1) / lb_cfg.nworkers ||
            !lb_cfg.queue_timeout) {
            answer(cl, 503);
            return;
        }
        cl->be = be;
        cl->state = C_QUEUED;
        cl->qnext = NULL;
        if (w->qtail[be])
            w->qtail[be]->qnext = cl;
        else
            w->qhead[be] = cl;
        w->qtail[be] = cl;
        w->qlen[be]++;
        lb_add_stat(&w->st[be].queued, 1);
        weft_counter_add(cl->c, lb_counter[LB_K_QUEUED], 1);
        if (deadline_set(&cl->dl, cl->c, D_QUEUE, lb_cfg.queue_timeout, client_tick, cl) != 0) {
            queue_remove(cl);
            answer(cl, 503);
        }
        return;
    }
    start_on(cl, be, 0);
}

/* The response timeout starts once the whole request is sent (without
 * memory for the connection's timer, this request has none). */
static void arm_response_timer(lb_bconn *b)
{
    if (lb_cfg.response_timeout)
        deadline_set(&b->dl, b->c, D_RESPONSE, lb_cfg.response_timeout, backend_tick, b);
}

static void client_tick(weft_timer *t, void *arg)
{
    (void)t;
    lb_client *cl = arg;
    switch (deadline_due(&cl->dl)) {
    case D_HEADER:
        answer(cl, 408);
        break;
    case D_QUEUE:
        queue_expired(cl);
        break;
    }
}

static void backend_tick(weft_timer *t, void *arg)
{
    (void)t;
    lb_bconn *b = arg;
    switch (deadline_due(&b->dl)) {
    case D_RESPONSE:
        b->timedout = 1;
        weft_abort(b->c); /* on_close answers 504 */
        break;
    case D_IDLE:
        weft_close(b->c); /* on_close unlinks it from the pool */
        break;
    }
}

/* Send cl's request to backend be: on a pooled connection when the request
 * may be retried after it is sent (idempotent, no body), else a new one. */
static void start_on(lb_client *cl, int be, int fresh)
{
    lb_worker *w = cl->w;
    int safe = (cl->flags & HTTP_MSG_IDEMPOTENT) && cl->body == HTTP_BODY_NONE;
    lb_bconn *b = !fresh && safe ? pool_take(w, be) : NULL;
    cl->be = be;
    cl->tried |= 1ULL << be;
    lb_store(&w->active[be], w->active[be] + 1);
    lb_add_stat(&w->st[be].requests, 1);
    if (b) {
        lb_add_stat(&w->st[be].reused, 1);
        weft_counter_add(cl->c, lb_counter[LB_K_REUSED], 1);
        b->state = B_BUSY;
        b->reused = 1;
    } else {
        b = calloc(1, sizeof(*b));
        weft_connect_opts o = lb_backend_connect_opts(&lb_backends[be], lb_cfg.connect_timeout);
        weft_conn *bc = NULL;
        int rc = b ? weft_connect(weft_conn_server(cl->c), w->index, lb_backends[be].addr, &o,
                                  &backend_h, b, &bc)
                   : -ENOMEM;
        if (rc != 0) {
            free(b);
            lb_store(&w->active[be], w->active[be] - 1);
            lb_add_stat(&w->st[be].failures, 1);
            if (rc == -ECONNREFUSED)
                lb_backend_failed(be);
            /* as a failed connect: another backend, if retries are left */
            if (rc != -ENOMEM && rc != -EMFILE && cl->tries < lb_cfg.retries) {
                cl->tries++;
                lb_add_stat(&w->st[be].retries, 1);
                weft_counter_add(cl->c, lb_counter[LB_K_RETRIES], 1);
                dispatch(cl);
            } else {
                answer(cl, rc == -EMFILE || rc == -ENOMEM ? 503 : 502);
            }
            return;
        }
        b->c = bc;
        b->w = w;
        b->be = be;
        b->state = B_CONNECTING;
        weft_conn_set_userdata(bc, b);
    }
    b->cl = cl;
    b->phase = R_HEAD;
    b->got = b->timedout = b->paused = 0;
    b->scan = 0;
    b->t0 = weft_now_ns();
    cl->b = b;
    cl->hold = b->state == B_CONNECTING && cl->body != HTTP_BODY_NONE;
    if (weft_send(b->c, cl->head, cl->head_len) < 0)
        return; /* b closed (no memory): its on_close answered */
    if (b->state == B_BUSY && cl->req_done)
        arm_response_timer(b);
    if (!cl->hold && cl->body != HTTP_BODY_NONE)
        weft_conn_resume(cl->c); /* the body already read goes now */
}

/* Forward what of the request body is in `in`. */
static void forward_body(lb_client *cl, weft_ring *in)
{
    lb_bconn *b = cl->b;
    size_t n = weft_ring_len(in), take = 0;
    int done = 0;
    if (cl->body == HTTP_BODY_LENGTH) {
        take = n < cl->left ? n : (size_t)cl->left;
        cl->left -= take;
        done = cl->left == 0;
    } else {
        struct iovec iov[2];
        int segs = weft_ring_peek(in, iov);
        for (int i = 0; i < segs && !done; i++) {
            size_t used;
            int rc = http_chunked_feed(&cl->ck, iov[i].iov_base, iov[i].iov_len, &used);
            take += used;
            if (rc == HTTP_CHUNKED_ERROR) {
                /* the body is broken: the backend got part of it */
                detach(b, 0); /* the client's fault */
                slot_freed(cl->w, b->be);
                weft_abort(b->c);
                if (!cl->resp_started)
                    answer(cl, 400);
                else
                    weft_abort(cl->c);
                return;
            }
            if (used < iov[i].iov_len || rc == HTTP_CHUNKED_DONE)
                done = rc == HTTP_CHUNKED_DONE;
        }
    }
    if (take == 0)
        return;
    cl->in_cb = 1;
    int rc = weft_send_from(b->c, in, take);
    cl->in_cb = 0;
    if (cl->b != b) {
        /* the backend closed as we sent to it: part of the body is lost */
        if (cl->resp_started)
            weft_abort(cl->c);
        else
            answer(cl, 502);
        return;
    }
    if (rc == 1) {
        cl->paused = 1;
        weft_read_pause(cl->c);
    }
    if (done) {
        cl->req_done = 1;
        if (b->state == B_BUSY && !b->got)
            arm_response_timer(b);
    }
}

/* ---- the client's handler ---------------------------------------------------- */

static void client_open(weft_conn *c)
{
    lb_client *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        weft_abort(c);
        return;
    }
    cl->c = c;
    cl->w = &lb_workers[weft_conn_worker(c)];
    cl->be = -1;
    struct sockaddr_storage ss;
    socklen_t sl = weft_conn_peer(c, &ss);
    strcpy(cl->ip, "unknown");
    if (sl && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, cl->ip, sizeof(cl->ip));
    else if (sl && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, cl->ip, sizeof(cl->ip));
    weft_conn_set_userdata(c, cl);
}

static void client_data(weft_conn *c, weft_ring *in)
{
    lb_client *cl = weft_conn_userdata(c);
    if (cl->state == C_IDLE)
        take_request(cl, in);
    else if (cl->state == C_ACTIVE && cl->b && !cl->req_done && !cl->hold)
        forward_body(cl, in);
    /* else: a pipelined request waits for this one's answer */
}

static void client_drain(weft_conn *c)
{
    lb_client *cl = weft_conn_userdata(c);
    if (cl->b && cl->b->paused) {
        cl->b->paused = 0;
        weft_read_resume(cl->b->c);
    }
}

static void client_close(weft_conn *c, weft_close_reason r)
{
    (void)r;
    lb_client *cl = weft_conn_userdata(c);
    if (!cl)
        return;
    if (cl->state == C_QUEUED)
        queue_remove(cl);
    lb_bconn *b = cl->b;
    if (b) {
        /* the answer can no longer be delivered: the backend connection
         * is in an unknown state, so it is not reused */
        int be = b->be; /* the abort frees b */
        cl->b = NULL;
        b->cl = NULL;
        lb_store(&cl->w->active[be], cl->w->active[be] - 1);
        if (!b->in_cb)
            weft_abort(b->c);
        slot_freed(cl->w, be);
    }
    free(cl->head);
    free(cl);
}

static const weft_handler client_h = {
    .on_open = client_open,
    .on_data = client_data,
    .on_drain = client_drain,
    .on_close = client_close,
};

const weft_handler *lb_http_handler(void) { return &client_h; }

/* ---- the backend's handler ------------------------------------------------- */

/* The response is complete: account, pool or close b, free the client for
 * its next request. */
static void finish(lb_bconn *b)
{
    lb_client *cl = b->cl;
    lb_worker *w = b->w;
    int be = b->be;
    lb_record_time(w, be, weft_now_ns() - b->t0);
    cl->b = NULL;
    lb_store(&w->active[be], w->active[be] - 1);
    if (!cl->req_done)
        b->keep = 0; /* the body's rest would reach the backend as a request */
    if (cl->paused) {
        cl->paused = 0; /* b's on_drain will not come for this client now */
        weft_read_resume(cl->c);
    }
    pool_put(b);
    slot_freed(w, be);
    if (!cl->keep || !cl->req_done) {
        weft_close(cl->c);
        return;
    }
    cl->state = C_IDLE;
    weft_conn_resume(cl->c); /* a pipelined request may be waiting */
}

/* The response head, rewritten for the client, into the worker's scratch. */
static size_t rewrite_response(lb_client *cl, const char *b, const http_head *h, char *o0)
{
    char *o = put(o0, "HTTP/1.1", 8);
    o = put(o, b + 8, h->line_end - 8);
    for (int i = 0; i < h->nhdrs; i++)
        if (!(h->hdrs[i].flags & HTTP_MSG_HOP))
            o = put_header(o, b, &h->hdrs[i]);
    if (!cl->keep)
        o = put(o, "Connection: close\r\n", 19);
    else if (cl->version == 10)
        o = put(o, "Connection: keep-alive\r\n", 24);
    o = put(o, "\r\n", 2);
    return (size_t)(o - o0);
}

/* Results of take_response. */
enum { T_MORE, T_INFO, T_FINAL, T_BAD, T_GONE };

/*
 * A response head at the front of in: T_MORE (incomplete), T_INFO (a 1xx,
 * passed on: look again), T_FINAL (sent to the client; the body follows),
 * T_BAD (not a valid head: nothing was sent) or T_GONE (the client closed
 * as we sent to it).
 */
static int take_response(lb_bconn *b, weft_ring *in)
{
    lb_client *cl = b->cl;
    size_t len = head_end(in, &b->scan);
    if (len == 0)
        return weft_ring_len(in) > lb_cfg.max_head ? T_BAD : T_MORE;
    if (len > lb_cfg.max_head)
        return T_BAD;
    char *s = b->w->scratch;
    weft_ring_copyout(in, 0, s, len);
    static _Thread_local http_head h;
    if (http_head_parse(s, len, 0, lb_cfg.max_headers, &h) != 0 || h.status == 101)
        return T_BAD; /* 101: we never ask to upgrade (Upgrade is hop-by-hop) */
    b->got = 1;
    deadline_clear(&b->dl);
    b->scan = 0;
    if (h.status < 200) {
        /* 100 Continue, 103 Early Hints: passed on to HTTP/1.1 clients */
        int rc = cl->version == 11 ? weft_send(cl->c, s, len) : 0;
        weft_ring_consume(in, len);
        return rc < 0 ? T_GONE : T_INFO;
    }
    b->body = http_response_body(&h, cl->flags & HTTP_MSG_HEAD);
    b->left = h.content_length;
    http_chunked_init(&b->ck);
    b->keep = b->body != HTTP_BODY_CLOSE &&
              (h.version == 11 ? !(h.flags & HTTP_MSG_CLOSE) : !!(h.flags & HTTP_MSG_KEEPALIVE));
    if (b->body == HTTP_BODY_CLOSE || !cl->req_done)
        cl->keep = 0;
    int cls = h.status / 100 - 1;
    lb_add_stat(&b->w->st[b->be].responses[cls < 5 ? cls : 4], 1);
    observe_status(b, h.status);
    char *o = s + lb_cfg.max_head;
    size_t olen = rewrite_response(cl, s, &h, o);
    weft_ring_consume(in, len);
    cl->resp_started = 1;
    b->phase = R_BODY;
    return weft_send(cl->c, o, olen) < 0 ? T_GONE : T_FINAL;
}

/* The body bytes in `in` that belong to the response; *done when it ends. -1: bad chunks. */
static long body_bytes(lb_bconn *b, weft_ring *in, int *done)
{
    size_t n = weft_ring_len(in);
    *done = 0;
    switch (b->body) {
    case HTTP_BODY_NONE:
        *done = 1;
        return 0;
    case HTTP_BODY_LENGTH: {
        size_t take = n < b->left ? n : (size_t)b->left;
        b->left -= take;
        *done = b->left == 0;
        return (long)take;
    }
    case HTTP_BODY_CLOSE:
        return (long)n;
    }
    struct iovec iov[2];
    int segs = weft_ring_peek(in, iov);
    size_t take = 0;
    for (int i = 0; i < segs; i++) {
        size_t used;
        int rc = http_chunked_feed(&b->ck, iov[i].iov_base, iov[i].iov_len, &used);
        take += used;
        if (rc == HTTP_CHUNKED_ERROR)
            return -1;
        if (rc == HTTP_CHUNKED_DONE) {
            *done = 1;
            break;
        }
    }
    return (long)take;
}

static void backend_data(weft_conn *bc, weft_ring *in)
{
    lb_bconn *b = weft_conn_userdata(bc);
    if (!b->cl) {
        /* bytes on an idle pooled connection: nothing asked for them */
        weft_abort(bc);
        return;
    }
    b->in_cb = 1; /* a close of the client only detaches b now */
    int t = T_FINAL;
    while (b->phase == R_HEAD && (t = take_response(b, in)) == T_INFO)
        ;
    if (t == T_MORE) {
        b->in_cb = 0;
        return;
    }
    if (t == T_BAD) {
        lb_client *cl = detach(b, 1);
        b->in_cb = 0;
        answer(cl, 502);
        slot_freed(b->w, b->be);
        weft_abort(bc);
        return;
    }
    int done = 0;
    long n = t == T_GONE ? 0 : body_bytes(b, in, &done);
    int rc = n > 0 ? weft_send_from(b->cl->c, in, (size_t)n) : 0;
    b->in_cb = 0;
    if (n < 0 && b->cl) {
        /* broken chunks: the client has part of a response; end both */
        lb_client *cl = detach(b, 1);
        weft_abort(cl->c);
    }
    if (!b->cl) {
        weft_abort(bc); /* the client is gone (client_close freed its slot) */
        return;
    }
    if (rc == 1) {
        b->paused = 1;
        weft_read_pause(bc);
    }
    if (done) {
        if (weft_ring_len(in) > 0)
            b->keep = 0; /* bytes after the response: not a backend to trust */
        finish(b);
    }
}

static void backend_open(weft_conn *bc)
{
    lb_bconn *b = weft_conn_userdata(bc);
    b->state = B_BUSY;
    if (!b->cl)
        return;
    if (b->cl->req_done)
        arm_response_timer(b);
    if (b->cl->hold) {
        b->cl->hold = 0;
        weft_conn_resume(b->cl->c); /* the body can go now */
    }
}

static void backend_drain(weft_conn *bc)
{
    lb_bconn *b = weft_conn_userdata(bc);
    if (b->cl && b->cl->paused) {
        b->cl->paused = 0;
        weft_read_resume(b->cl->c);
    }
}

static int connect_failure(weft_close_reason r)
{
    return r == WEFT_CLOSE_CONNECT_REFUSED || r == WEFT_CLOSE_CONNECT_TIMEOUT ||
           r == WEFT_CLOSE_UNREACHABLE || r == WEFT_CLOSE_RESOLVE;
}

/* b closed while serving cl: retry, answer, or end the client (see the top). */
static void backend_lost(lb_bconn *b, lb_client *cl, weft_close_reason r)
{
    lb_worker *w = b->w;
    int be = b->be;
    int never_open = b->state == B_CONNECTING;
    int race = b->reused && !b->got && !b->timedout && !cl->raced;
    cl->b = NULL;
    b->cl = NULL;
    lb_store(&w->active[be], w->active[be] - 1);
    if (!race)
        lb_add_stat(&w->st[be].failures, 1);
    slot_freed(w, be);
    if (!race && !b->timedout &&
        (connect_failure(r) || (never_open && r == WEFT_CLOSE_ERROR) ||
         (!b->got && r == WEFT_CLOSE_ERROR)))
        lb_backend_failed(be);
    if (cl->resp_started) {
        weft_abort(cl->c); /* part of an answer went out: the client must see the end */
        return;
    }
    int sent_safe = (cl->flags & HTTP_MSG_IDEMPOTENT) && cl->body == HTTP_BODY_NONE && !b->got;
    if (race) {
        cl->raced = 1;
        start_on(cl, be, 1);
        return;
    }
    if (!b->timedout && (never_open || sent_safe) && cl->tries < lb_cfg.retries) {
        cl->tries++;
        lb_add_stat(&w->st[be].retries, 1);
        weft_counter_add(cl->c, lb_counter[LB_K_RETRIES], 1);
        dispatch(cl);
        return;
    }
    answer(cl, b->timedout || r == WEFT_CLOSE_CONNECT_TIMEOUT ? 504 : 502);
}

static void backend_close(weft_conn *bc, weft_close_reason r)
{
    lb_bconn *b = weft_conn_userdata(bc);
    if (!b)
        return;
    if (b->state == B_IDLE)
        pool_unlink(b);
    lb_client *cl = b->cl;
    if (!cl) {
        free(b);
        return;
    }
    lb_worker *w = b->w;
    if (b->phase == R_BODY && b->body == HTTP_BODY_CLOSE && r == WEFT_CLOSE_PEER) {
        /* an answer framed by the close: complete */
        lb_record_time(w, b->be, weft_now_ns() - b->t0);
        cl->b = NULL;
        b->cl = NULL;
        lb_store(&w->active[b->be], w->active[b->be] - 1);
        slot_freed(w, b->be);
        weft_close(cl->c);
    } else if (cl->in_cb) {
        /* forward_body is sending to us: it sees cl->b change and answers */
        detach(b, 1);
        slot_freed(w, b->be);
    } else {
        backend_lost(b, cl, r);
    }
    free(b);
}

static const weft_handler backend_h = {
    .on_open = backend_open,
    .on_data = backend_data,
    .on_drain = backend_drain,
    .on_close = backend_close,
};

/* ---- workers -------------------------------------------------------------- */

void lb_worker_start(weft_server *s, int worker, void *arg)
{
    (void)s;
    (void)arg;
    lb_worker *w = &lb_workers[worker];
    w->index = worker;
    w->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(worker + 1) ^ weft_now_ns();
    /* a head as it came, then as it goes (each header may grow by 3 bytes) */
    w->scratch = malloc(2 * (size_t)lb_cfg.max_head + 4 * HTTP_MSG_MAX_HEADERS + 128);
}

void lb_worker_stop(weft_server *s, int worker, void *arg)
{
    (void)s;
    (void)arg;
    free(lb_workers[worker].scratch);
    lb_workers[worker].scratch = NULL;
}
