/*
 * test_frame_text.c - the codec's one-line text of a frame (mr_frame_text),
 * which muxdump prints and the frame tracer reports.
 *
 * Covers: each frame type's words; flags, unknown flags and unknown types;
 * escaping of quotes, backslashes and non-printable bytes; the DATA preview
 * and the "..." of a payload or GOAWAY debug text shown in part; a frame
 * that breaks a framing rule; a body shorter than its type's fixed part;
 * output cut at the array's end, always NUL-terminated, and nothing written
 * for an array of 0 bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "wire/frame_text.h"

static char text[512];

/* The text of a frame with the whole body given, preview 16. */
static const char *of(uint32_t length, uint8_t type, uint8_t flags,
		      uint32_t id, const void *body)
{
	struct mr_frame_header h = {length, type, flags, id};
	size_t n = mr_frame_text(text, sizeof(text), &h, body, length, 16);

	assert_int_equal(n, strlen(text));
	return text;
}

static void test_each_type(void **state)
{
	static const uint8_t rst[4] = {0, 0, 0, 4};
	static const uint8_t inc[4] = {0x80, 0, 0x10, 0};
	static const uint8_t goaway[] = {0, 0, 0, 7, 0, 0, 0, 1, 'b', 'y', 'e'};

	(void)state;
	assert_string_equal(of(5, MR_FRAME_DATA, MR_FLAG_SYN, 3, "hello"),
			    "DATA stream=3 len=5 flags=SYN \"hello\"");
	assert_string_equal(of(0, MR_FRAME_DATA, MR_FLAG_FIN, 3, NULL),
			    "DATA stream=3 len=0 flags=FIN");
	assert_string_equal(of(0, MR_FRAME_DATA, 3, 5, NULL),
			    "DATA stream=5 len=0 flags=SYN|FIN");
	assert_string_equal(of(1, MR_FRAME_DATA, 0xC | MR_FLAG_FIN, 5, "x"),
			    "DATA stream=5 len=1 flags=FIN unknown_flags=0xc \"x\"");
	assert_string_equal(of(4, MR_FRAME_RST, 0, 9, rst),
			    "RST stream=9 code=4 (StreamClosed)");
	assert_string_equal(of(4, MR_FRAME_WNDINC, 0, 3, inc),
			    "WNDINC stream=3 increment=4096");
	assert_string_equal(of(sizeof(goaway), MR_FRAME_GOAWAY, 0, 0, goaway),
			    "GOAWAY last=7 code=1 (ProtocolError) debug=\"bye\"");
	assert_string_equal(of(3, 0xF, 0x2, 0, "abc"),
			    "UNKNOWN type=0xf stream=0 len=3");
	assert_string_equal(of(4, MR_FRAME_RST, 0, 9, "\0\0\x01\x00"),
			    "RST stream=9 code=256 (Unknown)");
}

static void test_escaping_and_preview(void **state)
{
	struct mr_frame_header h = {20, MR_FRAME_DATA, 0, 3};
	static const uint8_t body[20] = "a\"b\\c\x00\x7f\xff" "0123456789ab";

	(void)state;
	mr_frame_text(text, sizeof(text), &h, body, 20, 16);
	assert_string_equal(text, "DATA stream=3 len=20 "
				  "\"a\\\"b\\\\c\\x00\\x7f\\xff01234567\"...");
	mr_frame_text(text, sizeof(text), &h, body, 20, 0);
	assert_string_equal(text, "DATA stream=3 len=20");
	/* Fewer bytes given than the preview: those, and "...". */
	mr_frame_text(text, sizeof(text), &h, body, 3, 16);
	assert_string_equal(text, "DATA stream=3 len=20 \"a\\\"b\"...");
}

static void test_goaway_debug_in_part(void **state)
{
	static const uint8_t body[] = {0, 0, 0, 0, 0, 0, 0, 0, 'd', 'e', 'b',
				       'u', 'g'};
	struct mr_frame_header h = {200, MR_FRAME_GOAWAY, 0, 0};

	(void)state;
	mr_frame_text(text, sizeof(text), &h, body, sizeof(body), 16);
	assert_string_equal(text, "GOAWAY last=0 code=0 (NoError) "
				  "debug=\"debug\"...");
}

static void test_malformed_and_short_bodies(void **state)
{
	struct mr_frame_header h = {5, MR_FRAME_WNDINC, 0, 3};

	(void)state;
	mr_frame_text(text, sizeof(text), &h, (const uint8_t *)"12345", 5, 16);
	assert_string_equal(text, "WNDINC stream=3 len=5 malformed=8 "
				  "(FrameSizeError)");
	h = (struct mr_frame_header){4, MR_FRAME_DATA, 0, 0};
	mr_frame_text(text, sizeof(text), &h, (const uint8_t *)"zero", 4, 16);
	assert_string_equal(text, "DATA stream=0 len=4 malformed=1 "
				  "(ProtocolError)");
	/* Well formed, but only 2 of the RST's 4 body bytes are given. */
	h = (struct mr_frame_header){4, MR_FRAME_RST, 0, 5};
	mr_frame_text(text, sizeof(text), &h, (const uint8_t *)"\0\0", 2, 16);
	assert_string_equal(text, "RST stream=5 len=4");
	h = (struct mr_frame_header){8, MR_FRAME_GOAWAY, 0, 0};
	mr_frame_text(text, sizeof(text), &h, (const uint8_t *)"\0\0\0", 3, 16);
	assert_string_equal(text, "GOAWAY stream=0 len=8");
}

static void test_cut_at_the_array_end(void **state)
{
	struct mr_frame_header h = {5, MR_FRAME_DATA, MR_FLAG_SYN, 3};
	char small[8];

	(void)state;
	memset(small, 'X', sizeof(small));
	assert_int_equal(mr_frame_text(small, 5, &h,
				       (const uint8_t *)"hello", 5, 16), 4);
	assert_string_equal(small, "DATA");
	assert_int_equal(small[5], 'X'); /* nothing past the array */
	assert_int_equal(mr_frame_text(small, 1, &h,
				       (const uint8_t *)"hello", 5, 16), 0);
	assert_string_equal(small, "");
	memset(small, 'X', sizeof(small));
	assert_int_equal(mr_frame_text(small, 0, &h,
				       (const uint8_t *)"hello", 5, 16), 0);
	assert_int_equal(small[0], 'X');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_type),
		cmocka_unit_test(test_escaping_and_preview),
		cmocka_unit_test(test_goaway_debug_in_part),
		cmocka_unit_test(test_malformed_and_short_bodies),
		cmocka_unit_test(test_cut_at_the_array_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
