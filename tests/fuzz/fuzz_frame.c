/*
 * fuzz_frame.c - libFuzzer target for the wire codec (src/wire/frame.c).
 *
 * The body is tests/support/fuzz_frame_body.c, shared with the regression
 * test tests/test_fuzz_corpus.c. Build and run with `make fuzz`
 * (FUZZ_SECONDS per target), or by hand:
 *   build/fuzz/fuzz_frame -max_total_time=60 build/fuzz/corpus/frame
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_frame_input(data, size);
}
