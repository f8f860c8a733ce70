/*
 * svg.c - bench/results/latest.svg: muxring against the TCP pools, drawn
 * by hand (plain SVG text, no dependency).
 *
 * One panel per question the benchmark answers, in a grid under a title
 * naming the machine, kernel, date and commit, with one legend for all:
 *   rpc requests/s and rpc p50 latency, open streams/s, bulk MB/s per
 *   payload size: x = N on a log2 scale, one line per impl;
 *   idle bytes per stream and heartbeat RTT: one bar per impl.
 * A panel whose cells have a single N (the quick run) becomes bars too.
 * Y axes start at zero so that bar and line heights compare honestly;
 * where muxring ran, each panel's subtitle states its ratio to the main
 * baseline, and the targets from the issue are drawn as dashed lines.
 */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PANEL_W 420
#define PANEL_H 310
#define COLS 3
#define HEADER_H 104
#define MARGIN 16
/* plot area inside a panel */
#define PLOT_L 64
#define PLOT_R 18
#define PLOT_T 70
#define PLOT_B 46
#define MAX_PANELS 24
#define MAX_POINTS 16

enum panel_kind { PANEL_AUTO, PANEL_BARS };

struct panel {
	enum bench_workload w;
	size_t size;		/* cells of this size only (0 for idle) */
	enum report_metric m;
	enum panel_kind kind;
	char title[96];
	const char *better;	/* "higher is better" / "lower is better" */
	double target;		/* dashed line at this value, or NAN */
	const char *target_label;
	const char *baseline;	/* ratio in the subtitle against this impl */
	unsigned ratio_n;	/* ...at this N if present (the target's), else
				 * at the largest N both have */
	bool log_y;		/* latency across N spans decades */
	const char *skip_impl;	/* not drawn here (named in the subtitle) */
};

static const char *impl_color(const char *name, size_t index)
{
	static const char *const palette[] = {
		"#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
	};

	if (strcmp(name, "muxring") == 0)
		return "#d62728";
	if (strcmp(name, "tcp-epoll") == 0)
		return "#1f77b4";
	if (strcmp(name, "tcp-uring") == 0)
		return "#2ca02c";
	if (strcmp(name, "tcp-raw") == 0)
		return "#7f7f7f";
	return palette[index % (sizeof(palette) / sizeof(palette[0]))];
}

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

static void size_label(size_t size, char *buf, size_t len)
{
	if (size >= (1u << 20) && size % (1u << 20) == 0)
		snprintf(buf, len, "%zu MiB", size >> 20);
	else if (size >= 1024 && size % 1024 == 0)
		snprintf(buf, len, "%zu KiB", size >> 10);
	else
		snprintf(buf, len, "%zu B", size);
}

static bool panel_exists(const struct panel *p, size_t n, enum bench_workload w,
			 size_t size, enum report_metric m)
{
	for (size_t i = 0; i < n; i++)
		if (p[i].w == w && p[i].size == size && p[i].m == m)
			return true;
	return false;
}

/* The panels the session's runs call for, in the order the cells ran. */
static size_t plan_panels(const struct bench_session *s, struct panel *out)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nruns && n + 2 <= MAX_PANELS; i++) {
		const struct bench_cell *c = &s->runs[i].cell;
		size_t size = c->workload == BENCH_IDLE ? 0 : c->size;
		struct panel p = { .w = c->workload, .size = size, .target = NAN };
		char sz[32];

		size_label(c->size, sz, sizeof(sz));
		switch (c->workload) {
		case BENCH_RPC:
			if (panel_exists(out, n, c->workload, size, M_OPS))
				continue;
			p.m = M_OPS;
			p.better = "higher is better";
			p.baseline = "tcp-epoll";
			p.ratio_n = 64;
			snprintf(p.title, sizeof(p.title), "rpc: requests/s (%s messages)", sz);
			out[n++] = p;
			p.m = M_P50;
			p.better = "lower is better; log scale";
			p.ratio_n = 1;
			p.log_y = true;
			snprintf(p.title, sizeof(p.title), "rpc: p50 latency, us (%s)", sz);
			out[n++] = p;
			break;
		case BENCH_OPEN:
			if (panel_exists(out, n, c->workload, size, M_OPS))
				continue;
			p.m = M_OPS;
			p.better = "higher is better";
			p.baseline = "tcp-epoll";
			p.ratio_n = 64;
			snprintf(p.title, sizeof(p.title), "open: new streams/s");
			out[n++] = p;
			break;
		case BENCH_BULK:
			if (panel_exists(out, n, c->workload, size, M_MB))
				continue;
			p.m = M_MB;
			p.better = "higher is better";
			if (c->size >= (32u << 20)) {
				p.baseline = "tcp-raw";
				p.ratio_n = 1;
			} else {
				p.baseline = "tcp-epoll";
				p.ratio_n = 64;
			}
			if (c->size < (1u << 20)) {
				/* its rounds batch N tiny payloads into one write:
				 * a ceiling, not a pool; it would flatten the rest */
				p.skip_impl = "tcp-raw";
				p.better = "higher is better; tcp-raw (batched) in the table only";
			}
			snprintf(p.title, sizeof(p.title), "bulk: MB/s, %s payloads", sz);
			out[n++] = p;
			break;
		case BENCH_IDLE:
			if (panel_exists(out, n, c->workload, size, M_BPS))
				continue;
			p.m = M_BPS;
			p.kind = PANEL_BARS;
			p.better = "lower is better";
			p.target = 256;
			p.target_label = "target 256 B";
			p.baseline = "tcp-epoll";
			snprintf(p.title, sizeof(p.title), "idle: bytes per open stream");
			out[n++] = p;
			break;
		case BENCH_HEARTBEAT:
			if (panel_exists(out, n, c->workload, size, M_P99))
				continue;
			p.m = M_P99;
			p.kind = PANEL_BARS;
			p.better = "lower is better; solid p50, light p99";
			p.target = 5000;
			p.target_label = "target p99 < 5 ms";
			snprintf(p.title, sizeof(p.title), "heartbeat RTT under load, us");
			out[n++] = p;
			break;
		case BENCH_SESSIONS:	/* in the table only */
		case BENCH_WORKLOAD_COUNT:
			break;
		}
	}
	return n;
}

static bool run_in_panel(const struct bench_run *r, const struct panel *p)
{
	/* The chart's panels are the plain TCP cells with one loop per side;
	 * TLS, --loops and busy-polling cells are in the table and
	 * latest.json. */
	if (r->failed || r->cell.workload != p->w || r->cell.tls ||
	    r->cell.loops > 1 || r->cell.busy_poll_us)
		return false;
	if (p->skip_impl && strcmp(r->impl->name, p->skip_impl) == 0)
		return false;
	if (p->w != BENCH_IDLE && r->cell.size != p->size)
		return false;
	return !isnan(report_metric(&r->result, p->m));
}

/* Distinct N values of the panel, ascending. */
static size_t panel_ns(const struct bench_session *s, const struct panel *p,
		       unsigned *ns)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nruns; i++) {
		const struct bench_run *r = &s->runs[i];
		size_t j;

		if (!run_in_panel(r, p))
			continue;
		for (j = 0; j < n && ns[j] != r->cell.streams; j++)
			;
		if (j == n && n < MAX_POINTS)
			ns[n++] = r->cell.streams;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && ns[j - 1] > ns[j]; j--) {
			unsigned t = ns[j];

			ns[j] = ns[j - 1];
			ns[j - 1] = t;
		}
	return n;
}

static const struct bench_run *panel_run(const struct bench_session *s,
					 const struct panel *p, const char *impl,
					 unsigned streams)
{
	for (size_t i = 0; i < s->nruns; i++) {
		const struct bench_run *r = &s->runs[i];

		if (run_in_panel(r, p) && r->cell.streams == streams &&
		    strcmp(r->impl->name, impl) == 0)
			return r;
	}
	return NULL;
}

/* A "nice" axis top (1, 2, 2.5, 5 x 10^k) at or above v, and its step. */
static double nice_top(double v, double *step)
{
	static const double m[] = { 1, 2, 2.5, 5, 10 };
	double e, top = 1;

	if (!(v > 0)) {
		*step = 0.25;
		return 1;
	}
	e = pow(10, floor(log10(v)));
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		top = m[i] * e;
		if (top >= v)
			break;
	}
	*step = top / 5;
	if (top / *step > 5.5)
		*step = top / 4;
	return top;
}

static void fmt_value(const struct panel *p, double v, char *buf, size_t len)
{
	if (p->m == M_P50 || p->m == M_P99 || p->m == M_BPS) {
		if (v >= 100000)
			report_si(v, buf, len);
		else
			snprintf(buf, len, v >= 100 ? "%.0f" : "%.1f", v);
	} else if (p->m == M_MB && v >= 100 && v < 1e6) {
		snprintf(buf, len, "%.0f", v);
	} else {
		report_si(v, buf, len);
	}
}

/* Subtitle: muxring's ratio to the panel's baseline at the largest N both
 * have. */
static void panel_ratio(const struct bench_session *s, const struct panel *p,
			const unsigned *ns, size_t nn, char *buf, size_t len)
{
	buf[0] = 0;
	if (!p->baseline)
		return;
	for (size_t i = nn + 1; i-- > 0;) {
		/* i == nn: the target's N first */
		unsigned n = i == nn ? p->ratio_n : ns[i];
		const struct bench_run *a = panel_run(s, p, BENCH_REFERENCE_IMPL, n);
		const struct bench_run *b = panel_run(s, p, p->baseline, n);
		double va, vb;

		if (!a || !b)
			continue;
		va = report_metric(&a->result, p->m);
		vb = report_metric(&b->result, p->m);
		if (vb > 0)
			snprintf(buf, len, "muxring = %.2fx %s at N=%u", va / vb,
				 p->baseline, n);
		return;
	}
}

/* Axis tick: "0", "250", "1.5k", "20k", "2.5M". */
static void tick_label(double v, char *buf, size_t len)
{
	static const char *const sfx[] = { "", "k", "M", "G" };
	unsigned i = 0;

	while (v >= 1000 && i < 3) {
		v /= 1000;
		i++;
	}
	snprintf(buf, len, "%.3g%s", v, sfx[i]);
}

static void draw_y_axis(FILE *f, double x0, double y0, double w, double h,
			double top, double step)
{
	for (double v = 0; v <= top * 1.0001; v += step) {
		double y = y0 + h - v / top * h;
		char lab[32];

		tick_label(v, lab, sizeof(lab));
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n",
			x0, y, x0 + w, y);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">%s</text>\n",
			x0 - 6, y + 4, lab);
	}
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n",
		x0, y0 + h, x0 + w, y0 + h);
}

/* The target as a dashed line, drawn over the data (named in the
 * subtitle). */
static void draw_target(FILE *f, const struct panel *p, double x0, double y0,
			double w, double h, double top)
{
	double y;

	if (isnan(p->target) || p->target > top)
		return;
	y = y0 + h - p->target / top * h;
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n",
		x0, y, x0 + w, y);
}

/* Log-scale y axis from decade lo to decade hi: gridline per decade. */
static void draw_log_axis(FILE *f, double x0, double y0, double w, double h,
			  double lo, double hi)
{
	for (double v = lo; v <= hi * 1.0001; v *= 10) {
		double y = y0 + h - (log10(v) - log10(lo)) / (log10(hi) - log10(lo)) * h;
		char lab[32];

		tick_label(v, lab, sizeof(lab));
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n",
			x0, y, x0 + w, y);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">%s</text>\n",
			x0 - 6, y + 4, lab);
	}
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n",
		x0, y0 + h, x0 + w, y0 + h);
}

static void draw_lines(FILE *f, const struct bench_session *s,
		       const struct panel *p, double x0, double y0, double w,
		       double h, const unsigned *ns, size_t nn)
{
	double lo = log2(ns[0]), hi = log2(ns[nn - 1]), top, step, max = 0;
	double min = INFINITY, ylo = 1, yhi = 10;

	for (size_t k = 0; k < s->nimpls; k++)
		for (size_t i = 0; i < nn; i++) {
			const struct bench_run *r = panel_run(s, p, s->impls[k]->name, ns[i]);
			double v = r ? report_metric(&r->result, p->m) : NAN;

			if (v > max)
				max = v;
			if (v > 0 && v < min)
				min = v;
		}
	if (!isnan(p->target) && p->target > max)
		max = p->target;
	top = nice_top(max * 1.05, &step);
	if (p->log_y && max > 0) {
		ylo = pow(10, floor(log10(min)));
		yhi = pow(10, ceil(log10(max)));
		if (yhi <= ylo)
			yhi = ylo * 10;
		draw_log_axis(f, x0, y0, w, h, ylo, yhi);
	} else {
		draw_y_axis(f, x0, y0, w, h, top, step);
	}
#define YPOS(v) (p->log_y ? y0 + h - (log10((v) > ylo ? (v) : ylo) - log10(ylo)) / \
				(log10(yhi) - log10(ylo)) * h : \
			    y0 + h - (v) / top * h)
#define XPOS(n) (x0 + 12 + (log2(n) - lo) / (hi - lo) * (w - 24))
	for (size_t i = 0; i < nn; i++)
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">%u</text>\n",
			XPOS(ns[i]), y0 + h + 16, ns[i]);
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">N (streams or connections, log scale)</text>\n",
		x0 + w / 2, y0 + h + 32);
	/* baselines first, muxring on top */
	for (size_t pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < s->nimpls; k++) {
			const char *name = s->impls[k]->name;
			bool mux = strcmp(name, BENCH_REFERENCE_IMPL) == 0;
			const char *col = impl_color(name, k);
			bool started = false;

			if (mux != (pass == 1))
				continue;
			fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%d\"%s points=\"",
				col, mux ? 3 : 2,
				strcmp(name, "tcp-raw") == 0 ? " stroke-dasharray=\"5 3\"" : "");
			for (size_t i = 0; i < nn; i++) {
				const struct bench_run *r = panel_run(s, p, name, ns[i]);

				if (!r)
					continue;
				fprintf(f, "%s%.1f,%.1f", started ? " " : "", XPOS(ns[i]),
					YPOS(report_metric(&r->result, p->m)));
				started = true;
			}
			fputs("\"/>\n", f);
			for (size_t i = 0; i < nn; i++) {
				const struct bench_run *r = panel_run(s, p, name, ns[i]);
				char lab[32];
				double v;

				if (!r)
					continue;
				v = report_metric(&r->result, p->m);
				fmt_value(p, v, lab, sizeof(lab));
				fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"><title>",
					XPOS(ns[i]), YPOS(v), mux ? 4.5 : 3.5, col);
				xml_text(f, name);
				fprintf(f, " N=%u: %s</title></circle>\n", ns[i], lab);
			}
		}
#undef XPOS
#undef YPOS
	if (!p->log_y)
		draw_target(f, p, x0, y0, w, h, top);
}

static void draw_bars(FILE *f, const struct bench_session *s,
		      const struct panel *p, double x0, double y0, double w,
		      double h, unsigned streams)
{
	const struct bench_run *runs[8];
	const char *names[8];
	size_t idx[8], n = 0;
	double top, step, max = 0, slot, bw;

	for (size_t k = 0; k < s->nimpls && n < 8; k++) {
		const struct bench_run *r = panel_run(s, p, s->impls[k]->name, streams);

		if (!r)
			continue;
		runs[n] = r;
		names[n] = s->impls[k]->name;
		idx[n++] = k;
		if (report_metric(&r->result, p->m) > max)
			max = report_metric(&r->result, p->m);
	}
	if (!isnan(p->target) && p->target > max)
		max = p->target;
	top = nice_top(max * 1.1, &step);
	draw_y_axis(f, x0, y0, w, h, top, step);
	slot = w / (double)(n ? n : 1);
	bw = slot * 0.55;
	for (size_t i = 0; i < n; i++) {
		double v = report_metric(&runs[i]->result, p->m);
		double cx = x0 + slot * ((double)i + 0.5);
		double bh = v / top * h;
		const char *col = impl_color(names[i], idx[i]);
		char lab[32];

		fmt_value(p, v, lab, sizeof(lab));
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"%s><title>",
			cx - bw / 2, y0 + h - bh, bw, bh, col,
			p->w == BENCH_HEARTBEAT ? " fill-opacity=\"0.35\"" : "");
		xml_text(f, names[i]);
		fprintf(f, ": %s</title></rect>\n", lab);
		if (p->w == BENCH_HEARTBEAT) {
			double v50 = runs[i]->result.p50_us;
			char l50[32];

			if (!isnan(v50)) {
				fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
					cx - bw / 2, y0 + h - v50 / top * h, bw, v50 / top * h, col);
				fmt_value(p, v50, l50, sizeof(l50));
				fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\" fill=\"#333\">%s / %s</text>\n",
					cx, y0 + h - bh - 5, l50, lab);
			}
		} else {
			fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" fill=\"#333\" font-weight=\"bold\">%s</text>\n",
				cx, y0 + h - bh - 5, lab);
		}
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">",
			cx, y0 + h + 16);
		xml_text(f, names[i]);
		fputs("</text>\n", f);
	}
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">N = %u",
		x0 + w / 2, y0 + h + 32, streams);
	for (size_t i = 0; p->w == BENCH_IDLE && i < n; i++) {
		/* the pools may have been held back by the descriptor limit */
		if (runs[i]->result.ops && runs[i]->result.ops != streams) {
			fprintf(f, " (TCP pools: measured over %llu)",
				(unsigned long long)runs[i]->result.ops);
			break;
		}
	}
	fputs("</text>\n", f);
	draw_target(f, p, x0, y0, w, h, top);
}

static void draw_panel(FILE *f, const struct bench_session *s,
		       const struct panel *p, double px, double py)
{
	unsigned ns[MAX_POINTS];
	size_t nn = panel_ns(s, p, ns);
	double x0 = px + PLOT_L, y0 = py + PLOT_T;
	double w = PANEL_W - PLOT_L - PLOT_R, h = PANEL_H - PLOT_T - PLOT_B;
	char ratio[96];

	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"#fff\" stroke=\"#ddd\" rx=\"6\"/>\n",
		px, py, PANEL_W - 8, PANEL_H - 8);
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">",
		px + 12, py + 20);
	xml_text(f, p->title);
	fputs("</text>\n", f);
	panel_ratio(s, p, ns, nn, ratio, sizeof(ratio));
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#666\">",
		px + 12, py + 36);
	xml_text(f, p->better);
	if (p->target_label) {
		fputs(" | dashed: ", f);
		xml_text(f, p->target_label);
	}
	fputs("</text>\n", f);
	if (ratio[0]) {
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" font-weight=\"bold\" fill=\"#d62728\">",
			px + 12, py + 53);
		xml_text(f, ratio);
		fputs("</text>\n", f);
	}
	if (nn == 0)
		return;
	if (nn == 1 || p->kind == PANEL_BARS)
		draw_bars(f, s, p, x0, y0, w, h, ns[nn - 1]);
	else
		draw_lines(f, s, p, x0, y0, w, h, ns, nn);
}

static void draw_header(FILE *f, const struct bench_session *s, double width)
{
	const struct bench_meta *m = &s->meta;
	bool mux = false;
	double x = MARGIN;

	for (size_t i = 0; i < s->nimpls; i++)
		mux |= strcmp(s->impls[i]->name, BENCH_REFERENCE_IMPL) == 0;
	fprintf(f, "<text x=\"%d\" y=\"30\" font-size=\"20\" font-weight=\"bold\" fill=\"#222\">%s</text>\n",
		MARGIN, mux ? "muxring vs TCP connection pools over loopback" :
			      "TCP baselines over loopback (muxring not in this run)");
	fprintf(f, "<text x=\"%d\" y=\"52\" font-size=\"12\" fill=\"#555\">", MARGIN);
	xml_text(f, m->cpu);
	fprintf(f, ", %ld CPUs, %s | Linux ", m->cpus, m->arch);
	xml_text(f, m->kernel);
	fprintf(f, " | %s | %s run", m->date, m->mode);
	if (m->commit[0]) {
		fputs(" | commit ", f);
		xml_text(f, m->commit);
	}
	fputs(" | client and server: one thread and one event loop each</text>\n", f);
	for (size_t k = 0; k < s->nimpls; k++) {
		const char *name = s->impls[k]->name;
		bool isref = strcmp(name, BENCH_REFERENCE_IMPL) == 0;

		fprintf(f, "<line x1=\"%.1f\" y1=\"78\" x2=\"%.1f\" y2=\"78\" stroke=\"%s\" stroke-width=\"%d\"%s/>\n",
			x, x + 26, impl_color(name, k), isref ? 4 : 3,
			strcmp(name, "tcp-raw") == 0 ? " stroke-dasharray=\"5 3\"" : "");
		fprintf(f, "<text x=\"%.1f\" y=\"82\" font-size=\"13\" fill=\"#222\"%s>",
			x + 32, isref ? " font-weight=\"bold\"" : "");
		xml_text(f, name);
		fputs("</text>\n", f);
		x += 42 + 8.0 * (double)strlen(name) + 20;
	}
	(void)width;
}

int report_write_svg(const struct bench_session *s, const char *dir)
{
	struct panel panels[MAX_PANELS];
	size_t n = plan_panels(s, panels);
	/* 7 or 8 panels (the quick run) fit two rows of four */
	size_t cols = n <= COLS ? (n ? n : 1) : n == 7 || n == 8 ? 4 : COLS;
	size_t rows = (n + cols - 1) / cols;
	double width = MARGIN * 2 + (double)cols * PANEL_W;
	double height = HEADER_H + (double)(rows ? rows : 1) * PANEL_H + MARGIN;
	char tmp[4096];
	FILE *f = report_open_tmp(dir, "latest.svg", tmp, sizeof(tmp));

	if (!f)
		return -1;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
		width, height, width, height);
	fprintf(f, "<title>muxbench results</title>\n");
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#f7f7f7\"/>\n");
	draw_header(f, s, width);
	for (size_t i = 0; i < n; i++)
		draw_panel(f, s, &panels[i], MARGIN + (double)(i % cols) * PANEL_W,
			   HEADER_H + (double)(i / cols) * PANEL_H);
	if (n == 0)
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" fill=\"#555\">no results</text>\n",
			MARGIN, HEADER_H + 30);
	fputs("</svg>\n", f);
	return report_commit_tmp(f, tmp, dir, "latest.svg");
}
