// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * From objects to maps: what a source reports goes through the model (the desired state)
 * and sync (the difference written to the datapath). A whole snapshot on a resync, one
 * service at a time for a watch's changes; what could not be written is retried here.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "latency.h"
#include "log.h"
#include "model.h"
#include "reconcile.h"
#include "sock_lb.h"
#include "source.h"
#include "sync.h"

/* How long replaced backend sets stay readable: far longer than any program run holds a
 * looked-up set id, short enough that churn does not pile up slots. */
#define SLOT_GRACE_NS (1000ULL * 1000 * 1000)
/* Frontends that could not be written (map full, ENOMEM) are retried on their own after a
 * backoff that doubles from the first to the last value (jittered): a full map stays full
 * until something is removed, which retries at once. */
#define RETRY_MIN_NS (5ULL * 1000 * 1000 * 1000)
#define RETRY_MAX_NS (300ULL * 1000 * 1000 * 1000)
/* Services named in a "not programmed" log line; the rest are counted. */
#define FAIL_NAMES_MAX 10
/* Skipped-object warnings logged per apply; the rest are counted in one line. */
#define WARN_MAX 50

struct reconcile {
	struct model_opts mo;
	struct datapath *dp;
	struct sync sync;
	struct source *src;
	struct source_sink sink;
	json_t *dirty;	    /* "ns/name" of services to recompute at the end of this batch */
	json_t *conflicted; /* services whose VIP:port another service still holds */
	struct latency lat;
	uint64_t reap_due_ns;
	uint64_t retry_due_ns; /* frontends that failed to write are retried then */
	/* A change lost to an allocation failure (a service not recomputed, a snapshot not
	 * taken): the maps are as they were, and a whole resync then catches up. */
	uint64_t resync_due_ns;
	uint64_t retry_backoff_ns;
	size_t fails_logged; /* failures the last "map full" lines described */
	unsigned warned, unwarned; /* skipped-object warnings this apply: logged, not logged */
	uint64_t generation;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void model_warn(void *arg, const char *kind, const char *ns, const char *name,
		       const char *why)
{
	struct reconcile *rc = arg;

	/* A file of thousands of bad objects gets a sample and a count, not thousands of lines. */
	if (rc->warned >= WARN_MAX) {
		rc->unwarned++;
		return;
	}
	rc->warned++;
	log_warn("object skipped", "kind=%s object=%s/%s reason=\"%s\"", kind, ns, name, why);
}

static void warn_summary(struct reconcile *rc)
{
	if (rc->unwarned)
		log_warn("more objects skipped, not logged one by one", "count=%u", rc->unwarned);
	rc->warned = rc->unwarned = 0;
}

static const char *agent_holder(void *ctx, const struct bpfsvc_fe_key *key)
{
	return sync_holder(ctx, key);
}


static void reap(struct reconcile *rc, bool all)
{
	uint64_t n = sync_reap(&rc->sync, now_ns(), all, &rc->reap_due_ns);

	if (n)
		log_debug("old backend sets reclaimed", "slots=%llu", (unsigned long long)n);
}

static const char *stage_map(enum sync_stage st)
{
	static const char *const names[SYNC_STAGES] = {
		[SYNC_STAGE_SVC] = "bpfsvc_svcs",
		[SYNC_STAGE_SLOTS] = "bpfsvc_slots",
		[SYNC_STAGE_FE] = "bpfsvc_fe",
		[SYNC_STAGE_MEM] = "agent memory",
	};

	return names[st];
}

static uint32_t stage_capacity(const struct reconcile *rc, enum sync_stage st)
{
	const struct dp_maps *m = &rc->sync.maps;

	switch (st) {
	case SYNC_STAGE_SVC:
		return m->max_services;
	case SYNC_STAGE_SLOTS:
		return m->max_slots;
	case SYNC_STAGE_FE:
		return m->max_frontends;
	default:
		return 0;
	}
}

/* One line per map that refused writes: which map, its size, and the services left out. */
static void log_failures(struct reconcile *rc)
{
	for (int st = 0; st < SYNC_STAGES; st++) {
		char names[FAIL_NAMES_MAX * (SYNC_OWNER_LEN + 2)] = "", last[SYNC_OWNER_LEN] = "";
		size_t off = 0, nfe = 0, nsvc = 0, shown = 0;
		int err = 0;

		for (size_t i = 0; i < rc->sync.nfails; i++) {
			const struct sync_failure *f = &rc->sync.fails[i];
			char key[SYNC_OWNER_LEN];

			if ((int)f->stage != st)
				continue;
			nfe++;
			err = f->err;
			model_key(key, sizeof(key), f->fe.svc.ns, f->fe.svc.name);
			/* a service's frontends are next to each other: count it once */
			if (!strcmp(key, last))
				continue;
			snprintf(last, sizeof(last), "%s", key);
			nsvc++;
			if (shown < FAIL_NAMES_MAX) {
				int n = snprintf(names + off, sizeof(names) - off, "%s%s",
						 shown ? " " : "", key);

				if (n > 0 && (size_t)n < sizeof(names) - off)
					off += (size_t)n;
				shown++;
			}
		}
		if (!nfe)
			continue;
		if (err == -E2BIG || err == -ENOSPC)
			log_err("map full: frontends left out, retrying",
				"map=%s capacity=%u frontends=%zu services=%zu first=\"%s\" more=%zu",
				stage_map(st), stage_capacity(rc, st), nfe, nsvc, names,
				nsvc - shown);
		else
			log_err("frontends could not be written, retrying",
				"map=%s error=\"%s\" frontends=%zu services=%zu first=\"%s\" more=%zu",
				stage_map(st), strerror(-err), nfe, nsvc, names, nsvc - shown);
	}
}

/*
 * After an apply: retry what failed on a growing backoff, or stop retrying. A watch batch
 * (grow false) neither pushes a pending retry out nor logs the same failures again: with a
 * full map and churn, that would be lines per watch read and a retry never due.
 */
static void schedule_retry(struct reconcile *rc, bool grow)
{
	uint64_t b = rc->retry_backoff_ns;

	if (!rc->sync.nfails) {
		rc->retry_due_ns = rc->retry_backoff_ns = 0;
		rc->fails_logged = 0;
		return;
	}
	if (!grow && rc->retry_due_ns) {
		if (rc->sync.nfails != rc->fails_logged) {
			log_failures(rc);
			rc->fails_logged = rc->sync.nfails;
		}
		return;
	}
	log_failures(rc);
	rc->fails_logged = rc->sync.nfails;
	b = !b ? RETRY_MIN_NS : b * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : b * 2;
	rc->retry_backoff_ns = b;
	/* 75..125 % of the backoff, so agents on many nodes do not retry in step */
	rc->retry_due_ns = now_ns() + b * 3 / 4 + (uint64_t)((double)b / 2 * (rand() / (RAND_MAX + 1.0)));
}

static void resync_later(struct reconcile *rc)
{
	if (!rc->resync_due_ns)
		rc->resync_due_ns = now_ns() + RETRY_MIN_NS;
}

static void log_sync(struct reconcile *rc, const char *why, const struct sync_result *res,
		     uint64_t build_ns, uint64_t sync_ns)
{
	rc->generation++;
	log_info("sync done",
		 "gen=%llu reason=%s frontends=%zu added=%u updated=%u removed=%u unchanged=%u "
		 "failed=%u writes=%llu parse_us=%llu sync_us=%llu",
		 (unsigned long long)rc->generation, why, rc->sync.n, res->added, res->updated,
		 res->removed, res->unchanged, res->failed, (unsigned long long)res->writes,
		 (unsigned long long)(build_ns / 1000), (unsigned long long)(sync_ns / 1000));
	/* Only a well-formed source with no services gets here with nothing left. */
	if (!rc->sync.n && res->removed)
		log_warn("the source holds no services: every frontend was removed", "removed=%u",
			 res->removed);
}

/* Bring the maps to the state of all of objs. */
static int apply_all(struct reconcile *rc, json_t *objs, const char *why, uint64_t t0)
{
	struct model_state want = {};
	struct sync_result res;
	uint64_t t1, t2;
	int ret;

	ret = model_build(objs, &rc->mo, model_warn, rc, &want);
	warn_summary(rc);
	if (ret) {
		log_err("cannot build the desired state", "error=\"%s\"", strerror(-ret));
		goto cleanup;
	}
	t1 = now_ns();
	ret = sync_apply(&rc->sync, &want, t1, &res);
	t2 = now_ns();
	log_sync(rc, why, &res, t1 - t0, t2 - t1);
	schedule_retry(rc, true);
	reap(rc, false);
cleanup:
	model_state_free(&want);
	return ret;
}

static void apply_service(struct reconcile *rc, const char *key, struct sync_result *total)
{
	struct model_state want = {};
	struct sync_result res;
	json_t *svc = NULL, *slices = NULL;
	char ns[BPFSVC_NS_LEN + 1] = "", name[BPFSVC_NAME_LEN + 1] = "";
	const char *slash = strchr(key, '/');
	int ret;

	if (slash) {
		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
		snprintf(name, sizeof(name), "%s", slash + 1);
	}
	ret = rc->src->ops->service(rc->src, key, &svc, &slices);
	if (!ret && svc)
		ret = model_add_service(svc, slices, &rc->mo, model_warn, rc, &want);
	warn_summary(rc);
	json_decref(slices);
	if (ret == -ENOMEM) {
		log_err("cannot build the desired state, resyncing later", "service=%s error=\"%s\"",
			key, strerror(ENOMEM));
		model_state_free(&want);
		resync_later(rc);
		return;
	}
	model_sort(&want);
	sync_apply_service(&rc->sync, ns, name, &want, now_ns(), &res);
	model_state_free(&want);
	total->added += res.added;
	total->updated += res.updated;
	total->removed += res.removed;
	total->failed += res.failed;
	total->writes += res.writes;
	/* Another service still holds one of its VIP:ports. Retry after that one changes: a
	 * VIP moving between services may arrive in either order. */
	if (res.conflicts) {
		if (!json_object_get(rc->conflicted, key))
			log_warn("frontend held by another service, retrying when it is released",
				 "service=%s count=%u", key, res.conflicts);
		json_object_set_new(rc->conflicted, key, json_true());
	} else {
		json_object_del(rc->conflicted, key);
	}
}

/* The events of one read are in the stores: recompute the services they touched. */
static void sink_batch_end(void *arg, uint64_t recv_ns)
{
	struct reconcile *rc = arg;
	struct sync_result total = {};
	const char *key;
	json_t *v, *retry = NULL;
	size_t n = json_object_size(rc->dirty);
	uint64_t done;

	if (!n)
		return;
	json_object_foreach(rc->dirty, key, v)
		apply_service(rc, key, &total);
	json_object_clear(rc->dirty);
	if (total.removed && json_object_size(rc->conflicted)) {
		retry = json_deep_copy(rc->conflicted);
		json_object_foreach(retry, key, v)
			apply_service(rc, key, &total);
		json_decref(retry);
	}
	done = now_ns();
	latency_add(&rc->lat, done - recv_ns, done);
	log_debug("events applied",
		  "services=%zu added=%u updated=%u removed=%u failed=%u writes=%llu latency_us=%llu",
		  n, total.added, total.updated, total.removed, total.failed,
		  (unsigned long long)total.writes, (unsigned long long)((done - recv_ns) / 1000));
	if (total.failed || !rc->sync.nfails)
		schedule_retry(rc, false);
	/* Room was freed: what failed for want of it may fit now. */
	if (total.removed && rc->sync.nfails)
		rc->retry_due_ns = done;
	reap(rc, false);
}


static void sink_changed(void *arg, const char *svc_key)
{
	struct reconcile *rc = arg;

	if (json_object_set_new(rc->dirty, svc_key, json_true())) {
		log_err("cannot note a changed service, resyncing later", "service=%s error=\"%s\"",
			svc_key, strerror(ENOMEM));
		resync_later(rc);
	}
}

/* Bring the maps to the source's whole snapshot. One that cannot be taken (a file that does
 * not parse, no memory for the list) changes nothing. */
static void sink_resync(void *arg, const char *why)
{
	struct reconcile *rc = arg;
	uint64_t t0 = now_ns();
	json_t *objs = NULL;
	int ret;

	/* Everything is recomputed; per-service news is part of it. */
	json_object_clear(rc->dirty);
	json_object_clear(rc->conflicted);
	rc->resync_due_ns = 0;
	ret = rc->src->ops->snapshot(rc->src, &objs);
	if (ret == -ENOMEM)
		resync_later(rc);
	if (ret)
		return;
	apply_all(rc, objs, why, t0);
	json_decref(objs);
	/* The parse tree of a large snapshot is gone: give its pages back rather than keep the
	 * peak of the largest one ever read. */
	malloc_trim(0);
}

const struct source_sink *reconcile_sink(struct reconcile *rc)
{
	return &rc->sink;
}

/* The state without maps; on failure reconcile_close() frees what *out holds. */
static int reconcile_new(const char *node_name, struct source *src, struct reconcile **out)
{
	struct reconcile *rc = calloc(1, sizeof(*rc));

	*out = rc;
	if (!rc)
		return -ENOMEM;
	rc->src = src;
	rc->sink = (struct source_sink){ .resync = sink_resync, .changed = sink_changed,
					 .batch_end = sink_batch_end, .arg = rc };
	rc->mo.node_name = node_name;
	rc->mo.holder = agent_holder;
	rc->mo.holder_ctx = &rc->sync;
	rc->dirty = json_object();
	rc->conflicted = json_object();
	return rc->dirty && rc->conflicted ? 0 : -ENOMEM;
}

/* What maps hold becomes the state the first apply starts from. */
static int reconcile_adopt(struct reconcile *rc, const struct dp_maps *maps, uint64_t *gc)
{
	int ret = sync_init(&rc->sync, maps, SLOT_GRACE_NS);

	if (ret)
		return ret;
	ret = sync_adopt(&rc->sync, NULL, gc);
	if (ret)
		log_err("cannot read the pinned maps", "error=\"%s\"", strerror(-ret));
	return ret;
}

int reconcile_open_maps(const struct dp_maps *maps, const char *node_name, struct source *src,
			struct reconcile **out)
{
	struct reconcile *rc;
	uint64_t gc = 0;
	int ret;

	ret = reconcile_new(node_name, src, &rc);
	if (!ret)
		ret = reconcile_adopt(rc, maps, &gc);
	if (ret) {
		reconcile_close(rc);
		return ret;
	}
	*out = rc;
	return 0;
}

int reconcile_open(const struct agent_opts *o, struct source *src, struct reconcile **out)
{
	struct map_sizes sizes = { o->max_frontends, o->max_services, o->max_slots, o->max_revnat };
	struct reconcile *rc;
	char err[512] = "";
	uint64_t gc = 0;
	int ret;

	ret = reconcile_new(o->node_name, src, &rc);
	if (ret)
		goto fail;
	ret = datapath_open(o->pin_path, o->cgroup, &sizes, &rc->dp, err, sizeof(err));
	if (ret) {
		log_err("cannot set up the datapath", "error=\"%s\"", err);
		goto fail;
	}
	ret = reconcile_adopt(rc, datapath_map_io(rc->dp), &gc);
	if (ret)
		goto fail;
	log_info("datapath ready", "pin_path=%s cgroup=%s adopted_frontends=%zu gc_slots=%llu",
		 o->pin_path, o->cgroup, rc->sync.n, (unsigned long long)gc);
	*out = rc;
	return 0;
fail:
	reconcile_close(rc);
	return ret;
}

uint64_t reconcile_next_deadline(const struct reconcile *rc)
{
	uint64_t due = rc->reap_due_ns, lat = latency_due(&rc->lat);

	if (rc->retry_due_ns && (!due || rc->retry_due_ns < due))
		due = rc->retry_due_ns;
	if (rc->resync_due_ns && (!due || rc->resync_due_ns < due))
		due = rc->resync_due_ns;
	if (lat && (!due || lat < due))
		due = lat;
	return due;
}

void reconcile_tick(struct reconcile *rc, uint64_t now)
{
	if (rc->resync_due_ns && rc->resync_due_ns <= now)
		sink_resync(rc, "retry");
	if (rc->reap_due_ns && rc->reap_due_ns <= now)
		reap(rc, false);
	if (latency_due(&rc->lat) && latency_due(&rc->lat) <= now)
		latency_log(&rc->lat, now);
	if (rc->retry_due_ns && rc->retry_due_ns <= now) {
		struct sync_result res;
		size_t before = rc->sync.nfails;

		rc->retry_due_ns = 0;
		sync_retry(&rc->sync, now, &res);
		log_info("retried frontends that failed", "retried=%zu added=%u updated=%u failed=%u "
			 "dropped_held=%u", before, res.added, res.updated, res.failed, res.conflicts);
		schedule_retry(rc, true);
		reap(rc, false);
	}
}

void reconcile_stop(struct reconcile *rc)
{
	latency_log(&rc->lat, now_ns());
	/* Reclaim what we can; anything left is collected by the next agent's adoption. */
	reap(rc, true);
}

void reconcile_close(struct reconcile *rc)
{
	if (!rc)
		return;
	json_decref(rc->dirty);
	json_decref(rc->conflicted);
	sync_fini(&rc->sync);
	datapath_close(rc->dp);
	free(rc);
}
