/*
 * fuzz_input.c - the input cursor and the failure report of the fuzz bodies.
 */
#include "fuzz_input.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

uint8_t fz_take8(struct fz_cursor *c)
{
	if (!c->n)
		return 0;
	c->n--;
	return *c->p++;
}

uint32_t fz_take32(struct fz_cursor *c)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | fz_take8(c);
	return v;
}

void fz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz: invariant broken: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

void *fz_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		abort();
	return q;
}
