/*
 * loopback.c - sockets on 127.0.0.1 and the descriptor budget.
 *
 * Every byte muxbench sends goes to 127.0.0.1.  Sockets get TCP_NODELAY
 * (request/response traffic must not wait for Nagle), listeners a deep
 * backlog (1024 connections arrive at once), and the process raises its
 * RLIMIT_NOFILE once it knows how many descriptors a cell needs.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096
/* Ephemeral ports one listener port may use up (Linux default range has
 * 28232; TIME_WAIT of the open workload holds some). */
#define CONNS_PER_PORT 20000ul
#define MAX_PORTS 16u

void bench_sockaddr(uint16_t port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int bench_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int set_nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

int bench_socket(bool nonblock)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
			(nonblock ? SOCK_NONBLOCK : 0), 0);
	int err;

	if (fd < 0)
		return -errno;
	err = set_nodelay(fd);
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

int bench_listen(uint16_t *port, bool nonblock)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int one = 1, err;
	int fd = bench_socket(nonblock);

	if (fd < 0)
		return fd;
	bench_sockaddr(0, &sa);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

int bench_connect(uint16_t port)
{
	struct sockaddr_in sa;
	int err, fd = bench_socket(false);

	if (fd < 0)
		return fd;
	bench_sockaddr(port, &sa);
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

void bench_close_abort(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static unsigned long read_nr_open(void)
{
	unsigned long v = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v ? v : 1048576ul;
}

unsigned long bench_fd_reserve(unsigned long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur >= want)
		return rl.rlim_cur;
	if (rl.rlim_max < want) {
		/* only a privileged process gets past the hard limit */
		struct rlimit more = rl;
		unsigned long cap = read_nr_open();

		more.rlim_max = want < cap ? want : cap;
		more.rlim_cur = more.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return more.rlim_cur;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	return rl.rlim_cur;
}

unsigned bench_ports_for(unsigned long conns)
{
	unsigned long n = (conns + CONNS_PER_PORT - 1) / CONNS_PER_PORT;

	if (n < 1)
		n = 1;
	return n > MAX_PORTS ? MAX_PORTS : (unsigned)n;
}
