// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kubeconfig parsing: bytes -> kubeconfig_load(), which only reads files, so each input is
 * written to files in a private directory that also holds the PEM and token files the
 * fixtures refer to (relative references then resolve, as in real use).
 *
 * Input format, all of it valid YAML so that plain kubeconfigs are valid inputs:
 *  - an optional first line "#context NAME" selects the context (else current-context);
 *  - lines "#file" split the rest into up to FUZZ_FILES files, loaded as one $KUBECONFIG
 *    list (the first file to define a name wins).
 * Some of the files referred to are group/world-writable or world-readable, and the third
 * kubeconfig file is group-writable, so that the warnings about them are exercised too.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "kubeconfig.h"

#define FUZZ_FILES 3

static char dir[64];
static char paths[FUZZ_FILES][96];

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	/* fchmod: the umask must not decide which warnings can be reached. */
	if (fd < 0 || fchmod(fd, mode) || write(fd, p, n) != (ssize_t)n) {
		perror(path);
		abort();
	}
	close(fd);
}

static void put(const char *rel, const char *text, mode_t mode)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	write_file(p, text, strlen(text), mode);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static void cleanup(void)
{
	if (dir[0])
		nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char p[128];

	(void)argc, (void)argv;
	snprintf(dir, sizeof(dir), "%s/fuzz-kubeconfig.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
	atexit(cleanup);
	snprintf(p, sizeof(p), "%s/certs", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/sub", dir);
	mkdir(p, 0700);
	put("ca.crt", "-----BEGIN CERTIFICATE-----\nZml4dHVyZQ==\n-----END CERTIFICATE-----\n", 0644);
	put("certs/client.crt", "-----BEGIN CERTIFICATE-----\nY2xpZW50\n-----END CERTIFICATE-----\n",
	    0664);
	put("certs/client.key", "-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n",
	    0644);
	put("token", "fuzz-token\n", 0600);
	put("sub/ca-b.crt", "-----BEGIN CERTIFICATE-----\nYg==\n-----END CERTIFICATE-----\n", 0666);
	put("sub/token-b", "token-b\n", 0604);
	/* The second file sits in a subdirectory so that relative references differ. */
	snprintf(paths[0], sizeof(paths[0]), "%s/config", dir);
	snprintf(paths[1], sizeof(paths[1]), "%s/sub/b.yaml", dir);
	snprintf(paths[2], sizeof(paths[2]), "%s/c.yaml", dir);
	return 0;
}

static void check_config(const struct kube_config *c)
{
	size_t n = strlen(c->server);

	FUZZ_ASSERT(!strncmp(c->server, "https://", 8));
	FUZZ_ASSERT(n == 8 || c->server[n - 1] != '/');
	FUZZ_ASSERT(c->where && c->where[0]);
	FUZZ_ASSERT(!(c->cert.path || c->cert.data) == !(c->key.path || c->key.data));
	FUZZ_ASSERT(!c->ca.data || memchr(c->ca.data, 0, c->ca.len + 1));
	if (c->exec) {
		FUZZ_ASSERT(c->exec->command && c->exec->argv && c->exec->env);
		FUZZ_ASSERT(!strcmp(c->exec->argv[0], c->exec->command));
		for (char **e = c->exec->env; *e; e++)
			FUZZ_ASSERT(strchr(*e, '=') && **e != '=');
	}
	FUZZ_ASSERT(!c->nwarnings || (c->warnings && !c->warnings[c->nwarnings]));
	for (size_t i = 0; i < c->nwarnings; i++)
		FUZZ_ASSERT(c->warnings[i] && c->warnings[i][0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char context[256], list[sizeof(paths) + FUZZ_FILES], err[512];
	struct kube_config c;
	size_t nfiles = 0;
	bool have_ctx = false;
	int ret;

	if (size >= 9 && !memcmp(p, "#context ", 9)) {
		const char *nl = memchr(p, '\n', size);
		size_t n = (nl ? (size_t)(nl - p) : size) - 9;

		if (n >= sizeof(context) || memchr(p + 9, 0, n))
			return 0;
		memcpy(context, p + 9, n);
		context[n] = 0;
		have_ctx = true;
		p = nl ? nl + 1 : end;
	}
	list[0] = 0;
	while (nfiles < FUZZ_FILES) {
		const char *sep = NULL;

		/* A "#file" line ends this file, unless this is the last one. */
		for (const char *q = p; nfiles + 1 < FUZZ_FILES && q + 6 <= end; q++) {
			if ((q == p || q[-1] == '\n') && !memcmp(q, "#file\n", 6)) {
				sep = q;
				break;
			}
		}
		write_file(paths[nfiles], p, (size_t)((sep ? sep : end) - p),
			   nfiles == 2 ? 0620 : 0600);
		if (nfiles)
			strcat(list, ":");
		strcat(list, paths[nfiles]);
		nfiles++;
		if (!sep)
			break;
		p = sep + 6;
	}
	memset(err, 0x55, sizeof(err));
	ret = kubeconfig_load(list, have_ctx ? context : NULL, &c, err, sizeof(err));
	if (ret) {
		FUZZ_ASSERT(ret < 0);
		FUZZ_ASSERT_ERR(err);
		/* Nothing is left allocated after a failure. */
		FUZZ_ASSERT(!c.server && !c.token && !c.exec && !c.where && !c.warnings);
	} else {
		check_config(&c);
	}
	kube_config_free(&c);
	return 0;
}
