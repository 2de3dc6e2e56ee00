/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef BPFSVC_ARRAY_H
#define BPFSVC_ARRAY_H

#include <stddef.h>

/*
 * Storage for a growing array with room for `need` elements of `elem` bytes: *cap doubles
 * (from `min`) until it fits. Returns the array, moved or not, or NULL (out of memory or
 * size overflow) with v and *cap untouched, so the caller's array stays valid.
 */
void *array_grow(void *v, size_t elem, size_t *cap, size_t need, size_t min);

#endif
