/*
 * mem.c - the default allocator: libc's, behind the muxring_mem signature.
 */
#include "engine/mem.h"

#include <stdlib.h>

static void *libc_malloc(size_t size, void *user)
{
	(void)user;
	return malloc(size);
}

static void libc_free(void *ptr, void *user)
{
	(void)user;
	free(ptr);
}

static void *libc_calloc(size_t nmemb, size_t size, void *user)
{
	(void)user;
	return calloc(nmemb, size);
}

static void *libc_realloc(void *ptr, size_t size, void *user)
{
	(void)user;
	return realloc(ptr, size);
}

const struct muxring_mem mr_mem_libc = {
	.user = NULL,
	.malloc = libc_malloc,
	.free = libc_free,
	.calloc = libc_calloc,
	.realloc = libc_realloc,
};
