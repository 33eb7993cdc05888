/*
 * workers/conn-t.h — the connection: its flags and its layout.
 *
 * A weft_conn belongs to the worker thread that owns it for its whole life
 * (invariant 1): only that thread reads or writes any field below. Its
 * meaning, state by state, is drawn at the top of workers/conn.c.
 */
#ifndef WEFT_WORKERS_CONN_T_H
#define WEFT_WORKERS_CONN_T_H

#include <stdint.h>
#include <sys/types.h>

#include "weft/weft.h"
#include "workers/timer.h"

/* Connection flags (weft_conn.flags). */
enum {
    C_READABLE = 1u << 0,    /* an input event was seen and not yet drained */
    C_HUP = 1u << 1,         /* RDHUP/HUP/ERR seen: read on to EOF or error */
    C_READY = 1u << 2,       /* on the worker's ready, deferred or starved list */
    C_FLUSH = 1u << 3,       /* on the worker's flush list */
    C_WANT_OUT = 1u << 4,    /* output hit EAGAIN: waiting for the output event */
    C_PAUSED = 1u << 5,      /* backpressure: not reading until output drains */
    C_EOF = 1u << 6,         /* the peer sent FIN */
    C_CLOSING = 1u << 7,     /* close once output is flushed; read no more */
    C_CLOSED = 1u << 8,      /* closed; the slot is freed at the end of a turn */
    C_OPENED = 1u << 9,      /* on_open ran; on_close is owed */
    C_DRAIN_CB = 1u << 10,   /* weft_send reported 1: on_drain is owed */
    C_LINGER = 1u << 11,     /* closed for the handler; discarding input to EOF */
    C_LINGERQ = 1u << 12,    /* on the worker's linger FIFO (next_closed) */
    C_STARVED = 1u << 13,    /* on the starved list (next_ready; C_READY is set too):
                                reading waits for ring memory under pool_max_bytes */
    C_REDELIVER = 1u << 14,  /* call on_data with the ring as it is (after backpressure) */
    C_PARTIAL = 1u << 15,    /* input is pending since partial_since */
    C_HPAUSED = 1u << 16,    /* the handler paused reading (weft_read_pause) */
    C_CONNECTING = 1u << 17, /* outbound: resolving or connecting; no read, no write yet */
    C_SHUTWR = 1u << 18,     /* send FIN once output is flushed (a linked peer's EOF) */
    C_FIN_SENT = 1u << 19,   /* shutdown(SHUT_WR) done */
    C_TLS_HS = 1u << 20,     /* TLS: the handshake runs; on_open waits for its end */
};

/*
 * Where a connection came from: the handler that runs for it and the user
 * data of its listener (or of weft_connect). A listener's origin lives as
 * long as the server; an outbound connection's is in its conn_ext.
 */
typedef struct wk_origin {
    const weft_handler *h;
    void *ud;
    int listener; /* index among the server's listeners; -1 for outbound */
    /* Per-source accounting of the listener (NULL: none): the count of
     * the connection's source is dropped when it closes. */
    void (*on_gone)(const struct wk_origin *o, const weft_conn *c);
} wk_origin;

/*
 * A file queued for output (weft_send_file): `before` bytes of the output
 * ring go first (those queued between the previous file and this one),
 * then `left` bytes of fd from off. The connection owns fd.
 */
typedef struct out_file {
    struct out_file *next;
    int fd;
    off_t off;
    uint64_t left;
    uint64_t before;
} out_file;

/*
 * What only some connections need, allocated when one first does: an
 * outbound connection's origin and connect timeout, a link, queued files.
 */
typedef struct conn_ext {
    wk_origin origin;              /* outbound: its own handler and user data */
    weft_conn *link;               /* the connection this one is linked to, or NULL */
    uint32_t connect_ms;           /* outbound: the connect timeout */
    unsigned sockopts;             /* outbound: WK_SOCK_* (workers/io.h) */
    const wk_origin *lsn;          /* after a handler change: the listener's origin */
    struct wk_tls *tls;            /* TLS state (workers/tls.c), or NULL */
    void *tls_client;              /* outbound: the SSL_CTX to start TLS with once connected */
    char *sni;                     /* outbound: the name to send and verify */
    out_file *files, **files_tail; /* queued files, in order */
    uint64_t file_bytes;           /* their bytes left: pending output too */
} conn_ext;

/*
 * A connection: 192 bytes on x86-64 with its two rings' headers, and
 * nothing else while it is idle (the rings lend their storage back to the
 * pool when they empty). docs/architecture.md counts it.
 */
struct weft_conn {
    int fd;
    uint32_t slot;  /* index in the worker's slab */
    uint32_t gen;   /* bumped each time the slot is freed: backend keys carry it */
    uint32_t flags; /* C_* */
    uint8_t reason; /* close reason, for a deferred close */
    uint8_t family; /* AF_INET or AF_INET6 */
    uint16_t port;  /* peer port, network order */
    uint8_t addr[16];
    uint32_t io_idx; /* the I/O backend's own index (poll: pollfd slot) */
    union {
        uint32_t linger_until; /* ms (CLOCK_MONOTONIC, mod 2^32) while lingering */
        uint32_t out_inflight; /* while open: output a completion backend took
                                  from `out` and has not finished sending (a
                                  linger starts only once this is 0) */
    };
    uint32_t last_in;       /* ms (mod 2^32) of the last byte read */
    uint32_t last_out;      /* ms (mod 2^32) of the last byte the peer took, or
                               of output becoming pending */
    uint32_t partial_since; /* ms (mod 2^32) when the pending input began */
    weft_ring in, out;
    struct wk_worker *w;
    void *ud;
    struct weft_conn *next_ready;  /* ready/deferred/starved list, or the slab's free list */
    struct weft_conn *next_flush;  /* flush list */
    struct weft_conn *next_closed; /* closed this turn, awaiting reaping; or the linger FIFO */
    tw_node tmr;                   /* the timeouts' single lazy timer */
    struct weft_timer *timers;     /* the handler's timers of this connection */
    const wk_origin *o;            /* its handler and user data */
    conn_ext *x;                   /* NULL unless outbound or linked */
};

/* A handler timer (weft_timer_*); on its conn's or its worker's list. */
struct weft_timer {
    tw_node node;
    struct wk_worker *w;
    weft_conn *conn;                  /* NULL for a worker timer */
    struct weft_timer *next, **pprev; /* the owner's list */
    weft_timer_fn fn;
    void *arg;
    uint32_t every_ms;
    int firing; /* inside fn: a cancel is deferred to its return */
    int cancelled;
};

/* A FIFO of connections, linked through one of the next pointers. */
typedef struct conn_list {
    weft_conn *head, *tail;
} conn_list;

/* The key a backend hands back with each event: (generation << 32) | slot. */
static inline uint64_t conn_key(const weft_conn *c) { return ((uint64_t)c->gen << 32) | c->slot; }

#endif
