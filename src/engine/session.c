/*
 * session.c - a session's life: creation, opening streams, going away,
 * ending, deadlines and the event queue the driver drains.
 *
 * A session ends exactly once (mr_session_end): every stream still alive
 * closes with the session's error, and SESSION_ENDED is the last event.
 * What remains to be sent (a GOAWAY saying why) stays queued, and
 * mr_session_done() tells the driver when it may shut the transport down.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/session_internal.h"

void mr_config_default(struct mr_config *cfg)
{
	*cfg = (struct mr_config){
		.window = MR_INITIAL_WINDOW,
		.accept_backlog = 128,
		.max_streams = 4096,
		.goaway_debug_cap = 1u << 20,
		.max_frame_payload = 64u << 10,
		.max_control_backlog = 1u << 20,
		.max_buffered = MR_DEFAULT_MAX_BUFFERED,
		.typed = false,
		.mem = &mr_mem_libc,
	};
	mr_flood_limits_default(&cfg->flood);
}

static bool config_valid(const struct mr_config *cfg)
{
	return cfg->window >= MR_INITIAL_WINDOW &&
	       cfg->window <= MR_WNDINC_MASK && cfg->accept_backlog &&
	       cfg->max_streams && cfg->max_frame_payload &&
	       cfg->max_frame_payload <= MR_FRAME_MAX_LEN &&
	       cfg->max_control_backlog >= MR_CONTROL_FRAME_LEN && cfg->mem;
}

struct mr_session *mr_session_new(enum mr_role role,
				  const struct mr_config *cfg)
{
	struct mr_session *sess;
	struct mr_config defaults;

	if (!cfg) {
		mr_config_default(&defaults);
		cfg = &defaults;
	}
	if (!config_valid(cfg))
		return NULL;
	sess = mr_calloc(cfg->mem, 1, sizeof(*sess));
	if (!sess)
		return NULL;
	sess->cfg = *cfg;
	sess->role = role;
	sess->buffer_limit = cfg->max_buffered;
	/* The reference's counters start one step above the first id each
	 * side may use, and GOAWAY reports them before any stream. */
	sess->next_local_id = role == MR_ROLE_CLIENT ? 3 : 2;
	sess->last_remote_id = role == MR_ROLE_CLIENT ? 0 : 1;
	mr_stream_map_init(&sess->streams, cfg->mem);
	mr_evq_init(&sess->events, cfg->mem);
	mr_flood_budget_init(&sess->flood, &cfg->flood);
	return sess;
}

/* A STREAM_CLOSED that found no room is owed instead of lost: the stream
 * keeps the event's reference and remembers what it would have said, so
 * the application still learns when its handle ends. */
static void owe_close(struct mr_session *sess, const struct mr_event *ev)
{
	struct mr_stream *stream = ev->stream;

	stream->flags |= MR_STREAM_CLOSE_OWED;
	stream->send_window = ev->code;
	stream->type_have = (uint8_t)ev->close_reason;
	sess->closes_owed++;
	sess->out_of_memory = true;
}

/* The owed STREAM_CLOSED of some finished stream, as an event. */
static void pay_close(struct mr_session *sess, struct mr_event *ev)
{
	struct mr_stream *stream = sess->finished;

	while (!(stream->flags & MR_STREAM_CLOSE_OWED))
		stream = stream->finished_next;
	stream->flags &= ~MR_STREAM_CLOSE_OWED;
	sess->closes_owed--;
	*ev = (struct mr_event){
		.type = MR_EV_STREAM_CLOSED,
		.stream = stream,
		.code = stream->send_window,
		.result = stream->type_have == MR_CLOSE_CLEAN ? 0
							      : stream->end_error,
		.close_reason = (enum mr_close_reason)stream->type_have,
	};
}

/* Streams that outlive the session owe nothing any more: the references
 * their owed events kept go. */
static void forgive_closes(struct mr_session *sess)
{
	struct mr_stream *stream = sess->finished, *next;

	for (; sess->closes_owed && stream; stream = next) {
		next = stream->finished_next;
		if (stream->flags & MR_STREAM_CLOSE_OWED) {
			stream->flags &= ~MR_STREAM_CLOSE_OWED;
			sess->closes_owed--;
			mr_stream_unref(stream);
		}
	}
}

/* A stream that outlives its session keeps the allocator it must be freed
 * with (in a field no longer used once the ready list is gone). */
static void detach_stream(struct mr_stream *stream, void *arg)
{
	struct mr_session *sess = arg;

	/* Detached first: the failed writes report nothing to a session
	 * that is going away. */
	stream->session = NULL;
	stream->orphan_mem = sess->cfg.mem;
	mr_stream_fail_writes(stream, MUXRING_ERR(MUXRING_SESSION_CLOSED));
}

static void drop_map_ref(struct mr_stream *stream, void *arg)
{
	(void)arg;
	mr_stream_unref(stream);
}

/* The DATA frame being received holds its stream; an end in the middle of
 * the frame must give it back. */
static void release_rx_stream(struct mr_session *sess)
{
	if (sess->rx_stream)
		mr_stream_unref(sess->rx_stream);
	sess->rx_stream = NULL;
}

void mr_session_free(struct mr_session *sess)
{
	if (!sess)
		return;
	mr_heartbeat_free(sess);
	mr_stream_free_deadlines(sess);
	release_rx_stream(sess);
	mr_outbound_drop_pending(sess);
	mr_stream_map_each(&sess->streams, detach_stream, sess);
	forgive_closes(sess);
	mr_stream_detach_finished(sess);
	mr_outbound_free(sess);
	mr_stream_free_write_cache(sess);
	mr_evq_free(&sess->events);
	mr_stream_map_each(&sess->streams, drop_map_ref, NULL);
	mr_stream_map_free(&sess->streams);
	mr_rx_blocks_free(sess);
	mr_free(sess->cfg.mem, sess->remote_debug);
	mr_free(sess->cfg.mem, sess);
}

bool mr_session_emit(struct mr_session *sess, const struct mr_event *ev)
{
	struct mr_event lost;

	if (!mr_evq_push(&sess->events, ev))
		return true;
	if (ev->type == MR_EV_STREAM_CLOSED) {
		owe_close(sess, ev); /* delivered later, not lost */
		return true;
	}
	/* Give back what the event held; the session fails at the next
	 * chance, since the application would otherwise miss it. */
	lost = *ev;
	if (lost.type == MR_EV_DATA)
		mr_view_release(&lost.view);
	mr_event_done(&lost);
	sess->out_of_memory = true;
	return false;
}

/* How the streams of an ending session close. */
struct stream_end {
	int err;
	uint32_t code;
};

/* Finishing a stream takes it out of the map, which mr_stream_map_sweep
 * allows: ending needs no snapshot, so it cannot fail for want of memory. */
static void finish_stream(struct mr_stream *stream, void *arg)
{
	const struct stream_end *how = arg;

	mr_stream_ref(stream);
	mr_stream_finish(stream, how->code, how->err, MR_CLOSE_SESSION_ENDED);
	mr_stream_unref(stream);
}

void mr_session_end(struct mr_session *sess, int err, uint32_t stream_code)
{
	struct stream_end how = {.err = err, .code = stream_code};

	if (sess->ended)
		return;
	sess->ended = true;
	sess->result.local_error = err;
	release_rx_stream(sess);
	mr_outbound_drop_pending(sess);
	mr_stream_map_sweep(&sess->streams, finish_stream, &how);
}

int mr_session_fail_nomem(struct mr_session *sess)
{
	static const char why[] = "out of memory";

	if (sess->ended)
		return sess->result.local_error;
	/* Best effort: the GOAWAY itself may find no memory. */
	mr_outbound_goaway(sess, MUXRING_INTERNAL_ERROR, why, sizeof(why) - 1,
			   true);
	mr_session_end(sess, -ENOMEM, MUXRING_INTERNAL_ERROR);
	return -ENOMEM;
}

int mr_session_fail(struct mr_session *sess, uint32_t code, const char *debug)
{
	size_t len = 0;

	if (sess->ended)
		return sess->result.local_error;
	while (debug[len])
		len++;
	mr_outbound_goaway(sess, code, debug, len, true);
	sess->result.local_reason = debug;
	mr_session_end(sess, MUXRING_ERR(code), code);
	return MUXRING_ERR(code);
}

void mr_session_recv_end(struct mr_session *sess, int error)
{
	if (error)
		mr_session_end(sess, error, MUXRING_ERROR_UNKNOWN);
	else
		mr_session_end(sess, MUXRING_ERR(MUXRING_PEER_EOF),
			       MUXRING_PEER_EOF);
}

bool mr_session_done(const struct mr_session *sess)
{
	return sess->ended && !sess->ring_count && !sess->ctrl_len;
}

/* SESSION_ENDED is not queued but made up once the queue is empty, so
 * that it comes last and can never be lost for want of memory. */
bool mr_session_poll_event(struct mr_session *sess, struct mr_event *ev)
{
	if (sess->out_of_memory && !sess->ended)
		mr_session_fail_nomem(sess);
	if (mr_evq_pop(&sess->events, ev))
		return true;
	if (sess->closes_owed) {
		pay_close(sess, ev);
		return true;
	}
	if (!sess->ended || sess->ended_polled)
		return false;
	sess->ended_polled = true;
	*ev = (struct mr_event){.type = MR_EV_SESSION_ENDED};
	return true;
}

void mr_event_done(struct mr_event *ev)
{
	if (ev->type == MR_EV_STREAM_CLOSED && ev->stream) {
		mr_stream_unref(ev->stream);
		ev->stream = NULL;
	}
}

void mr_session_accept_done(struct mr_session *sess)
{
	if (sess->accept_pending)
		sess->accept_pending--;
}

void mr_view_release(struct mr_view *view)
{
	struct mr_stream *stream = view->stream;
	struct mr_session *sess;

	if (!stream)
		return;
	sess = stream->session;
	if (sess)
		sess->stats.rx_view_bytes -= view->len;
	mr_rx_buf_put(stream, view->buf);
	mr_stream_credit(stream, (uint32_t)view->len);
	if (sess)
		mr_session_check_credit(sess);
	mr_stream_unref(stream);
	view->stream = NULL;
	view->buf = NULL;
}

int mr_session_open(struct mr_session *sess, uint32_t stream_type,
		    struct mr_stream **out)
{
	/* The heartbeat type is the engine's: the peer would echo the
	 * application's bytes back. */
	if (sess->cfg.typed && stream_type == MR_HEARTBEAT_TYPE)
		return -EINVAL;
	return mr_session_open_flagged(sess, stream_type, 0, out);
}

int mr_session_open_flagged(struct mr_session *sess, uint32_t stream_type,
			    uint16_t flags, struct mr_stream **out)
{
	struct mr_stream *stream;

	if (sess->ended)
		return MUXRING_ERR(MUXRING_SESSION_CLOSED);
	if (sess->result.remote_goaway)
		return MUXRING_ERR(MUXRING_REMOTE_GONE_AWAY);
	if (sess->next_local_id > MR_STREAM_ID_MASK)
		return MUXRING_ERR(MUXRING_STREAMS_EXHAUSTED);
	if (sess->streams.count >= sess->cfg.max_streams)
		return MUXRING_ERR(MUXRING_STREAM_REFUSED);
	stream = mr_stream_new(sess, sess->next_local_id, true);
	if (!stream)
		return -ENOMEM;
	stream->stream_type = stream_type;
	stream->flags |= flags;
	sess->next_local_id += 2;
	sess->stats.streams_opened++;
	mr_flood_earn_stream(sess);
	mr_stream_update_ready(stream);
	*out = stream;
	return 0;
}

void mr_session_set_user(struct mr_session *sess, void *user)
{
	sess->user = user;
}

void *mr_session_user(const struct mr_session *sess)
{
	return sess->user;
}

void mr_session_set_next_stream_id(struct mr_session *sess, uint32_t id)
{
	sess->next_local_id = id;
}

int mr_session_goaway(struct mr_session *sess, uint32_t code,
		      const void *debug, size_t debug_len)
{
	int err;

	if (sess->ended)
		return MUXRING_ERR(MUXRING_SESSION_CLOSED);
	if (debug_len > MR_FRAME_MAX_LEN - MR_GOAWAY_FIXED_LEN)
		return -EINVAL;
	if (sess->goaways_sent >= MR_GOAWAYS_SENT_MAX)
		return 0;
	err = mr_outbound_goaway(sess, code, debug, debug_len, false);
	if (!err) {
		sess->goaway_sent = true;
		sess->goaways_sent++;
	}
	return err;
}

int mr_session_close(struct mr_session *sess, uint32_t code,
		     const void *debug, size_t debug_len)
{
	int err;

	if (sess->ended)
		return 0;
	if (debug_len > MR_FRAME_MAX_LEN - MR_GOAWAY_FIXED_LEN)
		debug_len = MR_FRAME_MAX_LEN - MR_GOAWAY_FIXED_LEN;
	mr_outbound_drop_pending(sess);
	err = mr_outbound_goaway(sess, code, debug, debug_len, true);
	mr_session_end(sess, MUXRING_ERR(MUXRING_SESSION_CLOSED),
		       MUXRING_SESSION_CLOSED);
	return err;
}

bool mr_session_ended(const struct mr_session *sess)
{
	return sess->ended;
}

const struct mr_session_result *mr_session_result(const struct mr_session *sess)
{
	return &sess->result;
}

static void expire_stream(struct mr_stream *stream, uint64_t now)
{
	struct mr_deadline *dl = stream->deadline;
	struct mr_event ev = {.type = MR_EV_DEADLINE, .stream = stream};

	if (dl->read && dl->read <= now) {
		dl->read = 0;
		if (stream->recv_state == MR_RECV_OPEN) {
			ev.deadline = MR_DEADLINE_READ;
			mr_session_emit(stream->session, &ev);
		}
	}
	if (dl->write && dl->write <= now) {
		dl->write = 0;
		mr_stream_fail_pending_writes(stream,
					      MUXRING_ERR(MUXRING_WRITE_TIMEOUT));
		ev.deadline = MR_DEADLINE_WRITE;
		mr_session_emit(stream->session, &ev);
	}
	mr_stream_update_deadline_list(stream);
}

void mr_session_set_now(struct mr_session *sess, uint64_t now)
{
	sess->now = now;
}

uint64_t mr_session_expire(struct mr_session *sess, uint64_t now)
{
	struct mr_deadline *dl = sess->deadlines;

	sess->now = now;
	while (dl) {
		struct mr_deadline *next = dl->next;

		expire_stream(dl->stream, now);
		dl = next;
	}
	mr_heartbeat_expire(sess);
	return mr_session_next_deadline(sess);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

uint64_t mr_session_next_deadline(const struct mr_session *sess)
{
	const struct mr_deadline *dl;
	uint64_t next = mr_heartbeat_next_due(sess);

	for (dl = sess->deadlines; dl; dl = dl->next)
		next = earliest(next, earliest(dl->read, dl->write));
	return next;
}

void mr_session_stats(const struct mr_session *sess,
		      struct mr_session_stats *out)
{
	*out = sess->stats;
	out->events_queued = sess->events.count;
	out->events_queued_max = sess->events.count_max;
}

/* ---- the cap on buffered bytes ------------------------------------------ */

uint64_t mr_session_buffered(const struct mr_session *sess)
{
	return sess->stats.rx_view_bytes + sess->stats.tx_queued_bytes;
}

bool mr_session_credit_blocked(struct mr_session *sess)
{
	if (sess->credit_stalled)
		return true;
	if (!sess->buffer_limit || mr_session_buffered(sess) < sess->buffer_limit)
		return false;
	sess->credit_stalled = true;
	sess->stats.credit_stalls++;
	return true;
}

/* Grants what a stream held back while the session was stalled. */
static void regrant(struct mr_stream *stream, void *arg)
{
	(void)arg;
	mr_stream_credit(stream, 0);
}

void mr_session_check_credit(struct mr_session *sess)
{
	uint64_t limit = sess->buffer_limit;

	/* Resuming only below 3/4 of the limit keeps a session that hovers
	 * at it from walking its streams at every release. */
	if (!sess->credit_stalled || sess->ended ||
	    (limit && mr_session_buffered(sess) >= limit - limit / 4))
		return;
	sess->credit_stalled = false;
	mr_stream_map_each(&sess->streams, regrant, NULL);
}

uint64_t mr_session_max_buffered(const struct mr_session *sess)
{
	return sess->cfg.max_buffered;
}

void mr_session_set_buffer_limit(struct mr_session *sess, uint64_t limit)
{
	if (limit == sess->buffer_limit)
		return;
	sess->buffer_limit = limit;
	mr_session_check_credit(sess);
}

void mr_session_tx_unqueued(struct mr_session *sess, uint64_t n)
{
	sess->stats.tx_queued_bytes -= n;
	mr_session_check_credit(sess);
}
