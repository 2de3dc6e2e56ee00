// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>

#include <curl/curl.h>

#include "array.h"
#include "kube_client_int.h"

uint64_t kube_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct kube_client *c = userp;
	struct epoll_event ev = { .data.fd = s };

	(void)easy;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
		if ((size_t)s < c->nsocks)
			c->socks[s] = (struct kube_sock){};
		return 0;
	}
	if ((size_t)s >= c->nsocks) {
		size_t n = c->nsocks;
		struct kube_sock *p = array_grow(c->socks, sizeof(*p), &n, (size_t)s + 1, 64);

		if (!p)
			return -1;
		memset(p + c->nsocks, 0, (n - c->nsocks) * sizeof(*p));
		c->socks = p;
		c->nsocks = n;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev) && errno == ENOENT &&
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev))
		return -1;
	if (!c->socks[s].ours) {
		/* A connection (or one curl watches again): silent from now on counts. */
		c->socks[s] = (struct kube_sock){ .ours = true, .h.last_read_ns = kube_mono_ns() };
		kube_health_arm(c, c->socks[s].h.last_read_ns + c->o.health_idle_s * 1000000000ULL);
	}
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct kube_client *c = userp;
	struct itimerspec its = {};

	(void)multi;
	if (timeout_ms >= 0) {
		/* 0 means "now": the smallest non-zero expiry fires on the next loop turn. */
		its.it_value.tv_sec = timeout_ms / 1000;
		its.it_value.tv_nsec = timeout_ms % 1000 * 1000000 + (timeout_ms ? 0 : 1);
	}
	return timerfd_settime(c->timerfd, 0, &its, NULL) ? -1 : 0;
}

int kube_client_new(const struct kube_config *cfg, const struct kube_client_opts *o, int epfd,
		    struct kube_client **out, char *err, size_t errlen)
{
	struct kube_client *c;
	struct epoll_event ev = { .events = EPOLLIN };

	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, errlen, "libcurl initialisation failed");
		return -EIO;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = cfg;
	c->o = *o;
	c->epfd = epfd;
	c->exec_timerfd = -1;
	c->health_timerfd = -1;
	kube_cred_init(&c->cred, cfg);
	c->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (cfg->exec)
		c->exec_timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (!o->http1 && o->health_idle_s > 0 && o->health_timeout_s > 0) {
		c->health_timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (c->health_timerfd < 0 ||
		    epoll_ctl(epfd, EPOLL_CTL_ADD, c->health_timerfd,
			      &(struct epoll_event){ .events = EPOLLIN,
						     .data.fd = c->health_timerfd })) {
			int ret = -errno;

			snprintf(err, errlen, "cannot set up the connection health check: %s",
				 strerror(-ret));
			kube_client_free(c);
			return ret;
		}
	}
	c->multi = curl_multi_init();
	if (c->timerfd < 0 || (cfg->exec && c->exec_timerfd < 0) || !c->multi) {
		snprintf(err, errlen, "cannot set up the HTTP client");
		kube_client_free(c);
		return -ENOMEM;
	}
	ev.data.fd = c->timerfd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->timerfd, &ev) ||
	    (c->exec_timerfd >= 0 &&
	     epoll_ctl(epfd, EPOLL_CTL_ADD, c->exec_timerfd,
		       &(struct epoll_event){ .events = EPOLLIN, .data.fd = c->exec_timerfd }))) {
		int ret = -errno;

		snprintf(err, errlen, "epoll: %s", strerror(-ret));
		kube_client_free(c);
		return ret;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	*out = c;
	return 0;
}

static void req_free(struct kube_client *c, struct kube_req *r)
{
	if (!r)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else if (c->reqs == r)
		c->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	if (r->easy) {
		curl_multi_remove_handle(c->multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	curl_slist_free_all(r->headers);
	free(r);
}

void kube_client_free(struct kube_client *c)
{
	if (!c)
		return;
	while (c->reqs)
		req_free(c, c->reqs);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->timerfd >= 0)
		close(c->timerfd);
	if (c->exec_timerfd >= 0)
		close(c->exec_timerfd);
	if (c->health_timerfd >= 0)
		close(c->health_timerfd);
	free(c->socks);
	/* Kills a plugin still running, with whatever it started. */
	kube_cred_fini(&c->cred);
	free(c);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userp)
{
	struct kube_req *r = userp;
	long status = 0;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	/* A short count makes libcurl abort with CURLE_WRITE_ERROR. */
	return r->data(r->arg, status, ptr, size * nmemb) ? 0 : size * nmemb;
}

/* Retry-After in delta-seconds, clamped to [0, 60]; an HTTP date or junk counts as absent
 * (-1), so the caller's own backoff applies rather than a hot retry. */
static long parse_retry_after(const char *s)
{
	char *end;
	long v;

	while (*s == ' ' || *s == '\t')
		s++;
	v = strtol(s, &end, 10);
	if (end == s)
		return -1;
	while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
		end++;
	if (*end)
		return -1;
	return v < 0 ? 0 : v > 60 ? 60 : v;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userp)
{
	struct kube_req *r = userp;
	size_t len = size * nitems;
	static const char name[] = "retry-after:";

	if (len > sizeof(name) && !strncasecmp(buf, name, sizeof(name) - 1)) {
		char tmp[32];
		size_t n = len - (sizeof(name) - 1);

		if (n >= sizeof(tmp))
			n = sizeof(tmp) - 1;
		memcpy(tmp, buf + sizeof(name) - 1, n);
		tmp[n] = 0;
		r->retry_after = parse_retry_after(tmp);
	}
	return len;
}

/* One PEM item (certificate or key) from a path or from memory; each independently, as a
 * kubeconfig may give a certificate file with inline key data or the reverse. */
static void set_pem(CURL *e, CURLoption blob_opt, CURLoption path_opt, const char *path,
		    char *data, size_t len, unsigned int flags)
{
	struct curl_blob b = { data, len, flags };

	if (data)
		curl_easy_setopt(e, blob_opt, &b);
	else if (path)
		curl_easy_setopt(e, path_opt, path);
}

static void set_tls(struct kube_client *c, CURL *e)
{
	const struct kube_config *cfg = c->cfg;
	const struct kube_cred *cr = &c->cred;

	if (cfg->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	set_pem(e, CURLOPT_CAINFO_BLOB, CURLOPT_CAINFO, cfg->ca.path, cfg->ca.data, cfg->ca.len,
		CURL_BLOB_NOCOPY);
	curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	/* An exec plugin's certificate replaces the kubeconfig's. The plugin's may be replaced
	 * by a refresh while a transfer runs, so libcurl copies it; the kubeconfig's lives as
	 * long as the client. */
	if (cr->exec_cert) {
		set_pem(e, CURLOPT_SSLCERT_BLOB, CURLOPT_SSLCERT, NULL, cr->exec_cert,
			cr->exec_cert_len, CURL_BLOB_COPY);
		set_pem(e, CURLOPT_SSLKEY_BLOB, CURLOPT_SSLKEY, NULL, cr->exec_key,
			cr->exec_key_len, CURL_BLOB_COPY);
		return;
	}
	set_pem(e, CURLOPT_SSLCERT_BLOB, CURLOPT_SSLCERT, cfg->cert.path, cfg->cert.data,
		cfg->cert.len, CURL_BLOB_NOCOPY);
	set_pem(e, CURLOPT_SSLKEY_BLOB, CURLOPT_SSLKEY, cfg->key.path, cfg->key.data, cfg->key.len,
		CURL_BLOB_NOCOPY);
}

/* Credentials, TLS and into the multi handle: done when the request goes out, so a request
 * that waited for the exec plugin carries what it returned. */
static int req_attach(struct kube_client *c, struct kube_req *r)
{
	struct curl_slist *h;
	char *auth = NULL;
	int ret = -ENOMEM;

	curl_slist_free_all(r->headers);
	r->headers = curl_slist_append(NULL, "Accept: application/json");
	if (!r->headers)
		goto cleanup;
	if (c->cred.token) {
		if (asprintf(&auth, "Authorization: Bearer %s", c->cred.token) < 0) {
			auth = NULL;
			goto cleanup;
		}
		h = curl_slist_append(r->headers, auth);
		if (!h)
			goto cleanup;
		r->headers = h;
	}
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	set_tls(c, r->easy);
	ret = curl_multi_add_handle(c->multi, r->easy) ? -EIO : 0;
cleanup:
	if (auth)
		explicit_bzero(auth, strlen(auth));
	free(auth);
	return ret;
}

int kube_client_get(struct kube_client *c, const char *path_query, unsigned watch_timeout_s,
		    kube_data_fn data, kube_done_fn done, void *arg, struct kube_req **out)
{
	struct kube_req *r;
	char *url = NULL;
	int ret = -ENOMEM;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->c = c;
	r->data = data;
	r->done = done;
	r->arg = arg;
	r->retry_after = -1;
	r->easy = curl_easy_init();
	if (!r->easy || asprintf(&url, "%s%s", c->cfg->server, path_query) < 0) {
		url = NULL;
		goto fail;
	}
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A peer that vanished (no RST) is found in about 2 min, as with Go's dialer. */
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "bpfsvc");
	/* HTTP/2 as client-go: both watches and the lists share one connection. PIPEWAIT
	 * makes a request wait for a connection being set up rather than open a second. */
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION,
			 c->o.http1 ? (long)CURL_HTTP_VERSION_1_1 : (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(r->easy, CURLOPT_PIPEWAIT, 1L);
	if (watch_timeout_s) {
		/* No total timeout on a watch; a silent one is dead after the idle timeout,
		 * which by default outlasts the watch itself: bookmarks are best effort, and
		 * a watch with nothing to say is not broken. */
		long idle = c->o.idle_timeout_s ? c->o.idle_timeout_s : (long)watch_timeout_s + 30;

		curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_TIME, idle);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, c->o.request_timeout_s);
	}
	/* The exec plugin is running: the request waits for its answer rather than going out
	 * with a credential about to be replaced (or none, for a certain 401). */
	if (kube_cred_exec_running(&c->cred))
		r->queued = true;
	else if ((ret = req_attach(c, r)))
		goto fail;
	free(url);
	r->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = r;
	c->reqs = r;
	*out = r;
	return 0;
fail:
	free(url);
	req_free(c, r);
	return ret;
}

void kube_req_cancel(struct kube_client *c, struct kube_req *r)
{
	req_free(c, r);
}

/* A plugin run started: its pipe and pidfd join the event loop, its deadline the timerfd. */
static int exec_watch(struct kube_client *c, char *err, size_t errlen)
{
	struct itimerspec its = {};
	uint64_t dl = kube_cred_exec_deadline(&c->cred);
	int fds[2], n = kube_cred_exec_fds(&c->cred, fds), ret = 0;

	if (c->exec_watched)
		return 0;
	for (int i = 0; i < n && !ret; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };

		if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fds[i], &ev))
			ret = -errno;
	}
	its.it_value.tv_sec = (time_t)(dl / 1000000000ULL);
	its.it_value.tv_nsec = (long)(dl % 1000000000ULL);
	if (!ret && timerfd_settime(c->exec_timerfd, TFD_TIMER_ABSTIME, &its, NULL))
		ret = -errno;
	if (ret) {
		/* Unwatched, it would hold the queued requests forever. Closing its descriptors
		 * takes them out of epoll too. */
		kube_cred_exec_abort(&c->cred);
		snprintf(err, errlen, "exec plugin: cannot watch it: %s", strerror(-ret));
		return ret;
	}
	c->exec_watched = true;
	return 0;
}

int kube_client_refresh_cred(struct kube_client *c, uint64_t now_ns, bool force, char *err,
			     size_t errlen)
{
	int ret = kube_cred_refresh(&c->cred, now_ns, force, err, errlen);

	return ret == -EINPROGRESS ? exec_watch(c, err, errlen) : ret;
}

void kube_client_set_cred_report(struct kube_client *c, void (*fn)(void *arg, const char *err),
				 void *arg)
{
	c->cred_report = fn;
	c->cred_arg = arg;
}

static bool is_exec_fd(const struct kube_client *c, int fd)
{
	int fds[2], n = kube_cred_exec_fds(&c->cred, fds);

	if (fd >= 0 && fd == c->exec_timerfd)
		return true;
	for (int i = 0; i < n; i++)
		if (fds[i] == fd)
			return true;
	return false;
}

/* A request that cannot go out: its done callback says why, as for a failed transfer. */
static void req_fail(struct kube_client *c, struct kube_req *r, const char *why)
{
	struct kube_result res = { .curl_code = CURLE_AUTH_ERROR, .retry_after = -1 };

	snprintf(r->errbuf, sizeof(r->errbuf), "%s", why);
	res.error = r->errbuf;
	r->done(r->arg, &res);
	req_free(c, r);
}

/* The plugin run is over: requests that waited for it go out, with the new credential or
 * the previous one; with none at all they fail (and their owner backs off). */
static void release_queued(struct kube_client *c, int ret, const char *err)
{
	bool usable = c->cred.token || c->cred.exec_cert;
	char why[CURL_ERROR_SIZE];
	struct kube_req *r;

	snprintf(why, sizeof(why), "no credential: %s", ret ? err : "exec plugin gave none");
	for (r = c->reqs; r; r = r->next)
		if (r->queued) {
			r->queued = false;
			r->releasing = true;
		}
	/* One at a time from the head: a done callback may add or cancel requests. */
	for (;;) {
		for (r = c->reqs; r && !r->releasing; r = r->next)
			;
		if (!r)
			break;
		r->releasing = false;
		if (!usable)
			req_fail(c, r, why);
		else if (req_attach(c, r))
			req_fail(c, r, "cannot start the request: out of memory");
	}
}

static void exec_event(struct kube_client *c)
{
	struct itimerspec off = {};
	char err[512] = "";
	uint64_t ticks;
	int ret;

	/* Whichever descriptor woke us, the run is looked at as a whole; the timer only needs
	 * its expiry count consumed (EAGAIN when it was not the one). */
	if (read(c->exec_timerfd, &ticks, sizeof(ticks)) < 0)
		ticks = 0;
	ret = kube_cred_exec_event(&c->cred, err, sizeof(err));
	if (ret == -EINPROGRESS)
		return;
	c->exec_watched = false;
	timerfd_settime(c->exec_timerfd, 0, &off, NULL);
	if (ret && c->cred_report)
		c->cred_report(c->cred_arg, err);
	release_queued(c, ret, err);
}

int kube_client_timer_fd(const struct kube_client *c)
{
	return c->timerfd;
}

bool kube_client_owns_fd(const struct kube_client *c, int fd)
{
	return (fd >= 0 && (size_t)fd < c->nsocks && c->socks[fd].ours) || is_exec_fd(c, fd) ||
	       (fd >= 0 && fd == c->health_timerfd);
}

static void check_done(struct kube_client *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		struct kube_req *r = NULL;
		struct kube_result res;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		res.curl_code = m->data.result;
		res.status = 0;
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &res.status);
		res.retry_after = r->retry_after;
		if (r->dropped == DROP_UNRESPONSIVE && res.curl_code)
			snprintf(r->errbuf, sizeof(r->errbuf),
				 "HTTP/2 connection unresponsive: nothing read for %ld s, "
				 "a probe unanswered for %ld s; dropped", c->o.health_idle_s,
				 c->o.health_timeout_s);
		else if (r->dropped == DROP_UNPROBED && res.curl_code)
			snprintf(r->errbuf, sizeof(r->errbuf),
				 "HTTP/2 connection draining (GOAWAY or a refused stream: no probe "
				 "can go on it) and silent for %ld s; moved to a new one",
				 UNPROBED_FACTOR * (c->o.health_idle_s + c->o.health_timeout_s));
		res.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(m->data.result);
		/* Detach first: the callback may start a new request. */
		curl_multi_remove_handle(c->multi, r->easy);
		r->done(r->arg, &res);
		req_free(c, r);
	}
}


void kube_client_on_fd(struct kube_client *c, int fd, uint32_t epoll_events)
{
	int flags = 0, running;

	if (is_exec_fd(c, fd)) {
		exec_event(c);
		return;
	}
	if (fd == c->health_timerfd) {
		kube_health_check(c);
		check_done(c);
		return;
	}
	if (fd >= 0 && (size_t)fd < c->nsocks && c->socks[fd].ours &&
	    (epoll_events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		c->socks[fd].h.last_read_ns = kube_mono_ns();
		c->socks[fd].h.probe_ns = 0;
		c->socks[fd].probe_here = false;
	}
	if (epoll_events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (epoll_events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (epoll_events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	check_done(c);
}

void kube_client_on_timer(struct kube_client *c)
{
	uint64_t ticks;
	int running;

	if (read(c->timerfd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN)
		return;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}