/*
 * vec_load.h - the golden wire captures of tests/vectors, loaded for tests.
 *
 * Each scenario NAME has NAME.client.hex and NAME.server.hex: one frame per
 * line, lowercase hex, the bytes the Go reference wrote on its transport
 * (tests/vectors/README.md). A side is loaded both as the contiguous byte
 * stream it wrote and as the list of its lines, so a test can replay the
 * stream in any chunking or pick single frames.
 *
 * The directory is "tests/vectors" relative to the working directory (make
 * test runs binaries from the repository root), or $MUXRING_VECTORS.
 */
#ifndef MUXRING_TEST_VEC_LOAD_H
#define MUXRING_TEST_VEC_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/frame.h"

/* One line of a .hex file: exactly one frame as the Go side wrote it. */
struct vec_frame {
	struct mr_frame_header hdr; /* parsed from the first 8 bytes */
	const uint8_t *raw;         /* the line's bytes, inside vec_side.bytes */
	size_t raw_len;             /* bytes on the line (header + body) */
	size_t offset;              /* of raw in the side's byte stream */
};

struct vec_side {
	uint8_t *bytes;             /* every line decoded and concatenated */
	size_t len;
	struct vec_frame *frames;   /* one per line, in order */
	size_t nframes;
};

/* The twelve scenarios of tests/vectors/README.md. */
extern const char *const vec_scenarios[];
extern const size_t vec_nscenarios;

/* The vectors directory: $MUXRING_VECTORS or "tests/vectors". */
const char *vec_dir(void);

/*
 * Loads NAME.SIDE.hex (side "client" or "server"). Lines shorter than a
 * header have hdr zeroed and raw_len below 8; a line's raw_len is not checked
 * against its header here (test_frame does that). Returns 0, -ENOENT when
 * the file is missing, -EINVAL on a character that is not lowercase hex or
 * an odd number of digits on a line, -ENOMEM.
 */
int vec_load(const char *scenario, const char *side, struct vec_side *out);

/* Loads like vec_load and fails the current cmocka test on any error. */
void vec_must_load(const char *scenario, const char *side,
		   struct vec_side *out);

void vec_side_free(struct vec_side *side);

/* The payload of frame i (what follows its header on the line). */
static inline const uint8_t *vec_body(const struct vec_side *side, size_t i)
{
	return side->frames[i].raw + MR_FRAME_HEADER_LEN;
}

#endif
