/*
 * workers/tls.c — TLS between the socket and the rings (tls.h).
 *
 *   socket ──backend recv──► cin ──BIO read──► OpenSSL ──SSL_read──► in (plaintext)
 *   socket ◄─backend send─── cout ◄─BIO write── OpenSSL ◄─SSL_write── out (plaintext)
 *
 * The BIO is weft's own (a BIO_METHOD over the two rings), so OpenSSL never
 * touches the fd. Two rules keep the backend's edge-triggered contract:
 * tls_recv returns fewer bytes than asked only when the socket itself was
 * drained (plaintext OpenSSL still buffers is handed out first), and
 * tls_send takes fewer than asked only when ciphertext is left in cout
 * because the socket is full: then the state machine waits for the output
 * event, which will come. Handshake bytes in either direction ride the
 * same paths; a flush is queued whenever OpenSSL left ciphertext in cout.
 */
#include "workers/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buffers/ring.h"
#include "workers/conn.h"
#include "workers/io.h"
#include "workers/io_sock.h"
#include "workers/queues.h"

/* The most plaintext one TLS record carries. */
#define TLS_RECORD 16384
/* A record's header, explicit nonce, tag and padding fit in this. */
#define TLS_OVERHEAD 256

/*
 * Plaintext encrypted per SSL_write: one record, sized so that its
 * ciphertext fits a pool ring of config.ring_size. Then cout never needs a
 * ring bigger than the pool's (whose storage is cached, not allocated):
 * invariant 5 holds on the TLS path too. cin needs no more either: OpenSSL
 * takes bytes out of it as a record arrives.
 */
static size_t ring_size_of(const wk_worker *w) { return w->g->cfg->ring_size; }

static size_t chunk_of(const wk_worker *w)
{
    size_t ring = ring_size_of(w);
    if (ring >= TLS_RECORD + TLS_OVERHEAD)
        return TLS_RECORD;
    return ring > 4 * TLS_OVERHEAD ? ring - TLS_OVERHEAD : 3 * TLS_OVERHEAD;
}

struct wk_tls {
    SSL *ssl;
    weft_conn *c;
    weft_ring cin, cout; /* ciphertext in from the socket / out to it */
    bool handshaking;
    bool sock_eof; /* the socket returned 0: the BIO reads EOF once cin is empty */
    weft_close_reason err;
};

static wk_tls *tls_of(const weft_conn *c) { return c->x ? c->x->tls : NULL; }

/* ---- the BIO over cin and cout ------------------------------------------------- */

static BIO_METHOD *g_method;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *buf, int len)
{
    wk_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t have = weft_ring_len(&t->cin);
    if (have == 0) {
        if (t->sock_eof)
            return 0;
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = have < (size_t)len ? have : (size_t)len;
    weft_ring_copyout(&t->cin, 0, buf, n);
    weft_ring_consume(&t->cin, n);
    conn_ring_release(t->c->w, &t->cin);
    return (int)n;
}

static int bio_write(BIO *b, const char *buf, int len)
{
    wk_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t held = weft_ring_len(&t->cout);
    if (conn_ring_reserve(t->c->w, &t->cout, held + (size_t)len) != 0)
        return -1; /* out of memory: OpenSSL reports an error */
    ring_append(&t->cout, buf, (size_t)len);
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Flushing is the state machine's: nothing to do here, but say yes. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static void method_init(void)
{
    g_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft rings");
    if (g_method) {
        BIO_meth_set_read(g_method, bio_read);
        BIO_meth_set_write(g_method, bio_write);
        BIO_meth_set_ctrl(g_method, bio_ctrl);
    }
}

/* ---- life ------------------------------------------------------------------------ */

static int start(wk_worker *w, weft_conn *c, void *ctx, bool client, const char *sni)
{
    (void)w;
    pthread_once(&g_once, method_init);
    wk_tls *t = calloc(1, sizeof(*t));
    SSL *ssl = t && g_method ? SSL_new(ctx) : NULL;
    BIO *bio = ssl ? BIO_new(g_method) : NULL;
    if (!bio) {
        SSL_free(ssl);
        free(t);
        return -ENOMEM;
    }
    BIO_set_data(bio, t);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio); /* one BIO both ways; SSL owns it */
    t->ssl = ssl;
    t->c = c;
    t->handshaking = true;
    if (client) {
        SSL_set_connect_state(ssl);
        unsigned char bin[16];
        if (sni && (inet_pton(AF_INET, sni, bin) == 1 || inet_pton(AF_INET6, sni, bin) == 1)) {
            /* An address: the certificate must carry it (no SNI: RFC 6066). */
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), sni);
        } else if (sni && *sni) {
            SSL_set_tlsext_host_name(ssl, sni);
            SSL_set1_host(ssl, sni); /* the name the certificate must carry */
        }
    } else {
        SSL_set_accept_state(ssl);
    }
    c->x->tls = t;
    return 0;
}

int tls_server_start(wk_worker *w, weft_conn *c, void *ctx)
{
    return start(w, c, ctx, false, NULL);
}

int tls_client_start(wk_worker *w, weft_conn *c, void *ctx, const char *sni)
{
    int rc = start(w, c, ctx, true, sni);
    if (rc != 0)
        return rc;
    /* The client speaks first: the ClientHello goes out now. */
    SSL_do_handshake(c->x->tls->ssl);
    if (weft_ring_len(&c->x->tls->cout))
        wk_flush_push(w, c);
    return 0;
}

void tls_ctx_unref(void *ctx) { SSL_CTX_free(ctx); }

void tls_free(wk_worker *w, weft_conn *c)
{
    wk_tls *t = tls_of(c);
    if (!t)
        return;
    SSL_free(t->ssl);
    ERR_clear_error(); /* the worker's next connection starts with an empty queue */
    conn_ring_drop(w, &t->cin);
    conn_ring_drop(w, &t->cout);
    free(t);
    c->x->tls = NULL;
}

/* ---- errors ------------------------------------------------------------------------ */

/* Remember why TLS failed, drop OpenSSL's error queue (it is per thread). */
static ssize_t fail(wk_tls *t, bool handshake)
{
    long v = SSL_get_verify_result(t->ssl);
    if (handshake && v != X509_V_OK)
        t->err = WEFT_CLOSE_TLS_VERIFY;
    else
        t->err = handshake ? WEFT_CLOSE_TLS_HANDSHAKE : WEFT_CLOSE_TLS_PROTOCOL;
    ERR_clear_error();
    return -EPROTO;
}

weft_close_reason tls_error(const weft_conn *c)
{
    wk_tls *t = tls_of(c);
    return t && t->err ? t->err : WEFT_CLOSE_TLS_PROTOCOL;
}

/* OpenSSL left ciphertext: write it this turn. */
static void want_flush(wk_worker *w, wk_tls *t)
{
    if (weft_ring_len(&t->cout)) {
        t->c->flags &= ~C_WANT_OUT; /* unless the socket says it is full */
        wk_flush_push(w, t->c);
    }
}

/* ---- input -------------------------------------------------------------------------- */

/* More ciphertext from the socket: > 0, 0 at its end, or the backend's error. */
static ssize_t fill(wk_worker *w, weft_conn *c, wk_tls *t)
{
    /* OpenSSL asked for more: it has taken what cin held. */
    if (!t->cin.buf || ring_space(&t->cin) == 0) {
        if (conn_ring_reserve(w, &t->cin, weft_ring_len(&t->cin) + ring_size_of(w)) != 0)
            return -ENOMEM;
    }
    ssize_t r = w->io->recv(w, c, &t->cin, ring_space(&t->cin));
    if (r == 0)
        t->sock_eof = true;
    if (r <= 0)
        conn_ring_release(w, &t->cin);
    return r;
}

ssize_t tls_recv(wk_worker *w, weft_conn *c, weft_ring *in, size_t max)
{
    wk_tls *t = tls_of(c);
    size_t total = 0;
    for (;;) {
        int e;
        if (t->handshaking) {
            int rc = SSL_do_handshake(t->ssl);
            want_flush(w, t);
            if (rc == 1) {
                t->handshaking = false;
                conn_tls_ready(w, c);
                if (c->flags & (C_CLOSED | C_CLOSING))
                    return -EAGAIN; /* the handler closed it in on_open */
                continue;
            }
            e = SSL_get_error(t->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                return fail(t, true);
        } else {
            if (total >= max)
                return (ssize_t)total;
            struct iovec iov[2];
            if (ring_free_segs(in, iov, max - total) == 0)
                return total ? (ssize_t)total : -ENOBUFS;
            size_t n = 0;
            int ok = SSL_read_ex(t->ssl, iov[0].iov_base, iov[0].iov_len, &n);
            want_flush(w, t); /* a key update or a ticket may have been written */
            if (ok) {
                ring_produce(in, n);
                total += n;
                continue;
            }
            e = SSL_get_error(t->ssl, 0);
            if (e == SSL_ERROR_ZERO_RETURN)
                return (ssize_t)total; /* close_notify: the end (0 when nothing came) */
            if (e == SSL_ERROR_SYSCALL || (e == SSL_ERROR_SSL && t->sock_eof)) {
                ERR_clear_error();
                return (ssize_t)total; /* the TCP end without close_notify */
            }
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                return total ? (ssize_t)total : fail(t, false);
        }
        /* OpenSSL wants ciphertext it does not have. */
        if (t->sock_eof)
            return total ? (ssize_t)total : (t->handshaking ? fail(t, true) : 0);
        ssize_t r = fill(w, c, t);
        if (r > 0 || r == 0)
            continue; /* 0: let OpenSSL see the end */
        if (r == -EAGAIN)
            return total ? (ssize_t)total : -EAGAIN; /* the socket is drained */
        return total ? (ssize_t)total : r;
    }
}

/* ---- output ------------------------------------------------------------------------- */

/* Send what waits in cout: 0 when it all went, -EAGAIN when some is left. */
static int drain_cout(wk_worker *w, weft_conn *c, wk_tls *t)
{
    while (weft_ring_len(&t->cout)) {
        ssize_t r = w->io->send(w, c, &t->cout, SIZE_MAX);
        if (r == -EAGAIN || r == 0 || (r > 0 && weft_ring_len(&t->cout)))
            return -EAGAIN; /* the socket is full: the output event follows */
        if (r < 0)
            return (int)r;
    }
    conn_ring_release(w, &t->cout);
    return 0;
}

/* Encrypt n plaintext bytes from p into cout: the bytes taken, or an error. */
static ssize_t encrypt(wk_tls *t, const void *p, size_t n)
{
    size_t done = 0;
    if (SSL_write_ex(t->ssl, p, n, &done))
        return (ssize_t)done;
    int e = SSL_get_error(t->ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return -EAGAIN;
    return fail(t, false);
}

ssize_t tls_send(wk_worker *w, weft_conn *c, weft_ring *out, size_t max)
{
    wk_tls *t = tls_of(c);
    int rc = drain_cout(w, c, t);
    if (rc != 0)
        return rc;
    if (t->handshaking)
        return max && weft_ring_len(out) ? -EAGAIN : 0; /* sent once it is done */
    size_t total = 0;
    while (total < max && weft_ring_len(out)) {
        struct iovec iov[2];
        weft_ring_peek(out, iov);
        size_t n = iov[0].iov_len;
        if (n > max - total)
            n = max - total;
        if (n > chunk_of(w))
            n = chunk_of(w);
        ssize_t k = encrypt(t, iov[0].iov_base, n);
        if (k < 0)
            return total ? (ssize_t)total : k;
        weft_ring_consume(out, (size_t)k);
        total += (size_t)k;
        if (drain_cout(w, c, t) != 0)
            break; /* full: what is left of cout counts as pending */
    }
    return (ssize_t)total;
}

ssize_t tls_sendfile(wk_worker *w, weft_conn *c, int fd, off_t *off, size_t len)
{
    wk_tls *t = tls_of(c);
    int rc = drain_cout(w, c, t);
    if (rc != 0)
        return rc;
    if (t->handshaking)
        return -EAGAIN;
    char buf[TLS_RECORD];
    size_t chunk = chunk_of(w);
    size_t total = 0;
    while (total < len) {
        size_t want = len - total < chunk ? len - total : chunk;
        ssize_t n = io_sock_pread(fd, buf, want, *off);
        if (n <= 0)
            return total ? (ssize_t)total : n;
        ssize_t k = encrypt(t, buf, (size_t)n); /* SSL_write takes all or nothing */
        if (k < 0)
            return total ? (ssize_t)total : k;
        *off += k;
        total += (size_t)k;
        if (drain_cout(w, c, t) != 0)
            break;
    }
    return (ssize_t)total;
}

void tls_send_alert(wk_worker *w, weft_conn *c)
{
    wk_tls *t = tls_of(c);
    if (t)
        (void)drain_cout(w, c, t);
}

int tls_shutdown_wr(wk_worker *w, weft_conn *c)
{
    wk_tls *t = tls_of(c);
    if (!t->handshaking) {
        SSL_shutdown(t->ssl); /* close_notify into cout */
        ERR_clear_error();
        (void)drain_cout(w, c, t); /* what the socket takes now; FIN follows */
    }
    return w->io->shutdown_wr(w, c);
}

size_t conn_tls_pending(const weft_conn *c) { return tls_pending(c); }

size_t tls_pending(const weft_conn *c)
{
    wk_tls *t = tls_of(c);
    return t ? weft_ring_len(&t->cout) : 0;
}

bool tls_handshaking(const weft_conn *c)
{
    wk_tls *t = tls_of(c);
    return t && t->handshaking;
}

const char *tls_alpn(const weft_conn *c)
{
    static _Thread_local char name[32];
    wk_tls *t = tls_of(c);
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (t)
        SSL_get0_alpn_selected(t->ssl, &p, &n);
    if (n >= sizeof(name))
        n = sizeof(name) - 1;
    memcpy(name, p ? (const char *)p : "", n);
    name[n] = '\0';
    return name;
}

bool tls_resumed(const weft_conn *c)
{
    wk_tls *t = tls_of(c);
    return t && SSL_session_reused(t->ssl);
}
