/*
 * test_tls.c - muxado over TLS (libmuxring-tls) on the io_uring loop, over
 * loopback TCP, with certificates made at test time (tls_certs.c).
 *
 * Covers: TLS 1.3 and TLS 1.2 (through an application's own SSL_CTX) in
 * both roles with every byte of 64 streams checked; a dial by IP address
 * verified against the certificate's IP entry; the CA as a hashed
 * directory; the system's store (which does not know the test CA); mutual TLS, with and
 * without the client certificate; a wrong CA, an expired certificate, a
 * name mismatch (DNS and IP); a peer that stops in the middle of the
 * handshake (both roles), one that closes during it, garbage instead of a
 * ClientHello next to a healthy session on the same loop; truncation
 * (TCP FIN without close_notify) and the clean end (close_notify: the peer
 * sees a plain end-of-file); a loop destroyed mid-transfer; the kernel-TLS probe against a probe of the
 * test's own, and the user-space fallback; configuration errors. Every
 * failure must end the session with the errno of muxring_tls.h and a
 * sentence naming the cause.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_harness.h"
#include "muxring_tls.h"
#include "tls_certs.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif


/* ---- helpers --------------------------------------------------------------- */

static struct muxring_tls *tls_new(enum muxring_role role,
				   const struct muxring_tls_opts *o)
{
	struct muxring_tls *tls = NULL;
	int err = muxring_tls_new(&tls, role, o);

	if (err)
		fail_msg("muxring_tls_new: %d %s", err, muxring_tls_new_error());
	return tls;
}

/* The server options most tests use: its certificate, no client tc_certs. */
static struct muxring_tls_opts server_opts(void)
{
	return (struct muxring_tls_opts){
		.cert_file = tc_certs.server_cert,
		.key_file = tc_certs.server_key,
	};
}

/* The client options most tests use: verify localhost with the CA. */
static struct muxring_tls_opts client_opts(void)
{
	return (struct muxring_tls_opts){
		.ca_file = tc_certs.ca,
		.server_name = "localhost",
	};
}

/* A TLS session on fd in `role` with configuration o; the configuration
 * is freed at once (the session keeps its own reference). */
static struct lh_peer *tls_session(struct lh *h, int fd,
				   enum muxring_role role,
				   const struct muxring_tls_opts *o)
{
	struct muxring_tls *tls = tls_new(role, o);
	struct muxring_session_opts so = {0};
	struct lh_peer *p = lh_peer_new(h, role == MUXRING_SERVER, LH_ECHO, 0);

	muxring_tls_apply(tls, &so);
	assert_int_equal(muxring_session_create(h->loop, fd, role, &so,
						(uintptr_t)p, &p->sess),
			 0);
	muxring_tls_free(tls);
	return p;
}

static void tls_pair(struct lh *h, const struct muxring_tls_opts *co,
		     const struct muxring_tls_opts *so, struct lh_peer **c,
		     struct lh_peer **s)
{
	int fds[2];

	lh_tcp_fds(fds);
	*c = tls_session(h, fds[0], MUXRING_CLIENT, co);
	*s = tls_session(h, fds[1], MUXRING_SERVER, so);
}

static bool both_ready(struct lh *h)
{
	return h->sessions_ready >= 2;
}

/* Echoes `streams` streams of `size` bytes from the client, checks every
 * byte, then closes the client: both ends must end cleanly (the server
 * sees the GOAWAY and a plain end-of-file, so close_notify came). */
static void echo_and_close(struct lh *h, struct lh_peer *c, struct lh_peer *s,
			   unsigned streams, uint64_t size)
{
	unsigned i;

	for (i = 0; i < streams; i++)
		lh_open(c, LH_SOURCE, size);
	lh_run(h, lh_all_streams_closed, 60);
	lh_assert_streams_ok(h);
	assert_int_equal(c->ready_res, 0);
	assert_int_equal(s->ready_res, 0);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 20);
	assert_int_equal(c->end_res, MUXRING_ERR(MUXRING_SESSION_CLOSED));
	assert_int_equal(s->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	assert_true(s->end_flags & MUXRING_CQE_F_REMOTE);
	assert_true(s->goaway);
}

static bool all_ended(struct lh *h)
{
	return lh_all_sessions_ended(h);
}

/* ---- working sessions ------------------------------------------------------ */

static void test_tls13_echo(void **state)
{
	struct muxring_tls_opts co = client_opts(), so = server_opts();
	struct lh *h = lh_new(NULL);
	struct lh_peer *c, *s;

	(void)state;
	tls_pair(h, &co, &so, &c, &s);
	lh_run(h, both_ready, 20);
	assert_string_equal(muxring_tls_version(c->sess), "TLSv1.3");
	assert_string_equal(muxring_tls_version(s->sess), "TLSv1.3");
	assert_non_null(muxring_tls_cipher(c->sess));
	echo_and_close(h, c, s, 64, 256 * 1024);
	lh_free(h);
}

/* TLS 1.2 through the escape hatch: the client's own SSL_CTX caps the
 * version; the name is still verified. The server opens the streams. */
static void test_tls12_own_ssl_ctx(void **state)
{
	struct muxring_tls_opts so = server_opts(), co = {0};
	struct ssl_ctx_st *ctx = tc_client_ctx_tls12(tc_certs.ca);
	struct lh *h = lh_new(NULL);
	struct lh_peer *c, *s;
	unsigned i;

	(void)state;
	co.ssl_ctx = ctx;
	co.server_name = "localhost";
	tls_pair(h, &co, &so, &c, &s);
	tc_ssl_ctx_free(ctx); /* muxring_tls_new took its own reference */
	lh_run(h, both_ready, 20);
	assert_string_equal(muxring_tls_version(c->sess), "TLSv1.2");
	for (i = 0; i < 16; i++)
		lh_open(s, LH_SOURCE, 100000);
	lh_run(h, lh_all_streams_closed, 60);
	lh_assert_streams_ok(h);
	assert_int_equal(muxring_session_close(s->sess, 0, NULL, 0), 0);
	lh_run(h, all_ended, 20);
	assert_int_equal(c->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	lh_free(h);
}

/* muxring_listen + muxring_connect by IP address: the address is checked
 * against the certificate's IP entry. */
static void test_connect_by_ip(void **state)
{
	struct muxring_tls_opts so = server_opts();
	struct muxring_tls_opts co = {.ca_file = tc_certs.ca};
	struct muxring_tls *stls = tls_new(MUXRING_SERVER, &so);
	struct muxring_tls *ctls = tls_new(MUXRING_CLIENT, &co);
	struct muxring_session_opts sso = {0}, cso = {0};
	struct lh *h = lh_new(NULL);
	struct lh_peer *tmpl = lh_peer_new(h, true, LH_ECHO, 0);
	struct lh_peer *c = lh_peer_new(h, false, LH_ECHO, 0);
	struct muxring_listener *l;
	char port[16];
	unsigned i;

	(void)state;
	muxring_tls_apply(stls, &sso);
	muxring_tls_apply(ctls, &cso);
	assert_int_equal(muxring_listen(h->loop, "127.0.0.1", "0", 0, &sso,
					(uintptr_t)tmpl, &l), 0);
	snprintf(port, sizeof(port), "%d", muxring_listener_port(l));
	assert_int_equal(muxring_connect(h->loop, "127.0.0.1", port, &cso,
					 (uintptr_t)c, &c->sess), 0);
	for (i = 0; i < 8; i++)
		lh_open(c, LH_SOURCE, 50000);
	lh_run(h, lh_all_streams_closed, 60);
	lh_assert_streams_ok(h);
	assert_int_equal(c->ready_res, 0);
	muxring_listener_close(l);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, all_ended, 20);
	muxring_tls_free(stls);
	muxring_tls_free(ctls);
	lh_free(h);
}

/* The CA as a hashed directory, and a server certificate chosen by IP
 * (the dialled name is an address). */
static void test_ca_directory(void **state)
{
	struct muxring_tls_opts so = server_opts(), co = {0};
	struct lh *h = lh_new(NULL);
	struct lh_peer *c, *s;

	(void)state;
	co.ca_dir = tc_certs.ca_dir;
	co.server_name = "127.0.0.1";
	tls_pair(h, &co, &so, &c, &s);
	echo_and_close(h, c, s, 4, 10000);
	lh_free(h);
}

static void test_mutual_tls(void **state)
{
	struct muxring_tls_opts so = server_opts(), co = client_opts();
	struct lh *h = lh_new(NULL);
	struct lh_peer *c, *s;

	(void)state;
	so.ca_file = tc_certs.ca;
	co.cert_file = tc_certs.client_cert;
	co.key_file = tc_certs.client_key;
	tls_pair(h, &co, &so, &c, &s);
	echo_and_close(h, c, s, 8, 100000);
	lh_free(h);
}

/* ---- failures ---------------------------------------------------------------- */

/* Runs a pair to its end and checks both sessions' errors and texts. The
 * side that detected the fault may report it at READY; the other may have
 * finished its half of the handshake first (TLS 1.3). */
static void expect_failure(const struct muxring_tls_opts *co,
			   const struct muxring_tls_opts *so,
			   int client_err, const char *client_text,
			   int server_err, const char *server_text)
{
	struct lh *h = lh_new(NULL);
	struct lh_peer *c, *s;

	tls_pair(h, co, so, &c, &s);
	lh_open(c, LH_SOURCE, 1000);
	lh_run(h, all_ended, 20);
	assert_true(c->ready && s->ready);
	assert_int_equal(c->end_res, client_err);
	assert_int_equal(s->end_res, server_err);
	assert_false(c->end_flags & MUXRING_CQE_F_REMOTE);
	if (!strstr(c->end_debug, client_text))
		fail_msg("client: '%s' lacks '%s'", c->end_debug, client_text);
	if (!strstr(s->end_debug, server_text))
		fail_msg("server: '%s' lacks '%s'", s->end_debug, server_text);
	/* Nothing of the protocol got through. */
	assert_int_equal(s->accepted, 0);
	lh_free(h);
}

static void test_mutual_tls_without_client_cert(void **state)
{
	struct muxring_tls_opts so = server_opts(), co = client_opts();

	(void)state;
	so.ca_file = tc_certs.ca;
	expect_failure(&co, &so, -EPROTO, "alert: certificate required",
		       -EKEYREJECTED, "sent no certificate");
}

static void test_mutual_tls_client_cert_of_other_ca(void **state)
{
	struct muxring_tls_opts so = server_opts(), co = client_opts();

	(void)state;
	so.ca_file = tc_certs.other_ca;
	co.cert_file = tc_certs.client_cert;
	co.key_file = tc_certs.client_key;
	expect_failure(&co, &so, -EPROTO, "alert: unknown CA", -EKEYREJECTED,
		       "certificate verification failed");
}

static void test_wrong_ca(void **state)
{
	struct muxring_tls_opts so = server_opts(), co = client_opts();

	(void)state;
	co.ca_file = tc_certs.other_ca;
	expect_failure(&co, &so, -EKEYREJECTED,
		       "certificate verification failed: unable to get local "
		       "issuer certificate",
		       -EPROTO, "the peer sent the TLS alert: unknown CA");
}

/* Without a CA a client trusts the system's store, which does not know
 * the test's CA. */
static void test_system_store(void **state)
{
	struct muxring_tls_opts so = server_opts(), co = client_opts();

	(void)state;
	co.ca_file = NULL;
	expect_failure(&co, &so, -EKEYREJECTED,
		       "unable to get local issuer certificate", -EPROTO,
		       "unknown CA");
}

static void test_expired_certificate(void **state)
{
	struct muxring_tls_opts so = server_opts(), co = client_opts();

	(void)state;
	so.cert_file = tc_certs.expired_cert;
	so.key_file = tc_certs.expired_key;
	expect_failure(&co, &so, -EKEYREJECTED, "certificate has expired",
		       -EPROTO, "alert: certificate expired");
}

static void test_name_mismatch(void **state)
{
	struct muxring_tls_opts so = server_opts(), co = client_opts();

	(void)state;
	co.server_name = "other.example";
	expect_failure(&co, &so, -EKEYREJECTED, "hostname mismatch", -EPROTO,
		       "alert");
	co.server_name = "127.0.0.2";
	expect_failure(&co, &so, -EKEYREJECTED, "IP address mismatch",
		       -EPROTO, "alert");
}

/* A client with nothing to verify the server's name against. */
static void test_client_without_name(void **state)
{
	struct muxring_tls_opts co = {.ca_file = tc_certs.ca};
	struct lh *h = lh_new(NULL);
	struct lh_peer *c;
	int fds[2];

	(void)state;
	lh_tcp_fds(fds);
	c = tls_session(h, fds[0], MUXRING_CLIENT, &co);
	lh_run(h, all_ended, 20);
	assert_int_equal(c->ready_res, -EINVAL);
	assert_int_equal(c->end_res, -EINVAL);
	assert_non_null(strstr(c->end_debug, "no server name to verify"));
	close(fds[1]);
	lh_free(h);
}

/* ---- hostile and broken peers -------------------------------------------- */

/* The other end is a plain socket that accepts and says nothing: the
 * client's handshake must time out, not hang. */
static void test_server_stops_mid_handshake(void **state)
{
	struct muxring_tls_opts co = client_opts();
	struct lh *h = lh_new(NULL);
	struct lh_peer *c;
	char buf[4096];
	int fds[2];

	(void)state;
	co.handshake_timeout_ms = 300;
	lh_tcp_fds(fds);
	c = tls_session(h, fds[0], MUXRING_CLIENT, &co);
	lh_run(h, all_ended, 20);
	assert_int_equal(c->ready_res, -ETIMEDOUT);
	assert_int_equal(c->end_res, -ETIMEDOUT);
	assert_string_equal(c->end_debug,
			    "the handshake did not complete within 300 ms");
	/* Its ClientHello did go out. */
	assert_true(recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT) > 5);
	assert_int_equal(buf[0], 0x16); /* a handshake record */
	close(fds[1]);
	lh_free(h);
}

/* A client that sends the first bytes of a record and stops. */
static void test_client_stops_mid_handshake(void **state)
{
	static const uint8_t partial[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 };
	struct muxring_tls_opts so = server_opts();
	struct lh *h = lh_new(NULL);
	struct lh_peer *s;
	int fds[2];

	(void)state;
	so.handshake_timeout_ms = 200;
	lh_tcp_fds(fds);
	s = tls_session(h, fds[1], MUXRING_SERVER, &so);
	assert_int_equal(write(fds[0], partial, sizeof(partial)),
			 (ssize_t)sizeof(partial));
	lh_run(h, all_ended, 20);
	assert_int_equal(s->ready_res, -ETIMEDOUT);
	assert_int_equal(s->end_res, -ETIMEDOUT);
	assert_non_null(strstr(s->end_debug, "200 ms"));
	close(fds[0]);
	lh_free(h);
}

static void test_peer_closes_during_handshake(void **state)
{
	struct muxring_tls_opts co = client_opts();
	struct lh *h = lh_new(NULL);
	struct lh_peer *c;
	int fds[2];

	(void)state;
	lh_tcp_fds(fds);
	c = tls_session(h, fds[0], MUXRING_CLIENT, &co);
	close(fds[1]);
	lh_run(h, all_ended, 20);
	assert_int_equal(c->ready_res, -ECONNRESET);
	assert_int_equal(c->end_res, -ECONNRESET);
	assert_string_equal(c->end_debug,
			    "TLS handshake failed: the peer closed the "
			    "connection");
	lh_free(h);
}

/* Reads fd until end-of-file; false if it stays open for 10 s. */
static bool reaches_eof(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char buf[512];

	for (;;) {
		if (poll(&p, 1, 10000) != 1)
			return false;
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			return true;
	}
}

static bool streams_closed_and_victim_ended(struct lh *h)
{
	const struct lh_peer *victim = h->ctx;

	return lh_all_streams_closed(h) && victim->ended;
}

/* An HTTP request where a ClientHello belongs: that session ends with
 * the cause, the connection is closed, and a healthy TLS session on the
 * same loop does not notice. */
static void test_garbage_instead_of_client_hello(void **state)
{
	static const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct muxring_tls_opts so = server_opts(), co = client_opts();
	struct lh *h = lh_new(NULL);
	struct lh_peer *c, *s, *victim;
	unsigned i;
	int fds[2];

	(void)state;
	tls_pair(h, &co, &so, &c, &s);
	lh_tcp_fds(fds);
	victim = tls_session(h, fds[1], MUXRING_SERVER, &so);
	assert_int_equal(write(fds[0], garbage, strlen(garbage)),
			 (ssize_t)strlen(garbage));
	for (i = 0; i < 16; i++)
		lh_open(c, LH_SOURCE, 200000);
	h->ctx = victim;
	lh_run(h, streams_closed_and_victim_ended, 60);
	lh_assert_streams_ok(h);
	assert_int_equal(victim->ready_res, -EPROTO);
	assert_int_equal(victim->end_res, -EPROTO);
	if (strncmp(victim->end_debug, "TLS handshake failed: ", 22))
		fail_msg("text: '%s'", victim->end_debug);
	assert_true(reaches_eof(fds[0]));
	close(fds[0]);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, all_ended, 20);
	assert_int_equal(s->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	lh_free(h);
}

/* The server's socket sends FIN without close_notify (the kind of cut an
 * attacker could make to end a stream early): the client calls it
 * truncation, not a clean end. */
static void test_truncation(void **state)
{
	struct muxring_tls_opts so = server_opts(), co = client_opts();
	struct lh *h = lh_new(NULL);
	struct lh_peer *c, *s;

	(void)state;
	tls_pair(h, &co, &so, &c, &s);
	lh_open(c, LH_SOURCE, 10000);
	lh_run(h, lh_all_streams_closed, 20);
	assert_false(muxring_tls_handshake_failed(c->sess));
	assert_int_equal(shutdown(muxring_session_fd(s->sess), SHUT_WR), 0);
	lh_run(h, all_ended, 20);
	assert_int_equal(c->end_res, -ECONNRESET);
	assert_string_equal(c->end_debug,
			    "TLS connection truncated: the peer closed it "
			    "without close_notify");
	lh_free(h);
}

/* The loop destroyed in the middle of a transfer: every SSL and both
 * configurations (held by their sessions only) are freed; ASan would
 * report what was not. */
static void test_destroy_with_live_sessions(void **state)
{
	struct muxring_tls_opts co = client_opts(), so = server_opts();
	struct lh *h = lh_new(NULL);
	struct lh_peer *c, *s;

	(void)state;
	tls_pair(h, &co, &so, &c, &s);
	lh_open(c, LH_SOURCE, 50u << 20);
	lh_run(h, both_ready, 20);
	lh_run_for(h, 0.05);
	lh_free(h);
}

/* ---- kernel TLS ------------------------------------------------------------ */

/* The test's own probe: TCP_ULP "tls" on an established loopback
 * connection. */
static bool kernel_has_tls_ulp(void)
{
	int fds[2], ok;

	lh_tcp_fds(fds);
	ok = setsockopt(fds[0], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) == 0;
	close(fds[0]);
	close(fds[1]);
	return ok;
}

static void test_ktls_probe_and_fallback(void **state)
{
	struct muxring_tls_opts co = client_opts(), so = server_opts();
	const char *why = NULL;
	int avail = muxring_tls_ktls_available(&why);
	struct lh *h;
	struct lh_peer *c, *s;

	(void)state;
	assert_int_equal(avail, kernel_has_tls_ulp() ? 1 : 0);
	if (!avail) {
		assert_non_null(why);
		assert_non_null(strstr(why, "user space"));
	}
	/* The environment switch turns it off whatever the kernel has. */
	assert_int_equal(setenv("MUXRING_TLS_NO_KTLS", "1", 1), 0);
	assert_int_equal(muxring_tls_ktls_available(&why), 0);
	assert_non_null(strstr(why, "MUXRING_TLS_NO_KTLS"));
	assert_int_equal(unsetenv("MUXRING_TLS_NO_KTLS"), 0);

	/* Where the kernel has TLS, both ends hand their sending keys over,
	 * the server its receiving keys too, and the bytes still arrive
	 * intact; the clean end comes through the kernel as an alert. */
	if (avail) {
		h = lh_new(NULL);
		tls_pair(h, &co, &so, &c, &s);
		lh_open(c, LH_SOURCE, 300000);
		lh_run(h, lh_all_streams_closed, 20);
		assert_true(muxring_tls_ktls_active(c->sess));
		assert_true(muxring_tls_ktls_active(s->sess));
		/* The server receives through the kernel too; the client
		 * stays in user space (README, "Kernel TLS"). */
		assert_true(muxring_tls_ktls_receiving(s->sess));
		assert_false(muxring_tls_ktls_receiving(c->sess));
		echo_and_close(h, c, s, 4, 300000);
		lh_free(h);
	}
	/* Without kTLS the sessions run in user space, and work. */
	h = lh_new(NULL);
	co.flags = so.flags = MUXRING_TLS_NO_KTLS;
	tls_pair(h, &co, &so, &c, &s);
	lh_open(c, LH_SOURCE, 1000);
	lh_run(h, lh_all_streams_closed, 20);
	assert_false(muxring_tls_ktls_active(c->sess));
	assert_false(muxring_tls_ktls_active(s->sess));
	assert_false(muxring_tls_ktls_receiving(s->sess));
	echo_and_close(h, c, s, 4, 300000);
	lh_free(h);
}

/* ---- configuration --------------------------------------------------------- */

static void test_configuration_errors(void **state)
{
	struct muxring_tls_opts o = {0};
	struct muxring_tls *tls = NULL;

	(void)state;
	assert_int_equal(muxring_tls_new(&tls, MUXRING_SERVER, &o), -EINVAL);
	assert_non_null(strstr(muxring_tls_new_error(), "needs a certificate"));
	o.cert_file = tc_certs.server_cert;
	assert_int_equal(muxring_tls_new(&tls, MUXRING_SERVER, &o), -EINVAL);
	o.key_file = "/nonexistent/key.pem";
	assert_int_equal(muxring_tls_new(&tls, MUXRING_SERVER, &o), -ENOENT);
	assert_non_null(strstr(muxring_tls_new_error(), "/nonexistent/key.pem"));
	o.key_file = tc_certs.client_key;
	assert_int_equal(muxring_tls_new(&tls, MUXRING_SERVER, &o), -EINVAL);
	assert_non_null(strstr(muxring_tls_new_error(), "does not match"));
	o = (struct muxring_tls_opts){.ca_file = "/nonexistent/ca.pem"};
	assert_int_equal(muxring_tls_new(&tls, MUXRING_CLIENT, &o), -ENOENT);
	assert_null(tls);
	o = (struct muxring_tls_opts){0};
	assert_int_equal(muxring_tls_new(&tls, MUXRING_CLIENT, &o), 0);
	assert_string_equal(muxring_tls_new_error(), "");
	muxring_tls_free(tls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls13_echo),
		cmocka_unit_test(test_tls12_own_ssl_ctx),
		cmocka_unit_test(test_connect_by_ip),
		cmocka_unit_test(test_ca_directory),
		cmocka_unit_test(test_mutual_tls),
		cmocka_unit_test(test_mutual_tls_without_client_cert),
		cmocka_unit_test(test_mutual_tls_client_cert_of_other_ca),
		cmocka_unit_test(test_wrong_ca),
		cmocka_unit_test(test_system_store),
		cmocka_unit_test(test_expired_certificate),
		cmocka_unit_test(test_name_mismatch),
		cmocka_unit_test(test_client_without_name),
		cmocka_unit_test(test_server_stops_mid_handshake),
		cmocka_unit_test(test_client_stops_mid_handshake),
		cmocka_unit_test(test_peer_closes_during_handshake),
		cmocka_unit_test(test_garbage_instead_of_client_hello),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_destroy_with_live_sessions),
		cmocka_unit_test(test_ktls_probe_and_fallback),
		cmocka_unit_test(test_configuration_errors),
	};

	return cmocka_run_group_tests(tests, tc_group_setup, tc_group_teardown);
}
