// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The HTTP/2 connection health check of the API client (client-go's ReadIdleTimeout and
 * PingTimeout): a connection silent too long gets a probe stream, then is dropped. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>

#include "kube_client_int.h"


static bool health_on(const struct kube_client *c)
{
	return c->health_timerfd >= 0;
}

/* Wake the health check at `at` unless it is due sooner already. */
void kube_health_arm(struct kube_client *c, uint64_t at)
{
	struct itimerspec its = {};

	if (!health_on(c) || (c->health_next_ns && c->health_next_ns <= at))
		return;
	its.it_value.tv_sec = (time_t)(at / 1000000000ULL);
	its.it_value.tv_nsec = (long)(at % 1000000000ULL);
	if (!timerfd_settime(c->health_timerfd, TFD_TIMER_ABSTIME, &its, NULL))
		c->health_next_ns = at;
}

static int probe_data(void *arg, long status, const char *buf, size_t len)
{
	(void)arg;
	(void)status;
	(void)buf;
	(void)len;
	return 0;
}

static void probe_done(void *arg, const struct kube_result *r)
{
	struct kube_client *c = arg;

	(void)r;
	c->probe = NULL;
}

/* The socket a running transfer uses. CURLINFO_ACTIVESOCKET only knows a connection once
 * its transfer is over; the local port is known as soon as it is connected. */
static int req_sock(struct kube_client *c, struct kube_req *r)
{
	long port = 0;

	if (r->queued || curl_easy_getinfo(r->easy, CURLINFO_LOCAL_PORT, &port) || port <= 0)
		return -1;
	for (int s = 0; (size_t)s < c->nsocks; s++)
		if (c->socks[s].ours && c->socks[s].local_port == port)
			return s;
	return -1;
}

static void note_ports(struct kube_client *c)
{
	for (int s = 0; (size_t)s < c->nsocks; s++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (!c->socks[s].ours || c->socks[s].local_port)
			continue;
		if (!getsockname(s, (struct sockaddr *)&ss, &len))
			c->socks[s].local_port = ntohs(ss.ss_family == AF_INET6 ?
						       ((struct sockaddr_in6 *)&ss)->sin6_port :
						       ((struct sockaddr_in *)&ss)->sin_port);
	}
}

/* Which of curl's sockets carry HTTP/2 (probing an HTTP/1.1 connection is impossible: a
 * probe would open its own). */
static void mark_h2(struct kube_client *c, bool *h2)
{
	note_ports(c);
	for (struct kube_req *r = c->reqs; r; r = r->next) {
		int s = r == c->probe ? -1 : req_sock(c, r);
		long v = 0;

		if (s >= 0 && !curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &v) &&
		    v == CURL_HTTP_VERSION_2_0)
			h2[s] = true;
	}
}

/* Still the TCP connection we noted? curl closes sockets it no longer needs and the number
 * may be reused before we hear of it: never shut down something else. */
static bool same_conn(const struct kube_client *c, int s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type = 0;
	socklen_t tlen = sizeof(type);
	long port;

	if (getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &tlen) || type != SOCK_STREAM ||
	    getsockname(s, (struct sockaddr *)&ss, &len))
		return false;
	port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
						((struct sockaddr_in *)&ss)->sin_port);
	return port == c->socks[s].local_port;
}

/* Drop the connection on socket s: its transfers fail at once (curl reads an error) and
 * their owners retry on a new connection. The socket stays curl's to close. */
static void drop_conn(struct kube_client *c, int s, int why)
{
	c->socks[s].dropped = true;
	if (!same_conn(c, s))
		return;
	for (struct kube_req *r = c->reqs; r; r = r->next)
		if (req_sock(c, r) == s)
			r->dropped = why;
	shutdown(s, SHUT_RDWR);
}

enum kube_health_action kube_health_step(struct kube_conn_health *h, uint64_t now_ns,
					 uint64_t idle_ns, uint64_t timeout_ns, uint64_t *next_ns)
{
	enum kube_health_action act = KUBE_HEALTH_WAIT;
	uint64_t due;

	if (h->probe_ns && now_ns >= h->probe_ns + timeout_ns)
		return KUBE_HEALTH_DROP;
	if (!h->probe_ns && now_ns >= h->last_read_ns + idle_ns) {
		h->probe_ns = now_ns;
		act = KUBE_HEALTH_PROBE;
	}
	due = h->probe_ns ? h->probe_ns + timeout_ns : h->last_read_ns + idle_ns;
	if (due < *next_ns)
		*next_ns = due;
	return act;
}

/* client-go's HTTP/2 health check (ReadIdleTimeout 30 s, PingTimeout 15 s). libcurl's
 * PING (curl_easy_upkeep) only reaches connections of curl_easy_perform handles, not of a
 * multi handle, so the probe is a stream on the same connection (GET /version, which every
 * client may read): any frame back proves the connection alive. */
void kube_health_check(struct kube_client *c)
{
	uint64_t now = kube_mono_ns(), idle = c->o.health_idle_s * 1000000000ULL,
		 timeout = c->o.health_timeout_s * 1000000000ULL, next = UINT64_MAX, ticks,
		 unprobed = UNPROBED_FACTOR * (idle + timeout);
	int probe_sock;
	bool *h2 = NULL, want_probe = false;

	if (read(c->health_timerfd, &ticks, sizeof(ticks)) < 0)
		ticks = 0;
	c->health_next_ns = 0;
	h2 = calloc(c->nsocks ? c->nsocks : 1, sizeof(*h2));
	if (!h2) {
		kube_health_arm(c, now + 1000000000ULL);
		return;
	}
	mark_h2(c, h2);
	probe_sock = c->probe ? req_sock(c, c->probe) : -1;
	for (int s = 0; (size_t)s < c->nsocks; s++) {
		struct kube_sock *k = &c->socks[s];

		if (!k->ours || k->dropped)
			continue;
		if (!h2[s]) {
			/* HTTP/1.1, or no response yet: looked at again later. */
			next = next < now + idle ? next : now + idle;
			continue;
		}
		if (s == probe_sock)
			k->probe_here = true;
		switch (kube_health_step(&k->h, now, idle, timeout, &next)) {
		case KUBE_HEALTH_DROP:
			/* Unanswered only if the probe went there; else it could not be probed. */
			if (k->probe_here)
				drop_conn(c, s, DROP_UNRESPONSIVE);
			else if (now >= k->h.last_read_ns + unprobed)
				drop_conn(c, s, DROP_UNPROBED);
			else if (k->h.last_read_ns + unprobed < next)
				next = k->h.last_read_ns + unprobed;
			break;
		case KUBE_HEALTH_PROBE:
			want_probe = true;
			break;
		case KUBE_HEALTH_WAIT:
			break;
		}
	}
	free(h2);
	if (want_probe && !c->probe &&
	    kube_client_get(c, "/version", 0, probe_data, probe_done, c, &c->probe))
		c->probe = NULL;
	if (next != UINT64_MAX)
		kube_health_arm(c, next);
}
