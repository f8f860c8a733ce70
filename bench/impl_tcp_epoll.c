/*
 * impl_tcp_epoll.c - baseline "tcp-epoll": a pool of TCP connections, one
 * request in flight on each, served and driven by epoll.
 *
 * One thread per side, each a single-threaded epoll loop over nonblocking
 * sockets, the classic way to write such a server and client.  Request /
 * response sockets are registered once, edge-triggered, for both
 * directions, so the loop makes no epoll_ctl calls per request.  Each
 * connection is a small state machine pumped on every event until the
 * kernel says EAGAIN or the protocol says the peer has nothing more to
 * send until we answer (after a complete request or reply we do not read
 * again: the next bytes only come after our answer and bring a fresh
 * edge).  That keeps the baseline at its natural cost: one send and one
 * recv per message, plus one epoll_wait per batch of ready connections.
 *
 * Streaming sockets (the sinks of bulk payloads and of the heartbeat
 * load, on both sides) are level-triggered instead and move one buffer
 * per event, so that one busy connection cannot hold the loop while the
 * others (the heartbeat's ping) wait: fair round robin, as event loops
 * such as libuv do it.
 *
 * TLS cells put OpenSSL on each connection, the usual way: an SSL over
 * the nonblocking socket, whose "want read / want write" is the socket's
 * EAGAIN, so the state machines stay as they are (io_send, io_recv,
 * io_shutdown_wr).  A TLS read fills the caller's buffer with as many
 * records as have arrived, so that no decrypted byte waits inside OpenSSL
 * for an edge that will not come.  Long-lived connections finish their
 * handshakes before the clock starts; in the open workload each request
 * is a new connection with a full handshake, client and server sending
 * close_notify where TCP alone would send its FIN.
 */
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define NAME "tcp-epoll"
#define MAX_EVENTS 256
/* epoll_wait timeout while waiting for traffic: stall checks, ms */
#define WAIT_MS 200

/* epoll data: pointer with a tag in its low bits (all targets are
 * aligned to at least 8). */
enum tag { TAG_CONN, TAG_LISTENER, TAG_STOP, TAG_TIMER };

/*
 * epoll_wait that, in a busy-polling cell, first asks again and again
 * without sleeping for up to cell->busy_poll_us: the same bargain as
 * muxring's busy_poll_us, so that rpc/BP compares like with like.
 */
static int wait_events(const struct pool *p, int epfd,
		       struct epoll_event *ev, int timeout_ms)
{
	uint64_t until;
	int n;

	if (!p->cell->busy_poll_us)
		return epoll_wait(epfd, ev, MAX_EVENTS, timeout_ms);
	until = bench_now_ns() + p->cell->busy_poll_us * 1000ull;
	do {
		n = epoll_wait(epfd, ev, MAX_EVENTS, 0);
		if (n)
			return n;
	} while (bench_now_ns() < until);
	return epoll_wait(epfd, ev, MAX_EVENTS, timeout_ms);
}

static uint64_t tagged(void *ptr, enum tag t)
{
	return (uint64_t)(uintptr_t)ptr | (uint64_t)t;
}

static enum tag tag_of(uint64_t u)
{
	return (enum tag)(u & 7u);
}

static void *ptr_of(uint64_t u)
{
	return (void *)(uintptr_t)(u & ~(uint64_t)7u);
}

static int ep_add(int epfd, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return bench_error(NAME, "epoll_ctl: %s", strerror(errno));
	return 0;
}

static bool peer_gone(int err)
{
	return err == ECONNRESET || err == EPIPE;
}

/* Request/response sockets: edge-triggered, both directions. */
#define RR_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
/* Streaming sockets: level-triggered, one direction, one buffer per event. */
#define SINK_EVENTS (EPOLLIN | EPOLLRDHUP)

static bool is_sink(enum pool_mode m)
{
	return m == POOL_SINK || m == POOL_SINK_REPLY;
}

/* ---- I/O, plain or through the connection's SSL ------------------------- */

/* An SSL call's failure in the socket's terms: -1 with errno EAGAIN for
 * "want read / write", 0 for the peer's close_notify, else -1 with errno
 * (EPROTO for a TLS error). */
static ssize_t ssl_failure(SSL *ssl, int r)
{
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (!errno)
			errno = ECONNRESET;
		return -1;
	default:
		errno = EPROTO;
		return -1;
	}
}

static ssize_t io_send(SSL *ssl, int fd, const void *buf, size_t len)
{
	size_t n;
	int r;

	if (!ssl)
		return send(fd, buf, len, MSG_NOSIGNAL);
	ERR_clear_error();
	r = SSL_write_ex(ssl, buf, len, &n);
	if (r == 1)
		return (ssize_t)n;
	return ssl_failure(ssl, r) == 0 ? (errno = EPIPE, -1) : -1;
}

/* Reads what has arrived, up to len: through SSL, as many records as are
 * there (see the top of the file). */
static ssize_t io_recv(SSL *ssl, int fd, void *buf, size_t len)
{
	size_t got = 0, n;
	int r;

	if (!ssl)
		return recv(fd, buf, len, 0);
	while (got < len) {
		ERR_clear_error();
		r = SSL_read_ex(ssl, (uint8_t *)buf + got, len - got, &n);
		if (r != 1) {
			ssize_t f = ssl_failure(ssl, r);

			if (got && (f == 0 || errno == EAGAIN))
				break;
			return f;
		}
		got += n;
	}
	return (ssize_t)got;
}

/* The sending side is done: close_notify, then the FIN. */
static int io_shutdown_wr(SSL *ssl, int fd)
{
	if (ssl) {
		ERR_clear_error();
		(void)SSL_shutdown(ssl);
	}
	return shutdown(fd, SHUT_WR);
}

/* An SSL for a connected nonblocking socket (server, or a client that
 * verifies the server's address); NULL after printing the error. */
static SSL *ssl_for(int fd, bool server)
{
	struct ssl_ctx_st *ctx = bench_tls_ctx(server);
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;

	if (!ssl || SSL_set_fd(ssl, fd) != 1 ||
	    (!server && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
						      "127.0.0.1") != 1)) {
		SSL_free(ssl);
		ERR_clear_error();
		bench_error(NAME, "cannot set up TLS on a connection");
		return NULL;
	}
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
			  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	return ssl;
}

/* Closes a connection; a TLS one says close_notify first (best effort:
 * the socket is nonblocking and about to go). */
static void io_close(SSL *ssl, int fd)
{
	if (ssl) {
		ERR_clear_error();
		(void)SSL_shutdown(ssl);
		SSL_free(ssl);
		ERR_clear_error();
	}
	close(fd);
}

static int ep_mod(int epfd, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return bench_error(NAME, "epoll_ctl: %s", strerror(errno));
	return 0;
}

/* ---- server ------------------------------------------------------------ */

struct sconn {
	int fd;
	SSL *ssl;		/* TLS cells */
	enum pool_mode mode;
	size_t size;		/* message size of the mode, bytes */
	size_t got;		/* bytes of the current message read */
	const uint8_t *out;	/* reply being written, NULL when none */
	size_t out_len, out_off;
	bool want_out;		/* sink: level-triggered EPOLLOUT armed */
	unsigned long slot;	/* index in server.conns */
	uint8_t *buf;		/* echo / oneshot: the message, size bytes */
};

struct server {
	struct pool *p;
	int epfd;
	struct sconn **conns;	/* live connections, unordered */
	unsigned long nconns, cap;
	uint8_t *scratch;	/* sinks read here and forget */
};

static const uint8_t one_byte_reply = '!';

static void sconn_close(struct server *s, struct sconn *c)
{
	struct sconn *last = s->conns[--s->nconns];

	last->slot = c->slot;
	s->conns[c->slot] = last;
	io_close(c->ssl, c->fd);
	free(c->buf);
	free(c);
}

static int server_accept(struct server *s, struct pool_listener *l)
{
	for (;;) {
		struct sconn *c;
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return bench_error(NAME, "accept: %s%s", strerror(errno),
					   errno == EMFILE ? " (open-file limit)" : "");
		}
		if (s->nconns == s->cap) {
			unsigned long cap = s->cap ? 2 * s->cap : 1024;
			struct sconn **n = realloc(s->conns, cap * sizeof(*n));

			if (!n) {
				close(fd);
				return bench_error(NAME, "out of memory");
			}
			s->conns = n;
			s->cap = cap;
		}
		c = calloc(1, sizeof(*c));
		if (c && (l->mode == POOL_ECHO || l->mode == POOL_ONESHOT))
			c->buf = malloc(l->size ? l->size : 1);
		if (!c || (!c->buf && (l->mode == POOL_ECHO ||
				       l->mode == POOL_ONESHOT))) {
			free(c);
			close(fd);
			return bench_error(NAME, "out of memory");
		}
		c->fd = fd;
		if (s->p->cell->tls && !(c->ssl = ssl_for(fd, true))) {
			free(c->buf);
			free(c);
			close(fd);
			return -1;
		}
		c->mode = l->mode;
		c->size = l->size;
		c->slot = s->nconns;
		s->conns[s->nconns++] = c;
		if (ep_add(s->epfd, fd, is_sink(c->mode) ? SINK_EVENTS : RR_EVENTS,
			   tagged(c, TAG_CONN)) < 0)
			return -1;
		atomic_fetch_add(&s->p->accepted, 1);
	}
}

/* Reads a message and answers it, per mode.  Returns 0, or -1 on a real
 * error; closes the connection when the peer is done with it. */
static int server_pump(struct server *s, struct sconn *c)
{
	for (;;) {
		ssize_t n;

		if (c->out) {
			n = io_send(c->ssl, c->fd, c->out + c->out_off,
				    c->out_len - c->out_off);
			if (n < 0) {
				if (errno == EAGAIN && is_sink(c->mode) &&
				    !c->want_out) {
					/* rare: a full send buffer; poll for room */
					c->want_out = true;
					return ep_mod(s->epfd, c->fd,
						      SINK_EVENTS | EPOLLOUT,
						      tagged(c, TAG_CONN));
				}
				if (errno == EAGAIN)
					return 0;
				if (errno == EINTR)
					continue;
				if (peer_gone(errno))
					goto gone;
				return bench_error(NAME, "server send: %s",
						   strerror(errno));
			}
			c->out_off += (size_t)n;
			if (c->out_off < c->out_len)
				continue;
			c->out = NULL;
			if (c->mode == POOL_ONESHOT)
				goto gone;
			if (c->want_out) {
				c->want_out = false;
				return ep_mod(s->epfd, c->fd, SINK_EVENTS,
					      tagged(c, TAG_CONN));
			}
			return 0;	/* nothing comes before our answer */
		}
		switch (c->mode) {
		case POOL_ECHO:
			n = io_recv(c->ssl, c->fd, c->buf + c->got,
				    c->size - c->got);
			break;
		case POOL_ONESHOT:
			if (c->got < c->size)
				n = io_recv(c->ssl, c->fd, c->buf + c->got,
					    c->size - c->got);
			else	/* expecting FIN */
				n = io_recv(c->ssl, c->fd, s->scratch,
					    POOL_SCRATCH);
			break;
		case POOL_SINK_REPLY:
			n = c->size - c->got < POOL_SCRATCH ?
				    (ssize_t)(c->size - c->got) : POOL_SCRATCH;
			n = io_recv(c->ssl, c->fd, s->scratch, (size_t)n);
			break;
		case POOL_SINK:
		default:
			n = io_recv(c->ssl, c->fd, s->scratch, POOL_SCRATCH);
			break;
		}
		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			if (peer_gone(errno))
				goto gone;
			return bench_error(NAME, "server recv: %s",
					   strerror(errno));
		}
		if (n == 0) {
			if (c->mode == POOL_ONESHOT && c->got == c->size) {
				c->out = c->buf;	/* reply: the request */
				c->out_len = c->size;
				c->out_off = 0;
				continue;
			}
			goto gone;
		}
		c->got += (size_t)n;
		if (c->mode == POOL_ECHO && c->got == c->size) {
			c->out = c->buf;
			c->out_len = c->size;
		} else if (c->mode == POOL_SINK_REPLY && c->got == c->size) {
			c->out = &one_byte_reply;
			c->out_len = 1;
		} else if (c->mode == POOL_ONESHOT && c->got > c->size) {
			return bench_error(NAME, "open: request longer than %zu bytes",
					   c->size);
		} else if (is_sink(c->mode)) {
			return 0;	/* one buffer per event; level-triggered */
		} else {
			continue;
		}
		c->got = 0;
		c->out_off = 0;
	}
gone:
	sconn_close(s, c);
	return 0;
}

static int server_loop(struct server *s)
{
	struct epoll_event ev[MAX_EVENTS];
	struct pool *p = s->p;

	for (unsigned i = 0; i < p->nlis; i++)
		if (ep_add(s->epfd, p->lis[i].fd, EPOLLIN | EPOLLET,
			   tagged(&p->lis[i], TAG_LISTENER)) < 0)
			return -1;
	if (ep_add(s->epfd, p->stop_fd, EPOLLIN, tagged(s, TAG_STOP)) < 0)
		return -1;
	for (;;) {
		int n = wait_events(p, s->epfd, ev, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bench_error(NAME, "epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			uint64_t u = ev[i].data.u64;
			int err = 0;

			switch (tag_of(u)) {
			case TAG_STOP:
				return 0;
			case TAG_LISTENER:
				err = server_accept(s, ptr_of(u));
				break;
			case TAG_CONN:
				err = server_pump(s, ptr_of(u));
				break;
			case TAG_TIMER:
				break;
			}
			if (err)
				return err;
		}
	}
}

static int epoll_server(struct pool *p)
{
	struct server s = { .p = p, .epfd = -1 };
	int err = -1;

	s.scratch = malloc(POOL_SCRATCH);
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!s.scratch || s.epfd < 0)
		bench_error(NAME, "server set-up: %s",
			    s.scratch ? strerror(errno) : "out of memory");
	else
		err = server_loop(&s);
	while (s.nconns)
		sconn_close(&s, s.conns[s.nconns - 1]);
	free(s.conns);
	free(s.scratch);
	if (s.epfd >= 0)
		close(s.epfd);
	return err;
}

/* ---- client ------------------------------------------------------------ */

enum cstate {
	C_CONNECTING,	/* open: nonblocking connect in progress */
	C_SEND,		/* writing the request (or the load) */
	C_RECV,		/* waiting for the reply */
	C_IDLE,		/* heartbeat ping: waiting for the timer */
	C_DONE,
};

struct cconn {
	int fd;
	SSL *ssl;		/* TLS cells */
	enum cstate state;
	bool is_ping;		/* heartbeat: the ping connection */
	size_t off;		/* request bytes written */
	size_t got;		/* reply bytes read */
	uint64_t t0;		/* request start, ns */
	uint8_t *buf;		/* reply buffer */
};

struct client {
	struct pool *p;
	int epfd;
	int timer_fd;		/* heartbeat: ping period */
	struct cconn *conns;	/* long-lived connections or open workers */
	unsigned long nconns;
	unsigned long active;	/* conns not C_DONE */
	uint64_t deadline;	/* stop starting requests, ns */
	uint64_t opened;	/* open: connections started */
	size_t reply_len;	/* bytes of one reply */
};

/* Open workload: starts worker c's next request on a new connection. */
static int open_start(struct client *cl, struct cconn *c)
{
	const struct pool_listener *l =
		&cl->p->lis[pool_open_listener(cl->p, cl->opened++)];
	struct sockaddr_in sa;
	int fd;

	c->t0 = bench_now_ns();
	fd = bench_socket(true);
	if (fd < 0)
		return bench_error(NAME, "socket: %s", strerror(-fd));
	bench_sockaddr(l->port, &sa);
	c->fd = fd;
	if (cl->p->cell->tls && !(c->ssl = ssl_for(fd, false)))
		return -1;
	c->off = c->got = 0;
	c->state = C_CONNECTING;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		c->state = C_SEND;
	else if (errno != EINPROGRESS)
		return bench_error(NAME, "connect to 127.0.0.1:%u: %s%s",
				   l->port, strerror(errno),
				   errno == EADDRNOTAVAIL ?
					   " (ephemeral ports exhausted)" : "");
	/* Registered after connect(): if the socket is already writable the
	 * insertion itself queues the EPOLLOUT that gets the request going. */
	return ep_add(cl->epfd, fd, RR_EVENTS, tagged(c, TAG_CONN));
}

/* A request finished on c: count it and start the next one or stop. */
static int request_done(struct client *cl, struct cconn *c)
{
	struct pool *p = cl->p;
	uint64_t now = bench_now_ns();

	bench_latency_record(&p->lat, now - c->t0);
	p->ops++;
	if (p->cell->workload != BENCH_HEARTBEAT)
		p->bytes += p->cell->size;
	if (c->is_ping) {
		c->state = C_IDLE;
		return 0;
	}
	if (now >= cl->deadline) {
		c->state = C_DONE;
		cl->active--;
		return 0;
	}
	if (p->cell->workload == BENCH_OPEN)
		return open_start(cl, c);
	c->t0 = now;
	c->off = c->got = 0;
	c->state = C_SEND;
	return 0;
}

static int client_pump(struct client *cl, struct cconn *c, uint32_t events)
{
	struct pool *p = cl->p;
	enum bench_workload w = p->cell->workload;
	size_t req_len = c->is_ping ? POOL_PING_SIZE : p->cell->size;

	for (;;) {
		ssize_t n;

		switch (c->state) {
		case C_CONNECTING: {
			int soerr = 0;
			socklen_t len = sizeof(soerr);

			if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
				return 0;
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
				soerr = errno;
			if (soerr)
				return bench_error(NAME, "connect: %s",
						   strerror(soerr));
			c->state = C_SEND;
			break;
		}
		case C_SEND:
			if (w == BENCH_HEARTBEAT && !c->is_ping) {
				/* the load: one buffer per (level) event */
				if (bench_now_ns() >= cl->deadline) {
					c->state = C_DONE;
					cl->active--;
					if (epoll_ctl(cl->epfd, EPOLL_CTL_DEL,
						      c->fd, NULL) < 0)
						return bench_error(NAME, "epoll_ctl: %s",
								   strerror(errno));
					return 0;
				}
				n = io_send(c->ssl, c->fd, p->payload + c->off,
					    req_len - c->off);
				if (n < 0)
					goto send_error;
				p->bytes += (uint64_t)n;
				c->off = (c->off + (size_t)n) % req_len;
				return 0;
			}
			n = io_send(c->ssl, c->fd, p->payload + c->off,
				    req_len - c->off);
			if (n < 0)
				goto send_error;
			c->off += (size_t)n;
			if (c->off < req_len)
				break;
			c->state = C_RECV;
			if (w == BENCH_OPEN && io_shutdown_wr(c->ssl, c->fd) < 0)
				return bench_error(NAME, "shutdown: %s",
						   strerror(errno));
			return 0;	/* the reply brings its own edge */
		case C_RECV:
			if (w == BENCH_OPEN && c->got == cl->reply_len) {
				/* the reply is in; wait for the FIN */
				char b;

				n = io_recv(c->ssl, c->fd, &b, 1);
				if (n == 0) {
					if (memcmp(c->buf, p->payload, c->got) != 0)
						return bench_error(NAME, "the echo differs from the request");
					io_close(c->ssl, c->fd);
					c->ssl = NULL;
					c->fd = -1;
					return request_done(cl, c);
				}
				if (n > 0)
					return bench_error(NAME, "open: reply longer than %zu bytes",
							   cl->reply_len);
			} else {
				size_t want = c->is_ping ? POOL_PING_SIZE :
							   cl->reply_len;

				n = io_recv(c->ssl, c->fd, c->buf + c->got,
					    want - c->got);
				if (n == 0)
					return bench_error(NAME,
							   "the server closed a connection early");
			}
			if (n < 0) {
				if (errno == EAGAIN)
					return 0;
				if (errno == EINTR)
					break;
				return bench_error(NAME, "client recv: %s",
						   strerror(errno));
			}
			c->got += (size_t)n;
			if (w == BENCH_OPEN)
				break;	/* go on to the FIN */
			if (c->got < (c->is_ping ? POOL_PING_SIZE : cl->reply_len))
				break;
			if (w != BENCH_BULK &&
			    memcmp(c->buf, p->payload, c->got) != 0)
				return bench_error(NAME, "the echo differs from the request");
			if (request_done(cl, c) < 0)
				return -1;
			break;	/* C_SEND: the next request goes out now */
		case C_IDLE:
		case C_DONE:
			return 0;
		}
		continue;
send_error:
		if (errno == EAGAIN)
			return 0;
		if (errno == EINTR)
			continue;
		return bench_error(NAME, "client send: %s", strerror(errno));
	}
}

/* Heartbeat: the timer fired; send a ping unless one is in flight. */
static int ping_tick(struct client *cl, struct cconn *ping)
{
	uint64_t ticks;

	if (read(cl->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return bench_error(NAME, "timerfd: %s", strerror(errno));
	if (ping->state != C_IDLE || bench_now_ns() >= cl->deadline)
		return 0;
	ping->t0 = bench_now_ns();
	ping->off = ping->got = 0;
	ping->state = C_SEND;
	return client_pump(cl, ping, EPOLLOUT);
}

static bool client_finished(const struct client *cl)
{
	if (cl->p->cell->workload == BENCH_HEARTBEAT) {
		const struct cconn *ping = &cl->conns[cl->nconns - 1];

		return bench_now_ns() >= cl->deadline && ping->state == C_IDLE;
	}
	return cl->active == 0;
}

static int client_loop(struct client *cl)
{
	struct epoll_event ev[MAX_EVENTS];
	uint64_t last = bench_now_ns();

	while (!client_finished(cl)) {
		int n = wait_events(cl->p, cl->epfd, ev, WAIT_MS);
		uint64_t now = bench_now_ns();

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bench_error(NAME, "epoll_wait: %s", strerror(errno));
		}
		if (atomic_load(&cl->p->server_failed))
			return -1;
		if (n > 0)
			last = now;
		else if (pool_stalled(now, last))
			return bench_error(NAME, "no progress for %llu s: stalled",
					   BENCH_STALL_NS / 1000000000ull);
		for (int i = 0; i < n; i++) {
			uint64_t u = ev[i].data.u64;
			int err;

			if (tag_of(u) == TAG_TIMER)
				err = ping_tick(cl, &cl->conns[cl->nconns - 1]);
			else
				err = client_pump(cl, ptr_of(u), ev[i].events);
			if (err)
				return err;
		}
	}
	cl->p->t_end = bench_now_ns();
	return 0;
}

/* TLS cells: an SSL on every long-lived connection, and every handshake
 * done before the clock starts (the server side runs its half in its
 * loop). Returns 0, or -1 after printing the error. */
static int tls_handshakes(struct client *cl)
{
	uint64_t end = bench_now_ns() + BENCH_STALL_NS;
	unsigned long left = cl->nconns;

	for (unsigned long i = 0; i < cl->nconns; i++)
		if (!(cl->conns[i].ssl = ssl_for(cl->conns[i].fd, false)))
			return -1;
	while (left) {
		left = 0;
		for (unsigned long i = 0; i < cl->nconns; i++) {
			SSL *ssl = cl->conns[i].ssl;
			int r;

			if (SSL_is_init_finished(ssl))
				continue;
			ERR_clear_error();
			r = SSL_do_handshake(ssl);
			if (r != 1 && ssl_failure(ssl, r) < 0 && errno != EAGAIN)
				return bench_error(NAME, "TLS handshake: %s",
						   strerror(errno));
			left += r != 1;
		}
		if (left && bench_now_ns() > end)
			return bench_error(NAME, "TLS handshakes stalled");
		if (left)
			poll(NULL, 0, 1);
	}
	return 0;
}

static int start_timer(struct client *cl)
{
	struct itimerspec its = {
		.it_interval.tv_nsec = BENCH_HEARTBEAT_INTERVAL_NS,
		.it_value.tv_nsec = BENCH_HEARTBEAT_INTERVAL_NS,
	};

	cl->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (cl->timer_fd < 0 || timerfd_settime(cl->timer_fd, 0, &its, NULL) < 0)
		return bench_error(NAME, "timerfd: %s", strerror(errno));
	return ep_add(cl->epfd, cl->timer_fd, EPOLLIN, tagged(cl, TAG_TIMER));
}

static int client_run(struct client *cl)
{
	struct pool *p = cl->p;
	enum bench_workload w = p->cell->workload;

	cl->nconns = w == BENCH_OPEN ? p->cell->streams : p->nconns;
	cl->reply_len = w == BENCH_BULK ? 1 : p->cell->size;
	if (w != BENCH_OPEN && pool_connect_all(p) < 0)
		return -1;
	cl->conns = calloc(cl->nconns, sizeof(*cl->conns));
	if (!cl->conns)
		return bench_error(NAME, "out of memory");
	for (unsigned long i = 0; i < cl->nconns; i++) {
		struct cconn *c = &cl->conns[i];
		size_t len = cl->reply_len > POOL_PING_SIZE ? cl->reply_len :
							      POOL_PING_SIZE;

		c->fd = w == BENCH_OPEN ? -1 : p->fds[i];
		c->is_ping = w == BENCH_HEARTBEAT && i == p->cell->streams;
		if (w == BENCH_IDLE || (w == BENCH_HEARTBEAT && !c->is_ping))
			continue;
		c->buf = malloc(len);
		if (!c->buf)
			return bench_error(NAME, "out of memory");
	}
	for (unsigned long i = 0; w != BENCH_OPEN && i < cl->nconns; i++) {
		bool load = w == BENCH_HEARTBEAT && !cl->conns[i].is_ping;

		if (ep_add(cl->epfd, cl->conns[i].fd, load ? EPOLLOUT : RR_EVENTS,
			   tagged(&cl->conns[i], TAG_CONN)) < 0)
			return -1;
	}
	if (w == BENCH_IDLE)
		return pool_idle_measure(p);
	if (w != BENCH_OPEN && pool_wait_accepted(p) < 0)
		return -1;
	if (p->cell->tls && w != BENCH_OPEN && tls_handshakes(cl) < 0)
		return -1;
	if (w == BENCH_HEARTBEAT && start_timer(cl) < 0)
		return -1;

	bench_clock_start();
	p->t_start = bench_now_ns();
	cl->deadline = p->t_start + bench_seconds_to_ns(p->cell->seconds);
	cl->active = cl->nconns;
	for (unsigned long i = 0; i < cl->nconns; i++) {
		struct cconn *c = &cl->conns[i];

		if (c->is_ping) {
			c->state = C_IDLE;
			continue;
		}
		c->t0 = p->t_start;
		c->state = C_SEND;
		if (w == BENCH_OPEN ? open_start(cl, c) < 0 :
				      client_pump(cl, c, EPOLLOUT) < 0)
			return -1;
	}
	if (client_loop(cl) < 0)
		return -1;
	return w == BENCH_SESSIONS ? pool_sessions_measure(p) : 0;
}

static int epoll_client(struct pool *p)
{
	struct client cl = { .p = p, .timer_fd = -1 };
	int err;

	cl.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cl.epfd < 0)
		return bench_error(NAME, "epoll_create1: %s", strerror(errno));
	err = client_run(&cl);
	for (unsigned long i = 0; cl.conns && i < cl.nconns; i++) {
		SSL_free(cl.conns[i].ssl);	/* leaves the fd open */
		if (p->cell->workload == BENCH_OPEN && cl.conns[i].fd >= 0)
			close(cl.conns[i].fd);	/* pool's fds close in pool.c */
		free(cl.conns[i].buf);
	}
	free(cl.conns);
	if (cl.timer_fd >= 0)
		close(cl.timer_fd);
	close(cl.epfd);
	return err;
}

/* ---- the impl ---------------------------------------------------------- */

static const struct pool_ops epoll_ops = {
	.server = epoll_server,
	.client = epoll_client,
};

/* Every workload without TLS; with TLS, those of the TLS cells. */
static bool epoll_supports(const struct bench_cell *cell)
{
	if (!cell->tls)
		return true;
	return cell->workload == BENCH_RPC || cell->workload == BENCH_OPEN ||
	       cell->workload == BENCH_BULK;
}

static int epoll_run(const struct bench_cell *cell, struct bench_result *out)
{
	return pool_run(NAME, &epoll_ops, cell, out);
}

const struct bench_impl bench_impl_tcp_epoll = {
	.name = NAME,
	.summary = "pool of N TCP connections, one request in flight each, epoll loops"
		   " (TLS cells: OpenSSL on each connection)",
	.supports = epoll_supports,
	.busy_polls = true,
	.run = epoll_run,
};
