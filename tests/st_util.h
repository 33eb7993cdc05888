/*
 * tests/st_util.h — helpers shared by the statistics tests (tests/st_*.c).
 *
 * Client-side plumbing only: starting weft-echo as a child process and
 * stopping it by PID, TCP echo round trips, admin-socket exchanges read to
 * EOF, and reading numbers out of the server's JSON answer. Every wait is
 * bounded in time. Failures go through ST_CHECK, which prints the place and
 * the condition, kills (by PID) the children this test started, and exits 1.
 */
#ifndef WEFT_TESTS_ST_UTIL_H
#define WEFT_TESTS_ST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void st_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define ST_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            st_fail(__FILE__, __LINE__, "check failed: " #cond ": " __VA_ARGS__);                  \
    } while (0)

int64_t st_now_ms(void);
void st_sleep_ms(int ms);

/* A fresh private directory under /tmp (removed by st_cleanup_dir). */
const char *st_tmpdir(void);
void st_cleanup_dir(void);

/*
 * Start weft-echo on 127.0.0.1 port 0 with --stats-socket sock and the given
 * extra arguments (NULL-terminated list); waits (bounded) until it printed
 * its port and admin socket. Returns the PID; *port gets the TCP port.
 */
pid_t st_start_echo(const char *echo, const char *sock, uint16_t *port, const char *const *extra);

/* The same with RLIMIT_NOFILE (soft and hard) set to nofile in the child. */
pid_t st_start_echo_nofile(const char *echo, const char *sock, uint16_t *port,
                           const char *const *extra, long nofile);

/* SIGTERM pid and wait up to timeout_ms; returns its wait status, or -1 on timeout (then killed).
 */
int st_stop(pid_t pid, int timeout_ms);

/* A blocking TCP connection to 127.0.0.1:port with 10 s send/receive timeouts. */
int st_tcp_connect(uint16_t port);

/* Send n bytes of a pattern seeded by seed and read them back; 0 or -1. */
int st_echo_roundtrip(int fd, size_t n, unsigned seed);

/*
 * Send cmd on a new connection to the admin socket and read to EOF (within
 * timeout_ms). Returns a malloc'd NUL-terminated answer, or NULL with errno
 * set. A reset after some bytes ends the answer (*reset set when not NULL).
 */
char *st_admin(const char *sock, const char *cmd, size_t cmdlen, int timeout_ms, int *reset);

/*
 * Send req on a new TCP connection to 127.0.0.1:port and read to EOF (a
 * reset after the answer ends it too), within timeout_ms. Returns the
 * malloc'd NUL-terminated answer, or NULL with errno set.
 */
char *st_http(uint16_t port, const char *req, int timeout_ms);

/* A TCP port on 127.0.0.1 that was free a moment ago (bound, then closed). */
uint16_t st_free_port(void);

/* A connected blocking Unix socket to sock, or -errno. */
int st_unix_connect(const char *sock);

/* The number after "key": in the object "obj":{...} of json (first match); -1 if absent. */
int64_t st_json_num(const char *json, const char *obj, const char *key);

/* Resident set size of this process in bytes. */
long st_rss_bytes(void);

/* Run a command (argv) and capture its stdout (malloc'd) and exit status, bounded in time. */
char *st_run(const char *const *argv, int timeout_ms, int *status, char **err_out);

#endif
