/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef BPFSVC_FILEIO_H
#define BPFSVC_FILEIO_H

#include <stddef.h>

/* Nothing we read whole legitimately comes near this (a 100k-service List is ~100 MB). */
#define FILEIO_MAX_BYTES (1UL << 30)

/* Read a whole file into *out (NUL-terminated, *len bytes without the NUL). Returns 0 or a
 * negative errno (-ENOENT, -EIO, -ENOMEM, -EFBIG past FILEIO_MAX_BYTES, ...). */
int read_whole_file(const char *path, char **out, size_t *len);

/* Read a whole file into buf (cap bytes, NUL-terminated), never anywhere else: for secrets,
 * which the caller wipes. -EFBIG if it does not fit. */
int read_file_into(const char *path, char *buf, size_t cap, size_t *len);

#endif
