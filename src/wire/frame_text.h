/*
 * frame_text.h - one line of text per frame, as muxdump prints it.
 *
 * The same words serve muxdump (a capture, after the fact) and the loop's
 * frame tracer (a live session), so a trace reads like a dump and the two
 * can be compared line for line. Formatting is the codec's job: it needs
 * only the header and the first bytes of the body, and no I/O (the text is
 * built in the caller's array, without stdio).
 */
#ifndef MUXRING_FRAME_TEXT_H
#define MUXRING_FRAME_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "wire/frame.h"

/* Text bytes (NUL included) always enough for a frame of which at most
 * `shown` body bytes are printed: fields, then 4 chars per escaped byte. */
#define MR_FRAME_TEXT_MAX(shown) (160u + 4u * (size_t)(shown))

/* The payload bytes muxdump shows of a DATA frame by default. */
#define MR_FRAME_TEXT_PREVIEW 16u

/*
 * Writes the frame's line without offset and newline, e.g.
 *	DATA stream=3 len=5 flags=SYN "hello"
 *	RST stream=5 code=4 (StreamClosed)
 *	WNDINC stream=3 increment=5
 *	GOAWAY last=0 code=0 (NoError) debug="no error"
 *	UNKNOWN type=0xf stream=0 len=0
 * and for a header that breaks a framing rule (mr_frame_header_check)
 *	WNDINC stream=3 len=5 malformed=8 (FrameSizeError)
 * `body` holds the first `body_len` bytes of the frame's body (at most
 * hdr->length). DATA shows up to `preview` payload bytes, GOAWAY all of
 * the debug text it is given; either ends with "..." when more bytes exist
 * than it shows. An RST, WNDINC or GOAWAY given fewer bytes than its fixed
 * part prints as `TYPE stream=N len=L` only. Output longer than cap - 1 is
 * cut there; out is always NUL-terminated when cap > 0. Returns the length
 * of the text written.
 */
size_t mr_frame_text(char *out, size_t cap, const struct mr_frame_header *hdr,
		     const uint8_t *body, size_t body_len, size_t preview);

#endif
