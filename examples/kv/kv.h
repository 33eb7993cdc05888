/*
 * examples/kv/kv.h — weft-kv's server state and command interface.
 *
 * weft-kv.c owns the server (options, handler callbacks, the expiry sweep);
 * commands.c runs one parsed command and writes its RESP2 reply.
 */
#ifndef WEFT_KV_KV_H
#define WEFT_KV_KV_H

#include <stddef.h>
#include <stdint.h>

#include "keyspace.h"
#include "resp.h"
#include "weft/weft.h"

#define KV_VERSION "0.1.0"
/* What HELLO and INFO report as the Redis version the commands follow. */
#define KV_REDIS_VERSION "7.0.0"

/*
 * Handler-defined counters (weft_server_add_counter ids). The CLOSED_* ones
 * count the connections weft-kv itself closes, by why: a malformed request,
 * a request over one of the parser's limits (README.md, "Limits"), or an
 * allocation that failed. Closes weft makes (input cap, input stall, ...)
 * are weft's own closed_* counters.
 */
enum {
    KV_CTR_COMMANDS,
    KV_CTR_HITS,
    KV_CTR_MISSES,
    KV_CTR_EXPIRED,
    KV_CTR_CLOSED_PROTOCOL,
    KV_CTR_CLOSED_LIMIT,
    KV_CTR_CLOSED_NOMEM,
    KV_NCTR
};

/* The server: one per process, shared read-only by the workers. */
typedef struct kv_app {
    kvs *ks;
    weft_server *srv;
    int ctr[KV_NCTR]; /* counter ids, -1 when not registered */
    uint64_t start_ns;
    uint32_t input_cap;
    uint32_t sweep_ms;   /* expiry sweep period per worker */
    uint32_t sweep_keys; /* keys looked at per sweep per worker */
    struct kv_worker *workers;
} kv_app;

/* Per worker: its connections and the expiry sweep's place. Touched by that worker only. */
typedef struct kv_worker {
    kv_app *app;
    int index;
    uint64_t next_id;            /* connection ids handed out by this worker */
    struct kv_conn *head, *tail; /* its connections, oldest first */
    size_t nconns;
    kvs_cursor cursor;
} kv_worker;

/* The longest client name (CLIENT SETNAME, HELLO ... SETNAME), in bytes. */
#define KV_NAME_MAX 128

/* Per connection (weft_conn_userdata). */
typedef struct kv_conn {
    kv_app *app;
    kv_worker *w; /* its worker's state */
    weft_conn *c;
    struct kv_conn *prev, *next; /* in its worker's list */
    resp_parser p;
    uint64_t id;
    int64_t since_ms, last_ms; /* opened; last command (kvs_now_ms) */
    const char *last_cmd;      /* the last command's name (static), or NULL */
    int waiting;               /* a CLIENT LIST in flight: later commands wait in the ring */
    int busy;   /* on_data (or a CLIENT LIST answer) is on the stack: on_close must not free us */
    int closed; /* on_close ran while busy: on_data frees us on its way out */
    size_t name_len;
    char name[KV_NAME_MAX];
} kv_conn;

/* One command's execution context. */
typedef struct kv_ctx {
    kv_app *app;
    weft_conn *c;
    kv_conn *k;
    int64_t now; /* kvs_now_ms(), read once per batch of commands */
    int quit;    /* QUIT: close after the reply */
} kv_ctx;

/*
 * Free a connection's state (unlinked from its worker's list), on its
 * worker's thread, once on_close ran and nothing on the stack uses it.
 */
void kv_conn_free(kv_conn *k);

/* ---- clients.c: the connection list and CLIENT LIST / INFO ---------------- */

/* Link k into (unlink it from) its worker's list. Owner thread. */
void kv_clients_link(kv_worker *w, kv_conn *k);
void kv_clients_unlink(kv_worker *w, kv_conn *k);

/* Queue CLIENT INFO's answer: x's own connection, as a CLIENT LIST line. */
void kv_client_info(kv_ctx *x);

/*
 * CLIENT LIST: ask every worker for its connections' lines (each worker
 * formats its own, invariant 1) and answer when the last part is in. Until
 * then x->k->waiting is set and the connection's later commands wait in the
 * input ring. On ENOMEM, an error reply at once instead.
 */
void kv_client_list(kv_ctx *x);

/* Run argv[0..argc) (argc >= 1) and queue the reply on x->c. */
void kv_execute(kv_ctx *x, size_t argc, const resp_arg *argv);

/* Add n to handler counter `which` (a KV_CTR_* id) on c's worker. Owner thread. */
void kv_count(weft_conn *c, const kv_app *app, int which, uint64_t n);

/* Queue "-<msg>\r\n"; CR and LF in msg become spaces. */
void kv_reply_error(kv_ctx *x, const char *msg);

#endif /* WEFT_KV_KV_H */
