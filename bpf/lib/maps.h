/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The service maps every bpfsvc datapath reads: frontends, backend slots, service metadata
 * and counters. A program that includes this gets its own definitions, and the loader pins
 * them all under the same names (BPFSVC_PINNED_MAPS in bpfsvc_abi.h), so every program
 * shares one instance of each. The agent owns their contents; the programs only read them.
 *
 * No `pinning` attribute: the pin names are versioned (BPFSVC_MAP_PIN) and set by the loader
 * from the list in bpfsvc_abi.h, the one place the pinned layout is spelled.
 */
#ifndef BPFSVC_LIB_MAPS_H
#define BPFSVC_LIB_MAPS_H

#include "bpfsvc_abi.h"

/* Service frontends. NO_PREALLOC: replaced elements are freed, not recycled in place, which
 * keeps a concurrent reader's copy of a value whole during the atomic switch. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFSVC_DEF_MAX_FRONTENDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bpfsvc_fe_key);
	__type(value, struct bpfsvc_fe_val);
} bpfsvc_fe SEC(".maps");

/* Backend slots of every backend set: (set_id, idx) -> backend. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFSVC_DEF_MAX_SLOTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bpfsvc_slot_key);
	__type(value, struct bpfsvc_backend);
} bpfsvc_slots SEC(".maps");

/* Service metadata for user space (list, adoption); never read by a program, pinned with
 * the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFSVC_DEF_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct bpfsvc_svc_info);
} bpfsvc_svcs SEC(".maps");

/* Per-service counters; per-CPU so the hot path never contends on a cache line. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFSVC_DEF_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct bpfsvc_stats);
} bpfsvc_stats SEC(".maps");

#endif
