// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Scalar resolution for the YAML reader: the JSON value a scalar's text and tag stand for under
 * the YAML 1.2 core schema, and the scalars JSON cannot carry (see yamljson.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strtod_l: float parsing must not depend on the process locale */
#endif
#include "yamljson_scalar.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(json_int_t) == sizeof(int64_t), "integer range checks assume 64-bit json_int_t");

static int __attribute__((format(printf, 3, 4))) msg(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_null(const char *s, size_t n)
{
	return n == 0 || eq(s, n, "~") || eq(s, n, "null") || eq(s, n, "Null") || eq(s, n, "NULL");
}

static bool match_bool(const char *s, size_t n, bool *v)
{
	if (eq(s, n, "true") || eq(s, n, "True") || eq(s, n, "TRUE")) {
		*v = true;
		return true;
	}
	if (eq(s, n, "false") || eq(s, n, "False") || eq(s, n, "FALSE")) {
		*v = false;
		return true;
	}
	return false;
}

static int digit_value(char ch)
{
	if (is_digit(ch))
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Core-schema integers: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+. Hand-rolled because strtoll
 * also accepts whitespace, "0X", signed hex and leading-zero octal, none of which are integers
 * here. -ERANGE means "is an integer but does not fit", so the caller can report it rather than
 * silently turning a typo'd port into a string.
 */
static int parse_int(const char *s, size_t n, json_int_t *v)
{
	uint64_t mag = 0, limit = INT64_MAX;
	bool neg = false, overflow = false;
	unsigned int base = 10;
	size_t i = 0;

	if (n > 2 && s[0] == '0' && s[1] == 'x') {
		base = 16;
		i = 2;
	} else if (n > 2 && s[0] == '0' && s[1] == 'o') {
		base = 8;
		i = 2;
	} else if (n > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return -EINVAL;
	if (neg)
		limit = (uint64_t)INT64_MAX + 1;
	for (; i < n; i++) {
		int d = digit_value(s[i]);

		if (d < 0 || (unsigned int)d >= base)
			return -EINVAL;
		/* keep scanning after overflow: a later non-digit makes it a string, not an error */
		if (overflow || mag > (limit - (unsigned int)d) / base)
			overflow = true;
		else
			mag = mag * base + (unsigned int)d;
	}
	if (overflow)
		return -ERANGE;
	if (neg)
		*v = mag == limit ? INT64_MIN : -(json_int_t)mag;
	else
		*v = (json_int_t)mag;
	return 0;
}

/*
 * Core-schema floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? plus .inf/.nan.
 * -ERANGE: a float JSON cannot carry (infinities, NaN, overflow).
 */
static int parse_float(locale_t *c_locale, const char *s, size_t n, double *v)
{
	size_t i = 0, int_digits = 0, frac_digits = 0, exp_digits = 0;

	if (eq(s, n, ".nan") || eq(s, n, ".NaN") || eq(s, n, ".NAN"))
		return -ERANGE;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (eq(s + i, n - i, ".inf") || eq(s + i, n - i, ".Inf") || eq(s + i, n - i, ".INF"))
		return -ERANGE;
	for (; i < n && is_digit(s[i]); i++)
		int_digits++;
	if (i < n && s[i] == '.')
		for (i++; i < n && is_digit(s[i]); i++)
			frac_digits++;
	if (int_digits + frac_digits == 0)
		return -EINVAL;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		for (; i < n && is_digit(s[i]); i++)
			exp_digits++;
		if (!exp_digits)
			return -EINVAL;
	}
	if (i != n)
		return -EINVAL;

	if (!*c_locale) {
		*c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
		if (!*c_locale)
			return -ENOMEM;
	}
	/* libyaml NUL-terminates scalar values and the grammar above consumed all n bytes */
	*v = strtod_l(s, NULL, *c_locale);
	if (!isfinite(*v))
		return -ERANGE;
	return 0;
}

enum want { WANT_ANY, WANT_STR, WANT_NULL, WANT_BOOL, WANT_INT, WANT_FLOAT };

static enum want scalar_want(const yaml_event_t *ev)
{
	const char *tag = (const char *)ev->data.scalar.tag;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

	if (!tag)
		return plain ? WANT_ANY : WANT_STR;
	/* "!" is the non-specific tag: the spec says such a scalar is a string */
	if (!strcmp(tag, "!") || !strcmp(tag, YAML_STR_TAG))
		return WANT_STR;
	if (!strcmp(tag, YAML_NULL_TAG))
		return WANT_NULL;
	if (!strcmp(tag, YAML_BOOL_TAG))
		return WANT_BOOL;
	if (!strcmp(tag, YAML_INT_TAG))
		return WANT_INT;
	if (!strcmp(tag, YAML_FLOAT_TAG))
		return WANT_FLOAT;
	return plain ? WANT_ANY : WANT_STR;
}

static const char *want_name(enum want w)
{
	switch (w) {
	case WANT_NULL:
		return "!!null";
	case WANT_BOOL:
		return "!!bool";
	case WANT_INT:
		return "!!int";
	case WANT_FLOAT:
		return "!!float";
	default:
		return "scalar";
	}
}

int yamljson_scalar(const yaml_event_t *ev, locale_t *c_locale, json_t **out, char *why,
		    size_t whylen)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	int shown = n > ERR_SCALAR_MAX ? ERR_SCALAR_MAX : (int)n;
	enum want want = scalar_want(ev);
	json_int_t iv;
	double dv;
	bool bv;
	int rc;

	*out = NULL;
	/* "\0" in a double-quoted scalar: C strings downstream would see "web" in "web\0evil" */
	if (memchr(s, '\0', n))
		return msg(why, whylen, "NUL character in a scalar");
	if (want == WANT_STR)
		goto string;
	if ((want == WANT_ANY || want == WANT_NULL) && is_null(s, n)) {
		*out = json_null();
		return 0;
	}
	if ((want == WANT_ANY || want == WANT_BOOL) && match_bool(s, n, &bv)) {
		*out = json_boolean(bv);
		return 0;
	}
	if (want == WANT_ANY || want == WANT_INT || want == WANT_FLOAT) {
		rc = parse_int(s, n, &iv);
		if (rc == 0) {
			*out = want == WANT_FLOAT ? json_real((double)iv) : json_integer(iv);
			return *out ? 0 : -ENOMEM;
		}
		/* a long digit string is still a perfectly good !!float */
		if (rc == -ERANGE && want != WANT_FLOAT)
			return msg(why, whylen, "integer %.*s%s is out of range", shown, s,
				   (size_t)shown < n ? "..." : "");
	}
	if (want == WANT_ANY || want == WANT_FLOAT) {
		rc = parse_float(c_locale, s, n, &dv);
		if (rc == 0) {
			*out = json_real(dv);
			return *out ? 0 : -ENOMEM;
		}
		if (rc == -ENOMEM)
			return rc;
		if (rc == -ERANGE)
			return msg(why, whylen, "float %.*s%s cannot be represented in JSON", shown,
				   s, (size_t)shown < n ? "..." : "");
	}
	if (want != WANT_ANY)
		return msg(why, whylen, "cannot parse \"%.*s%s\" as %s", shown, s,
			   (size_t)shown < n ? "..." : "", want_name(want));
string:
	*out = json_stringn(s, n);
	/* libyaml only hands out valid UTF-8, so allocation is the only way this fails */
	return *out ? 0 : -ENOMEM;
}
