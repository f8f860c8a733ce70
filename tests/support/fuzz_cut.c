/*
 * fuzz_cut.c - a delivery cut into chunk buffers sharing one allocation
 * (fuzz_cut.h).
 *
 * Layout: the header with one struct mr_buf per chunk, then for each chunk
 * a redzone and the chunk's bytes rounded up to 8, then a last redzone.
 * ASan's shadow marks memory 8 bytes at a time (the first k bytes of an
 * 8-byte granule can be addressable, the rest not), which is why every
 * chunk starts a granule: its end can then be poisoned exactly.
 */
#include "fuzz_cut.h"
#include "fuzz_input.h"

#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#define FZ_CUT_REDZONE 16u

struct fz_cut {
	size_t live;            /* chunks still referenced */
	size_t count;
	struct mr_buf chunk[];  /* their bytes follow the array */
};

static size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* The length of the next chunk when `left` bytes remain and `cuts`
 * chunks were cut off so far. */
static size_t next_len(size_t left, size_t chunk, size_t cuts,
		       size_t max_cuts)
{
	return chunk && chunk < left && cuts < max_cuts ? chunk : left;
}

static void release_chunk(struct mr_buf *buf)
{
	struct fz_cut *cut = buf->owner;

	ASAN_POISON_MEMORY_REGION(buf->data, round8(buf->cap));
	ASAN_POISON_MEMORY_REGION(buf, sizeof(*buf));
	if (--cut->live == 0)
		free(cut);
}

struct fz_cut *fz_cut_new(const uint8_t *p, size_t n, size_t chunk,
			  size_t max_cuts, size_t *count, size_t *cuts)
{
	size_t k = 0, cut_off = 0, bytes = FZ_CUT_REDZONE, len;
	struct fz_cut *cut;
	uint8_t *at;

	for (size_t off = 0; off < n; off += len, k++) {
		len = next_len(n - off, chunk, cut_off, max_cuts);
		cut_off += len < n - off;
		bytes += round8(len) + FZ_CUT_REDZONE;
	}
	cut = fz_realloc(NULL, sizeof(*cut) + k * sizeof(cut->chunk[0]) +
				       bytes);
	cut->live = cut->count = k;
	at = (uint8_t *)&cut->chunk[k];
	ASAN_POISON_MEMORY_REGION(at, FZ_CUT_REDZONE);
	at += FZ_CUT_REDZONE;
	cut_off = 0;
	for (size_t i = 0, off = 0; i < k; off += len, i++) {
		len = next_len(n - off, chunk, cut_off, max_cuts);
		cut_off += len < n - off;
		memcpy(at, p + off, len);
		cut->chunk[i] = (struct mr_buf){
			.refs = 1, .data = at, .cap = len,
			.release = release_chunk, .owner = cut,
		};
		ASAN_POISON_MEMORY_REGION(at + len, round8(len) - len +
							FZ_CUT_REDZONE);
		at += round8(len) + FZ_CUT_REDZONE;
	}
	*count = k;
	*cuts = cut_off;
	return cut;
}

struct mr_buf *fz_cut_chunk(struct fz_cut *cut, size_t i)
{
	return &cut->chunk[i];
}
