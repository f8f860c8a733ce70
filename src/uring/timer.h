/*
 * timer.h - deadlines of every session on one IORING_OP_TIMEOUT.
 *
 * Sessions with a deadline sit in a binary min-heap keyed by their engine's
 * next deadline (muxring_engine_next_deadline). One absolute CLOCK_MONOTONIC
 * timeout is armed on the ring for the heap's top; when an earlier deadline
 * appears it is moved with IORING_TIMEOUT_UPDATE rather than adding timers.
 * A key may be early (the engine moved a deadline later or cleared it): the
 * session is then expired for nothing and re-keyed, which is harmless. It is
 * never late, since only the application moves deadlines earlier, and every
 * such call re-keys the session.
 *
 * The same timeout bounds the waits of muxring_submit_and_wait(): a loop
 * that waits with a timeout in every turn would otherwise pay for a kernel
 * timer per io_uring_enter (EXT_ARG). Left armed across calls, it costs one
 * SQE per expiry; firing before a later call's deadline only wakes that
 * call once more.
 */
#ifndef MUXRING_TIMER_H
#define MUXRING_TIMER_H

#include <stdint.h>

#include <liburing.h>

#include "engine/mem.h"

struct muxring_loop;
struct muxring_session;

struct mr_timers {
	const struct muxring_mem *mem; /* allocates heap */
	struct muxring_session **heap; /* min-heap on session->deadline */
	uint32_t count, cap;
	uint64_t armed_at;             /* when the armed timeout fires (ns),
					  0: none armed */
	uint64_t wait_at;              /* deadline of the running
					  muxring_submit_and_wait (ns), 0:
					  none; the timeout is kept at or
					  before it */
	/* The timespecs the kernel reads at submission. Their addresses are
	 * the user_data of the timeout and of its updates. */
	struct __kernel_timespec ts __attribute__((aligned(8)));
	struct __kernel_timespec upd_ts __attribute__((aligned(8)));
};

void mr_timers_init(struct mr_timers *t, const struct muxring_mem *mem);
void mr_timers_free(struct mr_timers *t);

/* Makes room in the heap for n sessions, so that keying them never needs
 * memory (a session reserves its place when it is created). Returns 0 or
 * -ENOMEM. */
int mr_timers_reserve(struct mr_timers *t, uint32_t n);

/* Keys session s at `when` (ns; 0 takes it out). Its place is reserved. */
void mr_timers_set(struct mr_timers *t, struct muxring_session *s,
		   uint64_t when);

/* The earliest key, or 0. */
uint64_t mr_timers_next(const struct mr_timers *t);

/* Expires every session whose key is due at `now`. */
void mr_timers_run(struct muxring_loop *loop, uint64_t now);

/* Arms or moves the ring's timeout for the earliest key. */
void mr_timers_arm(struct muxring_loop *loop);

/* A completion of the timeout (obj == &t->ts) or of an update. */
void mr_timers_complete(struct muxring_loop *loop, void *obj, int res);

#endif
