// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

enum log_level log_max_level = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_kv(enum log_level lvl, const char *msg, const char *kvfmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char when[32];
	va_list ap;

	if (lvl > log_max_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per part is fine: stderr is unbuffered but lines stay whole under
	 * flockfile, and only this thread logs. */
	flockfile(stderr);
	fprintf(stderr, "time=%s.%03ldZ level=%s msg=\"%s\"", when, ts.tv_nsec / 1000000,
		level_names[lvl], msg);
	if (kvfmt && *kvfmt) {
		fputc(' ', stderr);
		va_start(ap, kvfmt);
		vfprintf(stderr, kvfmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
	funlockfile(stderr);
}
