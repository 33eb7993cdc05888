/*
 * examples/kv/clients.c — weft-kv's connection list: CLIENT LIST and INFO.
 *
 * Each worker keeps a list of its own connections; only that worker reads
 * or writes them (weft's invariant 1), so there is no lock and no shared
 * registry. CLIENT INFO formats the asking connection's line at once.
 * CLIENT LIST is a scatter-gather over weft_post:
 *
 *   asker's worker            every worker i              asker's worker
 *   kv_client_list ──post──► list_part: format i's  ──► list_answer: queue the
 *   (k->waiting: later       connections' lines; the   bulk reply, clear waiting,
 *    commands wait)          last one to finish posts  weft_conn_resume (the
 *                            the answer                commands that waited)
 *
 * The query is shared by the workers only through its parts (each written
 * by one worker before its acq_rel decrement of `remaining`) and freed by
 * the answer, or by the last worker when the answer cannot be posted. It
 * names the asker by id, not by pointer: list_answer looks it up in its
 * worker's list, and an asker that closed meanwhile is simply not found.
 * Memory: one part of at most CLIENT_LINE_MAX bytes per connection, for the time
 * the answer takes; the reply then counts against --output-cap like any
 * other.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "kv.h"

/* The longest line: the fixed fields, two addresses, a name of KV_NAME_MAX. */
#define CLIENT_LINE_MAX 512

typedef struct kv_list {
    kv_app *app;
    uint64_t asker; /* its kv_conn id */
    int worker;     /* the asker's */
    int remaining;  /* parts not yet in (atomic countdown) */
    int nparts;
    int nomem;           /* a part could not be allocated (atomic) */
    struct iovec part[]; /* worker i's lines */
} kv_list;

void kv_clients_link(kv_worker *w, kv_conn *k)
{
    k->next = NULL;
    k->prev = w->tail;
    if (w->tail)
        w->tail->next = k;
    else
        w->head = k;
    w->tail = k;
    w->nconns++;
}

void kv_clients_unlink(kv_worker *w, kv_conn *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        w->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        w->tail = k->prev;
    k->prev = k->next = NULL;
    w->nconns--;
}

/* "a.b.c.d:port" or "[v6]:port", as Redis writes addresses. */
static void fmt_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        port = ntohs(a->sin_port);
        snprintf(out, cap, "%s:%u", ip, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
        snprintf(out, cap, "[%s]:%u", ip, port);
    } else {
        snprintf(out, cap, "?:0");
    }
}

/* k's CLIENT LIST line, with its '\n', into out (CLIENT_LINE_MAX bytes); its length. */
static size_t client_line(const kv_conn *k, int64_t now, char *out)
{
    struct sockaddr_storage ss;
    char addr[64], laddr[64];
    weft_conn_peer(k->c, &ss);
    fmt_addr(&ss, addr, sizeof(addr));
    socklen_t len = sizeof(ss);
    if (getsockname(weft_conn_fd(k->c), (struct sockaddr *)&ss, &len) != 0)
        memset(&ss, 0, sizeof(ss));
    fmt_addr(&ss, laddr, sizeof(laddr));
    int n = snprintf(out, CLIENT_LINE_MAX,
                     "id=%llu addr=%s laddr=%s fd=%d name=%.*s age=%lld idle=%lld flags=N db=0 "
                     "cmd=%s resp=2\n",
                     (unsigned long long)k->id, addr, laddr, weft_conn_fd(k->c), (int)k->name_len,
                     k->name, (long long)((now - k->since_ms) / 1000),
                     (long long)((now - k->last_ms) / 1000), k->last_cmd ? k->last_cmd : "NULL");
    return n < 0 ? 0 : (size_t)n < CLIENT_LINE_MAX ? (size_t)n : CLIENT_LINE_MAX - 1;
}

/* Queue the bulk string made of v[0..n): "$<len>\r\n", the bytes, "\r\n". May close c. */
static void send_bulk(weft_conn *c, const struct iovec *v, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += v[i].iov_len;
    char hdr[32];
    int h = snprintf(hdr, sizeof(hdr), "$%zu\r\n", total);
    if (weft_send(c, hdr, (size_t)h) < 0)
        return;
    for (int i = 0; i < n; i++)
        if (v[i].iov_len && weft_send(c, v[i].iov_base, v[i].iov_len) < 0)
            return;
    (void)weft_send(c, "\r\n", 2);
}

void kv_client_info(kv_ctx *x)
{
    char line[CLIENT_LINE_MAX];
    struct iovec v = {line, client_line(x->k, x->now, line)};
    send_bulk(x->c, &v, 1);
}

static void list_free(kv_list *q)
{
    for (int i = 0; i < q->nparts; i++)
        free(q->part[i].iov_base);
    free(q);
}

/* On the asker's worker, once every part is in. */
static void list_answer(weft_server *s, int worker, void *arg)
{
    (void)s;
    kv_list *q = arg;
    kv_conn *k = q->app->workers[worker].head;
    while (k && k->id != q->asker)
        k = k->next;
    if (!k) { /* it closed meanwhile */
        list_free(q);
        return;
    }
    weft_conn *c = k->c;
    k->busy = 1; /* a send over the output cap runs on_close at once */
    if (__atomic_load_n(&q->nomem, __ATOMIC_RELAXED)) {
        kv_ctx x = {.app = k->app, .c = c, .k = k};
        kv_reply_error(&x, "ERR out of memory");
    } else {
        send_bulk(c, q->part, q->nparts);
    }
    list_free(q);
    k->busy = 0;
    k->waiting = 0;
    if (k->closed) {
        kv_conn_free(k); /* on_close ran: c is gone */
        return;
    }
    weft_conn_resume(c); /* the commands that waited */
}

/*
 * One part is in; the last one posts the answer to the asker's worker. If
 * that post fails, the worker has exited (and closed the asker) or weft is
 * out of memory (and the asker waits until a timeout closes it).
 */
static void list_done(weft_server *s, kv_list *q)
{
    /* acq_rel: the last decrement sees every part written before the others'. */
    if (__atomic_sub_fetch(&q->remaining, 1, __ATOMIC_ACQ_REL) == 0 &&
        weft_post(s, q->worker, list_answer, q) != 0)
        list_free(q);
}

/* On worker `worker`: the lines of its own connections. */
static void list_part(weft_server *s, int worker, void *arg)
{
    kv_list *q = arg;
    kv_worker *w = &q->app->workers[worker];
    if (w->nconns) {
        char *p = malloc(w->nconns * CLIENT_LINE_MAX);
        if (p) {
            size_t n = 0;
            int64_t now = kvs_now_ms();
            for (kv_conn *k = w->head; k; k = k->next)
                n += client_line(k, now, p + n);
            q->part[worker].iov_base = p;
            q->part[worker].iov_len = n;
        } else {
            __atomic_store_n(&q->nomem, 1, __ATOMIC_RELAXED);
        }
    }
    list_done(s, q);
}

void kv_client_list(kv_ctx *x)
{
    weft_server *s = x->app->srv;
    int n = weft_server_workers(s);
    kv_list *q = calloc(1, sizeof(*q) + (size_t)n * sizeof(q->part[0]));
    if (!q) {
        kv_reply_error(x, "ERR out of memory");
        return;
    }
    q->app = x->app;
    q->asker = x->k->id;
    q->worker = weft_conn_worker(x->c);
    q->nparts = n;
    q->remaining = n;
    x->k->waiting = 1;
    for (int i = 0; i < n; i++)
        if (weft_post(s, i, list_part, q) != 0)
            list_done(s, q); /* stopping: that worker adds nothing */
}
