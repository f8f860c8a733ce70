/*
 * raw_peer.c - a hand-driven muxado peer over a plain socket (raw_peer.h).
 *
 * Parsing is a small resumable state machine of its own, not the engine's:
 * a hostile test must not trust the code it tests to read the replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raw_peer.h"
#include "wire/frame.h"
#include "engine/session.h"

void rp_init(struct rp *p, int fd)
{
	unsigned i;

	memset(p, 0, sizeof(*p));
	p->fd = fd;
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
	for (i = 0; i < RP_MAX_STREAMS; i++)
		p->credit[i] = MR_INITIAL_WINDOW;
}

void rp_free(struct rp *p)
{
	if (p->fd >= 0)
		close(p->fd);
	free(p->out);
	p->out = NULL;
	p->fd = -1;
}

void rp_put(struct rp *p, const void *data, size_t len)
{
	if (p->out_off && p->out_off == p->out_len)
		p->out_off = p->out_len = 0;
	if (p->out_cap - p->out_len < len) {
		size_t cap = p->out_cap ? p->out_cap : 4096;

		while (cap - p->out_len < len)
			cap *= 2;
		p->out = realloc(p->out, cap);
		assert_non_null(p->out);
		p->out_cap = cap;
	}
	memcpy(p->out + p->out_len, data, len);
	p->out_len += len;
}

static void put_header(struct rp *p, uint32_t len, uint8_t type,
		       uint8_t flags, uint32_t id)
{
	struct mr_frame_header h = {
		.length = len, .type = type, .flags = flags, .stream_id = id,
	};
	uint8_t raw[MR_FRAME_HEADER_LEN];

	mr_frame_header_pack(raw, &h);
	rp_put(p, raw, sizeof(raw));
}

void rp_data(struct rp *p, uint32_t id, uint8_t flags, const void *payload,
	     size_t len)
{
	unsigned i = (id - 3) / 2;

	put_header(p, (uint32_t)len, MR_FRAME_DATA, flags, id);
	rp_put(p, payload, len);
	if (i < RP_MAX_STREAMS) {
		assert_true(p->credit[i] >= len); /* the test keeps windows */
		p->credit[i] -= len;
	}
}

void rp_wndinc(struct rp *p, uint32_t id, uint32_t increment)
{
	uint8_t word[4];

	put_header(p, 4, MR_FRAME_WNDINC, 0, id);
	mr_put_be32(word, increment);
	rp_put(p, word, 4);
}

size_t rp_flush(struct rp *p)
{
	while (p->out_off < p->out_len) {
		ssize_t n = send(p->fd, p->out + p->out_off,
				 p->out_len - p->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			assert_true(errno == EAGAIN || errno == EINTR);
			break;
		}
		p->out_off += (size_t)n;
		p->written += (uint64_t)n;
	}
	return p->out_len - p->out_off;
}

static void frame_done(struct rp *p)
{
	unsigned i = (p->stream_id - 3) / 2;

	if (p->type == MR_FRAME_WNDINC) {
		p->wndinc_frames++;
		if (p->stream_id >= 3 && i < RP_MAX_STREAMS)
			p->credit[i] += mr_get_be32(p->word) & MR_WNDINC_MASK;
	} else if (p->type == MR_FRAME_RST) {
		p->rst_frames++;
	} else if (p->type == MR_FRAME_GOAWAY) {
		p->goaway_frames++;
	}
	p->hdr_have = p->word_have = 0;
}

/* Takes bytes of the current frame's body; returns how many. */
static size_t take_body(struct rp *p, const uint8_t *b, size_t n)
{
	size_t take = n < p->body_left ? n : p->body_left;
	unsigned i = (p->stream_id - 3) / 2;
	size_t k;

	for (k = 0; k < take && p->word_have < 4; k++)
		p->word[p->word_have++] = b[k];
	if (p->type == MR_FRAME_DATA && p->stream_id >= 3 &&
	    i < RP_MAX_STREAMS)
		p->data_in[i] += take;
	p->body_left -= (uint32_t)take;
	if (!p->body_left)
		frame_done(p);
	return take;
}

static void parse(struct rp *p, const uint8_t *b, size_t n)
{
	while (n) {
		size_t take;

		if (p->hdr_have < MR_FRAME_HEADER_LEN) {
			struct mr_frame_header h;

			p->hdr[p->hdr_have++] = *b++;
			n--;
			if (p->hdr_have < MR_FRAME_HEADER_LEN)
				continue;
			mr_frame_header_parse(p->hdr, &h);
			p->type = h.type;
			p->stream_id = h.stream_id;
			p->body_left = h.length;
			if (!p->body_left)
				frame_done(p);
			continue;
		}
		take = take_body(p, b, n);
		b += take;
		n -= take;
	}
}

size_t rp_read(struct rp *p)
{
	uint8_t buf[65536];
	size_t total = 0;

	for (;;) {
		ssize_t n = recv(p->fd, buf, sizeof(buf), 0);

		if (n == 0)
			p->eof = true;
		if (n <= 0)
			break;
		parse(p, buf, (size_t)n);
		total += (size_t)n;
	}
	return total;
}

uint64_t rp_rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lu %lu", &size, &resident), 2);
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t rp_raise_nofile(uint64_t want)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	return rl.rlim_cur;
}
