// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit test for user/kubeconfig.c and user/kube_cred.c: kubeconfig loading and merging,
 * in-cluster config, base64 and RFC 3339 helpers, ExecCredential parsing, and credential
 * refresh (token files, exec plugins run for real through a shell-script fixture).
 * Run from the repository's top directory (fixtures are under tests/unit/fixtures/).
 */
#include "kube_cred.h"
#include "kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <jansson.h>

#include "check.h"

#define FIX "tests/unit/fixtures/kubeconfig-basic"
#define CFG FIX "/config"
#define MRG "tests/unit/fixtures/kubeconfig-merge"
#define PLUGIN "tests/unit/fixtures/kubeconfig-exec-plugin.sh"

#define API_V1 "client.authentication.k8s.io/v1"
#define API_V1BETA1 "client.authentication.k8s.io/v1beta1"

#define SEC 1000000000ULL

static char tmpdir[] = "/tmp/test_kubeconfig.XXXXXX";

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* kube_cred_refresh(), then an exec plugin run driven to its end the way the agent's loop
 * does it: poll its descriptors until the deadline, kube_cred_exec_event() on each wakeup. */
static int refresh_wait(struct kube_cred *c, uint64_t now_ns, bool force, char *err,
			size_t errlen)
{
	int ret = kube_cred_refresh(c, now_ns, force, err, errlen);

	while (ret == -EINPROGRESS) {
		int fds[2], n = kube_cred_exec_fds(c, fds);
		uint64_t now = mono_ns(), dl = kube_cred_exec_deadline(c);
		struct pollfd p[2];

		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		poll(p, (nfds_t)n, dl > now ? (int)((dl - now) / 1000000) + 1 : 0);
		ret = kube_cred_exec_event(c, err, errlen);
	}
	return ret;
}

static char *__attribute__((format(printf, 1, 2))) xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		perror("vasprintf");
		exit(2);
	}
	va_end(ap);
	return s;
}

static bool streq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static const char *show(const char *s)
{
	return s ? s : "(null)";
}

/* Compare a NULL-terminated string vector with the expected NULL-terminated list. */
static bool strv_eq(char *const *v, const char *const *want)
{
	size_t i;

	if (!v)
		return false;
	for (i = 0; want[i]; i++)
		if (!streq(v[i], want[i])) {
			printf("#   [%zu] got \"%s\" want \"%s\"\n", i, show(v[i]), want[i]);
			return false;
		}
	if (v[i])
		printf("#   extra entry [%zu] \"%s\"\n", i, v[i]);
	return v[i] == NULL;
}

/* A file under tmpdir with the given content; returns its malloc'd path. */
static char *__attribute__((format(printf, 2, 3))) tmp_file(const char *name, const char *fmt,
							   ...)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	va_list ap;
	FILE *f;

	f = fopen(path, "we");
	if (!f) {
		perror(path);
		exit(2);
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	if (fclose(f)) {
		perror(path);
		exit(2);
	}
	return path;
}

/* Whole file as a NUL-terminated string (NULL if unreadable); *lenp gets its length. */
static char *slurp_len(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	for (;;) {
		char *nb = realloc(buf, len + 4097);
		size_t got;

		if (!nb) {
			free(buf);
			fclose(f);
			return NULL;
		}
		buf = nb;
		got = fread(buf + len, 1, 4096, f);
		len += got;
		if (!got)
			break;
	}
	fclose(f);
	buf[len] = 0;
	if (lenp)
		*lenp = len;
	return buf;
}

static char *slurp(const char *path)
{
	return slurp_len(path, NULL);
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Is the in-memory PEM exactly the content of that file? */
static bool pem_matches_file(const struct kube_pem *p, const char *path)
{
	size_t len = 0;
	char *want = slurp_len(path, &len);
	bool ok = want && p->data && p->len == len && !memcmp(p->data, want, len) &&
		  p->data[len] == 0 && !p->path;

	free(want);
	return ok;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static bool load_ok(const char *paths, const char *ctx, struct kube_config *cfg)
{
	char err[1024] = "";
	int rc = kubeconfig_load(paths, ctx, cfg, err, sizeof(err));

	if (rc)
		printf("#   kubeconfig_load(%s, %s) = %d: %s\n", paths, show(ctx), rc, err);
	return rc == 0;
}

/* Expect kubeconfig_load to fail (with want_rc unless 0), leave *out zeroed, and say every
 * one of the NULL-terminated substrings. */
static void expect_load_error_(const char *desc, const char *paths, const char *ctx, int want_rc,
			       ...)
{
	struct kube_config cfg;
	char err[1024];
	const char *sub;
	va_list ap;
	bool ok;
	int rc;

	memset(&cfg, 0x5a, sizeof(cfg));
	memset(err, 'X', sizeof(err));
	rc = kubeconfig_load(paths, ctx, &cfg, err, sizeof(err));
	ok = rc < 0 && (!want_rc || rc == want_rc) && memchr(err, 0, sizeof(err)) &&
	     all_zero(&cfg, sizeof(cfg));
	va_start(ap, want_rc);
	while (ok && (sub = va_arg(ap, const char *)))
		ok = strstr(err, sub) != NULL;
	va_end(ap);
	if (!ok)
		printf("#   rc=%d (want %d) err=\"%.*s\"\n", rc, want_rc, (int)sizeof(err), err);
	check(ok, "%s", desc);
	if (!rc)
		kube_config_free(&cfg);
}

#define expect_load_error(desc, paths, ctx, want_rc, ...)                                          \
	expect_load_error_(desc, paths, ctx, want_rc, __VA_ARGS__, NULL)

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------------------------------ */

static void test_b64(void)
{
	static const struct {
		const char *in, *out;
		size_t len;
		const char *desc;
	} good[] = {
		{ "aGVsbG8=", "hello", 5, "plain" },
		{ "aGVsbG8gd29ybGQ=", "hello world", 11, "one padding char" },
		{ "YWJj", "abc", 3, "no padding needed" },
		{ "aGVs\nbG8g\r\n d29y\tbGQ=\n", "hello world", 11, "newlines, CR, spaces, tabs" },
		{ "AAEC/w==", "\0\1\2\377", 4, "binary with NUL and 0xff" },
		{ "", "", 0, "empty input" },
	};
	static const char *const bad[] = {
		"not*base64!", "aGVsbG8",   "a",	  "====",      "aGVsbG8=aGVs",
		"aGVs_bG8=",   "aGVs-bG8=", "YWJj-!!!", "YWJj\x01", "aGVsbG8=\xc3\xa9",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *out = NULL;
		size_t len = 99;
		int rc = kube_b64_decode(good[i].in, &out, &len);
		bool ok = rc == 0 && out && len == good[i].len &&
			  !memcmp(out, good[i].out, len) && out[len] == 0;

		if (!ok)
			printf("#   rc=%d len=%zu\n", rc, len);
		check(ok, "b64: %s", good[i].desc);
		free(out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out = (char *)"untouched";
		size_t len = 99;
		int rc = kube_b64_decode(bad[i], &out, &len);

		check(rc == -EINVAL && streq(out, "untouched"), "b64: \"%s\" is invalid", bad[i]);
		if (rc == 0)
			free(out);
	}
}

static void test_parse_time(void)
{
	static const time_t want = 1767323045; /* 2026-01-02T03:04:05Z */
	static const char *const good[] = {
		"2026-01-02T03:04:05Z",
		"2026-01-02T03:04:05z",
		"2026-01-02T03:04:05.123456789Z",
		"2026-01-02T03:04:05.5Z",
		"2026-01-02T05:04:05+02:00",
		"2026-01-01T21:34:05-05:30",
		"2026-01-02T04:04:05.250+01:00",
		"2026-01-02T03:04:05+00:00",
	};
	static const char *const bad[] = {
		"",
		"2026-01-02",
		"2026-01-02T03:04:05",
		"2026-01-02T03:04:05+0200",
		"2026-01-02T03:04:05+02",
		"2026-01-02T03:04:05Zjunk",
		"2026-01-02T03:04:05Z ",
		"2026-01-02T03:04:05+02:00:00",
		"2026-01-02T03:04:05+ab:cd",
		"2026-01-02T03:04:05+0x:00",
		"2026-13-02T03:04:05Z",
		"tomorrow",
		"1767323045",
	};
	time_t t;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc;

		t = 0;
		rc = kube_parse_time(good[i], &t);
		if (rc || t != want)
			printf("#   rc=%d t=%lld want %lld\n", rc, (long long)t, (long long)want);
		check(rc == 0 && t == want, "time: %s", good[i]);
	}
	t = 0;
	check(kube_parse_time("1970-01-01T00:00:00Z", &t) == 0 && t == 0, "time: the epoch");
	check(kube_parse_time("2024-02-29T23:59:59-00:30", &t) == 0 && t == 1709252999,
	      "time: leap day with a negative offset crossing midnight");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = 42;
		check(kube_parse_time(bad[i], &t) == -EINVAL && t == 42, "time: \"%s\" is invalid",
		      bad[i]);
	}
	check(kube_parse_time(NULL, &t) == -EINVAL, "time: NULL is invalid");
}

/* ------------------------------------------------------------------------------------------ */

static void test_load_fixture(void)
{
	struct kube_config c;

	if (load_ok(CFG, NULL, &c)) {
		check(streq(c.server, "https://dev.example.test:6443"),
		      "current-context dev: server, trailing slash trimmed (%s)", show(c.server));
		check(streq(c.tls_server_name, "api.dev.example.test"), "dev: tls-server-name");
		check(streq(c.ca.path, FIX "/ca.crt") && !c.ca.data && !c.ca.len,
		      "dev: certificate-authority relative to the kubeconfig's directory (%s)",
		      show(c.ca.path));
		check(streq(c.cert.path, FIX "/certs/client.crt") &&
			      streq(c.key.path, FIX "/certs/client.key") && !c.cert.data &&
			      !c.key.data,
		      "dev: client-certificate and client-key paths resolved");
		check(!c.insecure && !c.token && !c.token_file && !c.exec, "dev: nothing else set");
		check(c.where && strstr(c.where, CFG) && strstr(c.where, "dev"),
		      "dev: where names the file and context (%s)", show(c.where));
		kube_config_free(&c);
		check(all_zero(&c, sizeof(c)), "kube_config_free zeroes the struct");
	} else {
		check(false, "load the fixture's current-context");
	}
	kube_config_free(&c); /* twice is harmless */
	kube_config_free(NULL);

	if (load_ok(CFG, "prod", &c)) {
		check(streq(c.server, "https://10.0.0.1:6443"), "explicit context prod: server");
		check(pem_matches_file(&c.ca, FIX "/ca.crt"),
		      "prod: certificate-authority-data decoded in memory");
		check(pem_matches_file(&c.cert, FIX "/certs/client.crt") &&
			      pem_matches_file(&c.key, FIX "/certs/client.key"),
		      "prod: client-certificate-data and client-key-data decoded");
		check(!c.tls_server_name && !c.token && !c.exec, "prod: no tls-server-name or token");
		check(c.where && strstr(c.where, "context prod"), "prod: where names the context");
		kube_config_free(&c);
	} else {
		check(false, "load context prod");
	}

	if (load_ok(CFG, "wrapped", &c)) {
		check(pem_matches_file(&c.ca, FIX "/ca.crt"),
		      "certificate-authority-data with line breaks (YAML block scalar)");
		check(streq(c.server, "https://[fd00::10]:443"), "IPv6 server URL kept");
		check(streq(c.token, "static-token-123") && !c.token_file, "static token");
		kube_config_free(&c);
	} else {
		check(false, "load context wrapped");
	}

	if (load_ok(CFG, "insecure", &c)) {
		check(c.insecure, "insecure-skip-tls-verify: true");
		check(streq(c.server, "https://insecure.example.test:8443"),
		      "several trailing slashes trimmed (%s)", show(c.server));
		check(streq(c.token_file, FIX "/token") && !c.token,
		      "tokenFile resolved against the kubeconfig's directory (%s)",
		      show(c.token_file));
		check(!c.ca.path && !c.ca.data, "no CA: system trust store");
		kube_config_free(&c);
	} else {
		check(false, "load context insecure");
	}

	if (load_ok(CFG, "anonymous", &c)) {
		check(!c.token && !c.token_file && !c.exec && !c.cert.path && !c.cert.data &&
			      !c.key.path && !c.key.data,
		      "context without a user: no credentials");
		kube_config_free(&c);
	} else {
		check(false, "load a context without a user");
	}

	if (load_ok(CFG, "exec-v1", &c)) {
		static const char *const argv[] = { FIX "/./bin/get-token", "--region", "eu-west-1",
						    NULL };
		static const char *const env[] = { "AWS_PROFILE=prod", "EMPTY_VALUE=", NULL };

		check(c.exec && streq(c.exec->api_version, API_V1), "exec v1: apiVersion");
		check(c.exec && streq(c.exec->command, FIX "/./bin/get-token"),
		      "exec: relative command with a slash resolved against the kubeconfig dir (%s)",
		      c.exec ? show(c.exec->command) : "-");
		check(c.exec && strv_eq(c.exec->argv, argv), "exec: argv = command + args");
		check(c.exec && strv_eq(c.exec->env, env), "exec: env as NAME=value strings");
		check(c.exec && c.exec->provide_cluster_info, "exec: provideClusterInfo");
		check(streq(c.server, "https://dev.example.test:6443") && c.ca.path,
		      "exec: cluster settings still loaded");
		kube_config_free(&c);
	} else {
		check(false, "load context exec-v1");
	}

	if (load_ok(CFG, "exec-v1beta1", &c)) {
		static const char *const argv[] = { "kubelogin", "get-token", "--login", "azurecli",
						    NULL };
		static const char *const env[] = { NULL };

		check(c.exec && streq(c.exec->api_version, API_V1BETA1), "exec v1beta1: apiVersion");
		check(c.exec && streq(c.exec->command, "kubelogin"),
		      "exec: a bare command is left for a PATH lookup");
		check(c.exec && strv_eq(c.exec->argv, argv), "exec v1beta1: argv");
		check(c.exec && strv_eq(c.exec->env, env), "exec without env: empty env vector");
		check(c.exec && !c.exec->provide_cluster_info, "exec: provideClusterInfo defaults off");
		kube_config_free(&c);
	} else {
		check(false, "load context exec-v1beta1");
	}

	if (load_ok(CFG, "exec-subdir", &c)) {
		static const char *const argv[] = { FIX "/bin/plugin", NULL };

		check(c.exec && streq(c.exec->command, FIX "/bin/plugin") &&
			      strv_eq(c.exec->argv, argv),
		      "exec: \"bin/plugin\" resolved, no args");
		kube_config_free(&c);
	} else {
		check(false, "load context exec-subdir");
	}

	if (load_ok(CFG, "exec-abs", &c)) {
		check(c.exec && streq(c.exec->command, "/usr/local/bin/aws-iam-authenticator"),
		      "exec: absolute command kept");
		kube_config_free(&c);
	} else {
		check(false, "load context exec-abs");
	}
}

static void test_load_errors(void)
{
	expect_load_error("unknown context: error names it", CFG, "nope", -ENOENT, "\"nope\"",
			  "not found");
	expect_load_error("context's cluster missing: error names it", CFG, "ghost-cluster-ctx",
			  -ENOENT, "ghost-cluster", "ghost-cluster-ctx");
	expect_load_error("context's user missing: error names it", CFG, "ghost-user-ctx", -ENOENT,
			  "ghost-user", "ghost-user-ctx");
	expect_load_error("context without a cluster: error", CFG, "no-cluster-ctx", -ENOENT,
			  "cluster", "no-cluster-ctx");
	expect_load_error("http:// server rejected", CFG, "http", -EINVAL, "https", "http-cluster");
	expect_load_error("cluster without server rejected", CFG, "no-server", -EINVAL, "https",
			  "no-server-cluster");
	expect_load_error("missing certificate-authority file: error names it", CFG, "missing-ca",
			  -ENOENT, FIX "/no-such-ca.crt");
	expect_load_error("bad certificate-authority-data base64", CFG, "bad-b64", -EINVAL,
			  "certificate-authority-data", "base64");
	expect_load_error("client-certificate without client-key", CFG, "cert-only", -EINVAL,
			  "cert-only-user", "certificate and key");
	expect_load_error("client-key-data without client-certificate", CFG, "key-only", -EINVAL,
			  "key-data-only-user");
	expect_load_error("bad client-key-data base64", CFG, "bad-key-data", -EINVAL,
			  "client-key-data", "base64");
	expect_load_error("missing client-key file: error names it", CFG, "missing-key", -ENOENT,
			  FIX "/certs/no-such.key");
	expect_load_error("unsupported exec apiVersion", CFG, "exec-alpha", -EINVAL,
			  "client.authentication.k8s.io/v1alpha1", "not supported");
	expect_load_error("exec without apiVersion", CFG, "exec-no-api", -EINVAL, "apiVersion");
	expect_load_error("exec without command", CFG, "exec-no-command", -EINVAL,
			  "exec without command");
	expect_load_error("exec env name with '='", CFG, "exec-bad-env", -EINVAL, "env");
	expect_load_error("missing kubeconfig file: error names it", "/nonexistent/kubeconfig", NULL,
			  -ENOENT, "/nonexistent/kubeconfig");
}

/* Kubeconfigs written at run time, for paths and contents the fixtures cannot express. */
static void test_load_runtime(void)
{
	struct kube_config c;
	char *p, *p2, *pem, cwd[PATH_MAX];

	p = tmp_file("broken.yaml", "apiVersion: v1\nclusters:\n- name: x\n  cluster: {server: ]\n");
	expect_load_error("YAML syntax error: error names the file and line", p, NULL, -EINVAL, p,
			  "line");
	free(p);

	p = tmp_file("nocurrent.yaml",
		     "clusters:\n- {name: k, cluster: {server: 'https://k'}}\n"
		     "contexts:\n- {name: c, context: {cluster: k}}\n");
	expect_load_error("no current-context and no context given", p, NULL, -EINVAL,
			  "current-context");
	if (load_ok(p, "c", &c)) {
		check(streq(c.server, "https://k"), "no current-context but an explicit context");
		kube_config_free(&c);
	}
	free(p);

	p = tmp_file("empty.yaml", "%s", "");
	expect_load_error("empty kubeconfig: no current-context", p, NULL, -EINVAL, "current-context");
	free(p);

	p = tmp_file("scalar.yaml", "just a string\n");
	expect_load_error("kubeconfig that is a scalar: no context", p, "c", -ENOENT, "\"c\"");
	free(p);

	/* Absolute kubeconfig path; relative references resolve under its directory. */
	pem = tmp_file("ca.pem", "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n");
	p = tmp_file("abs.yaml",
		     "current-context: c\n"
		     "clusters:\n- {name: k, cluster: {server: 'https://k.test/', "
		     "certificate-authority: ca.pem}}\n"
		     "users:\n- name: u\n  user:\n    tokenFile: sub/tok\n"
		     "    exec: {apiVersion: " API_V1 ", command: ./plugin}\n"
		     "contexts:\n- {name: c, context: {cluster: k, user: u}}\n");
	if (load_ok(p, NULL, &c)) {
		char *tok = xasprintf("%s/sub/tok", tmpdir), *cmd = xasprintf("%s/./plugin", tmpdir);

		check(streq(c.ca.path, pem), "absolute kubeconfig path: CA resolved (%s)",
		      show(c.ca.path));
		check(streq(c.token_file, tok),
		      "tokenFile not checked for existence at load, resolved (%s)",
		      show(c.token_file));
		check(c.exec && streq(c.exec->command, cmd), "absolute kubeconfig path: exec command");
		check(streq(c.server, "https://k.test"), "trailing slash trimmed after host");
		free(tok);
		free(cmd);
		kube_config_free(&c);
	}
	free(p);

	/* A kubeconfig named without a directory: paths stay relative to the cwd, its dir. */
	if (getcwd(cwd, sizeof(cwd)) && !chdir(tmpdir)) {
		int rc;

		p = tmp_file("plain.yaml",
			     "current-context: c\n"
			     "clusters:\n- {name: k, cluster: {server: 'https://k', "
			     "certificate-authority: ca.pem}}\n"
			     "contexts:\n- {name: c, context: {cluster: k}}\n");
		rc = load_ok("plain.yaml", NULL, &c);
		check(rc && streq(c.ca.path, "ca.pem"),
		      "kubeconfig without a directory: CA path relative to the cwd (%s)",
		      rc ? show(c.ca.path) : "-");
		if (rc)
			kube_config_free(&c);
		if (chdir(cwd)) {
			perror("chdir back");
			exit(2);
		}
		free(p);
	} else {
		check(false, "chdir to the temporary directory");
	}
	free(pem);

	/* kubectl writes `current-context: ""`: an empty one does not count as set. */
	p = tmp_file("emptycur.yaml", "current-context: \"\"\n");
	p2 = tmp_file("realcur.yaml",
		      "current-context: c\n"
		      "clusters:\n- {name: k, cluster: {server: 'https://realcur'}}\n"
		      "contexts:\n- {name: c, context: {cluster: k}}\n");
	{
		char *list = xasprintf("%s:%s", p, p2);

		if (load_ok(list, NULL, &c)) {
			check(streq(c.server, "https://realcur"),
			      "empty current-context in the first file: the next file's is used");
			kube_config_free(&c);
		} else {
			check(false, "empty current-context in the first file: the next file's is used");
		}
		free(list);
	}
	expect_load_error("only an empty current-context: error", p, NULL, -EINVAL,
			  "current-context");
	free(p);
	free(p2);
}

static void test_merge(void)
{
	struct kube_config c;

	if (load_ok(MRG "/a.yaml:" MRG "/sub/b.yaml", NULL, &c)) {
		check(streq(c.server, "https://b.example.test:6443"),
		      "merge: current-context from the first file that sets it (%s)",
		      show(c.server));
		check(streq(c.ca.path, MRG "/sub/ca-b.crt"),
		      "merge: CA relative to the file holding the cluster (%s)", show(c.ca.path));
		check(streq(c.token_file, MRG "/sub/token-b"),
		      "merge: tokenFile relative to the file holding the user (%s)",
		      show(c.token_file));
		check(c.where && strstr(c.where, "ctx-b"), "merge: where names the context");
		kube_config_free(&c);
	} else {
		check(false, "merge a:b");
	}

	if (load_ok(MRG "/a.yaml:" MRG "/sub/b.yaml:" MRG "/c.yaml", NULL, &c)) {
		check(streq(c.server, "https://b.example.test:6443"),
		      "merge: a later current-context does not override an earlier one");
		kube_config_free(&c);
	} else {
		check(false, "merge a:b:c");
	}

	if (load_ok(MRG "/c.yaml:" MRG "/a.yaml:" MRG "/sub/b.yaml", NULL, &c)) {
		check(streq(c.server, "https://a.example.test") && c.insecure &&
			      streq(c.token, "a-token"),
		      "merge: current-context from a file with nothing else, defined elsewhere");
		kube_config_free(&c);
	} else {
		check(false, "merge c:a:b");
	}

	if (load_ok(MRG "/a.yaml:" MRG "/sub/b.yaml", "shared-ctx", &c)) {
		check(streq(c.server, "https://a.example.test") && streq(c.token, "a-token") &&
			      !c.token_file,
		      "merge: first file defining context, cluster and user wins");
		kube_config_free(&c);
	} else {
		check(false, "merge a:b shared-ctx");
	}

	if (load_ok(MRG "/sub/b.yaml:" MRG "/a.yaml", "shared-ctx", &c)) {
		check(streq(c.server, "https://b.example.test:6443") && !c.token &&
			      streq(c.token_file, MRG "/sub/token-b"),
		      "merge: order reversed, the other file wins");
		kube_config_free(&c);
	} else {
		check(false, "merge b:a shared-ctx");
	}

	if (load_ok(MRG "/a.yaml:" MRG "/sub/b.yaml", "mixed", &c)) {
		check(streq(c.server, "https://a.example.test") && c.insecure &&
			      streq(c.token_file, MRG "/sub/token-b"),
		      "merge: context in b, its cluster from a and its user from b");
		kube_config_free(&c);
	} else {
		check(false, "merge a:b mixed");
	}

	if (load_ok("/nonexistent/x:" MRG "/a.yaml:/nonexistent/y:" MRG "/sub/b.yaml", NULL, &c)) {
		check(streq(c.server, "https://b.example.test:6443"),
		      "merge: missing files in the list skipped");
		kube_config_free(&c);
	} else {
		check(false, "merge: missing files in the list skipped");
	}

	if (load_ok(MRG "/a.yaml:" MRG "/sub/b.yaml:/nonexistent/z", NULL, &c)) {
		check(streq(c.server, "https://b.example.test:6443"),
		      "merge: missing last file in the list skipped");
		kube_config_free(&c);
	} else {
		check(false, "merge: missing last file in the list skipped");
	}

	if (load_ok("::" MRG "/a.yaml::", "ctx-a", &c)) {
		check(streq(c.server, "https://a.example.test"), "merge: empty list entries ignored");
		kube_config_free(&c);
	} else {
		check(false, "merge: empty list entries ignored");
	}

	expect_load_error("merge: all files missing", "/nonexistent/x:/nonexistent/y", NULL, -ENOENT,
			  "no kubeconfig file found", "/nonexistent/x");
	expect_load_error("merge: a context in no file", MRG "/a.yaml:" MRG "/sub/b.yaml", "ctx-c",
			  -ENOENT, "\"ctx-c\"");
	{
		char *bad = tmp_file("bad-in-list.yaml", "a: [1, 2\n");
		char *list = xasprintf("%s:%s", MRG "/a.yaml", bad);

		expect_load_error("merge: a broken file in the list is an error, not skipped", list,
				  "ctx-a", -EINVAL, bad);
		free(list);
		free(bad);
	}
}

/* How many warnings mention every one of the NULL-terminated substrings. */
static size_t warned_(const struct kube_config *c, ...)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nwarnings; i++) {
		const char *sub;
		bool all = true;
		va_list ap;

		va_start(ap, c);
		while (all && (sub = va_arg(ap, const char *)))
			all = strstr(c->warnings[i], sub) != NULL;
		va_end(ap);
		n += all;
	}
	return n;
}

#define warned(c, ...) warned_(c, __VA_ARGS__, NULL)

static void show_warnings(const struct kube_config *c)
{
	for (size_t i = 0; i < c->nwarnings; i++)
		printf("#   warning: %s\n", c->warnings[i]);
}

static void set_mode(const char *path, mode_t mode)
{
	if (chmod(path, mode)) {
		perror(path);
		exit(2);
	}
}

/* Files others can write (or read, holding secrets) are named in warnings, never refused. */
static void test_permissions(void)
{
	char *dir = xasprintf("%s/perm", tmpdir), *kc, *kc2, *list, *tok, *ca, *crt, *key, *inl;
	char *plugin, *sa, *satok;
	struct kube_config c;
	char err[512];
	int rc;

	if (mkdir(dir, 0700)) {
		perror(dir);
		exit(2);
	}
	tok = tmp_file("perm/token", "t\n");
	ca = tmp_file("perm/ca.crt", "x\n");
	crt = tmp_file("perm/client.crt", "x\n");
	key = tmp_file("perm/client.key", "x\n");
	plugin = tmp_file("perm/plugin", "#!/bin/sh\n");
	kc = tmp_file("perm/config",
		      "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
		      "clusters:\n- {name: k, cluster: {server: https://h:1, certificate-authority: ca.crt}}\n"
		      "contexts:\n- {name: c, context: {cluster: k, user: u}}\n"
		      "users:\n- {name: u, user: {tokenFile: token, client-certificate: client.crt, "
		      "client-key: client.key, exec: {apiVersion: client.authentication.k8s.io/v1, "
		      "command: ./plugin}}}\n");
	kc2 = tmp_file("perm/extra", "apiVersion: v1\nkind: Config\n");
	inl = tmp_file("perm/inline",
		       "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
		       "clusters:\n- {name: k, cluster: {server: https://h:1}}\n"
		       "contexts:\n- {name: c, context: {cluster: k, user: u}}\n"
		       "users:\n- {name: u, user: {token: inline-secret}}\n");
	list = xasprintf("%s:%s", kc, kc2);
	{
		char *all[] = { tok, ca, crt, key, plugin, kc, kc2, inl };

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			set_mode(all[i], 0600);
	}

	if (load_ok(list, NULL, &c)) {
		show_warnings(&c);
		check(c.nwarnings == 0 && !c.warnings, "permissions: all files 0600 -> no warning");
		kube_config_free(&c);
	}

	set_mode(kc, 0666);
	if (load_ok(list, NULL, &c)) {
		show_warnings(&c);
		check(c.nwarnings == 1 && warned(&c, "kubeconfig", kc, "world-writable", "0666"),
		      "permissions: world-writable kubeconfig -> one warning naming it");
		kube_config_free(&c);
	}
	set_mode(kc, 0600);

	set_mode(kc2, 0620);
	if (load_ok(list, NULL, &c)) {
		show_warnings(&c);
		check(c.nwarnings == 1 && warned(&c, "kubeconfig", kc2, "group-writable"),
		      "permissions: group-writable second file of a KUBECONFIG list -> warned");
		kube_config_free(&c);
	}
	set_mode(kc2, 0600);

	set_mode(tok, 0646);
	set_mode(ca, 0660);
	set_mode(crt, 0602);
	set_mode(plugin, 0777);
	if (load_ok(list, NULL, &c)) {
		show_warnings(&c);
		check(c.nwarnings == 4 && warned(&c, "token file", tok, "world-writable") &&
			      warned(&c, "certificate authority", ca, "group-writable") &&
			      warned(&c, "client certificate", crt, "world-writable") &&
			      warned(&c, "exec plugin", "/plugin", "world-writable"),
		      "permissions: writable token file, CA, certificate and exec plugin -> "
		      "each named");
		kube_config_free(&c);
	}
	/* Readable by others: projected service account tokens are 0644, CAs and
	 * certificates are public; only keys and inline credentials are secrets. */
	set_mode(tok, 0644);
	set_mode(ca, 0644);
	set_mode(crt, 0644);
	set_mode(plugin, 0755);
	set_mode(key, 0644);
	set_mode(kc, 0644);
	if (load_ok(list, NULL, &c)) {
		show_warnings(&c);
		check(c.nwarnings == 1 && warned(&c, "client key", key, "world-readable", "0644"),
		      "permissions: world-readable client key -> warned; readable kubeconfig without "
		      "an inline secret, token, CA and certificate -> not");
		kube_config_free(&c);
	}
	set_mode(key, 0600);

	set_mode(inl, 0644);
	if (load_ok(inl, NULL, &c)) {
		show_warnings(&c);
		check(c.nwarnings == 1 &&
			      warned(&c, "kubeconfig", inl, "holds a credential", "world-readable"),
		      "permissions: world-readable kubeconfig with an inline token -> warned");
		kube_config_free(&c);
	}
	set_mode(inl, 0600);

	if (geteuid() == 0 && chown(kc2, 4242, 4242) == 0) {
		if (load_ok(list, NULL, &c)) {
			show_warnings(&c);
			check(c.nwarnings == 1 && warned(&c, kc2, "owned by uid 4242"),
			      "permissions: kubeconfig owned by another user -> warned");
			kube_config_free(&c);
		}
		if (chown(kc2, 0, 0))
			exit(2);
	} else {
		printf("# (not root: ownership case not run)\n");
	}

	/* In-cluster: the service account token. */
	sa = xasprintf("%s/sa", dir);
	if (mkdir(sa, 0700))
		exit(2);
	satok = tmp_file("perm/sa/token", "x\n");
	set_mode(satok, 0666);
	rc = kubeconfig_in_cluster("10.96.0.1", "443", sa, &c, err, sizeof(err));
	check(rc == 0 && c.nwarnings == 1 && warned(&c, "token file", satok, "world-writable"),
	      "permissions: world-writable service account token -> warned");
	if (!rc)
		kube_config_free(&c);
	set_mode(satok, 0644);
	rc = kubeconfig_in_cluster("10.96.0.1", "443", sa, &c, err, sizeof(err));
	check(rc == 0 && c.nwarnings == 0, "permissions: service account token 0644 -> no warning");
	if (!rc)
		kube_config_free(&c);
	check(all_zero(&c, sizeof(c)), "permissions: kube_config_free frees and zeroes the warnings");

	free(sa);
	free(satok);
	free(list);
	free(inl);
	free(kc2);
	free(kc);
	free(plugin);
	free(key);
	free(crt);
	free(ca);
	free(tok);
	free(dir);
}

static void test_in_cluster(void)
{
	char *sa = xasprintf("%s/sa", tmpdir), *tok, *ca, *nosa;
	struct kube_config c;
	char err[512];
	int rc;

	if (mkdir(sa, 0700)) {
		perror(sa);
		exit(2);
	}
	tok = tmp_file("sa/token", "sa-token-abc\n");
	ca = tmp_file("sa/ca.crt", "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n");

	rc = kubeconfig_in_cluster("10.96.0.1", "443", sa, &c, err, sizeof(err));
	check(rc == 0 && streq(c.server, "https://10.96.0.1:443"), "in-cluster: https://host:port");
	check(rc == 0 && streq(c.token_file, tok) && streq(c.ca.path, ca) && !c.ca.data,
	      "in-cluster: token and ca.crt under the sa dir");
	check(rc == 0 && streq(c.where, "in-cluster") && !c.token && !c.exec && !c.insecure,
	      "in-cluster: where, no static token");
	if (rc == 0) {
		struct kube_cred cr;

		kube_cred_init(&cr, &c);
		rc = refresh_wait(&cr, 7 * SEC, false, err, sizeof(err));
		check(rc == 0 && streq(cr.token, "sa-token-abc") && cr.generation == 1,
		      "in-cluster: credential reads the service account token");
		kube_cred_fini(&cr);
		kube_config_free(&c);
	}

	rc = kubeconfig_in_cluster("fd00::1", "443", sa, &c, err, sizeof(err));
	check(rc == 0 && streq(c.server, "https://[fd00::1]:443"),
	      "in-cluster: IPv6 host in brackets (%s)", rc ? "-" : show(c.server));
	if (rc == 0)
		kube_config_free(&c);

	{
		static const char *const hp[][2] = { { NULL, "443" }, { "", "443" },
						     { "10.96.0.1", NULL }, { "10.96.0.1", "" },
						     { NULL, NULL } };

		for (size_t i = 0; i < sizeof(hp) / sizeof(hp[0]); i++) {
			memset(&c, 0x5a, sizeof(c));
			rc = kubeconfig_in_cluster(hp[i][0], hp[i][1], sa, &c, err, sizeof(err));
			check(rc == -ENOENT && strstr(err, "no kubeconfig") &&
				      all_zero(&c, sizeof(c)),
			      "in-cluster: host %s port %s missing: error mentions no kubeconfig",
			      hp[i][0] ? (*hp[i][0] ? hp[i][0] : "\"\"") : "unset",
			      hp[i][1] ? (*hp[i][1] ? hp[i][1] : "\"\"") : "unset");
		}
	}

	nosa = xasprintf("%s/no-such-sa", tmpdir);
	memset(&c, 0x5a, sizeof(c));
	rc = kubeconfig_in_cluster("10.96.0.1", "443", nosa, &c, err, sizeof(err));
	check(rc == -ENOENT && strstr(err, nosa) && strstr(err, "/token") && all_zero(&c, sizeof(c)),
	      "in-cluster: missing token file: error names it");
	free(nosa);
	free(tok);
	free(ca);
	free(sa);
}

/* ------------------------------------------------------------------------------------------ */

static void test_parse_exec(void)
{
	struct kube_cred c;
	char err[512];
	int rc;

	kube_cred_init(&c, NULL);
	rc = kube_cred_parse_exec(&c, API_V1,
				  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
				  "\"status\":{\"token\":\"tok-1\"}}",
				  err, sizeof(err));
	check(rc == 0 && streq(c.token, "tok-1") && c.exec_valid && c.exec_expiry == 0 &&
		      c.generation == 1 && !c.exec_cert && !c.exec_key,
	      "parse_exec: token, no expiry");

	rc = kube_cred_parse_exec(&c, API_V1BETA1,
				  "{\"apiVersion\":\"" API_V1BETA1 "\",\"kind\":\"ExecCredential\","
				  "\"spec\":{},\"status\":{\"token\":\"tok-2\","
				  "\"expirationTimestamp\":\"2026-01-02T03:04:05Z\"}}",
				  err, sizeof(err));
	check(rc == 0 && streq(c.token, "tok-2") && c.exec_expiry == 1767323045 &&
		      c.generation == 2,
	      "parse_exec: v1beta1, expirationTimestamp, generation bumped");

	rc = kube_cred_parse_exec(&c, API_V1,
				  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
				  "\"status\":{\"clientCertificateData\":\"CERT-PEM\","
				  "\"clientKeyData\":\"KEY-PEM\","
				  "\"expirationTimestamp\":\"2026-01-02T05:04:05.5+02:00\"}}",
				  err, sizeof(err));
	check(rc == 0 && streq(c.exec_cert, "CERT-PEM") && c.exec_cert_len == 8 &&
		      streq(c.exec_key, "KEY-PEM") && c.exec_key_len == 7 &&
		      c.exec_expiry == 1767323045 && c.generation == 3,
	      "parse_exec: client certificate and key");
	check(rc == 0 && !c.token,
	      "parse_exec: a certificate-only answer drops the previous answer's token");

	rc = kube_cred_parse_exec(&c, API_V1,
				  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
				  "\"status\":{\"token\":\"tok-3\"}}",
				  err, sizeof(err));
	check(rc == 0 && streq(c.token, "tok-3") && !c.exec_cert && !c.exec_key &&
		      !c.exec_cert_len && !c.exec_key_len && c.exec_expiry == 0 && c.generation == 4,
	      "parse_exec: a token-only answer drops the previous certificate and expiry");

	{
		static const struct {
			const char *api, *json, *want, *desc;
		} bad[] = {
			{ API_V1, "this is not json", "not JSON", "garbage" },
			{ API_V1, "", "not JSON", "empty output" },
			{ API_V1, "[]", "ExecCredential", "a JSON array" },
			{ API_V1,
			  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"Secret\",\"status\":{\"token\":\"x\"}}",
			  "not an ExecCredential", "wrong kind" },
			{ API_V1, "{\"apiVersion\":\"" API_V1 "\",\"status\":{\"token\":\"x\"}}",
			  "ExecCredential", "no kind" },
			{ API_V1,
			  "{\"apiVersion\":\"" API_V1BETA1 "\",\"kind\":\"ExecCredential\","
			  "\"status\":{\"token\":\"x\"}}",
			  "v1beta1", "apiVersion other than the kubeconfig's" },
			{ API_V1, "{\"kind\":\"ExecCredential\",\"status\":{\"token\":\"x\"}}", "apiVersion",
			  "no apiVersion" },
			{ API_V1, "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\"}", "neither",
			  "no status" },
			{ API_V1,
			  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\",\"status\":{}}",
			  "neither", "neither token nor certificate" },
			{ API_V1,
			  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
			  "\"status\":{\"token\":42}}",
			  "neither", "token that is not a string" },
			{ API_V1,
			  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
			  "\"status\":{\"clientCertificateData\":\"C\"}}",
			  "", "certificate without key" },
			{ API_V1,
			  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
			  "\"status\":{\"clientKeyData\":\"K\"}}",
			  "", "key without certificate" },
			{ API_V1,
			  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
			  "\"status\":{\"token\":\"x\",\"clientCertificateData\":\"C\"}}",
			  "without its key", "token plus certificate without key" },
			{ API_V1,
			  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
			  "\"status\":{\"token\":\"x\",\"expirationTimestamp\":\"tomorrow\"}}",
			  "RFC 3339", "bad expirationTimestamp" },
			{ API_V1,
			  "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
			  "\"status\":{\"token\":\"x\",\"expirationTimestamp\":\"2026-01-02 03:04:05\"}}",
			  "expirationTimestamp", "timestamp without T and zone" },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			memset(err, 'X', sizeof(err));
			rc = kube_cred_parse_exec(&c, bad[i].api, bad[i].json, err, sizeof(err));
			if (rc == 0 || !memchr(err, 0, sizeof(err)) || !strstr(err, bad[i].want))
				printf("#   rc=%d err=\"%.*s\"\n", rc, (int)sizeof(err), err);
			check(rc == -EINVAL && memchr(err, 0, sizeof(err)) && strstr(err, bad[i].want) &&
				      streq(c.token, "tok-3") && !c.exec_cert && c.generation == 4 &&
				      c.exec_valid,
			      "parse_exec: %s -> error, previous credential and generation kept",
			      bad[i].desc);
		}
	}

	/* Whatever the plugin printed may hold a token: no error quotes any of it. */
	{
#define TOK "eyJhbGciOiJSUzI1NiIsImtpZCI6IkFCQyJ9.SECRETPAYLOAD"
		static const struct {
			const char *json, *desc;
		} leak[] = {
			{ TOK, "a bare token" },
			{ TOK "\n", "a bare token and a newline" },
			{ "Bearer " TOK, "a header line" },
			{ "{\"token\":\"" TOK, "truncated JSON" },
			{ "{\"token\":\"" TOK "\"} trailing " TOK, "text after the JSON" },
			{ "{\"a\":\"" TOK "\",\"a\":1}", "a duplicate key" },
			{ "{\"kind\":\"" TOK "\",\"apiVersion\":\"" API_V1 "\"}", "the token as kind" },
			{ "{\"kind\":\"ExecCredential\",\"apiVersion\":\"" TOK "\"}",
			  "the token as apiVersion" },
			{ "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
			  "\"status\":{\"token\":\"x\",\"expirationTimestamp\":\"" TOK "\"}}",
			  "the token as expirationTimestamp" },
			{ "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
			  "\"status\":{\"token\":\"" TOK "\",\"clientKeyData\":\"" TOK "\"}}",
			  "a key without a certificate" },
		};

		for (size_t i = 0; i < sizeof(leak) / sizeof(leak[0]); i++) {
			rc = kube_cred_parse_exec(&c, API_V1, leak[i].json, err, sizeof(err));
			check(rc == -EINVAL && err[0] && !strstr(err, "eyJ") && !strstr(err, "SECRET") &&
				      !strstr(err, "near"),
			      "parse_exec: %s -> error without any of the output (%s)", leak[i].desc,
			      err);
		}
#undef TOK
	}
	kube_cred_fini(&c);
	check(all_zero(&c, sizeof(c)), "kube_cred_fini zeroes the struct");
	kube_cred_fini(NULL);
}

static void test_static_and_none(void)
{
	struct kube_config cfg;
	struct kube_cred c;
	char err[512] = "";
	int rc;

	if (load_ok(CFG, "wrapped", &cfg)) {
		kube_cred_init(&c, &cfg);
		check(c.cfg == &cfg && !c.token && c.generation == 0, "cred_init: empty credential");
		rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
		check(rc == 0 && streq(c.token, "static-token-123") && c.generation == 1,
		      "static token: set on first refresh");
		check(c.token != cfg.token, "static token: the credential owns a copy");
		rc = refresh_wait(&c, 500 * SEC, false, err, sizeof(err));
		rc |= refresh_wait(&c, 501 * SEC, true, err, sizeof(err));
		check(rc == 0 && streq(c.token, "static-token-123") && c.generation == 1,
		      "static token: later and forced refreshes change nothing");
		kube_cred_fini(&c);
		kube_config_free(&cfg);
	}

	if (load_ok(CFG, "prod", &cfg)) {
		kube_cred_init(&c, &cfg);
		rc = refresh_wait(&c, 1 * SEC, true, err, sizeof(err));
		check(rc == 0 && !c.token && !c.exec_valid && c.generation == 0,
		      "certificate-only config: no bearer token, nothing to refresh");
		kube_cred_fini(&c);
		kube_config_free(&cfg);
	}
}

static void test_token_file(void)
{
	const uint64_t t0 = 5 * SEC;
	struct kube_config cfg = {};
	struct kube_cred c;
	char err[512] = "";
	char *path;
	int rc;

	path = tmp_file("tokfile", "tok-1\n");
	cfg.server = strdup("https://k");
	cfg.token_file = strdup(path);
	kube_cred_init(&c, &cfg);

	rc = refresh_wait(&c, t0, false, err, sizeof(err));
	check(rc == 0 && streq(c.token, "tok-1") && c.generation == 1 && c.token_read_ns == t0,
	      "token file: read on the first refresh, trailing newline dropped");

	free(tmp_file("tokfile", "tok-2"));
	rc = refresh_wait(&c, t0 + 59 * SEC, false, err, sizeof(err));
	check(rc == 0 && streq(c.token, "tok-1") && c.generation == 1 && c.token_read_ns == t0,
	      "token file: not re-read after 59 s");
	rc = refresh_wait(&c, t0 + KUBE_TOKEN_REREAD_NS - 1, false, err, sizeof(err));
	check(rc == 0 && streq(c.token, "tok-1"), "token file: not re-read 1 ns before 60 s");

	rc = refresh_wait(&c, t0 + KUBE_TOKEN_REREAD_NS, false, err, sizeof(err));
	check(rc == 0 && streq(c.token, "tok-2") && c.generation == 2 &&
		      c.token_read_ns == t0 + KUBE_TOKEN_REREAD_NS,
	      "token file: re-read after 60 s, change bumps the generation");

	rc = refresh_wait(&c, t0 + 61 * SEC, true, err, sizeof(err));
	check(rc == 0 && streq(c.token, "tok-2") && c.generation == 2 &&
		      c.token_read_ns == t0 + 61 * SEC,
	      "token file: forced re-read of the same content keeps the generation");

	free(tmp_file("tokfile", " \t tok 3 \r\n\n"));
	rc = refresh_wait(&c, t0 + 62 * SEC, true, err, sizeof(err));
	check(rc == 0 && streq(c.token, " \t tok 3") && c.generation == 3,
	      "token file: forced re-read picks up a change (only trailing space trimmed)");

	free(tmp_file("tokfile", "%s", ""));
	memset(err, 0, sizeof(err));
	rc = refresh_wait(&c, t0 + 200 * SEC, false, err, sizeof(err));
	check(rc == -EINVAL && strstr(err, path) && strstr(err, "empty") &&
		      streq(c.token, " \t tok 3") && c.generation == 3,
	      "token file: empty file -> error, previous token kept");
	check(c.token_read_ns == t0 + 62 * SEC, "token file: a failed read does not count as read");

	free(tmp_file("tokfile", " \n\r\n"));
	rc = refresh_wait(&c, t0 + 201 * SEC, false, err, sizeof(err));
	check(rc == -EINVAL && streq(c.token, " \t tok 3"),
	      "token file: whitespace-only file -> error, previous token kept");

	unlink(path);
	memset(err, 0, sizeof(err));
	rc = refresh_wait(&c, t0 + 202 * SEC, true, err, sizeof(err));
	check(rc == -ENOENT && strstr(err, path) && streq(c.token, " \t tok 3") && c.generation == 3,
	      "token file: missing file -> error naming it, previous token kept");

	free(tmp_file("tokfile", "tok-4\n"));
	rc = refresh_wait(&c, t0 + 203 * SEC, false, err, sizeof(err));
	check(rc == 0 && streq(c.token, "tok-4") && c.generation == 4,
	      "token file: back again -> re-read at once after the failures");

	kube_cred_fini(&c);

	/* The fixture's tokenFile, loaded from the kubeconfig. */
	kube_config_free(&cfg);
	if (load_ok(CFG, "insecure", &cfg)) {
		kube_cred_init(&c, &cfg);
		rc = refresh_wait(&c, 1, false, err, sizeof(err));
		check(rc == 0 && streq(c.token, "fixture-file-token"),
		      "token file from the kubeconfig fixture read");
		kube_cred_fini(&c);
		kube_config_free(&cfg);
	}
	free(path);
}

/* ------------------------------------------------------------------------------------------ */

/* The plugin's working files live in tmpdir/plugin. */
static char *pdir;

static char *pfile(const char *name)
{
	return xasprintf("%s/%s", pdir, name);
}

static char *pslurp(const char *name)
{
	char *p = pfile(name), *s = slurp(p);

	free(p);
	return s;
}

static int plugin_runs(void)
{
	char *s = pslurp("count");
	int n = 0;

	for (char *p = s; p && *p; p++)
		n += *p == '\n';
	free(s);
	return n;
}

static void plugin_set(const char *name, const char *content)
{
	char *p = pfile(name);

	if (content) {
		FILE *f = fopen(p, "we");

		if (!f || fputs(content, f) < 0 || fclose(f)) {
			perror(p);
			exit(2);
		}
	} else {
		unlink(p);
	}
	free(p);
}

/* Have the plugin answer with a token (and expiry when not 0). */
static void plugin_answer(const char *api, const char *token, time_t expiry)
{
	char ts[64] = "", *s;
	struct tm tm;

	if (expiry) {
		gmtime_r(&expiry, &tm);
		strftime(ts, sizeof(ts), ",\"expirationTimestamp\":\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
	}
	s = xasprintf("{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
		      "\"status\":{\"token\":\"%s\"%s}}\n",
		      api, token, ts);
	plugin_set("response", s);
	free(s);
}

/* A YAML single-quoted scalar. */
static char *yq(const char *s)
{
	char *out = malloc(strlen(s) * 2 + 3), *o = out;

	if (!out)
		exit(2);
	*o++ = '\'';
	for (; *s; s++) {
		if (*s == '\'')
			*o++ = '\'';
		*o++ = *s;
	}
	*o++ = '\'';
	*o = 0;
	return out;
}

static const char tricky_arg[] =
	"spaced arg; touch \"$PLUGIN_DIR/pwned\" $(touch \"$PLUGIN_DIR/pwned2\") `touch x` | * ? "
	"~ > y 'single' \"double\" \\back";

/* A kubeconfig whose user runs command (args given as a YAML flow sequence body). */
static char *exec_kubeconfig(const char *name, const char *api, const char *command,
			     const char *args, bool cluster_info)
{
	char *qc = yq(command), *qd = yq(pdir), *p;

	p = tmp_file(name,
		     "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
		     "clusters:\n- name: k\n  cluster:\n    server: https://exec.example.test:6443/\n"
		     "    tls-server-name: api.exec.test\n"
		     "contexts:\n- {name: c, context: {cluster: k, user: u}}\n"
		     "users:\n- name: u\n  user:\n    exec:\n"
		     "      apiVersion: %s\n      command: %s\n      args: [%s]\n"
		     "      env:\n      - {name: PLUGIN_DIR, value: %s}\n"
		     "      - {name: PLUGIN_GREETING, value: from kubeconfig}\n"
		     "      provideClusterInfo: %s\n      interactiveMode: Never\n",
		     api, qc, args, qd, cluster_info ? "true" : "false");
	free(qc);
	free(qd);
	return p;
}

static json_t *exec_info(void)
{
	char *s = pslurp("execinfo");
	json_t *j = s ? json_loads(s, JSON_DISABLE_EOF_CHECK, NULL) : NULL;

	if (!j)
		printf("#   KUBERNETES_EXEC_INFO: %s", show(s));
	free(s);
	return j;
}

static void test_exec_plugin(void)
{
	char plugin[PATH_MAX], err[1024], *kc, *args, *want_argv, *s, *p;
	struct kube_config cfg;
	struct kube_cred c;
	time_t now = time(NULL);
	unsigned gen;
	json_t *info;
	int rc;

	if (!realpath(PLUGIN, plugin)) {
		check(false, "plugin fixture %s present", PLUGIN);
		return;
	}
	pdir = xasprintf("%s/plugin", tmpdir);
	if (mkdir(pdir, 0700)) {
		perror(pdir);
		exit(2);
	}
	/* What the agent's own environment says must not reach the plugin over the kubeconfig. */
	setenv("PLUGIN_GREETING", "from parent", 1);
	setenv("KUBERNETES_EXEC_INFO", "stale from parent", 1);

	s = yq(tricky_arg);
	args = xasprintf("'--flag=value', %s, '', last", s);
	free(s);
	kc = exec_kubeconfig("exec-v1.yaml", API_V1, plugin, args, true);
	free(args);
	if (!load_ok(kc, NULL, &cfg)) {
		check(false, "load the exec kubeconfig");
		free(kc);
		return;
	}
	kube_cred_init(&c, &cfg);

	plugin_answer(API_V1, "exec-token-1", now + 3600);
	rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
	if (rc)
		printf("#   refresh: %d %s\n", rc, err);
	check(rc == 0 && streq(c.token, "exec-token-1") && c.exec_valid && c.generation == 1 &&
		      c.exec_expiry == now + 3600,
	      "exec: plugin run, token and expiry taken");
	check(plugin_runs() == 1, "exec: plugin ran once");

	s = pslurp("argv");
	want_argv = xasprintf("%s\n--flag=value\n%s\n\nlast\n", plugin, tricky_arg);
	if (!streq(s, want_argv))
		printf("#   argv got:\n%s#   want:\n%s", show(s), want_argv);
	check(streq(s, want_argv),
	      "exec: args passed as an array (spaces, quotes, $(), `, *, empty arg intact)");
	free(s);
	free(want_argv);
	p = pfile("pwned");
	check(!file_exists(p), "exec: no shell interpreted the arguments");
	free(p);
	p = pfile("pwned2");
	check(!file_exists(p), "exec: no command substitution either");
	free(p);

	s = pslurp("greeting");
	check(streq(s, "from kubeconfig\n"),
	      "exec: kubeconfig env reaches the plugin and overrides the agent's");
	free(s);
	s = pslurp("stdin");
	check(streq(s, ""), "exec: plugin stdin is empty (/dev/null)");
	free(s);

	info = exec_info();
	check(info && streq(json_string_value(json_object_get(info, "apiVersion")), API_V1) &&
		      streq(json_string_value(json_object_get(info, "kind")), "ExecCredential"),
	      "exec: KUBERNETES_EXEC_INFO is an ExecCredential of the kubeconfig's apiVersion "
	      "(the agent's own value not passed on)");
	check(info && json_is_false(json_object_get(json_object_get(info, "spec"), "interactive")),
	      "exec: KUBERNETES_EXEC_INFO spec.interactive false");
	{
		json_t *cl = json_object_get(json_object_get(info, "spec"), "cluster");

		check(streq(json_string_value(json_object_get(cl, "server")),
			    "https://exec.example.test:6443"),
		      "exec: provideClusterInfo puts spec.cluster.server in KUBERNETES_EXEC_INFO");
		check(streq(json_string_value(json_object_get(cl, "tls-server-name")),
			    "api.exec.test") &&
			      json_is_false(json_object_get(cl, "insecure-skip-tls-verify")),
		      "exec: spec.cluster has tls-server-name and insecure-skip-tls-verify");
	}
	json_decref(info);

	/* Cached while valid. */
	plugin_answer(API_V1, "exec-token-2", now + 3600);
	rc = refresh_wait(&c, 2 * SEC, false, err, sizeof(err));
	rc |= refresh_wait(&c, 500 * SEC, false, err, sizeof(err));
	check(rc == 0 && plugin_runs() == 1 && streq(c.token, "exec-token-1") && c.generation == 1,
	      "exec: credential cached, plugin not re-run");

	rc = refresh_wait(&c, 501 * SEC, true, err, sizeof(err));
	check(rc == 0 && plugin_runs() == 2 && streq(c.token, "exec-token-2") && c.generation == 2,
	      "exec: force re-runs the plugin");

	/* Expired, or expiring within the 10 s margin: re-run. */
	plugin_answer(API_V1, "exec-token-3", now - 100);
	rc = refresh_wait(&c, 502 * SEC, true, err, sizeof(err));
	check(rc == 0 && plugin_runs() == 3 && streq(c.token, "exec-token-3"),
	      "exec: forced run returns an already expired credential");
	plugin_answer(API_V1, "exec-token-4", now + 5);
	rc = refresh_wait(&c, 503 * SEC, false, err, sizeof(err));
	check(rc == 0 && plugin_runs() == 4 && streq(c.token, "exec-token-4") && c.generation == 4,
	      "exec: expirationTimestamp in the past -> re-run");
	plugin_answer(API_V1, "exec-token-5", now + 3600);
	rc = refresh_wait(&c, 504 * SEC, false, err, sizeof(err));
	check(rc == 0 && plugin_runs() == 5 && streq(c.token, "exec-token-5"),
	      "exec: expiring within 10 s -> re-run");
	rc = refresh_wait(&c, 505 * SEC, false, err, sizeof(err));
	check(rc == 0 && plugin_runs() == 5, "exec: expiring in an hour -> cached");

	/* Failures keep the previous credential. */
	gen = c.generation;
	plugin_answer(API_V1, "exec-token-6", 0);
	plugin_set("exit", "3");
	rc = refresh_wait(&c, 506 * SEC, true, err, sizeof(err));
	check(rc < 0 && strstr(err, plugin) && strstr(err, "status 3") && plugin_runs() == 6 &&
		      streq(c.token, "exec-token-5") && c.generation == gen && c.exec_valid,
	      "exec: plugin exiting 3 -> error, previous credential kept (%s)", err);
	plugin_set("exit", NULL);

	plugin_set("response", "this is not an ExecCredential\n");
	rc = refresh_wait(&c, 507 * SEC, true, err, sizeof(err));
	check(rc == -EINVAL && strstr(err, "JSON") && streq(c.token, "exec-token-5") &&
		      c.generation == gen,
	      "exec: plugin printing garbage -> error (%s)", err);

	plugin_set("response", NULL);
	rc = refresh_wait(&c, 508 * SEC, true, err, sizeof(err));
	check(rc == -EINVAL && strstr(err, "nothing") && streq(c.token, "exec-token-5"),
	      "exec: plugin printing nothing -> error (%s)", err);

	plugin_answer(API_V1BETA1, "exec-token-7", 0);
	rc = refresh_wait(&c, 509 * SEC, true, err, sizeof(err));
	check(rc == -EINVAL && strstr(err, "v1beta1") && streq(c.token, "exec-token-5"),
	      "exec: plugin answering another apiVersion -> error (%s)", err);

	plugin_set("response", "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
			       "\"status\":{\"clientCertificateData\":\"EXEC-CERT\","
			       "\"clientKeyData\":\"EXEC-KEY\"}}");
	rc = refresh_wait(&c, 510 * SEC, true, err, sizeof(err));
	check(rc == 0 && streq(c.exec_cert, "EXEC-CERT") && streq(c.exec_key, "EXEC-KEY") &&
		      !c.token && c.exec_expiry == 0 && c.generation == gen + 1,
	      "exec: plugin answering a client certificate replaces the token");
	rc = refresh_wait(&c, 511 * SEC, false, err, sizeof(err));
	check(rc == 0 && plugin_runs() == 10, "exec: no expiry given -> cached until forced");
	kube_cred_fini(&c);
	kube_config_free(&cfg);
	free(kc);

	/* A failure with nothing cached is retried on the next, unforced refresh. */
	kc = exec_kubeconfig("exec-fail.yaml", API_V1BETA1, plugin, "", false);
	if (load_ok(kc, NULL, &cfg)) {
		int runs = plugin_runs();

		kube_cred_init(&c, &cfg);
		plugin_set("exit", "1");
		rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
		check(rc < 0 && !c.exec_valid && !c.token && c.generation == 0,
		      "exec: first run failing -> error, no credential");
		plugin_set("exit", NULL);
		plugin_answer(API_V1BETA1, "beta-token", 0);
		rc = refresh_wait(&c, 2 * SEC, false, err, sizeof(err));
		check(rc == 0 && streq(c.token, "beta-token") && plugin_runs() == runs + 2,
		      "exec: retried on the next refresh without force");
		info = exec_info();
		check(info &&
			      streq(json_string_value(json_object_get(info, "apiVersion")),
				    API_V1BETA1) &&
			      json_is_false(
				      json_object_get(json_object_get(info, "spec"), "interactive")) &&
			      !json_object_get(json_object_get(info, "spec"), "cluster"),
		      "exec: v1beta1 KUBERNETES_EXEC_INFO, no cluster without provideClusterInfo");
		json_decref(info);
		s = pslurp("argv");
		want_argv = xasprintf("%s\n", plugin);
		check(streq(s, want_argv), "exec: empty args list -> only argv[0]");
		free(s);
		free(want_argv);
		kube_cred_fini(&c);
		kube_config_free(&cfg);
	}
	free(kc);

	/* A bare command is looked up in PATH: sh runs the script. */
	args = yq(plugin);
	kc = exec_kubeconfig("exec-sh.yaml", API_V1, "sh", args, false);
	free(args);
	if (load_ok(kc, NULL, &cfg)) {
		kube_cred_init(&c, &cfg);
		plugin_answer(API_V1, "via-sh", 0);
		rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
		if (rc)
			printf("#   refresh: %d %s\n", rc, err);
		check(rc == 0 && streq(c.token, "via-sh"), "exec: bare command found in PATH");
		kube_cred_fini(&c);
		kube_config_free(&cfg);
	}
	free(kc);

	/* Commands that cannot run. */
	{
		static const char *const cmds[] = { "/nonexistent/bpfsvc-test-plugin",
						    "bpfsvc-test-no-such-plugin" };

		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			kc = exec_kubeconfig("exec-missing.yaml", API_V1, cmds[i], "", false);
			if (load_ok(kc, NULL, &cfg)) {
				kube_cred_init(&c, &cfg);
				rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
				check(rc == -ENOENT && strstr(err, cmds[i]) && !c.exec_valid,
				      "exec: missing plugin %s -> error (%s)", cmds[i], err);
				kube_cred_fini(&c);
				kube_config_free(&cfg);
			}
			free(kc);
		}
		char noexec[PATH_MAX];

		if (!realpath(CFG, noexec))
			exit(2);
		kc = exec_kubeconfig("exec-noexec.yaml", API_V1, noexec, "", false);
		if (load_ok(kc, NULL, &cfg)) {
			kube_cred_init(&c, &cfg);
			rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
			check(rc == -EACCES && strstr(err, noexec),
			      "exec: plugin that is not executable -> error (%s)", err);
			kube_cred_fini(&c);
			kube_config_free(&cfg);
		}
		free(kc);
	}

	/* The fixture kubeconfig's relative command, run for real. */
	setenv("PLUGIN_DIR", pdir, 1);
	if (load_ok(CFG, "exec-run", &cfg)) {
		kube_cred_init(&c, &cfg);
		plugin_answer(API_V1, "fixture-exec-token", 0);
		rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
		if (rc)
			printf("#   refresh: %d %s\n", rc, err);
		s = pslurp("argv");
		check(rc == 0 && streq(c.token, "fixture-exec-token") &&
			      streq(s, FIX "/../kubeconfig-exec-plugin.sh\nfrom-fixture\n"),
		      "exec: fixture's relative command resolved and run, with the agent's env");
		free(s);
		s = pslurp("greeting");
		check(streq(s, "fixture\n"), "exec: fixture's env entry seen by the plugin");
		free(s);
		kube_cred_fini(&c);
		kube_config_free(&cfg);
	}
	unsetenv("PLUGIN_DIR");
	unsetenv("PLUGIN_GREETING");
	unsetenv("KUBERNETES_EXEC_INFO");
	free(pdir);
	pdir = NULL;
}

/* ------------------------------------------------------------------------------------------ */

/* A live process (a zombie is not: it has exited and only waits for its parent). */
static bool alive(pid_t pid)
{
	char path[64], *stat;
	bool live;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	stat = slurp(path);
	live = stat && strrchr(stat, ')') && strrchr(stat, ')')[2] != 'Z';
	free(stat);
	return pid > 0 && live;
}

static void punlink(const char *name)
{
	char *p = pfile(name);

	unlink(p);
	free(p);
}

static pid_t pid_in(const char *name)
{
	char *s = pslurp(name);
	pid_t pid = s ? (pid_t)atoi(s) : 0;

	free(s);
	return pid;
}

/* Wait up to ms for pid to be gone. */
static bool gone_within(pid_t pid, int ms)
{
	for (int i = 0; i < ms / 10 && alive(pid); i++)
		usleep(10000);
	return !alive(pid);
}

/* The exec plugin runs without blocking its caller, in its own process group, killed with
 * everything it started on timeout and when the credential is dropped; always reaped. */
static void test_exec_async(void)
{
	char plugin[PATH_MAX], err[1024], *kc;
	struct kube_config cfg;
	struct kube_cred c;
	pid_t pid, gpid;
	uint64_t t0;
	int rc;

	if (!realpath(PLUGIN, plugin)) {
		check(false, "plugin fixture %s present", PLUGIN);
		return;
	}
	pdir = xasprintf("%s/plugin-async", tmpdir);
	if (mkdir(pdir, 0700)) {
		perror(pdir);
		exit(2);
	}
	kc = exec_kubeconfig("exec-async.yaml", API_V1, plugin, "", false);
	if (!load_ok(kc, NULL, &cfg)) {
		check(false, "load the exec kubeconfig");
		free(kc);
		return;
	}

	/* A plugin answering after 1 s: the refresh returns at once, the answer comes later. */
	kube_cred_init(&c, &cfg);
	plugin_answer(API_V1, "slow-token", 0);
	plugin_set("sleep", "1");
	t0 = mono_ns();
	rc = kube_cred_refresh(&c, 1 * SEC, false, err, sizeof(err));
	check(rc == -EINPROGRESS && mono_ns() - t0 < 200000000ULL && kube_cred_exec_running(&c) &&
		      !c.token,
	      "exec async: refresh returns at once (%d after %llu ms) while the plugin sleeps", rc,
	      (unsigned long long)((mono_ns() - t0) / 1000000));
	{
		int fds[2], n = kube_cred_exec_fds(&c, fds);
		uint64_t dl = kube_cred_exec_deadline(&c);

		check(n == 2 && dl > t0 + 29 * SEC && dl < t0 + 31 * SEC,
		      "exec async: two descriptors to watch (pipe, pidfd), deadline in 30 s");
	}
	rc = kube_cred_refresh(&c, 1 * SEC, true, err, sizeof(err));
	check(rc == -EINPROGRESS, "exec async: a refresh asked for meanwhile (even forced) waits");
	rc = kube_cred_exec_event(&c, err, sizeof(err));
	check(rc == -EINPROGRESS, "exec async: an early event leaves it running");
	rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
	if (rc)
		printf("#   %d %s\n", rc, err);
	check(rc == 0 && streq(c.token, "slow-token") && !kube_cred_exec_running(&c) &&
		      mono_ns() - t0 >= 900000000ULL,
	      "exec async: the answer after 1 s becomes the credential");
	check(plugin_runs() == 1, "exec async: one run served all three refreshes");
	pid = pid_in("pid");
	check(pid > 0 && waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD,
	      "exec async: the plugin was reaped");
	plugin_set("sleep", NULL);
	kube_cred_fini(&c);

	/* Hanging, with a child of its own holding stdout: killed at the deadline, both. */
	kube_cred_init(&c, &cfg);
	c.exec_timeout_ms = 300;
	plugin_set("sleep", "1000");
	plugin_set("fork", "");
	t0 = mono_ns();
	rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
	pid = pid_in("pid");
	gpid = pid_in("grandchild");
	check(rc == -ETIMEDOUT && strstr(err, "no answer in 300 ms") && !c.exec_valid &&
		      mono_ns() - t0 < 2 * SEC,
	      "exec async: a hanging plugin fails at its deadline (%s)", err);
	check(gone_within(pid, 1000) && gone_within(gpid, 1000),
	      "exec async: the plugin and the child it left are killed (process group)");
	check(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "exec async: no zombie left");
	kube_cred_fini(&c);

	/* Dropped while running (the agent exits): killed at once, both. */
	kube_cred_init(&c, &cfg);
	punlink("pid");
	punlink("grandchild");
	rc = kube_cred_refresh(&c, 1 * SEC, false, err, sizeof(err));
	for (int i = 0; i < 200 && !(pid_in("grandchild") && pid_in("pid")); i++)
		usleep(10000);
	pid = pid_in("pid");
	gpid = pid_in("grandchild");
	t0 = mono_ns();
	kube_cred_fini(&c);
	check(rc == -EINPROGRESS && pid > 0 && gpid > 0 && mono_ns() - t0 < SEC &&
		      gone_within(pid, 1000) && gone_within(gpid, 1000),
	      "exec async: fini while the plugin hangs kills it and its child in %llu ms",
	      (unsigned long long)((mono_ns() - t0) / 1000000));
	check(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD,
	      "exec async: no zombie left after fini");

	/* Answers and exits, leaving a child that holds stdout: the answer counts at once. */
	kube_cred_init(&c, &cfg);
	plugin_set("sleep", NULL);
	plugin_answer(API_V1, "left-a-child", 0);
	t0 = mono_ns();
	rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
	gpid = pid_in("grandchild");
	check(rc == 0 && streq(c.token, "left-a-child") && mono_ns() - t0 < 5 * SEC,
	      "exec async: a plugin that exits leaving a child on its stdout is answered at once "
	      "(%llu ms)", (unsigned long long)((mono_ns() - t0) / 1000000));
	check(gone_within(gpid, 1000), "exec async: the child it left is killed with its group");
	plugin_set("fork", NULL);
	kube_cred_fini(&c);

	/* Too much output: killed, refused. */
	{
		char *big = malloc(KUBE_EXEC_MAX_OUTPUT + 65537);

		if (!big)
			exit(2);
		memset(big, 'a', KUBE_EXEC_MAX_OUTPUT + 65536);
		big[KUBE_EXEC_MAX_OUTPUT + 65536] = 0;
		plugin_set("response", big);
		free(big);
		kube_cred_init(&c, &cfg);
		rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
		check(rc == -E2BIG && strstr(err, "output over") && !strstr(err, "aaaa"),
		      "exec async: output over 1 MiB -> refused (%s)", err);
		check(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD,
		      "exec async: no zombie after the overflow");
		kube_cred_fini(&c);
	}

	/* Killed by a signal: reported as such. */
	kube_cred_init(&c, &cfg);
	plugin_set("sleep", "1000");
	rc = kube_cred_refresh(&c, 1 * SEC, false, err, sizeof(err));
	punlink("pid");
	for (int i = 0; i < 200 && !pid_in("pid"); i++)
		usleep(10000);
	kill(pid_in("pid"), SIGTERM);
	rc = refresh_wait(&c, 1 * SEC, false, err, sizeof(err));
	check(rc == -EPERM && strstr(err, "signal 15"), "exec async: plugin killed by a signal (%s)",
	      err);
	plugin_set("sleep", NULL);
	kube_cred_fini(&c);

	kube_config_free(&cfg);
	free(kc);
	free(pdir);
	pdir = NULL;
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	test_b64();
	test_parse_time();
	test_load_fixture();
	test_load_errors();
	test_load_runtime();
	test_merge();
	test_in_cluster();
	test_permissions();
	test_parse_exec();
	test_static_and_none();
	test_token_file();
	test_exec_plugin();
	test_exec_async();
	rm_rf(tmpdir);

	return check_summary();
}
