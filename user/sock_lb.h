/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The user-space peer of bpf/sock_lb.bpf.c: load the programs, create or reuse the pinned
 * maps, attach to a cgroup with pinned links, and remove it all again (cleanup). Reading and
 * writing the maps is datapath_maps.h's; rebuilding the agent's view of them is sync's.
 */
#ifndef BPFSVC_SOCK_LB_H
#define BPFSVC_SOCK_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datapath_maps.h"

#define BPFSVC_DEFAULT_PIN_PATH "/sys/fs/bpf/bpfsvc"

/* Map sizes; 0 keeps what is pinned, or the ABI default for a new map. */
struct map_sizes {
	uint32_t frontends, services, slots, revnat;
};

struct datapath;

/* Open or create the maps under pin_path, load the programs and attach them to cgroup
 * (replacing the programs of links already pinned there, without a gap). */
int datapath_open(const char *pin_path, const char *cgroup, const struct map_sizes *sizes,
		  struct datapath **out, char *err, size_t errlen);
/* Close fds; pins (and so the attached datapath) stay. NULL is fine. */
void datapath_close(struct datapath *dp);
const struct pinned_maps *datapath_maps(const struct datapath *dp);
/* The maps of dp for reading and writing (valid until datapath_close()). */
const struct dp_maps *datapath_map_io(const struct datapath *dp);

struct cleanup_result {
	unsigned int removed; /* pins */
	bool dir_kept;	      /* the directory holds other entries, so it stays */
};

/*
 * Detach the programs and remove bpfsvc's pins (its maps and links, by their fixed names)
 * from pin_path, then the directory if that left it empty. Refuses, removing nothing, unless
 * pin_path passes the agent's ownership checks, is on bpffs and every entry under one of
 * those names is bpfsvc's object (never a symlink). A missing pin_path is not an error.
 */
int datapath_cleanup(const char *pin_path, struct cleanup_result *res, char *err,
		     size_t errlen);

/* The mount point of the cgroup v2 hierarchy, from /proc/mounts. */
int cgroup2_root(char *buf, size_t len);

#endif
