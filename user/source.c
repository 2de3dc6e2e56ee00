// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "agent.h"
#include "source.h"

int source_open(const struct agent_opts *o, struct source **out)
{
	if (o->from_file)
		return source_file_open(o->from_file, out);
	return source_api_open(o, out);
}
