// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* ExecCredential parsing: an exec plugin's stdout -> kube_cred_parse_exec(), for both API
 * versions, on top of a credential already cached (a failed parse must leave it intact). */
#include <errno.h>

#include "fuzz.h"
#include "kube_cred.h"

#define API_V1 "client.authentication.k8s.io/v1"
#define API_V1BETA1 "client.authentication.k8s.io/v1beta1"

static const char cached[] = "{\"apiVersion\":\"" API_V1 "\",\"kind\":\"ExecCredential\","
			     "\"status\":{\"token\":\"cached-token\"}}";

static void parse_one(const char *api, const char *text)
{
	struct kube_cred c;
	char err[256];
	unsigned gen;
	int ret;

	kube_cred_init(&c, NULL);
	FUZZ_ASSERT(kube_cred_parse_exec(&c, API_V1, cached, err, sizeof(err)) == 0);
	gen = c.generation;
	memset(err, 0x55, sizeof(err));
	ret = kube_cred_parse_exec(&c, api, text, err, sizeof(err));
	if (ret) {
		FUZZ_ASSERT(ret < 0);
		FUZZ_ASSERT_ERR(err);
		FUZZ_ASSERT(c.generation == gen && c.token && !strcmp(c.token, "cached-token"));
	} else {
		FUZZ_ASSERT(c.exec_valid && c.generation == gen + 1);
		FUZZ_ASSERT(c.token || (c.exec_cert && c.exec_key));
		FUZZ_ASSERT(!c.exec_cert || strlen(c.exec_cert) == c.exec_cert_len);
		FUZZ_ASSERT(!c.exec_key || strlen(c.exec_key) == c.exec_key_len);
	}
	kube_cred_fini(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The plugin's output reaches the parser as a NUL-terminated string. */
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	parse_one(API_V1, text);
	parse_one(API_V1BETA1, text);
	free(text);
	return 0;
}
