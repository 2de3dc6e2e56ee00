/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The event-to-map latency: a histogram of how long events took from the wire to the maps,
 * summarised in the log every LATENCY_LOG_NS while there are events. */
#ifndef BPFSVC_LATENCY_H
#define BPFSVC_LATENCY_H

#include <stdint.h>

#define LATENCY_LOG_NS (60ULL * 1000 * 1000 * 1000)
/* Bucket i counts latencies in [2^i, 2^(i+1)) microseconds. */
#define LAT_BUCKETS 32

struct latency {
	uint64_t n, sum_ns, max_ns;
	uint64_t hist[LAT_BUCKETS];
	uint64_t logged_ns; /* when the last summary was logged (or the first batch came) */
};

/* A batch that took ns, applied at now. */
void latency_add(struct latency *l, uint64_t ns, uint64_t now);
/* When the next summary is due, 0 with nothing to summarise. */
uint64_t latency_due(const struct latency *l);
/* Log the summary (if there were batches) and start a new one. */
void latency_log(struct latency *l, uint64_t now);

#endif
