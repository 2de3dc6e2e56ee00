/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The unit tests' failing allocator: installed with json_set_alloc_funcs(failing_malloc,
 * free), the allocs_left-th allocation from then on fails (< 0: none does). */
#ifndef BPFSVC_TEST_FAIL_ALLOC_H
#define BPFSVC_TEST_FAIL_ALLOC_H

#include <stdlib.h>

static long allocs_left = -1;

static void *failing_malloc(size_t n)
{
	if (allocs_left == 0)
		return NULL;
	if (allocs_left > 0)
		allocs_left--;
	return malloc(n);
}

#endif
