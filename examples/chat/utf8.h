/*
 * examples/chat/utf8.h — UTF-8 checking (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), for the JSON output and WebSocket
 * text frames.
 */
#ifndef WEFT_CHAT_UTF8_H
#define WEFT_CHAT_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The length of the valid sequence at s[0..n) (n > 0), or 0 when it is none. */
size_t utf8_len(const unsigned char *s, size_t n);
/* True when s[0..n) is all valid UTF-8. */
bool utf8_valid(const void *s, size_t n);

#endif
