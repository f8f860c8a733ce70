/*
 * tls_certs.h - certificates made at test time with the OpenSSL API.
 *
 * tc_make() writes into a fresh temporary directory a small PKI for
 * 127.0.0.1: a CA, a server certificate for DNS:localhost and
 * IP:127.0.0.1 signed by it, one that expired an hour ago, a client
 * certificate, and a second, unrelated CA. Nothing is read from the
 * system or committed to the repository. tc_free() removes it all.
 */
#ifndef MUXRING_TEST_TLS_CERTS_H
#define MUXRING_TEST_TLS_CERTS_H

struct tc_files {
	char dir[64];
	char ca[96];            /* the CA that signed everything below */
	char other_ca[96];      /* a CA that signed nothing here */
	char server_cert[96], server_key[96];   /* localhost, 127.0.0.1 */
	char expired_cert[96], expired_key[96]; /* same names, expired */
	char client_cert[96], client_key[96];   /* CN=muxring test client */
	char ca_dir[96];        /* the CA again, as an OpenSSL hashed
				   directory (<subject hash>.0) */
	char ca_dir_file[128];
};

/* Makes the files; fails the test when it cannot. */
void tc_make(struct tc_files *f);

/* An application's own client SSL_CTX (for muxring_tls_opts.ssl_ctx):
 * TLS 1.2 at most, verifying the peer with ca_file. Free it with
 * tc_ssl_ctx_free(). (Here, since OpenSSL's headers define lh_new and
 * lh_free, the names of the loop harness.) */
struct ssl_ctx_st *tc_client_ctx_tls12(const char *ca_file);
void tc_ssl_ctx_free(struct ssl_ctx_st *ctx);

/* Removes the files and the directory. */
void tc_free(struct tc_files *f);

/* One set of files for a whole cmocka group: pass tc_group_setup and
 * tc_group_teardown to cmocka_run_group_tests, and the tests read
 * tc_certs. */
extern struct tc_files tc_certs;
int tc_group_setup(void **state);
int tc_group_teardown(void **state);

#endif
