/*
 * tools/weft-load/verify.c — checking what comes back. Each received chunk is
 * compared with the bytes regenerated from the message format (message.c);
 * every mismatch is counted by kind and never counted as throughput.
 *
 * A wrong header (another connection's id, an unexpected sequence number)
 * means bytes were lost, duplicated, reordered or mixed, and the stream can
 * no longer be trusted: that connection is closed. One flipped byte, or a
 * damaged payload under a good header, leaves the stream in step.
 */
#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "load.h"

#define MAX_LOGGED 5 /* mismatch details printed */

static atomic_uint g_logged_mm;

static uint32_t le32_at(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

static uint64_t le64_at(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

/*
 * Message seq of c was received with at least one wrong byte: count it by
 * kind. Returns 1 if the stream is still in step (one byte flipped, or only
 * the payload damaged: the next message starts where expected), 0 if the
 * connection was closed because its bytes were lost, duplicated, reordered
 * or mixed with another connection's, after which nothing on it can be
 * trusted.
 */
static int msg_bad(thr *t, conn *c, uint64_t seq)
{
    unsigned char want[HDR_SIZE];
    msg_fill(want, c->id, seq, load_cfg.size, 0, HDR_SIZE);
    uint32_t gid = le32_at(c->hdr), gsize = le32_at(c->hdr + 4);
    uint64_t gseq = le64_at(c->hdr + 8);
    const char *kind;
    int in_step = 0;
    if (c->bad == 1 || memcmp(want, c->hdr, HDR_SIZE) == 0) {
        kind = c->bad == 1 ? "one corrupted byte" : "corrupted payload";
        t->st.mm_corrupt++;
        in_step = 1;
    } else if (gsize == load_cfg.size && gid != c->id) {
        kind = "another connection's message";
        t->st.mm_cross++;
    } else if (gsize == load_cfg.size && gid == c->id) {
        kind = "wrong sequence number (loss, duplication or reordering)";
        t->st.mm_seq++;
    } else {
        kind = "corrupted header";
        t->st.mm_corrupt++;
    }
    if (atomic_fetch_add(&g_logged_mm, 1) < MAX_LOGGED)
        fprintf(stderr,
                "weft-load: mismatch on connection %" PRIu32 " message %" PRIu64
                ": %s; first wrong byte at offset %" PRIu32 "; header says connection %" PRIu32
                " message %" PRIu64 " size %" PRIu32 "\n",
                c->id, seq, kind, c->bad_off, gid, gseq, gsize);
    c->bad = 0;
    if (!in_step || load_cfg.mode->cycles) {
        conn_release(t, c);
        return 0;
    }
    return 1;
}

/* Message seq of c arrived intact at `now`. Returns 0 if c was closed. */
static int msg_good(thr *t, conn *c, uint64_t seq, uint64_t now)
{
    stats *s = &t->st;
    uint64_t sent = conn_sent_time(t, c, seq);
    s->msgs_all++;
    s->bytes_all += load_cfg.size;
    s->last_recv = now;
    int in_window = now >= t->warm_end && now <= t->run_end;
    if (in_window) {
        s->msgs++;
        s->bytes += load_cfg.size;
    }
    /* Latency from the (scheduled) send, so a stall delays every message
     * behind it in the statistics too: no coordinated omission. */
    if (sent >= t->warm_end && now >= sent)
        lh_record(&s->lat, now - sent);
    return load_cfg.mode->replied ? load_cfg.mode->replied(t, c, in_window) : 1;
}

int verify_input(thr *t, conn *c, const unsigned char *buf, size_t n, uint64_t now)
{
    const uint32_t size = load_cfg.size;
    if (c->rd + n > c->wr) {
        /* More bytes than were ever sent: the server invented some. */
        if (atomic_fetch_add(&g_logged_mm, 1) < MAX_LOGGED)
            fprintf(stderr,
                    "weft-load: mismatch on connection %" PRIu32 ": %" PRIu64
                    " bytes received but only %" PRIu64 " sent\n",
                    c->id, c->rd + n, c->wr);
        t->st.mm_extra++;
        conn_release(t, c);
        return 0;
    }
    while (n) {
        uint64_t seq = c->rd / size;
        uint32_t off = (uint32_t)(c->rd % size);
        size_t take = size - off < n ? size - off : n;
        if (off < HDR_SIZE)
            memcpy(c->hdr + off, buf, HDR_SIZE - off < take ? HDR_SIZE - off : take);
        msg_fill(t->exp, c->id, seq, size, off, take);
        if (memcmp(buf, t->exp, take) != 0) {
            /* Rare path: count wrong bytes (up to 2) and note the first. */
            for (size_t i = 0; i < take && c->bad < 2; i++)
                if (buf[i] != t->exp[i] && c->bad++ == 0)
                    c->bad_off = off + (uint32_t)i;
        }
        buf += take;
        n -= take;
        c->rd += take;
        if (off + take == size) {
            if (c->bad ? !msg_bad(t, c, seq) : !msg_good(t, c, seq, now))
                return 0;
        }
    }
    return 1;
}
