/*
 * test_loop_bundle.c - receive bundles: one completion, several ring
 * buffers (MUXRING_FEAT_RECV_BUNDLE).
 *
 * Covers: echo traffic over TCP with small ring buffers, so that a
 * receive finds more bytes than one buffer holds: with bundles, fewer
 * completions than buffers filled, every byte in order; the same with
 * bundles turned off (one buffer per completion); a ring of 8 buffers of
 * 128 bytes taken more than 65,536 times, so that the ring's 16-bit slot
 * counter wraps while bundles name their buffers by slot; a protocol error
 * in the first buffer of a bundle, which ends that session with
 * ProtocolError and gives the rest of the bundle back to the ring while a
 * session beside it goes on. (Bundles while the application holds views:
 * test_loop_memory, which runs with them.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "loop_harness.h"
#include "raw_peer.h"

struct bundle_run {
	struct muxring_stats server; /* the receiving session's counters */
	unsigned features;
};

/* Echoes `streams` streams of `bytes` each through a TCP session pair on a
 * loop with `nbufs` ring buffers of `size` bytes; every byte is checked. */
static struct bundle_run echo_through(unsigned nbufs, unsigned size,
				      unsigned disable, unsigned streams,
				      uint64_t bytes)
{
	struct muxring_loop_opts lo = {
		.recv_buffers = nbufs,
		.recv_buffer_size = size,
		.disable = disable,
	};
	struct bundle_run run = {0};
	struct lh *h = lh_new(&lo);
	struct lh_peer *c, *s;
	unsigned i;

	run.features = muxring_loop_features(h->loop);
	lh_pair_tcp(h, NULL, &c, &s);
	s->accept_role = LH_ECHO;
	for (i = 0; i < streams; i++)
		lh_open(c, LH_SOURCE, bytes);
	lh_run(h, lh_all_streams_closed, 60);
	lh_assert_streams_ok(h);
	assert_int_equal(muxring_session_stats(s->sess, &run.server), 0);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 10);
	lh_free(h);
	print_message("    %u x %u B buffers%s: %llu bytes in %llu completions, "
		      "%llu buffers\n",
		      nbufs, size,
		      run.features & MUXRING_FEAT_RECV_BUNDLE ? ", bundles" : "",
		      (unsigned long long)run.server.bytes_in,
		      (unsigned long long)run.server.recv_completions,
		      (unsigned long long)run.server.recv_buffers_filled);
	return run;
}

/* No buffer holds more than its size, so the bytes need at least this
 * many buffers. */
static void assert_buffers_cover_bytes(const struct bundle_run *run,
				       unsigned size)
{
	assert_true(run->server.recv_buffers_filled * size >=
		    run->server.bytes_in);
}

static void test_a_receive_fills_several_buffers_in_one_completion(void **state)
{
	struct bundle_run run;

	(void)state;
	run = echo_through(256, 4096, 0, 4, 1u << 20);
	assert_buffers_cover_bytes(&run, 4096);
	if (run.features & MUXRING_FEAT_RECV_BUNDLE)
		assert_true(run.server.recv_completions <
			    run.server.recv_buffers_filled);
	else
		assert_int_equal(run.server.recv_completions,
				 run.server.recv_buffers_filled);
}

static void test_without_bundles_a_completion_fills_one_buffer(void **state)
{
	struct bundle_run run;

	(void)state;
	run = echo_through(256, 4096, MUXRING_FEAT_RECV_BUNDLE, 4, 1u << 20);
	assert_int_equal(run.features & MUXRING_FEAT_RECV_BUNDLE, 0);
	assert_buffers_cover_bytes(&run, 4096);
	assert_int_equal(run.server.recv_completions,
			 run.server.recv_buffers_filled);
}

/* 8 MiB each way through 128-byte buffers: well over 65,536 buffers pass
 * through the ring, so the slot numbers wrap around. */
static void test_bundles_survive_the_slot_counter_wrapping(void **state)
{
	struct bundle_run run;

	(void)state;
	run = echo_through(8, 128, 0, 2, 4u << 20);
	assert_buffers_cover_bytes(&run, 128);
	assert_true(run.server.recv_buffers_filled > 65536);
}

static bool bad_ended_and_good_done(struct lh *h)
{
	struct lh_peer *bad = h->ctx;

	return bad->ended && lh_all_streams_closed(h);
}

/* A raw peer's first frames, a protocol error among them, and 40 KiB
 * more behind: all in the socket before the loop's first receive, so
 * one bundle takes them and the error comes in its first buffer. */
static void test_an_error_early_in_a_bundle_ends_only_its_session(void **state)
{
	struct muxring_loop_opts lo = {
		.recv_buffers = 64,
		.recv_buffer_size = 1024,
	};
	static const uint8_t zeros[1000];
	struct lh *h = lh_new(&lo);
	struct lh_peer *bad, *c, *s;
	struct muxring_stats bs, ls;
	struct rp raw;
	int fds[2];
	unsigned i;

	(void)state;
	lh_tcp_fds(fds);
	rp_init(&raw, fds[0]);
	rp_data(&raw, rp_id(0), 0x1 /* SYN */, zeros, 200);
	rp_data(&raw, 0, 0, zeros, 10); /* DATA on stream 0 */
	for (i = 0; i < 40; i++)
		rp_data(&raw, rp_id(0), 0, zeros, sizeof(zeros));
	assert_int_equal(rp_flush(&raw), 0);
	bad = lh_peer_new(h, true, LH_SINK, 0);
	assert_int_equal(muxring_session_create(h->loop, fds[1],
						MUXRING_SERVER, NULL,
						(uintptr_t)bad, &bad->sess),
			 0);
	lh_pair_tcp(h, NULL, &c, &s);
	s->accept_role = LH_ECHO;
	lh_open(c, LH_SOURCE, 256u << 10);
	h->ctx = bad;
	lh_run(h, bad_ended_and_good_done, 30);
	lh_assert_peer_streams_ok(h, c);
	assert_int_equal(bad->end_res, MUXRING_ERR(MUXRING_PROTOCOL_ERROR));
	bs = bad->final_stats;
	print_message("    the bad session's %llu bytes came in %llu "
		      "completions, %llu buffers\n",
		      (unsigned long long)bs.bytes_in,
		      (unsigned long long)bs.recv_completions,
		      (unsigned long long)bs.recv_buffers_filled);
	assert_true(bs.recv_buffers_filled * 1024 >= 40 * 1000);
	if (muxring_loop_features(h->loop) & MUXRING_FEAT_RECV_BUNDLE)
		assert_true(bs.recv_completions < bs.recv_buffers_filled);
	muxring_loop_stats(h->loop, &ls);
	assert_int_equal(ls.recv_buffers_held, 0);
	rp_free(&raw);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 10);
	lh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_receive_fills_several_buffers_in_one_completion),
		cmocka_unit_test(test_without_bundles_a_completion_fills_one_buffer),
		cmocka_unit_test(test_bundles_survive_the_slot_counter_wrapping),
		cmocka_unit_test(test_an_error_early_in_a_bundle_ends_only_its_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
