/*
 * test_ktls.c - the kernel-TLS hand-over, on a kernel that may lack it.
 *
 * What the kernel would do with the keys cannot run here without
 * CONFIG_TLS, but everything muxring computes for it can be checked: for
 * each TLS 1.3 cipher the kernel takes, a handshake between two SSLs in
 * memory reports its traffic secrets through mr_ktls_keylog, the client's
 * sending keys are derived with mr_ktls_crypto_info exactly as they would
 * be given to setsockopt(TLS_TX), and a record sealed here with those keys
 * and record number 0 (what the kernel would send first) is read by the
 * server's OpenSSL as the right bytes; so is one sealed with the number
 * the receive hand-over would give TLS_RX after three records went
 * through OpenSSL (the kernel's next record there). Then the hand-over refuses TLS 1.2
 * and, on a kernel without TCP_ULP "tls", fails cleanly with ENOENT, which
 * leaves the session in user space.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tls/tls.h"
#include "tls_certs.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif


struct pair {
	SSL_CTX *sctx, *cctx;
	SSL *server, *client;
	struct mr_ktls_secrets ssec, csec;
};

/* Moves what one SSL wrote into the other's read BIO. */
static void shuttle(SSL *from, SSL *to)
{
	char buf[16384];
	int n;

	while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0)
		assert_int_equal(BIO_write(SSL_get_rbio(to), buf, n), n);
}

static SSL *new_ssl(SSL_CTX *ctx, struct mr_ktls_secrets *sec)
{
	SSL *ssl = SSL_new(ctx);

	assert_non_null(ssl);
	SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	SSL_set_app_data(ssl, sec);
	return ssl;
}

/* A finished handshake in memory with `suites` (TLS 1.3) or TLS 1.2. */
static void pair_up(struct pair *p, const char *suites, bool tls12)
{
	int i;

	memset(p, 0, sizeof(*p));
	p->sctx = SSL_CTX_new(TLS_server_method());
	p->cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(p->sctx);
	assert_non_null(p->cctx);
	assert_int_equal(SSL_CTX_use_certificate_file(p->sctx,
						      tc_certs.server_cert,
						      SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(p->sctx,
						     tc_certs.server_key,
						     SSL_FILETYPE_PEM), 1);
	SSL_CTX_set_num_tickets(p->sctx, 0);
	if (tls12) {
		SSL_CTX_set_max_proto_version(p->cctx, TLS1_2_VERSION);
	} else {
		assert_int_equal(SSL_CTX_set_ciphersuites(p->cctx, suites), 1);
		assert_int_equal(SSL_CTX_set_ciphersuites(p->sctx, suites), 1);
	}
	SSL_CTX_set_keylog_callback(p->sctx, mr_ktls_keylog);
	SSL_CTX_set_keylog_callback(p->cctx, mr_ktls_keylog);
	p->server = new_ssl(p->sctx, &p->ssec);
	p->client = new_ssl(p->cctx, &p->csec);
	SSL_set_accept_state(p->server);
	SSL_set_connect_state(p->client);
	for (i = 0; i < 10 && !(SSL_is_init_finished(p->server) &&
				SSL_is_init_finished(p->client)); i++) {
		SSL_do_handshake(p->client);
		shuttle(p->client, p->server);
		SSL_do_handshake(p->server);
		shuttle(p->server, p->client);
	}
	assert_true(SSL_is_init_finished(p->client));
	assert_true(SSL_is_init_finished(p->server));
}

static void pair_free(struct pair *p)
{
	SSL_free(p->server);
	SSL_free(p->client);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
}

/* Seals one TLS 1.3 application-data record as the kernel would with the
 * keys and record number in ki. Returns its length. */
static size_t seal_record(const union mr_ktls_info *ki, const char *text,
			  uint8_t *out)
{
	const EVP_CIPHER *cipher;
	const unsigned char *key, *seq;
	unsigned char nonce[12];
	size_t inner = strlen(text) + 1, body = inner + 16;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t plain[256];
	int n, m;

	switch (ki->base.cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		cipher = EVP_aes_128_gcm();
		key = ki->gcm128.key;
		memcpy(nonce, ki->gcm128.salt, 4);
		memcpy(nonce + 4, ki->gcm128.iv, 8);
		seq = ki->gcm128.rec_seq;
		break;
	case TLS_CIPHER_AES_GCM_256:
		cipher = EVP_aes_256_gcm();
		key = ki->gcm256.key;
		memcpy(nonce, ki->gcm256.salt, 4);
		memcpy(nonce + 4, ki->gcm256.iv, 8);
		seq = ki->gcm256.rec_seq;
		break;
	default:
		assert_int_equal(ki->base.cipher_type,
				 TLS_CIPHER_CHACHA20_POLY1305);
		cipher = EVP_chacha20_poly1305();
		key = ki->chacha.key;
		memcpy(nonce, ki->chacha.iv, 12);
		seq = ki->chacha.rec_seq;
		break;
	}
	assert_int_equal(ki->base.version, TLS_1_3_VERSION);
	/* The nonce is the IV xor the record number (RFC 8446, 5.3). */
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= seq[i];
	memcpy(plain, text, inner - 1);
	plain[inner - 1] = 0x17; /* the inner content type */
	out[0] = 0x17;
	out[1] = 0x03;
	out[2] = 0x03;
	out[3] = (uint8_t)(body >> 8);
	out[4] = (uint8_t)body;
	assert_non_null(ctx);
	assert_int_equal(EVP_EncryptInit_ex(ctx, cipher, NULL, key, nonce), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n, out, 5), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, out + 5, &n, plain, (int)inner), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, out + 5 + n, &m), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16,
					     out + 5 + inner), 1);
	EVP_CIPHER_CTX_free(ctx);
	return 5 + body;
}

static void check_suite(const char *suite)
{
	static const char text[] = "muxado frames, sealed as the kernel would";
	union mr_ktls_info ki;
	struct pair p;
	uint8_t record[512];
	char got[128];
	size_t len, n = 0;
	int size;

	pair_up(&p, suite, false);
	assert_true(p.csec.client_len >= 32);
	assert_true(p.ssec.server_len >= 32);
	/* Both ends saw the same client secret. */
	assert_int_equal(p.ssec.client_len, p.csec.client_len);
	assert_memory_equal(p.ssec.client, p.csec.client, p.csec.client_len);
	size = mr_ktls_crypto_info(p.client, p.csec.client, p.csec.client_len,
				   0, &ki);
	assert_true(size > (int)sizeof(struct tls_crypto_info));
	len = seal_record(&ki, text, record);
	assert_int_equal(BIO_write(SSL_get_rbio(p.server), record, (int)len),
			 (int)len);
	assert_int_equal(SSL_read_ex(p.server, got, sizeof(got), &n), 1);
	assert_int_equal(n, strlen(text));
	assert_memory_equal(got, text, n);
	pair_free(&p);
}

/* What the receive hand-over gives TLS_RX after `records` records came
 * through OpenSSL: the kernel opens the next one with it. Checked the
 * other way round: a record sealed with those keys and that number is
 * the server's next record for its OpenSSL. */
static void check_receive_keys(const char *suite, unsigned records)
{
	static const char text[] = "the record after the switch";
	union mr_ktls_info ki;
	struct pair p;
	uint8_t record[512];
	char got[128];
	size_t len, n = 0;
	unsigned i;

	pair_up(&p, suite, false);
	for (i = 0; i < records; i++) {
		assert_int_equal(SSL_write_ex(p.client, "x", 1, &n), 1);
		shuttle(p.client, p.server);
		assert_int_equal(SSL_read_ex(p.server, got, sizeof(got), &n), 1);
	}
	assert_true(mr_ktls_crypto_info(p.server, p.ssec.client,
					p.ssec.client_len, records, &ki) > 0);
	len = seal_record(&ki, text, record);
	assert_int_equal(BIO_write(SSL_get_rbio(p.server), record, (int)len),
			 (int)len);
	assert_int_equal(SSL_read_ex(p.server, got, sizeof(got), &n), 1);
	assert_int_equal(n, strlen(text));
	assert_memory_equal(got, text, n);
	pair_free(&p);
}

static void test_receive_keys_continue_the_record_count(void **state)
{
	(void)state;
	check_receive_keys("TLS_AES_128_GCM_SHA256", 3);
	check_receive_keys("TLS_AES_256_GCM_SHA384", 300); /* two bytes */
	check_receive_keys("TLS_CHACHA20_POLY1305_SHA256", 1);
}

static void test_keys_for_the_kernel_open_a_record(void **state)
{
	(void)state;
	check_suite("TLS_AES_128_GCM_SHA256");
	check_suite("TLS_AES_256_GCM_SHA384");
	check_suite("TLS_CHACHA20_POLY1305_SHA256");
}

static void test_hand_over_refused_or_falls_back(void **state)
{
	struct pair p;
	int fds[2] = { -1, -1 }, lfd, err;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	bool has_ulp;

	(void)state;
	/* TLS 1.2: its keys would come from a key block, not offered. */
	pair_up(&p, NULL, true);
	assert_int_equal(SSL_version(p.client), TLS1_2_VERSION);
	assert_int_equal(mr_ktls_install_tx(p.client, -1, false, &p.csec),
			 -EOPNOTSUPP);
	pair_free(&p);

	/* TLS 1.3 on a real loopback connection: installed where the
	 * kernel has TLS, ENOENT (the session stays in user space)
	 * otherwise. */
	pair_up(&p, "TLS_AES_128_GCM_SHA256", false);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fds[0], (struct sockaddr *)&a, sizeof(a)), 0);
	fds[1] = accept(lfd, NULL, NULL);
	assert_true(fds[1] >= 0);
	has_ulp = mr_ktls_probe(NULL) == 1;
	err = mr_ktls_install_tx(p.client, fds[0], false, &p.csec);
	if (has_ulp)
		assert_int_equal(err, 0);
	else
		assert_int_equal(err, -ENOENT);
	/* Without the ULP the socket is as it was: bytes pass unchanged. */
	if (!has_ulp) {
		char b[4];

		assert_int_equal(write(fds[0], "abc", 3), 3);
		assert_int_equal(read(fds[1], b, sizeof(b)), 3);
		assert_memory_equal(b, "abc", 3);
	}
	close(fds[0]);
	close(fds[1]);
	close(lfd);
	pair_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_for_the_kernel_open_a_record),
		cmocka_unit_test(test_receive_keys_continue_the_record_count),
		cmocka_unit_test(test_hand_over_refused_or_falls_back),
	};

	return cmocka_run_group_tests(tests, tc_group_setup, tc_group_teardown);
}
