/*
 * fuzz_frame_body.c - the wire codec under arbitrary bytes.
 *
 * The input is read three ways: every 8-byte window as a header (parse,
 * check, pack, parse again: a round trip that may only clear the reserved
 * bit), the whole input as a stream of frames (as a receiver walks it), and
 * as arguments to the pack functions, whose output must parse back to what
 * was packed. mr_frame_header_check() is compared with a model written here
 * from PROTOCOL.md's table, independently of src/wire/frame.c. Every frame
 * of the walk is also put into text (mr_frame_text) in arrays of every
 * size, which must hold it NUL-terminated and never be overrun.
 */
#include "fuzz_body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"
#include "wire/frame_text.h"
#include "muxring.h"

static void fail(const char *what, const uint8_t *hdr)
{
	fprintf(stderr, "fuzz_frame: %s", what);
	if (hdr)
		fprintf(stderr, " (header %02x%02x%02x%02x%02x%02x%02x%02x)",
			hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6],
			hdr[7]);
	fprintf(stderr, "\n");
	abort();
}

/* PROTOCOL.md, "Framing errors", as a table lookup. */
static uint32_t model_check(uint32_t length, uint8_t type, uint32_t id)
{
	switch (type) {
	case 0x0: /* RST */
	case 0x2: /* WNDINC */
		if (length != 4)
			return MUXRING_FRAME_SIZE_ERROR;
		return id == 0 ? MUXRING_PROTOCOL_ERROR : MUXRING_NO_ERROR;
	case 0x1: /* DATA */
		return id == 0 ? MUXRING_PROTOCOL_ERROR : MUXRING_NO_ERROR;
	case 0x3: /* GOAWAY */
		if (length < 8)
			return MUXRING_FRAME_SIZE_ERROR;
		return id != 0 ? MUXRING_PROTOCOL_ERROR : MUXRING_NO_ERROR;
	default:
		return MUXRING_NO_ERROR;
	}
}

static uint32_t be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static void check_header_bytes(const uint8_t in[MR_FRAME_HEADER_LEN])
{
	struct mr_frame_header h, h2;
	uint8_t out[MR_FRAME_HEADER_LEN];
	uint32_t id = mr_get_be32(in + 4) & 0x7FFFFFFFu;

	memset(&h, 0xA5, sizeof(h));
	mr_frame_header_parse(in, &h);
	if (h.length != be24(in) || h.type != in[3] >> 4 ||
	    h.flags != (in[3] & 0xF) || h.stream_id != id)
		fail("parse disagrees with the byte layout", in);
	if (mr_frame_header_check(&h) != model_check(h.length, h.type, id))
		fail("header check disagrees with PROTOCOL.md", in);
	mr_frame_header_pack(out, &h);
	if (memcmp(out, in, 4) || out[4] != (in[4] & 0x7F) ||
	    memcmp(out + 5, in + 5, 3))
		fail("pack(parse(x)) is not x with the reserved bit cleared",
		     in);
	mr_frame_header_parse(out, &h2);
	if (h2.length != h.length || h2.type != h.type ||
	    h2.flags != h.flags || h2.stream_id != h.stream_id)
		fail("parse(pack(h)) is not h", in);
}

/*
 * The frame's text into an array of exactly `cap` bytes on the heap (so
 * the sanitizer sees a byte written past it): NUL-terminated, as long as
 * the returned length, and starting with the frame type's name.
 */
static void check_text(const struct mr_frame_header *h, const uint8_t *body,
		       size_t body_len, size_t cap)
{
	static const char *const names[] = {"RST", "DATA", "WNDINC", "GOAWAY"};
	const char *name = h->type < 4 ? names[h->type] : "UNKNOWN";
	char *text = malloc(cap);
	size_t len;

	if (!text)
		return;
	len = mr_frame_text(text, cap, h, body, body_len, 16);
	if (len >= cap || text[len] != '\0' || strlen(text) != len)
		fail("frame text not NUL-terminated within its array", NULL);
	if (strncmp(text, name, len < strlen(name) ? len : strlen(name)))
		fail("frame text does not start with the type", NULL);
	free(text);
}

/* Walks the input as a receiver does: header, body, next header. */
static void walk_frames(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	while (size - pos >= MR_FRAME_HEADER_LEN) {
		struct mr_frame_header h;

		mr_frame_header_parse(data + pos, &h);
		if (h.length > MR_FRAME_MAX_LEN)
			fail("parsed length above 24 bits", data + pos);
		pos += MR_FRAME_HEADER_LEN;
		if (h.type == MR_FRAME_WNDINC && h.length == 4 &&
		    size - pos >= 4) {
			uint32_t inc = mr_frame_wndinc_increment(data + pos);

			if (inc != (mr_get_be32(data + pos) & 0x7FFFFFFFu))
				fail("WNDINC increment keeps the reserved bit",
				     data + pos - MR_FRAME_HEADER_LEN);
		}
		check_text(&h, data + pos,
			   size - pos < h.length ? size - pos : h.length,
			   1 + data[pos - 1] % 2 * MR_FRAME_TEXT_MAX(64) +
				   data[pos - 5] % 64);
		if (size - pos < h.length)
			break;
		pos += h.length;
	}
}

static uint32_t word(const uint8_t *data, size_t size, size_t at)
{
	uint8_t w[4] = {0};

	for (size_t i = 0; i < 4 && at + i < size; i++)
		w[i] = data[at + i];
	return mr_get_be32(w);
}

static void expect_header(const uint8_t *frame, uint32_t length, uint8_t type,
			  uint8_t flags, uint32_t id)
{
	struct mr_frame_header h;

	mr_frame_header_parse(frame, &h);
	if (h.length != length || h.type != type || h.flags != flags ||
	    h.stream_id != id)
		fail("a packed frame does not parse back", frame);
}

/* The pack functions, fed words from the input. */
static void check_packers(const uint8_t *data, size_t size, size_t at)
{
	uint32_t a = word(data, size, at), b = word(data, size, at + 4);
	uint8_t fl = (uint8_t)(a >> 3);
	uint8_t frame[MR_GOAWAY_HEAD_LEN];
	uint32_t id = a & 0x7FFFFFFFu;

	if (mr_frame_pack_rst(frame, a, b) != MR_CONTROL_FRAME_LEN)
		fail("RST is not 12 bytes", frame);
	expect_header(frame, 4, MR_FRAME_RST, 0, id);
	if (mr_get_be32(frame + 8) != b)
		fail("RST code changed", frame);
	if (mr_frame_header_check(&(struct mr_frame_header){
		    .length = 4, .type = MR_FRAME_RST, .stream_id = id}) !=
	    (id ? MUXRING_NO_ERROR : MUXRING_PROTOCOL_ERROR))
		fail("packed RST checked wrongly", frame);

	if (mr_frame_pack_wndinc(frame, a, b) != MR_CONTROL_FRAME_LEN)
		fail("WNDINC is not 12 bytes", frame);
	expect_header(frame, 4, MR_FRAME_WNDINC, 0, id);
	if (mr_get_be32(frame + 8) != (b & 0x7FFFFFFFu) ||
	    mr_frame_wndinc_increment(frame + 8) != (b & 0x7FFFFFFFu))
		fail("WNDINC increment changed", frame);

	if (mr_frame_pack_data_header(frame, a, fl, b) != MR_FRAME_HEADER_LEN)
		fail("DATA header is not 8 bytes", frame);
	expect_header(frame, b & 0xFFFFFFu, MR_FRAME_DATA, fl & 0xF, id);

	if (mr_frame_pack_goaway_head(frame, a, b, b >> 8) != MR_GOAWAY_HEAD_LEN)
		fail("GOAWAY head is not 16 bytes", frame);
	expect_header(frame, (8 + (b >> 8)) & 0xFFFFFFu, MR_FRAME_GOAWAY, 0, 0);
	if (mr_get_be32(frame + 8) != a || mr_get_be32(frame + 12) != b)
		fail("GOAWAY last id or code changed", frame);
}

int fuzz_frame_input(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + MR_FRAME_HEADER_LEN <= size && i < 4096; i++)
		check_header_bytes(data + i);
	walk_frames(data, size);
	for (size_t i = 0; i < size && i < 4096; i += 8)
		check_packers(data, size, i);
	if (size == 0)
		check_packers(data, 0, 0);
	return 0;
}
