/*
 * frame_text.c - the one-line text of a frame (muxdump's format).
 *
 * Built with a few appenders over the caller's array instead of snprintf:
 * the wire layer stays free of stdio, and the tracer calls this once per
 * frame without a format string to interpret. Appenders cut at the array's
 * end and keep it NUL-terminated, so no input can write past it.
 */
#include "wire/frame_text.h"

#include <stdbool.h>

#include "wire/codes.h"

struct text {
	char *p;
	size_t len;
	size_t cap; /* > 0: room for the NUL */
};

static void put_char(struct text *t, char c)
{
	if (t->len + 1 < t->cap)
		t->p[t->len++] = c;
	t->p[t->len] = '\0';
}

static void put_str(struct text *t, const char *s)
{
	while (*s)
		put_char(t, *s++);
}

static void put_u64(struct text *t, uint64_t v)
{
	char digits[20];
	int n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		put_char(t, digits[--n]);
}

static void put_hex_digit(struct text *t, unsigned v)
{
	put_char(t, "0123456789abcdef"[v & 0xF]);
}

/* `key=value` with a leading space. */
static void put_field(struct text *t, const char *key, uint64_t value)
{
	put_char(t, ' ');
	put_str(t, key);
	put_char(t, '=');
	put_u64(t, value);
}

static void put_code(struct text *t, const char *key, uint32_t code)
{
	put_field(t, key, code);
	put_str(t, " (");
	put_str(t, mr_code_name(code));
	put_char(t, ')');
}

/* Bytes as a C-like string: printable ASCII as is, `"` and `\` escaped,
 * the rest as \xNN; "..." after the quote when `more` bytes were left out. */
static void put_escaped(struct text *t, const uint8_t *p, size_t len, bool more)
{
	size_t i;

	put_char(t, '"');
	for (i = 0; i < len; i++) {
		if (p[i] == '"' || p[i] == '\\') {
			put_char(t, '\\');
			put_char(t, (char)p[i]);
		} else if (p[i] >= 0x20 && p[i] < 0x7F) {
			put_char(t, (char)p[i]);
		} else {
			put_str(t, "\\x");
			put_hex_digit(t, p[i] >> 4);
			put_hex_digit(t, p[i]);
		}
	}
	put_char(t, '"');
	if (more)
		put_str(t, "...");
}

static const char *type_name(uint8_t type)
{
	switch (type) {
	case MR_FRAME_RST: return "RST";
	case MR_FRAME_DATA: return "DATA";
	case MR_FRAME_WNDINC: return "WNDINC";
	case MR_FRAME_GOAWAY: return "GOAWAY";
	default: return "UNKNOWN";
	}
}

static void put_data(struct text *t, const struct mr_frame_header *hdr,
		     const uint8_t *body, size_t body_len, size_t preview)
{
	static const char *const flag_names[] = {"", "FIN", "SYN", "SYN|FIN"};
	size_t shown = body_len < preview ? body_len : preview;

	put_field(t, "stream", hdr->stream_id);
	put_field(t, "len", hdr->length);
	if (hdr->flags & 3) {
		put_str(t, " flags=");
		put_str(t, flag_names[hdr->flags & 3]);
	}
	if (hdr->flags & ~3u) {
		put_str(t, " unknown_flags=0x");
		put_hex_digit(t, hdr->flags & ~3u);
	}
	if (hdr->length && preview) {
		put_char(t, ' ');
		put_escaped(t, body, shown, hdr->length > shown);
	}
}

static void put_goaway(struct text *t, const struct mr_frame_header *hdr,
		       const uint8_t *body, size_t body_len)
{
	put_field(t, "last", mr_get_be32(body) & MR_STREAM_ID_MASK);
	put_code(t, "code", mr_get_be32(body + 4));
	put_str(t, " debug=");
	put_escaped(t, body + MR_GOAWAY_FIXED_LEN,
		    body_len - MR_GOAWAY_FIXED_LEN, hdr->length > body_len);
}

/* The size of the fixed part of a well-formed frame's body. */
static size_t fixed_body_len(uint8_t type)
{
	switch (type) {
	case MR_FRAME_RST: return MR_RST_BODY_LEN;
	case MR_FRAME_WNDINC: return MR_WNDINC_BODY_LEN;
	case MR_FRAME_GOAWAY: return MR_GOAWAY_FIXED_LEN;
	default: return 0;
	}
}

size_t mr_frame_text(char *out, size_t cap, const struct mr_frame_header *hdr,
		     const uint8_t *body, size_t body_len, size_t preview)
{
	struct text t = {out, 0, cap};
	uint32_t malformed = mr_frame_header_check(hdr);

	if (!cap)
		return 0;
	if (body_len > hdr->length)
		body_len = hdr->length;
	put_str(&t, type_name(hdr->type));
	if (malformed || body_len < fixed_body_len(hdr->type)) {
		put_field(&t, "stream", hdr->stream_id);
		put_field(&t, "len", hdr->length);
		if (malformed)
			put_code(&t, "malformed", malformed);
	} else if (hdr->type == MR_FRAME_DATA) {
		put_data(&t, hdr, body, body_len, preview);
	} else if (hdr->type == MR_FRAME_RST) {
		put_field(&t, "stream", hdr->stream_id);
		put_code(&t, "code", mr_get_be32(body));
	} else if (hdr->type == MR_FRAME_WNDINC) {
		put_field(&t, "stream", hdr->stream_id);
		put_field(&t, "increment", mr_frame_wndinc_increment(body));
	} else if (hdr->type == MR_FRAME_GOAWAY) {
		put_goaway(&t, hdr, body, body_len);
	} else {
		put_str(&t, " type=0x");
		put_hex_digit(&t, hdr->type);
		put_field(&t, "stream", hdr->stream_id);
		put_field(&t, "len", hdr->length);
	}
	return t.len;
}
