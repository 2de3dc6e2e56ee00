/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* sources: where Kubernetes objects come from. Everything downstream sees a JSON array of
 * objects and nothing of their origin. */
#ifndef BPFSVC_SOURCE_H
#define BPFSVC_SOURCE_H

#include <jansson.h>
#include <stddef.h>

/* Parse a JSON or YAML document (one object, a List, or a YAML stream of objects) into
 * *objects, a flat JSON array. Items of a typed list (ServiceList, EndpointSliceList) get
 * their kind filled in, as the API server omits it there. err names what was wrong. */
int source_parse(const char *buf, size_t len, json_t **objects, char *err, size_t errlen);

/* source_parse() on the contents of a file. */
int source_file_load(const char *path, json_t **objects, char *err, size_t errlen);

#endif
