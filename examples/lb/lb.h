/*
 * lb.h — weft-lb's shared state: the settings, the backend table, each
 * worker's private side of it, and the calls between the files.
 *
 *   weft-lb.c    options, --config, the program skeleton (weft_main)
 *   backend.c    the backend table: parsing, picking (roundrobin,
 *                leastconn, random2, backups), passive marks, per-backend
 *                counters
 *   health.c     active health checks (on worker 0)
 *   http_proxy.c http mode: one request at a time per client, its backend
 *                connection from the worker's pool or new, retries, the
 *                maxconn queue
 *   tcp_proxy.c  tcp mode: a balanced weft_link
 *   admin.c      the admin-socket commands (backends, drain, weight, ...)
 *   http_msg.c   the HTTP parsers (no weft)
 *
 * Threads. The backend table is shared: its settings (state, weight) and
 * its health are single ints written with relaxed atomic stores by the
 * admin commands (stats thread) and the checker (worker 0), read with
 * relaxed loads by the workers; no lock anywhere. What changes per request
 * (the round-robin position, active connections, the pool, the queue, the
 * counters) is per worker (lb_worker), so the data path shares nothing:
 * weights and maxconn are honoured per worker (maxconn is split between
 * the workers).
 */
#ifndef WEFT_EXAMPLES_LB_H
#define WEFT_EXAMPLES_LB_H

#include <stdint.h>

#include "weft/weft.h"

#define LB_MAX_BACKENDS 64
#define LB_ADDR_MAX     128
#define LB_NAME_MAX     64
/* Response-time histogram: bucket i counts times below 2^i ms (the last, the rest). */
#define LB_HIST_BUCKETS 16

enum { LB_MODE_HTTP, LB_MODE_TCP };
enum { LB_BAL_RR, LB_BAL_LEASTCONN, LB_BAL_RANDOM2 };

/* A backend's administrative state (the admin commands set it). */
enum {
    LB_BE_FREE = 0, /* slot unused */
    LB_BE_ENABLED,  /* takes traffic when up */
    LB_BE_DRAINING, /* no new requests; those in flight finish */
    LB_BE_DISABLED, /* no new requests, no health checks */
    LB_BE_REMOVED,  /* gone; the slot is not reused */
};

/* Settings, fixed after the options are parsed. */
typedef struct lb_settings {
    int mode, balance;
    int retries;               /* other backends tried after a failure */
    uint32_t connect_timeout;  /* ms */
    uint32_t response_timeout; /* ms from the request sent to the response head */
    uint32_t header_timeout;   /* ms from a request head's first byte to its end */
    uint32_t queue_timeout;    /* ms in a backend's queue before 503 */
    uint32_t pool_size;        /* idle connections per backend per worker */
    uint32_t pool_idle;        /* ms an idle pooled connection is kept */
    uint32_t max_head;         /* bytes of a request or response head */
    int max_headers;
    const char *health_path;  /* NULL: no active checks */
    uint32_t health_interval; /* ms */
    uint32_t health_timeout;  /* ms */
    int rise, fall;
    int observe_5xx; /* consecutive 5xx that mark a backend down; 0 off */
    int reuseport;
    int nworkers;
    uint32_t tick_ms; /* how often deadlines are checked: a quarter of the shortest timeout */
} lb_settings;

extern lb_settings lb_cfg;

/* A backend. The strings and maxconn are set before it is published. */
typedef struct lb_backend {
    char addr[LB_ADDR_MAX]; /* what weft_connect takes */
    char name[LB_NAME_MAX];
    int backup;
    int tls;       /* speak TLS to it (",tls") */
    int insecure;  /* TLS without verifying it (verify=none: tests only) */
    char sni[256]; /* TLS: the name sent and verified; "": its host */
    char ca[256];  /* TLS: PEM CAs to verify it with; "": the system's */
    int maxconn;   /* requests in flight at once (all workers); 0: no cap */
    int maxqueue;  /* requests waiting for a slot, per worker */
    int state;     /* LB_BE_*: atomic */
    int weight;    /* 0..256: atomic */
    int up;        /* health: atomic, 1 up */
    int passive;   /* set (atomic) when a worker marked it down: the checker restarts its count */
    /* the checker's own (worker 0 only) */
    int ok_run, fail_run;
    uint64_t checks, check_failures, transitions; /* single writer: worker 0 */
    weft_conn *check;
} lb_backend;

extern lb_backend lb_backends[LB_MAX_BACKENDS];
extern int lb_nbackends; /* slots used (atomic; only grows) */

/* One backend's counters on one worker (single writer: that worker). */
typedef struct lb_be_stats {
    uint64_t requests;     /* sent to it (tcp mode: connections) */
    uint64_t responses[5]; /* by class: 1xx..5xx */
    uint64_t failures;     /* connect failed, reset, timed out */
    uint64_t retries;      /* requests sent elsewhere after failing here */
    uint64_t reused;       /* requests sent on a pooled connection */
    uint64_t queued, queue_timeouts;
    uint64_t hist[LB_HIST_BUCKETS];
} lb_be_stats;

struct lb_client;

typedef struct lb_worker {
    int index;
    uint64_t rng;
    int64_t swrr[LB_MAX_BACKENDS]; /* smooth weighted round robin: current weights */
    int active[LB_MAX_BACKENDS];   /* requests in flight (atomic store: read by admin) */
    int idle[LB_MAX_BACKENDS];     /* pooled idle connections */
    int consec_5xx[LB_MAX_BACKENDS];
    struct lb_bconn *pool[LB_MAX_BACKENDS]; /* idle connections, a LIFO list */
    struct lb_client *qhead[LB_MAX_BACKENDS], *qtail[LB_MAX_BACKENDS];
    int qlen[LB_MAX_BACKENDS];
    lb_be_stats st[LB_MAX_BACKENDS];
    char *scratch; /* a head being parsed or built: 2 * max_head + room */
} lb_worker;

extern lb_worker *lb_workers;

/* Handler counters (weft-stat, /metrics). */
enum {
    LB_K_REQUESTS,
    LB_K_RETRIES,
    LB_K_REUSED,
    LB_K_400,
    LB_K_408,
    LB_K_431,
    LB_K_501,
    LB_K_502,
    LB_K_503,
    LB_K_504,
    LB_K_QUEUED,
    LB_K_COUNT
};
extern int lb_counter[LB_K_COUNT];

/* --- backend.c --- */

/* Parse a backend spec (as lb_backend_add) into *b without adding it. */
int lb_backend_parse(const char *spec, lb_backend *b, const char **why);

/* The connect options for backend b: timeout, TCP_NODELAY, its TLS. */
weft_connect_opts lb_backend_connect_opts(const lb_backend *b, uint32_t timeout_ms);
/*
 * Parse "HOST:PORT[,weight=N][,backup][,maxconn=N][,maxqueue=N][,name=S]"
 * into a new slot and publish it. 0 or -EINVAL (*why), -ENOSPC.
 */
int lb_backend_add(const char *spec, const char **why);
/* The backend named name (its name or address), or -1. */
int lb_backend_find(const char *name);
/* Whether backend i may take a new request now (enabled, up, weight > 0). */
int lb_backend_usable(int i);
/*
 * Pick a backend for a new request on worker w, skipping those in the
 * `tried` mask: a usable primary by the balance algorithm, else a usable
 * backup; -1 when none is.
 */
int lb_pick(lb_worker *w, uint64_t tried);
/* Worker w's share of backend i's maxconn (0: no cap). */
int lb_maxconn_share(const lb_worker *w, int i);
/* A worker saw backend i fail (connect refused or timed out, reset before
 * an answer, or observe_5xx 5xx in a row): mark it down if checks run. */
void lb_backend_failed(int i);
/* Count a response-time sample of backend i on w. */
void lb_record_time(lb_worker *w, int i, uint64_t ns);
/* Load and store the shared ints (relaxed atomics). */
int lb_load(const int *p);
void lb_store(int *p, int v);
void lb_add_stat(uint64_t *p, uint64_t n);

/* --- health.c --- */

/* Start the checks (on worker 0's thread, from a weft_post). */
void lb_health_start(weft_server *s, int worker, void *arg);

/* --- http_proxy.c / tcp_proxy.c --- */

const weft_handler *lb_http_handler(void);
const weft_handler *lb_tcp_handler(void);
/* Per-worker start and stop (the pool's connections close with the worker). */
void lb_worker_start(weft_server *s, int worker, void *arg);
void lb_worker_stop(weft_server *s, int worker, void *arg);

/* --- admin.c --- */

/* Held by whoever changes the backend table (admin commands, reload). */
#include <pthread.h>
extern pthread_mutex_t lb_table_lock;

/* Register the admin commands and the counters. 0 or -errno. */
int lb_admin_setup(weft_server *s);

/* --- weft-lb.c --- */

/* Re-read --config's backends (SIGHUP): 0, or -errno with *why set. */
int lb_reload(const char **why);
/* Parse a duration: digits with ms (the default), s or m. 0 or -EINVAL. */
int lb_parse_ms(const char *s, uint32_t lo, uint32_t hi, uint32_t *out);

#endif /* WEFT_EXAMPLES_LB_H */
