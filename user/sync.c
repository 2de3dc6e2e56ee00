// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync.h"

int sync_init(struct sync *s, const struct sync_ops *ops, void *ctx, uint32_t max_svc,
	      uint64_t grace_ns)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->ctx = ctx;
	s->max_svc = max_svc;
	s->grace_ns = grace_ns;
	s->next_set_id = 1;
	s->svc = calloc(max_svc, sizeof(*s->svc));
	s->svc_index = json_object();
	if (!s->svc || !s->svc_index) {
		sync_fini(s);
		return -ENOMEM;
	}
	return 0;
}

void sync_fini(struct sync *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++)
		free(s->fe[i].be);
	free(s->fe);
	free(s->svc);
	free(s->live_sets);
	free(s->pend);
	json_decref(s->svc_index);
	memset(s, 0, sizeof(*s));
}

static void svc_key(const struct bpfsvc_svc_info *i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s:%s", i->ns, i->name, i->port_name);
}

static void info_from_ref(struct bpfsvc_svc_info *info, const struct model_svc_ref *r)
{
	memset(info, 0, sizeof(*info));
	memcpy(info->ns, r->ns, sizeof(info->ns));
	memcpy(info->name, r->name, sizeof(info->name));
	memcpy(info->port_name, r->port_name, sizeof(info->port_name));
	info->in_use = 1;
}

static bool svc_is(const struct sync *s, uint32_t id, const struct model_svc_ref *r)
{
	const struct bpfsvc_svc_info *i;

	if (id >= s->max_svc || !s->svc[id].info.in_use)
		return false;
	i = &s->svc[id].info;
	return !strcmp(i->ns, r->ns) && !strcmp(i->name, r->name) &&
	       !strcmp(i->port_name, r->port_name);
}

/* svc_id for a service port, allocating (and writing its metadata) on first use. */
static int svc_acquire(struct sync *s, const struct model_svc_ref *r, uint32_t *id,
		       struct sync_result *res)
{
	struct bpfsvc_svc_info info;
	char key[BPFSVC_NS_LEN + BPFSVC_NAME_LEN + BPFSVC_PORTNAME_LEN + 4];
	json_t *v;
	uint32_t i;
	int err;

	info_from_ref(&info, r);
	svc_key(&info, key, sizeof(key));
	v = json_object_get(s->svc_index, key);
	if (v) {
		*id = (uint32_t)json_integer_value(v);
		s->svc[*id].refs++;
		return 0;
	}
	for (i = 0; i < s->max_svc; i++) {
		uint32_t c = (s->svc_hint + i) % s->max_svc;

		if (!s->svc[c].info.in_use) {
			*id = c;
			break;
		}
	}
	if (i == s->max_svc)
		return -ENOSPC;
	err = s->ops->svc_set(s->ctx, *id, &info, true);
	res->writes++;
	if (err)
		return err;
	if (json_object_set_new(s->svc_index, key, json_integer(*id)))
		return -ENOMEM;
	s->svc[*id].info = info;
	s->svc[*id].refs = 1;
	s->svc_hint = *id + 1;
	return 0;
}

static void svc_release(struct sync *s, uint32_t id, struct sync_result *res)
{
	static const struct bpfsvc_svc_info none;
	char key[BPFSVC_NS_LEN + BPFSVC_NAME_LEN + BPFSVC_PORTNAME_LEN + 4];

	json_t *v;

	if (id >= s->max_svc || !s->svc[id].info.in_use || --s->svc[id].refs > 0)
		return;
	svc_key(&s->svc[id].info, key, sizeof(key));
	/* Adopted maps may hold a stale duplicate of a live service: its key names the live id. */
	v = json_object_get(s->svc_index, key);
	if (v && json_integer_value(v) == (json_int_t)id)
		json_object_del(s->svc_index, key);
	/* A failed write leaves stale metadata that nothing references; the next adoption
	 * frees it, so only count it. */
	s->ops->svc_set(s->ctx, id, &none, false);
	res->writes++;
	memset(&s->svc[id], 0, sizeof(s->svc[id]));
}

static int pend_push(struct sync *s, uint32_t set_id, uint32_t count, uint64_t due)
{
	if (!count)
		return 0;
	if (s->npend == s->cappend) {
		size_t cap = s->cappend ? s->cappend * 2 : 64;
		struct sync_pending *p = realloc(s->pend, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->pend = p;
		s->cappend = cap;
	}
	s->pend[s->npend++] = (struct sync_pending){ set_id, count, due };
	return 0;
}

static uint64_t slots_delete(struct sync *s, uint32_t set_id, uint32_t count)
{
	struct bpfsvc_slot_key k = { .set_id = set_id };

	for (k.idx = 0; k.idx < count; k.idx++)
		s->ops->slot_delete(s->ctx, &k);
	return count;
}

/* Write be[] as a fresh set; on failure nothing of it stays in the map. */
static int slots_write(struct sync *s, const struct bpfsvc_backend *be, uint32_t n,
		       uint32_t *set_id, struct sync_result *res)
{
	struct bpfsvc_slot_key k;
	int err;

	*set_id = 0;
	if (!n)
		return 0;
	k.set_id = s->next_set_id++;
	if (!s->next_set_id)
		s->next_set_id = 1; /* 0 means "no set" */
	for (k.idx = 0; k.idx < n; k.idx++) {
		err = s->ops->slot_update(s->ctx, &k, &be[k.idx]);
		res->writes++;
		if (err) {
			res->writes += slots_delete(s, k.set_id, k.idx);
			return err;
		}
	}
	*set_id = k.set_id;
	return 0;
}

static int fe_cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct bpfsvc_fe_key));
}

static bool same_backends(const struct sync_fe *have, const struct model_fe *want)
{
	return have->val.count == want->nbe &&
	       (!want->nbe || !memcmp(have->be, want->be, want->nbe * sizeof(*want->be)));
}

/*
 * Program a frontend that is new (have == NULL) or changed. On success *out is the new
 * mirror entry; on failure the map still holds have (or nothing) and so does *out.
 */
static int fe_program(struct sync *s, const struct sync_fe *have, const struct model_fe *want,
		      uint64_t now_ns, struct sync_fe *out, struct sync_result *res, int *soft_err)
{
	struct sync_fe nf = { .key = want->key };
	bool same_svc = have && !have->dirty && svc_is(s, have->val.svc_id, &want->svc);
	bool same_be = have && !have->dirty && same_backends(have, want);
	int err;

	if (same_svc) {
		nf.val.svc_id = have->val.svc_id;
		s->svc[nf.val.svc_id].refs++;
	} else {
		err = svc_acquire(s, &want->svc, &nf.val.svc_id, res);
		if (err)
			return err;
	}
	nf.val.flags = want->flags;
	nf.val.count = want->nbe;
	if (same_be) {
		nf.val.set_id = have->val.set_id;
	} else {
		err = slots_write(s, want->be, want->nbe, &nf.val.set_id, res);
		if (err)
			goto fail_svc;
	}
	if (want->nbe) {
		nf.be = malloc(want->nbe * sizeof(*nf.be));
		if (!nf.be) {
			err = -ENOMEM;
			goto fail_slots;
		}
		memcpy(nf.be, want->be, want->nbe * sizeof(*nf.be));
	}
	err = s->ops->fe_update(s->ctx, &nf.key, &nf.val);
	res->writes++;
	if (err)
		goto fail_mem;
	/* Readers may still hold the old set id: delete its slots later. The switch is done
	 * either way: on -ENOMEM only the reap is lost and the next adoption collects those
	 * slots, so report it without failing the frontend. */
	if (have && !same_be &&
	    pend_push(s, have->val.set_id, have->val.count, now_ns + s->grace_ns))
		*soft_err = -ENOMEM;
	if (have)
		svc_release(s, have->val.svc_id, res);
	*out = nf;
	return 0;

fail_mem:
	free(nf.be);
fail_slots:
	if (!same_be)
		res->writes += slots_delete(s, nf.val.set_id, nf.val.count);
fail_svc:
	svc_release(s, nf.val.svc_id, res);
	return err;
}

static int fe_remove(struct sync *s, const struct sync_fe *have, uint64_t now_ns,
		     struct sync_result *res)
{
	int err = s->ops->fe_delete(s->ctx, &have->key);

	res->writes++;
	if (err && err != -ENOENT)
		return err;
	svc_release(s, have->val.svc_id, res);
	return pend_push(s, have->val.set_id, have->val.count, now_ns + s->grace_ns);
}

int sync_apply(struct sync *s, const struct model_state *want, uint64_t now_ns,
	       struct sync_result *res)
{
	struct sync_fe *nf;
	size_t i = 0, j = 0, w = 0;
	int err = 0;

	memset(res, 0, sizeof(*res));
	/* The new mirror can hold at most every old and every wanted frontend. */
	nf = malloc((s->n + want->n + 1) * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	while (i < s->n || j < want->n) {
		int c = i == s->n ? 1 : j == want->n ? -1 : fe_cmp_key(&s->fe[i].key, &want->fe[j].key);

		if (c < 0) {
			int r = fe_remove(s, &s->fe[i], now_ns, res);

			if (r && r != -ENOMEM) {
				/* Still in the map: keep mirroring it, retry next time. */
				nf[w++] = s->fe[i];
				res->failed++;
			} else {
				/* On -ENOMEM the element is gone; only its reap is lost and
				 * the next adoption collects those slots. */
				if (r)
					err = r;
				free(s->fe[i].be);
				res->removed++;
			}
			i++;
		} else if (c > 0) {
			if (fe_program(s, NULL, &want->fe[j], now_ns, &nf[w], res, &err))
				res->failed++;
			else {
				w++;
				res->added++;
			}
			j++;
		} else {
			const struct sync_fe *have = &s->fe[i];
			const struct model_fe *m = &want->fe[j];

			if (!have->dirty && have->val.flags == m->flags && same_backends(have, m) &&
			    svc_is(s, have->val.svc_id, &m->svc)) {
				nf[w++] = *have;
				res->unchanged++;
			} else if (fe_program(s, have, m, now_ns, &nf[w], res, &err)) {
				/* The map still holds the old entry: keep mirroring it. */
				nf[w++] = *have;
				res->failed++;
			} else {
				free(have->be);
				w++;
				res->updated++;
			}
			i++;
			j++;
		}
	}
	free(s->fe);
	s->fe = nf;
	s->n = w;
	s->cap = s->n + want->n + 1;
	return err;
}

uint64_t sync_reap(struct sync *s, uint64_t now_ns, bool all, uint64_t *next_due_ns)
{
	uint64_t deletes = 0, next = 0;
	size_t i, w = 0;

	for (i = 0; i < s->npend; i++) {
		struct sync_pending *p = &s->pend[i];

		if (all || p->due_ns <= now_ns) {
			deletes += slots_delete(s, p->set_id, p->count);
			continue;
		}
		if (!next || p->due_ns < next)
			next = p->due_ns;
		s->pend[w++] = *p;
	}
	s->npend = w;
	*next_due_ns = next;
	return deletes;
}

int sync_adopt_svc(struct sync *s, uint32_t id, const struct bpfsvc_svc_info *info)
{
	char key[BPFSVC_NS_LEN + BPFSVC_NAME_LEN + BPFSVC_PORTNAME_LEN + 4];

	if (id >= s->max_svc || !info->in_use)
		return 0;
	s->svc[id].info = *info;
	/* Never trust the map for termination. */
	s->svc[id].info.ns[BPFSVC_NS_LEN - 1] = 0;
	s->svc[id].info.name[BPFSVC_NAME_LEN - 1] = 0;
	s->svc[id].info.port_name[BPFSVC_PORTNAME_LEN - 1] = 0;
	svc_key(&s->svc[id].info, key, sizeof(key));
	return json_object_set_new(s->svc_index, key, json_integer(id)) ? -ENOMEM : 0;
}

int sync_adopt_fe(struct sync *s, const struct bpfsvc_fe_key *k, const struct bpfsvc_fe_val *v,
		  const struct bpfsvc_backend *be, uint32_t nbe, bool dirty)
{
	struct sync_fe *f;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct sync_fe *p = realloc(s->fe, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->fe = p;
		s->cap = cap;
	}
	f = &s->fe[s->n];
	memset(f, 0, sizeof(*f));
	f->key = *k;
	f->val = *v;
	f->dirty = dirty || nbe != v->count;
	/* A dirty set is rewritten and the old one reaped as idx 0..count-1: keep the map's
	 * count so slots after a hole are reaped too (be is zero-padded; it is never compared
	 * while dirty). */
	f->val.count = nbe > v->count ? nbe : v->count;
	if (f->val.count) {
		f->be = calloc(f->val.count, sizeof(*be));
		if (!f->be)
			return -ENOMEM;
		if (nbe)
			memcpy(f->be, be, nbe * sizeof(*be));
	}
	s->n++;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int sync_adopt_done(struct sync *s, struct sync_result *res)
{
	size_t i, nl = 0;
	uint32_t id;

	memset(res, 0, sizeof(*res));
	if (s->n)
		qsort(s->fe, s->n, sizeof(s->fe[0]), fe_cmp_key);
	free(s->live_sets);
	s->live_sets = malloc((s->n + 1) * sizeof(*s->live_sets));
	if (!s->live_sets)
		return -ENOMEM;
	for (i = 0; i < s->n; i++) {
		struct sync_fe *f = &s->fe[i];

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
			svc_release(s, id, res);
		}
	}
	/* A freed stale duplicate may have shadowed or removed the key of the id in use. */
	for (id = 0; id < s->max_svc; id++) {
		char key[BPFSVC_NS_LEN + BPFSVC_NAME_LEN + BPFSVC_PORTNAME_LEN + 4];

		if (!s->svc[id].info.in_use)
			continue;
		svc_key(&s->svc[id].info, key, sizeof(key));
		if (json_object_set_new(s->svc_index, key, json_integer(id)))
			return -ENOMEM;
	}
	return 0;
}

bool sync_set_live(const struct sync *s, uint32_t set_id)
{
	return s->nlive &&
	       bsearch(&set_id, s->live_sets, s->nlive, sizeof(*s->live_sets), u32_cmp);
}
