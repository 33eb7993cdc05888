/*
 * fuzz_tls — the TLS record path (workers/tls.c) against a real peer.
 *
 * A weft server-side TLS connection (tls_server_start over the listener
 * policy of core/tls_ctx.c) talks to an OpenSSL client through an in-memory
 * "socket" whose chunking the input decides: every receive the connection
 * makes is cut to a length from the input, so handshake and records arrive
 * split at every possible place. The input also names bytes of the
 * client-to-server stream to corrupt, and an early end of that stream.
 *
 * What must hold, whatever the input:
 *   - the plaintext the server delivers is a prefix of what the client
 *     sent (AEAD: a corrupted record is an error, never other bytes), and
 *     all of it when nothing was corrupted or cut;
 *   - a failure is -EPROTO with a TLS close reason, or the end (0);
 *   - what the server sends arrives at the client intact;
 *   - no ring holds storage once it is empty, and OpenSSL's error queue is
 *     empty after every call (a worker serves the next connection with it).
 * Any difference aborts. The rings use malloc at their exact size, so ASan
 * sees every access.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "buffers/ring.h"
#include "core/tls_ctx.h"
#include "workers/conn-t.h"
#include "workers/conn.h"
#include "workers/io.h"
#include "workers/io_sock.h"
#include "workers/tls.h"
#include "workers/worker-t.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_tls: check failed: %s (line %d)\n", #c, __LINE__);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the input, read as it is used ------------------------------------------ */

typedef struct input {
    const uint8_t *p;
    size_t n;
} input;

static unsigned take(input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

/* ---- an in-memory socket ----------------------------------------------------- */

typedef struct pipe_buf {
    uint8_t *b;
    size_t len, cap;
} pipe_buf;

static void pb_put(pipe_buf *q, const void *p, size_t n)
{
    if (!n)
        return;
    if (q->len + n > q->cap) {
        q->cap = (q->len + n) * 2;
        q->b = realloc(q->b, q->cap);
        CHECK(q->b);
    }
    memcpy(q->b + q->len, p, n);
    q->len += n;
}

static void pb_take(pipe_buf *q, size_t n)
{
    memmove(q->b, q->b + n, q->len - n);
    q->len -= n;
}

static struct {
    input *in;
    pipe_buf c2s, s2c; /* client to server, server to client */
    bool c2s_closed;   /* the client's FIN: recv returns 0 once c2s is empty */
    int ready;         /* conn_tls_ready calls */
} g;

static ssize_t fake_recv(wk_worker *w, weft_conn *c, weft_ring *r, size_t max)
{
    (void)w, (void)c;
    if (!g.c2s.len)
        return g.c2s_closed ? 0 : -EAGAIN;
    size_t n = g.in->n ? 1 + take(g.in) * 8u : max; /* 1 .. 2041: records split anywhere */
    if (n > max)
        n = max;
    if (n > g.c2s.len)
        n = g.c2s.len;
    size_t free_bytes = ring_space(r);
    if (n > free_bytes)
        n = free_bytes;
    CHECK(n > 0);
    ring_append(r, g.c2s.b, n);
    pb_take(&g.c2s, n);
    return (ssize_t)n;
}

static ssize_t fake_send(wk_worker *w, weft_conn *c, weft_ring *r, size_t max)
{
    (void)w, (void)c;
    size_t n = weft_ring_len(r);
    if (n > max)
        n = max;
    if (!n)
        return 0;
    uint8_t tmp[4096];
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < sizeof(tmp) ? n - done : sizeof(tmp);
        weft_ring_copyout(r, 0, tmp, k);
        weft_ring_consume(r, k);
        pb_put(&g.s2c, tmp, k);
        done += k;
    }
    return (ssize_t)n;
}

static int fake_shutdown_wr(wk_worker *w, weft_conn *c)
{
    (void)w, (void)c;
    return 0;
}

static const wk_io_ops fake_ops = {
    .name = "fuzz", .recv = fake_recv, .send = fake_send, .shutdown_wr = fake_shutdown_wr};

/* ---- what workers/tls.c needs from the rest of workers/ ------------------------- */

int conn_ring_reserve(wk_worker *w, weft_ring *r, size_t need)
{
    (void)w;
    if (r->buf && r->cap >= need)
        return 0;
    uint32_t cap = 64;
    while (cap < need)
        cap <<= 1;
    char *nb = malloc(cap);
    CHECK(nb);
    if (!r->buf)
        ring_attach(r, nb, cap);
    else
        free(ring_relocate(r, nb, cap));
    return 0;
}

void conn_ring_drop(wk_worker *w, weft_ring *r)
{
    (void)w;
    free(ring_detach(r));
}

void conn_ring_release(wk_worker *w, weft_ring *r)
{
    if (r->buf && weft_ring_len(r) == 0)
        conn_ring_drop(w, r);
}

void conn_tls_ready(wk_worker *w, weft_conn *c)
{
    (void)w, (void)c;
    g.ready++;
}

ssize_t io_sock_pread(int file, void *buf, size_t len, off_t off)
{
    (void)file, (void)buf, (void)len, (void)off;
    return 0;
}

/* ---- the peer and the certificate ------------------------------------------------- */

static SSL_CTX *g_server, *g_client;

/* A throwaway P-256 key and self-signed certificate, written where
 * tlsctx_server_new can read them (it takes file names). */
static void make_ctx(void)
{
    char dir[] = "/tmp/fuzz_tls.XXXXXX", cert[64], key[64];
    CHECK(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    CHECK(pk && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    CHECK(X509_sign(x, pk, EVP_sha256()) > 0);
    FILE *f = fopen(cert, "w");
    CHECK(f && PEM_write_X509(f, x));
    fclose(f);
    f = fopen(key, "w");
    CHECK(f && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
    const char *certs[] = {cert}, *keys[] = {key}, *why = NULL;
    g_server = tlsctx_server_new(certs, keys, 1, "http/1.1", &why);
    CHECK(g_server);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    g_client = SSL_CTX_new(TLS_client_method());
    CHECK(g_client);
    SSL_CTX_set_verify(g_client, SSL_VERIFY_NONE, NULL);
}

/* ---- one session -------------------------------------------------------------------- */

/*
 * Move the client's output into c2s, corrupting the byte the input names;
 * at cut_at the stream ends (the client's FIN, maybe mid-record) and what
 * the client writes after it is lost.
 */
static void client_out(BIO *wbio, size_t *sent, size_t corrupt_at, uint8_t corrupt_xor,
                       size_t cut_at, bool *corrupted)
{
    uint8_t buf[4096];
    int n;
    while ((n = BIO_read(wbio, buf, sizeof(buf))) > 0) {
        if (corrupt_xor && corrupt_at >= *sent && corrupt_at < *sent + (size_t)n) {
            buf[corrupt_at - *sent] ^= corrupt_xor;
            *corrupted = true;
        }
        size_t keep = (size_t)n;
        if (*sent + keep > cut_at) {
            keep = cut_at > *sent ? cut_at - *sent : 0;
            g.c2s_closed = true;
            *corrupted = true; /* a cut stream need not deliver everything */
        }
        pb_put(&g.c2s, buf, keep);
        *sent += (size_t)n;
    }
}

static void client_in(BIO *rbio)
{
    if (g.s2c.len) {
        CHECK(BIO_write(rbio, g.s2c.b, (int)g.s2c.len) == (int)g.s2c.len);
        g.s2c.len = 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_server)
        make_ctx();
    input in = {data, size};
    memset(&g, 0, sizeof(g));
    g.in = &in;

    /* The header: where to corrupt the client's stream, where to cut it,
     * which protocol version the client insists on, how much to send. */
    size_t corrupt_at = take(&in) | (take(&in) << 8);
    uint8_t corrupt_xor = (uint8_t)take(&in);
    size_t cut_at = take(&in) & 1 ? (take(&in) | (take(&in) << 8)) : SIZE_MAX;
    int version = take(&in) & 1 ? TLS1_2_VERSION : TLS1_3_VERSION;
    size_t up = (take(&in) | (take(&in) << 8)) % 40000, down = (take(&in) << 6) % 20000;

    static wk_worker w;
    static weft_conn c;
    static conn_ext x;
    static weft_config cfg;
    static wk_group grp;
    memset(&cfg, 0, sizeof(cfg));
    /* The ring size decides the plaintext per record: vary it. */
    cfg.ring_size = 1u << (8 + (take(&in) % 9)); /* 256 .. 64 KiB */
    grp.cfg = &cfg;
    memset(&w, 0, sizeof(w));
    w.g = &grp;
    memset(&c, 0, sizeof(c));
    memset(&x, 0, sizeof(x));
    w.io = &fake_ops;
    c.w = &w;
    c.x = &x;
    CHECK(tls_server_start(&w, &c, g_server) == 0);

    SSL *cl = SSL_new(g_client);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    CHECK(cl && rbio && wbio);
    SSL_set_bio(cl, rbio, wbio);
    SSL_set_min_proto_version(cl, version);
    SSL_set_max_proto_version(cl, version);
    SSL_set_connect_state(cl);

    static uint8_t plain[40000], got[40000], back[20000], back_got[20000];
    for (size_t i = 0; i < up; i++)
        plain[i] = (uint8_t)(i * 31 + 7);
    for (size_t i = 0; i < down; i++)
        back[i] = (uint8_t)(i * 17 + 3);

    weft_ring rin = {0}, rout = {0};
    size_t sent = 0, delivered = 0, written = 0, back_n = 0, back_rcvd = 0;
    bool corrupted = false, failed = false, eof = false, cl_hs = false;
    for (int round = 0; round < 400 && !failed && !eof; round++) {
        /* The client: handshake, then its data in pieces. */
        if (!cl_hs) {
            if (SSL_do_handshake(cl) == 1)
                cl_hs = true;
        } else if (written < up) {
            size_t k = in.n ? 1 + take(&in) * 64u : up; /* the input's end: the rest */
            if (k > up - written)
                k = up - written;
            size_t done = 0;
            if (SSL_write_ex(cl, plain + written, k, &done))
                written += done;
        }
        ERR_clear_error(); /* the client's errors are not under test */
        client_out(wbio, &sent, corrupt_at, corrupt_xor, cut_at, &corrupted);

        /* The server: read what it can, as conn_read does. */
        for (int k = 0; k < 64; k++) {
            conn_ring_reserve(&w, &rin, 1 << 14);
            ssize_t r = tls_recv(&w, &c, &rin, ring_space(&rin));
            CHECK(ERR_peek_error() == 0);
            if (r > 0) {
                size_t n = weft_ring_len(&rin);
                CHECK((size_t)r == n && delivered + n <= up);
                weft_ring_copyout(&rin, 0, got + delivered, n);
                weft_ring_consume(&rin, n);
                delivered += n;
                continue;
            }
            if (r == 0) {
                eof = true;
            } else if (r == -EPROTO) {
                weft_close_reason why = tls_error(&c);
                CHECK(why == WEFT_CLOSE_TLS_HANDSHAKE || why == WEFT_CLOSE_TLS_PROTOCOL ||
                      why == WEFT_CLOSE_TLS_VERIFY);
                tls_send_alert(&w, &c);
                failed = true;
            } else {
                CHECK(r == -EAGAIN);
            }
            break;
        }
        conn_ring_release(&w, &rin);
        CHECK(memcmp(got, plain, delivered) == 0);

        /* The flush: the ciphertext OpenSSL left (handshake flights,
         * tickets, alerts) goes out as conn_flush sends it. */
        if (tls_pending(&c)) {
            CHECK(tls_send(&w, &c, &rout, 0) == 0);
            CHECK(tls_pending(&c) == 0 && ERR_peek_error() == 0);
        }
        /* The server answers once the handshake is done. */
        if (!failed && !tls_handshaking(&c) && back_n < down) {
            size_t k = down - back_n < 3000 ? down - back_n : 3000;
            conn_ring_reserve(&w, &rout, k);
            ring_append(&rout, back + back_n, k);
            ssize_t r = tls_send(&w, &c, &rout, k);
            CHECK(ERR_peek_error() == 0);
            CHECK(r == (ssize_t)k); /* the fake socket takes everything */
            back_n += k;
            conn_ring_release(&w, &rout);
        }
        client_in(rbio);
        size_t n = 0;
        while (back_rcvd < down && SSL_read_ex(cl, back_got + back_rcvd, down - back_rcvd, &n))
            back_rcvd += n;
        ERR_clear_error();
        CHECK(back_rcvd <= back_n && memcmp(back_got, back, back_rcvd) == 0);
        if (!g.c2s.len && !g.s2c.len && cl_hs && written == up && !tls_handshaking(&c) &&
            back_n == down)
            break;
    }
    /* Nothing corrupted or cut: every byte the client wrote arrived, and
     * every byte the server sent reached the client. */
    if (!corrupted && !failed && !g.c2s_closed) {
        CHECK(delivered == written);
        CHECK(back_rcvd == back_n);
    }
    CHECK(rin.buf == NULL && rout.buf == NULL);
    if (getenv("FUZZ_TLS_TRACE")) /* what a seed exercises: fuzz_tls SEED */
        fprintf(stderr, "fuzz_tls: TLS 1.%d, %zu of %zu bytes up, %zu of %zu down%s%s%s\n",
                version == TLS1_3_VERSION ? 3 : 2, delivered, up, back_rcvd, down,
                corrupted ? ", corrupted" : "", failed ? ", failed" : "", eof ? ", eof" : "");
    tls_free(&w, &c);
    CHECK(x.tls == NULL);
    SSL_free(cl);
    free(g.c2s.b);
    free(g.s2c.b);
    return 0;
}
