/*
 * net.c - resolution, socket creation and listening, with errors as values.
 */
#include "uring/net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int mr_net_resolve(const char *host, const char *port, bool passive,
		   struct addrinfo **out)
{
	struct addrinfo hints;
	int rc;

	if (!port)
		return -EINVAL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_ADDRCONFIG | (passive ? AI_PASSIVE : 0);
	rc = getaddrinfo(host ? host : "127.0.0.1", port, &hints, out);
	if (rc == EAI_ADDRFAMILY || rc == EAI_NONAME) {
		/* AI_ADDRCONFIG hides loopback-only families on hosts
		 * without other addresses; try once without it. */
		hints.ai_flags &= ~AI_ADDRCONFIG;
		rc = getaddrinfo(host ? host : "127.0.0.1", port, &hints, out);
	}
	if (rc == 0)
		return 0;
	if (rc == EAI_MEMORY)
		return -ENOMEM;
	if (rc == EAI_SYSTEM && errno)
		return -errno;
	return -EHOSTUNREACH;
}

int mr_net_socket(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			ai->ai_protocol);

	return fd < 0 ? -errno : fd;
}

/* Unsent bytes the kernel may hold for a session's socket. Beyond it a send
 * comes back short and the rest waits in the engine, where control frames
 * and heartbeats can still overtake bulk data; without it megabytes of bulk
 * could sit in the socket ahead of a heartbeat. Not lower: each step down
 * costs bulk transfers sends and wake-ups (muxbench bulk 32 MiB x 1 on
 * loopback: 4.1 GB/s at 2 MiB, 3.4 at 1 MiB, 2.4 at 512 KiB, 1.9 at
 * 128 KiB), and 2 MiB is about half a millisecond of the link's time. */
#define MR_NOTSENT_LOWAT (2 << 20)

void mr_net_tune(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1, lowat = MR_NOTSENT_LOWAT;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
			 sizeof(lowat));
}

int mr_net_listen(const char *host, const char *port, int backlog)
{
	struct addrinfo *list, *ai;
	int fd = -1, err, one = 1;

	err = mr_net_resolve(host, port, true, &list);
	if (err)
		return err;
	err = -EHOSTUNREACH;
	for (ai = list; ai; ai = ai->ai_next) {
		fd = mr_net_socket(ai);
		if (fd < 0) {
			err = fd;
			continue;
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				 sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, backlog > 0 ? backlog : SOMAXCONN) == 0)
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(list);
	return fd >= 0 ? fd : err;
}

int mr_net_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

int mr_net_adopt_stream(int fd, bool args_valid)
{
	int type = 0, err = 0;
	socklen_t len = sizeof(type);

	if (fd < 0 || !args_valid)
		err = -EINVAL;
	else if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		err = errno == ENOTSOCK || errno == EBADF ? -EINVAL : -errno;
	else if (type != SOCK_STREAM)
		err = -EINVAL;
	if (err && fd >= 0)
		close(fd);
	return err;
}
