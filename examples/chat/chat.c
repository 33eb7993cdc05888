/*
 * examples/chat/chat.c — a multi-room chat server on weft's public API.
 *
 * Protocol: see proto.c (parsing) and README.md (what the server answers).
 *
 * ---- State: who owns what ----------------------------------------------------
 *
 * weft spreads connections over the workers round-robin, and only a
 * connection's own worker may touch it. So every piece of chat state has
 * exactly one owning worker, and other workers reach it only with
 * weft_post(). There is no lock anywhere in this file and no shared mutable
 * structure except the reference counts of immutable posted buffers.
 *
 *   what                              owner             lookup
 *   ------------------------------    ---------------   -------------------------
 *   a client (nick, room, input)      its conn's worker slot table: id = (worker,
 *                                                       slot, generation)
 *   room membership                   each member's     per-worker map room ->
 *                                     own worker        local members
 *   nick directory (nick -> id)       shard worker      hash(nick) % workers
 *
 * There is no global member list of a room. A room message is delivered by
 * every worker to *its own* members of the room: the sender's worker
 * delivers to its local members at once (inside on_data), and posts one
 * call per other worker, all sharing one immutable, reference-counted copy
 * of the formatted line; the last worker to deliver frees it. Joining and
 * leaving are local, synchronous updates on the member's own worker, so
 * there is no replica that could lag behind.
 *
 * ---- Delivery guarantees -----------------------------------------------------
 *
 * Exactly once: a message goes once to each worker, and each worker writes
 * it once to each of its members that are in the room when the message
 * reaches that worker. A member who joined before the message reached its
 * worker gets it; in particular a member whose "joined" line has been seen
 * by the sender (that line travels the same way) gets every later message.
 *
 * Per-sender order: a connection never changes worker, so all of one
 * sender's messages leave from one worker, in input order. Local members
 * get them synchronously, in order. Remote members get them through
 * weft_post, and weft_post calls from one thread to one worker run in the
 * order they were posted: the inbox is a FIFO queue (liburcu's wfcqueue,
 * drained in enqueue order by its single consumer). This program relies on
 * that property. "joined", "left" and "is now known as" lines travel the
 * same path, so a member sees "X joined" before X's first message and X's
 * last message before "X left".
 *
 * A connection is written only by its own worker: remote deliveries name
 * the target by (worker, slot, generation) and the owner looks it up; a
 * slot's generation changes when its client closes, so a stale id (closed,
 * slot reused) finds nothing and nothing is written.
 *
 * ---- Nicks, private messages, /who: asynchronous commands --------------------
 *
 * Nicks compare case-insensitively ("Bob" and "bob" are one user) and are
 * shown as their holder wrote them last.
 *
 * The nick directory is sharded over the workers by hash(nick in lower
 * case); each shard is a plain hash map owned by one worker, so uniqueness
 * needs no lock: the shard serialises the claims. /nick posts a claim to
 * the shard and the answer comes back by post. /msg posts to the target
 * nick's shard, which forwards to the target's worker by id (two hops; per
 * sender and target nick the order is kept, but a /msg is not ordered
 * against room messages).
 * /who asks every worker for its local members of the room and answers when
 * the last reply is in (scatter-gather through an atomic countdown).
 *
 * While /nick or /who is in flight, the client's further input waits in
 * its input ring, so pipelined commands see the result (e.g. "/nick a" then
 * "/join r" in one packet works); the answer calls weft_conn_resume, and
 * on_data parses the ring again. The waiting input is weft's, under the
 * input cap (max_line + HELD_EXTRA), the pool cap and the input stall: the
 * server keeps no copy of a client's input anywhere else.
 *
 * ---- Slow members ------------------------------------------------------------
 *
 * A member who does not read is never waited for: deliveries append to its
 * output ring, and once its pending output would pass config.output_cap
 * (weft-chat's default 256 KiB) weft closes it (WEFT_CLOSE_OUTPUT_CAP) inside
 * weft_send, and the room is told "X left #room (output_cap)". Everyone else
 * keeps receiving. on_close can thus run in the middle of a delivery loop:
 * delivery loops take the next member before writing to the current one,
 * on_close only unlinks the closing member and *posts* its notices (it never
 * delivers synchronously), and a client whose input is being parsed when it
 * closes is freed by the parser when it unwinds (the `busy` count).
 *
 * ---- Costs -------------------------------------------------------------------
 *
 * A room message: one malloc for the shared line when there are other
 * workers, plus, per other worker, one weft_post (weft allocates a small
 * message for each) and at most one eventfd write (only when that worker's
 * inbox was empty). Every worker is posted to, whether or not it has a
 * member in the room: with W workers a message to a room of two costs W-1
 * posts. Tracking which workers have members would need a replicated
 * room -> workers map, and a replica that lags would drop messages to a
 * member who had joined but whose worker the sender did not yet know about.
 * Each delivery is one copy into the member's output ring (weft_send).
 */
#include "chat.h"

#include <ctype.h>
#include <stdatomic.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

#include <sodium.h>

#include "auth.h"
#include "jproto.h"

#include "proto.h"
#include "store.h"
#include "utf8.h"
#include "web.h"
#include "ws.h"

#define HELD_EXTRA CHAT_HELD_EXTRA

/* ---- identifiers and maps ------------------------------------------------- */

typedef struct chat_id {
    uint32_t worker, slot, gen;
} chat_id;

static bool id_eq(chat_id a, chat_id b)
{
    return a.worker == b.worker && a.slot == b.slot && a.gen == b.gen;
}

/* A node of a worker-private string map; embedded first in its entry. */
typedef struct smap_node {
    struct smap_node *next;
    uint32_t hash;
    uint32_t klen;
    char key[CHAT_NAME_MAX + 1];
} smap_node;

typedef struct smap {
    smap_node **b;
    uint32_t nb, n; /* buckets (a power of two), entries */
    bool fold;      /* keys compare case-insensitively (the nick map) */
} smap;

/*
 * FNV-1a: names are short and come from clients; good enough for a demo.
 * With fold, of the name in lower case: names are ASCII ([A-Za-z0-9_-]),
 * so "Bob" and "bob" hash, and shard, alike.
 */
static uint32_t hash_name(const char *s, size_t n, bool fold)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)(fold ? tolower((unsigned char)s[i]) : s[i])) * 16777619u;
    return h;
}

/* Two nicks name one user: nicks compare case-insensitively. */
static bool same_nick(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && strncasecmp(a, b, an) == 0;
}

static bool key_eq(const smap *m, const smap_node *e, const char *k, size_t n)
{
    return m->fold ? same_nick(e->key, e->klen, k, n) : e->klen == n && memcmp(e->key, k, n) == 0;
}

static smap_node *smap_get(const smap *m, const char *k, size_t n)
{
    if (!m->nb)
        return NULL;
    uint32_t h = hash_name(k, n, m->fold);
    for (smap_node *e = m->b[h & (m->nb - 1)]; e; e = e->next)
        if (e->hash == h && key_eq(m, e, k, n))
            return e;
    return NULL;
}

static int smap_grow(smap *m)
{
    uint32_t nb = m->nb ? m->nb * 2 : 16;
    smap_node **b = calloc(nb, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (uint32_t i = 0; i < m->nb; i++) {
        smap_node *e = m->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

/* Insert e under key k (not present). 0 or -ENOMEM. */
static int smap_put(smap *m, smap_node *e, const char *k, size_t n)
{
    if (m->n >= m->nb && smap_grow(m) != 0)
        return -ENOMEM;
    memcpy(e->key, k, n);
    e->key[n] = '\0';
    e->klen = (uint32_t)n;
    e->hash = hash_name(k, n, m->fold);
    e->next = m->b[e->hash & (m->nb - 1)];
    m->b[e->hash & (m->nb - 1)] = e;
    m->n++;
    return 0;
}

static void smap_del(smap *m, smap_node *e)
{
    smap_node **pp = &m->b[e->hash & (m->nb - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    m->n--;
}

/* Free every entry (each a malloc'd struct starting with its node) and the buckets. */
static void smap_free_all(smap *m)
{
    for (uint32_t i = 0; i < m->nb; i++) {
        smap_node *e = m->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

/* ---- server, worker and client state -------------------------------------- */

struct chat_client;

typedef struct room {
    smap_node n; /* first: the map frees rooms as nodes */
    struct chat_client *head;
    uint32_t count;
} room;

/* A nick at its shard: held by id (gen 0: by no one), or an account's name. */
typedef struct nick_ent {
    smap_node n;
    chat_id id;
    bool account; /* a registered name: only its login may hold it; kept when released */
} nick_ent;

typedef struct slot {
    struct chat_client *cl; /* NULL when free */
    uint32_t gen;           /* changes whenever the slot is freed */
    uint32_t next_free;
} slot;

#define NO_SLOT UINT32_MAX

/* Everything one worker owns. Touched only on that worker's thread. */
typedef struct chat_worker {
    struct chat_server *cs;
    int index;
    slot *slots;
    uint32_t nslots, free_head, hint; /* hint: where any_conn looks first */
    smap rooms;                       /* room -> this worker's members */
    smap nicks;                       /* this worker's shard of the nick directory */
    smap rshard; /* this worker's shard of the room directory: room -> workers with members */
    /* Gauges of this worker's shards, read by the stats thread (relaxed). */
    _Atomic int64_t users_live, rooms_live;
    char *line; /* a line copied out of an input ring: max_line bytes */
    char *out;  /* a formatted output line: OUT_SIZE(max_line) bytes (text, then its JSON) */
    char *jbuf; /* a line converted for a JSON client: JBUF_SIZE(max_line) bytes */
} chat_worker;

/* Room for a nick, a room name and the fixed words around a line of text. */
#define OUT_EXTRA 256
/* A room line in both forms: the text, then its JSON (the text escaped, at most 3x). */
#define OUT_SIZE(max)  ((size_t)(max) + OUT_EXTRA + CHAT_JSON_STR_MAX((size_t)(max)) + OUT_EXTRA)
#define JBUF_SIZE(max) (CHAT_JSON_STR_MAX((size_t)(max) + OUT_EXTRA) + 64)

struct chat_server {
    weft_server *srv;
    uint32_t max_line;
    int nworkers;
    chat_worker **w;
    int ctr_messages, ctr_deliveries, ctr_private, ctr_nick_taken, ctr_too_long;
    int ctr_logins, ctr_login_failed, ctr_login_throttled, ctr_registered, ctr_busy, ctr_offline;
    int ctr_json_bad, ctr_files, ctr_file_refused, ctr_file_slow, ctr_ws_refused;
    int ctr_users_in, ctr_users_out, ctr_rooms_opened, ctr_rooms_closed;
    char *spool; /* the file spool directory */
    chat_options opt;
    chat_store *store; /* NULL: no database */
    chat_auth *auth;
    char *wline;                                /* the writer thread's line buffer (on_stored) */
    void (*teardown)(weft_server *s, void *ud); /* the program's own (chat_main) */
    int ncommands; /* the embedding program's commands (chat_server_command) */
    struct {
        const char *name, *help;
        chat_command_fn fn;
        void *ud;
    } command[CHAT_MAX_COMMANDS];
};

typedef struct chat_client {
    weft_conn *conn; /* NULL once closed */
    chat_worker *w;
    chat_id id;
    room *room; /* NULL when in no room */
    struct chat_client *rprev, *rnext;
    size_t scan;       /* how far the input ring was searched for '\n' */
    const char *why;   /* why we closed it, for the "left" line */
    int busy;          /* parsing its input: on_close must not free it */
    bool waiting;      /* /nick or /who in flight: input waits in the ring */
    bool done;         /* we closed it (after /quit or an error) */
    bool closed;       /* on_close ran */
    bool authed;       /* logged in: the nick is the account's */
    bool unfenced;     /* room messages sent to the writer since the last fence */
    bool json;         /* speaks the JSON protocol (its first byte was '{') */
    bool mode_known;   /* its first byte arrived */
    struct upload *up; /* a /send's bytes are arriving */
    bool ws;           /* a WebSocket client (web.c): frames, one line per text message */
    bool frag_ready;   /* frag holds a whole message that waits for a fence */
    int ws_code;       /* the close code our close frame carries */
    char *frag;        /* a message arriving in fragments: max_line bytes, or NULL */
    size_t frag_len;
    uint8_t joining_len; /* /join waits for the room's history (store) */
    char joining[CHAT_NAME_MAX + 1];
    uint8_t nick_len; /* 0 until /nick succeeded */
    char nick[CHAT_NAME_MAX + 1];
} chat_client;

static chat_server *server_of(weft_server *s) { return weft_server_userdata(s); }

static int shard_of(const chat_server *cs, const char *nick, size_t n)
{
    return (int)(hash_name(nick, n, true) % (uint32_t)cs->nworkers);
}

static void count(chat_worker *w, int ctr, uint64_t n)
{
    if (ctr >= 0 && n)
        weft_worker_counter_add(w->cs->srv, w->index, ctr, n);
}

/* ---- slots: (worker, slot, generation) names a client safely ------------- */

static int slot_alloc(chat_worker *w, chat_client *cl)
{
    if (w->free_head == NO_SLOT) {
        uint32_t n = w->nslots ? w->nslots * 2 : 64;
        slot *s = realloc(w->slots, n * sizeof(*s));
        if (!s)
            return -ENOMEM;
        for (uint32_t i = w->nslots; i < n; i++)
            s[i] = (slot){.cl = NULL, .gen = 1, .next_free = i + 1 < n ? i + 1 : NO_SLOT};
        w->slots = s;
        w->free_head = w->nslots;
        w->nslots = n;
    }
    uint32_t i = w->free_head;
    w->free_head = w->slots[i].next_free;
    w->slots[i].cl = cl;
    cl->id = (chat_id){.worker = (uint32_t)w->index, .slot = i, .gen = w->slots[i].gen};
    return 0;
}

static void slot_free(chat_worker *w, uint32_t i)
{
    w->slots[i].cl = NULL;
    w->slots[i].gen++; /* every id naming the old client is now stale */
    w->slots[i].next_free = w->free_head;
    w->free_head = i;
}

/* Some open connection of worker w's (to record a latency on), or NULL. */
static weft_conn *any_conn(chat_worker *w)
{
    for (uint32_t k = 0; k < w->nslots; k++) {
        uint32_t i = (w->hint + k) % w->nslots;
        chat_client *cl = w->slots[i].cl;
        if (cl && !cl->closed) {
            w->hint = i;
            return cl->conn;
        }
    }
    return NULL;
}

/* The live client named by id on worker w, or NULL. */
static chat_client *client_lookup(chat_worker *w, chat_id id)
{
    if (id.worker != (uint32_t)w->index || id.slot >= w->nslots)
        return NULL;
    slot *s = &w->slots[id.slot];
    return s->cl && s->gen == id.gen ? s->cl : NULL;
}

static void client_free(chat_client *cl)
{
    free(cl->frag);
    free(cl);
}

/*
 * Write bytes to a client as they are (its own worker only): one or more
 * lines, each its own text frame (without its '\n') for a WebSocket
 * client. May close it.
 */
static void client_raw(chat_client *cl, const char *p, size_t n)
{
    if (!cl->ws) {
        if (!cl->closed)
            (void)weft_send(cl->conn, p, n);
        return;
    }
    while (n && !cl->closed) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        (void)ws_send(cl->conn, WS_TEXT, p, len);
        len += nl ? 1 : 0;
        p += len;
        n -= len;
    }
}

/*
 * One of the server's own text lines (without '\n') as JSON into o:
 * "error: X" is {"type":"error","data":X}, "*NICK* X" (a private message)
 * {"type":"private","user":NICK,"data":X}, "* X" and anything else
 * {"type":"notice","data":X}.
 */
static size_t line_json(char *o, const char *p, size_t n)
{
    const char *type = "notice", *user = NULL;
    size_t un = 0;
    if (n >= 7 && memcmp(p, "error: ", 7) == 0) {
        type = "error";
        p += 7, n -= 7;
    } else if (n >= 2 && p[0] == '*' && p[1] == ' ') {
        p += 2, n -= 2;
    } else if (n >= 3 && p[0] == '*') {
        const char *e = memchr(p + 1, '*', n - 1);
        if (e && e + 1 < p + n && e[1] == ' ' && chat_valid_name(p + 1, (size_t)(e - p - 1))) {
            type = "private";
            user = p + 1;
            un = (size_t)(e - p - 1);
            n -= (size_t)(e + 2 - p);
            p = e + 2;
        }
    }
    size_t k = (size_t)sprintf(o, "{\"type\":\"%s\",", type);
    if (user)
        k += (size_t)sprintf(o + k, "\"user\":\"%.*s\",", (int)un, user);
    memcpy(o + k, "\"data\":", 7);
    k += 7;
    k += chat_json_str(o + k, p, n);
    o[k++] = '}';
    o[k++] = '\n';
    return k;
}

/*
 * Write the server's own lines to a client: as they are, or as JSON for a
 * JSON client. May close it: check cl->closed.
 */
static void client_send(chat_client *cl, const char *p, size_t n)
{
    if (!cl->json) {
        client_raw(cl, p, n);
        return;
    }
    while (n && !cl->closed) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        client_raw(cl, cl->w->jbuf, line_json(cl->w->jbuf, p, len));
        len += nl ? 1 : 0;
        p += len;
        n -= len;
    }
}

static void client_sendf(chat_client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void client_sendf(chat_client *cl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cl->w->out, cl->w->cs->max_line + OUT_EXTRA, fmt, ap);
    va_end(ap);
    if (n > 0)
        client_send(cl, cl->w->out,
                    (size_t)n < cl->w->cs->max_line + OUT_EXTRA
                        ? (size_t)n
                        : cl->w->cs->max_line + OUT_EXTRA - 1);
}

/* Close after pending output, with `why` in the room's "left" line. */
static void client_finish(chat_client *cl, const char *why)
{
    if (cl->done || cl->closed)
        return;
    cl->done = true;
    cl->why = why;
    if (cl->ws)
        ws_send_close(cl->conn, cl->ws_code ? cl->ws_code : WS_NORMAL);
    weft_close(cl->conn);
}

/* ---- rooms: local membership and delivery --------------------------------- */

static void post_room_count(chat_worker *w, const char *name, size_t n, int delta);

static int room_link(chat_client *cl, const char *name, size_t n)
{
    chat_worker *w = cl->w;
    room *r = (room *)smap_get(&w->rooms, name, n);
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r || smap_put(&w->rooms, &r->n, name, n) != 0) {
            free(r);
            return -ENOMEM;
        }
        post_room_count(w, name, n, +1);
    }
    cl->rprev = NULL;
    cl->rnext = r->head;
    if (r->head)
        r->head->rprev = cl;
    r->head = cl;
    r->count++;
    cl->room = r;
    return 0;
}

static void room_unlink(chat_client *cl)
{
    room *r = cl->room;
    if (!r)
        return;
    if (cl->rprev)
        cl->rprev->rnext = cl->rnext;
    else
        r->head = cl->rnext;
    if (cl->rnext)
        cl->rnext->rprev = cl->rprev;
    cl->rprev = cl->rnext = NULL;
    cl->room = NULL;
    if (--r->count == 0) {
        smap_del(&cl->w->rooms, &r->n);
        post_room_count(cl->w, r->n.key, r->n.klen, -1);
        free(r);
    }
}

/*
 * Write a line to each of this worker's members of a room. A write may
 * close the member it writes to (output cap): on_close unlinks only that
 * member, so taking `next` first keeps the walk valid; the room itself may
 * be freed with its last member, so it is not touched after the walk.
 * True when it reached a member.
 */
static bool deliver_local(chat_worker *w, const char *rname, size_t rlen, const char *p, size_t n,
                          size_t jn)
{
    room *r = (room *)smap_get(&w->rooms, rname, rlen);
    if (!r)
        return false;
    uint64_t k = 0;
    for (chat_client *m = r->head, *next; m; m = next) {
        next = m->rnext;
        if (m->json)
            client_raw(m, p + n, jn);
        else
            client_raw(m, p, n);
        k++; /* m may be gone now (closed at its output cap): not touched again */
    }
    count(w, w->cs->ctr_deliveries, k);
    return k > 0; /* delivered to a member */
}

/* A line on its way to other workers: immutable once posted, refcounted. */
typedef struct bcast_msg {
    int refs;                 /* workers that have yet to deliver it */
    uint32_t rlen, len, jlen; /* text[0..len) the line, text[len..len+jlen) its JSON */
    uint64_t t0;              /* when its sender's worker took it (weft_now_ns) */
    _Atomic uint64_t last_ns; /* the latest delivery to a member so far (0: none) */
    int origin;               /* the sender's worker */
    char room[CHAT_NAME_MAX + 1];
    char text[];
} bcast_msg;

static void record_post(weft_server *s, int worker, void *arg)
{
    weft_conn *c = any_conn(server_of(s)->w[worker]);
    if (c)
        weft_record_latency(c, (uint64_t)(uintptr_t)arg);
}

/*
 * Record a fan-out latency on worker w, on one of its connections; a
 * worker without one (it has no client at all) hands the sample to the
 * line's origin worker (a post: only then), which drops it if it has none.
 */
static void record_fanout(chat_worker *w, int origin, uint64_t ns)
{
    weft_conn *c = any_conn(w);
    if (c)
        weft_record_latency(c, ns);
    else if (origin != w->index)
        (void)weft_post(w->cs->srv, origin, record_post, (void *)(uintptr_t)ns);
}

/* True for the last worker's release (which freed it). */
static bool bcast_release(bcast_msg *m)
{
    /* acq_rel: the last release sees every other worker's reads done. */
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return false;
    free(m);
    return true;
}

static void bcast_deliver(weft_server *s, int worker, void *arg)
{
    bcast_msg *m = arg;
    chat_worker *w = server_of(s)->w[worker];
    uint64_t t0 = m->t0;
    /*
     * The fan-out latency, from the sender's worker taking the line to its
     * last delivery (a write into a member's output ring) on any worker:
     * each worker with members raises last_ns; the worker that releases
     * the line last records it in weft's latency histogram (weft-stat's
     * percentiles), on one of its own connections (the histogram is per
     * worker, written by its owner only).
     */
    if (deliver_local(w, m->room, m->rlen, m->text, m->len, m->jlen)) {
        uint64_t now = weft_now_ns(), seen = atomic_load(&m->last_ns);
        while (seen < now && !atomic_compare_exchange_weak(&m->last_ns, &seen, now))
            ;
    }
    uint64_t last = atomic_load(&m->last_ns);
    int origin = m->origin;
    if (bcast_release(m) && last)
        record_fanout(w, origin, last - t0);
}

/*
 * Post a line for room `rname` to every worker but `skip` (-1: none), from
 * any thread: one shared copy, freed by the last worker. Out of memory,
 * the members of those workers miss it.
 */
static void post_all(chat_server *cs, int skip, const char *rname, size_t rlen, const char *p,
                     size_t n, size_t jn, uint64_t t0, int origin)
{
    int remote = cs->nworkers - (skip >= 0 ? 1 : 0);
    if (remote <= 0)
        return;
    bcast_msg *m = malloc(sizeof(*m) + n + jn);
    if (!m)
        return;
    m->refs = remote;
    m->rlen = (uint32_t)rlen;
    memcpy(m->room, rname, rlen);
    m->room[rlen] = '\0';
    m->len = (uint32_t)n;
    m->jlen = (uint32_t)jn;
    m->t0 = t0;
    m->origin = origin;
    atomic_init(&m->last_ns, 0);
    memcpy(m->text, p, n + jn);
    for (int i = 0; i < cs->nworkers; i++) {
        if (i == skip)
            continue;
        if (weft_post(cs->srv, i, bcast_deliver, m) != 0)
            bcast_release(m); /* that worker has exited (stopping): no one to tell */
    }
}

static int store_notice(chat_server *cs, const char *rname, size_t rlen, const char *p, size_t n,
                        size_t jn);

/*
 * Send a line to every member of room `rname`. With a store, through the
 * writer, which sequences every room line (store.h). Without one (or when
 * the writer's queue is full: the order against lines in the queue is then
 * lost, not the line): with local_now, this worker's members get it at once
 * (the sender's path, in input order); otherwise this worker gets a post
 * too (on_close, which must not deliver while a delivery loop may be
 * running).
 */
static void bcast(chat_worker *w, const char *rname, size_t rlen, const char *p, size_t n,
                  size_t jn, bool local_now)
{
    chat_server *cs = w->cs;
    if (cs->store && store_notice(cs, rname, rlen, p, n, jn) == 0)
        return;
    post_all(cs, local_now ? w->index : -1, rname, rlen, p, n, jn, weft_now_ns(), w->index);
    if (local_now)
        deliver_local(w, rname, rlen, p, n, jn);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A room notice in both forms into o (OUT_EXTRA bytes at least): the text
 * line, then its JSON {"type":TYPE,"room","user"[,"old"][,"reason"],"ts"}.
 * type is "join", "leave" (reason may be NULL) or "nick" (old is the
 * previous nick). Names are [A-Za-z0-9_-] and reasons weft's or ours, so
 * nothing needs escaping. Returns the text's length; *jn the JSON's.
 */
static size_t notice_pair(char *o, const char *type, const char *user, const char *rname,
                          const char *old, const char *reason, size_t *jn)
{
    int n;
    if (!strcmp(type, "join"))
        n = sprintf(o, "* %s joined #%s\n", user, rname);
    else if (!strcmp(type, "nick"))
        n = sprintf(o, "* %s is now known as %s\n", old, user);
    else if (reason)
        n = sprintf(o, "* %s left #%s (%s)\n", user, rname, reason);
    else
        n = sprintf(o, "* %s left #%s\n", user, rname);
    int j = sprintf(o + n, "{\"type\":\"%s\",\"room\":\"%s\",\"user\":\"%s\"", type, rname, user);
    if (old)
        j += sprintf(o + n + j, ",\"old\":\"%s\"", old);
    if (reason)
        j += sprintf(o + n + j, ",\"reason\":\"%s\"", reason);
    j += sprintf(o + n + j, ",\"ts\":%lld}\n", (long long)wall_ms());
    *jn = (size_t)j;
    return (size_t)n;
}

/*
 * A room message in both forms into o (OUT_SIZE bytes): "<nick> text\n",
 * then {"type":"message","room","user","data","ts"[,"id"]} (id: its row
 * in the store, 0 without one). Returns the text's length; *jn the JSON's.
 */
static size_t message_pair(char *o, const char *nick, size_t nn, const char *rname, const char *p,
                           size_t n, int64_t ts, int64_t id, size_t *jn)
{
    size_t k = 0;
    o[k++] = '<';
    memcpy(o + k, nick, nn);
    k += nn;
    o[k++] = '>';
    o[k++] = ' ';
    memcpy(o + k, p, n);
    k += n;
    o[k++] = '\n';
    char *j = o + k;
    size_t m = (size_t)sprintf(
        j, "{\"type\":\"message\",\"room\":\"%s\",\"user\":\"%.*s\",\"data\":", rname, (int)nn,
        nick);
    m += chat_json_str(j + m, p, n);
    m += (size_t)sprintf(j + m, ",\"ts\":%lld", (long long)ts);
    if (id)
        m += (size_t)sprintf(j + m, ",\"id\":%lld", (long long)id);
    j[m++] = '}';
    j[m++] = '\n';
    *jn = m;
    return k;
}

/* Tell the client's room (and the client) a notice of cl's (notice_pair). */
static void room_notice(chat_client *cl, const char *type, const char *old, bool local_now)
{
    if (!cl->room)
        return;
    size_t jn, n = notice_pair(cl->w->out, type, cl->nick, cl->room->n.key, old, NULL, &jn);
    bcast(cl->w, cl->room->n.key, cl->room->n.klen, cl->w->out, n, jn, local_now);
}

/*
 * Leave the current room: the room (the leaver included) hears it first.
 * With a store the room hears it through the writer, after the leaver has
 * gone: the leaver gets its line at once.
 */
static void leave_room(chat_client *cl)
{
    if (cl->w->cs->store) {
        size_t jn, n = notice_pair(cl->w->out, "leave", cl->nick, cl->room->n.key, NULL, NULL, &jn);
        if (cl->json)
            client_raw(cl, cl->w->out + n, jn);
        else
            client_raw(cl, cl->w->out, n);
    }
    room_notice(cl, "leave", NULL, true);
    room_unlink(cl);
}

/* ---- the rooms and users gauges ------------------------------------------- */

/*
 * How many rooms have members anywhere: each room's shard (by its name's
 * hash, like nicks) counts the workers that have members of it; a worker
 * posts +1 when it gets its first member of a room and -1 when it loses
 * its last (from one worker to one shard the posts keep their order, so a
 * count never goes below 0). The room is live while the count is > 0.
 */
typedef struct room_count {
    smap_node n;
    int workers;
} room_count;

typedef struct room_delta {
    int delta;
    uint32_t len;
    char name[CHAT_NAME_MAX + 1];
} room_delta;

static void room_count_apply(weft_server *s, int worker, void *arg)
{
    room_delta *d = arg;
    chat_worker *w = server_of(s)->w[worker];
    room_count *rc = (room_count *)smap_get(&w->rshard, d->name, d->len);
    if (!rc && d->delta > 0 && (rc = calloc(1, sizeof(*rc))) &&
        smap_put(&w->rshard, &rc->n, d->name, d->len) != 0) {
        free(rc);
        rc = NULL;
    }
    if (rc) {
        rc->workers += d->delta;
        if (rc->workers == 1 && d->delta > 0) {
            atomic_fetch_add_explicit(&w->rooms_live, 1, memory_order_relaxed);
            count(w, w->cs->ctr_rooms_opened, 1);
        } else if (rc->workers == 0) {
            atomic_fetch_sub_explicit(&w->rooms_live, 1, memory_order_relaxed);
            count(w, w->cs->ctr_rooms_closed, 1);
            smap_del(&w->rshard, &rc->n);
            free(rc);
        }
    }
    free(d);
}

static void post_room_count(chat_worker *w, const char *name, size_t n, int delta)
{
    room_delta *d = malloc(sizeof(*d));
    if (!d)
        return; /* the gauge is off by one room until it empties */
    d->delta = delta;
    d->len = (uint32_t)n;
    memcpy(d->name, name, n);
    d->name[n] = '\0';
    if (weft_post(w->cs->srv, (int)(hash_name(name, n, false) % (uint32_t)w->cs->nworkers),
                  room_count_apply, d) != 0)
        free(d);
}

/* A nick got (+1) or lost (-1) its holder, at its shard: the users gauge. */
static void users_gauge(chat_worker *w, int delta)
{
    atomic_fetch_add_explicit(&w->users_live, delta, memory_order_relaxed);
    count(w, delta > 0 ? w->cs->ctr_users_in : w->cs->ctr_users_out, 1);
}

/* The admin socket's "chat" command (stats thread): the gauges, summed. */
static char *chat_admin(weft_server *s, const char *args, void *ud)
{
    chat_server *cs = ud;
    (void)s;
    (void)args;
    int64_t users = 0, rooms = 0;
    for (int i = 0; i < cs->nworkers; i++) {
        users += atomic_load_explicit(&cs->w[i]->users_live, memory_order_relaxed);
        rooms += atomic_load_explicit(&cs->w[i]->rooms_live, memory_order_relaxed);
    }
    char *out = malloc(160);
    if (out)
        snprintf(out, 160, "users %lld\nrooms %lld\ndb_backlog %zu\n", (long long)users,
                 (long long)rooms, cs->store ? store_backlog(cs->store) : 0);
    return out;
}

/* ---- nicks: claims at the owning shard ----------------------------------- */

/* Who claims a nick: a guest (/nick), a login, or the directory itself. */
enum { NICK_GUEST, NICK_LOGIN };

typedef struct nick_op {
    chat_id id;
    int mode;   /* NICK_GUEST or NICK_LOGIN */
    int result; /* 0 granted, -EEXIST taken, -EACCES an account's (guest), -ENOMEM */
    uint32_t len;
    char nick[CHAT_NAME_MAX + 1];
} nick_op;

static void nick_reply(weft_server *s, int worker, void *arg);

static void nick_release(weft_server *s, int worker, void *arg)
{
    nick_op *op = arg;
    chat_worker *w = server_of(s)->w[worker];
    nick_ent *e = (nick_ent *)smap_get(&w->nicks, op->nick, op->len);
    /* Only the holder's release counts: the nick may have been claimed
     * anew by someone else since. An account's name stays, held by no one. */
    if (e && id_eq(e->id, op->id)) {
        users_gauge(w, -1);
        if (e->account) {
            e->id = (chat_id){0, 0, 0};
        } else {
            smap_del(&w->nicks, &e->n);
            free(e);
        }
    }
    free(op);
}

/* On the shard: `nick` is an account's name from now on (registered, or loaded). */
static void nick_reserve(weft_server *s, int worker, void *arg)
{
    nick_op *op = arg;
    chat_worker *w = server_of(s)->w[worker];
    nick_ent *e = (nick_ent *)smap_get(&w->nicks, op->nick, op->len);
    if (!e && (e = malloc(sizeof(*e)))) {
        if (smap_put(&w->nicks, &e->n, op->nick, op->len) != 0) {
            free(e);
            e = NULL;
        } else {
            e->id = (chat_id){0, 0, 0};
        }
    }
    if (e)
        e->account = true;
    free(op);
}

static void post_reserve(chat_server *cs, const char *nick, size_t n)
{
    nick_op *op = calloc(1, sizeof(*op));
    if (!op)
        return;
    op->len = (uint32_t)n;
    memcpy(op->nick, nick, n);
    if (weft_post(cs->srv, shard_of(cs, nick, n), nick_reserve, op) != 0)
        free(op);
}

/* Post a release of `nick` held by `id` to its shard (op reused or new). */
static void post_release(chat_server *cs, nick_op *op, chat_id id, const char *nick, size_t n)
{
    if (!op && !(op = malloc(sizeof(*op))))
        return; /* the entry stays until the stop; its id is stale anyway */
    op->id = id;
    op->len = (uint32_t)n;
    memmove(op->nick, nick, n);
    op->nick[n] = '\0';
    if (weft_post(cs->srv, shard_of(cs, nick, n), nick_release, op) != 0)
        free(op);
}

/* On the shard: grant the nick unless someone else holds it. */
static void nick_claim(weft_server *s, int worker, void *arg)
{
    nick_op *op = arg;
    chat_worker *w = server_of(s)->w[worker];
    nick_ent *e = (nick_ent *)smap_get(&w->nicks, op->nick, op->len);
    if (e) {
        if (id_eq(e->id, op->id))
            op->result = 0;
        else if (e->id.gen != 0)
            op->result = -EEXIST;
        else if (op->mode == NICK_LOGIN)
            e->id = op->id, op->result = 0, users_gauge(w, +1);
        else
            op->result = -EACCES; /* an account's name, free: only its login takes it */
    } else if ((e = malloc(sizeof(*e))) && smap_put(&w->nicks, &e->n, op->nick, op->len) == 0) {
        e->id = op->id;
        e->account = op->mode == NICK_LOGIN;
        op->result = 0;
        users_gauge(w, +1);
    } else {
        free(e);
        op->result = -ENOMEM;
    }
    if (weft_post(s, (int)op->id.worker, nick_reply, op) != 0) {
        /* The client's worker has exited: nobody will use the nick. */
        if (op->result == 0 && (e = (nick_ent *)smap_get(&w->nicks, op->nick, op->len))) {
            users_gauge(w, -1);
            if (e->account) {
                e->id = (chat_id){0, 0, 0};
            } else {
                smap_del(&w->nicks, &e->n);
                free(e);
            }
        }
        free(op);
    }
}

static void answered(chat_client *cl);
static void fetch_inbox(chat_client *cl);

/* Back on the client's worker: adopt the nick or report why not. */
static void nick_reply(weft_server *s, int worker, void *arg)
{
    nick_op *op = arg;
    chat_server *cs = server_of(s);
    chat_worker *w = cs->w[worker];
    chat_client *cl = client_lookup(w, op->id);
    if (!cl) {
        /* Closed while the claim was in flight. */
        if (op->result == 0)
            post_release(cs, op, op->id, op->nick, op->len);
        else
            free(op);
        return;
    }
    cl->busy++;
    if (op->result == 0) {
        char old[CHAT_NAME_MAX + 1];
        size_t oldn = cl->nick_len;
        memcpy(old, cl->nick, oldn + 1);
        memcpy(cl->nick, op->nick, op->len + 1);
        cl->nick_len = (uint8_t)op->len;
        /* The old nick is released before anyone hears of the rename, so a
         * claim prompted by these lines finds it free (see on_close). */
        bool login = op->mode == NICK_LOGIN;
        if (oldn)
            post_release(cs, op, op->id, old, oldn);
        else
            free(op);
        if (login) {
            cl->authed = true;
            count(w, cs->ctr_logins, 1);
            client_sendf(cl, "* logged in as %s\n", cl->nick);
            fetch_inbox(cl);
        } else {
            client_sendf(cl, "* you are now %s\n", cl->nick);
        }
        if (oldn && cl->room && !cl->closed)
            room_notice(cl, "nick", old, true);
    } else {
        if (op->result == -EEXIST && op->mode == NICK_LOGIN) {
            client_sendf(cl, "error: %s is already logged in\n", op->nick);
        } else if (op->result == -EEXIST) {
            client_sendf(cl, "error: nick %s is taken\n", op->nick);
            count(w, cs->ctr_nick_taken, 1);
        } else if (op->result == -EACCES) {
            client_sendf(cl, "error: nick %s is a registered account: /login %s PASSWORD\n",
                         op->nick, op->nick);
            count(w, cs->ctr_nick_taken, 1);
        } else {
            client_sendf(cl, "error: out of memory\n");
        }
        free(op);
    }
    answered(cl);
}

/*
 * The client's own nick in other letter case ("/nick Bob" by bob): it is
 * the same nick, already held at its shard, so only how it is written
 * changes, and the room hears of it.
 */
static void recase_nick(chat_client *cl, const char *name, size_t n)
{
    char old[CHAT_NAME_MAX + 1];
    memcpy(old, cl->nick, (size_t)cl->nick_len + 1);
    memcpy(cl->nick, name, n);
    client_sendf(cl, "* you are now %s\n", cl->nick);
    if (cl->room && !cl->closed)
        room_notice(cl, "nick", old, true);
}

/* Post a claim of nick `name` for cl to its shard; nick_reply answers. */
static void claim_nick(chat_client *cl, const char *name, size_t n, int mode)
{
    chat_server *cs = cl->w->cs;
    nick_op *op = malloc(sizeof(*op));
    if (!op) {
        client_sendf(cl, "error: out of memory\n");
        return;
    }
    op->id = cl->id;
    op->mode = mode;
    op->result = 0;
    op->len = (uint32_t)n;
    memcpy(op->nick, name, n);
    op->nick[n] = '\0';
    if (weft_post(cs->srv, shard_of(cs, name, n), nick_claim, op) != 0) {
        free(op);
        client_sendf(cl, "error: the server is stopping\n");
        return;
    }
    cl->waiting = true;
}

static void cmd_nick(chat_client *cl, const char *name, size_t n)
{
    chat_server *cs = cl->w->cs;
    if (cl->authed) {
        client_sendf(cl, "error: you are logged in as %s: your nick is your account's name\n",
                     cl->nick);
        return;
    }
    if (cs->store && !cs->opt.allow_guests) {
        client_sendf(cl, "error: log in first: /login NAME PASSWORD (or /register NAME "
                         "PASSWORD)\n");
        return;
    }
    if (same_nick(name, n, cl->nick, cl->nick_len)) {
        if (memcmp(name, cl->nick, n) == 0)
            client_sendf(cl, "* you are now %s\n", cl->nick);
        else
            recase_nick(cl, name, n);
        return;
    }
    claim_nick(cl, name, n, NICK_GUEST);
}

/* ---- private messages: sender -> shard(nick) -> target's worker ----------- */

typedef struct pm_msg {
    chat_id from, to;
    bool busy;       /* failed: the offline store's queue was full */
    bool to_account; /* the target is a registered name: store it if they just left */
    uint32_t from_len, to_len, len;
    char from_nick[CHAT_NAME_MAX + 1];
    char to_nick[CHAT_NAME_MAX + 1];
    char text[];
} pm_msg;

/* On the sender's worker: the nick was not found. */
static void pm_failed(weft_server *s, int worker, void *arg)
{
    pm_msg *m = arg;
    chat_client *cl = client_lookup(server_of(s)->w[worker], m->from);
    if (cl && m->busy)
        client_sendf(cl, "error: server busy: message to %s not stored, try again\n", m->to_nick);
    else if (cl)
        client_sendf(cl, "error: no such nick %s\n", m->to_nick);
    free(m);
}

static void pm_fail(weft_server *s, pm_msg *m)
{
    if (weft_post(s, (int)m->from.worker, pm_failed, m) != 0)
        free(m);
}

static void pm_offline(weft_server *s, pm_msg *m, const char *account);

/* On the target's worker: write it if the target is still the same client. */
static void pm_deliver(weft_server *s, int worker, void *arg)
{
    pm_msg *m = arg;
    chat_server *cs = server_of(s);
    chat_worker *w = cs->w[worker];
    chat_client *cl = client_lookup(w, m->to);
    if (!cl && m->to_account && cs->store) {
        /* They logged out after the shard looked: keep it for their next login. */
        pm_offline(s, m, m->to_nick);
        return;
    }
    if (!cl) {
        pm_fail(s, m);
        return;
    }
    client_sendf(cl, "*%s* %.*s\n", m->from_nick, (int)m->len, m->text);
    count(w, cs->ctr_private, 1);
    free(m);
}

static uint64_t id_tag(chat_id id) { return (uint64_t)id.worker << 32 | id.slot; }
static chat_id tag_id(uint64_t tag, uint64_t gen)
{
    return (chat_id){.worker = (uint32_t)(tag >> 32), .slot = (uint32_t)tag, .gen = (uint32_t)gen};
}

/* On the nick's shard: an account that is not logged in gets it at its next login. */
static void pm_offline(weft_server *s, pm_msg *m, const char *account)
{
    store_item *it = store_item_new(STORE_OFFLINE, m->len);
    if (it) {
        it->tag = id_tag(m->from);
        it->tag2 = m->from.gen;
        memcpy(it->user, m->from_nick, m->from_len + 1);
        snprintf(it->to, sizeof(it->to), "%s", account);
        memcpy(it->text, m->text, m->len);
        if (store_push(server_of(s)->store, it) == 0) {
            free(m);
            return;
        }
        store_item_free(it);
    }
    m->busy = true;
    pm_fail(s, m);
}

/* On the nick's shard: find the target and forward. */
static void pm_route(weft_server *s, int worker, void *arg)
{
    pm_msg *m = arg;
    nick_ent *e = (nick_ent *)smap_get(&server_of(s)->w[worker]->nicks, m->to_nick, m->to_len);
    if (e && e->id.gen == 0 && e->account && server_of(s)->store) {
        pm_offline(s, m, e->n.key);
        return;
    }
    if (!e || e->id.gen == 0) {
        pm_fail(s, m);
        return;
    }
    m->to = e->id;
    m->to_account = e->account;
    snprintf(m->to_nick, sizeof(m->to_nick), "%s", e->n.key);
    if (weft_post(s, (int)e->id.worker, pm_deliver, m) != 0)
        free(m);
}

static void cmd_msg(chat_client *cl, const chat_cmd *cmd)
{
    chat_server *cs = cl->w->cs;
    pm_msg *m = malloc(sizeof(*m) + cmd->text_len);
    if (!m) {
        client_sendf(cl, "error: out of memory\n");
        return;
    }
    m->from = cl->id;
    m->busy = false;
    m->to_account = false;
    m->from_len = cl->nick_len;
    memcpy(m->from_nick, cl->nick, (size_t)cl->nick_len + 1);
    m->to_len = (uint32_t)cmd->name_len;
    memcpy(m->to_nick, cmd->name, cmd->name_len);
    m->to_nick[cmd->name_len] = '\0';
    m->len = (uint32_t)cmd->text_len;
    memcpy(m->text, cmd->text, cmd->text_len);
    if (weft_post(cs->srv, shard_of(cs, cmd->name, cmd->name_len), pm_route, m) != 0) {
        free(m);
        client_sendf(cl, "error: the server is stopping\n");
    }
}

/* ---- /who: ask every worker, answer when the last one replied ------------- */

typedef struct who_query {
    chat_id origin;
    int remaining; /* workers yet to answer (atomic countdown) */
    int nparts;
    uint32_t rlen;
    char room[CHAT_NAME_MAX + 1];
    char *parts[]; /* parts[i]: worker i's members, "a b c" (NULL: none) */
} who_query;

static void who_free(who_query *q)
{
    for (int i = 0; i < q->nparts; i++)
        free(q->parts[i]);
    free(q);
}

static void who_finish(weft_server *s, int worker, void *arg);

/* One worker's answer is in (or will never come); the last one posts the finish. */
static void who_done(weft_server *s, who_query *q)
{
    /* acq_rel: the last decrement sees every part written before its owner's decrement. */
    if (__atomic_sub_fetch(&q->remaining, 1, __ATOMIC_ACQ_REL) == 0 &&
        weft_post(s, (int)q->origin.worker, who_finish, q) != 0)
        who_free(q);
}

static void who_ask(weft_server *s, int worker, void *arg)
{
    who_query *q = arg;
    room *r = (room *)smap_get(&server_of(s)->w[worker]->rooms, q->room, q->rlen);
    if (r && r->count) {
        char *p = malloc((size_t)r->count * (CHAT_NAME_MAX + 1) + 1);
        if (p) {
            size_t n = 0;
            for (chat_client *m = r->head; m; m = m->rnext) {
                if (n)
                    p[n++] = ' ';
                memcpy(p + n, m->nick, m->nick_len);
                n += m->nick_len;
            }
            p[n] = '\0';
            q->parts[worker] = p;
        }
    }
    who_done(s, q);
}

/* /who's order: nicks compare case-insensitively, so they sort that way. */
static int cmp_nick(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

static void who_finish(weft_server *s, int worker, void *arg)
{
    who_query *q = arg;
    chat_client *cl = client_lookup(server_of(s)->w[worker], q->origin);
    if (!cl) {
        who_free(q);
        return;
    }
    /* Split the parts in place into names, sort them, join them. */
    size_t total = 0, nnames = 0;
    for (int i = 0; i < q->nparts; i++) {
        if (!q->parts[i])
            continue;
        total += strlen(q->parts[i]) + 1;
        nnames++;
        for (char *p = q->parts[i]; *p; p++)
            nnames += *p == ' ';
    }
    const char **names = malloc((nnames ? nnames : 1) * sizeof(*names));
    char *line = malloc(total + 2 * CHAT_NAME_MAX + 64);
    cl->busy++;
    if (!names || !line) {
        client_sendf(cl, "error: out of memory\n");
    } else {
        size_t k = 0;
        for (int i = 0; i < q->nparts; i++) {
            char *p = q->parts[i], *sp;
            while (p && *p) {
                names[k++] = p;
                if (!(sp = strchr(p, ' ')))
                    break;
                *sp = '\0';
                p = sp + 1;
            }
        }
        qsort(names, k, sizeof(*names), cmp_nick);
        int n = sprintf(line, "* members of #%s (%zu):", q->room, k);
        for (size_t i = 0; i < k; i++)
            n += sprintf(line + n, " %s", names[i]);
        line[n++] = '\n';
        client_send(cl, line, (size_t)n);
    }
    free(names);
    free(line);
    who_free(q);
    answered(cl);
}

static void cmd_who(chat_client *cl)
{
    chat_server *cs = cl->w->cs;
    who_query *q = calloc(1, sizeof(*q) + (size_t)cs->nworkers * sizeof(char *));
    if (!q) {
        client_sendf(cl, "error: out of memory\n");
        return;
    }
    q->origin = cl->id;
    q->nparts = cs->nworkers;
    q->remaining = cs->nworkers;
    q->rlen = cl->room->n.klen;
    memcpy(q->room, cl->room->n.key, q->rlen + 1);
    cl->waiting = true;
    for (int i = 0; i < cs->nworkers; i++)
        if (weft_post(cs->srv, i, who_ask, q) != 0)
            who_done(cs->srv, q); /* stopping: that worker answers "none" */
}

/* ---- the store: room lines through the writer, history, accounts --------- */

/* flags of a store_item of ours. */
#define ITEM_JOIN 1 /* HISTORY: the replay of a /join, which links the room after it */

/* What one history reply may write: a policy (the newest lines are kept). */
#define HISTORY_BUDGET (64u * 1024)

/* A store item naming client cl as the one who asked. */
static store_item *item_for(chat_client *cl, store_kind kind, size_t len)
{
    store_item *it = store_item_new(kind, len);
    if (it) {
        it->t0 = weft_now_ns();
        it->tag = id_tag(cl->id);
        it->tag2 = cl->id.gen;
        memcpy(it->user, cl->nick, (size_t)cl->nick_len + 1);
    }
    return it;
}

/* A room notice through the writer (see bcast). 0, or -EAGAIN/-ENOMEM: the caller sends it. */
static int store_notice(chat_server *cs, const char *rname, size_t rlen, const char *p, size_t n,
                        size_t jn)
{
    store_item *it = store_item_new(STORE_PASS, n + jn);
    if (!it)
        return -ENOMEM;
    it->t0 = weft_now_ns();
    memcpy(it->room, rname, rlen);
    memcpy(it->text, p, n + jn);
    it->len = n;
    it->jlen = jn;
    if (store_push(cs->store, it) != 0) {
        store_item_free(it);
        return -EAGAIN;
    }
    return 0;
}

static void busy(chat_client *cl, const char *what)
{
    count(cl->w, cl->w->cs->ctr_busy, 1);
    client_sendf(cl, "error: server busy: %s, try again\n", what);
}

/* Let go of a client held with busy++ (it may have closed meanwhile). */
static void unhold(chat_client *cl)
{
    if (--cl->busy == 0 && cl->closed)
        client_free(cl);
}

/*
 * Send rows "TS\tUSER\tTEXT\n" (store.c) as "[TIME] " + fmt(USER) + " TEXT",
 * fmt being "<%s>" (room history) or "*%s*" (offline messages); at most
 * HISTORY_BUDGET bytes of rows, the newest.
 */
static void send_rows(chat_client *cl, const char *rows, size_t len, bool priv, const char *rname)
{
    const char *p = rows, *end = rows + len;
    while ((size_t)(end - p) > HISTORY_BUDGET) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    while (p < end && !cl->closed) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *t1 = memchr(p, '\t', (size_t)(end - p));
        const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(end - t1 - 1)) : NULL;
        if (!nl || !t1 || !t2 || t2 > nl)
            break;
        long long ms = strtoll(p, NULL, 10);
        if (cl->json) {
            /* {"type":"history","rname","user","data","ts"} or a private one, offline */
            char *o = cl->w->jbuf;
            size_t k;
            if (priv)
                k = (size_t)sprintf(o, "{\"type\":\"private\",\"offline\":true,\"user\":\"%.*s\",",
                                    (int)(t2 - t1 - 1), t1 + 1);
            else
                k = (size_t)sprintf(o, "{\"type\":\"history\",\"room\":\"%s\",\"user\":\"%.*s\",",
                                    rname, (int)(t2 - t1 - 1), t1 + 1);
            memcpy(o + k, "\"data\":", 7);
            k += 7;
            k += chat_json_str(o + k, t2 + 1, (size_t)(nl - t2 - 1));
            k += (size_t)sprintf(o + k, ",\"ts\":%lld}\n", ms);
            client_raw(cl, o, k);
            p = nl + 1;
            continue;
        }
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&secs, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        client_sendf(cl, priv ? "[%s] *%.*s* %.*s\n" : "[%s] <%.*s> %.*s\n", when,
                     (int)(t2 - t1 - 1), t1 + 1, (int)(nl - t2 - 1), t2 + 1);
        p = nl + 1;
    }
}

static void history_answer(chat_client *cl, store_item *it)
{
    if (it->flags & ITEM_JOIN) {
        size_t n = cl->joining_len;
        cl->joining_len = 0;
        if (room_link(cl, cl->joining, n) != 0) {
            client_sendf(cl, "error: out of memory\n");
            return;
        }
        if (!it->count)
            return; /* a join into a room without history says nothing */
    }
    if (it->result < 0) {
        client_sendf(cl, "error: the history of #%s could not be read\n", it->room);
        return;
    }
    client_sendf(cl, "* history of #%s (%u messages)\n", it->room, it->count);
    send_rows(cl, it->out, it->out_len, false, it->room);
    client_sendf(cl, "* end of history\n");
}

/*
 * On the asker's worker: the live client a helper thread's answer is for,
 * held (busy) for the answer, or NULL when it closed meanwhile.
 */
static chat_client *asker(chat_worker *w, uint64_t tag, uint64_t gen)
{
    chat_client *cl = client_lookup(w, tag_id(tag, gen));
    if (cl)
        cl->busy++;
    return cl;
}

/* Files (below): the writer's answers. */
static void send_answer(chat_client *cl, store_item *it);
static void get_answer(chat_client *cl, store_item *it);
static void expire_files(chat_server *cs, store_item *it);

/* On the asker's worker: the writer's answer to an item of theirs. */
static void item_answer(weft_server *s, int worker, void *arg)
{
    store_item *it = arg;
    chat_server *cs = server_of(s);
    chat_worker *w = cs->w[worker];
    chat_client *cl = asker(w, it->tag, it->tag2);
    if (!cl) {
        store_item_free(it);
        return;
    }
    switch (it->kind) {
    case STORE_MSG: /* only a failed one comes back here */
        client_sendf(cl, "error: message not stored (database error), not sent\n");
        break;
    case STORE_HISTORY:
        history_answer(cl, it);
        break;
    case STORE_REGISTER:
        if (it->result == 0) {
            count(w, cs->ctr_registered, 1);
            post_reserve(cs, it->to, strlen(it->to));
            client_sendf(cl, "* registered %s: now /login %s PASSWORD\n", it->to, it->to);
        } else if (it->result == -EEXIST) {
            client_sendf(cl, "error: the name %s is taken\n", it->to);
        } else {
            client_sendf(cl, "error: the account could not be stored (database error)\n");
        }
        break;
    case STORE_OFFLINE:
        if (it->result == 0) {
            count(w, cs->ctr_offline, 1);
            client_sendf(cl, "* %s is offline: they get your message at their next login\n",
                         it->to);
        } else {
            client_sendf(cl, "error: message to %s not stored (database error)\n", it->to);
        }
        break;
    case STORE_INBOX:
        if (it->count) {
            client_sendf(cl, "* %u messages while you were away\n", it->count);
            send_rows(cl, it->out, it->out_len, true, NULL);
        }
        break;
    case STORE_FENCE:
        cl->unfenced = false; /* the command that waited runs now */
        break;
    case STORE_FILE_NEW:
        send_answer(cl, it);
        break;
    case STORE_FILE_GET:
        get_answer(cl, it);
        break;
    case STORE_FILE_DONE:
    case STORE_FILE_DROP:
    case STORE_FILE_EXPIRE:
        break;
    case STORE_PASS:
        break;
    }
    bool waited = it->kind == STORE_HISTORY || it->kind == STORE_REGISTER ||
                  it->kind == STORE_FENCE || it->kind == STORE_FILE_NEW ||
                  it->kind == STORE_FILE_GET;
    store_item_free(it);
    if (waited)
        answered(cl);
    else
        unhold(cl);
}

/*
 * On the writer thread, each item once its batch committed: a room line
 * goes to every worker (the writer's posts to one worker keep its order,
 * which is the rooms' order); an answer goes to its asker's worker.
 */
static void on_stored(store_item *it, void *ud)
{
    chat_server *cs = ud;
    if ((it->kind == STORE_MSG && it->result == 0) || it->kind == STORE_PASS) {
        size_t rlen = strlen(it->room);
        if (it->kind == STORE_PASS) {
            post_all(cs, -1, it->room, rlen, it->text, it->len, it->jlen, it->t0,
                     (int)(it->tag >> 32));
        } else {
            /* Both forms into the writer's own buffer (one writer thread). */
            size_t jn, n = message_pair(cs->wline, it->user, strlen(it->user), it->room, it->text,
                                        it->len, it->ts, it->id, &jn);
            post_all(cs, -1, it->room, rlen, cs->wline, n, jn, it->t0, (int)(it->tag >> 32));
        }
        store_item_free(it);
        return;
    }
    if (it->kind == STORE_FILE_DONE || it->kind == STORE_FILE_DROP ||
        it->kind == STORE_FILE_EXPIRE) {
        if (it->kind == STORE_FILE_EXPIRE)
            expire_files(cs, it);
        store_item_free(it); /* nobody waits for these */
        return;
    }
    if (weft_post(cs->srv, (int)(it->tag >> 32), item_answer, it) != 0)
        store_item_free(it);
}

/* A room message: stored, then delivered by the writer (on_stored). */
static void store_text(chat_client *cl, const char *p, size_t n)
{
    store_item *it = item_for(cl, STORE_MSG, n);
    if (!it) {
        client_sendf(cl, "error: out of memory\n");
        return;
    }
    memcpy(it->room, cl->room->n.key, (size_t)cl->room->n.klen + 1);
    memcpy(it->text, p, n);
    if (store_push(cl->w->cs->store, it) != 0) {
        store_item_free(it);
        busy(cl, "message not sent");
        return;
    }
    count(cl->w, cl->w->cs->ctr_messages, 1);
    cl->unfenced = true;
}

/*
 * A command after room messages still at the writer would be answered
 * before their echo (the writer answers later): it waits behind a fence
 * that the writer answers in sequence, so a client's answers keep the
 * order of its lines ("hi" then "/who": the echo, then the list). True
 * when the fence is out (the command stays in the ring).
 */
static bool fence(chat_client *cl)
{
    store_item *it = item_for(cl, STORE_FENCE, 0);
    if (!it || store_push(cl->w->cs->store, it) != 0) {
        store_item_free(it);
        return false; /* full: the command runs now, out of order */
    }
    cl->waiting = true;
    return true;
}

/*
 * /join with a store: the writer reads the room's last lines, then passes
 * the "joined" line. The client joins the room when the history arrives
 * (its input waits meanwhile): every line the writer passed before the
 * read is in the history, every line after it reaches the client live,
 * since the writer's posts to one worker run in order. No gap, no repeat.
 */
static void store_join(chat_client *cl, const char *name, size_t n)
{
    chat_server *cs = cl->w->cs;
    store_item *h = item_for(cl, STORE_HISTORY, 0);
    char rname[CHAT_NAME_MAX + 1];
    memcpy(rname, name, n);
    rname[n] = '\0';
    size_t jn, k = notice_pair(cl->w->out, "join", cl->nick, rname, NULL, NULL, &jn);
    store_item *j = store_item_new(STORE_PASS, k + jn);
    if (j)
        j->t0 = weft_now_ns();
    if (!h || !j) {
        store_item_free(h);
        store_item_free(j);
        client_sendf(cl, "error: out of memory\n");
        return;
    }
    h->count = cs->opt.history;
    h->flags = ITEM_JOIN;
    memcpy(h->room, name, n);
    memcpy(j->room, name, n);
    memcpy(j->text, cl->w->out, k + jn);
    j->len = k;
    j->jlen = jn;
    if (store_push(cs->store, h) != 0) {
        store_item_free(h);
        store_item_free(j);
        busy(cl, "not joined");
        return;
    }
    memcpy(cl->joining, name, n);
    cl->joining[n] = '\0';
    cl->joining_len = (uint8_t)n;
    cl->waiting = true;
    if (store_push(cs->store, j) != 0) {
        /* Full after all: the room hears it now, out of the writer's order. */
        post_all(cs, -1, j->room, n, j->text, j->len, j->jlen, weft_now_ns(), cl->w->index);
        store_item_free(j);
    }
}

static bool need_room(chat_client *cl);

static void cmd_history(chat_client *cl, const chat_cmd *cmd)
{
    chat_server *cs = cl->w->cs;
    if (!cs->store) {
        client_sendf(cl, "error: no history: the server runs without a database\n");
        return;
    }
    if (!cmd->name_len && !need_room(cl))
        return;
    store_item *it = item_for(cl, STORE_HISTORY, 0);
    if (!it) {
        client_sendf(cl, "error: out of memory\n");
        return;
    }
    if (cmd->name_len)
        memcpy(it->room, cmd->name, cmd->name_len);
    else
        memcpy(it->room, cl->room->n.key, (size_t)cl->room->n.klen + 1);
    it->count = cmd->count ? cmd->count : cs->opt.history ? cs->opt.history : CHAT_HISTORY_DEFAULT;
    if (store_push(cs->store, it) != 0) {
        store_item_free(it);
        busy(cl, "no history");
        return;
    }
    cl->waiting = true;
}

/* After a login: the offline messages, taken from the store. */
static void fetch_inbox(chat_client *cl)
{
    store_item *it = item_for(cl, STORE_INBOX, 0);
    if (it && store_push(cl->w->cs->store, it) != 0)
        store_item_free(it); /* they stay stored: the next login gets them */
}

/* ---- files: /send into the spool, /get out of it ------------------------- */

/*
 * An upload in progress: the bytes after "/send" go from the input ring
 * straight into the spool file (a ring's worth at a time: never the whole
 * file in memory), under a deadline (--file-timeout) so a slow sender
 * cannot hold a slot and a quota for ever. The writes are plain write(2)s
 * into the page cache on the worker; the output side uses weft_send_file
 * (sendfile).
 */
typedef struct upload {
    int fd;
    uint64_t size, left;
    weft_timer *timer;
    bool to_room;
    char fid[CHAT_FILE_ID_LEN + 1];
    char name[CHAT_FILE_NAME_MAX + 1];
    char to[CHAT_NAME_MAX + 1];
} upload;

static void spool_path(const chat_server *cs, char *buf, size_t len, const char *fid, bool part)
{
    snprintf(buf, len, "%s/%s%s", cs->spool, fid, part ? ".part" : "");
}

/* Stop an upload: the partial file and its reservation go. */
static void upload_abort(chat_client *cl)
{
    upload *u = cl->up;
    char path[PATH_MAX];
    cl->up = NULL;
    if (u->timer)
        weft_timer_cancel(u->timer);
    if (u->fd >= 0)
        close(u->fd);
    spool_path(cl->w->cs, path, sizeof(path), u->fid, true);
    unlink(path);
    store_item *it = store_item_new(STORE_FILE_DROP, 0);
    if (it) {
        memcpy(it->fid, u->fid, sizeof(u->fid));
        if (store_push(cl->w->cs->store, it) != 0)
            store_item_free(it); /* the row is dropped at the next start */
    }
    free(u);
}

static void upload_timeout(weft_timer *t, void *arg)
{
    chat_client *cl = arg;
    (void)t;
    cl->up->timer = NULL; /* a one-shot timer is gone once it fired */
    count(cl->w, cl->w->cs->ctr_file_slow, 1);
    client_sendf(cl, "error: file upload too slow: not complete in %u s\n",
                 cl->w->cs->opt.file_timeout_s);
    upload_abort(cl);
    client_finish(cl, "file upload timeout");
}

/*
 * The announcement of a complete file, both forms, into o: "* NICK shares
 * NAME (SIZE bytes): /get ID" and {"type":"file","room","user","name",
 * "size","id","ts"}. Returns the text's length; *jn the JSON's.
 */
static size_t file_pair(char *o, const char *nick, const char *rname, const upload *u, size_t *jn)
{
    int n = sprintf(o, "* %s shares %s (%llu bytes): /get %s\n", nick, u->name,
                    (unsigned long long)u->size, u->fid);
    int j =
        sprintf(o + n,
                "{\"type\":\"file\",\"room\":\"%s\",\"user\":\"%s\",\"name\":\"%s\",\"size\":%llu,"
                "\"id\":\"%s\",\"ts\":%lld}\n",
                rname, nick, u->name, (unsigned long long)u->size, u->fid, (long long)wall_ms());
    *jn = (size_t)j;
    return (size_t)n;
}

/* Every byte is in: the file is complete, announced to its room or its recipient. */
static void upload_done(chat_client *cl)
{
    upload *u = cl->up;
    chat_server *cs = cl->w->cs;
    char part[PATH_MAX], path[PATH_MAX];
    spool_path(cs, part, sizeof(part), u->fid, true);
    spool_path(cs, path, sizeof(path), u->fid, false);
    store_item *it = store_item_new(STORE_FILE_DONE, 0);
    if (close(u->fd) != 0 || rename(part, path) != 0 || !it) {
        store_item_free(it);
        u->fd = -1;
        client_sendf(cl, "error: the file could not be stored: %s\n", strerror(errno));
        upload_abort(cl);
        return;
    }
    memcpy(it->fid, u->fid, sizeof(u->fid));
    if (store_push(cs->store, it) != 0) {
        store_item_free(it);
        unlink(path);
        u->fd = -1;
        busy(cl, "file not stored");
        upload_abort(cl);
        return;
    }
    cl->up = NULL;
    if (u->timer)
        weft_timer_cancel(u->timer);
    count(cl->w, cs->ctr_files, 1);
    client_sendf(cl, "* sent %s (%llu bytes): /get %s\n", u->name, (unsigned long long)u->size,
                 u->fid);
    if (u->to_room) {
        char line[2 * OUT_EXTRA + CHAT_FILE_NAME_MAX * 2];
        size_t jn, n = file_pair(line, cl->nick, u->to, u, &jn);
        bcast(cl->w, u->to, strlen(u->to), line, n, jn, true);
    } else {
        char text[CHAT_FILE_NAME_MAX + 128];
        chat_cmd pm = {.kind = CHAT_MSG, .name = u->to, .name_len = strlen(u->to), .text = text};
        pm.text_len = (size_t)snprintf(text, sizeof(text), "shares %s (%llu bytes): /get %s",
                                       u->name, (unsigned long long)u->size, u->fid);
        cmd_msg(cl, &pm);
    }
    free(u);
}

/*
 * Move the upload's bytes from the ring into its file. False when the ring
 * is empty (wait for more); true when it took some (the upload may be over).
 */
static bool upload_take(chat_client *cl, weft_ring *in)
{
    upload *u = cl->up;
    size_t n = weft_ring_len(in);
    if (n > u->left)
        n = (size_t)u->left;
    if (n == 0)
        return false;
    struct iovec iov[2];
    int k = weft_ring_peek(in, iov);
    if ((size_t)k >= 1 && iov[0].iov_len >= n) {
        iov[0].iov_len = n;
        k = 1;
    } else if (k == 2) {
        iov[1].iov_len = n - iov[0].iov_len;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = writev(u->fd, iov, k);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            client_sendf(cl, "error: the file could not be written: %s\n",
                         w < 0 ? strerror(errno) : "short write");
            weft_ring_consume(in, weft_ring_len(in));
            upload_abort(cl);
            client_finish(cl, "file write error");
            return true;
        }
        done += (size_t)w;
        /* A partial write: skip what went out. */
        size_t skip = (size_t)w;
        while (k > 0 && skip >= iov[0].iov_len) {
            skip -= iov[0].iov_len;
            iov[0] = iov[1];
            k--;
        }
        if (k > 0) {
            iov[0].iov_base = (char *)iov[0].iov_base + skip;
            iov[0].iov_len -= skip;
        }
    }
    weft_ring_consume(in, n);
    u->left -= n;
    if (u->left == 0)
        upload_done(cl);
    return true;
}

static void cmd_send(chat_client *cl, const chat_cmd *cmd)
{
    chat_server *cs = cl->w->cs;
    if (!cs->store) {
        client_sendf(cl, "error: no file sharing: the server runs without a database\n");
        return;
    }
    if (cmd->size > cs->opt.file_max) {
        count(cl->w, cs->ctr_file_refused, 1);
        client_sendf(cl, "error: file too large: at most %llu bytes (--file-max)\n",
                     (unsigned long long)cs->opt.file_max);
        client_finish(cl, "file refused"); /* its bytes may follow: nothing to parse them as */
        return;
    }
    store_item *it = item_for(cl, STORE_FILE_NEW, cmd->file_len);
    if (!it) {
        client_sendf(cl, "error: out of memory\n");
        return;
    }
    unsigned char rnd[CHAT_FILE_ID_LEN / 2];
    randombytes_buf(rnd, sizeof(rnd)); /* the ID is the key to /get: unguessable */
    for (size_t i = 0; i < sizeof(rnd); i++)
        sprintf(it->fid + 2 * i, "%02x", rnd[i]);
    snprintf(it->to, sizeof(it->to), "%s%.*s", cmd->to_room ? "#" : "", (int)cmd->name_len,
             cmd->name);
    memcpy(it->text, cmd->file, cmd->file_len);
    it->size = cmd->size;
    it->quota = cs->opt.file_quota;
    if (store_push(cs->store, it) != 0) {
        store_item_free(it);
        busy(cl, "file not accepted");
        return;
    }
    /* Until the reservation is answered nothing more is read: the file's
     * bytes wait in the kernel (TCP flow control), not in our ring. */
    weft_read_pause(cl->conn);
    cl->waiting = true;
}

/* The writer's answer to a /send: start taking the bytes, or refuse. */
static void send_answer(chat_client *cl, store_item *it)
{
    chat_server *cs = cl->w->cs;
    weft_read_resume(cl->conn);
    if (it->result == -EDQUOT) {
        count(cl->w, cs->ctr_file_refused, 1);
        client_sendf(cl, "error: over your file quota of %llu bytes (--file-quota)\n",
                     (unsigned long long)it->quota);
        client_finish(cl, "file refused"); /* its bytes follow: nothing to parse them as */
        return;
    }
    char path[PATH_MAX];
    spool_path(cs, path, sizeof(path), it->fid, true);
    upload *u = calloc(1, sizeof(*u));
    int fd = it->result == 0 && u ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    if (fd < 0) {
        free(u);
        client_sendf(cl, "error: the file cannot be stored now\n");
        client_finish(cl, "file refused");
        return;
    }
    u->fd = fd;
    u->size = u->left = it->size;
    u->to_room = it->to[0] == '#';
    memcpy(u->fid, it->fid, sizeof(u->fid));
    snprintf(u->name, sizeof(u->name), "%.*s", (int)it->len, it->text);
    snprintf(u->to, sizeof(u->to), "%s", it->to + (u->to_room ? 1 : 0));
    u->timer = weft_conn_timer(cl->conn, cs->opt.file_timeout_s * 1000, 0, upload_timeout, cl);
    cl->up = u;
    client_sendf(cl, "* ready: send %llu bytes of %s\n", (unsigned long long)u->size, u->name);
}

static void cmd_get(chat_client *cl, const chat_cmd *cmd)
{
    chat_server *cs = cl->w->cs;
    if (!cs->store) {
        client_sendf(cl, "error: no file sharing: the server runs without a database\n");
        return;
    }
    store_item *it = item_for(cl, STORE_FILE_GET, 0);
    if (!it) {
        client_sendf(cl, "error: out of memory\n");
        return;
    }
    memcpy(it->fid, cmd->file, CHAT_FILE_ID_LEN);
    if (store_push(cs->store, it) != 0) {
        store_item_free(it);
        busy(cl, "no file");
        return;
    }
    cl->waiting = true;
}

/*
 * The writer's answer to a /get: a header line, then the bytes by
 * sendfile. A room's file is anyone's who has its ID; a private one only
 * its sender's and its recipient's (others are told it does not exist).
 */
static void get_answer(chat_client *cl, store_item *it)
{
    bool room_file = it->to[0] == '#';
    bool mine = same_nick(it->user, strlen(it->user), cl->nick, cl->nick_len) ||
                same_nick(it->to, strlen(it->to), cl->nick, cl->nick_len);
    char path[PATH_MAX];
    spool_path(cl->w->cs, path, sizeof(path), it->fid, false);
    int fd = it->result == 0 && (room_file || mine) ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        client_sendf(cl, "error: no such file %s\n", it->fid);
        return;
    }
    if (cl->json) {
        int n = sprintf(cl->w->jbuf,
                        "{\"type\":\"file\",\"id\":\"%s\",\"name\":\"%s\",\"size\":%llu}\n",
                        it->fid, it->out, (unsigned long long)it->size);
        client_raw(cl, cl->w->jbuf, (size_t)n);
    } else {
        client_sendf(cl, "* file %s %s %llu\n", it->fid, it->out, (unsigned long long)it->size);
    }
    if (cl->closed || weft_send_file(cl->conn, fd, 0, it->size) < 0)
        return; /* weft owns fd from the call on */
}

/* On worker 0, every period: the writer forgets old files (on_stored unlinks them). */
static void expire_tick(weft_timer *t, void *arg)
{
    chat_server *cs = arg;
    (void)t;
    store_item *it = store_item_new(STORE_FILE_EXPIRE, 0);
    if (!it)
        return;
    it->ts = wall_ms() - (int64_t)cs->opt.file_ttl_s * 1000;
    if (store_push(cs->store, it) != 0)
        store_item_free(it); /* next time */
}

static void expire_start(weft_server *s, int worker, void *arg)
{
    chat_server *cs = arg;
    uint32_t every = cs->opt.file_ttl_s < 60 ? cs->opt.file_ttl_s : 60;
    weft_worker_timer(s, worker, every * 1000, every * 1000, expire_tick, cs);
}

/* On the writer thread: the expired files' bytes go. */
static void expire_files(chat_server *cs, store_item *it)
{
    char path[PATH_MAX];
    for (char *p = it->out, *nl; p && (nl = memchr(p, '\n', it->out_len - (size_t)(p - it->out)));
         p = nl + 1) {
        *nl = '\0';
        spool_path(cs, path, sizeof(path), p, false);
        unlink(path);
        spool_path(cs, path, sizeof(path), p, true);
        unlink(path);
    }
}

/* The spool directory, made if missing; uploads a crash cut short removed. */
static int spool_open(chat_server *cs)
{
    if (mkdir(cs->spool, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "weft-chat: cannot make the spool directory %s: %s\n", cs->spool,
                strerror(errno));
        return -EIO;
    }
    DIR *d = opendir(cs->spool);
    if (!d) {
        fprintf(stderr, "weft-chat: cannot open the spool directory %s: %s\n", cs->spool,
                strerror(errno));
        return -EIO;
    }
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && !strcmp(e->d_name + n - 5, ".part")) {
            snprintf(path, sizeof(path), "%s/%s", cs->spool, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    return 0;
}

/* ---- accounts: the password pool's answers ------------------------------- */

/* On the client's worker: a login's or a registration's outcome. */
static void auth_answer(weft_server *s, int worker, void *arg)
{
    auth_job *j = arg;
    chat_server *cs = server_of(s);
    chat_worker *w = cs->w[worker];
    chat_client *cl = asker(w, j->tag, j->tag2);
    if (!cl) {
        free(j);
        return;
    }
    switch (j->result) {
    case AUTH_OK: /* a login: the nick directory has the last word */
        cl->waiting = false;
        claim_nick(cl, j->name, strlen(j->name), NICK_LOGIN);
        if (cl->waiting) {
            free(j);
            unhold(cl); /* nick_reply answers */
            return;
        }
        break;
    case AUTH_BAD:
        count(w, cs->ctr_login_failed, 1);
        client_sendf(cl, "error: wrong name or password\n");
        break;
    case AUTH_THROTTLED:
        count(w, cs->ctr_login_throttled, 1);
        client_sendf(cl, "error: too many failed logins: try again in %u s\n", j->retry_s);
        break;
    case AUTH_EXISTS:
        client_sendf(cl, "error: the name %s is taken\n", j->name);
        break;
    case AUTH_ERROR:
        client_sendf(cl, "error: server error (database), try again\n");
        break;
    }
    free(j);
    answered(cl);
}

/*
 * On a pool thread: a new password's hash goes on to the writer (which
 * answers the client), every other outcome back to the client's worker.
 */
static void on_auth(auth_job *j, void *ud)
{
    chat_server *cs = ud;
    if (j->reg && j->result == AUTH_OK) {
        size_t n = strlen(j->hash);
        store_item *it = store_item_new(STORE_REGISTER, n);
        if (it) {
            it->tag = j->tag;
            it->tag2 = j->tag2;
            memcpy(it->user, j->name, sizeof(j->name));
            memcpy(it->to, j->name, sizeof(j->name));
            memcpy(it->text, j->hash, n);
            if (store_push(cs->store, it) == 0) {
                free(j);
                return;
            }
            store_item_free(it);
        }
        j->result = AUTH_ERROR;
    }
    if (weft_post(cs->srv, (int)(j->tag >> 32), auth_answer, j) != 0)
        free(j);
}

/* The peer's address as text, for the per-address login limit. */
static void peer_text(weft_conn *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    snprintf(buf, len, "?");
    if (!weft_conn_peer(c, &ss))
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, (socklen_t)len);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, (socklen_t)len);
}

/* /login and /register: the work goes to the pool; the client's input waits. */
static void cmd_auth(chat_client *cl, const chat_cmd *cmd, bool reg)
{
    chat_server *cs = cl->w->cs;
    if (!cs->store) {
        client_sendf(cl, "error: no accounts: the server runs without a database\n");
        return;
    }
    if (cl->authed) {
        client_sendf(cl, "error: already logged in as %s\n", cl->nick);
        return;
    }
    if (reg && cmd->text_len < CHAT_PASS_MIN) {
        client_sendf(cl, "error: a password has at least %d bytes\n", CHAT_PASS_MIN);
        return;
    }
    auth_job *j = calloc(1, sizeof(*j));
    if (!j) {
        client_sendf(cl, "error: out of memory\n");
        return;
    }
    j->reg = reg;
    j->tag = id_tag(cl->id);
    j->tag2 = cl->id.gen;
    memcpy(j->name, cmd->name, cmd->name_len);
    memcpy(j->pass, cmd->text, cmd->text_len);
    peer_text(cl->conn, j->source, sizeof(j->source));
    if (auth_push(cs->auth, j) != 0) {
        free(j);
        busy(cl, reg ? "not registered" : "not logged in");
        return;
    }
    cl->waiting = true;
}

/* ---- commands ------------------------------------------------------------- */

static const char help_text[] =
    "* commands: /register NAME PASSWORD | /login NAME PASSWORD | /nick NAME | /join ROOM |"
    " /leave | /who | /msg NAME TEXT | /history [ROOM] [N] | /send NAME|#ROOM FILE SIZE |"
    " /get ID | /quit\n"
    "* other lines go to everyone in your room, you included (\"//x\" sends \"/x\")\n";

static bool need_nick(chat_client *cl)
{
    if (cl->nick_len)
        return true;
    client_sendf(cl, "error: choose a nick first: /nick NAME\n");
    return false;
}

static bool need_room(chat_client *cl)
{
    if (cl->room)
        return true;
    client_sendf(cl, "error: you are in no room: /join ROOM\n");
    return false;
}

static void cmd_join(chat_client *cl, const char *name, size_t n)
{
    if (cl->room && cl->room->n.klen == n && memcmp(cl->room->n.key, name, n) == 0) {
        client_sendf(cl, "error: already in #%s\n", cl->room->n.key);
        return;
    }
    if (cl->room)
        leave_room(cl);
    if (cl->closed || cl->done)
        return;
    if (cl->w->cs->store) {
        store_join(cl, name, n);
        return;
    }
    if (room_link(cl, name, n) != 0) {
        client_sendf(cl, "error: out of memory\n");
        return;
    }
    room_notice(cl, "join", NULL, true);
}

static void cmd_text(chat_client *cl, const char *p, size_t n)
{
    chat_worker *w = cl->w;
    if (w->cs->store) {
        store_text(cl, p, n);
        return;
    }
    size_t jn,
        k = message_pair(w->out, cl->nick, cl->nick_len, cl->room->n.key, p, n, wall_ms(), 0, &jn);
    count(w, w->cs->ctr_messages, 1);
    bcast(w, cl->room->n.key, cl->room->n.klen, w->out, k, jn, true);
}

/* /help: the chat's commands, then the embedding program's. */
static void cmd_help(chat_client *cl)
{
    const chat_server *cs = cl->w->cs;
    client_send(cl, help_text, sizeof(help_text) - 1);
    for (int i = 0; i < cs->ncommands; i++)
        client_sendf(cl, "* /%s: %s\n", cs->command[i].name, cs->command[i].help);
}

/*
 * An unknown command word may be one of the embedding program's: run it
 * with the rest of the line. False when it is none of them.
 */
static bool run_command(chat_client *cl, const chat_cmd *cmd, const char *line, size_t len)
{
    const chat_server *cs = cl->w->cs;
    for (int i = 0; i < cs->ncommands; i++) {
        size_t n = strlen(cs->command[i].name);
        if (n != cmd->word_len || memcmp(cs->command[i].name, cmd->word, n) != 0)
            continue;
        const char *a = cmd->word + n, *end = line + len;
        if (end > a && end[-1] == '\r')
            end--;
        while (a < end && *a == ' ')
            a++;
        cs->command[i].fn(cl->conn, a, (size_t)(end - a), cs->command[i].ud);
        return true;
    }
    return false;
}

/* One complete line from the client (without '\n'). */
static void handle_cmd(chat_client *cl, const chat_cmd *c, const char *line, size_t len)
{
    chat_cmd cmd = *c;
    if (cl->json && cmd.kind == CHAT_BAD) {
        count(cl->w, cl->w->cs->ctr_json_bad, 1);
        client_sendf(cl, "error: %s\n", cmd.err);
        return;
    }
    switch (cmd.kind) {
    case CHAT_NONE:
        break;
    case CHAT_BAD:
        if (strncmp(cmd.err, "unknown", 7) == 0 && run_command(cl, &cmd, line, len))
            break;
        if (strncmp(cmd.err, "unknown", 7) == 0)
            client_sendf(cl, "error: unknown command /%.*s (try /help)\n",
                         (int)(cmd.word_len > CHAT_NAME_MAX ? CHAT_NAME_MAX : cmd.word_len),
                         cmd.word);
        else
            client_sendf(cl, "error: %s\n", cmd.err);
        break;
    case CHAT_HELP:
        cmd_help(cl);
        break;
    case CHAT_QUIT:
        client_sendf(cl, "* bye\n");
        client_finish(cl, "quit");
        break;
    case CHAT_NICK:
        cmd_nick(cl, cmd.name, cmd.name_len);
        break;
    case CHAT_JOIN:
        if (need_nick(cl))
            cmd_join(cl, cmd.name, cmd.name_len);
        break;
    case CHAT_LEAVE:
        if (need_room(cl))
            leave_room(cl);
        break;
    case CHAT_WHO:
        if (need_room(cl))
            cmd_who(cl);
        break;
    case CHAT_MSG:
        if (need_nick(cl))
            cmd_msg(cl, &cmd);
        break;
    case CHAT_TEXT:
        if (need_nick(cl) && need_room(cl))
            cmd_text(cl, cmd.text, cmd.text_len);
        break;
    case CHAT_REGISTER:
    case CHAT_LOGIN:
        cmd_auth(cl, &cmd, cmd.kind == CHAT_REGISTER);
        break;
    case CHAT_HISTORY:
        cmd_history(cl, &cmd);
        break;
    case CHAT_SEND:
        if (need_nick(cl))
            cmd_send(cl, &cmd);
        break;
    case CHAT_GET:
        if (need_nick(cl))
            cmd_get(cl, &cmd);
        break;
    }
}

/* ---- input: lines from the ring ------------------------------------------- */

static void too_long(chat_client *cl)
{
    count(cl->w, cl->w->cs->ctr_too_long, 1);
    client_sendf(cl, "error: line too long (at most %u bytes with the newline)\n",
                 cl->w->cs->max_line);
    client_finish(cl, "line too long");
}

/*
 * A command's answer is in (cl->busy was raised for it): the input that
 * waited in the ring is parsed now, on weft's next call of on_data.
 */
static void answered(chat_client *cl)
{
    cl->waiting = false;
    cl->busy--;
    if (cl->closed) {
        if (!cl->busy)
            client_free(cl);
        return;
    }
    if (!cl->done)
        weft_conn_resume(cl->conn);
}

/* Parse complete lines from the input ring; leave a partial one there. */
static void run_ring(chat_client *cl, weft_ring *in)
{
    chat_worker *w = cl->w;
    uint32_t max = w->cs->max_line;
    for (;;) {
        if (cl->up) {
            if (!upload_take(cl, in))
                return; /* the ring is empty: more of the file later */
            if (cl->closed)
                return;
            if (cl->done) {
                weft_ring_consume(in, weft_ring_len(in));
                return;
            }
            continue;
        }
        long nl = weft_ring_find(in, cl->scan, '\n');
        size_t len = nl >= 0 ? (size_t)nl : weft_ring_len(in);
        if (len + 1 > max) {
            /* Consumed, so weft's input cap does not discard the error. */
            weft_ring_consume(in, weft_ring_len(in));
            too_long(cl);
            return;
        }
        if (nl < 0) {
            cl->scan = len; /* a partial line: search only the new bytes next time */
            return;
        }
        weft_ring_copyout(in, 0, w->line, len);
        chat_cmd cmd;
        void *keep = NULL;
        if (cl->json)
            chat_json_parse(w->line, len, max, &cmd, &keep);
        else
            chat_parse(w->line, len, &cmd);
        if (cl->unfenced && cmd.kind != CHAT_TEXT && cmd.kind != CHAT_NONE && fence(cl)) {
            chat_json_free(keep);
            return; /* the command waits in the ring for the fence */
        }
        weft_ring_consume(in, len + 1);
        cl->scan = 0;
        handle_cmd(cl, &cmd, w->line, len);
        chat_json_free(keep);
        if (cl->closed)
            return; /* the ring went with the connection */
        if (cl->done) {
            weft_ring_consume(in, weft_ring_len(in));
            return;
        }
        if (cl->waiting)
            return; /* the rest waits in the ring for the answer */
    }
}

/* ---- WebSocket clients: one line per text message ------------------------- */

/* Refuse a client's frames with a close code (and count it). */
static void ws_fail(chat_client *cl, weft_ring *in, int code, const char *why)
{
    count(cl->w, cl->w->cs->ctr_ws_refused, 1);
    weft_ring_consume(in, weft_ring_len(in));
    cl->ws_code = code;
    client_finish(cl, why);
}

static const char *ws_why(int code)
{
    return code == WS_TOO_BIG ? "websocket 1009 message too big" : "websocket 1002 protocol error";
}

/* The protocol of a WebSocket client, by its first message's first byte. */
static void ws_mode(chat_client *cl, const char *msg, size_t len)
{
    if (cl->mode_known)
        return;
    cl->mode_known = true;
    cl->json = len && msg[0] == '{';
    if (cl->json) {
        int n = sprintf(cl->w->jbuf, "{\"type\":\"welcome\",\"worker\":%d,\"protocol\":\"json\"}\n",
                        cl->w->index);
        client_raw(cl, cl->w->jbuf, (size_t)n);
    }
}

/*
 * The next complete text message, unmasked: into w->line (a single frame,
 * still in the ring: *frame_len bytes to consume once it is used) or in
 * cl->frag (fragments, consumed already). Control frames on the way are
 * answered (ping) or obeyed (close). Returns the message, or NULL when
 * none is complete yet or the client was refused.
 */
static const char *ws_message(chat_client *cl, weft_ring *in, size_t *len, size_t *frame_len)
{
    uint32_t max = cl->w->cs->max_line;
    *frame_len = 0;
    if (cl->frag_ready) {
        *len = cl->frag_len;
        return cl->frag;
    }
    for (;;) {
        ws_frame f;
        int r = ws_parse(in, max, &f);
        if (r <= 0) {
            if (r < 0)
                ws_fail(cl, in, -r, ws_why(-r));
            return NULL;
        }
        uint8_t ctl[125];
        switch (f.opcode) {
        case WS_PING:
            ws_take(in, &f, ctl);
            ws_send(cl->conn, WS_PONG, ctl, (size_t)f.len);
            continue;
        case WS_PONG:
            ws_take(in, &f, ctl);
            continue;
        case WS_CLOSE:
            ws_take(in, &f, ctl);
            weft_ring_consume(in, weft_ring_len(in));
            cl->ws_code = WS_NORMAL; /* the echo of a close: its code, or 1000 */
            if (f.len >= 2)
                cl->ws_code = ctl[0] << 8 | ctl[1];
            client_finish(cl, "websocket close");
            return NULL;
        case WS_BINARY:
            ws_fail(cl, in, WS_UNSUPPORTED, "websocket 1003 binary frame");
            return NULL;
        case WS_TEXT:
            if (cl->frag) {
                ws_fail(cl, in, WS_PROTOCOL, "websocket 1002 protocol error");
                return NULL;
            }
            if (f.fin) {
                weft_ring_copyout(in, f.head, cl->w->line, (size_t)f.len);
                for (size_t i = 0; i < f.len; i++)
                    cl->w->line[i] ^= (char)f.mask[i & 3];
                *len = (size_t)f.len;
                *frame_len = f.head + (size_t)f.len;
                return cl->w->line;
            }
            if (!(cl->frag = malloc(max))) {
                ws_fail(cl, in, WS_TOO_BIG, "out of memory");
                return NULL;
            }
            ws_take(in, &f, cl->frag);
            cl->frag_len = (size_t)f.len;
            continue;
        case WS_CONT:
            if (!cl->frag) {
                ws_fail(cl, in, WS_PROTOCOL, "websocket 1002 protocol error");
                return NULL;
            }
            if (cl->frag_len + f.len > max) {
                ws_fail(cl, in, WS_TOO_BIG, "websocket 1009 message too big");
                return NULL;
            }
            ws_take(in, &f, cl->frag + cl->frag_len);
            cl->frag_len += (size_t)f.len;
            if (!f.fin)
                continue;
            cl->frag_ready = true;
            *len = cl->frag_len;
            return cl->frag;
        }
    }
}

/* A WebSocket client's input: each text message is one line of its protocol. */
static void ws_run(chat_client *cl, weft_ring *in)
{
    for (;;) {
        size_t len, frame_len;
        const char *msg = ws_message(cl, in, &len, &frame_len);
        if (!msg)
            return;
        if (!utf8_valid(msg, len)) {
            ws_fail(cl, in, WS_BAD_DATA, "websocket 1007 bad UTF-8");
            return;
        }
        ws_mode(cl, msg, len);
        chat_cmd cmd;
        void *keep = NULL;
        if (memchr(msg, '\n', len))
            cmd = (chat_cmd){.kind = CHAT_BAD, .err = "one line per WebSocket message"};
        else if (cl->json)
            chat_json_parse(msg, len, cl->w->cs->max_line, &cmd, &keep);
        else
            chat_parse(msg, len, &cmd);
        if (cl->unfenced && cmd.kind != CHAT_TEXT && cmd.kind != CHAT_NONE && fence(cl)) {
            chat_json_free(keep);
            if (msg == cl->frag)
                return; /* frag_ready: taken again after the fence */
            return;     /* the frame stays in the ring */
        }
        weft_ring_consume(in, frame_len);
        if (cmd.kind == CHAT_SEND || cmd.kind == CHAT_GET) {
            cmd = (chat_cmd){.kind = CHAT_BAD, .err = "no files over WebSocket (yet): use TCP"};
        } else if (cmd.kind == CHAT_BAD && !cl->json && !strncmp(cmd.err, "unknown", 7)) {
            cmd.word_len = cmd.word_len > CHAT_NAME_MAX ? CHAT_NAME_MAX : cmd.word_len;
        }
        handle_cmd(cl, &cmd, msg, len);
        chat_json_free(keep);
        if (msg == cl->frag && !cl->closed) {
            free(cl->frag);
            cl->frag = NULL;
            cl->frag_ready = false;
        }
        if (cl->closed)
            return;
        if (cl->done) {
            weft_ring_consume(in, weft_ring_len(in));
            return;
        }
        if (cl->waiting)
            return;
    }
}

/* ---- the weft handler ----------------------------------------------------- */

static void on_open(weft_conn *c)
{
    chat_server *cs = server_of(weft_conn_server(c));
    chat_worker *w = cs->w[weft_conn_worker(c)];
    chat_client *cl = calloc(1, sizeof(*cl));
    if (!cl || slot_alloc(w, cl) != 0) {
        free(cl);
        weft_abort(c);
        return;
    }
    cl->conn = c;
    cl->w = w;
    cl->ws = weft_conn_origin_userdata(c) == web_ws_origin();
    weft_conn_set_userdata(c, cl);
    client_sendf(cl, "* welcome to weft-chat (worker %d): /help lists the commands\n", w->index);
}

static void on_data(weft_conn *c, weft_ring *in)
{
    chat_client *cl = weft_conn_userdata(c);
    if (!cl || cl->done) {
        weft_ring_consume(in, weft_ring_len(in));
        return;
    }
    if (cl->waiting)
        return; /* /nick or /who in flight: its answer resumes us */
    cl->busy++;
    if (cl->ws) {
        ws_run(cl, in);
        cl->busy--;
        if (cl->closed && !cl->busy)
            client_free(cl);
        return;
    }
    if (!cl->mode_known && weft_ring_len(in)) {
        /* The protocol, once, by the first byte: '{' is JSON. */
        cl->mode_known = true;
        cl->json = weft_ring_byte(in, 0) == '{';
        if (cl->json) {
            int n =
                sprintf(cl->w->jbuf, "{\"type\":\"welcome\",\"worker\":%d,\"protocol\":\"json\"}\n",
                        cl->w->index);
            client_raw(cl, cl->w->jbuf, (size_t)n);
        }
    }
    run_ring(cl, in);
    cl->busy--;
    if (cl->closed && !cl->busy)
        client_free(cl);
}

static void on_close(weft_conn *c, weft_close_reason reason)
{
    chat_client *cl = weft_conn_userdata(c);
    if (!cl)
        return;
    weft_conn_set_userdata(c, NULL);
    chat_worker *w = cl->w;
    /*
     * Release the nick before the "left" line is posted: whoever has seen
     * "X left" and then claims X reaches the shard after the release
     * (both are enqueued there, the release first), so the claim succeeds.
     */
    if (cl->nick_len)
        post_release(w->cs, NULL, cl->id, cl->nick, cl->nick_len);
    if (cl->up) {
        cl->up->timer = NULL; /* weft cancelled c's timers before on_close */
        count(w, w->cs->ctr_file_slow, reason == WEFT_CLOSE_INPUT_STALL);
        upload_abort(cl);
    }
    if (cl->room || cl->joining_len) {
        /*
         * on_close may run inside a delivery loop that is writing w->out
         * to the members (weft_send closed this one at its output cap), so
         * the line is formatted on the stack, and posted to this worker
         * too rather than delivered here. A client whose /join waits for
         * the history leaves the room its "joined" line is on its way to.
         */
        char line[2 * OUT_EXTRA]; /* both forms of a notice: names and a reason */
        char rname[CHAT_NAME_MAX + 1];
        size_t rlen = cl->room ? cl->room->n.klen : cl->joining_len;
        memcpy(rname, cl->room ? cl->room->n.key : cl->joining, rlen);
        rname[rlen] = '\0';
        size_t jn, n = notice_pair(line, "leave", cl->nick, rname, NULL,
                                   cl->why ? cl->why : weft_close_reason_name(reason), &jn);
        room_unlink(cl);
        bcast(w, rname, rlen, line, n, jn, false);
    }
    cl->closed = true;
    cl->conn = NULL;
    slot_free(w, cl->id.slot);
    if (!cl->busy)
        client_free(cl);
}

/* ---- setup ----------------------------------------------------------------- */

static void worker_free(chat_worker *w)
{
    if (!w)
        return;
    smap_free_all(&w->rooms);
    smap_free_all(&w->nicks);
    smap_free_all(&w->rshard);
    /* Every connection closed before the workers exited: no live slot. */
    free(w->slots);
    free(w->line);
    free(w->out);
    free(w->jbuf);
    free(w);
}

static int open_store(chat_server *cs);

chat_server *chat_server_create(void)
{
    chat_server *cs = calloc(1, sizeof(chat_server));
    if (cs)
        chat_options_defaults(&cs->opt);
    return cs;
}

static const weft_handler chat_h = {.on_open = on_open, .on_data = on_data, .on_close = on_close};

const weft_handler *chat_handler(void) { return &chat_h; }

int chat_server_attach(chat_server *cs, weft_server *s, uint32_t max_line)
{
    cs->srv = s;
    cs->max_line = max_line;
    cs->nworkers = weft_server_workers(s);
    cs->w = calloc((size_t)cs->nworkers, sizeof(*cs->w));
    if (!cs->w)
        return -ENOMEM;
    for (int i = 0; i < cs->nworkers; i++) {
        /* One allocation per worker, cache-line aligned: no false sharing. */
        size_t sz = (sizeof(chat_worker) + 63) & ~(size_t)63;
        chat_worker *w = aligned_alloc(64, sz);
        if (!w)
            return -ENOMEM;
        memset(w, 0, sz);
        cs->w[i] = w;
        w->cs = cs;
        w->index = i;
        w->free_head = NO_SLOT;
        w->nicks.fold = true;
        w->line = malloc(cs->max_line);
        w->out = malloc(OUT_SIZE(cs->max_line));
        w->jbuf = malloc(JBUF_SIZE(cs->max_line));
        if (!w->line || !w->out || !w->jbuf)
            return -ENOMEM;
    }
    cs->ctr_messages = weft_server_add_counter(s, "chat_messages", "room messages sent");
    cs->ctr_deliveries =
        weft_server_add_counter(s, "chat_deliveries", "lines written to room members");
    cs->ctr_private = weft_server_add_counter(s, "chat_private", "private messages delivered");
    cs->ctr_nick_taken =
        weft_server_add_counter(s, "chat_nick_taken", "/nick refused: nick in use");
    cs->ctr_too_long = weft_server_add_counter(s, "chat_line_too_long",
                                               "connections closed for a line over --max-line");
    cs->ctr_logins = weft_server_add_counter(s, "chat_logins", "successful logins");
    cs->ctr_login_failed =
        weft_server_add_counter(s, "chat_login_failed", "logins refused: wrong name or password");
    cs->ctr_login_throttled =
        weft_server_add_counter(s, "chat_login_throttled",
                                "logins refused untried: too many failures (account or address)");
    cs->ctr_registered = weft_server_add_counter(s, "chat_registered", "accounts registered");
    cs->ctr_busy = weft_server_add_counter(
        s, "chat_busy", "requests refused: the database or password queue was full");
    cs->ctr_offline =
        weft_server_add_counter(s, "chat_offline", "private messages stored for a later login");
    cs->ctr_files = weft_server_add_counter(s, "chat_files", "files received into the spool");
    cs->ctr_file_refused = weft_server_add_counter(
        s, "chat_file_refused", "/send refused: over --file-max or the sender's --file-quota");
    cs->ctr_file_slow = weft_server_add_counter(
        s, "chat_file_slow", "uploads cut off: not complete within --file-timeout");
    cs->ctr_users_in = weft_server_add_counter(
        s, "chat_users_in", "nicks taken (a login or a guest's /nick): active users = in - out");
    cs->ctr_users_out = weft_server_add_counter(s, "chat_users_out", "nicks given up");
    cs->ctr_rooms_opened = weft_server_add_counter(
        s, "chat_rooms_opened", "rooms that got a first member: active rooms = opened - closed");
    cs->ctr_rooms_closed = weft_server_add_counter(s, "chat_rooms_closed", "rooms left empty");
    if (weft_server_add_command(s, "chat", "the chat's gauges: users, rooms, db_backlog",
                                chat_admin, cs) != 0)
        return -ENOMEM;
    cs->ctr_ws_refused = weft_server_add_counter(
        s, "chat_ws_refused", "WebSocket clients closed for a bad frame (1002, 1003, 1007, 1009)");
    cs->ctr_json_bad = weft_server_add_counter(
        s, "chat_json_bad", "JSON lines refused (bad JSON, too deep, a bad or unknown field)");
    return cs->opt.db ? open_store(cs) : 0;
}

/* weft posts from setup run once the workers start: the names go to their shards. */
static void reserve_one(const char *name, void *arg)
{
    size_t n = strlen(name);
    if (chat_valid_name(name, n))
        post_reserve(arg, name, n);
}

static int open_store(chat_server *cs)
{
    char why[512];
    store_opts so = {.path = cs->opt.db,
                     .sync_full = cs->opt.db_sync_full,
                     .queue = cs->opt.queue,
                     .done = on_stored,
                     .ud = cs};
    if (!(cs->wline = malloc(OUT_SIZE(cs->max_line))))
        return -ENOMEM;
    if (store_open(&cs->store, &so, why, sizeof(why)) != 0) {
        fprintf(stderr, "weft-chat: %s\n", why);
        return -EIO;
    }
    if (store_accounts(cs->store, reserve_one, cs) != 0) {
        fprintf(stderr, "weft-chat: cannot read the accounts of %s\n", cs->opt.db);
        return -EIO;
    }
    auth_opts ao = {.threads = cs->opt.auth_threads,
                    .queue = 1024,
                    .ops = cs->opt.kdf_ops,
                    .mem = cs->opt.kdf_mem,
                    .fail_limit = cs->opt.fail_limit,
                    .lockout_s = cs->opt.lockout_s,
                    .done = on_auth,
                    .ud = cs};
    if (cs->opt.spool)
        cs->spool = strdup(cs->opt.spool);
    else if ((cs->spool = malloc(strlen(cs->opt.db) + 7)))
        sprintf(cs->spool, "%s.files", cs->opt.db);
    if (!cs->spool)
        return -ENOMEM;
    if (spool_open(cs) != 0)
        return -EIO;
    /* Runs once the workers start: worker 0 asks the writer to expire files. */
    if (weft_post(cs->srv, 0, expire_start, cs) != 0)
        return -ENOMEM;
    int rc = auth_open(&cs->auth, cs->store, &ao);
    if (rc != 0) {
        fprintf(stderr, "weft-chat: cannot start the password pool: %s\n", weft_strerror(rc));
        return rc;
    }
    return 0;
}

void chat_options_defaults(chat_options *o)
{
    *o = (chat_options){
        .db = NULL,
        .history = CHAT_HISTORY_DEFAULT,
        .auth_threads = 2,
        .kdf_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE,
        .kdf_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE,
        .fail_limit = 5,
        .lockout_s = 60,
        .queue = 16384,
        .file_max = 16u << 20,
        .file_quota = 64u << 20,
        .file_ttl_s = 86400,
        .file_timeout_s = 60,
    };
}

void chat_server_set_options(chat_server *cs, const chat_options *o) { cs->opt = *o; }

void chat_server_detach(chat_server *cs)
{
    /* The pool first: its answers may still go through the writer. */
    auth_close(cs->auth);
    cs->auth = NULL;
    store_close(cs->store);
    cs->store = NULL;
}

int chat_server_command(chat_server *cs, const char *name, const char *help, chat_command_fn fn,
                        void *ud)
{
    static const char *const taken[] = {"nick", "join",     "leave", "who",     "msg",  "quit",
                                        "help", "register", "login", "history", "send", "get"};
    size_t n = name ? strlen(name) : 0;
    if (!fn || !help || n == 0 || n > CHAT_NAME_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) &&
            name[i] != '_' && name[i] != '-')
            return -EINVAL;
    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
        if (!strcmp(name, taken[i]))
            return -EINVAL;
    if (cs->ncommands == CHAT_MAX_COMMANDS)
        return -ENOSPC;
    cs->command[cs->ncommands].name = name;
    cs->command[cs->ncommands].help = help;
    cs->command[cs->ncommands].fn = fn;
    cs->command[cs->ncommands].ud = ud;
    cs->ncommands++;
    return 0;
}

void chat_server_rooms(chat_server *cs, int worker, chat_member_fn fn, void *arg)
{
    const smap *m = &cs->w[worker]->rooms;
    for (uint32_t i = 0; i < m->nb; i++)
        for (const smap_node *e = m->b[i]; e; e = e->next)
            for (const chat_client *cl = ((const room *)e)->head; cl; cl = cl->rnext)
                fn(e->key, cl->nick, arg);
}

void chat_config_defaults(weft_config *cfg, uint32_t max_line)
{
    cfg->output_cap = CHAT_OUTPUT_CAP;
    cfg->output_high_wm = CHAT_OUTPUT_CAP / 2;
    cfg->output_low_wm = CHAT_OUTPUT_CAP / 8;
    cfg->input_cap = max_line + CHAT_HELD_EXTRA;
}

void chat_config_fit(weft_config *cfg)
{
    if (cfg->output_high_wm > cfg->output_cap)
        cfg->output_high_wm = cfg->output_cap / 2;
    if (cfg->output_low_wm >= cfg->output_high_wm)
        cfg->output_low_wm = cfg->output_high_wm / 4;
}

void chat_server_free(chat_server *cs)
{
    if (!cs)
        return;
    chat_server_detach(cs);
    for (int i = 0; cs->w && i < cs->nworkers; i++)
        worker_free(cs->w[i]);
    free(cs->w);
    free(cs->wline);
    free(cs->spool);
    free(cs);
}

/* The program's teardown, then the chat's threads: before weft frees the server. */
static void chat_teardown(weft_server *s, void *ud)
{
    chat_server *cs = ud;
    if (cs->teardown)
        cs->teardown(s, ud);
    chat_server_detach(cs);
}

int chat_main(int argc, char **argv, weft_program *p)
{
    chat_server *cs = chat_server_create();
    if (!cs)
        return 1;
    p->ud = cs;
    cs->teardown = p->teardown;
    p->teardown = chat_teardown;
    int rc = weft_main(argc, argv, p);
    chat_server_free(cs);
    return rc;
}
