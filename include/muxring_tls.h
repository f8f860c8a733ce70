/*
 * muxring_tls.h - muxado over TLS (OpenSSL 3): libmuxring-tls.
 *
 * A separate library, so that programs without TLS do not link OpenSSL
 * (pkg-config --libs muxring-tls brings both). It is a transport filter of
 * the core library (muxring.h, "Transport filters"): a TLS object made here
 * is put into the muxring_session_opts of muxring_connect(),
 * muxring_listen() or muxring_session_create(), and every session made with
 * those options runs TLS 1.2 or 1.3 under muxado:
 *
 *	struct muxring_tls *tls;
 *	struct muxring_tls_opts to = { .ca_file = "ca.pem" };
 *	struct muxring_session_opts so = { 0 };
 *
 *	if (muxring_tls_new(&tls, MUXRING_CLIENT, &to) < 0)
 *		errx(1, "%s", muxring_tls_new_error());
 *	muxring_tls_apply(tls, &so);
 *	muxring_connect(loop, "example.com", "443", &so, 0, &sess);
 *
 * The session's SESSION_READY comes once the handshake is done (res 0), or
 * with the failure's error. Every failure ends the session, and its
 * SESSION_ENDED entry has res (below) and, in its view, one sentence naming
 * the cause ("certificate verification failed: certificate has expired",
 * "the peer sent the TLS alert: unknown ca", ...):
 *   -ETIMEDOUT    the handshake did not finish within handshake_timeout_ms;
 *   -EKEYREJECTED the peer's certificate failed verification (this side's
 *                 check; the peer rejecting ours arrives as an alert);
 *   -EPROTO       any other TLS failure: an alert received, a malformed
 *                 record, no common protocol version or cipher;
 *   -ECONNRESET   the peer closed the connection during the handshake, or
 *                 without close_notify afterwards (truncation).
 * A session that ends cleanly sends close_notify before closing.
 *
 * Kernel TLS: when the kernel has TCP_ULP "tls" (CONFIG_TLS) and the
 * session negotiated TLS 1.3 with AES-GCM or ChaCha20-Poly1305, the
 * sending keys are handed to the kernel after the handshake and the frames
 * leave as plain muxado again, zero-copy (receiving stays in user space).
 * muxring_tls_ktls_available() says whether this kernel can; otherwise,
 * with MUXRING_TLS_NO_KTLS, or with an application's own SSL_CTX, TLS runs
 * in user space, OpenSSL reading and writing the loop's memory in place.
 */
#ifndef MUXRING_TLS_H
#define MUXRING_TLS_H

#include <stdbool.h>

#include "muxring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* OpenSSL's SSL_CTX, without including OpenSSL's headers. */
struct ssl_ctx_st;

/* muxring_tls_opts.flags */
#define MUXRING_TLS_INSECURE 0x1u /* client: verify nothing about the
				     server (testing only) */
#define MUXRING_TLS_NO_KTLS  0x2u /* never hand the keys to the kernel
				     (the environment variable
				     MUXRING_TLS_NO_KTLS=1 does the same
				     for every configuration) */

/* What muxring_tls_new() needs; fields left 0/NULL take their defaults. */
struct muxring_tls_opts {
	/* This side's certificate chain and private key, PEM files. A
	 * server needs them; a client sends them when asked (mutual TLS). */
	const char *cert_file;
	const char *key_file;
	/* Trusted CAs (PEM file, or an OpenSSL hashed directory) to verify
	 * the peer with. A client with neither uses the system's store. A
	 * server given either requires a client certificate that verifies
	 * (mutual TLS); with neither it asks for none. */
	const char *ca_file;
	const char *ca_dir;
	/* Client: the name sent as SNI and verified in the server's
	 * certificate, instead of the host given to muxring_connect(). An
	 * IP address (v4 or v6) is verified as an address and sends no SNI.
	 * Needed for muxring_session_create(), which knows no host. */
	const char *server_name;
	/* The handshake must be done this long after the connection is up
	 * (default 10000 ms). */
	unsigned handshake_timeout_ms;
	/* MUXRING_TLS_* bits. */
	unsigned flags;
	/* The application's own SSL_CTX, used as it is instead of one made
	 * from the fields above (its verification settings, certificates,
	 * versions are the application's; the peer's name is still set for
	 * SNI and checked unless MUXRING_TLS_INSECURE). muxring_tls_new
	 * takes a reference (SSL_CTX_up_ref); the caller keeps its own. */
	struct ssl_ctx_st *ssl_ctx;
};

struct muxring_tls;

/*
 * Makes a TLS configuration for sessions of `role`: an SSL_CTX for TLS 1.2
 * and 1.3 with the certificates and CAs of opts (or opts->ssl_ctx).
 * Returns 0 with *out set, or -EINVAL (missing or contradictory options: a
 * server without cert and key, a key without cert), -ENOENT (a file that
 * cannot be read or parsed), -ENOMEM; muxring_tls_new_error() then names
 * the cause in one sentence.
 */
MUXRING_API int muxring_tls_new(struct muxring_tls **out,
				enum muxring_role role,
				const struct muxring_tls_opts *opts);

/* Why the calling thread's last muxring_tls_new() failed; "" after a
 * success. Thread-local, valid until the next call. */
MUXRING_API const char *muxring_tls_new_error(void);

/* Sets opts->filter so that the sessions made with opts run TLS with this
 * configuration. The configuration must outlive the call that uses opts;
 * sessions keep their own reference afterwards. */
MUXRING_API void muxring_tls_apply(struct muxring_tls *tls,
				   struct muxring_session_opts *opts);

/* Drops the application's reference; the configuration is freed once the
 * last session using it is freed too. NULL is ignored. */
MUXRING_API void muxring_tls_free(struct muxring_tls *tls);

/* The negotiated protocol of a TLS session ("TLSv1.3"), or NULL before the
 * handshake is done or when sess does not run TLS. */
MUXRING_API const char *muxring_tls_version(const struct muxring_session *sess);

/* The negotiated cipher suite's name, or NULL (as above). */
MUXRING_API const char *muxring_tls_cipher(const struct muxring_session *sess);

/*
 * True while no application data has come from the peer of a TLS session:
 * a failure then belongs to the handshake (including the peer's rejection
 * of this side's certificate, which TLS 1.3 reports only after this side's
 * part of the handshake) and the SESSION_ENDED text begins with "TLS
 * handshake failed". Tools use it to tell a handshake or verification
 * failure from a session lost later. False for a session without TLS.
 */
MUXRING_API bool muxring_tls_handshake_failed(const struct muxring_session *sess);

/* True when the kernel encrypts what this session sends (kTLS). */
MUXRING_API bool muxring_tls_ktls_active(const struct muxring_session *sess);

/* True when the kernel also decrypts what this session receives: a server
 * session switches its receiving to the kernel after the handshake, at a
 * record boundary (README, "Kernel TLS"); a client's stays in user space. */
MUXRING_API bool muxring_tls_ktls_receiving(const struct muxring_session *sess);

/*
 * Whether this kernel offers TCP_ULP "tls": 1 yes, 0 no. Probed once per
 * process on a loopback connection of its own; why is then a sentence
 * ("the kernel has no TLS upper-layer protocol (CONFIG_TLS): ...") when
 * not NULL.
 */
MUXRING_API int muxring_tls_ktls_available(const char **why);

#ifdef __cplusplus
}
#endif

#endif
