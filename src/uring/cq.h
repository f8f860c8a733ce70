/*
 * cq.h - the loop's queue of completion entries for the application.
 *
 * A power-of-two ring of struct muxring_cqe with free-running head and tail
 * (tail - head entries are ready). It grows by doubling when full and never
 * shrinks, so after warm-up pushing an entry is a slot write. Growth only
 * happens while the loop gathers entries (inside muxring_submit_and_wait),
 * never while the application holds pointers from a peek it is working
 * through between two such calls.
 */
#ifndef MUXRING_CQ_H
#define MUXRING_CQ_H

#include <stdint.h>
#include <string.h>

#include "engine/mem.h"
#include "muxring.h"

struct mr_cq {
	const struct muxring_mem *mem; /* allocates slots */
	struct muxring_cqe *slots;
	uint32_t mask;  /* capacity - 1 */
	uint32_t head;  /* oldest entry not advanced past */
	uint32_t tail;  /* where the next entry goes */
};

/* Returns 0 or -ENOMEM; cap is rounded up to a power of two. */
int mr_cq_init(struct mr_cq *cq, const struct muxring_mem *mem, uint32_t cap);
void mr_cq_free(struct mr_cq *cq);

/* Makes room for one more entry. Returns 0 or -ENOMEM. */
int mr_cq_grow(struct mr_cq *cq);

static inline uint32_t mr_cq_ready(const struct mr_cq *cq)
{
	return cq->tail - cq->head;
}

/* The i-th oldest ready entry. */
static inline struct muxring_cqe *mr_cq_at(const struct mr_cq *cq, uint32_t i)
{
	return &cq->slots[(cq->head + i) & cq->mask];
}

/* A zeroed slot at the tail, or NULL when full and growing failed. */
static inline struct muxring_cqe *mr_cq_push(struct mr_cq *cq)
{
	struct muxring_cqe *cqe;

	if (cq->tail - cq->head > cq->mask && mr_cq_grow(cq))
		return NULL;
	cqe = &cq->slots[cq->tail++ & cq->mask];
	memset(cqe, 0, sizeof(*cqe));
	return cqe;
}

/* True when a push would succeed (room, or growth possible). */
static inline int mr_cq_reserve(struct mr_cq *cq)
{
	if (cq->tail - cq->head > cq->mask)
		return mr_cq_grow(cq);
	return 0;
}

#endif
