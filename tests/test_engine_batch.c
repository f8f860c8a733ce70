/*
 * test_engine_batch.c - small copied writes packed per stream
 * (mr_stream_write_copy), on one engine, no sockets.
 *
 * Covers: writes that wait together leave as one DATA frame whose payload
 * is one iovec, each with its own WRITE_DONE in order; no WRITE_DONE comes
 * before the transport took the write's last byte, and a write made while
 * its stream's batch is on the wire joins the batch and leaves next; a reset fails every waiting part exactly once with its own
 * user_data; a zero-length write completes; a write above
 * MR_BATCH_WRITE_MAX is refused; the session's counters follow the bytes
 * and the memory of what waits, and return to zero. Writes of the same
 * length and user_data share one record (an echo of 1-byte frames costs
 * about a byte per write) and are still reported one by one, also when a
 * write deadline cuts their run in the middle. Silent writes, packed
 * among reported ones, report nothing, neither done nor failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "engine_harness.h"

static struct eh *client(void)
{
	return eh_new(MR_ROLE_CLIENT, NULL);
}

static struct mr_session_stats stats_of(struct eh *h)
{
	struct mr_session_stats st;

	mr_session_stats(h->sess, &st);
	return st;
}

static void test_waiting_writes_leave_in_one_frame_each_reported(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;
	struct iovec iov[8];
	uint64_t ud;
	size_t n;

	(void)state;
	for (ud = 1; ud <= 10; ud++) {
		char three[3] = {(char)('a' + ud), (char)('b' + ud),
				 (char)('c' + ud)};

		assert_int_equal(mr_stream_write_copy(s, three, 3, ud, false),
				 0);
	}
	assert_int_equal(stats_of(h).write_bytes_queued, 30);
	/* The header, then the 30 bytes as two iovecs: the smallest block
	 * (MR_BATCH_MIN) takes the first writes and their records, the next
	 * one, twice its size, the rest. */
	n = mr_session_tx_iov(h->sess, iov, 8, SIZE_MAX);
	assert_int_equal(n, 3);
	assert_true(iov[1].iov_len > 0 && iov[2].iov_len > 0);
	assert_int_equal(iov[1].iov_len + iov[2].iov_len, 30);
	eh_tx_frames(h, &f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_DATA, EH_ANY), 1);
	assert_int_equal(f.v[0].hdr.length, 30);
	assert_memory_equal(f.v[0].body, "bcdcdedef", 9);
	eh_frames_free(&f);
	for (ud = 1; ud <= 10; ud++) {
		struct eh_ev *e = eh_find(h, MR_EV_WRITE_DONE, EH_ANY, ud - 1);

		assert_non_null(e);
		assert_int_equal(e->ev.user_data, ud);
		assert_int_equal(e->ev.result, 3);
	}
	assert_int_equal(stats_of(h).write_bytes_queued, 0);
	assert_int_equal(stats_of(h).write_memory, 0);
	eh_free(h);
}

static void test_write_done_waits_for_the_last_byte_inside_a_batch(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct iovec iov[8];
	struct eh_frames f;

	(void)state;
	assert_int_equal(mr_stream_write_copy(s, "aaaa", 4, 1, false), 0);
	assert_int_equal(mr_stream_write_copy(s, "bbbb", 4, 2, false), 0);
	assert_int_equal(mr_session_tx_iov(h->sess, iov, 8, SIZE_MAX), 2);
	/* The header and the first write but its last byte. */
	mr_session_tx_advance(h->sess, 8 + 3);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);
	/* A write that arrives while its batch is on the wire joins it. */
	mr_session_tx_advance(h->sess, 1);
	assert_int_equal(mr_stream_write_copy(s, "cc", 2, 3, false), 0);
	mr_session_tx_advance(h->sess, 4);
	eh_poll(h);
	assert_int_equal(eh_write_result(h, 1), 4);
	assert_int_equal(eh_write_result(h, 2), 4);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 2);
	assert_int_equal(eh_find(h, MR_EV_WRITE_DONE, EH_ANY, 0)->ev.user_data,
			 1);
	/* (The harness records only what it drains itself: the next frame.) */
	eh_tx_frames(h, &f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_DATA, EH_ANY), 1);
	assert_int_equal(f.v[0].hdr.length, 2);
	assert_memory_equal(f.v[0].body, "cc", 2);
	eh_frames_free(&f);
	assert_int_equal(eh_write_result(h, 3), 2);
	assert_int_equal(stats_of(h).write_memory, 0);
	eh_free(h);
}

static void test_reset_fails_every_waiting_part_once(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	uint64_t ud;

	(void)state;
	/* Enough to fill several blocks. */
	for (ud = 1; ud <= 3000; ud++)
		assert_int_equal(mr_stream_write_copy(s, "x", 1, ud, false), 0);
	assert_int_equal(stats_of(h).write_bytes_queued, 3000);
	assert_true(stats_of(h).write_memory >= 3000 * 17);
	assert_int_equal(mr_stream_reset(s, MUXRING_STREAM_CANCELLED), 0);
	eh_poll(h);
	for (ud = 1; ud <= 3000; ud++)
		assert_int_equal(eh_write_result(h, ud),
				 MUXRING_ERR(MUXRING_STREAM_CANCELLED));
	assert_int_equal(stats_of(h).write_bytes_queued, 0);
	assert_int_equal(stats_of(h).write_memory, 0);
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

static void test_zero_length_and_oversized_writes(void **state)
{
	static uint8_t big[MR_BATCH_WRITE_MAX + 1];
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);

	(void)state;
	assert_int_equal(mr_stream_write_copy(s, big, sizeof(big), 1, false),
			 -EINVAL);
	assert_int_equal(mr_stream_write_copy(s, big, MR_BATCH_WRITE_MAX, 2,
					       false), 0);
	assert_int_equal(mr_stream_write_copy(s, NULL, 0, 3, false), 0);
	eh_flush(h);
	assert_int_equal(eh_write_result(h, 2), MR_BATCH_WRITE_MAX);
	assert_int_equal(eh_write_result(h, 3), 0);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 2);
	eh_free(h);
}

static void test_equal_writes_share_a_record_and_are_reported_one_by_one(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct mr_session_stats st;
	unsigned i;

	(void)state;
	for (i = 0; i < 50000; i++)
		assert_int_equal(mr_stream_write_copy(s, "e", 1, 7, false), 0);
	st = stats_of(h);
	assert_int_equal(st.write_bytes_queued, 50000);
	/* Blocks of 128 B to 32 KiB holding the bytes, one record each:
	 * about 66 KB, where a record per write would be 850 KB. */
	print_message("50,000 equal 1-byte writes hold %llu bytes\n",
		      (unsigned long long)st.write_memory);
	assert_true(st.write_memory < 50000 + (20u << 10));
	eh_flush(h);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 50000);
	for (i = 0; i < 50000; i++)
		assert_int_equal(eh_find(h, MR_EV_WRITE_DONE, EH_ANY, i)->ev.result,
				 1);
	assert_int_equal(stats_of(h).write_memory, 0);
	eh_free(h);
}

static void test_deadline_cuts_a_run_in_the_middle(void **state)
{
	struct mr_config cfg;
	struct eh *h;
	struct mr_stream *s;
	struct iovec iov[8];
	struct eh_frames f;
	size_t i, payload = 0, ok = 0, failed = 0;

	(void)state;
	mr_config_default(&cfg);
	cfg.max_frame_payload = 4;
	h = eh_new(MR_ROLE_CLIENT, &cfg);
	s = eh_open(h);
	for (i = 0; i < 10; i++)
		assert_int_equal(mr_stream_write_copy(s, "r", 1, 7, false), 0);
	/* One frame of 4 bytes is committed (the iovecs offered stop at
	 * max_bytes), then the deadline passes. */
	assert_int_equal(mr_session_tx_iov(h->sess, iov, 8, 1), 1);
	assert_int_equal(mr_stream_set_deadline(s, MR_DEADLINE_WRITE, 1), 0);
	mr_session_expire(h->sess, 2);
	/* A write after the cut starts a new batch. */
	assert_int_equal(mr_stream_write_copy(s, "n", 1, 8, false), 0);
	eh_flush(h);
	for (i = 0; i < h->nev; i++) {
		const struct mr_event *ev = &h->ev[i].ev;

		if (ev->type != MR_EV_WRITE_DONE || ev->user_data != 7)
			continue;
		if (ev->result == 1)
			ok++;
		else if (ev->result == MUXRING_ERR(MUXRING_WRITE_TIMEOUT))
			failed++;
	}
	assert_int_equal(ok, 4);
	assert_int_equal(failed, 6);
	assert_int_equal(eh_write_result(h, 8), 1);
	eh_tx_frames(h, &f);
	for (i = 0; i < f.n; i++)
		if (f.v[i].hdr.type == MR_FRAME_DATA)
			payload += f.v[i].hdr.length;
	assert_int_equal(payload, 5);
	eh_frames_free(&f);
	assert_int_equal(stats_of(h).write_bytes_queued, 0);
	assert_int_equal(stats_of(h).write_memory, 0);
	eh_free(h);
}

/* Silent writes (muxring_stream_write_quiet) packed among reported ones:
 * the silent ones, alone or in a run of their own length and user_data,
 * report nothing, the others still do, and all leave in one frame. */
static void test_silent_writes_in_a_batch_report_nothing(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;

	(void)state;
	assert_int_equal(mr_stream_write_copy(s, "a", 1, 7, false), 0);
	assert_int_equal(mr_stream_write_copy(s, "b", 1, 7, true), 0);
	assert_int_equal(mr_stream_write_copy(s, "c", 1, 7, true), 0);
	assert_int_equal(mr_stream_write_copy(s, "d", 1, 7, false), 0);
	assert_int_equal(mr_stream_write_copy(s, "", 0, 8, true), 0);
	eh_tx_frames(h, &f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_DATA, EH_ANY), 1);
	assert_int_equal(f.v[0].hdr.length, 4);
	assert_memory_equal(f.v[0].body, "abcd", 4);
	eh_frames_free(&f);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 2);
	assert_int_equal(eh_find(h, MR_EV_WRITE_DONE, EH_ANY, 0)->ev.user_data,
			 7);
	assert_int_equal(eh_find(h, MR_EV_WRITE_DONE, EH_ANY, 1)->ev.user_data,
			 7);
	assert_int_equal(stats_of(h).write_bytes_queued, 0);
	/* A reset fails what waits: silent writes say nothing then either. */
	assert_int_equal(mr_stream_write_copy(s, "e", 1, 9, true), 0);
	assert_int_equal(mr_stream_write_copy(s, "f", 1, 10, false), 0);
	assert_int_equal(mr_stream_reset(s, MUXRING_STREAM_CANCELLED), 0);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 3);
	assert_int_equal(eh_find(h, MR_EV_WRITE_DONE, EH_ANY, 2)->ev.user_data,
			 10);
	assert_true(eh_find(h, MR_EV_WRITE_DONE, EH_ANY, 2)->ev.result < 0);
	eh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_waiting_writes_leave_in_one_frame_each_reported),
		cmocka_unit_test(test_silent_writes_in_a_batch_report_nothing),
		cmocka_unit_test(test_write_done_waits_for_the_last_byte_inside_a_batch),
		cmocka_unit_test(test_reset_fails_every_waiting_part_once),
		cmocka_unit_test(test_zero_length_and_oversized_writes),
		cmocka_unit_test(test_equal_writes_share_a_record_and_are_reported_one_by_one),
		cmocka_unit_test(test_deadline_cuts_a_run_in_the_middle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
