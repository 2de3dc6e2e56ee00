// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent: one thread, one epoll loop. Sources feed objects, the model turns them into the
 * desired state, sync writes the difference. Idle means asleep in epoll_wait.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include "agent.h"
#include "log.h"
#include "model.h"
#include "sock_lb.h"
#include "source.h"
#include "sync.h"

/* How long replaced backend sets stay readable: far longer than any program run holds a
 * looked-up set id, short enough that churn does not pile up slots. */
#define SLOT_GRACE_NS (1000ULL * 1000 * 1000)

struct agent {
	const struct agent_opts *o;
	struct datapath *dp;
	struct sync sync;
	int epfd, sigfd, inofd, timerfd;
	int ino_wd;
	char dir[PATH_MAX];
	const char *base; /* file name inside dir, what inotify reports */
	uint64_t generation;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void model_warn(void *arg, const char *kind, const char *ns, const char *name,
		       const char *why)
{
	(void)arg;
	log_warn("object skipped", "kind=%s object=%s/%s reason=\"%s\"", kind, ns, name, why);
}

static void arm_reaper(struct agent *a, uint64_t due_ns)
{
	struct itimerspec its = {};

	if (due_ns) {
		its.it_value.tv_sec = (time_t)(due_ns / 1000000000ULL);
		its.it_value.tv_nsec = (long)(due_ns % 1000000000ULL);
	}
	timerfd_settime(a->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void reap(struct agent *a, bool all)
{
	uint64_t next, n = sync_reap(&a->sync, now_ns(), all, &next);

	if (n)
		log_debug("old backend sets reclaimed", "slots=%llu", (unsigned long long)n);
	arm_reaper(a, next);
}

/* Read the file and bring the maps to it. A file that does not parse changes nothing. */
static int reload(struct agent *a, const char *why)
{
	struct model_opts mo = { .node_name = a->o->node_name };
	struct model_state want = {};
	struct sync_result res;
	json_t *objs = NULL;
	char err[512] = "";
	uint64_t t0 = now_ns(), t1, t2;
	int ret;

	ret = source_file_load(a->o->from_file, &objs, err, sizeof(err));
	if (ret) {
		log_err("cannot read objects, keeping the current state", "file=%s error=\"%s\"",
			a->o->from_file, err);
		return ret;
	}
	ret = model_build(objs, &mo, model_warn, a, &want);
	if (ret) {
		log_err("cannot build the desired state", "error=\"%s\"", strerror(-ret));
		goto cleanup;
	}
	t1 = now_ns();
	ret = sync_apply(&a->sync, &want, t1, &res);
	t2 = now_ns();
	a->generation++;
	log_info("sync done",
		 "gen=%llu reason=%s frontends=%zu added=%u updated=%u removed=%u unchanged=%u "
		 "failed=%u writes=%llu parse_us=%llu sync_us=%llu",
		 (unsigned long long)a->generation, why, a->sync.n, res.added, res.updated,
		 res.removed, res.unchanged, res.failed, (unsigned long long)res.writes,
		 (unsigned long long)((t1 - t0) / 1000), (unsigned long long)((t2 - t1) / 1000));
	if (res.failed)
		log_err("some frontends could not be written", "failed=%u (map full?)", res.failed);
	reap(a, false);
cleanup:
	model_state_free(&want);
	json_decref(objs);
	return ret;
}

static int watch_file(struct agent *a)
{
	char *slash;

	snprintf(a->dir, sizeof(a->dir), "%s", a->o->from_file);
	slash = strrchr(a->dir, '/');
	if (slash) {
		*slash = 0;
		a->base = a->o->from_file + (slash - a->dir) + 1;
		if (!*a->dir)
			snprintf(a->dir, sizeof(a->dir), "/");
	} else {
		snprintf(a->dir, sizeof(a->dir), ".");
		a->base = a->o->from_file;
	}
	/* Watch the directory: editors and `kubectl ... > f.tmp && mv` replace the file, which
	 * a watch on the file itself would lose. */
	a->ino_wd = inotify_add_watch(a->inofd, a->dir, IN_CLOSE_WRITE | IN_MOVED_TO);
	return a->ino_wd < 0 ? -errno : 0;
}

/* True if the pending inotify events name our file. */
static bool file_changed(struct agent *a)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	ssize_t len;

	while ((len = read(a->inofd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if (ev->len && !strcmp(ev->name, a->base))
				hit = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return hit;
}

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int loop(struct agent *a)
{
	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(a->epfd, evs, 8, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == a->sigfd) {
				struct signalfd_siginfo si;

				if (read(a->sigfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					reload(a, "sighup");
					continue;
				}
				log_info("exiting, datapath stays pinned and serving",
					 "signal=%s", strsignal((int)si.ssi_signo));
				return 0;
			} else if (fd == a->inofd) {
				if (file_changed(a))
					reload(a, "file-changed");
			} else if (fd == a->timerfd) {
				uint64_t ticks;

				if (read(a->timerfd, &ticks, sizeof(ticks)) == sizeof(ticks))
					reap(a, false);
			}
		}
	}
}

int agent_run(const struct agent_opts *o)
{
	struct agent a = { .o = o, .epfd = -1, .sigfd = -1, .inofd = -1, .timerfd = -1 };
	struct map_sizes sizes = { o->max_frontends, o->max_services, o->max_slots, o->max_revnat };
	char err[512] = "";
	uint64_t gc = 0;
	sigset_t mask;
	int ret;

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	ret = datapath_open(o->pin_path, o->cgroup, &sizes, &a.dp, err, sizeof(err));
	if (ret) {
		log_err("cannot set up the datapath", "error=\"%s\"", err);
		goto cleanup;
	}
	ret = sync_init(&a.sync, &datapath_sync_ops, (void *)datapath_maps(a.dp),
			datapath_maps(a.dp)->max_services, SLOT_GRACE_NS);
	if (ret)
		goto cleanup;
	ret = datapath_adopt(a.dp, &a.sync, &gc);
	if (ret) {
		log_err("cannot read the pinned maps", "error=\"%s\"", strerror(-ret));
		goto cleanup;
	}
	log_info("datapath ready", "pin_path=%s cgroup=%s adopted_frontends=%zu gc_slots=%llu",
		 o->pin_path, o->cgroup, a.sync.n, (unsigned long long)gc);

	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	a.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a.inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	a.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a.epfd < 0 || a.sigfd < 0 || a.inofd < 0 || a.timerfd < 0) {
		ret = -errno;
		log_err("cannot set up the event loop", "error=\"%s\"", strerror(errno));
		goto cleanup;
	}
	ret = watch_file(&a);
	if (ret) {
		log_err("cannot watch the file", "dir=%s error=\"%s\"", a.dir, strerror(-ret));
		goto cleanup;
	}
	if ((ret = epoll_add(a.epfd, a.sigfd)) || (ret = epoll_add(a.epfd, a.inofd)) ||
	    (ret = epoll_add(a.epfd, a.timerfd)))
		goto cleanup;
	/* A bad file at start is not fatal: what is pinned keeps serving until it is fixed. */
	reload(&a, "start");
	ret = loop(&a);
	/* Reclaim what we can; anything left is collected by the next agent's adoption. */
	reap(&a, true);
cleanup:
	if (a.timerfd >= 0)
		close(a.timerfd);
	if (a.inofd >= 0)
		close(a.inofd);
	if (a.sigfd >= 0)
		close(a.sigfd);
	if (a.epfd >= 0)
		close(a.epfd);
	sync_fini(&a.sync);
	datapath_close(a.dp);
	return ret;
}
