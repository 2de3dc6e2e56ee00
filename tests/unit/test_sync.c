// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit test for user/sync.c and user/sync_adopt.c against the fake map backend of fake_maps.h
 * (struct dp_map_ops of datapath_maps.h, reads and batched writes included): in-memory frontend,
 * slot and service tables, an ordered log of every write, injectable failures and
 * capacity limits. After every single fake operation a simulated concurrent reader checks
 * that each frontend in the fake map names a complete backend set and a service in use
 * (the atomic-switch rule of DESIGN.md). Built by `make asan`; run build/asan/tests/test_sync.
 */
#include "model.h"
#include "sync.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fake_maps.h"

#define SEC 1000000000ULL
#define GRACE (2 * SEC)

/* Count logged ops from index from on of type t (touching set_id / fe key if given). */
static size_t log_count(const struct fake *f, size_t from, enum op_type t)
{
	size_t n = 0;

	for (size_t i = from; i < f->nlog; i++)
		n += f->log[i].t == t;
	return n;
}

static bool log_touches_key(const struct fake *f, size_t from, const struct bpfsvc_fe_key *k)
{
	for (size_t i = from; i < f->nlog; i++)
		if ((f->log[i].t == OP_FE_UPD || f->log[i].t == OP_FE_DEL) &&
		    !memcmp(&f->log[i].fk, k, sizeof(*k)))
			return true;
	return false;
}

static bool log_touches_set(const struct fake *f, size_t from, uint32_t set_id)
{
	for (size_t i = from; i < f->nlog; i++)
		if ((f->log[i].t == OP_SLOT_UPD || f->log[i].t == OP_SLOT_DEL) &&
		    f->log[i].sk.set_id == set_id)
			return true;
	return false;
}

static bool log_touches_svc(const struct fake *f, size_t from, uint32_t id)
{
	for (size_t i = from; i < f->nlog; i++)
		if (f->log[i].t == OP_SVC_SET && f->log[i].svc_id == id)
			return true;
	return false;
}

/* Index of the first op of type t on key k (or set/svc) from 'from', or (size_t)-1. */
static size_t log_find_fe(const struct fake *f, size_t from, enum op_type t,
			  const struct bpfsvc_fe_key *k)
{
	for (size_t i = from; i < f->nlog; i++)
		if (f->log[i].t == t && !memcmp(&f->log[i].fk, k, sizeof(*k)))
			return i;
	return (size_t)-1;
}

static size_t log_find_svc(const struct fake *f, size_t from, uint32_t id, bool clear)
{
	for (size_t i = from; i < f->nlog; i++)
		if (f->log[i].t == OP_SVC_SET && f->log[i].svc_id == id && f->log[i].clear == clear)
			return i;
	return (size_t)-1;
}

/*
 * Ordering of a batch of writes from 'from': every successful frontend update comes after a
 * successful write of each slot of its set and of its service info (within the batch or
 * before it, if the slot/info was not written in the batch at all).
 */
static bool log_ordered(const struct fake *f, size_t from, char *why, size_t len)
{
	for (size_t p = from; p < f->nlog; p++) {
		const struct op *o = &f->log[p];

		if (o->t != OP_FE_UPD || o->rc)
			continue;
		for (uint32_t j = 0; j < o->fv.count; j++) {
			bool seen = false;

			for (size_t q = from; q < p; q++)
				seen |= f->log[q].t == OP_SLOT_UPD && !f->log[q].rc &&
					f->log[q].sk.set_id == o->fv.set_id && f->log[q].sk.idx == j;
			if (!seen) {
				snprintf(why, len, "op %zu: fe update names set %u slot %u not written before",
					 p, o->fv.set_id, j);
				return false;
			}
		}
		if (log_touches_svc(f, from, o->fv.svc_id)) {
			size_t q = log_find_svc(f, from, o->fv.svc_id, false);

			if (q > p) {
				snprintf(why, len, "op %zu: fe update before its svc info %u", p,
					 o->fv.svc_id);
				return false;
			}
		}
	}
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Desired states                                                                             */
/* ------------------------------------------------------------------------------------------ */

#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static struct bpfsvc_addr addr4(uint32_t ip)
{
	struct bpfsvc_addr a;
	uint32_t n = htonl(ip);

	memset(&a, 0, sizeof(a));
	a.a[10] = a.a[11] = 0xff;
	memcpy(&a.a[12], &n, 4);
	return a;
}

/* fd00::<hi>:<lo> */
static struct bpfsvc_addr addr6(uint16_t hi, uint16_t lo)
{
	struct bpfsvc_addr a;

	memset(&a, 0, sizeof(a));
	a.a[0] = 0xfd;
	a.a[12] = (uint8_t)(hi >> 8);
	a.a[13] = (uint8_t)hi;
	a.a[14] = (uint8_t)(lo >> 8);
	a.a[15] = (uint8_t)lo;
	return a;
}

static struct bpfsvc_fe_key key4(uint32_t ip, uint16_t port, uint8_t proto)
{
	struct bpfsvc_fe_key k;

	memset(&k, 0, sizeof(k));
	k.addr = addr4(ip);
	k.port = htons(port);
	k.proto = proto;
	return k;
}

static struct bpfsvc_fe_key key6(uint16_t lo, uint16_t port, uint8_t proto)
{
	struct bpfsvc_fe_key k;

	memset(&k, 0, sizeof(k));
	k.addr = addr6(0x96, lo);
	k.port = htons(port);
	k.proto = proto;
	return k;
}

static struct bpfsvc_backend be4(uint32_t ip, uint16_t port)
{
	struct bpfsvc_backend b;

	memset(&b, 0, sizeof(b));
	b.addr = addr4(ip);
	b.port = htons(port);
	return b;
}

static struct bpfsvc_backend be6(uint16_t lo, uint16_t port)
{
	struct bpfsvc_backend b;

	memset(&b, 0, sizeof(b));
	b.addr = addr6(0x244, lo);
	b.port = htons(port);
	return b;
}

static int be_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct bpfsvc_backend));
}

static void st_add(struct model_state *st, struct bpfsvc_fe_key k, const char *ns,
		   const char *name, const char *port_name, uint16_t flags,
		   const struct bpfsvc_backend *be, uint32_t nbe)
{
	struct model_fe *fe;

	if (st->n == st->cap) {
		st->cap = st->cap ? 2 * st->cap : 16;
		st->fe = realloc(st->fe, st->cap * sizeof(*st->fe));
		if (!st->fe)
			abort();
	}
	fe = &st->fe[st->n++];
	memset(fe, 0, sizeof(*fe));
	fe->key = k;
	snprintf(fe->svc.ns, sizeof(fe->svc.ns), "%s", ns);
	snprintf(fe->svc.name, sizeof(fe->svc.name), "%s", name);
	snprintf(fe->svc.port_name, sizeof(fe->svc.port_name), "%s", port_name);
	fe->flags = flags;
	fe->nbe = nbe;
	if (nbe) {
		fe->be = malloc(nbe * sizeof(*be));
		if (!fe->be)
			abort();
		memcpy(fe->be, be, nbe * sizeof(*be));
		qsort(fe->be, nbe, sizeof(*be), be_cmp);
	}
}

static bool info_is(const struct bpfsvc_svc_info *i, const struct model_svc_ref *r)
{
	return i->in_use && !strcmp(i->ns, r->ns) && !strcmp(i->name, r->name) &&
	       !strcmp(i->port_name, r->port_name);
}

/* Does the fake map hold exactly want (frontends, their backends and owners)? */
static bool fake_equals(const struct fake *f, const struct model_state *want, char *why, size_t len)
{
	if (f->nfe != want->n) {
		snprintf(why, len, "fake has %zu frontends, want %zu", f->nfe, want->n);
		return false;
	}
	for (size_t i = 0; i < want->n; i++) {
		const struct model_fe *m = &want->fe[i];
		const struct fake_fe *e = NULL;

		for (size_t j = 0; j < f->nfe; j++)
			if (!memcmp(&f->fe[j].k, &m->key, sizeof(m->key)))
				e = &f->fe[j];
		if (!e) {
			snprintf(why, len, "wanted frontend #%zu missing", i);
			return false;
		}
		if (e->v.count != m->nbe || e->v.flags != m->flags) {
			snprintf(why, len, "frontend #%zu: count %u flags %u, want %u %u", i,
				 e->v.count, e->v.flags, m->nbe, m->flags);
			return false;
		}
		if (e->v.svc_id >= f->max_svc || !info_is(&f->svc[e->v.svc_id], &m->svc)) {
			snprintf(why, len, "frontend #%zu: svc %u is not %s/%s:%s", i, e->v.svc_id,
				 m->svc.ns, m->svc.name, m->svc.port_name);
			return false;
		}
		for (uint32_t j = 0; j < m->nbe; j++) {
			struct bpfsvc_backend b;

			if (!fake_slot(f, e->v.set_id, j, &b) || memcmp(&b, &m->be[j], sizeof(b))) {
				snprintf(why, len, "frontend #%zu: slot %u of set %u wrong", i, j,
					 e->v.set_id);
				return false;
			}
		}
	}
	return true;
}

/* Every svc info in use is referenced by a frontend, and no service has two ids. */
static bool fake_svc_clean(const struct fake *f, char *why, size_t len)
{
	for (uint32_t id = 0; id < f->max_svc; id++) {
		bool used = false;

		if (!f->svc[id].in_use)
			continue;
		for (size_t i = 0; i < f->nfe; i++)
			used |= f->fe[i].v.svc_id == id;
		if (!used) {
			snprintf(why, len, "svc %u (%s/%s) in use but unreferenced", id,
				 f->svc[id].ns, f->svc[id].name);
			return false;
		}
		for (uint32_t o = id + 1; o < f->max_svc; o++) {
			if (f->svc[o].in_use && !strcmp(f->svc[o].ns, f->svc[id].ns) &&
			    !strcmp(f->svc[o].name, f->svc[id].name) &&
			    !strcmp(f->svc[o].port_name, f->svc[id].port_name)) {
				snprintf(why, len, "service %s/%s:%s has ids %u and %u",
					 f->svc[id].ns, f->svc[id].name, f->svc[id].port_name, id, o);
				return false;
			}
		}
	}
	return true;
}

/* The slot table holds exactly the sets frontends name: no leak, no sharing, no hole. */
static bool fake_slots_exact(const struct fake *f, char *why, size_t len)
{
	size_t sum = 0;

	if (!fake_consistent(f, why, len))
		return false;
	for (size_t i = 0; i < f->nfe; i++) {
		sum += f->fe[i].v.count;
		for (size_t j = i + 1; j < f->nfe; j++) {
			if (f->fe[i].v.count && f->fe[j].v.count &&
			    f->fe[i].v.set_id == f->fe[j].v.set_id) {
				snprintf(why, len, "frontends #%zu and #%zu share set %u", i, j,
					 f->fe[i].v.set_id);
				return false;
			}
		}
	}
	if (sum != f->nslots) {
		snprintf(why, len, "slot table holds %zu slots, frontends name %zu", f->nslots, sum);
		return false;
	}
	return true;
}

/* The sync mirror equals the fake map (frontends, values, backends). */
static bool mirror_matches(const struct sync *s, const struct fake *f, char *why, size_t len)
{
	struct sync_fe *m, *tmp;
	size_t i = 0;

	if (s->n != f->nfe || HASH_COUNT(s->fe) != s->n) {
		snprintf(why, len, "mirror has %zu frontends (%u hashed), map %zu", s->n,
			 HASH_COUNT(s->fe), f->nfe);
		return false;
	}
	HASH_ITER(hh, s->fe, m, tmp) {
		const struct fake_fe *e = NULL;

		if (sync_find(s, &m->key) != m) {
			snprintf(why, len, "mirror frontend #%zu not found by key", i);
			return false;
		}
		for (size_t j = 0; j < f->nfe; j++)
			if (!memcmp(&f->fe[j].k, &m->key, sizeof(m->key)))
				e = &f->fe[j];
		if (!e || memcmp(&e->v, &m->val, sizeof(m->val))) {
			snprintf(why, len, "mirror frontend #%zu differs from the map", i);
			return false;
		}
		for (uint32_t j = 0; j < m->val.count; j++) {
			struct bpfsvc_backend b;

			if (!fake_slot(f, m->val.set_id, j, &b) || memcmp(&b, &m->be[j], sizeof(b))) {
				snprintf(why, len, "mirror frontend #%zu backend %u differs", i, j);
				return false;
			}
		}
		i++;
	}
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers on sync                                                                            */
/* ------------------------------------------------------------------------------------------ */

static void res_diag(const struct sync_result *r)
{
	printf("#   added=%u updated=%u removed=%u unchanged=%u failed=%u writes=%llu\n",
	       r->added, r->updated, r->removed, r->unchanged, r->failed,
	       (unsigned long long)r->writes);
}

static bool res_is(const struct sync_result *r, uint32_t added, uint32_t updated,
		   uint32_t removed, uint32_t unchanged, uint32_t failed_, long long writes)
{
	bool ok = r->added == added && r->updated == updated && r->removed == removed &&
		  r->unchanged == unchanged && r->failed == failed_ &&
		  (writes < 0 || r->writes == (uint64_t)writes);

	if (!ok)
		res_diag(r);
	return ok;
}

/* Apply and check the write counter against the log. */
static int apply(struct sync *s, struct fake *f, const struct model_state *want, uint64_t now,
		 struct sync_result *res, size_t *mark)
{
	size_t from = f->nlog;
	int rc = sync_apply(s, want, now, res);

	if (mark)
		*mark = from;
	if (res->writes != f->nlog - from) {
		printf("#   writes=%llu but %zu ops logged\n", (unsigned long long)res->writes,
		       f->nlog - from);
		check(false, "result writes equals the ops issued");
	}
	return rc;
}

static void check_fake(const char *ctx, const struct sync *s, const struct fake *f,
		       const struct model_state *want)
{
	char why[256] = "";
	bool ok;

	ok = fake_equals(f, want, why, sizeof(why));
	if (!ok)
		printf("#   %s\n", why);
	check(ok, "%s: fake map equals desired state", ctx);
	ok = fake_svc_clean(f, why, sizeof(why));
	if (!ok)
		printf("#   %s\n", why);
	check(ok, "%s: svc infos clean (one id per service, none unreferenced)", ctx);
	ok = mirror_matches(s, f, why, sizeof(why));
	if (!ok)
		printf("#   %s\n", why);
	check(ok, "%s: mirror matches the map", ctx);
}

static void check_reader(const char *ctx, struct fake *f)
{
	if (f->violations)
		printf("#   %zu violations, first %s\n", f->violations, f->first_violation);
	check(!f->violations, "%s: concurrent reader never saw a hole (%zu reads)", ctx, f->reads);
	f->violations = 0;
}

static void check_exact(const char *ctx, const struct fake *f)
{
	char why[256] = "";
	bool ok = fake_slots_exact(f, why, sizeof(why));

	if (!ok)
		printf("#   %s\n", why);
	check(ok, "%s: slot table holds exactly the live sets", ctx);
}

/* ------------------------------------------------------------------------------------------ */
/* A small fixed cluster                                                                      */
/* ------------------------------------------------------------------------------------------ */

static struct bpfsvc_fe_key K_WEB4, K_WEB6, K_DNS, K_EMPTY;

static void init_keys(void)
{
	K_WEB4 = key4(IP4(10, 96, 0, 10), 80, IPPROTO_TCP);
	K_WEB6 = key6(0x10, 80, IPPROTO_TCP);
	K_DNS = key4(IP4(10, 96, 0, 53), 53, IPPROTO_UDP);
	K_EMPTY = key4(IP4(10, 96, 0, 99), 8080, IPPROTO_TCP);
}

/* web (dual-stack, 3 backends each), dns (n backends), empty (no backend). */
static void build_cluster(struct model_state *st, uint32_t ndns, uint16_t dns_port,
			  bool web4, bool web6)
{
	struct bpfsvc_backend w4[3], w6[3], d[8];

	for (uint32_t i = 0; i < 3; i++) {
		w4[i] = be4(IP4(10, 244, 1, 10 + i), 8080);
		w6[i] = be6((uint16_t)(0x10 + i), 8080);
	}
	for (uint32_t i = 0; i < ndns && i < 8; i++)
		d[i] = be4(IP4(10, 244, 2, 20 + i), dns_port);
	memset(st, 0, sizeof(*st));
	if (web4)
		st_add(st, K_WEB4, "default", "web", "http", 0, w4, 3);
	if (web6)
		st_add(st, K_WEB6, "default", "web", "http", BPFSVC_FE_F_V6, w6, 3);
	st_add(st, K_DNS, "kube-system", "kube-dns", "dns", 0, d, ndns);
	st_add(st, K_EMPTY, "default", "empty", "", 0, NULL, 0);
	model_sort(st);
}

static const struct fake_fe *ffe(struct fake *f, struct bpfsvc_fe_key k)
{
	return fake_fe_find(f, &k);
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void test_first_apply_and_noop(void)
{
	struct fake f;
	struct sync s;
	struct model_state st;
	struct sync_result res;
	const struct fake_fe *w4, *w6, *dns, *emp;
	char why[256] = "";
	size_t mark;
	bool ok;

	fake_init(&f, 64);
	check(!sync_init(&s, &f.maps, GRACE), "init");
	build_cluster(&st, 2, 53, true, true);

	check(!apply(&s, &f, &st, 1 * SEC, &res, &mark), "first apply returns 0");
	/* 3 svc infos (web shared by both families), 3+3+2 slots, 4 frontends. */
	check(res_is(&res, 4, 0, 0, 0, 0, 15), "first apply: added=4, writes=15");
	check(log_count(&f, mark, OP_SVC_SET) == 3 && log_count(&f, mark, OP_SLOT_UPD) == 8 &&
		      log_count(&f, mark, OP_FE_UPD) == 4 && log_count(&f, mark, OP_FE_DEL) == 0 &&
		      log_count(&f, mark, OP_SLOT_DEL) == 0,
	      "first apply: 3 svc sets, 8 slot updates, 4 frontend updates, no deletes");
	ok = log_ordered(&f, mark, why, sizeof(why));
	if (!ok)
		printf("#   %s\n", why);
	check(ok, "first apply: every set's slots and svc info are written before its frontend");
	check_fake("first apply", &s, &f, &st);
	w4 = ffe(&f, K_WEB4);
	w6 = ffe(&f, K_WEB6);
	dns = ffe(&f, K_DNS);
	emp = ffe(&f, K_EMPTY);
	check(w4 && w6 && dns && emp, "all four frontends are in the map");
	if (!(w4 && w6 && dns && emp))
		goto out;
	check(w4->v.svc_id == w6->v.svc_id, "dual-stack frontends share one svc id");
	check(w4->v.svc_id != dns->v.svc_id && dns->v.svc_id != emp->v.svc_id &&
		      w4->v.svc_id != emp->v.svc_id,
	      "distinct services get distinct svc ids");
	check(w4->v.set_id && w6->v.set_id && dns->v.set_id && w4->v.set_id != w6->v.set_id &&
		      w4->v.set_id != dns->v.set_id && w6->v.set_id != dns->v.set_id,
	      "each frontend has its own non-zero set id");
	check(emp->v.count == 0 && emp->v.set_id == 0, "service without backends: count 0, set 0");
	check(w6->v.flags == BPFSVC_FE_F_V6 && w4->v.flags == 0, "flags written");
	check(f.resets[w4->v.svc_id] == 1 && f.resets[dns->v.svc_id] == 1 &&
		      f.resets[emp->v.svc_id] == 1,
	      "each new svc id had its stats reset once (fresh)");
	check_exact("first apply", &f);

	check(!apply(&s, &f, &st, 2 * SEC, &res, &mark), "second apply returns 0");
	check(res_is(&res, 0, 0, 0, 4, 0, 0), "same state again: unchanged=4, zero writes");
	check(f.nlog == mark, "same state again: no op issued");
	check_reader("first/no-op apply", &f);
out:
	model_state_free(&st);
	sync_fini(&s);
	fake_fini(&f);
}

static void test_change_and_reap(void)
{
	struct fake f;
	struct sync s;
	struct model_state st, st2, st3, st4;
	struct sync_result res;
	struct bpfsvc_fe_val old_dns, w4v, w6v, empv;
	uint64_t next, t;
	size_t mark;
	uint32_t old_set, new_set;

	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	build_cluster(&st, 2, 53, true, true);
	apply(&s, &f, &st, 1 * SEC, &res, NULL);
	old_dns = ffe(&f, K_DNS)->v;
	w4v = ffe(&f, K_WEB4)->v;
	w6v = ffe(&f, K_WEB6)->v;
	empv = ffe(&f, K_EMPTY)->v;

	/* dns: 2 -> 3 backends. */
	t = 10 * SEC;
	build_cluster(&st2, 3, 53, true, true);
	check(!apply(&s, &f, &st2, t, &res, &mark), "change dns backends: returns 0");
	check(res_is(&res, 0, 1, 0, 3, 0, 4), "change: updated=1 unchanged=3 writes=4");
	new_set = ffe(&f, K_DNS)->v.set_id;
	old_set = old_dns.set_id;
	check(new_set != old_set && new_set, "change: new set id");
	check(f.nlog - mark == 4 && f.log[mark].t == OP_SLOT_UPD &&
		      f.log[mark + 1].t == OP_SLOT_UPD && f.log[mark + 2].t == OP_SLOT_UPD &&
		      f.log[mark + 3].t == OP_FE_UPD && f.log[mark].sk.set_id == new_set &&
		      f.log[mark + 2].sk.set_id == new_set,
	      "change: 3 slots of the new set, then the frontend switch");
	check(ffe(&f, K_DNS)->v.svc_id == old_dns.svc_id && !log_touches_svc(&f, mark, old_dns.svc_id),
	      "change: svc id kept, svc info not rewritten");
	check(fake_set_size(&f, old_set) == 2, "change: old set's slots still in the map");
	check(!log_touches_key(&f, mark, &K_WEB4) &&
		      !log_touches_key(&f, mark, &K_WEB6) && !log_touches_key(&f, mark, &K_EMPTY) &&
		      !log_touches_set(&f, mark, w4v.set_id) && !log_touches_set(&f, mark, w6v.set_id),
	      "change: no write for the other services");
	check(!memcmp(&ffe(&f, K_WEB4)->v, &w4v, sizeof(w4v)) &&
		      !memcmp(&ffe(&f, K_WEB6)->v, &w6v, sizeof(w6v)) &&
		      !memcmp(&ffe(&f, K_EMPTY)->v, &empv, sizeof(empv)),
	      "change: other frontends' values untouched");
	check_fake("change", &s, &f, &st2);

	mark = f.nlog;
	check(sync_reap(&s, t + GRACE - 1, false, &next) == 0 && next == t + GRACE,
	      "reap before due: nothing deleted, next due = change time + grace");
	check(f.nlog == mark && fake_set_size(&f, old_set) == 2, "reap before due: old set intact");
	check(sync_reap(&s, t + GRACE, false, &next) == 2 && next == 0,
	      "reap at due: 2 slot deletes, nothing pending");
	check(log_count(&f, mark, OP_SLOT_DEL) == 2 && f.nlog - mark == 2 &&
		      f.log[mark].sk.set_id == old_set && f.log[mark + 1].sk.set_id == old_set,
	      "reap at due: only the old set's slots deleted");
	check(fake_set_size(&f, old_set) == 0 && fake_set_size(&f, new_set) == 3,
	      "reap at due: old set gone, new set intact");
	check(sync_reap(&s, t + 100 * GRACE, false, &next) == 0 && next == 0,
	      "reap again: nothing to do");
	check_exact("after reap", &f);

	/* Two changes at different times: next due is the earlier; 'all' ignores the time. */
	build_cluster(&st3, 4, 53, true, true);
	apply(&s, &f, &st3, 20 * SEC, &res, NULL);
	build_cluster(&st4, 4, 5353, true, true);
	apply(&s, &f, &st4, 21 * SEC, &res, NULL);
	check(res_is(&res, 0, 1, 0, 3, 0, 5), "second change (port): updated=1 writes=5");
	check(sync_reap(&s, 20 * SEC, false, &next) == 0 && next == 20 * SEC + GRACE,
	      "two pending sets: next due is the earlier deadline");
	check(sync_reap(&s, 20 * SEC + GRACE, false, &next) == 3 && next == 21 * SEC + GRACE,
	      "first deadline: first old set (3 slots) reaped, next due is the second");
	mark = f.nlog;
	check(sync_reap(&s, 0, true, &next) == 4 && next == 0 && log_count(&f, mark, OP_SLOT_DEL) == 4,
	      "reap all before due: remaining old set (4 slots) deleted");
	check_exact("after reap all", &f);
	check_fake("after reap all", &s, &f, &st4);

	/* Flags-only change: one frontend write, set kept. */
	{
		struct model_state st5;
		uint32_t set = ffe(&f, K_DNS)->v.set_id;

		build_cluster(&st5, 4, 5353, true, true);
		for (size_t i = 0; i < st5.n; i++)
			if (!memcmp(&st5.fe[i].key, &K_DNS, sizeof(K_DNS)))
				st5.fe[i].flags = 0x8000;
		apply(&s, &f, &st5, 30 * SEC, &res, &mark);
		check(res_is(&res, 0, 1, 0, 3, 0, 1) && f.log[mark].t == OP_FE_UPD &&
			      ffe(&f, K_DNS)->v.set_id == set && ffe(&f, K_DNS)->v.flags == 0x8000,
		      "flags-only change: one frontend update, same set id");
		check(sync_reap(&s, 0, true, &next) == 0, "flags-only change: no set to reap");
		model_state_free(&st5);
	}
	/* Backends to none and back. */
	{
		struct model_state st6, st7;

		build_cluster(&st6, 0, 53, true, true);
		apply(&s, &f, &st6, 40 * SEC, &res, &mark);
		check(res_is(&res, 0, 1, 0, 3, 0, 1) && ffe(&f, K_DNS)->v.count == 0 &&
			      ffe(&f, K_DNS)->v.set_id == 0,
		      "backends -> none: only the frontend is written (set 0, count 0)");
		check(sync_reap(&s, 0, true, &next) == 4, "backends -> none: old 4-slot set reaped");
		build_cluster(&st7, 2, 53, true, true);
		apply(&s, &f, &st7, 50 * SEC, &res, &mark);
		check(res_is(&res, 0, 1, 0, 3, 0, 3), "none -> 2 backends: 2 slots + frontend");
		check(sync_reap(&s, 0, true, &next) == 0, "none -> backends: nothing to reap");
		check_fake("none -> backends", &s, &f, &st7);
		check_exact("none -> backends", &f);
		model_state_free(&st6);
		model_state_free(&st7);
	}
	check_reader("change and reap", &f);
	model_state_free(&st);
	model_state_free(&st2);
	model_state_free(&st3);
	model_state_free(&st4);
	sync_fini(&s);
	fake_fini(&f);
}

static void test_remove_and_svc_ids(void)
{
	struct fake f;
	struct sync s;
	struct model_state st, no4, none6, only_dns;
	struct sync_result res;
	uint32_t web_id, w4set, w6set;
	uint64_t next;
	size_t mark, pdel, pclr;

	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	build_cluster(&st, 2, 53, true, true);
	apply(&s, &f, &st, 1 * SEC, &res, NULL);
	web_id = ffe(&f, K_WEB4)->v.svc_id;
	w4set = ffe(&f, K_WEB4)->v.set_id;
	w6set = ffe(&f, K_WEB6)->v.set_id;

	build_cluster(&no4, 2, 53, false, true);
	apply(&s, &f, &no4, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 1, 3, 0, 1), "remove web v4: removed=1, one write");
	check(!ffe(&f, K_WEB4) && f.log[mark].t == OP_FE_DEL, "remove web v4: frontend deleted");
	check(f.svc[web_id].in_use && ffe(&f, K_WEB6)->v.svc_id == web_id,
	      "remove web v4: svc id kept, v6 still uses it");
	check(fake_set_size(&f, w4set) == 3, "remove web v4: its slots kept until reap");
	check(sync_reap(&s, 2 * SEC + GRACE, false, &next) == 3 && fake_set_size(&f, w4set) == 0,
	      "remove web v4: slots reaped after grace");

	build_cluster(&none6, 2, 53, false, false);
	apply(&s, &f, &none6, 3 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 1, 2, 0, 2), "remove web v6: removed=1, two writes");
	pdel = log_find_fe(&f, mark, OP_FE_DEL, &K_WEB6);
	pclr = log_find_svc(&f, mark, web_id, true);
	check(pdel != (size_t)-1 && pclr != (size_t)-1 && pdel < pclr,
	      "remove web v6: frontend deleted, then svc info cleared");
	check(!f.svc[web_id].in_use, "remove web v6: svc id released (info cleared)");
	check(sync_reap(&s, 0, true, &next) == 3 && fake_set_size(&f, w6set) == 0,
	      "remove web v6: slots reaped");
	check_fake("remove", &s, &f, &none6);
	check_exact("remove", &f);

	/* Remove everything. */
	memset(&only_dns, 0, sizeof(only_dns));
	apply(&s, &f, &only_dns, 4 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 2, 0, 0, 4) && f.nfe == 0 && s.n == 0,
	      "empty desired state: all removed (2 deletes + 2 svc clears)");
	sync_reap(&s, 0, true, &next);
	check(f.nslots == 0, "empty desired state: no slot left after reap");
	for (uint32_t id = 0; id < f.max_svc; id++)
		if (f.svc[id].in_use)
			check(false, "svc %u still in use", id);
	check_reader("remove", &f);
	model_state_free(&st);
	model_state_free(&no4);
	model_state_free(&none6);
	sync_fini(&s);
	fake_fini(&f);

	/* Reuse with a tiny id space: X=0, Y=1; X goes; Z takes 0, fresh. */
	{
		struct model_state a = { 0 }, b = { 0 }, c = { 0 };
		struct bpfsvc_backend one = be4(IP4(10, 244, 9, 1), 80);
		struct bpfsvc_fe_key kx = key4(IP4(10, 96, 9, 1), 80, IPPROTO_TCP);
		struct bpfsvc_fe_key ky = key4(IP4(10, 96, 9, 2), 80, IPPROTO_TCP);
		struct bpfsvc_fe_key kz = key4(IP4(10, 96, 9, 3), 80, IPPROTO_TCP);

		fake_init(&f, 2);
		sync_init(&s, &f.maps, GRACE);
		st_add(&a, kx, "ns", "x", "", 0, &one, 1);
		st_add(&a, ky, "ns", "y", "", 0, &one, 1);
		model_sort(&a);
		apply(&s, &f, &a, 1, &res, NULL);
		check(res_is(&res, 2, 0, 0, 0, 0, -1) && ffe(&f, kx)->v.svc_id == 0 &&
			      ffe(&f, ky)->v.svc_id == 1,
		      "tiny id space: x=0, y=1");
		st_add(&b, ky, "ns", "y", "", 0, &one, 1);
		st_add(&b, kz, "ns", "z", "", 0, &one, 1);
		model_sort(&b);
		apply(&s, &f, &b, 2, &res, &mark);
		check(res_is(&res, 1, 0, 1, 1, 0, -1), "x removed and z added in one apply");
		check(ffe(&f, kz) && ffe(&f, kz)->v.svc_id == 0 && info_is(&f.svc[0], &b.fe[1].svc),
		      "z reuses the released svc id 0");
		check(f.resets[0] == 2 && log_find_svc(&f, mark, 0, false) != (size_t)-1 &&
			      f.log[log_find_svc(&f, mark, 0, false)].fresh,
		      "reused svc id written fresh (stats reset again)");
		check(f.resets[1] == 1, "y's stats not reset");
		check_fake("svc id reuse", &s, &f, &b);
		/* A third service cannot get an id: failed, others fine. */
		st_add(&c, ky, "ns", "y", "", 0, &one, 1);
		st_add(&c, kz, "ns", "z", "", 0, &one, 1);
		st_add(&c, kx, "ns", "x", "", 0, &one, 1);
		model_sort(&c);
		apply(&s, &f, &c, 3, &res, &mark);
		check(res_is(&res, 0, 0, 0, 2, 1, 0), "max_svc exhausted: failed=1, no write, others unchanged");
		check(!ffe(&f, kx) && f.nfe == 2 && s.n == 2, "max_svc exhausted: frontend not added");
		/* Dual-stack of an existing service still fits. */
		model_state_free(&c);
		memset(&c, 0, sizeof(c));
		st_add(&c, ky, "ns", "y", "", 0, &one, 1);
		st_add(&c, kz, "ns", "z", "", 0, &one, 1);
		st_add(&c, key6(0x9, 80, IPPROTO_TCP), "ns", "z", "", BPFSVC_FE_F_V6, &one, 1);
		model_sort(&c);
		apply(&s, &f, &c, 4, &res, &mark);
		check(res_is(&res, 1, 0, 0, 2, 0, 2) && log_count(&f, mark, OP_SVC_SET) == 0,
		      "full id space: second family of an existing service added, no svc write");
		check_fake("full id space", &s, &f, &c);
		check_reader("svc ids", &f);
		model_state_free(&a);
		model_state_free(&b);
		model_state_free(&c);
		sync_fini(&s);
		fake_fini(&f);
	}
}

static void test_owner_change(void)
{
	struct fake f;
	struct sync s;
	struct model_state a = { 0 }, b = { 0 };
	struct sync_result res;
	struct bpfsvc_backend bes[2] = { be4(IP4(10, 244, 3, 1), 80), be4(IP4(10, 244, 3, 2), 80) };
	struct bpfsvc_fe_key k = key4(IP4(10, 96, 3, 1), 80, IPPROTO_TCP);
	struct bpfsvc_fe_key k2 = key4(IP4(10, 96, 3, 2), 80, IPPROTO_TCP);
	uint32_t old_id, new_id, old_set;
	size_t mark, pset, pfe, pclr;
	uint64_t next;

	fake_init(&f, 16);
	sync_init(&s, &f.maps, GRACE);
	st_add(&a, k, "ns", "old", "http", 0, bes, 2);
	st_add(&a, k2, "ns", "other", "http", 0, bes, 1);
	model_sort(&a);
	apply(&s, &f, &a, 1, &res, NULL);
	old_id = ffe(&f, k)->v.svc_id;
	old_set = ffe(&f, k)->v.set_id;

	st_add(&b, k, "ns", "new", "http", 0, bes, 2);
	st_add(&b, k2, "ns", "other", "http", 0, bes, 1);
	model_sort(&b);
	apply(&s, &f, &b, 2, &res, &mark);
	new_id = ffe(&f, k)->v.svc_id;
	check(res_is(&res, 0, 1, 0, 1, 0, 3), "owner change: updated=1, writes=3 (svc, fe, old svc clear)");
	check(new_id != old_id && info_is(&f.svc[new_id], &b.fe[0].svc),
	      "owner change: frontend moved to a new svc id owned by the new service");
	check(!f.svc[old_id].in_use, "owner change: old svc id released");
	check(ffe(&f, k)->v.set_id == old_set && log_count(&f, mark, OP_SLOT_UPD) == 0,
	      "owner change with the same backends: set kept, no slot write");
	pset = log_find_svc(&f, mark, new_id, false);
	pfe = log_find_fe(&f, mark, OP_FE_UPD, &k);
	pclr = log_find_svc(&f, mark, old_id, true);
	check(pset < pfe && pfe < pclr && pclr != (size_t)-1 && f.log[pset].fresh,
	      "owner change: new svc info (fresh) -> frontend -> old svc cleared");
	check(sync_reap(&s, 0, true, &next) == 0, "owner change: nothing to reap");
	check_fake("owner change", &s, &f, &b);

	/* Owner changes to a service that already has an id (shares it). */
	model_state_free(&a);
	memset(&a, 0, sizeof(a));
	st_add(&a, k, "ns", "other", "http", 0, bes, 2);
	st_add(&a, k2, "ns", "other", "http", 0, bes, 1);
	model_sort(&a);
	apply(&s, &f, &a, 3, &res, &mark);
	check(res_is(&res, 0, 1, 0, 1, 0, 2) &&
		      ffe(&f, k)->v.svc_id == ffe(&f, k2)->v.svc_id && !f.svc[new_id].in_use,
	      "owner change to an existing service: shares its id, previous id released");
	check_fake("owner change to existing", &s, &f, &a);
	check_reader("owner change", &f);
	model_state_free(&a);
	model_state_free(&b);
	sync_fini(&s);
	fake_fini(&f);
}

static void test_failures(void)
{
	struct fake f;
	struct sync s;
	struct model_state st, st3, st4, st5;
	struct sync_result res;
	struct bpfsvc_fe_val before;
	uint64_t next;
	size_t mark, slots_before;
	char why[256];

	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	build_cluster(&st, 2, 53, true, true);
	apply(&s, &f, &st, 1 * SEC, &res, NULL);
	before = ffe(&f, K_DNS)->v;
	slots_before = f.nslots;

	/* slot_update fails on the third slot of a 4-slot set. */
	build_cluster(&st4, 4, 53, true, true);
	f.slot_ok_left = 2;
	apply(&s, &f, &st4, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 3, 1, -1), "slot failure mid-set: failed=1, others unchanged");
	check(log_count(&f, mark, OP_SLOT_UPD) == 3 && log_count(&f, mark, OP_SLOT_DEL) == 2 &&
		      log_count(&f, mark, OP_FE_UPD) == 0,
	      "slot failure mid-set: 2 written, 1 failed, the 2 written deleted, no frontend write");
	check(f.nslots == slots_before, "slot failure mid-set: no partial set left in the map");
	check(!memcmp(&ffe(&f, K_DNS)->v, &before, sizeof(before)) &&
		      fake_set_size(&f, before.set_id) == before.count,
	      "slot failure mid-set: old frontend and its set intact");
	check(mirror_matches(&s, &f, why, sizeof(why)), "slot failure mid-set: mirror matches map");
	check(sync_reap(&s, 0, true, &next) == 0, "slot failure mid-set: nothing pending");
	fake_nofail(&f);
	apply(&s, &f, &st4, 3 * SEC, &res, &mark);
	check(res_is(&res, 0, 1, 0, 3, 0, 5), "after slot failure: next apply updates (4 slots + fe)");
	check_fake("after slot failure", &s, &f, &st4);
	sync_reap(&s, 0, true, &next);
	check_exact("after slot failure", &f);

	/* fe_update fails for dns. */
	build_cluster(&st3, 3, 53, true, true);
	before = ffe(&f, K_DNS)->v;
	slots_before = f.nslots;
	f.fail_fe_update = true;
	f.fail_fe_update_key = K_DNS;
	apply(&s, &f, &st3, 4 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 3, 1, 7), "fe_update failure: failed=1 (3 slots, fe, 3 slot deletes)");
	check(!memcmp(&ffe(&f, K_DNS)->v, &before, sizeof(before)) && f.nslots == slots_before,
	      "fe_update failure: old frontend kept, new set removed");
	check(mirror_matches(&s, &f, why, sizeof(why)), "fe_update failure: mirror matches map");
	check(sync_reap(&s, 0, true, &next) == 0, "fe_update failure: old set not queued for reap");
	fake_nofail(&f);
	apply(&s, &f, &st3, 5 * SEC, &res, NULL);
	check(res_is(&res, 0, 1, 0, 3, 0, 4), "after fe_update failure: next apply updates");
	check_fake("after fe_update failure", &s, &f, &st3);

	/* A new frontend whose fe_update fails: its fresh svc id is released again. */
	{
		struct model_state st6;
		struct bpfsvc_backend one = be4(IP4(10, 244, 7, 1), 80);
		struct bpfsvc_fe_key kn = key4(IP4(10, 96, 7, 1), 80, IPPROTO_TCP);

		sync_reap(&s, 0, true, &next);
		build_cluster(&st6, 3, 53, true, true);
		st_add(&st6, kn, "ns", "new", "", 0, &one, 1);
		model_sort(&st6);
		f.fail_fe_update = true;
		f.fail_fe_update_key = kn;
		apply(&s, &f, &st6, 6 * SEC, &res, &mark);
		check(res_is(&res, 0, 0, 0, 4, 1, 5) && !ffe(&f, kn),
		      "new frontend, fe_update fails: not added (svc, slot, fe, slot del, svc clear)");
		check(fake_svc_clean(&f, why, sizeof(why)) && fake_slots_exact(&f, why, sizeof(why)),
		      "new frontend, fe_update fails: no svc info or slot left behind");
		/* Same with the svc info write failing. */
		f.fail_fe_update = false;
		f.fail_svc_fresh = true;
		apply(&s, &f, &st6, 7 * SEC, &res, &mark);
		check(res_is(&res, 0, 0, 0, 4, 1, 1) && !ffe(&f, kn),
		      "new frontend, svc info write fails: failed=1, nothing else written");
		fake_nofail(&f);
		apply(&s, &f, &st6, 8 * SEC, &res, &mark);
		check(res_is(&res, 1, 0, 0, 4, 0, 3), "new frontend: added on retry");
		check_fake("new frontend retry", &s, &f, &st6);
		model_state_free(&st6);
		apply(&s, &f, &st3, 9 * SEC, &res, NULL);
		sync_reap(&s, 0, true, &next);
	}

	/* fe_delete fails: mirror keeps it, next apply retries. */
	build_cluster(&st5, 3, 53, false, true);
	f.fail_fe_delete = true;
	f.fail_fe_delete_key = K_WEB4;
	apply(&s, &f, &st5, 10 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 3, 1, 1), "fe_delete failure: failed=1, removed=0");
	check(ffe(&f, K_WEB4) && s.n == 4, "fe_delete failure: frontend still in map and mirror");
	check(mirror_matches(&s, &f, why, sizeof(why)), "fe_delete failure: mirror matches map");
	check(sync_reap(&s, 0, true, &next) == 0, "fe_delete failure: its set not queued for reap");
	fake_nofail(&f);
	apply(&s, &f, &st5, 11 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 1, 3, 0, 1) && log_find_fe(&f, mark, OP_FE_DEL, &K_WEB4) == mark,
	      "fe_delete retried on the next apply");
	check(sync_reap(&s, 0, true, &next) == 3, "retried delete: its set reaped");
	check_fake("fe_delete retry", &s, &f, &st5);
	check_exact("fe_delete retry", &f);

	/* An element already gone (ENOENT) counts as removed. */
	{
		struct model_state st7;

		build_cluster(&st7, 3, 53, false, false);
		for (size_t i = 0; i < f.nfe; i++)
			if (!memcmp(&f.fe[i].k, &K_WEB6, sizeof(K_WEB6))) {
				memmove(&f.fe[i], &f.fe[i + 1], (f.nfe - i - 1) * sizeof(f.fe[0]));
				f.nfe--;
				break;
			}
		apply(&s, &f, &st7, 12 * SEC, &res, &mark);
		check(res_is(&res, 0, 0, 1, 2, 0, 2), "fe_delete ENOENT: counted removed, svc released");
		sync_reap(&s, 0, true, &next);
		check_fake("fe_delete ENOENT", &s, &f, &st7);
		model_state_free(&st7);
	}
	check_reader("failures", &f);
	model_state_free(&st);
	model_state_free(&st3);
	model_state_free(&st4);
	model_state_free(&st5);
	sync_fini(&s);
	fake_fini(&f);

	/* Capacity: the slot map is full, so a change (which needs room for both sets) fails;
	 * the frontend map is full, so a new frontend fails. */
	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	build_cluster(&st, 2, 53, true, true);
	f.slot_limit = 9;
	f.fe_limit = 4;
	apply(&s, &f, &st, 1 * SEC, &res, NULL);
	check(res_is(&res, 4, 0, 0, 0, 0, 15), "capacity: initial state fits");
	build_cluster(&st3, 3, 53, true, true);
	apply(&s, &f, &st3, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 3, 1, -1) && f.nslots == 8,
	      "slot map full: change fails, no partial set");
	check(mirror_matches(&s, &f, why, sizeof(why)), "slot map full: mirror matches map");
	{
		struct model_state st8;
		struct bpfsvc_fe_key kn = key4(IP4(10, 96, 8, 1), 80, IPPROTO_TCP);

		build_cluster(&st8, 2, 53, true, true);
		st_add(&st8, kn, "default", "web", "http", 0, NULL, 0);
		model_sort(&st8);
		apply(&s, &f, &st8, 3 * SEC, &res, &mark);
		check(res_is(&res, 0, 0, 0, 4, 1, 1) && !ffe(&f, kn) && f.nfe == 4,
		      "frontend map full: new frontend fails");
		check(mirror_matches(&s, &f, why, sizeof(why)) &&
			      fake_svc_clean(&f, why, sizeof(why)),
		      "frontend map full: mirror matches, svc infos clean");
		model_state_free(&st8);
	}
	f.slot_limit = (size_t)-1;
	apply(&s, &f, &st3, 4 * SEC, &res, NULL);
	check(res_is(&res, 0, 1, 0, 3, 0, 4), "room again: change goes through");
	sync_reap(&s, 0, true, &next);
	check_fake("capacity", &s, &f, &st3);
	check_exact("capacity", &f);
	check_reader("capacity", &f);
	model_state_free(&st);
	model_state_free(&st3);
	sync_fini(&s);
	fake_fini(&f);
}

/* ------------------------------------------------------------------------------------------ */
/* Random sequences                                                                           */
/* ------------------------------------------------------------------------------------------ */

#define NCAND 50
#define NSVCREF 25
#define NPOOL 16

struct cand {
	bool present;
	uint32_t owner;
	uint16_t flags;
	uint32_t mask; /* backends from the pool */
};

static struct bpfsvc_fe_key cand_key(uint32_t i)
{
	if (i < 30)
		return key4(IP4(10, 96, 1, i + 1), (uint16_t)(80 + i % 3), IPPROTO_TCP);
	return key6((uint16_t)(0x100 + i), 443, i % 2 ? IPPROTO_UDP : IPPROTO_TCP);
}

static void cand_build(const struct cand *c, struct model_state *st)
{
	struct bpfsvc_backend be[NPOOL];

	memset(st, 0, sizeof(*st));
	for (uint32_t i = 0; i < NCAND; i++) {
		char ns[16], name[16];
		uint32_t n = 0;

		if (!c[i].present)
			continue;
		for (uint32_t j = 0; j < NPOOL; j++)
			if (c[i].mask & (1U << j))
				be[n++] = be4(IP4(10, 244, 5, 1 + j), (uint16_t)(8000 + j % 2));
		snprintf(ns, sizeof(ns), "ns%u", c[i].owner % 5);
		snprintf(name, sizeof(name), "svc%u", c[i].owner);
		st_add(st, cand_key(i), ns, name, c[i].owner % 3 ? "p" : "", c[i].flags, be, n);
	}
	model_sort(st);
}

static bool same_model_fe(const struct model_fe *a, const struct model_fe *b)
{
	return a->flags == b->flags && a->nbe == b->nbe && !strcmp(a->svc.ns, b->svc.ns) &&
	       !strcmp(a->svc.name, b->svc.name) && !strcmp(a->svc.port_name, b->svc.port_name) &&
	       (!a->nbe || !memcmp(a->be, b->be, a->nbe * sizeof(*a->be)));
}

static void mutate(struct cand *c, uint64_t *rng, unsigned pct)
{
	for (uint32_t i = 0; i < NCAND; i++) {
		if (xrand(rng) % 100 >= pct)
			continue;
		switch (xrand(rng) % 5) {
		case 0:
			c[i].present = !c[i].present;
			break;
		case 1:
		case 2:
			/* Sparse and sometimes empty. */
			c[i].mask = (uint32_t)xrand(rng) & (uint32_t)xrand(rng) & 0xffff;
			if (xrand(rng) % 8 == 0)
				c[i].mask = 0;
			break;
		case 3:
			c[i].owner = (uint32_t)(xrand(rng) % NSVCREF);
			break;
		default:
			c[i].flags ^= 0x4;
			break;
		}
	}
}

/*
 * Random desired states. With fail_pct, random update/delete failures are injected; then the
 * map must still never show a hole, the mirror must match the map after every apply, and
 * failed must equal the failures injected. A final clean apply and reap(all) must converge.
 */
static void random_run(const char *name, uint64_t seed, unsigned steps, unsigned fail_pct,
		       bool adopt_at_end)
{
	struct fake f;
	struct sync s;
	struct cand c[NCAND];
	struct model_state prev = { 0 }, want;
	struct sync_result res;
	uint64_t rng = seed, now = SEC, next;
	size_t bad_counts = 0, bad_equal = 0, bad_mirror = 0, bad_touch = 0, bad_rc = 0;
	size_t bad_failed = 0, reaps = 0, total_failed = 0;
	char why[256], first[512] = "";
	unsigned step;

	printf("# %s: seed %llu, %u steps, %u%% failures\n", name, (unsigned long long)seed, steps,
	       fail_pct);
	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	for (uint32_t i = 0; i < NCAND; i++) {
		c[i].present = xrand(&rng) % 4 != 0;
		c[i].owner = i % NSVCREF; /* i and i + 25 share a service: dual-stack-like */
		c[i].flags = i >= 30 ? BPFSVC_FE_F_V6 : 0;
		c[i].mask = (uint32_t)xrand(&rng) & 0xffff;
	}
	f.rng = seed ^ 0x5555;
	for (step = 0; step < steps; step++) {
		uint32_t added = 0, updated = 0, removed = 0, unchanged = 0;
		size_t mark, inj0, i, j;
		int rc;

		if (step)
			mutate(c, &rng, 10);
		cand_build(c, &want);
		/* Expected counters, valid when no failure happened (mirror == prev). */
		for (i = 0, j = 0; i < prev.n || j < want.n;) {
			int cmp = i == prev.n ? 1 : j == want.n ? -1 :
				  memcmp(&prev.fe[i].key, &want.fe[j].key, sizeof(want.fe[j].key));

			if (cmp < 0) {
				removed++;
				i++;
			} else if (cmp > 0) {
				added++;
				j++;
			} else {
				if (same_model_fe(&prev.fe[i], &want.fe[j]))
					unchanged++;
				else
					updated++;
				i++;
				j++;
			}
		}
		f.fail_pct = fail_pct;
		inj0 = f.injected;
		rc = apply(&s, &f, &want, now, &res, &mark);
		f.fail_pct = 0;
		if (rc)
			bad_rc++;
		if (res.failed != f.injected - inj0) {
			if (!bad_failed++)
				snprintf(first, sizeof(first), "step %u: failed=%u but %zu injected", step,
					 res.failed, f.injected - inj0);
		}
		total_failed += res.failed;
		if (!mirror_matches(&s, &f, why, sizeof(why))) {
			if (!bad_mirror++)
				snprintf(first, sizeof(first), "step %u: %s", step, why);
		}
		if (!fail_pct) {
			if (res.added != added || res.updated != updated || res.removed != removed ||
			    res.unchanged != unchanged || res.failed) {
				if (!bad_counts++) {
					snprintf(first, sizeof(first),
						 "step %u: counters %u/%u/%u/%u/%u want %u/%u/%u/%u", step,
						 res.added, res.updated, res.removed, res.unchanged,
						 res.failed, added, updated, removed, unchanged);
				}
			}
			/* Exactly one frontend op per changed frontend. */
			if (log_count(&f, mark, OP_FE_UPD) + log_count(&f, mark, OP_FE_DEL) !=
			    added + updated + removed)
				bad_touch++;
			if (!fake_equals(&f, &want, why, sizeof(why)) ||
			    !fake_svc_clean(&f, why, sizeof(why))) {
				if (!bad_equal++)
					snprintf(first, sizeof(first), "step %u: %s", step, why);
			}
		}
		/* Under failures the counters are not checked against prev. */
		model_state_free(&prev);
		prev = want;
		now += xrand(&rng) % (2 * GRACE);
		switch (xrand(&rng) % 6) {
		case 0:
		case 1:
			reaps += sync_reap(&s, now, false, &next) != 0;
			break;
		case 2:
			if (xrand(&rng) % 10 == 0)
				reaps += sync_reap(&s, now, true, &next) != 0;
			break;
		default:
			break;
		}
	}
	printf("#   %zu reaps deleted something, %zu frontends failed, %zu ops, %zu reads\n", reaps,
	       total_failed, f.nlog, f.reads);
	if (first[0])
		printf("#   first problem: %s\n", first);
	check(!bad_rc, "%s: every apply returned 0", name);
	check(!bad_mirror, "%s: mirror matches the map after every apply", name);
	check(!bad_failed, "%s: failed equals the failures injected", name);
	if (fail_pct) {
		check(total_failed > 0, "%s: failures were injected", name);
	} else {
		check(!bad_counts, "%s: added/updated/removed/unchanged right at every step", name);
		check(!bad_touch, "%s: exactly one frontend op per changed frontend", name);
		check(!bad_equal, "%s: fake map equals desired state after every apply", name);
	}
	check_reader(name, &f);

	/* Converge: a clean apply of the last state, then reap everything. */
	model_state_free(&prev);
	cand_build(c, &want);
	apply(&s, &f, &want, now, &res, NULL);
	check(res.failed == 0, "%s: final clean apply has no failure", name);
	sync_reap(&s, now, true, &next);
	check(next == 0, "%s: nothing pending after reap(all)", name);
	check_fake(name, &s, &f, &want);
	check_exact(name, &f);

	if (adopt_at_end) {
		struct sync s2;
		uint64_t gc;
		size_t mark;
		char ctx[128];

		/* Restart with garbage: one more change and no reap. */
		mutate(c, &rng, 30);
		model_state_free(&want);
		cand_build(c, &want);
		apply(&s, &f, &want, now, &res, NULL);
		sync_fini(&s);
		sync_init(&s2, &f.maps, GRACE);
		check(!sync_adopt(&s2, &res, &gc), "%s: adoption", name);
		check(gc > 0, "%s: adoption collected the unreaped old sets (%llu slots)", name,
		      (unsigned long long)gc);
		check_exact("random adopt", &f);
		apply(&s2, &f, &want, now, &res, &mark);
		snprintf(ctx, sizeof(ctx), "%s: after adoption", name);
		check(res.writes == 0 && res.unchanged == want.n,
		      "%s: same state after adoption: zero writes, unchanged=%zu", name, want.n);
		check_fake(ctx, &s2, &f, &want);
		check_reader(ctx, &f);
		sync_fini(&s2);
	} else {
		sync_fini(&s);
	}
	model_state_free(&want);
	model_state_free(&prev);
	fake_fini(&f);
}

/* ------------------------------------------------------------------------------------------ */
/* Adoption                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Issue 7: what failed is named (service, map) and retried on its own, nothing else rewritten. */
static void test_retry_failed(void)
{
	struct model_state st = {}, none = {};
	struct sync_result res;
	struct fake f;
	struct sync s;
	struct bpfsvc_backend b[2] = { be4(IP4(10, 244, 0, 1), 8080), be4(IP4(10, 244, 0, 2), 8080) };
	char why[256] = "";
	size_t mark;
	uint64_t next;

	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	for (uint32_t i = 0; i < 4; i++) {
		char name[16];

		snprintf(name, sizeof(name), "svc%u", i);
		st_add(&st, key4(IP4(10, 96, 9, 1 + i), 80, IPPROTO_TCP), "default", name, "http", 0,
		       b, 2);
	}
	model_sort(&st);
	f.fe_limit = 2;
	apply(&s, &f, &st, 1 * SEC, &res, NULL);
	check(res.added == 2 && res.failed == 2 && s.nfails == 2,
	      "frontend map full: 2 added, 2 failed and listed (nfails=%zu)", s.nfails);
	check(s.nfails == 2 && s.fails[0].stage == SYNC_STAGE_FE && s.fails[0].err == -E2BIG &&
		      !strcmp(s.fails[1].fe.svc.name, "svc3") && s.fails[1].fe.nbe == 2,
	      "a failure names its service, the map it ran into and keeps its backends");

	mark = f.nlog;
	sync_retry(&s, 2 * SEC, &res);
	{
		bool only_failed = true;

		for (size_t i = mark; i < f.nlog; i++)
			if (f.log[i].t == OP_FE_UPD &&
			    (!memcmp(&f.log[i].fk, &st.fe[0].key, sizeof(st.fe[0].key)) ||
			     !memcmp(&f.log[i].fk, &st.fe[1].key, sizeof(st.fe[1].key))))
				only_failed = false;
		check(res.failed == 2 && s.nfails == 2 && only_failed,
		      "still full: the retry touches only the failed frontends, which stay listed");
	}
	f.fe_limit = (size_t)-1;
	sync_retry(&s, 3 * SEC, &res);
	check(res.added == 2 && res.failed == 0 && s.nfails == 0, "room again: the retry adds both");
	sync_reap(&s, 0, true, &next);
	check_fake("retry", &s, &f, &st);

	/* A failed service that is deleted meanwhile is not programmed by a later retry. */
	sync_apply(&s, &none, 4 * SEC, &res);
	f.fe_limit = 3;
	apply(&s, &f, &st, 5 * SEC, &res, NULL);
	check(s.nfails == 1 && !strcmp(s.fails[0].fe.svc.name, "svc3"), "one left out (svc3)");
	sync_apply_service(&s, "default", "svc3", &none, 6 * SEC, &res);
	check(s.nfails == 0, "deleting the service forgets its failure");
	f.fe_limit = (size_t)-1;
	sync_retry(&s, 7 * SEC, &res);
	check(res.added == 0 && !ffe(&f, st.fe[3].key), "the retry does not bring it back");

	/* One that another service took meanwhile is dropped, not stolen. */
	f.fe_limit = 3;
	sync_apply(&s, &none, 8 * SEC, &res);
	apply(&s, &f, &st, 9 * SEC, &res, NULL);
	{
		struct model_state other = {};

		f.fe_limit = 4;
		st_add(&other, st.fe[3].key, "default", "other", "http", 0, b, 1);
		sync_apply_service(&s, "default", "other", &other, 10 * SEC, &res);
		sync_retry(&s, 11 * SEC, &res);
		check(res.conflicts == 1 && s.nfails == 0 && ffe(&f, st.fe[3].key) &&
			      ffe(&f, st.fe[3].key)->v.count == 1,
		      "a VIP taken meanwhile by another service stays with it");
		model_state_free(&other);
	}
	sync_apply(&s, &none, 12 * SEC, &res);
	sync_reap(&s, 0, true, &next);

	/* A delete that failed is retried too (the frontend would keep serving otherwise). */
	f.fe_limit = (size_t)-1;
	apply(&s, &f, &st, 13 * SEC, &res, NULL);
	f.fail_fe_delete = true;
	f.fail_fe_delete_key = st.fe[0].key;
	apply(&s, &f, &none, 14 * SEC, &res, NULL);
	check(res.removed == 3 && res.failed == 1 && s.nfails == 1 && s.fails[0].remove &&
		      ffe(&f, st.fe[0].key),
	      "a failed delete is listed for retry (nfails=%zu)", s.nfails);
	fake_nofail(&f);
	sync_retry(&s, 15 * SEC, &res);
	check(res.removed == 1 && s.nfails == 0 && !ffe(&f, st.fe[0].key) && s.n == 0,
	      "the retry deletes it");
	sync_reap(&s, 0, true, &next);
	sync_fini(&s);
	fake_fini(&f);

	/* Which map: no free service id, then no room for a backend set. */
	fake_init(&f, 2);
	sync_init(&s, &f.maps, GRACE);
	apply(&s, &f, &st, 1 * SEC, &res, NULL);
	check(res.failed == 2 && s.nfails == 2 && s.fails[0].stage == SYNC_STAGE_SVC &&
		      s.fails[0].err == -ENOSPC,
	      "service ids exhausted: failures say bpfsvc_svcs (stage %d)",
	      s.nfails ? (int)s.fails[0].stage : -1);
	sync_apply(&s, &none, 2 * SEC, &res);
	sync_fini(&s);
	fake_fini(&f);
	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	f.slot_limit = 5;
	apply(&s, &f, &st, 3 * SEC, &res, NULL);
	check(res.failed == 2 && s.nfails == 2 && s.fails[0].stage == SYNC_STAGE_SLOTS,
	      "slot map full: failures say bpfsvc_slots");
	check(mirror_matches(&s, &f, why, sizeof(why)), "mirror matches the map after failures");
	sync_fini(&s);
	fake_fini(&f);
	model_state_free(&st);
}

static void test_adoption(void)
{
	struct fake f;
	struct sync s1, s2;
	struct model_state st, st2, st3;
	struct sync_result res;
	uint64_t gc, next;
	uint32_t max_set = 0, dns_old_set, web4_set;
	size_t mark;
	char why[256];

	fake_init(&f, 64);
	sync_init(&s1, &f.maps, GRACE);
	build_cluster(&st, 2, 53, true, true);
	apply(&s1, &f, &st, 1 * SEC, &res, NULL);
	dns_old_set = ffe(&f, K_DNS)->v.set_id;
	/* Leave an unreaped old set behind, as an agent killed within the grace period would. */
	build_cluster(&st2, 3, 53, true, true);
	apply(&s1, &f, &st2, 2 * SEC, &res, NULL);
	/* And metadata nobody references (died between svc info and frontend writes). */
	f.svc[40].in_use = 1;
	snprintf(f.svc[40].ns, sizeof(f.svc[40].ns), "gone");
	snprintf(f.svc[40].name, sizeof(f.svc[40].name), "stale");
	sync_fini(&s1);
	for (size_t i = 0; i < f.nfe; i++)
		if (f.fe[i].v.set_id > max_set)
			max_set = f.fe[i].v.set_id;

	sync_init(&s2, &f.maps, GRACE);
	mark = f.nlog;
	check(!sync_adopt(&s2, &res, &gc), "adopt: returns 0");
	check(s2.n == 4, "adopt: 4 frontends in the mirror");
	check(res.writes == 1 && !f.svc[40].in_use && log_find_svc(&f, mark, 40, true) == mark,
	      "adopt_done frees the unreferenced svc info (one write)");
	check(gc == 2 && fake_set_size(&f, dns_old_set) == 0, "adopt: dead set's 2 slots collected");
	check(sync_set_live(&s2, ffe(&f, K_DNS)->v.set_id) &&
		      sync_set_live(&s2, ffe(&f, K_WEB4)->v.set_id) &&
		      sync_set_live(&s2, ffe(&f, K_WEB6)->v.set_id),
	      "sync_set_live: sets named by frontends are live");
	check(!sync_set_live(&s2, dns_old_set) && !sync_set_live(&s2, 0) &&
		      !sync_set_live(&s2, max_set + 1),
	      "sync_set_live: replaced set, set 0 and unknown sets are not live");
	check(mirror_matches(&s2, &f, why, sizeof(why)), "adopt: mirror matches the map");

	apply(&s2, &f, &st2, 3 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 4, 0, 0), "same state after adoption: zero writes, unchanged=4");
	/* A change gets a set id above every adopted one. */
	build_cluster(&st3, 4, 53, true, true);
	apply(&s2, &f, &st3, 4 * SEC, &res, &mark);
	check(res_is(&res, 0, 1, 0, 3, 0, 5) && ffe(&f, K_DNS)->v.set_id > max_set,
	      "after adoption: a new set id continues above the adopted ones (%u > %u)",
	      ffe(&f, K_DNS)->v.set_id, max_set);
	check(sync_reap(&s2, 4 * SEC + GRACE, false, &next) == 3,
	      "after adoption: the adopted set is reaped like any other");
	check_fake("after adoption", &s2, &f, &st3);
	check_exact("after adoption", &f);
	sync_fini(&s2);

	check_reader("adoption", &f);

	/* Dirty: a hole in the middle of web v4's set. */
	web4_set = ffe(&f, K_WEB4)->v.set_id;
	fake_slot_del_raw(&f, &(struct bpfsvc_slot_key){ web4_set, 1 });
	f.violations = 0;
	sync_init(&s2, &f.maps, GRACE);
	sync_adopt(&s2, &res, &gc);
	check(gc == 0 && sync_set_live(&s2, web4_set), "dirty adopt: holey set still live, nothing collected");
	apply(&s2, &f, &st3, 5 * SEC, &res, &mark);
	check(res_is(&res, 0, 1, 0, 3, 0, 4) && ffe(&f, K_WEB4)->v.set_id != web4_set &&
		      log_touches_key(&f, mark, &K_WEB4),
	      "dirty adopted frontend rewritten under a new set, others unchanged");
	check(sync_reap(&s2, 0, true, &next) >= 2, "dirty adopt: holey set reaped");
	check_fake("dirty adopt", &s2, &f, &st3);
	check_exact("dirty adopt (no slot of the holey set leaks)", &f);
	sync_fini(&s2);

	/* A frontend whose svc id is unknown is rewritten with a proper one. */
	{
		struct fake_fe *e = fake_fe_find(&f, &K_DNS);
		uint32_t bogus = 50;

		e->v.svc_id = bogus;
		sync_init(&s2, &f.maps, GRACE);
		sync_adopt(&s2, &res, &gc);
		apply(&s2, &f, &st3, 6 * SEC, &res, &mark);
		check(res.updated == 1 && res.unchanged == 3 && ffe(&f, K_DNS)->v.svc_id != bogus,
		      "adopted frontend with unknown svc id: rewritten with a real one");
		check_fake("unknown svc id", &s2, &f, &st3);
		sync_reap(&s2, 0, true, &next);
		check_exact("unknown svc id", &f);
		sync_fini(&s2);
	}
	f.violations = 0;
	model_state_free(&st);
	model_state_free(&st2);
	model_state_free(&st3);
	fake_fini(&f);
}

/*
 * An adopted frontend names a svc id the map does not know. A new frontend processed before
 * it in the same apply may be given that (free) id; rewriting the unknown-owner frontend must
 * not release it from under the new one.
 */
static void test_adopt_unknown_owner_reuse(void)
{
	struct fake f;
	struct sync s;
	struct model_state st = { 0 };
	struct sync_result res;
	struct bpfsvc_backend one = be4(IP4(10, 244, 6, 1), 80);
	struct bpfsvc_fe_key kc = key4(IP4(10, 96, 6, 1), 80, IPPROTO_TCP);
	struct bpfsvc_fe_key kb = key4(IP4(10, 96, 6, 2), 80, IPPROTO_TCP);
	struct bpfsvc_fe_key ka = key4(IP4(10, 96, 6, 3), 80, IPPROTO_TCP);
	struct bpfsvc_fe_val v = { 0 };
	uint64_t gc, next;
	char why[256];

	fake_init(&f, 8);
	/* Map: svc 0 = x (used by C); A names svc 1, which is free. */
	f.svc[0].in_use = 1;
	snprintf(f.svc[0].ns, sizeof(f.svc[0].ns), "ns");
	snprintf(f.svc[0].name, sizeof(f.svc[0].name), "x");
	fake_slot_put_raw(&f, &(struct bpfsvc_slot_key){ 1, 0 }, &one);
	fake_slot_put_raw(&f, &(struct bpfsvc_slot_key){ 2, 0 }, &one);
	v = (struct bpfsvc_fe_val){ .set_id = 1, .count = 1, .svc_id = 0 };
	fake_fe_put_raw(&f, &kc, &v);
	v = (struct bpfsvc_fe_val){ .set_id = 2, .count = 1, .svc_id = 1 };
	fake_fe_put_raw(&f, &ka, &v);

	st_add(&st, kc, "ns", "x", "", 0, &one, 1);
	st_add(&st, kb, "ns", "y", "", 0, &one, 1);
	st_add(&st, ka, "ns", "z", "", 0, &one, 1);
	model_sort(&st);
	sync_init(&s, &f.maps, GRACE);
	sync_adopt(&s, &res, &gc);
	apply(&s, &f, &st, 1 * SEC, &res, NULL);
	check(res_is(&res, 1, 1, 0, 1, 0, -1), "unknown owner: B added, A rewritten, C unchanged");
	check(fake_consistent(&f, why, sizeof(why)),
	      "unknown owner: after the apply every frontend names a svc in use");
	check_fake("unknown owner", &s, &f, &st);
	sync_reap(&s, 0, true, &next);
	check_exact("unknown owner", &f);
	/* And B's id survives A's later removal. */
	{
		struct model_state st2 = { 0 };

		st_add(&st2, kc, "ns", "x", "", 0, &one, 1);
		st_add(&st2, kb, "ns", "y", "", 0, &one, 1);
		model_sort(&st2);
		apply(&s, &f, &st2, 2 * SEC, &res, NULL);
		check(fake_equals(&f, &st2, why, sizeof(why)) && fake_svc_clean(&f, why, sizeof(why)),
		      "unknown owner: removing A later leaves B's svc intact");
		model_state_free(&st2);
	}
	f.violations = 0;
	model_state_free(&st);
	sync_fini(&s);
	fake_fini(&f);
}

/*
 * A stale duplicate svc info (a release whose write failed, then the service came back under
 * another id) is freed at adoption; the service's live id must stay the one it is known by.
 */
static void test_adopt_stale_duplicate_svc(void)
{
	struct fake f;
	struct sync s;
	struct model_state st = { 0 }, st2 = { 0 };
	struct sync_result res;
	struct bpfsvc_backend one = be4(IP4(10, 244, 4, 1), 80);
	struct bpfsvc_fe_key k4 = key4(IP4(10, 96, 4, 1), 80, IPPROTO_TCP);
	struct bpfsvc_fe_key k6 = key6(0x401, 80, IPPROTO_TCP);
	struct bpfsvc_fe_key k6b = key6(0x402, 80, IPPROTO_TCP);
	uint64_t gc, next;
	uint32_t live;
	char why[256];

	for (int stale_above = 0; stale_above < 2; stale_above++) {
		struct bpfsvc_fe_key kt = key4(IP4(10, 96, 4, 9), 80, IPPROTO_TCP);
		uint32_t stale = stale_above ? 6 : 0;

		/* web gets id 1: tmp takes 0 first, then goes. */
		fake_init(&f, 8);
		sync_init(&s, &f.maps, GRACE);
		memset(&st, 0, sizeof(st));
		st_add(&st, kt, "ns", "tmp", "", 0, &one, 1);
		apply(&s, &f, &st, 1, &res, NULL);
		st_add(&st, k4, "ns", "web", "http", 0, &one, 1);
		model_sort(&st);
		apply(&s, &f, &st, 1, &res, NULL);
		model_state_free(&st);
		st_add(&st, k4, "ns", "web", "http", 0, &one, 1);
		apply(&s, &f, &st, 1, &res, NULL);
		sync_reap(&s, 0, true, &next);
		sync_fini(&s);
		live = ffe(&f, k4)->v.svc_id;
		check(live == 1 && !f.svc[0].in_use, "stale duplicate setup: web has id 1, id 0 free");
		f.svc[stale] = f.svc[live];

		sync_init(&s, &f.maps, GRACE);
		sync_adopt(&s, &res, &gc);
		check(!f.svc[stale].in_use && f.svc[live].in_use,
		      "stale duplicate svc info (id %s the live one) freed at adoption",
		      stale_above ? "above" : "below");
		memset(&st2, 0, sizeof(st2));
		st_add(&st2, k4, "ns", "web", "http", 0, &one, 1);
		st_add(&st2, k6, "ns", "web", "http", BPFSVC_FE_F_V6, &one, 1);
		model_sort(&st2);
		apply(&s, &f, &st2, 2, &res, NULL);
		check(res.added == 1 && res.unchanged == 1 && ffe(&f, k6) &&
			      ffe(&f, k6)->v.svc_id == live,
		      "after a stale duplicate (%s): second family joins the live svc id",
		      stale_above ? "above" : "below");
		check(fake_svc_clean(&f, why, sizeof(why)), "after a stale duplicate (%s): one id per service",
		      stale_above ? "above" : "below");
		/* Drop the v4 one, add another: still the same id. */
		model_state_free(&st2);
		memset(&st2, 0, sizeof(st2));
		st_add(&st2, k6, "ns", "web", "http", BPFSVC_FE_F_V6, &one, 1);
		st_add(&st2, k6b, "ns", "web", "http", BPFSVC_FE_F_V6, &one, 1);
		model_sort(&st2);
		apply(&s, &f, &st2, 3, &res, NULL);
		check(ffe(&f, k6b) && ffe(&f, k6b)->v.svc_id == ffe(&f, k6)->v.svc_id &&
			      fake_svc_clean(&f, why, sizeof(why)),
		      "after a stale duplicate (%s): later frontends keep sharing one id",
		      stale_above ? "above" : "below");
		sync_reap(&s, 0, true, &next);
		check_fake("stale duplicate", &s, &f, &st2);
		check_reader("stale duplicate", &f);
		model_state_free(&st);
		model_state_free(&st2);
		sync_fini(&s);
		fake_fini(&f);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Per-service apply                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* Append to out (unsorted) the frontends of all that belong to service ns/name. */
static void st_filter(const struct model_state *all, const char *ns, const char *name,
		      struct model_state *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < all->n; i++) {
		const struct model_fe *m = &all->fe[i];

		if (!strcmp(m->svc.ns, ns) && !strcmp(m->svc.name, name))
			st_add(out, m->key, m->svc.ns, m->svc.name, m->svc.port_name, m->flags,
			       m->be, m->nbe);
	}
}

/* Append a copy of every frontend of src to dst, then sort dst. */
static void st_concat(struct model_state *dst, const struct model_state *src)
{
	for (size_t i = 0; i < src->n; i++) {
		const struct model_fe *m = &src->fe[i];

		st_add(dst, m->key, m->svc.ns, m->svc.name, m->svc.port_name, m->flags, m->be,
		       m->nbe);
	}
	model_sort(dst);
}

/* Reverse the frontend order: a per-service want may come in any order. */
static void st_reverse(struct model_state *st)
{
	for (size_t i = 0, j = st->n; i + 1 < j; i++, j--) {
		struct model_fe t = st->fe[i];

		st->fe[i] = st->fe[j - 1];
		st->fe[j - 1] = t;
	}
}

/* sync_apply_service, checking the write counter against the log. */
static int apply_svc(struct sync *s, struct fake *f, const char *ns, const char *name,
		     const struct model_state *want, uint64_t now, struct sync_result *res,
		     size_t *mark)
{
	size_t from = f->nlog;
	int rc = sync_apply_service(s, ns, name, want, now, res);

	if (mark)
		*mark = from;
	if (res->writes != f->nlog - from) {
		printf("#   writes=%llu but %zu ops logged\n", (unsigned long long)res->writes,
		       f->nlog - from);
		check(false, "per-service result writes equals the ops issued");
	}
	return rc;
}

/*
 * The owner index: each owner entry is found by its key, is non-empty and lists distinct
 * mirror frontends that point back to it and whose svc info is "ns/name" = its key; every
 * frontend with a known svc id is listed (once), one without has no owner.
 */
static bool owners_ok(const struct sync *s, char *why, size_t len)
{
	struct sync_owner *o, *otmp, *found;
	struct sync_fe *f, *ftmp;
	size_t listed = 0, linked = 0;

	HASH_ITER(hh, s->owners, o, otmp) {
		HASH_FIND_STR(s->owners, o->key, found);
		if (found != o || !o->n || o->n > o->cap) {
			snprintf(why, len, "owner %s: not found by key, empty or n > cap", o->key);
			return false;
		}
		for (uint32_t i = 0; i < o->n; i++) {
			const struct sync_fe *e = o->fes[i];
			char k[SYNC_OWNER_LEN];

			if (sync_find(s, &e->key) != e || e->owner != o) {
				snprintf(why, len, "owner %s: entry %u dangling or points elsewhere",
					 o->key, i);
				return false;
			}
			if (e->val.svc_id >= s->max_svc || !s->svc[e->val.svc_id].info.in_use) {
				snprintf(why, len, "owner %s: entry %u has no svc in use", o->key, i);
				return false;
			}
			snprintf(k, sizeof(k), "%s/%s", s->svc[e->val.svc_id].info.ns,
				 s->svc[e->val.svc_id].info.name);
			if (strcmp(k, o->key)) {
				snprintf(why, len, "owner %s lists a frontend of %s", o->key, k);
				return false;
			}
			for (uint32_t j = 0; j < i; j++) {
				if (o->fes[j] == e) {
					snprintf(why, len, "owner %s lists a frontend twice", o->key);
					return false;
				}
			}
		}
		listed += o->n;
	}
	HASH_ITER(hh, s->fe, f, ftmp) {
		bool known = f->val.svc_id < s->max_svc && s->svc[f->val.svc_id].info.in_use;

		if (known != !!f->owner) {
			snprintf(why, len, "frontend with svc %u: known=%d but owner %s", f->val.svc_id,
				 known, f->owner ? f->owner->key : "(none)");
			return false;
		}
		linked += !!f->owner;
	}
	if (listed != linked) {
		snprintf(why, len, "owner lists hold %zu entries, %zu frontends linked", listed,
			 linked);
		return false;
	}
	return true;
}

static void check_owners(const char *ctx, const struct sync *s)
{
	char why[256] = "";
	bool ok = owners_ok(s, why, sizeof(why));

	if (!ok)
		printf("#   %s\n", why);
	check(ok, "%s: owner index consistent with the mirror", ctx);
}

static void test_service_update(void)
{
	struct fake f;
	struct sync s;
	struct model_state st, st3, want, web, none = { 0 }, stn = { 0 }, all = { 0 }, all2;
	struct sync_result res;
	struct bpfsvc_fe_val w4v, w6v, empv, dnsv;
	struct bpfsvc_backend nb[2] = { be4(IP4(10, 244, 8, 1), 80), be4(IP4(10, 244, 8, 2), 80) };
	struct bpfsvc_fe_key kn = key4(IP4(10, 96, 8, 1), 80, IPPROTO_TCP);
	uint64_t next;
	size_t mark, p4, p6, pclr;
	uint32_t new_set, web_id;
	char why[256] = "";
	bool ok;

	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	build_cluster(&st, 2, 53, true, true);
	apply(&s, &f, &st, 1 * SEC, &res, NULL);
	check_owners("full apply", &s);
	check(HASH_COUNT(s.owners) == 3, "full apply: 3 services in the owner index");
	w4v = ffe(&f, K_WEB4)->v;
	w6v = ffe(&f, K_WEB6)->v;
	empv = ffe(&f, K_EMPTY)->v;
	dnsv = ffe(&f, K_DNS)->v;

	/* dns: 2 -> 3 backends, through its service only. */
	build_cluster(&st3, 3, 53, true, true);
	st_filter(&st3, "kube-system", "kube-dns", &want);
	check(!apply_svc(&s, &f, "kube-system", "kube-dns", &want, 10 * SEC, &res, &mark),
	      "per-service dns change: returns 0");
	check(res_is(&res, 0, 1, 0, 0, 0, 4) && res.conflicts == 0,
	      "per-service dns change: updated=1, writes=4, no conflict");
	new_set = ffe(&f, K_DNS)->v.set_id;
	ok = f.nlog - mark == 4 && f.log[mark + 3].t == OP_FE_UPD &&
	     !memcmp(&f.log[mark + 3].fk, &K_DNS, sizeof(K_DNS)) && new_set != dnsv.set_id;
	for (size_t i = 0; ok && i < 3; i++)
		ok = f.log[mark + i].t == OP_SLOT_UPD && f.log[mark + i].sk.set_id == new_set;
	check(ok, "per-service dns change: 3 slots of a new set, then the dns frontend, nothing else");
	check(!log_touches_key(&f, mark, &K_WEB4) && !log_touches_key(&f, mark, &K_WEB6) &&
		      !log_touches_key(&f, mark, &K_EMPTY) &&
		      !log_touches_set(&f, mark, w4v.set_id) &&
		      !log_touches_set(&f, mark, w6v.set_id) &&
		      !log_touches_svc(&f, mark, w4v.svc_id) &&
		      !log_touches_svc(&f, mark, empv.svc_id) &&
		      !log_touches_svc(&f, mark, dnsv.svc_id),
	      "per-service dns change: no write for other services' keys, sets or svc infos");
	check(!memcmp(&ffe(&f, K_WEB4)->v, &w4v, sizeof(w4v)) &&
		      !memcmp(&ffe(&f, K_WEB6)->v, &w6v, sizeof(w6v)) &&
		      !memcmp(&ffe(&f, K_EMPTY)->v, &empv, sizeof(empv)) &&
		      ffe(&f, K_DNS)->v.svc_id == dnsv.svc_id,
	      "per-service dns change: other frontends untouched, dns keeps its svc id");
	check_fake("per-service dns change", &s, &f, &st3);
	check_owners("per-service dns change", &s);

	/* The same again: nothing to do. */
	apply_svc(&s, &f, "kube-system", "kube-dns", &want, 11 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 1, 0, 0) && f.nlog == mark,
	      "per-service unchanged call: unchanged=1, zero writes");
	st_filter(&st3, "default", "web", &web);
	st_reverse(&web);
	apply_svc(&s, &f, "default", "web", &web, 11 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 2, 0, 0) && f.nlog == mark,
	      "per-service unchanged dual-stack service (want reversed): unchanged=2, zero writes");
	check(sync_reap(&s, 10 * SEC + GRACE - 1, false, &next) == 0 && next == 10 * SEC + GRACE,
	      "per-service change: old dns set pending until the grace period ends");
	check(sync_reap(&s, 10 * SEC + GRACE, false, &next) == 2 &&
		      fake_set_size(&f, dnsv.set_id) == 0 && fake_set_size(&f, new_set) == 3,
	      "per-service change: old dns set (2 slots) reaped after grace, new one intact");

	/* A service the mirror does not know yet. */
	st_add(&stn, kn, "ns", "new", "", 0, nb, 2);
	apply_svc(&s, &f, "ns", "new", &stn, 12 * SEC, &res, &mark);
	check(res_is(&res, 1, 0, 0, 0, 0, 4) && log_count(&f, mark, OP_SVC_SET) == 1 &&
		      f.log[mark].t == OP_SVC_SET && f.log[mark].fresh &&
		      log_count(&f, mark, OP_SLOT_UPD) == 2 && log_count(&f, mark, OP_FE_UPD) == 1,
	      "per-service new service: added=1 (fresh svc info, 2 slots, frontend)");
	ok = log_ordered(&f, mark, why, sizeof(why));
	if (!ok)
		printf("#   %s\n", why);
	check(ok, "per-service new service: slots and svc info written before the frontend");
	st_concat(&all, &st3);
	st_concat(&all, &stn);
	check_fake("per-service new service", &s, &f, &all);
	check_owners("per-service new service", &s);

	/* Remove web (dual-stack) with an empty want. */
	web_id = w4v.svc_id;
	apply_svc(&s, &f, "default", "web", &none, 20 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 2, 0, 0, 3),
	      "per-service remove (empty want): removed=2 (2 deletes + 1 svc clear)");
	p4 = log_find_fe(&f, mark, OP_FE_DEL, &K_WEB4);
	p6 = log_find_fe(&f, mark, OP_FE_DEL, &K_WEB6);
	pclr = log_find_svc(&f, mark, web_id, true);
	check(!ffe(&f, K_WEB4) && !ffe(&f, K_WEB6) && !f.svc[web_id].in_use &&
		      p4 != (size_t)-1 && p6 != (size_t)-1 && pclr != (size_t)-1 && p4 < pclr &&
		      p6 < pclr,
	      "per-service remove: both frontends deleted, then the shared svc id released");
	check(!log_touches_key(&f, mark, &K_DNS) && !log_touches_key(&f, mark, &K_EMPTY) &&
		      !log_touches_key(&f, mark, &kn),
	      "per-service remove: other services untouched");
	check(fake_set_size(&f, w4v.set_id) == 3 && fake_set_size(&f, w6v.set_id) == 3,
	      "per-service remove: slots kept until the grace period ends");
	check(sync_reap(&s, 20 * SEC + GRACE - 1, false, &next) == 0 && next == 20 * SEC + GRACE,
	      "per-service remove: nothing reaped before due");
	check(sync_reap(&s, 20 * SEC + GRACE, false, &next) == 6 && next == 0 &&
		      fake_set_size(&f, w4v.set_id) == 0 && fake_set_size(&f, w6v.set_id) == 0,
	      "per-service remove: both sets (6 slots) reaped after grace");
	build_cluster(&all2, 3, 53, false, false);
	st_concat(&all2, &stn);
	check_fake("per-service remove", &s, &f, &all2);
	check_exact("per-service remove", &f);
	check_owners("per-service remove", &s);
	check(HASH_COUNT(s.owners) == 3, "per-service remove: removed service left the owner index");

	/* Empty want for a service the mirror does not hold (again, or never). */
	apply_svc(&s, &f, "default", "web", &none, 21 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 0, 0, 0) && f.nlog == mark,
	      "per-service remove again: nothing to do");
	apply_svc(&s, &f, "nope", "never", &none, 21 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 0, 0, 0) && f.nlog == mark,
	      "per-service remove of an unknown service: nothing to do");
	/* A full apply of the same state agrees: nothing to do. */
	apply(&s, &f, &all2, 22 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 3, 0, 0), "full apply after per-service changes: zero writes");
	check_reader("per-service update", &f);
	model_state_free(&st);
	model_state_free(&st3);
	model_state_free(&want);
	model_state_free(&web);
	model_state_free(&stn);
	model_state_free(&all);
	model_state_free(&all2);
	sync_fini(&s);
	fake_fini(&f);
}

static void test_service_ports(void)
{
	struct fake f;
	struct sync s;
	struct model_state st = { 0 }, want = { 0 }, exp;
	struct sync_result res;
	struct bpfsvc_backend m[2] = { be4(IP4(10, 244, 10, 1), 8080), be4(IP4(10, 244, 10, 2), 8080) };
	struct bpfsvc_backend d4[2] = { be4(IP4(10, 244, 11, 1), 53), be4(IP4(10, 244, 11, 2), 53) };
	struct bpfsvc_backend d6[3] = { be6(0x1101, 53), be6(0x1102, 53), be6(0x1103, 53) };
	struct bpfsvc_fe_key k80 = key4(IP4(10, 96, 10, 1), 80, IPPROTO_TCP);
	struct bpfsvc_fe_key k443 = key4(IP4(10, 96, 10, 1), 443, IPPROTO_TCP);
	struct bpfsvc_fe_key k9090 = key4(IP4(10, 96, 10, 1), 9090, IPPROTO_TCP);
	struct bpfsvc_fe_key kd4 = key4(IP4(10, 96, 11, 1), 53, IPPROTO_UDP);
	struct bpfsvc_fe_key kd6 = key6(0x1101, 53, IPPROTO_UDP);
	struct bpfsvc_fe_val v80, vd4, vd6;
	uint32_t https_id, metrics_id, ds_id, http_id;
	uint64_t next;
	size_t mark, pdel, pupd;

	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	st_add(&st, k80, "ns", "multi", "http", 0, m, 2);
	st_add(&st, k443, "ns", "multi", "https", 0, m, 1);
	st_add(&st, kd4, "ns", "ds", "dns", 0, d4, 2);
	st_add(&st, kd6, "ns", "ds", "dns", BPFSVC_FE_F_V6, d6, 2);
	model_sort(&st);
	apply(&s, &f, &st, 1 * SEC, &res, NULL);
	v80 = ffe(&f, k80)->v;
	vd4 = ffe(&f, kd4)->v;
	vd6 = ffe(&f, kd6)->v;
	http_id = v80.svc_id;
	https_id = ffe(&f, k443)->v.svc_id;
	ds_id = vd4.svc_id;
	check(http_id != https_id && vd6.svc_id == ds_id,
	      "ports setup: one svc id per port, dual-stack shares one");

	/* multi loses https and gains metrics; http unchanged. */
	st_add(&want, k9090, "ns", "multi", "metrics", 0, m + 1, 1);
	st_add(&want, k80, "ns", "multi", "http", 0, m, 2);
	apply_svc(&s, &f, "ns", "multi", &want, 2 * SEC, &res, &mark);
	check(res_is(&res, 1, 0, 1, 1, 0, 5),
	      "port swap: added=1 removed=1 unchanged=1 (fe del, svc clear, svc set, slot, fe)");
	check(!ffe(&f, k443) && !f.svc[https_id].in_use,
	      "port swap: lost port's frontend deleted and its svc id released");
	metrics_id = ffe(&f, k9090) ? ffe(&f, k9090)->v.svc_id : UINT32_MAX;
	check(metrics_id != http_id && metrics_id < 64 && info_is(&f.svc[metrics_id], &want.fe[0].svc) &&
		      log_find_svc(&f, mark, metrics_id, false) != (size_t)-1 &&
		      f.log[log_find_svc(&f, mark, metrics_id, false)].fresh,
	      "port swap: gained port has its own fresh svc id");
	pdel = log_find_fe(&f, mark, OP_FE_DEL, &k443);
	pupd = log_find_fe(&f, mark, OP_FE_UPD, &k9090);
	check(pdel < pupd && pupd != (size_t)-1, "port swap: removal before addition");
	check(!log_touches_key(&f, mark, &k80) && !log_touches_svc(&f, mark, http_id) &&
		      !log_touches_set(&f, mark, v80.set_id) &&
		      !memcmp(&ffe(&f, k80)->v, &v80, sizeof(v80)),
	      "port swap: the kept port is not written at all");
	check(!log_touches_key(&f, mark, &kd4) && !log_touches_key(&f, mark, &kd6) &&
		      !log_touches_svc(&f, mark, ds_id),
	      "port swap: the other service is not written");
	memset(&exp, 0, sizeof(exp));
	st_add(&exp, k80, "ns", "multi", "http", 0, m, 2);
	st_add(&exp, k9090, "ns", "multi", "metrics", 0, m + 1, 1);
	st_add(&exp, kd4, "ns", "ds", "dns", 0, d4, 2);
	st_add(&exp, kd6, "ns", "ds", "dns", BPFSVC_FE_F_V6, d6, 2);
	model_sort(&exp);
	check_fake("port swap", &s, &f, &exp);
	check_owners("port swap", &s);
	check(sync_reap(&s, 2 * SEC + GRACE, false, &next) == 1,
	      "port swap: the lost port's set (1 slot) reaped after grace");

	/* Same key, port renamed: a new svc id, the old one released, the set kept. */
	model_state_free(&want);
	st_add(&want, k80, "ns", "multi", "web", 0, m, 2);
	st_add(&want, k9090, "ns", "multi", "metrics", 0, m + 1, 1);
	apply_svc(&s, &f, "ns", "multi", &want, 3 * SEC, &res, &mark);
	check(res_is(&res, 0, 1, 0, 1, 0, 3) && !f.svc[http_id].in_use &&
		      ffe(&f, k80)->v.set_id == v80.set_id && ffe(&f, k80)->v.svc_id != http_id &&
		      info_is(&f.svc[ffe(&f, k80)->v.svc_id], &want.fe[0].svc),
	      "port rename: svc set, frontend, old svc clear; set kept");
	check_owners("port rename", &s);
	exp.fe[0].svc = want.fe[0].svc; /* exp is sorted: k80 < k9090 < kd4 ... by address */
	model_sort(&exp);

	/* Dual-stack: only v6 changes (2 -> 3 backends). */
	model_state_free(&want);
	st_add(&want, kd4, "ns", "ds", "dns", 0, d4, 2);
	st_add(&want, kd6, "ns", "ds", "dns", BPFSVC_FE_F_V6, d6, 3);
	apply_svc(&s, &f, "ns", "ds", &want, 4 * SEC, &res, &mark);
	check(res_is(&res, 0, 1, 0, 1, 0, 4), "dual-stack v6 change: updated=1 unchanged=1 writes=4");
	check(!log_touches_key(&f, mark, &kd4) && !log_touches_set(&f, mark, vd4.set_id) &&
		      log_count(&f, mark, OP_SVC_SET) == 0 &&
		      !memcmp(&ffe(&f, kd4)->v, &vd4, sizeof(vd4)),
	      "dual-stack v6 change: v4 frontend and set untouched, no svc write");
	check(ffe(&f, kd6)->v.svc_id == ds_id && ffe(&f, kd6)->v.set_id != vd6.set_id &&
		      ffe(&f, kd6)->v.count == 3,
	      "dual-stack v6 change: v6 on a new 3-slot set, still the shared svc id");
	check(!log_touches_key(&f, mark, &k80) && !log_touches_key(&f, mark, &k9090),
	      "dual-stack v6 change: the other service is not written");
	/* v6 dropped: the shared id stays. */
	model_state_free(&want);
	st_add(&want, kd4, "ns", "ds", "dns", 0, d4, 2);
	apply_svc(&s, &f, "ns", "ds", &want, 5 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 1, 1, 0, 1) && !ffe(&f, kd6) && f.svc[ds_id].in_use,
	      "dual-stack v6 dropped: one delete, shared svc id kept for v4");
	/* And back, want in reverse order. */
	st_add(&want, kd6, "ns", "ds", "dns", BPFSVC_FE_F_V6, d6, 3);
	st_reverse(&want);
	apply_svc(&s, &f, "ns", "ds", &want, 6 * SEC, &res, &mark);
	check(res_is(&res, 1, 0, 0, 1, 0, 4) && log_count(&f, mark, OP_SVC_SET) == 0 &&
		      ffe(&f, kd6) && ffe(&f, kd6)->v.svc_id == ds_id,
	      "dual-stack v6 back: added with the shared svc id, no svc write");
	apply_svc(&s, &f, "ns", "ds", &want, 7 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 2, 0, 0), "dual-stack unchanged: zero writes");
	for (size_t i = 0; i < exp.n; i++)
		if (!memcmp(&exp.fe[i].key, &kd6, sizeof(kd6))) {
			free(exp.fe[i].be);
			exp.fe[i].be = malloc(sizeof(d6));
			memcpy(exp.fe[i].be, d6, sizeof(d6));
			qsort(exp.fe[i].be, 3, sizeof(*d6), be_cmp);
			exp.fe[i].nbe = 3;
		}
	check_fake("ports and dual-stack", &s, &f, &exp);
	check_owners("ports and dual-stack", &s);
	sync_reap(&s, 0, true, &next);
	check_exact("ports and dual-stack", &f);
	check_reader("ports and dual-stack", &f);
	model_state_free(&st);
	model_state_free(&want);
	model_state_free(&exp);
	sync_fini(&s);
	fake_fini(&f);
}

static void test_service_conflict(void)
{
	struct fake f;
	struct sync s;
	struct model_state a = { 0 }, b = { 0 }, b2 = { 0 }, none = { 0 }, exp = { 0 };
	struct sync_result res;
	struct bpfsvc_backend one = be4(IP4(10, 244, 12, 1), 80), two = be4(IP4(10, 244, 12, 2), 80);
	struct bpfsvc_fe_key k1 = key4(IP4(10, 96, 12, 1), 80, IPPROTO_TCP);
	struct bpfsvc_fe_key k2 = key4(IP4(10, 96, 12, 2), 80, IPPROTO_TCP);
	struct bpfsvc_fe_key k3 = key4(IP4(10, 96, 12, 3), 80, IPPROTO_TCP);
	struct bpfsvc_fe_val v1;
	uint32_t a_id, resets;
	uint64_t next;
	size_t mark;

	fake_init(&f, 16);
	sync_init(&s, &f.maps, GRACE);
	st_add(&a, k1, "ns", "a", "", 0, &one, 1);
	apply_svc(&s, &f, "ns", "a", &a, 1, &res, NULL);
	st_add(&b2, k2, "ns", "b", "", 0, &two, 1);
	apply_svc(&s, &f, "ns", "b", &b2, 1, &res, NULL);
	v1 = ffe(&f, k1)->v;
	a_id = v1.svc_id;
	resets = f.resets[a_id];

	/* b now wants a's VIP too. */
	st_add(&b, k1, "ns", "b", "", 0, &two, 1);
	st_add(&b, k2, "ns", "b", "", 0, &two, 1);
	st_add(&b, k3, "ns", "b", "", 0, &two, 1);
	apply_svc(&s, &f, "ns", "b", &b, 2, &res, &mark);
	check(res.conflicts == 1 && res_is(&res, 1, 0, 0, 1, 0, 2),
	      "conflict: conflicts=1, k3 added (slot + frontend), k2 unchanged");
	check(!log_touches_key(&f, mark, &k1) && !memcmp(&ffe(&f, k1)->v, &v1, sizeof(v1)) &&
		      !log_touches_set(&f, mark, v1.set_id) && !log_touches_svc(&f, mark, a_id) &&
		      info_is(&f.svc[a_id], &a.fe[0].svc) && f.resets[a_id] == resets,
	      "conflict: the other service's frontend, set and svc info untouched");
	check(sync_find(&s, &k1)->owner && !strcmp(sync_find(&s, &k1)->owner->key, "ns/a"),
	      "conflict: the mirror still has a as the holder");
	check_owners("conflict", &s);
	apply_svc(&s, &f, "ns", "b", &b, 3, &res, &mark);
	check(res.conflicts == 1 && res_is(&res, 0, 0, 0, 2, 0, 0),
	      "conflict again: conflicts=1, zero writes");
	/* b shrinking does not remove a frontend b never held. */
	apply_svc(&s, &f, "ns", "b", &b2, 4, &res, &mark);
	check(res.conflicts == 0 && res_is(&res, 0, 0, 1, 1, 0, 1) && ffe(&f, k1) &&
		      !log_touches_key(&f, mark, &k1) && !ffe(&f, k3),
	      "conflict: b dropping the contested key removes only its own k3");
	apply_svc(&s, &f, "ns", "b", &b, 5, &res, &mark);
	check(res.conflicts == 1 && res.added == 1, "conflict: b wants it again, still a's");

	/* a goes away; b takes the key on its next apply. */
	apply_svc(&s, &f, "ns", "a", &none, 6, &res, &mark);
	check(res_is(&res, 0, 0, 1, 0, 0, 2) && !ffe(&f, k1) && !f.svc[a_id].in_use,
	      "conflict: a removed (frontend deleted, svc id released)");
	apply_svc(&s, &f, "ns", "b", &b, 7, &res, &mark);
	check(res.conflicts == 0 && res_is(&res, 1, 0, 0, 2, 0, 2) && ffe(&f, k1) &&
		      info_is(&f.svc[ffe(&f, k1)->v.svc_id], &b.fe[0].svc),
	      "conflict resolved: b takes the key (slot + frontend), no conflict");
	st_concat(&exp, &b);
	check_fake("conflict resolved", &s, &f, &exp);
	check_owners("conflict resolved", &s);
	check(HASH_COUNT(s.owners) == 1, "conflict resolved: one service in the owner index");

	/* A full apply moving the key back to a is an owner change, not a conflict. */
	model_state_free(&exp);
	memset(&exp, 0, sizeof(exp));
	st_add(&exp, k1, "ns", "a", "", 0, &one, 1);
	st_add(&exp, k2, "ns", "b", "", 0, &two, 1);
	model_sort(&exp);
	apply(&s, &f, &exp, 8, &res, &mark);
	check(res_is(&res, 0, 1, 1, 1, 0, -1) && res.conflicts == 0,
	      "full apply: moves the key back to a (updated), drops k3");
	check_fake("full apply after conflict", &s, &f, &exp);
	check_owners("full apply after conflict", &s);
	sync_reap(&s, 0, true, &next);
	check_exact("conflict", &f);
	check_reader("conflict", &f);
	model_state_free(&a);
	model_state_free(&b);
	model_state_free(&b2);
	model_state_free(&exp);
	sync_fini(&s);
	fake_fini(&f);
}

/* Per-service apply under write failures: retried through the owner index. */
static void test_service_failures(void)
{
	struct fake f;
	struct sync s;
	struct model_state st, none = { 0 }, stn = { 0 }, exp;
	struct sync_result res;
	struct bpfsvc_backend one = be4(IP4(10, 244, 14, 1), 80);
	struct bpfsvc_fe_key kn = key4(IP4(10, 96, 14, 1), 80, IPPROTO_TCP);
	uint32_t web_id;
	uint64_t next;
	size_t mark;
	char why[256];

	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	build_cluster(&st, 2, 53, true, true);
	apply(&s, &f, &st, 1 * SEC, &res, NULL);
	web_id = ffe(&f, K_WEB4)->v.svc_id;

	/* Removing web, one delete fails: the other goes, the svc id stays for the survivor. */
	f.fail_fe_delete = true;
	f.fail_fe_delete_key = K_WEB4;
	apply_svc(&s, &f, "default", "web", &none, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 1, 0, 1, 2) && ffe(&f, K_WEB4) && !ffe(&f, K_WEB6) &&
		      f.svc[web_id].in_use,
	      "per-service remove, one delete fails: failed=1 removed=1, svc id kept");
	check(mirror_matches(&s, &f, why, sizeof(why)) && sync_find(&s, &K_WEB4)->owner,
	      "per-service remove failure: mirror keeps the frontend, still owned");
	check_owners("per-service remove failure", &s);
	fake_nofail(&f);
	apply_svc(&s, &f, "default", "web", &none, 3 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 1, 0, 0, 2) && !ffe(&f, K_WEB4) && !f.svc[web_id].in_use,
	      "per-service remove retried: found via the owner index, svc id released");

	/* A new service whose frontend write fails: nothing of it stays, not even an owner. */
	sync_reap(&s, 0, true, &next);
	st_add(&stn, kn, "ns", "new", "", 0, &one, 1);
	f.fail_fe_update = true;
	f.fail_fe_update_key = kn;
	apply_svc(&s, &f, "ns", "new", &stn, 4 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 0, 1, 5) && !ffe(&f, kn) && !sync_find(&s, &kn),
	      "per-service add, fe_update fails: failed=1 (svc, slot, fe, slot del, svc clear)");
	check(fake_svc_clean(&f, why, sizeof(why)) && fake_slots_exact(&f, why, sizeof(why)),
	      "per-service add failure: no svc info or slot left behind");
	check_owners("per-service add failure", &s);
	fake_nofail(&f);
	apply_svc(&s, &f, "ns", "new", &stn, 5 * SEC, &res, &mark);
	check(res_is(&res, 1, 0, 0, 0, 0, 3), "per-service add retried: added");
	build_cluster(&exp, 2, 53, false, false);
	st_concat(&exp, &stn);
	sync_reap(&s, 0, true, &next);
	check_fake("per-service failures", &s, &f, &exp);
	check_exact("per-service failures", &f);
	check_owners("per-service failures", &s);
	check_reader("per-service failures", &f);
	model_state_free(&st);
	model_state_free(&stn);
	model_state_free(&exp);
	sync_fini(&s);
	fake_fini(&f);
}

/*
 * The apply generation wraps. Frontends created by an apply (or adopted) carry mark 0; the
 * apply that brings the generation to 0 must still remove them when they are not wanted.
 */
static void test_gen_wrap(void)
{
	struct fake f;
	struct sync s;
	struct model_state st, two = { 0 }, onlyk = { 0 }, x = { 0 }, none_ = { 0 };
	struct sync_result res;
	struct bpfsvc_backend one = be4(IP4(10, 244, 15, 1), 80);
	struct bpfsvc_fe_key k1 = key4(IP4(10, 96, 15, 1), 80, IPPROTO_TCP);
	struct bpfsvc_fe_key k2 = key4(IP4(10, 96, 15, 2), 80, IPPROTO_TCP);
	struct bpfsvc_fe_key k3 = key4(IP4(10, 96, 15, 3), 80, IPPROTO_TCP);
	uint64_t next;

	fake_init(&f, 64);
	sync_init(&s, &f.maps, GRACE);
	build_cluster(&st, 2, 53, true, true);
	apply(&s, &f, &st, 1, &res, NULL);
	st_add(&two, k1, "ns", "w", "", 0, &one, 1);
	st_add(&two, k2, "ns", "w", "", 0, &one, 1);
	st_add(&onlyk, k1, "ns", "w", "", 0, &one, 1);
	st_add(&x, k3, "ns", "x", "", 0, &one, 1);

	/* Full: k3 added just before the wrap, not wanted by the full apply at generation 0. */
	s.gen = UINT32_MAX - 1;
	apply_svc(&s, &f, "ns", "x", &x, 2, &res, NULL);
	apply(&s, &f, &st, 3, &res, NULL);
	check(res_is(&res, 0, 0, 1, 4, 0, 2) && !ffe(&f, k3),
	      "generation wrap (full): unwanted frontend removed");
	/* Per-service: k1, k2 added just before the wrap; the apply at generation 0 drops k2. */
	s.gen = UINT32_MAX - 1;
	apply_svc(&s, &f, "ns", "w", &two, 4, &res, NULL);
	apply_svc(&s, &f, "ns", "w", &onlyk, 5, &res, NULL);
	check(res_is(&res, 0, 0, 1, 1, 0, 1) && !ffe(&f, k2),
	      "generation wrap (per-service): unwanted frontend removed");
	/* And generations keep working after the wrap. */
	apply_svc(&s, &f, "ns", "w", &none_, 6, &res, NULL);
	check(res_is(&res, 0, 0, 1, 0, 0, 2) && !ffe(&f, k1) && s.gen != 0,
	      "after the wrap: per-service remove works, generation is not 0");
	check_fake("generation wrap", &s, &f, &st);
	sync_reap(&s, 0, true, &next);
	check_exact("generation wrap", &f);
	check_reader("generation wrap", &f);
	model_state_free(&st);
	model_state_free(&two);
	model_state_free(&onlyk);
	model_state_free(&x);
	sync_fini(&s);
	fake_fini(&f);
}

/* ------------------------------------------------------------------------------------------ */
/* Per-service random sequences                                                               */
/* ------------------------------------------------------------------------------------------ */

#define MIX_MAX_SVC 128 /* 25 services x 3 port names fit */

static void mix_names(uint32_t owner, char *ns, char *name)
{
	snprintf(ns, 16, "ns%u", owner % 5);
	snprintf(name, 16, "svc%u", owner);
}

/* Like cand_build, with a port name per candidate (services get several ports), and only the
 * frontends of service 'only' if only >= 0 (then unsorted: reversed). */
static void mix_build(const struct cand *c, long only, struct model_state *st)
{
	static const char *const ports[] = { "", "a", "b" };
	struct bpfsvc_backend be[NPOOL];

	memset(st, 0, sizeof(*st));
	for (uint32_t i = 0; i < NCAND; i++) {
		char ns[16], name[16];
		uint32_t n = 0;

		if (!c[i].present || (only >= 0 && c[i].owner != (uint32_t)only))
			continue;
		for (uint32_t j = 0; j < NPOOL; j++)
			if (c[i].mask & (1U << j))
				be[n++] = be4(IP4(10, 244, 5, 1 + j), (uint16_t)(8000 + j % 2));
		mix_names(c[i].owner, ns, name);
		st_add(st, cand_key(i), ns, name, ports[i % 3], c[i].flags, be, n);
	}
	if (only < 0)
		model_sort(st);
	else
		st_reverse(st);
}

static bool cand_same(const struct cand *a, const struct cand *b)
{
	return a->owner == b->owner && a->flags == b->flags && a->mask == b->mask;
}

static void mix_init(struct cand *c, uint64_t *rng)
{
	for (uint32_t i = 0; i < NCAND; i++) {
		c[i].present = xrand(rng) % 4 != 0;
		c[i].owner = (uint32_t)(xrand(rng) % NSVCREF);
		c[i].flags = i >= 30 ? BPFSVC_FE_F_V6 : 0;
		c[i].mask = (uint32_t)xrand(rng) & 0xffff;
	}
}

/* Candidate index of a fake-map key, or -1. */
static long cand_of(const struct bpfsvc_fe_key *k)
{
	for (uint32_t i = 0; i < NCAND; i++) {
		struct bpfsvc_fe_key ck = cand_key(i);

		if (!memcmp(&ck, k, sizeof(ck)))
			return i;
	}
	return -1;
}

/*
 * Random interleaving of full and per-service applies. 'held' models the map: per candidate
 * key, the service holding it and what it holds. A per-service apply of S removes what S holds
 * but no longer wants, adds or updates what S wants unless another service holds it (a
 * conflict), and writes nothing of any other service. With fail_pct, random failures are
 * injected: then only the invariants are checked (no hole, mirror equals map, owner index
 * consistent, failed equals the failures injected), and a final clean full apply converges.
 */
static void mix_run(const char *name, uint64_t seed, unsigned steps, unsigned fail_pct)
{
	struct fake f;
	struct sync s;
	struct cand c[NCAND], held[NCAND];
	char owner_before[NCAND][SYNC_OWNER_LEN]; /* the mirror's holder of each key, "" if none */
	struct model_state want, exp;
	struct sync_result res;
	uint64_t rng = seed, now = SEC, next;
	size_t bad_rc = 0, bad_mirror = 0, bad_owner = 0, bad_equal = 0, bad_counts = 0;
	size_t bad_touch = 0, bad_failed = 0, bad_hole = 0, nfull = 0, nsvc = 0, nconf = 0;
	size_t total_failed = 0;
	char why[256], first[512] = "";
	unsigned step;

	printf("# %s: seed %llu, %u steps, %u%% failures\n", name, (unsigned long long)seed, steps,
	       fail_pct);
	fake_init(&f, MIX_MAX_SVC);
	sync_init(&s, &f.maps, GRACE);
	mix_init(c, &rng);
	memset(held, 0, sizeof(held));
	f.rng = seed ^ 0xa5a5;
	for (step = 0; step < steps; step++) {
		uint32_t added = 0, updated = 0, removed = 0, unchanged = 0, conflicts = 0;
		bool full = step == 0 || xrand(&rng) % 8 == 0;
		uint32_t S = (uint32_t)(xrand(&rng) % NSVCREF);
		size_t mark, inj0;
		int rc;

		if (step)
			mutate(c, &rng, 6);
		for (uint32_t i = 0; i < NCAND; i++) {
			struct bpfsvc_fe_key k = cand_key(i);
			const struct sync_fe *e = sync_find(&s, &k);

			snprintf(owner_before[i], sizeof(owner_before[i]), "%s",
				 e && e->owner ? e->owner->key : "");
		}
		for (uint32_t i = 0; i < NCAND; i++) {
			bool w = c[i].present && (full || c[i].owner == S);
			bool h = held[i].present && (full || held[i].owner == S);

			if (w && held[i].present && !full && held[i].owner != S) {
				conflicts++;
			} else if (w) {
				if (!held[i].present)
					added++;
				else if (cand_same(&held[i], &c[i]))
					unchanged++;
				else
					updated++;
				held[i] = c[i];
			} else if (h) {
				removed++;
				held[i].present = false;
			}
		}
		mix_build(c, full ? -1 : (long)S, &want);
		f.fail_pct = fail_pct;
		inj0 = f.injected;
		if (full) {
			rc = apply(&s, &f, &want, now, &res, &mark);
			nfull++;
		} else {
			char ns[16], nm[16];

			mix_names(S, ns, nm);
			rc = apply_svc(&s, &f, ns, nm, &want, now, &res, &mark);
			nsvc++;
			nconf += res.conflicts;
		}
		f.fail_pct = 0;
		model_state_free(&want);
		if (rc)
			bad_rc++;
		if (f.violations) {
			if (!bad_hole++)
				snprintf(first, sizeof(first), "step %u: reader: %s", step,
					 f.first_violation);
			f.violations = 0;
		}
		if (res.failed != f.injected - inj0) {
			if (!bad_failed++)
				snprintf(first, sizeof(first), "step %u: failed=%u but %zu injected", step,
					 res.failed, f.injected - inj0);
		}
		total_failed += res.failed;
		if (!mirror_matches(&s, &f, why, sizeof(why))) {
			if (!bad_mirror++)
				snprintf(first, sizeof(first), "step %u: %s", step, why);
		}
		if (!owners_ok(&s, why, sizeof(why))) {
			if (!bad_owner++)
				snprintf(first, sizeof(first), "step %u: %s", step, why);
		}
		if (!fail_pct) {
			if (res.added != added || res.updated != updated || res.removed != removed ||
			    res.unchanged != unchanged || res.conflicts != conflicts || res.failed) {
				if (!bad_counts++)
					snprintf(first, sizeof(first),
						 "step %u (%s %u): counters %u/%u/%u/%u/%u/c%u want %u/%u/%u/%u/c%u",
						 step, full ? "full" : "svc", S, res.added, res.updated,
						 res.removed, res.unchanged, res.failed, res.conflicts,
						 added, updated, removed, unchanged, conflicts);
			}
			mix_build(held, -1, &exp);
			if (!fake_equals(&f, &exp, why, sizeof(why)) ||
			    !fake_svc_clean(&f, why, sizeof(why))) {
				if (!bad_equal++)
					snprintf(first, sizeof(first), "step %u: %s", step, why);
			}
			model_state_free(&exp);
		}
		/* A per-service apply writes only S's frontends (held by S, or wanted by S and
		 * held by nobody) and S's svc infos. */
		for (size_t p = mark; !full && p < f.nlog; p++) {
			const struct op *o = &f.log[p];
			char ns[16], nm[16], me[SYNC_OWNER_LEN];
			bool mine = true;

			mix_names(S, ns, nm);
			snprintf(me, sizeof(me), "%s/%s", ns, nm);
			if (o->t == OP_FE_UPD || o->t == OP_FE_DEL) {
				long i = cand_of(&o->fk);

				mine = i >= 0 && (!strcmp(owner_before[i], me) ||
						  (c[i].present && c[i].owner == S &&
						   !owner_before[i][0]));
			} else if (o->t == OP_SVC_SET) {
				mine = !strcmp(o->owner, me);
			}
			if (!mine) {
				if (!bad_touch++)
					snprintf(first, sizeof(first),
						 "step %u: apply of svc%u wrote op %zu of another service",
						 step, S, p);
				break;
			}
		}
		now += xrand(&rng) % (2 * GRACE);
		switch (xrand(&rng) % 6) {
		case 0:
		case 1:
			sync_reap(&s, now, false, &next);
			break;
		case 2:
			if (xrand(&rng) % 10 == 0)
				sync_reap(&s, now, true, &next);
			break;
		default:
			break;
		}
		if (f.violations) {
			if (!bad_hole++)
				snprintf(first, sizeof(first), "step %u reap: %s", step,
					 f.first_violation);
			f.violations = 0;
		}
	}
	printf("#   %zu full, %zu per-service applies, %zu conflicts, %zu frontends failed, %zu ops, %zu reads\n",
	       nfull, nsvc, nconf, total_failed, f.nlog, f.reads);
	if (first[0])
		printf("#   first problem: %s\n", first);
	check(nfull > 0 && nsvc > 0 && (fail_pct || nconf > 0),
	      "%s: full and per-service applies both ran%s", name, fail_pct ? "" : ", conflicts seen");
	check(!bad_hole, "%s: concurrent reader never saw a hole (%zu reads)", name, f.reads);
	check(!bad_rc, "%s: every apply returned 0", name);
	check(!bad_mirror, "%s: mirror matches the map after every apply", name);
	check(!bad_owner, "%s: owner index consistent after every apply", name);
	check(!bad_failed, "%s: failed equals the failures injected", name);
	check(!bad_touch, "%s: a per-service apply never writes another service's frontend or svc info",
	      name);
	if (fail_pct) {
		check(total_failed > 0, "%s: failures were injected", name);
	} else {
		check(!bad_counts, "%s: added/updated/removed/unchanged/conflicts right at every step",
		      name);
		check(!bad_equal, "%s: fake map equals the union of applied per-service states", name);
		/* Reap everything: exactly the live sets stay. */
		sync_reap(&s, now, true, &next);
		check(next == 0, "%s: nothing pending after reap(all)", name);
		mix_build(held, -1, &exp);
		check_fake(name, &s, &f, &exp);
		check_exact(name, &f);
		model_state_free(&exp);
	}
	/* Converge: a clean full apply of the desired state. */
	mix_build(c, -1, &want);
	apply(&s, &f, &want, now, &res, NULL);
	check(res.failed == 0 && res.conflicts == 0, "%s: final full apply: no failure", name);
	sync_reap(&s, now, true, &next);
	check_fake(name, &s, &f, &want);
	check_exact(name, &f);
	check_owners(name, &s);
	check_reader(name, &f);
	model_state_free(&want);
	sync_fini(&s);
	fake_fini(&f);
}

/* Same service infos in use, by name (ids may differ). */
static bool svc_names_equal(const struct fake *a, const struct fake *b, char *why, size_t len)
{
	for (int pass = 0; pass < 2; pass++) {
		const struct fake *x = pass ? b : a, *y = pass ? a : b;

		for (uint32_t i = 0; i < x->max_svc; i++) {
			bool found = false;

			if (!x->svc[i].in_use)
				continue;
			for (uint32_t j = 0; j < y->max_svc && !found; j++)
				found = y->svc[j].in_use && !strcmp(x->svc[i].ns, y->svc[j].ns) &&
					!strcmp(x->svc[i].name, y->svc[j].name) &&
					!strcmp(x->svc[i].port_name, y->svc[j].port_name);
			if (!found) {
				snprintf(why, len, "svc %s/%s:%s only in map %d", x->svc[i].ns,
					 x->svc[i].name, x->svc[i].port_name, pass + 1);
				return false;
			}
		}
	}
	return true;
}

/* Same frontends (key, flags, count, backends, owner by name) in both maps. */
static bool fakes_same(const struct fake *a, const struct fake *b, char *why, size_t len)
{
	if (a->nfe != b->nfe) {
		snprintf(why, len, "%zu vs %zu frontends", a->nfe, b->nfe);
		return false;
	}
	for (size_t i = 0; i < a->nfe; i++) {
		const struct fake_fe *x = &a->fe[i], *y = NULL;
		const struct bpfsvc_svc_info *sx, *sy;

		for (size_t j = 0; j < b->nfe; j++)
			if (!memcmp(&b->fe[j].k, &x->k, sizeof(x->k)))
				y = &b->fe[j];
		if (!y || x->v.flags != y->v.flags || x->v.count != y->v.count) {
			snprintf(why, len, "frontend #%zu missing or differs", i);
			return false;
		}
		sx = &a->svc[x->v.svc_id];
		sy = &b->svc[y->v.svc_id];
		if (strcmp(sx->ns, sy->ns) || strcmp(sx->name, sy->name) ||
		    strcmp(sx->port_name, sy->port_name)) {
			snprintf(why, len, "frontend #%zu: owners differ", i);
			return false;
		}
		for (uint32_t j = 0; j < x->v.count; j++) {
			struct bpfsvc_backend p, q;

			if (!fake_slot(a, x->v.set_id, j, &p) || !fake_slot(b, y->v.set_id, j, &q) ||
			    memcmp(&p, &q, sizeof(p))) {
				snprintf(why, len, "frontend #%zu: backend %u differs", i, j);
				return false;
			}
		}
	}
	return true;
}

/*
 * For random desired states, one full sync_apply (map 1) and a sync_apply_service per service
 * (map 2: every service present before or after, in random order, then again those that
 * reported a conflict) end in the same map.
 */
static void equiv_run(uint64_t seed, unsigned rounds)
{
	struct fake f1, f2;
	struct sync s1, s2;
	struct cand c[NCAND];
	struct model_state want, one;
	struct sync_result res;
	bool used[NSVCREF] = { false };
	uint64_t rng = seed, now = SEC, next;
	size_t bad_same = 0, bad_conf = 0, bad_zero = 0, bad_mirror = 0, bad_fail = 0;
	size_t retries = 0, moves = 0;
	char why[256], first[512] = "";

	printf("# equivalence: seed %llu, %u rounds\n", (unsigned long long)seed, rounds);
	fake_init(&f1, MIX_MAX_SVC);
	fake_init(&f2, MIX_MAX_SVC);
	sync_init(&s1, &f1.maps, GRACE);
	sync_init(&s2, &f2.maps, GRACE);
	mix_init(c, &rng);
	for (unsigned r = 0; r < rounds; r++) {
		uint32_t order[NSVCREF], retry[NSVCREF], n = 0, nretry = 0;
		bool now_used[NSVCREF] = { false };
		struct cand prev[NCAND];

		memcpy(prev, c, sizeof(prev));
		if (r)
			mutate(c, &rng, 30);
		for (uint32_t i = 0; i < NCAND; i++) {
			if (c[i].present)
				now_used[c[i].owner] = true;
			moves += r && c[i].present && prev[i].present && c[i].owner != prev[i].owner;
		}
		mix_build(c, -1, &want);
		apply(&s1, &f1, &want, now, &res, NULL);
		if (res.failed)
			bad_fail++;
		for (uint32_t k = 0; k < NSVCREF; k++)
			if (used[k] || now_used[k])
				order[n++] = k;
		for (uint32_t k = n; k > 1; k--) {
			uint32_t j = (uint32_t)(xrand(&rng) % k), t = order[k - 1];

			order[k - 1] = order[j];
			order[j] = t;
		}
		for (int pass = 0; pass < 2; pass++) {
			uint32_t m = pass ? nretry : n;

			for (uint32_t k = 0; k < m; k++) {
				uint32_t S = pass ? retry[k] : order[k];
				char ns[16], nm[16];

				mix_names(S, ns, nm);
				mix_build(c, S, &one);
				apply_svc(&s2, &f2, ns, nm, &one, now, &res, NULL);
				model_state_free(&one);
				if (res.failed)
					bad_fail++;
				if (res.conflicts && !pass)
					retry[nretry++] = S;
				if (res.conflicts && pass && !bad_conf++)
					snprintf(first, sizeof(first), "round %u: svc%u still conflicts",
						 r, S);
			}
		}
		retries += nretry;
		memcpy(used, now_used, sizeof(used));
		if (!fake_equals(&f1, &want, why, sizeof(why)) ||
		    !fake_equals(&f2, &want, why, sizeof(why)) ||
		    !fakes_same(&f1, &f2, why, sizeof(why)) ||
		    !svc_names_equal(&f1, &f2, why, sizeof(why)) ||
		    !fake_svc_clean(&f2, why, sizeof(why))) {
			if (!bad_same++)
				snprintf(first, sizeof(first), "round %u: %s", r, why);
		}
		if (!mirror_matches(&s2, &f2, why, sizeof(why)) || !owners_ok(&s2, why, sizeof(why)) ||
		    !owners_ok(&s1, why, sizeof(why))) {
			if (!bad_mirror++)
				snprintf(first, sizeof(first), "round %u: %s", r, why);
		}
		/* Each side agrees the other way round is already done. */
		apply(&s2, &f2, &want, now, &res, NULL);
		if (res.writes || res.unchanged != want.n)
			bad_zero++;
		for (uint32_t k = 0; k < NSVCREF; k++) {
			char ns[16], nm[16];

			mix_names(k, ns, nm);
			mix_build(c, k, &one);
			apply_svc(&s1, &f1, ns, nm, &one, now, &res, NULL);
			if (res.writes || res.conflicts || res.unchanged != one.n)
				bad_zero++;
			model_state_free(&one);
		}
		model_state_free(&want);
		now += xrand(&rng) % (2 * GRACE);
		if (xrand(&rng) % 2) {
			sync_reap(&s1, now, false, &next);
			sync_reap(&s2, now, false, &next);
		}
	}
	printf("#   %zu key owner moves, %zu services re-applied after a conflict\n", moves, retries);
	if (first[0])
		printf("#   first problem: %s\n", first);
	check(moves > 0 && retries > 0, "equivalence: owner moves and conflicts were exercised");
	check(!bad_fail, "equivalence: no frontend failed");
	check(!bad_conf, "equivalence: one re-apply of the conflicting services resolves all");
	check(!bad_same, "equivalence: full and per-service applies give the same map every round");
	check(!bad_mirror, "equivalence: mirrors match the maps, owner indexes consistent");
	check(!bad_zero, "equivalence: a full apply after per-service ones (and vice versa) writes nothing");
	sync_reap(&s1, now, true, &next);
	sync_reap(&s2, now, true, &next);
	check_exact("equivalence (full)", &f1);
	check_exact("equivalence (per-service)", &f2);
	check_reader("equivalence (full)", &f1);
	check_reader("equivalence (per-service)", &f2);
	sync_fini(&s1);
	sync_fini(&s2);
	fake_fini(&f1);
	fake_fini(&f2);
}

/*
 * After adoption, per-service applies find each service's frontends through the owner index
 * rebuilt by sync_adopt(), dirty ones included.
 */
static void test_adopt_then_service(void)
{
	struct fake f;
	struct sync s1, s2;
	struct model_state st, multi = { 0 }, orph = { 0 }, web6, dns, exp, none = { 0 };
	struct sync_result res;
	struct bpfsvc_backend m[2] = { be4(IP4(10, 244, 13, 1), 80), be4(IP4(10, 244, 13, 2), 80) };
	struct bpfsvc_fe_key k80 = key4(IP4(10, 96, 13, 1), 80, IPPROTO_TCP);
	struct bpfsvc_fe_key k443 = key4(IP4(10, 96, 13, 1), 443, IPPROTO_TCP);
	struct bpfsvc_fe_key ko = key4(IP4(10, 96, 13, 9), 80, IPPROTO_TCP);
	struct bpfsvc_fe_val w4v, dnsv, ov;
	uint32_t https_id, web_id, orph_id;
	uint64_t gc, next;
	size_t mark;
	char why[256];

	fake_init(&f, 64);
	sync_init(&s1, &f.maps, GRACE);
	build_cluster(&st, 3, 53, true, true);
	st_add(&multi, k80, "ns", "multi", "http", 0, m, 2);
	st_add(&multi, k443, "ns", "multi", "https", 0, m, 2);
	st_add(&orph, ko, "ns", "orphan", "", 0, m, 1);
	st_concat(&st, &multi);
	st_concat(&st, &orph);
	apply(&s1, &f, &st, 1 * SEC, &res, NULL);
	sync_reap(&s1, 0, true, &next);
	sync_fini(&s1);
	w4v = ffe(&f, K_WEB4)->v;
	dnsv = ffe(&f, K_DNS)->v;
	web_id = w4v.svc_id;
	https_id = ffe(&f, k443)->v.svc_id;
	orph_id = ffe(&f, ko)->v.svc_id;
	/* Holes in web v4 and dns; the orphan's frontend names an id the map does not know. */
	fake_slot_del_raw(&f, &(struct bpfsvc_slot_key){ w4v.set_id, 1 });
	fake_slot_del_raw(&f, &(struct bpfsvc_slot_key){ dnsv.set_id, 2 });
	fake_fe_find(&f, &ko)->v.svc_id = 50;

	sync_init(&s2, &f.maps, GRACE);
	check(!sync_adopt(&s2, &res, &gc), "adopt then per-service: adoption");
	check(!f.svc[orph_id].in_use && sync_find(&s2, &ko) && !sync_find(&s2, &ko)->owner &&
		      sync_find(&s2, &ko)->dirty,
	      "adopt then per-service: orphan's unreferenced svc info freed, frontend has no owner");
	check(sync_find(&s2, &K_WEB4)->dirty && sync_find(&s2, &K_DNS)->dirty &&
		      sync_find(&s2, &K_WEB4)->owner &&
		      !strcmp(sync_find(&s2, &K_WEB4)->owner->key, "default/web") &&
		      sync_find(&s2, &K_DNS)->owner &&
		      !strcmp(sync_find(&s2, &K_DNS)->owner->key, "kube-system/kube-dns"),
	      "adopt then per-service: dirty frontends linked to their services");
	check_owners("after adoption", &s2);
	check(HASH_COUNT(s2.owners) == 4, "after adoption: 4 services in the owner index");

	/* An empty want for a service nobody holds, and an unchanged clean service. */
	apply_svc(&s2, &f, "nope", "never", &none, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 0, 0, 0), "after adoption: unknown service, nothing to do");
	apply_svc(&s2, &f, "default", "empty", &none, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 1, 0, 0, 2) && !ffe(&f, K_EMPTY),
	      "after adoption: empty want removes an adopted service (found via the owner index)");

	/* multi loses https: found through the owner index (it is not in want). */
	model_state_free(&multi);
	memset(&multi, 0, sizeof(multi));
	st_add(&multi, k80, "ns", "multi", "http", 0, m, 2);
	apply_svc(&s2, &f, "ns", "multi", &multi, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 1, 1, 0, 2) && !ffe(&f, k443) && !f.svc[https_id].in_use &&
		      !log_touches_key(&f, mark, &k80),
	      "after adoption: dropped port removed via the owner index, kept port unchanged");

	/* web keeps only v6: the dirty v4 is removed, its holey set reaped in full. */
	build_cluster(&web6, 3, 53, false, true);
	st_filter(&web6, "default", "web", &exp);
	apply_svc(&s2, &f, "default", "web", &exp, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 1, 1, 0, 1) && !ffe(&f, K_WEB4) && f.svc[web_id].in_use,
	      "after adoption: dirty adopted frontend removed via the owner index, v6 unchanged");
	model_state_free(&exp);

	/* dns unchanged in want, but dirty: rewritten. */
	st_filter(&web6, "kube-system", "kube-dns", &dns);
	apply_svc(&s2, &f, "kube-system", "kube-dns", &dns, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 1, 0, 0, 0, 4) && ffe(&f, K_DNS)->v.set_id != dnsv.set_id &&
		      ffe(&f, K_DNS)->v.svc_id == dnsv.svc_id,
	      "after adoption: dirty frontend with the same want rewritten under a new set");
	apply_svc(&s2, &f, "kube-system", "kube-dns", &dns, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, 1, 0, 0), "after adoption: rewritten dns now unchanged");

	/* The orphan (owner unknown) is taken by the service that wants it, without conflict. */
	apply_svc(&s2, &f, "ns", "orphan", &orph, 2 * SEC, &res, &mark);
	ov = ffe(&f, ko)->v;
	check(res_is(&res, 0, 1, 0, 0, 0, -1) && res.conflicts == 0 && ov.svc_id < 64 &&
		      info_is(&f.svc[ov.svc_id], &orph.fe[0].svc) &&
		      sync_find(&s2, &ko)->owner &&
		      !strcmp(sync_find(&s2, &ko)->owner->key, "ns/orphan"),
	      "after adoption: unknown-owner frontend rewritten for its service and linked");
	check(fake_consistent(&f, why, sizeof(why)),
	      "after adoption: every frontend now names a whole set and a svc in use");
	f.violations = 0; /* the holes and the unknown id were there before the first op */

	memset(&exp, 0, sizeof(exp));
	st_concat(&exp, &multi);
	st_concat(&exp, &orph);
	for (size_t i = 0; i < web6.n; i++)
		if (memcmp(&web6.fe[i].key, &K_EMPTY, sizeof(K_EMPTY)))
			st_add(&exp, web6.fe[i].key, web6.fe[i].svc.ns, web6.fe[i].svc.name,
			       web6.fe[i].svc.port_name, web6.fe[i].flags, web6.fe[i].be,
			       web6.fe[i].nbe);
	model_sort(&exp);
	check_fake("adopt then per-service", &s2, &f, &exp);
	check_owners("adopt then per-service", &s2);
	sync_reap(&s2, 0, true, &next);
	check_exact("adopt then per-service (holey sets reaped)", &f);
	apply(&s2, &f, &exp, 3 * SEC, &res, &mark);
	check(res_is(&res, 0, 0, 0, exp.n, 0, 0),
	      "adopt then per-service: a full apply of the same state writes nothing");
	/* Remove everything service by service. */
	{
		static const char *const svcs[][2] = { { "ns", "multi" }, { "ns", "orphan" },
						       { "default", "web" },
						       { "kube-system", "kube-dns" } };

		for (size_t i = 0; i < 4; i++)
			apply_svc(&s2, &f, svcs[i][0], svcs[i][1], &none, 4 * SEC, &res, NULL);
		sync_reap(&s2, 0, true, &next);
		check(f.nfe == 0 && s2.n == 0 && f.nslots == 0 && !s2.owners,
		      "adopt then per-service: all services removed one by one, nothing left");
		for (uint32_t id = 0; id < f.max_svc; id++)
			if (f.svc[id].in_use)
				check(false, "svc %u still in use", id);
	}
	check_reader("adopt then per-service", &f);
	model_state_free(&st);
	model_state_free(&multi);
	model_state_free(&orph);
	model_state_free(&web6);
	model_state_free(&dns);
	model_state_free(&exp);
	sync_fini(&s2);
	fake_fini(&f);
}

/* ------------------------------------------------------------------------------------------ */
/* Adoption after a crash, batched writes                                                     */
/* ------------------------------------------------------------------------------------------ */

/*
 * An agent killed mid-write leaves a half-written set no frontend names yet (the switch comes
 * last), and a frontend with a count no slot map could hold is read as garbage. Adoption,
 * through the real sync code over the fake's readers, deletes the half set and nothing else,
 * marks the bad frontend to be rewritten, and the next set id does not collide.
 */
static void test_adopt_crash_half_written(void)
{
	struct fake f;
	struct sync s1, s2;
	struct model_state st, st2;
	struct sync_result res;
	struct bpfsvc_backend b = be4(IP4(10, 244, 9, 9), 53);
	uint32_t half, max_set = 0;
	uint64_t gc, next;
	size_t mark;

	fake_init(&f, 64);
	sync_init(&s1, &f.maps, GRACE);
	build_cluster(&st, 2, 53, true, true);
	apply(&s1, &f, &st, 1 * SEC, &res, NULL);
	sync_reap(&s1, 0, true, &next);
	sync_fini(&s1);
	for (size_t i = 0; i < f.nfe; i++)
		if (f.fe[i].v.set_id > max_set)
			max_set = f.fe[i].v.set_id;
	/* The crash: 2 of the 3 slots of dns's next set written, the frontend not switched. */
	half = max_set + 1;
	fake_slot_put_raw(&f, &(struct bpfsvc_slot_key){ half, 0 }, &b);
	fake_slot_put_raw(&f, &(struct bpfsvc_slot_key){ half, 1 }, &b);
	fake_fe_find(&f, &K_EMPTY)->v.count = 1000;

	sync_init(&s2, &f.maps, GRACE);
	mark = f.nlog;
	check(!sync_adopt(&s2, &res, &gc), "crash adopt: returns 0");
	check(gc == 2 && fake_set_size(&f, half) == 0 && !sync_set_live(&s2, half),
	      "crash adopt: the half-written set's 2 slots collected");
	check(f.nlog - mark == 2 && log_count(&f, mark, OP_SLOT_DEL) == 2 && res.writes == 0,
	      "crash adopt: nothing but those deletes written");
	check(s2.n == 4 && sync_find(&s2, &K_EMPTY)->dirty && !sync_find(&s2, &K_DNS)->dirty &&
		      !sync_find(&s2, &K_WEB4)->dirty,
	      "crash adopt: a count beyond the slot map is dirty, the others are clean");
	f.violations = 0; /* the bad count was there before the first op */

	apply(&s2, &f, &st, 2 * SEC, &res, &mark);
	check(res_is(&res, 0, 1, 0, 3, 0, -1) && ffe(&f, K_EMPTY)->v.count == 0 &&
		      log_touches_key(&f, mark, &K_EMPTY) && !log_touches_key(&f, mark, &K_DNS),
	      "crash adopt: the bad frontend rewritten, the rest unchanged");
	build_cluster(&st2, 3, 53, true, true);
	apply(&s2, &f, &st2, 3 * SEC, &res, &mark);
	check(res_is(&res, 0, 1, 0, 3, 0, -1) && ffe(&f, K_DNS)->v.set_id >= half,
	      "crash adopt: dns's new set written whole (set %u)", ffe(&f, K_DNS)->v.set_id);
	sync_reap(&s2, 0, true, &next);
	check_fake("crash adopt", &s2, &f, &st2);
	check_exact("crash adopt", &f);
	check_reader("crash adopt", &f);
	model_state_free(&st);
	model_state_free(&st2);
	sync_fini(&s2);
	fake_fini(&f);
}

/* The two logs hold the same writes, in the same order, with the same results. */
static bool logs_same(const struct fake *a, const struct fake *b, char *why, size_t len)
{
	if (a->nlog != b->nlog) {
		snprintf(why, len, "%zu vs %zu ops", a->nlog, b->nlog);
		return false;
	}
	for (size_t i = 0; i < a->nlog; i++) {
		const struct op *x = &a->log[i], *y = &b->log[i];

		if (x->t != y->t || x->rc != y->rc || memcmp(&x->fk, &y->fk, sizeof(x->fk)) ||
		    memcmp(&x->fv, &y->fv, sizeof(x->fv)) || memcmp(&x->sk, &y->sk, sizeof(x->sk)) ||
		    x->svc_id != y->svc_id) {
			snprintf(why, len, "op %zu differs", i);
			return false;
		}
	}
	return true;
}

static bool res_same(const struct sync_result *a, const struct sync_result *b)
{
	return a->added == b->added && a->updated == b->updated && a->removed == b->removed &&
	       a->unchanged == b->unchanged && a->failed == b->failed &&
	       a->conflicts == b->conflicts;
}

/*
 * The batched write path (slot_update_batch) against the one-by-one one: a set is written with
 * one call; maps, results and the order of element writes are the same. A batch that fails
 * part-way leaves nothing of its set, like a failed single write (one write fewer is counted:
 * the failed element, which the batch does not report as written). There is no fallback to
 * one-by-one writes after a failed batch: the frontend fails and is retried as a whole.
 */
static void test_batch_write(void)
{
	struct fake f1, f2;
	struct sync s1, s2;
	struct model_state st, st2;
	struct sync_result r1, r2;
	char why[256] = "";
	uint64_t next;
	size_t m1, m2;

	fake_init(&f1, 64);
	fake_init(&f2, 64);
	fake_batch(&f2);
	sync_init(&s1, &f1.maps, GRACE);
	sync_init(&s2, &f2.maps, GRACE);
	build_cluster(&st, 2, 53, true, true);
	apply(&s1, &f1, &st, 1 * SEC, &r1, NULL);
	apply(&s2, &f2, &st, 1 * SEC, &r2, NULL);
	check(f1.batches == 0 && f2.batches == 3,
	      "batch: one call per non-empty set (3), none on the one-by-one fake (%zu)",
	      f2.batches);
	check(res_same(&r1, &r2) && r1.writes == r2.writes && res_is(&r2, 4, 0, 0, 0, 0, -1),
	      "batch: same results and write count as one by one");
	check(logs_same(&f1, &f2, why, sizeof(why)), "batch: same element writes in the same order");
	check_fake("batch", &s2, &f2, &st);
	check(fakes_same(&f1, &f2, why, sizeof(why)), "batch: same maps");

	/* The second slot of dns's new set fails: the batch stops there. */
	build_cluster(&st2, 4, 53, true, true);
	f1.slot_ok_left = f2.slot_ok_left = 1;
	apply(&s1, &f1, &st2, 2 * SEC, &r1, &m1);
	apply(&s2, &f2, &st2, 2 * SEC, &r2, &m2);
	fake_nofail(&f1);
	fake_nofail(&f2);
	check(f2.batch_fails == 1 && res_same(&r1, &r2) && res_is(&r2, 0, 0, 0, 3, 1, -1) &&
		      r1.writes == r2.writes + 1,
	      "failed batch: the frontend fails as one by one (writes %llu vs %llu)",
	      (unsigned long long)r1.writes, (unsigned long long)r2.writes);
	check(s2.nfails == 1 && s2.fails[0].stage == SYNC_STAGE_SLOTS &&
		      log_count(&f2, m2, OP_SLOT_UPD) == 1 && log_count(&f2, m2, OP_SLOT_DEL) == 1 &&
		      !log_touches_key(&f2, m2, &K_DNS),
	      "failed batch: its one written slot deleted again, the frontend not switched");
	check(fake_equals(&f2, &st, why, sizeof(why)) && fakes_same(&f1, &f2, why, sizeof(why)),
	      "failed batch: maps still hold the previous state, like one by one");
	sync_retry(&s1, 3 * SEC, &r1);
	sync_retry(&s2, 3 * SEC, &r2);
	check(res_same(&r1, &r2) && r2.updated == 1 && r2.failed == 0 && r1.writes == r2.writes,
	      "failed batch: the retry writes the set");
	sync_reap(&s1, 0, true, &next);
	sync_reap(&s2, 0, true, &next);
	check_fake("batch after retry", &s2, &f2, &st2);
	check_exact("batch after retry", &f2);
	check(fakes_same(&f1, &f2, why, sizeof(why)), "batch after retry: same maps");
	check_reader("batch one by one", &f1);
	check_reader("batch", &f2);
	model_state_free(&st);
	model_state_free(&st2);
	sync_fini(&s1);
	sync_fini(&s2);
	fake_fini(&f1);
	fake_fini(&f2);
}

/* Random desired states, with random failures, on a one-by-one and a batching fake fed the
 * same random sequence: after every apply the results and the maps are the same. */
static void batch_equiv_run(uint64_t seed, unsigned steps, unsigned fail_pct)
{
	struct fake f1, f2;
	struct sync s1, s2;
	struct cand c[NCAND];
	struct model_state want;
	struct sync_result r1, r2;
	uint64_t rng = seed, now = SEC, next;
	size_t bad_res = 0, bad_writes = 0, bad_maps = 0, bad_mirror = 0;
	char why[256], first[512] = "";

	printf("# batch equivalence: seed %llu, %u steps, %u%% failures\n",
	       (unsigned long long)seed, steps, fail_pct);
	fake_init(&f1, 64);
	fake_init(&f2, 64);
	fake_batch(&f2);
	f1.rng = f2.rng = seed ^ 0x5555;
	sync_init(&s1, &f1.maps, GRACE);
	sync_init(&s2, &f2.maps, GRACE);
	for (uint32_t i = 0; i < NCAND; i++) {
		c[i].present = xrand(&rng) % 4 != 0;
		c[i].owner = i % NSVCREF;
		c[i].flags = i >= 30 ? BPFSVC_FE_F_V6 : 0;
		c[i].mask = (uint32_t)xrand(&rng) & 0xffff;
	}
	for (unsigned step = 0; step < steps; step++) {
		size_t bf0 = f2.batch_fails;

		if (step)
			mutate(c, &rng, 10);
		cand_build(c, &want);
		f1.fail_pct = f2.fail_pct = fail_pct;
		apply(&s1, &f1, &want, now, &r1, NULL);
		apply(&s2, &f2, &want, now, &r2, NULL);
		f1.fail_pct = f2.fail_pct = 0;
		if (!res_same(&r1, &r2) && !bad_res++)
			snprintf(first, sizeof(first), "step %u: results differ", step);
		/* One by one counts each failed element write; a batch does not. */
		if (r1.writes != r2.writes + (f2.batch_fails - bf0) && !bad_writes++)
			snprintf(first, sizeof(first), "step %u: writes %llu vs %llu + %zu", step,
				 (unsigned long long)r1.writes, (unsigned long long)r2.writes,
				 f2.batch_fails - bf0);
		if (!fakes_same(&f1, &f2, why, sizeof(why)) && !bad_maps++)
			snprintf(first, sizeof(first), "step %u: %s", step, why);
		if (!mirror_matches(&s2, &f2, why, sizeof(why)) && !bad_mirror++)
			snprintf(first, sizeof(first), "step %u: %s", step, why);
		if (step % 7 == 6) {
			now += GRACE;
			sync_reap(&s1, now, false, &next);
			sync_reap(&s2, now, false, &next);
		}
		model_state_free(&want);
	}
	if (first[0])
		printf("#   first problem: %s\n", first);
	check(f2.batches > 0 && (!fail_pct || f2.batch_fails > 0),
	      "batch equivalence: %zu batches, %zu failed", f2.batches, f2.batch_fails);
	check(!bad_res, "batch equivalence: same results as one by one after every apply");
	check(!bad_writes, "batch equivalence: same write counts (less the failed elements)");
	check(!bad_maps, "batch equivalence: same maps after every apply");
	check(!bad_mirror, "batch equivalence: mirror matches the batched map");
	check_reader("batch equivalence, one by one", &f1);
	check_reader("batch equivalence", &f2);
	sync_fini(&s1);
	sync_fini(&s2);
	fake_fini(&f1);
	fake_fini(&f2);
}

int main(void)
{
	init_keys();
	test_first_apply_and_noop();
	test_change_and_reap();
	test_remove_and_svc_ids();
	test_owner_change();
	test_failures();
	test_retry_failed();
	random_run("random", 0x1234567ULL, 500, 0, true);
	random_run("random with failures", 0xfeedbeefULL, 500, 5, true);
	test_adoption();
	test_adopt_unknown_owner_reuse();
	test_adopt_stale_duplicate_svc();
	test_service_update();
	test_service_ports();
	test_service_conflict();
	test_service_failures();
	test_gen_wrap();
	mix_run("per-service mix", 0xabcdef12ULL, 1500, 0);
	mix_run("per-service mix with failures", 0x31415926ULL, 1000, 5);
	equiv_run(0x5eed5eedULL, 80);
	test_adopt_then_service();
	test_adopt_crash_half_written();
	test_batch_write();
	batch_equiv_run(0xba7c4ULL, 400, 0);
	batch_equiv_run(0xba7c5ULL, 400, 5);
	return check_summary();
}
