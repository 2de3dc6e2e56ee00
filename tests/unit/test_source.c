// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The file source: what is a source of objects and what is not. A failed `kubectl get -o json >
 * file` leaves an empty file, an error line or an error page; none of them may read as "no
 * services" (issue 7): only a well-formed List with zero items means that.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "source.h"

static void rejected(const char *desc, const char *text, const char *why)
{
	char err[512] = "";
	json_t *objs = NULL;
	int rc = source_parse(text, strlen(text), &objs, err, sizeof(err));

	check(rc == -EINVAL && !objs && strstr(err, why), "%s: rejected (rc=%d err=\"%s\")", desc, rc,
	      err);
	json_decref(objs);
}

/* Accepted; returns the number of objects, -1 on error. */
static long accepted(const char *text, json_t **out)
{
	char err[512] = "";
	json_t *objs = NULL;
	int rc = source_parse(text, strlen(text), &objs, err, sizeof(err));
	long n;

	if (rc) {
		printf("#   rc=%d err=\"%s\"\n", rc, err);
		return -1;
	}
	n = (long)json_array_size(objs);
	if (out)
		*out = objs;
	else
		json_decref(objs);
	return n;
}

int main(void)
{
	json_t *objs = NULL;

	rejected("an empty file", "", "empty");
	rejected("only whitespace", " \n\t\n", "whitespace");
	rejected("null", "null\n", "not a Kubernetes object or List");
	rejected("an empty JSON object", "{}", "has no kind");
	rejected("an empty YAML mapping", "{}\n", "has no kind");
	rejected("a bare word (an API error body)", "Unauthorized\n", "is text");
	rejected("a kubectl error line",
		 "error: You must be logged in to the server (Unauthorized)\n", "");
	rejected("an HTML error page",
		 "<html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>\n",
		 "");
	rejected("a number", "42\n", "not a Kubernetes object or List");
	rejected("a bare JSON array", "[{\"kind\":\"Service\",\"apiVersion\":\"v1\"}]", "bare array");
	rejected("an object without apiVersion", "{\"kind\":\"Service\"}", "no apiVersion");
	rejected("an object with an empty kind", "{\"kind\":\"\",\"apiVersion\":\"v1\"}", "no kind");
	rejected("a List whose items is not a list",
		 "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":{}}", "without an items list");
	rejected("a List item that is not an object",
		 "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[\"x\"]}", "List item 0 is text");
	rejected("a generic List item without kind",
		 "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[{\"metadata\":{}}]}",
		 "List item 0 has no kind");
	rejected("a YAML stream with a non-object document",
		 "apiVersion: v1\nkind: Service\n---\njust text\n", "List item 1 is text");
	rejected("a YAML stream of comments only", "# nothing\n---\n# here\n", "nothing (null)");
	rejected("truncated JSON", "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[{\"ki",
		 "line 1");
	rejected("JSON with a duplicate key (a Service becoming another)",
		 "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"web\","
		 "\"name\":\"evil\"}}",
		 "duplicate");
	rejected("JSON with a NUL inside a name",
		 "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"web\\u0000evil\"}}",
		 "NUL");
	rejected("YAML with a NUL inside a name",
		 "kind: Service\napiVersion: v1\nmetadata:\n  name: \"web\\0evil\"\n", "NUL");
	rejected("YAML with a duplicate key",
		 "kind: Service\napiVersion: v1\nmetadata:\n  name: web\n  name: evil\n", "duplicate");
	{
		char deep[512] = "";

		for (int i = 0; i < 10; i++)
			strcat(deep, "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[");
		for (int i = 0; i < 10; i++)
			strcat(deep, "]}");
		rejected("Lists nested too deep", deep, "nested more than");
	}

	check(accepted("{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[]}", NULL) == 0,
	      "a well-formed List with zero items is accepted (and means: no services)");
	check(accepted("{\"kind\":\"ServiceList\",\"apiVersion\":\"v1\",\"items\":null}", NULL) == 0,
	      "items: null (Go's empty list) is an empty list");
	rejected("a single object of another kind (no services in it)",
		 "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\"}",
		 "no Service or EndpointSlice among its 1 objects (first: ConfigMap)");
	rejected("a List of Pods (kubectl get pods -o json)",
		 "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[{\"kind\":\"Pod\","
		 "\"apiVersion\":\"v1\"}]}",
		 "no Service or EndpointSlice");
	rejected("an API error Status (a 401 body)",
		 "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		 "\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}",
		 "API error (Status: Unauthorized)");
	check(accepted("{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[{\"kind\":\"Pod\","
		       "\"apiVersion\":\"v1\"},{\"kind\":\"Service\",\"apiVersion\":\"v1\"}]}",
		       NULL) == 2,
	      "other kinds beside services are fine (the model ignores them)");
	check(accepted("{\"kind\":\"ServiceList\",\"apiVersion\":\"v1\",\"items\":[{\"metadata\":"
		       "{\"name\":\"a\"}},{\"metadata\":{\"name\":\"b\"}}]}",
		       &objs) == 2 &&
		      !strcmp(json_string_value(json_object_get(json_array_get(objs, 1), "kind")),
			      "Service"),
	      "items of a typed list get their kind");
	json_decref(objs);
	check(accepted("{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[{\"kind\":\"ServiceList\","
		       "\"apiVersion\":\"v1\",\"items\":[{\"metadata\":{}}]},{\"kind\":\"Service\","
		       "\"apiVersion\":\"v1\"}]}",
		       NULL) == 2,
	      "nested Lists are flattened");
	check(accepted("apiVersion: v1\nkind: Service\n---\n# empty\n---\napiVersion: v1\nkind: "
		       "EndpointSlice\n",
		       NULL) == 2,
	      "a YAML stream of objects, empty documents skipped");
	check(accepted("\n  {\"kind\":\"Service\",\"apiVersion\":\"v1\"}\n", NULL) == 1,
	      "leading whitespace before JSON");
	return check_summary();
}
