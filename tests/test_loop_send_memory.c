/*
 * test_loop_send_memory.c - memory and frames of small writes.
 *
 * One session over a socketpair whose other end is a raw socket that the
 * test reads (or does not) and parses with the frame codec. A first write
 * uses up the stream's whole send window, which the raw peer never
 * credits; then 100,000 writes of one byte wait on the stream. Covers:
 * what they cost, by the library's own counters (bytes plus 16 per write,
 * not a buffer per write); that once the peer grants window they leave in
 * two DATA frames (the 64 KiB frame limit), not 100,000; that each still
 * gets its own WRITE_DONE with its own user_data, in order; and that every
 * byte arrives intact and the counters return to zero. Writes that share
 * their length and user_data, as an echo of 1-byte frames makes, cost
 * about one byte each. Then the same with
 * a write deadline that passes while small writes wait: those wholly on
 * the wire complete, the rest fail with WriteTimeout, each exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine_harness.h"
#include "muxring.h"
#include "wire/frame.h"

#define SMALL_WRITES 100000u
#define WINDOW (256u << 10)
#define BIG_DATA (SMALL_WRITES + 1u) /* after every small write's */
#define ECHO_DATA (SMALL_WRITES + 2u) /* of writes that all share it */

struct rig {
	struct muxring_loop *loop;
	struct muxring_session *sess;
	struct muxring_stream *st;
	int raw;                  /* the peer's end, nonblocking */
	uint8_t *wire;            /* everything read from raw */
	size_t wire_len, wire_cap;
	uint64_t done;            /* small WRITE_DONEs seen (res 1) */
	uint64_t failed;          /* small WRITE_DONEs with an error */
	int64_t fail_res;
	uint64_t next_ud;         /* user_data the next small one must have */
	uint64_t echo_done;       /* WRITE_DONEs of ECHO_DATA (res 1) */
	bool order_ok;
	bool big_done;
	uint8_t *seen;            /* WRITE_DONE count per small write */
};

static uint8_t small_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + 1);
}

static void rig_open(struct rig *r)
{
	int sv[2];

	memset(r, 0, sizeof(*r));
	assert_int_equal(muxring_loop_create(&r->loop, NULL), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r->raw = sv[1];
	assert_int_equal(fcntl(r->raw, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(muxring_session_create(r->loop, sv[0], MUXRING_CLIENT,
						NULL, 0, &r->sess),
			 0);
	assert_int_equal(muxring_stream_open(r->sess, 0, &r->st), 0);
	r->seen = calloc(SMALL_WRITES, 1);
	assert_non_null(r->seen);
	r->order_ok = true;
	r->next_ud = 1;
}

static void rig_close(struct rig *r)
{
	muxring_loop_destroy(r->loop);
	close(r->raw);
	free(r->wire);
	free(r->seen);
}

/* Reads whatever the raw end has. */
static void rig_read(struct rig *r)
{
	for (;;) {
		ssize_t n;

		if (r->wire_cap - r->wire_len < 65536) {
			r->wire_cap = r->wire_cap ? r->wire_cap * 2 : 1u << 20;
			r->wire = realloc(r->wire, r->wire_cap);
			assert_non_null(r->wire);
		}
		n = read(r->raw, r->wire + r->wire_len,
			 r->wire_cap - r->wire_len);
		if (n <= 0)
			return;
		r->wire_len += (size_t)n;
	}
}

static void rig_entries(struct rig *r)
{
	struct muxring_cqe *cqes[256];
	unsigned n, i;

	while ((n = muxring_peek_batch_cqe(r->loop, cqes, 256))) {
		for (i = 0; i < n; i++) {
			struct muxring_cqe *c = cqes[i];
			uint64_t ud = c->user_data;

			if (c->type != MUXRING_CQE_WRITE_DONE)
				continue;
			if (ud == BIG_DATA) {
				assert_int_equal(c->res, WINDOW);
				r->big_done = true;
				continue;
			}
			if (ud == ECHO_DATA) {
				assert_int_equal(c->res, 1);
				r->echo_done++;
				continue;
			}
			assert_true(ud >= 1 && ud <= SMALL_WRITES);
			r->seen[ud - 1]++;
			if (c->res == 1) {
				r->done++;
			} else {
				r->failed++;
				r->fail_res = c->res;
			}
			if (ud != r->next_ud && c->res == 1)
				r->order_ok = false;
			if (c->res == 1)
				r->next_ud = ud + 1;
		}
		muxring_cq_advance(r->loop, n);
	}
}

static void rig_turn(struct rig *r)
{
	assert_true(muxring_submit_and_wait(r->loop, 1, 2000000) >= 0);
	rig_entries(r);
	rig_read(r);
}

static void stats(struct rig *r, struct muxring_stats *st)
{
	assert_int_equal(muxring_session_stats(r->sess, st), 0);
}

/* The big write takes the whole window, and the peer reads it (without
 * granting more). */
static void fill_window(struct rig *r)
{
	uint8_t *big = malloc(WINDOW);
	struct muxring_stats st;

	assert_non_null(big);
	memset(big, 0xAB, WINDOW);
	assert_int_equal(muxring_stream_write(r->st, big, WINDOW, BIG_DATA), 0);
	free(big);
	while (!r->big_done)
		rig_turn(r);
	stats(r, &st);
	assert_int_equal(st.write_bytes_queued, 0);
	assert_int_equal(st.write_memory, 0);
}

static void queue_small_writes(struct rig *r)
{
	uint64_t i;

	for (i = 0; i < SMALL_WRITES; i++) {
		uint8_t b = small_byte(i);

		assert_int_equal(muxring_stream_write(r->st, &b, 1, i + 1), 0);
	}
}

static void grant(struct rig *r, uint32_t increment)
{
	uint8_t frame[MR_CONTROL_FRAME_LEN];
	size_t len = mr_frame_pack_wndinc(frame, muxring_stream_id(r->st),
					  increment);

	assert_int_equal(write(r->raw, frame, len), (ssize_t)len);
}

/* Every payload byte of the stream, in order, and the DATA frames. */
static size_t payload_of(struct rig *r, uint8_t *out, size_t cap,
			 size_t *frames_after_window)
{
	struct eh_frames f;
	size_t i, len = 0;

	eh_frames_parse(r->wire, r->wire_len, &f);
	*frames_after_window = 0;
	for (i = 0; i < f.n; i++) {
		const struct eh_frame *fr = &f.v[i];

		if (fr->hdr.type != MR_FRAME_DATA ||
		    fr->hdr.stream_id != muxring_stream_id(r->st))
			continue;
		if (len >= WINDOW && fr->hdr.length)
			(*frames_after_window)++;
		assert_true(len + fr->hdr.length <= cap);
		memcpy(out + len, fr->body, fr->hdr.length);
		len += fr->hdr.length;
	}
	eh_frames_free(&f);
	return len;
}

static void test_small_writes_cost_bytes_and_leave_in_two_frames(void **state)
{
	struct muxring_stats before, after, loop_st;
	size_t len, frames, i, cap = WINDOW + SMALL_WRITES;
	uint8_t *got = malloc(cap);
	uint64_t mem;
	struct rig r;
	int turns;

	(void)state;
	assert_non_null(got);
	rig_open(&r);
	fill_window(&r);
	stats(&r, &before);
	queue_small_writes(&r);
	for (turns = 0; turns < 5; turns++)
		rig_turn(&r);
	stats(&r, &after);

	/* All of them wait (the window is used up) and cost their byte plus
	 * a 16-byte record, packed: about 1.7 MB, where a 4 KiB block per
	 * write would be 400 MB. */
	assert_int_equal(r.done + r.failed, 0);
	assert_int_equal(after.write_bytes_queued - before.write_bytes_queued,
			 SMALL_WRITES);
	mem = after.write_memory - before.write_memory;
	print_message("100,000 1-byte writes waiting hold %llu bytes (%.1f per write)\n",
		      (unsigned long long)mem, (double)mem / SMALL_WRITES);
	assert_true(mem >= SMALL_WRITES * 17u);
	assert_true(mem <= SMALL_WRITES * 17u + (128u << 10));
	assert_int_equal(muxring_loop_stats(r.loop, &loop_st), 0);
	assert_int_equal(loop_st.write_memory, after.write_memory);

	/* The peer reads and grants: they leave, each reported once, in
	 * order, with its own user_data. */
	rig_read(&r);
	grant(&r, 1u << 20);
	for (turns = 0; turns < 2000 && r.done < SMALL_WRITES; turns++)
		rig_turn(&r);
	assert_int_equal(r.done, SMALL_WRITES);
	assert_int_equal(r.failed, 0);
	assert_true(r.order_ok);
	assert_true(r.big_done);
	for (i = 0; i < SMALL_WRITES; i++)
		assert_int_equal(r.seen[i], 1);
	stats(&r, &after);
	assert_int_equal(after.write_bytes_queued, 0);
	assert_int_equal(after.write_memory, 0);

	/* On the wire: the window's 256 KiB, then the 100,000 bytes in two
	 * frames (64 KiB is the most a frame carries). */
	for (turns = 0; turns < 100 && r.wire_len < WINDOW + SMALL_WRITES; turns++)
		rig_turn(&r);
	len = payload_of(&r, got, cap, &frames);
	assert_int_equal(len, WINDOW + SMALL_WRITES);
	assert_int_equal(frames, 2);
	for (i = 0; i < WINDOW; i++)
		assert_int_equal(got[i], 0xAB);
	for (i = 0; i < SMALL_WRITES; i++)
		assert_int_equal(got[WINDOW + i], small_byte(i));
	free(got);
	rig_close(&r);
}

/* An echo of 1-byte frames: every write has the same length and user_data,
 * so they share records and cost about their bytes. */
static void test_equal_small_writes_cost_about_their_bytes(void **state)
{
	struct muxring_stats before, after;
	uint64_t i, mem;
	struct rig r;
	int turns;

	(void)state;
	rig_open(&r);
	fill_window(&r);
	stats(&r, &before);
	for (i = 0; i < SMALL_WRITES; i++) {
		uint8_t b = small_byte(i);

		assert_int_equal(muxring_stream_write(r.st, &b, 1, ECHO_DATA), 0);
	}
	rig_turn(&r);
	stats(&r, &after);
	assert_int_equal(after.write_bytes_queued - before.write_bytes_queued,
			 SMALL_WRITES);
	mem = after.write_memory - before.write_memory;
	print_message("100,000 equal 1-byte writes waiting hold %llu bytes\n",
		      (unsigned long long)mem);
	assert_true(mem <= SMALL_WRITES + (128u << 10));
	rig_read(&r);
	grant(&r, 1u << 20);
	for (turns = 0; turns < 2000 && r.echo_done < SMALL_WRITES; turns++)
		rig_turn(&r);
	assert_int_equal(r.echo_done, SMALL_WRITES);
	stats(&r, &after);
	assert_int_equal(after.write_memory, 0);
	rig_close(&r);
}

/* A write deadline passes while small writes wait behind a window the peer
 * opened only partly: the writes wholly on the wire complete, every other
 * one fails with WriteTimeout, each exactly once, and nothing stays held. */
static void test_write_deadline_cuts_waiting_small_writes(void **state)
{
	const uint32_t granted = 1000;
	struct muxring_stats st;
	size_t len, frames, cap = WINDOW + SMALL_WRITES, i;
	uint8_t *got = malloc(cap);
	struct rig r;
	int turns;

	(void)state;
	assert_non_null(got);
	rig_open(&r);
	fill_window(&r);
	queue_small_writes(&r);
	rig_read(&r);
	grant(&r, granted);
	for (turns = 0; turns < 200 && r.done < granted; turns++)
		rig_turn(&r);
	assert_int_equal(r.done, granted);
	assert_int_equal(muxring_stream_set_deadline(r.st, MUXRING_DEADLINE_WRITE,
						     muxring_now_ns()),
			 0);
	for (turns = 0; turns < 200 && r.done + r.failed < SMALL_WRITES;
	     turns++)
		rig_turn(&r);
	assert_int_equal(r.done, granted);
	assert_int_equal(r.failed, SMALL_WRITES - granted);
	assert_int_equal(r.fail_res, MUXRING_ERR(MUXRING_WRITE_TIMEOUT));
	for (i = 0; i < SMALL_WRITES; i++)
		assert_int_equal(r.seen[i], 1);
	stats(&r, &st);
	assert_int_equal(st.write_bytes_queued, 0);
	assert_int_equal(st.write_memory, 0);

	/* Nothing of the failed writes reached the wire; the stream still
	 * takes writes. */
	grant(&r, 1u << 20);
	for (turns = 0; turns < 20; turns++)
		rig_turn(&r);
	len = payload_of(&r, got, cap, &frames);
	assert_int_equal(len, WINDOW + granted);
	assert_int_equal(got[WINDOW + granted - 1], small_byte(granted - 1));
	r.next_ud = 1;
	{
		uint8_t b = small_byte(0);

		assert_int_equal(muxring_stream_write(r.st, &b, 1, 1), 0);
	}
	for (turns = 0; turns < 50 && r.seen[0] < 2; turns++)
		rig_turn(&r);
	assert_int_equal(r.seen[0], 2);
	free(got);
	rig_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_writes_cost_bytes_and_leave_in_two_frames),
		cmocka_unit_test(test_equal_small_writes_cost_about_their_bytes),
		cmocka_unit_test(test_write_deadline_cuts_waiting_small_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
