/*
 * mem.h - every allocation of the library goes through a struct muxring_mem.
 *
 * The application may give a loop its own allocator (muxring_loop_opts.mem,
 * in the manner of nghttp2_mem); NULL means libc. The loop hands it to each
 * engine session through struct mr_config, so that the engine, the driver
 * and every buffer they create allocate and free with the same functions.
 * Memory that can outlive its session (a heap buffer behind a view, a
 * stream still referenced) keeps the pointer itself, since it must be freed
 * by the allocator that made it.
 */
#ifndef MUXRING_MEM_H
#define MUXRING_MEM_H

#include <stddef.h>

#include "muxring.h"

/* The libc allocator, the default. */
extern const struct muxring_mem mr_mem_libc;

static inline void *mr_malloc(const struct muxring_mem *mem, size_t size)
{
	return mem->malloc(size, mem->user);
}

static inline void *mr_calloc(const struct muxring_mem *mem, size_t nmemb,
			      size_t size)
{
	return mem->calloc(nmemb, size, mem->user);
}

static inline void *mr_realloc(const struct muxring_mem *mem, void *ptr,
			       size_t size)
{
	return mem->realloc(ptr, size, mem->user);
}

/* NULL is ignored, as with free(3). */
static inline void mr_free(const struct muxring_mem *mem, void *ptr)
{
	if (ptr)
		mem->free(ptr, mem->user);
}

#endif
