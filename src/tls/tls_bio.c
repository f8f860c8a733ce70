/*
 * tls_bio.c - the BIO between an SSL and the loop's memory.
 *
 * The main idea: OpenSSL reads ciphertext straight from the receive-ring
 * buffer the loop fed (a cursor, no copy), and writes the records of the
 * engine's frames straight into the loop's send block (a window, no copy);
 * only what lies outside those moments goes through a memory BIO of its
 * own (a spill): input left unread when the ring buffer goes back, and
 * output written when no window is set (handshake, alerts, close_notify)
 * or beyond its room. With plain memory BIOs each direction would cost two
 * more copies of every byte.
 *
 * The read side also follows the record stream OpenSSL takes (5-byte
 * headers, their lengths): the kernel can take the receiving over only at
 * a record boundary, knowing how many records came before (ktls.c).
 */
#include "tls/tls.h"

#include <pthread.h>
#include <string.h>

static pthread_once_t method_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *method;

/* Follows the record headers in n more bytes of the stream. */
static void track_records(struct mr_tls_io *io, const uint8_t *p, size_t n)
{
	while (n) {
		size_t k;

		if (io->rec_head_have < sizeof(io->rec_head)) {
			io->rec_head[io->rec_head_have++] = *p++;
			n--;
			if (io->rec_head_have < sizeof(io->rec_head))
				continue;
			io->rec_body_left = (size_t)io->rec_head[3] << 8 |
					    io->rec_head[4];
		} else {
			k = n < io->rec_body_left ? n : io->rec_body_left;
			io->rec_body_left -= k;
			p += k;
			n -= k;
		}
		if (!io->rec_body_left) {
			io->records++;
			io->rec_head_have = 0;
		}
	}
}

size_t mr_tls_io_record_rest(const struct mr_tls_io *io)
{
	if (!io->rec_head_have)
		return 0;
	if (io->rec_head_have < sizeof(io->rec_head))
		return sizeof(io->rec_head) - io->rec_head_have;
	return io->rec_body_left;
}

static int io_read(BIO *b, char *out, size_t len, size_t *done)
{
	struct mr_tls_io *io = BIO_get_data(b);
	size_t n = 0;
	int r;

	BIO_clear_retry_flags(b);
	if (BIO_ctrl_pending(io->in_spill)) {
		r = BIO_read(io->in_spill, out, len > INT32_MAX ? INT32_MAX
								: (int)len);
		n = r > 0 ? (size_t)r : 0;
	}
	if (n < len && io->in_left) {
		size_t k = len - n < io->in_left ? len - n : io->in_left;

		memcpy(out + n, io->in, k);
		io->in += k;
		io->in_left -= k;
		n += k;
	}
	*done = n;
	track_records(io, (const uint8_t *)out, n);
	if (!n) {
		BIO_set_retry_read(b);
		return 0;
	}
	return 1;
}

static int io_write(BIO *b, const char *data, size_t len, size_t *done)
{
	struct mr_tls_io *io = BIO_get_data(b);
	size_t k = io->out_cap - io->out_len;

	BIO_clear_retry_flags(b);
	if (k > len)
		k = len;
	if (k) {
		memcpy(io->out + io->out_len, data, k);
		io->out_len += k;
	}
	if (k < len && BIO_write(io->out_spill, data + k, (int)(len - k)) !=
			       (int)(len - k))
		return 0;
	*done = len;
	return 1;
}

static long io_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct mr_tls_io *io = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return (long)(BIO_ctrl_pending(io->in_spill) + io->in_left);
	case BIO_CTRL_WPENDING:
		return (long)BIO_ctrl_pending(io->out_spill);
	default:
		return 0;
	}
}

static int io_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void make_method(void)
{
	method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
			      "muxring loop memory");
	if (method &&
	    (!BIO_meth_set_read_ex(method, io_read) ||
	     !BIO_meth_set_write_ex(method, io_write) ||
	     !BIO_meth_set_ctrl(method, io_ctrl) ||
	     !BIO_meth_set_create(method, io_create))) {
		BIO_meth_free(method);
		method = NULL;
	}
}

BIO *mr_tls_io_bio(struct mr_tls_io *io)
{
	BIO *b;

	pthread_once(&method_once, make_method);
	if (!method)
		return NULL;
	io->in_spill = BIO_new(BIO_s_mem());
	io->out_spill = BIO_new(BIO_s_mem());
	b = BIO_new(method);
	if (!b || !io->in_spill || !io->out_spill) {
		BIO_free(b);
		mr_tls_io_free(io);
		return NULL;
	}
	BIO_set_mem_eof_return(io->in_spill, -1);
	BIO_set_data(b, io);
	return b;
}

void mr_tls_io_free(struct mr_tls_io *io)
{
	BIO_free(io->in_spill);
	BIO_free(io->out_spill);
	io->in_spill = io->out_spill = NULL;
}

void mr_tls_io_keep_input(struct mr_tls_io *io)
{
	if (io->in_left)
		BIO_write(io->in_spill, io->in, (int)io->in_left);
	io->in = NULL;
	io->in_left = 0;
}
