/*
 * event_queue.c - the FIFO of events the engine raises for its driver.
 *
 * A power-of-two ring of event structs that doubles when full. The driver
 * drains it after every call into the engine, and a drained queue of the
 * smallest size gives its storage back: of ten thousand quiet sessions,
 * only those with events waiting hold any. A queue that has grown keeps
 * its storage: a busy session's turns vary in size, and giving grown
 * storage back after a small turn (tried, with the transmit ring doing
 * the same) made open/64 slower by regrowing (README, "Memory"). Events have sequence
 * numbers, so that the engine can find one it queued earlier and still
 * unpolled (a stream's DATA event, to append payload to it).
 */
#include <errno.h>
#include <string.h>

#include "engine/session_internal.h"

/* Small: a session of a few streams raises a few events per call, and one
 * idle among ten thousand should not hold 5 KiB of empty events. */
#define EVQ_MIN_CAPACITY 4u

void mr_evq_init(struct mr_event_queue *q, const struct muxring_mem *mem)
{
	*q = (struct mr_event_queue){.mem = mem};
}

void mr_evq_free(struct mr_event_queue *q)
{
	struct mr_event ev;

	while (mr_evq_pop(q, &ev)) {
		if (ev.type == MR_EV_DATA)
			mr_view_release(&ev.view);
		mr_event_done(&ev);
	}
	mr_free(q->mem, q->items);
	*q = (struct mr_event_queue){.mem = q->mem};
}

static int grow(struct mr_event_queue *q)
{
	uint32_t cap = q->cap ? q->cap * 2 : EVQ_MIN_CAPACITY;
	struct mr_event *items;
	uint32_t i;

	if (cap < q->cap)
		return -ENOMEM;
	items = mr_malloc(q->mem, (size_t)cap * sizeof(*items));
	if (!items)
		return -ENOMEM;
	for (i = 0; i < q->count; i++)
		items[i] = q->items[(q->head + i) & (q->cap - 1)];
	mr_free(q->mem, q->items);
	q->items = items;
	q->head = 0;
	q->cap = cap;
	return 0;
}

/* Empty again: the smallest storage goes, and grow() makes the next. */
static void drained(struct mr_event_queue *q)
{
	if (q->cap != EVQ_MIN_CAPACITY)
		return;
	mr_free(q->mem, q->items);
	q->items = NULL;
	q->cap = 0;
}

int mr_evq_push(struct mr_event_queue *q, const struct mr_event *ev)
{
	if (q->count == q->cap) {
		int err = grow(q);

		if (err)
			return err;
	}
	q->items[(q->head + q->count) & (q->cap - 1)] = *ev;
	q->count++;
	if (q->count > q->count_max)
		q->count_max = q->count;
	return 0;
}

uint32_t mr_evq_last_seq(const struct mr_event_queue *q)
{
	return q->popped + q->count - 1;
}

struct mr_event *mr_evq_find(struct mr_event_queue *q, uint32_t seq)
{
	uint32_t place = seq - q->popped;

	if (place >= q->count)
		return NULL;
	return &q->items[(q->head + place) & (q->cap - 1)];
}

bool mr_evq_pop(struct mr_event_queue *q, struct mr_event *ev)
{
	if (!q->count)
		return false;
	*ev = q->items[q->head];
	q->head = (q->head + 1) & (q->cap - 1);
	q->count--;
	q->popped++;
	if (!q->count)
		drained(q);
	return true;
}
