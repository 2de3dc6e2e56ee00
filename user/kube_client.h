/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HTTPS GETs to the API server over libcurl's multi-socket interface, driven by the agent's
 * epoll loop: curl's sockets and its timer (a timerfd) are registered in the agent's epoll set,
 * so lists and long-lived watches share the one thread without blocking it.
 */
#ifndef BPFSVC_KUBE_CLIENT_H
#define BPFSVC_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube_cred.h"
#include "kubeconfig.h"

struct kube_client;
struct kube_req;

struct kube_result {
	int curl_code;	   /* CURLcode; 0 is a complete transfer */
	long status;	   /* HTTP status, 0 if none was received */
	long retry_after;  /* Retry-After in seconds, -1 if absent */
	const char *error; /* curl's message when curl_code != 0 */
};

/* Body bytes as they arrive (status is the HTTP status of the response). Return 0 to go on,
 * or a negative errno to abort the transfer (done then reports a write error). */
typedef int (*kube_data_fn)(void *arg, long status, const char *buf, size_t len);
/* The request ended; it is freed after this returns (do not cancel it from here). */
typedef void (*kube_done_fn)(void *arg, const struct kube_result *r);

struct kube_client_opts {
	long request_timeout_s; /* whole list page */
	long idle_timeout_s;	/* a watch with no byte for this long is dead; 0: the watch's
				 * own timeoutSeconds + 30 s, so no bookmark is needed */
	bool http1;		/* HTTP/1.1 only; otherwise HTTP/2 when ALPN offers it */
	/* HTTP/2 connection health, as client-go's: a connection that read nothing for
	 * health_idle_s gets a probe stream; silent health_timeout_s more, it is dropped and
	 * every transfer on it fails (and is retried). 0 disables. */
	long health_idle_s, health_timeout_s;
};

int kube_client_new(const struct kube_config *cfg, const struct kube_client_opts *o, int epfd,
		    struct kube_client **out, char *err, size_t errlen);
void kube_client_free(struct kube_client *c);

/* GET server + path_query. watch_timeout_s > 0: a watch the server ends after that long; no
 * total timeout, the idle timeout instead. 0: a request with the request timeout. */
int kube_client_get(struct kube_client *c, const char *path_query, unsigned watch_timeout_s,
		    kube_data_fn data, kube_done_fn done, void *arg, struct kube_req **out);
/* Abort a request; none of its callbacks run afterwards. */
void kube_req_cancel(struct kube_client *c, struct kube_req *r);

/* Refresh the credential (token file age, exec plugin expiry; force after a 401). An exec
 * plugin runs in the background (its pipe in the event loop): requests made meanwhile wait
 * for its answer. Returns 0 (done or started) or -errno with err set. */
int kube_client_refresh_cred(struct kube_client *c, uint64_t now_ns, bool force, char *err,
			     size_t errlen);
/* Who hears that a background exec plugin run failed (err says why, never its output). */
void kube_client_set_cred_report(struct kube_client *c, void (*fn)(void *arg, const char *err),
				 void *arg);

/* Event loop glue: the timerfd to watch, whether an fd is the client's (curl's sockets, the
 * exec plugin's pipe, pidfd and deadline timer, the health check timer), and the handlers. */
int kube_client_timer_fd(const struct kube_client *c);
bool kube_client_owns_fd(const struct kube_client *c, int fd);
void kube_client_on_fd(struct kube_client *c, int fd, uint32_t epoll_events);
void kube_client_on_timer(struct kube_client *c);

/* The HTTP/2 health check of one connection (pure; exposed for its unit test). */
struct kube_conn_health {
	uint64_t last_read_ns; /* when it last had something to read */
	uint64_t probe_ns;     /* when a probe went out for this silence, 0: none yet */
};

enum kube_health_action {
	KUBE_HEALTH_WAIT,  /* nothing to do now */
	KUBE_HEALTH_PROBE, /* silent for idle_ns: send a probe on it */
	KUBE_HEALTH_DROP,  /* still silent timeout_ns after the probe: drop it */
};

/* What to do with a connection at now_ns; lowers *next_ns to when it needs looking at again
 * (unchanged after DROP). The answer gets timeout_ns from the probe, however late the check
 * ran. Any read resets it: last_read_ns = now, probe_ns = 0. */
enum kube_health_action kube_health_step(struct kube_conn_health *h, uint64_t now_ns,
					 uint64_t idle_ns, uint64_t timeout_ns, uint64_t *next_ns);

#endif
