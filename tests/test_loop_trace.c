/*
 * test_loop_trace.c - the loop's frame tracer, seen from the outside.
 *
 * A session of the loop talks to a raw peer over a socketpair: the test
 * writes known frames (the first ones one byte per receive, so frames and
 * headers are split across completions), the application echoes "world"
 * and closes, the peer says GOAWAY. Covers: the callback sees exactly the
 * received frames, with offsets and muxdump's words; the sent frames are
 * exactly what the raw peer read, line for line as the codec formats those
 * bytes; session, direction and time fields; muxring_trace_line's layout;
 * MUXRING_TRACE=FILE writes the same lines to the file; an unwritable
 * MUXRING_TRACE path fails loop creation with a sentence naming it; the
 * option's callback takes precedence over the environment variable; a
 * malformed frame is traced with its error and ends the trace of its
 * direction, and the GOAWAY it causes is traced.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "muxring.h"
#include "wire/frame.h"
#include "wire/frame_text.h"

#define MAX_LINES 64
#define LINE_LEN 1024
#define RUN_NS (10ull * 1000000000u) /* one phase, at most */

struct capture {
	unsigned n;
	char line[MAX_LINES][LINE_LEN];        /* OFFSET<tab>TEXT */
	char full[MAX_LINES][LINE_LEN + 128];        /* muxring_trace_line */
	enum muxring_trace_dir dir[MAX_LINES];
	uint64_t session_id[MAX_LINES], time_ns[MAX_LINES];
	struct muxring_session *session[MAX_LINES];
};

static void capture_frame(const struct muxring_trace_frame *f, void *arg)
{
	struct capture *c = arg;

	if (c->n == MAX_LINES)
		return;
	snprintf(c->line[c->n], sizeof(c->line[0]), "%llu\t%s",
		 (unsigned long long)f->offset, f->text);
	muxring_trace_line(f, c->full[c->n], sizeof(c->full[0]));
	c->dir[c->n] = f->dir;
	c->session_id[c->n] = f->session_id;
	c->time_ns[c->n] = f->time_ns;
	c->session[c->n] = f->session;
	c->n++;
}

/* ---- the raw peer ---------------------------------------------------- */

static size_t put_header(uint8_t *out, uint32_t len, uint8_t type,
			 uint8_t flags, uint32_t id)
{
	struct mr_frame_header h = {len, type, flags, id};

	mr_frame_header_pack(out, &h);
	return MR_FRAME_HEADER_LEN;
}

/* SYN "hello", empty FIN, and an unknown frame of 3 bytes: 32 bytes. */
static size_t opening_bytes(uint8_t *out)
{
	size_t n = 0;

	n += put_header(out + n, 5, MR_FRAME_DATA, MR_FLAG_SYN, 3);
	memcpy(out + n, "hello", 5);
	n += 5;
	n += put_header(out + n, 0, MR_FRAME_DATA, MR_FLAG_FIN, 3);
	n += put_header(out + n, 3, 0xF, 0, 0);
	memcpy(out + n, "abc", 3);
	return n + 3;
}

static size_t goaway_bytes(uint8_t *out)
{
	size_t n = mr_frame_pack_goaway_head(out, 0, MUXRING_NO_ERROR, 3);

	memcpy(out + n, "bye", 3);
	return n + 3;
}

/* Appends what the raw end has to read now (nonblocking); true at EOF. */
static bool raw_read(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	for (;;) {
		ssize_t r = recv(fd, buf + *len, cap - *len, MSG_DONTWAIT);

		if (r == 0)
			return true;
		if (r < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			return false;
		}
		*len += (size_t)r;
		assert_true(*len < cap);
	}
}

/* True when the bytes hold a DATA frame with FIN for stream 3. */
static bool has_fin(const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (len - off >= MR_FRAME_HEADER_LEN) {
		struct mr_frame_header h;

		mr_frame_header_parse(p + off, &h);
		if (len - off - MR_FRAME_HEADER_LEN < h.length)
			break;
		if (h.type == MR_FRAME_DATA && h.flags & MR_FLAG_FIN &&
		    h.stream_id == 3)
			return true;
		off += MR_FRAME_HEADER_LEN + h.length;
	}
	return false;
}

/* ---- the application ------------------------------------------------- */

struct app {
	struct muxring_loop *loop;
	bool closed, ended;
	size_t got;         /* payload bytes of stream 3 received */
	uint8_t wire[4096]; /* what the raw peer read */
	size_t wire_len;
	bool wire_eof;
};

static void handle(struct app *a, struct muxring_cqe *c)
{
	switch (c->type) {
	case MUXRING_CQE_DATA:
		/* The bytes come one per receive, so the payload may too. */
		assert_true(a->got + c->view.len <= 5);
		assert_memory_equal(c->view.data, &"hello"[a->got],
				    c->view.len);
		a->got += c->view.len;
		muxring_view_release(&c->view);
		if (a->got == 5)
			assert_true(muxring_stream_write(c->stream, "world", 5,
							 0) >= 0);
		break;
	case MUXRING_CQE_EOF:
		assert_int_equal(muxring_stream_close(c->stream), 0);
		break;
	case MUXRING_CQE_STREAM_CLOSED:
		a->closed = true;
		break;
	case MUXRING_CQE_SESSION_ENDED:
		a->ended = true;
		break;
	default:
		break;
	}
}

static void turn(struct app *a, int64_t wait_ns)
{
	struct muxring_cqe *cqes[16];
	unsigned i, n;
	int ret = muxring_submit_and_wait(a->loop, 1, wait_ns);

	/* -EINTR: woken with nothing to hand out; the next turn goes on. */
	if (ret < 0 && ret != -EINTR)
		fail_msg("muxring_submit_and_wait: %d", ret);
	n = muxring_peek_batch_cqe(a->loop, cqes, 16);
	for (i = 0; i < n; i++)
		handle(a, cqes[i]);
	muxring_cq_advance(a->loop, n);
}

/*
 * The whole exchange on `loop`: opening bytes one per turn, the echo and
 * close, the peer's GOAWAY and EOF. Leaves in a->wire what the session
 * sent. Returns the session.
 */
static struct muxring_session *exchange(struct app *a)
{
	uint8_t out[64];
	size_t n = opening_bytes(out), i;
	uint64_t until = muxring_now_ns() + RUN_NS;
	struct muxring_session *s;
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	assert_int_equal(muxring_session_create(a->loop, fds[0],
						MUXRING_SERVER, NULL, 0, &s),
			 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(write(fds[1], out + i, 1), 1);
		turn(a, 2000000);
	}
	while (!(a->closed && has_fin(a->wire, a->wire_len))) {
		assert_true(muxring_now_ns() < until);
		turn(a, 2000000);
		raw_read(fds[1], a->wire, sizeof(a->wire), &a->wire_len);
	}
	n = goaway_bytes(out);
	assert_int_equal(write(fds[1], out, n), (ssize_t)n);
	assert_int_equal(shutdown(fds[1], SHUT_WR), 0);
	while (!a->ended || !a->wire_eof) {
		assert_true(muxring_now_ns() < until);
		turn(a, 2000000);
		if (!a->wire_eof)
			a->wire_eof = raw_read(fds[1], a->wire,
					       sizeof(a->wire), &a->wire_len);
	}
	close(fds[1]);
	return s;
}

/* The lines muxdump prints for `bytes` (whole frames), in `lines`. */
static unsigned dump_lines(const uint8_t *bytes, size_t len,
			   char lines[][LINE_LEN], unsigned max)
{
	size_t off = 0;
	unsigned n = 0;

	while (off < len && n < max) {
		struct mr_frame_header h;
		char text[MR_FRAME_TEXT_MAX(128)];

		assert_true(len - off >= MR_FRAME_HEADER_LEN);
		mr_frame_header_parse(bytes + off, &h);
		assert_true(len - off - MR_FRAME_HEADER_LEN >= h.length);
		mr_frame_text(text, sizeof(text), &h,
			      bytes + off + MR_FRAME_HEADER_LEN, h.length,
			      MR_FRAME_TEXT_PREVIEW);
		snprintf(lines[n++], LINE_LEN, "%zu\t%s", off, text);
		off += MR_FRAME_HEADER_LEN + h.length;
	}
	return n;
}

static const char *const want_recv[] = {
	"0\tDATA stream=3 len=5 flags=SYN \"hello\"",
	"13\tDATA stream=3 len=0 flags=FIN",
	"21\tUNKNOWN type=0xf stream=0 len=3",
	"32\tGOAWAY last=0 code=0 (NoError) debug=\"bye\"",
};

/* ---- tests ------------------------------------------------------------ */

static void test_callback_sees_every_frame_both_ways(void **state)
{
	static struct capture cap;
	static struct app a;
	struct muxring_loop_opts o = {.trace = capture_frame,
				      .trace_arg = &cap};
	char sent[MAX_LINES][LINE_LEN];
	unsigned i, nrecv = 0, nsent = 0, nwire;
	bool world = false;
	struct muxring_session *s;
	uint64_t t0, t1;

	(void)state;
	memset(&cap, 0, sizeof(cap));
	memset(&a, 0, sizeof(a));
	assert_int_equal(muxring_loop_create(&a.loop, &o), 0);
	t0 = muxring_now_ns();
	s = exchange(&a);
	t1 = muxring_now_ns();

	for (i = 0; i < cap.n; i++) {
		assert_int_equal(cap.session_id[i], 1);
		assert_ptr_equal(cap.session[i], s);
		assert_true(cap.time_ns[i] >= t0 && cap.time_ns[i] <= t1);
		if (cap.dir[i] == MUXRING_TRACE_RECV) {
			assert_true(nrecv < 4);
			assert_string_equal(cap.line[i], want_recv[nrecv]);
			nrecv++;
		} else {
			strcpy(sent[nsent++], cap.line[i]);
			world |= strstr(cap.line[i], "DATA stream=3 len=5") &&
				 strstr(cap.line[i], "\"world\"");
		}
	}
	assert_int_equal(nrecv, 4);
	assert_true(world);
	/* Sent lines are exactly the frames the peer read, in order. */
	{
		char wire[MAX_LINES][LINE_LEN];

		nwire = dump_lines(a.wire, a.wire_len, wire, MAX_LINES);
		assert_int_equal(nsent, nwire);
		for (i = 0; i < nsent; i++)
			assert_string_equal(sent[i], wire[i]);
	}
	muxring_loop_destroy(a.loop);
}

static void test_trace_line_layout(void **state)
{
	struct muxring_trace_frame f = {
		.session_id = 7,
		.time_ns = 12345678901ull,
		.dir = MUXRING_TRACE_RECV,
		.offset = 13,
		.text = "DATA stream=3 len=0 flags=FIN",
	};
	char line[128], small[10];

	(void)state;
	assert_int_equal(muxring_trace_line(&f, line, sizeof(line)),
			 (int)strlen("12.345678\tsession=7\trecv\t13\t"
				     "DATA stream=3 len=0 flags=FIN"));
	assert_string_equal(line, "12.345678\tsession=7\trecv\t13\t"
				  "DATA stream=3 len=0 flags=FIN");
	f.dir = MUXRING_TRACE_SEND;
	assert_true(muxring_trace_line(&f, small, sizeof(small)) >
		    (int)sizeof(small));
	assert_string_equal(small, "12.345678");
}

/* Reads a trace file: checks every line's session and direction, the
 * received ones against want_recv, and returns the sent ones (OFFSET<tab>
 * TEXT) in `sent`. Returns how many were sent. */
static unsigned read_trace_file(const char *path, char sent[][LINE_LEN])
{
	char line[LINE_LEN + 128];
	unsigned recv_lines = 0, send_lines = 0;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t');

		line[strcspn(line, "\n")] = '\0';
		assert_non_null(tab);
		assert_int_equal(strncmp(tab, "\tsession=1\t", 11), 0);
		if (!strncmp(tab + 11, "recv\t", 5)) {
			assert_true(recv_lines < 4);
			assert_string_equal(tab + 16, want_recv[recv_lines]);
			recv_lines++;
		} else {
			assert_int_equal(strncmp(tab + 11, "send\t", 5), 0);
			assert_true(send_lines < MAX_LINES);
			strcpy(sent[send_lines++], tab + 16);
		}
	}
	fclose(f);
	assert_int_equal(recv_lines, 4);
	return send_lines;
}

static void test_env_var_writes_the_lines_to_a_file(void **state)
{
	static struct app a;
	static char sent[MAX_LINES][LINE_LEN], wire[MAX_LINES][LINE_LEN];
	char path[] = "/tmp/muxring-trace-XXXXXX";
	unsigned i, nsent;
	int fd;

	(void)state;
	memset(&a, 0, sizeof(a));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(setenv("MUXRING_TRACE", path, 1), 0);
	assert_int_equal(muxring_loop_create(&a.loop, NULL), 0);
	unsetenv("MUXRING_TRACE");
	exchange(&a);
	muxring_loop_destroy(a.loop);

	nsent = read_trace_file(path, sent);
	unlink(path);
	assert_int_equal(nsent, dump_lines(a.wire, a.wire_len, wire, MAX_LINES));
	for (i = 0; i < nsent; i++)
		assert_string_equal(sent[i], wire[i]);
}

static void test_env_var_bad_path_fails_loop_creation(void **state)
{
	struct muxring_loop *loop = NULL;

	(void)state;
	assert_int_equal(setenv("MUXRING_TRACE", "/nonexistent-dir/trace", 1),
			 0);
	assert_int_equal(muxring_loop_create(&loop, NULL), -ENOENT);
	unsetenv("MUXRING_TRACE");
	assert_null(loop);
	assert_non_null(strstr(muxring_loop_create_error(),
			       "MUXRING_TRACE: cannot open /nonexistent-dir/trace"));
}

static void test_callback_wins_over_the_env_var(void **state)
{
	static struct capture cap;
	static struct app a;
	struct muxring_loop_opts o = {.trace = capture_frame,
				      .trace_arg = &cap};
	char path[] = "/tmp/muxring-trace-XXXXXX";
	struct stat st;
	int fd;

	(void)state;
	memset(&cap, 0, sizeof(cap));
	memset(&a, 0, sizeof(a));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(setenv("MUXRING_TRACE", path, 1), 0);
	assert_int_equal(muxring_loop_create(&a.loop, &o), 0);
	unsetenv("MUXRING_TRACE");
	exchange(&a);
	muxring_loop_destroy(a.loop);
	assert_int_equal(stat(path, &st), 0);
	unlink(path);
	assert_int_equal(st.st_size, 0);
	assert_true(cap.n >= 6);
}

/* A malformed frame is traced with the error it carries, and the scanner
 * of that direction stops there (nothing after it can be framed); the
 * session's GOAWAY for it is traced on the send side. */
static void test_a_malformed_frame_ends_the_trace_of_its_direction(void **state)
{
	static struct capture cap;
	static struct app a;
	struct muxring_loop_opts o = {.trace = capture_frame,
				      .trace_arg = &cap};
	uint8_t out[64];
	size_t n = 0;
	unsigned i, nrecv = 0;
	bool goaway = false;
	struct muxring_session *s;
	uint64_t until = muxring_now_ns() + RUN_NS;
	int fds[2];

	(void)state;
	memset(&cap, 0, sizeof(cap));
	memset(&a, 0, sizeof(a));
	assert_int_equal(muxring_loop_create(&a.loop, &o), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	assert_int_equal(muxring_session_create(a.loop, fds[0], MUXRING_SERVER,
						NULL, 0, &s), 0);
	n += put_header(out + n, 2, MR_FRAME_DATA, MR_FLAG_SYN, 3);
	memcpy(out + n, "he", 2);
	n += 2;
	n += put_header(out + n, 5, MR_FRAME_WNDINC, 0, 3);
	memcpy(out + n, "12345", 5);
	n += 5;
	n += put_header(out + n, 0, MR_FRAME_DATA, MR_FLAG_FIN, 3);
	assert_int_equal(write(fds[1], out, n), (ssize_t)n);
	while (!a.ended) {
		assert_true(muxring_now_ns() < until);
		turn(&a, 2000000);
		if (!a.wire_eof && (a.wire_eof = raw_read(fds[1], a.wire,
							   sizeof(a.wire),
							   &a.wire_len)))
			shutdown(fds[1], SHUT_WR);
	}
	close(fds[1]);
	muxring_loop_destroy(a.loop);

	for (i = 0; i < cap.n; i++) {
		if (cap.dir[i] == MUXRING_TRACE_SEND) {
			goaway |= strstr(cap.line[i], "GOAWAY last=3 code=8 "
						      "(FrameSizeError)") != NULL;
			continue;
		}
		assert_true(nrecv < 2);
		assert_string_equal(cap.line[i],
				    nrecv ? "10\tWNDINC stream=3 len=5 "
					    "malformed=8 (FrameSizeError)"
					  : "0\tDATA stream=3 len=2 flags=SYN "
					    "\"he\"");
		nrecv++;
	}
	assert_int_equal(nrecv, 2);
	assert_true(goaway);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_callback_sees_every_frame_both_ways),
		cmocka_unit_test(test_trace_line_layout),
		cmocka_unit_test(test_env_var_writes_the_lines_to_a_file),
		cmocka_unit_test(test_env_var_bad_path_fails_loop_creation),
		cmocka_unit_test(test_callback_wins_over_the_env_var),
		cmocka_unit_test(
			test_a_malformed_frame_ends_the_trace_of_its_direction),
	};

	unsetenv("MUXRING_TRACE");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
