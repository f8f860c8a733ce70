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
 * all when it goes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_a_send_moves_into_the_smallest_slot_that_holds_it),
		cmocka_unit_test(test_spare_slots_are_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
