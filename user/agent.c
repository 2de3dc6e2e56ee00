// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent: one thread, one epoll loop. A source (source.h: a file, or list+watch of the API
 * server) reports objects; reconcile turns them into the desired state and writes the
 * difference to the maps. Idle means asleep in epoll_wait.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include "agent.h"
#include "log.h"
#include "reconcile.h"
#include "source.h"

struct agent {
	struct reconcile *rc;
	struct source *src;
	int epfd, sigfd, timerfd;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* One timerfd serves every deadline: the source's (API retries, credentials) and
 * reconcile's (slot reaping, retries of failed writes, the latency summary). */
static void arm_timer(struct agent *a)
{
	uint64_t due = reconcile_next_deadline(a->rc), src = a->src->ops->next_deadline(a->src);
	struct itimerspec its = {};

	if (src && (!due || src < due))
		due = src;
	if (due) {
		its.it_value.tv_sec = (time_t)(due / 1000000000ULL);
		its.it_value.tv_nsec = (long)(due % 1000000000ULL);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(a->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static void on_signal(struct agent *a, bool *stop)
{
	struct signalfd_siginfo si;

	if (read(a->sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo != SIGHUP) {
		log_info("exiting, datapath stays pinned and serving", "signal=%s",
			 strsignal((int)si.ssi_signo));
		*stop = true;
	} else {
		a->src->ops->refresh(a->src);
	}
}

static void on_timer(struct agent *a)
{
	uint64_t ticks, now = now_ns();

	if (read(a->timerfd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	a->src->ops->tick(a->src, now);
	reconcile_tick(a->rc, now);
}

static int loop(struct agent *a)
{
	bool stop = false;

	while (!stop) {
		struct epoll_event evs[16];
		int n;

		arm_timer(a);
		n = epoll_wait(a->epfd, evs, 16, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !stop; i++) {
			int fd = evs[i].data.fd;

			if (fd == a->sigfd)
				on_signal(a, &stop);
			else if (fd == a->timerfd)
				on_timer(a);
			else
				a->src->ops->on_ready(a->src, fd, evs[i].events);
		}
	}
	return 0;
}

/* The loop's own descriptors: epoll, signals, the timer. */
static int loop_setup(struct agent *a, const sigset_t *mask)
{
	int ret;

	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->epfd < 0)
		return -errno;
	a->sigfd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->sigfd < 0)
		return -errno;
	a->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->timerfd < 0)
		return -errno;
	if ((ret = epoll_add(a->epfd, a->sigfd)) || (ret = epoll_add(a->epfd, a->timerfd)))
		return ret;
	return 0;
}

int agent_run(const struct agent_opts *o)
{
	struct agent a = { .epfd = -1, .sigfd = -1, .timerfd = -1 };
	struct reconcile *rc = NULL;
	sigset_t mask;
	int ret;

	srand((unsigned)(now_ns() ^ (uint64_t)getpid()));
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* A closed API connection must not kill us. */
	signal(SIGPIPE, SIG_IGN);

	/* The source's configuration errors surface before anything is attached or pinned. */
	ret = source_open(o, &a.src);
	if (ret)
		goto cleanup;
	ret = reconcile_open(o, a.src, &rc);
	if (ret)
		goto cleanup;
	a.rc = rc;
	ret = loop_setup(&a, &mask);
	if (ret) {
		log_err("cannot set up the event loop", "error=\"%s\"", strerror(-ret));
		goto cleanup;
	}
	ret = a.src->ops->start(a.src, a.epfd, reconcile_sink(rc), now_ns());
	if (ret)
		goto cleanup;
	ret = loop(&a);
	reconcile_stop(rc);
cleanup:
	if (a.src)
		a.src->ops->free(a.src);
	if (a.timerfd >= 0)
		close(a.timerfd);
	if (a.sigfd >= 0)
		close(a.sigfd);
	if (a.epfd >= 0)
		close(a.epfd);
	reconcile_close(rc);
	return ret;
}
