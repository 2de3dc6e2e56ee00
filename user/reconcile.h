/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* From a source's objects to the maps: model, then sync; retries of what failed. */
#ifndef BPFSVC_RECONCILE_H
#define BPFSVC_RECONCILE_H

#include <stdint.h>

#include "source.h"

struct agent_opts;
struct dp_maps;
struct reconcile;

/* Open the datapath o names and adopt what is pinned there (errors are logged); changed
 * services are read from src. */
int reconcile_open(const struct agent_opts *o, struct source *src, struct reconcile **out);
/* The same over maps already open (the unit tests' fake), which must outlive rc; node_name
 * too. Nothing is loaded, attached or pinned. */
int reconcile_open_maps(const struct dp_maps *maps, const char *node_name, struct source *src,
			struct reconcile **out);
/* Stop the retries and reclaim what can be; the datapath stays pinned and serving. */
void reconcile_stop(struct reconcile *rc);
void reconcile_close(struct reconcile *rc);

/* The sink the source reports to (valid as long as rc). */
const struct source_sink *reconcile_sink(struct reconcile *rc);

/* When reconcile_tick() next has work (slot reaping, retries, the latency summary), 0 if
 * never. */
uint64_t reconcile_next_deadline(const struct reconcile *rc);
void reconcile_tick(struct reconcile *rc, uint64_t now_ns);

#endif
