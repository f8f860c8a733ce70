/*
 * muxbench.c - the benchmark's command line, its matrices and its run
 * loop: muxring against TCP connection pools over loopback TCP.
 *
 *   muxbench [--full] [--workload rpc|open|bulk|idle|heartbeat|sessions]
 *            [--streams N] [--size BYTES] [--duration SECONDS]
 *            [--loops N] [--sqpoll] [--send-zc] [--impl LIST] [--tls] [--json]
 *
 * Main idea: a run is a list of cells (workload, N, size, seconds), taken
 * from the quick matrix (default: the cells the targets are about) or the
 * full one (--full: every cell of the issue), narrowed by --workload and
 * overridden by --streams, --size, --duration and --loops (lanes.c runs
 * a cell over several loops).  Each cell runs on every
 * selected impl that supports it, one after the other, so that the impls
 * of a cell are measured back to back under the same conditions.
 * Progress goes to stderr; the table (or --json lines) to stdout; the
 * whole session to bench/results/latest.json and latest.svg.
 *
 * Durations: --duration is the measured window of rpc, open, bulk and
 * heartbeat cells (quick 2 s, full 3 s); a bulk worker keeps sending
 * payloads until the window closes, at least one payload each, so a
 * 32 MiB x 256 cell may run longer.  idle takes no duration: it opens its
 * streams, measures memory and closes them.
 */
#include "report.h"

#include <muxring.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define KIB 1024u
#define MIB (1024u * 1024u)
#define QUICK_SECONDS 2.0
#define FULL_SECONDS 3.0
#define IDLE_STREAMS 100000u
#define SESSIONS 10000u
#define MAX_LOOPS 64u
#define MAX_CELLS 128
#define MAX_STREAMS 1000000u
/* The quick run's busy-polling cell: longer than a loopback round trip
 * under load, short enough that a loop with nothing coming soon sleeps. */
#define BUSY_POLL_US 50u
#define MAX_BUSY_POLL_US 1000000u

/* ---- matrices ---------------------------------------------------------- */

struct base_cell {
	enum bench_workload w;
	unsigned streams;
	size_t size;
	bool tls;
	unsigned loops;		/* 0: one */
	unsigned busy_poll_us;	/* 0: none */
};

/* The cells the targets are about, one each: well under two minutes. */
static const struct base_cell quick_matrix[] = {
	{ BENCH_RPC, 1, 64, false, 1, 0 },
	{ BENCH_RPC, 1, 64, false, 1, BUSY_POLL_US },
	{ BENCH_RPC, 64, 64, false, 1, 0 },
	{ BENCH_RPC, 64, 64, false, 2, 0 },
	{ BENCH_OPEN, 64, 64, false, 1, 0 },
	{ BENCH_BULK, 1, 32 * MIB, false, 1, 0 },
	{ BENCH_BULK, 64, 1 * MIB, false, 1, 0 },
	{ BENCH_IDLE, IDLE_STREAMS, 0, false, 1, 0 },
	{ BENCH_HEARTBEAT, 8, 64 * KIB, false, 1, 0 },
	{ BENCH_SESSIONS, SESSIONS, 64, false, 1, 0 },
	{ BENCH_RPC, 64, 64, true, 1, 0 },
	{ BENCH_OPEN, 64, 64, true, 1, 0 },
	{ BENCH_BULK, 1, 32 * MIB, true, 1, 0 },
};

static const unsigned full_streams[] = { 1, 8, 64, 256, 1024 };
static const unsigned bulk_streams[] = { 1, 4, 8, 64, 256 };
static const size_t bulk_sizes[] = { 1, 1 * KIB, 1 * MIB, 32 * MIB };

static size_t full_matrix(struct base_cell *out)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(full_streams) / sizeof(full_streams[0]); i++)
		out[n++] = (struct base_cell){ BENCH_RPC, full_streams[i], 64, false, 1, 0 };
	for (size_t i = 0; i < sizeof(full_streams) / sizeof(full_streams[0]); i++)
		out[n++] = (struct base_cell){ BENCH_OPEN, full_streams[i], 64, false, 1, 0 };
	for (size_t s = 0; s < sizeof(bulk_sizes) / sizeof(bulk_sizes[0]); s++)
		for (size_t i = 0; i < sizeof(bulk_streams) / sizeof(bulk_streams[0]); i++)
			out[n++] = (struct base_cell){ BENCH_BULK, bulk_streams[i],
						       bulk_sizes[s], false, 1, 0 };
	out[n++] = (struct base_cell){ BENCH_RPC, 64, 64, false, 2, 0 };
	out[n++] = (struct base_cell){ BENCH_IDLE, IDLE_STREAMS, 0, false, 1, 0 };
	out[n++] = (struct base_cell){ BENCH_HEARTBEAT, 8, 64 * KIB, false, 1, 0 };
	out[n++] = (struct base_cell){ BENCH_SESSIONS, SESSIONS, 64, false, 1, 0 };
	return n;
}

/* ---- command line ------------------------------------------------------ */

struct options {
	bool full;
	bool json;
	bool tls;		/* --tls: only cells over TLS */
	int workload;		/* -1: all */
	unsigned streams;	/* 0: the matrix's */
	size_t size;		/* 0: the matrix's */
	double seconds;		/* 0: the matrix's */
	unsigned loops;		/* 0: the matrix's */
	bool sqpoll;		/* muxring's loops with MUXRING_LOOP_SQPOLL */
	bool send_zc;		/* muxring's loops with MUXRING_LOOP_SEND_ZC */
	unsigned busy_poll_us;	/* --busy-poll: every cell; 0: the matrix's */
	const char *impl_list;	/* NULL: all that apply */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: muxbench [--full] [--workload rpc|open|bulk|idle|heartbeat|sessions]\n"
		"                [--streams N] [--size BYTES] [--duration SECONDS]\n"
		"                [--loops N] [--sqpoll] [--send-zc] [--busy-poll US]\n"
		"                [--impl LIST] [--tls] [--json]\n"
		"\n"
		"Benchmarks muxring against TCP connection pools over loopback TCP\n"
		"(client and server in separate threads, one event loop each).\n"
		"\n"
		"  (no option)  quick run: the cells the targets are about (< 2 min)\n"
		"  --full       every cell: rpc/open N 1,8,64,256,1024; bulk 1 B,\n"
		"               1 KiB, 1 MiB, 32 MiB x N 1,4,8,64,256; rpc 64 on 2\n"
		"               loops; idle; heartbeat; sessions\n"
		"  --workload   only this workload\n"
		"  --streams N  streams (connections, workers) per cell instead of\n"
		"               the matrix's\n"
		"  --size BYTES message / payload / write size (suffixes K and M)\n"
		"  --duration S measured window per cell (quick %.0f s, full %.0f s)\n"
		"  --sqpoll     muxring's loops poll their submission queues with a\n"
		"               kernel thread each (MUXRING_LOOP_SQPOLL)\n"
		"  --send-zc    muxring's loops send large batches with kernel\n"
		"               zero-copy (MUXRING_LOOP_SEND_ZC)\n"
		"  --busy-poll US  every wait of muxring's loops (busy_poll_us) and\n"
		"               of tcp-epoll polls US microseconds before it sleeps;\n"
		"               only those two run (the quick run has one such\n"
		"               cell, rpc/BP, at %u us)\n"
		"  --loops N    N client and N server loops, one thread each, the\n"
		"               streams (sessions, connections) dealt out among them\n"
		"               (idle runs on one)\n"
		"  --impl LIST  comma-separated subset of",
		QUICK_SECONDS, FULL_SECONDS, BUSY_POLL_US);
	for (size_t i = 0; bench_impls[i]; i++)
		fprintf(f, "%s%s", i ? "," : " ", bench_impls[i]->name);
	fprintf(f, "\n"
		"               (default: all that apply)\n"
		"  --tls        run the cells over TLS (rpc, open, bulk): muxring's\n"
		"               session through libmuxring-tls against the pools with\n"
		"               OpenSSL on each connection (the quick run has three\n"
		"               TLS cells anyway)\n"
		"  --json       one JSON object per line and cell on stdout instead\n"
		"               of the table\n"
		"  -h, --help   this text\n"
		"\nimpls:\n");
	for (size_t i = 0; bench_impls[i]; i++)
		fprintf(f, "  %-10s %s\n", bench_impls[i]->name,
			bench_impls[i]->summary);
	fprintf(f, "\nResults: a table on stdout; bench/results/latest.json and\n"
		   "latest.svg (MUXBENCH_RESULTS_DIR overrides the directory).\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "muxbench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'muxbench --help'.\n");
	exit(2);
}

static unsigned parse_streams(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > MAX_STREAMS || s[0] == '-')
		usage_error("--streams wants a whole number from 1 to 1000000, not '%s'", s);
	return (unsigned)v;
}

static size_t parse_size(const char *s)
{
	unsigned long long v, mult = 1;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end != s && (*end == 'k' || *end == 'K'))
		mult = KIB, end++;
	else if (end != s && (*end == 'm' || *end == 'M'))
		mult = MIB, end++;
	if (mult != 1 && (*end == 'i' || *end == 'I') && (end[1] == 'b' || end[1] == 'B'))
		end += 2;
	if (errno || end == s || *end || s[0] == '-' || v < 1 ||
	    v > (1ull << 30) / mult)
		usage_error("--size wants a byte count from 1 to 1 GiB (e.g. 64, 1K, 32M), not '%s'", s);
	return (size_t)(v * mult);
}

static double parse_seconds(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 3600)
		usage_error("--duration wants seconds, more than 0 and at most 3600, not '%s'", s);
	return v;
}

static unsigned parse_loops(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > MAX_LOOPS || s[0] == '-')
		usage_error("--loops wants a whole number from 1 to 64, not '%s'", s);
	return (unsigned)v;
}

static unsigned parse_busy_poll(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > MAX_BUSY_POLL_US ||
	    s[0] == '-')
		usage_error("--busy-poll wants microseconds from 1 to 1000000, not '%s'", s);
	return (unsigned)v;
}

static int parse_workload(const char *s)
{
	for (int w = 0; w < BENCH_WORKLOAD_COUNT; w++)
		if (strcmp(s, bench_workload_name((enum bench_workload)w)) == 0)
			return w;
	return usage_error("unknown workload '%s' (rpc, open, bulk, idle, heartbeat, sessions)", s);
}

static const struct bench_impl *find_impl(const char *name)
{
	for (size_t i = 0; bench_impls[i]; i++)
		if (strcmp(bench_impls[i]->name, name) == 0)
			return bench_impls[i];
	return NULL;
}

/* --impl LIST into s->impls, in registry order. */
static void select_impls(struct bench_session *s, const char *list)
{
	bool want[16] = { false };
	size_t nreg = 0;

	while (bench_impls[nreg])
		nreg++;
	if (!list) {
		for (size_t i = 0; i < nreg; i++)
			want[i] = true;
	} else {
		char *copy = strdup(list), *save = NULL;

		if (!copy) {
			fprintf(stderr, "muxbench: out of memory\n");
			exit(1);
		}
		for (char *t = strtok_r(copy, ",", &save); t;
		     t = strtok_r(NULL, ",", &save)) {
			const struct bench_impl *impl = find_impl(t);

			if (!impl && strcmp(t, BENCH_REFERENCE_IMPL) == 0)
				usage_error("impl '%s' is not built into this muxbench yet", t);
			if (!impl)
				usage_error("unknown impl '%s' (see --help)", t);
			for (size_t i = 0; i < nreg; i++)
				if (bench_impls[i] == impl)
					want[i] = true;
		}
		free(copy);
	}
	for (size_t i = 0; i < nreg && s->nimpls < sizeof(s->impls) / sizeof(s->impls[0]); i++)
		if (want[i])
			s->impls[s->nimpls++] = bench_impls[i];
	if (s->nimpls == 0)
		usage_error("--impl '%s' names no impl", list ? list : "");
}

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "full", no_argument, NULL, 'f' },
		{ "workload", required_argument, NULL, 'w' },
		{ "streams", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "loops", required_argument, NULL, 'l' },
		{ "sqpoll", no_argument, NULL, 'q' },
		{ "send-zc", no_argument, NULL, 'z' },
		{ "busy-poll", required_argument, NULL, 'b' },
		{ "impl", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "tls", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct options){ .workload = -1 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->full = true; break;
		case 'w': o->workload = parse_workload(optarg); break;
		case 'n': o->streams = parse_streams(optarg); break;
		case 's': o->size = parse_size(optarg); break;
		case 'd': o->seconds = parse_seconds(optarg); break;
		case 'l': o->loops = parse_loops(optarg); break;
		case 'q': o->sqpoll = true; break;
		case 'z': o->send_zc = true; break;
		case 'b': o->busy_poll_us = parse_busy_poll(optarg); break;
		case 'i': o->impl_list = optarg; break;
		case 'j': o->json = true; break;
		case 't': o->tls = true; break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			usage_error("%s needs a value", argv[optind - 1]);
			break;
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
}

/* ---- cells ------------------------------------------------------------- */

static size_t make_cells(const struct options *o, struct bench_cell *cells)
{
	struct base_cell base[MAX_CELLS];
	size_t nbase, n = 0;

	if (o->full) {
		nbase = full_matrix(base);
	} else {
		nbase = sizeof(quick_matrix) / sizeof(quick_matrix[0]);
		memcpy(base, quick_matrix, sizeof(quick_matrix));
	}
	for (size_t i = 0; i < nbase; i++) {
		struct bench_cell c = {
			.workload = base[i].w,
			.streams = o->streams ? o->streams : base[i].streams,
			.size = base[i].size,
			.seconds = o->seconds ? o->seconds :
				   o->full ? FULL_SECONDS : QUICK_SECONDS,
			.tls = base[i].tls || o->tls,
			.loops = o->loops ? o->loops :
				 base[i].loops ? base[i].loops : 1,
			.muxring_flags =
				(o->sqpoll ? MUXRING_LOOP_SQPOLL : 0) |
				(o->send_zc ? MUXRING_LOOP_SEND_ZC : 0),
			.busy_poll_us = o->busy_poll_us ? o->busy_poll_us :
					base[i].busy_poll_us,
		};
		bool dup = false;

		if (o->workload >= 0 && (int)c.workload != o->workload)
			continue;
		if (c.tls && (c.workload == BENCH_IDLE ||
			      c.workload == BENCH_HEARTBEAT))
			continue;
		if (c.workload == BENCH_IDLE) {
			c.size = 0;
			c.seconds = 0;
		} else if (o->size) {
			c.size = o->size;
		}
		for (size_t j = 0; j < n && !dup; j++)
			dup = cells[j].workload == c.workload &&
			      cells[j].streams == c.streams &&
			      cells[j].size == c.size && cells[j].tls == c.tls &&
			      cells[j].loops == c.loops &&
			      cells[j].busy_poll_us == c.busy_poll_us;
		if (!dup)
			cells[n++] = c;
	}
	return n;
}

/* ---- running ----------------------------------------------------------- */

/*
 * The source tree this binary was built in: build/muxbench ->
 * <repo>/bench exists.  Fills repo (or leaves it "") so that results land
 * in <repo>/bench/results wherever muxbench runs from.
 */
static void find_repo(char *repo, size_t len)
{
	char exe[PATH_MAX], probe[PATH_MAX + 32];
	struct stat st;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash, *real;

	repo[0] = 0;
	if (n <= 0)
		return;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = 0;
	snprintf(probe, sizeof(probe), "%s/..", exe);
	real = realpath(probe, NULL);
	if (!real)
		return;
	snprintf(probe, sizeof(probe), "%s/bench/bench.h", real);
	if (stat(probe, &st) == 0 && S_ISREG(st.st_mode))
		snprintf(repo, len, "%s", real);
	free(real);
}

static void results_dir(const char *repo, char *buf, size_t len)
{
	const char *env = getenv("MUXBENCH_RESULTS_DIR");

	if (env && *env)
		snprintf(buf, len, "%s", env);
	else if (repo[0])
		snprintf(buf, len, "%s/bench/results", repo);
	else
		snprintf(buf, len, "bench/results");
}

static void record_args(struct bench_meta *m, int argc, char **argv)
{
	size_t used = 0;

	m->args[0] = 0;
	for (int i = 0; i < argc && used + 2 < sizeof(m->args); i++) {
		int k = snprintf(m->args + used, sizeof(m->args) - used, "%s%s",
				 i ? " " : "", i ? argv[i] : "muxbench");

		if (k < 0)
			break;
		used += (size_t)k;
	}
}

/* Raise the soft descriptor limit to the hard one once, at start. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
		bench_fd_reserve(rl.rlim_max == RLIM_INFINITY ? 1u << 20 :
				 (unsigned long)rl.rlim_max);
}

static double estimate_seconds(const struct bench_run *runs, size_t n)
{
	double t = 0;

	for (size_t i = 0; i < n; i++)
		t += runs[i].cell.workload == BENCH_IDLE ? 2.0 :
		     runs[i].cell.seconds + 0.2;
	return t;
}

static void progress_prefix(size_t i, size_t n, const struct bench_run *r)
{
	char size[32];

	if (r->cell.workload == BENCH_IDLE)
		snprintf(size, sizeof(size), "-");
	else if (r->cell.size >= MIB && r->cell.size % MIB == 0)
		snprintf(size, sizeof(size), "%zuMiB", r->cell.size / MIB);
	else if (r->cell.size >= KIB && r->cell.size % KIB == 0)
		snprintf(size, sizeof(size), "%zuKiB", r->cell.size / KIB);
	else
		snprintf(size, sizeof(size), "%zuB", r->cell.size);
	fprintf(stderr, "[%2zu/%zu] %-9s N=%-6u %-7s L=%-2u %-10s ", i + 1, n,
		r->cell.tls || r->cell.busy_poll_us ?
			report_cell_name(&r->cell) :
			bench_workload_name(r->cell.workload),
		r->cell.streams, size, r->cell.loops, r->impl->name);
}

int main(int argc, char **argv)
{
	struct options o;
	struct bench_cell cells[MAX_CELLS];
	struct bench_session s = { 0 };
	char repo[PATH_MAX], dir[PATH_MAX + 16], line[256];
	size_t ncells, failed = 0;
	int status = 0;

	parse_args(argc, argv, &o);
	select_impls(&s, o.impl_list);
	ncells = make_cells(&o, cells);
	s.runs = calloc(ncells * s.nimpls + 1, sizeof(*s.runs));
	if (!s.runs) {
		fprintf(stderr, "muxbench: out of memory\n");
		return 1;
	}
	for (size_t c = 0; c < ncells; c++)
		for (size_t k = 0; k < s.nimpls; k++)
			if (bench_cell_supported(s.impls[k], &cells[c]))
				s.runs[s.nruns++] = (struct bench_run){
					.cell = cells[c], .impl = s.impls[k],
				};
	if (s.nruns == 0) {
		fprintf(stderr, "muxbench: nothing to run: no selected impl supports the selected cells\n");
		free(s.runs);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	find_repo(repo, sizeof(repo));
	report_meta_init(&s.meta, repo[0] ? repo : NULL);
	s.meta.mode = o.full ? "full" : "quick";
	if (o.workload >= 0 || o.streams || o.size || o.seconds || o.tls ||
	    o.loops || o.sqpoll || o.send_zc || o.busy_poll_us)
		s.meta.mode = "custom";
	record_args(&s.meta, argc, argv);
	results_dir(repo, dir, sizeof(dir));

	fprintf(stderr, "muxbench: %s run, %zu measurements, about %.0f s; results in %s/\n",
		s.meta.mode, s.nruns, estimate_seconds(s.runs, s.nruns), dir);
	if (s.meta.loadavg > 0.5)
		fprintf(stderr, "muxbench: note: load average %.2f on %ld CPUs at start: if other work is running, expect noisy figures\n",
			s.meta.loadavg, s.meta.cpus);
	for (size_t i = 0; i < s.nruns; i++) {
		struct bench_run *r = &s.runs[i];
		uint64_t t0 = bench_now_ns();

		progress_prefix(i, s.nruns, r);
		bench_result_init(&r->result);
		r->failed = bench_run_isolated(r->impl, &r->cell, &r->result) != 0;
		failed += r->failed;
		report_format_run(r, line, sizeof(line));
		fprintf(stderr, "%s  (%.1f s)\n", line,
			(double)(bench_now_ns() - t0) / 1e9);
		if (o.json)
			report_json_line(stdout, r);
	}
	if (!o.json) {
		fputc('\n', stdout);
		report_table(stdout, &s);
	}
	if (report_write_json(&s, dir) < 0 || report_write_svg(&s, dir) < 0)
		status = 1;
	else
		fprintf(stderr, "muxbench: wrote %s/latest.json and %s/latest.svg\n",
			dir, dir);
	if (failed) {
		fprintf(stderr, "muxbench: %zu of %zu measurements failed\n",
			failed, s.nruns);
		status = 1;
	}
	free(s.runs);
	return status;
}
