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

#include "sock_lb.h"
#include "sock_lb.skel.h"

#define BPFFS_DEFAULT "/sys/fs/bpf"

struct datapath {
	struct sock_lb_bpf *skel;
	struct pinned_maps maps;
	int lock_fd; /* the pin directory, flock()ed: one agent per pin path */
};

/* The programs, and the name their link is pinned under. */
#define PROGS(X)                                                                              \
	X(connect4) X(connect6) X(sendmsg4) X(sendmsg6) X(recvmsg4) X(recvmsg6) X(getpeername4) \
	X(getpeername6)

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
static int ensure_bpffs(const char *pin_path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", pin_path);
	/* The nearest existing ancestor decides which filesystem the pins land on. */
	while (access(dir, F_OK) && (slash = strrchr(dir, '/')) && slash != dir)
		*slash = 0;
	if (is_bpffs(dir))
		goto mk;
	if (!strncmp(pin_path, BPFFS_DEFAULT "/", strlen(BPFFS_DEFAULT) + 1) &&
	    !is_bpffs(BPFFS_DEFAULT)) {
		if (mount("bpf", BPFFS_DEFAULT, "bpf", 0, "mode=0700")) {
			snprintf(err, errlen, "mount bpffs on %s: %s", BPFFS_DEFAULT,
				 strerror(errno));
			return -errno;
		}
		goto mk;
	}
	snprintf(err, errlen, "pin path %s is not on a bpf filesystem (mount -t bpf bpf DIR)",
		 pin_path);
	return -EINVAL;
mk:
	if (mkdir(pin_path, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", pin_path, strerror(errno));
		return -errno;
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
 * else the asked size or the ABI default. */
static int size_map(struct bpf_map *map, const char *pin_path, uint32_t want, char *err,
		    size_t errlen)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", pin_path, bpf_map__name(map));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return want ? bpf_map__set_max_entries(map, want) : 0;
	ret = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (ret)
		return ret;
	if (want && want != info.max_entries) {
		snprintf(err, errlen,
			 "pinned map %s holds %u entries, %u asked: run 'bpfsvc cleanup' first",
			 path, info.max_entries, want);
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
	dp->maps.ncpus = libbpf_num_possible_cpus();
}

int datapath_open(const char *pin_path, const char *cgroup, const struct map_sizes *sz,
		  struct datapath **out, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin_path);
	struct datapath *dp;
	char path[PATH_MAX];
	int cg_fd = -1, ret;

	libbpf_set_print(libbpf_log);
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->lock_fd = -1;
	ret = ensure_bpffs(pin_path, err, errlen);
	if (ret)
		goto cleanup;
	/* Two agents on one pin path would hand out the same set and service ids: one
	 * Service's VIP could land on another's pods. The lock dies with the process. */
	dp->lock_fd = open(pin_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dp->lock_fd < 0 || flock(dp->lock_fd, LOCK_EX | LOCK_NB)) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", pin_path,
			 errno == EWOULDBLOCK ? "another bpfsvc agent is running on this pin path"
					      : strerror(errno));
		goto cleanup;
	}
	dp->skel = sock_lb_bpf__open_opts(&oo);
	if (!dp->skel) {
		ret = -errno;
		snprintf(err, errlen, "open BPF object: %s", strerror(errno));
		goto cleanup;
	}
	if ((ret = size_map(dp->skel->maps.bpfsvc_fe, pin_path, sz->frontends, err, errlen)) ||
	    (ret = size_map(dp->skel->maps.bpfsvc_svcs, pin_path, sz->services, err, errlen)) ||
	    (ret = size_map(dp->skel->maps.bpfsvc_stats, pin_path, sz->services, err, errlen)) ||
	    (ret = size_map(dp->skel->maps.bpfsvc_slots, pin_path, sz->slots, err, errlen)) ||
	    (ret = size_map(dp->skel->maps.bpfsvc_revnat, pin_path, sz->revnat, err, errlen))) {
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
	snprintf(path, sizeof(path), "%s/link_" #name, pin_path);                             \
	ret = attach_pinned(dp->skel->progs.bpfsvc_##name, cg_fd, path);                     \
	if (ret) {                                                                            \
		snprintf(err, errlen, "attach " #name " to %s: %s", cgroup, strerror(-ret));  \
		goto cleanup;                                                                 \
	}
		PROGS(ATTACH)
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
	if (dp->lock_fd >= 0)
		close(dp->lock_fd);
	sock_lb_bpf__destroy(dp->skel);
	free(dp);
}

const struct pinned_maps *datapath_maps(const struct datapath *dp)
{
	return &dp->maps;
}

static int op_fe_update(void *ctx, const struct bpfsvc_fe_key *k, const struct bpfsvc_fe_val *v)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_update_elem(m->fe, k, v, BPF_ANY) ? -errno : 0;
}

static int op_fe_delete(void *ctx, const struct bpfsvc_fe_key *k)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_delete_elem(m->fe, k) ? -errno : 0;
}

static int op_slot_update(void *ctx, const struct bpfsvc_slot_key *k,
			  const struct bpfsvc_backend *b)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_update_elem(m->slots, k, b, BPF_ANY) ? -errno : 0;
}

static int op_slot_delete(void *ctx, const struct bpfsvc_slot_key *k)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_delete_elem(m->slots, k) ? -errno : 0;
}

static int op_slot_update_batch(void *ctx, const struct bpfsvc_slot_key *k,
				const struct bpfsvc_backend *b, uint32_t n, uint32_t *done)
{
	const struct pinned_maps *m = ctx;
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = n;
	int err;

	err = bpf_map_update_batch(m->slots, k, b, &count, &opts) ? -errno : 0;
	*done = count;
	return err;
}

static int op_svc_set(void *ctx, uint32_t id, const struct bpfsvc_svc_info *info, bool fresh)
{
	const struct pinned_maps *m = ctx;
	struct bpfsvc_stats *zero;
	int err = 0;

	if (bpf_map_update_elem(m->svcs, &id, info, BPF_ANY))
		return -errno;
	if (!fresh)
		return 0;
	zero = calloc(m->ncpus, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(m->stats, &id, zero, BPF_ANY))
		err = -errno;
	free(zero);
	return err;
}

const struct sync_ops datapath_sync_ops = {
	.fe_update = op_fe_update,
	.fe_delete = op_fe_delete,
	.slot_update = op_slot_update,
	.slot_delete = op_slot_delete,
	.slot_update_batch = op_slot_update_batch,
	.svc_set = op_svc_set,
};

int datapath_adopt(struct datapath *dp, struct sync *s, uint64_t *gc)
{
	const struct pinned_maps *m = &dp->maps;
	struct bpfsvc_backend *be = NULL;
	struct bpfsvc_slot_key *dead = NULL;
	size_t ndead = 0, capdead = 0;
	struct bpfsvc_fe_key k, *prev = NULL;
	struct bpfsvc_slot_key sk, *sprev = NULL;
	struct sync_result res;
	uint32_t id;
	int err;

	*gc = 0;
	for (id = 0; id < m->max_services; id++) {
		struct bpfsvc_svc_info info;

		if (!bpf_map_lookup_elem(m->svcs, &id, &info) && info.in_use) {
			err = sync_adopt_svc(s, id, &info);
			if (err)
				goto cleanup;
		}
	}
	be = malloc(BPFSVC_MAX_BACKENDS_PER_FE * sizeof(*be));
	if (!be) {
		err = -ENOMEM;
		goto cleanup;
	}
	while (!bpf_map_get_next_key(m->fe, prev, &k)) {
		struct bpfsvc_fe_val v;
		uint32_t n = 0;
		bool dirty = false;

		prev = &k;
		if (bpf_map_lookup_elem(m->fe, &k, &v))
			continue;
		if (v.count > BPFSVC_MAX_BACKENDS_PER_FE) {
			v.count = 0;
			dirty = true;
		}
		for (sk.set_id = v.set_id, sk.idx = 0; sk.idx < v.count; sk.idx++) {
			if (bpf_map_lookup_elem(m->slots, &sk, &be[n]))
				dirty = true; /* a hole: rewrite the set */
			else
				n++;
		}
		err = sync_adopt_fe(s, &k, &v, be, n, dirty);
		if (err)
			goto cleanup;
	}
	err = sync_adopt_done(s, &res);
	if (err)
		goto cleanup;
	/* Collect first: deleting while walking restarts get_next_key from the start. */
	while (!bpf_map_get_next_key(m->slots, sprev, &sk)) {
		sprev = &sk;
		if (sync_set_live(s, sk.set_id))
			continue;
		if (ndead == capdead) {
			size_t cap = capdead ? capdead * 2 : 256;
			struct bpfsvc_slot_key *p = realloc(dead, cap * sizeof(*p));

			if (!p) {
				err = -ENOMEM;
				goto cleanup;
			}
			dead = p;
			capdead = cap;
		}
		dead[ndead++] = sk;
	}
	for (size_t i = 0; i < ndead; i++)
		if (!bpf_map_delete_elem(m->slots, &dead[i]))
			(*gc)++;
	err = 0;
cleanup:
	free(be);
	free(dead);
	return err;
}

int pinned_open(const char *pin_path, struct pinned_maps *m, char *err, size_t errlen)
{
	static const char *const names[] = { "bpfsvc_fe", "bpfsvc_slots", "bpfsvc_svcs",
					     "bpfsvc_stats" };
	int *fds[] = { &m->fe, &m->slots, &m->svcs, &m->stats };
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	size_t i;
	int ret;

	m->fe = m->slots = m->svcs = m->stats = -1;
	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_path, names[i]);
		*fds[i] = bpf_obj_get(path);
		if (*fds[i] < 0) {
			ret = -errno;
			snprintf(err, errlen, "open pinned map %s: %s (is the agent set up there?)",
				 path, strerror(errno));
			pinned_close(m);
			return ret;
		}
	}
	if (bpf_obj_get_info_by_fd(m->svcs, &info, &len)) {
		ret = -errno;
		snprintf(err, errlen, "map info %s: %s", names[2], strerror(errno));
		pinned_close(m);
		return ret;
	}
	m->max_services = info.max_entries;
	m->ncpus = libbpf_num_possible_cpus();
	return 0;
}

void pinned_close(struct pinned_maps *m)
{
	int *fds[] = { &m->fe, &m->slots, &m->svcs, &m->stats };

	for (size_t i = 0; i < 4; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int datapath_cleanup(const char *pin_path, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	d = opendir(pin_path);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "open %s: %s", pin_path, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_path, de->d_name);
		if (!strncmp(de->d_name, "link_", 5)) {
			int fd = bpf_obj_get(path);

			/* Detach explicitly: a running agent may still hold the link. */
			if (fd >= 0) {
				bpf_link_detach(fd);
				close(fd);
			}
		}
		if (unlink(path) && !ret) {
			ret = -errno;
			snprintf(err, errlen, "unlink %s: %s", path, strerror(errno));
		}
	}
	closedir(d);
	if (rmdir(pin_path) && !ret) {
		ret = -errno;
		snprintf(err, errlen, "rmdir %s: %s", pin_path, strerror(errno));
	}
	return ret;
}
