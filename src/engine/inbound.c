/*
 * inbound.c - turning the peer's bytes into stream events.
 *
 * A resumable parser: input may stop anywhere, even inside a header, so the
 * state (which part of which frame comes next, and how much of it) lives in
 * the session and every byte is looked at once. Large DATA payloads are not
 * copied: each contiguous run of MR_RX_VIEW_MIN bytes or more of a frame's
 * payload inside the caller's buffer becomes one view holding a reference
 * on that buffer. Smaller runs are merged into their stream's queued DATA
 * event (rx_block.c), so that a peer sending tiny frames costs bytes, not an
 * event per frame.
 *
 * What the peer can get wrong is split by blast radius, as PROTOCOL.md
 * says: a malformed frame fails the whole session (GOAWAY with the code),
 * data beyond a stream's window or for a stream that is gone costs only
 * that stream an RST, and frames of unknown type are skipped. Frames that
 * carry no application data are charged to the session's flood budget
 * (flood_budget.h) as they arrive, so a peer that floods is stopped
 * before it costs more than the budget.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session_internal.h"

static int reply_rst(struct mr_session *sess, uint32_t id, uint32_t code)
{
	int err = mr_outbound_rst(sess, id, code);

	if (err == MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM))
		return mr_session_fail(sess, MUXRING_ENHANCE_YOUR_CALM,
				       "unread replies: the control frames the "
				       "peer provoked and did not read passed "
				       "max_control_backlog");
	if (err)
		return mr_session_fail_nomem(sess);
	return 0;
}

/* Ends one stream over the peer's misbehaviour and tells the peer why. */
static int reset_stream(struct mr_session *sess, struct mr_stream *stream,
			uint32_t code)
{
	int err = reply_rst(sess, stream->id, code);

	if (!err)
		mr_stream_finish(stream, code, MUXRING_ERR(code),
				 MR_CLOSE_LOCAL_RESET);
	return err;
}

static void expect_header(struct mr_session *sess)
{
	sess->rx_state = MR_RX_HEADER;
	sess->rx_have = 0;
}

/* Reads and drops the rest of the current frame's body. */
static void skip_body(struct mr_session *sess)
{
	sess->rx_state = MR_RX_SKIP;
	if (!sess->rx_remaining)
		expect_header(sess);
}

static void announce_stream(struct mr_stream *stream)
{
	struct mr_event ev = {
		.type = MR_EV_STREAM_ACCEPTED,
		.stream = stream,
		.stream_type = stream->stream_type,
	};

	stream->flags |= MR_STREAM_ACCEPTED;
	mr_session_emit(stream->session, &ev);
}

static bool is_local_id(const struct mr_session *sess, uint32_t id)
{
	return (id & 1) == (sess->role == MR_ROLE_CLIENT);
}

/*
 * A SYN arrived for `id`: creates the stream, or refuses it with an RST and
 * sets *out to NULL. Returns 0, or the error that failed the session.
 */
/* Refuses a peer's SYN with RST code. The peer may have sent the stream's
 * FIN or more data before our RST reaches it (a client whose idle streams
 * close after our GOAWAY does): those frames are paid for, as for an
 * accepted stream. Returns 0 or the error that failed the session. */
static int refuse_stream(struct mr_session *sess, uint32_t id, uint32_t code)
{
	mr_flood_earn_refused(sess);
	return reply_rst(sess, id, code);
}

static int accept_remote_stream(struct mr_session *sess, uint32_t id,
				struct mr_stream **out)
{
	struct mr_stream *stream;

	*out = NULL;
	if (sess->goaway_sent)
		return refuse_stream(sess, id, MUXRING_STREAM_REFUSED);
	if (is_local_id(sess, id))
		return mr_session_fail(sess, MUXRING_PROTOCOL_ERROR,
				       "SYN carries a stream id of the receiver's parity");
	/* SYNs ride on first writes, so a peer's streams may announce
	 * themselves out of id order; only a live id is certainly reused. */
	if (mr_stream_map_get(&sess->streams, id))
		return mr_session_fail(sess, MUXRING_PROTOCOL_ERROR,
				       "SYN for a stream that is already open");
	if (id > sess->last_remote_id)
		sess->last_remote_id = id;
	if (sess->streams.count >= sess->cfg.max_streams)
		return refuse_stream(sess, id, MUXRING_STREAM_REFUSED);
	if (sess->accept_pending >= sess->cfg.accept_backlog)
		return refuse_stream(sess, id, MUXRING_ACCEPT_QUEUE_FULL);
	/* At the buffer cap: a new stream would bring the peer a fresh window
	 * that the cap could not take back. */
	if (mr_session_credit_blocked(sess))
		return refuse_stream(sess, id, MUXRING_STREAM_REFUSED);
	stream = mr_stream_new(sess, id, false);
	if (!stream)
		return refuse_stream(sess, id, MUXRING_INTERNAL_ERROR);
	sess->accept_pending++;
	sess->stats.streams_accepted++;
	mr_flood_earn_stream(sess);
	if (sess->cfg.window > MR_INITIAL_WINDOW) {
		int err = mr_outbound_wndinc(sess, id, sess->cfg.window -
							       MR_INITIAL_WINDOW);
		if (err)
			stream->recv_window = MR_INITIAL_WINDOW;
	}
	if (sess->cfg.typed)
		stream->flags |= MR_STREAM_TYPE_PENDING;
	else
		announce_stream(stream);
	*out = stream;
	return 0;
}

/* Finds the stream a non-SYN DATA frame is for; NULL when it is gone, after
 * answering as PROTOCOL.md says (an empty FIN is ignored silently), with
 * one RST for a run of frames on the same gone stream, which are what the
 * peer had in flight when it ended. Every such frame is charged to the
 * flood budget. */
static int find_data_stream(struct mr_session *sess,
			    const struct mr_frame_header *hdr,
			    struct mr_stream **out)
{
	struct mr_stream *stream = mr_stream_map_get(&sess->streams,
						     hdr->stream_id);
	bool empty_fin = hdr->length == 0 && (hdr->flags & MR_FLAG_FIN);
	int err;

	*out = NULL;
	if (stream && stream->recv_state == MR_RECV_OPEN) {
		*out = stream;
		return 0;
	}
	if (empty_fin) /* a FIN that changes nothing */
		return mr_flood_charge(sess, MR_FLOOD_EMPTY_DATA);
	err = mr_flood_charge(sess, MR_FLOOD_CLOSED_DATA);
	if (err)
		return err;
	if (hdr->stream_id == sess->rst_closed_id)
		return 0;
	sess->rst_closed_id = hdr->stream_id;
	/* After its FIN, or after a local close whose own FIN still waits for
	 * window: the RST ends the stream for the peer, which will never
	 * credit that window, so it ends here too. */
	if (stream)
		return reset_stream(sess, stream, MUXRING_STREAM_CLOSED);
	return reply_rst(sess, hdr->stream_id, MUXRING_STREAM_CLOSED);
}

static int on_data_header(struct mr_session *sess)
{
	const struct mr_frame_header *hdr = &sess->rx_hdr;
	struct mr_stream *stream;
	int err;

	if (!hdr->length && !(hdr->flags & (MR_FLAG_SYN | MR_FLAG_FIN))) {
		err = mr_flood_charge(sess, MR_FLOOD_EMPTY_DATA);
		if (err)
			return err;
	}
	if (hdr->flags & MR_FLAG_SYN)
		err = accept_remote_stream(sess, hdr->stream_id, &stream);
	else
		err = find_data_stream(sess, hdr, &stream);
	if (err || !stream) {
		skip_body(sess);
		return err;
	}
	if (hdr->length > stream->recv_window) {
		err = reset_stream(sess, stream, MUXRING_FLOW_CONTROL_ERROR);
		skip_body(sess);
		return err;
	}
	stream->recv_window -= hdr->length;
	mr_stream_ref(stream);
	sess->rx_stream = stream;
	sess->rx_state = MR_RX_DATA;
	return 0;
}

/* Collects type bytes of a typed stream's head; announces the stream once
 * all four are in. Returns how many of `len` bytes it took. */
static size_t take_type_bytes(struct mr_stream *stream, const uint8_t *data,
			      size_t len)
{
	size_t n = 0;

	while (n < len && stream->type_have < 4) {
		stream->stream_type = stream->stream_type << 8 | data[n++];
		stream->type_have++;
	}
	mr_stream_credit(stream, (uint32_t)n);
	if (stream->type_have < 4)
		return n;
	stream->flags &= ~MR_STREAM_TYPE_PENDING;
	if (stream->stream_type == MR_HEARTBEAT_TYPE) {
		/* The engine answers heartbeats; the app never sees them. */
		stream->flags |= MR_STREAM_HEARTBEAT | MR_STREAM_URGENT;
		stream->session->accept_pending--;
	} else {
		announce_stream(stream);
	}
	return n;
}

/* Heartbeat payload is consumed here: echoes of our beats 4 bytes at a
 * time, the peer's beats echoed back (heartbeat.c). */
static void take_heartbeat_bytes(struct mr_stream *stream,
				 const uint8_t *data, size_t len)
{
	size_t i;

	if (!(stream->flags & MR_STREAM_LOCAL)) {
		mr_heartbeat_echo(stream, data, len);
		return;
	}
	for (i = 0; i < len && !(stream->flags & MR_STREAM_FINISHED); i++) {
		stream->echo_word = stream->echo_word << 8 | data[i];
		if (++stream->echo_have == 4) {
			stream->echo_have = 0;
			mr_heartbeat_on_word(stream, stream->echo_word);
		}
	}
	/* Echoes we receive are consumed here; what we echo is credited when
	 * the echo has left (stream.c). */
	mr_stream_credit(stream, (uint32_t)len);
}

/* Payload of the DATA frame being read. Small pieces are merged into the
 * stream's queued event (rx_block.c), so that memory follows bytes, not
 * frames. */
static void deliver_payload(struct mr_session *sess, struct mr_buf *buf,
			    const uint8_t *data, size_t len, unsigned flags)
{
	struct mr_stream *stream = sess->rx_stream;

	if (stream->flags & MR_STREAM_TYPE_PENDING) {
		size_t n = take_type_bytes(stream, data, len);

		data += n;
		len -= n;
	}
	if (!len || stream->recv_state != MR_RECV_OPEN ||
	    (stream->flags & MR_STREAM_FINISHED))
		return;
	if (stream->flags & MR_STREAM_HEARTBEAT) {
		take_heartbeat_bytes(stream, data, len);
		return;
	}
	if (mr_rx_deliver(stream, buf, data, len, flags))
		sess->out_of_memory = true;
}

static void end_data_frame(struct mr_session *sess)
{
	struct mr_stream *stream = sess->rx_stream;

	sess->rx_stream = NULL;
	expect_header(sess);
	if ((sess->rx_hdr.flags & MR_FLAG_FIN) &&
	    !(stream->flags & MR_STREAM_FINISHED)) {
		if (stream->flags & MR_STREAM_TYPE_PENDING) {
			/* Ended before saying its type: nobody can serve it. */
			reset_stream(sess, stream, MUXRING_PROTOCOL_ERROR);
		} else {
			mr_stream_recv_fin(stream);
		}
	}
	mr_stream_unref(stream);
}

static int on_rst(struct mr_session *sess, uint32_t code)
{
	struct mr_stream *stream = mr_stream_map_get(&sess->streams,
						     sess->rx_hdr.stream_id);
	int err = mr_flood_charge(sess, MR_FLOOD_RST);

	if (!err && stream && !(stream->flags & MR_STREAM_LOCAL))
		err = mr_flood_charge(sess, MR_FLOOD_CHURN);
	if (err)
		return err;
	if (stream)
		mr_stream_finish(stream, code,
				 MUXRING_ERR(code ? code : MUXRING_STREAM_RESET),
				 MR_CLOSE_PEER_RESET);
	return 0;
}

static int on_wndinc(struct mr_session *sess, uint32_t increment)
{
	struct mr_stream *stream;
	int err;

	if (!increment)
		return mr_session_fail(sess, MUXRING_PROTOCOL_ERROR,
				       "WNDINC with an increment of 0");
	err = mr_flood_charge(sess, MR_FLOOD_WNDINC);
	if (err)
		return err;
	stream = mr_stream_map_get(&sess->streams, sess->rx_hdr.stream_id);
	if (!stream || (stream->flags & MR_STREAM_FINISHED))
		return 0;
	if (increment > MR_WNDINC_MASK - stream->send_window)
		return reset_stream(sess, stream, MUXRING_FLOW_CONTROL_ERROR);
	stream->send_window += increment;
	mr_stream_update_ready(stream);
	return 0;
}

static int on_header(struct mr_session *sess)
{
	struct mr_frame_header *hdr = &sess->rx_hdr;
	uint32_t code;

	mr_frame_header_parse(sess->rx_bytes, hdr);
	sess->stats.frames_in++;
	code = mr_frame_header_check(hdr);
	if (code == MUXRING_FRAME_SIZE_ERROR)
		return mr_session_fail(sess, code, "frame has an illegal length");
	if (code)
		return mr_session_fail(sess, code,
				       hdr->type == MR_FRAME_GOAWAY
					       ? "GOAWAY on a stream id"
					       : "frame on stream id 0");
	sess->rx_remaining = hdr->length;
	sess->rx_have = 0;
	switch (hdr->type) {
	case MR_FRAME_DATA:
		return on_data_header(sess);
	case MR_FRAME_RST:
	case MR_FRAME_WNDINC:
		sess->rx_state = MR_RX_WORD;
		return 0;
	case MR_FRAME_GOAWAY:
		sess->rx_state = MR_RX_GOAWAY_FIXED;
		return 0;
	default:
		skip_body(sess);
		return mr_flood_charge(sess, MR_FLOOD_UNKNOWN);
	}
}

static int on_word(struct mr_session *sess)
{
	uint32_t word = mr_get_be32(sess->rx_bytes);

	expect_header(sess);
	if (sess->rx_hdr.type == MR_FRAME_RST)
		return on_rst(sess, word);
	return on_wndinc(sess, word & MR_WNDINC_MASK);
}

/* The fixed part of a GOAWAY is in: get ready to keep its debug text. */
static int on_goaway_fixed(struct mr_session *sess)
{
	uint32_t keep = sess->rx_remaining;
	int err = mr_flood_charge_goaway(sess);

	if (err)
		return err;
	sess->goaway_last_id = mr_get_be32(sess->rx_bytes) & MR_STREAM_ID_MASK;
	sess->goaway_code = mr_get_be32(sess->rx_bytes + 4);
	if (keep > sess->cfg.goaway_debug_cap)
		keep = sess->cfg.goaway_debug_cap;
	mr_free(sess->cfg.mem, sess->remote_debug);
	sess->remote_debug = keep ? mr_malloc(sess->cfg.mem, keep) : NULL;
	sess->result.remote_debug = sess->remote_debug;
	sess->result.remote_debug_len = 0;
	sess->rx_state = MR_RX_GOAWAY_DEBUG;
	if (keep && !sess->remote_debug)
		return mr_session_fail_nomem(sess);
	return 0;
}

/* A stream we opened above the last id of the peer's GOAWAY never reached
 * the peer. (Called by mr_stream_map_sweep: finishing removes it.) */
static void finish_gone_stream(struct mr_stream *stream, void *arg)
{
	const struct mr_session *sess = arg;

	if (!(stream->flags & MR_STREAM_LOCAL) ||
	    stream->id <= sess->goaway_last_id)
		return;
	mr_stream_ref(stream);
	mr_stream_finish(stream, MUXRING_REMOTE_GONE_AWAY,
			 MUXRING_ERR(MUXRING_REMOTE_GONE_AWAY),
			 MR_CLOSE_GONE_AWAY);
	mr_stream_unref(stream);
}

/* The peer is going away: streams we opened above its last id never
 * reached it. */
static int on_goaway(struct mr_session *sess)
{
	struct mr_event ev = {.type = MR_EV_GOAWAY, .code = sess->goaway_code};

	expect_header(sess);
	sess->result.remote_goaway = true;
	sess->result.remote_code = sess->goaway_code;
	sess->result.remote_last_id = sess->goaway_last_id;
	mr_session_emit(sess, &ev);
	mr_stream_map_sweep(&sess->streams, finish_gone_stream, sess);
	return 0;
}

/* Copies up to `want - rx_have` bytes into rx_bytes; true once complete. */
static inline bool collect(struct mr_session *sess, const uint8_t **data,
			   size_t *len, uint32_t want)
{
	size_t take = want - sess->rx_have;

	if (take == want && *len >= want) {
		/* The common case, all of it in this input: a fixed-size
		 * copy the compiler inlines (want is a constant). */
		memcpy(sess->rx_bytes, *data, want);
		sess->rx_have = want;
		*data += want;
		*len -= want;
		return true;
	}

	if (take > *len)
		take = *len;
	memcpy(sess->rx_bytes + sess->rx_have, *data, take);
	sess->rx_have += (uint32_t)take;
	*data += take;
	*len -= take;
	return sess->rx_have == want;
}

/* Consumes up to rx_remaining body bytes; returns how many. */
static size_t take_body(struct mr_session *sess, size_t len)
{
	size_t take = len < sess->rx_remaining ? len : sess->rx_remaining;

	sess->rx_remaining -= (uint32_t)take;
	return take;
}

static int parse_step(struct mr_session *sess, struct mr_buf *buf,
		      const uint8_t **data, size_t *len, unsigned flags)
{
	size_t take;

	switch (sess->rx_state) {
	case MR_RX_HEADER:
		if (!collect(sess, data, len, MR_FRAME_HEADER_LEN))
			return 0;
		return on_header(sess);
	case MR_RX_WORD:
		if (!collect(sess, data, len, 4))
			return 0;
		return on_word(sess);
	case MR_RX_GOAWAY_FIXED:
		if (!collect(sess, data, len, MR_GOAWAY_FIXED_LEN))
			return 0;
		sess->rx_remaining -= MR_GOAWAY_FIXED_LEN;
		return on_goaway_fixed(sess);
	case MR_RX_GOAWAY_DEBUG: {
		size_t kept = sess->result.remote_debug_len;
		size_t room = sess->cfg.goaway_debug_cap - kept;

		take = take_body(sess, *len);
		if (sess->remote_debug && room) {
			size_t keep = take < room ? take : room;

			memcpy(sess->remote_debug + kept, *data, keep);
			sess->result.remote_debug_len = kept + keep;
		}
		break;
	}
	case MR_RX_DATA:
		take = take_body(sess, *len);
		if (take)
			deliver_payload(sess, buf, *data, take, flags);
		break;
	case MR_RX_SKIP:
		take = take_body(sess, *len);
		break;
	default:
		return 0;
	}
	*data += take;
	*len -= take;
	if (sess->rx_remaining)
		return 0;
	if (sess->rx_state == MR_RX_DATA)
		end_data_frame(sess);
	else if (sess->rx_state == MR_RX_GOAWAY_DEBUG)
		return on_goaway(sess);
	else
		expect_header(sess);
	return 0;
}

/* True when the current frame's body is fully read but not yet acted on:
 * a frame with an empty body completes without another input byte. */
static bool body_complete(const struct mr_session *sess)
{
	return sess->rx_remaining == 0 &&
	       (sess->rx_state == MR_RX_DATA || sess->rx_state == MR_RX_SKIP ||
		sess->rx_state == MR_RX_GOAWAY_DEBUG);
}

int mr_session_recv(struct mr_session *sess, struct mr_buf *buf,
		    const uint8_t *data, size_t len, unsigned flags)
{
	int err = 0;

	sess->stats.bytes_in += len;
	while (!sess->ended && !err && (len || body_complete(sess)))
		err = parse_step(sess, buf, &data, &len, flags);
	if (!err && sess->out_of_memory && !sess->ended)
		err = mr_session_fail_nomem(sess);
	return err;
}
