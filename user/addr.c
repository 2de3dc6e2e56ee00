// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

int addr_parse(const char *s, struct bpfsvc_addr *out)
{
	struct in_addr a4;

	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		bpfsvc_addr_set_v4(out, a4.s_addr);
		return 4;
	}
	if (inet_pton(AF_INET6, s, out->a) == 1)
		return addr_is_v4(out) ? 4 : 6;
	return -EINVAL;
}

const char *addr_fmt(const struct bpfsvc_addr *a, char *buf, size_t len)
{
	if (addr_is_v4(a))
		inet_ntop(AF_INET, a->a + 12, buf, len);
	else
		inet_ntop(AF_INET6, a->a, buf, len);
	return buf;
}

const char *addr_port_fmt(const struct bpfsvc_addr *a, uint16_t port, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	addr_fmt(a, ip, sizeof(ip));
	snprintf(buf, len, addr_is_v4(a) ? "%s:%u" : "[%s]:%u", ip, port);
	return buf;
}

const char *proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	default:
		return "?";
	}
}

int proto_parse(const char *s)
{
	if (!strcmp(s, "TCP"))
		return IPPROTO_TCP;
	if (!strcmp(s, "UDP"))
		return IPPROTO_UDP;
	if (!strcmp(s, "SCTP"))
		return IPPROTO_SCTP;
	return -EINVAL;
}
