/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The credential to present to the API server right now: a bearer token (static, from a
 * token file re-read periodically, or from an exec plugin cached until it expires) and/or a
 * client certificate (from the kubeconfig or the exec plugin).
 */
#ifndef BPFSVC_KUBE_CRED_H
#define BPFSVC_KUBE_CRED_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kubeconfig.h"

/* Token files are re-read this often (service account tokens rotate hourly). */
#define KUBE_TOKEN_REREAD_NS (60ULL * 1000000000ULL)
/* An exec plugin gets this long to answer. */
#define KUBE_EXEC_TIMEOUT_MS 30000
/* An ExecCredential is a few KiB; more output than this is not one. */
#define KUBE_EXEC_MAX_OUTPUT (1 << 20)

struct kube_exec_run;

struct kube_cred {
	const struct kube_config *cfg;
	char *token;		 /* current bearer token, or NULL */
	uint64_t token_read_ns;	 /* monotonic time the token file was read, 0: never */
	char *exec_cert, *exec_key; /* PEM from the exec plugin */
	size_t exec_cert_len, exec_key_len;
	time_t exec_expiry;	 /* wall clock; 0: no expiry given */
	bool exec_valid;	 /* a plugin result is cached */
	unsigned generation;	 /* bumped whenever the credential changed */
	struct kube_exec_run *run; /* the exec plugin running now, or NULL */
	int exec_timeout_ms;	 /* how long it gets (KUBE_EXEC_TIMEOUT_MS) */
};

void kube_cred_init(struct kube_cred *c, const struct kube_config *cfg);
void kube_cred_fini(struct kube_cred *c);

/*
 * Bring the credential up to date: re-read the token file when due, start the exec plugin
 * when nothing valid is cached. force (after a 401) re-reads and re-runs regardless.
 * Returns 0, -EINPROGRESS while the plugin runs (started now or before), or -errno with err
 * set; on error the previous credential stays usable.
 */
int kube_cred_refresh(struct kube_cred *c, uint64_t now_ns, bool force, char *err,
		      size_t errlen);

/*
 * The exec plugin runs beside the caller's event loop, never blocking it: the plugin leads
 * its own process group, its stdout is a non-blocking pipe. While kube_cred_exec_running(),
 * watch the descriptors kube_cred_exec_fds() names (up to 2, for reading; they change as the
 * run goes on) and the deadline (CLOCK_MONOTONIC ns), and call kube_cred_exec_event() when
 * either fires. It returns -EINPROGRESS until the run is over, then 0 (the credential was
 * updated) or -errno with err set (the previous credential kept). On timeout, too much output,
 * when the plugin exits, and in kube_cred_fini(), the plugin's process group is killed; the
 * plugin itself is always reaped.
 */
bool kube_cred_exec_running(const struct kube_cred *c);
int kube_cred_exec_fds(const struct kube_cred *c, int fds[2]);
uint64_t kube_cred_exec_deadline(const struct kube_cred *c);
int kube_cred_exec_event(struct kube_cred *c, char *err, size_t errlen);
/* Kill and forget a run (what kube_cred_fini() does with it). */
void kube_cred_exec_abort(struct kube_cred *c);

/* Parse an ExecCredential (JSON text) of the given apiVersion into c. Exposed for tests. */
int kube_cred_parse_exec(struct kube_cred *c, const char *api_version, const char *json,
			 char *err, size_t errlen);

/* RFC 3339 UTC ("2026-01-02T03:04:05Z", fraction and numeric offset allowed) to time_t. */
int kube_parse_time(const char *s, time_t *out);

#endif
