/*
 * muxring_engine.h - the muxado protocol engine without I/O (sans-I/O).
 *
 * The whole muxado state machine of one session, driven by the caller over
 * any transport: a blocking socket, a user-space TCP stack, DPDK, a TLS
 * library, a test. In the manner of nghttp2's mem_recv/mem_send, bytes go
 * in (muxring_engine_feed), frames come out as iovecs
 * (muxring_engine_send_iov, then muxring_engine_sent says how many bytes
 * the transport took), what the application must hear about is polled as
 * entries (muxring_engine_poll), and time is an argument
 * (muxring_engine_expire). The engine makes no system call and reads no
 * clock. The io_uring loop of muxring.h is built on these same calls.
 *
 * Why a second header: muxring.h is the io_uring API, and its users never
 * need the calls below; an engine user needs no loop, no ring and no
 * socket. This header adds only what driving a session by hand takes, and
 * carries no liburing or socket type (only struct iovec). It includes
 * muxring.h for the vocabulary both share: error values (MUXRING_ERR,
 * muxring_strerror), roles, session options, the entry struct muxring_cqe
 * and its types, views, and stream handles (struct muxring_stream).
 *
 * A driver's shape (error handling left out):
 *
 *	muxring_engine_create(&e, MUXRING_CLIENT, NULL);
 *	muxring_engine_stream_open(e, 0, &st);
 *	muxring_engine_stream_write(st, "hello", 5, 0);
 *	for (;;) {
 *		struct iovec iov[64];
 *		struct muxring_cqe ev;
 *		size_t n = muxring_engine_send_iov(e, iov, 64, SIZE_MAX);
 *
 *		if (n)
 *			muxring_engine_sent(e, writev(fd, iov, n));
 *		len = read(fd, buf, sizeof(buf));    // 0: EOF
 *		len ? muxring_engine_feed(e, buf, len)
 *		    : muxring_engine_feed_end(e, 0);
 *		muxring_engine_expire(e, clock_ns());
 *		while (muxring_engine_poll(e, &ev)) {
 *			handle(&ev);                 // views, writes, ...
 *			muxring_engine_cqe_done(e, &ev);
 *		}
 *		if (muxring_engine_done(e))          // ended, all sent
 *			break;
 *	}
 *	muxring_engine_destroy(e);
 *
 * examples/engine_blocking.c is a complete program of this shape.
 *
 * Ownership and lifetimes, in one place:
 * - An engine, its streams and its buffers belong to one thread at a time
 *   (reference counts are not atomic).
 * - Fed bytes: muxring_engine_feed() copies each DATA payload it hands up,
 *   so the caller's memory is free again when it returns.
 *   muxring_engine_feed_buf() copies nothing: DATA entries' views point
 *   into the caller's reference-counted buffer and each holds a reference
 *   on it, so the buffer lives until the last view is released.
 * - Written bytes: muxring_engine_stream_write() copies them (one heap
 *   block per write); muxring_engine_stream_write_buf() takes a reference
 *   on the caller's buffer until its WRITE_DONE entry is queued and none
 *   of its bytes wait in the output any more.
 * - Output iovecs point into the engine's memory and the writes' buffers;
 *   they stay valid and unchanged until muxring_engine_sent() says they
 *   were sent (or the engine is destroyed).
 * - A stream handle is valid from its open (or its STREAM_ACCEPTED entry)
 *   until its STREAM_CLOSED entry is given back with
 *   muxring_engine_cqe_done(); every stream gets exactly one STREAM_CLOSED,
 *   as its last entry.
 * - A DATA entry's view must be released exactly once with
 *   muxring_engine_view_release() (or muxring_view_release(), the same
 *   thing), before or after the engine is destroyed; releasing it credits
 *   the stream's receive window.
 *
 * Errors are the negative values of muxring.h: MUXRING_ERR(code) for a
 * muxado code, -ENOMEM, -EINVAL for misuse.
 *
 * An engine's streams are driven with the muxring_engine_stream_* calls
 * below. The muxring_stream_* calls of muxring.h belong to a loop's
 * sessions and are not for an engine's streams (the writes, which need a
 * loop's send buffers, refuse one with MUXRING_ERR(MUXRING_SESSION_CLOSED)).
 */
#ifndef MUXRING_ENGINE_H
#define MUXRING_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "muxring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct muxring_engine;
struct muxring_engine_buf;

/* ---------------------------------------------------------------------- */
/* Engine                                                                  */
/* ---------------------------------------------------------------------- */

/*
 * Creates the engine of one session end: MUXRING_CLIENT (the side that
 * dialled; opens odd stream ids) or MUXRING_SERVER. opts as for
 * muxring_session_create() (NULL: all defaults; MUXRING_SESSION_TYPED for
 * typed streams). On success *enginep is set and 0 returned; nothing is
 * sent until a stream writes (muxado has no preface).
 * Errors: -EINVAL (role, a window below 256 KiB, a frame payload above
 * 16 MiB - 1, unknown flags), -ENOMEM.
 */
MUXRING_API int muxring_engine_create(struct muxring_engine **enginep,
				      enum muxring_role role,
				      const struct muxring_session_opts *opts);

/*
 * muxring_engine_create() with an allocator (struct muxring_mem in
 * muxring.h; NULL: libc's) for everything the engine allocates: itself,
 * streams, queued writes, copied payloads, entries. It must stay valid
 * until the engine is destroyed and every view it gave is released. A
 * failed allocation fails the call that needed it with -ENOMEM, or ends the
 * session with -ENOMEM in its SESSION_ENDED entry. Same errors.
 */
MUXRING_API int muxring_engine_create_with_mem(struct muxring_engine **enginep,
					       enum muxring_role role,
					       const struct muxring_session_opts *opts,
					       const struct muxring_mem *mem);

/*
 * Frees the engine, its queues and every stream; entries not yet polled
 * are dropped (what they held given back). Stream handles become invalid.
 * Views still held stay readable until released. NULL is ignored. To end
 * the session cleanly first, muxring_engine_close() and send what
 * muxring_engine_send_iov() still gives until muxring_engine_done().
 */
MUXRING_API void muxring_engine_destroy(struct muxring_engine *engine);

/* ---------------------------------------------------------------------- */
/* Bytes in                                                                */
/* ---------------------------------------------------------------------- */

/*
 * Feeds `len` bytes received from the transport, in any chunking (one byte
 * at a time works). DATA payloads are copied into heap blocks of their
 * size, so data may be reused as soon as this returns.
 *
 * Returns 0, or the negative error that ended the session because of these
 * bytes (a protocol violation: MUXRING_ERR(MUXRING_PROTOCOL_ERROR),
 * MUXRING_ERR(MUXRING_FRAME_SIZE_ERROR), ...); the entries that tell it
 * are then queued and the GOAWAY naming it waits in the output. Bytes fed
 * after the session ended are ignored (0).
 */
MUXRING_API int muxring_engine_feed(struct muxring_engine *engine,
				    const void *data, size_t len);

/*
 * The same without copying: `data` lies inside `buf`, and each DATA entry's
 * view points into it and holds a reference on it. The caller keeps its
 * own reference (drop it when it likes, even at once). Errors as
 * muxring_engine_feed(), and -EINVAL when data is not inside buf.
 */
MUXRING_API int muxring_engine_feed_buf(struct muxring_engine *engine,
					struct muxring_engine_buf *buf,
					const void *data, size_t len);

/*
 * The transport will deliver nothing more: error 0 for end-of-file (the
 * session ends with MUXRING_PEER_EOF), or a negative errno of a transport
 * failure (the session ends with it). Does nothing once ended.
 */
MUXRING_API void muxring_engine_feed_end(struct muxring_engine *engine,
					 int error);

/* ---------------------------------------------------------------------- */
/* Bytes out                                                               */
/* ---------------------------------------------------------------------- */

/*
 * Fills up to max_iov iovecs with the bytes to send next, control frames
 * first and then every stream's frames round-robin, about max_bytes of
 * them at most (a control frame is never cut for it). Returns the number
 * of iovecs filled, 0 when there is nothing to send. Calling it again
 * before muxring_engine_sent() returns the same bytes first.
 */
MUXRING_API size_t muxring_engine_send_iov(struct muxring_engine *engine,
					   struct iovec *iov, size_t max_iov,
					   size_t max_bytes);

/*
 * The transport took `sent` bytes from the front of what
 * muxring_engine_send_iov() described (a short write is fine: the rest
 * comes first next time). Writes whose last byte was taken complete
 * (WRITE_DONE entries).
 */
MUXRING_API void muxring_engine_sent(struct muxring_engine *engine,
				     size_t sent);

/* True while frames wait to be sent (muxring_engine_send_iov() would fill
 * at least one iovec). */
MUXRING_API bool muxring_engine_want_send(struct muxring_engine *engine);

/* True once the session has ended (its SESSION_ENDED entry is queued). */
MUXRING_API bool muxring_engine_ended(const struct muxring_engine *engine);

/*
 * True once the session has ended and everything it still had to say
 * (typically the GOAWAY) was sent: the transport may be shut down now.
 * After a transport failure (muxring_engine_feed_end with an error) the
 * queued bytes can never leave and this stays false; stop sending then.
 */
MUXRING_API bool muxring_engine_done(const struct muxring_engine *engine);

/* ---------------------------------------------------------------------- */
/* Entries                                                                 */
/* ---------------------------------------------------------------------- */

/*
 * Takes the next entry into *cqe; returns true, or false when there is
 * none. The entries and their fields are those of the loop's completion
 * queue (muxring.h), with `session` and `listener` always NULL:
 * STREAM_ACCEPTED, DATA, EOF, WRITE_DONE, DEADLINE, STREAM_CLOSED, GOAWAY,
 * HEARTBEAT, HEARTBEAT_FAILED and, last of all, SESSION_ENDED (res: the
 * local error; with MUXRING_CQE_F_REMOTE the peer's GOAWAY code and debug
 * text). Entries that carry the session's user_data in the loop carry 0.
 * The debug-text views of GOAWAY and SESSION_ENDED need no release and
 * stay valid until the engine is destroyed.
 */
MUXRING_API bool muxring_engine_poll(struct muxring_engine *engine,
				     struct muxring_cqe *cqe);

/*
 * Gives an entry back once handled (the loop's advance): for STREAM_CLOSED
 * its stream handle ends here; a STREAM_ACCEPTED leaves the accept backlog
 * here (a peer's SYN beyond accept_backlog un-given-back streams is
 * refused). For other types it does nothing; calling it for every entry
 * is the simple rule. A DATA entry's view is released separately.
 */
MUXRING_API void muxring_engine_cqe_done(struct muxring_engine *engine,
					 struct muxring_cqe *cqe);

/*
 * Releases a DATA entry's view: drops its buffer reference and credits the
 * stream's receive window (a WNDINC is queued once a quarter of the window
 * was consumed). Works after the stream closed and after the engine was
 * destroyed. An empty view does nothing. The view is zeroed.
 */
MUXRING_API void muxring_engine_view_release(struct muxring_view *view);

/* ---------------------------------------------------------------------- */
/* Time                                                                    */
/* ---------------------------------------------------------------------- */

/*
 * Tells the engine that it is `now` (nanoseconds of any monotonic clock the
 * caller uses for every time it passes) and fires what is due: stream
 * deadlines (DEADLINE entries, failed writes), heartbeats to send, missing
 * echoes (HEARTBEAT_FAILED). Returns the next time it wants to be called,
 * or 0 when nothing is scheduled. Cost: one pass over the streams that
 * have a deadline.
 */
MUXRING_API uint64_t muxring_engine_expire(struct muxring_engine *engine,
					   uint64_t now);

/* The earliest scheduled time, or 0 when none (what muxring_engine_expire
 * would return). */
MUXRING_API uint64_t
muxring_engine_next_deadline(const struct muxring_engine *engine);

/*
 * Sets the engine's clock without firing anything, O(1): heartbeat echoes
 * fed afterwards are timed at `now`. A driver that feeds between two
 * expire calls uses it for exact round-trip times.
 */
MUXRING_API void muxring_engine_set_now(struct muxring_engine *engine,
					uint64_t now);

/* ---------------------------------------------------------------------- */
/* Session                                                                 */
/* ---------------------------------------------------------------------- */

/*
 * Queues GOAWAY(code, debug): the peer may open no more streams (their SYNs
 * are refused with RST StreamRefused); streams already open go on. At most
 * four GOAWAYs leave this way in a session (never a peer's GOAWAY flood);
 * later calls send nothing and return 0.
 * Errors: MUXRING_ERR(MUXRING_SESSION_CLOSED) after the session ended,
 * -EINVAL for debug text above 16 MiB - 9 bytes, -ENOMEM.
 */
MUXRING_API int muxring_engine_goaway(struct muxring_engine *engine,
				      uint32_t code, const void *debug,
				      size_t debug_len);

/*
 * Ends the session: GOAWAY(code, debug) is queued (debug text beyond one
 * frame is cut), every stream closes with SessionClosed, SESSION_ENDED
 * (res MUXRING_ERR(MUXRING_SESSION_CLOSED)) is queued last. Send the
 * output until muxring_engine_done(), then shut the transport down.
 * Calling it after the end does nothing. Returns 0 or -ENOMEM (the session
 * still ends).
 */
MUXRING_API int muxring_engine_close(struct muxring_engine *engine,
				     uint32_t code, const void *debug,
				     size_t debug_len);

/*
 * Starts the heartbeat of a typed session (MUXRING_SESSION_TYPED), or
 * changes its timing when it runs: the heartbeat stream opens at once, and
 * every interval_ns from `now` a 4-byte value goes out that the peer
 * echoes (HEARTBEAT entry, res the round-trip time in ns); no echo within
 * interval + tolerance_ns gives HEARTBEAT_FAILED. Beats are sent from
 * muxring_engine_expire(). `seed` varies the values. Echoing the peer's
 * heartbeat is always on for typed sessions.
 * Errors: -EINVAL (untyped session, zero interval or tolerance),
 * MUXRING_ERR(MUXRING_SESSION_CLOSED), the errors of stream open.
 */
MUXRING_API int muxring_engine_heartbeat(struct muxring_engine *engine,
					 uint64_t interval_ns,
					 uint64_t tolerance_ns, uint64_t now,
					 uint64_t seed);

/* Sends one heartbeat now (at the engine's clock), outside the schedule.
 * Errors: -EINVAL when the heartbeat was not started, -ENOMEM. */
MUXRING_API int muxring_engine_heartbeat_beat(struct muxring_engine *engine);

/* The session's counters (frames, bytes, streams; the driver counters of
 * struct muxring_stats are 0) into *out. Returns 0. */
MUXRING_API int muxring_engine_stats(const struct muxring_engine *engine,
				     struct muxring_stats *out);

/* ---------------------------------------------------------------------- */
/* Streams                                                                 */
/* ---------------------------------------------------------------------- */

/*
 * Opens a stream; *streamp gets its handle, user_data comes back in its
 * entries (but WRITE_DONE, which carries the write's). Nothing is sent
 * until the first write or close-write (the SYN rides on it).
 * Errors: MUXRING_ERR(MUXRING_REMOTE_GONE_AWAY) after the peer's GOAWAY,
 * MUXRING_ERR(MUXRING_STREAMS_EXHAUSTED) when ids ran out,
 * MUXRING_ERR(MUXRING_SESSION_CLOSED) once ended,
 * MUXRING_ERR(MUXRING_STREAM_REFUSED) at max_streams, -ENOMEM, -EINVAL.
 */
MUXRING_API int muxring_engine_stream_open(struct muxring_engine *engine,
					   uint64_t user_data,
					   struct muxring_stream **streamp);

/* The same with a stream type on a typed session; the type goes out with
 * the SYN at once. Same errors, and -EINVAL on an untyped session or for
 * MUXRING_HEARTBEAT_TYPE. */
MUXRING_API int muxring_engine_stream_open_typed(struct muxring_engine *engine,
						 uint32_t stream_type,
						 uint64_t user_data,
						 struct muxring_stream **streamp);

/*
 * Queues a copy of `len` bytes at `data` (one heap block; data may be
 * reused at once). They leave in DATA frames as the peer's window allows;
 * WRITE_DONE (res len, user_data) is queued once the transport took the
 * last of them, or with an error. len 0 is allowed.
 * Errors (no WRITE_DONE follows): MUXRING_ERR(MUXRING_STREAM_CLOSED) after
 * close-write or close, the stream's reset code as MUXRING_ERR(code),
 * MUXRING_ERR(MUXRING_SESSION_CLOSED), -ENOMEM, -EINVAL.
 */
MUXRING_API int muxring_engine_stream_write(struct muxring_stream *stream,
					    const void *data, size_t len,
					    uint64_t user_data);

/* The same without a copy: data lies inside buf, on which the write holds
 * a reference until its WRITE_DONE. Errors as above, and -EINVAL when data
 * is not inside buf. */
MUXRING_API int muxring_engine_stream_write_buf(struct muxring_stream *stream,
						struct muxring_engine_buf *buf,
						const void *data, size_t len,
						uint64_t user_data);

/* Half-closes: FIN after every queued write. Does nothing (0) on a stream
 * that is over. Returns 0. */
MUXRING_API int muxring_engine_stream_close_write(struct muxring_stream *stream);

/* Closes both directions: FIN if not yet queued; data still arriving is
 * answered with RST StreamClosed. STREAM_CLOSED (NoError) follows once the
 * queued writes are sent. Returns 0. */
MUXRING_API int muxring_engine_stream_close(struct muxring_stream *stream);

/* Resets: RST(code) is queued, queued writes fail with MUXRING_ERR(code)
 * (StreamReset for NoError), STREAM_CLOSED follows. Returns 0, -ENOMEM,
 * or MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM) when too many control frames
 * wait to be sent. */
MUXRING_API int muxring_engine_stream_reset(struct muxring_stream *stream,
					    uint32_t code);

/*
 * Sets the read and/or write deadline (MUXRING_DEADLINE_READ |
 * MUXRING_DEADLINE_WRITE) to when_ns, in the clock of
 * muxring_engine_expire(); 0 clears. It fires once, from
 * muxring_engine_expire(): a DEADLINE entry, and for the write deadline
 * the pending writes fail with MUXRING_ERR(MUXRING_WRITE_TIMEOUT).
 * Errors: -EINVAL (bad `which`), -ENOMEM.
 */
MUXRING_API int muxring_engine_stream_set_deadline(struct muxring_stream *stream,
						   unsigned which,
						   uint64_t when_ns);

/* A stream's flow-control windows (muxring_engine_stream_window()). */
struct muxring_engine_window {
	uint32_t send; /* payload bytes the peer lets this side send now */
	uint32_t recv; /* payload bytes the peer may send before this side
			  grants more (views released, WNDINC queued) */
};

/* Reads the stream's windows into *out. Returns 0. */
MUXRING_API int muxring_engine_stream_window(const struct muxring_stream *stream,
					     struct muxring_engine_window *out);

/* The stream's id (odd when the client opened it). */
MUXRING_API uint32_t muxring_engine_stream_id(const struct muxring_stream *stream);

/* The user_data of the stream's entries (kept as a pointer: on a 32-bit
 * system only the low 32 bits). */
MUXRING_API void muxring_engine_stream_set_data(struct muxring_stream *stream,
						uint64_t user_data);
MUXRING_API uint64_t
muxring_engine_stream_data(const struct muxring_stream *stream);

/* ---------------------------------------------------------------------- */
/* Reference-counted buffers                                               */
/* ---------------------------------------------------------------------- */

/* A heap buffer of `size` bytes with one reference, the caller's; it frees
 * itself when the last reference goes. NULL when memory is exhausted. */
MUXRING_API struct muxring_engine_buf *muxring_engine_buf_alloc(size_t size);

/*
 * Wraps the caller's memory (size bytes at data) in a buffer with one
 * reference, the caller's. When the last reference goes, release(data,
 * arg) is called (NULL: nothing) and the wrapper is freed: the memory is
 * the caller's again. NULL when memory is exhausted.
 */
MUXRING_API struct muxring_engine_buf *
muxring_engine_buf_wrap(void *data, size_t size,
			void (*release)(void *data, void *arg), void *arg);

/* The buffer's memory and its size. */
MUXRING_API void *muxring_engine_buf_data(const struct muxring_engine_buf *buf);
MUXRING_API size_t muxring_engine_buf_size(const struct muxring_engine_buf *buf);

/* Takes and drops a reference. */
MUXRING_API void muxring_engine_buf_ref(struct muxring_engine_buf *buf);
MUXRING_API void muxring_engine_buf_unref(struct muxring_engine_buf *buf);

#ifdef __cplusplus
}
#endif

#endif
