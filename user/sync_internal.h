/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What sync.c (applying) and sync_adopt.c (adopting) share inside sync; not for other users. */
#ifndef BPFSVC_SYNC_INTERNAL_H
#define BPFSVC_SYNC_INTERNAL_H

#include "sync.h"

/* "ns/name:port_name", the key of svc_index */
#define SYNC_SVC_KEY_LEN (BPFSVC_NS_LEN + BPFSVC_NAME_LEN + BPFSVC_PORTNAME_LEN + 4)

void sync_svc_key(const struct bpfsvc_svc_info *i, char *buf, size_t len);
/* Drop a reference to service id; the last one frees it in the map and in svc_index. */
void sync_svc_release(struct sync *s, uint32_t id, struct sync_result *res);
/* Remember that f belongs to the service of its svc_id ("ns/name"). */
int sync_owner_link(struct sync *s, struct sync_fe *f);

#endif
