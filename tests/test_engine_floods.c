/*
 * test_engine_floods.c - every flood budget, from both sides of its line.
 *
 * For each kind of frame that carries no application data (WNDINC with
 * tiny increments, RST, GOAWAY, unknown types, empty DATA, DATA on closed
 * streams, streams opened and reset at once) a peer floods at a rate above
 * the default budget, and the session must end with GOAWAY EnhanceYourCalm
 * on the wire, the same code and a reason naming the flood as its result,
 * and the memory the peer can make it hold (bytes queued to send, live
 * streams) bounded at every step. Then a well-behaved peer sends the same
 * kind of frame at the same or a similar rate as legitimate heavy traffic
 * does (a reader that credits every 4 bytes, a client whose fire-and-forget
 * requests get answered with RSTs, one that cancels half its requests, data
 * in flight on streams we reset, which also draw one RST per stream, not
 * one per frame) and must never be cut off.
 *
 * Time is the engine's argument: the tests move a clock of their own with
 * mr_session_set_now(), so every rate here is exact and no test depends on
 * the speed of the machine. The clock itself: a budget refills in proportion
 * to the time that passed, never beyond one second's worth, and not at all
 * while the clock stands still or goes back.
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

#define SEC 1000000000ull
/* The clock starts away from 0, as a monotonic clock does. */
#define T0 (100 * SEC)

/* One session under a peer of the test's making, and the most memory the
 * peer made it hold. */
struct run {
	struct eh *h;
	uint64_t now;
	size_t max_queued;  /* bytes waiting to be sent, at the worst */
	uint32_t max_streams; /* live streams, at the worst */
	size_t closed_rsts_read; /* RST StreamClosed frames the peer read */
};

static void run_init(struct run *r, enum mr_role role,
		     const struct mr_config *cfg)
{
	*r = (struct run){.h = eh_new(role, cfg), .now = T0};
	mr_session_set_now(r->h->sess, r->now);
}

static void set_time(struct run *r, uint64_t now)
{
	r->now = now;
	mr_session_set_now(r->h->sess, now);
}

/* Records what the session holds now (control bytes not yet committed and
 * the committed ring not yet sent; live streams). */
static void observe(struct run *r)
{
	const struct mr_session *sess = r->h->sess;
	size_t queued = sess->ctrl_len + sess->ring_bytes;

	if (queued > r->max_queued)
		r->max_queued = queued;
	if (sess->streams.count > r->max_streams)
		r->max_streams = sess->streams.count;
}

static int feed(struct run *r, struct eh_bytes *b)
{
	int rc = eh_feed_bytes(r->h, b, 0);

	b->len = 0;
	observe(r);
	return rc;
}

/* The peer reads what the session sent (and the test forgets it but for
 * the count of RST StreamClosed). */
static void peer_reads(struct run *r)
{
	struct eh_frames f;

	eh_tx_frames(r->h, &f);
	for (size_t i = 0; i < f.n; i++)
		r->closed_rsts_read += f.v[i].hdr.type == MR_FRAME_RST &&
				       mr_get_be32(f.v[i].body) ==
					       MUXRING_STREAM_CLOSED;
	eh_frames_free(&f);
	eh_tx_clear(r->h);
}

typedef void (*frame_fn)(struct eh_bytes *b, size_t i);

/*
 * Feeds `count` frames made by fn, frame i at i / per_sec seconds after
 * the current time; the peer reads our replies after every `read_every`
 * frames (0: never). Stops once the session ended. Returns the frames fed.
 */
static size_t flood(struct run *r, frame_fn fn, size_t count, uint32_t per_sec,
		    size_t read_every)
{
	struct eh_bytes b = {0};
	uint64_t start = r->now;
	size_t i;

	for (i = 0; i < count && !mr_session_ended(r->h->sess); i++) {
		set_time(r, start + (uint64_t)i * SEC / per_sec);
		fn(&b, i);
		feed(r, &b);
		if (read_every && (i + 1) % read_every == 0 &&
		    !mr_session_ended(r->h->sess))
			peer_reads(r);
	}
	eh_bytes_free(&b);
	return i;
}

/*
 * The session ended over a flood: EnhanceYourCalm returned and kept as the
 * result, the reason starts with `reason`, and the last frame on the wire
 * is GOAWAY EnhanceYourCalm whose debug text is that reason. The bytes it
 * ever queued stayed within `max_queued`.
 */
static void assert_calmed(struct run *r, const char *reason, size_t max_queued)
{
	const struct mr_session_result *res = mr_session_result(r->h->sess);
	struct eh_frames f;
	const struct eh_frame *last;

	assert_int_equal(r->h->recv_rc, MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM));
	eh_assert_ended(r->h);
	eh_assert_stream_events_well_formed(r->h);
	assert_int_equal(res->local_error,
			 MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM));
	assert_non_null(res->local_reason);
	if (strncmp(res->local_reason, reason, strlen(reason)))
		fail_msg("reason \"%s\", expected \"%s...\"", res->local_reason,
			 reason);
	eh_tx_frames(r->h, &f);
	assert_true(f.n > 0);
	last = &f.v[f.n - 1];
	assert_int_equal(last->hdr.type, MR_FRAME_GOAWAY);
	assert_int_equal(mr_get_be32(last->body + 4), MUXRING_ENHANCE_YOUR_CALM);
	assert_int_equal(last->hdr.length - 8, strlen(res->local_reason));
	assert_memory_equal(last->body + 8, res->local_reason,
			    strlen(res->local_reason));
	eh_frames_free(&f);
	if (r->max_queued > max_queued)
		fail_msg("queued %zu bytes during the flood, bound %zu",
			 r->max_queued, max_queued);
}

static void assert_alive(struct run *r)
{
	assert_int_equal(r->h->recv_rc, 0);
	assert_false(mr_session_ended(r->h->sess));
	eh_assert_stream_events_well_formed(r->h);
}

/* Frames a default budget of `rate` per second lets through when they come
 * at `flood_rate`: the burst, plus what the clock refills meanwhile (and a
 * few earned ones). */
static void assert_cut_after(size_t fed, uint32_t rate, uint32_t flood_rate)
{
	size_t expected = (size_t)rate * flood_rate / (flood_rate - rate);

	printf("%u/s against a budget of %u/s: cut off after %zu frames\n",
	       flood_rate, rate, fed);
	if (fed < expected - 2 || fed > expected + 8)
		fail_msg("cut off after %zu frames, expected about %zu", fed,
			 expected);
}

/* The peer (a client) opens stream `id` with one byte. */
static void open_peer_stream(struct run *r, uint32_t id)
{
	struct eh_bytes b = {0};

	eh_bytes_data(&b, id, MR_FLAG_SYN, "x", 1);
	assert_int_equal(feed(r, &b), 0);
	eh_bytes_free(&b);
}

/* A live stream by id, straight from the session's map: the harness's
 * queries walk every event kept, which thousands of streams make slow. */
static struct mr_stream *live_stream(struct run *r, uint32_t id)
{
	struct mr_stream *s = mr_stream_map_get(&r->h->sess->streams, id);

	assert_non_null(s);
	return s;
}

/* STREAM_CLOSED events with `code`, in one pass. */
static size_t closed_with(const struct eh *h, uint32_t code)
{
	size_t n = 0;

	for (size_t i = 0; i < h->nev; i++)
		n += h->ev[i].ev.type == MR_EV_STREAM_CLOSED &&
		     h->ev[i].ev.code == code;
	return n;
}

/* ---- WNDINC ----------------------------------------------------------- */

static void tiny_wndinc(struct eh_bytes *b, size_t i)
{
	(void)i;
	eh_bytes_wndinc(b, 3, 1);
}

static void test_a_flood_of_tiny_wndincs_on_an_idle_stream_is_cut_off(void **state)
{
	struct run r;
	size_t fed;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	open_peer_stream(&r, 3);
	fed = flood(&r, tiny_wndinc, 100000, 4096, 0);
	assert_calmed(&r, "WNDINC flood", MR_GOAWAY_HEAD_LEN + 128);
	/* 1000/s plus one earned by the stream. */
	assert_cut_after(fed, 1000, 4096);
	assert_int_equal(eh_closed_code(r.h, 3), MUXRING_ENHANCE_YOUR_CALM);
	eh_free(r.h);
}

static void test_wndincs_crediting_every_4_bytes_we_send_are_never_a_flood(void **state)
{
	static uint8_t chunk[4096];
	struct run r;
	struct mr_stream *s;
	size_t credits = 0;
	uint64_t written = 0;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	open_peer_stream(&r, 3);
	s = eh_accepted(r.h, 3);
	assert_non_null(s);
	/* Ten seconds of a reader that credits each 4 bytes on its own (Go
	 * reading a stream with binary.Read of 32-bit words), 4,096 WNDINCs
	 * a second: four times the base rate. */
	for (int second = 0; second < 10; second++) {
		struct eh_frames f;
		struct eh_bytes b = {0};
		size_t k = 0, per_second = 0;

		for (int w = 0; w < 4; w++)
			assert_int_equal(eh_write(s, chunk, sizeof(chunk),
						  written++), 0);
		eh_tx_frames(r.h, &f);
		for (size_t i = 0; i < f.n; i++)
			if (f.v[i].hdr.type == MR_FRAME_DATA)
				per_second += f.v[i].hdr.length / 4;
		for (size_t i = 0; i < f.n; i++) {
			if (f.v[i].hdr.type != MR_FRAME_DATA)
				continue;
			for (uint32_t n = 0; n < f.v[i].hdr.length / 4; n++) {
				set_time(&r, T0 + (uint64_t)second * SEC +
						     (uint64_t)k++ * SEC /
							     per_second);
				eh_bytes_wndinc(&b, 3, 4);
				assert_int_equal(feed(&r, &b), 0);
				credits++;
			}
		}
		eh_frames_free(&f);
		eh_tx_clear(r.h);
		eh_bytes_free(&b);
	}
	assert_int_equal(credits, 10 * 4 * sizeof(chunk) / 4);
	assert_alive(&r);
	for (uint64_t w = 0; w < written; w++)
		assert_int_equal(eh_write_result(r.h, w), sizeof(chunk));
	/* Every byte credited back: the window is whole again. */
	assert_int_equal(s->send_window, MR_INITIAL_WINDOW);
	eh_free(r.h);
}

/* ---- RST -------------------------------------------------------------- */

static void rst_for_nothing(struct eh_bytes *b, size_t i)
{
	eh_bytes_rst(b, 1001 + 2 * (uint32_t)i, MUXRING_STREAM_CANCELLED);
}

static void test_an_rst_flood_is_cut_off(void **state)
{
	struct run r;
	size_t fed;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	fed = flood(&r, rst_for_nothing, 100000, 4096, 0);
	assert_calmed(&r, "RST flood", MR_GOAWAY_HEAD_LEN + 128);
	assert_cut_after(fed, 1000, 4096);
	assert_int_equal(r.max_streams, 0);
	eh_free(r.h);
}

static void test_rsts_answering_each_frame_we_send_to_closed_streams_are_never_a_flood(void **state)
{
	static const uint8_t reply[64];
	struct run r;
	struct eh_bytes b = {0};
	uint64_t ud = 0;
	size_t rsts = 0;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	/* Go's fire-and-forget client: it opens a stream, sends its request
	 * and closes; every DATA frame of our answer then reaches a closed
	 * stream and gets its own RST. 1,024 requests a second, each
	 * answered with 4 frames: 4,096 RSTs a second for 5 seconds. */
	for (uint32_t n = 0; n < 5 * 1024; n++) {
		uint32_t id = 3 + 2 * n;
		struct mr_stream *s;
		struct eh_frames f;

		set_time(&r, T0 + (uint64_t)n * SEC / 1024);
		eh_bytes_data(&b, id, MR_FLAG_SYN, "request", 7);
		eh_bytes_data(&b, id, MR_FLAG_FIN, NULL, 0);
		assert_int_equal(feed(&r, &b), 0);
		s = live_stream(&r, id);
		for (int w = 0; w < 4; w++) {
			assert_int_equal(eh_write(s, reply, sizeof(reply), ud++),
					 0);
			eh_flush(r.h);
		}
		eh_tx_frames(r.h, &f);
		for (size_t i = 0; i < f.n; i++) {
			if (f.v[i].hdr.type != MR_FRAME_DATA)
				continue;
			eh_bytes_rst(&b, f.v[i].hdr.stream_id,
				     MUXRING_STREAM_CLOSED);
			assert_int_equal(feed(&r, &b), 0);
			rsts++;
		}
		eh_frames_free(&f);
		eh_tx_clear(r.h);
		assert_null(mr_stream_map_get(&r.h->sess->streams, id));
	}
	assert_int_equal(rsts, 4 * 5 * 1024);
	assert_int_equal(closed_with(r.h, MUXRING_STREAM_CLOSED), 5 * 1024);
	assert_alive(&r);
	assert_true(r.max_streams <= 1);
	eh_bytes_free(&b);
	eh_free(r.h);
}

/* ---- GOAWAY ----------------------------------------------------------- */

static void goaway_again(struct eh_bytes *b, size_t i)
{
	static const uint8_t sync_frame[8] = {0, 0, 0, 0xF0};

	(void)i;
	eh_bytes_goaway(b, 0, MUXRING_NO_ERROR, "draining", 8);
	eh_bytes_put(b, sync_frame, sizeof(sync_frame));
}

static void test_a_goaway_flood_is_cut_off_after_max_goaways(void **state)
{
	struct run r;
	size_t fed;

	(void)state;
	run_init(&r, MR_ROLE_CLIENT, NULL);
	eh_write(eh_open(r.h), "x", 1, 1);
	peer_reads(&r);
	/* All within a millisecond: a count per session, not a rate. */
	fed = flood(&r, goaway_again, 1000, 1000000, 0);
	assert_calmed(&r, "GOAWAY flood", MR_GOAWAY_HEAD_LEN + 128);
	assert_int_equal(fed, 9);
	assert_int_equal(eh_count(r.h, MR_EV_GOAWAY, EH_ANY), 8);
	assert_int_equal(eh_closed_code(r.h, 3), MUXRING_REMOTE_GONE_AWAY);
	eh_free(r.h);
}

static void test_a_peer_that_drains_then_closes_with_two_goaways_is_not_cut_off(void **state)
{
	struct run r;
	struct eh_bytes b = {0};
	struct mr_stream *s;

	(void)state;
	run_init(&r, MR_ROLE_CLIENT, NULL);
	s = eh_open(r.h);
	eh_write(s, "x", 1, 1);
	peer_reads(&r);
	/* The graceful GOAWAY keeps stream 3 going ... */
	eh_bytes_goaway(&b, 3, MUXRING_NO_ERROR, "draining", 8);
	eh_bytes_header(&b, 0, 0xF, 0, 0);
	eh_bytes_data(&b, 3, 0, "still here", 10);
	assert_int_equal(feed(&r, &b), 0);
	eh_assert_data(r.h, 3, "still here", 10);
	/* ... and the closing one says it is over. */
	eh_bytes_goaway(&b, 3, MUXRING_NO_ERROR, "no error", 8);
	assert_int_equal(feed(&r, &b), 0);
	assert_int_equal(eh_count(r.h, MR_EV_GOAWAY, EH_ANY), 2);
	assert_alive(&r);
	assert_null(mr_session_result(r.h->sess)->local_reason);
	eh_bytes_free(&b);
	eh_free(r.h);
}

/* ---- unknown frame types ---------------------------------------------- */

static void unknown_frame(struct eh_bytes *b, size_t i)
{
	eh_bytes_header(b, 0, (uint8_t)(4 + i % 12), 0, (uint32_t)i);
}

static void test_a_flood_of_unknown_frames_is_cut_off(void **state)
{
	struct run r;
	size_t fed;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	fed = flood(&r, unknown_frame, 100000, 1000, 0);
	assert_calmed(&r, "flood of unknown frame types",
		      MR_GOAWAY_HEAD_LEN + 128);
	assert_cut_after(fed, 100, 1000);
	eh_free(r.h);
}

static void test_unknown_frames_below_their_budget_are_skipped_for_ever(void **state)
{
	struct run r;
	size_t fed;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	open_peer_stream(&r, 3);
	fed = flood(&r, unknown_frame, 90 * 60, 90, 0); /* a minute */
	assert_int_equal(fed, 90 * 60);
	assert_alive(&r);
	eh_free(r.h);
}

/* ---- empty DATA ------------------------------------------------------- */

static void empty_data(struct eh_bytes *b, size_t i)
{
	/* Flags 0x4 and 0x8 mean nothing in DATA. */
	eh_bytes_header(b, 0, MR_FRAME_DATA, (uint8_t)(i % 2 ? 0xC : 0), 3);
}

static void test_a_flood_of_empty_data_frames_is_cut_off(void **state)
{
	struct run r;
	size_t fed;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	open_peer_stream(&r, 3);
	fed = flood(&r, empty_data, 100000, 1000, 0);
	assert_calmed(&r, "empty DATA flood", MR_GOAWAY_HEAD_LEN + 128);
	/* 100/s plus one earned by the stream. */
	assert_cut_after(fed, 100, 1000);
	eh_free(r.h);
}

static void test_a_flood_of_fins_for_streams_that_are_gone_is_cut_off(void **state)
{
	struct run r;
	struct eh_bytes b = {0};
	size_t fed = 0;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	while (!mr_session_ended(r.h->sess) && fed < 100000) {
		set_time(&r, T0 + (uint64_t)fed * SEC / 1000);
		eh_bytes_data(&b, 1001 + 2 * (uint32_t)fed++, MR_FLAG_FIN,
			      NULL, 0);
		feed(&r, &b);
	}
	assert_calmed(&r, "empty DATA flood", MR_GOAWAY_HEAD_LEN + 128);
	assert_cut_after(fed, 100, 1000);
	eh_bytes_free(&b);
	eh_free(r.h);
}

static void test_a_fin_for_every_stream_we_reset_is_never_a_flood(void **state)
{
	struct run r;
	struct eh_bytes b = {0};

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	/* 2,000 streams a second, each reset by our application at once;
	 * the Go peer closes each after our RST, with an empty FIN: twenty
	 * times the base rate of empty frames, for 5 seconds. */
	for (uint32_t n = 0; n < 10000; n++) {
		uint32_t id = 3 + 2 * n;

		set_time(&r, T0 + (uint64_t)n * SEC / 2000);
		open_peer_stream(&r, id);
		assert_int_equal(mr_stream_reset(live_stream(&r, id),
						 MUXRING_STREAM_CANCELLED), 0);
		peer_reads(&r);
		eh_bytes_data(&b, id, MR_FLAG_FIN, NULL, 0);
		assert_int_equal(feed(&r, &b), 0);
	}
	assert_alive(&r);
	assert_true(r.max_streams <= 1);
	eh_bytes_free(&b);
	eh_free(r.h);
}

/* Found by fuzz_link: a client whose idle streams (never written to) close
 * after our GOAWAY sends each one's SYN, refused, and then its FIN: an
 * empty frame for a stream we never took, once per refused stream. */
static void test_fins_of_streams_refused_after_our_goaway_are_never_a_flood(void **state)
{
	struct run r;
	struct eh_bytes b = {0};

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	assert_int_equal(mr_session_goaway(r.h->sess, MUXRING_NO_ERROR, NULL, 0),
			 0);
	peer_reads(&r);
	/* 1,000 streams, all at one instant: ten times the empty frames the
	 * base rate allows in a second. */
	for (uint32_t n = 0; n < 1000; n++) {
		eh_bytes_data(&b, 3 + 2 * n, MR_FLAG_SYN, NULL, 0);
		eh_bytes_data(&b, 3 + 2 * n, MR_FLAG_FIN, NULL, 0);
		assert_int_equal(feed(&r, &b), 0);
		peer_reads(&r);
	}
	assert_alive(&r);
	assert_int_equal(r.max_streams, 0);
	eh_bytes_free(&b);
	eh_free(r.h);
}

/* ---- DATA on closed streams ------------------------------------------- */

static void data_on_gone_streams(struct eh_bytes *b, size_t i)
{
	eh_bytes_data(b, 1001 + 2 * (uint32_t)i, 0, "z", 1);
}

/* Stream 3, opened by the peer and reset by our application. */
static void reset_peer_stream_3(struct run *r)
{
	open_peer_stream(r, 3);
	assert_int_equal(mr_stream_reset(live_stream(r, 3),
					 MUXRING_STREAM_CANCELLED), 0);
	peer_reads(r);
}

static void test_a_flood_of_data_on_closed_streams_is_cut_off_even_when_the_peer_reads(void **state)
{
	struct run r;
	size_t fed;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	reset_peer_stream_3(&r);
	/* Each frame for another gone stream: each gets its RST, read. */
	fed = flood(&r, data_on_gone_streams, 1000000, 40000, 100);
	assert_calmed(&r, "flood of DATA on closed streams",
		      100 * MR_CONTROL_FRAME_LEN + MR_GOAWAY_HEAD_LEN + 128);
	assert_true(r.closed_rsts_read >= fed - 100);
	/* 10,000/s plus one earned by the stream. */
	assert_cut_after(fed, 10000, 40000);
	eh_free(r.h);
}

static void test_replies_the_peer_never_reads_are_capped_in_bytes(void **state)
{
	struct mr_config cfg;
	struct run r;
	size_t fed;

	(void)state;
	mr_config_default(&cfg);
	cfg.max_control_backlog = 4096;
	run_init(&r, MR_ROLE_SERVER, &cfg);
	/* Each frame for another gone stream, so each wants its own RST. */
	fed = flood(&r, data_on_gone_streams, 1000000, 1000, 0);
	assert_calmed(&r, "unread replies",
		      4096 + MR_GOAWAY_HEAD_LEN + 128);
	/* Every RST that fitted, then the one that did not. */
	assert_int_equal(fed, 4096 / MR_CONTROL_FRAME_LEN + 1);
	eh_free(r.h);
}

static void test_data_in_flight_on_streams_we_reset_is_never_a_flood(void **state)
{
	struct run r;
	struct eh_bytes b = {0};
	uint8_t message[64];
	size_t frames = 0;

	(void)state;
	memset(message, 'm', sizeof(message));
	run_init(&r, MR_ROLE_SERVER, NULL);
	/* Two streams a second are reset in the middle of an upload of
	 * 64-byte messages with a whole window (4,096 frames) in flight:
	 * 8,192 DATA frames a second reach closed streams, for 5 seconds,
	 * and the peer reads our RSTs as it goes. */
	for (uint32_t n = 0; n < 10; n++) {
		uint32_t id = 3 + 2 * n;
		uint64_t start = T0 + (uint64_t)n * SEC / 2;

		set_time(&r, start);
		open_peer_stream(&r, id);
		assert_int_equal(mr_stream_reset(live_stream(&r, id),
						 MUXRING_STREAM_CANCELLED), 0);
		for (uint32_t k = 0; k < MR_INITIAL_WINDOW / 64; k++) {
			set_time(&r, start + (uint64_t)k * SEC / 8192);
			eh_bytes_data(&b, id, 0, message, sizeof(message));
			assert_int_equal(feed(&r, &b), 0);
			frames++;
			if (k % 64 == 63)
				peer_reads(&r);
		}
	}
	assert_int_equal(frames, 10 * MR_INITIAL_WINDOW / 64);
	assert_alive(&r);
	/* One RST per stream, not one per frame in flight. */
	peer_reads(&r);
	assert_int_equal(r.closed_rsts_read, 10);
	eh_bytes_free(&b);
	eh_free(r.h);
}

/* ---- SYN+RST churn ---------------------------------------------------- */

static void open_and_reset(struct eh_bytes *b, size_t i)
{
	uint32_t id = 3 + 2 * (uint32_t)i;

	eh_bytes_data(b, id, MR_FLAG_SYN, NULL, 0);
	eh_bytes_rst(b, id, MUXRING_STREAM_CANCELLED);
}

static void test_streams_opened_and_reset_as_fast_as_possible_are_cut_off(void **state)
{
	struct run r;
	size_t fed;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	fed = flood(&r, open_and_reset, 1000000, 5000, 0);
	assert_calmed(&r, "stream churn", MR_GOAWAY_HEAD_LEN + 128);
	assert_cut_after(fed, 1000, 5000);
	/* Each stream was gone before the next one came. */
	assert_true(r.max_streams <= 1);
	eh_free(r.h);
}

static void test_a_busy_client_that_cancels_half_its_requests_is_never_a_flood(void **state)
{
	struct run r;
	struct eh_bytes b = {0};
	static const uint8_t answer[64];

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	/* 5,000 requests a second for 4 seconds; every other one is
	 * cancelled (RST) before we answer, the rest are answered and
	 * closed cleanly: 2,500 resets a second, 2.5 times the base. */
	for (uint32_t n = 0; n < 20000; n++) {
		uint32_t id = 3 + 2 * n;

		set_time(&r, T0 + (uint64_t)n * SEC / 5000);
		eh_bytes_data(&b, id, MR_FLAG_SYN, "request", 7);
		if (n % 2) {
			eh_bytes_rst(&b, id, MUXRING_STREAM_CANCELLED);
			assert_int_equal(feed(&r, &b), 0);
			continue;
		}
		eh_bytes_data(&b, id, MR_FLAG_FIN, NULL, 0);
		assert_int_equal(feed(&r, &b), 0);
		assert_int_equal(eh_write(live_stream(&r, id), answer,
					  sizeof(answer), n), 0);
		assert_int_equal(mr_stream_close_write(live_stream(&r, id)), 0);
		peer_reads(&r);
		assert_null(mr_stream_map_get(&r.h->sess->streams, id));
	}
	assert_int_equal(closed_with(r.h, MUXRING_NO_ERROR), 10000);
	assert_int_equal(closed_with(r.h, MUXRING_STREAM_CANCELLED), 10000);
	assert_alive(&r);
	assert_true(r.max_streams <= 1);
	eh_bytes_free(&b);
	eh_free(r.h);
}

/* ---- the clock --------------------------------------------------------- */

/* Feeds unknown frames at the current time until the session ends or
 * `max` went through; returns how many went through. */
static size_t unknown_frames_through(struct run *r, size_t max)
{
	struct eh_bytes b = {0};
	size_t n = 0;

	while (n < max) {
		unknown_frame(&b, n);
		if (feed(r, &b))
			break;
		n++;
	}
	eh_bytes_free(&b);
	return n;
}

static void test_the_clock_refills_a_budget_and_only_when_it_moves_forward(void **state)
{
	struct run r;

	(void)state;
	run_init(&r, MR_ROLE_SERVER, NULL);
	set_time(&r, T0 + 10 * SEC);
	/* The burst: one second's worth, while the clock stands still. */
	assert_int_equal(unknown_frames_through(&r, 1000), 100);
	assert_calmed(&r, "flood of unknown frame types",
		      MR_GOAWAY_HEAD_LEN + 128);
	eh_free(r.h);

	run_init(&r, MR_ROLE_SERVER, NULL);
	set_time(&r, T0 + 10 * SEC);
	assert_int_equal(unknown_frames_through(&r, 100), 100);
	/* Back in time: nothing comes back. */
	set_time(&r, T0 + 5 * SEC);
	assert_int_equal(unknown_frames_through(&r, 1), 0);
	assert_calmed(&r, "flood of unknown frame types",
		      MR_GOAWAY_HEAD_LEN + 128);
	eh_free(r.h);

	run_init(&r, MR_ROLE_SERVER, NULL);
	set_time(&r, T0 + 10 * SEC);
	assert_int_equal(unknown_frames_through(&r, 100), 100);
	/* Half a second later, half a second's worth. */
	set_time(&r, T0 + 10 * SEC + SEC / 2);
	assert_int_equal(unknown_frames_through(&r, 1000), 50);
	assert_calmed(&r, "flood of unknown frame types",
		      MR_GOAWAY_HEAD_LEN + 128);
	eh_free(r.h);
}

/* ---- the budgets are options ------------------------------------------ */

static void test_a_budget_raised_in_the_config_lets_the_same_flood_through(void **state)
{
	struct mr_config cfg;
	struct run r;
	size_t fed;

	(void)state;
	mr_config_default(&cfg);
	cfg.flood.rst_per_sec = 5000;
	run_init(&r, MR_ROLE_SERVER, &cfg);
	fed = flood(&r, rst_for_nothing, 4096 * 10, 4096, 0);
	assert_int_equal(fed, 4096 * 10);
	assert_alive(&r);
	eh_free(r.h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_flood_of_tiny_wndincs_on_an_idle_stream_is_cut_off),
		cmocka_unit_test(test_wndincs_crediting_every_4_bytes_we_send_are_never_a_flood),
		cmocka_unit_test(test_an_rst_flood_is_cut_off),
		cmocka_unit_test(test_rsts_answering_each_frame_we_send_to_closed_streams_are_never_a_flood),
		cmocka_unit_test(test_a_goaway_flood_is_cut_off_after_max_goaways),
		cmocka_unit_test(test_a_peer_that_drains_then_closes_with_two_goaways_is_not_cut_off),
		cmocka_unit_test(test_a_flood_of_unknown_frames_is_cut_off),
		cmocka_unit_test(test_unknown_frames_below_their_budget_are_skipped_for_ever),
		cmocka_unit_test(test_a_flood_of_empty_data_frames_is_cut_off),
		cmocka_unit_test(test_a_flood_of_fins_for_streams_that_are_gone_is_cut_off),
		cmocka_unit_test(test_a_fin_for_every_stream_we_reset_is_never_a_flood),
		cmocka_unit_test(test_fins_of_streams_refused_after_our_goaway_are_never_a_flood),
		cmocka_unit_test(test_a_flood_of_data_on_closed_streams_is_cut_off_even_when_the_peer_reads),
		cmocka_unit_test(test_replies_the_peer_never_reads_are_capped_in_bytes),
		cmocka_unit_test(test_data_in_flight_on_streams_we_reset_is_never_a_flood),
		cmocka_unit_test(test_streams_opened_and_reset_as_fast_as_possible_are_cut_off),
		cmocka_unit_test(test_a_busy_client_that_cancels_half_its_requests_is_never_a_flood),
		cmocka_unit_test(test_the_clock_refills_a_budget_and_only_when_it_moves_forward),
		cmocka_unit_test(test_a_budget_raised_in_the_config_lets_the_same_flood_through),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
