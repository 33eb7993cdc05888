/*
 * examples/multi/multi.h — the parts of weft-multi that its files share.
 *
 *   weft-multi.c  the program: options, the five listeners, main
 *   echo.c        the echo protocol (base+1) and its counters
 *   sniff.c       the protocol-detecting port (base+4)
 *   admin.c       the line-based admin interface (base+3, loopback)
 *   cross.c       what crosses protocols: chat's /stats, HTTP's /chat/rooms
 *
 * HTTP is examples/http's library (http_server.h), chat examples/chat's
 * (chat.h). Each part keeps its settings in its own file, set once before
 * the server starts and read-only after (one weft-multi per process).
 */
#ifndef WEFT_EXAMPLES_MULTI_H
#define WEFT_EXAMPLES_MULTI_H

#include <stdint.h>

#include "chat.h"
#include "weft/weft.h"

/* The five ports, in base-port order; their listeners carry these names. */
enum { MULTI_HTTP, MULTI_ECHO, MULTI_CHAT, MULTI_ADMIN, MULTI_SNIFF, MULTI_PORTS };
extern const char *const multi_port_name[MULTI_PORTS];

/* The echo handler: every byte back. Counters echo_connections, echo_bytes. */
const weft_handler *multi_echo_handler(void);
/* Register echo's counters on s (not started): 0 or weft_server_add_counter's error. */
int multi_echo_setup(weft_server *s);

/*
 * The detecting handler: an HTTP method and a space first (GET, HEAD,
 * POST, PUT, DELETE, OPTIONS, PATCH) go to HTTP, other bytes to echo, and
 * a client silent for timeout_ms goes to chat, which speaks first.
 * Counters sniff_http, sniff_echo, sniff_chat count the decisions.
 * multi_sniff_setup before the server starts: 0 or an add_counter error.
 */
const weft_handler *multi_sniff_handler(void);
int multi_sniff_setup(weft_server *s, uint32_t timeout_ms);

/*
 * The admin handler (admin.c says the commands). multi_admin_setup before
 * the server starts; multi_admin_limit_set records listener i's rate and
 * burst as set (at setup from the options; later by `limit`), for
 * `listeners` to show: any thread.
 */
const weft_handler *multi_admin_handler(void);
void multi_admin_setup(weft_server *s);
void multi_admin_limit_set(int i, uint32_t rate, uint32_t burst);

/*
 * The cross-protocol parts on s (not started) and chat cs: chat's /stats
 * (the HTTP and echo counters) and HTTP's GET /chat/rooms (every room and
 * its members, as JSON). 0 or a negative errno.
 */
int multi_cross_setup(weft_server *s, chat_server *cs);

#endif
