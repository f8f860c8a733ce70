/*
 * test_heartbeat.c - the heartbeat at the engine level (src/engine/heartbeat.c).
 *
 * The heartbeat is a typed stream of type 0xFFFFFFFF: the requester writes a
 * random 32-bit value every interval and times its echo; the responder
 * echoes every 4 bytes and never shows the stream to the application
 * (PROTOCOL.md, "Extensions carried inside streams"; tests/vectors/
 * heartbeat.txt). Time is a fake clock handed to the engines through
 * mr_session_set_now / mr_session_expire, so every figure below is exact:
 * these are correctness tests, not timing tests.
 *
 * Covered:
 *   - the Go requester's bytes (heartbeat.client.hex) into our typed server:
 *     every value echoed on the same stream, frames equal to the Go
 *     responder's (WNDINC aside), nothing shown to the application;
 *   - the Go responder's frames (heartbeat.server.hex, its echo payloads
 *     replaced by our own values, which are random too) into our requester:
 *     its frames match the Go requester's and each echo reports the RTT;
 *   - two engines wired in memory: RTT equals the simulated delay, also
 *     with several beats in flight; heartbeats both ways at once;
 *   - failure detection: exactly one MR_EV_HEARTBEAT_FAILED per
 *     interval + tolerance of silence when the peer's output is lost, when
 *     only its echoes are lost, and when the peer does not echo at all
 *     (untyped); recovery once echoes come back;
 *   - the values of one payload echoed in one frame, not one per value;
 *   - a peer that never grants window for the echoes cannot make the
 *     responder accept more than a window of values it cannot echo;
 *   - interval and tolerance changed on a running heartbeat; the on-demand
 *     beat; the error returns of start/configure/beat;
 *   - load: 8 streams moving several MiB both ways through a link of fixed
 *     bandwidth per clock tick raise no failure, and a beat queued behind
 *     megabytes of bulk data leaves in the very next tx_iov batch.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine_harness.h"
#include "vec_load.h"

#define S(str) (str), (sizeof(str) - 1)

#define US 1000ull
#define MS 1000000ull
#define SEC 1000000000ull

static const size_t chunk_sizes[] = {0, 1, 3, 5, 7};
#define NCHUNKS (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))

/* ---- helpers ------------------------------------------------------------ */

static struct eh *typed_eh(enum mr_role role)
{
	struct mr_config cfg;

	mr_config_default(&cfg);
	cfg.typed = true;
	return eh_new(role, &cfg);
}

/* Fires what is due at `now` and collects the events. */
static void tick(struct eh *h, uint64_t now)
{
	mr_session_expire(h->sess, now);
	eh_poll(h);
}

/* Heartbeat payload bytes (type bytes of a SYN frame left out) on stream
 * `id` in frames [from, to) of bytes. */
static size_t hb_payload(const uint8_t *bytes, size_t len, uint32_t id,
			 uint8_t *out, size_t cap)
{
	struct eh_frames f;
	size_t n = 0;

	eh_frames_parse(bytes, len, &f);
	for (size_t i = 0; i < f.n; i++) {
		const struct eh_frame *fr = &f.v[i];
		size_t skip = fr->hdr.flags & MR_FLAG_SYN ? 4 : 0;

		if (fr->hdr.type != MR_FRAME_DATA || fr->hdr.stream_id != id ||
		    fr->hdr.length < skip)
			continue;
		for (size_t k = skip; k < fr->hdr.length; k++, n++)
			if (out && n < cap)
				out[n] = fr->body[k];
	}
	eh_frames_free(&f);
	return n;
}

/*
 * Moves what `from` emitted since the last move to `to`, which receives it
 * at time `now`. Returns the heartbeat values (4-byte words) that crossed on
 * stream `id` (0: do not count).
 */
static size_t deliver(struct eh *from, struct eh *to, uint64_t now,
		      uint32_t id)
{
	size_t n, words = 0;

	eh_flush(from);
	n = from->tx_len - from->tx_fed;
	if (id && n)
		words = hb_payload(from->tx + from->tx_fed, n, id, NULL, 0) / 4;
	mr_session_set_now(to->sess, now);
	if (n)
		assert_int_equal(eh_feed(to, from->tx + from->tx_fed, n, 0), 0);
	from->tx_len = from->tx_fed = 0;
	return words;
}

/* The transport loses everything `h` emitted since the last move. */
static void swallow(struct eh *h)
{
	eh_flush(h);
	h->tx_len = h->tx_fed = 0;
}

/* Like deliver, but DATA frames of stream `drop` are lost on the way. */
static void deliver_dropping(struct eh *from, struct eh *to, uint64_t now,
			     uint32_t drop)
{
	struct eh_frames f;
	struct eh_bytes kept = {0};

	eh_flush(from);
	if (from->tx_len == from->tx_fed)
		return;
	eh_frames_parse(from->tx + from->tx_fed, from->tx_len - from->tx_fed,
			&f);
	for (size_t i = 0; i < f.n; i++)
		if (f.v[i].hdr.type != MR_FRAME_DATA ||
		    f.v[i].hdr.stream_id != drop)
			eh_bytes_put(&kept, f.v[i].raw,
				     MR_FRAME_HEADER_LEN + f.v[i].hdr.length);
	eh_frames_free(&f);
	from->tx_len = from->tx_fed = 0;
	mr_session_set_now(to->sess, now);
	if (kept.len)
		assert_int_equal(eh_feed_bytes(to, &kept, 0), 0);
	eh_bytes_free(&kept);
}

/* Frames of `type` emitted by h (every stream), as recorded. */
static size_t emitted(struct eh *h, uint8_t type)
{
	struct eh_frames f;
	size_t n;

	eh_frames_parse(h->tx, h->tx_len, &f);
	n = eh_frames_count(&f, type, EH_ANY);
	eh_frames_free(&f);
	return n;
}

/* Events that only an application-visible stream gets. */
static size_t stream_events(const struct eh *h)
{
	return eh_count(h, MR_EV_STREAM_ACCEPTED, EH_ANY) +
	       eh_count(h, MR_EV_DATA, EH_ANY) + eh_count(h, MR_EV_EOF, EH_ANY) +
	       eh_count(h, MR_EV_STREAM_CLOSED, EH_ANY) +
	       eh_count(h, MR_EV_WRITE_DONE, EH_ANY) +
	       eh_count(h, MR_EV_DEADLINE, EH_ANY);
}

static size_t beats_ok(const struct eh *h)
{
	return eh_count(h, MR_EV_HEARTBEAT, EH_ANY);
}

static size_t beats_failed(const struct eh *h)
{
	return eh_count(h, MR_EV_HEARTBEAT_FAILED, EH_ANY);
}

/* The RTT of the nth MR_EV_HEARTBEAT. */
static int64_t rtt(struct eh *h, size_t nth)
{
	struct eh_ev *e = eh_find(h, MR_EV_HEARTBEAT, EH_ANY, nth);

	assert_non_null(e);
	return e->ev.result;
}

/* A typed client/server pair with the client's heartbeat started at t=0
 * and its SYN delivered. */
static void start_pair(struct eh **c, struct eh **s, uint64_t interval,
		       uint64_t tolerance)
{
	*c = typed_eh(MR_ROLE_CLIENT);
	*s = typed_eh(MR_ROLE_SERVER);
	mr_session_set_now((*c)->sess, 0);
	mr_session_set_now((*s)->sess, 0);
	assert_int_equal(mr_session_heartbeat_start((*c)->sess, interval,
						    tolerance, 0x5EED), 0);
	deliver(*c, *s, 0, 0);
	deliver(*s, *c, 0, 0);
}

/* ---- the heartbeat vector --------------------------------------------------- */

static void feed_vec_frame(struct eh *h, const struct vec_side *side, size_t i,
			   size_t chunk)
{
	assert_true(i < side->nframes);
	assert_int_equal(eh_feed(h, side->frames[i].raw, side->frames[i].raw_len,
				 chunk), 0);
}

/* Go requester -> our typed server, one frame at a time as the Go side wrote
 * them: each value comes back at once on stream 3, as Go's responder did. */
static void test_vector_go_requester_into_typed_server(void **state)
{
	struct vec_side go_c, go_s;

	(void)state;
	vec_must_load("heartbeat", "client", &go_c);
	vec_must_load("heartbeat", "server", &go_s);
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh *h = typed_eh(MR_ROLE_SERVER);
		struct eh_frames ours, theirs;

		for (size_t i = 0; i < go_c.nframes; i++) {
			feed_vec_frame(h, &go_c, i, chunk_sizes[c]);
			eh_flush(h);
		}
		eh_frames_parse(h->tx, h->tx_len, &ours);
		eh_frames_parse(go_s.bytes, go_s.len, &theirs);
		eh_frames_drop_type(&ours, MR_FRAME_WNDINC);
		eh_frames_drop_type(&theirs, MR_FRAME_WNDINC);
		assert_int_equal(theirs.n, 3);
		eh_assert_frames_equal(&ours, &theirs, "heartbeat responder");
		eh_frames_free(&ours);
		eh_frames_free(&theirs);

		/* The application heard only of the GOAWAY. */
		assert_int_equal(h->nev, 1);
		assert_int_equal(h->ev[0].ev.type, MR_EV_GOAWAY);
		mr_session_recv_end(h->sess, 0);
		eh_poll(h);
		eh_assert_ended(h);
		assert_int_equal(stream_events(h), 0);
		eh_free(h);
	}
	vec_side_free(&go_c);
	vec_side_free(&go_s);
}

/* The same bytes all at once: the three values come back, in order, on
 * stream 3, with no SYN, FIN or RST. */
static void test_vector_go_requester_all_at_once(void **state)
{
	struct vec_side go_c;

	(void)state;
	vec_must_load("heartbeat", "client", &go_c);
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh *h = typed_eh(MR_ROLE_SERVER);
		struct eh_frames f;
		uint8_t want[12], got[12];

		assert_int_equal(eh_feed(h, go_c.bytes, go_c.len,
					 chunk_sizes[c]), 0);
		eh_tx_frames(h, &f);
		for (size_t i = 0; i < f.n; i++) {
			assert_int_equal(f.v[i].hdr.stream_id, 3);
			if (f.v[i].hdr.type == MR_FRAME_DATA)
				assert_int_equal(f.v[i].hdr.flags, 0);
			else
				assert_int_equal(f.v[i].hdr.type,
						 MR_FRAME_WNDINC);
		}
		eh_frames_free(&f);
		memcpy(want, vec_body(&go_c, 1), 4);
		memcpy(want + 4, vec_body(&go_c, 3), 4);
		memcpy(want + 8, vec_body(&go_c, 5), 4);
		assert_int_equal(hb_payload(h->tx, h->tx_len, 3, got,
					    sizeof(got)), 12);
		assert_memory_equal(got, want, 12);
		assert_int_equal(stream_events(h), 0);
		eh_free(h);
	}
	vec_side_free(&go_c);
}

/*
 * Our requester against the Go responder's frames. The values are random on
 * both sides, so the Go echo payloads are replaced by the values our engine
 * sent; everything else is fed as captured, with the RTTs of the capture
 * (508, 190 and 498 us). Our frames must be Go's, WNDINC aside and with the
 * beat values masked.
 */
static void test_vector_go_responder_into_our_requester(void **state)
{
	static const uint64_t go_rtt[3] = {508 * US, 190 * US, 498 * US};
	static const size_t echo_frame[3] = {2, 4, 6}; /* S3, S5, S7 */
	struct vec_side go_c, go_s;

	(void)state;
	vec_must_load("heartbeat", "client", &go_c);
	vec_must_load("heartbeat", "server", &go_s);
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh *h = typed_eh(MR_ROLE_CLIENT);
		struct eh_frames ours, theirs;
		size_t next = 0;

		mr_session_set_now(h->sess, 0);
		assert_int_equal(mr_session_heartbeat_start(h->sess, 100 * MS,
							    1 * SEC, c + 1), 0);
		/* Go's Start() writes the type at once: C1 alone. */
		eh_flush(h);
		for (size_t k = 0; k < 3; k++) {
			uint64_t t = (k + 1) * 100 * MS;
			size_t before;
			uint8_t value[4];

			before = h->tx_len;
			tick(h, t);
			eh_flush(h);
			assert_int_equal(hb_payload(h->tx + before,
						    h->tx_len - before, 3,
						    value, 4), 4);
			mr_session_set_now(h->sess, t + go_rtt[k]);
			for (; next < echo_frame[k]; next++)
				feed_vec_frame(h, &go_s, next, chunk_sizes[c]);
			{
				struct vec_frame fr = go_s.frames[next++];
				uint8_t echo[12];

				assert_int_equal(fr.raw_len, 12);
				memcpy(echo, fr.raw, 8);
				memcpy(echo + 8, value, 4);
				assert_int_equal(eh_feed(h, echo, 12,
							 chunk_sizes[c]), 0);
			}
			assert_int_equal(beats_ok(h), k + 1);
			assert_int_equal(rtt(h, k), (int64_t)go_rtt[k]);
		}
		assert_int_equal(beats_failed(h), 0);
		assert_int_equal(mr_session_close(h->sess, MUXRING_NO_ERROR,
						  S("no error")), 0);
		eh_tx_frames(h, &ours);
		eh_frames_parse(go_c.bytes, go_c.len, &theirs);
		eh_frames_drop_type(&ours, MR_FRAME_WNDINC);
		eh_frames_drop_type(&theirs, MR_FRAME_WNDINC);
		assert_int_equal(ours.n, theirs.n);
		for (size_t i = 0; i < ours.n; i++) {
			const struct eh_frame *o = &ours.v[i], *g = &theirs.v[i];
			bool beat = g->hdr.type == MR_FRAME_DATA &&
				    !(g->hdr.flags & MR_FLAG_SYN);
			size_t cmp = beat ? MR_FRAME_HEADER_LEN
					  : MR_FRAME_HEADER_LEN + g->hdr.length;

			assert_int_equal(o->hdr.length, g->hdr.length);
			assert_memory_equal(o->raw, g->raw, cmp);
		}
		eh_frames_free(&ours);
		eh_frames_free(&theirs);
		/* Only heartbeat events, then the end. */
		eh_assert_ended(h);
		assert_int_equal(stream_events(h), 0);
		assert_int_equal(h->nev, 3 + 1);
		eh_free(h);
	}
	vec_side_free(&go_c);
	vec_side_free(&go_s);
}

/* An echo of a value we never sent (the capture's own random value) is
 * ignored; the right one still reports. */
static void test_unknown_echo_is_ignored(void **state)
{
	struct vec_side go_s;
	struct eh *h = typed_eh(MR_ROLE_CLIENT);
	uint8_t value[4], echo[12];
	size_t before;

	(void)state;
	vec_must_load("heartbeat", "server", &go_s);
	mr_session_set_now(h->sess, 0);
	assert_int_equal(mr_session_heartbeat_start(h->sess, 100 * MS, SEC, 99),
			 0);
	eh_flush(h);
	before = h->tx_len;
	tick(h, 100 * MS);
	eh_flush(h);
	assert_int_equal(hb_payload(h->tx + before, h->tx_len - before, 3,
				    value, 4), 4);
	assert_memory_not_equal(value, vec_body(&go_s, 2), 4);
	mr_session_set_now(h->sess, 101 * MS);
	feed_vec_frame(h, &go_s, 2, 0);
	assert_int_equal(beats_ok(h), 0);
	assert_int_equal(stream_events(h), 0);
	memcpy(echo, go_s.frames[2].raw, 8);
	memcpy(echo + 8, value, 4);
	mr_session_set_now(h->sess, 102 * MS);
	assert_int_equal(eh_feed(h, echo, sizeof(echo), 0), 0);
	assert_int_equal(beats_ok(h), 1);
	assert_int_equal(rtt(h, 0), (int64_t)(2 * MS));
	eh_free(h);
	vec_side_free(&go_s);
}

/* ---- the responder --------------------------------------------------------- */

/* Type bytes and values cut across frames and one byte per input call: the
 * stream is still recognised, every whole value is echoed exactly once, and
 * a FIN or RST on a heartbeat stream is not shown either. */
static void test_responder_with_values_cut_across_frames(void **state)
{
	(void)state;
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct mr_config cfg;
		struct eh *h;
		struct eh_bytes b = {0};
		uint8_t got[16];

		mr_config_default(&cfg);
		cfg.typed = true;
		cfg.accept_backlog = 1;
		h = eh_new(MR_ROLE_SERVER, &cfg);
		h->auto_accept = false;
		eh_bytes_data(&b, 3, MR_FLAG_SYN, "\xff\xff", 2);
		eh_bytes_data(&b, 3, 0, "\xff", 1);
		eh_bytes_data(&b, 3, 0, "\xff\x01\x02", 3);
		eh_bytes_data(&b, 3, 0, "\x03", 1);
		eh_bytes_data(&b, 3, 0, "\x04\x0a\x0b\x0c\x0d\x0e", 6);
		eh_bytes_data(&b, 3, 0, "\x0f\x10", 2);
		eh_bytes_data(&b, 3, MR_FLAG_FIN, "\x11", 1);
		/* A second heartbeat stream, reset by its opener once its
		 * value was echoed. */
		eh_bytes_data(&b, 5, MR_FLAG_SYN, "\xff\xff\xff\xff\x21\x22\x23\x24",
			      8);
		assert_int_equal(eh_feed_bytes(h, &b, chunk_sizes[c]), 0);
		eh_flush(h);
		eh_bytes_free(&b);
		eh_bytes_rst(&b, 5, MUXRING_STREAM_CANCELLED);
		assert_int_equal(eh_feed_bytes(h, &b, chunk_sizes[c]), 0);
		eh_flush(h);
		/* Nothing answers the RST, and the FIN of stream 3 neither. */
		assert_int_equal(emitted(h, MR_FRAME_RST), 0);
		assert_int_equal(hb_payload(h->tx, h->tx_len, 3, got,
					    sizeof(got)), 12);
		assert_memory_equal(got, "\x01\x02\x03\x04\x0a\x0b\x0c\x0d"
					 "\x0e\x0f\x10\x11", 12);
		assert_int_equal(hb_payload(h->tx, h->tx_len, 5, got,
					    sizeof(got)), 4);
		assert_memory_equal(got, "\x21\x22\x23\x24", 4);
		assert_int_equal(h->nev, 0);
		/* Heartbeat streams take no accept-backlog slot (backlog 1,
		 * nothing accepted yet): an ordinary stream still gets in. */
		eh_bytes_free(&b);
		eh_bytes_data(&b, 7, MR_FLAG_SYN, "\x00\x00\x00\x07" "app", 7);
		assert_int_equal(eh_feed_bytes(h, &b, chunk_sizes[c]), 0);
		assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED, 7), 1);
		assert_int_equal(eh_find(h, MR_EV_STREAM_ACCEPTED, 7, 0)
					 ->ev.stream_type, 7);
		eh_assert_data(h, 7, S("app"));
		for (size_t i = 0; i < h->nev; i++)
			assert_int_equal(h->ev[i].id, 7);
		eh_bytes_free(&b);
		eh_free(h);
	}
}

/*
 * Many values in one DATA frame, the first and the last cut across frames:
 * the echo is the same bytes, in one frame per payload that completes
 * values, not one frame (and one write) per value.
 */
static void test_responder_echoes_a_payload_in_one_frame(void **state)
{
	struct eh *h = typed_eh(MR_ROLE_SERVER);
	struct eh_bytes b = {0};
	struct eh_frames f;
	uint8_t values[4002], got[4002];
	size_t data_frames = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(values); i++)
		values[i] = (uint8_t)(i * 7 + 1);
	eh_bytes_data(&b, 3, MR_FLAG_SYN, "\xff\xff\xff\xff", 4);
	eh_bytes_data(&b, 3, 0, values, 2);
	eh_bytes_data(&b, 3, 0, values + 2, 3998);
	eh_bytes_data(&b, 3, 0, values + 4000, 2);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_flush(h);
	/* 4002 bytes make 1000 values; the last 2 bytes wait for more. */
	assert_int_equal(hb_payload(h->tx, h->tx_len, 3, got, sizeof(got)),
			 4000);
	assert_memory_equal(got, values, 4000);
	eh_frames_parse(h->tx, h->tx_len, &f);
	for (size_t i = 0; i < f.n; i++)
		if (f.v[i].hdr.type == MR_FRAME_DATA &&
		    f.v[i].hdr.stream_id == 3 && f.v[i].hdr.length)
			data_frames++;
	eh_frames_free(&f);
	assert_int_equal(data_frames, 1);
	assert_int_equal(h->nev, 0);
	eh_bytes_free(&b);
	eh_free(h);
}

/*
 * A peer that keeps sending heartbeat values within the window it is given,
 * but never grants window for the echoes (a legal, if hostile, peer: the Go
 * responder would block on its echo write and stop reading). Once the echo
 * direction's 256 KiB window is used up, the echoes can only pile up in the
 * responder's memory, so the responder must stop granting window for the
 * values it cannot echo: the peer can never have more than one window of
 * un-echoed values accepted. Otherwise memory grows without bound (about
 * 120 bytes of heap per 4-byte value).
 */
static void test_responder_backpressure_when_echoes_cannot_leave(void **state)
{
	const size_t frame = 64u << 10, limit = 4u << 20;
	struct eh *h = typed_eh(MR_ROLE_SERVER);
	struct eh_bytes b = {0};
	uint8_t *values = malloc(frame);
	uint64_t window = MR_INITIAL_WINDOW, sent = 0, echoed;

	(void)state;
	assert_non_null(values);
	for (size_t i = 0; i < frame; i++)
		values[i] = (uint8_t)(i * 13 + 1);
	eh_bytes_data(&b, 3, MR_FLAG_SYN, "\xff\xff\xff\xff", 4);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	window -= 4;
	h->record_tx = true;
	while (sent < limit) {
		struct eh_frames f;
		size_t n = window < frame ? (size_t)window : frame;

		if (n == 0)
			break;
		eh_bytes_free(&b);
		eh_bytes_data(&b, 3, 0, values, n);
		assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
		sent += n;
		window -= n;
		/* The peer reads all we send, and honours our WNDINC. */
		eh_flush(h);
		if (h->tx_len > h->tx_fed) {
			eh_frames_parse(h->tx + h->tx_fed,
					h->tx_len - h->tx_fed, &f);
			window += eh_frames_wndinc_sum(&f, 3);
			eh_frames_free(&f);
			h->tx_fed = h->tx_len;
		}
	}
	echoed = hb_payload(h->tx, h->tx_len, 3, NULL, 0);
	assert_true(echoed <= MR_INITIAL_WINDOW);
	eh_bytes_free(&b);
	free(values);
	eh_free(h);
	if (sent > echoed + MR_INITIAL_WINDOW)
		print_error("the responder accepted %llu bytes of heartbeat "
			    "values but could echo only %llu\n",
			    (unsigned long long)sent,
			    (unsigned long long)echoed);
	assert_true(sent <= echoed + MR_INITIAL_WINDOW);
}

/* ---- RTT -------------------------------------------------------------------- */

/* The reported RTT is exactly the time between the beat leaving and its
 * echo arriving, whatever the split between the two directions. */
static void test_rtt_equals_simulated_delay(void **state)
{
	static const uint64_t out_delay[] = {1 * MS, 20 * MS, 250 * US, 0,
					     400 * MS};
	static const uint64_t back_delay[] = {2 * MS, 17 * US, 250 * US, 1,
					      333 * MS};
	struct eh *c, *s;

	(void)state;
	start_pair(&c, &s, SEC, 5 * SEC);
	for (size_t k = 0; k < 5; k++) {
		uint64_t t = (k + 1) * SEC;

		tick(c, t);
		assert_int_equal(deliver(c, s, t + out_delay[k], 3), 1);
		deliver(s, c, t + out_delay[k] + back_delay[k], 0);
		assert_int_equal(beats_ok(c), k + 1);
		assert_int_equal(rtt(c, k),
				 (int64_t)(out_delay[k] + back_delay[k]));
	}
	assert_int_equal(beats_failed(c), 0);
	assert_int_equal(stream_events(c) + stream_events(s), 0);
	assert_int_equal(beats_ok(s), 0);
	eh_free(c);
	eh_free(s);
}

/* Echoes slower than the interval: two beats in flight, each timed right. */
static void test_rtt_with_beats_in_flight(void **state)
{
	struct eh *c, *s;

	(void)state;
	start_pair(&c, &s, SEC, 10 * SEC);
	tick(c, 1 * SEC);
	assert_int_equal(deliver(c, s, 1 * SEC + 100 * MS, 3), 1);
	tick(c, 2 * SEC);
	assert_int_equal(deliver(c, s, 2 * SEC + 100 * MS, 3), 1);
	/* Both echoes are queued at the server; they arrive at 2.5 s. */
	deliver(s, c, 2 * SEC + 500 * MS, 0);
	assert_int_equal(beats_ok(c), 2);
	assert_int_equal(rtt(c, 0), (int64_t)(1500 * MS));
	assert_int_equal(rtt(c, 1), (int64_t)(500 * MS));
	assert_int_equal(beats_failed(c), 0);
	eh_free(c);
	eh_free(s);
}

/* ---- failure detection ---------------------------------------------------- */

/*
 * Runs the pair from `from` to `to` in 100 ms steps; `mode` says what
 * happens to the server's output. Returns the number of failures seen, and
 * checks each one came exactly at first_failure + k * period.
 */
enum peer_mode { PEER_SWALLOWED, PEER_ECHOES_DROPPED, PEER_OK };

static size_t run_steps(struct eh *c, struct eh *s, uint64_t from, uint64_t to,
			enum peer_mode mode, uint64_t first_failure,
			uint64_t period)
{
	size_t failures = 0;

	for (uint64_t t = from; t <= to; t += 100 * MS) {
		size_t before = beats_failed(c);

		tick(c, t);
		deliver(c, s, t, 0);
		if (mode == PEER_SWALLOWED)
			swallow(s);
		else if (mode == PEER_ECHOES_DROPPED)
			deliver_dropping(s, c, t, 3);
		else
			deliver(s, c, t, 0);
		assert_true(beats_failed(c) - before <= 1);
		if (beats_failed(c) > before) {
			assert_int_equal(t, first_failure + failures * period);
			failures++;
		}
	}
	return failures;
}

/* The peer engine runs, but all it sends is lost: one failure every
 * interval + tolerance (1 s + 2 s), at 3 s, 6 s, ... 30 s; then the link
 * heals and the beats report again, with no further failure. */
static void test_failure_when_peer_output_is_lost(void **state)
{
	struct eh *c, *s;

	(void)state;
	start_pair(&c, &s, SEC, 2 * SEC);
	assert_int_equal(run_steps(c, s, 100 * MS, 30 * SEC, PEER_SWALLOWED,
				   3 * SEC, 3 * SEC), 10);
	assert_int_equal(beats_ok(c), 0);
	assert_int_equal(run_steps(c, s, 30 * SEC + 100 * MS, 60 * SEC, PEER_OK,
				   0, 0), 0);
	assert_int_equal(beats_failed(c), 10);
	assert_int_equal(beats_ok(c), 30);
	assert_int_equal(stream_events(c) + stream_events(s), 0);
	eh_free(c);
	eh_free(s);
}

/* Only the echoes are lost (the peer's WNDINC and everything else still
 * arrive): the same failures. */
static void test_failure_when_echoes_are_lost(void **state)
{
	struct eh *c, *s;

	(void)state;
	start_pair(&c, &s, SEC, 2 * SEC);
	assert_int_equal(run_steps(c, s, 100 * MS, 12 * SEC,
				   PEER_ECHOES_DROPPED, 3 * SEC, 3 * SEC), 4);
	assert_int_equal(beats_ok(c), 0);
	eh_free(c);
	eh_free(s);
}

/* A peer that swallows the heartbeat data: an untyped session takes the
 * heartbeat stream for an ordinary one and its application never echoes. */
static void test_failure_when_peer_does_not_echo(void **state)
{
	struct eh *c = typed_eh(MR_ROLE_CLIENT);
	struct eh *s = eh_new(MR_ROLE_SERVER, NULL);
	uint8_t got[8];

	(void)state;
	mr_session_set_now(c->sess, 0);
	assert_int_equal(mr_session_heartbeat_start(c->sess, SEC, 2 * SEC, 3),
			 0);
	assert_int_equal(run_steps(c, s, 100 * MS, 9 * SEC, PEER_OK, 3 * SEC,
				   3 * SEC), 3);
	assert_int_equal(beats_ok(c), 0);
	/* The untyped peer saw the type and nine values as plain data. */
	assert_int_equal(eh_count(s, MR_EV_STREAM_ACCEPTED, 3), 1);
	assert_int_equal(eh_data(s, 3, got, sizeof(got)), 4 + 9 * 4);
	assert_memory_equal(got, "\xff\xff\xff\xff", 4);
	eh_free(c);
	eh_free(s);
}

/* The failure comes at interval + tolerance exactly, not a nanosecond
 * before, and only once per period. */
static void test_failure_boundary_is_exact(void **state)
{
	struct eh *c, *s;

	(void)state;
	start_pair(&c, &s, SEC, 2 * SEC);
	tick(c, 1 * SEC);
	swallow(c); /* the beat is lost on the way */
	tick(c, 3 * SEC - 1);
	assert_int_equal(beats_failed(c), 0);
	tick(c, 3 * SEC);
	assert_int_equal(beats_failed(c), 1);
	tick(c, 3 * SEC);
	tick(c, 6 * SEC - 1);
	assert_int_equal(beats_failed(c), 1);
	tick(c, 6 * SEC);
	assert_int_equal(beats_failed(c), 2);
	swallow(c);
	eh_free(c);
	eh_free(s);
}

/* ---- both ways, reconfiguration, on demand --------------------------------- */

/*
 * Both sides run a heartbeat (client every 1 s, server every 700 ms) for
 * 10 s. Each 10 ms step moves server->client, then client->server: the
 * client's beats wait one step for their echo, the server's come back in the
 * same step.
 */
static void test_heartbeats_both_ways(void **state)
{
	struct eh *c = typed_eh(MR_ROLE_CLIENT);
	struct eh *s = typed_eh(MR_ROLE_SERVER);

	(void)state;
	mr_session_set_now(c->sess, 0);
	mr_session_set_now(s->sess, 0);
	assert_int_equal(mr_session_heartbeat_start(c->sess, SEC, SEC, 1), 0);
	assert_int_equal(mr_session_heartbeat_start(s->sess, 700 * MS, SEC, 2),
			 0);
	for (uint64_t t = 0; t <= 10 * SEC + 10 * MS; t += 10 * MS) {
		tick(c, t);
		tick(s, t);
		deliver(s, c, t, 0);
		deliver(c, s, t, 0);
	}
	assert_int_equal(beats_ok(c), 10);
	assert_int_equal(beats_ok(s), 14);
	for (size_t k = 0; k < 10; k++)
		assert_int_equal(rtt(c, k), (int64_t)(10 * MS));
	for (size_t k = 0; k < 14; k++)
		assert_int_equal(rtt(s, k), 0);
	assert_int_equal(beats_failed(c) + beats_failed(s), 0);
	assert_int_equal(stream_events(c) + stream_events(s), 0);
	eh_free(c);
	eh_free(s);
}

/* The next beat is due one new interval after the last one. */
static void test_interval_change_on_running_heartbeat(void **state)
{
	struct eh *c, *s;

	(void)state;
	start_pair(&c, &s, 10 * SEC, 15 * SEC);
	assert_int_equal(mr_session_next_deadline(c->sess), 10 * SEC);

	/* Shorter: from 10 s to 2 s, decided at 1 s. */
	tick(c, 1 * SEC);
	assert_int_equal(mr_session_heartbeat_configure(c->sess, 2 * SEC, SEC),
			 0);
	assert_int_equal(mr_session_next_deadline(c->sess), 2 * SEC);
	tick(c, 2 * SEC - 1);
	assert_int_equal(deliver(c, s, 2 * SEC - 1, 3), 0);
	tick(c, 2 * SEC);
	assert_int_equal(deliver(c, s, 2 * SEC, 3), 1);
	deliver(s, c, 2 * SEC, 0);
	assert_int_equal(beats_ok(c), 1);
	assert_int_equal(mr_session_next_deadline(c->sess), 4 * SEC);

	/* Shorter again, decided before the next beat: 2 s + 500 ms. */
	tick(c, 2100 * MS);
	assert_int_equal(mr_session_heartbeat_configure(c->sess, 500 * MS, SEC),
			 0);
	assert_int_equal(mr_session_next_deadline(c->sess), 2500 * MS);
	tick(c, 2500 * MS);
	assert_int_equal(deliver(c, s, 2500 * MS, 3), 1);
	deliver(s, c, 2500 * MS, 0);

	/* Longer: 5 s after the beat at 2.5 s. */
	tick(c, 2600 * MS);
	assert_int_equal(mr_session_heartbeat_configure(c->sess, 5 * SEC,
							100 * MS), 0);
	tick(c, 3 * SEC);
	tick(c, 7500 * MS - 1);
	assert_int_equal(deliver(c, s, 7500 * MS - 1, 3), 0);
	tick(c, 7500 * MS);
	assert_int_equal(deliver(c, s, 7500 * MS, 3), 1);
	swallow(s);

	/* The new tolerance counts too: last echo 2.5 s, + 5 s + 100 ms. */
	tick(c, 7600 * MS - 1);
	assert_int_equal(beats_failed(c), 0);
	tick(c, 7600 * MS);
	assert_int_equal(beats_failed(c), 1);
	assert_int_equal(beats_ok(c), 2);
	eh_free(c);
	eh_free(s);
}

/* A beat on demand goes out at once and reports its RTT; the periodic
 * schedule is not disturbed. */
static void test_on_demand_beat_reports_rtt(void **state)
{
	struct eh *c, *s;

	(void)state;
	start_pair(&c, &s, 10 * SEC, 15 * SEC);
	tick(c, 1 * SEC);
	assert_false(mr_session_tx_pending(c->sess));
	assert_int_equal(mr_session_heartbeat_beat(c->sess), 0);
	assert_true(mr_session_tx_pending(c->sess));
	assert_int_equal(deliver(c, s, 1 * SEC + 2 * MS, 3), 1);
	deliver(s, c, 1 * SEC + 5 * MS, 0);
	assert_int_equal(beats_ok(c), 1);
	assert_int_equal(rtt(c, 0), (int64_t)(5 * MS));
	assert_int_equal(mr_session_next_deadline(c->sess), 10 * SEC);

	/* Two at once: two echoes, two events. */
	mr_session_set_now(c->sess, 2 * SEC);
	assert_int_equal(mr_session_heartbeat_beat(c->sess), 0);
	assert_int_equal(mr_session_heartbeat_beat(c->sess), 0);
	assert_int_equal(deliver(c, s, 2 * SEC, 3), 2);
	deliver(s, c, 2 * SEC + 7 * MS, 0);
	assert_int_equal(beats_ok(c), 3);
	assert_int_equal(rtt(c, 1), (int64_t)(7 * MS));
	assert_int_equal(rtt(c, 2), (int64_t)(7 * MS));
	assert_int_equal(beats_failed(c), 0);
	assert_int_equal(stream_events(c) + stream_events(s), 0);
	eh_free(c);
	eh_free(s);
}

static void test_start_configure_beat_errors(void **state)
{
	struct eh *u = eh_new(MR_ROLE_CLIENT, NULL);
	struct eh *t = typed_eh(MR_ROLE_CLIENT);
	struct eh *g = typed_eh(MR_ROLE_CLIENT);
	struct eh_bytes b = {0};

	(void)state;
	/* Untyped session: nothing starts, nothing is sent. */
	assert_int_equal(mr_session_heartbeat_start(u->sess, SEC, SEC, 1),
			 -EINVAL);
	assert_false(mr_session_tx_pending(u->sess));
	assert_int_equal(mr_session_heartbeat_configure(u->sess, SEC, SEC),
			 -EINVAL);
	assert_int_equal(mr_session_heartbeat_beat(u->sess), -EINVAL);
	assert_int_equal(mr_session_next_deadline(u->sess), 0);

	/* Typed, not started. */
	assert_int_equal(mr_session_heartbeat_configure(t->sess, SEC, SEC),
			 -EINVAL);
	assert_int_equal(mr_session_heartbeat_beat(t->sess), -EINVAL);
	assert_int_equal(mr_session_heartbeat_start(t->sess, 0, SEC, 1),
			 -EINVAL);
	assert_false(mr_session_tx_pending(t->sess));
	assert_int_equal(mr_session_heartbeat_start(t->sess, SEC, SEC, 1), 0);
	assert_int_equal(mr_session_heartbeat_start(t->sess, SEC, SEC, 1),
			 -EALREADY);
	assert_int_equal(mr_session_heartbeat_configure(t->sess, 0, SEC),
			 -EINVAL);
	assert_int_equal(mr_session_heartbeat_configure(t->sess, SEC, 0), 0);

	/* After the session ended. */
	assert_int_equal(mr_session_close(t->sess, MUXRING_NO_ERROR, NULL, 0),
			 0);
	assert_int_equal(mr_session_heartbeat_beat(t->sess),
			 MUXRING_ERR(MUXRING_SESSION_CLOSED));
	assert_int_equal(mr_session_expire(t->sess, 100 * SEC), 0);
	eh_poll(t);
	assert_int_equal(beats_ok(t) + beats_failed(t), 0);

	/* After the peer's GOAWAY: the heartbeat stream cannot be opened. */
	eh_bytes_goaway(&b, 0, MUXRING_NO_ERROR, NULL, 0);
	assert_int_equal(eh_feed_bytes(g, &b, 0), 0);
	assert_int_equal(mr_session_heartbeat_start(g->sess, SEC, SEC, 1),
			 MUXRING_ERR(MUXRING_REMOTE_GONE_AWAY));
	assert_int_equal(mr_session_heartbeat_beat(g->sess), -EINVAL);
	eh_bytes_free(&b);
	eh_free(u);
	eh_free(t);
	eh_free(g);
}

/* Closing a session with heartbeats running both ways: the heartbeat
 * streams never show, nothing leaks, and nothing fires afterwards. */
static void test_session_end_with_heartbeats_running(void **state)
{
	struct eh *c = typed_eh(MR_ROLE_CLIENT);
	struct eh *s = typed_eh(MR_ROLE_SERVER);

	(void)state;
	mr_session_set_now(c->sess, 0);
	mr_session_set_now(s->sess, 0);
	assert_int_equal(mr_session_heartbeat_start(c->sess, SEC, SEC, 1), 0);
	assert_int_equal(mr_session_heartbeat_start(s->sess, SEC, SEC, 2), 0);
	tick(c, SEC);
	tick(s, SEC);
	deliver(c, s, SEC, 0);
	deliver(s, c, SEC, 0);
	deliver(c, s, SEC, 0);
	assert_int_equal(beats_ok(c) + beats_ok(s), 2);
	assert_int_equal(mr_session_close(c->sess, MUXRING_NO_ERROR, S("bye")),
			 0);
	deliver(c, s, SEC, 0);
	mr_session_recv_end(s->sess, 0);
	eh_poll(s);
	eh_assert_ended(c);
	eh_assert_ended(s);
	tick(c, 100 * SEC);
	tick(s, 100 * SEC);
	assert_int_equal(beats_failed(c) + beats_failed(s), 0);
	assert_int_equal(stream_events(c) + stream_events(s), 0);
	eh_free(c);
	eh_free(s);
}

/* ---- under load --------------------------------------------------------------- */

#define BULK_STREAMS 8
#define BULK_BYTES (3u << 20)     /* per stream and direction */
#define LINK_BYTES (64u << 10)    /* per direction and clock tick */

struct bulk_side {
	bool server;
	struct mr_buf *payload;   /* what every stream writes */
	uint64_t received;        /* payload bytes the application read */
	size_t writes_ok, write_errors;
	size_t closed;
	uint64_t max_rtt;
};

/* The application of one side: reads everything at once, answers each
 * accepted stream with BULK_BYTES and a half-close. */
static bool bulk_event(struct eh *h, struct mr_event *ev, void *ctx)
{
	struct bulk_side *b = ctx;

	(void)h;
	switch (ev->type) {
	case MR_EV_DATA:
		b->received += ev->view.len;
		mr_view_release(&ev->view);
		return true;
	case MR_EV_WRITE_DONE:
		if (ev->result == BULK_BYTES)
			b->writes_ok++;
		else
			b->write_errors++;
		return true;
	case MR_EV_HEARTBEAT:
		if ((uint64_t)ev->result > b->max_rtt)
			b->max_rtt = (uint64_t)ev->result;
		return false;
	case MR_EV_STREAM_ACCEPTED:
		if (b->server) {
			assert_int_equal(mr_stream_write(ev->stream, b->payload,
							 b->payload->data,
							 BULK_BYTES, 1), 0);
			assert_int_equal(mr_stream_close_write(ev->stream), 0);
		}
		return false;
	case MR_EV_STREAM_CLOSED:
		b->closed++;
		return false;
	default:
		return false;
	}
}

/* Moves at most `budget` bytes from `from` to `to`: a link of fixed
 * bandwidth, which may cut frames anywhere. */
static void link_send(struct eh *from, struct eh *to, size_t budget,
		      uint64_t now, uint8_t *tmp)
{
	struct iovec iov[64];
	size_t n = mr_session_tx_iov(from->sess, iov, 64, budget), take = 0;

	for (size_t i = 0; i < n && take < budget; i++) {
		size_t k = iov[i].iov_len < budget - take ? iov[i].iov_len
							   : budget - take;

		memcpy(tmp + take, iov[i].iov_base, k);
		take += k;
	}
	if (!take)
		return;
	mr_session_tx_advance(from->sess, take);
	eh_poll(from);
	mr_session_set_now(to->sess, now);
	assert_int_equal(eh_feed(to, tmp, take, 0), 0);
}

/*
 * 8 streams, each moving 3 MiB both ways, through a link of 64 KiB per
 * direction and per 1 ms tick (so the run lasts hundreds of ticks), while
 * both sides beat every 20 ms with a tolerance of 100 ms. No failure may be
 * reported, beats keep reporting all along, and no beat takes as long as an
 * interval to come back.
 */
static void test_no_false_alarm_under_bulk_load(void **state)
{
	struct mr_buf *payload = mr_buf_new_heap(BULK_BYTES);
	struct bulk_side cb = {.server = false}, sb = {.server = true};
	struct eh *c = typed_eh(MR_ROLE_CLIENT);
	struct eh *s = typed_eh(MR_ROLE_SERVER);
	uint8_t *tmp = malloc(2 * LINK_BYTES);
	uint64_t now = 0;
	size_t ticks = 0;

	(void)state;
	assert_non_null(payload);
	assert_non_null(tmp);
	for (size_t i = 0; i < BULK_BYTES; i++)
		payload->data[i] = (uint8_t)(i * 31 + (i >> 12));
	cb.payload = sb.payload = payload;
	c->on_event = bulk_event;
	c->ctx = &cb;
	s->on_event = bulk_event;
	s->ctx = &sb;
	c->record_tx = s->record_tx = false;
	mr_session_set_now(c->sess, 0);
	mr_session_set_now(s->sess, 0);
	assert_int_equal(mr_session_heartbeat_start(c->sess, 20 * MS,
						    100 * MS, 11), 0);
	assert_int_equal(mr_session_heartbeat_start(s->sess, 20 * MS,
						    100 * MS, 12), 0);
	for (size_t i = 0; i < BULK_STREAMS; i++) {
		struct mr_stream *st = NULL;

		assert_int_equal(mr_session_open(c->sess, 0xB0000000u + i, &st),
				 0);
		assert_int_equal(mr_stream_write(st, payload, payload->data,
						 BULK_BYTES, 1), 0);
		assert_int_equal(mr_stream_close_write(st), 0);
	}
	while (cb.closed < BULK_STREAMS || sb.closed < BULK_STREAMS) {
		assert_true(++ticks < 20000);
		now += MS;
		tick(c, now);
		tick(s, now);
		link_send(c, s, LINK_BYTES, now, tmp);
		link_send(s, c, LINK_BYTES, now, tmp);
	}
	/* The load really lasted: 48 MiB over 128 KiB per tick. */
	assert_true(ticks >= 2 * BULK_STREAMS * (uint64_t)BULK_BYTES /
				     (2 * LINK_BYTES));
	assert_int_equal(cb.received, (uint64_t)BULK_STREAMS * BULK_BYTES);
	assert_int_equal(sb.received, (uint64_t)BULK_STREAMS * BULK_BYTES);
	assert_int_equal(cb.writes_ok, BULK_STREAMS);
	assert_int_equal(sb.writes_ok, BULK_STREAMS);
	assert_int_equal(cb.write_errors + sb.write_errors, 0);
	assert_int_equal(beats_failed(c), 0);
	assert_int_equal(beats_failed(s), 0);
	/* A beat every 20 ms, all answered but the last one or two. */
	assert_true(beats_ok(c) + 2 >= ticks / 20);
	assert_true(beats_ok(s) + 2 >= ticks / 20);
	assert_true(cb.max_rtt < 20 * MS);
	assert_true(sb.max_rtt < 20 * MS);
	/* The applications saw their 8 streams, never a heartbeat stream. */
	assert_int_equal(eh_count(s, MR_EV_STREAM_ACCEPTED, EH_ANY),
			 BULK_STREAMS);
	assert_int_equal(eh_count(c, MR_EV_STREAM_ACCEPTED, EH_ANY), 0);
	free(tmp);
	mr_buf_unref(payload);
	eh_free(c);
	eh_free(s);
}

/* Opens 8 typed streams on `h` and queues `len` bytes of `payload` on each;
 * returns the id of the last one. */
static uint32_t queue_bulk(struct eh *h, struct mr_buf *payload, size_t len)
{
	uint32_t id = 0;

	for (size_t i = 0; i < BULK_STREAMS; i++) {
		struct mr_stream *st = NULL;

		assert_int_equal(mr_session_open(h->sess, 0xB0000000u + i, &st),
				 0);
		assert_int_equal(mr_stream_write(st, payload, payload->data,
						 len, 1), 0);
		id = mr_stream_id(st);
	}
	return id;
}

/* Gathers a tx_iov batch into one array; returns its length. */
static size_t gather(const struct iovec *iov, size_t n, struct eh_bytes *out)
{
	size_t start = out->len;

	for (size_t i = 0; i < n; i++)
		eh_bytes_put(out, iov[i].iov_base, iov[i].iov_len);
	return out->len - start;
}

/* Offset of the first DATA frame of stream `id` starting at or after `from`
 * in bytes that may end inside a frame; SIZE_MAX when there is none. Sets
 * *flags and *len to its header's. */
static size_t find_data_frame(const uint8_t *bytes, size_t len, size_t from,
			      uint32_t id, uint8_t *flags, uint32_t *flen)
{
	size_t pos = 0;

	while (len - pos >= MR_FRAME_HEADER_LEN) {
		struct mr_frame_header hdr;

		mr_frame_header_parse(bytes + pos, &hdr);
		if (pos >= from && hdr.type == MR_FRAME_DATA &&
		    hdr.stream_id == id) {
			*flags = hdr.flags;
			*flen = hdr.length;
			return pos;
		}
		pos += MR_FRAME_HEADER_LEN + hdr.length;
		if (pos > len)
			break;
	}
	return SIZE_MAX;
}

/*
 * Urgent scheduling. With 8 streams holding 4 MiB each (2 MiB within their
 * windows) queued and nothing yet handed to the transport, a beat is the
 * very first frame of the next batch. With a batch already committed and
 * half sent, the beat comes right after that batch, ahead of every byte of
 * bulk data not yet committed.
 */
static void test_beat_jumps_queued_bulk_data(void **state)
{
	const size_t bulk = 4u << 20;
	struct mr_buf *payload = mr_buf_new_heap(bulk);
	struct iovec iov[64];

	(void)state;
	assert_non_null(payload);
	memset(payload->data, 0x55, bulk);

	/* 1: nothing committed yet. */
	{
		struct eh *c = typed_eh(MR_ROLE_CLIENT);
		struct eh_bytes wire = {0};
		size_t n, pos;
		uint8_t flags = 0xFF;
		uint32_t len = 0;

		mr_session_set_now(c->sess, 0);
		assert_int_equal(mr_session_heartbeat_start(c->sess, SEC, SEC,
							    5), 0);
		eh_flush(c); /* the heartbeat stream's SYN */
		queue_bulk(c, payload, bulk);
		assert_int_equal(mr_session_heartbeat_beat(c->sess), 0);
		n = mr_session_tx_iov(c->sess, iov, 64, SIZE_MAX);
		assert_true(gather(iov, n, &wire) > 256u << 10);
		pos = find_data_frame(wire.p, wire.len, 0, 3, &flags, &len);
		assert_int_equal(pos, 0);
		assert_int_equal(flags, 0);
		assert_int_equal(len, 4);
		eh_bytes_free(&wire);
		eh_free(c);
	}

	/* 2: a batch of about 256 KiB committed, 100 KiB of it sent. */
	{
		struct eh *c = typed_eh(MR_ROLE_CLIENT);
		struct eh_bytes wire = {0};
		size_t n, committed, pos;
		uint8_t flags = 0xFF;
		uint32_t len = 0;

		mr_session_set_now(c->sess, 0);
		assert_int_equal(mr_session_heartbeat_start(c->sess, SEC, SEC,
							    5), 0);
		eh_flush(c);
		queue_bulk(c, payload, bulk);
		n = mr_session_tx_iov(c->sess, iov, 64, 256u << 10);
		committed = gather(iov, n, &wire);
		assert_true(committed >= 256u << 10);
		wire.len = 100u << 10;
		mr_session_tx_advance(c->sess, wire.len);
		assert_int_equal(mr_session_heartbeat_beat(c->sess), 0);
		n = mr_session_tx_iov(c->sess, iov, 64, 256u << 10);
		gather(iov, n, &wire);
		pos = find_data_frame(wire.p, wire.len, 0, 3, &flags, &len);
		assert_true(pos != SIZE_MAX);
		assert_true(pos <= committed);
		assert_true(pos + MR_FRAME_HEADER_LEN + 4 <= wire.len);
		assert_int_equal(flags, 0);
		assert_int_equal(len, 4);
		eh_bytes_free(&wire);
		eh_free(c);
	}
	mr_buf_unref(payload);
}

/*
 * A heartbeat started while bulk data is already queued: its stream's first
 * frame (SYN, the type 0xFFFFFFFF and the first beat) goes ahead of the bulk
 * too, since it is heartbeat data.
 */
static void test_heartbeat_started_behind_bulk_goes_first(void **state)
{
	const size_t bulk = 4u << 20;
	struct mr_buf *payload = mr_buf_new_heap(bulk);
	struct eh *c = typed_eh(MR_ROLE_CLIENT);
	struct eh_bytes wire = {0};
	struct iovec iov[64];
	uint32_t last_bulk, hb_id;
	size_t n, pos;
	uint8_t flags = 0xFF;
	uint32_t len = 0;

	(void)state;
	assert_non_null(payload);
	memset(payload->data, 0x66, bulk);
	mr_session_set_now(c->sess, 0);
	last_bulk = queue_bulk(c, payload, bulk);
	hb_id = last_bulk + 2;
	assert_int_equal(mr_session_heartbeat_start(c->sess, SEC, SEC, 5), 0);
	assert_int_equal(mr_session_heartbeat_beat(c->sess), 0);
	n = mr_session_tx_iov(c->sess, iov, 64, SIZE_MAX);
	gather(iov, n, &wire);
	pos = find_data_frame(wire.p, wire.len, 0, hb_id, &flags, &len);
	assert_true(pos != SIZE_MAX);
	assert_int_equal(flags, MR_FLAG_SYN);
	assert_int_equal(len, 8);
	assert_memory_equal(wire.p + pos + MR_FRAME_HEADER_LEN,
			    "\xff\xff\xff\xff", 4);
	/* Freed before the verdict, so that a failure reports no leak. */
	eh_bytes_free(&wire);
	mr_buf_unref(payload);
	eh_free(c);
	if (pos != 0)
		print_error("the heartbeat stream's first frame left behind "
			    "%zu bytes of bulk data\n", pos);
	assert_int_equal(pos, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_go_requester_into_typed_server),
		cmocka_unit_test(test_vector_go_requester_all_at_once),
		cmocka_unit_test(test_vector_go_responder_into_our_requester),
		cmocka_unit_test(test_unknown_echo_is_ignored),
		cmocka_unit_test(test_responder_with_values_cut_across_frames),
		cmocka_unit_test(test_responder_echoes_a_payload_in_one_frame),
		cmocka_unit_test(test_responder_backpressure_when_echoes_cannot_leave),
		cmocka_unit_test(test_rtt_equals_simulated_delay),
		cmocka_unit_test(test_rtt_with_beats_in_flight),
		cmocka_unit_test(test_failure_when_peer_output_is_lost),
		cmocka_unit_test(test_failure_when_echoes_are_lost),
		cmocka_unit_test(test_failure_when_peer_does_not_echo),
		cmocka_unit_test(test_failure_boundary_is_exact),
		cmocka_unit_test(test_heartbeats_both_ways),
		cmocka_unit_test(test_interval_change_on_running_heartbeat),
		cmocka_unit_test(test_on_demand_beat_reports_rtt),
		cmocka_unit_test(test_start_configure_beat_errors),
		cmocka_unit_test(test_session_end_with_heartbeats_running),
		cmocka_unit_test(test_no_false_alarm_under_bulk_load),
		cmocka_unit_test(test_beat_jumps_queued_bulk_data),
		cmocka_unit_test(test_heartbeat_started_behind_bulk_goes_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
