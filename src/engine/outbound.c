/*
 * outbound.c - what the session sends, and in which order.
 *
 * Output is built lazily, when the driver asks for iovecs, in two stages:
 *
 * 1. Control frames (RST, WNDINC, GOAWAY) are packed at once into one
 *    growable byte block. They jump ahead of stream data: a WNDINC or a
 *    heartbeat never waits behind megabytes of bulk payload. The block has
 *    a cap, so a peer that provokes replies and never reads them cannot
 *    make it grow without bound.
 * 2. Streams with something to send wait on a ready list. Each turn takes
 *    one frame (at most max_frame_payload bytes, within the peer's window)
 *    from the stream at the head and requeues it at the tail, so streams
 *    share the transport round-robin.
 *
 * Committed bytes go into a fixed ring of segments, one iovec each: frame
 * headers live inside their segment, payload segments point straight into
 * the writers' buffers. Nothing in the ring moves until the transport has
 * taken it, so a short send simply continues where it stopped.
 */
#include <errno.h>
#include <string.h>

#include "engine/session_internal.h"

/* Frame of type 0xF with no body: the Go reference reads 8 bytes past a
 * GOAWAY's end, and skipping this frame keeps it in sync (PROTOCOL.md). */
static const uint8_t goaway_sync_frame[MR_FRAME_HEADER_LEN] = {0, 0, 0, 0xF0};

/* The segment ring is allocated when the session has something to send,
 * small, and the small one is freed once the transport has taken all of
 * it: a quiet session holds one only while its frames are on the way, so
 * ten thousand of them hold none. Rings are not zeroed: ring_push clears
 * each slot as it is taken. */
static bool ring_ready(struct mr_session *sess)
{
	if (!sess->ring) {
		sess->ring = mr_malloc(sess->cfg.mem, MR_TX_RING_SMALL *
						      sizeof(*sess->ring));
		sess->ring_cap = sess->ring ? MR_TX_RING_SMALL : 0;
		sess->ring_head = 0;
	}
	return sess->ring != NULL;
}

static struct mr_tx_seg *ring_at(struct mr_session *sess, uint32_t i)
{
	return &sess->ring[(sess->ring_head + i) & (sess->ring_cap - 1)];
}

/*
 * Moves a small ring into a full-size one; false when it cannot. The
 * segments move, so this happens only between frames and while the
 * transport holds no iovec into them (frame headers live in the segments).
 */
static bool ring_grow(struct mr_session *sess)
{
	struct mr_tx_seg *full;

	if (sess->ring_cap >= MR_TX_RING_SLOTS || sess->ring_offered)
		return false;
	full = mr_malloc(sess->cfg.mem, MR_TX_RING_SLOTS * sizeof(*full));
	if (!full)
		return false;
	for (uint32_t i = 0; i < sess->ring_count; i++) {
		const struct mr_tx_seg *seg = ring_at(sess, i);

		full[i] = *seg;
		if (seg->base == seg->inline_bytes)
			full[i].base = full[i].inline_bytes;
	}
	mr_free(sess->cfg.mem, sess->ring);
	sess->ring = full;
	sess->ring_cap = MR_TX_RING_SLOTS;
	sess->ring_head = 0;
	return true;
}

static void ring_release(struct mr_session *sess)
{
	mr_free(sess->cfg.mem, sess->ring);
	sess->ring = NULL;
	sess->ring_cap = 0;
	sess->ring_head = 0;
}

static void release_segment(struct mr_session *sess, struct mr_tx_seg *seg)
{
	if (seg->buf)
		mr_buf_unref(seg->buf);
	mr_free(sess->cfg.mem, seg->owned);
	if (seg->stream)
		mr_stream_unref(seg->stream);
}

/* The transport took the whole segment. */
static void complete_segment(struct mr_session *sess, struct mr_tx_seg *seg)
{
	struct mr_stream *stream = seg->stream;

	if (seg->write)
		mr_stream_write_acked(stream, seg->write, seg->len);
	if (seg->fin && !(stream->flags & MR_STREAM_FINISHED)) {
		stream->send_state = MR_SEND_FIN_SENT;
		mr_stream_check_done(stream);
	}
	release_segment(sess, seg);
}

void mr_outbound_drop_pending(struct mr_session *sess)
{
	struct mr_stream *stream;

	while ((stream = sess->ready_head)) {
		sess->ready_head = stream->ready_next;
		stream->ready_next = NULL;
		stream->flags &= ~MR_STREAM_READY;
		mr_stream_unref(stream);
	}
	sess->ready_tail = NULL;
}

void mr_outbound_free(struct mr_session *sess)
{
	mr_outbound_drop_pending(sess);
	while (sess->ring_count) {
		/* Pretend the transport took it: failed writes are freed once
		 * every piece is accounted for. */
		complete_segment(sess, ring_at(sess, 0));
		sess->ring_head = (sess->ring_head + 1) & (sess->ring_cap - 1);
		sess->ring_count--;
	}
	ring_release(sess);
	mr_free(sess->cfg.mem, sess->ctrl);
	sess->ctrl = NULL;
	sess->ctrl_len = sess->ctrl_cap = 0;
}

static int reserve_ctrl(struct mr_session *sess, size_t len)
{
	size_t cap;
	uint8_t *ctrl;

	if (sess->ctrl_len + len <= sess->ctrl_cap)
		return 0;
	cap = sess->ctrl_cap ? sess->ctrl_cap : 256;
	while (cap < sess->ctrl_len + len)
		cap *= 2;
	ctrl = mr_realloc(sess->cfg.mem, sess->ctrl, cap);
	if (!ctrl)
		return -ENOMEM;
	sess->ctrl = ctrl;
	sess->ctrl_cap = cap;
	return 0;
}

static int append_ctrl(struct mr_session *sess, const void *bytes, size_t len)
{
	int err = reserve_ctrl(sess, len);

	if (err)
		return err;
	memcpy(sess->ctrl + sess->ctrl_len, bytes, len);
	sess->ctrl_len += len;
	sess->stats.frames_out++;
	return 0;
}

/* Control frames that answer the peer count against the backlog cap. */
static int append_reply(struct mr_session *sess, const uint8_t *frame,
			size_t len)
{
	if (sess->ctrl_len + len > sess->cfg.max_control_backlog)
		return MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM);
	return append_ctrl(sess, frame, len);
}

int mr_outbound_rst(struct mr_session *sess, uint32_t id, uint32_t code)
{
	uint8_t frame[MR_CONTROL_FRAME_LEN];

	if (sess->ended)
		return 0;
	return append_reply(sess, frame, mr_frame_pack_rst(frame, id, code));
}

int mr_outbound_wndinc(struct mr_session *sess, uint32_t id,
		       uint32_t increment)
{
	uint8_t frame[MR_CONTROL_FRAME_LEN];

	if (sess->ended)
		return 0;
	return append_reply(sess, frame,
			    mr_frame_pack_wndinc(frame, id, increment));
}

int mr_outbound_goaway(struct mr_session *sess, uint32_t code,
		       const void *debug, size_t debug_len, bool closing)
{
	uint8_t head[MR_GOAWAY_HEAD_LEN];
	size_t total = sizeof(head) + debug_len +
		       (closing ? 0 : sizeof(goaway_sync_frame));
	int err = reserve_ctrl(sess, total);

	if (err)
		return err;
	mr_frame_pack_goaway_head(head, sess->last_remote_id, code,
				  (uint32_t)debug_len);
	append_ctrl(sess, head, sizeof(head));
	if (debug_len) {
		memcpy(sess->ctrl + sess->ctrl_len, debug, debug_len);
		sess->ctrl_len += debug_len;
	}
	if (!closing)
		append_ctrl(sess, goaway_sync_frame, sizeof(goaway_sync_frame));
	return 0;
}

static void push_ready_front(struct mr_session *sess, struct mr_stream *stream)
{
	stream->flags |= MR_STREAM_READY;
	stream->ready_next = sess->ready_head;
	sess->ready_head = stream;
	if (!sess->ready_tail)
		sess->ready_tail = stream;
}

/* Urgent streams (heartbeats) go to the head, everything else to the tail. */
void mr_outbound_schedule(struct mr_session *sess, struct mr_stream *stream)
{
	if (stream->flags & MR_STREAM_READY)
		return;
	mr_stream_ref(stream);
	if (stream->flags & MR_STREAM_URGENT) {
		push_ready_front(sess, stream);
		return;
	}
	stream->flags |= MR_STREAM_READY;
	stream->ready_next = NULL;
	if (sess->ready_tail)
		sess->ready_tail->ready_next = stream;
	else
		sess->ready_head = stream;
	sess->ready_tail = stream;
}

static struct mr_stream *pop_ready(struct mr_session *sess)
{
	struct mr_stream *stream = sess->ready_head;

	if (!stream)
		return NULL;
	sess->ready_head = stream->ready_next;
	if (!sess->ready_head)
		sess->ready_tail = NULL;
	stream->ready_next = NULL;
	stream->flags &= ~MR_STREAM_READY;
	return stream;
}

static uint32_t ring_free(const struct mr_session *sess)
{
	return sess->ring_cap - sess->ring_count;
}

static struct mr_tx_seg *ring_push(struct mr_session *sess)
{
	struct mr_tx_seg *seg = ring_at(sess, sess->ring_count);

	sess->ring_count++;
	memset(seg, 0, offsetof(struct mr_tx_seg, inline_bytes));
	return seg;
}

/* The FIN counts as sent when the frame's last segment is, so that the
 * payload in front of it completes its writes first. */
static struct mr_tx_seg *ring_tail(struct mr_session *sess)
{
	return ring_at(sess, sess->ring_count - 1);
}

static void commit_ctrl(struct mr_session *sess)
{
	struct mr_tx_seg *seg;

	if (!sess->ctrl_len || (!ring_free(sess) && !ring_grow(sess)))
		return;
	seg = ring_push(sess);
	seg->base = sess->ctrl;
	seg->len = sess->ctrl_len;
	seg->owned = sess->ctrl;
	sess->ring_bytes += seg->len;
	sess->ctrl = NULL;
	sess->ctrl_len = sess->ctrl_cap = 0;
}

/* Adds payload pieces from the stream's writes, up to `budget` bytes, each
 * as a segment pointing into the writer's buffer. Returns the bytes added. */
static uint32_t commit_payload(struct mr_session *sess,
			       struct mr_stream *stream, uint32_t budget)
{
	struct mr_write *write;
	uint32_t added = 0;

	while ((write = stream->commit_next) &&
	       (ring_free(sess) || ring_grow(sess))) {
		size_t take = write->len - write->committed;

		if (take > budget - added)
			take = budget - added;
		if (take) {
			struct mr_tx_seg *seg = ring_push(sess);

			seg->base = write->data + write->committed;
			seg->len = take;
			seg->buf = write->buf;
			mr_buf_ref(write->buf);
			seg->write = write;
			seg->stream = stream;
			mr_stream_ref(stream);
			write->committed += take;
			added += (uint32_t)take;
			sess->ring_bytes += take;
		}
		if (write->committed < write->len)
			break;
		stream->commit_next = write->next;
		if (write->len == 0)
			mr_stream_write_acked(stream, write, 0);
	}
	return added;
}

/* A receive window above the protocol's initial one is granted right after
 * the SYN, so the peer knows the stream by the time the WNDINC arrives. */
static void grant_extra_window(struct mr_session *sess,
			       struct mr_stream *stream)
{
	if (sess->cfg.window > MR_INITIAL_WINDOW)
		mr_outbound_wndinc(sess, stream->id,
				   sess->cfg.window - MR_INITIAL_WINDOW);
}

/*
 * Commits the stream's next DATA frame. The SYN goes on the first frame
 * (with the type bytes on a typed session); FIN goes on the frame that
 * empties the write list, but never on the SYN frame, because the Go
 * reference then creates the stream with its own sending side closed.
 * Returns false when the ring has no room for a frame.
 */
static bool commit_stream_frame(struct mr_session *sess,
				struct mr_stream *stream)
{
	uint32_t hdr_at = sess->ring_count, payload = 0, budget;
	struct mr_tx_seg *hdr;
	uint8_t flags = 0;

	if (ring_free(sess) < 2 && !ring_grow(sess))
		return false;
	hdr = ring_push(sess);
	hdr->base = hdr->inline_bytes;
	hdr->len = MR_FRAME_HEADER_LEN;
	hdr->stream = stream;
	mr_stream_ref(stream);
	if (!(stream->flags & MR_STREAM_SYN_SENT)) {
		flags |= MR_FLAG_SYN;
		stream->flags |= MR_STREAM_SYN_SENT;
		grant_extra_window(sess, stream);
		if (sess->cfg.typed) {
			mr_put_be32(hdr->inline_bytes + MR_FRAME_HEADER_LEN,
				    stream->stream_type);
			hdr->len += 4;
			payload = 4;
		}
	}
	budget = stream->send_window < sess->cfg.max_frame_payload
			 ? stream->send_window
			 : sess->cfg.max_frame_payload;
	budget = budget > payload ? budget - payload : 0;
	payload += commit_payload(sess, stream, budget);
	hdr = ring_at(sess, hdr_at); /* the ring may have grown */
	if (stream->send_state == MR_SEND_FIN_QUEUED && !stream->commit_next &&
	    !(flags & MR_FLAG_SYN)) {
		flags |= MR_FLAG_FIN;
		stream->send_state = MR_SEND_FIN_COMMITTED;
		ring_tail(sess)->fin = true;
	}
	if (!flags && !payload) {
		/* Only zero-length writes were due: they complete without
		 * putting an empty frame on the wire. */
		sess->ring_count--;
		mr_stream_unref(stream);
		return true;
	}
	stream->send_window -= payload;
	mr_flood_earn_data_sent(sess, stream, payload);
	mr_frame_pack_data_header(hdr->inline_bytes, stream->id, flags,
				  payload);
	sess->ring_bytes += hdr->len;
	sess->stats.frames_out++;
	return true;
}

static void commit_frames(struct mr_session *sess, size_t max_bytes)
{
	struct mr_stream *stream;

	commit_ctrl(sess);
	while (sess->ring_bytes < max_bytes && (stream = pop_ready(sess))) {
		if (!mr_stream_wants_send(stream)) {
			mr_stream_unref(stream);
			continue;
		}
		if (!commit_stream_frame(sess, stream)) {
			push_ready_front(sess, stream);
			break;
		}
		if (mr_stream_wants_send(stream)) {
			stream->flags &= ~MR_STREAM_READY;
			mr_outbound_schedule(sess, stream);
		}
		mr_stream_unref(stream);
	}
}

size_t mr_session_tx_iov(struct mr_session *sess, struct iovec *iov,
			 size_t max_iov, size_t max_bytes)
{
	size_t n = 0, bytes = 0, skip = sess->ring_head_sent;
	uint32_t i;

	if (!sess->ring && !mr_session_tx_pending(sess))
		return 0;
	if (!ring_ready(sess)) {
		/* Nothing could ever be sent: the session ends, silently. */
		mr_session_end(sess, -ENOMEM, MUXRING_INTERNAL_ERROR);
		return 0;
	}
	commit_frames(sess, max_bytes);
	for (i = 0; i < sess->ring_count && n < max_iov; i++) {
		const struct mr_tx_seg *seg = ring_at(sess, i);

		if (n && bytes >= max_bytes)
			break;
		iov[n].iov_base = (void *)(seg->base + skip);
		iov[n].iov_len = seg->len - skip;
		bytes += iov[n].iov_len;
		skip = 0;
		n++;
	}
	sess->ring_offered = (uint32_t)n;
	return n;
}

void mr_session_tx_advance(struct mr_session *sess, size_t sent)
{
	sess->ring_offered = 0;
	sess->stats.bytes_out += sent;
	while (sent && sess->ring_count) {
		struct mr_tx_seg *seg = &sess->ring[sess->ring_head];
		size_t rest = seg->len - sess->ring_head_sent;

		if (sent < rest) {
			sess->ring_head_sent += sent;
			sess->ring_bytes -= sent;
			return;
		}
		struct mr_tx_seg done = *seg;

		sent -= rest;
		sess->ring_bytes -= rest;
		sess->ring_head_sent = 0;
		sess->ring_head = (sess->ring_head + 1) & (sess->ring_cap - 1);
		sess->ring_count--;
		complete_segment(sess, &done);
	}
	/* Nothing points into the ring any more. The full ring stays, for
	 * the same reason as the event queue's grown storage. */
	if (!sess->ring_count && sess->ring_cap == MR_TX_RING_SMALL)
		ring_release(sess);
}

bool mr_session_tx_pending(struct mr_session *sess)
{
	struct mr_stream *stream;

	if (sess->ring_count || sess->ctrl_len)
		return true;
	/* Prune the streams that stopped wanting to send, as commit_frames
	 * would: each is dropped once, so asking every turn stays cheap. */
	while ((stream = sess->ready_head) && !mr_stream_wants_send(stream)) {
		pop_ready(sess);
		mr_stream_unref(stream);
	}
	return stream != NULL;
}
