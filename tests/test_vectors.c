/*
 * test_vectors.c - the engine against the golden captures of the Go
 * reference implementation (tests/vectors, see its README.md and the
 * scenario .txt files).
 *
 * For every scenario and both sides: the bytes one Go side wrote are fed,
 * whole, one byte at a time and in 7-byte chunks, into our engine playing
 * the OTHER side, which performs the same application steps as the Go
 * program did; the test asserts the outcome the .txt describes (ids, data
 * and EOF delivered, RST codes, GOAWAY code, last id and debug text, the
 * session's final result).
 *
 * Where the scenario is deterministic, the frames our engine emits are also
 * compared byte for byte with what the Go side emitted in the same role,
 * except WNDINC frames (their timing is ours: we coalesce, Go grants per
 * read), with these documented differences of our engine:
 *   - a GOAWAY sent while the session stays open is followed by an empty
 *     frame of an unknown type (PROTOCOL.md compatibility note: it keeps a
 *     Go receiver, which over-reads GOAWAY debug by 8 bytes, in sync);
 *   - SYN never rides with FIN (open-syn-fin-empty: Go sends one SYN|FIN
 *     frame, we send an empty SYN and then an empty FIN);
 *   - close() after close_write() sends no second FIN
 *     (close-after-closewrite); a second FIN from Go is ignored;
 *   - DATA frames are cut at max_frame_payload (window-wndinc sets it to
 *     0xFFFFFF so that the frames match Go's).
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
#include "vec_load.h"

/* Every outcome test runs with each of these input chunk sizes (0: the
 * whole captured range in one buffer). */
static const size_t chunk_sizes[] = {0, 1, 7};
#define NCHUNKS (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))

#define S(str) (str), (sizeof(str) - 1)

/* Feeds frames [first, first + count) of a captured side. */
static void feed_frames(struct eh *h, const struct vec_side *side,
			size_t first, size_t count, size_t chunk)
{
	size_t start, end;

	assert_true(first + count <= side->nframes);
	if (count == 0)
		return;
	start = side->frames[first].offset;
	end = side->frames[first + count - 1].offset +
	      side->frames[first + count - 1].raw_len;
	assert_int_equal(eh_feed(h, side->bytes + start, end - start, chunk), 0);
}

static void feed_all(struct eh *h, const struct vec_side *side, size_t chunk)
{
	feed_frames(h, side, 0, side->nframes, chunk);
}

/*
 * Removes the empty unknown-type frame our engine puts right after a
 * GOAWAY that does not end the session; returns how many were removed.
 */
static size_t strip_goaway_pads(struct eh_frames *f)
{
	size_t w = 0, removed = 0;

	for (size_t r = 0; r < f->n; r++) {
		if (r > 0 && f->v[r - 1].hdr.type == MR_FRAME_GOAWAY &&
		    f->v[r].hdr.type > MR_FRAME_GOAWAY &&
		    f->v[r].hdr.length == 0) {
			removed++;
			continue;
		}
		f->v[w++] = f->v[r];
	}
	f->n = w;
	return removed;
}

/*
 * Compares what our engine emitted with what the Go side in the same role
 * wrote, WNDINC frames left out on both sides; `pads` is the number of
 * GOAWAY pad frames our engine must have added.
 */
static void assert_same_frames_as_go(struct eh *h, const struct vec_side *go,
				     size_t pads, const char *what)
{
	struct eh_frames ours, theirs;

	eh_tx_frames(h, &ours);
	eh_frames_parse(go->bytes, go->len, &theirs);
	eh_frames_drop_type(&ours, MR_FRAME_WNDINC);
	eh_frames_drop_type(&theirs, MR_FRAME_WNDINC);
	assert_int_equal(strip_goaway_pads(&ours), pads);
	eh_assert_frames_equal(&ours, &theirs, what);
	eh_frames_free(&ours);
	eh_frames_free(&theirs);
}

static void assert_remote_goaway(struct eh *h, uint32_t code, uint32_t last,
				 const char *debug)
{
	const struct mr_session_result *r = mr_session_result(h->sess);

	assert_true(r->remote_goaway);
	assert_int_equal(r->remote_code, code);
	assert_int_equal(r->remote_last_id, last);
	assert_int_equal(r->remote_debug_len, strlen(debug));
	assert_memory_equal(r->remote_debug, debug, strlen(debug));
}

static void assert_no_remote_goaway(struct eh *h)
{
	assert_false(mr_session_result(h->sess)->remote_goaway);
}

/* The peer closed TCP: the session ends with PeerEOF. */
static void end_with_peer_eof(struct eh *h)
{
	assert_false(mr_session_ended(h->sess));
	mr_session_recv_end(h->sess, 0);
	eh_poll(h);
	eh_assert_ended(h);
	assert_int_equal(mr_session_result(h->sess)->local_error,
			 MUXRING_ERR(MUXRING_PEER_EOF));
}

/* Like a Go Session.Close(): GOAWAY(NoError, "no error"). */
static void close_like_go(struct eh *h)
{
	assert_int_equal(mr_session_close(h->sess, MUXRING_NO_ERROR,
					  S("no error")), 0);
	eh_flush(h);
	eh_assert_ended(h);
	assert_int_equal(mr_session_result(h->sess)->local_error,
			 MUXRING_ERR(MUXRING_SESSION_CLOSED));
	assert_true(mr_session_done(h->sess));
}

static struct mr_stream *open_expect(struct eh *h, uint32_t id)
{
	struct mr_stream *s = eh_open(h);

	assert_int_equal(mr_stream_id(s), id);
	return s;
}

static void write_flush(struct eh *h, struct mr_stream *s, const void *data,
			size_t len, uint64_t ud)
{
	assert_int_equal(eh_write(s, data, len, ud), 0);
	eh_flush(h);
}

static void close_write_flush(struct eh *h, struct mr_stream *s)
{
	assert_int_equal(mr_stream_close_write(s), 0);
	eh_flush(h);
}

/* The data of `id` is complete and followed by exactly one EOF. */
static void assert_data_then_eof(struct eh *h, uint32_t id, const void *want,
				 size_t len)
{
	struct eh_ev *eof;

	eh_assert_data(h, id, want, len);
	assert_int_equal(eh_count(h, MR_EV_EOF, id), 1);
	eof = eh_find(h, MR_EV_EOF, id, 0);
	for (size_t i = 0; i < h->nev; i++)
		if (h->ev[i].ev.type == MR_EV_DATA && h->ev[i].id == id)
			assert_true(h->ev[i].seq < eof->seq);
}

struct sides {
	struct vec_side client, server;
};

static void load_sides(const char *name, struct sides *s)
{
	vec_must_load(name, "client", &s->client);
	vec_must_load(name, "server", &s->server);
}

static void free_sides(struct sides *s)
{
	vec_side_free(&s->client);
	vec_side_free(&s->server);
}

/* ---- (a) hello-echo ------------------------------------------------------ */

static void hello_echo_as_client(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = open_expect(h, 3);

	assert_int_equal(eh_flush(h), 0); /* opening sends nothing */
	write_flush(h, s, S("hello"), 1);
	close_write_flush(h, s);
	feed_all(h, &v->server, chunk);
	assert_data_then_eof(h, 3, S("hello"));
	assert_int_equal(eh_write_result(h, 1), 5);
	eh_release(h, 3, SIZE_MAX);
	eh_flush(h);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	close_like_go(h);
	assert_no_remote_goaway(h);
	assert_same_frames_as_go(h, &v->client, 0, "hello-echo client");
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

static void hello_echo_as_server(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *s;

	feed_frames(h, &v->client, 0, 2, chunk); /* SYN "hello", FIN */
	s = eh_accepted(h, 3);
	assert_non_null(s);
	assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED, EH_ANY), 1);
	assert_data_then_eof(h, 3, S("hello"));
	eh_release(h, 3, SIZE_MAX);
	write_flush(h, s, S("hello"), 1);
	close_write_flush(h, s);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	feed_frames(h, &v->client, 2, 2, chunk); /* WNDINC, GOAWAY */
	assert_remote_goaway(h, MUXRING_NO_ERROR, 0, "no error");
	/* A WNDINC for a finished stream is not answered. */
	assert_same_frames_as_go(h, &v->server, 0, "hello-echo server");
	end_with_peer_eof(h);
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

/* ---- (b) stream-ids ------------------------------------------------------ */

static const char *const client_msgs[] = {
	"client stream #1", "client stream #2", "client stream #3",
};
static const char *const server_msgs[] = {
	"server stream #1", "server stream #2",
};

static void stream_ids_as_client(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s[3];
	char ack[64];

	for (int i = 0; i < 3; i++)
		s[i] = open_expect(h, (uint32_t)(3 + 2 * i));
	assert_int_equal(eh_flush(h), 0);
	for (int i = 0; i < 3; i++) {
		write_flush(h, s[i], client_msgs[i], strlen(client_msgs[i]),
			    (uint64_t)i);
		close_write_flush(h, s[i]);
	}
	feed_frames(h, &v->server, 0, 9, chunk); /* the three answers */
	for (int i = 0; i < 3; i++) {
		snprintf(ack, sizeof(ack), "ack:%s", client_msgs[i]);
		assert_data_then_eof(h, (uint32_t)(3 + 2 * i), ack, strlen(ack));
		assert_int_equal(eh_closed_code(h, (uint32_t)(3 + 2 * i)),
				 MUXRING_NO_ERROR);
	}
	feed_frames(h, &v->server, 9, 4, chunk); /* server opens 2 and 4 */
	assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED, EH_ANY), 2);
	assert_int_equal(eh_find(h, MR_EV_STREAM_ACCEPTED, EH_ANY, 0)->id, 2);
	assert_int_equal(eh_find(h, MR_EV_STREAM_ACCEPTED, EH_ANY, 1)->id, 4);
	for (int i = 0; i < 2; i++) {
		uint32_t id = (uint32_t)(2 + 2 * i);
		struct mr_stream *a = eh_accepted(h, id);

		assert_data_then_eof(h, id, server_msgs[i],
				     strlen(server_msgs[i]));
		snprintf(ack, sizeof(ack), "ack:%s", server_msgs[i]);
		write_flush(h, a, ack, strlen(ack), 10 + (uint64_t)i);
		close_write_flush(h, a);
		assert_int_equal(eh_closed_code(h, id), MUXRING_NO_ERROR);
	}
	eh_release(h, EH_ANY, SIZE_MAX);
	feed_frames(h, &v->server, 13, 2, chunk); /* WNDINCs */
	close_like_go(h);
	assert_same_frames_as_go(h, &v->client, 0, "stream-ids client");
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

static void stream_ids_as_server(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *s[2];
	char ack[64];

	feed_frames(h, &v->client, 0, 6, chunk);
	assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED, EH_ANY), 3);
	for (int i = 0; i < 3; i++) {
		uint32_t id = (uint32_t)(3 + 2 * i);
		struct mr_stream *a = eh_accepted(h, id);

		assert_int_equal(eh_find(h, MR_EV_STREAM_ACCEPTED, EH_ANY,
					 (size_t)i)->id, id);
		assert_data_then_eof(h, id, client_msgs[i],
				     strlen(client_msgs[i]));
		snprintf(ack, sizeof(ack), "ack:%s", client_msgs[i]);
		write_flush(h, a, ack, strlen(ack), (uint64_t)i);
		close_write_flush(h, a);
	}
	eh_release(h, EH_ANY, SIZE_MAX);
	for (int i = 0; i < 2; i++)
		s[i] = open_expect(h, (uint32_t)(2 + 2 * i));
	assert_int_equal(eh_flush(h), 0);
	for (int i = 0; i < 2; i++) {
		write_flush(h, s[i], server_msgs[i], strlen(server_msgs[i]),
			    10 + (uint64_t)i);
		close_write_flush(h, s[i]);
	}
	feed_frames(h, &v->client, 6, 10, chunk); /* acks, then GOAWAY */
	for (int i = 0; i < 2; i++) {
		snprintf(ack, sizeof(ack), "ack:%s", server_msgs[i]);
		assert_data_then_eof(h, (uint32_t)(2 + 2 * i), ack, strlen(ack));
	}
	for (uint32_t id = 2; id <= 7; id++)
		if (id != 6)
			assert_int_equal(eh_closed_code(h, id), MUXRING_NO_ERROR);
	assert_remote_goaway(h, MUXRING_NO_ERROR, 4, "no error");
	assert_same_frames_as_go(h, &v->server, 0, "stream-ids server");
	end_with_peer_eof(h);
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

/* ---- (c) window-wndinc ----------------------------------------------------- */

#define WW_TOTAL 307200u

static uint8_t *pattern_251(size_t len, size_t start)
{
	uint8_t *p = malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((start + i) % 251);
	return p;
}

static void window_wndinc_as_client(const struct sides *v, size_t chunk)
{
	struct mr_config cfg;
	struct eh *h;
	struct mr_stream *s;
	uint8_t *pat = pattern_251(WW_TOTAL, 0);
	struct eh_frames f;

	mr_config_default(&cfg);
	cfg.max_frame_payload = MR_FRAME_MAX_LEN; /* frames as big as Go's */
	h = eh_new(MR_ROLE_CLIENT, &cfg);
	s = open_expect(h, 3);
	write_flush(h, s, pat, WW_TOTAL, 1);
	/* One frame carrying exactly the peer's 256 KiB window, then block. */
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(h->tx_len, v->client.frames[0].raw_len);
	assert_memory_equal(h->tx, v->client.frames[0].raw, h->tx_len);
	eh_frames_free(&f);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);
	feed_frames(h, &v->server, 0, 1, chunk); /* WNDINC 65536 */
	eh_flush(h);
	assert_int_equal(eh_write_result(h, 1), WW_TOTAL);
	close_write_flush(h, s);
	feed_frames(h, &v->server, 1, 6, chunk);
	assert_data_then_eof(h, 3, S("got 307200 bytes"));
	eh_release(h, 3, SIZE_MAX);
	close_like_go(h);
	assert_same_frames_as_go(h, &v->client, 0, "window-wndinc client");
	free(pat);
	eh_free(h);
}

/* Every WNDINC we sent covers at least a quarter of the window, nothing
 * is granted that was not consumed, and while the peer may still send
 * (`open`), what we have not granted back is less than a quarter. */
static void assert_wndinc_coalesced(struct eh *h, uint32_t id,
				    uint64_t consumed, bool open)
{
	struct eh_frames f;
	uint64_t granted;

	eh_tx_frames(h, &f);
	granted = eh_frames_wndinc_sum(&f, id);
	for (size_t i = 0; i < f.n; i++)
		if (f.v[i].hdr.type == MR_FRAME_WNDINC)
			assert_true(mr_frame_wndinc_increment(f.v[i].body) >=
				    MR_INITIAL_WINDOW / 4);
	if (granted > consumed ||
	    (open && consumed - granted >= MR_INITIAL_WINDOW / 4)) {
		print_error("stream %u: %llu bytes consumed, %llu granted back "
			    "by WNDINC\n", id, (unsigned long long)consumed,
			    (unsigned long long)granted);
		fail();
	}
	eh_frames_free(&f);
}

static void window_wndinc_as_server(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *s;
	uint8_t *pat = pattern_251(WW_TOTAL, 0);
	struct eh_frames f;

	feed_frames(h, &v->client, 0, 1, chunk); /* 262144 bytes with SYN */
	s = eh_accepted(h, 3);
	assert_non_null(s);
	assert_int_equal(eh_data(h, 3, NULL, 0), MR_INITIAL_WINDOW);
	/* Nothing is granted back before the application consumes. */
	eh_tx_frames(h, &f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_WNDINC, EH_ANY), 0);
	eh_frames_free(&f);
	eh_release(h, 3, SIZE_MAX);
	assert_wndinc_coalesced(h, 3, MR_INITIAL_WINDOW, true);
	feed_frames(h, &v->client, 1, 2, chunk); /* the rest, FIN */
	assert_data_then_eof(h, 3, pat, WW_TOTAL);
	eh_release(h, 3, SIZE_MAX);
	assert_wndinc_coalesced(h, 3, WW_TOTAL, false);
	write_flush(h, s, S("got 307200 bytes"), 1);
	close_write_flush(h, s);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	feed_frames(h, &v->client, 3, 2, chunk); /* WNDINC 16, GOAWAY */
	assert_remote_goaway(h, MUXRING_NO_ERROR, 0, "no error");
	assert_same_frames_as_go(h, &v->server, 0, "window-wndinc server");
	end_with_peer_eof(h);
	free(pat);
	eh_free(h);
}

/* ---- (d) rst-stream-closed ----------------------------------------------- */

static void rst_stream_closed_as_client(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = open_expect(h, 3), *s5;

	write_flush(h, s, S("first"), 1);
	feed_frames(h, &v->server, 0, 2, chunk); /* WNDINC, FIN */
	assert_data_then_eof(h, 3, "", 0);
	write_flush(h, s, S("more data"), 2);
	assert_int_equal(eh_write_result(h, 2), 9);
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 3), 0);
	feed_frames(h, &v->server, 2, 1, chunk); /* RST StreamClosed */
	assert_int_equal(eh_closed_code(h, 3), MUXRING_STREAM_CLOSED);
	assert_int_equal(eh_write(s, S("even more"), 3),
			 MUXRING_ERR(MUXRING_STREAM_CLOSED));
	/* The session is still usable. */
	s5 = open_expect(h, 5);
	write_flush(h, s5, S("still alive?"), 4);
	close_write_flush(h, s5);
	feed_frames(h, &v->server, 3, 3, chunk);
	assert_data_then_eof(h, 5, S("still alive?"));
	eh_release(h, EH_ANY, SIZE_MAX);
	assert_int_equal(eh_closed_code(h, 5), MUXRING_NO_ERROR);
	close_like_go(h);
	assert_same_frames_as_go(h, &v->client, 0, "rst-stream-closed client");
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

static void rst_stream_closed_as_server(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *s;

	feed_frames(h, &v->client, 0, 1, chunk); /* SYN "first" */
	s = eh_accepted(h, 3);
	assert_non_null(s);
	eh_assert_data(h, 3, S("first"));
	eh_release(h, 3, SIZE_MAX);
	assert_int_equal(mr_stream_close(s), 0);
	eh_flush(h);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	feed_frames(h, &v->client, 1, 1, chunk); /* "more data" */
	eh_assert_data(h, 3, S("first")); /* the late data is dropped */
	feed_frames(h, &v->client, 2, 2, chunk); /* stream 5: SYN, FIN */
	assert_data_then_eof(h, 5, S("still alive?"));
	write_flush(h, eh_accepted(h, 5), S("still alive?"), 1);
	close_write_flush(h, eh_accepted(h, 5));
	feed_frames(h, &v->client, 4, 2, chunk); /* WNDINC, GOAWAY */
	assert_remote_goaway(h, MUXRING_NO_ERROR, 0, "no error");
	/* S2 FIN of the close, S3 RST StreamClosed, stream 5's echo. */
	assert_same_frames_as_go(h, &v->server, 0, "rst-stream-closed server");
	end_with_peer_eof(h);
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

/* ---- (e) typed-stream, as plain data on untyped sessions ------------------ */

static const uint8_t type_bytes[4] = {0x12, 0x34, 0x56, 0x78};

static void typed_stream_as_client(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = open_expect(h, 3);

	write_flush(h, s, type_bytes, 4, 1);
	write_flush(h, s, S("typed hello"), 2);
	close_write_flush(h, s);
	feed_all(h, &v->server, chunk);
	assert_data_then_eof(h, 3, S("typed hello"));
	eh_release(h, 3, SIZE_MAX);
	close_like_go(h);
	assert_same_frames_as_go(h, &v->client, 0, "typed-stream client");
	eh_free(h);
}

static void typed_stream_as_server(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	const uint8_t want[] = {0x12, 0x34, 0x56, 0x78, 't', 'y', 'p', 'e',
				'd', ' ', 'h', 'e', 'l', 'l', 'o'};
	struct mr_stream *s;

	feed_frames(h, &v->client, 0, 3, chunk);
	s = eh_accepted(h, 3);
	assert_non_null(s);
	/* Untyped: the type is just the first 4 bytes of the data. */
	assert_data_then_eof(h, 3, want, sizeof(want));
	eh_release(h, 3, SIZE_MAX);
	write_flush(h, s, S("typed hello"), 1);
	close_write_flush(h, s);
	feed_frames(h, &v->client, 3, 2, chunk);
	assert_remote_goaway(h, MUXRING_NO_ERROR, 0, "no error");
	assert_same_frames_as_go(h, &v->server, 0, "typed-stream server");
	end_with_peer_eof(h);
	eh_free(h);
}

/* ---- (f) heartbeat, as plain data ------------------------------------------ */

static void heartbeat_as_client(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = open_expect(h, 3);
	uint8_t echoed[12];

	/* The client's type bytes and first value, as Go wrote them. */
	write_flush(h, s, vec_body(&v->client, 0), 4, 1);
	write_flush(h, s, vec_body(&v->client, 1), 4, 2);
	feed_all(h, &v->server, chunk);
	memcpy(echoed, vec_body(&v->server, 2), 4);
	memcpy(echoed + 4, vec_body(&v->server, 4), 4);
	memcpy(echoed + 8, vec_body(&v->server, 6), 4);
	eh_assert_data(h, 3, echoed, sizeof(echoed));
	assert_int_equal(eh_count(h, MR_EV_EOF, 3), 0);
	eh_release(h, 3, SIZE_MAX);
	close_like_go(h);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_SESSION_CLOSED);
	eh_free(h);
}

static void heartbeat_as_server(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	uint8_t want[16];

	feed_all(h, &v->client, chunk);
	memcpy(want, vec_body(&v->client, 0), 4);
	memcpy(want + 4, vec_body(&v->client, 1), 4);
	memcpy(want + 8, vec_body(&v->client, 3), 4);
	memcpy(want + 12, vec_body(&v->client, 5), 4);
	assert_memory_equal(want, "\xff\xff\xff\xff", 4);
	assert_non_null(eh_accepted(h, 3));
	eh_assert_data(h, 3, want, sizeof(want));
	assert_remote_goaway(h, MUXRING_NO_ERROR, 0, "no error");
	end_with_peer_eof(h);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_PEER_EOF);
	eh_free(h);
}

/* ---- (g) goaway-server ------------------------------------------------------ */

static const char maintenance[] = "server going away: maintenance";

static void goaway_server_as_client(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = open_expect(h, 3), *none = NULL;

	write_flush(h, s, S("req"), 1);
	close_write_flush(h, s);
	feed_frames(h, &v->server, 0, 3, chunk);
	assert_data_then_eof(h, 3, S("resp"));
	eh_release(h, 3, SIZE_MAX);
	eh_flush(h);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	feed_frames(h, &v->server, 3, 1, chunk); /* GOAWAY */
	assert_remote_goaway(h, MUXRING_ENHANCE_YOUR_CALM, 3, maintenance);
	assert_false(mr_session_ended(h->sess));
	/* Opening after the peer's GOAWAY fails locally, sending nothing. */
	eh_tx_clear(h);
	assert_int_equal(mr_session_open(h->sess, 0, &none),
			 MUXRING_ERR(MUXRING_REMOTE_GONE_AWAY));
	assert_int_equal(eh_flush(h), 0);
	end_with_peer_eof(h);
	assert_remote_goaway(h, MUXRING_ENHANCE_YOUR_CALM, 3, maintenance);
	eh_free(h);

	/* And the frames, on a fresh run: C1 "req" SYN, C2 FIN. */
	h = eh_new(MR_ROLE_CLIENT, NULL);
	s = open_expect(h, 3);
	write_flush(h, s, S("req"), 1);
	close_write_flush(h, s);
	feed_all(h, &v->server, chunk);
	eh_release(h, 3, SIZE_MAX);
	assert_same_frames_as_go(h, &v->client, 0, "goaway-server client");
	eh_free(h);
}

static void goaway_server_as_server(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *s;

	feed_frames(h, &v->client, 0, 2, chunk);
	s = eh_accepted(h, 3);
	assert_non_null(s);
	assert_data_then_eof(h, 3, S("req"));
	eh_release(h, 3, SIZE_MAX);
	write_flush(h, s, S("resp"), 1);
	close_write_flush(h, s);
	assert_int_equal(mr_session_goaway(h->sess, MUXRING_ENHANCE_YOUR_CALM,
					   maintenance, strlen(maintenance)), 0);
	eh_flush(h);
	/* GOAWAY(3, EnhanceYourCalm, debug) then our sync pad. */
	assert_same_frames_as_go(h, &v->server, 1, "goaway-server server");
	/* Sending GOAWAY does not stop this side from opening streams. */
	open_expect(h, 2);
	feed_frames(h, &v->client, 2, 1, chunk); /* WNDINC 4 */
	assert_false(mr_session_ended(h->sess));
	assert_no_remote_goaway(h);
	eh_free(h);
}

/* ---- (g2) goaway-debug-overread -------------------------------------------- */

static void goaway_debug_overread_as_client(const struct sides *v,
					    size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = open_expect(h, 3);
	struct eh_frames f;

	write_flush(h, s, S("req"), 1);
	feed_frames(h, &v->server, 0, 2, chunk); /* WNDINC, GOAWAY "bye" */
	assert_remote_goaway(h, MUXRING_NO_ERROR, 3, "bye");
	feed_frames(h, &v->server, 2, 2, chunk); /* "late reply", FIN */
	/* We parse the debug as length - 8 bytes: still in frame sync. */
	assert_data_then_eof(h, 3, S("late reply"));
	eh_release(h, 3, SIZE_MAX);
	/* Stream 3 is at or below the last id: it goes on. */
	write_flush(h, s, S("thanks"), 2);
	assert_int_equal(eh_write_result(h, 2), 6);
	feed_frames(h, &v->server, 4, 1, chunk); /* GOAWAY "no error" */
	/* The latest GOAWAY is the session's remote error. */
	assert_remote_goaway(h, MUXRING_NO_ERROR, 3, "no error");
	eh_tx_frames(h, &f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_RST, EH_ANY), 0);
	eh_frames_free(&f);
	end_with_peer_eof(h);
	eh_free(h);
}

static void goaway_debug_overread_as_server(const struct sides *v,
					    size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *s;

	feed_all(h, &v->client, chunk);
	s = eh_accepted(h, 3);
	assert_non_null(s);
	eh_assert_data(h, 3, S("req"));
	eh_release(h, 3, SIZE_MAX);
	assert_int_equal(mr_session_goaway(h->sess, 0, S("bye")), 0);
	eh_flush(h);
	write_flush(h, s, S("late reply"), 1);
	close_write_flush(h, s);
	assert_int_equal(mr_session_close(h->sess, 0, S("no error")), 0);
	eh_flush(h);
	/* The same bytes as Go, plus the pad after the first GOAWAY that
	 * keeps a Go client in sync; none after the closing one. */
	assert_same_frames_as_go(h, &v->server, 1, "goaway-debug-overread server");
	eh_free(h);
}

/* ---- (h) accept-backlog-overflow -------------------------------------------- */

static void accept_backlog_overflow_as_server(const struct sides *v,
					      size_t chunk)
{
	struct mr_config cfg;
	struct eh *h;
	struct mr_stream *s;

	mr_config_default(&cfg);
	cfg.accept_backlog = 1;
	h = eh_new(MR_ROLE_SERVER, &cfg);
	h->auto_accept = false;
	feed_frames(h, &v->client, 0, 4, chunk); /* four SYN "x" */
	assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED, EH_ANY), 1);
	s = eh_accepted(h, 3);
	assert_non_null(s);
	for (uint32_t id = 5; id <= 9; id += 2)
		assert_int_equal(eh_count(h, MR_EV_DATA, id) +
				 eh_count(h, MR_EV_STREAM_ACCEPTED, id) +
				 eh_count(h, MR_EV_STREAM_CLOSED, id), 0);
	mr_session_accept_done(h->sess);
	eh_assert_data(h, 3, S("x"));
	eh_release(h, 3, SIZE_MAX);
	write_flush(h, s, S("x"), 1);
	close_write_flush(h, s);
	feed_frames(h, &v->client, 4, 3, chunk); /* FIN, WNDINC, GOAWAY */
	assert_data_then_eof(h, 3, S("x"));
	/* The client saw no stream of ours: its GOAWAY says last id 0. */
	assert_remote_goaway(h, MUXRING_NO_ERROR, 0, "no error");
	/* S1..S3: RST AcceptQueueFull for 5, 7, 9; then stream 3's echo. */
	assert_same_frames_as_go(h, &v->server, 0,
				 "accept-backlog-overflow server");
	end_with_peer_eof(h);
	eh_free(h);
}

static void accept_backlog_overflow_as_client(const struct sides *v,
					      size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s[4];

	for (int i = 0; i < 4; i++) {
		s[i] = open_expect(h, (uint32_t)(3 + 2 * i));
		write_flush(h, s[i], S("x"), (uint64_t)i);
	}
	feed_frames(h, &v->server, 0, 3, chunk); /* three RSTs */
	for (uint32_t id = 5; id <= 9; id += 2)
		assert_int_equal(eh_closed_code(h, id),
				 MUXRING_ACCEPT_QUEUE_FULL);
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 3), 0);
	for (int i = 1; i < 4; i++)
		assert_int_equal(eh_write(s[i], S("y"), 10),
				 MUXRING_ERR(MUXRING_ACCEPT_QUEUE_FULL));
	feed_frames(h, &v->server, 3, 3, chunk);
	assert_data_then_eof(h, 3, S("x"));
	eh_release(h, 3, SIZE_MAX);
	close_write_flush(h, s[0]);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	close_like_go(h);
	assert_same_frames_as_go(h, &v->client, 0,
				 "accept-backlog-overflow client");
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

/* ---- (i) open-syn-fin-empty ----------------------------------------------- */

static void open_syn_fin_empty_as_client(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = open_expect(h, 3);
	struct eh_frames f;
	const struct vec_frame *go = &v->client.frames[0];

	(void)chunk;
	assert_int_equal(v->server.nframes, 0);
	assert_int_equal(go->hdr.flags, MR_FLAG_SYN | MR_FLAG_FIN);
	close_write_flush(h, s);
	/* Go: one empty SYN|FIN frame. We: an empty SYN, then an empty FIN,
	 * so that a Go acceptor can still answer on the stream. */
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_DATA);
	assert_int_equal(f.v[0].hdr.flags, MR_FLAG_SYN);
	assert_int_equal(f.v[0].hdr.length, 0);
	assert_int_equal(f.v[0].hdr.stream_id, go->hdr.stream_id);
	assert_int_equal(f.v[1].hdr.type, MR_FRAME_DATA);
	assert_int_equal(f.v[1].hdr.flags, MR_FLAG_FIN);
	assert_int_equal(f.v[1].hdr.length, 0);
	assert_int_equal(f.v[1].hdr.stream_id, 3);
	eh_frames_free(&f);
	eh_tx_clear(h);
	close_like_go(h);
	/* The closing GOAWAY is Go's C2 byte for byte. */
	assert_int_equal(h->tx_len, v->client.frames[1].raw_len);
	assert_memory_equal(h->tx, v->client.frames[1].raw, h->tx_len);
	eh_free(h);
}

static void open_syn_fin_empty_as_server(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *s;
	struct eh_frames f;

	feed_frames(h, &v->client, 0, 1, chunk); /* SYN|FIN, empty */
	s = eh_accepted(h, 3);
	assert_non_null(s);
	assert_data_then_eof(h, 3, "", 0);
	/* Unlike Go, our acceptor can still answer. */
	write_flush(h, s, S("reply"), 1);
	assert_int_equal(eh_write_result(h, 1), 5);
	close_write_flush(h, s);
	eh_tx_frames(h, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_DATA);
	assert_int_equal(f.v[0].hdr.flags, 0);
	assert_int_equal(f.v[0].hdr.stream_id, 3);
	assert_int_equal(f.v[0].hdr.length, 5);
	assert_memory_equal(f.v[0].body, "reply", 5);
	assert_int_equal(f.v[1].hdr.flags, MR_FLAG_FIN);
	eh_frames_free(&f);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	feed_frames(h, &v->client, 1, 1, chunk); /* GOAWAY */
	assert_remote_goaway(h, MUXRING_NO_ERROR, 0, "no error");
	end_with_peer_eof(h);
	eh_free(h);
}

/* ---- (j) close-after-closewrite ---------------------------------------------- */

static void close_after_closewrite_as_client(const struct sides *v,
					     size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);
	struct mr_stream *s = open_expect(h, 3);
	size_t nev;

	write_flush(h, s, S("abc"), 1);
	close_write_flush(h, s);
	feed_frames(h, &v->server, 0, 2, chunk); /* WNDINC, FIN */
	assert_data_then_eof(h, 3, "", 0);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	nev = h->nev;
	feed_frames(h, &v->server, 2, 1, chunk); /* Go's second FIN */
	assert_int_equal(h->nev, nev);           /* ignored: no event */
	eh_tx_clear(h);
	mr_stream_close(s); /* already finished: sends nothing */
	assert_int_equal(eh_flush(h), 0);        /* and no RST either */
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 3), 1);
	eh_free(h);

	/* The frames: Go's C1, C2 and C4, without C3 (the second FIN). */
	h = eh_new(MR_ROLE_CLIENT, NULL);
	s = open_expect(h, 3);
	write_flush(h, s, S("abc"), 1);
	close_write_flush(h, s);
	feed_frames(h, &v->server, 0, 2, chunk);
	mr_stream_close(s);
	eh_flush(h);
	feed_frames(h, &v->server, 2, 1, chunk);
	close_like_go(h);
	{
		struct eh_frames go, ours;

		eh_frames_parse(v->client.bytes, v->client.len, &go);
		assert_int_equal(go.n, 4);
		/* Drop C3 from Go's list: we never send the second FIN. */
		assert_int_equal(go.v[2].hdr.flags, MR_FLAG_FIN);
		go.v[2] = go.v[3];
		go.n = 3;
		eh_frames_drop_type(&go, MR_FRAME_WNDINC);
		eh_tx_frames(h, &ours);
		eh_frames_drop_type(&ours, MR_FRAME_WNDINC);
		eh_assert_frames_equal(&ours, &go, "close-after-closewrite client");
		eh_frames_free(&go);
		eh_frames_free(&ours);
	}
	eh_free(h);
}

static void close_after_closewrite_as_server(const struct sides *v,
					     size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);
	struct mr_stream *s;
	struct eh_frames f;
	size_t nev;

	feed_frames(h, &v->client, 0, 2, chunk); /* "abc", FIN */
	s = eh_accepted(h, 3);
	assert_non_null(s);
	assert_data_then_eof(h, 3, S("abc"));
	eh_release(h, 3, SIZE_MAX);
	close_write_flush(h, s);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	nev = h->nev;
	feed_frames(h, &v->client, 2, 1, chunk); /* Go's second FIN */
	assert_int_equal(h->nev, nev);
	mr_stream_close(s);
	eh_flush(h);
	feed_frames(h, &v->client, 3, 1, chunk); /* GOAWAY */
	assert_remote_goaway(h, MUXRING_NO_ERROR, 0, "no error");
	/* Only S2 (our FIN): no second FIN, no RST for Go's second FIN. */
	eh_tx_frames(h, &f);
	eh_frames_drop_type(&f, MR_FRAME_WNDINC);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.length + 8, v->server.frames[1].raw_len);
	assert_memory_equal(f.v[0].raw, v->server.frames[1].raw, 8);
	eh_frames_free(&f);
	end_with_peer_eof(h);
	eh_free(h);
}

/* ---- (k) server-close-idle --------------------------------------------------- */

static void server_close_idle_as_server(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_SERVER, NULL);

	(void)chunk;
	assert_int_equal(v->client.nframes, 0);
	close_like_go(h);
	/* GOAWAY(last 1, NoError, "no error"): exactly Go's S1. */
	assert_same_frames_as_go(h, &v->server, 0, "server-close-idle server");
	eh_free(h);
}

static void server_close_idle_as_client(const struct sides *v, size_t chunk)
{
	struct eh *h = eh_new(MR_ROLE_CLIENT, NULL);

	feed_all(h, &v->server, chunk);
	assert_remote_goaway(h, MUXRING_NO_ERROR, 1, "no error");
	assert_int_equal(eh_flush(h), 0);
	end_with_peer_eof(h);
	/* And an idle client's own GOAWAY says last id 0. */
	eh_free(h);
	h = eh_new(MR_ROLE_CLIENT, NULL);
	close_like_go(h);
	{
		struct eh_frames f;

		eh_tx_frames(h, &f);
		assert_int_equal(f.n, 1);
		assert_int_equal(f.v[0].hdr.type, MR_FRAME_GOAWAY);
		assert_int_equal(mr_get_be32(f.v[0].body), 0);
		eh_frames_free(&f);
	}
	eh_free(h);
}

/* ---- the tests ------------------------------------------------------------- */

static void run_scenario(const char *name,
			 void (*fn)(const struct sides *v, size_t chunk))
{
	struct sides v;

	load_sides(name, &v);
	for (size_t i = 0; i < NCHUNKS; i++)
		fn(&v, chunk_sizes[i]);
	free_sides(&v);
}

#define SCENARIO_TEST(fn, name, side)                              \
	static void test_##fn(void **state)                        \
	{                                                          \
		(void)state;                                       \
		run_scenario(name, side);                          \
	}

SCENARIO_TEST(hello_echo_from_go_server_to_our_client_echoes_and_closes,
	      "hello-echo", hello_echo_as_client)
SCENARIO_TEST(hello_echo_from_go_client_to_our_server_echoes_and_closes,
	      "hello-echo", hello_echo_as_server)
SCENARIO_TEST(stream_ids_our_client_numbers_3_5_7_and_accepts_2_4,
	      "stream-ids", stream_ids_as_client)
SCENARIO_TEST(stream_ids_our_server_accepts_3_5_7_and_numbers_2_4,
	      "stream-ids", stream_ids_as_server)
SCENARIO_TEST(window_wndinc_our_client_sends_the_window_then_waits_for_wndinc,
	      "window-wndinc", window_wndinc_as_client)
SCENARIO_TEST(window_wndinc_our_server_receives_300k_and_grants_coalesced,
	      "window-wndinc", window_wndinc_as_server)
SCENARIO_TEST(rst_stream_closed_our_client_sees_code_4_and_goes_on,
	      "rst-stream-closed", rst_stream_closed_as_client)
SCENARIO_TEST(rst_stream_closed_our_server_answers_late_data_with_rst_4,
	      "rst-stream-closed", rst_stream_closed_as_server)
SCENARIO_TEST(typed_stream_as_plain_data_from_our_client,
	      "typed-stream", typed_stream_as_client)
SCENARIO_TEST(typed_stream_as_plain_data_to_our_server,
	      "typed-stream", typed_stream_as_server)
SCENARIO_TEST(heartbeat_echoes_reach_our_client_as_plain_data,
	      "heartbeat", heartbeat_as_client)
SCENARIO_TEST(heartbeat_values_reach_our_server_as_plain_data,
	      "heartbeat", heartbeat_as_server)
SCENARIO_TEST(goaway_server_our_client_keeps_code_and_debug_and_refuses_open,
	      "goaway-server", goaway_server_as_client)
SCENARIO_TEST(goaway_server_our_server_sends_last_id_3_code_and_debug,
	      "goaway-server", goaway_server_as_server)
SCENARIO_TEST(goaway_debug_overread_our_client_stays_in_frame_sync,
	      "goaway-debug-overread", goaway_debug_overread_as_client)
SCENARIO_TEST(goaway_debug_overread_our_server_pads_after_goaway,
	      "goaway-debug-overread", goaway_debug_overread_as_server)
SCENARIO_TEST(accept_backlog_overflow_our_server_refuses_with_rst_9,
	      "accept-backlog-overflow", accept_backlog_overflow_as_server)
SCENARIO_TEST(accept_backlog_overflow_our_client_fails_refused_streams,
	      "accept-backlog-overflow", accept_backlog_overflow_as_client)
SCENARIO_TEST(open_syn_fin_empty_our_client_never_puts_fin_on_syn,
	      "open-syn-fin-empty", open_syn_fin_empty_as_client)
SCENARIO_TEST(open_syn_fin_empty_our_server_can_still_answer,
	      "open-syn-fin-empty", open_syn_fin_empty_as_server)
SCENARIO_TEST(close_after_closewrite_our_client_sends_one_fin_and_ignores_the_second,
	      "close-after-closewrite", close_after_closewrite_as_client)
SCENARIO_TEST(close_after_closewrite_our_server_ignores_the_second_fin,
	      "close-after-closewrite", close_after_closewrite_as_server)
SCENARIO_TEST(server_close_idle_our_server_says_last_id_1,
	      "server-close-idle", server_close_idle_as_server)
SCENARIO_TEST(server_close_idle_our_client_keeps_the_goaway_then_sees_eof,
	      "server-close-idle", server_close_idle_as_client)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_echo_from_go_server_to_our_client_echoes_and_closes),
		cmocka_unit_test(test_hello_echo_from_go_client_to_our_server_echoes_and_closes),
		cmocka_unit_test(test_stream_ids_our_client_numbers_3_5_7_and_accepts_2_4),
		cmocka_unit_test(test_stream_ids_our_server_accepts_3_5_7_and_numbers_2_4),
		cmocka_unit_test(test_window_wndinc_our_client_sends_the_window_then_waits_for_wndinc),
		cmocka_unit_test(test_window_wndinc_our_server_receives_300k_and_grants_coalesced),
		cmocka_unit_test(test_rst_stream_closed_our_client_sees_code_4_and_goes_on),
		cmocka_unit_test(test_rst_stream_closed_our_server_answers_late_data_with_rst_4),
		cmocka_unit_test(test_typed_stream_as_plain_data_from_our_client),
		cmocka_unit_test(test_typed_stream_as_plain_data_to_our_server),
		cmocka_unit_test(test_heartbeat_echoes_reach_our_client_as_plain_data),
		cmocka_unit_test(test_heartbeat_values_reach_our_server_as_plain_data),
		cmocka_unit_test(test_goaway_server_our_client_keeps_code_and_debug_and_refuses_open),
		cmocka_unit_test(test_goaway_server_our_server_sends_last_id_3_code_and_debug),
		cmocka_unit_test(test_goaway_debug_overread_our_client_stays_in_frame_sync),
		cmocka_unit_test(test_goaway_debug_overread_our_server_pads_after_goaway),
		cmocka_unit_test(test_accept_backlog_overflow_our_server_refuses_with_rst_9),
		cmocka_unit_test(test_accept_backlog_overflow_our_client_fails_refused_streams),
		cmocka_unit_test(test_open_syn_fin_empty_our_client_never_puts_fin_on_syn),
		cmocka_unit_test(test_open_syn_fin_empty_our_server_can_still_answer),
		cmocka_unit_test(test_close_after_closewrite_our_client_sends_one_fin_and_ignores_the_second),
		cmocka_unit_test(test_close_after_closewrite_our_server_ignores_the_second_fin),
		cmocka_unit_test(test_server_close_idle_our_server_says_last_id_1),
		cmocka_unit_test(test_server_close_idle_our_client_keeps_the_goaway_then_sees_eof),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
