/*
 * bufring.c - the provided-buffer ring and its arena.
 *
 * The arena and the ring are two anonymous mappings made once per loop;
 * buffers never move and are never allocated again. A buffer's mr_buf
 * header lives in a parallel array, so taking a buffer from a completion is
 * an index, and giving it back is one ring slot write (published in batch).
 */
#include "uring/bufring.h"

#include <errno.h>
#include <sys/mman.h>

static void bufring_free(struct mr_bufring *br)
{
	if (br->br)
		munmap(br->br, br->br_bytes);
	if (br->arena)
		munmap(br->arena, br->arena_bytes);
	mr_free(br->mem, br->bufs);
	mr_free(br->mem, br->slot_of);
	mr_free(br->mem, br);
}

/* Writes buf into the ring slot `offset` past the published tail (the
 * ring's tail counter is 16 bits, so slots are named modulo 65536). */
static void put_in_slot(struct mr_bufring *br, struct mr_buf *buf,
			uint32_t offset)
{
	br->slot_of[buf->index] = (uint16_t)(br->br->tail + offset);
	io_uring_buf_ring_add(br->br, buf->data, br->buf_size,
			      (unsigned short)buf->index,
			      io_uring_buf_ring_mask(br->nbufs), (int)offset);
}

/* Release callback of every ring buffer: its last reference went. */
static void bufring_release(struct mr_buf *buf)
{
	struct mr_bufring *br = buf->owner;

	br->held--;
	if (br->detached) {
		if (br->held == 0)
			bufring_free(br);
		return;
	}
	put_in_slot(br, buf, br->pending);
	br->pending++;
}

/* populate: fault every page in now. The kernel writes received bytes
 * into the arena; left lazy, the first pass through the ring takes a page
 * fault per 4 KiB inside the receive path, which on a busy connection
 * stalls it for milliseconds (muxbench heartbeat: the first beats under
 * load came back after 8-10 ms instead of 0.4). */
static void *map_anon(size_t bytes, bool populate)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS |
			       (populate ? MAP_POPULATE : 0),
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int mr_bufring_create(struct io_uring *ring, const struct muxring_mem *mem,
		      uint16_t bgid, uint32_t nbufs,
		      uint32_t buf_size, uint32_t low_water,
		      struct mr_bufring **out)
{
	struct io_uring_buf_reg reg = {0};
	struct mr_bufring *br;
	uint32_t i;
	int err;

	if (!nbufs || nbufs > 32768 || (nbufs & (nbufs - 1)) || !buf_size ||
	    low_water >= nbufs)
		return -EINVAL;
	br = mr_calloc(mem, 1, sizeof(*br));
	if (!br)
		return -ENOMEM;
	br->mem = mem;
	br->nbufs = nbufs;
	br->buf_size = buf_size;
	br->low_water = low_water;
	br->bgid = bgid;
	br->br_bytes = (size_t)nbufs * sizeof(struct io_uring_buf);
	br->arena_bytes = (size_t)nbufs * buf_size;
	br->br = map_anon(br->br_bytes, false);
	br->arena = map_anon(br->arena_bytes, true);
	br->bufs = mr_calloc(mem, nbufs, sizeof(*br->bufs));
	br->slot_of = mr_calloc(mem, nbufs, sizeof(*br->slot_of));
	if (!br->br || !br->arena || !br->bufs || !br->slot_of) {
		bufring_free(br);
		return -ENOMEM;
	}
	io_uring_buf_ring_init(br->br);
	for (i = 0; i < nbufs; i++) {
		br->bufs[i] = (struct mr_buf){
			.data = br->arena + (size_t)i * buf_size,
			.cap = buf_size,
			.release = bufring_release,
			.owner = br,
			.index = i,
		};
		put_in_slot(br, &br->bufs[i], i);
	}
	io_uring_buf_ring_advance(br->br, (int)nbufs);

	reg.ring_addr = (uint64_t)(uintptr_t)br->br;
	reg.ring_entries = nbufs;
	reg.bgid = bgid;
	err = io_uring_register_buf_ring(ring, &reg, 0);
	if (err) {
		bufring_free(br);
		return err;
	}
	br->ring = ring;
	*out = br;
	return 0;
}

void mr_bufring_detach(struct mr_bufring *br)
{
	if (!br)
		return;
	if (br->ring)
		io_uring_unregister_buf_ring(br->ring, br->bgid);
	br->ring = NULL;
	br->detached = true;
	if (br->held == 0)
		bufring_free(br);
}

struct mr_buf *mr_bufring_take(struct mr_bufring *br, uint32_t bid)
{
	struct mr_buf *buf;

	if (bid >= br->nbufs)
		return NULL;
	buf = &br->bufs[bid];
	if (buf->refs)
		return NULL;
	buf->refs = 1;
	br->held++;
	if (br->held > br->held_max)
		br->held_max = br->held;
	return buf;
}

uint32_t mr_bufring_flush(struct mr_bufring *br)
{
	uint32_t n = br->pending;

	if (n) {
		io_uring_buf_ring_advance(br->br, (int)n);
		br->pending = 0;
	}
	return n;
}
