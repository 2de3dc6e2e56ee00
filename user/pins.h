/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The pinned layout of include/bpfsvc_abi.h as a table, for the code that sets pin paths,
 * walks every name (cleanup) or moves the pins of the unversioned layout to layout 1.
 */
#ifndef BPFSVC_PINS_H
#define BPFSVC_PINS_H

#include <stdbool.h>
#include <stddef.h>

#include "bpfsvc_abi.h"

struct bpf_object;

struct pin_name {
	const char *pin;    /* in the pin directory, this layout: BPFSVC_MAP_PIN, BPFSVC_LINK_PIN */
	const char *legacy; /* the same pin in the unversioned layout */
	const char *obj;    /* the map's name, or the name of the link's program */
	bool link;
};

/* Every pin of BPFSVC_PINNED_MAPS and BPFSVC_SOCK_LB_LINKS, maps first. */
extern const struct pin_name pin_names[];
extern const size_t pin_names_n;

/* The pin name of a map by its BPF name, or NULL when bpfsvc does not pin it. */
const char *pin_map_name(const char *map);

/* Give every map of obj its pin path in dir (a path to the checked pin directory). A map
 * the layout does not name is -ENOENT with err saying which: every map is pinned. */
int pin_set_map_paths(struct bpf_object *obj, const char *dir, char *err, size_t errlen);

/* Rename each pin of the unversioned layout in dir_fd to its layout-1 name (the same object
 * layout, so adoption goes on from there), unless that name exists. */
int pin_upgrade_legacy(int dir_fd, const char *pin_path, char *err, size_t errlen);

#endif
