/*
 * session_io.h - one session's transport on the ring.
 *
 * Ties an engine session (struct mr_session) to a socket: the receive that
 * feeds it (multishot into the loop's buffer ring, or one recv at a time),
 * the single sendmsg in flight that carries everything it has to say, the
 * connect of a dialled session, and the end of the transport (shutdown of
 * the sending side, drain until the peer's EOF or the linger time, close).
 * It also turns the engine's events into the application's entries.
 *
 * The transport's life (enum mr_sio_state):
 *   CONNECTING -> OPEN -> DRAINING -> CLOSING -> CLOSED
 * OPEN lasts until the engine has ended and said all it had to (or the
 * transport broke); DRAINING reads and drops until EOF or linger; CLOSING
 * waits for the session's last operation to complete, closes the socket and
 * queues SESSION_ENDED; CLOSED waits for the application to advance past it.
 */
#ifndef MUXRING_SESSION_IO_H
#define MUXRING_SESSION_IO_H

#include <netdb.h>
#include <stdint.h>

#include <liburing.h>

#include "uring/loop.h"
#include "engine/session.h"
#include "muxring_engine.h"

enum mr_sio_state {
	MR_SIO_CONNECTING,
	MR_SIO_OPEN,
	MR_SIO_DRAINING,
	MR_SIO_CLOSING,
	MR_SIO_CLOSED,
};

enum mr_sio_flag {
	MR_SIO_RECV_ARMED = 1u << 0,   /* a receive is in flight */
	MR_SIO_SEND_ARMED = 1u << 1,   /* the sendmsg is in flight */
	MR_SIO_RECV_DONE = 1u << 2,    /* EOF or error: nothing more to read */
	MR_SIO_TX_DEAD = 1u << 3,      /* sending failed or never possible */
	MR_SIO_READY_POSTED = 1u << 4, /* SESSION_READY is queued */
	MR_SIO_ENDED_SEEN = 1u << 5,   /* the engine's SESSION_ENDED polled */
	MR_SIO_LINGER_ARMED = 1u << 6, /* linger timeout in flight */
	MR_SIO_LINGER_FIRED = 1u << 7,
	MR_SIO_SHUT_WR = 1u << 8,      /* shutdown(SHUT_WR) submitted */
	MR_SIO_CLOSE_ASKED = 1u << 9,  /* muxring_session_close() was called */
	MR_SIO_SEND_ZC = 1u << 10,     /* the send in flight is SENDMSG_ZC */
	MR_SIO_FILTER_UP = 1u << 11,   /* the filter's handshake is done */
	MR_SIO_FILTER_PASS = 1u << 12, /* the kernel encrypts what is sent */
	MR_SIO_FILTER_FAILED = 1u << 13, /* the filter failed: only what it
					    has pending is still sent */
	MR_SIO_FILTER_SHUT = 1u << 14, /* its clean end (close_notify) queued */
	MR_SIO_HANDSHAKING = 1u << 15, /* the handshake clock runs */
	MR_SIO_PASS_ASKED = 1u << 16,  /* the filter was asked whether the
					  kernel takes over the sending */
	MR_SIO_RECV_CANCELLED = 1u << 17, /* closing: recv cancel submitted */
	MR_SIO_LINGER_CANCELLED = 1u << 18, /* closing: linger removal
					       submitted */
	MR_SIO_SEND_OWNED = 1u << 19,  /* the send in flight is of bytes the
					  engine already counts as sent (in
					  the slot's bounce buffer) */
	MR_SIO_SEND_QUIET = 1u << 20,  /* ... submitted with CQE_SKIP_SUCCESS:
					  done when its SQE was consumed and
					  no failure came (on loop->quiet) */
	MR_SIO_RX_SWITCH = 1u << 21,   /* receiving is being handed to the
					  kernel (filter_io.c) */
	MR_SIO_RX_STOPPING = 1u << 22, /* ... its multishot cancel is in
					  flight */
	MR_SIO_RX_PASS = 1u << 23,     /* the kernel decrypts what arrives */
	MR_SIO_SEND_CANCELLED = 1u << 24, /* closing: send cancel submitted */
};

/* The fields of struct muxring_session, the public handle. */
struct muxring_session {
	struct muxring_loop *loop;
	struct muxring_engine *engine; /* the protocol engine, driven through
					  its public calls */
	int fd;                       /* the socket, -1 once closed */
	int file_slot;                /* its slot in the ring's file table,
					 -1: none (SQEs then name fd) */
	uint8_t state;                /* enum mr_sio_state */
	uint8_t on_lists;             /* bit per enum mr_slist_kind */
	bool held_to_share;           /* its buffering limit is the loop's
					 equal share (mr_sio_account) */
	uint32_t flags;               /* enum mr_sio_flag */
	uint32_t inflight;            /* SQEs of this session not finished */
	int ready_res;                /* res of SESSION_READY (connect error) */
	uint64_t user_data;           /* of the session's entries */
	struct muxring_listener *listener; /* that accepted it, for READY */
	struct mr_send_slot *send;    /* the in-flight sendmsg's memory */
	struct muxring_session *quiet_next; /* on loop->quiet */
	uint32_t quiet_sq_end;        /* the SQ position just past the quiet
					 send's SQE: consumed once the
					 kernel's SQ head reaches it */
	int zc_res;                   /* SENDMSG_ZC: its result, kept until
					 the notification says the kernel
					 let go of the memory */

	/* Links of the loop's lists (enum mr_slist_kind). */
	struct muxring_session *prev[3], *next[3];

	/* Deadlines: the engine's next one, and the place in the heap. */
	uint64_t deadline;            /* ns, 0: none */
	uint32_t heap_idx;            /* index + 1 in the heap, 0: not in */

	/* Dialling: the addresses left to try. */
	struct addrinfo *ai_list, *ai_cur;

	struct mr_trace_session *trace; /* frame tracing state, NULL when the
					   loop does not trace */

	struct mr_fio *fio;           /* its transport filter's state
					 (filter_io.c), NULL: none */

	/* Driver counters (the engine keeps frames and bytes). */
	uint64_t sends, recv_completions, recv_enobufs, recv_copied;
	uint64_t recv_buffers_filled;
	uint64_t recv_rearms;

	/* The loop's memory budget (mr_sio_account). */
	uint64_t max_buffered;        /* the session's own cap, 0: none */
	uint64_t buffered_seen;       /* its buffered bytes in loop->buffered */
};

/*
 * A session on fd (owned from now on, closed on failure too) in `state`
 * (OPEN, or CONNECTING for a dial). Linked to the loop and marked dirty, so
 * SESSION_READY is queued at the next step when OPEN (for a filtered
 * session: once its handshake is done). `host` is the name dialled, for
 * the filter (NULL otherwise). Returns 0, -ENOMEM or -EINVAL (options).
 *
 * A session that cannot get an SQE it needs (the ring refused it) ends
 * with MR_SQ_REFUSED and closes without lingering; an allocation that
 * fails on its behalf ends it with -ENOMEM, or is retried at the next turn
 * where waiting loses nothing (a send slot, a completion entry).
 */
int mr_sio_create(struct muxring_loop *loop, int fd, enum muxring_role role,
		  const struct muxring_session_opts *opts, const char *host,
		  uint64_t user_data, enum mr_sio_state state,
		  struct muxring_session **out);

/* Submits the connect to s->ai_cur (socket made here). Returns 0 or the
 * error of the last address tried when none can be tried (MR_SQ_REFUSED
 * when the ring took no SQE). */
int mr_sio_connect_next(struct muxring_session *s);

/* Queues sqe as the session's operation `tag` (counted in flight). */
void mr_sio_submit(struct muxring_session *s, struct io_uring_sqe *sqe,
		   enum mr_op_tag tag);

/* The transport failed (err < 0) or ended (0): the engine hears it once. */
void mr_sio_transport_end(struct muxring_session *s, int err);

/* The session's next deadline (the engine's or the handshake's, ns; 0:
 * none), and the expiry of both at `now`, returning the next. */
uint64_t mr_sio_next_deadline(const struct muxring_session *s);
uint64_t mr_sio_expire(struct muxring_session *s, uint64_t now);

/* One step of work: gather the engine's events into entries, arm the
 * receive, start a send, move the transport's state on. */
void mr_sio_step(struct muxring_session *s);

/*
 * Called after every reap: quiet sends whose SQE the kernel consumed and
 * that posted no failure (it would have been reaped by now) are done; their
 * sessions may send again. Not while the completion queue has overflowed:
 * a failure might still wait in the kernel's overflow list.
 */
void mr_sio_quiet_confirm(struct muxring_loop *loop);

/* A completion of one of the session's operations. */
void mr_sio_complete(struct muxring_session *s, enum mr_op_tag tag,
		     const struct io_uring_cqe *cqe);

/* Frees the session (the application advanced past SESSION_ENDED, or the
 * loop is being destroyed): closes the socket if still open, frees the
 * engine, adds its counters to the loop's. */
void mr_sio_free(struct muxring_session *s);

/* The driver session of an engine stream, or NULL once the engine session
 * is gone, or for a stream of an engine that no loop drives (the public
 * engine leaves the user pointer NULL, so the loop's stream calls refuse
 * such a stream instead of treating it as theirs). */
static inline struct muxring_session *mr_sio_of_stream(struct mr_stream *st)
{
	struct mr_session *ms = mr_stream_session(st);

	return ms ? (struct muxring_session *)mr_session_user(ms) : NULL;
}

/*
 * Brings the session's buffered bytes into the loop's total and sets the
 * session's limit: its own cap, or, while the loop is over its cap, an
 * equal share of the loop's cap if that is lower. When the total falls back
 * under 3/4 of the loop's cap, sessions held to a share get their own cap
 * back (and are marked dirty: they may owe WNDINC frames).
 */
void mr_sio_account(struct muxring_session *s);

/* Reads the session's counters (muxring_session_stats). */
void mr_sio_stats(const struct muxring_session *s, struct muxring_stats *out);

#endif
