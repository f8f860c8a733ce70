/*
 * copy_cache.c - size-class free lists of heap blocks for large copies.
 *
 * A block is one allocation: its struct mr_buf header, then the bytes (the
 * class size). While free, the header's owner field links the list; while
 * handed out, it points back at the cache for the release callback.
 */
#include "uring/copy_cache.h"

#include <string.h>

struct mr_copy_cache *mr_copy_cache_new(const struct muxring_mem *mem,
					size_t cap)
{
	struct mr_copy_cache *c = mr_calloc(mem, 1, sizeof(*c));

	if (c) {
		c->mem = mem;
		c->cap = cap;
	}
	return c;
}

static void free_lists(struct mr_copy_cache *c)
{
	unsigned k;

	for (k = 0; k < MR_COPY_CLASSES; k++) {
		while (c->free[k]) {
			struct mr_buf *b = c->free[k];

			c->free[k] = b->owner;
			mr_free(c->mem, b);
		}
	}
	c->cached = 0;
}

void mr_copy_cache_detach(struct mr_copy_cache *c)
{
	if (!c)
		return;
	free_lists(c);
	c->detached = true;
	if (!c->outstanding)
		mr_free(c->mem, c);
}

static void cache_release(struct mr_buf *b)
{
	struct mr_copy_cache *c = b->owner;
	unsigned k = b->index;

	c->outstanding--;
	if (c->detached || c->cached + b->cap > c->cap) {
		mr_free(c->mem, b);
		if (c->detached && !c->outstanding)
			mr_free(c->mem, c);
		return;
	}
	b->owner = c->free[k];
	c->free[k] = b;
	c->cached += b->cap;
}

static unsigned class_of(size_t len)
{
	unsigned k = 0;

	while (k < MR_COPY_CLASSES && ((size_t)1 << (MR_COPY_MIN_SHIFT + k)) < len)
		k++;
	return k; /* MR_COPY_CLASSES: too big to cache */
}

struct mr_buf *mr_copy_cache_get(struct mr_copy_cache *c, size_t len)
{
	unsigned k = class_of(len);
	size_t size;
	struct mr_buf *b;

	if (k == MR_COPY_CLASSES)
		return mr_buf_alloc(c->mem, len);
	size = (size_t)1 << (MR_COPY_MIN_SHIFT + k);
	b = c->free[k];
	if (b) {
		c->free[k] = b->owner;
		c->cached -= size;
	} else {
		b = mr_malloc(c->mem, sizeof(*b) + size);
		if (!b)
			return NULL;
	}
	*b = (struct mr_buf){
		.refs = 1,
		.data = (uint8_t *)(b + 1),
		.cap = size,
		.release = cache_release,
		.owner = c,
		.index = k,
	};
	c->outstanding++;
	return b;
}

struct mr_buf *mr_copy_cache_copy(struct mr_copy_cache *c, const void *data,
				  size_t len)
{
	struct mr_buf *b = mr_copy_cache_get(c, len);

	if (b && len)
		memcpy(b->data, data, len);
	return b;
}
