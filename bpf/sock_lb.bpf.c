// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level Service load balancing: at connect()/sendmsg() time a Service VIP:port is
 * rewritten to one backend, so established flows carry no per-packet NAT at all. The reverse
 * direction (UDP source addresses, getpeername()) is translated back to the VIP from a
 * per-socket memory: socket-local storage for connected sockets, bpfsvc_revnat (keyed by
 * socket cookie and backend) for unconnected UDP.
 *
 * These programs only read the service maps; the agent owns them (see include/bpfsvc_abi.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bpfsvc_abi.h"
#include "lib/addr.h"
#include "lib/lb.h"
#include "lib/maps.h"

/* Per-socket memory of the translation, for UDP replies and getpeername(). LRU: a socket
 * that is gone needs no explicit delete. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BPFSVC_DEF_MAX_REVNAT);
	__type(key, struct bpfsvc_revnat_key);
	__type(value, struct bpfsvc_revnat_val);
} bpfsvc_revnat SEC(".maps");

/* The translation of a connected socket (TCP, connected UDP), for getpeername() and replies:
 * socket-local storage, freed with the socket, so connect churn never evicts the UDP
 * entries of bpfsvc_revnat. Pinned like the rest: sockets keep their entry across agent
 * restarts. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct bpfsvc_sk_peer);
} bpfsvc_sk_peer SEC(".maps");

/*
 * Translate *addr:*port (a frontend?) to a backend in place, and remember the translation
 * for the reverse direction.
 * Returns 1 if translated, 0 if not a service (untouched), -ECONNREFUSED if the service has
 * no usable backend.
 */
static __always_inline int lb_pick(struct bpf_sock_addr *ctx, struct bpfsvc_addr *addr,
				   __be16 *port, bool connected)
{
	struct bpfsvc_fe_key key = {};
	struct bpfsvc_backend be;
	int ret;

	key.addr = *addr;
	key.port = *port;
	key.proto = (__u8)ctx->protocol;
	ret = lb_lookup(&key, &be);
	if (ret <= 0)
		return ret;

	if (connected) {
		/* One peer per connected socket: remember it on the socket itself. */
		struct bpfsvc_sk_peer *p = bpf_sk_storage_get(&bpfsvc_sk_peer, ctx->sk, 0,
							      BPF_SK_STORAGE_GET_F_CREATE);

		if (p) {
			p->backend = be.addr;
			p->backend_port = be.port;
			p->vip = key.addr;
			p->vip_port = key.port;
		}
	} else {
		/* An unconnected UDP socket may talk to many services: key by backend. */
		struct bpfsvc_revnat_key rk = {};
		struct bpfsvc_revnat_val rv = {};

		rk.cookie = bpf_get_socket_cookie(ctx);
		rk.addr = be.addr;
		rk.port = be.port;
		rv.addr = key.addr;
		rv.port = key.port;
		bpf_map_update_elem(&bpfsvc_revnat, &rk, &rv, BPF_ANY);
	}
	*addr = be.addr;
	*port = be.port;
	return 1;
}

/* Translate a backend address seen by the application back to the VIP it asked for. */
static __always_inline int lb_reverse(struct bpf_sock_addr *ctx, struct bpfsvc_addr *addr,
				      __be16 *port)
{
	struct bpfsvc_revnat_key rk = {};
	struct bpfsvc_revnat_val *rv;
	struct bpfsvc_sk_peer *p;

	p = bpf_sk_storage_get(&bpfsvc_sk_peer, ctx->sk, 0, 0);
	if (p && p->backend_port == *port && addr_eq(&p->backend, addr)) {
		*addr = p->vip;
		*port = p->vip_port;
		return 1;
	}
	rk.cookie = bpf_get_socket_cookie(ctx);
	rk.addr = *addr;
	rk.port = *port;
	rv = bpf_map_lookup_elem(&bpfsvc_revnat, &rk);
	if (!rv)
		return 0;
	*addr = rv->addr;
	*port = rv->port;
	return 1;
}

/*
 * The socket address of ctx as a struct bpfsvc_addr, and back: the one place each
 * direction is copied. Context fields are read and written one word at a time, each
 * spelled ctx->user_ip6[i]: copied through a pointer or a macro, clang may merge the words
 * or address them from "ctx + 8", and the verifier refuses both. An IPv4 result only fits
 * an IPv4 socket address (a v6 backend for a v4 VIP is left alone; the model never pairs
 * them).
 */
static __always_inline void ctx_addr(struct bpf_sock_addr *ctx, bool v6, struct bpfsvc_addr *a)
{
	__u32 *w = addr_words(a);

	if (v6) {
		w[0] = ctx->user_ip6[0];
		w[1] = ctx->user_ip6[1];
		w[2] = ctx->user_ip6[2];
		w[3] = ctx->user_ip6[3];
	} else {
		bpfsvc_addr_set_v4(a, ctx->user_ip4);
	}
}

static __always_inline void ctx_set_addr(struct bpf_sock_addr *ctx, bool v6,
					 struct bpfsvc_addr *a, __be16 port)
{
	const __u32 *w = addr_words(a);

	if (v6) {
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	} else {
		if (!bpfsvc_addr_is_v4(a))
			return;
		ctx->user_ip4 = bpfsvc_addr_v4(a);
	}
	ctx->user_port = port;
}

/* connect() and sendmsg(): VIP to backend. A v4-mapped destination of an AF_INET6 socket is
 * already in the key form of the IPv4 service. */
static __always_inline int fwd(struct bpf_sock_addr *ctx, bool v6, bool connected)
{
	struct bpfsvc_addr a;
	__be16 port = (__be16)ctx->user_port;
	int ret;

	ctx_addr(ctx, v6, &a);
	ret = lb_pick(ctx, &a, &port, connected);
	if (ret < 0) {
		bpf_set_retval(ret);
		return 0;
	}
	if (ret > 0)
		ctx_set_addr(ctx, v6, &a, port);
	return 1;
}

/* recvmsg() and getpeername(): backend back to VIP. */
static __always_inline int rev(struct bpf_sock_addr *ctx, bool v6)
{
	struct bpfsvc_addr a;
	__be16 port = (__be16)ctx->user_port;

	ctx_addr(ctx, v6, &a);
	if (lb_reverse(ctx, &a, &port) > 0)
		ctx_set_addr(ctx, v6, &a, port);
	return 1;
}

SEC("cgroup/connect4")
int bpfsvc_connect4(struct bpf_sock_addr *ctx)
{
	return fwd(ctx, false, true);
}

SEC("cgroup/connect6")
int bpfsvc_connect6(struct bpf_sock_addr *ctx)
{
	return fwd(ctx, true, true);
}

SEC("cgroup/sendmsg4")
int bpfsvc_sendmsg4(struct bpf_sock_addr *ctx)
{
	return fwd(ctx, false, false);
}

SEC("cgroup/sendmsg6")
int bpfsvc_sendmsg6(struct bpf_sock_addr *ctx)
{
	return fwd(ctx, true, false);
}

SEC("cgroup/recvmsg4")
int bpfsvc_recvmsg4(struct bpf_sock_addr *ctx)
{
	return rev(ctx, false);
}

SEC("cgroup/recvmsg6")
int bpfsvc_recvmsg6(struct bpf_sock_addr *ctx)
{
	return rev(ctx, true);
}

SEC("cgroup/getpeername4")
int bpfsvc_getpeername4(struct bpf_sock_addr *ctx)
{
	return rev(ctx, false);
}

SEC("cgroup/getpeername6")
int bpfsvc_getpeername6(struct bpf_sock_addr *ctx)
{
	return rev(ctx, true);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
