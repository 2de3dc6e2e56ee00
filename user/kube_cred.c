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
#include <sys/pidfd.h>
#include <sys/wait.h>

#include <jansson.h>

#include "fileio.h"
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
	c->exec_timeout_ms = KUBE_EXEC_TIMEOUT_MS;
}

static void run_abort(struct kube_exec_run *r);

void kube_cred_fini(struct kube_cred *c)
{
	if (!c)
		return;
	kube_cred_exec_abort(c);
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

/* Why jansson refused the text, without its "near '...'" excerpt of the input. */
static const char *json_reason(const json_error_t *e)
{
	switch (json_error_code(e)) {
	case json_error_out_of_memory:
		return "out of memory";
	case json_error_stack_overflow:
		return "nested too deeply";
	case json_error_invalid_utf8:
		return "invalid UTF-8";
	case json_error_premature_end_of_input:
		return "truncated";
	case json_error_end_of_input_expected:
		return "text after the JSON value";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "NUL character";
	case json_error_duplicate_key:
		return "duplicate key";
	case json_error_numeric_overflow:
		return "number out of range";
	default:
		return "syntax error";
	}
}

/* An apiVersion the plugin answered, safe to name: only known values are echoed. */
static const char *known_api(const char *api)
{
	static const char *const known[] = { "client.authentication.k8s.io/v1",
					     "client.authentication.k8s.io/v1beta1",
					     "client.authentication.k8s.io/v1alpha1" };

	for (size_t i = 0; api && i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(api, known[i]))
			return known[i];
	return api ? "another apiVersion" : "no apiVersion";
}

/*
 * The plugin's output is a secret (a token may start anywhere in it, even in a malformed
 * answer), so no error below quotes it: positions and reasons only.
 */
int kube_cred_parse_exec(struct kube_cred *c, const char *api_version, const char *text,
			 char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr), *st;
	const char *kind, *api, *tok, *cert, *key, *exp;
	char *ntok = NULL, *ncert = NULL, *nkey = NULL;
	time_t expiry = 0;
	int ret = -EINVAL;

	if (!doc) {
		snprintf(err, errlen,
			 "exec plugin output is not JSON (%s at line %d column %d, byte %d)",
			 json_reason(&jerr), jerr.line, jerr.column, jerr.position);
		return -EINVAL;
	}
	kind = json_string_value(json_object_get(doc, "kind"));
	api = json_string_value(json_object_get(doc, "apiVersion"));
	st = json_object_get(doc, "status");
	if (!kind || strcmp(kind, "ExecCredential")) {
		snprintf(err, errlen, "exec plugin output is not an ExecCredential (kind %s)",
			 kind ? "differs" : "missing");
		goto cleanup;
	}
	if (!api || strcmp(api, api_version)) {
		snprintf(err, errlen, "exec plugin answered %s, want %s", known_api(api),
			 api_version);
		goto cleanup;
	}
	if (st && !json_is_object(st)) {
		snprintf(err, errlen, "exec plugin output: status is not an object");
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
		snprintf(err, errlen, "exec plugin expirationTimestamp is not RFC 3339");
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

/* A run of the exec plugin. It is over when its stdout is closed and the process reaped. */
struct kube_exec_run {
	pid_t pid;	     /* also the process group id (the plugin leads its own group) */
	int out_fd;	     /* read end of its stdout, -1 once closed */
	int pidfd;	     /* readable when the plugin exited, -1 once reaped */
	bool reaped;
	int status;	     /* wait status, once reaped */
	int error;	     /* -errno decided by us (timeout, too much output), 0: none */
	uint64_t deadline_ns;
	char *buf;
	size_t len, cap;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void free_env(char **env)
{
	size_t n = 0;

	if (!env)
		return;
	while (env[n])
		n++;
	free(env[n - 1]); /* KUBERNETES_EXEC_INFO, the only one we own */
	free(env);
}

/* The plugin and whatever it started. Only while the plugin is not reaped: its pid, and so
 * the group id, cannot be reused before that. */
static void kill_group(struct kube_exec_run *r)
{
	if (!r->reaped)
		kill(-r->pid, SIGKILL);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void run_free(struct kube_exec_run *r)
{
	if (!r)
		return;
	close_fd(&r->out_fd);
	close_fd(&r->pidfd);
	secret_free(&r->buf, r->cap);
	free(r);
}

/* A plugin still running when we stop is killed with all it started. Reaped if it dies
 * within a second; one stuck in the kernel is left to init. */
static void run_abort(struct kube_exec_run *r)
{
	struct pollfd p;

	if (!r)
		return;
	p = (struct pollfd){ .fd = r->pidfd, .events = POLLIN };
	kill_group(r);
	if (!r->reaped && poll(&p, 1, 1000) > 0 && waitpid(r->pid, &r->status, WNOHANG) > 0)
		r->reaped = true;
	run_free(r);
}

/* Start the plugin (argv array, no shell) with its stdout on a pipe we read without
 * blocking. */
static int exec_start(struct kube_cred *c, char *err, size_t errlen)
{
	const struct kube_config *cfg = c->cfg;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, deflt;
	struct kube_exec_run *r;
	char **env = NULL;
	int pipefd[2] = { -1, -1 }, ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->out_fd = r->pidfd = -1;
	if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK)) {
		ret = -errno;
		snprintf(err, errlen, "exec plugin %s: pipe: %s", cfg->exec->command, strerror(-ret));
		goto cleanup;
	}
	/* Only our end is non-blocking: the plugin's stdout behaves as usual. */
	if (fcntl(pipefd[1], F_SETFL, 0)) {
		ret = -errno;
		snprintf(err, errlen, "exec plugin %s: pipe: %s", cfg->exec->command, strerror(-ret));
		goto cleanup;
	}
	env = exec_env(cfg);
	if (!env) {
		ret = -ENOMEM;
		snprintf(err, errlen, "exec plugin %s: %s", cfg->exec->command, strerror(ENOMEM));
		goto cleanup;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	/* Its stderr would reach the agent's log unescaped (forged lines) and some plugins print
	 * tokens there when debugging: never echo plugin output. */
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
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
	/* Its own process group: a timeout or our exit kills whatever it started too. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						POSIX_SPAWN_SETPGROUP);
	ret = -posix_spawnp(&r->pid, cfg->exec->command, &fa, &attr, cfg->exec->argv, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (ret) {
		snprintf(err, errlen, "exec plugin %s: %s", cfg->exec->command, strerror(-ret));
		goto cleanup;
	}
	r->out_fd = pipefd[0];
	pipefd[0] = -1;
	r->deadline_ns = mono_ns() + (uint64_t)c->exec_timeout_ms * 1000000ULL;
	r->pidfd = pidfd_open(r->pid, 0);
	if (r->pidfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "exec plugin %s: pidfd_open: %s", cfg->exec->command,
			 strerror(-ret));
		kill_group(r);
		while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
			;
		r->reaped = true;
		goto cleanup;
	}
	c->run = r;
	r = NULL;
	ret = 0;
cleanup:
	close_fd(&pipefd[0]);
	close_fd(&pipefd[1]);
	free_env(env);
	run_free(r);
	return ret;
}

/* Read what the plugin wrote so far; EOF closes our end. */
static void exec_read(struct kube_exec_run *r)
{
	while (r->out_fd >= 0) {
		ssize_t got;

		if (r->cap - r->len < 4096) {
			char *nb = malloc(r->cap + 65536);

			if (!nb) {
				r->error = -ENOMEM;
				kill_group(r);
				close_fd(&r->out_fd);
				return;
			}
			/* Not realloc: the old copy of a secret must be wiped, not just freed. */
			if (r->buf)
				memcpy(nb, r->buf, r->len);
			secret_free(&r->buf, r->cap);
			r->buf = nb;
			r->cap += 65536;
		}
		got = read(r->out_fd, r->buf + r->len, r->cap - r->len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			return;
		if (got <= 0) {
			close_fd(&r->out_fd);
			return;
		}
		r->len += (size_t)got;
		if (r->len > KUBE_EXEC_MAX_OUTPUT) {
			r->error = -E2BIG;
			kill_group(r);
			close_fd(&r->out_fd);
			return;
		}
	}
}

int kube_cred_exec_fds(const struct kube_cred *c, int fds[2])
{
	int n = 0;

	if (!c->run)
		return 0;
	if (c->run->out_fd >= 0)
		fds[n++] = c->run->out_fd;
	if (c->run->pidfd >= 0)
		fds[n++] = c->run->pidfd;
	return n;
}

uint64_t kube_cred_exec_deadline(const struct kube_cred *c)
{
	return c->run ? c->run->deadline_ns : 0;
}

void kube_cred_exec_abort(struct kube_cred *c)
{
	run_abort(c->run);
	c->run = NULL;
}

bool kube_cred_exec_running(const struct kube_cred *c)
{
	return c->run != NULL;
}

/* The run is over: turn its output into the credential, or say why not. */
static int exec_finish(struct kube_cred *c, struct kube_exec_run *r, char *err, size_t errlen)
{
	const char *cmd = c->cfg->exec->command;

	if (r->error == -ETIMEDOUT) {
		snprintf(err, errlen, "exec plugin %s: no answer in %d ms, killed", cmd,
			 c->exec_timeout_ms);
		return r->error;
	}
	if (r->error == -E2BIG) {
		snprintf(err, errlen, "exec plugin %s: output over %d bytes, killed", cmd,
			 KUBE_EXEC_MAX_OUTPUT);
		return r->error;
	}
	if (r->error) {
		snprintf(err, errlen, "exec plugin %s: %s", cmd, strerror(-r->error));
		return r->error;
	}
	if (WIFSIGNALED(r->status)) {
		snprintf(err, errlen, "exec plugin %s killed by signal %d", cmd, WTERMSIG(r->status));
		return -EPERM;
	}
	if (!WIFEXITED(r->status) || WEXITSTATUS(r->status)) {
		snprintf(err, errlen, "exec plugin %s failed (status %d)", cmd,
			 WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1);
		return -EPERM;
	}
	if (!r->len) {
		snprintf(err, errlen, "exec plugin %s printed nothing", cmd);
		return -EINVAL;
	}
	r->buf[r->len] = 0;
	return kube_cred_parse_exec(c, c->cfg->exec->api_version, r->buf, err, errlen);
}

int kube_cred_exec_event(struct kube_cred *c, char *err, size_t errlen)
{
	struct kube_exec_run *r = c->run;
	siginfo_t si = {};
	int ret;

	if (!r)
		return 0;
	exec_read(r);
	/* Exited? Look without reaping first: while it is a zombie its group id is still ours
	 * to signal, and anything it left behind holding the pipe open goes with it. */
	if (!r->reaped && !waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT) &&
	    si.si_pid == r->pid) {
		kill_group(r);
		while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
			;
		r->reaped = true;
		close_fd(&r->pidfd);
		exec_read(r);
	}
	if ((r->out_fd >= 0 || !r->reaped) && mono_ns() >= r->deadline_ns && !r->error) {
		r->error = -ETIMEDOUT;
		kill_group(r);
		close_fd(&r->out_fd);
	}
	if (r->out_fd >= 0 || !r->reaped)
		return -EINPROGRESS;
	c->run = NULL;
	ret = exec_finish(c, r, err, errlen);
	run_free(r);
	return ret;
}

static int read_token_file(struct kube_cred *c, char *err, size_t errlen)
{
	char buf[16384];
	size_t n = 0;
	int ret;

	/* A token longer than the buffer is an error, not silently cut (a certain 401). */
	ret = read_file_into(c->cfg->token_file, buf, sizeof(buf), &n);
	if (ret) {
		explicit_bzero(buf, sizeof(buf));
		snprintf(err, errlen, "token file %s: %s", c->cfg->token_file,
			 ret == -EFBIG ? "larger than 16 KiB" : strerror(-ret));
		return ret;
	}
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

		/* One run at a time: a refresh asked for meanwhile gets its answer. */
		if (c->run)
			return -EINPROGRESS;
		if (force || !c->exec_valid || expired) {
			ret = exec_start(c, err, errlen);
			return ret ? ret : -EINPROGRESS;
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
