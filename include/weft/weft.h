/*
 * weft — a framework for high-concurrency TCP servers on Linux.
 *
 * An embedding program fills in a weft_handler (a few callbacks) and a
 * weft_config, and gets a multi-threaded, edge-triggered epoll server with
 * bounded memory, backpressure and an orderly shutdown:
 *
 *     static void on_data(weft_conn *c, weft_ring *in) {
 *         weft_send_from(c, in, weft_ring_len(in));      // echo
 *     }
 *     weft_handler h = { .on_data = on_data };
 *     weft_config cfg = weft_config_default();
 *     weft_server *s;
 *     int rc = weft_server_new(&cfg, &h, NULL, &s);
 *     if (rc == 0) rc = weft_server_run(s);              // until stopped
 *     weft_server_free(s);
 *
 * Conventions
 *   - Functions that can fail return 0 (or a non-negative value where
 *     documented) on success and a negative errno on failure; weft_strerror()
 *     turns any of them into text. The library never calls exit() and never
 *     changes process-wide signal dispositions.
 *   - Threads. A connection belongs to one worker thread for its whole life.
 *     The weft_conn_* / weft_send* / weft_close* functions may be called only
 *     on that worker's thread, which is where every handler callback runs.
 *     Other threads reach a worker with weft_post().
 *   - Linking libweft links jemalloc, which (as Debian builds it) replaces
 *     malloc for the whole process. Sanitizer builds of weft do not link it.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* WEFT_VERSION ("0.1.0") and its parts, generated from CMake's project(VERSION). */
#include "weft/version.h"

/* The version of the library the program runs with (WEFT_VERSION is the
 * one it was compiled against). */
const char *weft_version(void);

typedef struct weft_server weft_server;
typedef struct weft_conn weft_conn;

/*
 * A byte ring. The handler sees a connection's input ring in on_data; the
 * bytes are in at most two contiguous segments (the second one when the data
 * wraps around the end of the storage). The layout is public so that the
 * accessors below inline; treat the fields as read-only.
 */
typedef struct weft_ring {
    char *buf;     /* storage, NULL while the ring holds no memory */
    uint32_t cap;  /* capacity, a power of two (0 without storage) */
    uint32_t head; /* read position, free-running (mod 2^32) */
    uint32_t tail; /* write position, free-running (mod 2^32) */
    uint32_t _pad;
} weft_ring;

/* Why a connection closed; passed to on_close and counted per reason. */
typedef enum weft_close_reason {
    WEFT_CLOSE_PEER = 0,        /* the peer closed (EOF), after our output drained */
    WEFT_CLOSE_ERROR,           /* socket error, including a reset by the peer */
    WEFT_CLOSE_TIMEOUT,         /* idle: no input and no output for idle_timeout_ms */
    WEFT_CLOSE_INPUT_CAP,       /* pending input reached config.input_cap */
    WEFT_CLOSE_OUTPUT_CAP,      /* pending output would exceed config.output_cap */
    WEFT_CLOSE_SHUTDOWN,        /* the server is stopping */
    WEFT_CLOSE_HANDLER,         /* the handler called weft_close/weft_abort */
    WEFT_CLOSE_INPUT_STALL,     /* a partial message waited input_stall_ms for a byte */
    WEFT_CLOSE_OUTPUT_STALL,    /* pending output, and the peer took no byte for
                                   output_stall_ms */
    WEFT_CLOSE_CONNECT_REFUSED, /* outbound: the peer refused (ECONNREFUSED) */
    WEFT_CLOSE_CONNECT_TIMEOUT, /* outbound: not connected within the timeout */
    WEFT_CLOSE_UNREACHABLE,     /* outbound: no route to the peer's network or host */
    WEFT_CLOSE_RESOLVE,         /* outbound: the host name did not resolve */
    WEFT_CLOSE_LINK,            /* the connection it was linked to (weft_link) closed */
    WEFT_CLOSE_TLS_HANDSHAKE,   /* TLS: the handshake failed or did not end in time */
    WEFT_CLOSE_TLS_PROTOCOL,    /* TLS: a record or alert error after the handshake */
    WEFT_CLOSE_TLS_VERIFY,      /* TLS (outbound): the peer's certificate did not verify */
    WEFT_CLOSE_REASONS          /* number of reasons */
} weft_close_reason;

/* A short lower-case name for a close reason ("peer", "input_cap", ...). */
const char *weft_close_reason_name(weft_close_reason r);

/*
 * What an open connection is doing, as its worker counts it once per
 * stats_interval_ms (weft_stats.conns_by_state; weft_connections{state} in
 * Prometheus). The first that applies, in this order: lingering, draining,
 * connecting, handshake, writing, reading, idle.
 */
typedef enum weft_conn_state {
    WEFT_CONN_IDLE = 0,   /* nothing pending either way */
    WEFT_CONN_READING,    /* input arrived that on_data has not consumed (a partial
                             message), or more waits unread in the socket */
    WEFT_CONN_WRITING,    /* output the peer has not taken yet */
    WEFT_CONN_HANDSHAKE,  /* TLS: the handshake runs (on_open waits for its end) */
    WEFT_CONN_CONNECTING, /* outbound: resolving or connecting */
    WEFT_CONN_DRAINING,   /* closing once its output is flushed (shutdown, handler) */
    WEFT_CONN_LINGERING,  /* closed for the handler; reading to the peer's FIN */
    WEFT_CONN_STATES      /* number of states */
} weft_conn_state;

/* "idle", "reading", "writing", "handshake", "connecting", "draining", "lingering". */
const char *weft_conn_state_name(weft_conn_state s);

/*
 * The callbacks. Every callback runs on the worker thread that owns the
 * connection; none may block. All are optional except on_data.
 */
typedef struct weft_handler {
    /* A connection was accepted and registered. Set user data here. */
    void (*on_open)(weft_conn *c);
    /*
     * Bytes are waiting in `in`. Consume what forms complete messages
     * (weft_ring_consume, weft_send_from) and leave a partial message in
     * place: it stays in the ring, and on_data is called again when more
     * arrives. Called at most once per read, with a bounded amount of new
     * data (config.read_budget per turn). The ring never holds more than
     * config.input_cap bytes: when a partial message fills it, the
     * connection closes with WEFT_CLOSE_INPUT_CAP.
     * A handler may also stop consuming when weft_send reports 1 (output
     * over the high watermark): once output drains below the low watermark,
     * on_data is called again with the ring as it was left.
     * Calls that can close the connection (weft_send on -ENOBUFS/-ENOMEM,
     * weft_close with no output pending, weft_abort) run on_close before
     * they return: after one, touch neither the state that on_close frees
     * nor `in`.
     */
    void (*on_data)(weft_conn *c, weft_ring *in);
    /* Output fell below the low watermark after weft_send reported 1. */
    void (*on_drain)(weft_conn *c);
    /*
     * The connection is closing; called exactly once (for an outbound
     * connection also when it never connected, and on_open never ran).
     * The fd is closed and the weft_conn freed when it returns: drop every
     * reference to it.
     */
    void (*on_close)(weft_conn *c, weft_close_reason reason);
} weft_handler;

/* A log sink; level is one of the WEFT_LOG_* values. */
enum { WEFT_LOG_ERROR = 0, WEFT_LOG_WARN = 1, WEFT_LOG_INFO = 2, WEFT_LOG_DEBUG = 3 };
typedef void (*weft_log_fn)(void *log_ud, int level, const char *msg);

#define WEFT_MAX_CPUS 1024
/* config.pin: where each worker runs (see docs/tuning.md, "Placement"). */
enum { WEFT_PIN_NODE = 0, WEFT_PIN_CPU = 1, WEFT_PIN_NONE = 2 };
#define WEFT_MAX_LISTENERS 16

/*
 * Server configuration. Start from weft_config_default(), which documents
 * each default below, and change what you need.
 */
typedef struct weft_config {
    const char *bind_addr;                  /* IPv4 or IPv6 literal; "127.0.0.1". "::" binds
                                               both families where the system allows it.
                                               NULL: no listener from bind/port (then
                                               listen[] or weft_server_listen must add
                                               one); else bind/port is listener 0 */
    uint16_t port;                          /* 7000; 0 picks a free port (weft_server_port) */
    int backlog;                            /* listen(2) backlog; 4096 (the kernel caps it at
                                               net.core.somaxconn) */
    int workers;                            /* worker threads; 0 = one per CPU in the
                                               process's affinity mask */
    int pin;                                /* where workers run: WEFT_PIN_NODE (the
                                               default: each on the CPUs and memory
                                               of its NUMA node, the scheduler free
                                               within it), WEFT_PIN_CPU (each on one
                                               CPU: for cores the server owns) or
                                               WEFT_PIN_NONE */
    int ncpus;                              /* length of cpus[]; 0 = use the affinity mask */
    int cpus[WEFT_MAX_CPUS];                /* explicit CPU list; worker i gets cpus[i % ncpus]
                                               (that CPU, or the CPUs of the list on
                                               its node, by config.pin) */
    int max_conns;                          /* connections open at once; 0 = derived from
                                               RLIMIT_NOFILE at start (soft limit minus a
                                               reserve for the server's own fds) */
    int max_conns_per_worker;               /* connections one worker holds at once; a new
                                               one goes to the next worker with room, or
                                               is closed when none has; 0 = no cap */
    uint32_t ring_size;                     /* initial ring capacity in bytes, a power of two;
                                               16384. Rings double up to the caps below */
    uint32_t read_budget;                   /* bytes read from one connection per turn before
                                               others get a turn; 65536 */
    uint32_t output_high_wm;                /* pending output above this pauses reading, and
                                               the kernel holds at most this much unsent
                                               (TCP_NOTSENT_LOWAT); 262144 */
    uint32_t output_low_wm;                 /* reading resumes (and on_drain runs) below; 65536 */
    uint32_t input_cap;                     /* pending input the handler may leave unconsumed
                                               before the connection closes; 1048576 */
    uint32_t output_cap;                    /* pending output beyond which a send closes the
                                               connection; 4194304 */
    uint32_t pool_max_bytes;                /* ring memory one worker may hold; at the cap it
                                               stops reading the connections that hold
                                               ring memory (they resume as output drains
                                               and memory returns) instead of failing;
                                               one that holds none (a healthy one) still
                                               reads, up to twice the cap; 536870912.
                                               0 = no cap */
    uint32_t sndbuf;                        /* SO_SNDBUF for each connection; 0 = the kernel's
                                               autotuning (which can let several MiB of a
                                               slow reader's output sit in the kernel,
                                               beyond output_cap's reach) */
    uint32_t pool_cache_bytes;              /* ring memory each worker keeps for reuse
                                               instead of freeing; 4194304 */
    uint32_t shutdown_timeout_ms;           /* how long a stop waits for pending output
                                               before closing anyway; 5000 */
    uint32_t idle_timeout_ms;               /* close a connection with no input and no
                                               output for this long; 120000. 0 = never */
    uint32_t input_stall_ms;                /* close when a partial message the handler left
                                               in the ring is still incomplete this long
                                               after it began, however many bytes trickle
                                               in meanwhile (the slowloris defence); 30000.
                                               0 = never */
    uint32_t output_stall_ms;               /* close when output is pending and the peer
                                               took no byte for this long (the slow-reader
                                               defence); 60000. 0 = never */
    uint32_t close_linger_ms;               /* after a graceful close (weft_close, stop),
                                               how long to read and discard what the peer
                                               still sends before close(2), so unread
                                               input cannot turn the close into a reset
                                               that destroys output in flight; 2000.
                                               0 = close at once */
    uint32_t stats_interval_ms;             /* how often the stats thread samples the
                                               counters into a snapshot; 1000. 0 turns the
                                               stats thread, the admin socket and the
                                               latency timing off */
    const char *admin_socket;               /* Unix socket for the admin commands; NULL =
                                               "/tmp/weft-PORT.sock" (the bound port);
                                               "" = none. Created with mode 0600 */
    uint16_t metrics_port;                  /* HTTP GET /metrics (Prometheus); 0 = off */
    int nlisten;                            /* entries of listen[] */
    const char *listen[WEFT_MAX_LISTENERS]; /* more listeners, each a spec for
                                     weft_listener_parse ("ADDR[,option...]");
                                     they run the server's handler */
    const char *io;                         /* the workers' I/O backend: "epoll", "poll" (the
                                               portable fallback: O(connections) per wait)
                                               or "uring" (io_uring; epoll, with a log line,
                                               where the kernel refuses it).
                                               NULL = the WEFT_IO environment variable if
                                               set, else "epoll" */
    const char *metrics_bind;               /* address of the metrics listener; "127.0.0.1" */
    const char *tls_cert;                   /* listener 0 speaks TLS with this PEM certificate
                                               (chain allowed) and tls_key; NULL = plain */
    const char *tls_key;                    /* its private key (PEM) */
    const char *tls_alpn;                   /* protocols listener 0 offers by ALPN,
                                               comma-separated ("http/1.1"); NULL = none */
    uint32_t tls_handshake_ms;              /* close a TLS connection whose handshake has not
                                               ended this long after accept or connect
                                               (the TLS slowloris defence); 10000 */
    weft_log_fn log;                        /* NULL = lines on stderr: time, "weft[PID]", level */
    void *log_ud;                           /* passed to log */
    int log_level;                          /* most verbose level logged; WEFT_LOG_INFO */
} weft_config;

/* A configuration with every default filled in. */
weft_config weft_config_default(void);

/*
 * Command-line helpers shared by the tools and examples. weft_parse_number
 * reads a non-negative integer with an optional K, M or G suffix (powers of
 * 1024) into *out if it lies in [lo, hi]; weft_parse_cpus reads a CPU list
 * such as "0-3,8" into cfg->cpus/ncpus. Both return 0 or -EINVAL.
 */
int weft_parse_number(const char *s, long long lo, long long hi, long long *out);
int weft_parse_cpus(const char *s, weft_config *cfg);

/*
 * The server options every weft program takes, one per weft_config field,
 * by long-option name: bind, port, backlog, workers, cpus, no-pin,
 * max-conns, max-conns-per-worker, ring-size, read-budget, output-high-wm,
 * output-low-wm, input-cap, output-cap, pool-max, pool-cache, sndbuf,
 * shutdown-timeout, idle-timeout, input-stall, output-stall, close-linger,
 * stats-interval, stats-socket, metrics-port, metrics-bind, io.
 *
 * weft_config_options returns the table (n entries; has_arg 0 or 1, as
 * getopt_long's; arg names the value for --help, NULL for a flag; help is
 * one or more lines, separated by '\n') for a program to build its option
 * list and help from (weft_main does both).
 * weft_config_option sets the field `name` names from `arg` (NULL for an
 * option without argument; a string argument is kept, not copied): 0;
 * -ENOENT when name is none of them; -EINVAL when arg is not a valid value,
 * with *why (when why is not NULL) pointing at a static phrase such as
 * "expected a number from 0 to 65535". Any thread; no allocation.
 */
typedef struct weft_option {
    const char *name;
    int has_arg;
    const char *arg;
    const char *help;
} weft_option;

const weft_option *weft_config_options(size_t *n);
int weft_config_option(weft_config *cfg, const char *name, const char *arg, const char **why);

/*
 * Check a configuration without creating anything. Returns 0 or -EINVAL and,
 * when why is not NULL, points it at a static sentence naming the bad field.
 */
int weft_config_validate(const weft_config *cfg, const char **why);

/*
 * Create a server: validates cfg (copied), resolves the workers and CPUs,
 * binds and listens (so a port conflict fails here, with -EADDRINUSE). No
 * thread is started yet. `ud` is returned by weft_server_userdata. On
 * success stores the server in *out and returns 0.
 */
int weft_server_new(const weft_config *cfg, const weft_handler *h, void *ud, weft_server **out);

/*
 * A listener: an address and its own handler, user data and limits. Every
 * field but addr is optional (0 / NULL / false: the default named).
 */
typedef struct weft_listener_opts {
    const char *addr;            /* "host:port" (IPv4 or IPv6 literal in [ ], or "*"
                                    for every IPv4 address), or "unix:/path";
                                    read up to the first ',' */
    const char *name;            /* in the stats (at most 63 bytes, up to a ','); NULL: addr */
    const weft_handler *handler; /* NULL: the server's */
    void *ud;                    /* weft_conn_origin_userdata; NULL: the server's */
    int backlog;                 /* listen(2) backlog; 0: config.backlog */
    bool reuseport;              /* SO_REUSEPORT: processes may share the port */
    bool nagle;                  /* keep Nagle's algorithm: no TCP_NODELAY (which is
                                    set on every accepted TCP connection otherwise:
                                    each turn writes a connection once anyway) */
    uint32_t keepalive_s;        /* TCP keepalive after this idle time; 0: off */
    uint32_t mode;               /* Unix socket file mode; 0: 0660 */
    int max_conns;               /* open at once through this listener; 0: no cap */
    uint32_t rate;               /* accepts per second (a token bucket); 0: no limit */
    uint32_t burst;              /* the bucket's size; 0: rate (at least 1) */
    uint32_t per_source;         /* open at once from one source address; 0: no
                                    limit (counted in 65,536 hashed buckets: two
                                    sources sharing one share its budget) */
    /* TLS: ntls certificate/key pairs (PEM, chains allowed): the first is
     * the default, the others are chosen by SNI (the names they carry);
     * alpn: the protocols offered, comma-separated, e.g. "h2,http/1.1". */
    int ntls;
    const char *tls_cert[4], *tls_key[4];
    const char *alpn;
} weft_listener_opts;

/*
 * Parse a listener spec, "ADDR[,option...]", into *o (other fields 0):
 * options name, backlog=N, reuseport, nagle (nodelay, the default, is
 * accepted too), keepalive=S, mode=OCTAL,
 * max-conns=N, rate=N, burst=N, per-source=N, tls-cert=FILE and
 * tls-key=FILE (up to 4 pairs, in that order: SNI), alpn=P1:P2, e.g.
 * "127.0.0.1:8080,rate=100,burst=50,per-source=10,name=api". The strings
 * point into spec (keep it until weft_server_listen): addr and name are
 * read up to the next ','. 0, or -EINVAL with *why set to a static phrase.
 */
int weft_listener_parse(const char *spec, weft_listener_opts *o, const char **why);

/*
 * Add a listener to a server that has not started (opts copied; it binds
 * now, so "address in use" fails here). Returns its index (>= 0; the
 * config's bind/port is 0 when present) or a negative errno: -EINVAL (bad
 * options), -ENOSPC (WEFT_MAX_LISTENERS), -EBUSY (started), bind errors.
 */
int weft_server_listen(weft_server *s, const weft_listener_opts *opts);

/*
 * Change listener i's accept rate and burst (0: no limit), from any thread
 * at any time; the acceptor applies it to the next connection. 0 or -EINVAL.
 */
int weft_server_listener_limit(weft_server *s, int i, uint32_t rate, uint32_t burst);

/* The number of listeners, and listener i's bound port (0 for Unix). */
int weft_server_listeners(const weft_server *s);
uint16_t weft_server_listener_port(const weft_server *s, int i);
/* Listener i's address as text ("127.0.0.1:8080", "unix:/run/x.sock") and name. */
const char *weft_server_listener_addr(const weft_server *s, int i);
const char *weft_server_listener_name(const weft_server *s, int i);
/* Whether listener i speaks TLS. */
bool weft_server_listener_tls(const weft_server *s, int i);

/*
 * Start the worker threads (each pins itself and creates its allocator
 * arena) and the acceptor, and return once all are running. Call once, from
 * the thread that created the server.
 */
int weft_server_start(weft_server *s);

/*
 * Block until the server has stopped: weft_server_stop was called, every
 * connection was flushed (up to the shutdown timeout) and closed, and every
 * thread joined. Returns 0, or the first error a thread hit.
 */
int weft_server_wait(weft_server *s);

/* weft_server_start then weft_server_wait. */
int weft_server_run(weft_server *s);

/*
 * Ask the server to stop. Safe from any thread and from a signal handler
 * (it stores a flag and writes an eventfd, nothing else); idempotent.
 */
void weft_server_stop(weft_server *s);

/*
 * Load every TLS listener's certificate and key files again and serve new
 * connections with them; connections already open keep theirs, nothing is
 * dropped. Any thread but a signal handler; the files are read on the
 * calling thread. Returns 0, or -EINVAL when a listener's new files do not
 * load (logged with the reason): that listener keeps its running ones.
 */
int weft_server_reload_tls(weft_server *s);

/* The same, from a signal handler (weft_main's SIGHUP): the acceptor
 * thread reads the files and logs the outcome. */
void weft_server_reload_tls_async(weft_server *s);

/* Free a server that was never started or has finished weft_server_wait. */
void weft_server_free(weft_server *s);

/* The bound port of the first TCP listener (useful with config.port = 0). */
uint16_t weft_server_port(const weft_server *s);
/* The number of workers. */
int weft_server_workers(const weft_server *s);
/* The I/O backend the workers use ("epoll", "poll", "uring"): the one that runs,
 * after a fallback. */
const char *weft_server_io(const weft_server *s);
/* The user data given to weft_server_new. */
void *weft_server_userdata(const weft_server *s);
/* The effective max_conns (after deriving it from RLIMIT_NOFILE). */
int weft_server_max_conns(const weft_server *s);

/*
 * Where worker i runs: its CPU (-1 unless pinned to one CPU) and NUMA node
 * (-1 when unknown or not bound). Valid after weft_server_start. Returns 0
 * or -EINVAL.
 */
int weft_server_worker_cpu(const weft_server *s, int i, int *cpu, int *node);

/*
 * A consistent-enough sum of the per-worker counters, for tests, tools and
 * embedding programs. Safe from any thread at any time; each counter is read
 * with a relaxed load from its single writer.
 */
typedef struct weft_stats {
    uint64_t accepted;            /* connections accepted by the acceptor */
    uint64_t rejected_max;        /* closed at once: over max_conns */
    uint64_t rejected_worker_cap; /* closed at once: every worker at its cap */
    uint64_t accept_emfile;       /* EMFILE/ENFILE episodes at the acceptor */
    uint64_t accept_shed;         /* connections dropped during those episodes */
    uint64_t accept_errors;       /* other accept errors */
    uint64_t opened;              /* connections opened on workers */
    uint64_t closed;              /* connections closed on workers */
    uint64_t closed_by[WEFT_CLOSE_REASONS];
    uint64_t open; /* accepted + outbound - closed (including in handoff) */
    uint64_t bytes_in, bytes_out;
    uint64_t reads, writes;         /* read/write system calls */
    uint64_t eagain;                /* reads or writes that returned EAGAIN */
    uint64_t wakeups;               /* epoll_wait returns */
    uint64_t events;                /* events returned by epoll_wait */
    uint64_t deferrals;             /* read budget used up: continued next turn */
    uint64_t bp_pauses, bp_resumes; /* backpressure on/off */
    uint64_t pool_pauses;           /* reads paused: the worker's ring memory at its cap */
    uint64_t rings_borrowed, rings_returned, rings_in_use;
    uint64_t ring_allocs;    /* rings allocated (pool misses, growth) */
    uint64_t pool_bytes;     /* ring memory held by the pools (cached + used) */
    uint64_t handoffs;       /* inbox messages consumed */
    uint64_t outbound;       /* outbound connections opened (weft_connect) */
    uint64_t connects;       /* ... of which connected */
    uint64_t tls_handshakes; /* TLS handshakes completed (both directions) */
    uint64_t tls_resumed;    /* ... of which resumed a session (ticket or cache) */
    /* The stats thread's endpoints (server-wide; 0 in a worker's row). */
    uint64_t admin_rejected;   /* admin clients closed at accept: slots busy or no fd */
    uint64_t admin_timeouts;   /* admin clients closed by the stall or idle limit */
    uint64_t admin_emfile;     /* accept on the admin socket hit EMFILE/ENFILE */
    uint64_t metrics_rejected; /* metrics clients answered 503 at accept: slots busy or no fd */
    uint64_t metrics_timeouts; /* metrics clients closed: head not in time, or stalled */
    uint64_t metrics_emfile;   /* accept on the metrics listener hit EMFILE/ENFILE */
    /* Gauges: open connections by state, as each worker last counted them
     * (once per stats_interval_ms; all 0 while stats are off). */
    uint64_t conns_by_state[WEFT_CONN_STATES];
} weft_stats;

/* Fill *st with the sums of every worker's, the acceptor's and the stats thread's counters. */
void weft_server_stats(const weft_server *s, weft_stats *st);

/* --- statistics ------------------------------------------------------------ */

/*
 * The upper bounds (ns) of the latency buckets that le[] counts, as
 * Prometheus histograms have them: 1 µs, 2.5 µs, 5 µs, 10 µs ... 10 s.
 */
#define WEFT_LATENCY_BUCKETS 22
const uint64_t *weft_latency_bounds_ns(void);

/* Latency percentiles in nanoseconds from a log-linear histogram (~1%). */
typedef struct weft_latency {
    uint64_t count;
    uint64_t p50, p90, p99, p999, max;
    double mean;
    /* Cumulative: le[i] values at most weft_latency_bounds_ns()[i] (a value
     * in a log-linear bucket that straddles a bound counts above it, so
     * within the histogram's ~1%). */
    uint64_t le[WEFT_LATENCY_BUCKETS];
} weft_latency;

/* Per-second rates over the last sampling interval. */
typedef struct weft_rates {
    double accepted, closed, bytes_in, bytes_out, reads, writes, wakeups, events;
} weft_rates;

/* One worker in a snapshot. */
typedef struct weft_worker_snapshot {
    int cpu, node; /* -1 when not pinned / unknown */
    weft_stats st; /* this worker's counters (acceptor fields are 0) */
    weft_rates rate;
    weft_latency turn;        /* epoll wake-up to the end of that turn's flush */
    weft_latency handler;     /* what the handler recorded (weft_record_latency) */
    const uint64_t *counters; /* this worker's handler-defined counters */
} weft_worker_snapshot;

/* One listener in a snapshot. */
typedef struct weft_listener_snapshot {
    const char *name, *addr;
    uint64_t accepted;        /* connections accepted and handed to a worker */
    uint64_t open;            /* of those, open now */
    uint64_t rejected_max;    /* closed at accept: the listener's max_conns */
    uint64_t rejected_rate;   /* closed at accept: over its rate */
    uint64_t rejected_source; /* closed at accept: over per_source for its address */
    double accept_rate;       /* accepted per second over the last interval */
    uint32_t rate_limit;      /* its accept rate limit now (0: none) */
    uint32_t burst;           /* ... and burst (0: the rate) */
    bool tls;                 /* it speaks TLS */
} weft_listener_snapshot;

/*
 * An immutable sample of every counter, published by the stats thread every
 * stats_interval_ms. Latencies are cumulative since start.
 */
typedef struct weft_snapshot {
    uint64_t seq;      /* 1 for the first sample, then +1 each */
    double uptime_s;   /* since weft_server_start */
    double interval_s; /* the span the rates cover */
    const char *io;    /* the workers' I/O backend ("epoll", "poll") */
    const char *ktls;  /* kernel TLS: whether the kernel has it and whether it
                          is used (a sentence); NULL when no listener
                          speaks TLS */
    weft_stats total;
    weft_rates rate;
    weft_latency turn, handler;
    int nworkers;
    const weft_worker_snapshot *workers;
    int nlisteners;
    const weft_listener_snapshot *listeners;
    int ncounters; /* handler-defined counters */
    const char *const *counter_names;
    const char *const *counter_help;
    const uint64_t *counters; /* totals over the workers */
} weft_snapshot;

/*
 * A private copy of the latest snapshot, or NULL with *err (if err is not
 * NULL) set to -EAGAIN (no sample taken yet), -ENOTSUP (stats are off) or
 * -ENOMEM. Safe from any thread except a signal handler; never blocks the
 * workers or other readers. Free it with weft_snapshot_free.
 */
weft_snapshot *weft_server_snapshot(weft_server *s, int *err);
void weft_snapshot_free(weft_snapshot *snap);

/* Output formats of weft_snapshot_format and the admin socket. */
typedef enum weft_format {
    WEFT_FORMAT_TEXT,       /* "name value" lines */
    WEFT_FORMAT_JSON,       /* one JSON object */
    WEFT_FORMAT_WORKERS,    /* a table: a row per worker */
    WEFT_FORMAT_PROMETHEUS, /* Prometheus text exposition format 0.0.4 */
} weft_format;

/* Render snap as a newly allocated NUL-terminated string (free() it); NULL on ENOMEM. */
char *weft_snapshot_format(const weft_snapshot *snap, weft_format fmt);

#define WEFT_MAX_COUNTERS 32

/*
 * Register a handler-defined counter before weft_server_start: name (letters,
 * digits and '_', at most 48 bytes; exported as weft_user_NAME) and a help
 * sentence (both copied). Returns its id (>= 0), -EINVAL (bad or duplicate
 * name), -ENOSPC (more than WEFT_MAX_COUNTERS) or -EBUSY (already started).
 */
int weft_server_add_counter(weft_server *s, const char *name, const char *help);

/*
 * Add n to counter id on c's worker: a plain single-writer store, as cheap
 * as the built-in counters. On the owning worker's thread only.
 */
void weft_counter_add(weft_conn *c, int id, uint64_t n);
/* The same from a weft_post function running on worker `worker`. */
void weft_worker_counter_add(weft_server *s, int worker, int id, uint64_t n);

/* Record a handler latency (ns) in c's worker's histogram (owner thread). */
void weft_record_latency(weft_conn *c, uint64_t ns);
/* CLOCK_MONOTONIC in nanoseconds, for measuring what to record. */
uint64_t weft_now_ns(void);

/*
 * A command of the program's own on the admin socket (weft-stat's socket):
 * "NAME ARGS..." calls fn(s, args, ud) on the stats thread, args being the
 * rest of the line with blanks trimmed ("" when none), and answers what fn
 * returns: a malloc'd string (freed by weft), one or more lines ending in
 * '\n'; NULL answers "error: out of memory". fn must not block: it may read
 * state published for other threads, post to workers (weft_post) and
 * answer that it did. Before weft_server_start; name is a word of at most
 * 31 letters, digits, '-' or '_', not one of the built-in commands (stats,
 * workers, metrics, help, quit). 0, -EINVAL, -ENOSPC (WEFT_MAX_COMMANDS),
 * -EBUSY (started) or -ENOMEM.
 */
#define WEFT_MAX_COMMANDS 32
typedef char *(*weft_command_fn)(weft_server *s, const char *args, void *ud);
int weft_server_add_command(weft_server *s, const char *name, const char *help, weft_command_fn fn,
                            void *ud);

/* The admin socket's path (valid after weft_server_start), or NULL if none. */
const char *weft_server_admin_path(const weft_server *s);
/* The bound metrics port (after weft_server_start), or 0 when off. */
uint16_t weft_server_metrics_port(const weft_server *s);

/*
 * Run fn(s, worker, arg) on worker `worker`'s thread, soon. Safe from any
 * thread (not from a signal handler: it allocates a small message). The
 * function runs between event-loop turns; if the server stops first it still
 * runs, before the worker exits. Calls posted by one thread to one worker
 * run in the order they were posted (the inbox is a FIFO queue). Returns 0, -EINVAL (bad worker),
 * -ENOMEM or -ESHUTDOWN (the worker has exited).
 */
typedef void (*weft_post_fn)(weft_server *s, int worker, void *arg);
int weft_post(weft_server *s, int worker, weft_post_fn fn, void *arg);

/*
 * Run fn(s, worker, arg) once on every worker's thread. Returns the number
 * of workers it was posted to, or a negative errno if none.
 */
int weft_broadcast(weft_server *s, weft_post_fn fn, void *arg);

/*
 * A connection's id: a number any thread may keep and use with
 * weft_send_to. It names this connection only: once it closes, the id is
 * stale even if its slot is reused (a 24-bit generation makes a false match
 * need 16M reuses of one slot in between). On the owning worker's thread.
 */
uint64_t weft_conn_id(const weft_conn *c);

/*
 * Send len bytes (copied) to the connection with this id, from any thread:
 * the bytes are posted to its worker, which sends them if the connection is
 * still open. Returns 0 once posted (delivery is not confirmed: the
 * connection may close first), -EINVAL for an id of no worker, -ENOMEM, or
 * -ESHUTDOWN. Bytes sent to one id from one thread arrive in order.
 */
int weft_send_to(weft_server *s, uint64_t id, const void *data, size_t len);

/*
 * Run start(s, worker, arg) on each worker's thread before it serves any
 * connection, and stop(s, worker, arg) on it after its last connection
 * closed, as it exits: for per-worker state (a cache, a registration with
 * a library that wants its threads known). Either may be NULL. Before
 * weft_server_start only: 0 or -EBUSY.
 */
int weft_server_worker_hooks(weft_server *s, weft_post_fn start, weft_post_fn stop, void *arg);

/* --- outbound connections and flow control -------------------------------- */

typedef struct weft_connect_opts {
    uint32_t timeout_ms; /* give up connecting after this; 0 = 10000 */
    bool nodelay;        /* TCP_NODELAY on the new socket */
    bool tls;            /* speak TLS over it (on_open after the handshake) */
    const char *sni;     /* TLS: the name sent and verified in the peer's
                            certificate; NULL: the host of addr if a name */
    const char *ca_file; /* TLS: PEM CAs to verify with; NULL: the system's */
    bool insecure;       /* TLS: do not verify the peer (tests only) */
    const char *alpn;    /* TLS: protocols to offer, comma-separated; NULL: none */
} weft_connect_opts;

/*
 * Open a connection from worker `worker` to addr: "host:port", "[v6]:port"
 * or "unix:/path". Call it on that worker's thread (from any of its
 * callbacks: on_data, on_open, a timer, a weft_post function); the
 * connection belongs to that worker, so it and the connection that asked
 * for it share an owner. It has the same rings, watermarks, caps, timeouts
 * and counters as an accepted one, and runs handler h with user data ud
 * (weft_conn_origin_userdata). Output sent before it connects waits in its
 * ring. on_open runs once connected; if it never connects, on_close runs
 * with WEFT_CLOSE_CONNECT_REFUSED, _CONNECT_TIMEOUT, _UNREACHABLE,
 * _RESOLVE or _ERROR (and on_open never ran). A host name is resolved off
 * the worker threads (getaddrinfo; the first address is used). Returns 0
 * with *out set, or a negative errno and nothing created: -EINVAL (a bad
 * address, h without on_data, a bad worker), -EPERM (not on that worker's
 * thread), -ESHUTDOWN (stopping), -ENOMEM, -EMFILE, or a connect that
 * failed at once (-ECONNREFUSED, -ENOENT for a Unix path).
 */
int weft_connect(weft_server *s, int worker, const char *addr, const weft_connect_opts *opts,
                 const weft_handler *h, void *ud, weft_conn **out);

/*
 * Stop reading c (its peer's data waits in the kernel, which then applies
 * TCP flow control) until weft_read_resume; what c's ring holds is
 * delivered again on resume. Owning worker's thread.
 */
void weft_read_pause(weft_conn *c);
void weft_read_resume(weft_conn *c);

/*
 * Link a and b (two open connections of one worker): from now on what
 * either reads is sent to the other (on_data is no longer called for
 * them), with backpressure on each side (a's reading pauses while b's
 * output is over the high watermark, and the other way), half-close passed
 * on (a's FIN becomes b's FIN once b's output is flushed) and close passed
 * on (when one closes, the other closes after flushing, with
 * WEFT_CLOSE_LINK). Bytes already in a ring are forwarded at once. A
 * connecting outbound connection may be linked: what it is sent waits for
 * the connect. Returns 0 or -EINVAL (not two distinct open connections of
 * the calling worker, or one already linked) or -ENOMEM.
 */
int weft_link(weft_conn *a, weft_conn *b);

/* The connection c is linked to, or NULL. */
weft_conn *weft_conn_linked(const weft_conn *c);

/* --- timers: on the owning worker's thread -------------------------------- */

/*
 * Handler timers fire on a worker's thread, between event-loop turns, no
 * earlier than asked and about 10 ms late at most (plus the time until the
 * worker's next turn). A one-shot timer's handle is valid until it fires or
 * is cancelled; a repeating one's until cancelled (also from inside its own
 * callback). Timers cost one small allocation each when created.
 */
typedef struct weft_timer weft_timer;
typedef void (*weft_timer_fn)(weft_timer *t, void *arg);

/*
 * A timer of connection c: first after after_ms, then every every_ms (0 =
 * one-shot). Cancelled, without firing, when c closes (before on_close).
 * NULL on ENOMEM or when c is closing.
 */
weft_timer *weft_conn_timer(weft_conn *c, uint32_t after_ms, uint32_t every_ms, weft_timer_fn fn,
                            void *arg);

/*
 * A timer of worker `worker`, created on that worker's thread (a callback
 * or a weft_post function). Cancelled, without firing, when the worker
 * exits. NULL on ENOMEM or a bad worker.
 */
weft_timer *weft_worker_timer(weft_server *s, int worker, uint32_t after_ms, uint32_t every_ms,
                              weft_timer_fn fn, void *arg);

/* Cancel and free t (owning worker's thread). */
void weft_timer_cancel(weft_timer *t);

/* The connection of a connection timer; NULL for a worker timer. */
weft_conn *weft_timer_conn(const weft_timer *t);

/* --- connections: call only on the owning worker's thread --------------- */

/*
 * Queue len bytes for output (copied into the output ring; flushed once at
 * the end of the worker's turn). Returns 0, or 1 when pending output is now
 * above the high watermark (reading pauses; on_drain follows), or -EPIPE if
 * the connection is closing, or -ENOBUFS when the output cap would be
 * exceeded (the connection is then closed with WEFT_CLOSE_OUTPUT_CAP).
 */
int weft_send(weft_conn *c, const void *data, size_t len);

/*
 * Move len bytes from the front of ring `from` (usually on_data's input) to
 * c's output and consume them from `from`. When the output is empty and the
 * whole ring moves, the storage changes hands instead of being copied.
 * Returns as weft_send.
 */
int weft_send_from(weft_conn *c, weft_ring *from, size_t len);

/*
 * Queue len bytes of the open file fd, from offset off, after the output
 * queued so far and before what is queued next; they go to the peer with
 * sendfile(2) (the I/O backend's zero-copy path), never through the rings.
 * weft owns fd from this call on, whatever it returns: it is closed once
 * sent, or when the connection closes. The bytes count as pending output
 * for the watermarks (a handler that pipelines file answers is paused as
 * with weft_send) and the output stall, not for output_cap (they are not
 * memory). A file that turns out shorter than len closes the connection
 * (WEFT_CLOSE_ERROR). Returns as weft_send (0, 1 over the high watermark,
 * -EPIPE closing, -ENOMEM).
 */
int weft_send_file(weft_conn *c, int fd, off_t off, uint64_t len);

/*
 * Call on_data again, soon (this turn or the next, on c's worker), with the
 * input ring as it is, even if no new byte arrives: for a handler that left
 * complete messages in the ring while it waited for something else (an
 * answer posted from another worker, say). No-op on a closing connection.
 */
void weft_conn_resume(weft_conn *c);

/* Close after pending output is flushed (reason WEFT_CLOSE_HANDLER). */
void weft_close(weft_conn *c);
/* Close now with a TCP reset, discarding pending output. */
void weft_abort(weft_conn *c);

/*
 * Hand c to another handler h with user data ud (for a server that learns
 * the protocol from the first bytes): h's on_open runs at once, then its
 * on_data with what c's input ring holds; the old handler gets no on_close.
 * The connection keeps its listener, counters and limits. Owning worker's
 * thread; call it from a callback of c. 0, -EPIPE when h's on_open closed
 * c, -EINVAL (h without on_data, or c closing or linked) or -ENOMEM.
 */
int weft_conn_set_handler(weft_conn *c, const weft_handler *h, void *ud);

/* Per-connection user data; NULL until set. */
void *weft_conn_userdata(const weft_conn *c);
void weft_conn_set_userdata(weft_conn *c, void *ud);
/* The peer's address; returns its length, copied into *ss. */
socklen_t weft_conn_peer(const weft_conn *c, struct sockaddr_storage *ss);
/* The index of the owning worker. */
int weft_conn_worker(const weft_conn *c);
/* The index of the listener c came through (0: the config's bind/port), or
 * -1 for an outbound connection. */
int weft_conn_listener(const weft_conn *c);
/* The user data of c's listener, or of the weft_connect that opened it. */
void *weft_conn_origin_userdata(const weft_conn *c);
/* The server that owns the connection. */
weft_server *weft_conn_server(const weft_conn *c);
/* The socket fd (for setsockopt; do not read, write or close it). */
int weft_conn_fd(const weft_conn *c);
/* Bytes of output waiting to be written. */
size_t weft_conn_pending_output(const weft_conn *c);

/* --- rings --------------------------------------------------------------- */

/* Bytes held. */
static inline size_t weft_ring_len(const weft_ring *r) { return (uint32_t)(r->tail - r->head); }

/*
 * Point iov[0] (and iov[1] when the data wraps) at the bytes held; returns
 * the number of segments filled (0 when empty).
 */
int weft_ring_peek(const weft_ring *r, struct iovec iov[2]);
/* Drop n bytes from the front; n must be at most weft_ring_len. */
void weft_ring_consume(weft_ring *r, size_t n);
/*
 * Offset from the front of the first byte equal to c, searching from offset
 * `from`; -1 when absent. Searches across the wrap.
 */
long weft_ring_find(const weft_ring *r, size_t from, int c);
/*
 * Copy n bytes starting at offset off into dst without consuming them.
 * Returns the number copied (fewer when the ring holds less).
 */
size_t weft_ring_copyout(const weft_ring *r, size_t off, void *dst, size_t n);
/* The byte at offset off (off < weft_ring_len). */
static inline unsigned char weft_ring_byte(const weft_ring *r, size_t off)
{
    return (unsigned char)r->buf[(r->head + (uint32_t)off) & (r->cap - 1)];
}

/* --- programs ------------------------------------------------------------- */

/* An option of a program's own, beside the server options. */
typedef struct weft_program_option {
    const char *name; /* long option, without "--" */
    const char *arg;  /* its value's name for --help ("BYTES"); NULL: a flag */
    const char *help; /* what it does; '\n' separates lines */
} weft_program_option;

/*
 * A server program: its handler and its own options. weft_main does the
 * rest. Every hook is optional; each gets `ud`, which is also the server's
 * user data (weft_server_userdata).
 */
typedef struct weft_program {
    const char *name;                   /* "weft-echo": usage, messages, --version */
    const char *version;                /* for --version; NULL: WEFT_VERSION */
    const char *summary;                /* --help's paragraph under the usage line */
    const char *epilog;                 /* more --help text at the end, or NULL */
    const char *try_hint;               /* printed once listening; a printf format with the
                                           address (%s) and port (%u): "nc %s %u" */
    const weft_handler *handler;        /* read after the options are parsed */
    const weft_program_option *options; /* ended by an entry whose name is NULL */
    void *ud;
    /* Change the defaults before parsing (e.g. another port); --help shows them. */
    void (*defaults)(weft_config *cfg, void *ud);
    /* One of the program's options was given (arg NULL for a flag): 0, or
     * -EINVAL with *why set to a short phrase. */
    int (*option)(weft_config *cfg, const char *name, const char *arg, const char **why, void *ud);
    /* Every option is parsed, nothing validated yet: settle what depends on
     * several options. 0, or -EINVAL with *why set. */
    int (*configure)(weft_config *cfg, const char **why, void *ud);
    /* The server exists, not started: add counters, prepare state, post to
     * the workers (weft_post: the calls run once they start). 0 or -errno. */
    int (*setup)(weft_server *s, void *ud);
    /* The server stopped (or failed to start); it is freed after this. */
    void (*teardown)(weft_server *s, void *ud);
} weft_program;

/*
 * Run a server program, and return main's exit status: parse the server
 * options (weft_config_options) and the program's own, with --help (the
 * text generated from both, showing the program's defaults), --version,
 * -q and -v, --config FILE (the same names, one "name = value" per line,
 * read before the command line, which overrides it), --print-config,
 * --log-level and --log-format (log lines on stderr with a timestamp, the
 * program's name, its pid and the level, unless the program set
 * config.log); validate; raise the soft RLIMIT_NOFILE to the hard limit;
 * take the sockets systemd passed (LISTEN_FDS) or a predecessor handed over
 * (a reload); create the server; call setup; install SIGINT and SIGTERM
 * handlers that call weft_server_stop and a SIGHUP handler (and the admin
 * command `reload`) that starts a successor, hands it the listening
 * sockets and drains (the one place the library sets a signal
 * disposition, because this is the program's main; docs/operations.md);
 * start; tell $NOTIFY_SOCKET READY=1; print the startup lines (address,
 * workers, I/O backend, CPUs, admin socket) on stdout; wait; print the
 * counts; teardown; free. Returns 0, 1 when the
 * server could not start or stopped on an error (one line on stderr says
 * why), or 2 for a usage error. One call per process, from main.
 */
int weft_main(int argc, char **argv, const weft_program *p);

/* --- errors -------------------------------------------------------------- */

/* Text for a negative errno returned by weft (or any errno). Never NULL. */
const char *weft_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_WEFT_H */
