/*
 * core/admin.h — the admin Unix socket and its command protocol.
 *
 * Protocol (one command a line, answers in order; parsed by
 * stats/admin_proto.c):
 *   stats         "name value" lines
 *   stats json    one JSON object on one line
 *   workers       a table, a row per worker
 *   metrics       Prometheus text exposition format
 *   help          this list (the program's commands too: weft_server_add_command)
 *   quit          close after the answers so far (scripts: "stats json\nquit\n")
 * A line of ADM_LINE_MAX bytes or more, or an unknown command, gets one
 * "error: ..." line. Answers carry no terminator: read until EOF after quit.
 *
 * The socket has ADM_MAX_CLIENTS client slots of its own; a client that
 * sends nothing for ADM_IDLE_NS is closed (the stall limit is the
 * endpoint's, core/endpoint.h).
 */
#ifndef WEFT_CORE_ADMIN_H
#define WEFT_CORE_ADMIN_H

#include <stddef.h>

#include "core/endpoint.h"

struct weft_server;

#define ADM_LINE_MAX    1024                  /* a command line, with its newline */
#define ADM_MAX_CLIENTS 128                   /* admin clients at once */
#define ADM_IDLE_NS     (300ull * 1000000000) /* no command at all */

/* The admin protocol's ctx: the snapshots, and the server (its commands). */
typedef struct admin_ctx {
    struct st_sampler *sampler;
    struct weft_server *srv;
} admin_ctx;

/* The admin protocol; its ctx is an admin_ctx. */
extern const ep_proto admin_proto;

/*
 * Bind the admin socket the config names (cfg.admin_socket; NULL means
 * /tmp/weft-PORT.sock, "" none) with mode 0600, and store its path in
 * path[0..size). A socket file left by a dead server (connect is refused)
 * is replaced; one that answers is a live server's, and a path that is not
 * a socket is never removed. Returns 0 with *fd the listener, or with *fd
 * -1 when there is none (off, or the default path failed: logged as a
 * warning); a negative errno when a configured path fails (logged).
 */
int admin_listen(struct weft_server *s, char *path, size_t size, int *fd);

#endif
