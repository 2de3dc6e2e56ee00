// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <bpf/libbpf.h>

#include "pins.h"

const struct pin_name pin_names[] = {
#define MAP_PIN(map) { BPFSVC_MAP_PIN(map), BPFSVC_LEGACY_MAP_PIN(map), #map, false },
	BPFSVC_PINNED_MAPS(MAP_PIN)
#undef MAP_PIN
#define LINK_PIN(prog) \
	{ BPFSVC_LINK_PIN(prog), BPFSVC_LEGACY_LINK_PIN(prog), "bpfsvc_" #prog, true },
	BPFSVC_SOCK_LB_LINKS(LINK_PIN)
#undef LINK_PIN
};

const size_t pin_names_n = sizeof(pin_names) / sizeof(pin_names[0]);

const char *pin_map_name(const char *map)
{
	for (size_t i = 0; i < pin_names_n; i++)
		if (!pin_names[i].link && !strcmp(pin_names[i].obj, map))
			return pin_names[i].pin;
	return NULL;
}

int pin_set_map_paths(struct bpf_object *obj, const char *dir, char *err, size_t errlen)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int ret;

	bpf_object__for_each_map(map, obj) {
		const char *pin;

		/* .rodata, .bss: the program's own constants and variables, never shared. */
		if (bpf_map__is_internal(map))
			continue;
		pin = pin_map_name(bpf_map__name(map));
		if (!pin) {
			snprintf(err, errlen, "map %s has no pin name in bpfsvc_abi.h",
				 bpf_map__name(map));
			return -ENOENT;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, pin) >= sizeof(path))
			return -ENAMETOOLONG;
		ret = bpf_map__set_pin_path(map, path);
		if (ret)
			return ret;
	}
	return 0;
}

int pin_upgrade_legacy(int dir_fd, const char *pin_path, char *err, size_t errlen)
{
	struct stat st;

	for (size_t i = 0; i < pin_names_n; i++) {
		const struct pin_name *p = &pin_names[i];

		if (!fstatat(dir_fd, p->pin, &st, AT_SYMLINK_NOFOLLOW) || errno != ENOENT)
			continue;
		/* BPF objects are regular files on bpffs; anything else is not ours to move. */
		if (fstatat(dir_fd, p->legacy, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		/* A pinned link stays attached and a pinned map keeps its contents: the
		 * datapath runs on through the rename. */
		if (renameat2(dir_fd, p->legacy, dir_fd, p->pin, RENAME_NOREPLACE)) {
			int e = errno;

			if (e == EEXIST)
				continue;
			snprintf(err, errlen, "rename %s/%s to %s: %s", pin_path, p->legacy, p->pin,
				 strerror(e));
			return -e;
		}
	}
	return 0;
}
