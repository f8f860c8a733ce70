/*
 * threaded_server.c - a multi-threaded muxring server: one loop per thread,
 * every thread listening on the same port, and a client that checks it.
 *
 *   build/examples/threaded_server serve -t 4 9000 &     # port 0: any port
 *   build/examples/threaded_server check -c 16 -n 8 -m 2 127.0.0.1 9000
 *
 * `serve` starts THREADS threads (-t, default 4). Each creates its own loop
 * and its own listening socket bound to the same port with SO_REUSEPORT,
 * and hands it to muxring_listen_fd(); the kernel spreads connections over
 * the sockets, so every session lives on the thread that accepted it and
 * the loops share nothing (a loop, and everything on it, belongs to one
 * thread). Each thread is an echo server that starts every stream's answer
 * with the line "thread N\n". The main thread prints "listening on PORT"
 * and waits for SIGINT or SIGTERM; it then wakes every loop through an
 * eventfd that each watches with muxring_poll_fd(), each loop closes its
 * listener and its sessions with GOAWAY, and the program exits 0.
 *
 * `check` opens CONNECTIONS sessions (-c, default 16) on one loop, with
 * STREAMS streams each (-n, default 8) that send a few KiB of their own
 * pattern and half-close; it checks every echo and counts the threads that
 * answered. It prints "ok: C sessions x N streams, served by T threads"
 * and exits 0 when every echo is right and at least MIN threads (-m,
 * default 1) answered; 1 otherwise.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <muxring.h>

#define BATCH 256
#define MAX_THREADS 64
#define STOP_TAG 1 /* user_data of the eventfd's POLL entry */

/* ---- the server: one of these per thread ----------------------------------- */

struct worker {
	pthread_t thread;
	unsigned index;
	int listen_fd;           /* given to the loop by the thread */
	int stop_fd;             /* the eventfd that says "stop" */
	struct muxring_loop *loop;
	struct muxring_listener *listener;
	struct muxring_session **sessions; /* ready, not yet ended */
	unsigned nsessions, cap;
	bool stopping;
	int error;               /* why the thread gave up, or 0 */
};

/* A TCP socket on 127.0.0.1:port, listening, shared with the other
 * threads' sockets through SO_REUSEPORT. Returns the fd or -errno. */
static int reuseport_socket(int port)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, SOMAXCONN)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int socket_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		return -errno;
	return ntohs(sa.sin_port);
}

static void track(struct worker *w, struct muxring_session *sess)
{
	if (w->nsessions == w->cap) {
		unsigned cap = w->cap ? 2 * w->cap : 16;
		struct muxring_session **p = realloc(w->sessions,
						     cap * sizeof(*p));

		if (!p) {
			muxring_session_close(sess, MUXRING_INTERNAL_ERROR,
					      NULL, 0);
			return;
		}
		w->sessions = p;
		w->cap = cap;
	}
	w->sessions[w->nsessions++] = sess;
}

static void untrack(struct worker *w, struct muxring_session *sess)
{
	for (unsigned i = 0; i < w->nsessions; i++)
		if (w->sessions[i] == sess) {
			w->sessions[i] = w->sessions[--w->nsessions];
			return;
		}
}

static void worker_stop(struct worker *w)
{
	w->stopping = true;
	muxring_listener_close(w->listener);
	for (unsigned i = 0; i < w->nsessions; i++)
		muxring_session_close(w->sessions[i], MUXRING_NO_ERROR,
				      NULL, 0);
}

static void worker_entry(struct worker *w, struct muxring_cqe *cqe)
{
	char line[32];
	int len;

	switch (cqe->type) {
	case MUXRING_CQE_SESSION_READY:
		track(w, cqe->session);
		if (w->stopping)
			muxring_session_close(cqe->session, MUXRING_NO_ERROR,
					      NULL, 0);
		break;
	case MUXRING_CQE_STREAM_ACCEPTED:
		len = snprintf(line, sizeof(line), "thread %u\n", w->index);
		muxring_stream_write(cqe->stream, line, (size_t)len, 0);
		break;
	case MUXRING_CQE_DATA:
		/* The write copies the bytes, so the view goes back to the
		 * receive ring at once. */
		muxring_stream_write(cqe->stream, cqe->view.data,
				     cqe->view.len, 0);
		muxring_view_release(&cqe->view);
		break;
	case MUXRING_CQE_EOF:
		muxring_stream_close(cqe->stream);
		break;
	case MUXRING_CQE_SESSION_ENDED:
		untrack(w, cqe->session);
		break;
	case MUXRING_CQE_POLL:
		if (cqe->user_data == STOP_TAG && !w->stopping)
			worker_stop(w);
		break;
	default:
		break;
	}
}

static void *worker_main(void *arg)
{
	/* A small receive ring per thread: the threads' memory adds up. */
	struct muxring_loop_opts lo = { .recv_buffers = 64,
					.send_arena_size = 1u << 20 };
	struct worker *w = arg;
	bool listening = true;
	int err;

	err = muxring_loop_create(&w->loop, &lo);
	if (err < 0) {
		fprintf(stderr, "threaded_server: thread %u: %s\n", w->index,
			muxring_loop_create_error());
		close(w->listen_fd);
		w->error = err;
		return NULL;
	}
	err = muxring_listen_fd(w->loop, w->listen_fd, NULL, 0, &w->listener);
	if (!err)
		err = muxring_poll_fd(w->loop, w->stop_fd, POLLIN, STOP_TAG);
	while (!err && (listening || w->nsessions)) {
		struct muxring_cqe *cqes[BATCH];
		unsigned n;

		err = muxring_submit_and_wait(w->loop, 1, -1);
		if (err == -EINTR || err > 0)
			err = 0;
		n = muxring_peek_batch_cqe(w->loop, cqes, BATCH);
		for (unsigned i = 0; i < n; i++) {
			worker_entry(w, cqes[i]);
			if (cqes[i]->type == MUXRING_CQE_LISTENER_CLOSED)
				listening = false;
		}
		muxring_cq_advance(w->loop, n);
	}
	if (err)
		fprintf(stderr, "threaded_server: thread %u: %s\n", w->index,
			muxring_strerror(err));
	w->error = err;
	muxring_loop_destroy(w->loop);
	free(w->sessions);
	return NULL;
}

/* Opens one socket per worker on the same port (port 0: the first one's
 * port). Returns the port or -errno. */
static int open_sockets(struct worker *ws, unsigned n, int port)
{
	for (unsigned i = 0; i < n; i++) {
		ws[i].listen_fd = reuseport_socket(port);
		if (ws[i].listen_fd < 0) {
			int err = ws[i].listen_fd;

			while (i--)
				close(ws[i].listen_fd);
			return err;
		}
		if (i == 0)
			port = socket_port(ws[0].listen_fd);
	}
	return port;
}

static int serve(unsigned nthreads, int port)
{
	struct worker ws[MAX_THREADS] = { 0 };
	int stop_fd = eventfd(0, EFD_CLOEXEC), sig, status = 0;
	sigset_t stop;
	uint64_t one = 1;

	/* Blocked before the threads start, so that they inherit the mask
	 * and the signals come only to sigwait() below. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	port = stop_fd < 0 ? -errno : open_sockets(ws, nthreads, port);
	if (port < 0) {
		fprintf(stderr, "threaded_server: cannot listen: %s\n",
			strerror(-port));
		return 3;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		ws[i].index = i;
		ws[i].stop_fd = stop_fd;
		if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i])) {
			fprintf(stderr, "threaded_server: no thread %u\n", i);
			nthreads = i;
			status = 1;
			break;
		}
	}
	if (!status) {
		printf("listening on %d\n", port);
		fflush(stdout);
		sigwait(&stop, &sig);
	}
	/* Readable from now on: every loop sees it and stops. */
	if (write(stop_fd, &one, sizeof(one)) != sizeof(one))
		status = 1;
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(ws[i].thread, NULL);
		if (ws[i].error)
			status = 1;
	}
	close(stop_fd);
	return status;
}

/* ---- the client ------------------------------------------------------------- */

struct check_stream {
	unsigned number;       /* global stream number: its pattern */
	size_t size;           /* bytes sent */
	char reply[16384];
	size_t reply_len;
	bool ok;
};

struct checker {
	struct muxring_loop *loop;
	struct check_stream *streams;
	unsigned nstreams, open_streams, open_sessions;
	unsigned failed;
	bool served_by[MAX_THREADS];
};

static char pattern(unsigned number, size_t k)
{
	return (char)('A' + (number * 7 + k) % 58);
}

/* Whether the reply is "thread N\n" followed by exactly what was sent;
 * records N. */
static bool check_reply(struct checker *ck, const struct check_stream *s)
{
	const char *nl = memchr(s->reply, '\n', s->reply_len);
	unsigned thread;

	if (!nl || sscanf(s->reply, "thread %u\n", &thread) != 1 ||
	    thread >= MAX_THREADS ||
	    s->reply_len - (size_t)(nl + 1 - s->reply) != s->size)
		return false;
	for (size_t k = 0; k < s->size; k++)
		if (nl[1 + k] != pattern(s->number, k))
			return false;
	ck->served_by[thread] = true;
	return true;
}

static void checker_entry(struct checker *ck, struct muxring_cqe *cqe)
{
	struct check_stream *s = muxring_cqe_get_data(cqe);
	size_t room;

	switch (cqe->type) {
	case MUXRING_CQE_DATA:
		room = sizeof(s->reply) - s->reply_len;
		memcpy(s->reply + s->reply_len, cqe->view.data,
		       cqe->view.len < room ? cqe->view.len : room);
		s->reply_len += cqe->view.len < room ? cqe->view.len : room;
		muxring_view_release(&cqe->view);
		break;
	case MUXRING_CQE_STREAM_CLOSED:
		s->ok = cqe->res == 0 && check_reply(ck, s);
		if (!s->ok)
			ck->failed++;
		ck->open_streams--;
		break;
	case MUXRING_CQE_SESSION_READY:
		if (cqe->res < 0) {
			fprintf(stderr, "threaded_server: connect: %s\n",
				muxring_strerror((int)cqe->res));
			ck->failed++;
		}
		break;
	case MUXRING_CQE_SESSION_ENDED:
		ck->open_sessions--;
		break;
	default:
		break;
	}
}

static int turn(struct checker *ck)
{
	struct muxring_cqe *cqes[BATCH];
	unsigned n;
	int err = muxring_submit_and_wait(ck->loop, 1, -1);

	if (err < 0 && err != -EINTR)
		return err;
	n = muxring_peek_batch_cqe(ck->loop, cqes, BATCH);
	for (unsigned i = 0; i < n; i++)
		checker_entry(ck, cqes[i]);
	muxring_cq_advance(ck->loop, n);
	return 0;
}

/* Dials one session and starts its streams. */
static int start_session(struct checker *ck, const char *host,
			 const char *port, unsigned per_session,
			 struct muxring_session **sessp)
{
	int err = muxring_connect(ck->loop, host, port, NULL, 0, sessp);

	if (err)
		return err;
	ck->open_sessions++;
	for (unsigned k = 0; k < per_session && !err; k++) {
		struct check_stream *s = &ck->streams[ck->nstreams];
		struct muxring_stream *st;
		char data[8192];

		s->number = ck->nstreams++;
		s->size = 1000 + (size_t)s->number * 97 % 7000;
		for (size_t b = 0; b < s->size; b++)
			data[b] = pattern(s->number, b);
		err = muxring_stream_open(*sessp, (uintptr_t)s, &st);
		if (!err)
			err = muxring_stream_write(st, data, s->size, 0);
		if (!err)
			err = muxring_stream_close_write(st);
		if (!err)
			ck->open_streams++;
	}
	return err;
}

static int check(const char *host, const char *port, unsigned conns,
		 unsigned per_session, unsigned min_threads)
{
	struct checker ck = { 0 };
	struct muxring_session **sess = calloc(conns, sizeof(*sess));
	unsigned threads = 0, started = 0;
	int err;

	ck.streams = calloc((size_t)conns * per_session, sizeof(*ck.streams));
	err = sess && ck.streams ? muxring_loop_create(&ck.loop, NULL) : -ENOMEM;
	for (; !err && started < conns; started++)
		err = start_session(&ck, host, port, per_session,
				    &sess[started]);
	while (!err && ck.open_streams)
		err = turn(&ck);
	for (unsigned i = 0; i < started && ck.loop; i++)
		muxring_session_close(sess[i], MUXRING_NO_ERROR, NULL, 0);
	while (!err && ck.open_sessions)
		err = turn(&ck);
	if (ck.loop)
		muxring_loop_destroy(ck.loop);
	for (unsigned t = 0; t < MAX_THREADS; t++)
		threads += ck.served_by[t];
	free(sess);
	free(ck.streams);
	if (err || ck.failed || threads < min_threads) {
		fprintf(stderr, "threaded_server: %u wrong echoes, %u threads "
				"answered (%u wanted)%s%s\n", ck.failed,
			threads, min_threads, err ? ": " : "",
			err ? muxring_strerror(err) : "");
		return 1;
	}
	printf("ok: %u sessions x %u streams, served by %u threads\n", conns,
	       per_session, threads);
	return 0;
}

/* ---- main ----------------------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr,
		"usage: threaded_server serve [-t THREADS] PORT\n"
		"       threaded_server check [-c CONNECTIONS] [-n STREAMS] "
		"[-m MIN_THREADS] HOST PORT\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned threads = 4, conns = 16, streams = 8, min_threads = 1;
	bool serving;
	int opt;

	if (argc < 2)
		return usage();
	serving = !strcmp(argv[1], "serve");
	if (!serving && strcmp(argv[1], "check"))
		return usage();
	optind = 2;
	while ((opt = getopt(argc, argv, serving ? "t:" : "c:n:m:")) != -1) {
		unsigned v = (unsigned)strtoul(optarg, NULL, 0);

		if (opt == 't')
			threads = v;
		else if (opt == 'c')
			conns = v;
		else if (opt == 'n')
			streams = v;
		else if (opt == 'm')
			min_threads = v;
		else
			return usage();
	}
	if (argc - optind != (serving ? 1 : 2) || !threads ||
	    threads > MAX_THREADS || !conns || !streams)
		return usage();
	if (serving)
		return serve(threads, atoi(argv[optind]));
	return check(argv[optind], argv[optind + 1], conns, streams,
		     min_threads);
}
