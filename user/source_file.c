// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
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
