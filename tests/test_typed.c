/*
 * test_typed.c - typed streams at the engine level (struct mr_config.typed).
 *
 * A typed stream's 32-bit type is nothing but the stream's first 4 data
 * bytes, big-endian (PROTOCOL.md, "Extensions carried inside streams"). What
 * the engine owes, and what is checked here:
 *
 *   opening side   the type bytes go at the head of the stream's first DATA
 *                  frame, in the frame that carries the SYN, at once (even if
 *                  the application writes nothing); they count against the
 *                  send window like any data, but not in WRITE_DONE;
 *   accepting side the type arrives in MR_EV_STREAM_ACCEPTED, the stream is
 *                  not announced before all 4 bytes are in, and the type
 *                  bytes never appear in MR_EV_DATA, however they are cut
 *                  into frames and input chunks; they are credited back to
 *                  the peer's window; a stream that ends (FIN, RST) before
 *                  its type is complete never reaches the application and
 *                  frees its accept-backlog slot;
 *   untyped        the same bytes are plain data.
 *
 * The golden capture tests/vectors/typed-stream.* (Go muxado,
 * NewTypedStreamSession, type 0x12345678) is replayed into a typed server
 * engine, and a typed client and server engine are driven through the steps
 * the Go programs took; their frames must equal Go's, WNDINC excepted (we
 * grant window in batches, Go per read).
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

/* Input chunkings every receive test runs with (0: all in one buffer). */
static const size_t chunk_sizes[] = {0, 1, 2, 3, 5, 7, 11, 13};
#define NCHUNKS (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))

static const uint8_t vec_type_bytes[4] = {0x12, 0x34, 0x56, 0x78};
#define VEC_TYPE 0x12345678u

/* ---- helpers ------------------------------------------------------------ */

static struct mr_config typed_config(void)
{
	struct mr_config cfg;

	mr_config_default(&cfg);
	cfg.typed = true;
	return cfg;
}

static struct eh *typed_eh(enum mr_role role)
{
	struct mr_config cfg = typed_config();

	return eh_new(role, &cfg);
}

static struct mr_stream *open_typed(struct eh *h, uint32_t type,
				    uint32_t want_id)
{
	struct mr_stream *s = NULL;

	assert_int_equal(mr_session_open(h->sess, type, &s), 0);
	assert_non_null(s);
	assert_int_equal(mr_stream_id(s), want_id);
	return s;
}

/* Checks a frame's header fields. */
static void assert_frame(const struct eh_frame *f, uint8_t type, uint8_t flags,
			 uint32_t id, uint32_t len)
{
	assert_int_equal(f->hdr.type, type);
	assert_int_equal(f->hdr.flags, flags);
	assert_int_equal(f->hdr.stream_id, id);
	assert_int_equal(f->hdr.length, len);
}

/* Counts the events of a stream that only an application-visible stream
 * gets; for a stream that must stay hidden this must be 0. */
static size_t app_events(const struct eh *h, uint32_t id)
{
	return eh_count(h, MR_EV_STREAM_ACCEPTED, id) +
	       eh_count(h, MR_EV_DATA, id) + eh_count(h, MR_EV_EOF, id) +
	       eh_count(h, MR_EV_STREAM_CLOSED, id) +
	       eh_count(h, MR_EV_WRITE_DONE, id);
}

/* The one STREAM_ACCEPTED event of `id`; fails unless there is exactly one. */
static struct eh_ev *accepted_once(struct eh *h, uint32_t id)
{
	assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED, id), 1);
	return eh_find(h, MR_EV_STREAM_ACCEPTED, id, 0);
}

/* Every DATA and EOF event of `id` comes after its STREAM_ACCEPTED. */
static void assert_accepted_first(struct eh *h, uint32_t id)
{
	const struct eh_ev *acc = accepted_once(h, id);

	for (size_t i = 0; i < h->nev; i++) {
		const struct eh_ev *e = &h->ev[i];

		if (e->id == id && (e->ev.type == MR_EV_DATA ||
				    e->ev.type == MR_EV_EOF))
			assert_true(e->seq > acc->seq);
	}
}

/* Number of RST frames emitted for `id` carrying `code`. */
static size_t rst_count(struct eh *h, uint32_t id, uint32_t code)
{
	struct eh_frames f;
	size_t n = 0;

	eh_tx_frames(h, &f);
	for (size_t i = 0; i < f.n; i++)
		n += f.v[i].hdr.type == MR_FRAME_RST &&
		     f.v[i].hdr.stream_id == id &&
		     mr_get_be32(f.v[i].body) == code;
	eh_frames_free(&f);
	return n;
}

/* Number of frames of `type` emitted for `id` (EH_ANY: all streams). */
static size_t emitted_count(struct eh *h, uint8_t type, uint32_t id)
{
	struct eh_frames f;
	size_t n;

	eh_tx_frames(h, &f);
	n = eh_frames_count(&f, type, id);
	eh_frames_free(&f);
	return n;
}

/* Feeds frames [first, first + count) of a captured side. */
static void feed_vec_frames(struct eh *h, const struct vec_side *side,
			    size_t first, size_t count, size_t chunk)
{
	size_t start, end;

	assert_true(count > 0 && first + count <= side->nframes);
	start = side->frames[first].offset;
	end = side->frames[first + count - 1].offset +
	      side->frames[first + count - 1].raw_len;
	assert_int_equal(eh_feed(h, side->bytes + start, end - start, chunk), 0);
}

/* Our frames against Go's, WNDINC left out on both sides. */
static void assert_same_frames_as_go(struct eh *h, const struct vec_side *go,
				     const char *what)
{
	struct eh_frames ours, theirs;

	eh_tx_frames(h, &ours);
	eh_frames_parse(go->bytes, go->len, &theirs);
	eh_frames_drop_type(&ours, MR_FRAME_WNDINC);
	eh_frames_drop_type(&theirs, MR_FRAME_WNDINC);
	eh_assert_frames_equal(&ours, &theirs, what);
	eh_frames_free(&ours);
	eh_frames_free(&theirs);
}

/* A fresh block of `len` bytes with a recognisable pattern. */
static uint8_t *pattern(size_t len, uint8_t seed)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
	return p;
}

/* ---- the opening side ----------------------------------------------------- */

/* Open and pump, no write: one SYN frame with exactly the 4 type bytes. */
static void test_open_sends_type_in_syn_frame_at_once(void **state)
{
	static const enum mr_role roles[] = {MR_ROLE_CLIENT, MR_ROLE_SERVER};

	(void)state;
	for (size_t r = 0; r < 2; r++) {
		struct eh *h = typed_eh(roles[r]);
		uint32_t id = roles[r] == MR_ROLE_CLIENT ? 3 : 2;
		struct eh_frames f;

		assert_false(mr_session_tx_pending(h->sess));
		open_typed(h, 0xA1B2C3D4u, id);
		/* Unlike an untyped open, something is due at once. */
		assert_true(mr_session_tx_pending(h->sess));
		open_typed(h, 0, id + 2);
		eh_tx_frames(h, &f);
		assert_int_equal(f.n, 2);
		assert_frame(&f.v[0], MR_FRAME_DATA, MR_FLAG_SYN, id, 4);
		assert_memory_equal(f.v[0].body, "\xa1\xb2\xc3\xd4", 4);
		assert_frame(&f.v[1], MR_FRAME_DATA, MR_FLAG_SYN, id + 2, 4);
		assert_memory_equal(f.v[1].body, "\0\0\0\0", 4);
		eh_frames_free(&f);
		/* Nothing more, and no event for the app (nothing was written). */
		assert_int_equal(eh_flush(h), 0);
		assert_int_equal(h->nev, 0);
		eh_free(h);
	}
}

/* A write before the first pump shares the SYN frame, behind the type; the
 * write completes with its own length. */
static void test_first_write_follows_type_in_syn_frame(void **state)
{
	struct eh *h = typed_eh(MR_ROLE_CLIENT);
	struct mr_stream *s = open_typed(h, 0x01020304u, 3);
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(s, S("hello"), 7), 0);
	assert_int_equal(eh_write(s, S(" world"), 8), 0);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_frame(&f.v[0], MR_FRAME_DATA, MR_FLAG_SYN, 3, 15);
	assert_memory_equal(f.v[0].body, "\x01\x02\x03\x04hello world", 15);
	eh_frames_free(&f);
	assert_int_equal(eh_write_result(h, 7), 5);
	assert_int_equal(eh_write_result(h, 8), 6);
	eh_free(h);
}

/* Open then half-close before any pump: the type goes in a SYN frame of its
 * own and the FIN follows separately (SYN never rides with FIN). */
static void test_close_write_before_pump_sends_type_then_fin(void **state)
{
	struct eh *h = typed_eh(MR_ROLE_CLIENT);
	struct mr_stream *s = open_typed(h, 0xCAFEBABEu, 3);
	struct eh_frames f;

	(void)state;
	assert_int_equal(mr_stream_close_write(s), 0);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 2);
	assert_frame(&f.v[0], MR_FRAME_DATA, MR_FLAG_SYN, 3, 4);
	assert_memory_equal(f.v[0].body, "\xca\xfe\xba\xbe", 4);
	assert_frame(&f.v[1], MR_FRAME_DATA, MR_FLAG_FIN, 3, 0);
	eh_frames_free(&f);
	eh_free(h);
}

/* The type bytes are stream data for flow control: with a 256 KiB window,
 * the first burst carries 4 type bytes and 262140 written bytes. */
static void test_type_bytes_use_send_window(void **state)
{
	const size_t len = 300u << 10;
	uint8_t *data = pattern(len, 3);
	struct eh *h = typed_eh(MR_ROLE_CLIENT);
	struct mr_stream *s = open_typed(h, VEC_TYPE, 3);
	struct eh_frames f;
	struct eh_bytes in = {0};
	uint64_t sent = 0;
	uint8_t *got;

	(void)state;
	assert_int_equal(eh_write(s, data, len, 1), 0);
	eh_tx_frames(h, &f);
	for (size_t i = 0; i < f.n; i++) {
		assert_int_equal(f.v[i].hdr.type, MR_FRAME_DATA);
		assert_int_equal(f.v[i].hdr.flags, i == 0 ? MR_FLAG_SYN : 0);
		sent += f.v[i].hdr.length;
	}
	assert_int_equal(sent, MR_INITIAL_WINDOW);
	eh_frames_free(&f);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);

	/* The peer grants exactly what is missing: 4 + len - window. */
	eh_bytes_wndinc(&in, 3, (uint32_t)(4 + len - MR_INITIAL_WINDOW));
	assert_int_equal(eh_feed_bytes(h, &in, 0), 0);
	eh_tx_frames(h, &f);
	got = malloc(4 + len);
	assert_non_null(got);
	sent = 0;
	for (size_t i = 0; i < f.n; i++) {
		assert_int_equal(f.v[i].hdr.type, MR_FRAME_DATA);
		assert_true(sent + f.v[i].hdr.length <= 4 + len);
		memcpy(got + sent, f.v[i].body, f.v[i].hdr.length);
		sent += f.v[i].hdr.length;
	}
	assert_int_equal(sent, 4 + len);
	assert_memory_equal(got, vec_type_bytes, 4);
	assert_memory_equal(got + 4, data, len);
	assert_int_equal(eh_write_result(h, 1), (int64_t)len);
	free(got);
	eh_frames_free(&f);
	eh_bytes_free(&in);
	free(data);
	eh_free(h);
}

/* Untyped: the type argument of mr_session_open is ignored and nothing is
 * sent until the first write. */
static void test_untyped_open_sends_nothing_and_no_type(void **state)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = open_typed(h, VEC_TYPE, 3);
	struct eh_frames f;

	(void)state;
	assert_false(mr_session_tx_pending(h->sess));
	assert_int_equal(eh_flush(h), 0);
	assert_int_equal(eh_write(s, S("x"), 1), 0);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_frame(&f.v[0], MR_FRAME_DATA, MR_FLAG_SYN, 3, 1);
	assert_memory_equal(f.v[0].body, "x", 1);
	eh_frames_free(&f);
	eh_free(h);
}

/* The heartbeat type is reserved on typed sessions: a stream of that type
 * would have its data echoed back by the peer. Untyped sessions ignore the
 * type, so it is harmless there. */
static void test_the_heartbeat_type_cannot_be_opened_by_the_application(void **state)
{
	struct eh *typed = typed_eh(MR_ROLE_CLIENT);
	struct eh *untyped = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = NULL;

	(void)state;
	assert_int_equal(mr_session_open(typed->sess, MR_HEARTBEAT_TYPE, &s),
			 -EINVAL);
	assert_null(s);
	assert_false(mr_session_tx_pending(typed->sess));
	assert_int_equal(mr_session_open(untyped->sess, MR_HEARTBEAT_TYPE, &s),
			 0);
	assert_int_equal(mr_stream_id(s), 3);
	eh_free(typed);
	eh_free(untyped);
}

/* ---- the typed-stream vector ---------------------------------------------- */

/* Go client's bytes into our typed server, in every chunking: the type comes
 * in the accept event, the data is "typed hello" alone. */
static void test_vector_client_bytes_into_typed_server(void **state)
{
	struct vec_side client;

	(void)state;
	vec_must_load("typed-stream", "client", &client);
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh *h = typed_eh(MR_ROLE_SERVER);
		const struct mr_session_result *r;

		assert_int_equal(eh_feed(h, client.bytes, client.len,
					 chunk_sizes[c]), 0);
		assert_int_equal(accepted_once(h, 3)->ev.stream_type, VEC_TYPE);
		assert_accepted_first(h, 3);
		eh_assert_data(h, 3, S("typed hello"));
		assert_int_equal(eh_count(h, MR_EV_EOF, 3), 1);
		assert_int_equal(eh_count(h, MR_EV_GOAWAY, EH_ANY), 1);
		r = mr_session_result(h->sess);
		assert_true(r->remote_goaway);
		assert_int_equal(r->remote_code, MUXRING_NO_ERROR);
		assert_false(mr_session_ended(h->sess));
		eh_free(h);
	}
	vec_side_free(&client);
}

/* Our typed client, driven like the Go client (open typed, write, half-close,
 * read the echo, close the session), writes Go's frames; fed Go's server
 * bytes it reads the echo without any type bytes in it. */
static void test_vector_typed_client_writes_go_frames(void **state)
{
	struct vec_side server, client;

	(void)state;
	vec_must_load("typed-stream", "server", &server);
	vec_must_load("typed-stream", "client", &client);
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh *h = typed_eh(MR_ROLE_CLIENT);
		struct mr_stream *s = open_typed(h, VEC_TYPE, 3);

		eh_flush(h);
		assert_int_equal(eh_write(s, S("typed hello"), 1), 0);
		eh_flush(h);
		assert_int_equal(mr_stream_close_write(s), 0);
		eh_flush(h);
		feed_vec_frames(h, &server, 0, server.nframes, chunk_sizes[c]);
		eh_assert_data(h, 3, S("typed hello"));
		assert_int_equal(eh_count(h, MR_EV_EOF, 3), 1);
		assert_int_equal(eh_write_result(h, 1), 11);
		/* The client opened it: no accept event for it. */
		assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED, EH_ANY), 0);
		eh_release(h, 3, SIZE_MAX);
		eh_flush(h);
		assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
		assert_int_equal(mr_session_close(h->sess, MUXRING_NO_ERROR,
						  S("no error")), 0);
		assert_same_frames_as_go(h, &client, "typed-stream client");
		eh_assert_ended(h);
		eh_free(h);
	}
	vec_side_free(&server);
	vec_side_free(&client);
}

/* Our typed server, driven like the Go server (accept typed, echo the rest,
 * half-close), writes Go's frames. */
static void test_vector_typed_server_writes_go_frames(void **state)
{
	struct vec_side server, client;

	(void)state;
	vec_must_load("typed-stream", "server", &server);
	vec_must_load("typed-stream", "client", &client);
	assert_int_equal(client.nframes, 5);
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh *h = typed_eh(MR_ROLE_SERVER);
		struct mr_stream *s;

		feed_vec_frames(h, &client, 0, 1, chunk_sizes[c]);
		assert_int_equal(accepted_once(h, 3)->ev.stream_type, VEC_TYPE);
		assert_int_equal(eh_count(h, MR_EV_DATA, 3), 0);
		s = eh_accepted(h, 3);
		feed_vec_frames(h, &client, 1, 2, chunk_sizes[c]);
		eh_assert_data(h, 3, S("typed hello"));
		assert_int_equal(eh_count(h, MR_EV_EOF, 3), 1);
		eh_release(h, 3, SIZE_MAX);
		assert_int_equal(eh_write(s, S("typed hello"), 1), 0);
		eh_flush(h);
		assert_int_equal(mr_stream_close_write(s), 0);
		eh_flush(h);
		assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
		feed_vec_frames(h, &client, 3, 2, chunk_sizes[c]);
		assert_int_equal(eh_count(h, MR_EV_GOAWAY, EH_ANY), 1);
		assert_same_frames_as_go(h, &server, "typed-stream server");
		eh_free(h);
	}
	vec_side_free(&server);
	vec_side_free(&client);
}

/* The same capture into an untyped server: the type is plain data. */
static void test_vector_client_bytes_into_untyped_server(void **state)
{
	static const uint8_t want[] = "\x12\x34\x56\x78typed hello";
	struct vec_side client;

	(void)state;
	vec_must_load("typed-stream", "client", &client);
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh *h = eh_new(MR_ROLE_SERVER, NULL);

		assert_int_equal(eh_feed(h, client.bytes, client.len,
					 chunk_sizes[c]), 0);
		assert_int_equal(accepted_once(h, 3)->ev.stream_type, 0);
		eh_assert_data(h, 3, want, sizeof(want) - 1);
		assert_int_equal(eh_count(h, MR_EV_EOF, 3), 1);
		eh_free(h);
	}
	vec_side_free(&client);
}

/* ---- the accepting side: type bytes cut anyhow ---------------------------- */

/*
 * Ways to cut the 4 type bytes 0xDEADBEEF into DATA frames of one stream:
 * each entry lists the number of type bytes per frame, the first frame being
 * the SYN (possibly empty). The last type frame also carries "hello".
 */
struct type_split {
	size_t parts[6];
	size_t nparts;
};

static const struct type_split type_splits[] = {
	{{4}, 1},          {{0, 4}, 2},       {{1, 3}, 2},
	{{2, 2}, 2},       {{3, 1}, 2},       {{1, 1, 1, 1}, 4},
	{{0, 2, 0, 2}, 4}, {{0, 0, 1, 2, 1}, 5}, {{2, 1, 0, 1}, 4},
};

static const uint8_t beef[4] = {0xDE, 0xAD, 0xBE, 0xEF};

/* Builds the frames of one split for stream `id`; *before_last is set to
 * the offset just before the last type byte. */
static void build_split(struct eh_bytes *b, uint32_t id,
			const struct type_split *sp, size_t *before_last)
{
	size_t used = 0;

	for (size_t i = 0; i < sp->nparts; i++) {
		uint8_t payload[16];
		size_t n = sp->parts[i];
		size_t start = b->len;

		memcpy(payload, beef + used, n);
		used += n;
		if (used == 4 && n && before_last)
			*before_last = start + MR_FRAME_HEADER_LEN + n - 1;
		if (i == sp->nparts - 1) {
			memcpy(payload + n, "hello", 5);
			n += 5;
		}
		eh_bytes_data(b, id, i == 0 ? MR_FLAG_SYN : 0, payload, n);
	}
	assert_int_equal(used, 4);
}

static void test_type_split_across_frames_and_chunks(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(type_splits) / sizeof(type_splits[0]);
	     k++) {
		for (size_t c = 0; c < NCHUNKS; c++) {
			struct eh *h = typed_eh(MR_ROLE_SERVER);
			struct eh_bytes b = {0};
			size_t before_last = 0;

			build_split(&b, 3, &type_splits[k], &before_last);
			eh_bytes_data(&b, 3, 0, "world", 5);
			eh_bytes_data(&b, 3, MR_FLAG_FIN, NULL, 0);
			/* Up to the last type byte: nothing for the app. */
			assert_int_equal(eh_feed(h, b.p, before_last,
						 chunk_sizes[c]), 0);
			assert_int_equal(h->nev, 0);
			assert_int_equal(eh_feed(h, b.p + before_last,
						 b.len - before_last,
						 chunk_sizes[c]), 0);
			assert_int_equal(accepted_once(h, 3)->ev.stream_type,
					 0xDEADBEEFu);
			assert_accepted_first(h, 3);
			eh_assert_data(h, 3, S("helloworld"));
			assert_int_equal(eh_count(h, MR_EV_EOF, 3), 1);
			assert_int_equal(emitted_count(h, MR_FRAME_RST, 3), 0);
			eh_bytes_free(&b);
			eh_free(h);
		}
	}
}

/* Two streams whose type bytes interleave: each keeps its own. */
static void test_interleaved_streams_keep_their_own_type(void **state)
{
	(void)state;
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh *h = typed_eh(MR_ROLE_SERVER);
		struct eh_bytes b = {0};

		eh_bytes_data(&b, 3, MR_FLAG_SYN, "\x00\x00", 2);
		eh_bytes_data(&b, 5, MR_FLAG_SYN, "\x00\x00\x00\x05" "five", 8);
		eh_bytes_data(&b, 3, 0, "\x00\x03", 2);
		eh_bytes_data(&b, 7, MR_FLAG_SYN, "\x00\x00\x00", 3);
		eh_bytes_data(&b, 3, 0, "three", 5);
		eh_bytes_data(&b, 7, 0, "\x07" "seven", 6);
		assert_int_equal(eh_feed_bytes(h, &b, chunk_sizes[c]), 0);
		assert_true(h->nev > 0);
		assert_int_equal(h->ev[0].ev.type, MR_EV_STREAM_ACCEPTED);
		assert_int_equal(h->ev[0].id, 5);
		assert_int_equal(accepted_once(h, 5)->ev.stream_type, 5);
		assert_int_equal(accepted_once(h, 3)->ev.stream_type, 3);
		assert_int_equal(accepted_once(h, 7)->ev.stream_type, 7);
		assert_accepted_first(h, 3);
		assert_accepted_first(h, 5);
		assert_accepted_first(h, 7);
		eh_assert_data(h, 3, S("three"));
		eh_assert_data(h, 5, S("five"));
		eh_assert_data(h, 7, S("seven"));
		eh_bytes_free(&b);
		eh_free(h);
	}
}

/* SYN|FIN with exactly the 4 type bytes: accepted, then EOF, no data. */
static void test_fin_with_the_fourth_type_byte(void **state)
{
	(void)state;
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh *h = typed_eh(MR_ROLE_SERVER);
		struct eh_bytes b = {0};

		eh_bytes_data(&b, 3, MR_FLAG_SYN, "\x00\x00", 2);
		eh_bytes_data(&b, 3, MR_FLAG_FIN, "\x00\x09", 2);
		assert_int_equal(eh_feed_bytes(h, &b, chunk_sizes[c]), 0);
		assert_int_equal(accepted_once(h, 3)->ev.stream_type, 9);
		assert_int_equal(eh_count(h, MR_EV_DATA, 3), 0);
		assert_int_equal(eh_count(h, MR_EV_EOF, 3), 1);
		assert_accepted_first(h, 3);
		eh_bytes_free(&b);
		eh_free(h);
	}
}

/*
 * The stream ends before its 4 type bytes are in: no acceptor can serve it.
 * The application never hears of it, the session goes on, and the stream's
 * accept-backlog slot is free again (backlog 1: the next typed stream is
 * accepted, not refused with AcceptQueueFull).
 */
static void feed_early_end_then_next_stream(const struct eh_bytes *early,
					    size_t chunk)
{
	struct mr_config cfg = typed_config();
	struct eh *h;
	struct eh_bytes next = {0};

	cfg.accept_backlog = 1;
	h = eh_new(MR_ROLE_SERVER, &cfg);
	h->auto_accept = false;
	assert_int_equal(eh_feed_bytes(h, early, chunk), 0);
	assert_int_equal(app_events(h, 3), 0);
	assert_int_equal(h->nev, 0);
	assert_false(mr_session_ended(h->sess));
	/* Whatever the stream got back, it was not an accept-queue refusal. */
	assert_int_equal(rst_count(h, 3, MUXRING_ACCEPT_QUEUE_FULL), 0);

	eh_bytes_data(&next, 5, MR_FLAG_SYN, "\x00\x00\x00\x05" "ok", 6);
	assert_int_equal(eh_feed_bytes(h, &next, chunk), 0);
	assert_int_equal(accepted_once(h, 5)->ev.stream_type, 5);
	eh_assert_data(h, 5, S("ok"));
	assert_int_equal(rst_count(h, 5, MUXRING_ACCEPT_QUEUE_FULL), 0);
	assert_int_equal(app_events(h, 3), 0);
	eh_bytes_free(&next);
	eh_free(h);
}

static void test_fin_before_type_is_complete(void **state)
{
	(void)state;
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh_bytes b = {0};

		/* SYN|FIN, empty. */
		eh_bytes_data(&b, 3, MR_FLAG_SYN | MR_FLAG_FIN, NULL, 0);
		feed_early_end_then_next_stream(&b, chunk_sizes[c]);
		eh_bytes_free(&b);

		/* SYN|FIN with 3 of the 4 bytes. */
		eh_bytes_data(&b, 3, MR_FLAG_SYN | MR_FLAG_FIN, "\x00\x00\x00", 3);
		feed_early_end_then_next_stream(&b, chunk_sizes[c]);
		eh_bytes_free(&b);

		/* SYN with 2 bytes, 1 more, then an empty FIN. */
		eh_bytes_data(&b, 3, MR_FLAG_SYN, "\x00\x00", 2);
		eh_bytes_data(&b, 3, 0, "\x00", 1);
		eh_bytes_data(&b, 3, MR_FLAG_FIN, NULL, 0);
		feed_early_end_then_next_stream(&b, chunk_sizes[c]);
		eh_bytes_free(&b);
	}
}

/* The peer resets the stream before its type is complete: same outcome. */
static void test_rst_before_type_is_complete(void **state)
{
	(void)state;
	for (size_t c = 0; c < NCHUNKS; c++) {
		struct eh_bytes b = {0};

		eh_bytes_data(&b, 3, MR_FLAG_SYN, "\xff\xff", 2);
		eh_bytes_rst(&b, 3, MUXRING_STREAM_CANCELLED);
		feed_early_end_then_next_stream(&b, chunk_sizes[c]);
		eh_bytes_free(&b);
	}
}

/*
 * The type bytes are received data for flow control: the peer may send
 * exactly one window including them, and once the application has read the
 * rest, the WNDINC grants the whole window back (type bytes included). One
 * byte beyond the window costs the stream an RST FlowControlError.
 */
static void test_type_bytes_use_receive_window(void **state)
{
	const size_t len = MR_INITIAL_WINDOW - 4;
	uint8_t *data = pattern(4 + len + 1, 9);
	struct eh_bytes b = {0};
	struct eh *h = typed_eh(MR_ROLE_SERVER);
	struct eh_frames f;

	(void)state;
	memcpy(data, beef, 4);
	eh_bytes_data(&b, 3, MR_FLAG_SYN, beef, 4);
	eh_bytes_data(&b, 3, 0, data + 4, len);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	assert_int_equal(accepted_once(h, 3)->ev.stream_type, 0xDEADBEEFu);
	eh_assert_data(h, 3, data + 4, len);
	assert_int_equal(rst_count(h, 3, MUXRING_FLOW_CONTROL_ERROR), 0);
	eh_release(h, 3, SIZE_MAX);
	eh_tx_frames(h, &f);
	assert_int_equal(eh_frames_wndinc_sum(&f, 3), MR_INITIAL_WINDOW);
	eh_frames_free(&f);
	eh_free(h);
	eh_bytes_free(&b);

	/* One byte too many: the window was 262144 including the type. */
	h = typed_eh(MR_ROLE_SERVER);
	eh_bytes_data(&b, 3, MR_FLAG_SYN, beef, 4);
	eh_bytes_data(&b, 3, 0, data + 4, len + 1);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	assert_int_equal(rst_count(h, 3, MUXRING_FLOW_CONTROL_ERROR), 1);
	assert_false(mr_session_ended(h->sess));
	eh_free(h);
	eh_bytes_free(&b);
	free(data);
}

/* ---- two typed engines ------------------------------------------------------ */

static size_t one_byte(void *ctx)
{
	(void)ctx;
	return 1;
}

/* Streams both ways between two typed engines, the wire one byte a call. */
static void test_two_typed_engines_both_directions(void **state)
{
	struct eh *c = typed_eh(MR_ROLE_CLIENT);
	struct eh *s = typed_eh(MR_ROLE_SERVER);
	struct eh_pipe p = {.a = c, .b = s, .chunk = one_byte};
	struct mr_stream *cs = open_typed(c, 0x11111111u, 3);
	struct mr_stream *ss = open_typed(s, 0x22222222u, 2);

	(void)state;
	/* Stream 5 stays empty: its SYN carries the type alone. */
	open_typed(c, 0x33333333u, 5);
	assert_int_equal(eh_write(cs, S("from client"), 1), 0);
	assert_int_equal(mr_stream_close_write(cs), 0);
	assert_int_equal(eh_write(ss, S("from server"), 2), 0);
	eh_pipe_run(&p);
	assert_int_equal(accepted_once(s, 3)->ev.stream_type, 0x11111111u);
	assert_int_equal(accepted_once(s, 5)->ev.stream_type, 0x33333333u);
	assert_int_equal(accepted_once(c, 2)->ev.stream_type, 0x22222222u);
	eh_assert_data(s, 3, S("from client"));
	assert_int_equal(eh_count(s, MR_EV_EOF, 3), 1);
	eh_assert_data(s, 5, "", 0);
	eh_assert_data(c, 2, S("from server"));
	assert_accepted_first(s, 3);
	assert_accepted_first(c, 2);
	eh_free(c);
	eh_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_sends_type_in_syn_frame_at_once),
		cmocka_unit_test(test_first_write_follows_type_in_syn_frame),
		cmocka_unit_test(test_close_write_before_pump_sends_type_then_fin),
		cmocka_unit_test(test_type_bytes_use_send_window),
		cmocka_unit_test(test_untyped_open_sends_nothing_and_no_type),
		cmocka_unit_test(test_the_heartbeat_type_cannot_be_opened_by_the_application),
		cmocka_unit_test(test_vector_client_bytes_into_typed_server),
		cmocka_unit_test(test_vector_typed_client_writes_go_frames),
		cmocka_unit_test(test_vector_typed_server_writes_go_frames),
		cmocka_unit_test(test_vector_client_bytes_into_untyped_server),
		cmocka_unit_test(test_type_split_across_frames_and_chunks),
		cmocka_unit_test(test_interleaved_streams_keep_their_own_type),
		cmocka_unit_test(test_fin_with_the_fourth_type_byte),
		cmocka_unit_test(test_fin_before_type_is_complete),
		cmocka_unit_test(test_rst_before_type_is_complete),
		cmocka_unit_test(test_type_bytes_use_receive_window),
		cmocka_unit_test(test_two_typed_engines_both_directions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
