/*
 * engine_harness.h - drive the sans-I/O engine (src/engine/session.h) from a test.
 *
 * An eh wraps one session and plays its transport and its application:
 *
 *   eh_feed()   hands bytes to mr_session_recv in chunks of a chosen size,
 *               each chunk copied into a fresh heap mr_buf (so a view that
 *               outlives its buffer is an ASan error, not a silent pass);
 *   eh_flush()  drains mr_session_tx_iov/tx_advance (optionally a few bytes
 *               per advance, to exercise partial sends) and records every
 *               byte the session emitted in eh.tx;
 *   events      are polled after every chunk and flush and kept in eh.ev,
 *               with the stream id captured at poll time, until eh_free();
 *               the handle of every stream therefore stays valid for the
 *               whole test (no STREAM_CLOSED is mr_event_done'd early).
 *
 * eh_free() releases every view still held, mr_event_done()s every event and
 * frees the session, so a test that forgets nothing leaks nothing.
 *
 * eh_bytes builds hand-made wire input; eh_frames splits emitted bytes back
 * into frames with the codec; eh_pipe wires two harnesses to each other.
 * Failures go through cmocka (the helpers may only be called inside a test).
 */
#ifndef MUXRING_TEST_ENGINE_HARNESS_H
#define MUXRING_TEST_ENGINE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/frame.h"
#include "engine/session.h"

/* Matches any stream id in the event queries. */
#define EH_ANY UINT32_MAX

/* ---- hand-made wire bytes --------------------------------------------- */

struct eh_bytes {
	uint8_t *p;
	size_t len, cap;
};

void eh_bytes_put(struct eh_bytes *b, const void *data, size_t len);
/* A raw header; `id` is written as given (all 32 bits, so the reserved bit
 * can be set) and `length` as its low 24 bits. */
void eh_bytes_header(struct eh_bytes *b, uint32_t length, uint8_t type,
		     uint8_t flags, uint32_t id);
void eh_bytes_data(struct eh_bytes *b, uint32_t id, uint8_t flags,
		   const void *payload, size_t len);
void eh_bytes_rst(struct eh_bytes *b, uint32_t id, uint32_t code);
void eh_bytes_wndinc(struct eh_bytes *b, uint32_t id, uint32_t increment);
void eh_bytes_goaway(struct eh_bytes *b, uint32_t last_id, uint32_t code,
		     const void *debug, size_t debug_len);
void eh_bytes_free(struct eh_bytes *b);

/* ---- frames parsed back from bytes ------------------------------------ */

struct eh_frame {
	struct mr_frame_header hdr;
	const uint8_t *raw;  /* header + body, inside the parsed bytes */
	const uint8_t *body;
	size_t offset;       /* of raw in the parsed bytes */
};

struct eh_frames {
	struct eh_frame *v;
	size_t n;
};

/* Splits `len` bytes into whole frames; fails the test if the bytes end
 * inside a frame. The frames point into `bytes`. */
void eh_frames_parse(const uint8_t *bytes, size_t len, struct eh_frames *out);
void eh_frames_free(struct eh_frames *f);
/* Removes every frame of `type` (e.g. MR_FRAME_WNDINC). */
void eh_frames_drop_type(struct eh_frames *f, uint8_t type);
/* Number of frames of `type` on stream `id` (EH_ANY: every stream). */
size_t eh_frames_count(const struct eh_frames *f, uint8_t type, uint32_t id);
/* The nth (0-based) frame of `type` on stream `id` (EH_ANY: any), or NULL. */
const struct eh_frame *eh_frames_find(const struct eh_frames *f, uint8_t type,
				      uint32_t id, size_t nth);
/* Sum of WNDINC increments for stream `id`. */
uint64_t eh_frames_wndinc_sum(const struct eh_frames *f, uint32_t id);
/* Fails the test, printing both lists, unless the two are byte-identical. */
void eh_assert_frames_equal(const struct eh_frames *got,
			    const struct eh_frames *want, const char *what);
/* One line describing the frame ("DATA SYN stream=3 len=5 ..."). */
const char *eh_frame_str(const struct eh_frame *f, char *out, size_t cap);

/* ---- one engine ------------------------------------------------------- */

struct eh;

/*
 * Called for every event as it is polled. Return true when the callback has
 * taken the event over (it then releases the view and calls mr_event_done
 * itself); false to have it stored in eh.ev like any other.
 */
typedef bool (*eh_event_fn)(struct eh *h, struct mr_event *ev, void *ctx);

struct eh_ev {
	struct mr_event ev;
	uint32_t id;         /* the stream's id when polled; 0 for SESSION_ENDED */
	bool released;       /* MR_EV_DATA: the view was given back */
	uint8_t *copy;       /* MR_EV_DATA: the payload, copied when polled,
				so it can be checked after the release */
	uint64_t seq;        /* order of polling, across the whole harness */
};

struct eh {
	struct mr_session *sess;
	enum mr_role role;
	struct mr_config cfg;

	uint8_t *tx;         /* bytes emitted (since the last eh_tx_clear) */
	size_t tx_len, tx_cap;
	size_t tx_fed;       /* bytes of tx a pipe has delivered to the peer */
	bool record_tx;      /* keep tx after a pipe delivered it (default) */
	size_t tx_step;      /* most bytes per mr_session_tx_advance; 0: all */
	size_t tx_max_iov;   /* iovecs asked per mr_session_tx_iov (def. 64) */
	uint64_t tx_total;   /* every byte ever emitted */

	struct eh_ev *ev;    /* events kept, in order */
	size_t nev, ev_cap;
	uint64_t ev_seq;

	bool auto_accept;    /* mr_session_accept_done at once (default) */
	unsigned recv_flags; /* passed to mr_session_recv */
	int recv_rc;         /* first non-zero mr_session_recv result */
	size_t bufs_fed;     /* mr_bufs handed to mr_session_recv */

	eh_event_fn on_event;
	void *ctx;
};

/* A session with cfg (NULL: defaults); fails the test when it cannot. */
struct eh *eh_new(enum mr_role role, const struct mr_config *cfg);
/* Releases every held view, mr_event_done()s every kept event, frees. */
void eh_free(struct eh *h);

/*
 * Feeds `len` bytes in chunks of `chunk` bytes (0: all in one), each in its
 * own heap mr_buf whose caller reference is dropped right after
 * mr_session_recv. Events are polled after each chunk. Returns the first
 * non-zero mr_session_recv result (also kept in recv_rc), else 0.
 */
int eh_feed(struct eh *h, const void *data, size_t len, size_t chunk);
int eh_feed_bytes(struct eh *h, const struct eh_bytes *b, size_t chunk);

/* Drains every byte the session offers into tx, then polls. Returns the
 * number of bytes drained. */
size_t eh_flush(struct eh *h);
/* Polls every queued event. */
void eh_poll(struct eh *h);
/* Forgets the recorded tx bytes (a test then sees only what comes next). */
void eh_tx_clear(struct eh *h);
/* Flushes, then parses every recorded tx byte into frames. */
void eh_tx_frames(struct eh *h, struct eh_frames *out);

/* Opens a stream and fails the test unless it worked. */
struct mr_stream *eh_open(struct eh *h);
/* mr_stream_write of a heap copy of data (the harness drops its own
 * reference at once, so the engine's is the only one). */
int eh_write(struct mr_stream *s, const void *data, size_t len, uint64_t ud);

/* ---- event queries (on the kept events) -------------------------------- */

size_t eh_count(const struct eh *h, enum mr_event_type type, uint32_t id);
/* The nth (0-based) kept event of type on stream id, or NULL. */
struct eh_ev *eh_find(struct eh *h, enum mr_event_type type, uint32_t id,
		      size_t nth);
/* The stream handle from the STREAM_ACCEPTED event for id, or NULL. */
struct mr_stream *eh_accepted(struct eh *h, uint32_t id);
/* Copies up to cap bytes of the payload received on id (all MR_EV_DATA
 * events, in order, released or not: the harness keeps a copy); returns
 * the total length. */
size_t eh_data(const struct eh *h, uint32_t id, uint8_t *out, size_t cap);
/* Fails the test unless stream id received exactly these bytes. */
void eh_assert_data(const struct eh *h, uint32_t id, const void *want,
		    size_t len);
/* Releases the views still held on id (EH_ANY: all), oldest first, until at
 * least max_bytes were released (SIZE_MAX: all). Returns bytes released. */
size_t eh_release(struct eh *h, uint32_t id, size_t max_bytes);
/* Fails unless exactly one STREAM_CLOSED came for id; returns its code. */
uint32_t eh_closed_code(struct eh *h, uint32_t id);
/* Fails unless exactly one WRITE_DONE came with user_data; its result. */
int64_t eh_write_result(struct eh *h, uint64_t user_data);
/* Fails unless the session ended: exactly one SESSION_ENDED, the last event. */
void eh_assert_ended(struct eh *h);
/* Fails unless no event of the stream follows its STREAM_CLOSED and no
 * stream has more than one STREAM_CLOSED. */
void eh_assert_stream_events_well_formed(struct eh *h);

/* ---- two engines wired to each other ------------------------------------ */

struct eh_pipe {
	struct eh *a, *b;
	/* Chunk size for the next feed (0: everything at once); NULL: 0. */
	size_t (*chunk)(void *ctx);
	void *ctx;
};

/* Moves what each side emitted to the other once; true if anything moved. */
bool eh_pipe_step(struct eh_pipe *p);
/* Steps until nothing moves any more (fails after a very large number). */
void eh_pipe_run(struct eh_pipe *p);

/* ---- misc --------------------------------------------------------------- */

/* The MUXRING_ERR value of a muxado code, as int64_t for WRITE_DONE. */
static inline int64_t eh_err(uint32_t code)
{
	return (int64_t)MUXRING_ERR(code);
}

/* Printable: every byte is ASCII 0x20..0x7e and there is at least one. */
bool eh_is_readable_text(const uint8_t *p, size_t len);

#endif
