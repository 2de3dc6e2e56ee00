/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address handling for BPF programs, on top of the v4-mapped helpers of bpfsvc_abi.h (which
 * user space shares). Every address is a struct bpfsvc_addr: 16 bytes, IPv4 v4-mapped.
 */
#ifndef BPFSVC_LIB_ADDR_H
#define BPFSVC_LIB_ADDR_H

#include "bpfsvc_abi.h"

/* The words of an address; BPF stack and map memory holding one is 4-byte aligned. */
static __always_inline __u32 *addr_words(struct bpfsvc_addr *a)
{
	return (__u32 *)a->a;
}

static __always_inline bool addr_eq(const struct bpfsvc_addr *a, const struct bpfsvc_addr *b)
{
	const __u32 *x = (const __u32 *)a->a, *y = (const __u32 *)b->a;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

#endif
