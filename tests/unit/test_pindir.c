// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Which pin directories (and directories above them on bpffs) are trusted; the walk's
 * refusals that need no bpffs. tests/e2e/test_pin_safety.sh covers the rest on a real one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pindir.h"

static int chk(unsigned int uid, unsigned int mode, bool pin_dir, enum pindir_use use, char *why,
	       size_t len)
{
	struct stat st = { .st_uid = uid, .st_mode = S_IFDIR | mode };

	*why = 0;
	return pindir_check(&st, 1000, pin_dir, use, "/b/x", why, len);
}

int main(void)
{
	char why[512], tmpl[] = "/tmp/pindir-test.XXXXXX", path[512];
	struct pindir d;
	struct stat reg = { .st_uid = 0, .st_mode = S_IFREG | 0600 };
	int ret;

	check(!chk(0, 0700, true, PINDIR_AGENT, why, sizeof(why)), "root's 0700 pin dir: trusted");
	check(!chk(1000, 0700, true, PINDIR_AGENT, why, sizeof(why)),
	      "a pin dir of our own euid: trusted");
	ret = chk(65534, 0700, true, PINDIR_AGENT, why, sizeof(why));
	check(ret == -EPERM && !strcmp(why, "pin directory /b/x is owned by uid 65534, not root; refusing"),
	      "another user's pin dir: refused naming the owner (%s)", why);
	ret = chk(0, 0777, true, PINDIR_AGENT, why, sizeof(why));
	check(ret == -EPERM && !strcmp(why, "pin directory /b/x is writable by others (mode 0777); refusing"),
	      "a world-writable pin dir: refused naming the mode (%s)", why);
	ret = chk(0, 0770, true, PINDIR_CLEANUP, why, sizeof(why));
	check(ret == -EPERM && strstr(why, "writable by its group (mode 0770)"),
	      "a group-writable pin dir: refused, for cleanup too (%s)", why);
	ret = chk(0, 01777, true, PINDIR_CLEANUP, why, sizeof(why));
	check(ret == -EPERM, "a sticky pin dir is no better: others could plant entries in it");
	ret = chk(0, 0755, true, PINDIR_AGENT, why, sizeof(why));
	check(ret == -EPERM && strstr(why, "open to other users (mode 0755)") && strstr(why, "lock"),
	      "a pin dir others can open: refused for the agent, whose lock they could hold (%s)",
	      why);
	check(!chk(0, 0755, true, PINDIR_CLEANUP, why, sizeof(why)),
	      "  but fine for cleanup, which takes no lock");

	check(!chk(0, 01777, false, PINDIR_AGENT, why, sizeof(why)),
	      "a root-owned sticky ancestor (the bpffs root): trusted");
	check(!chk(0, 0755, false, PINDIR_AGENT, why, sizeof(why)), "a root-owned 0755 ancestor: trusted");
	ret = chk(0, 0777, false, PINDIR_AGENT, why, sizeof(why));
	check(ret == -EPERM && !strcmp(why, "directory above the pin directory /b/x is writable by others (mode 0777); refusing"),
	      "a world-writable ancestor without the sticky bit: refused (%s)", why);
	ret = chk(65534, 01777, false, PINDIR_AGENT, why, sizeof(why));
	check(ret == -EPERM && strstr(why, "owned by uid 65534"),
	      "a sticky ancestor another user owns: refused, they can remove what is in it");
	ret = pindir_check(&reg, 1000, true, PINDIR_AGENT, "/b/x", why, sizeof(why));
	check(ret == -EPERM && strstr(why, "not a directory"), "not a directory: refused");

	/* The walk, off bpffs. */
	if (!mkdtemp(tmpl)) {
		check(false, "mkdtemp: %s", strerror(errno));
		return check_summary();
	}
	ret = pindir_open(&d, tmpl, PINDIR_AGENT, why, sizeof(why));
	check(ret == -EINVAL && strstr(why, "is not on a bpf filesystem") && d.fd < 0,
	      "an existing directory off bpffs: refused (%s)", why);
	snprintf(path, sizeof(path), "%s/missing/pins", tmpl);
	ret = pindir_open(&d, path, PINDIR_AGENT, why, sizeof(why));
	check(ret == -ENOENT && strstr(why, "is not on a bpf filesystem") && access(path, F_OK),
	      "a missing path off bpffs: refused, nothing created (%s)", why);
	ret = pindir_open(&d, path, PINDIR_CLEANUP, why, sizeof(why));
	check(ret == -ENOENT, "  and for cleanup, nothing to do there (-ENOENT)");
	snprintf(path, sizeof(path), "/nonexistent/../..%s", tmpl);
	ret = pindir_open(&d, path, PINDIR_CLEANUP, why, sizeof(why));
	check(ret == -EINVAL && strstr(why, "'..' is not allowed"), "'..' in the path: refused (%s)",
	      why);
	ret = pindir_open(&d, "", PINDIR_CLEANUP, why, sizeof(why));
	check(ret == -EINVAL, "an empty path: refused");
	pindir_close(&d);
	pindir_close(NULL);
	rmdir(tmpl);
	return check_summary();
}
