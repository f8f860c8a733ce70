/*
 * test_engine_coalesce.c - received memory follows bytes, never frames.
 *
 * Covers: 1-byte DATA frames across the whole window of 32 streams, against
 * an application that holds every view: every byte arrives in order, each
 * stream raises at most one DATA event per poll, the views hold exactly the
 * windows, and the copies cost those bytes plus at most one block per
 * stream (the engine's own counters say so). The rules behind it: a queued
 * DATA event grows while it waits (a lone small piece stays a view, the
 * second moves both into the stream's block); a large view in between keeps
 * the order; a block no view uses is refilled from its start; blocks double
 * up to MR_RX_BLOCK_MAX; slots of the session's block table are reused,
 * and past the last one pieces go up one by one. Then the session cap on buffered bytes: at the cap
 * no WNDINC goes out and a new stream is refused, below 3/4 of it every
 * stream gets what was held back; queued writes count as well; without a
 * cap nothing waits.
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
#include "engine/session_internal.h"

#define STREAMS 32u
#define WINDOW MR_INITIAL_WINDOW
#define FEED_CHUNK (32u << 10) /* as the loop's receive buffers */

static uint8_t byte_of(uint32_t stream_index, uint32_t offset)
{
	return (uint8_t)(stream_index * 31u + offset * 7u + (offset >> 8));
}

static uint32_t client_id(uint32_t index)
{
	return 3 + 2 * index;
}

static void test_one_byte_frames_over_every_window_cost_bytes_not_frames(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_session_stats st;
	struct eh_bytes round = {0};
	struct eh_frames frames;
	uint8_t *want = malloc(WINDOW);
	uint32_t off, i;
	size_t feeds = 0, events = 0;

	(void)state;
	assert_non_null(want);
	/* Round after round, one byte for each stream, fed in 32 KiB pieces
	 * with a poll after each (eh_feed), as the loop would. */
	for (off = 0; off < WINDOW; off++) {
		for (i = 0; i < STREAMS; i++) {
			uint8_t b = byte_of(i, off);

			eh_bytes_data(&round, client_id(i),
				      off ? 0 : MR_FLAG_SYN, &b, 1);
		}
		while (round.len >= FEED_CHUNK ||
		       (off == WINDOW - 1 && round.len)) {
			size_t n = round.len < FEED_CHUNK ? round.len
							  : FEED_CHUNK;

			assert_int_equal(eh_feed(h, round.p, n, 0), 0);
			feeds++;
			memmove(round.p, round.p + n, round.len - n);
			round.len -= n;
		}
	}
	mr_session_stats(h->sess, &st);
	for (i = 0; i < STREAMS; i++) {
		for (off = 0; off < WINDOW; off++)
			want[off] = byte_of(i, off);
		eh_assert_data(h, client_id(i), want, WINDOW);
		events += eh_count(h, MR_EV_DATA, client_id(i));
		/* One event per stream per poll at most, not one per frame
		 * (and one more whenever a block is full). */
		assert_true(eh_count(h, MR_EV_DATA, client_id(i)) <=
			    feeds + WINDOW / (MR_RX_BLOCK_MAX / 2));
	}
	print_message("    %u streams x %u 1-byte frames: %zu DATA events "
		      "(%zu polls), views %llu KiB, copies %llu KiB, at most "
		      "%llu events queued\n",
		      STREAMS, WINDOW, events, feeds,
		      (unsigned long long)st.rx_view_bytes >> 10,
		      (unsigned long long)st.rx_copy_bytes >> 10,
		      (unsigned long long)st.events_queued_max);
	/* The bound: views hold the windows; copies those bytes plus at most
	 * one partly filled block per stream; the queue never held more than
	 * a few events per stream. */
	assert_int_equal(st.rx_view_bytes, (uint64_t)STREAMS * WINDOW);
	assert_true(st.rx_copy_bytes <=
		    (uint64_t)STREAMS * (WINDOW + MR_RX_BLOCK_MAX));
	assert_true(st.rx_copy_bytes_max == st.rx_copy_bytes);
	assert_true(st.events_queued_max <= 2 * STREAMS);
	/* Each 32 KiB input held about 113 frames per stream. */
	assert_true(events * 50 <= (size_t)STREAMS * WINDOW);

	/* Nothing was credited: the application holds everything. */
	eh_tx_frames(h, &frames);
	assert_int_equal(eh_frames_count(&frames, MR_FRAME_WNDINC, EH_ANY), 0);
	eh_frames_free(&frames);
	/* Releasing gives back every byte and credits every stream. */
	eh_release(h, EH_ANY, SIZE_MAX);
	mr_session_stats(h->sess, &st);
	assert_int_equal(st.rx_view_bytes, 0);
	assert_true(st.rx_copy_bytes <= (uint64_t)STREAMS * MR_RX_BLOCK_MAX);
	eh_tx_frames(h, &frames);
	for (i = 0; i < STREAMS; i++)
		assert_int_equal(eh_frames_wndinc_sum(&frames, client_id(i)),
				 WINDOW);
	eh_frames_free(&frames);
	eh_bytes_free(&round);
	free(want);
	eh_free(h);
}

/* Polls the session's events without the harness (the test holds them). */
static size_t poll_data(struct mr_session *sess, struct mr_event *out,
			size_t cap)
{
	struct mr_event ev;
	size_t n = 0;

	while (mr_session_poll_event(sess, &ev)) {
		if (ev.type == MR_EV_STREAM_ACCEPTED)
			mr_session_accept_done(sess);
		if (ev.type == MR_EV_DATA) {
			assert_true(n < cap);
			out[n++] = ev;
			continue;
		}
		mr_event_done(&ev);
	}
	return n;
}

static void feed(struct mr_session *sess, const struct eh_bytes *b)
{
	struct mr_buf *buf = mr_buf_new_copy(b->p, b->len);

	assert_non_null(buf);
	assert_int_equal(mr_session_recv(sess, buf, buf->data, b->len, 0), 0);
	mr_buf_unref(buf);
}

static void feed_data(struct mr_session *sess, uint32_t id, uint8_t flags,
		      const void *payload, size_t len)
{
	struct eh_bytes b = {0};

	eh_bytes_data(&b, id, flags, payload, len);
	feed(sess, &b);
	eh_bytes_free(&b);
}

/* Feeds every frame of b in one input buffer (one call, as one receive). */
static void feed_frames(struct mr_session *sess, uint32_t id, uint8_t flags,
			const char *const *pieces, size_t n)
{
	struct eh_bytes b = {0};
	size_t i;

	for (i = 0; i < n; i++)
		eh_bytes_data(&b, id, i ? 0 : flags, pieces[i],
			      strlen(pieces[i]));
	feed(sess, &b);
	eh_bytes_free(&b);
}

static bool in_buffer(const struct mr_buf *buf, const uint8_t *p)
{
	return p >= buf->data && p < buf->data + buf->cap;
}

static void test_a_queued_data_event_grows_until_it_is_polled(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_SERVER, NULL);
	struct mr_session_stats st;
	struct mr_event ev[4];

	(void)state;
	feed_data(sess, 3, MR_FLAG_SYN, "a", 1);
	feed_data(sess, 5, MR_FLAG_SYN, "x", 1); /* another stream between */
	feed_data(sess, 3, 0, "bc", 2);
	feed_data(sess, 3, 0, "d", 1);
	assert_int_equal(poll_data(sess, ev, 4), 2);
	assert_int_equal(mr_stream_id(ev[0].view.stream), 3);
	assert_int_equal(ev[0].view.len, 4);
	assert_memory_equal(ev[0].view.data, "abcd", 4);
	/* A lone small piece stays a view into its input: no copy. */
	assert_int_equal(ev[1].view.len, 1);
	assert_true(in_buffer(ev[1].view.buf, ev[1].view.data));
	mr_session_stats(sess, &st);
	assert_int_equal(st.rx_copy_bytes, MR_RX_BLOCK_MIN);
	/* Polled: the next bytes start a new event, and once it takes a
	 * second piece its bytes follow the first event's in the block. */
	feed_frames(sess, 3, 0, (const char *const[]){"ef", "g"}, 2);
	assert_int_equal(poll_data(sess, ev + 2, 2), 1);
	assert_ptr_equal(ev[2].view.buf, ev[0].view.buf);
	assert_ptr_equal(ev[2].view.data, ev[0].view.data + 4);
	assert_int_equal(ev[2].view.len, 3);
	assert_memory_equal(ev[2].view.data, "efg", 3);
	for (size_t i = 0; i < 3; i++)
		mr_view_release(&ev[i].view);
	mr_session_free(sess);
}

static void test_a_view_between_small_payloads_keeps_their_order(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_SERVER, NULL);
	uint8_t big[MR_RX_VIEW_MIN];
	struct mr_event ev[4];

	(void)state;
	memset(big, 'B', sizeof(big));
	feed_data(sess, 3, MR_FLAG_SYN, "1", 1);
	feed_data(sess, 3, 0, big, sizeof(big));
	feed_data(sess, 3, 0, "2", 1);
	feed_data(sess, 3, 0, "3", 1);
	assert_int_equal(poll_data(sess, ev, 4), 3);
	assert_memory_equal(ev[0].view.data, "1", 1);
	assert_int_equal(ev[0].view.len, 1);
	assert_int_equal(ev[1].view.len, sizeof(big));
	assert_int_equal(ev[2].view.len, 2);
	assert_memory_equal(ev[2].view.data, "23", 2);
	for (size_t i = 0; i < 3; i++)
		mr_view_release(&ev[i].view);
	mr_session_free(sess);
}

static void test_a_block_no_view_uses_is_refilled_from_its_start(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_SERVER, NULL);
	struct mr_session_stats st;
	struct mr_event ev[2];

	(void)state;
	feed_frames(sess, 3, MR_FLAG_SYN, (const char *const[]){"fir", "st"},
		    2);
	assert_int_equal(poll_data(sess, ev, 1), 1);
	mr_view_release(&ev[0].view);
	feed_frames(sess, 3, 0, (const char *const[]){"aga", "in"}, 2);
	assert_int_equal(poll_data(sess, ev + 1, 1), 1);
	/* Same memory, from its start: no allocation per message. */
	assert_ptr_equal(ev[1].view.data, ev[0].view.data);
	assert_memory_equal(ev[1].view.data, "again", 5);
	mr_session_stats(sess, &st);
	assert_int_equal(st.rx_copy_bytes, MR_RX_BLOCK_MIN);
	mr_view_release(&ev[1].view);
	mr_session_free(sess);
}

static void test_blocks_double_up_to_their_bound(void **state)
{
	static char piece[MR_RX_VIEW_MIN - 1];
	const char *const two[] = {piece, piece};
	struct mr_event ev[64];
	struct mr_session *sess = mr_session_new(MR_ROLE_SERVER, NULL);
	struct mr_buf *last = NULL;
	size_t n = 0, i, prev_cap = 0;

	(void)state;
	memset(piece, 'p', sizeof(piece) - 1);
	feed_frames(sess, 3, MR_FLAG_SYN, two, 2);
	/* Held views keep every block in use: each new one is larger. */
	for (i = 0; i < 60; i++) {
		n += poll_data(sess, ev + n, 64 - n);
		feed_frames(sess, 3, 0, two, 2);
	}
	n += poll_data(sess, ev + n, 64 - n);
	assert_int_equal(n, 61);
	for (i = 0; i < n; i++) {
		assert_int_equal(ev[i].view.len, 2 * strlen(piece));
		if (ev[i].view.buf == last)
			continue;
		last = ev[i].view.buf;
		assert_true(last->cap > prev_cap || last->cap == MR_RX_BLOCK_MAX);
		prev_cap = last->cap;
	}
	assert_int_equal(prev_cap, MR_RX_BLOCK_MAX);
	for (i = 0; i < n; i++)
		mr_view_release(&ev[i].view);
	mr_session_free(sess);
}

/* ---- the cap on buffered bytes ------------------------------------------ */

#define CAP (256u << 10)
#define KIB(n) ((size_t)(n) << 10)

static struct eh *capped(void)
{
	struct mr_config cfg;

	mr_config_default(&cfg);
	cfg.max_buffered = CAP;
	return eh_new(MR_ROLE_SERVER, &cfg);
}

/* len bytes on stream id in frames of 4 KiB (views, not copies). */
static void send_bytes(struct eh *h, uint32_t id, size_t len, bool syn)
{
	static uint8_t chunk[4096];
	struct eh_bytes b = {0};
	size_t off;

	for (off = 0; off < len; off += sizeof(chunk))
		eh_bytes_data(&b, id, syn && off == 0 ? MR_FLAG_SYN : 0, chunk,
			      sizeof(chunk));
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_bytes_free(&b);
}

static uint64_t wndinc_sent(struct eh *h, uint32_t id)
{
	struct eh_frames f;
	uint64_t sum;

	eh_tx_frames(h, &f);
	sum = eh_frames_wndinc_sum(&f, id);
	eh_frames_free(&f);
	return sum;
}

static void test_at_the_cap_credit_waits_and_resumes_below_three_quarters(void **state)
{
	struct eh *h = capped();
	struct mr_session_stats st;

	(void)state;
	send_bytes(h, 5, KIB(200), true);
	send_bytes(h, 3, KIB(256), true); /* stream 3 alone is at the cap */
	/* Releasing stream 5's bytes still leaves the session at the cap:
	 * its credit waits. */
	eh_release(h, 5, SIZE_MAX);
	assert_int_equal(wndinc_sent(h, 5), 0);
	mr_session_stats(h->sess, &st);
	assert_int_equal(st.credit_stalls, 1);
	assert_int_equal(mr_session_buffered(h->sess), KIB(256));
	/* A new stream at the cap is refused: its window could not be
	 * taken back. */
	send_bytes(h, 7, KIB(4), true);
	assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED, 7), 0);
	{
		struct eh_frames f;
		const struct eh_frame *rst;

		eh_tx_frames(h, &f);
		rst = eh_frames_find(&f, MR_FRAME_RST, 7, 0);
		assert_non_null(rst);
		assert_int_equal(mr_get_be32(rst->body), MUXRING_STREAM_REFUSED);
		eh_frames_free(&f);
	}
	/* Down to exactly 3/4 of the cap: still waiting. */
	eh_release(h, 3, KIB(64));
	assert_int_equal(wndinc_sent(h, 5), 0);
	assert_int_equal(wndinc_sent(h, 3), 0);
	/* Below it: both streams get everything held back. */
	eh_release(h, 3, KIB(4));
	assert_int_equal(wndinc_sent(h, 5), KIB(200));
	assert_int_equal(wndinc_sent(h, 3), KIB(68));
	eh_free(h);
}

static void test_queued_writes_count_against_the_cap(void **state)
{
	struct eh *h = capped();
	struct mr_session_stats st;
	struct mr_stream *mine;
	uint8_t *big = calloc(1, KIB(300));

	(void)state;
	assert_non_null(big);
	send_bytes(h, 3, KIB(64), true);
	/* Nothing leaves until the test flushes (eh_tx_frames). */
	mine = eh_open(h);
	assert_int_equal(eh_write(mine, big, KIB(300), 1), 0);
	assert_int_equal(mr_session_buffered(h->sess), KIB(364));
	/* Data the application releases is not credited while the session's
	 * own writes fill the cap. */
	eh_release(h, 3, SIZE_MAX);
	mr_session_stats(h->sess, &st);
	assert_int_equal(st.credit_stalls, 1);
	assert_int_equal(st.tx_queued_bytes, KIB(300));
	/* The flush sends the window's worth of the write (256 KiB) and
	 * the queue falls under 3/4 of the cap: the credit goes out. */
	assert_int_equal(wndinc_sent(h, 3), KIB(64));
	assert_int_equal(mr_session_buffered(h->sess), KIB(300 - 256));
	free(big);
	eh_free(h);
}

/* Streams name their blocks by a slot in the session's table: slots of
 * finished streams are taken by new ones, so the table follows the streams
 * that hold a block now, not every stream there ever was. */
static void test_finished_streams_give_their_block_slots_back(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_SERVER, NULL);
	const char *const two[] = {"ab", "cd"};
	struct mr_session_stats st;
	struct mr_event ev[64];
	uint32_t round, i, cap = 0;

	(void)state;
	for (round = 0; round < 4; round++) {
		uint32_t first = 3 + round * 80;

		for (i = 0; i < 40; i++)
			feed_frames(sess, first + 2 * i, MR_FLAG_SYN, two, 2);
		assert_int_equal(poll_data(sess, ev, 64), 40);
		for (i = 0; i < 40; i++) {
			assert_int_equal(ev[i].view.len, 4);
			assert_memory_equal(ev[i].view.data, "abcd", 4);
			mr_view_release(&ev[i].view);
		}
		if (!cap)
			cap = sess->rx_blocks_cap;
		/* The peer resets them all: they finish, their slots free. */
		for (i = 0; i < 40; i++) {
			struct eh_bytes b = {0};

			eh_bytes_rst(&b, first + 2 * i, MUXRING_STREAM_CANCELLED);
			feed(sess, &b);
			eh_bytes_free(&b);
		}
		poll_data(sess, ev, 64);
	}
	assert_int_equal(sess->rx_blocks_cap, cap);
	assert_true(cap >= 40 && cap < 4 * 40);
	mr_session_stats(sess, &st);
	assert_int_equal(st.rx_copy_bytes, 0);
	mr_session_free(sess);
}

/* Beyond 65,535 streams holding a block at once, small pieces are handed
 * up one by one: nothing is lost or reordered, the session goes on. */
static void test_past_the_last_block_slot_pieces_go_up_one_by_one(void **state)
{
	const uint32_t streams = 0xFFFFu + 10;
	const char *const two[] = {"ab", "cd"};
	struct mr_config cfg;
	struct mr_session *sess;
	struct mr_event *ev = malloc((size_t)(streams + 20) * sizeof(*ev));
	size_t n = 0, i;

	(void)state;
	assert_non_null(ev);
	mr_config_default(&cfg);
	cfg.max_streams = streams + 1;
	cfg.accept_backlog = streams + 1;
	sess = mr_session_new(MR_ROLE_SERVER, &cfg);
	assert_non_null(sess);
	for (i = 0; i < streams; i++) {
		feed_frames(sess, 3 + 2 * (uint32_t)i, MR_FLAG_SYN, two, 2);
		n += poll_data(sess, ev + n, streams + 20 - n);
	}
	assert_int_equal(sess->rx_blocks_cap, 0xFFFFu);
	assert_int_equal(n, 0xFFFFu + 2 * 10);
	for (i = 0; i < 0xFFFFu; i++) {
		assert_int_equal(ev[i].view.len, 4);
		assert_memory_equal(ev[i].view.data, "abcd", 4);
	}
	for (; i < n; i += 2) {
		assert_ptr_equal(ev[i].view.stream, ev[i + 1].view.stream);
		assert_memory_equal(ev[i].view.data, "ab", 2);
		assert_memory_equal(ev[i + 1].view.data, "cd", 2);
	}
	for (i = 0; i < n; i++)
		mr_view_release(&ev[i].view);
	free(ev);
	mr_session_free(sess);
}

static void test_without_a_cap_credit_never_waits(void **state)
{
	struct mr_config cfg;
	struct mr_session_stats st;
	struct eh *h;

	(void)state;
	mr_config_default(&cfg);
	cfg.max_buffered = 0;
	h = eh_new(MR_ROLE_SERVER, &cfg);
	send_bytes(h, 5, KIB(256), true);
	send_bytes(h, 3, KIB(256), true);
	eh_release(h, 3, SIZE_MAX);
	assert_int_equal(wndinc_sent(h, 3), KIB(256));
	mr_session_stats(h->sess, &st);
	assert_int_equal(st.credit_stalls, 0);
	eh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_byte_frames_over_every_window_cost_bytes_not_frames),
		cmocka_unit_test(test_a_queued_data_event_grows_until_it_is_polled),
		cmocka_unit_test(test_a_view_between_small_payloads_keeps_their_order),
		cmocka_unit_test(test_a_block_no_view_uses_is_refilled_from_its_start),
		cmocka_unit_test(test_blocks_double_up_to_their_bound),
		cmocka_unit_test(test_finished_streams_give_their_block_slots_back),
		cmocka_unit_test(test_past_the_last_block_slot_pieces_go_up_one_by_one),
		cmocka_unit_test(test_at_the_cap_credit_waits_and_resumes_below_three_quarters),
		cmocka_unit_test(test_queued_writes_count_against_the_cap),
		cmocka_unit_test(test_without_a_cap_credit_never_waits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
