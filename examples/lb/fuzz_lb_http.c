/*
 * fuzz_lb_http — libFuzzer target for weft-lb's parsers (http_msg.c).
 *
 * The first input byte picks what the rest is: a request head, a response
 * head, or a chunked body, and where a chunked body is cut. Checked:
 *   - a head (up to its empty line, as weft-lb finds it) parses or fails
 *     with one of the statuses the header documents; every offset it
 *     returns lies inside the buffer; a request never has both a length
 *     and chunked framing (no smuggling through the parser);
 *   - a chunked body gives the same result and length whether it is fed
 *     whole or cut at the chosen point, and never takes more than given.
 * Each buffer is a copy of its exact size, so ASan sees a read past it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_msg.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

/* The head's length through its first empty line after a non-empty one, or 0. */
static size_t find_end(const uint8_t *b, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (b[i] == '\n' && (b[i - 1] == '\n' || (i >= 2 && b[i - 1] == '\r' && b[i - 2] == '\n')))
            return i + 1;
    return 0;
}

static void fuzz_head(const uint8_t *data, size_t n, int is_request)
{
    size_t len = find_end(data, n);
    if (len == 0 || data[0] == '\r' || data[0] == '\n')
        return;
    char *b = malloc(len);
    memcpy(b, data, len);
    static http_head h;
    int rc = http_head_parse(b, len, is_request, 1 + data[0] % 64, &h);
    if (rc != 0) {
        if (is_request)
            check(h.status == 400 || h.status == 431 || h.status == 501 || h.status == 505);
        else
            check(h.status == 502);
        free(b);
        return;
    }
    check(h.line_end <= len && h.nhdrs <= 64);
    check(h.target + h.target_len <= len && h.method_len < len);
    for (int i = 0; i < h.nhdrs; i++) {
        const http_hdr *x = &h.hdrs[i];
        check(x->name + x->name_len <= len && x->value + x->value_len <= len);
        check(x->line + x->line_len <= len && x->name_len > 0);
    }
    if (is_request) {
        check(!((h.flags & HTTP_MSG_LENGTH) && h.body == HTTP_BODY_CHUNKED));
        check(h.body != HTTP_BODY_CLOSE);
    } else {
        check(h.status >= 100 && h.status <= 999);
        int body = http_response_body(&h, 0);
        check(body >= HTTP_BODY_NONE && body <= HTTP_BODY_CLOSE);
    }
    free(b);
}

static int feed(http_chunked *c, const uint8_t *data, size_t n, size_t *used)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, data, n);
    int rc = http_chunked_feed(c, b, n, used);
    free(b);
    check(*used <= n);
    check(rc != HTTP_CHUNKED_MORE || *used == n);
    return rc;
}

static void fuzz_chunked(const uint8_t *data, size_t n, size_t cut)
{
    http_chunked whole, parts;
    size_t u1, u2 = 0, u3 = 0;
    http_chunked_init(&whole);
    int r1 = feed(&whole, data, n, &u1);
    http_chunked_init(&parts);
    if (cut > n)
        cut = n;
    int r2 = feed(&parts, data, cut, &u2);
    if (r2 == HTTP_CHUNKED_MORE)
        r2 = feed(&parts, data + cut, n - cut, &u3);
    check(r1 == r2 && u1 == u2 + u3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    switch (sel % 3) {
    case 0:
        fuzz_head(data, size, 1);
        break;
    case 1:
        fuzz_head(data, size, 0);
        break;
    default:
        fuzz_chunked(data, size, (size_t)(sel / 3) * 7);
        break;
    }
    return 0;
}
