/*
 * bufring.h - the loop's provided-buffer ring: receive buffers the kernel
 * picks from, carved from one arena.
 *
 * Every session of a loop receives into the same ring (one buffer group).
 * A buffer leaves the ring when a receive completion names it; it becomes
 * an mr_buf whose references are the driver's (while the engine parses it)
 * and the application's views. When the last one goes, the buffer is put
 * back at the ring's tail (published to the kernel by mr_bufring_flush()
 * before the next io_uring_enter).
 *
 * Memory bound: "held" counts buffers out of the ring. The driver asks
 * mr_bufring_low() before handing a buffer to the engine; when fewer than
 * low_water buffers would be left in the ring it passes MR_RECV_COPY, so
 * payloads are copied out and the buffer returns at once. Views can thus
 * never pin more than nbufs - low_water buffers, and the ring never runs dry
 * because an application holds data.
 */
#ifndef MUXRING_BUFRING_H
#define MUXRING_BUFRING_H

#include <stdbool.h>
#include <stdint.h>

#include <liburing.h>

#include "engine/buf.h"

struct mr_bufring {
	const struct muxring_mem *mem; /* allocates this and bufs */
	struct io_uring *ring;       /* registered with; NULL once detached */
	struct io_uring_buf_ring *br; /* the shared ring (mmap'd, page aligned) */
	size_t br_bytes;              /* its mapping size */
	uint8_t *arena;               /* nbufs * buf_size bytes (mmap'd) */
	size_t arena_bytes;
	struct mr_buf *bufs;          /* one header per buffer, index = bid */
	uint16_t *slot_of;            /* ring slot each bid was last put in */
	uint32_t nbufs;               /* power of two, <= 32768 */
	uint32_t buf_size;            /* bytes per buffer */
	uint32_t low_water;           /* copy payloads below this many free */
	uint16_t bgid;                /* buffer group id */
	uint32_t held;                /* buffers out of the ring now */
	uint32_t held_max;            /* high-water mark of held */
	uint32_t pending;             /* put back, not yet published */
	bool detached;                /* the loop is gone: free when held==0 */
};

/*
 * Allocates the arena and the ring, fills the ring with every buffer and
 * registers it as buffer group bgid. Returns 0 or -ENOMEM, -EINVAL, or
 * the error of IORING_REGISTER_PBUF_RING (-EINVAL on kernels before 5.19).
 */
int mr_bufring_create(struct io_uring *ring, const struct muxring_mem *mem,
		      uint16_t bgid, uint32_t nbufs,
		      uint32_t buf_size, uint32_t low_water,
		      struct mr_bufring **out);

/*
 * The loop is going away: unregisters the ring and frees everything now,
 * or, when views still hold buffers, once the last of them is released.
 */
void mr_bufring_detach(struct mr_bufring *br);

/*
 * Takes buffer `bid` that the kernel filled: it leaves the ring with one
 * reference, the caller's. Returns NULL for an id out of range or a buffer
 * not in the ring (a kernel or driver bug, never trusted blindly).
 */
struct mr_buf *mr_bufring_take(struct mr_bufring *br, uint32_t bid);

/*
 * A receive bundle fills buffers of consecutive ring slots and names only
 * the first: the buffer in the slot after `bid`'s. Valid while `bid` is
 * taken (a buffer put back moves to another slot).
 */
static inline uint32_t mr_bufring_next_bid(const struct mr_bufring *br,
					   uint32_t bid)
{
	uint16_t slot = (uint16_t)(br->slot_of[bid] + 1);

	return br->br->bufs[slot & io_uring_buf_ring_mask(br->nbufs)].bid;
}

/* True when the ring holds fewer than low_water buffers: payloads should be
 * copied so that the buffer just taken returns at once. */
static inline bool mr_bufring_low(const struct mr_bufring *br)
{
	return br->nbufs - br->held < br->low_water;
}

/* Buffers the kernel can fill now (after the next flush). */
static inline uint32_t mr_bufring_available(const struct mr_bufring *br)
{
	return br->nbufs - br->held;
}

/* Publishes the buffers put back since the last call; returns how many. */
uint32_t mr_bufring_flush(struct mr_bufring *br);

#endif
