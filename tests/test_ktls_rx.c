/*
 * test_ktls_rx.c - a TLS server session hands its receiving to the kernel.
 *
 * This kernel lacks CONFIG_TLS, so the kernel is played by a stand-in
 * (mr_ktls_kernel, tls.h) whose installs succeed and record what they were
 * given, and by the test's peer: a TLS 1.3 client made of an SSL over
 * memory, driven between the loop's turns, writing on its own end of a
 * loopback TCP connection. After its Finished it sends, in one piece, the
 * first frames of three streams in four records, the last one cut short
 * (so the server stands mid-record when it stops its multishot receive);
 * the stand-in tells it how many bytes the server reads exactly, it sends
 * them, and once TLS_RX was installed it sends the rest of the frames as
 * the kernel would hand them over: plaintext. Checked: the keys, IV, salt
 * and record number the stand-in got (derived on the peer's side from its
 * own secrets), every byte of every stream, that what came after the
 * switch reached the application as views of the receive ring, and how a
 * record that is not data ends the session afterwards (close_notify
 * cleanly, a KeyUpdate with a sentence naming it) as does an end without
 * close_notify. When the install fails (the real kernel's answer here),
 * the peer goes on encrypting and nothing is lost. A session closed, or
 * its loop destroyed, while it waits for the rest of a record frees all.
 * Only a server's filter offers the receive hand-over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/tls.h"
/* OpenSSL's lhash.h names two macros like the loop harness's calls. */
#undef lh_new
#undef lh_free
#include "loop_harness.h"
#include "tls_certs.h"
#include "uring/loop.h"
#include "wire/frame.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define STREAMS 3u
#define FRAME_PAYLOAD 2000u
#define FRAMES_PER_STREAM 4u
#define STREAM_BYTES (FRAME_PAYLOAD * FRAMES_PER_STREAM)
#define FRAME_BYTES (MR_FRAME_HEADER_LEN + FRAME_PAYLOAD)
/* The first frame of each stream goes encrypted, in RECORDS records. */
#define EARLY_BYTES (STREAMS * FRAME_BYTES)
#define RECORDS 4u


/* ---- the stand-in kernel --------------------------------------------------- */

static struct {
	int ulp_calls, tx_calls, rx_calls;
	union mr_ktls_info tx, rx;
	socklen_t tx_len, rx_len;
	bool rx_real;                /* TLS_RX goes to this (real) kernel */
	int rx_result;
	unsigned rest_calls;
	size_t rest;                 /* the last exact read asked for */
	uint8_t record[8], record_type; /* what the "kernel" stopped at */
	size_t record_len;
} fk;

static int fake_setsockopt(int fd, int level, int name, const void *val,
			   socklen_t len)
{
	if (level == IPPROTO_TCP && name == TCP_ULP) {
		fk.ulp_calls++;
		return 0;
	}
	assert_int_equal(level, SOL_TLS);
	assert_true(len <= sizeof(union mr_ktls_info));
	if (name == TLS_TX) {
		fk.tx_calls++;
		memcpy(&fk.tx, val, len);
		fk.tx_len = len;
		return 0;
	}
	assert_int_equal(name, TLS_RX);
	assert_int_equal(fk.ulp_calls, 1); /* the ULP came first */
	fk.rx_calls++;
	memcpy(&fk.rx, val, len);
	fk.rx_len = len;
	if (fk.rx_real)
		fk.rx_result = setsockopt(fd, level, name, val, len) ? -errno : 0;
	return fk.rx_result;
}

static long fake_recv_record(int fd, uint8_t *buf, size_t cap, uint8_t *type)
{
	size_t n = fk.record_len;

	(void)fd;
	if (!n)
		return -EAGAIN;
	assert_true(cap >= n);
	memcpy(buf, fk.record, n);
	*type = fk.record_type;
	fk.record_len = 0;
	return (long)n;
}

static void fake_record_rest(int fd, size_t n)
{
	(void)fd;
	fk.rest_calls++;
	fk.rest = n;
}

static const struct mr_ktls_kernel fake_kernel = {
	.setsockopt = fake_setsockopt,
	.recv_record = fake_recv_record,
	.record_rest = fake_record_rest,
};

/* ---- the peer ---------------------------------------------------------------- */

enum phase { HANDSHAKE, WAIT_REST, WAIT_RX, SENT_ALL };

struct peer {
	int fd;                      /* non-blocking */
	SSL_CTX *ctx;
	SSL *ssl;                    /* over memory BIOs */
	struct mr_ktls_secrets sec;
	enum phase phase;
	uint8_t frames[STREAMS * FRAMES_PER_STREAM * FRAME_BYTES];
	size_t frames_len;
	uint8_t *held;               /* the cut record's unsent bytes */
	size_t held_len, held_off;
	size_t cut;                  /* bytes of the last record sent at once */
	uint8_t *out;                /* bytes to send */
	size_t out_len, out_off;
	unsigned rest_seen;
	bool withhold_rest;          /* never send the cut record's rest */
	bool rest_sent_encrypted;    /* the install failed: the rest went so */
};

static struct peer peer;

static void out_put(struct peer *p, const void *data, size_t len)
{
	p->out = realloc(p->out, p->out_len + len);
	assert_non_null(p->out);
	memcpy(p->out + p->out_len, data, len);
	p->out_len += len;
}

static void out_flush(struct peer *p)
{
	while (p->out_off < p->out_len) {
		ssize_t n = send(p->fd, p->out + p->out_off,
				 p->out_len - p->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			return;
		}
		p->out_off += (size_t)n;
	}
}

/* Moves what the SSL wrote into the send queue. */
static void out_take_ssl(struct peer *p)
{
	char buf[16384];
	int n;

	while ((n = BIO_read(SSL_get_wbio(p->ssl), buf, sizeof(buf))) > 0)
		out_put(p, buf, (size_t)n);
}

/* The frames: STREAMS streams (ids 3, 5, 7) of FRAMES_PER_STREAM DATA
 * frames each, in rounds, SYN on the first and FIN on the last; the bytes
 * are those the harness's sinks expect from a client. */
static void make_frames(struct peer *p)
{
	struct lh_gen gen[STREAMS];
	unsigned f, i;

	for (i = 0; i < STREAMS; i++)
		lh_gen_init(&gen[i], ((uint64_t)(3 + 2 * i) << 1) + 1);
	p->frames_len = 0;
	for (f = 0; f < FRAMES_PER_STREAM; f++) {
		for (i = 0; i < STREAMS; i++) {
			uint8_t *h = p->frames + p->frames_len;
			uint8_t flags = f == 0 ? MR_FLAG_SYN
				      : f == FRAMES_PER_STREAM - 1 ? MR_FLAG_FIN
								   : 0;

			mr_frame_pack_data_header(h, 3 + 2 * i, flags,
						  FRAME_PAYLOAD);
			lh_gen_fill(&gen[i], h + MR_FRAME_HEADER_LEN,
				    FRAME_PAYLOAD);
			p->frames_len += FRAME_BYTES;
		}
	}
}

static void peer_start(struct peer *p, int fd)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	p->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(p->ctx);
	assert_int_equal(SSL_CTX_set_min_proto_version(p->ctx, TLS1_3_VERSION), 1);
	assert_int_equal(SSL_CTX_set_ciphersuites(p->ctx,
						  "TLS_AES_128_GCM_SHA256"), 1);
	SSL_CTX_set_keylog_callback(p->ctx, mr_ktls_keylog);
	p->ssl = SSL_new(p->ctx);
	assert_non_null(p->ssl);
	SSL_set_bio(p->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	SSL_set_app_data(p->ssl, &p->sec);
	SSL_set_connect_state(p->ssl);
	make_frames(p);
}

static void peer_free(struct peer *p)
{
	SSL_free(p->ssl);
	SSL_CTX_free(p->ctx);
	free(p->held);
	free(p->out);
	if (p->fd >= 0)
		close(p->fd);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

/* Encrypts frame bytes [from, to) as one record; returns its length. */
static size_t seal(struct peer *p, size_t from, size_t to)
{
	size_t before = BIO_ctrl_pending(SSL_get_wbio(p->ssl)), n = 0;

	assert_int_equal(SSL_write_ex(p->ssl, p->frames + from, to - from, &n), 1);
	assert_int_equal(n, to - from);
	return BIO_ctrl_pending(SSL_get_wbio(p->ssl)) - before;
}

/* The handshake's end: Finished, the first frames in RECORDS records, the
 * last of them cut after `cut` bytes, all in one send. */
static void send_early(struct peer *p)
{
	size_t per = EARLY_BYTES / RECORDS, last = 0, i;

	for (i = 0; i < RECORDS; i++)
		last = seal(p, i * per, i + 1 == RECORDS ? EARLY_BYTES
							  : (i + 1) * per);
	out_take_ssl(p);
	assert_true(p->cut < last);
	p->held_len = last - p->cut;
	p->held = malloc(p->held_len);
	assert_non_null(p->held);
	memcpy(p->held, p->out + p->out_len - p->held_len, p->held_len);
	p->out_len -= p->held_len;
	out_flush(p);
	/* One piece, so that the server's multishot receive takes it all
	 * before it stops. */
	assert_int_equal(p->out_off, p->out_len);
}

/* The rest of the frames: plaintext (what the kernel hands over) when the
 * install worked, else encrypted as before. */
static void send_rest(struct peer *p)
{
	if (fk.rx_result == 0) {
		out_put(p, p->frames + EARLY_BYTES, p->frames_len - EARLY_BYTES);
	} else {
		seal(p, EARLY_BYTES, p->frames_len);
		out_take_ssl(p);
		p->rest_sent_encrypted = true;
	}
}

/* What the server sends: handshake records until the handshake is done,
 * then it is not looked at (plaintext frames once the stand-in "took"
 * the sending). */
static void peer_read(struct peer *p)
{
	char buf[16384];
	ssize_t n;

	while ((n = recv(p->fd, buf, sizeof(buf), 0)) > 0)
		if (p->phase == HANDSHAKE)
			BIO_write(SSL_get_rbio(p->ssl), buf, (int)n);
}

/* One step of the peer, between two turns of the loop. */
static void peer_step(struct peer *p)
{
	peer_read(p);
	switch (p->phase) {
	case HANDSHAKE:
		if (SSL_do_handshake(p->ssl) == 1) {
			send_early(p);
			p->phase = WAIT_REST;
		} else {
			out_take_ssl(p);
		}
		break;
	case WAIT_REST:
	case WAIT_RX:
		/* Each exact read gets exactly the bytes it asked for. */
		if (fk.rest_calls != p->rest_seen && !p->withhold_rest) {
			p->rest_seen = fk.rest_calls;
			assert_true(fk.rest <= p->held_len - p->held_off);
			out_put(p, p->held + p->held_off, fk.rest);
			p->held_off += fk.rest;
			p->phase = WAIT_RX;
		}
		if (p->phase == WAIT_RX && fk.rx_calls) {
			assert_int_equal(p->held_off, p->held_len);
			send_rest(p);
			p->phase = SENT_ALL;
		}
		break;
	case SENT_ALL:
		break;
	}
	out_flush(p);
}

static bool peer_done(struct lh *h)
{
	peer_step(&peer);
	return peer.phase == SENT_ALL && lh_all_streams_closed(h) &&
	       h->nstreams == STREAMS;
}

static bool peer_ended(struct lh *h)
{
	peer_step(&peer);
	return lh_all_sessions_ended(h);
}

/* ---- where the bytes landed ------------------------------------------------ */

static uint64_t ring_bytes, other_bytes;

static bool in_ring(const struct muxring_loop *loop, const uint8_t *p)
{
	const struct mr_bufring *r = loop->bufring;

	return p >= r->arena && p < r->arena + r->arena_bytes;
}

static bool count_views(struct lh *h, struct muxring_cqe *cqe)
{
	if (cqe->type == MUXRING_CQE_DATA) {
		if (in_ring(h->loop, cqe->view.data))
			ring_bytes += cqe->view.len;
		else
			other_bytes += cqe->view.len;
	}
	return false;
}

/* ---- the session --------------------------------------------------------- */

static bool reading_the_rest(struct lh *h)
{
	(void)h;
	peer_step(&peer);
	return fk.rest_calls == 1;
}

enum ending { CLOSE_NOTIFY, KEY_UPDATE, OTHER_ALERT, NO_CLOSE_NOTIFY };

struct run {
	struct lh *h;
	struct lh_peer *server;
};

/* A server session with kTLS (the stand-in) against the peer, the peer's
 * record cut `cut` bytes into its last early record. */
static void start_session(struct run *r, size_t cut)
{
	struct muxring_tls_opts o = {
		.cert_file = tc_certs.server_cert,
		.key_file = tc_certs.server_key,
	};
	struct muxring_session_opts so = {0};
	struct muxring_tls *tls = NULL;
	int fds[2];

	ring_bytes = other_bytes = 0;
	mr_ktls_kernel = &fake_kernel;
	assert_int_equal(muxring_tls_new(&tls, MUXRING_SERVER, &o), 0);
	r->h = lh_new(NULL);
	r->h->hook = count_views;
	lh_tcp_fds(fds);
	peer_start(&peer, fds[0]);
	peer.cut = cut;
	r->server = lh_peer_new(r->h, true, LH_SINK, STREAM_BYTES);
	muxring_tls_apply(tls, &so);
	assert_int_equal(muxring_session_create(r->h->loop, fds[1],
						MUXRING_SERVER, &so,
						(uintptr_t)r->server,
						&r->server->sess), 0);
	muxring_tls_free(tls);
}

/* The same, until every stream closed. */
static void run_streams(struct run *r, size_t cut)
{
	start_session(r, cut);
	lh_run(r->h, peer_done, 30);
	lh_assert_streams_ok(r->h);
	assert_int_equal(r->server->ready_res, 0);
}

static void run_free(struct run *r)
{
	lh_free(r->h);
	peer_free(&peer);
	mr_ktls_kernel = &mr_ktls_real_kernel;
	memset(&fk, 0, sizeof(fk));
}

/* The keys each install got are the ones the peer's OpenSSL uses: its
 * receiving the server's first secret from record 0, the server's
 * receiving the client's from record `rec_seq`. */
static void check_keys(uint64_t rec_seq)
{
	union mr_ktls_info want;
	int size;

	assert_int_equal(fk.ulp_calls, 1);
	assert_int_equal(fk.tx_calls, 1);
	assert_true(peer.sec.client_len >= 32 && peer.sec.server_len >= 32);
	size = mr_ktls_crypto_info(peer.ssl, peer.sec.server,
				   peer.sec.server_len, 0, &want);
	assert_int_equal(size, sizeof(want.gcm128));
	assert_int_equal(fk.tx_len, size);
	assert_memory_equal(&fk.tx, &want, (size_t)size);

	assert_int_equal(fk.rx_calls, 1);
	size = mr_ktls_crypto_info(peer.ssl, peer.sec.client,
				   peer.sec.client_len, rec_seq, &want);
	assert_int_equal(fk.rx_len, size);
	assert_int_equal(fk.rx.base.version, TLS_1_3_VERSION);
	assert_int_equal(fk.rx.base.cipher_type, TLS_CIPHER_AES_GCM_128);
	assert_memory_equal(fk.rx.gcm128.key, want.gcm128.key, 16);
	assert_memory_equal(fk.rx.gcm128.iv, want.gcm128.iv, 8);
	assert_memory_equal(fk.rx.gcm128.salt, want.gcm128.salt, 4);
	assert_memory_equal(fk.rx.gcm128.rec_seq, want.gcm128.rec_seq, 8);
	assert_int_equal(fk.rx.gcm128.rec_seq[7], rec_seq);
}

/* Payload bytes before and after the switch: the first frame of each
 * stream went through OpenSSL (decrypted into blocks of the heap), the
 * rest came as the kernel's plaintext and must be views of the ring (a
 * piece under 1 KiB cut off by the end of a ring buffer may be copied:
 * at most one per buffer the rest spans, two here). */
static void check_zero_copy(const struct run *r)
{
	uint64_t early = STREAMS * FRAME_PAYLOAD;
	uint64_t late = STREAMS * STREAM_BYTES - early;

	assert_int_equal(ring_bytes + other_bytes, STREAMS * STREAM_BYTES);
	assert_true(ring_bytes <= late);
	assert_true(ring_bytes + 2048 >= late);
	assert_true(r->server->ended);
	assert_int_equal(r->server->final_stats.recv_copied, 0);
}

/* Only a server's filter offers the receive hand-over (a client's
 * receiving stays in user space, ktls.c says why); both offer the
 * sending's. Without kernel TLS neither is asked. */
static void test_only_servers_hand_receiving_over(void **state)
{
	struct muxring_tls_opts so = {
		.cert_file = tc_certs.server_cert,
		.key_file = tc_certs.server_key,
	}, co = {.ca_file = tc_certs.ca, .server_name = "localhost"};
	struct muxring_session_opts sopts = {0}, copts = {0};
	struct muxring_tls *server = NULL, *client = NULL;

	(void)state;
	mr_ktls_kernel = &fake_kernel;
	assert_int_equal(muxring_tls_new(&server, MUXRING_SERVER, &so), 0);
	assert_int_equal(muxring_tls_new(&client, MUXRING_CLIENT, &co), 0);
	muxring_tls_apply(server, &sopts);
	muxring_tls_apply(client, &copts);
	assert_non_null(sopts.filter->ops->passthrough);
	assert_non_null(sopts.filter->ops->receive_handover);
	assert_non_null(sopts.filter->ops->receive_failed);
	assert_non_null(copts.filter->ops->passthrough);
	assert_null(copts.filter->ops->receive_handover);
	muxring_tls_free(server);
	muxring_tls_free(client);
	mr_ktls_kernel = &mr_ktls_real_kernel;

	so.flags = MUXRING_TLS_NO_KTLS;
	assert_int_equal(muxring_tls_new(&server, MUXRING_SERVER, &so), 0);
	muxring_tls_apply(server, &sopts);
	assert_null(sopts.filter->ops->passthrough);
	assert_null(sopts.filter->ops->receive_handover);
	muxring_tls_free(server);
}

/* A session that waits for the rest of a record, which never comes: its
 * close cancels the exact read, and a loop destroyed in the middle of it
 * frees everything (ASan checks). */
static void test_close_and_destroy_while_reading_the_rest(void **state)
{
	struct run r;

	(void)state;
	for (int destroy = 0; destroy < 2; destroy++) {
		start_session(&r, 700);
		peer.withhold_rest = true;
		lh_run(r.h, reading_the_rest, 30);
		lh_run_for(r.h, 0.05);
		assert_int_equal(fk.rx_calls, 0);
		if (!destroy) {
			assert_int_equal(muxring_session_close(r.server->sess,
							       0, NULL, 0), 0);
			lh_run(r.h, lh_all_sessions_ended, 20);
			assert_int_equal(fk.rx_calls, 0);
		}
		run_free(&r);
	}
}

/* Ends the session from the peer's side as `how` says. */
static void end_session(struct run *r, enum ending how)
{
	static const uint8_t key_update[] = { SSL3_MT_KEY_UPDATE, 0, 0, 1, 0 };
	struct linger hard = { .l_onoff = 1, .l_linger = 0 };

	switch (how) {
	case CLOSE_NOTIFY:
		fk.record[0] = SSL3_AL_WARNING;
		fk.record[1] = SSL_AD_CLOSE_NOTIFY;
		fk.record_len = 2;
		fk.record_type = SSL3_RT_ALERT;
		break;
	case OTHER_ALERT:
		fk.record[0] = SSL3_AL_FATAL;
		fk.record[1] = SSL_AD_INTERNAL_ERROR;
		fk.record_len = 2;
		fk.record_type = SSL3_RT_ALERT;
		break;
	case KEY_UPDATE:
		memcpy(fk.record, key_update, sizeof(key_update));
		fk.record_len = sizeof(key_update);
		fk.record_type = SSL3_RT_HANDSHAKE;
		break;
	case NO_CLOSE_NOTIFY:
		break;
	}
	if (how == NO_CLOSE_NOTIFY) {
		assert_int_equal(shutdown(peer.fd, SHUT_WR), 0);
	} else {
		/* The real kernel fails the receive (EIO) at such a record;
		 * a reset fails it here, and the stand-in holds the record. */
		assert_int_equal(setsockopt(peer.fd, SOL_SOCKET, SO_LINGER,
					    &hard, sizeof(hard)), 0);
		close(peer.fd);
		peer.fd = -1;
	}
	lh_run(r->h, how == NO_CLOSE_NOTIFY ? peer_ended : lh_all_sessions_ended,
	       20);
}

static void test_switch_mid_record_then_key_update(void **state)
{
	struct run r;

	(void)state;
	run_streams(&r, 700);
	/* One exact read of the cut record's body, then the install. */
	assert_int_equal(fk.rest_calls, 1);
	assert_int_equal(peer.held_off, peer.held_len);
	assert_true(muxring_tls_ktls_active(r.server->sess));
	assert_true(muxring_tls_ktls_receiving(r.server->sess));
	check_keys(RECORDS);
	end_session(&r, KEY_UPDATE);
	check_zero_copy(&r);
	assert_int_equal(r.server->end_res, -EPROTO);
	assert_non_null(strstr(r.server->end_debug,
			       "the kernel cannot hand over (KeyUpdate)"));
	run_free(&r);
}

static void test_switch_mid_header_then_close_notify(void **state)
{
	struct run r;

	(void)state;
	/* Two bytes of the last record's header: the rest of the header is
	 * read exactly, then its body. */
	run_streams(&r, 2);
	assert_int_equal(fk.rest_calls, 2);
	check_keys(RECORDS);
	end_session(&r, CLOSE_NOTIFY);
	check_zero_copy(&r);
	assert_int_equal(r.server->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	assert_null(strstr(r.server->end_debug, "TLS"));
	run_free(&r);
}

static void test_alert_and_truncation_after_switch(void **state)
{
	struct run r;

	(void)state;
	run_streams(&r, 100);
	end_session(&r, OTHER_ALERT);
	assert_int_equal(r.server->end_res, -EPROTO);
	assert_non_null(strstr(r.server->end_debug,
			       "the peer sent the TLS alert: internal error"));
	run_free(&r);

	run_streams(&r, 100);
	end_session(&r, NO_CLOSE_NOTIFY);
	assert_int_equal(r.server->end_res, -ECONNRESET);
	assert_non_null(strstr(r.server->end_debug, "truncated"));
	run_free(&r);
}

/* The install fails (TLS_RX given to this kernel, which has no TLS): the
 * receiving stays in user space, the peer keeps encrypting, every byte
 * arrives. */
static void test_install_fails_nothing_lost(void **state)
{
	struct run r;

	(void)state;
	fk.rx_real = true;
	run_streams(&r, 300);
	assert_int_equal(fk.rx_calls, 1);
	assert_true(fk.rx_result < 0);
	assert_true(peer.rest_sent_encrypted);
	assert_true(muxring_tls_ktls_active(r.server->sess));
	assert_false(muxring_tls_ktls_receiving(r.server->sess));
	assert_int_equal(ring_bytes, 0); /* all decrypted in user space */
	end_session(&r, NO_CLOSE_NOTIFY);
	assert_non_null(strstr(r.server->end_debug, "truncated"));
	run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_switch_mid_record_then_key_update),
		cmocka_unit_test(test_switch_mid_header_then_close_notify),
		cmocka_unit_test(test_alert_and_truncation_after_switch),
		cmocka_unit_test(test_install_fails_nothing_lost),
		cmocka_unit_test(test_only_servers_hand_receiving_over),
		cmocka_unit_test(test_close_and_destroy_while_reading_the_rest),
	};

	peer.fd = -1;
	return cmocka_run_group_tests(tests, tc_group_setup, tc_group_teardown);
}
