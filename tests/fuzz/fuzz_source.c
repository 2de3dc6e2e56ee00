// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The file source: any bytes -> source_parse() (JSON via jansson, anything else via yamljson)
 * -> a flat array of objects, or an error that says what was wrong. */
#include <errno.h>
#include <jansson.h>

#include "fuzz.h"
#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *objects = NULL, *o;
	char err[256];
	size_t i;
	int ret;

	memset(err, 0x55, sizeof(err));
	ret = source_parse((const char *)data, size, &objects, err, sizeof(err));
	if (ret) {
		FUZZ_ASSERT(ret < 0);
		FUZZ_ASSERT_ERR(err);
		return 0;
	}
	FUZZ_ASSERT(json_is_array(objects));
	/* Lists are flattened: what comes out are objects, none of them a list. */
	json_array_foreach(objects, i, o) {
		FUZZ_ASSERT(json_is_object(o));
		/* The tree is read downstream (and the items may be shared YAML aliases):
		 * serialising walks all of it. */
		free(json_dumps(o, JSON_COMPACT));
	}
	json_decref(objects);
	return 0;
}
