/*
 * core/inherit.h — listening sockets this process did not open itself.
 *
 * Two ways a socket arrives already bound and listening:
 *   - systemd socket activation: LISTEN_PID is this process and LISTEN_FDS
 *     sockets start at fd 3 (sd_listen_fds(3); LISTEN_FDNAMES names them);
 *   - a reload: the predecessor passes its listeners, its admin socket and
 *     its metrics listener over a Unix socket with SCM_RIGHTS (core/reload.c).
 * Both land in one process-wide table. Whatever opens a listening socket
 * (core/listener.c, core/admin.c) first asks the table for one bound to
 * the same address (inh_take) and binds a new one only when there is none,
 * so no listener is ever closed and re-bound across a restart.
 *
 * Every call takes the table's lock: any thread.
 */
#ifndef WEFT_CORE_INHERIT_H
#define WEFT_CORE_INHERIT_H

#include <stddef.h>
#include <sys/socket.h>

enum { INH_SYSTEMD = 1, INH_HANDOFF = 2 };

/* The most sockets one process takes over (SCM_MAX_FD is 253). */
#define INH_MAX 64

/*
 * Take over systemd's sockets when LISTEN_PID names this process: each is
 * made close-on-exec and entered in the table; LISTEN_PID, LISTEN_FDS and
 * LISTEN_FDNAMES are removed from the environment (a child must not take
 * them for its own). Returns how many, or -EINVAL (one line in err) for a
 * malformed variable or an fd that is not a listening stream socket.
 */
int inh_from_systemd(char *err, size_t errlen);

/*
 * Enter fd (a listening stream socket, now this table's) with its origin
 * and an optional name; 0, -ENOSPC when the table is full, or -ENOTSOCK
 * when fd is not a listening stream socket (then fd is closed).
 */
int inh_add(int fd, int origin, const char *name);

/*
 * The fd of a table entry bound to sa (same family and address; the same
 * port, or any port when sa's is 0; a Unix socket: the same path), now the
 * caller's, or -1. *origin (when not NULL) says where it came from.
 */
int inh_take(const struct sockaddr *sa, socklen_t len, int *origin);

/*
 * The spec ("127.0.0.1:8080,name=web", "unix:/run/x.sock") of the i-th
 * entry not taken yet that came from systemd, into buf: 0, or -ENOENT past
 * the last. For the sockets no option names: they become listeners too.
 */
int inh_systemd_spec(int i, char *buf, size_t n);

/* Close every entry not taken (a reload whose new config dropped them). */
void inh_close_rest(void);

/*
 * The sockets of this process were handed to a successor: from now on no
 * Unix socket file is removed at close (the successor listens there).
 */
void inh_set_handed_over(void);
int inh_handed_over(void);

#endif
