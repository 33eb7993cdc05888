/*
 * peer_epoll — the wait loop both epoll peers share (see peer_epoll.h).
 */
#include "peer_epoll.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#define MAX_EVENTS 256 /* per epoll_pwait; the rest wait for the next one */

static char g_listener_tag; /* epoll data.ptr of the listener */

int peer_epoll_open(const struct peer_server *s, uint32_t listener_events)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event le = {.events = listener_events, .data.ptr = &g_listener_tag};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s->lfd, &le) != 0) {
        fprintf(stderr, "%s: epoll: %s\n", s->opts.name, strerror(errno));
        return -1;
    }
    return ep;
}

int peer_epoll_run(int ep, const struct peer_server *s, void (*serve)(void *conn, uint32_t events),
                   void (*accept_all)(int lfd))
{
    static struct epoll_event evs[MAX_EVENTS];
    while (!peer_stop) {
        int n = epoll_pwait(ep, evs, MAX_EVENTS, -1, &s->waitmask);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "%s: epoll_pwait: %s\n", s->opts.name, strerror(errno));
            return 1;
        }
        /*
         * Each fd appears at most once per batch and a connection is freed only
         * by its own event, so no event below refers to a freed connection; the
         * listener goes last so a reused fd number cannot meet a stale event.
         */
        bool listener_ready = false;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &g_listener_tag)
                listener_ready = true;
            else
                serve(evs[i].data.ptr, evs[i].events);
        }
        if (listener_ready)
            accept_all(s->lfd);
    }
    return 0;
}
