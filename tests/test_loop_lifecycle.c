/*
 * test_loop_lifecycle.c - how streams and sessions end, over real sockets.
 *
 * Covers: half-close in each direction (the side that sent FIN keeps
 * reading, the other keeps writing), a reset in the middle of a transfer
 * (the peer sees the code with MUXRING_CQE_F_REMOTE, pending writes fail,
 * other streams and new ones go on), closing a session with streams open
 * (GOAWAY with code and debug text reaches the peer, every stream ends with
 * SessionClosed / PeerEOF, both SESSION_ENDED entries carry the right local
 * and remote results), a go-away that keeps the session (new opens fail
 * with RemoteGoneAway, open streams finish), the shutdown sequence seen by
 * a raw peer (GOAWAY, then EOF while we still read, then close after the
 * linger time), a raw peer that hits EOF in the middle of a frame, in the
 * middle of a header, a connect to a closed port, and a peer that resets
 * the connection under our writes without SIGPIPE killing the process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_harness.h"

static bool streams_closed_and_idle(struct lh *h)
{
	return lh_all_streams_closed(h);
}

static void close_session(struct lh *h, struct lh_peer *p)
{
	assert_int_equal(muxring_session_close(p->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 10);
}

/* ---- half-close ----------------------------------------------------------- */

static void test_half_close_client_first(void **state)
{
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);
	struct lh_stream *cs, *ss;

	(void)state;
	lh_pair_unix(h, NULL, &c, &s);
	/* The server answers only after the client's FIN. */
	s->accept_role = LH_DUPLEX;
	s->accept_total = 300000;
	s->accept_after_eof = true;
	cs = lh_open(c, LH_DUPLEX, 100000);
	lh_run(h, streams_closed_and_idle, 10);
	lh_assert_streams_ok(h);
	ss = h->streams[1];
	assert_int_equal(ss->received, 100000);
	/* Everything the client read came after its own FIN. */
	assert_true(cs->fin_sent);
	assert_int_equal(cs->received, 300000);
	assert_int_equal(cs->close_code, MUXRING_NO_ERROR);
	assert_int_equal(ss->close_code, MUXRING_NO_ERROR);
	close_session(h, c);
	lh_free(h);
}

static void test_half_close_server_first(void **state)
{
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);
	struct lh_stream *cs, *ss;

	(void)state;
	lh_pair_tcp(h, NULL, &c, &s);
	/* The server writes and half-closes at once; the client writes only
	 * after it has seen the server's EOF. */
	s->accept_role = LH_DUPLEX;
	s->accept_total = 50000;
	cs = lh_open(c, LH_IDLE, 0);
	cs->role = LH_DUPLEX;
	cs->total = 400000;
	cs->after_eof = true;
	/* Nothing is sent before the first write: an empty one carries the
	 * SYN, so that the server learns of the stream. */
	assert_int_equal(muxring_stream_write(cs->st, NULL, 0, (uintptr_t)cs),
			 0);
	lh_run(h, streams_closed_and_idle, 10);
	lh_assert_streams_ok(h);
	ss = h->streams[1];
	assert_int_equal(cs->received, 50000);
	assert_int_equal(ss->received, 400000);
	close_session(h, c);
	lh_free(h);
}

/* ---- reset ---------------------------------------------------------------- */

struct reset_ctx {
	uint32_t victim;
	bool done;
};

static bool reset_hook(struct lh *h, struct muxring_cqe *c)
{
	struct reset_ctx *rc = h->ctx;
	struct lh_stream *s;

	if (c->type != MUXRING_CQE_DATA || rc->done ||
	    muxring_stream_id(c->stream) != rc->victim)
		return false;
	s = (struct lh_stream *)(uintptr_t)muxring_stream_data(c->stream);
	if (!s->peer->server || s->received < (1 << 20))
		return false;
	assert_int_equal(muxring_stream_reset(c->stream, 0x1234), 0);
	rc->done = true;
	return false; /* the view is still counted and released */
}

static void test_reset_mid_transfer(void **state)
{
	struct reset_ctx rc = {0};
	struct lh_stream *a, *b, *ca, *sa, *cc;
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);
	size_t i;

	(void)state;
	lh_pair_tcp(h, NULL, &c, &s);
	s->accept_role = LH_SINK;
	h->hook = reset_hook;
	h->ctx = &rc;
	a = lh_open(c, LH_DUPLEX, 64 << 20);
	b = lh_open(c, LH_DUPLEX, 1 << 20);
	rc.victim = a->id;
	lh_run(h, streams_closed_and_idle, 20);
	assert_true(rc.done);
	ca = a;
	sa = NULL;
	for (i = 0; i < h->nstreams; i++)
		if (h->streams[i]->peer == s && h->streams[i]->id == a->id)
			sa = h->streams[i];
	assert_non_null(sa);
	/* The client learns the code from the peer's RST. */
	assert_int_equal(ca->close_code, 0x1234);
	assert_int_equal(ca->close_res, MUXRING_ERR(0x1234));
	assert_true(ca->close_flags & MUXRING_CQE_F_REMOTE);
	assert_true(ca->write_errors > 0);
	assert_int_equal(ca->last_write_error, MUXRING_ERR(0x1234));
	assert_true(ca->written < ca->total);
	/* The server's own reset: same code, not remote. */
	assert_int_equal(sa->close_code, 0x1234);
	assert_false(sa->close_flags & MUXRING_CQE_F_REMOTE);
	assert_false(sa->mismatch);
	assert_true(sa->received >= (1 << 20) && sa->received < ca->total);
	/* Writing on a reset stream fails at once. */
	assert_false(b->mismatch);
	assert_int_equal(b->write_errors, 0);
	assert_true(b->eof);
	assert_int_equal(b->written, 1 << 20);
	/* The session goes on: a new stream after the reset. */
	cc = lh_open(c, LH_DUPLEX, 3 << 20);
	lh_run(h, streams_closed_and_idle, 20);
	assert_false(cc->mismatch);
	assert_true(cc->eof);
	assert_int_equal(cc->written, 3 << 20);
	assert_int_equal(cc->close_code, MUXRING_NO_ERROR);
	close_session(h, c);
	lh_free(h);
}

/* ---- session close and go-away ------------------------------------------ */

static bool server_got_a_mib(struct lh *h)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < h->nstreams; i++)
		if (h->streams[i]->peer->server)
			total += h->streams[i]->received;
	return total >= (1 << 20);
}

static void test_session_close_with_streams_open(void **state)
{
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);
	size_t i;

	(void)state;
	lh_pair_tcp(h, NULL, &c, &s);
	s->accept_role = LH_SINK;
	for (i = 0; i < 10; i++)
		lh_open(c, LH_DUPLEX, 32 << 20);
	lh_run(h, server_got_a_mib, 10);
	assert_int_equal(muxring_session_close(c->sess, 0x2a, "bye now", 7), 0);
	/* A second close, and opens after close, are refused quietly. */
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	{
		struct muxring_stream *st;

		assert_int_equal(muxring_stream_open(c->sess, 0, &st),
				 MUXRING_ERR(MUXRING_SESSION_CLOSED));
	}
	lh_run(h, lh_all_sessions_ended, 10);
	assert_true(lh_all_streams_closed(h));
	for (i = 0; i < h->nstreams; i++) {
		struct lh_stream *st = h->streams[i];

		assert_false(st->mismatch);
		if (st->peer == c) {
			assert_int_equal(st->close_code,
					 MUXRING_SESSION_CLOSED);
			assert_true(st->write_errors > 0);
			assert_int_equal(st->last_write_error,
					 MUXRING_ERR(MUXRING_SESSION_CLOSED));
		} else {
			assert_int_equal(st->close_code, MUXRING_PEER_EOF);
		}
	}
	assert_int_equal(c->end_res, MUXRING_ERR(MUXRING_SESSION_CLOSED));
	assert_false(c->end_flags & MUXRING_CQE_F_REMOTE);
	assert_true(s->goaway);
	assert_int_equal(s->goaway_code, 0x2a);
	assert_string_equal(s->goaway_debug, "bye now");
	assert_int_equal(s->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	assert_true(s->end_flags & MUXRING_CQE_F_REMOTE);
	assert_int_equal(s->end_code, 0x2a);
	assert_string_equal(s->end_debug, "bye now");
	lh_free(h);
}

static bool goaway_seen_and_closed(struct lh *h)
{
	struct lh_peer *p = h->ctx;

	return p->goaway && lh_all_streams_closed(h);
}

static void test_goaway_keeps_session(void **state)
{
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);
	struct muxring_stream *st;
	struct lh_stream *a;

	(void)state;
	lh_pair_unix(h, NULL, &c, &s);
	s->accept_role = LH_ECHO;
	a = lh_open(c, LH_SOURCE, 4 << 20);
	lh_run_for(h, 0.01);
	assert_int_equal(muxring_session_goaway(s->sess, 5, "draining", 8), 0);
	h->ctx = c;
	lh_run(h, goaway_seen_and_closed, 10);
	assert_true(c->goaway);
	assert_int_equal(c->goaway_code, 5);
	assert_string_equal(c->goaway_debug, "draining");
	/* The stream opened before the GOAWAY finished. */
	lh_assert_streams_ok(h);
	assert_int_equal(a->received, 4 << 20);
	assert_int_equal(muxring_stream_open(c->sess, 0, &st),
			 MUXRING_ERR(MUXRING_REMOTE_GONE_AWAY));
	close_session(h, c);
	assert_true(c->end_flags & MUXRING_CQE_F_REMOTE);
	assert_int_equal(c->end_code, 5);
	lh_free(h);
}

/* ---- raw peers ------------------------------------------------------------ */

static void put_header(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags,
		       uint32_t id)
{
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = (uint8_t)(type << 4 | flags);
	p[4] = (uint8_t)(id >> 24);
	p[5] = (uint8_t)(id >> 16);
	p[6] = (uint8_t)(id >> 8);
	p[7] = (uint8_t)id;
}

static void write_all(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

/* Reads what is there without blocking; returns bytes read, -1 at EOF. */
static ssize_t read_some(int fd, uint8_t *buf, size_t cap)
{
	ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);

	if (n == 0)
		return -1;
	if (n < 0) {
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		return 0;
	}
	return n;
}

/* A server session whose client is a raw socket. */
static struct lh_peer *raw_pair(struct lh *h, int *raw, bool tcp)
{
	struct lh_peer *s = lh_peer_new(h, true, LH_SINK, 0);
	int fds[2];

	if (tcp)
		lh_tcp_fds(fds);
	else
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	assert_int_equal(muxring_session_create(h->loop, fds[1], MUXRING_SERVER,
						NULL, (uintptr_t)s, &s->sess),
			 0);
	*raw = fds[0];
	return s;
}

static void test_peer_eof_mid_frame(void **state)
{
	uint8_t wire[8 + 100 + 8 + 500], payload[1000];
	struct lh *h = lh_new(NULL);
	struct lh_stream *st;
	struct lh_peer *s;
	struct lh_gen g;
	size_t off = 0;
	int raw;

	(void)state;
	s = raw_pair(h, &raw, true);
	/* Stream 3: the SYN with 100 bytes, then a frame announcing 1000
	 * bytes of which only 500 arrive before the peer's EOF. The payload
	 * is the generator's, as a client stream 3 would send it. */
	lh_gen_init(&g, (3u << 1 | 0) + 1);
	lh_gen_fill(&g, payload, sizeof(payload));
	put_header(wire, 100, 1, 0x2, 3);
	memcpy(wire + 8, payload, 100);
	off = 108;
	put_header(wire + off, 1000, 1, 0, 3);
	memcpy(wire + off + 8, payload + 100, 500);
	off += 508;
	write_all(raw, wire, off);
	assert_int_equal(shutdown(raw, SHUT_WR), 0);
	lh_run(h, lh_all_sessions_ended, 10);
	assert_int_equal(h->nstreams, 1);
	st = h->streams[0];
	/* Every byte that arrived was delivered, in order, and checked. */
	assert_false(st->mismatch);
	assert_true(st->received >= 100 && st->received <= 600);
	assert_false(st->eof);
	assert_true(st->closed);
	assert_int_equal(st->close_code, MUXRING_PEER_EOF);
	assert_int_equal(s->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	assert_false(s->end_flags & MUXRING_CQE_F_REMOTE);
	close(raw);
	lh_free(h);
}

static void test_peer_eof_mid_header(void **state)
{
	uint8_t wire[8];
	struct lh *h = lh_new(NULL);
	struct lh_peer *s;
	int raw;

	(void)state;
	s = raw_pair(h, &raw, false);
	put_header(wire, 4, 1, 0x2, 3);
	write_all(raw, wire, 4); /* half a header */
	assert_int_equal(shutdown(raw, SHUT_WR), 0);
	lh_run(h, lh_all_sessions_ended, 10);
	assert_int_equal(h->nstreams, 0);
	assert_int_equal(s->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	close(raw);
	lh_free(h);
}

static bool peer_ended(struct lh *h)
{
	struct lh_peer *p = h->ctx;

	return p->ended;
}

static void test_close_sequence_seen_by_raw_peer(void **state)
{
	struct muxring_loop_opts lo = {.linger_ms = 300};
	struct lh *h = lh_new(&lo);
	uint8_t buf[4096], got[4096];
	size_t have = 0;
	uint64_t t0, t_eof = 0, t_end;
	struct lh_peer *s;
	bool eof = false;
	ssize_t n;
	int raw;

	(void)state;
	s = raw_pair(h, &raw, true);
	h->ctx = s;
	lh_run_for(h, 0.02);
	t0 = muxring_now_ns();
	assert_int_equal(muxring_session_close(s->sess, 7, "so long", 7), 0);
	/* The raw peer sees the GOAWAY, then EOF (our SHUT_WR), while our
	 * side keeps the socket open and drains until the linger time. */
	while (!s->ended) {
		lh_run_for(h, 0.005);
		while (!eof && (n = read_some(raw, buf, sizeof(buf))) != 0) {
			if (n < 0) {
				eof = true;
				t_eof = muxring_now_ns();
				break;
			}
			assert_true(have + (size_t)n <= sizeof(got));
			memcpy(got + have, buf, (size_t)n);
			have += (size_t)n;
		}
		assert_true(muxring_now_ns() - t0 < 5000000000ull);
	}
	t_end = muxring_now_ns();
	assert_true(eof);
	/* GOAWAY(last id 1 on a server, code 7, "so long"): one frame. */
	assert_int_equal(have, 8 + 8 + 7);
	assert_int_equal(got[3] >> 4, 3);
	assert_int_equal(got[8 + 3], 1);     /* last stream id */
	assert_int_equal(got[8 + 4 + 3], 7); /* code */
	assert_memory_equal(got + 16, "so long", 7);
	/* EOF came before the session ended, and the end waited for the
	 * linger time since the raw peer never closed. */
	assert_true(t_eof < t_end);
	assert_true(t_end - t0 >= 250000000ull);
	assert_int_equal(s->end_res, MUXRING_ERR(MUXRING_SESSION_CLOSED));
	/* Now our side has closed: the raw peer's writes fail. */
	(void)peer_ended;
	close(raw);
	lh_free(h);
}

/* ---- transport failures ---------------------------------------------------- */

static void test_connect_refused(void **state)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);
	struct lh *h = lh_new(NULL);
	struct lh_peer *c;
	char port[16];
	int fd;

	(void)state;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	close(fd); /* nobody listens there now */
	snprintf(port, sizeof(port), "%u", ntohs(addr.sin_port));
	c = lh_peer_new(h, false, LH_ECHO, 0);
	assert_int_equal(muxring_connect(h->loop, "127.0.0.1", port, NULL,
					 (uintptr_t)c, &c->sess),
			 0);
	lh_run(h, lh_all_sessions_ended, 10);
	assert_true(c->ready);
	assert_int_equal(c->ready_res, -ECONNREFUSED);
	assert_int_equal(c->end_res, -ECONNREFUSED);
	/* A name that does not resolve fails at once. */
	assert_int_equal(muxring_connect(h->loop, "no-such-host.invalid", "1",
					 NULL, 0, &c->sess),
			 -EHOSTUNREACH);
	lh_free(h);
}

static void test_peer_reset_no_sigpipe(void **state)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct lh_peer *c = NULL;
	struct lh *h = lh_new(NULL);
	int fds[2];

	(void)state;
	/* Default SIGPIPE disposition: a signal would kill the test. */
	signal(SIGPIPE, SIG_DFL);
	lh_tcp_fds(fds);
	c = lh_peer_new(h, false, LH_ECHO, 0);
	assert_int_equal(muxring_session_create(h->loop, fds[0], MUXRING_CLIENT,
						NULL, (uintptr_t)c, &c->sess),
			 0);
	lh_open(c, LH_DUPLEX, 64 << 20);
	lh_run_for(h, 0.05);
	/* The raw peer resets the connection with our data unread. */
	setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fds[1]);
	lh_run(h, lh_all_sessions_ended, 10);
	assert_true(c->end_res == -ECONNRESET || c->end_res == -EPIPE);
	assert_true(h->streams[0]->closed);
	lh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_half_close_client_first),
		cmocka_unit_test(test_half_close_server_first),
		cmocka_unit_test(test_reset_mid_transfer),
		cmocka_unit_test(test_session_close_with_streams_open),
		cmocka_unit_test(test_goaway_keeps_session),
		cmocka_unit_test(test_peer_eof_mid_frame),
		cmocka_unit_test(test_peer_eof_mid_header),
		cmocka_unit_test(test_close_sequence_seen_by_raw_peer),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_peer_reset_no_sigpipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
