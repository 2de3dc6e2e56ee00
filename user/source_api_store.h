/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The API source's stores: Services and EndpointSlices by "ns/name" (JSON objects), the index
 * of slices by the service they belong to, and the views built from them. Every function
 * either does all of its work or fails with -ENOMEM and leaves its output untouched: a
 * partial list of objects would read as "these services are gone".
 */
#ifndef BPFSVC_SOURCE_API_STORE_H
#define BPFSVC_SOURCE_API_STORE_H

#include <jansson.h>
#include <stddef.h>

#include "model.h" /* object keys (model_obj_key, MODEL_KEY_LEN) and the slice join */

/* Ready an object for a store: the kind (list items lack it), and only what the model reads. */
int api_obj_prepare(json_t *obj, const char *kind);
/* Add the items of one list page to listing ("ns/name" -> object); items without a name are
 * skipped. On failure listing holds part of the page: the caller drops the whole list. */
int api_list_add(json_t *listing, json_t *items, const char *kind);

/* The slice index by_svc: "ns/svc" -> { slice "ns/name" -> slice }. Adding or removing a
 * slice sets owner to the service it belongs to ("" if none, or if it was not indexed). */
int api_index_add(json_t *by_svc, json_t *slice, const char *key, char *owner, size_t len);
void api_index_del(json_t *by_svc, json_t *slice, const char *key, char *owner, size_t len);
/* A new index of every slice of store. */
int api_index_build(json_t *store, json_t **by_svc);

/* The slices of a service (a new array) and every object of both stores (a new array). */
int api_store_slices(json_t *by_svc, const char *svc_key, json_t **out);
int api_store_all(json_t *svcs, json_t *slices, json_t **out);

#endif
