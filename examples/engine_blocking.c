/*
 * engine_blocking.c - an echo client over a plain blocking socket that uses
 * only the sans-I/O engine (muxring_engine.h): no io_uring, no event loop
 * library, just poll(), read() and sendmsg().
 *
 * Run it against any muxado echo server, for example muxcat's:
 *
 *   build/muxcat -l -e -k 9000 &
 *   build/examples/engine_blocking 127.0.0.1 9000
 *   build/examples/engine_blocking -n 16 -s 65536 -t 5 127.0.0.1 9000
 *
 * It opens N streams (-n, default 4), writes SIZE bytes (-s, default 1 MiB)
 * of a pattern of its own on each and half-closes it, checks that exactly
 * those bytes come back followed by end-of-file, and closes the session
 * with GOAWAY(NoError). Each stream has a read deadline (-t seconds,
 * default 10) that is re-armed whenever its bytes arrive. On success it
 * prints one line, e.g. "ok: 4 streams, 4194304 bytes echoed", and exits
 * 0; 1 when something did not come back right, 2 on a usage error, 3 when
 * it cannot connect.
 *
 * The whole driver is the loop in run(): run the engine's timers with the
 * time of clock_gettime() (the engine reads no clock), handle its entries,
 * sendmsg() the frames muxring_engine_send_iov() gathered and say how many
 * bytes left, read() into a reference-counted buffer and feed it (the views
 * of DATA entries point into that buffer: the payload is never copied),
 * and poll() until the socket or the next deadline needs us.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <muxring_engine.h>

#define READ_SIZE (64u << 10)
#define MAX_IOV 64

struct echo_stream {
	struct muxring_stream *handle; /* NULL once its STREAM_CLOSED is done */
	size_t received;               /* bytes echoed back so far */
	bool written;                  /* WRITE_DONE with every byte */
	bool eof;                      /* the echo ended */
	bool broken;                   /* wrong bytes, error or timeout */
};

struct client {
	int fd;
	struct muxring_engine *engine;
	struct echo_stream *streams;
	unsigned nstreams;
	size_t size;                   /* bytes per stream */
	uint64_t timeout_ns;           /* read deadline of each stream */
	unsigned open;                 /* streams without STREAM_CLOSED yet */
	bool transport_down;
	bool session_ended;
	int session_error;             /* res of SESSION_ENDED */
};

static uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The byte at `offset` of stream number i: different on every stream, so
 * that data crossing streams is caught. */
static uint8_t pattern(unsigned i, size_t offset)
{
	return (uint8_t)(offset * 7 + i * 13 + (offset >> 10));
}

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *list, *ai;
	int fd = -1;

	if (getaddrinfo(host, port, &hints, &list))
		return -1;
	for (ai = list; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(list);
	return fd;
}

/* ---- the streams ---------------------------------------------------------- */

/* Opens stream i and queues its bytes from a buffer of their own, which the
 * engine sends without copying and frees after the WRITE_DONE. */
static int start_stream(struct client *c, unsigned i)
{
	struct muxring_engine_buf *buf = muxring_engine_buf_alloc(c->size);
	struct muxring_stream *st;
	uint8_t *p;
	int err;

	if (!buf)
		return -ENOMEM;
	p = muxring_engine_buf_data(buf);
	for (size_t k = 0; k < c->size; k++)
		p[k] = pattern(i, k);
	err = muxring_engine_stream_open(c->engine, i, &st);
	if (!err)
		err = muxring_engine_stream_write_buf(st, buf, p, c->size, i);
	muxring_engine_buf_unref(buf); /* the write holds its own reference */
	if (err)
		return err;
	c->streams[i].handle = st;
	c->open++;
	/* FIN follows the write; the deadline catches a server that never
	 * answers. */
	muxring_engine_stream_close_write(st);
	return muxring_engine_stream_set_deadline(st, MUXRING_DEADLINE_READ,
						  clock_ns() + c->timeout_ns);
}

static void fail_stream(struct echo_stream *s, unsigned i, const char *why)
{
	if (!s->broken)
		fprintf(stderr, "engine_blocking: stream %u: %s\n", i, why);
	s->broken = true;
	muxring_engine_stream_reset(s->handle, MUXRING_STREAM_CANCELLED);
}

static void on_data(struct client *c, struct muxring_cqe *cqe)
{
	unsigned i = (unsigned)cqe->user_data;
	struct echo_stream *s = &c->streams[i];
	const uint8_t *p = cqe->view.data;

	for (size_t k = 0; k < cqe->view.len && !s->broken; k++)
		if (s->received + k >= c->size || p[k] != pattern(i, s->received + k))
			fail_stream(s, i, "echoed bytes differ");
	s->received += cqe->view.len;
	/* Releasing the view credits the stream's window: the server may
	 * send more. */
	muxring_engine_view_release(&cqe->view);
	muxring_engine_stream_set_deadline(s->handle, MUXRING_DEADLINE_READ,
					   clock_ns() + c->timeout_ns);
}

static void on_entry(struct client *c, struct muxring_cqe *cqe)
{
	unsigned i = (unsigned)cqe->user_data;
	struct echo_stream *s = &c->streams[i];

	switch (cqe->type) {
	case MUXRING_CQE_DATA:
		on_data(c, cqe);
		break;
	case MUXRING_CQE_WRITE_DONE:
		s->written = cqe->res == (int64_t)c->size;
		if (!s->written)
			fail_stream(s, i, muxring_strerror((int)cqe->res));
		break;
	case MUXRING_CQE_EOF:
		s->eof = true;
		if (s->received != c->size)
			fail_stream(s, i, "echo ended early");
		muxring_engine_stream_set_deadline(s->handle,
						   MUXRING_DEADLINE_READ, 0);
		break;
	case MUXRING_CQE_DEADLINE:
		fail_stream(s, i, "no echo within the timeout");
		break;
	case MUXRING_CQE_STREAM_CLOSED:
		if (cqe->res < 0)
			fail_stream(s, i, muxring_strerror((int)cqe->res));
		s->handle = NULL;
		c->open--;
		break;
	case MUXRING_CQE_STREAM_ACCEPTED:
		/* An echo server opens nothing; refuse whatever it opens. */
		muxring_engine_stream_reset(cqe->stream,
					    MUXRING_STREAM_REFUSED);
		break;
	case MUXRING_CQE_SESSION_ENDED:
		c->session_ended = true;
		c->session_error = (int)cqe->res;
		break;
	default:
		break;
	}
	/* The entry is handled: a STREAM_CLOSED handle ends here. */
	muxring_engine_cqe_done(c->engine, cqe);
}

/* ---- the transport --------------------------------------------------------- */

/* Sends what the engine has, as much as the socket takes now. */
static void send_frames(struct client *c)
{
	struct iovec iov[MAX_IOV];
	struct msghdr msg = { .msg_iov = iov };
	ssize_t n;

	msg.msg_iovlen = muxring_engine_send_iov(c->engine, iov, MAX_IOV,
						 SIZE_MAX);
	if (!msg.msg_iovlen)
		return;
	/* MSG_DONTWAIT: poll said there is room, but maybe not for all. */
	n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n >= 0) {
		muxring_engine_sent(c->engine, (size_t)n);
	} else if (errno != EAGAIN && errno != EINTR) {
		c->transport_down = true;
		muxring_engine_feed_end(c->engine, -errno);
	}
}

/* Reads once into a fresh buffer and feeds it. */
static void receive(struct client *c)
{
	struct muxring_engine_buf *buf = muxring_engine_buf_alloc(READ_SIZE);
	ssize_t n;

	if (!buf) {
		muxring_engine_feed_end(c->engine, -ENOMEM);
		c->transport_down = true;
		return;
	}
	n = read(c->fd, muxring_engine_buf_data(buf), READ_SIZE);
	if (n > 0) {
		muxring_engine_feed_buf(c->engine, buf,
					muxring_engine_buf_data(buf), (size_t)n);
	} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
		c->transport_down = true;
		muxring_engine_feed_end(c->engine, n == 0 ? 0 : -errno);
	}
	/* DATA views hold their own references; this buffer lives on until
	 * the last of them is released. */
	muxring_engine_buf_unref(buf);
}

static int poll_timeout_ms(uint64_t next_deadline)
{
	uint64_t now = clock_ns();

	if (!next_deadline)
		return -1;
	if (next_deadline <= now)
		return 0;
	return (int)((next_deadline - now) / 1000000u) + 1;
}

/* ---- the loop ------------------------------------------------------------ */

static void run(struct client *c)
{
	bool closing = false;

	while (!c->session_ended || muxring_engine_want_send(c->engine)) {
		struct muxring_cqe cqe;
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		uint64_t next = muxring_engine_expire(c->engine, clock_ns());

		while (muxring_engine_poll(c->engine, &cqe))
			on_entry(c, &cqe);
		if (!c->open && !closing) {
			/* Every stream is over: say goodbye. */
			muxring_engine_close(c->engine, MUXRING_NO_ERROR,
					     "done", 4);
			closing = true;
			continue;
		}
		if (c->transport_down)
			break;
		if (muxring_engine_want_send(c->engine))
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, poll_timeout_ms(next)) < 0 && errno != EINTR)
			break;
		if (pfd.revents & POLLOUT)
			send_frames(c);
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
			receive(c);
	}
}

/* After the GOAWAY left: no more sending, and what the server still says
 * is read until its end-of-file (at most a second), so that closing with
 * unread bytes does not reset the connection under the GOAWAY. */
static void linger(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char sink[4096];

	shutdown(fd, SHUT_WR);
	while (poll(&pfd, 1, 1000) > 0 && read(fd, sink, sizeof(sink)) > 0)
		;
}

/* ---- main ------------------------------------------------------------------ */

static int usage(void)
{
	fprintf(stderr, "usage: engine_blocking [-n STREAMS] [-s SIZE] "
			"[-t SECONDS] HOST PORT\n");
	return 2;
}

static int report(const struct client *c)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < c->nstreams; i++) {
		const struct echo_stream *s = &c->streams[i];

		ok += s->written && s->eof && !s->broken &&
		      s->received == c->size;
	}
	if (ok != c->nstreams ||
	    c->session_error != MUXRING_ERR(MUXRING_SESSION_CLOSED)) {
		fprintf(stderr, "engine_blocking: %u of %u streams ok; session "
				"ended: %s\n", ok, c->nstreams,
			muxring_strerror(c->session_error));
		return 1;
	}
	printf("ok: %u streams, %zu bytes echoed\n", ok,
	       (size_t)ok * c->size);
	return 0;
}

int main(int argc, char **argv)
{
	struct client c = { .nstreams = 4, .size = 1u << 20,
			    .timeout_ns = 10000000000u };
	int opt, status;

	while ((opt = getopt(argc, argv, "n:s:t:")) != -1) {
		if (opt == 'n')
			c.nstreams = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 's')
			c.size = strtoull(optarg, NULL, 0);
		else if (opt == 't')
			c.timeout_ns = strtoull(optarg, NULL, 0) * 1000000000u;
		else
			return usage();
	}
	if (argc - optind != 2 || !c.nstreams || !c.timeout_ns)
		return usage();
	c.fd = dial(argv[optind], argv[optind + 1]);
	if (c.fd < 0) {
		fprintf(stderr, "engine_blocking: cannot connect to %s port "
				"%s\n", argv[optind], argv[optind + 1]);
		return 3;
	}
	c.streams = calloc(c.nstreams, sizeof(*c.streams));
	if (!c.streams ||
	    muxring_engine_create(&c.engine, MUXRING_CLIENT, NULL) < 0) {
		fprintf(stderr, "engine_blocking: out of memory\n");
		return 1;
	}
	for (unsigned i = 0; i < c.nstreams; i++) {
		int err = start_stream(&c, i);

		if (err) {
			fprintf(stderr, "engine_blocking: stream %u: %s\n", i,
				muxring_strerror(err));
			return 1;
		}
	}
	run(&c);
	if (muxring_engine_done(c.engine))
		linger(c.fd);
	close(c.fd);
	status = report(&c);
	muxring_engine_destroy(c.engine);
	free(c.streams);
	return status;
}
