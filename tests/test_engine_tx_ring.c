/*
 * test_engine_tx_ring.c - the transmit segment ring: small at first, grown
 * only where no iovec handed to the transport points into it.
 *
 * Covers: a session holds no ring until it has something to send, the
 * small ring while a request is on the way and none again once the
 * transport took it (what makes ten thousand one-stream sessions light); a
 * burst grows the full ring, which stays (a busy session copies and
 * regrows nothing per turn); a burst of frames larger than
 * the small ring leaves in one mr_session_tx_iov all the same (the ring
 * grows between frames, and inside a frame of many writes); while iovecs
 * from a tx_iov are still held (no tx_advance yet) the ring does not move,
 * so those iovecs stay readable (ASan would see a freed ring) and the next
 * tx_iov offers the same bytes first; once they are sent it grows, and
 * every frame leaves exactly once, in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "engine_harness.h"
#include "engine/session_internal.h"

#define MAX_IOV 256u

static const uint8_t msg[64] = {1, 2, 3, 4, 5, 6, 7, 8};

/* Opens n streams and writes msg on each, with user_data from ud. */
static void open_and_write(struct eh *h, unsigned n, uint64_t ud)
{
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(mr_stream_write_copy(eh_open(h), msg,
						      sizeof(msg), ud + i,
						      false),
				 0);
}

/* Bytes the iovecs point to, copied into out (cap bytes at most). */
static size_t gather(const struct iovec *iov, size_t n, uint8_t *out,
		     size_t cap)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		assert_true(len + iov[i].iov_len <= cap);
		memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	return len;
}

static void test_a_request_holds_the_small_ring_until_sent(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct iovec iov[8];

	(void)state;
	assert_int_equal(mr_session_tx_iov(h->sess, iov, 8, SIZE_MAX), 0);
	assert_null(h->sess->ring);
	open_and_write(h, 1, 1);
	assert_int_equal(mr_session_tx_iov(h->sess, iov, 8, SIZE_MAX), 2);
	assert_int_equal(h->sess->ring_cap, MR_TX_RING_SMALL);
	mr_session_tx_advance(h->sess, iov[0].iov_len + iov[1].iov_len);
	assert_null(h->sess->ring);
	assert_int_equal(h->sess->ring_cap, 0);
	eh_poll(h);
	assert_int_equal(eh_write_result(h, 1), sizeof(msg));
	eh_free(h);
}

/* A burst grows the full ring, which stays: a busy session neither copies
 * nor regrows per turn. */
static void test_the_full_ring_stays(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_tx_seg *full;
	struct eh_frames f;

	(void)state;
	open_and_write(h, 40, 1);
	eh_flush(h);
	assert_int_equal(h->sess->ring_cap, MR_TX_RING_SLOTS);
	full = h->sess->ring;
	open_and_write(h, 1, 41);
	eh_flush(h);
	open_and_write(h, 40, 42);
	eh_tx_frames(h, &f);
	assert_ptr_equal(h->sess->ring, full);
	assert_int_equal(f.n, 81);
	eh_frames_free(&f);
	for (uint64_t ud = 1; ud <= 81; ud++)
		assert_int_equal(eh_write_result(h, ud), sizeof(msg));
	eh_free(h);
}

static void test_a_burst_leaves_in_one_call(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	static struct iovec iov[MAX_IOV];
	static uint8_t wire[1u << 16];
	struct eh_frames f;
	size_t n, len;

	(void)state;
	open_and_write(h, 40, 1);
	n = mr_session_tx_iov(h->sess, iov, MAX_IOV, SIZE_MAX);
	assert_int_equal(h->sess->ring_cap, MR_TX_RING_SLOTS);
	len = gather(iov, n, wire, sizeof(wire));
	eh_frames_parse(wire, len, &f);
	assert_int_equal(f.n, 40);
	for (size_t i = 0; i < f.n; i++) {
		assert_int_equal(f.v[i].hdr.stream_id,
				 f.v[0].hdr.stream_id + 2 * i);
		assert_int_equal(f.v[i].hdr.length, sizeof(msg));
		assert_memory_equal(f.v[i].body, msg, sizeof(msg));
	}
	eh_frames_free(&f);
	mr_session_tx_advance(h->sess, len);
	eh_poll(h);
	for (uint64_t ud = 1; ud <= 40; ud++)
		assert_int_equal(eh_write_result(h, ud), sizeof(msg));
	eh_free(h);
}

/* Many small writes on one stream, each its own segment (a batch block
 * each, as MR_BATCH_MIN-sized blocks fill): one frame carries them all. */
static void test_a_frame_of_many_writes_is_not_cut(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	static struct iovec iov[MAX_IOV];
	static uint8_t wire[1u << 16];
	static uint8_t big[200];
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;
	size_t n, len;

	(void)state;
	for (unsigned i = 0; i < 20; i++) {
		memset(big, (int)i, sizeof(big));
		assert_int_equal(mr_stream_write_copy(s, big, sizeof(big),
						      i + 1, false),
				 0);
	}
	n = mr_session_tx_iov(h->sess, iov, MAX_IOV, SIZE_MAX);
	len = gather(iov, n, wire, sizeof(wire));
	eh_frames_parse(wire, len, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.length, 20 * sizeof(big));
	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(f.v[0].body[i * sizeof(big)], i);
	eh_frames_free(&f);
	eh_free(h);
}

static void test_held_iovecs_pin_the_ring(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	static struct iovec first[MAX_IOV], again[MAX_IOV];
	static uint8_t a[1u << 16], b[1u << 16], all[1u << 16];
	struct eh_frames f;
	size_t n1, n2, len1, len2, total = 0;

	(void)state;
	open_and_write(h, 3, 1);
	n1 = mr_session_tx_iov(h->sess, first, MAX_IOV, SIZE_MAX);
	assert_int_equal(h->sess->ring_cap, MR_TX_RING_SMALL);
	len1 = gather(first, n1, a, sizeof(a));

	/* More frames than the small ring holds, while `first` is held. */
	open_and_write(h, 10, 4);
	n2 = mr_session_tx_iov(h->sess, again, MAX_IOV, SIZE_MAX);
	assert_int_equal(h->sess->ring_cap, MR_TX_RING_SMALL);
	assert_true(n2 >= n1);
	assert_int_equal(gather(first, n1, b, sizeof(b)), len1);
	assert_memory_equal(b, a, len1);
	len2 = gather(again, n2, b, sizeof(b));
	assert_true(len2 >= len1);
	assert_memory_equal(b, a, len1);

	/* Sent: now it grows, and the rest follows. */
	memcpy(all, b, len2);
	total = len2;
	mr_session_tx_advance(h->sess, len2);
	n2 = mr_session_tx_iov(h->sess, again, MAX_IOV, SIZE_MAX);
	assert_int_equal(h->sess->ring_cap, MR_TX_RING_SLOTS);
	total += gather(again, n2, all + total, sizeof(all) - total);
	mr_session_tx_advance(h->sess, total - len2);
	eh_frames_parse(all, total, &f);
	assert_int_equal(f.n, 13);
	for (size_t i = 0; i < f.n; i++)
		assert_int_equal(f.v[i].hdr.stream_id,
				 f.v[0].hdr.stream_id + 2 * i);
	eh_frames_free(&f);
	eh_poll(h);
	for (uint64_t ud = 1; ud <= 13; ud++)
		assert_int_equal(eh_write_result(h, ud), sizeof(msg));
	eh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_request_holds_the_small_ring_until_sent),
		cmocka_unit_test(test_the_full_ring_stays),
		cmocka_unit_test(test_a_burst_leaves_in_one_call),
		cmocka_unit_test(test_a_frame_of_many_writes_is_not_cut),
		cmocka_unit_test(test_held_iovecs_pin_the_ring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
