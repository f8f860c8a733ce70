/*
 * report.h - what the framework hands to its outputs: every run of the
 * session (cell x impl, with its result) and where and on what it ran.
 *
 * muxbench.c fills a struct bench_session; report.c prints it (table,
 * JSON lines, latest.json) and svg.c draws it.  Neither output runs
 * anything.
 */
#ifndef MUXBENCH_REPORT_H
#define MUXBENCH_REPORT_H

#include "bench.h"

#include <stdio.h>

/* One measurement: one impl on one cell. */
struct bench_run {
	struct bench_cell cell;
	const struct bench_impl *impl;
	struct bench_result result;
	bool failed;		/* run() returned an error */
};

/* Where and how the session ran (latest.json, table and chart titles). */
struct bench_meta {
	char date[32];		/* UTC, ISO 8601 */
	char cpu[128];		/* /proc/cpuinfo model name */
	long cpus;		/* online CPUs */
	char arch[72];
	char kernel[136];	/* uname -r */
	unsigned long long mem_bytes;	/* MemTotal */
	double loadavg;		/* 1-minute load average at start; NAN if unknown */
	char commit[64];	/* git rev-parse --short HEAD[-dirty], or "" */
	const char *mode;	/* "quick", "full" or "custom" */
	char args[512];		/* the command line, for the record */
};

struct bench_session {
	struct bench_meta meta;
	struct bench_run *runs;	/* in the order they ran */
	size_t nruns;
	/* impls selected for this session, registry order */
	const struct bench_impl *impls[8];
	size_t nimpls;
};

/* Fills date, machine, kernel and commit (of the git work tree at
 * repo, or of the current directory when repo is NULL). */
void report_meta_init(struct bench_meta *m, const char *repo);

/* "47.5k req/s  p50 19.3 us  p99 69.1 us" for the progress line. */
void report_format_run(const struct bench_run *run, char *buf, size_t len);

/* One JSON object for a run, on one line (the --json format). */
void report_json_line(FILE *f, const struct bench_run *run);

/* The table, with ratio columns and targets when muxring ran. */
void report_table(FILE *f, const struct bench_session *s);

/* Writes dir/latest.json (via a .tmp and rename); 0 or -1. */
int report_write_json(const struct bench_session *s, const char *dir);

/* Creates dir if needed and opens dir/name.tmp for writing (the path in
 * tmp); NULL after printing the error. */
FILE *report_open_tmp(const char *dir, const char *name, char *tmp, size_t len);
/* Closes f and renames tmp to dir/name; 0 or -1 after printing it. */
int report_commit_tmp(FILE *f, const char *tmp, const char *dir,
		      const char *name);

/* svg.c: writes dir/latest.svg (via a .tmp and rename); 0 or -1. */
int report_write_svg(const struct bench_session *s, const char *dir);

/* Formats v (>= 0) with 3 significant figures and a k/M/G suffix. */
void report_si(double v, char *buf, size_t len);

/* The cell's workload as the table names it ("rpc", or "rpc+tls" for a
 * TLS cell). */
const char *report_cell_name(const struct bench_cell *c);

/* The figures a result carries, in table order. */
enum report_metric { M_OPS, M_MB, M_P50, M_P99, M_BPS, M_COUNT };
double report_metric(const struct bench_result *r, enum report_metric m);

/* The (successful) result of impl `name` on a cell with the same
 * workload, streams and size as `cell`, or NULL. */
const struct bench_run *report_find(const struct bench_session *s,
				    const struct bench_cell *cell,
				    const char *name);

#endif /* MUXBENCH_REPORT_H */
