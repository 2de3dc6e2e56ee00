/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The API-server source: list+watch of Services and EndpointSlices, the way kube-proxy's
 * informers do it, kept in two stores of JSON objects. It tells its owner which service
 * changed; the owner asks for the objects and runs model and sync.
 */
#ifndef BPFSVC_SOURCE_API_H
#define BPFSVC_SOURCE_API_H

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>

#include "kube_client.h"

/* Items per list page. */
#define API_LIST_LIMIT 500

enum api_level { API_INFO, API_WARN, API_ERR, API_DEBUG };

struct api_source_cbs {
	/* The service "ns/name" or one of its slices changed (after the initial sync). */
	void (*changed)(void *arg, const char *svc_key);
	/* Both stores are complete (first time, or after a relist): rebuild everything. */
	void (*resynced)(void *arg);
	/* The events of one read were delivered; recv_ns is when the bytes arrived. */
	void (*batch_end)(void *arg, uint64_t recv_ns);
	/* Something worth a log line: fmt/ap format the "key=value ..." pairs (values are
	 * escaped by the logger, so pass them through as conversions, not preformatted). */
	void (*report)(void *arg, enum api_level lvl, const char *msg, const char *fmt,
		       va_list ap) __attribute__((format(printf, 4, 0)));
};

struct api_source_opts {
	unsigned watch_min_s, watch_max_s; /* timeoutSeconds drawn from this range */
	unsigned backoff_max_s;		   /* retry delays double from 0.8 s up to this */
};

struct api_source;

/*
 * Retry delays of one resource: exponential from 0.8 s up to a maximum, jittered, reset after
 * two minutes without failure. A server's Retry-After only ever lengthens a wait: a 429 with
 * "Retry-After: 0" must not turn the backoff into a hot loop.
 */
struct api_backoff {
	uint64_t cur_ns;       /* the next delay before jitter, 0: no failure yet */
	uint64_t last_fail_ns; /* when the last failure happened */
	uint64_t last_wait_ns; /* the wait it was given */
};

/* A failure at now_ns: returns the wait before the next attempt and grows the backoff.
 * retry_after_s < 0: none given. rnd in [0, 1) draws the jitter. Pure: exposed for tests. */
uint64_t api_backoff_next(struct api_backoff *b, uint64_t now_ns, uint64_t max_ns,
			  long retry_after_s, double rnd);

int api_source_new(struct kube_client *kc, const struct api_source_opts *o,
		   const struct api_source_cbs *cbs, void *arg, struct api_source **out);
void api_source_free(struct api_source *s);

/* Begin the initial lists. */
void api_source_start(struct api_source *s, uint64_t now_ns);
/* When api_source_tick() next has work (a retry), 0 if never. */
uint64_t api_source_next_deadline(const struct api_source *s);
void api_source_tick(struct api_source *s, uint64_t now_ns);
/* True once both initial lists completed. */
bool api_source_synced(const struct api_source *s);

/* Views of the stores: a Service by "ns/name" (borrowed), the slices of a service (a new
 * array), every object (a new array of Services and EndpointSlices). The arrays are whole or
 * not made: -ENOMEM. */
json_t *api_source_service(const struct api_source *s, const char *svc_key);
int api_source_slices(const struct api_source *s, const char *svc_key, json_t **out);
int api_source_all(const struct api_source *s, json_t **out);

#endif
