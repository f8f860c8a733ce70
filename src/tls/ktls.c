/*
 * ktls.c - kernel TLS: is it there, and handing a session's keys over.
 *
 * The main idea: the kernel offers TLS as a TCP upper-layer protocol
 * (setsockopt TCP_ULP "tls", CONFIG_TLS); a kernel without it answers
 * ENOENT. The only reliable probe is to try, on an established TCP
 * connection (the ULP cannot be set on any other socket), so the probe
 * makes a loopback connection of its own, once per process.
 *
 * The hand-over covers TLS 1.3 sessions (AES-GCM or ChaCha20-Poly1305):
 * the traffic secrets come from OpenSSL's keylog callback, and the key and
 * IV are derived from them as RFC 8446 says.
 *
 * Sending: the kernel starts at record 0, which holds because the loop
 * asks only after the handshake's last bytes left and before any frame
 * was encrypted.
 *
 * Receiving (a server only): the kernel must start exactly at a record
 * boundary, with the number of records the peer already sent under its
 * application secret as its sequence number. The loop stops its multishot
 * receive and feeds OpenSSL every byte it took; the BIO follows the
 * record headers of what OpenSSL read (tls_bio.c), so the filter knows
 * whether it stands mid-record (the loop then reads exactly the rest) and
 * how many records followed the handshake; then TLS_RX gets the keys and
 * that count, and the ring carries plaintext.
 *
 * Why a server only: after TLS_RX the kernel hands over application data
 * only; a record of another type makes a plain recv (the loop's multishot
 * has no control buffer) fail with EIO, and it must then be read with
 * recvmsg and a TLS_GET_RECORD_TYPE control message (kernel
 * Documentation/networking/tls.rst). A TLS 1.3 server sends its clients
 * NewSessionTickets after the handshake, at times the client cannot know,
 * and a client learns that its certificate was refused only from the
 * server's next records, so a client keeps receiving in user space. A
 * client sends its server no post-handshake message unless asked (this
 * library never asks): after the switch the only records that are not
 * data are alerts and a KeyUpdate. When the receive fails, the filter
 * reads the record the kernel stopped at: close_notify is a clean end,
 * another alert or a KeyUpdate (the kernel has no new keys to follow it
 * with) ends the session with a sentence naming it. A KeyUpdate that came
 * before the switch changed the keys in OpenSSL only: no switch then.
 */
#include "tls/tls.h"

#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>

#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static int real_setsockopt(int fd, int level, int name, const void *val,
			   socklen_t len)
{
	return setsockopt(fd, level, name, val, len) ? -errno : 0;
}

static long real_recv_record(int fd, uint8_t *buf, size_t cap, uint8_t *type)
{
	char control[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
		.msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg;
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);

	if (n < 0)
		return -errno;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (!cmsg || cmsg->cmsg_level != SOL_TLS ||
	    cmsg->cmsg_type != TLS_GET_RECORD_TYPE)
		return -EBADMSG;
	*type = *CMSG_DATA(cmsg);
	return (long)n;
}

const struct mr_ktls_kernel mr_ktls_real_kernel = {
	.setsockopt = real_setsockopt,
	.recv_record = real_recv_record,
};
const struct mr_ktls_kernel *mr_ktls_kernel = &mr_ktls_real_kernel;

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_result;
static char probe_why[160];

/* A connected loopback TCP pair; returns the client's fd (the others are
 * closed) or -errno. */
static int loopback_client(int *server)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int l, c = -1, err = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len) ||
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) ||
	    (*server = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0)
		err = -errno;
	close(l);
	if (err && c >= 0)
		close(c);
	return err ? err : c;
}

static void probe(void)
{
	int server = -1, fd = loopback_client(&server);

	if (fd < 0) {
		snprintf(probe_why, sizeof(probe_why),
			 "cannot probe kernel TLS: no loopback TCP (%s)",
			 strerror(-fd));
		return;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) == 0) {
		probe_result = 1;
	} else if (errno == ENOENT) {
		snprintf(probe_why, sizeof(probe_why),
			 "the kernel has no TLS upper-layer protocol "
			 "(CONFIG_TLS, module tls): TLS runs in user space");
	} else {
		snprintf(probe_why, sizeof(probe_why),
			 "setting TCP_ULP \"tls\" failed (%s): TLS runs in "
			 "user space", strerror(errno));
	}
	close(fd);
	close(server);
}

int mr_ktls_probe(const char **why)
{
	const char *env = getenv("MUXRING_TLS_NO_KTLS");

	if (env && *env && strcmp(env, "0")) {
		if (why)
			*why = "kernel TLS disabled by MUXRING_TLS_NO_KTLS";
		return 0;
	}
	if (mr_ktls_kernel != &mr_ktls_real_kernel) {
		if (why)
			*why = NULL;
		return 1;
	}
	pthread_once(&probe_once, probe);
	if (why)
		*why = probe_result ? NULL : probe_why;
	return probe_result;
}

int muxring_tls_ktls_available(const char **why)
{
	return mr_ktls_probe(why);
}

/* ---- handing the keys over -------------------------------------------- */

void mr_ktls_keylog(const SSL *ssl, const char *line)
{
	struct mr_ktls_secrets *sec = SSL_get_app_data(ssl);
	static const char client[] = "CLIENT_TRAFFIC_SECRET_0 ";
	static const char server[] = "SERVER_TRAFFIC_SECRET_0 ";
	unsigned char *out;
	size_t *out_len, n = 0;
	const char *hex;

	if (!sec)
		return;
	if (!strncmp(line, client, sizeof(client) - 1)) {
		out = sec->client;
		out_len = &sec->client_len;
	} else if (!strncmp(line, server, sizeof(server) - 1)) {
		out = sec->server;
		out_len = &sec->server_len;
	} else {
		return;
	}
	/* "<label> <client random> <secret>", both in hex. */
	hex = strchr(line + sizeof(client) - 1, ' ');
	if (!hex)
		return;
	for (hex++; hex[0] && hex[1] && n < sizeof(sec->client); hex += 2) {
		unsigned v;

		if (sscanf(hex, "%2x", &v) != 1)
			return;
		out[n++] = (unsigned char)v;
	}
	*out_len = n;
}

/* HKDF-Expand-Label(secret, label, "", len) of RFC 8446, section 7.1. */
static int expand_label(const EVP_MD *md, const unsigned char *secret,
			size_t secret_len, const char *label,
			unsigned char *out, size_t len)
{
	unsigned char info[64];
	size_t n = 0, label_len = strlen(label);
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, ok = 0;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5];

	info[n++] = (unsigned char)(len >> 8);
	info[n++] = (unsigned char)len;
	info[n++] = (unsigned char)(6 + label_len);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, label_len);
	n += label_len;
	info[n++] = 0; /* empty context */
	params[0] = OSSL_PARAM_construct_utf8_string(
		"digest", (char *)EVP_MD_get0_name(md), 0);
	params[1] = OSSL_PARAM_construct_octet_string(
		"key", (void *)secret, secret_len);
	params[2] = OSSL_PARAM_construct_octet_string("info", info, n);
	params[3] = OSSL_PARAM_construct_int("mode", &mode);
	params[4] = OSSL_PARAM_construct_end();
	if (kctx)
		ok = EVP_KDF_derive(kctx, out, len, params) == 1;
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ok ? 0 : -EINVAL;
}

int mr_ktls_crypto_info(SSL *ssl, const unsigned char *secret, size_t len,
			uint64_t rec_seq, union mr_ktls_info *ki)
{
	unsigned char seq[8];
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	const EVP_MD *md = cipher ? SSL_CIPHER_get_handshake_digest(cipher)
				  : NULL;
	const char *name = cipher ? SSL_CIPHER_get_name(cipher) : "";
	unsigned char key[32], iv[12];
	size_t key_len;
	int size;

	memset(ki, 0, sizeof(*ki));
	ki->base.version = TLS_1_3_VERSION;
	if (!strcmp(name, "TLS_AES_128_GCM_SHA256")) {
		ki->base.cipher_type = TLS_CIPHER_AES_GCM_128;
		key_len = 16;
		size = sizeof(ki->gcm128);
	} else if (!strcmp(name, "TLS_AES_256_GCM_SHA384")) {
		ki->base.cipher_type = TLS_CIPHER_AES_GCM_256;
		key_len = 32;
		size = sizeof(ki->gcm256);
	} else if (!strcmp(name, "TLS_CHACHA20_POLY1305_SHA256")) {
		ki->base.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		key_len = 32;
		size = sizeof(ki->chacha);
	} else {
		return -EOPNOTSUPP;
	}
	if (!md || !len || expand_label(md, secret, len, "key", key, key_len) ||
	    expand_label(md, secret, len, "iv", iv, sizeof(iv)))
		return -EINVAL;
	/* Big-endian, as in the record nonce (RFC 8446, 5.3). */
	for (int i = 7; i >= 0; i--, rec_seq >>= 8)
		seq[i] = (unsigned char)rec_seq;
	switch (ki->base.cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		memcpy(ki->gcm128.key, key, 16);
		memcpy(ki->gcm128.salt, iv, 4);
		memcpy(ki->gcm128.iv, iv + 4, 8);
		memcpy(ki->gcm128.rec_seq, seq, 8);
		break;
	case TLS_CIPHER_AES_GCM_256:
		memcpy(ki->gcm256.key, key, 32);
		memcpy(ki->gcm256.salt, iv, 4);
		memcpy(ki->gcm256.iv, iv + 4, 8);
		memcpy(ki->gcm256.rec_seq, seq, 8);
		break;
	default:
		memcpy(ki->chacha.key, key, 32);
		memcpy(ki->chacha.iv, iv, 12);
		memcpy(ki->chacha.rec_seq, seq, 8);
		break;
	}
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	return size;
}

int mr_ktls_install_tx(SSL *ssl, int fd, bool server,
		       const struct mr_ktls_secrets *sec)
{
	union mr_ktls_info ki;
	int size, err = 0;

	if (SSL_version(ssl) != TLS1_3_VERSION)
		return -EOPNOTSUPP; /* TLS 1.2 would need its key block */
	/* rec_seq 0: no record was sent under these keys yet. */
	size = mr_ktls_crypto_info(ssl, server ? sec->server : sec->client,
				   server ? sec->server_len : sec->client_len,
				   0, &ki);
	if (size < 0)
		return size;
	err = mr_ktls_kernel->setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls",
					 sizeof("tls"));
	if (!err)
		err = mr_ktls_kernel->setsockopt(fd, SOL_TLS, TLS_TX, &ki,
						 (socklen_t)size);
	OPENSSL_cleanse(&ki, sizeof(ki));
	return err;
}

int mr_ktls_install_rx(SSL *ssl, int fd, bool server,
		       const struct mr_ktls_secrets *sec, uint64_t rec_seq)
{
	union mr_ktls_info ki;
	int size, err;

	if (SSL_version(ssl) != TLS1_3_VERSION)
		return -EOPNOTSUPP;
	/* What this side receives, the peer sent with its own secret. */
	size = mr_ktls_crypto_info(ssl, server ? sec->client : sec->server,
				   server ? sec->client_len : sec->server_len,
				   rec_seq, &ki);
	if (size < 0)
		return size;
	err = mr_ktls_kernel->setsockopt(fd, SOL_TLS, TLS_RX, &ki,
					 (socklen_t)size);
	OPENSSL_cleanse(&ki, sizeof(ki));
	return err;
}

long mr_ktls_recv_record(int fd, uint8_t *buf, size_t cap, uint8_t *type)
{
	return mr_ktls_kernel->recv_record(fd, buf, cap, type);
}

int mr_ktls_send_close_notify(int fd)
{
	unsigned char alert[2] = { 1, 0 }; /* warning, close_notify */
	/* Zeroed: the padding after the one data byte goes to the kernel too. */
	char control[CMSG_SPACE(sizeof(unsigned char))] = { 0 };
	struct iovec iov = { .iov_base = alert, .iov_len = sizeof(alert) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
		.msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_TLS;
	cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
	cmsg->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cmsg) = 21; /* alert */
	return sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) ==
			       (ssize_t)sizeof(alert)
		       ? 0
		       : -errno;
}
