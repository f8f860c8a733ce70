/*
 * raw_peer.h - a hand-driven muxado peer over a plain socket, for hostile
 * tests of the loop.
 *
 * The test writes frames byte for byte as it likes (1-byte DATA frames,
 * half a header, ...) into an output queue that rp_flush() pushes into the
 * non-blocking socket as far as the kernel takes it, never blocking the
 * loop that runs in the same thread. Reading is optional: a peer that
 * never calls rp_read() never reads, so the kernel's buffers fill up behind
 * it; one that does parses what arrives into frames, keeps the send credit
 * of each of its streams (the initial window plus every WNDINC) and counts
 * the payload it was sent, which it drops.
 *
 * Streams are the client's: ids 3, 5, 7, ... (index i is id 3 + 2i).
 */
#ifndef MUXRING_TEST_RAW_PEER_H
#define MUXRING_TEST_RAW_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_MAX_STREAMS 64u

struct rp {
	int fd;                    /* non-blocking; closed by rp_free */
	uint8_t *out;              /* bytes queued, from out_off on */
	size_t out_len, out_off, out_cap;
	uint64_t written;          /* bytes the kernel took */

	/* What arrives (rp_read). */
	uint8_t hdr[8];
	size_t hdr_have;
	uint8_t word[4];
	size_t word_have;
	uint32_t body_left;        /* body bytes of the current frame */
	uint8_t type;              /* of the current frame */
	uint32_t stream_id;        /* of the current frame */
	bool eof;                  /* the other side closed */
	uint64_t credit[RP_MAX_STREAMS];   /* bytes stream i may still send */
	uint64_t data_in[RP_MAX_STREAMS];  /* payload bytes received */
	uint64_t wndinc_frames, rst_frames, goaway_frames;
};

static inline uint32_t rp_id(unsigned index)
{
	return 3 + 2 * index;
}

/* A peer on fd (made non-blocking here); every stream's credit starts at
 * the protocol's initial window. */
void rp_init(struct rp *p, int fd);
void rp_free(struct rp *p);

/* Queues raw bytes, or one frame. */
void rp_put(struct rp *p, const void *data, size_t len);
void rp_data(struct rp *p, uint32_t id, uint8_t flags, const void *payload,
	     size_t len);
void rp_wndinc(struct rp *p, uint32_t id, uint32_t increment);

/* Writes queued bytes until the kernel takes no more; returns how many
 * remain queued. */
size_t rp_flush(struct rp *p);

/* Reads what has arrived and parses it (see above); returns bytes read. */
size_t rp_read(struct rp *p);

/* The process's resident set in bytes (/proc/self/statm). */
uint64_t rp_rss_bytes(void);

/* Raises the soft limit of open files to `want` (or the hard limit, if
 * lower); returns the new soft limit. */
uint64_t rp_raise_nofile(uint64_t want);

#endif
