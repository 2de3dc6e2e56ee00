// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Log lines carry values from outside (names, addresses, API errors): none of them may end the
 * line or pose as another key. Each case logs through log_kv into a temporary stderr and reads
 * the line back.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static char line[16384];

/* Everything after "msg=" of the one line log_kv wrote, or "" if it wrote other than one line. */
static const char *logged(void)
{
	long n;
	char *nl, *m;

	fflush(stderr);
	n = ftell(stderr);
	rewind(stderr);
	memset(line, 0, sizeof(line));
	if (n <= 0 || n >= (long)sizeof(line) || fread(line, 1, (size_t)n, stderr) != (size_t)n)
		line[0] = 0;
	rewind(stderr);
	if (ftruncate(fileno(stderr), 0))
		line[0] = 0;
	nl = strchr(line, '\n');
	if (!nl || nl[1] != 0)
		return "";
	*nl = 0;
	m = strstr(line, "msg=");
	return m ? m : "";
}

int main(void)
{
	FILE *saved = fdopen(dup(2), "w");

	if (!saved || !freopen("/tmp/bpfsvc-test-log.XXXXXX", "w+", stderr)) {
		printf("not ok - cannot redirect stderr\n1 passed, 1 failed\n");
		return 1;
	}
	unlink("/tmp/bpfsvc-test-log.XXXXXX");

	log_kv(LOG_INFO, "hello", "a=%d b=\"%s\" c=%s", 7, "x y", "plain");
	check(!strcmp(logged(), "msg=\"hello\" a=7 b=\"x y\" c=plain"), "plain values: %s", line);

	log_kv(LOG_WARN, "object skipped", "reason=\"bad clusterIP \\\"%s\\\"\"",
	       "10.0.0.1\ntime=now level=error msg=\"forged\"");
	check(!strcmp(logged(), "msg=\"object skipped\" reason=\"bad clusterIP \\\"10.0.0.1\\ntime=now "
				"level=error msg=\\\"forged\\\"\\\"\""),
	      "a newline and quotes in a quoted value stay inside it: %s", line);

	log_kv(LOG_WARN, "object skipped", "object=%s/%s", "default", "web level=error");
	check(!strcmp(logged(), "msg=\"object skipped\" object=default/\"web level=error\""),
	      "an unquoted value with a space is quoted, not a new key: %s", line);

	log_kv(LOG_INFO, "m", "v=%s e=%s", "a\\b\x01\x7f\xff\xc2\x9b\xe2\x82\xac", "");
	check(!strcmp(logged(), "msg=\"m\" v=\"a\\\\b\\x01\\x7f\\xff\\xc2\\x9b\xe2\x82\xac\" e=\"\""),
	      "backslash, controls, DEL, bad UTF-8 and C1 escaped, UTF-8 kept, empty quoted: %s",
	      line);

	log_kv(LOG_INFO, "m", "n=%zu l=%llu p=%.*s w=%-4s| pct=100%%", (size_t)3,
	       (unsigned long long)1 << 40, 3, "abcdef", "ab");
	check(!strcmp(logged(), "msg=\"m\" n=3 l=1099511627776 p=abc w=\"ab  \"| pct=100%"),
	      "sizes, precision, width and %%%% are formatted as printf does: %s", line);

	log_kv(LOG_INFO, "line\nbreak", NULL);
	check(!strcmp(logged(), "msg=\"line\\nbreak\""), "the message is escaped too: %s", line);

	{
		char *big = malloc(100000);

		memset(big, 'a', 99999);
		big[99999] = 0;
		size_t n;

		log_kv(LOG_INFO, "m", "v=%s", big);
		n = strlen(logged());
		check(n < 4200 && n > 4000, "a huge value is cut (%zu bytes after msg=)", n);
		free(big);
	}
	fclose(stderr);
	stderr = saved;
	return check_summary();
}
