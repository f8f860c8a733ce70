/*
 * filter_io.c - a session's transport filter (TLS) on the ring.
 *
 * The main idea: the filter is a byte transformer with a byte-array
 * interface (muxring_filter_ops), and this file owns every buffer around
 * it, so the filter needs to know nothing of rings, blocks or the engine.
 * Ciphertext comes from the receive ring and is fed as it lies there;
 * plaintext is read into 64 KiB blocks of the loop's copy cache and handed
 * to the engine, whose views keep the block alive; on the way out the
 * engine's iovecs are packed into records, encrypted straight into one
 * block (set_output) or drained into it, and the block leaves in one
 * send. When the kernel takes the sending over (kTLS), the session sends
 * like an unfiltered one and only receiving goes through the filter.
 *
 * The kernel may then take the receiving over as well, but only at a point
 * of the byte stream the filter chooses (TLS: a record boundary): the
 * multishot receive is cancelled and its last bytes fed, the rest of a
 * record is read exactly (a plain recv into a block, never the ring), and
 * once the filter says the kernel has it, the session receives like an
 * unfiltered one: zero-copy views of the ring.
 *
 * Failures (a negative value from the filter, the handshake timeout) end
 * the session through the engine like a transport error; the filter's text
 * is kept for the SESSION_ENDED entry. The filter may still have an alert
 * to send: sending continues, for that only.
 */
#include "uring/filter_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "engine/mem.h"
#include "uring/session_io.h"

static const struct muxring_filter_ops *ops(const struct muxring_session *s)
{
	return s->fio->filter->ops;
}

/* A copy of text from the loop's allocator (NULL when it has no memory:
 * the session then ends without words). */
static char *copy_text(const struct muxring_mem *mem, const char *text)
{
	size_t n = strlen(text) + 1;
	char *p = mr_malloc(mem, n);

	if (p)
		memcpy(p, text, n);
	return p;
}

/* Ends the session with err; `text` names the cause (the filter's words
 * when it has some). */
static void fio_fail(struct muxring_session *s, int err, const char *text)
{
	struct mr_fio *fio = s->fio;
	const char *why = fio->state && ops(s)->error
				  ? ops(s)->error(fio->state)
				  : NULL;

	if (s->flags & MR_SIO_FILTER_FAILED)
		return;
	s->flags |= MR_SIO_FILTER_FAILED;
	s->flags &= ~(uint32_t)MR_SIO_HANDSHAKING;
	if (!fio->end_text)
		fio->end_text = copy_text(s->loop->mem,
					  text ? text : why ? why
					  : "transport filter failed");
	if (!(s->flags & MR_SIO_READY_POSTED))
		s->ready_res = err;
	mr_sio_transport_end(s, err);
	mr_loop_mark_dirty(s);
}

int mr_fio_open(struct muxring_session *s, enum muxring_role role,
		const char *host)
{
	struct mr_fio *fio = s->fio;
	int err = ops(s)->open(fio->filter->arg, s, role, host, &fio->state);

	if (err) {
		fio->state = NULL;
		fio_fail(s, err, "the transport filter could not start");
	}
	return err;
}

static size_t fio_pending(const struct muxring_session *s)
{
	return s->fio->state ? ops(s)->pending(s->fio->state) : 0;
}

void mr_fio_start(struct muxring_session *s)
{
	struct mr_fio *fio = s->fio;
	uint64_t t = fio->filter->handshake_timeout_ns;

	if (s->flags & MR_SIO_FILTER_FAILED || !t)
		return;
	s->flags |= MR_SIO_HANDSHAKING;
	fio->handshake_deadline = muxring_now_ns() + t;
	if (!s->deadline || fio->handshake_deadline < s->deadline)
		(void)mr_timers_set(&s->loop->timers, s,
				    fio->handshake_deadline);
}

bool mr_fio_active(const struct muxring_session *s)
{
	return s->fio != NULL;
}

bool mr_fio_decrypts(const struct muxring_session *s)
{
	return s->fio && !(s->flags & MR_SIO_RX_PASS);
}

bool mr_fio_sends(const struct muxring_session *s)
{
	return s->fio && !(s->flags & MR_SIO_FILTER_PASS);
}

bool mr_fio_ready(const struct muxring_session *s)
{
	return s->flags & (MR_SIO_FILTER_UP | MR_SIO_FILTER_FAILED) ||
	       muxring_engine_ended(s->engine);
}

/* The handshake just completed: stop its clock. */
static void note_established(struct muxring_session *s)
{
	if (s->flags & MR_SIO_FILTER_UP || !ops(s)->established(s->fio->state))
		return;
	s->flags |= MR_SIO_FILTER_UP;
	s->flags &= ~(uint32_t)MR_SIO_HANDSHAKING;
	s->fio->handshake_deadline = 0;
	mr_loop_mark_dirty(s);
}

/* A block with room for a record, or NULL (out of memory). */
static struct mr_buf *plain_block(struct muxring_session *s)
{
	struct mr_fio *fio = s->fio;

	if (fio->plain && fio->plain->cap - fio->plain_off >= MR_PLAIN_ROOM)
		return fio->plain;
	if (fio->plain)
		mr_buf_unref(fio->plain); /* its views keep it */
	fio->plain = mr_copy_cache_get(s->loop->copies, MR_PLAIN_BLOCK);
	fio->plain_off = 0;
	return fio->plain;
}

/* Reads every byte the filter can give and feeds the engine with it. */
static void pump_plain(struct muxring_session *s)
{
	struct mr_fio *fio = s->fio;
	struct mr_buf *b;
	long n;

	while (!(s->flags & MR_SIO_FILTER_FAILED) && mr_fio_active(s)) {
		if (!(b = plain_block(s))) {
			fio_fail(s, -ENOMEM, "out of memory for decrypted data");
			return;
		}
		n = ops(s)->read(fio->state, b->data + fio->plain_off,
				 b->cap - fio->plain_off);
		note_established(s);
		if (n < 0)
			fio_fail(s, (int)n, NULL);
		if (n <= 0)
			return;
		if (!muxring_engine_ended(s->engine)) {
			muxring_engine_set_now(s->engine, s->loop->now);
			muxring_engine_feed_buf(s->engine, mr_engine_buf_of(b),
						b->data + fio->plain_off,
						(size_t)n);
		}
		fio->plain_off += (size_t)n;
	}
}

/* After a pump: a block no view holds goes back to the loop's cache, so
 * that an idle session holds none (the next pump takes one, most likely
 * this one, still warm). */
static void drop_idle_block(struct muxring_session *s)
{
	struct mr_fio *fio = s->fio;

	if (fio->plain && fio->plain->refs == 1) {
		mr_buf_unref(fio->plain);
		fio->plain = NULL;
	}
}

void mr_fio_input(struct muxring_session *s, const uint8_t *data, size_t len)
{
	int err;

	if (s->flags & MR_SIO_FILTER_FAILED)
		return;
	err = ops(s)->feed(s->fio->state, data, len);
	if (err) {
		fio_fail(s, err, NULL);
	} else if (len) {
		pump_plain(s);
		drop_idle_block(s);
	} else {
		mr_sio_transport_end(s, 0);
	}
	/* data is a ring buffer about to go back to the ring. */
	if (ops(s)->feed_end && s->fio->state)
		ops(s)->feed_end(s->fio->state);
}

void mr_fio_step(struct muxring_session *s)
{
	if (!(s->flags & (MR_SIO_FILTER_UP | MR_SIO_FILTER_FAILED)))
		pump_plain(s);
}

/* Hands the n iovecs of the engine's frames in slot to the filter,
 * packing runs of small ones into the slot's bounce buffer so that they
 * make one record, not one each. Returns 0 or the filter's error. */
static int encrypt_frames(struct muxring_session *s, struct mr_send_slot *slot,
			  size_t n)
{
	void *state = s->fio->state;
	size_t i, used = 0, taken = 0;
	long r = 0;

	for (i = 0; i < n && r >= 0; i++) {
		const struct iovec *v = &slot->iov[i];

		if (v->iov_len <= MR_SEND_BOUNCE - used &&
		    v->iov_len <= MR_SEND_SMALL) {
			memcpy(slot->bounce + used, v->iov_base, v->iov_len);
			used += v->iov_len;
			continue;
		}
		if (used && (r = ops(s)->write(state, slot->bounce, used)) < 0)
			break;
		used = 0;
		if (v->iov_len <= MR_SEND_SMALL) {
			memcpy(slot->bounce, v->iov_base, v->iov_len);
			used = v->iov_len;
		} else {
			r = ops(s)->write(state, v->iov_base, v->iov_len);
		}
	}
	if (r >= 0 && used)
		r = ops(s)->write(state, slot->bounce, used);
	if (r < 0)
		return (int)r;
	for (i = 0; i < n; i++)
		taken += slot->iov[i].iov_len;
	/* The filter holds a copy now (encrypted): the engine's memory is
	 * free, and WRITE_DONE means "encrypted", not "in the kernel". */
	if (taken)
		muxring_engine_sent(s->engine, taken);
	return 0;
}

/* Room for the ciphertext of `plain` bytes in n iovecs: a TLS record
 * adds at most MR_RECORD_OVERHEAD bytes per 16 KiB and per flush of
 * packed small frames; the slack covers any filter of that kind. */
#define MR_RECORD_OVERHEAD 64u
static size_t cipher_room(size_t plain, size_t n)
{
	return plain + (plain / (16u << 10) + n + 1) * MR_RECORD_OVERHEAD;
}

/* Encrypts what the engine has ready into the send block, right after
 * what the filter had pending (handshake, alerts); false when there is
 * nothing to send (or no memory: retried next turn). */
static bool fill_cipher(struct muxring_session *s)
{
	struct mr_fio *fio = s->fio;
	struct mr_send_slot *slot = NULL;
	size_t n = 0, plain = 0, spill, cap, used;
	int err = 0;

	if (s->flags & MR_SIO_PASS_ASKED && !(s->flags & MR_SIO_FILTER_FAILED) &&
	    muxring_engine_want_send(s->engine)) {
		if (!(slot = mr_loop_slot_get(s->loop))) {
			mr_loop_mark_dirty(s);
			return false;
		}
		n = muxring_engine_send_iov(s->engine, slot->iov, MR_SEND_IOV,
					    MR_FILTER_SEND_MAX_BYTES);
		for (size_t i = 0; i < n; i++)
			plain += slot->iov[i].iov_len;
	}
	spill = fio_pending(s);
	cap = spill + (n ? cipher_room(plain, n) : 0);
	fio->cipher = cap ? mr_copy_cache_get(s->loop->copies, cap) : NULL;
	if (!fio->cipher) {
		if (slot)
			mr_loop_slot_put(s->loop, slot);
		if (cap)
			mr_loop_mark_dirty(s); /* out of memory: next turn */
		return false;
	}
	used = spill ? ops(s)->drain(fio->state, fio->cipher->data, spill) : 0;
	if (n) {
		if (ops(s)->set_output)
			ops(s)->set_output(fio->state, fio->cipher->data + used,
					   cap - used);
		err = encrypt_frames(s, slot, n);
		if (ops(s)->set_output)
			used += ops(s)->output_done(fio->state);
		/* Without set_output (or past the room): from pending. */
		used += ops(s)->drain(fio->state, fio->cipher->data + used,
				      cap - used);
		mr_loop_slot_put(s->loop, slot);
	}
	if (err)
		fio_fail(s, err, NULL);
	if (!used) {
		mr_buf_unref(fio->cipher);
		fio->cipher = NULL;
		return false;
	}
	fio->cipher_len = used;
	fio->cipher_off = 0;
	return true;
}

/* Once the handshake's own bytes have all left, asks the filter (once)
 * whether the kernel takes the sending over. */
static void ask_passthrough(struct muxring_session *s)
{
	if (s->flags & (MR_SIO_PASS_ASKED | MR_SIO_FILTER_FAILED) ||
	    !(s->flags & MR_SIO_FILTER_UP))
		return;
	if (!ops(s)->passthrough) {
		s->flags |= MR_SIO_PASS_ASKED; /* nothing to wait for */
		return;
	}
	if (s->fio->cipher || fio_pending(s))
		return;
	s->flags |= MR_SIO_PASS_ASKED;
	if (!ops(s)->passthrough(s->fio->state))
		return;
	s->flags |= MR_SIO_FILTER_PASS;
	if (ops(s)->receive_handover)
		s->flags |= MR_SIO_RX_SWITCH;
}

/* ---- handing the receiving over ---------------------------------------- */

/* Cancels the multishot receive; its last completions feed the filter as
 * usual. Waiting for the cancel's own completion too means it can never
 * hit the exact read that may follow under the same user_data. */
static void stop_multishot(struct muxring_session *s)
{
	struct io_uring_sqe *sqe = mr_loop_sqe(s->loop);

	if (!sqe) {
		mr_loop_mark_dirty(s); /* the ring is full: next turn */
		return;
	}
	io_uring_prep_cancel64(sqe, mr_op_data(s, MR_OP_RECV), 0);
	mr_sio_submit(s, sqe, MR_OP_SESS_AUX);
	s->flags |= MR_SIO_RX_STOPPING;
}

/* Reads exactly n bytes (the rest of a record) into a block of their own:
 * they complete as a receive without a ring buffer (session_io.c). False
 * when there is no memory for them (receiving stays with the filter). */
static bool read_exact(struct muxring_session *s, size_t n)
{
	struct mr_fio *fio = s->fio;
	struct io_uring_sqe *sqe;

	fio->rx_exact = mr_copy_cache_get(s->loop->copies, n);
	if (!fio->rx_exact)
		return false;
	if (!(sqe = mr_loop_sqe(s->loop))) {
		mr_buf_unref(fio->rx_exact);
		fio->rx_exact = NULL;
		mr_loop_mark_dirty(s);
		return true;
	}
	io_uring_prep_recv(sqe, s->fd, fio->rx_exact->data, n, MSG_WAITALL);
	mr_sqe_use_file(sqe, s->file_slot);
	mr_sio_submit(s, sqe, MR_OP_RECV);
	s->flags |= MR_SIO_RECV_ARMED;
	return true;
}

bool mr_fio_rx_hold(struct muxring_session *s)
{
	struct mr_fio *fio = s->fio;
	long n;

	if (!(s->flags & MR_SIO_RX_SWITCH))
		return false;
	if (s->flags & MR_SIO_RX_STOPPING || fio->rx_exact)
		return true;
	if (s->state != MR_SIO_OPEN || !fio->state ||
	    s->flags & (MR_SIO_RECV_DONE | MR_SIO_FILTER_FAILED) ||
	    muxring_engine_ended(s->engine)) {
		s->flags &= ~(uint32_t)MR_SIO_RX_SWITCH;
		return false;
	}
	if (s->flags & MR_SIO_RECV_ARMED) {
		stop_multishot(s);
		return true;
	}
	n = ops(s)->receive_handover(fio->state);
	if (n > 0 && read_exact(s, (size_t)n))
		return true;
	s->flags &= ~(uint32_t)MR_SIO_RX_SWITCH;
	if (n == 0)
		s->flags |= MR_SIO_RX_PASS;
	return false;
}

void mr_fio_rx_stopped(struct muxring_session *s)
{
	s->flags &= ~(uint32_t)MR_SIO_RX_STOPPING;
}

bool mr_fio_rx_failed(struct muxring_session *s, int err)
{
	struct mr_fio *fio = s->fio;
	int r;

	/* Once the session is ending, whatever stops the receive just
	 * ends the reading (a close_notify answering ours, typically). */
	if (!(s->flags & MR_SIO_RX_PASS) || !fio->state ||
	    !ops(s)->receive_failed || s->state != MR_SIO_OPEN ||
	    muxring_engine_ended(s->engine))
		return false;
	r = ops(s)->receive_failed(fio->state, err);
	if (r == err)
		return false;
	if (r == 0)
		return true; /* the next step receives again */
	s->flags |= MR_SIO_RECV_DONE;
	if (r == 1)
		mr_sio_transport_end(s, 0);
	else
		fio_fail(s, r, NULL);
	return true;
}

bool mr_fio_start_send(struct muxring_session *s)
{
	struct mr_fio *fio = s->fio;
	struct io_uring_sqe *sqe;

	ask_passthrough(s);
	if (!mr_fio_sends(s))
		return false;
	if (!fio->cipher && (!fio->state || !fill_cipher(s)))
		return false;
	sqe = mr_loop_sqe(s->loop);
	io_uring_prep_send(sqe, s->fd, fio->cipher->data + fio->cipher_off,
			   fio->cipher_len - fio->cipher_off, MSG_NOSIGNAL);
	mr_sio_submit(s, sqe, MR_OP_SEND);
	s->flags |= MR_SIO_SEND_ARMED;
	s->sends++;
	s->loop->stats.sends++;
	return true;
}

void mr_fio_send_done(struct muxring_session *s, int res)
{
	struct mr_fio *fio = s->fio;

	if (res > 0)
		fio->cipher_off += (size_t)res;
	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		s->flags |= MR_SIO_TX_DEAD;
		mr_sio_transport_end(s, res);
	}
	if (fio->cipher_off >= fio->cipher_len || s->flags & MR_SIO_TX_DEAD) {
		mr_buf_unref(fio->cipher);
		fio->cipher = NULL;
	}
}

bool mr_fio_finish(struct muxring_session *s)
{
	struct mr_fio *fio = s->fio;

	if (!(s->flags & (MR_SIO_FILTER_SHUT | MR_SIO_FILTER_FAILED)) &&
	    s->flags & MR_SIO_FILTER_UP && fio->state) {
		s->flags |= MR_SIO_FILTER_SHUT;
		if (ops(s)->shutdown)
			ops(s)->shutdown(fio->state);
	}
	if (s->flags & MR_SIO_TX_DEAD || !mr_fio_sends(s))
		return true;
	return !fio->cipher && !fio_pending(s);
}

uint64_t mr_fio_deadline(const struct muxring_session *s)
{
	return s->flags & MR_SIO_HANDSHAKING ? s->fio->handshake_deadline : 0;
}

void mr_fio_expire(struct muxring_session *s, uint64_t now)
{
	struct mr_fio *fio = s->fio;
	char text[96];

	if (!(s->flags & MR_SIO_HANDSHAKING) || now < fio->handshake_deadline)
		return;
	snprintf(text, sizeof(text),
		 "the handshake did not complete within %llu ms",
		 (unsigned long long)(fio->filter->handshake_timeout_ns /
				      1000000));
	fio_fail(s, -ETIMEDOUT, text);
}

void mr_fio_free(struct muxring_session *s)
{
	struct mr_fio *fio = s->fio;

	if (fio->state)
		ops(s)->close(fio->state);
	if (fio->plain)
		mr_buf_unref(fio->plain);
	if (fio->cipher)
		mr_buf_unref(fio->cipher);
	if (fio->rx_exact)
		mr_buf_unref(fio->rx_exact);
	mr_free(s->loop->mem, fio->end_text);
	mr_free(s->loop->mem, fio);
	s->fio = NULL;
}
