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
 */
#include "uring/session_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire/frame.h"
#include "uring/listener.h"
#include "uring/net.h"

static void sio_config(const struct muxring_session_opts *o,
		       struct mr_config *cfg)
{
	mr_config_default(cfg);
	if (!o)
		return;
	if (o->window)
		cfg->window = o->window;
	if (o->accept_backlog)
		cfg->accept_backlog = o->accept_backlog;
	if (o->max_streams)
		cfg->max_streams = o->max_streams;
	if (o->max_frame_payload)
		cfg->max_frame_payload = o->max_frame_payload;
	if (o->max_buffered)
		cfg->max_buffered = o->max_buffered == UINT64_MAX
					    ? 0
					    : o->max_buffered;
	cfg->typed = (o->flags & MUXRING_SESSION_TYPED) != 0;
}

int mr_sio_create(struct muxring_loop *loop, int fd, enum muxring_role role,
		  const struct muxring_session_opts *opts, uint64_t user_data,
		  enum mr_sio_state state, struct muxring_session **out)
{
	struct muxring_session *s;
	struct mr_config cfg;

	sio_config(opts, &cfg);
	if ((role != MUXRING_CLIENT && role != MUXRING_SERVER) ||
	    cfg.window < MR_INITIAL_WINDOW ||
	    cfg.max_frame_payload > MR_FRAME_MAX_LEN ||
	    (opts && opts->flags & ~MUXRING_SESSION_TYPED)) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s)
		s->mr = mr_session_new(role == MUXRING_SERVER ? MR_ROLE_SERVER
							      : MR_ROLE_CLIENT,
				       &cfg);
	if (!s || !s->mr) {
		free(s);
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	mr_session_set_user(s->mr, s);
	s->loop = loop;
	s->fd = fd;
	s->state = (uint8_t)state;
	s->user_data = user_data;
	s->max_buffered = cfg.max_buffered;
	mr_slist_push(&loop->sessions, s, MR_LIST_ALL);
	loop->stats.sessions++;
	loop->live_sessions++;
	mr_loop_mark_dirty(s);
	*out = s;
	return 0;
}

/* ---- submissions ------------------------------------------------------ */

static void sio_submit(struct muxring_session *s, struct io_uring_sqe *sqe,
		       enum mr_op_tag tag)
{
	io_uring_sqe_set_data64(sqe, mr_op_data(s, tag));
	s->inflight++;
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
		s->fd = fd;
		sqe = mr_loop_sqe(s->loop);
		io_uring_prep_connect(sqe, fd, ai->ai_addr, ai->ai_addrlen);
		sio_submit(s, sqe, MR_OP_CONNECT);
		return 0;
	}
	return err;
}

/* Arms the receive: multishot into the buffer ring, or a single recv that
 * also picks a ring buffer. With no buffer free the session waits on the
 * starved list (arming now could only fail at once with -ENOBUFS). */
static void sio_arm_recv(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;
	struct io_uring_sqe *sqe;

	if (s->flags & (MR_SIO_RECV_ARMED | MR_SIO_RECV_DONE) || s->fd < 0)
		return;
	if (!mr_bufring_available(loop->bufring)) {
		if (!(s->on_lists & (1u << MR_LIST_STARVED)))
			mr_slist_push(&loop->starved, s, MR_LIST_STARVED);
		return;
	}
	sqe = mr_loop_sqe(loop);
	if (loop->features & MUXRING_FEAT_RECV_MULTISHOT)
		io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
	else
		io_uring_prep_recv(sqe, s->fd, NULL, loop->bufring->buf_size, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = MR_BGID;
	sio_submit(s, sqe, MR_OP_RECV);
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
 * and their order are unchanged. Returns the new count.
 */
static size_t coalesce_small(struct mr_send_slot *slot, size_t n)
{
	struct iovec *iov = slot->iov;
	size_t i, out = 0, used = 0;
	bool run = false; /* iov[out - 1] is a run in the bounce buffer */

	for (i = 0; i < n; i++) {
		size_t len = iov[i].iov_len;

		if (len > MR_SEND_SMALL || len > MR_SEND_BOUNCE - used) {
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
	return out;
}

/* Starts the one sendmsg of the session with everything the engine has. */
static void sio_start_send(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;
	struct io_uring_sqe *sqe;
	struct mr_send_slot *slot;
	size_t n;

	if (s->flags & (MR_SIO_SEND_ARMED | MR_SIO_TX_DEAD) || s->fd < 0 ||
	    !mr_session_tx_pending(s->mr))
		return;
	slot = mr_loop_slot_get(loop);
	if (!slot) {
		mr_loop_mark_dirty(s); /* out of memory: retried next turn */
		return;
	}
	n = mr_session_tx_iov(s->mr, slot->iov, MR_SEND_IOV, MR_SEND_MAX_BYTES);
	if (!n) {
		mr_loop_slot_put(loop, slot);
		if (mr_session_ended(s->mr))
			mr_loop_mark_dirty(s); /* it ended for want of memory */
		return;
	}
	sqe = mr_loop_sqe(loop);
	/* MSG_NOSIGNAL: a peer that went away is an error value, never a
	 * SIGPIPE that kills the application. */
	if (loop->features & MUXRING_FEAT_SEND_ZC &&
	    iov_bytes(slot->iov, n) >= MR_SEND_ZC_MIN) {
		memset(&slot->msg, 0, sizeof(slot->msg));
		slot->msg.msg_iov = slot->iov;
		slot->msg.msg_iovlen = n;
		io_uring_prep_sendmsg_zc(sqe, s->fd, &slot->msg, MSG_NOSIGNAL);
		s->flags |= MR_SIO_SEND_ZC;
	} else if ((n = coalesce_small(slot, n)) == 1) {
		io_uring_prep_send(sqe, s->fd, slot->iov[0].iov_base,
				   slot->iov[0].iov_len, MSG_NOSIGNAL);
	} else {
		memset(&slot->msg, 0, sizeof(slot->msg));
		slot->msg.msg_iov = slot->iov;
		slot->msg.msg_iovlen = n;
		io_uring_prep_sendmsg(sqe, s->fd, &slot->msg, MSG_NOSIGNAL);
	}
	sio_submit(s, sqe, MR_OP_SEND);
	s->send = slot;
	s->flags |= MR_SIO_SEND_ARMED;
	s->sends++;
	loop->stats.sends++;
}

/* ---- entries ---------------------------------------------------------- */

static uint64_t stream_data(struct mr_stream *st)
{
	return (uint64_t)(uintptr_t)mr_stream_user(st);
}

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

/* One engine event as one entry (a slot is reserved by the caller). */
static void post_event(struct muxring_session *s, struct mr_event *ev)
{
	const struct mr_session_result *r;
	struct muxring_cqe *cqe;

	if (ev->type == MR_EV_SESSION_ENDED) {
		/* Held back: SESSION_ENDED is posted once the transport is
		 * closed. */
		s->flags |= MR_SIO_ENDED_SEEN;
		return;
	}
	cqe = mr_cq_push(&s->loop->cq);
	cqe->session = s;
	cqe->stream = (struct muxring_stream *)ev->stream;
	cqe->user_data = ev->stream ? stream_data(ev->stream) : s->user_data;
	switch (ev->type) {
	case MR_EV_STREAM_ACCEPTED:
		cqe->type = MUXRING_CQE_STREAM_ACCEPTED;
		cqe->code = ev->stream_type;
		cqe->user_data = s->user_data;
		break;
	case MR_EV_DATA:
		cqe->type = MUXRING_CQE_DATA;
		cqe->res = (int64_t)ev->view.len;
		cqe->view.data = ev->view.data;
		cqe->view.len = ev->view.len;
		cqe->view.priv_[0] = ev->view.stream;
		cqe->view.priv_[1] = ev->view.buf;
		break;
	case MR_EV_EOF:
		cqe->type = MUXRING_CQE_EOF;
		break;
	case MR_EV_WRITE_DONE:
		cqe->type = MUXRING_CQE_WRITE_DONE;
		cqe->res = ev->result;
		cqe->user_data = ev->user_data;
		break;
	case MR_EV_DEADLINE:
		cqe->type = MUXRING_CQE_DEADLINE;
		cqe->code = (uint32_t)ev->deadline;
		break;
	case MR_EV_STREAM_CLOSED:
		/* The entry keeps the event's stream reference until the
		 * application advances past it (mr_event_done then). */
		cqe->type = MUXRING_CQE_STREAM_CLOSED;
		cqe->code = ev->code;
		cqe->res = ev->result;
		if (ev->close_reason == MR_CLOSE_PEER_RESET)
			cqe->flags |= MUXRING_CQE_F_REMOTE;
		break;
	case MR_EV_GOAWAY:
		r = mr_session_result(s->mr);
		cqe->type = MUXRING_CQE_GOAWAY;
		cqe->code = ev->code;
		cqe->user_data = s->user_data;
		cqe->flags |= MUXRING_CQE_F_REMOTE;
		cqe->view.data = r->remote_debug;
		cqe->view.len = r->remote_debug ? r->remote_debug_len : 0;
		break;
	case MR_EV_HEARTBEAT:
		cqe->type = MUXRING_CQE_HEARTBEAT;
		cqe->res = ev->result;
		cqe->user_data = s->user_data;
		cqe->stream = NULL;
		break;
	case MR_EV_HEARTBEAT_FAILED:
		cqe->type = MUXRING_CQE_HEARTBEAT_FAILED;
		cqe->res = -ETIMEDOUT;
		cqe->user_data = s->user_data;
		cqe->stream = NULL;
		break;
	case MR_EV_SESSION_ENDED:
		break;
	}
}

static bool post_ended(struct muxring_session *s)
{
	const struct mr_session_result *r = mr_session_result(s->mr);
	struct muxring_cqe *cqe = mr_cq_push(&s->loop->cq);

	if (!cqe)
		return false;
	cqe->type = MUXRING_CQE_SESSION_ENDED;
	cqe->res = r->local_error;
	cqe->session = s;
	cqe->user_data = s->user_data;
	if (r->remote_goaway) {
		cqe->flags |= MUXRING_CQE_F_REMOTE;
		cqe->code = r->remote_code;
		cqe->view.data = r->remote_debug;
		cqe->view.len = r->remote_debug ? r->remote_debug_len : 0;
	}
	return true;
}

/* Moves the engine's events into entries, up to its SESSION_ENDED. */
static void gather_events(struct muxring_session *s)
{
	struct mr_event ev;

	while (!(s->flags & MR_SIO_ENDED_SEEN)) {
		if (mr_cq_reserve(&s->loop->cq)) {
			/* Out of memory: the events wait in the engine and
			 * the next turn tries again. */
			mr_loop_mark_dirty(s);
			return;
		}
		if (!mr_session_poll_event(s->mr, &ev))
			return;
		post_event(s, &ev);
	}
}

/* ---- the end of the transport ----------------------------------------- */

/* The engine is done: shut the sending side, then read until the peer's
 * EOF (or the linger time), so that a GOAWAY just sent is not lost to a
 * reset caused by closing with unread data (PROTOCOL.md). */
static void begin_drain(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;
	struct io_uring_sqe *sqe;

	s->state = MR_SIO_DRAINING;
	if (s->fd < 0)
		return;
	if (!(s->flags & MR_SIO_TX_DEAD)) {
		sqe = mr_loop_sqe(loop);
		io_uring_prep_shutdown(sqe, s->fd, SHUT_WR);
		sio_submit(s, sqe, MR_OP_SESS_AUX);
		s->flags |= MR_SIO_SHUT_WR;
	}
	if (!(s->flags & MR_SIO_RECV_DONE)) {
		s->linger_ts.tv_sec = loop->linger_ms / 1000;
		s->linger_ts.tv_nsec = (long long)(loop->linger_ms % 1000) *
				       1000000;
		sqe = mr_loop_sqe(loop);
		io_uring_prep_timeout(sqe, &s->linger_ts, 0, 0);
		sio_submit(s, sqe, MR_OP_LINGER);
		s->flags |= MR_SIO_LINGER_ARMED;
	}
}

/* Stops what is still in flight; the socket is closed when all is back. */
static void begin_closing(struct muxring_session *s)
{
	struct io_uring_sqe *sqe;

	s->state = MR_SIO_CLOSING;
	if (s->flags & MR_SIO_LINGER_ARMED) {
		sqe = mr_loop_sqe(s->loop);
		io_uring_prep_timeout_remove(sqe, mr_op_data(s, MR_OP_LINGER), 0);
		sio_submit(s, sqe, MR_OP_SESS_AUX);
	}
	if (s->flags & MR_SIO_RECV_ARMED) {
		sqe = mr_loop_sqe(s->loop);
		io_uring_prep_cancel64(sqe, mr_op_data(s, MR_OP_RECV), 0);
		sio_submit(s, sqe, MR_OP_SESS_AUX);
	}
}

static void finish(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;

	if (mr_cq_reserve(&loop->cq)) {
		mr_loop_mark_dirty(s); /* retried at the next turn */
		return;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
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

void mr_sio_step(struct muxring_session *s)
{
	if (s->state == MR_SIO_CONNECTING || s->state == MR_SIO_CLOSED)
		return;
	if (!(s->flags & MR_SIO_READY_POSTED)) {
		post_ready(s);
		if (!(s->flags & MR_SIO_READY_POSTED)) {
			mr_loop_mark_dirty(s); /* out of memory: retried */
			return;
		}
	}
	gather_events(s);

	if (s->state == MR_SIO_OPEN) {
		sio_start_send(s);
		sio_arm_recv(s);
		if ((s->flags & MR_SIO_ENDED_SEEN) &&
		    !(s->flags & MR_SIO_SEND_ARMED) &&
		    (s->flags & MR_SIO_TX_DEAD || mr_session_done(s->mr)))
			begin_drain(s);
	}
	if (s->state == MR_SIO_DRAINING) {
		if (s->flags & (MR_SIO_RECV_DONE | MR_SIO_LINGER_FIRED) ||
		    s->fd < 0)
			begin_closing(s);
		else
			sio_arm_recv(s);
	}
	if (s->state == MR_SIO_CLOSING && !s->inflight)
		finish(s);
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
		mr_session_set_buffer_limit(s->mr, s->max_buffered);
		mr_loop_mark_dirty(s);
	}
}

void mr_sio_account(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;
	uint64_t now = mr_session_buffered(s->mr), cap = loop->max_buffered;

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
		uint64_t share = cap / (loop->live_sessions ? loop->live_sessions
							     : 1);

		s->held_to_share = share < s->max_buffered || !s->max_buffered;
		mr_session_set_buffer_limit(s->mr,
					    lower_limit(s->max_buffered, share));
	}
}

/* ---- completions ------------------------------------------------------- */

/* The transport failed (or ended, err 0): the engine hears it once. */
static void transport_end(struct muxring_session *s, int err)
{
	if (!mr_session_ended(s->mr))
		mr_session_recv_end(s->mr, err);
}

static void recv_complete(struct muxring_session *s,
			  const struct io_uring_cqe *cqe)
{
	struct muxring_loop *loop = s->loop;
	struct mr_buf *buf = NULL;
	unsigned flags = 0;
	int res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		s->flags &= ~MR_SIO_RECV_ARMED;
	if (cqe->flags & IORING_CQE_F_BUFFER)
		buf = mr_bufring_take(loop->bufring,
				      cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	if (res > 0 && !buf)
		res = -EIO; /* bytes without a buffer: cannot happen */
	if (res > 0) {
		s->recv_completions++;
		loop->stats.recv_completions++;
		if (s->state == MR_SIO_OPEN && !loop->destroying &&
		    !mr_session_ended(s->mr)) {
			/* Few buffers left in the ring: copy the payloads
			 * out so this buffer goes back at once. */
			if (mr_bufring_low(loop->bufring)) {
				flags = MR_RECV_COPY;
				s->recv_copied++;
				loop->stats.recv_copied++;
			}
			mr_session_set_now(s->mr, loop->now);
			mr_session_recv(s->mr, buf, buf->data, (size_t)res,
					flags);
		}
		mr_buf_unref(buf);
		return;
	}
	if (buf)
		mr_buf_unref(buf);
	switch (res) {
	case 0:
		s->flags |= MR_SIO_RECV_DONE;
		transport_end(s, 0);
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
		s->flags |= MR_SIO_RECV_DONE | MR_SIO_TX_DEAD;
		transport_end(s, res);
		return;
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

	if (s->flags & MR_SIO_SEND_ZC) {
		if (cqe->flags & IORING_CQE_F_MORE) {
			s->zc_res = res; /* the notification follows */
			return;
		}
		if (cqe->flags & IORING_CQE_F_NOTIF)
			res = s->zc_res;
		s->flags &= ~MR_SIO_SEND_ZC;
	}
	s->flags &= ~MR_SIO_SEND_ARMED;
	if (s->send) {
		mr_loop_slot_put(s->loop, s->send);
		s->send = NULL;
	}
	if (res >= 0) {
		mr_session_tx_advance(s->mr, (size_t)res);
		return;
	}
	if (res == -EINTR || res == -EAGAIN)
		return; /* sent nothing: the next step sends the same bytes */
	s->flags |= MR_SIO_TX_DEAD;
	transport_end(s, res);
}

static void connect_complete(struct muxring_session *s, int res)
{
	if (res == 0) {
		freeaddrinfo(s->ai_list);
		s->ai_list = s->ai_cur = NULL;
		s->state = MR_SIO_OPEN;
		return;
	}
	close(s->fd);
	s->fd = -1;
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
	transport_end(s, res);
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
	default:
		break;
	}
	mr_loop_mark_dirty(s);
}

/* ---- end of life ------------------------------------------------------- */

void mr_sio_stats(const struct muxring_session *s, struct muxring_stats *out)
{
	struct mr_session_stats es;

	mr_session_stats(s->mr, &es);
	memset(out, 0, sizeof(*out));
	out->frames_in = es.frames_in;
	out->frames_out = es.frames_out;
	out->bytes_in = es.bytes_in;
	out->bytes_out = es.bytes_out;
	out->streams_opened = es.streams_opened;
	out->streams_accepted = es.streams_accepted;
	out->sends = s->sends;
	out->recv_completions = s->recv_completions;
	out->recv_enobufs = s->recv_enobufs;
	out->recv_copied = s->recv_copied;
	out->recv_rearms = s->recv_rearms;
	out->recv_view_bytes = es.rx_view_bytes;
	out->recv_view_bytes_max = es.rx_view_bytes_max;
	out->recv_copy_bytes = es.rx_copy_bytes;
	out->recv_copy_bytes_max = es.rx_copy_bytes_max;
	out->send_queued_bytes = es.tx_queued_bytes;
	out->buffered_bytes = es.rx_view_bytes + es.tx_queued_bytes;
	out->events_queued_max = es.events_queued_max;
	out->credit_stalls = es.credit_stalls;
}

void mr_sio_free(struct muxring_session *s)
{
	struct muxring_loop *loop = s->loop;
	struct muxring_stats st;

	if (s->fd >= 0)
		close(s->fd);
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
	loop->live_sessions--;
	if (s->on_lists & (1u << MR_LIST_DIRTY))
		mr_slist_remove(&loop->dirty, s, MR_LIST_DIRTY);
	if (s->on_lists & (1u << MR_LIST_STARVED))
		mr_slist_remove(&loop->starved, s, MR_LIST_STARVED);
	if (s->on_lists & (1u << MR_LIST_ALL))
		mr_slist_remove(&loop->sessions, s, MR_LIST_ALL);
	mr_timers_set(&loop->timers, s, 0);
	if (s->send)
		mr_loop_slot_put(loop, s->send);
	if (s->ai_list)
		freeaddrinfo(s->ai_list);
	mr_session_free(s->mr);
	free(s);
}
