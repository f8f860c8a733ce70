/*
 * pool.h - the TCP connection pool baseline: what tcp-epoll and tcp-uring
 * share.
 *
 * Both baselines are "a pool of N TCP connections, one request in flight
 * on each, a single-threaded event loop per side": they differ only in the
 * loop (epoll and nonblocking calls, or io_uring).  pool.c owns everything
 * that is not the loop: the plan of listeners for a cell, the descriptor
 * budget, the payload, the server thread, the stop signal, connecting the
 * long-lived connections, the idle measurement and turning counters into
 * a struct bench_result.  An impl supplies two functions, a server loop
 * and a client loop, both driven by a struct pool.
 *
 * Protocol on the wire (no framing bytes: each side knows the cell):
 *   POOL_ECHO       read `size` bytes, write them back      (rpc, ping)
 *   POOL_SINK_REPLY read `size` bytes, write 1 byte         (bulk)
 *   POOL_ONESHOT    read to FIN, write `size` bytes, close   (open)
 *   POOL_SINK       read and discard until FIN               (heartbeat load)
 */
#ifndef MUXBENCH_POOL_H
#define MUXBENCH_POOL_H

#include "bench.h"

#include <stdatomic.h>

enum pool_mode {
	POOL_ECHO,
	POOL_SINK_REPLY,
	POOL_ONESHOT,
	POOL_SINK,
};

#define POOL_MAX_LISTENERS 16
/* Size of the heartbeat workload's ping (and its echo). */
#define POOL_PING_SIZE 8
/* Server scratch buffer for the sinks; payload bytes are discarded. */
#define POOL_SCRATCH (256 * 1024)

struct pool_listener {
	int fd;			/* nonblocking listening socket */
	uint16_t port;
	enum pool_mode mode;	/* what the server does on its connections */
	size_t size;		/* message size for that mode, bytes */
};

struct pool {
	const char *name;		/* impl name, for error messages */
	const struct bench_cell *cell;

	struct pool_listener lis[POOL_MAX_LISTENERS];
	unsigned nlis;
	int stop_fd;			/* eventfd: readable = server must stop */

	/* Long-lived client connections (every workload but open):
	 * conns[i] connects to lis[pool_listener_of(i)]. */
	unsigned long nconns;
	int *fds;			/* filled by pool_connect_all() */

	/* Client payload: cell->size bytes (bulk, heartbeat chunk, rpc and
	 * open message), a fixed pattern. */
	uint8_t *payload;

	/* Server -> client, while running. */
	atomic_ulong accepted;		/* connections accepted so far */
	atomic_bool server_failed;	/* the server loop gave up */

	/* Client results, read by pool_run() after the client returns. */
	uint64_t t_start, t_end;	/* measured window, ns */
	uint64_t ops;			/* requests completed */
	uint64_t bytes;			/* payload bytes written */
	struct bench_mem mem_before;	/* idle: before the first connect */
	double bytes_per_stream;	/* idle, sessions */
	double kernel_bytes_per_stream;	/* its kernel slab part */
	struct bench_latency lat;
};

struct pool_ops {
	/* Serve p->lis[] until p->stop_fd becomes readable; 0 or -1 after
	 * printing the error.  Closes everything it accepted. */
	int (*server)(struct pool *p);
	/* Run the cell's client side and fill the client results; 0 or -1
	 * after printing the error.  Closes everything it opened. */
	int (*client)(struct pool *p);
};

/* A bench_impl's supports(): every workload without TLS (tcp-raw has its
 * own; tcp-epoll adds its TLS cells). */
bool pool_supports(const struct bench_cell *cell);
/* A bench_impl's run(), given the impl's two loops. */
int pool_run(const char *name, const struct pool_ops *ops,
	     const struct bench_cell *cell, struct bench_result *out);

/* Listener index that long-lived connection i connects to. */
unsigned pool_listener_of(const struct pool *p, unsigned long i);
/* Open-workload listener for the k-th new connection (round robin). */
unsigned pool_open_listener(const struct pool *p, uint64_t k);

/*
 * Client: connect p->nconns blocking connections into p->fds, then make
 * them nonblocking.  For the idle workload, first takes the "before"
 * memory sample (call it once the client loop exists).  0 or -1.
 */
int pool_connect_all(struct pool *p);
/* Client: closes p->fds (with RST for idle: no TIME_WAIT) and frees it. */
void pool_close_all(struct pool *p);
/* Client: waits (bounded) until the server has accepted p->nconns. */
int pool_wait_accepted(struct pool *p);
/*
 * Client, idle workload: waits until the server has accepted every
 * connection, takes the "after" sample and sets p->bytes_per_stream.
 */
int pool_idle_measure(struct pool *p);

/*
 * Client, sessions workload, at the end of the window with every
 * connection and its buffers still there (the server closes its ends only
 * when told to stop): the "after" sample; sets p->bytes_per_stream.
 */
int pool_sessions_measure(struct pool *p);

/* True once the stall guard should fire: nothing done since `last` ns. */
static inline bool pool_stalled(uint64_t now, uint64_t last)
{
	return now - last > BENCH_STALL_NS;
}

#endif /* MUXBENCH_POOL_H */
