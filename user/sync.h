/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sync: keep the datapath maps equal to the model's desired state with the fewest writes.
 * Holds a mirror of what the maps contain, diffs the desired state against it and writes
 * the difference through the datapath map interface (datapath_maps.h: the pinned maps, or a
 * fake in unit tests). At start the mirror is rebuilt from the maps through the same
 * interface (sync_adopt).
 *
 * A changed backend set is written under a fresh set id, then the frontend is switched to it
 * in one element update, and the old set's slots are deleted only after a grace period, so a
 * concurrent connect() always sees a whole set (the atomic-switch rule of DESIGN.md).
 */
#ifndef BPFSVC_SYNC_H
#define BPFSVC_SYNC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "bpfsvc_abi.h"
#include "datapath_maps.h"
#include "model.h"

/* "ns/name" */
#define SYNC_OWNER_LEN MODEL_SVC_KEY_LEN

struct sync_owner;

/* One frontend as the maps hold it. The mirror is a hash by key, so one service's change
 * costs the same at 10 or 100000 services. */
struct sync_fe {
	struct bpfsvc_fe_key key;
	struct bpfsvc_fe_val val; /* val.count backends in be */
	struct bpfsvc_backend *be;
	bool dirty;		  /* adopted in an inconsistent state: rewrite on next apply */
	uint32_t mark;		  /* the apply generation that wants it */
	struct sync_owner *owner; /* the service it belongs to, NULL if unknown */
	UT_hash_handle hh;
};

/* The frontends of one service, for per-service updates. */
struct sync_owner {
	char key[SYNC_OWNER_LEN];
	struct sync_fe **fes;
	uint32_t n;
	size_t cap;
	UT_hash_handle hh;
};

struct sync_svc {
	struct bpfsvc_svc_info info;
	uint32_t refs; /* frontends using this id */
};

/* Which map a failed frontend write ran into. */
enum sync_stage {
	SYNC_STAGE_SVC,	  /* service metadata: no free service id (bpfsvc_svcs) */
	SYNC_STAGE_SLOTS, /* the backend set (bpfsvc_slots) */
	SYNC_STAGE_FE,	  /* the frontend itself (bpfsvc_fe) */
	SYNC_STAGE_MEM,	  /* the agent's own memory */
	SYNC_STAGES
};

/* A wanted frontend that could not be written, kept to be retried on its own. */
struct sync_failure {
	struct model_fe fe; /* a copy, backends included */
	int err;
	enum sync_stage stage;
	bool remove; /* the frontend was to be deleted (fe holds its key and owner only) */
};

struct sync_pending {
	uint32_t set_id;
	uint32_t count;
	uint64_t due_ns;
};

struct sync {
	struct dp_maps maps;
	struct sync_fe *fe;	    /* uthash head, by key */
	size_t n;		    /* frontends in the mirror */
	struct sync_owner *owners; /* uthash head, by "ns/name" */
	uint32_t gen;
	struct sync_svc *svc; /* indexed by svc_id */
	uint32_t max_svc;
	uint32_t svc_hint;    /* where the search for a free svc_id starts */
	json_t *svc_index;    /* "ns/name:port" -> svc_id */
	uint32_t next_set_id;
	uint32_t *live_sets;  /* sorted, built by sync_adopt() for slot GC */
	size_t nlive;
	struct sync_pending *pend;
	size_t npend, cappend;
	uint64_t grace_ns;
	/* Wanted frontends the last applies could not write (map full...), by the newest want
	 * of each service; sync_retry() writes only these. */
	struct sync_failure *fails;
	size_t nfails, capfails;
};

struct sync_result {
	uint32_t added, updated, removed, unchanged, failed;
	uint32_t conflicts; /* frontends another service already holds (per-service apply) */
	uint64_t writes; /* map element updates and deletes issued */
};

/* maps is copied; its max_services bounds the service ids handed out. */
int sync_init(struct sync *s, const struct dp_maps *maps, uint64_t grace_ns);
void sync_fini(struct sync *s);

/*
 * Adoption, on a fresh sync: rebuild the mirror from what the maps hold (read through
 * s->maps), so that the first apply writes only differences. A frontend whose set has holes
 * or whose service is unknown (an agent died mid-write) is marked dirty, to be rewritten;
 * service metadata no frontend references is freed (counted in res, which may be NULL), and
 * slots of sets no frontend names are deleted (counted in *gc).
 */
int sync_adopt(struct sync *s, struct sync_result *res, uint64_t *gc);
/* After adoption: is set_id referenced by any frontend? (slots of other sets are garbage) */
bool sync_set_live(const struct sync *s, uint32_t set_id);

/* Make the maps equal to want. Per-frontend failures are counted in res->failed and the
 * mirror keeps what is really in the maps; returns 0, or -ENOMEM. */
int sync_apply(struct sync *s, const struct model_state *want, uint64_t now_ns,
	       struct sync_result *res);

/*
 * Make the frontends of one service ("ns/name") equal to want, which holds exactly that
 * service's frontends (any order). Frontends of the service not in want are removed. A
 * frontend another service holds is left alone and counted in res->conflicts.
 */
int sync_apply_service(struct sync *s, const char *ns, const char *name,
		       const struct model_state *want, uint64_t now_ns, struct sync_result *res);

/*
 * Write again the frontends that failed (s->fails) and nothing else: one that another service
 * holds by now is dropped (counted in res->conflicts), one that fails again stays listed.
 * sync_apply() replaces the list, sync_apply_service() replaces that service's entries.
 */
int sync_retry(struct sync *s, uint64_t now_ns, struct sync_result *res);

const struct sync_fe *sync_find(const struct sync *s, const struct bpfsvc_fe_key *k);
/* The service ("ns/name") holding a frontend, NULL if none (for model_opts.holder). */
const char *sync_holder(const struct sync *s, const struct bpfsvc_fe_key *k);

/* Delete the slots of replaced sets whose grace period has passed. *next_due_ns is the next
 * deadline, or 0 if nothing is pending. Returns the number of slot deletes issued. */
uint64_t sync_reap(struct sync *s, uint64_t now_ns, bool all, uint64_t *next_due_ns);

#endif
