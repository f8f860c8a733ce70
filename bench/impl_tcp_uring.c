/*
 * impl_tcp_uring.c - baseline "tcp-uring": the same pool of TCP connections as
 * tcp-epoll, one request in flight on each, driven by io_uring.
 *
 * One ring per thread (server, client), set up the fast way the kernel
 * allows (single issuer, deferred task work), and one
 * io_uring_submit_and_wait per turn of each loop, so a turn submits every
 * request the previous completions made ready.  Each request is one
 * linked chain, so the loop only sees its end:
 *   rpc client     send(WAITALL) -> recv(WAITALL)
 *   rpc server     recv(WAITALL) -> send(WAITALL)      (echo in place)
 *   open client    connect -> send -> shutdown(WR) -> recv(size+1, WAITALL)
 *                  then close; the recv of size+1 bytes ends at the FIN
 *   open server    recv(size+1, WAITALL) -> send -> close
 *   bulk client    send(payload, WAITALL) -> recv(1)
 * MSG_WAITALL makes the kernel finish short transfers itself, so a chain
 * breaks only on end-of-file or error.  Sinks (bulk server, heartbeat
 * load) keep one recv or send of one buffer in flight per connection,
 * which is also what keeps them fair to the heartbeat's ping.
 *
 * Every connection counts its operations in flight and is freed only when
 * the last completion for it has been seen; at the end the ring is torn
 * down first (cancelling what is left), then descriptors are closed.
 */
#include "pool.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NAME "tcp-uring"
#define RING_ENTRIES 4096
/* wait at most this long for a completion before checking for stalls */
#define WAIT_NS (200 * 1000 * 1000)

/* user_data: pointer with the operation in its low 3 bits */
enum op {
	OP_RECV,
	OP_SEND,
	OP_CONNECT,
	OP_SHUTDOWN,
	OP_CLOSE,
	OP_ACCEPT,
	OP_STOP,
	OP_TIMER,
};

static uint64_t tagged(void *ptr, enum op op)
{
	return (uint64_t)(uintptr_t)ptr | (uint64_t)op;
}

static enum op op_of(uint64_t u)
{
	return (enum op)(u & 7u);
}

static void *ptr_of(uint64_t u)
{
	return (void *)(uintptr_t)(u & ~(uint64_t)7u);
}

/* The fastest set-up the kernel accepts; a clear error when none. */
static int ring_init(struct io_uring *ring)
{
	static const unsigned flags[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int err = -EINVAL;

	for (unsigned i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct io_uring_params params = { .flags = flags[i] };

		err = io_uring_queue_init_params(RING_ENTRIES, ring, &params);
		if (err != -EINVAL)
			break;
	}
	if (err == -ENOSYS || err == -EPERM || err == -EACCES)
		return bench_error(NAME,
				   "io_uring is unavailable: %s (kernel.io_uring_disabled, a seccomp profile or a kernel without io_uring)",
				   strerror(-err));
	if (err < 0)
		return bench_error(NAME, "io_uring_queue_init: %s", strerror(-err));
	return 0;
}

/*
 * Room for a chain of n SQEs in this submission: a link must not straddle
 * two submissions, so submit what is queued when the ring is short.
 */
static int sq_reserve(struct io_uring *ring, unsigned n)
{
	if (io_uring_sq_space_left(ring) >= n)
		return 0;
	int ret = io_uring_submit(ring);

	if (ret < 0)
		return bench_error(NAME, "io_uring_submit: %s", strerror(-ret));
	return 0;
}

/* After the io_uring_prep_*() call, which clears sqe->flags. */
static void sqe_tag(struct io_uring_sqe *sqe, uint64_t data, bool link)
{
	io_uring_sqe_set_data64(sqe, data);
	if (link)
		sqe->flags |= IOSQE_IO_LINK;
}

/* ---- server ------------------------------------------------------------ */

struct sconn {
	int fd;			/* -1 once an io_uring close succeeded */
	enum pool_mode mode;
	size_t size;		/* message size of the mode, bytes */
	size_t got;		/* sink-reply: bytes of the payload read */
	unsigned inflight;	/* operations not yet completed */
	bool done;		/* no more requests; free at inflight 0 */
	unsigned long slot;	/* index in server.conns */
	uint8_t *buf;		/* echo: size bytes; oneshot: size + 1 */
};

struct server {
	struct pool *p;
	struct io_uring ring;
	bool ring_ok;
	bool stop;
	uint64_t stop_value;	/* eventfd read target */
	struct sconn **conns;
	unsigned long nconns, cap;
	uint8_t *scratch;	/* sinks read here and forget */
};

static const uint8_t one_byte_reply = '!';

static void sconn_free(struct server *s, struct sconn *c)
{
	struct sconn *last = s->conns[--s->nconns];

	last->slot = c->slot;
	s->conns[c->slot] = last;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}

static int arm_accept(struct server *s, struct pool_listener *l)
{
	struct io_uring_sqe *sqe;

	if (sq_reserve(&s->ring, 1) < 0)
		return -1;
	sqe = io_uring_get_sqe(&s->ring);
	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	sqe_tag(sqe, tagged(l, OP_ACCEPT), false);
	return 0;
}

/* Posts the next read (and, for echo, the linked write back). */
static int sconn_arm(struct server *s, struct sconn *c)
{
	struct io_uring_sqe *sqe;
	size_t len;

	if (sq_reserve(&s->ring, 2) < 0)
		return -1;
	switch (c->mode) {
	case POOL_ECHO:
		sqe = io_uring_get_sqe(&s->ring);
		io_uring_prep_recv(sqe, c->fd, c->buf, c->size, MSG_WAITALL);
		sqe_tag(sqe, tagged(c, OP_RECV), true);
		sqe = io_uring_get_sqe(&s->ring);
		io_uring_prep_send(sqe, c->fd, c->buf, c->size,
				   MSG_WAITALL | MSG_NOSIGNAL);
		sqe_tag(sqe, tagged(c, OP_SEND), false);
		c->inflight += 2;
		return 0;
	case POOL_ONESHOT:	/* the request, then the FIN */
		sqe = io_uring_get_sqe(&s->ring);
		io_uring_prep_recv(sqe, c->fd, c->buf, c->size + 1, MSG_WAITALL);
		sqe_tag(sqe, tagged(c, OP_RECV), false);
		break;
	case POOL_SINK_REPLY:
		len = c->size - c->got < POOL_SCRATCH ? c->size - c->got :
							POOL_SCRATCH;
		sqe = io_uring_get_sqe(&s->ring);
		io_uring_prep_recv(sqe, c->fd, s->scratch, len, MSG_WAITALL);
		sqe_tag(sqe, tagged(c, OP_RECV), false);
		break;
	case POOL_SINK:
		sqe = io_uring_get_sqe(&s->ring);
		io_uring_prep_recv(sqe, c->fd, s->scratch, POOL_SCRATCH, 0);
		sqe_tag(sqe, tagged(c, OP_RECV), false);
		break;
	}
	c->inflight++;
	return 0;
}

static int server_new_conn(struct server *s, struct pool_listener *l, int fd)
{
	struct sconn *c;

	if (s->nconns == s->cap) {
		unsigned long cap = s->cap ? 2 * s->cap : 1024;
		struct sconn **n = realloc(s->conns, cap * sizeof(*n));

		if (!n) {
			close(fd);
			return bench_error(NAME, "out of memory");
		}
		s->conns = n;
		s->cap = cap;
	}
	c = calloc(1, sizeof(*c));
	if (c && (l->mode == POOL_ECHO || l->mode == POOL_ONESHOT))
		c->buf = malloc(l->size + 1);
	if (!c || (!c->buf && (l->mode == POOL_ECHO || l->mode == POOL_ONESHOT))) {
		free(c);
		close(fd);
		return bench_error(NAME, "out of memory");
	}
	c->fd = fd;
	c->mode = l->mode;
	c->size = l->size;
	c->slot = s->nconns;
	s->conns[s->nconns++] = c;
	atomic_fetch_add(&s->p->accepted, 1);
	return sconn_arm(s, c);
}

static bool peer_gone(int res)
{
	return res == -ECONNRESET || res == -EPIPE || res == -ECANCELED;
}

/* One completion on a server connection. */
static int sconn_complete(struct server *s, struct sconn *c, enum op op, int res)
{
	if (res < 0 && !peer_gone(res))
		return bench_error(NAME, "server %s: %s",
				   op == OP_RECV ? "recv" : op == OP_SEND ? "send" : "close",
				   strerror(-res));
	if (c->done)
		return 0;
	switch (c->mode) {
	case POOL_ECHO:
		if (op == OP_RECV && res != (int)c->size)
			c->done = true;	/* FIN (or reset): the send is cancelled */
		else if (op == OP_SEND)
			return res == (int)c->size ? sconn_arm(s, c) : (c->done = true, 0);
		return 0;
	case POOL_ONESHOT:
		if (op == OP_RECV) {
			struct io_uring_sqe *sqe;

			if (res < 0) {
				c->done = true;
				return 0;
			}
			if (res != (int)c->size)
				return bench_error(NAME, "open: request of %d bytes, expected %zu",
						   res, c->size);
			if (sq_reserve(&s->ring, 2) < 0)
				return -1;
			sqe = io_uring_get_sqe(&s->ring);
			io_uring_prep_send(sqe, c->fd, c->buf, c->size,
					   MSG_WAITALL | MSG_NOSIGNAL);
			sqe_tag(sqe, tagged(c, OP_SEND), true);
			sqe = io_uring_get_sqe(&s->ring);
			io_uring_prep_close(sqe, c->fd);
			sqe_tag(sqe, tagged(c, OP_CLOSE), false);
			c->inflight += 2;
		} else if (op == OP_CLOSE) {
			if (res == 0)
				c->fd = -1;
			c->done = true;
		}
		return 0;
	case POOL_SINK_REPLY:
		if (op == OP_SEND)
			return 0;
		if (res <= 0) {
			c->done = true;
			return 0;
		}
		c->got += (size_t)res;
		if (c->got == c->size) {
			struct io_uring_sqe *sqe;

			c->got = 0;
			if (sq_reserve(&s->ring, 1) < 0)
				return -1;
			sqe = io_uring_get_sqe(&s->ring);
			io_uring_prep_send(sqe, c->fd, &one_byte_reply, 1,
					   MSG_NOSIGNAL);
			sqe_tag(sqe, tagged(c, OP_SEND), false);
			c->inflight++;
		}
		return sconn_arm(s, c);
	case POOL_SINK:
		if (res <= 0) {
			c->done = true;
			return 0;
		}
		return sconn_arm(s, c);
	}
	return 0;
}

static int server_complete(struct server *s, const struct io_uring_cqe *cqe)
{
	uint64_t u = io_uring_cqe_get_data64(cqe);
	struct sconn *c;
	int err;

	switch (op_of(u)) {
	case OP_STOP:
		s->stop = true;
		return 0;
	case OP_ACCEPT:
		if (cqe->res < 0)
			return bench_error(NAME, "accept: %s%s", strerror(-cqe->res),
					   cqe->res == -EMFILE ? " (open-file limit)" : "");
		if (!(cqe->flags & IORING_CQE_F_MORE) &&
		    arm_accept(s, ptr_of(u)) < 0)
			return -1;
		return server_new_conn(s, ptr_of(u), cqe->res);
	case OP_TIMER:
	case OP_CONNECT:
	case OP_SHUTDOWN:
		return 0;
	case OP_RECV:
	case OP_SEND:
	case OP_CLOSE:
		break;
	}
	c = ptr_of(u);
	c->inflight--;
	err = sconn_complete(s, c, op_of(u), cqe->res);
	if (c->done && c->inflight == 0)
		sconn_free(s, c);
	return err;
}

static int server_loop(struct server *s)
{
	struct pool *p = s->p;
	struct io_uring_sqe *sqe;

	for (unsigned i = 0; i < p->nlis; i++)
		if (arm_accept(s, &p->lis[i]) < 0)
			return -1;
	if (sq_reserve(&s->ring, 1) < 0)
		return -1;
	sqe = io_uring_get_sqe(&s->ring);
	io_uring_prep_read(sqe, p->stop_fd, &s->stop_value,
			   sizeof(s->stop_value), 0);
	sqe_tag(sqe, tagged(s, OP_STOP), false);
	while (!s->stop) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret = io_uring_submit_and_wait(&s->ring, 1);

		/* EINTR: a signal; EBUSY/EAGAIN: completions to reap first */
		if (ret < 0 && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
			return bench_error(NAME, "io_uring_submit_and_wait: %s",
					   strerror(-ret));
		io_uring_for_each_cqe(&s->ring, head, cqe) {
			seen++;
			if (server_complete(s, cqe) < 0) {
				io_uring_cq_advance(&s->ring, seen);
				return -1;
			}
		}
		io_uring_cq_advance(&s->ring, seen);
	}
	return 0;
}

static int uring_server(struct pool *p)
{
	struct server s = { .p = p };
	int err = -1;

	s.scratch = malloc(POOL_SCRATCH);
	if (!s.scratch)
		bench_error(NAME, "out of memory");
	else if (ring_init(&s.ring) == 0) {
		s.ring_ok = true;
		err = server_loop(&s);
	}
	/* the ring first: it cancels what is in flight on the buffers */
	if (s.ring_ok)
		io_uring_queue_exit(&s.ring);
	while (s.nconns)
		sconn_free(&s, s.conns[s.nconns - 1]);
	free(s.conns);
	free(s.scratch);
	return err;
}

/* ---- client ------------------------------------------------------------ */

enum cstate {
	C_BUSY,		/* a request (or the load's send) is in flight */
	C_IDLE,		/* heartbeat ping: waiting for the timer */
	C_DONE,
};

struct cconn {
	int fd;
	enum cstate state;
	bool is_ping;		/* heartbeat: the ping connection */
	uint64_t t0;		/* request start, ns */
	uint8_t *buf;		/* reply buffer */
};

struct client {
	struct pool *p;
	struct io_uring ring;
	bool ring_ok;
	struct cconn *conns;
	unsigned long nconns;
	unsigned long active;	/* conns not C_DONE */
	uint64_t deadline;	/* stop starting requests, ns */
	uint64_t opened;	/* open: connections started */
	size_t req_len, reply_len;
	struct __kernel_timespec tick;	/* heartbeat: next ping, absolute */
	struct sockaddr_in addr[POOL_MAX_LISTENERS];
};

static size_t req_len_of(const struct client *cl, const struct cconn *c)
{
	return c->is_ping ? POOL_PING_SIZE : cl->req_len;
}

static size_t reply_len_of(const struct client *cl, const struct cconn *c)
{
	return c->is_ping ? POOL_PING_SIZE : cl->reply_len;
}

/* Posts c's next request as one chain (see the top of the file). */
static int request_start(struct client *cl, struct cconn *c)
{
	struct io_uring *r = &cl->ring;
	struct pool *p = cl->p;
	struct io_uring_sqe *sqe;

	c->t0 = bench_now_ns();
	c->state = C_BUSY;
	if (sq_reserve(r, 4) < 0)
		return -1;
	if (p->cell->workload == BENCH_OPEN) {
		unsigned li = pool_open_listener(p, cl->opened++);
		int fd = bench_socket(false);

		if (fd < 0)
			return bench_error(NAME, "socket: %s", strerror(-fd));
		c->fd = fd;
		sqe = io_uring_get_sqe(r);
		io_uring_prep_connect(sqe, fd, (struct sockaddr *)&cl->addr[li],
				      sizeof(cl->addr[li]));
		sqe_tag(sqe, tagged(c, OP_CONNECT), true);
		sqe = io_uring_get_sqe(r);
		io_uring_prep_send(sqe, fd, p->payload, cl->req_len,
				   MSG_WAITALL | MSG_NOSIGNAL);
		sqe_tag(sqe, tagged(c, OP_SEND), true);
		sqe = io_uring_get_sqe(r);
		io_uring_prep_shutdown(sqe, fd, SHUT_WR);
		sqe_tag(sqe, tagged(c, OP_SHUTDOWN), true);
		sqe = io_uring_get_sqe(r);
		io_uring_prep_recv(sqe, fd, c->buf, cl->reply_len + 1, MSG_WAITALL);
		sqe_tag(sqe, tagged(c, OP_RECV), false);
		return 0;
	}
	if (p->cell->workload == BENCH_HEARTBEAT && !c->is_ping) {
		sqe = io_uring_get_sqe(r);
		io_uring_prep_send(sqe, c->fd, p->payload, cl->req_len,
				   MSG_NOSIGNAL);
		sqe_tag(sqe, tagged(c, OP_SEND), false);
		return 0;
	}
	sqe = io_uring_get_sqe(r);
	io_uring_prep_send(sqe, c->fd, p->payload, req_len_of(cl, c),
			   MSG_WAITALL | MSG_NOSIGNAL);
	sqe_tag(sqe, tagged(c, OP_SEND), true);
	sqe = io_uring_get_sqe(r);
	io_uring_prep_recv(sqe, c->fd, c->buf, reply_len_of(cl, c), MSG_WAITALL);
	sqe_tag(sqe, tagged(c, OP_RECV), false);
	return 0;
}

/* A request finished on c: count it and start the next one or stop. */
static int request_done(struct client *cl, struct cconn *c)
{
	struct pool *p = cl->p;
	uint64_t now = bench_now_ns();

	bench_latency_record(&p->lat, now - c->t0);
	p->ops++;
	if (c->is_ping) {
		c->state = C_IDLE;
		return 0;
	}
	p->bytes += cl->req_len;
	if (now >= cl->deadline) {
		c->state = C_DONE;
		cl->active--;
		return 0;
	}
	return request_start(cl, c);
}

static int arm_timer(struct client *cl)
{
	uint64_t next = (uint64_t)cl->tick.tv_sec * 1000000000u +
			(uint64_t)cl->tick.tv_nsec + BENCH_HEARTBEAT_INTERVAL_NS;
	struct io_uring_sqe *sqe;

	cl->tick.tv_sec = (long long)(next / 1000000000u);
	cl->tick.tv_nsec = (long long)(next % 1000000000u);
	if (sq_reserve(&cl->ring, 1) < 0)
		return -1;
	sqe = io_uring_get_sqe(&cl->ring);
	io_uring_prep_timeout(sqe, &cl->tick, 0, IORING_TIMEOUT_ABS);
	sqe_tag(sqe, tagged(cl, OP_TIMER), false);
	return 0;
}

static const char *op_name(enum op op)
{
	static const char *const names[] = {
		[OP_RECV] = "recv", [OP_SEND] = "send",
		[OP_CONNECT] = "connect", [OP_SHUTDOWN] = "shutdown",
		[OP_CLOSE] = "close", [OP_ACCEPT] = "accept",
		[OP_STOP] = "stop", [OP_TIMER] = "timer",
	};

	return names[op];
}

static int client_complete(struct client *cl, const struct io_uring_cqe *cqe)
{
	uint64_t u = io_uring_cqe_get_data64(cqe);
	enum op op = op_of(u);
	struct pool *p = cl->p;
	struct cconn *c;
	int res = cqe->res;

	if (op == OP_TIMER) {
		struct cconn *ping = &cl->conns[cl->nconns - 1];

		if (bench_now_ns() >= cl->deadline)
			return 0;
		if (ping->state == C_IDLE && request_start(cl, ping) < 0)
			return -1;
		return arm_timer(cl);
	}
	c = ptr_of(u);
	if (res < 0)
		return bench_error(NAME, "client %s: %s%s", op_name(op),
				   strerror(-res),
				   res == -EADDRNOTAVAIL ?
					   " (ephemeral ports exhausted)" : "");
	switch (op) {
	case OP_SEND:
		if (p->cell->workload == BENCH_HEARTBEAT && !c->is_ping) {
			p->bytes += (uint64_t)res;
			if (bench_now_ns() < cl->deadline)
				return request_start(cl, c);
			c->state = C_DONE;
			return 0;
		}
		if ((size_t)res != req_len_of(cl, c))
			return bench_error(NAME, "short send: %d bytes", res);
		return 0;
	case OP_RECV:
		if ((size_t)res != reply_len_of(cl, c))
			return bench_error(NAME, res == 0 ? "the server closed a connection early" :
					   "reply of %d bytes, expected %zu", res,
					   reply_len_of(cl, c));
		if (p->cell->workload != BENCH_BULK &&
		    memcmp(c->buf, p->payload, (size_t)res) != 0)
			return bench_error(NAME, "the echo differs from the request");
		if (p->cell->workload == BENCH_OPEN) {
			struct io_uring_sqe *sqe;

			if (sq_reserve(&cl->ring, 1) < 0)
				return -1;
			sqe = io_uring_get_sqe(&cl->ring);
			io_uring_prep_close(sqe, c->fd);
			sqe_tag(sqe, tagged(c, OP_CLOSE), false);
			return 0;
		}
		return request_done(cl, c);
	case OP_CLOSE:
		c->fd = -1;
		return request_done(cl, c);
	case OP_CONNECT:
	case OP_SHUTDOWN:
	case OP_ACCEPT:
	case OP_STOP:
	case OP_TIMER:
		break;
	}
	return 0;
}

static bool client_finished(const struct client *cl)
{
	if (cl->p->cell->workload == BENCH_HEARTBEAT)
		return bench_now_ns() >= cl->deadline &&
		       cl->conns[cl->nconns - 1].state == C_IDLE;
	return cl->active == 0;
}

static int client_loop(struct client *cl)
{
	struct __kernel_timespec wait = { .tv_nsec = WAIT_NS };
	uint64_t last = bench_now_ns();

	while (!client_finished(cl)) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret = io_uring_submit_and_wait_timeout(&cl->ring, &cqe, 1,
							   &wait, NULL);
		uint64_t now = bench_now_ns();

		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY &&
		    ret != -EAGAIN)
			return bench_error(NAME, "io_uring_submit_and_wait: %s",
					   strerror(-ret));
		if (atomic_load(&cl->p->server_failed))
			return -1;
		io_uring_for_each_cqe(&cl->ring, head, cqe) {
			seen++;
			if (client_complete(cl, cqe) < 0) {
				io_uring_cq_advance(&cl->ring, seen);
				return -1;
			}
		}
		io_uring_cq_advance(&cl->ring, seen);
		if (seen)
			last = now;
		else if (pool_stalled(now, last))
			return bench_error(NAME, "no progress for %llu s: stalled",
					   BENCH_STALL_NS / 1000000000ull);
	}
	cl->p->t_end = bench_now_ns();
	return 0;
}

static int client_run(struct client *cl)
{
	struct pool *p = cl->p;
	enum bench_workload w = p->cell->workload;

	cl->nconns = w == BENCH_OPEN ? p->cell->streams : p->nconns;
	cl->req_len = p->cell->size;
	cl->reply_len = w == BENCH_BULK ? 1 : p->cell->size;
	for (unsigned i = 0; i < p->nlis; i++)
		bench_sockaddr(p->lis[i].port, &cl->addr[i]);
	if (w != BENCH_OPEN && pool_connect_all(p) < 0)
		return -1;
	cl->conns = calloc(cl->nconns, sizeof(*cl->conns));
	if (!cl->conns)
		return bench_error(NAME, "out of memory");
	for (unsigned long i = 0; i < cl->nconns; i++) {
		struct cconn *c = &cl->conns[i];
		size_t len = cl->reply_len > POOL_PING_SIZE ? cl->reply_len :
							      POOL_PING_SIZE;

		c->fd = w == BENCH_OPEN ? -1 : p->fds[i];
		c->is_ping = w == BENCH_HEARTBEAT && i == p->cell->streams;
		if (w == BENCH_IDLE || (w == BENCH_HEARTBEAT && !c->is_ping))
			continue;
		c->buf = malloc(len + 1);
		if (!c->buf)
			return bench_error(NAME, "out of memory");
	}
	if (w == BENCH_IDLE)
		return pool_idle_measure(p);
	if (w != BENCH_OPEN && pool_wait_accepted(p) < 0)
		return -1;

	bench_clock_start();
	p->t_start = bench_now_ns();
	cl->deadline = p->t_start + bench_seconds_to_ns(p->cell->seconds);
	cl->active = cl->nconns;
	for (unsigned long i = 0; i < cl->nconns; i++) {
		struct cconn *c = &cl->conns[i];

		if (c->is_ping) {
			c->state = C_IDLE;
			cl->tick.tv_sec = (long long)(p->t_start / 1000000000u);
			cl->tick.tv_nsec = (long long)(p->t_start % 1000000000u);
			if (arm_timer(cl) < 0)
				return -1;
			continue;
		}
		if (request_start(cl, c) < 0)
			return -1;
	}
	if (client_loop(cl) < 0)
		return -1;
	return w == BENCH_SESSIONS ? pool_sessions_measure(p) : 0;
}

static int uring_client(struct pool *p)
{
	struct client cl = { .p = p };
	int err = -1;

	if (ring_init(&cl.ring) == 0) {
		cl.ring_ok = true;
		err = client_run(&cl);
	}
	if (cl.ring_ok)
		io_uring_queue_exit(&cl.ring);
	for (unsigned long i = 0; cl.conns && i < cl.nconns; i++) {
		if (p->cell->workload == BENCH_OPEN && cl.conns[i].fd >= 0)
			close(cl.conns[i].fd);	/* pool's fds close in pool.c */
		free(cl.conns[i].buf);
	}
	free(cl.conns);
	return err;
}

/* ---- the impl ---------------------------------------------------------- */

static const struct pool_ops uring_ops = {
	.server = uring_server,
	.client = uring_client,
};

static int uring_run(const struct bench_cell *cell, struct bench_result *out)
{
	return pool_run(NAME, &uring_ops, cell, out);
}

const struct bench_impl bench_impl_tcp_uring = {
	.name = NAME,
	.summary = "the same pool driven by io_uring (one ring per side)",
	.supports = pool_supports,
	.run = uring_run,
};
