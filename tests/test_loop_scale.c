/*
 * test_loop_scale.c - many connections on one loop, and what each costs.
 *
 * Covers: 1,500 idle TCP connections accepted by one loop while a
 * well-behaved session on it is served, every byte checked; 10,000
 * sessions (5,000 socketpairs, both ends on the loop) with 10 streams each,
 * every stream echoed and verified. Both raise RLIMIT_NOFILE, report the
 * resident memory per session (ASan's own overhead included) and check with
 * the library's counters that idle or finished sessions hold no buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_harness.h"
#include "raw_peer.h"

/* ---- 1,500 idle connections ---------------------------------------------- */

#define IDLE 1500u

static bool all_idle_ready(struct lh *h)
{
	return h->sessions_ready >= IDLE + 2;
}

static bool good_streams_closed(struct lh *h)
{
	struct lh_peer *good = h->ctx;
	size_t i;

	for (i = 0; i < h->nstreams; i++)
		if (h->streams[i]->peer == good && !h->streams[i]->closed)
			return false;
	return true;
}

static int connect_to(int port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

static void test_1500_idle_tcp_connections_on_one_loop(void **state)
{
	struct lh *h;
	struct lh_peer *tmpl, *c, *s;
	struct muxring_listener *l;
	struct muxring_stats ls;
	static int fds[IDLE];
	uint64_t rss0, rss1;
	unsigned i;
	int port;

	(void)state;
	assert_true(rp_raise_nofile(2 * IDLE + 256) >= 2 * IDLE + 256);
	h = lh_new(NULL);
	tmpl = lh_peer_new(h, true, LH_ECHO, 0);
	assert_int_equal(muxring_listen(h->loop, "127.0.0.1", "0", IDLE, NULL,
					(uintptr_t)tmpl, &l),
			 0);
	port = muxring_listener_port(l);
	assert_true(port > 0);
	lh_pair_tcp(h, NULL, &c, &s);
	s->accept_role = LH_ECHO;
	lh_run_for(h, 0.05);
	rss0 = rp_rss_bytes();
	for (i = 0; i < IDLE; i++) {
		fds[i] = connect_to(port);
		if (i % 256 == 255)
			lh_run_for(h, 0.01); /* keep the accept queue short */
	}
	lh_run(h, all_idle_ready, 30);
	lh_run_for(h, 0.1);
	rss1 = rp_rss_bytes();
	/* A session that works, next to them. */
	h->ctx = c;
	for (i = 0; i < 8; i++)
		lh_open(c, LH_SOURCE, 256u << 10);
	lh_run(h, good_streams_closed, 30);
	lh_assert_peer_streams_ok(h, c);
	muxring_loop_stats(h->loop, &ls);
	print_message("    %u idle connections: %.1f KiB resident per session "
		      "(ASan build); ring buffers held %llu, buffered %llu, "
		      "copies %llu\n",
		      IDLE, (double)(rss1 - rss0) / IDLE / 1024,
		      (unsigned long long)ls.recv_buffers_held,
		      (unsigned long long)ls.buffered_bytes,
		      (unsigned long long)ls.recv_copy_bytes);
	assert_int_equal(ls.sessions, IDLE + 2);
	/* An idle session allocates no transmit ring (16 KiB) nor any
	 * buffer: under 1 KiB of its own, a few with ASan's redzones. */
	assert_true(rss1 - rss0 < (uint64_t)IDLE * (8u << 10));
	/* Idle sessions hold no buffer: none in the ring, none copied, nothing
	 * queued. */
	assert_int_equal(ls.recv_buffers_held, 0);
	assert_int_equal(ls.buffered_bytes, 0);
	assert_int_equal(ls.recv_copy_bytes, 0);
	for (i = 0; i < IDLE; i++)
		close(fds[i]);
	muxring_session_close(c->sess, 0, NULL, 0);
	muxring_listener_close(l);
	lh_run(h, lh_all_sessions_ended, 30);
	lh_free(h);
}

/* ---- 10,000 sessions x 10 streams ----------------------------------------- */

#define PAIRS 5000u
#define STREAMS_PER_SESSION 10u

struct scale_ctx {
	uint64_t closed;  /* STREAM_CLOSED entries seen */
};

static bool count_closed(struct lh *h, struct muxring_cqe *c)
{
	struct scale_ctx *sc = h->ctx;

	if (c->type == MUXRING_CQE_STREAM_CLOSED)
		sc->closed++;
	return false;
}

static bool every_stream_closed(struct lh *h)
{
	struct scale_ctx *sc = h->ctx;

	return sc->closed == 2u * PAIRS * STREAMS_PER_SESSION;
}

static void test_10000_sessions_with_10_streams_each_on_one_loop(void **state)
{
	struct muxring_loop_opts lo = {
		.sq_entries = 4096,
		.recv_buffers = 1024,
		.recv_buffer_size = 4096,
		.cq_entries = 1u << 16,
	};
	struct scale_ctx sc = {0};
	struct muxring_stats ls;
	struct lh_peer *c, *s;
	struct lh *h;
	uint64_t rss0, rss1, rss2, t0, t1;
	unsigned i, k;

	(void)state;
	assert_true(rp_raise_nofile(2 * PAIRS + 256) >= 2 * PAIRS + 256);
	h = lh_new(&lo);
	h->ctx = &sc;
	h->hook = count_closed;
	rss0 = rp_rss_bytes();
	t0 = muxring_now_ns();
	for (i = 0; i < PAIRS; i++) {
		lh_pair_unix(h, NULL, &c, &s);
		s->accept_role = LH_ECHO;
	}
	lh_run_for(h, 0.05);
	rss1 = rp_rss_bytes();
	/* Every client session opens its streams (the peers list is
	 * newest first: clients are every other record). */
	for (c = h->peers; c; c = c->next) {
		if (c->server)
			continue;
		for (k = 0; k < STREAMS_PER_SESSION; k++)
			lh_open(c, LH_SOURCE, 100 + 37 * k);
	}
	lh_run(h, every_stream_closed, 55);
	t1 = muxring_now_ns();
	rss2 = rp_rss_bytes();
	lh_assert_streams_ok(h);
	muxring_loop_stats(h->loop, &ls);
	print_message("    %u sessions x %u streams verified in %.1f s: "
		      "%.1f KiB resident per idle session, %.1f KiB per "
		      "session after the streams (ASan build); buffered %llu, "
		      "ring buffers held %llu, at most %llu events queued\n",
		      2 * PAIRS, STREAMS_PER_SESSION, (double)(t1 - t0) / 1e9,
		      (double)(rss1 - rss0) / (2 * PAIRS) / 1024,
		      (double)(rss2 - rss0) / (2 * PAIRS) / 1024,
		      (unsigned long long)ls.buffered_bytes,
		      (unsigned long long)ls.recv_buffers_held,
		      (unsigned long long)ls.events_queued_max);
	assert_int_equal(ls.sessions, 2 * PAIRS);
	assert_int_equal(ls.streams_opened, PAIRS * STREAMS_PER_SESSION);
	assert_int_equal(ls.streams_accepted, PAIRS * STREAMS_PER_SESSION);
	/* Everything was delivered and released: nothing is held. */
	assert_int_equal(ls.buffered_bytes, 0);
	assert_int_equal(ls.recv_view_bytes, 0);
	assert_int_equal(ls.recv_buffers_held, 0);
	lh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_1500_idle_tcp_connections_on_one_loop),
		cmocka_unit_test(test_10000_sessions_with_10_streams_each_on_one_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
