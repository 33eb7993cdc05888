/*
 * tests/itlib.h — the one helper library of the tests that run real
 * programs: the integration tests (it_*.c), the statistics tests (st_*.c)
 * and, through ft_lib, the fault tests (ft_*.c).
 *
 * These tests start the reference server (weft-echo) as a child process,
 * or a server in-process, and talk to it over loopback. The helpers are
 * the client side, one idea per file:
 *   itlib.c      failing a test, clocks, the children it started, its
 *                private directory;
 *   itl_net.c    TCP and Unix connections: connect, bounded reads and
 *                writes, echo round trips, a free port;
 *   itl_proc.c   processes: weft-echo as a child, running a command,
 *                fds and memory in /proc;
 *   itl_admin.c  the control endpoints: the admin socket, HTTP, numbers
 *                out of a JSON answer;
 *   itl_echo.c   deterministic data and the random echo conversation.
 * Every wait here is bounded in time; nothing retries forever.
 *
 * Failures go through IT_CHECK, which prints the place and the condition,
 * kills (by PID) every child process this test started, removes its
 * private directory, and exits 1.
 */
#ifndef WEFT_TESTS_ITLIB_H
#define WEFT_TESTS_ITLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- itlib.c: failing, clocks, children, the private directory ---------- */

/* Fail the test: print where and why, kill our children, remove our directory, exit(1). */
void itl_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define IT_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            itl_fail(__FILE__, __LINE__, "check failed: " #cond ": " __VA_ARGS__);                 \
    } while (0)

/* Monotonic milliseconds. */
int64_t itl_now_ms(void);
/* Sleep for ms milliseconds. */
void itl_sleep_ms(int ms);

/* Raise the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit. */
long itl_raise_nofile(void);

/*
 * A private directory under /tmp made on the first call (mkdtemp; a
 * failure fails the test), the same path on every later call.
 */
const char *itl_tmpdir(void);
/* Remove the directory and the files in it (one level); the next itl_tmpdir makes a new one. */
void itl_tmpdir_cleanup(void);

/* ---- itl_net.c: connections ------------------------------------------------ */

/* Make fd non-blocking; 0 or -errno. */
int itl_set_nonblock(int fd);

/*
 * Connect to host:port (an IPv4 or IPv6 literal) within timeout_ms. The
 * returned fd is non-blocking. rcvbuf > 0 sets SO_RCVBUF before connecting.
 * Returns the fd or -errno.
 */
int itl_connect(const char *host, uint16_t port, int timeout_ms, int rcvbuf);

/* Write all n bytes to a (non-blocking) fd within timeout_ms; 0 or -errno (-ETIMEDOUT). */
int itl_write_all(int fd, const void *buf, size_t n, int timeout_ms);

/*
 * Read exactly n bytes within timeout_ms. Returns 0, -ETIMEDOUT, -EPIPE at
 * EOF before n bytes (*got says how many came), or another -errno.
 */
int itl_read_exact(int fd, void *buf, size_t n, int timeout_ms, size_t *got);

/*
 * Wait for the end of the stream: 0 on a clean EOF with no further data,
 * -ECONNRESET on a reset, -EPROTO when data arrived instead, -ETIMEDOUT.
 */
int itl_expect_eof(int fd, int timeout_ms);

/* A connected non-blocking Unix stream socket to path, within timeout_ms; the fd or -errno. */
int itl_unix_connect(const char *path, int timeout_ms);

/* A TCP port on 127.0.0.1 that was free a moment ago (bound, then closed). */
uint16_t itl_free_port(void);

/*
 * Echo round trip on a connected non-blocking fd: n bytes of the stream
 * seeded by seed, written in chunks of 16 KiB, each read back and checked
 * before the next is written (so neither side must buffer the whole
 * message), within timeout_ms in all. 0, -EBADMSG when an echoed byte
 * differs, or the error of itl_write_all / itl_read_exact.
 */
int itl_echo_roundtrip(int fd, size_t n, uint64_t seed, int timeout_ms);

/* ---- itl_proc.c: processes ------------------------------------------------- */

/* Entries in /proc/PID/fd, or -1. */
int itl_count_fds(pid_t pid);

/*
 * Poll /proc/PID/fd every 20 ms for up to timeout_ms until it holds exactly
 * `want` entries; returns the last count seen.
 */
int itl_wait_fds(pid_t pid, int want, int timeout_ms);

/* VmRSS of PID in KiB, or -1. */
long itl_vmrss_kb(pid_t pid);

/* A weft-echo child process. */
typedef struct itl_server {
    pid_t pid;
    uint16_t port;
    int out_fd; /* read end of its stdout */
} itl_server;

/* How to start a server child (itl_server_spawn). */
typedef struct itl_server_opts {
    const char *const *args;  /* extra arguments (NULL-terminated list), or NULL */
    const char *admin_socket; /* adds --stats-socket PATH, waits for its "admin socket" line */
    const char *ready;        /* also wait for a line holding this, or NULL */
    long nofile;              /* > 0: RLIMIT_NOFILE, soft and hard, of the child */
    int timeout_ms;           /* for the lines it waits for */
} itl_server_opts;

/*
 * Start `path` (weft-echo) with o->args plus "--port 0", and parse the port
 * from its "listening on ...:PORT" line; with o->ready (o->admin_socket),
 * wait for a line holding that text ("admin socket ") too; all within
 * o->timeout_ms. Its stdout stays open in srv->out_fd (what it prints is
 * copied to our stderr), so its last lines never meet a closed pipe. The
 * child dies with the test (PR_SET_PDEATHSIG), and a failing check kills
 * it. Returns 0 or -errno; on failure nothing is left running.
 */
int itl_server_spawn(itl_server *srv, const char *path, const itl_server_opts *o);

/* itl_server_spawn with args only: the port line, within timeout_ms. */
int itl_server_start(itl_server *srv, const char *path, const char *const *args, int timeout_ms);

/* Is the child still running (not exited, not a zombie we reaped)? */
int itl_server_alive(itl_server *srv);

/*
 * SIGTERM the child and wait for it up to timeout_ms. Returns its exit
 * status (0..255), 128+signal if a signal killed it, or -1 if it did not
 * exit in time (it is then killed with SIGKILL and reaped).
 */
int itl_server_stop(itl_server *srv, int timeout_ms);

/*
 * Run argv (argv[0] a path) to its exit within timeout_ms and capture its
 * output: returns its stdout (malloc'd, NUL-terminated), *status gets its
 * wait status, *err_out its stderr (malloc'd) unless err_out is NULL. Not
 * finishing in time fails the test (the child is killed).
 */
char *itl_run(const char *const *argv, int timeout_ms, int *status, char **err_out);

/* ---- itl_admin.c: the control endpoints ------------------------------------ */

/*
 * Send cmd (cmdlen bytes) on a new connection to the admin socket at path,
 * half-close, and read to EOF, within timeout_ms. Returns the answer
 * (malloc'd, NUL-terminated), or NULL with errno set. A reset ends the
 * answer (*reset is set, when reset is not NULL); so does a server that
 * stops reading before cmd is all sent (an oversized line).
 */
char *itl_admin(const char *path, const char *cmd, size_t cmdlen, int timeout_ms, int *reset);

/*
 * Send req on a new TCP connection to 127.0.0.1:port and read to EOF (a
 * reset after the answer ends it too), within timeout_ms. Returns the
 * answer (malloc'd, NUL-terminated), or NULL with errno set.
 */
char *itl_http(uint16_t port, const char *req, int timeout_ms);

/*
 * The integer after "key": in json, inside the object "obj":{...} when obj
 * is not NULL (the first match of each, no real parsing: the server's
 * answers have unique keys per object); -1 if absent.
 */
int64_t itl_json_num(const char *json, const char *obj, const char *key);

/* ---- itl_echo.c: deterministic data, the random echo conversation ---------- */

/* A small deterministic PRNG (splitmix64): the same seed, the same stream. */
typedef struct itl_rng {
    uint64_t s;
} itl_rng;
uint64_t itl_rng_next(itl_rng *r);
/* Uniform in [lo, hi]. */
uint64_t itl_rng_range(itl_rng *r, uint64_t lo, uint64_t hi);
/* Roughly log-uniform in [1, max]: as many small values as large ones. */
uint64_t itl_rng_logsize(itl_rng *r, uint64_t max);

/*
 * A byte stream determined by a seed, to fill on the sending side and
 * verify on the receiving side of a connection.
 */
typedef struct itl_stream {
    itl_rng rng;
    uint64_t word;
    unsigned left; /* bytes of word not yet used */
    uint64_t pos;  /* bytes produced so far */
} itl_stream;
void itl_stream_init(itl_stream *st, uint64_t seed);
void itl_stream_fill(itl_stream *st, void *buf, size_t n);
/* Compare n received bytes with the stream; returns the offset of the first mismatch or -1. */
long itl_stream_verify(itl_stream *st, const void *buf, size_t n);

/*
 * Echo conversation: nconns connections to host:port concurrently, each
 * sending `per_conn` bytes as a sequence of messages of random sizes (1 B
 * to max_msg) written in random non-blocking chunks that split large
 * messages and coalesce small ones, interleaved with reads of random size;
 * every byte echoed is checked in order against the connection's own
 * seeded stream. Fails the test (IT_CHECK) on any error, mismatch, early
 * close or when timeout_ms passes. Returns the total bytes echoed.
 */
uint64_t itl_echo_random(const char *host, uint16_t port, int nconns, uint64_t per_conn,
                         uint64_t max_msg, uint64_t seed, int timeout_ms);

/*
 * Kill pid (SIGKILL) too when the test fails: a process the test did not
 * start itself, such as a reloaded server's successor. 0, or -1 when the
 * table is full.
 */
int itl_track(pid_t pid);

/*
 * Reap pid (a child, or an orphan of a process this one is the subreaper
 * of: PR_SET_CHILD_SUBREAPER) within timeout_ms: its exit status, 128 +
 * the signal that killed it, or -1 when it is still running.
 */
int itl_reap(pid_t pid, int timeout_ms);

/*
 * The service manager's side of sd_notify(3): a Unix datagram socket bound
 * at a fresh path under dir (written to path, for NOTIFY_SOCKET). The fd or
 * -errno.
 */
int itl_notify_open(const char *dir, char *path, size_t n);
/*
 * Wait up to timeout_ms for a datagram with a line that starts with `want`
 * ("READY=1", "MAINPID="); the datagram goes to buf (NUL-ended; earlier
 * ones are discarded). 0 or -ETIMEDOUT.
 */
int itl_notify_wait(int fd, const char *want, char *buf, size_t n, int timeout_ms);

#endif /* WEFT_TESTS_ITLIB_H */
