/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Addresses in the ABI form: 16 bytes, IPv4 stored v4-mapped. */
#ifndef BPFSVC_ADDR_H
#define BPFSVC_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpfsvc_abi.h"

/* Room for "[ffff:...:ffff]:65535" and a NUL. */
#define ADDR_STR_LEN 56

/* Parse a numeric IPv4 or IPv6 literal. Returns 4 or 6 (the family), or -EINVAL. An IPv6
 * literal that is itself v4-mapped counts as 4: it names an IPv4 endpoint. */
int addr_parse(const char *s, struct bpfsvc_addr *out);
/* The v4-mapped test of the ABI (bpfsvc_abi.h), which the BPF programs share. */
static inline bool addr_is_v4(const struct bpfsvc_addr *a)
{
	return bpfsvc_addr_is_v4(a);
}
/* "10.0.0.1" or "fd00::1" */
const char *addr_fmt(const struct bpfsvc_addr *a, char *buf, size_t len);
/* "10.0.0.1:80" or "[fd00::1]:80"; port in host order */
const char *addr_port_fmt(const struct bpfsvc_addr *a, uint16_t port, char *buf, size_t len);
const char *proto_name(uint8_t proto);
/* "TCP"/"UDP"/"SCTP" (Kubernetes spelling, case-sensitive) -> IPPROTO_*, or -EINVAL */
int proto_parse(const char *s);

#endif
