/*
 * test_engine_zerocopy.c - payloads are handed over, not copied.
 *
 * Payloads of MR_RX_VIEW_MIN bytes and more are always views; smaller ones
 * may be merged into a copy (test_engine_coalesce.c).
 *
 * Covers: a DATA view's pointer lies inside the very buffer given to
 * mr_session_recv, at the payload's offset, and aliases it (a byte changed
 * in the buffer shows through the view); every view holds exactly one
 * reference on that buffer and releasing it gives exactly that one back;
 * a payload split over two input buffers becomes one view into each; with
 * MR_RECV_COPY the views point into heap copies of exactly their size, the
 * input buffer's count is back to the caller's single reference as soon as
 * mr_session_recv returns, and changing it changes no view; and on the send
 * side, the payload iovecs point into the caller's write buffer. Freeing
 * a session gives back every reference it held on write buffers and on
 * input buffers behind events never polled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine_harness.h"

/* Payload lengths that are handed up as views. */
#define BIG(k) (MR_RX_VIEW_MIN + (k))

/* A payload of len bytes, all `fill` (len at most 8 KiB). */
static const uint8_t *payload_of(uint8_t fill, size_t len)
{
	static uint8_t bytes[4][8192];
	static unsigned next;
	uint8_t *p = bytes[next++ % 4];

	assert_true(len <= sizeof(bytes[0]));
	memset(p, fill, len);
	return p;
}

#define P(fill, len) payload_of((fill), (len)), (len)

/* Polls every event; keeps the DATA ones in views[], done()s the rest. */
static size_t poll_views(struct mr_session *sess, struct mr_event *views,
			 size_t cap)
{
	struct mr_event ev;
	size_t n = 0;

	while (mr_session_poll_event(sess, &ev)) {
		if (ev.type == MR_EV_STREAM_ACCEPTED)
			mr_session_accept_done(sess);
		if (ev.type == MR_EV_DATA && n < cap) {
			views[n++] = ev;
			continue;
		}
		assert_int_not_equal(ev.type, MR_EV_DATA);
		mr_event_done(&ev);
	}
	return n;
}

static void release_all(struct mr_event *views, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		mr_view_release(&views[i].view);
		mr_event_done(&views[i]);
	}
}

static bool inside(const struct mr_buf *buf, const uint8_t *p, size_t len)
{
	return p >= buf->data && p + len <= buf->data + buf->cap;
}

static void test_a_view_points_into_the_buffer_given_to_recv(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_SERVER, NULL);
	struct eh_bytes b = {0};
	struct mr_buf *buf;
	struct mr_event views[4];
	uint8_t payload[BIG(100)];
	const size_t at = 16; /* the bytes start inside the buffer */

	(void)state;
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	eh_bytes_data(&b, 3, MR_FLAG_SYN, payload, sizeof(payload));
	buf = mr_buf_new_heap(at + b.len + 16);
	assert_non_null(buf);
	memcpy(buf->data + at, b.p, b.len);
	assert_int_equal(mr_session_recv(sess, buf, buf->data + at, b.len, 0), 0);
	assert_int_equal(poll_views(sess, views, 4), 1);
	assert_ptr_equal(views[0].view.buf, buf);
	assert_ptr_equal(views[0].view.data, buf->data + at + MR_FRAME_HEADER_LEN);
	assert_int_equal(views[0].view.len, sizeof(payload));
	assert_true(inside(buf, views[0].view.data, views[0].view.len));
	/* Aliasing, not a copy: a change in the buffer shows in the view. */
	buf->data[at + MR_FRAME_HEADER_LEN + 10] = 0xAB;
	assert_int_equal(views[0].view.data[10], 0xAB);
	/* The caller's reference and the view's, nothing else. */
	assert_int_equal(buf->refs, 2);
	release_all(views, 1);
	assert_int_equal(buf->refs, 1);
	mr_buf_unref(buf);
	eh_bytes_free(&b);
	mr_session_free(sess);
}

static void test_each_view_holds_exactly_one_reference_on_the_shared_buffer(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_SERVER, NULL);
	struct eh_bytes b = {0};
	struct mr_buf *buf;
	struct mr_event views[8];
	size_t n, offsets[3];

	(void)state;
	offsets[0] = b.len + 8;
	eh_bytes_data(&b, 3, MR_FLAG_SYN, P('1', BIG(0)));
	eh_bytes_rst(&b, 99, 0); /* unknown stream: ignored */
	offsets[1] = b.len + 8;
	eh_bytes_data(&b, 5, MR_FLAG_SYN, P('2', BIG(1)));
	offsets[2] = b.len + 8;
	eh_bytes_data(&b, 3, MR_FLAG_FIN, P('3', BIG(2)));
	buf = mr_buf_new_copy(b.p, b.len);
	assert_non_null(buf);
	assert_int_equal(mr_session_recv(sess, buf, buf->data, b.len, 0), 0);
	n = poll_views(sess, views, 8);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(views[i].view.buf, buf);
		assert_ptr_equal(views[i].view.data, buf->data + offsets[i]);
	}
	assert_int_equal(buf->refs, 1 + 3);
	for (size_t i = 0; i < n; i++) {
		mr_view_release(&views[i].view);
		mr_event_done(&views[i]);
		assert_int_equal(buf->refs, 1 + 3 - (i + 1));
	}
	mr_buf_unref(buf);
	eh_bytes_free(&b);
	mr_session_free(sess);
}

static void test_a_payload_split_over_two_buffers_is_one_view_into_each(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_CLIENT, NULL);
	struct eh_bytes b = {0};
	struct mr_buf *one, *two;
	struct mr_event views[4];

	(void)state;
	const size_t cut = 8 + BIG(3); /* header + the first piece */

	eh_bytes_data(&b, 2, MR_FLAG_SYN, P('s', BIG(3) + BIG(7)));
	one = mr_buf_new_copy(b.p, cut);
	two = mr_buf_new_copy(b.p + cut, b.len - cut);
	assert_int_equal(mr_session_recv(sess, one, one->data, cut, 0), 0);
	assert_int_equal(mr_session_recv(sess, two, two->data, b.len - cut, 0),
			 0);
	assert_int_equal(poll_views(sess, views, 4), 2);
	assert_ptr_equal(views[0].view.buf, one);
	assert_ptr_equal(views[0].view.data, one->data + 8);
	assert_int_equal(views[0].view.len, BIG(3));
	assert_ptr_equal(views[1].view.buf, two);
	assert_ptr_equal(views[1].view.data, two->data);
	assert_int_equal(views[1].view.len, BIG(7));
	assert_int_equal(one->refs, 2);
	assert_int_equal(two->refs, 2);
	release_all(views, 2);
	assert_int_equal(one->refs, 1);
	assert_int_equal(two->refs, 1);
	mr_buf_unref(one);
	mr_buf_unref(two);
	eh_bytes_free(&b);
	mr_session_free(sess);
}

static void test_with_recv_copy_views_own_exact_copies_and_the_input_is_free_at_once(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_SERVER, NULL);
	struct eh_bytes b = {0};
	struct mr_buf *buf;
	struct mr_event views[4];

	(void)state;
	eh_bytes_data(&b, 3, MR_FLAG_SYN, P('c', BIG(14)));
	eh_bytes_data(&b, 3, 0, P('a', BIG(11)));
	buf = mr_buf_new_copy(b.p, b.len);
	assert_int_equal(mr_session_recv(sess, buf, buf->data, b.len,
					 MR_RECV_COPY), 0);
	/* The caller's reference is the only one left. */
	assert_int_equal(buf->refs, 1);
	assert_int_equal(poll_views(sess, views, 4), 2);
	memset(buf->data, 0, buf->cap); /* the driver reuses the buffer */
	for (size_t i = 0; i < 2; i++) {
		assert_ptr_not_equal(views[i].view.buf, buf);
		assert_false(inside(buf, views[i].view.data, views[i].view.len));
		assert_true(inside(views[i].view.buf, views[i].view.data,
				   views[i].view.len));
		assert_int_equal(views[i].view.buf->cap, views[i].view.len);
		assert_int_equal(views[i].view.buf->refs, 1);
	}
	assert_memory_equal(views[0].view.data, payload_of('c', BIG(14)),
			    BIG(14));
	assert_memory_equal(views[1].view.data, payload_of('a', BIG(11)),
			    BIG(11));
	assert_int_equal(buf->refs, 1);
	release_all(views, 2);
	mr_buf_unref(buf);
	eh_bytes_free(&b);
	mr_session_free(sess);
}

static void test_a_write_is_sent_from_the_callers_buffer_without_a_copy(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = NULL;
	struct mr_buf *buf = mr_buf_new_heap(5000);
	struct iovec iov[16];
	size_t n, payload_in_buf = 0;
	struct mr_event ev;
	int done = 0;

	(void)state;
	assert_non_null(buf);
	memset(buf->data, 'w', buf->cap);
	assert_int_equal(mr_session_open(sess, 0, &s), 0);
	assert_int_equal(mr_stream_write(s, buf, buf->data + 100, 4000, 1), 0);
	n = mr_session_tx_iov(sess, iov, 16, SIZE_MAX);
	for (size_t i = 0; i < n; i++)
		if (inside(buf, iov[i].iov_base, iov[i].iov_len))
			payload_in_buf += iov[i].iov_len;
	assert_int_equal(payload_in_buf, 4000);
	for (size_t i = 0; i < n; i++)
		mr_session_tx_advance(sess, iov[i].iov_len);
	while (mr_session_poll_event(sess, &ev)) {
		if (ev.type == MR_EV_WRITE_DONE) {
			assert_int_equal(ev.result, 4000);
			done++;
		}
		mr_event_done(&ev);
	}
	assert_int_equal(done, 1);
	assert_int_equal(buf->refs, 1);
	mr_buf_unref(buf);
	mr_session_free(sess);
}

static void test_freeing_a_session_gives_back_every_buffer_reference(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *s = NULL;
	struct mr_buf *wbuf = mr_buf_new_heap(400000);
	struct eh_bytes b = {0};
	struct mr_buf *rbuf;
	struct iovec iov[4];

	(void)state;
	assert_non_null(wbuf);
	memset(wbuf->data, 'q', wbuf->cap);
	/* A write partly on the wire (window-limited), and one queued. */
	assert_int_equal(mr_session_open(sess, 0, &s), 0);
	assert_int_equal(mr_stream_write(s, wbuf, wbuf->data, 300000, 1), 0);
	assert_int_equal(mr_stream_write(s, wbuf, wbuf->data, 1000, 2), 0);
	assert_true(mr_session_tx_iov(sess, iov, 4, SIZE_MAX) > 0);
	mr_session_tx_advance(sess, 3);
	/* DATA whose events are still queued, never polled. */
	eh_bytes_data(&b, 3, MR_FLAG_SYN, P('n', BIG(0)));
	rbuf = mr_buf_new_copy(b.p, b.len);
	assert_int_equal(mr_session_recv(sess, rbuf, rbuf->data, b.len, 0), 0);
	assert_true(rbuf->refs > 1);
	assert_true(wbuf->refs > 1);
	mr_session_free(sess);
	assert_int_equal(rbuf->refs, 1);
	assert_int_equal(wbuf->refs, 1);
	mr_buf_unref(rbuf);
	mr_buf_unref(wbuf);
	eh_bytes_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_view_points_into_the_buffer_given_to_recv),
		cmocka_unit_test(test_each_view_holds_exactly_one_reference_on_the_shared_buffer),
		cmocka_unit_test(test_a_payload_split_over_two_buffers_is_one_view_into_each),
		cmocka_unit_test(test_with_recv_copy_views_own_exact_copies_and_the_input_is_free_at_once),
		cmocka_unit_test(test_a_write_is_sent_from_the_callers_buffer_without_a_copy),
		cmocka_unit_test(test_freeing_a_session_gives_back_every_buffer_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
