/*
 * examples/multi/cross.c — what crosses protocols in weft-multi.
 *
 * chat's /stats: one line with the HTTP and echo counters of the latest
 * sample (the stats thread's, so up to --stats-interval old):
 *
 *     * stats: http_2xx 12, http_4xx 1, http_5xx 0, echo_connections 3, echo_bytes 1200
 *
 * HTTP's GET /chat/rooms: every chat room and its members, as JSON,
 *
 *     {"rooms":[{"name":"lobby","count":2,"members":["alice","bob"]}]}
 *
 * rooms sorted by name, members as /who sorts them (without regard to
 * case). A room's members are spread over the workers, each holding its
 * own (chat.c), and no worker may read another's: the request is posted to
 * every worker, each lists its members into its own part (a JSON object,
 * room -> nicks) and counts down; the last to finish posts the merge to
 * the HTTP connection's worker, which answers (http_respond). No worker
 * blocks: the HTTP connection waits, its later requests held in its ring
 * (http_server.c). The same scatter-gather as chat's /who.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_server.h"
#include "multi.h"

static weft_server *g_srv;
static chat_server *g_chat;

/* ---- chat's /stats ------------------------------------------------------------------ */

static bool shown(const char *name)
{
    return !strncmp(name, "http_", 5) || !strncmp(name, "echo_", 5);
}

static void send_line(weft_conn *c, const char *s) { (void)weft_send(c, s, strlen(s)); }

static void chat_stats(weft_conn *c, const char *args, size_t len, void *ud)
{
    (void)args;
    (void)ud;
    if (len) {
        send_line(c, "error: usage: /stats\n");
        return;
    }
    int err = 0;
    weft_snapshot *snap = weft_server_snapshot(weft_conn_server(c), &err);
    if (!snap) {
        send_line(c, err == -ENOTSUP  ? "error: statistics are off (--stats-interval 0)\n"
                     : err == -EAGAIN ? "error: no statistics yet, try again in a moment\n"
                                      : "error: no statistics\n");
        return;
    }
    /* Each counter name is at most 48 bytes and a value 20 digits. */
    char line[WEFT_MAX_COUNTERS * 72 + 16];
    size_t n = (size_t)snprintf(line, sizeof(line), "* stats:");
    const char *sep = " ";
    for (int i = 0; i < snap->ncounters; i++) {
        if (!shown(snap->counter_names[i]))
            continue;
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s %llu", sep, snap->counter_names[i],
                              (unsigned long long)snap->counters[i]);
        sep = ", ";
    }
    weft_snapshot_free(snap);
    line[n++] = '\n';
    (void)weft_send(c, line, n);
}

/* ---- GET /chat/rooms --------------------------------------------------------------- */

typedef struct rooms_query {
    http_req *req;
    int remaining; /* workers yet to answer (atomic countdown) */
    int failed;    /* a worker ran out of memory (atomic) */
    int nparts;
    json_t *parts[]; /* parts[i]: worker i's {room: [nick, ...]}, NULL when it had none */
} rooms_query;

static void rooms_free(rooms_query *q)
{
    for (int i = 0; i < q->nparts; i++)
        json_decref(q->parts[i]);
    free(q);
}

/* chat_server_rooms' callback: add one member to this worker's part. */
static void add_member(const char *room, const char *nick, void *arg)
{
    json_t **part = arg;
    if (!*part)
        return; /* out of memory already */
    json_t *a = json_object_get(*part, room);
    if (!a && json_object_set_new(*part, room, a = json_array()) != 0)
        a = NULL;
    if (!a || json_array_append_new(a, json_string(nick)) != 0) {
        json_decref(*part);
        *part = NULL;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_nick(const void *a, const void *b)
{
    return strcasecmp(json_string_value(*(json_t *const *)a),
                      json_string_value(*(json_t *const *)b));
}

/* Sort a JSON array of nicks in place, as /who does. 0 or -ENOMEM. */
static int sort_nicks(json_t *a)
{
    size_t n = json_array_size(a);
    json_t **v = malloc((n ? n : 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(a, i));
    qsort(v, n, sizeof(*v), cmp_nick);
    json_array_clear(a);
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, v[i]) != 0)
            rc = -ENOMEM;
    free(v);
    return rc;
}

/*
 * The answer from the parts: merge each room's members over the workers,
 * sort, and list. NULL on ENOMEM; free the string.
 */
static char *rooms_json(rooms_query *q)
{
    json_t *all = json_object(), *list = json_array(), *root = json_object();
    const char **names = NULL;
    char *out = NULL;
    const char *room;
    json_t *members;
    bool ok = all && list && root;
    for (int i = 0; ok && i < q->nparts; i++) {
        json_object_foreach(q->parts[i], room, members)
        {
            json_t *a = json_object_get(all, room);
            if (!a && json_object_set_new(all, room, a = json_array()) != 0)
                a = NULL;
            ok = ok && a && json_array_extend(a, members) == 0;
        }
    }
    size_t n = ok ? json_object_size(all) : 0, k = 0;
    if (ok && !(names = malloc((n ? n : 1) * sizeof(*names))))
        ok = false;
    if (ok) {
        json_object_foreach(all, room, members) names[k++] = room;
        qsort(names, k, sizeof(*names), cmp_str);
    }
    for (size_t i = 0; ok && i < k; i++) {
        members = json_object_get(all, names[i]);
        ok = sort_nicks(members) == 0 &&
             json_array_append_new(list, json_pack("{s:s, s:I, s:O}", "name", names[i], "count",
                                                   (json_int_t)json_array_size(members), "members",
                                                   members)) == 0;
    }
    if (ok && json_object_set(root, "rooms", list) == 0)
        out = json_dumps(root, JSON_COMPACT);
    free(names);
    json_decref(all);
    json_decref(list);
    json_decref(root);
    return out;
}

/* On the HTTP connection's worker: the last part is in. */
static void rooms_finish(weft_server *s, int worker, void *arg)
{
    (void)s;
    (void)worker;
    rooms_query *q = arg;
    char *json = __atomic_load_n(&q->failed, __ATOMIC_RELAXED) ? NULL : rooms_json(q);
    if (json)
        http_respond(q->req, 200, "application/json", json, strlen(json));
    else
        http_respond(q->req, 500, "text/plain", "out of memory\n", 14);
    free(json);
    rooms_free(q);
}

/* One worker's part is in (or will never come); the last one posts the finish. */
static void rooms_done(weft_server *s, rooms_query *q)
{
    /* acq_rel: the last decrement sees every part written before its owner's decrement. */
    if (__atomic_sub_fetch(&q->remaining, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    int rc = weft_post(s, http_req_worker(q->req), rooms_finish, q);
    if (rc == -ESHUTDOWN)
        rooms_finish(s, -1, q); /* its worker has exited: http_respond only frees */
    /* -ENOMEM: the query is lost; the connection waits until its idle timeout. */
}

/* On each worker: list the members it holds. */
static void rooms_ask(weft_server *s, int worker, void *arg)
{
    rooms_query *q = arg;
    json_t *part = json_object();
    chat_server_rooms(g_chat, worker, add_member, &part);
    if (!part)
        __atomic_store_n(&q->failed, 1, __ATOMIC_RELAXED);
    q->parts[worker] = part;
    rooms_done(s, q);
}

static void rooms_route(http_req *r, void *ud)
{
    (void)ud;
    int n = weft_server_workers(g_srv);
    rooms_query *q = calloc(1, sizeof(*q) + (size_t)n * sizeof(json_t *));
    if (!q) {
        http_respond(r, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    q->req = r;
    q->remaining = n;
    q->nparts = n;
    for (int i = 0; i < n; i++)
        if (weft_post(g_srv, i, rooms_ask, q) != 0)
            rooms_done(g_srv, q); /* stopping: that worker's part is missing */
}

int multi_cross_setup(weft_server *s, chat_server *cs)
{
    g_srv = s;
    g_chat = cs;
    /* Seed jansson's hash tables now, before the workers use it from their threads. */
    json_object_seed(0);
    int rc = chat_server_command(cs, "stats", "the HTTP and echo counters (latest sample)",
                                 chat_stats, NULL);
    return rc ? rc : http_server_route("/chat/rooms", rooms_route, NULL);
}
