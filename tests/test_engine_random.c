/*
 * test_engine_random.c - two engines wired to each other in memory, under
 * a random load that a replay can reproduce.
 *
 * 10,000 streams, half opened by each side, each carrying a random number
 * of bytes in each direction (0 to 1 MiB), written in random pieces, with
 * streams announced (first write) in a random order, the byte stream
 * between the engines cut into random chunks each way,
 * partial sends (the "transport" sometimes takes only part of what is
 * offered), payloads sometimes copied out (MR_RECV_COPY), a random receive
 * window (256 KiB to 2 MiB) and frame size per side, and a random reading
 * pace: many views are held for a while and
 * released later, so windows fill up and writers block. Every byte is
 * checked against a pattern derived from the stream id, the direction and
 * the offset; every stream must end with EOF after exactly its bytes and one
 * STREAM_CLOSED NoError on both sides; every write must complete whole.
 *
 * Sizes are skewed small so that the whole run moves about 100 MB and stays
 * well under a minute with ASan on two cores: per direction, 30% of the
 * streams carry 0-64 bytes, 55% up to 4 KiB, 14.4% up to 64 KiB and 0.6%
 * up to 1 MiB (about 5 KB on average).
 *
 * The seed is printed; MUXRING_SEED=<seed> replays a run, and
 * MUXRING_RANDOM_STREAMS=<n> changes the number of streams (for debugging).
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine_harness.h"

/* ---- randomness --------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t seed;

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rnd(void)
{
	return mix64(rng_state += 0x9E3779B97F4A7C15ull);
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

/* 1..max, most often small. */
static size_t rnd_size(size_t max)
{
	static const size_t caps[] = {16, 1024, 16384, 262144};
	size_t cap = caps[rnd_below(4)];

	if (cap > max)
		cap = max;
	return cap ? 1 + rnd_below(cap) : 0;
}

/* ---- what each stream carries ------------------------------------------ */

/* dir 0: opener to acceptor; dir 1: acceptor to opener. */
static size_t stream_size(uint32_t id, int dir)
{
	uint64_t h = mix64(seed ^ ((uint64_t)id << 1 | (uint64_t)dir));
	unsigned r = (unsigned)(h % 1000);

	h >>= 10;
	if (r < 300)
		return h % 65;
	if (r < 850)
		return h % 4097;
	if (r < 994)
		return h % 65537;
	return h % ((1u << 20) + 1);
}

static uint32_t stream_key(uint32_t id, int dir)
{
	return (uint32_t)mix64(seed + 7 * (uint64_t)id + (uint64_t)dir);
}

static uint8_t pattern_at(uint32_t key, uint64_t off)
{
	uint32_t x = ((uint32_t)off ^ key) * 0x9E3779B1u;

	return (uint8_t)((x >> 24) ^ (uint32_t)(off >> 32) ^ (uint32_t)(off >> 20));
}

/* ---- one side ------------------------------------------------------------ */

struct sstate {
	uint32_t id;
	struct mr_stream *s;
	bool local;
	uint64_t send_total, queued; /* bytes to send; bytes given to writes */
	uint32_t send_key;
	uint64_t recv_total, received;
	uint32_t recv_key;
	unsigned pending_writes;
	bool fin_queued, eof, closed;
	unsigned holds;              /* views held by the test */
	size_t active_slot;          /* index in side.active, or SIZE_MAX */
};

struct held {
	struct mr_view view;
	struct sstate *st;
};

struct side {
	const char *name;
	struct eh *h;
	size_t to_open, open_now, max_open;
	size_t closed;               /* STREAM_CLOSED seen */
	size_t accepted;
	struct sstate **active;      /* streams with bytes left to queue */
	size_t nactive, active_cap;
	struct held *held;
	size_t nheld, held_cap;
	uint64_t bytes_received, writes;
};

static void fail_stream(const struct side *sd, const struct sstate *st,
			const char *what)
{
	const struct mr_session_result *r = mr_session_result(sd->h->sess);

	if (mr_session_ended(sd->h->sess))
		print_error("%s: the session ended: local error %d (%s), "
			    "remote goaway %d code %u debug \"%.*s\"\n",
			    sd->name, r->local_error,
			    muxring_strerror(r->local_error), r->remote_goaway,
			    r->remote_code, (int)r->remote_debug_len,
			    (const char *)r->remote_debug);
	print_error("%s, stream %u (%s): %s [sent %" PRIu64 "/%" PRIu64
		    " queued, received %" PRIu64 "/%" PRIu64 ", eof %d] -- "
		    "replay with MUXRING_SEED=%#" PRIx64 "\n", sd->name, st->id,
		    st->local ? "local" : "remote", what, st->queued,
		    st->send_total, st->received, st->recv_total, st->eof, seed);
	fail();
}

static void maybe_free(struct sstate *st)
{
	if (st->closed && st->holds == 0)
		free(st);
}

static void active_add(struct side *sd, struct sstate *st)
{
	if (sd->nactive == sd->active_cap) {
		sd->active_cap = sd->active_cap ? 2 * sd->active_cap : 64;
		sd->active = realloc(sd->active,
				     sd->active_cap * sizeof(*sd->active));
		assert_non_null(sd->active);
	}
	st->active_slot = sd->nactive;
	sd->active[sd->nactive++] = st;
}

static void active_remove(struct side *sd, struct sstate *st)
{
	size_t i = st->active_slot;

	if (i == SIZE_MAX)
		return;
	sd->active[i] = sd->active[--sd->nactive];
	sd->active[i]->active_slot = i;
	st->active_slot = SIZE_MAX;
}

static struct sstate *new_state(struct side *sd, struct mr_stream *s,
				bool local)
{
	struct sstate *st = calloc(1, sizeof(*st));
	int send_dir = local ? 0 : 1;

	assert_non_null(st);
	st->id = mr_stream_id(s);
	st->s = s;
	st->local = local;
	st->send_total = stream_size(st->id, send_dir);
	st->send_key = stream_key(st->id, send_dir);
	st->recv_total = stream_size(st->id, !send_dir);
	st->recv_key = stream_key(st->id, !send_dir);
	st->active_slot = SIZE_MAX;
	mr_stream_set_user(s, st);
	active_add(sd, st);
	return st;
}

/* Queues one write of random size (or the FIN once all is queued). */
static void write_some(struct side *sd, struct sstate *st)
{
	uint64_t left = st->send_total - st->queued;

	if (left) {
		size_t n = rnd_size((size_t)left);
		struct mr_buf *buf = mr_buf_new_heap(n);
		int rc;

		assert_non_null(buf);
		for (size_t i = 0; i < n; i++)
			buf->data[i] = pattern_at(st->send_key, st->queued + i);
		rc = mr_stream_write(st->s, buf, buf->data, n, n);
		mr_buf_unref(buf);
		if (rc)
			fail_stream(sd, st, muxring_strerror(rc));
		st->queued += n;
		st->pending_writes++;
		sd->writes++;
	}
	if (st->queued == st->send_total && !st->fin_queued) {
		/* After the peer's EOF, a full close is the same thing. */
		int rc = st->eof && rnd_below(2) ? mr_stream_close(st->s)
						 : mr_stream_close_write(st->s);

		if (rc)
			fail_stream(sd, st, "close_write failed");
		st->fin_queued = true;
		active_remove(sd, st);
	}
}

static void hold_or_release(struct side *sd, struct mr_event *ev,
			    struct sstate *st)
{
	if (rnd_below(2)) {
		mr_view_release(&ev->view);
		return;
	}
	if (sd->nheld == sd->held_cap) {
		sd->held_cap = sd->held_cap ? 2 * sd->held_cap : 256;
		sd->held = realloc(sd->held, sd->held_cap * sizeof(*sd->held));
		assert_non_null(sd->held);
	}
	sd->held[sd->nheld].view = ev->view;
	sd->held[sd->nheld].st = st;
	sd->nheld++;
	st->holds++;
}

static void release_some(struct side *sd, unsigned one_in)
{
	for (size_t i = 0; i < sd->nheld;) {
		struct held *hd = &sd->held[i];

		if (one_in > 1 && rnd_below(one_in)) {
			i++;
			continue;
		}
		mr_view_release(&hd->view);
		hd->st->holds--;
		maybe_free(hd->st);
		*hd = sd->held[--sd->nheld];
	}
}

static bool on_event(struct eh *h, struct mr_event *ev, void *ctx)
{
	struct side *sd = ctx;
	struct sstate *st = ev->stream ? mr_stream_user(ev->stream) : NULL;

	switch (ev->type) {
	case MR_EV_STREAM_ACCEPTED:
		st = new_state(sd, ev->stream, false);
		sd->accepted++;
		if (rnd_below(2))
			write_some(sd, st);
		break;
	case MR_EV_DATA:
		if (!st)
			fail_msg("%s: data for a stream without state", sd->name);
		if (st->received + ev->view.len > st->recv_total)
			fail_stream(sd, st, "more bytes than were sent");
		for (size_t i = 0; i < ev->view.len; i++)
			if (ev->view.data[i] !=
			    pattern_at(st->recv_key, st->received + i)) {
				char what[96];

				snprintf(what, sizeof(what),
					 "wrong byte at offset %" PRIu64,
					 st->received + i);
				fail_stream(sd, st, what);
			}
		st->received += ev->view.len;
		sd->bytes_received += ev->view.len;
		hold_or_release(sd, ev, st);
		break;
	case MR_EV_EOF:
		if (st->eof || st->received != st->recv_total)
			fail_stream(sd, st, "EOF before all bytes or twice");
		st->eof = true;
		break;
	case MR_EV_WRITE_DONE:
		if (ev->result != (int64_t)ev->user_data) {
			char what[96];

			snprintf(what, sizeof(what), "write of %" PRIu64
				 " finished with %" PRId64, ev->user_data,
				 ev->result);
			fail_stream(sd, st, what);
		}
		st->pending_writes--;
		break;
	case MR_EV_STREAM_CLOSED:
		if (ev->code != MUXRING_NO_ERROR) {
			char what[96];

			snprintf(what, sizeof(what), "closed with %s (%u)",
				 muxring_code_name(ev->code), ev->code);
			fail_stream(sd, st, what);
		}
		if (!st->eof || st->pending_writes || !st->fin_queued)
			fail_stream(sd, st, "closed before both directions ended");
		st->closed = true;
		sd->closed++;
		if (st->local)
			sd->open_now--;
		mr_event_done(ev);
		maybe_free(st);
		return true;
	case MR_EV_SESSION_ENDED: {
		const struct mr_session_result *r = mr_session_result(h->sess);

		print_error("%s: session ended: local error %d (%s), remote "
			    "goaway %d code %u debug \"%.*s\" -- replay with "
			    "MUXRING_SEED=%#" PRIx64 "\n", sd->name,
			    r->local_error, muxring_strerror(r->local_error),
			    r->remote_goaway, r->remote_code,
			    (int)r->remote_debug_len,
			    (const char *)r->remote_debug, seed);
		fail();
		break;
	}
	default:
		fail_msg("%s: unexpected event type %d", sd->name, (int)ev->type);
	}
	mr_event_done(ev);
	return true;
}

static void open_some(struct side *sd)
{
	while (sd->to_open && sd->open_now < sd->max_open && rnd_below(4)) {
		struct mr_stream *s = NULL;
		struct sstate *st;
		int rc = mr_session_open(sd->h->sess, 0, &s);

		if (rc)
			fail_msg("%s: open failed: %s", sd->name,
				 muxring_strerror(rc));
		sd->to_open--;
		sd->open_now++;
		st = new_state(sd, s, true);
		/* Half the time the first write (or the FIN) comes at once;
		 * otherwise later, so streams are announced out of order. */
		if (rnd_below(2))
			write_some(sd, st);
	}
}

static void write_some_streams(struct side *sd)
{
	size_t n = sd->nactive ? 1 + rnd_below(sd->nactive) : 0;

	for (size_t k = 0; k < n && sd->nactive; k++) {
		struct sstate *st = sd->active[rnd_below(sd->nactive)];

		if (st->pending_writes < 4)
			write_some(sd, st);
	}
}

static size_t random_chunk(void *ctx)
{
	size_t r = rnd_below(100);

	(void)ctx;
	if (r < 2)
		return 1 + rnd_below(16);
	if (r < 25)
		return 17 + rnd_below(4096);
	if (r < 40)
		return 0;
	return 4097 + rnd_below(262144);
}

static size_t env_size(const char *name, size_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? (size_t)strtoull(v, NULL, 0) : dflt;
}

static void test_two_engines_carry_ten_thousand_random_streams_intact(void **state)
{
	size_t nstreams = env_size("MUXRING_RANDOM_STREAMS", 10000);
	struct side a = {.name = "client"}, b = {.name = "server"};
	struct side *sides[2] = {&a, &b};
	struct eh_pipe p;
	size_t idle = 0, steps = 0;
	struct timespec t0, t1;

	(void)state;
	seed = env_size("MUXRING_SEED", 0);
	if (!seed) {
		clock_gettime(CLOCK_REALTIME, &t0);
		seed = mix64((uint64_t)t0.tv_sec * 1000000000ull +
			     (uint64_t)t0.tv_nsec);
	}
	printf("random engines: MUXRING_SEED=%#" PRIx64 " streams=%zu\n",
	       seed, nstreams);
	fflush(stdout);
	rng_state = seed;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	for (int i = 0; i < 2; i++) {
		static const uint32_t frames[] = {1024, 16384, 65536,
						  MR_FRAME_MAX_LEN};
		struct side *sd = sides[i];
		struct mr_config cfg;

		/* Each side its own window and frame size. */
		mr_config_default(&cfg);
		if (rnd_below(2))
			cfg.window = MR_INITIAL_WINDOW +
				     (uint32_t)rnd_below(7 * MR_INITIAL_WINDOW);
		cfg.max_frame_payload = frames[rnd_below(4)];
		printf("random engines: %s window %u, frames up to %u\n",
		       sd->name, cfg.window, cfg.max_frame_payload);
		sd->h = eh_new(i == 0 ? MR_ROLE_CLIENT : MR_ROLE_SERVER, &cfg);

		sd->to_open = i == 0 ? (nstreams + 1) / 2 : nstreams / 2;
		sd->max_open = 128;
		sd->h->record_tx = false;
		sd->h->on_event = on_event;
		sd->h->ctx = sd;
	}
	p = (struct eh_pipe){.a = a.h, .b = b.h, .chunk = random_chunk};

	while (a.closed + b.closed < 2 * nstreams) {
		bool moved;

		for (int i = 0; i < 2; i++) {
			struct side *sd = sides[i];

			open_some(sd);
			write_some_streams(sd);
			release_some(sd, idle ? 1 : 4);
			sd->h->tx_step = rnd_below(10) ? 0 : 1 + rnd_below(20000);
			/* Sometimes the driver runs low on receive buffers. */
			sd->h->recv_flags = rnd_below(5) ? 0 : MR_RECV_COPY;
		}
		moved = eh_pipe_step(&p);
		idle = moved ? 0 : idle + 1;
		if (idle > 3) {
			print_error("no progress: client %zu/%zu closed, %zu "
				    "held views, %zu active; server %zu/%zu, "
				    "%zu held, %zu active -- replay with "
				    "MUXRING_SEED=%#" PRIx64 "\n",
				    a.closed, nstreams, a.nheld, a.nactive,
				    b.closed, nstreams, b.nheld, b.nactive,
				    seed);
			fail();
		}
		steps++;
	}
	/* Everything was opened, accepted and finished on both sides. */
	assert_int_equal(a.to_open + b.to_open, 0);
	assert_int_equal(a.accepted, nstreams / 2);
	assert_int_equal(b.accepted, (nstreams + 1) / 2);
	assert_int_equal(a.closed, nstreams);
	assert_int_equal(b.closed, nstreams);
	assert_false(mr_session_ended(a.h->sess));
	assert_false(mr_session_ended(b.h->sess));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("random engines: %zu steps, %" PRIu64 " + %" PRIu64
	       " bytes delivered, %" PRIu64 " writes, %.1f s\n", steps,
	       a.bytes_received, b.bytes_received, a.writes + b.writes,
	       (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	for (int i = 0; i < 2; i++) {
		release_some(sides[i], 1);
		assert_int_equal(sides[i]->nactive, 0);
		free(sides[i]->held);
		free(sides[i]->active);
	}
	eh_free(a.h);
	eh_free(b.h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_engines_carry_ten_thousand_random_streams_intact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
