/*
 * test_examples.c - the programs in examples/ run as processes, the way
 * their top-of-file comments say to run them.
 *
 * Runs the sanitizer builds in $MUXRING_BUILD_DIR/examples (build/asan when
 * unset) and muxcat from $MUXRING_BUILD_DIR. Each child's stdout and stderr
 * go to files of their own (nothing can block on a full pipe, not even a
 * long sanitizer report), which are read when the child has exited, or
 * polled for the "listening on PORT" line of a server started on port 0.
 *
 * Covers: engine_blocking against `muxcat -l -e -k` (4 x 1 MiB, then 64
 * streams, then empty streams; the echoed bytes are checked by the example
 * itself, which prints how many came back right), its read deadline firing
 * against a muxcat that never answers, and its exit status when nothing
 * listens; kv_rpc's server and its 1,000-stream check, then SIGTERM ending
 * the server cleanly; threaded_server with 4 threads checked by 32
 * sessions, at least two threads answering, then SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
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

#define TEST_ALARM_S 120 /* a whole test, at most */
#define WAIT_MS 60000    /* one child, at most */
#define MAX_CHILDREN 4

struct child {
	pid_t pid;
	int stdin_fd;        /* our end of its stdin pipe, -1 when none */
	char out_path[64], err_path[64];
	bool exited;
	int status;          /* exit code, or 128 + signal */
	char *out, *err;     /* read once it exited */
};

static struct child children[MAX_CHILDREN];

static const char *build_dir(void)
{
	const char *dir = getenv("MUXRING_BUILD_DIR");

	return dir ? dir : "build/asan";
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The whole file as a NUL-terminated string. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t len = 0, cap = 4096, n;
	char *text = malloc(cap);

	assert_non_null(f);
	assert_non_null(text);
	while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len - 1 == 0) {
			cap *= 2;
			text = realloc(text, cap);
			assert_non_null(text);
		}
	}
	fclose(f);
	text[len] = '\0';
	return text;
}

static struct child *child_slot(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (!children[i].pid) {
			memset(&children[i], 0, sizeof(children[i]));
			children[i].stdin_fd = -1;
			return &children[i];
		}
	fail_msg("too many children");
	return NULL;
}

/*
 * Starts `path` (relative to the build dir) with the NULL-terminated args.
 * With hold_stdin its stdin is a pipe we keep open; otherwise /dev/null.
 */
static struct child *start(const char *path, const char *const *args,
			   bool hold_stdin)
{
	struct child *c = child_slot();
	const char *argv[16];
	char exe[4096];
	int in[2] = { -1, -1 }, n = 0;

	snprintf(exe, sizeof(exe), "%s/%s", build_dir(), path);
	argv[n++] = exe;
	while (*args && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	snprintf(c->out_path, sizeof(c->out_path), "/tmp/test_examples.XXXXXX");
	snprintf(c->err_path, sizeof(c->err_path), "/tmp/test_examples.XXXXXX");
	int out = mkstemp(c->out_path), err = mkstemp(c->err_path);

	assert_true(out >= 0 && err >= 0);
	if (hold_stdin)
		assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(hold_stdin ? in[0] : null, STDIN_FILENO);
		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	close(out);
	close(err);
	if (hold_stdin) {
		close(in[0]);
		c->stdin_fd = in[1];
	}
	return c;
}

static bool reap(struct child *c)
{
	int st;

	if (c->exited)
		return true;
	if (waitpid(c->pid, &st, WNOHANG) != c->pid)
		return false;
	c->exited = true;
	c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	c->out = read_file(c->out_path);
	c->err = read_file(c->err_path);
	return true;
}

static void dump(const char *name, const struct child *c)
{
	char *out = c->out ? NULL : read_file(c->out_path);
	char *err = c->err ? NULL : read_file(c->err_path);

	fprintf(stderr, "--- %s: exited=%d status=%d\n--- stdout:\n%.2000s\n"
		"--- stderr:\n%.4000s\n", name, c->exited, c->status,
		c->out ? c->out : out, c->err ? c->err : err);
	free(out);
	free(err);
}

/* Waits for the child to exit; fails the test after WAIT_MS. */
static void wait_exit(const char *name, struct child *c)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (!reap(c)) {
		if (now_ms() > end) {
			dump(name, c);
			fail_msg("%s did not exit within %d ms", name, WAIT_MS);
		}
		sleep_ms(5);
	}
}

/* Asserts how the child ended, and that no sanitizer spoke. */
static void expect_exit(const char *name, struct child *c, int status)
{
	wait_exit(name, c);
	if (c->status != status || strstr(c->err, "Sanitizer") ||
	    strstr(c->err, "runtime error")) {
		dump(name, c);
		fail_msg("%s: exit status %d, expected %d (or a sanitizer "
			 "report)", name, c->status, status);
	}
}

static void expect_out(const char *name, struct child *c, const char *text)
{
	if (strcmp(c->out, text)) {
		dump(name, c);
		fail_msg("%s: stdout is not \"%s\"", name, text);
	}
}

/* The port a server started on port 0 prints: "listening on PORT\n". */
static int listening_port(const char *name, struct child *c)
{
	uint64_t end = now_ms() + WAIT_MS;
	int port = 0;

	while (!port) {
		char *out = read_file(c->out_path);

		if (sscanf(out, "listening on %d\n", &port) != 1)
			port = 0;
		free(out);
		if (!port && (reap(c) || now_ms() > end)) {
			dump(name, c);
			fail_msg("%s did not start listening", name);
		}
		if (!port)
			sleep_ms(5);
	}
	return port;
}

static void stop(const char *name, struct child *c)
{
	assert_int_equal(kill(c->pid, SIGTERM), 0);
	expect_exit(name, c, 0);
}

/* Kills the child if it still runs, removes its files, frees its slot. */
static void child_release(struct child *c)
{
	if (!c->exited) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	if (c->stdin_fd >= 0)
		close(c->stdin_fd);
	unlink(c->out_path);
	unlink(c->err_path);
	free(c->out);
	free(c->err);
	memset(c, 0, sizeof(*c));
}

/* Also runs after a failed test. */
static int teardown(void **state)
{
	(void)state;
	alarm(0);
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i].pid)
			child_release(&children[i]);
	return 0;
}

static void on_alarm(int sig)
{
	(void)sig;
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i].pid && !children[i].exited)
			kill(children[i].pid, SIGKILL);
	_exit(1);
}

static int setup(void **state)
{
	(void)state;
	signal(SIGALRM, on_alarm);
	alarm(TEST_ALARM_S);
	return 0;
}

/* ---- muxcat as the peer ------------------------------------------------------ */

/*
 * Starts `muxcat -l -e -k` (echo_mode), or `muxcat -l` in its default mode
 * (one stream to stdout, its stdin held open: it never answers), on a port
 * that was free a moment ago, trying another when it lost that port;
 * returns once it listens.
 */
static struct child *start_muxcat(bool echo_mode, char *port, size_t len)
{
	for (int attempt = 0; attempt < 10; attempt++) {
		const char *echo[] = { "-l", "-e", "-k", port, NULL };
		const char *plain[] = { "-l", port, NULL };
		uint64_t end = now_ms() + WAIT_MS;
		struct child *c;
		int p = lp_free_port();

		snprintf(port, len, "%d", p);
		c = start("muxcat", echo_mode ? echo : plain, !echo_mode);
		while (!lp_listening(p) && !reap(c) && now_ms() < end)
			sleep_ms(5);
		if (!c->exited && lp_listening(p))
			return c;
		wait_exit("muxcat", c);
		if (!strstr(c->err, "in use")) {
			dump("muxcat", c);
			fail_msg("muxcat did not start listening");
		}
		child_release(c); /* lost the port race: try another */
	}
	fail_msg("no free port");
	return NULL;
}

/* ---- the tests ------------------------------------------------------------- */

static void test_engine_blocking_against_muxcat(void **state)
{
	char port[16];
	struct child *srv = start_muxcat(true, port, sizeof(port));
	const char *big[] = { "127.0.0.1", port, NULL };
	const char *many[] = { "-n", "64", "-s", "3000", "127.0.0.1", port, NULL };
	const char *empty[] = { "-n", "3", "-s", "0", "127.0.0.1", port, NULL };
	struct child *c;

	(void)state;
	c = start("examples/engine_blocking", big, false);
	expect_exit("engine_blocking", c, 0);
	expect_out("engine_blocking", c, "ok: 4 streams, 4194304 bytes echoed\n");
	c = start("examples/engine_blocking", many, false);
	expect_exit("engine_blocking", c, 0);
	expect_out("engine_blocking", c, "ok: 64 streams, 192000 bytes echoed\n");
	c = start("examples/engine_blocking", empty, false);
	expect_exit("engine_blocking", c, 0);
	expect_out("engine_blocking", c, "ok: 3 streams, 0 bytes echoed\n");
	/* muxcat -e -k serves on, through all three sessions. */
	assert_false(reap(srv));
}

/* A server that takes the stream but never answers: the example's read
 * deadline, run by muxring_engine_expire() with its own clock, fires. */
static void test_engine_blocking_deadline(void **state)
{
	char port[16];
	struct child *srv = start_muxcat(false, port, sizeof(port));
	const char *args[] = { "-n", "1", "-s", "100", "-t", "1", "127.0.0.1",
			       port, NULL };
	struct child *c;
	uint64_t t0 = now_ms();

	(void)state;
	c = start("examples/engine_blocking", args, false);
	expect_exit("engine_blocking", c, 1);
	assert_true(now_ms() - t0 >= 1000);
	assert_non_null(strstr(c->err, "stream 0: no echo within the timeout"));
	assert_string_equal(c->out, "");
	(void)srv;
}

static void test_engine_blocking_refused(void **state)
{
	char port[16];
	const char *args[] = { "127.0.0.1", port, NULL };
	struct child *c;

	(void)state;
	snprintf(port, sizeof(port), "%d", lp_free_port());
	c = start("examples/engine_blocking", args, false);
	expect_exit("engine_blocking", c, 3);
	assert_non_null(strstr(c->err, "cannot connect"));
}

static void test_kv_rpc(void **state)
{
	const char *serve[] = { "serve", "0", NULL };
	char port[16];
	const char *check[] = { "check", "127.0.0.1", port, NULL };
	struct child *srv = start("examples/kv_rpc", serve, false), *c;

	(void)state;
	snprintf(port, sizeof(port), "%d", listening_port("kv_rpc", srv));
	c = start("examples/kv_rpc", check, false);
	expect_exit("kv_rpc check", c, 0);
	expect_out("kv_rpc check", c, "ok: 1000 SET, 1000 GET, 500 DEL, "
				      "1000 GET, 1000 streams in flight\n");
	stop("kv_rpc serve", srv);
}

static void test_threaded_server(void **state)
{
	const char *serve[] = { "serve", "-t", "4", "0", NULL };
	char port[16];
	const char *check[] = { "check", "-c", "32", "-n", "8", "-m", "2",
				"127.0.0.1", port, NULL };
	struct child *srv = start("examples/threaded_server", serve, false), *c;
	unsigned threads = 0;

	(void)state;
	snprintf(port, sizeof(port), "%d",
		 listening_port("threaded_server", srv));
	c = start("examples/threaded_server", check, false);
	expect_exit("threaded_server check", c, 0);
	/* 32 connections over 4 SO_REUSEPORT sockets: all on one thread
	 * would happen once in 4^31 runs. */
	assert_int_equal(sscanf(c->out, "ok: 32 sessions x 8 streams, served "
					"by %u threads\n", &threads), 1);
	assert_true(threads >= 2 && threads <= 4);
	stop("threaded_server serve", srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_engine_blocking_against_muxcat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_blocking_deadline,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_blocking_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_rpc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threaded_server, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
