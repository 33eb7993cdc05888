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

#endif
