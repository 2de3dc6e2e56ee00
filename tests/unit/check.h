/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The unit tests' tiny harness: "ok - ..." / "not ok - ..." per check, and the closing
 * "N passed, N failed" line that tests/run.sh reads. */
#ifndef BPFSVC_TEST_CHECK_H
#define BPFSVC_TEST_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int passed, failed;

static void __attribute__((format(printf, 2, 3), unused)) check(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", cond ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (cond)
		passed++;
	else
		failed++;
}

/* Print the closing line; the exit status for main(). */
static int __attribute__((unused)) check_summary(void)
{
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif
