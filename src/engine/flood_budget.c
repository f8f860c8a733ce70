/*
 * flood_budget.c - allowances for the frames a peer sends that cost work
 * without carrying application data (see flood_budget.h for the model).
 *
 * Each allowance is a token bucket counted in billionths of a frame: the
 * driver's clock adds `rate` frames per second up to one second's worth,
 * legitimate exchange adds whole frames beyond that, and each frame the
 * peer sends takes one. Integer arithmetic throughout: a refill multiplies
 * at most one second of nanoseconds by a 32-bit rate, which fits in 64 bits.
 */
#include "engine/flood_budget.h"

#include "engine/session_internal.h"

#define NS_PER_SEC 1000000000ull
/* One frame, in the buckets' unit. */
#define FRAME_TOKENS NS_PER_SEC

void mr_flood_limits_default(struct mr_flood_limits *lim)
{
	*lim = (struct mr_flood_limits){
		/* Legitimate WNDINCs are earned: one per payload byte sent
		 * (Go credits every read, each of at least a byte) and one
		 * per stream (a window raise). The base is slack for peers
		 * that grant ahead of consumption. */
		.wndinc_per_sec = 1000,
		/* Legitimate RSTs are earned: one per DATA frame sent (Go
		 * answers each frame that reaches a closed stream) and one
		 * per stream (a reset, a refused SYN). The base is slack. */
		.rst_per_sec = 1000,
		/* A stream the peer opens and resets is paid for by every
		 * DATA frame this side sent on the peer's streams (a served
		 * request earns one cancelled one): a client that cancels
		 * a share of its requests never runs short, one that only
		 * opens and resets gets the base. */
		.churn_per_sec = 1000,
		/* Go sends none; muxring sends one after a GOAWAY that
		 * keeps the session open. The base leaves room for an
		 * extension a future peer might speak. */
		.unknown_per_sec = 100,
		/* Go sends none but a FIN for a stream this side already
		 * ended (earned: one per stream); muxring never sends an
		 * empty frame without SYN or FIN. */
		.empty_data_per_sec = 100,
		/* A stream ended early by this side still receives what the
		 * peer had in flight: up to a window (256 KiB), which a
		 * writer of 64-byte messages sends as 4,096 frames. The base
		 * covers two such resets a second, plus one frame per
		 * stream; the RST replies are capped apart from this by
		 * max_control_backlog. */
		.closed_data_per_sec = 10000,
		/* Go sends one GOAWAY per session; muxring two when it drains
		 * before closing. */
		.max_goaways = 8,
	};
}

static uint32_t rate_of(const struct mr_flood_limits *lim,
			enum mr_flood_kind kind)
{
	switch (kind) {
	case MR_FLOOD_WNDINC:
		return lim->wndinc_per_sec;
	case MR_FLOOD_RST:
		return lim->rst_per_sec;
	case MR_FLOOD_CHURN:
		return lim->churn_per_sec;
	case MR_FLOOD_UNKNOWN:
		return lim->unknown_per_sec;
	case MR_FLOOD_EMPTY_DATA:
		return lim->empty_data_per_sec;
	case MR_FLOOD_CLOSED_DATA:
	default:
		return lim->closed_data_per_sec;
	}
}

/* The GOAWAY debug text and session end reason of each flood. */
static const char *reason_of(enum mr_flood_kind kind)
{
	switch (kind) {
	case MR_FLOOD_WNDINC:
		return "WNDINC flood: more than wndinc_per_sec plus one per "
		       "payload byte sent";
	case MR_FLOOD_RST:
		return "RST flood: more than rst_per_sec plus one per DATA "
		       "frame sent";
	case MR_FLOOD_CHURN:
		return "stream churn: streams opened and reset faster than "
		       "churn_per_sec";
	case MR_FLOOD_UNKNOWN:
		return "flood of unknown frame types: more than "
		       "unknown_per_sec";
	case MR_FLOOD_EMPTY_DATA:
		return "empty DATA flood: more than empty_data_per_sec";
	case MR_FLOOD_CLOSED_DATA:
	default:
		return "flood of DATA on closed streams: more than "
		       "closed_data_per_sec";
	}
}

static uint64_t one_second_of(uint32_t rate)
{
	return (uint64_t)rate * FRAME_TOKENS;
}

static uint64_t add_saturated(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void mr_flood_budget_init(struct mr_flood_budget *b,
			  const struct mr_flood_limits *lim)
{
	int kind;

	*b = (struct mr_flood_budget){0};
	for (kind = 0; kind < MR_FLOOD_KINDS; kind++)
		b->tokens[kind] = one_second_of(rate_of(lim, kind));
}

/* Adds the time passed since the last refill to every bucket, each up to
 * one second's worth (earned credit above that is kept). A clock that
 * stands still or goes back adds nothing. */
static void refill(struct mr_session *sess)
{
	struct mr_flood_budget *b = &sess->flood;
	uint64_t elapsed;
	int kind;

	if (sess->now <= b->refilled_at)
		return;
	elapsed = sess->now - b->refilled_at;
	if (elapsed > NS_PER_SEC)
		elapsed = NS_PER_SEC;
	b->refilled_at = sess->now;
	for (kind = 0; kind < MR_FLOOD_KINDS; kind++) {
		uint32_t rate = rate_of(&sess->cfg.flood, kind);
		uint64_t full = one_second_of(rate);

		if (b->tokens[kind] < full) {
			uint64_t filled = b->tokens[kind] + elapsed * rate;

			b->tokens[kind] = filled < full ? filled : full;
		}
	}
}

int mr_flood_charge(struct mr_session *sess, enum mr_flood_kind kind)
{
	uint64_t *tokens = &sess->flood.tokens[kind];

	refill(sess);
	if (*tokens < FRAME_TOKENS)
		return mr_session_fail(sess, MUXRING_ENHANCE_YOUR_CALM,
				       reason_of(kind));
	*tokens -= FRAME_TOKENS;
	return 0;
}

int mr_flood_charge_goaway(struct mr_session *sess)
{
	if (sess->flood.goaways >= sess->cfg.flood.max_goaways)
		return mr_session_fail(sess, MUXRING_ENHANCE_YOUR_CALM,
				       "GOAWAY flood: more than max_goaways "
				       "in one session");
	sess->flood.goaways++;
	return 0;
}

static void earn(struct mr_session *sess, enum mr_flood_kind kind,
		 uint64_t frames)
{
	sess->flood.tokens[kind] = add_saturated(sess->flood.tokens[kind],
						 frames * FRAME_TOKENS);
}

void mr_flood_earn_stream(struct mr_session *sess)
{
	earn(sess, MR_FLOOD_WNDINC, 1);
	earn(sess, MR_FLOOD_RST, 1);
	earn(sess, MR_FLOOD_EMPTY_DATA, 1);
	earn(sess, MR_FLOOD_CLOSED_DATA, 1);
}

void mr_flood_earn_refused(struct mr_session *sess)
{
	earn(sess, MR_FLOOD_EMPTY_DATA, 1);
	earn(sess, MR_FLOOD_CLOSED_DATA, 1);
}

void mr_flood_earn_data_sent(struct mr_session *sess,
			     const struct mr_stream *stream, uint32_t payload)
{
	earn(sess, MR_FLOOD_WNDINC, payload);
	earn(sess, MR_FLOOD_RST, 1);
	if (!(stream->flags & MR_STREAM_LOCAL))
		earn(sess, MR_FLOOD_CHURN, 1);
}
