/*
 * vec_load.c - reads the hex captures of tests/vectors.
 *
 * The files are small except window-wndinc.client.hex (one 524304-digit
 * line), so a file is read whole into memory and decoded in one pass; the
 * decoded bytes are at most half the file's size.
 */
#include "vec_load.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

const char *const vec_scenarios[] = {
	"hello-echo",
	"stream-ids",
	"window-wndinc",
	"rst-stream-closed",
	"typed-stream",
	"heartbeat",
	"goaway-server",
	"goaway-debug-overread",
	"accept-backlog-overflow",
	"open-syn-fin-empty",
	"close-after-closewrite",
	"server-close-idle",
};
const size_t vec_nscenarios = sizeof(vec_scenarios) / sizeof(vec_scenarios[0]);

const char *vec_dir(void)
{
	const char *dir = getenv("MUXRING_VECTORS");

	return dir && *dir ? dir : "tests/vectors";
}

static int read_file(const char *path, char **out, size_t *out_len)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (cap - len < 65536) {
			char *bigger = realloc(text, cap + 65536 * 4);

			if (!bigger) {
				free(text);
				fclose(f);
				return -ENOMEM;
			}
			text = bigger;
			cap += 65536 * 4;
		}
		size_t got = fread(text + len, 1, cap - len, f);

		len += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*out = text;
	*out_len = len;
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int vec_load(const char *scenario, const char *side, struct vec_side *out)
{
	char path[4096];
	char *text = NULL;
	size_t text_len = 0, nlines = 0, pos = 0;
	int err;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/%s.%s.hex", vec_dir(), scenario, side);
	err = read_file(path, &text, &text_len);
	if (err)
		return err;
	for (size_t i = 0; i < text_len; i++)
		nlines += text[i] == '\n';
	if (text_len && text[text_len - 1] != '\n')
		nlines++;
	out->bytes = malloc(text_len / 2 + 1);
	out->frames = calloc(nlines + 1, sizeof(*out->frames));
	if (!out->bytes || !out->frames) {
		err = -ENOMEM;
		goto fail;
	}
	while (pos < text_len) {
		size_t start = out->len;
		struct vec_frame *fr = &out->frames[out->nframes];

		while (pos < text_len && text[pos] != '\n') {
			int hi = hex_digit(text[pos]);
			int lo = pos + 1 < text_len ? hex_digit(text[pos + 1]) : -1;

			if (hi < 0 || lo < 0) {
				err = -EINVAL;
				goto fail;
			}
			out->bytes[out->len++] = (uint8_t)(hi << 4 | lo);
			pos += 2;
		}
		pos++; /* the '\n' */
		fr->offset = start;
		fr->raw_len = out->len - start;
		out->nframes++;
	}
	/* Pointers last: bytes no longer moves. */
	for (size_t i = 0; i < out->nframes; i++) {
		struct vec_frame *fr = &out->frames[i];

		fr->raw = out->bytes + fr->offset;
		if (fr->raw_len >= MR_FRAME_HEADER_LEN)
			mr_frame_header_parse(fr->raw, &fr->hdr);
	}
	free(text);
	return 0;
fail:
	free(text);
	vec_side_free(out);
	return err;
}

void vec_must_load(const char *scenario, const char *side,
		   struct vec_side *out)
{
	int err = vec_load(scenario, side, out);

	if (err) {
		print_error("cannot load %s/%s.%s.hex: %s (set MUXRING_VECTORS "
			    "or run from the repository root)\n",
			    vec_dir(), scenario, side, strerror(-err));
		fail();
	}
}

void vec_side_free(struct vec_side *side)
{
	free(side->bytes);
	free(side->frames);
	memset(side, 0, sizeof(*side));
}
