// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * List+watch per resource, as client-go's reflector does it:
 *   LIST (paged: limit + continue) -> store replaced -> WATCH from the list's resourceVersion
 *   -> events update the store -> a watch that ends normally resumes from the last
 *   resourceVersion; 410 Gone (expired) means LIST again; errors back off (0.8 s doubling to
 *   30 s, jittered, reset after a healthy period; Retry-After honoured).
 * 504 "Too large resource version" (a server behind the resourceVersion asked for) also means
 * LIST again, as the reflector does: watching from the same rv would fail the same way. A 403
 * (RBAC) is logged once per resource and verb until access works again.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "array.h"
#include "source_api.h"
#include "source_api_store.h"
#include "watch_stream.h"

#define NS_PER_S 1000000000ULL
#define BACKOFF_MIN_NS (800ULL * 1000000)
/* A resource that has not failed for this long starts again from the smallest backoff. */
#define BACKOFF_RESET_NS (120ULL * NS_PER_S)
/* A watch that ends this soon without a single event counts as a failure (a server that
 * closes every watch at once must not be hammered). */
#define WATCH_SHORT_NS (1ULL * NS_PER_S)
/* A list page larger than this is not an API object we want. */
#define MAX_BODY (256u << 20)
/* Of an error response only the Status message is read; it is small. */
#define MAX_ERROR_BODY (64u << 10)

enum res_state { RS_IDLE, RS_LIST, RS_WATCH, RS_WAIT };

struct res {
	struct api_source *s;
	const char *name; /* "services" */
	const char *path; /* "/api/v1/services" */
	const char *kind; /* item kind, which list items lack */
	const char *group; /* API group, for RBAC messages */
	enum res_state state;
	enum res_state after_wait; /* what RS_WAIT leads to */
	struct kube_req *req;
	char rv[128];		/* resourceVersion to watch from */
	char *cont;		/* continue token while listing */
	json_t *store;		/* "ns/name" -> object */
	json_t *listing;	/* the store being built by a list */
	char *buf;		/* list body, or an error response's Status */
	size_t len, cap;
	struct watch_stream ws;	/* the watch's unfinished event line */
	bool synced;		/* a list completed at least once */
	bool relist;		/* the watch said 410: list again */
	bool bad_stream;	/* the watch sent something we could not parse */
	bool forbidden[2];	/* the last list [0] / watch [1] got 403: said once, not again */
	long err_retry_after;	/* a watch ERROR event's retryAfterSeconds, -1 if none */
	uint64_t wait_until_ns;
	struct api_backoff backoff;
	uint64_t recv_ns;	/* when the current read arrived */
	uint64_t started_ns;	/* when the current request started */
	uint64_t events;	/* watch events received on the current watch */
};

struct api_source {
	struct kube_client *kc;
	struct api_source_opts o;
	struct api_source_cbs cbs;
	void *arg;
	struct res svc, slc;
	json_t *by_svc; /* "ns/svc" -> { slice "ns/name" -> slice } */
	bool synced;	/* both initial lists done: events reach the owner */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void reportf(struct api_source *s, enum api_level lvl, const char *msg, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

static void reportf(struct api_source *s, enum api_level lvl, const char *msg, const char *fmt,
		    ...)
{
	va_list ap;

	va_start(ap, fmt);
	s->cbs.report(s->arg, lvl, msg, fmt, ap);
	va_end(ap);
}

static const char *meta(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

/* Apply one object change to a resource's store (and the slice index). */
static int store_put(struct res *r, json_t *obj, bool deleted)
{
	struct api_source *s = r->s;
	char key[MODEL_KEY_LEN], owner[MODEL_KEY_LEN];
	json_t *old;

	if (model_obj_key(obj, key, sizeof(key)))
		return -EINVAL;
	if (api_obj_prepare(obj, r->kind))
		return -ENOMEM;
	old = json_object_get(r->store, key);
	if (r == &s->slc && old) {
		api_index_del(s->by_svc, old, key, owner, sizeof(owner));
		if (owner[0] && s->synced)
			s->cbs.changed(s->arg, owner);
	}
	if (deleted) {
		json_object_del(r->store, key);
	} else {
		if (json_object_set(r->store, key, obj))
			return -ENOMEM;
		if (r == &s->slc) {
			if (api_index_add(s->by_svc, obj, key, owner, sizeof(owner)))
				return -ENOMEM;
			if (owner[0] && s->synced)
				s->cbs.changed(s->arg, owner);
		}
	}
	if (r == &s->svc && s->synced)
		s->cbs.changed(s->arg, key);
	return 0;
}

static void buf_reset(struct res *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = 0;
}

static int buf_add(struct res *r, const char *p, size_t n)
{
	char *b;

	if (r->len + n + 1 > MAX_BODY)
		return -E2BIG;
	b = array_grow(r->buf, 1, &r->cap, r->len + n + 1, 65536);
	if (!b)
		return -ENOMEM;
	r->buf = b;
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = 0;
	return 0;
}

/* An error response's body: its Status message is all we read, so the rest is dropped. */
static int error_body_add(struct res *r, const char *p, size_t n)
{
	if (r->len >= MAX_ERROR_BODY)
		return 0;
	if (n > MAX_ERROR_BODY - r->len)
		n = MAX_ERROR_BODY - r->len;
	return buf_add(r, p, n);
}

static void start(struct res *r, enum res_state what, uint64_t now_ns);

/* Forget a list in progress: the next list starts from the first page. */
static void restart_list(struct res *r)
{
	r->rv[0] = 0;
	free(r->cont);
	r->cont = NULL;
	json_decref(r->listing);
	r->listing = NULL;
}

uint64_t api_backoff_next(struct api_backoff *b, uint64_t now_ns, uint64_t max_ns,
			  long retry_after_s, double rnd)
{
	uint64_t wait;

	/* Healthy for a while since the last retry was due: start small again. Measured from
	 * when the retry was due, not from the failure, or any wait over the reset period
	 * would reset itself. */
	if (!b->cur_ns || now_ns - b->last_fail_ns > b->last_wait_ns + BACKOFF_RESET_NS)
		b->cur_ns = BACKOFF_MIN_NS;
	/* Jitter in [0.75, 1.25) spreads agents of a whole cluster after an API outage. */
	wait = b->cur_ns * 3 / 4 + (uint64_t)((double)b->cur_ns / 2 * rnd);
	/* The server may ask for a longer wait, never for a shorter one. */
	if (retry_after_s > 0 && (uint64_t)retry_after_s * NS_PER_S > wait)
		wait = (uint64_t)retry_after_s * NS_PER_S;
	b->cur_ns = b->cur_ns * 2 > max_ns ? max_ns : b->cur_ns * 2;
	if (b->cur_ns < BACKOFF_MIN_NS)
		b->cur_ns = BACKOFF_MIN_NS;
	b->last_fail_ns = now_ns;
	b->last_wait_ns = wait;
	return wait;
}

/* Back off before doing `what` again; retry_after_s >= 0 (the server's) may lengthen the wait. */
static void fail(struct res *r, enum res_state what, long retry_after_s, uint64_t now_ns)
{
	uint64_t wait = api_backoff_next(&r->backoff, now_ns,
					 (uint64_t)r->s->o.backoff_max_s * NS_PER_S, retry_after_s,
					 rand() / (RAND_MAX + 1.0));

	r->state = RS_WAIT;
	r->after_wait = what;
	r->wait_until_ns = now_ns + wait;
	reportf(r->s, API_INFO, "retrying later", "resource=%s next=%s in_ms=%llu", r->name,
		what == RS_LIST ? "list" : "watch", (unsigned long long)(wait / 1000000));
}

/* Status objects carry a message worth logging. */
static void status_message(const char *body, size_t len, char *out, size_t outlen)
{
	json_t *st = json_loadb(body, len, 0, NULL);
	const char *m = json_string_value(json_object_get(st, "message"));

	snprintf(out, outlen, "%s", m ? m : "");
	for (char *p = out; *p; p++)
		if (*p == '"')
			*p = '\'';
	json_decref(st);
}

static const char *verb_name(enum res_state what)
{
	return what == RS_LIST ? "list" : "watch";
}

/* A request of this verb got through: if it was refused before, say that it works again. */
static void access_ok(struct res *r, enum res_state what)
{
	bool *f = &r->forbidden[what == RS_WATCH];

	if (!*f)
		return;
	*f = false;
	reportf(r->s, API_INFO, "API access granted again", "resource=%s group=\"%s\" verb=%s",
		r->name, r->group, verb_name(what));
}

/* HTTP errors shared by lists and watches. */
static void http_error(struct res *r, const struct kube_result *res, enum res_state what,
		       uint64_t now)
{
	bool *forbidden = &r->forbidden[what == RS_WATCH];
	char msg[256];
	char err[256] = "";

	status_message(r->buf ? r->buf : "", r->len, msg, sizeof(msg));
	if (res->status == 403) {
		/* RBAC does not change by itself in a second: one clear line, then quiet retries
		 * (with the growing backoff) while what is programmed keeps serving. */
		if (!*forbidden)
			reportf(r->s, API_WARN,
				"forbidden by the API server: grant list/watch on this resource (RBAC)",
				"resource=%s group=\"%s\" verb=%s message=\"%s\"", r->name, r->group,
				verb_name(what), msg);
		*forbidden = true;
		fail(r, what, -1, now);
		return;
	}
	reportf(r->s, res->status == 410 ? API_INFO : API_WARN, "API request failed",
		"resource=%s op=%s status=%ld message=\"%s\"", r->name, verb_name(what),
		res->status, msg);
	if (res->status == 504 && strstr(msg, "Too large resource version")) {
		/* This server is behind the rv we hold (client-go's IsTooLargeResourceVersion
		 * looks at the same message). A fresh list (no rv: the newest) instead of the same
		 * request again, after the backoff and the Retry-After; any other 504 (a proxy's
		 * timeout) is retried as it was. */
		restart_list(r);
		fail(r, RS_LIST, res->retry_after, now);
		return;
	}
	if (res->status == 410) {
		/* Expired continue token or resourceVersion: a fresh list from the start, after
		 * the backoff (a cluster too busy to page its list in time must not be hammered). */
		restart_list(r);
		fail(r, RS_LIST, -1, now);
		return;
	}
	if (res->status == 401 &&
	    kube_client_refresh_cred(r->s->kc, now, true, err, sizeof(err)))
		reportf(r->s, API_ERR, "cannot refresh credentials", "error=\"%s\"", err);
	fail(r, what, (res->status == 429 || res->status == 503) ? res->retry_after : -1, now);
}

/* ---- list ---- */

static int list_data(void *arg, long status, const char *p, size_t n)
{
	struct res *r = arg;

	return status == 200 ? buf_add(r, p, n) : error_body_add(r, p, n);
}

/* The last page is in: the listing replaces the store. Fails (nothing replaced) when the
 * slice index cannot be built. */
static int list_complete(struct res *r)
{
	struct api_source *s = r->s;
	json_t *idx = NULL;

	if (r == &s->slc && api_index_build(r->listing, &idx))
		return -ENOMEM;
	if (idx) {
		json_decref(s->by_svc);
		s->by_svc = idx;
	}
	json_decref(r->store);
	r->store = r->listing;
	r->listing = NULL;
	r->synced = true;
	reportf(s, API_INFO, "list complete", "resource=%s objects=%zu resourceVersion=%s",
		r->name, json_object_size(r->store), r->rv);
	if (!s->synced && s->svc.synced && s->slc.synced)
		s->synced = true;
	/* Every list replaces a store wholesale: the owner rebuilds from both, by difference. */
	if (s->synced)
		s->cbs.resynced(s->arg);
	return 0;
}

/* A list that could not be assembled in memory is dropped whole, never applied in part (a
 * partial list reads as "these services are gone"): what is programmed stays, and the list
 * is tried again after the backoff. */
static void list_abort(struct res *r, uint64_t now)
{
	reportf(r->s, API_ERR, "cannot store the list, keeping the current state",
		"resource=%s error=\"%s\"", r->name, strerror(ENOMEM));
	restart_list(r);
	fail(r, RS_LIST, -1, now);
}

static void list_done(void *arg, const struct kube_result *res)
{
	struct res *r = arg;
	uint64_t now = mono_ns();
	json_error_t jerr;
	json_t *doc = NULL, *items;
	const char *rv, *cont;

	r->req = NULL;
	if (res->curl_code) {
		reportf(r->s, API_WARN, "API request failed", "resource=%s op=list error=\"%s\"",
			r->name, res->error);
		fail(r, RS_LIST, -1, now);
		goto cleanup;
	}
	if (res->status != 200) {
		http_error(r, res, RS_LIST, now);
		goto cleanup;
	}
	/* as the watch decoder and the file source: a key given twice is malformed */
	doc = json_loadb(r->buf ? r->buf : "", r->len, JSON_REJECT_DUPLICATES, &jerr);
	items = json_object_get(doc, "items");
	rv = json_string_value(json_object_get(json_object_get(doc, "metadata"), "resourceVersion"));
	if (!doc || !json_is_array(items) || !rv || strlen(rv) >= sizeof(r->rv)) {
		reportf(r->s, API_WARN, "API response unusable", "resource=%s op=list error=\"%s\"",
			r->name, doc ? "not a list with a resourceVersion" : jerr.text);
		fail(r, RS_LIST, -1, now);
		goto cleanup;
	}
	if (api_list_add(r->listing, items, r->kind)) {
		list_abort(r, now);
		goto cleanup;
	}
	/* The first page's resourceVersion is the list's: later pages repeat it. */
	if (!r->cont)
		snprintf(r->rv, sizeof(r->rv), "%s", rv);
	cont = json_string_value(json_object_get(json_object_get(doc, "metadata"), "continue"));
	free(r->cont);
	r->cont = cont && *cont ? strdup(cont) : NULL;
	if (cont && *cont && !r->cont) {
		list_abort(r, now);
		goto cleanup;
	}
	if (r->cont) {
		start(r, RS_LIST, now);
		goto cleanup;
	}
	access_ok(r, RS_LIST);
	if (list_complete(r)) {
		list_abort(r, now);
		goto cleanup;
	}
	start(r, RS_WATCH, now);
cleanup:
	json_decref(doc);
}

/* ---- watch ---- */

static int watch_line(void *arg, const char *line, size_t n)
{
	struct res *r = arg;
	struct api_source *s = r->s;
	enum watch_event_type type;
	json_t *obj = NULL;
	char err[256];
	const char *rv;
	int ret;

	ret = watch_event_decode(line, n, &type, &obj, err, sizeof(err));
	if (ret) {
		reportf(s, API_WARN, "malformed watch event, resuming the watch",
			"resource=%s error=\"%s\"", r->name, err);
		r->bad_stream = true;
		return -EBADMSG;
	}
	if (type == WATCH_ERROR) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		char msg[256];
		const char *m = json_string_value(json_object_get(obj, "message"));

		snprintf(msg, sizeof(msg), "%s", m ? m : "");
		reportf(s, code == 410 ? API_INFO : API_WARN, "watch error event",
			"resource=%s code=%lld message=\"%s\"", r->name, (long long)code, msg);
		if (code == 410 || (code == 504 && strstr(msg, "Too large resource version"))) {
			/* 504: too large resource version. The reflector relists on it: a watch
			 * from the same rv would only fail again. */
			json_int_t ra = json_integer_value(json_object_get(
				json_object_get(obj, "details"), "retryAfterSeconds"));

			r->relist = true;
			/* Clamped as the Retry-After header is (kube_client). */
			if (code == 504 && ra > 0)
				r->err_retry_after = ra > 60 ? 60 : (long)ra;
		} else {
			r->bad_stream = true;
		}
		ret = -EPROTO;
		goto cleanup;
	}
	rv = meta(obj, "resourceVersion");
	r->events++;
	if (type == WATCH_ADDED || type == WATCH_MODIFIED)
		ret = store_put(r, obj, false);
	else if (type == WATCH_DELETED)
		ret = store_put(r, obj, true);
	if (ret == -EINVAL) {
		reportf(s, API_WARN, "watch event without a name ignored", "resource=%s", r->name);
		ret = 0;
	}
	if (!ret && rv && strlen(rv) < sizeof(r->rv))
		snprintf(r->rv, sizeof(r->rv), "%s", rv);
cleanup:
	json_decref(obj);
	return ret;
}

static int watch_data(void *arg, long status, const char *p, size_t n)
{
	struct res *r = arg;
	struct api_source *s = r->s;
	int ret;

	if (status != 200)
		return error_body_add(r, p, n); /* a Status, read at the end */
	access_ok(r, RS_WATCH);
	r->recv_ns = mono_ns();
	/* Events are newline-delimited; any read may hold part of one or several. */
	ret = watch_stream_feed(&r->ws, p, n, watch_line, r);
	if (ret == -E2BIG)
		reportf(s, API_WARN, "watch event too large, dropping the watch",
			"resource=%s limit_bytes=%zu", r->name, r->ws.max_line);
	else if (ret == -ENOMEM)
		reportf(s, API_ERR, "cannot buffer a watch event, dropping the watch",
			"resource=%s pending_bytes=%zu", r->name, watch_stream_pending(&r->ws));
	if (ret) {
		/* The watch ends here (the transfer is aborted) and resumes after the backoff;
		 * what was buffered goes back now, not at the next watch. */
		if (!r->relist)
			r->bad_stream = true;
		watch_stream_fini(&r->ws);
		/* After freeing a large block glibc raises its mmap threshold, so the next
		 * oversized line would grow in the heap and stay there: hand it back. */
		if (ret == -E2BIG || ret == -ENOMEM)
			malloc_trim(0);
	}
	if (s->synced)
		s->cbs.batch_end(s->arg, r->recv_ns);
	return ret;
}

static void watch_done(void *arg, const struct kube_result *res)
{
	struct res *r = arg;
	uint64_t now = mono_ns();

	r->req = NULL;
	if (r->relist) {
		restart_list(r);
		fail(r, RS_LIST, r->err_retry_after, now);
		return;
	}
	if (res->status && res->status != 200) {
		http_error(r, res, RS_WATCH, now);
		return;
	}
	if (r->bad_stream || res->curl_code) {
		if (!r->bad_stream)
			reportf(r->s, API_WARN, "watch broken, resuming", "resource=%s error=\"%s\"",
				r->name, res->error);
		fail(r, RS_WATCH, -1, now);
		return;
	}
	if (!r->events && now - r->started_ns < WATCH_SHORT_NS) {
		reportf(r->s, API_WARN, "watch ended at once, resuming later", "resource=%s",
			r->name);
		fail(r, RS_WATCH, -1, now);
		return;
	}
	/* The server ended the watch (timeoutSeconds): resume where we were, no relist. */
	reportf(r->s, API_DEBUG, "watch ended, resuming", "resource=%s resourceVersion=%s",
		r->name, r->rv);
	start(r, RS_WATCH, now);
}

static char *escape(const char *s)
{
	return curl_easy_escape(NULL, s, 0);
}

static void start(struct res *r, enum res_state what, uint64_t now_ns)
{
	struct api_source *s = r->s;
	char *path = NULL, *sel = escape(MODEL_LABEL_SELECTOR), *cont = NULL, *rv = NULL;
	char err[256] = "";
	unsigned timeout = 0; /* a watch's timeoutSeconds; 0 for a list */
	int ret = -ENOMEM;

	buf_reset(r);
	watch_stream_fini(&r->ws);
	r->relist = r->bad_stream = false;
	r->err_retry_after = -1;
	r->events = 0;
	r->started_ns = now_ns;
	if (kube_client_refresh_cred(s->kc, now_ns, false, err, sizeof(err)))
		reportf(s, API_ERR, "cannot refresh credentials", "error=\"%s\"", err);
	if (!sel)
		goto out;
	if (what == RS_LIST) {
		if (!r->cont) {
			/* A fresh list: a new store fills while the old one keeps serving. */
			json_decref(r->listing);
			r->listing = json_object();
			if (!r->listing)
				goto out;
		}
		cont = r->cont ? escape(r->cont) : NULL;
		if (r->cont && !cont)
			goto out;
		if (asprintf(&path, "%s?limit=%d&labelSelector=%s%s%s", r->path, API_LIST_LIMIT, sel,
			     cont ? "&continue=" : "", cont ? cont : "") < 0)
			path = NULL;
	} else {
		unsigned span = s->o.watch_max_s - s->o.watch_min_s + 1;

		timeout = s->o.watch_min_s + (unsigned)rand() % span;
		rv = escape(r->rv);
		if (rv && asprintf(&path,
				   "%s?watch=true&allowWatchBookmarks=true&resourceVersion=%s"
				   "&timeoutSeconds=%u&labelSelector=%s",
				   r->path, rv, timeout, sel) < 0)
			path = NULL;
	}
	if (!path)
		goto out;
	ret = kube_client_get(s->kc, path, timeout, what == RS_LIST ? list_data : watch_data,
			      what == RS_LIST ? list_done : watch_done, r, &r->req);
out:
	curl_free(sel);
	curl_free(cont);
	curl_free(rv);
	free(path);
	if (ret) {
		reportf(s, API_ERR, "cannot start API request", "resource=%s error=\"%s\"", r->name,
			strerror(-ret));
		fail(r, what, -1, now_ns);
		return;
	}
	r->state = what;
}

static void res_init(struct res *r, struct api_source *s, const char *name, const char *path,
		     const char *kind, const char *group)
{
	r->s = s;
	r->name = name;
	r->path = path;
	r->kind = kind;
	r->group = group;
	r->err_retry_after = -1;
	r->store = json_object();
	watch_stream_init(&r->ws, WATCH_LINE_MAX);
}

int api_source_new(struct kube_client *kc, const struct api_source_opts *o,
		   const struct api_source_cbs *cbs, void *arg, struct api_source **out)
{
	struct api_source *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->kc = kc;
	s->o = *o;
	s->cbs = *cbs;
	s->arg = arg;
	res_init(&s->svc, s, "services", "/api/v1/services", "Service", "");
	res_init(&s->slc, s, "endpointslices", "/apis/discovery.k8s.io/v1/endpointslices",
		 "EndpointSlice", "discovery.k8s.io");
	s->by_svc = json_object();
	if (!s->svc.store || !s->slc.store || !s->by_svc) {
		api_source_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

static void res_fini(struct res *r)
{
	if (r->req)
		kube_req_cancel(r->s->kc, r->req);
	json_decref(r->store);
	json_decref(r->listing);
	free(r->cont);
	buf_reset(r);
	watch_stream_fini(&r->ws);
}

void api_source_free(struct api_source *s)
{
	if (!s)
		return;
	res_fini(&s->svc);
	res_fini(&s->slc);
	json_decref(s->by_svc);
	free(s);
}

void api_source_start(struct api_source *s, uint64_t now_ns)
{
	start(&s->svc, RS_LIST, now_ns);
	start(&s->slc, RS_LIST, now_ns);
}

uint64_t api_source_next_deadline(const struct api_source *s)
{
	uint64_t a = s->svc.state == RS_WAIT ? s->svc.wait_until_ns : 0;
	uint64_t b = s->slc.state == RS_WAIT ? s->slc.wait_until_ns : 0;

	if (!a || (b && b < a))
		return b;
	return a;
}

void api_source_tick(struct api_source *s, uint64_t now_ns)
{
	struct res *rs[] = { &s->svc, &s->slc };

	for (size_t i = 0; i < 2; i++)
		if (rs[i]->state == RS_WAIT && rs[i]->wait_until_ns <= now_ns)
			start(rs[i], rs[i]->after_wait, now_ns);
}

bool api_source_synced(const struct api_source *s)
{
	return s->synced;
}

json_t *api_source_service(const struct api_source *s, const char *svc_key)
{
	return json_object_get(s->svc.store, svc_key);
}

int api_source_slices(const struct api_source *s, const char *svc_key, json_t **out)
{
	return api_store_slices(s->by_svc, svc_key, out);
}

int api_source_all(const struct api_source *s, json_t **out)
{
	return api_store_all(s->svc.store, s->slc.store, out);
}
