/*
 * memory.c - what N idle streams weigh: process RSS plus kernel slab.
 *
 * An idle muxring stream lives in the process's memory; an idle TCP
 * connection mostly lives in the kernel (socket, inode, file, dentry,
 * epoll item or pending io_uring request: all slab objects).  To compare
 * them honestly the idle workload counts both: this process's resident
 * set (/proc/self/statm) plus the kernel's slab.
 *
 * The slab is counted by the objects in use, from /proc/slabinfo (active
 * objects times their size), where that file can be read (root).  The
 * pages the slab holds (SReclaimable + SUnreclaim in /proc/meminfo, the
 * fallback) say less: objects freed by a cell that ran before stay in
 * their pages, and the next cell reuses them without the page count
 * growing, so whichever implementation runs second looked up to 3 KB per
 * connection lighter than when it ran alone.  Either way the slab is
 * system-wide: other activity on the machine shows up as noise of a few
 * MB, a few tens of bytes per stream over 100,000 streams.
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

/* The bytes of every slab object in use: per cache, active objects times
 * the object size.  /proc's inodes are left out, and a dentry for each: a
 * connection makes none, but a monitor that lists the descriptors of every
 * process (as one on the machines this was written on does, every few
 * seconds) makes an inode and its dentry per descriptor, and whether its
 * pass falls inside a cell's window, and finds those of an earlier cell's
 * descriptors still cached, is luck (with 20,000 descriptors open, its
 * dentries alone are 0.4 KB per session of the sessions cell). */
static int read_slab_objects(uint64_t *bytes)
{
	char line[512], name[64];
	unsigned long active, total, size;
	uint64_t sum = 0, proc_inodes = 0, dentry_size = 0;
	FILE *f = fopen("/proc/slabinfo", "r");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lu %lu %lu", name, &active, &total,
			   &size) != 4)
			continue;
		if (strcmp(name, "proc_inode_cache") == 0) {
			proc_inodes = active;
			continue;
		}
		if (strcmp(name, "dentry") == 0)
			dentry_size = size;
		sum += (uint64_t)active * size;
	}
	fclose(f);
	if (sum <= proc_inodes * dentry_size)
		return -EIO;
	*bytes = sum - proc_inodes * dentry_size;
	return 0;
}

/* The pages the slab holds, for when /proc/slabinfo is not readable. */
static int read_slab_pages(uint64_t *bytes)
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

static int read_slab(uint64_t *bytes)
{
	return read_slab_objects(bytes) == 0 ? 0 : read_slab_pages(bytes);
}

int bench_mem_sample(struct bench_mem *m)
{
	int err = read_rss(&m->rss_bytes);

	if (err == 0)
		err = read_slab(&m->slab_bytes);
	return err;
}

double bench_mem_per_stream(const struct bench_mem *before,
			    const struct bench_mem *after, unsigned long n,
			    double *kernel)
{
	double slab = (double)after->slab_bytes - (double)before->slab_bytes;
	double rss = (double)after->rss_bytes - (double)before->rss_bytes;

	*kernel = n ? slab / (double)n : 0;
	return n ? (rss + slab) / (double)n : 0;
}
