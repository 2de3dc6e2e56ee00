// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * kube-proxy semantics, as its endpointslicecache and topology filtering apply them:
 * - a Service is proxied unless it is headless (clusterIP None), ExternalName, or carries the
 *   service.kubernetes.io/service-proxy-name or .../headless label (the same label selector
 *   kube-proxy watches with);
 * - one frontend per clusterIPs entry x spec.ports entry;
 * - an EndpointSlice joins its Service by the kubernetes.io/service-name label and namespace;
 *   its ports are matched to a service port by name and protocol (the endpoint controller
 *   already resolved named and numeric targetPorts into the slice's port numbers);
 * - only the first address of an endpoint is used; an endpoint is used when ready (unset means
 *   ready); when a service has no ready endpoint, serving+terminating ones are used instead
 *   (ProxyTerminatingEndpoints);
 * - internalTrafficPolicy Local keeps only endpoints on this node;
 * - the same endpoint in several slices (mid-update) counts once.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "addr.h"
#include "array.h"
#include "model.h"

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *obj_ns(json_t *obj)
{
	const char *ns = jstr(json_object_get(obj, "metadata"), "namespace");

	/* kubectl always prints it; a hand-written manifest means the default namespace. */
	return ns && *ns ? ns : "default";
}

static const char *obj_name(json_t *obj)
{
	const char *n = jstr(json_object_get(obj, "metadata"), "name");

	return n ? n : "";
}

static const char *obj_label(json_t *obj, const char *label)
{
	return jstr(json_object_get(json_object_get(obj, "metadata"), "labels"), label);
}

int model_key(char *buf, size_t len, const char *ns, const char *name)
{
	int n;

	if (!name || !*name) {
		if (len)
			buf[0] = 0;
		return -EINVAL;
	}
	n = snprintf(buf, len, "%s/%s", ns && *ns ? ns : "default", name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int model_obj_key(json_t *obj, char *buf, size_t len)
{
	json_t *md = json_object_get(obj, "metadata");

	return model_key(buf, len, jstr(md, "namespace"), jstr(md, "name"));
}

int model_slice_owner(json_t *slice, char *buf, size_t len)
{
	const char *svc = obj_label(slice, MODEL_LABEL_SVC_NAME);

	if (!svc || !*svc) {
		if (len)
			buf[0] = 0;
		return -ENOENT;
	}
	return model_key(buf, len, jstr(json_object_get(slice, "metadata"), "namespace"), svc);
}

/* metadata.creationTimestamp as the API server writes it ("2026-01-02T03:04:05Z"), in Unix
 * seconds; INT64_MAX (newest) when absent or in another form. */
static int64_t obj_created(json_t *obj)
{
	const char *s = jstr(json_object_get(obj, "metadata"), "creationTimestamp");
	struct tm tm = {};
	int n = 0;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != (int)strlen(s))
		return INT64_MAX;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

/* RFC 1123 label (namespaces), or with first_alpha RFC 1035 label (Service names), as the
 * API server validates them. Anything else, '/' above all, would make "ns/name" keys
 * ambiguous and reach terminals through `bpfsvc list`. */
static bool dns_label(const char *s, bool first_alpha)
{
	size_t n = strlen(s);

	if (!n || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	if (first_alpha && !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static bool has_label(json_t *obj, const char *label)
{
	return json_object_get(json_object_get(json_object_get(obj, "metadata"), "labels"), label);
}

static void warnf(model_warn_fn warn, void *arg, const char *kind, json_t *obj, const char *fmt,
		  ...) __attribute__((format(printf, 5, 6)));

static void warnf(model_warn_fn warn, void *arg, const char *kind, json_t *obj, const char *fmt,
		  ...)
{
	char why[256];
	va_list ap;

	if (!warn)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	warn(arg, kind, obj_ns(obj), obj_name(obj), why);
}

/* Kubernetes protocol field: absent means TCP. */
static int port_proto(json_t *port)
{
	json_t *p = json_object_get(port, "protocol");

	if (!p || json_is_null(p))
		return IPPROTO_TCP;
	if (!json_is_string(p))
		return -EINVAL;
	return proto_parse(json_string_value(p));
}

static const char *port_name(json_t *port)
{
	const char *n = jstr(port, "name");

	return n ? n : "";
}

/* A port number 1..65535 or -EINVAL. */
static int port_number(json_t *v)
{
	json_int_t n;

	if (!json_is_integer(v))
		return -EINVAL;
	n = json_integer_value(v);
	return n >= 1 && n <= 65535 ? (int)n : -EINVAL;
}

static int family_of_type(const char *address_type)
{
	if (!address_type)
		return -EINVAL;
	if (!strcmp(address_type, "IPv4"))
		return 4;
	if (!strcmp(address_type, "IPv6"))
		return 6;
	if (!strcmp(address_type, "FQDN"))
		return 0;
	return -EINVAL;
}

int model_slice_check(json_t *slice, model_warn_fn warn, void *arg, const char **svc_name)
{
	const char *kind = "EndpointSlice";
	json_t *labels = json_object_get(json_object_get(slice, "metadata"), "labels");
	json_t *ports = json_object_get(slice, "ports");
	json_t *eps = json_object_get(slice, "endpoints");
	const char *svc = jstr(labels, MODEL_LABEL_SVC_NAME);
	json_t *p, *ep;
	size_t i;
	int fam;

	if (has_label(slice, MODEL_LABEL_PROXY_NAME) || has_label(slice, MODEL_LABEL_HEADLESS))
		return 1;
	fam = family_of_type(jstr(slice, "addressType"));
	if (fam < 0) {
		warnf(warn, arg, kind, slice, "unknown addressType");
		return -EINVAL;
	}
	if (fam == 0 || !svc || !*svc)
		return 1; /* FQDN or not owned by a service: kube-proxy ignores it */
	/* No service can have such a name (see dns_label): it joins nothing. */
	if (!dns_label(svc, true) || !dns_label(obj_ns(slice), false))
		return 1;
	/* "ports": null and "endpoints": null are what the API server prints for empty lists. */
	if (ports && !json_is_null(ports) && !json_is_array(ports)) {
		warnf(warn, arg, kind, slice, "ports is not a list");
		return -EINVAL;
	}
	json_array_foreach(ports, i, p) {
		json_t *num = json_object_get(p, "port");

		if (port_proto(p) < 0) {
			warnf(warn, arg, kind, slice, "port %zu: unknown protocol", i);
			return -EINVAL;
		}
		/* A null port means "all ports"; kube-proxy skips it, so do we. */
		if (num && !json_is_null(num) && port_number(num) < 0) {
			warnf(warn, arg, kind, slice, "port %zu: port out of range", i);
			return -EINVAL;
		}
	}
	if (eps && !json_is_null(eps) && !json_is_array(eps)) {
		warnf(warn, arg, kind, slice, "endpoints is not a list");
		return -EINVAL;
	}
	json_array_foreach(eps, i, ep) {
		json_t *addrs = json_object_get(ep, "addresses");
		struct bpfsvc_addr a;
		const char *s;

		if (!json_is_array(addrs) || json_array_size(addrs) == 0) {
			warnf(warn, arg, kind, slice, "endpoint %zu: no addresses", i);
			return -EINVAL;
		}
		s = json_string_value(json_array_get(addrs, 0));
		if (addr_parse(s, &a) != fam) {
			warnf(warn, arg, kind, slice, "endpoint %zu: bad %s address \"%s\"", i,
			      fam == 4 ? "IPv4" : "IPv6", s ? s : "");
			return -EINVAL;
		}
	}
	*svc_name = svc;
	return 0;
}

/* Endpoint conditions with kube-proxy's defaults for unset fields: ready and serving true,
 * terminating false (endpointslicecache.go; the API doc's "serving defers to ready" is not
 * what kube-proxy does). */
static void ep_conditions(json_t *ep, bool *ready, bool *serving, bool *terminating)
{
	json_t *c = json_object_get(ep, "conditions");
	json_t *r = json_object_get(c, "ready"), *s = json_object_get(c, "serving"),
	       *t = json_object_get(c, "terminating");

	*ready = !json_is_boolean(r) || json_is_true(r);
	*serving = !json_is_boolean(s) || json_is_true(s);
	*terminating = json_is_boolean(t) && json_is_true(t);
}

static int be_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct bpfsvc_backend));
}

/* Sort and drop duplicates (an endpoint in two slices during an update). */
static uint32_t be_uniq(struct bpfsvc_backend *be, uint32_t n)
{
	uint32_t i, w = 0;

	if (n == 0)
		return 0;
	qsort(be, n, sizeof(*be), be_cmp);
	for (i = 1; i < n; i++)
		if (be_cmp(&be[w], &be[i]))
			be[++w] = be[i];
	return w + 1;
}

struct be_list {
	struct bpfsvc_backend *v;
	uint32_t n;
	size_t cap;
};

static int be_push(struct be_list *l, const struct bpfsvc_addr *a, int port)
{
	struct bpfsvc_backend *v = array_grow(l->v, sizeof(*v), &l->cap, l->n + 1, 8);

	if (!v)
		return -ENOMEM;
	l->v = v;
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	l->v[l->n].addr = *a;
	l->v[l->n].port = htons((uint16_t)port);
	l->n++;
	return 0;
}

/* The slice's port number for a service port (matched by name and protocol), or 0. */
static int slice_port_for(json_t *slice, const char *name, int proto)
{
	json_t *p;
	size_t i;

	json_array_foreach(json_object_get(slice, "ports"), i, p) {
		int num = port_number(json_object_get(p, "port"));

		if (num > 0 && port_proto(p) == proto && !strcmp(port_name(p), name))
			return num;
	}
	return 0;
}

/*
 * Collect the backends of one service port in one family into *ready (or, when none is
 * ready, the serving+terminating fallback into *fallback).
 */
static int collect_backends(json_t *slices, int fam, const char *pname, int proto,
			    const char *only_node, struct be_list *ready, struct be_list *fallback)
{
	json_t *slice, *ep;
	size_t i, j;
	int err;

	json_array_foreach(slices, i, slice) {
		int port;

		if (family_of_type(jstr(slice, "addressType")) != fam)
			continue;
		port = slice_port_for(slice, pname, proto);
		if (!port)
			continue;
		json_array_foreach(json_object_get(slice, "endpoints"), j, ep) {
			const char *s = json_string_value(json_array_get(json_object_get(ep, "addresses"), 0));
			bool is_ready, serving, terminating;
			struct bpfsvc_addr a;

			if (only_node) {
				const char *node = jstr(ep, "nodeName");

				if (!node || strcmp(node, only_node))
					continue;
			}
			if (addr_parse(s, &a) != fam)
				continue; /* model_slice_check rejects these; stay safe */
			ep_conditions(ep, &is_ready, &serving, &terminating);
			if (is_ready)
				err = be_push(ready, &a, port);
			else if (serving && terminating)
				err = be_push(fallback, &a, port);
			else
				err = 0;
			if (err)
				return err;
		}
	}
	return 0;
}

static int state_push(struct model_state *st, struct model_fe *fe)
{
	struct model_fe *v = array_grow(st->fe, sizeof(*v), &st->cap, st->n + 1, 64);

	if (!v)
		return -ENOMEM;
	st->fe = v;
	st->fe[st->n++] = *fe;
	return 0;
}

/* Validate the service-level fields. Returns 1 to ignore, 0 to proxy, -EINVAL if bad. */
static int svc_check(json_t *svc, model_warn_fn warn, void *arg, struct bpfsvc_addr *vips,
		     int *fams, size_t *nvips)
{
	const char *kind = "Service";
	json_t *spec = json_object_get(svc, "spec");
	json_t *ips = json_object_get(spec, "clusterIPs");
	json_t *ports = json_object_get(spec, "ports");
	const char *type = jstr(spec, "type");
	json_t *ip, *p;
	size_t i;

	if (has_label(svc, MODEL_LABEL_PROXY_NAME) || has_label(svc, MODEL_LABEL_HEADLESS))
		return 1;
	if (type && !strcmp(type, "ExternalName"))
		return 1;
	if (!dns_label(obj_ns(svc), false) || !dns_label(obj_name(svc), true)) {
		warnf(warn, arg, kind, svc,
		      "namespace or name missing or not a DNS label (lowercase letters, digits, '-', "
		      "at most 63)");
		return -EINVAL;
	}
	if (!json_is_array(ips) || json_array_size(ips) == 0) {
		/* Older objects only have the singular field. */
		ips = json_pack("[O?]", json_object_get(spec, "clusterIP"));
		if (!ips)
			return -ENOMEM;
	} else {
		json_incref(ips);
	}
	*nvips = 0;
	json_array_foreach(ips, i, ip) {
		const char *s = json_string_value(ip);

		if (i == 0 && (!s || !*s || !strcmp(s, "None"))) {
			json_decref(ips);
			return 1; /* headless, or no VIP allocated */
		}
		if (*nvips == 2) {
			warnf(warn, arg, kind, svc, "more than two clusterIPs");
			json_decref(ips);
			return -EINVAL;
		}
		fams[*nvips] = addr_parse(s, &vips[*nvips]);
		if (fams[*nvips] < 0) {
			warnf(warn, arg, kind, svc, "bad clusterIP \"%s\"", s ? s : "");
			json_decref(ips);
			return -EINVAL;
		}
		/* "::ffff:10.96.0.10" would be the IPv4 VIP under another spelling; the API server
		 * rejects it, so must we. */
		if (fams[*nvips] == 4 && strchr(s, ':')) {
			warnf(warn, arg, kind, svc,
			      "clusterIP \"%s\" is an IPv4-mapped IPv6 address, not a valid clusterIP", s);
			json_decref(ips);
			return -EINVAL;
		}
		if (*nvips == 1 && fams[0] == fams[1]) {
			warnf(warn, arg, kind, svc, "clusterIPs are not one IPv4 and one IPv6 address");
			json_decref(ips);
			return -EINVAL;
		}
		(*nvips)++;
	}
	json_decref(ips);
	if (!json_is_array(ports)) {
		warnf(warn, arg, kind, svc, "spec.ports missing");
		return -EINVAL;
	}
	json_array_foreach(ports, i, p) {
		if (port_proto(p) < 0) {
			warnf(warn, arg, kind, svc, "port %zu: unknown protocol \"%s\"", i,
			      jstr(p, "protocol") ? jstr(p, "protocol") : "?");
			return -EINVAL;
		}
		if (port_number(json_object_get(p, "port")) < 0) {
			warnf(warn, arg, kind, svc, "port %zu: port out of range", i);
			return -EINVAL;
		}
		if (strlen(port_name(p)) >= BPFSVC_PORTNAME_LEN) {
			warnf(warn, arg, kind, svc, "port %zu: name too long", i);
			return -EINVAL;
		}
	}
	return 0;
}

int model_add_service(json_t *svc, json_t *slices, const struct model_opts *opts,
		      model_warn_fn warn, void *arg, struct model_state *out)
{
	json_t *spec = json_object_get(svc, "spec");
	const char *itp = jstr(spec, "internalTrafficPolicy");
	const char *only_node = NULL;
	struct bpfsvc_addr vips[2];
	struct be_list ready = {}, fallback = {};
	int fams[2];
	size_t nvips, i, v;
	int64_t created;
	json_t *p;
	int err;

	err = svc_check(svc, warn, arg, vips, fams, &nvips);
	if (err)
		return err > 0 ? 0 : err;
	created = obj_created(svc);
	if (itp && !strcmp(itp, "Local"))
		/* No node name: no endpoint is local, every connect is refused, as kube-proxy
		 * does for a node without local endpoints. */
		only_node = opts && opts->node_name ? opts->node_name : "";

	json_array_foreach(json_object_get(spec, "ports"), i, p) {
		int proto = port_proto(p);
		const char *pname = port_name(p);

		for (v = 0; v < nvips; v++) {
			struct model_fe fe = {};
			struct be_list *use;

			ready.n = fallback.n = 0;
			err = collect_backends(slices, fams[v], pname, proto, only_node, &ready,
					       &fallback);
			if (err)
				goto cleanup;
			use = ready.n ? &ready : &fallback;
			fe.key.addr = vips[v];
			fe.key.port = htons((uint16_t)port_number(json_object_get(p, "port")));
			fe.key.proto = (uint8_t)proto;
			fe.flags = fams[v] == 6 ? BPFSVC_FE_F_V6 : 0;
			fe.created = created;
			snprintf(fe.svc.ns, sizeof(fe.svc.ns), "%s", obj_ns(svc));
			snprintf(fe.svc.name, sizeof(fe.svc.name), "%s", obj_name(svc));
			snprintf(fe.svc.port_name, sizeof(fe.svc.port_name), "%s", pname);
			fe.nbe = be_uniq(use->v, use->n);
			if (fe.nbe) {
				fe.be = malloc(fe.nbe * sizeof(*fe.be));
				if (!fe.be) {
					err = -ENOMEM;
					goto cleanup;
				}
				memcpy(fe.be, use->v, fe.nbe * sizeof(*fe.be));
			}
			err = state_push(out, &fe);
			if (err) {
				free(fe.be);
				goto cleanup;
			}
		}
	}
	err = 0;
cleanup:
	free(ready.v);
	free(fallback.v);
	return err;
}

static int fe_cmp(const void *a, const void *b)
{
	const struct model_fe *x = a, *y = b;
	int c = memcmp(&x->key, &y->key, sizeof(x->key));

	if (c)
		return c;
	/* Same frontend claimed twice: order by owner so the survivor is deterministic. */
	c = strcmp(x->svc.ns, y->svc.ns);
	return c ? c : strcmp(x->svc.name, y->svc.name);
}

void model_sort(struct model_state *st)
{
	if (st->n)
		qsort(st->fe, st->n, sizeof(st->fe[0]), fe_cmp);
}

void model_state_free(struct model_state *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < st->n; i++)
		free(st->fe[i].be);
	free(st->fe);
	memset(st, 0, sizeof(*st));
}

static bool owned_by(const struct model_fe *fe, const char *holder)
{
	size_t n = strlen(fe->svc.ns);

	return holder && !strncmp(holder, fe->svc.ns, n) && holder[n] == '/' &&
	       !strcmp(holder + n + 1, fe->svc.name);
}

/* Which of the n frontends claiming one key keeps it (they are sorted by namespace/name). */
static size_t conflict_winner(const struct model_fe *fe, size_t n, const struct model_opts *opts)
{
	const char *holder = opts && opts->holder ? opts->holder(opts->holder_ctx, &fe[0].key) : NULL;
	size_t best = 0;

	for (size_t i = 0; i < n; i++)
		if (owned_by(&fe[i], holder))
			return i;
	for (size_t i = 1; i < n; i++)
		if (fe[i].created < fe[best].created)
			best = i;
	return best;
}

/* Keep one of the frontends with the same key (two services, one VIP:port). */
static void drop_conflicts(struct model_state *st, const struct model_opts *opts,
			   model_warn_fn warn, void *arg)
{
	size_t i = 0, w = 0;

	while (i < st->n) {
		size_t j = i + 1, win;

		while (j < st->n && !memcmp(&st->fe[i].key, &st->fe[j].key, sizeof(st->fe[i].key)))
			j++;
		win = i + conflict_winner(&st->fe[i], j - i, opts);
		for (size_t k = i; k < j; k++) {
			char fe[ADDR_STR_LEN], why[256];

			if (k == win)
				continue;
			if (warn) {
				snprintf(why, sizeof(why), "frontend %s/%s held by %s/%s, ignored",
					 addr_port_fmt(&st->fe[k].key.addr, ntohs(st->fe[k].key.port),
						       fe, sizeof(fe)),
					 proto_name(st->fe[k].key.proto), st->fe[win].svc.ns,
					 st->fe[win].svc.name);
				warn(arg, "Service", st->fe[k].svc.ns, st->fe[k].svc.name, why);
			}
			free(st->fe[k].be);
		}
		st->fe[w++] = st->fe[win];
		i = j;
	}
	st->n = w;
}

int model_build(json_t *objects, const struct model_opts *opts, model_warn_fn warn, void *arg,
		struct model_state *out)
{
	json_t *by_svc = NULL, *empty = NULL, *seen = NULL, *obj;
	char key[MODEL_KEY_LEN];
	size_t i;
	int err;

	if (!json_is_array(objects))
		return -EINVAL;
	by_svc = json_object();
	empty = json_array();
	seen = json_object();
	if (!by_svc || !empty || !seen) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* Join slices to services by namespace/name once: O(services + slices). */
	json_array_foreach(objects, i, obj) {
		const char *svc;
		json_t *list;

		if (!json_is_object(obj) || strcmp(jstr(obj, "kind") ?: "", "EndpointSlice"))
			continue;
		if (model_slice_check(obj, warn, arg, &svc))
			continue;
		if (model_key(key, sizeof(key), obj_ns(obj), svc))
			continue; /* model_slice_check took its name as a DNS label */
		list = json_object_get(by_svc, key);
		if (!list) {
			list = json_array();
			if (!list || json_object_set_new(by_svc, key, list)) {
				err = -ENOMEM;
				goto cleanup;
			}
		}
		if (json_array_append(list, obj)) {
			err = -ENOMEM;
			goto cleanup;
		}
	}
	json_array_foreach(objects, i, obj) {
		json_t *slices;

		if (!json_is_object(obj) || strcmp(jstr(obj, "kind") ?: "", "Service"))
			continue;
		model_key(key, sizeof(key), obj_ns(obj), obj_name(obj));
		/* A file may list one Service twice. Were both kept, the VIP holder (known by
		 * namespace/name only) could not tell them apart and the winner would flip
		 * between applies of an unchanged file: the first one is the Service. */
		if (json_object_get(seen, key)) {
			warnf(warn, arg, "Service", obj,
			      "another Service of this namespace and name comes first, ignored");
			continue;
		}
		if (json_object_set_new(seen, key, json_true())) {
			err = -ENOMEM;
			goto cleanup;
		}
		slices = json_object_get(by_svc, key);
		err = model_add_service(obj, slices ? slices : empty, opts, warn, arg, out);
		if (err == -ENOMEM)
			goto cleanup;
	}
	model_sort(out);
	drop_conflicts(out, opts, warn, arg);
	err = 0;
cleanup:
	json_decref(by_svc);
	json_decref(empty);
	json_decref(seen);
	return err;
}
