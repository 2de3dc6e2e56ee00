/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by the libFuzzer targets: a property violated is a crash, like a sanitizer report. */
#ifndef BPFSVC_FUZZ_H
#define BPFSVC_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(cond)                                                                  \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, \
				#cond);                                                     \
			abort();                                                            \
		}                                                                           \
	} while (0)

/* A failed call must say why: err holds a non-empty, NUL-terminated message. */
#define FUZZ_ASSERT_ERR(err) FUZZ_ASSERT(memchr((err), 0, sizeof(err)) && (err)[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
