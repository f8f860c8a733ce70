/*
 * session.h - the sans-I/O muxado protocol engine.
 *
 * A session is the whole protocol state of one end of one transport: stream
 * ids, SYN/FIN/RST, per-stream windows, the accept backlog, GOAWAY and error
 * codes. It never makes a system call and never reads a clock; its driver
 * (the io_uring loop, or a test) moves bytes and time through it:
 *
 *   bytes in   mr_session_recv()       any chunking, even one byte per call;
 *                                      DATA payloads go up as views into the
 *                                      caller's reference-counted buffer.
 *   bytes out  mr_session_tx_iov()     every pending frame of every stream as
 *              mr_session_tx_advance() iovecs; the driver says how many bytes
 *                                      the transport took.
 *   events     mr_session_poll_event() what the application must hear about.
 *   time       mr_session_expire()     deadlines, with `now` as an argument.
 *
 * Ownership, in one place:
 * - A stream handle (struct mr_stream *) given to the application in an
 *   event stays valid until the application has seen that stream's
 *   MR_EV_STREAM_CLOSED event and called mr_event_done() on it. Every stream
 *   that reaches the application gets exactly one such event, last.
 * - A view (MR_EV_DATA) holds a reference on its buffer and on its stream.
 *   mr_view_release() gives both back and credits the stream's receive
 *   window; it stays valid after the session is freed.
 * - Writes reference the caller's buffer until their MR_EV_WRITE_DONE.
 *
 * Engine errors are the negative values of include/muxring.h: MUXRING_ERR()
 * for muxado codes, -ENOMEM for allocation failure, -EINVAL for misuse.
 */
#ifndef MUXRING_SESSION_H
#define MUXRING_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "engine/buf.h"
#include "engine/flood_budget.h"
#include "muxring.h"

/* Every stream window starts here in both directions (PROTOCOL.md). */
#define MR_INITIAL_WINDOW 0x40000u

enum mr_role {
	MR_ROLE_CLIENT, /* dialled: opens odd ids 3, 5, 7, ... */
	MR_ROLE_SERVER, /* accepted: opens even ids 2, 4, 6, ... */
};

struct mr_config {
	/* Receive window granted to the peer per stream, in bytes; at least
	 * MR_INITIAL_WINDOW (the peer assumes that much). Larger values are
	 * granted with an extra WNDINC when the stream starts. */
	uint32_t window;
	/* Streams the peer opened that the application has not yet taken
	 * (mr_session_accept_done); a SYN beyond it gets RST AcceptQueueFull. */
	uint32_t accept_backlog;
	/* Concurrent streams, both directions together; a SYN beyond it gets
	 * RST StreamRefused, a local open fails with StreamRefused. */
	uint32_t max_streams;
	/* Bytes of a peer's GOAWAY debug text kept; the rest is dropped. */
	uint32_t goaway_debug_cap;
	/* Largest DATA payload this side emits in one frame; smaller frames
	 * interleave streams more finely. */
	uint32_t max_frame_payload;
	/* Control bytes (RST, WNDINC) waiting to be sent before the peer is
	 * considered abusive and the session fails with EnhanceYourCalm: a
	 * peer that provokes replies without reading them cannot make the
	 * queue grow without bound. */
	uint32_t max_control_backlog;
	/* Bytes the session may buffer (received and not yet released, plus
	 * written and not yet taken by the transport) before it stops
	 * crediting receive windows and refuses new streams; 0: no cap. The
	 * driver may lower it for a while (mr_session_set_buffer_limit). */
	uint64_t max_buffered;
	/* Typed streams: every stream starts with a 4-byte big-endian type;
	 * accepted streams report it and the application never sees it. */
	bool typed;
	/* How many frames that carry no application data (WNDINC, RST,
	 * resets of fresh streams, unknown types, empty DATA, DATA on closed
	 * streams, GOAWAY) the peer may send before the session fails with
	 * EnhanceYourCalm (flood_budget.h). */
	struct mr_flood_limits flood;
	/* The allocator of everything the session allocates; it must outlive
	 * the session and every buffer and stream it leaves behind. */
	const struct muxring_mem *mem;
};

/* The default of mr_config.max_buffered (and of the public session option). */
#define MR_DEFAULT_MAX_BUFFERED (64u << 20)

/* Fills in the defaults: window 256 KiB, backlog 128, 4096 streams, 1 MiB of
 * GOAWAY debug, 64 KiB frames, 1 MiB control backlog, 64 MiB buffered,
 * untyped, the flood budgets of mr_flood_limits_default(), libc's
 * allocator. */
void mr_config_default(struct mr_config *cfg);

enum mr_event_type {
	/* The peer opened `stream` (and, if typed, `stream_type` is set). The
	 * stream counts against the backlog until mr_session_accept_done(). */
	MR_EV_STREAM_ACCEPTED,
	/* `view` holds payload of `stream`; release it with mr_view_release(). */
	MR_EV_DATA,
	/* The peer half-closed `stream`: no more data will come. */
	MR_EV_EOF,
	/* A write finished: `result` is its length, or a negative error
	 * (the stream was reset, the session ended, the write deadline
	 * passed). `user_data` is the write's. */
	MR_EV_WRITE_DONE,
	/* A read or write deadline of `stream` passed (`deadline` says which).
	 * The stream stays open; pending writes failed with WriteTimeout. */
	MR_EV_DEADLINE,
	/* The last event of `stream`: `code` is MUXRING_NO_ERROR when both
	 * directions ended cleanly or it was closed locally, else why it
	 * ended (the peer's RST code, a local reset's code, the session's
	 * error). `result` is 0 for a clean end, else the negative error
	 * (MUXRING_ERR(code), or -errno when the transport failed). Holds a
	 * stream reference until mr_event_done(). */
	MR_EV_STREAM_CLOSED,
	/* A heartbeat's echo came back: `result` is the round-trip time in
	 * the driver's clock units (nanoseconds). */
	MR_EV_HEARTBEAT,
	/* No echo came within interval + tolerance. Beats go on; another
	 * failure is reported after another interval + tolerance of silence. */
	MR_EV_HEARTBEAT_FAILED,
	/* The peer sent GOAWAY (`code`); the session goes on, but opens now
	 * fail. Last id and debug text are in mr_session_result(). */
	MR_EV_GOAWAY,
	/* The session is over; see mr_session_result(). Always the very last
	 * event. */
	MR_EV_SESSION_ENDED,
};

/* Who ended a stream (MR_EV_STREAM_CLOSED). */
enum mr_close_reason {
	MR_CLOSE_CLEAN,         /* FIN both ways, or closed locally */
	MR_CLOSE_LOCAL_RESET,   /* this side sent RST (the app, or the engine
				   over a flow-control or protocol fault) */
	MR_CLOSE_PEER_RESET,    /* the peer's RST */
	MR_CLOSE_GONE_AWAY,     /* above the last id of the peer's GOAWAY */
	MR_CLOSE_SESSION_ENDED, /* the whole session ended */
};

enum mr_deadline_kind {
	MR_DEADLINE_READ = 1,
	MR_DEADLINE_WRITE = 2,
};

struct mr_stream;
struct mr_session;
struct muxring_engine;

/* The public engine (include/muxring_engine.h, engine_api.c) is the
 * session itself: its handle is this struct, cast. */
static inline struct muxring_engine *mr_engine_of_session(struct mr_session *s)
{
	return (struct muxring_engine *)s;
}

static inline struct mr_session *mr_session_of_engine(struct muxring_engine *e)
{
	return (struct mr_session *)e;
}

/* The SESSION_ENDED entry of an engine that has ended, as
 * muxring_engine_poll() gave it (engine_api.c): the io_uring driver polls
 * it when the engine ends but posts it once the transport is closed, and
 * makes it again then instead of keeping a copy in every session. */
struct muxring_cqe;
void mr_engine_ended_entry(struct muxring_engine *engine,
			   struct muxring_cqe *cqe);

/* And its reference-counted buffers are struct mr_buf. */
struct muxring_engine_buf;
static inline struct muxring_engine_buf *mr_engine_buf_of(struct mr_buf *b)
{
	return (struct muxring_engine_buf *)b;
}

struct mr_view {
	struct mr_stream *stream; /* holds a reference */
	struct mr_buf *buf;       /* holds a reference */
	const uint8_t *data;      /* points into buf (or into a copy) */
	size_t len;
};

struct mr_event {
	enum mr_event_type type;
	struct mr_stream *stream; /* NULL for MR_EV_SESSION_ENDED */
	struct mr_view view;      /* MR_EV_DATA */
	int64_t result;           /* MR_EV_WRITE_DONE: bytes or error;
				     MR_EV_STREAM_CLOSED: 0 or the error */
	uint64_t user_data;       /* MR_EV_WRITE_DONE */
	uint32_t code;            /* MR_EV_STREAM_CLOSED, MR_EV_GOAWAY */
	enum mr_close_reason close_reason; /* MR_EV_STREAM_CLOSED */
	uint32_t stream_type;     /* MR_EV_STREAM_ACCEPTED on typed sessions */
	enum mr_deadline_kind deadline; /* MR_EV_DEADLINE */
};

/* The session's final result, like the reference's Wait(). */
struct mr_session_result {
	int local_error;          /* negative: why this side ended (muxado code
				     via MUXRING_ERR, or -errno of the transport) */
	uint32_t remote_code;     /* the peer's GOAWAY: its code */
	uint32_t remote_last_id;  /* its last stream id */
	bool remote_goaway;       /* a GOAWAY came from the peer */
	const char *local_reason; /* the debug text of the GOAWAY this side sent
				     when it failed the session (a protocol
				     fault, a flood), else NULL; static */
	const uint8_t *remote_debug; /* its debug text, up to the cap; owned by
					the session */
	size_t remote_debug_len;
};

/*
 * Creates a session. cfg NULL means the defaults. Returns NULL when memory
 * is exhausted or cfg is invalid (window below MR_INITIAL_WINDOW, zero
 * backlog, streams or frame payload).
 */
struct mr_session *mr_session_new(enum mr_role role,
				  const struct mr_config *cfg);

/*
 * Frees the session, its queues and every stream. Events still queued are
 * dropped (their references given back). Streams the application still
 * references through views stay allocated until those are released, but no
 * longer belong to any session.
 */
void mr_session_free(struct mr_session *sess);

/* Payload pieces shorter than this may be merged into their stream's
 * queued DATA event (copied into the stream's block); longer ones are
 * events of their own: views into the caller's buffer, or exact copies
 * with MR_RECV_COPY. */
#define MR_RX_VIEW_MIN 1024u
/* A stream's block starts this big and doubles up to the maximum. */
#define MR_RX_BLOCK_MIN 1024u
#define MR_RX_BLOCK_MAX (16u << 10)

/* Flags for mr_session_recv. */
#define MR_RECV_COPY 0x1u /* copy payloads out; keep no reference on buf */

/*
 * Feeds `len` bytes that arrived from the transport at `data`, which lies
 * inside `buf`. Payload pieces of MR_RX_VIEW_MIN bytes or more are handed up
 * as views into buf (MR_EV_DATA events), each holding its own reference; the
 * caller keeps its own reference and drops it when it likes. With
 * MR_RECV_COPY each such piece is copied into a heap buffer of exactly its
 * size instead, so that buf can be reused at once (the driver does this
 * when its receive ring runs low). A lone smaller piece is a view too (a
 * copy in its stream's block with MR_RECV_COPY); further small pieces of a
 * stream whose DATA event was not polled yet are merged into that event,
 * copied into the stream's block: memory and events follow bytes, not
 * frames.
 *
 * Returns 0, or the negative error that ended the session (the event queue
 * then holds the closing events and mr_session_tx_iov the GOAWAY).
 * Bytes fed after the session ended are ignored.
 */
int mr_session_recv(struct mr_session *sess, struct mr_buf *buf,
		    const uint8_t *data, size_t len, unsigned flags);

/*
 * The transport will deliver nothing more: error 0 means end-of-file (the
 * session ends with PeerEOF), a negative errno a transport failure.
 */
void mr_session_recv_end(struct mr_session *sess, int error);

/*
 * Fills up to max_iov iovecs with the bytes to send next, at most about
 * max_bytes of them (control frames and the frame being cut are never
 * split for it). Returns the number of iovecs filled, 0 when there is
 * nothing to send. The memory stays valid and unchanged until
 * mr_session_tx_advance() says it was sent; calling again before that
 * returns the same bytes (and possibly more after them).
 */
size_t mr_session_tx_iov(struct mr_session *sess, struct iovec *iov,
			 size_t max_iov, size_t max_bytes);

/* The transport took `sent` bytes of what mr_session_tx_iov described. */
void mr_session_tx_advance(struct mr_session *sess, size_t sent);

/* True while frames wait to be sent. Drops streams that no longer have
 * anything to send from the head of the ready list, hence not const. */
bool mr_session_tx_pending(struct mr_session *sess);

/*
 * True once the session has ended and everything it still had to say
 * (typically a GOAWAY) is sent: the driver may now shut the transport down
 * (SHUT_WR, drain, close). After a transport failure the queued bytes can
 * never leave: the driver then waits only for its send in flight, whose
 * iovecs point into the engine's memory, before freeing the session.
 */
bool mr_session_done(const struct mr_session *sess);

/* Takes the next event; false when there is none. */
bool mr_session_poll_event(struct mr_session *sess, struct mr_event *ev);

/*
 * The application is finished with an event: gives back what it held
 * (the stream reference of MR_EV_STREAM_CLOSED). Views of MR_EV_DATA are
 * given back separately with mr_view_release.
 */
void mr_event_done(struct mr_event *ev);

/* The application took an accepted stream: it leaves the accept backlog. */
void mr_session_accept_done(struct mr_session *sess);

/* Gives back a view and credits its bytes to the stream's receive window;
 * WNDINC is sent when a quarter of the window has been consumed, unless the
 * session is at its cap on buffered bytes (then when it is back under 3/4
 * of it). */
void mr_view_release(struct mr_view *view);

/*
 * Opens a stream. Nothing is sent until the first write or close-write
 * (or, on a typed session, at once: the type goes out with the SYN).
 * Errors: MUXRING_ERR(MUXRING_REMOTE_GONE_AWAY) after the peer's GOAWAY,
 * MUXRING_ERR(MUXRING_STREAMS_EXHAUSTED) when ids ran out,
 * MUXRING_ERR(MUXRING_SESSION_CLOSED) after the session ended,
 * MUXRING_ERR(MUXRING_STREAM_REFUSED) at max_streams, -ENOMEM, -EINVAL
 * for MR_HEARTBEAT_TYPE on a typed session (that type is the engine's).
 */
int mr_session_open(struct mr_session *sess, uint32_t stream_type,
		    struct mr_stream **out);

/* Sets the id the next mr_session_open takes (it must have this side's
 * parity). For tests and tools that need to reach the end of the id space
 * without opening two billion streams. */
void mr_session_set_next_stream_id(struct mr_session *sess, uint32_t id);

/* GOAWAYs mr_session_goaway sends in one session at most: well under a
 * peer's GOAWAY flood budget (muxring's default is 8), so that this side,
 * however often its application calls, never reads as a flood. */
#define MR_GOAWAYS_SENT_MAX 4

/*
 * Sends GOAWAY(code, debug) and refuses the peer's new streams from now on;
 * streams already open go on. After MR_GOAWAYS_SENT_MAX of them a call
 * sends nothing more and returns 0 (new streams stay refused). Errors:
 * -EINVAL if debug_len is above MR_FRAME_MAX_LEN - 8,
 * MUXRING_ERR(MUXRING_SESSION_CLOSED) if the session ended, -ENOMEM.
 */
int mr_session_goaway(struct mr_session *sess, uint32_t code,
		      const void *debug, size_t debug_len);

/*
 * Ends the session: GOAWAY(code, debug), then every stream closes with
 * SessionClosed and the session with local error SessionClosed. Frames not
 * yet started are dropped; debug text beyond what a frame holds is cut.
 * Returns 0 or -ENOMEM (the session still ends).
 */
int mr_session_close(struct mr_session *sess, uint32_t code,
		     const void *debug, size_t debug_len);

/* True once the session has ended (MR_EV_SESSION_ENDED is due). */
bool mr_session_ended(const struct mr_session *sess);

/* Its final result; meaningful once ended. */
const struct mr_session_result *mr_session_result(const struct mr_session *sess);

/*
 * Fires the deadlines that are due at `now` (any monotonic clock the caller
 * uses consistently, in nanoseconds). Returns the next deadline still to
 * come, or 0 when none.
 */
uint64_t mr_session_expire(struct mr_session *sess, uint64_t now);

/* The earliest deadline set, or 0 when none. */
uint64_t mr_session_next_deadline(const struct mr_session *sess);

/*
 * Tells the engine the time (the clock of mr_session_expire, ns). The
 * driver calls it once per loop turn before feeding input, so that
 * heartbeat echoes are timed without the engine reading a clock.
 */
void mr_session_set_now(struct mr_session *sess, uint64_t now);

/* The stream type reserved for heartbeats (PROTOCOL.md). */
#define MR_HEARTBEAT_TYPE 0xFFFFFFFFu

/*
 * Starts this side's heartbeat on a typed session: opens the heartbeat
 * stream (type MR_HEARTBEAT_TYPE) at once and, every `interval` ns from
 * now, writes a random 32-bit value that the peer echoes (MR_EV_HEARTBEAT
 * with the round-trip time); MR_EV_HEARTBEAT_FAILED when no echo comes for
 * interval + tolerance. `seed` feeds the value generator. Heartbeat frames
 * jump ahead of stream data. Whatever side started it, echoing the peer's
 * heartbeat stream is always on for typed sessions.
 * Errors: -EINVAL on an untyped session or a zero interval, -EALREADY when
 * already started, the errors of mr_session_open.
 */
int mr_session_heartbeat_start(struct mr_session *sess, uint64_t interval,
			       uint64_t tolerance, uint64_t seed);

/* Changes interval and tolerance of a running heartbeat; the next beat is
 * due one new interval after the last. -EINVAL if not started or zero. */
int mr_session_heartbeat_configure(struct mr_session *sess, uint64_t interval,
				   uint64_t tolerance);

/* Sends one beat now (its echo is reported like any other). -EINVAL if the
 * heartbeat was not started, -ENOMEM. */
int mr_session_heartbeat_beat(struct mr_session *sess);

/* Counters of what crossed the transport, and gauges of the memory the
 * session holds because of it (the values now, and high-water marks). */
struct mr_session_stats {
	uint64_t frames_in, frames_out;
	uint64_t bytes_in, bytes_out;
	uint64_t streams_opened, streams_accepted;
	/* Writes accepted whose memory is still held, now: their payload
	 * bytes, and the memory they hold (write records, batch blocks, and
	 * the buffer of each single write, counted once per write that
	 * shares it: an upper bound). */
	uint64_t write_bytes_queued;
	uint64_t write_memory;
	uint64_t rx_view_bytes;      /* payload bytes in views not yet released
					(queued events or held by the app) */
	uint64_t rx_view_bytes_max;
	uint64_t rx_copy_bytes;      /* heap bytes of copied payloads (blocks
					and large copies), while referenced */
	uint64_t rx_copy_bytes_max;
	uint64_t tx_queued_bytes;    /* bytes written, not yet taken by the
					transport */
	uint64_t events_queued;      /* events waiting to be polled */
	uint64_t events_queued_max;
	uint64_t credit_stalls;      /* times crediting stopped at the cap */
};
void mr_session_stats(const struct mr_session *sess,
		      struct mr_session_stats *out);

/* What counts against max_buffered: rx_view_bytes + tx_queued_bytes. */
uint64_t mr_session_buffered(const struct mr_session *sess);

/*
 * Sets the cap on buffered bytes (0: none) in place of cfg.max_buffered, as
 * a driver does when several sessions share a budget. Lowering it takes
 * effect with the next credit; raising it grants at once what was held
 * back (WNDINC frames are queued).
 */
void mr_session_set_buffer_limit(struct mr_session *sess, uint64_t limit);

/* The session's own cap on buffered bytes (cfg.max_buffered; 0: none). */
uint64_t mr_session_max_buffered(const struct mr_session *sess);

/*
 * Queues `len` bytes at `data` (inside `buf`) to be written on the stream;
 * the engine holds a reference on buf until MR_EV_WRITE_DONE with
 * `user_data`. len 0 is allowed (it completes once the SYN, if any, is
 * out), and then buf may be NULL.
 * Errors: MUXRING_ERR(MUXRING_STREAM_CLOSED) after close-write or close,
 * the stream's reset code, MUXRING_ERR(MUXRING_SESSION_CLOSED) once the
 * session ended, -ENOMEM.
 */
int mr_stream_write(struct mr_stream *stream, struct mr_buf *buf,
		    const uint8_t *data, size_t len, uint64_t user_data);
/* The write just queued by mr_stream_write() reports no WRITE_DONE, neither
 * success nor failure (a failure still shows as the stream's end). */
void mr_stream_write_silence(struct mr_stream *stream);

/* Largest write mr_stream_write_copy packs into a batch block. */
#define MR_BATCH_WRITE_MAX (16u << 10)

/*
 * Queues a copy of `len` bytes at `data` (at most MR_BATCH_WRITE_MAX) on
 * the stream. Consecutive small writes of a stream are packed back to back
 * into batch blocks of the session's allocator: a waiting write costs its
 * bytes plus 16 (consecutive writes of the same length and user_data
 * share those 16), writes waiting together leave in one frame, and each
 * still gets its own MR_EV_WRITE_DONE with its user_data, unless `silent`
 * (then it reports none, neither success nor failure). Errors: as
 * mr_stream_write, and -EINVAL when len is above MR_BATCH_WRITE_MAX.
 */
int mr_stream_write_copy(struct mr_stream *stream, const void *data,
			 size_t len, uint64_t user_data, bool silent);

/* Half-closes: FIN after every queued write. Closing, half-closing or
 * resetting a stream that is already over (finished, or its session ended)
 * does nothing and returns 0. */
int mr_stream_close_write(struct mr_stream *stream);

/*
 * Closes both directions: FIN if not yet queued, and data still arriving is
 * answered with RST StreamClosed. MR_EV_STREAM_CLOSED (NoError) follows once
 * the queued writes are sent.
 */
int mr_stream_close(struct mr_stream *stream);

/* Sends RST(code); queued writes fail with MUXRING_ERR(code), or with
 * StreamReset when code is NoError. */
int mr_stream_reset(struct mr_stream *stream, uint32_t code);

/* Absolute deadlines in the clock of mr_session_expire; 0 clears. Setting
 * one on a stream that is over does nothing. Returns 0, or -ENOMEM (the
 * first deadline of a stream allocates its record). */
int mr_stream_set_deadline(struct mr_stream *stream,
			   enum mr_deadline_kind kind, uint64_t when);

/* The driver's pointer for the session. */
void mr_session_set_user(struct mr_session *sess, void *user);
void *mr_session_user(const struct mr_session *sess);

uint32_t mr_stream_id(const struct mr_stream *stream);
void mr_stream_set_user(struct mr_stream *stream, void *user);
void *mr_stream_user(const struct mr_stream *stream);
/* The session, or NULL once the session was freed. */
struct mr_session *mr_stream_session(const struct mr_stream *stream);

#endif
