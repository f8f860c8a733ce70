/*
 * stream_map.h - stream id to stream lookup for one session.
 *
 * Every inbound DATA, WNDINC and RST frame looks its stream up, so the map
 * is an open-addressing table of stream pointers, the key being each
 * stream's own id: 8 bytes per slot, at most half the slots used, so an
 * idle stream costs 16 to 32 bytes here (a session's first four slots
 * hold two). A probe reads the stream's id, and the stream found is what
 * the caller touches next anyway.
 */
#ifndef MUXRING_STREAM_MAP_H
#define MUXRING_STREAM_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/mem.h"

struct mr_stream;

struct mr_stream_map {
	const struct muxring_mem *mem; /* allocates the slots */
	struct mr_stream **slots; /* NULL marks an empty slot */
	uint32_t mask;  /* capacity - 1; capacity is a power of two */
	uint32_t count; /* live entries */
};

void mr_stream_map_init(struct mr_stream_map *map,
			const struct muxring_mem *mem);
void mr_stream_map_free(struct mr_stream_map *map);

/* NULL when id is not in the map. */
struct mr_stream *mr_stream_map_get(const struct mr_stream_map *map,
				    uint32_t id);

/* Adds the stream under id, which must be its id and not be present.
 * Returns 0 or -ENOMEM. */
int mr_stream_map_put(struct mr_stream_map *map, uint32_t id,
		      struct mr_stream *stream);

/* Removes id if present. */
void mr_stream_map_del(struct mr_stream_map *map, uint32_t id);

/* Calls fn on every stream; fn may remove that stream (and no other) from
 * the map, and is called at least once for every stream it keeps (maybe
 * more: a removal can move a stream back into slots already visited).
 * Needs no memory. */
void mr_stream_map_sweep(struct mr_stream_map *map,
			 void (*fn)(struct mr_stream *stream, void *arg),
			 void *arg);

/* Calls fn on every stream; fn must not change the map. */
void mr_stream_map_each(const struct mr_stream_map *map,
			void (*fn)(struct mr_stream *stream, void *arg),
			void *arg);

#endif
