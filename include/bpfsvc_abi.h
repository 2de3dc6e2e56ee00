/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bpfsvc ABI: every map key and value shared by the BPF programs (bpf/) and the agent (user/).
 * Both sides include this header and nothing else describes these layouts. Sizes are pinned
 * with _Static_assert so a change here is a deliberate ABI change (pinned maps from an older
 * agent would no longer be adopted).
 */
#ifndef BPFSVC_ABI_H
#define BPFSVC_ABI_H

#ifdef __BPF__
/* vmlinux.h already provides __u8.. __be32 and bool for BPF objects. */
#else
#include <stdbool.h>
#include <linux/types.h>
#endif

/* Helpers shared by bpf/ and user/: always inlined, so a BPF program needs no subprogram. */
#define BPFSVC_INLINE static inline __attribute__((always_inline))

/*
 * Tunables. Each may be overridden at build time (-DNAME=...); both sides must then agree,
 * since the BPF object's defaults are the sizes of the maps the agent creates.
 */
/* Map sizes; the agent can override them at creation (--max-services etc.). These are the
 * floor the project promises. */
#ifndef BPFSVC_DEF_MAX_FRONTENDS
#define BPFSVC_DEF_MAX_FRONTENDS 131072 /* one per (VIP, port, proto): dual-stack doubles it */
#endif
#ifndef BPFSVC_DEF_MAX_SERVICES
#define BPFSVC_DEF_MAX_SERVICES 65536 /* service ports (ns/name:port) with metadata + stats */
#endif
#ifndef BPFSVC_DEF_MAX_BACKENDS
#define BPFSVC_DEF_MAX_BACKENDS 262144 /* backends of all services together */
#endif
#ifndef BPFSVC_DEF_MAX_SLOTS
#define BPFSVC_DEF_MAX_SLOTS (2 * BPFSVC_DEF_MAX_BACKENDS) /* room for the atomic switch */
#endif
#ifndef BPFSVC_DEF_MAX_REVNAT
#define BPFSVC_DEF_MAX_REVNAT 262144 /* live client sockets remembered for reverse NAT */
#endif
/* How often the datapath re-reads a frontend whose backend set was switched and reclaimed
 * between its two lookups: once is the common race, three makes a miss vanishingly rare. */
#ifndef BPFSVC_LOOKUP_TRIES
#define BPFSVC_LOOKUP_TRIES 3
#endif

/*
 * The pinned layout: every name bpfsvc pins in its pin directory, and nothing else. Pin
 * names carry the layout version ("v1_bpfsvc_fe"), so an agent with another layout can
 * create its pins beside these during an upgrade (and move the state over) instead of
 * requiring `bpfsvc cleanup`. Bump BPFSVC_LAYOUT whenever a key, a value, a map type or the
 * set of maps changes. The pins of the unversioned layout (the release before layout 1: the
 * same maps, pinned as "bpfsvc_fe" and "link_connect4") are renamed to layout 1 by the agent
 * and removed by cleanup; see docs/DESIGN-NOTES.md, "Pinned layout".
 */
#define BPFSVC_LAYOUT 1
#define BPFSVC_STR_(x) #x
#define BPFSVC_STR(x) BPFSVC_STR_(x)
#define BPFSVC_PIN_PREFIX "v" BPFSVC_STR(BPFSVC_LAYOUT) "_"

/* The pinned maps, by their BPF names (the map variables in bpf/, the skeleton fields). */
#define BPFSVC_PINNED_MAPS(X)                                                                 \
	X(bpfsvc_fe) X(bpfsvc_slots) X(bpfsvc_svcs) X(bpfsvc_revnat) X(bpfsvc_sk_peer)         \
	X(bpfsvc_stats)
/* The socket LB programs (bpf/sock_lb.bpf.c), each attached through a pinned link; program
 * bpfsvc_<name>. */
#define BPFSVC_SOCK_LB_LINKS(X)                                                               \
	X(connect4) X(connect6) X(sendmsg4) X(sendmsg6) X(recvmsg4) X(recvmsg6) X(getpeername4) \
	X(getpeername6)

#define BPFSVC_MAP_PIN(map) BPFSVC_PIN_PREFIX #map
#define BPFSVC_LINK_PIN(prog) BPFSVC_PIN_PREFIX "link_" #prog
/* The same pins in the unversioned layout. */
#define BPFSVC_LEGACY_MAP_PIN(map) #map
#define BPFSVC_LEGACY_LINK_PIN(prog) "link_" #prog

/* Frontend flags (bpfsvc_fe_val.flags). */
#define BPFSVC_FE_F_V6 (1U << 0) /* VIP is a real IPv6 address (not v4-mapped) */

/*
 * All addresses are 16 bytes in network order; IPv4 is stored v4-mapped (::ffff:a.b.c.d) so
 * an AF_INET6 socket connecting to ::ffff:VIP finds the IPv4 service with one lookup.
 */
struct bpfsvc_addr {
	__u8 a[16];
};

/* The v4-mapped form, shared by bpf/ and user/. Byte by byte: struct bpfsvc_addr has no
 * alignment, and the same code must compile for BPF (no libc) and user space. */
BPFSVC_INLINE bool bpfsvc_addr_is_v4(const struct bpfsvc_addr *x)
{
	const __u8 *b = x->a;

	return !(b[0] | b[1] | b[2] | b[3] | b[4] | b[5] | b[6] | b[7] | b[8] | b[9]) &&
	       b[10] == 0xff && b[11] == 0xff;
}

/* ip4 in network order: ::ffff:ip4 */
BPFSVC_INLINE void bpfsvc_addr_set_v4(struct bpfsvc_addr *x, __be32 ip4)
{
	__builtin_memset(x->a, 0, 10);
	x->a[10] = 0xff;
	x->a[11] = 0xff;
	__builtin_memcpy(x->a + 12, &ip4, 4);
}

/* The IPv4 address (network order) of a v4-mapped address. */
BPFSVC_INLINE __be32 bpfsvc_addr_v4(const struct bpfsvc_addr *x)
{
	__be32 ip4;

	__builtin_memcpy(&ip4, x->a + 12, 4);
	return ip4;
}

/* bpfsvc_fe key: one Service VIP, port and protocol. */
struct bpfsvc_fe_key {
	struct bpfsvc_addr addr;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
	__u8 pad;
};

/*
 * bpfsvc_fe value. set_id names the backend set in bpfsvc_slots; a changed set is
 * written under a fresh set_id and switched here in one element update (atomic switch).
 * count == 0 means "service exists, no usable backend": reject.
 */
struct bpfsvc_fe_val {
	__u32 set_id;
	__u32 count;
	__u32 svc_id; /* index into bpfsvc_svcs and bpfsvc_stats */
	__u16 flags;
	__u16 pad;
};

/* bpfsvc_slots key: backend number idx (0..count-1) of set set_id. */
struct bpfsvc_slot_key {
	__u32 set_id;
	__u32 idx;
};

/* bpfsvc_slots value: where a connect to the frontend goes. */
struct bpfsvc_backend {
	struct bpfsvc_addr addr;
	__be16 port;
	__u16 pad;
};

/* Kubernetes name limits: namespace and service names are DNS labels (63), port names are
 * IANA service names (15). One byte more for the terminator. */
#define BPFSVC_NS_LEN 64
#define BPFSVC_NAME_LEN 64
#define BPFSVC_PORTNAME_LEN 16

/* bpfsvc_svcs value, indexed by svc_id: who a frontend belongs to. Only user space reads
 * it (list, adoption); it lives in a pinned map so it survives agent restarts. */
struct bpfsvc_svc_info {
	char ns[BPFSVC_NS_LEN];
	char name[BPFSVC_NAME_LEN];
	char port_name[BPFSVC_PORTNAME_LEN];
	__u32 in_use; /* 0: free slot (array maps cannot delete) */
	__u32 pad;
};

/* bpfsvc_revnat key: the backend a given socket was sent to. */
struct bpfsvc_revnat_key {
	__u64 cookie; /* bpf_get_socket_cookie() */
	struct bpfsvc_addr addr;
	__be16 port;
	__u16 pad[3];
};

/* bpfsvc_revnat value: the Service address the application asked for. */
struct bpfsvc_revnat_val {
	struct bpfsvc_addr addr;
	__be16 port;
	__u16 pad;
};

/* bpfsvc_sk_peer value (socket-local storage of a connected socket): its backend and the
 * Service address the application asked for. */
struct bpfsvc_sk_peer {
	struct bpfsvc_addr backend;
	struct bpfsvc_addr vip;
	__be16 backend_port;
	__be16 vip_port;
};

/* bpfsvc_stats value (per-CPU, indexed by svc_id). */
struct bpfsvc_stats {
	__u64 connects;	  /* connect/sendmsg translated to a backend */
	__u64 no_backend; /* rejected with ECONNREFUSED: service has no usable backend */
};

_Static_assert(sizeof(struct bpfsvc_addr) == 16, "bpfsvc_addr ABI");
_Static_assert(sizeof(struct bpfsvc_fe_key) == 20, "bpfsvc_fe_key ABI");
_Static_assert(sizeof(struct bpfsvc_fe_val) == 16, "bpfsvc_fe_val ABI");
_Static_assert(sizeof(struct bpfsvc_slot_key) == 8, "bpfsvc_slot_key ABI");
_Static_assert(sizeof(struct bpfsvc_backend) == 20, "bpfsvc_backend ABI");
_Static_assert(sizeof(struct bpfsvc_svc_info) == 152, "bpfsvc_svc_info ABI");
_Static_assert(sizeof(struct bpfsvc_revnat_key) == 32, "bpfsvc_revnat_key ABI");
_Static_assert(sizeof(struct bpfsvc_revnat_val) == 20, "bpfsvc_revnat_val ABI");
_Static_assert(sizeof(struct bpfsvc_stats) == 16, "bpfsvc_stats ABI");
_Static_assert(sizeof(struct bpfsvc_sk_peer) == 36, "bpfsvc_sk_peer ABI");

#endif /* BPFSVC_ABI_H */
