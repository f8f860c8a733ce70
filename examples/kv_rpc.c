/*
 * kv_rpc.c - a key-value store served over muxring, one stream per request,
 * with a client that keeps 1,000 requests in flight over one session.
 *
 *   build/examples/kv_rpc serve 9000 &          # port 0: any free port
 *   build/examples/kv_rpc check 127.0.0.1 9000  # -n REQUESTS (default 1000)
 *
 * `serve` prints "listening on PORT" once it accepts connections and runs
 * until SIGINT or SIGTERM, then closes every session with GOAWAY and exits
 * 0. `check` stores REQUESTS keys with values of different sizes (all the
 * SETs at once, each on its own stream), reads them all back (all the GETs
 * at once), deletes every other key and reads all again; it prints
 * "ok: ..." and exits 0 when every answer is right, 1 otherwise.
 *
 * The protocol is the stream: the client opens one, writes the request and
 * half-closes it; the server answers and closes it. A request is a line,
 * "SET key\n" followed by the value's bytes, "GET key\n" or "DEL key\n";
 * an answer is "OK\n", "VALUE\n" followed by the value's bytes,
 * "NOTFOUND\n" or "ERR reason\n". A stream's end-of-file frames the value,
 * so no length fields are needed, and requests never wait behind each
 * other: that is what multiplexing buys over one TCP connection.
 *
 * Both sides are the usual muxring loop: submit and wait, take a batch of
 * entries, handle them, advance. Each stream carries a pointer to its
 * request state as user_data. SIGINT/SIGTERM reach the server through a
 * signalfd watched on the same ring (muxring_poll_fd).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <muxring.h>

#define BATCH 256
#define BUCKETS 4096
#define MAX_REQUEST (4u << 20)
#define SIGNAL_TAG 1 /* user_data of the signalfd's POLL entries */

/* Bytes gathered from DATA views until the stream's end-of-file. */
struct bytes {
	char *p;
	size_t len, cap;
};

static int bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *np;

		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/* A view's bytes are copied into b and the view released at once: the
 * stream's window is credited, so a large value keeps flowing. */
static int take_view(struct bytes *b, struct muxring_cqe *cqe)
{
	int err = b->len + cqe->view.len > MAX_REQUEST
			  ? -EMSGSIZE
			  : bytes_add(b, cqe->view.data, cqe->view.len);

	muxring_view_release(&cqe->view);
	return err;
}

/* ---- the store ------------------------------------------------------------ */

struct entry {
	struct entry *next;
	char *key;
	char *value;
	size_t len;
};

struct store {
	struct entry *bucket[BUCKETS];
};

static struct entry **store_slot(struct store *s, const char *key)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	struct entry **e;

	for (const char *k = key; *k; k++)
		h = (h ^ (uint8_t)*k) * 16777619u;
	for (e = &s->bucket[h % BUCKETS]; *e; e = &(*e)->next)
		if (!strcmp((*e)->key, key))
			break;
	return e;
}

static int store_set(struct store *s, const char *key, const char *value,
		     size_t len)
{
	struct entry **slot = store_slot(s, key), *e = *slot;
	char *copy = malloc(len ? len : 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, value, len);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->key = strdup(key))) {
			free(e);
			free(copy);
			return -ENOMEM;
		}
		*slot = e;
	}
	free(e->value);
	e->value = copy;
	e->len = len;
	return 0;
}

static void entry_free(struct entry *e)
{
	free(e->key);
	free(e->value);
	free(e);
}

static bool store_del(struct store *s, const char *key)
{
	struct entry **slot = store_slot(s, key), *e = *slot;

	if (!e)
		return false;
	*slot = e->next;
	entry_free(e);
	return true;
}

static void store_free(struct store *s)
{
	for (unsigned i = 0; i < BUCKETS; i++)
		while (s->bucket[i]) {
			struct entry *e = s->bucket[i];

			s->bucket[i] = e->next;
			entry_free(e);
		}
}

/* ---- the server -------------------------------------------------------------- */

struct server {
	struct muxring_loop *loop;
	struct muxring_listener *listener;
	struct store store;
	struct muxring_session **sessions; /* ready, not yet ended */
	unsigned nsessions, cap;
	bool stopping;
};

static void add_session(struct server *srv, struct muxring_session *sess)
{
	if (srv->nsessions == srv->cap) {
		unsigned cap = srv->cap ? 2 * srv->cap : 16;
		struct muxring_session **p =
			realloc(srv->sessions, cap * sizeof(*p));

		if (!p) {
			muxring_session_close(sess, MUXRING_INTERNAL_ERROR,
					      NULL, 0);
			return;
		}
		srv->sessions = p;
		srv->cap = cap;
	}
	srv->sessions[srv->nsessions++] = sess;
}

static void remove_session(struct server *srv, struct muxring_session *sess)
{
	for (unsigned i = 0; i < srv->nsessions; i++)
		if (srv->sessions[i] == sess) {
			srv->sessions[i] = srv->sessions[--srv->nsessions];
			return;
		}
}

/* SIGINT/SIGTERM: accept no more, and end every session with GOAWAY. */
static void stop(struct server *srv)
{
	srv->stopping = true;
	muxring_listener_close(srv->listener);
	for (unsigned i = 0; i < srv->nsessions; i++)
		muxring_session_close(srv->sessions[i], MUXRING_NO_ERROR,
				      NULL, 0);
}

/* Writes the answer to the request gathered in req and closes the
 * stream. The request line is cut at its '\n'; the rest is the value. */
static void answer(struct server *srv, struct muxring_stream *st,
		   struct bytes *req)
{
	char *nl = req->p ? memchr(req->p, '\n', req->len) : NULL;
	const char *key = req->p ? req->p + 4 : NULL;
	const struct entry *e;

	if (!nl || nl - req->p < 5 || req->p[3] != ' ') {
		muxring_stream_write(st, "ERR bad request\n", 16, 0);
	} else {
		*nl = '\0';
		if (!strncmp(req->p, "SET", 3)) {
			if (store_set(&srv->store, key, nl + 1,
				      req->len - (size_t)(nl + 1 - req->p)))
				muxring_stream_write(st, "ERR memory\n", 11, 0);
			else
				muxring_stream_write(st, "OK\n", 3, 0);
		} else if (!strncmp(req->p, "GET", 3)) {
			e = *store_slot(&srv->store, key);
			if (e) {
				muxring_stream_write(st, "VALUE\n", 6, 0);
				muxring_stream_write(st, e->value, e->len, 0);
			} else {
				muxring_stream_write(st, "NOTFOUND\n", 9, 0);
			}
		} else if (!strncmp(req->p, "DEL", 3)) {
			if (store_del(&srv->store, key))
				muxring_stream_write(st, "OK\n", 3, 0);
			else
				muxring_stream_write(st, "NOTFOUND\n", 9, 0);
		} else {
			muxring_stream_write(st, "ERR unknown command\n", 20, 0);
		}
	}
	/* The answer's FIN follows its writes; the stream is done. */
	muxring_stream_close(st);
}

/* One entry. The request state is read from the stream, not from the
 * entry: entries queued in the same turn as STREAM_ACCEPTED were made
 * before the state was attached, and carry user_data 0. */
static void server_entry(struct server *srv, struct muxring_cqe *cqe)
{
	struct bytes *req = cqe->stream ? (struct bytes *)(uintptr_t)
				muxring_stream_data(cqe->stream) : NULL;

	switch (cqe->type) {
	case MUXRING_CQE_SESSION_READY:
		if (srv->stopping)
			muxring_session_close(cqe->session, MUXRING_NO_ERROR,
					      NULL, 0);
		add_session(srv, cqe->session);
		break;
	case MUXRING_CQE_STREAM_ACCEPTED:
		req = calloc(1, sizeof(*req));
		if (!req) {
			muxring_stream_reset(cqe->stream,
					     MUXRING_INTERNAL_ERROR);
			break;
		}
		muxring_stream_set_data(cqe->stream, (uintptr_t)req);
		break;
	case MUXRING_CQE_DATA:
		if (!req)
			muxring_view_release(&cqe->view); /* reset already */
		else if (take_view(req, cqe))
			muxring_stream_reset(cqe->stream,
					     MUXRING_ENHANCE_YOUR_CALM);
		break;
	case MUXRING_CQE_EOF:
		if (req)
			answer(srv, cqe->stream, req);
		break;
	case MUXRING_CQE_STREAM_CLOSED:
		if (req) {
			free(req->p);
			free(req);
		}
		break;
	case MUXRING_CQE_SESSION_ENDED:
		remove_session(srv, cqe->session);
		break;
	case MUXRING_CQE_POLL:
		if (cqe->user_data == SIGNAL_TAG && !srv->stopping)
			stop(srv);
		break;
	default:
		break;
	}
}

static int serve(const char *port)
{
	struct muxring_session_opts opts = {
		/* Every SYN of one burst is queued before the first is seen:
		 * room for a client's 1,000 requests at once. */
		.accept_backlog = 4096,
	};
	struct server srv = { 0 };
	bool listener_open = true;
	sigset_t signals;
	int sfd, err;

	/* Blocked, so that they arrive only through the signalfd. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	sigprocmask(SIG_BLOCK, &signals, NULL);
	sfd = signalfd(-1, &signals, SFD_CLOEXEC);
	err = muxring_loop_create(&srv.loop, NULL);
	if (err < 0) {
		fprintf(stderr, "kv_rpc: %s\n", muxring_loop_create_error());
		return 1;
	}
	err = muxring_listen(srv.loop, "127.0.0.1", port, 0, &opts, 0,
			     &srv.listener);
	if (err < 0 || sfd < 0 ||
	    muxring_poll_fd(srv.loop, sfd, POLLIN, SIGNAL_TAG) < 0) {
		fprintf(stderr, "kv_rpc: cannot listen on port %s: %s\n", port,
			muxring_strerror(err < 0 ? err : -errno));
		muxring_loop_destroy(srv.loop);
		return 3;
	}
	printf("listening on %d\n", muxring_listener_port(srv.listener));
	fflush(stdout);

	while (listener_open || srv.nsessions) {
		struct muxring_cqe *cqes[BATCH];
		unsigned n;

		err = muxring_submit_and_wait(srv.loop, 1, -1);
		if (err < 0 && err != -EINTR)
			break;
		n = muxring_peek_batch_cqe(srv.loop, cqes, BATCH);
		for (unsigned i = 0; i < n; i++) {
			server_entry(&srv, cqes[i]);
			if (cqes[i]->type == MUXRING_CQE_LISTENER_CLOSED)
				listener_open = false;
		}
		muxring_cq_advance(srv.loop, n);
	}
	muxring_loop_destroy(srv.loop);
	store_free(&srv.store);
	free(srv.sessions);
	close(sfd);
	return err < 0 && err != -EINTR ? 1 : 0;
}

/* ---- the client ------------------------------------------------------------ */

enum op { OP_SET, OP_GET, OP_DEL };

struct call {
	enum op op;
	unsigned key;          /* key number */
	bool expect_found;     /* GET: the key should be there */
	struct bytes reply;
	bool ok;
};

struct client {
	struct muxring_loop *loop;
	struct muxring_session *sess;
	struct call *calls;
	unsigned ncalls;
	unsigned pending;      /* calls without STREAM_CLOSED yet */
	unsigned failed;
	bool ended;
	int end_res;
};

/* Key i's value: i * 37 % 3000 bytes, a pattern that depends on i. */
static size_t value_of(unsigned i, char *out)
{
	size_t len = (size_t)i * 37 % 3000;

	for (size_t k = 0; k < len; k++)
		out[k] = (char)('a' + (i + k) % 26);
	return len;
}

static bool reply_is(const struct bytes *r, const char *text, size_t len)
{
	return r->len == len && !memcmp(r->p, text, len);
}

static bool check_reply(const struct call *c)
{
	char expect[3000 + 6];
	size_t len;

	switch (c->op) {
	case OP_SET:
		return reply_is(&c->reply, "OK\n", 3);
	case OP_DEL:
		return reply_is(&c->reply, "OK\n", 3);
	case OP_GET:
		if (!c->expect_found)
			return reply_is(&c->reply, "NOTFOUND\n", 9);
		memcpy(expect, "VALUE\n", 6);
		len = value_of(c->key, expect + 6);
		return reply_is(&c->reply, expect, 6 + len);
	}
	return false;
}

/* Opens the call's stream, writes its request and half-closes. */
static int send_call(struct client *cl, struct call *c)
{
	static const char *const verbs[] = { "SET", "GET", "DEL" };
	char req[64 + 3000];
	struct muxring_stream *st;
	int len, err;

	len = snprintf(req, 64, "%s key-%u\n", verbs[c->op], c->key);
	if (c->op == OP_SET)
		len += (int)value_of(c->key, req + len);
	err = muxring_stream_open(cl->sess, (uintptr_t)c, &st);
	if (!err)
		err = muxring_stream_write(st, req, (size_t)len, 0);
	if (!err)
		err = muxring_stream_close_write(st);
	if (!err)
		cl->pending++;
	return err;
}

static void client_entry(struct client *cl, struct muxring_cqe *cqe)
{
	struct call *c = (struct call *)muxring_cqe_get_data(cqe);

	switch (cqe->type) {
	case MUXRING_CQE_DATA:
		if (take_view(&c->reply, cqe))
			muxring_stream_reset(cqe->stream,
					     MUXRING_ENHANCE_YOUR_CALM);
		break;
	case MUXRING_CQE_STREAM_CLOSED:
		c->ok = cqe->res == 0 && check_reply(c);
		if (!c->ok && cl->failed++ < 5)
			fprintf(stderr, "kv_rpc: key-%u: wrong answer (%s)\n",
				c->key, muxring_strerror((int)cqe->res));
		cl->pending--;
		break;
	case MUXRING_CQE_SESSION_ENDED:
		cl->ended = true;
		cl->end_res = (int)cqe->res;
		break;
	default:
		break;
	}
}

/* Turns the loop until every call of this round has its answer (or, with
 * to_end, until the session's SESSION_ENDED). */
static int turn_until(struct client *cl, bool to_end)
{
	while (to_end ? !cl->ended : cl->pending && !cl->ended) {
		struct muxring_cqe *cqes[BATCH];
		unsigned n;
		int ret = muxring_submit_and_wait(cl->loop, 1, -1);

		if (ret < 0 && ret != -EINTR)
			return ret;
		n = muxring_peek_batch_cqe(cl->loop, cqes, BATCH);
		for (unsigned i = 0; i < n; i++)
			client_entry(cl, cqes[i]);
		muxring_cq_advance(cl->loop, n);
	}
	return cl->pending ? -EPIPE : 0;
}

/* One round: a call of `op` for every step-th key, all at once; found
 * says which keys a GET should find. */
static int round_of(struct client *cl, enum op op, unsigned step,
		    bool (*found)(unsigned key))
{
	unsigned n = 0;

	for (unsigned k = 0; k < cl->ncalls; k += step) {
		struct call *c = &cl->calls[n++];

		free(c->reply.p);
		*c = (struct call){ .op = op, .key = k,
				    .expect_found = found && found(k) };
		if (send_call(cl, c))
			return -ENOMEM;
	}
	return turn_until(cl, false);
}

static bool always(unsigned key)
{
	(void)key;
	return true;
}

static bool odd_key(unsigned key)
{
	return key % 2 == 1;
}

static int check(const char *host, const char *port, unsigned n)
{
	struct client cl = { .ncalls = n };
	int err;

	cl.calls = calloc(n, sizeof(*cl.calls));
	err = muxring_loop_create(&cl.loop, NULL);
	if (err < 0) {
		fprintf(stderr, "kv_rpc: %s\n", muxring_loop_create_error());
		return 1;
	}
	err = cl.calls ? muxring_connect(cl.loop, host, port, NULL, 0, &cl.sess)
		       : -ENOMEM;
	if (err < 0) {
		fprintf(stderr, "kv_rpc: cannot connect: %s\n",
			muxring_strerror(err));
		muxring_loop_destroy(cl.loop);
		return 3;
	}
	err = round_of(&cl, OP_SET, 1, NULL);
	if (!err)
		err = round_of(&cl, OP_GET, 1, always);
	if (!err)
		err = round_of(&cl, OP_DEL, 2, NULL);
	if (!err)
		err = round_of(&cl, OP_GET, 1, odd_key);
	if (!cl.ended) {
		muxring_session_close(cl.sess, MUXRING_NO_ERROR, NULL, 0);
		if (!err)
			err = turn_until(&cl, true);
	}
	for (unsigned i = 0; i < n; i++)
		free(cl.calls[i].reply.p);
	free(cl.calls);
	muxring_loop_destroy(cl.loop);
	if (err || cl.failed ||
	    cl.end_res != MUXRING_ERR(MUXRING_SESSION_CLOSED)) {
		fprintf(stderr, "kv_rpc: %u wrong answers; %s\n", cl.failed,
			muxring_strerror(err ? err : cl.end_res));
		return 1;
	}
	printf("ok: %u SET, %u GET, %u DEL, %u GET, %u streams in flight\n",
	       n, n, (n + 1) / 2, n, n);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: kv_rpc serve PORT\n"
			"       kv_rpc check [-n REQUESTS] HOST PORT\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned n = 1000;
	int opt;

	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(argv[2]);
	if (argc < 2 || strcmp(argv[1], "check"))
		return usage();
	optind = 2;
	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt != 'n')
			return usage();
		n = (unsigned)strtoul(optarg, NULL, 0);
	}
	if (argc - optind != 2 || !n)
		return usage();
	return check(argv[optind], argv[optind + 1], n);
}
