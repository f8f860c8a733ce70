/*
 * cli.h - the command-line helpers every program in tools/ shares.
 *
 * Numbers, ports, usage errors and the one-line stderr report, so that
 * muxcat, muxtun, muxdump and muxconform read their arguments and word
 * their complaints the same way. Linked into every tool by the Makefile
 * (every tools/common/ source); not part of the library.
 */
#ifndef MUXRING_TOOLS_CLI_H
#define MUXRING_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct addrinfo;
struct sockaddr;

/* The exit status of a bad command line, the same in every tool. */
#define CLI_STATUS_USAGE 2

/* Names the program in the messages below ("muxcat"); call it first. */
void cli_set_program(const char *name);

/* Parses a number in decimal or with a 0x prefix in hex, nothing else (no
 * sign, no octal, no spaces, nothing after it), in min..max. Returns false
 * when s is not one. */
bool cli_parse_number(const char *s, uint64_t min, uint64_t max,
		      uint64_t *out);

/* Room for a port in decimal, NUL included. */
#define CLI_PORT_LEN 6

/* A TCP port: a number in 1..65535, or 0..65535 when `any` (0: the kernel
 * picks one, for a listener), written to out in decimal (the form
 * getaddrinfo and the library take). Returns false when s is not one. */
bool cli_parse_port(const char *s, bool any, char out[CLI_PORT_LEN]);

/* Resolves host and a numeric port (decimal or 0x hex, as
 * cli_parse_number: getaddrinfo alone would refuse the hex form) for TCP
 * over IPv4 or IPv6. Returns 0 (*res to freeaddrinfo), EAI_SERVICE for a
 * port that is not a number in 0..65535, or another getaddrinfo error. */
int cli_resolve_tcp(const char *host, const char *port, struct addrinfo **res);

/* "A.B.C.D:PORT" or "[v6]:PORT" of an IPv4 or IPv6 address; "?" for any
 * other family. */
void cli_format_addr(const struct sockaddr *sa, char *out, size_t size);

/* Prints "PROGRAM: MESSAGE" and "(PROGRAM -h shows the usage)" on stderr;
 * returns CLI_STATUS_USAGE for the caller to pass on. */
int cli_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Parses one numeric option's argument into *out (cli_parse_number); on
 * error reports it with cli_usage_error naming the option and returns
 * false. */
bool cli_number_option(const char *name, const char *arg, uint64_t min,
		       uint64_t max, uint64_t *out);

/* Prints one line on stderr with a single write(), so the lines of
 * processes sharing stderr never interleave (cut at 1 KiB). */
void cli_print_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
