/*
 * frame.h - the muxado wire codec.
 *
 * Every frame is an 8-byte header (24-bit length, 4-bit type, 4-bit flags,
 * reserved bit, 31-bit stream id, all big-endian) followed by `length` body
 * bytes. These functions only pack and check bytes: they never allocate and
 * never perform I/O, so the engine above can call them on any buffer.
 */
#ifndef MUXRING_FRAME_H
#define MUXRING_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define MR_FRAME_HEADER_LEN 8u
#define MR_FRAME_MAX_LEN 0xFFFFFFu
#define MR_STREAM_ID_MASK 0x7FFFFFFFu
#define MR_WNDINC_MASK 0x7FFFFFFFu

/* Fixed body sizes: RST and WNDINC carry one 32-bit word, GOAWAY two words
 * followed by debug text. */
#define MR_RST_BODY_LEN 4u
#define MR_WNDINC_BODY_LEN 4u
#define MR_GOAWAY_FIXED_LEN 8u

/* Longest frame the codec packs into a caller's array (RST or WNDINC). */
#define MR_CONTROL_FRAME_LEN (MR_FRAME_HEADER_LEN + 4u)
/* GOAWAY header and fixed part, without the debug text. */
#define MR_GOAWAY_HEAD_LEN (MR_FRAME_HEADER_LEN + MR_GOAWAY_FIXED_LEN)

enum mr_frame_type {
	MR_FRAME_RST = 0x0,
	MR_FRAME_DATA = 0x1,
	MR_FRAME_WNDINC = 0x2,
	MR_FRAME_GOAWAY = 0x3,
};

/* DATA flags; the flag nibble of every other type is ignored on receipt. */
#define MR_FLAG_FIN 0x1u
#define MR_FLAG_SYN 0x2u

struct mr_frame_header {
	uint32_t length;    /* body bytes after the header, 0..MR_FRAME_MAX_LEN */
	uint8_t type;       /* enum mr_frame_type, or 0x4..0xF for unknown types */
	uint8_t flags;      /* low nibble of byte 3 */
	uint32_t stream_id; /* reserved bit already masked off */
};

static inline uint32_t mr_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void mr_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Decodes 8 header bytes. Never fails: validity is mr_frame_header_check's. */
void mr_frame_header_parse(const uint8_t in[MR_FRAME_HEADER_LEN],
			   struct mr_frame_header *hdr);

/* Encodes a header; length is truncated to 24 bits, stream id to 31 bits. */
void mr_frame_header_pack(uint8_t out[MR_FRAME_HEADER_LEN],
			  const struct mr_frame_header *hdr);

/*
 * Checks the rules of a header that make a frame malformed, before its body
 * is read. Returns 0, or the muxado code that the session must fail with:
 *   MUXRING_FRAME_SIZE_ERROR  RST or WNDINC whose length is not 4,
 *                             GOAWAY shorter than 8;
 *   MUXRING_PROTOCOL_ERROR    RST, DATA or WNDINC on stream 0,
 *                             GOAWAY on a non-zero stream.
 * Unknown types are always valid (they are skipped whole).
 */
uint32_t mr_frame_header_check(const struct mr_frame_header *hdr);

/* Extracts a WNDINC increment from its 4-byte body; the reserved top bit is
 * masked. An increment of 0 is the caller's MUXRING_PROTOCOL_ERROR. */
static inline uint32_t mr_frame_wndinc_increment(const uint8_t body[4])
{
	return mr_get_be32(body) & MR_WNDINC_MASK;
}

/* Pack whole frames. Each returns the number of bytes written. */
size_t mr_frame_pack_rst(uint8_t out[MR_CONTROL_FRAME_LEN], uint32_t stream_id,
			 uint32_t code);
size_t mr_frame_pack_wndinc(uint8_t out[MR_CONTROL_FRAME_LEN],
			    uint32_t stream_id, uint32_t increment);
size_t mr_frame_pack_data_header(uint8_t out[MR_FRAME_HEADER_LEN],
				 uint32_t stream_id, uint8_t flags,
				 uint32_t payload_len);
/* The GOAWAY header and fixed body; debug_len bytes of text must follow. */
size_t mr_frame_pack_goaway_head(uint8_t out[MR_GOAWAY_HEAD_LEN],
				 uint32_t last_stream_id, uint32_t code,
				 uint32_t debug_len);

#endif
