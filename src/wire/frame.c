/*
 * frame.c - packing and checking muxado frame headers.
 *
 * The header is fixed-size and every field is big-endian, so the codec is a
 * handful of shifts. Validation is split from parsing: a parsed header is
 * only data, and mr_frame_header_check names the error the protocol gives
 * to a malformed one, so the engine decides what to do with it.
 */
#include "frame.h"

#include "muxring.h"

void mr_frame_header_parse(const uint8_t in[MR_FRAME_HEADER_LEN],
			   struct mr_frame_header *hdr)
{
	hdr->length = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
	hdr->type = in[3] >> 4;
	hdr->flags = in[3] & 0x0F;
	hdr->stream_id = mr_get_be32(in + 4) & MR_STREAM_ID_MASK;
}

void mr_frame_header_pack(uint8_t out[MR_FRAME_HEADER_LEN],
			  const struct mr_frame_header *hdr)
{
	out[0] = (uint8_t)(hdr->length >> 16);
	out[1] = (uint8_t)(hdr->length >> 8);
	out[2] = (uint8_t)hdr->length;
	out[3] = (uint8_t)((hdr->type & 0x0F) << 4 | (hdr->flags & 0x0F));
	mr_put_be32(out + 4, hdr->stream_id & MR_STREAM_ID_MASK);
}

static uint32_t check_fixed_body(const struct mr_frame_header *hdr,
				 uint32_t body_len)
{
	if (hdr->length != body_len)
		return MUXRING_FRAME_SIZE_ERROR;
	if (hdr->stream_id == 0)
		return MUXRING_PROTOCOL_ERROR;
	return MUXRING_NO_ERROR;
}

uint32_t mr_frame_header_check(const struct mr_frame_header *hdr)
{
	switch (hdr->type) {
	case MR_FRAME_RST:
		return check_fixed_body(hdr, MR_RST_BODY_LEN);
	case MR_FRAME_WNDINC:
		return check_fixed_body(hdr, MR_WNDINC_BODY_LEN);
	case MR_FRAME_DATA:
		return hdr->stream_id == 0 ? MUXRING_PROTOCOL_ERROR
					   : MUXRING_NO_ERROR;
	case MR_FRAME_GOAWAY:
		if (hdr->length < MR_GOAWAY_FIXED_LEN)
			return MUXRING_FRAME_SIZE_ERROR;
		return hdr->stream_id != 0 ? MUXRING_PROTOCOL_ERROR
					   : MUXRING_NO_ERROR;
	default:
		return MUXRING_NO_ERROR;
	}
}

static size_t pack_word_frame(uint8_t out[MR_CONTROL_FRAME_LEN], uint8_t type,
			      uint32_t stream_id, uint32_t word)
{
	struct mr_frame_header hdr = {
		.length = 4, .type = type, .stream_id = stream_id,
	};

	mr_frame_header_pack(out, &hdr);
	mr_put_be32(out + MR_FRAME_HEADER_LEN, word);
	return MR_CONTROL_FRAME_LEN;
}

size_t mr_frame_pack_rst(uint8_t out[MR_CONTROL_FRAME_LEN], uint32_t stream_id,
			 uint32_t code)
{
	return pack_word_frame(out, MR_FRAME_RST, stream_id, code);
}

size_t mr_frame_pack_wndinc(uint8_t out[MR_CONTROL_FRAME_LEN],
			    uint32_t stream_id, uint32_t increment)
{
	return pack_word_frame(out, MR_FRAME_WNDINC, stream_id,
			       increment & MR_WNDINC_MASK);
}

size_t mr_frame_pack_data_header(uint8_t out[MR_FRAME_HEADER_LEN],
				 uint32_t stream_id, uint8_t flags,
				 uint32_t payload_len)
{
	struct mr_frame_header hdr = {
		.length = payload_len, .type = MR_FRAME_DATA,
		.flags = flags, .stream_id = stream_id,
	};

	mr_frame_header_pack(out, &hdr);
	return MR_FRAME_HEADER_LEN;
}

size_t mr_frame_pack_goaway_head(uint8_t out[MR_GOAWAY_HEAD_LEN],
				 uint32_t last_stream_id, uint32_t code,
				 uint32_t debug_len)
{
	struct mr_frame_header hdr = {
		.length = MR_GOAWAY_FIXED_LEN + debug_len,
		.type = MR_FRAME_GOAWAY,
	};

	mr_frame_header_pack(out, &hdr);
	mr_put_be32(out + MR_FRAME_HEADER_LEN, last_stream_id);
	mr_put_be32(out + MR_FRAME_HEADER_LEN + 4, code);
	return MR_GOAWAY_HEAD_LEN;
}
