/*
 * valgrind_run.c - time budgets and waits under `make valgrind`.
 */
#include "valgrind_run.h"

#include <stdlib.h>
#include <unistd.h>

#include "muxring.h"

#define VG_SLOWDOWN 30.0
#define VG_PAUSE_US 100

bool vg_active(void)
{
	const char *v = getenv("MUXRING_VALGRIND");

	return v && *v && *v != '0';
}

double vg_seconds(double seconds)
{
	return vg_active() ? seconds * VG_SLOWDOWN : seconds;
}

int vg_submit_and_wait(struct muxring_loop *loop, unsigned min_entries,
		       int64_t timeout_ns)
{
	int rc;

	if (!vg_active())
		return muxring_submit_and_wait(loop, min_entries, timeout_ns);
	rc = muxring_submit_and_wait(loop, min_entries, 0);
	if (rc >= 0 && (unsigned)rc < min_entries)
		usleep(VG_PAUSE_US);
	return rc;
}
