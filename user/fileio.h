/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef BPFSVC_FILEIO_H
#define BPFSVC_FILEIO_H

#include <stddef.h>

/* Read a whole file into *out (NUL-terminated, *len bytes without the NUL). Returns 0 or a
 * negative errno (-ENOENT, -EIO, -ENOMEM, ...). */
int read_whole_file(const char *path, char **out, size_t *len);

#endif
