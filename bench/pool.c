/*
 * pool.c - the TCP connection pool baseline, everything but its loops.
 *
 * Main idea: a cell becomes a plan of listeners (how many ports, what the
 * server does on each), one server thread, and a client loop run on the
 * calling thread; the two loops (impl_tcp_epoll.c, impl_tcp_uring.c) only move
 * bytes.  Listener ports are multiplied when one port would run out of
 * ephemeral ports: 100,000 idle connections, or the open workload's
 * stream of new connections, whose TIME_WAIT entries hold ports.
 */
#include "pool.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Listener ports for the open workload: headroom for TIME_WAIT. */
#define OPEN_PORTS 4
/* Descriptors kept back for the process itself. */
#define FD_SLACK 64
/* How long a client waits for the server to accept every connection. */
#define ACCEPT_WAIT_NS (60 * 1000 * 1000 * 1000ull)

bool pool_supports(const struct bench_cell *cell)
{
	return !cell->tls;
}

unsigned pool_listener_of(const struct pool *p, unsigned long i)
{
	if (p->cell->workload == BENCH_HEARTBEAT)
		return i < p->cell->streams ? 0 : 1;	/* load, then ping */
	return (unsigned)(i % p->nlis);
}

unsigned pool_open_listener(const struct pool *p, uint64_t k)
{
	return (unsigned)(k % p->nlis);
}

/* Lays out listeners and client connections for the cell. */
static void plan(struct pool *p)
{
	const struct bench_cell *c = p->cell;
	unsigned n = 1;

	for (unsigned i = 0; i < POOL_MAX_LISTENERS; i++) {
		p->lis[i].fd = -1;
		p->lis[i].size = c->size;
	}
	switch (c->workload) {
	case BENCH_RPC:
	case BENCH_IDLE:
	case BENCH_SESSIONS:
		n = bench_ports_for(c->streams);
		for (unsigned i = 0; i < n; i++)
			p->lis[i].mode = POOL_ECHO;
		p->nconns = c->streams;
		break;
	case BENCH_BULK:
		n = bench_ports_for(c->streams);
		for (unsigned i = 0; i < n; i++)
			p->lis[i].mode = POOL_SINK_REPLY;
		p->nconns = c->streams;
		break;
	case BENCH_OPEN:
		n = OPEN_PORTS;
		for (unsigned i = 0; i < n; i++)
			p->lis[i].mode = POOL_ONESHOT;
		p->nconns = 0;
		break;
	case BENCH_HEARTBEAT:
	case BENCH_WORKLOAD_COUNT:
		n = 2;
		p->lis[0].mode = POOL_SINK;
		p->lis[1].mode = POOL_ECHO;
		p->lis[1].size = POOL_PING_SIZE;
		p->nconns = (unsigned long)c->streams + 1;
		break;
	}
	p->nlis = n;
}

/* Descriptors: both ends of every connection live in this process. */
static int reserve_fds(struct pool *p)
{
	unsigned long conns = p->cell->workload == BENCH_OPEN ?
				      p->cell->streams : p->nconns;
	unsigned long need = 2 * conns + FD_SLACK, have;

	have = bench_fd_reserve(need);
	if (have >= need)
		return 0;
	if ((p->cell->workload == BENCH_IDLE ||
	     p->cell->workload == BENCH_SESSIONS) && have > FD_SLACK + 2) {
		p->nconns = (have - FD_SLACK) / 2;
		fprintf(stderr,
			"muxbench: %s: descriptor limit %lu: %s measured over %lu connections, not %u\n",
			p->name, have, bench_workload_name(p->cell->workload),
			p->nconns, p->cell->streams);
		return 0;
	}
	return bench_error(p->name,
			   "need %lu open files, RLIMIT_NOFILE allows %lu (raise it with ulimit -n)",
			   need, have);
}

static int open_listeners(struct pool *p)
{
	for (unsigned i = 0; i < p->nlis; i++) {
		int fd = bench_listen(&p->lis[i].port, true);

		if (fd < 0)
			return bench_error(p->name, "listen on 127.0.0.1: %s",
					   strerror(-fd));
		p->lis[i].fd = fd;
	}
	return 0;
}

static void close_listeners(struct pool *p)
{
	for (unsigned i = 0; i < p->nlis; i++)
		if (p->lis[i].fd >= 0)
			close(p->lis[i].fd);
}

int pool_connect_all(struct pool *p)
{
	if ((p->cell->workload == BENCH_IDLE ||
	     p->cell->workload == BENCH_SESSIONS) &&
	    bench_mem_sample(&p->mem_before) < 0)
		return bench_error(p->name, "cannot read /proc memory figures");
	p->fds = malloc(p->nconns * sizeof(*p->fds));
	if (!p->fds)
		return bench_error(p->name, "out of memory");
	for (unsigned long i = 0; i < p->nconns; i++)
		p->fds[i] = -1;
	for (unsigned long i = 0; i < p->nconns; i++) {
		int fd = bench_connect(p->lis[pool_listener_of(p, i)].port);

		if (fd < 0)
			return bench_error(p->name,
					   "connect %lu of %lu to 127.0.0.1: %s",
					   i + 1, p->nconns, strerror(-fd));
		p->fds[i] = fd;
		if (bench_set_nonblock(fd) < 0)
			return bench_error(p->name, "fcntl: %s", strerror(errno));
		if (atomic_load(&p->server_failed))
			return -1;
	}
	return 0;
}

void pool_close_all(struct pool *p)
{
	if (!p->fds)
		return;
	for (unsigned long i = 0; i < p->nconns; i++) {
		if (p->fds[i] < 0)
			continue;
		if (p->cell->workload == BENCH_IDLE)
			bench_close_abort(p->fds[i]);
		else
			close(p->fds[i]);
	}
	free(p->fds);
	p->fds = NULL;
}

int pool_wait_accepted(struct pool *p)
{
	uint64_t t0 = bench_now_ns();

	while (atomic_load(&p->accepted) < p->nconns) {
		if (atomic_load(&p->server_failed))
			return -1;
		if (bench_now_ns() - t0 > ACCEPT_WAIT_NS)
			return bench_error(p->name,
					   "the server accepted only %lu of %lu connections in %llu s",
					   atomic_load(&p->accepted), p->nconns,
					   ACCEPT_WAIT_NS / 1000000000ull);
		usleep(200);
	}
	return 0;
}

int pool_idle_measure(struct pool *p)
{
	struct bench_mem after;

	if (pool_wait_accepted(p) < 0)
		return -1;
	if (bench_mem_sample(&after) < 0)
		return bench_error(p->name, "cannot read /proc memory figures");
	p->bytes_per_stream =
		bench_mem_per_stream(&p->mem_before, &after, p->nconns,
				     &p->kernel_bytes_per_stream);
	return 0;
}

int pool_sessions_measure(struct pool *p)
{
	struct bench_mem after;

	if (bench_mem_sample(&after) < 0)
		return bench_error(p->name, "cannot read /proc memory figures");
	p->bytes_per_stream =
		bench_mem_per_stream(&p->mem_before, &after, p->nconns,
				     &p->kernel_bytes_per_stream);
	return 0;
}

struct server_arg {
	struct pool *p;
	const struct pool_ops *ops;
	int err;
};

static void *server_thread(void *arg)
{
	struct server_arg *a = arg;

	a->err = a->ops->server(a->p);
	if (a->err)
		atomic_store(&a->p->server_failed, true);
	return NULL;
}

static void fill_result(const struct pool *p, struct bench_result *out)
{
	double secs = (double)(p->t_end - p->t_start) / 1e9;

	if (p->cell->workload == BENCH_IDLE) {
		out->bytes_per_stream = p->bytes_per_stream;
		out->kernel_bytes_per_stream = p->kernel_bytes_per_stream;
		out->ops = p->nconns;	/* connections actually opened */
		return;
	}
	out->elapsed_s = secs;
	out->ops = p->ops;
	out->bytes = p->bytes;
	if (secs <= 0)
		return;
	bench_latency_report(&p->lat, out);
	switch (p->cell->workload) {
	case BENCH_SESSIONS:
		out->bytes_per_stream = p->bytes_per_stream;
		out->kernel_bytes_per_stream = p->kernel_bytes_per_stream;
		/* fall through */
	case BENCH_RPC:
	case BENCH_OPEN:
		out->ops_per_s = (double)p->ops / secs;
		break;
	case BENCH_BULK:
		out->ops_per_s = (double)p->ops / secs;
		out->mb_per_s = (double)p->bytes / secs / 1e6;
		break;
	case BENCH_HEARTBEAT:
		out->mb_per_s = (double)p->bytes / secs / 1e6;
		break;
	case BENCH_IDLE:
	case BENCH_WORKLOAD_COUNT:
		break;
	}
}

int pool_run(const char *name, const struct pool_ops *ops,
	     const struct bench_cell *cell, struct bench_result *out)
{
	struct server_arg sa = { 0 };
	pthread_t server;
	struct pool *p;
	int err = -1;

	p = calloc(1, sizeof(*p));
	if (!p)
		return bench_error(name, "out of memory");
	p->name = name;
	p->cell = cell;
	p->stop_fd = -1;
	bench_latency_init(&p->lat);
	plan(p);
	if (reserve_fds(p) < 0 || open_listeners(p) < 0)
		goto out;
	p->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->stop_fd < 0) {
		bench_error(name, "eventfd: %s", strerror(errno));
		goto out;
	}
	if (cell->workload != BENCH_IDLE) {
		/* at least a ping's worth, whatever --size says */
		size_t len = cell->size < 64 ? 64 : cell->size;

		p->payload = malloc(len);
		if (!p->payload) {
			bench_error(name, "out of memory for a %zu-byte payload",
				    len);
			goto out;
		}
		for (size_t i = 0; i < len; i++)
			p->payload[i] = (uint8_t)('a' + i % 26);
	}
	sa.p = p;
	sa.ops = ops;
	errno = pthread_create(&server, NULL, server_thread, &sa);
	if (errno) {
		bench_error(name, "pthread_create: %s", strerror(errno));
		goto out;
	}
	err = ops->client(p);
	pool_close_all(p);
	if (eventfd_write(p->stop_fd, 1) < 0) {
		/* cannot happen with a fresh counter; do not hang on join */
		bench_error(name, "eventfd_write: %s", strerror(errno));
		abort();
	}
	pthread_join(server, NULL);
	if (sa.err)
		err = -1;
	if (err == 0)
		fill_result(p, out);
out:
	pool_close_all(p);
	close_listeners(p);
	if (p->stop_fd >= 0)
		close(p->stop_fd);
	free(p->payload);
	free(p);
	return err;
}
