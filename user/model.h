/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * model: Kubernetes Services + EndpointSlices -> desired datapath state, with kube-proxy's
 * semantics. Pure: no I/O, no BPF, no logging (problems are reported through a callback).
 * Every kube-proxy rule the project implements lives here and only here.
 */
#ifndef BPFSVC_MODEL_H
#define BPFSVC_MODEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bpfsvc_abi.h"

/* Kubernetes identity is owned here: the labels the project reads... */
#define MODEL_LABEL_PROXY_NAME "service.kubernetes.io/service-proxy-name"
#define MODEL_LABEL_HEADLESS "service.kubernetes.io/headless"
#define MODEL_LABEL_SVC_NAME "kubernetes.io/service-name" /* joins a slice to its Service */
/* kube-proxy's list/watch selector: what another proxy serves, or nobody, stays out. */
#define MODEL_LABEL_SELECTOR "!" MODEL_LABEL_PROXY_NAME ",!" MODEL_LABEL_HEADLESS

/* ...and "namespace/name" keys. Any object's fits: a 63-character namespace, '/', a
 * 253-character name (an EndpointSlice's may be that long) and the NUL. */
#define MODEL_KEY_LEN 320
/* A Service's key is shorter: its name is a DNS label too (model rejects longer ones), and
 * the frontends' svc fields hold exactly these. */
#define MODEL_SVC_KEY_LEN (BPFSVC_NS_LEN + BPFSVC_NAME_LEN)

/* "ns/name" into buf; an empty or missing namespace is "default", as kubectl applies it.
 * Returns 0, -EINVAL without a name, or -ENAMETOOLONG. */
int model_key(char *buf, size_t len, const char *ns, const char *name);
/* The key of an object from its metadata. */
int model_obj_key(json_t *obj, char *buf, size_t len);
/* The key of the Service an EndpointSlice belongs to (its namespace and service-name
 * label); -ENOENT (buf "") when it has none. */
int model_slice_owner(json_t *slice, char *buf, size_t len);

/* Which service port a frontend belongs to (Kubernetes' ServicePortName). */
struct model_svc_ref {
	char ns[BPFSVC_NS_LEN];
	char name[BPFSVC_NAME_LEN];
	char port_name[BPFSVC_PORTNAME_LEN];
};

/* One desired frontend: VIP:port/proto and the backends a connect may land on. */
struct model_fe {
	struct bpfsvc_fe_key key;
	struct model_svc_ref svc;
	uint16_t flags;		    /* BPFSVC_FE_F_* */
	int64_t created;	    /* creationTimestamp (Unix seconds), INT64_MAX if unknown */
	uint32_t nbe;
	struct bpfsvc_backend *be; /* sorted by memcmp, no duplicates */
};

/* The whole desired state, sorted by key (memcmp) once model_build() returns. */
struct model_state {
	struct model_fe *fe;
	size_t n;
	size_t cap;
};

/* The service ("ns/name") that holds a frontend in the datapath now, or NULL. */
typedef const char *(*model_holder_fn)(void *ctx, const struct bpfsvc_fe_key *key);

struct model_opts {
	const char *node_name; /* for internalTrafficPolicy: Local; may be NULL */
	/* Two services claiming one VIP:port: the holder keeps it, so a newcomer (file mode has
	 * no IP allocator) cannot take it over. Without a holder the older service
	 * (metadata.creationTimestamp), then the first by namespace/name wins. May be NULL. */
	model_holder_fn holder;
	void *holder_ctx;
};

/* Called for each object or part that was skipped, with the reason. kind is "Service" or
 * "EndpointSlice". */
typedef void (*model_warn_fn)(void *arg, const char *kind, const char *ns, const char *name,
			      const char *why);

/*
 * Build the desired state from a JSON array of Kubernetes objects (other kinds are ignored).
 * Bad objects are reported through warn and left out; the rest is built.
 * Returns 0 or -ENOMEM / -EINVAL (objects is not an array). out must be zeroed or freed.
 */
int model_build(json_t *objects, const struct model_opts *opts, model_warn_fn warn, void *arg,
		struct model_state *out);

/*
 * Append the frontends of one Service to out (unsorted), using the EndpointSlices in slices
 * (a JSON array, already joined to this service by label, assumed valid: see
 * model_slice_check). Returns 0, -EINVAL if the service is malformed (warn was called), or
 * -ENOMEM. A service kube-proxy ignores (headless, ExternalName, ...) adds nothing, returns 0.
 */
int model_add_service(json_t *svc, json_t *slices, const struct model_opts *opts,
		      model_warn_fn warn, void *arg, struct model_state *out);

/* Validate an EndpointSlice. Returns 0 if usable, 1 if kube-proxy ignores it (FQDN,
 * proxy-name label), -EINVAL if malformed (warn was called). On 0, *svc_name is the service it
 * belongs to (borrowed from the object). */
int model_slice_check(json_t *slice, model_warn_fn warn, void *arg, const char **svc_name);

void model_sort(struct model_state *st);
void model_state_free(struct model_state *st);

#endif
