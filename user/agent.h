/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef BPFSVC_AGENT_H
#define BPFSVC_AGENT_H

#include <stdbool.h>
#include <stdint.h>

struct agent_opts {
	const char *from_file;	/* Kubernetes objects, JSON or YAML; NULL: watch the API server */
	const char *kubeconfig; /* colon-separated list as $KUBECONFIG; NULL: in-cluster */
	const char *context;
	const char *api_server; /* in-cluster: this URL instead of KUBERNETES_SERVICE_HOST/PORT */
	const char *node_name;
	const char *cgroup;
	const char *pin_path;
	uint32_t max_frontends, max_services, max_slots, max_revnat; /* 0: pinned or default */
	long request_timeout_s;		/* one list page */
	long watch_idle_timeout_s;	/* a silent watch is dead after this; 0: its own timeout + 30 s */
	bool api_http1;			/* HTTP/1.1 to the API server instead of HTTP/2 */
	long http2_read_idle_s;		/* HTTP/2 health check: probe after this silence... */
	long http2_ping_timeout_s;	/* ...and drop the connection this much later */
	unsigned backoff_max_s;		/* API retry delays double up to this */
};

/* Run until SIGINT/SIGTERM. Returns 0 or a negative errno (already logged). */
int agent_run(const struct agent_opts *o);

#endif
