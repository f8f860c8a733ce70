/*
 * test_engine_flow.c - per-stream flow control in the engine
 * (PROTOCOL.md "Flow control"; src/engine/session.h struct mr_config).
 *
 * Covers: a write cut by the peer's 256 KiB window, then blocked until
 * WNDINC, each WNDINC opening exactly its increment (top bit masked); DATA
 * frames cut at max_frame_payload and never above 0xFFFFFF; frames of
 * several streams interleaved; WNDINC coalesced (none per read, one once a
 * quarter of the window has been consumed, none for data still held); a
 * receive window above 256 KiB granted by an extra WNDINC when the stream
 * starts (after the SYN on streams we open) and coalesced at a quarter of
 * itself; an overrun answered with RST FlowControlError on that stream only
 * while the session and the other streams go on; data within the window
 * granted back is no overrun; invalid configurations refused; two engines
 * moving megabytes through a reader that only reads full windows, with no
 * overrun and every byte intact; a reader that closes with the window used
 * up does not leave the writer waiting for window forever.
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

#define S(str) (str), (sizeof(str) - 1)
#define QUARTER (MR_INITIAL_WINDOW / 4)

static uint8_t pattern_byte(size_t i)
{
	return (uint8_t)(i * 131 + (i >> 9));
}

static uint8_t *pattern(size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = pattern_byte(i);
	return p;
}

static struct eh *with_cfg(enum mr_role role, uint32_t window,
			   uint32_t max_frame_payload)
{
	struct mr_config cfg;

	mr_config_default(&cfg);
	if (window)
		cfg.window = window;
	if (max_frame_payload)
		cfg.max_frame_payload = max_frame_payload;
	return eh_new(role, &cfg);
}

static void feed_data(struct eh *h, uint32_t id, uint8_t flags,
		      const void *payload, size_t len)
{
	struct eh_bytes b = {0};

	eh_bytes_data(&b, id, flags, payload, len);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_bytes_free(&b);
}

/* Feeds `len` zero bytes of DATA on id in frames of at most `frame`. */
static void feed_zeros(struct eh *h, uint32_t id, uint8_t flags, size_t len,
		       size_t frame)
{
	uint8_t *zeros = calloc(1, frame);

	assert_non_null(zeros);
	while (len) {
		size_t n = len < frame ? len : frame;

		feed_data(h, id, flags, zeros, n);
		flags &= (uint8_t)~MR_FLAG_SYN;
		len -= n;
	}
	free(zeros);
}

static void feed_wndinc(struct eh *h, uint32_t id, uint32_t inc)
{
	struct eh_bytes b = {0};

	eh_bytes_wndinc(&b, id, inc);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_bytes_free(&b);
}

/* Every frame emitted since the last eh_tx_clear (flushes first). */
static void take_frames(struct eh *h, struct eh_frames *f)
{
	eh_tx_frames(h, f);
}

static size_t data_payload_sum(const struct eh_frames *f, uint32_t id)
{
	size_t sum = 0;

	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].hdr.type == MR_FRAME_DATA &&
		    f->v[i].hdr.stream_id == id)
			sum += f->v[i].hdr.length;
	return sum;
}

/* ---- sending ------------------------------------------------------------ */

static void test_a_large_write_is_cut_by_the_peers_window_then_waits_for_wndinc(void **state)
{
	struct eh *h = with_cfg(MR_ROLE_CLIENT, 0, MR_FRAME_MAX_LEN);
	struct mr_stream *s = eh_open(h);
	const size_t total = 300000;
	uint8_t *pat = pattern(total);
	struct eh_frames f;
	uint8_t *sent = malloc(total);
	size_t have = 0;

	(void)state;
	assert_non_null(sent);
	assert_int_equal(eh_write(s, pat, total, 1), 0);
	take_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.flags, MR_FLAG_SYN);
	assert_int_equal(f.v[0].hdr.length, MR_INITIAL_WINDOW);
	eh_frames_free(&f);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);
	assert_false(mr_session_tx_pending(h->sess));

	/* Each WNDINC opens exactly its increment; the top bit is masked. */
	feed_wndinc(h, 3, 1000);
	take_frames(h, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.v[1].hdr.length, 1000);
	assert_int_equal(f.v[1].hdr.flags, 0);
	eh_frames_free(&f);
	feed_wndinc(h, 3, 0x80000000u | 500);
	take_frames(h, &f);
	assert_int_equal(f.n, 3);
	assert_int_equal(f.v[2].hdr.length, 500);
	eh_frames_free(&f);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);
	feed_wndinc(h, 3, 100000);
	take_frames(h, &f);
	assert_int_equal(f.n, 4);
	assert_int_equal(f.v[3].hdr.length, total - MR_INITIAL_WINDOW - 1500);
	for (size_t i = 0; i < f.n; i++) {
		memcpy(sent + have, f.v[i].body, f.v[i].hdr.length);
		have += f.v[i].hdr.length;
	}
	assert_int_equal(have, total);
	assert_memory_equal(sent, pat, total);
	eh_frames_free(&f);
	assert_int_equal(eh_write_result(h, 1), (int64_t)total);
	free(sent);
	free(pat);
	eh_free(h);
}

static void test_data_frames_are_cut_at_max_frame_payload(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL); /* 64 KiB frames */
	struct eh *small = with_cfg(MR_ROLE_SERVER, 0, 1000);
	uint8_t *pat = pattern(200000);
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(eh_open(h), pat, 200000, 1), 0);
	take_frames(h, &f);
	assert_int_equal(f.n, 4);
	assert_int_equal(f.v[0].hdr.length, 65536);
	assert_int_equal(f.v[1].hdr.length, 65536);
	assert_int_equal(f.v[2].hdr.length, 65536);
	assert_int_equal(f.v[3].hdr.length, 200000 - 3 * 65536);
	eh_frames_free(&f);

	assert_int_equal(eh_write(eh_open(small), pat, 4500, 1), 0);
	take_frames(small, &f);
	assert_int_equal(f.n, 5);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(f.v[i].hdr.length, 1000);
	assert_int_equal(f.v[4].hdr.length, 500);
	assert_int_equal(f.v[0].hdr.flags, MR_FLAG_SYN);
	assert_int_equal(f.v[1].hdr.flags, 0);
	eh_frames_free(&f);
	free(pat);
	eh_free(h);
	eh_free(small);
}

static void test_a_frame_never_exceeds_0xffffff_even_when_the_window_is_larger(void **state)
{
	struct eh *h = with_cfg(MR_ROLE_CLIENT, 0, MR_FRAME_MAX_LEN);
	struct mr_stream *s = eh_open(h);
	const size_t total = MR_FRAME_MAX_LEN + 17;
	uint8_t *big = calloc(1, total);
	struct eh_frames f;

	(void)state;
	assert_non_null(big);
	assert_int_equal(eh_write(s, "", 0, 1), 0); /* the SYN goes out */
	eh_flush(h);
	feed_wndinc(h, 3, 0x2000000); /* window: 32 MiB + 256 KiB */
	eh_tx_clear(h);
	assert_int_equal(eh_write(s, big, total, 2), 0);
	take_frames(h, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.v[0].hdr.length, MR_FRAME_MAX_LEN);
	assert_int_equal(f.v[1].hdr.length, 17);
	eh_frames_free(&f);
	assert_int_equal(eh_write_result(h, 2), (int64_t)total);
	free(big);
	eh_free(h);
}

static void test_frames_of_several_streams_interleave(void **state)
{
	struct eh *h = with_cfg(MR_ROLE_CLIENT, 0, 16384);
	struct mr_stream *a = eh_open(h), *b = eh_open(h);
	uint8_t *pat = pattern(100000);
	struct eh_frames f;
	size_t first_b = SIZE_MAX, last_a = 0;

	(void)state;
	assert_int_equal(eh_write(a, pat, 100000, 1), 0);
	assert_int_equal(eh_write(b, pat, 100000, 2), 0);
	take_frames(h, &f);
	for (size_t i = 0; i < f.n; i++) {
		if (f.v[i].hdr.stream_id == 5 && first_b == SIZE_MAX)
			first_b = i;
		if (f.v[i].hdr.stream_id == 3)
			last_a = i;
	}
	/* Stream 5 does not wait for stream 3's 100 KB to be out. */
	assert_true(first_b < last_a);
	assert_int_equal(data_payload_sum(&f, 3), 100000);
	assert_int_equal(data_payload_sum(&f, 5), 100000);
	eh_frames_free(&f);
	free(pat);
	eh_free(h);
}

/* ---- granting ------------------------------------------------------------- */

static void test_wndinc_is_sent_once_a_quarter_of_the_window_is_consumed_not_per_read(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	uint8_t chunk[1000] = {0};
	size_t consumed = 0, sent_wndinc = 0;
	struct eh_frames f;

	(void)state;
	feed_data(h, 3, MR_FLAG_SYN, chunk, sizeof(chunk));
	for (int i = 0; i < 140; i++) {
		if (i)
			feed_data(h, 3, 0, chunk, sizeof(chunk));
		consumed += eh_release(h, 3, SIZE_MAX);
		eh_flush(h);
		eh_tx_frames(h, &f);
		if (consumed < 66000) {
			/* 65 reads of 1000 bytes: still below 65536. */
			assert_int_equal(f.n, 0);
		} else if (consumed < 132000) {
			assert_int_equal(f.n, 1);
		}
		sent_wndinc = f.n;
		eh_frames_free(&f);
	}
	eh_tx_frames(h, &f);
	assert_int_equal(sent_wndinc, 2);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_WNDINC);
	assert_int_equal(f.v[0].hdr.stream_id, 3);
	assert_int_equal(mr_frame_wndinc_increment(f.v[0].body), 66000);
	assert_int_equal(mr_frame_wndinc_increment(f.v[1].body), 66000);
	eh_frames_free(&f);
	assert_int_equal(consumed, 140000);
	eh_free(h);
}

static void test_no_wndinc_is_sent_for_data_the_application_still_holds(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_frames f;

	(void)state;
	feed_zeros(h, 3, MR_FLAG_SYN, 200000, 10000);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 0);
	eh_frames_free(&f);
	assert_int_equal(eh_release(h, 3, 60000), 60000);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 0);
	eh_frames_free(&f);
	assert_int_equal(eh_release(h, 3, 10000), 10000);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(mr_frame_wndinc_increment(f.v[0].body), 70000);
	eh_frames_free(&f);
	eh_free(h);
}

static void test_a_window_above_256k_is_granted_when_a_peer_stream_starts(void **state)
{
	const uint32_t window = 1u << 20;
	struct eh *h = with_cfg(MR_ROLE_SERVER, window, 0);
	struct eh_frames f;

	(void)state;
	feed_data(h, 3, MR_FLAG_SYN, S("x"));
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_WNDINC);
	assert_int_equal(f.v[0].hdr.stream_id, 3);
	assert_int_equal(mr_frame_wndinc_increment(f.v[0].body),
			 window - MR_INITIAL_WINDOW);
	eh_frames_free(&f);
	/* The peer may now send the whole 1 MiB without any read... */
	feed_zeros(h, 3, 0, window - 1, 65536);
	eh_tx_frames(h, &f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_RST, EH_ANY), 0);
	eh_frames_free(&f);
	assert_int_equal(eh_data(h, 3, NULL, 0), window);
	/* ...and not a byte more. */
	feed_data(h, 3, 0, S("!"));
	eh_tx_frames(h, &f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_RST, 3), 1);
	assert_int_equal(mr_get_be32(eh_frames_find(&f, MR_FRAME_RST, 3, 0)->body),
			 MUXRING_FLOW_CONTROL_ERROR);
	eh_frames_free(&f);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_FLOW_CONTROL_ERROR);
	eh_free(h);
}

static void test_a_window_above_256k_on_a_stream_we_open_is_granted_after_its_syn(void **state)
{
	const uint32_t window = 3u << 19; /* 1.5 MiB */
	struct eh *h = with_cfg(MR_ROLE_CLIENT, window, 0);
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;

	(void)state;
	/* Not announced yet: nothing, not even the WNDINC. */
	assert_int_equal(eh_flush(h), 0);
	assert_int_equal(eh_write(s, S("a"), 1), 0);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_DATA);
	assert_int_equal(f.v[0].hdr.flags, MR_FLAG_SYN);
	assert_int_equal(f.v[1].hdr.type, MR_FRAME_WNDINC);
	assert_int_equal(f.v[1].hdr.stream_id, 3);
	assert_int_equal(mr_frame_wndinc_increment(f.v[1].body),
			 window - MR_INITIAL_WINDOW);
	eh_frames_free(&f);
	eh_free(h);
}

static void test_a_larger_window_is_granted_back_at_a_quarter_of_itself(void **state)
{
	const uint32_t window = 1u << 20;
	struct eh *h = with_cfg(MR_ROLE_SERVER, window, 0);
	struct eh_frames f;

	(void)state;
	feed_zeros(h, 3, MR_FLAG_SYN, 400000, 20000);
	eh_flush(h);
	eh_tx_clear(h); /* the start-up WNDINC */
	assert_int_equal(eh_release(h, 3, 200000), 200000);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 0); /* 200000 < 262144 */
	eh_frames_free(&f);
	assert_int_equal(eh_release(h, 3, 80000), 80000);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(mr_frame_wndinc_increment(f.v[0].body), 280000);
	eh_frames_free(&f);
	eh_free(h);
}

/* ---- overrun -------------------------------------------------------------- */

static void test_an_overrun_resets_only_that_stream_with_flow_control_error(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_frames f;
	const struct eh_frame *rst;

	(void)state;
	feed_zeros(h, 3, MR_FLAG_SYN, MR_INITIAL_WINDOW, 32768);
	feed_data(h, 5, MR_FLAG_SYN, S("other"));
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 0); /* exactly the window: fine */
	eh_frames_free(&f);
	feed_data(h, 3, 0, S("X")); /* one byte over */
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	rst = eh_frames_find(&f, MR_FRAME_RST, 3, 0);
	assert_non_null(rst);
	assert_int_equal(mr_get_be32(rst->body), MUXRING_FLOW_CONTROL_ERROR);
	eh_frames_free(&f);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_FLOW_CONTROL_ERROR);
	/* The offending payload is not delivered. */
	assert_int_equal(eh_data(h, 3, NULL, 0), MR_INITIAL_WINDOW);
	/* The session and the other stream go on. */
	assert_false(mr_session_ended(h->sess));
	feed_data(h, 5, MR_FLAG_FIN, S(" stream"));
	eh_assert_data(h, 5, S("other stream"));
	assert_int_equal(eh_count(h, MR_EV_EOF, 5), 1);
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 5), 0);
	assert_int_equal(eh_write(eh_accepted(h, 5), S("ok"), 1), 0);
	eh_flush(h);
	assert_int_equal(eh_write_result(h, 1), 2);
	/* Later DATA on the reset stream is not delivered either. */
	feed_data(h, 3, 0, S("more"));
	assert_int_equal(eh_data(h, 3, NULL, 0), MR_INITIAL_WINDOW);
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

static void test_data_within_the_window_granted_back_is_no_overrun(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_frames f;
	uint64_t granted;

	(void)state;
	feed_zeros(h, 3, MR_FLAG_SYN, MR_INITIAL_WINDOW, 65536);
	eh_release(h, 3, SIZE_MAX);
	eh_tx_frames(h, &f);
	granted = eh_frames_wndinc_sum(&f, 3);
	eh_frames_free(&f);
	assert_int_equal(granted, MR_INITIAL_WINDOW);
	feed_zeros(h, 3, 0, (size_t)granted, 65536);
	eh_tx_frames(h, &f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_RST, EH_ANY), 0);
	eh_frames_free(&f);
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 3), 0);
	assert_int_equal(eh_data(h, 3, NULL, 0), 2 * MR_INITIAL_WINDOW);
	eh_free(h);
}

/* ---- configuration and two engines ---------------------------------------- */

static void test_session_new_refuses_a_window_below_256k_and_zero_limits(void **state)
{
	struct mr_config cfg;

	(void)state;
	mr_config_default(&cfg);
	assert_int_equal(cfg.window, MR_INITIAL_WINDOW);
	assert_int_equal(cfg.accept_backlog, 128);
	assert_int_equal(cfg.max_streams, 4096);
	assert_int_equal(cfg.goaway_debug_cap, 1u << 20);
	assert_int_equal(cfg.max_frame_payload, 64u << 10);
	assert_int_equal(cfg.max_control_backlog, 1u << 20);
	assert_false(cfg.typed);
	cfg.window = MR_INITIAL_WINDOW - 1;
	assert_null(mr_session_new(MR_ROLE_CLIENT, &cfg));
	mr_config_default(&cfg);
	cfg.accept_backlog = 0;
	assert_null(mr_session_new(MR_ROLE_CLIENT, &cfg));
	mr_config_default(&cfg);
	cfg.max_streams = 0;
	assert_null(mr_session_new(MR_ROLE_SERVER, &cfg));
	mr_config_default(&cfg);
	cfg.max_frame_payload = 0;
	assert_null(mr_session_new(MR_ROLE_SERVER, &cfg));
}

static void test_two_engines_move_megabytes_through_a_slow_reader_without_an_overrun(void **state)
{
	struct eh *a = eh_new(MR_ROLE_CLIENT, NULL);
	struct eh *b = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_pipe p = {.a = a, .b = b};
	const size_t total = 3 << 20;
	uint8_t *pat = pattern(total), *got = malloc(total);
	struct mr_stream *s = eh_open(a);
	struct eh_frames f;
	size_t rounds = 0;

	(void)state;
	assert_non_null(got);
	assert_int_equal(eh_write(s, pat, total, 1), 0);
	assert_int_equal(mr_stream_close_write(s), 0);
	/* b reads only when a whole window is waiting: a must block. */
	while (eh_pipe_step(&p) || eh_count(b, MR_EV_EOF, 3) == 0) {
		size_t held = 0;

		for (size_t i = 0; i < b->nev; i++)
			if (b->ev[i].ev.type == MR_EV_DATA && !b->ev[i].released)
				held += b->ev[i].ev.view.len;
		assert_true(held <= MR_INITIAL_WINDOW);
		if (held == MR_INITIAL_WINDOW || eh_count(b, MR_EV_EOF, 3))
			eh_release(b, 3, SIZE_MAX);
		assert_true(++rounds < 10000);
	}
	eh_release(b, 3, SIZE_MAX);
	assert_int_equal(eh_data(b, 3, got, total), total);
	assert_memory_equal(got, pat, total);
	assert_int_equal(eh_write_result(a, 1), (int64_t)total);
	eh_tx_frames(b, &f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_RST, EH_ANY), 0);
	assert_true(eh_frames_count(&f, MR_FRAME_WNDINC, 3) >= total / MR_INITIAL_WINDOW - 1);
	eh_frames_free(&f);
	free(pat);
	free(got);
	eh_free(a);
	eh_free(b);
}

/*
 * The reader holds a full window of views and closes the stream: nothing
 * is credited once closed, so the writer, with more queued, would wait for
 * window forever. The close grants one byte; the writer's next byte is
 * answered with RST StreamClosed, its queued write fails and its stream
 * closes (found by fuzz_link).
 */
static void test_a_close_with_the_window_used_up_lets_the_writer_finish(void **state)
{
	struct eh *a = eh_new(MR_ROLE_CLIENT, NULL);
	struct eh *b = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_pipe p = {.a = a, .b = b};
	const size_t total = MR_INITIAL_WINDOW + 4096;
	uint8_t *pat = pattern(total);
	struct mr_stream *s = eh_open(a);

	(void)state;
	assert_int_equal(eh_write(s, pat, total, 1), 0);
	assert_int_equal(mr_stream_close_write(s), 0);
	eh_pipe_run(&p);
	assert_int_equal(eh_data(b, 3, NULL, 0), MR_INITIAL_WINDOW);
	assert_int_equal(eh_count(a, MR_EV_WRITE_DONE, 3), 0);
	assert_int_equal(mr_stream_close(eh_accepted(b, 3)), 0);
	eh_pipe_run(&p);
	assert_int_equal(eh_write_result(a, 1),
			 eh_err(MUXRING_STREAM_CLOSED));
	assert_int_equal(eh_closed_code(a, 3), MUXRING_STREAM_CLOSED);
	assert_int_equal(eh_closed_code(b, 3), MUXRING_NO_ERROR);
	/* At most the byte granted came after the close. */
	assert_int_equal(eh_data(b, 3, NULL, 0), MR_INITIAL_WINDOW);
	free(pat);
	eh_free(a);
	eh_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_large_write_is_cut_by_the_peers_window_then_waits_for_wndinc),
		cmocka_unit_test(test_data_frames_are_cut_at_max_frame_payload),
		cmocka_unit_test(test_a_frame_never_exceeds_0xffffff_even_when_the_window_is_larger),
		cmocka_unit_test(test_frames_of_several_streams_interleave),
		cmocka_unit_test(test_wndinc_is_sent_once_a_quarter_of_the_window_is_consumed_not_per_read),
		cmocka_unit_test(test_no_wndinc_is_sent_for_data_the_application_still_holds),
		cmocka_unit_test(test_a_window_above_256k_is_granted_when_a_peer_stream_starts),
		cmocka_unit_test(test_a_window_above_256k_on_a_stream_we_open_is_granted_after_its_syn),
		cmocka_unit_test(test_a_larger_window_is_granted_back_at_a_quarter_of_itself),
		cmocka_unit_test(test_an_overrun_resets_only_that_stream_with_flow_control_error),
		cmocka_unit_test(test_data_within_the_window_granted_back_is_no_overrun),
		cmocka_unit_test(test_session_new_refuses_a_window_below_256k_and_zero_limits),
		cmocka_unit_test(test_two_engines_move_megabytes_through_a_slow_reader_without_an_overrun),
		cmocka_unit_test(test_a_close_with_the_window_used_up_lets_the_writer_finish),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
