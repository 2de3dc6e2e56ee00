// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Unit test for user/fileio.c: whole-file reads, growing or into a fixed (secret) buffer. */
#include "fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "we");

	if (f) {
		fwrite(data, 1, len, f);
		fclose(f);
	}
}

int main(void)
{
	char dir[] = "/tmp/test_fileio.XXXXXX", path[64], small[8], *big, *out = NULL;
	size_t len = 0, bigsz = 200000;
	int ret;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/f", dir);

	write_file(path, "", 0);
	ret = read_whole_file(path, &out, &len);
	check(!ret && len == 0 && out && !out[0], "empty file: 0 bytes, NUL-terminated");
	free(out);

	big = malloc(bigsz);
	memset(big, 'x', bigsz);
	big[bigsz - 1] = 'y';
	write_file(path, big, bigsz);
	ret = read_whole_file(path, &out, &len);
	check(!ret && len == bigsz && !memcmp(out, big, bigsz) && !out[bigsz],
	      "a file larger than the growth step is read whole");
	free(out);
	free(big);

	write_file(path, "1234567", 7);
	ret = read_file_into(path, small, sizeof(small), &len);
	check(!ret && len == 7 && !strcmp(small, "1234567"), "read_file_into: exactly cap - 1 fits");
	write_file(path, "12345678", 8);
	ret = read_file_into(path, small, sizeof(small), &len);
	check(ret == -EFBIG, "read_file_into: one byte more is -EFBIG, not cut (%d)", ret);

	unlink(path);
	ret = read_whole_file(path, &out, &len);
	check(ret == -ENOENT, "missing file: -ENOENT (%d)", ret);
	ret = read_file_into(path, small, sizeof(small), &len);
	check(ret == -ENOENT, "read_file_into, missing file: -ENOENT (%d)", ret);
	rmdir(dir);
	return check_summary();
}
