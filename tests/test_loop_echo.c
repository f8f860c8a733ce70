/*
 * test_loop_echo.c - many streams and many sessions through one loop, over
 * socketpairs and loopback TCP, every byte checked in order.
 *
 * Covers: 1,000 concurrent streams echoing (Unix socketpair, copied
 * writes; loopback TCP, zero-copy writes from the send arena), both
 * directions at once on the same streams, streams opened by the server,
 * 100 sessions x 10 streams on one loop through muxring_listen and
 * muxring_connect, a Unix-socket listener (muxring_listen_fd), a
 * completion queue that starts tiny and has to grow,
 * the clean end of every session (GOAWAY, EOF, SESSION_ENDED on both
 * sides with the right local and remote results) and the stats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop_harness.h"

/* Closes every client session and waits for both ends of each to end. */
static void close_clients(struct lh *h)
{
	struct lh_peer *p;

	for (p = h->peers; p; p = p->next)
		if (!p->server && p->sess)
			assert_int_equal(muxring_session_close(p->sess, 0, NULL, 0),
					 0);
	lh_run(h, lh_all_sessions_ended, 20);
	for (p = h->peers; p; p = p->next) {
		if (!p->ready)
			continue;
		if (p->server) {
			/* The client's GOAWAY came, then its EOF. */
			assert_int_equal(p->end_res,
					 MUXRING_ERR(MUXRING_PEER_EOF));
			assert_true(p->end_flags & MUXRING_CQE_F_REMOTE);
			assert_int_equal(p->end_code, MUXRING_NO_ERROR);
			assert_string_equal(p->end_debug, "no error");
			assert_true(p->goaway);
		} else {
			assert_int_equal(p->end_res,
					 MUXRING_ERR(MUXRING_SESSION_CLOSED));
			assert_false(p->end_flags & MUXRING_CQE_F_REMOTE);
		}
	}
}

static void echo_many(bool tcp, bool zc, unsigned streams, uint64_t size)
{
	struct muxring_loop_opts lo = {.cq_entries = 16};
	/* Every SYN of a turn is queued before the application sees the
	 * first: the backlog must hold the whole burst. */
	struct muxring_session_opts so = {.accept_backlog = 1024};
	struct lh_peer *c, *s;
	struct lh *h = lh_new(&lo);
	struct muxring_stats cs, ss, ls;
	unsigned i;

	if (tcp)
		lh_pair_tcp(h, &so, &c, &s);
	else
		lh_pair_unix(h, &so, &c, &s);
	/* Opening and writing before the first turn is fine: frames wait. */
	for (i = 0; i < streams; i++)
		lh_open(c, LH_SOURCE, size)->zc = zc;
	lh_run(h, lh_all_streams_closed, 40);
	lh_assert_streams_ok(h);
	assert_int_equal(s->accepted, streams);
	assert_int_equal(c->closed_streams, streams);
	assert_int_equal(s->closed_streams, streams);

	assert_int_equal(muxring_session_stats(c->sess, &cs), 0);
	assert_int_equal(muxring_session_stats(s->sess, &ss), 0);
	assert_int_equal(cs.streams_opened, streams);
	assert_int_equal(ss.streams_accepted, streams);
	assert_true(cs.bytes_out == ss.bytes_in);
	assert_true(ss.bytes_out == cs.bytes_in);
	assert_true(cs.frames_out == ss.frames_in);
	assert_true(cs.bytes_out > streams * size);
	assert_true(cs.sends > 0 && cs.recv_completions > 0);
	/* Batching: far fewer sends than frames. */
	assert_true(cs.sends * 4 < cs.frames_out);
	assert_int_equal(muxring_loop_stats(h->loop, &ls), 0);
	assert_true(ls.enters > 0);
	assert_int_equal(ls.sends, cs.sends + ss.sends);
	assert_int_equal(ls.streams_opened, streams);
	assert_int_equal(ls.streams_accepted, streams);
	assert_int_equal(ls.sessions, 2);
	print_message("    %u streams x %llu bytes: %llu frames out, %llu sends, "
		      "%llu enters, %llu recv completions\n",
		      streams, (unsigned long long)size,
		      (unsigned long long)(cs.frames_out + ss.frames_out),
		      (unsigned long long)ls.sends,
		      (unsigned long long)ls.enters,
		      (unsigned long long)ls.recv_completions);
	close_clients(h);
	/* Ended sessions still count in the loop's totals. */
	assert_int_equal(muxring_loop_stats(h->loop, &ls), 0);
	assert_true(ls.bytes_out >= cs.bytes_out + ss.bytes_out);
	assert_int_equal(ls.streams_opened, streams);
	lh_free(h);
}

static void test_echo_1000_streams_unix(void **state)
{
	(void)state;
	echo_many(false, false, 1000, 16 << 10);
}

static void test_echo_1000_streams_tcp_zc(void **state)
{
	(void)state;
	echo_many(true, true, 1000, 16 << 10);
}

static void test_both_directions(void **state)
{
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);
	unsigned i;

	(void)state;
	lh_pair_tcp(h, NULL, &c, &s);
	s->accept_role = LH_DUPLEX;
	s->accept_total = 8 << 20;
	for (i = 0; i < 4; i++)
		lh_open(c, LH_DUPLEX, 8 << 20);
	lh_run(h, lh_all_streams_closed, 40);
	lh_assert_streams_ok(h);
	for (i = 0; i < h->nstreams; i++)
		assert_int_equal(h->streams[i]->received, 8 << 20);
	close_clients(h);
	lh_free(h);
}

static void test_server_opened_streams(void **state)
{
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);
	unsigned i;

	(void)state;
	lh_pair_unix(h, NULL, &c, &s);
	c->accept_role = LH_ECHO;
	for (i = 0; i < 100; i++) {
		struct lh_stream *st = lh_open(s, LH_SOURCE, 100000 + i);

		assert_int_equal(st->id, 2 + 2 * i); /* server ids: 2, 4, ... */
	}
	lh_run(h, lh_all_streams_closed, 30);
	lh_assert_streams_ok(h);
	assert_int_equal(c->accepted, 100);
	close_clients(h);
	lh_free(h);
}

static bool hundred_ready(struct lh *h)
{
	return h->sessions_ready == 200;
}

static void test_100_sessions_x_10_streams(void **state)
{
	struct muxring_listener *l;
	struct lh_peer *tmpl, *clients[100];
	struct lh *h = lh_new(NULL);
	char port[16];
	unsigned i, j;

	(void)state;
	tmpl = lh_peer_new(h, true, LH_ECHO, 0);
	assert_int_equal(muxring_listen(h->loop, "127.0.0.1", "0", 0, NULL,
					(uintptr_t)tmpl, &l),
			 0);
	assert_true(muxring_listener_port(l) > 0);
	snprintf(port, sizeof(port), "%d", muxring_listener_port(l));
	for (i = 0; i < 100; i++) {
		clients[i] = lh_peer_new(h, false, LH_ECHO, 0);
		assert_int_equal(muxring_connect(h->loop, "127.0.0.1", port, NULL,
						 (uintptr_t)clients[i],
						 &clients[i]->sess),
				 0);
		/* Streams may be opened before the connection is up. */
		for (j = 0; j < 10; j++)
			lh_open(clients[i], LH_SOURCE, 32 << 10);
	}
	lh_run(h, hundred_ready, 20);
	for (i = 0; i < 100; i++)
		assert_int_equal(clients[i]->ready_res, 0);
	lh_run(h, lh_all_streams_closed, 40);
	lh_assert_streams_ok(h);
	assert_int_equal(h->nstreams, 2000);
	/* The template never became a session. */
	tmpl->ready = false;
	assert_int_equal(muxring_listener_close(l), 0);
	close_clients(h);
	lh_run(h, lh_all_sessions_ended, 5);
	while (!h->listeners_closed)
		lh_run_for(h, 0.01);
	lh_free(h);
}

static bool two_ready(struct lh *h)
{
	return h->sessions_ready == 2;
}

static void test_unix_listener(void **state)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct muxring_listener *l;
	struct lh_peer *tmpl, *c;
	struct lh *h = lh_new(NULL);
	int lfd, cfd;

	(void)state;
	/* An abstract socket name: nothing to clean up on disk. */
	snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1,
		 "muxring-test-%d", (int)getpid());
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	tmpl = lh_peer_new(h, true, LH_ECHO, 0);
	assert_int_equal(muxring_listen_fd(h->loop, lfd, NULL, (uintptr_t)tmpl,
					   &l),
			 0);
	assert_true(muxring_listener_port(l) < 0); /* no port on AF_UNIX */
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&addr, sizeof(addr)),
			 0);
	c = lh_peer_new(h, false, LH_ECHO, 0);
	assert_int_equal(muxring_session_create(h->loop, cfd, MUXRING_CLIENT,
						NULL, (uintptr_t)c, &c->sess),
			 0);
	lh_open(c, LH_SOURCE, 300000);
	lh_run(h, two_ready, 5);
	lh_run(h, lh_all_streams_closed, 10);
	lh_assert_streams_ok(h);
	assert_int_equal(muxring_listener_close(l), 0);
	tmpl->ready = false;
	close_clients(h);
	while (!h->listeners_closed)
		lh_run_for(h, 0.01);
	lh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_1000_streams_unix),
		cmocka_unit_test(test_echo_1000_streams_tcp_zc),
		cmocka_unit_test(test_both_directions),
		cmocka_unit_test(test_server_opened_streams),
		cmocka_unit_test(test_100_sessions_x_10_streams),
		cmocka_unit_test(test_unix_listener),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
