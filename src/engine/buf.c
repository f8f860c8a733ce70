/*
 * buf.c - heap-backed reference-counted buffers.
 *
 * The buffer header and its bytes are one allocation, so a copied write or
 * a payload copied out of a receive ring costs one malloc and one free.
 */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

static void release_heap(struct mr_buf *buf)
{
	free(buf);
}

struct mr_buf *mr_buf_new_heap(size_t cap)
{
	struct mr_buf *buf;

	if (cap > SIZE_MAX - sizeof(*buf))
		return NULL;
	buf = malloc(sizeof(*buf) + cap);
	if (!buf)
		return NULL;
	*buf = (struct mr_buf){
		.refs = 1,
		.data = (uint8_t *)(buf + 1),
		.cap = cap,
		.release = release_heap,
	};
	return buf;
}

struct mr_buf *mr_buf_new_copy(const void *data, size_t len)
{
	struct mr_buf *buf = mr_buf_new_heap(len);

	if (buf && len)
		memcpy(buf->data, data, len);
	return buf;
}
