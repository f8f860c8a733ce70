/*
 * send_arena.h - the loop's registered send arena, for zero-copy writes.
 *
 * One mapping cut into equal buffers. The application takes a buffer
 * (muxring_buf_get), fills it and hands it to a stream write: the frames'
 * iovecs then point straight into it and no byte is copied in user space.
 * Each buffer is an mr_buf whose release puts it back on the free stack, so
 * it returns by itself once the engine has seen the kernel take its last
 * byte. The arena is registered with the ring (IORING_REGISTER_BUFFERS)
 * when the kernel allows, so its pages stay pinned for the kernel.
 * (Copied writes never use it: small ones are packed per stream by the
 * engine, large ones go to the copy cache.)
 */
#ifndef MUXRING_SEND_ARENA_H
#define MUXRING_SEND_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <liburing.h>

#include "engine/buf.h"

struct mr_send_arena {
	const struct muxring_mem *alloc; /* allocates this, bufs, free_stack */
	uint8_t *mem;            /* nbufs * buf_size bytes (mmap'd) */
	size_t mem_bytes;
	struct mr_buf *bufs;     /* one header per buffer */
	uint32_t *free_stack;    /* indices of free buffers */
	uint32_t nfree;          /* entries on free_stack */
	uint32_t nbufs;
	uint32_t buf_size;
	bool registered;         /* IORING_REGISTER_BUFFERS succeeded */
	bool detached;           /* the loop is gone: free when all are back */
};

/*
 * Maps `total` bytes (rounded down to whole buffers, at least one) cut into
 * buffers of buf_size, and tries to register them with ring (failure to
 * register, e.g. RLIMIT_MEMLOCK, is not an error: registered says).
 * Returns 0, -EINVAL or -ENOMEM.
 */
int mr_send_arena_create(struct io_uring *ring,
			 const struct muxring_mem *alloc, size_t total,
			 uint32_t buf_size, struct mr_send_arena **out);

/* The loop is going away: frees now, or when the last buffer returns. */
void mr_send_arena_detach(struct mr_send_arena *a);

/* A free buffer with one reference (the caller's), or NULL (errno set:
 * EMSGSIZE when len > buf_size, ENOBUFS when none is free). */
struct mr_buf *mr_send_arena_get(struct mr_send_arena *a, size_t len);

/* The buffer that `p` lies in, or NULL when p is not in the arena or its
 * buffer is not taken. */
struct mr_buf *mr_send_arena_lookup(struct mr_send_arena *a, const void *p);

#endif
