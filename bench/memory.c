/*
 * memory.c - what N idle streams weigh: process RSS plus kernel slab.
 *
 * An idle muxring stream lives in the process's memory; an idle TCP
 * connection mostly lives in the kernel (socket, inode, file, dentry,
 * epoll item or pending io_uring request: all slab objects).  To compare
 * them honestly the idle workload counts both: this process's resident
 * set (/proc/self/statm) plus the kernel's slab (SReclaimable +
 * SUnreclaim from /proc/meminfo).  Slab is system-wide, so other activity
 * on the machine shows up as noise of a few MB; over 100,000 streams that
 * is a few tens of bytes per stream.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int read_rss(uint64_t *bytes)
{
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
	fclose(f);
	if (!ok)
		return -EIO;
	*bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
	return 0;
}

static int read_slab(uint64_t *bytes)
{
	char line[256];
	unsigned long kb, total = 0;
	int found = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "SReclaimable: %lu kB", &kb) == 1 ||
		    sscanf(line, "SUnreclaim: %lu kB", &kb) == 1) {
			total += kb;
			found++;
		}
	}
	fclose(f);
	if (found != 2)
		return -EIO;
	*bytes = (uint64_t)total * 1024u;
	return 0;
}

int bench_mem_sample(struct bench_mem *m)
{
	int err = read_rss(&m->rss_bytes);

	if (err == 0)
		err = read_slab(&m->slab_bytes);
	return err;
}

double bench_mem_per_stream(const struct bench_mem *before,
			    const struct bench_mem *after, unsigned long n)
{
	double d = ((double)after->rss_bytes - (double)before->rss_bytes) +
		   ((double)after->slab_bytes - (double)before->slab_bytes);

	return n ? d / (double)n : 0;
}
