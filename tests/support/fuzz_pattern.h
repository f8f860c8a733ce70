/*
 * fuzz_pattern.h - the bytes the fuzz bodies write on streams.
 *
 * Byte `off` of stream `id` is a fixed function of both, so a receiver can
 * check what it got without keeping a copy of what was sent. The function
 * is a table lookup with a period of 65521 bytes (a prime, so no frame or
 * window size lines up with it) and a start that depends on the id: bytes
 * from another stream, or shifted by any amount that is not a multiple of
 * the period, do not match. Filling and checking are memcpy and memcmp
 * over the table, because a byte-by-byte loop under coverage
 * instrumentation costs more than the engine it tests; a large write need
 * not even be copied (fz_pattern_buf).
 */
#ifndef MUXRING_TEST_FUZZ_PATTERN_H
#define MUXRING_TEST_FUZZ_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/buf.h"

/* The longest run fz_pattern_buf serves. */
#define FZ_PATTERN_SPAN (1u << 20)

/* Writes bytes off .. off + len - 1 of stream id's pattern to dst. */
void fz_pattern_fill(uint8_t *dst, uint32_t id, uint64_t off, size_t len);

/* True when p holds bytes off .. off + len - 1 of stream id's pattern. */
bool fz_pattern_matches(const uint8_t *p, uint32_t id, uint64_t off,
			size_t len);

/*
 * A buffer for a write of bytes off .. off + len - 1 (len at most
 * FZ_PATTERN_SPAN) of stream id's pattern, which start at *data: a small
 * header over the shared table, so a large write costs neither a large
 * allocation nor a fill. The table is never freed, so ASan cannot see a
 * read of it after the write completed: bodies use heap copies
 * (fz_pattern_fill) for small writes, which are most of them. One
 * reference, owned by the caller; NULL when memory is exhausted.
 */
struct mr_buf *fz_pattern_buf(uint32_t id, uint64_t off, size_t len,
			      const uint8_t **data);

#endif
