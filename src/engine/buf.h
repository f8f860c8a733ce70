/*
 * buf.h - reference-counted byte buffers shared by the engine and its driver.
 *
 * A received DATA payload reaches the application as a view into the buffer
 * the bytes arrived in, and a queued write stays in the caller's buffer until
 * the transport has taken it. Both need the buffer to outlive the call that
 * handed it over, so every buffer carries a count of the views and queue
 * entries that point into it, and a release function run when the count
 * drops to zero: the io_uring driver's release puts a receive buffer back in
 * its provided-buffer ring, the heap kind frees itself.
 *
 * Counts are not atomic: a buffer belongs to one loop and one thread.
 */
#ifndef MUXRING_BUF_H
#define MUXRING_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "engine/mem.h"

struct mr_buf {
	uint32_t refs;          /* holders; release runs when it drops to 0 */
	uint8_t *data;          /* start of the memory */
	size_t cap;             /* bytes at data */
	void (*release)(struct mr_buf *buf);
	void *owner;            /* for release: the ring or arena it returns to */
	uint32_t index;         /* for release: the buffer's slot in its owner */
};

static inline void mr_buf_ref(struct mr_buf *buf)
{
	buf->refs++;
}

static inline void mr_buf_unref(struct mr_buf *buf)
{
	if (--buf->refs == 0)
		buf->release(buf);
}

/*
 * Allocates a buffer of `cap` bytes with `mem`, with one reference owned by
 * the caller; it frees itself (with mem) when the last reference goes.
 * Returns NULL when memory is exhausted.
 */
struct mr_buf *mr_buf_alloc(const struct muxring_mem *mem, size_t cap);

/* A buffer of mem holding a copy of `len` bytes at `data`; NULL on ENOMEM. */
struct mr_buf *mr_buf_copy(const struct muxring_mem *mem, const void *data,
			   size_t len);

/* The same with libc's allocator (tests and tools). */
struct mr_buf *mr_buf_new_heap(size_t cap);
struct mr_buf *mr_buf_new_copy(const void *data, size_t len);

#endif
