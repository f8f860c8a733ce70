/*
 * loop_harness.c - the scripted application of the loop tests (see
 * loop_harness.h): roles for streams, a generator for checkable bytes, and
 * a loop runner with a time limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_harness.h"
#include "valgrind_run.h"

/* ---- generator -------------------------------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

void lh_gen_init(struct lh_gen *g, uint64_t seed)
{
	g->state = seed * 0x9E3779B97F4A7C15ull + 1;
	g->left = 0;
	g->word = 0;
}

void lh_gen_fill(struct lh_gen *g, uint8_t *out, size_t n)
{
	while (n && g->left) {
		*out++ = (uint8_t)g->word;
		g->word >>= 8;
		g->left--;
		n--;
	}
	while (n >= 8) {
		uint64_t w = xorshift(&g->state);

		memcpy(out, &w, 8); /* little-endian hosts: same bytes as below */
		out += 8;
		n -= 8;
	}
	if (n) {
		g->word = xorshift(&g->state);
		g->left = 8;
		while (n--) {
			*out++ = (uint8_t)g->word;
			g->word >>= 8;
			g->left--;
		}
	}
}

size_t lh_gen_check(struct lh_gen *g, const uint8_t *in, size_t n)
{
	uint8_t buf[4096];
	size_t done = 0;

	while (done < n) {
		size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
		size_t i;

		lh_gen_fill(g, buf, k);
		if (memcmp(buf, in + done, k)) {
			for (i = 0; i < k && buf[i] == in[done + i]; i++)
				;
			return done + i;
		}
		done += k;
	}
	return n;
}

void lh_sum_init(struct lh_sum *s)
{
	s->h = 0xcbf29ce484222325ull;
	s->part = 0;
	s->npart = 0;
}

static inline void sum_word(struct lh_sum *s, uint64_t w)
{
	s->h = (s->h ^ w) * 0x100000001b3ull;
	s->h ^= s->h >> 29;
}

void lh_sum_feed(struct lh_sum *s, const uint8_t *p, size_t n)
{
	uint64_t w;

	while (n && s->npart) {
		s->part |= (uint64_t)*p++ << (8 * s->npart);
		n--;
		if (++s->npart == 8) {
			sum_word(s, s->part);
			s->part = 0;
			s->npart = 0;
		}
	}
	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&w, p, 8);
		sum_word(s, w);
	}
	while (n--)
		s->part |= (uint64_t)*p++ << (8 * s->npart++);
}

uint64_t lh_sum_value(const struct lh_sum *s)
{
	struct lh_sum t = *s;

	if (t.npart)
		sum_word(&t, t.part ^ ((uint64_t)t.npart << 56));
	return t.h;
}

/* ---- records -------------------------------------------------------------- */

struct lh *lh_new(const struct muxring_loop_opts *opts)
{
	struct lh *h = calloc(1, sizeof(*h));
	int err;

	assert_non_null(h);
	err = muxring_loop_create(&h->loop, opts);
	if (err)
		fail_msg("muxring_loop_create: %d: %s", err,
			 muxring_loop_create_error());
	h->chunk = 64 << 10;
	h->queue_max = 1 << 20;
	return h;
}

void lh_free(struct lh *h)
{
	struct lh_peer *p;
	size_t i;

	for (i = 0; i < h->nstreams; i++)
		lh_release_held(h->streams[i]);
	muxring_loop_destroy(h->loop);
	for (i = 0; i < h->nstreams; i++) {
		free(h->streams[i]->held);
		free(h->streams[i]);
	}
	free(h->streams);
	while ((p = h->peers)) {
		h->peers = p->next;
		free(p);
	}
	free(h->scratch);
	free(h);
}

struct lh_peer *lh_peer_new(struct lh *h, bool server, enum lh_role accept_role,
			    uint64_t accept_total)
{
	struct lh_peer *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->h = h;
	p->server = server;
	p->accept_role = accept_role;
	p->accept_total = accept_total;
	p->next = h->peers;
	h->peers = p;
	return p;
}

static uint64_t seed_of(uint32_t id, bool server)
{
	return ((uint64_t)id << 1 | server) + 1;
}

static struct lh_stream *stream_new(struct lh_peer *p,
				    struct muxring_stream *st, bool local,
				    enum lh_role role, uint64_t total)
{
	struct lh *h = p->h;
	struct lh_stream *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->h = h;
	s->peer = p;
	s->st = st;
	s->id = muxring_stream_id(st);
	s->local = local;
	s->role = role;
	s->total = total;
	lh_sum_init(&s->send_sum);
	lh_sum_init(&s->recv_sum);
	lh_gen_init(&s->send_gen, seed_of(s->id, p->server));
	lh_gen_init(&s->recv_gen, seed_of(s->id, role == LH_SOURCE
						     ? p->server
						     : !p->server));
	if (h->nstreams == h->streams_cap) {
		h->streams_cap = h->streams_cap ? h->streams_cap * 2 : 64;
		h->streams = realloc(h->streams,
				     h->streams_cap * sizeof(*h->streams));
		assert_non_null(h->streams);
	}
	h->streams[h->nstreams++] = s;
	muxring_stream_set_data(st, (uint64_t)(uintptr_t)s);
	return s;
}

struct lh_stream *lh_open(struct lh_peer *p, enum lh_role role,
			  uint64_t total)
{
	struct muxring_stream *st;
	struct lh_stream *s;
	int err;

	err = muxring_stream_open(p->sess, 0, &st);
	if (err)
		fail_msg("muxring_stream_open: %s", muxring_strerror(err));
	s = stream_new(p, st, true, role, total);
	p->opened++;
	lh_pump(s);
	return s;
}

/* ---- sockets -------------------------------------------------------------- */

void lh_tcp_fds(int fds[2])
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);
	int lfd, one = 1;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&addr, &len), 0);
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fds[0] >= 0);
	assert_int_equal(connect(fds[0], (struct sockaddr *)&addr, sizeof(addr)),
			 0);
	fds[1] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fds[1] >= 0);
	setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(lfd);
}

static void pair_from_fds(struct lh *h, int fds[2],
			  const struct muxring_session_opts *opts,
			  struct lh_peer **client, struct lh_peer **server)
{
	struct lh_peer *c = lh_peer_new(h, false, LH_ECHO, 0);
	struct lh_peer *s = lh_peer_new(h, true, LH_ECHO, 0);

	assert_int_equal(muxring_session_create(h->loop, fds[0], MUXRING_CLIENT,
						opts, (uintptr_t)c, &c->sess),
			 0);
	assert_int_equal(muxring_session_create(h->loop, fds[1], MUXRING_SERVER,
						opts, (uintptr_t)s, &s->sess),
			 0);
	*client = c;
	*server = s;
}

void lh_pair_unix(struct lh *h, const struct muxring_session_opts *opts,
		  struct lh_peer **client, struct lh_peer **server)
{
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds),
			 0);
	pair_from_fds(h, fds, opts, client, server);
}

void lh_pair_tcp(struct lh *h, const struct muxring_session_opts *opts,
		 struct lh_peer **client, struct lh_peer **server)
{
	int fds[2];

	lh_tcp_fds(fds);
	pair_from_fds(h, fds, opts, client, server);
}

/* ---- roles ----------------------------------------------------------------- */

static void write_error(struct lh_stream *s, int err)
{
	s->write_errors++;
	s->last_write_error = err;
}

void lh_pump(struct lh_stream *s)
{
	struct lh *h = s->h;
	int err;

	if (s->role != LH_SOURCE && s->role != LH_DUPLEX)
		return;
	if (s->after_eof && !s->eof)
		return;
	if (!h->scratch) {
		h->scratch = malloc(h->chunk);
		assert_non_null(h->scratch);
	}
	while (s->st && !s->write_errors && s->queued < s->total &&
	       s->queued - s->written < h->queue_max) {
		size_t n = s->total - s->queued < h->chunk
				   ? (size_t)(s->total - s->queued)
				   : h->chunk;
		uint8_t *p = NULL;

		if (s->zc && n <= muxring_buf_size(h->loop))
			p = muxring_buf_get(h->loop, n);
		if (p) {
			lh_gen_fill(&s->send_gen, p, n);
			lh_sum_feed(&s->send_sum, p, n);
			err = muxring_stream_write_zc(s->st, p, n,
						      (uintptr_t)s);
		} else {
			lh_gen_fill(&s->send_gen, h->scratch, n);
			lh_sum_feed(&s->send_sum, h->scratch, n);
			err = muxring_stream_write(s->st, h->scratch, n,
						   (uintptr_t)s);
		}
		if (err) {
			write_error(s, err);
			return;
		}
		s->queued += n;
	}
	if (s->st && s->queued == s->total && !s->fin_sent && !s->no_fin &&
	    !s->write_errors) {
		err = muxring_stream_close_write(s->st);
		if (err)
			write_error(s, err);
		s->fin_sent = true;
	}
}

void lh_release_held(struct lh_stream *s)
{
	size_t i;

	for (i = 0; i < s->nheld; i++)
		muxring_view_release(&s->held[i]);
	s->nheld = 0;
	s->held_bytes = 0;
}

static void hold_view(struct lh_stream *s, struct muxring_view *v)
{
	if (s->nheld == s->held_cap) {
		s->held_cap = s->held_cap ? s->held_cap * 2 : 64;
		s->held = realloc(s->held, s->held_cap * sizeof(*s->held));
		assert_non_null(s->held);
	}
	s->held[s->nheld++] = *v;
	s->held_bytes += v->len;
}

static void on_data(struct lh_stream *s, struct muxring_cqe *c)
{
	const uint8_t *d = c->view.data;
	size_t n = c->view.len, at;
	int err;

	assert_int_equal((size_t)c->res, n);
	assert_true(n > 0);
	if (s->role == LH_ECHO) {
		if (s->st) {
			err = muxring_stream_write(s->st, d, n, (uintptr_t)s);
			if (err)
				write_error(s, err);
			else
				s->queued += n;
		}
	} else if (!s->mismatch) {
		at = lh_gen_check(&s->recv_gen, d, n);
		if (at != n) {
			s->mismatch = true;
			s->mismatch_at = s->received + at;
		}
	}
	lh_sum_feed(&s->recv_sum, d, n);
	s->received += n;
	if (s->hold)
		hold_view(s, &c->view);
	else
		muxring_view_release(&c->view);
}

static struct lh_stream *stream_of(struct muxring_cqe *c)
{
	return (struct lh_stream *)(uintptr_t)muxring_stream_data(c->stream);
}

static void copy_debug(char *out, size_t cap, const struct muxring_view *v)
{
	size_t n = v->len < cap - 1 ? v->len : cap - 1;

	if (n)
		memcpy(out, v->data, n);
	out[n] = '\0';
}

static void on_entry(struct lh *h, struct muxring_cqe *c)
{
	struct lh_stream *s;
	struct lh_peer *p;

	h->entries++;
	if (h->hook && h->hook(h, c))
		return;
	switch (c->type) {
	case MUXRING_CQE_SESSION_READY:
		p = (struct lh_peer *)(uintptr_t)c->user_data;
		if (c->listener) {
			/* user_data is the listener's template peer. */
			p = lh_peer_new(h, true, p->accept_role, p->accept_total);
			muxring_session_set_data(c->session, (uintptr_t)p);
		}
		p->sess = c->session;
		p->ready = true;
		p->ready_res = c->res;
		h->sessions_ready++;
		break;
	case MUXRING_CQE_STREAM_ACCEPTED:
		p = (struct lh_peer *)(uintptr_t)c->user_data;
		s = stream_new(p, c->stream, false, p->accept_role,
			       p->accept_total);
		s->after_eof = p->accept_after_eof;
		p->accepted++;
		lh_pump(s);
		break;
	case MUXRING_CQE_DATA:
		on_data(stream_of(c), c);
		break;
	case MUXRING_CQE_EOF:
		s = stream_of(c);
		s->eof = true;
		if ((s->role == LH_ECHO || s->role == LH_SINK) && s->st &&
		    !s->fin_sent) {
			if (muxring_stream_close_write(s->st))
				s->write_errors++;
			s->fin_sent = true;
		}
		lh_pump(s);
		break;
	case MUXRING_CQE_WRITE_DONE:
		s = (struct lh_stream *)(uintptr_t)c->user_data;
		if (c->res < 0)
			write_error(s, (int)c->res);
		else
			s->written += (uint64_t)c->res;
		lh_pump(s);
		break;
	case MUXRING_CQE_DEADLINE:
		s = stream_of(c);
		if (!s->deadlines)
			s->deadline_at = muxring_now_ns();
		s->deadlines++;
		s->deadline_kinds |= c->code;
		break;
	case MUXRING_CQE_STREAM_CLOSED:
		s = stream_of(c);
		s->closed = true;
		s->close_code = c->code;
		s->close_res = c->res;
		s->close_flags = c->flags;
		s->st = NULL;
		s->peer->closed_streams++;
		break;
	case MUXRING_CQE_GOAWAY:
		p = (struct lh_peer *)(uintptr_t)c->user_data;
		p->goaway = true;
		p->goaway_code = c->code;
		copy_debug(p->goaway_debug, sizeof(p->goaway_debug), &c->view);
		break;
	case MUXRING_CQE_SESSION_ENDED:
		p = (struct lh_peer *)(uintptr_t)c->user_data;
		p->ended = true;
		p->end_res = c->res;
		p->end_code = c->code;
		p->end_flags = c->flags;
		copy_debug(p->end_debug, sizeof(p->end_debug), &c->view);
		snprintf(p->end_reason, sizeof(p->end_reason), "%s",
			 c->reason ? c->reason : "");
		muxring_session_stats(c->session, &p->final_stats);
		p->sess = NULL;
		h->sessions_ended++;
		break;
	case MUXRING_CQE_LISTENER_CLOSED:
		h->listeners_closed++;
		break;
	case MUXRING_CQE_HEARTBEAT:
		p = (struct lh_peer *)(uintptr_t)c->user_data;
		p->heartbeats++;
		p->last_rtt = (uint64_t)c->res;
		break;
	case MUXRING_CQE_HEARTBEAT_FAILED:
		p = (struct lh_peer *)(uintptr_t)c->user_data;
		p->heartbeat_failures++;
		break;
	case MUXRING_CQE_POLL:
		h->polls++;
		h->last_poll_res = c->res;
		h->last_poll_data = c->user_data;
		break;
	default:
		fail_msg("unknown entry type %u", c->type);
	}
}

static void turn(struct lh *h, int64_t timeout_ns)
{
	struct muxring_cqe *cqes[128];
	unsigned n, i;
	int ret;

	ret = muxring_submit_and_wait(h->loop, 1, timeout_ns);
	if (ret < 0 && ret != -EINTR)
		fail_msg("muxring_submit_and_wait: %d (%s)", ret,
			 muxring_strerror(ret));
	while ((n = muxring_peek_batch_cqe(h->loop, cqes, 128))) {
		for (i = 0; i < n; i++)
			on_entry(h, cqes[i]);
		muxring_cq_advance(h->loop, n);
	}
}

void lh_run(struct lh *h, bool (*done)(struct lh *h), double seconds)
{
	uint64_t until;

	seconds = vg_seconds(seconds);
	until = muxring_now_ns() + (uint64_t)(seconds * 1e9);

	while (!done(h)) {
		if (muxring_now_ns() > until)
			fail_msg("lh_run: not done after %.1f s", seconds);
		turn(h, 20 * 1000 * 1000);
	}
}

void lh_run_for(struct lh *h, double seconds)
{
	uint64_t until = muxring_now_ns() + (uint64_t)(seconds * 1e9), now;

	/* No wait past the end: a run of a millisecond must not sit out a
	 * turn's full 10 ms when nothing comes. */
	while ((now = muxring_now_ns()) < until)
		turn(h, (int64_t)(until - now < 10000000u ? until - now
							  : 10000000u));
}

bool lh_all_sessions_ended(struct lh *h)
{
	struct lh_peer *p;

	for (p = h->peers; p; p = p->next)
		if (p->sess || (p->ready && !p->ended))
			return false;
	return true;
}

bool lh_all_streams_closed(struct lh *h)
{
	size_t i;

	for (i = 0; i < h->nstreams; i++)
		if (!h->streams[i]->closed)
			return false;
	return true;
}

void lh_assert_streams_ok(struct lh *h)
{
	lh_assert_peer_streams_ok(h, NULL);
}

void lh_assert_peer_streams_ok(struct lh *h, const struct lh_peer *peer)
{
	size_t i;

	for (i = 0; i < h->nstreams; i++) {
		struct lh_stream *s = h->streams[i];

		if (peer && s->peer != peer)
			continue;
		if (s->mismatch)
			fail_msg("stream %u (%s): byte %llu differs", s->id,
				 s->peer->server ? "server" : "client",
				 (unsigned long long)s->mismatch_at);
		if (s->write_errors)
			fail_msg("stream %u: %u write errors, last %s", s->id,
				 s->write_errors,
				 muxring_strerror((int)s->last_write_error));
		if (!s->eof)
			fail_msg("stream %u (%s): no EOF (received %llu, "
				 "written %llu of %llu, closed %d code %u)",
				 s->id, s->peer->server ? "server" : "client",
				 (unsigned long long)s->received,
				 (unsigned long long)s->written,
				 (unsigned long long)s->total, s->closed,
				 s->close_code);
		switch (s->role) {
		case LH_SOURCE:
			assert_int_equal(s->received, s->total);
			assert_int_equal(s->written, s->total);
			assert_true(lh_sum_value(&s->recv_sum) ==
				    lh_sum_value(&s->send_sum));
			break;
		case LH_DUPLEX:
			assert_int_equal(s->written, s->total);
			break;
		case LH_ECHO:
			assert_int_equal(s->written, s->received);
			break;
		default:
			break;
		}
		if (s->closed && s->close_code != MUXRING_NO_ERROR)
			fail_msg("stream %u closed with %s", s->id,
				 muxring_code_name(s->close_code));
	}
}
