// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath_maps.h"
#include "pindir.h"

static int op_fe_next(void *ctx, const struct bpfsvc_fe_key *prev, struct bpfsvc_fe_key *next)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_get_next_key(m->fe, prev, next) ? -errno : 0;
}

static int op_fe_lookup(void *ctx, const struct bpfsvc_fe_key *k, struct bpfsvc_fe_val *v)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_lookup_elem(m->fe, k, v) ? -errno : 0;
}

static int op_slot_next(void *ctx, const struct bpfsvc_slot_key *prev,
			struct bpfsvc_slot_key *next)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_get_next_key(m->slots, prev, next) ? -errno : 0;
}

static int op_slot_lookup(void *ctx, const struct bpfsvc_slot_key *k, struct bpfsvc_backend *b)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_lookup_elem(m->slots, k, b) ? -errno : 0;
}

static int op_svc_lookup(void *ctx, uint32_t id, struct bpfsvc_svc_info *info)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_lookup_elem(m->svcs, &id, info) ? -errno : 0;
}

static int op_stats_lookup(void *ctx, uint32_t id, struct bpfsvc_stats *sum)
{
	const struct pinned_maps *m = ctx;
	struct bpfsvc_stats *percpu = calloc(m->ncpus, sizeof(*percpu));
	int err = 0;

	memset(sum, 0, sizeof(*sum));
	if (!percpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(m->stats, &id, percpu)) {
		err = -errno;
		goto cleanup;
	}
	for (int c = 0; c < m->ncpus; c++) {
		sum->connects += percpu[c].connects;
		sum->no_backend += percpu[c].no_backend;
	}
cleanup:
	free(percpu);
	return err;
}

static int op_fe_update(void *ctx, const struct bpfsvc_fe_key *k, const struct bpfsvc_fe_val *v)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_update_elem(m->fe, k, v, BPF_ANY) ? -errno : 0;
}

static int op_fe_delete(void *ctx, const struct bpfsvc_fe_key *k)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_delete_elem(m->fe, k) ? -errno : 0;
}

static int op_slot_update(void *ctx, const struct bpfsvc_slot_key *k,
			  const struct bpfsvc_backend *b)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_update_elem(m->slots, k, b, BPF_ANY) ? -errno : 0;
}

static int op_slot_delete(void *ctx, const struct bpfsvc_slot_key *k)
{
	const struct pinned_maps *m = ctx;

	return bpf_map_delete_elem(m->slots, k) ? -errno : 0;
}

static int op_slot_update_batch(void *ctx, const struct bpfsvc_slot_key *k,
				const struct bpfsvc_backend *b, uint32_t n, uint32_t *done)
{
	const struct pinned_maps *m = ctx;
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = n;
	int err;

	err = bpf_map_update_batch(m->slots, k, b, &count, &opts) ? -errno : 0;
	*done = count;
	return err;
}

static int op_svc_set(void *ctx, uint32_t id, const struct bpfsvc_svc_info *info, bool fresh)
{
	const struct pinned_maps *m = ctx;
	struct bpfsvc_stats *zero;
	int err = 0;

	if (bpf_map_update_elem(m->svcs, &id, info, BPF_ANY))
		return -errno;
	if (!fresh)
		return 0;
	zero = calloc(m->ncpus, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(m->stats, &id, zero, BPF_ANY))
		err = -errno;
	free(zero);
	return err;
}

const struct dp_map_ops pinned_map_ops = {
	.fe_next = op_fe_next,
	.fe_lookup = op_fe_lookup,
	.slot_next = op_slot_next,
	.slot_lookup = op_slot_lookup,
	.svc_lookup = op_svc_lookup,
	.stats_lookup = op_stats_lookup,
	.fe_update = op_fe_update,
	.fe_delete = op_fe_delete,
	.slot_update = op_slot_update,
	.slot_delete = op_slot_delete,
	.slot_update_batch = op_slot_update_batch,
	.svc_set = op_svc_set,
};

struct dp_maps pinned_maps_handle(struct pinned_maps *m)
{
	return (struct dp_maps){
		.ops = &pinned_map_ops,
		.ctx = m,
		.max_frontends = m->max_frontends,
		.max_slots = m->max_slots,
		.max_services = m->max_services,
	};
}

int pinned_open(const char *pin_path, struct pinned_maps *m, char *err, size_t errlen)
{
	/* Lookups copy values into these structs: a map of another layout (another tool's, an
	 * older ABI) must not be read at all. */
	static const struct {
		const char *name, *pin;
		__u32 key_size, value_size;
	} want[] = {
#define WANT(map, k, v) { #map, BPFSVC_MAP_PIN(map), sizeof(k), sizeof(v) }
		WANT(bpfsvc_fe, struct bpfsvc_fe_key, struct bpfsvc_fe_val),
		WANT(bpfsvc_slots, struct bpfsvc_slot_key, struct bpfsvc_backend),
		WANT(bpfsvc_svcs, __u32, struct bpfsvc_svc_info),
		WANT(bpfsvc_stats, __u32, struct bpfsvc_stats),
#undef WANT
	};
	int *fds[] = { &m->fe, &m->slots, &m->svcs, &m->stats };
	__u32 *caps[] = { &m->max_frontends, &m->max_slots, &m->max_services, NULL };
	struct pindir dir;
	char path[PATH_MAX];
	size_t i;
	int ret;

	m->fe = m->slots = m->svcs = m->stats = -1;
	pindir_init(&dir);
	/* The same trust rules as the agent's: what list shows must be what bpfsvc wrote. */
	ret = pindir_open(&dir, pin_path, PINDIR_CLEANUP, err, errlen);
	if (ret == -ENOENT)
		snprintf(err, errlen, "open pinned maps in %s: %s (is the agent set up there?)",
			 pin_path, strerror(ENOENT));
	if (ret)
		goto cleanup;
	for (i = 0; i < 4; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		snprintf(path, sizeof(path), "%s/%s", dir.at, want[i].pin);
		*fds[i] = bpf_obj_get(path);
		if (*fds[i] < 0) {
			ret = -errno;
			snprintf(err, errlen, "open pinned map %s/%s: %s (is the agent set up there?)",
				 pin_path, want[i].pin, strerror(errno));
			goto cleanup;
		}
		if (bpf_obj_get_info_by_fd(*fds[i], &info, &len)) {
			ret = -errno;
			snprintf(err, errlen, "map info %s/%s: %s", pin_path, want[i].pin,
				 strerror(errno));
			goto cleanup;
		}
		if (strcmp(info.name, want[i].name) || info.key_size != want[i].key_size ||
		    info.value_size != want[i].value_size) {
			ret = -EPROTO;
			snprintf(err, errlen,
				 "%s/%s is not a map of this bpfsvc (name %s, key %u, value %u bytes; "
				 "want %u, %u)",
				 pin_path, want[i].pin, info.name, info.key_size, info.value_size,
				 want[i].key_size, want[i].value_size);
			goto cleanup;
		}
		if (caps[i])
			*caps[i] = info.max_entries;
	}
	m->ncpus = libbpf_num_possible_cpus();
cleanup:
	pindir_close(&dir);
	if (ret)
		pinned_close(m);
	return ret;
}

void pinned_close(struct pinned_maps *m)
{
	int *fds[] = { &m->fe, &m->slots, &m->svcs, &m->stats };

	for (size_t i = 0; i < 4; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}
