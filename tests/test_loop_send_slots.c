/*
 * test_loop_send_slots.c - the loop's pool of send slots stays bounded.
 *
 * Covers: a thousand sends in flight at once (a full slot each, most moved
 * into tiny or small ones, as the engine's short answers are) leave, once
 * they complete, no more spare slots than MR_SEND_FULL_SPARE full ones and
 * MR_SEND_SMALL_SPARE of each smaller class: the rest go back to the
 * allocator, so a loop whose ten thousand sessions answered together does
 * not keep ten thousand slots; each send moves into the smallest class
 * that holds it, and stays in its full slot when none does; the spares are
 * taken again before anything new is allocated, and the loop frees them
 * all when it goes. And in a turn where many sessions send at once, the
 * quiet sends of a full submission queue are known done when it is
 * submitted, so their slots serve the next sessions: 200 sessions sending
 * through an 8-entry queue go through a handful of slots, not 200; but not
 * while a quiet send's failure waits in the completion queue: sockets
 * found full in such a burst still get every byte, once there is room.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>


#include "counting_mem.h"
#include "uring/loop.h"

#define IN_FLIGHT 1000u
#define TINY 300u  /* slots[0, TINY) move into tiny slots */
#define SMALL 300u /* the next SMALL into small ones */

static void test_a_send_moves_into_the_smallest_slot_that_holds_it(void **state)
{
	struct muxring_loop *loop;
	struct mr_send_slot *slot;

	(void)state;
	assert_int_equal(muxring_loop_create(&loop, NULL), 0);

	slot = mr_loop_slot_get(loop);
	assert_int_equal(slot->iov_cap, MR_SEND_IOV);
	assert_true(slot->bounce_cap >= MR_SEND_BOUNCE);
	memcpy(slot->bounce, "abc", 3);
	slot->iov[0] = (struct iovec){.iov_base = slot->bounce, .iov_len = 3};
	slot = mr_loop_slot_shrink(loop, slot, 1, 3);
	assert_int_equal(slot->iov_cap, MR_SEND_TINY_IOV);
	/* The iovec follows its bytes into the new bounce buffer. */
	assert_ptr_equal(slot->iov[0].iov_base, slot->bounce);
	assert_memory_equal(slot->bounce, "abc", 3);
	mr_loop_slot_put(loop, slot);

	/* One buffer too long for a tiny slot. */
	slot = mr_loop_slot_shrink(loop, mr_loop_slot_get(loop), 1,
				   MR_SEND_TINY_SLOT);
	assert_int_equal(slot->iov_cap, MR_SEND_SMALL_IOV);
	mr_loop_slot_put(loop, slot);

	/* Two iovecs: never tiny. */
	slot = mr_loop_slot_shrink(loop, mr_loop_slot_get(loop), 2, 0);
	assert_int_equal(slot->iov_cap, MR_SEND_SMALL_IOV);
	mr_loop_slot_put(loop, slot);

	/* Too many iovecs, or too many bytes, for any smaller class. */
	slot = mr_loop_slot_shrink(loop, mr_loop_slot_get(loop),
				   MR_SEND_SMALL_IOV + 1, 0);
	assert_int_equal(slot->iov_cap, MR_SEND_IOV);
	slot = mr_loop_slot_shrink(loop, slot, 1, MR_SEND_SMALL_SLOT);
	assert_int_equal(slot->iov_cap, MR_SEND_IOV);
	mr_loop_slot_put(loop, slot);

	muxring_loop_destroy(loop);
}

static void test_spare_slots_are_bounded(void **state)
{
	static struct mr_send_slot *slots[IN_FLIGHT];
	struct counting_mem counts = {0};
	struct muxring_mem mem;
	struct muxring_loop_opts opts = {
		.mem = counting_mem_as_mem(&counts, &mem)};
	struct muxring_loop *loop;
	struct mr_slot_stack *spare;
	uint64_t calls;
	int64_t base;

	(void)state;
	assert_int_equal(muxring_loop_create(&loop, &opts), 0);
	spare = loop->spare_slots;
	base = counts.live;
	for (unsigned i = 0; i < IN_FLIGHT; i++) {
		slots[i] = mr_loop_slot_get(loop);
		assert_non_null(slots[i]);
	}
	for (unsigned i = 0; i < TINY + SMALL; i++)
		slots[i] = mr_loop_slot_shrink(loop, slots[i], i < TINY ? 1 : 2,
					       0);
	for (unsigned i = 0; i < IN_FLIGHT; i++)
		mr_loop_slot_put(loop, slots[i]);
	assert_int_equal(spare[MR_SLOT_FULL].count, MR_SEND_FULL_SPARE);
	assert_int_equal(spare[MR_SLOT_SMALL].count, MR_SEND_SMALL_SPARE);
	assert_int_equal(spare[MR_SLOT_TINY].count, MR_SEND_SMALL_SPARE);
	assert_int_equal(counts.live, base + MR_SEND_FULL_SPARE +
					      2 * MR_SEND_SMALL_SPARE);

	calls = counts.calls;
	for (unsigned i = 0; i < MR_SEND_FULL_SPARE; i++)
		slots[i] = mr_loop_slot_get(loop);
	assert_int_equal(counts.calls, calls);
	for (unsigned i = 0; i < MR_SEND_FULL_SPARE; i++) {
		slots[i] = mr_loop_slot_shrink(loop, slots[i], 1, 0);
		assert_int_equal(slots[i]->iov_cap, MR_SEND_TINY_IOV);
	}
	assert_int_equal(counts.calls, calls);
	assert_int_equal(spare[MR_SLOT_TINY].count,
			 MR_SEND_SMALL_SPARE - MR_SEND_FULL_SPARE);
	for (unsigned i = 0; i < MR_SEND_FULL_SPARE; i++)
		mr_loop_slot_put(loop, slots[i]);

	muxring_loop_destroy(loop);
	assert_int_equal(counts.live, 0);
}

#define SENDERS 200u
#define SMALL_SQ 8u

/* Fills the socket's send path until it takes no more; returns the bytes
 * written. */
static size_t fill_socket(int fd)
{
	static const uint8_t junk[4096];
	size_t total = 0;
	ssize_t n;

	while ((n = send(fd, junk, sizeof(junk), MSG_DONTWAIT)) > 0)
		total += (size_t)n;
	assert_true(total > 0);
	return total;
}

/* Reads exactly len bytes from fd, turning the loop while it waits. */
static void read_all(struct muxring_loop *loop, int fd, uint8_t *out,
		     size_t len)
{
	static uint8_t sink[4096];
	size_t got = 0;

	for (int spins = 0; got < len; spins++) {
		size_t want = len - got;
		uint8_t *to = out ? out + got : sink;
		ssize_t n;

		if (!out && want > sizeof(sink))
			want = sizeof(sink);
		n = recv(fd, to, want, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		assert_true(spins < 5000);
		assert_true(muxring_submit_and_wait(loop, 0, 1000000) >= 0);
	}
}

/* A client session on one end of a socketpair, with a stream on which it
 * wrote msg (quietly, before any turn); returns the other end. With
 * `filler`, the socket is filled first and *filler says with how much. */
static int quiet_sender(struct muxring_loop *loop, const uint8_t *msg,
			size_t len, size_t *filler)
{
	struct muxring_session *s;
	struct muxring_stream *st;
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	if (filler)
		*filler = fill_socket(fds[0]);
	assert_int_equal(muxring_session_create(loop, fds[0], MUXRING_CLIENT,
						NULL, 0, &s), 0);
	assert_int_equal(muxring_stream_open(s, 0, &st), 0);
	assert_int_equal(muxring_stream_write_quiet(st, msg, len), 0);
	return fds[1];
}

/* SENDERS sessions each write a 64-byte message, sent in one turn through
 * an SQ of SMALL_SQ entries; returns the tiny slots the loop keeps once
 * every send is done, which is how many it needed (up to
 * MR_SEND_SMALL_SPARE). *quiet says whether the sends were quiet. */
static unsigned tiny_slots_for_a_burst(unsigned disable, bool *quiet)
{
	static int peers[SENDERS];
	struct muxring_loop_opts opts = {.sq_entries = SMALL_SQ,
					 .disable = disable};
	struct muxring_loop *loop;
	uint8_t msg[64] = {0}, got[sizeof(msg) + 8];
	unsigned kept;

	assert_int_equal(muxring_loop_create(&loop, &opts), 0);
	*quiet = muxring_loop_features(loop) & MUXRING_FEAT_SEND_QUIET;
	for (unsigned i = 0; i < SENDERS; i++)
		peers[i] = quiet_sender(loop, msg, sizeof(msg), NULL);
	assert_true(muxring_submit_and_wait(loop, 0, 0) >= 0);
	/* Completions beyond the completion queue's 4 x SMALL_SQ entries wait
	 * in the kernel until later turns reap them. */
	for (unsigned turn = 0; turn < SENDERS / SMALL_SQ; turn++)
		assert_true(muxring_submit_and_wait(loop, 0, 0) >= 0);
	for (unsigned i = 0; i < SENDERS; i++) {
		assert_int_equal(recv(peers[i], got, sizeof(got), MSG_DONTWAIT),
				 sizeof(got));
		close(peers[i]);
	}
	kept = loop->spare_slots[MR_SLOT_TINY].count;
	muxring_loop_destroy(loop);
	return kept;
}

static void test_a_full_queue_hands_its_quiet_slots_on(void **state)
{
	bool quiet;
	unsigned kept;

	(void)state;
	/* Sends that must complete hold their slots until the turn reaps. */
	kept = tiny_slots_for_a_burst(MUXRING_FEAT_SEND_QUIET, &quiet);
	assert_false(quiet);
	assert_int_equal(kept, SENDERS);
	/* Quiet ones are done once submitted: a few slots go round. */
	kept = tiny_slots_for_a_burst(0, &quiet);
	print_message("%u quiet sends went through %u tiny slots\n", SENDERS,
		      kept);
	if (quiet)
		assert_true(kept <= 2 * SMALL_SQ);
	else
		assert_int_equal(kept, SENDERS);
}

/* In the same burst, the first sessions find their sockets full: their
 * quiet sends fail (-EAGAIN), and the failures wait in the completion
 * queue while later sessions fill the submission queue. No quiet send may
 * be taken as done then (its slot still holds the bytes to send again):
 * once the peers read, every message arrives whole, after the filler. */
static void test_quiet_failures_in_a_burst_are_sent_again(void **state)
{
	enum { SESSIONS = 64, FULL = 4 };
	static int peers[SESSIONS];
	static size_t filler[SESSIONS];
	struct muxring_loop_opts opts = {.sq_entries = SMALL_SQ};
	struct muxring_loop *loop;
	uint8_t msg[64], got[sizeof(msg) + 8];

	(void)state;
	memset(msg, 0x6d, sizeof(msg));
	assert_int_equal(muxring_loop_create(&loop, &opts), 0);
	for (unsigned i = 0; i < SESSIONS; i++)
		peers[i] = quiet_sender(loop, msg, sizeof(msg),
					i < FULL ? &filler[i] : NULL);
	assert_true(muxring_submit_and_wait(loop, 0, 0) >= 0);
	for (unsigned i = 0; i < SESSIONS; i++) {
		read_all(loop, peers[i], NULL, filler[i]);
		read_all(loop, peers[i], got, sizeof(got));
		/* DATA, SYN, stream 3, 64 bytes; then the bytes. */
		assert_int_equal(got[2], sizeof(msg));
		assert_int_equal(got[7], 3);
		assert_memory_equal(got + 8, msg, sizeof(msg));
		close(peers[i]);
	}
	muxring_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_a_send_moves_into_the_smallest_slot_that_holds_it),
		cmocka_unit_test(test_spare_slots_are_bounded),
		cmocka_unit_test(test_a_full_queue_hands_its_quiet_slots_on),
		cmocka_unit_test(test_quiet_failures_in_a_burst_are_sent_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
