/*
 * test_frame.c - the wire codec (src/wire/frame.h) on its own.
 *
 * Covers: header parse and pack (byte layout, big-endian fields, 24-bit
 * length, type and flag nibbles, reserved bit masked on parse and never
 * packed), round trips over every type and flag and the edge values of
 * length and id, every rule of mr_frame_header_check (FrameSizeError for RST
 * and WNDINC whose length is not 4 and for GOAWAY shorter than 8;
 * ProtocolError for RST, DATA and WNDINC on stream 0 and for GOAWAY on a
 * non-zero stream; unknown types always valid), the whole-frame packers
 * against bytes copied from the Go captures, and every frame of every
 * .hex file under tests/vectors: it parses, passes the checks, its line holds
 * exactly 8 + length bytes, re-packing its header gives the same 8 bytes,
 * and offsets, headers and totals agree with the scenario's .txt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/frame.h"
#include "muxring.h"
#include "vec_load.h"

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static struct mr_frame_header hdr_of(uint32_t length, uint8_t type,
				     uint8_t flags, uint32_t id)
{
	struct mr_frame_header h = {
		.length = length, .type = type, .flags = flags, .stream_id = id,
	};
	return h;
}

/* ---- parse and pack ------------------------------------------------------ */

static void test_parse_reads_big_endian_fields_and_nibbles(void **state)
{
	const uint8_t in[8] = {0xAB, 0xCD, 0xEF, 0x5A, 0x12, 0x34, 0x56, 0x78};
	struct mr_frame_header h;

	(void)state;
	mr_frame_header_parse(in, &h);
	assert_int_equal(h.length, 0xABCDEF);
	assert_int_equal(h.type, 0x5);
	assert_int_equal(h.flags, 0xA);
	assert_int_equal(h.stream_id, 0x12345678);
}

static void test_parse_masks_the_reserved_bit_of_the_stream_id(void **state)
{
	const uint8_t in[8] = {0, 0, 0, 0x12, 0x80, 0, 0, 3};
	const uint8_t all[8] = {0, 0, 0, 0x12, 0xFF, 0xFF, 0xFF, 0xFF};
	struct mr_frame_header h;

	(void)state;
	mr_frame_header_parse(in, &h);
	assert_int_equal(h.stream_id, 3);
	mr_frame_header_parse(all, &h);
	assert_int_equal(h.stream_id, 0x7FFFFFFF);
}

static void test_pack_writes_the_documented_byte_layout(void **state)
{
	struct mr_frame_header h = hdr_of(0x010203, MR_FRAME_DATA,
					  MR_FLAG_SYN | MR_FLAG_FIN, 0x0A0B0C0D);
	const uint8_t want[8] = {0x01, 0x02, 0x03, 0x13, 0x0A, 0x0B, 0x0C, 0x0D};
	uint8_t out[8];

	(void)state;
	memset(out, 0xEE, sizeof(out));
	mr_frame_header_pack(out, &h);
	assert_memory_equal(out, want, 8);
}

static void test_pack_never_sets_the_reserved_bit_and_truncates_length(void **state)
{
	struct mr_frame_header h = hdr_of(0x1FFFFFF, MR_FRAME_WNDINC, 0,
					  0xFFFFFFFF);
	uint8_t out[8];
	struct mr_frame_header back;

	(void)state;
	mr_frame_header_pack(out, &h);
	assert_int_equal(out[4] & 0x80, 0);
	mr_frame_header_parse(out, &back);
	assert_int_equal(back.length, 0xFFFFFF);
	assert_int_equal(back.stream_id, 0x7FFFFFFF);
	assert_int_equal(back.type, MR_FRAME_WNDINC);
}

static void test_pack_then_parse_round_trips_every_type_flag_and_edge(void **state)
{
	const uint32_t lengths[] = {0, 1, 4, 8, 255, 256, 65535, 65536,
				    0x40000, 0xFFFFFE, 0xFFFFFF};
	const uint32_t ids[] = {0, 1, 2, 3, 0xFF, 0x100, 0x10000, 0x7FFFFFFE,
				0x7FFFFFFF};
	size_t checked = 0;

	(void)state;
	for (unsigned type = 0; type < 16; type++)
		for (unsigned flags = 0; flags < 16; flags++)
			for (size_t l = 0; l < sizeof(lengths) / sizeof(*lengths); l++)
				for (size_t i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
					struct mr_frame_header h = hdr_of(
						lengths[l], (uint8_t)type,
						(uint8_t)flags, ids[i]);
					struct mr_frame_header back;
					uint8_t out[8], again[8];

					mr_frame_header_pack(out, &h);
					mr_frame_header_parse(out, &back);
					assert_int_equal(back.length, h.length);
					assert_int_equal(back.type, h.type);
					assert_int_equal(back.flags, h.flags);
					assert_int_equal(back.stream_id, h.stream_id);
					mr_frame_header_pack(again, &back);
					assert_memory_equal(out, again, 8);
					checked++;
				}
	assert_int_equal(checked, 16 * 16 * 11 * 9);
}

/* ---- mr_frame_header_check --------------------------------------------- */

static void test_rst_and_wndinc_with_length_other_than_4_are_frame_size_errors(void **state)
{
	const uint32_t bad[] = {0, 1, 3, 5, 8, 12, 0xFFFF, 0xFFFFFF};
	const uint8_t types[] = {MR_FRAME_RST, MR_FRAME_WNDINC};

	(void)state;
	for (size_t t = 0; t < 2; t++) {
		struct mr_frame_header ok = hdr_of(4, types[t], 0, 7);

		assert_int_equal(mr_frame_header_check(&ok), MUXRING_NO_ERROR);
		for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
			struct mr_frame_header h = hdr_of(bad[i], types[t], 0, 7);

			assert_int_equal(mr_frame_header_check(&h),
					 MUXRING_FRAME_SIZE_ERROR);
		}
	}
}

static void test_goaway_shorter_than_8_is_a_frame_size_error(void **state)
{
	(void)state;
	for (uint32_t len = 0; len < 8; len++) {
		struct mr_frame_header h = hdr_of(len, MR_FRAME_GOAWAY, 0, 0);

		assert_int_equal(mr_frame_header_check(&h),
				 MUXRING_FRAME_SIZE_ERROR);
	}
	for (uint32_t len = 8; len < 64; len++) {
		struct mr_frame_header h = hdr_of(len, MR_FRAME_GOAWAY, 0, 0);

		assert_int_equal(mr_frame_header_check(&h), MUXRING_NO_ERROR);
	}
	struct mr_frame_header max = hdr_of(0xFFFFFF, MR_FRAME_GOAWAY, 0, 0);

	assert_int_equal(mr_frame_header_check(&max), MUXRING_NO_ERROR);
}

static void test_rst_data_and_wndinc_on_stream_0_are_protocol_errors(void **state)
{
	struct mr_frame_header rst = hdr_of(4, MR_FRAME_RST, 0, 0);
	struct mr_frame_header wnd = hdr_of(4, MR_FRAME_WNDINC, 0, 0);
	struct mr_frame_header data0 = hdr_of(0, MR_FRAME_DATA, 0, 0);
	struct mr_frame_header data = hdr_of(100, MR_FRAME_DATA,
					     MR_FLAG_SYN, 0);

	(void)state;
	assert_int_equal(mr_frame_header_check(&rst), MUXRING_PROTOCOL_ERROR);
	assert_int_equal(mr_frame_header_check(&wnd), MUXRING_PROTOCOL_ERROR);
	assert_int_equal(mr_frame_header_check(&data0), MUXRING_PROTOCOL_ERROR);
	assert_int_equal(mr_frame_header_check(&data), MUXRING_PROTOCOL_ERROR);
}

static void test_goaway_on_a_nonzero_stream_is_a_protocol_error(void **state)
{
	const uint32_t ids[] = {1, 2, 3, 0x7FFFFFFF};

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
		struct mr_frame_header h = hdr_of(16, MR_FRAME_GOAWAY, 0, ids[i]);

		assert_int_equal(mr_frame_header_check(&h),
				 MUXRING_PROTOCOL_ERROR);
	}
}

static void test_a_reserved_bit_alone_names_stream_0_after_parsing(void **state)
{
	/* RST whose id is only the reserved bit: the receiver masks it off,
	 * so the frame is an RST on stream 0. */
	const uint8_t in[8] = {0, 0, 4, 0x00, 0x80, 0, 0, 0};
	struct mr_frame_header h;

	(void)state;
	mr_frame_header_parse(in, &h);
	assert_int_equal(h.stream_id, 0);
	assert_int_equal(mr_frame_header_check(&h), MUXRING_PROTOCOL_ERROR);
}

static void test_valid_frames_of_every_known_type_pass_the_checks(void **state)
{
	struct mr_frame_header ok[] = {
		hdr_of(4, MR_FRAME_RST, 0, 1),
		hdr_of(4, MR_FRAME_RST, 0xF, 0x7FFFFFFF),
		hdr_of(0, MR_FRAME_DATA, 0, 1),
		hdr_of(0xFFFFFF, MR_FRAME_DATA, 0xF, 2),
		hdr_of(0, MR_FRAME_DATA, MR_FLAG_SYN | MR_FLAG_FIN, 3),
		hdr_of(4, MR_FRAME_WNDINC, 0, 3),
		hdr_of(4, MR_FRAME_WNDINC, 0xF, 0x7FFFFFFF),
		hdr_of(8, MR_FRAME_GOAWAY, 0, 0),
		hdr_of(8 + 30, MR_FRAME_GOAWAY, 0xF, 0),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
		assert_int_equal(mr_frame_header_check(&ok[i]), MUXRING_NO_ERROR);
}

static void test_unknown_types_are_always_valid(void **state)
{
	const uint32_t lengths[] = {0, 1, 3, 4, 7, 8, 0xFFFFFF};
	const uint32_t ids[] = {0, 1, 2, 0x7FFFFFFF};

	(void)state;
	for (unsigned type = 4; type < 16; type++)
		for (unsigned flags = 0; flags < 16; flags++)
			for (size_t l = 0; l < sizeof(lengths) / sizeof(*lengths); l++)
				for (size_t i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
					struct mr_frame_header h = hdr_of(
						lengths[l], (uint8_t)type,
						(uint8_t)flags, ids[i]);

					assert_int_equal(mr_frame_header_check(&h),
							 MUXRING_NO_ERROR);
				}
}

/* ---- whole-frame packers --------------------------------------------- */

static void test_pack_rst_matches_the_go_capture(void **state)
{
	/* accept-backlog-overflow S1: RST stream 5 AcceptQueueFull. */
	uint8_t want[12], out[MR_CONTROL_FRAME_LEN];

	(void)state;
	hex_to_bytes("000004000000000500000009", want, 12);
	assert_int_equal(mr_frame_pack_rst(out, 5, MUXRING_ACCEPT_QUEUE_FULL), 12);
	assert_memory_equal(out, want, 12);
}

static void test_pack_wndinc_matches_the_go_capture_and_masks_the_top_bit(void **state)
{
	/* window-wndinc S1: WNDINC stream 3 increment 65536. */
	uint8_t want[12], out[MR_CONTROL_FRAME_LEN];

	(void)state;
	hex_to_bytes("000004200000000300010000", want, 12);
	assert_int_equal(mr_frame_pack_wndinc(out, 3, 65536), 12);
	assert_memory_equal(out, want, 12);
	assert_int_equal(mr_frame_pack_wndinc(out, 3, 0x80010000u), 12);
	assert_memory_equal(out, want, 12);
	assert_int_equal(mr_frame_wndinc_increment(out + 8), 65536);
}

static void test_wndinc_increment_masks_the_reserved_top_bit(void **state)
{
	const uint8_t body[4] = {0xFF, 0xFF, 0xFF, 0xFF};
	const uint8_t top[4] = {0x80, 0, 0, 0};
	const uint8_t five[4] = {0x80, 0, 0, 5};

	(void)state;
	assert_int_equal(mr_frame_wndinc_increment(body), 0x7FFFFFFF);
	assert_int_equal(mr_frame_wndinc_increment(top), 0);
	assert_int_equal(mr_frame_wndinc_increment(five), 5);
}

static void test_pack_data_header_matches_the_go_capture(void **state)
{
	/* hello-echo C1 (SYN, 5 bytes) and C2 (FIN, empty). */
	uint8_t want[8], out[8];

	(void)state;
	hex_to_bytes("0000051200000003", want, 8);
	assert_int_equal(mr_frame_pack_data_header(out, 3, MR_FLAG_SYN, 5), 8);
	assert_memory_equal(out, want, 8);
	hex_to_bytes("0000001100000003", want, 8);
	assert_int_equal(mr_frame_pack_data_header(out, 3, MR_FLAG_FIN, 0), 8);
	assert_memory_equal(out, want, 8);
	/* window-wndinc C1: the 262144-byte SYN frame. */
	hex_to_bytes("0400001200000003", want, 8);
	assert_int_equal(mr_frame_pack_data_header(out, 3, MR_FLAG_SYN,
						   0x40000), 8);
	assert_memory_equal(out, want, 8);
}

static void test_pack_goaway_head_matches_the_go_capture(void **state)
{
	/* goaway-server S4: last 3, EnhanceYourCalm, 30 bytes of debug. */
	uint8_t want[16], out[MR_GOAWAY_HEAD_LEN];

	(void)state;
	hex_to_bytes("0000263000000000" "00000003" "0000000a", want, 16);
	assert_int_equal(mr_frame_pack_goaway_head(out, 3,
						   MUXRING_ENHANCE_YOUR_CALM,
						   30), 16);
	assert_memory_equal(out, want, 16);
	/* server-close-idle S1: last 1, NoError, "no error". */
	hex_to_bytes("00001030000000000000000100000000", want, 16);
	assert_int_equal(mr_frame_pack_goaway_head(out, 1, 0, 8), 16);
	assert_memory_equal(out, want, 16);
}

/* ---- the golden vectors ------------------------------------------------ */

/* The .txt file of a scenario, whole, NUL-terminated. */
static char *load_txt(const char *scenario)
{
	char path[4096];
	FILE *f;
	char *text;
	long size;

	snprintf(path, sizeof(path), "%s/%s.txt", vec_dir(), scenario);
	f = fopen(path, "rb");
	if (!f) {
		print_error("cannot open %s\n", path);
		fail();
	}
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	text = malloc((size_t)size + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
	text[size] = 0;
	fclose(f);
	return text;
}

/*
 * Checks one side against the "FRAMES WRITTEN BY THE CLIENT (N frames, M
 * bytes)" section of the .txt: N lines, every "C<k>  offset O  header H"
 * entry at offset O with header H, and M = the bytes of the .hex plus the
 * cut-off bytes the section reports ("handed K more bytes to TCP").
 */
static void check_side_against_txt(const char *scenario, const char *text,
				   const char *who, char letter,
				   const struct vec_side *side)
{
	char title[64];
	const char *sec, *end;
	unsigned nframes, nbytes, cutoff = 0;
	size_t entries = 0;

	snprintf(title, sizeof(title), "FRAMES WRITTEN BY THE %s (", who);
	sec = strstr(text, title);
	assert_non_null(sec);
	assert_int_equal(sscanf(sec + strlen(title), "%u frames, %u bytes",
				&nframes, &nbytes), 2);
	end = strstr(sec + 1, "\nFRAMES WRITTEN BY THE ");
	if (!end)
		end = strstr(sec, "\nMERGED TIMELINE");
	assert_non_null(end);
	if (nframes != side->nframes) {
		print_error("%s %s: .txt says %u frames, .hex has %zu\n",
			    scenario, who, nframes, side->nframes);
		fail();
	}
	for (const char *p = sec; p && p < end; p = strchr(p + 1, '\n')) {
		const char *line = *p == '\n' ? p + 1 : p;
		unsigned k, offset;
		char hex[17];
		uint8_t hdr[8];
		const char *more = strstr(line, "handed ");

		if (more && more < end && more < strchr(line, '\n') &&
		    sscanf(more, "handed %u more bytes", &cutoff) == 1)
			continue;
		if (line[0] != letter ||
		    sscanf(line + 1, "%u offset %u header %16s", &k, &offset,
			   hex) != 3)
			continue;
		assert_true(k >= 1 && k <= side->nframes);
		assert_int_equal(offset, side->frames[k - 1].offset);
		hex_to_bytes(hex, hdr, 8);
		assert_memory_equal(hdr, side->frames[k - 1].raw, 8);
		entries++;
	}
	assert_int_equal(entries, side->nframes);
	if (side->len + cutoff != nbytes) {
		print_error("%s %s: .txt says %u bytes, .hex has %zu and %u "
			    "were cut off\n", scenario, who, nbytes, side->len,
			    cutoff);
		fail();
	}
}

static void check_vector_side(const char *scenario, const char *side_name,
			      const char *text)
{
	struct vec_side side;
	size_t pos = 0;

	vec_must_load(scenario, side_name, &side);
	for (size_t i = 0; i < side.nframes; i++) {
		const struct vec_frame *fr = &side.frames[i];
		uint8_t repacked[8];

		if (fr->raw_len < MR_FRAME_HEADER_LEN ||
		    fr->raw_len != MR_FRAME_HEADER_LEN + fr->hdr.length) {
			print_error("%s.%s.hex line %zu: %zu bytes, header says "
				    "8 + %u\n", scenario, side_name, i + 1,
				    fr->raw_len, fr->hdr.length);
			fail();
		}
		assert_int_equal(mr_frame_header_check(&fr->hdr),
				 MUXRING_NO_ERROR);
		/* Go only sends the four known types, flags only on DATA, and
		 * never the reserved bit. */
		assert_true(fr->hdr.type <= MR_FRAME_GOAWAY);
		if (fr->hdr.type != MR_FRAME_DATA)
			assert_int_equal(fr->hdr.flags, 0);
		assert_int_equal(fr->raw[4] & 0x80, 0);
		mr_frame_header_pack(repacked, &fr->hdr);
		assert_memory_equal(repacked, fr->raw, 8);
		if (fr->hdr.type == MR_FRAME_WNDINC)
			assert_true(mr_frame_wndinc_increment(vec_body(&side, i)) > 0);
		/* The concatenated stream parses to the same boundaries. */
		assert_int_equal(fr->offset, pos);
		struct mr_frame_header again;

		mr_frame_header_parse(side.bytes + pos, &again);
		assert_int_equal(again.length, fr->hdr.length);
		pos += MR_FRAME_HEADER_LEN + again.length;
	}
	assert_int_equal(pos, side.len);
	check_side_against_txt(scenario, text,
			       strcmp(side_name, "client") ? "SERVER" : "CLIENT",
			       strcmp(side_name, "client") ? 'S' : 'C', &side);
	vec_side_free(&side);
}

static void test_every_frame_of_every_vector_parses_and_lines_up(void **state)
{
	(void)state;
	for (size_t i = 0; i < vec_nscenarios; i++) {
		char *text = load_txt(vec_scenarios[i]);

		check_vector_side(vec_scenarios[i], "client", text);
		check_vector_side(vec_scenarios[i], "server", text);
		free(text);
	}
}

static void test_vector_goaway_frames_carry_the_described_debug_text(void **state)
{
	struct vec_side s;
	const uint8_t *b;

	(void)state;
	vec_must_load("goaway-server", "server", &s);
	assert_int_equal(s.nframes, 4);
	assert_int_equal(s.frames[3].hdr.type, MR_FRAME_GOAWAY);
	b = vec_body(&s, 3);
	assert_int_equal(mr_get_be32(b), 3);
	assert_int_equal(mr_get_be32(b + 4), MUXRING_ENHANCE_YOUR_CALM);
	assert_int_equal(s.frames[3].hdr.length - 8, 30);
	assert_memory_equal(b + 8, "server going away: maintenance", 30);
	vec_side_free(&s);

	vec_must_load("server-close-idle", "server", &s);
	assert_int_equal(s.nframes, 1);
	b = vec_body(&s, 0);
	assert_int_equal(mr_get_be32(b), 1);
	assert_int_equal(mr_get_be32(b + 4), MUXRING_NO_ERROR);
	assert_int_equal(s.frames[0].hdr.length, 16);
	assert_memory_equal(b + 8, "no error", 8);
	vec_side_free(&s);
}

static void test_loader_reports_a_missing_vector_file(void **state)
{
	struct vec_side s;

	(void)state;
	assert_true(vec_load("no-such-scenario", "client", &s) < 0);
	assert_null(s.bytes);
	assert_int_equal(s.nframes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_reads_big_endian_fields_and_nibbles),
		cmocka_unit_test(test_parse_masks_the_reserved_bit_of_the_stream_id),
		cmocka_unit_test(test_pack_writes_the_documented_byte_layout),
		cmocka_unit_test(test_pack_never_sets_the_reserved_bit_and_truncates_length),
		cmocka_unit_test(test_pack_then_parse_round_trips_every_type_flag_and_edge),
		cmocka_unit_test(test_rst_and_wndinc_with_length_other_than_4_are_frame_size_errors),
		cmocka_unit_test(test_goaway_shorter_than_8_is_a_frame_size_error),
		cmocka_unit_test(test_rst_data_and_wndinc_on_stream_0_are_protocol_errors),
		cmocka_unit_test(test_goaway_on_a_nonzero_stream_is_a_protocol_error),
		cmocka_unit_test(test_a_reserved_bit_alone_names_stream_0_after_parsing),
		cmocka_unit_test(test_valid_frames_of_every_known_type_pass_the_checks),
		cmocka_unit_test(test_unknown_types_are_always_valid),
		cmocka_unit_test(test_pack_rst_matches_the_go_capture),
		cmocka_unit_test(test_pack_wndinc_matches_the_go_capture_and_masks_the_top_bit),
		cmocka_unit_test(test_wndinc_increment_masks_the_reserved_top_bit),
		cmocka_unit_test(test_pack_data_header_matches_the_go_capture),
		cmocka_unit_test(test_pack_goaway_head_matches_the_go_capture),
		cmocka_unit_test(test_every_frame_of_every_vector_parses_and_lines_up),
		cmocka_unit_test(test_vector_goaway_frames_carry_the_described_debug_text),
		cmocka_unit_test(test_loader_reports_a_missing_vector_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
