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
 *
 * To keep an idle stream small, a stream names its block with a 16-bit slot
 * in a table of its session, and its last DATA event with the low 16 bits
 * of its sequence number. Beyond 65,535 streams of one session holding a
 * block at once, further small pieces are not merged but handed up each on
 * its own.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session_internal.h"

/* The allocator rides in the owner field: a block may outlive its
 * session (a view the application still holds). */
static void release_copy(struct mr_buf *buf)
{
	mr_free(buf->owner, buf);
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
	struct mr_rx_block *blk = mr_malloc(sess->cfg.mem, sizeof(*blk) + cap);

	if (!blk)
		return NULL;
	*blk = (struct mr_rx_block){
		.buf = {
			.refs = 1,
			.data = (uint8_t *)(blk + 1),
			.cap = cap,
			.release = release_copy,
			.owner = (void *)sess->cfg.mem,
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

/* ---- the session's table of blocks ------------------------------------- */

#define SLOTS_MAX 0xFFFFu
#define FREE_ENTRY(next) ((uintptr_t)(next) << 1 | 1u)

static struct mr_rx_block *current_block(const struct mr_stream *stream)
{
	const struct mr_session *sess = stream->session;

	if (!stream->rx_slot || !sess)
		return NULL;
	return (struct mr_rx_block *)sess->rx_blocks[stream->rx_slot - 1];
}

static bool grow_slots(struct mr_session *sess)
{
	uint32_t old = sess->rx_blocks_cap, cap = old ? old * 2 : 16, i;
	uintptr_t *table;

	if (cap > SLOTS_MAX)
		cap = SLOTS_MAX;
	if (cap <= old)
		return false;
	table = mr_realloc(sess->cfg.mem, sess->rx_blocks,
			   cap * sizeof(*table));
	if (!table)
		return false;
	for (i = old; i < cap; i++)
		table[i] = FREE_ENTRY(i + 1 < cap ? i + 2 : 0);
	sess->rx_blocks = table;
	sess->rx_blocks_cap = cap;
	sess->rx_blocks_free = old + 1;
	return true;
}

/* Makes blk the stream's block (taking over the caller's reference),
 * giving back the one it had. False when no slot is left. */
static bool install(struct mr_stream *stream, struct mr_rx_block *blk)
{
	struct mr_session *sess = stream->session;
	struct mr_rx_block *old = current_block(stream);
	uint32_t i;

	if (old) {
		sess->rx_blocks[stream->rx_slot - 1] = (uintptr_t)blk;
		mr_rx_buf_put(stream, &old->buf);
		return true;
	}
	if (!sess->rx_blocks_free && !grow_slots(sess))
		return false;
	i = sess->rx_blocks_free - 1;
	sess->rx_blocks_free = (uint32_t)(sess->rx_blocks[i] >> 1);
	sess->rx_blocks[i] = (uintptr_t)blk;
	stream->rx_slot = (uint16_t)(i + 1);
	return true;
}

void mr_rx_block_drop(struct mr_stream *stream)
{
	struct mr_rx_block *blk = current_block(stream);
	struct mr_session *sess = stream->session;
	uint32_t i = stream->rx_slot - 1u;

	stream->rx_slot = 0;
	if (!blk)
		return;
	sess->rx_blocks[i] = FREE_ENTRY(sess->rx_blocks_free);
	sess->rx_blocks_free = i + 1;
	mr_rx_buf_put(stream, &blk->buf);
}

void mr_rx_blocks_free(struct mr_session *sess)
{
	uint32_t i;

	for (i = 0; i < sess->rx_blocks_cap; i++)
		if (!(sess->rx_blocks[i] & 1u))
			mr_buf_unref(&((struct mr_rx_block *)sess->rx_blocks[i])->buf);
	mr_free(sess->cfg.mem, sess->rx_blocks);
	sess->rx_blocks = NULL;
	sess->rx_blocks_cap = sess->rx_blocks_free = 0;
}

/* ---- blocks and events ------------------------------------------------- */

/* The block the next `need` bytes go to: the current one when they fit
 * (from its start again when no view uses it), else a new, larger one.
 * NULL when memory or slots ran out. */
static struct mr_rx_block *block_for(struct mr_stream *stream, size_t need)
{
	struct mr_rx_block *blk = current_block(stream);
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
	if (blk && !install(stream, blk)) {
		mr_rx_buf_put(stream, &blk->buf);
		blk = NULL;
	}
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
	stream->rx_event_seq = (uint16_t)mr_evq_last_seq(&sess->events);
	stream->flags |= MR_STREAM_RX_EVENT;
	return 0;
}

/* The stream's last DATA event while it is still queued, else NULL. Its
 * sequence number is known by its low 16 bits: unambiguous while fewer
 * than 65,536 events are queued (else nothing is merged). */
static struct mr_event *queued_event(struct mr_stream *stream)
{
	struct mr_event_queue *q = &stream->session->events;
	uint32_t seq = q->popped +
		       (uint16_t)(stream->rx_event_seq - (uint16_t)q->popped);
	struct mr_event *ev;

	if (!(stream->flags & MR_STREAM_RX_EVENT) || q->count > UINT16_MAX)
		return NULL;
	ev = mr_evq_find(q, seq);
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
	const struct mr_rx_block *blk = current_block(stream);

	return blk && view->buf == &blk->buf &&
	       view->data + view->len == blk->buf.data + blk->fill &&
	       blk->buf.cap - blk->fill >= len;
}

/* Copies the view's bytes (a small view into some other buffer) into the
 * stream's block, leaving room for `more`, and points the view there.
 * Returns the block, or NULL (the view is unchanged). */
static struct mr_rx_block *move_to_block(struct mr_stream *stream,
					 struct mr_view *view, size_t more)
{
	struct mr_rx_block *blk = block_for(stream, view->len + more);
	uint8_t *at;

	if (!blk)
		return NULL;
	at = blk->buf.data + blk->fill;
	memcpy(at, view->data, view->len);
	blk->fill += (uint32_t)view->len;
	mr_rx_buf_put(stream, view->buf);
	mr_buf_ref(&blk->buf);
	view->buf = &blk->buf;
	view->data = at;
	return blk;
}

/* Appends a small piece to the stream's queued event; false when that
 * event cannot take it (a large view, a full block, or no block to be had:
 * the piece then starts an event of its own). */
static bool merge(struct mr_stream *stream, struct mr_event *ev,
		  const uint8_t *data, size_t len)
{
	struct mr_view *view = &ev->view;
	struct mr_rx_block *blk = current_block(stream);

	if (!grows_in_block(stream, view, len)) {
		if (view->len >= MR_RX_VIEW_MIN ||
		    (blk && view->buf == &blk->buf))
			return false;
		blk = move_to_block(stream, view, len);
		if (!blk)
			return false;
	}
	memcpy(blk->buf.data + blk->fill, data, len);
	blk->fill += (uint32_t)len;
	view->len += len;
	mr_session_count_view(stream->session, len);
	return true;
}

/* An exact copy of len bytes at data, as an event of its own. */
static int emit_copy(struct mr_stream *stream, const uint8_t *data,
		     size_t len)
{
	struct mr_rx_block *copy = block_new(stream->session, len);

	if (!copy)
		return -ENOMEM;
	memcpy(copy->buf.data, data, len);
	copy->fill = (uint32_t)len;
	return emit(stream, &copy->buf, copy->buf.data, len);
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
		return emit_copy(stream, data, len);
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
	if (flags & MR_RECV_COPY)
		return emit_copy(stream, data, len);
	mr_buf_ref(buf);
	return emit(stream, buf, data, len);
}

int mr_rx_deliver(struct mr_stream *stream, struct mr_buf *buf,
		  const uint8_t *data, size_t len, unsigned flags)
{
	struct mr_event *ev;

	if (len >= MR_RX_VIEW_MIN)
		return deliver_large(stream, buf, data, len, flags);
	ev = queued_event(stream);
	if (ev && merge(stream, ev, data, len))
		return 0;
	return start_small(stream, buf, data, len, flags);
}
