/*
 * test_loop_quiet.c - one io_uring_enter per message: quiet sends and
 * writes without WRITE_DONE.
 *
 * Covers: a request/response exchange between two loops in two threads
 * over loopback TCP (1,000 round trips of 64 bytes, every byte checked)
 * costs each side one enter per message when sends are quiet
 * (MUXRING_FEAT_SEND_QUIET) and muxring_stream_write_quiet posts no
 * WRITE_DONE; the same exchange with the feature disabled (by option and by
 * MUXRING_DISABLE_FEATURES) is just as correct, sends nothing quietly and
 * costs two enters per message on the echoing side (it wakes for the
 * send's completion); quiet sends into a full socket (a small Unix socket
 * buffer whose reader is another loop that is not turning) fail, go again
 * as ordinary sends from the bounce buffer and lose or repeat no byte; a
 * session closed when the peer has nothing more to say ends without a wait
 * timing out (its last send is not quiet); with MUXRING_LOOP_SQPOLL the
 * exchange is as correct, without quiet sends and with no enter but the
 * waits; with busy polling (busy_poll_us) the exchange is as correct, the
 * answers are found by polls rather than by blocking waits, a wait with
 * nothing coming still ends at its timeout, not at the end of the poll
 * budget, and a budget above a second is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_harness.h"
#include "uring/loop.h"
#include "uring/session_io.h"

#define ROUNDS 1000u
#define MSG 64u
#define WAIT_NS (10 * 1000 * 1000 * 1000ll)

/* ---- the echoing side, on its own thread ---------------------------------- */

struct echo_side {
	int fd;
	unsigned disable, flags, busy_poll_us;
	struct muxring_stats stats;
	unsigned write_dones;
	int err;
};

static void *echo_thread(void *arg)
{
	struct echo_side *e = arg;
	struct muxring_loop_opts lo = {.disable = e->disable, .flags = e->flags,
				       .busy_poll_us = e->busy_poll_us};
	struct muxring_cqe *cqes[64];
	struct muxring_session *sess;
	struct muxring_loop *loop;
	bool ended = false;

	e->err = muxring_loop_create(&loop, &lo);
	if (e->err) {
		close(e->fd);
		return NULL;
	}
	e->err = muxring_session_create(loop, e->fd, MUXRING_SERVER, NULL, 0,
					&sess);
	while (!e->err && !ended) {
		int ret = muxring_submit_and_wait(loop, 1, WAIT_NS);
		unsigned n, i;

		if (ret <= 0) {
			e->err = ret < 0 ? ret : -ETIME;
			break;
		}
		n = muxring_peek_batch_cqe(loop, cqes, 64);
		for (i = 0; i < n; i++) {
			struct muxring_cqe *c = cqes[i];

			if (c->type == MUXRING_CQE_DATA) {
				int err = muxring_stream_write_quiet(
					c->stream, c->view.data, c->view.len);

				muxring_view_release(&c->view);
				if (err)
					e->err = err;
			} else if (c->type == MUXRING_CQE_EOF) {
				muxring_stream_close(c->stream);
			} else if (c->type == MUXRING_CQE_WRITE_DONE) {
				e->write_dones++;
			} else if (c->type == MUXRING_CQE_SESSION_ENDED) {
				ended = true;
			}
		}
		muxring_cq_advance(loop, n);
	}
	muxring_loop_stats(loop, &e->stats);
	muxring_loop_destroy(loop);
	return NULL;
}

/* ---- the asking side ------------------------------------------------------- */

struct exchange {
	struct muxring_stats client, server;
	uint64_t client_enters, server_enters; /* during the rounds */
	unsigned client_features;
	unsigned write_dones;
};

/* Waits for one entry of the stream: its answer (or part of it). */
static struct muxring_cqe *next_entry(struct muxring_loop *loop)
{
	struct muxring_cqe *c = NULL;

	assert_int_equal(muxring_wait_cqe(loop, &c, WAIT_NS), 0);
	return c;
}

/* Takes entries until one of `type`. No wait may end by its timeout: a
 * send whose completion the session needs (its last one, before it shuts
 * the transport down) must not be quiet, or nothing would wake the wait. */
static void entries_until(struct muxring_loop *loop, enum muxring_cqe_type type)
{
	for (;;) {
		struct muxring_cqe *c = next_entry(loop);
		bool found = c->type == type;

		if (c->type == MUXRING_CQE_DATA)
			muxring_view_release(&c->view);
		muxring_cq_advance(loop, 1);
		if (found)
			return;
	}
}

static void run_exchange_polling(unsigned disable, unsigned flags,
				 unsigned busy_poll_us, struct exchange *x)
{
	struct muxring_loop_opts lo = {.disable = disable, .flags = flags,
				       .busy_poll_us = busy_poll_us};
	struct echo_side e = {.disable = disable, .flags = flags,
			      .busy_poll_us = busy_poll_us};
	struct muxring_session *sess;
	struct muxring_stream *st;
	struct muxring_loop *loop;
	struct muxring_stats before;
	pthread_t t;
	uint8_t msg[MSG], got[MSG];
	unsigned r;
	int fds[2];

	memset(x, 0, sizeof(*x));
	lh_tcp_fds(fds);
	e.fd = fds[1];
	assert_int_equal(pthread_create(&t, NULL, echo_thread, &e), 0);
	assert_int_equal(muxring_loop_create(&loop, &lo), 0);
	x->client_features = muxring_loop_features(loop);
	assert_int_equal(muxring_session_create(loop, fds[0], MUXRING_CLIENT,
						NULL, 0, &sess),
			 0);
	assert_int_equal(muxring_stream_open(sess, 0, &st), 0);
	for (r = 0; r <= ROUNDS; r++) {
		size_t have = 0;

		/* Round 0 sets the stream up on both ends, unmeasured. */
		if (r == 1)
			muxring_loop_stats(loop, &before);
		memset(msg, (int)(r & 0xff), MSG);
		msg[0] = (uint8_t)(r >> 8);
		assert_int_equal(muxring_stream_write_quiet(st, msg, MSG), 0);
		while (have < MSG) {
			struct muxring_cqe *c = next_entry(loop);

			if (c->type == MUXRING_CQE_DATA) {
				assert_true(have + c->view.len <= MSG);
				memcpy(got + have, c->view.data, c->view.len);
				have += c->view.len;
				muxring_view_release(&c->view);
			} else if (c->type == MUXRING_CQE_WRITE_DONE) {
				x->write_dones++;
			}
			muxring_cq_advance(loop, 1);
		}
		assert_memory_equal(got, msg, MSG);
	}
	muxring_loop_stats(loop, &x->client);
	x->client_enters = x->client.enters - before.enters;
	/* The stream ends on both sides first, so that the GOAWAY below gets
	 * no answer: the session must end on its own send's completion. */
	assert_int_equal(muxring_stream_close(st), 0);
	entries_until(loop, MUXRING_CQE_STREAM_CLOSED);
	assert_int_equal(muxring_session_close(sess, MUXRING_NO_ERROR, NULL, 0),
			 0);
	entries_until(loop, MUXRING_CQE_SESSION_ENDED);
	muxring_loop_destroy(loop);
	pthread_join(t, NULL);
	assert_int_equal(e.err, 0);
	x->server = e.stats;
	x->write_dones += e.write_dones;
	/* The server's count covers set-up and close as well. */
	x->server_enters = e.stats.enters;
}

static void run_exchange(unsigned disable, unsigned flags, struct exchange *x)
{
	run_exchange_polling(disable, flags, 0, x);
}

static void test_one_enter_per_message(void **state)
{
	struct exchange x;

	(void)state;
	run_exchange(0, 0, &x);
	/* Linux 5.17 has CQE_SKIP_SUCCESS; the tests run on newer kernels. */
	assert_true(x.client_features & MUXRING_FEAT_SEND_QUIET);
	assert_int_equal(x.write_dones, 0);
	assert_true(x.client.quiet_sends >= ROUNDS);
	assert_true(x.server.quiet_sends >= ROUNDS);
	/* One enter per round trip on each side; a few more for a window
	 * update and, on the server, for set-up and the end. */
	assert_true(x.client_enters <= ROUNDS + ROUNDS / 20);
	assert_true(x.server_enters <= ROUNDS + ROUNDS / 20 + 20);
}

static void test_disabled_by_option(void **state)
{
	struct exchange x;

	(void)state;
	run_exchange(MUXRING_FEAT_SEND_QUIET, 0, &x);
	assert_false(x.client_features & MUXRING_FEAT_SEND_QUIET);
	assert_int_equal(x.write_dones, 0);
	assert_int_equal(x.client.quiet_sends, 0);
	assert_int_equal(x.server.quiet_sends, 0);
	/* The echoing side submits its answer and wakes for the send's own
	 * completion before it waits for the next request. */
	assert_true(x.server_enters >= 2 * ROUNDS - ROUNDS / 20);
}

static void test_disabled_by_environment(void **state)
{
	struct exchange x;

	(void)state;
	setenv("MUXRING_DISABLE_FEATURES", "0x100", 1);
	run_exchange(0, 0, &x);
	unsetenv("MUXRING_DISABLE_FEATURES");
	assert_false(x.client_features & MUXRING_FEAT_SEND_QUIET);
	assert_int_equal(x.client.quiet_sends, 0);
	assert_int_equal(x.server.quiet_sends, 0);
}

/* With a kernel thread polling the submission queue, only waits make a
 * system call; quiet sends are off (the thread issues them after the enter,
 * so the SQ head proves nothing). */
static void test_sqpoll(void **state)
{
	struct exchange x;

	(void)state;
	run_exchange(0, MUXRING_LOOP_SQPOLL, &x);
	assert_true(x.client_features & MUXRING_FEAT_SQPOLL);
	assert_false(x.client_features & MUXRING_FEAT_SEND_QUIET);
	assert_int_equal(x.client.quiet_sends, 0);
	assert_int_equal(x.write_dones, 0);
	/* Only waits enter the kernel: the one for the send's completion
	 * and the one for the answer. */
	assert_true(x.client_enters <= 2 * ROUNDS + ROUNDS / 20);
}

/* ---- busy polling ------------------------------------------------------------ */

/* A second of budget: the echo's answer always comes within it, so no wait
 * of the rounds blocks; only the enter that submits each request counts
 * as an enter, the looking in between as busy polls. */
static void test_busy_poll(void **state)
{
	struct exchange x;

	(void)state;
	run_exchange_polling(0, 0, 1000000, &x);
	assert_int_equal(x.write_dones, 0);
	assert_true(x.client.busy_polls > 0);
	assert_true(x.server.busy_polls > 0);
	assert_true(x.client_enters <= ROUNDS + ROUNDS / 20);
}

static void test_busy_poll_keeps_the_timeout(void **state)
{
	struct muxring_loop_opts lo = {.busy_poll_us = 1000000};
	struct muxring_stats st;
	struct muxring_loop *loop;
	uint64_t t0, took;

	(void)state;
	assert_int_equal(muxring_loop_create(&loop, &lo), 0);
	t0 = muxring_now_ns();
	assert_int_equal(muxring_submit_and_wait(loop, 1, 20 * 1000 * 1000), 0);
	took = muxring_now_ns() - t0;
	assert_true(took >= 20u * 1000 * 1000);
	assert_true(took < 500u * 1000 * 1000);
	muxring_loop_stats(loop, &st);
	assert_true(st.busy_polls > 0);
	muxring_loop_destroy(loop);
}

static void test_busy_poll_budget_checked(void **state)
{
	struct muxring_loop_opts lo = {.busy_poll_us = 1000001};
	struct muxring_loop *loop = NULL;

	(void)state;
	assert_int_equal(muxring_loop_create(&loop, &lo), -EINVAL);
	assert_null(loop);
}

/* ---- a peer that says nothing ------------------------------------------------- */

/* Reads and drops until the end of file, then closes: a peer that never
 * answers a GOAWAY. */
static void *silent_peer(void *arg)
{
	int fd = *(int *)arg;
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

static void test_close_without_answer(void **state)
{
	struct muxring_session *sess;
	struct muxring_loop *loop;
	pthread_t t;
	int fds[2];

	(void)state;
	lh_tcp_fds(fds);
	assert_int_equal(pthread_create(&t, NULL, silent_peer, &fds[1]), 0);
	assert_int_equal(muxring_loop_create(&loop, NULL), 0);
	assert_int_equal(muxring_session_create(loop, fds[0], MUXRING_CLIENT,
						NULL, 0, &sess),
			 0);
	entries_until(loop, MUXRING_CQE_SESSION_READY);
	/* Its operations name the socket by its slot in the ring's table. */
	assert_true(muxring_loop_features(loop) & MUXRING_FEAT_FIXED_FILES);
	assert_true(sess->file_slot >= 0);
	/* The GOAWAY is small and alone, but the session needs its
	 * completion to shut the transport down; nothing else will come. */
	assert_int_equal(muxring_session_close(sess, MUXRING_NO_ERROR, NULL, 0),
			 0);
	entries_until(loop, MUXRING_CQE_SESSION_ENDED);
	muxring_loop_destroy(loop);
	pthread_join(t, NULL);
}

/* ---- quiet sends into a full socket ------------------------------------------ */

static bool all_streams_closed_both(struct lh *a, struct lh *b)
{
	return lh_all_streams_closed(a) && lh_all_streams_closed(b);
}

static void test_socket_full(void **state)
{
	struct muxring_session_opts so = {0};
	struct lh *writer = lh_new(NULL), *reader = lh_new(NULL);
	struct lh_peer *c, *s;
	struct lh_stream *src;
	int fds[2], small = 4096;
	uint64_t until;

	(void)state;
	assert_true(muxring_loop_features(writer->loop) &
		    MUXRING_FEAT_SEND_QUIET);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds),
			 0);
	assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small,
				    sizeof(small)), 0);
	assert_int_equal(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &small,
				    sizeof(small)), 0);
	c = lh_peer_new(writer, false, LH_ECHO, 0);
	s = lh_peer_new(reader, true, LH_SINK, 0);
	assert_int_equal(muxring_session_create(writer->loop, fds[0],
						MUXRING_CLIENT, &so,
						(uintptr_t)c, &c->sess), 0);
	assert_int_equal(muxring_session_create(reader->loop, fds[1],
						MUXRING_SERVER, &so,
						(uintptr_t)s, &s->sess), 0);
	/* One small write queued at a time: its frame is copied into the
	 * bounce buffer and nothing waits behind it, so every send is quiet
	 * until the socket is full. (Writes queued together are packed into
	 * one block, which leaves zero-copy and so is not owned.) */
	writer->chunk = 300;
	writer->queue_max = 300;
	src = lh_open(c, LH_SOURCE, 256u << 10);
	src->no_fin = false;
	/* The reader does not turn yet: the socket fills. */
	lh_run_for(writer, 0.05);
	until = muxring_now_ns() + 60ull * 1000000000u;
	while (!all_streams_closed_both(writer, reader) &&
	       !(src->fin_sent && reader->nstreams &&
		 reader->streams[0]->eof)) {
		assert_true(muxring_now_ns() < until);
		lh_run_for(reader, 0.001);
		lh_run_for(writer, 0.001);
	}
	assert_true(writer->loop->stats.quiet_sends > 0);
	assert_true(writer->loop->quiet_resends > 0);
	assert_int_equal(reader->nstreams, 1);
	assert_false(reader->streams[0]->mismatch);
	assert_int_equal(reader->streams[0]->received, 256u << 10);
	lh_free(writer);
	lh_free(reader);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_enter_per_message),
		cmocka_unit_test(test_disabled_by_option),
		cmocka_unit_test(test_disabled_by_environment),
		cmocka_unit_test(test_sqpoll),
		cmocka_unit_test(test_busy_poll),
		cmocka_unit_test(test_busy_poll_keeps_the_timeout),
		cmocka_unit_test(test_busy_poll_budget_checked),
		cmocka_unit_test(test_socket_full),
		cmocka_unit_test(test_close_without_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
