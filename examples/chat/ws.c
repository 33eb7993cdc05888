/*
 * examples/chat/ws.c — RFC 6455 handshake and framing (see ws.h).
 *
 *   0                   1                   2                   3
 *   FIN RSV1-3 opcode(4) | MASK len(7) | [len16 | len64] | [mask(4)] | payload
 *
 * A client's frames are masked (5.3), a server's are not. Control frames
 * (close, ping, pong) carry at most 125 bytes and are never fragmented,
 * but may come between the fragments of a message (5.4).
 */
#include "ws.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/*
 * The value of header `name` in the request head, trimmed; NULL when
 * absent. Header names compare without regard to case (RFC 7230 3.2).
 */
static const char *header(const char *req, size_t n, const char *name, size_t *len)
{
    size_t k = strlen(name);
    const char *end = req + n;
    for (const char *p = memchr(req, '\n', n); p && p + 1 < end;) {
        const char *line = p + 1;
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        if ((size_t)(nl - line) > k && line[k] == ':' && strncasecmp(line, name, k) == 0) {
            const char *v = line + k + 1, *e = nl;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *len = (size_t)(e - v);
            return v;
        }
        p = nl;
    }
    return NULL;
}

/* True when the comma-separated list v[0..n) holds token tok (any case). */
static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t k = strlen(tok);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(v + i, tok, k) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + k == n || v[i + k] == ',' || v[i + k] == ' '))
            return true;
    return false;
}

size_t ws_accept(const char *req, size_t n, char *out)
{
    size_t ul = 0, cl = 0, kl = 0, vl = 0;
    const char *up = header(req, n, "Upgrade", &ul);
    const char *co = header(req, n, "Connection", &cl);
    const char *key = header(req, n, "Sec-WebSocket-Key", &kl);
    const char *ver = header(req, n, "Sec-WebSocket-Version", &vl);
    if (n < 4 || memcmp(req, "GET ", 4) != 0 || !up || !has_token(up, ul, "websocket") || !co ||
        !has_token(co, cl, "upgrade") || !key || kl != 24 || !ver || vl != 2 ||
        memcmp(ver, "13", 2) != 0)
        return 0;
    /* The key is 16 bytes in base64: 24 characters. */
    unsigned char raw[18];
    if (EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
        return 0;
    char buf[24 + sizeof(ws_guid)];
    memcpy(buf, key, 24);
    memcpy(buf + 24, ws_guid, sizeof(ws_guid) - 1);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)buf, 24 + sizeof(ws_guid) - 1, sha);
    char acc[32];
    EVP_EncodeBlock((unsigned char *)acc, sha, SHA_DIGEST_LENGTH);
    return (size_t)snprintf(out, WS_RESPONSE_MAX,
                            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                            acc);
}

int ws_parse(const weft_ring *in, uint64_t max, ws_frame *f)
{
    size_t have = weft_ring_len(in);
    if (have < 2)
        return 0;
    uint8_t b0 = weft_ring_byte(in, 0), b1 = weft_ring_byte(in, 1);
    f->fin = b0 & 0x80;
    f->opcode = b0 & 0x0F;
    if (b0 & 0x70)
        return -WS_PROTOCOL; /* no extension was negotiated */
    if (!(b1 & 0x80))
        return -WS_PROTOCOL; /* a client's frame must be masked */
    bool control = f->opcode & 0x8;
    if (f->opcode != WS_CONT && f->opcode != WS_TEXT && f->opcode != WS_BINARY &&
        f->opcode != WS_CLOSE && f->opcode != WS_PING && f->opcode != WS_PONG)
        return -WS_PROTOCOL;
    uint64_t len = b1 & 0x7F;
    size_t head = 2;
    if (len == 126) {
        if (have < 4)
            return 0;
        len = (uint64_t)weft_ring_byte(in, 2) << 8 | weft_ring_byte(in, 3);
        head = 4;
    } else if (len == 127) {
        if (have < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | weft_ring_byte(in, 2 + (size_t)i);
        head = 10;
        if (len >> 63)
            return -WS_PROTOCOL;
    }
    if (control && (!f->fin || len > 125))
        return -WS_PROTOCOL;
    if (len > max)
        return -WS_TOO_BIG; /* refused on its header: the payload is never buffered */
    if (have < head + 4)
        return 0;
    for (int i = 0; i < 4; i++)
        f->mask[i] = weft_ring_byte(in, head + (size_t)i);
    head += 4;
    f->head = head;
    f->len = len;
    return have >= head + len ? 1 : 0;
}

void ws_take(weft_ring *in, const ws_frame *f, void *dst)
{
    uint8_t *d = dst;
    weft_ring_copyout(in, f->head, d, (size_t)f->len);
    for (size_t i = 0; i < f->len; i++)
        d[i] ^= f->mask[i & 3];
    weft_ring_consume(in, f->head + (size_t)f->len);
}

size_t ws_header(uint8_t *h, int opcode, bool fin, uint64_t len)
{
    h[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

int ws_send(weft_conn *c, int opcode, const void *p, size_t n)
{
    uint8_t h[14];
    int rc = weft_send(c, h, ws_header(h, opcode, true, n));
    if (rc < 0 || n == 0)
        return rc;
    return weft_send(c, p, n);
}

int ws_send_close(weft_conn *c, int code)
{
    uint8_t b[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    return ws_send(c, WS_CLOSE, b, 2);
}
