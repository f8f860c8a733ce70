/*
 * muxcat - the netcat of muxring: runs one muxado session (or, with -k,
 * every session a listener accepts) in one of three modes.
 *
 *   default   one stream joined to stdin and stdout
 *   -e        echo every stream the peer opens
 *   --load N  open N streams, write a known pattern on each, verify the echo
 *
 * Run it (from the repository root, after `make`):
 *
 *   build/muxcat -l 9000 > received.bin              # server, one stream
 *   build/muxcat 127.0.0.1 9000 < file.bin            # client sends the file
 *
 *   build/muxcat -l -e -k 9000                        # echo server, forever
 *   build/muxcat --load 1000 --size 65536 127.0.0.1 9000
 *   {"streams":1000,"ok":1000,"failed":0,"bytes":65536000,"seconds":0.412}
 *
 *   build/muxcat -l -v --type 7 --heartbeat 1000 9000 # typed, with heartbeat
 *   build/muxcat -l -e -vv 9000                       # every frame on stderr
 *
 *   build/muxcat -l -e --tls --cert srv.pem --key srv.key 9000   # over TLS
 *   build/muxcat --tls --ca ca.pem --sni localhost 127.0.0.1 9000
 *
 * `muxcat -h` prints the whole interface, which other programs depend on:
 * change it only together with them.
 *
 * Design: everything runs on one muxring loop in one thread. The program is
 * a dispatcher over completion entries (handle_cqe) with one small handler
 * per mode: cat_* (default mode), echo_*, load_*. Per-session state lives in
 * struct sess_ctx (the session's user_data); per-stream state in the
 * stream's user_data (load mode) or in the session (default mode).
 *
 * Flow control is end to end, never by buffering without bound:
 * - echo holds each received view until the write that echoes it is done,
 *   so a peer that does not read its echoes runs out of window, not us out
 *   of memory;
 * - stdin is read only while less than CAT_MAX_IN_FLIGHT bytes of it wait
 *   to be sent; stdout is written (blocking) before a view is released;
 * - load keeps at most LOAD_STREAM_IN_FLIGHT bytes per stream and
 *   LOAD_TOTAL_IN_FLIGHT over all streams waiting to be sent.
 *
 * The public API has no operation that reads a plain fd through the ring, so
 * stdin is polled (poll with timeout 0) between turns of the loop, which
 * then waits at most STDIN_POLL_NS while stdin is wanted. Signals set a flag;
 * the loop never waits longer than SIGNAL_POLL_NS, so a signal that lands
 * just before the wait is still seen promptly.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/tls_flags.h"
#include "muxring.h"
#include "muxring_tls.h"

/* Exit statuses (part of the fixed interface). */
enum {
	STATUS_OK = 0,      /* success, whatever the peer's GOAWAY code */
	STATUS_FAILED = 1,  /* verification or protocol failure */
	STATUS_USAGE = CLI_STATUS_USAGE, /* bad command line */
	STATUS_CONNECT = 3, /* could not connect or listen; a TLS handshake
			       or verification failure */
};

#define DEFAULT_LOAD_SIZE 1024u
#define DEFAULT_HOST "127.0.0.1"
#define MAX_CLOSE_DEBUG (64u * 1024)     /* PROTOCOL.md: keep it well under
					    1 MiB */
#define MAX_LOAD_STREAMS 1000000u
#define SESSION_MAX_STREAMS 65536u       /* concurrent streams we allow */
#define SESSION_ACCEPT_BACKLOG 65536u    /* a load peer opens all at once */
#define CAT_CHUNK (64u * 1024)           /* one read of stdin */
#define CAT_MAX_IN_FLIGHT (1024u * 1024) /* stdin bytes written, not sent */
#define LOAD_CHUNK (64u * 1024)          /* one write of a load stream */
#define LOAD_STREAM_IN_FLIGHT (128u * 1024)
#define LOAD_TOTAL_IN_FLIGHT (64u * 1024 * 1024)
#define STDIN_POLL_NS (5 * 1000 * 1000LL)     /* wait while stdin is wanted */
#define SIGNAL_POLL_NS (100 * 1000 * 1000LL)  /* longest wait otherwise */
#define CQE_BATCH 128u

static const char usage_text[] =
"muxcat [options] HOST PORT        client: dial and run a session\n"
"muxcat -l [options] [HOST] PORT   server: listen (default host 127.0.0.1); serve one session, or every session with -k\n"
"Modes:\n"
"  (default)     one stream: the client opens it, the server accepts the first stream the peer opens; stdin to the\n"
"                stream, the stream to stdout; half-close when stdin ends; exit when both directions have ended\n"
"  -e            echo: every stream the peer opens is echoed back byte for byte, half-closed after the peer's FIN;\n"
"                without -k, exit when the session ends\n"
"  --load N      open N streams concurrently; stream k (0-based) writes --size BYTES (default 1024) where byte i is\n"
"                (k*131 + i) & 0xff, half-closes, reads the echo to EOF and compares; print one JSON line\n"
"                {\"streams\":N,\"ok\":K,\"failed\":F,\"bytes\":B,\"seconds\":S} (B = bytes echoed and verified);\n"
"                exit 0 only if every stream verified. With -l it waits for a peer and opens the streams from the server side.\n"
"  --close-code C --close-debug STR   whenever muxcat itself ends the session (its mode's work is done, or on SIGINT/SIGTERM),\n"
"                it sends GOAWAY(C, STR) (default 0, \"no error\")\n"
"  -v            print session events to stderr, one line each, exactly:\n"
"                  accept id=ID                  a stream the peer opened\n"
"                  reset id=ID code=CODE         a stream reset by the peer\n"
"                  goaway code=CODE debug=\"TEXT\" the peer's GOAWAY\n"
"                  end local=CODE remote=CODE debug=\"TEXT\"   the session's final result (remote=none when no GOAWAY came)\n"
"  -vv           also trace every frame sent and received, one line each on stderr (as MUXRING_TRACE=1 does):\n"
"                  TIME<tab>session=N<tab>send|recv<tab>OFFSET<tab>FRAME   FRAME as muxdump prints it\n"
"Exit status: 0 success (whatever code the peer's GOAWAY carried), 1 verification or protocol failure, 2 usage, 3 connection failure.\n"
"Numbers (C, CODE, N) are accepted in decimal or with a 0x prefix.\n"
"  --type T      the session is typed: streams this side opens carry type T, and the type of every accepted stream is read;\n"
"                with -v the accept line becomes `accept id=ID type=0xTTTTTTTT` (8 hex digits)\n"
"  --heartbeat MS  the session is typed (opened streams carry type 0 unless --type says otherwise); start the heartbeat every\n"
"                MS milliseconds, print `rtt_us=N` on stderr for each beat and `heartbeat_failed` on a failure, and answer\n"
"                the peer's heartbeats.\n"
"TLS (TLS 1.2 or 1.3; a handshake or verification failure exits 3 with one line on stderr):\n"
"  --tls         run the session over TLS\n"
"  --cert FILE --key FILE   this side's certificate chain and key, PEM (required with -l --tls; a client sends them when\n"
"                the server asks)\n"
"  --ca FILE     verify the peer with these CA certificates (client default: the system's store); on a server it also\n"
"                requires a client certificate\n"
"  --sni NAME    client: send NAME as SNI and verify it in the server's certificate instead of HOST\n"
"  --insecure    client: do not verify the server at all (prints a warning)\n";

/* ---------------------------------------------------------------------- */
/* Options                                                                 */
/* ---------------------------------------------------------------------- */

enum mode {
	MODE_CAT,  /* default: one stream joined to stdin/stdout */
	MODE_ECHO, /* -e */
	MODE_LOAD, /* --load N */
};

struct options {
	bool listen;             /* -l: server */
	bool keep;               /* -k: serve every session, not just one */
	unsigned verbose;        /* -v: session events on stderr; -vv: and
				    every frame (the loop's tracer) */
	enum mode mode;
	const char *host;        /* NULL: DEFAULT_HOST (server only) */
	char port[CLI_PORT_LEN]; /* in decimal */
	uint32_t load_streams;   /* --load N */
	uint64_t load_size;      /* --size: bytes written per load stream */
	uint32_t close_code;     /* --close-code: GOAWAY code when we end it */
	const char *close_debug; /* --close-debug: its debug text */
	size_t close_debug_len;
	bool typed;              /* --type or --heartbeat: typed session */
	uint32_t stream_type;    /* --type: type of the streams we open */
	uint32_t heartbeat_ms;   /* --heartbeat: interval, 0 when off */
	struct tls_flags tls;    /* --tls --cert --key --ca --sni --insecure */
};

static void print_usage(FILE *f)
{
	fputs(usage_text, f);
}

/* The positional arguments: HOST PORT (client), [HOST] PORT (server). */
static int parse_operands(int argc, char **argv, struct options *o)
{
	int n = argc - optind;

	if (o->listen ? (n < 1 || n > 2) : n != 2)
		return cli_usage_error(o->listen ? "-l needs [HOST] PORT"
					     : "need HOST PORT");
	if (n == 2)
		o->host = argv[optind++];
	if (!cli_parse_port(argv[optind], o->listen, o->port))
		return cli_usage_error("bad port '%s'", argv[optind]);
	return 0;
}


/* Checks the combinations of options. */
static int check_options(struct options *o, bool mode_echo, bool have_load,
			 bool have_size)
{
	if (mode_echo && have_load)
		return cli_usage_error("-e and --load exclude each other");
	if (have_size && !have_load)
		return cli_usage_error("--size needs --load");
	if (o->keep && !o->listen)
		return cli_usage_error("-k needs -l");
	o->mode = mode_echo ? MODE_ECHO : have_load ? MODE_LOAD : MODE_CAT;
	return tls_flags_check(&o->tls, o->listen, "clients");
}

enum {
	OPT_LOAD = 0x100,
	OPT_SIZE,
	OPT_CLOSE_CODE,
	OPT_CLOSE_DEBUG,
	OPT_TYPE,
	OPT_HEARTBEAT,
};

/*
 * Fills *o from the command line. Returns 0 to run, -1 after -h (usage
 * printed: exit 0), or STATUS_USAGE (message printed).
 */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "load", required_argument, NULL, OPT_LOAD },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "close-code", required_argument, NULL, OPT_CLOSE_CODE },
		{ "close-debug", required_argument, NULL, OPT_CLOSE_DEBUG },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
		TLS_FLAGS_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool echo = false, load = false, size = false;
	uint64_t v;
	int c, ret;

	memset(o, 0, sizeof(*o));
	o->load_size = DEFAULT_LOAD_SIZE;
	o->close_debug = "no error";
	o->close_debug_len = strlen(o->close_debug);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":lkevh", longopts, NULL)) != -1) {
		if (tls_flags_take(&o->tls, c, optarg))
			continue;
		switch (c) {
		case 'l': o->listen = true; break;
		case 'k': o->keep = true; break;
		case 'e': echo = true; break;
		case 'v': o->verbose++; break;
		case 'h': print_usage(stdout); return -1;
		case OPT_LOAD:
			if (!cli_number_option("--load", optarg, 0, MAX_LOAD_STREAMS,
					   &v))
				return STATUS_USAGE;
			if (!v)
				return cli_usage_error("--load: N must be >= 1");
			o->load_streams = (uint32_t)v;
			load = true;
			break;
		case OPT_SIZE:
			if (!cli_number_option("--size", optarg, 0, UINT64_MAX / 2,
					   &o->load_size))
				return STATUS_USAGE;
			size = true;
			break;
		case OPT_CLOSE_CODE:
			if (!cli_number_option("--close-code", optarg, 0, UINT32_MAX,
					   &v))
				return STATUS_USAGE;
			o->close_code = (uint32_t)v;
			break;
		case OPT_CLOSE_DEBUG:
			o->close_debug = optarg;
			o->close_debug_len = strlen(optarg);
			if (o->close_debug_len > MAX_CLOSE_DEBUG)
				return cli_usage_error("--close-debug: longer than "
						   "%u bytes", MAX_CLOSE_DEBUG);
			break;
		case OPT_TYPE:
			if (!cli_number_option("--type", optarg, 0, UINT32_MAX, &v))
				return STATUS_USAGE;
			o->stream_type = (uint32_t)v;
			o->typed = true;
			break;
		case OPT_HEARTBEAT:
			if (!cli_number_option("--heartbeat", optarg, 0,
					   UINT32_MAX / 1000, &v))
				return STATUS_USAGE;
			if (!v)
				return cli_usage_error("--heartbeat: MS must be "
						   ">= 1");
			o->heartbeat_ms = (uint32_t)v;
			o->typed = true;
			break;
		case ':':
			return cli_usage_error("option %s needs an argument",
					   argv[optind - 1]);
		default:
			if (optopt)
				return cli_usage_error("unknown option -%c",
						   optopt);
			return cli_usage_error("unknown option %s",
					   argv[optind - 1]);
		}
	}
	ret = check_options(o, echo, load, size);
	if (ret)
		return ret;
	return parse_operands(argc, argv, o);
}

/* ---------------------------------------------------------------------- */
/* Output                                                                  */
/* ---------------------------------------------------------------------- */

static volatile sig_atomic_t stop_signal; /* SIGINT/SIGTERM seen */

/* Writes all of buf to fd, retrying short writes and EINTR (unless a stop
 * signal came). Returns 0 or -errno. */
static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR && !stop_signal)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { .fd = fd,
						      .events = POLLOUT };
				poll(&pfd, 1, 100);
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* `len` bytes as the TEXT of a -v line: printable ASCII as is but `"` and
 * `\` escaped with `\`, every other byte as \xHH. Returns a malloc'ed
 * string, or NULL when out of memory. */
static char *escape_text(const uint8_t *p, size_t len)
{
	char *out = malloc(len * 4 + 1), *q = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		uint8_t c = p[i];

		if (c == '"' || c == '\\') {
			*q++ = '\\';
			*q++ = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			*q++ = (char)c;
		} else {
			q += sprintf(q, "\\x%02x", c);
		}
	}
	*q = '\0';
	return out;
}

/* Prints `head` + ` debug="TEXT"` for the debug text in view, as one line
 * (the text may be long, so not through print_line's fixed buffer). */
static void print_with_debug(const char *head, const struct muxring_view *v)
{
	char *text = escape_text(v->data, v->len);
	char *line;
	int n;

	if (!text)
		return;
	n = asprintf(&line, "%s debug=\"%s\"\n", head, text);
	if (n > 0) {
		write_all(STDERR_FILENO, line, (size_t)n);
		free(line);
	}
	free(text);
}

/* The CODE of an `end local=` line for a negative result (0 for none). */
static uint32_t local_code(int64_t res)
{
	if (res >= 0)
		return MUXRING_NO_ERROR;
	if (muxring_is_code((int)res))
		return muxring_err_code((int)res);
	return MUXRING_ERROR_UNKNOWN; /* a transport errno */
}

/* ---------------------------------------------------------------------- */
/* Program state                                                           */
/* ---------------------------------------------------------------------- */

struct load_run;

/* One session; the user_data of its entries. */
struct sess_ctx {
	struct app *app;
	struct muxring_session *sess;
	struct sess_ctx *prev, *next;      /* app->sessions */
	bool ready;       /* SESSION_READY came with res 0 */
	int ready_error;  /* or its error: reported with SESSION_ENDED, which
			     names a TLS failure's cause */
	bool closing;     /* muxring_session_close() called */
	bool extra;       /* accepted after the one session (no -k): closed
			     at once, no work, no say in the exit status */
	struct muxring_stream *cat_stream; /* default mode: its one stream */
	struct load_run *load;             /* --load: the run on it */
};

struct app {
	struct options opt;
	struct muxring_loop *loop;
	struct muxring_listener *listener;   /* NULL once closed */
	struct muxring_tls *tls;             /* --tls: every session's */
	struct sess_ctx *sessions;           /* every session not yet ended */
	unsigned served;       /* sessions accepted and served (server) */
	bool stopping;         /* no new work: ending every session */
	int status;            /* exit status so far (the worst) */

	/* Default mode: stdin feeds the first cat stream ever (stdin can be
	 * read only once); every later one is half-closed at once. */
	struct muxring_stream *stdin_stream; /* NULL: none (yet, or gone) */
	bool stdin_claimed;    /* a stream has taken stdin */
	bool stdin_done;       /* stdin ended (EOF, error, or abandoned) */
	size_t stdin_in_flight;/* bytes written on stdin_stream, not done */
	uint8_t stdin_buf[CAT_CHUNK];
};

/* Records an exit status; the worst one wins (3 > 1 > 0). */
static void app_fail(struct app *app, int status)
{
	if (status == STATUS_CONNECT || app->status == STATUS_OK)
		app->status = status;
}

static struct sess_ctx *sess_ctx_new(struct app *app,
				     struct muxring_session *sess)
{
	struct sess_ctx *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->app = app;
	sc->sess = sess;
	sc->next = app->sessions;
	if (app->sessions)
		app->sessions->prev = sc;
	app->sessions = sc;
	if (sess)
		muxring_session_set_data(sess, (uintptr_t)sc);
	return sc;
}

static void load_run_free(struct load_run *run);

static void sess_ctx_free(struct sess_ctx *sc)
{
	struct app *app = sc->app;

	if (sc->prev)
		sc->prev->next = sc->next;
	else
		app->sessions = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	load_run_free(sc->load);
	free(sc);
}

/* The state of an entry's session (its user_data; stream entries carry
 * the stream's or the write's user_data instead). */
static struct sess_ctx *sess_of(const struct muxring_cqe *cqe)
{
	return (struct sess_ctx *)(uintptr_t)muxring_session_data(cqe->session);
}

/* Ends the session as muxcat's own decision: GOAWAY(--close-code,
 * --close-debug), then PROTOCOL.md's shutdown (the library does it).
 * SESSION_ENDED follows. */
static void session_end(struct sess_ctx *sc)
{
	const struct options *o = &sc->app->opt;
	int ret;

	if (sc->closing)
		return;
	sc->closing = true;
	ret = muxring_session_close(sc->sess, o->close_code, o->close_debug,
				    o->close_debug_len);
	if (ret < 0)
		cli_print_line("muxcat: closing the session: %s",
			   muxring_strerror(ret));
}

/* The session options every session of this run gets. */
static void session_opts(const struct app *app,
			 struct muxring_session_opts *so)
{
	const struct options *o = &app->opt;

	memset(so, 0, sizeof(*so));
	so->accept_backlog = SESSION_ACCEPT_BACKLOG;
	so->max_streams = SESSION_MAX_STREAMS;
	if (o->mode == MODE_LOAD && o->load_streams + 64u > so->max_streams)
		so->max_streams = o->load_streams + 64u;
	so->flags = o->typed ? MUXRING_SESSION_TYPED : 0;
	if (app->tls)
		muxring_tls_apply(app->tls, so);
}

/* Opens a stream of this run's type (typed sessions) or an untyped one. */
static int open_stream(struct sess_ctx *sc, uint64_t user_data,
		       struct muxring_stream **streamp)
{
	if (sc->app->opt.typed)
		return muxring_stream_open_typed(sc->sess,
						 sc->app->opt.stream_type,
						 user_data, streamp);
	return muxring_stream_open(sc->sess, user_data, streamp);
}

/* ---------------------------------------------------------------------- */
/* Default mode: stdin -> stream -> stdout                                 */
/* ---------------------------------------------------------------------- */

/* Marker user_data of a cat stream (others, refused, have 0). */
#define CAT_STREAM_DATA 1u

/* stdin ended: half-close the stream it feeds. */
static void cat_stdin_end(struct app *app)
{
	app->stdin_done = true;
	if (app->stdin_stream)
		muxring_stream_close_write(app->stdin_stream);
}

/* Joins `st` to stdin/stdout as this session's one stream. */
static void cat_attach(struct sess_ctx *sc, struct muxring_stream *st)
{
	struct app *app = sc->app;

	sc->cat_stream = st;
	muxring_stream_set_data(st, CAT_STREAM_DATA);
	if (!app->stdin_claimed) {
		app->stdin_claimed = true;
		app->stdin_stream = st;
		if (app->stdin_done) /* a stop came first */
			muxring_stream_close_write(st);
	} else {
		muxring_stream_close_write(st); /* stdin was read already */
	}
}

/* Client: opens the one stream once the session is up. */
static void cat_start(struct sess_ctx *sc)
{
	struct muxring_stream *st;
	int ret;

	if (sc->app->opt.listen)
		return; /* the server waits for the peer's stream */
	ret = open_stream(sc, CAT_STREAM_DATA, &st);
	if (ret < 0) {
		cli_print_line("muxcat: opening the stream: %s",
			   muxring_strerror(ret));
		app_fail(sc->app, STATUS_FAILED);
		session_end(sc);
		return;
	}
	cat_attach(sc, st);
}

/* True while stdin should be read: a stream wants it and there is room. */
static bool cat_wants_stdin(const struct app *app)
{
	return app->stdin_stream && !app->stdin_done &&
	       app->stdin_in_flight < CAT_MAX_IN_FLIGHT;
}

/* Reads what stdin has now (never blocks) and writes it on the stream. */
static void cat_pump_stdin(struct app *app)
{
	while (cat_wants_stdin(app)) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		ssize_t n;
		int ret;

		if (poll(&pfd, 1, 0) <= 0)
			return; /* nothing yet */
		n = read(STDIN_FILENO, app->stdin_buf, sizeof(app->stdin_buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		if (n <= 0) {
			if (n < 0)
				cli_print_line("muxcat: reading stdin: %s",
					   strerror(errno));
			cat_stdin_end(app);
			return;
		}
		ret = muxring_stream_write(app->stdin_stream, app->stdin_buf,
					   (size_t)n, (uint64_t)n);
		if (ret < 0) {
			/* Reset or closed: its STREAM_CLOSED tells why. */
			app->stdin_done = true;
			return;
		}
		app->stdin_in_flight += (size_t)n;
	}
}

static void cat_accepted(struct sess_ctx *sc, struct muxring_stream *st)
{
	if (sc->app->opt.listen && !sc->cat_stream && !sc->app->stopping)
		cat_attach(sc, st);
	else
		muxring_stream_reset(st, MUXRING_STREAM_REFUSED);
}

static void cat_data(struct sess_ctx *sc, struct muxring_cqe *cqe)
{
	int ret;

	if (cqe->stream != sc->cat_stream || sc->app->stopping)
		return;
	ret = write_all(STDOUT_FILENO, cqe->view.data, cqe->view.len);
	if (ret < 0 && !stop_signal) {
		cli_print_line("muxcat: writing stdout: %s", strerror(-ret));
		app_fail(sc->app, STATUS_FAILED);
		session_end(sc);
	}
}

static void cat_write_done(struct app *app, const struct muxring_cqe *cqe)
{
	app->stdin_in_flight -= (size_t)cqe->user_data;
}

/* The session's stream is over: so is the session's work. */
static void cat_closed(struct sess_ctx *sc, const struct muxring_cqe *cqe)
{
	struct app *app = sc->app;

	if (cqe->stream != sc->cat_stream)
		return;
	sc->cat_stream = NULL;
	if (app->stdin_stream == cqe->stream) {
		app->stdin_stream = NULL;
		app->stdin_in_flight = 0;
	}
	if (cqe->flags & MUXRING_CQE_F_REMOTE)
		app_fail(app, STATUS_FAILED); /* the peer reset it */
	session_end(sc);
}

/* ---------------------------------------------------------------------- */
/* Echo mode                                                               */
/* ---------------------------------------------------------------------- */

/* A received view, held until the write echoing it is done (so a peer that
 * does not read its echoes is stopped by its window, not our memory). */
struct echo_write {
	struct muxring_view view;
};

static void echo_data(struct muxring_cqe *cqe)
{
	struct echo_write *w = malloc(sizeof(*w));
	int ret;

	if (!w) {
		muxring_view_release(&cqe->view);
		muxring_stream_reset(cqe->stream, MUXRING_INTERNAL_ERROR);
		return;
	}
	w->view = cqe->view;
	ret = muxring_stream_write(cqe->stream, w->view.data, w->view.len,
				   (uintptr_t)w);
	if (ret < 0) { /* reset or closed meanwhile: nothing to echo to */
		muxring_view_release(&w->view);
		free(w);
	}
}

static void echo_write_done(struct muxring_cqe *cqe)
{
	struct echo_write *w = muxring_cqe_get_data(cqe);

	muxring_view_release(&w->view);
	free(w);
}

/* ---------------------------------------------------------------------- */
/* Load mode                                                               */
/* ---------------------------------------------------------------------- */

/*
 * Stream k's byte i is (k*131 + i) & 0xff, so every stream's bytes are a
 * window of one repeating 0..255 ramp: `ramp` holds enough of it that any
 * LOAD_CHUNK bytes of any stream are ramp + ((k*131 + i) & 0xff).
 */
static uint8_t ramp[256 + LOAD_CHUNK];

static void ramp_init(void)
{
	size_t j;

	for (j = 0; j < sizeof(ramp); j++)
		ramp[j] = (uint8_t)j;
}

static const uint8_t *load_pattern(uint32_t k, uint64_t i)
{
	return ramp + (((uint64_t)k * 131 + i) & 0xff);
}

struct load_stream {
	struct load_run *run;
	struct muxring_stream *stream; /* NULL once closed */
	uint32_t k;                    /* 0-based index */
	uint64_t sent;       /* bytes handed to muxring_stream_write */
	uint64_t in_flight;  /* of those, WRITE_DONE not yet */
	uint64_t received;   /* echoed bytes received */
	uint64_t matched;    /* leading received bytes equal to the pattern */
	bool bad;            /* mismatch, too many bytes, or a failed write */
	bool eof;            /* the echo's end-of-file came */
	bool fin;            /* close-write done */
	bool starved;        /* queued in run->starved for write budget */
};

struct load_run {
	struct sess_ctx *sc;
	struct load_stream *streams;   /* [n] */
	uint32_t n;
	uint32_t opened;     /* streams opened */
	uint32_t closed;     /* STREAM_CLOSED seen (or never opened) */
	uint32_t ok, failed;
	uint64_t bytes;      /* verified bytes, all streams */
	uint64_t in_flight;  /* unsent bytes, all streams */
	uint32_t *starved;   /* FIFO of stream indexes waiting for budget */
	uint32_t starved_head, starved_len;
	uint64_t start_ns;
	bool reported;       /* JSON printed */
};

static void load_run_free(struct load_run *run)
{
	if (!run)
		return;
	free(run->streams);
	free(run->starved);
	free(run);
}

static void load_starve(struct load_stream *ls)
{
	struct load_run *run = ls->run;

	if (ls->starved)
		return;
	ls->starved = true;
	run->starved[(run->starved_head + run->starved_len) % run->n] = ls->k;
	run->starved_len++;
}

static void load_stream_fail(struct load_stream *ls)
{
	ls->bad = true;
	if (ls->stream)
		muxring_stream_reset(ls->stream, MUXRING_STREAM_CANCELLED);
}

/* Writes the next chunks of stream ls's pattern while its and the run's
 * budget allow, and half-closes after the last. */
static void load_fill(struct load_stream *ls)
{
	struct load_run *run = ls->run;
	uint64_t size = run->sc->app->opt.load_size;

	while (!ls->bad && ls->stream && ls->sent < size &&
	       ls->in_flight < LOAD_STREAM_IN_FLIGHT) {
		size_t len = size - ls->sent > LOAD_CHUNK
				     ? LOAD_CHUNK
				     : (size_t)(size - ls->sent);
		int ret;

		if (run->in_flight >= LOAD_TOTAL_IN_FLIGHT) {
			load_starve(ls);
			return;
		}
		ret = muxring_stream_write(ls->stream,
					   load_pattern(ls->k, ls->sent), len,
					   len);
		if (ret < 0) {
			load_stream_fail(ls);
			return;
		}
		ls->sent += len;
		ls->in_flight += len;
		run->in_flight += len;
	}
	if (!ls->bad && ls->stream && ls->sent == size && !ls->fin) {
		ls->fin = true;
		if (muxring_stream_close_write(ls->stream) < 0)
			load_stream_fail(ls);
	}
}

/* Gives freed write budget to streams that waited for it, oldest first. */
static void load_feed_starved(struct load_run *run)
{
	while (run->starved_len && run->in_flight < LOAD_TOTAL_IN_FLIGHT) {
		struct load_stream *ls = &run->streams[run->starved[
			run->starved_head]];

		run->starved_head = (run->starved_head + 1) % run->n;
		run->starved_len--;
		ls->starved = false;
		load_fill(ls);
	}
}

/* Prints the run's JSON line (once) and ends the session: the work is done. */
static void load_finish(struct load_run *run)
{
	struct app *app = run->sc->app;
	double secs = (double)(muxring_now_ns() - run->start_ns) / 1e9;

	if (run->reported)
		return;
	run->reported = true;
	printf("{\"streams\":%" PRIu32 ",\"ok\":%" PRIu32 ",\"failed\":%" PRIu32
	       ",\"bytes\":%" PRIu64 ",\"seconds\":%.3f}\n",
	       run->n, run->ok, run->failed, run->bytes, secs);
	fflush(stdout);
	if (run->failed)
		app_fail(app, STATUS_FAILED);
	session_end(run->sc);
}

/* A stream is over (or could not be opened): tally it. */
static void load_tally(struct load_stream *ls, bool clean)
{
	struct load_run *run = ls->run;
	uint64_t size = run->sc->app->opt.load_size;

	ls->stream = NULL;
	run->bytes += ls->matched;
	if (clean && !ls->bad && ls->eof && ls->matched == size)
		run->ok++;
	else
		run->failed++;
	if (++run->closed == run->n)
		load_finish(run);
}

/* Counts streams first..n-1, which could not be opened, as failed. */
static void load_abandon(struct load_run *run, uint32_t first)
{
	uint32_t k;

	for (k = first; k < run->n; k++) {
		struct load_stream *ls = &run->streams[k];

		ls->stream = NULL;
		ls->bad = true;
		load_tally(ls, false);
	}
}

/* Opens the run's N streams and starts writing on each. */
static void load_start(struct sess_ctx *sc)
{
	const struct options *o = &sc->app->opt;
	struct load_run *run = calloc(1, sizeof(*run));
	uint32_t k;

	if (run) {
		run->streams = calloc(o->load_streams, sizeof(*run->streams));
		run->starved = calloc(o->load_streams, sizeof(*run->starved));
	}
	if (!run || !run->streams || !run->starved) {
		cli_print_line("muxcat: out of memory for %" PRIu32 " streams",
			   o->load_streams);
		load_run_free(run);
		app_fail(sc->app, STATUS_FAILED);
		session_end(sc);
		return;
	}
	sc->load = run;
	run->sc = sc;
	run->n = o->load_streams;
	run->start_ns = muxring_now_ns();
	for (k = 0; k < run->n; k++) {
		struct load_stream *ls = &run->streams[k];

		ls->run = run;
		ls->k = k;
	}
	for (k = 0; k < run->n; k++) {
		struct load_stream *ls = &run->streams[k];
		int ret = open_stream(sc, (uintptr_t)ls, &ls->stream);

		if (ret < 0) {
			cli_print_line("muxcat: opening stream %" PRIu32 ": %s", k,
				   muxring_strerror(ret));
			load_abandon(run, k);
			return;
		}
		run->opened++;
		load_fill(ls);
	}
}

/* Compares an echo chunk with what stream ls wrote. */
static void load_verify(struct load_stream *ls, const uint8_t *p, size_t len)
{
	uint64_t size = ls->run->sc->app->opt.load_size;

	if (ls->bad)
		return;
	if (len > size - ls->received) {
		load_stream_fail(ls); /* more came back than was sent */
		return;
	}
	while (len) {
		size_t n = len > LOAD_CHUNK ? LOAD_CHUNK : len;

		if (memcmp(p, load_pattern(ls->k, ls->received), n)) {
			load_stream_fail(ls);
			return;
		}
		ls->received += n;
		ls->matched += n;
		p += n;
		len -= n;
	}
}

static struct load_stream *load_stream_of(const struct muxring_cqe *cqe)
{
	return cqe->stream ? (struct load_stream *)(uintptr_t)
				     muxring_stream_data(cqe->stream)
			   : NULL;
}

static void load_data(struct muxring_cqe *cqe)
{
	struct load_stream *ls = load_stream_of(cqe);

	if (ls)
		load_verify(ls, cqe->view.data, cqe->view.len);
}

static void load_eof(const struct muxring_cqe *cqe)
{
	struct load_stream *ls = load_stream_of(cqe);

	if (ls)
		ls->eof = true;
}

static void load_write_done(const struct muxring_cqe *cqe)
{
	struct load_stream *ls = load_stream_of(cqe);
	struct load_run *run;

	if (!ls)
		return;
	run = ls->run;
	ls->in_flight -= cqe->user_data;
	run->in_flight -= cqe->user_data;
	if (cqe->res < 0)
		ls->bad = true;
	else
		load_fill(ls);
	load_feed_starved(run);
}

static void load_closed(const struct muxring_cqe *cqe)
{
	struct load_stream *ls = load_stream_of(cqe);

	if (ls)
		load_tally(ls, cqe->code == MUXRING_NO_ERROR);
}

/* ---------------------------------------------------------------------- */
/* Heartbeat                                                               */
/* ---------------------------------------------------------------------- */

static void heartbeat_start(struct sess_ctx *sc)
{
	uint64_t interval = (uint64_t)sc->app->opt.heartbeat_ms * 1000000u;
	int ret;

	if (!interval)
		return;
	ret = muxring_session_heartbeat(sc->sess, interval, 0);
	if (ret < 0)
		cli_print_line("muxcat: starting the heartbeat: %s",
			   muxring_strerror(ret));
}

/* ---------------------------------------------------------------------- */
/* Session events                                                          */
/* ---------------------------------------------------------------------- */

/* A session is up (client: connected; server: accepted): start its work. */
static void on_session_ready(struct app *app, struct muxring_cqe *cqe)
{
	struct sess_ctx *sc;

	if (cqe->listener) { /* accepted: user_data is the listener's */
		sc = sess_ctx_new(app, cqe->session);
		if (!sc) {
			cli_print_line("muxcat: out of memory");
			muxring_session_close(cqe->session,
					      MUXRING_INTERNAL_ERROR, NULL, 0);
			return;
		}
		if (!app->opt.keep && app->served) {
			sc->extra = true; /* one session only: refuse it */
			session_end(sc);
			return;
		}
		app->served++;
		if (!app->opt.keep && app->listener)
			muxring_listener_close(app->listener);
	} else {
		sc = sess_of(cqe);
	}
	if (cqe->res < 0) {
		/* SESSION_ENDED follows, with the cause of a TLS failure. */
		sc->ready_error = (int)cqe->res;
		app_fail(app, STATUS_CONNECT);
		return;
	}
	sc->ready = true;
	if (app->stopping) {
		session_end(sc);
		return;
	}
	heartbeat_start(sc);
	if (app->opt.mode == MODE_CAT)
		cat_start(sc);
	else if (app->opt.mode == MODE_LOAD)
		load_start(sc);
}

/* Whether a session's end says something failed, from muxcat's view. */
static bool session_end_failed(const struct muxring_cqe *cqe)
{
	int res = (int)cqe->res;

	if (res >= 0 || res == MUXRING_ERR(MUXRING_SESSION_CLOSED) ||
	    res == MUXRING_ERR(MUXRING_PEER_EOF))
		return false;
	/* After the peer's GOAWAY the peer ended it; a reset transport
	 * after that is how some peers close. */
	return !(cqe->flags & MUXRING_CQE_F_REMOTE);
}

/* The session ended because its transport filter (TLS) failed: the
 * entry's text names the cause (muxring.h, "Transport filters"). */
static bool transport_failure(const struct muxring_cqe *cqe)
{
	return muxring_session_filter(cqe->session) && cqe->res < 0 &&
	       !(cqe->flags & MUXRING_CQE_F_REMOTE) && cqe->view.len;
}

static void on_session_ended(struct app *app, struct muxring_cqe *cqe)
{
	struct sess_ctx *sc = sess_of(cqe);

	if (app->opt.verbose) {
		char head[96];

		if (cqe->flags & MUXRING_CQE_F_REMOTE)
			snprintf(head, sizeof(head),
				 "end local=%" PRIu32 " remote=%" PRIu32,
				 local_code(cqe->res), cqe->code);
		else
			snprintf(head, sizeof(head),
				 "end local=%" PRIu32 " remote=none",
				 local_code(cqe->res));
		print_with_debug(head, &cqe->view);
	}
	if (transport_failure(cqe)) {
		/* TLS: handshake, verification, alert, truncation; only a
		 * handshake or verification failure is a connection
		 * failure (exit 3). */
		cli_print_line("muxcat: %.*s", (int)cqe->view.len,
			   (const char *)cqe->view.data);
		if (!sc->extra)
			app_fail(app, muxring_tls_handshake_failed(cqe->session)
					      ? STATUS_CONNECT : STATUS_FAILED);
	} else if (sc->ready_error) {
		cli_print_line("muxcat: cannot connect to %s port %s: %s",
			   app->opt.host, app->opt.port,
			   muxring_strerror(sc->ready_error));
	} else if (sc->ready && !sc->extra && session_end_failed(cqe)) {
		cli_print_line("muxcat: session failed: %s%s%s",
			   muxring_strerror((int)cqe->res),
			   cqe->reason ? ": " : "",
			   cqe->reason ? cqe->reason : "");
		app_fail(app, STATUS_FAILED);
	}
	if (sc->load && !sc->load->reported) /* cannot happen: streams close
						first; belt and braces */
		load_finish(sc->load);
	sess_ctx_free(sc);
}

static void on_goaway(struct app *app, struct muxring_cqe *cqe)
{
	char head[64];

	if (!app->opt.verbose)
		return;
	snprintf(head, sizeof(head), "goaway code=%" PRIu32, cqe->code);
	print_with_debug(head, &cqe->view);
}

static void on_stream_accepted(struct app *app, struct muxring_cqe *cqe)
{
	struct sess_ctx *sc = sess_of(cqe);
	uint32_t id = muxring_stream_id(cqe->stream);

	muxring_stream_set_data(cqe->stream, 0); /* not one of ours (yet) */
	if (app->opt.verbose) {
		if (app->opt.typed)
			cli_print_line("accept id=%" PRIu32 " type=0x%08" PRIx32,
				   id, cqe->code);
		else
			cli_print_line("accept id=%" PRIu32, id);
	}
	switch (app->opt.mode) {
	case MODE_CAT:
		cat_accepted(sc, cqe->stream);
		break;
	case MODE_ECHO:
		if (app->stopping)
			muxring_stream_reset(cqe->stream,
					     MUXRING_STREAM_REFUSED);
		break;
	case MODE_LOAD: /* we open the streams; the peer's are refused */
		muxring_stream_reset(cqe->stream, MUXRING_STREAM_REFUSED);
		break;
	}
}

static void on_data(struct app *app, struct muxring_cqe *cqe)
{
	switch (app->opt.mode) {
	case MODE_CAT:
		cat_data(sess_of(cqe), cqe);
		break;
	case MODE_ECHO:
		echo_data(cqe); /* keeps the view until the echo is sent */
		return;
	case MODE_LOAD:
		load_data(cqe);
		break;
	}
	muxring_view_release(&cqe->view);
}

static void on_eof(struct app *app, struct muxring_cqe *cqe)
{
	if (app->opt.mode == MODE_ECHO)
		muxring_stream_close_write(cqe->stream); /* after the echo */
	else if (app->opt.mode == MODE_LOAD)
		load_eof(cqe);
}

static void on_write_done(struct app *app, struct muxring_cqe *cqe)
{
	switch (app->opt.mode) {
	case MODE_CAT:
		cat_write_done(app, cqe);
		break;
	case MODE_ECHO:
		echo_write_done(cqe);
		break;
	case MODE_LOAD:
		load_write_done(cqe);
		break;
	}
}

static void on_stream_closed(struct app *app, struct muxring_cqe *cqe)
{
	if (app->opt.verbose && (cqe->flags & MUXRING_CQE_F_REMOTE))
		cli_print_line("reset id=%" PRIu32 " code=%" PRIu32,
			   muxring_stream_id(cqe->stream), cqe->code);
	if (app->opt.mode == MODE_CAT)
		cat_closed(sess_of(cqe), cqe);
	else if (app->opt.mode == MODE_LOAD)
		load_closed(cqe);
}

static void on_listener_closed(struct app *app, struct muxring_cqe *cqe)
{
	app->listener = NULL;
	if (cqe->res < 0) {
		cli_print_line("muxcat: listener failed: %s",
			   muxring_strerror((int)cqe->res));
		app_fail(app, STATUS_FAILED);
	}
}

static void handle_cqe(struct app *app, struct muxring_cqe *cqe)
{
	switch (cqe->type) {
	case MUXRING_CQE_SESSION_READY:
		on_session_ready(app, cqe);
		break;
	case MUXRING_CQE_STREAM_ACCEPTED:
		on_stream_accepted(app, cqe);
		break;
	case MUXRING_CQE_DATA:
		on_data(app, cqe);
		break;
	case MUXRING_CQE_EOF:
		on_eof(app, cqe);
		break;
	case MUXRING_CQE_WRITE_DONE:
		on_write_done(app, cqe);
		break;
	case MUXRING_CQE_STREAM_CLOSED:
		on_stream_closed(app, cqe);
		break;
	case MUXRING_CQE_GOAWAY:
		on_goaway(app, cqe);
		break;
	case MUXRING_CQE_SESSION_ENDED:
		on_session_ended(app, cqe);
		break;
	case MUXRING_CQE_LISTENER_CLOSED:
		on_listener_closed(app, cqe);
		break;
	case MUXRING_CQE_HEARTBEAT:
		cli_print_line("rtt_us=%" PRId64, cqe->res / 1000);
		break;
	case MUXRING_CQE_HEARTBEAT_FAILED:
		cli_print_line("heartbeat_failed");
		break;
	default: /* DEADLINE: muxcat sets none */
		break;
	}
}

/* ---------------------------------------------------------------------- */
/* The loop                                                                */
/* ---------------------------------------------------------------------- */

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

/* SIGINT/SIGTERM set a flag and interrupt the wait (no SA_RESTART);
 * SIGPIPE is ignored: a closed stdout is an error, not a death. */
static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Stops taking new work and ends every session with the close code. */
static void app_stop(struct app *app)
{
	struct sess_ctx *sc;

	app->stopping = true;
	if (!app->stdin_done) {
		app->stdin_done = true; /* abandon stdin: no half-close */
		app->stdin_stream = NULL;
	}
	if (app->listener)
		muxring_listener_close(app->listener);
	for (sc = app->sessions; sc; sc = sc->next)
		if (sc->ready)
			session_end(sc);
	/* Sessions still connecting are ended when they become ready. */
}

static bool app_finished(const struct app *app)
{
	return !app->listener && !app->sessions;
}

/* How long the next wait may block: briefly while stdin is wanted (it is
 * polled between waits), at most SIGNAL_POLL_NS otherwise. */
static int64_t app_wait_ns(const struct app *app)
{
	return cat_wants_stdin(app) ? STDIN_POLL_NS : SIGNAL_POLL_NS;
}

/* Handles every ready entry. */
static void app_drain(struct app *app)
{
	struct muxring_cqe *cqes[CQE_BATCH];
	unsigned i, n;

	while ((n = muxring_peek_batch_cqe(app->loop, cqes, CQE_BATCH))) {
		for (i = 0; i < n; i++)
			handle_cqe(app, cqes[i]);
		muxring_cq_advance(app->loop, n);
	}
}

static int app_run(struct app *app)
{
	while (!app_finished(app)) {
		int ret;

		if (stop_signal && !app->stopping)
			app_stop(app);
		cat_pump_stdin(app);
		ret = muxring_submit_and_wait(app->loop, 1, app_wait_ns(app));
		if (ret < 0 && ret != -EINTR && ret != -ETIME) {
			cli_print_line("muxcat: loop: %s", muxring_strerror(ret));
			return STATUS_FAILED;
		}
		app_drain(app);
	}
	return app->status;
}

/* Client: dials; the rest happens on the loop. */
static int app_dial(struct app *app)
{
	struct muxring_session_opts so;
	struct sess_ctx *sc = sess_ctx_new(app, NULL);
	int ret;

	if (!sc)
		return -ENOMEM;
	session_opts(app, &so);
	ret = muxring_connect(app->loop, app->opt.host, app->opt.port, &so,
			      (uintptr_t)sc, &sc->sess);
	if (ret < 0) {
		sess_ctx_free(sc);
		cli_print_line("muxcat: cannot connect to %s port %s: %s",
			   app->opt.host, app->opt.port, muxring_strerror(ret));
	}
	return ret;
}

/* Server: listens; sessions arrive as SESSION_READY entries. */
static int app_listen(struct app *app)
{
	struct muxring_session_opts so;
	int ret;

	if (!app->opt.host)
		app->opt.host = DEFAULT_HOST;
	session_opts(app, &so);
	ret = muxring_listen(app->loop, app->opt.host, app->opt.port, 0, &so,
			     0, &app->listener);
	if (ret < 0)
		cli_print_line("muxcat: cannot listen on %s port %s: %s",
			   app->opt.host, app->opt.port, muxring_strerror(ret));
	return ret;
}

/* -vv: the loop's frame trace, one line each on stderr. */
static void print_trace(const struct muxring_trace_frame *frame, void *arg)
{
	char line[1024];

	(void)arg;
	muxring_trace_line(frame, line, sizeof(line));
	cli_print_line("%s", line);
}

/* --tls: the configuration every session uses. Returns 0 or an exit
 * status (message printed). */
static int app_tls(struct app *app)
{
	int ret;

	if (!app->opt.tls.on)
		return 0;
	if (app->opt.tls.opts.flags & MUXRING_TLS_INSECURE)
		cli_print_line("muxcat: warning: --insecure: the server's identity "
			   "is not verified");
	ret = muxring_tls_new(&app->tls, app->opt.listen ? MUXRING_SERVER
							 : MUXRING_CLIENT,
			      &app->opt.tls.opts);
	if (ret < 0) {
		cli_print_line("muxcat: TLS: %s", muxring_tls_new_error());
		return STATUS_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct app app; /* static: it holds the 64 KiB stdin buffer */
	struct muxring_loop_opts loop_opts = { 0 };
	int ret;

	cli_set_program("muxcat");
	ret = parse_options(argc, argv, &app.opt);
	if (ret)
		return ret < 0 ? STATUS_OK : ret;
	install_signals();
	ramp_init();
	if (app.opt.verbose >= 2)
		loop_opts.trace = print_trace;
	ret = muxring_loop_create(&app.loop, &loop_opts);
	if (ret < 0) {
		cli_print_line("muxcat: %s", muxring_loop_create_error());
		return STATUS_FAILED;
	}
	ret = app_tls(&app);
	if (ret) {
		muxring_loop_destroy(app.loop);
		return ret;
	}
	ret = app.opt.listen ? app_listen(&app) : app_dial(&app);
	if (ret < 0) {
		muxring_loop_destroy(app.loop);
		return STATUS_CONNECT;
	}
	ret = app_run(&app);
	muxring_loop_destroy(app.loop);
	muxring_tls_free(app.tls);
	while (app.sessions) /* only after a loop failure */
		sess_ctx_free(app.sessions);
	return ret;
}
