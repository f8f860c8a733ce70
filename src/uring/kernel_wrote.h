/*
 * kernel_wrote.h - telling memcheck about bytes the kernel wrote.
 *
 * A receive that io_uring completes fills user memory without a system
 * call valgrind can see, so memcheck keeps whatever it knew of that memory
 * before: a heap block reused from the copy cache still looks
 * uninitialised after the kernel filled it. The valgrind build (`make
 * valgrind`) defines MUXRING_MEMCHECK and marks such bytes defined; in every
 * other build this is nothing. Ring buffers need no mark: they are an
 * anonymous mapping, defined from the start and written by the kernel only.
 */
#ifndef MUXRING_KERNEL_WROTE_H
#define MUXRING_KERNEL_WROTE_H

#ifdef MUXRING_MEMCHECK
#include <valgrind/memcheck.h>
#define mr_kernel_wrote(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#else
#define mr_kernel_wrote(p, n) ((void)(p), (void)(n))
#endif

#endif
