// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "fileio.h"
#include "log.h"
#include "source.h"
#include "yamljson.h"

/* Lists may nest (a List of Lists from concatenated kubectl output): flatten them all. */
#define MAX_LIST_DEPTH 8

static const char *json_kind_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "a bare array";
	case JSON_STRING:
		return "text";
	case JSON_NULL:
		return "nothing (null)";
	default:
		return "a single value";
	}
}

static bool nonempty_string(json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0;
}

/*
 * Append the objects doc stands for to out. doc must be a Kubernetes object (kind and
 * apiVersion) or a List of them: an error page, a kubectl error line or an empty object is
 * not "no services", it is not a source at all. Items of a typed list (ServiceList) may omit
 * kind and apiVersion, as the API server writes them.
 */
static int flatten(json_t *doc, json_t *out, int depth, const char *item_kind, size_t item_klen,
		   const char *where, char *err, size_t errlen)
{
	json_t *kindv = json_object_get(doc, "kind"), *items = json_object_get(doc, "items");
	const char *kind = json_string_value(kindv);
	size_t klen = kind ? strlen(kind) : 0;
	json_t *it;
	size_t i;

	if (depth > MAX_LIST_DEPTH) {
		snprintf(err, errlen, "%s: lists nested more than %d deep", where, MAX_LIST_DEPTH);
		return -EINVAL;
	}
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "%s is %s, not a Kubernetes object or List", where,
			 json_kind_name(doc));
		return -EINVAL;
	}
	if (!kindv && item_kind) {
		json_t *k = json_stringn(item_kind, item_klen);

		if (!k || json_object_set_new(doc, "kind", k))
			return -ENOMEM;
		return json_array_append(out, doc) ? -ENOMEM : 0;
	}
	if (!nonempty_string(kindv) || (!item_kind && !nonempty_string(json_object_get(doc, "apiVersion")))) {
		snprintf(err, errlen, "%s has no %s, not a Kubernetes object or List", where,
			 !nonempty_string(kindv) ? "kind" : "apiVersion");
		return -EINVAL;
	}
	if (klen < 4 || strcmp(kind + klen - 4, "List"))
		return json_array_append(out, doc) ? -ENOMEM : 0;
	/* "items": null is how Go prints an empty list */
	if (!json_is_array(items) && !json_is_null(items)) {
		snprintf(err, errlen, "%s is a %s without an items list", where, kind);
		return -EINVAL;
	}
	json_array_foreach(items, i, it) {
		char sub[64];
		int ret;

		snprintf(sub, sizeof(sub), "%s item %zu", depth ? "nested" : "List", i);
		/* "ServiceList" -> its items are "Service" */
		ret = flatten(it, out, depth + 1, klen > 4 ? kind : NULL, klen - 4, sub, err,
			      errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Objects that cannot be what the file means to say: an API error (kind Status, what
 * `kubectl get --raw` or curl leave behind on a 401), or objects none of which is a Service or
 * an EndpointSlice (`kubectl get pods -o json` into the wrong file). Applying either would
 * remove every service; only an empty List means that.
 */
static int check_kinds(json_t *objs, char *err, size_t errlen)
{
	size_t i, ours = 0;
	json_t *o;

	json_array_foreach(objs, i, o) {
		const char *kind = json_string_value(json_object_get(o, "kind"));

		if (!strcmp(kind, "Status")) {
			const char *why = json_string_value(json_object_get(o, "message"));

			snprintf(err, errlen, "object %zu is an API error (Status: %.200s)", i,
				 why ? why : "no message");
			return -EINVAL;
		}
		if (!strcmp(kind, "Service") || !strcmp(kind, "EndpointSlice"))
			ours++;
	}
	if (json_array_size(objs) && !ours) {
		snprintf(err, errlen, "no Service or EndpointSlice among its %zu objects (first: %.64s)",
			 json_array_size(objs),
			 json_string_value(json_object_get(json_array_get(objs, 0), "kind")));
		return -EINVAL;
	}
	return 0;
}

int source_parse(const char *buf, size_t len, json_t **objects, char *err, size_t errlen)
{
	json_t *doc = NULL, *out = NULL;
	json_error_t jerr;
	size_t i = 0;
	int ret;

	while (i < len && buf[i] && strchr(" \t\r\n", buf[i]))
		i++;
	if (i == len) {
		/* `kubectl ... > file` truncates first: an empty file is a failed dump */
		snprintf(err, errlen, "%s", len ? "only whitespace" : "the file is empty");
		ret = -EINVAL;
		goto cleanup;
	}
	/* JSON gets jansson's precise errors; anything else is YAML (a JSON superset). A key
	 * given twice is ambiguous (which one did the author mean?): reject it. */
	if (buf[i] == '{' || buf[i] == '[') {
		doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
		if (!doc) {
			snprintf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column,
				 jerr.text);
			ret = -EINVAL;
			goto cleanup;
		}
	} else {
		ret = yamljson_parse(buf, len, &doc, err, errlen);
		if (ret)
			goto cleanup;
	}
	out = json_array();
	if (!out) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = flatten(doc, out, 0, NULL, 0, "the document", err, errlen);
	if (ret == -ENOMEM)
		snprintf(err, errlen, "%s", strerror(ENOMEM));
	if (!ret)
		ret = check_kinds(out, err, errlen);
	if (ret)
		goto cleanup;
	*objects = out;
	out = NULL;
cleanup:
	json_decref(doc);
	json_decref(out);
	return ret;
}

int source_file_load(const char *path, json_t **objects, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int ret;

	ret = read_whole_file(path, &buf, &len);
	if (ret) {
		snprintf(err, errlen, "read %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = source_parse(buf, len, objects, err, errlen);
	free(buf);
	return ret;
}

/* ---- the file source: the file, watched with inotify ---- */

struct file_source {
	struct source src;
	const char *path;
	int inofd;
	char dir[PATH_MAX];
	const char *base;    /* file name inside dir, what inotify reports */
	struct stat file_st; /* what the file was at the last read, to see real changes */
};

static int watch_dir(struct file_source *f)
{
	char *slash;
	int wd;

	snprintf(f->dir, sizeof(f->dir), "%s", f->path);
	slash = strrchr(f->dir, '/');
	if (slash) {
		*slash = 0;
		f->base = f->path + (slash - f->dir) + 1;
		if (!*f->dir)
			snprintf(f->dir, sizeof(f->dir), "/");
	} else {
		snprintf(f->dir, sizeof(f->dir), ".");
		f->base = f->path;
	}
	/* Watch the directory: editors and `kubectl ... > f.tmp && mv` replace the file, which
	 * a watch on the file itself would lose; a ConfigMap volume swaps a symlink
	 * (..data) whose name is not the file's. */
	wd = inotify_add_watch(f->inofd, f->dir,
			       IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE);
	return wd < 0 ? -errno : 0;
}

static int file_start(struct source *s, int epfd, const struct source_sink *sink,
		      uint64_t now_ns)
{
	struct file_source *f = (struct file_source *)s;
	struct epoll_event ev = { .events = EPOLLIN };
	int ret;

	(void)now_ns;
	s->sink = *sink;
	f->inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	ret = f->inofd < 0 ? -errno : watch_dir(f);
	ev.data.fd = f->inofd;
	if (!ret && epoll_ctl(epfd, EPOLL_CTL_ADD, f->inofd, &ev))
		ret = -errno;
	if (ret) {
		log_err("cannot watch the file", "dir=%s error=\"%s\"", f->dir, strerror(-ret));
		return ret;
	}
	/* A bad file at start is not fatal: what is pinned keeps serving until fixed. */
	s->sink.resync(s->sink.arg, "start");
	return 0;
}

/* Drain inotify; true if the file (followed through symlinks) is not what was last read. */
static bool file_changed(struct file_source *f)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct stat st;
	bool any = false;

	while (read(f->inofd, buf, sizeof(buf)) > 0)
		any = true;
	if (!any || stat(f->path, &st))
		return false;
	return st.st_ino != f->file_st.st_ino || st.st_dev != f->file_st.st_dev ||
	       st.st_size != f->file_st.st_size || st.st_mtim.tv_sec != f->file_st.st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != f->file_st.st_mtim.tv_nsec;
}

static void file_on_ready(struct source *s, int fd, uint32_t epoll_events)
{
	struct file_source *f = (struct file_source *)s;

	(void)epoll_events;
	if (fd == f->inofd && file_changed(f))
		s->sink.resync(s->sink.arg, "file-changed");
}

static uint64_t file_next_deadline(const struct source *s)
{
	(void)s;
	return 0;
}

static void file_tick(struct source *s, uint64_t now_ns)
{
	(void)s;
	(void)now_ns;
}

/* Read the file. One that does not parse changes nothing. */
static int file_snapshot(struct source *s, json_t **objects)
{
	struct file_source *f = (struct file_source *)s;
	char err[512] = "";
	int ret;

	/* Noted before the read: a change while reading is seen as one more change. */
	if (stat(f->path, &f->file_st))
		memset(&f->file_st, 0, sizeof(f->file_st));
	ret = source_file_load(f->path, objects, err, sizeof(err));
	if (ret)
		log_err("cannot read objects, keeping the current state", "file=%s error=\"%s\"",
			f->path, err);
	return ret;
}

/* Never called: the file source reports no single service. */
static int file_service(struct source *s, const char *svc_key, json_t **svc, json_t **slices)
{
	(void)s;
	(void)svc_key;
	*svc = *slices = NULL;
	return -EOPNOTSUPP;
}

static void file_refresh(struct source *s)
{
	s->sink.resync(s->sink.arg, "sighup");
}

static void file_free(struct source *s)
{
	struct file_source *f = (struct file_source *)s;

	if (f->inofd >= 0)
		close(f->inofd);
	free(f);
}

static const struct source_ops file_ops = {
	.start = file_start,
	.on_ready = file_on_ready,
	.next_deadline = file_next_deadline,
	.tick = file_tick,
	.snapshot = file_snapshot,
	.service = file_service,
	.refresh = file_refresh,
	.free = file_free,
};

int source_file_open(const char *path, struct source **out)
{
	struct file_source *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->src.ops = &file_ops;
	f->path = path;
	f->inofd = -1;
	*out = &f->src;
	return 0;
}
