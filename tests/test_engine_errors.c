/*
 * test_engine_errors.c - framing errors are fatal (PROTOCOL.md "Framing
 * errors (fatal for the session)").
 *
 * Each malformed frame of the table is fed, whole, one byte at a time and
 * in 3-byte chunks, into a session that has a stream the peer opened (with
 * data held by the application) and one it opened itself (with a write
 * blocked on the window). Every case must: make mr_session_recv return
 * MUXRING_ERR(code); emit, as the last frame, a GOAWAY with that code, the
 * highest peer stream id and a non-empty printable debug string; close every
 * stream with that code (one STREAM_CLOSED each) and fail the pending write
 * with it; end the session (SESSION_ENDED last, local error = that code,
 * mr_session_done once the GOAWAY is out); and ignore whatever follows.
 * The error must be found from the header alone, before any body byte.
 * Also: the same shapes that are NOT errors (DATA of our parity without SYN,
 * unknown types on stream 0) stay non-fatal.
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

struct bad_frame {
	const char *what;
	enum mr_role role;  /* of the receiving session */
	uint32_t code;      /* the error it must fail with */
	uint32_t length;    /* header fields */
	uint8_t type, flags;
	uint32_t id;
	uint32_t word;      /* first body word when the body has one */
};

static const struct bad_frame bad_frames[] = {
	{"RST of length 3", MR_ROLE_SERVER, MUXRING_FRAME_SIZE_ERROR,
	 3, MR_FRAME_RST, 0, 3, 0},
	{"RST of length 5", MR_ROLE_SERVER, MUXRING_FRAME_SIZE_ERROR,
	 5, MR_FRAME_RST, 0, 3, 0},
	{"RST of length 0", MR_ROLE_SERVER, MUXRING_FRAME_SIZE_ERROR,
	 0, MR_FRAME_RST, 0, 3, 0},
	{"WNDINC of length 0", MR_ROLE_SERVER, MUXRING_FRAME_SIZE_ERROR,
	 0, MR_FRAME_WNDINC, 0, 3, 0},
	{"WNDINC of length 8", MR_ROLE_SERVER, MUXRING_FRAME_SIZE_ERROR,
	 8, MR_FRAME_WNDINC, 0, 3, 1},
	{"GOAWAY of length 7", MR_ROLE_SERVER, MUXRING_FRAME_SIZE_ERROR,
	 7, MR_FRAME_GOAWAY, 0, 0, 0},
	{"GOAWAY of length 0", MR_ROLE_SERVER, MUXRING_FRAME_SIZE_ERROR,
	 0, MR_FRAME_GOAWAY, 0, 0, 0},
	{"RST on stream 0", MR_ROLE_SERVER, MUXRING_PROTOCOL_ERROR,
	 4, MR_FRAME_RST, 0, 0, MUXRING_STREAM_RESET},
	{"DATA on stream 0", MR_ROLE_SERVER, MUXRING_PROTOCOL_ERROR,
	 4, MR_FRAME_DATA, 0, 0, 0x41424344},
	{"DATA with SYN on stream 0", MR_ROLE_SERVER, MUXRING_PROTOCOL_ERROR,
	 0, MR_FRAME_DATA, MR_FLAG_SYN, 0, 0},
	{"WNDINC on stream 0", MR_ROLE_SERVER, MUXRING_PROTOCOL_ERROR,
	 4, MR_FRAME_WNDINC, 0, 0, 100},
	{"GOAWAY on stream 5", MR_ROLE_SERVER, MUXRING_PROTOCOL_ERROR,
	 8, MR_FRAME_GOAWAY, 0, 5, 0},
	{"WNDINC with increment 0", MR_ROLE_SERVER, MUXRING_PROTOCOL_ERROR,
	 4, MR_FRAME_WNDINC, 0, 3, 0},
	{"WNDINC with only the reserved bit", MR_ROLE_SERVER,
	 MUXRING_PROTOCOL_ERROR, 4, MR_FRAME_WNDINC, 0, 3, 0x80000000u},
	{"SYN of the server's parity to a server", MR_ROLE_SERVER,
	 MUXRING_PROTOCOL_ERROR, 1, MR_FRAME_DATA, MR_FLAG_SYN, 6, 0},
	{"SYN of the client's parity to a client", MR_ROLE_CLIENT,
	 MUXRING_PROTOCOL_ERROR, 1, MR_FRAME_DATA, MR_FLAG_SYN, 7, 0},
};

#define NBAD (sizeof(bad_frames) / sizeof(bad_frames[0]))

static void build_bad(struct eh_bytes *b, const struct bad_frame *bf)
{
	uint8_t body[16] = {0};

	eh_bytes_header(b, bf->length, bf->type, bf->flags, bf->id);
	mr_put_be32(body, bf->word);
	for (uint32_t i = 4; i < sizeof(body); i++)
		body[i] = (uint8_t)('a' + i);
	eh_bytes_put(b, body, bf->length < sizeof(body) ? bf->length
						      : sizeof(body));
}

/* The peer's stream (3 to a server, 2 to a client) with "held" data, and one
 * of ours with 300000 bytes of which only the window went out. */
struct setup {
	struct eh *h;
	uint32_t remote_id, local_id;
};

static void set_up(struct setup *st, enum mr_role role)
{
	static uint8_t big[300000];
	struct eh_bytes b = {0};
	struct mr_stream *mine;

	st->h = eh_new(role, NULL);
	st->remote_id = role == MR_ROLE_SERVER ? 3 : 2;
	eh_bytes_data(&b, st->remote_id, MR_FLAG_SYN, S("held"));
	assert_int_equal(eh_feed_bytes(st->h, &b, 0), 0);
	eh_bytes_free(&b);
	mine = eh_open(st->h);
	st->local_id = mr_stream_id(mine);
	assert_int_equal(eh_write(mine, big, sizeof(big), 77), 0);
	eh_flush(st->h);
	assert_int_equal(eh_count(st->h, MR_EV_WRITE_DONE, EH_ANY), 0);
	eh_tx_clear(st->h);
}

static void assert_fatal(struct setup *st, const struct bad_frame *bf,
			 size_t chunk)
{
	struct eh *h = st->h;
	struct eh_frames f;
	const struct eh_frame *last;
	const struct mr_session_result *r;
	size_t debug_len;

	eh_tx_frames(h, &f);
	if (f.n == 0) {
		print_error("%s (chunk %zu): no GOAWAY was sent\n", bf->what,
			    chunk);
		fail();
	}
	last = &f.v[f.n - 1];
	assert_int_equal(last->hdr.type, MR_FRAME_GOAWAY);
	assert_int_equal(last->hdr.stream_id, 0);
	assert_true(last->hdr.length > 8);
	assert_int_equal(mr_get_be32(last->body + 4), bf->code);
	assert_int_equal(mr_get_be32(last->body), st->remote_id);
	debug_len = last->hdr.length - 8;
	if (!eh_is_readable_text(last->body + 8, debug_len)) {
		print_error("%s: GOAWAY debug is not readable text\n", bf->what);
		fail();
	}
	/* No frame at all follows it; no pad either: the session is over. */
	assert_int_equal(eh_frames_count(&f, MR_FRAME_GOAWAY, EH_ANY), 1);
	eh_frames_free(&f);

	assert_int_equal(eh_closed_code(h, st->remote_id), bf->code);
	assert_int_equal(eh_closed_code(h, st->local_id), bf->code);
	assert_int_equal(eh_find(h, MR_EV_STREAM_CLOSED, st->local_id, 0)
				 ->ev.result, MUXRING_ERR(bf->code));
	assert_int_equal(eh_write_result(h, 77), eh_err(bf->code));
	eh_assert_stream_events_well_formed(h);
	eh_assert_ended(h);
	r = mr_session_result(h->sess);
	assert_int_equal(r->local_error, MUXRING_ERR(bf->code));
	assert_false(r->remote_goaway);
	assert_true(mr_session_done(h->sess));
}

static void test_every_framing_error_is_fatal_with_its_code(void **state)
{
	const size_t chunks[] = {0, 1, 3};

	(void)state;
	for (size_t i = 0; i < NBAD; i++)
		for (size_t c = 0; c < sizeof(chunks) / sizeof(*chunks); c++) {
			const struct bad_frame *bf = &bad_frames[i];
			struct setup st;
			struct eh_bytes b = {0};
			size_t nev;
			int rc;

			set_up(&st, bf->role);
			build_bad(&b, bf);
			rc = eh_feed_bytes(st.h, &b, chunks[c]);
			if (rc != MUXRING_ERR(bf->code)) {
				print_error("%s (chunk %zu): recv returned %d, "
					    "expected %d\n", bf->what, chunks[c],
					    rc, MUXRING_ERR(bf->code));
				fail();
			}
			assert_fatal(&st, bf, chunks[c]);
			/* What follows is ignored: no stream, no frame. */
			nev = st.h->nev;
			eh_bytes_free(&b);
			eh_bytes_data(&b, bf->role == MR_ROLE_SERVER ? 9 : 8,
				      MR_FLAG_SYN, S("after"));
			eh_bytes_rst(&b, st.remote_id, MUXRING_STREAM_RESET);
			eh_feed_bytes(st.h, &b, chunks[c]);
			assert_int_equal(st.h->nev, nev);
			eh_tx_clear(st.h);
			assert_int_equal(eh_flush(st.h), 0);
			eh_bytes_free(&b);
			eh_free(st.h);
		}
}

static void test_a_framing_error_is_found_from_the_header_before_the_body(void **state)
{
	struct setup st;
	struct eh_bytes b = {0};

	(void)state;
	set_up(&st, MR_ROLE_SERVER);
	/* RST claiming a 1000-byte body: only its header is fed. */
	eh_bytes_header(&b, 1000, MR_FRAME_RST, 0, 3);
	assert_int_equal(eh_feed_bytes(st.h, &b, 0),
			 MUXRING_ERR(MUXRING_FRAME_SIZE_ERROR));
	eh_assert_ended(st.h);
	eh_bytes_free(&b);
	eh_free(st.h);
}

static void test_the_goaway_of_a_fatal_error_goes_out_even_after_a_partial_frame(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *s = eh_open(h);
	struct eh_bytes b = {0};
	struct iovec iov[4];
	uint8_t first[5];
	struct eh_frames f;
	uint8_t payload[1000];

	(void)state;
	memset(payload, 'p', sizeof(payload));
	assert_int_equal(eh_write(s, payload, sizeof(payload), 1), 0);
	/* The transport takes 5 bytes of the DATA frame, then the error. */
	assert_true(mr_session_tx_iov(h->sess, iov, 4, SIZE_MAX) > 0);
	assert_true(iov[0].iov_len >= 5);
	memcpy(first, iov[0].iov_base, 5);
	mr_session_tx_advance(h->sess, 5);
	eh_bytes_header(&b, 0, MR_FRAME_GOAWAY, 0, 0);
	assert_int_equal(eh_feed_bytes(h, &b, 0),
			 MUXRING_ERR(MUXRING_FRAME_SIZE_ERROR));
	eh_bytes_free(&b);
	/* What follows must complete that frame, then bring the GOAWAY. */
	eh_flush(h);
	{
		uint8_t *all = malloc(5 + h->tx_len);

		assert_non_null(all);
		memcpy(all, first, 5);
		memcpy(all + 5, h->tx, h->tx_len);
		eh_frames_parse(all, 5 + h->tx_len, &f);
		assert_int_equal(f.n, 2);
		assert_int_equal(f.v[0].hdr.type, MR_FRAME_DATA);
		assert_int_equal(f.v[0].hdr.length, 1000);
		assert_int_equal(f.v[1].hdr.type, MR_FRAME_GOAWAY);
		assert_int_equal(mr_get_be32(f.v[1].body + 4),
				 MUXRING_FRAME_SIZE_ERROR);
		eh_frames_free(&f);
		free(all);
	}
	assert_true(mr_session_done(h->sess));
	eh_free(h);
}

static void test_data_of_our_parity_without_syn_is_not_fatal(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_bytes b = {0};
	struct eh_frames f;

	(void)state;
	/* An unknown stream of our own parity: RST StreamClosed, no more. */
	eh_bytes_data(&b, 6, 0, S("x"));
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_RST);
	assert_int_equal(mr_get_be32(f.v[0].body), MUXRING_STREAM_CLOSED);
	eh_frames_free(&f);
	assert_false(mr_session_ended(h->sess));
	eh_bytes_free(&b);
	eh_free(h);
}

static void test_unknown_types_are_never_framing_errors_whatever_their_shape(void **state)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct eh_bytes b = {0};

	(void)state;
	/* Lengths 0..9 on stream 0 and 3: shapes that would be errors for
	 * RST, WNDINC or GOAWAY. */
	for (uint32_t len = 0; len < 10; len++) {
		uint8_t body[10] = {0};

		eh_bytes_header(&b, len, 0x4 + (uint8_t)(len % 12), 0xF,
				len % 2 ? 0 : 3);
		eh_bytes_put(&b, body, len);
	}
	assert_int_equal(eh_feed_bytes(h, &b, 1), 0);
	assert_false(mr_session_ended(h->sess));
	assert_int_equal(eh_flush(h), 0);
	assert_int_equal(h->nev, 0);
	eh_bytes_free(&b);
	eh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_framing_error_is_fatal_with_its_code),
		cmocka_unit_test(test_a_framing_error_is_found_from_the_header_before_the_body),
		cmocka_unit_test(test_the_goaway_of_a_fatal_error_goes_out_even_after_a_partial_frame),
		cmocka_unit_test(test_data_of_our_parity_without_syn_is_not_fatal),
		cmocka_unit_test(test_unknown_types_are_never_framing_errors_whatever_their_shape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
