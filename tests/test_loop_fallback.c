/*
 * test_loop_fallback.c - the loop when the kernel (or the caller) takes
 * features away, and when io_uring is not there at all.
 *
 * Covers: echo traffic (100 streams, every byte checked) with each
 * fallback path forced through muxring_loop_opts.disable: single-shot
 * receives instead of multishot, no DEFER_TASKRUN, no SINGLE_ISSUER or
 * COOP_TASKRUN (plain ring), one-at-a-time accept through a listener, no
 * registered files (sockets named by fd); a file table with fewer slots
 * than sessions (the rest name their fd); the
 * MUXRING_DISABLE_FEATURES environment variable; loop creation failing
 * under a seccomp filter that makes io_uring_setup return EPERM or ENOSYS
 * (in a child process), with an error text that names the cause and the
 * remedy; options out of range; a session on something that is not a
 * stream socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop_harness.h"
#include "uring/loop.h"
#include "uring/session_io.h"

static void echo_with(unsigned disable, bool listener)
{
	struct muxring_loop_opts lo = {.disable = disable};
	struct muxring_session_opts so = {.accept_backlog = 256};
	struct lh *h = lh_new(&lo);
	struct lh_peer *c, *s;
	unsigned i, features = muxring_loop_features(h->loop);

	assert_int_equal(features & disable, 0);
	if (listener) {
		struct muxring_listener *l;
		struct lh_peer *tmpl = lh_peer_new(h, true, LH_ECHO, 0);
		char port[16];

		assert_int_equal(muxring_listen(h->loop, NULL, "0", 0, &so,
						(uintptr_t)tmpl, &l),
				 0);
		snprintf(port, sizeof(port), "%d", muxring_listener_port(l));
		for (i = 0; i < 4; i++) {
			c = lh_peer_new(h, false, LH_ECHO, 0);
			assert_int_equal(muxring_connect(h->loop, "127.0.0.1",
							 port, NULL,
							 (uintptr_t)c, &c->sess),
					 0);
			lh_open(c, LH_SOURCE, 100000);
		}
		lh_run(h, lh_all_streams_closed, 30);
		assert_int_equal(muxring_listener_close(l), 0);
		tmpl->ready = false;
	} else {
		lh_pair_tcp(h, &so, &c, &s);
		for (i = 0; i < 100; i++)
			lh_open(c, LH_SOURCE, 50000 + i);
		lh_run(h, lh_all_streams_closed, 30);
	}
	lh_assert_streams_ok(h);
	for (c = h->peers; c; c = c->next)
		if (!c->server && c->sess)
			assert_int_equal(muxring_session_close(c->sess, 0, NULL, 0),
					 0);
	lh_run(h, lh_all_sessions_ended, 10);
	lh_free(h);
}

static void test_single_shot_receive(void **state)
{
	(void)state;
	echo_with(MUXRING_FEAT_RECV_MULTISHOT, false);
}

static void test_no_defer_taskrun(void **state)
{
	(void)state;
	echo_with(MUXRING_FEAT_DEFER_TASKRUN, false);
}

static void test_plain_ring(void **state)
{
	(void)state;
	echo_with(MUXRING_FEAT_DEFER_TASKRUN | MUXRING_FEAT_SINGLE_ISSUER |
			  MUXRING_FEAT_COOP_TASKRUN | MUXRING_FEAT_RECV_MULTISHOT,
		  false);
}

static void test_single_accept(void **state)
{
	(void)state;
	echo_with(MUXRING_FEAT_ACCEPT_MULTISHOT, true);
	echo_with(0, true);
}

static void test_no_fixed_files(void **state)
{
	(void)state;
	echo_with(MUXRING_FEAT_FIXED_FILES, false);
	echo_with(MUXRING_FEAT_FIXED_FILES, true);
}

/* A file table with one slot left for eight sessions: one session gets it,
 * the others name their fd, and all of them carry their bytes. */
static void test_file_table_full(void **state)
{
	struct muxring_session_opts so = {.accept_backlog = 256};
	struct lh *h = lh_new(NULL);
	struct lh_peer *c[4], *s[4];
	unsigned i, fixed = 0;

	(void)state;
	assert_true(muxring_loop_features(h->loop) & MUXRING_FEAT_FIXED_FILES);
	h->loop->files_free_count = 1;
	for (i = 0; i < 4; i++) {
		lh_pair_tcp(h, &so, &c[i], &s[i]);
		lh_open(c[i], LH_SOURCE, 100000 + i);
	}
	for (i = 0; i < 4; i++)
		fixed += (c[i]->sess->file_slot >= 0) +
			 (s[i]->sess->file_slot >= 0);
	assert_int_equal(fixed, 1);
	assert_int_equal(h->loop->files_free_count, 0);
	lh_run(h, lh_all_streams_closed, 30);
	lh_assert_streams_ok(h);
	for (i = 0; i < 4; i++)
		assert_int_equal(muxring_session_close(c[i]->sess, 0, NULL, 0),
				 0);
	lh_run(h, lh_all_sessions_ended, 10);
	/* The slot came back when its session closed. */
	assert_int_equal(h->loop->files_free_count, 1);
	lh_free(h);
}

static void test_env_disables(void **state)
{
	struct muxring_loop *loop;

	(void)state;
	setenv("MUXRING_DISABLE_FEATURES", "0x8", 1);
	assert_int_equal(muxring_loop_create(&loop, NULL), 0);
	unsetenv("MUXRING_DISABLE_FEATURES");
	assert_int_equal(muxring_loop_features(loop) &
				 MUXRING_FEAT_RECV_MULTISHOT,
			 0);
	muxring_loop_destroy(loop);
	assert_int_equal(muxring_loop_create(&loop, NULL), 0);
	assert_string_equal(muxring_loop_create_error(), "");
	muxring_loop_destroy(loop);
}

/* In a child: filter io_uring_setup to fail with `err`, then create. */
static int child_create_under_seccomp(int err, const char *expect)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K,
			 SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};
	struct muxring_loop *loop = NULL;
	int rc;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 10;
	rc = muxring_loop_create(&loop, NULL);
	if (rc != -err || loop)
		return 11;
	fprintf(stderr, "    (child) %s\n", muxring_loop_create_error());
	if (!strstr(muxring_loop_create_error(), expect))
		return 12;
	return 0;
}

static void seccomp_case(int err, const char *expect)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_create_under_seccomp(err, expect));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_io_uring_unavailable(void **state)
{
	(void)state;
	seccomp_case(EPERM, "seccomp");
	seccomp_case(ENOSYS, "seccomp");
}

static void test_bad_options(void **state)
{
	struct muxring_loop_opts lo = {.recv_buffers = 65536};
	struct muxring_loop *loop = NULL;

	(void)state;
	assert_int_equal(muxring_loop_create(&loop, &lo), -EINVAL);
	assert_null(loop);
	assert_non_null(strstr(muxring_loop_create_error(), "32768"));
	lo.recv_buffers = 16;
	lo.recv_low_water = 16;
	assert_int_equal(muxring_loop_create(&loop, &lo), -EINVAL);
	lo.recv_low_water = 0;
	lo.send_arena_size = 1000;
	lo.send_buffer_size = 4096;
	assert_int_equal(muxring_loop_create(&loop, &lo), -EINVAL);
	assert_int_equal(muxring_loop_create(NULL, NULL), -EINVAL);
}

static void test_session_on_non_socket(void **state)
{
	struct muxring_session_opts so = {.window = 1000};
	struct muxring_session *sess;
	struct lh *h = lh_new(NULL);
	int p[2], sv[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(muxring_session_create(h->loop, p[0], MUXRING_CLIENT,
						NULL, 0, &sess),
			 -EINVAL);
	/* The fd was taken (closed) even though the call failed. */
	assert_int_equal(close(p[0]), -1);
	assert_int_equal(errno, EBADF);
	close(p[1]);
	/* A window below the protocol's 256 KiB. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(muxring_session_create(h->loop, sv[0], MUXRING_CLIENT,
						&so, 0, &sess),
			 -EINVAL);
	close(sv[1]);
	lh_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_shot_receive),
		cmocka_unit_test(test_no_defer_taskrun),
		cmocka_unit_test(test_plain_ring),
		cmocka_unit_test(test_single_accept),
		cmocka_unit_test(test_no_fixed_files),
		cmocka_unit_test(test_file_table_full),
		cmocka_unit_test(test_env_disables),
		cmocka_unit_test(test_io_uring_unavailable),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_session_on_non_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
