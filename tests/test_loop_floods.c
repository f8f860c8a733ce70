/*
 * test_loop_floods.c - a flooding peer over loopback TCP ends only its own
 * session.
 *
 * One loop serves two sessions: a well-behaved one (a muxring client
 * echoing 8 streams of 2 MiB through the server, every byte checked) and
 * one whose peer is a raw socket writing hand-made frames. The raw peer
 * floods; its session must end with EnhanceYourCalm and the reason in its
 * SESSION_ENDED entry, the raw peer must read GOAWAY EnhanceYourCalm with
 * that reason on its socket, and the other session must go on being served
 * (bytes move while the flood lasts) and finish every stream intact.
 *
 * Floods: each kind of cheap frame (tiny WNDINCs, RSTs, unknown types,
 * empty DATA, DATA for gone streams, streams opened and reset) as fast as
 * the socket takes it, with the default budgets (cut off at once); and
 * one GOAWAY per loop turn against a budget of 200 per session, so that
 * the flood lasts 200 turns whatever the speed of the machine, during
 * which the other session must make progress.
 * Last, a control backlog too small for one frame is refused as an option.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_harness.h"
#include "wire/frame.h"

#define LEGIT_STREAMS 8
#define LEGIT_BYTES (2u << 20)
#define RAW_IN_CAP (1u << 20)

struct flood_ctx {
	int fd;                    /* the raw peer's socket, -1 once closed */
	struct lh_peer *victim;    /* the session the raw peer talks to */
	struct lh_peer *legit;     /* the client of the well-behaved pair */
	/* What the raw peer writes, over and over: whole frames. */
	uint8_t *pattern;
	size_t pattern_len, pattern_off;
	size_t bytes_per_turn;     /* at most this much per turn */
	bool flooding;             /* started (once the legit session runs) */
	bool peer_eof;             /* the raw peer read end-of-file */
	uint8_t *in;               /* what the raw peer read */
	size_t in_len;
	uint64_t legit_at_start;   /* legit bytes echoed when it started */
	uint64_t legit_at_end;     /* ... when the victim's session ended */
	unsigned turns;            /* loop turns while flooding */
};

static uint64_t legit_received(struct lh *h)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < h->nstreams; i++)
		if (h->streams[i]->peer == ((struct flood_ctx *)h->ctx)->legit)
			sum += h->streams[i]->received;
	return sum;
}

/* The victim's SESSION_ENDED: how far the other session had got. */
static bool note_victim_end(struct lh *h, struct muxring_cqe *c)
{
	struct flood_ctx *fc = h->ctx;

	if (c->type == MUXRING_CQE_SESSION_ENDED &&
	    c->user_data == (uintptr_t)fc->victim)
		fc->legit_at_end = legit_received(h);
	return false;
}

/* Writes the next piece of the pattern; frames stay whole across short
 * writes since the offset only moves by what the socket took. */
static void raw_write(struct flood_ctx *fc)
{
	size_t budget = fc->bytes_per_turn;

	while (budget) {
		size_t n = fc->pattern_len - fc->pattern_off;
		ssize_t w;

		if (n > budget)
			n = budget;
		w = send(fc->fd, fc->pattern + fc->pattern_off, n,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w <= 0)
			return; /* full, or the victim is gone */
		fc->pattern_off = (fc->pattern_off + (size_t)w) %
				  fc->pattern_len;
		budget -= (size_t)w;
	}
}

static void raw_read(struct flood_ctx *fc)
{
	for (;;) {
		uint8_t scratch[4096];
		uint8_t *to = fc->in_len < RAW_IN_CAP ? fc->in + fc->in_len
						      : scratch;
		size_t room = fc->in_len < RAW_IN_CAP ? RAW_IN_CAP - fc->in_len
						      : sizeof(scratch);
		ssize_t r = recv(fc->fd, to, room, MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			fc->peer_eof = true;
			return;
		}
		if (r < 0)
			return;
		if (to != scratch)
			fc->in_len += (size_t)r;
	}
}

/* Called once per loop turn: the raw peer floods until it reads the end of
 * the victim's output, then closes its socket. */
static bool flood_done(struct lh *h)
{
	struct flood_ctx *fc = h->ctx;

	if (fc->fd >= 0) {
		if (!fc->flooding && legit_received(h) > 0) {
			fc->flooding = true;
			fc->legit_at_start = legit_received(h);
		}
		if (fc->flooding) {
			fc->turns++;
			raw_write(fc);
		}
		raw_read(fc);
		if (fc->peer_eof) {
			close(fc->fd);
			fc->fd = -1;
		}
	}
	return fc->fd < 0 && fc->victim->ended && lh_all_streams_closed(h);
}

static void start(struct lh *h, struct flood_ctx *fc,
		  const struct muxring_session_opts *victim_opts)
{
	struct lh_peer *server;
	int fds[2];

	h->ctx = fc;
	h->hook = note_victim_end;
	fc->in = malloc(RAW_IN_CAP);
	assert_non_null(fc->in);
	lh_pair_tcp(h, NULL, &fc->legit, &server);
	for (int i = 0; i < LEGIT_STREAMS; i++)
		lh_open(fc->legit, LH_SOURCE, LEGIT_BYTES);
	lh_tcp_fds(fds);
	fc->victim = lh_peer_new(h, true, LH_ECHO, 0);
	assert_int_equal(muxring_session_create(h->loop, fds[1], MUXRING_SERVER,
						victim_opts,
						(uintptr_t)fc->victim,
						&fc->victim->sess),
			 0);
	fc->fd = fds[0];
}

/* Every stream of the well-behaved pair came through whole; every stream
 * the raw peer opened is closed. */
static void assert_streams_ok(struct lh *h, struct flood_ctx *fc)
{
	for (size_t i = 0; i < h->nstreams; i++) {
		struct lh_stream *s = h->streams[i];

		assert_true(s->closed);
		if (s->peer == fc->victim)
			continue;
		if (s->mismatch || s->write_errors || !s->eof ||
		    s->close_code != MUXRING_NO_ERROR)
			fail_msg("stream %u (%s): mismatch %d, %u write errors, "
				 "eof %d, closed with %u", s->id,
				 s->peer->server ? "server" : "client",
				 s->mismatch, s->write_errors, s->eof,
				 s->close_code);
		if (s->role == LH_SOURCE) {
			assert_int_equal(s->written, s->total);
			assert_int_equal(s->received, s->total);
			assert_true(lh_sum_value(&s->recv_sum) ==
				    lh_sum_value(&s->send_sum));
		} else {
			assert_int_equal(s->written, s->received);
		}
	}
}

/* The victim ended over the flood, said why in SESSION_ENDED and on the
 * wire, and the other session lost nothing. */
static void assert_flood_ended_alone(struct lh *h, struct flood_ctx *fc,
				     const char *reason)
{
	struct mr_frame_header hdr;
	size_t off = 0;
	bool goaway_seen = false;

	assert_int_equal(fc->victim->end_res,
			 MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM));
	if (strncmp(fc->victim->end_reason, reason, strlen(reason)))
		fail_msg("SESSION_ENDED reason \"%s\", expected \"%s...\"",
			 fc->victim->end_reason, reason);
	/* The raw peer got whole frames, the GOAWAY saying why last. */
	while (off + MR_FRAME_HEADER_LEN <= fc->in_len) {
		mr_frame_header_parse(fc->in + off, &hdr);
		assert_true(off + MR_FRAME_HEADER_LEN + hdr.length <= fc->in_len);
		if (hdr.type == MR_FRAME_GOAWAY) {
			const uint8_t *body = fc->in + off + MR_FRAME_HEADER_LEN;

			assert_int_equal(mr_get_be32(body + 4),
					 MUXRING_ENHANCE_YOUR_CALM);
			assert_int_equal(hdr.length - 8,
					 strlen(fc->victim->end_reason));
			assert_memory_equal(body + 8, fc->victim->end_reason,
					    strlen(fc->victim->end_reason));
			goaway_seen = true;
		}
		off += MR_FRAME_HEADER_LEN + hdr.length;
	}
	assert_true(goaway_seen);
	assert_int_equal(off, fc->in_len);
	/* The other session: untouched, every byte back. */
	assert_false(fc->legit->ended);
	assert_streams_ok(h, fc);
	assert_int_equal(legit_received(h),
			 (uint64_t)LEGIT_STREAMS * LEGIT_BYTES);
	printf("flood: %u turns, the other session moved %llu bytes meanwhile\n",
	       fc->turns,
	       (unsigned long long)(fc->legit_at_end - fc->legit_at_start));
}

static void free_ctx(struct flood_ctx *fc)
{
	free(fc->pattern);
	free(fc->in);
}

/* One frame (or two) of a flood, for index i; returns the bytes packed. */
typedef size_t (*pack_fn)(uint8_t *out, uint32_t i);

/* Never-opened client stream ids, all different within a pattern. */
static uint32_t flood_id(uint32_t i)
{
	return 1001 + 2 * i;
}

static size_t pack_tiny_wndinc(uint8_t *out, uint32_t i)
{
	return mr_frame_pack_wndinc(out, flood_id(i), 1);
}

static size_t pack_rst(uint8_t *out, uint32_t i)
{
	return mr_frame_pack_rst(out, flood_id(i), MUXRING_STREAM_CANCELLED);
}

static size_t pack_unknown(uint8_t *out, uint32_t i)
{
	mr_put_be32(out, 0xF0); /* length 0, type 0xF */
	mr_put_be32(out + 4, i);
	return MR_FRAME_HEADER_LEN;
}

static size_t pack_empty_data(uint8_t *out, uint32_t i)
{
	return mr_frame_pack_data_header(out, flood_id(i), 0, 0);
}

static size_t pack_data_for_gone_stream(uint8_t *out, uint32_t i)
{
	size_t n = mr_frame_pack_data_header(out, flood_id(i), 0, 1);

	out[n] = 'z';
	return n + 1;
}

static size_t pack_open_and_reset(uint8_t *out, uint32_t i)
{
	size_t n = mr_frame_pack_data_header(out, flood_id(i), MR_FLAG_SYN, 0);

	return n + mr_frame_pack_rst(out + n, flood_id(i),
				     MUXRING_STREAM_CANCELLED);
}

/* The raw peer writes frames made by `pack` as fast as its socket takes
 * them, against a session with `opts` (NULL: the default budgets); only
 * its session may end. */
static void flood_at_full_speed(pack_fn pack,
				const struct muxring_session_opts *opts,
				const char *reason)
{
	struct lh *h = lh_new(NULL);
	struct flood_ctx fc = {.bytes_per_turn = 256u << 10};
	const uint32_t frames = 8192;

	fc.pattern = malloc((size_t)frames * 2 * MR_CONTROL_FRAME_LEN);
	assert_non_null(fc.pattern);
	for (uint32_t i = 0; i < frames; i++)
		fc.pattern_len += pack(fc.pattern + fc.pattern_len, i);
	start(h, &fc, opts);
	lh_run(h, flood_done, 60);
	assert_flood_ended_alone(h, &fc, reason);
	lh_free(h);
	free_ctx(&fc);
}

static void test_a_wndinc_flood_at_full_speed_ends_only_its_session(void **state)
{
	(void)state;
	flood_at_full_speed(pack_tiny_wndinc, NULL, "WNDINC flood");
}

static void test_an_rst_flood_at_full_speed_ends_only_its_session(void **state)
{
	(void)state;
	flood_at_full_speed(pack_rst, NULL, "RST flood");
}

static void test_an_unknown_frame_flood_at_full_speed_ends_only_its_session(void **state)
{
	(void)state;
	flood_at_full_speed(pack_unknown, NULL, "flood of unknown frame types");
}

static void test_an_empty_data_flood_at_full_speed_ends_only_its_session(void **state)
{
	(void)state;
	flood_at_full_speed(pack_empty_data, NULL, "empty DATA flood");
}

static void test_data_for_gone_streams_at_full_speed_ends_only_its_session(void **state)
{
	(void)state;
	flood_at_full_speed(pack_data_for_gone_stream, NULL,
			    "flood of DATA on closed streams");
}

static void test_syn_rst_churn_at_full_speed_ends_only_its_session(void **state)
{
	/* Streams count against the accept backlog until the application
	 * has seen them, so at full speed SYNs beyond it would be refused,
	 * and the RSTs for those charged as an RST flood (how many depends
	 * on how the bytes arrive); a backlog larger than the flood lets
	 * every stream open, and the churn budget is what ends it. */
	struct muxring_session_opts opts = {.accept_backlog = 16384};

	(void)state;
	flood_at_full_speed(pack_open_and_reset, &opts, "stream churn");
}

static void test_a_goaway_flood_lasting_200_turns_does_not_stall_another_session(void **state)
{
	struct lh *h = lh_new(NULL);
	struct flood_ctx fc = {0};
	struct muxring_session_opts opts = {.max_goaways = 200};
	static const char debug[] = "going away, again";

	(void)state;
	fc.pattern_len = MR_GOAWAY_HEAD_LEN + sizeof(debug) - 1;
	fc.bytes_per_turn = fc.pattern_len; /* one GOAWAY a turn */
	fc.pattern = malloc(fc.pattern_len);
	assert_non_null(fc.pattern);
	mr_frame_pack_goaway_head(fc.pattern, 0, MUXRING_NO_ERROR,
				  sizeof(debug) - 1);
	memcpy(fc.pattern + MR_GOAWAY_HEAD_LEN, debug, sizeof(debug) - 1);
	start(h, &fc, &opts);
	lh_run(h, flood_done, 60);
	assert_flood_ended_alone(h, &fc, "GOAWAY flood");
	/* The peer's GOAWAYs were heard (the entry carries the last). */
	assert_true(fc.victim->goaway);
	assert_true(fc.victim->end_flags & MUXRING_CQE_F_REMOTE);
	assert_string_equal(fc.victim->end_debug, debug);
	assert_true(fc.turns >= 200);
	/* Served while the flood lasted, not only after it. */
	assert_true(fc.legit_at_end > fc.legit_at_start);
	lh_free(h);
	free_ctx(&fc);
}

static void test_a_control_backlog_below_one_frame_is_refused(void **state)
{
	struct lh *h = lh_new(NULL);
	struct muxring_session_opts opts = {.max_control_backlog = 11};
	struct muxring_session *sess = NULL;
	int fds[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    fds), 0);
	/* The call owns fds[0] and closes it, also when it fails. */
	assert_int_equal(muxring_session_create(h->loop, fds[0], MUXRING_SERVER,
						&opts, 0, &sess), -EINVAL);
	assert_null(sess);
	close(fds[1]);
	lh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_wndinc_flood_at_full_speed_ends_only_its_session),
		cmocka_unit_test(test_an_rst_flood_at_full_speed_ends_only_its_session),
		cmocka_unit_test(test_an_unknown_frame_flood_at_full_speed_ends_only_its_session),
		cmocka_unit_test(test_an_empty_data_flood_at_full_speed_ends_only_its_session),
		cmocka_unit_test(test_data_for_gone_streams_at_full_speed_ends_only_its_session),
		cmocka_unit_test(test_syn_rst_churn_at_full_speed_ends_only_its_session),
		cmocka_unit_test(test_a_goaway_flood_lasting_200_turns_does_not_stall_another_session),
		cmocka_unit_test(test_a_control_backlog_below_one_frame_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
