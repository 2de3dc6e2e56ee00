/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Where the API server is and how to authenticate to it: a kubeconfig (YAML, possibly
 * several files in $KUBECONFIG) or the in-cluster service account. Parsing only: no network.
 */
#ifndef BPFSVC_KUBECONFIG_H
#define BPFSVC_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define KUBE_SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"

/* PEM material: a file path (re-read by libcurl per connection, so rotation works) or inline
 * bytes that stay in memory (handed to libcurl as a blob, never written to disk). */
struct kube_pem {
	char *path;
	char *data;
	size_t len;
};

/* client.authentication.k8s.io exec credential plugin. */
struct kube_exec {
	char *api_version;
	char *command;
	char **argv;  /* argv[0] = command, NULL-terminated */
	char **env;   /* "NAME=value", NULL-terminated; added to the agent's environment */
	bool provide_cluster_info;
};

struct kube_config {
	char *server; /* "https://host:port", no trailing slash */
	char *tls_server_name;
	bool insecure;		/* insecure-skip-tls-verify */
	struct kube_pem ca;	/* empty: system trust store */
	struct kube_pem cert;	/* client certificate */
	struct kube_pem key;	/* client key */
	char *token;		/* static bearer token */
	char *token_file;	/* bearer token re-read from here */
	struct kube_exec *exec; /* credential plugin */
	char *where;		/* for logs: "kubeconfig PATH context NAME" or "in-cluster" */
	/* Files others can write (or read, when they hold a secret): one sentence each naming
	 * the file, for the caller to log. */
	char **warnings;
	size_t nwarnings;
};

/*
 * Load the context (NULL: current-context) from paths, a colon-separated list as in
 * $KUBECONFIG: the first file to define a name wins, as kubectl merges them. Relative file
 * references are relative to the file that holds them. Returns 0 or -errno with err set.
 * Every file used is checked (as kubectl warns about a world-readable kubeconfig): one group- or
 * world-writable or owned by another user than root or us (whoever can write it picks the
 * server, the CA or the credential), or, holding a secret (a key, an inline credential),
 * world-readable, adds an entry to out->warnings.
 */
int kubeconfig_load(const char *paths, const char *context, struct kube_config *out, char *err,
		    size_t errlen);

/* In-cluster: host and port (KUBERNETES_SERVICE_HOST/PORT, passed in) and the service account
 * token and CA under sa_dir. */
int kubeconfig_in_cluster(const char *host, const char *port, const char *sa_dir,
			  struct kube_config *out, char *err, size_t errlen);

/* Replace the server URL (in-cluster with --api-server). */
int kubeconfig_set_server(struct kube_config *c, const char *url);

void kube_config_free(struct kube_config *c);

/* Decode base64 (whitespace ignored). Returns 0 or -EINVAL. *out is NUL-terminated. */
int kube_b64_decode(const char *in, char **out, size_t *outlen);

#endif
