// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "sync.h"
#include "sync_internal.h"

int sync_init(struct sync *s, const struct dp_maps *maps, uint64_t grace_ns)
{
	memset(s, 0, sizeof(*s));
	s->maps = *maps;
	s->max_svc = maps->max_services;
	s->grace_ns = grace_ns;
	s->next_set_id = 1;
	s->svc = calloc(s->max_svc, sizeof(*s->svc));
	s->svc_index = json_object();
	if (!s->svc || !s->svc_index) {
		sync_fini(s);
		return -ENOMEM;
	}
	return 0;
}

/* Forget the failures of service ns/name, or all of them (ns NULL). */
static void fails_clear(struct sync *s, const char *ns, const char *name)
{
	size_t w = 0;

	for (size_t i = 0; i < s->nfails; i++) {
		struct sync_failure *f = &s->fails[i];

		if (!ns || (!strcmp(f->fe.svc.ns, ns) && !strcmp(f->fe.svc.name, name))) {
			free(f->fe.be);
			continue;
		}
		s->fails[w++] = *f;
	}
	s->nfails = w;
}

static int fails_push(struct sync *s, const struct model_fe *m, int err, enum sync_stage stage)
{
	struct sync_failure *f, *v;

	v = array_grow(s->fails, sizeof(*v), &s->capfails, s->nfails + 1, 16);
	if (!v)
		return -ENOMEM;
	s->fails = v;
	f = &s->fails[s->nfails];
	f->fe = *m;
	f->fe.be = NULL;
	if (m->nbe) {
		f->fe.be = malloc(m->nbe * sizeof(*m->be));
		if (!f->fe.be)
			return -ENOMEM;
		memcpy(f->fe.be, m->be, m->nbe * sizeof(*m->be));
	}
	f->err = err;
	f->stage = stage;
	f->remove = false;
	s->nfails++;
	return 0;
}

/* A frontend whose delete failed: still in the map, to be deleted by the retry. */
static int fails_push_remove(struct sync *s, const struct sync_fe *f, int err)
{
	struct model_fe m = { .key = f->key };
	int ret;

	if (f->val.svc_id < s->max_svc && s->svc[f->val.svc_id].info.in_use) {
		const struct bpfsvc_svc_info *i = &s->svc[f->val.svc_id].info;

		memcpy(m.svc.ns, i->ns, sizeof(m.svc.ns));
		memcpy(m.svc.name, i->name, sizeof(m.svc.name));
		memcpy(m.svc.port_name, i->port_name, sizeof(m.svc.port_name));
	}
	ret = fails_push(s, &m, err, SYNC_STAGE_FE);
	if (!ret)
		s->fails[s->nfails - 1].remove = true;
	return ret;
}

void sync_fini(struct sync *s)
{
	struct sync_fe *f, *tmp;
	struct sync_owner *o, *otmp;

	if (!s)
		return;
	HASH_ITER(hh, s->fe, f, tmp) {
		HASH_DEL(s->fe, f);
		free(f->be);
		free(f);
	}
	HASH_ITER(hh, s->owners, o, otmp) {
		HASH_DEL(s->owners, o);
		free(o->fes);
		free(o);
	}
	fails_clear(s, NULL, NULL);
	free(s->fails);
	free(s->svc);
	free(s->live_sets);
	free(s->pend);
	json_decref(s->svc_index);
	memset(s, 0, sizeof(*s));
}

void sync_svc_key(const struct bpfsvc_svc_info *i, char *buf, size_t len)
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
	sync_svc_key(&info, key, sizeof(key));
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
	err = s->maps.ops->svc_set(s->maps.ctx, *id, &info, true);
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

void sync_svc_release(struct sync *s, uint32_t id, struct sync_result *res)
{
	static const struct bpfsvc_svc_info none;
	char key[BPFSVC_NS_LEN + BPFSVC_NAME_LEN + BPFSVC_PORTNAME_LEN + 4];
	json_t *v;

	if (id >= s->max_svc || !s->svc[id].info.in_use || --s->svc[id].refs > 0)
		return;
	sync_svc_key(&s->svc[id].info, key, sizeof(key));
	/* Adopted maps may hold a stale duplicate of a live service: its key names the live id. */
	v = json_object_get(s->svc_index, key);
	if (v && json_integer_value(v) == (json_int_t)id)
		json_object_del(s->svc_index, key);
	/* A failed write leaves stale metadata that nothing references; the next adoption
	 * frees it, so only count it. */
	s->maps.ops->svc_set(s->maps.ctx, id, &none, false);
	res->writes++;
	memset(&s->svc[id], 0, sizeof(s->svc[id]));
}

static int pend_push(struct sync *s, uint32_t set_id, uint32_t count, uint64_t due)
{
	struct sync_pending *p;

	if (!count)
		return 0;
	p = array_grow(s->pend, sizeof(*p), &s->cappend, s->npend + 1, 64);
	if (!p)
		return -ENOMEM;
	s->pend = p;
	s->pend[s->npend++] = (struct sync_pending){ set_id, count, due };
	return 0;
}

static uint64_t slots_delete(struct sync *s, uint32_t set_id, uint32_t count)
{
	struct bpfsvc_slot_key k = { .set_id = set_id };

	for (k.idx = 0; k.idx < count; k.idx++)
		s->maps.ops->slot_delete(s->maps.ctx, &k);
	return count;
}

/* Write be[] as a fresh set; on failure nothing of it stays in the map. */
static int slots_write(struct sync *s, const struct bpfsvc_backend *be, uint32_t n,
		       uint32_t *set_id, struct sync_result *res)
{
	struct bpfsvc_slot_key k, *keys;
	uint32_t done = 0;
	int err = 0;

	*set_id = 0;
	if (!n)
		return 0;
	k.set_id = s->next_set_id++;
	if (!s->next_set_id)
		s->next_set_id = 1; /* 0 means "no set" */
	keys = s->maps.ops->slot_update_batch ? malloc(n * sizeof(*keys)) : NULL;
	if (keys) {
		for (uint32_t i = 0; i < n; i++)
			keys[i] = (struct bpfsvc_slot_key){ k.set_id, i };
		err = s->maps.ops->slot_update_batch(s->maps.ctx, keys, be, n, &done);
		free(keys);
		res->writes += done;
	} else {
		for (k.idx = 0; k.idx < n; k.idx++) {
			err = s->maps.ops->slot_update(s->maps.ctx, &k, &be[k.idx]);
			res->writes++;
			if (err)
				break;
		}
		done = k.idx;
	}
	if (err) {
		/* Nothing of a failed set stays: no frontend names it yet. */
		res->writes += slots_delete(s, k.set_id, done);
		return err;
	}
	*set_id = k.set_id;
	return 0;
}

static void owner_key(const struct bpfsvc_svc_info *i, char *buf, size_t len)
{
	model_key(buf, len, i->ns, i->name);
}

static struct sync_owner *owner_get(const struct sync *s, const char *key)
{
	struct sync_owner *o;

	HASH_FIND_STR(s->owners, key, o);
	return o;
}

/* Remember that f belongs to the service of its svc_id ("ns/name"). */
int sync_owner_link(struct sync *s, struct sync_fe *f)
{
	char key[SYNC_OWNER_LEN];
	struct sync_owner *o;
	struct sync_fe **v;

	if (f->val.svc_id >= s->max_svc || !s->svc[f->val.svc_id].info.in_use)
		return 0;
	owner_key(&s->svc[f->val.svc_id].info, key, sizeof(key));
	o = owner_get(s, key);
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			return -ENOMEM;
		snprintf(o->key, sizeof(o->key), "%s", key);
		HASH_ADD_STR(s->owners, key, o);
	}
	v = array_grow(o->fes, sizeof(*v), &o->cap, (size_t)o->n + 1, 4);
	if (!v)
		return -ENOMEM;
	o->fes = v;
	o->fes[o->n++] = f;
	f->owner = o;
	return 0;
}

static void owner_unlink(struct sync *s, struct sync_fe *f)
{
	struct sync_owner *o = f->owner;

	if (!o)
		return;
	for (uint32_t i = 0; i < o->n; i++) {
		if (o->fes[i] == f) {
			o->fes[i] = o->fes[--o->n];
			break;
		}
	}
	f->owner = NULL;
	if (!o->n) {
		HASH_DEL(s->owners, o);
		free(o->fes);
		free(o);
	}
}

static bool same_backends(const struct sync_fe *have, const struct model_fe *want)
{
	return have->val.count == want->nbe &&
	       (!want->nbe || !memcmp(have->be, want->be, want->nbe * sizeof(*want->be)));
}

static bool fe_unchanged(const struct sync *s, const struct sync_fe *have,
			 const struct model_fe *m)
{
	return !have->dirty && have->val.flags == m->flags && same_backends(have, m) &&
	       svc_is(s, have->val.svc_id, &m->svc);
}

/*
 * Program a frontend that is new (*fp == NULL) or changed (*fp, updated in place). On failure
 * the map still holds the old entry (or nothing) and so does the mirror. A late failure that
 * does not undo the switch (the old set's reap could not be queued) goes to *soft_err.
 */
static int fe_program(struct sync *s, struct sync_fe **fp, const struct model_fe *want,
		      uint64_t now_ns, struct sync_result *res, int *soft_err,
		      enum sync_stage *stage)
{
	struct sync_fe *have = *fp;
	struct bpfsvc_fe_val nv = {};
	struct bpfsvc_backend *nbe = NULL;
	bool same_svc = have && !have->dirty && svc_is(s, have->val.svc_id, &want->svc);
	bool same_be = have && !have->dirty && same_backends(have, want);
	struct sync_fe *nf = NULL;
	int err;

	*stage = SYNC_STAGE_MEM;
	if (!have) {
		nf = calloc(1, sizeof(*nf));
		if (!nf)
			return -ENOMEM;
		nf->key = want->key;
	}
	*stage = SYNC_STAGE_SVC;
	if (same_svc) {
		nv.svc_id = have->val.svc_id;
		s->svc[nv.svc_id].refs++;
	} else {
		err = svc_acquire(s, &want->svc, &nv.svc_id, res);
		if (err)
			goto fail_new;
	}
	nv.flags = want->flags;
	nv.count = want->nbe;
	*stage = SYNC_STAGE_SLOTS;
	if (same_be) {
		nv.set_id = have->val.set_id;
	} else {
		err = slots_write(s, want->be, want->nbe, &nv.set_id, res);
		if (err)
			goto fail_svc;
	}
	*stage = SYNC_STAGE_MEM;
	if (want->nbe) {
		nbe = malloc(want->nbe * sizeof(*nbe));
		if (!nbe) {
			err = -ENOMEM;
			goto fail_slots;
		}
		memcpy(nbe, want->be, want->nbe * sizeof(*nbe));
	}
	*stage = SYNC_STAGE_FE;
	err = s->maps.ops->fe_update(s->maps.ctx, &want->key, &nv);
	res->writes++;
	if (err)
		goto fail_mem;
	/* The switch is done. Readers may still hold the old set id: delete its slots later.
	 * On -ENOMEM only that reap is lost; the next adoption collects those slots. */
	if (have) {
		if (!same_be && pend_push(s, have->val.set_id, have->val.count, now_ns + s->grace_ns))
			*soft_err = -ENOMEM;
		owner_unlink(s, have);
		sync_svc_release(s, have->val.svc_id, res);
		free(have->be);
		nf = have;
	} else {
		HASH_ADD(hh, s->fe, key, sizeof(nf->key), nf);
		s->n++;
	}
	nf->val = nv;
	nf->be = nbe;
	nf->dirty = false;
	if (sync_owner_link(s, nf))
		*soft_err = -ENOMEM;
	*fp = nf;
	return 0;

fail_mem:
	free(nbe);
fail_slots:
	if (!same_be)
		res->writes += slots_delete(s, nv.set_id, nv.count);
fail_svc:
	sync_svc_release(s, nv.svc_id, res);
fail_new:
	free(nf);
	return err;
}

/* Delete a frontend from the map; on success it leaves the mirror too (f is freed). */
static int fe_remove(struct sync *s, struct sync_fe *f, uint64_t now_ns, struct sync_result *res)
{
	int err = s->maps.ops->fe_delete(s->maps.ctx, &f->key);

	res->writes++;
	if (err && err != -ENOENT)
		return err;
	sync_svc_release(s, f->val.svc_id, res);
	err = pend_push(s, f->val.set_id, f->val.count, now_ns + s->grace_ns);
	owner_unlink(s, f);
	HASH_DEL(s->fe, f);
	s->n--;
	free(f->be);
	free(f);
	/* On -ENOMEM the element is gone; only its reap is lost. */
	return err;
}

/* Remove (or count as failed) f; *err collects -ENOMEM. */
static void remove_one(struct sync *s, struct sync_fe *f, uint64_t now_ns,
		       struct sync_result *res, int *err)
{
	int r = fe_remove(s, f, now_ns, res);

	if (r == -ENOMEM) {
		*err = r;
		res->removed++;
	} else if (r) {
		/* Still in the map: keep mirroring it and retry the delete. */
		res->failed++;
		if (fails_push_remove(s, f, r))
			*err = -ENOMEM;
	} else {
		res->removed++;
	}
}

/* Add or update one wanted frontend (have: its mirror entry or NULL). */
static void program_one(struct sync *s, struct sync_fe *have, const struct model_fe *m,
			uint64_t now_ns, struct sync_result *res, int *err)
{
	struct sync_fe *f = have;
	enum sync_stage stage;
	int ret;

	if (have && fe_unchanged(s, have, m)) {
		res->unchanged++;
		return;
	}
	ret = fe_program(s, &f, m, now_ns, res, err, &stage);
	if (ret) {
		res->failed++;
		if (fails_push(s, m, ret, stage))
			*err = -ENOMEM;
	} else if (have)
		res->updated++;
	else
		res->added++;
}

/*
 * Start an apply generation: a frontend is wanted by this apply iff its mark equals s->gen.
 * New and adopted frontends carry mark 0, and a wrapped counter would meet old marks again,
 * so on wrap-around clear every mark and restart at 1.
 */
static void gen_next(struct sync *s)
{
	struct sync_fe *f, *tmp;

	if (++s->gen)
		return;
	HASH_ITER(hh, s->fe, f, tmp)
		f->mark = 0;
	s->gen = 1;
}

/* A new generation in which every frontend want names is marked: the unmarked are not wanted. */
static void mark_wanted(struct sync *s, const struct model_state *want)
{
	struct sync_fe *f;

	gen_next(s);
	for (size_t j = 0; j < want->n; j++) {
		HASH_FIND(hh, s->fe, &want->fe[j].key, sizeof(want->fe[j].key), f);
		if (f)
			f->mark = s->gen;
	}
}

int sync_apply(struct sync *s, const struct model_state *want, uint64_t now_ns,
	       struct sync_result *res)
{
	struct sync_fe *f, *tmp;
	int err = 0;

	memset(res, 0, sizeof(*res));
	fails_clear(s, NULL, NULL);
	/* Removals first: they free svc ids and map room the additions may need. */
	mark_wanted(s, want);
	HASH_ITER(hh, s->fe, f, tmp)
		if (f->mark != s->gen)
			remove_one(s, f, now_ns, res, &err);
	for (size_t j = 0; j < want->n; j++) {
		HASH_FIND(hh, s->fe, &want->fe[j].key, sizeof(want->fe[j].key), f);
		program_one(s, f, &want->fe[j], now_ns, res, &err);
	}
	return err;
}

int sync_apply_service(struct sync *s, const char *ns, const char *name,
		       const struct model_state *want, uint64_t now_ns, struct sync_result *res)
{
	char key[SYNC_OWNER_LEN];
	struct sync_owner *o;
	struct sync_fe *f;
	int err = 0;

	memset(res, 0, sizeof(*res));
	model_key(key, sizeof(key), ns, name);
	fails_clear(s, ns, name);
	mark_wanted(s, want);
	o = owner_get(s, key);
	if (o) {
		/* Collect first: removing unlinks from (and may free) the owner entry. */
		struct sync_fe **gone = malloc(o->n * sizeof(*gone));
		uint32_t k = 0;

		if (!gone)
			return -ENOMEM;
		for (uint32_t i = 0; i < o->n; i++)
			if (o->fes[i]->mark != s->gen)
				gone[k++] = o->fes[i];
		for (uint32_t i = 0; i < k; i++)
			remove_one(s, gone[i], now_ns, res, &err);
		free(gone);
	}
	for (size_t j = 0; j < want->n; j++) {
		const struct model_fe *m = &want->fe[j];

		HASH_FIND(hh, s->fe, &m->key, sizeof(m->key), f);
		if (f && f->owner && strcmp(f->owner->key, key)) {
			/* Another service holds this VIP:port; the next full sync decides. */
			res->conflicts++;
			continue;
		}
		program_one(s, f, m, now_ns, res, &err);
	}
	return err;
}

int sync_retry(struct sync *s, uint64_t now_ns, struct sync_result *res)
{
	struct sync_failure *todo = s->fails;
	size_t n = s->nfails;
	int err = 0;

	memset(res, 0, sizeof(*res));
	s->fails = NULL;
	s->nfails = s->capfails = 0;
	for (size_t i = 0; i < n; i++) {
		const struct model_fe *m = &todo[i].fe;
		char key[SYNC_OWNER_LEN];
		struct sync_fe *f;

		model_key(key, sizeof(key), m->svc.ns, m->svc.name);
		HASH_FIND(hh, s->fe, &m->key, sizeof(m->key), f);
		if (todo[i].remove) {
			/* gone meanwhile, or rewritten for another service: nothing to delete */
			if (f && (!f->owner || !strcmp(f->owner->key, key)))
				remove_one(s, f, now_ns, res, &err);
		} else if (f && f->owner && strcmp(f->owner->key, key)) {
			res->conflicts++;
		} else {
			program_one(s, f, m, now_ns, res, &err);
		}
		free(todo[i].fe.be);
	}
	free(todo);
	return err;
}

const char *sync_holder(const struct sync *s, const struct bpfsvc_fe_key *k)
{
	const struct sync_fe *f = sync_find(s, k);

	return f && f->owner ? f->owner->key : NULL;
}

const struct sync_fe *sync_find(const struct sync *s, const struct bpfsvc_fe_key *k)
{
	struct sync_fe *f;

	HASH_FIND(hh, s->fe, k, sizeof(*k), f);
	return f;
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
