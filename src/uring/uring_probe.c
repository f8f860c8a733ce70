/*
 * uring_probe.c - io_uring setup with fallbacks, feature probe, and errors
 * that say what to do.
 *
 * Setup flags are tried newest first (SINGLE_ISSUER + DEFER_TASKRUN: 6.1;
 * COOP_TASKRUN: 5.19) and dropped on -EINVAL. Some features have no flag to
 * probe, only an opcode that arrived in the same release; those inferences
 * are spelled out below. The driver needs provided-buffer rings (5.19), so
 * anything older fails with a clear message instead of half working.
 */
#include "uring/uring_probe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "muxring.h"

/* Opcodes the driver cannot do without. */
static const struct {
	int op;
	const char *name;
} required_ops[] = {
	{IORING_OP_RECV, "RECV"},
	{IORING_OP_SENDMSG, "SENDMSG"},
	{IORING_OP_TIMEOUT, "TIMEOUT"},
	{IORING_OP_TIMEOUT_REMOVE, "TIMEOUT_REMOVE"},
	{IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
	{IORING_OP_ACCEPT, "ACCEPT"},
	{IORING_OP_CONNECT, "CONNECT"},
	{IORING_OP_SHUTDOWN, "SHUTDOWN"},
};

static int read_sysctl(const char *path, long *value)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%ld", value) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

static void explain_setup(int err, char *why, size_t why_len)
{
	long disabled = 0, group = -1;

	switch (err) {
	case -ENOSYS:
		snprintf(why, why_len,
			 "io_uring_setup: function not implemented: this kernel "
			 "has no io_uring (CONFIG_IO_URING) or a seccomp profile "
			 "hides it (container runtimes often do); run on Linux "
			 "5.19 or later with io_uring, or allow the io_uring_setup, "
			 "io_uring_enter and io_uring_register system calls in the "
			 "seccomp profile");
		return;
	case -EPERM:
		if (read_sysctl("/proc/sys/kernel/io_uring_disabled",
				&disabled) == 0 && disabled == 2) {
			snprintf(why, why_len,
				 "io_uring is disabled by sysctl "
				 "kernel.io_uring_disabled=2; an administrator "
				 "can enable it with 'sysctl -w "
				 "kernel.io_uring_disabled=0'");
			return;
		}
		if (disabled == 1) {
			read_sysctl("/proc/sys/kernel/io_uring_group", &group);
			snprintf(why, why_len,
				 "io_uring is restricted by sysctl "
				 "kernel.io_uring_disabled=1 to processes with "
				 "CAP_SYS_ADMIN or in group kernel.io_uring_group "
				 "(gid %ld); add this user to that group, or set "
				 "the sysctl to 0",
				 group);
			return;
		}
		snprintf(why, why_len,
			 "io_uring_setup: operation not permitted: a seccomp or "
			 "LSM policy forbids io_uring (container runtimes' default "
			 "profiles often do); allow the io_uring_setup, "
			 "io_uring_enter and io_uring_register system calls");
		return;
	case -ENOMEM:
		snprintf(why, why_len,
			 "io_uring_setup: out of memory: on kernels before 5.12 "
			 "the rings count against RLIMIT_MEMLOCK; raise 'ulimit "
			 "-l' or use fewer sq_entries");
		return;
	default:
		mr_uring_explain(err, "io_uring_setup", why, why_len);
	}
}

void mr_uring_explain(int err, const char *step, char *why, size_t why_len)
{
	switch (err) {
	case -EOPNOTSUPP:
		snprintf(why, why_len,
			 "%s: this kernel's io_uring is too old; muxring needs "
			 "Linux 5.19 or later (provided-buffer rings)",
			 step);
		return;
	case -ENOMEM:
		snprintf(why, why_len,
			 "%s: out of memory (or RLIMIT_MEMLOCK too low for the "
			 "buffer rings on kernels before 5.12: raise 'ulimit "
			 "-l', or ask for fewer/smaller buffers)",
			 step);
		return;
	case -EINVAL:
		snprintf(why, why_len,
			 "%s: invalid argument (an option is out of range; "
			 "recv_buffers must be at most 32768, recv_low_water "
			 "below recv_buffers)",
			 step);
		return;
	default:
		snprintf(why, why_len, "%s: %s", step, strerror(-err));
	}
}

/* Setup attempts, newest first; each drops what the previous added. */
static const struct {
	unsigned setup_flags;
	unsigned feature;
} attempts[] = {
	{IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	 MUXRING_FEAT_SINGLE_ISSUER | MUXRING_FEAT_DEFER_TASKRUN},
	{IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
	 MUXRING_FEAT_SINGLE_ISSUER | MUXRING_FEAT_COOP_TASKRUN},
	{IORING_SETUP_COOP_TASKRUN, MUXRING_FEAT_COOP_TASKRUN},
	{0, 0},
};

/* What the kernel says of itself in the ring's parameters, whatever the
 * setup flags. */
static unsigned ring_features(const struct io_uring_params *p,
			      unsigned disable)
{
	unsigned features = 0;

	if (p->features & IORING_FEAT_EXT_ARG)
		features |= MUXRING_FEAT_EXT_ARG;
	if (p->features & IORING_FEAT_RECVSEND_BUNDLE &&
	    !(disable & MUXRING_FEAT_RECV_BUNDLE))
		features |= MUXRING_FEAT_RECV_BUNDLE;
	return features;
}

/* An SQ polling ring: the thread is the only submitter, so SINGLE_ISSUER
 * holds; DEFER_TASKRUN cannot go with it. */
static int setup_sqpoll(struct io_uring *ring, unsigned entries,
			unsigned disable, unsigned *features)
{
	struct io_uring_params p;
	int err;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQPOLL | IORING_SETUP_CQSIZE;
	p.cq_entries = entries * 4;
	p.sq_thread_idle = MUXRING_SQPOLL_IDLE_MS;
	err = io_uring_queue_init_params(entries, ring, &p);
	if (err == 0)
		*features = MUXRING_FEAT_SQPOLL |
			    ring_features(&p, disable);
	return err;
}

static int setup_ring(struct io_uring *ring, unsigned entries,
		      unsigned disable, bool sqpoll, unsigned *features)
{
	struct io_uring_params p;
	size_t i;
	int err = -EINVAL;

	if (sqpoll && !(disable & MUXRING_FEAT_SQPOLL) &&
	    setup_sqpoll(ring, entries, disable, features) == 0)
		return 0;
	for (i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
		if (attempts[i].feature & disable)
			continue;
		memset(&p, 0, sizeof(p));
		p.flags = attempts[i].setup_flags | IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		err = io_uring_queue_init_params(entries, ring, &p);
		if (err == 0) {
			*features = attempts[i].feature |
				    ring_features(&p, disable);
			/* CQE_SKIP_SUCCESS (5.17) is a feature flag, not an
			 * opcode: the ring says whether it honours it. (Not
			 * with SQPOLL: a send is then issued by the kernel's
			 * thread, after the enter, so the SQ head no longer
			 * says that its failure was posted.) */
			if (p.features & IORING_FEAT_CQE_SKIP &&
			    !(disable & MUXRING_FEAT_SEND_QUIET))
				*features |= MUXRING_FEAT_SEND_QUIET;
			return 0;
		}
		if (err != -EINVAL)
			return err;
	}
	return err;
}

int mr_uring_setup(struct io_uring *ring, unsigned entries, unsigned disable,
		   bool sqpoll, unsigned *features, char *why, size_t why_len)
{
	struct io_uring_probe *probe;
	size_t i;
	int err;

	err = setup_ring(ring, entries, disable, sqpoll, features);
	if (err) {
		explain_setup(err, why, why_len);
		return err;
	}
	if (!(*features & MUXRING_FEAT_EXT_ARG)) {
		/* Every wait passes its timeout to io_uring_enter (5.11). */
		io_uring_queue_exit(ring);
		snprintf(why, why_len,
			 "io_uring: the kernel lacks IORING_FEAT_EXT_ARG; "
			 "muxring needs Linux 5.19 or later");
		return -EOPNOTSUPP;
	}
	probe = io_uring_get_probe_ring(ring);
	if (!probe) {
		io_uring_queue_exit(ring);
		snprintf(why, why_len,
			 "io_uring: the kernel cannot list its operations "
			 "(IORING_REGISTER_PROBE, Linux 5.6); muxring needs "
			 "Linux 5.19 or later");
		return -EOPNOTSUPP;
	}
	for (i = 0; i < sizeof(required_ops) / sizeof(required_ops[0]); i++) {
		if (!io_uring_opcode_supported(probe, required_ops[i].op)) {
			snprintf(why, why_len,
				 "io_uring: the kernel lacks IORING_OP_%s; "
				 "muxring needs Linux 5.19 or later",
				 required_ops[i].name);
			io_uring_free_probe(probe);
			io_uring_queue_exit(ring);
			return -EOPNOTSUPP;
		}
	}
	/* Multishot accept came with IORING_OP_SOCKET (5.19), multishot
	 * receive with IORING_OP_SEND_ZC (6.0); neither has a flag to ask. */
	if (io_uring_opcode_supported(probe, IORING_OP_SOCKET) &&
	    !(disable & MUXRING_FEAT_ACCEPT_MULTISHOT))
		*features |= MUXRING_FEAT_ACCEPT_MULTISHOT;
	if (io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) &&
	    !(disable & MUXRING_FEAT_RECV_MULTISHOT))
		*features |= MUXRING_FEAT_RECV_MULTISHOT;
	if (io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC) &&
	    !(disable & MUXRING_FEAT_SEND_ZC))
		*features |= MUXRING_FEAT_SEND_ZC; /* kept only if asked */
	io_uring_free_probe(probe);
	return 0;
}
