/*
 * fuzz_link.c - libFuzzer target: two engines (src/engine/session.h) driven
 * by random application actions, talking through a link that flips bits,
 * truncates, duplicates, reorders and drops the packets their bytes travel
 * in.
 *
 * The body and the input format are in tests/support/fuzz_link_body.c and
 * fuzz_body.h, shared with the regression test tests/test_fuzz_corpus.c.
 * Build and run with `make fuzz`, or by hand:
 *   build/fuzz/fuzz_link -max_total_time=60 build/fuzz/corpus/fuzz_link \
 *       build/fuzz/seeds/fuzz_link
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_link_input(data, size);
}
