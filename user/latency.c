// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <string.h>

#include "latency.h"
#include "log.h"

void latency_add(struct latency *l, uint64_t ns, uint64_t now)
{
	uint64_t us = ns / 1000;
	unsigned b = 0;

	while (us > 1 && b < LAT_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	l->hist[b]++;
	l->n++;
	l->sum_ns += ns;
	if (ns > l->max_ns)
		l->max_ns = ns;
	if (!l->logged_ns)
		l->logged_ns = now;
}

uint64_t latency_due(const struct latency *l)
{
	return l->n ? l->logged_ns + LATENCY_LOG_NS : 0;
}

/* Upper bound of the bucket holding the q-quantile, in microseconds. */
static uint64_t quantile_us(const struct latency *l, double q)
{
	uint64_t want = (uint64_t)((double)l->n * q), seen = 0;

	for (unsigned b = 0; b < LAT_BUCKETS; b++) {
		seen += l->hist[b];
		if (seen > want)
			return 2ULL << b;
	}
	return 0;
}

void latency_log(struct latency *l, uint64_t now)
{
	if (!l->n)
		return;
	log_info("event to map latency",
		 "batches=%llu avg_us=%llu p50_us_below=%llu p99_us_below=%llu max_us=%llu",
		 (unsigned long long)l->n, (unsigned long long)(l->sum_ns / l->n / 1000),
		 (unsigned long long)quantile_us(l, 0.5), (unsigned long long)quantile_us(l, 0.99),
		 (unsigned long long)(l->max_ns / 1000));
	memset(l, 0, sizeof(*l));
	l->logged_ns = now;
}
