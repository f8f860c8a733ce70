/*
 * listener.h - a listening socket whose accepted connections become server
 * sessions, with multishot accept where the kernel has it.
 */
#ifndef MUXRING_LISTENER_H
#define MUXRING_LISTENER_H

#include <stdbool.h>
#include <stdint.h>

#include <liburing.h>

#include "uring/loop.h"

struct muxring_listener {
	struct muxring_loop *loop;
	struct muxring_listener *next;   /* the loop's list */
	int fd;                          /* -1 once closed */
	uint64_t user_data;
	struct muxring_session_opts opts; /* for every accepted session */
	uint32_t inflight;               /* SQEs not finished */
	int error;                       /* why it stopped (0: closed) */
	bool accept_armed;
	bool retry_armed;                /* waiting before re-arming */
	bool closing;                    /* close asked, or a fatal error */
	bool accept_cancelled;           /* closing: its cancel submitted */
	bool retry_cancelled;            /* closing: its removal submitted */
	bool closed_posted;              /* LISTENER_CLOSED queued */
	struct __kernel_timespec retry_ts;
};

/* Arms the accept; once closing, cancels what is armed and, when idle,
 * posts LISTENER_CLOSED. What the ring refused (no SQE) is tried again at
 * the next step, which the loop makes every turn. */
void mr_listener_step(struct muxring_listener *l);

void mr_listener_complete(struct muxring_listener *l, enum mr_op_tag tag,
			  const struct io_uring_cqe *cqe);

/* Frees it (after LISTENER_CLOSED was advanced past, or at loop destroy). */
void mr_listener_free(struct muxring_listener *l);

#endif
