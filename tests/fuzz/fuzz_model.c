// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The model: bytes -> source_parse() -> model_build() -> frontends, checking the promises of
 * model.h (sorted by key, backends sorted without duplicates, a VIP:port holder keeps it) and
 * freeing everything. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>

#include "fuzz.h"
#include "model.h"
#include "source.h"

static void warn_cb(void *arg, const char *kind, const char *ns, const char *name,
		    const char *why)
{
	unsigned *n = arg;

	FUZZ_ASSERT(kind && ns && name && why);
	/* Touch every byte, so that a string not NUL-terminated is an ASan report here. */
	FUZZ_ASSERT(strlen(kind) + strlen(ns) + strlen(name) + strlen(why) < SIZE_MAX);
	FUZZ_ASSERT(why[0]);
	(*n)++;
}

static void check_state(const struct model_state *st)
{
	FUZZ_ASSERT(st->n <= st->cap);
	for (size_t i = 0; i < st->n; i++) {
		const struct model_fe *fe = &st->fe[i];

		if (i)
			FUZZ_ASSERT(memcmp(&st->fe[i - 1].key, &fe->key, sizeof(fe->key)) < 0);
		FUZZ_ASSERT(memchr(fe->svc.ns, 0, sizeof(fe->svc.ns)));
		FUZZ_ASSERT(memchr(fe->svc.name, 0, sizeof(fe->svc.name)));
		FUZZ_ASSERT(memchr(fe->svc.port_name, 0, sizeof(fe->svc.port_name)));
		FUZZ_ASSERT(fe->nbe == 0 || fe->be);
		for (uint32_t j = 1; j < fe->nbe; j++)
			FUZZ_ASSERT(memcmp(&fe->be[j - 1], &fe->be[j], sizeof(fe->be[j])) < 0);
	}
}

/* Who holds a VIP:port in the datapath. "prev": what an earlier build chose, so a rebuild must
 * change nothing. "other": the owner of another frontend of that build, so a holder that may
 * or may not claim the key moves winners around but never adds or drops a frontend. */
struct holders {
	const struct model_state *prev;
	bool other;
	char buf[BPFSVC_NS_LEN + BPFSVC_NAME_LEN + 2];
};

static const char *holder_cb(void *ctx, const struct bpfsvc_fe_key *key)
{
	struct holders *h = ctx;
	const struct model_state *st = h->prev;
	const struct model_fe *fe = NULL;
	size_t i;

	if (!st->n)
		return NULL;
	if (h->other) {
		uint32_t x = 2166136261u;

		for (i = 0; i < sizeof(*key); i++)
			x = (x ^ ((const uint8_t *)key)[i]) * 16777619u;
		if (x % 3 == 0)
			return NULL;
		fe = &st->fe[x % st->n];
	} else {
		for (i = 0; i < st->n && !fe; i++)
			if (!memcmp(&st->fe[i].key, key, sizeof(*key)))
				fe = &st->fe[i];
		if (!fe)
			return NULL;
	}
	snprintf(h->buf, sizeof(h->buf), "%s/%s", fe->svc.ns, fe->svc.name);
	return h->buf;
}

static bool same_fe(const struct model_fe *a, const struct model_fe *b, bool owner)
{
	return !memcmp(&a->key, &b->key, sizeof(a->key)) &&
	       (!owner || (!memcmp(&a->svc, &b->svc, sizeof(a->svc)) && a->flags == b->flags &&
			   a->nbe == b->nbe &&
			   (!a->nbe || !memcmp(a->be, b->be, a->nbe * sizeof(a->be[0])))));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The fixtures' endpoints live on node-a/b/c: node-a keeps internalTrafficPolicy Local
	 * meaningful. */
	struct model_opts opts = { .node_name = "node-a" };
	struct model_state st = {}, again = {};
	struct holders h = { .prev = &st };
	json_t *objects = NULL;
	unsigned warnings = 0, warnings2;
	char err[256];
	int ret;

	if (source_parse((const char *)data, size, &objects, err, sizeof(err)))
		return 0;
	ret = model_build(objects, &opts, warn_cb, &warnings, &st);
	FUZZ_ASSERT(ret == 0 || ret == -ENOMEM);
	if (ret)
		goto cleanup;
	check_state(&st);

	/* Rebuilt with the first result as the holder: the same state, the same warnings. */
	opts.holder = holder_cb;
	opts.holder_ctx = &h;
	for (int round = 0; round < 2; round++) {
		h.other = round;
		warnings2 = 0;
		ret = model_build(objects, &opts, warn_cb, &warnings2, &again);
		FUZZ_ASSERT(ret == 0 || ret == -ENOMEM);
		if (ret)
			goto cleanup;
		check_state(&again);
		FUZZ_ASSERT(again.n == st.n && warnings2 == warnings);
		for (size_t i = 0; i < st.n; i++)
			FUZZ_ASSERT(same_fe(&st.fe[i], &again.fe[i], !h.other));
		model_state_free(&again);
	}
cleanup:
	model_state_free(&again);
	model_state_free(&st);
	json_decref(objects);
	return 0;
}
