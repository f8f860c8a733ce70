/*
 * fuzz_input.h - what every fuzz body needs to read its input and to fail.
 *
 * A fuzz input is read as a program: a cursor hands out its bytes and
 * gives zeros once they are used up, so every input, however short, is a
 * complete program. A broken invariant prints what broke and aborts, which
 * libFuzzer and the corpus test both report as a finding.
 */
#ifndef MUXRING_TEST_FUZZ_INPUT_H
#define MUXRING_TEST_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct fz_cursor {
	const uint8_t *p;
	size_t n;        /* bytes left */
};

/* The next byte, or 0 once the input is used up. */
uint8_t fz_take8(struct fz_cursor *c);
/* The next four bytes, big-endian (zeros past the end). */
uint32_t fz_take32(struct fz_cursor *c);

/* Reports a broken invariant on stderr and aborts. */
void fz_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* realloc that aborts instead of failing (a fuzz body's own memory). */
void *fz_realloc(void *p, size_t n);

#endif
