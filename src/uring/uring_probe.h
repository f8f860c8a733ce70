/*
 * uring_probe.h - setting up the io_uring and learning what the kernel has.
 *
 * The newest setup flags are tried first and dropped one by one when the
 * kernel refuses them; opcodes are learned from IORING_REGISTER_PROBE. When
 * io_uring cannot be set up at all, the error is turned into a sentence that
 * names the cause (no io_uring in the kernel, sysctl, seccomp) and the fix.
 */
#ifndef MUXRING_URING_PROBE_H
#define MUXRING_URING_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include <liburing.h>

/* Constants newer than Debian's liburing 2.3 headers. */
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_ASYNC_CANCEL_ALL
#define IORING_ASYNC_CANCEL_ALL (1U << 0)
#endif
#ifndef IORING_ASYNC_CANCEL_ANY
#define IORING_ASYNC_CANCEL_ANY (1U << 2)
#endif
#ifndef IORING_FEAT_CQE_SKIP
#define IORING_FEAT_CQE_SKIP (1U << 11)
#endif
#ifndef IOSQE_CQE_SKIP_SUCCESS
#define IOSQE_CQE_SKIP_SUCCESS (1U << 6)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_TIMEOUT_ETIME_SUCCESS
#define IORING_TIMEOUT_ETIME_SUCCESS (1U << 5)
#endif

/*
 * Sets up `ring` with `entries` submission entries and four times as many
 * completion entries, using the MUXRING_FEAT_* setup features not in
 * `disable` that the kernel accepts, then probes opcodes. *features gets the
 * MUXRING_FEAT_* bits in use. On failure returns -errno and writes a
 * sentence naming the cause and the remedy into why[why_len]. With sqpoll,
 * a submission-queue polling thread is asked for first (without
 * DEFER_TASKRUN, which excludes it), then the usual attempts.
 */
int mr_uring_setup(struct io_uring *ring, unsigned entries, unsigned disable,
		   bool sqpoll, unsigned *features, char *why, size_t why_len);

/* Fills why[] for an error of a later step of loop creation (-errno). */
void mr_uring_explain(int err, const char *step, char *why, size_t why_len);

#endif
