/*
 * counting_mem.c - the allocator of counting_mem.h, over libc.
 */
#include "counting_mem.h"

#include <stdlib.h>

static bool should_fail(struct counting_mem *c)
{
	if (++c->calls == c->fail_at)
		c->failed = true;
	return c->refuse || c->calls == c->fail_at;
}

static void *cm_malloc(size_t size, void *user)
{
	struct counting_mem *c = user;
	void *p;

	if (should_fail(c))
		return NULL;
	p = malloc(size);
	if (p)
		c->live++;
	return p;
}

static void cm_free(void *ptr, void *user)
{
	struct counting_mem *c = user;

	if (ptr)
		c->live--;
	free(ptr);
}

static void *cm_calloc(size_t nmemb, size_t size, void *user)
{
	struct counting_mem *c = user;
	void *p;

	if (should_fail(c))
		return NULL;
	p = calloc(nmemb, size);
	if (p)
		c->live++;
	return p;
}

static void *cm_realloc(void *ptr, size_t size, void *user)
{
	struct counting_mem *c = user;
	void *p;

	if (should_fail(c))
		return NULL;
	p = realloc(ptr, size);
	if (p && !ptr)
		c->live++;
	return p;
}

const struct muxring_mem *counting_mem_as_mem(struct counting_mem *c,
					      struct muxring_mem *out)
{
	*out = (struct muxring_mem){
		.user = c,
		.malloc = cm_malloc,
		.free = cm_free,
		.calloc = cm_calloc,
		.realloc = cm_realloc,
	};
	return out;
}
