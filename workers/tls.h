/*
 * workers/tls.h — TLS between a connection's socket and its rings.
 *
 * A TLS connection keeps its plaintext in the same input and output rings
 * as any other, so handlers do not change. Under them, OpenSSL reads
 * ciphertext from a ring (cin) that the I/O backend fills, and writes
 * ciphertext into another (cout) that the backend drains: the socket is
 * never handed to OpenSSL, every system call still goes through the
 * backend seam (workers/io.h), and a completion backend works unchanged.
 * Both rings borrow storage from the worker's pool only while they hold
 * bytes, and SSL_MODE_RELEASE_BUFFERS lets OpenSSL free its record buffers
 * between records: an idle TLS connection holds no buffer (invariant 4),
 * only its SSL object.
 *
 * The state machine (workers/conn.c) calls tls_recv and tls_send where a
 * plain connection calls the backend's recv and send; the contract is the
 * backend's (io.h): a short read means the source is drained, and bytes
 * taken but not yet on the wire (ciphertext in cout) count as pending
 * output. All on the owning worker's thread.
 */
#ifndef WEFT_WORKERS_TLS_H
#define WEFT_WORKERS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "workers/worker-t.h"

typedef struct wk_tls wk_tls;

/*
 * Start TLS on c as a server with ctx (an SSL_CTX, see core/tls_ctx.c), or
 * as a client (sni: the name to send and verify, may be NULL). The
 * handshake runs inside tls_recv/tls_send. 0 or -ENOMEM.
 */
int tls_server_start(wk_worker *w, weft_conn *c, void *ctx);
int tls_client_start(wk_worker *w, weft_conn *c, void *ctx, const char *sni);

/* Drop a reference to an SSL_CTX (NULL: nothing). */
void tls_ctx_unref(void *ctx);

/* Free c's TLS state (the connection closed). */
void tls_free(wk_worker *w, weft_conn *c);

/*
 * Plaintext into `in`, at most max bytes, as the backend's recv promises:
 * bytes (> 0), 0 at the peer's end (close_notify, or a TCP FIN), -EAGAIN
 * when the socket is drained and nothing more can be decrypted, -EPROTO
 * for a TLS error (tls_error says which). While the handshake runs it
 * returns -EAGAIN until the handshake is done (tls_handshaking).
 */
ssize_t tls_recv(wk_worker *w, weft_conn *c, weft_ring *in, size_t max);

/*
 * Encrypt at most max bytes of `out` (consumed) and send what the socket
 * takes. Returns the plaintext bytes taken, -EAGAIN when nothing could be
 * (ciphertext still waits for the socket, or the handshake runs), or a
 * negative errno.
 */
ssize_t tls_send(wk_worker *w, weft_conn *c, weft_ring *out, size_t max);

/*
 * Encrypt and send len bytes of file fd from *off (a TLS connection has no
 * zero-copy path without kernel TLS): read through the backend, then as
 * tls_send. Returns as the backend's sendfile.
 */
ssize_t tls_sendfile(wk_worker *w, weft_conn *c, int fd, off_t *off, size_t len);

/* After a TLS failure: send the alert OpenSSL wrote (what the socket takes
 * now, without waiting), so the peer learns why before the close. */
void tls_send_alert(wk_worker *w, weft_conn *c);

/* Send close_notify (as much as the socket takes now), then FIN. */
int tls_shutdown_wr(wk_worker *w, weft_conn *c);

/* Ciphertext waiting for the socket: pending output beyond the rings. */
size_t tls_pending(const weft_conn *c);

/* The handshake is still running. */
bool tls_handshaking(const weft_conn *c);

/* The close reason for the last TLS failure on c (handshake or protocol). */
weft_close_reason tls_error(const weft_conn *c);

/* The ALPN protocol the handshake chose ("" when none), and whether the
 * session was resumed. */
const char *tls_alpn(const weft_conn *c);
bool tls_resumed(const weft_conn *c);

#endif
