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
#include <string.h>

#include "engine/session_internal.h"

/* The allocator of the stream's memory, also once its session is gone. */
static const struct muxring_mem *stream_mem(const struct mr_stream *stream)
{
	return stream->session ? stream->session->cfg.mem : stream->orphan_mem;
}

struct mr_stream *mr_stream_new(struct mr_session *sess, uint32_t id,
				bool local)
{
	struct mr_stream *stream = mr_calloc(sess->cfg.mem, 1, sizeof(*stream));

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
		mr_free(sess->cfg.mem, stream);
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
		stream->orphan_mem = sess->cfg.mem;
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
	mr_rx_block_drop(stream);
	mr_free(stream_mem(stream), stream);
}

/* Write records, and smallest batch blocks, kept per session for reuse;
 * beyond it they are freed. */
#define WRITE_CACHE_MAX 64u
#define BLOCK_CACHE_MAX 64u

/* Memory a queued write holds (write_memory in the session's stats). */
static uint64_t write_footprint(const struct mr_write *write)
{
	if (!write->buf)
		return sizeof(*write);
	return sizeof(*write) + write->buf->cap +
	       (write->batch ? sizeof(struct mr_buf) : 0);
}

static void account_write(struct mr_session *sess,
			  const struct mr_write *write, bool add)
{
	uint64_t bytes = write->len, mem = write_footprint(write);

	if (add) {
		sess->stats.write_bytes_queued += bytes;
		sess->stats.write_memory += mem;
	} else {
		sess->stats.write_bytes_queued -= bytes;
		sess->stats.write_memory -= mem;
	}
}

/* Drops the write's buffer and keeps the write for the session to reuse;
 * frees it when the stream has no session any more or the cache is full. */
static void free_write(struct mr_stream *stream, struct mr_write *write)
{
	struct mr_session *sess = stream->session;

	if (sess)
		account_write(sess, write, false);
	if (write->buf)
		mr_buf_unref(write->buf);
	if (sess && sess->write_cache_count < WRITE_CACHE_MAX) {
		write->next = sess->write_cache;
		sess->write_cache = write;
		sess->write_cache_count++;
		return;
	}
	mr_free(stream_mem(stream), write);
}

void mr_stream_free_write_cache(struct mr_session *sess)
{
	struct mr_write *write;
	struct mr_buf *block;

	while ((write = sess->write_cache)) {
		sess->write_cache = write->next;
		mr_free(sess->cfg.mem, write);
	}
	sess->write_cache_count = 0;
	while ((block = sess->block_cache)) {
		memcpy(&sess->block_cache, block->data, sizeof(block));
		mr_free(sess->cfg.mem, block);
	}
	sess->block_cache_count = 0;
}

static struct mr_write *alloc_write(struct mr_session *sess)
{
	struct mr_write *write = sess->write_cache;

	if (!write)
		return mr_malloc(sess->cfg.mem, sizeof(*write));
	sess->write_cache = write->next;
	sess->write_cache_count--;
	return write;
}

/* Part i of a batch: the first is in the write, the others are stacked
 * down from the block's end. */
static struct mr_write_part *part_at(struct mr_write *batch, uint32_t i)
{
	if (!i)
		return &batch->first;
	return (struct mr_write_part *)(batch->buf->data + batch->buf->cap) - i;
}

static void emit_write_done(struct mr_stream *stream, uint64_t user_data,
			    int64_t result, bool silent)
{
	struct mr_event ev = {
		.type = MR_EV_WRITE_DONE,
		.stream = stream,
		.result = result,
		.user_data = user_data,
	};

	if (!stream->session || silent)
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

/* The next write of a batch to report is done: moves past it. */
static void next_write(struct mr_write *batch, const struct mr_write_part *run)
{
	if (++batch->run_done < run->count)
		return;
	batch->run_start += run->len * run->count;
	batch->run_done = 0;
	batch->parts_done++;
}

/* Reports the writes of a batch whose last byte the transport took. */
static void report_parts(struct mr_stream *stream, struct mr_write *batch)
{
	while (batch->parts_done < batch->parts) {
		const struct mr_write_part *run =
			part_at(batch, batch->parts_done);

		if (batch->run_start + (uint64_t)(batch->run_done + 1) * run->len >
		    batch->acked)
			return;
		next_write(batch, run);
		emit_write_done(stream, run->user_data, run->len, run->silent);
	}
}

/* Reports and frees the writes at the head of the list that are fully
 * committed and fully taken by the transport (and the parts of a batch
 * that are, as they are). */
static void complete_writes(struct mr_stream *stream)
{
	struct mr_write *write;

	while ((write = stream->writes)) {
		if (write->batch)
			report_parts(stream, write);
		if (write == stream->commit_next || write->acked < write->len)
			return;
		stream->writes = write->next;
		if (!stream->writes)
			stream->writes_tail = NULL;
		if (!write->batch)
			emit_write_done(stream, write->user_data,
					(int64_t)write->len, write->silent);
		free_write(stream, write);
	}
}

/* n bytes of the stream's writes will never wait again. */
static void unqueue(struct mr_stream *stream, size_t n)
{
	if (stream->session && n)
		mr_session_tx_unqueued(stream->session, n);
}

void mr_stream_write_acked(struct mr_stream *stream, struct mr_write *write,
			   size_t len)
{
	write->acked += len;
	unqueue(stream, len);
	if (write->failed) {
		if (write->acked == write->committed)
			free_write(stream, write);
		return;
	}
	complete_writes(stream);
}

/* Reports the write (every part not yet reported, for a batch) failed. */
static void report_failed(struct mr_stream *stream, struct mr_write *write,
			  int err)
{
	if (!write->batch) {
		emit_write_done(stream, write->user_data, err, write->silent);
		return;
	}
	while (write->parts_done < write->parts) {
		const struct mr_write_part *run =
			part_at(write, write->parts_done);

		next_write(write, run);
		emit_write_done(stream, run->user_data, err, run->silent);
	}
}

/* Reports every write from `write` on as failed and unlinks it; writes
 * with pieces still in the ring are freed when those are sent. */
static void fail_write_chain(struct mr_stream *stream, struct mr_write *write,
			     int err)
{
	while (write) {
		struct mr_write *next = write->next;

		report_failed(stream, write, err);
		/* Committed bytes leave the queue when the transport takes
		 * them; the others never will. */
		unqueue(stream, write->len - write->committed);
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

/* Fails every write of runs [from, parts) but the first `skip` ones. */
static void fail_runs(struct mr_stream *stream, struct mr_write *batch,
		      uint32_t from, uint32_t skip, int err)
{
	uint32_t i, k;

	for (i = from; i < batch->parts; i++, skip = 0) {
		const struct mr_write_part *run = part_at(batch, i);

		for (k = skip; k < run->count; k++)
			emit_write_done(stream, run->user_data, err, run->silent);
	}
}

/* Cuts a batch at its committed bytes: the writes wholly committed stay
 * to complete normally, the others fail now (a write cut in the middle
 * too, as a single write would). What follows the cut is never sent, and
 * the batch is sealed: bytes appended after the cut would follow a write
 * that failed. */
static void cut_batch(struct mr_stream *stream, struct mr_write *batch,
		      int err)
{
	uint64_t start = batch->run_start;
	uint32_t i = batch->parts_done, keep;

	for (; i < batch->parts; i++) {
		struct mr_write_part *run = part_at(batch, i);
		uint64_t end = start + (uint64_t)run->len * run->count;

		if (end > batch->committed) {
			keep = (uint32_t)((batch->committed - start) / run->len);
			fail_runs(stream, batch, i, keep, err);
			run->count = keep;
			batch->parts = keep ? i + 1 : i;
			break;
		}
		start = end;
	}
	batch->sealed = true;
	if (stream->session)
		stream->session->stats.write_bytes_queued -=
			batch->len - batch->committed;
	batch->len = batch->committed;
}

void mr_stream_fail_pending_writes(struct mr_stream *stream, int err)
{
	struct mr_write *pending = stream->commit_next, *keep = NULL;

	if (!pending)
		return;
	if (pending->batch && pending->committed) {
		cut_batch(stream, pending, err);
		keep = pending;
		pending = pending->next;
	} else if (pending != stream->writes) {
		for (keep = stream->writes; keep->next != pending;
		     keep = keep->next)
			;
	}
	if (keep)
		keep->next = NULL;
	else
		stream->writes = NULL;
	stream->writes_tail = keep;
	stream->commit_next = NULL;
	fail_write_chain(stream, pending, err);
	/* A batch cut where the transport already took everything is done. */
	complete_writes(stream);
	mr_stream_update_ready(stream);
}

void mr_stream_credit(struct mr_stream *stream, uint32_t n)
{
	struct mr_session *sess = stream->session;
	uint32_t grant;
	int err;

	if (!sess || stream->recv_state != MR_RECV_OPEN ||
	    (stream->flags & MR_STREAM_FINISHED))
		return;
	stream->recv_consumed += n;
	grant = stream->recv_consumed;
	if (grant < sess->cfg.window / 4 || mr_session_credit_blocked(sess))
		return;
	err = mr_outbound_wndinc(sess, stream->id, grant);
	if (err == -ENOMEM)
		sess->out_of_memory = true; /* a stalled window: end instead */
	if (err)
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
	mr_free(stream->session->cfg.mem, dl);
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
		mr_free(sess->cfg.mem, dl);
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
	mr_rx_block_drop(stream);
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

/* Why the stream takes no write now, or 0. */
static int write_error(const struct mr_stream *stream)
{
	int err = usable_error(stream);

	if (err)
		return err;
	if (stream->send_state != MR_SEND_OPEN)
		return MUXRING_ERR(MUXRING_STREAM_CLOSED);
	return 0;
}

static void append_write(struct mr_stream *stream, struct mr_write *write)
{
	if (stream->writes_tail)
		stream->writes_tail->next = write;
	else
		stream->writes = write;
	stream->writes_tail = write;
}

int mr_stream_write(struct mr_stream *stream, struct mr_buf *buf,
		    const uint8_t *data, size_t len, uint64_t user_data)
{
	struct mr_write *write;
	int err = write_error(stream);

	if (err)
		return err;
	write = alloc_write(stream->session);
	if (!write)
		return -ENOMEM;
	*write = (struct mr_write){
		.buf = buf, .data = data, .len = len, .user_data = user_data,
	};
	if (buf)
		mr_buf_ref(buf);
	account_write(stream->session, write, true);
	stream->session->stats.tx_queued_bytes += len;
	append_write(stream, write);
	if (!stream->commit_next)
		stream->commit_next = write;
	mr_stream_update_ready(stream);
	return 0;
}

/* True when the batch has room for one more part of len bytes (whose
 * record goes in the block: the batch has its first part already). */
static bool batch_fits(const struct mr_write *batch, size_t len)
{
	size_t used = batch->len +
		      (size_t)batch->parts * sizeof(struct mr_write_part);

	return !batch->sealed && used <= batch->buf->cap &&
	       len <= batch->buf->cap - used;
}

/* The batch's last run, when the write can join it: same length,
 * user_data and silence, and not yet wholly reported. */
static struct mr_write_part *joinable_run(struct mr_write *batch, size_t len,
					  uint64_t user_data, bool silent)
{
	struct mr_write_part *run;

	if (batch->parts_done == batch->parts || batch->sealed)
		return NULL;
	run = part_at(batch, batch->parts - 1);
	/* The block holds the bytes and the records of runs 1..parts-1. */
	if (run->len != len || run->user_data != user_data ||
	    run->silent != silent ||
	    batch->len + (size_t)(batch->parts - 1) * sizeof(*run) + len >
		    batch->buf->cap)
		return NULL;
	return run;
}

/* The block of the stream's next batch: twice the last one (a backlog of
 * small writes takes ever fewer, larger blocks), at least MR_BATCH_MIN,
 * at most MR_BATCH_MAX, and big enough for the write that needs it. */
static size_t next_batch_size(const struct mr_write *last, size_t len)
{
	size_t need = sizeof(struct mr_buf) + len + sizeof(struct mr_write_part);
	size_t size = MR_BATCH_MIN;

	if (last && last->batch) {
		size = 2 * (sizeof(struct mr_buf) + last->buf->cap);
		if (size > MR_BATCH_MAX)
			size = MR_BATCH_MAX;
	}
	while (size < need)
		size *= 2;
	return size;
}

/* A batch block goes back to its session's cache when it is of the
 * smallest size and the cache has room. Blocks never outlive their
 * session: the writes and transmit segments that hold them go first. */
static void release_block(struct mr_buf *block)
{
	struct mr_session *sess = block->owner;

	if (block->cap + sizeof(*block) != MR_BATCH_MIN ||
	    sess->block_cache_count >= BLOCK_CACHE_MAX) {
		mr_free(sess->cfg.mem, block);
		return;
	}
	memcpy(block->data, &sess->block_cache, sizeof(block));
	sess->block_cache = block;
	sess->block_cache_count++;
}

static struct mr_buf *alloc_block(struct mr_session *sess, size_t size)
{
	struct mr_buf *block = sess->block_cache;

	if (size == MR_BATCH_MIN && block) {
		memcpy(&sess->block_cache, block->data, sizeof(block));
		sess->block_cache_count--;
	} else {
		block = mr_malloc(sess->cfg.mem, size);
		if (!block)
			return NULL;
	}
	*block = (struct mr_buf){
		.refs = 1,
		.data = (uint8_t *)(block + 1),
		.cap = size - sizeof(*block),
		.release = release_block,
		.owner = sess,
	};
	return block;
}

static struct mr_write *new_batch(struct mr_session *sess, size_t size)
{
	struct mr_write *batch = alloc_write(sess);
	struct mr_buf *buf;

	if (!batch)
		return NULL;
	buf = alloc_block(sess, size);
	if (!buf) {
		mr_free(sess->cfg.mem, batch);
		return NULL;
	}
	*batch = (struct mr_write){.buf = buf, .data = buf->data, .batch = true};
	account_write(sess, batch, true);
	return batch;
}


int mr_stream_write_copy(struct mr_stream *stream, const void *data,
			 size_t len, uint64_t user_data, bool silent)
{
	struct mr_session *sess = stream->session;
	struct mr_write *batch = stream->writes_tail;
	struct mr_write_part *part;
	int err = write_error(stream);

	if (err)
		return err;
	if (len > MR_BATCH_WRITE_MAX)
		return -EINVAL;
	/* A zero-length write has no bytes to pack: it is a single write of
	 * no buffer, done once everything before it (and the SYN) is out. */
	if (!len) {
		err = mr_stream_write(stream, NULL, NULL, 0, user_data);
		if (!err && silent)
			mr_stream_write_silence(stream);
		return err;
	}
	if (batch && batch->batch &&
	    (part = joinable_run(batch, len, user_data, silent))) {
		part->count++;
	} else {
		if (!batch || !batch->batch || !batch_fits(batch, len)) {
			batch = new_batch(sess, next_batch_size(batch, len));
			if (!batch)
				return -ENOMEM;
			append_write(stream, batch);
		}
		part = part_at(batch, batch->parts++);
		*part = (struct mr_write_part){
			.user_data = user_data,
			.len = (uint32_t)len,
			.count = 1,
			.silent = silent,
		};
	}
	memcpy(batch->buf->data + batch->len, data, len);
	batch->len += len;
	sess->stats.write_bytes_queued += len;
	sess->stats.tx_queued_bytes += len;
	/* A batch already fully committed has new bytes to send again. */
	if (!stream->commit_next)
		stream->commit_next = batch;
	mr_stream_update_ready(stream);
	return 0;
}

void mr_stream_write_silence(struct mr_stream *stream)
{
	if (stream->writes_tail)
		stream->writes_tail->silent = true;
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
		dl = mr_calloc(sess->cfg.mem, 1, sizeof(*dl));
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
