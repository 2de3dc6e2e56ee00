/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The datapath's maps as one interface for reading and writing: an operations table over the
 * frontend, slot, service and stats maps. sync writes (and adopts) through it, `bpfsvc list`
 * reads through it, and the unit tests put a fake behind it. One implementation is over the
 * pinned maps' fds (pinned_map_ops); it knows nothing of sync or of the programs.
 */
#ifndef BPFSVC_DATAPATH_MAPS_H
#define BPFSVC_DATAPATH_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpfsvc_abi.h"

/*
 * Every op returns 0 or -errno. The *_next ops walk a map the way bpf_map_get_next_key()
 * does: prev NULL gives the first key, -ENOENT ends the walk, and a prev deleted meanwhile
 * may restart the walk from the first key (so a walker must tolerate seeing a key twice).
 */
struct dp_map_ops {
	/* Read. */
	int (*fe_next)(void *ctx, const struct bpfsvc_fe_key *prev, struct bpfsvc_fe_key *next);
	int (*fe_lookup)(void *ctx, const struct bpfsvc_fe_key *k, struct bpfsvc_fe_val *v);
	int (*slot_next)(void *ctx, const struct bpfsvc_slot_key *prev,
			 struct bpfsvc_slot_key *next);
	int (*slot_lookup)(void *ctx, const struct bpfsvc_slot_key *k, struct bpfsvc_backend *b);
	int (*svc_lookup)(void *ctx, uint32_t id, struct bpfsvc_svc_info *info);
	/* The service's counters summed over CPUs. */
	int (*stats_lookup)(void *ctx, uint32_t id, struct bpfsvc_stats *sum);

	/* Write. */
	int (*fe_update)(void *ctx, const struct bpfsvc_fe_key *k, const struct bpfsvc_fe_val *v);
	int (*fe_delete)(void *ctx, const struct bpfsvc_fe_key *k);
	int (*slot_update)(void *ctx, const struct bpfsvc_slot_key *k,
			   const struct bpfsvc_backend *b);
	int (*slot_delete)(void *ctx, const struct bpfsvc_slot_key *k);
	/* Optional: write n slots in one call; *done is how many were written (on error too).
	 * A set is written with one call instead of one per backend. */
	int (*slot_update_batch)(void *ctx, const struct bpfsvc_slot_key *k,
				 const struct bpfsvc_backend *b, uint32_t n, uint32_t *done);
	/* Write service metadata for id; fresh means a new owner, so zero its counters too. */
	int (*svc_set)(void *ctx, uint32_t id, const struct bpfsvc_svc_info *info, bool fresh);
};

/* One set of datapath maps: how to reach them, and their capacities (bounds on what a
 * reader trusts, and the range of service ids). */
struct dp_maps {
	const struct dp_map_ops *ops;
	void *ctx;
	uint32_t max_frontends, max_slots, max_services;
};

/* Pinned map fds, enough to read or write the state without loading programs. */
struct pinned_maps {
	int fe, slots, svcs, stats;
	uint32_t max_services;
	uint32_t max_frontends, max_slots; /* capacities, for errors and bounds on counts */
	int ncpus;
};

/* The maps behind fds (ctx is the struct pinned_maps *). */
extern const struct dp_map_ops pinned_map_ops;

/* A handle on m through pinned_map_ops; m must outlive it. */
struct dp_maps pinned_maps_handle(struct pinned_maps *m);

/* Open the maps pinned under pin_path for reading and writing, checking that each is
 * bpfsvc's (name, key and value sizes), under the same directory trust rules as cleanup. */
int pinned_open(const char *pin_path, struct pinned_maps *m, char *err, size_t errlen);
void pinned_close(struct pinned_maps *m);

#endif
