/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The pin directory, opened so that no other user can change what the agent pins into or
 * what cleanup removes. /sys/fs/bpf is often mode 1777: a directory another user made there
 * would let them unpin the links (detaching the datapath) or hold the agent's lock. So every
 * directory from the bpffs mount point down is reached without following symlinks and must
 * be owned by root (or our euid) and writable by nobody else (an ancestor may instead be
 * sticky, as the mount root is: others cannot remove or rename what root put in it).
 */
#ifndef BPFSVC_PINDIR_H
#define BPFSVC_PINDIR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

enum pindir_use {
	/* Create what is missing, 0700. The agent flock()s the directory, and anyone who can
	 * open it could hold that lock, so the pin directory must be closed to other users. */
	PINDIR_AGENT,
	/* Create nothing; a missing directory is -ENOENT. */
	PINDIR_CLEANUP,
};

struct pindir {
	int fd;			 /* the pin directory, O_RDONLY */
	int parent_fd;		 /* its parent (O_PATH); -1 when it is the bpffs mount root */
	char name[NAME_MAX + 1]; /* its name in parent_fd */
	/* "/proc/self/fd/N": the checked directory, for APIs that take a path (libbpf), so a
	 * path changed after the check cannot redirect them. */
	char at[32];
};

/* Open (and for the agent create) the pin directory path. 0, or negative errno with err
 * naming the directory and what is wrong with it. */
int pindir_open(struct pindir *d, const char *path, enum pindir_use use, char *err,
		size_t errlen);
/* Close the fds; fine on a pindir that failed to open or was only pindir_init()ed. */
void pindir_close(struct pindir *d);
void pindir_init(struct pindir *d);

/*
 * May st be trusted as the pin directory (pin_dir) or one of its ancestors on bpffs? 0, or
 * -EPERM with why saying what is wrong with path. euid: ours, who may own them besides root.
 */
int pindir_check(const struct stat *st, uid_t euid, bool pin_dir, enum pindir_use use,
		 const char *path, char *why, size_t len);

#endif
