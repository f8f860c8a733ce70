/*
 * latency.c - a bounded latency recorder: log-linear histogram.
 *
 * Main idea (as in HdrHistogram): a value's bucket is its power of two
 * (the position of its top bit) plus the next BENCH_LATENCY_SUB_BITS bits
 * below the top one.  Every bucket is thus at most 1/64 of its value wide,
 * the whole range of uint64_t fits in a few thousand counters, recording
 * is a clz and an increment, and percentiles are a walk over the counters.
 * A percentile is reported as its bucket's midpoint, clamped to the exact
 * min and max seen.
 */
#include "bench.h"

#include <math.h>
#include <string.h>

static unsigned bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < BENCH_LATENCY_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - BENCH_LATENCY_SUB_BITS;
	/* group shift+1 holds [64 << shift, 128 << shift) in 64 buckets */
	return (shift + 1) * BENCH_LATENCY_SUB +
	       (unsigned)((v >> shift) - BENCH_LATENCY_SUB);
}

/* Midpoint of bucket i, in the same unit as the recorded values. */
static double bucket_mid(unsigned i)
{
	unsigned group = i / BENCH_LATENCY_SUB, sub = i % BENCH_LATENCY_SUB;
	double width, low;

	if (group == 0)
		return (double)i;
	width = ldexp(1.0, (int)group - 1);
	low = (double)(BENCH_LATENCY_SUB + sub) * width;
	return low + (width - 1) / 2;
}

void bench_latency_init(struct bench_latency *l)
{
	memset(l, 0, sizeof(*l));
	l->min_ns = UINT64_MAX;
}

void bench_latency_record(struct bench_latency *l, uint64_t ns)
{
	l->buckets[bucket_of(ns)]++;
	l->count++;
	if (ns < l->min_ns)
		l->min_ns = ns;
	if (ns > l->max_ns)
		l->max_ns = ns;
}

void bench_latency_merge(struct bench_latency *dst,
			 const struct bench_latency *src)
{
	for (unsigned i = 0; i < BENCH_LATENCY_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	if (src->min_ns < dst->min_ns)
		dst->min_ns = src->min_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

double bench_latency_percentile(const struct bench_latency *l, double p)
{
	uint64_t rank, seen = 0;
	double v;

	if (l->count == 0)
		return NAN;
	/* the smallest value with at least p% of samples at or below it */
	rank = (uint64_t)ceil(p / 100.0 * (double)l->count);
	if (rank < 1)
		rank = 1;
	if (rank > l->count)
		rank = l->count;
	for (unsigned i = 0; i < BENCH_LATENCY_BUCKETS; i++) {
		seen += l->buckets[i];
		if (seen < rank)
			continue;
		v = bucket_mid(i);
		if (v < (double)l->min_ns)
			v = (double)l->min_ns;
		if (v > (double)l->max_ns)
			v = (double)l->max_ns;
		return v;
	}
	return (double)l->max_ns;
}

void bench_latency_report(const struct bench_latency *l,
			  struct bench_result *r)
{
	r->p50_us = bench_latency_percentile(l, 50) / 1e3;
	r->p99_us = bench_latency_percentile(l, 99) / 1e3;
	bench_lane_capture(l);
}
