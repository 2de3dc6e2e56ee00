// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fileio.h"

int read_whole_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0;
	int ret = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t got;

		if (cap - n < 4096) {
			char *p = realloc(buf, cap + 65536);

			if (!p) {
				ret = -ENOMEM;
				goto cleanup;
			}
			buf = p;
			cap += 65536;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		ret = -EIO;
		goto cleanup;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	buf = NULL;
cleanup:
	free(buf);
	fclose(f);
	return ret;
}
