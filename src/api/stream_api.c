/*
 * stream_api.c - the public stream calls: open, write (copied or from the
 * send arena), close-write, close, reset, deadlines.
 *
 * Each is the public engine's call (muxring_engine.h) on the same handle,
 * plus what the loop adds: writes copied into the send arena, deadlines on
 * the ring's timer, and the session marked dirty, so that its frames leave
 * with the next turn's single sendmsg.
 */
#include <errno.h>

#include "uring/session_io.h"

static inline struct mr_stream *st(struct muxring_stream *stream)
{
	return (struct mr_stream *)stream;
}

/* Marks the stream's session dirty; returns err for tail calls. */
static int touched(struct muxring_stream *stream, int err)
{
	struct muxring_session *s = mr_sio_of_stream(st(stream));

	if (s)
		mr_loop_mark_dirty(s);
	return err;
}

static int open_stream(struct muxring_session *sess, bool typed,
		       uint32_t type, uint64_t user_data,
		       struct muxring_stream **streamp)
{
	int err;

	if (!sess || !streamp)
		return -EINVAL;
	if (sess->flags & MR_SIO_CLOSE_ASKED)
		return MUXRING_ERR(MUXRING_SESSION_CLOSED);
	err = typed ? muxring_engine_stream_open_typed(sess->engine, type,
						       user_data, streamp)
		    : muxring_engine_stream_open(sess->engine, user_data,
						 streamp);
	if (!err)
		mr_loop_mark_dirty(sess);
	return err;
}

int muxring_stream_open(struct muxring_session *sess, uint64_t user_data,
			struct muxring_stream **streamp)
{
	return open_stream(sess, false, 0, user_data, streamp);
}

int muxring_stream_open_typed(struct muxring_session *sess,
			      uint32_t stream_type, uint64_t user_data,
			      struct muxring_stream **streamp)
{
	return open_stream(sess, true, stream_type, user_data, streamp);
}

uint32_t muxring_stream_id(const struct muxring_stream *stream)
{
	return muxring_engine_stream_id(stream);
}

struct muxring_session *muxring_stream_session(const struct muxring_stream *stream)
{
	return mr_sio_of_stream(st((struct muxring_stream *)stream));
}

void muxring_stream_set_data(struct muxring_stream *stream, uint64_t user_data)
{
	muxring_engine_stream_set_data(stream, user_data);
}

uint64_t muxring_stream_data(const struct muxring_stream *stream)
{
	return muxring_engine_stream_data(stream);
}

/* The copying write, with or without its WRITE_DONE. */
static int write_copy(struct muxring_stream *stream, const void *data,
		      size_t len, uint64_t user_data, bool quiet)
{
	struct muxring_session *s;
	struct mr_buf *buf;
	int err;

	if (!stream || (!data && len))
		return -EINVAL;
	s = mr_sio_of_stream(st(stream));
	if (!s)
		return MUXRING_ERR(MUXRING_SESSION_CLOSED);
	/* Small writes are packed back to back with the stream's other
	 * small writes; larger ones get a recycled heap block of their size
	 * class, whose reference the engine keeps until the kernel took the
	 * bytes. */
	if (len <= MR_BATCH_WRITE_MAX) {
		err = mr_stream_write_copy(st(stream), data, len, user_data,
					   quiet);
	} else {
		buf = mr_copy_cache_copy(s->loop->copies, data, len);
		if (!buf)
			return -ENOMEM;
		err = mr_stream_write(st(stream), buf, buf->data, len,
				      user_data);
		mr_buf_unref(buf);
		if (!err && quiet)
			mr_stream_write_silence(st(stream));
	}
	if (!err)
		mr_loop_mark_dirty(s);
	return err;
}

int muxring_stream_write(struct muxring_stream *stream, const void *data,
			 size_t len, uint64_t user_data)
{
	return write_copy(stream, data, len, user_data, false);
}

int muxring_stream_write_quiet(struct muxring_stream *stream, const void *data,
			       size_t len)
{
	return write_copy(stream, data, len, 0, true);
}

void *muxring_buf_get(struct muxring_loop *loop, size_t len)
{
	struct mr_buf *buf = mr_send_arena_get(loop->arena, len);

	return buf ? buf->data : NULL;
}

void muxring_buf_put(struct muxring_loop *loop, void *p)
{
	struct mr_buf *buf = p ? mr_send_arena_lookup(loop->arena, p) : NULL;

	if (buf)
		mr_buf_unref(buf);
}

size_t muxring_buf_size(const struct muxring_loop *loop)
{
	return loop->arena->buf_size;
}

int muxring_stream_write_zc(struct muxring_stream *stream, void *data,
			    size_t len, uint64_t user_data)
{
	struct muxring_session *s;
	struct mr_buf *buf;
	int err;

	if (!stream)
		return -EINVAL;
	s = mr_sio_of_stream(st(stream));
	if (!s)
		return MUXRING_ERR(MUXRING_SESSION_CLOSED);
	buf = mr_send_arena_lookup(s->loop->arena, data);
	if (!buf)
		return -EINVAL;
	if ((uint8_t *)data + len > buf->data + buf->cap) {
		mr_buf_unref(buf); /* it was given to us whatever happens */
		return -EINVAL;
	}
	/* The application's reference passes to the write: the engine took
	 * its own, and ours goes now. The buffer returns to the arena when
	 * the engine lets go, after the kernel took its last byte. */
	err = muxring_engine_stream_write_buf(stream, mr_engine_buf_of(buf),
					      data, len, user_data);
	mr_buf_unref(buf);
	return touched(stream, err);
}

int muxring_stream_close_write(struct muxring_stream *stream)
{
	return touched(stream, muxring_engine_stream_close_write(stream));
}

int muxring_stream_close(struct muxring_stream *stream)
{
	return touched(stream, muxring_engine_stream_close(stream));
}

int muxring_stream_reset(struct muxring_stream *stream, uint32_t code)
{
	return touched(stream, muxring_engine_stream_reset(stream, code));
}

int muxring_stream_set_deadline(struct muxring_stream *stream, unsigned which,
				uint64_t when_ns)
{
	struct muxring_session *s;
	int err = muxring_engine_stream_set_deadline(stream, which, when_ns);

	if (err)
		return err;
	s = mr_sio_of_stream(st(stream));
	if (s) {
		/* Only an earlier deadline needs the session re-keyed; a key
		 * left early by a later or cleared one costs one empty
		 * expiry. (No scan of the session's deadlines per call.) */
		if (when_ns && (!s->deadline || when_ns < s->deadline))
			mr_timers_set(&s->loop->timers, s, when_ns);
		mr_loop_mark_dirty(s);
	}
	return 0;
}
