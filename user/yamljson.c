// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * YAML stream -> jansson tree, built from libyaml's event parser so that we see scalar style
 * and tags (the document API loses nothing either, but would hold the whole node graph twice).
 * See yamljson.h for the resolution rules and where they deliberately differ from plain YAML.
 */
#include "yamljson.h"
#include "yamljson_scalar.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MERGE_TAG "tag:yaml.org,2002:merge"

/*
 * Aliases are shared, not copied, so memory stays linear; but anything that walks the result
 * (json_dumps, the model, which warns once per bad object) sees the expanded tree. Cap how many
 * nodes aliases may add so a few hundred bytes of nested aliases cannot stand for billions of
 * nodes (or tens of thousands of log lines): beyond a free allowance, aliases may add at most
 * ALIAS_RATIO times the nodes the document spells out, and never more than MAX_ALIAS_NODES.
 * Manifests use anchors to share a label set or a port list, far below either bound.
 */
#define MAX_ALIAS_NODES 1000000u
#define ALIAS_FREE_NODES 10000u
#define ALIAS_RATIO 10u

struct ctx {
	yaml_parser_t parser;
	const char *buf;
	size_t len;
	json_t *anchors;    /* anchor name -> [node, expanded weight, source text or null] */
	size_t alias_nodes; /* nodes added by alias expansion so far */
	size_t nodes;	    /* nodes spelled out in the text so far */
	locale_t c_locale;  /* created on the first float */
	char *err;
	size_t errlen;
};

static int __attribute__((format(printf, 4, 5)))
fail(struct ctx *c, const yaml_mark_t *mark, int rc, const char *fmt, ...)
{
	size_t off = 0;
	va_list ap;
	int n;

	if (!c->err || !c->errlen)
		return rc;
	c->err[0] = '\0';
	if (mark) {
		n = snprintf(c->err, c->errlen, "line %zu column %zu: ", mark->line + 1,
			     mark->column + 1);
		if (n < 0 || (size_t)n >= c->errlen)
			return rc;
		off = (size_t)n;
	}
	va_start(ap, fmt);
	vsnprintf(c->err + off, c->errlen - off, fmt, ap);
	va_end(ap);
	return rc;
}

static int oom(struct ctx *c)
{
	return fail(c, NULL, -ENOMEM, "out of memory");
}

/* libyaml reports reader (encoding) errors only as a byte offset; users want a line. */
static yaml_mark_t offset_mark(const struct ctx *c, size_t offset)
{
	yaml_mark_t m = { .index = offset };
	size_t line_start = 0;

	if (offset > c->len)
		offset = c->len;
	for (size_t i = 0; i < offset; i++) {
		if (c->buf[i] == '\n') {
			m.line++;
			line_start = i + 1;
		}
	}
	m.column = offset - line_start;
	return m;
}

static int parser_error(struct ctx *c)
{
	const yaml_parser_t *p = &c->parser;
	const char *problem = p->problem ? p->problem : "invalid YAML";
	yaml_mark_t m;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return oom(c);
	case YAML_READER_ERROR:
		m = offset_mark(c, p->problem_offset);
		if (p->problem_value != -1)
			return fail(c, &m, -EINVAL, "%s (#%X at byte offset %zu)", problem,
				    (unsigned int)p->problem_value, p->problem_offset);
		return fail(c, &m, -EINVAL, "%s (byte offset %zu)", problem, p->problem_offset);
	default:
		if (p->context)
			return fail(c, &p->problem_mark, -EINVAL, "%s (%s at line %zu column %zu)",
				    problem, p->context, p->context_mark.line + 1,
				    p->context_mark.column + 1);
		return fail(c, &p->problem_mark, -EINVAL, "%s", problem);
	}
}

static int next_event(struct ctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev))
		return parser_error(c);
	return 0;
}

/* The next item of a collection: 0, or 1 at its end event, or a negative errno. */
static int next_in(struct ctx *c, yaml_event_t *ev, yaml_event_type_t end)
{
	int rc = next_event(c, ev);

	return rc ? rc : ev->type == end;
}

/* A scalar's value (yamljson_scalar.c), with its complaint placed at the scalar. */
static int build_scalar(struct ctx *c, const yaml_event_t *ev, json_t **out)
{
	char why[YAMLJSON_SCALAR_WHY_LEN];
	int rc = yamljson_scalar(ev, &c->c_locale, out, why, sizeof(why));

	if (rc == -ENOMEM)
		return oom(c);
	if (rc)
		return fail(c, &ev->start_mark, rc, "%s", why);
	return 0;
}

static int add_anchor(struct ctx *c, const char *name, json_t *node, size_t weight, json_t *raw)
{
	json_t *entry = json_pack("[O,I,O]", node, (json_int_t)weight, raw ? raw : json_null());

	if (!entry || json_object_set_new(c->anchors, name, entry))
		return oom(c);
	return 0;
}

static int build_node(struct ctx *c, yaml_event_t *ev, unsigned int depth, json_t **out,
		      size_t *weight, json_t **raw);

static int build_sequence(struct ctx *c, unsigned int depth, json_t **out, size_t *weight)
{
	json_t *arr = json_array(), *item = NULL;
	yaml_event_t ev = { 0 };
	size_t total = 1, w;
	int rc = 0;

	if (!arr) {
		rc = oom(c);
		goto cleanup;
	}
	while (!(rc = next_in(c, &ev, YAML_SEQUENCE_END_EVENT))) {
		rc = build_node(c, &ev, depth + 1, &item, &w, NULL);
		if (rc)
			goto cleanup;
		rc = json_array_append_new(arr, item) ? oom(c) : 0;
		item = NULL;
		if (rc)
			goto cleanup;
		total += w;
	}
	if (rc < 0)
		goto cleanup;
	rc = 0;
	*out = arr;
	arr = NULL;
	*weight = total;
cleanup:
	yaml_event_delete(&ev);
	json_decref(arr);
	return rc;
}

static bool is_merge_key(const yaml_event_t *ev)
{
	const char *tag;

	if (ev->type != YAML_SCALAR_EVENT)
		return false;
	tag = (const char *)ev->data.scalar.tag;
	if (tag)
		return !strcmp(tag, YAML_MERGE_TAG);
	/* a quoted "<<" is an ordinary key */
	return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       ev->data.scalar.length == 2 && !memcmp(ev->data.scalar.value, "<<", 2);
}

static int add_merge_sources(struct ctx *c, json_t *merges, json_t *val, const yaml_mark_t *mark)
{
	size_t i;
	json_t *src;

	if (json_is_object(val))
		return json_array_append(merges, val) ? oom(c) : 0;
	if (!json_is_array(val))
		goto bad;
	json_array_foreach(val, i, src) {
		if (!json_is_object(src))
			goto bad;
	}
	return json_array_extend(merges, val) ? oom(c) : 0;
bad:
	return fail(c, mark, -EINVAL, "merge key value must be a mapping or a sequence of mappings");
}

/* Explicit keys beat merged ones, and earlier merge sources beat later ones (YAML merge spec). */
static int apply_merges(struct ctx *c, json_t *obj, json_t *merges)
{
	const char *key;
	size_t i, key_len;
	json_t *src, *value;

	json_array_foreach(merges, i, src) {
		json_object_keylen_foreach(src, key, key_len, value) {
			if (json_object_getn(obj, key, key_len))
				continue;
			if (json_object_setn(obj, key, key_len, value))
				return oom(c);
		}
	}
	return 0;
}

static int build_mapping(struct ctx *c, unsigned int depth, json_t **out, size_t *weight)
{
	json_t *obj = json_object(), *merges = json_array(), *key = NULL, *raw = NULL, *val = NULL;
	yaml_event_t ev = { 0 };
	yaml_mark_t kmark, vmark;
	size_t total = 1, w;
	bool merge;
	int rc = 0;

	if (!obj || !merges) {
		rc = oom(c);
		goto cleanup;
	}
	while (!(rc = next_in(c, &ev, YAML_MAPPING_END_EVENT))) {
		kmark = ev.start_mark;
		/* JSON object keys are strings; there is no faithful rendering of a collection key */
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
			rc = fail(c, &kmark, -EINVAL, "mapping keys must be scalars");
			goto cleanup;
		}
		merge = is_merge_key(&ev);
		rc = build_node(c, &ev, depth + 1, &key, &w, &raw);
		if (rc)
			goto cleanup;
		if (!raw) {
			rc = fail(c, &kmark, -EINVAL,
				  "mapping keys must be scalars (alias refers to a collection)");
			goto cleanup;
		}

		rc = next_event(c, &ev);
		if (rc)
			goto cleanup;
		vmark = ev.start_mark;
		rc = build_node(c, &ev, depth + 1, &val, &w, NULL);
		if (rc)
			goto cleanup;
		total += w;

		if (merge)
			rc = add_merge_sources(c, merges, val, &vmark);
		else if (json_object_getn(obj, json_string_value(raw), json_string_length(raw)))
			/* last-wins would let a later line silently redefine an object */
			rc = fail(c, &kmark, -EINVAL, "duplicate key \"%.*s\"",
				  (int)(json_string_length(raw) > ERR_SCALAR_MAX
						? ERR_SCALAR_MAX
						: json_string_length(raw)),
				  json_string_value(raw));
		else
			rc = json_object_setn(obj, json_string_value(raw), json_string_length(raw), val)
				     ? oom(c)
				     : 0;
		json_decref(val);
		json_decref(raw);
		json_decref(key);
		val = raw = key = NULL;
		if (rc)
			goto cleanup;
	}
	if (rc < 0)
		goto cleanup;
	rc = apply_merges(c, obj, merges);
	if (rc)
		goto cleanup;
	*out = obj;
	obj = NULL;
	*weight = total;
cleanup:
	yaml_event_delete(&ev);
	json_decref(val);
	json_decref(raw);
	json_decref(key);
	json_decref(merges);
	json_decref(obj);
	return rc;
}

/*
 * Consumes *ev. *weight is how many nodes the value stands for with aliases expanded. If raw is
 * non-NULL it receives the scalar's source text as a new JSON string reference (NULL for
 * collections): mapping keys use the text as written, not the resolved value.
 */
static int build_node(struct ctx *c, yaml_event_t *ev, unsigned int depth, json_t **out,
		      size_t *weight, json_t **raw)
{
	json_t *node = NULL, *text = NULL, *entry;
	const char *anchor = NULL;
	size_t w = 1;
	int rc = 0;

	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		entry = json_object_get(c->anchors, (const char *)ev->data.alias.anchor);
		if (!entry) {
			rc = fail(c, &ev->start_mark, -EINVAL, "unknown alias *%s",
				  (const char *)ev->data.alias.anchor);
			goto cleanup;
		}
		w = (size_t)json_integer_value(json_array_get(entry, 1));
		if (w > MAX_ALIAS_NODES - c->alias_nodes) {
			rc = fail(c, &ev->start_mark, -EINVAL,
				  "aliases expand to more than %u nodes", MAX_ALIAS_NODES);
			goto cleanup;
		}
		c->alias_nodes += w;
		if (c->alias_nodes > ALIAS_FREE_NODES && c->alias_nodes / ALIAS_RATIO > c->nodes) {
			rc = fail(c, &ev->start_mark, -EINVAL,
				  "aliases expand to more than %u times the %zu nodes written out "
				  "(%zu nodes from aliases)",
				  ALIAS_RATIO, c->nodes, c->alias_nodes);
			goto cleanup;
		}
		node = json_incref(json_array_get(entry, 0));
		text = json_array_get(entry, 2);
		text = json_is_string(text) ? json_incref(text) : NULL;
		break;
	case YAML_SCALAR_EVENT:
		c->nodes++;
		anchor = (const char *)ev->data.scalar.anchor;
		rc = build_scalar(c, ev, &node);
		if (rc)
			goto cleanup;
		if (raw || anchor) {
			text = json_is_string(node) ? json_incref(node)
						    : json_stringn((const char *)ev->data.scalar.value,
								   ev->data.scalar.length);
			if (!text) {
				rc = oom(c);
				goto cleanup;
			}
		}
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (depth >= YAMLJSON_MAX_DEPTH) {
			rc = fail(c, &ev->start_mark, -EINVAL,
				  "collections nested more than %d levels deep", YAMLJSON_MAX_DEPTH);
			goto cleanup;
		}
		c->nodes++;
		if (ev->type == YAML_SEQUENCE_START_EVENT) {
			anchor = (const char *)ev->data.sequence_start.anchor;
			rc = build_sequence(c, depth, &node, &w);
		} else {
			anchor = (const char *)ev->data.mapping_start.anchor;
			rc = build_mapping(c, depth, &node, &w);
		}
		if (rc)
			goto cleanup;
		break;
	default:
		rc = fail(c, &ev->start_mark, -EINVAL, "unexpected YAML event %d", (int)ev->type);
		goto cleanup;
	}

	/* registered only once complete, so an alias inside its own anchor is "unknown": no cycles */
	if (anchor) {
		rc = add_anchor(c, anchor, node, w, text);
		if (rc)
			goto cleanup;
	}
	*out = node;
	node = NULL;
	*weight = w;
	if (raw) {
		*raw = text;
		text = NULL;
	}
cleanup:
	yaml_event_delete(ev);
	json_decref(text);
	json_decref(node);
	return rc;
}

/* "---" followed by nothing: libyaml reports an untagged, unanchored empty plain scalar. */
static bool is_empty_document(const yaml_event_t *ev)
{
	return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 &&
	       ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag &&
	       !ev->data.scalar.anchor;
}

int yamljson_parse(const char *buf, size_t len, json_t **out, char *err, size_t errlen)
{
	struct ctx c = { .buf = buf, .len = len, .err = err, .errlen = errlen };
	json_t *docs = NULL, *doc = NULL, *result = NULL;
	yaml_event_t ev = { 0 };
	bool parser_ready = false;
	size_t w;
	int rc = 0;

	if (err && errlen)
		err[0] = '\0';
	if (!out)
		return fail(&c, NULL, -EINVAL, "no output pointer");
	*out = NULL;
	if (!buf && len)
		return fail(&c, NULL, -EINVAL, "NULL buffer with non-zero length");

	if (!yaml_parser_initialize(&c.parser)) {
		rc = oom(&c);
		goto cleanup;
	}
	parser_ready = true;
	/* libyaml asserts on a NULL input even when it is empty */
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)(buf ? buf : ""), len);

	c.anchors = json_object();
	docs = json_array();
	if (!c.anchors || !docs) {
		rc = oom(&c);
		goto cleanup;
	}

	rc = next_event(&c, &ev); /* STREAM-START */
	if (rc)
		goto cleanup;
	for (;;) {
		yaml_event_delete(&ev);
		rc = next_event(&c, &ev);
		if (rc)
			goto cleanup;
		if (ev.type == YAML_STREAM_END_EVENT)
			break;
		if (ev.type != YAML_DOCUMENT_START_EVENT) {
			rc = fail(&c, &ev.start_mark, -EINVAL, "unexpected YAML event %d",
				  (int)ev.type);
			goto cleanup;
		}
		yaml_event_delete(&ev);

		rc = next_event(&c, &ev); /* document root */
		if (rc)
			goto cleanup;
		if (!is_empty_document(&ev)) {
			rc = build_node(&c, &ev, 0, &doc, &w, NULL);
			if (rc)
				goto cleanup;
			rc = json_array_append_new(docs, doc) ? oom(&c) : 0;
			doc = NULL;
			if (rc)
				goto cleanup;
		}
		yaml_event_delete(&ev);

		rc = next_event(&c, &ev); /* DOCUMENT-END */
		if (rc)
			goto cleanup;
		/* anchors are scoped to their document */
		json_object_clear(c.anchors);
	}

	switch (json_array_size(docs)) {
	case 0:
		result = json_null();
		break;
	case 1:
		result = json_incref(json_array_get(docs, 0));
		break;
	default:
		result = json_pack("{s:s,s:s,s:O}", "kind", "List", "apiVersion", "v1", "items",
				   docs);
		if (!result) {
			rc = oom(&c);
			goto cleanup;
		}
	}
	*out = result;
cleanup:
	yaml_event_delete(&ev);
	json_decref(doc);
	json_decref(docs);
	json_decref(c.anchors);
	if (parser_ready)
		yaml_parser_delete(&c.parser);
	if (c.c_locale)
		freelocale(c.c_locale);
	return rc;
}
