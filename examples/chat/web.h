/*
 * examples/chat/web.h — weft-chat's HTTP listener: the browser client's
 * files (compiled in from web/) and the WebSocket upgrade that hands the
 * connection to the chat (which then speaks RFC 6455 frames, ws.h).
 */
#ifndef WEFT_CHAT_WEB_H
#define WEFT_CHAT_WEB_H

#include <stddef.h>

#include "weft/weft.h"

typedef struct web_asset {
    const char *path, *type; /* type without its charset: UTF-8 for all */
    const unsigned char *data;
    size_t len;
} web_asset;

/* The client's files, ended by an entry whose path is NULL (web_assets.c, generated). */
extern const web_asset web_assets[];

/* The longest request head the listener reads: a policy (431 beyond it). */
#define WEB_HEAD_MAX 8192

/*
 * The HTTP listener's handler: GET of a file of web_assets ("/" is
 * /index.html), GET /ws with an upgrade to WebSocket (the connection goes
 * to chat_handler(), marked as a WebSocket client), 404 and 405 otherwise,
 * keep-alive. The server's user data is the chat_server.
 */
const weft_handler *web_handler(void);

/* The origin user data that marks a chat connection as a WebSocket one. */
void *web_ws_origin(void);

#endif
