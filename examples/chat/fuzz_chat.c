/*
 * fuzz_chat — libFuzzer target for the weft-chat parsers, the line
 * protocol (proto.c) and the JSON one (jproto.c), compiled directly. Each
 * input is split at '\n' like the server does, and each line copied into a
 * buffer of its exact size, so a read past the line (not only past the
 * input) is an ASan error; every parsed field must lie inside its line and
 * names must be valid; an accepted JSON command holds valid, bounded
 * fields; chat_json_str of any bytes stays inside its stated bound.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jproto.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_in(const char *line, size_t len, const char *p, size_t n)
{
    assert(p >= line && p + n <= line + len);
}

#define MAX_DATA 4096

static void json_line(const char *p, size_t len)
{
    chat_cmd c;
    void *keep;
    chat_json_parse(p, len, MAX_DATA, &c, &keep);
    if (c.kind == CHAT_BAD) {
        assert(c.err && c.err[0]);
    } else {
        if (c.name_len)
            assert(chat_valid_name(c.name, c.name_len));
        if (c.kind == CHAT_TEXT || c.kind == CHAT_MSG)
            assert(c.text_len > 0 && c.text_len <= MAX_DATA && !memchr(c.text, '\n', c.text_len));
        if (c.kind == CHAT_LOGIN || c.kind == CHAT_REGISTER)
            assert(c.text_len > 0 && c.text_len <= CHAT_PASS_MAX);
    }
    chat_json_free(keep);
    char *o = malloc(CHAT_JSON_STR_MAX(len));
    assert(o);
    size_t k = chat_json_str(o, p, len);
    assert(k <= CHAT_JSON_STR_MAX(len) && o[0] == '"' && o[k - 1] == '"');
    free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *end = in + size;
    while (in < end) {
        const char *nl = memchr(in, '\n', (size_t)(end - in));
        size_t len = nl ? (size_t)(nl - in) : (size_t)(end - in);
        char *p = malloc(len ? len : 1);
        assert(p);
        memcpy(p, in, len);
        chat_cmd c;
        chat_parse(p, len, &c);
        switch (c.kind) {
        case CHAT_TEXT:
            assert(c.text_len > 0);
            check_in(p, len, c.text, c.text_len);
            assert(!memchr(c.text, '\n', c.text_len));
            break;
        case CHAT_MSG:
            assert(c.text_len > 0);
            check_in(p, len, c.text, c.text_len);
            /* fall through */
        case CHAT_NICK:
        case CHAT_JOIN:
            check_in(p, len, c.name, c.name_len);
            assert(chat_valid_name(c.name, c.name_len));
            break;
        case CHAT_BAD:
            assert(c.err && c.err[0]);
            check_in(p, len, c.word, c.word_len);
            break;
        default:
            break;
        }
        json_line(p, len);
        free(p);
        in += len + 1;
    }
    return 0;
}
