/*
 * bench.h - the interface between muxbench's framework and the
 * implementations it measures.
 *
 * muxbench runs the same workloads over real loopback TCP against several
 * implementations ("impls"): muxring itself and the TCP baselines
 * (tcp-epoll, tcp-uring, tcp-raw).  The framework (muxbench.c, report.c,
 * svg.c) knows nothing about sockets; an impl knows nothing about the
 * command line or the output formats.  They meet here:
 *
 *   struct bench_cell    what to run: workload, N, size, duration
 *   struct bench_result  what was measured; NAN marks "not applicable"
 *   struct bench_impl    name, supports(cell), run(cell, result)
 *
 * An impl lives in one file, bench/impl_<name>.c, defines one
 * `const struct bench_impl bench_impl_<name>` and is listed once in
 * impls.c.  run() is called once per cell from the main thread; it starts
 * whatever threads it needs (a server loop thread and a client loop
 * thread, each with its own event loop, over 127.0.0.1 only), measures,
 * stops and joins every thread, closes every descriptor, frees every
 * allocation and returns.  Nothing survives from one cell to the next.
 * The muxring impl supports every workload: one TCP connection (made with
 * bench_listen() / bench_connect() below, or muxring's own listen and
 * connect) carries the cell's N streams between a client loop thread and
 * a server loop thread.
 *
 * ---------------------------------------------------------------------
 * The workloads: what run() must do and measure
 * ---------------------------------------------------------------------
 * Common rules.  Set-up (listening, connecting the session or the pool's
 * connections, starting threads) happens before the clock starts and is
 * not measured.  "Stream" below means a muxado stream for muxring and a
 * TCP connection for the pools.  The clock starts when every stream of
 * the cell is ready; at start + cell->seconds each worker stops *starting*
 * requests; the cell ends when the requests in flight have finished.
 * elapsed_s = end - start, and rates are completed / elapsed_s.
 * Latencies are per request, from just before the request is submitted
 * (write issued / stream opened) to its completion being seen by the
 * client loop, recorded in a struct bench_latency (latency.c).
 * Fill with bench_result_init() first, then set the fields that apply.
 *
 * BENCH_RPC (size = request size, 64 by default).  N long-lived streams,
 * one request in flight on each: write `size` bytes, read the `size`-byte
 * response (the server echoes), repeat.
 *   -> ops_per_s (round trips/s), p50_us, p99_us.
 *
 * BENCH_OPEN (size = 64).  N workers; each request on a NEW stream: open,
 * write `size` bytes, half-close (FIN), read the `size`-byte reply and the
 * peer's FIN, close.  The server accepts, reads to FIN, replies `size`
 * bytes (the pools echo the request), closes.  Latency = open .. close.
 * (Pools: a new TCP connection per request, `connect .. close`.)
 *   -> ops_per_s (streams/s), p50_us, p99_us.
 *
 * BENCH_BULK (size = payload: 1, 1 KiB, 1 MiB, 32 MiB).  The Go reference's
 * benchmark: N workers; each request opens a stream, writes `size` bytes,
 * half-closes; the server reads it all and replies with 1 byte; the client
 * reads that byte and closes.  Workers repeat until cell->seconds have
 * passed, at least one request each.  (Pools keep N connections open and
 * frame each payload by its known size.)
 *   -> mb_per_s (payload bytes / elapsed_s / 1e6), ops_per_s (payloads/s),
 *      p50_us, p99_us (per payload).
 *
 * BENCH_IDLE (streams = 100000 by default; size and seconds unused).  Open
 * N streams, both ends established and idle, and measure memory with
 * bench_mem_sample(): once after the loops and the session (or listener)
 * are up and before the first stream opens, once when all N are open on
 * both sides.  bytes_per_stream = bench_mem_per_stream(&before, &after, N, ...)
 * (process RSS plus kernel slab, both sides of every stream, see
 * memory.c).  If fewer than N could be opened (descriptor limit), report
 * per stream over the number actually opened and say so on stderr.
 *   -> bytes_per_stream; ops = the number of streams it was measured over.
 *
 * BENCH_HEARTBEAT (streams = 8, size = write chunk, 64 KiB by default).
 * N streams write continuously (chunks of `size` bytes, the server reads
 * and discards) for cell->seconds, saturating the connection; meanwhile
 * the heartbeat measures its round-trip time every
 * BENCH_HEARTBEAT_INTERVAL_NS (muxring: the heartbeat extension's RTT;
 * pools: an 8-byte echo on one more connection, the nearest TCP analogue).
 *   -> p50_us, p99_us (heartbeat RTT), mb_per_s (the saturating load:
 *      bytes the client wrote in the window / elapsed_s / 1e6).
 *
 * TLS cells (cell->tls; rpc, open and bulk only).  The same workloads with
 * TLS under them: muxring runs its one session through libmuxring-tls,
 * the pools put OpenSSL on each connection (SSL over the nonblocking
 * socket).  Both use bench_tls_ctx(), so ciphers and certificate checks are
 * the same.  Handshakes of long-lived connections and of the session are
 * set-up, not measured; in the open workload every pool request is a new
 * TCP connection with a full TLS handshake, every muxring request a new
 * stream of the one TLS session.
 *
 * BENCH_SESSIONS (streams = sessions, 10000 by default; size = 64).  N
 * sessions (TCP connections for the pools) of one stream each, every one
 * its own connection to one listener; rpc on every stream as in
 * BENCH_RPC.  Memory is sampled (bench_mem_sample) once before the first
 * connection and once at the end of the window, every connection still
 * open: bytes_per_stream = memory per session, both ends, kernel
 * included.
 *   -> ops_per_s, p50_us, p99_us, bytes_per_stream (per session).
 *
 * Every workload but idle calls bench_clock_start() once, in the thread
 * that runs the client, right before it reads the clock that starts the
 * window (heartbeat: before its warm-up load).  With --loops it waits
 * there for the other copies of the cell (lanes.c), so that all of them
 * measure the same seconds.
 */
#ifndef MUXBENCH_BENCH_H
#define MUXBENCH_BENCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- cells and results ------------------------------------------------ */

enum bench_workload {
	BENCH_RPC,
	BENCH_OPEN,
	BENCH_BULK,
	BENCH_IDLE,
	BENCH_HEARTBEAT,
	BENCH_SESSIONS,
	BENCH_WORKLOAD_COUNT
};

/* One point of the matrix: what an impl's run() is asked to do. */
struct bench_cell {
	enum bench_workload workload;
	unsigned streams;	/* N: streams, connections or workers (>= 1) */
	size_t size;		/* bytes: message, payload or write chunk;
				 * 0 for BENCH_IDLE */
	double seconds;		/* measured window; unused by BENCH_IDLE */
	bool tls;		/* over TLS (see "TLS cells" above) */
	unsigned loops;		/* client loops, and as many server loops,
				 * each a thread of its own; 0 or 1: one
				 * each.  run() sees 1: lanes.c runs `loops`
				 * copies of it side by side (see there) */
	unsigned muxring_flags;	/* MUXRING_LOOP_* bits for the muxring
				 * impl's loops (--sqpoll); 0 for the rest */
	unsigned busy_poll_us;	/* waits poll this long before they sleep
				 * (--busy-poll; only impls with busy_polls
				 * run such a cell); 0: they sleep at once */
};

/*
 * What run() measured.  Every double is NAN when it does not apply to the
 * workload (printed as "-" and as JSON null); bench_result_init() sets
 * them all to NAN and the counters to 0.
 */
struct bench_result {
	double ops_per_s;	/* completed requests (or streams) per second */
	double mb_per_s;	/* payload throughput, 1 MB = 1e6 bytes */
	double p50_us;		/* median latency, microseconds */
	double p99_us;		/* 99th percentile latency, microseconds */
	double bytes_per_stream; /* BENCH_IDLE: memory per idle stream */
	double kernel_bytes_per_stream; /* the kernel slab's part of it (the
					   rest is the process's) */
	double elapsed_s;	/* measured window actually run, seconds */
	uint64_t ops;		/* requests (streams, payloads, pings) done;
				 * idle: streams measured over */
	uint64_t bytes;		/* payload bytes moved, where counted */
};

struct bench_impl {
	const char *name;	/* "muxring", "tcp-epoll", ... as on the CLI */
	const char *summary;	/* one line for --help */
	/* Whether this impl has a meaningful figure for the cell. */
	bool (*supports)(const struct bench_cell *cell);
	/* Whether its waits honour cell->busy_poll_us. */
	bool busy_polls;
	/*
	 * Runs one cell as described at the top of this file and fills
	 * *out.  Returns 0, or -1 after printing one clear line to stderr
	 * ("muxbench: <impl>: <what failed>: <strerror>").  Must leave no
	 * thread, descriptor or allocation behind, even on failure.
	 */
	int (*run)(const struct bench_cell *cell, struct bench_result *out);
};

/* impls.c: every impl compiled in, in column order, NULL-terminated. */
extern const struct bench_impl *const bench_impls[];

extern const struct bench_impl bench_impl_muxring;	/* bench/impl_muxring.c */
extern const struct bench_impl bench_impl_tcp_epoll;
extern const struct bench_impl bench_impl_tcp_uring;
extern const struct bench_impl bench_impl_tcp_raw;

/* The impl every other one is compared with (ratio columns, targets). */
#define BENCH_REFERENCE_IMPL "muxring"

/* Heartbeat period of the BENCH_HEARTBEAT workload, for every impl. */
#define BENCH_HEARTBEAT_INTERVAL_NS (10 * 1000 * 1000ull)

/* Pools bail out when nothing progresses for this long (a hung peer). */
#define BENCH_STALL_NS (10 * 1000 * 1000 * 1000ull)

const char *bench_workload_name(enum bench_workload w);
/* Sets every figure to NAN and the counters to 0. */
void bench_result_init(struct bench_result *r);
/* Prints "muxbench: <who>: <message>\n" to stderr; returns -1. */
int bench_error(const char *who, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- lanes.c: one cell over several loops ------------------------------- */

/*
 * Runs the cell on impl: run() once when cell->loops <= 1; otherwise
 * `loops` copies of run() side by side, one thread each (so each copy's
 * own client and server threads make `loops` loops per side), the cell's
 * streams dealt out among them, and their results merged (rates and
 * counts summed, latencies merged histogram by histogram).  0 or -1.
 */
int bench_run_cell(const struct bench_impl *impl, const struct bench_cell *cell,
		   struct bench_result *out);
/* Whether impl can run the cell (idle cannot be split: its memory figure
 * is the whole process's). */
bool bench_cell_supported(const struct bench_impl *impl,
			  const struct bench_cell *cell);
/* See "Every workload but idle" above; returns at once with one loop. */
void bench_clock_start(void);

/* ---- isolate.c: one cell per process ----------------------------------- */

/* bench_run_cell in a child process, so that no cell runs on the heap
 * another left behind.  0 or -1. */
int bench_run_isolated(const struct bench_impl *impl,
		       const struct bench_cell *cell, struct bench_result *out);

/* ---- clock ------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bench_seconds_to_ns(double s)
{
	return s <= 0 ? 0 : (uint64_t)(s * 1e9);
}

/* ---- latency.c: log-linear histogram ----------------------------------- */

/*
 * Fixed-size histogram of nanosecond latencies: values below 64 ns are
 * exact, larger ones fall in buckets 1/64 of their power of two wide
 * (relative error under 1.6 %).  About 30 KiB whatever the sample count;
 * recording is O(1) and allocation-free.  One per thread; merge after
 * joining.
 */
#define BENCH_LATENCY_SUB_BITS 6
#define BENCH_LATENCY_SUB (1u << BENCH_LATENCY_SUB_BITS)
#define BENCH_LATENCY_BUCKETS ((64 - BENCH_LATENCY_SUB_BITS + 1) * BENCH_LATENCY_SUB)

struct bench_latency {
	uint64_t count;		/* samples recorded */
	uint64_t min_ns;	/* smallest sample (UINT64_MAX when empty) */
	uint64_t max_ns;	/* largest sample */
	uint64_t buckets[BENCH_LATENCY_BUCKETS];
};

void bench_latency_init(struct bench_latency *l);
void bench_latency_record(struct bench_latency *l, uint64_t ns);
void bench_latency_merge(struct bench_latency *dst,
			 const struct bench_latency *src);
/* The p-th percentile (0 < p <= 100) in ns; NAN when empty. */
double bench_latency_percentile(const struct bench_latency *l, double p);
/* Sets r->p50_us and r->p99_us from l (NAN when l is empty); under
 * --loops it also hands l to lanes.c for the merge. */
void bench_latency_report(const struct bench_latency *l,
			  struct bench_result *r);
/* lanes.c: keeps l for the merge when this thread runs a copy of a cell. */
void bench_lane_capture(const struct bench_latency *l);

/* ---- tls.c: the TLS contexts of TLS cells ------------------------------- */

/* OpenSSL's SSL_CTX, without its headers here. */
struct ssl_ctx_st;

/*
 * The shared server or client SSL_CTX (TLS 1.2 and 1.3; a self-signed
 * certificate for IP 127.0.0.1 made at first use; the client verifies it,
 * set the address with SSL_set1_host or X509_VERIFY_PARAM_set1_ip_asc).
 * NULL when OpenSSL failed.  Made once per process, never freed.
 */
struct ssl_ctx_st *bench_tls_ctx(bool server);

/* ---- loopback.c: sockets on 127.0.0.1 ---------------------------------- */

/*
 * Listens on 127.0.0.1, an ephemeral port, TCP_NODELAY set (accepted
 * sockets inherit it), backlog 4096.  Returns the fd and the port in
 * *port, or -errno.
 */
int bench_listen(uint16_t *port, bool nonblock);
/* Blocking connect to 127.0.0.1:port, TCP_NODELAY set; fd or -errno. */
int bench_connect(uint16_t port);
/* Socket for a nonblocking connect, TCP_NODELAY set; fd or -errno. */
int bench_socket(bool nonblock);
/* 127.0.0.1:port */
void bench_sockaddr(uint16_t port, struct sockaddr_in *sa);
int bench_set_nonblock(int fd);
/* Closes with SO_LINGER 0: RST, no TIME_WAIT (idle teardown). */
void bench_close_abort(int fd);
/*
 * Makes sure `want` descriptors may be open: raises the soft
 * RLIMIT_NOFILE (and the hard one when privileged).  Returns how many
 * descriptors may be open now (>= want on success).
 */
unsigned long bench_fd_reserve(unsigned long want);
/* Listener ports needed so that `conns` client connections to 127.0.0.1
 * never run out of ephemeral ports (each port serves ~20000). */
unsigned bench_ports_for(unsigned long conns);

/* ---- memory.c: what the idle workload weighs --------------------------- */

struct bench_mem {
	uint64_t rss_bytes;	/* this process's resident set */
	uint64_t slab_bytes;	/* kernel slab, system-wide */
};

int bench_mem_sample(struct bench_mem *m);
/* ((after - before) rss + slab) / n, in bytes, and in *kernel the slab's
 * part of it; either may be negative noise. */
double bench_mem_per_stream(const struct bench_mem *before,
			    const struct bench_mem *after, unsigned long n,
			    double *kernel);

#endif /* MUXBENCH_BENCH_H */
