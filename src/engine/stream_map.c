/*
 * stream_map.c - open addressing with linear probing and backward-shift
 * deletion, so there are no tombstones and lookups never degrade as streams
 * come and go. Ids of one side arrive in steps of two, so they are mixed by
 * a multiplicative hash before masking. Slots hold only the stream: its id
 * is the key.
 */
#include "engine/stream_map.h"

#include <errno.h>
#include <stdbool.h>

#include "engine/session_internal.h"

/* Room for one stream (and a heartbeat): most sessions of a server with
 * many of them carry one stream, and the table doubles from there. */
#define MAP_MIN_CAPACITY 4u

static uint32_t slot_of(uint32_t id, uint32_t mask)
{
	return ((id * 0x9E3779B1u) >> 7) & mask;
}

void mr_stream_map_init(struct mr_stream_map *map,
			const struct muxring_mem *mem)
{
	*map = (struct mr_stream_map){.mem = mem};
}

void mr_stream_map_free(struct mr_stream_map *map)
{
	mr_free(map->mem, map->slots);
	*map = (struct mr_stream_map){.mem = map->mem};
}

struct mr_stream *mr_stream_map_get(const struct mr_stream_map *map,
				    uint32_t id)
{
	struct mr_stream *stream;
	uint32_t i;

	if (!map->slots)
		return NULL;
	for (i = slot_of(id, map->mask); (stream = map->slots[i]);
	     i = (i + 1) & map->mask) {
		if (stream->id == id)
			return stream;
	}
	return NULL;
}

static void insert_slot(struct mr_stream **slots, uint32_t mask,
			struct mr_stream *stream)
{
	uint32_t i = slot_of(stream->id, mask);

	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = stream;
}

static int grow(struct mr_stream_map *map)
{
	uint32_t old_cap = map->slots ? map->mask + 1 : 0;
	uint32_t new_cap = old_cap ? old_cap * 2 : MAP_MIN_CAPACITY;
	struct mr_stream **slots;
	uint32_t i;

	if (new_cap < old_cap)
		return -ENOMEM;
	slots = mr_calloc(map->mem, new_cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (i = 0; i < old_cap; i++) {
		if (map->slots[i])
			insert_slot(slots, new_cap - 1, map->slots[i]);
	}
	mr_free(map->mem, map->slots);
	map->slots = slots;
	map->mask = new_cap - 1;
	return 0;
}

int mr_stream_map_put(struct mr_stream_map *map, uint32_t id,
		      struct mr_stream *stream)
{
	(void)id; /* the stream's own id is the key */
	/* Keep the load at or below one half so probe runs stay short. */
	if (!map->slots || (map->count + 1) * 2 > map->mask + 1) {
		int err = grow(map);

		if (err)
			return err;
	}
	insert_slot(map->slots, map->mask, stream);
	map->count++;
	return 0;
}

/* Moves later members of the probe run back into the hole at `hole`, so
 * that every entry stays reachable from its home slot. */
static void close_hole(struct mr_stream_map *map, uint32_t hole)
{
	uint32_t i = hole;

	for (;;) {
		uint32_t home;

		i = (i + 1) & map->mask;
		if (!map->slots[i])
			break;
		home = slot_of(map->slots[i]->id, map->mask);
		/* Leave the entry if its home lies cyclically in (hole, i]. */
		if (((i - home) & map->mask) < ((i - hole) & map->mask))
			continue;
		map->slots[hole] = map->slots[i];
		map->slots[i] = NULL;
		hole = i;
	}
}

void mr_stream_map_del(struct mr_stream_map *map, uint32_t id)
{
	struct mr_stream *stream;
	uint32_t i;

	if (!map->slots)
		return;
	for (i = slot_of(id, map->mask); (stream = map->slots[i]);
	     i = (i + 1) & map->mask) {
		if (stream->id == id) {
			map->slots[i] = NULL;
			map->count--;
			close_hole(map, i);
			return;
		}
	}
}

/* A removal shifts later members of a probe run back by one or more slots,
 * possibly into the current one (visited again at once) or, for a run that
 * wraps around the end, into slots at the start: another pass catches
 * those, until a pass removes nothing. */
void mr_stream_map_sweep(struct mr_stream_map *map,
			 void (*fn)(struct mr_stream *stream, void *arg),
			 void *arg)
{
	bool removed = true;
	uint32_t i;

	while (removed && map->slots) {
		removed = false;
		for (i = 0; i <= map->mask;) {
			struct mr_stream *stream = map->slots[i];
			uint32_t before = map->count;

			if (!stream) {
				i++;
				continue;
			}
			fn(stream, arg);
			if (map->count == before)
				i++;
			else
				removed = true;
		}
	}
}

void mr_stream_map_each(const struct mr_stream_map *map,
			void (*fn)(struct mr_stream *stream, void *arg),
			void *arg)
{
	uint32_t i;

	if (!map->slots)
		return;
	for (i = 0; i <= map->mask; i++) {
		if (map->slots[i])
			fn(map->slots[i], arg);
	}
}
