/*
 * send_arena.c - registered send buffers: a free stack over one mapping.
 *
 * get and put are O(1) (a stack of indices); finding the buffer a pointer
 * lies in is a division, so the application passes plain pointers.
 */
#include "uring/send_arena.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/uio.h>

static void arena_free(struct mr_send_arena *a)
{
	if (a->mem)
		munmap(a->mem, a->mem_bytes);
	mr_free(a->alloc, a->bufs);
	mr_free(a->alloc, a->free_stack);
	mr_free(a->alloc, a);
}

static void arena_release(struct mr_buf *buf)
{
	struct mr_send_arena *a = buf->owner;

	a->free_stack[a->nfree++] = buf->index;
	if (a->detached && a->nfree == a->nbufs)
		arena_free(a);
}

int mr_send_arena_create(struct io_uring *ring,
			 const struct muxring_mem *alloc, size_t total,
			 uint32_t buf_size, struct mr_send_arena **out)
{
	struct mr_send_arena *a;
	struct iovec iov;
	size_t nbufs;
	uint32_t i;
	void *mem;

	if (!buf_size || total < buf_size)
		return -EINVAL;
	nbufs = total / buf_size;
	if (nbufs > UINT32_MAX)
		return -EINVAL;
	a = mr_calloc(alloc, 1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->alloc = alloc;
	a->nbufs = (uint32_t)nbufs;
	a->buf_size = buf_size;
	a->mem_bytes = nbufs * buf_size;
	mem = mmap(NULL, a->mem_bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	a->mem = mem == MAP_FAILED ? NULL : mem;
	a->bufs = mr_calloc(alloc, nbufs, sizeof(*a->bufs));
	a->free_stack = mr_calloc(alloc, nbufs, sizeof(*a->free_stack));
	if (!a->mem || !a->bufs || !a->free_stack) {
		arena_free(a);
		return -ENOMEM;
	}
	for (i = 0; i < a->nbufs; i++) {
		a->bufs[i] = (struct mr_buf){
			.data = a->mem + (size_t)i * buf_size,
			.cap = buf_size,
			.release = arena_release,
			.owner = a,
			.index = i,
		};
		/* Lowest index on top: the first buffers handed out are the
		 * first pages, which keeps the working set small. */
		a->free_stack[i] = a->nbufs - 1 - i;
	}
	a->nfree = a->nbufs;
	iov.iov_base = a->mem;
	iov.iov_len = a->mem_bytes;
	a->registered = io_uring_register_buffers(ring, &iov, 1) == 0;
	*out = a;
	return 0;
}

void mr_send_arena_detach(struct mr_send_arena *a)
{
	if (!a)
		return;
	/* Registered buffers go away with the ring itself. */
	a->detached = true;
	if (a->nfree == a->nbufs)
		arena_free(a);
}

struct mr_buf *mr_send_arena_get(struct mr_send_arena *a, size_t len)
{
	struct mr_buf *buf;

	if (len > a->buf_size) {
		errno = EMSGSIZE;
		return NULL;
	}
	if (!a->nfree) {
		errno = ENOBUFS;
		return NULL;
	}
	buf = &a->bufs[a->free_stack[--a->nfree]];
	buf->refs = 1;
	return buf;
}

struct mr_buf *mr_send_arena_lookup(struct mr_send_arena *a, const void *p)
{
	uintptr_t b = (uintptr_t)p, base = (uintptr_t)a->mem;
	size_t idx;

	if (b < base || b - base >= a->mem_bytes)
		return NULL;
	idx = (size_t)(b - base) / a->buf_size;
	if (!a->bufs[idx].refs)
		return NULL;
	return &a->bufs[idx];
}
