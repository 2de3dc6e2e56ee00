// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent: one thread, one epoll loop. A source (a file, or list+watch of the API server)
 * feeds objects, the model turns them into the desired state, sync writes the difference.
 * Idle means asleep in epoll_wait.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#include "agent.h"
#include "kube_client.h"
#include "kubeconfig.h"
#include "log.h"
#include "model.h"
#include "sock_lb.h"
#include "source.h"
#include "source_api.h"
#include "sync.h"

/* How long replaced backend sets stay readable: far longer than any program run holds a
 * looked-up set id, short enough that churn does not pile up slots. */
#define SLOT_GRACE_NS (1000ULL * 1000 * 1000)
/* Event-to-map latency is summarised in the log this often (when there were events). */
#define LATENCY_LOG_NS (60ULL * 1000 * 1000 * 1000)
/* Watches end after a timeoutSeconds drawn from this range, as kube-proxy's informers do. */
#define WATCH_MIN_S 300
#define WATCH_MAX_S 600
/* Frontends that could not be written (map full, ENOMEM) are retried on their own after a
 * backoff that doubles from the first to the last value (jittered): a full map stays full
 * until something is removed, which retries at once. */
#define RETRY_MIN_NS (5ULL * 1000 * 1000 * 1000)
#define RETRY_MAX_NS (300ULL * 1000 * 1000 * 1000)
/* Services named in a "not programmed" log line; the rest are counted. */
#define FAIL_NAMES_MAX 10
/* Skipped-object warnings logged per apply; the rest are counted in one line. */
#define WARN_MAX 50
/* Latency histogram: bucket i counts latencies in [2^i, 2^(i+1)) microseconds. */
#define LAT_BUCKETS 32

struct latency {
	uint64_t n, sum_ns, max_ns;
	uint64_t hist[LAT_BUCKETS];
};

struct agent {
	const struct agent_opts *o;
	struct model_opts mo;
	struct datapath *dp;
	struct sync sync;
	int epfd, sigfd, inofd, timerfd;
	/* file source */
	int ino_wd;
	char dir[PATH_MAX];
	const char *base; /* file name inside dir, what inotify reports */
	/* API source */
	struct kube_config kcfg;
	struct kube_client *kc;
	struct api_source *api;
	json_t *dirty;	    /* "ns/name" of services to recompute at the end of this batch */
	json_t *conflicted; /* services whose VIP:port another service still holds */
	struct latency lat;
	uint64_t lat_logged_ns;
	uint64_t reap_due_ns;
	uint64_t cred_due_ns; /* next periodic credential refresh (token file re-read) */
	uint64_t retry_due_ns; /* frontends that failed to write are retried then */
	uint64_t retry_backoff_ns;
	size_t fails_logged; /* failures the last "map full" lines described */
	unsigned warned, unwarned; /* skipped-object warnings this apply: logged, not logged */
	struct stat file_st;  /* what the file was at the last read, to see real changes */
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
	struct agent *a = arg;

	/* A file of thousands of bad objects gets a sample and a count, not thousands of lines. */
	if (a->warned >= WARN_MAX) {
		a->unwarned++;
		return;
	}
	a->warned++;
	log_warn("object skipped", "kind=%s object=%s/%s reason=\"%s\"", kind, ns, name, why);
}

static void warn_summary(struct agent *a)
{
	if (a->unwarned)
		log_warn("more objects skipped, not logged one by one", "count=%u", a->unwarned);
	a->warned = a->unwarned = 0;
}

static const char *agent_holder(void *ctx, const struct bpfsvc_fe_key *key)
{
	return sync_holder(ctx, key);
}

/* One timerfd serves every deadline: slot reaping, API retries, the latency summary. */
static void arm_timer(struct agent *a)
{
	uint64_t due = a->reap_due_ns, api = a->api ? api_source_next_deadline(a->api) : 0;
	struct itimerspec its = {};

	if (api && (!due || api < due))
		due = api;
	if (a->cred_due_ns && (!due || a->cred_due_ns < due))
		due = a->cred_due_ns;
	if (a->retry_due_ns && (!due || a->retry_due_ns < due))
		due = a->retry_due_ns;
	if (a->lat.n && (!due || a->lat_logged_ns + LATENCY_LOG_NS < due))
		due = a->lat_logged_ns + LATENCY_LOG_NS;
	if (due) {
		its.it_value.tv_sec = (time_t)(due / 1000000000ULL);
		its.it_value.tv_nsec = (long)(due % 1000000000ULL);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(a->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void reap(struct agent *a, bool all)
{
	uint64_t n = sync_reap(&a->sync, now_ns(), all, &a->reap_due_ns);

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

static uint32_t stage_capacity(const struct agent *a, enum sync_stage st)
{
	const struct pinned_maps *m = datapath_maps(a->dp);

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
static void log_failures(struct agent *a)
{
	for (int st = 0; st < SYNC_STAGES; st++) {
		char names[FAIL_NAMES_MAX * (SYNC_OWNER_LEN + 2)] = "", last[SYNC_OWNER_LEN] = "";
		size_t off = 0, nfe = 0, nsvc = 0, shown = 0;
		int err = 0;

		for (size_t i = 0; i < a->sync.nfails; i++) {
			const struct sync_failure *f = &a->sync.fails[i];
			char key[SYNC_OWNER_LEN];

			if ((int)f->stage != st)
				continue;
			nfe++;
			err = f->err;
			snprintf(key, sizeof(key), "%s/%s", f->fe.svc.ns, f->fe.svc.name);
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
				stage_map(st), stage_capacity(a, st), nfe, nsvc, names,
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
static void schedule_retry(struct agent *a, bool grow)
{
	uint64_t b = a->retry_backoff_ns;

	if (!a->sync.nfails) {
		a->retry_due_ns = a->retry_backoff_ns = 0;
		a->fails_logged = 0;
		return;
	}
	if (!grow && a->retry_due_ns) {
		if (a->sync.nfails != a->fails_logged) {
			log_failures(a);
			a->fails_logged = a->sync.nfails;
		}
		return;
	}
	log_failures(a);
	a->fails_logged = a->sync.nfails;
	b = !b ? RETRY_MIN_NS : b * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : b * 2;
	a->retry_backoff_ns = b;
	/* 75..125 % of the backoff, so agents on many nodes do not retry in step */
	a->retry_due_ns = now_ns() + b * 3 / 4 + (uint64_t)((double)b / 2 * (rand() / (RAND_MAX + 1.0)));
}

static void log_sync(struct agent *a, const char *why, const struct sync_result *res,
		     uint64_t build_ns, uint64_t sync_ns)
{
	a->generation++;
	log_info("sync done",
		 "gen=%llu reason=%s frontends=%zu added=%u updated=%u removed=%u unchanged=%u "
		 "failed=%u writes=%llu parse_us=%llu sync_us=%llu",
		 (unsigned long long)a->generation, why, a->sync.n, res->added, res->updated,
		 res->removed, res->unchanged, res->failed, (unsigned long long)res->writes,
		 (unsigned long long)(build_ns / 1000), (unsigned long long)(sync_ns / 1000));
	/* Only a well-formed source with no services gets here with nothing left. */
	if (!a->sync.n && res->removed)
		log_warn("the source holds no services: every frontend was removed", "removed=%u",
			 res->removed);
}

/* Bring the maps to the state of all of objs. */
static int apply_all(struct agent *a, json_t *objs, const char *why, uint64_t t0)
{
	struct model_state want = {};
	struct sync_result res;
	uint64_t t1, t2;
	int ret;

	ret = model_build(objs, &a->mo, model_warn, a, &want);
	warn_summary(a);
	if (ret) {
		log_err("cannot build the desired state", "error=\"%s\"", strerror(-ret));
		goto cleanup;
	}
	t1 = now_ns();
	ret = sync_apply(&a->sync, &want, t1, &res);
	t2 = now_ns();
	log_sync(a, why, &res, t1 - t0, t2 - t1);
	schedule_retry(a, true);
	reap(a, false);
cleanup:
	model_state_free(&want);
	return ret;
}

/* ---- file source ---- */

/* Read the file and bring the maps to it. A file that does not parse changes nothing. */
static int file_reload(struct agent *a, const char *why)
{
	json_t *objs = NULL;
	char err[512] = "";
	uint64_t t0 = now_ns();
	int ret;

	stat(a->o->from_file, &a->file_st);
	ret = source_file_load(a->o->from_file, &objs, err, sizeof(err));
	if (ret) {
		log_err("cannot read objects, keeping the current state", "file=%s error=\"%s\"",
			a->o->from_file, err);
		return ret;
	}
	ret = apply_all(a, objs, why, t0);
	json_decref(objs);
	/* The parse tree of a large file is gone: give its pages back rather than keep the peak
	 * of the largest file ever read. */
	malloc_trim(0);
	return ret;
}

static int watch_file(struct agent *a)
{
	char *slash;

	snprintf(a->dir, sizeof(a->dir), "%s", a->o->from_file);
	slash = strrchr(a->dir, '/');
	if (slash) {
		*slash = 0;
		a->base = a->o->from_file + (slash - a->dir) + 1;
		if (!*a->dir)
			snprintf(a->dir, sizeof(a->dir), "/");
	} else {
		snprintf(a->dir, sizeof(a->dir), ".");
		a->base = a->o->from_file;
	}
	/* Watch the directory: editors and `kubectl ... > f.tmp && mv` replace the file, which
	 * a watch on the file itself would lose; a ConfigMap volume swaps a symlink
	 * (..data) whose name is not the file's. */
	a->ino_wd = inotify_add_watch(a->inofd, a->dir,
				      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE);
	return a->ino_wd < 0 ? -errno : 0;
}

/* Drain inotify; true if the file (followed through symlinks) is not what was last read. */
static bool file_changed(struct agent *a)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct stat st;
	bool any = false;

	while (read(a->inofd, buf, sizeof(buf)) > 0)
		any = true;
	if (!any || stat(a->o->from_file, &st))
		return false;
	return st.st_ino != a->file_st.st_ino || st.st_dev != a->file_st.st_dev ||
	       st.st_size != a->file_st.st_size || st.st_mtim.tv_sec != a->file_st.st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != a->file_st.st_mtim.tv_nsec;
}

/* ---- API source ---- */

static void api_changed(void *arg, const char *svc_key)
{
	struct agent *a = arg;

	json_object_set_new(a->dirty, svc_key, json_true());
}

static void api_resynced(void *arg)
{
	struct agent *a = arg;
	uint64_t t0 = now_ns();
	json_t *objs = api_source_all(a->api);

	/* Everything is recomputed; per-service news is part of it. */
	json_object_clear(a->dirty);
	json_object_clear(a->conflicted);
	if (!objs) {
		log_err("cannot build the desired state", "error=\"%s\"", strerror(ENOMEM));
		return;
	}
	apply_all(a, objs, "resync", t0);
	json_decref(objs);
	malloc_trim(0);
}

static void lat_add(struct latency *l, uint64_t ns)
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
}

/* Upper bound of the bucket holding the q-quantile, in microseconds. */
static uint64_t lat_quantile_us(const struct latency *l, double q)
{
	uint64_t want = (uint64_t)((double)l->n * q), seen = 0;

	for (unsigned b = 0; b < LAT_BUCKETS; b++) {
		seen += l->hist[b];
		if (seen > want)
			return 2ULL << b;
	}
	return 0;
}

static void lat_log(struct agent *a, uint64_t now)
{
	struct latency *l = &a->lat;

	if (!l->n)
		return;
	log_info("event to map latency",
		 "batches=%llu avg_us=%llu p50_us_below=%llu p99_us_below=%llu max_us=%llu",
		 (unsigned long long)l->n, (unsigned long long)(l->sum_ns / l->n / 1000),
		 (unsigned long long)lat_quantile_us(l, 0.5),
		 (unsigned long long)lat_quantile_us(l, 0.99),
		 (unsigned long long)(l->max_ns / 1000));
	memset(l, 0, sizeof(*l));
	a->lat_logged_ns = now;
}

/* Recompute one service ("ns/name") from the stores and write its difference. */
static void apply_service(struct agent *a, const char *key, struct sync_result *total)
{
	struct model_state want = {};
	struct sync_result res;
	json_t *svc = api_source_service(a->api, key);
	json_t *slices = api_source_slices(a->api, key);
	char ns[BPFSVC_NS_LEN + 1] = "", name[BPFSVC_NAME_LEN + 1] = "";
	const char *slash = strchr(key, '/');
	int ret = 0;

	if (slash) {
		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
		snprintf(name, sizeof(name), "%s", slash + 1);
	}
	if (svc && slices)
		ret = model_add_service(svc, slices, &a->mo, model_warn, a, &want);
	warn_summary(a);
	json_decref(slices);
	if (ret == -ENOMEM || (!slices && svc)) {
		log_err("cannot build the desired state", "service=%s error=\"%s\"", key,
			strerror(ENOMEM));
		model_state_free(&want);
		return;
	}
	model_sort(&want);
	sync_apply_service(&a->sync, ns, name, &want, now_ns(), &res);
	model_state_free(&want);
	total->added += res.added;
	total->updated += res.updated;
	total->removed += res.removed;
	total->failed += res.failed;
	total->writes += res.writes;
	/* Another service still holds one of its VIP:ports. Retry after that one changes: a
	 * VIP moving between services may arrive in either order. */
	if (res.conflicts) {
		if (!json_object_get(a->conflicted, key))
			log_warn("frontend held by another service, retrying when it is released",
				 "service=%s count=%u", key, res.conflicts);
		json_object_set_new(a->conflicted, key, json_true());
	} else {
		json_object_del(a->conflicted, key);
	}
}

/* The events of one read are in the stores: recompute the services they touched. */
static void api_batch_end(void *arg, uint64_t recv_ns)
{
	struct agent *a = arg;
	struct sync_result total = {};
	const char *key;
	json_t *v, *retry = NULL;
	size_t n = json_object_size(a->dirty);
	uint64_t done;

	if (!n)
		return;
	json_object_foreach(a->dirty, key, v)
		apply_service(a, key, &total);
	json_object_clear(a->dirty);
	if (total.removed && json_object_size(a->conflicted)) {
		retry = json_deep_copy(a->conflicted);
		json_object_foreach(retry, key, v)
			apply_service(a, key, &total);
		json_decref(retry);
	}
	done = now_ns();
	lat_add(&a->lat, done - recv_ns);
	if (!a->lat_logged_ns)
		a->lat_logged_ns = done;
	log_debug("events applied",
		  "services=%zu added=%u updated=%u removed=%u failed=%u writes=%llu latency_us=%llu",
		  n, total.added, total.updated, total.removed, total.failed,
		  (unsigned long long)total.writes, (unsigned long long)((done - recv_ns) / 1000));
	if (total.failed || !a->sync.nfails)
		schedule_retry(a, false);
	/* Room was freed: what failed for want of it may fit now. */
	if (total.removed && a->sync.nfails)
		a->retry_due_ns = done;
	reap(a, false);
}

static void __attribute__((format(printf, 4, 0)))
api_report(void *arg, enum api_level lvl, const char *msg, const char *fmt, va_list ap)
{
	static const enum log_level map[] = { [API_INFO] = LOG_INFO, [API_WARN] = LOG_WARN,
					      [API_ERR] = LOG_ERR, [API_DEBUG] = LOG_DEBUG };

	(void)arg;
	log_vkv(map[lvl], msg, fmt, ap);
}

/* Configuration errors surface before anything is attached or pinned. */
static int api_config(struct agent *a)
{
	const char *sa = getenv("BPFSVC_SERVICEACCOUNT_DIR");
	char err[512] = "";
	int ret;

	if (a->o->kubeconfig) {
		ret = kubeconfig_load(a->o->kubeconfig, a->o->context, &a->kcfg, err, sizeof(err));
	} else if (a->o->api_server) {
		/* Without kube-proxy the kubernetes Service VIP works only once bpfsvc has
		 * programmed it: a freshly booted node must reach the API server directly. */
		ret = kubeconfig_in_cluster("-", "-", sa ? sa : KUBE_SA_DIR_DEFAULT, &a->kcfg, err,
					    sizeof(err));
		if (!ret)
			ret = kubeconfig_set_server(&a->kcfg, a->o->api_server);
	} else {
		ret = kubeconfig_in_cluster(getenv("KUBERNETES_SERVICE_HOST"),
					    getenv("KUBERNETES_SERVICE_PORT"),
					    sa ? sa : KUBE_SA_DIR_DEFAULT, &a->kcfg, err, sizeof(err));
	}
	if (ret) {
		log_err("cannot configure the API client", "error=\"%s\"", err);
		return ret;
	}
	for (size_t i = 0; i < a->kcfg.nwarnings; i++)
		log_warn("insecure file permissions", "warning=\"%s\"", a->kcfg.warnings[i]);
	if (a->kcfg.insecure)
		log_warn("TLS verification of the API server is off (insecure-skip-tls-verify)",
			 "server=%s", a->kcfg.server);
	if (a->kcfg.tls_server_name)
		log_warn("tls-server-name is not supported, the server name is checked against the URL",
			 "tls_server_name=%s", a->kcfg.tls_server_name);
	return 0;
}

static int api_setup(struct agent *a)
{
	static const struct api_source_cbs cbs = {
		.changed = api_changed,
		.resynced = api_resynced,
		.batch_end = api_batch_end,
		.report = api_report,
	};
	struct kube_client_opts ko = {
		.request_timeout_s = a->o->request_timeout_s,
		.idle_timeout_s = a->o->watch_idle_timeout_s,
		.http1 = a->o->api_http1,
		.health_idle_s = a->o->http2_read_idle_s,
		.health_timeout_s = a->o->http2_ping_timeout_s,
	};
	struct api_source_opts ao = { WATCH_MIN_S, WATCH_MAX_S, a->o->backoff_max_s };
	char err[512] = "";
	int ret;

	a->dirty = json_object();
	a->conflicted = json_object();
	if (!a->dirty || !a->conflicted)
		return -ENOMEM;
	ret = kube_client_new(&a->kcfg, &ko, a->epfd, &a->kc, err, sizeof(err));
	if (ret) {
		log_err("cannot set up the API client", "error=\"%s\"", err);
		return ret;
	}
	ret = api_source_new(a->kc, &ao, &cbs, a, &a->api);
	if (ret)
		return ret;
	log_info("watching the API server", "server=%s config=\"%s\" node=%s", a->kcfg.server,
		 a->kcfg.where, a->mo.node_name);
	api_source_start(a->api, now_ns());
	if (a->kcfg.token_file)
		a->cred_due_ns = now_ns() + KUBE_TOKEN_REREAD_NS;
	return 0;
}

/* ---- loop ---- */

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static void on_signal(struct agent *a, bool *stop)
{
	struct signalfd_siginfo si;

	if (read(a->sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo != SIGHUP) {
		log_info("exiting, datapath stays pinned and serving", "signal=%s",
			 strsignal((int)si.ssi_signo));
		*stop = true;
	} else if (a->api) {
		if (api_source_synced(a->api))
			api_resynced(a);
	} else {
		file_reload(a, "sighup");
	}
}

static void on_timer(struct agent *a)
{
	uint64_t ticks, now = now_ns();

	if (read(a->timerfd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	if (a->reap_due_ns && a->reap_due_ns <= now)
		reap(a, false);
	if (a->api)
		api_source_tick(a->api, now);
	if (a->cred_due_ns && a->cred_due_ns <= now) {
		char err[256] = "";

		/* Rotated service account tokens are picked up even while no request starts. */
		if (kube_client_refresh_cred(a->kc, now, false, err, sizeof(err)))
			log_err("cannot refresh credentials", "error=\"%s\"", err);
		a->cred_due_ns = now + KUBE_TOKEN_REREAD_NS;
	}
	if (a->lat.n && a->lat_logged_ns + LATENCY_LOG_NS <= now)
		lat_log(a, now);
	if (a->retry_due_ns && a->retry_due_ns <= now) {
		struct sync_result res;
		size_t before = a->sync.nfails;

		a->retry_due_ns = 0;
		sync_retry(&a->sync, now, &res);
		log_info("retried frontends that failed", "retried=%zu added=%u updated=%u failed=%u "
			 "dropped_held=%u", before, res.added, res.updated, res.failed, res.conflicts);
		schedule_retry(a, true);
		reap(a, false);
	}
}

static int loop(struct agent *a)
{
	bool stop = false;

	while (!stop) {
		struct epoll_event evs[16];
		int n;

		arm_timer(a);
		n = epoll_wait(a->epfd, evs, 16, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !stop; i++) {
			int fd = evs[i].data.fd;

			if (fd == a->sigfd)
				on_signal(a, &stop);
			else if (fd == a->inofd && file_changed(a))
				file_reload(a, "file-changed");
			else if (fd == a->timerfd)
				on_timer(a);
			else if (a->kc && fd == kube_client_timer_fd(a->kc))
				kube_client_on_timer(a->kc);
			else if (a->kc && kube_client_owns_fd(a->kc, fd))
				kube_client_on_fd(a->kc, fd, evs[i].events);
		}
	}
	return 0;
}

int agent_run(const struct agent_opts *o)
{
	struct agent a = { .o = o, .epfd = -1, .sigfd = -1, .inofd = -1, .timerfd = -1 };
	struct map_sizes sizes = { o->max_frontends, o->max_services, o->max_slots, o->max_revnat };
	char err[512] = "";
	uint64_t gc = 0;
	sigset_t mask;
	int ret;

	a.mo.node_name = o->node_name;
	a.mo.holder = agent_holder;
	a.mo.holder_ctx = &a.sync;
	srand((unsigned)(now_ns() ^ (uint64_t)getpid()));
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* A closed API connection must not kill us. */
	signal(SIGPIPE, SIG_IGN);

	if (!o->from_file && (ret = api_config(&a)))
		goto cleanup;
	ret = datapath_open(o->pin_path, o->cgroup, &sizes, &a.dp, err, sizeof(err));
	if (ret) {
		log_err("cannot set up the datapath", "error=\"%s\"", err);
		goto cleanup;
	}
	ret = sync_init(&a.sync, &datapath_sync_ops, (void *)datapath_maps(a.dp),
			datapath_maps(a.dp)->max_services, SLOT_GRACE_NS);
	if (ret)
		goto cleanup;
	ret = datapath_adopt(a.dp, &a.sync, &gc);
	if (ret) {
		log_err("cannot read the pinned maps", "error=\"%s\"", strerror(-ret));
		goto cleanup;
	}
	log_info("datapath ready", "pin_path=%s cgroup=%s adopted_frontends=%zu gc_slots=%llu",
		 o->pin_path, o->cgroup, a.sync.n, (unsigned long long)gc);

	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	a.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a.epfd < 0 || a.sigfd < 0 || a.timerfd < 0) {
		ret = -errno;
		log_err("cannot set up the event loop", "error=\"%s\"", strerror(errno));
		goto cleanup;
	}
	if ((ret = epoll_add(a.epfd, a.sigfd)) || (ret = epoll_add(a.epfd, a.timerfd)))
		goto cleanup;
	if (o->from_file) {
		a.inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		ret = a.inofd < 0 ? -errno : watch_file(&a);
		if (!ret)
			ret = epoll_add(a.epfd, a.inofd);
		if (ret) {
			log_err("cannot watch the file", "dir=%s error=\"%s\"", a.dir, strerror(-ret));
			goto cleanup;
		}
		/* A bad file at start is not fatal: what is pinned keeps serving until fixed. */
		file_reload(&a, "start");
	} else {
		/* Nothing is programmed until both initial lists are in: what is pinned keeps
		 * serving meanwhile, so a restart causes no transient rejects. */
		ret = api_setup(&a);
		if (ret)
			goto cleanup;
	}
	ret = loop(&a);
	lat_log(&a, now_ns());
	/* Reclaim what we can; anything left is collected by the next agent's adoption. */
	reap(&a, true);
cleanup:
	api_source_free(a.api);
	kube_client_free(a.kc);
	kube_config_free(&a.kcfg);
	json_decref(a.dirty);
	json_decref(a.conflicted);
	if (a.timerfd >= 0)
		close(a.timerfd);
	if (a.inofd >= 0)
		close(a.inofd);
	if (a.sigfd >= 0)
		close(a.sigfd);
	if (a.epfd >= 0)
		close(a.epfd);
	sync_fini(&a.sync);
	datapath_close(a.dp);
	return ret;
}
