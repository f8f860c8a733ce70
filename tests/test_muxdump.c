/*
 * test_muxdump.c - the frame dumper, run as a program on golden vectors and
 * on hand-made broken input: every line it prints for a known capture, and
 * the exit status that tells a clean stream from a truncated or malformed
 * one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

struct run {
	char out[8192];
	int status;
};

/* Runs muxdump with `args`, feeding `input` (may be NULL) on stdin. */
static void run_muxdump(struct run *r, const char *args, const char *input)
{
	const char *dir = getenv("MUXRING_BUILD_DIR");
	char cmd[1024], in_path[] = "/tmp/muxdump-in-XXXXXX";
	FILE *p;
	size_t n;
	int fd = -1;

	if (input) {
		fd = mkstemp(in_path);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, input, strlen(input)), (ssize_t)strlen(input));
		close(fd);
	}
	snprintf(cmd, sizeof(cmd), "%s/muxdump %s < %s 2>/dev/null",
		 dir ? dir : "build", args, input ? in_path : "/dev/null");
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(r->out, 1, sizeof(r->out) - 1, p);
	r->out[n] = '\0';
	r->status = pclose(p);
	assert_true(WIFEXITED(r->status));
	r->status = WEXITSTATUS(r->status);
	if (input)
		unlink(in_path);
}

static void test_a_golden_capture_prints_one_line_per_frame(void **state)
{
	struct run r;

	(void)state;
	run_muxdump(&r, "-x tests/vectors/hello-echo.client.hex", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out,
		"0\tDATA stream=3 len=5 flags=SYN \"hello\"\n"
		"13\tDATA stream=3 len=0 flags=FIN\n"
		"21\tWNDINC stream=3 increment=5\n"
		"33\tGOAWAY last=0 code=0 (NoError) debug=\"no error\"\n");
}

static void test_rst_and_goaway_codes_are_named(void **state)
{
	struct run r;

	(void)state;
	run_muxdump(&r, "-x tests/vectors/goaway-server.server.hex", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "GOAWAY last=3 code=10 (EnhanceYourCalm) "
				      "debug=\"server going away: maintenance\""));
	run_muxdump(&r, "-x tests/vectors/rst-stream-closed.server.hex", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "RST stream=3 code=4 (StreamClosed)"));
}

static void test_every_vector_decodes_to_whole_frames(void **state)
{
	static const char *const names[] = {
		"accept-backlog-overflow", "close-after-closewrite",
		"goaway-debug-overread", "goaway-server", "heartbeat",
		"hello-echo", "open-syn-fin-empty", "rst-stream-closed",
		"server-close-idle", "stream-ids", "typed-stream",
		"window-wndinc",
	};
	char args[256];
	struct run r;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		for (int side = 0; side < 2; side++) {
			snprintf(args, sizeof(args),
				 "-x --preview 0 tests/vectors/%s.%s.hex", names[i],
				 side ? "server" : "client");
			run_muxdump(&r, args, NULL);
			assert_int_equal(r.status, 0);
			assert_null(strstr(r.out, "truncated"));
			assert_null(strstr(r.out, "malformed"));
		}
	}
}

static void test_a_cut_frame_is_reported_as_truncated(void **state)
{
	struct run r;

	(void)state;
	/* DATA|SYN stream 3 announcing 5 bytes, only 2 present. */
	run_muxdump(&r, "-x", "000005120000000368 65");
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "0\ttruncated: 10 bytes left\n");
}

static void test_a_malformed_frame_is_named_with_its_error(void **state)
{
	struct run r;

	(void)state;
	/* RST of length 3 (FrameSizeError), then a WNDINC on stream 0
	 * (ProtocolError), then a valid unknown-type frame. */
	run_muxdump(&r, "-x", "00000300 00000003 000000\n"
			      "00000420 00000000 00000001\n"
			      "000000f0 00000007\n");
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out,
		"0\tRST stream=3 len=3 malformed=8 (FrameSizeError)\n"
		"11\tWNDINC stream=0 len=4 malformed=1 (ProtocolError)\n"
		"23\tUNKNOWN type=0xf stream=7 len=0\n");
}

static void test_bad_usage_and_bad_hex_exit_2(void **state)
{
	struct run r;

	(void)state;
	run_muxdump(&r, "--no-such-flag", NULL);
	assert_int_equal(r.status, 2);
	run_muxdump(&r, "-x", "zz");
	assert_int_equal(r.status, 2);
	run_muxdump(&r, "/nonexistent/file", NULL);
	assert_int_equal(r.status, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_golden_capture_prints_one_line_per_frame),
		cmocka_unit_test(test_rst_and_goaway_codes_are_named),
		cmocka_unit_test(test_every_vector_decodes_to_whole_frames),
		cmocka_unit_test(test_a_cut_frame_is_reported_as_truncated),
		cmocka_unit_test(test_a_malformed_frame_is_named_with_its_error),
		cmocka_unit_test(test_bad_usage_and_bad_hex_exit_2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
