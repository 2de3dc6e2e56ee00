#!/usr/bin/env bash
# Event-to-map latency of the agent against the fake API server at N services: the time from
# a watch event's bytes arriving to its map writes being done (the agent's own measure,
# logged per batch with -v), for endpoint changes paced one at a time.
#
#   bench/event_latency.sh [N_SERVICES] [N_CHANGES]     (defaults 100000 and 500)
#
# Prints one line: services=N changes=M p50_us= p90_us= p99_us= max_us= initial_sync_s=
# (start to first sync, mostly the fake server paging its lists) initial_build_ms=
# initial_write_ms= (the agent's model build and map writes for everything).
set -u
N=${1:-100000}
CHANGES=${2:-500}
RUN=bsvcbench$$
# The fake API server is CPU-hungry Python: keep it off the agent's core, so the figure is
# the agent's own time, not time spent waiting for a core.
if [ "$(nproc)" -ge 2 ]; then
	export API_CPU=0 AGENT_CPU=1
fi
. "$(dirname "$0")/../tests/e2e/lib.sh"
BPFSVC=${BPFSVC:-$TOP/build/bpfsvc}

topo_up 0 || { echo "bench: topology failed" >&2; exit 1; }
api_up --bookmark-interval 30 --gzip-threshold -1 || { echo "bench: API server failed" >&2; exit 1; }
kubeconfig_write "    tokenFile: token"

# N services with two endpoints each, loaded in batches through the control API.
python3 - "$N" "$TMP/objs" <<'PY'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
batch = 10000
for b in range(0, n, batch):
    items = []
    for i in range(b, min(n, b + batch)):
        ip = "10.%d.%d.%d" % (96 + i // 65536, (i // 256) % 256, i % 256)
        name = "s%d" % i
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"namespace": "bench", "name": name},
                      "spec": {"clusterIP": ip, "clusterIPs": [ip],
                               "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"namespace": "bench", "name": name + "-a",
                                   "labels": {"kubernetes.io/service-name": name}},
                      "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
                      "endpoints": [{"addresses": ["10.244.%d.%d" % (i % 200, 1 + i % 250)]},
                                    {"addresses": ["10.245.%d.%d" % (i % 200, 1 + i % 250)]}]})
    with open("%s.%d.json" % (out, b // batch), "w") as f:
        json.dump({"kind": "List", "items": items}, f)
PY
for f in "$TMP"/objs.*.json; do ctl_file POST /control/apply "$f" >/dev/null || { echo "bench: load failed" >&2; exit 1; }; done

start=$(date +%s%N)
SYNC_TRIES=6000 api_agent_start --max-services $((N + 1024)) --max-backends $((2 * N + 1024)) ||
	{ echo "bench: agent did not sync" >&2; tail "$AGENT_LOG" >&2; exit 1; }
sync_s=$(python3 -c "print(round(($(date +%s%N) - $start) / 1e9, 2))")
# The agent's own part of the initial sync: model build and map writes for all N services.
agent_ms=$(grep 'reason=resync' "$AGENT_LOG" | head -n 1 | sed 's/.*parse_us=\([0-9]*\) sync_us=\([0-9]*\).*/\1 \2/' |
	awk '{printf "initial_build_ms=%d initial_write_ms=%d", $1 / 1000, $2 / 1000}')
api_watchers 2 30

# Endpoint changes of random services, one at a time, each waited for.
mark=$(grep -c 'msg="events applied"' "$AGENT_LOG")
for ((c = 0; c < CHANGES; c++)); do
	i=$((RANDOM * 32768 % N + RANDOM % N))
	i=$((i % N))
	api_apply "$(slice bench "s$i" "s$i-a" IPv4 'http:8080:TCP' "10.246.$((c / 250 % 250)).$((c % 250 + 1)) 10.244.$((i % 200)).$((1 + i % 250))")"
done
applied() { [ "$(grep -c 'msg="events applied"' "$AGENT_LOG")" -ge $((mark + CHANGES)) ]; }
wait_for "last change applied" 200 applied
grep 'msg="events applied"' "$AGENT_LOG" | tail -n +"$((mark + 1))" | sed 's/.*latency_us=//' |
	python3 -c "
import sys
v = sorted(int(x) for x in sys.stdin.read().split())
q = lambda p: v[min(len(v) - 1, int(len(v) * p))]
print('services=$N changes=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d initial_sync_s=$sync_s $agent_ms' % (len(v), q(.5), q(.9), q(.99), v[-1]))"
