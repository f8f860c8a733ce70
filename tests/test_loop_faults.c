/*
 * test_loop_faults.c - resource failures end at most one session.
 *
 * A representative workload on one loop (create, listen, connect, typed
 * sessions, streams, small and large writes echoed back, reads, a
 * heartbeat, a deadline that fires, close) runs with a counting allocator
 * in the loop options (muxring_loop_opts.mem). A first run counts its
 * allocations; then the workload is run again once for every k, with
 * allocation number k failing. Each run must end (no hang) without a crash
 * (ASan), every failure must surface as an error (a call returning -ENOMEM,
 * or a session ending with an error; failures the library can retry
 * without loss may also be absorbed), the loop must then serve a fresh
 * session that echoes every byte, and once the loop is destroyed every
 * block the allocator handed out must be back.
 *
 * The same workload then meets a submission queue that refuses an SQE (at
 * every turn in turn), a tiny submission queue that is always full, and
 * -ENOMEM reported by the kernel for a receive and for a send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counting_mem.h"
#include "muxring.h"
#include "uring/loop.h"

/* ---- the workload ------------------------------------------------------ */

#define STREAMS 3u
#define SMALL 100u
#define SMALL_WRITES 3u
#define LARGE (40u << 10)
#define PER_STREAM (SMALL * SMALL_WRITES + LARGE)
#define MAX_SERVER_STREAMS 16u
#define LISTENER_UD 0x1111u
#define CLIENT_UD 0x2222u
#define VERIFY_UD 0x3333u

enum fault_kind {
	FAULT_NONE,
	FAULT_SQ_REFUSAL, /* at turn `at`, the ring refuses `count` SQEs */
	FAULT_CQE_ERROR,  /* at turn `at`, the next completion of `tag`
			     reports `res` */
};

struct fault_plan {
	enum fault_kind kind;
	unsigned at;
	unsigned count;
	enum mr_op_tag tag;
	int res;
};

struct client_stream {
	struct muxring_stream *st;   /* NULL once closed or its session ended */
	uint64_t echoed;             /* bytes come back */
	bool eof;
};

struct server_stream {
	struct muxring_stream *st;
	bool used;
};

struct work {
	struct muxring_loop *loop;
	struct counting_mem *mem;
	const struct fault_plan *plan;
	uint8_t large[LARGE];
	struct muxring_listener *listener;   /* NULL once LISTENER_CLOSED */
	struct muxring_session *client;      /* NULL once ended */
	struct muxring_session *server;
	struct client_stream cs[STREAMS];
	struct server_stream ss[MAX_SERVER_STREAMS];
	bool listener_closed, client_ended, server_ended, server_seen;
	bool client_ready, streams_started, closing, heartbeat_seen;
	bool deadline_seen;
	unsigned turns;
	/* What happened. */
	bool saw_error;        /* a call failed or a session ended badly */
	bool saw_enomem;       /* ... with -ENOMEM */
	bool bad_byte;         /* an echoed byte differed */
};

static void note_error(struct work *w, int64_t err)
{
	w->saw_error = true;
	if (err == -ENOMEM)
		w->saw_enomem = true;
}

/* Calls that may fail in a run with faults; the error is noted. */
static bool ok(struct work *w, int err)
{
	if (err >= 0)
		return true;
	note_error(w, err);
	return false;
}

static uint8_t byte_at(unsigned stream, uint64_t off)
{
	return (uint8_t)(off * 31 + stream * 7 + 1);
}

static void start_streams(struct work *w)
{
	uint8_t small[SMALL];
	unsigned i, j, k;

	w->streams_started = true;
	ok(w, muxring_session_heartbeat(w->client, 10000000000ull, 0));
	ok(w, muxring_session_heartbeat_beat(w->client));
	for (i = 0; i < STREAMS; i++) {
		struct client_stream *c = &w->cs[i];

		if (!ok(w, muxring_stream_open_typed(w->client, 1, i, &c->st))) {
			c->st = NULL;
			continue;
		}
		/* A read deadline that fires soon (stream 0 half-closes only
		 * then), and write deadlines that never do. */
		if (!ok(w, muxring_stream_set_deadline(c->st, i == 0
				? MUXRING_DEADLINE_READ : MUXRING_DEADLINE_WRITE,
				muxring_now_ns() + (i == 0 ? 1000000u
							   : 60000000000ull))) &&
		    i == 0)
			ok(w, muxring_stream_close_write(c->st));
		for (j = 0; j < SMALL_WRITES; j++) {
			for (k = 0; k < SMALL; k++)
				small[k] = byte_at(i, j * SMALL + k);
			ok(w, muxring_stream_write(c->st, small, SMALL, j));
		}
		for (k = 0; k < LARGE; k++)
			w->large[k] = byte_at(i, SMALL * SMALL_WRITES + k);
		ok(w, muxring_stream_write(c->st, w->large, LARGE, 99));
		if (i)
			ok(w, muxring_stream_close_write(c->st));
	}
}

static bool streams_closed(const struct work *w)
{
	unsigned i;

	for (i = 0; i < STREAMS; i++)
		if (w->cs[i].st)
			return false;
	return true;
}

static bool streams_done(const struct work *w)
{
	unsigned i;

	for (i = 0; i < STREAMS; i++)
		if (!w->cs[i].eof)
			return false;
	return streams_closed(w);
}

/* Winds down: closes what is open (after a failure, or at the end). */
static void close_all(struct work *w)
{
	w->closing = true;
	if (w->client)
		ok(w, muxring_session_close(w->client, MUXRING_NO_ERROR, NULL, 0));
	if (w->server)
		ok(w, muxring_session_close(w->server, MUXRING_NO_ERROR, NULL, 0));
	if (w->listener)
		muxring_listener_close(w->listener);
}

static void forget_session_streams(struct work *w, bool client)
{
	unsigned i;

	if (client) {
		for (i = 0; i < STREAMS; i++)
			w->cs[i].st = NULL;
		return;
	}
	for (i = 0; i < MAX_SERVER_STREAMS; i++)
		w->ss[i].st = NULL;
}

static void on_session_entry(struct work *w, struct muxring_cqe *c)
{
	bool client = c->user_data == CLIENT_UD && c->session == w->client;

	if (c->type == MUXRING_CQE_SESSION_READY) {
		if (c->res < 0) {
			note_error(w, c->res);
		} else if (client) {
			w->client_ready = true;
		} else if (!w->server_seen) {
			w->server = c->session;
			w->server_seen = true;
		} else {
			/* A second server session: not part of this plan. */
			ok(w, muxring_session_close(c->session, 0, NULL, 0));
		}
		return;
	}
	/* SESSION_ENDED: before the end of the plan it says something
	 * failed (an accept that found no memory shows as the peer's EOF). */
	if (!w->closing || (c->res != MUXRING_ERR(MUXRING_SESSION_CLOSED) &&
			    c->res != MUXRING_ERR(MUXRING_PEER_EOF)))
		note_error(w, c->res);
	if (c->session == w->client) {
		w->client = NULL;
		w->client_ended = true;
		forget_session_streams(w, true);
	} else if (c->session == w->server) {
		w->server = NULL;
		w->server_ended = true;
		forget_session_streams(w, false);
	}
	if (!w->closing)
		close_all(w);
}

static void on_server_stream(struct work *w, struct muxring_cqe *c)
{
	unsigned i;

	switch (c->type) {
	case MUXRING_CQE_STREAM_ACCEPTED:
		for (i = 0; i < MAX_SERVER_STREAMS && w->ss[i].used; i++)
			;
		if (i == MAX_SERVER_STREAMS) {
			ok(w, muxring_stream_reset(c->stream, MUXRING_STREAM_REFUSED));
			return;
		}
		w->ss[i].used = true;
		w->ss[i].st = c->stream;
		muxring_stream_set_data(c->stream, i);
		return;
	case MUXRING_CQE_DATA:
		ok(w, muxring_stream_write(c->stream, c->view.data, c->view.len, 0));
		muxring_view_release(&c->view);
		return;
	case MUXRING_CQE_EOF:
		ok(w, muxring_stream_close(c->stream));
		return;
	case MUXRING_CQE_STREAM_CLOSED:
		i = (unsigned)muxring_stream_data(c->stream);
		if (i < MAX_SERVER_STREAMS && w->ss[i].st == c->stream)
			w->ss[i].st = NULL;
		return;
	default:
		return;
	}
}

static void on_client_stream(struct work *w, struct muxring_cqe *c)
{
	unsigned i = (unsigned)muxring_stream_data(c->stream);
	struct client_stream *cs;
	size_t k;

	if (i >= STREAMS || w->cs[i].st != c->stream) {
		if (c->type == MUXRING_CQE_DATA)
			muxring_view_release(&c->view);
		return;
	}
	cs = &w->cs[i];
	switch (c->type) {
	case MUXRING_CQE_DATA:
		/* After a failure (a write that was refused) bytes may be
		 * missing; until then every one must be right. */
		for (k = 0; k < c->view.len && !w->saw_error; k++)
			if (c->view.data[k] != byte_at(i, cs->echoed + k))
				w->bad_byte = true;
		cs->echoed += c->view.len;
		muxring_view_release(&c->view);
		return;
	case MUXRING_CQE_EOF:
		cs->eof = cs->echoed == PER_STREAM;
		return;
	case MUXRING_CQE_WRITE_DONE:
		if (c->res < 0)
			note_error(w, c->res);
		return;
	case MUXRING_CQE_DEADLINE:
		w->deadline_seen = true;
		ok(w, muxring_stream_close_write(c->stream));
		return;
	case MUXRING_CQE_STREAM_CLOSED:
		if (c->res < 0)
			note_error(w, c->res);
		cs->st = NULL;
		return;
	default:
		return;
	}
}

static void on_entry(struct work *w, struct muxring_cqe *c)
{
	switch (c->type) {
	case MUXRING_CQE_SESSION_READY:
	case MUXRING_CQE_SESSION_ENDED:
		on_session_entry(w, c);
		return;
	case MUXRING_CQE_LISTENER_CLOSED:
		if (c->res < 0)
			note_error(w, c->res);
		w->listener = NULL;
		w->listener_closed = true;
		if (!w->closing)
			close_all(w);
		return;
	case MUXRING_CQE_HEARTBEAT:
		w->heartbeat_seen = true;
		return;
	case MUXRING_CQE_GOAWAY:
	case MUXRING_CQE_HEARTBEAT_FAILED:
	case MUXRING_CQE_POLL:
		return;
	default:
		break;
	}
	if (c->session == w->client)
		on_client_stream(w, c);
	else if (c->session == w->server)
		on_server_stream(w, c);
	else if (c->type == MUXRING_CQE_DATA)
		muxring_view_release(&c->view);
}

static bool finished(const struct work *w)
{
	return w->listener_closed && (w->client_ended || !w->client) &&
	       (w->server_ended || !w->server);
}

static void apply_plan(struct work *w)
{
	const struct fault_plan *p = w->plan;

	if (!p || p->at != w->turns)
		return;
	if (p->kind == FAULT_SQ_REFUSAL)
		mr_loop_inject_sq_refusal(w->loop, p->count);
	else if (p->kind == FAULT_CQE_ERROR)
		mr_loop_inject_cqe_error(w->loop, p->tag, p->res);
}

/* One turn: wait a little, handle every entry, move the plan on. */
static void turn(struct work *w)
{
	struct muxring_cqe *cqes[64];
	unsigned n, i;
	int ret;

	apply_plan(w);
	ret = muxring_submit_and_wait(w->loop, 1, 5000000);
	if (ret < 0 && ret != -EINTR)
		note_error(w, ret);
	n = muxring_peek_batch_cqe(w->loop, cqes, 64);
	for (i = 0; i < n; i++)
		on_entry(w, cqes[i]);
	muxring_cq_advance(w->loop, n);
	w->turns++;
	if (w->client_ready && !w->streams_started && w->client)
		start_streams(w);
	/* The end of the plan, or after a failure once the streams are
	 * over (a heartbeat or deadline that failed will not come). */
	if (!w->closing && w->streams_started && streams_closed(w) &&
	    (w->saw_error || (w->heartbeat_seen && w->deadline_seen)))
		close_all(w);
}

#define TURN_LIMIT 4000u

/* Listen, connect, run until everything ended. Returns true when the
 * whole workload ran (every byte echoed, heartbeat and deadline seen). */
static bool run_workload(struct work *w)
{
	struct muxring_session_opts typed = {.flags = MUXRING_SESSION_TYPED};
	char port[16];

	if (!ok(w, muxring_listen(w->loop, "127.0.0.1", "0", 0, &typed,
				  LISTENER_UD, &w->listener))) {
		w->listener = NULL;
		return false;
	}
	snprintf(port, sizeof(port), "%d", muxring_listener_port(w->listener));
	if (!ok(w, muxring_connect(w->loop, "127.0.0.1", port, &typed,
				   CLIENT_UD, &w->client))) {
		w->client = NULL;
		close_all(w);
	}
	while (!finished(w) && w->turns < TURN_LIMIT)
		turn(w);
	assert_true(finished(w));
	/* Faults planned but not met stop here. */
	mr_loop_inject_sq_refusal(w->loop, 0);
	mr_loop_inject_cqe_error(w->loop, MR_OP_RECV, 0);
	return streams_done(w) && w->heartbeat_seen && w->deadline_seen &&
	       !w->bad_byte;
}

/* ---- a fresh session on the same loop ---------------------------------- */

struct verify {
	struct muxring_session *client, *server;
	struct muxring_stream *st;
	uint64_t echoed;
	bool bad, eof, close_asked, ended_client, ended_server;
	bool listener_closed;
};

static void verify_entry(struct verify *v, struct muxring_cqe *c)
{
	size_t k;

	switch (c->type) {
	case MUXRING_CQE_SESSION_READY:
		assert_int_equal(c->res, 0);
		if (c->session != v->client)
			v->server = c->session;
		return;
	case MUXRING_CQE_DATA:
		if (c->session == v->server) {
			assert_int_equal(muxring_stream_write(c->stream, c->view.data,
							      c->view.len, 0),
					 0);
		} else {
			for (k = 0; k < c->view.len; k++)
				if (c->view.data[k] != byte_at(9, v->echoed + k))
					v->bad = true;
			v->echoed += c->view.len;
		}
		muxring_view_release(&c->view);
		return;
	case MUXRING_CQE_EOF:
		if (c->session == v->server)
			assert_int_equal(muxring_stream_close(c->stream), 0);
		else
			v->eof = true;
		return;
	case MUXRING_CQE_WRITE_DONE:
		assert_true(c->res >= 0);
		return;
	case MUXRING_CQE_SESSION_ENDED:
		if (c->session == v->client)
			v->ended_client = true;
		else
			v->ended_server = true;
		return;
	case MUXRING_CQE_LISTENER_CLOSED:
		v->listener_closed = true;
		return;
	default:
		return;
	}
}

/* The loop, after whatever happened to it, serves a new session: 64 KiB
 * echoed byte for byte, then everything closes cleanly. */
static void verify_loop_serves(struct muxring_loop *loop)
{
	struct muxring_listener *l;
	struct muxring_cqe *cqes[64];
	uint8_t data[64u << 10];
	struct verify v = {0};
	char port[16];
	unsigned turns, n, i;
	size_t k;

	assert_int_equal(muxring_listen(loop, "127.0.0.1", "0", 0, NULL,
					VERIFY_UD, &l),
			 0);
	snprintf(port, sizeof(port), "%d", muxring_listener_port(l));
	assert_int_equal(muxring_connect(loop, "127.0.0.1", port, NULL,
					 VERIFY_UD, &v.client),
			 0);
	assert_int_equal(muxring_stream_open(v.client, 0, &v.st), 0);
	for (k = 0; k < sizeof(data); k++)
		data[k] = byte_at(9, k);
	assert_int_equal(muxring_stream_write(v.st, data, sizeof(data), 1), 0);
	assert_int_equal(muxring_stream_close_write(v.st), 0);
	for (turns = 0; turns < TURN_LIMIT && !v.listener_closed; turns++) {
		int ret = muxring_submit_and_wait(loop, 1, 5000000);

		/* A wake-up with nothing to show is -EINTR, as in turn(). */
		assert_true(ret >= 0 || ret == -EINTR);
		n = muxring_peek_batch_cqe(loop, cqes, 64);
		for (i = 0; i < n; i++)
			verify_entry(&v, cqes[i]);
		muxring_cq_advance(loop, n);
		if (v.eof && !v.close_asked) {
			assert_int_equal(v.echoed, sizeof(data));
			muxring_session_close(v.client, 0, NULL, 0);
			v.close_asked = true;
		}
		if (v.ended_client && v.ended_server && l) {
			muxring_listener_close(l);
			l = NULL;
		}
	}
	assert_true(v.listener_closed);
	assert_false(v.bad);
}

/* ---- runs -------------------------------------------------------------- */

struct outcome {
	bool created;     /* the loop was created */
	bool complete;    /* the workload ran to its end */
	bool saw_error, saw_enomem;
	struct muxring_stats stats;
};

static struct outcome run_once(struct counting_mem *m, const struct fault_plan *plan,
			       unsigned sq_entries)
{
	struct muxring_mem mem;
	struct muxring_loop_opts opts = {
		.sq_entries = sq_entries,
		.recv_buffers = 16,
		.recv_buffer_size = 4096,
		.send_arena_size = 64u << 10,
		.send_buffer_size = 16u << 10,
		.cq_entries = 16,
		.linger_ms = 50,
		.mem = counting_mem_as_mem(m, &mem),
	};
	struct outcome out = {0};
	struct work *w = calloc(1, sizeof(*w));
	int err;

	assert_non_null(w);
	err = muxring_loop_create(&w->loop, &opts);
	if (err) {
		/* Only the failure we caused, said clearly. */
		assert_int_equal(err, -ENOMEM);
		assert_true(m->failed);
		assert_true(strlen(muxring_loop_create_error()) > 0);
		assert_int_equal(m->live, 0);
		free(w);
		return out;
	}
	out.created = true;
	w->mem = m;
	w->plan = plan;
	out.complete = run_workload(w);
	out.saw_error = w->saw_error;
	out.saw_enomem = w->saw_enomem;
	assert_false(w->bad_byte);
	/* No more faults: the loop serves a new session. */
	m->fail_at = 0;
	verify_loop_serves(w->loop);
	muxring_loop_stats(w->loop, &out.stats);
	muxring_loop_destroy(w->loop);
	assert_int_equal(m->live, 0);
	free(w);
	return out;
}

static void test_every_allocation_fails_once_in_turn(void **state)
{
	struct counting_mem m = {0};
	struct outcome o;
	uint64_t total, k, enomem = 0, absorbed = 0;

	(void)state;
	o = run_once(&m, NULL, 0);
	assert_true(o.complete);
	assert_false(o.saw_error);
	total = m.calls;
	print_message("the workload makes %llu allocations\n",
		      (unsigned long long)total);
	assert_true(total > 50);
	for (k = 1; k <= total; k++) {
		m = (struct counting_mem){.fail_at = k};
		o = run_once(&m, NULL, 0);
		if (!m.failed)
			continue; /* this run took another path, with fewer */
		if (!o.created)
			continue;
		/* The failure was said, or retried without loss. */
		assert_true(o.saw_error || o.complete);
		if (o.saw_enomem)
			enomem++;
		else if (!o.saw_error)
			absorbed++;
	}
	print_message("%llu runs reported -ENOMEM, %llu absorbed the failure\n",
		      (unsigned long long)enomem, (unsigned long long)absorbed);
	assert_true(enomem > total / 4);
}

static void test_refused_sqe_at_every_turn(void **state)
{
	struct counting_mem m = {0};
	struct fault_plan plan = {.kind = FAULT_SQ_REFUSAL, .count = 1};
	struct outcome o;
	uint64_t refused = 0;
	unsigned t;

	(void)state;
	for (t = 0; t < 40; t++) {
		plan.at = t;
		plan.count = 1 + t % 3;
		m = (struct counting_mem){0};
		o = run_once(&m, &plan, 0);
		assert_true(o.created);
		assert_true(o.complete || o.saw_error);
		refused += o.stats.sq_refused;
	}
	assert_true(refused > 0);
}

static void test_tiny_submission_queue(void **state)
{
	struct counting_mem m = {0};
	struct outcome o;

	(void)state;
	o = run_once(&m, NULL, 2);
	assert_true(o.complete);
	assert_false(o.saw_error);
	assert_int_equal(o.stats.sq_refused, 0);
}

static void test_kernel_enomem_ends_one_session(void **state)
{
	const enum mr_op_tag tags[] = {MR_OP_RECV, MR_OP_SEND};
	struct counting_mem m = {0};
	struct fault_plan plan = {.kind = FAULT_CQE_ERROR, .res = -ENOMEM};
	struct outcome o;
	unsigned t, i;

	(void)state;
	for (i = 0; i < 2; i++) {
		for (t = 2; t < 12; t++) {
			plan.tag = tags[i];
			plan.at = t;
			m = (struct counting_mem){0};
			o = run_once(&m, &plan, 0);
			assert_true(o.complete || o.saw_enomem);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_allocation_fails_once_in_turn),
		cmocka_unit_test(test_refused_sqe_at_every_turn),
		cmocka_unit_test(test_tiny_submission_queue),
		cmocka_unit_test(test_kernel_enomem_ends_one_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
