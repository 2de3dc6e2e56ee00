/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service lookup shared by the datapaths: a Service VIP:port:proto to one backend, over the
 * maps of maps.h, with the per-service counters. What a datapath does with the backend
 * (rewrite a socket address, a packet) and how it remembers it stays with the program.
 */
#ifndef BPFSVC_LIB_LB_H
#define BPFSVC_LIB_LB_H

#include "bpfsvc_abi.h"
#include "maps.h"

#define ECONNREFUSED 111

static __always_inline void stats_count(__u32 svc_id, bool rejected)
{
	struct bpfsvc_stats *st = bpf_map_lookup_elem(&bpfsvc_stats, &svc_id);

	if (!st)
		return;
	if (rejected)
		st->no_backend++;
	else
		st->connects++;
}

/*
 * Pick a backend of the frontend key into *out, counting it for the service.
 * Returns 1 if picked, 0 if key is not a service, -ECONNREFUSED if the service has no
 * usable backend.
 */
static __always_inline int lb_lookup(const struct bpfsvc_fe_key *key, struct bpfsvc_backend *out)
{
	struct bpfsvc_slot_key sk = {};
	struct bpfsvc_backend *be = NULL;
	struct bpfsvc_fe_val fe;
	int i;

	for (i = 0; i < BPFSVC_LOOKUP_TRIES; i++) {
		struct bpfsvc_fe_val *v = bpf_map_lookup_elem(&bpfsvc_fe, key);

		if (!v)
			return 0;
		/* Work on a copy: the agent may switch the element while we use it. */
		fe = *v;
		if (fe.count == 0) {
			stats_count(fe.svc_id, true);
			return -ECONNREFUSED;
		}
		sk.set_id = fe.set_id;
		sk.idx = bpf_get_prandom_u32() % fe.count;
		be = bpf_map_lookup_elem(&bpfsvc_slots, &sk);
		if (be)
			break;
		/* The set was switched and its old slots already reclaimed: read the
		 * frontend again, it now names the new set. */
	}
	if (!be) {
		stats_count(fe.svc_id, true);
		return -ECONNREFUSED;
	}
	*out = *be;
	stats_count(fe.svc_id, false);
	return 1;
}

#endif
