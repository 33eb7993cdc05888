/*
 * tests/ft_lib.h — shared helpers for the fault tests (tests/ft_*.c).
 *
 * Every fault test runs a misbehaving client beside healthy traffic on the
 * same weft-echo, and asserts two things: the server dealt with the fault
 * the documented way (the counter on the admin socket, the fd count, the
 * memory), and the healthy connections did not notice beyond latency (every
 * byte verified, no error, messages kept flowing). This header adds to
 * itlib.h (process control, fds, RSS):
 *
 *   - the healthy client: a thread that keeps `nconns` connections busy with
 *     newline-terminated messages (so it works against --lines too), one in
 *     flight per connection, paced, each echo compared byte for byte with
 *     what was sent and timed;
 *   - admin-socket counters ("stats" on the Unix socket, "name value" lines);
 *   - process CPU ticks, for "no spinning" checks;
 *   - the common command line of a fault test and its one-line result, which
 *     bench/faults.sh reads.
 *
 * A fault test's command line:  ft_X ECHO [LOAD] [-n N] [--baseline MS]
 *   -n N           scale of the fault (connections, cycles); CI default when absent
 *   --baseline MS  run the same server and healthy traffic for MS ms with no
 *                  fault, to compare latency (bench/faults.sh)
 * It prints "FT_RESULT fault=NAME mode=fault|baseline n=N ms=MS conns=H msgs=M
 * mismatches=K errors=E p50_us=A p99_us=B max_us=C" (H healthy connections
 * sent M messages in MS ms) and exits 0 when every check passed, 1 otherwise.
 */
#ifndef WEFT_TESTS_FT_LIB_H
#define WEFT_TESTS_FT_LIB_H

#include <stdint.h>
#include <sys/types.h>

#include "itlib.h"

/* 1 in sanitizer builds (set by faults.cmake): RSS bounds are not asserted
 * there, since the sanitizer keeps freed memory resident on purpose. */
#ifndef FT_SANITIZED
#define FT_SANITIZED 0
#endif

/* ---- healthy traffic ----------------------------------------------------- */

typedef struct ft_healthy ft_healthy;

typedef struct ft_healthy_result {
    uint64_t msgs;       /* messages echoed and verified */
    uint64_t bytes;      /* bytes echoed and verified */
    uint64_t mismatches; /* echoes that differed from what was sent */
    uint64_t errors;     /* resets, early EOFs, replies slower than 10 s */
    uint64_t p50_us, p99_us, max_us;
    int64_t ms; /* how long it ran */
    int conns;  /* healthy connections */
} ft_healthy_result;

/*
 * Connect nconns connections to 127.0.0.1:port (fails the test if one
 * cannot connect) and start the thread that drives them: each sends a
 * random line (8..200 bytes, '\n'-terminated) every interval_ms and checks
 * its echo.
 */
ft_healthy *ft_healthy_start(uint16_t port, int nconns, int interval_ms, uint64_t seed);

/* Messages and bytes verified so far (safe while the thread runs). */
uint64_t ft_healthy_msgs(ft_healthy *h);
uint64_t ft_healthy_bytes(ft_healthy *h);

/* Stop the thread, close the connections, fill *r, free h. */
void ft_healthy_stop(ft_healthy *h, ft_healthy_result *r);

/*
 * Fail the test unless the healthy traffic was clean (no mismatch, no
 * error, at least min_msgs messages); then print the FT_RESULT line.
 */
void ft_healthy_check(const char *fault, const char *mode, long n, const ft_healthy_result *r,
                      uint64_t min_msgs);

/*
 * Fail unless the healthy traffic progresses: at least one more message
 * verified within timeout_ms. Use it while the fault is at its worst.
 */
void ft_healthy_expect_progress(ft_healthy *h, int timeout_ms, const char *when);

/*
 * The fault side's CPU priority. ft_fault_nice(1) puts the calling thread
 * (and what it forks afterwards) in SCHED_IDLE (nice 19 where that cannot be
 * set); ft_fault_nice(0) puts it back in SCHED_OTHER at nice 0. Each test
 * calls it around its fault, after the server and the healthy thread are
 * started (they keep SCHED_OTHER, nice 0): on two shared CPUs the attack
 * generator would otherwise take the CPU time the server and the healthy
 * clients need, which a remote attacker's CPU does not. The server still
 * does all the work the fault causes.
 */
void ft_fault_nice(int on);

/* ---- the server --------------------------------------------------------- */

/*
 * Start weft-echo with args (NULL-terminated) plus a private admin socket,
 * whose path is stored in sock (at least 108 bytes). prefix, when not NULL,
 * is a shell fragment run before exec (e.g. "ulimit -n 128;").
 */
void ft_server_start(itl_server *srv, const char *echo, const char *const *args, char *sock,
                     const char *prefix);

/* A counter from the admin socket ("stats"), or -1 when absent/unreachable. */
int64_t ft_stat(const char *sock, const char *name);

/*
 * Poll the counter every 50 ms until it is >= want or timeout_ms passed;
 * returns the last value read.
 */
int64_t ft_wait_stat(const char *sock, const char *name, int64_t want, int timeout_ms);

/* Poll until the counter is exactly want (or timeout); returns the last value. */
int64_t ft_wait_stat_eq(const char *sock, const char *name, int64_t want, int timeout_ms);

/*
 * Wait until the server's open count is `open` (admin socket) and its fd
 * count is steady, and return that fd count: the baseline to come back to.
 * Fails the test if open never reaches the value.
 */
int ft_settle(const itl_server *srv, const char *sock, int open);

/* utime + stime of a process in clock ticks, or -1. */
long ft_cpu_ticks(pid_t pid);

/* ---- the command line ---------------------------------------------------- */

typedef struct ft_opts {
    const char *echo;  /* path of weft-echo */
    const char *load;  /* path of weft-load, when the test takes one */
    long n;            /* scale of the fault */
    long baseline_ms;  /* > 0: baseline run */
    int healthy_conns; /* healthy connections (default 16) */
} ft_opts;

/* Parse the command line above; nload is 1 when LOAD follows ECHO. */
void ft_parse(int argc, char **argv, int nload, long default_n, ft_opts *o);

/*
 * The baseline run: the server with args, healthy traffic for o->baseline_ms,
 * checked and reported as mode=baseline. Returns the exit status.
 */
int ft_run_baseline(const char *fault, const ft_opts *o, const char *const *args);

/*
 * The same with the server started under prefix (as ft_server_start) and
 * conns healthy connections: the baseline of a part of a test whose server
 * or healthy side differs from the rest (ft_limits' emfile part).
 */
int ft_run_baseline_as(const char *fault, const ft_opts *o, const char *const *args,
                       const char *prefix, int conns);

/*
 * Raise our fd limit and check it can hold `need` descriptors (fails the
 * test with a clear message otherwise).
 */
void ft_need_fds(long need);

#endif /* WEFT_TESTS_FT_LIB_H */
