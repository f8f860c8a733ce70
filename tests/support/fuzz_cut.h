/*
 * fuzz_cut.h - one delivery of wire bytes, cut into chunks that are each a
 * buffer of their own, for the fuzz bodies to feed to mr_session_recv.
 *
 * Every chunk must behave as a heap block of its own would: once its last
 * reference is gone, touching its bytes (a view that outlived its
 * reference) or its header (a second unref) is an error ASan reports. A
 * malloc per chunk did that, but cutting a delivery into thousands of
 * chunks then spent more time in ASan's allocator than in the engine. So
 * all chunks of a delivery share one allocation: each chunk's bytes start
 * on an 8-byte boundary behind a poisoned redzone, the unused end of its
 * last 8 bytes is poisoned too (a read past its end is caught, as in a
 * heap block), and releasing a chunk poisons its bytes and its header.
 * The allocation is freed with its last chunk.
 */
#ifndef MUXRING_TEST_FUZZ_CUT_H
#define MUXRING_TEST_FUZZ_CUT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/buf.h"

struct fz_cut;

/*
 * Copies the n bytes at p (n > 0) into chunks of `chunk` bytes (0: one
 * chunk), but cuts at most `max_cuts` chunks off: what is left after that
 * is one last chunk. *count gets the number of chunks, *cuts the number cut
 * off (at most max_cuts). The caller owns one reference on every chunk
 * (fz_cut_chunk) and must give each back; the last one frees everything.
 * Never NULL (aborts when memory is exhausted).
 */
struct fz_cut *fz_cut_new(const uint8_t *p, size_t n, size_t chunk,
			  size_t max_cuts, size_t *count, size_t *cuts);

/* Chunk i (below *count) of a cut whose chunk i the caller still holds. */
struct mr_buf *fz_cut_chunk(struct fz_cut *cut, size_t i);

#endif
