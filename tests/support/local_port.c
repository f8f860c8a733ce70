/*
 * local_port.c - free loopback ports and whether one listens.
 */
#include "local_port.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int lp_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

bool lp_listening(int port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned addr, lport, st;

		if (sscanf(line, " %*d: %x:%x %*x:%*x %x", &addr, &lport,
			   &st) == 3)
			found = lport == (unsigned)port && st == 0x0A &&
				addr == 0x0100007Fu;
	}
	fclose(f);
	return found;
}
