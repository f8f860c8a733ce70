/*
 * test_loop_send_slots.c - the loop's pool of send slots stays bounded.
 *
 * Covers: a thousand sends in flight at once (a full slot each, most moved
 * into small ones as the engine's short answers are) leave, once they
 * complete, no more spare slots than MR_SEND_FULL_SPARE full ones and
 * MR_SEND_SMALL_SPARE small ones: the rest go back to the allocator, so a
 * loop whose ten thousand sessions answered together does not keep ten
 * thousand slots; the spares are taken again before anything new is
 * allocated, and the loop frees them all when it goes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>


#include "counting_mem.h"
#include "uring/loop.h"

#define IN_FLIGHT 1000u
#define SHRUNK 600u

static void test_spare_slots_are_bounded(void **state)
{
	static struct mr_send_slot *slots[IN_FLIGHT];
	struct counting_mem counts = {0};
	struct muxring_mem mem;
	struct muxring_loop_opts opts = {
		.mem = counting_mem_as_mem(&counts, &mem)};
	struct muxring_loop *loop;
	uint64_t calls;
	int64_t base;

	(void)state;
	assert_int_equal(muxring_loop_create(&loop, &opts), 0);
	base = counts.live;
	for (unsigned i = 0; i < IN_FLIGHT; i++) {
		slots[i] = mr_loop_slot_get(loop);
		assert_non_null(slots[i]);
		assert_int_equal(slots[i]->iov_cap, MR_SEND_IOV);
	}
	for (unsigned i = 0; i < SHRUNK; i++) {
		slots[i] = mr_loop_slot_shrink(loop, slots[i], 1, 0);
		assert_int_equal(slots[i]->iov_cap, MR_SEND_SMALL_IOV);
	}
	for (unsigned i = 0; i < IN_FLIGHT; i++)
		mr_loop_slot_put(loop, slots[i]);
	assert_int_equal(loop->full_slots.count, MR_SEND_FULL_SPARE);
	assert_int_equal(loop->small_slots.count, MR_SEND_SMALL_SPARE);
	assert_int_equal(counts.live,
			 base + MR_SEND_FULL_SPARE + MR_SEND_SMALL_SPARE);

	calls = counts.calls;
	for (unsigned i = 0; i < MR_SEND_FULL_SPARE; i++)
		slots[i] = mr_loop_slot_get(loop);
	assert_int_equal(counts.calls, calls);
	for (unsigned i = 0; i < MR_SEND_FULL_SPARE; i++) {
		slots[i] = mr_loop_slot_shrink(loop, slots[i], 1, 0);
		assert_int_equal(slots[i]->iov_cap, MR_SEND_SMALL_IOV);
	}
	assert_int_equal(counts.calls, calls);
	assert_int_equal(loop->small_slots.count,
			 MR_SEND_SMALL_SPARE - MR_SEND_FULL_SPARE);
	for (unsigned i = 0; i < MR_SEND_FULL_SPARE; i++)
		mr_loop_slot_put(loop, slots[i]);

	muxring_loop_destroy(loop);
	assert_int_equal(counts.live, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spare_slots_are_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
