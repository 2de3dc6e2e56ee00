/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef BPFSVC_LIST_H
#define BPFSVC_LIST_H

#include <stdbool.h>
#include <stdio.h>

/* Print the services programmed under pin_path, ipvsadm -Ln style or as JSON. */
int list_print(const char *pin_path, bool json, FILE *out, char *err, size_t errlen);

#endif
