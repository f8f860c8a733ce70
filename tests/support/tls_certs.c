/*
 * tls_certs.c - certificates made at test time with the OpenSSL API.
 *
 * Keys are EC P-256 (fast to make); certificates are X.509 v3 with the
 * extensions a verifier checks: basicConstraints on the CAs, subjectAltName
 * on the server (hostname and IP verification use only the SAN), and a
 * validity window placed in the past for the expired one.
 */
#include "tls_certs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct tc_cert {
	EVP_PKEY *key;
	X509 *x509;
};

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for `cn`, valid from `from_s` to `to_s` seconds from now,
 * signed by `issuer` (NULL: self-signed CA). san NULL: none. */
static struct tc_cert make_cert(const char *cn, const struct tc_cert *issuer,
				const char *san, long from_s, long to_s)
{
	static long serial = 1;
	struct tc_cert c;
	X509_NAME *name;

	c.key = EVP_EC_gen("P-256");
	c.x509 = X509_new();
	assert_non_null(c.key);
	assert_non_null(c.x509);
	X509_set_version(c.x509, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c.x509), serial++);
	X509_gmtime_adj(X509_getm_notBefore(c.x509), from_s);
	X509_gmtime_adj(X509_getm_notAfter(c.x509), to_s);
	X509_set_pubkey(c.x509, c.key);
	name = X509_get_subject_name(c.x509);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c.x509, issuer ? X509_get_subject_name(issuer->x509)
					    : name);
	if (!issuer) {
		add_ext(c.x509, c.x509, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(c.x509, c.x509, NID_key_usage,
			"critical,keyCertSign,cRLSign");
	} else {
		add_ext(c.x509, issuer->x509, NID_basic_constraints, "CA:FALSE");
	}
	if (san)
		add_ext(c.x509, issuer ? issuer->x509 : c.x509,
			NID_subject_alt_name, san);
	assert_true(X509_sign(c.x509, issuer ? issuer->key : c.key,
			      EVP_sha256()) > 0);
	return c;
}

static void write_pem(const char *path, const struct tc_cert *c,
		      const char *key_path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, c->x509), 1);
	fclose(f);
	if (!key_path)
		return;
	f = fopen(key_path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, c->key, NULL, NULL, 0, NULL,
					      NULL), 1);
	fclose(f);
}

static void cert_free(struct tc_cert *c)
{
	X509_free(c->x509);
	EVP_PKEY_free(c->key);
}

#define PATH(field, file) \
	snprintf(f->field, sizeof(f->field), "%s/" file, f->dir)

void tc_make(struct tc_files *f)
{
	static const char san[] = "DNS:localhost,IP:127.0.0.1";
	struct tc_cert ca, other, server, expired, client;

	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/muxring-tls-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	PATH(ca, "ca.pem");
	PATH(other_ca, "other-ca.pem");
	PATH(server_cert, "server.pem");
	PATH(server_key, "server.key");
	PATH(expired_cert, "expired.pem");
	PATH(expired_key, "expired.key");
	PATH(client_cert, "client.pem");
	PATH(client_key, "client.key");
	PATH(ca_dir, "cadir");

	ca = make_cert("muxring test CA", NULL, NULL, -3600, 86400);
	other = make_cert("another CA", NULL, NULL, -3600, 86400);
	server = make_cert("localhost", &ca, san, -3600, 86400);
	expired = make_cert("localhost", &ca, san, -7200, -3600);
	client = make_cert("muxring test client", &ca, NULL, -3600, 86400);
	write_pem(f->ca, &ca, NULL);
	write_pem(f->other_ca, &other, NULL);
	write_pem(f->server_cert, &server, f->server_key);
	write_pem(f->expired_cert, &expired, f->expired_key);
	write_pem(f->client_cert, &client, f->client_key);
	assert_int_equal(mkdir(f->ca_dir, 0700), 0);
	snprintf(f->ca_dir_file, sizeof(f->ca_dir_file), "%s/%08lx.0", f->ca_dir,
		 X509_subject_name_hash(ca.x509));
	write_pem(f->ca_dir_file, &ca, NULL);
	cert_free(&ca);
	cert_free(&other);
	cert_free(&server);
	cert_free(&expired);
	cert_free(&client);
}

struct ssl_ctx_st *tc_client_ctx_tls12(const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca_file, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

void tc_ssl_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

void tc_free(struct tc_files *f)
{
	const char *files[] = { f->ca, f->other_ca, f->server_cert,
				f->server_key, f->expired_cert, f->expired_key,
				f->client_cert, f->client_key };
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	unlink(f->ca_dir_file);
	rmdir(f->ca_dir);
	rmdir(f->dir);
}

struct tc_files tc_certs;

int tc_group_setup(void **state)
{
	(void)state;
	tc_make(&tc_certs);
	return 0;
}

int tc_group_teardown(void **state)
{
	(void)state;
	tc_free(&tc_certs);
	return 0;
}
