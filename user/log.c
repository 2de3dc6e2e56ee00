// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Values in log lines come from outside (object names, addresses, API errors, file contents),
 * so a value must never be able to end the line or pose as another key. The format string is
 * ours and printed as written; every %s argument is escaped on its way out: inside a quoted
 * value ("%s" in the format) quotes and backslashes are escaped, outside one a value that would
 * not read back as a single token is quoted; control bytes, DEL and bytes that are not UTF-8
 * are written as \n, \t, \xNN. Other conversions (numbers) cannot carry such bytes.
 */
#include <printf.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

enum log_level log_max_level = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* One value is cut here; a log line is a summary, not a dump. */
#define LOG_VALUE_MAX 4096

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF, and C1 controls (terminal escapes) */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
		return 0;
	return len;
}

/* Would s read back as one unquoted logfmt token? */
static bool plain_token(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= ' ' || ch == '=' || ch == '"' || ch == '\\' || ch >= 0x7f)
			return false;
	}
	return true;
}

void log_escape(FILE *f, const char *s, size_t n, bool quoted)
{
	const unsigned char *p = (const unsigned char *)s;
	bool add_quotes = !quoted && !plain_token(s, n);

	if (add_quotes)
		fputc('"', f);
	for (size_t i = 0; i < n;) {
		size_t len = utf8_len(p + i, n - i);

		if (len > 1) {
			fwrite(p + i, 1, len, f);
			i += len;
			continue;
		}
		switch (p[i]) {
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '"':
		case '\\':
			fputc('\\', f);
			fputc(p[i], f);
			break;
		default:
			if (!len || p[i] < 0x20 || p[i] == 0x7f)
				fprintf(f, "\\x%02x", p[i]);
			else
				fputc(p[i], f);
		}
		i++;
	}
	if (add_quotes)
		fputc('"', f);
}

/* Format one conversion (spec, e.g. "%-5.*s") with its arguments taken from ap. */
static void put_conversion(FILE *f, const char *spec, bool quoted, va_list *ap)
{
	char tmp[LOG_VALUE_MAX];
	int types[4], st[2] = { 0, 0 }, k = 0, v;
	size_t nargs = parse_printf_format(spec, 4, types);

	if (nargs == 0 || nargs > 3) {
		fputs(spec, f);
		return;
	}
	for (size_t i = 0; i + 1 < nargs; i++)
		st[k++] = va_arg(*ap, int); /* '*' width or precision */
#define EMIT(val)                                                                          \
	(k == 0 ? snprintf(tmp, sizeof(tmp), spec, val)                                    \
	 : k == 1 ? snprintf(tmp, sizeof(tmp), spec, st[0], val)                           \
		  : snprintf(tmp, sizeof(tmp), spec, st[0], st[1], val))
	switch (types[nargs - 1] & ~PA_FLAG_MASK) {
	case PA_STRING: {
		const char *s = va_arg(*ap, const char *);

		v = EMIT(s ? s : "(null)");
		if (v < 0)
			return;
		log_escape(f, tmp, (size_t)v < sizeof(tmp) ? (size_t)v : sizeof(tmp) - 1, quoted);
		return;
	}
	case PA_DOUBLE:
		if (types[nargs - 1] & PA_FLAG_LONG_DOUBLE)
			v = EMIT(va_arg(*ap, long double));
		else
			v = EMIT(va_arg(*ap, double));
		break;
	case PA_POINTER:
		v = EMIT(va_arg(*ap, void *));
		break;
	default: /* PA_INT, PA_CHAR and their size flags */
		if (types[nargs - 1] & PA_FLAG_LONG_LONG)
			v = EMIT(va_arg(*ap, long long));
		else if (types[nargs - 1] & PA_FLAG_LONG)
			v = EMIT(va_arg(*ap, long));
		else
			v = EMIT(va_arg(*ap, int));
	}
#undef EMIT
	if (v > 0)
		log_escape(f, tmp, (size_t)v < sizeof(tmp) ? (size_t)v : sizeof(tmp) - 1, true);
}

/* Print fmt with every conversion's output escaped (see the top of this file). */
static void put_kv(FILE *f, const char *fmt, va_list *ap)
{
	const char *p = fmt;

	while (*p) {
		const char *pct = strchr(p, '%'), *end;
		char spec[32];
		bool quoted;

		if (!pct) {
			fputs(p, f);
			return;
		}
		fwrite(p, 1, (size_t)(pct - p), f);
		if (pct[1] == '%') {
			fputc('%', f);
			p = pct + 2;
			continue;
		}
		end = pct + 1 + strcspn(pct + 1, "diouxXeEfFgGaAcsp");
		if (!*end || (size_t)(end - pct) + 2 > sizeof(spec)) {
			fputs(pct, f); /* not a conversion we can format: show the format */
			return;
		}
		memcpy(spec, pct, (size_t)(end - pct) + 1);
		spec[end - pct + 1] = '\0';
		quoted = pct > fmt && pct[-1] == '"';
		put_conversion(f, spec, quoted, ap);
		p = end + 1;
	}
}

void log_vkv(enum log_level lvl, const char *msg, const char *kvfmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	char when[32];
	va_list aq;

	if (lvl > log_max_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One write per part is fine: lines stay whole under flockfile, and only this thread
	 * logs. */
	flockfile(stderr);
	fprintf(stderr, "time=%s.%03ldZ level=%s msg=\"", when, ts.tv_nsec / 1000000,
		level_names[lvl]);
	log_escape(stderr, msg, strlen(msg), true);
	fputc('"', stderr);
	if (kvfmt && *kvfmt) {
		fputc(' ', stderr);
		va_copy(aq, ap);
		put_kv(stderr, kvfmt, &aq);
		va_end(aq);
	}
	fputc('\n', stderr);
	funlockfile(stderr);
}

void log_kv(enum log_level lvl, const char *msg, const char *kvfmt, ...)
{
	va_list ap;

	va_start(ap, kvfmt);
	log_vkv(lvl, msg, kvfmt, ap);
	va_end(ap);
}
