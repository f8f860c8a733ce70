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
#include <stddef.h>
#include <stdint.h>

#include <linux/tls.h>
#include <sys/socket.h>

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

/*
 * The memory an SSL reads and writes (tls_bio.c): a cursor on the bytes
 * the loop fed, a window in the loop's send block, and a spill for each
 * direction (memory BIOs) for what falls outside them.
 */
struct mr_tls_io {
	const uint8_t *in;           /* fed bytes not read yet */
	size_t in_left;
	BIO *in_spill;               /* input kept past its feed */
	uint8_t *out;                /* window for records, or NULL */
	size_t out_cap, out_len;
	BIO *out_spill;              /* output outside the window */
	/* The record stream read so far: the header of the current record
	 * (rec_head_have bytes of it), the rest of its body, and how many
	 * records were read whole. */
	uint8_t rec_head[5];
	size_t rec_head_have, rec_body_left;
	uint64_t records;
};

/* A BIO over io (creates its spills); NULL on ENOMEM. The BIO does not
 * own io: free the spills with mr_tls_io_free() after the BIO. */
BIO *mr_tls_io_bio(struct mr_tls_io *io);
void mr_tls_io_free(struct mr_tls_io *io);
/* The fed bytes are going away: copies what is unread into the spill. */
void mr_tls_io_keep_input(struct mr_tls_io *io);
/* Bytes of the current record OpenSSL has not read yet (0: it stands on
 * a record boundary). */
size_t mr_tls_io_record_rest(const struct mr_tls_io *io);

/* The transport filter of TLS sessions (tls_conn.c): without the kernel,
 * with the hand-over of the sending keys to it (clients), and of both
 * directions' (servers). */
extern const struct muxring_filter_ops mr_tls_filter_ops;
extern const struct muxring_filter_ops mr_tls_filter_ops_ktls;
extern const struct muxring_filter_ops mr_tls_filter_ops_ktls_server;

void mr_tls_ref(struct muxring_tls *tls);
void mr_tls_unref(struct muxring_tls *tls);

/* The negotiated SSL of a TLS session, or NULL. */
SSL *mr_tls_ssl_of(const struct muxring_session *sess);

/*
 * kTLS (ktls.c): whether the kernel has TCP_ULP "tls" (probed once), and
 * the hand-over of a finished handshake's keys to it.
 */
int mr_ktls_probe(const char **why);

/* The traffic secrets OpenSSL's keylog callback reports for a session
 * (its SSL's app data points here while kTLS may be used). */
struct mr_ktls_secrets {
	unsigned char client[64], server[64];
	size_t client_len, server_len;
};

/* The kernel's description of a sending direction's keys. */
union mr_ktls_info {
	struct tls_crypto_info base;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/* Fills *ki for the TLS 1.3 session ssl from a traffic secret: key and IV
 * derived as RFC 8446 (7.1, 7.3) says, the next record's sequence number
 * rec_seq. Returns the size of the cipher's structure, or -EOPNOTSUPP (a
 * cipher the kernel does not take) or -EINVAL. */
int mr_ktls_crypto_info(SSL *ssl, const unsigned char *secret, size_t len,
			uint64_t rec_seq, union mr_ktls_info *ki);

/* SSL_CTX_set_keylog_callback's callback: keeps the two secrets. */
void mr_ktls_keylog(const SSL *ssl, const char *line);

/* Hands this side's sending keys to the kernel on fd. Returns 0, or a
 * negative errno (-EOPNOTSUPP: not TLS 1.3 or a cipher the kernel does not
 * take); the session then stays in user space. */
int mr_ktls_install_tx(SSL *ssl, int fd, bool server,
		       const struct mr_ktls_secrets *sec);

/* Hands the peer's sending keys (this side's receiving) to the kernel on
 * fd, whose TLS ULP is set (mr_ktls_install_tx); rec_seq is the number of
 * records the peer sent with them so far. Returns 0 or a negative errno
 * (receiving then stays in user space). */
int mr_ktls_install_rx(SSL *ssl, int fd, bool server,
		       const struct mr_ktls_secrets *sec, uint64_t rec_seq);

/* Sends close_notify through the kernel's TLS (an alert record). Returns
 * 0 or a negative errno. */
int mr_ktls_send_close_notify(int fd);

/* Reads the record the kernel's receive stopped at (one that is not
 * application data) into buf, its type into *type. Does not block.
 * Returns its length or a negative errno (-EAGAIN: no such record). */
long mr_ktls_recv_record(int fd, uint8_t *buf, size_t cap, uint8_t *type);

/*
 * The kernel as kTLS sees it: the real one, or a test's stand-in. With a
 * stand-in (the kernel here lacks CONFIG_TLS), kernel TLS counts as
 * available without a probe, every install goes to its setsockopt, and
 * its record_rest hears where the receive hand-over waits for the rest of
 * a record, so that a test peer can play what the kernel would deliver.
 */
struct mr_ktls_kernel {
	int (*setsockopt)(int fd, int level, int name, const void *val,
			  socklen_t len);
	long (*recv_record)(int fd, uint8_t *buf, size_t cap, uint8_t *type);
	void (*record_rest)(int fd, size_t n); /* NULL for the real one */
};
extern const struct mr_ktls_kernel mr_ktls_real_kernel;
/* Set it before muxring_tls_new() and put it back after the test. */
extern const struct mr_ktls_kernel *mr_ktls_kernel;

#endif
