/*
 * codes.c - names and meanings of the muxado error codes.
 *
 * One table holds both the short name (as the Go reference spells its
 * ErrorCode constants, so logs read the same on both sides) and the meaning.
 */
#include "wire/codes.h"

#include "muxring.h"

struct code_text {
	const char *name;
	const char *meaning;
};

static const struct code_text code_texts[] = {
	[MUXRING_NO_ERROR] = {"NoError", "no error"},
	[MUXRING_PROTOCOL_ERROR] = {"ProtocolError", "the peer broke the protocol"},
	[MUXRING_INTERNAL_ERROR] = {"InternalError", "internal error"},
	[MUXRING_FLOW_CONTROL_ERROR] = {"FlowControlError",
					"the peer sent more than the window allowed"},
	[MUXRING_STREAM_CLOSED] = {"StreamClosed", "the stream is closed"},
	[MUXRING_STREAM_REFUSED] = {"StreamRefused", "the stream was refused"},
	[MUXRING_STREAM_CANCELLED] = {"StreamCancelled", "the stream was cancelled"},
	[MUXRING_STREAM_RESET] = {"StreamReset", "the stream was reset"},
	[MUXRING_FRAME_SIZE_ERROR] = {"FrameSizeError", "a frame had an illegal length"},
	[MUXRING_ACCEPT_QUEUE_FULL] = {"AcceptQueueFull", "the accept backlog is full"},
	[MUXRING_ENHANCE_YOUR_CALM] = {"EnhanceYourCalm",
				       "the peer is generating excessive load"},
	[MUXRING_REMOTE_GONE_AWAY] = {"RemoteGoneAway",
				      "the peer sent GOAWAY; no new streams may be opened"},
	[MUXRING_STREAMS_EXHAUSTED] = {"StreamsExhausted",
				       "no stream ids are left on this session"},
	[MUXRING_WRITE_TIMEOUT] = {"WriteTimeout",
				   "a write did not finish before its deadline"},
	[MUXRING_SESSION_CLOSED] = {"SessionClosed", "the session was closed locally"},
	[MUXRING_PEER_EOF] = {"PeerEOF", "the transport reached end-of-file"},
};

static const struct code_text *code_text(uint32_t code)
{
	static const struct code_text unknown = {"Unknown", "unknown error"};

	if (code < sizeof(code_texts) / sizeof(code_texts[0]) &&
	    code_texts[code].name)
		return &code_texts[code];
	return &unknown;
}

const char *mr_code_name(uint32_t code)
{
	return code_text(code)->name;
}

const char *mr_code_meaning(uint32_t code)
{
	return code_text(code)->meaning;
}
