/*
 * impl_tcp_raw.c - baseline "tcp-raw": bulk over ONE plain TCP connection, the
 * ceiling for anything that multiplexes streams over one connection.
 *
 * Two threads, blocking sockets, no event loop at all.  A bulk cell of N
 * workers becomes rounds: the client writes the N payloads of a round back
 * to back with one sendmsg (N iovecs over the same buffer), the server
 * reads them, counting payloads, and answers 1 byte per payload; the
 * client reads the N reply bytes and starts the next round, until
 * cell->seconds have passed (at least one round).  Only throughput is
 * reported (mb_per_s, ops_per_s): per-payload latency has no meaning when
 * N payloads share one byte stream.  Every other workload is out of scope
 * (supports() says no).
 */
#include "bench.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define NAME "tcp-raw"
#define SCRATCH (256 * 1024)	/* as the pools' server */
/* Blocking calls give up after this long: a hung peer is an error. */
#define IO_TIMEOUT_S 10

struct raw {
	const struct bench_cell *cell;
	int lfd;		/* listener */
	atomic_bool stop;	/* client -> server: give up accepting */
	int server_err;
};

static int set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return bench_error(NAME, "setsockopt: %s", strerror(errno));
	return 0;
}

static int send_all(int fd, const void *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bench_error(NAME, "send: %s", strerror(errno));
		}
		buf = (const char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads payloads, answering 1 byte per complete payload, until FIN. */
static int serve(int fd, size_t size)
{
	char replies[1024];
	uint8_t *scratch = malloc(SCRATCH);
	size_t got = 0;
	int err = 0;

	if (!scratch)
		return bench_error(NAME, "out of memory");
	memset(replies, '!', sizeof(replies));
	for (;;) {
		ssize_t n = recv(fd, scratch, SCRATCH, 0);
		size_t done;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = bench_error(NAME, "server recv: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		done = got / size;
		got %= size;
		while (done && err == 0) {
			size_t k = done < sizeof(replies) ? done : sizeof(replies);

			err = send_all(fd, replies, k);
			done -= k;
		}
		if (err)
			break;
	}
	free(scratch);
	return err;
}

static void *server_thread(void *arg)
{
	struct raw *r = arg;
	struct pollfd pfd = { .fd = r->lfd, .events = POLLIN };
	int fd;

	/* poll with a timeout so that a client that never connects cannot
	 * leave this thread blocked in accept() */
	while (!atomic_load(&r->stop)) {
		int n = poll(&pfd, 1, 100);

		if (n < 0 && errno != EINTR) {
			r->server_err = bench_error(NAME, "poll: %s", strerror(errno));
			return NULL;
		}
		if (n <= 0)
			continue;
		fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			r->server_err = bench_error(NAME, "accept: %s", strerror(errno));
			return NULL;
		}
		r->server_err = set_timeouts(fd);
		if (r->server_err == 0)
			r->server_err = serve(fd, r->cell->size);
		close(fd);
		return NULL;
	}
	return NULL;
}

/* One round: N payloads in one sendmsg stream, then N reply bytes. */
static int round_trip(int fd, struct iovec *iov, unsigned n, char *replies)
{
	unsigned first = 0;
	size_t want = n;

	while (first < n) {
		struct msghdr msg = {
			.msg_iov = iov + first,
			.msg_iovlen = n - first < IOV_MAX ? n - first : IOV_MAX,
		};
		ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);

		if (sent < 0) {
			if (errno == EINTR)
				continue;
			return bench_error(NAME, "sendmsg: %s", strerror(errno));
		}
		/* consume `sent` bytes of the iovecs */
		while (first < n && (size_t)sent >= iov[first].iov_len) {
			sent -= (ssize_t)iov[first].iov_len;
			first++;
		}
		if (first < n) {
			iov[first].iov_base = (char *)iov[first].iov_base + sent;
			iov[first].iov_len -= (size_t)sent;
		}
	}
	while (want) {
		ssize_t got = recv(fd, replies, want, 0);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return bench_error(NAME, "reading replies: %s",
					   got == 0 ? "connection closed" : strerror(errno));
		want -= (size_t)got;
	}
	return 0;
}

static int client(struct raw *r, struct bench_result *out, uint16_t port)
{
	const struct bench_cell *c = r->cell;
	unsigned n = c->streams;
	struct iovec *iov = calloc(n, sizeof(*iov));
	uint8_t *payload = malloc(c->size);
	char *replies = malloc(n);
	uint64_t t0, deadline, ops = 0, now;
	int fd = -1, err = -1;

	if (!iov || !payload || !replies) {
		bench_error(NAME, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->size; i++)
		payload[i] = (uint8_t)('a' + i % 26);
	fd = bench_connect(port);
	if (fd < 0) {
		bench_error(NAME, "connect to 127.0.0.1:%u: %s", port, strerror(-fd));
		goto out;
	}
	if (set_timeouts(fd) < 0)
		goto out;
	bench_clock_start();
	t0 = bench_now_ns();
	deadline = t0 + bench_seconds_to_ns(c->seconds);
	do {
		for (unsigned i = 0; i < n; i++) {
			iov[i].iov_base = payload;
			iov[i].iov_len = c->size;
		}
		if (round_trip(fd, iov, n, replies) < 0)
			goto out;
		ops += n;
		now = bench_now_ns();
	} while (now < deadline);
	err = 0;
	out->elapsed_s = (double)(now - t0) / 1e9;
	out->ops = ops;
	out->bytes = ops * c->size;
	out->ops_per_s = (double)ops / out->elapsed_s;
	out->mb_per_s = (double)out->bytes / out->elapsed_s / 1e6;
out:
	if (fd >= 0)
		close(fd);
	free(iov);
	free(payload);
	free(replies);
	return err;
}

static bool raw_supports(const struct bench_cell *cell)
{
	return cell->workload == BENCH_BULK && !cell->tls;
}

static int raw_run(const struct bench_cell *cell, struct bench_result *out)
{
	struct raw r = { .cell = cell };
	pthread_t server;
	uint16_t port;
	int err;

	if (cell->size == 0)
		return bench_error(NAME, "bulk needs a payload of at least 1 byte");
	r.lfd = bench_listen(&port, true);
	if (r.lfd < 0)
		return bench_error(NAME, "listen on 127.0.0.1: %s", strerror(-r.lfd));
	errno = pthread_create(&server, NULL, server_thread, &r);
	if (errno) {
		close(r.lfd);
		return bench_error(NAME, "pthread_create: %s", strerror(errno));
	}
	err = client(&r, out, port);
	atomic_store(&r.stop, true);
	pthread_join(server, NULL);
	close(r.lfd);
	return err || r.server_err ? -1 : 0;
}

const struct bench_impl bench_impl_tcp_raw = {
	.name = NAME,
	.summary = "bulk only: one plain TCP connection, blocking I/O (the one-connection limit)",
	.supports = raw_supports,
	.run = raw_run,
};
