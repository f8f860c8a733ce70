/*
 * session_api.c - the public session calls: create on an fd, dial, go
 * away, close, user data.
 *
 * Each call does its part in the engine and marks the session dirty; what
 * it implies on the wire leaves with the next turn of the loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"
#include "uring/net.h"
#include "uring/filter_io.h"
#include "uring/session_io.h"

int muxring_session_create(struct muxring_loop *loop, int fd,
			   enum muxring_role role,
			   const struct muxring_session_opts *opts,
			   uint64_t user_data, struct muxring_session **sessp)
{
	int err = mr_net_adopt_stream(fd, loop && sessp);

	if (err)
		return err;
	mr_net_tune(fd);
	return mr_sio_create(loop, fd, role, opts, NULL, user_data,
			     MR_SIO_OPEN, sessp);
}

int muxring_connect(struct muxring_loop *loop, const char *host,
		    const char *port, const struct muxring_session_opts *opts,
		    uint64_t user_data, struct muxring_session **sessp)
{
	struct muxring_session *s;
	struct addrinfo *list;
	int err;

	if (!loop || !port || !sessp)
		return -EINVAL;
	err = mr_net_resolve(host, port, false, &list);
	if (err)
		return err;
	err = mr_sio_create(loop, -1, MUXRING_CLIENT, opts, host ? host
			    : "127.0.0.1", user_data, MR_SIO_CONNECTING, &s);
	if (err) {
		freeaddrinfo(list);
		return err;
	}
	s->ai_list = s->ai_cur = list;
	err = mr_sio_connect_next(s);
	if (err) {
		/* Not even a socket: the session never existed. */
		mr_sio_free(s);
		return err;
	}
	*sessp = s;
	return 0;
}

/* The debug text of a GOAWAY: the caller's, or the code's meaning. */
static const char *debug_text(uint32_t code, const char *debug,
			      size_t *debug_len)
{
	if (debug)
		return debug;
	debug = muxring_strerror(MUXRING_ERR(code));
	*debug_len = strlen(debug);
	return debug;
}

int muxring_session_goaway(struct muxring_session *sess, uint32_t code,
			   const char *debug, size_t debug_len)
{
	int err;

	if (!sess)
		return -EINVAL;
	debug = debug_text(code, debug, &debug_len);
	err = muxring_engine_goaway(sess->engine, code, debug, debug_len);
	mr_loop_mark_dirty(sess);
	return err;
}

int muxring_session_close(struct muxring_session *sess, uint32_t code,
			  const char *debug, size_t debug_len)
{
	int err;

	if (!sess)
		return -EINVAL;
	if (sess->flags & MR_SIO_CLOSE_ASKED || muxring_engine_ended(sess->engine))
		return 0;
	debug = debug_text(code, debug, &debug_len);
	if (debug_len > MR_FRAME_MAX_LEN - MR_GOAWAY_FIXED_LEN)
		return -EINVAL;
	sess->flags |= MR_SIO_CLOSE_ASKED;
	err = muxring_engine_close(sess->engine, code, debug, debug_len);
	mr_loop_mark_dirty(sess);
	return err;
}

#define HEARTBEAT_INTERVAL_NS 10000000000ull
#define HEARTBEAT_TOLERANCE_NS 15000000000ull

int muxring_session_heartbeat(struct muxring_session *sess,
			      uint64_t interval_ns, uint64_t tolerance_ns)
{
	uint64_t now = muxring_now_ns();
	int err;

	if (!sess)
		return -EINVAL;
	if (!interval_ns)
		interval_ns = HEARTBEAT_INTERVAL_NS;
	if (!tolerance_ns)
		tolerance_ns = HEARTBEAT_TOLERANCE_NS;
	err = muxring_engine_heartbeat(sess->engine, interval_ns, tolerance_ns,
				       now, now ^ (uint64_t)(uintptr_t)sess);
	if (err)
		return err;
	/* The first beat's time is the session's earliest deadline now. */
	mr_timers_set(&sess->loop->timers, sess, mr_sio_next_deadline(sess));
	mr_loop_mark_dirty(sess);
	return 0;
}

int muxring_session_heartbeat_beat(struct muxring_session *sess)
{
	int err;

	if (!sess)
		return -EINVAL;
	muxring_engine_set_now(sess->engine, muxring_now_ns());
	err = muxring_engine_heartbeat_beat(sess->engine);
	if (!err)
		mr_loop_mark_dirty(sess);
	return err;
}

void muxring_session_set_data(struct muxring_session *sess,
			      uint64_t user_data)
{
	sess->user_data = user_data;
}

uint64_t muxring_session_data(const struct muxring_session *sess)
{
	return sess->user_data;
}

int muxring_session_fd(const struct muxring_session *sess)
{
	return sess->fd;
}

const struct muxring_filter *
muxring_session_filter(const struct muxring_session *sess)
{
	return sess->fio ? sess->fio->filter : NULL;
}

void *muxring_session_filter_state(const struct muxring_session *sess)
{
	return sess->fio ? sess->fio->state : NULL;
}
