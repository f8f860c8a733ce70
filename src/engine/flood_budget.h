/*
 * flood_budget.h - what a peer may send that costs this side work without
 * carrying application data, and how much of it.
 *
 * The main idea: every kind of such "cheap" frame (WNDINC, RST, a stream
 * opened and reset at once, unknown types, empty DATA, DATA for a stream
 * that is gone) has an allowance made of two parts:
 *
 * - a base rate per second, refilled by the driver's clock (the engine
 *   never reads one: mr_session_set_now and mr_session_expire bring the
 *   time in); a burst of one second's worth is allowed at any moment;
 * - credit earned by legitimate exchange, kept for the whole session: a
 *   well-behaved peer's cheap frames answer what this side sent (a WNDINC
 *   for bytes it read, an RST for a DATA frame that reached a closed
 *   stream), so the allowance grows with the traffic and busy sessions
 *   never run short while a peer that floods gets only the base.
 *
 * GOAWAY is different: a peer sends one (two when it drains first) per
 * session, so its budget is a count per session. A peer past any budget
 * has the session ended with GOAWAY EnhanceYourCalm and a debug text that
 * names the flood, which is also the session's end reason.
 */
#ifndef MUXRING_FLOOD_BUDGET_H
#define MUXRING_FLOOD_BUDGET_H

#include <stdint.h>

enum mr_flood_kind {
	MR_FLOOD_WNDINC,      /* WNDINC frames */
	MR_FLOOD_RST,         /* RST frames */
	MR_FLOOD_CHURN,       /* RSTs of live streams the peer opened */
	MR_FLOOD_UNKNOWN,     /* frames of an unknown type */
	MR_FLOOD_EMPTY_DATA,  /* DATA with no payload whose flags change
				 nothing (no SYN, and no FIN for an open
				 stream) */
	MR_FLOOD_CLOSED_DATA, /* DATA for a stream that is not open (answered
				 with RST StreamClosed) */
	MR_FLOOD_KINDS,
};

/* The budgets of one session (part of struct mr_config). Rates are frames
 * per second of the driver's clock; see mr_flood_limits_default() for the
 * defaults and why. */
struct mr_flood_limits {
	uint32_t wndinc_per_sec;
	uint32_t rst_per_sec;
	uint32_t churn_per_sec;
	uint32_t unknown_per_sec;
	uint32_t empty_data_per_sec;
	uint32_t closed_data_per_sec;
	uint32_t max_goaways;  /* GOAWAY frames per session */
};

/* A session's allowances as they stand. */
struct mr_flood_budget {
	/* Per kind, in billionths of a frame (so that time refills in whole
	 * units): what the peer may still send. Time refills up to one
	 * second's worth; earned credit may take it beyond. */
	uint64_t tokens[MR_FLOOD_KINDS];
	uint64_t refilled_at;  /* driver's clock at the last refill, ns */
	uint32_t goaways;      /* GOAWAY frames received so far */
};

/* Fills in the default budgets. */
void mr_flood_limits_default(struct mr_flood_limits *lim);

/* Starts every allowance full (one second's worth). */
void mr_flood_budget_init(struct mr_flood_budget *b,
			  const struct mr_flood_limits *lim);

struct mr_session;
struct mr_stream;

/*
 * The peer sent one frame of `kind`: takes it from the allowance. Returns
 * 0, or MUXRING_ERR(MUXRING_ENHANCE_YOUR_CALM) once the allowance is spent:
 * the session has then failed with GOAWAY EnhanceYourCalm naming the
 * flood (or the error that had already ended it).
 */
int mr_flood_charge(struct mr_session *sess, enum mr_flood_kind kind);

/* The peer sent a GOAWAY: the same, against max_goaways per session. */
int mr_flood_charge_goaway(struct mr_session *sess);

/* A stream was opened, by either side: the peer may raise its window
 * (WNDINC), reset it (RST), still have DATA in flight when it ends early,
 * and send a FIN for it after it is gone (empty DATA). */
void mr_flood_earn_stream(struct mr_session *sess);

/* A peer's SYN was refused: the peer may still send the stream's FIN, and
 * the DATA it had in flight, before our RST reaches it. */
void mr_flood_earn_refused(struct mr_session *sess);

/* This side committed a DATA frame of `payload` bytes on `stream`: the peer
 * may credit each byte with a WNDINC of its own (Go sends one per read) and
 * answer the frame with an RST (when it reaches a closed stream), also by
 * resetting a stream it opened. */
void mr_flood_earn_data_sent(struct mr_session *sess,
			     const struct mr_stream *stream, uint32_t payload);

#endif
