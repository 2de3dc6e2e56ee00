// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit test for user/reconcile.c end to end, from a source to the maps, over the fake
 * datapath of fake_maps.h: a fake source holds Services and EndpointSlices in stores and
 * hands them out through the API source's own list builders (source_api_store.c). A resync
 * whose snapshot cannot be taken (no memory) must leave the maps exactly as they were: a
 * partial list would read as "these services are gone" and delete frontends that must stay.
 * Built by `make asan`; run build/asan/tests/test_reconcile.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fail_alloc.h"
#include "fake_maps.h"
#include "reconcile.h"
#include "source.h"
#include "source_api_store.h"


/* ------------------------------------------------------------------------------------------ */
/* Fake source                                                                                */
/* ------------------------------------------------------------------------------------------ */

struct fake_src {
	struct source s;
	json_t *svcs, *slices; /* "ns/name" -> object, as the API source's stores */
	int fail;	       /* snapshot() and service() return this instead, if not 0 */
	unsigned snapshots, snapshot_fails, service_fails;
};

static int fsrc_snapshot(struct source *s, json_t **objects)
{
	struct fake_src *fs = (struct fake_src *)s;
	int ret = fs->fail ? fs->fail : api_store_all(fs->svcs, fs->slices, objects);

	fs->snapshots++;
	fs->snapshot_fails += ret != 0;
	return ret;
}

static int fsrc_service(struct source *s, const char *svc_key, json_t **svc, json_t **slices)
{
	struct fake_src *fs = (struct fake_src *)s;
	json_t *by_svc = NULL;
	int ret = fs->fail;

	if (!ret)
		ret = api_index_build(fs->slices, &by_svc);
	if (!ret)
		ret = api_store_slices(by_svc, svc_key, slices);
	json_decref(by_svc);
	if (ret) {
		fs->service_fails++;
		return ret;
	}
	*svc = json_object_get(fs->svcs, svc_key);
	return 0;
}

static const struct source_ops fsrc_ops = { .snapshot = fsrc_snapshot, .service = fsrc_service };

static json_t *service(const char *name, const char *ip, int port, const char *proto)
{
	return json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s, s:[s], s:[{s:s, s:i, s:s}]}}", "kind",
			 "Service", "metadata", "namespace", "default", "name", name, "spec", "type",
			 "ClusterIP", "clusterIP", ip, "clusterIPs", ip, "ports", "name", "p", "port",
			 port, "protocol", proto);
}

/* An EndpointSlice of service name: n ready endpoints 10.0.<net>.1.. on port. */
static json_t *slice(const char *name, int net, int n, int port, const char *proto)
{
	json_t *eps = json_array();
	char ip[32], sname[64];

	for (int i = 1; i <= n; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", net, i);
		json_array_append_new(eps, json_pack("{s:[s], s:{s:b}}", "addresses", ip,
						     "conditions", "ready", 1));
	}
	snprintf(sname, sizeof(sname), "%s-abc", name);
	return json_pack("{s:s, s:{s:s, s:s, s:{s:s}}, s:s, s:o, s:[{s:s, s:i, s:s}]}", "kind",
			 "EndpointSlice", "metadata", "namespace", "default", "name", sname,
			 "labels", "kubernetes.io/service-name", name, "addressType", "IPv4",
			 "endpoints", eps, "ports", "name", "p", "port", port, "protocol", proto);
}

static void put(struct fake_src *fs, const char *name, const char *ip, int vport, int net,
		int n, int port, const char *proto)
{
	char key[64], skey[64];

	snprintf(key, sizeof(key), "default/%s", name);
	snprintf(skey, sizeof(skey), "default/%s-abc", name);
	json_object_set_new(fs->svcs, key, service(name, ip, vport, proto));
	json_object_set_new(fs->slices, skey, slice(name, net, n, port, proto));
}

static void drop(struct fake_src *fs, const char *name)
{
	char key[64], skey[64];

	snprintf(key, sizeof(key), "default/%s", name);
	snprintf(skey, sizeof(skey), "default/%s-abc", name);
	json_object_del(fs->svcs, key);
	json_object_del(fs->slices, skey);
}

/* ------------------------------------------------------------------------------------------ */
/* What the fake maps hold                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Everything the maps hold, byte for byte, and how many writes were issued. */
struct image {
	struct fake_fe *fe;
	size_t nfe, nslots, nlog;
	struct fake_set *sets; /* nsets, absent ones zeroed */
	uint32_t nsets;
	struct bpfsvc_svc_info *svc;
};

static void image_take(struct image *im, const struct fake *f)
{
	memset(im, 0, sizeof(*im));
	im->nfe = f->nfe;
	im->nslots = f->nslots;
	im->nlog = f->nlog;
	im->nsets = f->nsets;
	im->fe = calloc(f->nfe + 1, sizeof(*im->fe));
	im->sets = calloc(f->nsets + 1, sizeof(*im->sets));
	im->svc = calloc(f->max_svc, sizeof(*im->svc));
	if (!im->fe || !im->sets || !im->svc)
		abort();
	memcpy(im->fe, f->fe, f->nfe * sizeof(*f->fe));
	for (uint32_t i = 0; i < f->nsets; i++)
		if (f->sets[i])
			im->sets[i] = *f->sets[i];
	memcpy(im->svc, f->svc, f->max_svc * sizeof(*f->svc));
}

static void image_free(struct image *im)
{
	free(im->fe);
	free(im->sets);
	free(im->svc);
}

/* Do the maps hold exactly im, with no write issued since? */
static bool image_same(const struct image *im, const struct fake *f)
{
	struct image now;
	bool same;

	image_take(&now, f);
	same = now.nfe == im->nfe && now.nslots == im->nslots && now.nlog == im->nlog &&
	       now.nsets == im->nsets && !memcmp(now.fe, im->fe, im->nfe * sizeof(*im->fe)) &&
	       !memcmp(now.sets, im->sets, im->nsets * sizeof(*im->sets)) &&
	       !memcmp(now.svc, im->svc, f->max_svc * sizeof(*im->svc));
	image_free(&now);
	return same;
}

static struct bpfsvc_fe_key vip(const char *ip, int port, const char *proto)
{
	struct bpfsvc_fe_key k;
	struct in_addr a;

	memset(&k, 0, sizeof(k));
	inet_pton(AF_INET, ip, &a);
	k.addr.a[10] = k.addr.a[11] = 0xff;
	memcpy(&k.addr.a[12], &a.s_addr, 4);
	k.port = htons((uint16_t)port);
	k.proto = !strcmp(proto, "UDP") ? IPPROTO_UDP : IPPROTO_TCP;
	return k;
}

/* Backends behind VIP ip:port, -1 if the maps hold no such frontend or it is not whole (its
 * slots, its service "default/name"). */
static int backends(struct fake *f, const char *name, const char *ip, int port,
		    const char *proto)
{
	struct bpfsvc_fe_key k = vip(ip, port, proto);
	const struct fake_fe *e = fake_fe_find(f, &k);
	const struct bpfsvc_svc_info *si;

	if (!e || e->v.svc_id >= f->max_svc)
		return -1;
	si = &f->svc[e->v.svc_id];
	if (!si->in_use || strcmp(si->ns, "default") || strcmp(si->name, name))
		return -1;
	for (uint32_t j = 0; j < e->v.count; j++)
		if (!fake_slot(f, e->v.set_id, j, NULL))
			return -1;
	return (int)e->v.count;
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                      */
/* ------------------------------------------------------------------------------------------ */

struct env {
	struct fake f;
	struct fake_src src;
	struct reconcile *rc;
	const struct source_sink *sink;
};

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	fake_init(&e->f, 64);
	fake_batch(&e->f);
	e->src.s.ops = &fsrc_ops;
	e->src.svcs = json_object();
	e->src.slices = json_object();
	put(&e->src, "web", "10.96.0.10", 80, 1, 2, 8080, "TCP");
	put(&e->src, "dns", "10.96.0.20", 53, 2, 3, 53, "UDP");
	if (reconcile_open_maps(&e->f.maps, "node-a", &e->src.s, &e->rc))
		abort();
	e->sink = reconcile_sink(e->rc);
}

static void env_fini(struct env *e)
{
	reconcile_stop(e->rc);
	reconcile_close(e->rc);
	json_decref(e->src.svcs);
	json_decref(e->src.slices);
	fake_fini(&e->f);
}

static void resync(struct env *e)
{
	e->sink->resync(e->sink->arg, "test");
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A watch read that changed service key; armed, the k-th allocation of its apply fails. */
static void changed(struct env *e, const char *key, long k)
{
	e->sink->changed(e->sink->arg, key);
	allocs_left = k;
	e->sink->batch_end(e->sink->arg, mono_ns());
	allocs_left = -1;
}

static bool initial_state(struct fake *f)
{
	return f->nfe == 2 && backends(f, "web", "10.96.0.10", 80, "TCP") == 2 &&
	       backends(f, "dns", "10.96.0.20", 53, "UDP") == 3;
}

static void test_resync_programs(void)
{
	struct env e;

	env_init(&e);
	check(e.f.nfe == 0, "fresh fake maps: nothing adopted");
	resync(&e);
	check(initial_state(&e.f), "resync: the maps hold web (2 backends) and dns (3 backends)");
	check(e.f.batches > 0, "resync: backend sets written with batched writes");
	check(!e.f.violations, "resync: a concurrent reader never saw a partial frontend (%s)",
	      e.f.first_violation);
	env_fini(&e);
}

/* The snapshot fails whole (the source said -ENOMEM): no write at all, then a resync that
 * gets through converges. */
static void test_resync_snapshot_enomem(void)
{
	struct env e;
	struct image before;

	env_init(&e);
	resync(&e);
	image_take(&before, &e.f);
	/* What a partial list would look like: web gone, dns changed. */
	drop(&e.src, "web");
	put(&e.src, "dns", "10.96.0.20", 53, 2, 1, 53, "UDP");
	e.src.fail = -ENOMEM;
	resync(&e);
	check(e.src.snapshot_fails == 1, "snapshot failed with -ENOMEM");
	check(image_same(&before, &e.f),
	      "a resync whose snapshot failed left the maps byte for byte as they were, no write");
	check(initial_state(&e.f), "no frontend was deleted");
	e.src.fail = 0;
	resync(&e);
	check(e.f.nfe == 1 && backends(&e.f, "web", "10.96.0.10", 80, "TCP") < 0 &&
		      backends(&e.f, "dns", "10.96.0.20", 53, "UDP") == 1,
	      "the next resync converges (web removed, dns down to 1 backend)");
	check(!e.f.violations, "no partial frontend seen (%s)", e.f.first_violation);
	image_free(&before);
	env_fini(&e);
}

/*
 * Each k-th jansson allocation of a whole resync fails in turn, until one gets through. One
 * whose snapshot failed must leave the maps untouched; one that failed later (sync's own
 * memory: that frontend is retried) may have written the rest of a whole state, but no
 * attempt ever takes web, which stays, out of the maps.
 */
static void test_resync_each_alloc_failure(void)
{
	struct env e;
	long k, snap_touched = 0, web_lost = 0;
	unsigned snap_fails = 0;
	bool converged = false;

	env_init(&e);
	resync(&e);
	drop(&e.src, "dns");
	put(&e.src, "web", "10.96.0.10", 80, 1, 3, 8080, "TCP");
	put(&e.src, "db", "10.96.0.30", 5432, 3, 2, 5432, "TCP");
	for (k = 0; k < 100000 && !converged; k++) {
		struct image before;
		unsigned fails = e.src.snapshot_fails;

		image_take(&before, &e.f);
		allocs_left = k;
		resync(&e);
		allocs_left = -1;
		if (e.src.snapshot_fails != fails) {
			snap_fails++;
			snap_touched += !image_same(&before, &e.f);
		}
		web_lost += backends(&e.f, "web", "10.96.0.10", 80, "TCP") < 2;
		converged = e.f.nfe == 2 && backends(&e.f, "web", "10.96.0.10", 80, "TCP") == 3 &&
			    backends(&e.f, "db", "10.96.0.30", 5432, "TCP") == 2;
		image_free(&before);
	}
	check(converged, "resync with allocation failures: converged after %ld attempts", k);
	check(snap_fails > 0 && !snap_touched,
	      "each of %u resyncs whose snapshot failed left the maps byte for byte as they were",
	      snap_fails);
	check(!web_lost, "no attempt took out a frontend that stays (%ld did)", web_lost);
	check(!e.f.violations, "no partial frontend seen (%s)", e.f.first_violation);
	env_fini(&e);
}

/* A watch's change goes through the per-service path; one whose slices cannot be listed
 * changes nothing. */
static void test_service_change(void)
{
	struct env e;
	struct image before;
	long k, untouched = 0, bad = 0;
	bool converged = false;

	env_init(&e);
	resync(&e);
	put(&e.src, "web", "10.96.0.10", 80, 1, 4, 8080, "TCP");
	changed(&e, "default/web", -1);
	check(e.f.nfe == 2 && backends(&e.f, "web", "10.96.0.10", 80, "TCP") == 4 &&
		      backends(&e.f, "dns", "10.96.0.20", 53, "UDP") == 3,
	      "a changed service: its frontend rewritten (4 backends), the other left alone");

	image_take(&before, &e.f);
	drop(&e.src, "web");
	e.src.fail = -ENOMEM;
	changed(&e, "default/web", -1);
	check(e.src.service_fails == 1 && image_same(&before, &e.f),
	      "a change whose service cannot be read (-ENOMEM) left the maps as they were");
	e.src.fail = 0;
	image_free(&before);
	{
		uint64_t later = mono_ns() + 6000000000ULL;

		check(reconcile_next_deadline(e.rc) <= later,
		      "  and is not lost: the agent wakes within 6 s");
		reconcile_tick(e.rc, later);
		check(e.f.nfe == 1 && backends(&e.f, "web", "10.96.0.10", 80, "TCP") < 0 &&
			      backends(&e.f, "dns", "10.96.0.20", 53, "UDP") == 3,
		      "  a whole resync then removes web without the change being sent again");
		put(&e.src, "web", "10.96.0.10", 80, 1, 4, 8080, "TCP");
		changed(&e, "default/web", -1);
		drop(&e.src, "web");
	}

	for (k = 0; k < 100000 && !converged; k++) {
		image_take(&before, &e.f);
		changed(&e, "default/web", k);
		converged = e.f.nfe == 1 && backends(&e.f, "web", "10.96.0.10", 80, "TCP") < 0 &&
			    backends(&e.f, "dns", "10.96.0.20", 53, "UDP") == 3;
		if (image_same(&before, &e.f))
			untouched++;
		else if (!converged)
			bad++;
		image_free(&before);
	}
	check(converged && e.src.service_fails > 1 && !bad && untouched == k - 1,
	      "a deleted service under %ld allocation failures: untouched each time, then removed",
	      untouched);
	check(!e.f.violations, "no partial frontend seen (%s)", e.f.first_violation);
	env_fini(&e);
}

int main(void)
{
	json_set_alloc_funcs(failing_malloc, free);
	test_resync_programs();
	test_resync_snapshot_enomem();
	test_resync_each_alloc_failure();
	test_service_change();
	return check_summary();
}
