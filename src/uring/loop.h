/*
 * loop.h - the loop: one io_uring, its buffers and timers, the sessions and
 * listeners it drives, and the completion entries it owes the application.
 *
 * Private to the library. Every SQE the loop submits carries, as user_data,
 * the address of the object it belongs to with a tag in the low three bits
 * (enum mr_op_tag); objects are allocated (8-byte aligned at least), so
 * those bits are free.
 */
#ifndef MUXRING_LOOP_H
#define MUXRING_LOOP_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <liburing.h>

#include "uring/bufring.h"
#include "uring/copy_cache.h"
#include "uring/cq.h"
#include "muxring.h"
#include "uring/send_arena.h"
#include "uring/timer.h"

struct mr_tracer;

enum mr_op_tag {
	MR_OP_RECV = 0,      /* session: recv (multishot or single) */
	MR_OP_SEND = 1,      /* session: the one sendmsg in flight */
	MR_OP_CONNECT = 2,   /* session: connect */
	MR_OP_LINGER = 3,    /* session: linger timeout once ended */
	MR_OP_SESS_AUX = 4,  /* session: shutdown, cancel, timeout removal */
	MR_OP_ACCEPT = 5,    /* listener: accept (multishot or single) */
	MR_OP_LISTEN_AUX = 6, /* listener: cancel; retry timer */
	MR_OP_LOOP = 7,      /* loop: the deadline timeout and its updates
				(obj: &timers.ts, &timers.upd_ts), cancels
				(obj: the loop), watched fds (obj: a
				struct mr_poll_req) */
};
#define MR_OP_TAG_MASK 7u

static inline uint64_t mr_op_data(const void *obj, enum mr_op_tag tag)
{
	return (uint64_t)(uintptr_t)obj | tag;
}

static inline void *mr_op_obj(uint64_t user_data)
{
	return (void *)(uintptr_t)(user_data & ~(uint64_t)MR_OP_TAG_MASK);
}

static inline enum mr_op_tag mr_op_tag_of(uint64_t user_data)
{
	return (enum mr_op_tag)(user_data & MR_OP_TAG_MASK);
}

/* iovecs per sendmsg: the engine's whole transmit ring fits. */
#define MR_SEND_IOV 256u
/* Bytes asked of the engine per sendmsg. Frames committed for a send wait
 * in front of anything urgent that comes later (a heartbeat, its echo, a
 * WNDINC), so this bounds how far those can fall behind bulk data; 1 MiB
 * still amortises the system call over many frames. */
#define MR_SEND_MAX_BYTES (1u << 20)
/* Batches from this size leave with SENDMSG_ZC when the loop uses it;
 * below it, pinning pages and waiting for the notification cost more than
 * the copy saves. */
#define MR_SEND_ZC_MIN (64u << 10)
/* The receive-buffer group of every loop. */
#define MR_BGID 0

/* Runs of iovecs each at most this long are copied side by side into the
 * slot's bounce buffer (of MR_SEND_BOUNCE bytes) and sent as one: frame
 * headers, control frames and small payloads cost the kernel a separate
 * copy each otherwise, and a send that ends up as a single buffer goes out
 * as IORING_OP_SEND, without the msghdr and iovec import of SENDMSG. */
#define MR_SEND_SMALL 512u
#define MR_SEND_BOUNCE (16u << 10)

/*
 * Send slots come in three sizes (enum mr_slot_class). A send is built in
 * a full slot (MR_SEND_IOV iovecs, MR_SEND_BOUNCE bytes) and moved into the
 * smallest that holds it, so that a loop with many sessions sending at
 * once holds, per send in flight, a quarter or half a kilobyte, not a full
 * slot's 20:
 * - a tiny slot holds one buffer of up to 128 bytes (on 64-bit Linux): a
 *   short request or answer, copied whole, as most are;
 * - a small slot, 8 iovecs and 272 bytes: a few frames, or one whose
 *   payload stays in place.
 */
#define MR_SEND_TINY_IOV 1u
#define MR_SEND_TINY_SLOT 256u
#define MR_SEND_SMALL_IOV 8u
#define MR_SEND_SMALL_SLOT 512u
/* Slots kept for reuse beyond those in flight; the rest are freed. Tiny
 * and small ones are kept by the hundred, for loops whose sessions answer
 * by the hundred in a turn; ten thousand answering at once leave no more
 * than that behind. */
#define MR_SEND_FULL_SPARE 16u
#define MR_SEND_SMALL_SPARE 256u

enum mr_slot_class {
	MR_SLOT_TINY,
	MR_SLOT_SMALL,
	MR_SLOT_FULL,
	MR_SLOT_CLASSES,
};

/* What one in-flight sendmsg needs to stay put until it completes, in one
 * allocation: the struct, then iov_cap iovecs, then bounce_cap bytes.
 * Pooled by the loop, by size: only sessions that are sending hold one. */
struct mr_send_slot {
	struct mr_send_slot *next_free;
	struct msghdr msg;
	struct iovec *iov;
	uint8_t *bounce;
	unsigned iov_cap, bounce_cap;
	size_t iov_used;             /* of iov, in the send in flight */
	/* A send of bytes the engine was told had left when they were copied
	 * into bounce (so its memory was free at once): bounce[owned_off ..
	 * owned_len) is what the kernel has yet to take. */
	size_t owned_off, owned_len;
};

/* Spare send slots of one size, linked through next_free. */
struct mr_slot_stack {
	struct mr_send_slot *top;
	unsigned count;
};

/* An intrusive doubly linked list of sessions (dirty, starved, all). */
struct mr_slist {
	struct muxring_session *head, *tail;
};

struct muxring_loop {
	struct io_uring ring;
	const struct muxring_mem *mem; /* every allocation of the loop */
	unsigned features;           /* MUXRING_FEAT_* in use */
	int enter_fd;                /* ring fd, or its registered index */
	unsigned enter_flags;        /* IORING_ENTER_REGISTERED_RING or 0 */
	/* muxring_loop_opts.linger_ms, as every session's linger timeout
	 * reads it (the kernel reads it when the timeout is submitted, and
	 * it never changes: so one serves them all). */
	struct __kernel_timespec linger_ts;
	uint64_t busy_poll_ns;       /* muxring_loop_opts.busy_poll_us */
	struct mr_bufring *bufring;  /* receive buffers (group MR_BGID) */
	struct mr_send_arena *arena; /* muxring_buf_get() buffers, and small
					copied writes packed */
	struct mr_copy_cache *copies; /* blocks for larger copied writes */
	struct mr_cq cq;             /* entries for the application */
	struct mr_timers timers;
	struct mr_slist sessions;    /* every session not yet freed */
	uint32_t nsessions;          /* how many */
	struct mr_slist dirty;       /* sessions with work for the next step */
	struct mr_slist starved;     /* sessions waiting for receive buffers */
	struct muxring_session *quiet; /* sessions whose quiet send (no CQE on
					  success) is not yet known to be
					  done; linked by quiet_next */
	struct muxring_listener *listeners; /* every listener not yet freed */
	struct mr_slot_stack spare_slots[MR_SLOT_CLASSES]; /* by class */
	/* The ring's registered file table (MUXRING_FEAT_FIXED_FILES): a
	 * stack of its free slots, files_free_count of them. */
	unsigned files_free_count;
	unsigned *files_free;
	uint64_t inflight;           /* SQEs whose last CQE has not come */
	uint64_t now;                /* CLOCK_MONOTONIC ns, read once per turn
					after the enter returns */
	bool destroying;
	/* Fault injection for tests (mr_loop_inject_*); 0 in normal use. */
	uint32_t refuse_sqes;        /* SQE requests still to refuse */
	uint8_t inject_tag;          /* enum mr_op_tag of the completion... */
	int inject_res;              /* ...whose result becomes this, once
					(0: none armed) */
	struct muxring_stats stats;  /* the loop's own counters */
	uint64_t quiet_resends;      /* quiet sends that failed (socket full)
					and went again as ordinary sends */
	struct muxring_stats ended;  /* totals of the sessions already freed */
	struct mr_tracer *tracer;    /* frame tracing, NULL when off */

	/* The memory budget shared by the sessions (mr_sio_account). */
	uint64_t max_buffered;       /* cap on their buffered bytes, 0: none */
	uint64_t buffered;           /* their buffered bytes, as last seen */
	uint64_t buffered_max;       /* high-water mark of buffered */
	bool over_budget;            /* buffered reached the cap; sessions are
					held to an equal share until it falls
					under 3/4 of it */
};

/* Raises the high-water marks of `into` to those of `from`. */
void mr_stats_keep_max(struct muxring_stats *into,
		       const struct muxring_stats *from);

/*
 * An SQE for the next submission, counted in flight (its object must stay
 * until its last CQE). When the submission queue is full, what is queued is
 * submitted first (one extra io_uring_enter). NULL when the ring still has
 * no free SQE (the kernel refused the submission, e.g. with -EBUSY or
 * -ENOMEM): the caller ends what needed it (a session with
 * MR_SQ_REFUSED) or tries again at the next turn.
 */
struct io_uring_sqe *mr_loop_sqe(struct muxring_loop *loop);

/* A session's error when the ring took no submission it needed. */
#define MR_SQ_REFUSED (-EBUSY)

/* Tests: the next n calls of mr_loop_sqe return NULL, as with a ring that
 * takes no submission. */
void mr_loop_inject_sq_refusal(struct muxring_loop *loop, uint32_t n);

/* Tests: the next kernel completion with `tag` reports `res` (a negative
 * errno such as -ENOMEM) instead of its own result. */
void mr_loop_inject_cqe_error(struct muxring_loop *loop, enum mr_op_tag tag,
			      int res);

/* One muxring_poll_fd() in flight. */
struct mr_poll_req {
	uint64_t user_data;
};

/* The session has work for the next step (events to gather, frames to
 * send, a receive to arm, a state to advance). O(1), idempotent. */
void mr_loop_mark_dirty(struct muxring_session *s);

/* List helpers; `off` is each list's link field. */
enum mr_slist_kind { MR_LIST_ALL, MR_LIST_DIRTY, MR_LIST_STARVED };
void mr_slist_push(struct mr_slist *l, struct muxring_session *s,
		   enum mr_slist_kind kind);
void mr_slist_remove(struct mr_slist *l, struct muxring_session *s,
		     enum mr_slist_kind kind);
struct muxring_session *mr_slist_pop(struct mr_slist *l,
				     enum mr_slist_kind kind);

/*
 * A slot of the ring's file table for fd, or -1 when the loop has none
 * (no MUXRING_FEAT_FIXED_FILES, table full, registration refused): the
 * caller then uses fd itself. mr_loop_file_put() empties the slot (before
 * the fd is closed).
 */
int mr_loop_file_get(struct muxring_loop *loop, int fd);
void mr_loop_file_put(struct muxring_loop *loop, int slot);

/* Points an SQE prepared for fd at its file-table slot, when it has one. */
static inline void mr_sqe_use_file(struct io_uring_sqe *sqe, int slot)
{
	if (slot >= 0) {
		sqe->fd = slot;
		sqe->flags |= IOSQE_FIXED_FILE;
	}
}

/* A send slot from the pool (NULL on ENOMEM) and its return. */
/* A full slot (MR_SEND_IOV iovecs, MR_SEND_BOUNCE bytes), or NULL. */
struct mr_send_slot *mr_loop_slot_get(struct muxring_loop *loop);
/* The same send in the smallest slot that holds its n iovecs and the
 * first bounce_used bytes of its bounce buffer (then `full` goes back to
 * the pool); else, or without memory, `full` itself. */
struct mr_send_slot *mr_loop_slot_shrink(struct muxring_loop *loop,
					 struct mr_send_slot *full, size_t n,
					 size_t bounce_used);
void mr_loop_slot_put(struct muxring_loop *loop, struct mr_send_slot *slot);

#endif
