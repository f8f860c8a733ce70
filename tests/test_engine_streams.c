/*
 * test_engine_streams.c - the life of a stream in the engine, rule by rule
 * (PROTOCOL.md "Stream ids", "Stream life"; src/engine/session.h).
 *
 * Covers: id numbering (client 3, 5, 7, ...; server 2, 4, 6, ...); lazy SYN
 * (open sends nothing, the first write or close-write carries the SYN, SYN
 * never shares a frame with FIN); WRITE_DONE only once the transport took
 * the bytes; partial sends; accepting a peer's stream; DATA on an unknown
 * stream (RST StreamClosed, never fatal), empty FIN and RST on an unknown
 * stream ignored; RST from the peer (its code reaches the stream, pending
 * writes fail, nothing is sent back); half-close, close, close after
 * close-write (one FIN), reset; exactly one STREAM_CLOSED per stream, last;
 * unknown frame types skipped whole in any chunking; the reserved bit
 * ignored; byte-at-a-time input equivalent to one buffer; the accept backlog
 * (RST AcceptQueueFull, accept_done frees a slot); max_streams (RST
 * StreamRefused, local open fails); read and write deadlines through
 * mr_session_expire; views that outlive their session; counters.
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

static struct eh *server(void)
{
	return eh_new(MR_ROLE_SERVER, NULL);
}

static struct eh *client(void)
{
	return eh_new(MR_ROLE_CLIENT, NULL);
}

/* Feeds one hand-made DATA frame. */
static void feed_data(struct eh *h, uint32_t id, uint8_t flags,
		      const void *payload, size_t len)
{
	struct eh_bytes b = {0};

	eh_bytes_data(&b, id, flags, payload, len);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_bytes_free(&b);
}

static void feed_rst(struct eh *h, uint32_t id, uint32_t code)
{
	struct eh_bytes b = {0};

	eh_bytes_rst(&b, id, code);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_bytes_free(&b);
}

static void feed_wndinc(struct eh *h, uint32_t id, uint32_t inc)
{
	struct eh_bytes b = {0};

	eh_bytes_wndinc(&b, id, inc);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_bytes_free(&b);
}

/* Parses what was emitted since the last eh_tx_clear. */
static struct eh_frames frames_of(struct eh *h)
{
	struct eh_frames f;

	eh_tx_frames(h, &f);
	return f;
}

static void assert_no_frame_has_syn_and_fin(const struct eh_frames *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].hdr.type == MR_FRAME_DATA)
			assert_int_not_equal(f->v[i].hdr.flags & 3,
					     MR_FLAG_SYN | MR_FLAG_FIN);
}

/* ---- ids ------------------------------------------------------------------ */

static void test_a_client_numbers_its_streams_3_5_7(void **state)
{
	struct eh *h = client();

	(void)state;
	for (uint32_t want = 3; want <= 21; want += 2)
		assert_int_equal(mr_stream_id(eh_open(h)), want);
	eh_free(h);
}

static void test_a_server_numbers_its_streams_2_4_6(void **state)
{
	struct eh *h = server();

	(void)state;
	for (uint32_t want = 2; want <= 20; want += 2)
		assert_int_equal(mr_stream_id(eh_open(h)), want);
	eh_free(h);
}

/* ---- lazy SYN ---------------------------------------------------------- */

static void test_opening_a_stream_sends_nothing(void **state)
{
	struct eh *h = client();
	struct iovec iov[4];

	(void)state;
	eh_open(h);
	eh_open(h);
	assert_false(mr_session_tx_pending(h->sess));
	assert_int_equal(mr_session_tx_iov(h->sess, iov, 4, SIZE_MAX), 0);
	assert_int_equal(eh_flush(h), 0);
	assert_int_equal(h->nev, 0);
	eh_free(h);
}

static void test_the_first_write_carries_the_syn_and_later_ones_do_not(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(s, S("one"), 1), 0);
	eh_flush(h);
	assert_int_equal(eh_write(s, S("two"), 2), 0);
	eh_flush(h);
	f = frames_of(h);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_DATA);
	assert_int_equal(f.v[0].hdr.flags, MR_FLAG_SYN);
	assert_int_equal(f.v[0].hdr.stream_id, 3);
	assert_int_equal(f.v[0].hdr.length, 3);
	assert_memory_equal(f.v[0].body, "one", 3);
	assert_int_equal(f.v[1].hdr.flags, 0);
	assert_memory_equal(f.v[1].body, "two", 3);
	eh_frames_free(&f);
	eh_free(h);
}

static void test_close_write_without_data_sends_an_empty_syn_then_a_separate_fin(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;

	(void)state;
	assert_int_equal(mr_stream_close_write(s), 0);
	f = frames_of(h);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.v[0].hdr.flags, MR_FLAG_SYN);
	assert_int_equal(f.v[0].hdr.length, 0);
	assert_int_equal(f.v[1].hdr.flags, MR_FLAG_FIN);
	assert_int_equal(f.v[1].hdr.length, 0);
	assert_int_equal(f.v[1].hdr.stream_id, 3);
	eh_frames_free(&f);
	eh_free(h);
}

static void test_write_and_close_write_queued_together_keep_fin_off_the_syn_frame(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(s, S("abc"), 1), 0);
	assert_int_equal(mr_stream_close_write(s), 0);
	f = frames_of(h);
	assert_true(f.n >= 2);
	assert_int_equal(f.v[0].hdr.flags, MR_FLAG_SYN);
	assert_memory_equal(f.v[0].body, "abc", 3);
	assert_true(f.v[f.n - 1].hdr.flags & MR_FLAG_FIN);
	assert_no_frame_has_syn_and_fin(&f);
	eh_frames_free(&f);
	eh_free(h);
}

static void test_fin_on_a_later_frame_delivers_every_byte_then_eof_to_the_peer(void **state)
{
	struct eh *a = client(), *b = server();
	struct eh_pipe p = {.a = a, .b = b};
	struct mr_stream *s = eh_open(a);
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(s, S("first"), 1), 0);
	eh_flush(a);
	assert_int_equal(eh_write(s, S("second"), 2), 0);
	assert_int_equal(mr_stream_close_write(s), 0);
	eh_pipe_run(&p);
	f = frames_of(a);
	assert_no_frame_has_syn_and_fin(&f);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_DATA, 3) >= 2, 1);
	eh_frames_free(&f);
	eh_assert_data(b, 3, S("firstsecond"));
	assert_int_equal(eh_count(b, MR_EV_EOF, 3), 1);
	eh_free(a);
	eh_free(b);
}

static void test_a_zero_length_write_completes_once_the_syn_is_out(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(s, "", 0, 7), 0);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);
	f = frames_of(h);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.flags, MR_FLAG_SYN);
	assert_int_equal(f.v[0].hdr.length, 0);
	eh_frames_free(&f);
	assert_int_equal(eh_write_result(h, 7), 0);
	eh_free(h);
}

static void test_a_stream_opened_later_may_write_first(void **state)
{
	struct eh *a = client(), *b = server();
	struct eh_pipe p = {.a = a, .b = b};
	struct mr_stream *s3 = eh_open(a), *s5 = eh_open(a);

	(void)state;
	/* The SYN is lazy, so 5 can be announced before 3: both must work
	 * (PROTOCOL.md lists no ordering rule for SYNs). */
	assert_int_equal(eh_write(s5, S("five"), 5), 0);
	eh_pipe_run(&p);
	assert_int_equal(eh_write(s3, S("three"), 3), 0);
	eh_pipe_run(&p);
	assert_false(mr_session_ended(b->sess));
	assert_false(mr_session_ended(a->sess));
	eh_assert_data(b, 5, S("five"));
	eh_assert_data(b, 3, S("three"));
	assert_int_equal(eh_count(b, MR_EV_STREAM_ACCEPTED, EH_ANY), 2);
	eh_free(a);
	eh_free(b);
}

/* ---- writes and the transport ---------------------------------------------- */

static void test_write_done_comes_only_after_the_transport_took_every_byte(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct mr_buf *buf = mr_buf_new_copy("hello", 5);
	struct iovec iov[8];
	size_t n, total = 0;

	(void)state;
	assert_int_equal(mr_stream_write(s, buf, buf->data, 5, 42), 0);
	/* The engine holds the caller's buffer until WRITE_DONE. */
	assert_true(buf->refs >= 2);
	n = mr_session_tx_iov(h->sess, iov, 8, SIZE_MAX);
	assert_true(n > 0);
	for (size_t i = 0; i < n; i++)
		total += iov[i].iov_len;
	assert_int_equal(total, 8 + 5);
	mr_session_tx_advance(h->sess, 10);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);
	assert_true(buf->refs >= 2);
	mr_session_tx_advance(h->sess, 3);
	eh_poll(h);
	assert_int_equal(eh_write_result(h, 42), 5);
	assert_int_equal(buf->refs, 1);
	mr_buf_unref(buf);
	eh_free(h);
}

static void test_tx_iov_offers_the_same_bytes_again_until_they_are_advanced(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct iovec a[1], b[1];
	uint8_t first[64];

	(void)state;
	assert_int_equal(eh_write(s, S("payload"), 1), 0);
	assert_int_equal(mr_session_tx_iov(h->sess, a, 1, SIZE_MAX), 1);
	assert_true(a[0].iov_len <= sizeof(first));
	memcpy(first, a[0].iov_base, a[0].iov_len);
	assert_int_equal(mr_session_tx_iov(h->sess, b, 1, SIZE_MAX), 1);
	assert_ptr_equal(a[0].iov_base, b[0].iov_base);
	assert_int_equal(a[0].iov_len, b[0].iov_len);
	assert_memory_equal(b[0].iov_base, first, b[0].iov_len);
	/* Partially advanced: the rest starts where the transport stopped. */
	mr_session_tx_advance(h->sess, 3);
	assert_int_equal(mr_session_tx_iov(h->sess, b, 1, SIZE_MAX), 1);
	assert_memory_equal(b[0].iov_base, first + 3,
			    b[0].iov_len < a[0].iov_len - 3 ? b[0].iov_len
							    : a[0].iov_len - 3);
	eh_flush(h);
	eh_free(h);
}

static void test_tx_iov_offers_about_max_bytes_at_a_time(void **state)
{
	struct eh *h = client(), *all = client();
	static uint8_t data[8][50000];
	struct eh_bytes got = {0};
	size_t calls = 0;

	(void)state;
	for (int i = 0; i < 8; i++) {
		memset(data[i], 'a' + i, sizeof(data[i]));
		assert_int_equal(eh_write(eh_open(h), data[i], sizeof(data[i]),
					  (uint64_t)i), 0);
		assert_int_equal(eh_write(eh_open(all), data[i],
					  sizeof(data[i]), (uint64_t)i), 0);
	}
	for (;;) {
		struct iovec iov[64];
		size_t n = mr_session_tx_iov(h->sess, iov, 64, 1000), offered = 0;

		if (!n)
			break;
		for (size_t i = 0; i < n; i++) {
			offered += iov[i].iov_len;
			eh_bytes_put(&got, iov[i].iov_base, iov[i].iov_len);
		}
		/* At most one segment beyond the limit. */
		assert_true(offered <= 1000 + MR_FRAME_HEADER_LEN + 65536);
		mr_session_tx_advance(h->sess, offered);
		calls++;
	}
	eh_flush(all);
	/* Not everything at once: at least one call per 50000-byte frame. */
	assert_true(calls >= 8);
	assert_int_equal(got.len, all->tx_len);
	assert_memory_equal(got.p, all->tx, got.len);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 8);
	eh_bytes_free(&got);
	eh_free(h);
	eh_free(all);
}

static void test_feeding_zero_bytes_changes_nothing(void **state)
{
	struct eh *h = server();
	struct mr_buf *buf = mr_buf_new_heap(16);

	(void)state;
	assert_int_equal(mr_session_recv(h->sess, buf, buf->data, 0, 0), 0);
	assert_int_equal(buf->refs, 1);
	eh_poll(h);
	assert_int_equal(h->nev, 0);
	assert_int_equal(eh_flush(h), 0);
	mr_buf_unref(buf);
	eh_free(h);
}

static void test_more_ready_streams_than_iovecs_are_all_sent_in_opening_order(void **state)
{
	struct eh *h = client();
	struct eh_frames f;
	char msg[16];

	(void)state;
	for (int i = 0; i < 600; i++) {
		snprintf(msg, sizeof(msg), "m%03u", (unsigned)(i % 1000));
		assert_int_equal(eh_write(eh_open(h), msg, 4, (uint64_t)i), 0);
	}
	f = frames_of(h);
	assert_int_equal(f.n, 600);
	for (size_t i = 0; i < f.n; i++) {
		snprintf(msg, sizeof(msg), "m%03u", (unsigned)(i % 1000));
		assert_int_equal(f.v[i].hdr.stream_id, 3 + 2 * i);
		assert_int_equal(f.v[i].hdr.flags, MR_FLAG_SYN);
		assert_memory_equal(f.v[i].body, msg, 4);
	}
	eh_frames_free(&f);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 600);
	eh_free(h);
}

/* The same operations, sent whole or a few bytes per advance. */
static void run_mixed_traffic(struct eh *h)
{
	struct mr_stream *s[3];
	struct eh_bytes in = {0};
	uint8_t big[70000];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	for (int i = 0; i < 3; i++)
		s[i] = eh_open(h);
	assert_int_equal(eh_write(s[0], S("alpha"), 1), 0);
	assert_int_equal(eh_write(s[1], big, sizeof(big), 2), 0);
	assert_int_equal(mr_stream_close_write(s[0]), 0);
	assert_int_equal(eh_write(s[2], S("gamma"), 3), 0);
	eh_bytes_data(&in, 2, MR_FLAG_SYN, S("peer"));
	eh_feed_bytes(h, &in, 0);
	eh_bytes_free(&in);
	assert_int_equal(mr_stream_reset(s[2], MUXRING_STREAM_CANCELLED), 0);
	eh_flush(h);
	assert_int_equal(eh_write(s[1], S("tail"), 4), 0);
	assert_int_equal(mr_stream_close(s[1]), 0);
	eh_flush(h);
}

static void test_partial_sends_produce_the_same_byte_stream_as_whole_ones(void **state)
{
	struct eh *whole = client(), *bits = client(), *single = client();
	struct eh_frames f;

	(void)state;
	bits->tx_step = 3;
	single->tx_max_iov = 1;
	run_mixed_traffic(whole);
	run_mixed_traffic(bits);
	run_mixed_traffic(single);
	assert_true(whole->tx_len > 70000);
	assert_int_equal(bits->tx_len, whole->tx_len);
	assert_memory_equal(bits->tx, whole->tx, whole->tx_len);
	assert_int_equal(single->tx_len, whole->tx_len);
	assert_memory_equal(single->tx, whole->tx, whole->tx_len);
	eh_frames_parse(whole->tx, whole->tx_len, &f); /* whole frames only */
	assert_true(f.n >= 5);
	eh_frames_free(&f);
	assert_int_equal(eh_count(bits, MR_EV_WRITE_DONE, EH_ANY),
			 eh_count(whole, MR_EV_WRITE_DONE, EH_ANY));
	eh_free(whole);
	eh_free(bits);
	eh_free(single);
}

/* ---- accepting ---------------------------------------------------------- */

static void test_a_peer_syn_is_accepted_with_its_id_before_its_data(void **state)
{
	struct eh *h = server();
	struct eh_ev *acc, *data;

	(void)state;
	feed_data(h, 3, MR_FLAG_SYN, S("hi"));
	acc = eh_find(h, MR_EV_STREAM_ACCEPTED, 3, 0);
	data = eh_find(h, MR_EV_DATA, 3, 0);
	assert_non_null(acc);
	assert_non_null(data);
	assert_true(acc->seq < data->seq);
	assert_ptr_equal(acc->ev.stream, data->ev.stream);
	assert_int_equal(mr_stream_id(acc->ev.stream), 3);
	eh_assert_data(h, 3, S("hi"));
	/* Accepting sends nothing back. */
	assert_int_equal(eh_flush(h), 0);
	eh_free(h);
}

static void test_an_empty_syn_is_accepted_without_a_data_event(void **state)
{
	struct eh *h = client();

	(void)state;
	feed_data(h, 2, MR_FLAG_SYN, NULL, 0);
	assert_non_null(eh_accepted(h, 2));
	assert_int_equal(eh_count(h, MR_EV_DATA, 2), 0);
	assert_int_equal(eh_count(h, MR_EV_EOF, 2), 0);
	eh_free(h);
}

/* ---- unknown streams ---------------------------------------------------------- */

static void test_data_on_an_unknown_stream_gets_rst_stream_closed_and_the_session_goes_on(void **state)
{
	struct eh *h = server();
	struct eh_frames f;

	(void)state;
	feed_data(h, 5, 0, S("zz"));
	assert_int_equal(h->nev, 0);
	f = frames_of(h);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_RST);
	assert_int_equal(f.v[0].hdr.stream_id, 5);
	assert_int_equal(mr_get_be32(f.v[0].body), MUXRING_STREAM_CLOSED);
	eh_frames_free(&f);
	assert_false(mr_session_ended(h->sess));
	feed_data(h, 7, MR_FLAG_SYN, S("ok"));
	eh_assert_data(h, 7, S("ok"));
	eh_free(h);
}

static void test_data_with_payload_and_fin_on_an_unknown_stream_gets_rst(void **state)
{
	struct eh *h = server();
	struct eh_frames f;

	(void)state;
	feed_data(h, 9, MR_FLAG_FIN, S("late"));
	f = frames_of(h);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_RST, 9), 1);
	assert_int_equal(mr_get_be32(f.v[0].body), MUXRING_STREAM_CLOSED);
	eh_frames_free(&f);
	assert_int_equal(h->nev, 0);
	eh_free(h);
}

static void test_an_empty_fin_on_an_unknown_stream_is_ignored(void **state)
{
	struct eh *h = server();

	(void)state;
	feed_data(h, 11, MR_FLAG_FIN, NULL, 0);
	assert_int_equal(eh_flush(h), 0);
	assert_int_equal(h->nev, 0);
	assert_false(mr_session_ended(h->sess));
	eh_free(h);
}

static void test_an_rst_on_an_unknown_stream_is_ignored(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);

	(void)state;
	feed_rst(h, 5, MUXRING_STREAM_RESET);  /* never opened */
	feed_rst(h, 4, MUXRING_PROTOCOL_ERROR); /* the peer's, unknown */
	assert_int_equal(eh_flush(h), 0);
	assert_int_equal(h->nev, 0);
	assert_false(mr_session_ended(h->sess));
	assert_int_equal(eh_write(s, S("x"), 1), 0);
	eh_flush(h);
	assert_int_equal(eh_write_result(h, 1), 1);
	eh_free(h);
}

static void test_a_wndinc_on_an_unknown_stream_is_ignored(void **state)
{
	struct eh *h = server();

	(void)state;
	feed_wndinc(h, 3, 1000);
	assert_int_equal(eh_flush(h), 0);
	assert_int_equal(h->nev, 0);
	assert_false(mr_session_ended(h->sess));
	eh_free(h);
}

/* ---- RST from the peer -------------------------------------------------------- */

static void test_an_rst_from_the_peer_closes_the_stream_with_its_code_and_fails_pending_writes(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	static uint8_t big[300000];
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(s, big, sizeof(big), 1), 0);
	eh_flush(h); /* 256 KiB out, the rest waits for window */
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);
	eh_tx_clear(h);
	feed_rst(h, 3, MUXRING_STREAM_CANCELLED);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_STREAM_CANCELLED);
	assert_int_equal(eh_find(h, MR_EV_STREAM_CLOSED, 3, 0)->ev.result,
			 MUXRING_ERR(MUXRING_STREAM_CANCELLED));
	assert_int_equal(eh_write_result(h, 1),
			 eh_err(MUXRING_STREAM_CANCELLED));
	assert_int_equal(eh_write(s, S("more"), 2),
			 MUXRING_ERR(MUXRING_STREAM_CANCELLED));
	/* Nothing goes back: not an RST, not the rest of the write. */
	f = frames_of(h);
	assert_int_equal(f.n, 0);
	eh_frames_free(&f);
	feed_wndinc(h, 3, 100000);
	assert_int_equal(eh_flush(h), 0);
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

static void test_an_rst_with_an_unknown_code_keeps_the_code_whole(void **state)
{
	struct eh *h = server();

	(void)state;
	feed_data(h, 3, MR_FLAG_SYN, S("x"));
	feed_rst(h, 3, 0x12345678);
	assert_int_equal(eh_closed_code(h, 3), 0x12345678);
	/* The negative error of a code above 0xFFFF is ErrorUnknown's. */
	assert_int_equal(eh_write(eh_accepted(h, 3), S("y"), 1),
			 MUXRING_ERR(MUXRING_ERROR_UNKNOWN));
	eh_free(h);
}

static void test_an_rst_with_flags_set_is_still_an_rst(void **state)
{
	struct eh *h = server();
	struct eh_bytes b = {0};
	uint8_t code[4];

	(void)state;
	feed_data(h, 3, MR_FLAG_SYN, S("x"));
	eh_bytes_header(&b, 4, MR_FRAME_RST, 0xF, 3);
	mr_put_be32(code, MUXRING_STREAM_RESET);
	eh_bytes_put(&b, code, 4);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_bytes_free(&b);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_STREAM_RESET);
	eh_free(h);
}

/* ---- half-close, close, reset -------------------------------------------------- */

static void test_the_peers_fin_delivers_buffered_data_then_eof(void **state)
{
	struct eh *h = server();
	struct eh_ev *eof;

	(void)state;
	feed_data(h, 3, MR_FLAG_SYN, S("abc"));
	feed_data(h, 3, MR_FLAG_FIN, S("def")); /* FIN riding on data */
	feed_data(h, 5, MR_FLAG_SYN, S("x"));
	feed_data(h, 5, MR_FLAG_FIN, NULL, 0);  /* FIN alone */
	eh_assert_data(h, 3, S("abcdef"));
	eh_assert_data(h, 5, S("x"));
	eof = eh_find(h, MR_EV_EOF, 3, 0);
	assert_non_null(eof);
	assert_true(eh_find(h, MR_EV_DATA, 3, 1)->seq < eof->seq);
	assert_int_equal(eh_count(h, MR_EV_EOF, 3), 1);
	assert_int_equal(eh_count(h, MR_EV_EOF, 5), 1);
	/* Half-closed by the peer only: the stream is not over. */
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, EH_ANY), 0);
	assert_int_equal(eh_write(eh_accepted(h, 3), S("reply"), 1), 0);
	eh_flush(h);
	assert_int_equal(eh_write_result(h, 1), 5);
	eh_free(h);
}

static void test_a_stream_finishes_once_fin_went_both_ways(void **state)
{
	struct eh *h = server();
	struct mr_stream *s;

	(void)state;
	feed_data(h, 3, MR_FLAG_SYN, S("q"));
	feed_data(h, 3, MR_FLAG_FIN, NULL, 0);
	s = eh_accepted(h, 3);
	assert_int_equal(mr_stream_close_write(s), 0);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 3), 0);
	eh_flush(h); /* our FIN leaves */
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	assert_int_equal(eh_find(h, MR_EV_STREAM_CLOSED, 3, 0)->ev.result, 0);
	eh_assert_stream_events_well_formed(h);

	/* The other order: our FIN first, then the peer's. */
	s = eh_open(h);
	assert_int_equal(eh_write(s, S("w"), 1), 0);
	assert_int_equal(mr_stream_close_write(s), 0);
	eh_flush(h);
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 2), 0);
	feed_data(h, 2, 0, S("back"));
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 2), 0);
	feed_data(h, 2, MR_FLAG_FIN, NULL, 0);
	assert_int_equal(eh_closed_code(h, 2), MUXRING_NO_ERROR);
	eh_assert_data(h, 2, S("back"));
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

static void test_close_sends_fin_and_answers_late_data_with_rst_stream_closed(void **state)
{
	struct eh *h = server();
	struct mr_stream *s;
	struct eh_frames f;

	(void)state;
	feed_data(h, 3, MR_FLAG_SYN, S("first"));
	s = eh_accepted(h, 3);
	assert_int_equal(mr_stream_close(s), 0);
	f = frames_of(h);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_DATA);
	assert_int_equal(f.v[0].hdr.flags, MR_FLAG_FIN);
	assert_int_equal(f.v[0].hdr.stream_id, 3);
	eh_frames_free(&f);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	eh_tx_clear(h);
	feed_data(h, 3, 0, S("more data"));
	f = frames_of(h);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_RST);
	assert_int_equal(f.v[0].hdr.stream_id, 3);
	assert_int_equal(mr_get_be32(f.v[0].body), MUXRING_STREAM_CLOSED);
	eh_frames_free(&f);
	eh_assert_data(h, 3, S("first"));
	assert_int_equal(eh_write(s, S("x"), 9), MUXRING_ERR(MUXRING_STREAM_CLOSED));
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

static void test_close_after_close_write_sends_no_second_fin(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(s, S("abc"), 1), 0);
	assert_int_equal(mr_stream_close_write(s), 0);
	eh_flush(h);
	assert_int_equal(mr_stream_close(s), 0);
	eh_flush(h);
	/* Close before the peer's FIN: that FIN, when it comes, is ignored. */
	feed_data(h, 3, MR_FLAG_FIN, NULL, 0);
	f = frames_of(h);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_DATA, 3), 2);
	assert_int_equal(f.v[1].hdr.flags, MR_FLAG_FIN);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_RST, EH_ANY), 0);
	eh_frames_free(&f);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	eh_free(h);
}

static void test_close_write_twice_sends_one_fin(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(s, S("a"), 1), 0);
	assert_int_equal(mr_stream_close_write(s), 0);
	eh_flush(h);
	assert_int_equal(mr_stream_close_write(s), 0);
	eh_flush(h);
	f = frames_of(h);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.v[1].hdr.flags, MR_FLAG_FIN);
	eh_frames_free(&f);
	eh_free(h);
}

static void test_a_write_after_close_write_fails_with_stream_closed(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);

	(void)state;
	assert_int_equal(mr_stream_close_write(s), 0);
	assert_int_equal(eh_write(s, S("late"), 1),
			 MUXRING_ERR(MUXRING_STREAM_CLOSED));
	eh_flush(h);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);
	eh_free(h);
}

/* Resets stream 3 while 300,000 bytes wait for window (256 KiB went out)
 * and checks that exactly one RST with `code` left. */
static struct mr_stream *reset_a_stream_blocked_on_window(struct eh *h,
							  uint32_t code)
{
	struct mr_stream *s = eh_open(h);
	static uint8_t big[300000];
	struct eh_frames f;

	assert_int_equal(eh_write(s, big, sizeof(big), 1), 0);
	eh_flush(h);
	eh_tx_clear(h);
	assert_int_equal(mr_stream_reset(s, code), 0);
	f = frames_of(h);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_RST);
	assert_int_equal(f.v[0].hdr.stream_id, 3);
	assert_int_equal(mr_get_be32(f.v[0].body), code);
	eh_frames_free(&f);
	return s;
}

static void test_reset_sends_rst_with_the_code_and_fails_queued_writes(void **state)
{
	struct eh *h = client();
	struct mr_stream *s =
		reset_a_stream_blocked_on_window(h, MUXRING_STREAM_CANCELLED);

	(void)state;
	assert_int_equal(eh_closed_code(h, 3), MUXRING_STREAM_CANCELLED);
	/* session.h: queued writes fail with MUXRING_ERR(code). */
	assert_int_equal(eh_write_result(h, 1), eh_err(MUXRING_STREAM_CANCELLED));
	assert_true(eh_write(s, S("x"), 2) < 0);
	/* The peer's late frames on it are not delivered. */
	feed_data(h, 3, 0, S("late"));
	assert_int_equal(eh_count(h, MR_EV_DATA, 3), 0);
	eh_assert_stream_events_well_formed(h);
	eh_free(h);
}

static void test_a_reset_with_no_error_fails_queued_writes_with_stream_reset(void **state)
{
	struct eh *h = client();

	(void)state;
	reset_a_stream_blocked_on_window(h, MUXRING_NO_ERROR);
	/* session.h: "or with StreamReset when code is NoError" */
	assert_int_equal(eh_write_result(h, 1), eh_err(MUXRING_STREAM_RESET));
	eh_free(h);
}

static void test_close_waits_for_queued_writes_before_the_stream_closes(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	static uint8_t big[300000];
	struct eh_bytes b = {0};
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(s, big, sizeof(big), 1), 0);
	assert_int_equal(mr_stream_close(s), 0);
	eh_flush(h); /* 256 KiB out, the rest waits for the window */
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 3), 0);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);
	eh_bytes_wndinc(&b, 3, 65536);
	assert_int_equal(eh_feed_bytes(h, &b, 0), 0);
	eh_flush(h);
	assert_int_equal(eh_write_result(h, 1), (int64_t)sizeof(big));
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	f = frames_of(h);
	assert_int_equal(f.v[f.n - 1].hdr.type, MR_FRAME_DATA);
	assert_true(f.v[f.n - 1].hdr.flags & MR_FLAG_FIN);
	assert_no_frame_has_syn_and_fin(&f);
	eh_frames_free(&f);
	eh_bytes_free(&b);
	eh_free(h);
}

static void test_resetting_a_stream_the_peer_never_heard_of_sends_nothing(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);

	(void)state;
	assert_int_equal(mr_stream_reset(s, MUXRING_STREAM_CANCELLED), 0);
	assert_int_equal(eh_flush(h), 0);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_STREAM_CANCELLED);
	/* The id is used up all the same. */
	assert_int_equal(mr_stream_id(eh_open(h)), 5);
	eh_free(h);
}

static void test_a_zero_length_write_after_the_syn_completes_with_0(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	struct eh_frames f;

	(void)state;
	assert_int_equal(eh_write(s, S("x"), 1), 0);
	eh_flush(h);
	eh_tx_clear(h);
	assert_int_equal(eh_write(s, "", 0, 2), 0);
	/* At most an empty DATA frame without flags goes out for it. */
	f = frames_of(h);
	assert_true(f.n <= 1);
	for (size_t i = 0; i < f.n; i++) {
		assert_int_equal(f.v[i].hdr.type, MR_FRAME_DATA);
		assert_int_equal(f.v[i].hdr.length, 0);
		assert_int_equal(f.v[i].hdr.flags, 0);
	}
	eh_frames_free(&f);
	assert_int_equal(eh_write_result(h, 2), 0);
	eh_free(h);
}

static void test_every_stream_gets_exactly_one_stream_closed_event_last(void **state)
{
	struct eh *h = server();
	struct mr_stream *s;

	(void)state;
	/* 3: closed by us, then RST by the peer, then closed again. */
	feed_data(h, 3, MR_FLAG_SYN, S("a"));
	mr_stream_close(eh_accepted(h, 3));
	eh_flush(h);
	feed_rst(h, 3, MUXRING_STREAM_RESET);
	mr_stream_close(eh_accepted(h, 3));
	/* 5: reset by us, then by the peer. */
	feed_data(h, 5, MR_FLAG_SYN, S("b"));
	mr_stream_reset(eh_accepted(h, 5), MUXRING_STREAM_CANCELLED);
	feed_rst(h, 5, MUXRING_STREAM_RESET);
	mr_stream_reset(eh_accepted(h, 5), MUXRING_STREAM_RESET);
	/* 7: FIN both ways, then RST by the peer. */
	feed_data(h, 7, MR_FLAG_SYN, S("c"));
	feed_data(h, 7, MR_FLAG_FIN, NULL, 0);
	mr_stream_close_write(eh_accepted(h, 7));
	eh_flush(h);
	feed_rst(h, 7, MUXRING_STREAM_RESET);
	/* 2 and 9: still open when the session closes. */
	s = eh_open(h);
	assert_int_equal(eh_write(s, S("d"), 1), 0);
	feed_data(h, 9, MR_FLAG_SYN, S("e"));
	eh_flush(h);
	mr_session_close(h->sess, 0, S("bye"));
	eh_flush(h);
	assert_int_equal(eh_closed_code(h, 3), MUXRING_NO_ERROR);
	assert_int_equal(eh_closed_code(h, 5), MUXRING_STREAM_CANCELLED);
	assert_int_equal(eh_closed_code(h, 7), MUXRING_NO_ERROR);
	assert_int_equal(eh_closed_code(h, 2), MUXRING_SESSION_CLOSED);
	assert_int_equal(eh_closed_code(h, 9), MUXRING_SESSION_CLOSED);
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, EH_ANY), 5);
	eh_assert_stream_events_well_formed(h);
	eh_assert_ended(h);
	eh_free(h);
}

/* ---- framing oddities that are not errors ----------------------------------- */

/* An unknown frame whose body looks like a DATA frame, then a real SYN. */
static void build_unknown_then_syn(struct eh_bytes *b, uint8_t type,
				   uint32_t id)
{
	struct eh_bytes body = {0};

	eh_bytes_data(&body, 3, MR_FLAG_SYN, S("trap"));
	eh_bytes_rst(&body, 5, MUXRING_PROTOCOL_ERROR);
	eh_bytes_header(b, (uint32_t)body.len, type, 0xF, id);
	eh_bytes_put(b, body.p, body.len);
	eh_bytes_free(&body);
	eh_bytes_header(b, 0, 0xF, 0, 0); /* empty unknown frame */
	eh_bytes_data(b, 7, MR_FLAG_SYN, S("real"));
}

static void test_unknown_frame_types_are_skipped_whole_in_any_chunking(void **state)
{
	const size_t chunks[] = {0, 1, 2, 5, 8, 9, 13};

	(void)state;
	for (uint8_t type = 4; type <= 0xF; type++)
		for (size_t c = 0; c < sizeof(chunks) / sizeof(*chunks); c++) {
			struct eh *h = server();
			struct eh_bytes b = {0};

			build_unknown_then_syn(&b, type, type % 2 ? 0 : 77);
			assert_int_equal(eh_feed_bytes(h, &b, chunks[c]), 0);
			eh_bytes_free(&b);
			assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED,
						  EH_ANY), 1);
			assert_non_null(eh_accepted(h, 7));
			eh_assert_data(h, 7, S("real"));
			assert_int_equal(eh_flush(h), 0); /* no RST, nothing */
			assert_false(mr_session_ended(h->sess));
			eh_free(h);
		}
}

static void test_the_reserved_bit_of_a_stream_id_is_ignored(void **state)
{
	struct eh *h = server();

	(void)state;
	feed_data(h, 0x80000003u, MR_FLAG_SYN, S("r"));
	assert_non_null(eh_accepted(h, 3));
	eh_assert_data(h, 3, S("r"));
	feed_data(h, 3 | 0x80000000u, MR_FLAG_FIN, NULL, 0);
	assert_int_equal(eh_count(h, MR_EV_EOF, 3), 1);
	eh_free(h);
}

/* A compact description of an event sequence, to compare runs. */
static void describe_events(struct eh *h, struct eh_bytes *out)
{
	uint8_t data[4096];

	for (size_t i = 0; i < h->nev; i++) {
		const struct eh_ev *e = &h->ev[i];
		uint8_t rec[9];

		if (e->ev.type == MR_EV_DATA)
			continue; /* chunking changes the views, not the bytes */
		rec[0] = (uint8_t)e->ev.type;
		mr_put_be32(rec + 1, e->id);
		mr_put_be32(rec + 5, e->ev.code);
		eh_bytes_put(out, rec, sizeof(rec));
	}
	for (uint32_t id = 1; id < 16; id++) {
		size_t n = eh_data(h, id, data, sizeof(data));

		assert_true(n <= sizeof(data));
		eh_bytes_put(out, data, n);
	}
}

static void build_busy_input(struct eh_bytes *b)
{
	eh_bytes_data(b, 3, MR_FLAG_SYN, S("hello"));
	eh_bytes_header(b, 3, 0x9, 0, 3);
	eh_bytes_put(b, "xyz", 3);
	eh_bytes_data(b, 5, MR_FLAG_SYN, S("other"));
	eh_bytes_wndinc(b, 3, 4096);
	eh_bytes_data(b, 3, 0, S(" world"));
	eh_bytes_data(b, 7, MR_FLAG_SYN, NULL, 0);
	eh_bytes_rst(b, 5, MUXRING_STREAM_CANCELLED);
	eh_bytes_data(b, 11, 0, S("unknown"));
	eh_bytes_data(b, 13, MR_FLAG_FIN, NULL, 0);
	eh_bytes_data(b, 3, MR_FLAG_FIN, NULL, 0);
	eh_bytes_data(b, 7, MR_FLAG_FIN, S("bye"));
	eh_bytes_goaway(b, 2, MUXRING_NO_ERROR, S("done here"));
}

static void test_byte_at_a_time_input_gives_the_same_events_and_frames_as_one_buffer(void **state)
{
	struct eh_bytes in = {0}, want = {0}, got = {0};
	struct eh *whole = server(), *bytes = server();

	(void)state;
	build_busy_input(&in);
	assert_int_equal(eh_feed_bytes(whole, &in, 0), 0);
	assert_int_equal(eh_feed_bytes(bytes, &in, 1), 0);
	assert_int_equal(bytes->bufs_fed, in.len);
	describe_events(whole, &want);
	describe_events(bytes, &got);
	assert_true(want.len > 9 * 6);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.p, want.p, want.len);
	eh_assert_data(bytes, 3, S("hello world"));
	eh_flush(whole);
	eh_flush(bytes);
	assert_int_equal(bytes->tx_len, whole->tx_len);
	assert_memory_equal(bytes->tx, whole->tx, whole->tx_len);
	assert_int_equal(mr_session_result(bytes->sess)->remote_debug_len, 9);
	eh_bytes_free(&in);
	eh_bytes_free(&want);
	eh_bytes_free(&got);
	eh_free(whole);
	eh_free(bytes);
}

static void test_a_payload_split_across_two_input_buffers_arrives_as_two_views(void **state)
{
	struct eh *h = server();
	struct eh_bytes b = {0};

	(void)state;
	eh_bytes_data(&b, 3, MR_FLAG_SYN, S("0123456789"));
	/* header + 4 payload bytes in one buffer, 6 in the next */
	assert_int_equal(eh_feed(h, b.p, 12, 0), 0);
	assert_int_equal(eh_feed(h, b.p + 12, b.len - 12, 0), 0);
	assert_int_equal(eh_count(h, MR_EV_DATA, 3), 2);
	assert_int_equal(eh_find(h, MR_EV_DATA, 3, 0)->ev.view.len, 4);
	assert_int_equal(eh_find(h, MR_EV_DATA, 3, 1)->ev.view.len, 6);
	eh_assert_data(h, 3, S("0123456789"));
	eh_bytes_free(&b);
	eh_free(h);
}

/* ---- accept backlog and stream limits ------------------------------------ */

static void test_a_full_accept_backlog_refuses_with_accept_queue_full_until_accept_done(void **state)
{
	struct mr_config cfg;
	struct eh *h;
	struct eh_frames f;

	(void)state;
	mr_config_default(&cfg);
	cfg.accept_backlog = 2;
	h = eh_new(MR_ROLE_SERVER, &cfg);
	h->auto_accept = false;
	feed_data(h, 3, MR_FLAG_SYN, S("a"));
	feed_data(h, 5, MR_FLAG_SYN, S("b"));
	feed_data(h, 7, MR_FLAG_SYN, S("c"));
	assert_int_equal(eh_count(h, MR_EV_STREAM_ACCEPTED, EH_ANY), 2);
	assert_int_equal(eh_count(h, MR_EV_DATA, 7), 0);
	f = frames_of(h);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_RST);
	assert_int_equal(f.v[0].hdr.stream_id, 7);
	assert_int_equal(mr_get_be32(f.v[0].body), MUXRING_ACCEPT_QUEUE_FULL);
	eh_frames_free(&f);
	/* More data for the refused stream is not delivered either. */
	feed_data(h, 7, 0, S("cc"));
	assert_int_equal(eh_count(h, MR_EV_DATA, 7), 0);
	/* Taking one stream frees one slot. */
	mr_session_accept_done(h->sess);
	eh_tx_clear(h);
	feed_data(h, 9, MR_FLAG_SYN, S("d"));
	assert_non_null(eh_accepted(h, 9));
	eh_assert_data(h, 9, S("d"));
	feed_data(h, 11, MR_FLAG_SYN, S("e"));
	assert_null(eh_accepted(h, 11));
	f = frames_of(h);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_RST, 11), 1);
	assert_int_equal(eh_frames_count(&f, MR_FRAME_RST, 9), 0);
	eh_frames_free(&f);
	eh_free(h);
}

static void test_max_streams_refuses_peer_syns_with_stream_refused_and_local_opens(void **state)
{
	struct mr_config cfg;
	struct eh *h;
	struct eh_frames f;
	struct mr_stream *s = NULL, *mine;

	(void)state;
	mr_config_default(&cfg);
	cfg.max_streams = 2;
	h = eh_new(MR_ROLE_SERVER, &cfg);
	feed_data(h, 3, MR_FLAG_SYN, S("a"));
	mine = eh_open(h);
	feed_data(h, 5, MR_FLAG_SYN, S("b"));
	assert_null(eh_accepted(h, 5));
	assert_int_equal(eh_count(h, MR_EV_DATA, 5), 0);
	f = frames_of(h);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].hdr.type, MR_FRAME_RST);
	assert_int_equal(f.v[0].hdr.stream_id, 5);
	assert_int_equal(mr_get_be32(f.v[0].body), MUXRING_STREAM_REFUSED);
	eh_frames_free(&f);
	assert_int_equal(mr_session_open(h->sess, 0, &s),
			 MUXRING_ERR(MUXRING_STREAM_REFUSED));
	/* A stream that ends gives its slot back. */
	assert_int_equal(mr_stream_reset(mine, MUXRING_STREAM_CANCELLED), 0);
	eh_poll(h);
	feed_data(h, 7, MR_FLAG_SYN, S("c"));
	assert_non_null(eh_accepted(h, 7));
	eh_free(h);
}

/* ---- deadlines ------------------------------------------------------------- */

static void test_a_read_deadline_fires_at_its_time_and_leaves_the_stream_open(void **state)
{
	struct eh *h = server();
	struct mr_stream *s;
	struct eh_ev *e;

	(void)state;
	feed_data(h, 3, MR_FLAG_SYN, S("a"));
	s = eh_accepted(h, 3);
	assert_int_equal(mr_session_next_deadline(h->sess), 0);
	mr_stream_set_deadline(s, MR_DEADLINE_READ, 1000);
	assert_int_equal(mr_session_next_deadline(h->sess), 1000);
	assert_int_equal(mr_session_expire(h->sess, 999), 1000);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_DEADLINE, EH_ANY), 0);
	assert_int_equal(mr_session_expire(h->sess, 1000), 0);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_DEADLINE, 3), 1);
	e = eh_find(h, MR_EV_DEADLINE, 3, 0);
	assert_int_equal(e->ev.deadline, MR_DEADLINE_READ);
	/* It fires once, and the stream still works both ways. */
	mr_session_expire(h->sess, 5000);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_DEADLINE, 3), 1);
	feed_data(h, 3, 0, S("b"));
	eh_assert_data(h, 3, S("ab"));
	assert_int_equal(eh_write(s, S("c"), 1), 0);
	eh_flush(h);
	assert_int_equal(eh_write_result(h, 1), 1);
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 3), 0);
	eh_free(h);
}

static void test_a_write_deadline_fails_pending_writes_with_write_timeout(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	static uint8_t big[300000];
	struct eh_ev *e;

	(void)state;
	assert_int_equal(eh_write(s, big, sizeof(big), 1), 0);
	eh_flush(h); /* blocked on the window after 256 KiB */
	mr_stream_set_deadline(s, MR_DEADLINE_WRITE, 50);
	mr_session_expire(h->sess, 49);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_WRITE_DONE, EH_ANY), 0);
	mr_session_expire(h->sess, 60);
	eh_poll(h);
	assert_int_equal(eh_write_result(h, 1), eh_err(MUXRING_WRITE_TIMEOUT));
	e = eh_find(h, MR_EV_DEADLINE, 3, 0);
	assert_non_null(e);
	assert_int_equal(e->ev.deadline, MR_DEADLINE_WRITE);
	assert_int_equal(eh_count(h, MR_EV_STREAM_CLOSED, 3), 0);
	/* The stream stays open: data still arrives. */
	feed_data(h, 3, 0, S("still here"));
	eh_assert_data(h, 3, S("still here"));
	eh_free(h);
}

static void test_a_cleared_deadline_never_fires_and_the_earliest_is_reported(void **state)
{
	struct eh *h = client();
	struct mr_stream *a = eh_open(h), *b = eh_open(h);

	(void)state;
	mr_stream_set_deadline(a, MR_DEADLINE_READ, 300);
	mr_stream_set_deadline(b, MR_DEADLINE_WRITE, 200);
	mr_stream_set_deadline(b, MR_DEADLINE_READ, 500);
	assert_int_equal(mr_session_next_deadline(h->sess), 200);
	mr_stream_set_deadline(b, MR_DEADLINE_WRITE, 0);
	assert_int_equal(mr_session_next_deadline(h->sess), 300);
	mr_stream_set_deadline(a, MR_DEADLINE_READ, 0);
	assert_int_equal(mr_session_expire(h->sess, 400), 500);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_DEADLINE, EH_ANY), 0);
	assert_int_equal(mr_session_expire(h->sess, 500), 0);
	eh_poll(h);
	assert_int_equal(eh_count(h, MR_EV_DEADLINE, EH_ANY), 1);
	assert_int_equal(eh_find(h, MR_EV_DEADLINE, EH_ANY, 0)->id, 5);
	eh_free(h);
}

/* ---- handles, views and counters ------------------------------------------------ */

static void test_a_view_outlives_its_session_and_its_stream_forgets_the_session(void **state)
{
	struct mr_session *sess = mr_session_new(MR_ROLE_SERVER, NULL);
	struct eh_bytes b = {0};
	struct mr_buf *buf;
	struct mr_event ev, data = {0};
	int got_data = 0;

	(void)state;
	assert_non_null(sess);
	eh_bytes_data(&b, 3, MR_FLAG_SYN, S("survivor"));
	buf = mr_buf_new_copy(b.p, b.len);
	assert_int_equal(mr_session_recv(sess, buf, buf->data, b.len, 0), 0);
	mr_buf_unref(buf);
	eh_bytes_free(&b);
	while (mr_session_poll_event(sess, &ev)) {
		if (ev.type == MR_EV_DATA) {
			data = ev;
			got_data++;
		}
		if (ev.type == MR_EV_STREAM_ACCEPTED)
			assert_ptr_equal(mr_stream_session(ev.stream), sess);
		mr_event_done(&ev);
	}
	assert_int_equal(got_data, 1);
	mr_session_free(sess);
	assert_int_equal(data.view.len, 8);
	assert_memory_equal(data.view.data, "survivor", 8);
	assert_null(mr_stream_session(data.view.stream));
	assert_int_equal(mr_stream_id(data.view.stream), 3);
	mr_view_release(&data.view);
	mr_event_done(&data);
}

static void test_a_stream_keeps_the_applications_pointer(void **state)
{
	struct eh *h = client();
	struct mr_stream *s = eh_open(h);
	int marker;

	(void)state;
	assert_null(mr_stream_user(s));
	mr_stream_set_user(s, &marker);
	assert_ptr_equal(mr_stream_user(s), &marker);
	assert_ptr_equal(mr_stream_session(s), h->sess);
	eh_free(h);
}

static void test_the_counters_match_what_crossed_the_transport(void **state)
{
	struct eh *h = server();
	struct eh_bytes in = {0};
	struct mr_session_stats st;
	struct eh_frames f;

	(void)state;
	eh_open(h);
	build_busy_input(&in);
	eh_feed_bytes(h, &in, 3);
	assert_int_equal(eh_write(eh_accepted(h, 3), S("echo"), 1), 0);
	eh_tx_frames(h, &f);
	mr_session_stats(h->sess, &st);
	assert_int_equal(st.bytes_in, in.len);
	assert_int_equal(st.frames_in, 12);
	assert_int_equal(st.bytes_out, h->tx_len);
	assert_int_equal(st.frames_out, f.n);
	assert_int_equal(st.streams_opened, 1);
	assert_int_equal(st.streams_accepted, 3);
	eh_frames_free(&f);
	eh_bytes_free(&in);
	eh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_client_numbers_its_streams_3_5_7),
		cmocka_unit_test(test_a_server_numbers_its_streams_2_4_6),
		cmocka_unit_test(test_opening_a_stream_sends_nothing),
		cmocka_unit_test(test_the_first_write_carries_the_syn_and_later_ones_do_not),
		cmocka_unit_test(test_close_write_without_data_sends_an_empty_syn_then_a_separate_fin),
		cmocka_unit_test(test_write_and_close_write_queued_together_keep_fin_off_the_syn_frame),
		cmocka_unit_test(test_fin_on_a_later_frame_delivers_every_byte_then_eof_to_the_peer),
		cmocka_unit_test(test_a_zero_length_write_completes_once_the_syn_is_out),
		cmocka_unit_test(test_a_stream_opened_later_may_write_first),
		cmocka_unit_test(test_write_done_comes_only_after_the_transport_took_every_byte),
		cmocka_unit_test(test_tx_iov_offers_the_same_bytes_again_until_they_are_advanced),
		cmocka_unit_test(test_tx_iov_offers_about_max_bytes_at_a_time),
		cmocka_unit_test(test_more_ready_streams_than_iovecs_are_all_sent_in_opening_order),
		cmocka_unit_test(test_feeding_zero_bytes_changes_nothing),
		cmocka_unit_test(test_partial_sends_produce_the_same_byte_stream_as_whole_ones),
		cmocka_unit_test(test_a_peer_syn_is_accepted_with_its_id_before_its_data),
		cmocka_unit_test(test_an_empty_syn_is_accepted_without_a_data_event),
		cmocka_unit_test(test_data_on_an_unknown_stream_gets_rst_stream_closed_and_the_session_goes_on),
		cmocka_unit_test(test_data_with_payload_and_fin_on_an_unknown_stream_gets_rst),
		cmocka_unit_test(test_an_empty_fin_on_an_unknown_stream_is_ignored),
		cmocka_unit_test(test_an_rst_on_an_unknown_stream_is_ignored),
		cmocka_unit_test(test_a_wndinc_on_an_unknown_stream_is_ignored),
		cmocka_unit_test(test_an_rst_from_the_peer_closes_the_stream_with_its_code_and_fails_pending_writes),
		cmocka_unit_test(test_an_rst_with_an_unknown_code_keeps_the_code_whole),
		cmocka_unit_test(test_an_rst_with_flags_set_is_still_an_rst),
		cmocka_unit_test(test_the_peers_fin_delivers_buffered_data_then_eof),
		cmocka_unit_test(test_a_stream_finishes_once_fin_went_both_ways),
		cmocka_unit_test(test_close_sends_fin_and_answers_late_data_with_rst_stream_closed),
		cmocka_unit_test(test_close_after_close_write_sends_no_second_fin),
		cmocka_unit_test(test_close_write_twice_sends_one_fin),
		cmocka_unit_test(test_a_write_after_close_write_fails_with_stream_closed),
		cmocka_unit_test(test_reset_sends_rst_with_the_code_and_fails_queued_writes),
		cmocka_unit_test(test_a_reset_with_no_error_fails_queued_writes_with_stream_reset),
		cmocka_unit_test(test_close_waits_for_queued_writes_before_the_stream_closes),
		cmocka_unit_test(test_resetting_a_stream_the_peer_never_heard_of_sends_nothing),
		cmocka_unit_test(test_a_zero_length_write_after_the_syn_completes_with_0),
		cmocka_unit_test(test_every_stream_gets_exactly_one_stream_closed_event_last),
		cmocka_unit_test(test_unknown_frame_types_are_skipped_whole_in_any_chunking),
		cmocka_unit_test(test_the_reserved_bit_of_a_stream_id_is_ignored),
		cmocka_unit_test(test_byte_at_a_time_input_gives_the_same_events_and_frames_as_one_buffer),
		cmocka_unit_test(test_a_payload_split_across_two_input_buffers_arrives_as_two_views),
		cmocka_unit_test(test_a_full_accept_backlog_refuses_with_accept_queue_full_until_accept_done),
		cmocka_unit_test(test_max_streams_refuses_peer_syns_with_stream_refused_and_local_opens),
		cmocka_unit_test(test_a_read_deadline_fires_at_its_time_and_leaves_the_stream_open),
		cmocka_unit_test(test_a_write_deadline_fails_pending_writes_with_write_timeout),
		cmocka_unit_test(test_a_cleared_deadline_never_fires_and_the_earliest_is_reported),
		cmocka_unit_test(test_a_view_outlives_its_session_and_its_stream_forgets_the_session),
		cmocka_unit_test(test_a_stream_keeps_the_applications_pointer),
		cmocka_unit_test(test_the_counters_match_what_crossed_the_transport),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
