/*
 * cli.c - command-line helpers shared by the tools.
 *
 * Numbers are strict on purpose: strtoull alone would take "-1", " 7",
 * "010" (octal with base 0) or "7x", and a tool that quietly reads a
 * different number than the user typed is worse than one that refuses.
 */
#include "cli.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *program = "muxring";

void cli_set_program(const char *name)
{
	program = name;
}

bool cli_parse_number(const char *s, uint64_t min, uint64_t max,
		      uint64_t *out)
{
	int base = 10;
	char *end;
	unsigned long long v;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!(base == 16 ? isxdigit((unsigned char)s[0])
			 : isdigit((unsigned char)s[0])))
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool cli_parse_port(const char *s, bool any, char out[CLI_PORT_LEN])
{
	uint64_t v;

	if (!cli_parse_number(s, any ? 0 : 1, 65535, &v))
		return false;
	snprintf(out, CLI_PORT_LEN, "%u", (unsigned)v);
	return true;
}

int cli_resolve_tcp(const char *host, const char *port, struct addrinfo **res)
{
	struct addrinfo hints;
	char decimal[CLI_PORT_LEN];

	if (!cli_parse_port(port, true, decimal))
		return EAI_SERVICE;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	return getaddrinfo(host, decimal, &hints, res);
}

void cli_format_addr(const struct sockaddr *sa, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, size, "?");
	}
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", program);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(%s -h shows the usage)\n", program);
	return CLI_STATUS_USAGE;
}

bool cli_number_option(const char *name, const char *arg, uint64_t min,
		       uint64_t max, uint64_t *out)
{
	if (cli_parse_number(arg, min, max, out))
		return true;
	cli_usage_error("%s: not a number in %" PRIu64 "..%" PRIu64
			" (decimal or 0x hex): '%s'", name, min, max, arg);
	return false;
}

void cli_print_line(const char *fmt, ...)
{
	char line[1024];
	const char *p = line;
	va_list ap;
	size_t len;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 2;
	line[len++] = '\n';
	while (len) {
		ssize_t w = write(STDERR_FILENO, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere left to report it */
		p += w;
		len -= (size_t)w;
	}
}
