/*
 * test_engine_public.c - the sans-I/O engine through its public header only.
 *
 * Includes muxring_engine.h (and, through it, muxring.h) and nothing of
 * src/: what an application driving the engine over its own transport can
 * do, it is tested doing. Two engines talk through an in-memory "wire"
 * (pump), fed in chunks of a chosen size, and every entry each polls is
 * kept for the checks.
 *
 * Covers: an echo of three streams fed 1, 7, 4096 and all bytes at a time;
 * zero-copy feeding (views inside the caller's wrapped buffer, its release
 * only after the last view) and zero-copy writes; flow control (a reader
 * that holds its views stops the writer at 256 KiB, the windows say so,
 * releasing resumes it); reset by the peer (code, F_REMOTE, failed writes);
 * GOAWAY (entry, refused opens, streams already open go on) and close
 * (SESSION_ENDED with the peer's code and debug text); the accept backlog
 * held until entries are given back (muxring_engine_cqe_done), and the
 * counters; deadlines and
 * heartbeats driven only by explicit `now` values; malformed input; the
 * transport's EOF; argument errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "muxring_engine.h"

#define MAX_ENTRIES 8192
#define KIB 1024u

/* One end: its engine and every entry it polled, in order. */
struct end {
	struct muxring_engine *e;
	struct muxring_cqe ev[MAX_ENTRIES];
	size_t n;
	bool hold_views;  /* keep DATA views (released at teardown) */
	bool auto_done;   /* give entries back at once, as an application
			     would (STREAM_CLOSED handles end then) */
	uint8_t rx[4][1u << 21]; /* payload by stream slot (user_data) */
	size_t rx_len[4];
};

static struct end *end_new(enum muxring_role role,
			   const struct muxring_session_opts *opts)
{
	struct end *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	assert_int_equal(muxring_engine_create(&x->e, role, opts), 0);
	x->auto_done = true;
	return x;
}

/* Polls every entry: DATA payloads are appended to rx[user_data], views
 * released unless held. */
static void drain(struct end *x)
{
	struct muxring_cqe *c;

	while (x->n < MAX_ENTRIES &&
	       muxring_engine_poll(x->e, (c = &x->ev[x->n]))) {
		/* DATA entries are kept only while their views are held: fed
		 * a byte at a time, a stream makes one per byte. */
		if (c->type != MUXRING_CQE_DATA || x->hold_views)
			x->n++;
		/* Streams keep their payload in slot id / 2 - 1: the
		 * client's ids 3, 5, 7 are slots 0, 1, 2. Set at once, so
		 * the stream's next entries carry it. */
		if (c->type == MUXRING_CQE_STREAM_ACCEPTED)
			muxring_engine_stream_set_data(
				c->stream,
				muxring_engine_stream_id(c->stream) / 2 - 1);
		if (c->type == MUXRING_CQE_DATA) {
			uint64_t slot = c->user_data;

			assert_true(slot < 4);
			assert_true(x->rx_len[slot] + c->view.len <=
				    sizeof(x->rx[slot]));
			memcpy(x->rx[slot] + x->rx_len[slot], c->view.data,
			       c->view.len);
			x->rx_len[slot] += c->view.len;
			if (!x->hold_views)
				muxring_engine_view_release(&c->view);
		}
		if (x->auto_done && c->type != MUXRING_CQE_STREAM_CLOSED)
			muxring_engine_cqe_done(x->e, c);
	}
	assert_true(x->n < MAX_ENTRIES); /* else entries were left unpolled */
}

/* Gives back everything still held and frees the end. */
static void end_free(struct end *x)
{
	drain(x);
	for (size_t i = 0; i < x->n; i++) {
		if (x->ev[i].type == MUXRING_CQE_DATA)
			muxring_engine_view_release(&x->ev[i].view);
		if (x->ev[i].type == MUXRING_CQE_STREAM_CLOSED ||
		    !x->auto_done)
			muxring_engine_cqe_done(x->e, &x->ev[i]);
	}
	muxring_engine_destroy(x->e);
	free(x);
}

/* Moves what `from` has to send into `to`, `chunk` bytes per feed, with
 * partial sends of at most 3 * chunk bytes. Returns bytes moved. */
static size_t send_to(struct end *from, struct end *to, size_t chunk)
{
	size_t moved = 0;
	struct iovec iov[64];
	size_t n;

	while ((n = muxring_engine_send_iov(from->e, iov, 64, 3 * chunk))) {
		size_t taken = 0;

		for (size_t i = 0; i < n && taken < 3 * chunk; i++) {
			const uint8_t *p = iov[i].iov_base;
			size_t len = iov[i].iov_len;

			if (len > 3 * chunk - taken)
				len = 3 * chunk - taken;
			for (size_t off = 0; off < len; off += chunk) {
				size_t k = len - off < chunk ? len - off : chunk;

				muxring_engine_feed(to->e, p + off, k);
			}
			taken += len;
		}
		muxring_engine_sent(from->e, taken);
		moved += taken;
		drain(to);
	}
	return moved;
}

/* Both directions until nothing moves. */
static void pump(struct end *a, struct end *b, size_t chunk)
{
	do {
		drain(a);
		drain(b);
	} while (send_to(a, b, chunk) + send_to(b, a, chunk));
}

static size_t count(const struct end *x, uint16_t type)
{
	size_t k = 0;

	for (size_t i = 0; i < x->n; i++)
		k += x->ev[i].type == type;
	return k;
}

/* The first entry of `type` (fails the test when there is none). */
static const struct muxring_cqe *find(const struct end *x, uint16_t type)
{
	for (size_t i = 0; i < x->n; i++)
		if (x->ev[i].type == type)
			return &x->ev[i];
	fail_msg("no entry of type %u", type);
	return NULL;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 9));
}

/* ---- echo in any chunking ---------------------------------------------- */

/* The server end echoes: what arrived on a stream is written back at its
 * EOF, and the stream closed. */
static void serve_echo(struct end *srv, size_t *seen)
{
	for (; *seen < srv->n; (*seen)++) {
		struct muxring_cqe *c = &srv->ev[*seen];

		if (c->type == MUXRING_CQE_EOF) {
			uint64_t slot = c->user_data;

			assert_int_equal(muxring_engine_stream_write(
				c->stream, srv->rx[slot], srv->rx_len[slot],
				100 + slot), 0);
			assert_int_equal(muxring_engine_stream_close(c->stream), 0);
		}
	}
}

static void echo_with_chunk(size_t chunk)
{
	static const size_t sizes[3] = { 1, 5000, 300 * KIB };
	struct end *cli = end_new(MUXRING_CLIENT, NULL);
	struct end *srv = end_new(MUXRING_SERVER, NULL);
	struct muxring_stream *st[3];
	uint8_t *data[3];
	size_t seen = 0;

	for (int i = 0; i < 3; i++) {
		data[i] = malloc(sizes[i]);
		assert_non_null(data[i]);
		fill_pattern(data[i], sizes[i], (unsigned)i);
		assert_int_equal(muxring_engine_stream_open(cli->e, (uint64_t)i,
							    &st[i]), 0);
		assert_int_equal(muxring_engine_stream_id(st[i]), 3 + 2 * i);
		assert_int_equal(muxring_engine_stream_write(st[i], data[i],
							     sizes[i], 10 + i),
				 0);
		assert_int_equal(muxring_engine_stream_close_write(st[i]), 0);
	}
	for (;;) {
		size_t moved;

		drain(srv);
		serve_echo(srv, &seen);
		moved = send_to(cli, srv, chunk);
		moved += send_to(srv, cli, chunk);
		if (!moved && seen == srv->n)
			break;
	}
	assert_int_equal(count(cli, MUXRING_CQE_STREAM_CLOSED), 3);
	assert_int_equal(count(cli, MUXRING_CQE_EOF), 3);
	assert_int_equal(count(srv, MUXRING_CQE_STREAM_ACCEPTED), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cli->rx_len[i], sizes[i]);
		assert_memory_equal(cli->rx[i], data[i], sizes[i]);
		free(data[i]);
	}
	for (size_t i = 0; i < cli->n; i++) {
		const struct muxring_cqe *c = &cli->ev[i];

		assert_null(c->session);
		if (c->type == MUXRING_CQE_WRITE_DONE)
			assert_int_equal(c->res, (int64_t)sizes[c->user_data - 10]);
		if (c->type == MUXRING_CQE_STREAM_CLOSED) {
			assert_int_equal(c->code, MUXRING_NO_ERROR);
			assert_int_equal(c->res, 0);
		}
	}
	assert_int_equal(count(srv, MUXRING_CQE_WRITE_DONE), 3);
	assert_false(muxring_engine_ended(cli->e));
	end_free(cli);
	end_free(srv);
}

static void test_echo_byte_at_a_time(void **state)
{
	(void)state;
	echo_with_chunk(1);
}

static void test_echo_odd_chunks(void **state)
{
	(void)state;
	echo_with_chunk(7);
}

static void test_echo_page_chunks(void **state)
{
	(void)state;
	echo_with_chunk(4096);
}

static void test_echo_whole(void **state)
{
	(void)state;
	echo_with_chunk(1u << 22);
}

/* ---- zero copy ----------------------------------------------------------- */

static int released;

static void on_release(void *data, void *arg)
{
	assert_ptr_equal(arg, &released);
	free(data);
	released++;
}

/* Views point into the buffer the bytes were fed in; the buffer goes back
 * to its owner only after the caller's reference and every view are gone.
 * A write from a buffer is sent from it without a copy. */
static void test_zero_copy_feed_and_write(void **state)
{
	struct end *cli = end_new(MUXRING_CLIENT, NULL);
	struct end *srv = end_new(MUXRING_SERVER, NULL);
	struct muxring_engine_buf *out = muxring_engine_buf_alloc(1000);
	struct muxring_engine_buf *in;
	struct muxring_stream *s;
	struct iovec iov[16];
	size_t n, total = 0;
	uint8_t *wire;
	bool from_out = false;

	(void)state;
	assert_non_null(out);
	assert_int_equal(muxring_engine_buf_size(out), 1000);
	fill_pattern(muxring_engine_buf_data(out), 1000, 9);
	assert_int_equal(muxring_engine_stream_open(cli->e, 0, &s), 0);
	assert_int_equal(muxring_engine_stream_write_buf(
		s, out, (uint8_t *)muxring_engine_buf_data(out) + 100, 800, 1), 0);
	muxring_engine_buf_unref(out); /* the write holds its own */

	n = muxring_engine_send_iov(cli->e, iov, 16, SIZE_MAX);
	wire = malloc(4096);
	assert_non_null(wire);
	for (size_t i = 0; i < n; i++) {
		if (iov[i].iov_base == (uint8_t *)muxring_engine_buf_data(out) + 100)
			from_out = true;
		memcpy(wire + total, iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	assert_true(from_out); /* the payload iovec is the caller's memory */
	assert_int_equal(total, 8 + 800);
	muxring_engine_sent(cli->e, total);
	drain(cli);
	assert_int_equal(find(cli, MUXRING_CQE_WRITE_DONE)->res, 800);

	in = muxring_engine_buf_wrap(wire, 4096, on_release, &released);
	assert_non_null(in);
	srv->hold_views = true;
	assert_int_equal(muxring_engine_feed_buf(srv->e, in, wire, total), 0);
	muxring_engine_buf_unref(in);
	drain(srv);
	{
		const struct muxring_cqe *d = find(srv, MUXRING_CQE_DATA);

		assert_ptr_equal(d->view.data, wire + 8);
		assert_int_equal(d->view.len, 800);
	}
	assert_int_equal(released, 0); /* the view still holds it */
	for (size_t i = 0; i < srv->n; i++)
		if (srv->ev[i].type == MUXRING_CQE_DATA)
			muxring_engine_view_release(&srv->ev[i].view);
	assert_int_equal(released, 1);
	end_free(cli);
	end_free(srv);
}

/* ---- flow control -------------------------------------------------------- */

static void test_flow_control_window(void **state)
{
	enum { TOTAL = 1024 * 1024 };
	struct end *cli = end_new(MUXRING_CLIENT, NULL);
	struct end *srv = end_new(MUXRING_SERVER, NULL);
	struct muxring_engine_window w;
	struct muxring_stream *s, *peer;
	uint8_t *data = malloc(TOTAL);

	(void)state;
	assert_non_null(data);
	fill_pattern(data, TOTAL, 3);
	assert_int_equal(muxring_engine_stream_open(cli->e, 0, &s), 0);
	assert_int_equal(muxring_engine_stream_window(s, &w), 0);
	assert_int_equal(w.send, 256 * KIB);
	assert_int_equal(muxring_engine_stream_write(s, data, TOTAL, 1), 0);

	/* The reader holds every view: only one window's worth arrives. */
	srv->hold_views = true;
	pump(cli, srv, 65536);
	assert_int_equal(srv->rx_len[0], 256 * KIB);
	assert_int_equal(muxring_engine_stream_window(s, &w), 0);
	assert_int_equal(w.send, 0);
	peer = find(srv, MUXRING_CQE_STREAM_ACCEPTED)->stream;
	assert_int_equal(muxring_engine_stream_window(peer, &w), 0);
	assert_int_equal(w.recv, 0);
	assert_int_equal(count(cli, MUXRING_CQE_WRITE_DONE), 0);
	assert_false(muxring_engine_want_send(cli->e));

	/* Releasing the views grants the window back; the rest flows. */
	srv->hold_views = false;
	for (size_t i = 0; i < srv->n; i++)
		if (srv->ev[i].type == MUXRING_CQE_DATA)
			muxring_engine_view_release(&srv->ev[i].view);
	assert_true(muxring_engine_want_send(srv->e)); /* the WNDINC */
	pump(cli, srv, 65536);
	assert_int_equal(srv->rx_len[0], TOTAL);
	assert_memory_equal(srv->rx[0], data, TOTAL);
	assert_int_equal(find(cli, MUXRING_CQE_WRITE_DONE)->res, TOTAL);
	free(data);
	end_free(cli);
	end_free(srv);
}

/* ---- reset ----------------------------------------------------------------- */

static void test_reset_by_peer(void **state)
{
	struct end *cli = end_new(MUXRING_CLIENT, NULL);
	struct end *srv = end_new(MUXRING_SERVER, NULL);
	static uint8_t big[600 * 1024];
	const struct muxring_cqe *c;
	struct muxring_stream *s;

	(void)state;
	assert_int_equal(muxring_engine_stream_open(cli->e, 2, &s), 0);
	assert_int_equal(muxring_engine_stream_write(s, "hi", 2, 1), 0);
	pump(cli, srv, 100);
	c = find(srv, MUXRING_CQE_STREAM_ACCEPTED);
	/* More than a window is queued when the RST comes. */
	assert_int_equal(muxring_engine_stream_write(s, big, sizeof(big), 2), 0);
	assert_int_equal(muxring_engine_stream_reset(c->stream,
						     MUXRING_STREAM_CANCELLED), 0);
	pump(cli, srv, 100);
	c = find(cli, MUXRING_CQE_STREAM_CLOSED);
	assert_ptr_equal(c->stream, s);
	assert_int_equal(c->user_data, 2);
	assert_int_equal(c->code, MUXRING_STREAM_CANCELLED);
	assert_true(c->flags & MUXRING_CQE_F_REMOTE);
	assert_int_equal(c->res, MUXRING_ERR(MUXRING_STREAM_CANCELLED));
	for (size_t i = 0; i < cli->n; i++)
		if (cli->ev[i].type == MUXRING_CQE_WRITE_DONE &&
		    cli->ev[i].user_data == 2)
			assert_int_equal(cli->ev[i].res,
					 MUXRING_ERR(MUXRING_STREAM_CANCELLED));
	assert_int_equal(count(cli, MUXRING_CQE_WRITE_DONE), 2);
	/* The local side's own STREAM_CLOSED: reset here, not remote. */
	c = find(srv, MUXRING_CQE_STREAM_CLOSED);
	assert_false(c->flags & MUXRING_CQE_F_REMOTE);
	assert_int_equal(c->code, MUXRING_STREAM_CANCELLED);
	end_free(cli);
	end_free(srv);
}

/* ---- goaway and close ---------------------------------------------------- */

static void test_goaway_then_close(void **state)
{
	struct end *cli = end_new(MUXRING_CLIENT, NULL);
	struct end *srv = end_new(MUXRING_SERVER, NULL);
	struct muxring_stream *s, *refused;
	const struct muxring_cqe *c;

	(void)state;
	assert_int_equal(muxring_engine_stream_open(cli->e, 0, &s), 0);
	assert_int_equal(muxring_engine_stream_write(s, "one", 3, 0), 0);
	pump(cli, srv, 9);
	assert_int_equal(muxring_engine_goaway(srv->e, MUXRING_ENHANCE_YOUR_CALM,
					       "slow down", 9), 0);
	pump(cli, srv, 9);
	c = find(cli, MUXRING_CQE_GOAWAY);
	assert_int_equal(c->code, MUXRING_ENHANCE_YOUR_CALM);
	assert_true(c->flags & MUXRING_CQE_F_REMOTE);
	assert_int_equal(c->view.len, 9);
	assert_memory_equal(c->view.data, "slow down", 9);
	assert_int_equal(muxring_engine_stream_open(cli->e, 0, &refused),
			 MUXRING_ERR(MUXRING_REMOTE_GONE_AWAY));

	/* The stream opened before goes on. */
	assert_int_equal(muxring_engine_stream_write(s, "two", 3, 0), 0);
	pump(cli, srv, 9);
	assert_int_equal(srv->rx_len[0], 6);
	assert_memory_equal(srv->rx[0], "onetwo", 6);

	/* Close: both ends end; the server names the client's code. */
	assert_int_equal(muxring_engine_close(cli->e, MUXRING_NO_ERROR,
					      "done", 4), 0);
	assert_true(muxring_engine_ended(cli->e));
	assert_false(muxring_engine_done(cli->e)); /* GOAWAY not yet sent */
	pump(cli, srv, 9);
	assert_true(muxring_engine_done(cli->e));
	c = find(cli, MUXRING_CQE_SESSION_ENDED);
	assert_int_equal(c->res, MUXRING_ERR(MUXRING_SESSION_CLOSED));
	assert_ptr_equal(c, &cli->ev[cli->n - 1]); /* the last entry */
	assert_int_equal(find(cli, MUXRING_CQE_STREAM_CLOSED)->code,
			 MUXRING_SESSION_CLOSED);
	muxring_engine_feed_end(srv->e, 0); /* the transport's EOF */
	drain(srv);
	c = find(srv, MUXRING_CQE_SESSION_ENDED);
	assert_int_equal(c->res, MUXRING_ERR(MUXRING_PEER_EOF));
	assert_true(c->flags & MUXRING_CQE_F_REMOTE);
	assert_int_equal(c->code, MUXRING_NO_ERROR);
	assert_int_equal(c->view.len, 4);
	assert_memory_equal(c->view.data, "done", 4);
	assert_int_equal(muxring_engine_stream_open(srv->e, 0, &refused),
			 MUXRING_ERR(MUXRING_SESSION_CLOSED));
	end_free(cli);
	end_free(srv);
}

/* ---- time ---------------------------------------------------------------- */

static void test_deadlines_explicit_now(void **state)
{
	struct end *cli = end_new(MUXRING_CLIENT, NULL);
	struct end *srv = end_new(MUXRING_SERVER, NULL);
	static uint8_t big[300 * 1024];
	struct muxring_stream *s;
	const struct muxring_cqe *c;
	size_t before;

	(void)state;
	assert_int_equal(muxring_engine_stream_open(cli->e, 1, &s), 0);
	assert_int_equal(muxring_engine_stream_set_deadline(s, 0, 5), -EINVAL);
	assert_int_equal(muxring_engine_stream_set_deadline(
		s, MUXRING_DEADLINE_READ, 1000), 0);
	assert_int_equal(muxring_engine_next_deadline(cli->e), 1000);
	assert_int_equal(muxring_engine_expire(cli->e, 999), 1000);
	drain(cli);
	assert_int_equal(count(cli, MUXRING_CQE_DEADLINE), 0);
	assert_int_equal(muxring_engine_expire(cli->e, 1000), 0);
	drain(cli);
	c = find(cli, MUXRING_CQE_DEADLINE);
	assert_ptr_equal(c->stream, s);
	assert_int_equal(c->code, MUXRING_DEADLINE_READ);
	assert_int_equal(c->user_data, 1);

	/* A write stuck behind the window fails at its deadline; the
	 * stream stays open. */
	assert_int_equal(muxring_engine_stream_write(s, big, sizeof(big), 7), 0);
	srv->hold_views = true;
	pump(cli, srv, 4096);
	assert_int_equal(muxring_engine_stream_set_deadline(
		s, MUXRING_DEADLINE_WRITE, 2000), 0);
	before = cli->n;
	muxring_engine_expire(cli->e, 1500);
	drain(cli);
	assert_int_equal(cli->n, before);
	muxring_engine_expire(cli->e, 2000);
	drain(cli);
	c = find(cli, MUXRING_CQE_WRITE_DONE);
	assert_int_equal(c->user_data, 7);
	assert_int_equal(c->res, MUXRING_ERR(MUXRING_WRITE_TIMEOUT));
	assert_int_equal(count(cli, MUXRING_CQE_DEADLINE), 2);
	assert_int_equal(count(cli, MUXRING_CQE_STREAM_CLOSED), 0);
	assert_int_equal(muxring_engine_stream_write(s, "x", 1, 8), 0);
	end_free(cli);
	end_free(srv);
}

static void test_heartbeat_explicit_now(void **state)
{
	struct muxring_session_opts typed = { .flags = MUXRING_SESSION_TYPED };
	struct end *cli = end_new(MUXRING_CLIENT, &typed);
	struct end *srv = end_new(MUXRING_SERVER, &typed);
	struct muxring_stream *s;

	(void)state;
	assert_int_equal(muxring_engine_heartbeat(cli->e, 100, 50, 0, 42), 0);
	assert_int_equal(muxring_engine_next_deadline(cli->e), 100);
	pump(cli, srv, 5); /* the heartbeat stream's SYN */
	/* The beat goes out; next comes its failure time if no echo:
	 * interval + tolerance after the start. */
	assert_int_equal(muxring_engine_expire(cli->e, 100), 150);
	send_to(cli, srv, 5);  /* the beat */
	muxring_engine_set_now(cli->e, 130);
	send_to(srv, cli, 5);  /* its echo, timed at 130 */
	drain(cli);
	assert_int_equal(find(cli, MUXRING_CQE_HEARTBEAT)->res, 30);
	/* The heartbeat stream never reaches the application. */
	assert_int_equal(count(srv, MUXRING_CQE_STREAM_ACCEPTED), 0);

	/* Silence: no echo within interval + tolerance of the last one. */
	muxring_engine_expire(cli->e, 200);
	muxring_engine_expire(cli->e, 279);
	drain(cli);
	assert_int_equal(count(cli, MUXRING_CQE_HEARTBEAT_FAILED), 0);
	muxring_engine_expire(cli->e, 280);
	drain(cli);
	assert_int_equal(find(cli, MUXRING_CQE_HEARTBEAT_FAILED)->res,
			 -ETIMEDOUT);

	/* Typed streams still work next to it; the heartbeat type is the
	 * engine's. */
	assert_int_equal(muxring_engine_stream_open_typed(
		cli->e, MUXRING_HEARTBEAT_TYPE, 0, &s), -EINVAL);
	assert_int_equal(muxring_engine_stream_open_typed(cli->e, 77, 0, &s), 0);
	assert_int_equal(muxring_engine_stream_write(s, "t", 1, 0), 0);
	pump(cli, srv, 5);
	assert_int_equal(find(srv, MUXRING_CQE_STREAM_ACCEPTED)->code, 77);
	end_free(cli);
	end_free(srv);
}

/* ---- the accept backlog ----------------------------------------------------- */

/* An accepted stream counts against the backlog until its entry is given
 * back with muxring_engine_cqe_done(): the one beyond is refused. */
static void test_backlog_until_cqe_done(void **state)
{
	struct muxring_session_opts two = { .accept_backlog = 2 };
	struct end *cli = end_new(MUXRING_CLIENT, NULL);
	struct end *srv = end_new(MUXRING_SERVER, &two);
	struct muxring_stream *s[4];
	struct muxring_stats st;
	const struct muxring_cqe *c;

	(void)state;
	srv->auto_done = false;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(muxring_engine_stream_open(cli->e, (uint64_t)i,
							    &s[i]), 0);
		assert_int_equal(muxring_engine_stream_write(s[i], "x", 1, 0), 0);
	}
	pump(cli, srv, 64);
	assert_int_equal(count(srv, MUXRING_CQE_STREAM_ACCEPTED), 2);
	c = find(cli, MUXRING_CQE_STREAM_CLOSED);
	assert_ptr_equal(c->stream, s[2]);
	assert_int_equal(c->code, MUXRING_ACCEPT_QUEUE_FULL);
	assert_true(c->flags & MUXRING_CQE_F_REMOTE);

	/* One given back: the next stream gets in. */
	muxring_engine_cqe_done(srv->e, &srv->ev[0]);
	srv->ev[0].type = 0; /* done: end_free must not give it back again */
	assert_int_equal(muxring_engine_stream_open(cli->e, 3, &s[3]), 0);
	assert_int_equal(muxring_engine_stream_write(s[3], "y", 1, 0), 0);
	pump(cli, srv, 64);
	assert_int_equal(count(srv, MUXRING_CQE_STREAM_ACCEPTED), 1 + 1);
	c = &srv->ev[srv->n - 1];
	while (c->type != MUXRING_CQE_STREAM_ACCEPTED)
		c--;
	assert_int_equal(muxring_engine_stream_id(c->stream), 9);
	assert_int_equal(count(cli, MUXRING_CQE_STREAM_CLOSED), 1);

	assert_int_equal(muxring_engine_stats(srv->e, &st), 0);
	assert_int_equal(st.streams_accepted, 3);
	assert_int_equal(st.streams_opened, 0);
	assert_int_equal(muxring_engine_stats(cli->e, &st), 0);
	assert_int_equal(st.streams_opened, 4);
	assert_true(st.frames_out >= 4 && st.bytes_out >= 4 * 9);
	end_free(cli);
	end_free(srv);
}

/* ---- hostile input and misuse ------------------------------------------- */

static void test_malformed_input_ends_session(void **state)
{
	/* A WNDINC frame must carry 4 bytes; this one says 5. */
	static const uint8_t bad[] = { 0, 0, 5, 0x20, 0, 0, 0, 3, 1, 2, 3, 4, 5 };
	struct end *srv = end_new(MUXRING_SERVER, NULL);
	struct iovec iov[4];
	const struct muxring_cqe *c;
	size_t n;

	(void)state;
	/* PROTOCOL.md: a WNDINC whose length is not 4 is a FrameSizeError. */
	assert_int_equal(muxring_engine_feed(srv->e, bad, sizeof(bad)),
			 MUXRING_ERR(MUXRING_FRAME_SIZE_ERROR));
	assert_true(muxring_engine_ended(srv->e));
	drain(srv);
	c = find(srv, MUXRING_CQE_SESSION_ENDED);
	assert_int_equal(c->res, MUXRING_ERR(MUXRING_FRAME_SIZE_ERROR));
	/* The GOAWAY naming the error waits in the output: type 3, its code
	 * in the second word of the body. */
	n = muxring_engine_send_iov(srv->e, iov, 4, SIZE_MAX);
	assert_true(n >= 1 && iov[0].iov_len >= 16);
	assert_int_equal(((const uint8_t *)iov[0].iov_base)[3] >> 4, 0x3);
	assert_int_equal(((const uint8_t *)iov[0].iov_base)[15],
			 MUXRING_FRAME_SIZE_ERROR);
	assert_int_equal(muxring_engine_feed(srv->e, bad, sizeof(bad)), 0);
	end_free(srv);
}

static void test_argument_errors(void **state)
{
	struct muxring_session_opts small = { .window = 1000 };
	struct muxring_session_opts flags = { .flags = 0x80 };
	struct muxring_engine *e;
	struct muxring_engine_buf *b;
	struct muxring_stream *s;
	uint8_t other[4];

	(void)state;
	assert_int_equal(muxring_engine_create(&e, (enum muxring_role)7, NULL),
			 -EINVAL);
	assert_int_equal(muxring_engine_create(&e, MUXRING_CLIENT, &small),
			 -EINVAL);
	assert_int_equal(muxring_engine_create(&e, MUXRING_CLIENT, &flags),
			 -EINVAL);
	assert_int_equal(muxring_engine_create(&e, MUXRING_CLIENT, NULL), 0);
	b = muxring_engine_buf_alloc(16);
	assert_non_null(b);
	assert_int_equal(muxring_engine_feed_buf(e, b, other, 4), -EINVAL);
	assert_int_equal(muxring_engine_feed_buf(
		e, b, (uint8_t *)muxring_engine_buf_data(b) + 8, 9), -EINVAL);
	assert_int_equal(muxring_engine_stream_open_typed(e, 5, 0, &s), -EINVAL);
	assert_int_equal(muxring_engine_stream_open(e, 0, &s), 0);
	assert_int_equal(muxring_engine_stream_write_buf(s, b, other, 1, 0),
			 -EINVAL);
	assert_int_equal(muxring_engine_stream_write(s, NULL, 1, 0), -EINVAL);
	/* The loop's write needs a loop: an engine's stream is refused. */
	assert_int_equal(muxring_stream_write(s, "x", 1, 0),
			 MUXRING_ERR(MUXRING_SESSION_CLOSED));
	assert_int_equal(muxring_engine_heartbeat(e, 10, 10, 0, 1), -EINVAL);
	assert_int_equal(muxring_engine_stream_close_write(s), 0);
	assert_int_equal(muxring_engine_stream_write(s, "x", 1, 0),
			 MUXRING_ERR(MUXRING_STREAM_CLOSED));
	muxring_engine_buf_unref(b);
	muxring_engine_destroy(e);
	muxring_engine_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_byte_at_a_time),
		cmocka_unit_test(test_echo_odd_chunks),
		cmocka_unit_test(test_echo_page_chunks),
		cmocka_unit_test(test_echo_whole),
		cmocka_unit_test(test_zero_copy_feed_and_write),
		cmocka_unit_test(test_flow_control_window),
		cmocka_unit_test(test_reset_by_peer),
		cmocka_unit_test(test_goaway_then_close),
		cmocka_unit_test(test_deadlines_explicit_now),
		cmocka_unit_test(test_heartbeat_explicit_now),
		cmocka_unit_test(test_backlog_until_cqe_done),
		cmocka_unit_test(test_malformed_input_ends_session),
		cmocka_unit_test(test_argument_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
