// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "watch_stream.h"

/* First allocation for a partial line; most events are a few KiB. */
#define WATCH_BUF_MIN 65536

void watch_stream_init(struct watch_stream *w, size_t max_line)
{
	memset(w, 0, sizeof(*w));
	w->max_line = max_line;
}

void watch_stream_fini(struct watch_stream *w)
{
	if (!w)
		return;
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

/* Append to the partial line, growing geometrically but never past max_line. */
static int append(struct watch_stream *w, const char *p, size_t n)
{
	size_t need = w->len + n;

	if (need > w->max_line)
		return -E2BIG;
	if (need > w->cap) {
		size_t cap = w->cap ? w->cap : WATCH_BUF_MIN;
		char *b;

		while (cap < need)
			cap *= 2;
		if (cap > w->max_line)
			cap = w->max_line;
		b = realloc(w->buf, cap);
		if (!b)
			return -ENOMEM;
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len = need;
	return 0;
}

int watch_stream_feed(struct watch_stream *w, const char *data, size_t n,
		      int (*line)(void *arg, const char *p, size_t n), void *arg)
{
	const char *end = data + n, *nl;
	int ret;

	/* The buffer never holds a newline, so only the new bytes need scanning. */
	while (data < end && (nl = memchr(data, '\n', (size_t)(end - data)))) {
		size_t part = (size_t)(nl - data);

		if (w->len) {
			ret = append(w, data, part);
			if (ret)
				return ret;
			ret = line(arg, w->buf, w->len);
			w->len = 0;
		} else if (part > w->max_line) {
			return -E2BIG;
		} else {
			/* A whole line inside this read: hand it over without copying. */
			ret = part ? line(arg, data, part) : 0;
		}
		if (ret)
			return ret;
		data = nl + 1;
	}
	return data < end ? append(w, data, (size_t)(end - data)) : 0;
}

static const struct {
	const char *name;
	enum watch_event_type type;
} types[] = {
	{ "ADDED", WATCH_ADDED },	{ "MODIFIED", WATCH_MODIFIED }, { "DELETED", WATCH_DELETED },
	{ "BOOKMARK", WATCH_BOOKMARK }, { "ERROR", WATCH_ERROR },
};

int watch_event_decode(const char *line, size_t n, enum watch_event_type *type, json_t **object,
		       char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *ev = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr), *obj;
	json_t *t;
	int ret = -EBADMSG;

	*object = NULL;
	if (!ev) {
		snprintf(err, errlen, "not JSON: %s at byte %d", jerr.text, jerr.position);
		return -EBADMSG;
	}
	t = json_object_get(ev, "type");
	obj = json_object_get(ev, "object");
	if (!json_is_string(t)) {
		snprintf(err, errlen, "event without a type");
		goto cleanup;
	}
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "event without an object");
		goto cleanup;
	}
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		/* By length too: "ADDED\u0000x" is not ADDED. */
		if (json_string_length(t) == strlen(types[i].name) &&
		    !strcmp(json_string_value(t), types[i].name)) {
			*type = types[i].type;
			*object = json_incref(obj);
			ret = 0;
			goto cleanup;
		}
	}
	snprintf(err, errlen, "unknown event type");
cleanup:
	json_decref(ev);
	return ret;
}
