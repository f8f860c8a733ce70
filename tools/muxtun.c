/*
 * muxtun - a TCP tunnel: many TCP connections carried over one muxado
 * session, one stream per connection.
 *
 *   clients --TCP--> [muxtun -L] == session ==> [muxtun -R] --TCP--> service
 *
 * Run it (from the repository root, after `make`), for a service listening
 * on 127.0.0.1:8080:
 *
 *   build/muxtun -R 127.0.0.1 8080 -l 7000 -v    # exit side, near the service
 *   build/muxtun -L 9000 -c 127.0.0.1 7000 -v    # entry side, near the clients
 *   curl http://127.0.0.1:9000/                   # one connection, one stream
 *
 * The session may run over TLS (--tls; the exit side is the TLS server):
 *
 *   build/muxtun -R 127.0.0.1 8080 -l 7000 --tls --cert srv.pem --key srv.key
 *   build/muxtun -L 9000 -c 127.0.0.1 7000 --tls --ca ca.pem
 *
 * and each side prints, per tunnelled connection,
 *
 *   open conn=1 stream=3
 *   close conn=1 stream=3 read=78 written=1543 end=ok
 *
 * `muxtun -h` prints the whole interface (tests depend on it: change it only
 * together with tests/test_muxtun.c).
 *
 * Design. One thread, one muxring loop. The entry side dials one client
 * session and owns a plain TCP listening socket; each connection accepted
 * becomes a stream, opened with an empty first write so that the SYN leaves
 * at once (a service that speaks first must hear of its client before the
 * client says anything). The exit side serves every session its muxring
 * listener accepts; each stream the peer opens gets a nonblocking connect
 * to the target (each resolved address in turn). A connection (struct conn)
 * pairs one TCP socket with one stream and lives until both are gone.
 *
 * TCP sockets and the loop. The public API has no read or write of a plain
 * descriptor on the ring, only muxring_poll_fd(): one readiness
 * notification, which cannot be cancelled, and while it is armed the ring
 * holds the socket's file, so a close (or the RST of an abort) would wait
 * until the poll fires. Per-socket polls therefore do not fit sockets that
 * must close at any moment. Instead every TCP socket (with the entry side's
 * listening socket and a signalfd) sits in one edge-triggered epoll set, and
 * only the epoll descriptor is watched on the ring: when it fires,
 * epoll_wait(0) harvests the events and the watch is re-armed. So one
 * muxring_submit_and_wait() waits for the session and for every socket,
 * with no timeout and no busy polling; the socket I/O itself is
 * nonblocking recv()/sendmsg() in the handlers.
 *
 * Copies. TCP bytes are received straight into a buffer of the loop's send
 * arena and handed to muxring_stream_write_zc(); only when the arena is
 * exhausted does a read go to one scratch buffer and muxring_stream_write()
 * (which copies). Stream bytes go to the socket straight from the received
 * views: sendmsg() with one iovec per view.
 *
 * Flow control is end to end, so memory per connection is bounded:
 * - a socket is not read while its stream has MAX_UNSENT bytes or more
 *   written but not yet sent (WRITE_DONE not yet come); a slow peer or a
 *   slow far end stops the reads here, and TCP pushes back on the client;
 * - a DATA view is held until all of its bytes are in the TCP socket, and
 *   only then released, which is what credits the stream's window: a slow
 *   TCP reader on one side stops its stream's sender on the other.
 * So a connection holds at most MAX_UNSENT + one read (64 KiB) of its
 * socket's bytes and one receive window (256 KiB) of its stream's, and
 * --max-conns bounds the number of connections.
 *
 * Ends, both ways:
 *   TCP FIN (recv 0)          -> muxring_stream_close_write()
 *   stream EOF                -> shutdown(SHUT_WR) once the held views are
 *                                written
 *   both directions ended     -> close(); the stream closes by itself
 *   TCP error or RST          -> muxring_stream_reset(StreamReset); socket
 *                                closed with RST (SO_LINGER 0)
 *   target connect failed     -> muxring_stream_reset(StreamRefused)
 *   stream reset / ended with
 *   an error (session gone)   -> socket closed with RST, held views dropped
 *
 * Signals: SIGINT and SIGTERM arrive through the signalfd. The first one
 * stops accepting, closes every session (GOAWAY NoError, then the library's
 * orderly shutdown), aborts the connections, and muxtun exits 0 once every
 * session has ended. SIGPIPE is ignored (sends use MSG_NOSIGNAL anyway).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/tls_flags.h"
#include "muxring.h"
#include "muxring_tls.h"

/* Exit statuses (part of the interface). */
enum {
	STATUS_OK = 0,      /* stopped by a signal, or the session ended
			       cleanly (entry side: the peer's GOAWAY NoError) */
	STATUS_FAILED = 1,  /* the session was lost, or the loop failed */
	STATUS_USAGE = CLI_STATUS_USAGE, /* bad command line */
	STATUS_CONNECT = 3, /* could not connect, listen or resolve; the TLS
			       handshake or verification failed */
};

#define DEFAULT_BIND "127.0.0.1"
#define DEFAULT_MAX_CONNS 512u
#define MAX_MAX_CONNS 1000000u
#define MAX_UNSENT (256u * 1024)   /* stream bytes written, not yet sent,
				      above which the socket is not read */
#define SCRATCH_SIZE (64u * 1024)  /* one read when the arena is empty */
#define IOV_BATCH 64               /* views per sendmsg */
#define EPOLL_BATCH 64             /* events per epoll_wait */
#define SESSION_SLACK 64u          /* streams beyond --max-conns the
				      session tolerates (refused ones still
				      count until their close) */
#define STOP_DEBUG "muxtun shutting down"

#define container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

static const char usage_text[] =
"usage: muxtun -L LISTEN_PORT -c HOST PORT [options]          entry side\n"
"       muxtun -R TARGET_HOST TARGET_PORT -l PORT [options]   exit side\n"
"Entry side: dial the exit side at HOST:PORT (one muxado session); every TCP connection accepted on\n"
"  BIND:LISTEN_PORT becomes one new stream over that session. Exits when the session ends.\n"
"Exit side: listen on BIND:PORT for sessions (any number); every stream a peer opens is connected to\n"
"  TARGET_HOST:TARGET_PORT (resolved once, at start) and bytes are copied both ways. Runs until a signal.\n"
"Half-closes are passed on both ways (TCP FIN <-> stream FIN); a TCP error or reset resets the stream, a\n"
"stream reset (or the session's end) closes the TCP connection with a reset.\n"
"Options:\n"
"  --bind ADDR     address the listening socket binds to (default 127.0.0.1)\n"
"  --max-conns N   tunnelled connections at once, at most (default 512): the entry side leaves more in the\n"
"                  listen backlog, the exit side refuses their streams (RST StreamRefused)\n"
"  -v              print events on stderr, one line each:\n"
"                    listen ADDR:PORT                  the listening socket is ready (entry side: once the\n"
"                                                      session is up)\n"
"                    session open                      a session is up\n"
"                    session close err=\"TEXT\"          a session ended, and why\n"
"                    open conn=N stream=ID             a tunnelled connection begins\n"
"                    close conn=N stream=ID read=BYTES written=BYTES end=WHY\n"
"                                                      it ended; BYTES read from / written to its TCP socket\n"
"                  where WHY is one of\n"
"                    ok                                both directions ended with FIN\n"
"                    reset code=C                      the peer reset the stream (muxado code C)\n"
"                    closed code=C                     the stream ended on this side with code C\n"
"                                                      (14: the session was closed or is gone)\n"
"                    tcp-error err=\"TEXT\"              the TCP socket failed; the stream was reset\n"
"                    connect-failed err=\"TEXT\"         exit side: the target was not reached\n"
"                    open-failed code=C                entry side: no stream could be opened\n"
"                  and `refuse stream=ID` is printed for a stream refused at --max-conns or while stopping.\n"
"TLS (the entry side is the TLS client, the exit side the TLS server; TLS 1.2 or 1.3):\n"
"  --tls           run the session over TLS\n"
"  --cert FILE --key FILE   this side's certificate chain and key, PEM (required with -l --tls)\n"
"  --ca FILE       verify the peer with these CA certificates (entry side default: the system's store); on the\n"
"                  exit side it also requires a client certificate\n"
"  --sni NAME      entry side: send NAME as SNI and verify it instead of HOST\n"
"  --insecure      entry side: do not verify the exit side at all (prints a warning)\n"
"                  A handshake or verification failure prints one line; the entry side then exits 3, the exit\n"
"                  side drops that session and goes on serving.\n"
"  -h, --help      this text\n"
"A LISTEN_PORT or PORT of 0 takes any free port (the listen line shows it). Numbers are decimal or 0x hex.\n"
"SIGINT/SIGTERM: GOAWAY(NoError) on every session, every connection closed, exit.\n"
"Exit status: 0 stopped by a signal or the session ended cleanly, 1 the session was lost,\n"
"  2 usage error, 3 could not connect, listen or resolve.\n";

/* ---------------------------------------------------------------------- */
/* Options                                                                 */
/* ---------------------------------------------------------------------- */

enum mode {
	MODE_NONE,
	MODE_ENTRY, /* -L ... -c HOST PORT */
	MODE_EXIT,  /* -R HOST PORT -l ... */
};

struct options {
	enum mode mode;
	char listen_port[CLI_PORT_LEN]; /* -L (entry) or -l (exit); "" unset */
	const char *host;        /* -c: the exit side; -R: the target */
	char port[CLI_PORT_LEN]; /* of host, in decimal */
	const char *bind;        /* --bind */
	bool verbose;            /* -v */
	uint32_t max_conns;      /* --max-conns */
	struct tls_flags tls;    /* --tls --cert --key --ca --sni --insecure */
};

/* -c HOST PORT and -R HOST PORT: getopt gives HOST, PORT is the next word. */
static int take_host_port(int argc, char **argv, const char *opt,
			  struct options *o)
{
	if (o->host)
		return cli_usage_error("%s given twice (or with %s)", opt,
				   o->mode == MODE_EXIT ? "-R" : "-c");
	if (optind >= argc)
		return cli_usage_error("%s needs HOST PORT", opt);
	o->host = optarg;
	if (!cli_parse_port(argv[optind], false, o->port))
		return cli_usage_error("%s: bad port '%s'", opt, argv[optind]);
	optind++;
	return 0;
}

/* Sets the mode; an option of the other mode is a usage error. */
static int want_mode(struct options *o, enum mode m)
{
	if (o->mode != MODE_NONE && o->mode != m)
		return cli_usage_error("-L/-c (entry side) and -R/-l (exit side) "
				   "exclude each other");
	o->mode = m;
	return 0;
}

static int take_listen_port(const char *opt, struct options *o)
{
	if (o->listen_port[0])
		return cli_usage_error("%s given twice", opt);
	if (!cli_parse_port(optarg, true, o->listen_port))
		return cli_usage_error("%s: bad port '%s'", opt, optarg);
	return 0;
}

/* The options each mode must have, once all are read. */
static int check_options(const struct options *o, int argc, char **argv)
{
	if (optind < argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (o->mode == MODE_NONE)
		return cli_usage_error("need -L LISTEN_PORT -c HOST PORT, or "
				   "-R TARGET_HOST TARGET_PORT -l PORT");
	if (!o->listen_port[0])
		return cli_usage_error(o->mode == MODE_ENTRY ? "-c needs -L "
				   "LISTEN_PORT" : "-R needs -l PORT");
	if (!o->host)
		return cli_usage_error(o->mode == MODE_ENTRY ? "-L needs -c HOST "
				   "PORT" : "-l needs -R TARGET_HOST "
				   "TARGET_PORT");
	return tls_flags_check(&o->tls, o->mode == MODE_EXIT, "the entry side");
}

enum {
	OPT_MAX_CONNS = 0x100,
	OPT_BIND,
};

/* One option from getopt. Returns 0 or STATUS_USAGE (reported). */
static int take_option(int c, int argc, char **argv, struct options *o)
{
	uint64_t v;
	int ret;

	if (tls_flags_take(&o->tls, c, optarg))
		return 0;
	switch (c) {
	case 'L':
		ret = want_mode(o, MODE_ENTRY);
		return ret ? ret : take_listen_port("-L", o);
	case 'l':
		ret = want_mode(o, MODE_EXIT);
		return ret ? ret : take_listen_port("-l", o);
	case 'c':
		ret = want_mode(o, MODE_ENTRY);
		return ret ? ret : take_host_port(argc, argv, "-c", o);
	case 'R':
		ret = want_mode(o, MODE_EXIT);
		return ret ? ret : take_host_port(argc, argv, "-R", o);
	case 'v':
		o->verbose = true;
		return 0;
	case OPT_MAX_CONNS:
		if (!cli_parse_number(optarg, 1, MAX_MAX_CONNS, &v))
			return cli_usage_error("--max-conns: not a number in "
					   "1..%u: '%s'", MAX_MAX_CONNS,
					   optarg);
		o->max_conns = (uint32_t)v;
		return 0;
	case OPT_BIND:
		o->bind = optarg;
		return 0;
	case ':':
		return cli_usage_error("option %s needs an argument",
				   argv[optind - 1]);
	default:
		if (optopt > 0 && optopt < 0x100)
			return cli_usage_error("unknown option -%c", optopt);
		return cli_usage_error("unknown option %s", argv[optind - 1]);
	}
}

/*
 * Fills *o from the command line. Returns 0 to run, -1 after -h (usage
 * printed: exit 0), or STATUS_USAGE (message printed).
 */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
		{ "bind", required_argument, NULL, OPT_BIND },
		TLS_FLAGS_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, ret;

	memset(o, 0, sizeof(*o));
	o->bind = DEFAULT_BIND;
	o->max_conns = DEFAULT_MAX_CONNS;
	opterr = 0;
	/* '+': no permutation, so PORT after -c HOST / -R HOST stays put. */
	while ((c = getopt_long(argc, argv, "+:L:l:c:R:vh", longopts,
				NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return -1;
		}
		ret = take_option(c, argc, argv, o);
		if (ret)
			return ret;
	}
	return check_options(o, argc, argv);
}

/* ---------------------------------------------------------------------- */
/* Output                                                                  */
/* ---------------------------------------------------------------------- */

/* ---------------------------------------------------------------------- */
/* Program state                                                           */
/* ---------------------------------------------------------------------- */

/* Something in the epoll set: its handler gets the epoll events. */
struct source {
	void (*on_event)(struct source *src, uint32_t events);
};

/* Received views waiting to be written to a TCP socket, oldest first: a
 * ring of `cap` entries (a power of two, or 0 before the first push). */
struct view_queue {
	struct muxring_view *v;
	unsigned head;   /* index of the oldest view */
	unsigned len;    /* views held */
	unsigned cap;
	size_t off;      /* bytes of the oldest view already written */
};

/* conn.state bits. Each is set once and never cleared, except the two
 * readiness bits (edge-triggered: set by an epoll edge, cleared by
 * EAGAIN). */
enum conn_state {
	CONN_CONNECTING = 1u << 0, /* exit side: connect() in progress */
	CONN_CAN_READ = 1u << 1,   /* the socket may have bytes or EOF */
	CONN_CAN_WRITE = 1u << 2,  /* the socket may take bytes */
	CONN_RD_DONE = 1u << 3,    /* TCP EOF read; stream half-closed */
	CONN_WR_DONE = 1u << 4,    /* stream EOF passed on: SHUT_WR done */
	CONN_STREAM_EOF = 1u << 5, /* the stream's EOF came */
	CONN_RESET_SENT = 1u << 6, /* muxring_stream_reset() called */
	CONN_DEAD = 1u << 7,       /* in app->dead, freed after the turn */
};

/* How a connection ended, for the -v close line. The first cause wins. */
enum conn_end {
	END_NONE,           /* not (yet) ended by a failure: ok at the end */
	END_PEER_RESET,     /* the peer reset the stream: code */
	END_CLOSED,         /* the stream ended with an error here: code */
	END_TCP_ERROR,      /* the TCP socket failed: err */
	END_CONNECT_FAILED, /* exit side: no target address answered: err */
	END_OPEN_FAILED,    /* entry side: the stream was not opened: code */
};

struct app;

/* One tunnelled connection: a TCP socket and a stream. Freed when both
 * are gone (fd closed, STREAM_CLOSED seen or never opened). */
struct conn {
	struct source src;              /* epoll data of fd */
	struct app *app;
	struct conn *prev, *next;       /* app->conns, or app->dead */
	struct muxring_stream *stream;  /* NULL once STREAM_CLOSED came */
	int fd;                         /* the TCP socket, -1 once closed */
	unsigned state;                 /* enum conn_state bits */
	uint64_t id;                    /* conn=N of the -v lines */
	uint32_t stream_id;             /* 0 if none was opened */
	size_t unsent;        /* bytes written on the stream whose
				 WRITE_DONE has not come */
	struct view_queue out;          /* stream bytes for the socket */
	uint64_t bytes_read;            /* from the TCP socket */
	uint64_t bytes_written;         /* to the TCP socket */
	const struct addrinfo *next_addr; /* exit side: next target to try */
	enum conn_end end;
	uint32_t end_code;              /* muxado code of the end */
	int end_err;                    /* errno of the end */
};

/* One muxado session; the user_data of its entries. */
struct sess {
	struct app *app;
	struct muxring_session *ms;
	struct sess *prev, *next;  /* app->sessions */
	bool ready;                /* SESSION_READY came with res 0 */
	int ready_error;           /* or its error (reported at the end) */
	bool closing;              /* muxring_session_close() called */
};

/* The entry side's listening socket. */
struct tcp_listener {
	struct source src;
	int fd;         /* -1 when closed */
	bool started;   /* in the epoll set */
	bool pending;   /* connections may wait (edge seen, no EAGAIN yet) */
	char name[INET6_ADDRSTRLEN + 8]; /* ADDR:PORT as bound */
};

struct app {
	struct options opt;
	struct muxring_loop *loop;
	struct muxring_tls *tls;          /* --tls: every session's */
	int epfd;                         /* every socket, signalfd */
	struct source sig_src;
	int sigfd;
	struct tcp_listener tl;           /* entry side */
	struct muxring_listener *ml;      /* exit side; NULL once closed */
	bool ml_closing;
	struct addrinfo *targets;         /* exit side: TARGET_HOST:PORT */
	struct sess *sessions;            /* every session not yet ended */
	struct conn *conns;               /* live connections */
	struct conn *dead;                /* to be freed after this turn */
	uint32_t nconns;                  /* entries of app->conns */
	uint64_t last_conn_id;
	bool stopping;                    /* a signal came: ending all */
	bool failed;                      /* the loop cannot go on */
	int status;
	uint8_t scratch[SCRATCH_SIZE];
};

/* Records an exit status; the worst one wins (3 > 1 > 0). */
static void app_fail(struct app *app, int status)
{
	if (status == STATUS_CONNECT || app->status == STATUS_OK)
		app->status = status;
}

/* ---------------------------------------------------------------------- */
/* View queue                                                              */
/* ---------------------------------------------------------------------- */

/* Appends a view (copied by value). Returns 0 or -ENOMEM. */
static int view_queue_push(struct view_queue *q, const struct muxring_view *v)
{
	if (q->len == q->cap) {
		unsigned cap = q->cap ? q->cap * 2 : 8, i;
		struct muxring_view *nv = malloc(cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		for (i = 0; i < q->len; i++)
			nv[i] = q->v[(q->head + i) & (q->cap - 1)];
		free(q->v);
		q->v = nv;
		q->cap = cap;
		q->head = 0;
	}
	q->v[(q->head + q->len) & (q->cap - 1)] = *v;
	q->len++;
	return 0;
}

/* The bytes not yet written, as up to `max` iovecs. Returns how many. */
static int view_queue_iov(const struct view_queue *q, struct iovec *iov,
			  int max)
{
	unsigned i;
	int n = 0;

	for (i = 0; i < q->len && n < max; i++, n++) {
		const struct muxring_view *v = &q->v[(q->head + i) &
						     (q->cap - 1)];
		size_t skip = i ? 0 : q->off;

		iov[n].iov_base = (void *)(uintptr_t)(v->data + skip);
		iov[n].iov_len = v->len - skip;
	}
	return n;
}

/* `n` bytes were written: releases every view written to its end. */
static void view_queue_consume(struct view_queue *q, size_t n)
{
	while (n) {
		struct muxring_view *v = &q->v[q->head];
		size_t left = v->len - q->off;

		if (n < left) {
			q->off += n;
			return;
		}
		n -= left;
		muxring_view_release(v);
		q->head = (q->head + 1) & (q->cap - 1);
		q->len--;
		q->off = 0;
	}
}

/* Releases every view and the ring itself. */
static void view_queue_clear(struct view_queue *q)
{
	while (q->len) {
		muxring_view_release(&q->v[q->head]);
		q->head = (q->head + 1) & (q->cap - 1);
		q->len--;
	}
	free(q->v);
	memset(q, 0, sizeof(*q));
}

/* ---------------------------------------------------------------------- */
/* Sockets                                                                 */
/* ---------------------------------------------------------------------- */

/* The pending error of a socket (SO_ERROR), 0 when none. */
static int socket_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

/* Adds fd to the epoll set with `events` (EPOLLET for edge-triggered);
 * its events go to src->on_event. Returns 0 or -errno. */
static int epoll_add(struct app *app, int fd, struct source *src,
		     uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	return epoll_ctl(app->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* ---------------------------------------------------------------------- */
/* Connections                                                             */
/* ---------------------------------------------------------------------- */

static void conn_on_event(struct source *src, uint32_t events);

static struct conn *conn_new(struct app *app)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->src.on_event = conn_on_event;
	c->app = app;
	c->fd = -1;
	c->id = ++app->last_conn_id;
	c->next = app->conns;
	if (app->conns)
		app->conns->prev = c;
	app->conns = c;
	app->nconns++;
	return c;
}

/* The connection of a stream entry (the stream's user_data), or NULL for
 * a stream that has none (refused). */
static struct conn *conn_of(const struct muxring_cqe *cqe)
{
	return (struct conn *)(uintptr_t)muxring_stream_data(cqe->stream);
}

/* Records why the connection ends, unless a cause is already known. */
static void conn_set_end(struct conn *c, enum conn_end end, uint32_t code,
			 int err)
{
	if (c->end != END_NONE)
		return;
	c->end = end;
	c->end_code = code;
	c->end_err = err;
}

static void conn_print_open(const struct conn *c)
{
	if (c->app->opt.verbose)
		cli_print_line("open conn=%" PRIu64 " stream=%" PRIu32, c->id,
			   c->stream_id);
}

static void conn_print_close(const struct conn *c)
{
	char why[160];

	if (!c->app->opt.verbose)
		return;
	switch (c->end) {
	case END_NONE:
		snprintf(why, sizeof(why), "ok");
		break;
	case END_PEER_RESET:
		snprintf(why, sizeof(why), "reset code=%" PRIu32, c->end_code);
		break;
	case END_CLOSED:
		snprintf(why, sizeof(why), "closed code=%" PRIu32,
			 c->end_code);
		break;
	case END_TCP_ERROR:
		snprintf(why, sizeof(why), "tcp-error err=\"%s\"",
			 strerror(c->end_err));
		break;
	case END_CONNECT_FAILED:
		snprintf(why, sizeof(why), "connect-failed err=\"%s\"",
			 strerror(c->end_err));
		break;
	case END_OPEN_FAILED:
		snprintf(why, sizeof(why), "open-failed code=%" PRIu32,
			 c->end_code);
		break;
	}
	cli_print_line("close conn=%" PRIu64 " stream=%" PRIu32 " read=%" PRIu64
		   " written=%" PRIu64 " end=%s", c->id, c->stream_id,
		   c->bytes_read, c->bytes_written, why);
}

/* Moves a finished connection to app->dead: it is freed after the turn,
 * since epoll events harvested in this batch may still point at it. */
static void conn_bury(struct conn *c)
{
	struct app *app = c->app;

	conn_print_close(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		app->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = app->dead;
	app->dead = c;
	c->state |= CONN_DEAD;
	app->nconns--;
}

/* Closes the socket; with `rst`, so that the peer gets a reset (SO_LINGER
 * 0), not an end-of-file. Held views are useless then: released. */
static void conn_close_socket(struct conn *c, bool rst)
{
	if (c->fd >= 0) {
		if (rst) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg,
				   sizeof(lg));
		}
		close(c->fd); /* leaves the epoll set with it */
		c->fd = -1;
	}
	view_queue_clear(&c->out);
}

/* Closes the socket once both directions ended, and buries the
 * connection once the socket and the stream are both gone. */
static void conn_maybe_finish(struct conn *c)
{
	if (c->fd >= 0 && (c->state & CONN_RD_DONE) &&
	    (c->state & CONN_WR_DONE))
		conn_close_socket(c, false);
	if (c->fd < 0 && !c->stream && !(c->state & CONN_DEAD))
		conn_bury(c);
}

/* Ends the connection at once: the stream is reset with `code` (if it is
 * still there), the socket closed with a reset. */
static void conn_abort(struct conn *c, uint32_t code)
{
	if (c->stream && !(c->state & CONN_RESET_SENT)) {
		c->state |= CONN_RESET_SENT;
		muxring_stream_reset(c->stream, code);
	}
	conn_close_socket(c, true);
	conn_maybe_finish(c);
}

/* The TCP socket failed with errno err: reset the stream. */
static void conn_tcp_failed(struct conn *c, int err)
{
	conn_set_end(c, END_TCP_ERROR, 0, err);
	conn_abort(c, MUXRING_STREAM_RESET);
}

/* A stream call failed with ret (the stream was reset or closed under
 * us; its STREAM_CLOSED follows): nothing more can be tunnelled. */
static void conn_stream_failed(struct conn *c, int ret)
{
	conn_set_end(c, END_CLOSED, muxring_err_code(ret), 0);
	conn_abort(c, MUXRING_STREAM_RESET);
}

/* Puts the socket in the epoll set; it is assumed readable and writable
 * until EAGAIN says otherwise (edge-triggered). */
static int conn_attach_socket(struct conn *c, int fd)
{
	int one = 1, ret;

	c->fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ret = epoll_add(c->app, fd, &c->src,
			EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
	if (ret < 0)
		return ret;
	c->state |= CONN_CAN_READ | CONN_CAN_WRITE;
	return 0;
}

/* ---- socket -> stream ----------------------------------------------- */

static bool conn_wants_read(const struct conn *c)
{
	return c->fd >= 0 && c->stream && (c->state & CONN_CAN_READ) &&
	       !(c->state & (CONN_CONNECTING | CONN_RD_DONE |
			     CONN_RESET_SENT)) &&
	       c->unsent < MAX_UNSENT;
}

/* The socket's end-of-file: half-close the stream. */
static void conn_read_eof(struct conn *c)
{
	int ret;

	c->state |= CONN_RD_DONE;
	ret = muxring_stream_close_write(c->stream);
	if (ret < 0) {
		conn_stream_failed(c, ret);
		return;
	}
	conn_maybe_finish(c);
}

/* recv() returned n <= 0 (errno in err when n < 0). */
static void conn_read_stopped(struct conn *c, ssize_t n, int err)
{
	if (n == 0)
		conn_read_eof(c);
	else if (err == EAGAIN || err == EWOULDBLOCK)
		c->state &= ~CONN_CAN_READ;
	else if (err != EINTR)
		conn_tcp_failed(c, err);
}

/* Writes n bytes just read on the stream: zero-copy from an arena
 * buffer, else a copy of the scratch buffer. Returns 0 or < 0. */
static int conn_forward(struct conn *c, void *arena, size_t n)
{
	if (arena)
		return muxring_stream_write_zc(c->stream, arena, n, n);
	return muxring_stream_write(c->stream, c->app->scratch, n, n);
}

/* One recv() from the socket, forwarded on the stream. */
static void conn_read_once(struct conn *c)
{
	struct muxring_loop *loop = c->app->loop;
	size_t cap = muxring_buf_size(loop);
	void *arena = muxring_buf_get(loop, cap);
	ssize_t n;
	int ret;

	if (arena) {
		n = recv(c->fd, arena, cap, 0);
	} else {
		n = recv(c->fd, c->app->scratch, sizeof(c->app->scratch), 0);
	}
	if (n <= 0) {
		int err = errno;

		if (arena)
			muxring_buf_put(loop, arena);
		conn_read_stopped(c, n, err);
		return;
	}
	c->bytes_read += (uint64_t)n;
	ret = conn_forward(c, arena, (size_t)n);
	if (ret < 0) {
		conn_stream_failed(c, ret);
		return;
	}
	c->unsent += (size_t)n;
}

/* Reads the socket while it has bytes and the stream has room. */
static void conn_pump_read(struct conn *c)
{
	while (conn_wants_read(c))
		conn_read_once(c);
}

/* ---- stream -> socket ----------------------------------------------- */

/* One sendmsg() of the held views. */
static void conn_write_once(struct conn *c)
{
	struct iovec iov[IOV_BATCH];
	struct msghdr msg;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = (size_t)view_queue_iov(&c->out, iov, IOV_BATCH);
	n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			c->state &= ~CONN_CAN_WRITE;
		else if (errno != EINTR)
			conn_tcp_failed(c, errno);
		return;
	}
	c->bytes_written += (uint64_t)n;
	view_queue_consume(&c->out, (size_t)n);
}

/* After the stream's EOF, once every held byte is written: SHUT_WR. */
static void conn_pass_eof(struct conn *c)
{
	if (shutdown(c->fd, SHUT_WR) < 0) {
		conn_tcp_failed(c, errno);
		return;
	}
	c->state |= CONN_WR_DONE;
	conn_maybe_finish(c);
}

/* Writes held views while the socket takes them; passes the EOF on. */
static void conn_flush(struct conn *c)
{
	if (c->state & CONN_CONNECTING)
		return;
	while (c->fd >= 0 && (c->state & CONN_CAN_WRITE) && c->out.len)
		conn_write_once(c);
	if (c->fd >= 0 && !c->out.len && (c->state & CONN_STREAM_EOF) &&
	    !(c->state & CONN_WR_DONE))
		conn_pass_eof(c);
}

/* ---- exit side: connecting to the target ---------------------------- */

/* Starts connecting to the next target address; when none is left, the
 * stream is refused with the last error. */
static void conn_connect_next(struct conn *c, int last_err)
{
	while (c->next_addr) {
		const struct addrinfo *ai = c->next_addr;
		int fd, ret;

		c->next_addr = ai->ai_next;
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			last_err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
		    errno != EINPROGRESS) {
			last_err = errno;
			close(fd);
			continue;
		}
		c->state |= CONN_CONNECTING;
		ret = conn_attach_socket(c, fd);
		if (ret < 0) {
			c->state &= ~CONN_CONNECTING;
			conn_tcp_failed(c, -ret);
		}
		return; /* the epoll edge tells the result */
	}
	conn_set_end(c, END_CONNECT_FAILED, 0, last_err);
	conn_abort(c, MUXRING_STREAM_REFUSED);
}

/* An event on a connecting socket: connected, or try the next address. */
static void conn_connect_done(struct conn *c, uint32_t events)
{
	int err;

	if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		return; /* still connecting */
	err = socket_error(c->fd);
	if (!err) {
		c->state &= ~CONN_CONNECTING;
		conn_flush(c);
		conn_pump_read(c);
		return;
	}
	close(c->fd);
	c->fd = -1;
	c->state &= ~(CONN_CONNECTING | CONN_CAN_READ | CONN_CAN_WRITE);
	conn_connect_next(c, err);
}

/* ---- events --------------------------------------------------------- */

static void conn_on_event(struct source *src, uint32_t events)
{
	struct conn *c = container_of(src, struct conn, src);

	if (c->fd < 0)
		return; /* closed earlier in this batch */
	if (c->state & CONN_CONNECTING) {
		conn_connect_done(c, events);
		return;
	}
	if (events & EPOLLERR) {
		int err = socket_error(c->fd);

		conn_tcp_failed(c, err ? err : ECONNRESET);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
		c->state |= CONN_CAN_READ;
	if (events & (EPOLLOUT | EPOLLHUP))
		c->state |= CONN_CAN_WRITE;
	conn_flush(c);
	conn_pump_read(c);
}

/* DATA: hold the view until its bytes are in the socket. */
static void conn_on_data(struct conn *c, struct muxring_cqe *cqe)
{
	if (!c || c->fd < 0) {
		muxring_view_release(&cqe->view);
		return;
	}
	if (view_queue_push(&c->out, &cqe->view) < 0) {
		muxring_view_release(&cqe->view);
		conn_set_end(c, END_CLOSED, MUXRING_INTERNAL_ERROR, 0);
		conn_abort(c, MUXRING_INTERNAL_ERROR);
		return;
	}
	conn_flush(c);
}

static void conn_on_eof(struct conn *c)
{
	if (!c)
		return;
	c->state |= CONN_STREAM_EOF;
	if (c->fd >= 0)
		conn_flush(c);
}

static void conn_on_write_done(struct conn *c, const struct muxring_cqe *cqe)
{
	if (!c)
		return;
	c->unsent -= (size_t)cqe->user_data;
	conn_pump_read(c);
}

/* The stream's last entry. A clean end lets the socket finish on its own
 * (views may still be waiting for it); any other end aborts it. */
static void conn_on_stream_closed(struct conn *c,
				  const struct muxring_cqe *cqe)
{
	if (!c)
		return;
	c->stream = NULL;
	if (cqe->code != MUXRING_NO_ERROR) {
		conn_set_end(c, (cqe->flags & MUXRING_CQE_F_REMOTE)
					? END_PEER_RESET : END_CLOSED,
			     cqe->code, 0);
		conn_close_socket(c, true);
	} else if (!(c->state & CONN_RD_DONE)) {
		/* Cannot happen (we never close a stream whole); the
		 * socket's bytes would have nowhere to go. */
		conn_set_end(c, END_CLOSED, MUXRING_NO_ERROR, 0);
		conn_close_socket(c, true);
	}
	conn_maybe_finish(c);
}

/* ---------------------------------------------------------------------- */
/* Sessions                                                                */
/* ---------------------------------------------------------------------- */

static struct sess *sess_new(struct app *app)
{
	struct sess *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->app = app;
	s->next = app->sessions;
	if (app->sessions)
		app->sessions->prev = s;
	app->sessions = s;
	return s;
}

static void sess_free(struct sess *s)
{
	struct app *app = s->app;

	if (s->prev)
		s->prev->next = s->next;
	else
		app->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

static struct sess *sess_of(const struct muxring_cqe *cqe)
{
	return (struct sess *)(uintptr_t)muxring_session_data(cqe->session);
}

/* Ends the session: GOAWAY(NoError), then the orderly shutdown. */
static void sess_close(struct sess *s)
{
	if (s->closing)
		return;
	s->closing = true;
	muxring_session_close(s->ms, MUXRING_NO_ERROR, STOP_DEBUG,
			      strlen(STOP_DEBUG));
}

/* The options of every session: room for --max-conns streams at once,
 * and TLS with --tls. */
static void session_opts(const struct app *app,
			 struct muxring_session_opts *so)
{
	memset(so, 0, sizeof(*so));
	so->max_streams = app->opt.max_conns + SESSION_SLACK;
	so->accept_backlog = app->opt.max_conns + SESSION_SLACK;
	if (app->tls)
		muxring_tls_apply(app->tls, so);
}

/* ---------------------------------------------------------------------- */
/* Entry side                                                              */
/* ---------------------------------------------------------------------- */

/* The tunnel's one session (entry side), NULL once it ended. */
static struct sess *entry_session(const struct app *app)
{
	return app->sessions;
}

/* A TCP connection was accepted: open its stream and start copying. */
static void entry_conn_start(struct app *app, int fd)
{
	struct conn *c = conn_new(app);
	int ret;

	if (!c) {
		cli_print_line("muxtun: out of memory");
		close(fd);
		return;
	}
	ret = conn_attach_socket(c, fd);
	if (ret < 0) {
		conn_print_open(c);
		conn_tcp_failed(c, -ret);
		return;
	}
	ret = muxring_stream_open(entry_session(app)->ms, (uintptr_t)c,
				  &c->stream);
	if (ret < 0) {
		c->stream = NULL;
		conn_print_open(c);
		conn_set_end(c, END_OPEN_FAILED, muxring_err_code(ret), 0);
		conn_abort(c, 0);
		return;
	}
	c->stream_id = muxring_stream_id(c->stream);
	conn_print_open(c);
	/* An empty write: the SYN leaves now, not with the client's first
	 * bytes, so the exit side connects to a service that speaks first. */
	ret = muxring_stream_write(c->stream, NULL, 0, 0);
	if (ret < 0) {
		conn_stream_failed(c, ret);
		return;
	}
	conn_pump_read(c);
}

static bool tcp_listener_may_accept(const struct app *app)
{
	const struct tcp_listener *tl = &app->tl;

	return tl->fd >= 0 && tl->started && tl->pending && !app->stopping &&
	       entry_session(app) && app->nconns < app->opt.max_conns;
}

/* Accepts what waits, up to --max-conns connections at once. */
static void tcp_listener_accept(struct app *app)
{
	struct tcp_listener *tl = &app->tl;

	while (tcp_listener_may_accept(app)) {
		int fd = accept4(tl->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			entry_conn_start(app, fd);
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			tl->pending = false;
		} else if (errno != EINTR && errno != ECONNABORTED) {
			/* EMFILE and friends: leave it pending; a closing
			 * connection tries again. */
			cli_print_line("muxtun: accept: %s", strerror(errno));
			return;
		}
	}
}

static void tcp_listener_on_event(struct source *src, uint32_t events)
{
	struct tcp_listener *tl = container_of(src, struct tcp_listener, src);
	struct app *app = container_of(tl, struct app, tl);

	(void)events;
	tl->pending = true;
	tcp_listener_accept(app);
}

static void tcp_listener_close(struct app *app)
{
	if (app->tl.fd >= 0)
		close(app->tl.fd);
	app->tl.fd = -1;
}

/* Binds and listens (not yet accepting: that starts when the session is
 * up). Returns 0, or -1 after printing why. */
static int tcp_listener_open(struct app *app)
{
	struct tcp_listener *tl = &app->tl;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addrinfo *ai;
	int one = 1, fd, ret;

	ret = cli_resolve_tcp(app->opt.bind, app->opt.listen_port, &ai);
	if (ret) {
		cli_print_line("muxtun: cannot resolve %s: %s", app->opt.bind,
			   gai_strerror(ret));
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, SOMAXCONN) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		cli_print_line("muxtun: cannot listen on %s port %s: %s",
			   app->opt.bind, app->opt.listen_port,
			   strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	tl->fd = fd;
	tl->src.on_event = tcp_listener_on_event;
	cli_format_addr((struct sockaddr *)&ss, tl->name, sizeof(tl->name));
	return 0;
}

/* The session is up: start accepting TCP connections. */
static void tcp_listener_start(struct app *app)
{
	struct tcp_listener *tl = &app->tl;
	int ret;

	if (tl->fd < 0 || tl->started)
		return;
	ret = epoll_add(app, tl->fd, &tl->src, EPOLLIN | EPOLLET);
	if (ret < 0) {
		cli_print_line("muxtun: epoll: %s", strerror(-ret));
		app_fail(app, STATUS_FAILED);
		tcp_listener_close(app);
		return;
	}
	tl->started = true;
	tl->pending = true;
	if (app->opt.verbose)
		cli_print_line("listen %s", tl->name);
	tcp_listener_accept(app);
}

/* Entry side: bind the listening socket, dial the exit side. */
static int entry_start(struct app *app)
{
	struct muxring_session_opts so;
	struct sess *s;
	int ret;

	if (tcp_listener_open(app) < 0)
		return -1;
	s = sess_new(app);
	if (!s)
		return -1;
	session_opts(app, &so);
	ret = muxring_connect(app->loop, app->opt.host, app->opt.port, &so,
			      (uintptr_t)s, &s->ms);
	if (ret < 0) {
		cli_print_line("muxtun: cannot connect to %s port %s: %s",
			   app->opt.host, app->opt.port,
			   muxring_strerror(ret));
		sess_free(s);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Exit side                                                               */
/* ---------------------------------------------------------------------- */

/* Refuses a stream the peer opened (no connection is made for it). */
static void exit_refuse(struct app *app, struct muxring_stream *st,
			uint32_t code)
{
	muxring_stream_set_data(st, 0);
	muxring_stream_reset(st, code);
	if (app->opt.verbose)
		cli_print_line("refuse stream=%" PRIu32, muxring_stream_id(st));
}

/* The peer opened a stream: connect it to the target. */
static void exit_conn_start(struct app *app, struct muxring_stream *st)
{
	struct conn *c;

	if (app->stopping || app->nconns >= app->opt.max_conns) {
		exit_refuse(app, st, MUXRING_STREAM_REFUSED);
		return;
	}
	c = conn_new(app);
	if (!c) {
		exit_refuse(app, st, MUXRING_INTERNAL_ERROR);
		return;
	}
	c->stream = st;
	c->stream_id = muxring_stream_id(st);
	muxring_stream_set_data(st, (uintptr_t)c);
	conn_print_open(c);
	c->next_addr = app->targets;
	conn_connect_next(c, EHOSTUNREACH);
}

/* Exit side: resolve the target, listen for sessions. */
static int exit_start(struct app *app)
{
	struct muxring_session_opts so;
	int ret;

	ret = cli_resolve_tcp(app->opt.host, app->opt.port, &app->targets);
	if (ret) {
		cli_print_line("muxtun: cannot resolve %s: %s", app->opt.host,
			   gai_strerror(ret));
		return -1;
	}
	session_opts(app, &so);
	ret = muxring_listen(app->loop, app->opt.bind, app->opt.listen_port,
			     0, &so, 0, &app->ml);
	if (ret < 0) {
		cli_print_line("muxtun: cannot listen on %s port %s: %s",
			   app->opt.bind, app->opt.listen_port,
			   muxring_strerror(ret));
		return -1;
	}
	if (app->opt.verbose)
		cli_print_line(strchr(app->opt.bind, ':') ? "listen [%s]:%d"
						      : "listen %s:%d",
			   app->opt.bind, muxring_listener_port(app->ml));
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Stopping                                                                */
/* ---------------------------------------------------------------------- */

/* A signal came: stop accepting, close every session, abort every
 * connection (those with a stream are aborted by its STREAM_CLOSED). */
static void app_stop(struct app *app)
{
	struct conn *c, *next;
	struct sess *s;

	if (app->stopping)
		return;
	app->stopping = true;
	tcp_listener_close(app);
	if (app->ml && !app->ml_closing) {
		app->ml_closing = true;
		muxring_listener_close(app->ml);
	}
	for (s = app->sessions; s; s = s->next)
		if (s->ready)
			sess_close(s); /* still connecting: at its READY */
	for (c = app->conns; c; c = next) {
		next = c->next;
		if (!c->stream) {
			conn_set_end(c, END_CLOSED, MUXRING_SESSION_CLOSED, 0);
			conn_abort(c, 0);
		}
	}
}

static void signal_on_event(struct source *src, uint32_t events)
{
	struct app *app = container_of(src, struct app, sig_src);
	struct signalfd_siginfo si;
	bool got = false;

	(void)events;
	while (read(app->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		got = true;
	if (got)
		app_stop(app);
}

/* SIGINT/SIGTERM go to a signalfd in the epoll set; SIGPIPE is ignored. */
static int signals_setup(struct app *app)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	app->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (app->sigfd < 0)
		return -errno;
	app->sig_src.on_event = signal_on_event;
	return epoll_add(app, app->sigfd, &app->sig_src, EPOLLIN);
}

/* ---------------------------------------------------------------------- */
/* Completion entries                                                      */
/* ---------------------------------------------------------------------- */

#define EPOLL_WATCH 1u /* user_data of the epoll descriptor's watch */

/* Watches the epoll set on the ring, once (re-armed after each firing). */
static void epoll_watch(struct app *app)
{
	int ret = muxring_poll_fd(app->loop, app->epfd, POLLIN, EPOLL_WATCH);

	if (ret < 0) {
		cli_print_line("muxtun: watching sockets: %s",
			   muxring_strerror(ret));
		app_fail(app, STATUS_FAILED);
		app->failed = true;
	}
}

/* The epoll set is ready: handle every event, then watch it again. */
static void on_poll(struct app *app, const struct muxring_cqe *cqe)
{
	struct epoll_event ev[EPOLL_BATCH];
	int i, n;

	if (cqe->res < 0) {
		if (cqe->res != -ECANCELED) {
			cli_print_line("muxtun: watching sockets: %s",
				   strerror((int)-cqe->res));
			app_fail(app, STATUS_FAILED);
			app->failed = true;
		}
		return;
	}
	do {
		n = epoll_wait(app->epfd, ev, EPOLL_BATCH, 0);
		for (i = 0; i < n; i++) {
			struct source *src = ev[i].data.ptr;

			src->on_event(src, ev[i].events);
		}
	} while (n == EPOLL_BATCH);
	epoll_watch(app);
}

static void on_session_ready(struct app *app, struct muxring_cqe *cqe)
{
	struct sess *s;

	if (cqe->listener) { /* exit side: a session was accepted */
		s = sess_new(app);
		if (!s) {
			muxring_session_close(cqe->session,
					      MUXRING_INTERNAL_ERROR, NULL, 0);
			return; /* its SESSION_ENDED finds no sess */
		}
		s->ms = cqe->session;
		muxring_session_set_data(cqe->session, (uintptr_t)s);
	} else {
		s = sess_of(cqe);
	}
	if (cqe->res < 0) {
		/* The dial (entry side) or the TLS handshake failed:
		 * SESSION_ENDED follows and says why. */
		s->ready_error = (int)cqe->res;
		return;
	}
	s->ready = true;
	if (app->opt.verbose)
		cli_print_line("session open");
	if (app->stopping) {
		sess_close(s);
		return;
	}
	if (app->opt.mode == MODE_ENTRY)
		tcp_listener_start(app);
}

/* Whether the end of the entry side's session was a failure. */
static bool entry_session_lost(const struct app *app,
			       const struct muxring_cqe *cqe)
{
	if (app->stopping)
		return false;
	/* The exit side said goodbye cleanly (it was stopped). */
	return !((cqe->flags & MUXRING_CQE_F_REMOTE) &&
		 cqe->code == MUXRING_NO_ERROR);
}

/*
 * A session that failed to start (dial, TLS handshake, verification) or
 * whose TLS failed later: one line naming the cause. The entry side has
 * lost its tunnel (exit 3, or 1 when the session had been running); the
 * exit side goes on serving. Returns true when it was such a session.
 */
static bool report_failure(struct app *app, struct sess *s,
			   const struct muxring_cqe *cqe)
{
	bool tls_text = muxring_session_filter(cqe->session) && cqe->res < 0 &&
			!(cqe->flags & MUXRING_CQE_F_REMOTE) && cqe->view.len;

	if (!tls_text && !s->ready_error)
		return false;
	if (tls_text)
		cli_print_line("muxtun: %.*s", (int)cqe->view.len,
			   (const char *)cqe->view.data);
	else
		cli_print_line("muxtun: cannot connect to %s port %s: %s",
			   app->opt.host, app->opt.port,
			   muxring_strerror(s->ready_error));
	if (app->opt.mode == MODE_ENTRY) {
		tcp_listener_close(app);
		app_fail(app, !s->ready_error && s->ready &&
				      !muxring_tls_handshake_failed(cqe->session)
			      ? STATUS_FAILED : STATUS_CONNECT);
	}
	return true;
}

static void on_session_ended(struct app *app, struct muxring_cqe *cqe)
{
	struct sess *s = sess_of(cqe);

	if (!s)
		return; /* refused for want of memory */
	if (report_failure(app, s, cqe)) {
		sess_free(s);
		return;
	}
	if (s->ready && app->opt.verbose)
		cli_print_line("session close err=\"%s\"",
			   muxring_strerror((int)cqe->res));
	if (app->opt.mode == MODE_ENTRY) {
		/* The tunnel is gone: no more connections. */
		tcp_listener_close(app);
		if (s->ready && entry_session_lost(app, cqe)) {
			cli_print_line("muxtun: the session ended: %s",
				   muxring_strerror((int)cqe->res));
			app_fail(app, STATUS_FAILED);
		}
	}
	sess_free(s);
}

static void on_stream_accepted(struct app *app, struct muxring_cqe *cqe)
{
	if (app->opt.mode == MODE_EXIT)
		exit_conn_start(app, cqe->stream);
	else /* the exit side opens no streams */
		exit_refuse(app, cqe->stream, MUXRING_STREAM_REFUSED);
}

static void on_listener_closed(struct app *app, struct muxring_cqe *cqe)
{
	app->ml = NULL;
	if (cqe->res < 0) {
		cli_print_line("muxtun: listener failed: %s",
			   muxring_strerror((int)cqe->res));
		app_fail(app, STATUS_FAILED);
		app_stop(app);
	}
}

static void handle_cqe(struct app *app, struct muxring_cqe *cqe)
{
	switch (cqe->type) {
	case MUXRING_CQE_POLL:
		on_poll(app, cqe);
		break;
	case MUXRING_CQE_DATA:
		conn_on_data(conn_of(cqe), cqe);
		break;
	case MUXRING_CQE_EOF:
		conn_on_eof(conn_of(cqe));
		break;
	case MUXRING_CQE_WRITE_DONE:
		conn_on_write_done(conn_of(cqe), cqe);
		break;
	case MUXRING_CQE_STREAM_CLOSED:
		conn_on_stream_closed(conn_of(cqe), cqe);
		break;
	case MUXRING_CQE_STREAM_ACCEPTED:
		on_stream_accepted(app, cqe);
		break;
	case MUXRING_CQE_SESSION_READY:
		on_session_ready(app, cqe);
		break;
	case MUXRING_CQE_SESSION_ENDED:
		on_session_ended(app, cqe);
		break;
	case MUXRING_CQE_GOAWAY:
		/* Entry side: the exit side is going; no new streams. */
		if (app->opt.mode == MODE_ENTRY)
			tcp_listener_close(app);
		break;
	case MUXRING_CQE_LISTENER_CLOSED:
		on_listener_closed(app, cqe);
		break;
	default: /* DEADLINE, HEARTBEAT: none are set up */
		break;
	}
}

/* ---------------------------------------------------------------------- */
/* The loop                                                                */
/* ---------------------------------------------------------------------- */

/* Frees the connections buried during the turn. A closed one may make
 * room under --max-conns: accept what waits. */
static void app_free_dead(struct app *app)
{
	bool freed = app->dead != NULL;

	while (app->dead) {
		struct conn *c = app->dead;

		app->dead = c->next;
		view_queue_clear(&c->out);
		free(c);
	}
	if (freed)
		tcp_listener_accept(app);
}

/* Handles every ready entry. */
static void app_drain(struct app *app)
{
	struct muxring_cqe *cqes[64];
	unsigned i, n;

	while ((n = muxring_peek_batch_cqe(app->loop, cqes, 64))) {
		for (i = 0; i < n; i++)
			handle_cqe(app, cqes[i]);
		muxring_cq_advance(app->loop, n);
	}
}

static bool app_finished(const struct app *app)
{
	return app->failed || (!app->sessions && app->tl.fd < 0 && !app->ml &&
			       !app->conns);
}

static int app_run(struct app *app)
{
	epoll_watch(app);
	while (!app_finished(app)) {
		int ret = muxring_submit_and_wait(app->loop, 1, -1);

		if (ret < 0 && ret != -EINTR && ret != -ETIME) {
			cli_print_line("muxtun: loop: %s", muxring_strerror(ret));
			app_fail(app, STATUS_FAILED);
			break;
		}
		app_drain(app);
		app_free_dead(app);
	}
	return app->status;
}

/* Frees what is left (only after a failure of the loop: normally every
 * connection and session has ended), then the loop. */
static void app_cleanup(struct app *app)
{
	while (app->conns) {
		struct conn *c = app->conns;

		c->stream = NULL;
		conn_close_socket(c, true);
		conn_bury(c);
	}
	app_free_dead(app);
	muxring_loop_destroy(app->loop);
	while (app->sessions)
		sess_free(app->sessions);
	tcp_listener_close(app);
	if (app->targets)
		freeaddrinfo(app->targets);
	if (app->sigfd >= 0)
		close(app->sigfd);
	if (app->epfd >= 0)
		close(app->epfd);
	muxring_tls_free(app->tls);
}

/* --tls: the configuration every session uses. Returns 0 or an exit
 * status (message printed). */
static int app_tls(struct app *app)
{
	bool server = app->opt.mode == MODE_EXIT;

	if (!app->opt.tls.on)
		return 0;
	if (app->opt.tls.opts.flags & MUXRING_TLS_INSECURE)
		cli_print_line("muxtun: warning: --insecure: the exit side's "
			   "identity is not verified");
	if (muxring_tls_new(&app->tls, server ? MUXRING_SERVER : MUXRING_CLIENT,
			    &app->opt.tls.opts) < 0) {
		cli_print_line("muxtun: TLS: %s", muxring_tls_new_error());
		return STATUS_USAGE;
	}
	return 0;
}

/* The epoll set, the signals and the loop. Returns 0 or -1 (printed). */
static int app_init(struct app *app)
{
	int ret;

	app->tl.fd = app->sigfd = -1;
	app->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (app->epfd < 0) {
		cli_print_line("muxtun: epoll: %s", strerror(errno));
		return -1;
	}
	ret = signals_setup(app);
	if (ret < 0) {
		cli_print_line("muxtun: signals: %s", strerror(-ret));
		return -1;
	}
	ret = muxring_loop_create(&app->loop, NULL);
	if (ret < 0) {
		cli_print_line("muxtun: %s", muxring_loop_create_error());
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct app app; /* static: it holds the scratch buffer */
	int ret;

	cli_set_program("muxtun");
	ret = parse_options(argc, argv, &app.opt);
	if (ret)
		return ret < 0 ? STATUS_OK : ret;
	if (app_init(&app) < 0) {
		app_cleanup(&app);
		return STATUS_FAILED;
	}
	ret = app_tls(&app);
	if (ret) {
		app_cleanup(&app);
		return ret;
	}
	ret = app.opt.mode == MODE_ENTRY ? entry_start(&app)
					 : exit_start(&app);
	if (ret < 0) {
		app_cleanup(&app);
		return STATUS_CONNECT;
	}
	ret = app_run(&app);
	app_cleanup(&app);
	return ret;
}
