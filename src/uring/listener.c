/*
 * listener.c - listen, accept on the ring, hand out server sessions.
 *
 * One accept is armed at a time: multishot (one SQE for every connection
 * to come) where the kernel has it, else re-armed after each completion.
 * Running out of descriptors or memory (-EMFILE, -ENFILE, -ENOMEM,
 * -ENOBUFS) pauses accepting for a short while on a ring timeout instead of
 * spinning; any other error but a transient one closes the listener with
 * that error. When the ring takes no SQE, arming waits for the next turn.
 */
#include "uring/listener.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "uring/net.h"
#include "uring/session_io.h"

#define RETRY_NS 50000000LL /* pause after running out of descriptors */

static int listener_new(struct muxring_loop *loop, int fd,
			const struct muxring_session_opts *opts,
			uint64_t user_data, struct muxring_listener **out)
{
	struct muxring_listener *l = mr_calloc(loop->mem, 1, sizeof(*l));

	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	l->loop = loop;
	l->fd = fd;
	l->user_data = user_data;
	if (opts)
		l->opts = *opts;
	l->next = loop->listeners;
	loop->listeners = l;
	mr_listener_step(l);
	*out = l;
	return 0;
}

int muxring_listen(struct muxring_loop *loop, const char *host,
		   const char *port, int backlog,
		   const struct muxring_session_opts *opts, uint64_t user_data,
		   struct muxring_listener **listenerp)
{
	int fd;

	if (!loop || !port || !listenerp)
		return -EINVAL;
	fd = mr_net_listen(host, port, backlog);
	if (fd < 0)
		return fd;
	return listener_new(loop, fd, opts, user_data, listenerp);
}

int muxring_listen_fd(struct muxring_loop *loop, int fd,
		      const struct muxring_session_opts *opts,
		      uint64_t user_data, struct muxring_listener **listenerp)
{
	int err = mr_net_adopt_stream(fd, loop && listenerp);

	if (err)
		return err;
	return listener_new(loop, fd, opts, user_data, listenerp);
}

int muxring_listener_port(const struct muxring_listener *l)
{
	if (!l || l->fd < 0)
		return -EBADF;
	return mr_net_local_port(l->fd);
}

static void listener_sqe_done(struct muxring_listener *l,
			      struct io_uring_sqe *sqe, enum mr_op_tag tag)
{
	io_uring_sqe_set_data64(sqe, mr_op_data(l, tag));
	l->inflight++;
}

static void arm_accept(struct muxring_listener *l)
{
	struct io_uring_sqe *sqe = mr_loop_sqe(l->loop);

	if (!sqe)
		return;
	if (l->loop->features & MUXRING_FEAT_ACCEPT_MULTISHOT)
		io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL,
					       SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	listener_sqe_done(l, sqe, MR_OP_ACCEPT);
	l->accept_armed = true;
}

/* Without an SQE for the pause, the next turn re-arms the accept. */
static void arm_retry(struct muxring_listener *l)
{
	struct io_uring_sqe *sqe = mr_loop_sqe(l->loop);

	if (!sqe)
		return;
	l->retry_ts.tv_sec = 0;
	l->retry_ts.tv_nsec = RETRY_NS;
	io_uring_prep_timeout(sqe, &l->retry_ts, 0, 0);
	listener_sqe_done(l, sqe, MR_OP_LISTEN_AUX);
	l->retry_armed = true;
}

/* Cancels the armed accept and retry timer, each once. */
static void cancel_armed(struct muxring_listener *l)
{
	struct io_uring_sqe *sqe;

	if (l->accept_armed && !l->accept_cancelled &&
	    (sqe = mr_loop_sqe(l->loop))) {
		io_uring_prep_cancel64(sqe, mr_op_data(l, MR_OP_ACCEPT), 0);
		listener_sqe_done(l, sqe, MR_OP_LISTEN_AUX);
		l->accept_cancelled = true;
	}
	if (l->retry_armed && !l->retry_cancelled &&
	    (sqe = mr_loop_sqe(l->loop))) {
		io_uring_prep_timeout_remove(sqe, mr_op_data(l, MR_OP_LISTEN_AUX),
					     0);
		listener_sqe_done(l, sqe, MR_OP_LISTEN_AUX);
		l->retry_cancelled = true;
	}
}

void mr_listener_step(struct muxring_listener *l)
{
	struct muxring_cqe *cqe;

	if (l->closed_posted || l->loop->destroying)
		return;
	if (!l->closing) {
		if (!l->accept_armed && !l->retry_armed)
			arm_accept(l);
		return;
	}
	cancel_armed(l);
	if (l->inflight)
		return;
	cqe = mr_cq_push(&l->loop->cq);
	if (!cqe)
		return;
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	cqe->type = MUXRING_CQE_LISTENER_CLOSED;
	cqe->res = l->error;
	cqe->listener = l;
	cqe->user_data = l->user_data;
	l->closed_posted = true;
}

/* Stops the listener: cancels what is in flight; the entry is posted by
 * the next step once everything is back. */
static void begin_close(struct muxring_listener *l, int error)
{
	if (l->closing)
		return;
	l->closing = true;
	l->error = error;
	cancel_armed(l);
}

int muxring_listener_close(struct muxring_listener *l)
{
	if (l)
		begin_close(l, 0);
	return 0;
}

static void accepted(struct muxring_listener *l, int fd)
{
	struct muxring_session *s;

	if (l->closing || l->loop->destroying) {
		close(fd);
		return;
	}
	mr_net_tune(fd);
	if (mr_sio_create(l->loop, fd, MUXRING_SERVER, &l->opts, NULL,
			  l->user_data, MR_SIO_OPEN, &s) == 0)
		s->listener = l;
}

void mr_listener_complete(struct muxring_listener *l, enum mr_op_tag tag,
			  const struct io_uring_cqe *cqe)
{
	bool last = !(cqe->flags & IORING_CQE_F_MORE);
	int res = cqe->res;

	if (last)
		l->inflight--;
	if (tag == MR_OP_LISTEN_AUX) {
		/* The retry timeout fired or was removed; a cancel's own
		 * completion needs nothing more. */
		if (res == -ETIME || (res == -ECANCELED && l->retry_armed))
			l->retry_armed = false;
		goto out;
	}
	if (last)
		l->accept_armed = false;
	if (res >= 0) {
		accepted(l, res);
		goto out;
	}
	switch (res) {
	case -ECANCELED:
	case -EINTR:
	case -EAGAIN:
	case -ECONNABORTED:
	case -EPROTO:
	case -EPERM:
		break;
	case -EMFILE:
	case -ENFILE:
	case -ENOBUFS:
	case -ENOMEM:
		if (!l->closing && !l->loop->destroying && !l->retry_armed &&
		    !l->accept_armed)
			arm_retry(l);
		break;
	default:
		begin_close(l, res);
		break;
	}
out:
	mr_listener_step(l);
}

void mr_listener_free(struct muxring_listener *l)
{
	struct muxring_listener **pp;
	struct muxring_session *s;

	for (pp = &l->loop->listeners; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	/* Sessions it accepted whose READY is not out yet forget it. */
	for (s = l->loop->sessions.head; s; s = s->next[MR_LIST_ALL])
		if (s->listener == l)
			s->listener = NULL;
	if (l->fd >= 0)
		close(l->fd);
	mr_free(l->loop->mem, l);
}
