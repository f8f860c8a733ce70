/*
 * muxdump - print the frames of a muxado byte stream, one line each.
 *
 * Reads what one side of a session wrote (a raw capture, or the hex lines
 * of tests/vectors/NAME.side.hex with -x) and decodes every frame with the
 * library's own codec, so what it prints is what a muxring peer would see
 * (the words are the codec's mr_frame_text, which the loop's frame tracer,
 * MUXRING_TRACE, prints too):
 *
 *	$ build/muxdump -x tests/vectors/hello-echo.client.hex
 *	0	DATA stream=3 len=5 flags=SYN "hello"
 *	13	DATA stream=3 len=0 flags=FIN
 *	21	WNDINC stream=3 increment=5
 *	33	GOAWAY last=0 code=0 (NoError) debug="no error"
 *
 * Each line is: byte offset, frame type, its fields, and for DATA up to
 * --preview bytes of payload (default 16) as an escaped string. A frame that
 * breaks a framing rule is printed with `malformed=CODE` (the error a
 * receiver fails the session with). Exit status: 0 when the input ends on a
 * frame boundary and every frame is well formed, 1 otherwise, 2 on usage
 * errors.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "wire/frame.h"
#include "wire/frame_text.h"

static const char usage_text[] =
	"usage: muxdump [-x] [--preview N] [FILE]\n"
	"  Prints every muxado frame in FILE (default: standard input).\n"
	"  -x           the input is hex text, as tests/vectors/*.hex\n"
	"  --preview N  show up to N payload bytes of each DATA frame (default 16;\n"
"               decimal or 0x hex)\n";

struct input {
	uint8_t *bytes;
	size_t len;
};

static int read_all(FILE *in, struct input *out)
{
	size_t cap = 1 << 16;

	out->bytes = malloc(cap);
	out->len = 0;
	if (!out->bytes)
		return -ENOMEM;
	for (;;) {
		size_t n = fread(out->bytes + out->len, 1, cap - out->len, in);

		out->len += n;
		if (out->len < cap)
			return ferror(in) ? -EIO : 0;
		cap *= 2;
		uint8_t *bigger = realloc(out->bytes, cap);

		if (!bigger)
			return -ENOMEM;
		out->bytes = bigger;
	}
}

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex digits in place; white space separates nothing. */
static int decode_hex(struct input *in)
{
	size_t i, n = 0;
	int high = -1;

	for (i = 0; i < in->len; i++) {
		int v = hex_value(in->bytes[i]);

		if (v < 0) {
			if (in->bytes[i] == '\n' || in->bytes[i] == ' ' ||
			    in->bytes[i] == '\r' || in->bytes[i] == '\t')
				continue;
			return -EINVAL;
		}
		if (high < 0) {
			high = v;
		} else {
			in->bytes[n++] = (uint8_t)(high << 4 | v);
			high = -1;
		}
	}
	if (high >= 0)
		return -EINVAL;
	in->len = n;
	return 0;
}

/* A line buffer that grows to the longest frame text printed so far. */
struct line {
	char *text;
	size_t cap;
};

/* Prints one whole frame whose body is at `body`, in the codec's words.
 * Returns 0, or -ENOMEM. */
static int print_frame(struct line *line, size_t offset,
		       const struct mr_frame_header *hdr, const uint8_t *body,
		       size_t preview)
{
	size_t shown = hdr->type == MR_FRAME_GOAWAY ? hdr->length
		       : hdr->length < preview ? hdr->length : preview;
	size_t need = MR_FRAME_TEXT_MAX(shown);

	if (need > line->cap) {
		char *bigger = realloc(line->text, need);

		if (!bigger)
			return -ENOMEM;
		line->text = bigger;
		line->cap = need;
	}
	mr_frame_text(line->text, line->cap, hdr, body, hdr->length, preview);
	printf("%zu\t%s\n", offset, line->text);
	return 0;
}

/* Returns 0 when every frame was whole and well formed. */
static int dump(const struct input *in, size_t preview)
{
	struct line line = {NULL, 0};
	size_t offset = 0;
	int status = 0;

	while (offset < in->len) {
		struct mr_frame_header hdr;
		size_t rest = in->len - offset;

		if (rest < MR_FRAME_HEADER_LEN ||
		    (mr_frame_header_parse(in->bytes + offset, &hdr),
		     rest - MR_FRAME_HEADER_LEN < hdr.length)) {
			printf("%zu\ttruncated: %zu bytes left\n", offset, rest);
			status = 1;
			break;
		}
		if (mr_frame_header_check(&hdr))
			status = 1;
		if (print_frame(&line, offset, &hdr,
				in->bytes + offset + MR_FRAME_HEADER_LEN,
				preview)) {
			fputs("muxdump: out of memory\n", stderr);
			status = 1;
			break;
		}
		offset += MR_FRAME_HEADER_LEN + hdr.length;
	}
	free(line.text);
	return status;
}

static int parse_args(int argc, char **argv, bool *hex, size_t *preview,
		      const char **path)
{
	static const struct option longopts[] = {
		{"preview", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "xh", longopts, NULL)) != -1) {
		uint64_t n;

		switch (c) {
		case 'x':
			*hex = true;
			break;
		case 'P':
			if (!cli_parse_number(optarg, 0, 1u << 24, &n))
				return -1;
			*preview = (size_t)n;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (argc - optind > 1)
		return -1;
	*path = optind < argc ? argv[optind] : NULL;
	return 0;
}

int main(int argc, char **argv)
{
	struct input in;
	const char *path;
	size_t preview = MR_FRAME_TEXT_PREVIEW;
	bool hex = false;
	FILE *file = stdin;
	int err, status;

	if (parse_args(argc, argv, &hex, &preview, &path)) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (path && !(file = fopen(path, "rb"))) {
		fprintf(stderr, "muxdump: %s: %s\n", path, strerror(errno));
		return 2;
	}
	err = read_all(file, &in);
	if (file != stdin)
		fclose(file);
	if (!err && hex)
		err = decode_hex(&in);
	if (err) {
		fprintf(stderr, "muxdump: cannot read input: %s\n",
			err == -EINVAL ? "not hex text" : strerror(-err));
		free(in.bytes);
		return 2;
	}
	status = dump(&in, preview);
	free(in.bytes);
	return status;
}
