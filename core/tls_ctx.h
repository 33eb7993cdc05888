/*
 * core/tls_ctx.h — OpenSSL contexts: a listener's (certificates, SNI,
 * ALPN, session tickets and cache) and the outbound ones (verification).
 *
 * The control plane makes and replaces contexts; the workers only create
 * SSL objects from them (workers/tls.c). A listener's context is handed to
 * a worker with each connection as a reference taken by the acceptor
 * thread, which is also the thread that swaps in a reloaded context, so a
 * context is never freed while a worker is about to use it.
 */
#ifndef WEFT_CORE_TLS_CTX_H
#define WEFT_CORE_TLS_CTX_H

#include <stdbool.h>

#include "weft/weft.h"

/*
 * A server context for a listener's certificate/key pairs (the first the
 * default, the others chosen by SNI) and ALPN list ("a,b"; NULL: none):
 * TLS 1.2 and 1.3 only, modern ciphers, no renegotiation, session tickets
 * with rotating keys and a session cache. NULL with *why set when a file
 * cannot be read or a key does not match its certificate.
 */
void *tlsctx_server_new(const char *const *certs, const char *const *keys, int n, const char *alpn,
                        const char **why);

/*
 * A client context that verifies peers with the PEM CAs of ca_file (NULL:
 * the system's), or verifies nothing when insecure, offering alpn. The
 * caller owns the reference. NULL with *why set.
 */
void *tlsctx_client_new(const char *ca_file, bool insecure, const char *alpn, const char **why);

/*
 * A cache of client contexts, one per (ca_file, insecure, alpn): loading a
 * CA store costs milliseconds, so a server makes each context once, on the
 * first connect that asks for it. Any thread (a mutex inside). The
 * reference returned is the caller's. tlscache_free drops them all.
 */
typedef struct tlscache tlscache;
void *tlscache_get(tlscache **head, const char *ca_file, bool insecure, const char *alpn,
                   const char **why);
void tlscache_free(tlscache **head);

/* Take one more reference; drop one (NULL: nothing). */
void *tlsctx_ref(void *ctx);
void tlsctx_unref(void *ctx);

/* Rotate the session-ticket keys when the period has passed (any thread;
 * the acceptor calls it). */
void tlsctx_tick(void);

/*
 * Whether the kernel can do TLS (the tls module: setsockopt TCP_ULP "tls"
 * on a TCP socket), as a sentence for the stats and the startup line.
 * Probed once.
 */
const char *tlsctx_ktls_status(void);

#endif
