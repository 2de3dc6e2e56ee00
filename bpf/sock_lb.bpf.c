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

#define ECONNREFUSED 111
#define ENOENT 2

/* How often the datapath re-reads a frontend whose backend set changed under it. */
#define BPFSVC_LOOKUP_TRIES 3

/* Service frontends. NO_PREALLOC: replaced elements are freed, not recycled in place, which
 * keeps a concurrent reader's copy of a value whole during the atomic switch. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFSVC_DEF_MAX_FRONTENDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bpfsvc_fe_key);
	__type(value, struct bpfsvc_fe_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpfsvc_fe SEC(".maps");

/* Backend slots of every backend set: (set_id, idx) -> backend. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFSVC_DEF_MAX_SLOTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bpfsvc_slot_key);
	__type(value, struct bpfsvc_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpfsvc_slots SEC(".maps");

/* Service metadata for user space (list, adoption); never read here, pinned with the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFSVC_DEF_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct bpfsvc_svc_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpfsvc_svcs SEC(".maps");

/* Per-socket memory of the translation, for UDP replies and getpeername(). LRU: a socket
 * that is gone needs no explicit delete. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BPFSVC_DEF_MAX_REVNAT);
	__type(key, struct bpfsvc_revnat_key);
	__type(value, struct bpfsvc_revnat_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpfsvc_revnat SEC(".maps");

/* The translation of a connected socket (TCP, connected UDP), for getpeername() and replies:
 * socket-local storage, freed with the socket, so connect churn never evicts the UDP
 * entries of bpfsvc_revnat. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct bpfsvc_sk_peer);
	__uint(pinning, LIBBPF_PIN_BY_NAME); /* sockets keep their entry across agent restarts */
} bpfsvc_sk_peer SEC(".maps");

/* Per-service counters; per-CPU so the hot path never contends on a cache line. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFSVC_DEF_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct bpfsvc_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpfsvc_stats SEC(".maps");

static __always_inline void addr_from_v4(struct bpfsvc_addr *a, __u32 ip4)
{
	__u32 *w = (__u32 *)a->a;

	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0xffff);
	w[3] = ip4;
}

static __always_inline void addr_from_v6(struct bpfsvc_addr *a, const __u32 *ip6)
{
	__u32 *w = (__u32 *)a->a;

	w[0] = ip6[0];
	w[1] = ip6[1];
	w[2] = ip6[2];
	w[3] = ip6[3];
}

static __always_inline bool addr_is_v4(const struct bpfsvc_addr *a)
{
	const __u32 *w = (const __u32 *)a->a;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff);
}

static __always_inline bool addr_eq(const struct bpfsvc_addr *a, const struct bpfsvc_addr *b)
{
	const __u32 *x = (const __u32 *)a->a, *y = (const __u32 *)b->a;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline void stats_count(__u32 svc_id, bool rejected)
{
	struct bpfsvc_stats *st = bpf_map_lookup_elem(&bpfsvc_stats, &svc_id);

	if (!st)
		return;
	if (rejected)
		st->no_backend++;
	else
		st->connects++;
}

/*
 * Translate *addr:*port (a frontend?) to a backend in place.
 * Returns 1 if translated, 0 if not a service (untouched), -ECONNREFUSED if the service has
 * no usable backend.
 */
static __always_inline int lb_pick(struct bpf_sock_addr *ctx, struct bpfsvc_addr *addr,
				   __be16 *port, bool connected)
{
	struct bpfsvc_fe_key key = {};
	struct bpfsvc_slot_key sk = {};
	struct bpfsvc_backend *be = NULL;
	struct bpfsvc_fe_val fe;
	int i;

	key.addr = *addr;
	key.port = *port;
	key.proto = (__u8)ctx->protocol;

	for (i = 0; i < BPFSVC_LOOKUP_TRIES; i++) {
		struct bpfsvc_fe_val *v = bpf_map_lookup_elem(&bpfsvc_fe, &key);

		if (!v)
			return 0;
		/* Work on a copy: the agent may switch the element while we use it. */
		fe = *v;
		if (fe.count == 0) {
			stats_count(fe.svc_id, true);
			return -ECONNREFUSED;
		}
		sk.set_id = fe.set_id;
		sk.idx = bpf_get_prandom_u32() % fe.count;
		be = bpf_map_lookup_elem(&bpfsvc_slots, &sk);
		if (be)
			break;
		/* The set was switched and its old slots already reclaimed: read the
		 * frontend again, it now names the new set. */
	}
	if (!be) {
		stats_count(fe.svc_id, true);
		return -ECONNREFUSED;
	}

	if (connected) {
		/* One peer per connected socket: remember it on the socket itself. */
		struct bpfsvc_sk_peer *p = bpf_sk_storage_get(&bpfsvc_sk_peer, ctx->sk, 0,
							      BPF_SK_STORAGE_GET_F_CREATE);

		if (p) {
			p->backend = be->addr;
			p->backend_port = be->port;
			p->vip = key.addr;
			p->vip_port = key.port;
		}
	} else {
		/* An unconnected UDP socket may talk to many services: key by backend. */
		struct bpfsvc_revnat_key rk = {};
		struct bpfsvc_revnat_val rv = {};

		rk.cookie = bpf_get_socket_cookie(ctx);
		rk.addr = be->addr;
		rk.port = be->port;
		rv.addr = key.addr;
		rv.port = key.port;
		bpf_map_update_elem(&bpfsvc_revnat, &rk, &rv, BPF_ANY);
	}
	*addr = be->addr;
	*port = be->port;
	stats_count(fe.svc_id, false);
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

static __always_inline int fwd4(struct bpf_sock_addr *ctx, bool connected)
{
	struct bpfsvc_addr a;
	__be16 port = (__be16)ctx->user_port;
	int ret;

	addr_from_v4(&a, ctx->user_ip4);
	ret = lb_pick(ctx, &a, &port, connected);
	if (ret < 0) {
		bpf_set_retval(ret);
		return 0;
	}
	if (ret > 0 && addr_is_v4(&a)) {
		ctx->user_ip4 = ((__u32 *)a.a)[3];
		ctx->user_port = port;
	}
	return 1;
}

static __always_inline int fwd6(struct bpf_sock_addr *ctx, bool connected)
{
	struct bpfsvc_addr a;
	__u32 ip6[4];
	__be16 port = (__be16)ctx->user_port;
	int ret;

	ip6[0] = ctx->user_ip6[0];
	ip6[1] = ctx->user_ip6[1];
	ip6[2] = ctx->user_ip6[2];
	ip6[3] = ctx->user_ip6[3];
	addr_from_v6(&a, ip6);
	/* A v4-mapped destination is already in the key form of the IPv4 service. */
	ret = lb_pick(ctx, &a, &port, connected);
	if (ret < 0) {
		bpf_set_retval(ret);
		return 0;
	}
	if (ret > 0) {
		const __u32 *w = (const __u32 *)a.a;

		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
		ctx->user_port = port;
	}
	return 1;
}

static __always_inline int rev4(struct bpf_sock_addr *ctx)
{
	struct bpfsvc_addr a;
	__be16 port = (__be16)ctx->user_port;

	addr_from_v4(&a, ctx->user_ip4);
	if (lb_reverse(ctx, &a, &port) > 0 && addr_is_v4(&a)) {
		ctx->user_ip4 = ((__u32 *)a.a)[3];
		ctx->user_port = port;
	}
	return 1;
}

static __always_inline int rev6(struct bpf_sock_addr *ctx)
{
	struct bpfsvc_addr a;
	__u32 ip6[4];
	__be16 port = (__be16)ctx->user_port;

	ip6[0] = ctx->user_ip6[0];
	ip6[1] = ctx->user_ip6[1];
	ip6[2] = ctx->user_ip6[2];
	ip6[3] = ctx->user_ip6[3];
	addr_from_v6(&a, ip6);
	if (lb_reverse(ctx, &a, &port) > 0) {
		const __u32 *w = (const __u32 *)a.a;

		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
		ctx->user_port = port;
	}
	return 1;
}

SEC("cgroup/connect4")
int bpfsvc_connect4(struct bpf_sock_addr *ctx)
{
	return fwd4(ctx, true);
}

SEC("cgroup/connect6")
int bpfsvc_connect6(struct bpf_sock_addr *ctx)
{
	return fwd6(ctx, true);
}

SEC("cgroup/sendmsg4")
int bpfsvc_sendmsg4(struct bpf_sock_addr *ctx)
{
	return fwd4(ctx, false);
}

SEC("cgroup/sendmsg6")
int bpfsvc_sendmsg6(struct bpf_sock_addr *ctx)
{
	return fwd6(ctx, false);
}

SEC("cgroup/recvmsg4")
int bpfsvc_recvmsg4(struct bpf_sock_addr *ctx)
{
	return rev4(ctx);
}

SEC("cgroup/recvmsg6")
int bpfsvc_recvmsg6(struct bpf_sock_addr *ctx)
{
	return rev6(ctx);
}

SEC("cgroup/getpeername4")
int bpfsvc_getpeername4(struct bpf_sock_addr *ctx)
{
	return rev4(ctx);
}

SEC("cgroup/getpeername6")
int bpfsvc_getpeername6(struct bpf_sock_addr *ctx)
{
	return rev6(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
