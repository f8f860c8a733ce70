/*
 * stats.c - reading the counters: a session's (its engine's frames and
 * bytes, its driver's operations) and the loop's (its own operations, the
 * live sessions' totals, and the totals of the sessions already freed).
 */
#include <string.h>

#include "uring/session_io.h"

int muxring_session_stats(const struct muxring_session *sess,
			  struct muxring_stats *out)
{
	mr_sio_stats(sess, out);
	return 0;
}

int muxring_loop_stats(const struct muxring_loop *loop,
		       struct muxring_stats *out)
{
	const struct muxring_session *s;
	struct muxring_stats st;

	*out = loop->stats;
	mr_stats_keep_max(out, &loop->ended);
	out->credit_stalls = loop->ended.credit_stalls;
	out->frames_in = loop->ended.frames_in;
	out->frames_out = loop->ended.frames_out;
	out->bytes_in = loop->ended.bytes_in;
	out->bytes_out = loop->ended.bytes_out;
	out->streams_opened = loop->ended.streams_opened;
	out->streams_accepted = loop->ended.streams_accepted;
	for (s = loop->sessions.head; s; s = s->next[MR_LIST_ALL]) {
		mr_sio_stats(s, &st);
		out->frames_in += st.frames_in;
		out->frames_out += st.frames_out;
		out->bytes_in += st.bytes_in;
		out->bytes_out += st.bytes_out;
		out->streams_opened += st.streams_opened;
		out->streams_accepted += st.streams_accepted;
		out->write_bytes_queued += st.write_bytes_queued;
		out->write_memory += st.write_memory;
		out->recv_view_bytes += st.recv_view_bytes;
		out->recv_copy_bytes += st.recv_copy_bytes;
		out->send_queued_bytes += st.send_queued_bytes;
		out->buffered_bytes += st.buffered_bytes;
		out->credit_stalls += st.credit_stalls;
		mr_stats_keep_max(out, &st);
	}
	out->buffered_bytes_max = loop->buffered_max;
	out->recv_buffers_held = loop->bufring->held;
	out->recv_buffers_held_max = loop->bufring->held_max;
	return 0;
}
