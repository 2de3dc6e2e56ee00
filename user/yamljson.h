/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * YAML -> jansson conversion for Kubernetes manifests.
 *
 * Scalars are resolved with the YAML 1.2 core schema, which is what manifest
 * authors expect from Kubernetes: `yes`, `on`, `10.96.0.1` and `fd00::1` stay
 * strings, `80` and `0x1F` are integers, `~`/`null`/empty are null.
 *
 * Deviations from a plain YAML 1.2 reader, chosen to match what
 * sigs.k8s.io/yaml effectively produces:
 *  - Mapping keys are always JSON strings holding the key's source text
 *    (`80: x` gives key "80", `~: x` gives key "~"); collection keys are an
 *    error.
 *  - `.inf`, `.nan` and floats that overflow a double are errors, because
 *    JSON has no representation for them.
 *  - Integers outside the json_int_t range are errors rather than strings.
 *  - Merge keys (`<<: *base`, `<<: [*a, *b]`) are honoured; explicit keys
 *    win over merged ones, and earlier merge sources win over later ones.
 *
 * Aliases share the anchored node by reference count instead of copying it,
 * so the result may contain the same json_t in several places: treat it as
 * read-only or json_deep_copy() it before mutating. Alias expansion is
 * capped so that "billion laughs" input cannot make tree walks explode.
 */
#ifndef BPFSVC_YAMLJSON_H
#define BPFSVC_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

/* Collections nested deeper than this are rejected (the builder recurses). */
#define YAMLJSON_MAX_DEPTH 512

/*
 * Parse a YAML stream into a jansson tree. One document gives that document's
 * tree; several documents (--- separated) give
 * {"kind":"List","apiVersion":"v1","items":[doc, doc, ...]}. Empty documents
 * (nothing but comments/whitespace between separators) are skipped; a stream
 * with no non-empty document, including empty input, yields json null and
 * returns 0.
 *
 * On success returns 0 and stores a new reference in *out (caller
 * json_decref()s it). On failure returns a negative errno (-EINVAL for bad
 * YAML or arguments, -ENOMEM), sets *out to NULL and writes a NUL-terminated
 * message into err, e.g. "line 12 column 3: mapping values are not allowed
 * here". err may be NULL or errlen 0. buf need not be NUL-terminated.
 */
int yamljson_parse(const char *buf, size_t len, json_t **out, char *err, size_t errlen);

#endif /* BPFSVC_YAMLJSON_H */
