/*
 * core/reload.h — a zero-downtime reload: the running process starts its
 * successor and hands it its listening sockets.
 *
 *   predecessor                              successor (same binary, argv)
 *   socketpair(SEQPACKET); fork; exec  ───►  WEFT_HANDOFF_FD=n in its environment
 *   sendmsg "weft-handoff 1 N TAGS"           rld_receive: the N fds enter
 *     + SCM_RIGHTS (TAGS: s or h per fd)
 *        (listeners, admin, metrics)    ───►  core/inherit.h's table; the server
 *                                             takes them by address instead of
 *                                             binding (no listener ever closes)
 *   rld_wait_ready                     ◄───  rld_ready: "ready PID" once started
 *   close the listeners; rld_released  ───►  "released": then READY=1, MAINPID=
 *   drain, exit                               serves alone
 *
 * A successor that exits, closes the socket or is not ready in time is
 * killed and reaped, and the predecessor goes on serving as before.
 */
#ifndef WEFT_CORE_RELOAD_H
#define WEFT_CORE_RELOAD_H

#include <stddef.h>
#include <sys/types.h>

/* How long a successor may take to be ready before it is killed. */
#define RLD_READY_TIMEOUT_MS 30000
/* How long a successor waits for the predecessor to close its listeners. */
#define RLD_RELEASE_TIMEOUT_MS 5000

typedef struct rld_child {
    pid_t pid;
    int fd; /* the predecessor's end of the handoff socket */
} rld_child;

/*
 * Start exe with argv (and this environment, plus WEFT_HANDOFF_FD) and send
 * it the nfds fds; sys[i] says fds[i] came from systemd (the successor
 * enters it as INH_SYSTEMD). 0, or a negative errno with one line in err.
 */
int rld_start(const char *exe, char *const argv[], const int *fds, const char *sys, int nfds,
              rld_child *c, char *err, size_t errlen);

/*
 * Wait up to timeout_ms for the successor's "ready": 0 (then call
 * rld_released once this process no longer accepts), or -1 with one line in
 * err, the handoff socket closed, the successor killed and reaped.
 */
int rld_wait_ready(rld_child *c, int timeout_ms, char *err, size_t errlen);

/* Tell the successor this process has closed its listeners ("released")
 * and close the handoff socket. */
void rld_released(rld_child *c);

/*
 * In a successor (WEFT_HANDOFF_FD set): take the predecessor's fds into
 * the inherit table. How many; 0 when this process is no successor; a
 * negative errno with one line in err. Removes WEFT_HANDOFF_FD from the
 * environment.
 */
int rld_receive(char *err, size_t errlen);

/* A successor is serving: tell the predecessor ("ready PID"), wait (up to
 * RLD_RELEASE_TIMEOUT_MS) until it has closed its listeners, close the
 * handoff socket. No-op in a process that is no successor. */
void rld_ready(void);

/* 1 in a successor that has not called rld_ready yet. */
int rld_is_successor(void);

#endif
