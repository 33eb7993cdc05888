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
 * Input that may wait in the ring while a command is in flight, beyond one
 * max line. A policy: a client may pipeline this much behind /nick or /who;
 * at more, weft closes it (WEFT_CLOSE_INPUT_CAP). The server's input_cap
 * is max_line + CHAT_HELD_EXTRA.
 */
#define CHAT_HELD_EXTRA (64u * 1024)

/*
 * The chat's state, empty until attached: it must be the weft server's
 * user data (weft_server_userdata). NULL on ENOMEM.
 */
chat_server *chat_server_create(void);

/* The chat handler: the callbacks of a weft server whose user data is cs. */
const weft_handler *chat_handler(void);

/*
 * Prepare cs for the (not yet started) weft server s, for lines of at most
 * max_line bytes, '\n' included (a longer one gets an error and a close;
 * s's input_cap must be max_line + CHAT_HELD_EXTRA): per-worker state and
 * the chat's counters. 0 or -ENOMEM.
 */
int chat_server_attach(chat_server *cs, weft_server *s, uint32_t max_line);

/* Free the chat's state; the weft server must have stopped (or never run). */
void chat_server_free(chat_server *cs);

#endif
