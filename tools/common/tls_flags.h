/*
 * tls_flags.h - the TLS flags muxcat and muxtun share (a fixed interface):
 * --tls, --cert FILE, --key FILE, --ca FILE, --sni NAME, --insecure.
 *
 * One reading and one set of rules for both programs, so that the same
 * flags mean the same thing and are refused with the same words.
 */
#ifndef MUXRING_TOOLS_TLS_FLAGS_H
#define MUXRING_TOOLS_TLS_FLAGS_H

#include <stdbool.h>

#include "muxring_tls.h"

/* getopt codes of the flags: above any short option and any code a
 * program gives its own long options (those start at 0x100). */
enum {
	TLS_FLAG_TLS = 0x200,
	TLS_FLAG_CERT,
	TLS_FLAG_KEY,
	TLS_FLAG_CA,
	TLS_FLAG_SNI,
	TLS_FLAG_INSECURE,
};

/* Entries for a program's struct option table. */
#define TLS_FLAGS_LONG_OPTIONS                                          \
	{ "tls", no_argument, NULL, TLS_FLAG_TLS },                     \
	{ "cert", required_argument, NULL, TLS_FLAG_CERT },             \
	{ "key", required_argument, NULL, TLS_FLAG_KEY },               \
	{ "ca", required_argument, NULL, TLS_FLAG_CA },                 \
	{ "sni", required_argument, NULL, TLS_FLAG_SNI },               \
	{ "insecure", no_argument, NULL, TLS_FLAG_INSECURE }

/* What the flags of one run asked for. */
struct tls_flags {
	bool on;                      /* --tls */
	struct muxring_tls_opts opts; /* --cert --key --ca --sni --insecure */
};

/* Takes getopt's code c (with its argument) when it is one of the flags.
 * Returns false, changing nothing, when it is not. */
bool tls_flags_take(struct tls_flags *f, int c, const char *arg);

/*
 * Checks that the flags go together, for the listening side (`server`) or
 * the dialling one, which usage messages call `client_side` ("clients",
 * "the entry side"). Returns 0, or CLI_STATUS_USAGE after reporting the
 * problem as a usage error.
 */
int tls_flags_check(const struct tls_flags *f, bool server,
		    const char *client_side);

#endif
