/*
 * fuzz_link_body.c - two engines talking through a link that the input
 * corrupts.
 *
 * Engine A and engine B (src/engine/session.h), one client and one server,
 * run a program of application actions (open, typed open, write, close-write,
 * close, reset, release views, accept, GOAWAY, session close, heartbeat,
 * time) while their bytes cross a link that cuts them into packets and may
 * flip bits in a packet, truncate it, duplicate it, swap it with the next
 * one or drop bytes from it. The input format is in fuzz_body.h.
 *
 * What the engines promise, checked on every event and at the end:
 *   - nothing after SESSION_ENDED; every stream the application saw gets
 *     exactly one STREAM_CLOSED, every accepted write one WRITE_DONE (its
 *     length, or an error); at most one EOF, no data after it, no empty view;
 *   - until a damaged packet reached either side, what each stream
 *     delivers is a prefix of what the peer's application wrote on it, and
 *     at EOF all of it (after that a side may act on what it wrongly
 *     understood, e.g. echo a stream it took for a heartbeat, so even the
 *     genuine bytes it sends back prove nothing);
 *   - no session or stream ends over a fault (ProtocolError,
 *     FlowControlError, FrameSizeError, InternalError, EnhanceYourCalm)
 *     unless damage crossed the link; the applications never use those
 *     codes themselves;
 *   - a session that ends on its own (not closed, not given end-of-file by
 *     its driver) does so only after damage crossed the link, and with
 *     ProtocolError, FrameSizeError or EnhanceYourCalm;
 *   - on an undamaged link, once both applications half-close every stream
 *     and release every view, every stream closes on both sides: nothing
 *     hangs;
 *   - nothing leaks (LeakSanitizer, after every input) and nothing faults.
 * A broken promise prints what broke and aborts. FUZZ_TRACE in the
 * environment prints every action and event on stderr.
 */
#include "fuzz_body.h"
#include "fuzz_input.h"
#include "fuzz_pattern.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session.h"

#define FZL_MAX_OPS 1024u
#define FZL_MAX_WRITTEN (512u << 10)  /* bytes written per input, both sides */
#define FZL_MAX_WRITTEN_SMALL (8u << 10)
#define FZL_HEAP_WRITE 4096u          /* larger writes point into the pattern */
#define FZL_MAX_IDS 256u              /* stream ids below this are checked */
#define FZL_MAX_VIEWS 128u            /* views held before one is released */
#define FZL_MAX_PACKETS 64u           /* packets in flight per direction */
#define FZL_MAX_IOV 32u

/* Codes the applications use, none of them one the engine uses for a
 * fault, so that any fault code seen came from the engine. */
static const uint32_t app_codes[] = {
	MUXRING_NO_ERROR, MUXRING_STREAM_CANCELLED, MUXRING_STREAM_RESET,
	0x100, 0xDEAD,
};
#define NAPP_CODES (sizeof(app_codes) / sizeof(app_codes[0]))

/* Room for one more element in a doubling array of *n elements. */
static void *grow(void *p, size_t n, size_t size)
{
	if (n & (n - 1))
		return p;
	return fz_realloc(p, (n ? 2 * n : 8) * size);
}

/* ---- state --------------------------------------------------------------- */

/* A packet is delivered as the buffer it sits in, as a receive ring
 * would hand it over: views into it hold references. */
struct packet {
	struct mr_buf *buf;  /* bytes at buf->data, room for buf->cap */
	size_t len;
	bool damaged;        /* not what the sender sent, or not in its place */
};

/* One direction of the link: packets the sender emitted, oldest first. */
struct wire {
	struct packet pkt[FZL_MAX_PACKETS];
	size_t npkt;
};

/* Bytes each side's application wrote and received on one stream id. */
struct idrec {
	uint64_t written[2];
	uint64_t received[2];
	bool opened;         /* opened by an application (so not a stray) */
};

/* A stream as its application knows it; once closed, the handle stays
 * valid (the STREAM_CLOSED reference is given back only at the end). */
struct known {
	struct mr_stream *s;
	uint32_t id;
	bool closed, eof, write_closed;
};

struct write_rec {
	uint32_t len;
	bool done;
};

struct fzl;

struct side {
	struct fzl *fz;
	int k;                      /* 0: A, 1: B */
	struct mr_session *sess;
	struct mr_config cfg;
	bool hb_started;
	bool ended_seen;
	bool app_ended;             /* closed, or given end-of-file, by us */
	bool damaged_in;            /* a damaged packet reached this side */
	uint32_t unaccepted;
	struct known *known;        /* every stream the application saw */
	size_t nknown;
	struct mr_view views[FZL_MAX_VIEWS];
	size_t nviews;
	struct write_rec *writes;   /* every write accepted, by user_data - 1 */
	size_t nwrites;
	struct wire out;            /* what this side sent, not yet delivered */
};

struct fzl {
	uint8_t cfg;
	bool trace;
	bool killed;                /* the connection was cut */
	uint64_t now;
	uint64_t written_total, max_written;
	struct side side[2];
	struct idrec ids[FZL_MAX_IDS];
};

static bool damaged_anywhere(const struct fzl *fz)
{
	return fz->side[0].damaged_in || fz->side[1].damaged_in;
}

static bool fault_code(uint32_t code)
{
	return code == MUXRING_PROTOCOL_ERROR ||
	       code == MUXRING_FLOW_CONTROL_ERROR ||
	       code == MUXRING_FRAME_SIZE_ERROR ||
	       code == MUXRING_INTERNAL_ERROR ||
	       code == MUXRING_ENHANCE_YOUR_CALM;
}

static struct idrec *idrec_of(struct fzl *fz, uint32_t id)
{
	return id < FZL_MAX_IDS ? &fz->ids[id] : NULL;
}

/* ---- events -------------------------------------------------------------- */

/* The application's record of a stream, kept in the stream's user pointer
 * as index + 1. */
static struct known *known_of(struct side *sd, const struct mr_stream *s)
{
	uintptr_t i = s ? (uintptr_t)mr_stream_user(s) : 0;

	return i && i <= sd->nknown && sd->known[i - 1].s == s
		       ? &sd->known[i - 1]
		       : NULL;
}

static void add_known(struct side *sd, struct mr_stream *s)
{
	sd->known = grow(sd->known, sd->nknown, sizeof(*sd->known));
	sd->known[sd->nknown] = (struct known){.s = s, .id = mr_stream_id(s)};
	mr_stream_set_user(s, (void *)(uintptr_t)++sd->nknown);
}

static struct known *live_stream(struct side *sd, const struct mr_event *ev,
				 const char *what)
{
	struct known *kn = known_of(sd, ev->stream);

	if (!kn)
		fz_fail("side %d: %s for a stream the app never saw", sd->k,
			 what);
	if (kn->closed)
		fz_fail("side %d: %s for stream %u after its STREAM_CLOSED",
			 sd->k, what, kn->id);
	return kn;
}

static void release_view(struct side *sd, size_t i)
{
	mr_view_release(&sd->views[i]);
	sd->views[i] = sd->views[--sd->nviews];
}

static void on_accepted(struct side *sd, struct mr_event *ev)
{
	if (!ev->stream || known_of(sd, ev->stream))
		fz_fail("side %d: STREAM_ACCEPTED for a known stream", sd->k);
	if (sd->cfg.typed && ev->stream_type == MR_HEARTBEAT_TYPE)
		fz_fail("side %d: heartbeat stream shown", sd->k);
	sd->unaccepted++;
	add_known(sd, ev->stream);
	if (sd->fz->trace)
		fprintf(stderr, "  side %d accepted %u\n", sd->k,
			mr_stream_id(ev->stream));
}

static void on_data(struct side *sd, struct mr_event *ev)
{
	struct known *kn = live_stream(sd, ev, "DATA");
	struct idrec *r = idrec_of(sd->fz, kn->id);

	if (kn->eof)
		fz_fail("stream %u: DATA after EOF", kn->id);
	if (!ev->view.len || !ev->view.data || ev->view.stream != ev->stream)
		fz_fail("stream %u: empty or broken view", kn->id);
	if (r && r->opened && !damaged_anywhere(sd->fz)) {
		uint64_t got = r->received[sd->k];

		if (got + ev->view.len > r->written[!sd->k])
			fz_fail("side %d stream %u: %llu bytes received, "
				 "%llu written", sd->k, kn->id,
				 (unsigned long long)(got + ev->view.len),
				 (unsigned long long)r->written[!sd->k]);
		if (!fz_pattern_matches(ev->view.data, kn->id, got,
					ev->view.len))
			fz_fail("side %d stream %u: bytes %llu.. changed",
				 sd->k, kn->id, (unsigned long long)got);
	}
	if (r)
		r->received[sd->k] += ev->view.len;
	if (sd->nviews == FZL_MAX_VIEWS)
		release_view(sd, 0);
	sd->views[sd->nviews++] = ev->view;
}

static void on_eof(struct side *sd, struct mr_event *ev)
{
	struct known *kn = live_stream(sd, ev, "EOF");
	struct idrec *r = idrec_of(sd->fz, kn->id);

	if (kn->eof)
		fz_fail("stream %u: second EOF", kn->id);
	kn->eof = true;
	if (r && r->opened && !damaged_anywhere(sd->fz) &&
	    r->received[sd->k] != r->written[!sd->k])
		fz_fail("side %d stream %u: EOF after %llu of %llu bytes",
			 sd->k, kn->id,
			 (unsigned long long)r->received[sd->k],
			 (unsigned long long)r->written[!sd->k]);
}

static void on_write_done(struct side *sd, struct mr_event *ev)
{
	uint64_t i = ev->user_data - 1;

	live_stream(sd, ev, "WRITE_DONE");
	if (!ev->user_data || i >= sd->nwrites)
		fz_fail("side %d: WRITE_DONE for unknown write %llu", sd->k,
			 (unsigned long long)ev->user_data);
	if (sd->writes[i].done)
		fz_fail("side %d: second WRITE_DONE for write %llu", sd->k,
			 (unsigned long long)ev->user_data);
	sd->writes[i].done = true;
	if (ev->result >= 0 && ev->result != sd->writes[i].len)
		fz_fail("write of %u bytes completed with %lld",
			 sd->writes[i].len, (long long)ev->result);
}

static void on_closed(struct side *sd, struct mr_event *ev)
{
	struct known *kn = live_stream(sd, ev, "STREAM_CLOSED");

	kn->closed = true;
	if (ev->result > 0)
		fz_fail("STREAM_CLOSED result %lld", (long long)ev->result);
	if (fault_code(ev->code) && !damaged_anywhere(sd->fz))
		fz_fail("side %d stream %u closed with fault code %u (reason "
			 "%d) on an undamaged link", sd->k, kn->id, ev->code,
			 (int)ev->close_reason);
}

static void on_session_ended(struct side *sd, struct mr_event *ev)
{
	const struct mr_session_result *res = mr_session_result(sd->sess);
	int err = res->local_error;

	if (ev->stream || !mr_session_ended(sd->sess))
		fz_fail("SESSION_ENDED with a stream or not ended");
	sd->ended_seen = true;
	if (sd->fz->trace)
		fprintf(stderr, "  side %d ended: %d (%s)\n", sd->k, err,
			res->local_reason ? res->local_reason : "-");
	if (!damaged_anywhere(sd->fz) &&
	    (err == MUXRING_ERR(MUXRING_PROTOCOL_ERROR) ||
	     err == MUXRING_ERR(MUXRING_FLOW_CONTROL_ERROR) ||
	     err == MUXRING_ERR(MUXRING_FRAME_SIZE_ERROR) ||
	     err == MUXRING_ERR(MUXRING_INTERNAL_ERROR) ||
	     err == MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM)))
		fz_fail("side %d ended with %d on an undamaged link", sd->k,
			 err);
	if (sd->app_ended)
		return;
	if (!damaged_anywhere(sd->fz))
		fz_fail("side %d ended by itself (%d) on an undamaged link",
			 sd->k, err);
	if (err != MUXRING_ERR(MUXRING_PROTOCOL_ERROR) &&
	    err != MUXRING_ERR(MUXRING_FRAME_SIZE_ERROR) &&
	    err != MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM))
		fz_fail("side %d ended after damage with %d, not a "
			 "protocol error", sd->k, err);
}

static void handle_event(struct side *sd, struct mr_event *ev)
{
	if (sd->ended_seen)
		fz_fail("side %d: event %d after SESSION_ENDED", sd->k,
			 (int)ev->type);
	if (sd->fz->trace && ev->type != MR_EV_DATA)
		fprintf(stderr, "  side %d event %d stream %u result %lld "
			"code %u\n", sd->k, (int)ev->type,
			ev->stream ? mr_stream_id(ev->stream) : 0,
			(long long)ev->result, ev->code);
	switch (ev->type) {
	case MR_EV_STREAM_ACCEPTED:
		on_accepted(sd, ev);
		break;
	case MR_EV_DATA:
		on_data(sd, ev);
		break;
	case MR_EV_EOF:
		on_eof(sd, ev);
		break;
	case MR_EV_WRITE_DONE:
		on_write_done(sd, ev);
		break;
	case MR_EV_DEADLINE:
		fz_fail("side %d: DEADLINE without a deadline", sd->k);
		break;
	case MR_EV_STREAM_CLOSED:
		on_closed(sd, ev);
		break;
	case MR_EV_HEARTBEAT:
	case MR_EV_HEARTBEAT_FAILED:
		if (!sd->hb_started)
			fz_fail("side %d: heartbeat event without a heartbeat",
				 sd->k);
		break;
	case MR_EV_GOAWAY:
		if (fault_code(ev->code) && !damaged_anywhere(sd->fz))
			fz_fail("side %d: GOAWAY %u on an undamaged link",
				 sd->k, ev->code);
		break;
	case MR_EV_SESSION_ENDED:
		on_session_ended(sd, ev);
		break;
	default:
		fz_fail("unknown event type %d", (int)ev->type);
	}
}

static void drain(struct side *sd)
{
	struct mr_event ev;

	while (mr_session_poll_event(sd->sess, &ev))
		handle_event(sd, &ev);
}

/* ---- the link ------------------------------------------------------------ */

static struct mr_buf *packet_buf(const uint8_t *p, size_t n, size_t cap)
{
	struct mr_buf *buf = mr_buf_new_heap(cap);

	if (!buf)
		abort();
	memcpy(buf->data, p, n);
	return buf;
}

static void wire_append(struct wire *w, const uint8_t *p, size_t n)
{
	struct packet *last = &w->pkt[FZL_MAX_PACKETS - 1];

	if (w->npkt < FZL_MAX_PACKETS) {
		w->pkt[w->npkt++] = (struct packet){
			.buf = packet_buf(p, n, n), .len = n,
		};
		return;
	}
	/* Full: the bytes join the last packet, which doubles as needed. */
	if (last->buf->cap - last->len < n) {
		size_t cap = 2 * last->buf->cap;
		struct mr_buf *buf;

		if (cap < last->len + n)
			cap = last->len + n;
		buf = packet_buf(last->buf->data, last->len, cap);
		mr_buf_unref(last->buf);
		last->buf = buf;
	}
	memcpy(last->buf->data + last->len, p, n);
	last->len += n;
}

/*
 * Moves up to `max_bytes` of side sd's output onto its wire, in packets of
 * `chunk` bytes (0: one packet per iovec). Returns the bytes moved.
 */
static size_t transmit(struct side *sd, size_t max_bytes, size_t chunk)
{
	struct iovec iov[FZL_MAX_IOV];
	size_t n = mr_session_tx_iov(sd->sess, iov, FZL_MAX_IOV, max_bytes);
	size_t moved = 0;

	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		if (!len)
			fz_fail("tx_iov offered an empty iovec");
		while (len && !sd->fz->killed) {
			size_t take = chunk && chunk < len ? chunk : len;

			wire_append(&sd->out, p, take);
			p += take;
			len -= take;
		}
		moved += iov[i].iov_len;
	}
	if (moved)
		mr_session_tx_advance(sd->sess, moved);
	drain(sd);
	return moved;
}

static void transmit_all(struct side *sd)
{
	for (int i = 0; i < 10000; i++)
		if (!transmit(sd, SIZE_MAX, 0))
			return;
	fz_fail("side %d never stops sending", sd->k);
}

static void packet_free(struct packet *pk)
{
	mr_buf_unref(pk->buf);
	pk->buf = NULL;
}

/* Hands the oldest packet of side `from`'s wire to the other side. */
static void deliver_one(struct fzl *fz, int from, unsigned flags)
{
	struct wire *w = &fz->side[from].out;
	struct side *to = &fz->side[!from];
	struct packet pk = w->pkt[0];

	memmove(&w->pkt[0], &w->pkt[1], --w->npkt * sizeof(w->pkt[0]));
	if (pk.damaged) {
		to->damaged_in = true;
		if (fz->trace)
			fprintf(stderr, "  side %d gets a damaged packet\n",
				to->k);
	}
	/* The packet's buffer is let go of right after: a view that outlives
	 * its reference shows up under ASan. */
	if (pk.len && mr_session_recv(to->sess, pk.buf, pk.buf->data, pk.len,
				      flags) > 0)
		fz_fail("mr_session_recv returned a positive value");
	packet_free(&pk);
	drain(to);
}

static unsigned recv_flags(const struct fzl *fz, int k)
{
	return fz->cfg & (k ? FZL_CFG_COPY_B : FZL_CFG_COPY_A) ? MR_RECV_COPY
							     : 0;
}

static void deliver(struct fzl *fz, int from, size_t npkt)
{
	while (npkt-- && fz->side[from].out.npkt)
		deliver_one(fz, from, recv_flags(fz, !from));
}

/* Damages one packet of a wire, as the argument says. */
static void damage(struct fzl *fz, struct wire *w, struct fz_cursor *c,
		   unsigned how)
{
	uint8_t which = fz_take8(c), at = fz_take8(c), arg = fz_take8(c);
	struct packet *pk;
	size_t pos;

	if (!w->npkt)
		return;
	pk = &w->pkt[which % w->npkt];
	pos = pk->len ? (size_t)at * pk->len / 256 : 0;
	if (fz->trace)
		fprintf(stderr, "  damage %u to packet %u of %zu (%zu bytes)\n",
			how, which % (unsigned)w->npkt, w->npkt, pk->len);
	switch (how) {
	case 0: /* flip a bit */
		if (!pk->len)
			return;
		pk->buf->data[pos] ^= (uint8_t)(1u << (arg & 7));
		break;
	case 1: /* truncate */
		pk->len = pos;
		break;
	case 2: { /* drop bytes from the middle */
		size_t n = pk->len - pos < (size_t)arg + 1 ? pk->len - pos
							  : (size_t)arg + 1;

		memmove(pk->buf->data + pos, pk->buf->data + pos + n,
			pk->len - pos - n);
		pk->len -= n;
		break;
	}
	case 3: /* duplicate */
		if (w->npkt == FZL_MAX_PACKETS)
			return;
		memmove(pk + 2, pk + 1,
			(size_t)(&w->pkt[w->npkt] - (pk + 1)) * sizeof(*pk));
		pk[1] = (struct packet){
			.buf = packet_buf(pk->buf->data, pk->len, pk->len),
			.len = pk->len,
			.damaged = true,
		};
		w->npkt++;
		return;
	default: { /* swap with the next one */
		struct packet t;

		if (pk + 1 == &w->pkt[w->npkt])
			return;
		t = pk[0];
		pk[0] = pk[1];
		pk[1] = t;
		pk[0].damaged = pk[1].damaged = true;
		return;
	}
	}
	pk->damaged = true;
}

/* ---- application actions ------------------------------------------------- */

static struct known *pick(struct side *sd, struct fz_cursor *c)
{
	uint8_t i = fz_take8(c);

	return sd->nknown ? &sd->known[i % sd->nknown] : NULL;
}

static void check_rc(int rc, const char *what)
{
	if (rc > 0)
		fz_fail("%s returned %d", what, rc);
}

static void act_open(struct side *sd, struct fz_cursor *c, bool typed_arg)
{
	struct mr_stream *s = NULL;
	uint32_t type = typed_arg ? fz_take8(c) : 0;
	struct idrec *r;
	int rc;

	rc = mr_session_open(sd->sess, type, &s);
	check_rc(rc, "mr_session_open");
	if (rc)
		return;
	if (!s || known_of(sd, s))
		fz_fail("open returned a known or NULL stream");
	add_known(sd, s);
	r = idrec_of(sd->fz, mr_stream_id(s));
	if (r) {
		if (r->opened)
			fz_fail("id %u opened twice", mr_stream_id(s));
		r->opened = true;
	}
	if (sd->fz->trace)
		fprintf(stderr, "  side %d opened %u\n", sd->k,
			mr_stream_id(s));
}

static void act_write(struct side *sd, struct fz_cursor *c, bool large)
{
	struct known *kn = pick(sd, c);
	size_t len = (size_t)fz_take8(c) << (large ? 8 : 0);
	struct idrec *r;
	struct mr_buf *buf;
	const uint8_t *data;
	uint64_t off;
	int rc;

	if (!kn)
		return;
	if (sd->fz->written_total + len > sd->fz->max_written)
		len = 0;
	r = idrec_of(sd->fz, kn->id);
	off = r ? r->written[sd->k] : 0;
	if (len > FZL_HEAP_WRITE) {
		buf = fz_pattern_buf(kn->id, off, len, &data);
	} else {
		buf = mr_buf_new_heap(len + 1);
		if (buf)
			fz_pattern_fill(buf->data + 1, kn->id, off, len);
		data = buf ? buf->data + 1 : NULL;
	}
	if (!buf)
		abort();
	sd->writes = grow(sd->writes, sd->nwrites, sizeof(*sd->writes));
	sd->writes[sd->nwrites] = (struct write_rec){.len = (uint32_t)len};
	rc = mr_stream_write(kn->s, buf, data, len, sd->nwrites + 1);
	mr_buf_unref(buf);
	check_rc(rc, "mr_stream_write");
	if (sd->fz->trace)
		fprintf(stderr, "  side %d writes %zu on %u: %d\n", sd->k, len,
			kn->id, rc);
	if (rc)
		return;
	sd->nwrites++;
	sd->fz->written_total += len;
	if (r)
		r->written[sd->k] += len;
}

static void act_stream(struct side *sd, struct fz_cursor *c, unsigned what)
{
	struct known *kn = pick(sd, c);
	uint8_t code = fz_take8(c);

	if (!kn)
		return;
	switch (what) {
	case 0:
		check_rc(mr_stream_close_write(kn->s), "close_write");
		kn->write_closed = true;
		break;
	case 1:
		check_rc(mr_stream_close(kn->s), "close");
		kn->write_closed = true;
		break;
	default:
		check_rc(mr_stream_reset(kn->s, app_codes[code % NAPP_CODES]),
			 "reset");
		break;
	}
}

static void act_release(struct side *sd, struct fz_cursor *c, unsigned n)
{
	uint8_t at = fz_take8(c);

	if (!n)
		n = (unsigned)sd->nviews;
	while (n-- && sd->nviews)
		release_view(sd, at % sd->nviews);
}

static void act_session(struct side *sd, struct fz_cursor *c, unsigned what)
{
	uint8_t code = fz_take8(c);
	static const char debug[] = "fuzz_link says goodbye";

	switch (what) {
	case 0:
		check_rc(mr_session_goaway(sd->sess,
					   app_codes[code % NAPP_CODES], debug,
					   code % sizeof(debug)), "goaway");
		break;
	default:
		sd->app_ended = true;
		check_rc(mr_session_close(sd->sess,
					  app_codes[code % NAPP_CODES], debug,
					  code % sizeof(debug)), "close");
		break;
	}
	drain(sd);
}

static void act_heartbeat(struct side *sd, struct fz_cursor *c, unsigned what)
{
	uint64_t interval = ((uint64_t)fz_take8(c) + 1) * 1000000u;
	int rc;

	if (what == 0) {
		rc = mr_session_heartbeat_start(sd->sess, interval,
						interval * 2, fz_take8(c));
		check_rc(rc, "heartbeat_start");
		if (!rc)
			sd->hb_started = true;
	} else {
		check_rc(mr_session_heartbeat_beat(sd->sess), "beat");
	}
}

static void act_time(struct fzl *fz, struct fz_cursor *c)
{
	fz->now += (uint64_t)fz_take8(c) * 1000000u;
	for (int k = 0; k < 2; k++) {
		struct side *sd = &fz->side[k];
		uint64_t next;

		mr_session_set_now(sd->sess, fz->now);
		next = mr_session_expire(sd->sess, fz->now);
		if (next && next <= fz->now)
			fz_fail("expire says %llu is still to come at %llu",
				 (unsigned long long)next,
				 (unsigned long long)fz->now);
		drain(sd);
	}
}

/* The connection is cut: whatever was in flight is lost, and each side's
 * driver reports end-of-file or a reset. */
static void act_kill(struct fzl *fz, unsigned how)
{
	if (fz->killed)
		return;
	fz->killed = true;
	for (int k = 0; k < 2; k++) {
		struct side *sd = &fz->side[k];

		while (sd->out.npkt)
			packet_free(&sd->out.pkt[--sd->out.npkt]);
		sd->app_ended = true;
		mr_session_recv_end(sd->sess, how & (1u << k) ? -ECONNRESET : 0);
		drain(sd);
	}
}

/* Both ways, whole packets, until nothing moves (or a few dozen rounds). */
static void settle(struct fzl *fz, bool release, bool close_write)
{
	for (int round = 0; round < 64; round++) {
		size_t moved = 0;

		for (int k = 0; k < 2; k++) {
			struct side *sd = &fz->side[k];

			while (release && sd->nviews)
				release_view(sd, sd->nviews - 1);
			while (release && sd->unaccepted) {
				mr_session_accept_done(sd->sess);
				sd->unaccepted--;
			}
			for (size_t i = 0; close_write && i < sd->nknown; i++) {
				struct known *kn = &sd->known[i];

				if (kn->closed || kn->write_closed)
					continue;
				check_rc(mr_stream_close_write(kn->s),
					 "close_write");
				kn->write_closed = true;
			}
			drain(sd);
			transmit_all(sd);
		}
		for (int k = 0; k < 2; k++) {
			moved += fz->side[k].out.npkt;
			deliver(fz, k, SIZE_MAX);
		}
		if (!moved)
			return;
	}
}

/* ---- one input ----------------------------------------------------------- */

static void side_init(struct fzl *fz, int k, enum mr_role role)
{
	struct side *sd = &fz->side[k];

	sd->fz = fz;
	sd->k = k;
	mr_config_default(&sd->cfg);
	sd->cfg.typed = fz->cfg & FZL_CFG_TYPED;
	if (fz->cfg & FZL_CFG_SMALL) {
		sd->cfg.accept_backlog = 3;
		sd->cfg.max_streams = 8;
		sd->cfg.max_frame_payload = k ? 509 : 61;
		sd->cfg.goaway_debug_cap = 7;
	}
	if (fz->cfg & FZL_CFG_BIG_WINDOW)
		sd->cfg.window = MR_INITIAL_WINDOW + (k ? 1u << 20 : 4096);
	sd->sess = mr_session_new(role, &sd->cfg);
	if (!sd->sess)
		abort();
}

static void run(struct fzl *fz, struct fz_cursor *c)
{
	for (unsigned ops = 0; c->n && ops < FZL_MAX_OPS; ops++) {
		uint8_t b = fz_take8(c);
		unsigned op = b >> 4, arg = b & 7;
		struct side *sd = &fz->side[b >> 3 & 1];

		if (fz->trace)
			fprintf(stderr, "op %u arg %u side %d\n", op, arg,
				sd->k);
		switch (op) {
		case 0:
			act_open(sd, c, sd->cfg.typed);
			break;
		case 1:
		case 2:
			act_write(sd, c, op == 2);
			break;
		case 3:
			act_stream(sd, c, arg % 3);
			break;
		case 4:
			act_release(sd, c, arg);
			break;
		case 5:
			if (sd->unaccepted) {
				mr_session_accept_done(sd->sess);
				sd->unaccepted--;
			}
			break;
		case 6:
			act_session(sd, c, arg & 1);
			break;
		case 7:
			if (sd->cfg.typed)
				act_heartbeat(sd, c, arg & 1);
			break;
		case 8: {
			uint8_t max = fz_take8(c), chunk = fz_take8(c);

			transmit(sd, (size_t)max * 64 + 1,
				 (size_t)chunk * (arg + 1));
			break;
		}
		case 9:
			transmit_all(sd);
			break;
		case 10:
			deliver(fz, sd->k, arg + 1);
			break;
		case 11:
		case 12:
			damage(fz, &sd->out, c, ((op - 11) * 8 + arg) % 5);
			break;
		case 13:
			act_time(fz, c);
			break;
		case 14:
			settle(fz, arg & 1, false);
			break;
		default:
			if (arg == 7)
				act_kill(fz, fz_take8(c));
			else
				settle(fz, true, false);
			break;
		}
	}
}

/* Every stream the application saw closed, every write reported. */
static void check_ended(struct side *sd)
{
	if (!sd->ended_seen)
		fz_fail("side %d: no SESSION_ENDED after close", sd->k);
	for (size_t i = 0; i < sd->nknown; i++)
		if (!sd->known[i].closed)
			fz_fail("side %d: stream %u never got STREAM_CLOSED",
				 sd->k, sd->known[i].id);
	for (size_t i = 0; i < sd->nwrites; i++)
		if (!sd->writes[i].done)
			fz_fail("side %d: write %zu never got WRITE_DONE",
				 sd->k, i + 1);
}

/* On an undamaged link both applications half-close everything and read
 * everything: then every stream must close on both sides. */
static void check_nothing_hangs(struct fzl *fz)
{
	if (fz->killed || damaged_anywhere(fz))
		return;
	settle(fz, true, false);
	if (damaged_anywhere(fz) || mr_session_ended(fz->side[0].sess) ||
	    mr_session_ended(fz->side[1].sess))
		return;
	settle(fz, true, true);
	for (int k = 0; k < 2; k++) {
		struct side *sd = &fz->side[k];

		for (size_t i = 0; i < sd->nknown; i++)
			if (!sd->known[i].closed)
				fz_fail("side %d: stream %u still open after "
					 "both sides half-closed it and "
					 "read everything", k,
					 sd->known[i].id);
	}
}

static void finish(struct fzl *fz)
{
	check_nothing_hangs(fz);
	for (int k = 0; k < 2; k++) {
		struct side *sd = &fz->side[k];

		if (!mr_session_ended(sd->sess)) {
			sd->app_ended = true;
			check_rc(mr_session_close(sd->sess, 0, NULL, 0),
				 "close");
		}
		drain(sd);
		check_ended(sd);
		transmit_all(sd);
		if (!mr_session_done(sd->sess))
			fz_fail("side %d: not done after sending everything",
				 k);
	}
	for (int k = 0; k < 2; k++) {
		struct side *sd = &fz->side[k];

		/* Half the views now, half once the session is gone. */
		for (size_t i = 0; i < sd->nviews; i += 2)
			mr_view_release(&sd->views[i]);
		mr_session_free(sd->sess);
		sd->sess = NULL;
		while (sd->out.npkt)
			packet_free(&sd->out.pkt[--sd->out.npkt]);
	}
	for (int k = 0; k < 2; k++) {
		struct side *sd = &fz->side[k];

		for (size_t i = 1; i < sd->nviews; i += 2)
			mr_view_release(&sd->views[i]);
		for (size_t i = 0; i < sd->nknown; i++) {
			struct mr_event ev = {.type = MR_EV_STREAM_CLOSED,
					      .stream = sd->known[i].s};

			mr_event_done(&ev);
		}
		free(sd->known);
		free(sd->writes);
	}
}

int fuzz_link_input(const uint8_t *data, size_t size)
{
	struct fzl *fz = calloc(1, sizeof(*fz));
	struct fz_cursor c = {.p = data, .n = size};

	if (!fz)
		abort();
	fz->cfg = fz_take8(&c);
	fz->trace = getenv("FUZZ_TRACE") != NULL;
	fz->max_written = fz->cfg & FZL_CFG_SMALL ? FZL_MAX_WRITTEN_SMALL
						  : FZL_MAX_WRITTEN;
	side_init(fz, 0, fz->cfg & FZL_CFG_A_SERVER ? MR_ROLE_SERVER
						    : MR_ROLE_CLIENT);
	side_init(fz, 1, fz->cfg & FZL_CFG_A_SERVER ? MR_ROLE_CLIENT
						    : MR_ROLE_SERVER);
	run(fz, &c);
	finish(fz);
	free(fz);
	return 0;
}
