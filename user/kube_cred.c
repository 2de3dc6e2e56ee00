// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <jansson.h>

#include "kube_cred.h"

extern char **environ;

/* Refresh an exec credential this long before it expires, so no request races the expiry. */
#define EXEC_EXPIRY_MARGIN 10

static void secret_free(char **p, size_t len)
{
	if (*p)
		explicit_bzero(*p, len ? len : strlen(*p));
	free(*p);
	*p = NULL;
}

void kube_cred_init(struct kube_cred *c, const struct kube_config *cfg)
{
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
}

void kube_cred_fini(struct kube_cred *c)
{
	if (!c)
		return;
	secret_free(&c->token, 0);
	secret_free(&c->exec_cert, c->exec_cert_len);
	secret_free(&c->exec_key, c->exec_key_len);
	memset(c, 0, sizeof(*c));
}

int kube_parse_time(const char *s, time_t *out)
{
	struct tm tm = {};
	const char *p;
	long off = 0;

	if (!s)
		return -EINVAL;
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
		   isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
		   isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	*out = timegm(&tm) - off;
	return 0;
}

static int set_secret(char **dst, size_t *dlen, const char *src)
{
	char *n = strdup(src);

	if (!n)
		return -ENOMEM;
	secret_free(dst, dlen ? *dlen : 0);
	*dst = n;
	if (dlen)
		*dlen = strlen(n);
	return 0;
}

int kube_cred_parse_exec(struct kube_cred *c, const char *api_version, const char *text,
			 char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_loads(text, 0, &jerr), *st;
	const char *kind, *api, *tok, *cert, *key, *exp;
	char *ntok = NULL, *ncert = NULL, *nkey = NULL;
	time_t expiry = 0;
	int ret = -EINVAL;

	if (!doc) {
		snprintf(err, errlen, "exec plugin output is not JSON: %s", jerr.text);
		return -EINVAL;
	}
	kind = json_string_value(json_object_get(doc, "kind"));
	api = json_string_value(json_object_get(doc, "apiVersion"));
	st = json_object_get(doc, "status");
	if (!kind || strcmp(kind, "ExecCredential") || !api || strcmp(api, api_version)) {
		snprintf(err, errlen, "exec plugin returned kind %s apiVersion %s, want ExecCredential %s",
			 kind ? kind : "?", api ? api : "?", api_version);
		goto cleanup;
	}
	tok = json_string_value(json_object_get(st, "token"));
	cert = json_string_value(json_object_get(st, "clientCertificateData"));
	key = json_string_value(json_object_get(st, "clientKeyData"));
	exp = json_string_value(json_object_get(st, "expirationTimestamp"));
	if (!tok && !(cert && key)) {
		snprintf(err, errlen, "exec plugin returned neither a token nor a client certificate and key");
		goto cleanup;
	}
	if (!!cert != !!key) {
		snprintf(err, errlen, "exec plugin returned a client certificate without its key or the reverse");
		goto cleanup;
	}
	if (exp && kube_parse_time(exp, &expiry)) {
		snprintf(err, errlen, "exec plugin expirationTimestamp \"%s\" is not RFC 3339", exp);
		goto cleanup;
	}
	/* The new answer replaces the previous one entirely: a token (or certificate) it does
	 * not contain must not outlive it. */
	if ((tok && !(ntok = strdup(tok))) || (cert && !(ncert = strdup(cert))) ||
	    (key && !(nkey = strdup(key)))) {
		secret_free(&ntok, 0);
		secret_free(&ncert, 0);
		secret_free(&nkey, 0);
		ret = -ENOMEM;
		goto cleanup;
	}
	secret_free(&c->token, 0);
	secret_free(&c->exec_cert, c->exec_cert_len);
	secret_free(&c->exec_key, c->exec_key_len);
	c->token = ntok;
	c->exec_cert = ncert;
	c->exec_cert_len = ncert ? strlen(ncert) : 0;
	c->exec_key = nkey;
	c->exec_key_len = nkey ? strlen(nkey) : 0;
	c->exec_expiry = expiry;
	c->exec_valid = true;
	c->generation++;
	ret = 0;
cleanup:
	json_decref(doc);
	return ret;
}

/* KUBERNETES_EXEC_INFO: what the plugin is told about the request (never interactive). */
static char *exec_info(const struct kube_config *cfg)
{
	json_t *spec = json_pack("{s:b}", "interactive", 0), *info;
	char *s = NULL, *out = NULL;

	if (!spec)
		return NULL;
	if (cfg->exec->provide_cluster_info) {
		json_t *cl = json_pack("{s:s, s:b}", "server", cfg->server, "insecure-skip-tls-verify",
				       cfg->insecure);

		if (cl && cfg->tls_server_name)
			json_object_set_new(cl, "tls-server-name", json_string(cfg->tls_server_name));
		json_object_set_new(spec, "cluster", cl);
	}
	info = json_pack("{s:s, s:s, s:o}", "apiVersion", cfg->exec->api_version, "kind",
			 "ExecCredential", "spec", spec);
	if (info)
		s = json_dumps(info, JSON_COMPACT);
	json_decref(info);
	if (s && asprintf(&out, "KUBERNETES_EXEC_INFO=%s", s) < 0)
		out = NULL;
	free(s);
	return out;
}

/* Does the environment entry set a variable that the plugin gets its own value for? */
static bool env_replaced(const struct kube_exec *ex, const char *entry)
{
	size_t n = strcspn(entry, "=");

	if (n == 20 && !strncmp(entry, "KUBERNETES_EXEC_INFO", 20))
		return true;
	for (char **e = ex->env; *e; e++)
		if (!strncmp(*e, entry, n) && (*e)[n] == '=')
			return true;
	return false;
}

/* environ + the plugin's env + KUBERNETES_EXEC_INFO; entries are borrowed except the last. */
static char **exec_env(const struct kube_config *cfg)
{
	size_t n = 0, m = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	while (cfg->exec->env[m])
		m++;
	env = calloc(n + m + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < m; i++)
		env[k++] = cfg->exec->env[i];
	/* The plugin's variables replace ours of the same name. Leaving both in would not do:
	 * getenv() takes the first match, but shells (sh, bash) take the last. */
	for (size_t i = 0; i < n; i++)
		if (!env_replaced(cfg->exec, environ[i]))
			env[k++] = environ[i];
	env[k] = exec_info(cfg);
	if (!env[k]) {
		free(env);
		return NULL;
	}
	return env;
}

/* Run the plugin (argv array, no shell) and collect its stdout. */
static int run_exec(const struct kube_config *cfg, char **out, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, deflt;
	char **env = NULL, *buf = NULL;
	size_t len = 0, cap = 0;
	int pipefd[2] = { -1, -1 }, status = 0, ret;
	struct timespec t0, t;
	pid_t pid = -1;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	env = exec_env(cfg);
	if (!env) {
		ret = -ENOMEM;
		goto cleanup;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	/* Nothing of ours leaks into the plugin: not the API connections (libcurl's sockets
	 * are not close-on-exec), not our blocked signals or ignored SIGPIPE. */
	posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&deflt);
	sigaddset(&deflt, SIGPIPE);
	sigaddset(&deflt, SIGHUP);
	sigaddset(&deflt, SIGINT);
	sigaddset(&deflt, SIGTERM);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &deflt);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	ret = -posix_spawnp(&pid, cfg->exec->command, &fa, &attr, cfg->exec->argv, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	pipefd[1] = -1;
	if (ret) {
		snprintf(err, errlen, "exec plugin %s: %s", cfg->exec->command, strerror(-ret));
		pid = -1;
		goto cleanup;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		ssize_t got;
		long waited;
		int pr;

		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		pr = waited >= KUBE_EXEC_TIMEOUT_MS ? 0 : poll(&p, 1, (int)(KUBE_EXEC_TIMEOUT_MS - waited));

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			snprintf(err, errlen, "exec plugin %s: no answer in %d ms", cfg->exec->command,
				 KUBE_EXEC_TIMEOUT_MS);
			ret = -ETIMEDOUT;
			kill(pid, SIGKILL);
			goto cleanup;
		}
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb) {
				ret = -ENOMEM;
				goto cleanup;
			}
			buf = nb;
			cap += 65536;
		}
		got = read(pipefd[0], buf + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
		if (len > 1 << 20) {
			snprintf(err, errlen, "exec plugin %s: output over 1 MiB", cfg->exec->command);
			ret = -E2BIG;
			kill(pid, SIGKILL);
			goto cleanup;
		}
	}
	if (buf)
		buf[len] = 0;
	ret = 0;
cleanup:
	if (pid > 0) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!ret && (!WIFEXITED(status) || WEXITSTATUS(status))) {
			snprintf(err, errlen, "exec plugin %s failed (status %d)", cfg->exec->command,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			ret = -EPERM;
		}
	}
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (env) {
		size_t n = 0;

		while (env[n])
			n++;
		free(env[n - 1]); /* KUBERNETES_EXEC_INFO, the only one we own */
		free(env);
	}
	if (ret || !len) {
		secret_free(&buf, len);
		if (!ret) {
			snprintf(err, errlen, "exec plugin %s printed nothing", cfg->exec->command);
			ret = -EINVAL;
		}
		return ret;
	}
	*out = buf;
	return 0;
}

static int read_token_file(struct kube_cred *c, char *err, size_t errlen)
{
	char buf[16384];
	FILE *f = fopen(c->cfg->token_file, "re");
	size_t n;
	int ret;

	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "token file %s: %s", c->cfg->token_file, strerror(-ret));
		return ret;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && strchr(" \t\r\n", buf[n - 1]))
		buf[--n] = 0;
	if (!n) {
		snprintf(err, errlen, "token file %s is empty", c->cfg->token_file);
		return -EINVAL;
	}
	if (c->token && !strcmp(c->token, buf)) {
		explicit_bzero(buf, n);
		return 0;
	}
	ret = set_secret(&c->token, NULL, buf);
	explicit_bzero(buf, n);
	if (!ret)
		c->generation++;
	return ret;
}

int kube_cred_refresh(struct kube_cred *c, uint64_t now_ns, bool force, char *err,
		      size_t errlen)
{
	const struct kube_config *cfg = c->cfg;
	int ret;

	if (cfg->exec) {
		time_t now = time(NULL);
		bool expired = c->exec_expiry && now + EXEC_EXPIRY_MARGIN >= c->exec_expiry;

		if (force || !c->exec_valid || expired) {
			char *out = NULL;

			ret = run_exec(cfg, &out, err, errlen);
			if (!ret)
				ret = kube_cred_parse_exec(c, cfg->exec->api_version, out, err, errlen);
			secret_free(&out, 0);
			if (ret)
				return ret;
		}
		return 0;
	}
	if (cfg->token_file) {
		if (force || !c->token_read_ns || now_ns - c->token_read_ns >= KUBE_TOKEN_REREAD_NS) {
			ret = read_token_file(c, err, errlen);
			if (ret)
				return ret;
			c->token_read_ns = now_ns;
		}
		return 0;
	}
	if (cfg->token && !c->token) {
		ret = set_secret(&c->token, NULL, cfg->token);
		if (ret)
			return ret;
		c->generation++;
	}
	return 0;
}
