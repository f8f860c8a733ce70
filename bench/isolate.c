/*
 * isolate.c - each cell in a process of its own.
 *
 * The memory figures (idle, sessions) are the process's resident set plus
 * the kernel's slab, and a process does not give back every heap page it
 * frees. After the idle cell's 100,000 muxring streams were gone the
 * resident set stayed 37 MB larger, with malloc_trim(0) called or not
 * (most likely the tops of the loop threads' heaps: glibc raises the trim
 * threshold with the mmap threshold, and malloc_trim does not trim a
 * thread heap from its top), and the sessions cell that came next grew it
 * by 1.5 MB for 10,000 sessions: 10.1 to 10.5 KB per session against
 * 13.2 to 13.9 KB when run alone. A child process per cell starts every
 * cell from the same heap.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct outcome {
	int rc;
	struct bench_result result;
};

static int read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void run_child(int fd, const struct bench_impl *impl,
		      const struct bench_cell *cell)
{
	struct outcome o = {0};
	size_t sent = 0;

	bench_result_init(&o.result);
	o.rc = bench_run_cell(impl, cell, &o.result);
	while (sent < sizeof(o)) {
		ssize_t n = write(fd, (char *)&o + sent, sizeof(o) - sent);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		sent += (size_t)n;
	}
	_exit(0);
}

int bench_run_isolated(const struct bench_impl *impl,
		       const struct bench_cell *cell, struct bench_result *out)
{
	struct outcome o;
	int fds[2], got;
	pid_t pid;

	if (pipe(fds) < 0)
		return bench_error(impl->name, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return bench_error(impl->name, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(fds[0]);
		run_child(fds[1], impl, cell);
	}
	close(fds[1]);
	got = read_all(fds[0], &o, sizeof(o));
	close(fds[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (got < 0)
		return bench_error(impl->name, "the cell's process ended without a result");
	*out = o.result;
	return o.rc;
}
