/*
 * impl_muxring.c - the muxring impl: every workload over ONE loopback TCP
 * connection carrying the cell's N muxado streams.
 *
 * run() connects a socket pair over 127.0.0.1 (bench_listen,
 * bench_connect, accept), then starts two threads, each with its own
 * muxring loop and one session on its end of the connection:
 *
 *   server  serves what the client opens: rpc streams are echoed, open
 *           and bulk streams are read to FIN and answered (`size` bytes,
 *           or 1 byte) then closed, heartbeat load is read and dropped;
 *           it ends when the client's GOAWAY and end-of-file end the
 *           session.
 *   client  runs the cell (bench.h says what each workload does and
 *           measures), then closes the session and waits for its end.
 *
 * Only the public API (include/muxring.h) is used, the way an
 * application would: one muxring_submit_and_wait per turn, then a batch
 * of completion entries peeked and advanced.  Where the API avoids a copy
 * the bench takes it: received data is used in place (views into the
 * receive ring, released at once), and bulk / heartbeat payloads leave
 * from the loop's registered send arena (muxring_buf_get +
 * muxring_stream_write_zc), filled with the payload pattern once, so no
 * payload byte is copied in user space on either side.  The rpc requests
 * and echoes use muxring_stream_write_quiet (a copy of 64 B, and no
 * WRITE_DONE entry: the answer is the only thing each side waits for); the
 * small replies of open and bulk use muxring_stream_write.
 *
 * Per-workload tuning is what an application would choose for such
 * traffic, and is reported here rather than hidden: bulk and heartbeat
 * sessions grant a larger receive window (the receiver's choice; the
 * sender's window is always the peer's grant) and use larger receive
 * buffers; idle opens its streams in paced batches so that the
 * completion queues stay small, and measures the marginal cost of a
 * stream, not the loop's fixed buffers; heartbeat starts its clock (and
 * the heartbeat) after 100 ms of load, past the ramp-up of the fresh TCP
 * connection (HB_WARMUP_NS says why).
 *
 * The sessions workload is the exception to "one connection": the
 * server loop listens (muxring_listen_fd) and the client loop dials the
 * cell's N sessions, one TCP connection and one rpc stream each.  With
 * --loops, lanes.c runs several copies of all this side by side.
 *
 * MUXBENCH_STATS=1 prints each loop's counters (muxring_loop_stats) and,
 * for heartbeat, more percentiles of the round trip, on stderr.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <muxring.h>
#include <muxring_tls.h>

#define NAME "muxring"

/* Entries taken per peek. */
#define BATCH 256u
/* Longest single wait of a loop, so that stall checks run (ns). */
#define WAIT_NS (200 * 1000 * 1000ll)
/* Heartbeat: a missed echo is reported after interval + this. */
#define HB_TOLERANCE_NS (1000 * 1000 * 1000ull)
/* Idle: streams opened per batch before waiting for the server. */
#define IDLE_BATCH 1024u
/* Bulk and heartbeat: receive window granted per stream, and the loop's
 * receive buffers (count x size) and send arena (size x chunk). */
#define BULK_WINDOW (16u << 20)
#define BULK_RECV_BUFFERS 256u
#define BULK_RECV_BUFFER_SIZE (64u << 10)
#define BULK_ARENA (32u << 20)
#define BULK_CHUNK (256u << 10)
/* Heartbeat load: writes of `size` in flight per stream. */
#define HB_WRITES_PER_STREAM 4u
/* Heartbeat: the load runs this long before the clock starts and the
 * heartbeat begins, so that what is measured is the loaded steady state,
 * not the ramp-up of a fresh TCP connection: on loopback its receive
 * window starts small and opens once per timer tick (4 ms at HZ=250), so
 * for its first ~40 ms the connection moves 2 MiB per tick and a beat
 * waits behind milliseconds of queued load. (The pools' ping has a
 * connection of its own, which the load's ramp-up does not touch.) */
#define HB_WARMUP_NS (100 * 1000 * 1000ull)

/* Sessions: the receive ring of each loop (16 MiB, faulted in when the
 * loop is created, before the first memory sample). */
#define SESSIONS_RECV_BUFFERS 8192u
#define SESSIONS_RECV_BUFFER_SIZE 2048u
/* Sessions: descriptors kept back beyond two per session. */
#define SESSIONS_FD_SLACK 64u

/* What both threads share; written before they start, except the
 * atomics. */
struct mx_shared {
	const struct bench_cell *cell;
	int sfd, cfd;               /* the two ends; each thread owns one
				       (sessions: sfd listens, cfd is -1) */
	uint16_t port;              /* sessions: where sfd listens */
	unsigned nsessions;         /* sessions: as many of the cell's N as
				       the descriptor limit allows */
	atomic_ulong accepted;      /* streams the server accepted */
	atomic_bool server_up;      /* the server's session exists */
	atomic_bool client_failed;  /* the client gave up: server, stop */
	int server_err, client_err;

	/* Client results. */
	uint64_t t_start, t_end;
	uint64_t ops, bytes;
	double bytes_per_stream, kernel_bytes_per_stream;
	struct bench_latency lat;
};

/* MUXBENCH_STATS=1: the loop's counters on stderr at the end of a cell. */
static void print_stats(const char *who, struct muxring_loop *loop)
{
	struct muxring_stats st;

	if (!loop || !getenv("MUXBENCH_STATS"))
		return;
	muxring_loop_stats(loop, &st);
	fprintf(stderr,
		"\n  %s: frames in %llu out %llu, bytes in %llu out %llu, enters %llu (%.2f per frame out), sends %llu (quiet %llu), recv completions %llu (buffers %llu, enobufs %llu, copied %llu, rearms %llu), buffers held max %llu, features 0x%x\n",
		who, (unsigned long long)st.frames_in,
		(unsigned long long)st.frames_out,
		(unsigned long long)st.bytes_in,
		(unsigned long long)st.bytes_out,
		(unsigned long long)st.enters,
		st.frames_out ? (double)st.enters / (double)st.frames_out : 0.0,
		(unsigned long long)st.sends,
		(unsigned long long)st.quiet_sends,
		(unsigned long long)st.recv_completions,
		(unsigned long long)st.recv_buffers_filled,
		(unsigned long long)st.recv_enobufs,
		(unsigned long long)st.recv_copied,
		(unsigned long long)st.recv_rearms,
		(unsigned long long)st.recv_buffers_held_max,
		muxring_loop_features(loop));
}

/* ---- options per workload --------------------------------------------- */

static void loop_opts(const struct bench_cell *cell,
		      struct muxring_loop_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->flags = cell->muxring_flags;
	o->busy_poll_us = cell->busy_poll_us;
	switch (cell->workload) {
	case BENCH_BULK:
	case BENCH_HEARTBEAT:
		o->recv_buffers = BULK_RECV_BUFFERS;
		o->recv_buffer_size = BULK_RECV_BUFFER_SIZE;
		o->send_arena_size = BULK_ARENA;
		o->send_buffer_size = cell->workload == BENCH_BULK ?
					      BULK_CHUNK :
					      (unsigned)cell->size;
		break;
	case BENCH_SESSIONS:
		/* Thousands of sessions may each complete a receive in one
		 * turn, before the turn gives buffers back: the ring needs
		 * one per session answering at once, small ones for 72-byte
		 * frames, or receives end in -ENOBUFS and are re-armed. */
		o->recv_buffers = SESSIONS_RECV_BUFFERS;
		o->recv_buffer_size = SESSIONS_RECV_BUFFER_SIZE;
		break;
	case BENCH_IDLE:
		/* Idle traffic is SYNs only; a few buffers do. */
		o->recv_buffers = 16;
		o->send_arena_size = 64u << 10;
		break;
	default:
		break;
	}
}

static void session_opts(const struct bench_cell *cell,
			 struct muxring_session_opts *o)
{
	unsigned n = cell->workload == BENCH_SESSIONS ? 1 : cell->streams;

	memset(o, 0, sizeof(*o));
	/* Every stream of the cell may announce itself in one turn. */
	o->accept_backlog = n + 64;
	o->max_streams = n + 64 > 4096 ? n + 64 : 4096;
	switch (cell->workload) {
	case BENCH_BULK:
		o->window = BULK_WINDOW;
		break;
	case BENCH_HEARTBEAT:
		o->flags = MUXRING_SESSION_TYPED;
		/* The default window: the bytes in flight ahead of a
		 * heartbeat are what its round trip waits for. */
		break;
	case BENCH_IDLE:
		o->accept_backlog = IDLE_BATCH * 2;
		break;
	default:
		break;
	}
}

/* TLS cells: the session runs through libmuxring-tls with the shared
 * contexts (bench_tls_ctx). The client verifies the server's address.
 * Returns 0, or -1 after printing the error. */
static int apply_tls(const struct bench_cell *cell, bool server,
		     struct muxring_tls **tls, struct muxring_session_opts *o)
{
	struct muxring_tls_opts to = {
		.ssl_ctx = bench_tls_ctx(server),
		.server_name = server ? NULL : "127.0.0.1",
	};

	*tls = NULL;
	if (!cell->tls)
		return 0;
	if (!to.ssl_ctx)
		return bench_error(NAME, "OpenSSL: cannot make the TLS contexts");
	if (muxring_tls_new(tls, server ? MUXRING_SERVER : MUXRING_CLIENT, &to))
		return bench_error(NAME, "muxring_tls_new: %s",
				   muxring_tls_new_error());
	muxring_tls_apply(*tls, o);
	return 0;
}

static int make_loop(struct muxring_loop **loop, const struct bench_cell *cell)
{
	struct muxring_loop_opts o;
	int err;

	loop_opts(cell, &o);
	err = muxring_loop_create(loop, &o);
	if (err)
		return bench_error(NAME, "muxring_loop_create: %s",
				   muxring_loop_create_error()[0] ?
					   muxring_loop_create_error() :
					   muxring_strerror(err));
	return 0;
}

/* ---- server ------------------------------------------------------------- */

struct mx_server {
	struct mx_shared *sh;
	const struct bench_cell *cell;
	struct muxring_loop *loop;
	struct muxring_session *sess;
	uint8_t *reply;             /* open: `size` bytes of reply */
	unsigned sessions;          /* sessions that will end: 1, or the
				       sessions workload's N */
	unsigned ended;             /* SESSION_ENDED entries seen */
	bool closing;               /* the client closed its sessions */
};

static const uint8_t one_byte = '!';

/* The peer finished sending on a stream: answer as the workload says. */
static int server_eof(struct mx_server *sv, struct muxring_stream *st)
{
	int err = 0;

	switch (sv->cell->workload) {
	case BENCH_OPEN:
		err = muxring_stream_write(st, sv->reply, sv->cell->size, 0);
		break;
	case BENCH_BULK:
		err = muxring_stream_write(st, &one_byte, 1, 0);
		break;
	default:
		break;
	}
	if (err)
		return bench_error(NAME, "server write: %s",
				   muxring_strerror(err));
	err = muxring_stream_close(st);
	if (err)
		return bench_error(NAME, "server close: %s",
				   muxring_strerror(err));
	return 0;
}

static int server_entry(struct mx_server *sv, struct muxring_cqe *cqe)
{
	int err;

	switch (cqe->type) {
	case MUXRING_CQE_SESSION_READY:
		if (cqe->res < 0)
			return bench_error(NAME, "server session: %s",
					   muxring_strerror((int)cqe->res));
		return 0;
	case MUXRING_CQE_STREAM_ACCEPTED:
		atomic_fetch_add_explicit(&sv->sh->accepted, 1,
					  memory_order_relaxed);
		return 0;
	case MUXRING_CQE_DATA:
		if (sv->cell->workload == BENCH_RPC ||
		    sv->cell->workload == BENCH_SESSIONS) {
			/* Echo.  The write copies the bytes, so the view can
			 * go back to the ring at once; nothing needs to hear
			 * that the echo left (no WRITE_DONE). */
			err = muxring_stream_write_quiet(cqe->stream,
							 cqe->view.data,
							 cqe->view.len);
			muxring_view_release(&cqe->view);
			if (err)
				return bench_error(NAME, "server echo: %s",
						   muxring_strerror(err));
			return 0;
		}
		muxring_view_release(&cqe->view);
		return 0;
	case MUXRING_CQE_EOF:
		return server_eof(sv, cqe->stream);
	case MUXRING_CQE_SESSION_ENDED:
		sv->ended++;
		if (getenv("MUXBENCH_STATS") && sv->sessions == 1)
			fprintf(stderr, "\n  server session ended: %s\n",
				muxring_strerror((int)cqe->res));
		return 0;
	default:
		/* WRITE_DONE (errors only once the session is closing),
		 * STREAM_CLOSED, GOAWAY: nothing to do. */
		return 0;
	}
}

static int server_run(struct mx_server *sv)
{
	struct mx_shared *sh = sv->sh;
	struct muxring_session_opts so;
	struct muxring_tls *tls;
	struct muxring_cqe *cqes[BATCH];
	struct muxring_listener *listener;
	uint64_t last = bench_now_ns();
	int err;

	if (make_loop(&sv->loop, sv->cell))
		return -1;
	session_opts(sv->cell, &so);
	if (sv->cell->workload == BENCH_SESSIONS) {
		err = muxring_listen_fd(sv->loop, sh->sfd, &so, 0, &listener);
	} else {
		if (apply_tls(sv->cell, true, &tls, &so))
			return -1;
		err = muxring_session_create(sv->loop, sh->sfd, MUXRING_SERVER,
					     &so, 0, &sv->sess);
		muxring_tls_free(tls); /* the session holds its own reference */
	}
	sh->sfd = -1; /* the loop owns it now, even on failure */
	if (err)
		return bench_error(NAME, "server session: %s",
				   muxring_strerror(err));
	atomic_store(&sh->server_up, true);
	while (sv->ended < sv->sessions) {
		unsigned n, i;
		int ret = muxring_submit_and_wait(sv->loop, 1, WAIT_NS);
		uint64_t now;

		if (ret < 0 && ret != -EINTR && ret != -ETIME)
			return bench_error(NAME, "server loop: %s",
					   muxring_strerror(ret));
		n = muxring_peek_batch_cqe(sv->loop, cqes, BATCH);
		for (i = 0; i < n; i++) {
			if (server_entry(sv, cqes[i])) {
				muxring_cq_advance(sv->loop, n);
				return -1;
			}
		}
		muxring_cq_advance(sv->loop, n);
		now = bench_now_ns();
		if (n)
			last = now;
		else if (atomic_load(&sh->client_failed) ||
			 now - last > 3 * BENCH_STALL_NS)
			break; /* the loop's destroy closes the session */
	}
	return 0;
}

static void *server_thread(void *arg)
{
	struct mx_server sv = {.sh = arg};

	sv.cell = sv.sh->cell;
	sv.sessions = sv.cell->workload == BENCH_SESSIONS ? sv.sh->nsessions : 1;
	if (sv.cell->workload == BENCH_OPEN) {
		sv.reply = malloc(sv.cell->size ? sv.cell->size : 1);
		if (sv.reply)
			memset(sv.reply, 'r', sv.cell->size);
	}
	if (sv.cell->workload == BENCH_OPEN && !sv.reply)
		sv.sh->server_err = bench_error(NAME, "out of memory");
	else
		sv.sh->server_err = server_run(&sv);
	if (sv.sh->sfd >= 0)
		close(sv.sh->sfd);
	print_stats("server", sv.loop);
	muxring_loop_destroy(sv.loop);
	free(sv.reply);
	return NULL;
}

/* ---- client ------------------------------------------------------------- */

/* One stream of rpc, one worker of open, bulk and heartbeat. */
struct mx_worker {
	struct mx_client *c;
	struct muxring_stream *st;  /* current stream, NULL between requests */
	uint64_t t0;                /* request start, ns */
	size_t got;                 /* response bytes so far */
	size_t to_write;            /* bulk: payload bytes not yet written */
	unsigned writes;            /* writes in flight */
	bool eof;                   /* the server's FIN came */
	bool busy;                  /* a request is in flight */
	bool waiting;               /* on the list of workers waiting for an
				       arena buffer */
	struct mx_worker *next_wait;
};

struct mx_client {
	struct mx_shared *sh;
	const struct bench_cell *cell;
	struct muxring_loop *loop;
	struct muxring_session *sess;
	struct muxring_session **sessions; /* sessions workload: one per
					      worker; sess is sessions[0] */
	struct mx_worker *w;
	unsigned nw;
	uint8_t *payload;           /* rpc / open request, `size` bytes */
	uint64_t deadline;          /* stop starting requests, ns */
	uint64_t last_progress;     /* ns, for the stall guard */
	unsigned active;            /* workers with a request in flight */
	unsigned ready;             /* set-up: streams answered */
	bool measuring;             /* the clock runs */
	bool session_ready;         /* SESSION_READY seen (TLS: handshake
				       done) */
	unsigned nsess;             /* sessions the client made */
	unsigned ended;             /* SESSION_ENDED entries seen */
	bool closing;               /* the client closed its sessions */
	int end_res;                /* its res */
	bool failed;
	struct mx_worker *wait_head, *wait_tail;
	uint64_t hb_count;          /* heartbeat: RTTs in the window */
	uint64_t idle_done;         /* idle: SYN writes completed */
	uint64_t warm_end;          /* heartbeat: end of the warm-up, ns */
};

static uint64_t worker_data(struct mx_worker *w)
{
	return (uint64_t)(uintptr_t)w;
}

static int client_fail(struct mx_client *c, const char *what, int err)
{
	c->failed = true;
	return bench_error(NAME, "%s: %s", what, muxring_strerror(err));
}

/* Runs turns, handing entries to fn, until done(c) or failure. */
static int client_drive(struct mx_client *c,
			int (*fn)(struct mx_client *, struct muxring_cqe *),
			bool (*done)(const struct mx_client *))
{
	struct muxring_cqe *cqes[BATCH];

	c->last_progress = bench_now_ns();
	while (!done(c)) {
		unsigned n, i;
		int ret = muxring_submit_and_wait(c->loop, 1, WAIT_NS);

		if (ret < 0 && ret != -EINTR && ret != -ETIME)
			return client_fail(c, "client loop", ret);
		n = muxring_peek_batch_cqe(c->loop, cqes, BATCH);
		for (i = 0; i < n && !c->failed; i++)
			if (fn(c, cqes[i]))
				c->failed = true;
		muxring_cq_advance(c->loop, n);
		if (c->failed)
			return -1;
		if (n) {
			c->last_progress = bench_now_ns();
		} else if (bench_now_ns() - c->last_progress > BENCH_STALL_NS) {
			c->failed = true;
			return bench_error(NAME, "no progress for %.0f s",
					   BENCH_STALL_NS / 1e9);
		}
		if (c->ended && !c->closing && !done(c)) {
			c->failed = true;
			return bench_error(NAME, "the session ended early: %s",
					   muxring_strerror(c->end_res));
		}
	}
	return 0;
}

/* Entries every workload treats alike; returns 1 when not handled. */
static int common_entry(struct mx_client *c, struct muxring_cqe *cqe)
{
	switch (cqe->type) {
	case MUXRING_CQE_SESSION_READY:
		if (cqe->res < 0)
			return client_fail(c, "client session", (int)cqe->res);
		c->session_ready = true;
		return 0;
	case MUXRING_CQE_SESSION_ENDED:
		c->ended++;
		c->end_res = (int)cqe->res;
		return 0;
	case MUXRING_CQE_STREAM_CLOSED:
	case MUXRING_CQE_GOAWAY:
		return 0;
	case MUXRING_CQE_STREAM_ACCEPTED:
		return bench_error(NAME, "the server opened a stream");
	case MUXRING_CQE_HEARTBEAT_FAILED:
		return bench_error(NAME, "heartbeat: no echo within %.1f s",
				   HB_TOLERANCE_NS / 1e9);
	default:
		return 1;
	}
}

/* ---- rpc ---- */

static int rpc_send(struct mx_client *c, struct mx_worker *w, uint64_t now)
{
	int err;

	w->t0 = now;
	w->got = 0;
	w->busy = true;
	/* The answer says the request left: no WRITE_DONE for it. */
	err = muxring_stream_write_quiet(w->st, c->payload, c->cell->size);
	return err ? client_fail(c, "rpc write", err) : 0;
}

static int rpc_entry(struct mx_client *c, struct muxring_cqe *cqe)
{
	struct mx_worker *w;
	uint64_t now;
	int r = common_entry(c, cqe);

	if (r <= 0)
		return r;
	if (cqe->type == MUXRING_CQE_WRITE_DONE)
		return cqe->res < 0 ? client_fail(c, "rpc write", (int)cqe->res)
				    : 0;
	if (cqe->type != MUXRING_CQE_DATA)
		return bench_error(NAME, "rpc: unexpected entry %u",
				   (unsigned)cqe->type);
	w = muxring_cqe_get_data(cqe);
	w->got += cqe->view.len;
	muxring_view_release(&cqe->view);
	if (w->got < c->cell->size)
		return 0;
	if (w->got > c->cell->size)
		return bench_error(NAME, "rpc: response of %zu bytes", w->got);
	w->busy = false;
	c->active--;
	if (!c->measuring) {
		c->ready++;
		return 0;
	}
	now = bench_now_ns();
	bench_latency_record(&c->sh->lat, now - w->t0);
	c->sh->ops++;
	if (now >= c->deadline)
		return 0;
	c->active++;
	return rpc_send(c, w, now);
}

static bool rpc_ready(const struct mx_client *c)
{
	return c->ready == c->nw;
}

static bool all_idle(const struct mx_client *c)
{
	return c->active == 0;
}

static int run_rpc(struct mx_client *c)
{
	uint64_t now;
	unsigned i;
	int err;

	for (i = 0; i < c->nw; i++) {
		err = muxring_stream_open(c->sessions ? c->sessions[i] : c->sess,
					  worker_data(&c->w[i]), &c->w[i].st);
		if (err)
			return client_fail(c, "stream open", err);
		/* Set-up: one round trip on every stream, unmeasured, so
		 * that both ends know every stream when the clock starts. */
		c->active++;
		if (rpc_send(c, &c->w[i], 0))
			return -1;
	}
	if (client_drive(c, rpc_entry, rpc_ready))
		return -1;
	c->measuring = true;
	bench_clock_start();
	c->sh->t_start = now = bench_now_ns();
	c->deadline = now + bench_seconds_to_ns(c->cell->seconds);
	for (i = 0; i < c->nw; i++) {
		c->active++;
		if (rpc_send(c, &c->w[i], bench_now_ns()))
			return -1;
	}
	if (client_drive(c, rpc_entry, all_idle))
		return -1;
	c->sh->t_end = bench_now_ns();
	return 0;
}

/* ---- open and bulk: a new stream per request ---- */

/* Arena buffers came back: workers that waited for one go on. */
static int bulk_pump(struct mx_client *c, struct mx_worker *w);

static void wait_for_buffer(struct mx_client *c, struct mx_worker *w)
{
	if (w->waiting)
		return;
	w->waiting = true;
	w->next_wait = NULL;
	if (c->wait_tail)
		c->wait_tail->next_wait = w;
	else
		c->wait_head = w;
	c->wait_tail = w;
}

static int wake_waiters(struct mx_client *c)
{
	struct mx_worker *w;

	while ((w = c->wait_head)) {
		c->wait_head = w->next_wait;
		if (!c->wait_head)
			c->wait_tail = NULL;
		w->waiting = false;
		if (bulk_pump(c, w))
			return -1;
		if (w->waiting)
			break; /* still none free: it went back on the list */
	}
	return 0;
}

/* Bulk: writes as much of the payload as arena buffers allow, then FIN. */
static int bulk_pump(struct mx_client *c, struct mx_worker *w)
{
	size_t chunk = muxring_buf_size(c->loop);
	int err;

	while (w->to_write) {
		size_t len = w->to_write < chunk ? w->to_write : chunk;
		void *p = muxring_buf_get(c->loop, len);

		if (!p) {
			wait_for_buffer(c, w);
			return 0;
		}
		err = muxring_stream_write_zc(w->st, p, len, worker_data(w));
		if (err)
			return client_fail(c, "bulk write", err);
		w->to_write -= len;
		w->writes++;
	}
	err = muxring_stream_close_write(w->st);
	return err ? client_fail(c, "close-write", err) : 0;
}

static int request_start(struct mx_client *c, struct mx_worker *w)
{
	int err;

	w->t0 = bench_now_ns();
	w->got = 0;
	w->eof = false;
	w->busy = true;
	c->active++;
	err = muxring_stream_open(c->sess, worker_data(w), &w->st);
	if (err)
		return client_fail(c, "stream open", err);
	if (c->cell->workload == BENCH_BULK) {
		w->to_write = c->cell->size;
		return bulk_pump(c, w);
	}
	err = muxring_stream_write(w->st, c->payload, c->cell->size,
				   worker_data(w));
	if (!err)
		err = muxring_stream_close_write(w->st);
	return err ? client_fail(c, "open write", err) : 0;
}

/* Reply and FIN both in (and, for bulk, every write done): the request
 * is complete. */
static int request_check(struct mx_client *c, struct mx_worker *w)
{
	size_t want = c->cell->workload == BENCH_BULK ? 1 : c->cell->size;
	uint64_t now;
	int err;

	if (!w->eof || w->writes || w->to_write)
		return 0;
	if (w->got != want)
		return bench_error(NAME, "%s: reply of %zu bytes, expected %zu",
				   bench_workload_name(c->cell->workload),
				   w->got, want);
	err = muxring_stream_close(w->st);
	if (err)
		return client_fail(c, "close", err);
	now = bench_now_ns();
	bench_latency_record(&c->sh->lat, now - w->t0);
	c->sh->ops++;
	if (c->cell->workload == BENCH_BULK)
		c->sh->bytes += c->cell->size;
	w->st = NULL;
	w->busy = false;
	c->active--;
	if (now >= c->deadline)
		return 0;
	return request_start(c, w);
}

static int request_entry(struct mx_client *c, struct muxring_cqe *cqe)
{
	struct mx_worker *w;
	int r = common_entry(c, cqe);

	if (r <= 0)
		return r;
	w = muxring_cqe_get_data(cqe);
	switch (cqe->type) {
	case MUXRING_CQE_DATA:
		w->got += cqe->view.len;
		muxring_view_release(&cqe->view);
		return 0;
	case MUXRING_CQE_EOF:
		w->eof = true;
		return request_check(c, w);
	case MUXRING_CQE_WRITE_DONE:
		if (cqe->res < 0)
			return client_fail(c, "write", (int)cqe->res);
		if (c->cell->workload != BENCH_BULK)
			return 0;
		w->writes--;
		if (c->wait_head && wake_waiters(c))
			return -1;
		return request_check(c, w);
	default:
		return bench_error(NAME, "unexpected entry %u",
				   (unsigned)cqe->type);
	}
}

/* Fills every arena buffer with the payload pattern, once. */
static int arena_fill(struct mx_client *c)
{
	size_t size = muxring_buf_size(c->loop);
	void **bufs = NULL, *p;
	size_t n = 0, cap = 0, i;

	while ((p = muxring_buf_get(c->loop, size))) {
		if (n == cap) {
			void **nb = realloc(bufs, (cap ? 2 * cap : 64) *
							  sizeof(*bufs));

			if (!nb) {
				muxring_buf_put(c->loop, p);
				break;
			}
			bufs = nb;
			cap = cap ? 2 * cap : 64;
		}
		memset(p, 'b', size);
		bufs[n++] = p;
	}
	for (i = 0; i < n; i++)
		muxring_buf_put(c->loop, bufs[i]);
	free(bufs);
	return n ? 0 : bench_error(NAME, "the send arena is empty");
}

static int run_requests(struct mx_client *c)
{
	unsigned i;

	if (c->cell->workload == BENCH_BULK && arena_fill(c))
		return -1;
	c->measuring = true;
	bench_clock_start();
	c->sh->t_start = bench_now_ns();
	c->deadline = c->sh->t_start + bench_seconds_to_ns(c->cell->seconds);
	for (i = 0; i < c->nw; i++)
		if (request_start(c, &c->w[i]))
			return -1;
	if (client_drive(c, request_entry, all_idle))
		return -1;
	c->sh->t_end = bench_now_ns();
	return 0;
}

/* ---- heartbeat ---- */

static int hb_write(struct mx_client *c, struct mx_worker *w)
{
	size_t size = c->cell->size;
	void *p;
	int err;

	while (w->writes < HB_WRITES_PER_STREAM) {
		p = muxring_buf_get(c->loop, size);
		if (!p)
			return 0; /* the next WRITE_DONE frees one */
		err = muxring_stream_write_zc(w->st, p, size, worker_data(w));
		if (err)
			return client_fail(c, "load write", err);
		w->writes++;
		c->active++;
	}
	return 0;
}

static int hb_entry(struct mx_client *c, struct muxring_cqe *cqe)
{
	struct mx_worker *w;
	uint64_t now;
	int r;

	if (cqe->type == MUXRING_CQE_HEARTBEAT) {
		if (c->measuring && bench_now_ns() < c->deadline) {
			bench_latency_record(&c->sh->lat, (uint64_t)cqe->res);
			c->hb_count++;
		}
		return 0;
	}
	r = common_entry(c, cqe);
	if (r <= 0)
		return r;
	if (cqe->type != MUXRING_CQE_WRITE_DONE)
		return bench_error(NAME, "heartbeat: unexpected entry %u",
				   (unsigned)cqe->type);
	if (cqe->res < 0)
		return client_fail(c, "load write", (int)cqe->res);
	w = muxring_cqe_get_data(cqe);
	w->writes--;
	c->active--;
	now = bench_now_ns();
	if (now < c->deadline) {
		if (c->measuring)
			c->sh->bytes += (uint64_t)cqe->res;
		return hb_write(c, w);
	}
	return 0;
}

static bool hb_warm(const struct mx_client *c)
{
	return bench_now_ns() >= c->warm_end;
}

static int run_heartbeat(struct mx_client *c)
{
	unsigned i;
	int err;

	if (arena_fill(c))
		return -1;
	for (i = 0; i < c->nw; i++) {
		err = muxring_stream_open_typed(c->sess, 1, worker_data(&c->w[i]),
						&c->w[i].st);
		if (err)
			return client_fail(c, "stream open", err);
	}
	/* Set-up: the load warms the connection up, unmeasured. */
	bench_clock_start();
	c->warm_end = bench_now_ns() + HB_WARMUP_NS;
	c->deadline = c->warm_end + bench_seconds_to_ns(c->cell->seconds);
	for (i = 0; i < c->nw; i++)
		if (hb_write(c, &c->w[i]))
			return -1;
	if (client_drive(c, hb_entry, hb_warm))
		return -1;
	c->measuring = true;
	c->sh->t_start = bench_now_ns();
	c->deadline = c->sh->t_start + bench_seconds_to_ns(c->cell->seconds);
	err = muxring_session_heartbeat(c->sess, BENCH_HEARTBEAT_INTERVAL_NS,
					HB_TOLERANCE_NS);
	if (err)
		return client_fail(c, "muxring_session_heartbeat", err);
	if (client_drive(c, hb_entry, all_idle))
		return -1;
	c->sh->t_end = bench_now_ns();
	c->sh->ops = c->hb_count;
	return 0;
}

/* ---- idle ---- */

static int idle_entry(struct mx_client *c, struct muxring_cqe *cqe)
{
	int r = common_entry(c, cqe);

	if (r <= 0)
		return r;
	if (cqe->type != MUXRING_CQE_WRITE_DONE)
		return bench_error(NAME, "idle: unexpected entry %u",
				   (unsigned)cqe->type);
	if (cqe->res < 0)
		return client_fail(c, "idle SYN", (int)cqe->res);
	c->idle_done++;
	return 0;
}

static bool idle_batch_done(const struct mx_client *c)
{
	return c->idle_done == c->ready &&
	       atomic_load_explicit(&c->sh->accepted, memory_order_relaxed) ==
		       c->ready;
}

static int run_idle(struct mx_client *c)
{
	struct muxring_stream *st;
	struct bench_mem before, after;
	unsigned i;
	int err;

	/* Both loops and sessions are up; wait until the server's session
	 * exists too, then take the first sample. */
	while (!atomic_load(&c->sh->server_up))
		usleep(1000);
	if (bench_mem_sample(&before))
		return bench_error(NAME, "memory sample failed");
	for (i = 0; i < c->nw; i++) {
		err = muxring_stream_open(c->sess, 0, &st);
		if (err)
			return client_fail(c, "idle open", err);
		/* An empty write carries the SYN: the server learns of the
		 * stream, which then sits idle on both ends. */
		err = muxring_stream_write(st, NULL, 0, 0);
		if (err)
			return client_fail(c, "idle SYN", err);
		c->ready++;
		if (c->ready % IDLE_BATCH == 0 || c->ready == c->nw)
			if (client_drive(c, idle_entry, idle_batch_done))
				return -1;
	}
	if (bench_mem_sample(&after))
		return bench_error(NAME, "memory sample failed");
	c->sh->bytes_per_stream = bench_mem_per_stream(
		&before, &after, c->nw, &c->sh->kernel_bytes_per_stream);
	c->sh->ops = c->nw;
	return 0;
}

/* ---- sessions ---- */

/* Dials the cell's N sessions, one connection each, then runs rpc over
 * their streams; memory is sampled before the first connection and at the
 * end of the window, every session still open. */
static int run_sessions(struct mx_client *c)
{
	struct muxring_session_opts so;
	struct bench_mem before, after;
	unsigned i;
	int err, fd;

	c->nw = c->sh->nsessions;
	c->sessions = calloc(c->nw, sizeof(*c->sessions));
	if (!c->sessions)
		return bench_error(NAME, "out of memory");
	while (!atomic_load(&c->sh->server_up))
		usleep(1000);
	if (bench_mem_sample(&before))
		return bench_error(NAME, "memory sample failed");
	session_opts(c->cell, &so);
	for (i = 0; i < c->nw; i++) {
		fd = bench_connect(c->sh->port);
		if (fd < 0)
			return bench_error(NAME, "connect %u of %u: %s", i + 1,
					   c->nw, strerror(-fd));
		err = muxring_session_create(c->loop, fd, MUXRING_CLIENT, &so,
					     0, &c->sessions[i]);
		if (err)
			return client_fail(c, "client session", err);
		c->nsess++;
	}
	c->sess = c->sessions[0];
	if (run_rpc(c))
		return -1;
	if (bench_mem_sample(&after))
		return bench_error(NAME, "memory sample failed");
	c->sh->bytes_per_stream = bench_mem_per_stream(
		&before, &after, c->nw, &c->sh->kernel_bytes_per_stream);
	return 0;
}

/* ---- the client thread ---- */

/* While the sessions close: give views back, ignore the rest. */
static int drain_entry(struct mx_client *c, struct muxring_cqe *cqe)
{
	if (cqe->type == MUXRING_CQE_DATA)
		muxring_view_release(&cqe->view);
	else if (cqe->type == MUXRING_CQE_SESSION_ENDED)
		c->ended++;
	return 0;
}

static bool session_ended(const struct mx_client *c)
{
	return c->ended >= c->nsess;
}

/* A clean end of every session: GOAWAY, then both transports close. */
static int close_sessions(struct mx_client *c)
{
	unsigned i;
	int err;

	c->closing = true;
	for (i = 0; i < c->nsess; i++) {
		err = muxring_session_close(c->sessions ? c->sessions[i] : c->sess,
					    MUXRING_NO_ERROR, NULL, 0);
		if (err)
			return client_fail(c, "session close", err);
	}
	return client_drive(c, drain_entry, session_ended);
}

static bool session_is_ready(const struct mx_client *c)
{
	return c->session_ready;
}

static int client_run(struct mx_client *c)
{
	struct muxring_session_opts so;
	struct muxring_tls *tls;
	int err;

	if (make_loop(&c->loop, c->cell))
		return -1;
	if (c->cell->workload == BENCH_SESSIONS) {
		err = run_sessions(c);
		return err ? err : close_sessions(c);
	}
	session_opts(c->cell, &so);
	if (apply_tls(c->cell, false, &tls, &so))
		return -1;
	err = muxring_session_create(c->loop, c->sh->cfd, MUXRING_CLIENT, &so,
				     0, &c->sess);
	muxring_tls_free(tls);
	c->sh->cfd = -1;
	if (err)
		return client_fail(c, "client session", err);
	/* The handshake is set-up, like the connect: not measured. */
	if (client_drive(c, common_entry, session_is_ready))
		return -1;
	c->nsess = 1;
	switch (c->cell->workload) {
	case BENCH_RPC:
		err = run_rpc(c);
		break;
	case BENCH_OPEN:
	case BENCH_BULK:
		err = run_requests(c);
		break;
	case BENCH_HEARTBEAT:
		err = run_heartbeat(c);
		break;
	case BENCH_IDLE:
		err = run_idle(c);
		break;
	default:
		err = bench_error(NAME, "unknown workload");
		break;
	}
	if (err)
		return -1;
	return close_sessions(c);
}

static void *client_thread(void *arg)
{
	struct mx_shared *sh = arg;
	struct mx_client c = {.sh = sh, .cell = sh->cell};

	c.nw = sh->cell->streams;
	c.w = calloc(c.nw, sizeof(*c.w));
	/* rpc, open and sessions send this; bulk and heartbeat send from the arena. */
	c.payload = malloc(sh->cell->workload == BENCH_RPC ||
			   sh->cell->workload == BENCH_OPEN ||
			   sh->cell->workload == BENCH_SESSIONS ?
			   sh->cell->size + 1 : 1);
	if (!c.w || !c.payload) {
		sh->client_err = bench_error(NAME, "out of memory");
	} else {
		if (sh->cell->workload == BENCH_RPC ||
		    sh->cell->workload == BENCH_OPEN ||
		    sh->cell->workload == BENCH_SESSIONS)
			memset(c.payload, 'q', sh->cell->size);
		for (unsigned i = 0; i < c.nw; i++)
			c.w[i].c = &c;
		sh->client_err = client_run(&c);
	}
	if (sh->cfd >= 0)
		close(sh->cfd);
	if (sh->client_err)
		atomic_store(&sh->client_failed, true);
	print_stats("client", c.loop);
	muxring_loop_destroy(c.loop);
	free(c.sessions);
	free(c.w);
	free(c.payload);
	return NULL;
}

/* ---- the impl ----------------------------------------------------------- */

/* A connected pair of TCP sockets over 127.0.0.1. */
static int connect_pair(int *cfd, int *sfd)
{
	uint16_t port;
	int lfd = bench_listen(&port, false), c, s;

	if (lfd < 0)
		return bench_error(NAME, "listen: %s", strerror(-lfd));
	c = bench_connect(port);
	if (c < 0) {
		close(lfd);
		return bench_error(NAME, "connect: %s", strerror(-c));
	}
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0) {
		int e = errno;

		close(c);
		close(lfd);
		return bench_error(NAME, "accept: %s", strerror(e));
	}
	close(lfd);
	*cfd = c;
	*sfd = s;
	return 0;
}

/* Sessions: both ends of every session are in this process.  When the
 * descriptor limit cannot be raised far enough, as many as fit are run,
 * as the pools do for idle, and the run says so. */
static unsigned sessions_that_fit(unsigned want)
{
	unsigned long need = 2ul * want + SESSIONS_FD_SLACK;
	unsigned long have = bench_fd_reserve(need);

	if (have >= need)
		return want;
	if (have <= SESSIONS_FD_SLACK + 2)
		return 0;
	fprintf(stderr, "muxbench: %s: descriptor limit %lu: sessions measured over %lu sessions, not %u\n",
		NAME, have, (have - SESSIONS_FD_SLACK) / 2, want);
	return (unsigned)((have - SESSIONS_FD_SLACK) / 2);
}

static bool mx_supports(const struct bench_cell *cell)
{
	return !cell->tls || cell->workload == BENCH_RPC ||
	       cell->workload == BENCH_OPEN || cell->workload == BENCH_BULK;
}

static int mx_run(const struct bench_cell *cell, struct bench_result *out)
{
	struct mx_shared *sh = calloc(1, sizeof(*sh));
	pthread_t st, ct;
	int err;

	bench_result_init(out);
	if (!sh)
		return bench_error(NAME, "out of memory");
	sh->cell = cell;
	bench_latency_init(&sh->lat);
	if (cell->workload == BENCH_SESSIONS) {
		sh->nsessions = sessions_that_fit(cell->streams);
		if (!sh->nsessions) {
			free(sh);
			return bench_error(NAME, "RLIMIT_NOFILE allows no session");
		}
		sh->cfd = -1;
		sh->sfd = bench_listen(&sh->port, false);
		if (sh->sfd < 0) {
			err = sh->sfd;
			free(sh);
			return bench_error(NAME, "listen: %s", strerror(-err));
		}
	} else if (connect_pair(&sh->cfd, &sh->sfd)) {
		free(sh);
		return -1;
	}
	err = pthread_create(&st, NULL, server_thread, sh);
	if (err) {
		if (sh->cfd >= 0)
			close(sh->cfd);
		close(sh->sfd);
		free(sh);
		return bench_error(NAME, "pthread_create: %s", strerror(err));
	}
	err = pthread_create(&ct, NULL, client_thread, sh);
	if (err) {
		/* The server sees end-of-file (or nothing: sessions) and
		 * stops. */
		if (sh->cfd >= 0)
			close(sh->cfd);
		atomic_store(&sh->client_failed, true);
		pthread_join(st, NULL);
		free(sh);
		return bench_error(NAME, "pthread_create: %s", strerror(err));
	}
	pthread_join(ct, NULL);
	pthread_join(st, NULL);
	err = sh->client_err || sh->server_err ? -1 : 0;
	if (!err) {
		double secs = (double)(sh->t_end - sh->t_start) / 1e9;

		out->ops = sh->ops;
		out->bytes = sh->bytes;
		switch (cell->workload) {
		case BENCH_IDLE:
			out->bytes_per_stream = sh->bytes_per_stream;
			out->kernel_bytes_per_stream =
				sh->kernel_bytes_per_stream;
			break;
		case BENCH_HEARTBEAT:
			if (getenv("MUXBENCH_STATS"))
				fprintf(stderr, "\n  rtt p50 %.0f p90 %.0f p95 %.0f p99 %.0f max %.0f us over %llu\n",
					bench_latency_percentile(&sh->lat, 50) / 1e3,
					bench_latency_percentile(&sh->lat, 90) / 1e3,
					bench_latency_percentile(&sh->lat, 95) / 1e3,
					bench_latency_percentile(&sh->lat, 99) / 1e3,
					(double)sh->lat.max_ns / 1e3,
					(unsigned long long)sh->lat.count);
			out->elapsed_s = secs;
			out->mb_per_s = secs > 0 ? (double)sh->bytes / secs / 1e6 : 0;
			bench_latency_report(&sh->lat, out);
			break;
		case BENCH_BULK:
			out->elapsed_s = secs;
			out->mb_per_s = secs > 0 ? (double)sh->bytes / secs / 1e6 : 0;
			out->ops_per_s = secs > 0 ? (double)sh->ops / secs : 0;
			bench_latency_report(&sh->lat, out);
			break;
		case BENCH_SESSIONS:
			out->bytes_per_stream = sh->bytes_per_stream;
			out->kernel_bytes_per_stream =
				sh->kernel_bytes_per_stream;
			/* fall through */
		default:
			out->elapsed_s = secs;
			out->ops_per_s = secs > 0 ? (double)sh->ops / secs : 0;
			bench_latency_report(&sh->lat, out);
			break;
		}
	}
	free(sh);
	return err;
}

const struct bench_impl bench_impl_muxring = {
	.name = "muxring",
	.summary = "muxado streams over one TCP connection, io_uring loops "
		   "(this library)",
	.supports = mx_supports,
	.busy_polls = true,
	.run = mx_run,
};
