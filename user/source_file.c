// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "source.h"
#include "yamljson.h"

/* Lists may nest (a List of Lists from concatenated kubectl output): flatten them all. */
static int flatten(json_t *doc, json_t *out, int depth)
{
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	json_t *items = json_object_get(doc, "items");
	size_t klen = kind ? strlen(kind) : 0;
	json_t *it;
	size_t i;

	if (depth > 8)
		return -EINVAL;
	if (json_is_array(doc)) {
		json_array_foreach(doc, i, it) {
			int err = flatten(it, out, depth + 1);

			if (err)
				return err;
		}
		return 0;
	}
	if (!json_is_object(doc))
		return 0;
	if (json_is_array(items) && klen >= 4 && !strcmp(kind + klen - 4, "List")) {
		json_array_foreach(items, i, it) {
			int err;

			/* "ServiceList" -> items are "Service" */
			if (json_is_object(it) && !json_object_get(it, "kind") && klen > 4) {
				json_t *k = json_stringn(kind, klen - 4);

				if (!k || json_object_set_new(it, "kind", k))
					return -ENOMEM;
			}
			err = flatten(it, out, depth + 1);
			if (err)
				return err;
		}
		return 0;
	}
	return json_array_append(out, doc) ? -ENOMEM : 0;
}

int source_parse(const char *buf, size_t len, json_t **objects, char *err, size_t errlen)
{
	json_t *doc = NULL, *out = NULL;
	json_error_t jerr;
	size_t i = 0;
	int ret;

	while (i < len && strchr(" \t\r\n", buf[i]))
		i++;
	/* JSON gets jansson's precise errors; anything else is YAML (a JSON superset). */
	if (i < len && (buf[i] == '{' || buf[i] == '[')) {
		doc = json_loadb(buf, len, 0, &jerr);
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
	ret = flatten(doc, out, 0);
	if (ret) {
		snprintf(err, errlen, "%s", ret == -EINVAL ? "lists nested too deep" : strerror(-ret));
		goto cleanup;
	}
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
