// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <jansson.h>

#include "addr.h"
#include "array.h"
#include "datapath_maps.h"
#include "list.h"

struct row {
	struct bpfsvc_fe_key key;
	struct bpfsvc_fe_val val;
	struct bpfsvc_svc_info info;
	struct bpfsvc_stats st;
	struct bpfsvc_backend *be;
	uint32_t nbe;
};

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int c;

	if ((c = strcmp(x->info.ns, y->info.ns)) || (c = strcmp(x->info.name, y->info.name)) ||
	    (c = strcmp(x->info.port_name, y->info.port_name)))
		return c;
	/* IPv4 (v4-mapped, ::ffff:) sorts after IPv6 by bytes; show IPv4 first. */
	c = (int)addr_is_v4(&y->key.addr) - (int)addr_is_v4(&x->key.addr);
	return c ? c : memcmp(&x->key, &y->key, sizeof(x->key));
}

/* Read every frontend with its service, counters and backends, through the reader of m. */
static int read_rows(const struct dp_maps *m, struct row **rows, size_t *nrows)
{
	const struct dp_map_ops *ops = m->ops;
	struct bpfsvc_fe_key k, *prev = NULL;
	struct row *v = NULL;
	size_t n = 0, cap = 0, w = 0;
	int err = 0;

	while (!ops->fe_next(m->ctx, prev, &k)) {
		struct row *r, *p;
		struct bpfsvc_slot_key sk;

		prev = &k;
		p = array_grow(v, sizeof(*v), &cap, n + 1, 64);
		if (!p) {
			err = -ENOMEM;
			goto cleanup;
		}
		v = p;
		r = &v[n];
		memset(r, 0, sizeof(*r));
		r->key = k;
		if (ops->fe_lookup(m->ctx, &k, &r->val))
			continue; /* deleted while we walked */
		if (ops->svc_lookup(m->ctx, r->val.svc_id, &r->info))
			memset(&r->info, 0, sizeof(r->info));
		r->info.ns[BPFSVC_NS_LEN - 1] = r->info.name[BPFSVC_NAME_LEN - 1] = 0;
		r->info.port_name[BPFSVC_PORTNAME_LEN - 1] = 0;
		/* No counters (yet) shows zeros. */
		if (ops->stats_lookup(m->ctx, r->val.svc_id, &r->st) == -ENOMEM) {
			err = -ENOMEM;
			goto cleanup;
		}
		/* Trust the count only as far as the slot map could hold it. */
		if (r->val.count > m->max_slots)
			r->val.count = 0;
		r->be = calloc(r->val.count ? r->val.count : 1, sizeof(*r->be));
		if (!r->be) {
			err = -ENOMEM;
			goto cleanup;
		}
		n++;
		for (sk.set_id = r->val.set_id, sk.idx = 0; sk.idx < r->val.count; sk.idx++)
			if (!ops->slot_lookup(m->ctx, &sk, &r->be[r->nbe]))
				r->nbe++;
	}
	if (n)
		qsort(v, n, sizeof(*v), row_cmp);
	/* The walk restarts from the first key when the one it stood on was deleted
	 * meanwhile (the agent is running): drop the rows seen twice. */
	for (size_t i = 0; i < n; i++) {
		if (w && !memcmp(&v[i].key, &v[w - 1].key, sizeof(v[i].key))) {
			free(v[i].be);
			continue;
		}
		v[w++] = v[i];
	}
	n = w;
cleanup:
	if (err) {
		for (size_t i = 0; i < n; i++)
			free(v[i].be);
		free(v);
		return err;
	}
	*rows = v;
	*nrows = n;
	return 0;
}

static int print_json(const struct row *rows, size_t n, FILE *out)
{
	json_t *arr = json_array();
	char ip[ADDR_STR_LEN];
	int err = -ENOMEM;

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		json_t *bes = json_array(), *o;

		if (!bes)
			goto cleanup;
		for (uint32_t b = 0; b < r->nbe; b++)
			if (json_array_append_new(
				    bes, json_pack("{s:s, s:i}", "ip",
						   addr_fmt(&r->be[b].addr, ip, sizeof(ip)), "port",
						   ntohs(r->be[b].port)))) {
				json_decref(bes);
				goto cleanup;
			}
		o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:o}", "namespace", r->info.ns,
			      "name", r->info.name, "port_name", r->info.port_name, "vip",
			      addr_fmt(&r->key.addr, ip, sizeof(ip)), "port", ntohs(r->key.port),
			      "protocol", proto_name(r->key.proto), "backends", bes);
		if (json_array_append_new(arr, o))
			goto cleanup;
	}
	err = json_dumpf(arr, out, JSON_INDENT(2)) ? -EIO : 0;
	fputc('\n', out);
cleanup:
	json_decref(arr);
	return err;
}

static void print_table(const struct row *rows, size_t n, FILE *out)
{
	char fe[ADDR_STR_LEN], be[ADDR_STR_LEN], svc[BPFSVC_NS_LEN + BPFSVC_NAME_LEN + 20];

	fprintf(out, "%-5s %-28s %-40s %10s %10s\n", "Prot", "VIP:Port", "Service", "Connects",
		"NoBackend");
	fprintf(out, "  -> Backend:Port\n");
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		snprintf(svc, sizeof(svc), "%s/%s%s%s", r->info.ns, r->info.name,
			 r->info.port_name[0] ? ":" : "", r->info.port_name);
		fprintf(out, "%-5s %-28s %-40s %10llu %10llu\n", proto_name(r->key.proto),
			addr_port_fmt(&r->key.addr, ntohs(r->key.port), fe, sizeof(fe)), svc,
			(unsigned long long)r->st.connects, (unsigned long long)r->st.no_backend);
		if (!r->nbe)
			fprintf(out, "  (no backends: connections are refused)\n");
		for (uint32_t b = 0; b < r->nbe; b++)
			fprintf(out, "  -> %s\n",
				addr_port_fmt(&r->be[b].addr, ntohs(r->be[b].port), be, sizeof(be)));
	}
}

int list_print(const char *pin_path, bool json, FILE *out, char *err, size_t errlen)
{
	struct pinned_maps m;
	struct dp_maps h;
	struct row *rows = NULL;
	size_t n = 0;
	int ret;

	ret = pinned_open(pin_path, &m, err, errlen);
	if (ret)
		return ret;
	h = pinned_maps_handle(&m);
	ret = read_rows(&h, &rows, &n);
	if (ret) {
		snprintf(err, errlen, "read maps: %s", strerror(-ret));
		goto cleanup;
	}
	if (json)
		ret = print_json(rows, n, out);
	else
		print_table(rows, n, out);
cleanup:
	for (size_t i = 0; i < n; i++)
		free(rows[i].be);
	free(rows);
	pinned_close(&m);
	return ret;
}
