/*
 * test_engine_event_queue.c - the FIFO between the engine and its driver.
 *
 * Covers: events come out in the order they went in, through growth and
 * through the ring's wrap; a sequence number finds its event while it is
 * queued, and nothing once it is polled; a drained queue of the smallest
 * size holds no storage (of ten thousand sessions, only those with events
 * waiting hold any); a queue that has grown keeps its storage, so a busy
 * session allocates nothing per turn; a push the allocator refuses fails with -ENOMEM and leaves the
 * queue as it was, and usable once memory comes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "counting_mem.h"
#include "engine/session_internal.h"

struct fixture {
	struct counting_mem counts;
	struct muxring_mem mem;
	struct mr_event_queue q;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	mr_evq_init(&f->q, counting_mem_as_mem(&f->counts, &f->mem));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mr_evq_free(&f->q);
	assert_int_equal(f->counts.live, 0);
	free(f);
	return 0;
}

static int push(struct mr_event_queue *q, uint64_t tag)
{
	struct mr_event ev = {.type = MR_EV_WRITE_DONE, .user_data = tag};

	return mr_evq_push(q, &ev);
}

static uint64_t pop(struct mr_event_queue *q)
{
	struct mr_event ev;

	assert_true(mr_evq_pop(q, &ev));
	assert_int_equal(ev.type, MR_EV_WRITE_DONE);
	return ev.user_data;
}

static void test_order_through_growth_and_wrap(void **state)
{
	struct fixture *f = *state;
	uint64_t in = 0, out = 0;

	/* Keep a few queued while pushing many, so head wraps and the ring
	 * doubles with head away from slot 0. */
	for (unsigned round = 0; round < 50; round++) {
		for (unsigned i = 0; i < 3 + round % 7; i++)
			assert_int_equal(push(&f->q, in++), 0);
		for (unsigned i = 0; i < 2 + round % 5 && out + 1 < in; i++)
			assert_int_equal(pop(&f->q), out++);
	}
	while (out < in)
		assert_int_equal(pop(&f->q), out++);
	assert_false(mr_evq_pop(&f->q, &(struct mr_event){0}));
}

static void test_a_sequence_number_finds_its_event(void **state)
{
	struct fixture *f = *state;
	uint32_t seq[10];

	for (uint64_t i = 0; i < 10; i++) {
		assert_int_equal(push(&f->q, 100 + i), 0);
		seq[i] = mr_evq_last_seq(&f->q);
	}
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(mr_evq_find(&f->q, seq[i])->user_data,
				 100 + i);
	assert_int_equal(pop(&f->q), 100);
	assert_null(mr_evq_find(&f->q, seq[0]));
	assert_int_equal(mr_evq_find(&f->q, seq[9])->user_data, 109);
	while (f->q.count)
		pop(&f->q);
	assert_null(mr_evq_find(&f->q, seq[9]));
	assert_int_equal(push(&f->q, 200), 0);
	assert_int_equal(mr_evq_last_seq(&f->q), seq[9] + 1);
	assert_int_equal(mr_evq_find(&f->q, seq[9] + 1)->user_data, 200);
}

static void test_a_drained_queue_holds_nothing(void **state)
{
	struct fixture *f = *state;

	assert_null(f->q.items);
	assert_int_equal(push(&f->q, 1), 0);
	assert_int_equal(f->counts.live, 1);
	pop(&f->q);
	assert_null(f->q.items);
	assert_int_equal(f->counts.live, 0);
}

static void test_a_grown_queue_keeps_its_storage(void **state)
{
	struct fixture *f = *state;
	struct mr_event *storage;
	uint64_t calls;

	for (uint64_t i = 0; i < 20; i++)
		assert_int_equal(push(&f->q, i), 0);
	storage = f->q.items;
	while (f->q.count)
		pop(&f->q);
	assert_ptr_equal(f->q.items, storage);

	/* The same burst again, and a quiet turn: nothing allocated. */
	calls = f->counts.calls;
	for (uint64_t i = 0; i < 20; i++)
		assert_int_equal(push(&f->q, i), 0);
	for (uint64_t i = 0; i < 20; i++)
		assert_int_equal(pop(&f->q), i);
	assert_int_equal(push(&f->q, 1), 0);
	pop(&f->q);
	assert_ptr_equal(f->q.items, storage);
	assert_int_equal(f->counts.calls, calls);
}

static void test_a_refused_push_changes_nothing(void **state)
{
	struct fixture *f = *state;

	f->counts.refuse = true;
	assert_int_equal(push(&f->q, 1), -ENOMEM);
	assert_int_equal(f->q.count, 0);
	f->counts.refuse = false;

	while (f->q.count < f->q.cap || !f->q.items)
		assert_int_equal(push(&f->q, f->q.count), 0);
	f->counts.refuse = true;
	assert_int_equal(push(&f->q, 99), -ENOMEM);
	f->counts.refuse = false;
	assert_int_equal(push(&f->q, f->q.count), 0);
	for (uint64_t i = 0; f->q.count; i++)
		assert_int_equal(pop(&f->q), i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_order_through_growth_and_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_sequence_number_finds_its_event, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_a_drained_queue_holds_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_grown_queue_keeps_its_storage, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_refused_push_changes_nothing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
