/*
 * report.c - muxbench's text outputs: the progress line, the table on
 * stdout, --json lines and bench/results/latest.json.
 *
 * Main idea: results are grouped by cell (workload, N, size); each group
 * prints one row per figure that any impl produced, one column per impl,
 * and, when muxring ran, a ratio column muxring/baseline after each
 * baseline.  The targets are checked from the same results and
 * listed under the table, so a reader sees the verdict without doing
 * arithmetic.  NAN means "does not apply": "-" in the table, null in JSON.
 */
#include "report.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* ---- figures ----------------------------------------------------------- */

double report_metric(const struct bench_result *r, enum report_metric m)
{
	switch (m) {
	case M_OPS: return r->ops_per_s;
	case M_MB: return r->mb_per_s;
	case M_P50: return r->p50_us;
	case M_P99: return r->p99_us;
	case M_BPS: return r->bytes_per_stream;
	case M_COUNT: break;
	}
	return NAN;
}

static const char *metric_label(enum bench_workload w, enum report_metric m)
{
	switch (m) {
	case M_OPS:
		return w == BENCH_RPC || w == BENCH_SESSIONS ? "req/s" :
		       w == BENCH_OPEN ? "streams/s" :
		       w == BENCH_BULK ? "payloads/s" : "ops/s";
	case M_MB:
		return w == BENCH_HEARTBEAT ? "load MB/s" : "MB/s";
	case M_P50:
		return w == BENCH_HEARTBEAT ? "hb p50 us" : "p50 us";
	case M_P99:
		return w == BENCH_HEARTBEAT ? "hb p99 us" : "p99 us";
	case M_BPS:
		return w == BENCH_SESSIONS ? "B/session" : "B/stream";
	case M_COUNT:
		break;
	}
	return "?";
}

void report_si(double v, char *buf, size_t len)
{
	static const char sfx[] = { 0, 'k', 'M', 'G', 'T' };
	unsigned i = 0;

	if (isnan(v)) {
		snprintf(buf, len, "-");
		return;
	}
	while (fabs(v) >= 1000 && i < sizeof(sfx) - 1) {
		v /= 1000;
		i++;
	}
	if (fabs(v) >= 100 || v == 0)
		snprintf(buf, len, "%.0f", v);
	else if (fabs(v) >= 10)
		snprintf(buf, len, "%.1f", v);
	else
		snprintf(buf, len, "%.2f", v);
	if (sfx[i]) {
		size_t n = strlen(buf);

		if (n + 1 < len) {
			buf[n] = sfx[i];
			buf[n + 1] = 0;
		}
	}
}

static void fmt_size(size_t size, char *buf, size_t len)
{
	if (size == 0)
		snprintf(buf, len, "-");
	else if (size >= 1024 * 1024 && size % (1024 * 1024) == 0)
		snprintf(buf, len, "%zu MiB", size / (1024 * 1024));
	else if (size >= 1024 && size % 1024 == 0)
		snprintf(buf, len, "%zu KiB", size / 1024);
	else
		snprintf(buf, len, "%zu B", size);
}

static void fmt_value(enum report_metric m, double v, char *buf, size_t len)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (m == M_P50 || m == M_P99)
		snprintf(buf, len, v >= 100 ? "%.0f" : "%.1f", v);
	else if (m == M_BPS || (m == M_MB && v >= 100 && v < 1e6))
		snprintf(buf, len, "%.0f", v);
	else
		report_si(v, buf, len);
}

void report_format_run(const struct bench_run *run, char *buf, size_t len)
{
	const struct bench_result *r = &run->result;
	enum bench_workload w = run->cell.workload;
	char a[32], b[32], c[32];

	if (run->failed) {
		snprintf(buf, len, "FAILED");
		return;
	}
	switch (w) {
	case BENCH_IDLE:
		snprintf(buf, len, "%.0f bytes per idle stream (kernel %.0f)",
			 r->bytes_per_stream, r->kernel_bytes_per_stream);
		if (r->ops && r->ops != run->cell.streams) {
			size_t n = strlen(buf);

			snprintf(buf + n, len - n, " (over %llu streams)",
				 (unsigned long long)r->ops);
		}
		return;
	case BENCH_SESSIONS:
		report_si(r->ops_per_s, a, sizeof(a));
		snprintf(buf, len, "%s req/s  p50 %.1f us  p99 %.1f us  %.0f bytes per session (kernel %.0f)",
			 a, r->p50_us, r->p99_us, r->bytes_per_stream,
			 r->kernel_bytes_per_stream);
		return;
	case BENCH_HEARTBEAT:
		fmt_value(M_MB, r->mb_per_s, a, sizeof(a));
		snprintf(buf, len, "heartbeat p50 %.1f us  p99 %.1f us  (load %s MB/s)",
			 r->p50_us, r->p99_us, a);
		return;
	default:
		break;
	}
	report_si(r->ops_per_s, a, sizeof(a));
	if (w == BENCH_BULK) {
		fmt_value(M_MB, r->mb_per_s, b, sizeof(b));
		snprintf(buf, len, "%s MB/s  %s payloads/s", b, a);
		if (!isnan(r->p99_us)) {
			size_t n = strlen(buf);

			snprintf(buf + n, len - n, "  p99 %.0f us", r->p99_us);
		}
		return;
	}
	snprintf(b, sizeof(b), "%.1f", r->p50_us);
	snprintf(c, sizeof(c), "%.1f", r->p99_us);
	snprintf(buf, len, "%s %s  p50 %s us  p99 %s us", a,
		 metric_label(w, M_OPS), b, c);
}

/* ---- JSON -------------------------------------------------------------- */

/* A JSON number (3 decimals, trailing zeros trimmed) or null. */
static void json_num(FILE *f, double v)
{
	char buf[64];
	size_t n;

	if (!isfinite(v)) {
		fputs("null", f);
		return;
	}
	snprintf(buf, sizeof(buf), "%.3f", v);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '0' && buf[n - 2] != '.')
		buf[--n] = 0;
	fputs(buf, f);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_run_fields(FILE *f, const struct bench_run *run)
{
	const struct bench_cell *c = &run->cell;
	const struct bench_result *r = &run->result;
	bool idle = c->workload == BENCH_IDLE;

	fprintf(f, "\"workload\":\"%s\",\"tls\":%s,\"impl\":",
		bench_workload_name(c->workload), c->tls ? "true" : "false");
	json_str(f, run->impl->name);
	fprintf(f, ",\"streams\":%u,\"loops\":%u,\"busy_poll_us\":%u,\"size\":",
		c->streams, c->loops > 1 ? c->loops : 1, c->busy_poll_us);
	if (idle)
		fputs("null", f);
	else
		fprintf(f, "%zu", c->size);
	fputs(",\"seconds\":", f);
	json_num(f, idle ? NAN : c->seconds);
	for (enum report_metric m = 0; m < M_COUNT; m++) {
		static const char *const keys[M_COUNT] = {
			"ops_per_s", "mb_per_s", "p50_us", "p99_us",
			"bytes_per_stream",
		};

		fprintf(f, ",\"%s\":", keys[m]);
		json_num(f, run->failed ? NAN : report_metric(r, m));
	}
	fputs(",\"kernel_bytes_per_stream\":", f);
	json_num(f, run->failed ? NAN : r->kernel_bytes_per_stream);
	if (run->failed)
		fputs(",\"failed\":true", f);
}

void report_json_line(FILE *f, const struct bench_run *run)
{
	fputc('{', f);
	json_run_fields(f, run);
	fputs("}\n", f);
	fflush(f);
}

/* ---- lookups and targets ----------------------------------------------- */

static bool same_cell(const struct bench_cell *a, const struct bench_cell *b)
{
	return a->workload == b->workload && a->streams == b->streams &&
	       a->size == b->size && a->tls == b->tls && a->loops == b->loops &&
	       a->busy_poll_us == b->busy_poll_us;
}

const char *report_cell_name(const struct bench_cell *c)
{
	static const char *const tls_names[BENCH_WORKLOAD_COUNT] = {
		[BENCH_RPC] = "rpc+tls", [BENCH_OPEN] = "open+tls",
		[BENCH_BULK] = "bulk+tls", [BENCH_IDLE] = "idle+tls",
		[BENCH_HEARTBEAT] = "hb+tls",
	};

	if (c->busy_poll_us && c->workload == BENCH_RPC && !c->tls)
		return "rpc/BP";
	return c->tls && (unsigned)c->workload < BENCH_WORKLOAD_COUNT &&
		       tls_names[c->workload]
		       ? tls_names[c->workload]
		       : bench_workload_name(c->workload);
}

/* "rpc", "rpc+tls", or "rpc/L2" for a cell run on two loops per side. */
static void fmt_workload(const struct bench_cell *c, char *buf, size_t len)
{
	if (c->loops > 1)
		snprintf(buf, len, "%s/L%u", report_cell_name(c), c->loops);
	else
		snprintf(buf, len, "%s", report_cell_name(c));
}

const struct bench_run *report_find(const struct bench_session *s,
				    const struct bench_cell *cell,
				    const char *name)
{
	for (size_t i = 0; i < s->nruns; i++)
		if (same_cell(&s->runs[i].cell, cell) &&
		    strcmp(s->runs[i].impl->name, name) == 0)
			return s->runs[i].failed ? NULL : &s->runs[i];
	return NULL;
}

/* First run of `name` on a cell matching (workload, streams, size,
 * loops) that does not busy poll; streams or size 0 match anything, loops
 * 0 means one. */
static const struct bench_run *find_loose(const struct bench_session *s,
					  enum bench_workload w, unsigned streams,
					  size_t size, unsigned loops, bool tls,
					  const char *name)
{
	for (size_t i = 0; i < s->nruns; i++) {
		const struct bench_run *r = &s->runs[i];

		if (r->failed || r->cell.workload != w || r->cell.tls != tls ||
		    strcmp(r->impl->name, name) != 0)
			continue;
		if ((streams && r->cell.streams != streams) ||
		    (size && r->cell.size != size) ||
		    r->cell.busy_poll_us ||
		    (r->cell.loops > 1 ? r->cell.loops : 1) != (loops ? loops : 1))
			continue;
		return r;
	}
	return NULL;
}

enum cmp { AT_LEAST, AT_MOST, BELOW };

/* The targets: ratios muxring/baseline measured in one run, or
 * absolute figures when baseline is NULL. */
static const struct target {
	const char *text;
	enum bench_workload w;
	unsigned streams;	/* 0: any */
	size_t size;		/* 0: any */
	unsigned loops;		/* per side; 0: one */
	enum report_metric m;
	const char *baseline;
	enum cmp cmp;
	double bound;
	bool tls;		/* a TLS cell */
} targets[] = {
	{ "rpc 64 streams >= 3x tcp-epoll 64 conns (req/s)",
	  BENCH_RPC, 64, 64, 0, M_OPS, "tcp-epoll", AT_LEAST, 3.0, false },
	{ "rpc 1 stream p50 <= 0.85x one TCP connection (tcp-epoll)",
	  BENCH_RPC, 1, 64, 0, M_P50, "tcp-epoll", AT_MOST, 0.85, false },
	{ "open 64 workers >= 5x new TCP connection per request",
	  BENCH_OPEN, 64, 64, 0, M_OPS, "tcp-epoll", AT_LEAST, 5.0, false },
	{ "bulk 32 MiB x 1 >= 0.95x one raw TCP connection",
	  BENCH_BULK, 1, 32u << 20, 0, M_MB, "tcp-raw", AT_LEAST, 0.95, false },
	{ "bulk 32 MiB x 1 >= 0.95x io_uring TCP pool",
	  BENCH_BULK, 1, 32u << 20, 0, M_MB, "tcp-uring", AT_LEAST, 0.95, false },
	{ "bulk 1 MiB x 64 >= 0.9x TCP pool (tcp-epoll)",
	  BENCH_BULK, 64, 1u << 20, 0, M_MB, "tcp-epoll", AT_LEAST, 0.9, false },
	{ "bulk 1 MiB x 64 >= 0.95x io_uring TCP pool",
	  BENCH_BULK, 64, 1u << 20, 0, M_MB, "tcp-uring", AT_LEAST, 0.95, false },
	{ "idle <= 256 bytes per stream",
	  BENCH_IDLE, 0, 0, 0, M_BPS, NULL, AT_MOST, 256, false },
	{ "heartbeat p99 under load < 5 ms",
	  BENCH_HEARTBEAT, 0, 0, 0, M_P99, NULL, BELOW, 5000, false },
	{ "rpc 64 streams, 2 loops >= 3x tcp-epoll, 2 loops (req/s)",
	  BENCH_RPC, 64, 64, 2, M_OPS, "tcp-epoll", AT_LEAST, 3.0, false },
	{ "sessions 10,000 x 1 stream >= 1x tcp-epoll (req/s)",
	  BENCH_SESSIONS, 10000, 64, 0, M_OPS, "tcp-epoll", AT_LEAST, 1.0, false },
	{ "sessions 10,000: memory <= 1.5x per tcp-epoll connection",
	  BENCH_SESSIONS, 10000, 64, 0, M_BPS, "tcp-epoll", AT_MOST, 1.5, false },
	{ "TLS: open 64 >= 50x new TLS connection per request",
	  BENCH_OPEN, 64, 64, 0, M_OPS, "tcp-epoll", AT_LEAST, 50.0, true },
	{ "TLS: bulk 32 MiB x 1 >= 0.9x one TLS connection",
	  BENCH_BULK, 1, 32u << 20, 0, M_MB, "tcp-epoll", AT_LEAST, 0.9, true },
	{ "TLS: rpc 64 streams >= 3x TLS pool (tcp-epoll)",
	  BENCH_RPC, 64, 64, 0, M_OPS, "tcp-epoll", AT_LEAST, 3.0, true },
};

/* Evaluates target t: 1 pass, 0 fail, -1 not measured; *value gets the
 * ratio or the absolute figure. */
static int target_eval(const struct bench_session *s, const struct target *t,
		       double *value)
{
	const struct bench_run *mux =
		find_loose(s, t->w, t->streams, t->size, t->loops, t->tls,
			   BENCH_REFERENCE_IMPL);
	double v;

	*value = NAN;
	if (!mux)
		return -1;
	v = report_metric(&mux->result, t->m);
	if (t->baseline) {
		const struct bench_run *base = report_find(s, &mux->cell, t->baseline);
		double b = base ? report_metric(&base->result, t->m) : NAN;

		if (isnan(b) || b == 0)
			return -1;
		v /= b;
	}
	if (isnan(v))
		return -1;
	*value = v;
	switch (t->cmp) {
	case AT_LEAST: return v >= t->bound;
	case AT_MOST: return v <= t->bound;
	case BELOW: return v < t->bound;
	}
	return -1;
}

/* ---- the table --------------------------------------------------------- */

static bool has_impl(const struct bench_session *s, const char *name)
{
	for (size_t i = 0; i < s->nimpls; i++)
		if (strcmp(s->impls[i]->name, name) == 0)
			return true;
	return false;
}


static void print_targets(FILE *f, const struct bench_session *s)
{
	fprintf(f, "\ntargets (muxring vs baseline, same run):\n");
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		const struct target *t = &targets[i];
		double v;
		int ok = target_eval(s, t, &v);
		char val[32];

		if (ok < 0)
			snprintf(val, sizeof(val), "-");
		else if (t->baseline)
			snprintf(val, sizeof(val), "%.2fx", v);
		else
			snprintf(val, sizeof(val), "%.0f%s", v,
				 t->m == M_BPS ? " B" : " us");
		fprintf(f, "  %-56s %10s  %s\n", t->text, val,
			ok < 0 ? (has_impl(s, BENCH_REFERENCE_IMPL) ? "not measured" :
				  "not measured (muxring not in this run)") :
			ok ? "PASS" : "FAIL");
	}
}

void report_table(FILE *f, const struct bench_session *s)
{
	const struct bench_meta *m = &s->meta;
	bool mux = has_impl(s, BENCH_REFERENCE_IMPL);
	bool *printed = calloc(s->nruns ? s->nruns : 1, sizeof(*printed));

	fprintf(f, "muxbench %s run, %s | %s, %ld CPUs, %s | Linux %s%s%s\n",
		m->mode, m->date, m->cpu, m->cpus, m->arch, m->kernel,
		m->commit[0] ? " | commit " : "", m->commit);
	fprintf(f, "\n%-10s %6s %8s  %-11s", "workload", "N", "size", "metric");
	for (size_t i = 0; i < s->nimpls; i++) {
		const char *name = s->impls[i]->name;

		fprintf(f, " %10s", name);
		if (mux && strcmp(name, BENCH_REFERENCE_IMPL) != 0)
			fprintf(f, " %9s", "ratio");
	}
	fputc('\n', f);
	for (size_t i = 0; printed && i < s->nruns; i++) {
		const struct bench_cell *cell = &s->runs[i].cell;
		bool first = true;

		if (printed[i])
			continue;
		for (size_t j = i; j < s->nruns; j++)
			if (same_cell(&s->runs[j].cell, cell))
				printed[j] = true;
		for (size_t mi = 0; mi < M_COUNT; mi++) {
			/* the workload's headline figure first */
			static const enum report_metric rate_first[M_COUNT] = {
				M_OPS, M_MB, M_P50, M_P99, M_BPS,
			};
			static const enum report_metric bytes_first[M_COUNT] = {
				M_MB, M_OPS, M_P50, M_P99, M_BPS,
			};
			enum report_metric mt = cell->workload == BENCH_BULK ?
							bytes_first[mi] : rate_first[mi];
			const struct bench_run *ref =
				mux ? report_find(s, cell, BENCH_REFERENCE_IMPL) : NULL;
			bool any = false;
			char size[32], wname[32];

			for (size_t k = 0; k < s->nimpls; k++) {
				const struct bench_run *r =
					report_find(s, cell, s->impls[k]->name);

				any |= r && !isnan(report_metric(&r->result, mt));
			}
			if (!any)
				continue;
			fmt_size(cell->size, size, sizeof(size));
			fmt_workload(cell, wname, sizeof(wname));
			if (first)
				fprintf(f, "%-10s %6u %8s  ", wname,
					cell->streams, size);
			else
				fprintf(f, "%-10s %6s %8s  ", "", "", "");
			first = false;
			fprintf(f, "%-11s", metric_label(cell->workload, mt));
			for (size_t k = 0; k < s->nimpls; k++) {
				const char *name = s->impls[k]->name;
				const struct bench_run *r = report_find(s, cell, name);
				double v = r ? report_metric(&r->result, mt) : NAN;
				char buf[32];

				fmt_value(mt, v, buf, sizeof(buf));
				fprintf(f, " %10s", buf);
				if (!mux || strcmp(name, BENCH_REFERENCE_IMPL) == 0)
					continue;
				if (ref && !isnan(v) && v != 0 &&
				    !isnan(report_metric(&ref->result, mt)))
					snprintf(buf, sizeof(buf), "%.2fx",
						 report_metric(&ref->result, mt) / v);
				else
					snprintf(buf, sizeof(buf), "-");
				fprintf(f, " %9s", buf);
			}
			fputc('\n', f);
		}
		/* a failed run shows as "-"; say so once */
		for (size_t j = i; j < s->nruns; j++) {
			const struct bench_run *r = &s->runs[j];

			if (!same_cell(&r->cell, cell))
				continue;
			if (r->failed)
				fprintf(f, "%-10s %6s %8s  (%s failed: see stderr)\n",
					"", "", "", r->impl->name);
			else if (cell->workload == BENCH_IDLE && r->result.ops &&
				 r->result.ops != cell->streams)
				fprintf(f, "%-10s %6s %8s  (%s: measured over %llu streams)\n",
					"", "", "", r->impl->name,
					(unsigned long long)r->result.ops);
		}
	}
	free(printed);
	if (mux)
		fprintf(f, "\nratio = muxring / that baseline: above 1 is better for rates,"
			   " below 1 for latency (us) and memory (B/stream).\n"
			   "/L2: 2 client and 2 server loops (threads), the streams dealt out"
			   " among them (--loops).\n"
			   "/BP: every wait polls before it sleeps, muxring's (busy_poll_us)"
			   " and tcp-epoll's alike (--busy-poll).\n");
	print_targets(f, s);
	fflush(f);
}

/* ---- latest.json ------------------------------------------------------- */

static void read_cpu_model(char *buf, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(buf, len, "unknown CPU");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) != 0 || !colon)
			continue;
		colon++;
		while (*colon == ' ' || *colon == '\t')
			colon++;
		colon[strcspn(colon, "\n")] = 0;
		snprintf(buf, len, "%s", colon);
		break;
	}
	fclose(f);
}

static unsigned long long read_mem_total(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* First line of a shell command's output, or "" (no git, no repo). */
static void command_line_out(const char *cmd, char *buf, size_t len)
{
	FILE *p = popen(cmd, "r");

	buf[0] = 0;
	if (!p)
		return;
	if (!fgets(buf, (int)len, p))
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	pclose(p);
}

void report_meta_init(struct bench_meta *m, const char *repo)
{
	struct utsname u;
	time_t now = time(NULL);
	struct tm tm;
	char dirty[8], git[PATH_MAX + 64], cmd[PATH_MAX + 192];

	gmtime_r(&now, &tm);
	strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	read_cpu_model(m->cpu, sizeof(m->cpu));
	m->cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (uname(&u) == 0) {
		snprintf(m->kernel, sizeof(m->kernel), "%s", u.release);
		snprintf(m->arch, sizeof(m->arch), "%s", u.machine);
	}
	m->mem_bytes = read_mem_total();
	if (getloadavg(&m->loadavg, 1) != 1)
		m->loadavg = NAN;
	/* a path with a quote in it is not worth quoting: use the cwd */
	if (repo && !strchr(repo, '\''))
		snprintf(git, sizeof(git), "git -C '%s'", repo);
	else
		snprintf(git, sizeof(git), "git");
	snprintf(cmd, sizeof(cmd), "%s rev-parse --short HEAD 2>/dev/null", git);
	command_line_out(cmd, m->commit, sizeof(m->commit) - 8);
	if (m->commit[0]) {
		snprintf(cmd, sizeof(cmd),
			 "%s status --porcelain --untracked-files=no 2>/dev/null | head -n 1",
			 git);
		command_line_out(cmd, dirty, sizeof(dirty));
		if (dirty[0])
			strcat(m->commit, "-dirty");
	}
}

FILE *report_open_tmp(const char *dir, const char *name, char *tmp, size_t len)
{
	char path[4096];
	FILE *f;

	/* mkdir -p for the usual one or two missing levels */
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		mkdir(path, 0755);
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		bench_error("results", "mkdir %s: %s", path, strerror(errno));
		return NULL;
	}
	snprintf(tmp, len, "%s/%s.tmp", dir, name);
	f = fopen(tmp, "w");
	if (!f)
		bench_error("results", "%s: %s", tmp, strerror(errno));
	return f;
}

int report_commit_tmp(FILE *f, const char *tmp, const char *dir, const char *name)
{
	char path[4096];
	bool bad = ferror(f);

	if (fclose(f) != 0 || bad) {
		unlink(tmp);
		return bench_error("results", "writing %s failed", tmp);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return bench_error("results", "rename to %s: %s", path, strerror(errno));
	}
	return 0;
}

int report_write_json(const struct bench_session *s, const char *dir)
{
	const struct bench_meta *m = &s->meta;
	char tmp[4096];
	FILE *f = report_open_tmp(dir, "latest.json", tmp, sizeof(tmp));

	if (!f)
		return -1;
	fprintf(f, "{\n  \"tool\": \"muxbench\",\n  \"date\": ");
	json_str(f, m->date);
	fprintf(f, ",\n  \"machine\": {\"cpu\": ");
	json_str(f, m->cpu);
	fprintf(f, ", \"cpus\": %ld, \"arch\": ", m->cpus);
	json_str(f, m->arch);
	fprintf(f, ", \"memory_bytes\": %llu, \"loadavg_at_start\": ", m->mem_bytes);
	json_num(f, m->loadavg);
	fprintf(f, "},\n  \"kernel\": ");
	json_str(f, m->kernel);
	fprintf(f, ",\n  \"commit\": ");
	if (m->commit[0])
		json_str(f, m->commit);
	else
		fputs("null", f);
	fprintf(f, ",\n  \"parameters\": {\"mode\": ");
	json_str(f, m->mode);
	fprintf(f, ", \"command\": ");
	json_str(f, m->args);
	fprintf(f, ", \"impls\": [");
	for (size_t i = 0; i < s->nimpls; i++) {
		fputs(i ? ", " : "", f);
		json_str(f, s->impls[i]->name);
	}
	fprintf(f, "], \"heartbeat_interval_ms\": %llu, \"mb\": 1000000},\n",
		BENCH_HEARTBEAT_INTERVAL_NS / 1000000ull);
	fprintf(f, "  \"cells\": [\n");
	for (size_t i = 0; i < s->nruns; i++) {
		const struct bench_run *r = &s->runs[i];

		fputs("    {", f);
		json_run_fields(f, r);
		fputs(",\"elapsed_s\":", f);
		json_num(f, r->failed ? NAN : r->result.elapsed_s);
		fprintf(f, ",\"ops\":%llu,\"bytes\":%llu}%s\n",
			(unsigned long long)r->result.ops,
			(unsigned long long)r->result.bytes,
			i + 1 < s->nruns ? "," : "");
	}
	fprintf(f, "  ],\n  \"targets\": [\n");
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		const struct target *t = &targets[i];
		double v;
		int ok = target_eval(s, t, &v);

		fputs("    {\"target\": ", f);
		json_str(f, t->text);
		fprintf(f, ", \"%s\": ", t->baseline ? "ratio" : "value");
		json_num(f, v);
		fprintf(f, ", \"pass\": %s}%s\n",
			ok < 0 ? "null" : ok ? "true" : "false",
			i + 1 < sizeof(targets) / sizeof(targets[0]) ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	return report_commit_tmp(f, tmp, dir, "latest.json");
}
