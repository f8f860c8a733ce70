/*
 * timer.c - the deadline heap and the ring timeout that serves it.
 *
 * The heap holds only sessions that have a deadline; a session's place is
 * kept in the session (heap_idx), so re-keying is O(log n) with no search.
 */
#include "uring/timer.h"

#include <errno.h>

#include "uring/loop.h"
#include "uring/session_io.h"

void mr_timers_init(struct mr_timers *t, const struct muxring_mem *mem)
{
	t->mem = mem;
	t->heap = NULL;
	t->count = t->cap = 0;
	t->armed_at = 0;
	t->wait_at = 0;
}

void mr_timers_free(struct mr_timers *t)
{
	mr_free(t->mem, t->heap);
	t->heap = NULL;
	t->count = t->cap = 0;
}

static void heap_place(struct mr_timers *t, uint32_t i, struct muxring_session *s)
{
	t->heap[i] = s;
	s->heap_idx = i + 1;
}

static void sift_up(struct mr_timers *t, uint32_t i)
{
	struct muxring_session *s = t->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (t->heap[parent]->deadline <= s->deadline)
			break;
		heap_place(t, i, t->heap[parent]);
		i = parent;
	}
	heap_place(t, i, s);
}

static void sift_down(struct mr_timers *t, uint32_t i)
{
	struct muxring_session *s = t->heap[i];

	for (;;) {
		uint32_t child = 2 * i + 1;

		if (child >= t->count)
			break;
		if (child + 1 < t->count &&
		    t->heap[child + 1]->deadline < t->heap[child]->deadline)
			child++;
		if (s->deadline <= t->heap[child]->deadline)
			break;
		heap_place(t, i, t->heap[child]);
		i = child;
	}
	heap_place(t, i, s);
}

static void heap_remove(struct mr_timers *t, struct muxring_session *s)
{
	uint32_t i = s->heap_idx - 1;
	struct muxring_session *last = t->heap[--t->count];

	s->heap_idx = 0;
	if (last == s)
		return;
	heap_place(t, i, last);
	sift_down(t, i);
	sift_up(t, last->heap_idx - 1);
}

int mr_timers_reserve(struct mr_timers *t, uint32_t n)
{
	struct muxring_session **heap;
	uint32_t cap = t->cap ? t->cap : 16;

	if (n <= t->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	heap = mr_realloc(t->mem, t->heap, (size_t)cap * sizeof(*heap));
	if (!heap)
		return -ENOMEM;
	t->heap = heap;
	t->cap = cap;
	return 0;
}

void mr_timers_set(struct mr_timers *t, struct muxring_session *s,
		   uint64_t when)
{
	uint64_t old = s->deadline;

	if (!when) {
		if (s->heap_idx)
			heap_remove(t, s);
		s->deadline = 0;
		return;
	}
	s->deadline = when;
	if (!s->heap_idx) {
		heap_place(t, t->count++, s);
		sift_up(t, t->count - 1);
		return;
	}
	if (when < old)
		sift_up(t, s->heap_idx - 1);
	else
		sift_down(t, s->heap_idx - 1);
}

uint64_t mr_timers_next(const struct mr_timers *t)
{
	return t->count ? t->heap[0]->deadline : 0;
}

void mr_timers_run(struct muxring_loop *loop, uint64_t now)
{
	struct mr_timers *t = &loop->timers;

	while (t->count && t->heap[0]->deadline <= now) {
		struct muxring_session *s = t->heap[0];

		mr_timers_set(t, s, mr_sio_expire(s, now));
		mr_loop_mark_dirty(s);
	}
}

static void ns_to_ts(uint64_t ns, struct __kernel_timespec *ts)
{
	ts->tv_sec = (long long)(ns / 1000000000u);
	ts->tv_nsec = (long long)(ns % 1000000000u);
}

void mr_timers_arm(struct muxring_loop *loop)
{
	struct mr_timers *t = &loop->timers;
	uint64_t next = mr_timers_next(t);
	struct io_uring_sqe *sqe;

	if (t->wait_at && (!next || t->wait_at < next))
		next = t->wait_at;
	if (!next || (t->armed_at && t->armed_at <= next))
		return;
	sqe = mr_loop_sqe(loop);
	if (!sqe)
		return; /* the wait is bounded in the enter instead, and this
			   is tried again before the next one */
	if (!t->armed_at) {
		ns_to_ts(next, &t->ts);
		io_uring_prep_timeout(sqe, &t->ts, 0, IORING_TIMEOUT_ABS);
		io_uring_sqe_set_data64(sqe, mr_op_data(&t->ts, MR_OP_LOOP));
	} else {
		/* An earlier deadline: move the armed timeout. If it fired
		 * meanwhile the update fails with -ENOENT, and the firing's
		 * completion re-arms. */
		ns_to_ts(next, &t->upd_ts);
		io_uring_prep_timeout_update(sqe, &t->upd_ts,
					     mr_op_data(&t->ts, MR_OP_LOOP),
					     IORING_TIMEOUT_ABS);
		io_uring_sqe_set_data64(sqe,
					mr_op_data(&t->upd_ts, MR_OP_LOOP));
	}
	t->armed_at = next;
}

void mr_timers_complete(struct muxring_loop *loop, void *obj, int res)
{
	struct mr_timers *t = &loop->timers;

	(void)res;
	if (obj != &t->ts)
		return; /* an update's or a cancel's own completion */
	/* Fired (-ETIME) or cancelled: nothing is armed any more. Due
	 * deadlines run in the next prepare step, which re-arms. */
	t->armed_at = 0;
}
