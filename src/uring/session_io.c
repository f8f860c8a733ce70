/*
 * session_io.c - one session's transport on the ring, and its entries.
 *
 * The main idea: the engine decides everything about the protocol; this
 * file only moves bytes and time through it and keeps the socket's
 * operations few. There is at most one receive (multishot where the kernel
 * has it) and at most one sendmsg in flight per session; the sendmsg takes
 * every frame the engine has ready, for every stream, as one iovec array.
 * All work is done in mr_sio_step(), which the loop calls for "dirty"
 * sessions right before each io_uring_enter, so that everything a turn
 * produced leaves in that one enter.
 *
 * Bytes are never lost or reordered: one receive at a time is armed, a new
 * one only after the previous one's last completion (no IORING_CQE_F_MORE),
 * and completions of one receive arrive in order.
 *
 * A request/response exchange costs one io_uring_enter per message: a
 * send small enough to be copied whole into the slot's bounce buffer is
 * "owned" (the engine hears at once that it left, so its memory is free),
 * and when nothing waits behind it and the session is not ending (whose
 * drain waits for the last send), it is "quiet": submitted with
 * IOSQE_CQE_SKIP_SUCCESS and MSG_DONTWAIT, so it is issued inside the
 * enter that submits it, posts nothing when it sends everything, and that
 * enter sleeps until the answer instead of waking for the send. Its end is
 * learnt from the ring: once the kernel's SQ head is past it and no failure
 * was reaped, it is done (mr_sio_quiet_confirm). A failure (the socket was
 * full: -EAGAIN, or a partial count with MSG_WAITALL) does post, and the
 * rest goes out again from the bounce buffer as an ordinary send.
 *
 * The engine is driven through its public calls (include/muxring_engine.h),
 * as any other transport would drive it: feed, send_iov/sent, poll (straight
 * into the completion queue's slots), expire. Two things stay internal, on
 * purpose: the session's user pointer, which links an engine stream back to
 * this session for the loop's stream calls (mr_sio_of_stream), and the
 * ring's and arena's buffers, which are preallocated struct mr_buf headers
 * that return to their ring on release: the public
 * muxring_engine_buf_wrap() would allocate a wrapper for every receive.
 */
#include "uring/session_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire/frame.h"
#include "uring/filter_io.h"
#include "uring/kernel_wrote.h"
#include "uring/listener.h"
#include "uring/net.h"
#include "uring/trace.h"
#include "uring/uring_probe.h"

/* Every callback the loop calls without checking is there. */
static bool filter_valid(const struct muxring_filter *f)
{
	const struct muxring_filter_ops *o = f->ops;

	return o && o->open && o->feed && o->read && o->write && o->pending &&
	       o->drain && o->established && o->close;
}

/* The session's memory: the struct, its filter's state when it has a
 * filter, the engine. Returns 0, -ENOMEM or -EINVAL (options). */
static int sio_alloc(struct muxring_loop *loop, enum muxring_role role,
		     const struct muxring_session_opts *opts,
		     struct muxring_session **out)
{
	struct muxring_session *s;
	int err = 0;

	/* Its place in the deadline heap is made now, so that setting a
	 * deadline later never needs memory. */
	if (mr_timers_reserve(&loop->timers, loop->nsessions + 1) ||
	    !(s = mr_calloc(loop->mem, 1, sizeof(*s))))
		return -ENOMEM;
	if (opts && opts->filter) {
		s->fio = mr_calloc(loop->mem, 1, sizeof(*s->fio));
		if (s->fio)
			s->fio->filter = opts->filter;
		else
			err = -ENOMEM;
	}
	if (!err)
		err = muxring_engine_create_with_mem(&s->engine, role, opts,
						     loop->mem);
	if (err) {
		mr_free(loop->mem, s->fio);
		mr_free(loop->mem, s);
		return err;
	}
	*out = s;
	return 0;
}

int mr_sio_create(struct muxring_loop *loop, int fd, enum muxring_role role,
		  const struct muxring_session_opts *opts, const char *host,
		  uint64_t user_data, enum mr_sio_state state,
		  struct muxring_session **out)
{
	struct muxring_session *s = NULL;
	int err = opts && opts->filter && !filter_valid(opts->filter)
			  ? -EINVAL
			  : sio_alloc(loop, role, opts, &s);

	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	/* Not a public call: the engine's user pointer is how the loop's
	 * stream calls find the session of a stream (mr_sio_of_stream). */
	mr_session_set_user(mr_session_of_engine(s->engine), s);
	s->loop = loop;
	s->fd = fd;
	s->file_slot = mr_loop_file_get(loop, fd);
	s->state = (uint8_t)state;
	s->user_data = user_data;
	s->max_buffered = mr_session_max_buffered(mr_session_of_engine(s->engine));
	mr_slist_push(&loop->sessions, s, MR_LIST_ALL);
	loop->nsessions++;
	loop->stats.sessions++;
	if (loop->tracer)
		s->trace = mr_trace_session_new(loop->tracer,
						 loop->stats.sessions);
	mr_loop_mark_dirty(s);
	*out = s;
	/* A filter that cannot open fails the session, which still gets its
	 * READY and ENDED entries. */
	if (s->fio && mr_fio_open(s, role, host) == 0 && state == MR_SIO_OPEN)
		mr_fio_start(s);
	return 0;
}

/* ---- submissions ------------------------------------------------------ */

void mr_sio_submit(struct muxring_session *s, struct io_uring_sqe *sqe,
		   enum mr_op_tag tag)
{
	io_uring_sqe_set_data64(sqe, mr_op_data(s, tag));
	s->inflight++;
}

/* An SQE on the session's socket: by its file-table slot when it has one. */
static void sio_submit_io(struct muxring_session *s, struct io_uring_sqe *sqe,
			  enum mr_op_tag tag)
{
	mr_sqe_use_file(sqe, s->file_slot);
	mr_sio_submit(s, sqe, tag);
}

/* Gives the socket's file-table slot back and closes it. */
static void sio_close_fd(struct muxring_session *s)
{
	mr_loop_file_put(s->loop, s->file_slot);
	s->file_slot = -1;
	close(s->fd);
	s->fd = -1;
}

int mr_sio_connect_next(struct muxring_session *s)
{
	int err = -EHOSTUNREACH;
	struct io_uring_sqe *sqe;
	struct addrinfo *ai;
	int fd;

	for (; (ai = s->ai_cur); s->ai_cur = ai->ai_next) {
		fd = mr_net_socket(ai);
		if (fd < 0) {
			err = fd;
			continue;
		}
		mr_net_tune(fd);
		sqe = mr_loop_sqe(s->loop);
		if (!sqe) {
			close(fd);
			return MR_SQ_REFUSED;
		}
		s->fd = fd;
		s->file_slot = mr_loop_file_get(s->loop, fd);
		io_uring_prep_connect(sqe, fd, ai->ai_addr, ai->ai_addrlen);
		sio_submit_io(s, sqe, MR_OP_CONNECT);
		return 0;
	}
	return err;
}

/* The transport cannot go on (the ring took no SQE the session needs): the
 * engine ends with err and the session closes at once, needing no more
 * SQEs than cancels of what is still in flight. */
static void sio_fail(struct muxring_session *s, int err)
{
	s->flags |= MR_SIO_RECV_DONE | MR_SIO_TX_DEAD;
	mr_sio_transport_end(s, err);
	mr_loop_mark_dirty(s);
}

/* Arms the receive: multishot into the buffer ring, or a single recv that
 * also picks a ring buffer. With no buffer free the session waits on the
 * starved list (arming now could only fail at once with -ENOBUFS). */
static void sio_arm_recv(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;
	struct io_uring_sqe *sqe;

	if (s->fio && mr_fio_rx_hold(s))
		return;
	if (s->flags & (MR_SIO_RECV_ARMED | MR_SIO_RECV_DONE) || s->fd < 0)
		return;
	if (!mr_bufring_available(loop->bufring)) {
		if (!(s->on_lists & (1u << MR_LIST_STARVED)))
			mr_slist_push(&loop->starved, s, MR_LIST_STARVED);
		return;
	}
	sqe = mr_loop_sqe(loop);
	if (!sqe) {
		sio_fail(s, MR_SQ_REFUSED);
		return;
	}
	if (loop->features & MUXRING_FEAT_RECV_MULTISHOT)
		io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
	else
		io_uring_prep_recv(sqe, s->fd, NULL, loop->bufring->buf_size, 0);
	/* No bundles under a filter. A filter reads every byte as it comes
	 * (TLS decrypts it), and in a bundle of many buffers the first ones
	 * go cold in the cache before their turn: TLS bulk was 13% slower
	 * with bundles (muxbench bulk 32 MiB --tls, medians of 8 interleaved
	 * runs, 2026-12-05). */
	if (loop->features & MUXRING_FEAT_RECV_BUNDLE && !s->fio)
		sqe->ioprio |= IORING_RECVSEND_BUNDLE;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = MR_BGID;
	sio_submit_io(s, sqe, MR_OP_RECV);
	s->flags |= MR_SIO_RECV_ARMED;
	s->recv_rearms++;
	loop->stats.recv_rearms++;
}

static size_t iov_bytes(const struct iovec *iov, size_t n)
{
	size_t total = 0;

	while (n--)
		total += iov[n].iov_len;
	return total;
}

/*
 * Copies runs of small iovecs into the slot's bounce buffer, each run
 * becoming one iovec; large ones stay where they are (zero-copy). The bytes
 * and their order are unchanged. Returns the new count; *bounce_used gets
 * the bytes of the bounce buffer in use.
 */
static size_t coalesce_small(struct mr_send_slot *slot, size_t n,
			     size_t *bounce_used)
{
	struct iovec *iov = slot->iov;
	size_t i, out = 0, used = 0;
	bool run = false; /* iov[out - 1] is a run in the bounce buffer */

	for (i = 0; i < n; i++) {
		size_t len = iov[i].iov_len;

		if (len > MR_SEND_SMALL || len > slot->bounce_cap - used) {
			iov[out++] = iov[i];
			run = false;
			continue;
		}
		memcpy(slot->bounce + used, iov[i].iov_base, len);
		if (run) {
			iov[out - 1].iov_len += len;
		} else {
			iov[out].iov_base = slot->bounce + used;
			iov[out].iov_len = len;
			out++;
			run = true;
		}
		used += len;
	}
	*bounce_used = used;
	return out;
}

/* Whether a send may be owned (and so perhaps quiet): the tracer reads
 * every send's completion, so it sees the usual sends only. */
static bool send_may_be_owned(const struct muxring_loop *loop)
{
	return loop->features & MUXRING_FEAT_SEND_QUIET && !loop->tracer;
}

static void quiet_unlink(struct muxring_session *s)
{
	struct muxring_session **pp = &s->loop->quiet;

	while (*pp && *pp != s)
		pp = &(*pp)->quiet_next;
	if (*pp)
		*pp = s->quiet_next;
	s->quiet_next = NULL;
}

/* The send's bytes are all in the slot's bounce buffer: the engine counts
 * them as sent now, and the send is quiet when nothing waits behind it. */
static void prep_owned_send(struct muxring_session *s,
			    struct mr_send_slot *slot, struct io_uring_sqe *sqe)
{
	struct muxring_loop *loop = s->loop;
	size_t len = slot->iov[0].iov_len;

	slot->owned_off = 0;
	slot->owned_len = len;
	s->flags |= MR_SIO_SEND_OWNED;
	muxring_engine_sent(s->engine, len);
	if (muxring_engine_want_send(s->engine) ||
	    muxring_engine_ended(s->engine)) {
		/* More is queued, or the session is ending (its last frames
		 * are out once this send completes, and then the transport is
		 * shut down): the completion is needed, and must wake the
		 * wait, since the peer may have nothing more to say. */
		io_uring_prep_send(sqe, s->fd, slot->bounce, len,
				   MSG_NOSIGNAL | MSG_WAITALL);
		return;
	}
	/* MSG_DONTWAIT: tried once, inside this enter, never parked on the
	 * socket for later; MSG_WAITALL: a partial send is a failure, whose
	 * completion (posted) says how much went. */
	io_uring_prep_send(sqe, s->fd, slot->bounce, len,
			   MSG_NOSIGNAL | MSG_DONTWAIT | MSG_WAITALL);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	s->flags |= MR_SIO_SEND_QUIET;
	s->quiet_sq_end = loop->ring.sq.sqe_tail;
	s->quiet_next = loop->quiet;
	loop->quiet = s;
	loop->stats.quiet_sends++;
}

/* A send whose small iovecs were copied into the slot: owned when that
 * made it one buffer, else a send or a sendmsg. MSG_NOSIGNAL: a peer that
 * went away is an error value, never a SIGPIPE that kills the application. */
static void prep_copied_send(struct muxring_session *s,
			     struct mr_send_slot *slot, size_t n,
			     struct io_uring_sqe *sqe)
{
	if (n == 1 && slot->iov[0].iov_base == slot->bounce &&
	    send_may_be_owned(s->loop)) {
		prep_owned_send(s, slot, sqe);
	} else if (n == 1) {
		io_uring_prep_send(sqe, s->fd, slot->iov[0].iov_base,
				   slot->iov[0].iov_len, MSG_NOSIGNAL);
	} else {
		memset(&slot->msg, 0, sizeof(slot->msg));
		slot->msg.msg_iov = slot->iov;
		slot->msg.msg_iovlen = n;
		io_uring_prep_sendmsg(sqe, s->fd, &slot->msg, MSG_NOSIGNAL);
	}
}

/* Starts the one sendmsg of the session with everything the engine has. */
static void sio_start_send(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;
	struct io_uring_sqe *sqe;
	struct mr_send_slot *slot;
	size_t n, bounce_used;

	if (s->flags & (MR_SIO_SEND_ARMED | MR_SIO_TX_DEAD) || s->fd < 0)
		return;
	/* Through the filter, unless the kernel took the sending over, in
	 * which case the frames leave as they are, like plain ones. */
	if (mr_fio_sends(s) && (mr_fio_start_send(s) || mr_fio_sends(s)))
		return;
	if (!muxring_engine_want_send(s->engine))
		return;
	slot = mr_loop_slot_get(loop);
	if (!slot) {
		mr_loop_mark_dirty(s); /* out of memory: retried next turn */
		return;
	}
	n = muxring_engine_send_iov(s->engine, slot->iov, MR_SEND_IOV,
				    MR_SEND_MAX_BYTES);
	if (!n) {
		mr_loop_slot_put(loop, slot);
		if (muxring_engine_ended(s->engine))
			mr_loop_mark_dirty(s); /* it ended for want of memory */
		return;
	}
	sqe = mr_loop_sqe(loop);
	if (!sqe) {
		mr_loop_slot_put(loop, slot);
		sio_fail(s, MR_SQ_REFUSED);
		return;
	}
	if (loop->features & MUXRING_FEAT_SEND_ZC &&
	    iov_bytes(slot->iov, n) >= MR_SEND_ZC_MIN) {
		memset(&slot->msg, 0, sizeof(slot->msg));
		slot->msg.msg_iov = slot->iov;
		slot->msg.msg_iovlen = n;
		io_uring_prep_sendmsg_zc(sqe, s->fd, &slot->msg, MSG_NOSIGNAL);
		s->flags |= MR_SIO_SEND_ZC;
	} else {
		n = coalesce_small(slot, n, &bounce_used);
		slot = mr_loop_slot_shrink(loop, slot, n, bounce_used);
		prep_copied_send(s, slot, n, sqe);
	}
	slot->iov_used = n;
	sio_submit_io(s, sqe, MR_OP_SEND);
	s->send = slot;
	s->flags |= MR_SIO_SEND_ARMED;
	s->sends++;
	loop->stats.sends++;
}

/* ---- entries ---------------------------------------------------------- */

static void post_ready(struct muxring_session *s)
{
	struct muxring_cqe *cqe = mr_cq_push(&s->loop->cq);

	if (!cqe)
		return;
	cqe->type = MUXRING_CQE_SESSION_READY;
	cqe->res = s->ready_res;
	cqe->session = s;
	cqe->listener = s->listener;
	cqe->user_data = s->user_data;
	s->listener = NULL;
	s->flags |= MR_SIO_READY_POSTED;
}

/* The engine's entries are the loop's, but for the session's fields. */
static void adopt_entry(struct muxring_session *s, struct muxring_cqe *cqe)
{
	cqe->session = s;
	switch (cqe->type) {
	case MUXRING_CQE_STREAM_ACCEPTED:
	case MUXRING_CQE_GOAWAY:
	case MUXRING_CQE_HEARTBEAT:
	case MUXRING_CQE_HEARTBEAT_FAILED:
	case MUXRING_CQE_SESSION_ENDED:
		cqe->user_data = s->user_data;
		break;
	default:
		break;
	}
}

static bool post_ended(struct muxring_session *s)
{
	struct muxring_cqe *cqe = mr_cq_push(&s->loop->cq);

	if (!cqe)
		return false;
	mr_engine_ended_entry(s->engine, cqe);
	adopt_entry(s, cqe);
	if (!(cqe->flags & MUXRING_CQE_F_REMOTE) && s->fio &&
	    s->fio->end_text) {
		cqe->view.data = (const uint8_t *)s->fio->end_text;
		cqe->view.len = strlen(s->fio->end_text);
	}
	return true;
}

/*
 * Moves the engine's entries into the completion queue, up to its
 * SESSION_ENDED, which waits in the session until the transport is closed
 * (post_ended).
 */
static void gather_events(struct muxring_session *s)
{
	struct mr_cq *cq = &s->loop->cq;
	struct muxring_cqe *cqe;

	while (!(s->flags & MR_SIO_ENDED_SEEN)) {
		if (mr_cq_reserve(cq)) {
			/* Out of memory: the events wait in the engine and
			 * the next turn tries again. */
			mr_loop_mark_dirty(s);
			return;
		}
		/* Polled straight into the free slot at the tail, which
		 * moves only for an entry the application may see now. */
		cqe = &cq->slots[cq->tail & cq->mask];
		if (!muxring_engine_poll(s->engine, cqe))
			return;
		/* SESSION_ENDED is made again when it is posted (the slot
		 * is left free now). */
		if (cqe->type == MUXRING_CQE_SESSION_ENDED) {
			s->flags |= MR_SIO_ENDED_SEEN;
		} else {
			adopt_entry(s, cqe);
			cq->tail++;
		}
	}
}

/* ---- the end of the transport ----------------------------------------- */

/* Arms the linger timer, once per session, when the engine has ended and
 * a send is still out or the drain begins: the session's last bytes must
 * leave and the peer's EOF come within it, or the socket is closed all the
 * same, so a peer that stops reading cannot hold an ended session (and
 * its buffers) open. */
static void arm_linger(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;
	struct io_uring_sqe *sqe;

	if (s->flags & (MR_SIO_LINGER_ARMED | MR_SIO_LINGER_FIRED) ||
	    s->fd < 0)
		return;
	sqe = mr_loop_sqe(loop);
	if (!sqe) {
		s->flags |= MR_SIO_LINGER_FIRED;
		return;
	}
	io_uring_prep_timeout(sqe, &loop->linger_ts, 0, 0);
	mr_sio_submit(s, sqe, MR_OP_LINGER);
	s->flags |= MR_SIO_LINGER_ARMED;
}

/* The engine is done and its bytes left: shut the sending side, then read
 * until the peer's EOF (or the linger time), so that a GOAWAY just sent is
 * not lost to a reset caused by closing with unread data (PROTOCOL.md). */
static void begin_drain(struct muxring_session *s)
{
	struct io_uring_sqe *sqe;

	s->state = MR_SIO_DRAINING;
	if (s->fd < 0)
		return;
	/* Without an SQE the close is abortive: no shutdown (close() then
	 * does it), no lingering. */
	if (!(s->flags & MR_SIO_TX_DEAD) && (sqe = mr_loop_sqe(s->loop))) {
		io_uring_prep_shutdown(sqe, s->fd, SHUT_WR);
		sio_submit_io(s, sqe, MR_OP_SESS_AUX);
		s->flags |= MR_SIO_SHUT_WR;
	}
	if (!(s->flags & MR_SIO_RECV_DONE))
		arm_linger(s);
}

/* Submits the cancel of the operation `op` when `armed` is set in the
 * flags and `cancelled` is not; false when no SQE was free (the session
 * is marked dirty and comes back). */
static bool cancel_op(struct muxring_session *s, uint32_t armed,
		      uint32_t cancelled, enum mr_op_tag op)
{
	struct io_uring_sqe *sqe;

	if ((s->flags & (armed | cancelled)) != armed)
		return true;
	sqe = mr_loop_sqe(s->loop);
	if (!sqe) {
		mr_loop_mark_dirty(s);
		return false;
	}
	if (op == MR_OP_LINGER)
		io_uring_prep_timeout_remove(sqe, mr_op_data(s, op), 0);
	else
		io_uring_prep_cancel64(sqe, mr_op_data(s, op), 0);
	mr_sio_submit(s, sqe, MR_OP_SESS_AUX);
	s->flags |= cancelled;
	return true;
}

/* Cancels what is still in flight (once each); a cancel the ring refused
 * is tried again at the next step. The socket is closed when all is back.
 * A send is cancelled too: past the linger time it waits on a peer that
 * does not read. */
static void cancel_inflight(struct muxring_session *s)
{
	if (cancel_op(s, MR_SIO_LINGER_ARMED, MR_SIO_LINGER_CANCELLED,
		      MR_OP_LINGER) &&
	    cancel_op(s, MR_SIO_RECV_ARMED, MR_SIO_RECV_CANCELLED,
		      MR_OP_RECV))
		cancel_op(s, MR_SIO_SEND_ARMED, MR_SIO_SEND_CANCELLED,
			  MR_OP_SEND);
}

static void finish(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;

	if (mr_cq_reserve(&loop->cq)) {
		mr_loop_mark_dirty(s); /* retried at the next turn */
		return;
	}
	if (s->fd >= 0)
		sio_close_fd(s);
	if (s->on_lists & (1u << MR_LIST_STARVED))
		mr_slist_remove(&loop->starved, s, MR_LIST_STARVED);
	mr_timers_set(&loop->timers, s, 0);
	if (s->send) {
		mr_loop_slot_put(loop, s->send);
		s->send = NULL;
	}
	post_ended(s);
	s->state = MR_SIO_CLOSED;
}

/* ---- the step ---------------------------------------------------------- */

/* Everything the session had to send has left (or never can): the
 * transport may be shut down. A filter first gets to queue its clean end
 * (close_notify), which the caller then sends. */
static bool sio_tx_finished(struct muxring_session *s)
{
	if (s->flags & MR_SIO_TX_DEAD)
		return true;
	if (!mr_fio_sends(s))
		return muxring_engine_done(s->engine) &&
		       (!s->fio || mr_fio_finish(s));
	/* Before the handshake, or after a failure, the engine's bytes can
	 * never leave; only the filter's own (an alert) still do. */
	if (s->flags & MR_SIO_FILTER_UP && !(s->flags & MR_SIO_FILTER_FAILED) &&
	    !muxring_engine_done(s->engine))
		return false;
	return mr_fio_finish(s);
}

/* The engine ended: its last bytes go out, then the drain begins; all of
 * it within the linger time from here, after which the session closes
 * with whatever is still unsent (its streams have all ended). */
static void sio_tx_after_end(struct muxring_session *s)
{
	if (s->flags & MR_SIO_SEND_ARMED) {
		arm_linger(s);
		if (s->flags & MR_SIO_LINGER_FIRED)
			s->state = MR_SIO_CLOSING;
	} else if (sio_tx_finished(s)) {
		begin_drain(s);
	} else {
		sio_start_send(s);
	}
}

void mr_sio_step(struct muxring_session *s)
{
	if (s->state == MR_SIO_CONNECTING || s->state == MR_SIO_CLOSED)
		return;
	if (s->state == MR_SIO_OPEN && mr_fio_active(s))
		mr_fio_step(s);
	/* A filtered session is ready once its handshake is done (or it
	 * failed); its engine's events wait until then. */
	if (!(s->flags & MR_SIO_READY_POSTED) &&
	    (!s->fio || mr_fio_ready(s))) {
		post_ready(s);
		if (!(s->flags & MR_SIO_READY_POSTED)) {
			mr_loop_mark_dirty(s); /* out of memory: retried */
			return;
		}
	}
	if (s->flags & MR_SIO_READY_POSTED)
		gather_events(s);

	if (s->state == MR_SIO_OPEN) {
		sio_start_send(s);
		/* An owned send told the engine its bytes left: the entries
		 * that made (WRITE_DONE) are due before this turn's wait. */
		if (s->flags & MR_SIO_SEND_OWNED)
			gather_events(s);
		sio_arm_recv(s);
		if (s->flags & MR_SIO_ENDED_SEEN)
			sio_tx_after_end(s);
	}
	if (s->state == MR_SIO_DRAINING) {
		if (s->flags & (MR_SIO_RECV_DONE | MR_SIO_LINGER_FIRED) ||
		    s->fd < 0)
			s->state = MR_SIO_CLOSING;
		else
			sio_arm_recv(s);
	}
	if (s->state == MR_SIO_CLOSING) {
		cancel_inflight(s);
		if (!s->inflight)
			finish(s);
	}
	mr_sio_account(s);
}

/* ---- the loop's memory budget ------------------------------------------ */

static uint64_t lower_limit(uint64_t a, uint64_t b)
{
	if (!a)
		return b;
	return a < b ? a : b;
}

/* The loop is back under its cap: every session held to a share gets its
 * own cap back. */
static void lift_shares(struct muxring_loop *loop)
{
	struct muxring_session *s;

	loop->over_budget = false;
	for (s = loop->sessions.head; s; s = s->next[MR_LIST_ALL]) {
		if (!s->held_to_share)
			continue;
		s->held_to_share = false;
		mr_session_set_buffer_limit(mr_session_of_engine(s->engine),
					    s->max_buffered);
		mr_loop_mark_dirty(s);
	}
}

void mr_sio_account(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;
	struct mr_session *sess = mr_session_of_engine(s->engine);
	uint64_t now = mr_session_buffered(sess), cap = loop->max_buffered;

	loop->buffered += now - s->buffered_seen;
	s->buffered_seen = now;
	if (loop->buffered > loop->buffered_max)
		loop->buffered_max = loop->buffered;
	if (!cap)
		return;
	if (!loop->over_budget && loop->buffered >= cap)
		loop->over_budget = true;
	else if (loop->over_budget && loop->buffered < cap - cap / 4)
		lift_shares(loop);
	if (loop->over_budget) {
		uint64_t share = cap / (loop->nsessions ? loop->nsessions : 1);

		s->held_to_share = share < s->max_buffered || !s->max_buffered;
		mr_session_set_buffer_limit(sess,
					    lower_limit(s->max_buffered, share));
	}
}

/* ---- completions ------------------------------------------------------- */

void mr_sio_transport_end(struct muxring_session *s, int err)
{
	muxring_engine_feed_end(s->engine, err);
}

/* Received bytes into the engine: as views into the ring buffer, or, when
 * few buffers are left in the ring, copied out so that this one goes back
 * at once. */
static void feed(struct muxring_session *s, struct mr_buf *buf, size_t len)
{
	struct muxring_loop *loop = s->loop;

	muxring_engine_set_now(s->engine, loop->now);
	if (mr_bufring_low(loop->bufring)) {
		s->recv_copied++;
		loop->stats.recv_copied++;
		muxring_engine_feed(s->engine, buf->data, len);
	} else {
		muxring_engine_feed_buf(s->engine,
					mr_engine_buf_of(buf),
					buf->data, len);
	}
}

static void count_completion(struct muxring_session *s)
{
	s->recv_completions++;
	s->loop->stats.recv_completions++;
}

/* One filled buffer's bytes to the filter or the engine, unless the
 * session no longer reads. */
static void take_in(struct muxring_session *s, struct mr_buf *buf, size_t len)
{
	struct muxring_loop *loop = s->loop;

	s->recv_buffers_filled++;
	loop->stats.recv_buffers_filled++;
	if (s->state != MR_SIO_OPEN || loop->destroying ||
	    muxring_engine_ended(s->engine))
		return;
	if (mr_fio_decrypts(s))
		mr_fio_input(s, buf->data, len);
	else
		feed(s, buf, len);
}

/* The ring buffers a receive filled, first `bid`: one, or with a bundle
 * as many as `len` bytes took, every one full but the last. Each goes back
 * to the ring as soon as nothing holds it. False when the kernel named a
 * buffer that is not out of the ring (never expected): the bytes are lost. */
static bool take_from_ring(struct muxring_session *s, uint32_t bid,
			   size_t len)
{
	struct mr_bufring *br = s->loop->bufring;

	while (len) {
		struct mr_buf *buf = mr_bufring_take(br, bid);
		size_t part = len < br->buf_size ? len : br->buf_size;

		if (!buf)
			return false;
		if (len > part)
			bid = mr_bufring_next_bid(br, bid); /* while taken */
		take_in(s, buf, part);
		mr_buf_unref(buf);
		len -= part;
	}
	return true;
}

/* The exact read of a record's rest (filter_io.c) completed: its bytes
 * go to the filter. True when there were any. */
static bool take_exact(struct muxring_session *s, int res)
{
	struct mr_buf *buf = s->fio->rx_exact;

	s->fio->rx_exact = NULL;
	if (res > 0) {
		mr_kernel_wrote(buf->data, (size_t)res);
		count_completion(s);
		take_in(s, buf, (size_t)res);
	}
	mr_buf_unref(buf);
	return res > 0;
}

static void recv_complete(struct muxring_session *s,
			  const struct io_uring_cqe *cqe)
{
	struct muxring_loop *loop = s->loop;
	int res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		s->flags &= ~MR_SIO_RECV_ARMED;
	if (s->fio && s->fio->rx_exact) {
		if (take_exact(s, res))
			return;
	} else if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		struct mr_buf *buf;

		if (res > 0) {
			count_completion(s);
			if (take_from_ring(s, bid, (size_t)res))
				return;
			res = -EIO;
		} else if ((buf = mr_bufring_take(loop->bufring, bid))) {
			mr_buf_unref(buf); /* no bytes: straight back */
		}
	} else if (res > 0) {
		res = -EIO; /* bytes without a buffer: cannot happen */
	}
	switch (res) {
	case 0:
		s->flags |= MR_SIO_RECV_DONE;
		/* A filter says whether the end is clean (TLS: truncation
		 * when no close_notify came). */
		if (mr_fio_active(s) && s->state == MR_SIO_OPEN &&
		    !muxring_engine_ended(s->engine))
			mr_fio_input(s, NULL, 0);
		else
			mr_sio_transport_end(s, 0);
		return;
	case -ENOBUFS:
		/* The ring ran dry; the multishot ended without losing
		 * anything. The next step re-arms once buffers are back. */
		s->recv_enobufs++;
		loop->stats.recv_enobufs++;
		return;
	case -ECANCELED:
	case -EINTR:
	case -EAGAIN:
		return;
	default:
		if (s->fio && mr_fio_rx_failed(s, res))
			return;
		s->flags |= MR_SIO_RECV_DONE | MR_SIO_TX_DEAD;
		mr_sio_transport_end(s, res);
		return;
	}
}

/*
 * An owned send ended (a quiet one only comes here when it failed): what
 * the kernel did not take goes out again from the bounce buffer, as an
 * ordinary send that waits for room on the socket.
 */
static void owned_send_complete(struct muxring_session *s, int res)
{
	struct mr_send_slot *slot = s->send;
	struct io_uring_sqe *sqe;

	if (s->flags & MR_SIO_SEND_QUIET) {
		quiet_unlink(s);
		s->loop->quiet_resends++;
	}
	s->flags &= ~MR_SIO_SEND_QUIET;
	if (res > 0)
		slot->owned_off += (size_t)res;
	if (slot->owned_off < slot->owned_len && s->fd >= 0 &&
	    !s->loop->destroying && !(s->flags & MR_SIO_SEND_CANCELLED) &&
	    (res > 0 || res == -EAGAIN || res == -EINTR) &&
	    (sqe = mr_loop_sqe(s->loop))) {
		io_uring_prep_send(sqe, s->fd, slot->bounce + slot->owned_off,
				   slot->owned_len - slot->owned_off,
				   MSG_NOSIGNAL | MSG_WAITALL);
		sio_submit_io(s, sqe, MR_OP_SEND);
		return;
	}
	s->flags &= ~(MR_SIO_SEND_ARMED | MR_SIO_SEND_OWNED);
	if (slot->owned_off < slot->owned_len) {
		/* Bytes the engine counts as sent cannot leave: the session's
		 * stream is broken (without an SQE for the resend too). */
		s->flags |= MR_SIO_TX_DEAD;
		mr_sio_transport_end(s, res < 0 ? res : res > 0 ? MR_SQ_REFUSED
								: -EIO);
	}
	mr_loop_slot_put(s->loop, slot);
	s->send = NULL;
}

void mr_sio_quiet_confirm(struct muxring_loop *loop)
{
	struct muxring_session **pp = &loop->quiet, *s;
	unsigned head;

	if (!loop->quiet ||
	    IO_URING_READ_ONCE(*loop->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
		return;
	head = io_uring_smp_load_acquire(loop->ring.sq.khead);
	while ((s = *pp)) {
		if ((int32_t)(head - s->quiet_sq_end) < 0) {
			pp = &s->quiet_next; /* not submitted yet */
			continue;
		}
		*pp = s->quiet_next;
		s->quiet_next = NULL;
		s->flags &= ~(MR_SIO_SEND_QUIET | MR_SIO_SEND_OWNED |
			      MR_SIO_SEND_ARMED);
		s->inflight--;
		loop->inflight--;
		mr_loop_slot_put(loop, s->send);
		s->send = NULL;
		mr_loop_mark_dirty(s);
	}
}

/*
 * The send finished. A zero-copy send completes twice: first with its
 * result (IORING_CQE_F_MORE set), then with a notification once the kernel
 * no longer reads the pages; only then may the engine reuse its memory and
 * the application's buffers return, so the engine hears of it only then.
 */
static void send_complete(struct muxring_session *s,
			  const struct io_uring_cqe *cqe)
{
	int res = cqe->res;

	if (s->fio && s->fio->cipher) {
		s->flags &= ~MR_SIO_SEND_ARMED;
		mr_fio_send_done(s, res);
		return;
	}
	if (s->flags & MR_SIO_SEND_ZC) {
		if (cqe->flags & IORING_CQE_F_MORE) {
			s->zc_res = res; /* the notification follows */
			return;
		}
		if (cqe->flags & IORING_CQE_F_NOTIF)
			res = s->zc_res;
		s->flags &= ~MR_SIO_SEND_ZC;
	}
	if (s->flags & MR_SIO_SEND_OWNED) {
		owned_send_complete(s, res);
		return;
	}
	s->flags &= ~MR_SIO_SEND_ARMED;
	if (s->send) {
		mr_loop_slot_put(s->loop, s->send);
		s->send = NULL;
	}
	if (res >= 0) {
		muxring_engine_sent(s->engine, (size_t)res);
		return;
	}
	if (res == -EINTR || res == -EAGAIN)
		return; /* sent nothing: the next step sends the same bytes */
	s->flags |= MR_SIO_TX_DEAD;
	mr_sio_transport_end(s, res);
}

static void connect_complete(struct muxring_session *s, int res)
{
	if (res == 0) {
		freeaddrinfo(s->ai_list);
		s->ai_list = s->ai_cur = NULL;
		s->state = MR_SIO_OPEN;
		if (s->fio)
			mr_fio_start(s);
		return;
	}
	sio_close_fd(s);
	if (s->ai_cur && !s->loop->destroying) {
		s->ai_cur = s->ai_cur->ai_next;
		if (s->ai_cur && mr_sio_connect_next(s) == 0)
			return;
	}
	freeaddrinfo(s->ai_list);
	s->ai_list = s->ai_cur = NULL;
	s->ready_res = res;
	s->flags |= MR_SIO_RECV_DONE | MR_SIO_TX_DEAD;
	s->state = MR_SIO_OPEN;
	mr_sio_transport_end(s, res);
}

void mr_sio_complete(struct muxring_session *s, enum mr_op_tag tag,
		     const struct io_uring_cqe *cqe)
{
	bool last = !(cqe->flags & IORING_CQE_F_MORE);

	if (last)
		s->inflight--;
	switch (tag) {
	case MR_OP_RECV:
		recv_complete(s, cqe);
		break;
	case MR_OP_SEND:
		send_complete(s, cqe);
		break;
	case MR_OP_CONNECT:
		connect_complete(s, cqe->res);
		break;
	case MR_OP_LINGER:
		s->flags &= ~MR_SIO_LINGER_ARMED;
		if (cqe->res == -ETIME)
			s->flags |= MR_SIO_LINGER_FIRED;
		break;
	case MR_OP_SESS_AUX:
		/* While open, the only auxiliary operation is the cancel of
		 * the receive hand-over (filter_io.c). */
		if (s->state == MR_SIO_OPEN)
			mr_fio_rx_stopped(s);
		break;
	default:
		break;
	}
	mr_loop_mark_dirty(s);
}

/* ---- deadlines -------------------------------------------------------- */

static uint64_t earliest(uint64_t a, uint64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

uint64_t mr_sio_next_deadline(const struct muxring_session *s)
{
	return earliest(muxring_engine_next_deadline(s->engine),
			s->fio ? mr_fio_deadline(s) : 0);
}

uint64_t mr_sio_expire(struct muxring_session *s, uint64_t now)
{
	uint64_t next = muxring_engine_expire(s->engine, now);

	if (!s->fio)
		return next;
	mr_fio_expire(s, now);
	return earliest(next, mr_fio_deadline(s));
}

/* ---- end of life ------------------------------------------------------- */

void mr_sio_stats(const struct muxring_session *s, struct muxring_stats *out)
{
	muxring_engine_stats(s->engine, out);
	out->sends = s->sends;
	out->recv_completions = s->recv_completions;
	out->recv_buffers_filled = s->recv_buffers_filled;
	out->recv_enobufs = s->recv_enobufs;
	out->recv_copied = s->recv_copied;
	out->recv_rearms = s->recv_rearms;
}

void mr_sio_free(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;
	struct muxring_stats st;

	if (s->fd >= 0)
		sio_close_fd(s);
	mr_sio_stats(s, &st);
	loop->ended.frames_in += st.frames_in;
	loop->ended.frames_out += st.frames_out;
	loop->ended.bytes_in += st.bytes_in;
	loop->ended.bytes_out += st.bytes_out;
	loop->ended.streams_opened += st.streams_opened;
	loop->ended.streams_accepted += st.streams_accepted;
	mr_stats_keep_max(&loop->ended, &st);
	loop->ended.credit_stalls += st.credit_stalls;
	loop->buffered -= s->buffered_seen;
	if (s->on_lists & (1u << MR_LIST_DIRTY))
		mr_slist_remove(&loop->dirty, s, MR_LIST_DIRTY);
	if (s->on_lists & (1u << MR_LIST_STARVED))
		mr_slist_remove(&loop->starved, s, MR_LIST_STARVED);
	if (s->flags & MR_SIO_SEND_QUIET)
		quiet_unlink(s);
	if (s->on_lists & (1u << MR_LIST_ALL))
		mr_slist_remove(&loop->sessions, s, MR_LIST_ALL);
	mr_timers_set(&loop->timers, s, 0);
	if (s->send)
		mr_loop_slot_put(loop, s->send);
	if (s->ai_list)
		freeaddrinfo(s->ai_list);
	if (s->fio)
		mr_fio_free(s);
	muxring_engine_destroy(s->engine);
	mr_free(loop->mem, s->trace);
	loop->nsessions--;
	mr_free(loop->mem, s);
}
