/*
 * fuzz_pattern.c - the stream contents of the fuzz bodies (fuzz_pattern.h).
 *
 * One table of a period plus FZ_PATTERN_SPAN bytes, filled once from a
 * xorshift generator: any run of up to FZ_PATTERN_SPAN bytes starting
 * inside the first period is contiguous in it, so filling and checking are
 * a memcpy or a memcmp, and a large write can point straight into it.
 */
#include "fuzz_pattern.h"

#include <stdlib.h>
#include <string.h>

#define FZ_PATTERN_PERIOD 65521u

static uint8_t pattern_table[FZ_PATTERN_PERIOD + FZ_PATTERN_SPAN];
static bool pattern_ready;

static void pattern_init(void)
{
	uint32_t x = 0x2545F491u;

	for (size_t i = 0; i < FZ_PATTERN_PERIOD; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		pattern_table[i] = (uint8_t)(x >> 24);
	}
	for (size_t i = FZ_PATTERN_PERIOD; i < sizeof(pattern_table); i++)
		pattern_table[i] = pattern_table[i - FZ_PATTERN_PERIOD];
	pattern_ready = true;
}

/* Where byte `off` of stream `id` sits in the first half of the table. */
static const uint8_t *pattern_at(uint32_t id, uint64_t off)
{
	if (!pattern_ready)
		pattern_init();
	return pattern_table +
	       (off + (uint64_t)id * 7919u) % FZ_PATTERN_PERIOD;
}

void fz_pattern_fill(uint8_t *dst, uint32_t id, uint64_t off, size_t len)
{
	while (len) {
		size_t n = len < FZ_PATTERN_SPAN ? len : FZ_PATTERN_SPAN;

		memcpy(dst, pattern_at(id, off), n);
		dst += n;
		off += n;
		len -= n;
	}
}

bool fz_pattern_matches(const uint8_t *p, uint32_t id, uint64_t off,
			size_t len)
{
	while (len) {
		size_t n = len < FZ_PATTERN_SPAN ? len : FZ_PATTERN_SPAN;

		if (memcmp(p, pattern_at(id, off), n))
			return false;
		p += n;
		off += n;
		len -= n;
	}
	return true;
}

static void release_pattern_buf(struct mr_buf *buf)
{
	free(buf);
}

struct mr_buf *fz_pattern_buf(uint32_t id, uint64_t off, size_t len,
			      const uint8_t **data)
{
	struct mr_buf *buf;

	if (len > FZ_PATTERN_SPAN)
		return NULL;
	*data = pattern_at(id, off);
	buf = malloc(sizeof(*buf));
	if (!buf)
		return NULL;
	*buf = (struct mr_buf){
		.refs = 1,
		.data = pattern_table,
		.cap = sizeof(pattern_table),
		.release = release_pattern_buf,
	};
	return buf;
}
