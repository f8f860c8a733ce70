/*
 * test_fuzz_cut.c - the chunk buffers the engine fuzz body feeds
 * (tests/support/fuzz_cut.c): the cut follows the chunk size and the limit
 * on cuts, every chunk holds its bytes, and, under ASan, a chunk's end is
 * poisoned like a heap block's and the whole chunk once it is released, so
 * a view that outlives its reference is still caught.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fuzz_cut.h"

#if defined(__SANITIZE_ADDRESS__)
#define CUT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUT_ASAN 1
#endif
#endif
#ifdef CUT_ASAN
#include <sanitizer/asan_interface.h>
#endif

static uint8_t source[1000];

static void fill_source(void)
{
	for (size_t i = 0; i < sizeof(source); i++)
		source[i] = (uint8_t)(i * 7 + 3);
}

/* Under ASan: the chunk's bytes addressable, the byte after them not. */
static void assert_live(const struct mr_buf *buf)
{
#ifdef CUT_ASAN
	assert_null(__asan_region_is_poisoned(buf->data, buf->cap));
	assert_true(__asan_address_is_poisoned(buf->data + buf->cap));
	assert_true(__asan_address_is_poisoned(buf->data - 1));
#else
	(void)buf;
#endif
}

/* Under ASan: the released chunk's bytes and header unaddressable. */
static void assert_released(const struct mr_buf *buf, const uint8_t *data,
			    size_t len)
{
#ifdef CUT_ASAN
	for (size_t i = 0; i < len; i++)
		assert_true(__asan_address_is_poisoned(data + i));
	assert_true(__asan_address_is_poisoned(buf));
#else
	(void)buf;
	(void)data;
	(void)len;
#endif
}

static void test_chunk_sizes_and_bytes(void **state)
{
	size_t count, cuts, off = 0;
	struct fz_cut *cut;

	(void)state;
	fill_source();
	cut = fz_cut_new(source, 100, 7, 1000, &count, &cuts);
	assert_int_equal(count, 15);   /* 14 of 7 bytes, then 2 */
	assert_int_equal(cuts, 14);
	for (size_t i = 0; i < count; i++) {
		struct mr_buf *buf = fz_cut_chunk(cut, i);

		assert_int_equal(buf->cap, i < 14 ? 7 : 2);
		assert_int_equal(buf->refs, 1);
		assert_memory_equal(buf->data, source + off, buf->cap);
		assert_int_equal((uintptr_t)buf->data % 8, 0);
		assert_live(buf);
		off += buf->cap;
	}
	assert_int_equal(off, 100);
	for (size_t i = 0; i < count; i++)
		mr_buf_unref(fz_cut_chunk(cut, i));
}

static void test_cut_limit_and_whole(void **state)
{
	size_t count, cuts;
	struct fz_cut *cut;
	struct mr_buf *last;

	(void)state;
	fill_source();
	/* Three chunks of one byte, then the other 997 in one. */
	cut = fz_cut_new(source, sizeof(source), 1, 3, &count, &cuts);
	assert_int_equal(count, 4);
	assert_int_equal(cuts, 3);
	last = fz_cut_chunk(cut, 3);
	assert_int_equal(last->cap, 997);
	assert_memory_equal(last->data, source + 3, 997);
	for (size_t i = 0; i < count; i++)
		mr_buf_unref(fz_cut_chunk(cut, i));

	/* Chunk 0, or a chunk no smaller than the delivery: one piece. */
	cut = fz_cut_new(source, 50, 0, 100, &count, &cuts);
	assert_int_equal(count, 1);
	assert_int_equal(cuts, 0);
	assert_int_equal(fz_cut_chunk(cut, 0)->cap, 50);
	mr_buf_unref(fz_cut_chunk(cut, 0));
	cut = fz_cut_new(source, 50, 50, 100, &count, &cuts);
	assert_int_equal(count, 1);
	mr_buf_unref(fz_cut_chunk(cut, 0));
}

/* A chunk released while others live is poisoned at once; a reference
 * taken by a view keeps it addressable until that one goes too. */
static void test_release_poisons(void **state)
{
	size_t count, cuts;
	struct fz_cut *cut;
	struct mr_buf *a, *b, *c;
	uint8_t *a_data, *b_data;

	(void)state;
	fill_source();
	cut = fz_cut_new(source, 30, 10, 100, &count, &cuts);
	assert_int_equal(count, 3);
	a = fz_cut_chunk(cut, 0);
	b = fz_cut_chunk(cut, 1);
	c = fz_cut_chunk(cut, 2);
	a_data = a->data;
	b_data = b->data;
	mr_buf_ref(b);                 /* a view into the second chunk */
	mr_buf_unref(a);
	assert_released(a, a_data, 10);
	mr_buf_unref(b);
	assert_live(b);
	assert_memory_equal(b->data, source + 10, 10);
	assert_live(c);
	mr_buf_unref(c);
	mr_buf_unref(b);               /* the last one frees the cut */
	assert_released(b, b_data, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunk_sizes_and_bytes),
		cmocka_unit_test(test_cut_limit_and_whole),
		cmocka_unit_test(test_release_poisons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
