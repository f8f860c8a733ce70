/*
 * test_muxtun.c - tools/muxtun as a program: an entry and an exit process
 * on loopback, a TCP target forked from the test, TCP clients in the test.
 *
 * Runs the sanitizer build $MUXRING_BUILD_DIR/muxtun (set by `make test`;
 * build/asan/muxtun when unset). Each muxtun child writes stdout and stderr
 * to its own log file, so nothing has to be drained while a test waits; the
 * -v lines in the logs are part of what is checked, and a sanitizer report
 * in any log fails the test. Both sides listen on port 0 and the test reads
 * the real port from their `listen ADDR:PORT` line: no port races.
 *
 * The target child serves four behaviours, one listening socket each:
 *   echo      echoes as it reads; after the client's EOF, echoes the rest
 *             and closes
 *   deferred  echoes nothing until the client's EOF, then everything
 *   sink      reads only once resumed (SIGUSR1), checks that byte i is
 *             pattern(i), and after the EOF answers "OK <count>\n" or
 *             "BAD <offset>\n" and closes
 *   greet     says "hello\n" and half-closes at once, then checks the
 *             client's bytes like sink and logs "greet <count> ok|bad"
 *   reset     resets the connection (SO_LINGER 0) once 4 bytes came
 * and logs "reset" whenever a connection of any kind is reset under it.
 *
 * Covers: -h and usage errors (exit 2); connection refused and ports in use
 * (exit 3); 50 concurrent connections each echoing 64 KiB of distinct data,
 * with the -v open/close lines and byte counts on both sides, then SIGTERM
 * of the entry side (exit 0) and a second session on the same exit side;
 * half-close from the client (deferred echo) and from the service (greet,
 * which also needs the SYN to leave before the client writes); resets
 * both ways (client RST -> service RST, service RST -> client RST); a dead
 * target (the entry side's connection is closed; connect-failed / reset
 * code=5 lines); killing the exit side closes every tunnelled connection and
 * ends the entry side with status 1; SIGTERM with live connections; end to
 * end flow control (a paused target stops the client's writes after a
 * bounded number of bytes, and every byte arrives once it resumes);
 * --max-conns on both sides. Over TLS (certificates made at test time):
 * mutual TLS carrying 10 connections, an entry side with the wrong CA
 * exiting 3 with one line while the exit side reports the alert and goes
 * on serving.
 *
 * Nothing waits without a limit: every wait has a deadline, alarm() guards
 * each test, and the teardown kills every child.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "tls_certs.h"

#define HOST "127.0.0.1"
#define TEST_ALARM_S 45   /* a whole test, at most */
#define WAIT_MS 15000     /* one wait, at most */
#define MAX_PROCS 8
#define MAX_ARGS 24

/* ---------------------------------------------------------------------- */
/* Time and text                                                           */
/* ---------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Counts the lines of text that contain `what`. */
static int count_lines(const char *text, const char *what)
{
	int n = 0;

	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		const char *hit = strstr(l, what);

		if (hit && hit < l + len)
			n++;
		if (!nl)
			break;
		l = nl + 1;
	}
	return n;
}

/* Byte i of every patterned stream. */
static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 11));
}

/* n bytes of xorshift noise, different for every seed. */
static uint8_t *random_bytes(size_t n, uint32_t seed)
{
	uint8_t *b = malloc(n ? n : 1);
	uint32_t x = seed * 2654435761u | 1;

	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)x;
	}
	return b;
}

/* ---------------------------------------------------------------------- */
/* Child processes                                                         */
/* ---------------------------------------------------------------------- */

struct proc {
	pid_t pid;
	char log[64];   /* its stdout and stderr */
	bool exited;
	int status;     /* exit code, or 128 + signal */
	char *text;     /* the log as last read (proc_log) */
};

/* Children live here, not on a test's stack: the teardown reaches them
 * after a failed assertion left the test. */
static struct proc pool[MAX_PROCS];
static bool pool_used[MAX_PROCS];

static const char *muxtun_path(void)
{
	static char path[4096];
	const char *dir = getenv("MUXRING_BUILD_DIR");

	snprintf(path, sizeof(path), "%s/muxtun", dir ? dir : "build/asan");
	return path;
}

static struct proc *proc_alloc(void)
{
	for (int i = 0; i < MAX_PROCS; i++) {
		if (!pool_used[i]) {
			pool_used[i] = true;
			memset(&pool[i], 0, sizeof(pool[i]));
			snprintf(pool[i].log, sizeof(pool[i].log),
				 "/tmp/test_muxtun.%d.%d.log", (int)getpid(),
				 i);
			return &pool[i];
		}
	}
	fail_msg("too many child processes");
	return NULL;
}

/* Kills (if still running), reaps and forgets p. */
static void proc_cleanup(struct proc *p)
{
	if (p->pid > 0 && !p->exited) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->exited = true;
	}
	unlink(p->log);
	free(p->text);
	p->text = NULL;
	pool_used[p - pool] = false;
}

/* SIGALRM: the test hangs. Kill every child and give up loudly. */
static void on_alarm(int sig)
{
	static const char msg[] = "test_muxtun: test timed out, killing "
				  "children\n";

	(void)sig;
	for (int i = 0; i < MAX_PROCS; i++)
		if (pool_used[i] && pool[i].pid > 0 && !pool[i].exited)
			kill(pool[i].pid, SIGKILL);
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

/* Points stdin at /dev/null and stdout/stderr at the log (in a child). */
static void child_redirect(const char *log)
{
	int in = open("/dev/null", O_RDONLY);
	int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);

	if (in < 0 || out < 0)
		_exit(126);
	dup2(in, STDIN_FILENO);
	dup2(out, STDOUT_FILENO);
	dup2(out, STDERR_FILENO);
	close(in);
	close(out);
}

/* Starts muxtun with args (NULL-terminated; "{port}" becomes port). */
static struct proc *muxtun_start(const char *const *args, int port)
{
	struct proc *p = proc_alloc();
	const char *argv[MAX_ARGS];
	char portstr[16];
	int n = 0;

	snprintf(portstr, sizeof(portstr), "%d", port);
	argv[n++] = muxtun_path();
	for (; *args; args++) {
		assert_true(n < MAX_ARGS - 1);
		argv[n++] = strcmp(*args, "{port}") ? *args : portstr;
	}
	argv[n] = NULL;
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		child_redirect(p->log);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return p;
}

static void proc_reap(struct proc *p)
{
	int st;

	if (p->exited || waitpid(p->pid, &st, WNOHANG) != p->pid)
		return;
	p->exited = true;
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The child's log, read again now. */
static const char *proc_log(struct proc *p)
{
	FILE *f = fopen(p->log, "r");
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	assert_non_null(buf);
	while (f) {
		size_t n = fread(buf + len, 1, cap - len - 1, f);

		len += n;
		if (len + 1 < cap)
			break;
		cap *= 2;
		buf = realloc(buf, cap);
		assert_non_null(buf);
	}
	if (f)
		fclose(f);
	buf[len] = '\0';
	free(p->text);
	p->text = buf;
	return buf;
}

static void proc_dump(const char *name, struct proc *p)
{
	proc_reap(p);
	fprintf(stderr, "--- %s: pid=%d exited=%d status=%d, log:\n%s\n", name,
		(int)p->pid, p->exited, p->status, proc_log(p));
}

/* Waits until the log has `count` lines containing `what`. */
static void wait_lines(const char *name, struct proc *p, const char *what,
		       int count)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		if (count_lines(proc_log(p), what) >= count)
			return;
		proc_reap(p);
		if (p->exited || now_ms() >= end)
			break;
		sleep_ms(5);
	}
	proc_dump(name, p);
	fail_msg("%s: %d lines with \"%s\" did not come", name, count, what);
}

static void expect_in_log(const char *name, struct proc *p, const char *what)
{
	if (!strstr(proc_log(p), what)) {
		proc_dump(name, p);
		fail_msg("%s: missing \"%s\"", name, what);
	}
}

/* Waits for p to exit; checks its status and that no sanitizer spoke. */
static void expect_exit(const char *name, struct proc *p, int status)
{
	uint64_t end = now_ms() + WAIT_MS;
	const char *log;

	while (!p->exited && now_ms() < end) {
		proc_reap(p);
		if (!p->exited)
			sleep_ms(5);
	}
	log = proc_log(p);
	if (!p->exited || p->status != status || strstr(log, "Sanitizer") ||
	    strstr(log, "runtime error")) {
		proc_dump(name, p);
		fail_msg("%s: %s %d, expected %d (or a sanitizer report)",
			 name, p->exited ? "exit status" : "still running",
			 p->status, status);
	}
}

static void stop_and_expect(const char *name, struct proc *p, int status)
{
	kill(p->pid, SIGTERM);
	expect_exit(name, p, status);
}

/* Runs muxtun alone to completion. */
static struct proc *run_alone(const char *const *args, int port)
{
	struct proc *p = muxtun_start(args, port);
	uint64_t end = now_ms() + WAIT_MS;

	while (!p->exited && now_ms() < end) {
		proc_reap(p);
		if (!p->exited)
			sleep_ms(5);
	}
	if (!p->exited) {
		proc_dump("muxtun", p);
		fail_msg("muxtun did not exit");
	}
	return p;
}

/* ---------------------------------------------------------------------- */
/* Sockets                                                                 */
/* ---------------------------------------------------------------------- */

/* A listening loopback socket on any free port; *port gets it. */
static int listen_any(int *port, int rcvbuf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 128), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* A loopback port with nothing listening on it (free a moment ago). */
static int dead_port(void)
{
	int port, fd = listen_any(&port, 0);

	close(fd);
	return port;
}

/* A nonblocking TCP connection to 127.0.0.1:port. */
static int connect_to(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Waits up to ms for fd to be ready for `events`. */
static bool wait_fd(int fd, short events, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	return poll(&pfd, 1, ms) > 0;
}

/* Reads exactly len bytes (or fails the test). */
static void read_exactly(int fd, void *buf, size_t len)
{
	uint64_t end = now_ms() + WAIT_MS;
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, 0);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			fail_msg("EOF after %zu of %zu bytes", got, len);
		if (errno != EAGAIN && errno != EINTR)
			fail_msg("recv: %s", strerror(errno));
		if (now_ms() >= end)
			fail_msg("timed out after %zu of %zu bytes", got, len);
		wait_fd(fd, POLLIN, 50);
	}
}

/* Waits for the connection to end: EOF (0) or a reset (-ECONNRESET);
 * bytes still arriving are dropped. Fails the test on a timeout. */
static int wait_closed(int fd)
{
	uint64_t end = now_ms() + WAIT_MS;
	char buf[4096];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n == 0)
			return 0;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (now_ms() >= end)
			fail_msg("the connection was not closed");
		if (n < 0)
			wait_fd(fd, POLLIN, 50);
	}
}

/* True when nothing arrives on fd within ms (and it is not closed). */
static bool stays_silent(int fd, int ms)
{
	char c;

	if (wait_fd(fd, POLLIN, ms))
		return false;
	return recv(fd, &c, 1, 0) < 0 && errno == EAGAIN;
}

/* Writes all of buf (nonblocking fd), or fails the test. */
static void write_all(int fd, const void *buf, size_t len)
{
	uint64_t end = now_ms() + WAIT_MS;
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, (const uint8_t *)buf + off, len - off,
				 MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			fail_msg("send: %s", strerror(errno));
		if (now_ms() >= end)
			fail_msg("send timed out");
		wait_fd(fd, POLLOUT, 50);
	}
}

/* Sends "ping" and reads it back through an echo. */
static void ping(int fd)
{
	char buf[4];

	write_all(fd, "ping", 4);
	read_exactly(fd, buf, 4);
	assert_memory_equal(buf, "ping", 4);
}

/* ---------------------------------------------------------------------- */
/* Echo clients: many connections driven together                          */
/* ---------------------------------------------------------------------- */

struct client {
	int fd;
	const uint8_t *out;  /* sent, then the write side is shut down */
	size_t out_len, out_off;
	uint8_t *in;         /* what came back, up to in_cap */
	size_t in_len, in_cap;
	bool shut, eof;
};

/* One step of one client, after poll said it is ready. */
static void client_step(struct client *c)
{
	ssize_t n;

	if (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			 MSG_NOSIGNAL);
		if (n > 0)
			c->out_off += (size_t)n;
		else if (errno != EAGAIN && errno != EINTR)
			fail_msg("client send: %s", strerror(errno));
	}
	if (c->out_off == c->out_len && !c->shut) {
		assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
		c->shut = true;
	}
	while (!c->eof) {
		if (c->in_len == c->in_cap)
			fail_msg("more came back than was sent");
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n == 0)
			c->eof = true;
		else if (n > 0)
			c->in_len += (size_t)n;
		else if (errno == EAGAIN || errno == EINTR)
			break;
		else
			fail_msg("client recv: %s", strerror(errno));
	}
}

/* Runs every client until each has sent all, half-closed and read to EOF. */
static void clients_run(struct client *cl, int n)
{
	uint64_t end = now_ms() + WAIT_MS;
	struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
	int done;

	assert_non_null(pfd);
	do {
		done = 0;
		for (int i = 0; i < n; i++) {
			pfd[i].fd = cl[i].eof ? -1 : cl[i].fd;
			pfd[i].events = POLLIN;
			if (cl[i].out_off < cl[i].out_len || !cl[i].shut)
				pfd[i].events |= POLLOUT;
			done += cl[i].eof;
		}
		if (done == n)
			break;
		if (now_ms() >= end)
			fail_msg("clients: only %d of %d finished", done, n);
		poll(pfd, (nfds_t)n, 50);
		for (int i = 0; i < n; i++)
			if (pfd[i].revents)
				client_step(&cl[i]);
	} while (1);
	free(pfd);
}

/* ---------------------------------------------------------------------- */
/* The target                                                              */
/* ---------------------------------------------------------------------- */

enum tmode { T_ECHO, T_DEFERRED, T_SINK, T_GREET, T_RESET, T_MODES };

struct target {
	pid_t pid;
	int port[T_MODES];
	char log[64];
};

static struct target target = { .pid = -1 };

/* One connection of the target child. */
struct tconn {
	int fd;             /* -1: slot free */
	enum tmode mode;
	uint8_t *buf;       /* bytes to send back */
	size_t len, off, cap;
	uint64_t count;     /* bytes read */
	int64_t bad_at;     /* first byte off the pattern, or -1 */
	bool eof;           /* the client's EOF was read */
	bool replying;      /* everything to send is in buf */
};

static volatile sig_atomic_t target_resumed;

static void on_usr1(int sig)
{
	(void)sig;
	target_resumed = 1;
}

static void tconn_append(struct tconn *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2;
		t->buf = realloc(t->buf, t->cap);
		if (!t->buf)
			_exit(3);
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

static void tconn_close(struct tconn *t)
{
	if (t->mode == T_RESET) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(t->fd);
	t->fd = -1;
	free(t->buf);
	t->buf = NULL;
}

/* Checks incoming bytes against the pattern (sink and greet). */
static void tconn_check(struct tconn *t, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && t->bad_at < 0; i++)
		if (p[i] != pattern(t->count + i))
			t->bad_at = (int64_t)(t->count + i);
}

/* The client's EOF: what each behaviour does then. */
static void tconn_on_eof(struct tconn *t)
{
	char line[64];
	int n;

	t->eof = true;
	t->replying = true;
	if (t->mode == T_SINK) {
		n = t->bad_at < 0
			    ? snprintf(line, sizeof(line), "OK %llu\n",
				       (unsigned long long)t->count)
			    : snprintf(line, sizeof(line), "BAD %lld\n",
				       (long long)t->bad_at);
		tconn_append(t, line, (size_t)n);
	} else if (t->mode == T_GREET) {
		n = snprintf(line, sizeof(line), "greet %llu %s\n",
			     (unsigned long long)t->count,
			     t->bad_at < 0 ? "ok" : "bad");
		if (write(STDERR_FILENO, line, (size_t)n) < 0)
			_exit(3);
	}
}

static void tconn_read(struct tconn *t)
{
	uint8_t buf[65536];
	ssize_t n = recv(t->fd, buf, sizeof(buf), 0);

	if (n < 0) {
		if (errno == ECONNRESET &&
		    write(STDERR_FILENO, "reset\n", 6) < 0)
			_exit(3);
		if (errno != EAGAIN && errno != EINTR)
			tconn_close(t);
		return;
	}
	if (n == 0) {
		tconn_on_eof(t);
		return;
	}
	if (t->mode == T_SINK || t->mode == T_GREET)
		tconn_check(t, buf, (size_t)n);
	else
		tconn_append(t, buf, (size_t)n);
	t->count += (uint64_t)n;
	if (t->mode == T_RESET && t->count >= 4)
		tconn_close(t); /* with a reset */
}

/* Sends what may be sent; closes once everything went after the EOF. */
static void tconn_write(struct tconn *t)
{
	bool may_send = t->mode == T_ECHO || t->replying;

	if (t->mode == T_RESET)
		return;

	if (may_send && t->off < t->len) {
		ssize_t n = send(t->fd, t->buf + t->off, t->len - t->off,
				 MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			tconn_close(t);
			return;
		}
		if (n > 0)
			t->off += (size_t)n;
	}
	if (t->replying && t->off == t->len)
		tconn_close(t);
}

static void tconn_accept(struct tconn *conns, int max, int lfd,
			 enum tmode mode)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < max; i++) {
		if (conns[i].fd < 0) {
			memset(&conns[i], 0, sizeof(conns[i]));
			conns[i].fd = fd;
			conns[i].mode = mode;
			conns[i].bad_at = -1;
			if (mode == T_GREET) {
				if (send(fd, "hello\n", 6, MSG_NOSIGNAL) != 6)
					_exit(3);
				shutdown(fd, SHUT_WR);
			}
			return;
		}
	}
	close(fd);
}

/* The target child's whole life: a poll loop until it is killed. */
static void target_main(const int *lfd)
{
	enum { MAX_TCONNS = 256 };
	static struct tconn conns[MAX_TCONNS];
	struct pollfd pfd[T_MODES + MAX_TCONNS];

	signal(SIGUSR1, on_usr1);
	for (int i = 0; i < MAX_TCONNS; i++)
		conns[i].fd = -1;
	for (;;) {
		int n = 0;

		for (int m = 0; m < T_MODES; m++)
			pfd[n++] = (struct pollfd){ lfd[m], POLLIN, 0 };
		for (int i = 0; i < MAX_TCONNS; i++) {
			struct tconn *t = &conns[i];
			short ev = 0;

			if (t->fd >= 0 && !t->eof &&
			    (t->mode != T_SINK || target_resumed))
				ev |= POLLIN;
			if (t->fd >= 0 && t->off < t->len)
				ev |= POLLOUT;
			pfd[n++] = (struct pollfd){ ev ? t->fd : -1, ev, 0 };
		}
		poll(pfd, (nfds_t)n, 20);
		for (int m = 0; m < T_MODES; m++)
			if (pfd[m].revents)
				tconn_accept(conns, MAX_TCONNS, lfd[m],
					     (enum tmode)m);
		for (int i = 0; i < MAX_TCONNS; i++) {
			struct tconn *t = &conns[i];

			if (t->fd >= 0 && (pfd[T_MODES + i].revents & POLLIN))
				tconn_read(t);
			if (t->fd >= 0)
				tconn_write(t);
		}
	}
}

/* Forks the target child with its four listening sockets (the sink's
 * with a small receive buffer, so that a paused sink takes little). */
static void target_start(void)
{
	int lfd[T_MODES];

	for (int m = 0; m < T_MODES; m++) {
		lfd[m] = listen_any(&target.port[m], m == T_SINK ? 65536 : 0);
		fcntl(lfd[m], F_SETFL, O_NONBLOCK);
	}
	snprintf(target.log, sizeof(target.log), "/tmp/test_muxtun.%d.t.log",
		 (int)getpid());
	target.pid = fork();
	assert_true(target.pid >= 0);
	if (target.pid == 0) {
		alarm(0);
		child_redirect(target.log);
		target_main(lfd);
		_exit(0);
	}
	for (int m = 0; m < T_MODES; m++)
		close(lfd[m]);
}

static void target_stop(void)
{
	if (target.pid > 0) {
		kill(target.pid, SIGKILL);
		waitpid(target.pid, NULL, 0);
		unlink(target.log);
	}
	target.pid = -1;
}

/* Waits until the target's log has a line containing `what`. */
static void target_wait_line(const char *what)
{
	uint64_t end = now_ms() + WAIT_MS;
	char buf[4096];

	while (now_ms() < end) {
		FILE *f = fopen(target.log, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = '\0';
		if (strstr(buf, what))
			return;
		sleep_ms(5);
	}
	fail_msg("the target did not log \"%s\" (log: %s)", what, buf);
}

/* ---------------------------------------------------------------------- */
/* Tunnels                                                                 */
/* ---------------------------------------------------------------------- */

/* The port of p's `listen ADDR:PORT` line, once it came. */
static int listen_port_of(const char *name, struct proc *p)
{
	const char *line;
	int port;

	wait_lines(name, p, "listen " HOST ":", 1);
	line = strstr(proc_log(p), "listen " HOST ":");
	assert_int_equal(sscanf(line, "listen " HOST ":%d", &port), 1);
	assert_true(port > 0);
	return port;
}

/* Starts an exit side for target port `tport` (extra options: NULL
 * terminated, may be NULL). Returns it; *port gets its session port. */
static struct proc *exit_start(int tport, const char *const *extra,
			       int *port)
{
	char tp[16];
	const char *args[MAX_ARGS] = { "-v", "-R", HOST, tp, "-l", "0" };
	int n = 6;
	struct proc *p;

	snprintf(tp, sizeof(tp), "%d", tport);
	for (; extra && *extra; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	p = muxtun_start(args, 0);
	*port = listen_port_of("exit", p);
	return p;
}

/* Starts an entry side to the exit side at xport; *port gets the port
 * clients connect to (known once the session is up). */
static struct proc *entry_start(int xport, const char *const *extra,
				int *port)
{
	const char *args[MAX_ARGS] = { "-v", "-L", "0", "-c", HOST, "{port}" };
	int n = 6;
	struct proc *p;

	for (; extra && *extra; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	p = muxtun_start(args, xport);
	*port = listen_port_of("entry", p);
	return p;
}

struct tunnel {
	struct proc *exit, *entry;
	int port; /* where clients connect */
};

static void tunnel_start(struct tunnel *t, enum tmode mode)
{
	int xport;

	t->exit = exit_start(target.port[mode], NULL, &xport);
	t->entry = entry_start(xport, NULL, &t->port);
}

/* SIGTERM to both (entry first); both must exit 0, cleanly. */
static void tunnel_stop(struct tunnel *t)
{
	stop_and_expect("entry", t->entry, 0);
	stop_and_expect("exit", t->exit, 0);
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
	target_start();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	for (int i = 0; i < MAX_PROCS; i++)
		if (pool_used[i])
			proc_cleanup(&pool[i]);
	target_stop();
	return 0;
}

static void test_help_and_usage_errors(void **state)
{
	static const char *const bad[][12] = {
		{ NULL },
		{ "-q", NULL },
		{ "-L", "1", NULL },
		{ "-c", HOST, "1", NULL },
		{ "-L", "1", "-c", HOST, NULL },
		{ "-L", "x", "-c", HOST, "1", NULL },
		{ "-L", "1", "-c", HOST, "0", NULL },
		{ "-L", "1", "-c", HOST, "70000", NULL },
		{ "-L", "1", "-L", "2", "-c", HOST, "1", NULL },
		{ "-R", HOST, "1", NULL },
		{ "-l", "1", NULL },
		{ "-R", HOST, "1x", "-l", "1", NULL },
		{ "-L", "1", "-c", HOST, "1", "-l", "2", NULL },
		{ "-R", HOST, "1", "-l", "2", "-c", HOST, "1", NULL },
		{ "-L", "1", "-c", HOST, "1", "--max-conns", "0", NULL },
		{ "-L", "1", "-c", HOST, "1", "--max-conns", "x", NULL },
		{ "-L", "1", "-c", HOST, "1", "--max-conns", NULL },
		{ "-L", "1", "-c", HOST, "1", "extra", NULL },
		{ "--nope", NULL },
	};
	static const char *const help[] = { "-h", NULL };
	struct proc *p;

	(void)state;
	p = run_alone(help, 0);
	assert_int_equal(p->status, 0);
	expect_in_log("help", p, "usage: muxtun -L LISTEN_PORT -c HOST PORT");
	expect_in_log("help", p, "muxtun -R TARGET_HOST TARGET_PORT -l PORT");
	expect_in_log("help", p, "--max-conns N");
	expect_in_log("help", p, "end=WHY");
	proc_cleanup(p);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = run_alone(bad[i], 0);
		if (p->status != 2 || !strstr(proc_log(p), "muxtun: ")) {
			proc_dump("usage", p);
			fail_msg("case %zu: exit %d, expected 2 and a message",
				 i, p->status);
		}
		proc_cleanup(p);
	}
}

static void test_connect_and_listen_failures_exit_3(void **state)
{
	static const char *const dial_dead[] = { "-L", "0", "-c", HOST,
						 "{port}", NULL };
	static const char *const entry_busy[] = { "-L", "{port}", "-c", HOST,
						  "1", NULL };
	static const char *const exit_busy[] = { "-R", HOST, "1", "-l",
						 "{port}", NULL };
	struct proc *p;
	int busy, fd;

	(void)state;
	p = run_alone(dial_dead, dead_port());
	expect_exit("entry", p, 3);
	expect_in_log("entry", p, "refused");
	proc_cleanup(p);

	fd = listen_any(&busy, 0);
	p = run_alone(entry_busy, busy);
	expect_exit("entry", p, 3);
	expect_in_log("entry", p, "in use");
	proc_cleanup(p);
	p = run_alone(exit_busy, busy);
	expect_exit("exit", p, 3);
	expect_in_log("exit", p, "in use");
	proc_cleanup(p);
	close(fd);
}

enum { MANY = 50, MANY_SIZE = 64 * 1024 };

static void test_fifty_connections_echo_64k_each(void **state)
{
	struct client cl[MANY];
	uint8_t *data[MANY];
	struct tunnel t;
	struct proc *entry2;
	int port2, xport;
	char line[128];

	(void)state;
	t.exit = exit_start(target.port[T_ECHO], NULL, &xport);
	t.entry = entry_start(xport, NULL, &t.port);
	for (int i = 0; i < MANY; i++) {
		data[i] = random_bytes(MANY_SIZE, (uint32_t)i + 1);
		cl[i] = (struct client){
			.fd = connect_to(t.port), .out = data[i],
			/* One spare byte: an echo longer than what was
			 * sent shows up as such. */
			.out_len = MANY_SIZE, .in = malloc(MANY_SIZE + 1),
			.in_cap = MANY_SIZE + 1,
		};
		assert_non_null(cl[i].in);
	}
	clients_run(cl, MANY);
	for (int i = 0; i < MANY; i++) {
		assert_int_equal(cl[i].in_len, MANY_SIZE);
		assert_memory_equal(cl[i].in, data[i], MANY_SIZE);
		close(cl[i].fd);
		free(cl[i].in);
		free(data[i]);
	}
	/* One open and one clean close line per connection, both sides,
	 * with the TCP byte counts. */
	snprintf(line, sizeof(line), "read=%d written=%d end=ok", MANY_SIZE,
		 MANY_SIZE);
	wait_lines("entry", t.entry, line, MANY);
	wait_lines("exit", t.exit, line, MANY);
	assert_int_equal(count_lines(proc_log(t.entry), "open conn="), MANY);
	assert_int_equal(count_lines(proc_log(t.exit), "open conn="), MANY);
	expect_in_log("entry", t.entry, "open conn=50 stream=101\n");
	assert_int_equal(count_lines(proc_log(t.entry), "close conn="), MANY);

	/* The entry side stops; the exit side serves a second session. */
	stop_and_expect("entry", t.entry, 0);
	wait_lines("exit", t.exit, "session close", 1);
	entry2 = entry_start(xport, NULL, &port2);
	{
		int fd = connect_to(port2);

		ping(fd);
		close(fd);
	}
	wait_lines("entry2", entry2, "end=ok", 1);
	/* The exit side stops: GOAWAY(NoError) ends the entry side, 0. */
	stop_and_expect("exit", t.exit, 0);
	expect_exit("entry2", entry2, 0);
}

static void test_half_close_from_the_client(void **state)
{
	const size_t len = 200 * 1024 + 17;
	uint8_t *data = random_bytes(len, 99), *back = malloc(len);
	struct tunnel t;
	int fd;

	(void)state;
	assert_non_null(back);
	/* The deferred target answers only after the client's EOF: the
	 * echo can only come if the FIN went through, and the way back
	 * still works after it. */
	tunnel_start(&t, T_DEFERRED);
	fd = connect_to(t.port);
	write_all(fd, data, len);
	assert_true(stays_silent(fd, 200)); /* nothing before the FIN */
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	read_exactly(fd, back, len);
	assert_memory_equal(back, data, len);
	assert_int_equal(wait_closed(fd), 0); /* then EOF, not a reset */
	close(fd);
	wait_lines("entry", t.entry, "end=ok", 1);
	wait_lines("exit", t.exit, "end=ok", 1);
	tunnel_stop(&t);
	free(data);
	free(back);
}

static void test_half_close_from_the_service(void **state)
{
	const size_t len = 100 * 1024;
	uint8_t *data = malloc(len);
	char hello[6];
	struct tunnel t;
	int fd;

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < len; i++)
		data[i] = pattern(i);
	/* The greeter speaks first and half-closes before the client has
	 * written anything: the stream's SYN must already have gone. */
	tunnel_start(&t, T_GREET);
	fd = connect_to(t.port);
	read_exactly(fd, hello, sizeof(hello));
	assert_memory_equal(hello, "hello\n", 6);
	assert_int_equal(wait_closed(fd), 0); /* its FIN came through */
	/* Our direction is still open. */
	write_all(fd, data, len);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	target_wait_line("greet 102400 ok\n");
	close(fd);
	wait_lines("entry", t.entry, "read=102400 written=6 end=ok", 1);
	wait_lines("exit", t.exit, "read=6 written=102400 end=ok", 1);
	tunnel_stop(&t);
	free(data);
}

static void test_dead_target_closes_the_connection(void **state)
{
	struct tunnel t;
	int xport, fd, ret;

	(void)state;
	t.exit = exit_start(dead_port(), NULL, &xport);
	t.entry = entry_start(xport, NULL, &t.port);
	fd = connect_to(t.port);
	send(fd, "hello", 5, MSG_NOSIGNAL); /* may already fail */
	ret = wait_closed(fd);
	assert_true(ret == 0 || ret == -ECONNRESET || ret == -EPIPE);
	close(fd);
	wait_lines("exit", t.exit,
		   "end=connect-failed err=\"Connection refused\"", 1);
	/* The entry side saw the refusal (StreamRefused = 5). */
	wait_lines("entry", t.entry, "end=reset code=5", 1);
	/* The tunnel itself goes on: the next connection gets the same. */
	fd = connect_to(t.port);
	ret = wait_closed(fd);
	assert_true(ret == 0 || ret == -ECONNRESET);
	close(fd);
	wait_lines("entry", t.entry, "end=reset code=5", 2);
	tunnel_stop(&t);
}

static void test_resets_propagate_both_ways(void **state)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct tunnel t;
	int fd, xport;

	(void)state;
	/* Client -> service: the client resets; the service's connection
	 * is reset too (not ended with a FIN). */
	tunnel_start(&t, T_ECHO);
	fd = connect_to(t.port);
	ping(fd);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	target_wait_line("reset\n");
	wait_lines("entry", t.entry,
		   "end=tcp-error err=\"Connection reset by peer\"", 1);
	wait_lines("exit", t.exit, "end=reset code=7", 1); /* StreamReset */
	tunnel_stop(&t);
	proc_cleanup(t.entry);
	proc_cleanup(t.exit);

	/* Service -> client: the service resets; so is the client. */
	t.exit = exit_start(target.port[T_RESET], NULL, &xport);
	t.entry = entry_start(xport, NULL, &t.port);
	fd = connect_to(t.port);
	write_all(fd, "boom", 4);
	assert_int_equal(wait_closed(fd), -ECONNRESET);
	close(fd);
	wait_lines("exit", t.exit,
		   "end=tcp-error err=\"Connection reset by peer\"", 1);
	wait_lines("entry", t.entry, "end=reset code=7", 1);
	tunnel_stop(&t);
}

enum { LIVE = 10 };

static void test_killing_the_exit_side_closes_every_connection(void **state)
{
	struct tunnel t;
	int fd[LIVE];

	(void)state;
	tunnel_start(&t, T_ECHO);
	for (int i = 0; i < LIVE; i++) {
		fd[i] = connect_to(t.port);
		ping(fd[i]);
	}
	kill(t.exit->pid, SIGKILL);
	for (int i = 0; i < LIVE; i++) {
		int ret = wait_closed(fd[i]);

		assert_true(ret == 0 || ret == -ECONNRESET);
		close(fd[i]);
	}
	/* The tunnel is gone: the entry side ends, as a failure. */
	expect_exit("entry", t.entry, 1);
	expect_in_log("entry", t.entry, "muxtun: the session ended");
	assert_int_equal(count_lines(proc_log(t.entry), "close conn="), LIVE);
	assert_int_equal(count_lines(proc_log(t.entry), "end=ok"), 0);
}

static void test_sigterm_with_live_connections(void **state)
{
	struct tunnel t;
	int fd[LIVE];

	(void)state;
	tunnel_start(&t, T_ECHO);
	for (int i = 0; i < LIVE; i++) {
		fd[i] = connect_to(t.port);
		ping(fd[i]);
	}
	stop_and_expect("entry", t.entry, 0);
	for (int i = 0; i < LIVE; i++) {
		int ret = wait_closed(fd[i]);

		assert_true(ret == 0 || ret == -ECONNRESET);
		close(fd[i]);
	}
	assert_int_equal(count_lines(proc_log(t.entry), "close conn="), LIVE);
	/* The exit side closed its side of each (no session left). */
	wait_lines("exit", t.exit, "close conn=", LIVE);
	wait_lines("exit", t.exit, "session close", 1);
	stop_and_expect("exit", t.exit, 0);
}

enum {
	STALL_LIMIT = 40 << 20, /* a client that gets this far is not being
				   held back: far above what the socket
				   buffers and windows on the way hold */
	STALL_MS = 1000,        /* no progress this long: held back */
	AFTER_RESUME = 1 << 20,
};

/* Writes the pattern from *off on until no byte went for STALL_MS, or
 * up to `limit`. */
static void write_until_stalled(int fd, uint64_t *off, uint64_t limit)
{
	static uint8_t buf[65536];
	uint64_t last = now_ms();

	while (*off < limit && now_ms() - last < STALL_MS) {
		size_t n = sizeof(buf);
		ssize_t w;

		if (limit - *off < n)
			n = (size_t)(limit - *off);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(*off + i);
		w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w > 0) {
			*off += (uint64_t)w;
			last = now_ms();
		} else if (errno == EAGAIN) {
			wait_fd(fd, POLLOUT, 50);
		} else {
			fail_msg("send: %s", strerror(errno));
		}
	}
}

static void test_flow_control_is_end_to_end(void **state)
{
	struct tunnel t;
	uint64_t off = 0;
	char reply[64], expect[64];
	size_t got = 0;
	int fd;

	(void)state;
	/* The sink reads nothing until resumed: every buffer on the way
	 * fills, and then the client must be stopped. */
	tunnel_start(&t, T_SINK);
	fd = connect_to(t.port);
	write_until_stalled(fd, &off, STALL_LIMIT);
	if (off >= STALL_LIMIT)
		fail_msg("the client wrote %d bytes into a paused target: "
			 "nothing holds it back", STALL_LIMIT);
	print_message("    client stalled after %llu bytes\n",
		      (unsigned long long)off);
	/* Resume: everything must come through, in order, and more. */
	kill(target.pid, SIGUSR1);
	write_until_stalled(fd, &off, off + AFTER_RESUME);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	snprintf(expect, sizeof(expect), "OK %llu\n", (unsigned long long)off);
	while (got < strlen(expect)) {
		ssize_t n;

		assert_true(wait_fd(fd, POLLIN, WAIT_MS));
		n = recv(fd, reply + got, sizeof(reply) - 1 - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	reply[got] = '\0';
	assert_string_equal(reply, expect);
	assert_int_equal(wait_closed(fd), 0);
	close(fd);
	wait_lines("entry", t.entry, "end=ok", 1);
	tunnel_stop(&t);
}

static void test_max_conns(void **state)
{
	static const char *const two[] = { "--max-conns", "2", NULL };
	static const char *const one[] = { "--max-conns", "1", NULL };
	struct tunnel t;
	int a, b, c, xport, ret;
	char buf[4];

	(void)state;
	/* Entry side at 2: a third client waits in the backlog until one
	 * of the first two is gone. */
	t.exit = exit_start(target.port[T_ECHO], NULL, &xport);
	t.entry = entry_start(xport, two, &t.port);
	a = connect_to(t.port);
	b = connect_to(t.port);
	ping(a);
	ping(b);
	c = connect_to(t.port);
	write_all(c, "ping", 4);
	assert_true(stays_silent(c, 300));
	close(a);
	read_exactly(c, buf, 4);
	assert_memory_equal(buf, "ping", 4);
	ping(b);
	close(b);
	close(c);
	wait_lines("entry", t.entry, "close conn=", 3);
	tunnel_stop(&t);
	proc_cleanup(t.entry);
	proc_cleanup(t.exit);

	/* Exit side at 1: the second stream is refused. */
	t.exit = exit_start(target.port[T_ECHO], one, &xport);
	t.entry = entry_start(xport, NULL, &t.port);
	a = connect_to(t.port);
	ping(a);
	b = connect_to(t.port);
	ret = wait_closed(b);
	assert_true(ret == 0 || ret == -ECONNRESET);
	wait_lines("exit", t.exit, "refuse stream=5", 1);
	wait_lines("entry", t.entry, "end=reset code=5", 1);
	ping(a); /* the first one is untouched */
	close(a);
	close(b);
	tunnel_stop(&t);
}

/* ---------------------------------------------------------------------- */
/* TLS                                                                     */
/* ---------------------------------------------------------------------- */


static void test_tls_tunnel(void **state)
{
	const char *exit_tls[] = { "--tls", "--cert", tc_certs.server_cert,
				   "--key", tc_certs.server_key,
				   "--ca", tc_certs.ca, NULL };
	const char *entry_tls[] = { "--tls", "--ca", tc_certs.ca, "--sni",
				    "localhost", "--cert", tc_certs.client_cert,
				    "--key", tc_certs.client_key, NULL };
	const char *wrong_ca[] = { "-L", "0", "-c", HOST, "{port}", "--tls",
				   "--ca", tc_certs.other_ca, "--cert",
				   tc_certs.client_cert, "--key",
				   tc_certs.client_key, NULL };
	enum { N = 10, SIZE = 64 * 1024 };
	struct client cl[N];
	uint8_t *data[N];
	struct tunnel t;
	struct proc *bad;
	int xport, fd;

	(void)state;
	t.exit = exit_start(target.port[T_ECHO], exit_tls, &xport);
	t.entry = entry_start(xport, entry_tls, &t.port);
	for (int i = 0; i < N; i++) {
		data[i] = random_bytes(SIZE, (uint32_t)i + 7);
		cl[i] = (struct client){
			.fd = connect_to(t.port), .out = data[i],
			.out_len = SIZE, .in = malloc(SIZE + 1),
			.in_cap = SIZE + 1,
		};
		assert_non_null(cl[i].in);
	}
	clients_run(cl, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(cl[i].in_len, SIZE);
		assert_memory_equal(cl[i].in, data[i], SIZE);
		close(cl[i].fd);
		free(cl[i].in);
		free(data[i]);
	}
	wait_lines("entry", t.entry, "end=ok", N);

	/* An entry side that cannot verify the exit side: exit 3, one
	 * line; the exit side hears the alert and keeps serving. */
	bad = run_alone(wrong_ca, xport);
	expect_exit("wrong CA", bad, 3);
	expect_in_log("wrong CA", bad, "certificate verification failed");
	assert_int_equal(count_lines(proc_log(bad), ""), 1);
	wait_lines("exit", t.exit, "muxtun: TLS handshake failed: the peer "
		   "sent the TLS alert", 1);
	fd = connect_to(t.port);
	ping(fd);
	close(fd);
	tunnel_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_help_and_usage_errors),
		T(test_connect_and_listen_failures_exit_3),
		T(test_fifty_connections_echo_64k_each),
		T(test_half_close_from_the_client),
		T(test_half_close_from_the_service),
		T(test_dead_target_closes_the_connection),
		T(test_resets_propagate_both_ways),
		T(test_killing_the_exit_side_closes_every_connection),
		T(test_sigterm_with_live_connections),
		T(test_flow_control_is_end_to_end),
		T(test_max_conns),
		T(test_tls_tunnel),
#undef T
	};

	return cmocka_run_group_tests(tests, tc_group_setup, tc_group_teardown);
}
