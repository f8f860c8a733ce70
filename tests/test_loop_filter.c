/*
 * test_loop_filter.c - the transport-filter interface of the loop, with a
 * toy filter of the test's own instead of TLS.
 *
 * The toy: each side first sends one hello byte and is established once
 * it has the peer's; after that every byte is XORed with a key. It has no
 * set_output and no feed_end (it copies what it is fed), so the loop's
 * other paths are the ones used: ciphertext drained from pending() into
 * the send block, fed bytes not read in place. With passthrough() true
 * and key 0 it stands for kernel TLS: the loop must then send the engine's
 * frames itself and never call write() again.
 *
 * With receive_handover() it stands for kernel TLS taking the receiving
 * over too: the loop must stop its multishot receive, read exactly the
 * bytes the filter asks for first, then hand received bytes to the engine
 * itself, or go on with the filter when the filter says no.
 *
 * Covers: 100 streams x 100 KB echoed through the XOR filter with every
 * byte checked (and the wire really XORed: the peer of a raw socket sees
 * the key, and each receive fills one buffer: no bundles under a filter);
 * the passthrough hand-over; the receive hand-over in the middle
 * of a transfer, and its refusal; each answer of receive_failed() to a
 * receive that fails after the hand-over; shutdown() called once per side at
 * the clean end; READY waiting for the handshake; a loop destroyed in the
 * middle of a transfer closing every filter state; each allocation of a
 * filtered session's creation failing in turn (its filter state is an
 * allocation of its own).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "counting_mem.h"
#include "loop_harness.h"

#define HELLO 0x48

struct toy_conf {
	uint8_t key;
	bool pass;               /* passthrough() says yes */
	unsigned opened, closed, shutdowns, writes_after_pass, passes;
	long rx_first;           /* receive_handover()'s first answer */
	unsigned rx_asks, rx_taken; /* its calls; sessions it said 0 to */
	size_t fed_between;      /* bytes fed after the first ask, before 0 */
	unsigned feeds_after_rx; /* bytes fed after it said 0 */
	enum { NOT_MINE, AGAIN, CLEAN_END, FILTER_FAILS } rx_failed_answer;
	int rx_failed_err;       /* the err receive_failed() was told */
	unsigned rx_failures;
};

struct toy {
	struct toy_conf *conf;
	bool up;
	bool passed;
	bool rx_asked, rx_taken;
	uint8_t *in, *out;       /* received, not read; to send */
	size_t in_len, out_len, in_cap, out_cap;
};

static void append(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *p,
		   size_t n, uint8_t key)
{
	if (*len + n > *cap) {
		*cap = (*len + n) * 2;
		*buf = realloc(*buf, *cap);
		assert_non_null(*buf);
	}
	for (size_t i = 0; i < n; i++)
		(*buf)[*len + i] = p[i] ^ key;
	*len += n;
}

static int toy_open(void *arg, struct muxring_session *sess,
		    enum muxring_role role, const char *host, void **state)
{
	static const uint8_t hello = HELLO;
	struct toy *t = calloc(1, sizeof(*t));

	(void)sess;
	(void)role;
	(void)host;
	assert_non_null(t);
	t->conf = arg;
	t->conf->opened++;
	append(&t->out, &t->out_len, &t->out_cap, &hello, 1, 0);
	*state = t;
	return 0;
}

static int toy_feed(void *state, const uint8_t *data, size_t len)
{
	struct toy *t = state;

	if (len && t->rx_taken)
		t->conf->feeds_after_rx++;
	else if (len && t->rx_asked)
		t->conf->fed_between += len;
	if (len)
		append(&t->in, &t->in_len, &t->in_cap, data, len, 0);
	return 0;
}

static long toy_read(void *state, uint8_t *out, size_t cap)
{
	struct toy *t = state;
	size_t n;

	if (!t->up) {
		if (!t->in_len)
			return 0;
		assert_int_equal(t->in[0], HELLO);
		memmove(t->in, t->in + 1, --t->in_len);
		t->up = true;
	}
	n = t->in_len < cap ? t->in_len : cap;
	for (size_t i = 0; i < n; i++)
		out[i] = t->in[i] ^ t->conf->key;
	memmove(t->in, t->in + n, t->in_len - n);
	t->in_len -= n;
	return (long)n;
}

static long toy_write(void *state, const uint8_t *data, size_t len)
{
	struct toy *t = state;

	if (t->passed)
		t->conf->writes_after_pass++;
	append(&t->out, &t->out_len, &t->out_cap, data, len, t->conf->key);
	return (long)len;
}

static size_t toy_pending(void *state)
{
	return ((struct toy *)state)->out_len;
}

static size_t toy_drain(void *state, uint8_t *out, size_t cap)
{
	struct toy *t = state;
	size_t n = t->out_len < cap ? t->out_len : cap;

	memcpy(out, t->out, n);
	memmove(t->out, t->out + n, t->out_len - n);
	t->out_len -= n;
	return n;
}

static bool toy_established(void *state)
{
	return ((struct toy *)state)->up;
}

static bool toy_passthrough(void *state)
{
	struct toy *t = state;

	/* Asked only once the hello has left. */
	assert_int_equal(t->out_len, 0);
	t->conf->passes++;
	t->passed = t->conf->pass;
	return t->passed;
}

/* First answer conf->rx_first (bytes to read first, or a refusal), then
 * 0: the "kernel" (key 0: nothing to undo) receives from there on. */
static long toy_receive_handover(void *state)
{
	struct toy *t = state;
	bool first = !t->rx_asked;

	assert_int_equal(t->in_len, 0); /* everything fed was read */
	t->conf->rx_asks++;
	t->rx_asked = true;
	if (first && t->conf->rx_first)
		return t->conf->rx_first;
	t->rx_taken = true;
	t->conf->rx_taken++;
	return 0;
}

/* The kernel's receive failed: the conf's answer. */
static int toy_receive_failed(void *state, int err)
{
	struct toy *t = state;

	t->conf->rx_failures++;
	t->conf->rx_failed_err = err;
	switch (t->conf->rx_failed_answer) {
	case AGAIN:
		return 0;
	case CLEAN_END:
		return 1;
	case FILTER_FAILS:
		return -EPROTO;
	default:
		return err;
	}
}

static const char *toy_error(void *state)
{
	(void)state;
	return "toy: the record the kernel stopped at is not wanted";
}

static void toy_shutdown(void *state)
{
	((struct toy *)state)->conf->shutdowns++;
}

static void toy_close(void *state)
{
	struct toy *t = state;

	t->conf->closed++;
	free(t->in);
	free(t->out);
	free(t);
}

static const struct muxring_filter_ops toy_ops = {
	.open = toy_open,
	.feed = toy_feed,
	.read = toy_read,
	.write = toy_write,
	.pending = toy_pending,
	.drain = toy_drain,
	.established = toy_established,
	.passthrough = toy_passthrough,
	.shutdown = toy_shutdown,
	.close = toy_close,
};

/* The same with the receive hand-over. */
static const struct muxring_filter_ops toy_rx_ops = {
	.open = toy_open,
	.feed = toy_feed,
	.read = toy_read,
	.write = toy_write,
	.pending = toy_pending,
	.drain = toy_drain,
	.established = toy_established,
	.passthrough = toy_passthrough,
	.receive_handover = toy_receive_handover,
	.receive_failed = toy_receive_failed,
	.shutdown = toy_shutdown,
	.error = toy_error,
	.close = toy_close,
};

static void run_echo_ops(const struct muxring_filter_ops *ops,
			 struct toy_conf *conf, unsigned streams, uint64_t size)
{
	struct muxring_filter f = {.ops = ops, .arg = conf};
	struct muxring_session_opts so = {.filter = &f};
	struct lh *h = lh_new(NULL);
	struct muxring_stats st;
	struct lh_peer *c, *s;

	lh_pair_tcp(h, &so, &c, &s);
	for (unsigned i = 0; i < streams; i++)
		lh_open(c, LH_SOURCE, size);
	lh_run(h, lh_all_streams_closed, 60);
	lh_assert_streams_ok(h);
	assert_int_equal(c->ready_res, 0);
	assert_int_equal(s->ready_res, 0);
	assert_ptr_equal(muxring_session_filter(c->sess), &f);
	assert_non_null(muxring_session_filter_state(c->sess));
	/* A filtered session takes no receive bundles (session_io.c says
	 * why): one buffer per completion. */
	assert_int_equal(muxring_session_stats(s->sess, &st), 0);
	assert_int_equal(st.recv_completions, st.recv_buffers_filled);
	assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0), 0);
	lh_run(h, lh_all_sessions_ended, 20);
	assert_int_equal(c->end_res, MUXRING_ERR(MUXRING_SESSION_CLOSED));
	assert_int_equal(s->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	lh_free(h);
	assert_int_equal(conf->opened, 2);
	assert_int_equal(conf->closed, 2);
	assert_int_equal(conf->shutdowns, 2);
	assert_int_equal(conf->passes, 2);
}

static void run_echo(struct toy_conf *conf, unsigned streams, uint64_t size)
{
	run_echo_ops(&toy_ops, conf, streams, size);
}

static void test_xor_filter_echo(void **state)
{
	struct toy_conf conf = {.key = 0x5A};

	(void)state;
	run_echo(&conf, 100, 100000);
}

static void test_passthrough_sends_plain_frames(void **state)
{
	struct toy_conf conf = {.key = 0, .pass = true};

	(void)state;
	run_echo(&conf, 20, 300000);
	assert_int_equal(conf.writes_after_pass, 0);
}

/* Both sides hand their receiving over while 20 streams are echoed: each
 * reads exactly 5 bytes first (most likely in the middle of a frame),
 * then feeds the filter nothing more; every byte still arrives. */
static void test_receive_handover_mid_transfer(void **state)
{
	struct toy_conf conf = {.key = 0, .pass = true, .rx_first = 5};

	(void)state;
	run_echo_ops(&toy_rx_ops, &conf, 20, 300000);
	assert_int_equal(conf.rx_taken, 2);
	assert_int_equal(conf.rx_asks, 4);
	assert_int_equal(conf.fed_between, 2 * 5);
	assert_int_equal(conf.feeds_after_rx, 0);
	assert_int_equal(conf.writes_after_pass, 0);
}

/* A filter that refuses keeps receiving through read(), and is not asked
 * again. */
static void test_receive_handover_refused(void **state)
{
	struct toy_conf conf = {.key = 0, .pass = true, .rx_first = -EOPNOTSUPP};

	(void)state;
	run_echo_ops(&toy_rx_ops, &conf, 20, 300000);
	assert_int_equal(conf.rx_taken, 0);
	assert_int_equal(conf.rx_asks, 2);
	assert_true(conf.fed_between > 20 * 300000);
}

static struct toy_conf *rx_conf;

static bool rx_taken(struct lh *h)
{
	(void)h;
	return rx_conf->rx_taken == 1;
}

/* A server session whose receiving the toy "kernel" took over, against a
 * raw peer that resets the connection: its receive fails with ECONNRESET
 * (then sees the end-of-file) and receive_failed() answers as conf says.
 * f is the session's filter (kept by the caller until lh_free). Returns
 * the session's peer record. */
static struct lh_peer *reset_after_handover(struct lh *h, struct toy_conf *conf,
					    struct muxring_filter *f)
{
	static const struct linger hard = { .l_onoff = 1, .l_linger = 0 };
	static const uint8_t hello = HELLO;
	struct muxring_session_opts so = {.filter = f};
	struct lh_peer *s = lh_peer_new(h, true, LH_ECHO, 0);
	int fds[2];

	*f = (struct muxring_filter){.ops = &toy_rx_ops, .arg = conf};
	rx_conf = conf;
	lh_tcp_fds(fds);
	assert_int_equal(muxring_session_create(h->loop, fds[1], MUXRING_SERVER,
						&so, (uintptr_t)s, &s->sess), 0);
	assert_int_equal(write(fds[0], &hello, 1), 1);
	lh_run(h, rx_taken, 20);
	assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_LINGER, &hard,
				    sizeof(hard)), 0);
	close(fds[0]);
	lh_run(h, lh_all_sessions_ended, 20);
	assert_int_equal(conf->rx_failures, 1);
	assert_int_equal(conf->rx_failed_err, -ECONNRESET);
	return s;
}

/* What the session does with each answer of receive_failed(). */
static void test_receive_failed_answers(void **state)
{
	struct toy_conf conf[4] = {
		{.pass = true, .rx_failed_answer = NOT_MINE},
		{.pass = true, .rx_failed_answer = AGAIN},
		{.pass = true, .rx_failed_answer = CLEAN_END},
		{.pass = true, .rx_failed_answer = FILTER_FAILS},
	};
	struct muxring_filter f[4];
	struct lh *h = lh_new(NULL);
	struct lh_peer *s[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		s[i] = reset_after_handover(h, &conf[i], &f[i]);
	/* The transport's error, as without a filter. */
	assert_int_equal(s[0]->end_res, -ECONNRESET);
	assert_string_equal(s[0]->end_debug, "");
	/* Receiving again finds the end-of-file after the reset: one more
	 * receive armed than for the clean end at once. */
	assert_int_equal(s[1]->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	assert_int_equal(s[2]->end_res, MUXRING_ERR(MUXRING_PEER_EOF));
	assert_int_equal(s[1]->final_stats.recv_rearms,
			 s[2]->final_stats.recv_rearms + 1);
	/* The filter's failure, in its words. */
	assert_int_equal(s[3]->end_res, -EPROTO);
	assert_non_null(strstr(s[3]->end_debug, "toy: the record the kernel"));
	lh_free(h);
}

/* The bytes on the wire are the filter's: a raw peer reads the hello,
 * then the first frame header XORed with the key. */
static void test_wire_carries_filtered_bytes(void **state)
{
	struct toy_conf conf = {.key = 0x5A};
	struct muxring_filter f = {.ops = &toy_ops, .arg = &conf};
	struct muxring_session_opts so = {.filter = &f};
	struct lh *h = lh_new(NULL);
	struct lh_peer *c;
	uint8_t buf[64], hello = HELLO;
	struct pollfd p;
	size_t got;
	ssize_t n;
	int fds[2];

	(void)state;
	lh_tcp_fds(fds);
	c = lh_peer_new(h, false, LH_ECHO, 0);
	assert_int_equal(muxring_session_create(h->loop, fds[0], MUXRING_CLIENT,
						&so, (uintptr_t)c, &c->sess), 0);
	lh_open(c, LH_SOURCE, 10);
	lh_run_for(h, 0.05);
	assert_false(c->ready); /* no hello from the peer yet */
	assert_int_equal(write(fds[1], &hello, 1), 1);
	lh_run_for(h, 0.1);
	assert_true(c->ready);
	for (got = 0; got < 1 + 8 + 10; got += (size_t)n) {
		p = (struct pollfd){.fd = fds[1], .events = POLLIN};
		assert_int_equal(poll(&p, 1, 5000), 1);
		n = read(fds[1], buf + got, sizeof(buf) - got);
		assert_true(n > 0);
	}
	assert_int_equal(buf[0], HELLO);
	/* The first frame, XORed: DATA (type 1) with SYN (2) on stream 3,
	 * 10 bytes (PROTOCOL.md). */
	{
		static const uint8_t header[8] = { 0, 0, 10, 0x12, 0, 0, 0, 3 };

		for (int i = 0; i < 8; i++)
			assert_int_equal(buf[1 + i] ^ 0x5A, header[i]);
	}
	close(fds[1]);
	lh_run(h, lh_all_sessions_ended, 20);
	lh_free(h);
}

/* A loop destroyed with filtered sessions in the middle of their work
 * closes every filter state (ASan checks that nothing else is left). */
static void test_destroy_with_live_filters(void **state)
{
	struct toy_conf conf = {.key = 0x33};
	struct muxring_filter f = {.ops = &toy_ops, .arg = &conf};
	struct muxring_session_opts so = {.filter = &f};
	struct lh *h = lh_new(NULL);
	struct lh_peer *c, *s;

	(void)state;
	lh_pair_tcp(h, &so, &c, &s);
	lh_open(c, LH_SOURCE, 50u << 20);
	lh_run_for(h, 0.05);
	assert_true(c->ready && s->ready);
	lh_free(h);
	assert_int_equal(conf.opened, 2);
	assert_int_equal(conf.closed, 2);
}

/* Creating a filtered session with allocation number k failing, for every
 * k until none does: each either fails with -ENOMEM, its descriptor closed
 * and its filter never opened, or gives a session; once the loop is gone
 * every filter opened is closed and every block is back. */
static void test_filtered_create_survives_each_failed_allocation(void **state)
{
	struct toy_conf conf = {.key = 0x33};
	struct muxring_filter f = {.ops = &toy_ops, .arg = &conf};
	struct muxring_session_opts so = {.filter = &f};
	unsigned refused = 0;

	(void)state;
	for (uint64_t k = 1;; k++) {
		struct counting_mem counts = {0};
		struct muxring_mem mem;
		struct muxring_loop_opts lo = {
			.mem = counting_mem_as_mem(&counts, &mem)};
		struct muxring_loop *loop;
		struct muxring_session *s;
		unsigned opened = conf.opened;
		int fds[2], err;

		assert_int_equal(muxring_loop_create(&loop, &lo), 0);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
		counts.fail_at = counts.calls + k;
		err = muxring_session_create(loop, fds[0], MUXRING_CLIENT, &so,
					     0, &s);
		if (err) {
			assert_int_equal(err, -ENOMEM);
			assert_true(counts.failed);
			assert_int_equal(fcntl(fds[0], F_GETFD), -1);
			assert_int_equal(conf.opened, opened);
			refused++;
		}
		muxring_loop_destroy(loop);
		close(fds[1]);
		assert_int_equal(counts.live, 0);
		assert_int_equal(conf.closed, conf.opened);
		if (!counts.failed)
			break;
	}
	assert_true(refused >= 3); /* the session, its filter state, the engine */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xor_filter_echo),
		cmocka_unit_test(test_passthrough_sends_plain_frames),
		cmocka_unit_test(test_receive_handover_mid_transfer),
		cmocka_unit_test(test_receive_handover_refused),
		cmocka_unit_test(test_receive_failed_answers),
		cmocka_unit_test(test_wire_carries_filtered_bytes),
		cmocka_unit_test(test_destroy_with_live_filters),
		cmocka_unit_test(
			test_filtered_create_survives_each_failed_allocation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
