// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fileio.h"
#include "kubeconfig.h"
#include "yamljson.h"

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void pem_free(struct kube_pem *p)
{
	free(p->path);
	if (p->data)
		/* Keys must not linger in freed memory. */
		explicit_bzero(p->data, p->len);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

static void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

void kube_config_free(struct kube_config *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->tls_server_name);
	pem_free(&c->ca);
	pem_free(&c->cert);
	pem_free(&c->key);
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->token_file);
	if (c->exec) {
		free(c->exec->api_version);
		free(c->exec->command);
		strv_free(c->exec->argv);
		strv_free(c->exec->env);
		free(c->exec);
	}
	free(c->where);
	strv_free(c->warnings);
	memset(c, 0, sizeof(*c));
}

static int __attribute__((format(printf, 2, 3))) warn(struct kube_config *c, const char *fmt, ...)
{
	char **v = realloc(c->warnings, (c->nwarnings + 2) * sizeof(*v));
	va_list ap;
	int n;

	if (!v)
		return -ENOMEM;
	c->warnings = v;
	va_start(ap, fmt);
	n = vasprintf(&v[c->nwarnings], fmt, ap);
	va_end(ap);
	if (n < 0) {
		v[c->nwarnings] = NULL;
		return -ENOMEM;
	}
	v[++c->nwarnings] = NULL;
	return 0;
}

/*
 * A file the agent trusts (a kubeconfig, token, CA, certificate, key or exec plugin): whoever
 * can write it chooses the API server, the CA or the credential, and a secret others can read
 * is no secret. Only a warning, as kubectl gives for a world-readable kubeconfig: refusing
 * would break setups that work today, and the operator is the one who can fix the mode.
 * A file that cannot be stat'ed is left to the code that reads it to report.
 */
enum { CHECK_WRITE = 1, CHECK_READ = 2 };

static int check_file(struct kube_config *c, const char *what, const char *path, int checks)
{
	struct stat st;

	if (!path || stat(path, &st))
		return 0;
	if ((checks & CHECK_WRITE) && (st.st_mode & (S_IWGRP | S_IWOTH)))
		return warn(c, "%s %s is %s-writable (mode %04o): whoever can write it controls the "
			       "agent's access to the API server",
			    what, path, st.st_mode & S_IWOTH ? "world" : "group",
			    (unsigned)(st.st_mode & 07777));
	if ((checks & CHECK_WRITE) && st.st_uid != 0 && st.st_uid != geteuid())
		return warn(c, "%s %s is owned by uid %u, neither root nor the agent's user: that "
			       "user controls the agent's access to the API server",
			    what, path, (unsigned)st.st_uid);
	if ((checks & CHECK_READ) && (st.st_mode & S_IROTH))
		return warn(c, "%s %s holds a credential and is world-readable (mode %04o)", what,
			    path, (unsigned)(st.st_mode & 07777));
	return 0;
}

int kube_b64_decode(const char *in, char **out, size_t *outlen)
{
	EVP_ENCODE_CTX *ctx = NULL;
	size_t len = strlen(in);
	unsigned char *buf;
	int n = 0, fin = 0, ret = -EINVAL;

	/* 3 bytes per 4 characters, plus the final block and a NUL. */
	buf = malloc(len / 4 * 3 + 8);
	ctx = EVP_ENCODE_CTX_new();
	if (!buf || !ctx) {
		ret = -ENOMEM;
		goto cleanup;
	}
	/* EVP_DecodeUpdate takes '-' as end of data and silently drops the rest (URL-safe
	 * base64 would be truncated): accept only the standard alphabet and whitespace. */
	if (strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n") !=
	    len)
		goto cleanup;
	EVP_DecodeInit(ctx);
	/* EVP_DecodeUpdate skips whitespace and newlines, as PEM-in-YAML needs. */
	if (EVP_DecodeUpdate(ctx, buf, &n, (const unsigned char *)in, (int)len) < 0 ||
	    EVP_DecodeFinal(ctx, buf + n, &fin) < 0)
		goto cleanup;
	buf[n + fin] = 0;
	*out = (char *)buf;
	*outlen = (size_t)(n + fin);
	buf = NULL;
	ret = 0;
cleanup:
	EVP_ENCODE_CTX_free(ctx);
	free(buf);
	return ret;
}

/* Resolve a path from a kubeconfig relative to the directory of that file. */
static char *rel_path(const char *file, const char *p)
{
	const char *slash = strrchr(file, '/');
	char *out;

	if (!p || p[0] == '/' || !slash)
		return xstrdup(p);
	if (asprintf(&out, "%.*s/%s", (int)(slash - file), file, p) < 0)
		return NULL;
	return out;
}

/* One kubeconfig file, parsed, with the path it came from. */
struct kc_file {
	char *path;
	json_t *doc;
};

/* Find the named entry of a list section (clusters, users, contexts) in the first file that
 * has it; *file is set to that file. */
static json_t *kc_find(struct kc_file *files, size_t n, const char *section, const char *what,
		       const char *name, const struct kc_file **file)
{
	for (size_t i = 0; i < n; i++) {
		json_t *e;
		size_t j;

		json_array_foreach(json_object_get(files[i].doc, section), j, e) {
			const char *en = json_string_value(json_object_get(e, "name"));

			if (en && !strcmp(en, name)) {
				*file = &files[i];
				return json_object_get(e, what);
			}
		}
	}
	return NULL;
}

static int pem_from(json_t *o, const char *file_key, const char *data_key, const char *from,
		    struct kube_pem *out, char *err, size_t errlen)
{
	const char *data = json_string_value(json_object_get(o, data_key));
	const char *path = json_string_value(json_object_get(o, file_key));
	int ret;

	if (data) {
		ret = kube_b64_decode(data, &out->data, &out->len);
		if (ret)
			snprintf(err, errlen, "%s: %s is not valid base64", from, data_key);
		return ret;
	}
	if (path) {
		out->path = rel_path(from, path);
		if (!out->path)
			return -ENOMEM;
		if (access(out->path, R_OK)) {
			int ret = -errno;

			snprintf(err, errlen, "%s: %s %s: %s", from, file_key, out->path,
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static char **strv_from(json_t *arr, const char *first)
{
	size_t n = json_array_size(arr), i, k = 0;
	char **v = calloc(n + 2, sizeof(*v));
	json_t *e;

	if (!v)
		return NULL;
	if (first && !(v[k++] = strdup(first)))
		goto fail;
	json_array_foreach(arr, i, e) {
		const char *s = json_string_value(e);

		if (s && !(v[k++] = strdup(s)))
			goto fail;
	}
	return v;
fail:
	strv_free(v);
	return NULL;
}

static int exec_from(json_t *ex, const char *from, struct kube_exec **out, char *err,
		     size_t errlen)
{
	const char *cmd = json_string_value(json_object_get(ex, "command"));
	const char *api = json_string_value(json_object_get(ex, "apiVersion"));
	struct kube_exec *e;
	json_t *env, *kv;
	size_t i, k = 0;

	if (!cmd || !*cmd) {
		snprintf(err, errlen, "%s: exec without command", from);
		return -EINVAL;
	}
	if (!api || (strcmp(api, "client.authentication.k8s.io/v1") &&
		     strcmp(api, "client.authentication.k8s.io/v1beta1"))) {
		snprintf(err, errlen, "%s: exec apiVersion \"%s\" not supported (v1, v1beta1)",
			 from, api ? api : "");
		return -EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	*out = e;
	e->api_version = strdup(api);
	/* A command with a slash is relative to the kubeconfig, like kubectl does. */
	e->command = strchr(cmd, '/') ? rel_path(from, cmd) : strdup(cmd);
	if (!e->api_version || !e->command)
		return -ENOMEM;
	e->argv = strv_from(json_object_get(ex, "args"), e->command);
	env = json_object_get(ex, "env");
	e->env = calloc(json_array_size(env) + 1, sizeof(*e->env));
	if (!e->argv || !e->env)
		return -ENOMEM;
	json_array_foreach(env, i, kv) {
		const char *name = json_string_value(json_object_get(kv, "name"));
		const char *value = json_string_value(json_object_get(kv, "value"));

		if (!name || !*name || strchr(name, '=')) {
			snprintf(err, errlen, "%s: exec env entry %zu has a bad name", from, i);
			return -EINVAL;
		}
		if (asprintf(&e->env[k], "%s=%s", name, value ? value : "") < 0) {
			e->env[k] = NULL;
			return -ENOMEM;
		}
		k++;
	}
	e->provide_cluster_info = json_is_true(json_object_get(ex, "provideClusterInfo"));
	return 0;
}

static int load_files(const char *paths, struct kube_config *out, struct kc_file **files,
		      size_t *nfiles, char *err, size_t errlen)
{
	char *list = strdup(paths), *save = NULL, *p;
	struct kc_file *v = NULL;
	size_t n = 0;
	int ret = 0;

	if (!list)
		return -ENOMEM;
	for (p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		char *buf = NULL, yerr[256] = "";
		size_t len = 0;
		json_t *doc = NULL;
		struct kc_file *nv;

		ret = read_whole_file(p, &buf, &len);
		if (ret == -ENOENT && strchr(paths, ':')) {
			ret = 0; /* kubectl skips missing files of a list */
			continue;
		}
		if (ret) {
			snprintf(err, errlen, "read kubeconfig %s: %s", p, strerror(-ret));
			goto cleanup;
		}
		ret = yamljson_parse(buf, len, &doc, yerr, sizeof(yerr));
		free(buf);
		if (ret) {
			snprintf(err, errlen, "kubeconfig %s: %s", p, yerr);
			goto cleanup;
		}
		/* Every file of the list: any of them may define what is used. */
		ret = check_file(out, "kubeconfig", p, CHECK_WRITE);
		if (ret) {
			json_decref(doc);
			goto cleanup;
		}
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			json_decref(doc);
			ret = -ENOMEM;
			goto cleanup;
		}
		v = nv;
		v[n].doc = doc;
		v[n].path = strdup(p);
		n++;
		if (!v[n - 1].path) {
			ret = -ENOMEM;
			goto cleanup;
		}
	}
	if (!n) {
		snprintf(err, errlen, "no kubeconfig file found in \"%s\"", paths);
		ret = -ENOENT;
	}
cleanup:
	free(list);
	*files = v;
	*nfiles = n;
	return ret;
}

/* The files a configuration points at (the kubeconfigs themselves are checked as read). */
static int check_files(struct kube_config *c)
{
	int ret;

	if ((ret = check_file(c, "token file", c->token_file, CHECK_WRITE)) ||
	    (ret = check_file(c, "certificate authority", c->ca.path, CHECK_WRITE)) ||
	    (ret = check_file(c, "client certificate", c->cert.path, CHECK_WRITE)) ||
	    (ret = check_file(c, "client key", c->key.path, CHECK_WRITE | CHECK_READ)))
		return ret;
	/* A bare command is looked up in PATH at run time, like kubectl does; not checked. */
	if (c->exec && strchr(c->exec->command, '/'))
		ret = check_file(c, "exec plugin", c->exec->command, CHECK_WRITE);
	return ret;
}

int kubeconfig_load(const char *paths, const char *context, struct kube_config *out, char *err,
		    size_t errlen)
{
	struct kc_file *files = NULL;
	const struct kc_file *cf = NULL, *uf = NULL, *xf = NULL;
	json_t *ctx, *cluster, *user;
	const char *cname, *uname, *server;
	size_t nfiles = 0, i;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = load_files(paths, out, &files, &nfiles, err, errlen);
	if (ret)
		goto cleanup;
	/* The first non-empty one: kubectl writes current-context: "" meaning unset. */
	for (i = 0; !context && i < nfiles; i++) {
		context = json_string_value(json_object_get(files[i].doc, "current-context"));
		if (context && !*context)
			context = NULL;
	}
	if (!context || !*context) {
		snprintf(err, errlen, "kubeconfig %s: no current-context and no --context", paths);
		ret = -EINVAL;
		goto cleanup;
	}
	ctx = kc_find(files, nfiles, "contexts", "context", context, &xf);
	if (!json_is_object(ctx)) {
		snprintf(err, errlen, "kubeconfig %s: context \"%s\" not found", paths, context);
		ret = -ENOENT;
		goto cleanup;
	}
	cname = json_string_value(json_object_get(ctx, "cluster"));
	uname = json_string_value(json_object_get(ctx, "user"));
	cluster = cname ? kc_find(files, nfiles, "clusters", "cluster", cname, &cf) : NULL;
	if (!json_is_object(cluster)) {
		snprintf(err, errlen, "kubeconfig %s: cluster \"%s\" of context \"%s\" not found",
			 paths, cname ? cname : "", context);
		ret = -ENOENT;
		goto cleanup;
	}
	server = json_string_value(json_object_get(cluster, "server"));
	if (!server || strncmp(server, "https://", 8)) {
		snprintf(err, errlen, "%s: cluster \"%s\": server must be an https:// URL",
			 cf->path, cname);
		ret = -EINVAL;
		goto cleanup;
	}
	out->server = strdup(server);
	if (!out->server) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (char *e = out->server + strlen(out->server); e > out->server + 8 && e[-1] == '/';)
		*--e = 0;
	out->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
	out->tls_server_name = xstrdup(json_string_value(json_object_get(cluster, "tls-server-name")));
	ret = pem_from(cluster, "certificate-authority", "certificate-authority-data", cf->path,
		       &out->ca, err, errlen);
	if (ret)
		goto cleanup;

	user = uname ? kc_find(files, nfiles, "users", "user", uname, &uf) : NULL;
	if (uname && !json_is_object(user)) {
		snprintf(err, errlen, "kubeconfig %s: user \"%s\" of context \"%s\" not found",
			 paths, uname, context);
		ret = -ENOENT;
		goto cleanup;
	}
	if (user) {
		const char *tf = json_string_value(json_object_get(user, "tokenFile"));
		json_t *ex = json_object_get(user, "exec");

		if ((ret = pem_from(user, "client-certificate", "client-certificate-data",
				    uf->path, &out->cert, err, errlen)) ||
		    (ret = pem_from(user, "client-key", "client-key-data", uf->path, &out->key,
				    err, errlen)))
			goto cleanup;
		if ((out->cert.path || out->cert.data) != (out->key.path || out->key.data)) {
			snprintf(err, errlen, "%s: user \"%s\": client certificate and key go together",
				 uf->path, uname);
			ret = -EINVAL;
			goto cleanup;
		}
		out->token = xstrdup(json_string_value(json_object_get(user, "token")));
		if (tf && !(out->token_file = rel_path(uf->path, tf))) {
			ret = -ENOMEM;
			goto cleanup;
		}
		if (json_is_object(ex)) {
			ret = exec_from(ex, uf->path, &out->exec, err, errlen);
			if (ret)
				goto cleanup;
		}
	}
	if (asprintf(&out->where, "kubeconfig %s context %s", paths, context) < 0) {
		out->where = NULL;
		ret = -ENOMEM;
		goto cleanup;
	}
	/* A kubeconfig holding an inline credential is a secret itself. */
	if (user && (json_object_get(user, "token") || json_object_get(user, "client-key-data")) &&
	    (ret = check_file(out, "kubeconfig", uf->path, CHECK_READ)))
		goto cleanup;
	ret = check_files(out);
cleanup:
	for (i = 0; i < nfiles; i++) {
		json_decref(files[i].doc);
		free(files[i].path);
	}
	free(files);
	if (ret)
		kube_config_free(out);
	return ret;
}

int kubeconfig_in_cluster(const char *host, const char *port, const char *sa_dir,
			  struct kube_config *out, char *err, size_t errlen)
{
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (!host || !*host || !port || !*port) {
		snprintf(err, errlen,
			 "no kubeconfig: set --kubeconfig or KUBECONFIG, or run in a pod "
			 "(KUBERNETES_SERVICE_HOST/PORT unset)");
		return -ENOENT;
	}
	/* An IPv6 host goes in brackets in a URL. */
	if (asprintf(&out->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port) < 0) {
		out->server = NULL;
		goto cleanup;
	}
	if (asprintf(&out->token_file, "%s/token", sa_dir) < 0) {
		out->token_file = NULL;
		goto cleanup;
	}
	if (asprintf(&out->ca.path, "%s/ca.crt", sa_dir) < 0) {
		out->ca.path = NULL;
		goto cleanup;
	}
	if (access(out->token_file, R_OK)) {
		ret = -errno;
		snprintf(err, errlen, "in-cluster: service account token %s: %s", out->token_file,
			 strerror(errno));
		goto cleanup;
	}
	out->where = strdup("in-cluster");
	ret = out->where ? check_files(out) : -ENOMEM;
cleanup:
	if (ret)
		kube_config_free(out);
	return ret;
}

int kubeconfig_set_server(struct kube_config *c, const char *url)
{
	char *s = strdup(url);

	if (!s)
		return -ENOMEM;
	for (char *e = s + strlen(s); e > s + 8 && e[-1] == '/';)
		*--e = 0;
	free(c->server);
	c->server = s;
	return 0;
}
