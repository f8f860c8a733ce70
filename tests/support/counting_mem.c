/*
 * counting_mem.c - the counting allocator of counting_mem.h, over libc.
 */
#include "counting_mem.h"

#include <stdlib.h>

static void *cm_malloc(size_t size, void *user)
{
	struct counting_mem *c = user;
	void *p;

	if (c->refuse || !(p = malloc(size)))
		return NULL;
	c->live++;
	c->mallocs++;
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

	if (c->refuse || !(p = calloc(nmemb, size)))
		return NULL;
	c->live++;
	c->mallocs++;
	return p;
}

static void *cm_realloc(void *ptr, size_t size, void *user)
{
	struct counting_mem *c = user;

	if (!ptr)
		return cm_malloc(size, user);
	if (!size) {
		cm_free(ptr, user);
		return NULL;
	}
	return c->refuse ? NULL : realloc(ptr, size);
}

void counting_mem_init(struct counting_mem *c)
{
	*c = (struct counting_mem){
		.mem = {.user = c,
			.malloc = cm_malloc,
			.free = cm_free,
			.calloc = cm_calloc,
			.realloc = cm_realloc},
	};
}
