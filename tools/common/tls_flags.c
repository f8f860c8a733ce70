/*
 * tls_flags.c - reading and checking the TLS flags of muxcat and muxtun.
 *
 * The checks refuse combinations that would silently do something else
 * than asked: a flag without --tls, a certificate without its key, a
 * server without a certificate, client-only flags on the server, and
 * --insecure together with what it would ignore.
 */
#include "tls_flags.h"

#include "cli.h"

bool tls_flags_take(struct tls_flags *f, int c, const char *arg)
{
	struct muxring_tls_opts *o = &f->opts;

	switch (c) {
	case TLS_FLAG_TLS: f->on = true; return true;
	case TLS_FLAG_CERT: o->cert_file = arg; return true;
	case TLS_FLAG_KEY: o->key_file = arg; return true;
	case TLS_FLAG_CA: o->ca_file = arg; return true;
	case TLS_FLAG_SNI: o->server_name = arg; return true;
	case TLS_FLAG_INSECURE: o->flags |= MUXRING_TLS_INSECURE; return true;
	default: return false;
	}
}

int tls_flags_check(const struct tls_flags *f, bool server,
		    const char *client_side)
{
	const struct muxring_tls_opts *o = &f->opts;
	bool insecure = o->flags & MUXRING_TLS_INSECURE;

	if (!f->on && (o->cert_file || o->key_file || o->ca_file ||
		       o->server_name || insecure))
		return cli_usage_error("--cert, --key, --ca, --sni and "
				       "--insecure need --tls");
	if (!o->cert_file != !o->key_file)
		return cli_usage_error("--cert and --key go together");
	if (f->on && server && !o->cert_file)
		return cli_usage_error("-l --tls needs --cert FILE --key FILE");
	if (server && (o->server_name || insecure))
		return cli_usage_error("--sni and --insecure are for %s",
				       client_side);
	if (insecure && (o->ca_file || o->server_name))
		return cli_usage_error("--insecure verifies nothing: no --ca or "
				       "--sni with it");
	return 0;
}
