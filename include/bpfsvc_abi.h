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
/* vmlinux.h already provides __u8.. __be32 for BPF objects. */
#else
#include <linux/types.h>
#endif

/* Default map sizes. The agent can override them at creation (--max-services etc.); these are
 * the floor the project promises: 65536 service ports and 262144 backends. */
#define BPFSVC_DEF_MAX_FRONTENDS 131072 /* one per (VIP, port, proto): dual-stack doubles it */
#define BPFSVC_DEF_MAX_SERVICES 65536	/* service ports (ns/name:port) with metadata + stats */
#define BPFSVC_DEF_MAX_SLOTS 524288	/* 262144 backends, plus room for the atomic switch */
#define BPFSVC_DEF_MAX_REVNAT 262144	/* live client sockets remembered for reverse NAT */

/* Frontend flags (bpfsvc_fe_val.flags). */
#define BPFSVC_FE_F_V6 (1U << 0) /* VIP is a real IPv6 address (not v4-mapped) */

/*
 * All addresses are 16 bytes in network order; IPv4 is stored v4-mapped (::ffff:a.b.c.d) so
 * an AF_INET6 socket connecting to ::ffff:VIP finds the IPv4 service with one lookup.
 */
struct bpfsvc_addr {
	__u8 a[16];
};

/* bpfsvc_frontends key: one Service VIP, port and protocol. */
struct bpfsvc_fe_key {
	struct bpfsvc_addr addr;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
	__u8 pad;
};

/*
 * bpfsvc_frontends value. set_id names the backend set in bpfsvc_slots; a changed set is
 * written under a fresh set_id and switched here in one element update (atomic switch).
 * count == 0 means "service exists, no usable backend": reject.
 */
struct bpfsvc_fe_val {
	__u32 set_id;
	__u32 count;
	__u32 svc_id; /* index into bpfsvc_services and bpfsvc_stats */
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

/* bpfsvc_services value, indexed by svc_id: who a frontend belongs to. Only user space reads
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
