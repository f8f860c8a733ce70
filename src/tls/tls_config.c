/*
 * tls_config.c - a TLS configuration: the SSL_CTX sessions are made from.
 *
 * The main idea: every policy decision is made here, once, in the SSL_CTX
 * (versions, what is verified, which certificate is shown), so that each
 * session only creates an SSL from it and sets the peer's name. An
 * application's own SSL_CTX replaces everything but the name check.
 */
#include "tls/tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u

static _Thread_local char new_error[256];

const char *muxring_tls_new_error(void)
{
	return new_error;
}

/* Records why muxring_tls_new failed, with OpenSSL's reason when it has
 * one, and returns err. */
static int fail(int err, const char *fmt, ...)
{
	unsigned long e = ERR_peek_last_error();
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(new_error, sizeof(new_error), fmt, ap);
	va_end(ap);
	n = strlen(new_error);
	if (e && ERR_reason_error_string(e) && n < sizeof(new_error))
		snprintf(new_error + n, sizeof(new_error) - n, " (%s)",
			 ERR_reason_error_string(e));
	ERR_clear_error();
	return err;
}

void mr_tls_ref(struct muxring_tls *tls)
{
	atomic_fetch_add(&tls->refs, 1);
}

void mr_tls_unref(struct muxring_tls *tls)
{
	if (atomic_fetch_sub(&tls->refs, 1) != 1)
		return;
	SSL_CTX_free(tls->ctx);
	free(tls->server_name);
	free(tls);
}

/* OpenSSL's reasons for a key that is not the certificate's. */
static bool key_mismatch(int reason)
{
	return reason == X509_R_KEY_VALUES_MISMATCH ||
	       reason == X509_R_KEY_TYPE_MISMATCH ||
	       reason == SSL_R_PRIVATE_KEY_MISMATCH;
}

static int load_own_cert(SSL_CTX *ctx, const struct muxring_tls_opts *o)
{
	if (!o->cert_file != !o->key_file)
		return fail(-EINVAL, "a certificate needs its key and a key "
				     "its certificate");
	if (!o->cert_file)
		return 0;
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
		return fail(-ENOENT, "cannot load the certificate %s",
			    o->cert_file);
	if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) == 1 &&
	    SSL_CTX_check_private_key(ctx) == 1)
		return 0;
	if (key_mismatch(ERR_GET_REASON(ERR_peek_last_error())))
		return fail(-EINVAL, "the key %s does not match the "
				     "certificate %s", o->key_file,
			    o->cert_file);
	return fail(-ENOENT, "cannot load the private key %s", o->key_file);
}

/* The CAs to verify the peer with; a server that has some requires a
 * client certificate (mutual TLS). */
static int load_trust(SSL_CTX *ctx, enum muxring_role role,
		      const struct muxring_tls_opts *o)
{
	bool given = o->ca_file || o->ca_dir;

	if (role == MUXRING_CLIENT && o->flags & MUXRING_TLS_INSECURE) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return 0;
	}
	if (given && SSL_CTX_load_verify_locations(ctx, o->ca_file,
						   o->ca_dir) != 1)
		return fail(-ENOENT, "cannot load the CA certificates %s",
			    o->ca_file ? o->ca_file : o->ca_dir);
	if (role == MUXRING_CLIENT) {
		if (!given && SSL_CTX_set_default_verify_paths(ctx) != 1)
			return fail(-ENOENT, "cannot load the system's CA store");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		return 0;
	}
	if (!given) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return 0;
	}
	if (o->ca_file) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);

		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
			   SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

static int make_ctx(struct muxring_tls *tls, const struct muxring_tls_opts *o)
{
	SSL_CTX *ctx;
	int err;

	ctx = SSL_CTX_new(tls->role == MUXRING_SERVER ? TLS_server_method()
						      : TLS_client_method());
	if (!ctx)
		return fail(-ENOMEM, "cannot create an SSL_CTX");
	tls->ctx = ctx;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* No resumption is offered, so no tickets: they would cost every
	 * TLS 1.3 handshake two more records. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (tls->try_ktls)
		SSL_CTX_set_keylog_callback(ctx, mr_ktls_keylog);
	err = load_own_cert(ctx, o);
	if (!err)
		err = load_trust(ctx, tls->role, o);
	if (!err && tls->role == MUXRING_SERVER &&
	    !SSL_CTX_get0_certificate(ctx))
		err = fail(-EINVAL, "a TLS server needs a certificate and "
				    "its key");
	return err;
}

int muxring_tls_new(struct muxring_tls **out, enum muxring_role role,
		    const struct muxring_tls_opts *opts)
{
	static const struct muxring_tls_opts none;
	const struct muxring_tls_opts *o = opts ? opts : &none;
	struct muxring_tls *tls;
	int err;

	new_error[0] = '\0';
	if (!out || (role != MUXRING_CLIENT && role != MUXRING_SERVER) ||
	    o->flags & ~(MUXRING_TLS_INSECURE | MUXRING_TLS_NO_KTLS))
		return fail(-EINVAL, "muxring_tls_new: invalid arguments");
	tls = calloc(1, sizeof(*tls));
	if (!tls)
		return fail(-ENOMEM, "out of memory");
	atomic_init(&tls->refs, 1);
	tls->role = role;
	tls->flags = o->flags;
	tls->verify_peer = role == MUXRING_CLIENT &&
			   !(o->flags & MUXRING_TLS_INSECURE);
	/* Not with the application's SSL_CTX: the keys come through the
	 * keylog callback, which is the application's to set. */
	tls->try_ktls = !(o->flags & MUXRING_TLS_NO_KTLS) && !o->ssl_ctx &&
			mr_ktls_probe(NULL) == 1;
	if (o->server_name && !(tls->server_name = strdup(o->server_name))) {
		mr_tls_unref(tls);
		return fail(-ENOMEM, "out of memory");
	}
	if (o->ssl_ctx) {
		SSL_CTX_up_ref(o->ssl_ctx);
		tls->ctx = o->ssl_ctx;
		err = 0;
	} else {
		err = make_ctx(tls, o);
	}
	if (err) {
		mr_tls_unref(tls);
		return err;
	}
	if (!tls->try_ktls)
		tls->filter.ops = &mr_tls_filter_ops;
	else if (role == MUXRING_SERVER)
		tls->filter.ops = &mr_tls_filter_ops_ktls_server;
	else
		tls->filter.ops = &mr_tls_filter_ops_ktls;
	tls->filter.arg = tls;
	tls->filter.handshake_timeout_ns =
		(uint64_t)(o->handshake_timeout_ms ? o->handshake_timeout_ms
						   : DEFAULT_HANDSHAKE_TIMEOUT_MS) *
		1000000u;
	*out = tls;
	return 0;
}

void muxring_tls_apply(struct muxring_tls *tls,
		       struct muxring_session_opts *opts)
{
	opts->filter = &tls->filter;
}

void muxring_tls_free(struct muxring_tls *tls)
{
	if (tls)
		mr_tls_unref(tls);
}

const char *muxring_tls_version(const struct muxring_session *sess)
{
	SSL *ssl = mr_tls_ssl_of(sess);

	return ssl ? SSL_get_version(ssl) : NULL;
}

const char *muxring_tls_cipher(const struct muxring_session *sess)
{
	SSL *ssl = mr_tls_ssl_of(sess);

	return ssl ? SSL_get_cipher_name(ssl) : NULL;
}
