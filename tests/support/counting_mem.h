/*
 * counting_mem.h - an allocator for muxring_mem that counts what it hands
 * out and can refuse, for tests that check what the library holds.
 */
#ifndef MUXRING_TEST_COUNTING_MEM_H
#define MUXRING_TEST_COUNTING_MEM_H

#include <stdbool.h>

#include "muxring.h"

struct counting_mem {
	struct muxring_mem mem; /* pass &this->mem to the library */
	long live;              /* blocks handed out and not freed */
	unsigned long mallocs;  /* blocks handed out in all */
	bool refuse;            /* while set, every request gets NULL */
};

/* Zeroes the counts and points mem's functions at this allocator. */
void counting_mem_init(struct counting_mem *c);

#endif
