/*
 * test_engine_goaway.c - going away and ending (PROTOCOL.md "Session
 * shutdown", "Stream ids"; src/engine/session.h).
 *
 * Covers: the last-stream-id of our GOAWAY (idle server 1, idle client 0,
 * else the highest id the peer opened, refused ones included, ones refused
 * after our GOAWAY not); mr_session_close (GOAWAY with code and debug, every
 * stream closes with SessionClosed, pending writes fail, SESSION_ENDED last
 * and once, local error SessionClosed, done once sent, a frame already
 * started is finished first, open/write/goaway fail afterwards); our
 * mr_session_goaway (peer SYNs refused with RST StreamRefused, open streams
 * and our own opens go on, an empty unknown-type frame follows so a Go peer
 * stays in sync, oversized debug refused); a GOAWAY received (streams we
 * opened above its last id fail with RemoteGoneAway, at or below go on, new
 * opens fail with RemoteGoneAway, code/last id/debug kept up to the cap with
 * the session still in frame sync, the session does not end); end of file
 * (PeerEOF) and transport errors (-errno); bytes after the end ignored;
 * StreamsExhausted at the end of the id space (through
 * mr_session_set_next_stream_id), and peer ids up to 2^31-1.
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

#define S(str) (str), (sizeof(str) - 1)

static void feed_syn(struct eh *h, uint32_t id, const char *text)
{
	struct eh_bytes b = {0};

	eh_bytes_data(&b, id, MR_FLAG_SYN, text, strlen(text));
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_bytes_free(&b);
}

static void feed_goaway(struct eh *h, uint32_t last, uint32_t code,
			const void *debug, size_t len, size_t chunk)
{
	struct eh_bytes b = {0};

	eh_bytes_goaway(&b, last, code, debug, len);
	assert_int_equal(eh_feed_bytes(h, &b, chunk), 0);
	eh_bytes_free(&b);
}

/* The last GOAWAY emitted so far (flushes first). */
static void last_goaway(struct eh *h, uint32_t *last, uint32_t *code,
			char *debug, size_t cap)
{
	struct eh_frames f;
	const struct eh_frame *g = NULL;

	eh_tx_frames(h, &f);
	for (size_t i = 0; i < f.n; i++)
		if (f.v[i].hdr.type == MR_FRAME_GOAWAY)
			g = &f.v[i];
	assert_non_null(g);
	*last = mr_get_be32(g->body);
	*code = mr_get_be32(g->body + 4);
	if (debug) {
		size_t n = g->hdr.length - 8;

		assert_true(n < cap);
		memcpy(debug, g->body + 8, n);
		debug[n] = 0;
	}
	eh_frames_free(&f);
}

/* ---- last stream id -------------------------------------------------------- */

static void test_an_idle_server_says_last_stream_id_1(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	uint32_t last, code;

	(void)state;
	eh_open(h); /* our own streams do not count */
	assert_int_equal(mr_session_close(h->sess, 0, S("no error")), 0);
	last_goaway(h, &last, &code, NULL, 0);
	assert_int_equal(last, 1);
	eh_free(h);
}

static void test_an_idle_client_says_last_stream_id_0(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	uint32_t last, code;

	(void)state;
	eh_write(eh_open(h), S("x"), 1);
	eh_flush(h);
	assert_int_equal(mr_session_goaway(h->sess, 0, S("x")), 0);
	last_goaway(h, &last, &code, NULL, 0);
	assert_int_equal(last, 0);
	eh_free(h);
}

static void test_goaway_names_the_highest_stream_id_the_peer_opened(void **state)
{
	struct mr_config cfg;
	struct eh *h;
	uint32_t last, code;

	(void)state;
	mr_config_default(&cfg);
	cfg.accept_backlog = 2;
	h = eh_new(MR_ROLE_SERVER, &cfg);
	h->auto_accept = false;
	feed_syn(h, 3, "a");
	feed_syn(h, 5, "b");
	feed_syn(h, 9, "c"); /* refused (backlog): still the highest seen */
	eh_tx_clear(h);
	assert_int_equal(mr_session_goaway(h->sess, 0, S("draining")), 0);
	last_goaway(h, &last, &code, NULL, 0);
	assert_int_equal(last, 9);
	/* Refused after our GOAWAY: not counted. */
	feed_syn(h, 11, "d");
	assert_int_equal(mr_session_close(h->sess, 0, S("no error")), 0);
	last_goaway(h, &last, &code, NULL, 0);
	assert_int_equal(last, 9);
	eh_free(h);
}

/* ---- closing ------------------------------------------------------------------ */

static void test_close_sends_goaway_and_ends_every_stream_with_session_closed(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *mine = eh_open(h), *none = NULL;
	static uint8_t big[300000];
	uint32_t last, code;
	char debug[64];
	const struct mr_session_result *r;

	(void)state;
	feed_syn(h, 3, "peer");
	assert_int_equal(eh_write(mine, big, sizeof(big), 1), 0);
	eh_flush(h);
	eh_tx_clear(h);
	assert_int_equal(mr_session_close(h->sess, MUXRING_INTERNAL_ERROR,
					  S("shutting down")), 0);
	assert_true(mr_session_ended(h->sess));
	assert_false(mr_session_done(h->sess)); /* the GOAWAY is not out */
	last_goaway(h, &last, &code, debug, sizeof(debug));
	assert_int_equal(last, 3);
	assert_int_equal(code, MUXRING_INTERNAL_ERROR);
	assert_string_equal(debug, "shutting down");
	assert_true(mr_session_done(h->sess));
	assert_int_equal(eh_closed_code(h, 3), MUXRING_SESSION_CLOSED);
	assert_int_equal(eh_closed_code(h, 2), MUXRING_SESSION_CLOSED);
	assert_int_equal(eh_write_result(h, 1), eh_err(MUXRING_SESSION_CLOSED));
	eh_assert_ended(h);
	eh_assert_stream_events_well_formed(h);
	r = mr_session_result(h->sess);
	assert_int_equal(r->local_error, MUXRING_ERR(MUXRING_SESSION_CLOSED));
	assert_false(r->remote_goaway);
	/* Afterwards nothing works, and nothing more is sent. */
	assert_int_equal(mr_session_open(h->sess, 0, &none),
			 MUXRING_ERR(MUXRING_SESSION_CLOSED));
	assert_int_equal(eh_write(mine, S("x"), 2),
			 MUXRING_ERR(MUXRING_SESSION_CLOSED));
	assert_int_equal(mr_session_goaway(h->sess, 0, S("again")),
			 MUXRING_ERR(MUXRING_SESSION_CLOSED));
	eh_tx_clear(h);
	assert_int_equal(mr_session_close(h->sess, 0, S("twice")), 0);
	assert_int_equal(eh_flush(h), 0);
	assert_int_equal(eh_count(h, MR_EV_SESSION_ENDED, EH_ANY), 1);
	eh_free(h);
}

static void test_close_finishes_a_frame_already_started_before_its_goaway(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = eh_open(h), *t = eh_open(h);
	uint8_t payload[3000], head[10];
	struct iovec iov[8];
	struct eh_frames f;
	uint8_t *all;
	size_t n;

	(void)state;
	memset(payload, 'z', sizeof(payload));
	assert_int_equal(eh_write(s, payload, sizeof(payload), 1), 0);
	assert_int_equal(eh_write(t, payload, sizeof(payload), 2), 0);
	n = mr_session_tx_iov(h->sess, iov, 8, SIZE_MAX);
	/* The transport takes the first 10 bytes: inside the first frame. */
	for (size_t i = 0, got = 0; i < n && got < sizeof(head); i++) {
		size_t k = iov[i].iov_len < sizeof(head) - got
				   ? iov[i].iov_len : sizeof(head) - got;

		memcpy(head + got, iov[i].iov_base, k);
		got += k;
		assert_true(got == sizeof(head) || i + 1 < n);
	}
	mr_session_tx_advance(h->sess, sizeof(head));
	assert_int_equal(mr_session_close(h->sess, 0, S("no error")), 0);
	eh_flush(h);
	all = malloc(sizeof(head) + h->tx_len);
	assert_non_null(all);
	memcpy(all, head, sizeof(head));
	memcpy(all + sizeof(head), h->tx, h->tx_len);
	/* Whole frames: the started DATA, then GOAWAY; the rest dropped. */
	eh_frames_parse(all, sizeof(head) + h->tx_len, &f);
	assert_true(f.n >= 2);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_DATA);
	assert_int_equal(f.v[0].hdr.stream_id, 3);
	assert_int_equal(f.v[f.n - 1].hdr.type, MR_FRAME_GOAWAY);
	eh_frames_free(&f);
	free(all);
	assert_true(mr_session_done(h->sess));
	eh_free(h);
}

static void test_close_with_an_oversized_debug_still_ends_the_session(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	char *text = malloc(MR_FRAME_MAX_LEN);
	struct eh_frames f;

	(void)state;
	assert_non_null(text);
	memset(text, 'd', MR_FRAME_MAX_LEN);
	feed_syn(h, 3, "a");
	/* session.h: "Returns 0 or -ENOMEM (the session still ends)". */
	mr_session_close(h->sess, 0, text, MR_FRAME_MAX_LEN);
	eh_tx_frames(h, &f);
	eh_assert_ended(h);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_SESSION_CLOSED);
	/* Whatever debug went out fits in one frame. */
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_GOAWAY);
	assert_true(f.v[0].hdr.length >= 8);
	for (size_t i = 8; i < f.v[0].hdr.length; i++)
		if (f.v[0].body[i] != 'd')
			fail_msg("debug byte %zu is %#x", i - 8, f.v[0].body[i]);
	eh_frames_free(&f);
	free(text);
	eh_free(h);
}

/* ---- our GOAWAY ---------------------------------------------------------------- */

static void test_after_our_goaway_peer_syns_are_refused_and_open_streams_go_on(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_frames f;
	struct eh_bytes b = {0};
	struct mr_stream *mine;

	(void)state;
	feed_syn(h, 3, "before");
	assert_int_equal(mr_session_goaway(h->sess, MUXRING_NO_ERROR,
					   S("draining")), 0);
	eh_flush(h);
	eh_tx_clear(h);
	feed_syn(h, 5, "after");
	assert_null(eh_accepted(h, 5));
	assert_int_equal(eh_count(h, MR_EV_DATA, 5), 0);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_RST);
	assert_int_equal(f.v[0].hdr.stream_id, 5);
	assert_int_equal(mr_get_be32(f.v[0].body), MUXRING_STREAM_REFUSED);
	eh_frames_free(&f);
	/* Stream 3 goes on both ways. */
	eh_bytes_data(&b, 3, MR_FLAG_FIN, S(" and after"));
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_bytes_free(&b);
	eh_assert_data(h, 3, S("before and after"));
	assert_int_equal(eh_write(eh_accepted(h, 3), S("reply"), 1), 0);
	eh_flush(h);
	assert_int_equal(eh_write_result(h, 1), 5);
	/* And we may still open streams. */
	mine = eh_open(h);
	assert_int_equal(eh_write(mine, S("mine"), 2), 0);
	eh_flush(h);
	assert_int_equal(eh_write_result(h, 2), 4);
	assert_false(mr_session_ended(h->sess));
	eh_free(h);
}

static void test_our_goaway_is_followed_by_an_empty_unknown_frame_unless_closing(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_frames f;

	(void)state;
	assert_int_equal(mr_session_goaway(h->sess, 0, S("bye")), 0);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_GOAWAY);
	assert_int_equal(f.v[0].hdr.length, 8 + 3);
	/* 8 bytes a Go receiver swallows as debug: a frame we can skip. */
	assert_true(f.v[1].hdr.type > MR_FRAME_GOAWAY);
	assert_int_equal(f.v[1].hdr.length, 0);
	eh_frames_free(&f);
	eh_tx_clear(h);
	assert_int_equal(mr_session_close(h->sess, 0, S("no error")), 0);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_GOAWAY);
	eh_frames_free(&f);
	eh_free(h);
}

/* An application may call goaway as often as it likes; the peer, with its
 * default GOAWAY flood budget, must never read that as a flood. */
static void test_repeated_goaways_never_spend_the_peers_budget(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh *peer = eh_new(MR_ROLE_CLIENT, NULL);
	struct eh_frames f;
	int i;

	(void)state;
	for (i = 0; i < 20; i++)
		assert_int_equal(mr_session_goaway(h->sess, (uint32_t)i % 2,
						   S("again")), 0);
	eh_tx_frames(h, &f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_GOAWAY, EH_ANY),
			 MR_GOAWAYS_SENT_MAX);
	eh_frames_free(&f);
	assert_int_equal(mr_session_close(h->sess, 0, S("done")), 0);
	eh_flush(h);
	assert_int_equal(eh_feed(peer, h->tx, h->tx_len, 0), 0);
	/* It ends by the final GOAWAY's close, not by a flood. */
	assert_true(mr_session_result(peer->sess)->local_error !=
		    MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM));
	assert_true(mr_session_result(peer->sess)->remote_goaway);
	eh_free(peer);
	eh_free(h);
}

static void test_a_goaway_with_oversized_debug_is_refused(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	char *text = calloc(1, MR_FRAME_MAX_LEN);

	(void)state;
	assert_non_null(text);
	assert_int_equal(mr_session_goaway(h->sess, 0, text,
					   MR_FRAME_MAX_LEN - 8 + 1), -EINVAL);
	free(text);
	assert_int_equal(eh_flush(h), 0);
	assert_false(mr_session_ended(h->sess));
	eh_free(h);
}

/* ---- the peer's GOAWAY -------------------------------------------------------------- */

static void test_the_peers_goaway_fails_our_streams_above_its_last_id(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s[3], *none = NULL;
	static uint8_t big[300000];
	struct eh_bytes b = {0};

	(void)state;
	for (int i = 0; i < 3; i++) {
		s[i] = eh_open(h);
		assert_int_equal(eh_write(s[i], S("hello"), (uint64_t)i), 0);
	}
	assert_int_equal(eh_write(s[2], big, sizeof(big), 10), 0);
	eh_flush(h);
	feed_goaway(h, 3, MUXRING_ENHANCE_YOUR_CALM, S("calm down"), 0);
	/* The application hears of it once, with the code. */
	assert_int_equal(eh_count(h, MR_EV_GOAWAY, EH_ANY), 1);
	assert_int_equal(eh_find(h, MR_EV_GOAWAY, EH_ANY, 0)->ev.code,
			 MUXRING_ENHANCE_YOUR_CALM);
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 3), 0);
	assert_int_equal(eh_closed_code(h, 5), MUXRING_REMOTE_GONE_AWAY);
	assert_int_equal(eh_closed_code(h, 7), MUXRING_REMOTE_GONE_AWAY);
	assert_int_equal(eh_write_result(h, 10),
			 eh_err(MUXRING_REMOTE_GONE_AWAY));
	assert_int_equal(mr_session_open(h->sess, 0, &none),
			 MUXRING_ERR(MUXRING_REMOTE_GONE_AWAY));
	/* Stream 3 goes on. */
	eh_bytes_data(&b, 3, 0, S("answer"));
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_bytes_free(&b);
	eh_assert_data(h, 3, S("answer"));
	assert_int_equal(eh_write(s[0], S("more"), 20), 0);
	eh_flush(h);
	assert_int_equal(eh_write_result(h, 20), 4);
	assert_false(mr_session_ended(h->sess));
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

static void test_goaway_debug_is_kept_up_to_the_cap_and_parsing_stays_in_sync(void **state)
{
	const size_t chunks[] = {0, 1, 7, 100};

	(void)state;
	for (size_t c = 0; c < sizeof(chunks) / sizeof(*chunks); c++) {
		struct mr_config cfg;
		struct eh *h;
		char debug[100];
		const struct mr_session_result *r;
		struct eh_bytes b = {0};

		mr_config_default(&cfg);
		cfg.goaway_debug_cap = 10;
		h = eh_new(MR_ROLE_CLIENT, &cfg);
		eh_write(eh_open(h), S("x"), 1);
		for (size_t i = 0; i < sizeof(debug); i++)
			debug[i] = (char)('A' + i % 26);
		feed_goaway(h, 3, MUXRING_NO_ERROR, debug, sizeof(debug),
			    chunks[c]);
		r = mr_session_result(h->sess);
		assert_true(r->remote_goaway);
		assert_int_equal(r->remote_code, MUXRING_NO_ERROR);
		assert_int_equal(r->remote_last_id, 3);
		assert_int_equal(r->remote_debug_len, 10);
		assert_memory_equal(r->remote_debug, debug, 10);
		/* The next frame is read from the right place. */
		eh_bytes_data(&b, 3, MR_FLAG_FIN, S("in sync"));
		assert_int_equal(eh_feed_bytes(h, &b, chunks[c]), 0);
		eh_bytes_free(&b);
		eh_assert_data(h, 3, S("in sync"));
		assert_int_equal(eh_count(h, MR_EV_EOF, 3), 1);
		eh_free(h);
	}
}

static void test_goaway_debug_within_the_cap_is_kept_whole_and_empty_is_empty(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	const struct mr_session_result *r;

	(void)state;
	feed_goaway(h, 0, MUXRING_STREAM_CLOSED, NULL, 0, 1);
	r = mr_session_result(h->sess);
	assert_true(r->remote_goaway);
	assert_int_equal(r->remote_code, MUXRING_STREAM_CLOSED);
	assert_int_equal(r->remote_debug_len, 0);
	feed_goaway(h, 0, 0xDEADBEEF, S("second, longer goaway"), 3);
	assert_int_equal(eh_count(h, MR_EV_GOAWAY, EH_ANY), 2);
	assert_int_equal(eh_find(h, MR_EV_GOAWAY, EH_ANY, 1)->ev.code,
			 0xDEADBEEF);
	r = mr_session_result(h->sess);
	assert_int_equal(r->remote_code, 0xDEADBEEF);
	assert_int_equal(r->remote_debug_len, 21);
	assert_memory_equal(r->remote_debug, "second, longer goaway", 21);
	assert_false(mr_session_ended(h->sess));
	assert_int_equal(eh_flush(h), 0); /* nothing is sent in answer */
	eh_free(h);
}

/* ---- the end of the transport -------------------------------------------------------- */

static void test_end_of_file_ends_the_session_with_peer_eof(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	size_t nev;

	(void)state;
	feed_syn(h, 3, "a");
	eh_open(h);
	mr_session_recv_end(h->sess, 0);
	eh_poll(h);
	eh_assert_ended(h);
	assert_int_equal(mr_session_result(h->sess)->local_error,
			 MUXRING_ERR(MUXRING_PEER_EOF));
	assert_int_equal(eh_closed_code(h, 3), MUXRING_PEER_EOF);
	assert_int_equal(eh_closed_code(h, 2), MUXRING_PEER_EOF);
	assert_int_equal(eh_find(h, MR_EV_STREAM_CLOSED, 3, 0)->ev.result,
			 MUXRING_ERR(MUXRING_PEER_EOF));
	eh_flush(h);
	assert_true(mr_session_done(h->sess));
	/* Bytes after the end are ignored. */
	nev = h->nev;
	feed_syn(h, 5, "late");
	assert_int_equal(h->nev, nev);
	eh_tx_clear(h);
	assert_int_equal(eh_flush(h), 0);
	eh_free(h);
}

static void test_a_transport_error_ends_the_session_with_that_errno(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = eh_open(h);

	(void)state;
	assert_int_equal(eh_write(s, S("x"), 1), 0);
	eh_flush(h);
	mr_session_recv_end(h->sess, -ECONNRESET);
	eh_poll(h);
	eh_assert_ended(h);
	assert_int_equal(mr_session_result(h->sess)->local_error, -ECONNRESET);
	assert_int_not_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	assert_int_equal(eh_find(h, MR_EV_STREAM_CLOSED, 3, 0)->ev.result,
			 -ECONNRESET);
	assert_int_equal(eh_write_result(h, 1), 1); /* it was out before */
	eh_free(h);
}

/* ---- the end of the id space ---------------------------------------------------------- */

static void test_opening_fails_with_streams_exhausted_when_ids_run_out(void **state)
{
	struct eh *c = eh_new(MR_ROLE_CLIENT, NULL);
	struct eh *s = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *none = NULL, *last;
	struct eh_frames f;

	(void)state;
	mr_session_set_next_stream_id(c->sess, 0x7FFFFFFD);
	assert_int_equal(mr_stream_id(eh_open(c)), 0x7FFFFFFD);
	last = eh_open(c);
	assert_int_equal(mr_stream_id(last), 0x7FFFFFFF);
	assert_int_equal(mr_session_open(c->sess, 0, &none),
			 MUXRING_ERR(MUXRING_STREAMS_EXHAUSTED));
	assert_int_equal(mr_session_open(c->sess, 0, &none),
			 MUXRING_ERR(MUXRING_STREAMS_EXHAUSTED));
	/* The last id works on the wire, and the session goes on. */
	assert_int_equal(eh_write(last, S("last"), 1), 0);
	eh_tx_frames(c, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.stream_id, 0x7FFFFFFF);
	assert_int_equal(f.v[0].raw[4] & 0x80, 0);
	eh_frames_free(&f);
	assert_false(mr_session_ended(c->sess));

	mr_session_set_next_stream_id(s->sess, 0x7FFFFFFE);
	assert_int_equal(mr_stream_id(eh_open(s)), 0x7FFFFFFE);
	assert_int_equal(mr_session_open(s->sess, 0, &none),
			 MUXRING_ERR(MUXRING_STREAMS_EXHAUSTED));
	eh_free(c);
	eh_free(s);
}

static void test_a_peer_stream_with_the_highest_id_is_accepted_and_reported(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	uint32_t last, code;

	(void)state;
	feed_syn(h, 0x7FFFFFFF, "top");
	assert_non_null(eh_accepted(h, 0x7FFFFFFF));
	eh_assert_data(h, 0x7FFFFFFF, S("top"));
	assert_int_equal(mr_session_close(h->sess, 0, S("no error")), 0);
	last_goaway(h, &last, &code, NULL, 0);
	assert_int_equal(last, 0x7FFFFFFF);
	eh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_idle_server_says_last_stream_id_1),
		cmocka_unit_test(test_an_idle_client_says_last_stream_id_0),
		cmocka_unit_test(test_goaway_names_the_highest_stream_id_the_peer_opened),
		cmocka_unit_test(test_repeated_goaways_never_spend_the_peers_budget),
		cmocka_unit_test(test_close_sends_goaway_and_ends_every_stream_with_session_closed),
		cmocka_unit_test(test_close_finishes_a_frame_already_started_before_its_goaway),
		cmocka_unit_test(test_close_with_an_oversized_debug_still_ends_the_session),
		cmocka_unit_test(test_after_our_goaway_peer_syns_are_refused_and_open_streams_go_on),
		cmocka_unit_test(test_our_goaway_is_followed_by_an_empty_unknown_frame_unless_closing),
		cmocka_unit_test(test_a_goaway_with_oversized_debug_is_refused),
		cmocka_unit_test(test_the_peers_goaway_fails_our_streams_above_its_last_id),
		cmocka_unit_test(test_goaway_debug_is_kept_up_to_the_cap_and_parsing_stays_in_sync),
		cmocka_unit_test(test_goaway_debug_within_the_cap_is_kept_whole_and_empty_is_empty),
		cmocka_unit_test(test_end_of_file_ends_the_session_with_peer_eof),
		cmocka_unit_test(test_a_transport_error_ends_the_session_with_that_errno),
		cmocka_unit_test(test_opening_fails_with_streams_exhausted_when_ids_run_out),
		cmocka_unit_test(test_a_peer_stream_with_the_highest_id_is_accepted_and_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
