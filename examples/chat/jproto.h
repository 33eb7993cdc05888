/*
 * examples/chat/jproto.h — weft-chat's JSON protocol: one JSON object per
 * line, parsed with jansson into the same chat_cmd as the line protocol,
 * and the JSON text of what the server sends. Pure functions with no weft
 * dependency (the fuzzer drives them as the server does).
 *
 * Why jansson: it is Debian's (libjansson-dev, already weft-stat's), it
 * checks UTF-8 and refuses "\u0000" in strings by default, it can refuse
 * duplicate keys, and it parses from a buffer with a length.
 */
#ifndef WEFT_CHAT_JPROTO_H
#define WEFT_CHAT_JPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Nesting a client's object may have: an object of scalars is depth 1. */
#define CHAT_JSON_DEPTH 2

/*
 * Parse one line (without its '\n') into *out. Every field is checked:
 * "type" names the command; "user", "room" are names; "password" 1 to
 * CHAT_PASS_MAX bytes; "data" 1 to max_data bytes without a control
 * character but tab; "count" 1 to CHAT_HISTORY_MAX; any other field, a
 * duplicate, a wrong type, a deeper nesting than CHAT_JSON_DEPTH or bad
 * JSON is CHAT_BAD with out->err. The pointers of *out point into *keep,
 * which the caller frees with chat_json_free after using *out (also after
 * CHAT_BAD: NULL is fine).
 */
void chat_json_parse(const char *line, size_t len, size_t max_data, chat_cmd *out, void **keep);
void chat_json_free(void *keep);

/*
 * s[0..n) as a JSON string with its quotes, into o, which has room for
 * 3 * n + 2 bytes: invalid UTF-8 and control characters but tab become
 * U+FFFD (so a relayed line from a line-protocol client is valid JSON).
 * Returns the bytes written.
 */
size_t chat_json_str(char *o, const char *s, size_t n);

/* The most bytes chat_json_str writes for n bytes. */
#define CHAT_JSON_STR_MAX(n) (3 * (n) + 2)

#endif
