/*
 * peer_common — what every peer echo server shares and none of them is
 * about: the command line (--port, --bind, --threads, --help), the fd limit,
 * the listening socket, the "listening on ADDR:PORT" line, the stop signals,
 * and accepting with the EMFILE shedding. Each peer-*.c keeps its own I/O
 * model; this is only the frame around it.
 *
 * Single-threaded: call these from the main (accepting) thread only.
 */
#ifndef PEER_COMMON_H
#define PEER_COMMON_H

#include <signal.h>
#include <stdbool.h>

/*
 * The backpressure every event-driven peer applies, as weft does: once this
 * much output waits for a client, its connection is not read until the
 * output drains. The usage text states it; peer_buf, peer-libuv and
 * peer-libevent apply it.
 */
#define PEER_OUT_LIMIT (256 * 1024)

/* What a peer says about itself in its usage text and messages. */
struct peer_desc {
    const char *name;         /* "peer-poll": the first word of every message */
    const char *about;        /* one line: the I/O model */
    const char *backpressure; /* what a client that does not read costs; NULL: the 256 KiB rule */
    const char *threads_help; /* --threads N in the usage text; NULL when --threads is ignored */
    const char *threads_ignored; /* why --threads is ignored (then it defaults to 1) */
    int default_threads;
};

/* The parsed command line. */
struct peer_opts {
    const char *name; /* the peer's name, for messages */
    const char *bind; /* the address to listen on */
    unsigned port;    /* 0: any free port */
    int threads;      /* 1..1024 */
};

/* peer_init's answer when main should go on; anything else is main's exit status. */
#define PEER_RUN (-1)

/*
 * Parses the command line into *o and lifts the soft fd limit to the hard one
 * (a benchmark holds thousands of connections). When --threads is ignored and
 * given, says so on stderr. Returns PEER_RUN to go on, 0 after --help, or 2
 * after a message for a bad argument.
 */
int peer_init(int argc, char **argv, const struct peer_desc *d, struct peer_opts *o);

/*
 * A listening socket on addr:port (IPv4 or IPv6), non-blocking, close-on-exec,
 * SO_REUSEADDR, and SO_REUSEPORT when asked, with weft's backlog. Stores the
 * bound port in *bound. Returns the fd, or a negative errno.
 */
int peer_open_listener(const char *addr, unsigned port, bool reuseport, unsigned *bound);

/*
 * The listening socket the command line asks for (no SO_REUSEPORT), and the
 * spare fd peer_accept and peer_shed use when out of fds. Stores the bound
 * port in *bound. Returns the fd, or -1 after a message on stderr.
 */
int peer_listen(const struct peer_opts *o, unsigned *bound);

/* Prints the one line a benchmark script waits for: "listening on ADDR:PORT". */
void peer_print_ready(const char *addr, unsigned port);

/* Set by SIGINT or SIGTERM once peer_catch_stop has run. */
extern volatile sig_atomic_t peer_stop;

/*
 * Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it
 * creates afterwards. Stores that set in *sigs and the mask before in *old;
 * either may be NULL.
 */
void peer_block_stop_signals(sigset_t *sigs, sigset_t *old);

/*
 * SIGINT and SIGTERM set peer_stop, and stay blocked except inside the wait
 * call (pselect, ppoll, epoll_pwait), which gets *waitmask: a signal can then
 * only interrupt the wait, never slip in between the peer_stop check and the
 * wait. SIGPIPE is ignored.
 */
void peer_catch_stop(sigset_t *waitmask);

/* What peer_start sets up for a peer that runs its own wait loop. */
struct peer_server {
    struct peer_opts opts;
    int lfd;           /* listening, non-blocking */
    unsigned port;     /* the bound port */
    sigset_t waitmask; /* for the wait call: lets SIGINT and SIGTERM in */
};

/*
 * The start of a peer that waits with pselect, ppoll or epoll_pwait:
 * peer_init, peer_catch_stop, peer_listen. Returns PEER_RUN to go on, or
 * main's exit status: 0 after --help, 2 on a bad argument, 1 when it cannot
 * listen (after a message).
 */
int peer_start(int argc, char **argv, const struct peer_desc *d, struct peer_server *s);

/* Counted by peer_accept and peer_shed. */
extern unsigned long peer_accepted, peer_shed_count;

/*
 * Accepts one connection with accept4 flags (SOCK_NONBLOCK or 0; close-on-exec
 * always): its fd, or -1 when none is waiting. Out of fds, it sheds the
 * backlog first (see peer_shed).
 */
int peer_accept(int lfd, int flags);

/*
 * Out of fds (EMFILE, ENFILE): accepts each waiting connection on the spare fd
 * and closes it at once, so the listener does not stay readable forever and
 * the client sees a close rather than a hang. Returns how many it shed.
 */
unsigned long peer_shed(int lfd);

#endif
