/*
 * muxring.h - the muxado stream-multiplexing protocol over io_uring.
 *
 * This is the header of the io_uring API, the only one its users include.
 * (muxring_engine.h, the sans-I/O engine for those who drive muxado over
 * their own transport, includes this one for the vocabulary both share.)
 * Every public name starts with muxring_ (functions, types) or MUXRING_
 * (constants).
 *
 * Errors are values. Functions return 0 or a non-negative count on success
 * and a negative number on failure, which is one of:
 *   -errno                 a system error (-ENOMEM, -ECONNRESET, ...);
 *   MUXRING_ERR(code)      a muxado error code (enum muxring_code), encoded
 *                          below -MUXRING_ERR_BASE so it never collides with
 *                          an errno value. muxring_err_code() decodes it.
 * muxring_strerror() describes either kind.
 */
#ifndef MUXRING_H
#define MUXRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MUXRING_API __attribute__((visibility("default")))

/* The muxado error codes carried by RST and GOAWAY frames (PROTOCOL.md),
 * also used locally to say why an operation failed. */
enum muxring_code {
	MUXRING_NO_ERROR = 0,
	MUXRING_PROTOCOL_ERROR = 1,
	MUXRING_INTERNAL_ERROR = 2,
	MUXRING_FLOW_CONTROL_ERROR = 3,
	MUXRING_STREAM_CLOSED = 4,
	MUXRING_STREAM_REFUSED = 5,
	MUXRING_STREAM_CANCELLED = 6,
	MUXRING_STREAM_RESET = 7,
	MUXRING_FRAME_SIZE_ERROR = 8,
	MUXRING_ACCEPT_QUEUE_FULL = 9,
	MUXRING_ENHANCE_YOUR_CALM = 10,
	MUXRING_REMOTE_GONE_AWAY = 11,
	MUXRING_STREAMS_EXHAUSTED = 12,
	MUXRING_WRITE_TIMEOUT = 13,
	MUXRING_SESSION_CLOSED = 14,
	MUXRING_PEER_EOF = 15,
	MUXRING_ERROR_UNKNOWN = 0xFF,
};

#define MUXRING_ERR_BASE 0x10000

/* The negative return value that stands for muxado code `code`. Codes above
 * 0xFFFF (a peer may send any 32-bit value) are reported as
 * MUXRING_ERROR_UNKNOWN; entries that carry a peer's code keep it whole. */
static inline int MUXRING_ERR(uint32_t code)
{
	return -(MUXRING_ERR_BASE + (int)(code > 0xFFFF ? MUXRING_ERROR_UNKNOWN
							: code));
}

/* True when err (a negative return value) carries a muxado code. */
static inline bool muxring_is_code(int err)
{
	return err <= -MUXRING_ERR_BASE && err > -2 * MUXRING_ERR_BASE;
}

/* The muxado code carried by err, or MUXRING_ERROR_UNKNOWN when err is an
 * errno value. */
static inline uint32_t muxring_err_code(int err)
{
	return muxring_is_code(err) ? (uint32_t)(-err - MUXRING_ERR_BASE)
				    : MUXRING_ERROR_UNKNOWN;
}

/* The name of a muxado code ("ProtocolError", ...), or "Unknown". */
MUXRING_API const char *muxring_code_name(uint32_t code);

/* A human-readable description of a negative return value: a muxado code's
 * meaning or strerror()'s text for an errno value. Never NULL; the string is
 * static (but for errno values it may be shared with strerror). */
MUXRING_API const char *muxring_strerror(int err);

/* ======================================================================
 * Overview
 *
 * A loop (struct muxring_loop) owns one io_uring and is used from one
 * thread. It drives any number of sessions: a session is muxado over one
 * connected socket, carrying any number of streams. Nothing happens in the
 * background: work is queued by the calls below and carried out, in one
 * io_uring_enter per step, by muxring_submit_and_wait(); what finished comes
 * back as completion entries (struct muxring_cqe) in the loop's completion
 * queue, in the manner of liburing:
 *
 *	for (;;) {
 *		struct muxring_cqe *cqes[64];
 *		unsigned i, n;
 *
 *		muxring_submit_and_wait(loop, 1, -1);
 *		n = muxring_peek_batch_cqe(loop, cqes, 64);
 *		for (i = 0; i < n; i++)
 *			handle(cqes[i]);     // may write, close, open, ...
 *		muxring_cq_advance(loop, n);
 *	}
 *
 * Lifetimes, in one place:
 * - A session handle is valid from its creation until the application
 *   advances past its MUXRING_CQE_SESSION_ENDED entry. Every session gets
 *   exactly one SESSION_READY entry first and exactly one SESSION_ENDED
 *   entry last (none after it for the session or its streams).
 * - A stream handle is valid from muxring_stream_open() (or its
 *   STREAM_ACCEPTED entry) until the application advances past its
 *   MUXRING_CQE_STREAM_CLOSED entry, which every stream gets exactly once,
 *   as its last entry.
 * - A listener handle is valid until the application advances past its
 *   MUXRING_CQE_LISTENER_CLOSED entry.
 * - A DATA entry's view belongs to the application from the moment it is
 *   peeked, and must be released exactly once with muxring_view_release(),
 *   before or after advancing (copy the struct muxring_view to keep it).
 *   Releasing it gives the bytes back to the receive-buffer ring and credits
 *   the stream's receive window: a view that is never released stops its
 *   stream once the window is used up (the other streams go on).
 * - Entry pointers from muxring_peek_batch_cqe() are valid until
 *   muxring_cq_advance() passes them or the next muxring_submit_and_wait()
 *   (or muxring_submit(), muxring_wait_cqe()), which may move entries not
 *   yet advanced. No other call adds or moves entries.
 * - All views must be released before muxring_loop_destroy(), or their
 *   memory is freed only when they are.
 *
 * Memory bound (README "Memory"): a payload piece of 1 KiB or more, or a
 * lone smaller one, reaches the application as a view into the loop's
 * receive ring (or, when the ring runs low, into a copy); further small
 * pieces of a stream that arrive before its DATA entry is handed out are
 * merged into that entry, copied side by side into a block of the stream
 * (1 KiB, doubling up to 16 KiB): one DATA entry per stream and turn for
 * them, however many frames carried them. So an application that holds every view it is
 * given holds per stream at most its receive window of payload
 * (muxring_session_opts.window, 256 KiB by default) plus one partly filled
 * block (16 KiB), whatever the frame sizes, and finds a few entries per
 * stream and turn waiting, never one per frame. muxring_stats counts it
 * (recv_view_bytes, recv_copy_bytes, events_queued_max). What a session and
 * a loop buffer in all is capped by their max_buffered options.
 * ====================================================================== */

struct muxring_loop;
struct muxring_session;
struct muxring_stream;
struct muxring_listener;
struct muxring_filter;

/* ---------------------------------------------------------------------- */
/* Loop                                                                    */
/* ---------------------------------------------------------------------- */

/* Kernel features the loop can use (muxring_loop_features()), and that
 * muxring_loop_opts.disable can turn off to force the fallback path. */
#define MUXRING_FEAT_SINGLE_ISSUER   (1u << 0) /* IORING_SETUP_SINGLE_ISSUER */
#define MUXRING_FEAT_DEFER_TASKRUN   (1u << 1) /* IORING_SETUP_DEFER_TASKRUN */
#define MUXRING_FEAT_COOP_TASKRUN    (1u << 2) /* IORING_SETUP_COOP_TASKRUN */
#define MUXRING_FEAT_RECV_MULTISHOT  (1u << 3) /* else one recv at a time */
#define MUXRING_FEAT_ACCEPT_MULTISHOT (1u << 4) /* else one accept at a time */
#define MUXRING_FEAT_EXT_ARG         (1u << 5) /* wait timeouts in io_uring_enter
						  (always there on supported
						  kernels; cannot be disabled) */
#define MUXRING_FEAT_SEND_ARENA_REG  (1u << 6) /* send arena registered */
#define MUXRING_FEAT_SEND_ZC         (1u << 7) /* large batches leave with
						  IORING_OP_SENDMSG_ZC (only
						  when asked for with
						  MUXRING_LOOP_SEND_ZC) */
#define MUXRING_FEAT_SEND_QUIET      (1u << 8) /* a send copied whole into
						  the loop's own buffer, with
						  nothing queued behind it,
						  posts no completion
						  (IOSQE_CQE_SKIP_SUCCESS),
						  so the enter that submits
						  it waits for the answer
						  instead of waking for it */
#define MUXRING_FEAT_FIXED_FILES     (1u << 9) /* session sockets in the
						  ring's file table
						  (IOSQE_FIXED_FILE): no
						  file lookup per operation */
#define MUXRING_FEAT_SQPOLL          (1u << 10) /* a kernel thread takes the
						  submissions (only when
						  asked for with
						  MUXRING_LOOP_SQPOLL) */
#define MUXRING_FEAT_RECV_BUNDLE     (1u << 11) /* a receive fills as many
						  ring buffers as the socket
						  has bytes for, in one
						  completion
						  (IORING_RECVSEND_BUNDLE,
						  Linux 6.10); sessions
						  without a filter only */

/* muxring_loop_opts.flags */
#define MUXRING_LOOP_SEND_ZC 0x1u /* send large batches with kernel
				     zero-copy (SENDMSG_ZC, Linux 6.1): the
				     pages are handed to the NIC instead of
				     copied; the send completes only when the
				     kernel lets go of them (for TCP, once
				     the peer acknowledged the data), so it
				     pays off for big transfers over real
				     networks, not on loopback */
#define MUXRING_LOOP_SQPOLL 0x2u  /* a kernel thread polls the submission
				     queue (IORING_SETUP_SQPOLL): a turn that
				     does not wait makes no system call at
				     all. The cost: that thread spins on a CPU
				     while there is work and for
				     MUXRING_SQPOLL_IDLE_MS after it, one per
				     loop, and the loop gives up DEFER_TASKRUN
				     and quiet sends (MUXRING_FEAT_SEND_QUIET)
				     for it; worth it only with a CPU to spare
				     per loop */
#define MUXRING_SQPOLL_IDLE_MS 2u

/*
 * Frame tracing: every frame each session of a loop sends or receives,
 * reported as it goes (muxring_loop_opts.trace, or the environment variable
 * MUXRING_TRACE). A frame counts as sent once the kernel took all of its
 * bytes, as received once all of its bytes arrived, so a trace shows what
 * was on the wire, in wire order per direction.
 */
enum muxring_trace_dir {
	MUXRING_TRACE_SEND = 0,
	MUXRING_TRACE_RECV = 1,
};

/* One traced frame; valid only during the callback. */
struct muxring_trace_frame {
	struct muxring_session *session; /* whose frame it is */
	uint64_t session_id;   /* 1, 2, ... in the order the loop created its
				  sessions (muxring_loop_stats' `sessions`) */
	uint64_t time_ns;      /* CLOCK_MONOTONIC (muxring_now_ns()) of the
				  loop turn that completed the frame */
	enum muxring_trace_dir dir;
	uint64_t offset;       /* of the frame's first header byte, counted
				  from the session's first byte this way */
	uint32_t stream_id;    /* reserved bit masked off */
	uint32_t length;       /* body bytes */
	uint8_t type;          /* 0 RST, 1 DATA, 2 WNDINC, 3 GOAWAY, 4..15 */
	uint8_t flags;         /* the low nibble of the header's byte 3 */
	const char *text;      /* muxdump's words for the frame, e.g.
				  `DATA stream=3 len=5 flags=SYN "hello"`
				  (16 payload bytes at most; GOAWAY debug
				  text up to 120 bytes) */
};

/* Called for every traced frame, from inside muxring_submit_and_wait() on
 * the loop's thread; it must not call into the loop. */
typedef void muxring_trace_fn(const struct muxring_trace_frame *frame,
			      void *arg);

/*
 * Writes the frame's trace line into out (cap bytes, NUL-terminated; cut
 * if longer), without a newline. Tab-separated: time in seconds with
 * microseconds, session, direction, then exactly muxdump's line (offset and
 * text), so `cut -f4-` of one session's send lines is muxdump's output:
 *	12.345678	session=1	send	0	DATA stream=3 len=5 flags=SYN "hello"
 * This is the line MUXRING_TRACE writes. Returns the length the whole line
 * has (as snprintf: cap - 1 or more means it was cut).
 */
MUXRING_API int muxring_trace_line(const struct muxring_trace_frame *frame,
				   char *out, size_t cap);

/*
 * An allocator for muxring_loop_opts.mem, in the manner of nghttp2_mem:
 * every allocation the loop, its sessions, streams and buffers make goes
 * through these functions (the large receive ring and send arena are
 * mapped with mmap, and getaddrinfo allocates inside libc). Each function
 * gets `user` as its last argument and has the meaning of its libc
 * namesake; any of them may return NULL, which the library survives: the
 * call that needed the memory fails with -ENOMEM, or the session it was
 * for ends with -ENOMEM in its SESSION_ENDED entry, and the loop goes on.
 */
struct muxring_mem {
	void *user;
	void *(*malloc)(size_t size, void *user);
	void (*free)(void *ptr, void *user);
	void *(*calloc)(size_t nmemb, size_t size, void *user);
	void *(*realloc)(void *ptr, size_t size, void *user);
};

/*
 * Options of muxring_loop_create(). Every field left 0 takes its default;
 * a NULL options pointer means all defaults.
 */
struct muxring_loop_opts {
	/* Submission queue entries (default 256, at most 32768). The
	 * kernel's completion queue is made four times larger, since
	 * multishot receives post many. A loop with thousands of sessions
	 * wants more: when more sessions than that answer in one turn, the
	 * completion queue overflows (nothing is lost, but the kernel then
	 * allocates for every completion until the loop catches up). */
	unsigned sq_entries;
	/* Receive buffers in the provided-buffer ring shared by every
	 * session of the loop (default 256; at least 2, rounded up to a
	 * power of two, at most 32768), and the size of each (default
	 * 32 KiB). The ring is one arena of recv_buffers * recv_buffer_size
	 * bytes, resident from the loop's creation (its pages are faulted in
	 * then, not on the receive path). */
	unsigned recv_buffers;
	unsigned recv_buffer_size;
	/* Free ring buffers below which received payloads are copied to the
	 * heap instead of being handed up as views into the ring (default
	 * recv_buffers / 4, at least 1, below recv_buffers). See "Memory" in
	 * the README: views held by the application can never pin more than
	 * recv_buffers - recv_low_water ring buffers. */
	unsigned recv_low_water;
	/* The registered send arena (muxring_buf_get()): total bytes (default
	 * 4 MiB) and the size of each buffer in it (default 64 KiB). */
	size_t send_arena_size;
	unsigned send_buffer_size;
	/* Completion entries allocated at first (default 1024); the queue
	 * doubles when full, never shrinks. */
	unsigned cq_entries;
	/* How long an ended session waits, in all, for its last bytes to
	 * leave and then for the peer's end-of-file after shutting its
	 * sending direction down, in milliseconds (default 1000); then the
	 * socket is closed, so a peer that stops reading cannot keep it. */
	unsigned linger_ms;
	/* MUXRING_FEAT_* bits not to use even if the kernel has them (tests
	 * and benchmarks of the fallback paths). The environment variable
	 * MUXRING_DISABLE_FEATURES (a number, 0x... allowed) adds bits. */
	unsigned disable;
	/* MUXRING_LOOP_* bits: features to ask for that are off by default. */
	unsigned flags;
	/* Frame tracing: when set, trace(frame, trace_arg) is called for every
	 * frame sent and received by every session of the loop (see struct
	 * muxring_trace_frame). When NULL, the environment variable
	 * MUXRING_TRACE decides: unset, empty or "0" is off; "1" writes
	 * muxring_trace_line()s to stderr; anything else is a file name the
	 * lines are appended to. Off, tracing costs one predictable branch per
	 * batch of kernel completions, nothing per frame. Sessions created
	 * while memory is short are not traced. */
	muxring_trace_fn *trace;
	void *trace_arg;
	/* The allocator of everything the loop allocates (NULL: libc's
	 * malloc, calloc, realloc and free). The loop keeps the pointer: the
	 * struct and its functions must stay valid until the loop is
	 * destroyed and every view released. */
	const struct muxring_mem *mem;
	/* Cap on the bytes all sessions of the loop buffer together (as
	 * muxring_session_opts.max_buffered counts them; default 512 MiB,
	 * SIZE_MAX: no cap). Above it each session is held to an equal share
	 * (this cap / live sessions) as its own cap, so sessions that buffer
	 * more stop crediting and the others go on, until the total is back
	 * under 3/4 of the cap. */
	size_t max_buffered;
	/* Busy polling: before a wait blocks, the loop asks the kernel for
	 * completions without sleeping, again and again, for up to this many
	 * microseconds (default 0: it blocks at once; at most 1,000,000). An
	 * answer that arrives within that time is picked up without the
	 * scheduler's wake-up, which on a request/response exchange is most
	 * of the latency (see "Latency" in the README). The cost: the loop's
	 * thread keeps its CPU busy for that long every time it would have
	 * slept, so it pays off only with a CPU to spare per loop, as SQPOLL.
	 * Enters that only look count in muxring_stats.busy_polls, not in
	 * enters. */
	unsigned busy_poll_us;
};

/*
 * Creates a loop: sets up the io_uring (with SINGLE_ISSUER and
 * DEFER_TASKRUN when the kernel has them), probes the kernel's features,
 * registers the receive-buffer ring and the send arena. opts may be NULL.
 * On success *loopp is set and 0 returned. The loop must be used from one
 * thread at a time (the one that created it, with SINGLE_ISSUER).
 *
 * Errors: -ENOSYS (the kernel has no io_uring, or a seccomp profile hides
 * it), -EPERM (io_uring is disabled by sysctl kernel.io_uring_disabled, or
 * forbidden by a seccomp/LSM profile, or restricted to a group this process
 * is not in), -ENOMEM, -EINVAL (an option out of range), -EOPNOTSUPP (the
 * kernel is too old: provided-buffer rings need Linux 5.19), or the error
 * of opening the MUXRING_TRACE file (e.g. -ENOENT, -EACCES). In every case
 * muxring_loop_create_error() then returns a sentence naming the cause and
 * what to do about it.
 */
MUXRING_API int muxring_loop_create(struct muxring_loop **loopp,
				    const struct muxring_loop_opts *opts);

/*
 * Why the last muxring_loop_create() of the calling thread failed, as one
 * human-readable sentence (e.g. "io_uring is disabled by sysctl
 * kernel.io_uring_disabled=2; set it to 0 ..."). "" after a success. The
 * string is thread-local and valid until the next muxring_loop_create() in
 * this thread.
 */
MUXRING_API const char *muxring_loop_create_error(void);

/*
 * Destroys the loop and everything it owns at once: every session's socket
 * is closed without lingering (no GOAWAY is sent; close sessions first for a
 * clean end), every listener is closed, entries not yet advanced are
 * dropped (their views released), the io_uring is torn down. Handles of the
 * loop's sessions, streams and listeners become invalid. Views the
 * application still holds stay readable until released. NULL is ignored.
 */
MUXRING_API void muxring_loop_destroy(struct muxring_loop *loop);

/* The MUXRING_FEAT_* bits in use on this loop. */
MUXRING_API unsigned muxring_loop_features(const struct muxring_loop *loop);

/* CLOCK_MONOTONIC now, in nanoseconds: the clock of deadlines. */
MUXRING_API uint64_t muxring_now_ns(void);

/* ---------------------------------------------------------------------- */
/* Completion queue                                                        */
/* ---------------------------------------------------------------------- */

enum muxring_cqe_type {
	/* The session is ready: connected (muxring_connect), accepted (from
	 * a listener: `listener` is set), or created on an fd; with a
	 * transport filter (TLS), once its handshake is done. res 0; for a
	 * connect or a handshake that failed, res is the negative error and
	 * SESSION_ENDED follows. user_data: the session's. */
	MUXRING_CQE_SESSION_READY = 1,
	/* The peer opened `stream`. code: its type on a typed session.
	 * user_data: the session's (the stream has none yet; set one with
	 * muxring_stream_set_data()). */
	MUXRING_CQE_STREAM_ACCEPTED,
	/* Bytes arrived on `stream`: `view` holds them (res = view.len > 0).
	 * Release the view with muxring_view_release(). Small pieces of a
	 * stream that arrive in one turn are handed up together, one entry
	 * however many frames carried them (see "Memory bound" above). */
	MUXRING_CQE_DATA,
	/* The peer half-closed `stream`: no more DATA will come. res 0. */
	MUXRING_CQE_EOF,
	/* A write finished: res is its length, or a negative error
	 * (MUXRING_ERR(code) when the stream was reset or closed, the session
	 * ended, or the write deadline passed: MUXRING_WRITE_TIMEOUT).
	 * user_data: the write's. */
	MUXRING_CQE_WRITE_DONE,
	/* A deadline of `stream` passed; code: MUXRING_DEADLINE_READ or
	 * MUXRING_DEADLINE_WRITE. The stream stays open; its pending writes
	 * failed (WriteTimeout) when it was the write deadline. Set a new
	 * deadline to go on waiting. */
	MUXRING_CQE_DEADLINE,
	/* The last entry of `stream`: code is MUXRING_NO_ERROR when both
	 * directions ended cleanly or it was closed locally, else why it
	 * ended (the peer's RST code with MUXRING_CQE_F_REMOTE, a local
	 * reset's code, or the session's error). res: 0, or
	 * MUXRING_ERR(code). The handle is invalid once advanced past. */
	MUXRING_CQE_STREAM_CLOSED,
	/* The peer's GOAWAY arrived (the session may go on: streams the peer
	 * already accepted continue, new opens fail with RemoteGoneAway).
	 * code: its error code; view: its debug text (no release needed,
	 * valid until advanced past). */
	MUXRING_CQE_GOAWAY,
	/* The last entry of the session: its transport is closed. res: the
	 * local error, negative (MUXRING_ERR(MUXRING_SESSION_CLOSED) after
	 * muxring_session_close(), MUXRING_ERR(MUXRING_PEER_EOF) when the peer
	 * closed the transport, MUXRING_ERR(code) of a protocol failure,
	 * -errno of the transport (-ENOMEM included, when the kernel had no
	 * memory for it), -ENOMEM when an allocation the session needed
	 * failed (it sends GOAWAY InternalError "out of memory" if it can),
	 * or -EBUSY when the ring took no submission the session needed).
	 * A session ended by -ENOMEM may have lost entries that found no
	 * memory (DATA, WRITE_DONE, EOF, ...), never its streams'
	 * STREAM_CLOSED entries or this one. With MUXRING_CQE_F_REMOTE the peer sent a
	 * GOAWAY: code is its code and view its debug text (no release
	 * needed, valid until advanced past). Without it, when a transport
	 * filter (TLS) failed, view holds its cause in words. `reason` says
	 * why this side ended it when the peer was at fault (e.g.
	 * EnhanceYourCalm and which flood budget it spent).
	 * user_data: the session's. */
	MUXRING_CQE_SESSION_ENDED,
	/* The listener is closed: res 0 after muxring_listener_close(), or the
	 * negative error that stopped it. user_data: the listener's. */
	MUXRING_CQE_LISTENER_CLOSED,
	/* A heartbeat echo came back (muxring_session_heartbeat()): res is
	 * the round-trip time in nanoseconds. user_data: the session's. */
	MUXRING_CQE_HEARTBEAT,
	/* No heartbeat echo came within interval + tolerance: res is
	 * -ETIMEDOUT. Beats go on; the session is not ended by this. */
	MUXRING_CQE_HEARTBEAT_FAILED,
	/* A descriptor watched with muxring_poll_fd() is ready: res is the
	 * poll mask that happened (POLLIN, POLLOUT, POLLHUP, ...) or a
	 * negative error. user_data: the call's. session and stream are
	 * NULL. (Watches still pending at muxring_loop_destroy() end
	 * silently.) */
	MUXRING_CQE_POLL,
};

/* muxring_cqe.flags */
#define MUXRING_CQE_F_REMOTE 0x1u /* STREAM_CLOSED: reset by the peer;
				     SESSION_ENDED: the peer sent GOAWAY */

/* muxring_cqe.code of MUXRING_CQE_DEADLINE; bits for
 * muxring_stream_set_deadline(). */
#define MUXRING_DEADLINE_READ  0x1u
#define MUXRING_DEADLINE_WRITE 0x2u

/* Bytes handed to the application. `data` and `len` are the bytes; the rest
 * is what the view holds (a receive buffer and the stream), given back by
 * muxring_view_release(). A view may be copied by value; release one copy
 * exactly once. */
struct muxring_view {
	const uint8_t *data;
	size_t len;
	void *priv_[2];
};

/*
 * One completion entry. Fields not listed for a type are 0/NULL.
 * For entries of a stream (DATA, EOF, DEADLINE, STREAM_CLOSED) user_data is
 * the stream's user data as it was when the entry was queued: entries that
 * arrived in the same turn as a STREAM_ACCEPTED still carry 0 even after
 * the application set the data while handling the STREAM_ACCEPTED;
 * muxring_stream_data(cqe->stream) always gives the current value.
 */
struct muxring_cqe {
	uint64_t user_data;   /* see each type */
	int64_t res;          /* bytes, or a negative error (see top of file) */
	uint16_t type;        /* enum muxring_cqe_type */
	uint16_t flags;       /* MUXRING_CQE_F_* */
	uint32_t code;        /* muxado code, stream type or deadline kind */
	struct muxring_session *session;   /* all but LISTENER_CLOSED, POLL */
	struct muxring_stream *stream;     /* stream entries */
	struct muxring_listener *listener; /* SESSION_READY of an accepted
					      session; LISTENER_CLOSED */
	struct muxring_view view;          /* DATA; GOAWAY/SESSION_ENDED debug */
	/* SESSION_ENDED: why this side ended the session when it did so over
	 * the peer's conduct, as one static sentence (the debug text of the
	 * GOAWAY it sent: a protocol fault, or which flood budget was
	 * spent); NULL otherwise (muxring_strerror(res) then describes it). */
	const char *reason;
};

/* The user_data of an entry as a pointer (it was given as one). */
static inline void *muxring_cqe_get_data(const struct muxring_cqe *cqe)
{
	return (void *)(uintptr_t)cqe->user_data;
}

/*
 * Carries out one or more turns of the loop: submits everything queued by
 * earlier calls (sends of every session with pending frames, receives to
 * re-arm, timers) in one io_uring_enter, processes what the kernel
 * completed and turns it into entries, and repeats until at least
 * min_entries entries are ready (not yet advanced past) or timeout_ns
 * nanoseconds have passed. timeout_ns < 0 waits without limit; 0 never
 * blocks (one enter that only submits and reaps). min_entries 0 never
 * blocks either.
 *
 * Returns the number of entries ready, which is below min_entries only when
 * the timeout passed or a signal interrupted the wait (then it returns
 * -EINTR if no entry is ready, so the caller can check its signal flags).
 * Other errors: -errno of io_uring_enter (e.g. -ENOMEM).
 */
MUXRING_API int muxring_submit_and_wait(struct muxring_loop *loop,
					unsigned min_entries,
					int64_t timeout_ns);

/* Submits without waiting; same as muxring_submit_and_wait(loop, 0, 0). */
MUXRING_API int muxring_submit(struct muxring_loop *loop);

/* Entries ready to be peeked (not yet advanced past). */
MUXRING_API unsigned muxring_cq_ready(const struct muxring_loop *loop);

/*
 * Fills cqes with pointers to up to `count` ready entries, oldest first,
 * and returns how many. Does not consume them: muxring_cq_advance() does.
 * Never enters the kernel.
 */
MUXRING_API unsigned muxring_peek_batch_cqe(struct muxring_loop *loop,
					    struct muxring_cqe **cqes,
					    unsigned count);

/* The oldest ready entry in *cqe and 0, or -EAGAIN when there is none. */
MUXRING_API int muxring_peek_cqe(struct muxring_loop *loop,
				 struct muxring_cqe **cqe);

/*
 * Waits (as muxring_submit_and_wait(loop, 1, timeout_ns)) and then peeks
 * the oldest entry. Returns 0 with *cqe set, -ETIME when the timeout
 * passed, -EINTR, or another error of muxring_submit_and_wait.
 */
MUXRING_API int muxring_wait_cqe(struct muxring_loop *loop,
				 struct muxring_cqe **cqe, int64_t timeout_ns);

/*
 * Consumes the `nr` oldest entries. Advancing past an entry is when its
 * handle ends (STREAM_CLOSED: the stream; SESSION_ENDED: the session;
 * LISTENER_CLOSED: the listener) and when an accepted stream leaves the
 * session's accept backlog (STREAM_ACCEPTED). DATA views are not released
 * by this. nr above muxring_cq_ready() is clamped.
 */
MUXRING_API void muxring_cq_advance(struct muxring_loop *loop, unsigned nr);

/* Consumes one entry, which must be the oldest (liburing's cqe_seen). */
MUXRING_API void muxring_cqe_seen(struct muxring_loop *loop,
				  struct muxring_cqe *cqe);

/*
 * Gives back the bytes of a DATA entry's view: the receive buffer goes back
 * to the ring when its last view is released, and the stream's receive
 * window is credited (a WNDINC goes out once a quarter of the window was
 * consumed, unless the session is at its max_buffered cap: then once it is
 * back under 3/4 of it). Works after the stream closed and after the session ended.
 * Releasing an empty view (len 0, as the debug text of GOAWAY and
 * SESSION_ENDED entries) does nothing. The view is zeroed.
 */
MUXRING_API void muxring_view_release(struct muxring_view *view);

/* ---------------------------------------------------------------------- */
/* Sessions                                                                */
/* ---------------------------------------------------------------------- */

enum muxring_role {
	MUXRING_CLIENT, /* the side that dialled: opens odd stream ids */
	MUXRING_SERVER, /* the side that accepted: opens even stream ids */
};

/* muxring_session_opts.flags */
#define MUXRING_SESSION_TYPED 0x1u /* typed streams: every stream starts with
				      a 4-byte type (PROTOCOL.md) */

/* Per-session configuration. 0 in a field means its default; NULL means
 * all defaults. */
struct muxring_session_opts {
	/* Receive window per stream in bytes (default and minimum 256 KiB;
	 * more is granted to the peer with an extra WNDINC). */
	uint32_t window;
	/* Streams the peer opened that the application has not yet advanced
	 * past (STREAM_ACCEPTED); a new one beyond it is refused with
	 * RST AcceptQueueFull (default 128). Every SYN that arrives in one
	 * turn of the loop is queued before the application sees the first,
	 * so size it to the burst of streams the peer may open at once. */
	uint32_t accept_backlog;
	/* Concurrent streams, both directions together (default 4096). */
	uint32_t max_streams;
	/* Largest DATA payload sent in one frame (default 64 KiB). */
	uint32_t max_frame_payload;
	/* MUXRING_SESSION_* bits. */
	uint32_t flags;
	/* Bytes of control frames the peer provoked (RST replies, window
	 * updates) that may wait unsent because it does not read them;
	 * beyond it the session ends with EnhanceYourCalm (default 1 MiB,
	 * at least 12: one frame). */
	uint32_t max_control_backlog;
	/*
	 * Flood budgets: frames the peer may send that carry no application
	 * data. Each is a rate per second with a burst of one second's worth,
	 * plus credit the peer earns by legitimate exchange over the session
	 * (noted per field). Past a budget the session ends with GOAWAY
	 * EnhanceYourCalm and SESSION_ENDED says which flood in `reason`. The
	 * defaults (README, "Floods") are never reached by a well-behaved
	 * muxado peer; UINT32_MAX means practically no limit.
	 */
	/* WNDINC frames (default 1000/s; plus one per payload byte sent and
	 * one per stream). */
	uint32_t wndinc_per_sec;
	/* RST frames (default 1000/s; plus one per DATA frame sent and one
	 * per stream). */
	uint32_t rst_per_sec;
	/* Resets by the peer of streams it opened that are still live
	 * (default 1000/s; plus one per DATA frame sent on the peer's
	 * streams). */
	uint32_t churn_per_sec;
	/* Frames of an unknown type (default 100/s). */
	uint32_t unknown_per_sec;
	/* DATA frames without payload whose flags change nothing (default
	 * 100/s; plus one per stream). */
	uint32_t empty_data_per_sec;
	/* DATA frames for streams that are not open, answered with RST
	 * StreamClosed (one per run of frames on the same stream) (default
	 * 10000/s; plus one per stream). */
	uint32_t closed_data_per_sec;
	/* GOAWAY frames in the whole session (default 8). */
	uint32_t max_goaways;
	/* A transport filter between the socket and the protocol, such as
	 * TLS (muxring_tls.h); NULL: muxado straight on the socket. See
	 * "Transport filters" below. */
	const struct muxring_filter *filter;
	/* Cap on the bytes the session buffers (default 64 MiB; UINT64_MAX:
	 * no cap): payload received and not yet released (views in entries
	 * or held by the application) plus bytes written and not yet taken
	 * by the kernel. At the cap the session stops crediting the peer's
	 * windows (no WNDINC) and refuses new streams (RST StreamRefused)
	 * until it is back under 3/4 of the cap: the peer can still send what
	 * its windows allow, then that session waits; no other session or
	 * stream is held up. Writes are never refused for it. */
	uint64_t max_buffered;
};

/*
 * Starts a session on an already connected stream socket `fd` (TCP, Unix,
 * socketpair) in the given role. The loop owns fd from now on (it closes it
 * when the session ends, also when this call fails). A SESSION_READY entry
 * (res 0) is queued at once (with a transport filter such as TLS: once its
 * handshake is done); streams may be opened right away.
 * user_data comes back in the session's entries. *sessp is set on success.
 *
 * Errors: -EINVAL (bad fd or option), -ENOMEM.
 */
MUXRING_API int muxring_session_create(struct muxring_loop *loop, int fd,
				       enum muxring_role role,
				       const struct muxring_session_opts *opts,
				       uint64_t user_data,
				       struct muxring_session **sessp);

/*
 * Dials host:port over TCP as a client session (host NULL: 127.0.0.1;
 * port may be a number or a service name). The name is resolved now,
 * synchronously, with getaddrinfo (use a numeric address where blocking is
 * unwelcome); the connect itself runs on the ring, trying each address in
 * turn. *sessp is set at once: streams may be opened and written at once,
 * their frames leave when the connection is up. SESSION_READY follows with
 * res 0, or with the connect error (then SESSION_ENDED with it too).
 *
 * Errors (of this call; the session is not created): -EINVAL, -ENOMEM,
 * -EHOSTUNREACH when the name does not resolve, -errno of socket(),
 * -EBUSY when the ring took no submission for the connect.
 */
MUXRING_API int muxring_connect(struct muxring_loop *loop, const char *host,
				const char *port,
				const struct muxring_session_opts *opts,
				uint64_t user_data,
				struct muxring_session **sessp);

/*
 * Sends GOAWAY(code, debug): the peer may open no more streams (this side
 * refuses them with RST StreamRefused); streams already open go on.
 * debug NULL sends the description of `code` (muxring_strerror). At most
 * four GOAWAYs leave this way in a session (so that this side never spends
 * a peer's GOAWAY flood budget); later calls send nothing and return 0.
 * Errors: MUXRING_ERR(MUXRING_SESSION_CLOSED) after the session ended,
 * -EINVAL for debug text of 16 MiB or more, -ENOMEM.
 */
MUXRING_API int muxring_session_goaway(struct muxring_session *sess,
				       uint32_t code, const char *debug,
				       size_t debug_len);

/*
 * Closes the session as PROTOCOL.md says: GOAWAY(code, debug) (use
 * MUXRING_NO_ERROR and NULL for "no error"), every stream closes with
 * SessionClosed, then, once the GOAWAY left, the transport's sending side
 * is shut down, what the peer still sends is read and dropped until its
 * end-of-file, and the socket is closed (all within the loop's linger_ms,
 * after which the socket is closed as it is); SESSION_ENDED comes last.
 * Calling it again, or after the session ended, does nothing and returns 0.
 * Errors: -EINVAL (debug text too long), -ENOMEM (the session still ends).
 */
MUXRING_API int muxring_session_close(struct muxring_session *sess,
				      uint32_t code, const char *debug,
				      size_t debug_len);

/*
 * Starts the heartbeat on a typed session (MUXRING_SESSION_TYPED), or
 * changes its timing when it runs: every interval_ns (0: 10 s) a 4-byte
 * value goes out on the heartbeat stream (type 0xFFFFFFFF), and its echo
 * comes back as a HEARTBEAT entry with the round-trip time; when no echo
 * came within interval + tolerance_ns (0: 15 s), HEARTBEAT_FAILED. Echoing
 * the peer's heartbeat is always on for typed sessions (such streams never
 * reach the application). Timers run on the loop's ring.
 * Errors: -EINVAL on an untyped session, MUXRING_ERR(MUXRING_SESSION_CLOSED)
 * after the session ended, the errors of muxring_stream_open().
 */
MUXRING_API int muxring_session_heartbeat(struct muxring_session *sess,
					  uint64_t interval_ns,
					  uint64_t tolerance_ns);

/* The stream type that carries heartbeats (PROTOCOL.md). */
#define MUXRING_HEARTBEAT_TYPE 0xFFFFFFFFu

/*
 * Sends one heartbeat now, outside the schedule; its echo is reported as a
 * HEARTBEAT entry like any other. Errors: -EINVAL when the heartbeat was
 * not started (muxring_session_heartbeat), MUXRING_ERR(MUXRING_SESSION_CLOSED)
 * after the session ended, -ENOMEM.
 */
MUXRING_API int muxring_session_heartbeat_beat(struct muxring_session *sess);

/* The user_data of the session's entries. */
MUXRING_API void muxring_session_set_data(struct muxring_session *sess,
					  uint64_t user_data);
MUXRING_API uint64_t muxring_session_data(const struct muxring_session *sess);

/* The session's socket (still owned by the loop), or -1 once closed. */
MUXRING_API int muxring_session_fd(const struct muxring_session *sess);

/* ---------------------------------------------------------------------- */
/* Transport filters                                                       */
/* ---------------------------------------------------------------------- */

/*
 * A transport filter turns the bytes of the socket into the bytes of the
 * protocol and back: TLS is one (libmuxring-tls, muxring_tls.h, is built on
 * this interface, so the core library needs no TLS library). It is given
 * in muxring_session_opts.filter, for muxring_connect(), muxring_listen()
 * (every accepted session gets its own state) and muxring_session_create().
 *
 * What the loop does with a filtered session:
 * - Received bytes land in the loop's receive-buffer ring, go to feed(),
 *   and read() decrypts them into heap blocks of 64 KiB that the protocol
 *   engine hands to the application as views (a block returns to the
 *   loop's copy cache when its last view is released). The bytes given to
 *   feed() stay valid through the read() calls that follow it, up to
 *   feed_end(), so a filter may read them in place (no copy); feed_end()
 *   is where it keeps what it has not read yet.
 * - Once established(), every frame the engine has ready goes to write()
 *   (small frames are packed together first, so that many small frames make
 *   one record), then everything pending() is drained into one buffer and
 *   leaves in one send: still one send per session per turn. A filter with
 *   set_output() writes its output for those write() calls straight into
 *   that buffer instead (output_done() says how much); only what does not
 *   fit, or comes at other times (handshake, alerts), goes to pending().
 * - SESSION_READY is posted when established() becomes true, or with the
 *   failure's error when the filter fails first. A failure at any time (a
 *   negative value from feed, read or write, or the handshake timeout: res
 *   -ETIMEDOUT) ends the session; what pending() still holds (an alert) is
 *   sent, and SESSION_ENDED carries the error in res and error()'s text in
 *   its view (without MUXRING_CQE_F_REMOTE).
 * - When the session ends cleanly, shutdown() is called and what it queued
 *   (a close_notify) is sent before the socket's sending side is shut.
 * - The peer's end-of-file is feed(state, NULL, 0): 0 when the end is clean
 *   (the filter saw the peer's own closing message), else a negative error
 *   (truncation).
 * - passthrough() is asked once, after established() and once the
 *   handshake's own bytes have all been sent, before any frame is given to
 *   write(). True means the kernel now encrypts what the session sends
 *   (kernel TLS): the engine's frames then leave as they are, zero-copy,
 *   write() is not called again, and shutdown() sends its closing message
 *   itself. Received bytes still go through feed() and read(), unless:
 * - receive_handover(), when the filter has it, is asked after passthrough()
 *   said true, to let the kernel take the receiving over too. The loop first
 *   stops its multishot receive and feeds every byte it had taken; then it
 *   asks: a positive n means "n more bytes first" (the rest of a record):
 *   the loop reads exactly n bytes with a plain receive, feeds them, and
 *   asks again; 0 means the kernel now decrypts: from then on the received
 *   bytes are the protocol's own and go to the engine as zero-copy views
 *   of the receive ring, feed() and read() see no more bytes (feed() still
 *   gets the end-of-file); a negative value leaves receiving with the
 *   filter, as before (nothing is lost).
 * - receive_failed(), after that hand-over, is told when the kernel's
 *   receive fails with err (kernel TLS: a record that is not data, such as
 *   an alert or a post-handshake message). It returns 0 when it dealt with
 *   the cause (the loop receives again), 1 when the peer ended cleanly (an
 *   end-of-file), err itself when the error is the transport's (handled as
 *   on an unfiltered session), or another negative error: the filter's
 *   failure, named by error(), which ends the session.
 * All callbacks run in the loop's thread, inside muxring_submit_and_wait().
 * Errors are negative errno values; error() names the cause in words.
 */
struct muxring_filter_ops {
	/* Makes the state for one session of `role`; `host` is the name
	 * dialled by muxring_connect() (else NULL). Returns 0 with *state
	 * set, or a negative error (the session then fails at once). */
	int (*open)(void *arg, struct muxring_session *sess,
		    enum muxring_role role, const char *host, void **state);
	/* Bytes from the peer (len 0: the peer's end-of-file), valid until
	 * feed_end(). Returns 0 or a negative error. */
	int (*feed)(void *state, const uint8_t *data, size_t len);
	/* Optional: the bytes of the last feed() go away now; keep (copy)
	 * what read() has not consumed. NULL: feed() must copy at once. */
	void (*feed_end)(void *state);
	/* Up to cap bytes for the protocol into out. Returns the count, 0
	 * when there are none until more is fed, or a negative error. */
	long (*read)(void *state, uint8_t *out, size_t cap);
	/* Takes len protocol bytes to protect and send. Returns len, or a
	 * negative error. Only called once established. */
	long (*write)(void *state, const uint8_t *data, size_t len);
	/* Optional, both or neither: output of the write() calls that follow
	 * goes into out (cap bytes) until output_done(), which returns how
	 * many bytes were put there (what did not fit is in pending()). */
	void (*set_output)(void *state, uint8_t *out, size_t cap);
	size_t (*output_done)(void *state);
	/* Bytes waiting to go to the peer. */
	size_t (*pending)(void *state);
	/* Moves up to cap of those bytes into out; returns how many. */
	size_t (*drain)(void *state, uint8_t *out, size_t cap);
	/* True once the handshake is complete. */
	bool (*established)(void *state);
	/* Optional: whether the kernel took the sending over (see above). */
	bool (*passthrough)(void *state);
	/* Optional: whether the kernel takes the receiving over; bytes to
	 * read first, 0 (taken over) or a negative error (see above). */
	long (*receive_handover)(void *state);
	/* Optional, with receive_handover: what the kernel's receive error
	 * err means (see above). */
	int (*receive_failed)(void *state, int err);
	/* Optional: queues the clean end of the transport (TLS:
	 * close_notify). */
	void (*shutdown)(void *state);
	/* Optional: the last failure in plain words, or NULL; valid until
	 * close(). */
	const char *(*error)(void *state);
	/* Frees the state (the session is being freed). */
	void (*close)(void *state);
};

struct muxring_filter {
	const struct muxring_filter_ops *ops;
	void *arg;                     /* for ops->open */
	/* The handshake must be complete this long after the session starts
	 * (after the connect, for a dial), or the session fails with
	 * -ETIMEDOUT. 0: no limit. */
	uint64_t handshake_timeout_ns;
};

/* The session's filter (muxring_session_opts.filter), or NULL. */
MUXRING_API const struct muxring_filter *
muxring_session_filter(const struct muxring_session *sess);

/* The state ops->open made for the session, or NULL for an unfiltered
 * session (or one whose filter failed to open). */
MUXRING_API void *muxring_session_filter_state(const struct muxring_session *sess);

/* ---------------------------------------------------------------------- */
/* Listeners                                                               */
/* ---------------------------------------------------------------------- */

/*
 * Listens on host:port over TCP (host NULL: 127.0.0.1; port "0": any free
 * port, see muxring_listener_port()) with multishot accept, where the
 * kernel has it. Every connection accepted becomes a server session with
 * `opts`: a SESSION_READY entry with `session` set, `listener` set and
 * `user_data` = the listener's user_data (also the new session's
 * user_data until changed). backlog <= 0 means SOMAXCONN.
 *
 * Errors: -EINVAL, -ENOMEM, -EHOSTUNREACH when host does not resolve,
 * -errno of socket(), bind() (e.g. -EADDRINUSE) or listen().
 */
MUXRING_API int muxring_listen(struct muxring_loop *loop, const char *host,
			       const char *port, int backlog,
			       const struct muxring_session_opts *opts,
			       uint64_t user_data,
			       struct muxring_listener **listenerp);

/*
 * The same on a socket already bound and listening (any stream family, e.g.
 * AF_UNIX); the loop owns fd from now on, also when this call fails.
 * Errors: -EINVAL, -ENOMEM.
 */
MUXRING_API int muxring_listen_fd(struct muxring_loop *loop, int fd,
				  const struct muxring_session_opts *opts,
				  uint64_t user_data,
				  struct muxring_listener **listenerp);

/* The local port the listener is bound to (host order), or -errno. */
MUXRING_API int muxring_listener_port(const struct muxring_listener *l);

/*
 * Stops accepting and closes the listening socket; sessions already
 * accepted go on. A LISTENER_CLOSED entry (res 0) follows; the handle is
 * valid until then. Calling it again does nothing. Returns 0.
 */
MUXRING_API int muxring_listener_close(struct muxring_listener *l);

/* ---------------------------------------------------------------------- */
/* Streams                                                                 */
/* ---------------------------------------------------------------------- */

/*
 * Opens a stream on the session; *streamp gets its handle. Nothing is sent
 * until the first write or close-write (the SYN rides on it). user_data
 * comes back in the stream's entries (but WRITE_DONE, which carries the
 * write's). On a typed session, use muxring_stream_open_typed().
 *
 * Errors: MUXRING_ERR(MUXRING_REMOTE_GONE_AWAY) after the peer's GOAWAY,
 * MUXRING_ERR(MUXRING_STREAMS_EXHAUSTED) when stream ids ran out,
 * MUXRING_ERR(MUXRING_SESSION_CLOSED) once the session is closing or ended,
 * MUXRING_ERR(MUXRING_STREAM_REFUSED) at max_streams, -ENOMEM.
 */
MUXRING_API int muxring_stream_open(struct muxring_session *sess,
				    uint64_t user_data,
				    struct muxring_stream **streamp);

/* The same with a stream type, on a session with MUXRING_SESSION_TYPED
 * (the type goes out with the SYN at once). Same errors, and -EINVAL on an
 * untyped session or for MUXRING_HEARTBEAT_TYPE, which is reserved. */
MUXRING_API int muxring_stream_open_typed(struct muxring_session *sess,
					  uint32_t stream_type,
					  uint64_t user_data,
					  struct muxring_stream **streamp);

/* The stream's id (odd when the client opened it, even for the server). */
MUXRING_API uint32_t muxring_stream_id(const struct muxring_stream *stream);

/* The stream's session. */
MUXRING_API struct muxring_session *
muxring_stream_session(const struct muxring_stream *stream);

/* The user_data of the stream's entries. On a 32-bit system only the low
 * 32 bits are kept (it is stored as a pointer). */
MUXRING_API void muxring_stream_set_data(struct muxring_stream *stream,
					 uint64_t user_data);
MUXRING_API uint64_t muxring_stream_data(const struct muxring_stream *stream);

/*
 * Writes a copy of `len` bytes at `data` on the stream (the caller may
 * reuse its memory at once). Writes up to 16 KiB are packed back to back
 * with the stream's other waiting small writes into blocks that grow from
 * 256 B to 64 KiB as they pile up: a waiting write costs its bytes plus a
 * 16-byte record, shared by consecutive writes of the same length and
 * user_data (an echo of 1-byte reads costs about a byte per write), and
 * writes that wait together leave in one DATA frame (up to the frame size
 * and the window). Larger writes are copied into a
 * heap block of their power-of-two size class (less than twice their
 * size), which the loop recycles (up to 16 MiB kept) once the write is
 * done. The bytes leave in DATA frames as the peer's window allows;
 * WRITE_DONE (res = len, user_data) follows, for each write, once the
 * kernel took the last of its bytes, or with an error. len 0 is allowed.
 *
 * Errors (of this call; no WRITE_DONE follows): -ENOMEM,
 * MUXRING_ERR(MUXRING_STREAM_CLOSED) after close-write or close, the
 * stream's reset code as MUXRING_ERR(code),
 * MUXRING_ERR(MUXRING_SESSION_CLOSED) once the session ended.
 */
MUXRING_API int muxring_stream_write(struct muxring_stream *stream,
				     const void *data, size_t len,
				     uint64_t user_data);

/*
 * muxring_stream_write() for a write whose completion nobody needs: the
 * same copy, and no WRITE_DONE entry for it, neither when it leaves nor
 * when it fails (a failure shows as the stream's RESET or the session's
 * end). A request or its answer then costs no entry of its own, so the
 * wait for the reply is the only one: with MUXRING_FEAT_SEND_QUIET, one
 * io_uring_enter per message on each side. Errors: as
 * muxring_stream_write().
 */
MUXRING_API int muxring_stream_write_quiet(struct muxring_stream *stream,
					   const void *data, size_t len);

/*
 * Takes a buffer of at least `len` bytes from the loop's registered send
 * arena, for muxring_stream_write_zc(). Returns NULL when len is above
 * muxring_buf_size() or every arena buffer is in use (errno set to
 * EMSGSIZE or ENOBUFS); the arena is for these buffers only (copied
 * writes never use it). O(1), no system call.
 */
MUXRING_API void *muxring_buf_get(struct muxring_loop *loop, size_t len);

/* Gives a buffer of muxring_buf_get() back without writing it. */
MUXRING_API void muxring_buf_put(struct muxring_loop *loop, void *buf);

/* The size of each send arena buffer. */
MUXRING_API size_t muxring_buf_size(const struct muxring_loop *loop);

/*
 * Writes `len` bytes at `data`, which lie inside one buffer from
 * muxring_buf_get(), without copying them anywhere in user space: the
 * frames' iovecs point into the buffer. The buffer belongs to the write from
 * now on, whatever the result, and goes back to the arena by itself when
 * the kernel no longer needs it (then WRITE_DONE comes); do not touch or
 * put it. Errors: as muxring_stream_write(), and -EINVAL when data is not in
 * the arena.
 */
MUXRING_API int muxring_stream_write_zc(struct muxring_stream *stream,
					void *data, size_t len,
					uint64_t user_data);

/* Half-closes: FIN after every queued write; the peer sees end-of-file,
 * this side can still read. Idempotent. Errors: the stream's reset code,
 * MUXRING_ERR(MUXRING_SESSION_CLOSED). */
MUXRING_API int muxring_stream_close_write(struct muxring_stream *stream);

/*
 * Closes both directions, like closing a socket: FIN if not yet sent, and
 * data still arriving is dropped and answered with RST StreamClosed. Queued
 * writes still go out; STREAM_CLOSED (NoError) follows once they are sent.
 * Errors: as muxring_stream_close_write().
 */
MUXRING_API int muxring_stream_close(struct muxring_stream *stream);

/* Resets the stream: RST(code) goes out, queued writes fail with the code,
 * STREAM_CLOSED (code) follows. Errors: as muxring_stream_close_write(). */
MUXRING_API int muxring_stream_reset(struct muxring_stream *stream,
				     uint32_t code);

/*
 * Sets the read and/or write deadline (`which`: MUXRING_DEADLINE_READ |
 * MUXRING_DEADLINE_WRITE) to `when_ns`, an absolute time of
 * muxring_now_ns(); 0 clears it. When it passes, a DEADLINE entry comes;
 * a write deadline also fails the stream's pending writes (including those
 * waiting for window) with MUXRING_ERR(MUXRING_WRITE_TIMEOUT). The deadline
 * fires once. Timers run on the loop's ring. Errors: -EINVAL (bad `which`),
 * -ENOMEM.
 */
MUXRING_API int muxring_stream_set_deadline(struct muxring_stream *stream,
					    unsigned which, uint64_t when_ns);

/* ---------------------------------------------------------------------- */
/* Other descriptors                                                       */
/* ---------------------------------------------------------------------- */

/*
 * Watches fd (any pollable descriptor the caller owns: stdin, a pipe, an
 * eventfd, a signalfd) on the loop's ring, once: a MUXRING_CQE_POLL entry
 * with user_data comes when one of poll_mask's events (POLLIN, POLLOUT,
 * ...) happens. Call again to keep watching. This lets a program wait for
 * its own descriptors and its sessions in the same muxring_submit_and_wait.
 * The loop does not own fd; do not close it while watched.
 * Errors: -EINVAL, -ENOMEM, -EBUSY (the ring took no submission).
 */
MUXRING_API int muxring_poll_fd(struct muxring_loop *loop, int fd,
				unsigned poll_mask, uint64_t user_data);

/* ---------------------------------------------------------------------- */
/* Stats                                                                   */
/* ---------------------------------------------------------------------- */

/*
 * Counters since creation. For a loop: over every session it ever had
 * (ended sessions included) plus the loop's own counters; for a session:
 * its own (enters is 0).
 */
struct muxring_stats {
	uint64_t frames_in, frames_out;   /* muxado frames */
	uint64_t bytes_in, bytes_out;     /* transport bytes */
	uint64_t streams_opened;          /* by this side */
	uint64_t streams_accepted;        /* opened by the peer */
	uint64_t enters;                  /* io_uring_enter calls */
	uint64_t sends;                   /* send operations submitted */
	uint64_t recv_completions;        /* receive completions with data */
	uint64_t recv_enobufs;            /* buffer ring ran dry (-ENOBUFS) */
	uint64_t recv_copied;             /* completions handled by copying
					     payloads out (ring was low) */
	uint64_t recv_rearms;             /* receives (re)armed */
	uint64_t sessions;                /* sessions created (loop only) */
	uint64_t recv_buffers_held;       /* ring buffers held by views or
					     being processed, now (loop) */
	uint64_t recv_buffers_held_max;   /* its high-water mark (loop) */
	uint64_t write_bytes_queued;      /* bytes of writes accepted and not
					     yet done (or failed but still
					     held), now */
	uint64_t write_memory;            /* memory those writes hold, now:
					     packed blocks and records, and
					     each large write's copy or arena
					     buffer (an upper bound; see
					     "Memory" in the README) */
	uint64_t sq_refused;              /* SQEs the ring could not take
					     (loop); each ended a session or
					     an operation, or was retried */
	/* Memory held because of the peer, now (gauges), and high-water
	 * marks; for a loop the gauges are summed over its live sessions and
	 * a _max is the highest of any one session, ended ones included. */
	uint64_t recv_view_bytes;         /* payload in views not yet
					     released (in entries or held) */
	uint64_t recv_view_bytes_max;
	uint64_t recv_copy_bytes;         /* heap bytes of copied payloads
					     (stream blocks, copies made
					     while the ring was low) */
	uint64_t recv_copy_bytes_max;
	uint64_t send_queued_bytes;       /* written, not yet taken by the
					     kernel */
	uint64_t buffered_bytes;          /* recv_view_bytes +
					     send_queued_bytes: what the
					     max_buffered caps count */
	uint64_t buffered_bytes_max;      /* loop: high-water mark of the
					     loop's total */
	uint64_t events_queued_max;       /* most protocol events a session
					     had waiting to become entries */
	uint64_t credit_stalls;           /* times crediting stopped at a
					     cap */
	uint64_t quiet_sends;             /* sends that posted no completion
					     (MUXRING_FEAT_SEND_QUIET; loop) */
	uint64_t busy_polls;              /* io_uring_enter calls that only
					     looked for completions while busy
					     polling (busy_poll_us; loop) */
	uint64_t recv_buffers_filled;     /* buffers receives filled: above
					     recv_completions when bundles
					     took several at once
					     (MUXRING_FEAT_RECV_BUNDLE) */
};

/* Reads the loop's counters into *out. Returns 0. */
MUXRING_API int muxring_loop_stats(const struct muxring_loop *loop,
				   struct muxring_stats *out);

/* Reads one session's counters into *out. Returns 0. */
MUXRING_API int muxring_session_stats(const struct muxring_session *sess,
				      struct muxring_stats *out);


#ifdef __cplusplus
}
#endif

#endif
