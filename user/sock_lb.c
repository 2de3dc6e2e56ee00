// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pindir.h"
#include "pins.h"
#include "sock_lb.h"
#include "sock_lb.skel.h"

#define BPFFS_DEFAULT "/sys/fs/bpf"

struct datapath {
	struct sock_lb_bpf *skel;
	struct pinned_maps maps;
	struct dp_maps io; /* the maps through pinned_map_ops */
	struct pindir dir; /* flock()ed: one agent per pin path */
};

/* The programs and the names of their links and maps: BPFSVC_SOCK_LB_LINKS and
 * BPFSVC_PINNED_MAPS in bpfsvc_abi.h are the only names bpfsvc pins, and the only ones
 * cleanup removes. */

int cgroup2_root(char *buf, size_t len)
{
	struct mntent *m;
	FILE *f = setmntent("/proc/mounts", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(buf, len, "%s", m->mnt_dir);
			err = 0;
			break;
		}
	}
	endmntent(f);
	return err;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

/* Pins need a bpffs. Nodes usually have one on /sys/fs/bpf; mount it there if not. */
static int mount_default_bpffs(const char *pin_path, char *err, size_t errlen)
{
	if (strncmp(pin_path, BPFFS_DEFAULT "/", strlen(BPFFS_DEFAULT) + 1) ||
	    is_bpffs(BPFFS_DEFAULT))
		return 0;
	if (mount("bpf", BPFFS_DEFAULT, "bpf", 0, "mode=0700")) {
		int e = errno;

		snprintf(err, errlen, "mount bpffs on %s: %s", BPFFS_DEFAULT, strerror(e));
		return -e;
	}
	return 0;
}

static int libbpf_log(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	if (lvl == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Size a map: the pinned map's size if one exists (adoption needs the same definition),
 * else the asked size or the ABI default. The pin is looked up in dir, named in messages
 * under pin_path. */
static int size_map(struct bpf_map *map, const char *dir, const char *pin_path, uint32_t want,
		    char *err, size_t errlen)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", dir, pin_map_name(bpf_map__name(map)));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return want ? bpf_map__set_max_entries(map, want) : 0;
	ret = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (ret)
		return ret;
	if (want && want != info.max_entries) {
		snprintf(err, errlen,
			 "pinned map %s/%s holds %u entries, %u asked: run 'bpfsvc cleanup' first",
			 pin_path, pin_map_name(bpf_map__name(map)), info.max_entries, want);
		return -EEXIST;
	}
	return bpf_map__set_max_entries(map, info.max_entries);
}

/* The cgroup id a link reports is the cgroup's file handle. */
static int cgroup_id(int fd, uint64_t *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mnt;

	if (name_to_handle_at(fd, "", &h.fh, &mnt, AT_EMPTY_PATH))
		return -errno;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/*
 * Attach prog to the cgroup through a link pinned at path. A link already pinned there for
 * the same cgroup gets the new program atomically (no moment without a program); one for
 * another cgroup is detached first.
 */
static int attach_pinned(struct bpf_program *prog, int cg_fd, const char *path)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	struct bpf_link *link;
	uint64_t want_id = 0;
	int err;

	err = cgroup_id(cg_fd, &want_id);
	if (err)
		return err;
	/* Only open what exists: libbpf warns about a missing pin. */
	link = access(path, F_OK) ? NULL : bpf_link__open(path);
	if (link) {
		if (!bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len) &&
		    info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == want_id) {
			err = bpf_link__update_program(link, prog);
			bpf_link__disconnect(link);
			bpf_link__destroy(link);
			return err;
		}
		bpf_link_detach(bpf_link__fd(link));
		bpf_link__unpin(link);
		bpf_link__destroy(link);
	}
	link = bpf_program__attach_cgroup(prog, cg_fd);
	if (!link)
		return -errno;
	err = bpf_link__pin(link, path);
	/* The pin keeps it attached; our fd is not needed. */
	bpf_link__disconnect(link);
	bpf_link__destroy(link);
	return err;
}

static void maps_from_skel(struct datapath *dp)
{
	dp->maps.fe = bpf_map__fd(dp->skel->maps.bpfsvc_fe);
	dp->maps.slots = bpf_map__fd(dp->skel->maps.bpfsvc_slots);
	dp->maps.svcs = bpf_map__fd(dp->skel->maps.bpfsvc_svcs);
	dp->maps.stats = bpf_map__fd(dp->skel->maps.bpfsvc_stats);
	dp->maps.max_services = bpf_map__max_entries(dp->skel->maps.bpfsvc_svcs);
	dp->maps.max_frontends = bpf_map__max_entries(dp->skel->maps.bpfsvc_fe);
	dp->maps.max_slots = bpf_map__max_entries(dp->skel->maps.bpfsvc_slots);
	dp->maps.ncpus = libbpf_num_possible_cpus();
	dp->io = pinned_maps_handle(&dp->maps);
}

int datapath_open(const char *pin_path, const char *cgroup, const struct map_sizes *sz,
		  struct datapath **out, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct datapath *dp;
	const char *dir;
	char path[PATH_MAX];
	int cg_fd = -1, ret;

	libbpf_set_print(libbpf_log);
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	pindir_init(&dp->dir);
	ret = mount_default_bpffs(pin_path, err, errlen);
	if (ret)
		goto cleanup;
	ret = pindir_open(&dp->dir, pin_path, PINDIR_AGENT, err, errlen);
	if (ret)
		goto cleanup;
	/* Pins go into the directory just checked, whatever happens to the path. */
	dir = dp->dir.at;
	/* Two agents on one pin path would hand out the same set and service ids: one
	 * Service's VIP could land on another's pods. The lock dies with the process. */
	if (flock(dp->dir.fd, LOCK_EX | LOCK_NB)) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", pin_path,
			 errno == EWOULDBLOCK ? "another bpfsvc agent is running on this pin path"
					      : strerror(errno));
		goto cleanup;
	}
	ret = pin_upgrade_legacy(dp->dir.fd, pin_path, err, errlen);
	if (ret)
		goto cleanup;
	dp->skel = sock_lb_bpf__open_opts(&oo);
	if (!dp->skel) {
		ret = -errno;
		snprintf(err, errlen, "open BPF object: %s", strerror(errno));
		goto cleanup;
	}
	ret = pin_set_map_paths(dp->skel->obj, dir, err, errlen);
	if (ret) {
		if (!*err)
			snprintf(err, errlen, "pin paths: %s", strerror(-ret));
		goto cleanup;
	}
	if ((ret = size_map(dp->skel->maps.bpfsvc_fe, dir, pin_path, sz->frontends, err,
			    errlen)) ||
	    (ret = size_map(dp->skel->maps.bpfsvc_svcs, dir, pin_path, sz->services, err,
			    errlen)) ||
	    (ret = size_map(dp->skel->maps.bpfsvc_stats, dir, pin_path, sz->services, err,
			    errlen)) ||
	    (ret = size_map(dp->skel->maps.bpfsvc_slots, dir, pin_path, sz->slots, err,
			    errlen)) ||
	    (ret = size_map(dp->skel->maps.bpfsvc_revnat, dir, pin_path, sz->revnat, err,
			    errlen))) {
		if (!*err)
			snprintf(err, errlen, "size maps: %s", strerror(-ret));
		goto cleanup;
	}
	ret = sock_lb_bpf__load(dp->skel);
	if (ret) {
		snprintf(err, errlen,
			 "load BPF programs: %s (a pinned map with another layout? run 'bpfsvc cleanup')",
			 strerror(-ret));
		goto cleanup;
	}
	maps_from_skel(dp);
	if (cgroup) {
		cg_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg_fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "open cgroup %s: %s", cgroup, strerror(errno));
			goto cleanup;
		}
#define ATTACH(name)                                                                          \
	snprintf(path, sizeof(path), "%s/" BPFSVC_LINK_PIN(name), dir);                       \
	ret = attach_pinned(dp->skel->progs.bpfsvc_##name, cg_fd, path);                     \
	if (ret) {                                                                            \
		snprintf(err, errlen, "attach " #name " to %s: %s", cgroup, strerror(-ret));  \
		goto cleanup;                                                                 \
	}
		BPFSVC_SOCK_LB_LINKS(ATTACH)
#undef ATTACH
	}
	*out = dp;
	dp = NULL;
	ret = 0;
cleanup:
	if (cg_fd >= 0)
		close(cg_fd);
	datapath_close(dp);
	return ret;
}

void datapath_close(struct datapath *dp)
{
	if (!dp)
		return;
	sock_lb_bpf__destroy(dp->skel);
	pindir_close(&dp->dir);
	free(dp);
}

const struct pinned_maps *datapath_maps(const struct datapath *dp)
{
	return &dp->maps;
}

const struct dp_maps *datapath_map_io(const struct datapath *dp)
{
	return &dp->io;
}

/* One name bpfsvc pins, and the object cleanup expects under it. */
struct pin {
	const char *name; /* in the pin directory */
	const char *obj;  /* the map's name, or the name of the link's program */
	bool link;
	int fd;
};

#define MAX_PINS 64

/* Counts past MAX_PINS without writing, so the caller can tell. */
static void add_pin(struct pin *pins, size_t *n, const char *name, const char *obj, bool link)
{
	if (*n < MAX_PINS)
		pins[*n] = (struct pin){ name, obj, link, -1 };
	(*n)++;
}

/* The kernel names the anon inode behind each kind of BPF fd. */
static bool fd_is(int fd, const char *kind)
{
	char proc[32], target[32];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return !strcmp(target, kind);
}

static bool is_ours(const struct pin *p)
{
	union {
		struct bpf_map_info map;
		struct bpf_link_info link;
		struct bpf_prog_info prog;
	} info;
	__u32 len = sizeof(info);
	int fd;
	bool ret;

	memset(&info, 0, sizeof(info));
	if (!p->link)
		return fd_is(p->fd, "anon_inode:bpf-map") &&
		       !bpf_obj_get_info_by_fd(p->fd, &info.map, &len) &&
		       !strncmp(info.map.name, p->obj, sizeof(info.map.name) - 1);
	/* A link made by this process is "bpf_link", one from bpf_obj_get() "bpf-link". */
	if (!(fd_is(p->fd, "anon_inode:bpf_link") || fd_is(p->fd, "anon_inode:bpf-link")) ||
	    bpf_obj_get_info_by_fd(p->fd, &info.link, &len) ||
	    info.link.type != BPF_LINK_TYPE_CGROUP)
		return false;
	fd = bpf_prog_get_fd_by_id(info.link.prog_id);
	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	len = sizeof(info);
	ret = !bpf_obj_get_info_by_fd(fd, &info.prog, &len) &&
	      !strncmp(info.prog.name, p->obj, sizeof(info.prog.name) - 1);
	close(fd);
	return ret;
}

/* Open p->fd if bpfsvc's object is pinned under p->name: 0, -ENOENT when nothing is there,
 * -EPERM with err saying what is there instead. A symlink is never followed. */
static int pin_check(const struct pindir *dir, const char *pin_path, struct pin *p, char *err,
		     size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;

	if (fstatat(dir->fd, p->name, &st, AT_SYMLINK_NOFOLLOW)) {
		int e = errno;

		if (e == ENOENT)
			return -ENOENT;
		snprintf(err, errlen, "%s/%s: %s", pin_path, p->name, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s/%s is %s, not a bpfsvc pin; refusing, nothing removed",
			 pin_path, p->name, S_ISLNK(st.st_mode) ? "a symlink" : "not a BPF object");
		return -EPERM;
	}
	/* The directory passed its checks: only root can have put something else here since. */
	snprintf(path, sizeof(path), "%s/%s", dir->at, p->name);
	p->fd = bpf_obj_get(path);
	if (p->fd < 0) {
		int e = errno;

		snprintf(err, errlen, "open %s/%s: %s; refusing, nothing removed", pin_path,
			 p->name, strerror(e));
		return -e;
	}
	if (!is_ours(p)) {
		snprintf(err, errlen, "%s/%s is not bpfsvc's %s; refusing, nothing removed",
			 pin_path, p->name, p->link ? "link" : "map");
		return -EPERM;
	}
	return 0;
}

static int dir_empty(int fd, bool *empty)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		int ret = -errno;

		close(dfd);
		return ret;
	}
	*empty = true;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			*empty = false;
			break;
		}
	closedir(d);
	return 0;
}

/* rmdir, which removes only an empty directory; a mount point stays. */
static int remove_dir(const struct pindir *dir, const char *pin_path,
		      struct cleanup_result *res, char *err, size_t errlen)
{
	int e;

	if (dir->parent_fd < 0 || !unlinkat(dir->parent_fd, dir->name, AT_REMOVEDIR))
		return 0;
	e = errno;
	if (e == ENOTEMPTY || e == EEXIST) {
		res->dir_kept = true;
		return 0;
	}
	if (e == EBUSY) /* a mount point */
		return 0;
	snprintf(err, errlen, "rmdir %s: %s", pin_path, strerror(e));
	return -e;
}

int datapath_cleanup(const char *pin_path, struct cleanup_result *res, char *err, size_t errlen)
{
	struct pin pins[MAX_PINS];
	size_t npins = 0, found = 0, i;
	struct pindir dir;
	bool empty = false;
	int ret;

	memset(res, 0, sizeof(*res));
	libbpf_set_print(libbpf_log);
	ret = pindir_open(&dir, pin_path, PINDIR_CLEANUP, err, errlen);
	if (ret == -ENOENT) {
		ret = 0; /* nothing was pinned there */
		goto cleanup;
	}
	if (ret)
		goto cleanup;
	/* This layout's names, and those of the unversioned layout an older bpfsvc left. */
	for (i = 0; i < pin_names_n; i++) {
		add_pin(pins, &npins, pin_names[i].pin, pin_names[i].obj, pin_names[i].link);
		add_pin(pins, &npins, pin_names[i].legacy, pin_names[i].obj, pin_names[i].link);
	}
	if (npins > MAX_PINS) {
		ret = -E2BIG;
		snprintf(err, errlen, "more than %d pin names", MAX_PINS);
		goto cleanup;
	}
	/* Everything is checked before anything is removed. */
	for (i = 0; i < npins; i++) {
		ret = pin_check(&dir, pin_path, &pins[i], err, errlen);
		if (ret == -ENOENT)
			continue;
		if (ret)
			goto cleanup;
		found++;
	}
	ret = 0; /* an absent name (a partial attach, an older bpfsvc) is not an error */
	if (!found) {
		ret = dir_empty(dir.fd, &empty);
		if (ret) {
			snprintf(err, errlen, "read %s: %s", pin_path, strerror(-ret));
			goto cleanup;
		}
		if (!empty) {
			ret = -EPERM;
			snprintf(err, errlen, "%s holds no bpfsvc pins; refusing, nothing removed",
				 pin_path);
			goto cleanup;
		}
		ret = remove_dir(&dir, pin_path, res, err, errlen);
		goto cleanup;
	}
	/* Links first: the programs stop before their maps go. Detach explicitly: a running
	 * agent may still hold a link. */
	for (i = 0; i < npins; i++)
		if (pins[i].fd >= 0 && pins[i].link)
			bpf_link_detach(pins[i].fd);
	for (i = 0; i < npins; i++) {
		if (pins[i].fd < 0)
			continue;
		if (unlinkat(dir.fd, pins[i].name, 0)) {
			if (!ret) {
				ret = -errno;
				snprintf(err, errlen, "unlink %s/%s: %s", pin_path, pins[i].name,
					 strerror(errno));
			}
			continue;
		}
		res->removed++;
	}
	if (!ret)
		ret = remove_dir(&dir, pin_path, res, err, errlen);
cleanup:
	for (i = 0; i < npins && i < MAX_PINS; i++)
		if (pins[i].fd >= 0)
			close(pins[i].fd);
	pindir_close(&dir);
	return ret;
}
