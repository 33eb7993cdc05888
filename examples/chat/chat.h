/*
 * examples/chat/chat.h — the weft-chat server: rooms, nicks and private
 * messages over weft's public API. chat.c explains the design.
 */
#ifndef WEFT_CHAT_CHAT_H
#define WEFT_CHAT_CHAT_H

#include <stdint.h>

#include "weft/weft.h"

typedef struct chat_server chat_server;

/*
 * Create the weft server for cfg with the chat handler and per-worker
 * state. A line longer than max_line bytes, '\n' included, is refused (an
 * error, then a close); input_cap is set to max_line + 64 KiB, what a
 * client may pipeline behind a /nick or /who whose answer is in flight. sndbuf > 0 sets SO_SNDBUF
 * on every connection (0 leaves the kernel's autotuning). Returns 0 or a negative errno (weft's,
 * e.g. -EADDRINUSE). Start it with weft_server_start(chat_weft(cs)).
 */
int chat_server_new(const weft_config *cfg, uint32_t max_line, int sndbuf, chat_server **out);

/* The underlying weft server (start, stop, wait, stats). */
weft_server *chat_weft(chat_server *cs);

/* Free everything; the server must not have started or must have finished weft_server_wait. */
void chat_server_free(chat_server *cs);

#endif
