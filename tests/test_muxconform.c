/*
 * test_muxconform.c - the conformance checker, run as a program.
 *
 * Against $MUXRING_BUILD_DIR/muxcat -l -e -k PORT every rule passes (plain
 * and --json output, --rule, --list agreeing with the rules run). Against a
 * deliberately broken peer - a raw echo server in a thread of this test
 * that copies DATA back and does nothing else (no RST, no GOAWAY, no
 * WNDINC, no checks) - the echo rules pass and the rules about framing
 * errors, unknown streams and windows fail, each with its reason (also
 * the peer's own breaches: DATA on stream 0, on a stream nobody opened),
 * and the exit status is 1. Usage errors exit 2, an unreachable peer 3.
 *
 * Servers get a port that was free a moment ago (bind port 0); muxcat is
 * ready when a connection to it succeeds. Every wait has a limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wire/frame.h"

#define OUT_MAX (64u << 10)

static const char *build_dir(void)
{
	const char *dir = getenv("MUXRING_BUILD_DIR");

	return dir ? dir : "build/asan";
}

/* A listening socket on 127.0.0.1, any port; its port in *port. */
static int listen_any(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static bool can_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* ---- muxcat as the peer ------------------------------------------------ */

static pid_t muxcat_pid;

static pid_t spawn_muxcat(int port)
{
	char path[4096], portstr[16];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/muxcat", build_dir());
	snprintf(portstr, sizeof(portstr), "%d", port);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *null = freopen("/dev/null", "w", stderr);

		(void)null;
		execl(path, "muxcat", "-l", "-e", "-k", portstr, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Starts muxcat -l -e -k on a free port; returns the port. */
static int start_muxcat(void)
{
	int attempt;

	for (attempt = 0; attempt < 5; attempt++) {
		int port, fd = listen_any(&port), status, i;

		close(fd);
		muxcat_pid = spawn_muxcat(port);
		for (i = 0; i < 1000; i++) {
			if (can_connect(port))
				return port;
			if (waitpid(muxcat_pid, &status, WNOHANG) == muxcat_pid)
				break; /* lost the port to someone: again */
			usleep(10000);
		}
		kill(muxcat_pid, SIGKILL);
		waitpid(muxcat_pid, &status, 0);
	}
	fail_msg("muxcat did not start listening");
	return -1;
}

static int stop_muxcat(void **state)
{
	int status;

	(void)state;
	if (muxcat_pid > 0) {
		kill(muxcat_pid, SIGKILL);
		waitpid(muxcat_pid, &status, 0);
		muxcat_pid = 0;
	}
	return 0;
}

/* ---- running muxconform ------------------------------------------------ */

struct run {
	char out[OUT_MAX];
	int status;
};

static void run_conform(struct run *r, const char *args)
{
	char cmd[4096];
	size_t n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s/muxconform %s 2>&1", build_dir(), args);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(r->out, 1, sizeof(r->out) - 1, p);
	r->out[n] = '\0';
	r->status = pclose(p);
	assert_true(WIFEXITED(r->status));
	r->status = WEXITSTATUS(r->status);
}

static unsigned count_lines(const char *s, const char *prefix)
{
	unsigned n = 0;
	size_t len = strlen(prefix);

	for (; *s; s = strchr(s, '\n') + 1) {
		if (!strncmp(s, prefix, len))
			n++;
		if (!strchr(s, '\n'))
			break;
	}
	return n;
}

/* The line of `rule`, as a pointer into out, or fail. */
static const char *rule_line(const char *out, const char *rule)
{
	char pass[128], failed[128];
	const char *p;

	snprintf(pass, sizeof(pass), "PASS %s\n", rule);
	snprintf(failed, sizeof(failed), "FAIL %s: ", rule);
	if ((p = strstr(out, pass)) || (p = strstr(out, failed)))
		return p;
	fail_msg("no line for rule %s in:\n%s", rule, out);
	return NULL;
}

static void assert_line(const char *out, const char *prefix)
{
	if (!strstr(out, prefix)) {
		fprintf(stderr, "muxconform printed:\n%s", out);
		fail_msg("expected a line starting '%s'", prefix);
	}
}

/* ---- against muxcat ---------------------------------------------------- */

static void test_every_rule_passes_against_muxcat(void **state)
{
	static struct run r, list;
	char args[64], tally[64];
	unsigned rules;

	(void)state;
	run_conform(&list, "--list");
	assert_int_equal(list.status, 0);
	rules = count_lines(list.out, "");
	assert_true(rules >= 25);

	snprintf(args, sizeof(args), "127.0.0.1 %d", start_muxcat());
	run_conform(&r, args);
	if (r.status != 0)
		fail_msg("muxconform against muxcat:\n%s", r.out);
	assert_int_equal(count_lines(r.out, "PASS "), rules);
	assert_int_equal(count_lines(r.out, "FAIL "), 0);
	snprintf(tally, sizeof(tally), "\n%u passed, 0 failed\n", rules);
	assert_non_null(strstr(r.out, tally));
	rule_line(r.out, "window-overflow");
	rule_line(r.out, "backlog-burst");
}

static void test_json_and_one_rule(void **state)
{
	static struct run r;
	char args[96];
	int port = start_muxcat();
	size_t len;

	(void)state;
	snprintf(args, sizeof(args), "--json 127.0.0.1 %d", port);
	run_conform(&r, args);
	assert_int_equal(r.status, 0);
	len = strlen(r.out);
	assert_int_equal(strncmp(r.out, "{\"rules\":[{\"rule\":\"stream-echo\","
				 "\"pass\":true,\"why\":\"\"}", 53), 0);
	assert_true(len > 20);
	assert_non_null(strstr(r.out, ",\"failed\":0}\n"));
	assert_null(strstr(r.out, "\"pass\":false"));

	/* The port in hex: the tools take numbers in decimal or 0x hex. */
	snprintf(args, sizeof(args), "--rule wndinc-zero --rule stream-echo "
		 "127.0.0.1 0x%x", port);
	run_conform(&r, args);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "PASS stream-echo\nPASS wndinc-zero\n"
				   "2 passed, 0 failed\n");
}

/* ---- against a broken peer --------------------------------------------- */

/*
 * The broken peer: accepts any number of connections and copies every DATA
 * frame back on the same id (SYN dropped, FIN kept); ignores everything
 * else. It never resets, never says GOAWAY, never grants window, checks
 * nothing - a peer that "works" for a plain echo and breaks every rule.
 */
#define BROKEN_CONNS 16

struct broken_conn {
	int fd;
	uint8_t buf[1 << 20];
	size_t len;
};

struct broken_peer {
	int listen_fd, port;
	int stop[2];
	pthread_t thread;
	struct broken_conn *conns[BROKEN_CONNS];
};

static void broken_reply(struct broken_conn *c)
{
	size_t off = 0;

	while (c->len - off >= MR_FRAME_HEADER_LEN) {
		struct mr_frame_header h;
		uint8_t head[MR_FRAME_HEADER_LEN];

		mr_frame_header_parse(c->buf + off, &h);
		if (c->len - off - MR_FRAME_HEADER_LEN < h.length)
			break;
		if (h.type == MR_FRAME_DATA) {
			h.flags &= MR_FLAG_FIN;
			mr_frame_header_pack(head, &h);
			if (send(c->fd, head, sizeof(head), MSG_NOSIGNAL) < 0 ||
			    send(c->fd, c->buf + off + MR_FRAME_HEADER_LEN,
				 h.length, MSG_NOSIGNAL) < 0)
				return;
		}
		off += MR_FRAME_HEADER_LEN + h.length;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
}

/* Reads what a connection has; false once it is closed. */
static bool broken_read(struct broken_conn *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);

	if (n <= 0)
		return false;
	c->len += (size_t)n;
	broken_reply(c);
	/* A frame larger than the buffer: drop it all (it is broken). */
	if (c->len == sizeof(c->buf))
		c->len = 0;
	return true;
}

static void broken_accept(struct broken_peer *b)
{
	int fd = accept(b->listen_fd, NULL, NULL), i;

	if (fd < 0)
		return;
	for (i = 0; i < BROKEN_CONNS; i++) {
		if (!b->conns[i]) {
			b->conns[i] = calloc(1, sizeof(*b->conns[i]));
			if (b->conns[i]) {
				b->conns[i]->fd = fd;
				return;
			}
		}
	}
	close(fd);
}

static void *broken_main(void *arg)
{
	struct broken_peer *b = arg;

	for (;;) {
		struct pollfd p[BROKEN_CONNS + 2];
		int i, map[BROKEN_CONNS + 2], n = 2;

		p[0] = (struct pollfd){.fd = b->stop[0], .events = POLLIN};
		p[1] = (struct pollfd){.fd = b->listen_fd, .events = POLLIN};
		for (i = 0; i < BROKEN_CONNS; i++) {
			if (b->conns[i]) {
				map[n] = i;
				p[n++] = (struct pollfd){.fd = b->conns[i]->fd,
							 .events = POLLIN};
			}
		}
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		if (p[0].revents)
			return NULL;
		if (p[1].revents)
			broken_accept(b);
		for (i = 2; i < n; i++) {
			struct broken_conn **c = &b->conns[map[i]];

			if (p[i].revents && !broken_read(*c)) {
				close((*c)->fd);
				free(*c);
				*c = NULL;
			}
		}
	}
}

static void test_a_broken_peer_fails_the_rules_it_breaks(void **state)
{
	static struct broken_peer b;
	static struct run r;
	char args[96];
	int i;

	(void)state;
	memset(&b, 0, sizeof(b));
	b.listen_fd = listen_any(&b.port);
	assert_int_equal(pipe(b.stop), 0);
	assert_int_equal(pthread_create(&b.thread, NULL, broken_main, &b), 0);

	snprintf(args, sizeof(args), "--timeout 700 127.0.0.1 %d", b.port);
	run_conform(&r, args);

	assert_int_equal(write(b.stop[1], "x", 1), 1);
	pthread_join(b.thread, NULL);
	for (i = 0; i < BROKEN_CONNS; i++) {
		if (b.conns[i]) {
			close(b.conns[i]->fd);
			free(b.conns[i]);
		}
	}
	close(b.listen_fd);
	close(b.stop[0]);
	close(b.stop[1]);

	assert_int_equal(r.status, 1);
	/* A plain echo works... */
	assert_line(r.out, "PASS stream-echo\n");
	assert_line(r.out, "PASS fin-separate-frame\n");
	assert_line(r.out, "PASS streams-independent\n");
	/* ...every rule it breaks fails, saying why. */
	assert_line(r.out, "FAIL syn-wrong-parity: expected GOAWAY "
			   "ProtocolError, but none came within the timeout\n");
	assert_line(r.out, "FAIL frame-size-rst: expected GOAWAY "
			   "FrameSizeError, but none came within the timeout\n");
	assert_line(r.out, "FAIL wndinc-zero: expected GOAWAY ProtocolError");
	assert_line(r.out, "FAIL data-unknown-stream: the peer sent DATA on "
			   "stream 9, which we never opened\n");
	assert_line(r.out, "FAIL empty-fin-unknown-ignored: the peer sent "
			   "DATA on stream 9, which we never opened\n");
	assert_line(r.out, "FAIL window-overflow: expected RST "
			   "FlowControlError on stream 3");
	assert_line(r.out, "FAIL wndinc-on-consume: no WNDINC for 256 KiB "
			   "consumed");
	assert_line(r.out, "FAIL window-respected: no WNDINC");
	assert_line(r.out, "FAIL rst-closes-stream: ");
	assert_line(r.out, "FAIL data-stream-zero: the peer sent a malformed "
			   "frame (type 1, stream 0, length 4: ProtocolError)\n");
	assert_true(count_lines(r.out, "FAIL ") >= 16);
	assert_non_null(strstr(r.out, " failed\n"));
}

/* ---- the command line ---------------------------------------------------- */

static void test_usage_and_unreachable_peer(void **state)
{
	static struct run r;
	char args[64];
	int port, fd;

	(void)state;
	run_conform(&r, "");
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.out, "muxconform: need HOST PORT"));
	run_conform(&r, "--rule no-such-rule 127.0.0.1 1");
	assert_int_equal(r.status, 2);
	run_conform(&r, "--timeout 0 127.0.0.1 1");
	assert_int_equal(r.status, 2);
	run_conform(&r, "-h");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "--json"));

	fd = listen_any(&port);
	close(fd); /* nobody listens there now */
	snprintf(args, sizeof(args), "127.0.0.1 %d", port);
	run_conform(&r, args);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.out, "cannot connect"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_every_rule_passes_against_muxcat,
					  stop_muxcat),
		cmocka_unit_test_teardown(test_json_and_one_rule, stop_muxcat),
		cmocka_unit_test(test_a_broken_peer_fails_the_rules_it_breaks),
		cmocka_unit_test(test_usage_and_unreachable_peer),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
