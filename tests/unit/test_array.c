// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Unit test for array_grow (user/array.c): doubling from a minimum, no move when there is
 * room, the array left valid on overflow. */
#include "array.h"

#include <stdint.h>
#include <stdlib.h>

#include "check.h"

int main(void)
{
	size_t cap = 0;
	int *v = NULL, *p;

	v = array_grow(v, sizeof(*v), &cap, 1, 8);
	check(v && cap == 8, "first growth: the minimum (%zu)", cap);
	v[7] = 42;
	p = array_grow(v, sizeof(*v), &cap, 8, 8);
	check(p == v && cap == 8, "room enough: same array, same capacity");
	v = array_grow(v, sizeof(*v), &cap, 9, 8);
	check(v && cap == 16 && v[7] == 42, "one more: doubled, contents kept (%zu)", cap);
	v = array_grow(v, sizeof(*v), &cap, 100, 8);
	check(v && cap == 128, "far more: doubled until it fits (%zu)", cap);
	p = array_grow(v, sizeof(*v), &cap, SIZE_MAX / 2, 8);
	check(!p && cap == 128 && v[7] == 42, "overflow: NULL, array and capacity untouched");
	free(v);
	return check_summary();
}
