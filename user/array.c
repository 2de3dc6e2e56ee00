// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdint.h>
#include <stdlib.h>

#include "array.h"

void *array_grow(void *v, size_t elem, size_t *cap, size_t need, size_t min)
{
	size_t n = *cap ? *cap : (min ? min : 1);

	if (need <= *cap && v)
		return v;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return NULL;
		n *= 2;
	}
	if (elem && n > SIZE_MAX / elem)
		return NULL;
	v = realloc(v, n * elem);
	if (v)
		*cap = n;
	return v;
}
