/*
 * trace.h - the loop's frame tracer (MUXRING_TRACE, muxring_loop_opts.trace).
 *
 * The tracer watches bytes, not the engine: it reads what each receive
 * completion brought and what each send completion says the kernel took,
 * before the loop hands those completions on, and cuts each direction of
 * each session into frames with its own small scanner. So the engine and
 * the per-frame paths carry no tracing code at all; when tracing is off the
 * loop pays one test of loop->tracer per batch of kernel completions.
 */
#ifndef MUXRING_TRACE_H
#define MUXRING_TRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <liburing.h>

#include "wire/frame.h"
#include "muxring.h"

struct muxring_loop;

/* Body bytes kept per frame for its text: a DATA preview, an RST's or
 * WNDINC's word, a GOAWAY's fixed part and 120 bytes of its debug text. */
#define MR_TRACE_KEEP 128u

/* Where one direction of a session stands in its byte stream. */
struct mr_trace_scan {
	uint64_t offset;            /* bytes of this direction seen so far */
	struct mr_frame_header hdr; /* of the frame being read */
	uint32_t body_seen;         /* of hdr.length */
	uint8_t head_have;          /* header bytes gathered (0..8) */
	bool lost;                  /* a malformed header: no frames after it
				       can be trusted, so none are traced */
	uint8_t head[MR_FRAME_HEADER_LEN];
	uint8_t body[MR_TRACE_KEEP];/* the first body bytes */
};

/* A traced session's state (struct muxring_session.trace). */
struct mr_trace_session {
	uint64_t id;
	struct mr_trace_scan dir[2]; /* by enum muxring_trace_dir */
};

struct mr_tracer {
	muxring_trace_fn *fn;
	void *arg;
	FILE *file;     /* the MUXRING_TRACE sink (fn is then the writer) */
	bool own_file;  /* file was opened here (not stderr) */
	const struct muxring_mem *mem; /* the loop's allocator */
};

/*
 * The loop's tracer from its options and the environment: *out is NULL
 * when tracing is off. Returns 0, -ENOMEM, or the error of opening the
 * MUXRING_TRACE file (the sentence for muxring_loop_create_error() is
 * written to why).
 */
int mr_tracer_create(const struct muxring_loop_opts *opts,
		     const struct muxring_mem *mem, struct mr_tracer **out,
		     char *why, size_t why_len);
void mr_tracer_free(struct mr_tracer *t);

/* A session's scanner state (NULL when out of memory: not traced). */
struct mr_trace_session *mr_trace_session_new(const struct mr_tracer *t,
					      uint64_t id);

/*
 * Traces what the `n` kernel completions from `head` in the ring's
 * completion queue carry for sessions (received bytes, bytes the kernel
 * took from a send). Called before they are dispatched, so the receive
 * buffers and send slots they name are still in place.
 */
void mr_trace_cqes(struct muxring_loop *loop, unsigned head, unsigned n);

#endif
