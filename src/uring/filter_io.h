/*
 * filter_io.h - a session's transport filter (TLS) on the ring.
 *
 * A filtered session (muxring_session_opts.filter) receives ciphertext into
 * the loop's buffer ring like any other; the filter turns it into protocol
 * bytes, written into heap blocks from the loop's copy cache that the
 * engine references for its views. On the way out, the engine's frames go
 * through the filter and the ciphertext leaves in one send per turn. The
 * session's state machine (session_io.c) stays the same: these functions
 * are its hooks, called only for sessions that have a filter.
 */
#ifndef MUXRING_FILTER_IO_H
#define MUXRING_FILTER_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "muxring.h"

/* Bytes of each plaintext block, and the room below which a block is left
 * to its views and a fresh one taken (a TLS record holds 16 KiB). */
#define MR_PLAIN_BLOCK (64u << 10)
#define MR_PLAIN_ROOM (16u << 10)
/* Protocol bytes encrypted per send: its ciphertext then fits the copy
 * cache's 1 MiB class. */
#define MR_FILTER_SEND_MAX_BYTES ((256u << 10) - (8u << 10))

/* A filtered session's transport state, allocated with the session: the
 * sessions without a filter, most of them, carry only a NULL pointer. */
struct mr_fio {
	const struct muxring_filter *filter;
	void *state;                  /* its ops->open state */
	struct mr_buf *plain;         /* block decrypted bytes go into */
	size_t plain_off;             /* bytes of it used */
	struct mr_buf *cipher;        /* ciphertext of the send in flight */
	size_t cipher_off, cipher_len; /* sent so far, total */
	uint64_t handshake_deadline;  /* ns, 0: none */
	char *end_text;               /* why the filter failed, or NULL */
	struct mr_buf *rx_exact;      /* the exact read of a record's rest in
					 flight (receive hand-over), or NULL */
};

/* Opens the filter's state for session s (host: the name dialled, or
 * NULL). Returns 0, or the negative error of ops->open: the session has
 * then failed with it. */
int mr_fio_open(struct muxring_session *s, enum muxring_role role,
		const char *host);

/* The transport is connected: the handshake clock starts. */
void mr_fio_start(struct muxring_session *s);

/* True for a filtered session: its end-of-file goes to the filter (and
 * its received bytes too, until the kernel took them over). */
bool mr_fio_active(const struct muxring_session *s);

/* True while received bytes go through the filter: the kernel has not
 * taken the decryption over. */
bool mr_fio_decrypts(const struct muxring_session *s);

/* True while what the session sends goes through the filter: the kernel
 * has not taken the encryption over (kTLS). */
bool mr_fio_sends(const struct muxring_session *s);

/* True once the session may be reported ready: the handshake is done, or
 * the session failed (its READY then carries the error). */
bool mr_fio_ready(const struct muxring_session *s);

/* Received bytes (len 0: the peer's end-of-file). Feeds the engine with
 * what the filter decrypts; a failure ends the session. */
void mr_fio_input(struct muxring_session *s, const uint8_t *data, size_t len);

/* One step: drives a handshake that waits on no input (the client's first
 * flight), and notices the end of the handshake. */
void mr_fio_step(struct muxring_session *s);

/* Starts the session's one send when there is ciphertext (the engine's
 * frames are encrypted first once the handshake is done and the filter
 * said whether the kernel takes the sending over: that question waits
 * until the handshake's last bytes have left, so that the kernel's record
 * count starts at the first frame). Returns true when a send was started;
 * false also when the kernel took over (mr_fio_sends() is false then). */
bool mr_fio_start_send(struct muxring_session *s);

/* The receive hand-over to the kernel (after the sending went to it):
 * drives it one step and returns true while the multishot receive must
 * not be armed (it is being stopped, or the rest of a record is being
 * read exactly into s->rx_exact, which completes as a receive). */
bool mr_fio_rx_hold(struct muxring_session *s);

/* The cancel of the multishot receive completed. */
void mr_fio_rx_stopped(struct muxring_session *s);

/* After the hand-over, the kernel's receive failed with err: the filter
 * says what it means. Returns true when that was dealt with here (the
 * session goes on receiving, or ended, cleanly or with the filter's
 * words); false: err is the transport's, handled as on any session. */
bool mr_fio_rx_failed(struct muxring_session *s, int err);

/* The send finished with res (bytes, or a negative error). */
void mr_fio_send_done(struct muxring_session *s, int res);

/* The engine is done: queues the filter's clean end once. Returns true
 * when nothing is left to send, so the transport may be shut down. */
bool mr_fio_finish(struct muxring_session *s);

/* The handshake deadline (ns, 0: none) and its expiry at `now`. */
uint64_t mr_fio_deadline(const struct muxring_session *s);
void mr_fio_expire(struct muxring_session *s, uint64_t now);

/* Frees what the filter holds (its state, the blocks) and s->fio. */
void mr_fio_free(struct muxring_session *s);

#endif
