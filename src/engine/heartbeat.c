/*
 * heartbeat.c - round-trip probes on a stream of their own, as the Go
 * reference does them: the requester opens one typed stream of type
 * 0xFFFFFFFF and writes a random 32-bit value every interval; the other side
 * echoes every 4 bytes it reads there. Nothing new goes on the wire, so a Go
 * peer answers our beats and we answer its.
 *
 * Two things differ from the reference, both to avoid false alarms:
 * heartbeat streams are marked urgent, so their frames are committed ahead
 * of bulk data (see outbound.c), and a failure is declared only after
 * interval + tolerance without any echo, measured from the last good echo,
 * so one slow beat does not count twice.
 *
 * The engine reads no clock: times come from mr_session_set_now and
 * mr_session_expire, and values from a generator the caller seeds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session_internal.h"

/* Beats awaiting their echo; older ones are forgotten beyond this. */
#define MR_HEARTBEAT_INFLIGHT 8u

struct mr_beat {
	uint32_t value;
	uint64_t sent_at;
};

struct mr_heartbeat {
	struct mr_stream *stream; /* our heartbeat stream (a reference) */
	uint64_t interval, tolerance;
	uint64_t next_beat;       /* when the next periodic beat is due */
	uint64_t last_ok;         /* last echo, start, or failure report */
	uint64_t rng;             /* xorshift64* state, never 0 */
	struct mr_beat inflight[MR_HEARTBEAT_INFLIGHT];
	uint32_t head, count;
};

static uint32_t next_value(struct mr_heartbeat *hb)
{
	hb->rng ^= hb->rng >> 12;
	hb->rng ^= hb->rng << 25;
	hb->rng ^= hb->rng >> 27;
	return (uint32_t)((hb->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static int open_heartbeat_stream(struct mr_session *sess,
				 struct mr_heartbeat *hb)
{
	struct mr_stream *stream;
	int err = mr_session_open_flagged(sess, MR_HEARTBEAT_TYPE,
					  MR_STREAM_HEARTBEAT | MR_STREAM_URGENT,
					  &stream);

	if (err)
		return err;
	mr_stream_ref(stream);
	hb->stream = stream;
	return 0;
}

static void forget_stream(struct mr_heartbeat *hb)
{
	if (hb->stream)
		mr_stream_unref(hb->stream);
	hb->stream = NULL;
}

int mr_session_heartbeat_start(struct mr_session *sess, uint64_t interval,
			       uint64_t tolerance, uint64_t seed)
{
	struct mr_heartbeat *hb;
	int err;

	if (!sess->cfg.typed || !interval)
		return -EINVAL;
	if (sess->heartbeat)
		return -EALREADY;
	hb = mr_calloc(sess->cfg.mem, 1, sizeof(*hb));
	if (!hb)
		return -ENOMEM;
	err = open_heartbeat_stream(sess, hb);
	if (err) {
		mr_free(sess->cfg.mem, hb);
		return err;
	}
	hb->interval = interval;
	hb->tolerance = tolerance;
	hb->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
	hb->last_ok = sess->now;
	hb->next_beat = sess->now + interval;
	sess->heartbeat = hb;
	return 0;
}

int mr_session_heartbeat_configure(struct mr_session *sess, uint64_t interval,
				   uint64_t tolerance)
{
	struct mr_heartbeat *hb = sess->heartbeat;

	if (!hb || !interval)
		return -EINVAL;
	hb->next_beat = hb->next_beat - hb->interval + interval;
	hb->interval = interval;
	hb->tolerance = tolerance;
	return 0;
}

static void remember_beat(struct mr_heartbeat *hb, uint32_t value,
			  uint64_t now)
{
	if (hb->count == MR_HEARTBEAT_INFLIGHT) {
		hb->head = (hb->head + 1) % MR_HEARTBEAT_INFLIGHT;
		hb->count--;
	}
	hb->inflight[(hb->head + hb->count) % MR_HEARTBEAT_INFLIGHT] =
		(struct mr_beat){.value = value, .sent_at = now};
	hb->count++;
}

static int send_beat(struct mr_session *sess, struct mr_heartbeat *hb)
{
	uint8_t bytes[4];
	uint32_t value = next_value(hb);
	int err;

	if (hb->stream && (hb->stream->flags & MR_STREAM_FINISHED))
		forget_stream(hb);
	if (!hb->stream) {
		err = open_heartbeat_stream(sess, hb);
		if (err)
			return err;
	}
	mr_put_be32(bytes, value);
	err = mr_stream_write_copy(hb->stream, bytes, sizeof(bytes), 0, false);
	if (!err)
		remember_beat(hb, value, sess->now);
	return err;
}

int mr_session_heartbeat_beat(struct mr_session *sess)
{
	if (!sess->heartbeat)
		return -EINVAL;
	if (sess->ended)
		return MUXRING_ERR(MUXRING_SESSION_CLOSED);
	return send_beat(sess, sess->heartbeat);
}

/* An echo of ours: times the beat it answers and forgets older ones,
 * whose echoes can no longer come (the peer echoes in order). */
static void on_echo(struct mr_session *sess, struct mr_heartbeat *hb,
		    uint32_t value)
{
	uint32_t i;

	for (i = 0; i < hb->count; i++) {
		const struct mr_beat *beat =
			&hb->inflight[(hb->head + i) % MR_HEARTBEAT_INFLIGHT];

		if (beat->value == value) {
			struct mr_event ev = {
				.type = MR_EV_HEARTBEAT,
				.result = (int64_t)(sess->now - beat->sent_at),
			};

			hb->head = (hb->head + i + 1) % MR_HEARTBEAT_INFLIGHT;
			hb->count -= i + 1;
			hb->last_ok = sess->now;
			mr_session_emit(sess, &ev);
			return;
		}
	}
}

void mr_heartbeat_on_word(struct mr_stream *stream, uint32_t word)
{
	struct mr_session *sess = stream->session;

	if (sess->heartbeat && sess->heartbeat->stream == stream)
		on_echo(sess, sess->heartbeat, word);
}

/* Queues len echo bytes (packed with the stream's other waiting writes).
 * Out of memory, the session fails (at the next event poll) rather than
 * leave the peer's beats unanswered; on a stream that is closing or reset
 * the echo is simply not owed any more. Returns false after a failure. */
static bool echo_bytes(struct mr_stream *stream, const uint8_t *bytes,
		       size_t len)
{
	size_t n;
	int err = 0;

	for (; !err && len; bytes += n, len -= n) {
		n = len < MR_BATCH_WRITE_MAX ? len : MR_BATCH_WRITE_MAX;
		err = mr_stream_write_copy(stream, bytes, n, 0, false);
	}
	if (err == -ENOMEM)
		stream->session->out_of_memory = true;
	return !err;
}

/*
 * The echo of a value is the value's own bytes, so every whole value of a
 * payload (the first one completing the bytes an earlier payload left over)
 * goes back as one run of packed bytes: a few write records and one frame
 * per payload, not per value, which a peer sending many values at once
 * would otherwise get from us at 40 times their size in memory.
 */
void mr_heartbeat_echo(struct mr_stream *stream, const uint8_t *data,
		       size_t len)
{
	size_t have = stream->echo_have, whole = (have + len) & ~(size_t)3;
	uint8_t head[4];
	size_t i;

	if (stream->flags & MR_STREAM_FINISHED)
		return;
	if (whole) {
		for (i = 0; i < have; i++)
			head[i] = (uint8_t)(stream->echo_word >>
					    (8 * (have - 1 - i)));
		if (echo_bytes(stream, head, have))
			echo_bytes(stream, data, whole - have);
		/* What is left of an unfinished value waits for the next
		 * payload. */
		stream->echo_have = 0;
	}
	for (i = whole ? whole - have : 0; i < len; i++) {
		stream->echo_word = stream->echo_word << 8 | data[i];
		stream->echo_have = (uint8_t)((stream->echo_have + 1) & 3);
	}
}

static uint64_t failure_due(const struct mr_heartbeat *hb)
{
	return hb->last_ok + hb->interval + hb->tolerance;
}

uint64_t mr_heartbeat_next_due(const struct mr_session *sess)
{
	const struct mr_heartbeat *hb = sess->heartbeat;
	uint64_t due;

	if (!hb || sess->ended)
		return 0;
	due = hb->next_beat;
	if (hb->count && failure_due(hb) < due)
		due = failure_due(hb);
	return due;
}

uint64_t mr_heartbeat_expire(struct mr_session *sess)
{
	struct mr_heartbeat *hb = sess->heartbeat;

	if (!hb || sess->ended)
		return 0;
	if (sess->now >= hb->next_beat) {
		send_beat(sess, hb);
		hb->next_beat = sess->now + hb->interval;
	}
	if (hb->count && sess->now >= failure_due(hb)) {
		struct mr_event ev = {.type = MR_EV_HEARTBEAT_FAILED};

		hb->last_ok = sess->now;
		mr_session_emit(sess, &ev);
	}
	return mr_heartbeat_next_due(sess);
}

void mr_heartbeat_free(struct mr_session *sess)
{
	if (!sess->heartbeat)
		return;
	forget_stream(sess->heartbeat);
	mr_free(sess->cfg.mem, sess->heartbeat);
	sess->heartbeat = NULL;
}
