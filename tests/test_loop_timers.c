/*
 * test_loop_timers.c - time on the ring: waits, deadlines, heartbeats.
 *
 * Covers: muxring_submit_and_wait timing out with nothing to do and not
 * blocking with timeout 0; a read deadline on a silent stream; a write
 * deadline that passes while the writes wait for window (the writes fail
 * with WriteTimeout, the stream stays open); a deadline moved earlier (the
 * armed ring timeout is updated) and one cleared (nothing fires); deadlines
 * on twenty sessions firing in order of time; the heartbeat of a typed
 * session reporting round-trip times, never showing its stream to the
 * application, and reporting a failure when the peer does not echo; a
 * plain descriptor watched on the same ring (muxring_poll_fd), including
 * one still watched when the loop is destroyed.
 * Time checks are lower bounds, with generous upper bounds only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_harness.h"

#define MS 1000000ull

static void test_wait_timeout(void **state)
{
	struct lh *h = lh_new(NULL);
	uint64_t t0;

	(void)state;
	t0 = muxring_now_ns();
	assert_int_equal(muxring_submit_and_wait(h->loop, 1, 50 * MS), 0);
	assert_true(muxring_now_ns() - t0 >= 50 * MS);
	t0 = muxring_now_ns();
	assert_int_equal(muxring_submit_and_wait(h->loop, 1, 0), 0);
	assert_int_equal(muxring_submit(h->loop), 0);
	assert_true(muxring_now_ns() - t0 < 1000 * MS);
	{
		struct muxring_cqe *cqe;

		assert_int_equal(muxring_wait_cqe(h->loop, &cqe, 10 * MS),
				 -ETIME);
		assert_int_equal(muxring_peek_cqe(h->loop, &cqe), -EAGAIN);
	}
	lh_free(h);
}

static bool deadline_seen(struct lh *h)
{
	struct lh_stream *s = h->ctx;

	return s->deadlines > 0;
}

static void test_read_deadline(void **state)
{
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);
	struct lh_stream *a;
	uint64_t when;

	(void)state;
	lh_pair_unix(h, NULL, &c, &s);
	a = lh_open(c, LH_IDLE, 0);
	h->ctx = a;
	when = muxring_now_ns() + 100 * MS;
	assert_int_equal(muxring_stream_set_deadline(a->st, MUXRING_DEADLINE_READ,
						     when),
			 0);
	assert_int_equal(muxring_stream_set_deadline(a->st, 0, when), -EINVAL);
	lh_run(h, deadline_seen, 5);
	assert_true(a->deadline_at >= when);
	assert_int_equal(a->deadline_kinds, MUXRING_DEADLINE_READ);
	/* It fires once; the stream stays open. */
	lh_run_for(h, 0.15);
	assert_int_equal(a->deadlines, 1);
	assert_false(a->closed);
	assert_int_equal(muxring_stream_close(a->st), 0);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 5);
	lh_free(h);
}

static bool hold_server_views(struct lh *h, struct muxring_cqe *c)
{
	struct lh_stream *s;

	(void)h;
	if (c->type == MUXRING_CQE_DATA) {
		s = (struct lh_stream *)(uintptr_t)muxring_stream_data(c->stream);
		if (s->peer->server)
			s->hold = true;
	}
	return false;
}

static void test_write_deadline_waiting_for_window(void **state)
{
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);
	struct lh_stream *a;
	uint64_t when;

	(void)state;
	lh_pair_tcp(h, NULL, &c, &s);
	s->accept_role = LH_SINK;
	h->hook = hold_server_views; /* the window never opens again */
	a = lh_open(c, LH_DUPLEX, 2 << 20);
	h->ctx = a;
	when = muxring_now_ns() + 200 * MS;
	assert_int_equal(muxring_stream_set_deadline(a->st,
						     MUXRING_DEADLINE_WRITE,
						     when),
			 0);
	lh_run(h, deadline_seen, 5);
	lh_run_for(h, 0.05);
	assert_true(a->deadline_at >= when);
	assert_int_equal(a->deadline_kinds, MUXRING_DEADLINE_WRITE);
	assert_true(a->write_errors > 0);
	assert_int_equal(a->last_write_error, MUXRING_ERR(MUXRING_WRITE_TIMEOUT));
	assert_int_equal(a->written, 256 << 10); /* exactly the window */
	assert_false(a->closed);
	assert_int_equal(muxring_stream_reset(a->st, MUXRING_STREAM_CANCELLED), 0);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 5);
	lh_free(h);
}

static void test_deadline_moved_and_cleared(void **state)
{
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);
	struct lh_stream *a, *b;
	uint64_t when;

	(void)state;
	lh_pair_unix(h, NULL, &c, &s);
	a = lh_open(c, LH_IDLE, 0);
	b = lh_open(c, LH_IDLE, 0);
	h->ctx = a;
	/* Armed far away, then moved earlier: the ring timeout is updated. */
	assert_int_equal(muxring_stream_set_deadline(a->st, MUXRING_DEADLINE_READ,
						     muxring_now_ns() + 10000 * MS),
			 0);
	lh_run_for(h, 0.02);
	when = muxring_now_ns() + 80 * MS;
	assert_int_equal(muxring_stream_set_deadline(a->st, MUXRING_DEADLINE_READ,
						     when),
			 0);
	/* b's deadline is set, then cleared before it passes. */
	assert_int_equal(muxring_stream_set_deadline(b->st,
						     MUXRING_DEADLINE_READ |
							     MUXRING_DEADLINE_WRITE,
						     muxring_now_ns() + 40 * MS),
			 0);
	assert_int_equal(muxring_stream_set_deadline(b->st,
						     MUXRING_DEADLINE_READ |
							     MUXRING_DEADLINE_WRITE,
						     0),
			 0);
	lh_run(h, deadline_seen, 5);
	assert_true(a->deadline_at >= when);
	assert_true(a->deadline_at < when + 5000 * MS);
	lh_run_for(h, 0.1);
	assert_int_equal(b->deadlines, 0);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 5);
	lh_free(h);
}

#define NSESS 20

struct order_ctx {
	struct lh_stream *streams[NSESS];
	uint64_t when[NSESS];
	unsigned fired[NSESS], nfired;
};

static bool order_hook(struct lh *h, struct muxring_cqe *c)
{
	struct order_ctx *oc = h->ctx;
	unsigned i;

	if (c->type != MUXRING_CQE_DEADLINE)
		return false;
	for (i = 0; i < NSESS; i++)
		if ((uintptr_t)oc->streams[i] == muxring_stream_data(c->stream))
			oc->fired[oc->nfired++] = i;
	return false;
}

static bool all_fired(struct lh *h)
{
	return ((struct order_ctx *)h->ctx)->nfired == NSESS;
}

static void test_deadlines_of_many_sessions_in_order(void **state)
{
	struct lh *h = lh_new(NULL);
	struct order_ctx oc = {0};
	struct lh_peer *c[NSESS], *s;
	uint64_t base = muxring_now_ns() + 50 * MS;
	unsigned i;

	(void)state;
	h->hook = order_hook;
	h->ctx = &oc;
	for (i = 0; i < NSESS; i++) {
		lh_pair_unix(h, NULL, &c[i], &s);
		oc.streams[i] = lh_open(c[i], LH_IDLE, 0);
	}
	/* Set in reverse order of time, 7 ms apart. */
	for (i = NSESS; i-- > 0;) {
		oc.when[i] = base + i * 7 * MS;
		assert_int_equal(muxring_stream_set_deadline(oc.streams[i]->st,
							     MUXRING_DEADLINE_READ,
							     oc.when[i]),
				 0);
	}
	lh_run(h, all_fired, 10);
	for (i = 0; i < NSESS; i++) {
		assert_int_equal(oc.fired[i], i);
		assert_true(oc.streams[i]->deadline_at >= oc.when[i]);
	}
	for (i = 0; i < NSESS; i++)
		assert_int_equal(muxring_session_close(c[i]->sess, 0, NULL, 0),
				 0);
	lh_run(h, lh_all_sessions_ended, 5);
	lh_free(h);
}

static bool three_beats(struct lh *h)
{
	struct lh_peer *p = h->ctx;

	return p->heartbeats >= 3;
}

static bool one_beat(struct lh *h)
{
	struct lh_peer *p = h->ctx;

	return p->heartbeats >= 1;
}

static void test_heartbeat(void **state)
{
	struct muxring_session_opts so = {.flags = MUXRING_SESSION_TYPED};
	struct lh_peer *c, *s;
	struct lh *h = lh_new(NULL);

	(void)state;
	lh_pair_tcp(h, &so, &c, &s);
	h->ctx = c;
	assert_int_equal(muxring_session_heartbeat(c->sess, 30 * MS, 500 * MS), 0);
	lh_run(h, three_beats, 10);
	assert_true(c->last_rtt > 0 && c->last_rtt < 5000 * MS);
	assert_int_equal(c->heartbeat_failures, 0);
	/* Reconfigured while running. */
	assert_int_equal(muxring_session_heartbeat(c->sess, 20 * MS, 500 * MS), 0);
	c->heartbeats = 0;
	lh_run(h, three_beats, 10);
	/* An on-demand beat is answered long before the next scheduled one. */
	assert_int_equal(muxring_session_heartbeat(c->sess, 3600000 * MS,
						   500 * MS), 0);
	c->heartbeats = 0;
	assert_int_equal(muxring_session_heartbeat_beat(c->sess), 0);
	lh_run(h, one_beat, 10);
	assert_int_equal(c->heartbeats, 1);
	/* The heartbeat stream never reaches the application. */
	assert_int_equal(s->accepted, 0);
	assert_int_equal(h->nstreams, 0);
	{
		struct lh_peer *u, *v;

		/* Untyped sessions have no heartbeat. */
		lh_pair_unix(h, NULL, &u, &v);
		assert_int_equal(muxring_session_heartbeat(u->sess, 0, 0),
				 -EINVAL);
		assert_int_equal(muxring_session_heartbeat_beat(u->sess),
				 -EINVAL);
		assert_int_equal(muxring_session_close(u->sess, 0, NULL, 0), 0);
	}
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 5);
	lh_free(h);
}

static bool failure_seen(struct lh *h)
{
	struct lh_peer *p = h->ctx;

	return p->heartbeat_failures > 0;
}

static void test_heartbeat_failure(void **state)
{
	struct muxring_session_opts so = {.flags = MUXRING_SESSION_TYPED};
	struct lh *h = lh_new(NULL);
	struct lh_peer *c = lh_peer_new(h, false, LH_ECHO, 0);
	uint64_t t0;
	int fds[2];

	(void)state;
	/* The peer is a socket nobody reads: no echo ever comes. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	assert_int_equal(muxring_session_create(h->loop, fds[0], MUXRING_CLIENT,
						&so, (uintptr_t)c, &c->sess),
			 0);
	h->ctx = c;
	t0 = muxring_now_ns();
	assert_int_equal(muxring_session_heartbeat(c->sess, 30 * MS, 60 * MS), 0);
	lh_run(h, failure_seen, 10);
	assert_true(muxring_now_ns() - t0 >= 90 * MS);
	assert_int_equal(c->heartbeats, 0);
	assert_false(c->ended); /* a failure does not end the session */
	close(fds[1]);
	lh_run(h, lh_all_sessions_ended, 5);
	lh_free(h);
}

static bool polled(struct lh *h)
{
	return h->polls > 0;
}

static void test_poll_fd(void **state)
{
	struct lh *h = lh_new(NULL);
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(muxring_poll_fd(h->loop, p[0], POLLIN, 42), 0);
	assert_int_equal(muxring_poll_fd(h->loop, -1, POLLIN, 42), -EINVAL);
	lh_run_for(h, 0.05);
	assert_int_equal(h->polls, 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	lh_run(h, polled, 5);
	assert_int_equal(h->polls, 1);
	assert_true(h->last_poll_res & POLLIN);
	assert_int_equal(h->last_poll_data, 42);
	/* Watched again, and still watched when the loop goes. */
	assert_int_equal(muxring_poll_fd(h->loop, p[1], POLLIN, 43), 0);
	lh_run_for(h, 0.02);
	assert_int_equal(h->polls, 1);
	lh_free(h);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_timeout),
		cmocka_unit_test(test_read_deadline),
		cmocka_unit_test(test_write_deadline_waiting_for_window),
		cmocka_unit_test(test_deadline_moved_and_cleared),
		cmocka_unit_test(test_deadlines_of_many_sessions_in_order),
		cmocka_unit_test(test_heartbeat),
		cmocka_unit_test(test_heartbeat_failure),
		cmocka_unit_test(test_poll_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
