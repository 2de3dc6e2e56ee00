/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A fake datapath for unit tests: struct dp_map_ops of datapath_maps.h (reads and batched
 * writes included) over in-memory frontend, slot and service tables, with an ordered log of
 * every write, injectable failures and capacity limits. After every single fake operation a
 * simulated concurrent reader checks that each frontend names a complete backend set and a
 * service in use (the atomic-switch rule of DESIGN.md). Give sync (or reconcile) f->maps.
 */
#ifndef BPFSVC_TEST_FAKE_MAPS_H
#define BPFSVC_TEST_FAKE_MAPS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath_maps.h"
#include "sync.h" /* SYNC_OWNER_LEN */

/* Each test uses a part of it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
/* ------------------------------------------------------------------------------------------ */
/* Fake map backend                                                                           */
/* ------------------------------------------------------------------------------------------ */

enum op_type { OP_FE_UPD, OP_FE_DEL, OP_SLOT_UPD, OP_SLOT_DEL, OP_SVC_SET };

struct op {
	enum op_type t;
	int rc;
	struct bpfsvc_fe_key fk;
	struct bpfsvc_fe_val fv;
	struct bpfsvc_slot_key sk;
	uint32_t svc_id;
	bool fresh, clear; /* svc_set: stats reset / info.in_use == 0 */
	char owner[SYNC_OWNER_LEN]; /* svc_set: "ns/name" written, or cleared */
};

#define FAKE_MAX_IDX 32 /* the fake holds at most 32 backends per set */

struct fake_set {
	uint32_t mask;
	struct bpfsvc_backend be[FAKE_MAX_IDX];
};

struct fake_fe {
	struct bpfsvc_fe_key k;
	struct bpfsvc_fe_val v;
};

struct fake {
	struct fake_fe *fe;
	size_t nfe, capfe, fe_limit;
	struct fake_set **sets; /* indexed by set_id, allocated on first write */
	uint32_t nsets;
	size_t nslots, slot_limit;
	struct bpfsvc_svc_info *svc;
	uint32_t *resets; /* stats resets (svc_set with fresh) per svc id */
	uint32_t max_svc;
	struct op *log;
	size_t nlog, caplog;
	/* Failure injection. */
	long slot_ok_left; /* < 0: off; else slot_update succeeds this many more times */
	bool fail_fe_update;
	struct bpfsvc_fe_key fail_fe_update_key;
	bool fail_fe_delete;
	struct bpfsvc_fe_key fail_fe_delete_key;
	bool fail_svc_fresh;
	unsigned fail_pct; /* random failure of fe_update/fe_delete/slot_update/svc_set fresh */
	uint64_t rng;
	size_t injected; /* failures injected so far */
	/* The concurrent reader. */
	size_t reads, violations;
	char first_violation[320];
	/* The handle sync is given (fake_ops, or fake_batch_ops after fake_batch()). */
	struct dp_maps maps;
	size_t batches, batch_fails; /* slot_update_batch calls, and those that failed */
};

static const struct dp_map_ops fake_ops, fake_batch_ops;

static uint64_t xrand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void fake_init(struct fake *f, uint32_t max_svc)
{
	memset(f, 0, sizeof(*f));
	f->max_svc = max_svc;
	f->svc = calloc(max_svc, sizeof(*f->svc));
	f->resets = calloc(max_svc, sizeof(*f->resets));
	f->fe_limit = f->slot_limit = (size_t)-1;
	f->slot_ok_left = -1;
	f->rng = 0x9e3779b97f4a7c15ULL;
	/* Adoption trusts a set's count up to max_slots: the fake holds 32 backends a set. */
	f->maps = (struct dp_maps){ .ops = &fake_ops, .ctx = f, .max_frontends = UINT32_MAX,
				    .max_slots = FAKE_MAX_IDX, .max_services = max_svc };
	if (!f->svc || !f->resets)
		abort();
}

/* Write sets with one slot_update_batch call from now on. */
static void fake_batch(struct fake *f)
{
	f->maps.ops = &fake_batch_ops;
}

static void fake_fini(struct fake *f)
{
	for (uint32_t i = 0; i < f->nsets; i++)
		free(f->sets[i]);
	free(f->sets);
	free(f->fe);
	free(f->svc);
	free(f->resets);
	free(f->log);
	memset(f, 0, sizeof(*f));
}

static void fake_nofail(struct fake *f)
{
	f->slot_ok_left = -1;
	f->fail_fe_update = f->fail_fe_delete = f->fail_svc_fresh = false;
	f->fail_pct = 0;
}

static struct fake_fe *fake_fe_find(struct fake *f, const struct bpfsvc_fe_key *k)
{
	for (size_t i = 0; i < f->nfe; i++)
		if (!memcmp(&f->fe[i].k, k, sizeof(*k)))
			return &f->fe[i];
	return NULL;
}

static bool fake_slot(const struct fake *f, uint32_t set_id, uint32_t idx,
		      struct bpfsvc_backend *out)
{
	if (set_id >= f->nsets || idx >= FAKE_MAX_IDX || !f->sets[set_id] ||
	    !(f->sets[set_id]->mask & (1U << idx)))
		return false;
	if (out)
		*out = f->sets[set_id]->be[idx];
	return true;
}

static uint32_t fake_set_size(const struct fake *f, uint32_t set_id)
{
	if (set_id >= f->nsets || !f->sets[set_id])
		return 0;
	return (uint32_t)__builtin_popcount(f->sets[set_id]->mask);
}

static int fake_slot_del_raw(struct fake *f, const struct bpfsvc_slot_key *k)
{
	if (!fake_slot(f, k->set_id, k->idx, NULL))
		return -ENOENT;
	f->sets[k->set_id]->mask &= ~(1U << k->idx);
	f->nslots--;
	return 0;
}

static int fake_slot_put_raw(struct fake *f, const struct bpfsvc_slot_key *k,
			     const struct bpfsvc_backend *b)
{
	if (k->idx >= FAKE_MAX_IDX)
		return -E2BIG;
	if (k->set_id >= f->nsets) {
		uint32_t n = k->set_id + 64;
		struct fake_set **p = realloc(f->sets, n * sizeof(*p));

		if (!p)
			abort();
		memset(p + f->nsets, 0, (n - f->nsets) * sizeof(*p));
		f->sets = p;
		f->nsets = n;
	}
	if (!f->sets[k->set_id] && !(f->sets[k->set_id] = calloc(1, sizeof(struct fake_set))))
		abort();
	if (!(f->sets[k->set_id]->mask & (1U << k->idx))) {
		if (f->nslots >= f->slot_limit)
			return -E2BIG;
		f->nslots++;
	}
	f->sets[k->set_id]->mask |= 1U << k->idx;
	f->sets[k->set_id]->be[k->idx] = *b;
	return 0;
}

static void fake_fe_put_raw(struct fake *f, const struct bpfsvc_fe_key *k,
			    const struct bpfsvc_fe_val *v)
{
	struct fake_fe *e = fake_fe_find(f, k);

	if (!e) {
		if (f->nfe == f->capfe) {
			f->capfe = f->capfe ? 2 * f->capfe : 64;
			f->fe = realloc(f->fe, f->capfe * sizeof(*f->fe));
			if (!f->fe)
				abort();
		}
		e = &f->fe[f->nfe++];
		e->k = *k;
	}
	e->v = *v;
}

/* The concurrent reader: may any frontend now lead a connect() to a hole? */
static bool fake_consistent(const struct fake *f, char *why, size_t len)
{
	for (size_t i = 0; i < f->nfe; i++) {
		const struct fake_fe *e = &f->fe[i];

		if (e->v.svc_id >= f->max_svc || !f->svc[e->v.svc_id].in_use) {
			snprintf(why, len, "frontend #%zu names svc %u which is not in use", i,
				 e->v.svc_id);
			return false;
		}
		for (uint32_t j = 0; j < e->v.count; j++) {
			if (!fake_slot(f, e->v.set_id, j, NULL)) {
				snprintf(why, len, "frontend #%zu names set %u count %u: slot %u missing",
					 i, e->v.set_id, e->v.count, j);
				return false;
			}
		}
	}
	return true;
}

static void fake_read(struct fake *f)
{
	char why[256];

	f->reads++;
	if (fake_consistent(f, why, sizeof(why)))
		return;
	if (!f->violations++)
		snprintf(f->first_violation, sizeof(f->first_violation), "after op %zu: %s",
			 f->nlog, why);
}

static struct op *fake_log(struct fake *f, enum op_type t)
{
	struct op *o;

	if (f->nlog == f->caplog) {
		f->caplog = f->caplog ? 2 * f->caplog : 1024;
		f->log = realloc(f->log, f->caplog * sizeof(*f->log));
		if (!f->log)
			abort();
	}
	o = &f->log[f->nlog++];
	memset(o, 0, sizeof(*o));
	o->t = t;
	return o;
}

static bool fake_rand_fail(struct fake *f)
{
	return f->fail_pct && xrand(&f->rng) % 100 < f->fail_pct;
}

static int fake_fe_update(void *ctx, const struct bpfsvc_fe_key *k, const struct bpfsvc_fe_val *v)
{
	struct fake *f = ctx;
	struct op *o = fake_log(f, OP_FE_UPD);

	o->fk = *k;
	o->fv = *v;
	if ((f->fail_fe_update && !memcmp(k, &f->fail_fe_update_key, sizeof(*k))) ||
	    fake_rand_fail(f)) {
		f->injected++;
		o->rc = -EIO;
	} else if (!fake_fe_find(f, k) && f->nfe >= f->fe_limit) {
		o->rc = -E2BIG;
	} else {
		fake_fe_put_raw(f, k, v);
	}
	fake_read(f);
	return o->rc;
}

static int fake_fe_delete(void *ctx, const struct bpfsvc_fe_key *k)
{
	struct fake *f = ctx;
	struct op *o = fake_log(f, OP_FE_DEL);
	struct fake_fe *e = fake_fe_find(f, k);

	o->fk = *k;
	if ((f->fail_fe_delete && !memcmp(k, &f->fail_fe_delete_key, sizeof(*k))) ||
	    fake_rand_fail(f)) {
		f->injected++;
		o->rc = -EIO;
	} else if (!e) {
		o->rc = -ENOENT;
	} else {
		size_t i = (size_t)(e - f->fe);

		memmove(&f->fe[i], &f->fe[i + 1], (f->nfe - i - 1) * sizeof(*f->fe));
		f->nfe--;
	}
	fake_read(f);
	return o->rc;
}

static int fake_slot_update(void *ctx, const struct bpfsvc_slot_key *k,
			    const struct bpfsvc_backend *b)
{
	struct fake *f = ctx;
	struct op *o = fake_log(f, OP_SLOT_UPD);

	o->sk = *k;
	if (f->slot_ok_left == 0 || fake_rand_fail(f)) {
		f->injected++;
		o->rc = -EIO;
	} else {
		if (f->slot_ok_left > 0)
			f->slot_ok_left--;
		o->rc = fake_slot_put_raw(f, k, b);
	}
	fake_read(f);
	return o->rc;
}

/* bpf_map_update_batch(): element by element (the reader looks after each), stopping at the
 * first failure. Only the elements written are logged, as sync counts only those. */
static int fake_slot_update_batch(void *ctx, const struct bpfsvc_slot_key *k,
				  const struct bpfsvc_backend *b, uint32_t n, uint32_t *done)
{
	struct fake *f = ctx;
	int rc = 0;

	f->batches++;
	for (*done = 0; *done < n; (*done)++) {
		rc = fake_slot_update(f, &k[*done], &b[*done]);
		if (rc) {
			f->nlog--;
			f->batch_fails++;
			break;
		}
	}
	return rc;
}

static int fake_slot_delete(void *ctx, const struct bpfsvc_slot_key *k)
{
	struct fake *f = ctx;
	struct op *o = fake_log(f, OP_SLOT_DEL);

	o->sk = *k;
	o->rc = fake_slot_del_raw(f, k);
	fake_read(f);
	return o->rc;
}

static int fake_svc_set(void *ctx, uint32_t id, const struct bpfsvc_svc_info *info, bool fresh)
{
	struct fake *f = ctx;
	struct op *o = fake_log(f, OP_SVC_SET);

	o->svc_id = id;
	o->fresh = fresh;
	o->clear = !info->in_use;
	if (info->in_use)
		snprintf(o->owner, sizeof(o->owner), "%s/%s", info->ns, info->name);
	else if (id < f->max_svc)
		snprintf(o->owner, sizeof(o->owner), "%s/%s", f->svc[id].ns, f->svc[id].name);
	if (id >= f->max_svc) {
		o->rc = -E2BIG;
	} else if (fresh && (f->fail_svc_fresh || fake_rand_fail(f))) {
		f->injected++;
		o->rc = -EIO;
	} else {
		f->svc[id] = *info;
		if (fresh)
			f->resets[id]++;
	}
	fake_read(f);
	return o->rc;
}

/* The readers: a walk goes through frontends in reverse insertion order (a hash map's walk
 * is not sorted either) and restarts from the first key when prev is gone, as the kernel's. */
static int fake_fe_next(void *ctx, const struct bpfsvc_fe_key *prev, struct bpfsvc_fe_key *next)
{
	struct fake *f = ctx;
	const struct fake_fe *e = prev ? fake_fe_find(f, prev) : NULL;
	size_t i = e ? (size_t)(e - f->fe) : f->nfe;

	if (!i)
		return -ENOENT;
	*next = f->fe[i - 1].k;
	return 0;
}

static int fake_fe_lookup(void *ctx, const struct bpfsvc_fe_key *k, struct bpfsvc_fe_val *v)
{
	const struct fake_fe *e = fake_fe_find(ctx, k);

	if (!e)
		return -ENOENT;
	*v = e->v;
	return 0;
}

static int fake_slot_next(void *ctx, const struct bpfsvc_slot_key *prev,
			  struct bpfsvc_slot_key *next)
{
	const struct fake *f = ctx;
	uint64_t at = prev ? ((uint64_t)prev->set_id * FAKE_MAX_IDX + prev->idx + 1) : 0;

	if (prev && !fake_slot(f, prev->set_id, prev->idx, NULL))
		at = 0;
	for (; at < (uint64_t)f->nsets * FAKE_MAX_IDX; at++) {
		if (fake_slot(f, (uint32_t)(at / FAKE_MAX_IDX), (uint32_t)(at % FAKE_MAX_IDX),
			      NULL)) {
			*next = (struct bpfsvc_slot_key){ (uint32_t)(at / FAKE_MAX_IDX),
							  (uint32_t)(at % FAKE_MAX_IDX) };
			return 0;
		}
	}
	return -ENOENT;
}

static int fake_slot_lookup(void *ctx, const struct bpfsvc_slot_key *k, struct bpfsvc_backend *b)
{
	return fake_slot(ctx, k->set_id, k->idx, b) ? 0 : -ENOENT;
}

static int fake_svc_lookup(void *ctx, uint32_t id, struct bpfsvc_svc_info *info)
{
	const struct fake *f = ctx;

	if (id >= f->max_svc)
		return -ENOENT;
	*info = f->svc[id];
	return 0;
}

static int fake_stats_lookup(void *ctx, uint32_t id, struct bpfsvc_stats *sum)
{
	const struct fake *f = ctx;

	memset(sum, 0, sizeof(*sum));
	return id < f->max_svc ? 0 : -ENOENT;
}

#define FAKE_OPS                                                                              \
	.fe_next = fake_fe_next, .fe_lookup = fake_fe_lookup, .slot_next = fake_slot_next,    \
	.slot_lookup = fake_slot_lookup, .svc_lookup = fake_svc_lookup,                       \
	.stats_lookup = fake_stats_lookup, .fe_update = fake_fe_update,                       \
	.fe_delete = fake_fe_delete, .slot_update = fake_slot_update,                         \
	.slot_delete = fake_slot_delete, .svc_set = fake_svc_set

static const struct dp_map_ops fake_ops = { FAKE_OPS };
static const struct dp_map_ops fake_batch_ops = { FAKE_OPS,
						  .slot_update_batch = fake_slot_update_batch };

#pragma GCC diagnostic pop

#endif
