/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The client's insides, shared by kube_client.c (requests, credentials, the event loop glue)
 * and kube_client_health.c (the HTTP/2 connection health check). */
#ifndef BPFSVC_KUBE_CLIENT_INT_H
#define BPFSVC_KUBE_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "kube_client.h"

struct kube_req {
	struct kube_client *c;
	struct kube_req *prev, *next; /* the client's open requests */
	CURL *easy;
	struct curl_slist *headers;
	kube_data_fn data;
	kube_done_fn done;
	void *arg;
	long retry_after;
	bool queued;	/* waiting for the exec plugin's credential, not in the multi handle */
	bool releasing; /* the credential came: being attached (or failed) now */
	/* Its connection was dropped by the health check: say why, not curl's error. */
	enum { DROP_NONE, DROP_UNRESPONSIVE, DROP_UNPROBED } dropped;
	char errbuf[CURL_ERROR_SIZE];
};

/* curl puts no new stream on a connection that got GOAWAY or had a stream refused, so no
 * probe can reach it while its watches run to their end. Silent this many times idle +
 * timeout (3 min by default, three bookmarks of a real API server), it is dropped anyway:
 * its watches resume on a new connection, which is what GOAWAY asks for. */
#define UNPROBED_FACTOR 4

/* One of curl's sockets (a connection with a transfer on it). */
struct kube_sock {
	bool ours;		/* in epfd for curl */
	bool dropped;		/* failed the health check, shut down */
	bool probe_here;	/* this silence's probe went out on it */
	long local_port;	/* ties it to its transfers; 0: not looked up yet */
	struct kube_conn_health h;
};

struct kube_client {
	const struct kube_config *cfg;
	struct kube_client_opts o;
	struct kube_cred cred;
	CURLM *multi;
	int epfd;
	int timerfd;
	struct kube_sock *socks; /* by fd */
	size_t nsocks;
	int health_timerfd;	 /* next health check, -1 when disabled */
	uint64_t health_next_ns; /* when it is armed for, 0: disarmed */
	struct kube_req *probe;	 /* the health probe in flight */
	struct kube_req *reqs;
	int exec_timerfd;   /* the exec plugin's deadline, -1 without a plugin */
	bool exec_watched;  /* a plugin run's descriptors are in epfd */
	void (*cred_report)(void *arg, const char *err);
	void *cred_arg;
};

uint64_t kube_mono_ns(void);
/* Wake the health check at `at` unless it is due sooner already. */
void kube_health_arm(struct kube_client *c, uint64_t at);
/* The health check timer fired: probe silent connections, drop unresponsive ones. */
void kube_health_check(struct kube_client *c);

#endif
