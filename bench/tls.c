/*
 * tls.c - the TLS set-up every TLS cell shares: one certificate made at
 * start-up, one server and one client SSL_CTX.
 *
 * Both sides of every impl use these same two contexts (muxring through
 * muxring_tls_opts.ssl_ctx), so the cipher suite, the key exchange and the
 * certificate checks are the same for muxring+TLS and for the pool with
 * OpenSSL on each connection: only the transport around them differs. The
 * certificate is self-signed for IP 127.0.0.1 (EC P-256, made in memory,
 * never written to disk), and the client verifies it, by address.
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static SSL_CTX *server_ctx, *client_ctx;

static X509 *self_signed(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *san;

	if (!x)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"muxbench", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
				  "IP:127.0.0.1");
	if (!san || !X509_add_ext(x, san, -1) ||
	    !X509_sign(x, key, EVP_sha256())) {
		X509_EXTENSION_free(san);
		X509_free(x);
		return NULL;
	}
	X509_EXTENSION_free(san);
	return x;
}

static void make_contexts(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = key ? self_signed(key) : NULL;

	server_ctx = SSL_CTX_new(TLS_server_method());
	client_ctx = SSL_CTX_new(TLS_client_method());
	if (!cert || !server_ctx || !client_ctx ||
	    SSL_CTX_use_certificate(server_ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(server_ctx, key) != 1 ||
	    X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx), cert) != 1) {
		SSL_CTX_free(server_ctx);
		SSL_CTX_free(client_ctx);
		server_ctx = client_ctx = NULL;
	} else {
		SSL_CTX_set_min_proto_version(server_ctx, TLS1_2_VERSION);
		SSL_CTX_set_min_proto_version(client_ctx, TLS1_2_VERSION);
		/* No resumption in any impl: a new connection is a full
		 * handshake. */
		SSL_CTX_set_num_tickets(server_ctx, 0);
		SSL_CTX_set_session_cache_mode(server_ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_session_cache_mode(client_ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
		/* A peer's FIN without close_notify is a plain end, as
		 * TCP's is (the pools close that way). */
		SSL_CTX_set_options(server_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
		SSL_CTX_set_options(client_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	ERR_clear_error();
}

struct ssl_ctx_st *bench_tls_ctx(bool server)
{
	pthread_once(&once, make_contexts);
	return server ? server_ctx : client_ctx;
}
