/*
 * examples/http/http_server.h — weft-http's HTTP/1.1 handler as a library:
 * the answers, the connection state, keep-alive and pipelining, and routes
 * an embedding program adds (weft-http's main is one user, weft-multi
 * another). http_server.c explains the behaviour.
 *
 *     http_server_setup(s, HTTP_MAX_HEAD, HTTP_MAX_BODY);   // before start
 *     http_server_route("/chat/rooms", rooms, ud);          // optional
 *     listener or server handler: http_handler()
 *
 * The state is the process's (one HTTP service per process): the limits,
 * the prebuilt answers, the counters' ids and the routes, all set before
 * the server starts and read-only after.
 */
#ifndef WEFT_EXAMPLES_HTTP_SERVER_H
#define WEFT_EXAMPLES_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "weft/weft.h"

/* Defaults of the two limits (weft-http's --max-head and --max-body). */
#define HTTP_MAX_HEAD 8192u
#define HTTP_MAX_BODY 1048576u

/* Routes an embedding program may add (beside "/" and "/stats"). */
#define HTTP_MAX_ROUTES 8

/*
 * Prepare the handler for server s (not started): the fixed answers, for
 * heads of at most max_head bytes (64 to 1 MiB) and bodies of at most
 * max_body, and the counters http_2xx, http_4xx, http_5xx (answers by
 * status class). Call once per process. 0, -EINVAL or weft_server_add_counter's error.
 */
int http_server_setup(weft_server *s, uint32_t max_head, uint32_t max_body);

/* The HTTP handler: for a listener, the server, or weft_conn_set_handler. */
const weft_handler *http_handler(void);

/*
 * A request a route answers: it names the connection and how the answer
 * is framed (keep-alive or close, HEAD). Valid until http_respond.
 */
typedef struct http_req http_req;

/*
 * A route's function, called on the connection's worker for a GET or HEAD
 * of its path (other methods get 405). It either answers before returning
 * (http_respond) or takes r and answers later: until then the connection
 * answers nothing else (pipelined requests wait in the input ring, under
 * the input cap and the input stall), and the route must call http_respond
 * exactly once.
 */
typedef void (*http_route_fn)(http_req *r, void *ud);

/*
 * Add a route for `path` (an exact path of at most 32 bytes, without a
 * query; "/" and "/stats" are taken). Before the server starts. 0, -EINVAL
 * or -ENOSPC (HTTP_MAX_ROUTES).
 */
int http_server_route(const char *path, http_route_fn fn, void *ud);

/*
 * Answer r with `status` (200, 404, 500 or 503) and a body of len bytes of
 * type ctype (copied), then go on with the connection's next request, and
 * free r. Call it on the connection's worker, the one http_req_worker
 * names. When the connection closed in the meantime nothing is sent and r
 * is only freed: then, once that worker has exited (weft_post returned
 * -ESHUTDOWN), every connection it held has closed and any thread may call
 * it. Returns 0, or -EPIPE when the connection is gone (or went while
 * answering).
 */
int http_respond(http_req *r, int status, const char *ctype, const void *body, size_t len);

/* The worker r's connection belongs to. */
int http_req_worker(const http_req *r);

#endif
