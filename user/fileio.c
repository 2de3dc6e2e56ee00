// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "fileio.h"

#define GROW_STEP 65536

/* The one read loop: into *buf (cap bytes), growing it up to max when grow is set. */
static int read_all(FILE *f, char **buf, size_t *cap, bool grow, size_t max, size_t *len)
{
	size_t n = 0;

	for (;;) {
		size_t got;

		if (*cap - n < 2) {
			char *p, c;

			if (!grow) {
				/* Full: fine only if the file ends here. */
				if (fread(&c, 1, 1, f) == 1)
					return -EFBIG;
				break;
			}
			if (*cap >= max + 1)
				return -EFBIG;
			p = realloc(*buf, *cap + GROW_STEP);
			if (!p)
				return -ENOMEM;
			*buf = p;
			*cap += GROW_STEP;
		}
		got = fread(*buf + n, 1, *cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f))
		return -EIO;
	if (n > max)
		return -EFBIG;
	(*buf)[n] = 0;
	*len = n;
	return 0;
}

int read_whole_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0;
	int ret;

	if (!f)
		return -errno;
	ret = read_all(f, &buf, &cap, true, FILEIO_MAX_BYTES, len);
	fclose(f);
	if (ret) {
		free(buf);
		return ret;
	}
	*out = buf;
	return 0;
}

int read_file_into(const char *path, char *buf, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "re");
	int ret;

	if (!f)
		return -errno;
	ret = read_all(f, &buf, &cap, false, cap - 1, len);
	fclose(f);
	return ret;
}
