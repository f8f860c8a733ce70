/*
 * test_muxcat.c - tools/muxcat as a program: client against server over
 * loopback TCP, in each mode, through its fixed command-line interface.
 *
 * Runs the sanitizer build $MUXRING_BUILD_DIR/muxcat (set by `make test`;
 * build/asan/muxcat when unset) as child processes with pipes on stdin,
 * stdout and stderr, and checks exit statuses, outputs and the exact -v
 * lines.
 *
 * Covers: -h and usage errors (exit 2), numbers in decimal and 0x,
 * connection refused (exit 3); the default mode in both directions at once
 * (different data each way, through the pipes) and with empty input; echo
 * with --load 200 x 10 KiB (the JSON line); --load from the server side
 * against a client in -e mode; -v accept / goaway / end lines with
 * --close-code and a --close-debug text that needs escaping; -v reset lines
 * and exit 1 when --load meets a default-mode server that refuses all but
 * one stream; -k serving two sessions in a row (20 streams x 3000 bytes,
 * then 1000 concurrent streams x 1 KiB), then SIGTERM ending a live session
 * with the close code; SIGINT on a client ending the session with
 * GOAWAY(C, STR); typed sessions (--type) both ways with the accept line's
 * type; --heartbeat (rtt_us lines both ways, no failure); -vv (trace
 * lines of every frame). TLS (certificates
 * made at test time, tls_certs.c): --load over TLS verifying the host
 * argument (an IP) and an --sni name; mutual TLS with and without the
 * client certificate; a wrong CA, an expired certificate and a name
 * mismatch, each exiting 3 with one line naming the cause; --insecure and
 * its warning; the TLS usage errors.
 *
 * Servers get a port that was free a moment ago (bind port 0); a server
 * that lost the race (exit 3, "in use") is started again on another port.
 * A server is ready when its port shows up in LISTEN state in
 * /proc/net/tcp, so no probe connection is used up. Nothing waits without
 * a limit: every pump has a deadline, alarm() guards each test, and the
 * teardown kills what is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "local_port.h"
#include "tls_certs.h"

#define HOST "127.0.0.1"
#define TEST_ALARM_S 50        /* a whole test, at most */
#define RUN_MS 20000           /* one pump, at most */
#define MAX_PROCS 8
#define MAX_ARGS 32

/* ---------------------------------------------------------------------- */
/* Child processes                                                         */
/* ---------------------------------------------------------------------- */

struct obuf {
	char *p;    /* NUL-terminated */
	size_t len;
	size_t cap;
};

struct proc {
	pid_t pid;         /* 0 when not started */
	int in_fd;         /* its stdin (our write end); -1 once closed */
	int out_fd, err_fd;/* its stdout/stderr (our read ends); -1 at EOF */
	const uint8_t *in; /* what to feed on stdin */
	size_t in_len, in_off;
	bool hold_stdin;   /* keep stdin open after feeding `in` */
	struct obuf out, err;
	bool exited;
	int status;        /* exit code, or 128 + signal */
};

/* Children live here, not on a test's stack: the teardown still reaches
 * them after a failed assertion has left the test function. */
static struct proc pool[MAX_PROCS];
static bool pool_used[MAX_PROCS];

static void obuf_add(struct obuf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static const char *muxcat_path(void)
{
	static char path[4096];
	const char *dir = getenv("MUXRING_BUILD_DIR");

	snprintf(path, sizeof(path), "%s/muxcat", dir ? dir : "build/asan");
	return path;
}

static struct proc *proc_alloc(void)
{
	for (int i = 0; i < MAX_PROCS; i++) {
		if (!pool_used[i]) {
			pool_used[i] = true;
			memset(&pool[i], 0, sizeof(pool[i]));
			pool[i].in_fd = pool[i].out_fd = pool[i].err_fd = -1;
			return &pool[i];
		}
	}
	fail_msg("too many child processes");
	return NULL;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Kills (if still running), reaps and frees p. */
static void proc_cleanup(struct proc *p)
{
	if (p->pid > 0 && !p->exited) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->exited = true;
	}
	close_fd(&p->in_fd);
	close_fd(&p->out_fd);
	close_fd(&p->err_fd);
	free(p->out.p);
	free(p->err.p);
	memset(&p->out, 0, sizeof(p->out));
	memset(&p->err, 0, sizeof(p->err));
	pool_used[p - pool] = false;
}

/* SIGALRM: the test hangs. Kill every child and give up loudly. */
static void on_alarm(int sig)
{
	static const char msg[] = "test_muxcat: test timed out, killing "
				  "children\n";

	(void)sig;
	for (int i = 0; i < MAX_PROCS; i++)
		if (pool_used[i] && pool[i].pid > 0 && !pool[i].exited)
			kill(pool[i].pid, SIGKILL);
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

/*
 * Starts muxcat with args (NULL-terminated; "{port}" is replaced by port).
 * Its stdin gets `in` (in_len bytes) and is then closed, unless hold_stdin.
 */
static struct proc *proc_start(const char *const *args, int port,
			       const void *in, size_t in_len, bool hold_stdin)
{
	struct proc *p = proc_alloc();
	const char *argv[MAX_ARGS];
	char portstr[16];
	int pin[2], pout[2], perr[2];
	int n = 0;

	snprintf(portstr, sizeof(portstr), "%d", port);
	argv[n++] = muxcat_path();
	for (; *args; args++) {
		assert_true(n < MAX_ARGS - 1);
		argv[n++] = strcmp(*args, "{port}") ? *args : portstr;
	}
	argv[n] = NULL;
	assert_int_equal(pipe2(pin, O_CLOEXEC), 0);
	assert_int_equal(pipe2(pout, O_CLOEXEC), 0);
	assert_int_equal(pipe2(perr, O_CLOEXEC), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		dup2(pin[0], STDIN_FILENO);
		dup2(pout[1], STDOUT_FILENO);
		dup2(perr[1], STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	p->in_fd = pin[1];
	p->out_fd = pout[0];
	p->err_fd = perr[0];
	fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
	p->in = in;
	p->in_len = in_len;
	p->hold_stdin = hold_stdin;
	obuf_add(&p->out, "", 0);
	obuf_add(&p->err, "", 0);
	if (!in_len && !hold_stdin)
		close_fd(&p->in_fd);
	return p;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool proc_done(const struct proc *p)
{
	return p->exited && p->out_fd < 0 && p->err_fd < 0;
}

static void proc_reap(struct proc *p)
{
	int st;

	if (p->exited || waitpid(p->pid, &st, WNOHANG) != p->pid)
		return;
	p->exited = true;
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	close_fd(&p->in_fd);
}

/* Reads what fd has into b; closes it at EOF. */
static void drain_fd(int *fd, struct obuf *b)
{
	char buf[65536];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n > 0)
		obuf_add(b, buf, (size_t)n);
	else if (n == 0 || (errno != EINTR && errno != EAGAIN))
		close_fd(fd);
}

static void feed_stdin(struct proc *p)
{
	ssize_t n = write(p->in_fd, p->in + p->in_off, p->in_len - p->in_off);

	if (n > 0)
		p->in_off += (size_t)n;
	else if (n < 0 && errno != EAGAIN && errno != EINTR)
		close_fd(&p->in_fd); /* EPIPE: it stopped reading */
	if (p->in_fd >= 0 && p->in_off == p->in_len && !p->hold_stdin)
		close_fd(&p->in_fd);
}

typedef bool (*pump_until)(void *arg);

/*
 * Moves bytes between the children in ps[0..n) and their pipes for at most
 * ms milliseconds: until until(arg) holds, or (until NULL) every child has
 * exited and closed its outputs. Returns whether that happened in time.
 */
static bool pump(struct proc **ps, int n, int ms, pump_until until, void *arg)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	for (;;) {
		struct pollfd pfd[3 * MAX_PROCS];
		struct proc *owner[3 * MAX_PROCS];
		int kind[3 * MAX_PROCS];
		bool all_done = true;
		int nfd = 0;
		uint64_t now;

		for (int i = 0; i < n; i++) {
			struct proc *p = ps[i];

			proc_reap(p);
			all_done &= proc_done(p);
			if (p->in_fd >= 0 && p->in_off < p->in_len) {
				pfd[nfd] = (struct pollfd){ p->in_fd, POLLOUT,
							    0 };
				owner[nfd] = p;
				kind[nfd++] = 0;
			}
			if (p->out_fd >= 0) {
				pfd[nfd] = (struct pollfd){ p->out_fd, POLLIN,
							    0 };
				owner[nfd] = p;
				kind[nfd++] = 1;
			}
			if (p->err_fd >= 0) {
				pfd[nfd] = (struct pollfd){ p->err_fd, POLLIN,
							    0 };
				owner[nfd] = p;
				kind[nfd++] = 2;
			}
		}
		if (until ? until(arg) : all_done)
			return true;
		now = now_ms();
		if (now >= end)
			return false;
		/* Short waits: exits are noticed by polling waitpid. */
		poll(pfd, (nfds_t)nfd, 10);
		for (int i = 0; i < nfd; i++) {
			struct proc *p = owner[i];

			if (!pfd[i].revents)
				continue;
			if (kind[i] == 0)
				feed_stdin(p);
			else if (kind[i] == 1)
				drain_fd(&p->out_fd, &p->out);
			else
				drain_fd(&p->err_fd, &p->err);
		}
	}
}

/* Dumps a child's outputs (on failure, to see why). */
static void proc_dump(const char *name, const struct proc *p)
{
	fprintf(stderr, "--- %s: exited=%d status=%d\n--- stderr:\n%s\n"
		"--- stdout (%zu bytes): %.400s\n", name, p->exited, p->status,
		p->err.p ? p->err.p : "", p->out.len, p->out.p ? p->out.p : "");
}

/* Waits for every child in ps to finish; fails the test on timeout. */
static void wait_all(struct proc **ps, int n)
{
	if (pump(ps, n, RUN_MS, NULL, NULL))
		return;
	for (int i = 0; i < n; i++)
		proc_dump("child", ps[i]);
	fail_msg("children did not finish within %d ms", RUN_MS);
}

/* Waits for a server and its client to finish. */
static void wait_pair(struct proc *srv, struct proc *cli)
{
	struct proc *both[] = { srv, cli };

	wait_all(both, 2);
}

/* Asserts how p ended, and that no sanitizer complained. */
static void expect_exit(const char *name, const struct proc *p, int status)
{
	if (p->status != status || strstr(p->err.p, "Sanitizer") ||
	    strstr(p->err.p, "runtime error")) {
		proc_dump(name, p);
		fail_msg("%s: exit status %d, expected %d (or a sanitizer "
			 "report)", name, p->status, status);
	}
}

static void expect_in(const char *name, const struct proc *p,
		      const char *text, const char *what)
{
	if (!strstr(text, what)) {
		proc_dump(name, p);
		fail_msg("%s: missing \"%s\"", name, what);
	}
}

/* Runs muxcat alone to completion (stdin empty). */
static struct proc *run_alone(const char *const *args, int port)
{
	struct proc *p = proc_start(args, port, NULL, 0, false);

	wait_all(&p, 1);
	return p;
}

/* ---------------------------------------------------------------------- */
/* Ports and servers                                                       */
/* ---------------------------------------------------------------------- */

struct listen_wait {
	struct proc *p;
	int port;
};

static bool listening_or_exited(void *arg)
{
	struct listen_wait *w = arg;

	proc_reap(w->p);
	return w->p->exited || lp_listening(w->port);
}

/*
 * Starts a muxcat server (args hold "{port}") on a free port and waits until
 * it listens. Returns the port.
 */
static struct proc *start_server(const char *const *args, const void *in,
				 size_t in_len, bool hold_stdin, int *port)
{
	for (int attempt = 0; attempt < 10; attempt++) {
		struct listen_wait w = { NULL, lp_free_port() };
		struct proc *p = proc_start(args, w.port, in, in_len,
					    hold_stdin);

		w.p = p;
		if (!pump(&p, 1, RUN_MS, listening_or_exited, &w))
			fail_msg("server did not start listening");
		if (!p->exited) {
			*port = w.port;
			return p;
		}
		wait_all(&p, 1);
		if (p->status != 3 || !strstr(p->err.p, "in use")) {
			proc_dump("server", p);
			fail_msg("server exited before listening");
		}
		proc_cleanup(p); /* lost the port race: try another */
	}
	fail_msg("no free port found");
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Helpers for the checks                                                  */
/* ---------------------------------------------------------------------- */

static uint8_t *random_bytes(size_t n, uint32_t seed)
{
	uint8_t *b = malloc(n ? n : 1);
	uint32_t x = seed | 1;

	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)x;
	}
	return b;
}

/* Parses the --load JSON line exactly; checks its counts. */
static void expect_load_json(const struct proc *p, unsigned streams,
			     unsigned long long size)
{
	unsigned n, ok, failed;
	unsigned long long bytes;
	double secs;
	int end = 0;

	if (sscanf(p->out.p,
		   "{\"streams\":%u,\"ok\":%u,\"failed\":%u,\"bytes\":%llu,"
		   "\"seconds\":%lf}\n%n",
		   &n, &ok, &failed, &bytes, &secs, &end) != 5 ||
	    (size_t)end != p->out.len) {
		proc_dump("load", p);
		fail_msg("bad JSON line");
	}
	assert_int_equal(n, streams);
	assert_int_equal(ok, streams);
	assert_int_equal(failed, 0);
	assert_int_equal(bytes, streams * size);
	assert_true(secs >= 0 && secs < 60);
}

/* Counts the lines of text that start with prefix. */
static int count_lines(const char *text, const char *prefix)
{
	size_t plen = strlen(prefix);
	int n = 0;

	for (const char *l = text; *l; ) {
		const char *nl = strchr(l, '\n');

		if (!strncmp(l, prefix, plen))
			n++;
		if (!nl)
			break;
		l = nl + 1;
	}
	return n;
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */
/* ---------------------------------------------------------------------- */

static int setup(void **state)
{
	struct sigaction sa;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	alarm(TEST_ALARM_S);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	for (int i = 0; i < MAX_PROCS; i++)
		if (pool_used[i])
			proc_cleanup(&pool[i]);
	return 0;
}

static void test_help_and_usage_errors(void **state)
{
	static const char *const bad[][8] = {
		{ NULL },
		{ "-q", "h", "1", NULL },
		{ "--load", NULL },
		{ "--load", "x", HOST, "1", NULL },
		{ "--load", "0", HOST, "1", NULL },
		{ "--load", "010x", HOST, "1", NULL },
		{ "--close-code", "-1", HOST, "1", NULL },
		{ "--close-code", "0x100000000", HOST, "1", NULL },
		{ "-k", HOST, "1", NULL },
		{ "-e", "--load", "3", HOST, "1", NULL },
		{ "--size", "5", HOST, "1", NULL },
		{ "-l", "a", "1", "2", NULL },
		{ HOST, NULL },
		{ HOST, "70000", NULL },
		{ "--type", "0x1g", HOST, "1", NULL },
	};
	static const char *const help[] = { "-h", NULL };
	struct proc *p;

	(void)state;
	p = run_alone(help, 0);
	assert_int_equal(p->status, 0);
	assert_non_null(strstr(p->out.p, "muxcat [options] HOST PORT"));
	assert_non_null(strstr(p->out.p, "muxcat -l [options] [HOST] PORT"));
	assert_non_null(strstr(p->out.p, "--close-code C --close-debug STR"));
	assert_non_null(strstr(p->out.p, "--heartbeat MS"));
	proc_cleanup(p);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int st;

		p = run_alone(bad[i], 0);
		st = p->status;
		if (st != 2) {
			proc_dump("usage", p);
			fail_msg("case %zu (%s): exit %d, expected 2", i,
				 bad[i][0] ? bad[i][0] : "(no args)", st);
		}
		assert_true(p->err.len > 0);
		proc_cleanup(p);
	}
}

static void test_connection_refused_exits_3(void **state)
{
	/* Hex numbers are accepted: the command line gets as far as
	 * dialling. */
	static const char *const args[] = { "--close-code", "0x2A", "--load",
					     "0x3", HOST, "{port}", NULL };
	struct proc *p;

	(void)state;
	p = run_alone(args, lp_free_port());
	expect_exit("client", p, 3);
	expect_in("client", p, p->err.p, "refused");
	assert_int_equal(p->out.len, 0); /* no JSON without a session */
}

static void test_default_mode_both_directions(void **state)
{
	static const char *const srv_args[] = { "-l", "{port}", NULL };
	static const char *const cli_args[] = { HOST, "{port}", NULL };
	const size_t up_len = 700 * 1024 + 13, down_len = 300 * 1024 + 7;
	uint8_t *up = random_bytes(up_len, 1);
	uint8_t *down = random_bytes(down_len, 2);
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, down, down_len, false, &port);
	cli = proc_start(cli_args, port, up, up_len, false);
	wait_pair(srv, cli);
	expect_exit("server", srv, 0);
	expect_exit("client", cli, 0);
	assert_int_equal(srv->out.len, up_len);
	assert_memory_equal(srv->out.p, up, up_len);
	assert_int_equal(cli->out.len, down_len);
	assert_memory_equal(cli->out.p, down, down_len);
	free(up);
	free(down);
}

static void test_default_mode_empty_input(void **state)
{
	static const char *const srv_args[] = { "-l", HOST, "{port}", NULL };
	static const char *const cli_args[] = { HOST, "{port}", NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(cli_args, port, NULL, 0, false);
	wait_pair(srv, cli);
	expect_exit("server", srv, 0);
	expect_exit("client", cli, 0);
	assert_int_equal(srv->out.len, 0);
	assert_int_equal(cli->out.len, 0);
}

static void test_echo_with_load_200_streams(void **state)
{
	static const char *const srv_args[] = { "-l", "-e", "{port}", NULL };
	static const char *const cli_args[] = { "--load", "200", "--size",
						"10240", HOST, "{port}", NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(cli_args, port, NULL, 0, false);
	wait_pair(srv, cli);
	expect_exit("client", cli, 0);
	expect_exit("server", srv, 0); /* without -k: one session */
	expect_load_json(cli, 200, 10240);
}

static void test_load_from_the_server_side(void **state)
{
	static const char *const srv_args[] = { "-l", "--load", "64", "--size",
						"0x1388", "{port}", NULL };
	static const char *const cli_args[] = { "-e", "-v", HOST, "{port}",
						NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(cli_args, port, NULL, 0, false);
	wait_pair(srv, cli);
	expect_exit("server", srv, 0);
	expect_exit("client", cli, 0);
	expect_load_json(srv, 64, 5000);
	/* Server-opened streams have even ids. */
	expect_in("client", cli, cli->err.p, "accept id=2\n");
	expect_in("client", cli, cli->err.p, "accept id=128\n");
	assert_int_equal(count_lines(cli->err.p, "accept id="), 64);
	expect_in("client", cli, cli->err.p,
		  "goaway code=0 debug=\"no error\"\n");
}

static void test_verbose_goaway_and_end_lines(void **state)
{
	static const char *const srv_args[] = { "-l", "-e", "-v", "{port}",
						NULL };
	static const char *const cli_args[] = {
		"--load", "3", "--size", "100", "-v", "--close-code", "0x2a",
		"--close-debug", "bye \"x\"\\\x01", HOST, "{port}", NULL
	};
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(cli_args, port, NULL, 0, false);
	wait_pair(srv, cli);
	expect_exit("server", srv, 0);
	expect_exit("client", cli, 0);
	expect_load_json(cli, 3, 100);
	/* Client streams: odd ids from 3 up, as the reference numbers them. */
	expect_in("server", srv, srv->err.p, "accept id=3\n");
	expect_in("server", srv, srv->err.p, "accept id=5\n");
	expect_in("server", srv, srv->err.p, "accept id=7\n");
	expect_in("server", srv, srv->err.p,
		  "goaway code=42 debug=\"bye \\\"x\\\"\\\\\\x01\"\n");
	/* The client closed the transport after its GOAWAY: PeerEOF. */
	expect_in("server", srv, srv->err.p,
		  "end local=15 remote=42 debug=\"bye \\\"x\\\"\\\\\\x01\"\n");
	/* The client closed it itself, and the echo server sent no GOAWAY. */
	expect_in("client", cli, cli->err.p,
		  "end local=14 remote=none debug=\"\"\n");
	assert_int_equal(count_lines(cli->err.p, "accept"), 0);
}

/* pump() condition: the child's stderr (or stdout) contains a text. */
struct text_wait {
	struct obuf *buf;
	const char *text;
};

static bool text_arrived(void *arg)
{
	struct text_wait *w = arg;

	return w->buf->p && strstr(w->buf->p, w->text);
}

/* Runs server and client until buf (an output of one of them) holds text. */
static void pump_pair_until_text(struct proc *srv, struct proc *cli,
				 struct obuf *buf, const char *text)
{
	struct proc *both[] = { srv, cli };
	struct text_wait w = { buf, text };

	if (!pump(both, 2, RUN_MS, text_arrived, &w)) {
		proc_dump("server", srv);
		proc_dump("client", cli);
		fail_msg("\"%s\" did not come", text);
	}
}

static void test_load_against_default_mode_server_fails(void **state)
{
	/* The default-mode server takes the first stream (and, with empty
	 * stdin, answers it with nothing) and refuses the others: every
	 * stream fails verification, the refused ones are reset by the
	 * peer. */
	static const char *const srv_args[] = { "-l", "{port}", NULL };
	static const char *const cli_args[] = { "--load", "4", "--size", "10",
						"-v", HOST, "{port}", NULL };
	unsigned n, ok, failed;
	struct proc *srv, *cli;
	int port;

	(void)state;
	/* The server's stdin stays open until the refusals arrived: its one
	 * stream, and so its session, must not end before. */
	srv = start_server(srv_args, NULL, 0, true, &port);
	cli = proc_start(cli_args, port, NULL, 0, false);
	pump_pair_until_text(srv, cli, &cli->err, "reset id=9 code=5\n");
	close_fd(&srv->in_fd);
	wait_pair(srv, cli);
	expect_exit("server", srv, 0);
	expect_exit("client", cli, 1);
	assert_int_equal(sscanf(cli->out.p,
				"{\"streams\":%u,\"ok\":%u,\"failed\":%u,", &n,
				&ok, &failed), 3);
	assert_int_equal(n, 4);
	assert_int_equal(ok, 0);
	assert_int_equal(failed, 4);
	expect_in("client", cli, cli->err.p, "reset id=5 code=5\n");
	expect_in("client", cli, cli->err.p, "reset id=7 code=5\n");
	expect_in("client", cli, cli->err.p, "reset id=9 code=5\n");
	assert_int_equal(count_lines(cli->err.p, "reset id=3 "), 0);
	assert_memory_equal(srv->out.p, "\x00\x01\x02\x03\x04\x05\x06\x07\x08"
			    "\x09", 10); /* stream 0's bytes reached stdout */
}

static void test_keep_serves_sessions_until_sigterm(void **state)
{
	static const char *const srv_args[] = {
		"-l", "-k", "-e", "-v", "--close-code", "9", "--close-debug",
		"stop", "{port}", NULL
	};
	static const char *const load_args[2][8] = {
		{ "--load", "20", "--size", "3000", HOST, "{port}", NULL },
		{ "--load", "1000", HOST, "{port}", NULL }, /* 1 KiB each */
	};
	static const unsigned streams[2] = { 20, 1000 }, size[2] = { 3000,
								    1024 };
	static const char *const cat_args[] = { "-v", HOST, "{port}", NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	for (int round = 0; round < 2; round++) {
		cli = proc_start(load_args[round], port, NULL, 0, false);
		wait_all(&cli, 1);
		expect_exit("client", cli, 0);
		expect_load_json(cli, streams[round], size[round]);
		proc_cleanup(cli);
	}
	assert_false(srv->exited);
	/* A third session, still open when SIGTERM comes. */
	cli = proc_start(cat_args, port, "ping\n", 5, true);
	pump_pair_until_text(srv, cli, &cli->out, "ping\n");
	kill(srv->pid, SIGTERM);
	wait_pair(srv, cli);
	expect_exit("server", srv, 0);
	expect_exit("client", cli, 0);
	assert_int_equal(count_lines(srv->err.p, "end local="), 3);
	expect_in("client", cli, cli->err.p, "goaway code=9 debug=\"stop\"\n");
	expect_in("server", srv, srv->err.p,
		  "end local=14 remote=none debug=\"\"\n");
}

static void test_sigint_sends_the_close_code(void **state)
{
	static const char *const srv_args[] = { "-l", "-v", "{port}", NULL };
	static const char *const cli_args[] = { "-v", "--close-code", "7",
						"--close-debug", "user quit",
						HOST, "{port}", NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	/* Both keep stdin open: only the signal can end this session. */
	srv = start_server(srv_args, "from server\n", 12, true, &port);
	cli = proc_start(cli_args, port, "hello\n", 6, true);
	pump_pair_until_text(srv, cli, &srv->out, "hello\n");
	pump_pair_until_text(srv, cli, &cli->out, "from server\n");
	kill(cli->pid, SIGINT);
	wait_pair(srv, cli);
	expect_exit("client", cli, 0);
	expect_exit("server", srv, 0);
	expect_in("server", srv, srv->err.p, "accept id=3\n");
	expect_in("server", srv, srv->err.p,
		  "goaway code=7 debug=\"user quit\"\n");
	expect_in("server", srv, srv->err.p,
		  "end local=15 remote=7 debug=\"user quit\"\n");
	expect_in("client", cli, cli->err.p,
		  "end local=14 remote=none debug=\"\"\n");
}

static void test_typed_sessions_report_the_type(void **state)
{
	static const char *const srv_args[] = { "-l", "-e", "-v", "--type",
						"7", "{port}", NULL };
	static const char *const cli_args[] = { "--load", "2", "--size", "100",
						"--type", "0xdeadbeef", HOST,
						"{port}", NULL };
	static const char *const srv2_args[] = { "-l", "--load", "1", "--type",
						 "42", "{port}", NULL };
	static const char *const cli2_args[] = { "-e", "-v", "--type", "0",
						 HOST, "{port}", NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(cli_args, port, NULL, 0, false);
	wait_pair(srv, cli);
	expect_exit("server", srv, 0);
	expect_exit("client", cli, 0);
	expect_load_json(cli, 2, 100); /* the type never shows in the data */
	expect_in("server", srv, srv->err.p, "accept id=3 type=0xdeadbeef\n");
	expect_in("server", srv, srv->err.p, "accept id=5 type=0xdeadbeef\n");
	proc_cleanup(srv);
	proc_cleanup(cli);

	srv = start_server(srv2_args, NULL, 0, false, &port);
	cli = proc_start(cli2_args, port, NULL, 0, false);
	wait_pair(srv, cli);
	expect_exit("server", srv, 0);
	expect_exit("client", cli, 0);
	expect_load_json(srv, 1, 1024);
	expect_in("client", cli, cli->err.p, "accept id=2 type=0x0000002a\n");
}

/* pump() condition: both children printed at least two rtt_us lines. */
static bool two_beats_each(void *arg)
{
	struct proc **ps = arg;

	return count_lines(ps[0]->err.p, "rtt_us=") >= 2 &&
	       count_lines(ps[1]->err.p, "rtt_us=") >= 2;
}

static void test_heartbeat(void **state)
{
	static const char *const srv_args[] = { "-l", "-e", "--heartbeat",
						"20", "{port}", NULL };
	static const char *const cli_args[] = { "--heartbeat", "0x14", HOST,
						"{port}", NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(cli_args, port, "x", 1, true);
	struct proc *both[] = { srv, cli };

	if (!pump(both, 2, RUN_MS, two_beats_each, both)) {
		proc_dump("server", srv);
		proc_dump("client", cli);
		fail_msg("no heartbeats");
	}
	close_fd(&cli->in_fd); /* stdin ends: the echo ends, so does all */
	wait_pair(srv, cli);
	expect_exit("server", srv, 0);
	expect_exit("client", cli, 0);
	assert_int_equal(cli->out.len, 1);
	assert_int_equal(count_lines(srv->err.p, "heartbeat_failed"), 0);
	assert_int_equal(count_lines(cli->err.p, "heartbeat_failed"), 0);
}

/* -vv: the -v lines, and every frame of the session as a trace line. */
static void test_vv_traces_every_frame(void **state)
{
	static const char *const srv_args[] = { "-l", "-e", "-vv", "{port}",
						NULL };
	static const char *const cli_args[] = { HOST, "{port}", NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(cli_args, port, "hello", 5, false);
	wait_pair(srv, cli);
	expect_exit("server", srv, 0);
	expect_exit("client", cli, 0);
	assert_string_equal(cli->out.p, "hello");
	expect_in("server", srv, srv->err.p, "\tsession=1\trecv\t0\tDATA "
		  "stream=3 len=5 flags=SYN \"hello\"\n");
	expect_in("server", srv, srv->err.p, "\tsession=1\tsend\t0\tDATA "
		  "stream=3 len=5");
	expect_in("server", srv, srv->err.p, "flags=FIN");
	expect_in("server", srv, srv->err.p, "accept id=3\n");
	assert_true(count_lines(srv->err.p, "") >= 5);
	assert_null(strstr(cli->err.p, "session=1"));
}

/* ---------------------------------------------------------------------- */
/* TLS                                                                     */
/* ---------------------------------------------------------------------- */


/* stderr holds exactly one line, and it contains `what`. */
static void expect_one_line(const char *name, const struct proc *p,
			    const char *what)
{
	expect_in(name, p, p->err.p, what);
	if (count_lines(p->err.p, "") != 1) {
		proc_dump(name, p);
		fail_msg("%s: stderr is not one line", name);
	}
}

static void test_tls_load(void **state)
{
	const char *srv_args[] = { "-l", "-e", "-k", "--tls", "--cert",
				   tc_certs.server_cert, "--key",
				   tc_certs.server_key, "{port}", NULL };
	const char *by_ip[] = { "--tls", "--ca", tc_certs.ca, "--load", "50",
				"--size", "20000", HOST, "{port}", NULL };
	const char *by_name[] = { "--tls", "--ca", tc_certs.ca, "--sni",
				  "localhost", "--load", "3", "--size",
				  "300000", HOST, "{port}", NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(by_ip, port, NULL, 0, false);
	wait_all(&cli, 1);
	expect_exit("client by IP", cli, 0);
	expect_load_json(cli, 50, 20000);
	assert_int_equal(cli->err.len, 0);
	cli = proc_start(by_name, port, NULL, 0, false);
	wait_all(&cli, 1);
	expect_exit("client by name", cli, 0);
	expect_load_json(cli, 3, 300000);
	kill(srv->pid, SIGTERM);
	wait_all(&srv, 1);
	expect_exit("server", srv, 0);
}

static void test_tls_mutual(void **state)
{
	const char *srv_args[] = { "-l", "-e", "--tls", "--cert",
				   tc_certs.server_cert, "--key",
				   tc_certs.server_key, "--ca", tc_certs.ca,
				   "{port}", NULL };
	const char *with_cert[] = { "--tls", "--ca", tc_certs.ca, "--cert",
				    tc_certs.client_cert, "--key",
				    tc_certs.client_key, "--load", "10", HOST,
				    "{port}", NULL };
	const char *without[] = { "--tls", "--ca", tc_certs.ca, "--load", "10",
				  HOST, "{port}", NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(with_cert, port, NULL, 0, false);
	wait_pair(srv, cli);
	expect_exit("client", cli, 0);
	expect_exit("server", srv, 0);
	expect_load_json(cli, 10, 1024);
	proc_cleanup(srv);
	proc_cleanup(cli);

	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(without, port, NULL, 0, false);
	wait_pair(srv, cli);
	expect_exit("server", srv, 3);
	expect_one_line("server", srv, "the client sent no certificate");
	expect_exit("client", cli, 3);
	expect_one_line("client", cli, "certificate required");
}

/* A client that must refuse the server: exit 3, one line with the cause;
 * the server (one session) hears the alert and exits 3 too. */
static void tls_refused(const char *cert, const char *key, const char *ca,
			const char *sni, const char *cause)
{
	const char *srv_args[] = { "-l", "-e", "--tls", "--cert", cert, "--key",
				   key, "{port}", NULL };
	const char *cli_args[] = { "--tls", "--ca", ca, "--sni", sni, HOST,
				   "{port}", NULL };
	struct proc *srv, *cli;
	int port;

	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(cli_args, port, NULL, 0, false);
	wait_pair(srv, cli);
	expect_exit("client", cli, 3);
	expect_one_line("client", cli, cause);
	expect_exit("server", srv, 3);
	expect_one_line("server", srv, "the peer sent the TLS alert");
	assert_int_equal(cli->out.len, 0);
	proc_cleanup(srv);
	proc_cleanup(cli);
}

static void test_tls_verification_failures_exit_3(void **state)
{
	(void)state;
	tls_refused(tc_certs.server_cert, tc_certs.server_key,
		    tc_certs.other_ca,
		    "localhost", "unable to get local issuer certificate");
	tls_refused(tc_certs.expired_cert, tc_certs.expired_key, tc_certs.ca,
		    "localhost", "certificate has expired");
	tls_refused(tc_certs.server_cert, tc_certs.server_key, tc_certs.ca,
		    "other.example", "hostname mismatch");
}

static void test_tls_insecure(void **state)
{
	const char *srv_args[] = { "-l", "-e", "--tls", "--cert",
				   tc_certs.expired_cert, "--key",
				   tc_certs.expired_key, "{port}", NULL };
	const char *cli_args[] = { "--tls", "--insecure", "--load", "5", HOST,
				   "{port}", NULL };
	struct proc *srv, *cli;
	int port;

	(void)state;
	srv = start_server(srv_args, NULL, 0, false, &port);
	cli = proc_start(cli_args, port, NULL, 0, false);
	wait_pair(srv, cli);
	expect_exit("client", cli, 0);
	expect_exit("server", srv, 0);
	expect_load_json(cli, 5, 1024);
	expect_one_line("client", cli, "warning: --insecure");
}

static void test_tls_usage_errors(void **state)
{
	const char *bad[][10] = {
		{ "-l", "--tls", "{port}", NULL },
		{ "-l", "--tls", "--cert", tc_certs.server_cert, "{port}",
		  NULL },
		{ "--cert", tc_certs.client_cert, "--key", tc_certs.client_key,
		  HOST, "{port}", NULL },
		{ "--insecure", HOST, "{port}", NULL },
		{ "-l", "--tls", "--insecure", "--cert", tc_certs.server_cert,
		  "--key", tc_certs.server_key, "{port}", NULL },
		{ "--tls", "--insecure", "--ca", tc_certs.ca, HOST, "{port}",
		  NULL },
	};
	const char *missing[] = { "-l", "--tls", "--cert", "/nonexistent.pem",
				  "--key", tc_certs.server_key, "{port}",
				  NULL };
	struct proc *p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = run_alone(bad[i], 1);
		if (p->status != 2) {
			proc_dump("usage", p);
			fail_msg("case %zu: exit %d, expected 2", i, p->status);
		}
		proc_cleanup(p);
	}
	p = run_alone(missing, lp_free_port());
	expect_exit("missing certificate", p, 2);
	expect_one_line("missing certificate", p, "/nonexistent.pem");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_help_and_usage_errors),
		T(test_connection_refused_exits_3),
		T(test_default_mode_both_directions),
		T(test_default_mode_empty_input),
		T(test_echo_with_load_200_streams),
		T(test_load_from_the_server_side),
		T(test_verbose_goaway_and_end_lines),
		T(test_load_against_default_mode_server_fails),
		T(test_keep_serves_sessions_until_sigterm),
		T(test_sigint_sends_the_close_code),
		T(test_typed_sessions_report_the_type),
		T(test_heartbeat),
		T(test_vv_traces_every_frame),
		T(test_tls_load),
		T(test_tls_mutual),
		T(test_tls_verification_failures_exit_3),
		T(test_tls_insecure),
		T(test_tls_usage_errors),
#undef T
	};

	return cmocka_run_group_tests(tests, tc_group_setup, tc_group_teardown);
}
