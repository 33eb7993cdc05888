/*
 * fuzz_http — libFuzzer target for the request-head parser (http_parse.c).
 *
 * The first input byte picks the head limit and how the rest is cut into
 * chunks; the rest is a stream of pipelined requests. The stream is parsed
 * twice, once whole and once chunk by chunk (each chunk in its own buffer
 * of its exact size, so ASan sees any read past it), the way weft-http does
 * it: on DONE the head is taken, a Content-Length body is skipped, and the
 * next head starts. Checked on every call and every request:
 *   - consumed <= length; AGAIN takes everything; a DONE head ends in LF;
 *   - nread never passes the limit; 431 only at the limit;
 *   - ERROR carries 400, 431 or 505 and sticks until the next init;
 *   - a known method is the bytes the head starts with;
 *   - cutting the stream anywhere changes no result (split invariance).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#define MAX_REQS 512

/* What one request parsed to: compared between the two runs. */
typedef struct result {
    int rc;
    uint32_t nread;
    uint16_t status;
    uint8_t method, version, flags, path_len;
    char path[HTTP_PATH_KEEP];
    uint64_t content_length;
} result;

typedef struct run {
    result r[MAX_REQS];
    int n;
} run;

static void check(int ok)
{
    if (!ok)
        abort();
}

static void record(run *out, const http_parser *p, int rc)
{
    result *r = &out->r[out->n++];
    memset(r, 0, sizeof(*r));
    r->rc = rc;
    r->nread = p->nread;
    r->status = p->status;
    if (rc == HTTP_PARSE_DONE) {
        r->method = p->method;
        r->version = p->version;
        r->flags = p->flags;
        r->path_len = p->path_len;
        memcpy(r->path, p->path, p->path_len);
        r->content_length = p->content_length;
    }
}

/* Parse data[0, size) cut at the given chunk ends (the last is size). */
static void parse_stream(const uint8_t *data, size_t size, const size_t *cuts, int ncuts,
                         uint32_t max_head, run *out)
{
    http_parser p;
    http_parser_init(&p, max_head);
    uint64_t body_left = 0;
    const uint8_t *head_start = data; /* where the current head began (whole stream) */
    size_t start = 0;
    out->n = 0;
    for (int k = 0; k < ncuts && out->n < MAX_REQS; k++) {
        size_t len = cuts[k] - start;
        uint8_t *chunk = malloc(len ? len : 1); /* exact size: ASan catches overreads */
        memcpy(chunk, data + start, len);
        size_t off = 0;
        while (out->n < MAX_REQS) {
            if (body_left > 0) {
                size_t n = len - off < body_left ? len - off : (size_t)body_left;
                off += n;
                body_left -= n;
                if (body_left > 0)
                    break;
                head_start = data + start + off;
            }
            if (off == len)
                break;
            size_t used;
            int rc = http_parse(&p, (const char *)chunk + off, len - off, &used);
            check(used <= len - off);
            check(p.nread <= max_head);
            if (rc == HTTP_PARSE_AGAIN) {
                check(used == len - off);
                off = len;
                break;
            }
            off += used;
            record(out, &p, rc);
            size_t again;
            check(http_parse(&p, (const char *)chunk + off, len - off, &again) == rc && again == 0);
            if (rc == HTTP_PARSE_ERROR) {
                check(p.status == 400 || p.status == 431 || p.status == 505);
                check(p.status != 431 || p.nread == max_head);
                free(chunk);
                return; /* the server closes here */
            }
            check(used > 0 && chunk[off - 1] == '\n');
            check(p.version == 10 || p.version == 11);
            check(p.method > HTTP_M_NONE && p.method <= HTTP_M_OTHER);
            check(p.path_len <= HTTP_PATH_KEEP);
            if (p.method != HTTP_M_OTHER) {
                const uint8_t *m = head_start;
                while (*m == '\r' || *m == '\n')
                    m++;
                const char *name = http_method_name((http_method)p.method);
                check(memcmp(m, name, strlen(name)) == 0 && m[strlen(name)] == ' ');
            }
            if (p.flags & HTTP_F_CONTENT_LENGTH)
                body_left = p.content_length;
            head_start = data + start + off;
            http_parser_init(&p, max_head);
        }
        free(chunk);
        start = cuts[k];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    /* A small limit half of the time, so 431 is reached often. */
    uint32_t max_head = (mode & 0x80) ? 16 + (uint32_t)(mode & 0x3f) * 4 : 8192;
    static size_t cuts[1 << 16];
    static run whole, pieces;
    size_t one = size;
    parse_stream(data, size, &one, 1, max_head, &whole);

    /* Chunks of 1 to 2^(mode&7) bytes from a generator seeded by the input. */
    uint32_t x = 2463534242u ^ (uint32_t)mode ^ (uint32_t)size * 2654435761u;
    size_t maxc = (size_t)1 << (mode & 7), at = 0;
    int n = 0;
    while (at < size && n < (int)(sizeof(cuts) / sizeof(cuts[0])) - 1) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        at += 1 + x % maxc;
        cuts[n++] = at < size ? at : size;
    }
    if (n == 0 || cuts[n - 1] != size)
        cuts[n++] = size;
    parse_stream(data, size, cuts, n, max_head, &pieces);

    check(whole.n == pieces.n);
    for (int i = 0; i < whole.n; i++)
        check(memcmp(&whole.r[i], &pieces.r[i], sizeof(result)) == 0);
    return 0;
}
