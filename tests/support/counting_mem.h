/*
 * counting_mem.h - an allocator for muxring_mem that counts what it hands
 * out and fails on demand, for tests of what the library holds and of how
 * it survives a refused allocation.
 */
#ifndef MUXRING_TEST_COUNTING_MEM_H
#define MUXRING_TEST_COUNTING_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "muxring.h"

/* Zero-initialised, it counts and never fails. */
struct counting_mem {
	uint64_t calls;   /* allocations asked for (malloc, calloc, realloc) */
	uint64_t fail_at; /* the call that fails (1-based); 0: none */
	bool failed;      /* it did */
	bool refuse;      /* while set, every allocation fails */
	int64_t live;     /* blocks handed out and not freed */
};

/* Fills *out with this allocator's functions over c; returns out. */
const struct muxring_mem *counting_mem_as_mem(struct counting_mem *c,
					      struct muxring_mem *out);

#endif
