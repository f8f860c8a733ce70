/*
 * session_internal.h - the engine's private structures, shared by the files
 * that each hold one part of it: session.c (life and shutdown), inbound.c
 * (parsing what the peer sent), outbound.c (what we send and in which
 * order), stream.c (one stream's state), event_queue.c (what the
 * application hears), rx_block.c (where small payloads are copied).
 */
#ifndef MUXRING_SESSION_INTERNAL_H
#define MUXRING_SESSION_INTERNAL_H

#include "wire/frame.h"
#include "engine/session.h"
#include "engine/stream_map.h"

/* A run of small writes inside a batch: `count` consecutive writes of
 * `len` bytes each with the same user_data (an echo of 1-byte frames is
 * one run), whose bytes follow those of the run before. */
struct mr_write_part {
	uint64_t user_data;
	uint32_t len;
	uint32_t count : 31;
	uint32_t silent : 1; /* no WRITE_DONE for these writes */
};

/* One application write, or a batch of small copied writes. It sits on
 * its stream's write list from mr_stream_write (mr_stream_write_copy) until
 * every byte was taken by the transport (or it failed); frames carry
 * pieces of it without copying.
 *
 * A batch owns its buffer (a block of MR_BATCH_MIN to MR_BATCH_MAX bytes):
 * the writes' bytes lie back to back from its start, so that any number of
 * them leave as one iovec of one frame. Their records are runs (struct
 * mr_write_part): the first run is in the write itself (a lone small
 * write touches no more memory than that), the others are stacked down
 * from the block's end. Each write gets its own WRITE_DONE once the
 * transport took its last byte. */
struct mr_write {
	struct mr_write *next;
	struct mr_buf *buf;  /* referenced until the write is freed */
	const uint8_t *data;
	size_t len;          /* a batch grows while it is its stream's last */
	size_t committed;    /* bytes placed into frames */
	size_t acked;        /* bytes the transport took */
	union {
		uint64_t user_data;          /* single write */
		struct mr_write_part first;  /* batch: run 0 */
	};
	uint32_t parts;      /* batch: runs */
	uint32_t parts_done; /* batch: runs wholly reported (WRITE_DONE) */
	uint32_t run_done;   /* batch: writes of run parts_done reported */
	uint32_t run_start;  /* batch: offset of run parts_done's bytes */
	bool batch;          /* small copied writes packed in buf (owned) */
	bool sealed;         /* batch: cut by a deadline, takes no more */
	bool failed;         /* WRITE_DONE(error) already reported; freed once
				acked catches up with committed */
	bool silent;         /* single write: no WRITE_DONE at all, its
				writer asked for none (a batch says it per
				run) */
};

/* Batch blocks (whole allocations, struct mr_buf included) grow by
 * doubling from MR_BATCH_MIN to MR_BATCH_MAX as a stream's small writes
 * pile up, so one write costs a small block and a backlog large ones;
 * mr_stream_write_copy packs writes up to MR_BATCH_WRITE_MAX bytes. The
 * smallest holds a 64-byte message: with ten thousand sessions each
 * sending one, a larger one would be memory none of them uses. */
#define MR_BATCH_MIN 128u
#define MR_BATCH_MAX (64u << 10)

/* One iovec's worth of committed output. Slots live in a fixed ring so the
 * pointers handed to the transport stay put until it has sent them. */
struct mr_tx_seg {
	const uint8_t *base;
	size_t len;
	struct mr_buf *buf;        /* payload's buffer reference, or NULL */
	void *owned;               /* heap block freed once sent, or NULL */
	struct mr_write *write;    /* payload piece of this write, or NULL */
	struct mr_stream *stream;  /* holds a reference while queued */
	bool fin;                  /* last segment of a frame carrying FIN */
	uint8_t inline_bytes[MR_FRAME_HEADER_LEN + 4]; /* header (+ type) */
};

/* Segments in the ring; each frame is one or a few of them. A session
 * starts with the small ring, which holds what a request or an answer
 * takes, and moves to the full one (16 KiB) the first time it needs more
 * room: so ten thousand sessions of one stream each do not weigh 16 KiB
 * each. Both are powers of two. */
#define MR_TX_RING_SLOTS 256u
#define MR_TX_RING_SMALL 8u

enum mr_send_state {
	MR_SEND_OPEN,
	MR_SEND_FIN_QUEUED, /* close-write asked; FIN follows the writes */
	MR_SEND_FIN_COMMITTED,
	MR_SEND_FIN_SENT,   /* the transport took the FIN */
};

enum mr_recv_state {
	MR_RECV_OPEN,
	MR_RECV_FIN,        /* the peer half-closed */
	MR_RECV_CLOSED,     /* closed locally: arriving data gets RST */
};

enum mr_stream_flag {
	MR_STREAM_SYN_SENT = 1u << 0,     /* the SYN frame is committed */
	MR_STREAM_LOCAL = 1u << 1,        /* this side opened it */
	MR_STREAM_READY = 1u << 2,        /* on the session's ready list */
	MR_STREAM_FINISHED = 1u << 3,     /* STREAM_CLOSED emitted */
	MR_STREAM_TYPE_PENDING = 1u << 4, /* accepted, type bytes not all in */
	MR_STREAM_ACCEPTED = 1u << 5,     /* STREAM_ACCEPTED emitted */
	MR_STREAM_ON_DEADLINES = 1u << 6, /* has a deadline record, on the
					     session's deadline list */
	MR_STREAM_HEARTBEAT = 1u << 7,    /* carries heartbeats; the engine
					     serves it, the app never sees it */
	MR_STREAM_URGENT = 1u << 8,       /* jumps the ready list */
	MR_STREAM_CLOSE_OWED = 1u << 9,   /* finished, but its STREAM_CLOSED
					     found no room in the event queue:
					     mr_session_poll_event makes it up
					     (code in send_window, reason in
					     type_have, both dead by then) */
	MR_STREAM_RX_EVENT = 1u << 10,    /* rx_event_seq names its last DATA
					     event (maybe already polled) */
};

/* The deadlines of one stream, allocated when the first one is set and
 * freed when none is left (or the stream finishes): most streams never have
 * one, and an idle stream should cost as little as possible. Linked into the
 * session's deadline list. */
struct mr_deadline {
	struct mr_stream *stream;
	struct mr_deadline *prev, *next; /* session's deadline list */
	uint64_t read, write;            /* absolute, 0: none */
};

/* Kept at 88 bytes (a 96-byte heap chunk): an idle stream costs this plus
 * its slot in the stream map. Fields that are never needed at the same
 * time share memory; check the size when adding one. */
struct mr_stream {
	struct mr_session *session; /* NULL once detached (session freed) */
	union {
		void *user;        /* the driver's; never set on heartbeat
				      streams, which the application never
				      sees */
		struct {           /* MR_STREAM_HEARTBEAT streams only */
			uint32_t echo_word; /* heartbeat value being received */
			uint8_t echo_have;  /* bytes of echo_word received */
		};
	};
	union {
		struct mr_stream *ready_next; /* session's ready list */
		const struct muxring_mem *orphan_mem; /* once the session is
							 freed: the allocator
							 to free with */
	};
	union {
		/* While the stream is alive: its writes, oldest first. */
		struct {
			struct mr_write *writes;   /* oldest unfinished write */
			struct mr_write *writes_tail;
		};
		/* Once FINISHED (every write failed or freed by then, and no
		 * new one accepted) the same memory links the session's list
		 * of finished streams still referenced. */
		struct {
			struct mr_stream *finished_prev, *finished_next;
		};
	};
	struct mr_write *commit_next; /* first write with uncommitted bytes */
	struct mr_deadline *deadline; /* NULL: no deadline set */
	uint32_t id;
	uint32_t refs;             /* map, queued segments, views, CLOSED event */
	uint32_t send_window;      /* payload bytes the peer lets us send */
	uint32_t recv_window;      /* payload bytes the peer may still send */
	union {
		uint32_t recv_consumed; /* released by the application, not
					   yet granted back with WNDINC (no
					   credit is taken once FINISHED) */
		int end_error;     /* once FINISHED: the error later calls
				      return */
	};
	uint32_t stream_type;      /* sent or received type (typed sessions) */
	uint16_t flags : 13;       /* enum mr_stream_flag */
	uint16_t type_have : 3;    /* type bytes received so far (0..4) */
	uint8_t send_state;        /* enum mr_send_state */
	uint8_t recv_state;        /* enum mr_recv_state */
	uint16_t rx_event_seq;     /* low 16 bits of the sequence number of
				      its last DATA event (MR_STREAM_RX_EVENT) */
	uint16_t rx_slot;          /* its block (where small payloads are
				      copied) in the session's rx_blocks, + 1;
				      0: none */
};

struct mr_event_queue {
	const struct muxring_mem *mem; /* allocates items */
	struct mr_event *items;
	uint32_t head;  /* next to poll */
	uint32_t count;
	uint32_t cap;   /* power of two */
	uint32_t popped; /* events polled so far (wraps): an event's sequence
			    number is popped + its place at push time */
	uint32_t count_max; /* high-water mark of count */
};

/* A heap copy of received payload, one allocation: the header, then the
 * bytes (buf.data). Referenced by its stream while it is the stream's
 * current block, and by each view into it. */
struct mr_rx_block {
	struct mr_buf buf;
	uint32_t fill;        /* bytes written */
};

enum mr_rx_state {
	MR_RX_HEADER,        /* collecting the 8-byte header */
	MR_RX_WORD,          /* collecting the 4-byte RST or WNDINC body */
	MR_RX_GOAWAY_FIXED,  /* collecting last id and code */
	MR_RX_GOAWAY_DEBUG,  /* debug text, kept up to the cap */
	MR_RX_DATA,          /* DATA payload for rx_stream (or dropped) */
	MR_RX_SKIP,          /* body of an unknown type, dropped */
};

struct mr_session {
	struct mr_config cfg;
	enum mr_role role;
	uint32_t next_local_id;    /* id the next open takes */
	uint32_t last_remote_id;   /* highest id the peer opened */
	uint32_t accept_pending;   /* accepted, not yet taken by the app */
	uint32_t closes_owed;      /* streams with MR_STREAM_CLOSE_OWED */
	bool goaway_sent;          /* we refuse new peer streams */
	uint8_t goaways_sent;      /* GOAWAYs mr_session_goaway queued */
	bool ended;                /* the session is over */
	bool ended_polled;         /* SESSION_ENDED was taken by the driver */
	bool out_of_memory;        /* an event was lost; the session fails */
	bool credit_stalled;       /* buffered reached the limit: WNDINC held
				      back until it falls below 3/4 of it */
	uint64_t buffer_limit;     /* cap on buffered bytes now, 0: none */
	void *user;                /* the driver's */
	struct mr_session_result result;
	uint8_t *remote_debug;     /* heap copy behind result.remote_debug */

	struct mr_stream_map streams;
	struct mr_event_queue events;

	/* The streams' blocks (rx_block.c), by the streams' rx_slot - 1: a
	 * 16-bit slot keeps the stream small. A free entry holds the next
	 * free index + 1, shifted left, with the low bit set. */
	uintptr_t *rx_blocks;
	uint32_t rx_blocks_cap;
	uint32_t rx_blocks_free;   /* first free index + 1, 0: none */

	/* Inbound parser. */
	enum mr_rx_state rx_state;
	struct mr_frame_header rx_hdr;
	uint8_t rx_bytes[MR_GOAWAY_FIXED_LEN]; /* header or fixed body */
	uint32_t rx_have;          /* bytes collected into rx_bytes */
	uint32_t rx_remaining;     /* body bytes of the frame still to come */
	struct mr_stream *rx_stream; /* DATA target; NULL drops the payload */
	uint32_t goaway_last_id, goaway_code;
	uint32_t rst_closed_id;    /* the last gone stream answered with RST
				      StreamClosed; the frames that follow
				      for it get no RST of their own (0:
				      none yet) */

	/* Outbound: control bytes not yet committed, then the ring. */
	uint8_t *ctrl;
	size_t ctrl_len, ctrl_cap;
	struct mr_tx_seg *ring;
	uint32_t ring_cap;         /* segments: MR_TX_RING_SMALL or _SLOTS */
	uint32_t ring_head;        /* oldest unsent segment */
	uint32_t ring_count;
	uint32_t ring_offered;     /* segments the last tx_iov handed out and
				      no tx_advance followed: the transport
				      may hold pointers into them */
	size_t ring_head_sent;     /* bytes of the head segment already sent */
	size_t ring_bytes;         /* unsent bytes in the ring */
	struct mr_stream *ready_head, *ready_tail;

	struct mr_deadline *deadlines; /* streams with a deadline set */
	struct mr_stream *finished;  /* finished streams still referenced */
	struct mr_heartbeat *heartbeat; /* NULL until started */
	uint64_t now;              /* the driver's clock, as last told */
	struct mr_flood_budget flood; /* what the peer may still send */

	/* Freed writes kept for reuse (linked through next): a write per
	 * message would otherwise cost a malloc and a free. */
	struct mr_write *write_cache;
	/* Batch blocks of MR_BATCH_MIN bytes kept for reuse (linked through
	 * their first bytes), for the same reason: a small message would
	 * otherwise cost a malloc and a free of its block. */
	struct mr_buf *block_cache;
	uint32_t write_cache_count, block_cache_count;

	struct mr_session_stats stats;
};

/* event_queue.c */
void mr_evq_init(struct mr_event_queue *q, const struct muxring_mem *mem);
/* Drops queued events, giving back what they hold. */
void mr_evq_free(struct mr_event_queue *q);
/* Returns 0 or -ENOMEM. */
int mr_evq_push(struct mr_event_queue *q, const struct mr_event *ev);
bool mr_evq_pop(struct mr_event_queue *q, struct mr_event *ev);
/* The sequence number of the event pushed last (the queue is not empty). */
uint32_t mr_evq_last_seq(const struct mr_event_queue *q);
/* The event with sequence number seq while still queued, else NULL. */
struct mr_event *mr_evq_find(struct mr_event_queue *q, uint32_t seq);

/* rx_block.c */
/* Hands len bytes of the stream's payload at data (inside buf) to the
 * application: a DATA event, or more bytes in the stream's queued one.
 * Returns 0 or -ENOMEM. */
int mr_rx_deliver(struct mr_stream *stream, struct mr_buf *buf,
		  const uint8_t *data, size_t len, unsigned flags);
/* Drops a reference on a view's buffer, keeping the copy count right. */
void mr_rx_buf_put(struct mr_stream *stream, struct mr_buf *buf);
/* The stream drops its block (it finished or is freed). */
void mr_rx_block_drop(struct mr_stream *stream);
/* Frees the session's table of blocks (the session is being freed; its
 * streams no longer reach it). */
void mr_rx_blocks_free(struct mr_session *sess);

/* stream.c */
struct mr_stream *mr_stream_new(struct mr_session *sess, uint32_t id,
				bool local);
void mr_stream_ref(struct mr_stream *stream);
/* Frees the writes and batch blocks kept for reuse (the session is being
 * freed, after its transmit ring: no block is referenced any more). */
void mr_stream_free_write_cache(struct mr_session *sess);
/* Cuts every finished stream loose from the session before it is freed. */
void mr_stream_detach_finished(struct mr_session *sess);
void mr_stream_unref(struct mr_stream *stream);
/* Re-evaluates whether the stream has a frame to send. */
void mr_stream_update_ready(struct mr_stream *stream);
/* True when the stream has a frame to send now. */
bool mr_stream_wants_send(const struct mr_stream *stream);
/* Fails every unfinished write with err (negative) as WRITE_DONE events. */
void mr_stream_fail_writes(struct mr_stream *stream, int err);
/* Ends the stream: fails writes with err, leaves the session, queues
 * STREAM_CLOSED with `code` and `err` (0 for a clean end). Idempotent. */
void mr_stream_finish(struct mr_stream *stream, uint32_t code, int err,
		      enum mr_close_reason reason);
/* Finishes the stream if both directions are done. */
void mr_stream_check_done(struct mr_stream *stream);
/* The peer's FIN arrived. */
void mr_stream_recv_fin(struct mr_stream *stream);
/* A write of the stream was fully taken by the transport, in order. */
void mr_stream_write_acked(struct mr_stream *stream, struct mr_write *write,
			   size_t len);
/* The application consumed n received bytes: grants them back to the peer
 * with WNDINC once a quarter of the window has piled up. */
void mr_stream_credit(struct mr_stream *stream, uint32_t n);
/* Fails the writes that still have bytes not yet committed to frames;
 * writes already on the wire complete normally. */
void mr_stream_fail_pending_writes(struct mr_stream *stream, int err);
/* Deadline list membership follows the stream's deadlines: a stream
 * with none left (or finished) leaves it and its record is freed. */
void mr_stream_update_deadline_list(struct mr_stream *stream);
/* Frees every deadline record of the session (it is being freed). */
void mr_stream_free_deadlines(struct mr_session *sess);

/* outbound.c */
void mr_outbound_free(struct mr_session *sess);
/* Queues RST(code) for id. Returns 0 or a negative error (-ENOMEM, or
 * EnhanceYourCalm when the control backlog is over its cap). */
int mr_outbound_rst(struct mr_session *sess, uint32_t id, uint32_t code);
int mr_outbound_wndinc(struct mr_session *sess, uint32_t id,
		       uint32_t increment);
/* GOAWAY (and, unless the session is closing, a trailing 8-byte frame of
 * an unknown type that keeps the Go reference in frame sync). */
int mr_outbound_goaway(struct mr_session *sess, uint32_t code,
		       const void *debug, size_t debug_len, bool closing);
/* Puts a stream on the ready list (urgent ones at the head). A stream that
 * stops wanting to send is dropped lazily when it reaches the head. */
void mr_outbound_schedule(struct mr_session *sess, struct mr_stream *stream);
/* Forgets every frame not yet committed to the ring. */
void mr_outbound_drop_pending(struct mr_session *sess);

/* heartbeat.c */
/* 4 bytes of our heartbeat stream arrived as `word`: an echo. */
void mr_heartbeat_on_word(struct mr_stream *stream, uint32_t word);
/* Payload of the peer's heartbeat stream arrived: every whole 4-byte value
 * goes back as it came. */
void mr_heartbeat_echo(struct mr_stream *stream, const uint8_t *data,
		       size_t len);
/* Beats and failures due at sess->now; returns the next due time or 0. */
uint64_t mr_heartbeat_expire(struct mr_session *sess);
uint64_t mr_heartbeat_next_due(const struct mr_session *sess);
void mr_heartbeat_free(struct mr_session *sess);

/* session.c */
/* mr_session_open, with enum mr_stream_flag bits set before the stream is
 * first scheduled (an urgent stream must enter the ready list urgent). */
int mr_session_open_flagged(struct mr_session *sess, uint32_t stream_type,
			    uint16_t flags, struct mr_stream **out);
/* Queues an event; memory exhaustion there ends the session. Returns
 * false when the event was lost that way. */
bool mr_session_emit(struct mr_session *sess, const struct mr_event *ev);
/* True when crediting the peer must wait: buffered bytes reached the
 * limit (the stall lasts until mr_session_check_credit lifts it). */
bool mr_session_credit_blocked(struct mr_session *sess);
/* Buffered bytes went down: when below 3/4 of the limit, lifts a stall and
 * grants every stream what it held back. */
void mr_session_check_credit(struct mr_session *sess);
/* Bytes written on a stream left the queue (taken or failed). */
void mr_session_tx_unqueued(struct mr_session *sess, uint64_t n);

/* len more payload bytes are in views handed up. */
static inline void mr_session_count_view(struct mr_session *sess, size_t len)
{
	sess->stats.rx_view_bytes += len;
	if (sess->stats.rx_view_bytes > sess->stats.rx_view_bytes_max)
		sess->stats.rx_view_bytes_max = sess->stats.rx_view_bytes;
}
/* Fails the session with a muxado code: GOAWAY(code, debug), every stream
 * closes with the code, SESSION_ENDED. debug must be static: it stays the
 * session's local_reason. Returns MUXRING_ERR(code). */
int mr_session_fail(struct mr_session *sess, uint32_t code, const char *debug);
/* Ends the session with local error err (negative), sending nothing. */
void mr_session_end(struct mr_session *sess, int err, uint32_t stream_code);
/* Memory ran out where the session cannot go on without it: GOAWAY
 * InternalError "out of memory" (if it fits), and the session ends with
 * local error -ENOMEM. Returns the session's local error. */
int mr_session_fail_nomem(struct mr_session *sess);

#endif
