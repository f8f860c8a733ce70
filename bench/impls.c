/*
 * impls.c - the implementations muxbench knows, and the small helpers of
 * bench.h's interface that every impl uses.
 *
 * The list order is the column order of the table and the legend order of
 * the chart.  To add an impl, define `const struct bench_impl
 * bench_impl_<name>` in bench/<name>.c and add one line below; muxring
 * goes first, as the reference the other columns are compared with:
 *
 *	&bench_impl_muxring,
 */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct bench_impl *const bench_impls[] = {
	&bench_impl_muxring,
	&bench_impl_tcp_epoll,
	&bench_impl_tcp_uring,
	&bench_impl_tcp_raw,
	NULL
};

const char *bench_workload_name(enum bench_workload w)
{
	static const char *const names[BENCH_WORKLOAD_COUNT] = {
		[BENCH_RPC] = "rpc", [BENCH_OPEN] = "open",
		[BENCH_BULK] = "bulk", [BENCH_IDLE] = "idle",
		[BENCH_HEARTBEAT] = "heartbeat", [BENCH_SESSIONS] = "sessions",
	};

	return (unsigned)w < BENCH_WORKLOAD_COUNT ? names[w] : "?";
}

void bench_result_init(struct bench_result *r)
{
	memset(r, 0, sizeof(*r));
	r->ops_per_s = r->mb_per_s = r->p50_us = r->p99_us = NAN;
	r->bytes_per_stream = r->kernel_bytes_per_stream = r->elapsed_s = NAN;
}

int bench_error(const char *who, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "muxbench: %s: %s\n", who, msg);
	return -1;
}
