/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internal to the YAML reader (yamljson.c): what one scalar stands for. The rules are
 * yamljson.h's; this part sees only the scalar, never the stream.
 */
#ifndef BPFSVC_YAMLJSON_SCALAR_H
#define BPFSVC_YAMLJSON_SCALAR_H

#include <jansson.h>
#include <locale.h>
#include <stddef.h>
#include <yaml.h>

/* Keep error messages readable when the offending scalar is huge. */
#define ERR_SCALAR_MAX 64

/* Room for any complaint yamljson_scalar() writes (the scalar is cut at ERR_SCALAR_MAX). */
#define YAMLJSON_SCALAR_WHY_LEN 160

/*
 * The JSON value of a scalar event, resolved by its tag and the YAML 1.2 core schema. Returns 0
 * with a new reference in *out; -EINVAL with the reason in why (no position: the caller has the
 * event's mark); -ENOMEM. *c_locale is the C locale for float parsing, created on first use
 * and the caller's to freelocale().
 */
int yamljson_scalar(const yaml_event_t *ev, locale_t *c_locale, json_t **out, char *why,
		    size_t whylen);

#endif /* BPFSVC_YAMLJSON_SCALAR_H */
