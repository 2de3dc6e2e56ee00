// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Adoption: rebuild sync's mirror from what the maps hold, read through s->maps. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "sync.h"
#include "sync_internal.h"

static int adopt_svc(struct sync *s, uint32_t id, const struct bpfsvc_svc_info *info)
{
	char key[SYNC_SVC_KEY_LEN];

	if (id >= s->max_svc || !info->in_use)
		return 0;
	s->svc[id].info = *info;
	/* Never trust the map for termination. */
	s->svc[id].info.ns[BPFSVC_NS_LEN - 1] = 0;
	s->svc[id].info.name[BPFSVC_NAME_LEN - 1] = 0;
	s->svc[id].info.port_name[BPFSVC_PORTNAME_LEN - 1] = 0;
	sync_svc_key(&s->svc[id].info, key, sizeof(key));
	return json_object_set_new(s->svc_index, key, json_integer(id)) ? -ENOMEM : 0;
}

/* One frontend as the map holds it, with the nbe backends found (copied). */
static int adopt_fe(struct sync *s, const struct bpfsvc_fe_key *k, const struct bpfsvc_fe_val *v,
		    const struct bpfsvc_backend *be, uint32_t nbe, bool dirty)
{
	struct sync_fe *f;

	HASH_FIND(hh, s->fe, k, sizeof(*k), f);
	if (f)
		return -EEXIST;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->key = *k;
	f->val = *v;
	f->dirty = dirty || nbe != v->count;
	/* A dirty set is rewritten and the old one reaped as idx 0..count-1: keep the map's
	 * count so slots after a hole are reaped too (be is zero-padded; it is never compared
	 * while dirty). */
	f->val.count = nbe > v->count ? nbe : v->count;
	if (f->val.count) {
		f->be = calloc(f->val.count, sizeof(*be));
		if (!f->be) {
			free(f);
			return -ENOMEM;
		}
		if (nbe)
			memcpy(f->be, be, nbe * sizeof(*be));
	}
	HASH_ADD(hh, s->fe, key, sizeof(f->key), f);
	s->n++;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int adopt_done(struct sync *s, struct sync_result *res)
{
	struct sync_fe *f, *tmp;
	size_t nl = 0;
	uint32_t id;

	memset(res, 0, sizeof(*res));
	free(s->live_sets);
	s->live_sets = malloc((s->n + 1) * sizeof(*s->live_sets));
	if (!s->live_sets)
		return -ENOMEM;
	HASH_ITER(hh, s->fe, f, tmp) {
		if (f->val.svc_id < s->max_svc && s->svc[f->val.svc_id].info.in_use) {
			s->svc[f->val.svc_id].refs++;
		} else {
			/* Owner unknown: rewrite with a fresh svc_id. The id it names holds no
			 * reference (it may be handed to another service before this frontend is
			 * rewritten), so forget it: releasing it later would free someone else's. */
			f->dirty = true;
			f->val.svc_id = UINT32_MAX;
		}
		if (f->val.set_id) {
			s->live_sets[nl++] = f->val.set_id;
			if (f->val.set_id >= s->next_set_id)
				s->next_set_id = f->val.set_id + 1;
		}
	}
	s->nlive = nl;
	if (nl)
		qsort(s->live_sets, nl, sizeof(*s->live_sets), u32_cmp);
	/* Metadata nobody references (an agent died mid-sync) is freed now. */
	for (id = 0; id < s->max_svc; id++) {
		if (s->svc[id].info.in_use && !s->svc[id].refs) {
			s->svc[id].refs = 1;
			sync_svc_release(s, id, res);
		}
	}
	/* A freed stale duplicate may have shadowed or removed the key of the id in use. */
	for (id = 0; id < s->max_svc; id++) {
		char key[SYNC_SVC_KEY_LEN];

		if (!s->svc[id].info.in_use)
			continue;
		sync_svc_key(&s->svc[id].info, key, sizeof(key));
		if (json_object_set_new(s->svc_index, key, json_integer(id)))
			return -ENOMEM;
	}
	HASH_ITER(hh, s->fe, f, tmp)
		if (sync_owner_link(s, f))
			return -ENOMEM;
	return 0;
}

bool sync_set_live(const struct sync *s, uint32_t set_id)
{
	return s->nlive &&
	       bsearch(&set_id, s->live_sets, s->nlive, sizeof(*s->live_sets), u32_cmp);
}

/* Delete the slots of sets no adopted frontend names: an agent died before reaping them, or
 * while writing a set it never switched to. */
static int collect_slots(struct sync *s, uint64_t *gc)
{
	const struct dp_map_ops *ops = s->maps.ops;
	struct bpfsvc_slot_key sk, *sprev = NULL, *dead = NULL, *p;
	size_t ndead = 0, capdead = 0;

	/* Collect first: deleting while walking restarts the walk from the start. */
	while (!ops->slot_next(s->maps.ctx, sprev, &sk)) {
		sprev = &sk;
		if (sync_set_live(s, sk.set_id))
			continue;
		p = array_grow(dead, sizeof(*p), &capdead, ndead + 1, 256);
		if (!p) {
			free(dead);
			return -ENOMEM;
		}
		dead = p;
		dead[ndead++] = sk;
	}
	for (size_t i = 0; i < ndead; i++)
		if (!ops->slot_delete(s->maps.ctx, &dead[i]))
			(*gc)++;
	free(dead);
	return 0;
}

int sync_adopt(struct sync *s, struct sync_result *res, uint64_t *gc)
{
	const struct dp_map_ops *ops = s->maps.ops;
	void *ctx = s->maps.ctx;
	struct bpfsvc_backend *be = NULL;
	size_t cap_be = 0;
	struct bpfsvc_fe_key k, *prev = NULL;
	struct bpfsvc_slot_key sk;
	struct sync_result local;
	uint32_t id;
	int err;

	*gc = 0;
	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	for (id = 0; id < s->max_svc; id++) {
		struct bpfsvc_svc_info info;

		if (!ops->svc_lookup(ctx, id, &info) && info.in_use) {
			err = adopt_svc(s, id, &info);
			if (err)
				goto cleanup;
		}
	}
	while (!ops->fe_next(ctx, prev, &k)) {
		struct bpfsvc_fe_val v;
		uint32_t n = 0;
		bool dirty = false;

		prev = &k;
		if (ops->fe_lookup(ctx, &k, &v))
			continue;
		/* A set cannot hold more backends than the slot map has room for. */
		if (v.count > s->maps.max_slots) {
			v.count = 0;
			dirty = true;
		}
		if (v.count > cap_be) {
			struct bpfsvc_backend *p = array_grow(be, sizeof(*be), &cap_be, v.count, 64);

			if (!p) {
				err = -ENOMEM;
				goto cleanup;
			}
			be = p;
		}
		for (sk.set_id = v.set_id, sk.idx = 0; sk.idx < v.count; sk.idx++) {
			if (ops->slot_lookup(ctx, &sk, &be[n]))
				dirty = true; /* a hole: rewrite the set */
			else
				n++;
		}
		err = adopt_fe(s, &k, &v, be, n, dirty);
		if (err)
			goto cleanup;
	}
	err = adopt_done(s, res);
	if (err)
		goto cleanup;
	err = collect_slots(s, gc);
cleanup:
	free(be);
	return err;
}
