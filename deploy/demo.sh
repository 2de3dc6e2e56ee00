#!/usr/bin/env bash
# A local demo "cluster" in network namespaces: three web pods, a client on the node in a
# cgroup where bpfsvc is attached, the agent fed from deploy/demo-objects.json. Everything is
# removed on exit. Reuses the end-to-end test topology (tests/e2e/lib.sh).
RUN=bsvcdemo
. "$(dirname "$0")/../tests/e2e/lib.sh"
BPFSVC=$TOP/build/bpfsvc
OBJS=$TMP/objects.json

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Creating the demo cluster: node netns ${NODE}, pods ${RUN}p1..p3 (10.244.0.11-13)"
topo_up 3 || { echo "demo: could not build the topology" >&2; exit 1; }
nat_before=$(ip netns exec "$NODE" iptables -t nat -S | wc -l)

step "Starting the agent on deploy/demo-objects.json"
cp "$TOP/deploy/demo-objects.json" "$OBJS"
agent_start --node-name demo-node || { cat "$AGENT_LOG"; exit 1; }
sed 's/^/  agent: /' "$AGENT_LOG"

step "curl http://10.96.0.10/ (demo/web) six times from the node, inside the cgroup"
for i in 1 2 3 4 5 6; do
	printf '  request %d answered by: %s' "$i" "$(in_cg curl -s --max-time 2 http://10.96.0.10/)"
	echo
done
step "curl http://[fd00:96::10]/ (the same service over IPv6)"
for i in 1 2 3; do
	printf '  request %d answered by: %s\n' "$i" "$(in_cg curl -s --max-time 2 'http://[fd00:96::10]/')"
done
step "UDP to kube-dns 10.96.0.53:53 (reply comes from the VIP)"
probe udp 10.96.0.53 53 --count 2 | sed 's/^/  /'

step "bpfsvc list"
"$BPFSVC" list --pin-path "$PIN"

step "iptables nat table in the node namespace"
nat_after=$(ip netns exec "$NODE" iptables -t nat -S | wc -l)
echo "  iptables -t nat -S | wc -l: before=$nat_before after=$nat_after (no rule added)"

step "Cleaning up"
