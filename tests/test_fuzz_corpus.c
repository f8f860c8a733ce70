/*
 * test_fuzz_corpus.c - the fuzz targets as a regression test.
 *
 * `make fuzz` explores with libFuzzer; this test replays, on every
 * `make test`, a fixed corpus through the very same bodies
 * (tests/support/fuzz_frame_body.c and fuzz_engine_body.c), under the
 * test build's ASan and UBSan:
 *   - every vector file's decoded bytes, through the codec body and, behind
 *     a range of configurations (client/server, typed or not, whole, byte by
 *     byte, random chunks, with clock and heartbeat), through the engine
 *     body in raw mode;
 *   - a few hand-written engine programs (peer mode: open, write, deliver,
 *     half-close, heartbeat, GOAWAY, ...);
 *   - the reproducers of the crashes the fuzzers found (each named after
 *     the bug it reported in /tmp/engine-bugs.txt);
 *   - every input of tests/fuzz/seeds/fuzz_link/ (hand-written programs and
 *     the reproducers of what fuzz_link found, one per .hex file) through
 *     the two-engine link body (tests/support/fuzz_link_body.c);
 *   - a few hundred mutations of all of the above, from a fixed seed, so
 *     the run is the same every time.
 * A body that finds a broken invariant aborts the binary with a message
 * that says which; a sanitizer report names the fault.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fuzz_body.h"
#include "vec_load.h"

/* Under ASan, leaks are looked for after every input, so that a leak is
 * pinned to the input that caused it instead of showing up at exit. */
#if defined(__SANITIZE_ADDRESS__)
#define CORPUS_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORPUS_LSAN 1
#endif
#endif
#ifdef CORPUS_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* Raw-mode prefixes: configuration byte, then mode byte. */
static const uint8_t raw_prefixes[][2] = {
	{FZ_CFG_SERVER, FZ_MODE_RAW | 0},                   /* whole */
	{0, FZ_MODE_RAW | 1},                               /* byte by byte */
	{FZ_CFG_SERVER | FZ_CFG_TYPED, FZ_MODE_RAW | 2},    /* 1..17 bytes */
	{FZ_CFG_TYPED | FZ_CFG_HEARTBEAT, FZ_MODE_RAW | 6}, /* + clock */
	{FZ_CFG_SERVER | FZ_CFG_TYPED | FZ_CFG_SMALL | FZ_CFG_AUTO_ACCEPT,
	 FZ_MODE_RAW | 0x42},                               /* 1..4096 */
	{FZ_CFG_SERVER | FZ_CFG_COPY | FZ_CFG_NO_CLOSE, FZ_MODE_RAW | 3},
	{FZ_CFG_SMALL | FZ_CFG_COPY, FZ_MODE_RAW | 0x47},
};
#define NPREFIXES (sizeof(raw_prefixes) / sizeof(raw_prefixes[0]))

/* ---- inputs ----------------------------------------------------------------- */

struct input {
	uint8_t *p;
	size_t len;
};

struct corpus {
	struct input *v;
	size_t n, cap;
};

static void corpus_add(struct corpus *c, const uint8_t *a, size_t alen,
		       const uint8_t *b, size_t blen)
{
	struct input in = {.p = malloc(alen + blen + 1), .len = alen + blen};

	assert_non_null(in.p);
	if (alen)
		memcpy(in.p, a, alen);
	if (blen)
		memcpy(in.p + alen, b, blen);
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		assert_non_null(c->v);
	}
	c->v[c->n++] = in;
}

static void corpus_free(struct corpus *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].p);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* Every side of every scenario, decoded. */
static void load_vectors(struct corpus *c)
{
	static const char *const sides[] = {"client", "server"};

	for (size_t i = 0; i < vec_nscenarios; i++)
		for (size_t k = 0; k < 2; k++) {
			struct vec_side side;

			vec_must_load(vec_scenarios[i], sides[k], &side);
			corpus_add(c, side.bytes, side.len, NULL, 0);
			vec_side_free(&side);
		}
	assert_int_equal(c->n, 2 * vec_nscenarios);
}

/* The vectors behind every raw-mode prefix. */
static void load_raw_engine_inputs(struct corpus *c)
{
	struct corpus vec = {0};

	load_vectors(&vec);
	for (size_t i = 0; i < vec.n; i++)
		for (size_t k = 0; k < NPREFIXES; k++)
			corpus_add(c, raw_prefixes[k], 2, vec.v[i].p,
				   vec.v[i].len);
	corpus_free(&vec);
}

/*
 * Hand-written programs: configuration byte, mode byte 0, then opcodes
 * (operation << 4 | argument; bit 3 of the argument picks engine B; see
 * fuzz_engine_body.c run_program()).
 */
#define OP(op, arg) ((uint8_t)((op) << 4 | (arg)))
#define B 8
enum {
	O_INJECT = 0, O_PUMP = 1, O_DELIVER = 2, O_OPEN = 3, O_WRITE = 4,
	O_WRITE_BIG = 5, O_CLOSE = 6, O_RESET_DEADLINE = 7, O_RELEASE = 8,
	O_ACCEPT = 9, O_TIME = 10, O_HEARTBEAT = 11, O_SESSION = 12,
	O_FLUSH = 13, O_ROUNDS = 14,
};

static const uint8_t prog_echo[] = {
	FZ_CFG_PEER | FZ_CFG_TYPED | FZ_CFG_AUTO_ACCEPT,
	0,                                     /* mode: a program */
	OP(O_OPEN, 0), 0x12, 0x34, 0x56, 0x78,
	OP(O_WRITE, 3), 0, 200,                /* 1600 bytes on stream 0 */
	OP(O_ROUNDS, 1),
	OP(O_OPEN, B), 0, 0, 0, 7,             /* B opens one too */
	OP(O_WRITE, B | 2), 1, 99,
	OP(O_CLOSE, 0), 0, 0,                  /* A half-closes */
	OP(O_ROUNDS, 3),
	OP(O_RELEASE, 0), 0,
	OP(O_RELEASE, B), 0,
	OP(O_CLOSE, B), 0, 0,
	OP(O_ROUNDS, 0),
};

static const uint8_t prog_window[] = {
	FZ_CFG_PEER | FZ_CFG_SERVER | FZ_CFG_AUTO_ACCEPT,
	0,                                     /* mode: a program */
	OP(O_OPEN, 0), 0, 0, 0, 0,
	OP(O_WRITE_BIG, 7), 0, 20,             /* 20 << 15: 640 KiB */
	OP(O_WRITE_BIG, 5), 0, 40,             /* 40 << 13: 320 KiB */
	OP(O_ROUNDS, 0),                       /* window fills, views held */
	OP(O_PUMP, 2), 10, 128,                /* a half-taken batch */
	OP(O_RELEASE, B | 3), 0,
	OP(O_ROUNDS, 5),
	OP(O_RELEASE, B), 0,
	OP(O_ROUNDS, 0),
	OP(O_RESET_DEADLINE, 0), 0, 3,         /* reset with code 3 */
	OP(O_ROUNDS, 0),
};

static const uint8_t prog_heartbeat[] = {
	FZ_CFG_PEER | FZ_CFG_TYPED | FZ_CFG_HEARTBEAT,
	0,                                     /* mode: a program */
	OP(O_HEARTBEAT, B | 0), 10, 20, 7,     /* B starts one: 11 ms, 20 ms */
	OP(O_ROUNDS, 0),
	OP(O_TIME, 4), 1,                      /* +10 ms, expire */
	OP(O_ROUNDS, 2),
	OP(O_HEARTBEAT, 2), 0, 0,              /* beat on demand */
	OP(O_HEARTBEAT, 1), 50, 0,             /* reconfigure */
	OP(O_FLUSH, 0),
	OP(O_TIME, 4), 9,
	OP(O_ROUNDS, 0),
	OP(O_TIME, 4), 200,                    /* silence: failure */
	OP(O_OPEN, 0), 0xff, 0xff, 0xff, 0xff, /* the reserved type */
	OP(O_WRITE, 0), 1, 7,
	OP(O_ROUNDS, 0),
	OP(O_SESSION, B | 0), 2,               /* GOAWAY from B */
	OP(O_ROUNDS, 0),
	OP(O_OPEN, 0), 0, 0, 0, 1,             /* refused: gone away */
	OP(O_SESSION, 1), 0,                   /* A closes */
	OP(O_ROUNDS, 0),
};

static const uint8_t prog_deadlines_and_ids[] = {
	FZ_CFG_PEER | FZ_CFG_SMALL,
	0,                                     /* mode: a program */
	OP(O_SESSION, 3), 0,                   /* A near the id limit */
	OP(O_OPEN, 0), 0, 0, 0, 0,
	OP(O_OPEN, 0), 0, 0, 0, 0,
	OP(O_OPEN, 0), 0, 0, 0, 0,
	OP(O_OPEN, 0), 0, 0, 0, 0,
	OP(O_OPEN, 0), 0, 0, 0, 0,
	OP(O_OPEN, 0), 0, 0, 0, 0,             /* max_streams / exhausted */
	OP(O_RESET_DEADLINE, 1 | 2), 1, 5,     /* write deadline +5 ms */
	OP(O_WRITE_BIG, 4), 1, 250,
	OP(O_RESET_DEADLINE, 1), 2, 1,         /* read deadline +1 ms */
	OP(O_ROUNDS, 1),
	OP(O_TIME, 0), 80,                     /* +8 ms */
	OP(O_ROUNDS, 1),
	OP(O_INJECT, B | 1), 12,               /* raw bytes into B */
	0x00, 0x00, 0x04, 0x20, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00,
	OP(O_SESSION, B | 2), 0,               /* B: peer EOF */
	OP(O_ROUNDS, 0),
};

static void load_programs(struct corpus *c)
{
	corpus_add(c, prog_echo, sizeof(prog_echo), NULL, 0);
	corpus_add(c, prog_window, sizeof(prog_window), NULL, 0);
	corpus_add(c, prog_heartbeat, sizeof(prog_heartbeat), NULL, 0);
	corpus_add(c, prog_deadlines_and_ids, sizeof(prog_deadlines_and_ids),
		   NULL, 0);
}

/*
 * Reproducers of what the fuzzers found (see /tmp/engine-bugs.txt).
 * BUG 2: a DATA frame cut short by the end of the session leaked its
 * stream (server, raw: DATA|SYN stream 3 length 5 with one byte).
 */
static const uint8_t repro_bug2_rx_stream_leak[] = {
	0x01, 0x80, 0x00, 0x00, 0x05, 0x12, 0x00, 0x00, 0x00, 0x03, 0x41,
};

/* BUG 2 again, freed without a close first, and in peer mode: a delivery
 * that stops inside a DATA frame (the heartbeat SYN). */
static const uint8_t repro_bug2_peer_cut[] = {
	0xf6, 0x00, 0x10, 0x27, 0xe8, 0x11, 0x11, 0x11, 0x25, 0x11, 0x11,
	0x11,
};

/* BUG 4: an application stream opened with the heartbeat type. */
static const uint8_t repro_bug4_heartbeat_type[] = {
	FZ_CFG_PEER | FZ_CFG_TYPED | FZ_CFG_AUTO_ACCEPT,
	0,                                     /* mode: a program */
	OP(O_OPEN, B), 0xff, 0xff, 0xff, 0xff,
	OP(O_WRITE, B), 0, 7,
	OP(O_ROUNDS, 0),
	OP(O_ROUNDS, 0),
};

static void load_reproducers(struct corpus *c)
{
	corpus_add(c, repro_bug2_rx_stream_leak,
		   sizeof(repro_bug2_rx_stream_leak), NULL, 0);
	corpus_add(c, repro_bug2_peer_cut, sizeof(repro_bug2_peer_cut), NULL,
		   0);
	corpus_add(c, repro_bug4_heartbeat_type,
		   sizeof(repro_bug4_heartbeat_type), NULL, 0);
}

/*
 * Every tests/fuzz/seeds/fuzz_link/NAME.hex: lines of lowercase hex, '#'
 * lines are comments. The same files seed `make fuzz`.
 */
#define LINK_SEEDS "tests/fuzz/seeds/fuzz_link"

static void load_hex_file(struct corpus *c, const char *path)
{
	FILE *f = fopen(path, "r");
	uint8_t *bytes = malloc(65536);
	size_t n = 0;
	char line[4096];

	assert_non_null(f);
	assert_non_null(bytes);
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		for (char *p = line; p[0] && p[1] && p[0] != '\n'; p += 2) {
			unsigned v;

			assert_int_equal(sscanf(p, "%2x", &v), 1);
			assert_true(n < 65536);
			bytes[n++] = (uint8_t)v;
		}
	}
	fclose(f);
	corpus_add(c, bytes, n, NULL, 0);
	free(bytes);
}

static void load_link_inputs(struct corpus *c)
{
	DIR *d = opendir(LINK_SEEDS);
	struct dirent *e;
	size_t before = c->n;

	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char path[512];

		if (len < 5 || strcmp(e->d_name + len - 4, ".hex"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", LINK_SEEDS, e->d_name);
		load_hex_file(c, path);
	}
	closedir(d);
	assert_true(c->n - before >= 6);
}

/* ---- mutations ---------------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

/* One mutation of `in` (bit flips, byte changes, cuts, inserts, a splice
 * with `other`), capped at 8 KiB so a mutation run stays short. */
static void mutate(struct corpus *out, const struct input *in,
		   const struct input *other)
{
	size_t cap = 8192, len = in->len < cap ? in->len : cap;
	uint8_t *p = malloc(cap + 64);
	unsigned edits = 1 + rng() % 8;

	assert_non_null(p);
	memcpy(p, in->p, len);
	while (edits--) {
		size_t at = len ? rng() % len : 0;

		switch (rng() % 6) {
		case 0:
			if (len)
				p[at] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 1:
			if (len)
				p[at] = (uint8_t)rng();
			break;
		case 2: /* interesting values: lengths, ids, types */
			if (len)
				p[at] = (const uint8_t[]){0, 1, 0x7f, 0x80,
							  0xff, 0x10, 0x12,
							  0x20}[rng() % 8];
			break;
		case 3: /* cut a range */
			if (len > 1) {
				size_t n = 1 + rng() % (len - at);

				memmove(p + at, p + at + n, len - at - n);
				len -= n;
			}
			break;
		case 4: /* insert a few bytes */
			if (len + 16 <= cap) {
				size_t n = 1 + rng() % 16;

				memmove(p + at + n, p + at, len - at);
				for (size_t i = 0; i < n; i++)
					p[at + i] = (uint8_t)rng();
				len += n;
			}
			break;
		default: /* splice the tail of another input */
			if (other->len) {
				size_t from = rng() % other->len;
				size_t n = other->len - from;

				if (at + n > cap)
					n = cap - at;
				memcpy(p + at, other->p + from, n);
				len = at + n;
			}
			break;
		}
	}
	corpus_add(out, p, len, NULL, 0);
	free(p);
}

/* ---- running ---------------------------------------------------------------------- */

enum target { CODEC, ENGINE, LINK };

static void run_one(enum target t, const struct input *in)
{
	if (t == CODEC)
		assert_int_equal(fuzz_frame_input(in->p, in->len), 0);
	else if (t == ENGINE)
		assert_int_equal(fuzz_engine_input(in->p, in->len), 0);
	else
		assert_int_equal(fuzz_link_input(in->p, in->len), 0);
}

/*
 * True when memory leaked since the start (ASan builds only). A leak stays
 * unreachable, so once one was reported every later check would see it
 * again: only the first one counts.
 */
static bool leaked_first_time(void)
{
#ifdef CORPUS_LSAN
	static bool reported;

	if (reported || !__lsan_do_recoverable_leak_check())
		return false;
	reported = true;
	return true;
#else
	return false;
#endif
}

static void print_input(const struct input *in)
{
	for (size_t k = 0; k < in->len && k < 64; k++)
		print_error("%s%02x", k % 32 ? "" : "\n  ", in->p[k]);
	print_error("%s\n", in->len > 64 ? " ..." : "");
}

/*
 * Runs every input of c through one body. With `each`, leaks are looked for
 * after every input (a leak check costs milliseconds: for short lists), else
 * once at the end. Returns false, after saying where, when memory leaked;
 * the caller frees what it holds and fails. (A broken invariant or a
 * sanitizer report aborts at once.)
 */
static bool run_all(enum target t, const struct corpus *c, const char *what,
		    bool each)
{
	const char *body = t == CODEC ? "codec" : t == ENGINE ? "engine" : "link";

	for (size_t i = 0; i < c->n; i++) {
		run_one(t, &c->v[i]);
		if (each && leaked_first_time()) {
			print_error("%s %zu of %zu (%zu bytes) leaked through "
				    "the %s body; its first bytes:", what, i,
				    c->n, c->v[i].len, body);
			print_input(&c->v[i]);
			return false;
		}
	}
	if (!each && leaked_first_time()) {
		print_error("the %zu %s inputs leaked through the %s body\n",
			    c->n, what, body);
		return false;
	}
	return true;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_vectors_through_the_codec(void **state)
{
	struct corpus c = {0};
	bool ok;

	(void)state;
	load_vectors(&c);
	corpus_add(&c, NULL, 0, NULL, 0);
	ok = run_all(CODEC, &c, "vector", false);
	corpus_free(&c);
	assert_true(ok);
}

static void test_vectors_through_the_engine(void **state)
{
	struct corpus c = {0};
	bool ok;

	(void)state;
	load_raw_engine_inputs(&c);
	ok = run_all(ENGINE, &c, "vector", false);
	corpus_free(&c);
	assert_true(ok);
}

static void test_programs(void **state)
{
	struct corpus c = {0};
	bool ok;

	(void)state;
	load_programs(&c);
	/* Degenerate inputs: nothing, and a configuration byte alone. */
	corpus_add(&c, NULL, 0, NULL, 0);
	for (unsigned cfg = 0; cfg < 256; cfg++) {
		uint8_t one = (uint8_t)cfg;

		corpus_add(&c, &one, 1, NULL, 0);
	}
	ok = run_all(ENGINE, &c, "program", false);
	corpus_free(&c);
	assert_true(ok);
}

static void test_reproducers(void **state)
{
	struct corpus c = {0};
	bool ok;

	(void)state;
	load_reproducers(&c);
	ok = run_all(ENGINE, &c, "reproducer", true) &&
	     run_all(CODEC, &c, "reproducer", true);
	corpus_free(&c);
	assert_true(ok);
}

/* 400 mutations of the whole corpus, from a fixed seed. */
static void test_mutations(void **state)
{
	struct corpus base = {0}, m = {0};
	bool ok;

	(void)state;
	load_raw_engine_inputs(&base);
	load_programs(&base);
	load_reproducers(&base);
	rng_state = 0x6D757872696E67ull; /* "muxring" */
	for (int i = 0; i < 400; i++)
		mutate(&m, &base.v[rng() % base.n], &base.v[rng() % base.n]);
	ok = run_all(CODEC, &m, "mutation", false) &&
	     run_all(ENGINE, &m, "mutation", false);
	corpus_free(&m);
	corpus_free(&base);
	assert_true(ok);
}

/* The link body's inputs, each checked for leaks on its own. */
static void test_link_inputs(void **state)
{
	struct corpus c = {0};
	bool ok;

	(void)state;
	load_link_inputs(&c);
	ok = run_all(LINK, &c, "link input", true);
	corpus_free(&c);
	assert_true(ok);
}

/* 300 mutations of the link inputs, from a fixed seed. */
static void test_link_mutations(void **state)
{
	struct corpus base = {0}, m = {0};
	bool ok;

	(void)state;
	load_link_inputs(&base);
	rng_state = 0x6C696E6B; /* "link" */
	for (int i = 0; i < 300; i++)
		mutate(&m, &base.v[rng() % base.n], &base.v[rng() % base.n]);
	ok = run_all(LINK, &m, "link mutation", false);
	corpus_free(&m);
	corpus_free(&base);
	assert_true(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_through_the_codec),
		cmocka_unit_test(test_vectors_through_the_engine),
		cmocka_unit_test(test_programs),
		cmocka_unit_test(test_reproducers),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_link_inputs),
		cmocka_unit_test(test_link_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
