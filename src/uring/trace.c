/*
 * trace.c - the loop's frame tracer: bytes on the wire cut into frames.
 *
 * Each traced session has two scanners (send, receive) that follow its byte
 * streams exactly as a receiver would: gather 8 header bytes, parse them
 * with the codec, keep the first MR_TRACE_KEEP body bytes, skip the rest,
 * and report the frame when its last byte went by. Bytes come from the
 * kernel's completions, peeked before the loop dispatches them: a receive
 * names its ring buffer, a send's result says how many bytes of the
 * session's in-flight iovecs the kernel took (a partial send is simply
 * followed by the rest in the next one). Nothing here runs unless the loop
 * has a tracer.
 */
#include "uring/trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame_text.h"
#include "uring/loop.h"
#include "uring/session_io.h"

static const char *const dir_names[] = {"send", "recv"};

int muxring_trace_line(const struct muxring_trace_frame *f, char *out,
		       size_t cap)
{
	return snprintf(out, cap,
			"%" PRIu64 ".%06" PRIu64 "\tsession=%" PRIu64
			"\t%s\t%" PRIu64 "\t%s",
			f->time_ns / 1000000000u, f->time_ns % 1000000000u / 1000u,
			f->session_id, dir_names[f->dir & 1], f->offset,
			f->text);
}

/* The MUXRING_TRACE sink: one line, one write (the file is flushed after
 * each batch of completions, stderr is unbuffered). */
static void write_line(const struct muxring_trace_frame *f, void *arg)
{
	char line[MR_FRAME_TEXT_MAX(MR_TRACE_KEEP) + 96];
	int len = muxring_trace_line(f, line, sizeof(line) - 1);

	if (len < 0)
		return;
	if ((size_t)len > sizeof(line) - 2)
		len = (int)sizeof(line) - 2;
	line[len++] = '\n';
	fwrite(line, 1, (size_t)len, arg);
}

/* ---- create and free ---------------------------------------------------- */

int mr_tracer_create(const struct muxring_loop_opts *opts,
		     const struct muxring_mem *mem, struct mr_tracer **out,
		     char *why, size_t why_len)
{
	const char *env = getenv("MUXRING_TRACE");
	struct mr_tracer *t;
	int err;

	*out = NULL;
	if (!opts->trace && (!env || !*env || !strcmp(env, "0")))
		return 0;
	t = mr_calloc(mem, 1, sizeof(*t));
	if (!t) {
		snprintf(why, why_len, "muxring_loop_create: out of memory");
		return -ENOMEM;
	}
	t->mem = mem;
	if (opts->trace) {
		t->fn = opts->trace;
		t->arg = opts->trace_arg;
	} else {
		t->file = stderr;
		if (strcmp(env, "1") != 0) {
			t->file = fopen(env, "a");
			if (!t->file) {
				err = -errno;
				snprintf(why, why_len,
					 "MUXRING_TRACE: cannot open %s: %s",
					 env, strerror(-err));
				mr_free(mem, t);
				return err;
			}
			t->own_file = true;
		}
		t->fn = write_line;
		t->arg = t->file;
	}
	*out = t;
	return 0;
}

void mr_tracer_free(struct mr_tracer *t)
{
	if (!t)
		return;
	if (t->own_file)
		fclose(t->file);
	mr_free(t->mem, t);
}

struct mr_trace_session *mr_trace_session_new(const struct mr_tracer *t,
					      uint64_t id)
{
	struct mr_trace_session *ts = mr_calloc(t->mem, 1, sizeof(*ts));

	if (ts)
		ts->id = id;
	return ts;
}

/* ---- the scanners ------------------------------------------------------- */

static void report(const struct mr_tracer *t, struct muxring_session *s,
		   enum muxring_trace_dir dir, uint64_t now)
{
	const struct mr_trace_scan *sc = &s->trace->dir[dir];
	char text[MR_FRAME_TEXT_MAX(MR_TRACE_KEEP)];
	size_t kept = sc->body_seen < MR_TRACE_KEEP ? sc->body_seen
						    : MR_TRACE_KEEP;
	struct muxring_trace_frame f = {
		.session = s,
		.session_id = s->trace->id,
		.time_ns = now,
		.dir = dir,
		.offset = sc->offset - MR_FRAME_HEADER_LEN - sc->body_seen,
		.stream_id = sc->hdr.stream_id,
		.length = sc->hdr.length,
		.type = sc->hdr.type,
		.flags = sc->hdr.flags,
		.text = text,
	};

	mr_frame_text(text, sizeof(text), &sc->hdr, sc->body, kept,
		      MR_FRAME_TEXT_PREVIEW);
	t->fn(&f, t->arg);
}

/* Gathers a header; returns the bytes taken. A complete header that
 * breaks a framing rule is reported at once and ends the scan. */
static size_t scan_header(const struct mr_tracer *t, struct muxring_session *s,
			  enum muxring_trace_dir dir, const uint8_t *p,
			  size_t n, uint64_t now)
{
	struct mr_trace_scan *sc = &s->trace->dir[dir];
	size_t take = MR_FRAME_HEADER_LEN - sc->head_have;

	if (take > n)
		take = n;
	memcpy(sc->head + sc->head_have, p, take);
	sc->head_have = (uint8_t)(sc->head_have + take);
	sc->offset += take;
	if (sc->head_have == MR_FRAME_HEADER_LEN) {
		mr_frame_header_parse(sc->head, &sc->hdr);
		sc->body_seen = 0;
		if (mr_frame_header_check(&sc->hdr)) {
			report(t, s, dir, now);
			sc->lost = true;
		}
	}
	return take;
}

/* Passes body bytes, keeping the first ones; returns the bytes taken. */
static size_t scan_body(struct mr_trace_scan *sc, const uint8_t *p, size_t n)
{
	size_t take = sc->hdr.length - sc->body_seen;

	if (take > n)
		take = n;
	if (sc->body_seen < MR_TRACE_KEEP) {
		size_t keep = MR_TRACE_KEEP - sc->body_seen;

		memcpy(sc->body + sc->body_seen, p, keep < take ? keep : take);
	}
	sc->body_seen += (uint32_t)take;
	sc->offset += take;
	return take;
}

static void scan(const struct mr_tracer *t, struct muxring_session *s,
		 enum muxring_trace_dir dir, const uint8_t *p, size_t n,
		 uint64_t now)
{
	struct mr_trace_scan *sc = &s->trace->dir[dir];

	while (n && !sc->lost) {
		size_t used = sc->head_have < MR_FRAME_HEADER_LEN
				      ? scan_header(t, s, dir, p, n, now)
				      : scan_body(sc, p, n);

		p += used;
		n -= used;
		if (!sc->lost && sc->head_have == MR_FRAME_HEADER_LEN &&
		    sc->body_seen == sc->hdr.length) {
			report(t, s, dir, now);
			sc->head_have = 0;
		}
	}
}

/* ---- completions -------------------------------------------------------- */

/* The bytes of a receive, when the session will feed them to its engine
 * (the same test as the receive path: drained bytes are not the session's). */
static void trace_recv(struct muxring_loop *loop, struct muxring_session *s,
		       const struct io_uring_cqe *cqe)
{
	uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

	if (cqe->res <= 0 || !(cqe->flags & IORING_CQE_F_BUFFER) ||
	    bid >= loop->bufring->nbufs || s->state != MR_SIO_OPEN ||
	    loop->destroying || muxring_engine_ended(s->engine))
		return;
	scan(loop->tracer, s, MUXRING_TRACE_RECV,
	     loop->bufring->bufs[bid].data, (size_t)cqe->res, loop->now);
}

/* The first res bytes of the in-flight send's iovecs. A zero-copy send's
 * notification carries no byte count and is skipped. */
static void trace_send(struct muxring_loop *loop, struct muxring_session *s,
		       const struct io_uring_cqe *cqe)
{
	const struct mr_send_slot *slot = s->send;
	size_t left = cqe->res > 0 ? (size_t)cqe->res : 0, i;

	if (!slot || (cqe->flags & IORING_CQE_F_NOTIF))
		return;
	for (i = 0; i < slot->iov_used && left; i++) {
		size_t len = slot->iov[i].iov_len < left ? slot->iov[i].iov_len
							 : left;

		scan(loop->tracer, s, MUXRING_TRACE_SEND,
		     slot->iov[i].iov_base, len, loop->now);
		left -= len;
	}
}

void mr_trace_cqes(struct muxring_loop *loop, unsigned head, unsigned n)
{
	struct io_uring_cq *cq = &loop->ring.cq;
	unsigned i;

	for (i = 0; i < n; i++) {
		const struct io_uring_cqe *cqe =
			&cq->cqes[(head + i) & cq->ring_mask];
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		enum mr_op_tag tag = mr_op_tag_of(ud);
		struct muxring_session *s = mr_op_obj(ud);

		if (tag == MR_OP_RECV && s->trace)
			trace_recv(loop, s, cqe);
		else if (tag == MR_OP_SEND && s->trace)
			trace_send(loop, s, cqe);
	}
	if (loop->tracer->file)
		fflush(loop->tracer->file);
}
