/*
 * muxconform - checks a muxado peer against the protocol's rules, over raw
 * frames (what h2spec is for HTTP/2).
 *
 * The peer must run an echo server: every stream opened to it is echoed
 * back byte for byte and half-closed after our FIN (muxcat -l -e -k does
 * this, and so does a ten-line Go program over muxado). Run it:
 *
 *	build/muxcat -l -e -k 9000 &
 *	build/muxconform 127.0.0.1 9000
 *	PASS stream-echo
 *	...
 *	30 passed, 0 failed
 *
 * Each rule dials its own TCP connection, so no rule sees another's state,
 * writes the frames it needs with the library's wire codec (never through
 * the library's engine: the point is to send what a correct engine would
 * refuse to), and reads the peer's frames with a deadline (--timeout), so
 * nothing waits forever. A rule checks one thing PROTOCOL.md says: the
 * echo itself, stream ids and their parity, SYN/FIN/RST, windows and
 * WNDINC, the accept backlog, GOAWAY, unknown frames, framing errors, and
 * the points where a peer must get along with the Go reference.
 *
 * Design: struct conn keeps, per stream id, what the peer sent (payload,
 * FIN, RST, WNDINC total, a SYN it should not have set) and, per session,
 * its GOAWAY and EOF; rules write frames and then wait for a condition on
 * that state (conn_wait). The reader never trusts the peer: a frame that
 * breaks a framing rule is recorded as the peer's fault.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cli.h"
#include "wire/frame.h"
#include "muxring.h"

enum {
	STATUS_OK = 0,      /* every rule passed */
	STATUS_FAILED = 1,  /* a rule failed */
	STATUS_USAGE = CLI_STATUS_USAGE,
	STATUS_CONNECT = 3, /* the peer could not be reached at all */
};

#define WINDOW 0x40000u            /* the protocol's initial window */
#define MAX_IDS 1024u              /* stream ids we track (ours stay below) */
#define QUIET_MS 300               /* "the peer sends nothing more" */
#define DEFAULT_TIMEOUT_MS 3000
#define BURST_STREAMS 200u         /* above the default backlog of 128 */
#define READ_CHUNK (256u << 10)

static const char usage_text[] =
"usage: muxconform [--json] [--timeout MS] [--rule NAME]... HOST PORT\n"
"  Checks the muxado peer at HOST PORT against the protocol's rules, one TCP connection per rule.\n"
"  The peer must run an echo server: every stream opened to it echoed back and half-closed after the FIN\n"
"  (e.g. build/muxcat -l -e -k PORT, or a Go muxado echo server).\n"
"  Prints `PASS RULE` or `FAIL RULE: WHY` per rule, then `N passed, M failed`.\n"
"  --json        print one JSON object instead: {\"rules\":[{\"rule\":R,\"pass\":B,\"why\":W},...],\"passed\":N,\"failed\":M}\n"
"  --timeout MS  how long to wait for each answer of the peer (default 3000)\n"
"  --rule NAME   run only this rule (may be given again)\n"
"  --list        print the rules with what each checks, and exit\n"
"  -h, --help    this text\n"
"Exit status: 0 every rule passed, 1 a rule failed, 2 usage, 3 the peer could not be reached.\n";

/* ---------------------------------------------------------------------- */
/* A raw connection to the peer                                            */
/* ---------------------------------------------------------------------- */

/* What the peer said on one stream. */
struct peer_stream {
	uint8_t *data;       /* payload received */
	size_t len, cap;
	uint64_t wndinc;     /* total of its WNDINC increments */
	uint32_t rst_code;
	bool rst, fin, syn;  /* syn: set on a stream we opened */
	bool after_fin;      /* DATA after its FIN */
	bool opened;         /* we sent SYN on it */
};

struct conn {
	int fd;
	int timeout_ms;
	uint8_t *in;                 /* bytes read, not yet parsed */
	size_t in_len, in_cap;
	struct peer_stream st[MAX_IDS];
	bool eof;                    /* the peer closed (or reset) */
	int error;                   /* a socket error, -errno */
	bool goaway;
	uint32_t goaway_code, goaway_last;
	char goaway_debug[128];
	unsigned frames_after_goaway;/* frames (not EOF) after its GOAWAY */
	bool known_after_goaway;     /* one of them had a known type */
	unsigned frames;             /* every frame the peer sent */
	char malformed[96];          /* the first framing breach of the peer */
	uint32_t stray_id;           /* a frame on an id we never used */
};

static void conn_close(struct conn *c)
{
	unsigned i;

	if (c->fd >= 0)
		close(c->fd);
	for (i = 0; i < MAX_IDS; i++)
		free(c->st[i].data);
	free(c->in);
	free(c);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nonblocking connect with the timeout; the socket stays nonblocking. */
static int dial(const char *host, const char *port, int timeout_ms)
{
	struct addrinfo *res, *ai;
	int fd = -1, err = -EHOSTUNREACH;

	if (cli_resolve_tcp(host, port, &res))
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t len = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = -errno;
		p = (struct pollfd){.fd = fd, .events = POLLOUT};
		if (err == -EINPROGRESS && poll(&p, 1, timeout_ms) == 1 &&
		    !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) && !err)
			break;
		err = err > 0 ? -err : err ? err : -ETIMEDOUT;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : err;
}

static struct conn *conn_open(const char *host, const char *port,
			      int timeout_ms, int *err)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	c->timeout_ms = timeout_ms;
	c->fd = dial(host, port, timeout_ms);
	if (c->fd < 0) {
		*err = c->fd;
		conn_close(c);
		return NULL;
	}
	return c;
}

static struct peer_stream *stream_of(struct conn *c, uint32_t id)
{
	return id < MAX_IDS ? &c->st[id] : NULL;
}

static void note_malformed(struct conn *c, const char *what)
{
	if (!c->malformed[0])
		snprintf(c->malformed, sizeof(c->malformed), "%s", what);
}

static void take_data(struct conn *c, const struct mr_frame_header *h,
		      const uint8_t *body)
{
	struct peer_stream *s = stream_of(c, h->stream_id);

	if (!s) {
		c->stray_id = h->stream_id;
		return;
	}
	if (h->stream_id & 1 && !s->opened) {
		char what[96];

		snprintf(what, sizeof(what), "the peer sent DATA on stream %u, "
			 "which we never opened", h->stream_id);
		note_malformed(c, what);
	}
	if (h->flags & MR_FLAG_SYN)
		s->syn = true;
	if (s->fin && h->length)
		s->after_fin = true;
	if (h->length) {
		if (s->len + h->length > s->cap) {
			size_t cap = (s->len + h->length) * 2;
			uint8_t *p = realloc(s->data, cap);

			if (!p) {
				note_malformed(c, "(out of memory)");
				return;
			}
			s->data = p;
			s->cap = cap;
		}
		memcpy(s->data + s->len, body, h->length);
		s->len += h->length;
	}
	if (h->flags & MR_FLAG_FIN)
		s->fin = true;
}

/* One whole frame of the peer. */
static void take_frame(struct conn *c, const struct mr_frame_header *h,
		       const uint8_t *body)
{
	struct peer_stream *s = stream_of(c, h->stream_id);
	uint32_t bad = mr_frame_header_check(h);
	char what[96];

	c->frames++;
	if (c->goaway) {
		c->frames_after_goaway++;
		if (h->type <= MR_FRAME_GOAWAY)
			c->known_after_goaway = true;
	}
	if (bad) {
		snprintf(what, sizeof(what),
			 "the peer sent a malformed frame (type %u, stream %u, "
			 "length %u: %s)", h->type, h->stream_id, h->length,
			 muxring_code_name(bad));
		note_malformed(c, what);
		return;
	}
	switch (h->type) {
	case MR_FRAME_DATA:
		take_data(c, h, body);
		break;
	case MR_FRAME_RST:
		if (s) {
			s->rst = true;
			s->rst_code = mr_get_be32(body);
		} else {
			c->stray_id = h->stream_id;
		}
		break;
	case MR_FRAME_WNDINC:
		if (!mr_frame_wndinc_increment(body))
			note_malformed(c, "the peer sent WNDINC with increment 0");
		else if (s)
			s->wndinc += mr_frame_wndinc_increment(body);
		break;
	case MR_FRAME_GOAWAY:
		if (c->goaway)
			break;
		c->goaway = true;
		c->goaway_last = mr_get_be32(body) & MR_STREAM_ID_MASK;
		c->goaway_code = mr_get_be32(body + 4);
		snprintf(c->goaway_debug, sizeof(c->goaway_debug), "%.*s",
			 (int)(h->length - 8 < 100 ? h->length - 8 : 100),
			 (const char *)body + 8);
		break;
	default:
		break; /* unknown types are skipped whole */
	}
}

/* Parses every whole frame in the input buffer. */
static void parse_input(struct conn *c)
{
	size_t off = 0;

	while (c->in_len - off >= MR_FRAME_HEADER_LEN) {
		struct mr_frame_header h;

		mr_frame_header_parse(c->in + off, &h);
		if (c->in_len - off - MR_FRAME_HEADER_LEN < h.length)
			break;
		take_frame(c, &h, c->in + off + MR_FRAME_HEADER_LEN);
		off += MR_FRAME_HEADER_LEN + h.length;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

/* Reads what the socket has (waiting at most wait_ms). */
static void conn_pump(struct conn *c, int wait_ms)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	ssize_t n;

	if (c->eof || poll(&p, 1, wait_ms < 0 ? 0 : wait_ms) != 1)
		return;
	for (;;) {
		if (c->in_cap - c->in_len < READ_CHUNK) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 2 * READ_CHUNK;
			uint8_t *in = realloc(c->in, cap);

			if (!in) {
				c->eof = true;
				c->error = -ENOMEM;
				return;
			}
			c->in = in;
			c->in_cap = cap;
		}
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			parse_input(c);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		c->eof = true;
		c->error = n < 0 ? -errno : 0;
		return;
	}
}

typedef bool cond_fn(struct conn *c, uint32_t arg);

/* Reads until cond holds, the peer closes, or the timeout passes. */
static bool conn_wait(struct conn *c, cond_fn *cond, uint32_t arg)
{
	int64_t until = now_ms() + c->timeout_ms;

	while (!cond(c, arg)) {
		if (c->eof || now_ms() >= until)
			return cond(c, arg);
		conn_pump(c, (int)(until - now_ms()));
	}
	return true;
}

/* Reads for ms, whatever comes. */
static void conn_linger(struct conn *c, int ms)
{
	int64_t until = now_ms() + ms;

	while (!c->eof && now_ms() < until)
		conn_pump(c, (int)(until - now_ms()));
}

/* Writes all bytes, reading meanwhile so that a peer that answers while
 * we write never blocks us both. Returns 0 or -errno. */
static int conn_send(struct conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int64_t until = now_ms() + c->timeout_ms;

	while (len) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLOUT};
		ssize_t n;

		if (now_ms() >= until)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)(until - now_ms())) < 1)
			continue;
		if (pfd.revents & POLLIN)
			conn_pump(c, 0);
		if (!(pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
			continue;
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Frames we write                                                         */
/* ---------------------------------------------------------------------- */

static int send_header(struct conn *c, uint32_t len, uint8_t type,
		       uint8_t flags, uint32_t id)
{
	uint8_t h[MR_FRAME_HEADER_LEN];
	struct mr_frame_header hdr = {len, type, flags, id};

	mr_frame_header_pack(h, &hdr);
	/* The reserved bit is packed away by the codec; put it back when a
	 * rule asks for it. */
	if (id & ~MR_STREAM_ID_MASK)
		h[4] |= 0x80;
	return conn_send(c, h, sizeof(h));
}

/* A frame with any header and body (also illegal ones). */
static int send_frame(struct conn *c, uint8_t type, uint8_t flags,
		      uint32_t id, const void *body, uint32_t len)
{
	int err = send_header(c, len, type, flags, id);

	return err ? err : conn_send(c, body, len);
}

static int send_data(struct conn *c, uint32_t id, uint8_t flags,
		     const void *payload, uint32_t len)
{
	struct peer_stream *s = stream_of(c, id & MR_STREAM_ID_MASK);

	if (s && flags & MR_FLAG_SYN)
		s->opened = true;
	return send_frame(c, MR_FRAME_DATA, flags, id, payload, len);
}

static int send_word(struct conn *c, uint8_t type, uint32_t id, uint32_t w)
{
	uint8_t b[4];

	mr_put_be32(b, w);
	return send_frame(c, type, 0, id, b, 4);
}

static int send_goaway(struct conn *c, uint32_t last, uint32_t code,
		       const char *debug)
{
	uint8_t head[MR_GOAWAY_HEAD_LEN];
	size_t n = mr_frame_pack_goaway_head(head, last, code,
					     (uint32_t)strlen(debug));
	int err = conn_send(c, head, n);

	return err ? err : conn_send(c, debug, strlen(debug));
}

/* ---------------------------------------------------------------------- */
/* Conditions and checks                                                   */
/* ---------------------------------------------------------------------- */

static bool has_fin(struct conn *c, uint32_t id)
{
	return c->st[id].fin || c->st[id].rst;
}

static bool has_rst(struct conn *c, uint32_t id)
{
	return c->st[id].rst;
}

static bool has_bytes(struct conn *c, uint32_t packed)
{
	uint32_t id = packed & 0x3FF, len = packed >> 10;

	return c->st[id].len >= len || c->st[id].rst;
}

static bool has_wndinc(struct conn *c, uint32_t id)
{
	return c->st[id].wndinc > 0;
}

static bool has_goaway_and_eof(struct conn *c, uint32_t arg)
{
	(void)arg;
	return c->eof;
}

static bool all_finished(struct conn *c, uint32_t count)
{
	uint32_t i;

	for (i = 0; i < count; i++)
		if (!has_fin(c, 3 + 2 * i))
			return false;
	return true;
}

/* The result of one rule: why it failed, or "" when it passed. */
struct verdict {
	char why[256];
};

static bool failf(struct verdict *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool failf(struct verdict *v, const char *fmt, ...)
{
	va_list ap;

	if (v->why[0])
		return false; /* the first reason is the one that counts */
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	return false;
}

/* The things the peer must never do in any rule. */
static bool peer_sane(struct conn *c, struct verdict *v)
{
	unsigned i;

	if (c->malformed[0])
		return failf(v, "%s", c->malformed);
	if (c->stray_id)
		return failf(v, "the peer sent a frame on stream %u, which "
			     "was never opened", c->stray_id);
	for (i = 1; i < MAX_IDS; i += 2) {
		if (c->st[i].syn)
			return failf(v, "the peer set SYN on stream %u, which "
				     "we opened", i);
		if (c->st[i].after_fin)
			return failf(v, "the peer sent DATA on stream %u "
				     "after its FIN", i);
	}
	return true;
}

static bool send_ok(int err, struct verdict *v)
{
	if (err)
		return failf(v, "writing to the peer failed: %s",
			     strerror(-err));
	return true;
}

static const char *session_state(struct conn *c, char *buf, size_t len)
{
	if (c->goaway)
		snprintf(buf, len, "the peer sent GOAWAY %s \"%s\"",
			 muxring_code_name(c->goaway_code), c->goaway_debug);
	else if (c->eof)
		snprintf(buf, len, "the peer closed the connection");
	else
		snprintf(buf, len, "no answer within the timeout");
	return buf;
}

/* The peer echoed exactly `want` on `id`, then FIN (when fin). */
static bool check_echo(struct conn *c, uint32_t id, const void *want,
		       size_t len, bool fin, struct verdict *v)
{
	struct peer_stream *s = &c->st[id];
	char state[192];

	if (fin)
		conn_wait(c, has_fin, id);
	else
		conn_wait(c, has_bytes, id | (uint32_t)len << 10);
	if (!peer_sane(c, v))
		return false;
	if (s->rst)
		return failf(v, "stream %u was reset with %s", id,
			     muxring_code_name(s->rst_code));
	if (s->len < len)
		return failf(v, "stream %u: %zu of %zu bytes echoed (%s)", id,
			     s->len, len, session_state(c, state, sizeof(state)));
	if (s->len > len || memcmp(s->data, want, len))
		return failf(v, "stream %u: the echo differs from what was "
			     "sent", id);
	if (fin && !s->fin)
		return failf(v, "stream %u: no FIN after the echo (%s)", id,
			     session_state(c, state, sizeof(state)));
	return true;
}

/* A fresh stream echoes: the session is still alive and well. */
static bool check_alive(struct conn *c, uint32_t id, struct verdict *v)
{
	static const char ping[] = "still there?";

	if (!send_ok(send_data(c, id, MR_FLAG_SYN, ping, sizeof(ping) - 1), v) ||
	    !send_ok(send_data(c, id, MR_FLAG_FIN, NULL, 0), v))
		return false;
	if (!check_echo(c, id, ping, sizeof(ping) - 1, true, v))
		return failf(v, "afterwards the session no longer works: %s",
			     v->why);
	if (c->goaway)
		return failf(v, "the peer sent GOAWAY %s",
			     muxring_code_name(c->goaway_code));
	return true;
}

/*
 * The peer ends the session for a framing or protocol error: GOAWAY with
 * `code`, then the end of the transport; anything between must be a frame
 * of an unknown type (which keeps a Go reader, which takes 8 bytes more
 * after a GOAWAY, in step).
 */
static bool check_fatal(struct conn *c, uint32_t code, struct verdict *v)
{
	conn_wait(c, has_goaway_and_eof, 0);
	if (c->malformed[0])
		return failf(v, "%s", c->malformed);
	if (!c->goaway)
		return failf(v, "expected GOAWAY %s, but %s",
			     muxring_code_name(code),
			     c->eof ? "the peer closed without one"
				    : "none came within the timeout");
	if (c->goaway_code != code)
		return failf(v, "GOAWAY carried %s, not %s",
			     muxring_code_name(c->goaway_code),
			     muxring_code_name(code));
	if (!c->eof)
		return failf(v, "the peer kept the connection open after its "
			     "GOAWAY %s", muxring_code_name(code));
	if (c->known_after_goaway)
		return failf(v, "a frame of a known type followed GOAWAY (a "
			     "Go reader would lose frame sync)");
	return true;
}

/* ---------------------------------------------------------------------- */
/* The rules                                                               */
/* ---------------------------------------------------------------------- */

static bool rule_stream_echo(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 3, MR_FLAG_SYN, "hello ", 6), v) &&
	       send_ok(send_data(c, 3, MR_FLAG_FIN, "world", 5), v) &&
	       check_echo(c, 3, "hello world", 11, true, v);
}

static bool rule_syn_empty_frame(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 3, MR_FLAG_SYN, NULL, 0), v) &&
	       send_ok(send_data(c, 3, 0, "ping", 4), v) &&
	       send_ok(send_data(c, 3, MR_FLAG_FIN, NULL, 0), v) &&
	       check_echo(c, 3, "ping", 4, true, v);
}

static bool rule_streams_independent(struct conn *c, struct verdict *v)
{
	static const char *const words[] = {"three", "five!", "seven"};
	uint32_t i;

	for (i = 0; i < 3; i++)
		if (!send_ok(send_data(c, 3 + 2 * i, MR_FLAG_SYN, words[i], 2),
			     v))
			return false;
	for (i = 3; i-- > 0;)
		if (!send_ok(send_data(c, 3 + 2 * i, 0, words[i] + 2, 3), v) ||
		    !send_ok(send_data(c, 3 + 2 * i, MR_FLAG_FIN, NULL, 0), v))
			return false;
	for (i = 0; i < 3; i++)
		if (!check_echo(c, 3 + 2 * i, words[i], 5, true, v))
			return false;
	return true;
}

static bool rule_syn_wrong_parity(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 4, MR_FLAG_SYN, "even", 4), v) &&
	       check_fatal(c, MUXRING_PROTOCOL_ERROR, v);
}

static bool rule_goaway_last_stream_id(struct conn *c, struct verdict *v)
{
	if (!send_ok(send_data(c, 3, MR_FLAG_SYN, "a", 1), v) ||
	    !send_ok(send_data(c, 7, MR_FLAG_SYN, "b", 1), v) ||
	    !check_echo(c, 3, "a", 1, false, v) ||
	    !check_echo(c, 7, "b", 1, false, v) ||
	    !send_ok(send_data(c, 6, MR_FLAG_SYN, "c", 1), v) ||
	    !check_fatal(c, MUXRING_PROTOCOL_ERROR, v))
		return false;
	if (c->goaway_last != 7)
		return failf(v, "GOAWAY named last stream %u, but the highest "
			     "we opened was 7", c->goaway_last);
	return true;
}

static bool rule_reserved_bit_masked(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 0x80000003u, MR_FLAG_SYN, "masked", 6), v) &&
	       send_ok(send_data(c, 3, MR_FLAG_FIN, NULL, 0), v) &&
	       check_echo(c, 3, "masked", 6, true, v);
}

static bool rule_fin_separate_frame(struct conn *c, struct verdict *v)
{
	/* The Go reference always sends FIN as its own empty DATA frame. */
	return send_ok(send_data(c, 3, MR_FLAG_SYN, "go", 2), v) &&
	       check_echo(c, 3, "go", 2, false, v) &&
	       send_ok(send_data(c, 3, 0, "lang", 4), v) &&
	       send_ok(send_data(c, 3, MR_FLAG_FIN, NULL, 0), v) &&
	       check_echo(c, 3, "golang", 6, true, v);
}

static bool expect_rst(struct conn *c, uint32_t id, uint32_t code,
		       struct verdict *v)
{
	char state[192];

	conn_wait(c, has_rst, id);
	if (!peer_sane(c, v))
		return false;
	if (!c->st[id].rst)
		return failf(v, "expected RST %s on stream %u, but %s",
			     muxring_code_name(code), id,
			     session_state(c, state, sizeof(state)));
	if (c->st[id].rst_code != code)
		return failf(v, "stream %u was reset with %s, not %s", id,
			     muxring_code_name(c->st[id].rst_code),
			     muxring_code_name(code));
	return true;
}

static bool rule_data_unknown_stream(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 9, 0, "nobody", 6), v) &&
	       expect_rst(c, 9, MUXRING_STREAM_CLOSED, v) &&
	       check_alive(c, 11, v);
}

static bool rule_data_after_close(struct conn *c, struct verdict *v)
{
	return rule_stream_echo(c, v) &&
	       send_ok(send_data(c, 3, 0, "late", 4), v) &&
	       expect_rst(c, 3, MUXRING_STREAM_CLOSED, v) &&
	       check_alive(c, 5, v);
}

static bool rule_empty_fin_unknown_ignored(struct conn *c, struct verdict *v)
{
	if (!send_ok(send_data(c, 9, MR_FLAG_FIN, NULL, 0), v) ||
	    !check_alive(c, 11, v))
		return false;
	conn_linger(c, QUIET_MS);
	if (c->st[9].rst)
		return failf(v, "an empty FIN on an unknown stream was answered "
			     "with RST %s", muxring_code_name(c->st[9].rst_code));
	return peer_sane(c, v);
}

static bool rule_rst_unknown_ignored(struct conn *c, struct verdict *v)
{
	unsigned i;

	/* Ten, as the Go reference sends one RST per stray DATA frame. */
	for (i = 0; i < 10; i++)
		if (!send_ok(send_word(c, MR_FRAME_RST, 13,
				       MUXRING_STREAM_CLOSED), v))
			return false;
	if (!check_alive(c, 15, v))
		return false;
	if (c->st[13].rst || c->st[13].len)
		return failf(v, "the peer answered an RST for an unknown "
			     "stream");
	return true;
}

static bool rule_rst_closes_stream(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 3, MR_FLAG_SYN, "abc", 3), v) &&
	       check_echo(c, 3, "abc", 3, false, v) &&
	       send_ok(send_word(c, MR_FRAME_RST, 3, MUXRING_STREAM_CANCELLED),
		       v) &&
	       check_alive(c, 5, v) &&
	       send_ok(send_data(c, 3, 0, "more", 4), v) &&
	       expect_rst(c, 3, MUXRING_STREAM_CLOSED, v);
}

/* Fills our receive window on stream 3: 256 KiB sent, echoed. */
static bool fill_window(struct conn *c, uint8_t *pattern, struct verdict *v)
{
	size_t off;

	for (off = 0; off < WINDOW; off += 16384)
		if (!send_ok(send_data(c, 3, off ? 0 : MR_FLAG_SYN,
				       pattern + off, 16384), v))
			return false;
	return check_echo(c, 3, pattern, WINDOW, false, v);
}

static uint8_t *make_pattern(size_t len)
{
	uint8_t *p = malloc(len);
	size_t i;

	for (i = 0; p && i < len; i++)
		p[i] = (uint8_t)(i * 7 + (i >> 12));
	return p;
}

static bool rule_window_respected(struct conn *c, struct verdict *v)
{
	uint8_t *pattern = make_pattern(WINDOW + 65536);
	uint32_t more;
	bool ok = false;

	if (!pattern)
		return failf(v, "out of memory");
	if (!fill_window(c, pattern, v))
		goto out;
	/* The peer granted window back for what it consumed; more goes to
	 * it, but our window towards it is spent: nothing may come back
	 * until we grant some. */
	if (!conn_wait(c, has_wndinc, 3)) {
		failf(v, "no WNDINC after 256 KiB were consumed and echoed");
		goto out;
	}
	more = c->st[3].wndinc < 65536 ? (uint32_t)c->st[3].wndinc : 65536;
	if (!send_ok(send_data(c, 3, 0, pattern + WINDOW, more), v))
		goto out;
	conn_linger(c, QUIET_MS);
	if (c->st[3].len > WINDOW) {
		failf(v, "the peer sent %zu bytes on stream 3 with a window of "
		      "%u", c->st[3].len, WINDOW);
		goto out;
	}
	ok = send_ok(send_word(c, MR_FRAME_WNDINC, 3, more), v) &&
	     check_echo(c, 3, pattern, WINDOW + more, false, v);
out:
	free(pattern);
	return ok;
}

static bool rule_wndinc_on_consume(struct conn *c, struct verdict *v)
{
	uint8_t *pattern = make_pattern(WINDOW);
	bool ok;

	if (!pattern)
		return failf(v, "out of memory");
	ok = fill_window(c, pattern, v);
	free(pattern);
	if (!ok)
		return false;
	if (!conn_wait(c, has_wndinc, 3))
		return failf(v, "no WNDINC for 256 KiB consumed: a sender that "
			     "waits for window (as the Go reference does) "
			     "would stall");
	return peer_sane(c, v);
}

static bool rule_window_overflow(struct conn *c, struct verdict *v)
{
	uint8_t *big = calloc(1, WINDOW + 1);
	bool ok;

	if (!big)
		return failf(v, "out of memory");
	ok = send_ok(send_data(c, 3, MR_FLAG_SYN, big, WINDOW + 1), v) &&
	     expect_rst(c, 3, MUXRING_FLOW_CONTROL_ERROR, v) &&
	     check_alive(c, 5, v);
	free(big);
	return ok;
}

static bool rule_big_frame_within_window(struct conn *c, struct verdict *v)
{
	uint8_t *pattern = make_pattern(200000);
	bool ok;

	if (!pattern)
		return failf(v, "out of memory");
	ok = send_ok(send_data(c, 3, MR_FLAG_SYN, pattern, 200000), v) &&
	     send_ok(send_data(c, 3, MR_FLAG_FIN, NULL, 0), v) &&
	     check_echo(c, 3, pattern, 200000, true, v);
	free(pattern);
	return ok;
}

static bool rule_wndinc_zero(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 3, MR_FLAG_SYN, "a", 1), v) &&
	       send_ok(send_word(c, MR_FRAME_WNDINC, 3, 0), v) &&
	       check_fatal(c, MUXRING_PROTOCOL_ERROR, v);
}

static bool rule_wndinc_reserved_bit(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 3, MR_FLAG_SYN, "a", 1), v) &&
	       send_ok(send_word(c, MR_FRAME_WNDINC, 3, 0x80000000u | 4096), v) &&
	       send_ok(send_data(c, 3, MR_FLAG_FIN, NULL, 0), v) &&
	       check_echo(c, 3, "a", 1, true, v) && check_alive(c, 5, v);
}

static bool rule_flags_ignored(struct conn *c, struct verdict *v)
{
	uint8_t b[4];

	mr_put_be32(b, 4096);
	return send_ok(send_data(c, 3, MR_FLAG_SYN, "f", 1), v) &&
	       send_ok(send_frame(c, MR_FRAME_WNDINC, 0xF, 3, b, 4), v) &&
	       send_ok(send_data(c, 3, MR_FLAG_FIN, NULL, 0), v) &&
	       check_echo(c, 3, "f", 1, true, v) && check_alive(c, 5, v);
}

static bool rule_wndinc_stream_zero(struct conn *c, struct verdict *v)
{
	return send_ok(send_word(c, MR_FRAME_WNDINC, 0, 1024), v) &&
	       check_fatal(c, MUXRING_PROTOCOL_ERROR, v);
}

static bool rule_data_stream_zero(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 0, 0, "zero", 4), v) &&
	       check_fatal(c, MUXRING_PROTOCOL_ERROR, v);
}

static bool rule_rst_stream_zero(struct conn *c, struct verdict *v)
{
	return send_ok(send_word(c, MR_FRAME_RST, 0, MUXRING_STREAM_CLOSED),
		       v) &&
	       check_fatal(c, MUXRING_PROTOCOL_ERROR, v);
}

static bool rule_frame_size_rst(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 3, MR_FLAG_SYN, "a", 1), v) &&
	       send_ok(send_frame(c, MR_FRAME_RST, 0, 3, "\0\0\0", 3), v) &&
	       check_fatal(c, MUXRING_FRAME_SIZE_ERROR, v);
}

static bool rule_frame_size_wndinc(struct conn *c, struct verdict *v)
{
	return send_ok(send_data(c, 3, MR_FLAG_SYN, "a", 1), v) &&
	       send_ok(send_frame(c, MR_FRAME_WNDINC, 0, 3, "\0\0\x10\0\0", 5),
		       v) &&
	       check_fatal(c, MUXRING_FRAME_SIZE_ERROR, v);
}

static bool rule_frame_size_goaway(struct conn *c, struct verdict *v)
{
	return send_ok(send_frame(c, MR_FRAME_GOAWAY, 0, 0, "\0\0\0\0", 4), v) &&
	       check_fatal(c, MUXRING_FRAME_SIZE_ERROR, v);
}

static bool rule_goaway_nonzero_stream(struct conn *c, struct verdict *v)
{
	static const uint8_t body[8] = {0};

	return send_ok(send_frame(c, MR_FRAME_GOAWAY, 0, 5, body, 8), v) &&
	       check_fatal(c, MUXRING_PROTOCOL_ERROR, v);
}

static bool rule_unknown_frames_skipped(struct conn *c, struct verdict *v)
{
	static uint8_t junk[300];
	uint8_t type;

	memset(junk, 0xA5, sizeof(junk));
	if (!send_ok(send_data(c, 3, MR_FLAG_SYN, "un", 2), v))
		return false;
	for (type = 0x4; type <= 0xF; type++)
		if (!send_ok(send_frame(c, type, type & 0xF, type == 0xF ? 0 : 3,
					junk, (uint32_t)(type * 23 % 301)), v))
			return false;
	return send_ok(send_data(c, 3, MR_FLAG_FIN, "known", 5), v) &&
	       check_echo(c, 3, "unknown", 7, true, v);
}

static bool rule_backlog_burst(struct conn *c, struct verdict *v)
{
	uint32_t i, refused = 0;
	uint8_t word[4];

	for (i = 0; i < BURST_STREAMS; i++) {
		mr_put_be32(word, i);
		if (!send_ok(send_data(c, 3 + 2 * i, MR_FLAG_SYN, word, 4), v))
			return false;
	}
	for (i = 0; i < BURST_STREAMS; i++)
		if (!send_ok(send_data(c, 3 + 2 * i, MR_FLAG_FIN, NULL, 0), v))
			return false;
	conn_wait(c, all_finished, BURST_STREAMS);
	if (!peer_sane(c, v))
		return false;
	for (i = 0; i < BURST_STREAMS; i++) {
		struct peer_stream *s = &c->st[3 + 2 * i];

		mr_put_be32(word, i);
		if (s->rst && (s->rst_code == MUXRING_ACCEPT_QUEUE_FULL ||
			       s->rst_code == MUXRING_STREAM_REFUSED)) {
			refused++;
			continue;
		}
		if (s->rst)
			return failf(v, "stream %u of a burst of %u was reset "
				     "with %s (AcceptQueueFull or "
				     "StreamRefused are the refusals)",
				     3 + 2 * i, BURST_STREAMS,
				     muxring_code_name(s->rst_code));
		if (!s->fin || s->len != 4 || memcmp(s->data, word, 4))
			return failf(v, "stream %u of a burst of %u was neither "
				     "echoed nor refused", 3 + 2 * i,
				     BURST_STREAMS);
	}
	if (refused == BURST_STREAMS)
		return failf(v, "every stream of the burst was refused");
	return check_alive(c, 3 + 2 * BURST_STREAMS, v);
}

static bool rule_goaway_streams_go_on(struct conn *c, struct verdict *v)
{
	if (!send_ok(send_data(c, 3, MR_FLAG_SYN, "one ", 4), v) ||
	    !check_echo(c, 3, "one ", 4, false, v) ||
	    !send_ok(send_goaway(c, 0, MUXRING_NO_ERROR, "draining"), v) ||
	    /* The 8 bytes a Go reader takes past a GOAWAY: an empty frame of
	     * an unknown type, which a correct parser skips. */
	    !send_ok(send_frame(c, 0xF, 0, 0, NULL, 0), v) ||
	    !send_ok(send_data(c, 3, 0, "two", 3), v) ||
	    !send_ok(send_data(c, 3, MR_FLAG_FIN, NULL, 0), v))
		return false;
	return check_echo(c, 3, "one two", 7, true, v);
}

static bool rule_eof_closes(struct conn *c, struct verdict *v)
{
	if (!send_ok(send_data(c, 3, MR_FLAG_SYN, "bye", 3), v) ||
	    !check_echo(c, 3, "bye", 3, false, v))
		return false;
	shutdown(c->fd, SHUT_WR);
	conn_wait(c, has_goaway_and_eof, 0);
	if (!c->eof)
		return failf(v, "the peer did not close the connection after "
			     "ours ended");
	return peer_sane(c, v);
}

struct rule {
	const char *name;
	bool (*run)(struct conn *c, struct verdict *v);
	const char *what;
};

static const struct rule rules[] = {
	{"stream-echo", rule_stream_echo,
	 "SYN with data opens a stream; FIN on the last DATA; echo and FIN come back without SYN"},
	{"syn-empty-frame", rule_syn_empty_frame,
	 "a stream opened by an empty DATA frame with SYN (Go compatibility)"},
	{"fin-separate-frame", rule_fin_separate_frame,
	 "FIN as its own empty DATA frame, as the Go reference sends it"},
	{"streams-independent", rule_streams_independent,
	 "three streams interleaved, each echoed on its own id"},
	{"reserved-bit-masked", rule_reserved_bit_masked,
	 "the reserved bit of the stream id is ignored"},
	{"syn-wrong-parity", rule_syn_wrong_parity,
	 "a SYN with the receiver's own parity (even, from a client) is GOAWAY ProtocolError"},
	{"goaway-last-stream-id", rule_goaway_last_stream_id,
	 "the GOAWAY of a fatal error names the highest stream id we opened"},
	{"data-unknown-stream", rule_data_unknown_stream,
	 "DATA for a stream never opened: RST StreamClosed, the session goes on"},
	{"data-after-close", rule_data_after_close,
	 "DATA after FIN went both ways: RST StreamClosed, the session goes on"},
	{"empty-fin-unknown-ignored", rule_empty_fin_unknown_ignored,
	 "an empty FIN for an unknown stream is ignored silently"},
	{"rst-unknown-ignored", rule_rst_unknown_ignored,
	 "ten RSTs for an unknown stream (as Go sends them) are ignored"},
	{"rst-closes-stream", rule_rst_closes_stream,
	 "after our RST the stream is gone: later DATA gets RST StreamClosed"},
	{"window-respected", rule_window_respected,
	 "the peer sends at most 256 KiB before our WNDINC, and goes on after it"},
	{"wndinc-on-consume", rule_wndinc_on_consume,
	 "the peer grants WNDINC for data it consumed"},
	{"window-overflow", rule_window_overflow,
	 "a DATA frame beyond the 256 KiB window: RST FlowControlError, the session goes on"},
	{"big-frame-within-window", rule_big_frame_within_window,
	 "one 200,000-byte DATA frame (within the window) is accepted"},
	{"wndinc-zero", rule_wndinc_zero,
	 "WNDINC with increment 0 is GOAWAY ProtocolError"},
	{"wndinc-reserved-bit", rule_wndinc_reserved_bit,
	 "the top bit of a WNDINC increment is masked off"},
	{"flags-ignored", rule_flags_ignored,
	 "flags on a frame other than DATA are ignored"},
	{"wndinc-stream-zero", rule_wndinc_stream_zero,
	 "WNDINC on stream 0 is GOAWAY ProtocolError"},
	{"data-stream-zero", rule_data_stream_zero,
	 "DATA on stream 0 is GOAWAY ProtocolError"},
	{"rst-stream-zero", rule_rst_stream_zero,
	 "RST on stream 0 is GOAWAY ProtocolError"},
	{"frame-size-rst", rule_frame_size_rst,
	 "RST whose length is not 4 is GOAWAY FrameSizeError"},
	{"frame-size-wndinc", rule_frame_size_wndinc,
	 "WNDINC whose length is not 4 is GOAWAY FrameSizeError"},
	{"frame-size-goaway", rule_frame_size_goaway,
	 "GOAWAY shorter than 8 bytes is GOAWAY FrameSizeError"},
	{"goaway-nonzero-stream", rule_goaway_nonzero_stream,
	 "GOAWAY on a non-zero stream id is GOAWAY ProtocolError"},
	{"unknown-frames-skipped", rule_unknown_frames_skipped,
	 "frames of types 0x4-0xF, with bodies, are skipped whole inside a stream's exchange"},
	{"backlog-burst", rule_backlog_burst,
	 "200 streams opened at once (above the default backlog of 128): each echoed or refused with RST AcceptQueueFull/StreamRefused"},
	{"goaway-streams-go-on", rule_goaway_streams_go_on,
	 "after our GOAWAY (and the empty unknown frame that keeps Go in sync) open streams go on"},
	{"eof-closes", rule_eof_closes,
	 "when our side of the transport ends, the peer closes its side"},
};

#define RULE_COUNT (sizeof(rules) / sizeof(rules[0]))

/* ---------------------------------------------------------------------- */
/* Running and reporting                                                   */
/* ---------------------------------------------------------------------- */

struct options {
	const char *host;
	char port[CLI_PORT_LEN]; /* in decimal */
	int timeout_ms;
	bool json;
	bool only[RULE_COUNT];
	bool any_only;
};

static bool run_rule(const struct options *o, const struct rule *r,
		     struct verdict *v)
{
	int err = 0;
	struct conn *c = conn_open(o->host, o->port, o->timeout_ms, &err);
	bool pass;

	memset(v, 0, sizeof(*v));
	if (!c)
		return failf(v, "cannot connect: %s", strerror(-err));
	pass = r->run(c, v);
	if (pass && !v->why[0])
		pass = peer_sane(c, v);
	conn_close(c);
	return pass && !v->why[0];
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static int run_all(const struct options *o)
{
	unsigned i, passed = 0, failed = 0;
	struct verdict v;

	if (o->json)
		printf("{\"rules\":[");
	for (i = 0; i < RULE_COUNT; i++) {
		bool pass;

		if (o->any_only && !o->only[i])
			continue;
		pass = run_rule(o, &rules[i], &v);
		passed += pass;
		failed += !pass;
		if (o->json) {
			printf("%s{\"rule\":", passed + failed > 1 ? "," : "");
			json_string(rules[i].name);
			printf(",\"pass\":%s,\"why\":", pass ? "true" : "false");
			json_string(v.why);
			putchar('}');
		} else if (pass) {
			printf("PASS %s\n", rules[i].name);
		} else {
			printf("FAIL %s: %s\n", rules[i].name, v.why);
		}
		fflush(stdout);
	}
	if (o->json)
		printf("],\"passed\":%u,\"failed\":%u}\n", passed, failed);
	else
		printf("%u passed, %u failed\n", passed, failed);
	return failed ? STATUS_FAILED : STATUS_OK;
}

static int select_rule(struct options *o, const char *name)
{
	unsigned i;

	for (i = 0; i < RULE_COUNT; i++) {
		if (!strcmp(rules[i].name, name)) {
			o->only[i] = o->any_only = true;
			return 0;
		}
	}
	return cli_usage_error("--rule: no rule named '%s' (--list shows "
			       "them)", name);
}

static void list_rules(void)
{
	unsigned i;

	for (i = 0; i < RULE_COUNT; i++)
		printf("%-26s %s\n", rules[i].name, rules[i].what);
}

enum { OPT_JSON = 0x100, OPT_TIMEOUT, OPT_RULE, OPT_LIST };

/* Returns 0 to run, -1 after -h or --list (exit 0), or STATUS_USAGE. */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, OPT_JSON},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"rule", required_argument, NULL, OPT_RULE},
		{"list", no_argument, NULL, OPT_LIST},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = DEFAULT_TIMEOUT_MS;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		case OPT_LIST:
			list_rules();
			return -1;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_TIMEOUT:
			if (!cli_number_option("--timeout", optarg, 1, 600000, &v))
				return STATUS_USAGE;
			o->timeout_ms = (int)v;
			break;
		case OPT_RULE:
			if (select_rule(o, optarg))
				return STATUS_USAGE;
			break;
		case ':':
			return cli_usage_error("option %s needs an argument",
					       argv[optind - 1]);
		default:
			return cli_usage_error("unknown option %s",
					       argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("need HOST PORT");
	o->host = argv[optind];
	if (!cli_parse_port(argv[optind + 1], false, o->port))
		return cli_usage_error("bad port '%s'", argv[optind + 1]);
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	int ret, fd;

	cli_set_program("muxconform");
	ret = parse_options(argc, argv, &o);
	if (ret)
		return ret < 0 ? STATUS_OK : ret;
	fd = dial(o.host, o.port, o.timeout_ms);
	if (fd < 0) {
		fprintf(stderr, "muxconform: cannot connect to %s port %s: %s\n",
			o.host, o.port, strerror(-fd));
		return STATUS_CONNECT;
	}
	close(fd);
	return run_all(&o);
}
