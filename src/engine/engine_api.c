/*
 * engine_api.c - the public sans-I/O engine (include/muxring_engine.h).
 *
 * The main idea: the public handles are the engine's own objects, cast.
 * struct muxring_engine is struct mr_session, struct muxring_stream is
 * struct mr_stream, struct muxring_engine_buf is struct mr_buf. So the
 * public calls cost a function call and no wrapper, and the io_uring driver,
 * which is built on these same calls, shares one object per session with
 * nothing to keep in sync. What this file adds is the public vocabulary:
 * options as struct muxring_session_opts, events as struct muxring_cqe
 * entries, deadline bits as MUXRING_DEADLINE_*.
 *
 * The session's `user` pointer is not part of the public engine: the
 * io_uring driver keeps its own session there (so an engine created here
 * has none, and the loop's stream calls refuse its streams).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "muxring_engine.h"
#include "engine/session_internal.h"

static inline struct mr_session *sess_of(struct muxring_engine *engine)
{
	return mr_session_of_engine(engine);
}

static inline const struct mr_session *
csess_of(const struct muxring_engine *engine)
{
	return (const struct mr_session *)engine;
}

static inline struct mr_stream *st(struct muxring_stream *stream)
{
	return (struct mr_stream *)stream;
}

static inline const struct mr_stream *cst(const struct muxring_stream *stream)
{
	return (const struct mr_stream *)stream;
}

static inline struct mr_buf *bf(struct muxring_engine_buf *buf)
{
	return (struct mr_buf *)buf;
}

/* Whether len bytes at p lie inside buf (compared as addresses: p may
 * point anywhere when the caller errs). */
static bool inside(struct muxring_engine_buf *buf, const void *p, size_t len)
{
	uintptr_t start = (uintptr_t)bf(buf)->data, at = (uintptr_t)p;

	return p && at >= start && at - start <= bf(buf)->cap &&
	       len <= bf(buf)->cap - (at - start);
}

/* ---- engine ------------------------------------------------------------ */

/* The flood budgets the options set (0 keeps a default). */
static void flood_from_opts(const struct muxring_session_opts *o,
			    struct mr_flood_limits *lim)
{
	if (o->wndinc_per_sec)
		lim->wndinc_per_sec = o->wndinc_per_sec;
	if (o->rst_per_sec)
		lim->rst_per_sec = o->rst_per_sec;
	if (o->churn_per_sec)
		lim->churn_per_sec = o->churn_per_sec;
	if (o->unknown_per_sec)
		lim->unknown_per_sec = o->unknown_per_sec;
	if (o->empty_data_per_sec)
		lim->empty_data_per_sec = o->empty_data_per_sec;
	if (o->closed_data_per_sec)
		lim->closed_data_per_sec = o->closed_data_per_sec;
	if (o->max_goaways)
		lim->max_goaways = o->max_goaways;
}

/* The engine's configuration from the public options; false when they
 * name something the engine cannot do. */
static bool config_from_opts(const struct muxring_session_opts *o,
			     struct mr_config *cfg)
{
	mr_config_default(cfg);
	if (!o)
		return true;
	if (o->window)
		cfg->window = o->window;
	if (o->accept_backlog)
		cfg->accept_backlog = o->accept_backlog;
	if (o->max_streams)
		cfg->max_streams = o->max_streams;
	if (o->max_frame_payload)
		cfg->max_frame_payload = o->max_frame_payload;
	cfg->typed = (o->flags & MUXRING_SESSION_TYPED) != 0;
	if (o->max_control_backlog)
		cfg->max_control_backlog = o->max_control_backlog;
	if (o->max_buffered)
		cfg->max_buffered = o->max_buffered == UINT64_MAX
					    ? 0
					    : o->max_buffered;
	flood_from_opts(o, &cfg->flood);
	return !(o->flags & ~MUXRING_SESSION_TYPED) &&
	       cfg->window >= MR_INITIAL_WINDOW &&
	       cfg->window <= MR_WNDINC_MASK &&
	       cfg->max_frame_payload <= MR_FRAME_MAX_LEN &&
	       cfg->max_control_backlog >= MR_CONTROL_FRAME_LEN;
}

int muxring_engine_create(struct muxring_engine **enginep,
			  enum muxring_role role,
			  const struct muxring_session_opts *opts)
{
	return muxring_engine_create_with_mem(enginep, role, opts, NULL);
}

int muxring_engine_create_with_mem(struct muxring_engine **enginep,
				   enum muxring_role role,
				   const struct muxring_session_opts *opts,
				   const struct muxring_mem *mem)
{
	struct mr_session *sess;
	struct mr_config cfg;

	if (!enginep || (role != MUXRING_CLIENT && role != MUXRING_SERVER) ||
	    !config_from_opts(opts, &cfg))
		return -EINVAL;
	if (mem)
		cfg.mem = mem;
	sess = mr_session_new(role == MUXRING_SERVER ? MR_ROLE_SERVER
						     : MR_ROLE_CLIENT, &cfg);
	if (!sess)
		return -ENOMEM;
	*enginep = mr_engine_of_session(sess);
	return 0;
}

void muxring_engine_destroy(struct muxring_engine *engine)
{
	if (engine)
		mr_session_free(sess_of(engine));
}

/* ---- bytes in and out ---------------------------------------------------- */

int muxring_engine_feed(struct muxring_engine *engine, const void *data,
			size_t len)
{
	if (!engine || (!data && len))
		return -EINVAL;
	/* MR_RECV_COPY never touches the buffer argument. */
	return mr_session_recv(sess_of(engine), NULL, data, len, MR_RECV_COPY);
}

int muxring_engine_feed_buf(struct muxring_engine *engine,
			    struct muxring_engine_buf *buf, const void *data,
			    size_t len)
{
	if (!engine || !buf || !inside(buf, data, len))
		return -EINVAL;
	return mr_session_recv(sess_of(engine), bf(buf), data, len, 0);
}

void muxring_engine_feed_end(struct muxring_engine *engine, int error)
{
	if (!mr_session_ended(sess_of(engine)))
		mr_session_recv_end(sess_of(engine), error);
}

size_t muxring_engine_send_iov(struct muxring_engine *engine,
			       struct iovec *iov, size_t max_iov,
			       size_t max_bytes)
{
	return mr_session_tx_iov(sess_of(engine), iov, max_iov, max_bytes);
}

void muxring_engine_sent(struct muxring_engine *engine, size_t sent)
{
	mr_session_tx_advance(sess_of(engine), sent);
}

bool muxring_engine_want_send(struct muxring_engine *engine)
{
	return mr_session_tx_pending(sess_of(engine));
}

bool muxring_engine_ended(const struct muxring_engine *engine)
{
	return mr_session_ended(csess_of(engine));
}

bool muxring_engine_done(const struct muxring_engine *engine)
{
	return mr_session_done(csess_of(engine));
}

/* ---- entries ----------------------------------------------------------- */

/* The peer's GOAWAY (code and debug text) on an entry. */
static void put_goaway(const struct mr_session *sess, struct muxring_cqe *cqe)
{
	const struct mr_session_result *r = mr_session_result(sess);

	cqe->flags |= MUXRING_CQE_F_REMOTE;
	cqe->code = r->remote_code;
	cqe->view.data = r->remote_debug;
	cqe->view.len = r->remote_debug ? r->remote_debug_len : 0;
}

/* The entry of one engine event; the fields its type does not use are 0. */
static void fill_entry(const struct mr_session *sess, const struct mr_event *ev,
		       struct muxring_cqe *cqe)
{
	memset(cqe, 0, sizeof(*cqe));
	cqe->stream = (struct muxring_stream *)ev->stream;
	if (ev->stream)
		cqe->user_data = (uint64_t)(uintptr_t)mr_stream_user(ev->stream);
	switch (ev->type) {
	case MR_EV_STREAM_ACCEPTED:
		cqe->type = MUXRING_CQE_STREAM_ACCEPTED;
		cqe->code = ev->stream_type;
		cqe->user_data = 0; /* the stream has none yet */
		break;
	case MR_EV_DATA:
		cqe->type = MUXRING_CQE_DATA;
		cqe->res = (int64_t)ev->view.len;
		cqe->view.data = ev->view.data;
		cqe->view.len = ev->view.len;
		cqe->view.priv_[0] = ev->view.stream;
		cqe->view.priv_[1] = ev->view.buf;
		break;
	case MR_EV_EOF:
		cqe->type = MUXRING_CQE_EOF;
		break;
	case MR_EV_WRITE_DONE:
		cqe->type = MUXRING_CQE_WRITE_DONE;
		cqe->res = ev->result;
		cqe->user_data = ev->user_data;
		break;
	case MR_EV_DEADLINE:
		cqe->type = MUXRING_CQE_DEADLINE;
		cqe->code = (uint32_t)ev->deadline;
		break;
	case MR_EV_STREAM_CLOSED:
		/* The entry keeps the event's stream reference until
		 * muxring_engine_cqe_done(). */
		cqe->type = MUXRING_CQE_STREAM_CLOSED;
		cqe->code = ev->code;
		cqe->res = ev->result;
		if (ev->close_reason == MR_CLOSE_PEER_RESET)
			cqe->flags |= MUXRING_CQE_F_REMOTE;
		break;
	case MR_EV_GOAWAY:
		cqe->type = MUXRING_CQE_GOAWAY;
		put_goaway(sess, cqe);
		cqe->code = ev->code;
		break;
	case MR_EV_HEARTBEAT:
		cqe->type = MUXRING_CQE_HEARTBEAT;
		cqe->res = ev->result;
		break;
	case MR_EV_HEARTBEAT_FAILED:
		cqe->type = MUXRING_CQE_HEARTBEAT_FAILED;
		cqe->res = -ETIMEDOUT;
		break;
	case MR_EV_SESSION_ENDED:
		cqe->type = MUXRING_CQE_SESSION_ENDED;
		cqe->res = mr_session_result(sess)->local_error;
		cqe->reason = mr_session_result(sess)->local_reason;
		if (mr_session_result(sess)->remote_goaway)
			put_goaway(sess, cqe);
		break;
	}
}

bool muxring_engine_poll(struct muxring_engine *engine,
			 struct muxring_cqe *cqe)
{
	struct mr_event ev;

	if (!mr_session_poll_event(sess_of(engine), &ev))
		return false;
	fill_entry(sess_of(engine), &ev, cqe);
	return true;
}

void mr_engine_ended_entry(struct muxring_engine *engine,
			   struct muxring_cqe *cqe)
{
	struct mr_event ev = {.type = MR_EV_SESSION_ENDED};

	fill_entry(sess_of(engine), &ev, cqe);
}

void muxring_engine_cqe_done(struct muxring_engine *engine,
			     struct muxring_cqe *cqe)
{
	struct mr_event ev;

	switch (cqe->type) {
	case MUXRING_CQE_STREAM_ACCEPTED:
		mr_session_accept_done(sess_of(engine));
		break;
	case MUXRING_CQE_STREAM_CLOSED:
		memset(&ev, 0, sizeof(ev));
		ev.type = MR_EV_STREAM_CLOSED;
		ev.stream = st(cqe->stream);
		mr_event_done(&ev);
		break;
	default:
		break;
	}
}

void muxring_engine_view_release(struct muxring_view *view)
{
	struct mr_view v;

	if (!view)
		return;
	if (view->priv_[0]) {
		v.stream = view->priv_[0];
		v.buf = view->priv_[1];
		v.data = view->data;
		v.len = view->len;
		mr_view_release(&v);
	}
	memset(view, 0, sizeof(*view));
}

/* ---- time ---------------------------------------------------------------- */

uint64_t muxring_engine_expire(struct muxring_engine *engine, uint64_t now)
{
	return mr_session_expire(sess_of(engine), now);
}

uint64_t muxring_engine_next_deadline(const struct muxring_engine *engine)
{
	return mr_session_next_deadline(csess_of(engine));
}

void muxring_engine_set_now(struct muxring_engine *engine, uint64_t now)
{
	mr_session_set_now(sess_of(engine), now);
}

/* ---- session ----------------------------------------------------------- */

int muxring_engine_goaway(struct muxring_engine *engine, uint32_t code,
			  const void *debug, size_t debug_len)
{
	if (!engine || (!debug && debug_len))
		return -EINVAL;
	return mr_session_goaway(sess_of(engine), code, debug, debug_len);
}

int muxring_engine_close(struct muxring_engine *engine, uint32_t code,
			 const void *debug, size_t debug_len)
{
	if (!engine || (!debug && debug_len))
		return -EINVAL;
	return mr_session_close(sess_of(engine), code, debug, debug_len);
}

int muxring_engine_heartbeat(struct muxring_engine *engine,
			     uint64_t interval_ns, uint64_t tolerance_ns,
			     uint64_t now, uint64_t seed)
{
	struct mr_session *sess = sess_of(engine);
	int err;

	if (mr_session_ended(sess))
		return MUXRING_ERR(MUXRING_SESSION_CLOSED);
	if (!tolerance_ns)
		return -EINVAL;
	mr_session_set_now(sess, now);
	err = mr_session_heartbeat_start(sess, interval_ns, tolerance_ns, seed);
	if (err == -EALREADY)
		err = mr_session_heartbeat_configure(sess, interval_ns,
						     tolerance_ns);
	return err;
}

int muxring_engine_heartbeat_beat(struct muxring_engine *engine)
{
	return mr_session_heartbeat_beat(sess_of(engine));
}

int muxring_engine_stats(const struct muxring_engine *engine,
			 struct muxring_stats *out)
{
	struct mr_session_stats es;

	mr_session_stats(csess_of(engine), &es);
	memset(out, 0, sizeof(*out));
	out->frames_in = es.frames_in;
	out->frames_out = es.frames_out;
	out->bytes_in = es.bytes_in;
	out->bytes_out = es.bytes_out;
	out->streams_opened = es.streams_opened;
	out->streams_accepted = es.streams_accepted;
	out->write_bytes_queued = es.write_bytes_queued;
	out->write_memory = es.write_memory;
	out->recv_view_bytes = es.rx_view_bytes;
	out->recv_view_bytes_max = es.rx_view_bytes_max;
	out->recv_copy_bytes = es.rx_copy_bytes;
	out->recv_copy_bytes_max = es.rx_copy_bytes_max;
	out->send_queued_bytes = es.tx_queued_bytes;
	out->buffered_bytes = es.rx_view_bytes + es.tx_queued_bytes;
	out->events_queued_max = es.events_queued_max;
	out->credit_stalls = es.credit_stalls;
	return 0;
}

/* ---- streams ----------------------------------------------------------- */

static int open_stream(struct muxring_engine *engine, uint32_t type,
		       uint64_t user_data, struct muxring_stream **streamp)
{
	struct mr_stream *stream;
	int err;

	if (!engine || !streamp)
		return -EINVAL;
	err = mr_session_open(sess_of(engine), type, &stream);
	if (err)
		return err;
	mr_stream_set_user(stream, (void *)(uintptr_t)user_data);
	*streamp = (struct muxring_stream *)stream;
	return 0;
}

int muxring_engine_stream_open(struct muxring_engine *engine,
			       uint64_t user_data,
			       struct muxring_stream **streamp)
{
	return open_stream(engine, 0, user_data, streamp);
}

int muxring_engine_stream_open_typed(struct muxring_engine *engine,
				     uint32_t stream_type, uint64_t user_data,
				     struct muxring_stream **streamp)
{
	if (engine && !sess_of(engine)->cfg.typed)
		return -EINVAL;
	return open_stream(engine, stream_type, user_data, streamp);
}

int muxring_engine_stream_write(struct muxring_stream *stream,
				const void *data, size_t len,
				uint64_t user_data)
{
	struct mr_buf *buf;
	int err;

	if (!stream || (!data && len))
		return -EINVAL;
	/* Small writes are packed with the stream's other waiting ones. */
	if (len <= MR_BATCH_WRITE_MAX)
		return mr_stream_write_copy(st(stream), data, len, user_data,
					    false);
	buf = mr_buf_copy(st(stream)->session->cfg.mem, data, len);
	if (!buf)
		return -ENOMEM;
	err = mr_stream_write(st(stream), buf, buf->data, len, user_data);
	mr_buf_unref(buf);
	return err;
}

int muxring_engine_stream_write_buf(struct muxring_stream *stream,
				    struct muxring_engine_buf *buf,
				    const void *data, size_t len,
				    uint64_t user_data)
{
	if (!stream || !buf || !inside(buf, data, len))
		return -EINVAL;
	return mr_stream_write(st(stream), bf(buf), data, len, user_data);
}

int muxring_engine_stream_close_write(struct muxring_stream *stream)
{
	return mr_stream_close_write(st(stream));
}

int muxring_engine_stream_close(struct muxring_stream *stream)
{
	return mr_stream_close(st(stream));
}

int muxring_engine_stream_reset(struct muxring_stream *stream, uint32_t code)
{
	return mr_stream_reset(st(stream), code);
}

int muxring_engine_stream_set_deadline(struct muxring_stream *stream,
				       unsigned which, uint64_t when_ns)
{
	if (!stream || !which ||
	    which & ~(MUXRING_DEADLINE_READ | MUXRING_DEADLINE_WRITE))
		return -EINVAL;
	/* The first deadline of a stream allocates its record. */
	if (which & MUXRING_DEADLINE_READ &&
	    mr_stream_set_deadline(st(stream), MR_DEADLINE_READ, when_ns))
		return -ENOMEM;
	if (which & MUXRING_DEADLINE_WRITE &&
	    mr_stream_set_deadline(st(stream), MR_DEADLINE_WRITE, when_ns))
		return -ENOMEM;
	return 0;
}

int muxring_engine_stream_window(const struct muxring_stream *stream,
				 struct muxring_engine_window *out)
{
	out->send = cst(stream)->send_window;
	out->recv = cst(stream)->recv_window;
	return 0;
}

uint32_t muxring_engine_stream_id(const struct muxring_stream *stream)
{
	return mr_stream_id(cst(stream));
}

void muxring_engine_stream_set_data(struct muxring_stream *stream,
				    uint64_t user_data)
{
	mr_stream_set_user(st(stream), (void *)(uintptr_t)user_data);
}

uint64_t muxring_engine_stream_data(const struct muxring_stream *stream)
{
	return (uint64_t)(uintptr_t)mr_stream_user(cst(stream));
}

/* ---- buffers ------------------------------------------------------------- */

/* A wrapped buffer: the header the engine knows, and the caller's release. */
struct wrapped_buf {
	struct mr_buf buf; /* first: the public handle points here */
	void (*release)(void *data, void *arg);
	void *arg;
};

static void release_wrapped(struct mr_buf *buf)
{
	struct wrapped_buf *w = (struct wrapped_buf *)buf;

	if (w->release)
		w->release(buf->data, w->arg);
	free(w);
}

struct muxring_engine_buf *muxring_engine_buf_alloc(size_t size)
{
	return (struct muxring_engine_buf *)mr_buf_new_heap(size);
}

struct muxring_engine_buf *
muxring_engine_buf_wrap(void *data, size_t size,
			void (*release)(void *data, void *arg), void *arg)
{
	struct wrapped_buf *w = malloc(sizeof(*w));

	if (!w)
		return NULL;
	w->buf = (struct mr_buf){
		.refs = 1, .data = data, .cap = size, .release = release_wrapped,
	};
	w->release = release;
	w->arg = arg;
	return (struct muxring_engine_buf *)&w->buf;
}

void *muxring_engine_buf_data(const struct muxring_engine_buf *buf)
{
	return ((const struct mr_buf *)buf)->data;
}

size_t muxring_engine_buf_size(const struct muxring_engine_buf *buf)
{
	return ((const struct mr_buf *)buf)->cap;
}

void muxring_engine_buf_ref(struct muxring_engine_buf *buf)
{
	mr_buf_ref(bf(buf));
}

void muxring_engine_buf_unref(struct muxring_engine_buf *buf)
{
	if (buf)
		mr_buf_unref(bf(buf));
}
