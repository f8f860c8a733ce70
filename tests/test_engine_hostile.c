/*
 * test_engine_hostile.c - a peer that tries to hurt us.
 *
 * Covers: a flood of DATA on unknown streams whose RST answers the peer
 * never reads ends the session with EnhanceYourCalm once max_control_backlog
 * is reached, with the queued output bounded by that cap (and a peer that
 * does read, within its flood budget, is never cut off; the budgets
 * themselves are test_engine_floods.c's); a SYN flood beyond max_streams refused with
 * RST StreamRefused; DATA headers claiming 0xFFFFFF bytes, their body split
 * over thousands of input buffers (unknown stream: one RST StreamClosed;
 * known stream: RST FlowControlError from the header alone), the next frame
 * still parsed in sync; a GOAWAY whose debug is far beyond the cap (first
 * 1 MiB kept, the rest dropped, in sync); the largest unknown frame skipped;
 * WNDINCs adding up past 2^32 never wrapping the send window to a small
 * value; random garbage and random frame soup in random chunking: no crash
 * (ASan/UBSan), the output always whole valid frames, and a session that
 * ends does so once, with SESSION_ENDED last. MUXRING_SEED replays a run.
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

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static uint64_t seed_from_env(void)
{
	const char *env = getenv("MUXRING_SEED");

	return env && *env ? strtoull(env, NULL, 0) : 0x5EED0F4057113ull;
}

/* ---- control backlog ------------------------------------------------------ */

/* DATA for never-opened streams; with flush_every the peer reads our
 * replies every that many frames, and the clock moves a second every
 * frames_per_sec frames (0: it stands still). */
static void flood_unknown_data(struct eh *h, size_t frames, size_t flush_every,
			       size_t frames_per_sec)
{
	struct eh_bytes b = {0};
	uint64_t now = 1000000000u;

	for (size_t i = 0; i < frames; i++) {
		if (frames_per_sec && i % frames_per_sec == 0)
			mr_session_set_now(h->sess, now += 1000000000u);
		bool batch_done = flush_every ? (i + 1) % flush_every == 0
					      : b.len >= 65536;

		eh_bytes_data(&b, 3 + 2 * (uint32_t)(i % 1000), 0, "x", 1);
		if (batch_done || i + 1 == frames) {
			eh_feed_bytes(h, &b, 0);
			b.len = 0;
			if (flush_every) { /* the peer reads what we sent */
				eh_flush(h);
				eh_tx_clear(h);
			}
		}
		if (mr_session_ended(h->sess))
			break;
	}
	eh_bytes_free(&b);
}

static void assert_calmed_down_within(struct eh *h, size_t cap)
{
	struct eh_frames f;
	const struct eh_frame *last;

	assert_int_equal(h->recv_rc, MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM));
	eh_assert_ended(h);
	assert_int_equal(mr_session_result(h->sess)->local_error,
			 MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM));
	eh_tx_frames(h, &f);
	last = &f.v[f.n - 1];
	assert_int_equal(last->hdr.type, MR_FRAME_GOAWAY);
	assert_int_equal(mr_get_be32(last->body + 4), MUXRING_ENHANCE_YOUR_CALM);
	/* Everything queued: at most the cap of control frames plus the
	 * GOAWAY that says why. */
	if (h->tx_len > cap + MR_CONTROL_FRAME_LEN + last->hdr.length + 8) {
		print_error("queued %zu bytes with a control backlog cap of "
			    "%zu\n", h->tx_len, cap);
		fail();
	}
	assert_true(eh_frames_count(&f, MR_FRAME_RST, EH_ANY) >=
		    cap / MR_CONTROL_FRAME_LEN - 1);
	eh_frames_free(&f);
}

static void test_a_data_flood_whose_rsts_are_never_read_ends_with_enhance_your_calm(void **state)
{
	struct mr_config cfg;
	struct eh *h;

	(void)state;
	mr_config_default(&cfg);
	cfg.max_control_backlog = 1200;
	h = eh_new(MR_ROLE_SERVER, &cfg);
	flood_unknown_data(h, 10000, 0, 0);
	assert_calmed_down_within(h, 1200);
	eh_free(h);
}

static void test_the_default_control_backlog_bounds_a_flood_at_1_mib(void **state)
{
	struct mr_config cfg;
	struct eh *h;

	(void)state;
	mr_config_default(&cfg);
	/* The backlog alone, not the rate budget of such frames. */
	cfg.flood.closed_data_per_sec = UINT32_MAX;
	h = eh_new(MR_ROLE_SERVER, &cfg);
	flood_unknown_data(h, 120000, 0, 0); /* 1.44 MB of RSTs asked for */
	assert_calmed_down_within(h, 1u << 20);
	eh_free(h);
}

static void test_a_peer_that_reads_our_rsts_within_its_budget_is_never_cut_off(void **state)
{
	struct mr_config cfg;
	struct eh *h;

	(void)state;
	mr_config_default(&cfg);
	cfg.max_control_backlog = 1200;
	h = eh_new(MR_ROLE_SERVER, &cfg);
	flood_unknown_data(h, 20000, 50, 5000);
	assert_false(mr_session_ended(h->sess));
	assert_int_equal(h->recv_rc, 0);
	eh_free(h);
}

static void test_a_syn_flood_beyond_max_streams_is_refused_with_stream_refused(void **state)
{
	struct mr_config cfg;
	struct eh *h;
	struct eh_bytes b = {0};
	size_t refused = 0;

	(void)state;
	mr_config_default(&cfg);
	cfg.max_streams = 100;
	h = eh_new(MR_ROLE_SERVER, &cfg);
	for (uint32_t i = 0; i < 5000; i++) {
		struct eh_frames f;

		eh_bytes_data(&b, 3 + 2 * i, MR_FLAG_SYN, "s", 1);
		assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
		b.len = 0;
		if (i % 100 == 99) {
			eh_tx_frames(h, &f);
			for (size_t k = 0; k < f.n; k++) {
				assert_int_equal(f.v[k].hdr.type, MR_FRAME_RST);
				assert_int_equal(mr_get_be32(f.v[k].body),
						 MUXRING_STREAM_REFUSED);
			}
			refused += f.n;
			eh_frames_free(&f);
			eh_tx_clear(h);
		}
	}
	assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED, EH_ANY), 100);
	assert_int_equal(refused, 4900);
	assert_false(mr_session_ended(h->sess));
	eh_bytes_free(&b);
	eh_free(h);
}

/* ---- huge lengths ------------------------------------------------------------ */

/* Feeds `len` filler bytes in `chunk`-byte buffers. */
static void feed_filler(struct eh *h, size_t len, size_t chunk, uint8_t fill)
{
	uint8_t *buf = malloc(chunk);

	assert_non_null(buf);
	memset(buf, fill, chunk);
	while (len) {
		size_t n = len < chunk ? len : chunk;

		assert_int_equal(eh_feed(h, buf, n, 0), 0);
		len -= n;
	}
	free(buf);
}

static void test_a_huge_data_frame_for_an_unknown_stream_split_into_4k_chunks_is_dropped(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_bytes b = {0};
	struct eh_frames f;

	(void)state;
	eh_bytes_header(&b, MR_FRAME_MAX_LEN, MR_FRAME_DATA, 0, 9);
	/* the header itself arrives in three pieces */
	assert_int_equal(eh_feed(h, b.p, b.len, 3), 0);
	feed_filler(h, MR_FRAME_MAX_LEN, 4096, 0x11);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_RST);
	assert_int_equal(f.v[0].hdr.stream_id, 9);
	assert_int_equal(mr_get_be32(f.v[0].body), MUXRING_STREAM_CLOSED);
	eh_frames_free(&f);
	assert_int_equal(h->nev, 0);
	b.len = 0;
	eh_bytes_data(&b, 11, MR_FLAG_SYN, S("in sync"));
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_assert_data(h, 11, S("in sync"));
	eh_bytes_free(&b);
	eh_free(h);
}

static void test_a_huge_data_frame_beyond_the_window_is_reset_from_its_header(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_bytes b = {0};
	struct eh_frames f;

	(void)state;
	eh_bytes_data(&b, 3, MR_FLAG_SYN, S("ok"));
	eh_bytes_header(&b, MR_FRAME_MAX_LEN, MR_FRAME_DATA, 0, 3);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	/* Nothing of the body has come yet: the RST is already due. */
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_RST);
	assert_int_equal(mr_get_be32(f.v[0].body), MUXRING_FLOW_CONTROL_ERROR);
	eh_frames_free(&f);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_FLOW_CONTROL_ERROR);
	feed_filler(h, MR_FRAME_MAX_LEN, 65536, 0x22);
	eh_assert_data(h, 3, S("ok"));
	b.len = 0;
	eh_bytes_data(&b, 5, MR_FLAG_SYN, S("next"));
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_assert_data(h, 5, S("next"));
	assert_false(mr_session_ended(h->sess));
	eh_bytes_free(&b);
	eh_free(h);
}

static void test_a_goaway_with_16_mib_of_debug_keeps_1_mib_and_stays_in_sync(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct eh_bytes b = {0};
	uint8_t fixed[8];
	const struct mr_session_result *r;
	const size_t debug_len = MR_FRAME_MAX_LEN - 8;

	(void)state;
	eh_write(eh_open(h), S("x"), 1);
	eh_flush(h);
	eh_bytes_header(&b, MR_FRAME_MAX_LEN, MR_FRAME_GOAWAY, 0, 0);
	mr_put_be32(fixed, 3);
	mr_put_be32(fixed + 4, MUXRING_INTERNAL_ERROR);
	eh_bytes_put(&b, fixed, 8);
	assert_int_equal(eh_feed_bytes(h, &b, 5), 0);
	feed_filler(h, debug_len, 65536 + 13, 'D');
	r = mr_session_result(h->sess);
	assert_true(r->remote_goaway);
	assert_int_equal(r->remote_code, MUXRING_INTERNAL_ERROR);
	assert_int_equal(r->remote_last_id, 3);
	assert_int_equal(r->remote_debug_len, 1u << 20);
	for (size_t i = 0; i < r->remote_debug_len; i++)
		if (r->remote_debug[i] != 'D')
			fail_msg("debug byte %zu is %#x", i, r->remote_debug[i]);
	b.len = 0;
	eh_bytes_data(&b, 3, 0, S("after"));
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_assert_data(h, 3, S("after"));
	assert_false(mr_session_ended(h->sess));
	eh_bytes_free(&b);
	eh_free(h);
}

static void test_the_largest_unknown_frame_is_skipped_in_chunks(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_bytes b = {0};

	(void)state;
	eh_bytes_header(&b, MR_FRAME_MAX_LEN, 0xE, 0xF, 0x7FFFFFFF);
	assert_int_equal(eh_feed_bytes(h, &b, 1), 0);
	feed_filler(h, MR_FRAME_MAX_LEN, 300000, 0x00);
	b.len = 0;
	eh_bytes_data(&b, 3, MR_FLAG_SYN, S("after"));
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_assert_data(h, 3, S("after"));
	assert_int_equal(eh_flush(h), 0);
	eh_bytes_free(&b);
	eh_free(h);
}

static void test_wndincs_adding_up_past_2_pow_32_never_wrap_the_window_small(void **state)
{
	struct mr_config cfg;
	struct eh *h;
	struct mr_stream *s;
	struct eh_bytes b = {0};
	struct eh_frames f;
	uint8_t *big = calloc(1, 1u << 20);
	size_t sent = 0;

	(void)state;
	assert_non_null(big);
	mr_config_default(&cfg);
	cfg.max_frame_payload = MR_FRAME_MAX_LEN;
	h = eh_new(MR_ROLE_CLIENT, &cfg);
	s = eh_open(h);
	assert_int_equal(eh_write(s, "", 0, 1), 0);
	eh_flush(h);
	for (int i = 0; i < 3; i++)
		eh_bytes_wndinc(&b, 3, 0x7FFFFFFF);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	/* Either the engine treats the overflow as the peer's flow-control
	 * error (RST FlowControlError, the stream ends) or the window
	 * saturates and a 1 MiB write goes out whole. What must not happen
	 * is a window wrapped to a small value and a write that stalls. */
	if (eh_count(h, MR_EV_STREAM_CLOSED, 3) == 1) {
		assert_int_equal(eh_closed_code(h, 3), MUXRING_FLOW_CONTROL_ERROR);
		eh_tx_frames(h, &f);
		assert_non_null(eh_frames_find(&f, MR_FRAME_RST, 3, 0));
		eh_frames_free(&f);
		assert_int_equal(eh_write(s, big, 1u << 20, 2),
				 MUXRING_ERR(MUXRING_FLOW_CONTROL_ERROR));
		assert_false(mr_session_ended(h->sess));
	} else {
		eh_tx_clear(h);
		assert_int_equal(eh_write(s, big, 1u << 20, 2), 0);
		eh_tx_frames(h, &f);
		for (size_t i = 0; i < f.n; i++)
			if (f.v[i].hdr.type == MR_FRAME_DATA)
				sent += f.v[i].hdr.length;
		eh_frames_free(&f);
		assert_int_equal(sent, 1u << 20);
		assert_int_equal(eh_write_result(h, 2), 1 << 20);
	}
	eh_bytes_free(&b);
	free(big);
	eh_free(h);
}

/* ---- random input ---------------------------------------------------------- */

/* A random frame, mostly well-formed, sometimes not. */
static void random_frame(struct eh_bytes *b)
{
	static const uint32_t lens[] = {0, 1, 3, 4, 5, 7, 8, 9, 12, 100, 3000};
	uint8_t type = (uint8_t)(rnd_below(10) < 8 ? rnd_below(4) : rnd_below(16));
	uint8_t flags = (uint8_t)(rnd_below(3) ? rnd_below(4) : rnd_below(16));
	uint32_t id = (uint32_t)(rnd_below(8) ? rnd_below(12)
					     : (uint32_t)rnd() & 0xFFFFFFFFu);
	uint32_t len;
	uint8_t body[3000];

	if (type == MR_FRAME_RST || type == MR_FRAME_WNDINC)
		len = rnd_below(8) ? 4 : lens[rnd_below(11)];
	else if (type == MR_FRAME_GOAWAY)
		len = rnd_below(8) ? 8 + (uint32_t)rnd_below(20) : lens[rnd_below(11)];
	else
		len = lens[rnd_below(11)];
	if (type == MR_FRAME_GOAWAY && rnd_below(4))
		id = 0;
	for (uint32_t i = 0; i < len; i++)
		body[i] = (uint8_t)(i < 4 && rnd_below(2) ? 0 : rnd());
	eh_bytes_header(b, len, type, flags, id);
	eh_bytes_put(b, body, len);
}

static void check_after_random_input(struct eh *h, int rc)
{
	struct eh_frames f;

	/* Whatever happened, the output is whole, valid frames. */
	eh_tx_frames(h, &f);
	for (size_t i = 0; i < f.n; i++) {
		assert_int_equal(mr_frame_header_check(&f.v[i].hdr), 0);
		if (f.v[i].hdr.type == MR_FRAME_DATA)
			assert_int_not_equal(f.v[i].hdr.flags & 3, 3);
	}
	if (mr_session_ended(h->sess)) {
		int err = mr_session_result(h->sess)->local_error;

		eh_assert_ended(h);
		assert_true(muxring_is_code(err));
		assert_true(rc == 0 || rc == err);
		if (f.n)
			assert_int_equal(f.v[f.n - 1].hdr.type, MR_FRAME_GOAWAY);
	} else {
		assert_int_equal(rc, 0);
	}
	eh_assert_stream_events_well_formed(h);
	eh_frames_free(&f);
}

static void test_random_garbage_and_frame_soup_never_break_the_engine(void **state)
{
	uint64_t seed = seed_from_env();

	(void)state;
	rng_state = seed;
	printf("random input seed: MUXRING_SEED=%#llx\n",
	       (unsigned long long)seed);
	size_t ended = 0, events = 0, frames_out = 0;

	for (int round = 0; round < 6000; round++) {
		struct eh *h = eh_new(round % 2 ? MR_ROLE_CLIENT : MR_ROLE_SERVER,
				      NULL);
		struct eh_bytes b = {0};
		int rc;

		h->auto_accept = rnd_below(2);
		if (rnd_below(2))
			eh_write(eh_open(h), S("mine"), 1);
		if (round % 3 == 0) {
			size_t n = rnd_below(2000);

			for (size_t i = 0; i < n; i++) {
				uint8_t byte = (uint8_t)rnd();

				eh_bytes_put(&b, &byte, 1);
			}
		} else {
			size_t n = 1 + rnd_below(40);

			for (size_t i = 0; i < n; i++)
				random_frame(&b);
		}
		rc = eh_feed_bytes(h, &b, rnd_below(2) ? 1 + rnd_below(17) : 0);
		if (rnd_below(2))
			eh_release(h, EH_ANY, SIZE_MAX);
		check_after_random_input(h, rc);
		ended += mr_session_ended(h->sess);
		events += h->nev;
		frames_out += h->tx_len / 8;
		eh_bytes_free(&b);
		eh_free(h);
	}
	/* The soup must reach past the first frame often enough to mean
	 * something: many sessions survive, and events happen. */
	printf("random input: %zu of 6000 sessions ended, %zu events, ~%zu "
	       "frames out\n", ended, events, frames_out);
	assert_true(ended > 400 && ended < 5600);
	assert_true(events > 12000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_data_flood_whose_rsts_are_never_read_ends_with_enhance_your_calm),
		cmocka_unit_test(test_the_default_control_backlog_bounds_a_flood_at_1_mib),
		cmocka_unit_test(test_a_peer_that_reads_our_rsts_within_its_budget_is_never_cut_off),
		cmocka_unit_test(test_a_syn_flood_beyond_max_streams_is_refused_with_stream_refused),
		cmocka_unit_test(test_a_huge_data_frame_for_an_unknown_stream_split_into_4k_chunks_is_dropped),
		cmocka_unit_test(test_a_huge_data_frame_beyond_the_window_is_reset_from_its_header),
		cmocka_unit_test(test_a_goaway_with_16_mib_of_debug_keeps_1_mib_and_stays_in_sync),
		cmocka_unit_test(test_the_largest_unknown_frame_is_skipped_in_chunks),
		cmocka_unit_test(test_wndincs_adding_up_past_2_pow_32_never_wrap_the_window_small),
		cmocka_unit_test(test_random_garbage_and_frame_soup_never_break_the_engine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
