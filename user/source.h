/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sources: where Kubernetes objects come from (a file, or list+watch of the API server).
 * Everything downstream sees JSON objects and nothing of their origin. A source is driven by
 * the agent's event loop through its operations table and reports what changed to a sink.
 */
#ifndef BPFSVC_SOURCE_H
#define BPFSVC_SOURCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct agent_opts;
struct source;

/* What a source tells its owner (from inside start, on_ready, tick and refresh). */
struct source_sink {
	/* Anything may have changed: take snapshot() and bring everything to it. */
	void (*resync)(void *arg, const char *why);
	/* The service "ns/name" or one of its EndpointSlices changed. */
	void (*changed)(void *arg, const char *svc_key);
	/* The changes of one read were all reported; recv_ns is when its bytes arrived. */
	void (*batch_end)(void *arg, uint64_t recv_ns);
	void *arg;
};

struct source_ops {
	/* Put its descriptors in epfd and begin reporting to sink: the file is read, the lists
	 * start. */
	int (*start)(struct source *s, int epfd, const struct source_sink *sink, uint64_t now_ns);
	/* A descriptor of epfd is ready; one that is not the source's is ignored. */
	void (*on_ready)(struct source *s, int fd, uint32_t epoll_events);
	/* When tick() next has work, 0 if never. */
	uint64_t (*next_deadline)(const struct source *s);
	void (*tick)(struct source *s, uint64_t now_ns);
	/* Every object (a new array), whole or not at all; why it failed is logged. */
	int (*snapshot)(struct source *s, json_t **objects);
	/* The Service "ns/name" (borrowed, NULL if none) and its EndpointSlices (a new array):
	 * for a service changed() named. */
	int (*service)(struct source *s, const char *svc_key, json_t **svc, json_t **slices);
	/* SIGHUP: a resync, if there is something to resync from yet. */
	void (*refresh)(struct source *s);
	void (*free)(struct source *s);
};

struct source {
	const struct source_ops *ops;
	struct source_sink sink;
};

/* The source o names (o->from_file, else the API server). Configuration errors are logged and
 * returned here, before anything is attached or pinned. */
int source_open(const struct agent_opts *o, struct source **out);
int source_file_open(const char *path, struct source **out);
int source_api_open(const struct agent_opts *o, struct source **out);

/* Parse a JSON or YAML document (one object, a List, or a YAML stream of objects) into
 * *objects, a flat JSON array. Items of a typed list (ServiceList, EndpointSliceList) get
 * their kind filled in, as the API server omits it there. err names what was wrong. */
int source_parse(const char *buf, size_t len, json_t **objects, char *err, size_t errlen);

/* source_parse() on the contents of a file. */
int source_file_load(const char *path, json_t **objects, char *err, size_t errlen);

#endif
