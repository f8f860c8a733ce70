/*
 * tls.h - libmuxring-tls's own interface between its files.
 *
 * A configuration (struct muxring_tls) is an SSL_CTX, the role it serves
 * and the transport filter that sessions made with it use; each session's
 * filter state (struct mr_tls_conn, tls_conn.c) holds one SSL and a
 * reference on the configuration, so the application may free its own
 * reference while sessions still run.
 */
#ifndef MUXRING_TLS_INTERNAL_H
#define MUXRING_TLS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include <openssl/ssl.h>

#include "muxring.h"
#include "muxring_tls.h"

struct muxring_tls {
	SSL_CTX *ctx;
	enum muxring_role role;
	unsigned flags;              /* MUXRING_TLS_* */
	bool verify_peer;            /* a client checks the server's name */
	bool try_ktls;               /* hand keys to the kernel when it can */
	char *server_name;           /* client: instead of the dialled host */
	atomic_uint refs;            /* the application's and each session's
					(sessions may live in other threads'
					loops) */
	struct muxring_filter filter; /* ops = mr_tls_filter_ops, arg = this */
};

/* The transport filter of every TLS session (tls_conn.c). */
extern const struct muxring_filter_ops mr_tls_filter_ops;

void mr_tls_ref(struct muxring_tls *tls);
void mr_tls_unref(struct muxring_tls *tls);

/* The negotiated SSL of a TLS session, or NULL. */
SSL *mr_tls_ssl_of(const struct muxring_session *sess);

/*
 * kTLS (ktls.c): whether the kernel has TCP_ULP "tls" (probed once), and
 * the hand-over of a finished handshake's keys to it.
 */
int mr_ktls_probe(const char **why);

#endif
