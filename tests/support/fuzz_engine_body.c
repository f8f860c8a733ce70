/*
 * fuzz_engine_body.c - the sans-I/O engine driven by arbitrary input.
 *
 * One input is one short life of one or two sessions (see fuzz_body.h for
 * the configuration and mode bytes). In program mode the rest of the input
 * is read as a list of operations, each an opcode byte (high nibble: the operation, low nibble: a
 * small argument, bit 3 of which picks engine B in peer mode) followed by
 * the argument bytes it needs; a program that runs out of bytes simply
 * reads zeros. After every operation the events of both engines are
 * drained and checked. At the end the sessions are closed (or, with
 * FZ_CFG_NO_CLOSE, freed as they are), and everything is given back, some
 * views only after their session was freed.
 *
 * Besides what the sanitizers see, the checks are the engine's promises:
 *   events    nothing after SESSION_ENDED; nothing for a stream after its
 *             STREAM_CLOSED, which comes exactly once for every stream the
 *             application knows (checked once the session ended); one
 *             WRITE_DONE per accepted write, with its length or an error;
 *             at most one EOF; no empty view; heartbeat streams are never
 *             shown and heartbeat events only come to a side that started;
 *   output    only whole, well-formed frames (mr_frame_header_check
 *             passes), SYN only on this side's own ids and only once, never
 *             with FIN, never DATA of an own stream before its SYN, no DATA
 *             frame above max_frame_payload, no WNDINC of 0, and never more
 *             payload on a stream than 256 KiB plus the WNDINC increments
 *             the peer's bytes carried for it; tx_iov offers the same bytes
 *             when asked twice, and never zero bytes in a non-empty batch;
 *   time      mr_session_expire returns 0 or a deadline in the future, the
 *             same as mr_session_next_deadline;
 *   content   in peer mode, until raw bytes are injected, every stream's
 *             bytes arrive unchanged, in order, without the type bytes, and
 *             the accepted type is the one the opener gave.
 *
 * With FUZZ_TRACE set in the environment, every operation and event is
 * printed on stderr: run a crashing input that way to read what happened.
 */
#include "fuzz_body.h"
#include "fuzz_cut.h"
#include "fuzz_input.h"
#include "fuzz_pattern.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"
#include "engine/session.h"

#define FZ_MAX_OPS 2048u
/* Bytes written per input, all sides: enough to fill a window several
 * times. With FZ_CFG_SMALL frames carry 7 bytes, so a window's worth is
 * 37,000 frames at about 5 us each under ASan; 4 KiB still crosses every
 * frame and chunk boundary while an input stays well under a millisecond. */
#define FZ_MAX_WRITTEN (1u << 20)
#define FZ_MAX_WRITTEN_SMALL (4u << 10)
/* Chunks a delivery may be cut into, per input. Cutting a megabyte into
 * bytes is 40 ms of the same few parser states; 4096 covers cutting a
 * whole 4 KiB input byte by byte, as raw mode does. */
#define FZ_MAX_CUT_RECVS 4096u
#define FZ_HEAP_WRITE 4096u         /* larger writes point into the pattern */
#define FZ_MAX_VIEWS 256u           /* views held before releasing at once */
#define FZ_MAX_IDS 2048u            /* stream ids with checks */
#define FZ_MAX_IOV 64u

/* ---- facts per stream id ---------------------------------------------------- */

struct idrec {
	uint32_t id;
	bool app_opened;       /* opened by an application (type below known) */
	uint32_t type;
	bool unverifiable;     /* a write deadline may have cut its data */
	uint64_t written[2];   /* bytes side k's mr_stream_write calls took */
	uint64_t received[2];  /* bytes side k's application got */
	uint64_t data_out[2];  /* DATA payload side k emitted on it */
	uint64_t wndinc_in[2]; /* WNDINC increments fed to side k for it */
	bool syn_out[2];       /* side k emitted its SYN */
};

/* Incremental frame splitter over one byte stream. */
struct fparse {
	uint8_t hdr[MR_FRAME_HEADER_LEN];
	uint32_t have;         /* header bytes collected */
	bool in_body;
	struct mr_frame_header h;
	uint32_t remaining;    /* body bytes still to come */
	uint8_t body[8];       /* first body bytes */
	uint32_t body_have;
};

struct known {
	struct mr_stream *s;
	uint32_t id;
	bool closed, eof;
};

struct fz;

struct side {
	struct fz *fz;
	int k;                 /* 0: A, 1: B */
	struct mr_session *sess;
	enum mr_role role;
	struct mr_config cfg;
	bool hb_started;
	bool ended_seen;
	uint64_t now;
	uint32_t unaccepted;   /* accepted streams not yet accept_done'd */

	struct known *known;
	size_t nknown;
	struct mr_view *views;
	size_t nviews;
	struct mr_event *closed; /* STREAM_CLOSED events, done at the end */
	size_t nclosed;
	uint32_t *write_len;   /* per user_data - 1 */
	bool *write_done;
	size_t nwrites;

	struct fparse out;     /* what this side emitted */
	struct fparse in;      /* what this side was fed */
	uint8_t *queue;        /* emitted; bytes from queue_head on are not */
	size_t queue_head;     /* yet delivered to the peer */
	size_t queue_len, queue_cap;
	bool raised_id;
};

struct fz {
	uint8_t cfg;
	bool peer;
	bool tainted;          /* raw bytes went into a peer session */
	unsigned recv_flags;
	size_t cut_recvs;      /* chunks fed from deliveries cut short */
	struct side side[2];
	int nsides;
	struct idrec *ids;
	size_t nids;
	uint64_t written_total;
	uint64_t max_written;  /* FZ_MAX_WRITTEN or, small, its _SMALL */
	bool trace;            /* FUZZ_TRACE set: print each operation */
};

static struct idrec *idrec_get(struct fz *fz, uint32_t id)
{
	for (size_t i = 0; i < fz->nids; i++)
		if (fz->ids[i].id == id)
			return &fz->ids[i];
	if (fz->nids == FZ_MAX_IDS)
		return NULL;
	if ((fz->nids & (fz->nids - 1)) == 0)
		fz->ids = fz_realloc(fz->ids, (fz->nids ? fz->nids * 2 : 8) *
						      sizeof(*fz->ids));
	memset(&fz->ids[fz->nids], 0, sizeof(fz->ids[0]));
	fz->ids[fz->nids].id = id;
	return &fz->ids[fz->nids++];
}

static bool own_id(const struct side *sd, uint32_t id)
{
	return (id & 1) == (sd->role == MR_ROLE_CLIENT);
}

/* ---- wire checks ------------------------------------------------------------ */

static void out_header(struct side *sd, const struct mr_frame_header *h)
{
	struct idrec *r;

	if (h->type <= MR_FRAME_GOAWAY && mr_frame_header_check(h))
		fz_fail("side %d emitted a malformed frame (type %u, len %u, "
			"id %u)", sd->k, h->type, h->length, h->stream_id);
	if (h->type > MR_FRAME_GOAWAY && h->length)
		fz_fail("side %d emitted an unknown frame with a body",
			sd->k);
	if (h->type != MR_FRAME_DATA)
		return;
	if (h->flags & ~(MR_FLAG_SYN | MR_FLAG_FIN))
		fz_fail("DATA with flags %#x", h->flags);
	if ((h->flags & MR_FLAG_SYN) && (h->flags & MR_FLAG_FIN))
		fz_fail("SYN and FIN on one frame (stream %u)", h->stream_id);
	if (h->length > sd->cfg.max_frame_payload)
		fz_fail("DATA of %u bytes above max_frame_payload %u",
			h->length, sd->cfg.max_frame_payload);
	r = idrec_get(sd->fz, h->stream_id);
	if (!r)
		return;
	if (h->flags & MR_FLAG_SYN) {
		if (!own_id(sd, h->stream_id))
			fz_fail("side %d sent SYN on the peer's id %u", sd->k,
				h->stream_id);
		if (r->syn_out[sd->k])
			fz_fail("second SYN for stream %u", h->stream_id);
		r->syn_out[sd->k] = true;
	} else if (own_id(sd, h->stream_id) && !r->syn_out[sd->k]) {
		fz_fail("DATA on own stream %u before its SYN", h->stream_id);
	}
	r->data_out[sd->k] += h->length;
	if (r->data_out[sd->k] > MR_INITIAL_WINDOW + r->wndinc_in[sd->k])
		fz_fail("stream %u: %llu bytes sent, window only %llu",
			h->stream_id, (unsigned long long)r->data_out[sd->k],
			(unsigned long long)(MR_INITIAL_WINDOW +
					     r->wndinc_in[sd->k]));
}

static void out_frame(struct side *sd, const struct fparse *fp)
{
	if (fp->h.type == MR_FRAME_WNDINC &&
	    !mr_frame_wndinc_increment(fp->body))
		fz_fail("side %d emitted WNDINC 0", sd->k);
}

static void in_frame(struct side *sd, const struct fparse *fp)
{
	struct idrec *r;

	if (fp->h.type != MR_FRAME_WNDINC || fp->h.length != 4 ||
	    !fp->h.stream_id)
		return;
	r = idrec_get(sd->fz, fp->h.stream_id);
	if (r)
		r->wndinc_in[sd->k] += mr_frame_wndinc_increment(fp->body);
}

static void fparse_feed(struct side *sd, struct fparse *fp, bool out,
			const uint8_t *p, size_t n)
{
	while (n) {
		if (!fp->in_body) {
			size_t take = MR_FRAME_HEADER_LEN - fp->have;

			if (take > n)
				take = n;
			memcpy(fp->hdr + fp->have, p, take);
			fp->have += (uint32_t)take;
			p += take;
			n -= take;
			if (fp->have < MR_FRAME_HEADER_LEN)
				return;
			mr_frame_header_parse(fp->hdr, &fp->h);
			fp->have = 0;
			fp->in_body = true;
			fp->remaining = fp->h.length;
			fp->body_have = 0;
			if (out)
				out_header(sd, &fp->h);
		} else {
			size_t take = fp->remaining < n ? fp->remaining : n;

			for (size_t i = 0; i < take && fp->body_have < 8; i++)
				fp->body[fp->body_have++] = p[i];
			fp->remaining -= (uint32_t)take;
			p += take;
			n -= take;
		}
		if (fp->in_body && !fp->remaining) {
			fp->in_body = false;
			if (out)
				out_frame(sd, fp);
			else
				in_frame(sd, fp);
		}
	}
}

static bool fparse_idle(const struct fparse *fp)
{
	return !fp->in_body && !fp->have;
}

/* ---- events ------------------------------------------------------------------ */

static struct known *find_known(struct side *sd, const struct mr_stream *s)
{
	for (size_t i = 0; i < sd->nknown; i++)
		if (sd->known[i].s == s)
			return &sd->known[i];
	return NULL;
}

static void add_known(struct side *sd, struct mr_stream *s)
{
	if ((sd->nknown & (sd->nknown - 1)) == 0)
		sd->known = fz_realloc(sd->known, (sd->nknown ? sd->nknown * 2
							       : 8) *
							  sizeof(*sd->known));
	sd->known[sd->nknown++] = (struct known){.s = s, .id = mr_stream_id(s)};
}

static void release_view(struct side *sd, size_t i)
{
	mr_view_release(&sd->views[i]);
	sd->views[i] = sd->views[--sd->nviews];
}

static void keep_view(struct side *sd, const struct mr_view *v)
{
	if (sd->nviews == FZ_MAX_VIEWS)
		release_view(sd, 0);
	if (!sd->views)
		sd->views = fz_realloc(NULL, FZ_MAX_VIEWS * sizeof(*sd->views));
	sd->views[sd->nviews++] = *v;
}

/* A stream event must name a stream the application knows, still open. */
static struct known *live_stream(struct side *sd, const struct mr_event *ev,
				 const char *what)
{
	struct known *kn = ev->stream ? find_known(sd, ev->stream) : NULL;

	if (!kn)
		fz_fail("side %d: %s for a stream the app never saw", sd->k,
			what);
	if (kn->closed)
		fz_fail("side %d: %s for stream %u after its STREAM_CLOSED",
			sd->k, what, kn->id);
	return kn;
}

static void on_accepted(struct side *sd, struct mr_event *ev)
{
	struct fz *fz = sd->fz;
	struct idrec *r;

	if (!ev->stream || find_known(sd, ev->stream))
		fz_fail("side %d: STREAM_ACCEPTED for a known stream", sd->k);
	add_known(sd, ev->stream);
	if (fz->trace)
		fprintf(stderr, "  side %d accepted %u type %#x\n", sd->k,
			mr_stream_id(ev->stream), ev->stream_type);
	if (sd->cfg.typed && ev->stream_type == MR_HEARTBEAT_TYPE)
		fz_fail("side %d: a heartbeat stream was shown", sd->k);
	if (!sd->cfg.typed && ev->stream_type)
		fz_fail("side %d: untyped session reports type %#x", sd->k,
			ev->stream_type);
	r = idrec_get(fz, mr_stream_id(ev->stream));
	if (fz->peer && !fz->tainted && sd->cfg.typed && r && r->app_opened &&
	    r->type != ev->stream_type)
		fz_fail("stream %u opened with type %#x, accepted as %#x",
			r->id, r->type, ev->stream_type);
	if (fz->cfg & FZ_CFG_AUTO_ACCEPT)
		mr_session_accept_done(sd->sess);
	else
		sd->unaccepted++;
}

static void on_data(struct side *sd, struct mr_event *ev)
{
	struct fz *fz = sd->fz;
	struct known *kn = live_stream(sd, ev, "DATA");
	struct idrec *r = idrec_get(fz, kn->id);

	if (fz->trace)
		fprintf(stderr, "  side %d got %zu bytes on %u\n", sd->k,
			ev->view.len, kn->id);
	if (kn->eof)
		fz_fail("stream %u: DATA after EOF", kn->id);
	if (!ev->view.len || !ev->view.data || ev->view.stream != ev->stream)
		fz_fail("stream %u: empty or broken view", kn->id);
	if (r && fz->peer && !fz->tainted && r->app_opened &&
	    !r->unverifiable) {
		uint64_t got = r->received[sd->k];

		if (got + ev->view.len > r->written[!sd->k])
			fz_fail("stream %u: %llu bytes received, %llu written",
				kn->id,
				(unsigned long long)(got + ev->view.len),
				(unsigned long long)r->written[!sd->k]);
		if (!fz_pattern_matches(ev->view.data, kn->id, got,
					ev->view.len))
			fz_fail("stream %u: bytes %llu.. changed", kn->id,
				(unsigned long long)got);
	}
	if (r)
		r->received[sd->k] += ev->view.len;
	keep_view(sd, &ev->view);
}

static void on_write_done(struct side *sd, struct mr_event *ev)
{
	uint64_t i = ev->user_data - 1;

	live_stream(sd, ev, "WRITE_DONE");
	if (ev->user_data == 0 || i >= sd->nwrites)
		fz_fail("side %d: WRITE_DONE for unknown write %llu", sd->k,
			(unsigned long long)ev->user_data);
	if (sd->write_done[i])
		fz_fail("side %d: second WRITE_DONE for write %llu", sd->k,
			(unsigned long long)ev->user_data);
	sd->write_done[i] = true;
	if (ev->result >= 0 && ev->result != sd->write_len[i])
		fz_fail("write of %u bytes completed with %lld",
			sd->write_len[i], (long long)ev->result);
}

static void handle_event(struct side *sd, struct mr_event *ev)
{
	struct known *kn;

	if (sd->ended_seen)
		fz_fail("side %d: event %d after SESSION_ENDED", sd->k,
			(int)ev->type);
	if (sd->fz->trace && ev->type != MR_EV_DATA &&
	    ev->type != MR_EV_STREAM_ACCEPTED)
		fprintf(stderr, "  side %d event %d stream %u result %lld\n",
			sd->k, (int)ev->type,
			ev->stream ? mr_stream_id(ev->stream) : 0,
			(long long)ev->result);
	switch (ev->type) {
	case MR_EV_STREAM_ACCEPTED:
		on_accepted(sd, ev);
		break;
	case MR_EV_DATA:
		on_data(sd, ev);
		break;
	case MR_EV_EOF:
		kn = live_stream(sd, ev, "EOF");
		if (kn->eof)
			fz_fail("stream %u: second EOF", kn->id);
		kn->eof = true;
		break;
	case MR_EV_WRITE_DONE:
		on_write_done(sd, ev);
		break;
	case MR_EV_DEADLINE:
		live_stream(sd, ev, "DEADLINE");
		if (ev->deadline != MR_DEADLINE_READ &&
		    ev->deadline != MR_DEADLINE_WRITE)
			fz_fail("deadline kind %d", (int)ev->deadline);
		break;
	case MR_EV_STREAM_CLOSED:
		kn = live_stream(sd, ev, "STREAM_CLOSED");
		kn->closed = true;
		if (ev->result > 0)
			fz_fail("STREAM_CLOSED result %lld", (long long)ev->result);
		if ((sd->nclosed & (sd->nclosed - 1)) == 0)
			sd->closed = fz_realloc(sd->closed,
						(sd->nclosed ? sd->nclosed * 2
							     : 8) *
							sizeof(*sd->closed));
		sd->closed[sd->nclosed++] = *ev;
		break;
	case MR_EV_HEARTBEAT:
	case MR_EV_HEARTBEAT_FAILED:
		if (!sd->hb_started)
			fz_fail("side %d: heartbeat event without a heartbeat",
				sd->k);
		if (ev->type == MR_EV_HEARTBEAT && ev->result < 0)
			fz_fail("negative RTT");
		break;
	case MR_EV_GOAWAY:
		break;
	case MR_EV_SESSION_ENDED:
		if (ev->stream || !mr_session_ended(sd->sess))
			fz_fail("SESSION_ENDED with a stream or not ended");
		sd->ended_seen = true;
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

static void drain_all(struct fz *fz)
{
	for (int k = 0; k < fz->nsides; k++)
		drain(&fz->side[k]);
}

/* ---- moving bytes -------------------------------------------------------------- */

/* Feeds bytes to a side in chunks of `chunk` (0: all at once), each a
 * buffer of its own that the caller lets go of at once (fuzz_cut.h). Once
 * an input has cut FZ_MAX_CUT_RECVS chunks off its deliveries, the rest of
 * every delivery goes in one piece. */
static void feed(struct side *sd, const uint8_t *p, size_t n, size_t chunk)
{
	struct fz *fz = sd->fz;
	struct fz_cut *cut;
	size_t count, cuts;

	if (!n)
		return;
	cut = fz_cut_new(p, n, chunk, FZ_MAX_CUT_RECVS - fz->cut_recvs, &count,
			 &cuts);
	fz->cut_recvs += cuts;
	for (size_t i = 0; i < count; i++) {
		struct mr_buf *buf = fz_cut_chunk(cut, i);
		size_t len = buf->cap;
		int rc;

		fparse_feed(sd, &sd->in, false, buf->data, len);
		rc = mr_session_recv(sd->sess, buf, buf->data, len,
				     fz->recv_flags);
		mr_buf_unref(buf);
		if (rc > 0)
			fz_fail("mr_session_recv returned %d", rc);
		drain(sd);
	}
}

/* Each side's queue outlives its input, so that an input that queues a
 * megabyte does not map, fault in and unmap a fresh one (ASan maps every
 * block above 128 KiB on its own). The engine never sees this memory:
 * feed() hands it copies. */
static struct {
	uint8_t *p;
	size_t cap;
} kept_queue[2];

/* Appends to the bytes waiting for the peer: delivered bytes are dropped
 * from the front only when room is needed, so a queue of a megabyte
 * delivered a few hundred bytes at a time is not moved each time. */
static void queue_append(struct side *sd, const uint8_t *p, size_t n)
{
	if (sd->queue_cap - sd->queue_len < n && sd->queue_head) {
		memmove(sd->queue, sd->queue + sd->queue_head,
			sd->queue_len - sd->queue_head);
		sd->queue_len -= sd->queue_head;
		sd->queue_head = 0;
	}
	if (sd->queue_cap - sd->queue_len < n) {
		size_t cap = sd->queue_cap ? sd->queue_cap : 4096;

		while (cap - sd->queue_len < n)
			cap *= 2;
		sd->queue = fz_realloc(sd->queue, cap);
		sd->queue_cap = cap;
	}
	memcpy(sd->queue + sd->queue_len, p, n);
	sd->queue_len += n;
}

static void queue_out(struct side *sd, const struct iovec *iov, size_t n,
		      size_t take)
{
	for (size_t i = 0; i < n && take; i++) {
		size_t k = iov[i].iov_len < take ? iov[i].iov_len : take;

		fparse_feed(sd, &sd->out, true, iov[i].iov_base, k);
		if (sd->fz->peer)
			queue_append(sd, iov[i].iov_base, k);
		take -= k;
	}
}

/* One tx_iov / tx_advance round; `frac` of 255 of the offered bytes are
 * taken. Returns the bytes taken. */
static size_t pump(struct side *sd, size_t max_iov, size_t max_bytes,
		   unsigned frac)
{
	struct iovec iov[FZ_MAX_IOV], again[FZ_MAX_IOV];
	size_t n, n2, offered = 0, take;

	if (max_iov > FZ_MAX_IOV)
		max_iov = FZ_MAX_IOV;
	n = mr_session_tx_iov(sd->sess, iov, max_iov, max_bytes);
	if (n > max_iov)
		fz_fail("tx_iov filled %zu of %zu iovecs", n, max_iov);
	for (size_t i = 0; i < n; i++) {
		if (!iov[i].iov_len)
			fz_fail("tx_iov offered an empty iovec");
		offered += iov[i].iov_len;
	}
	/* Asked again, the same bytes come first. */
	n2 = mr_session_tx_iov(sd->sess, again, max_iov, max_bytes);
	if (n2 < n)
		fz_fail("tx_iov shrank from %zu to %zu iovecs", n, n2);
	for (size_t i = 0; i < n; i++) {
		if (again[i].iov_base != iov[i].iov_base ||
		    (i + 1 < n && again[i].iov_len != iov[i].iov_len) ||
		    again[i].iov_len < iov[i].iov_len)
			fz_fail("tx_iov changed bytes already offered");
	}
	take = frac >= 255 ? offered : offered * frac / 255;
	queue_out(sd, iov, n, take);
	if (take)
		mr_session_tx_advance(sd->sess, take);
	drain(sd);
	return take;
}

static void pump_all(struct side *sd)
{
	for (int i = 0; i < 100000; i++)
		if (!pump(sd, FZ_MAX_IOV, SIZE_MAX, 255))
			return;
	fz_fail("side %d never stops sending", sd->k);
}

/* Moves up to `max` queued bytes of side `from` to the other side. */
static void deliver(struct fz *fz, int from, size_t max, size_t chunk)
{
	struct side *a = &fz->side[from], *b = &fz->side[!from];
	size_t n = a->queue_len - a->queue_head;

	if (n > max)
		n = max;
	if (!n)
		return;
	feed(b, a->queue + a->queue_head, n, chunk);
	a->queue_head += n;
	if (a->queue_head == a->queue_len)
		a->queue_head = a->queue_len = 0;
}

/* ---- application operations ---------------------------------------------------- */

static struct known *pick_stream(struct side *sd, struct fz_cursor *c)
{
	uint8_t i = fz_take8(c);

	return sd->nknown ? &sd->known[i % sd->nknown] : NULL;
}

static void check_rc(int rc, const char *what)
{
	if (rc > 0)
		fz_fail("%s returned %d", what, rc);
}

static void op_open(struct side *sd, struct fz_cursor *c)
{
	struct mr_stream *s = NULL;
	uint32_t type = fz_take32(c);
	int rc = mr_session_open(sd->sess, type, &s);

	check_rc(rc, "mr_session_open");
	if (rc)
		return;
	if (!s || find_known(sd, s))
		fz_fail("open returned a known or NULL stream");
	if (!own_id(sd, mr_stream_id(s)))
		fz_fail("opened id %u has the peer's parity", mr_stream_id(s));
	add_known(sd, s);
	if (sd->fz->trace)
		fprintf(stderr, "  side %d opened %u type %#x\n", sd->k,
			mr_stream_id(s), type);
	{
		struct idrec *r = idrec_get(sd->fz, mr_stream_id(s));

		if (r) {
			r->app_opened = true;
			r->type = type;
			/* The peer takes it for a heartbeat stream and echoes
			 * what comes (BUG 4 in the report): no content check. */
			if (sd->cfg.typed && type == MR_HEARTBEAT_TYPE)
				r->unverifiable = true;
		}
	}
}

static void op_write(struct side *sd, struct fz_cursor *c, unsigned shift)
{
	struct known *kn = pick_stream(sd, c);
	size_t len = (size_t)fz_take8(c) << shift;
	struct idrec *r;
	struct mr_buf *buf;
	const uint8_t *data;
	uint64_t ud, off;
	int rc;

	if (!kn)
		return;
	if (sd->fz->written_total + len > sd->fz->max_written)
		len = 0;
	r = idrec_get(sd->fz, kn->id);
	off = r ? r->written[sd->k] : 0;
	if (len > FZ_HEAP_WRITE) {
		buf = fz_pattern_buf(kn->id, off, len, &data);
	} else {
		/* The bytes sit at offset 1, so the view is not the buffer's
		 * start. */
		buf = mr_buf_new_heap(len + 2);
		if (buf)
			fz_pattern_fill(buf->data + 1, kn->id, off, len);
		data = buf ? buf->data + 1 : NULL;
	}
	if (!buf)
		abort();
	if ((sd->nwrites & (sd->nwrites - 1)) == 0) {
		size_t cap = sd->nwrites ? sd->nwrites * 2 : 8;

		sd->write_len = fz_realloc(sd->write_len,
					   cap * sizeof(*sd->write_len));
		sd->write_done = fz_realloc(sd->write_done,
					    cap * sizeof(*sd->write_done));
	}
	ud = sd->nwrites + 1;
	sd->write_len[sd->nwrites] = (uint32_t)len;
	sd->write_done[sd->nwrites] = false;
	rc = mr_stream_write(kn->s, buf, data, len, ud);
	check_rc(rc, "mr_stream_write");
	if (sd->fz->trace)
		fprintf(stderr, "  side %d write %zu bytes on %u: %d\n", sd->k,
			len, kn->id, rc);
	if (!rc) {
		sd->nwrites++;
		sd->fz->written_total += len;
		if (r)
			r->written[sd->k] += len;
	}
	mr_buf_unref(buf);
}

static void op_stream(struct side *sd, struct fz_cursor *c, unsigned op,
		      unsigned arg)
{
	struct known *kn = pick_stream(sd, c);
	uint8_t x = fz_take8(c);

	if (!kn)
		return;
	switch (op) {
	case 0:
		check_rc(mr_stream_close_write(kn->s), "close_write");
		break;
	case 1:
		check_rc(mr_stream_close(kn->s), "close");
		break;
	case 2:
		check_rc(mr_stream_reset(kn->s, x), "reset");
		break;
	default: {
		enum mr_deadline_kind kind = arg & 1 ? MR_DEADLINE_WRITE
						     : MR_DEADLINE_READ;
		struct idrec *r;

		if (kind == MR_DEADLINE_WRITE && x &&
		    (r = idrec_get(sd->fz, kn->id)))
			r->unverifiable = true;
		mr_stream_set_deadline(kn->s, kind,
				       x ? sd->now + (uint64_t)x * 1000000u : 0);
		break;
	}
	}
}

static void op_release(struct side *sd, struct fz_cursor *c, unsigned arg)
{
	uint8_t pick = fz_take8(c);
	size_t n = arg ? arg : sd->nviews;

	while (n-- && sd->nviews)
		release_view(sd, pick % sd->nviews);
}

static void expire(struct side *sd)
{
	uint64_t next = mr_session_expire(sd->sess, sd->now);

	if (next && next <= sd->now)
		fz_fail("expire at %llu says %llu is still to come",
			(unsigned long long)sd->now, (unsigned long long)next);
	if (next != mr_session_next_deadline(sd->sess))
		fz_fail("expire and next_deadline disagree");
	drain(sd);
}

static void op_time(struct fz *fz, struct fz_cursor *c, unsigned arg)
{
	uint64_t step = (uint64_t)fz_take8(c) * (arg & 4 ? 10000000u : 100000u);

	for (int k = 0; k < fz->nsides; k++) {
		fz->side[k].now += step;
		if (arg & 1)
			mr_session_set_now(fz->side[k].sess, fz->side[k].now);
		else
			expire(&fz->side[k]);
	}
}

/* Always reads an interval and a tolerance byte (ms), and a seed byte for
 * a start. */
static void op_heartbeat(struct side *sd, struct fz_cursor *c, unsigned arg)
{
	uint64_t interval = ((uint64_t)fz_take8(c) + (arg & 4 ? 0 : 1)) * 1000000u;
	uint64_t tolerance = (uint64_t)fz_take8(c) * 1000000u;
	int rc;

	switch (arg & 3) {
	case 0:
		rc = mr_session_heartbeat_start(sd->sess, interval, tolerance,
						fz_take8(c));
		check_rc(rc, "heartbeat_start");
		if (!rc)
			sd->hb_started = true;
		if (!rc && !sd->cfg.typed)
			fz_fail("heartbeat started on an untyped session");
		break;
	case 1:
		rc = mr_session_heartbeat_configure(sd->sess, interval,
						    tolerance);
		check_rc(rc, "heartbeat_configure");
		if (!rc && !sd->hb_started)
			fz_fail("configure worked without a heartbeat");
		break;
	default:
		rc = mr_session_heartbeat_beat(sd->sess);
		check_rc(rc, "heartbeat_beat");
		if (!rc && !sd->hb_started)
			fz_fail("beat worked without a heartbeat");
		break;
	}
}

static const char debug_text[] = "fuzzed GOAWAY debug text, long enough for "
				 "every length the argument can ask for";

static void op_session(struct side *sd, struct fz_cursor *c, unsigned arg)
{
	uint8_t code = fz_take8(c);

	switch (arg & 3) {
	case 0:
		check_rc(mr_session_goaway(sd->sess, code, debug_text,
					   (arg >> 2) * 7), "goaway");
		break;
	case 1:
		check_rc(mr_session_close(sd->sess, code, debug_text, arg),
			 "close");
		break;
	case 2:
		mr_session_recv_end(sd->sess, code & 1 ? -ECONNRESET : 0);
		break;
	default:
		if (sd->raised_id)
			break;
		/* Near the end of the id space, above every id used. */
		sd->raised_id = true;
		mr_session_set_next_stream_id(sd->sess,
					      sd->role == MR_ROLE_CLIENT
						      ? 0x7FFFFFF1u - (code & 0xE)
						      : 0x7FFFFFF0u - (code & 0xE));
		break;
	}
	drain(sd);
}

/* Raw bytes from the input into a side. */
static void op_inject(struct fz *fz, struct side *sd, struct fz_cursor *c,
		      unsigned arg)
{
	size_t n = fz_take8(c);

	if (n > c->n)
		n = c->n;
	if (fz->peer)
		fz->tainted = true;
	feed(sd, c->p, n, arg & 7);
	c->p += n;
	c->n -= n;
}

/* ---- life of one input ------------------------------------------------------------ */

static void side_init(struct fz *fz, int k, enum mr_role role)
{
	struct side *sd = &fz->side[k];

	sd->fz = fz;
	sd->k = k;
	sd->role = role;
	sd->queue = kept_queue[k].p;
	sd->queue_cap = kept_queue[k].cap;
	mr_config_default(&sd->cfg);
	sd->cfg.typed = fz->cfg & FZ_CFG_TYPED;
	if (fz->cfg & FZ_CFG_SMALL) {
		sd->cfg.window = MR_INITIAL_WINDOW + (k ? 0 : 4096);
		sd->cfg.accept_backlog = 2;
		sd->cfg.max_streams = 6;
		sd->cfg.goaway_debug_cap = 5;
		sd->cfg.max_frame_payload = 7 + 500 * k;
		sd->cfg.max_control_backlog = 64;
	}
	sd->sess = mr_session_new(role, &sd->cfg);
	if (!sd->sess)
		abort();
}

/* Every stream the application knows closed, every write reported, and
 * the last bytes can leave. */
static void check_ended(struct side *sd)
{
	if (!sd->ended_seen)
		fz_fail("side %d: no SESSION_ENDED after close", sd->k);
	for (size_t i = 0; i < sd->nknown; i++)
		if (!sd->known[i].closed)
			fz_fail("side %d: stream %u never got STREAM_CLOSED",
				sd->k, sd->known[i].id);
	for (size_t i = 0; i < sd->nwrites; i++)
		if (!sd->write_done[i])
			fz_fail("side %d: write %zu never got WRITE_DONE",
				sd->k, i + 1);
	pump_all(sd);
	if (!mr_session_done(sd->sess))
		fz_fail("side %d: not done after sending everything", sd->k);
	if (!fparse_idle(&sd->out))
		fz_fail("side %d: output ends inside a frame", sd->k);
}

static void finish(struct fz *fz)
{
	if (!(fz->cfg & FZ_CFG_NO_CLOSE)) {
		if (fz->peer) {
			for (int round = 0; round < 8; round++) {
				pump_all(&fz->side[0]);
				pump_all(&fz->side[1]);
				deliver(fz, 0, SIZE_MAX, 0);
				deliver(fz, 1, SIZE_MAX, 0);
			}
		}
		for (int k = 0; k < fz->nsides; k++) {
			struct side *sd = &fz->side[k];

			if (!mr_session_ended(sd->sess))
				check_rc(mr_session_close(sd->sess, 0, "end",
							  3), "close");
			drain(sd);
			check_ended(sd);
		}
	}
	for (int k = 0; k < fz->nsides; k++) {
		struct side *sd = &fz->side[k];

		/* Half the views now, half once the session is gone. */
		for (size_t i = 0; i < sd->nviews; i++)
			if (i % 2 == 0)
				mr_view_release(&sd->views[i]);
		mr_session_free(sd->sess);
		sd->sess = NULL;
	}
	for (int k = 0; k < fz->nsides; k++) {
		struct side *sd = &fz->side[k];

		for (size_t i = 0; i < sd->nviews; i++)
			if (i % 2 == 1)
				mr_view_release(&sd->views[i]);
		for (size_t i = 0; i < sd->nclosed; i++)
			mr_event_done(&sd->closed[i]);
		free(sd->views);
		free(sd->closed);
		free(sd->known);
		free(sd->write_len);
		free(sd->write_done);
		kept_queue[k].p = sd->queue;
		kept_queue[k].cap = sd->queue_cap;
	}
	free(fz->ids);
}

/* Raw mode: the rest of the input is A's wire input. */
static void run_raw(struct fz *fz, struct fz_cursor *c, uint8_t mode)
{
	struct side *sd = &fz->side[0];
	uint32_t rng = 0x9E3779B9u ^ mode;

	while (c->n) {
		size_t chunk;

		rng ^= rng << 13;
		rng ^= rng >> 17;
		rng ^= rng << 5;
		switch (mode & 3) {
		case 0:
			chunk = c->n;
			break;
		case 1:
			chunk = 1;
			break;
		default:
			chunk = 1 + rng % (mode & 0x40 ? 4096 : 17);
			break;
		}
		if (chunk > c->n)
			chunk = c->n;
		feed(sd, c->p, chunk, 0);
		c->p += chunk;
		c->n -= chunk;
		pump(sd, 1 + rng % FZ_MAX_IOV, rng & 4 ? SIZE_MAX : 1 + rng % 999,
		     rng >> 24);
		if (rng & 8)
			op_release(sd, &(struct fz_cursor){0}, rng >> 28);
		if (mode & 4) {
			sd->now += rng % 10000000u;
			expire(sd);
		}
		if (!(fz->cfg & FZ_CFG_AUTO_ACCEPT) && sd->unaccepted &&
		    (rng & 16)) {
			mr_session_accept_done(sd->sess);
			sd->unaccepted--;
		}
	}
	pump_all(sd);
}

static void run_program(struct fz *fz, struct fz_cursor *c)
{
	for (unsigned ops = 0; c->n && ops < FZ_MAX_OPS; ops++) {
		uint8_t b = fz_take8(c);
		unsigned op = b >> 4, arg = b & 0xF;
		struct side *sd = &fz->side[fz->peer && (arg & 8) ? 1 : 0];

		if (fz->trace)
			fprintf(stderr, "op %u arg %#x side %d (%zu bytes left)\n",
				op, arg, sd->k, c->n);

		switch (op) {
		case 0:
		case 15:
			op_inject(fz, sd, c, arg);
			break;
		case 1: {
			uint8_t mb = fz_take8(c), fr = fz_take8(c);

			pump(sd, 1 + (arg & 7) * 9,
			     mb == 0xFF ? SIZE_MAX : (size_t)mb * 97 + 1, fr);
			break;
		}
		case 2:
			if (fz->peer)
				deliver(fz, sd->k, (size_t)fz_take8(c) * 61 + 1,
					arg & 7);
			else
				pump_all(sd);
			break;
		case 3:
			op_open(sd, c);
			break;
		case 4:
		case 5:
			op_write(sd, c, (op == 5 ? 8 : 0) + (arg & 7));
			break;
		case 6:
			op_stream(sd, c, arg & 1, arg);
			break;
		case 7:
			op_stream(sd, c, 2 + (arg & 1), arg >> 1);
			break;
		case 8:
			op_release(sd, c, arg & 7);
			break;
		case 9:
			if (sd->unaccepted) {
				mr_session_accept_done(sd->sess);
				sd->unaccepted--;
			}
			break;
		case 10:
			op_time(fz, c, arg);
			break;
		case 11:
			op_heartbeat(sd, c, arg);
			break;
		case 12:
			op_session(sd, c, arg);
			break;
		case 13:
			pump_all(sd);
			if (fz->peer)
				deliver(fz, sd->k, SIZE_MAX, 0);
			break;
		default: /* 14: both ways until quiet, a few rounds */
			/* Chunks of a few hundred bytes: a megabyte cut into
			 * bytes would be a quarter million events, and op 2
			 * already cuts every frame boundary into bytes. */
			for (int r = 0; r < 4 && fz->peer; r++) {
				pump_all(&fz->side[0]);
				pump_all(&fz->side[1]);
				deliver(fz, 0, SIZE_MAX, (arg & 7) * 509u);
				deliver(fz, 1, SIZE_MAX, (arg & 7) * 509u);
			}
			break;
		}
		drain_all(fz);
	}
}

int fuzz_engine_input(const uint8_t *data, size_t size)
{
	struct fz fz;
	struct fz_cursor c = {.p = data, .n = size};
	uint8_t mode;

	memset(&fz, 0, sizeof(fz));
	fz.cfg = fz_take8(&c);
	fz.trace = getenv("FUZZ_TRACE") != NULL;
	mode = fz_take8(&c);
	fz.peer = (fz.cfg & FZ_CFG_PEER) && !(mode & FZ_MODE_RAW);
	fz.recv_flags = fz.cfg & FZ_CFG_COPY ? MR_RECV_COPY : 0;
	fz.nsides = fz.peer ? 2 : 1;
	fz.max_written = fz.cfg & FZ_CFG_SMALL ? FZ_MAX_WRITTEN_SMALL
					       : FZ_MAX_WRITTEN;
	side_init(&fz, 0, fz.cfg & FZ_CFG_SERVER ? MR_ROLE_SERVER
						 : MR_ROLE_CLIENT);
	if (fz.peer)
		side_init(&fz, 1, fz.cfg & FZ_CFG_SERVER ? MR_ROLE_CLIENT
							 : MR_ROLE_SERVER);
	if ((fz.cfg & FZ_CFG_HEARTBEAT) && (fz.cfg & FZ_CFG_TYPED)) {
		check_rc(mr_session_heartbeat_start(fz.side[0].sess, 5000000u,
						    20000000u, mode),
			 "heartbeat_start");
		fz.side[0].hb_started = true;
	}
	if (mode & FZ_MODE_RAW)
		run_raw(&fz, &c, mode);
	else
		run_program(&fz, &c);
	drain_all(&fz);
	finish(&fz);
	return 0;
}
