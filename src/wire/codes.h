/*
 * codes.h - the names and meanings of the muxado error codes.
 *
 * The table lives at the bottom layer so that the codec's frame text (and
 * every layer above) can name a code without calling up into the public
 * API; muxring_code_name() and muxring_strerror() read the same table.
 */
#ifndef MUXRING_CODES_H
#define MUXRING_CODES_H

#include <stdint.h>

/* The Go reference's spelling of the code ("NoError", "ProtocolError",
 * ...), or "Unknown". Never NULL. */
const char *mr_code_name(uint32_t code);

/* A short sentence saying what the code means, or "unknown error". */
const char *mr_code_meaning(uint32_t code);

#endif
