/*
 * examples/kv/fuzz_resp.c — libFuzzer target for the RESP parser (resp.c).
 *
 * Differential: the input after two control bytes is parsed twice,
 *   A. all at once, as one contiguous segment, and
 *   B. arriving in chunks (size from control byte 1), each call seeing the
 *      unconsumed bytes split into two separately allocated segments at a
 *      point chosen by control byte 0, as a wrapped weft ring would be;
 * and the two transcripts (every command's arguments, then the final NEED
 * or error text) must be identical. Each segment is its own exact-size
 * allocation, so ASan catches a read past either; small limits make the
 * limit paths reachable. In A, each multibulk's argument table is also
 * checked against the bytes themselves (check_mbulk), so an error that
 * both parses would share cannot hide.
 *
 * Build: cmake -DCMAKE_C_COMPILER=clang -DWEFT_FUZZ=ON ... --target fuzz_resp
 * Seeds: fuzz/corpus/kv/
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct transcript {
    char *b;
    size_t len, cap;
} transcript;

static void put(transcript *t, const void *p, size_t n)
{
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n)
            cap *= 2;
        char *nb = realloc(t->b, cap);
        if (!nb)
            abort();
        t->b = nb;
        t->cap = cap;
    }
    memcpy(t->b + t->len, p, n);
    t->len += n;
}

static void put_cmd(transcript *t, const resp_parser *p)
{
    put(t, "C", 1);
    put(t, &p->argc, sizeof(p->argc));
    for (size_t i = 0; i < p->argc; i++) {
        put(t, &p->argv[i].len, sizeof(p->argv[i].len));
        put(t, p->argv[i].p, p->argv[i].len);
    }
}

static const resp_limits LIMITS = {
    .max_bulk = 1000,
    .max_line = 200,
    .max_args = 64,
    .max_cmd = 4096,
};

/*
 * An oracle for the argument table, independent of how the parser built it:
 * in one contiguous segment a multibulk's argument i must point just past
 * its "$L\r\n" header (an empty one may point anywhere), with L its
 * length, and the next header must follow its CRLF.
 */
static void check_mbulk(const char *cmd, const resp_parser *p)
{
    if (cmd[0] != '*' || p->argc == 0)
        return;
    const char *at = (const char *)memchr(cmd, '\n', p->used) + 1;
    for (size_t i = 0; i < p->argc; i++) {
        const char *nl = memchr(at, '\n', (size_t)(cmd + p->used - at));
        char want[32];
        int k = snprintf(want, sizeof(want), "$%zu\r\n", p->argv[i].len);
        if (at[0] != '$' || !nl || nl + 1 - at != k || memcmp(at, want, (size_t)k) != 0 ||
            (p->argv[i].len && p->argv[i].p != nl + 1))
            abort();
        at = nl + 1 + p->argv[i].len + 2;
    }
    if (at != cmd + p->used)
        abort();
}

/* A: the whole stream in one segment. */
static void run_whole(const uint8_t *d, size_t n, transcript *t)
{
    resp_parser p;
    resp_init(&p, &LIMITS);
    size_t off = 0;
    char *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, d, n);
    for (;;) {
        resp_src src = {{copy + off, ""}, {n - off, 0}};
        int r = resp_parse(&p, &src);
        if (r == RESP_CMD) {
            put_cmd(t, &p);
            if (p.used == 0 || p.used > n - off)
                abort(); /* a command must consume something within the input */
            check_mbulk(copy + off, &p);
            off += p.used;
            resp_next(&p);
            continue;
        }
        if (r == RESP_ERR) {
            put(t, "E", 1);
            put(t, p.err, strlen(p.err));
        } else {
            put(t, "N", 1);
        }
        break;
    }
    resp_free(&p);
    free(copy);
}

/* B: chunked arrival, two segments split at a moving point. */
static void run_chunked(const uint8_t *d, size_t n, unsigned split, size_t chunk, transcript *t)
{
    resp_parser p;
    resp_init(&p, &LIMITS);
    size_t off = 0, avail = 0;
    int done = 0;
    while (!done) {
        avail = avail + chunk < n ? avail + chunk : n;
        for (;;) {
            size_t w = avail - off;
            size_t k = w ? (split * 7 + off) % (w + 1) : 0;
            char *s0 = malloc(k ? k : 1), *s1 = malloc(w - k ? w - k : 1);
            if (!s0 || !s1)
                abort();
            memcpy(s0, d + off, k);
            memcpy(s1, d + off + k, w - k);
            resp_src src = {{s0, s1}, {k, w - k}};
            int r = resp_parse(&p, &src);
            if (r == RESP_CMD) {
                put_cmd(t, &p);
                off += p.used;
                resp_next(&p);
            } else if (r == RESP_ERR) {
                put(t, "E", 1);
                put(t, p.err, strlen(p.err));
                done = 1;
            } else if (avail == n) {
                put(t, "N", 1);
                done = 1;
            }
            free(s0);
            free(s1);
            if (r != RESP_CMD)
                break;
        }
    }
    resp_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned split = data[0];
    size_t chunk = (size_t)data[1] % 64 + 1;
    data += 2;
    size -= 2;
    transcript a = {0}, b = {0};
    run_whole(data, size, &a);
    run_chunked(data, size, split, chunk, &b);
    if (a.len != b.len || memcmp(a.b, b.b, a.len) != 0) {
        fprintf(stderr, "fuzz_resp: whole and chunked parses differ (chunk %zu, split %u)\n", chunk,
                split);
        abort();
    }
    /* The integer parser against strtoll on the same bytes. */
    if (size <= 24) {
        char buf[32];
        memcpy(buf, data, size);
        buf[size] = '\0';
        long long v;
        if (strlen(buf) == size && resp_strtoll(buf, size, &v) == 0) {
            char back[32];
            snprintf(back, sizeof(back), "%lld", v);
            if (strcmp(back, buf) != 0)
                abort(); /* accepted a non-canonical number */
        }
    }
    free(a.b);
    free(b.b);
    return 0;
}
