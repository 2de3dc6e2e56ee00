// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The API source's stores (user/source_api_store.c) under allocation failure: a resync takes
 * every object or none. A list built in part would read as "these services were deleted"
 * and remove frontends that must stay, so each n-th allocation is made to fail in turn and
 * every build must either be whole or fail with -ENOMEM and hand nothing out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fail_alloc.h"
#include "source_api_store.h"


static json_t *obj(const char *kind, const char *ns, const char *name, const char *svc)
{
	json_t *o = json_pack("{s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{}}", "kind", kind, "metadata",
			      "namespace", ns, "name", name, "annotations", "a", "b", "x", "y",
			      "status");

	if (svc)
		json_object_set_new(json_object_get(o, "metadata"), "labels",
				    json_pack("{s:s}", "kubernetes.io/service-name", svc));
	return o;
}

/* The stores of a small cluster: services "ns/s0".."ns/s<n-1>", two slices each. */
static void stores(int n, json_t **svcs, json_t **slices)
{
	char name[32], key[64];

	*svcs = json_object();
	*slices = json_object();
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		snprintf(key, sizeof(key), "ns/%s", name);
		json_object_set_new(*svcs, key, obj("Service", "ns", name, NULL));
		for (int j = 0; j < 2; j++) {
			char sl[48], skey[64];

			snprintf(sl, sizeof(sl), "%s-%d", name, j);
			snprintf(skey, sizeof(skey), "ns/%s", sl);
			json_object_set_new(*slices, skey, obj("EndpointSlice", "ns", sl, name));
		}
	}
}

/* Fail the k-th allocation of build(), for every k until one build gets through. */
static void each_failure(const char *what, int (*build)(void *ctx, json_t **out),
			 bool (*whole)(void *ctx, json_t *out), void *ctx)
{
	long k, fails = 0, partial = 0, leaked = 0;

	for (k = 0; k < 100000; k++) {
		json_t *out = NULL;
		int ret;

		allocs_left = k;
		ret = build(ctx, &out);
		allocs_left = -1;
		if (ret == 0) {
			if (!whole(ctx, out))
				partial++;
			json_decref(out);
			break;
		}
		fails++;
		if (ret != -ENOMEM)
			partial++;
		if (out)
			leaked++;
	}
	check(fails > 0 && !partial && !leaked,
	      "%s: %ld injected failures each gave -ENOMEM and nothing, then a whole result", what,
	      fails);
}

struct all_ctx {
	json_t *svcs, *slices;
};

static int build_all(void *ctx, json_t **out)
{
	struct all_ctx *c = ctx;

	return api_store_all(c->svcs, c->slices, out);
}

static bool all_whole(void *ctx, json_t *out)
{
	struct all_ctx *c = ctx;

	return json_array_size(out) == json_object_size(c->svcs) + json_object_size(c->slices);
}

static int build_slices(void *ctx, json_t **out)
{
	return api_store_slices(ctx, "ns/s3", out);
}

static bool slices_whole(void *ctx, json_t *out)
{
	(void)ctx;
	return json_array_size(out) == 2;
}

static int build_index(void *ctx, json_t **out)
{
	return api_index_build(ctx, out);
}

static bool index_whole(void *ctx, json_t *out)
{
	(void)ctx;
	return json_object_size(out) == 40 &&
	       json_object_size(json_object_get(out, "ns/s7")) == 2;
}

/* A list page: the items as the API server sends them (no kind), into a fresh listing. */
static int build_page(void *ctx, json_t **out)
{
	json_t *listing = json_object();
	int ret;

	if (!listing)
		return -ENOMEM;
	ret = api_list_add(listing, ctx, "Service");
	if (ret) {
		/* What list_done does: the listing is dropped whole. */
		json_decref(listing);
		return ret;
	}
	*out = listing;
	return 0;
}

static bool page_whole(void *ctx, json_t *out)
{
	json_t *s = json_object_get(out, "ns/p9");

	return json_object_size(out) == json_array_size(ctx) &&
	       !strcmp(json_string_value(json_object_get(s, "kind")), "Service") &&
	       !json_object_get(s, "status") &&
	       !json_object_get(json_object_get(s, "metadata"), "annotations");
}

int main(void)
{
	struct all_ctx all;
	json_t *idx = NULL, *page = json_array(), *out = NULL;
	char name[16];

	json_set_alloc_funcs(failing_malloc, free);
	stores(40, &all.svcs, &all.slices);
	for (int i = 0; i < 30; i++) {
		json_t *o;

		snprintf(name, sizeof(name), "p%d", i);
		o = obj("Service", "ns", name, NULL);
		json_object_del(o, "kind");
		json_array_append_new(page, o);
	}
	check(api_index_build(all.slices, &idx) == 0 && index_whole(NULL, idx),
	      "the slice index holds every service's slices");

	each_failure("every object for a resync (api_store_all)", build_all, all_whole, &all);
	each_failure("the slices of one service (api_store_slices)", build_slices, slices_whole,
		     idx);
	each_failure("the slice index of a new list (api_index_build)", build_index, index_whole,
		     all.slices);
	each_failure("a list page (api_list_add)", build_page, page_whole, page);

	/* A service without slices gets an empty array, not an error. */
	check(api_store_slices(idx, "ns/none", &out) == 0 && json_array_size(out) == 0,
	      "a service without slices has an empty list of them");
	json_decref(out);
	json_decref(idx);
	json_decref(page);
	json_decref(all.svcs);
	json_decref(all.slices);
	return check_summary();
}
