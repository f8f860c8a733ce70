/*
 * tls_conn.c - one session's TLS: an SSL over the loop's memory.
 *
 * The main idea: the loop owns the socket and every buffer; OpenSSL only
 * ever sees memory (tls_bio.c). SSL_read takes the ciphertext where the
 * ring received it and decrypts into the block the loop hands over;
 * SSL_write encrypts the engine's frames straight into the loop's send
 * block. Nothing here blocks or makes a system call, so a peer
 * that stalls costs nothing but the handshake deadline the loop keeps.
 *
 * Every failure is turned into one sentence and an errno value
 * (muxring_tls.h lists them) at the moment it happens, while OpenSSL's
 * error queue still holds the reason.
 */
#include "tls/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

struct mr_tls_conn {
	struct muxring_tls *tls;     /* holds a reference */
	struct muxring_session *sess;
	SSL *ssl;
	struct mr_tls_io io;         /* the memory it reads and writes */
	bool ktls;                   /* the kernel encrypts what is sent */
	bool ktls_rx;                /* ... and decrypts what arrives */
	bool peer_key_updated;       /* a KeyUpdate came: the peer's secret
					is no longer the keylog's */
	bool hs_counted;             /* hs_records is known */
	uint64_t hs_records;         /* records the handshake took, of
					those the BIO read */
	struct mr_ktls_secrets secrets; /* traffic secrets (kTLS only) */
	int setup_error;             /* a client without a name to check:
					reported by the first read */
	bool data_seen;              /* application data came from the peer:
					the handshake, verification of this
					side included (TLS 1.3 reports the
					peer's verdict after its own end of
					the handshake), is over */
	char error[256];             /* why it failed, "" while it has not */
};

static bool is_ip_literal(const char *name)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, name, addr) == 1 ||
	       inet_pton(AF_INET6, name, addr) == 1;
}

/* Client: SNI and the name the certificate must carry. An IP address is
 * checked against the certificate's IP entries and sends no SNI (RFC 6066
 * forbids literal addresses there). */
static int set_peer_name(struct mr_tls_conn *c, const char *name)
{
	if (!name) {
		if (!c->tls->verify_peer)
			return 0;
		snprintf(c->error, sizeof(c->error),
			 "TLS: no server name to verify the certificate "
			 "against (set muxring_tls_opts.server_name)");
		c->setup_error = -EINVAL;
		return 0;
	}
	if (is_ip_literal(name)) {
		if (c->tls->verify_peer &&
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
						  name) != 1)
			return -ENOMEM;
		return 0;
	}
	if (SSL_set_tlsext_host_name(c->ssl, name) != 1)
		return -ENOMEM;
	if (c->tls->verify_peer && SSL_set1_host(c->ssl, name) != 1)
		return -ENOMEM;
	return 0;
}

static void conn_free(struct mr_tls_conn *c)
{
	SSL_free(c->ssl); /* and its BIO */
	mr_tls_io_free(&c->io);
	mr_tls_unref(c->tls);
	free(c);
}

/* OpenSSL's message callback (kTLS only): notes a peer's KeyUpdate. */
static void on_message(int write_p, int version, int content_type,
		       const void *buf, size_t len, SSL *ssl, void *arg)
{
	struct mr_tls_conn *c = arg;

	(void)version;
	(void)ssl;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len &&
	    *(const uint8_t *)buf == SSL3_MT_KEY_UPDATE)
		c->peer_key_updated = true;
}

static int conn_open(void *arg, struct muxring_session *sess,
		     enum muxring_role role, const char *host, void **state)
{
	struct muxring_tls *tls = arg;
	struct mr_tls_conn *c;
	BIO *bio;
	int err;

	if (role != tls->role)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	mr_tls_ref(tls);
	c->tls = tls;
	c->sess = sess;
	c->ssl = SSL_new(tls->ctx);
	bio = c->ssl ? mr_tls_io_bio(&c->io) : NULL;
	if (c->ssl && tls->try_ktls) {
		SSL_set_app_data(c->ssl, &c->secrets);
		SSL_set_msg_callback(c->ssl, on_message);
		SSL_set_msg_callback_arg(c->ssl, c);
	}
	if (!bio) {
		conn_free(c);
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_set_bio(c->ssl, bio, bio); /* one reference, taken by ssl */
	if (role == MUXRING_CLIENT) {
		SSL_set_connect_state(c->ssl);
		err = set_peer_name(c, tls->server_name ? tls->server_name
							: host);
		if (err) {
			conn_free(c);
			ERR_clear_error();
			return err;
		}
	} else {
		SSL_set_accept_state(c->ssl);
	}
	*state = c;
	return 0;
}

/* ---- failures ------------------------------------------------------------ */

static const char *stage(const struct mr_tls_conn *c)
{
	return c->data_seen ? "TLS failed" : "TLS handshake failed";
}

/* An alert's name; OpenSSL 3.0 has no long name for the TLS 1.3 ones
 * ("certificate required"), but its reason text ("tlsv13 alert
 * certificate required") has it after "alert ". */
static const char *alert_name(int alert, const char *reason_text)
{
	const char *name = SSL_alert_desc_string_long(alert);
	const char *p = reason_text ? strstr(reason_text, "alert ") : NULL;

	if (strcmp(name, "unknown") || !p)
		return name;
	return p + strlen("alert ");
}

/* The error OpenSSL just reported, as a sentence in c->error and an errno
 * value (muxring_tls.h). */
static int describe_ssl_error(struct mr_tls_conn *c)
{
	unsigned long e = ERR_peek_last_error();
	int reason = ERR_GET_REASON(e);
	long verify = SSL_get_verify_result(c->ssl);
	const char *text = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK) {
		snprintf(c->error, sizeof(c->error),
			 "%s: certificate verification failed: %s", stage(c),
			 X509_verify_cert_error_string(verify));
		return -EKEYREJECTED;
	}
	if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		snprintf(c->error, sizeof(c->error),
			 "%s: the client sent no certificate, and one is "
			 "required", stage(c));
		return -EKEYREJECTED;
	}
	if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
		snprintf(c->error, sizeof(c->error),
			 "%s: the peer sent the TLS alert: %s", stage(c),
			 alert_name(reason - SSL_AD_REASON_OFFSET, text));
		return -EPROTO;
	}
	snprintf(c->error, sizeof(c->error), "%s: %s", stage(c),
		 text ? text : "protocol error");
	return -EPROTO;
}

/* The result r of an SSL call: 0 when it only waits for input (or saw the
 * peer's close_notify), else the failure. */
static long ssl_result(struct mr_tls_conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SSL:
		return describe_ssl_error(c);
	default:
		snprintf(c->error, sizeof(c->error), "%s: %s", stage(c),
			 "unexpected end of the record stream");
		ERR_clear_error();
		return -EPROTO;
	}
}

/* ---- the filter ---------------------------------------------------------- */

static int conn_feed(void *state, const uint8_t *data, size_t len)
{
	struct mr_tls_conn *c = state;

	if (len) {
		mr_tls_io_keep_input(&c->io); /* nothing, normally */
		c->io.in = data;
		c->io.in_left = len;
		return 0;
	}
	if (!c->data_seen && !(SSL_get_shutdown(c->ssl) &
			       SSL_RECEIVED_SHUTDOWN)) {
		snprintf(c->error, sizeof(c->error),
			 "TLS handshake failed: the peer closed the connection");
		return -ECONNRESET;
	}
	if (!(SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN)) {
		snprintf(c->error, sizeof(c->error),
			 "TLS connection truncated: the peer closed it without "
			 "close_notify");
		return -ECONNRESET;
	}
	return 0;
}

static void conn_feed_end(void *state)
{
	struct mr_tls_conn *c = state;

	mr_tls_io_keep_input(&c->io);
}

static long conn_read(void *state, uint8_t *out, size_t cap)
{
	struct mr_tls_conn *c = state;
	size_t n = 0;
	int r;

	if (c->setup_error)
		return c->setup_error;
	if (!SSL_is_init_finished(c->ssl)) {
		ERR_clear_error();
		r = SSL_do_handshake(c->ssl);
		if (r != 1)
			return ssl_result(c, r);
		/* What follows is under the application secrets. */
		c->hs_records = c->io.records;
		c->hs_counted = true;
	}
	if (SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN)
		return 0;
	/* Nothing fed is left, in OpenSSL or here: the read could only say
	 * "want read" (the loop asks until it does, once per message). */
	if (!c->io.in_left && !SSL_has_pending(c->ssl) &&
	    !BIO_ctrl_pending(c->io.in_spill))
		return 0;
	ERR_clear_error();
	r = SSL_read_ex(c->ssl, out, cap, &n);
	if (c->ktls && BIO_ctrl_pending(c->io.out_spill)) {
		/* OpenSSL answered something (a key update) with keys the
		 * kernel now holds: it cannot be sent. */
		snprintf(c->error, sizeof(c->error),
			 "TLS failed: the peer asked for a key update, which "
			 "this kernel TLS session cannot follow");
		return -EPROTO;
	}
	if (r != 1)
		return ssl_result(c, r);
	c->data_seen = true;
	return (long)n;
}

static long conn_write(void *state, const uint8_t *data, size_t len)
{
	struct mr_tls_conn *c = state;
	size_t n = 0;
	int r;

	ERR_clear_error();
	r = SSL_write_ex(c->ssl, data, len, &n);
	if (r != 1) {
		long err = ssl_result(c, r);

		return err ? err : -EPROTO;
	}
	return (long)n;
}

static void conn_set_output(void *state, uint8_t *out, size_t cap)
{
	struct mr_tls_conn *c = state;

	c->io.out = out;
	c->io.out_cap = cap;
	c->io.out_len = 0;
}

static size_t conn_output_done(void *state)
{
	struct mr_tls_conn *c = state;
	size_t n = c->io.out_len;

	c->io.out = NULL;
	c->io.out_cap = c->io.out_len = 0;
	return n;
}

static size_t conn_pending(void *state)
{
	struct mr_tls_conn *c = state;

	return BIO_ctrl_pending(c->io.out_spill);
}

static size_t conn_drain(void *state, uint8_t *out, size_t cap)
{
	struct mr_tls_conn *c = state;
	int n;

	if (!cap)
		return 0;
	n = BIO_read(c->io.out_spill, out, cap > INT32_MAX ? INT32_MAX : (int)cap);
	return n > 0 ? (size_t)n : 0;
}

static bool conn_established(void *state)
{
	struct mr_tls_conn *c = state;

	return SSL_is_init_finished(c->ssl);
}

/* The loop asks once, between the handshake's last bytes and the first
 * frame: the kernel's record count starts at 0 then. A failure leaves the
 * session in user space (a TLS ULP without keys passes bytes through). */
static bool conn_passthrough(void *state)
{
	struct mr_tls_conn *c = state;
	bool server = c->tls->role == MUXRING_SERVER;

	c->ktls = mr_ktls_install_tx(c->ssl, muxring_session_fd(c->sess),
				     server, &c->secrets) == 0;
	/* A server keeps its peer's secret for the receive hand-over. */
	if (server && c->ktls)
		OPENSSL_cleanse(c->secrets.server, sizeof(c->secrets.server));
	else
		OPENSSL_cleanse(&c->secrets, sizeof(c->secrets));
	return c->ktls;
}

/* Whether the kernel may take the receiving over now (see ktls.c): the
 * kernel sending, the peer's first secret still in use, everything fed
 * read by OpenSSL, nothing decrypted left unread. */
static int receive_refusal(const struct mr_tls_conn *c)
{
	if (!c->ktls || !c->hs_counted || !c->secrets.client_len)
		return -EOPNOTSUPP;
	if (c->peer_key_updated || c->error[0] ||
	    SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN)
		return -EPROTO;
	if (c->io.in_left || BIO_ctrl_pending(c->io.in_spill))
		return -EBUSY;
	return 0;
}

static long conn_receive_handover(void *state)
{
	struct mr_tls_conn *c = state;
	int fd = muxring_session_fd(c->sess);
	size_t rest;
	int err = receive_refusal(c);

	if (!err) {
		rest = mr_tls_io_record_rest(&c->io);
		if (rest) {
			if (mr_ktls_kernel->record_rest)
				mr_ktls_kernel->record_rest(fd, rest);
			return (long)rest;
		}
		if (SSL_has_pending(c->ssl))
			err = -EBUSY;
	}
	if (!err)
		err = mr_ktls_install_rx(c->ssl, fd, true, &c->secrets,
					 c->io.records - c->hs_records);
	OPENSSL_cleanse(&c->secrets, sizeof(c->secrets));
	c->ktls_rx = err == 0;
	/* The handshake, verification of the client included, is over. */
	if (c->ktls_rx)
		c->data_seen = true;
	return err;
}

/* The kernel's receive stopped with err at a record that is not data:
 * close_notify is a clean end, anything else ends the session (a client
 * sends no ticket, and a KeyUpdate's new keys could not be given to the
 * kernel without losing the records that follow it). */
static int conn_receive_failed(void *state, int err)
{
	struct mr_tls_conn *c = state;
	uint8_t record[SSL3_RT_MAX_PLAIN_LENGTH];
	uint8_t type = 0;
	long n;

	if (!c->ktls_rx)
		return err;
	n = mr_ktls_recv_record(muxring_session_fd(c->sess), record,
				sizeof(record), &type);
	if (n < 0)
		return err; /* no such record: the transport's own error */
	if (type == SSL3_RT_ALERT && n == 2 && record[1] == SSL_AD_CLOSE_NOTIFY) {
		SSL_set_shutdown(c->ssl, SSL_get_shutdown(c->ssl) |
					 SSL_RECEIVED_SHUTDOWN);
		return 1;
	}
	if (type == SSL3_RT_ALERT && n == 2) {
		snprintf(c->error, sizeof(c->error),
			 "TLS failed: the peer sent the TLS alert: %s",
			 SSL_alert_desc_string_long(record[1]));
		return -EPROTO;
	}
	snprintf(c->error, sizeof(c->error),
		 "TLS failed: the peer sent a TLS record the kernel cannot "
		 "hand over (%s)",
		 type == SSL3_RT_HANDSHAKE && n && record[0] == SSL3_MT_KEY_UPDATE
			 ? "KeyUpdate"
			 : type == SSL3_RT_HANDSHAKE ? "a handshake message"
			 : type == SSL3_RT_ALERT     ? "a malformed alert"
						     : "an unknown record type");
	return -EPROTO;
}

static void conn_shutdown(void *state)
{
	struct mr_tls_conn *c = state;

	if (c->ktls) {
		(void)mr_ktls_send_close_notify(muxring_session_fd(c->sess));
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN);
		return;
	}
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl); /* queues close_notify in c->out */
	ERR_clear_error();
}

static const char *conn_error(void *state)
{
	struct mr_tls_conn *c = state;

	return c->error[0] ? c->error : NULL;
}

static void conn_close(void *state)
{
	struct mr_tls_conn *c = state;

	OPENSSL_cleanse(&c->secrets, sizeof(c->secrets));
	conn_free(c);
}

/* What every TLS filter does; the tables below differ in what they ask of
 * the kernel. */
#define TLS_FILTER_OPS                                                        \
	.open = conn_open, .feed = conn_feed, .feed_end = conn_feed_end,      \
	.read = conn_read, .write = conn_write, .set_output = conn_set_output, \
	.output_done = conn_output_done, .pending = conn_pending,             \
	.drain = conn_drain, .established = conn_established,                 \
	.shutdown = conn_shutdown, .error = conn_error, .close = conn_close

const struct muxring_filter_ops mr_tls_filter_ops = {
	TLS_FILTER_OPS,
};

/* The same with the question of the hand-over to the kernel: only where
 * the kernel has TLS, since asking delays the first frames until the
 * handshake's last bytes have been sent. A client's stops there. */
const struct muxring_filter_ops mr_tls_filter_ops_ktls = {
	TLS_FILTER_OPS,
	.passthrough = conn_passthrough,
};

/* A server's hands the receiving over too (ktls.c says why a server's
 * only). */
const struct muxring_filter_ops mr_tls_filter_ops_ktls_server = {
	TLS_FILTER_OPS,
	.passthrough = conn_passthrough,
	.receive_handover = conn_receive_handover,
	.receive_failed = conn_receive_failed,
};

static bool is_tls_filter(const struct muxring_filter *f)
{
	return f && (f->ops == &mr_tls_filter_ops ||
		     f->ops == &mr_tls_filter_ops_ktls ||
		     f->ops == &mr_tls_filter_ops_ktls_server);
}

/* The state of a TLS session of this library, or NULL. */
static struct mr_tls_conn *conn_of(const struct muxring_session *sess)
{
	if (!sess || !is_tls_filter(muxring_session_filter(sess)))
		return NULL;
	return muxring_session_filter_state(sess);
}

SSL *mr_tls_ssl_of(const struct muxring_session *sess)
{
	struct mr_tls_conn *c = conn_of(sess);

	return c && SSL_is_init_finished(c->ssl) ? c->ssl : NULL;
}

bool muxring_tls_ktls_active(const struct muxring_session *sess)
{
	struct mr_tls_conn *c = conn_of(sess);

	return c && c->ktls;
}

bool muxring_tls_ktls_receiving(const struct muxring_session *sess)
{
	struct mr_tls_conn *c = conn_of(sess);

	return c && c->ktls_rx;
}

bool muxring_tls_handshake_failed(const struct muxring_session *sess)
{
	struct mr_tls_conn *c = conn_of(sess);

	if (!sess || !is_tls_filter(muxring_session_filter(sess)))
		return false;
	return !c || !c->data_seen;
}
