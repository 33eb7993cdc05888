/*
 * tools/weft-load/message.c — the message format. Nothing is ever buffered:
 * every byte of every message is a pure function of (connection id, sequence
 * number, size), so the sender regenerates the bytes it has not yet written
 * and the receiver regenerates what it expects and compares (verify.c).
 *
 * Message format (size S >= 16, all little-endian 64-bit words, the last one
 * truncated to S):
 *
 *     word 0   connection id (low 32 bits) | S (high 32 bits)
 *     word 1   sequence number on that connection, from 0
 *     word j   seed + j * 0x9E3779B97F4A7C15,  seed = mix(id, seq)
 *
 * Framing is by byte count (S is fixed), so a flipped byte never loses sync.
 */
#include <endian.h>
#include <string.h>

#include "load.h"

#define GOLDEN 0x9E3779B97F4A7C15ULL

static uint64_t msg_seed(uint32_t id, uint64_t seq)
{
    /* splitmix64's finalizer over (id, seq): neighbouring messages differ in
     * every payload word. */
    uint64_t z = ((uint64_t)id << 32 ^ seq) + GOLDEN;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void msg_fill(unsigned char *buf, uint32_t id, uint64_t seq, uint32_t size, uint32_t off,
              size_t len)
{
    uint64_t seed = msg_seed(id, seq);
    uint64_t j = off / 8;
    unsigned b = off % 8;
    while (len) {
        uint64_t w = j == 0   ? ((uint64_t)id | (uint64_t)size << 32)
                     : j == 1 ? seq
                              : seed + j * GOLDEN;
        w = htole64(w);
        if (b == 0 && len >= 8) {
            memcpy(buf, &w, 8);
            buf += 8;
            len -= 8;
        } else {
            size_t take = 8 - b < len ? 8 - b : len;
            memcpy(buf, (unsigned char *)&w + b, take);
            buf += take;
            len -= take;
            b = 0;
        }
        j++;
    }
}

void msg_stream_fill(unsigned char *buf, uint32_t id, uint32_t size, uint64_t pos, size_t len)
{
    while (len) {
        uint32_t off = (uint32_t)(pos % size);
        size_t take = size - off < len ? size - off : len;
        msg_fill(buf, id, pos / size, size, off, take);
        buf += take;
        pos += take;
        len -= take;
    }
}
