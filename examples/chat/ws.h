/*
 * examples/chat/ws.h — RFC 6455 WebSocket for weft servers: the opening
 * handshake and the framing, as functions over weft's rings with no state
 * of their own, so any weft handler can speak WebSocket (weft-chat does,
 * on its HTTP listener). No allocation: a frame is parsed where it lies in
 * the input ring and unmasked into the caller's buffer.
 *
 * What the caller keeps per connection is only what a message in several
 * fragments needs (ws_msg). Limits are the caller's: a frame or message
 * over its maximum is refused with close code 1009.
 */
#ifndef WEFT_CHAT_WS_H
#define WEFT_CHAT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/weft.h"

enum {
    WS_CONT = 0x0,
    WS_TEXT = 0x1,
    WS_BINARY = 0x2,
    WS_CLOSE = 0x8,
    WS_PING = 0x9,
    WS_PONG = 0xA,
};

/* Close codes (RFC 6455 7.4.1) this module sends. */
enum {
    WS_NORMAL = 1000,
    WS_GOING_AWAY = 1001,
    WS_PROTOCOL = 1002,
    WS_UNSUPPORTED = 1003,
    WS_BAD_DATA = 1007, /* a text message that is not UTF-8 */
    WS_POLICY = 1008,
    WS_TOO_BIG = 1009,
};

/*
 * The response to an HTTP/1.1 upgrade request req[0..n) (the request head,
 * through its empty line) into out (at least WS_RESPONSE_MAX bytes): "101
 * Switching Protocols" with the Sec-WebSocket-Accept of its key (SHA-1 and
 * base64 from OpenSSL's libcrypto). Returns its length, or 0 when req is
 * not a valid upgrade (no GET, no "Upgrade: websocket", no "Connection:
 * upgrade", no 16-byte key, a version other than 13): answer 400 then.
 */
#define WS_RESPONSE_MAX 256
size_t ws_accept(const char *req, size_t n, char *out);

/* A frame header as parsed from a ring. */
typedef struct ws_frame {
    bool fin;
    int opcode;
    uint64_t len; /* payload bytes */
    size_t head;  /* header bytes (2 to 14) */
    uint8_t mask[4];
} ws_frame;

/*
 * Parse the frame at the front of in (a client's: it must be masked).
 * Returns 1 with *f filled when the whole frame (header and payload) is
 * in the ring, 0 when more bytes are needed, or a negative close code:
 * -WS_PROTOCOL (reserved bits, an unknown opcode, an unmasked frame, a
 * fragmented or long control frame), -WS_TOO_BIG (a payload over max).
 */
int ws_parse(const weft_ring *in, uint64_t max, ws_frame *f);

/* Copy frame f's payload out of in, unmasked, into dst; consume the frame. */
void ws_take(weft_ring *in, const ws_frame *f, void *dst);

/* The header of an unmasked server frame into h (14 bytes); returns its length. */
size_t ws_header(uint8_t *h, int opcode, bool fin, uint64_t len);

/* Send a whole frame on c (two weft_sends). Returns as weft_send. */
int ws_send(weft_conn *c, int opcode, const void *p, size_t n);

/* Send a close frame with code (and no reason) on c. */
int ws_send_close(weft_conn *c, int code);

/* A text message must be UTF-8: check it with utf8_valid (utf8.h) and refuse with WS_BAD_DATA. */

#endif
