// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit test for the HTTP/2 connection health check (kube_health_step in user/kube_client.c):
 * client-go's rule, a probe after idle of silence and the connection dropped if still silent
 * timeout later; any read starts over; the next wake-up is never later than the next action.
 */
#include "kube_client.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"

#define SEC 1000000000ULL
#define IDLE (30 * SEC)
#define TIMEOUT (15 * SEC)

static enum kube_health_action step(struct kube_conn_health *h, uint64_t now, uint64_t *next)
{
	*next = UINT64_MAX;
	return kube_health_step(h, now, IDLE, TIMEOUT, next);
}

int main(void)
{
	uint64_t t0 = 1000 * SEC, next;
	struct kube_conn_health h = { .last_read_ns = t0 };
	enum kube_health_action a;

	a = step(&h, t0 + 10 * SEC, &next);
	check(a == KUBE_HEALTH_WAIT && next == t0 + IDLE, "10 s after a read: wait, look again at 30 s");
	a = step(&h, t0 + IDLE - 1, &next);
	check(a == KUBE_HEALTH_WAIT && !h.probe_ns, "just under 30 s: no probe yet");
	a = step(&h, t0 + IDLE, &next);
	check(a == KUBE_HEALTH_PROBE && h.probe_ns == t0 + IDLE && next == t0 + IDLE + TIMEOUT,
	      "30 s silent: probe, look again 15 s later");
	a = step(&h, t0 + IDLE + 5 * SEC, &next);
	check(a == KUBE_HEALTH_WAIT && next == t0 + IDLE + TIMEOUT,
	      "one probe per silence: no second probe while waiting for the answer");
	a = step(&h, t0 + IDLE + TIMEOUT, &next);
	check(a == KUBE_HEALTH_DROP, "45 s silent after a probe: drop");

	/* A read (the probe's answer, an event, a bookmark) starts over. */
	h = (struct kube_conn_health){ .last_read_ns = t0 };
	step(&h, t0 + IDLE, &next);
	h.last_read_ns = t0 + IDLE + 3 * SEC;
	h.probe_ns = 0;
	a = step(&h, t0 + IDLE + TIMEOUT, &next);
	check(a == KUBE_HEALTH_WAIT && next == t0 + 2 * IDLE + 3 * SEC,
	      "answered: not dropped at 45 s, next probe 30 s after the answer");

	/* A check that runs late (a busy loop, a connection that only now turned out to be
	 * HTTP/2) probes first, and the answer still gets its whole timeout. */
	h = (struct kube_conn_health){ .last_read_ns = t0 };
	a = step(&h, t0 + 10 * IDLE, &next);
	check(a == KUBE_HEALTH_PROBE && next == t0 + 10 * IDLE + TIMEOUT,
	      "overdue: probe, and wait 15 s from the probe, not from the last read");
	a = step(&h, t0 + 10 * IDLE + TIMEOUT - 1, &next);
	check(a == KUBE_HEALTH_WAIT, "  not dropped before the probe's timeout");
	a = step(&h, t0 + 10 * IDLE + TIMEOUT, &next);
	check(a == KUBE_HEALTH_DROP, "  dropped at it if still silent");

	/* A clock reading before the last read (reads stamped later in the same turn). */
	h = (struct kube_conn_health){ .last_read_ns = t0 + SEC };
	a = step(&h, t0, &next);
	check(a == KUBE_HEALTH_WAIT && next == t0 + SEC + IDLE, "now before last read: wait");

	/* next only ever goes down. */
	h = (struct kube_conn_health){ .last_read_ns = t0 };
	next = t0 + SEC;
	kube_health_step(&h, t0 + 2 * SEC, IDLE, TIMEOUT, &next);
	check(next == t0 + SEC, "an earlier wake-up of another connection is kept");
	return check_summary();
}
