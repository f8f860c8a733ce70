/*
 * fuzz_engine.c - libFuzzer target for the sans-I/O engine (src/engine/session.h):
 * arbitrary wire bytes and application operations against client and server
 * sessions, typed and untyped, alone or wired to a peer engine.
 *
 * The body and the input format are in tests/support/fuzz_engine_body.c and
 * fuzz_body.h, shared with the regression test tests/test_fuzz_corpus.c.
 * Build and run with `make fuzz` (FUZZ_SECONDS per target; the seed corpus
 * is every captured vector of tests/vectors), or by hand:
 *   build/fuzz/fuzz_engine -max_total_time=60 build/fuzz/corpus/engine \
 *       build/fuzz/seeds/engine
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_engine_input(data, size);
}
