/*
 * buf.c - heap-backed reference-counted buffers.
 *
 * The buffer header and its bytes are one allocation, so a copied write or
 * a payload copied out of a receive ring costs one malloc and one free. The
 * allocator rides in the header's owner field: a buffer may outlive the
 * session that made it (a view kept by the application).
 */
#include "buf.h"

#include <string.h>

static void release_heap(struct mr_buf *buf)
{
	mr_free(buf->owner, buf);
}

struct mr_buf *mr_buf_alloc(const struct muxring_mem *mem, size_t cap)
{
	struct mr_buf *buf;

	if (cap > SIZE_MAX - sizeof(*buf))
		return NULL;
	buf = mr_malloc(mem, sizeof(*buf) + cap);
	if (!buf)
		return NULL;
	*buf = (struct mr_buf){
		.refs = 1,
		.data = (uint8_t *)(buf + 1),
		.cap = cap,
		.release = release_heap,
		.owner = (void *)mem,
	};
	return buf;
}

struct mr_buf *mr_buf_copy(const struct muxring_mem *mem, const void *data,
			   size_t len)
{
	struct mr_buf *buf = mr_buf_alloc(mem, len);

	if (buf && len)
		memcpy(buf->data, data, len);
	return buf;
}

struct mr_buf *mr_buf_new_heap(size_t cap)
{
	return mr_buf_alloc(&mr_mem_libc, cap);
}

struct mr_buf *mr_buf_new_copy(const void *data, size_t len)
{
	return mr_buf_copy(&mr_mem_libc, data, len);
}
