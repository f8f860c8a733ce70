/*
 * ktls.c - kernel TLS: is it there, and handing a session's keys over.
 *
 * The main idea: the kernel offers TLS as a TCP upper-layer protocol
 * (setsockopt TCP_ULP "tls", CONFIG_TLS); a kernel without it answers
 * ENOENT. The only reliable probe is to try, on an established TCP
 * connection (the ULP cannot be set on any other socket), so the probe
 * makes a loopback connection of its own, once per process.
 */
#include "tls/tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_result;
static char probe_why[160];

/* A connected loopback TCP pair; returns the client's fd (the others are
 * closed) or -errno. */
static int loopback_client(int *server)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int l, c = -1, err = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len) ||
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) ||
	    (*server = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0)
		err = -errno;
	close(l);
	if (err && c >= 0)
		close(c);
	return err ? err : c;
}

static void probe(void)
{
	int server = -1, fd = loopback_client(&server);

	if (fd < 0) {
		snprintf(probe_why, sizeof(probe_why),
			 "cannot probe kernel TLS: no loopback TCP (%s)",
			 strerror(-fd));
		return;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) == 0) {
		probe_result = 1;
	} else if (errno == ENOENT) {
		snprintf(probe_why, sizeof(probe_why),
			 "the kernel has no TLS upper-layer protocol "
			 "(CONFIG_TLS, module tls): TLS runs in user space");
	} else {
		snprintf(probe_why, sizeof(probe_why),
			 "setting TCP_ULP \"tls\" failed (%s): TLS runs in "
			 "user space", strerror(errno));
	}
	close(fd);
	close(server);
}

int mr_ktls_probe(const char **why)
{
	const char *env = getenv("MUXRING_TLS_NO_KTLS");

	pthread_once(&probe_once, probe);
	if (env && *env && strcmp(env, "0")) {
		if (why)
			*why = "kernel TLS disabled by MUXRING_TLS_NO_KTLS";
		return 0;
	}
	if (why)
		*why = probe_result ? NULL : probe_why;
	return probe_result;
}

int muxring_tls_ktls_available(const char **why)
{
	return mr_ktls_probe(why);
}
