/*
 * cq.c - growth of the completion-entry ring.
 *
 * Doubling copies the live entries into the new ring in order, starting at
 * slot 0; head and tail are rebased so that the free-running arithmetic
 * stays valid.
 */
#include "uring/cq.h"

#include <errno.h>

int mr_cq_init(struct mr_cq *cq, const struct muxring_mem *mem, uint32_t cap)
{
	uint32_t n = 16;

	while (n < cap && n < (1u << 30))
		n <<= 1;
	cq->mem = mem;
	cq->slots = mr_calloc(mem, n, sizeof(*cq->slots));
	if (!cq->slots)
		return -ENOMEM;
	cq->mask = n - 1;
	cq->head = cq->tail = 0;
	return 0;
}

void mr_cq_free(struct mr_cq *cq)
{
	mr_free(cq->mem, cq->slots);
	cq->slots = NULL;
}

int mr_cq_grow(struct mr_cq *cq)
{
	uint32_t cap = cq->mask + 1, count = cq->tail - cq->head, i;
	struct muxring_cqe *slots;

	if (cap >= (1u << 30))
		return -ENOMEM;
	slots = mr_malloc(cq->mem, (size_t)cap * 2 * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (i = 0; i < count; i++)
		slots[i] = cq->slots[(cq->head + i) & cq->mask];
	mr_free(cq->mem, cq->slots);
	cq->slots = slots;
	cq->mask = cap * 2 - 1;
	cq->head = 0;
	cq->tail = count;
	return 0;
}
