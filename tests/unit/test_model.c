// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit test for user/model.c (Services + EndpointSlices -> frontends, kube-proxy semantics).
 * Objects come from the fixtures in tests/unit/fixtures/ through source_file_load(), as the
 * agent's file source reads them; run from the repository top directory:
 *   make asan && build/asan/tests/test_model
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "model.h"
#include "source.h"

#include "check.h"

#define FIX "tests/unit/fixtures/"


/* ------------------------------------------------------------------ warnings */

struct warning {
	char kind[32];
	char ns[BPFSVC_NS_LEN];
	char name[256];
	char why[256];
};

struct warnings {
	struct warning w[32];
	size_t n;	/* how many were reported (may exceed the array) */
};

static void record_warn(void *arg, const char *kind, const char *ns, const char *name,
			const char *why)
{
	struct warnings *ws = arg;

	if (ws->n < sizeof(ws->w) / sizeof(ws->w[0])) {
		struct warning *w = &ws->w[ws->n];

		snprintf(w->kind, sizeof(w->kind), "%s", kind ? kind : "(null)");
		snprintf(w->ns, sizeof(w->ns), "%s", ns ? ns : "(null)");
		snprintf(w->name, sizeof(w->name), "%s", name ? name : "(null)");
		snprintf(w->why, sizeof(w->why), "%s", why ? why : "(null)");
	}
	ws->n++;
}

static void dump_warnings(const struct warnings *ws)
{
	size_t i;

	for (i = 0; i < ws->n && i < sizeof(ws->w) / sizeof(ws->w[0]); i++)
		printf("#   warning: %s %s/%s: %s\n", ws->w[i].kind, ws->w[i].ns, ws->w[i].name,
		       ws->w[i].why);
}

/* A warning about kind ns/name whose reason contains why_sub. */
static void expect_warn(const struct warnings *ws, const char *kind, const char *ns,
			const char *name, const char *why_sub)
{
	bool found = false;
	size_t i;

	for (i = 0; i < ws->n && i < sizeof(ws->w) / sizeof(ws->w[0]); i++) {
		const struct warning *w = &ws->w[i];

		if (!strcmp(w->kind, kind) && !strcmp(w->ns, ns) && !strcmp(w->name, name) &&
		    *w->why && strstr(w->why, why_sub))
			found = true;
	}
	if (!found)
		dump_warnings(ws);
	check(found, "warning for %s %s/%s mentions \"%s\"", kind, ns, name, why_sub);
}

static void expect_nwarn(const struct warnings *ws, size_t want, const char *what)
{
	if (ws->n != want)
		dump_warnings(ws);
	check(ws->n == want, "%s: %zu warning(s) (got %zu)", what, want, ws->n);
}

/* ------------------------------------------------------------------ loading and building */

static json_t *load(const char *path)
{
	json_t *objs = NULL;
	char err[256] = "";
	int rc = source_file_load(path, &objs, err, sizeof(err));

	check(rc == 0 && json_is_array(objs), "load %s%s%s", path, rc ? ": " : "", rc ? err : "");
	return objs;
}

static int fe_key_cmp(const struct model_fe *a, const struct model_fe *b)
{
	return memcmp(&a->key, &b->key, sizeof(a->key));
}

/* What every model_build() result must satisfy, whatever the input. */
static void check_invariants(const struct model_state *st, const char *what)
{
	const char *bad = NULL;
	size_t i;
	uint32_t j;

	for (i = 0; i < st->n && !bad; i++) {
		const struct model_fe *fe = &st->fe[i];
		bool v4 = addr_is_v4(&fe->key.addr);

		if (i && fe_key_cmp(&st->fe[i - 1], fe) >= 0)
			bad = "frontends not strictly sorted by key";
		else if (fe->key.pad)
			bad = "key pad not zero";
		else if (fe->key.port == 0)
			bad = "frontend port 0";
		else if (fe->key.proto != IPPROTO_TCP && fe->key.proto != IPPROTO_UDP &&
			 fe->key.proto != IPPROTO_SCTP)
			bad = "bad protocol";
		else if (fe->flags != (v4 ? 0 : BPFSVC_FE_F_V6))
			bad = "flags do not match the VIP family";
		else if (!*fe->svc.ns || !*fe->svc.name)
			bad = "owner missing";
		else if ((fe->nbe == 0) != (fe->be == NULL))
			bad = "be pointer does not match nbe";
		for (j = 0; j < fe->nbe && !bad; j++) {
			if (j && memcmp(&fe->be[j - 1], &fe->be[j], sizeof(fe->be[j])) >= 0)
				bad = "backends not strictly sorted";
			else if (fe->be[j].pad)
				bad = "backend pad not zero";
			else if (fe->be[j].port == 0)
				bad = "backend port 0";
			else if (addr_is_v4(&fe->be[j].addr) != v4)
				bad = "backend family differs from the VIP's";
		}
	}
	if (bad)
		printf("#   frontend %zu: %s\n", i - 1, bad);
	check(!bad, "%s: state invariants (sorted, unique, padded, families)", what);
}

struct run {
	json_t *objs;
	struct model_state st;
	struct warnings w;
};

/* Build from objs (taken over by r) with node_name; NULL node_name also passes NULL opts. */
static void build_objs(struct run *r, json_t *objs, const char *node, const char *what)
{
	struct model_opts opts = { .node_name = node };
	int rc;

	memset(r, 0, sizeof(*r));
	r->objs = objs;
	rc = model_build(objs, node ? &opts : NULL, record_warn, &r->w, &r->st);
	check(rc == 0, "%s: model_build returns 0 (got %d)", what, rc);
	check_invariants(&r->st, what);
}

static void build(struct run *r, const char *fixture, const char *node)
{
	char path[256];

	snprintf(path, sizeof(path), FIX "%s", fixture);
	build_objs(r, load(path), node, fixture);
}

static void run_free(struct run *r)
{
	model_state_free(&r->st);
	json_decref(r->objs);
	memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------ frontend lookups */

/* "10.0.0.1:80" or "[fd00::1]:80" -> backend; false if malformed. */
static bool parse_ep(const char *s, struct bpfsvc_backend *be)
{
	char ip[64];
	const char *colon;
	unsigned long port;
	char *end;
	size_t len;

	memset(be, 0, sizeof(*be));
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return false;
		len = (size_t)(rb - s - 1);
		s++;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return false;
		len = (size_t)(colon - s);
	}
	if (len >= sizeof(ip))
		return false;
	memcpy(ip, s, len);
	ip[len] = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end || port == 0 || port > 65535 || addr_parse(ip, &be->addr) < 0)
		return false;
	be->port = htons((uint16_t)port);
	return true;
}

static struct model_fe *find_fe(const struct model_state *st, const char *vip, int port,
				int proto)
{
	struct model_fe want = {};
	size_t i;

	if (addr_parse(vip, &want.key.addr) < 0)
		return NULL;
	want.key.port = htons((uint16_t)port);
	want.key.proto = (uint8_t)proto;
	for (i = 0; i < st->n; i++)
		if (!fe_key_cmp(&st->fe[i], &want))
			return &st->fe[i];
	return NULL;
}

static long fe_index(const struct model_state *st, const char *vip, int port, int proto)
{
	struct model_fe *fe = find_fe(st, vip, port, proto);

	return fe ? (long)(fe - st->fe) : -1;
}

static size_t count_svc(const struct model_state *st, const char *ns, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < st->n; i++)
		if (!strcmp(st->fe[i].svc.ns, ns) && !strcmp(st->fe[i].svc.name, name))
			n++;
	return n;
}

static void dump_fe(const char *label, const struct model_fe *fe)
{
	char buf[ADDR_STR_LEN];
	uint32_t j;

	if (!fe) {
		printf("#   %s: (no such frontend)\n", label);
		return;
	}
	printf("#   %s: %s/%s %s/%s:%s flags %u [", label,
	       addr_port_fmt(&fe->key.addr, ntohs(fe->key.port), buf, sizeof(buf)),
	       proto_name(fe->key.proto), fe->svc.ns, fe->svc.name, fe->svc.port_name, fe->flags);
	for (j = 0; j < fe->nbe; j++)
		printf("%s%s", j ? " " : "",
		       addr_port_fmt(&fe->be[j].addr, ntohs(fe->be[j].port), buf, sizeof(buf)));
	printf("]\n");
}

/*
 * Expect frontend vip:port/proto owned by "ns/name:port_name" with exactly the backends in
 * bes ("ip:port" separated by spaces, in the expected sorted order; "" for none).
 */
static void expect_fe(const struct model_state *st, const char *vip, int port, int proto,
		      const char *owner, const char *bes)
{
	struct model_fe *fe = find_fe(st, vip, port, proto);
	struct bpfsvc_backend want[32];
	char buf[512], owner_got[200] = "";
	uint32_t n = 0;
	bool ok = true;
	char *tok, *save;

	snprintf(buf, sizeof(buf), "%s", bes);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (n == 32 || !parse_ep(tok, &want[n])) {
			printf("#   bad expected backend \"%s\" in test\n", tok);
			ok = false;
			break;
		}
		n++;
	}
	if (fe) {
		snprintf(owner_got, sizeof(owner_got), "%s/%s:%s", fe->svc.ns, fe->svc.name,
			 fe->svc.port_name);
		ok = ok && !strcmp(owner_got, owner) && fe->nbe == n &&
		     (n == 0 || !memcmp(fe->be, want, n * sizeof(want[0])));
	} else {
		ok = false;
	}
	if (!ok) {
		dump_fe("got ", fe);
		printf("#   want: %s [%s]\n", owner, bes);
	}
	check(ok, "%s %s:%d/%s -> [%s]", owner, vip, port, proto_name((uint8_t)proto), bes);
}

static void expect_no_fe(const struct model_state *st, const char *vip, int port, int proto,
			 const char *why)
{
	struct model_fe *fe = find_fe(st, vip, port, proto);

	if (fe)
		dump_fe("got ", fe);
	check(!fe, "no frontend %s:%d/%s (%s)", vip, port, proto_name((uint8_t)proto), why);
}

static bool state_equal(const struct model_state *a, const struct model_state *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++) {
		const struct model_fe *x = &a->fe[i], *y = &b->fe[i];

		if (fe_key_cmp(x, y) || strcmp(x->svc.ns, y->svc.ns) ||
		    strcmp(x->svc.name, y->svc.name) || strcmp(x->svc.port_name, y->svc.port_name) ||
		    x->flags != y->flags || x->nbe != y->nbe ||
		    (x->nbe && memcmp(x->be, y->be, x->nbe * sizeof(x->be[0]))))
			return false;
	}
	return true;
}

static json_t *reversed(json_t *arr)
{
	json_t *out = json_array();
	size_t i = json_array_size(arr);

	while (out && i > 0)
		json_array_append(out, json_array_get(arr, --i));
	return out;
}

static json_t *find_obj(json_t *objs, const char *kind, const char *ns, const char *name)
{
	json_t *o;
	size_t i;

	json_array_foreach(objs, i, o) {
		json_t *md = json_object_get(o, "metadata");

		if (!strcmp(json_string_value(json_object_get(o, "kind")) ?: "", kind) &&
		    !strcmp(json_string_value(json_object_get(md, "namespace")) ?: "", ns) &&
		    !strcmp(json_string_value(json_object_get(md, "name")) ?: "", name))
			return o;
	}
	return NULL;
}

/* ------------------------------------------------------------------ tests */

static void test_basic(void)
{
	static const uint8_t vip[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 96, 0, 1 };
	static const uint8_t be0[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 172, 18, 0, 2 };
	struct model_fe *fe;
	struct run r;
	size_t i;
	bool any;

	build(&r, "model-basic.json", "node-a");
	expect_nwarn(&r.w, 0, "basic");
	check(r.st.n == 11, "basic: 11 frontends (got %zu)", r.st.n);

	/* The ABI encoding, byte by byte, without going through addr_parse(). */
	fe = find_fe(&r.st, "10.96.0.1", 443, IPPROTO_TCP);
	check(fe && !memcmp(fe->key.addr.a, vip, 16) &&
		      ((const uint8_t *)&fe->key.port)[0] == 0x01 &&
		      ((const uint8_t *)&fe->key.port)[1] == 0xbb && fe->key.proto == 6 &&
		      fe->key.pad == 0 && fe->flags == 0,
	      "kubernetes frontend key is ::ffff:10.96.0.1, port bytes 01 bb, proto 6");
	check(fe && fe->nbe == 1 && !memcmp(fe->be[0].addr.a, be0, 16) &&
		      ((const uint8_t *)&fe->be[0].port)[0] == 0x19 &&
		      ((const uint8_t *)&fe->be[0].port)[1] == 0x2b && fe->be[0].pad == 0,
	      "kubernetes backend is ::ffff:172.18.0.2, port bytes 19 2b (6443)");
	check(r.st.n && fe == &r.st.fe[0], "the lowest VIP (10.96.0.1) sorts first");
	expect_fe(&r.st, "10.96.0.1", 443, IPPROTO_TCP, "default/kubernetes:https",
		  "172.18.0.2:6443");

	/* Three ready endpoints, listed unsorted; sorted by address bytes, not as text. */
	expect_fe(&r.st, "10.96.12.34", 80, IPPROTO_TCP, "shop/web:",
		  "10.244.1.9:8080 10.244.1.15:8080 10.244.2.7:8080");

	/* Named targetPort "web" resolved by the controller into slice port "http" = 8080. */
	expect_fe(&r.st, "10.96.45.6", 80, IPPROTO_TCP, "shop/frontend:http",
		  "10.244.1.20:8080 10.244.2.21:8080");
	expect_fe(&r.st, "10.96.45.6", 9090, IPPROTO_TCP, "shop/frontend:metrics",
		  "10.244.1.20:9100 10.244.2.21:9100");
	check(count_svc(&r.st, "shop", "frontend") == 2, "shop/frontend: one frontend per port");

	/* DNS: 53/UDP and 53/TCP are separate frontends; key order TCP(6) < UDP(17) < 9153. */
	expect_fe(&r.st, "10.96.0.10", 53, IPPROTO_UDP, "kube-system/kube-dns:dns",
		  "10.244.0.3:53 10.244.0.4:53");
	expect_fe(&r.st, "10.96.0.10", 53, IPPROTO_TCP, "kube-system/kube-dns:dns-tcp",
		  "10.244.0.3:53 10.244.0.4:53");
	expect_fe(&r.st, "10.96.0.10", 9153, IPPROTO_TCP, "kube-system/kube-dns:metrics",
		  "10.244.0.3:9153 10.244.0.4:9153");
	check(fe_index(&r.st, "10.96.0.10", 53, IPPROTO_TCP) + 1 ==
			      fe_index(&r.st, "10.96.0.10", 53, IPPROTO_UDP) &&
		      fe_index(&r.st, "10.96.0.10", 53, IPPROTO_UDP) + 1 ==
			      fe_index(&r.st, "10.96.0.10", 9153, IPPROTO_TCP),
	      "kube-dns frontends sorted 53/TCP, 53/UDP, 9153/TCP");

	/* Same port number, both protocols, different target ports: matched by name+protocol. */
	expect_fe(&r.st, "10.96.14.2", 514, IPPROTO_UDP, "logs/collector:syslog",
		  "10.244.2.50:5140");
	expect_fe(&r.st, "10.96.14.2", 514, IPPROTO_TCP, "logs/collector:syslog-tls",
		  "10.244.2.50:6514");

	/* Legacy object: spec.clusterIP only. */
	expect_fe(&r.st, "10.96.200.1", 8000, IPPROTO_TCP, "legacy/old-api:", "10.244.4.20:8000");

	/* NodePort: only its ClusterIP frontend; the node port is not a ClusterIP frontend. */
	expect_fe(&r.st, "10.96.77.7", 80, IPPROTO_TCP, "shop/gateway:http", "10.244.1.60:8080");
	any = false;
	for (i = 0; i < r.st.n; i++)
		any = any || ntohs(r.st.fe[i].key.port) == 30080;
	check(!any, "no frontend on nodePort 30080");

	run_free(&r);
}

/* Object order (services after slices, any interleaving) does not change the result. */
static void test_order(void)
{
	struct run a, b;

	build(&a, "model-basic.json", "node-a");
	build_objs(&b, reversed(a.objs), "node-a", "model-basic.json reversed");
	check(state_equal(&a.st, &b.st), "basic: reversed object order gives the same state");
	run_free(&a);
	run_free(&b);
}

static void test_yaml_equals_json(void)
{
	struct run j, y;

	build(&j, "model-basic.json", "node-a");
	build(&y, "model-basic.yaml", "node-a");
	check(json_array_size(y.objs) == 14, "basic YAML stream: 14 objects (got %zu)",
	      json_array_size(y.objs));
	check(json_equal(j.objs, y.objs), "basic YAML stream parses to the same objects as JSON");
	check(state_equal(&j.st, &y.st), "basic YAML stream builds the same state as JSON");
	expect_nwarn(&y.w, 0, "basic YAML");
	run_free(&j);
	run_free(&y);
}

static void test_typed_lists(void)
{
	json_t *svcs = load(FIX "model-servicelist.json");
	json_t *eps = load(FIX "model-endpointslicelist.json");
	json_t *o, *all = json_array();
	bool kinds_ok = json_array_size(svcs) == 2 && json_array_size(eps) == 2;
	struct run r, y;
	size_t i;

	json_array_foreach(svcs, i, o)
		kinds_ok = kinds_ok &&
			   !strcmp(json_string_value(json_object_get(o, "kind")) ?: "", "Service");
	json_array_foreach(eps, i, o)
		kinds_ok = kinds_ok && !strcmp(json_string_value(json_object_get(o, "kind")) ?: "",
					       "EndpointSlice");
	check(kinds_ok, "ServiceList / EndpointSliceList items get kind Service / EndpointSlice");
	json_array_extend(all, svcs);
	json_array_extend(all, eps);
	json_decref(svcs);
	json_decref(eps);

	build_objs(&r, all, "node-a", "typed lists (JSON)");
	expect_nwarn(&r.w, 0, "typed lists");
	check(r.st.n == 3, "typed lists: 3 frontends (got %zu)", r.st.n);
	expect_fe(&r.st, "10.96.12.34", 80, IPPROTO_TCP, "shop/web:", "10.244.1.9:8080");
	expect_fe(&r.st, "10.96.0.10", 53, IPPROTO_UDP, "kube-system/kube-dns:dns",
		  "10.244.0.3:53");
	expect_fe(&r.st, "10.96.0.10", 53, IPPROTO_TCP, "kube-system/kube-dns:dns-tcp",
		  "10.244.0.3:53");

	build(&y, "model-typed-lists.yaml", "node-a");
	check(json_equal(r.objs, y.objs), "typed lists: YAML stream equals the two JSON lists");
	check(state_equal(&r.st, &y.st), "typed lists: YAML stream builds the same state");
	run_free(&r);
	run_free(&y);
}

static void test_dualstack(void)
{
	struct model_fe *fe;
	struct run r;

	build(&r, "model-dualstack.json", "node-a");
	expect_nwarn(&r.w, 0, "dual-stack");
	check(r.st.n == 5, "dual-stack: 5 frontends (got %zu)", r.st.n);

	expect_fe(&r.st, "10.96.5.5", 80, IPPROTO_TCP, "apps/dual:http",
		  "10.244.1.5:8080 10.244.2.6:8080");
	expect_fe(&r.st, "fd00:10:96::5", 80, IPPROTO_TCP, "apps/dual:http",
		  "[fd00:10:244:1::5]:8080 [fd00:10:244:2::6]:8080");
	fe = find_fe(&r.st, "10.96.5.5", 80, IPPROTO_TCP);
	check(fe && fe->flags == 0, "apps/dual IPv4 frontend: no V6 flag");
	fe = find_fe(&r.st, "fd00:10:96::5", 80, IPPROTO_TCP);
	check(fe && fe->flags == BPFSVC_FE_F_V6, "apps/dual IPv6 frontend: BPFSVC_FE_F_V6");

	/* clusterIPs listing IPv6 first. */
	expect_fe(&r.st, "fd00:10:96::b", 8443, IPPROTO_TCP, "apps/v6first:https",
		  "[fd00:10:244:1::11]:8443");
	expect_fe(&r.st, "10.96.5.11", 8443, IPPROTO_TCP, "apps/v6first:https",
		  "10.244.1.11:8443");

	/* Single-stack IPv6. */
	expect_fe(&r.st, "fd00:10:96::a", 443, IPPROTO_TCP, "apps/v6only:", "[fd00:10:244:3::7]:8443");
	fe = find_fe(&r.st, "fd00:10:96::a", 443, IPPROTO_TCP);
	check(fe && fe->flags == BPFSVC_FE_F_V6, "apps/v6only: BPFSVC_FE_F_V6");
	check(count_svc(&r.st, "apps", "v6only") == 1, "apps/v6only: no IPv4 frontend");

	/* v4-mapped ::ffff:a.b.c.d sorts before fd00::/8. */
	check(r.st.n == 5 && addr_is_v4(&r.st.fe[1].key.addr) &&
		      !addr_is_v4(&r.st.fe[2].key.addr),
	      "dual-stack: IPv4 frontends sort before IPv6 ones");
	run_free(&r);
}

static void test_conditions(void)
{
	struct model_fe *fe;
	struct run r;

	build(&r, "model-conditions.json", "node-a");
	expect_nwarn(&r.w, 0, "conditions");
	check(r.st.n == 7, "conditions: 7 frontends (got %zu)", r.st.n);

	/* ready:true and conditions:{} are used; ready:false (starting, or terminating while
	 * a ready one exists) is not. */
	expect_fe(&r.st, "10.96.30.1", 80, IPPROTO_TCP, "cond/mixed:http",
		  "10.244.3.1:8080 10.244.3.4:8080");
	/* None ready: serving+terminating ones are the fallback; not-serving ones never. */
	expect_fe(&r.st, "10.96.30.2", 80, IPPROTO_TCP, "cond/terminating:http",
		  "10.244.3.20:8080 10.244.3.23:8080");
	/* kube-proxy reads an unset serving as true: a terminating endpoint without it is
	 * still a fallback; not-ready, not-terminating ones are not (serving or not). */
	expect_fe(&r.st, "10.96.30.3", 80, IPPROTO_TCP, "cond/terminating-serving-unset:http",
		  "10.244.3.30:8080");
	/* Not ready, and the terminating one is not serving: nothing. */
	expect_fe(&r.st, "10.96.30.4", 80, IPPROTO_TCP, "cond/none-ready:http", "");
	fe = find_fe(&r.st, "10.96.30.4", 80, IPPROTO_TCP);
	check(fe && fe->nbe == 0 && fe->be == NULL, "cond/none-ready: nbe 0, be NULL");
	/* "endpoints": null, and no slice at all: the frontend exists with no backend. */
	expect_fe(&r.st, "10.96.30.5", 80, IPPROTO_TCP, "cond/empty:http", "");
	expect_fe(&r.st, "10.96.30.6", 80, IPPROTO_TCP, "cond/no-slice:http", "");
	/* publishNotReadyAddresses: the controller marks every endpoint ready; ready wins over
	 * serving:false and terminating:true. */
	expect_fe(&r.st, "10.96.30.7", 80, IPPROTO_TCP, "cond/publish-not-ready:http",
		  "10.244.3.70:8080 10.244.3.71:8080");
	run_free(&r);
}

static void test_slices(void)
{
	struct warnings w = {};
	const char *svc = "unset";
	struct run r;
	json_t *o;

	build(&r, "model-slices.json", "node-a");
	expect_nwarn(&r.w, 0, "slices");
	check(r.st.n == 3, "slices: 3 frontends (got %zu)", r.st.n);
	/* Two slices with 10.244.1.31 in both; not the other namespace's, not the unlabelled
	 * one, not the FQDN one, not the slice of another port name. */
	expect_fe(&r.st, "10.96.40.1", 80, IPPROTO_TCP, "shop/cart:http",
		  "10.244.1.30:8080 10.244.1.31:8080 10.244.2.32:8080");
	expect_fe(&r.st, "10.96.40.2", 80, IPPROTO_TCP, "other/cart:http", "10.244.9.9:8080");
	/* Slice ports match by name and protocol: a TCP slice port does not serve 5000/UDP. */
	expect_fe(&r.st, "10.96.40.3", 5000, IPPROTO_UDP, "shop/stream:", "");

	o = find_obj(r.objs, "EndpointSlice", "shop", "cart-fqdn");
	check(o && model_slice_check(o, record_warn, &w, &svc) == 1 && w.n == 0,
	      "model_slice_check: FQDN slice is ignored (1), silently");
	o = find_obj(r.objs, "EndpointSlice", "shop", "cart-manual");
	check(o && model_slice_check(o, record_warn, &w, &svc) == 1 && w.n == 0,
	      "model_slice_check: slice without kubernetes.io/service-name is ignored (1)");
	o = find_obj(r.objs, "EndpointSlice", "third", "cart-g5l2m");
	check(o && model_slice_check(o, record_warn, &w, &svc) == 0 && svc &&
		      !strcmp(svc, "cart"),
	      "model_slice_check: a controller slice is usable and names its service");
	run_free(&r);
}

static void test_ignored(void)
{
	struct run r;

	build(&r, "model-ignored.json", "node-a");
	expect_nwarn(&r.w, 0, "ignored");
	check(r.st.n == 1, "ignored: only mesh/plain has a frontend (got %zu)", r.st.n);
	/* Slices labelled service-proxy-name or headless are not watched, even for a plain
	 * service. */
	expect_fe(&r.st, "10.96.88.3", 80, IPPROTO_TCP, "mesh/plain:http", "10.244.5.1:8080");
	expect_no_fe(&r.st, "10.96.88.1", 80, IPPROTO_TCP, "service-proxy-name label");
	expect_no_fe(&r.st, "10.96.88.2", 80, IPPROTO_TCP, "service.kubernetes.io/headless label");
	expect_no_fe(&r.st, "10.96.88.9", 5432, IPPROTO_TCP, "ExternalName, even with a clusterIP");
	check(count_svc(&r.st, "db", "postgres-hl") == 0, "headless clusterIP None: no frontend");
	check(count_svc(&r.st, "db", "ext-db") == 0, "ExternalName: no frontend");
	run_free(&r);
}

static void test_itp(void)
{
	struct run r;

	build(&r, "model-itp.json", "node-a");
	expect_nwarn(&r.w, 0, "itp node-a");
	check(r.st.n == 4, "itp: 4 frontends (got %zu)", r.st.n);
	expect_fe(&r.st, "10.96.60.1", 9100, IPPROTO_TCP, "local/node-agent:metrics",
		  "10.244.1.40:9100 10.244.1.42:9100");
	expect_fe(&r.st, "10.96.60.2", 80, IPPROTO_TCP, "local/remote-only:http", "");
	/* The local endpoint is terminating: the fallback applies to local endpoints, a ready
	 * remote one does not replace it. */
	expect_fe(&r.st, "10.96.60.3", 80, IPPROTO_TCP, "local/local-term:http",
		  "10.244.1.50:8080");
	expect_fe(&r.st, "10.96.60.4", 80, IPPROTO_TCP, "local/cluster-policy:http",
		  "10.244.1.70:8080 10.244.2.71:8080");
	run_free(&r);

	build(&r, "model-itp.json", "node-b");
	expect_fe(&r.st, "10.96.60.1", 9100, IPPROTO_TCP, "local/node-agent:metrics",
		  "10.244.2.41:9100");
	expect_fe(&r.st, "10.96.60.2", 80, IPPROTO_TCP, "local/remote-only:http",
		  "10.244.2.60:8080");
	expect_fe(&r.st, "10.96.60.3", 80, IPPROTO_TCP, "local/local-term:http",
		  "10.244.2.51:8080");
	run_free(&r);

	build(&r, "model-itp.json", "node-c");
	expect_fe(&r.st, "10.96.60.1", 9100, IPPROTO_TCP, "local/node-agent:metrics", "");
	run_free(&r);

	/* No node name (NULL opts): no endpoint is local, Cluster policy is unaffected. */
	build(&r, "model-itp.json", NULL);
	expect_fe(&r.st, "10.96.60.1", 9100, IPPROTO_TCP, "local/node-agent:metrics", "");
	expect_fe(&r.st, "10.96.60.3", 80, IPPROTO_TCP, "local/local-term:http", "");
	expect_fe(&r.st, "10.96.60.4", 80, IPPROTO_TCP, "local/cluster-policy:http",
		  "10.244.1.70:8080 10.244.2.71:8080");
	run_free(&r);
}

static void test_bad(void)
{
	struct model_state quiet = {};
	struct run r;
	int rc;

	build(&r, "model-bad.json", "node-a");
	expect_nwarn(&r.w, 6, "bad");
	expect_warn(&r.w, "Service", "bad", "bad-ip", "10.96.300.1");
	expect_warn(&r.w, "Service", "bad", "port-zero", "port");
	expect_warn(&r.w, "Service", "bad", "port-big", "port");
	expect_warn(&r.w, "Service", "bad", "proto-foo", "FOO");
	expect_warn(&r.w, "EndpointSlice", "bad", "good-b-bad-addr", "10.244.1.999");
	expect_warn(&r.w, "EndpointSlice", "bad", "good-b-fam", "fd00:10:244:1::83");

	check(r.st.n == 2, "bad: only the 2 good services are built (got %zu)", r.st.n);
	expect_fe(&r.st, "10.96.70.1", 80, IPPROTO_TCP, "bad/good-a:http", "10.244.1.81:8080");
	/* The slice with a bad address is skipped whole (its good .82 too). */
	expect_fe(&r.st, "10.96.70.2", 80, IPPROTO_TCP, "bad/good-b:http", "10.244.1.84:8080");
	/* A service with one bad port is skipped whole. */
	expect_no_fe(&r.st, "10.96.70.3", 80, IPPROTO_TCP, "port-zero's valid port");
	expect_no_fe(&r.st, "10.96.70.4", 70000 & 0xffff, IPPROTO_TCP, "port 70000 truncated");

	/* No callback: same result, no crash. */
	rc = model_build(r.objs, NULL, NULL, NULL, &quiet);
	check(rc == 0 && state_equal(&r.st, &quiet), "bad: warn == NULL builds the same state");
	model_state_free(&quiet);
	run_free(&r);
}

static void test_conflict(void)
{
	struct run r, rev;

	build(&r, "model-conflict.json", "node-a");
	check(r.st.n == 3, "conflict: 3 frontends (got %zu)", r.st.n);
	/* b/api comes first in the file and sorts first by name; a/web wins anyway (ordered by
	 * namespace, then name). b/api keeps its other port. */
	expect_fe(&r.st, "10.96.50.1", 80, IPPROTO_TCP, "a/web:http", "10.244.1.91:8080");
	expect_fe(&r.st, "10.96.50.1", 81, IPPROTO_TCP, "b/api:alt", "10.244.1.92:8081");
	expect_fe(&r.st, "10.96.50.1", 80, IPPROTO_UDP, "a/udp:http", "10.244.1.93:8080");
	expect_nwarn(&r.w, 1, "conflict");
	expect_warn(&r.w, "Service", "b", "api", "a/web");

	build_objs(&rev, reversed(r.objs), "node-a", "conflict reversed");
	check(state_equal(&r.st, &rev.st), "conflict: the survivor does not depend on order");
	expect_nwarn(&rev.w, 1, "conflict reversed");
	expect_warn(&rev.w, "Service", "b", "api", "a/web");
	run_free(&r);
	run_free(&rev);
}

static const char *hold_b_api(void *ctx, const struct bpfsvc_fe_key *key)
{
	const struct bpfsvc_fe_key *held = ctx;

	return !memcmp(key, held, sizeof(*key)) ? "b/api" : NULL;
}

/* One Service object with the given clusterIP(s) (JSON array text) and creation time. */
static void add_svc(json_t *objs, const char *ns, const char *name, const char *ips,
		    const char *created)
{
	json_error_t jerr;
	json_t *svc = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:o, s:[{s:s, s:i}]}}", "kind",
				"Service", "apiVersion", "v1", "metadata", "namespace", ns, "name",
				name, "spec", "clusterIPs", json_loads(ips, 0, &jerr), "ports",
				"name", "http", "port", 80);

	if (created)
		json_object_set_new(json_object_get(svc, "metadata"), "creationTimestamp",
				    json_string(created));
	json_array_append_new(objs, svc);
}

/* Issue 7: a newcomer must not take a VIP:port from the service holding it. */
static void test_conflict_holder(void)
{
	struct model_opts opts = { .node_name = "node-a", .holder = hold_b_api };
	struct bpfsvc_fe_key held = {};
	struct model_state st = {};
	struct warnings w = {};
	json_t *objs = load(FIX "model-conflict.json");
	int rc;

	addr_parse("10.96.50.1", &held.addr);
	held.port = htons(80);
	held.proto = IPPROTO_TCP;
	opts.holder_ctx = &held;
	rc = model_build(objs, &opts, record_warn, &w, &st);
	check(rc == 0, "holder: model_build returns 0");
	expect_fe(&st, "10.96.50.1", 80, IPPROTO_TCP, "b/api:http", "10.244.1.92:8080");
	expect_warn(&w, "Service", "a", "web", "held by b/api");
	model_state_free(&st);
	json_decref(objs);

	/* Nobody holds it yet: the older service wins, whatever the names. */
	objs = json_array();
	add_svc(objs, "a", "new", "[\"10.96.0.10\"]", "2026-05-02T00:00:00Z");
	add_svc(objs, "z", "old", "[\"10.96.0.10\"]", "2025-01-01T10:00:00Z");
	memset(&w, 0, sizeof(w));
	rc = model_build(objs, NULL, record_warn, &w, &st);
	check(rc == 0 && st.n == 1 && !strcmp(st.fe[0].svc.name, "old"),
	      "no holder: the older service (creationTimestamp) keeps the VIP (got %s)",
	      st.n ? st.fe[0].svc.name : "-");
	expect_warn(&w, "Service", "a", "new", "held by z/old");
	model_state_free(&st);
	json_decref(objs);

	/* The same VIP under its IPv4-mapped IPv6 spelling is not a valid clusterIP. */
	objs = json_array();
	add_svc(objs, "a", "mapped", "[\"::ffff:10.96.0.10\"]", NULL);
	add_svc(objs, "b", "holder", "[\"10.96.0.10\"]", NULL);
	add_svc(objs, "c", "twofour", "[\"10.96.0.11\", \"10.96.0.12\"]", NULL);
	memset(&w, 0, sizeof(w));
	rc = model_build(objs, NULL, record_warn, &w, &st);
	check(rc == 0 && st.n == 1 && !strcmp(st.fe[0].svc.name, "holder"),
	      "a v4-mapped clusterIP is skipped, the holder keeps 10.96.0.10 (%zu frontends)",
	      st.n);
	expect_warn(&w, "Service", "a", "mapped", "IPv4-mapped");
	expect_warn(&w, "Service", "c", "twofour", "not one IPv4 and one IPv6");
	model_state_free(&st);
	json_decref(objs);

	/* "team" + "x/web" must not pass for the holder "team/x" + "web". */
	objs = json_array();
	add_svc(objs, "team", "x/web", "[\"10.96.0.10\"]", NULL);
	add_svc(objs, "team", "Web", "[\"10.96.0.11\"]", NULL);
	add_svc(objs, "team", "1web", "[\"10.96.0.12\"]", NULL);
	add_svc(objs, "te\nam", "web", "[\"10.96.0.13\"]", NULL);
	add_svc(objs, "team", "web-2", "[\"10.96.0.14\"]", NULL);
	memset(&w, 0, sizeof(w));
	rc = model_build(objs, NULL, record_warn, &w, &st);
	check(rc == 0 && st.n == 1 && !strcmp(st.fe[0].svc.name, "web-2"),
	      "names that are not DNS labels are skipped ('/', uppercase, leading digit, newline)");
	expect_nwarn(&w, 4, "bad names");
	expect_warn(&w, "Service", "team", "x/web", "not a DNS label");
	model_state_free(&st);
	json_decref(objs);
}

static void test_api(void)
{
	struct model_state st = {};
	json_t *o = json_object(), *a = json_array();
	struct warnings w = {};

	check(model_build(o, NULL, record_warn, &w, &st) == -EINVAL && st.n == 0,
	      "model_build on a non-array: -EINVAL");
	check(model_build(a, NULL, record_warn, &w, &st) == 0 && st.n == 0 && w.n == 0,
	      "model_build on []: empty state");
	model_state_free(&st);
	model_state_free(&st);
	model_state_free(NULL);
	check(st.fe == NULL && st.n == 0 && st.cap == 0, "model_state_free leaves a zeroed state");
	json_decref(o);
	json_decref(a);
}

static const char *hold_collector(void *ctx, const struct bpfsvc_fe_key *key)
{
	(void)ctx, (void)key;
	return "default/collector";
}

/* Found by tests/fuzz/fuzz_model: one Service listed twice in a file, the two definitions
 * claiming one VIP:port. The first build chose by creationTimestamp, the rebuild with that
 * service as holder (every later apply of the unchanged file) by sort order: the frontend
 * flipped between definitions. The first definition is the Service, the other is ignored. */
static void test_duplicate_service(void)
{
	/* The fuzzer's minimised input, verbatim. */
	static const char fuzz_input[] = "apiVersion: v\n"
					 "kind: Service\n"
					 "metadata:\n"
					 " name: collector\n"
					 "spec:\n"
					 "  clusterIP: 10.96.14.2\n"
					 "  ports:\n"
					 "  - name: x\n"
					 "    port: 514\n"
					 "---\n"
					 "apiVersion: v\n"
					 "kind: Service\n"
					 "metadata:\n"
					 "  creationTimestamp: '2-5-2T0:1:0Z'\n"
					 "  name: collector\n"
					 "spec:\n"
					 "  clusterIPs:\n"
					 "  - 10.96.14.2\n"
					 "  ports:\n"
					 "  - port: 514\n";
	struct model_opts opts = { .holder = hold_collector };
	struct model_state st = {}, again = {};
	struct warnings w = {};
	json_t *objs = NULL;
	char err[256] = "";
	int rc;

	rc = source_parse(fuzz_input, sizeof(fuzz_input) - 1, &objs, err, sizeof(err));
	check(rc == 0, "duplicate service: fuzz input parses (%s)", err);
	rc = model_build(objs, NULL, record_warn, &w, &st);
	check(rc == 0 && st.n == 1 && !strcmp(st.fe[0].svc.port_name, "x"),
	      "duplicate service: the first definition is used");
	expect_warn(&w, "Service", "default", "collector", "comes first, ignored");
	memset(&w, 0, sizeof(w));
	rc = model_build(objs, &opts, record_warn, &w, &again);
	check(rc == 0 && state_equal(&st, &again),
	      "duplicate service: rebuilt with it as the holder, nothing changes");
	model_state_free(&st);
	model_state_free(&again);
	json_decref(objs);

	/* Readable form: the later definition is the older one by creationTimestamp. */
	objs = json_array();
	add_svc(objs, "default", "collector", "[\"10.96.14.2\"]", "2024-06-01T00:00:00Z");
	add_svc(objs, "default", "collector", "[\"10.96.14.2\"]", "2024-01-01T00:00:00Z");
	json_object_set_new(json_array_get(json_object_get(json_object_get(json_array_get(objs, 1),
									    "spec"),
							   "ports"),
					   0),
			    "name", json_string("second"));
	memset(&w, 0, sizeof(w));
	rc = model_build(objs, NULL, record_warn, &w, &st);
	check(rc == 0 && st.n == 1 && !strcmp(st.fe[0].svc.port_name, "http"),
	      "duplicate service: the first definition wins over an older later one");
	expect_nwarn(&w, 1, "duplicate service");
	rc = model_build(objs, &opts, NULL, NULL, &again);
	check(rc == 0 && state_equal(&st, &again), "duplicate service: stable under its holder");
	model_state_free(&st);
	model_state_free(&again);
	json_decref(objs);
}

/*
 * Objects as kube-apiserver 1.30 serves them (tests/apiserver/testdata, in the shape `kubectl
 * get svc,endpointslice -o json` prints): managedFields, defaulted and allocated fields,
 * "endpoints": null and "ports": null on a placeholder slice, hints, targetRef, terminating
 * endpoints, a headless and an ExternalName service, an unnamed LoadBalancer port.
 */
#define SERVED "tests/apiserver/testdata/kubectl-get-svc-endpointslice.json"

static void test_served_shapes(void)
{
	struct model_state api = {};
	struct warnings w = {};
	json_t *objs, *o, *slices;
	struct run r;
	size_t i, j;
	int rc = 0;

	build_objs(&r, load(SERVED), "node1", "served shapes");
	expect_nwarn(&r.w, 0, "served shapes");
	check(r.st.n == 8, "served shapes: 8 frontends (got %zu)", r.st.n);
	/* Only the ready endpoint: not-ready and terminating ones are left out. */
	expect_fe(&r.st, "10.96.120.34", 80, IPPROTO_TCP, "demo/web:http", "10.244.1.5:8080");
	expect_fe(&r.st, "10.96.5.7", 53, IPPROTO_UDP, "demo/dual:dns", "10.244.1.9:5353");
	expect_fe(&r.st, "10.96.5.7", 53, IPPROTO_TCP, "demo/dual:dns-tcp", "10.244.1.9:5353");
	expect_fe(&r.st, "fd00:10:96::5:7", 53, IPPROTO_UDP, "demo/dual:dns", "[fd00:244:1::9]:5353");
	expect_fe(&r.st, "fd00:10:96::5:7", 53, IPPROTO_TCP, "demo/dual:dns-tcp",
		  "[fd00:244:1::9]:5353");
	/* Every endpoint terminating but serving: the fallback. */
	expect_fe(&r.st, "10.96.33.10", 8080, IPPROTO_TCP, "demo/np:web",
		  "10.244.1.20:8080 10.244.2.21:8080");
	/* Service port without a name, slice port "name": "". */
	expect_fe(&r.st, "10.96.200.5", 443, IPPROTO_TCP, "demo/lb:", "10.244.1.30:8443 10.244.2.31:8443");
	/* Placeholder slice (endpoints and ports null): a frontend without backends. */
	expect_fe(&r.st, "10.96.44.44", 80, IPPROTO_TCP, "demo/idle:http", "");
	check(count_svc(&r.st, "demo", "db") == 0 && count_svc(&r.st, "demo", "ext") == 0,
	      "served shapes: headless and ExternalName services have no frontend");

	/* The API source's path: list items carry no kind; slices are checked one by one and
	 * joined to their service by label, then each service is added on its own. */
	objs = r.objs;
	json_array_foreach(objs, i, o) {
		const char *kind = json_string_value(json_object_get(o, "kind"));
		const char *name = json_string_value(
			json_object_get(json_object_get(o, "metadata"), "name"));
		json_t *s;

		if (strcmp(kind, "Service"))
			continue;
		slices = json_array();
		json_array_foreach(objs, j, s) {
			const char *owner = NULL;

			if (strcmp(json_string_value(json_object_get(s, "kind")), "EndpointSlice"))
				continue;
			s = json_deep_copy(s);
			json_object_del(s, "kind");
			json_object_del(s, "apiVersion");
			if (model_slice_check(s, record_warn, &w, &owner) == 0 && !strcmp(owner, name))
				json_array_append(slices, s);
			json_decref(s);
		}
		o = json_deep_copy(o);
		json_object_del(o, "kind");
		json_object_del(o, "apiVersion");
		rc |= model_add_service(o, slices, NULL, record_warn, &w, &api);
		json_decref(o);
		json_decref(slices);
	}
	model_sort(&api);
	check(rc == 0 && w.n == 0 && state_equal(&api, &r.st),
	      "served shapes: list items without kind, service by service, give the same state");
	model_state_free(&api);
	run_free(&r);
}

/* Kubernetes identity: one key format and the slice-to-service join, for every stage. */
static void test_keys(void)
{
	char buf[MODEL_KEY_LEN], name[300];
	json_t *o;

	check(!model_key(buf, sizeof(buf), "team", "web") && !strcmp(buf, "team/web"),
	      "model_key: ns/name");
	check(!model_key(buf, sizeof(buf), "", "web") && !strcmp(buf, "default/web") &&
		      !model_key(buf, sizeof(buf), NULL, "web") && !strcmp(buf, "default/web"),
	      "model_key: no namespace is the default one");
	check(model_key(buf, sizeof(buf), "team", "") == -EINVAL && !buf[0],
	      "model_key: no name is -EINVAL");
	memset(name, 'a', 253);
	name[253] = 0;
	check(!model_key(buf, sizeof(buf), "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk",
			 name),
	      "model_key: a 63-character namespace and a 253-character name fit MODEL_KEY_LEN");
	check(model_key(buf, 8, "team", "website") == -ENAMETOOLONG, "model_key: too long is an error");

	o = json_loads("{\"metadata\":{\"name\":\"web-abc\",\"namespace\":\"team\","
		       "\"labels\":{\"kubernetes.io/service-name\":\"web\"}}}", 0, NULL);
	check(!model_obj_key(o, buf, sizeof(buf)) && !strcmp(buf, "team/web-abc"),
	      "model_obj_key: the object's own key");
	check(!model_slice_owner(o, buf, sizeof(buf)) && !strcmp(buf, "team/web"),
	      "model_slice_owner: the Service a slice joins, by label");
	json_object_del(json_object_get(json_object_get(o, "metadata"), "labels"),
			MODEL_LABEL_SVC_NAME);
	check(model_slice_owner(o, buf, sizeof(buf)) == -ENOENT && !buf[0],
	      "model_slice_owner: no label, no owner");
	json_decref(o);
	check(!strcmp(MODEL_LABEL_SELECTOR,
		      "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"),
	      "the list selector is kube-proxy's");
}

int main(void)
{
	test_keys();
	test_basic();
	test_order();
	test_yaml_equals_json();
	test_typed_lists();
	test_dualstack();
	test_conditions();
	test_slices();
	test_ignored();
	test_itp();
	test_bad();
	test_conflict();
	test_conflict_holder();
	test_duplicate_service();
	test_served_shapes();
	test_api();

	return check_summary();
}
