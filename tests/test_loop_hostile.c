/*
 * test_loop_hostile.c - hostile peers against the loop: memory stays a
 * function of bytes, and the other sessions keep being served.
 *
 * The hostile peers are raw-frame writers over loopback TCP (raw_peer.h).
 * Covers: 1-byte DATA frames over the whole window of 32 streams against an
 * application that holds every view (the views hold exactly the windows,
 * the copies those bytes plus a block per stream, no receive buffer stays
 * pinned, the views are few); the same against an echo application while
 * the peer never reads, and then half-closes (the session ends within the
 * linger time all the same); a peer that reads but never credits the echo, so
 * the session's cap on buffered bytes stops its credit (and lifts it once
 * the peer reads again), and so does the loop's cap while another session
 * that buffers little goes on; peers stalled in the middle of a frame while 20
 * other sessions run. In each case a well-behaved session on the same loop
 * completes its streams, every byte checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "loop_harness.h"
#include "raw_peer.h"
#include "engine/session.h"
#include "wire/frame.h"

#define STREAMS 32u
#define WINDOW MR_INITIAL_WINDOW
#define KIB(n) ((uint64_t)(n) << 10)

/* A raw peer sending DATA on `streams` streams, `frame` bytes per frame,
 * round-robin, `per_stream` bytes each, from the generator the server's
 * LH_SINK streams check against. */
struct attack {
	struct rp rp;
	struct lh_peer *server;  /* the muxring session it talks to */
	unsigned streams;
	uint64_t per_stream;
	uint32_t frame;
	uint64_t sent[STREAMS];  /* payload bytes queued per stream */
	struct lh_gen gen[STREAMS];
	bool reads;              /* parse replies, keep within credit */
	bool stopped;            /* sends no more DATA */
	struct lh_peer *good_client; /* a well-behaved session's client */
};

static void attack_start(struct lh *h, struct attack *a, enum lh_role role,
			 const struct muxring_session_opts *opts)
{
	int fds[2];
	unsigned i;

	lh_tcp_fds(fds);
	rp_init(&a->rp, fds[0]);
	a->server = lh_peer_new(h, true, role, 0);
	assert_int_equal(muxring_session_create(h->loop, fds[1],
						MUXRING_SERVER, opts,
						(uintptr_t)a->server,
						&a->server->sess),
			 0);
	for (i = 0; i < a->streams; i++)
		lh_gen_init(&a->gen[i], ((uint64_t)rp_id(i) << 1) + 1);
}

/* Queues the next rounds of frames while the socket takes them. */
static void attack_pump(struct attack *a)
{
	uint8_t payload[4096];
	bool more = true;

	if (a->reads)
		rp_read(&a->rp);
	if (a->stopped) {
		rp_flush(&a->rp);
		return;
	}
	while (more && rp_flush(&a->rp) == 0) {
		unsigned i, rounds;

		more = false;
		for (rounds = 0; rounds < 64; rounds++) {
			for (i = 0; i < a->streams; i++) {
				uint64_t n = a->per_stream - a->sent[i];

				if (n > a->frame)
					n = a->frame;
				if (a->reads && n > a->rp.credit[i])
					n = a->rp.credit[i];
				if (!n)
					continue;
				lh_gen_fill(&a->gen[i], payload, n);
				rp_data(&a->rp, rp_id(i),
					a->sent[i] ? 0 : MR_FLAG_SYN, payload,
					n);
				a->sent[i] += n;
				more = true;
			}
		}
	}
}

static bool attack_all_sent(const struct attack *a)
{
	unsigned i;

	for (i = 0; i < a->streams; i++)
		if (a->sent[i] < a->per_stream)
			return false;
	return a->rp.out_off == a->rp.out_len;
}

static uint64_t server_received(struct lh *h, const struct attack *a)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < h->nstreams; i++)
		if (h->streams[i]->peer == a->server)
			total += h->streams[i]->received;
	return total;
}

/* A well-behaved pair on the same loop: 8 streams of 256 KiB echoed. */
static struct lh_peer *start_good_session(struct lh *h)
{
	struct lh_peer *c, *s;
	unsigned i;

	lh_pair_tcp(h, NULL, &c, &s);
	s->accept_role = LH_ECHO;
	for (i = 0; i < 8; i++)
		lh_open(c, LH_SOURCE, KIB(256));
	return c;
}

static bool good_done(struct lh *h, const struct lh_peer *client)
{
	size_t i;

	for (i = 0; i < h->nstreams; i++)
		if (h->streams[i]->peer == client && !h->streams[i]->closed)
			return false;
	return client->opened > 0;
}

static bool hold_hook(struct lh *h, struct muxring_cqe *c)
{
	struct attack *a = h->ctx;
	struct lh_stream *s;

	if (c->type != MUXRING_CQE_DATA)
		return false;
	s = (struct lh_stream *)(uintptr_t)muxring_stream_data(c->stream);
	if (s->peer == a->server)
		s->hold = true;
	return false;
}

static bool everything_arrived(struct lh *h)
{
	struct attack *a = h->ctx;

	attack_pump(a);
	return attack_all_sent(a) &&
	       server_received(h, a) == (uint64_t)a->streams * a->per_stream &&
	       good_done(h, a->good_client);
}

/* Closes the raw peers first (a session whose send waits on a peer that
 * never reads would wait out the loop's linger time), then every
 * session. */
static void end_all(struct lh *h, struct rp *one, struct rp *two)
{
	struct lh_peer *p;

	rp_free(one);
	if (two)
		rp_free(two);
	for (p = h->peers; p; p = p->next)
		if (p->sess && !p->ended)
			muxring_session_close(p->sess, 0, NULL, 0);
	lh_run(h, lh_all_sessions_ended, 20);
}

static void test_one_byte_frames_against_an_application_holding_every_view(void **state)
{
	struct attack a = {.streams = STREAMS, .per_stream = WINDOW, .frame = 1};
	struct lh *h = lh_new(NULL);
	struct muxring_stats ss, ls;
	uint64_t views = 0;
	size_t i;

	(void)state;
	h->ctx = &a;
	h->hook = hold_hook;
	attack_start(h, &a, LH_SINK, NULL);
	a.good_client = start_good_session(h);
	lh_run(h, everything_arrived, 50);
	lh_run_for(h, 0.1);
	lh_assert_peer_streams_ok(h, a.good_client);
	muxring_session_stats(a.server->sess, &ss);
	muxring_loop_stats(h->loop, &ls);
	for (i = 0; i < h->nstreams; i++) {
		struct lh_stream *s = h->streams[i];

		if (s->peer != a.server)
			continue;
		assert_false(s->mismatch);
		assert_int_equal(s->held_bytes, WINDOW);
		views += s->nheld;
	}
	print_message("    %u streams x %u 1-byte frames held: %llu views, "
		      "view bytes %llu KiB, copies %llu KiB (max %llu), "
		      "at most %llu events queued, %llu ring buffers held\n",
		      STREAMS, WINDOW, (unsigned long long)views,
		      (unsigned long long)ss.recv_view_bytes >> 10,
		      (unsigned long long)ss.recv_copy_bytes >> 10,
		      (unsigned long long)ss.recv_copy_bytes_max >> 10,
		      (unsigned long long)ss.events_queued_max,
		      (unsigned long long)ls.recv_buffers_held);
	/* The bound (include/muxring.h, README "Memory"): the window per
	 * stream in views, and one block per stream more in copies. */
	assert_int_equal(ss.recv_view_bytes, (uint64_t)STREAMS * WINDOW);
	assert_true(ss.recv_copy_bytes_max <=
		    (uint64_t)STREAMS * (WINDOW + MR_RX_BLOCK_MAX));
	/* A few events per stream and turn: its accept, and one for each
	 * block it filled (a turn may bring megabytes). */
	assert_true(ss.events_queued_max <= 8 * STREAMS);
	/* Not a view per frame: a view per stream per turn at most. */
	assert_true(views * 50 <= (uint64_t)STREAMS * WINDOW);
	/* Views pin receive buffers only up to the ring's low water (the
	 * defaults: 256 buffers, a quarter kept free). */
	assert_true(ls.recv_buffers_held_max <= 256 - 64 + 1);

	for (i = 0; i < h->nstreams; i++)
		lh_release_held(h->streams[i]);
	muxring_session_stats(a.server->sess, &ss);
	assert_int_equal(ss.recv_view_bytes, 0);
	assert_true(ss.recv_copy_bytes <= (uint64_t)STREAMS * MR_RX_BLOCK_MAX);
	end_all(h, &a.rp, NULL);
	lh_free(h);
}

/* Runs `a` against an echo application while its peer never reads (its
 * receive buffer stays full), a well-behaved session beside it, until
 * every byte of both arrived. */
static void echo_to_a_peer_that_never_reads(struct lh *h, struct attack *a)
{
	int small = 4096;

	h->ctx = a;
	attack_start(h, a, LH_ECHO, NULL);
	setsockopt(a->rp.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	a->good_client = start_good_session(h);
	lh_run(h, everything_arrived, 50);
	lh_run_for(h, 0.1);
}

static void test_one_byte_frames_against_an_echo_the_peer_never_reads(void **state)
{
	struct attack a = {.streams = STREAMS, .per_stream = WINDOW, .frame = 1};
	struct lh *h = lh_new(NULL);
	struct muxring_stats ss;

	(void)state;
	echo_to_a_peer_that_never_reads(h, &a);
	lh_assert_peer_streams_ok(h, a.good_client);
	muxring_session_stats(a.server->sess, &ss);
	print_message("    echo of %u x %u 1-byte frames, never read: %llu KiB "
		      "queued to send, views %llu KiB (max %llu), copies max "
		      "%llu KiB, at most %llu events queued\n",
		      STREAMS, WINDOW,
		      (unsigned long long)ss.send_queued_bytes >> 10,
		      (unsigned long long)ss.recv_view_bytes >> 10,
		      (unsigned long long)ss.recv_view_bytes_max >> 10,
		      (unsigned long long)ss.recv_copy_bytes_max >> 10,
		      (unsigned long long)ss.events_queued_max);
	/* What the echo queues is what the windows let in, no more. */
	assert_true(ss.buffered_bytes <= (uint64_t)STREAMS * WINDOW);
	assert_true(ss.send_queued_bytes > 0);
	assert_true(ss.recv_view_bytes_max <= (uint64_t)STREAMS * WINDOW);
	/* Released views free their copies: what copies cost at most is
	 * the views of one turn plus a block per stream. */
	assert_true(ss.recv_copy_bytes_max <=
		    ss.recv_view_bytes_max + (uint64_t)STREAMS * MR_RX_BLOCK_MAX);
	assert_true(ss.events_queued_max <= 8 * STREAMS);
	end_all(h, &a.rp, NULL);
	lh_free(h);
}

static bool attack_server_ended(struct lh *h)
{
	struct attack *a = h->ctx;

	attack_pump(a);
	return a->server->ended;
}

/* The echo's replies fill the socket of a peer that never reads; then the
 * peer shuts its sending side and keeps the socket open. The session ends
 * at the EOF, and its unsent echo cannot hold it (and the loop's memory)
 * beyond the linger time. */
static void test_a_peer_that_half_closes_without_reading_cannot_hold_its_session(void **state)
{
	struct muxring_loop_opts lo = {.linger_ms = 200};
	struct attack a = {.streams = STREAMS, .per_stream = WINDOW,
			   .frame = 4096};
	struct lh *h = lh_new(&lo);
	struct muxring_stats ss, ls;
	uint64_t t0;

	(void)state;
	echo_to_a_peer_that_never_reads(h, &a);
	muxring_session_stats(a.server->sess, &ss);
	/* More echo than the kernel takes: a send waits for a reader. */
	assert_true(ss.send_queued_bytes > 0);
	assert_false(a.server->ended);

	a.stopped = true;
	assert_int_equal(shutdown(a.rp.fd, SHUT_WR), 0);
	t0 = muxring_now_ns();
	lh_run(h, attack_server_ended, 10);
	print_message("    ended %.0f ms after the peer's EOF, %llu KiB of "
		      "echo unsent\n", (double)(muxring_now_ns() - t0) / 1e6,
		      (unsigned long long)ss.send_queued_bytes >> 10);
	assert_int_equal(a.server->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	/* What the session held went with it. */
	muxring_loop_stats(h->loop, &ls);
	assert_int_equal(ls.recv_buffers_held, 0);
	assert_int_equal(ls.buffered_bytes, 0);
	lh_assert_peer_streams_ok(h, a.good_client);
	end_all(h, &a.rp, NULL);
	lh_free(h);
}

/* ---- the session cap ----------------------------------------------------- */

#define CAP_STREAMS 8u
#define CAP (1u << 20)

static bool credit_used_up(struct lh *h)
{
	struct attack *a = h->ctx;
	struct muxring_stats ss;
	unsigned i;

	attack_pump(a);
	muxring_session_stats(a->server->sess, &ss);
	if (!ss.credit_stalls || !good_done(h, a->good_client) ||
	    a->rp.out_off < a->rp.out_len)
		return false;
	for (i = 0; i < a->streams; i++)
		if (a->rp.credit[i])
			return false;
	return true;
}

static bool credit_back(struct lh *h)
{
	struct attack *a = h->ctx;
	unsigned i;

	attack_pump(a);
	for (i = 0; i < a->streams; i++)
		if (!a->rp.credit[i])
			return false;
	return true;
}

static void test_the_session_cap_stops_credit_to_a_peer_that_never_credits_the_echo(void **state)
{
	struct muxring_session_opts so = {.max_buffered = CAP};
	struct attack a = {
		.streams = CAP_STREAMS, .per_stream = 64u << 20, .frame = 512,
		.reads = true,
	};
	struct lh *h = lh_new(NULL);
	struct muxring_stats ss;
	unsigned i;

	(void)state;
	h->ctx = &a;
	attack_start(h, &a, LH_ECHO, &so);
	a.good_client = start_good_session(h);
	/* The peer reads the echo but never credits it: the echo queue
	 * grows until the cap stops the session's credit, then the peer
	 * uses up what its windows still allow, and waits. */
	lh_run(h, credit_used_up, 50);
	lh_assert_peer_streams_ok(h, a.good_client);
	lh_run_for(h, 0.3);
	attack_pump(&a);
	for (i = 0; i < CAP_STREAMS; i++)
		assert_int_equal(a.rp.credit[i], 0);
	muxring_session_stats(a.server->sess, &ss);
	print_message("    cap %u KiB: %llu stalls, %llu KiB buffered now, "
		      "%llu KiB queued to send, peer sent %llu KiB\n",
		      CAP >> 10, (unsigned long long)ss.credit_stalls,
		      (unsigned long long)ss.buffered_bytes >> 10,
		      (unsigned long long)ss.send_queued_bytes >> 10,
		      (unsigned long long)server_received(h, &a) >> 10);
	/* The cap, plus what the windows granted before it was reached. */
	assert_true(ss.buffered_bytes <= CAP + (uint64_t)CAP_STREAMS * WINDOW);
	assert_true(ss.credit_stalls >= 1);

	/* The peer stops sending and starts crediting the echo: the queue
	 * drains, and the session credits the peer again. */
	a.stopped = true;
	for (i = 0; i < CAP_STREAMS; i++)
		rp_wndinc(&a.rp, rp_id(i), 1u << 30);
	lh_run(h, credit_back, 30);
	end_all(h, &a.rp, NULL);
	lh_free(h);
}

/* ---- the loop cap --------------------------------------------------------- */

#define LOOP_CAP (4u << 20)

static bool good_session_done(struct lh *h)
{
	struct attack *a = h->ctx;

	attack_pump(a);
	return good_done(h, a->good_client);
}

static bool loop_cap_reached(struct lh *h)
{
	struct attack *a = h->ctx;
	struct muxring_stats ss;
	unsigned i;

	attack_pump(a);
	muxring_session_stats(a->server->sess, &ss);
	if (!ss.credit_stalls || a->rp.out_off < a->rp.out_len)
		return false;
	for (i = 0; i < a->streams; i++)
		if (a->rp.credit[i])
			return false;
	return true;
}

static void test_the_loop_cap_holds_back_the_session_that_buffers_most(void **state)
{
	struct muxring_loop_opts lo = {.max_buffered = LOOP_CAP};
	struct attack a = {
		.streams = CAP_STREAMS, .per_stream = 64u << 20, .frame = 512,
		.reads = true,
	};
	struct lh *h = lh_new(&lo);
	struct muxring_stats ss, ls;
	struct lh_peer *c, *s;
	unsigned i;

	(void)state;
	h->ctx = &a;
	/* No session cap of its own: only the loop's holds it back. */
	attack_start(h, &a, LH_ECHO, NULL);
	lh_run(h, loop_cap_reached, 50);
	lh_run_for(h, 0.3);
	attack_pump(&a);
	for (i = 0; i < CAP_STREAMS; i++)
		assert_int_equal(a.rp.credit[i], 0);
	/* A session that buffers little is served meanwhile, its streams
	 * credited as usual (1 MiB each, 4 windows). */
	lh_pair_tcp(h, NULL, &c, &s);
	s->accept_role = LH_ECHO;
	h->queue_max = 128u << 10;
	for (i = 0; i < 2; i++)
		lh_open(c, LH_SOURCE, 1u << 20);
	a.good_client = c;
	lh_run(h, good_session_done, 30);
	lh_assert_peer_streams_ok(h, c);
	attack_pump(&a);
	for (i = 0; i < CAP_STREAMS; i++)
		assert_int_equal(a.rp.credit[i], 0);
	muxring_session_stats(a.server->sess, &ss);
	muxring_loop_stats(h->loop, &ls);
	print_message("    loop cap %u KiB: the greedy session stalled %llu "
		      "times at %llu KiB buffered; the loop at most %llu KiB; "
		      "the other session's streams done\n",
		      LOOP_CAP >> 10, (unsigned long long)ss.credit_stalls,
		      (unsigned long long)ss.buffered_bytes >> 10,
		      (unsigned long long)ls.buffered_bytes_max >> 10);
	assert_true(ls.buffered_bytes_max <=
		    LOOP_CAP + (uint64_t)CAP_STREAMS * WINDOW + (2u << 20));
	assert_true(ls.credit_stalls >= 1);

	/* The peer credits the echo: the loop falls under 3/4 of its cap and
	 * the session credits the peer again. */
	a.stopped = true;
	for (i = 0; i < CAP_STREAMS; i++)
		rp_wndinc(&a.rp, rp_id(i), 1u << 30);
	lh_run(h, credit_back, 30);
	end_all(h, &a.rp, NULL);
	lh_free(h);
}

/* ---- stalled in the middle of a frame ------------------------------------ */

#define BUSY_PAIRS 20u

static bool busy_pairs_done(struct lh *h)
{
	struct attack *stalled = h->ctx;
	size_t i;

	rp_flush(&stalled[0].rp);
	rp_flush(&stalled[1].rp);
	for (i = 0; i < h->nstreams; i++) {
		struct lh_stream *s = h->streams[i];

		if (s->peer != stalled[0].server &&
		    s->peer != stalled[1].server && !s->closed)
			return false;
	}
	return h->nstreams >= 2 * BUSY_PAIRS * 4;
}

static void test_peers_stalled_mid_frame_while_20_sessions_run(void **state)
{
	struct attack stalled[2] = {
		{.streams = 1}, {.streams = 1},
	};
	struct lh *h = lh_new(NULL);
	struct lh_peer *clients[BUSY_PAIRS], *c, *s;
	struct muxring_stats ss, ls;
	uint8_t head[10], header[MR_FRAME_HEADER_LEN];
	struct mr_frame_header fh = {
		.length = 1000, .type = MR_FRAME_DATA, .flags = MR_FLAG_SYN,
		.stream_id = 3,
	};
	unsigned i, k;

	(void)state;
	h->ctx = stalled;
	attack_start(h, &stalled[0], LH_SINK, NULL);
	attack_start(h, &stalled[1], LH_SINK, NULL);
	/* One stops 10 bytes into a 1000-byte payload, one inside a header. */
	mr_frame_header_pack(header, &fh);
	lh_gen_fill(&stalled[0].gen[0], head, sizeof(head));
	rp_put(&stalled[0].rp, header, sizeof(header));
	rp_put(&stalled[0].rp, head, sizeof(head));
	rp_put(&stalled[1].rp, header, 5);
	for (i = 0; i < BUSY_PAIRS; i++) {
		lh_pair_unix(h, NULL, &c, &s);
		s->accept_role = LH_ECHO;
		clients[i] = c;
		for (k = 0; k < 4; k++)
			lh_open(c, LH_SOURCE, KIB(64) * (k + 1));
	}
	lh_run(h, busy_pairs_done, 50);
	for (i = 0; i < BUSY_PAIRS; i++)
		lh_assert_peer_streams_ok(h, clients[i]);
	/* The stalled sessions are still there, waiting, holding only the
	 * bytes they were sent: no receive buffer, nothing queued. */
	muxring_loop_stats(h->loop, &ls);
	assert_int_equal(ls.recv_buffers_held, 0);
	for (i = 0; i < 2; i++) {
		assert_false(stalled[i].server->ended);
		muxring_session_stats(stalled[i].server->sess, &ss);
		assert_int_equal(ss.buffered_bytes, 0);
		assert_true(ss.recv_copy_bytes <= MR_RX_BLOCK_MIN);
	}
	print_message("    %u sessions served while 2 peers stall mid-frame; "
		      "loop buffers %llu KiB now, %llu KiB at most\n",
		      2 * BUSY_PAIRS,
		      (unsigned long long)ls.buffered_bytes >> 10,
		      (unsigned long long)ls.buffered_bytes_max >> 10);
	end_all(h, &stalled[0].rp, &stalled[1].rp);
	lh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_byte_frames_against_an_application_holding_every_view),
		cmocka_unit_test(test_one_byte_frames_against_an_echo_the_peer_never_reads),
		cmocka_unit_test(test_a_peer_that_half_closes_without_reading_cannot_hold_its_session),
		cmocka_unit_test(test_the_session_cap_stops_credit_to_a_peer_that_never_credits_the_echo),
		cmocka_unit_test(test_the_loop_cap_holds_back_the_session_that_buffers_most),
		cmocka_unit_test(test_peers_stalled_mid_frame_while_20_sessions_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
