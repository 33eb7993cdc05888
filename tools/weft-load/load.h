/*
 * tools/weft-load/load.h — weft-load's internal header: the configuration,
 * the connection slot, the thread, the mode interface, and what each file of
 * the program offers the others. Nothing here is a library API.
 *
 * The files, one idea each:
 *
 *     main.c       start the threads, wait for them, print the report
 *     options.c    the command line, the usage text, the fd and port limits
 *     message.c    the message format: the bytes of message (id, seq, size)
 *     verify.c     checking received bytes against it, counting mismatches
 *     engine.c     the connection engine: connect, read, write, the epoll loop
 *     phase.c      the phases every mode shares: connect, barrier, drain, done
 *     mode_echo.c  closed loop            mode_rate.c   open loop (a schedule)
 *     mode_flood.c hold idle, check once  mode_churn.c  connect, echo, close
 *     report.c     totals over the threads, text and JSON output
 *
 * Connection life (one slot; churn reuses slots, bumping `gen` so a stale
 * event for a closed fd is ignored):
 *
 *     FREE --open()--> CONNECTING --SO_ERROR 0--> OPEN --close/error--> DONE
 *                          |                        |        (churn: FREE)
 *                          +--error/timeout--> DONE (churn: FREE)
 *
 * Thread phases (phase.c; the mode runs P_RUN or P_HOLD):
 *
 *     echo/rate:  CONNECT -> WAIT (all threads connected) -> RUN -> DRAIN -> DONE
 *     flood:      CONNECT -> WAIT -> HOLD -> DRAIN (one echo each) -> DONE
 *     churn:      RUN (connect, request, close, repeat) -> DRAIN -> DONE
 *
 * DRAIN sends nothing new and waits (up to --timeout) for every reply, so
 * every byte sent is verified before the report.
 */
#ifndef WEFT_LOAD_LOAD_H
#define WEFT_LOAD_LOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "tools/hist.h"

/* RX_SIZE: one recv, which also bounds one verification chunk. TX_CHUNK: one
 * send, large enough to batch, small enough to regenerate cheaply after a
 * short write. */
#define HDR_SIZE 16
#define MAX_SIZE (16u << 20)
#define RX_SIZE  (256u << 10)
#define TX_CHUNK (64u << 10)
#define NS       1000000000ULL

/* --- configuration ---------------------------------------------------------- */

typedef struct load_mode load_mode;

/* The parsed command line (options.c); read-only once the threads start. */
struct load_config {
    const load_mode *mode;
    const char *host;
    unsigned port;
    uint32_t conns, depth, size, threads, sources, connect_inflight;
    double rate, ramp, duration, warmup, hold, timeout;
    uint64_t count; /* 0: no count bound */
    int have_duration, json, close_rst;
    struct sockaddr_storage dst;
    socklen_t dstlen;
    int family;
};

extern struct load_config load_cfg;

/* --- time ------------------------------------------------------------------- */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static inline uint64_t secs_ns(double s) { return (uint64_t)(s * 1e9); }

/* --- connections and threads ------------------------------------------------ */

enum cstate { C_FREE, C_CONNECTING, C_OPEN, C_DONE };
enum phase { P_CONNECT, P_WAIT, P_RUN, P_HOLD, P_DRAIN, P_DONE };

typedef struct conn {
    int fd;
    uint32_t id;                 /* carried in every header */
    uint32_t gen;                /* bumped on every open: stale-event guard */
    uint32_t rot;                /* rate: position in the thread's send rotation */
    uint8_t state;               /* enum cstate */
    uint8_t writable;            /* output edge seen and no EAGAIN since */
    uint8_t queued;              /* on the thread's flush list */
    uint8_t bad;                 /* wrong bytes in this message so far (counts to 2) */
    uint32_t bad_off;            /* first wrong byte in it */
    uint64_t quota;              /* messages this connection may have sent so far */
    uint64_t wr, rd;             /* stream bytes written / received and verified */
    uint64_t t_open;             /* when connect() was called */
    uint64_t *ts;                /* send time of message m at ts[m % depth] (not rate) */
    unsigned char hdr[HDR_SIZE]; /* received header of the message being verified */
} conn;

typedef struct stats {
    uint64_t msgs, bytes;         /* verified, received inside the window */
    uint64_t msgs_all, bytes_all; /* verified, whole run */
    uint64_t conn_ok, fail_refused, fail_timeout, fail_noaddr, fail_other;
    uint64_t resets, shorts, timeouts, peer_closed;
    uint64_t mm_corrupt, mm_cross, mm_seq, mm_extra;
    uint64_t cycles, cycles_win, check_ok, unsent;
    uint64_t last_recv; /* every field above is a plain counter (report.c sums them) */
    lhist lat, conn_time;
} stats;

typedef struct thr {
    unsigned idx;
    pthread_t tid;
    int ep;
    enum phase phase;
    conn *conns;
    uint32_t nconns;
    uint32_t *ready, nready; /* connections to flush this turn */
    uint32_t *free, nfree;   /* slots not yet opened (a stack) */
    uint32_t resolved;       /* slots connected or failed (not churn) */
    uint32_t nopen;          /* connections in C_OPEN */
    uint32_t inflight, inflight_cap;
    uint64_t attempts; /* connects started */
    double ramp_rate;  /* per thread; 0: no pacing */
    uint64_t ramp_t0;
    uint64_t budget; /* messages (churn: cycles) still allowed */
    uint64_t start, warm_end, run_end, hold_end, drain_end;
    uint64_t next_housekeep, next_drain_check;
    /* rate: thread message k goes to rot[k % nrot] at start + k * interval */
    uint32_t *rot, nrot;
    uint64_t k_next, k_limit;
    double interval;
    unsigned char *rx, *tx, *exp;
    stats st;
} thr;

/* The threads (main.c), load_cfg.threads of them; the report reads them after join. */
extern thr *load_threads;

/* Set by SIGINT or SIGTERM: every thread drains and stops. */
extern atomic_int load_stop;

/* --- modes ------------------------------------------------------------------ */

/*
 * What one mode does differently; the engine and the phase machine call
 * these hooks, always from the thread that owns t. A NULL hook does nothing.
 */
struct load_mode {
    const char *name;
    /* Connect, one message, close, over and over: the run has no connect
     * barrier, a closed connection frees its slot for the next cycle, and a
     * mismatched message ends its connection. */
    bool cycles;
    /* At thread start, before the first turn; t0 is when the program
     * started (churn: start the run there). */
    void (*prepare)(thr *t, uint64_t t0);
    /* Every thread has connected, `mine` of `all` connections on this one;
     * the window and budget are set and the phase is P_RUN (never called for
     * a cycles mode, which has no barrier). */
    void (*begin)(thr *t, uint32_t mine, uint64_t all);
    /* One turn of the run, in P_RUN or P_HOLD: end it with phase_drain(). */
    void (*step)(thr *t, uint64_t now);
    /* The next time step() has something to do without an event. */
    uint64_t (*deadline)(const thr *t);
    /* c has just connected. */
    void (*opened)(thr *t, conn *c);
    /* A read on c drained the socket and left c open. */
    void (*readable)(thr *t, conn *c);
    /* Message seq of c was verified intact; returns 0 if c was closed. */
    int (*replied)(thr *t, conn *c, int in_window);
    /* When message seq of c was due to be sent; NULL: the stamp taken when
     * its first byte went out (c->ts). */
    uint64_t (*sent_at)(const thr *t, const conn *c, uint64_t seq);
};

extern const load_mode mode_echo, mode_rate, mode_flood, mode_churn;

/* --- message.c -------------------------------------------------------------- */

/* Writes bytes [off, off+len) of message (id, seq) of size `size` to buf. */
void msg_fill(unsigned char *buf, uint32_t id, uint64_t seq, uint32_t size, uint32_t off,
              size_t len);

/* Writes bytes [pos, pos+len) of connection id's stream of size-byte messages. */
void msg_stream_fill(unsigned char *buf, uint32_t id, uint32_t size, uint64_t pos, size_t len);

/* --- verify.c --------------------------------------------------------------- */

/* Checks n bytes received on c at `now` against what was sent, counts each
 * message good or bad by kind; returns 0 if c was closed. */
int verify_input(thr *t, conn *c, const unsigned char *buf, size_t n, uint64_t now);

/* --- engine.c --------------------------------------------------------------- */

/* Puts c on t's flush list for this turn (once). */
void conn_queue(thr *t, conn *c);

/* Starts a non-blocking connect on slot c; a failure is counted and released. */
void conn_open(thr *t, conn *c, uint64_t now);

/* Closes c's fd and frees its slot (churn) or retires it. */
void conn_release(thr *t, conn *c);

/* The connect on c failed with err: counted by kind, c released. */
void conn_connect_failed(thr *t, conn *c, int err);

/* c is lost for `counter`'s reason: counted, c released. */
void conn_lost(thr *t, conn *c, uint64_t *counter);

/* Whether c has replies outstanding. */
int conn_outstanding(const conn *c);

/* When message seq of c was sent (the mode's schedule, or its stamp). */
uint64_t conn_sent_time(const thr *t, const conn *c, uint64_t seq);

/* Sets up thread idx's share of the connections and its buffers; exits with
 * status 2 when out of memory or descriptors. */
void thr_init(thr *t, unsigned idx);

/* The thread body: the phases and the epoll loop until P_DONE; closes its fds. */
void *thr_main(void *arg);

/* Frees what thr_init allocated (after the report). */
void thr_free(thr *t);

/* calloc or exit with status 2 and a message. */
void *load_calloc(size_t n, size_t size);

/* --- phase.c ---------------------------------------------------------------- */

/* Sets up the connect barrier for `threads` threads and notes the program
 * start; call once, before the threads start. */
void phase_init(unsigned threads);

/* t's first turn is at `now`: sets its timers and lets the mode prepare. */
void phase_start(thr *t, uint64_t now);

/* Advances t's phase, opens connections, runs the mode's step. */
void phase_step(thr *t, uint64_t now);

/* Nanoseconds until t next has something to do without an event. */
uint64_t phase_next_wake(const thr *t, uint64_t now);

/* Sets t's measuring window from `start` (warmup, --duration). */
void phase_begin_window(thr *t, uint64_t start);

/* Stops sending new messages and waits (up to --timeout) for every reply. */
void phase_drain(thr *t, uint64_t now);

/* Starts connects while the in-flight cap, the ramp and the budget allow. */
void phase_open_more(thr *t, uint64_t now);

/* When the ramp allows the next connect (UINT64_MAX when nothing waits for it). */
uint64_t phase_ramp_at(const thr *t);

/* --- options.c, report.c ---------------------------------------------------- */

/* Parses argv into load_cfg; on a bad argument prints why and exits 2, after
 * --help exits 0. */
void options_parse(int argc, char **argv);

/* Raises RLIMIT_NOFILE to the hard limit and checks that it and the local
 * ports suffice for --conns; exits 2 with a message when they do not. */
void options_check_limits(void);

/* Sums the threads' counters and prints the report (text or --json) on
 * stdout; returns the exit status: 0 when everything was verified, 1 if not. */
int report_print(void);

#endif
