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
#include "sock_lb.h"
#include "sock_lb.skel.h"

#define BPFFS_DEFAULT "/sys/fs/bpf"

struct datapath {
	struct sock_lb_bpf *skel;
	struct pinned_maps maps;
	struct pindir dir; /* flock()ed: one agent per pin path */
};

/*
 * The programs, and the name their link is pinned under. With the maps the skeleton
 * declares LIBBPF_PIN_BY_NAME (pinned under their own names by libbpf), these are the only
 * names bpfsvc pins, and the only ones cleanup removes.
 */
#define PROGS(X)                                                                              \
	X(connect4) X(connect6) X(sendmsg4) X(sendmsg6) X(recvmsg4) X(recvmsg6) X(getpeername4) \
	X(getpeername6)
#define LINK_PIN(prog) "link_" #prog

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
		snprintf(err, errlen, "mount bpffs on %s: %s", BPFFS_DEFAULT, strerror(errno));
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
 * else the asked size or the ABI default. The pin is looked up in dir, named in messages
 * under pin_path. */
static int size_map(struct bpf_map *map, const char *dir, const char *pin_path, uint32_t want,
		    char *err, size_t errlen)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
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
			 pin_path, bpf_map__name(map), info.max_entries, want);
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
	oo.pin_root_path = dir;
	/* Two agents on one pin path would hand out the same set and service ids: one
	 * Service's VIP could land on another's pods. The lock dies with the process. */
	if (flock(dp->dir.fd, LOCK_EX | LOCK_NB)) {
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
	snprintf(path, sizeof(path), "%s/" LINK_PIN(name), dir);                              \
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
	sock_lb_bpf__destroy(dp->skel);
	pindir_close(&dp->dir);
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
	uint32_t cap_be = 0;
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
	while (!bpf_map_get_next_key(m->fe, prev, &k)) {
		struct bpfsvc_fe_val v;
		uint32_t n = 0;
		bool dirty = false;

		prev = &k;
		if (bpf_map_lookup_elem(m->fe, &k, &v))
			continue;
		/* A set cannot hold more backends than the slot map has room for. */
		if (v.count > m->max_slots) {
			v.count = 0;
			dirty = true;
		}
		if (v.count > cap_be) {
			struct bpfsvc_backend *p = realloc(be, v.count * sizeof(*be));

			if (!p) {
				err = -ENOMEM;
				goto cleanup;
			}
			be = p;
			cap_be = v.count;
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
	/* Lookups copy values into these structs: a map of another layout (another tool's, an
	 * older ABI) must not be read at all. */
	static const struct {
		const char *name;
		__u32 key_size, value_size;
	} want[] = {
		{ "bpfsvc_fe", sizeof(struct bpfsvc_fe_key), sizeof(struct bpfsvc_fe_val) },
		{ "bpfsvc_slots", sizeof(struct bpfsvc_slot_key), sizeof(struct bpfsvc_backend) },
		{ "bpfsvc_svcs", sizeof(__u32), sizeof(struct bpfsvc_svc_info) },
		{ "bpfsvc_stats", sizeof(__u32), sizeof(struct bpfsvc_stats) },
	};
	int *fds[] = { &m->fe, &m->slots, &m->svcs, &m->stats };
	__u32 *caps[] = { &m->max_frontends, &m->max_slots, &m->max_services, NULL };
	struct pindir dir;
	char path[PATH_MAX];
	size_t i;
	int ret;

	m->fe = m->slots = m->svcs = m->stats = -1;
	pindir_init(&dir);
	/* The same trust rules as the agent's: what list shows must be what bpfsvc wrote. */
	ret = pindir_open(&dir, pin_path, PINDIR_CLEANUP, err, errlen);
	if (ret == -ENOENT)
		snprintf(err, errlen, "open pinned maps in %s: %s (is the agent set up there?)",
			 pin_path, strerror(ENOENT));
	if (ret)
		goto cleanup;
	for (i = 0; i < 4; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		snprintf(path, sizeof(path), "%s/%s", dir.at, want[i].name);
		*fds[i] = bpf_obj_get(path);
		if (*fds[i] < 0) {
			ret = -errno;
			snprintf(err, errlen, "open pinned map %s/%s: %s (is the agent set up there?)",
				 pin_path, want[i].name, strerror(errno));
			goto cleanup;
		}
		if (bpf_obj_get_info_by_fd(*fds[i], &info, &len)) {
			ret = -errno;
			snprintf(err, errlen, "map info %s/%s: %s", pin_path, want[i].name,
				 strerror(errno));
			goto cleanup;
		}
		if (strcmp(info.name, want[i].name) || info.key_size != want[i].key_size ||
		    info.value_size != want[i].value_size) {
			ret = -EPROTO;
			snprintf(err, errlen,
				 "%s/%s is not a map of this bpfsvc (name %s, key %u, value %u bytes; "
				 "want %u, %u)",
				 pin_path, want[i].name, info.name, info.key_size, info.value_size,
				 want[i].key_size, want[i].value_size);
			goto cleanup;
		}
		if (caps[i])
			*caps[i] = info.max_entries;
	}
	m->ncpus = libbpf_num_possible_cpus();
cleanup:
	pindir_close(&dir);
	if (ret)
		pinned_close(m);
	return ret;
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

/* One name bpfsvc pins, and the object cleanup expects under it. */
struct pin {
	const char *name; /* in the pin directory */
	const char *obj;  /* the map's name, or the name of the link's program */
	bool link;
	int fd;
};

#define MAX_PINS 32

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
		if (errno == ENOENT)
			return -ENOENT;
		snprintf(err, errlen, "%s/%s: %s", pin_path, p->name, strerror(errno));
		return -errno;
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
		snprintf(err, errlen, "open %s/%s: %s; refusing, nothing removed", pin_path,
			 p->name, strerror(errno));
		return -errno;
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
	if (dir->parent_fd < 0 || !unlinkat(dir->parent_fd, dir->name, AT_REMOVEDIR))
		return 0;
	if (errno == ENOTEMPTY || errno == EEXIST) {
		res->dir_kept = true;
		return 0;
	}
	if (errno == EBUSY) /* a mount point */
		return 0;
	snprintf(err, errlen, "rmdir %s: %s", pin_path, strerror(errno));
	return -errno;
}

int datapath_cleanup(const char *pin_path, struct cleanup_result *res, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct sock_lb_bpf *skel = NULL;
	struct pin pins[MAX_PINS];
	size_t npins = 0, found = 0, i;
	struct bpf_map *map;
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
	/* The skeleton says which maps libbpf pins, and under which names. */
	oo.pin_root_path = dir.at;
	skel = sock_lb_bpf__open_opts(&oo);
	if (!skel) {
		ret = -errno;
		snprintf(err, errlen, "open BPF object: %s", strerror(errno));
		goto cleanup;
	}
	bpf_object__for_each_map(map, skel->obj) {
		if (bpf_map__pin_path(map))
			add_pin(pins, &npins, bpf_map__name(map), bpf_map__name(map), false);
	}
#define PIN_LINK(prog) add_pin(pins, &npins, LINK_PIN(prog), "bpfsvc_" #prog, true);
	PROGS(PIN_LINK)
#undef PIN_LINK
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
	sock_lb_bpf__destroy(skel);
	pindir_close(&dir);
	return ret;
}
