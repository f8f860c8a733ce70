/*
 * valgrind_run.h - what tests change when `make valgrind` runs them.
 *
 * make valgrind sets MUXRING_VALGRIND=1. Under memcheck a test runs 20 to
 * 50 times slower, so its time budgets stretch; and valgrind 3.19 keeps its
 * global lock while a thread sits in io_uring_enter, so a thread waiting in
 * its ring stops every other thread of the process until the wait ends:
 * tests with a loop per thread do not wait in the ring there. What a test
 * checks stays the same.
 */
#ifndef MUXRING_TEST_VALGRIND_RUN_H
#define MUXRING_TEST_VALGRIND_RUN_H

#include <stdbool.h>
#include <stdint.h>

/* Whether make valgrind runs this test. */
bool vg_active(void);

/* A time budget of `seconds`, stretched under valgrind. */
double vg_seconds(double seconds);

struct muxring_loop;

/* muxring_submit_and_wait() for a loop that runs in a thread of its own.
 * Under valgrind it does not wait in the ring: it submits, reaps, and when
 * fewer than min_entries are ready sleeps 100 us, in which the other
 * threads run; the caller's loop comes back round. */
int vg_submit_and_wait(struct muxring_loop *loop, unsigned min_entries,
		       int64_t timeout_ns);

#endif
