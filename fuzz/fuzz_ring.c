/*
 * fuzz_ring — sequences of ring operations against a plain-array model.
 *
 * Each input byte pair is an operation and its argument. The ring's storage
 * is malloc'd at its exact capacity, so any access outside it is an ASan
 * error; every result is compared with the model and any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buffers/ring.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t cap = 16u << (data[0] % 6); /* 16 .. 512 */
    weft_ring r;
    memset(&r, 0, sizeof(r));
    char *buf = malloc(cap);
    ring_attach(&r, buf, cap);
    /* Start the counters near the 2^32 wrap now and then. */
    if (data[0] & 0x80)
        r.head = r.tail = UINT32_MAX - 7;
    uint8_t *model = malloc(1u << 20);
    size_t mlen = 0;
    uint8_t next = 0;
    for (size_t i = 1; i + 1 < size; i += 2) {
        uint8_t op = data[i] % 7, arg = data[i + 1];
        size_t len = weft_ring_len(&r);
        CHECK(len == mlen);
        switch (op) {
        case 0: { /* append */
            size_t n = arg % (ring_space(&r) + 1);
            uint8_t tmp[512];
            for (size_t k = 0; k < n; k++)
                tmp[k] = next++;
            ring_append(&r, tmp, n);
            memcpy(model + mlen, tmp, n);
            mlen += n;
            break;
        }
        case 1: { /* consume */
            size_t n = arg % (len + 1);
            weft_ring_consume(&r, n);
            memmove(model, model + n, mlen - n);
            mlen -= n;
            break;
        }
        case 2: { /* find */
            size_t from = arg % (len + 2);
            int c = data[i] >> 3;
            long got = weft_ring_find(&r, from, c);
            long want = -1;
            for (size_t k = from; k < mlen; k++)
                if (model[k] == (uint8_t)c) {
                    want = (long)k;
                    break;
                }
            CHECK(got == want);
            break;
        }
        case 3: { /* copyout */
            size_t off = arg % (len + 2), n = (size_t)(data[i] >> 2);
            uint8_t tmp[64];
            size_t got = weft_ring_copyout(&r, off, tmp, n);
            size_t want = off >= mlen ? 0 : (n < mlen - off ? n : mlen - off);
            CHECK(got == want);
            CHECK(memcmp(tmp, model + off, got) == 0);
            break;
        }
        case 4: { /* peek */
            struct iovec iov[2];
            int k = weft_ring_peek(&r, iov);
            size_t off = 0;
            for (int j = 0; j < k; j++) {
                CHECK(memcmp(iov[j].iov_base, model + off, iov[j].iov_len) == 0);
                off += iov[j].iov_len;
            }
            CHECK(off == mlen);
            break;
        }
        case 5: { /* grow into a larger exact-size buffer */
            if (cap >= 4096)
                break;
            uint32_t ncap = cap * 2;
            char *nb = malloc(ncap);
            free(ring_relocate(&r, nb, ncap));
            cap = ncap;
            break;
        }
        case 6: { /* the byte accessor */
            if (len) {
                size_t off = arg % len;
                CHECK(weft_ring_byte(&r, off) == model[off]);
            }
            break;
        }
        }
    }
    free(ring_detach(&r));
    free(model);
    return 0;
}
