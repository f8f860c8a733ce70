/*
 * engine_harness.c - an in-memory transport and application for the engine.
 *
 * Nothing here is clever on purpose: every byte that goes in is a fresh heap
 * buffer dropped by the harness right after mr_session_recv, every byte that
 * comes out is copied into one growing array, and every event is kept until
 * the end. A test then asserts on plain arrays.
 */
#include "engine_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);

	assert_non_null(q);
	return q;
}

/* ---- hand-made wire bytes --------------------------------------------- */

void eh_bytes_put(struct eh_bytes *b, const void *data, size_t len)
{
	if (b->cap - b->len < len) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap - b->len < len)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

void eh_bytes_header(struct eh_bytes *b, uint32_t length, uint8_t type,
		     uint8_t flags, uint32_t id)
{
	uint8_t h[8];

	h[0] = (uint8_t)(length >> 16);
	h[1] = (uint8_t)(length >> 8);
	h[2] = (uint8_t)length;
	h[3] = (uint8_t)((type & 0xF) << 4 | (flags & 0xF));
	mr_put_be32(h + 4, id);
	eh_bytes_put(b, h, sizeof(h));
}

void eh_bytes_data(struct eh_bytes *b, uint32_t id, uint8_t flags,
		   const void *payload, size_t len)
{
	eh_bytes_header(b, (uint32_t)len, MR_FRAME_DATA, flags, id);
	eh_bytes_put(b, payload, len);
}

void eh_bytes_rst(struct eh_bytes *b, uint32_t id, uint32_t code)
{
	uint8_t w[4];

	eh_bytes_header(b, 4, MR_FRAME_RST, 0, id);
	mr_put_be32(w, code);
	eh_bytes_put(b, w, 4);
}

void eh_bytes_wndinc(struct eh_bytes *b, uint32_t id, uint32_t increment)
{
	uint8_t w[4];

	eh_bytes_header(b, 4, MR_FRAME_WNDINC, 0, id);
	mr_put_be32(w, increment);
	eh_bytes_put(b, w, 4);
}

void eh_bytes_goaway(struct eh_bytes *b, uint32_t last_id, uint32_t code,
		     const void *debug, size_t debug_len)
{
	uint8_t w[8];

	eh_bytes_header(b, (uint32_t)(8 + debug_len), MR_FRAME_GOAWAY, 0, 0);
	mr_put_be32(w, last_id);
	mr_put_be32(w + 4, code);
	eh_bytes_put(b, w, 8);
	eh_bytes_put(b, debug, debug_len);
}

void eh_bytes_free(struct eh_bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- frames parsed back from bytes ------------------------------------ */

void eh_frames_parse(const uint8_t *bytes, size_t len, struct eh_frames *out)
{
	size_t pos = 0, cap = 0;

	memset(out, 0, sizeof(*out));
	while (pos < len) {
		struct eh_frame fr;

		if (len - pos < MR_FRAME_HEADER_LEN) {
			print_error("emitted bytes end inside a frame header "
				    "(%zu bytes left at offset %zu)\n",
				    len - pos, pos);
			fail();
		}
		mr_frame_header_parse(bytes + pos, &fr.hdr);
		if (len - pos - MR_FRAME_HEADER_LEN < fr.hdr.length) {
			print_error("emitted bytes end inside a frame body at "
				    "offset %zu (length %u, %zu bytes left)\n",
				    pos, fr.hdr.length,
				    len - pos - MR_FRAME_HEADER_LEN);
			fail();
		}
		fr.raw = bytes + pos;
		fr.body = bytes + pos + MR_FRAME_HEADER_LEN;
		fr.offset = pos;
		if (out->n == cap) {
			cap = cap ? cap * 2 : 16;
			out->v = xrealloc(out->v, cap * sizeof(*out->v));
		}
		out->v[out->n++] = fr;
		pos += MR_FRAME_HEADER_LEN + fr.hdr.length;
	}
}

void eh_frames_free(struct eh_frames *f)
{
	free(f->v);
	memset(f, 0, sizeof(*f));
}

void eh_frames_drop_type(struct eh_frames *f, uint8_t type)
{
	size_t w = 0;

	for (size_t r = 0; r < f->n; r++)
		if (f->v[r].hdr.type != type)
			f->v[w++] = f->v[r];
	f->n = w;
}

size_t eh_frames_count(const struct eh_frames *f, uint8_t type, uint32_t id)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n; i++)
		n += f->v[i].hdr.type == type &&
		     (id == EH_ANY || f->v[i].hdr.stream_id == id);
	return n;
}

const struct eh_frame *eh_frames_find(const struct eh_frames *f, uint8_t type,
				      uint32_t id, size_t nth)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].hdr.type == type &&
		    (id == EH_ANY || f->v[i].hdr.stream_id == id) && nth-- == 0)
			return &f->v[i];
	return NULL;
}

uint64_t eh_frames_wndinc_sum(const struct eh_frames *f, uint32_t id)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].hdr.type == MR_FRAME_WNDINC &&
		    f->v[i].hdr.stream_id == id && f->v[i].hdr.length == 4)
			sum += mr_frame_wndinc_increment(f->v[i].body);
	return sum;
}

static const char *type_name(uint8_t type)
{
	switch (type) {
	case MR_FRAME_RST:
		return "RST";
	case MR_FRAME_DATA:
		return "DATA";
	case MR_FRAME_WNDINC:
		return "WNDINC";
	case MR_FRAME_GOAWAY:
		return "GOAWAY";
	default:
		return "UNKNOWN";
	}
}

const char *eh_frame_str(const struct eh_frame *f, char *out, size_t cap)
{
	const struct mr_frame_header *h = &f->hdr;
	int n = snprintf(out, cap, "%s(type %u) flags=%s%s%s stream=%u len=%u",
			 type_name(h->type), h->type,
			 h->flags & MR_FLAG_SYN ? "SYN" : "",
			 (h->flags & MR_FLAG_SYN) && (h->flags & MR_FLAG_FIN)
				 ? "|" : "",
			 h->flags & MR_FLAG_FIN ? "FIN" : (h->flags ? "" : "-"),
			 h->stream_id, h->length);
	size_t used = n > 0 && (size_t)n < cap ? (size_t)n : cap - 1;

	if ((h->type == MR_FRAME_RST || h->type == MR_FRAME_WNDINC) &&
	    h->length == 4)
		snprintf(out + used, cap - used, " word=%u",
			 mr_get_be32(f->body));
	else if (h->type == MR_FRAME_GOAWAY && h->length >= 8)
		snprintf(out + used, cap - used,
			 " last=%u code=%u debug=\"%.*s\"",
			 mr_get_be32(f->body), mr_get_be32(f->body + 4),
			 (int)(h->length - 8 > 60 ? 60 : h->length - 8),
			 (const char *)f->body + 8);
	else if (h->type == MR_FRAME_DATA && h->length)
		snprintf(out + used, cap - used, " payload=\"%.*s\"",
			 (int)(h->length > 40 ? 40 : h->length),
			 (const char *)f->body);
	return out;
}

static void print_frames(const char *title, const struct eh_frames *f)
{
	char line[256];

	print_error("  %s (%zu frames):\n", title, f->n);
	for (size_t i = 0; i < f->n; i++)
		print_error("    %2zu  %s\n", i + 1,
			    eh_frame_str(&f->v[i], line, sizeof(line)));
}

void eh_assert_frames_equal(const struct eh_frames *got,
			    const struct eh_frames *want, const char *what)
{
	size_t bad = SIZE_MAX;

	for (size_t i = 0; i < got->n && i < want->n && bad == SIZE_MAX; i++) {
		size_t glen = MR_FRAME_HEADER_LEN + got->v[i].hdr.length;
		size_t wlen = MR_FRAME_HEADER_LEN + want->v[i].hdr.length;

		if (glen != wlen || memcmp(got->v[i].raw, want->v[i].raw, glen))
			bad = i;
	}
	if (bad == SIZE_MAX && got->n == want->n)
		return;
	print_error("%s: emitted frames differ from the expected ones", what);
	if (bad != SIZE_MAX)
		print_error(" (first difference at frame %zu)", bad + 1);
	else
		print_error(" (%zu frames instead of %zu)", got->n, want->n);
	print_error("\n");
	print_frames("expected", want);
	print_frames("emitted", got);
	fail();
}

/* ---- one engine ------------------------------------------------------- */

struct eh *eh_new(enum mr_role role, const struct mr_config *cfg)
{
	struct eh *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	if (cfg)
		h->cfg = *cfg;
	else
		mr_config_default(&h->cfg);
	h->role = role;
	h->sess = mr_session_new(role, &h->cfg);
	if (!h->sess) {
		print_error("mr_session_new refused the configuration\n");
		free(h);
		fail();
	}
	h->record_tx = true;
	h->tx_max_iov = 64;
	h->auto_accept = true;
	return h;
}

static void give_back_event(struct eh_ev *e)
{
	if (e->ev.type == MR_EV_DATA && !e->released) {
		mr_view_release(&e->ev.view);
		e->released = true;
	}
}

void eh_free(struct eh *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nev; i++)
		give_back_event(&h->ev[i]);
	for (size_t i = 0; i < h->nev; i++) {
		mr_event_done(&h->ev[i].ev);
		free(h->ev[i].copy);
	}
	mr_session_free(h->sess);
	free(h->ev);
	free(h->tx);
	free(h);
}

void eh_poll(struct eh *h)
{
	struct mr_event ev;

	while (mr_session_poll_event(h->sess, &ev)) {
		struct eh_ev *e;

		if (ev.type == MR_EV_STREAM_ACCEPTED && h->auto_accept)
			mr_session_accept_done(h->sess);
		if (h->on_event && h->on_event(h, &ev, h->ctx))
			continue;
		if (h->nev == h->ev_cap) {
			h->ev_cap = h->ev_cap ? h->ev_cap * 2 : 64;
			h->ev = xrealloc(h->ev, h->ev_cap * sizeof(*h->ev));
		}
		e = &h->ev[h->nev++];
		memset(e, 0, sizeof(*e));
		e->ev = ev;
		e->id = ev.stream ? mr_stream_id(ev.stream) : 0;
		if (ev.type == MR_EV_DATA) {
			e->copy = malloc(ev.view.len ? ev.view.len : 1);
			assert_non_null(e->copy);
			if (ev.view.len)
				memcpy(e->copy, ev.view.data, ev.view.len);
		}
		e->seq = h->ev_seq++;
	}
}

int eh_feed(struct eh *h, const void *data, size_t len, size_t chunk)
{
	const uint8_t *p = data;
	int first = 0;

	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		struct mr_buf *buf = mr_buf_new_copy(p + off, n);
		int rc;

		assert_non_null(buf);
		rc = mr_session_recv(h->sess, buf, buf->data, n,
				     h->recv_flags);
		h->bufs_fed++;
		mr_buf_unref(buf);
		if (rc && !first)
			first = rc;
		if (rc && !h->recv_rc)
			h->recv_rc = rc;
		eh_poll(h);
	}
	return first;
}

int eh_feed_bytes(struct eh *h, const struct eh_bytes *b, size_t chunk)
{
	return eh_feed(h, b->p, b->len, chunk);
}

static void tx_append(struct eh *h, const void *data, size_t len)
{
	if (h->tx_cap - h->tx_len < len) {
		size_t cap = h->tx_cap ? h->tx_cap : 4096;

		while (cap - h->tx_len < len)
			cap *= 2;
		h->tx = xrealloc(h->tx, cap);
		h->tx_cap = cap;
	}
	memcpy(h->tx + h->tx_len, data, len);
	h->tx_len += len;
}

size_t eh_flush(struct eh *h)
{
	struct iovec iov[256];
	size_t total = 0;
	size_t max_iov = h->tx_max_iov && h->tx_max_iov < 256 ? h->tx_max_iov
							      : 256;

	for (;;) {
		size_t n = mr_session_tx_iov(h->sess, iov, max_iov, SIZE_MAX);
		size_t offered = 0, take;

		if (n == 0)
			break;
		assert_true(n <= max_iov);
		for (size_t i = 0; i < n; i++)
			offered += iov[i].iov_len;
		assert_true(offered > 0);
		take = h->tx_step && h->tx_step < offered ? h->tx_step : offered;
		for (size_t i = 0, left = take; i < n && left; i++) {
			size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;

			tx_append(h, iov[i].iov_base, k);
			left -= k;
		}
		mr_session_tx_advance(h->sess, take);
		total += take;
		h->tx_total += take;
		eh_poll(h);
	}
	assert_false(mr_session_tx_pending(h->sess));
	eh_poll(h);
	return total;
}

void eh_tx_clear(struct eh *h)
{
	h->tx_len = 0;
	h->tx_fed = 0;
}

void eh_tx_frames(struct eh *h, struct eh_frames *out)
{
	eh_flush(h);
	eh_frames_parse(h->tx, h->tx_len, out);
}

struct mr_stream *eh_open(struct eh *h)
{
	struct mr_stream *s = NULL;
	int rc = mr_session_open(h->sess, 0, &s);

	if (rc != 0) {
		print_error("mr_session_open failed: %d (%s)\n", rc,
			    muxring_strerror(rc));
		fail();
	}
	assert_non_null(s);
	return s;
}

int eh_write(struct mr_stream *s, const void *data, size_t len, uint64_t ud)
{
	struct mr_buf *buf = mr_buf_new_copy(data, len);
	int rc;

	assert_non_null(buf);
	rc = mr_stream_write(s, buf, buf->data, len, ud);
	mr_buf_unref(buf);
	return rc;
}

/* ---- event queries ------------------------------------------------------ */

static bool ev_matches(const struct eh_ev *e, enum mr_event_type type,
		       uint32_t id)
{
	return e->ev.type == type && (id == EH_ANY || e->id == id);
}

size_t eh_count(const struct eh *h, enum mr_event_type type, uint32_t id)
{
	size_t n = 0;

	for (size_t i = 0; i < h->nev; i++)
		n += ev_matches(&h->ev[i], type, id);
	return n;
}

struct eh_ev *eh_find(struct eh *h, enum mr_event_type type, uint32_t id,
		      size_t nth)
{
	for (size_t i = 0; i < h->nev; i++)
		if (ev_matches(&h->ev[i], type, id) && nth-- == 0)
			return &h->ev[i];
	return NULL;
}

struct mr_stream *eh_accepted(struct eh *h, uint32_t id)
{
	struct eh_ev *e = eh_find(h, MR_EV_STREAM_ACCEPTED, id, 0);

	return e ? e->ev.stream : NULL;
}

size_t eh_data(const struct eh *h, uint32_t id, uint8_t *out, size_t cap)
{
	size_t total = 0;

	for (size_t i = 0; i < h->nev; i++) {
		const struct eh_ev *e = &h->ev[i];

		if (!ev_matches(e, MR_EV_DATA, id))
			continue;
		for (size_t k = 0; k < e->ev.view.len; k++, total++)
			if (total < cap)
				out[total] = e->copy[k];
	}
	return total;
}

void eh_assert_data(const struct eh *h, uint32_t id, const void *want,
		    size_t len)
{
	uint8_t *got = malloc(len + 1);
	size_t n;

	assert_non_null(got);
	n = eh_data(h, id, got, len + 1);
	if (n != len || memcmp(got, want, len)) {
		print_error("stream %u received %zu bytes \"%.*s\", expected "
			    "%zu bytes \"%.*s\"\n", id, n,
			    (int)(n > 64 ? 64 : (n > len + 1 ? len + 1 : n)),
			    (const char *)got, len, (int)(len > 64 ? 64 : len),
			    (const char *)want);
		free(got);
		fail();
	}
	free(got);
}

size_t eh_release(struct eh *h, uint32_t id, size_t max_bytes)
{
	size_t released = 0;

	for (size_t i = 0; i < h->nev && released < max_bytes; i++) {
		struct eh_ev *e = &h->ev[i];

		if (!ev_matches(e, MR_EV_DATA, id) || e->released)
			continue;
		released += e->ev.view.len;
		mr_view_release(&e->ev.view);
		e->released = true;
	}
	return released;
}

uint32_t eh_closed_code(struct eh *h, uint32_t id)
{
	size_t n = eh_count(h, MR_EV_STREAM_CLOSED, id);

	if (n != 1) {
		print_error("stream %u got %zu STREAM_CLOSED events, expected "
			    "exactly 1\n", id, n);
		fail();
	}
	return eh_find(h, MR_EV_STREAM_CLOSED, id, 0)->ev.code;
}

int64_t eh_write_result(struct eh *h, uint64_t user_data)
{
	struct eh_ev *found = NULL;
	size_t n = 0;

	for (size_t i = 0; i < h->nev; i++)
		if (h->ev[i].ev.type == MR_EV_WRITE_DONE &&
		    h->ev[i].ev.user_data == user_data) {
			found = &h->ev[i];
			n++;
		}
	if (n != 1) {
		print_error("write %llu got %zu WRITE_DONE events, expected "
			    "exactly 1\n", (unsigned long long)user_data, n);
		fail();
	}
	return found->ev.result;
}

void eh_assert_ended(struct eh *h)
{
	assert_true(mr_session_ended(h->sess));
	assert_int_equal(eh_count(h, MR_EV_SESSION_ENDED, EH_ANY), 1);
	assert_true(h->nev > 0);
	assert_int_equal(h->ev[h->nev - 1].ev.type, MR_EV_SESSION_ENDED);
	assert_null(h->ev[h->nev - 1].ev.stream);
	/* Nothing more may come after the last event. */
	eh_poll(h);
	assert_int_equal(h->ev[h->nev - 1].ev.type, MR_EV_SESSION_ENDED);
}

void eh_assert_stream_events_well_formed(struct eh *h)
{
	for (size_t i = 0; i < h->nev; i++) {
		if (h->ev[i].ev.type != MR_EV_STREAM_CLOSED)
			continue;
		for (size_t k = i + 1; k < h->nev; k++) {
			if (h->ev[k].ev.stream != h->ev[i].ev.stream ||
			    h->ev[k].ev.type == MR_EV_SESSION_ENDED)
				continue;
			print_error("stream %u: event type %d after its "
				    "STREAM_CLOSED\n", h->ev[i].id,
				    (int)h->ev[k].ev.type);
			fail();
		}
	}
}

/* ---- two engines wired to each other ------------------------------------ */

static bool deliver(struct eh_pipe *p, struct eh *from, struct eh *to)
{
	size_t chunk = p->chunk ? p->chunk(p->ctx) : 0;
	size_t n;

	eh_flush(from);
	n = from->tx_len - from->tx_fed;
	if (n == 0)
		return false;
	eh_feed(to, from->tx + from->tx_fed, n, chunk);
	from->tx_fed = from->tx_len;
	if (!from->record_tx)
		from->tx_len = from->tx_fed = 0;
	return true;
}

bool eh_pipe_step(struct eh_pipe *p)
{
	bool moved = deliver(p, p->a, p->b);

	moved |= deliver(p, p->b, p->a);
	return moved;
}

void eh_pipe_run(struct eh_pipe *p)
{
	for (size_t i = 0; eh_pipe_step(p); i++)
		if (i > 10000000) {
			print_error("the two engines never go quiet\n");
			fail();
		}
}

bool eh_is_readable_text(const uint8_t *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	return true;
}
