/*
 * tests/io_script.h — a scripted I/O backend for the data-plane unit tests.
 *
 * It implements workers/io.h without a socket: each "fd" is a scripted peer
 * with bytes waiting to be read (sc_give), an end (sc_eof, sc_reset), a send
 * window (how many bytes the peer takes before the socket is "full"), and
 * everything the worker wrote to it. The test queues the events the backend
 * reports at its next wait (sc_event) and drives the loop itself, one
 * wk_turn at a time, on its own thread; the backend records every call, so
 * a test can assert how many reads and writes a turn made and what timeout
 * the loop waited with.
 */
#ifndef WEFT_TESTS_IO_SCRIPT_H
#define WEFT_TESTS_IO_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>

#include "workers/io.h"
#include "workers/worker-t.h"

#define SC_PEERS 64
#define SC_BUF   (1u << 20)

typedef struct sc_peer {
    bool used;
    bool attached;
    uint64_t key;
    /* What the worker reads. */
    char *in;
    size_t in_len, in_off;
    bool eof;
    int err; /* a pending error (positive errno): recv and send fail with it */
    /* What the worker wrote. */
    char *out;
    size_t out_len;
    size_t window; /* bytes the peer takes before the socket is full */
    bool shut_wr;  /* shutdown_wr was called */
    bool closed, reset;
    unsigned recvs, sends, sendfiles; /* calls */
} sc_peer;

typedef struct sc_script {
    sc_peer peer[SC_PEERS];
    struct {
        int fd;
        unsigned ev;
    } events[256];
    int nevents;
    int woken;           /* wake was called */
    int last_timeout;    /* the last wait's timeout_ms */
    unsigned waits;      /* wait calls */
    int inits, destroys; /* init/destroy calls */
    char lastlog[400];   /* the group's last log line */
    int nlogs;
    /* Outbound: the peer the next connect gets, and how it goes. */
    int connect_fd;    /* a peer from sc_peer_new, or -1: connect fails */
    int connect_rc;    /* what connect returns: 0 in progress, 1 at once, or -errno */
    int connected_rc;  /* what connected returns once its event came */
    unsigned connects; /* connect calls */
} sc_script;

/* The script the backend reads and writes (one per test program). */
extern sc_script sc;
/* The backend's operations. */
extern const wk_io_ops sc_ops;

/* Reset the script: no peers, no events. */
void sc_reset_all(void);
/* A new scripted peer: its fake fd (>= 100). window is its send window. */
int sc_peer_new(size_t window);
sc_peer *sc_peer_of(int fd);
/* Bytes for the worker to read from fd (appended). */
void sc_give(int fd, const void *data, size_t len);
void sc_eof(int fd);
void sc_set_error(int fd, int err);
/* Queue an event (WK_IO_*) for fd, reported at the next wait. */
void sc_event(int fd, unsigned ev);
/* What the worker wrote to fd so far, as a NUL-terminated string. */
const char *sc_output(int fd);

/* A group with this backend, the config and handler given, and one worker. */
typedef struct sc_world {
    weft_config cfg;
    weft_handler h;
    wk_group g;
    wk_worker *w;
    wk_worker *ws[1];
    wk_origin origin;
} sc_world;

/* Build the world: create worker 0 and prepare its loop on this thread. */
void sc_world_init(sc_world *x, const weft_config *cfg, const weft_handler *h);
/* End the worker (closing what is open) and free everything. */
void sc_world_free(sc_world *x);
/* Hand the worker fd and run the turn that adopts it; the connection. */
weft_conn *sc_adopt(sc_world *x, int fd);
/* Run one turn of the worker's loop; returns wk_turn's result. */
int sc_turn(sc_world *x);

#endif
