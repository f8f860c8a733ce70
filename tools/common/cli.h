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
#include <stdint.h>

/* The exit status of a bad command line, the same in every tool. */
#define CLI_STATUS_USAGE 2

/* Names the program in the messages below ("muxcat"); call it first. */
void cli_set_program(const char *name);

/* Parses a number in decimal or with a 0x prefix in hex, nothing else (no
 * sign, no octal, no spaces, nothing after it), in min..max. Returns false
 * when s is not one. */
bool cli_parse_number(const char *s, uint64_t min, uint64_t max,
		      uint64_t *out);

/* A TCP port: a number in 1..65535, or 0..65535 when `any` (0: the kernel
 * picks one, for a listener). */
bool cli_valid_port(const char *s, bool any);

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
