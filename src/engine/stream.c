/*
 * stream.c - one stream's life: writes, half-close, close, reset, deadlines.
 *
 * A stream has two directions with their own states (enum mr_send_state,
 * enum mr_recv_state). It is finished, forgotten by the session and
 * reported once with STREAM_CLOSED when FIN has gone both ways (or this side
 * closed it and its FIN is out), or when it is reset. Writes are not copied:
 * each one stays on the stream's list, referencing the caller's buffer,
 * until the transport has taken its last byte.
 *
 * The memory of a stream is freed when its reference count drops to zero:
 * the session's map, every queued segment, every view the application holds
 * and the STREAM_CLOSED event each hold one.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/session_internal.h"

struct mr_stream *mr_stream_new(struct mr_session *sess, uint32_t id,
				bool local)
{
	struct mr_stream *stream = calloc(1, sizeof(*stream));

	if (!stream)
		return NULL;
	stream->session = sess;
	stream->id = id;
	stream->refs = 1;
	stream->send_window = MR_INITIAL_WINDOW;
	stream->recv_window = sess->cfg.window;
	/* The peer announced its streams itself. */
	stream->flags |= local ? MR_STREAM_LOCAL : MR_STREAM_SYN_SENT;
	if (mr_stream_map_put(&sess->streams, id, stream)) {
		free(stream);
		return NULL;
	}
	return stream;
}

void mr_stream_ref(struct mr_stream *stream)
{
	stream->refs++;
}

/* A finished stream is out of the map but may still be referenced (views,
 * its STREAM_CLOSED event, queued segments); the session keeps such streams
 * on a list, linked through the write-list pointers they no longer need, so
 * that freeing the session can detach them. */
static void join_finished_list(struct mr_stream *stream)
{
	struct mr_session *sess = stream->session;

	stream->finished_prev = NULL;
	stream->finished_next = sess->finished;
	if (sess->finished)
		sess->finished->finished_prev = stream;
	sess->finished = stream;
}

static void leave_finished_list(struct mr_stream *stream)
{
	if (stream->finished_prev)
		stream->finished_prev->finished_next = stream->finished_next;
	else
		stream->session->finished = stream->finished_next;
	if (stream->finished_next)
		stream->finished_next->finished_prev = stream->finished_prev;
}

void mr_stream_detach_finished(struct mr_session *sess)
{
	struct mr_stream *stream = sess->finished;

	while (stream) {
		struct mr_stream *next = stream->finished_next;

		stream->session = NULL;
		stream->finished_prev = stream->finished_next = NULL;
		stream = next;
	}
	sess->finished = NULL;
}

void mr_stream_unref(struct mr_stream *stream)
{
	if (--stream->refs)
		return;
	if (stream->session && (stream->flags & MR_STREAM_FINISHED))
		leave_finished_list(stream);
	free(stream);
}

/* Writes kept per session for reuse; beyond it they are freed. */
#define WRITE_CACHE_MAX 64u

/* Drops the write's buffer and keeps the write for the session to reuse;
 * frees it when the stream has no session any more or the cache is full. */
static void free_write(struct mr_stream *stream, struct mr_write *write)
{
	struct mr_session *sess = stream->session;

	mr_buf_unref(write->buf);
	if (sess && sess->write_cache_count < WRITE_CACHE_MAX) {
		write->next = sess->write_cache;
		sess->write_cache = write;
		sess->write_cache_count++;
		return;
	}
	free(write);
}

void mr_stream_free_write_cache(struct mr_session *sess)
{
	struct mr_write *write;

	while ((write = sess->write_cache)) {
		sess->write_cache = write->next;
		free(write);
	}
	sess->write_cache_count = 0;
}

static struct mr_write *alloc_write(struct mr_session *sess)
{
	struct mr_write *write = sess->write_cache;

	if (!write)
		return malloc(sizeof(*write));
	sess->write_cache = write->next;
	sess->write_cache_count--;
	return write;
}

static void emit_write_done(struct mr_stream *stream, struct mr_write *write,
			    int64_t result)
{
	struct mr_event ev = {
		.type = MR_EV_WRITE_DONE,
		.stream = stream,
		.result = result,
		.user_data = write->user_data,
	};

	if (!stream->session)
		return;
	if (stream->flags & MR_STREAM_HEARTBEAT) {
		/* An echo left: only now may the peer send more to echo, so a
		 * peer that never reads its echoes cannot grow our queue. */
		if (!(stream->flags & MR_STREAM_LOCAL) && result > 0)
			mr_stream_credit(stream, (uint32_t)result);
		return;
	}
	mr_session_emit(stream->session, &ev);
}

bool mr_stream_wants_send(const struct mr_stream *stream)
{
	const struct mr_session *sess = stream->session;
	const struct mr_write *next = stream->commit_next;

	if (!sess || sess->ended || (stream->flags & MR_STREAM_FINISHED))
		return false;
	if (sess->cfg.typed && (stream->flags & MR_STREAM_LOCAL) &&
	    !(stream->flags & MR_STREAM_SYN_SENT))
		return true;
	if (next)
		return next->len == 0 || stream->send_window > 0;
	return stream->send_state == MR_SEND_FIN_QUEUED;
}

void mr_stream_update_ready(struct mr_stream *stream)
{
	struct mr_session *sess = stream->session;

	/* A stream that stops wanting to send stays on the ready list until
	 * it reaches the head, which keeps the list singly linked. */
	if (sess && mr_stream_wants_send(stream))
		mr_outbound_schedule(sess, stream);
}

/* Reports and frees the writes at the head of the list that are fully
 * committed and fully taken by the transport. */
static void complete_writes(struct mr_stream *stream)
{
	struct mr_write *write;

	while ((write = stream->writes) && write != stream->commit_next &&
	       write->acked == write->len) {
		stream->writes = write->next;
		if (!stream->writes)
			stream->writes_tail = NULL;
		emit_write_done(stream, write, (int64_t)write->len);
		free_write(stream, write);
	}
}

void mr_stream_write_acked(struct mr_stream *stream, struct mr_write *write,
			   size_t len)
{
	write->acked += len;
	if (write->failed) {
		if (write->acked == write->committed)
			free_write(stream, write);
		return;
	}
	complete_writes(stream);
}

/* Reports every write from `write` on as failed and unlinks it; writes
 * with pieces still in the ring are freed when those are sent. */
static void fail_write_chain(struct mr_stream *stream, struct mr_write *write,
			     int err)
{
	while (write) {
		struct mr_write *next = write->next;

		emit_write_done(stream, write, err);
		if (write->acked < write->committed)
			write->failed = true;
		else
			free_write(stream, write);
		write = next;
	}
}

void mr_stream_fail_writes(struct mr_stream *stream, int err)
{
	fail_write_chain(stream, stream->writes, err);
	stream->writes = stream->writes_tail = stream->commit_next = NULL;
}

void mr_stream_fail_pending_writes(struct mr_stream *stream, int err)
{
	struct mr_write *pending = stream->commit_next, *prev = NULL;

	if (!pending)
		return;
	if (pending != stream->writes) {
		for (prev = stream->writes; prev->next != pending;
		     prev = prev->next)
			;
		prev->next = NULL;
	} else {
		stream->writes = NULL;
	}
	stream->writes_tail = prev;
	stream->commit_next = NULL;
	fail_write_chain(stream, pending, err);
	mr_stream_update_ready(stream);
}

void mr_stream_credit(struct mr_stream *stream, uint32_t n)
{
	struct mr_session *sess = stream->session;
	uint32_t grant;

	if (!sess || stream->recv_state != MR_RECV_OPEN ||
	    (stream->flags & MR_STREAM_FINISHED))
		return;
	stream->recv_consumed += n;
	grant = stream->recv_consumed;
	if (grant < sess->cfg.window / 4)
		return;
	if (mr_outbound_wndinc(sess, stream->id, grant))
		return;
	stream->recv_window += grant;
	stream->recv_consumed = 0;
}

/* Unlinks and frees the stream's deadline record, if it has one. */
static void leave_deadline_list(struct mr_stream *stream)
{
	struct mr_deadline *dl = stream->deadline;

	if (!dl)
		return;
	if (dl->prev)
		dl->prev->next = dl->next;
	else
		stream->session->deadlines = dl->next;
	if (dl->next)
		dl->next->prev = dl->prev;
	free(dl);
	stream->deadline = NULL;
	stream->flags &= ~MR_STREAM_ON_DEADLINES;
}

void mr_stream_update_deadline_list(struct mr_stream *stream)
{
	const struct mr_deadline *dl = stream->deadline;

	if (dl && (!(dl->read || dl->write) ||
		   (stream->flags & MR_STREAM_FINISHED)))
		leave_deadline_list(stream);
}

void mr_stream_free_deadlines(struct mr_session *sess)
{
	struct mr_deadline *dl = sess->deadlines;

	while (dl) {
		struct mr_deadline *next = dl->next;

		dl->stream->deadline = NULL;
		dl->stream->flags &= ~MR_STREAM_ON_DEADLINES;
		free(dl);
		dl = next;
	}
	sess->deadlines = NULL;
}

/* True once the application knows the stream (it opened it, or it got the
 * STREAM_ACCEPTED event). */
static bool visible_to_app(const struct mr_stream *stream)
{
	return (stream->flags & (MR_STREAM_LOCAL | MR_STREAM_ACCEPTED)) &&
	       !(stream->flags & MR_STREAM_HEARTBEAT);
}

void mr_stream_finish(struct mr_stream *stream, uint32_t code, int err,
		      enum mr_close_reason reason)
{
	struct mr_session *sess = stream->session;

	if (stream->flags & MR_STREAM_FINISHED)
		return;
	stream->flags |= MR_STREAM_FINISHED;
	stream->end_error = err ? err : MUXRING_ERR(MUXRING_STREAM_CLOSED);
	mr_stream_fail_writes(stream, stream->end_error);
	if (!sess)
		return;
	leave_deadline_list(stream);
	if (stream->flags & MR_STREAM_TYPE_PENDING)
		sess->accept_pending--;
	if (visible_to_app(stream)) {
		struct mr_event ev = {
			.type = MR_EV_STREAM_CLOSED,
			.stream = stream,
			.code = code,
			.result = err,
			.close_reason = reason,
		};

		mr_stream_ref(stream);
		mr_session_emit(sess, &ev);
	}
	mr_stream_map_del(&sess->streams, stream->id);
	join_finished_list(stream);
	mr_stream_unref(stream);
}

void mr_stream_check_done(struct mr_stream *stream)
{
	if (stream->send_state == MR_SEND_FIN_SENT &&
	    stream->recv_state != MR_RECV_OPEN)
		mr_stream_finish(stream, MUXRING_NO_ERROR, 0, MR_CLOSE_CLEAN);
}

void mr_stream_recv_fin(struct mr_stream *stream)
{
	if (stream->recv_state != MR_RECV_OPEN)
		return;
	stream->recv_state = MR_RECV_FIN;
	if (visible_to_app(stream)) {
		struct mr_event ev = {.type = MR_EV_EOF, .stream = stream};

		mr_session_emit(stream->session, &ev);
	}
	mr_stream_check_done(stream);
}

static int usable_error(const struct mr_stream *stream)
{
	const struct mr_session *sess = stream->session;

	if (!sess || sess->ended)
		return MUXRING_ERR(MUXRING_SESSION_CLOSED);
	if (stream->flags & MR_STREAM_FINISHED)
		return stream->end_error;
	return 0;
}

int mr_stream_write(struct mr_stream *stream, struct mr_buf *buf,
		    const uint8_t *data, size_t len, uint64_t user_data)
{
	struct mr_write *write;
	int err = usable_error(stream);

	if (err)
		return err;
	if (stream->send_state != MR_SEND_OPEN)
		return MUXRING_ERR(MUXRING_STREAM_CLOSED);
	write = alloc_write(stream->session);
	if (!write)
		return -ENOMEM;
	*write = (struct mr_write){
		.buf = buf, .data = data, .len = len, .user_data = user_data,
	};
	mr_buf_ref(buf);
	if (stream->writes_tail)
		stream->writes_tail->next = write;
	else
		stream->writes = write;
	stream->writes_tail = write;
	if (!stream->commit_next)
		stream->commit_next = write;
	mr_stream_update_ready(stream);
	return 0;
}

/* Closing or resetting what is already over is a no-op, as with close(2)
 * on a socket whose peer already left. */
static bool is_over(const struct mr_stream *stream)
{
	return usable_error(stream) != 0;
}

int mr_stream_close_write(struct mr_stream *stream)
{
	if (is_over(stream))
		return 0;
	if (stream->send_state == MR_SEND_OPEN) {
		stream->send_state = MR_SEND_FIN_QUEUED;
		mr_stream_update_ready(stream);
	}
	return 0;
}

/*
 * Closing while the peer's window is used up: the peer may have data it
 * can never send (nothing is credited once closed), and would wait for
 * window forever instead of learning that nobody reads. Any window makes
 * it send, and what it sends is answered with RST StreamClosed, which ends
 * its writes; one byte wastes the least. A peer with nothing more to send
 * sends its FIN, which needs no window, and ends cleanly.
 */
static void unblock_peer_on_close(struct mr_stream *stream)
{
	if (stream->recv_state == MR_RECV_OPEN && !stream->recv_window &&
	    !mr_outbound_wndinc(stream->session, stream->id, 1))
		stream->recv_window = 1;
}

int mr_stream_close(struct mr_stream *stream)
{
	if (is_over(stream))
		return 0;
	mr_stream_close_write(stream);
	unblock_peer_on_close(stream);
	stream->recv_state = MR_RECV_CLOSED;
	mr_stream_check_done(stream);
	return 0;
}

int mr_stream_reset(struct mr_stream *stream, uint32_t code)
{
	struct mr_session *sess = stream->session;
	int err;

	if (is_over(stream))
		return 0;
	/* A stream whose SYN never left is unknown to the peer. */
	if (!(stream->flags & MR_STREAM_LOCAL) ||
	    (stream->flags & MR_STREAM_SYN_SENT)) {
		err = mr_outbound_rst(sess, stream->id, code);
		if (err)
			return err;
	}
	mr_stream_finish(stream, code,
			 MUXRING_ERR(code ? code : MUXRING_STREAM_RESET),
			 MR_CLOSE_LOCAL_RESET);
	return 0;
}

int mr_stream_set_deadline(struct mr_stream *stream,
			   enum mr_deadline_kind kind, uint64_t when)
{
	struct mr_session *sess = stream->session;
	struct mr_deadline *dl = stream->deadline;

	if (!dl) {
		/* Nothing to clear; a stream that is over never expires. */
		if (!when || !sess || (stream->flags & MR_STREAM_FINISHED))
			return 0;
		dl = calloc(1, sizeof(*dl));
		if (!dl)
			return -ENOMEM;
		dl->stream = stream;
		dl->next = sess->deadlines;
		if (sess->deadlines)
			sess->deadlines->prev = dl;
		sess->deadlines = dl;
		stream->deadline = dl;
		stream->flags |= MR_STREAM_ON_DEADLINES;
	}
	if (kind == MR_DEADLINE_READ)
		dl->read = when;
	else
		dl->write = when;
	mr_stream_update_deadline_list(stream);
	return 0;
}

uint32_t mr_stream_id(const struct mr_stream *stream)
{
	return stream->id;
}

void mr_stream_set_user(struct mr_stream *stream, void *user)
{
	stream->user = user;
}

void *mr_stream_user(const struct mr_stream *stream)
{
	return stream->user;
}

struct mr_session *mr_stream_session(const struct mr_stream *stream)
{
	return stream->session;
}
