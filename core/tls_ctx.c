/*
 * core/tls_ctx.c — OpenSSL contexts for listeners and outbound connections
 * (tls_ctx.h).
 *
 * Policy, decided here once:
 *   - TLS 1.2 and 1.3 only; for 1.2 only ECDHE with AEAD ciphers (the
 *     Mozilla "intermediate" list); 1.3 uses OpenSSL's defaults.
 *   - No renegotiation (SSL_OP_NO_RENEGOTIATION): it is the oldest source
 *     of TLS CPU attacks and nothing here needs it.
 *   - SSL_MODE_RELEASE_BUFFERS: an idle connection keeps no record buffer.
 *   - Resumption: stateless tickets, encrypted with keys that rotate every
 *     TICKET_ROTATE_S (a ticket stays valid for two periods; a resumed TLS
 *     1.3 connection gets a new one, as 1.3 tickets are used once), and for
 *     TLS 1.2 clients without tickets, OpenSSL's session cache (it takes a
 *     lock per handshake, not per record).
 */
#include "core/tls_ctx.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TICKET_ROTATE_S 3600
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* ---- session-ticket keys --------------------------------------------------------- */

/*
 * Three slots: the current key encrypts, the current and the previous one
 * decrypt. Rotation writes the slot after the current one and then
 * publishes its index (release), so a worker that loads the index
 * (acquire) reads a complete key; the slot written is two periods old.
 */
typedef struct tkey {
    unsigned char name[16], aes[32], hmac[32];
} tkey;

static tkey g_keys[3];
static int g_cur = -1;
static int64_t g_rotated;
static pthread_mutex_t g_key_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static void rotate(void)
{
    int next = (__atomic_load_n(&g_cur, __ATOMIC_RELAXED) + 1) % 3;
    tkey *k = &g_keys[next];
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        return; /* keep the old key rather than use a weak one */
    g_rotated = now_s();
    __atomic_store_n(&g_cur, next, __ATOMIC_RELEASE);
}

void tlsctx_tick(void)
{
    pthread_mutex_lock(&g_key_mu);
    if (g_cur < 0 || now_s() - g_rotated >= TICKET_ROTATE_S)
        rotate();
    pthread_mutex_unlock(&g_key_mu);
}

static int ticket_cb(SSL *s, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *ectx,
                     EVP_MAC_CTX *hctx, int enc)
{
    int cur = __atomic_load_n(&g_cur, __ATOMIC_ACQUIRE);
    if (cur < 0)
        return enc ? -1 : 0;
    const tkey *k = &g_keys[cur];
    /*
     * TLS 1.3: always a fresh ticket on resumption. OpenSSL sends one after
     * a resumed 1.3 handshake only when this says "renew", and clients use
     * a 1.3 ticket once (RFC 8446, C.4; OpenSSL's client cache, browsers):
     * without a new one, every other connection of a client that reconnects
     * would be a full handshake. A 1.2 ticket stays reusable as it is.
     */
    int renew = SSL_version(s) >= TLS1_3_VERSION;
    if (enc) {
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            return -1;
        memcpy(name, k->name, sizeof(k->name));
    } else {
        if (memcmp(name, k->name, sizeof(k->name)) != 0) {
            k = &g_keys[(cur + 2) % 3]; /* the previous period's */
            if (memcmp(name, k->name, sizeof(k->name)) != 0)
                return 0; /* unknown: a full handshake */
            renew = 1;    /* valid, but issue a ticket under the current key */
        }
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_CTX_set_params(hctx, params))
        return -1;
    if (enc ? !EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes, iv)
            : !EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes, iv))
        return -1;
    return enc ? 1 : (renew ? 2 : 1);
}

/* ---- the common settings ---------------------------------------------------------- */

static void common(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS);
}

/* "a,b" into the wire format (length-prefixed names); 0, or -1 if bad. */
static int alpn_wire(const char *list, unsigned char *out, unsigned *outlen)
{
    unsigned n = 0;
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",:");
        if (k == 0 || k > 255 || n + 1 + k > 255)
            return -1;
        out[n++] = (unsigned char)k;
        memcpy(out + n, p, k);
        n += (unsigned)k;
        p += k;
        if (*p)
            p++;
    }
    *outlen = n;
    return n ? 0 : -1;
}

/* What a listener's contexts share, kept in the default one's ex_data. */
typedef struct server_set {
    int n;
    SSL_CTX *ctx[4];
    unsigned char alpn[256];
    unsigned alpn_len;
} server_set;

static int g_set_index = -1;
static pthread_once_t g_set_once = PTHREAD_ONCE_INIT;

static void set_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    server_set *set = ptr;
    if (!set)
        return;
    for (int i = 1; i < set->n; i++) /* [0] is the context being freed */
        SSL_CTX_free(set->ctx[i]);
    free(set);
}

static void set_index_init(void)
{
    g_set_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, set_free);
}

/* SNI: the first context whose certificate carries the name. */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    server_set *set = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_OK; /* no SNI: the default certificate */
    for (int i = 0; i < set->n; i++) {
        X509 *cert = SSL_CTX_get0_certificate(set->ctx[i]);
        if (cert && X509_check_host(cert, name, 0, 0, NULL) == 1) {
            if (i)
                SSL_set_SSL_CTX(ssl, set->ctx[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK; /* unknown name: the default, the client decides */
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    server_set *set = arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, set->alpn, set->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* no protocol in common (RFC 7301) */
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *one_server(const char *cert, const char *key, const char **why)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        *why = "out of memory";
        return NULL;
    }
    common(ctx);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        *why = "cannot read the certificate (PEM, chain allowed)";
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        *why = "cannot read the private key (PEM)";
    else if (SSL_CTX_check_private_key(ctx) != 1)
        *why = "the private key does not match the certificate";
    else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, 20480);
        static const unsigned char sid[] = "weft";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
        ERR_clear_error();
        return ctx;
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

void *tlsctx_server_new(const char *const *certs, const char *const *keys, int n, const char *alpn,
                        const char **why)
{
    pthread_once(&g_set_once, set_index_init);
    tlsctx_tick(); /* the first ticket key */
    server_set *set = calloc(1, sizeof(*set));
    if (!set || n < 1 || n > 4) {
        free(set);
        *why = n < 1 || n > 4 ? "1 to 4 certificates" : "out of memory";
        return NULL;
    }
    if (alpn && alpn_wire(alpn, set->alpn, &set->alpn_len) != 0) {
        free(set);
        *why = "bad ALPN list (names of 1 to 255 bytes, comma-separated)";
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        set->ctx[i] = one_server(certs[i], keys[i], why);
        if (!set->ctx[i]) {
            for (int k = 0; k < i; k++)
                SSL_CTX_free(set->ctx[k]);
            free(set);
            return NULL;
        }
        set->n = i + 1;
        SSL_CTX_set_tlsext_servername_callback(set->ctx[i], sni_cb);
        SSL_CTX_set_tlsext_servername_arg(set->ctx[i], set);
        if (set->alpn_len)
            SSL_CTX_set_alpn_select_cb(set->ctx[i], alpn_cb, set);
    }
    SSL_CTX_set_ex_data(set->ctx[0], g_set_index, set); /* freed with ctx[0] */
    return set->ctx[0];
}

void *tlsctx_client_new(const char *ca_file, bool insecure, const char *alpn, const char **why)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        *why = "out of memory";
        return NULL;
    }
    common(ctx);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET); /* outbound connections do not resume */
    if (!insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                         : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            *why = "cannot read the CA file";
            ERR_clear_error();
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    unsigned char wire[256];
    unsigned wlen;
    if (alpn && (alpn_wire(alpn, wire, &wlen) != 0 || SSL_CTX_set_alpn_protos(ctx, wire, wlen))) {
        *why = "bad ALPN list";
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

struct tlscache {
    tlscache *next;
    SSL_CTX *ctx;
    bool insecure;
    char *ca_file, *alpn; /* NULL when none */
};

static pthread_mutex_t g_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static bool same(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static char *dup_or_null(const char *s, bool *ok)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *ok = false;
    return d;
}

void *tlscache_get(tlscache **head, const char *ca_file, bool insecure, const char *alpn,
                   const char **why)
{
    pthread_mutex_lock(&g_cache_mu);
    tlscache *e = *head;
    while (e && !(e->insecure == insecure && same(e->ca_file, ca_file) && same(e->alpn, alpn)))
        e = e->next;
    if (!e) {
        SSL_CTX *ctx = tlsctx_client_new(ca_file, insecure, alpn, why);
        bool ok = ctx != NULL;
        e = ok ? calloc(1, sizeof(*e)) : NULL;
        if (e) {
            e->ctx = ctx;
            e->insecure = insecure;
            e->ca_file = dup_or_null(ca_file, &ok);
            e->alpn = dup_or_null(alpn, &ok);
        }
        if (!e || !ok) {
            if (ctx && (!e || !ok))
                *why = "out of memory";
            if (e) {
                free(e->ca_file);
                free(e->alpn);
                free(e);
            }
            SSL_CTX_free(ctx);
            pthread_mutex_unlock(&g_cache_mu);
            return NULL;
        }
        e->next = *head;
        *head = e;
    }
    SSL_CTX_up_ref(e->ctx);
    pthread_mutex_unlock(&g_cache_mu);
    return e->ctx;
}

void tlscache_free(tlscache **head)
{
    pthread_mutex_lock(&g_cache_mu);
    while (*head) {
        tlscache *e = *head;
        *head = e->next;
        SSL_CTX_free(e->ctx);
        free(e->ca_file);
        free(e->alpn);
        free(e);
    }
    pthread_mutex_unlock(&g_cache_mu);
}

void *tlsctx_ref(void *ctx)
{
    if (ctx)
        SSL_CTX_up_ref(ctx);
    return ctx;
}

void tlsctx_unref(void *ctx) { SSL_CTX_free(ctx); }

/* ---- kernel TLS -------------------------------------------------------------------- */

static const char *g_ktls;
static pthread_once_t g_ktls_once = PTHREAD_ONCE_INIT;

static void ktls_probe(void)
{
    /* TCP_ULP needs a connected TCP socket: a loopback pair of our own. */
    g_ktls = "unknown (the probe could not make a loopback connection)";
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, a = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) != 0)
        goto out;
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    a = accept(l, NULL, NULL);
    if (setsockopt(c, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) == 0)
        g_ktls = "available in the kernel; not used: weft's TLS runs over its own BIO, so "
                 "sendfile over TLS is read and encrypted";
    else
        g_ktls = errno == ENOENT ? "unavailable: the kernel has no tls module"
                                 : "unavailable: TCP_ULP tls refused";
out:
    if (a >= 0)
        close(a);
    if (c >= 0)
        close(c);
    if (l >= 0)
        close(l);
}

const char *tlsctx_ktls_status(void)
{
    pthread_once(&g_ktls_once, ktls_probe);
    return g_ktls;
}
