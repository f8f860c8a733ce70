/*
 * copy_cache.h - heap blocks for copied writes too big to pack, recycled
 * by size class.
 *
 * A write copied into a fresh malloc'd block of a few hundred KiB costs
 * more than the copy: the allocator maps and unmaps such blocks, and every
 * send then faults in new pages. The cache keeps released blocks on one
 * free list per power-of-two class (32 KiB to 4 MiB), up to a byte cap, so
 * a steady stream of large writes reuses the same hot memory.
 */
#ifndef MUXRING_COPY_CACHE_H
#define MUXRING_COPY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/buf.h"

#define MR_COPY_CLASSES 8u       /* 32 KiB << 0 .. 32 KiB << 7 = 4 MiB */
#define MR_COPY_MIN_SHIFT 15u

struct mr_copy_cache {
	const struct muxring_mem *mem; /* allocates this and the blocks */
	struct mr_buf *free[MR_COPY_CLASSES]; /* released blocks, by class
						 (linked through ->owner
						 while free) */
	size_t cached;           /* bytes on the free lists */
	size_t cap;              /* most bytes kept on them */
	size_t outstanding;      /* blocks handed out, not yet back */
	bool detached;           /* the loop is gone: free what comes back,
				    and the cache with the last block */
};

/* A cache keeping at most `cap` bytes, allocating with mem; NULL on
 * ENOMEM. */
struct mr_copy_cache *mr_copy_cache_new(const struct muxring_mem *mem,
					size_t cap);

/* The loop is going away: frees the free lists now and the cache once the
 * last block handed out comes back. */
void mr_copy_cache_detach(struct mr_copy_cache *c);

/*
 * A buffer holding a copy of `len` bytes at `data`, with one reference for
 * the caller: a recycled block of len's class when there is one, else a
 * new one (blocks above 4 MiB are plain heap buffers, never cached).
 * NULL on ENOMEM.
 */
struct mr_buf *mr_copy_cache_copy(struct mr_copy_cache *c, const void *data,
				  size_t len);

/* The same without the copy: a block of at least len bytes, contents
 * undefined (the TLS filter's plaintext blocks and ciphertext sends). */
struct mr_buf *mr_copy_cache_get(struct mr_copy_cache *c, size_t len);

#endif
