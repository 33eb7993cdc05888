/*
 * core/listener.h — the listening socket.
 */
#ifndef WEFT_CORE_LISTENER_H
#define WEFT_CORE_LISTENER_H

#include <stdint.h>

/*
 * Create a non-blocking, close-on-exec TCP socket bound to addr:port (an IPv4
 * or IPv6 literal; "::" also accepts IPv4 where the system allows) and listen
 * with the given backlog. Stores the bound port in *bound. Returns the fd or
 * a negative errno (-EINVAL for an address that is not a literal).
 */
int lsn_open(const char *addr, uint16_t port, int backlog, uint16_t *bound);

#endif
