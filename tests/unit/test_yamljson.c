// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit test for user/yamljson.c. Standalone; build and run e.g.:
 *   cc -std=gnu11 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-omit-frame-pointer \
 *      -Iuser tests/unit/test_yamljson.c user/yamljson.c user/yamljson_scalar.c -ljansson -lyaml -o /tmp/test_yamljson
 *   /tmp/test_yamljson
 */
#include "yamljson.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fail_alloc.h" /* the nth jansson allocation fails: every -ENOMEM path under LSan */


static void diag_json(const char *label, const json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	printf("#   %s: %s\n", label, s ? s : "(NULL)");
	free(s);
}

/* Parse len bytes of yaml and compare with the expected JSON text (types must match too). */
static void expect_json_len(const char *desc, const char *yaml, size_t len, const char *want_text)
{
	json_t *got = NULL, *want;
	json_error_t jerr;
	char err[256];
	bool ok;
	int rc;

	rc = yamljson_parse(yaml, len, &got, err, sizeof(err));
	want = json_loads(want_text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!want)
		printf("#   bad expected JSON in test: %s\n", jerr.text);
	ok = rc == 0 && got && want && json_equal(got, want);
	if (!ok) {
		printf("#   rc=%d err=\"%s\"\n", rc, err);
		diag_json("got ", got);
		diag_json("want", want);
	}
	check(ok, "%s", desc);
	json_decref(got);
	json_decref(want);
}

static void expect_json(const char *desc, const char *yaml, const char *want_text)
{
	expect_json_len(desc, yaml, strlen(yaml), want_text);
}

/*
 * Expect failure with want_rc, *out cleared, and an error message containing each of the
 * NULL-terminated substrings.
 */
static void expect_error_len(const char *desc, const char *yaml, size_t len, int want_rc, ...)
{
	json_t *got = json_true(); /* a static singleton: a stale value must be overwritten */
	const char *sub;
	char err[512];
	bool ok;
	va_list ap;
	int rc;

	memset(err, 'X', sizeof(err));
	rc = yamljson_parse(yaml, len, &got, err, sizeof(err));
	ok = rc == want_rc && got == NULL && memchr(err, '\0', sizeof(err)) != NULL;
	va_start(ap, want_rc);
	while (ok && (sub = va_arg(ap, const char *)) != NULL)
		ok = strstr(err, sub) != NULL;
	va_end(ap);
	if (!ok) {
		printf("#   rc=%d (want %d) err=\"%.*s\"\n", rc, want_rc, (int)sizeof(err), err);
		if (got != json_true())
			diag_json("got ", got);
	}
	check(ok, "%s", desc);
	if (got != json_true())
		json_decref(got);
}

#define expect_error(desc, yaml, want_rc, ...)                                                     \
	expect_error_len(desc, yaml, strlen(yaml), want_rc, __VA_ARGS__, NULL)

static json_t *parse_ok(const char *yaml)
{
	json_t *got = NULL;
	char err[256];

	if (yamljson_parse(yaml, strlen(yaml), &got, err, sizeof(err))) {
		printf("#   unexpected error: %s\n", err);
		return NULL;
	}
	return got;
}

static const char service_yaml[] =
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata:\n"
	"  name: web\n"
	"  namespace: default\n"
	"  labels:\n"
	"    app: web\n"
	"    tier: \"frontend\"\n"
	"    version: \"1.10\"\n"
	"  annotations:\n"
	"    example.com/enabled: \"true\"\n"
	"spec:\n"
	"  type: ClusterIP\n"
	"  clusterIP: 10.96.0.10\n"
	"  clusterIPs:\n"
	"  - 10.96.0.10\n"
	"  - fd00::10\n"
	"  ipFamilies: [IPv4, IPv6]\n"
	"  ipFamilyPolicy: PreferDualStack\n"
	"  ports:\n"
	"  - name: http\n"
	"    protocol: TCP\n"
	"    port: 80\n"
	"    targetPort: 8080\n"
	"  - name: metrics\n"
	"    protocol: TCP\n"
	"    port: 9090\n"
	"    targetPort: metrics\n"
	"  - name: dns\n"
	"    protocol: UDP\n"
	"    port: \"53\"\n"
	"    targetPort: 53\n"
	"  selector:\n"
	"    app: web\n"
	"  sessionAffinity: None\n"
	"  publishNotReadyAddresses: false\n";

static void test_service(void)
{
	json_t *svc = parse_ok(service_yaml), *ports;

	expect_json("Service manifest converts to the expected JSON", service_yaml,
		    "{\"apiVersion\":\"v1\",\"kind\":\"Service\","
		    "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\","
		    "\"labels\":{\"app\":\"web\",\"tier\":\"frontend\",\"version\":\"1.10\"},"
		    "\"annotations\":{\"example.com/enabled\":\"true\"}},"
		    "\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.10\","
		    "\"clusterIPs\":[\"10.96.0.10\",\"fd00::10\"],\"ipFamilies\":[\"IPv4\",\"IPv6\"],"
		    "\"ipFamilyPolicy\":\"PreferDualStack\",\"ports\":["
		    "{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080},"
		    "{\"name\":\"metrics\",\"protocol\":\"TCP\",\"port\":9090,\"targetPort\":\"metrics\"},"
		    "{\"name\":\"dns\",\"protocol\":\"UDP\",\"port\":\"53\",\"targetPort\":53}],"
		    "\"selector\":{\"app\":\"web\"},\"sessionAffinity\":\"None\","
		    "\"publishNotReadyAddresses\":false}}");
	ports = json_object_get(json_object_get(svc, "spec"), "ports");
	check(json_is_integer(json_object_get(json_array_get(ports, 0), "port")) &&
		      json_integer_value(json_object_get(json_array_get(ports, 0), "port")) == 80,
	      "Service: ports[0].port is integer 80");
	check(json_is_integer(json_object_get(json_array_get(ports, 0), "targetPort")),
	      "Service: numeric targetPort is an integer");
	check(json_is_string(json_object_get(json_array_get(ports, 1), "targetPort")),
	      "Service: named targetPort is a string");
	check(json_is_string(json_object_get(json_array_get(ports, 2), "port")),
	      "Service: quoted \"53\" port stays a string");
	check(json_is_string(json_object_get(json_object_get(svc, "spec"), "clusterIP")),
	      "Service: clusterIP 10.96.0.10 is a string");
	json_decref(svc);
}

static void test_lists(void)
{
	static const char list_yaml[] = "apiVersion: v1\n"
					"kind: List\n"
					"metadata:\n"
					"  resourceVersion: \"\"\n"
					"items:\n"
					"- apiVersion: v1\n"
					"  kind: Service\n"
					"  metadata: {name: a}\n"
					"- apiVersion: v1\n"
					"  kind: Endpoints\n"
					"  metadata: {name: a}\n";
	static const char multi_yaml[] = "# leading comment\n"
					 "---\n"
					 "apiVersion: v1\n"
					 "kind: Service\n"
					 "metadata: {name: a}\n"
					 "---\n"
					 "# a document holding only a comment\n"
					 "---\n"
					 "---\n"
					 "apiVersion: v1\n"
					 "kind: Service\n"
					 "metadata: {name: b}\n"
					 "...\n"
					 "---\n"
					 "apiVersion: v1\n"
					 "kind: ConfigMap\n"
					 "data: {port: \"80\"}\n";
	json_t *got;
	char *dump;

	expect_json("kubectl-style List is returned as-is", list_yaml,
		    "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"\"},"
		    "\"items\":[{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\"}},"
		    "{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"a\"}}]}");
	expect_json("multi-document stream becomes a List, empty documents skipped", multi_yaml,
		    "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":["
		    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\"}},"
		    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"b\"}},"
		    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"data\":{\"port\":\"80\"}}]}");

	got = parse_ok(multi_yaml);
	dump = got ? json_dumps(got, JSON_COMPACT) : NULL;
	check(dump && !strncmp(dump, "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[", 42),
	      "List wrapper serialises as kind, apiVersion, items in that order");
	free(dump);
	json_decref(got);

	expect_json("one real document among empty ones is returned unwrapped",
		    "---\n---\nkind: Service\n---\n", "{\"kind\":\"Service\"}");
	expect_json("document with explicit --- and ... markers", "---\na: 1\n...\n", "{\"a\":1}");
	expect_json("explicit null document is kept, not skipped", "---\na: 1\n--- ~\n",
		    "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[{\"a\":1},null]}");
	expect_json("multi-document stream of scalars", "--- 1\n--- two\n",
		    "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[1,\"two\"]}");
}

struct scalar_case {
	const char *yaml;
	const char *json;
};

static void test_scalars(void)
{
	static const struct scalar_case cases[] = {
		/* integers */
		{ "80", "80" },
		{ "-1", "-1" },
		{ "+3", "3" },
		{ "0", "0" },
		{ "-0", "0" },
		{ "0123", "123" },
		{ "0x1F", "31" },
		{ "0xff", "255" },
		{ "0o17", "15" },
		{ "9223372036854775807", "9223372036854775807" },
		{ "-9223372036854775808", "-9223372036854775808" },
		{ "0x7FFFFFFFFFFFFFFF", "9223372036854775807" },
		/* not core-schema integers */
		{ "0X1F", "\"0X1F\"" },
		{ "-0x1F", "\"-0x1F\"" },
		{ "0x", "\"0x\"" },
		{ "0o8", "\"0o8\"" },
		{ "1_000", "\"1_000\"" },
		{ "12abc", "\"12abc\"" },
		{ "+", "\"+\"" },
		/* quoted and block scalars are strings */
		{ "\"80\"", "\"80\"" },
		{ "'80'", "\"80\"" },
		{ "\"true\"", "\"true\"" },
		{ "'null'", "\"null\"" },
		{ "\"\"", "\"\"" },
		{ "\"1.5\"", "\"1.5\"" },
		/* floats */
		{ "1.5", "1.5" },
		{ "-2.5", "-2.5" },
		{ "1e3", "1000.0" },
		{ "1E-2", "0.01" },
		{ ".5", "0.5" },
		{ "-.5", "-0.5" },
		{ "5.", "5.0" },
		{ "+1.0e+2", "100.0" },
		{ "1e-400", "0.0" },
		/* look numeric, are not */
		{ ".", "\".\"" },
		{ "1e", "\"1e\"" },
		{ "e3", "\"e3\"" },
		{ "1.2.3", "\"1.2.3\"" },
		{ "10.96.0.1", "\"10.96.0.1\"" },
		{ "fd00::1", "\"fd00::1\"" },
		{ "1:2", "\"1:2\"" },
		{ "2024-01-01", "\"2024-01-01\"" },
		{ "-.nan", "\"-.nan\"" },
		{ ".infinity", "\".infinity\"" },
		/* booleans: only the 1.2 core spellings */
		{ "true", "true" },
		{ "True", "true" },
		{ "TRUE", "true" },
		{ "false", "false" },
		{ "False", "false" },
		{ "FALSE", "false" },
		{ "tRUE", "\"tRUE\"" },
		{ "yes", "\"yes\"" },
		{ "Yes", "\"Yes\"" },
		{ "no", "\"no\"" },
		{ "on", "\"on\"" },
		{ "off", "\"off\"" },
		{ "y", "\"y\"" },
		/* nulls */
		{ "~", "null" },
		{ "null", "null" },
		{ "Null", "null" },
		{ "NULL", "null" },
		{ "", "null" },
		{ "nULL", "\"nULL\"" },
		/* explicit tags */
		{ "!!str 80", "\"80\"" },
		{ "!!str true", "\"true\"" },
		{ "!!str ~", "\"~\"" },
		{ "!!str", "\"\"" },
		{ "!!int \"42\"", "42" },
		{ "!!int 0x10", "16" },
		{ "!!bool \"true\"", "true" },
		{ "!!float 3", "3.0" },
		{ "!!float \"2.5\"", "2.5" },
		{ "!!float 99999999999999999999", "1e20" },
		{ "!!null \"\"", "null" },
		{ "!!null ~", "null" },
		{ "!<tag:yaml.org,2002:str> 7", "\"7\"" },
		{ "!custom 5", "5" },
		{ "!custom \"5\"", "\"5\"" },
		{ "!!binary aGk=", "\"aGk=\"" },
		{ "! 5", "\"5\"" },
		/* escapes and unicode */
		{ "\"tab\\there\"", "\"tab\\there\"" },
		{ "\"\\u00e9t\\u00e9\"", "\"\\u00e9t\\u00e9\"" },
		{ "'it''s'", "\"it's\"" },
		{ "h\xc3\xa9llo", "\"h\\u00e9llo\"" },
		{ "\"two\\nlines\"", "\"two\\nlines\"" },
	};
	char yaml[128], want[128], desc[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(yaml, sizeof(yaml), "v: %s\n", cases[i].yaml);
		snprintf(want, sizeof(want), "{\"v\":%s}", cases[i].json);
		snprintf(desc, sizeof(desc), "scalar `%s` -> %s", cases[i].yaml, cases[i].json);
		expect_json(desc, yaml, want);
	}

	expect_error("integer above INT64_MAX is an error naming the line",
		     "a: 1\nb: 2\nv: 9223372036854775808\n", -EINVAL, "line 3 column 4",
		     "out of range");
	expect_error("integer below INT64_MIN is an error", "v: -9223372036854775809\n", -EINVAL,
		     "line 1", "out of range");
	expect_error("hex integer above INT64_MAX is an error", "v: 0x8000000000000000\n",
		     -EINVAL, "line 1", "out of range");
	expect_error("very long integer is an error with a truncated message",
		     "v: 1234567890123456789012345678901234567890123456789012345678901234567890"
		     "12345678901234567890\n",
		     -EINVAL, "line 1", "...");
	expect_error(".inf cannot be represented in JSON", "v: .inf\n", -EINVAL, "line 1",
		     "cannot be represented");
	expect_error("-.Inf cannot be represented in JSON", "v: -.Inf\n", -EINVAL, "line 1");
	expect_error(".nan cannot be represented in JSON", "v: .nan\n", -EINVAL, "line 1");
	expect_error("float overflow cannot be represented in JSON", "v: 1e999\n", -EINVAL,
		     "line 1", "1e999");
	expect_error("!!int on a non-integer is an error", "v: !!int abc\n", -EINVAL, "line 1",
		     "!!int");
	expect_error("!!bool yes is an error (1.2 core)", "v: !!bool yes\n", -EINVAL, "!!bool");
	expect_error("!!float on a non-number is an error", "v: !!float x\n", -EINVAL, "!!float");
	expect_error("!!null on a non-null is an error", "v: !!null 0\n", -EINVAL, "!!null");
}

static void test_top_level(void)
{
	expect_json("top-level plain scalar", "hello\n", "\"hello\"");
	expect_json("top-level integer", "42", "42");
	expect_json("top-level block sequence", "- a\n- 1\n- [b]\n", "[\"a\",1,[\"b\"]]");
	expect_json("empty flow collections", "a: {}\nb: []\n", "{\"a\":{},\"b\":[]}");
	expect_error("duplicate keys are an error, not last-wins (issue 7)", "a: 1\nb: 2\na: 3\n",
		     -EINVAL, "line 3", "duplicate key \"a\"");
	expect_error("a duplicate key in a nested mapping is an error",
		     "metadata:\n  name: web\n  namespace: a\n  name: evil\n", -EINVAL, "line 4",
		     "duplicate key \"name\"");
	expect_json("a key given explicitly and by a merge is not a duplicate",
		    "b: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n",
		    "{\"b\":{\"x\":1,\"y\":2},\"c\":{\"x\":3,\"y\":2}}");
	expect_error("a NUL inside a double-quoted scalar is an error (issue 7)",
		     "name: \"web\\0evil\"\n", -EINVAL, "line 1", "NUL character");
	expect_error("a NUL written as \\x00 is an error too", "name: \"web\\x00evil\"\n", -EINVAL,
		     "NUL character");
	{
		/* 2 KB of nested aliases used to stand for 40k objects, one warning each */
		char s[4096], *p = s;

		p += sprintf(p, "apiVersion: v1\nkind: List\nitems:\n"
				"- &s {kind: Service, apiVersion: v1, metadata: {name: x}, spec: {clusterIP: bad}}\n");
		for (char l = 'a'; l <= 'e'; l++) {
			p += sprintf(p, "- &%c {kind: List, apiVersion: v1, items: [", l);
			for (int i = 0; i < 10; i++)
				p += sprintf(p, "%s*%c", i ? ", " : "", l == 'a' ? 's' : l - 1);
			p += sprintf(p, "]}\n");
		}
		expect_error("an alias bomb of a few hundred bytes is rejected once, whole", s, -EINVAL,
			     "aliases expand to more than 10 times");
	}
	expect_json("keys keep their source text", "80: http\ntrue: yes\n~: n\n0x10: h\n\"q\": 1\n",
		    "{\"80\":\"http\",\"true\":\"yes\",\"~\":\"n\",\"0x10\":\"h\",\"q\":1}");
	expect_json("empty key and missing value", "? k\n: \n\"\": e\n", "{\"k\":null,\"\":\"e\"}");
	expect_json("CRLF line endings", "a: 1\r\nb: x\r\n", "{\"a\":1,\"b\":\"x\"}");
	expect_json("UTF-8 BOM is skipped", "\xef\xbb\xbf" "a: 1\n", "{\"a\":1}");
	expect_json_len("UTF-16LE input with BOM", "\xff\xfe" "a\0:\0 \0" "1\0\n\0", 12,
			"{\"a\":1}");
	expect_json_len("len is honoured: trailing bytes ignored", "a: 1\nb: 2\n", 5, "{\"a\":1}");
	{
		/* exactly len bytes, no terminator: ASan flags any over-read */
		char *unterminated = malloc(4);

		memcpy(unterminated, "a: 1", 4);
		expect_json_len("buffer without NUL terminator", unterminated, 4, "{\"a\":1}");
		free(unterminated);
	}
}

static void test_empty(void)
{
	json_t *got = json_true();
	char err[64];
	int rc;

	expect_json("empty input gives null", "", "null");
	expect_json("whitespace-only input gives null", "  \n\n", "null");
	expect_json("comment-only input gives null", "# nothing here\n# at all\n", "null");
	expect_json("lone --- gives null", "---\n", "null");
	expect_json("only empty documents give null", "---\n...\n---\n# c\n", "null");

	rc = yamljson_parse(NULL, 0, &got, err, sizeof(err));
	check(rc == 0 && json_is_null(got), "NULL buffer with length 0 gives null");
	json_decref(got);
}

static void test_comments(void)
{
	expect_json("comments are ignored; # inside scalars is not a comment",
		    "# header\n"
		    "apiVersion: v1 # trailing\n"
		    "kind: Service\n"
		    "# between keys\n"
		    "metadata:\n"
		    "    # indented comment\n"
		    "  name: x#y\n"
		    "  note: \"a # b\"\n"
		    "  other: 'c # d' # real comment\n"
		    "list:\n"
		    "- 1 # one\n"
		    "# inside list\n"
		    "- 2\n"
		    "# footer",
		    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"x#y\","
		    "\"note\":\"a # b\",\"other\":\"c # d\"},\"list\":[1,2]}");
}

static void test_flow_and_block(void)
{
	expect_json("flow mapping with nested flow sequence", "{a: 1, b: [x, y]}",
		    "{\"a\":1,\"b\":[\"x\",\"y\"]}");
	expect_json("flow collections inside block style",
		    "ports: [{port: 80, name: http}, {port: \"443\"}]\nempty: {a: , b: ~}\n",
		    "{\"ports\":[{\"port\":80,\"name\":\"http\"},{\"port\":\"443\"}],"
		    "\"empty\":{\"a\":null,\"b\":null}}");
	expect_json("multi-line flow collection", "{\n  a: [1,\n    2],\n  b: \"c\"\n}\n",
		    "{\"a\":[1,2],\"b\":\"c\"}");
	expect_json("block scalars: literal, folded, strip, keep; always strings",
		    "literal: |\n"
		    "  line one\n"
		    "  line two\n"
		    "folded: >\n"
		    "  folded\n"
		    "  text\n"
		    "\n"
		    "  para\n"
		    "strip: |-\n"
		    "  no newline\n"
		    "keep: |+\n"
		    "  keep\n"
		    "\n"
		    "num: |\n"
		    "  80\n"
		    "bool: >-\n"
		    "  true\n",
		    "{\"literal\":\"line one\\nline two\\n\",\"folded\":\"folded text\\npara\\n\","
		    "\"strip\":\"no newline\",\"keep\":\"keep\\n\\n\",\"num\":\"80\\n\","
		    "\"bool\":\"true\"}");
	expect_json("block scalar holding a script with indentation",
		    "data:\n  run.sh: |\n    #!/bin/sh\n    if true; then\n      echo: hi\n    fi\n",
		    "{\"data\":{\"run.sh\":\"#!/bin/sh\\nif true; then\\n  echo: hi\\nfi\\n\"}}");
}

static void test_anchors(void)
{
	json_t *got;

	expect_json("anchors, aliases and merge keys",
		    "defaults: &defaults\n"
		    "  protocol: TCP\n"
		    "  port: 80\n"
		    "ports:\n"
		    "- <<: *defaults\n"
		    "  name: http\n"
		    "- name: https\n"
		    "  port: 443\n"
		    "  <<: *defaults\n"
		    "name: &n web\n"
		    "selector:\n"
		    "  app: *n\n"
		    "*n : aliased-key\n"
		    "list: &l [a, b]\n"
		    "again: *l\n"
		    "port: &p 8080\n"
		    "copy: *p\n",
		    "{\"defaults\":{\"protocol\":\"TCP\",\"port\":80},"
		    "\"ports\":[{\"protocol\":\"TCP\",\"port\":80,\"name\":\"http\"},"
		    "{\"name\":\"https\",\"port\":443,\"protocol\":\"TCP\"}],"
		    "\"name\":\"web\",\"selector\":{\"app\":\"web\"},\"web\":\"aliased-key\","
		    "\"list\":[\"a\",\"b\"],\"again\":[\"a\",\"b\"],\"port\":8080,\"copy\":8080}");

	got = parse_ok("a: &x {k: v}\nb: *x\n");
	check(got && json_object_get(got, "a") == json_object_get(got, "b"),
	      "an alias shares the anchored node (reference counted)");
	json_decref(got);

	expect_json("merge from a sequence: earlier sources win, explicit keys win",
		    "a: &a {x: 1, y: 1}\n"
		    "b: &b {y: 2, z: 2}\n"
		    "c:\n"
		    "  <<: [*a, *b]\n"
		    "  x: 3\n",
		    "{\"a\":{\"x\":1,\"y\":1},\"b\":{\"y\":2,\"z\":2},\"c\":{\"x\":3,\"y\":1,\"z\":2}}");
	expect_json("inline merge mapping and quoted \"<<\" is an ordinary key",
		    "a:\n  <<: {p: 1}\n  q: 2\nb: {\"<<\": 3}\n",
		    "{\"a\":{\"p\":1,\"q\":2},\"b\":{\"<<\":3}}");
	expect_json("anchor redefinition: the latest definition is used",
		    "a: &x 1\nb: &x 2\nc: *x\n", "{\"a\":1,\"b\":2,\"c\":2}");
	expect_json("anchor on a key scalar can be used as a value",
		    "&k key: 1\nother: *k\n", "{\"key\":1,\"other\":\"key\"}");
	expect_json("anchor on a whole document root", "&r [1, 2]\n", "[1,2]");

	expect_error("alias to an unknown anchor is an error", "a: 1\nb: *nope\n", -EINVAL,
		     "line 2 column 4", "unknown alias", "nope");
	expect_error("alias inside its own anchor is an error (no cycles)", "a: &x [1, *x]\n",
		     -EINVAL, "unknown alias");
	expect_error("anchors do not cross document boundaries", "a: &x 1\n---\nb: *x\n", -EINVAL,
		     "line 3", "unknown alias");
	expect_error("alias to a collection used as a key is an error", "a: &x [1]\n*x : 2\n",
		     -EINVAL, "line 2", "mapping keys must be scalars");
	expect_error("merge key with a scalar value is an error", "a:\n  <<: 5\n", -EINVAL,
		     "line 2", "merge");
	expect_error("merge key with a sequence of non-mappings is an error",
		     "a: &a {x: 1}\nb:\n  <<: [*a, 2]\n", -EINVAL, "merge");
	expect_error("billion laughs is rejected",
		     "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
		     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
		     "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
		     "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n",
		     -EINVAL, "aliases expand to more than");

	{
		/* each alias stays under the cap; only their sum exceeds it */
		size_t cap = 64 * 1024;
		char *s = malloc(cap), *p = s;

		p += sprintf(p, "a: &a [");
		for (int i = 0; i < 100; i++)
			p += sprintf(p, "%sx", i ? ", " : "");
		p += sprintf(p, "]\nb: &b [");
		for (int i = 0; i < 100; i++)
			p += sprintf(p, "%s*a", i ? ", " : "");
		p += sprintf(p, "]\nc: [");
		for (int i = 0; i < 120; i++)
			p += sprintf(p, "%s*b", i ? ", " : "");
		sprintf(p, "]\n");
		expect_error("many individually small aliases add up to the expansion cap", s,
			     -EINVAL, "line 2", "aliases expand to more than");
		free(s);
	}
}

static void test_bad_yaml(void)
{
	expect_error("mapping value in a plain scalar", "a: b: c\n", -EINVAL,
		     "line 1 column 5: mapping values are not allowed");
	expect_error("bad indentation reports its line", "a:\n  b: 1\n c: 2\n", -EINVAL,
		     "line 3");
	expect_error("unterminated flow sequence", "a: 1\nb: [1, 2\nc: 3\n", -EINVAL, "line ");
	expect_error("unterminated quoted string", "a: \"abc\n", -EINVAL, "line ",
		     "end of stream");
	expect_error("tab indentation", "a:\n\tb: 1\n", -EINVAL, "line 2");
	expect_error("unknown escape in double quotes", "a: \"\\q\"\n", -EINVAL, "line 1");
	expect_error("invalid UTF-8 on line 2", "a: 1\nb: \xff\n", -EINVAL, "line 2",
		     "UTF-8");
	expect_error("control character in input", "a: \x01\n", -EINVAL, "line 1");
	expect_error("complex key (block) is rejected", "? [a, b]\n: 1\n", -EINVAL, "line 1",
		     "mapping keys must be scalars");
	expect_error("complex key (flow) is rejected", "x: 1\ny: {[a]: 1}\n", -EINVAL,
		     "line 2 column 5", "mapping keys must be scalars");
	expect_error("mapping as key is rejected", "? {a: 1}\n: 2\n", -EINVAL,
		     "mapping keys must be scalars");
	expect_error("error in a later document still fails the stream",
		     "a: 1\n---\nb: [\n", -EINVAL, "line ");
}

static unsigned int json_depth(const json_t *j)
{
	unsigned int max = 0, d;
	size_t i;
	json_t *v;

	if (!json_is_array(j))
		return 0;
	json_array_foreach(j, i, v) {
		d = json_depth(v);
		if (d > max)
			max = d;
	}
	return max + 1;
}

static char *nested(size_t levels, const char *open, const char *close, const char *core)
{
	size_t lo = strlen(open), lc = strlen(close), lcore = strlen(core);
	char *s = malloc(levels * (lo + lc) + lcore + 1), *p = s;

	for (size_t i = 0; i < levels; i++, p += lo)
		memcpy(p, open, lo);
	memcpy(p, core, lcore);
	p += lcore;
	for (size_t i = 0; i < levels; i++, p += lc)
		memcpy(p, close, lc);
	*p = '\0';
	return s;
}

static void test_depth(void)
{
	char depth_str[16];
	char *s, *p;
	json_t *got;

	snprintf(depth_str, sizeof(depth_str), "%d", YAMLJSON_MAX_DEPTH);

	s = nested(YAMLJSON_MAX_DEPTH, "[", "]", "1");
	got = parse_ok(s);
	check(got && json_depth(got) == YAMLJSON_MAX_DEPTH, "nesting of exactly %d is accepted",
	      YAMLJSON_MAX_DEPTH);
	json_decref(got);
	free(s);

	s = nested(YAMLJSON_MAX_DEPTH + 1, "[", "]", "1");
	expect_error("one level beyond the limit is rejected, naming the limit", s, -EINVAL,
		     "line 1", depth_str);
	free(s);

	/* unterminated, so it only fails safely if the limit trips before anything else */
	s = nested(100000, "[", "", "");
	expect_error("100000 open brackets fail on the depth limit, not the stack", s, -EINVAL,
		     depth_str);
	free(s);

	s = nested(2000, "{a: ", "}", "1");
	expect_error("deep flow mappings are rejected", s, -EINVAL, depth_str);
	free(s);

	/* block mappings: "a:\n  a:\n    a: ..." 600 levels */
	s = malloc(600 * (600 * 2 + 4) + 8);
	p = s;
	for (int i = 0; i < 600; i++) {
		memset(p, ' ', (size_t)i * 2);
		p += i * 2;
		memcpy(p, "a:\n", 3);
		p += 3;
	}
	strcpy(p, "");
	expect_error("deep block mappings are rejected", s, -EINVAL, depth_str, "line 513");
	free(s);
}

static void test_api_edges(void)
{
	json_t *got = json_true();
	char err[8], big[128];
	int rc;

	rc = yamljson_parse("a: 1", 4, NULL, big, sizeof(big));
	check(rc == -EINVAL && big[0], "NULL out pointer gives -EINVAL with a message");

	rc = yamljson_parse(NULL, 5, &got, big, sizeof(big));
	check(rc == -EINVAL && got == NULL && big[0], "NULL buffer with length gives -EINVAL");

	got = NULL;
	rc = yamljson_parse("a: [", 4, &got, NULL, 0);
	check(rc == -EINVAL && got == NULL, "NULL err buffer is allowed");

	memset(err, 'X', sizeof(err));
	rc = yamljson_parse("a: b: c", 7, &got, err, sizeof(err));
	check(rc == -EINVAL && memchr(err, '\0', sizeof(err)) && !strncmp(err, "line 1 ", 7),
	      "tiny err buffer is truncated and NUL-terminated");

	memset(big, 'X', sizeof(big));
	rc = yamljson_parse("a: 1", 4, &got, big, sizeof(big));
	check(rc == 0 && big[0] == '\0', "err is cleared on success");
	json_decref(got);
}

static void test_enomem(void)
{
	static const char yaml[] = "a: &a {x: 1, y: [p, q]}\n"
				   "b:\n  <<: *a\n  z: 1.5\n"
				   "c: *a\n"
				   "---\n"
				   "- \"s\"\n- ~\n- true\n"
				   "---\n"
				   "k: v\n";
	bool all_enomem = true, succeeded = false;
	json_t *got;
	char err[128];
	long n;
	int rc;

	json_set_alloc_funcs(failing_malloc, free);
	for (n = 0; n < 10000 && !succeeded; n++) {
		allocs_left = n;
		got = NULL;
		err[0] = '\0';
		rc = yamljson_parse(yaml, strlen(yaml), &got, err, sizeof(err));
		allocs_left = -1;
		if (rc == 0) {
			succeeded = true;
		} else if (rc != -ENOMEM || got || !err[0]) {
			printf("#   budget %ld: rc=%d err=\"%s\"\n", n, rc, err);
			all_enomem = false;
		}
		json_decref(got);
	}
	json_set_alloc_funcs(malloc, free);
	check(all_enomem, "every injected allocation failure returns -ENOMEM with a message");
	check(succeeded && n > 10, "parse succeeds once allocations stop failing (after %ld)", n);
}

/* Truncations and byte flips of a real manifest must fail cleanly, never crash or leak. */
static void test_mangled(void)
{
	size_t len = strlen(service_yaml);
	char *buf = malloc(len);
	bool ok = true;
	unsigned int seed = 12345;
	json_t *got;
	char err[128];
	int rc;

	for (size_t cut = 0; cut <= len; cut++) {
		memcpy(buf, service_yaml, cut);
		got = NULL;
		rc = yamljson_parse(buf, cut, &got, err, sizeof(err));
		if (!(rc == 0 && got) && !(rc == -EINVAL && !got && strstr(err, "line ")))
			ok = false;
		json_decref(got);
	}
	check(ok, "every truncation of the Service manifest parses or fails with a line number");

	ok = true;
	for (int iter = 0; iter < 3000; iter++) {
		static const char tokens[] = ":-[]{},&*!|>'\"#?\n \t\\%@`\xff\x80";

		memcpy(buf, service_yaml, len);
		for (int k = 0; k < 3; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t pos = (seed >> 8) % len;

			seed = seed * 1103515245u + 12345u;
			buf[pos] = tokens[(seed >> 8) % (sizeof(tokens) - 1)];
		}
		got = NULL;
		rc = yamljson_parse(buf, len, &got, err, sizeof(err));
		if (!(rc == 0 && got) && !(rc == -EINVAL && !got && strstr(err, "line ")))
			ok = false;
		json_decref(got);
	}
	check(ok, "3000 randomly mangled manifests parse or fail with a line number");
	free(buf);
}

int main(void)
{
	test_service();
	test_lists();
	test_scalars();
	test_top_level();
	test_empty();
	test_comments();
	test_flow_and_block();
	test_anchors();
	test_bad_yaml();
	test_depth();
	test_api_edges();
	test_enomem();
	test_mangled();

	return check_summary();
}
