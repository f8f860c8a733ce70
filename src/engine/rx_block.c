/*
 * rx_block.c - where small DATA payloads go: one growing block per stream.
 *
 * A peer may cut a stream's bytes into frames as small as it likes. Handing
 * each piece up as a view of its own would cost an event, an entry and a
 * buffer reference per frame, so memory would follow the number of frames
 * instead of the number of bytes. So a payload shorter than MR_RX_VIEW_MIN
 * is copied to the end of its stream's block, and while the DATA event that
 * ends at the block's fill point is still queued (the driver has not polled
 * it yet), that event's view just grows. A stream thus raises at most one
 * DATA event for its small payloads per poll of the queue, and its copies
 * cost their bytes plus at most one partly filled block.
 *
 * A block is referenced by its stream (while it is the stream's current
 * block) and by every view into it. Once only the stream holds it, it is
 * refilled from the start; when it is full, the stream takes a new one of
 * twice the size (from MR_RX_BLOCK_MIN up to MR_RX_BLOCK_MAX), so a stream
 * that gets a trickle keeps a small block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session_internal.h"

static void release_block(struct mr_buf *buf)
{
	free(buf);
}

static bool is_copy(const struct mr_buf *buf)
{
	return buf->release == release_block;
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
			.release = release_block,
		},
	};
	count_copy(sess, cap);
	return blk;
}

struct mr_buf *mr_rx_copy(struct mr_session *sess, const uint8_t *data,
			  size_t len)
{
	struct mr_rx_block *blk = block_new(sess, len);

	if (!blk)
		return NULL;
	memcpy(blk->buf.data, data, len);
	blk->fill = (uint32_t)len;
	return &blk->buf;
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

void mr_rx_block_seal(struct mr_stream *stream)
{
	if (stream->rx_block)
		stream->rx_block->event_queued = false;
}

/* The block the next len bytes go to: the current one when they fit (from
 * its start again when no view uses it), else a new, larger one. */
static struct mr_rx_block *block_for(struct mr_stream *stream, size_t len)
{
	struct mr_rx_block *blk = stream->rx_block;
	size_t cap = MR_RX_BLOCK_MIN;

	if (blk && blk->buf.refs == 1) {
		blk->fill = 0;
		blk->event_queued = false;
	}
	if (blk && blk->buf.cap - blk->fill >= len)
		return blk;
	if (blk) {
		cap = blk->buf.cap * 2;
		if (cap > MR_RX_BLOCK_MAX)
			cap = MR_RX_BLOCK_MAX;
	}
	blk = block_new(stream->session, cap);
	if (!blk)
		return NULL;
	mr_rx_block_drop(stream);
	stream->rx_block = blk;
	return blk;
}

/* The stream's queued DATA event that ends where the block's bytes end, or
 * NULL when the driver has polled it (or there is none). */
static struct mr_event *queued_event(struct mr_session *sess,
				     struct mr_rx_block *blk)
{
	struct mr_event *ev;

	if (!blk->event_queued)
		return NULL;
	ev = mr_evq_find(&sess->events, blk->event_seq);
	if (ev && ev->type == MR_EV_DATA && ev->view.buf == &blk->buf &&
	    ev->view.data + ev->view.len == blk->buf.data + blk->fill)
		return ev;
	blk->event_queued = false;
	return NULL;
}

int mr_rx_block_append(struct mr_stream *stream, const uint8_t *data,
		       size_t len)
{
	struct mr_session *sess = stream->session;
	struct mr_rx_block *blk = block_for(stream, len);
	struct mr_event *queued, ev = {.type = MR_EV_DATA, .stream = stream};
	uint8_t *at;

	if (!blk)
		return -ENOMEM;
	at = blk->buf.data + blk->fill;
	memcpy(at, data, len);
	queued = queued_event(sess, blk);
	blk->fill += (uint32_t)len;
	mr_session_count_view(sess, len);
	if (queued) {
		queued->view.len += len;
		return 0;
	}
	mr_buf_ref(&blk->buf);
	mr_stream_ref(stream);
	ev.view = (struct mr_view){
		.stream = stream, .buf = &blk->buf, .data = at, .len = len,
	};
	if (!mr_session_emit(sess, &ev))
		return -ENOMEM;
	blk->event_queued = true;
	blk->event_seq = mr_evq_last_seq(&sess->events);
	return 0;
}
