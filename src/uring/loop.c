/*
 * loop.c - the loop: its ring, one turn of it, and the completion queue.
 *
 * A turn is: run due deadlines; step every dirty session (gather engine
 * events into entries, start sends, arm receives, advance transports);
 * publish recycled receive buffers; then one io_uring_enter that submits
 * everything and, if the application asked to wait, waits; then reap the
 * kernel's completions (which feed the engines and dirty their sessions)
 * and step again. muxring_submit_and_wait repeats turns until enough
 * entries are ready or its timeout passes.
 *
 * The enter is made here rather than through liburing's submit helpers so
 * that each turn is exactly one system call, always with GETEVENTS (needed
 * with DEFER_TASKRUN, where completions are only run by the submitter). A
 * wait's timeout is the loop's ring timeout (timer.h), kept armed across
 * calls, not an EXT_ARG timer set up and torn down in every enter.
 */
#include "uring/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "uring/listener.h"
#include "uring/session_io.h"
#include "uring/trace.h"
#include "uring/uring_probe.h"

#define DEFAULT_SQ_ENTRIES 256u
#define DEFAULT_RECV_BUFFERS 256u
#define DEFAULT_RECV_BUFFER_SIZE (32u << 10)
#define DEFAULT_SEND_ARENA (4u << 20)
#define DEFAULT_SEND_BUFFER (64u << 10)
#define DEFAULT_CQ_ENTRIES 1024u
#define DEFAULT_LINGER_MS 1000u
#define MAX_BUSY_POLL_US 1000000u
#define COPY_CACHE_BYTES (16u << 20) /* recycled copy blocks kept, at most */
#define DEFAULT_MAX_BUFFERED ((size_t)512 << 20)
#define REAP_BATCH 64u

static _Thread_local char create_error[384];

const char *muxring_loop_create_error(void)
{
	return create_error;
}

uint64_t muxring_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- lists -------------------------------------------------------------- */

void mr_slist_push(struct mr_slist *l, struct muxring_session *s,
		   enum mr_slist_kind k)
{
	s->next[k] = NULL;
	s->prev[k] = l->tail;
	if (l->tail)
		l->tail->next[k] = s;
	else
		l->head = s;
	l->tail = s;
	s->on_lists |= (uint8_t)(1u << k);
}

void mr_slist_remove(struct mr_slist *l, struct muxring_session *s,
		     enum mr_slist_kind k)
{
	if (s->prev[k])
		s->prev[k]->next[k] = s->next[k];
	else
		l->head = s->next[k];
	if (s->next[k])
		s->next[k]->prev[k] = s->prev[k];
	else
		l->tail = s->prev[k];
	s->prev[k] = s->next[k] = NULL;
	s->on_lists &= (uint8_t)~(1u << k);
}

struct muxring_session *mr_slist_pop(struct mr_slist *l,
				     enum mr_slist_kind k)
{
	struct muxring_session *s = l->head;

	if (s)
		mr_slist_remove(l, s, k);
	return s;
}

void mr_loop_mark_dirty(struct muxring_session *s)
{
	if (s->state == MR_SIO_CLOSED || s->on_lists & (1u << MR_LIST_DIRTY))
		return;
	mr_slist_push(&s->loop->dirty, s, MR_LIST_DIRTY);
}

void mr_stats_keep_max(struct muxring_stats *into,
		       const struct muxring_stats *from)
{
	if (from->recv_view_bytes_max > into->recv_view_bytes_max)
		into->recv_view_bytes_max = from->recv_view_bytes_max;
	if (from->recv_copy_bytes_max > into->recv_copy_bytes_max)
		into->recv_copy_bytes_max = from->recv_copy_bytes_max;
	if (from->events_queued_max > into->events_queued_max)
		into->events_queued_max = from->events_queued_max;
}

/* ---- send slots ---------------------------------------------------------- */

/* Each class's iovecs, whole size, and spares kept (a class is known by
 * its iovec count). */
static const struct {
	unsigned iov_cap;
	size_t size;
	unsigned spare;
} slot_classes[MR_SLOT_CLASSES] = {
	[MR_SLOT_TINY] = {MR_SEND_TINY_IOV, MR_SEND_TINY_SLOT,
			  MR_SEND_SMALL_SPARE},
	[MR_SLOT_SMALL] = {MR_SEND_SMALL_IOV, MR_SEND_SMALL_SLOT,
			   MR_SEND_SMALL_SPARE},
	[MR_SLOT_FULL] = {MR_SEND_IOV,
			  sizeof(struct mr_send_slot) +
				  MR_SEND_IOV * sizeof(struct iovec) +
				  MR_SEND_BOUNCE,
			  MR_SEND_FULL_SPARE},
};

static size_t class_bounce_cap(enum mr_slot_class cls)
{
	return slot_classes[cls].size - sizeof(struct mr_send_slot) -
	       slot_classes[cls].iov_cap * sizeof(struct iovec);
}

static enum mr_slot_class slot_class(const struct mr_send_slot *slot)
{
	enum mr_slot_class cls = MR_SLOT_TINY;

	while (slot_classes[cls].iov_cap != slot->iov_cap)
		cls++;
	return cls;
}

static struct mr_send_slot *slot_new(struct muxring_loop *loop,
				      enum mr_slot_class cls)
{
	struct mr_send_slot *slot = mr_malloc(loop->mem,
					      slot_classes[cls].size);

	if (!slot)
		return NULL;
	slot->iov = (struct iovec *)(slot + 1);
	slot->iov_cap = slot_classes[cls].iov_cap;
	slot->bounce = (uint8_t *)(slot->iov + slot->iov_cap);
	slot->bounce_cap = (unsigned)class_bounce_cap(cls);
	return slot;
}

static struct mr_send_slot *stack_pop(struct mr_slot_stack *stack)
{
	struct mr_send_slot *slot = stack->top;

	if (slot) {
		stack->top = slot->next_free;
		stack->count--;
	}
	return slot;
}

static void stack_free(struct muxring_loop *loop, struct mr_slot_stack *stack)
{
	struct mr_send_slot *slot;

	while ((slot = stack_pop(stack)))
		mr_free(loop->mem, slot);
}

static struct mr_send_slot *slot_take(struct muxring_loop *loop,
				       enum mr_slot_class cls)
{
	struct mr_send_slot *slot = stack_pop(&loop->spare_slots[cls]);

	return slot ? slot : slot_new(loop, cls);
}

struct mr_send_slot *mr_loop_slot_get(struct muxring_loop *loop)
{
	return slot_take(loop, MR_SLOT_FULL);
}

struct mr_send_slot *mr_loop_slot_shrink(struct muxring_loop *loop,
					 struct mr_send_slot *full, size_t n,
					 size_t bounce_used)
{
	enum mr_slot_class cls = MR_SLOT_TINY;
	struct mr_send_slot *small;

	while (cls < MR_SLOT_FULL && (n > slot_classes[cls].iov_cap ||
				      bounce_used > class_bounce_cap(cls)))
		cls++;
	if (cls == MR_SLOT_FULL || !(small = slot_take(loop, cls)))
		return full;
	memcpy(small->bounce, full->bounce, bounce_used);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = full->iov[i].iov_base;

		small->iov[i] = full->iov[i];
		/* Runs copied into the bounce buffer move with it. */
		if (p >= full->bounce && p < full->bounce + full->bounce_cap)
			small->iov[i].iov_base = small->bounce +
						 (p - full->bounce);
	}
	mr_loop_slot_put(loop, full);
	return small;
}

void mr_loop_slot_put(struct muxring_loop *loop, struct mr_send_slot *slot)
{
	enum mr_slot_class cls = slot_class(slot);
	struct mr_slot_stack *stack = &loop->spare_slots[cls];

	if (stack->count >= slot_classes[cls].spare) {
		mr_free(loop->mem, slot);
		return;
	}
	slot->next_free = stack->top;
	stack->top = slot;
	stack->count++;
}

/* ---- the file table ---------------------------------------------------------- */

/* Slots in the ring's file table, at most: an empty slot costs the kernel
 * a pointer (so 128 KiB here), and sessions beyond it simply use their
 * fd. */
#define FILES_MAX 16384u

/* Registers an empty table as large as the descriptor limit allows (the
 * kernel refuses a larger one), at most FILES_MAX slots. */
static void files_setup(struct muxring_loop *loop, unsigned disable)
{
	struct rlimit rl;
	unsigned n, i;

	if (disable & MUXRING_FEAT_FIXED_FILES ||
	    getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	n = rl.rlim_cur < FILES_MAX ? (unsigned)rl.rlim_cur : FILES_MAX;
	loop->files_free = mr_malloc(loop->mem, n * sizeof(*loop->files_free));
	if (!loop->files_free)
		return;
	if (!n || io_uring_register_files_sparse(&loop->ring, n) < 0) {
		mr_free(loop->mem, loop->files_free);
		loop->files_free = NULL;
		return;
	}
	for (i = 0; i < n; i++)
		loop->files_free[i] = n - 1 - i;
	loop->files_free_count = n;
	loop->features |= MUXRING_FEAT_FIXED_FILES;
}

int mr_loop_file_get(struct muxring_loop *loop, int fd)
{
	unsigned slot;

	if (!loop->files_free_count || fd < 0)
		return -1;
	slot = loop->files_free[loop->files_free_count - 1];
	if (io_uring_register_files_update(&loop->ring, slot, &fd, 1) != 1)
		return -1;
	loop->files_free_count--;
	return (int)slot;
}

void mr_loop_file_put(struct muxring_loop *loop, int slot)
{
	int none = -1;

	if (slot < 0)
		return;
	/* Operations still holding the file keep their own reference. */
	(void)io_uring_register_files_update(&loop->ring, (unsigned)slot,
					     &none, 1);
	loop->files_free[loop->files_free_count++] = (unsigned)slot;
}

/* ---- the ring ------------------------------------------------------------ */

/*
 * With SQPOLL the kernel's thread takes the SQEs: a system call is needed
 * only to wait, to wake the thread once it went idle, or to wait for room
 * in a full queue. Returns the enter's flags, or 0 when no call is needed.
 */
static unsigned sqpoll_enter_flags(struct muxring_loop *loop, unsigned wait_nr,
				   unsigned submit)
{
	struct io_uring_sq *sq = &loop->ring.sq;
	unsigned flags = 0;

	/* The tail store must be seen before the thread's flag is read. */
	io_uring_smp_mb();
	if (submit && IO_URING_READ_ONCE(*sq->kflags) & IORING_SQ_NEED_WAKEUP)
		flags |= IORING_ENTER_SQ_WAKEUP;
	if (submit >= *sq->kring_entries)
		flags |= IORING_ENTER_SQ_WAIT;
	if (wait_nr)
		flags |= IORING_ENTER_GETEVENTS;
	return flags ? flags | loop->enter_flags : 0;
}

/*
 * Publishes the queued SQEs and makes one io_uring_enter that submits them,
 * runs completions (GETEVENTS) and waits for wait_nr of them, at most *ts
 * (relative) when ts is given (with SQPOLL, no call when there is nothing
 * to wait for or wake). Returns what io_uring_enter returns, or 0.
 */
static int loop_enter(struct muxring_loop *loop, unsigned wait_nr,
		      const struct __kernel_timespec *ts)
{
	struct io_uring_sq *sq = &loop->ring.sq;
	unsigned flags = IORING_ENTER_GETEVENTS | loop->enter_flags;
	unsigned tail = sq->sqe_tail, submit;
	struct io_uring_getevents_arg arg;
	int ret;

	if (sq->sqe_head != tail) {
		sq->sqe_head = tail;
		/* The SQE contents must be visible before the new tail. */
		io_uring_smp_store_release(sq->ktail, tail);
	}
	submit = tail - IO_URING_READ_ONCE(*sq->khead);
	if (loop->features & MUXRING_FEAT_SQPOLL) {
		flags = sqpoll_enter_flags(loop, wait_nr || ts, submit);
		if (!flags) {
			loop->now = muxring_now_ns();
			return 0;
		}
	}
	if (ts) {
		memset(&arg, 0, sizeof(arg));
		arg.sigmask_sz = _NSIG / 8;
		arg.ts = (uint64_t)(uintptr_t)ts;
		ret = io_uring_enter2((unsigned)loop->enter_fd, submit, wait_nr,
				      flags | IORING_ENTER_EXT_ARG,
				      (sigset_t *)&arg, sizeof(arg));
	} else {
		ret = io_uring_enter2((unsigned)loop->enter_fd, submit, wait_nr,
				      flags, NULL, _NSIG / 8);
	}
	loop->stats.enters++;
	loop->now = muxring_now_ns();
	return ret;
}

/* Whether a quiet send's failure waits in the completion queue, not yet
 * reaped (a quiet send posts a completion only when it fails). Reading
 * the session of a waiting send completion is safe: a session is freed
 * only once nothing of it is in flight. */
static bool quiet_failure_waiting(struct muxring_loop *loop)
{
	struct io_uring_cq *cq = &loop->ring.cq;
	unsigned head = *cq->khead;
	unsigned tail = io_uring_smp_load_acquire(cq->ktail);

	for (; head != tail; head++) {
		uint64_t data = cq->cqes[head & cq->ring_mask].user_data;
		const struct muxring_session *s = mr_op_obj(data);

		if (mr_op_tag_of(data) == MR_OP_SEND &&
		    s->flags & MR_SIO_SEND_QUIET)
			return true;
	}
	return false;
}

struct io_uring_sqe *mr_loop_sqe(struct muxring_loop *loop)
{
	struct io_uring_sqe *sqe;

	if (loop->refuse_sqes) {
		loop->refuse_sqes--;
		loop->stats.sq_refused++;
		return NULL;
	}
	sqe = io_uring_get_sqe(&loop->ring);
	if (!sqe) {
		/* A full submission queue: submit what is queued (one extra
		 * enter; the completions are reaped by the turn as usual).
		 * The quiet sends it took are done unless one's failure waits
		 * unreaped: then their slots serve the sends still to come in
		 * this turn, and ten thousand sessions answering at once hold
		 * a queue's worth of slots, not ten thousand. */
		loop_enter(loop, 0, NULL);
		if (loop->quiet && !quiet_failure_waiting(loop))
			mr_sio_quiet_confirm(loop);
		sqe = io_uring_get_sqe(&loop->ring);
	}
	if (!sqe) {
		loop->stats.sq_refused++;
		return NULL;
	}
	loop->inflight++;
	return sqe;
}

void mr_loop_inject_sq_refusal(struct muxring_loop *loop, uint32_t n)
{
	loop->refuse_sqes = n;
}

void mr_loop_inject_cqe_error(struct muxring_loop *loop, enum mr_op_tag tag,
			      int res)
{
	loop->inject_tag = (uint8_t)tag;
	loop->inject_res = res;
}

/* ---- watched descriptors ------------------------------------------------ */

int muxring_poll_fd(struct muxring_loop *loop, int fd, unsigned poll_mask,
		    uint64_t user_data)
{
	struct io_uring_sqe *sqe;
	struct mr_poll_req *req;

	if (!loop || fd < 0 || !poll_mask || loop->destroying)
		return -EINVAL;
	req = mr_malloc(loop->mem, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->user_data = user_data;
	sqe = mr_loop_sqe(loop);
	if (!sqe) {
		mr_free(loop->mem, req);
		return MR_SQ_REFUSED;
	}
	io_uring_prep_poll_add(sqe, fd, poll_mask);
	io_uring_sqe_set_data64(sqe, mr_op_data(req, MR_OP_LOOP));
	return 0;
}

static void poll_complete(struct muxring_loop *loop, struct mr_poll_req *req,
			  int res)
{
	struct muxring_cqe *cqe;

	if (!loop->destroying && (cqe = mr_cq_push(&loop->cq))) {
		cqe->type = MUXRING_CQE_POLL;
		cqe->res = res;
		cqe->user_data = req->user_data;
	}
	mr_free(loop->mem, req);
}

/* One kernel completion, to the object its user_data names. */
static void dispatch(struct muxring_loop *loop, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	enum mr_op_tag tag = mr_op_tag_of(ud);
	void *obj = mr_op_obj(ud);
	struct io_uring_cqe injected;

	if (loop->inject_res && tag == loop->inject_tag) {
		injected = *cqe;
		injected.res = loop->inject_res;
		loop->inject_res = 0;
		cqe = &injected;
	}

	if (!(cqe->flags & IORING_CQE_F_MORE))
		loop->inflight--;
	switch (tag) {
	case MR_OP_RECV:
	case MR_OP_SEND:
	case MR_OP_CONNECT:
	case MR_OP_LINGER:
	case MR_OP_SESS_AUX:
		mr_sio_complete(obj, tag, cqe);
		break;
	case MR_OP_ACCEPT:
	case MR_OP_LISTEN_AUX:
		mr_listener_complete(obj, tag, cqe);
		break;
	case MR_OP_LOOP:
		if (obj == &loop->timers.ts || obj == &loop->timers.upd_ts ||
		    obj == loop)
			mr_timers_complete(loop, obj, cqe->res);
		else
			poll_complete(loop, obj, cqe->res);
		break;
	}
}

/* Reaps every completion the kernel has posted. Returns how many. */
static unsigned loop_reap(struct muxring_loop *loop)
{
	struct io_uring_cq *cq = &loop->ring.cq;
	unsigned total = 0;

	/* In place, in batches: the kernel may not reuse a slot before the
	 * head moves past it, and a dispatch may submit (and so reap). */
	for (;;) {
		unsigned head = *cq->khead;
		unsigned n = io_uring_smp_load_acquire(cq->ktail) - head, i;

		if (!n)
			return total;
		if (n > REAP_BATCH)
			n = REAP_BATCH;
		/* The one test tracing costs when off: per batch, not per
		 * frame. */
		if (loop->tracer)
			mr_trace_cqes(loop, head, n);
		for (i = 0; i < n; i++)
			dispatch(loop, &cq->cqes[(head + i) & cq->ring_mask]);
		io_uring_cq_advance(&loop->ring, n);
		total += n;
	}
}

/* Reaps, then learns which quiet sends are done: a failure of one would
 * have been among the completions just reaped. */
static unsigned loop_reap_all(struct muxring_loop *loop)
{
	unsigned n = loop_reap(loop);

	mr_sio_quiet_confirm(loop);
	return n;
}

/* Steps every session that was dirty when called (sessions dirtied by the
 * step itself wait for the next one, so a session that cannot make progress
 * cannot spin here). */
static void step_dirty(struct muxring_loop *loop)
{
	struct mr_slist work = loop->dirty;
	struct muxring_session *s;

	loop->dirty.head = loop->dirty.tail = NULL;
	while ((s = work.head)) {
		/* Move s off the snapshot; a session marked again during a
		 * step goes on the (new) dirty list. */
		work.head = s->next[MR_LIST_DIRTY];
		if (work.head)
			work.head->prev[MR_LIST_DIRTY] = NULL;
		s->next[MR_LIST_DIRTY] = s->prev[MR_LIST_DIRTY] = NULL;
		s->on_lists &= (uint8_t)~(1u << MR_LIST_DIRTY);
		mr_sio_step(s);
	}
}

/* Receive buffers came back: sessions that waited for them may re-arm. */
static void wake_starved(struct muxring_loop *loop)
{
	struct muxring_session *s;

	while ((s = mr_slist_pop(&loop->starved, MR_LIST_STARVED)))
		mr_loop_mark_dirty(s);
}

/* Every turn: a listener re-arms what the ring refused, and a closing one
 * posts its entry once idle. */
static void step_listeners(struct muxring_loop *loop)
{
	struct muxring_listener *l;

	for (l = loop->listeners; l; l = l->next)
		mr_listener_step(l);
}

/* Everything before an enter: deadlines, sessions, timers, buffers. */
static void loop_prepare(struct muxring_loop *loop)
{
	uint64_t next = mr_timers_next(&loop->timers);

	if (next && next <= (loop->now = muxring_now_ns()))
		mr_timers_run(loop, loop->now);
	if (mr_bufring_flush(loop->bufring) && loop->starved.head)
		wake_starved(loop);
	step_dirty(loop);
	step_listeners(loop);
	mr_timers_arm(loop);
	mr_bufring_flush(loop->bufring);
}

/* After reaping: turn what came in into entries at once, so the count of
 * ready entries is right. SQEs this prepares go out with the next enter. */
static void loop_gather(struct muxring_loop *loop)
{
	uint64_t next = mr_timers_next(&loop->timers);

	if (next && next <= loop->now)
		mr_timers_run(loop, loop->now);
	if (mr_bufring_flush(loop->bufring) && loop->starved.head)
		wake_starved(loop);
	step_dirty(loop);
	step_listeners(loop);
}

/*
 * The timeout of a wait when the ring's timeout is not armed for the
 * earliest of `deadline` (0: none) and the timers' next key, as happens
 * when the ring refused the timeout's SQE: then the enter itself is
 * bounded (EXT_ARG). NULL when the ring's timeout covers it.
 */
static const struct __kernel_timespec *
unarmed_wait(const struct muxring_loop *loop, uint64_t deadline,
	     struct __kernel_timespec *ts)
{
	uint64_t next = mr_timers_next(&loop->timers), now;

	if (deadline && (!next || deadline < next))
		next = deadline;
	if (!next || (loop->timers.armed_at && loop->timers.armed_at <= next))
		return NULL;
	now = muxring_now_ns();
	next = next > now ? next - now : 0;
	ts->tv_sec = (long long)(next / 1000000000u);
	ts->tv_nsec = (long long)(next % 1000000000u);
	return ts;
}

/*
 * Before a blocking enter: enters that submit what is queued and run
 * completions without waiting, until one shows up, the busy-poll budget
 * is spent or `deadline` (0: none) passes. Returns whether one showed up;
 * then everything queued was submitted and no further enter is needed.
 * With SQPOLL an enter that neither waits nor wakes is no system call, so
 * this polls the completion ring from user space alone.
 */
static bool busy_poll(struct muxring_loop *loop, uint64_t deadline)
{
	uint64_t until = muxring_now_ns() + loop->busy_poll_ns;

	if (deadline && deadline < until)
		until = deadline;
	for (;;) {
		bool submits = io_uring_sq_ready(&loop->ring) != 0;

		if (!submits && io_uring_cq_ready(&loop->ring))
			return true;
		if (loop->now >= until)
			return false;
		loop_enter(loop, 0, NULL);
		if (!submits) {
			loop->stats.enters--;
			loop->stats.busy_polls++;
		}
	}
}

int muxring_submit_and_wait(struct muxring_loop *loop, unsigned min_entries,
			    int64_t timeout_ns)
{
	struct __kernel_timespec wait_ts;
	uint64_t deadline = 0;
	bool wait, polled, block;
	int ret;

	if (!loop)
		return -EINVAL;
	if (timeout_ns > 0)
		deadline = muxring_now_ns() + (uint64_t)timeout_ns;
	for (;;) {
		loop_prepare(loop);
		wait = min_entries > mr_cq_ready(&loop->cq) && timeout_ns != 0;
		if (wait && timeout_ns > 0) {
			if (muxring_now_ns() >= deadline)
				break;
			/* The ring timeout fires at the deadline or before. */
			loop->timers.wait_at = deadline;
			mr_timers_arm(loop);
		}
		polled = wait && loop->busy_poll_ns && busy_poll(loop, deadline);
		block = wait && !polled;
		ret = polled ? 0
			     : loop_enter(loop, block ? 1 : 0,
					  block ? unarmed_wait(loop, deadline,
							       &wait_ts)
						: NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR &&
		    ret != -EBUSY && ret != -EAGAIN) {
			loop->timers.wait_at = 0;
			return ret;
		}
		if (!loop_reap_all(loop) && block && ret != -ETIME) {
			/* Woken with no completion: a signal (whose -EINTR
			 * is hidden when the same enter also submitted). Let
			 * the caller see it. */
			loop->timers.wait_at = 0;
			loop_gather(loop);
			return mr_cq_ready(&loop->cq)
				       ? (int)mr_cq_ready(&loop->cq)
				       : -EINTR;
		}
		loop_gather(loop);
		if (!wait || min_entries <= mr_cq_ready(&loop->cq))
			break;
		if (timeout_ns > 0 && muxring_now_ns() >= deadline)
			break;
	}
	loop->timers.wait_at = 0;
	return (int)mr_cq_ready(&loop->cq);
}

int muxring_submit(struct muxring_loop *loop)
{
	return muxring_submit_and_wait(loop, 0, 0);
}

/* ---- the completion queue ------------------------------------------------ */

unsigned muxring_cq_ready(const struct muxring_loop *loop)
{
	return loop ? mr_cq_ready(&loop->cq) : 0;
}

unsigned muxring_peek_batch_cqe(struct muxring_loop *loop,
				struct muxring_cqe **cqes, unsigned count)
{
	unsigned n = mr_cq_ready(&loop->cq), i;

	if (n > count)
		n = count;
	for (i = 0; i < n; i++)
		cqes[i] = mr_cq_at(&loop->cq, i);
	return n;
}

int muxring_peek_cqe(struct muxring_loop *loop, struct muxring_cqe **cqe)
{
	return muxring_peek_batch_cqe(loop, cqe, 1) ? 0 : -EAGAIN;
}

int muxring_wait_cqe(struct muxring_loop *loop, struct muxring_cqe **cqe,
		     int64_t timeout_ns)
{
	int ret = muxring_submit_and_wait(loop, 1, timeout_ns);

	if (ret < 0)
		return ret;
	return muxring_peek_cqe(loop, cqe) ? -ETIME : 0;
}

/* What advancing past an entry ends or gives back. */
static void entry_done(struct muxring_cqe *cqe)
{
	switch (cqe->type) {
	case MUXRING_CQE_STREAM_ACCEPTED:
	case MUXRING_CQE_STREAM_CLOSED:
		muxring_engine_cqe_done(cqe->session->engine, cqe);
		break;
	case MUXRING_CQE_SESSION_ENDED:
		mr_sio_free(cqe->session);
		break;
	case MUXRING_CQE_LISTENER_CLOSED:
		mr_listener_free(cqe->listener);
		break;
	default:
		break;
	}
}

void muxring_cq_advance(struct muxring_loop *loop, unsigned nr)
{
	struct mr_cq *cq = &loop->cq;

	if (nr > mr_cq_ready(cq))
		nr = mr_cq_ready(cq);
	while (nr--) {
		/* Take it off first: entry_done may free what it names. */
		struct muxring_cqe *cqe = mr_cq_at(cq, 0);

		cq->head++;
		entry_done(cqe);
	}
}

void muxring_cqe_seen(struct muxring_loop *loop, struct muxring_cqe *cqe)
{
	(void)cqe;
	muxring_cq_advance(loop, 1);
}

void muxring_view_release(struct muxring_view *view)
{
	struct muxring_session *s = NULL;

	/* Found before the release, which may free the stream. */
	if (view && view->priv_[0])
		s = mr_sio_of_stream(view->priv_[0]);
	muxring_engine_view_release(view);
	/* The session may now owe the peer a WNDINC. */
	if (s) {
		mr_sio_account(s);
		mr_loop_mark_dirty(s);
	}
}

/* ---- create and destroy ------------------------------------------------- */

static unsigned env_disable(void)
{
	const char *v = getenv("MUXRING_DISABLE_FEATURES");

	return v ? (unsigned)strtoul(v, NULL, 0) : 0;
}

static unsigned round_pow2(unsigned v)
{
	unsigned p = 1;

	while (p < v && p < (1u << 31))
		p <<= 1;
	return p;
}

static int fill_opts(const struct muxring_loop_opts *in,
		     struct muxring_loop_opts *o)
{
	if (in)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
	if (!o->sq_entries)
		o->sq_entries = DEFAULT_SQ_ENTRIES;
	if (!o->recv_buffers)
		o->recv_buffers = DEFAULT_RECV_BUFFERS;
	if (!o->recv_buffer_size)
		o->recv_buffer_size = DEFAULT_RECV_BUFFER_SIZE;
	if (!o->send_arena_size)
		o->send_arena_size = DEFAULT_SEND_ARENA;
	if (!o->send_buffer_size)
		o->send_buffer_size = DEFAULT_SEND_BUFFER;
	if (!o->cq_entries)
		o->cq_entries = DEFAULT_CQ_ENTRIES;
	if (!o->linger_ms)
		o->linger_ms = DEFAULT_LINGER_MS;
	if (!o->max_buffered)
		o->max_buffered = DEFAULT_MAX_BUFFERED;
	if (o->recv_buffers > 32768 || o->sq_entries > 32768 ||
	    o->busy_poll_us > MAX_BUSY_POLL_US)
		return -EINVAL;
	/* At least two buffers and a low water of at least one: then views
	 * can never pin every buffer, and one always cycles. */
	o->recv_buffers = round_pow2(o->recv_buffers < 2 ? 2 : o->recv_buffers);
	if (!o->recv_low_water)
		o->recv_low_water = o->recv_buffers / 4 ? o->recv_buffers / 4 : 1;
	if (o->recv_low_water >= o->recv_buffers)
		return -EINVAL;
	if (o->send_arena_size < o->send_buffer_size)
		return -EINVAL;
	return 0;
}

static void loop_free(struct muxring_loop *loop)
{
	mr_bufring_detach(loop->bufring);
	mr_send_arena_detach(loop->arena);
	mr_cq_free(&loop->cq);
	mr_timers_free(&loop->timers);
	mr_tracer_free(loop->tracer);
	for (enum mr_slot_class cls = 0; cls < MR_SLOT_CLASSES; cls++)
		stack_free(loop, &loop->spare_slots[cls]);
	mr_free(loop->mem, loop->files_free);
	mr_free(loop->mem, loop);
}

int muxring_loop_create(struct muxring_loop **loopp,
			const struct muxring_loop_opts *opts)
{
	const struct muxring_mem *mem;
	struct muxring_loop_opts o;
	struct muxring_loop *loop;
	int err;

	create_error[0] = '\0';
	if (!loopp) {
		snprintf(create_error, sizeof(create_error),
			 "muxring_loop_create: NULL loop pointer");
		return -EINVAL;
	}
	err = fill_opts(opts, &o);
	if (err) {
		mr_uring_explain(err, "muxring_loop_create", create_error,
				 sizeof(create_error));
		return err;
	}
	mem = o.mem ? o.mem : &mr_mem_libc;
	loop = mr_calloc(mem, 1, sizeof(*loop));
	if (!loop) {
		mr_uring_explain(-ENOMEM, "muxring_loop_create", create_error,
				 sizeof(create_error));
		return -ENOMEM;
	}
	loop->mem = mem;
	loop->linger_ts.tv_sec = o.linger_ms / 1000;
	loop->linger_ts.tv_nsec = (long long)(o.linger_ms % 1000) * 1000000;
	loop->busy_poll_ns = (uint64_t)o.busy_poll_us * 1000u;
	loop->max_buffered = o.max_buffered == SIZE_MAX ? 0 : o.max_buffered;
	mr_timers_init(&loop->timers, mem);
	err = mr_tracer_create(&o, mem, &loop->tracer, create_error,
			       sizeof(create_error));
	if (err) {
		mr_free(mem, loop);
		return err;
	}
	err = mr_uring_setup(&loop->ring, o.sq_entries, o.disable | env_disable(),
			     o.flags & MUXRING_LOOP_SQPOLL, &loop->features,
			     create_error,
			     sizeof(create_error));
	if (err) {
		mr_tracer_free(loop->tracer);
		mr_free(mem, loop);
		return err;
	}
	loop->enter_fd = loop->ring.ring_fd;
	if (io_uring_register_ring_fd(&loop->ring) == 1) {
		loop->enter_fd = loop->ring.enter_ring_fd;
		loop->enter_flags = IORING_ENTER_REGISTERED_RING;
	}
	files_setup(loop, o.disable | env_disable());
	err = mr_bufring_create(&loop->ring, mem, MR_BGID, o.recv_buffers,
				o.recv_buffer_size, o.recv_low_water,
				&loop->bufring);
	if (err == -EINVAL)
		err = -EOPNOTSUPP; /* options were checked: the kernel is old */
	if (!err)
		err = mr_send_arena_create(&loop->ring, mem, o.send_arena_size,
					   o.send_buffer_size, &loop->arena);
	if (!err)
		err = mr_cq_init(&loop->cq, mem, o.cq_entries);
	if (!err && !(loop->copies = mr_copy_cache_new(mem, COPY_CACHE_BYTES)))
		err = -ENOMEM;
	if (err) {
		mr_uring_explain(err, err == -ENOMEM ? "allocating the loop"
						     : "registering the receive buffer ring",
				 create_error, sizeof(create_error));
		mr_bufring_detach(loop->bufring);
		mr_send_arena_detach(loop->arena);
		mr_copy_cache_detach(loop->copies);
		loop->bufring = NULL;
		loop->arena = NULL;
		loop->copies = NULL;
		io_uring_queue_exit(&loop->ring);
		loop_free(loop);
		return err;
	}
	if (loop->arena->registered)
		loop->features |= MUXRING_FEAT_SEND_ARENA_REG;
	if (loop->features & MUXRING_FEAT_SQPOLL)
		loop->features &= ~MUXRING_FEAT_SEND_QUIET;
	if (!(o.flags & MUXRING_LOOP_SEND_ZC))
		loop->features &= ~MUXRING_FEAT_SEND_ZC;
	*loopp = loop;
	return 0;
}

/* Cancels everything in flight and reaps until it has all come back (or a
 * second has passed), so that no operation still points into memory about
 * to be freed. */
static void cancel_all(struct muxring_loop *loop)
{
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 50000000};
	struct io_uring_sqe *sqe;
	uint64_t until = muxring_now_ns() + 1000000000u;

	loop->destroying = true;
	loop->refuse_sqes = 0;
	if (!loop->inflight)
		return;
	/* Without an SQE for the cancel, what is in flight can only be
	 * waited for (until the second is over). */
	sqe = mr_loop_sqe(loop);
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data64(sqe, mr_op_data(loop, MR_OP_LOOP));
	}
	while (loop->inflight && muxring_now_ns() < until) {
		loop_enter(loop, 1, &ts);
		loop_reap_all(loop);
	}
}

void muxring_loop_destroy(struct muxring_loop *loop)
{
	struct muxring_session *s;

	if (!loop)
		return;
	cancel_all(loop);
	/* Entries not advanced past: give back what they hold (sessions and
	 * listeners are freed below, whatever their entries). */
	while (mr_cq_ready(&loop->cq)) {
		struct muxring_cqe *cqe = mr_cq_at(&loop->cq, 0);

		loop->cq.head++;
		if (cqe->type == MUXRING_CQE_DATA)
			muxring_view_release(&cqe->view);
		else if (cqe->type == MUXRING_CQE_STREAM_CLOSED)
			entry_done(cqe);
	}
	while ((s = loop->sessions.head))
		mr_sio_free(s);
	while (loop->listeners)
		mr_listener_free(loop->listeners);
	/* Buffers still held by the application's views keep their memory
	 * until released; the ring forgets them now. */
	mr_bufring_detach(loop->bufring);
	mr_send_arena_detach(loop->arena);
	mr_copy_cache_detach(loop->copies);
	loop->bufring = NULL;
	loop->arena = NULL;
	loop->copies = NULL;
	io_uring_queue_exit(&loop->ring);
	loop_free(loop);
}

unsigned muxring_loop_features(const struct muxring_loop *loop)
{
	return loop ? loop->features : 0;
}
