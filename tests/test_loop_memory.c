/*
 * test_loop_memory.c - memory bounds of the receive path.
 *
 * Covers: streams whose reader holds every view (never releases) while 100
 * other streams of the same session finish: the holders get exactly their
 * window and no more, the others are not slowed, the shared buffer ring
 * never has more than recv_buffers - recv_low_water buffers pinned by views
 * (payloads are copied out once it runs low), and releasing the views later
 * lets the holders finish with every byte intact. Then a tiny buffer ring
 * (4 buffers of 512 bytes) that is forced into -ENOBUFS again and again and
 * still delivers every byte in order, with multishot receives and with
 * single-shot ones (8 sessions sharing the 4 buffers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

#include "loop_harness.h"

#define NBUFS 64u
#define LOW_WATER 16u
#define HOLDERS 3u
#define OTHERS 100u

struct hold_ctx {
	uint32_t holder_ids[HOLDERS];
};

static bool hold_hook(struct lh *h, struct muxring_cqe *c)
{
	struct hold_ctx *hc = h->ctx;
	struct lh_stream *s;
	unsigned i;

	if (c->type != MUXRING_CQE_DATA)
		return false;
	s = (struct lh_stream *)(uintptr_t)muxring_stream_data(c->stream);
	if (!s->peer->server)
		return false;
	for (i = 0; i < HOLDERS; i++)
		if (s->id == hc->holder_ids[i])
			s->hold = true;
	return false;
}

static bool others_done(struct lh *h)
{
	size_t i;

	for (i = 0; i < h->nstreams; i++) {
		struct lh_stream *s = h->streams[i];

		if (!s->hold && !(s->local && s->total == 4u << 20) &&
		    !s->closed)
			return false;
	}
	return h->nstreams == 2 * (HOLDERS + OTHERS);
}

static void test_held_views_do_not_starve_others(void **state)
{
	struct muxring_loop_opts lo = {
		.recv_buffers = NBUFS,
		.recv_buffer_size = 16 << 10,
		.recv_low_water = LOW_WATER,
	};
	struct hold_ctx hc;
	struct lh_stream *holders[HOLDERS];
	struct muxring_stats ls;
	struct lh_peer *c, *s;
	struct lh *h = lh_new(&lo);
	uint64_t held = 0;
	size_t i;

	(void)state;
	lh_pair_tcp(h, NULL, &c, &s);
	s->accept_role = LH_SINK;
	h->hook = hold_hook;
	h->ctx = &hc;
	for (i = 0; i < HOLDERS; i++) {
		holders[i] = lh_open(c, LH_DUPLEX, 4u << 20);
		hc.holder_ids[i] = holders[i]->id;
	}
	for (i = 0; i < OTHERS; i++)
		lh_open(c, LH_DUPLEX, 256u << 10);
	lh_run(h, others_done, 30);
	/* Let anything still in flight arrive: the holders must stay at
	 * exactly their window. */
	lh_run_for(h, 0.2);
	muxring_loop_stats(h->loop, &ls);
	for (i = 0; i < h->nstreams; i++) {
		struct lh_stream *st = h->streams[i];

		if (!st->hold)
			continue;
		held += st->held_bytes;
		assert_int_equal(st->held_bytes, 256u << 10);
		assert_int_equal(st->received, 256u << 10);
		assert_false(st->closed);
	}
	for (i = 0; i < HOLDERS; i++)
		assert_true(holders[i]->written < holders[i]->total);
	print_message("    %u holders keep %llu KiB in views; ring: %llu of %u "
		      "buffers held now, %llu at most; %llu completions copied "
		      "out, %llu ENOBUFS\n",
		      HOLDERS, (unsigned long long)held >> 10,
		      (unsigned long long)ls.recv_buffers_held, NBUFS,
		      (unsigned long long)ls.recv_buffers_held_max,
		      (unsigned long long)ls.recv_copied,
		      (unsigned long long)ls.recv_enobufs);
	/* The bound: views never pin more than NBUFS - LOW_WATER buffers
	 * (one more is in the driver's hands while a completion is parsed). */
	assert_true(ls.recv_buffers_held <= NBUFS - LOW_WATER);
	assert_true(ls.recv_buffers_held_max <= NBUFS - LOW_WATER + 1);
	assert_true(ls.recv_copied > 0);

	/* Releasing the views lets the holders finish intact. */
	for (i = 0; i < h->nstreams; i++) {
		if (h->streams[i]->hold) {
			lh_release_held(h->streams[i]);
			h->streams[i]->hold = false;
		}
	}
	hc.holder_ids[0] = hc.holder_ids[1] = hc.holder_ids[2] = 0;
	lh_run(h, lh_all_streams_closed, 30);
	lh_assert_streams_ok(h);
	for (i = 0; i < HOLDERS; i++)
		assert_int_equal(holders[i]->written, 4u << 20);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 10);
	muxring_loop_stats(h->loop, &ls);
	assert_int_equal(ls.recv_buffers_held, 0);
	lh_free(h);
}

static void tiny_ring(unsigned disable, bool tcp, unsigned pairs)
{
	struct muxring_loop_opts lo = {
		.recv_buffers = 4,
		.recv_buffer_size = 512,
		.recv_low_water = 1,
		.disable = disable,
	};
	struct muxring_stats ls;
	struct lh_peer *c, *s;
	struct lh *h = lh_new(&lo);
	struct lh_peer *clients[8];
	unsigned i, k;

	assert_true(pairs <= 8);
	assert_int_equal(muxring_loop_features(h->loop) & disable, 0);
	/* More sessions than buffers: single-shot receives run dry too. */
	for (k = 0; k < pairs; k++) {
		if (tcp)
			lh_pair_tcp(h, NULL, &c, &s);
		else
			lh_pair_unix(h, NULL, &c, &s);
		s->accept_role = LH_ECHO;
		clients[k] = c;
		for (i = 0; i < 8 / pairs; i++)
			lh_open(c, LH_SOURCE, 512u << 10);
	}
	lh_run(h, lh_all_streams_closed, 50);
	lh_assert_streams_ok(h);
	muxring_loop_stats(h->loop, &ls);
	print_message("    %s%s, %u session pairs: %llu ENOBUFS, %llu receives "
		      "armed, %llu completions (%llu copied)\n",
		      tcp ? "tcp" : "unix",
		      disable ? " single-shot" : " multishot", pairs,
		      (unsigned long long)ls.recv_enobufs,
		      (unsigned long long)ls.recv_rearms,
		      (unsigned long long)ls.recv_completions,
		      (unsigned long long)ls.recv_copied);
	assert_true(ls.recv_enobufs > 0);
	for (k = 0; k < pairs; k++)
		assert_int_equal(muxring_session_close(clients[k]->sess, 0, NULL,
						       0),
				 0);
	lh_run(h, lh_all_sessions_ended, 10);
	lh_free(h);
}

static void test_tiny_ring_enobufs_multishot(void **state)
{
	(void)state;
	tiny_ring(0, false, 1);
	tiny_ring(0, true, 1);
}

static void test_tiny_ring_enobufs_single_shot(void **state)
{
	(void)state;
	tiny_ring(MUXRING_FEAT_RECV_MULTISHOT, false, 8);
	tiny_ring(MUXRING_FEAT_RECV_MULTISHOT, true, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_held_views_do_not_starve_others),
		cmocka_unit_test(test_tiny_ring_enobufs_multishot),
		cmocka_unit_test(test_tiny_ring_enobufs_single_shot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
