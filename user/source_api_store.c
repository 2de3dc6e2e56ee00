// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>

#include "source_api_store.h"

/* Keep what the model reads: managedFields, annotations (last-applied copies of the whole
 * object) and status can be most of an object's size, times 100k services. */
static void slim(json_t *obj)
{
	json_t *md = json_object_get(obj, "metadata");

	json_object_del(md, "managedFields");
	json_object_del(md, "annotations");
	json_object_del(md, "ownerReferences");
	json_object_del(obj, "status");
}

int api_obj_prepare(json_t *obj, const char *kind)
{
	if (!json_object_get(obj, "kind") &&
	    json_object_set_new(obj, "kind", json_string(kind)))
		return -ENOMEM;
	slim(obj);
	return 0;
}

int api_list_add(json_t *listing, json_t *items, const char *kind)
{
	json_t *it;
	size_t i;

	json_array_foreach(items, i, it) {
		char key[MODEL_KEY_LEN];

		if (model_obj_key(it, key, sizeof(key)))
			continue;
		if (api_obj_prepare(it, kind) || json_object_set(listing, key, it))
			return -ENOMEM;
	}
	return 0;
}

void api_index_del(json_t *by_svc, json_t *slice, const char *key, char *owner, size_t len)
{
	json_t *set;

	model_slice_owner(slice, owner, len);
	set = owner[0] ? json_object_get(by_svc, owner) : NULL;
	if (!set) {
		owner[0] = 0;
		return;
	}
	json_object_del(set, key);
	if (!json_object_size(set))
		json_object_del(by_svc, owner);
}

int api_index_add(json_t *by_svc, json_t *slice, const char *key, char *owner, size_t len)
{
	json_t *set;

	model_slice_owner(slice, owner, len);
	if (!owner[0])
		return 0;
	set = json_object_get(by_svc, owner);
	if (!set) {
		set = json_object();
		if (!set || json_object_set_new(by_svc, owner, set))
			return -ENOMEM;
	}
	return json_object_set(set, key, slice) ? -ENOMEM : 0;
}

int api_index_build(json_t *store, json_t **by_svc)
{
	json_t *idx = json_object(), *slice;
	char owner[MODEL_KEY_LEN];
	const char *key;

	if (!idx)
		return -ENOMEM;
	json_object_foreach(store, key, slice) {
		if (api_index_add(idx, slice, key, owner, sizeof(owner))) {
			json_decref(idx);
			return -ENOMEM;
		}
	}
	*by_svc = idx;
	return 0;
}

/* Append the values of obj to arr. */
static int append_values(json_t *arr, json_t *obj)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
		if (json_array_append(arr, v))
			return -ENOMEM;
	return 0;
}

int api_store_slices(json_t *by_svc, const char *svc_key, json_t **out)
{
	json_t *arr = json_array();

	if (!arr || append_values(arr, json_object_get(by_svc, svc_key))) {
		json_decref(arr);
		return -ENOMEM;
	}
	*out = arr;
	return 0;
}

int api_store_all(json_t *svcs, json_t *slices, json_t **out)
{
	json_t *arr = json_array();

	if (!arr || append_values(arr, svcs) || append_values(arr, slices)) {
		json_decref(arr);
		return -ENOMEM;
	}
	*out = arr;
	return 0;
}
