/*
 * peer_epoll — the wait loop both epoll peers share. peer-epoll-lt and
 * peer-epoll-et differ in how they register a connection and what they do
 * when it is ready (their serve and accept_all), not in how they wait, so
 * the waiting lives here once.
 */
#ifndef PEER_EPOLL_H
#define PEER_EPOLL_H

#include "peer_common.h"

#include <stdint.h>

/*
 * An epoll set (close-on-exec) holding s->lfd with listener_events (EPOLLIN,
 * or EPOLLIN | EPOLLET). Connections go in with their struct as data.ptr.
 * Returns the epoll fd, or -1 after a message.
 */
int peer_epoll_open(const struct peer_server *s, uint32_t listener_events);

/*
 * Waits on ep until peer_stop: serve(conn, events) for each connection event
 * (serve may free conn), then accept_all(lfd) when the listener was ready.
 * Returns 0 once stopped, or 1 after a message when epoll_pwait fails.
 */
int peer_epoll_run(int ep, const struct peer_server *s, void (*serve)(void *conn, uint32_t events),
                   void (*accept_all)(int lfd));

#endif
