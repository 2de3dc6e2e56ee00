// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The API-server source behind the source operations: its configuration (kubeconfig or
 * in-cluster), the HTTP client in the agent's event loop, the periodic credential refresh,
 * and list+watch (source_api.c) reporting to the sink.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "kube_client.h"
#include "kubeconfig.h"
#include "log.h"
#include "source.h"
#include "source_api.h"

/* Watches end after a timeoutSeconds drawn from this range, as kube-proxy's informers do. */
#define WATCH_MIN_S 300
#define WATCH_MAX_S 600

struct api_src {
	struct source src;
	const struct agent_opts *o;
	struct kube_config kcfg;
	struct kube_client *kc;
	struct api_source *api;
	uint64_t cred_due_ns; /* next periodic credential refresh (token file re-read) */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void api_changed(void *arg, const char *svc_key)
{
	struct source *s = arg;

	s->sink.changed(s->sink.arg, svc_key);
}

static void api_resynced(void *arg)
{
	struct source *s = arg;

	s->sink.resync(s->sink.arg, "resync");
}

static void api_batch_end(void *arg, uint64_t recv_ns)
{
	struct source *s = arg;

	s->sink.batch_end(s->sink.arg, recv_ns);
}

static void __attribute__((format(printf, 4, 0)))
api_report(void *arg, enum api_level lvl, const char *msg, const char *fmt, va_list ap)
{
	static const enum log_level map[] = { [API_INFO] = LOG_INFO, [API_WARN] = LOG_WARN,
					      [API_ERR] = LOG_ERR, [API_DEBUG] = LOG_DEBUG };

	(void)arg;
	log_vkv(map[lvl], msg, fmt, ap);
}

/* The exec plugin ran in the background and failed. */
static void cred_failed(void *arg, const char *err)
{
	(void)arg;
	log_err("cannot refresh credentials", "error=\"%s\"", err);
}

static int api_start(struct source *s, int epfd, const struct source_sink *sink, uint64_t now)
{
	static const struct api_source_cbs cbs = {
		.changed = api_changed,
		.resynced = api_resynced,
		.batch_end = api_batch_end,
		.report = api_report,
	};
	struct api_src *a = (struct api_src *)s;
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

	s->sink = *sink;
	ret = kube_client_new(&a->kcfg, &ko, epfd, &a->kc, err, sizeof(err));
	if (ret) {
		log_err("cannot set up the API client", "error=\"%s\"", err);
		return ret;
	}
	ret = api_source_new(a->kc, &ao, &cbs, s, &a->api);
	if (ret)
		return ret;
	kube_client_set_cred_report(a->kc, cred_failed, a);
	log_info("watching the API server", "server=%s config=\"%s\" node=%s", a->kcfg.server,
		 a->kcfg.where, a->o->node_name);
	/* Nothing is programmed until both initial lists are in: what is pinned keeps serving
	 * meanwhile, so a restart causes no transient rejects. */
	api_source_start(a->api, now);
	if (a->kcfg.token_file)
		a->cred_due_ns = now_ns() + KUBE_TOKEN_REREAD_NS;
	return 0;
}

static void api_on_ready(struct source *s, int fd, uint32_t epoll_events)
{
	struct api_src *a = (struct api_src *)s;

	if (fd == kube_client_timer_fd(a->kc))
		kube_client_on_timer(a->kc);
	else if (kube_client_owns_fd(a->kc, fd))
		kube_client_on_fd(a->kc, fd, epoll_events);
}

static uint64_t api_next_deadline(const struct source *s)
{
	const struct api_src *a = (const struct api_src *)s;
	uint64_t due = api_source_next_deadline(a->api);

	if (a->cred_due_ns && (!due || a->cred_due_ns < due))
		due = a->cred_due_ns;
	return due;
}

static void api_tick(struct source *s, uint64_t now)
{
	struct api_src *a = (struct api_src *)s;

	api_source_tick(a->api, now);
	if (a->cred_due_ns && a->cred_due_ns <= now) {
		char err[256] = "";

		/* Rotated service account tokens are picked up even while no request starts. */
		if (kube_client_refresh_cred(a->kc, now, false, err, sizeof(err)))
			log_err("cannot refresh credentials", "error=\"%s\"", err);
		a->cred_due_ns = now + KUBE_TOKEN_REREAD_NS;
	}
}

static int api_snapshot(struct source *s, json_t **objects)
{
	int ret = api_source_all(((struct api_src *)s)->api, objects);

	if (ret)
		log_err("cannot build the desired state", "error=\"%s\"", strerror(-ret));
	return ret;
}

static int api_service(struct source *s, const char *svc_key, json_t **svc, json_t **slices)
{
	struct api_src *a = (struct api_src *)s;

	*slices = NULL;
	*svc = api_source_service(a->api, svc_key);
	return *svc ? api_source_slices(a->api, svc_key, slices) : 0;
}

static void api_refresh(struct source *s)
{
	if (api_source_synced(((struct api_src *)s)->api))
		api_resynced(s);
}

static void api_free(struct source *s)
{
	struct api_src *a = (struct api_src *)s;

	api_source_free(a->api);
	kube_client_free(a->kc);
	kube_config_free(&a->kcfg);
	free(a);
}

static const struct source_ops api_ops = {
	.start = api_start,
	.on_ready = api_on_ready,
	.next_deadline = api_next_deadline,
	.tick = api_tick,
	.snapshot = api_snapshot,
	.service = api_service,
	.refresh = api_refresh,
	.free = api_free,
};

/* Where the API server is and who we are to it. */
static int api_config(struct api_src *a)
{
	const struct agent_opts *o = a->o;
	const char *sa = getenv("BPFSVC_SERVICEACCOUNT_DIR");
	char err[512] = "";
	int ret;

	if (o->kubeconfig) {
		ret = kubeconfig_load(o->kubeconfig, o->context, &a->kcfg, err, sizeof(err));
	} else if (o->api_server) {
		/* Without kube-proxy the kubernetes Service VIP works only once bpfsvc has
		 * programmed it: a freshly booted node must reach the API server directly. */
		ret = kubeconfig_in_cluster("-", "-", sa ? sa : KUBE_SA_DIR_DEFAULT, &a->kcfg, err,
					    sizeof(err));
		if (!ret)
			ret = kubeconfig_set_server(&a->kcfg, o->api_server);
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

int source_api_open(const struct agent_opts *o, struct source **out)
{
	struct api_src *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	a->src.ops = &api_ops;
	a->o = o;
	ret = api_config(a);
	if (ret) {
		api_free(&a->src);
		return ret;
	}
	*out = &a->src;
	return 0;
}
