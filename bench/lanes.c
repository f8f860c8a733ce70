/*
 * lanes.c - one cell over several loops (muxbench --loops N).
 *
 * Main idea: an impl knows how to run a cell with one client loop and one
 * server loop.  N loops per side are N copies of that run side by side,
 * each on its own thread with its own share of the streams (so each
 * muxring copy is its own session between its own client and server
 * loops, each pool copy its own pool with its own two threads), and
 * nothing shared between them but the kernel.  That is how an
 * application spreads sessions over cores with muxring: a loop per
 * thread, no state shared between loops.  Two things make the copies one
 * measurement:
 *
 *   - the start line: every copy calls bench_clock_start() when its
 *     set-up is done and waits there for the others, so that the windows
 *     coincide and no copy is measured while another is still connecting;
 *   - the merge: rates and counts are summed, the window is the longest
 *     copy's, and latencies are merged bucket by bucket (each copy's
 *     histogram is captured when its run() reports it), so p50 and p99
 *     are the percentiles of every request of the cell.
 */
#include "bench.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The start line of the cell being run; one cell runs at a time. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned expected;	/* copies that will call bench_clock_start */
	unsigned arrived;
	bool open;		/* released: all arrived, or one copy ended
				 * without arriving (it failed) */
} start_line = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
		 0, 0, true };

/* Where the copy running on this thread leaves its latencies. */
static _Thread_local struct bench_latency *captured_latency;

void bench_clock_start(void)
{
	pthread_mutex_lock(&start_line.mu);
	if (!start_line.open && ++start_line.arrived >= start_line.expected) {
		start_line.open = true;
		pthread_cond_broadcast(&start_line.cv);
	}
	while (!start_line.open)
		pthread_cond_wait(&start_line.cv, &start_line.mu);
	pthread_mutex_unlock(&start_line.mu);
}

/* A copy's run() returned: if the others still wait for it, it is not
 * coming (it failed before its start), so let them go. */
static void start_line_leave(void)
{
	pthread_mutex_lock(&start_line.mu);
	start_line.open = true;
	pthread_cond_broadcast(&start_line.cv);
	pthread_mutex_unlock(&start_line.mu);
}

static void start_line_reset(unsigned expected)
{
	pthread_mutex_lock(&start_line.mu);
	start_line.expected = expected;
	start_line.arrived = 0;
	start_line.open = expected <= 1;
	pthread_mutex_unlock(&start_line.mu);
}

void bench_lane_capture(const struct bench_latency *l)
{
	if (captured_latency)
		bench_latency_merge(captured_latency, l);
}

struct lane {
	const struct bench_impl *impl;
	struct bench_cell cell;
	struct bench_result result;
	struct bench_latency lat;
	int err;
};

static void *lane_thread(void *arg)
{
	struct lane *ln = arg;

	captured_latency = &ln->lat;
	ln->err = ln->impl->run(&ln->cell, &ln->result);
	captured_latency = NULL;
	/* A copy that succeeded has passed the line; one that failed may
	 * not have, and must not keep the others waiting. */
	start_line_leave();
	return NULL;
}

static double sum_or_nan(double acc, double v)
{
	return isnan(v) ? acc : isnan(acc) ? v : acc + v;
}

/* Folds the copies' results into out (all copies succeeded). */
static void merge(const struct lane *lanes, unsigned n, struct bench_result *out)
{
	struct bench_latency *all = malloc(sizeof(*all));
	double mem_bytes = NAN, kernel_bytes = NAN;
	uint64_t mem_over = 0;

	bench_result_init(out);
	if (all)
		bench_latency_init(all);
	for (unsigned i = 0; i < n; i++) {
		const struct bench_result *r = &lanes[i].result;

		out->ops_per_s = sum_or_nan(out->ops_per_s, r->ops_per_s);
		out->mb_per_s = sum_or_nan(out->mb_per_s, r->mb_per_s);
		out->ops += r->ops;
		out->bytes += r->bytes;
		if (!isnan(r->elapsed_s) &&
		    (isnan(out->elapsed_s) || r->elapsed_s > out->elapsed_s))
			out->elapsed_s = r->elapsed_s;
		if (!isnan(r->bytes_per_stream)) {
			/* per stream over the copy's own streams */
			mem_bytes = sum_or_nan(mem_bytes, r->bytes_per_stream *
							  lanes[i].cell.streams);
			kernel_bytes = sum_or_nan(kernel_bytes,
						  r->kernel_bytes_per_stream *
							  lanes[i].cell.streams);
			mem_over += lanes[i].cell.streams;
		}
		if (all)
			bench_latency_merge(all, &lanes[i].lat);
	}
	if (mem_over) {
		out->bytes_per_stream = mem_bytes / (double)mem_over;
		out->kernel_bytes_per_stream = kernel_bytes / (double)mem_over;
	}
	if (all && all->count)
		bench_latency_report(all, out);
	free(all);
}

bool bench_cell_supported(const struct bench_impl *impl,
			  const struct bench_cell *cell)
{
	if (cell->loops > 1 &&
	    (cell->workload == BENCH_IDLE || cell->streams < cell->loops))
		return false;
	if (cell->busy_poll_us && !impl->busy_polls)
		return false;
	return impl->supports(cell);
}

int bench_run_cell(const struct bench_impl *impl, const struct bench_cell *cell,
		   struct bench_result *out)
{
	unsigned n = cell->loops > 1 ? cell->loops : 1, started = 0;
	struct lane *lanes;
	pthread_t *threads;
	int err = 0;

	if (n == 1) {
		struct bench_cell one = *cell;

		one.loops = 1;
		start_line_reset(1);
		return impl->run(&one, out);
	}
	lanes = calloc(n, sizeof(*lanes));
	threads = calloc(n, sizeof(*threads));
	if (!lanes || !threads) {
		free(lanes);
		free(threads);
		return bench_error(impl->name, "out of memory");
	}
	start_line_reset(n);
	for (unsigned i = 0; i < n; i++) {
		lanes[i].impl = impl;
		lanes[i].cell = *cell;
		lanes[i].cell.loops = 1;
		/* the streams dealt out, the first copies taking the rest */
		lanes[i].cell.streams = cell->streams / n +
					(i < cell->streams % n ? 1 : 0);
		bench_latency_init(&lanes[i].lat);
		bench_result_init(&lanes[i].result);
	}
	for (; started < n; started++) {
		int e = pthread_create(&threads[started], NULL, lane_thread,
				       &lanes[started]);

		if (e) {
			err = bench_error(impl->name, "pthread_create: %s",
					  strerror(e));
			start_line_leave();
			break;
		}
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(threads[i], NULL);
		if (lanes[i].err)
			err = -1;
	}
	if (!err)
		merge(lanes, n, out);
	start_line_reset(1);
	free(lanes);
	free(threads);
	return err;
}
