/*
 * rx_block.c - how DATA payloads reach the application: views, and one
 * growing block per stream where small pieces are merged.
 *
 * A peer may cut a stream's bytes into frames as small as it likes. Handing
 * each piece up as a view of its own would cost an event, an entry and a
 * buffer reference per frame, so memory would follow the number of frames
 * instead of the number of bytes. So a stream's DATA event stays open for
 * more while it is still queued (the driver has not polled it yet): a piece
 * shorter than MR_RX_VIEW_MIN that follows it is appended to it. The first
 * small piece is a view like any other (zero-copy, so a stream that gets one
 * small message per turn costs no copy and no allocation); a second one
 * moves the event's bytes into the stream's block and is copied behind
 * them, and later ones are copied there too. A stream thus raises one DATA
 * event per poll for its small pieces (one more when its block is full), and
 * its copies cost their bytes plus at most one partly filled block.
 *
 * A block is referenced by its stream (while it is the stream's current
 * block) and by every view into it. Once only the stream holds it, it is
 * refilled from the start; when it is full, the stream takes a new one of
 * twice the size (from MR_RX_BLOCK_MIN up to MR_RX_BLOCK_MAX), so a stream
 * that gets a trickle keeps a small block. Pieces of MR_RX_VIEW_MIN bytes or
 * more are views into the caller's buffer, or exact copies with
 * MR_RECV_COPY, an event each.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session_internal.h"

static void release_copy(struct mr_buf *buf)
{
	free(buf);
}

static bool is_copy(const struct mr_buf *buf)
{
	return buf->release == release_copy;
}

static void count_copy(struct mr_session *sess, size_t cap)
{
	sess->stats.rx_copy_bytes += cap;
	if (sess->stats.rx_copy_bytes > sess->stats.rx_copy_bytes_max)
		sess->stats.rx_copy_bytes_max = sess->stats.rx_copy_bytes;
}

static struct mr_rx_block *block_new(struct mr_session *sess, size_t cap)
{
	struct mr_rx_block *blk = malloc(sizeof(*blk) + cap);

	if (!blk)
		return NULL;
	*blk = (struct mr_rx_block){
		.buf = {
			.refs = 1,
			.data = (uint8_t *)(blk + 1),
			.cap = cap,
			.release = release_copy,
		},
	};
	count_copy(sess, cap);
	return blk;
}

void mr_rx_buf_put(struct mr_stream *stream, struct mr_buf *buf)
{
	if (buf->refs == 1 && is_copy(buf) && stream->session)
		stream->session->stats.rx_copy_bytes -= buf->cap;
	mr_buf_unref(buf);
}

void mr_rx_block_drop(struct mr_stream *stream)
{
	struct mr_rx_block *blk = stream->rx_block;

	if (!blk)
		return;
	stream->rx_block = NULL;
	mr_rx_buf_put(stream, &blk->buf);
}

/* The block the next `need` bytes go to: the current one when they fit
 * (from its start again when no view uses it), else a new, larger one. */
static struct mr_rx_block *block_for(struct mr_stream *stream, size_t need)
{
	struct mr_rx_block *blk = stream->rx_block;
	size_t cap = MR_RX_BLOCK_MIN;

	if (blk && blk->buf.refs == 1)
		blk->fill = 0;
	if (blk && blk->buf.cap - blk->fill >= need)
		return blk;
	if (blk)
		cap = blk->buf.cap * 2 < MR_RX_BLOCK_MAX ? blk->buf.cap * 2
							 : MR_RX_BLOCK_MAX;
	while (cap < need)
		cap *= 2;
	blk = block_new(stream->session, cap);
	if (!blk)
		return NULL;
	mr_rx_block_drop(stream);
	stream->rx_block = blk;
	return blk;
}

/* Queues a DATA event with a view of len bytes at data, in buf (whose
 * reference the caller took for it), and remembers it as the stream's
 * last. Returns 0 or -ENOMEM (the view was given back). */
static int emit(struct mr_stream *stream, struct mr_buf *buf,
		const uint8_t *data, size_t len)
{
	struct mr_session *sess = stream->session;
	struct mr_event ev = {.type = MR_EV_DATA, .stream = stream};

	mr_stream_ref(stream);
	ev.view = (struct mr_view){
		.stream = stream, .buf = buf, .data = data, .len = len,
	};
	mr_session_count_view(sess, len);
	stream->flags &= (uint16_t)~MR_STREAM_RX_EVENT;
	if (!mr_session_emit(sess, &ev))
		return -ENOMEM;
	stream->rx_event_seq = mr_evq_last_seq(&sess->events);
	stream->flags |= MR_STREAM_RX_EVENT;
	return 0;
}

/* The stream's last DATA event while it is still queued, else NULL. */
static struct mr_event *queued_event(struct mr_stream *stream)
{
	struct mr_event *ev;

	if (!(stream->flags & MR_STREAM_RX_EVENT))
		return NULL;
	ev = mr_evq_find(&stream->session->events, stream->rx_event_seq);
	if (ev && ev->type == MR_EV_DATA && ev->stream == stream)
		return ev;
	stream->flags &= (uint16_t)~MR_STREAM_RX_EVENT;
	return NULL;
}

/* True when view ends where the stream's block is filled up to, with room
 * for len more bytes behind it. */
static bool grows_in_block(const struct mr_stream *stream,
			   const struct mr_view *view, size_t len)
{
	const struct mr_rx_block *blk = stream->rx_block;

	return blk && view->buf == &blk->buf &&
	       view->data + view->len == blk->buf.data + blk->fill &&
	       blk->buf.cap - blk->fill >= len;
}

/* Copies the view's bytes (a small view into some other buffer) into the
 * stream's block, leaving room for `more`, and points the view there. */
static int move_to_block(struct mr_stream *stream, struct mr_view *view,
			 size_t more)
{
	struct mr_rx_block *blk = block_for(stream, view->len + more);
	uint8_t *at;

	if (!blk)
		return -ENOMEM;
	at = blk->buf.data + blk->fill;
	memcpy(at, view->data, view->len);
	blk->fill += (uint32_t)view->len;
	mr_rx_buf_put(stream, view->buf);
	mr_buf_ref(&blk->buf);
	view->buf = &blk->buf;
	view->data = at;
	return 0;
}

/* Appends a small piece to the stream's queued event; false when that
 * event cannot take it (a large view, or a full block). */
static bool merge(struct mr_stream *stream, struct mr_event *ev,
		  const uint8_t *data, size_t len, int *err)
{
	struct mr_view *view = &ev->view;
	struct mr_rx_block *blk;

	*err = 0;
	if (!grows_in_block(stream, view, len)) {
		if (view->len >= MR_RX_VIEW_MIN ||
		    (stream->rx_block && view->buf == &stream->rx_block->buf))
			return false;
		*err = move_to_block(stream, view, len);
		if (*err)
			return true;
	}
	blk = stream->rx_block;
	memcpy(blk->buf.data + blk->fill, data, len);
	blk->fill += (uint32_t)len;
	view->len += len;
	mr_session_count_view(stream->session, len);
	return true;
}

/* A small piece that starts an event: a view into buf, or, when buf is
 * about to be reused (MR_RECV_COPY), a copy in the stream's block. */
static int start_small(struct mr_stream *stream, struct mr_buf *buf,
		       const uint8_t *data, size_t len, unsigned flags)
{
	struct mr_rx_block *blk;
	uint8_t *at;

	if (!(flags & MR_RECV_COPY)) {
		mr_buf_ref(buf);
		return emit(stream, buf, data, len);
	}
	blk = block_for(stream, len);
	if (!blk)
		return -ENOMEM;
	at = blk->buf.data + blk->fill;
	memcpy(at, data, len);
	blk->fill += (uint32_t)len;
	mr_buf_ref(&blk->buf);
	return emit(stream, &blk->buf, at, len);
}

/* A piece of MR_RX_VIEW_MIN bytes or more: an event of its own. */
static int deliver_large(struct mr_stream *stream, struct mr_buf *buf,
			 const uint8_t *data, size_t len, unsigned flags)
{
	struct mr_rx_block *copy;

	if (!(flags & MR_RECV_COPY)) {
		mr_buf_ref(buf);
		return emit(stream, buf, data, len);
	}
	copy = block_new(stream->session, len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy->buf.data, data, len);
	copy->fill = (uint32_t)len;
	return emit(stream, &copy->buf, copy->buf.data, len);
}

int mr_rx_deliver(struct mr_stream *stream, struct mr_buf *buf,
		  const uint8_t *data, size_t len, unsigned flags)
{
	struct mr_event *ev;
	int err;

	if (len >= MR_RX_VIEW_MIN)
		return deliver_large(stream, buf, data, len, flags);
	ev = queued_event(stream);
	if (ev && merge(stream, ev, data, len, &err))
		return err;
	return start_small(stream, buf, data, len, flags);
}
