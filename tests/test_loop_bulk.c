/*
 * test_loop_bulk.c - volume through one stream.
 *
 * Covers: 1 GiB over a single stream on loopback TCP, every byte compared
 * in order with the sender's generator and a checksum of both ends
 * compared, with copied writes and with zero-copy writes from the send
 * arena, both on a raised receive window (4 MiB, granted with an extra
 * WNDINC); a quarter of it on the default 256 KiB window; a quarter with
 * kernel zero-copy sends (SENDMSG_ZC, whose buffers may only be reused
 * after the notification). Prints throughput and the system calls it took
 * (the benchmark proper lives in bench/).
 * MUXRING_TEST_BULK_MIB overrides the size (in MiB).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "loop_harness.h"

static uint64_t bulk_bytes(void)
{
	const char *v = getenv("MUXRING_TEST_BULK_MIB");

	return (v ? strtoull(v, NULL, 0) : 1024) << 20;
}

static void bulk(bool zc, uint32_t window, unsigned loop_flags,
		 uint64_t size)
{
	struct muxring_loop_opts lo = {.flags = loop_flags};
	struct muxring_session_opts so = {.window = window};
	uint64_t t0, ns;
	struct lh_stream *src, *dst;
	struct muxring_stats ls;
	struct lh_peer *c, *s;
	struct lh *h = lh_new(&lo);

	lh_pair_tcp(h, &so, &c, &s);
	s->accept_role = LH_SINK;
	h->chunk = zc ? muxring_buf_size(h->loop) : 256 << 10;
	h->queue_max = 4 << 20;
	t0 = muxring_now_ns();
	src = lh_open(c, LH_DUPLEX, size);
	src->zc = zc;
	lh_run(h, lh_all_streams_closed, 55);
	ns = muxring_now_ns() - t0;
	assert_int_equal(h->nstreams, 2);
	dst = h->streams[1];
	assert_int_equal(dst->role, LH_SINK);
	lh_assert_streams_ok(h);
	assert_int_equal(dst->received, size);
	assert_int_equal(src->written, size);
	assert_true(lh_sum_value(&dst->recv_sum) ==
		    lh_sum_value(&src->send_sum));
	assert_int_equal(src->received, 0);
	muxring_loop_stats(h->loop, &ls);
	if (loop_flags & MUXRING_LOOP_SEND_ZC)
		assert_true(muxring_loop_features(h->loop) &
			    MUXRING_FEAT_SEND_ZC);
	print_message("    %llu MiB%s%s, window %u KiB: %.2f s, %.0f MiB/s; "
		      "%llu enters, %llu sends, %llu recv completions, "
		      "%llu copied, %llu ENOBUFS\n",
		      (unsigned long long)(size >> 20), zc ? " from the arena" : "",
		      loop_flags & MUXRING_LOOP_SEND_ZC ? ", SENDMSG_ZC" : "",
		      (window ? window : 256 << 10) >> 10, ns / 1e9,
		      (double)size / (1 << 20) / (ns / 1e9),
		      (unsigned long long)ls.enters,
		      (unsigned long long)ls.sends,
		      (unsigned long long)ls.recv_completions,
		      (unsigned long long)ls.recv_copied,
		      (unsigned long long)ls.recv_enobufs);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 10);
	lh_free(h);
}

/* The protocol's default 256 KiB window makes one stream stop and wait
 * for each WNDINC (a window per round trip): a quarter of the volume keeps
 * the time well under the test budget with sanitizers. */
static void test_default_window_one_stream(void **state)
{
	(void)state;
	bulk(false, 0, 0, bulk_bytes() / 4);
}

static void test_one_gib_one_stream(void **state)
{
	(void)state;
	bulk(false, 4 << 20, 0, bulk_bytes());
}

static void test_one_gib_zero_copy(void **state)
{
	(void)state;
	bulk(true, 4 << 20, 0, bulk_bytes());
}

static void test_kernel_zero_copy_send(void **state)
{
	(void)state;
	bulk(true, 4 << 20, MUXRING_LOOP_SEND_ZC, bulk_bytes() / 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_window_one_stream),
		cmocka_unit_test(test_one_gib_one_stream),
		cmocka_unit_test(test_one_gib_zero_copy),
		cmocka_unit_test(test_kernel_zero_copy_send),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
