/*
 * core/acceptor.h — the acceptor thread.
 */
#ifndef WEFT_CORE_ACCEPTOR_H
#define WEFT_CORE_ACCEPTOR_H

struct weft_server;

/*
 * The acceptor thread's body (arg: the server). Accepts in batches, applies
 * the max-connections gate and hands each connection round-robin to a
 * worker's inbox; on weft_server_stop it closes the listener, tells the
 * workers to drain and returns.
 */
void *acc_main(void *arg);

/* Reload every TLS listener's files into its next context (server.c);
 * 0 or the first error, each one logged. */
int srv_tls_reload_all(struct weft_server *s);
/*
 * Stop accepting without stopping the server (a reload: the successor
 * accepts now): the acceptor closes its listening fds, and the workers keep
 * serving the connections they hold until weft_server_stop. Any thread,
 * after weft_server_start; async-signal-safe (an atomic store and a write).
 */
void acc_release(struct weft_server *s);

/* 1 once the acceptor has closed its listeners after acc_release. */
int acc_released(const struct weft_server *s);

/*
 * The listening fds (at most max) into fds, and for each whether systemd
 * passed it (1) or not (0) into from_systemd: how many. Before acc_release.
 */
int acc_listen_fds(const struct weft_server *s, int *fds, char *from_systemd, int max);

#endif
