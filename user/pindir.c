// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "pindir.h"

int pindir_check(const struct stat *st, uid_t euid, bool pin_dir, enum pindir_use use,
		 const char *path, char *why, size_t len)
{
	const char *what = pin_dir ? "pin directory" : "directory above the pin directory";
	unsigned int mode = st->st_mode & 07777;
	const char *who = (mode & S_IWOTH) ? "others" : "its group";

	if (!S_ISDIR(st->st_mode)) {
		snprintf(why, len, "%s %s is not a directory; refusing", what, path);
		return -EPERM;
	}
	if (st->st_uid != 0 && st->st_uid != euid) {
		snprintf(why, len, "%s %s is owned by uid %u, not root; refusing", what, path,
			 (unsigned int)st->st_uid);
		return -EPERM;
	}
	/* In a sticky directory others may add entries but not remove or rename ours; that is
	 * enough above the pin directory, not in it (they could plant a map we would adopt). */
	if ((mode & (S_IWGRP | S_IWOTH)) && (pin_dir || !(mode & S_ISVTX))) {
		snprintf(why, len, "%s %s is writable by %s (mode %04o); refusing", what, path, who,
			 mode);
		return -EPERM;
	}
	if (pin_dir && use == PINDIR_AGENT && (mode & (S_IRWXG | S_IRWXO))) {
		snprintf(why, len,
			 "pin directory %s is open to other users (mode %04o): any of them could "
			 "hold its lock and keep the agent from starting; refusing (chmod 0700 it)",
			 path, mode);
		return -EPERM;
	}
	return 0;
}

void pindir_init(struct pindir *d)
{
	d->fd = d->parent_fd = -1;
	d->name[0] = 0;
	d->at[0] = 0;
}

void pindir_close(struct pindir *d)
{
	if (!d)
		return;
	if (d->fd >= 0)
		close(d->fd);
	if (d->parent_fd >= 0)
		close(d->parent_fd);
	pindir_init(d);
}

static bool on_bpffs(int fd)
{
	struct statfs st;

	return !fstatfs(fd, &st) && st.f_type == BPF_FS_MAGIC;
}

/* The next path component after p, skipping separators and "."; NULL at the end. */
static const char *next_comp(const char *p, size_t *n)
{
	for (;;) {
		p += strspn(p, "/");
		*n = strcspn(p, "/");
		if (*n == 1 && *p == '.') {
			p++;
			continue;
		}
		return *n ? p : NULL;
	}
}

/* A bpffs reached through a symlink into the middle of it would skip the checks of the
 * directories between its mount point and there: the first bpffs directory on the way must
 * be a mount root, whose parent lies on another filesystem. */
static bool mount_root(int fd)
{
	struct stat a, b;
	int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	bool ret;

	if (up < 0)
		return false;
	ret = !fstat(fd, &a) && !fstat(up, &b) && a.st_dev != b.st_dev;
	close(up);
	return ret;
}

/* One step below the mount point: never through a symlink; mkdir 0700 if asked. */
static int step_nofollow(int cur, const char *name, bool create, bool *created)
{
	int fd;

	*created = false;
	fd = openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT || !create)
		return fd >= 0 ? fd : -errno;
	if (!mkdirat(cur, name, 0700))
		*created = true;
	else if (errno != EEXIST)
		return -errno;
	fd = openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* The umask may have taken bits from 0700; the owner needs them all. */
static int fix_mode(int fd)
{
	int rfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (rfd < 0)
		return -errno;
	if (fchmod(rfd, 0700))
		ret = -errno;
	close(rfd);
	return ret;
}

static int absolute(const char *path, char *buf, size_t len)
{
	char cwd[PATH_MAX];

	if (!*path)
		return -EINVAL;
	if (*path == '/') {
		if ((size_t)snprintf(buf, len, "%s", path) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	if (*cwd != '/')
		return -ENOENT;
	if ((size_t)snprintf(buf, len, "%s/%s", cwd, path) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* One walk down a pin path, and where to say what went wrong. */
struct walk {
	const char *path;	/* as given */
	char shown[PATH_MAX];	/* the absolute path up to the current component */
	enum pindir_use use;
	char *err;
	size_t errlen;
};

/* Above the bpffs, symlinks are the system's layout (/var/run -> /run): follow them. */
static int step_above(struct walk *w, int cur, const char *name, bool *bpf)
{
	int fd = openat(cur, name, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		if (e == ENOENT && w->use == PINDIR_CLEANUP)
			return -ENOENT;
		if (e == ENOENT)
			snprintf(w->err, w->errlen,
				 "pin path %s is not on a bpf filesystem (%s does not exist; "
				 "mount -t bpf bpf DIR)",
				 w->path, w->shown);
		else
			snprintf(w->err, w->errlen, "pin path %s: %s: %s", w->path, w->shown,
				 strerror(e));
		return -e;
	}
	*bpf = on_bpffs(fd);
	if (*bpf && !mount_root(fd)) {
		close(fd);
		snprintf(w->err, w->errlen,
			 "pin path %s reaches a bpf filesystem below its mount point through a "
			 "symlink (at %s); refusing: give the real path",
			 w->path, w->shown);
		return -EPERM;
	}
	return fd;
}

/* On the bpffs: never through a symlink, never off it. */
static int step_below(struct walk *w, int cur, const char *name, bool last, bool *created)
{
	struct stat st;
	int fd = step_nofollow(cur, name, w->use == PINDIR_AGENT, created);

	if (fd == -ENOENT && w->use == PINDIR_CLEANUP)
		return fd;
	if (fd == -ENOTDIR && !fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) &&
	    S_ISLNK(st.st_mode)) {
		snprintf(w->err, w->errlen, "%s %s is a symlink; refusing",
			 last ? "pin directory" : "directory above the pin directory", w->shown);
		return -EPERM;
	}
	if (fd < 0) {
		snprintf(w->err, w->errlen, "pin path %s: %s: %s", w->path, w->shown,
			 strerror(-fd));
		return fd;
	}
	if (!on_bpffs(fd)) {
		close(fd);
		snprintf(w->err, w->errlen, "pin path %s: %s is not on a bpf filesystem; refusing",
			 w->path, w->shown);
		return -EPERM;
	}
	return fd;
}

/* Check a directory on the bpffs (created: by us, just now). */
static int vet(struct walk *w, int fd, bool last, bool created)
{
	struct stat st;
	int ret;

	if (created && (ret = fix_mode(fd))) {
		snprintf(w->err, w->errlen, "chmod %s: %s", w->shown, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st)) {
		int e = errno;

		snprintf(w->err, w->errlen, "stat %s: %s", w->shown, strerror(e));
		return -e;
	}
	return pindir_check(&st, geteuid(), last, w->use, w->shown, w->err, w->errlen);
}

int pindir_open(struct pindir *d, const char *path, enum pindir_use use, char *err,
		size_t errlen)
{
	struct walk w = { .path = path, .use = use, .err = err, .errlen = errlen };
	char abs[PATH_MAX], name[NAME_MAX + 1];
	const char *c, *next;
	size_t n, nn = 0;
	int cur = -1, fd = -1, parent = -1, ret;
	bool bpf = false, entered, created;

	pindir_init(d);
	ret = absolute(path, abs, sizeof(abs));
	if (ret) {
		snprintf(err, errlen, "pin path %s: %s", path, strerror(-ret));
		return ret;
	}
	/* ".." would climb back out of what was checked. */
	for (c = next_comp(abs, &n); c; c = next_comp(c + n, &n)) {
		if (n == 2 && !strncmp(c, "..", 2)) {
			snprintf(err, errlen, "pin path %s: '..' is not allowed in it", path);
			return -EINVAL;
		}
	}
	cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0) {
		ret = -errno;
		snprintf(err, errlen, "open /: %s", strerror(errno));
		goto cleanup;
	}
	for (c = next_comp(abs, &n); c; c = next, n = nn) {
		next = next_comp(c + n, &nn);
		snprintf(w.shown, sizeof(w.shown), "%.*s", (int)(c + n - abs), abs);
		if (n > NAME_MAX) {
			ret = -ENAMETOOLONG;
			snprintf(err, errlen, "pin path %s: %s", w.shown, strerror(-ret));
			goto cleanup;
		}
		memcpy(name, c, n);
		name[n] = 0;
		entered = created = false;
		if (!bpf) {
			fd = step_above(&w, cur, name, &entered);
			bpf = entered;
		} else {
			fd = step_below(&w, cur, name, !next, &created);
		}
		if (fd < 0) {
			ret = fd;
			fd = -1;
			goto cleanup;
		}
		if (bpf && (ret = vet(&w, fd, !next, created)))
			goto cleanup;
		if (parent >= 0)
			close(parent);
		/* The mount root's parent is not ours to remove it from. */
		parent = entered ? -1 : cur;
		if (entered)
			close(cur);
		cur = fd;
		fd = -1;
		snprintf(d->name, sizeof(d->name), "%s", name);
	}
	if (!bpf) {
		ret = -EINVAL;
		snprintf(err, errlen,
			 "pin path %s is not on a bpf filesystem (mount -t bpf bpf DIR)", path);
		goto cleanup;
	}
	d->fd = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		goto cleanup;
	}
	d->parent_fd = parent;
	parent = -1;
	snprintf(d->at, sizeof(d->at), "/proc/self/fd/%d", d->fd);
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (cur >= 0)
		close(cur);
	if (parent >= 0)
		close(parent);
	if (ret)
		pindir_close(d);
	return ret;
}
