#!/usr/bin/env bash
# A service without a usable backend refuses at once (ECONNREFUSED, as kube-proxy's REJECT),
# for TCP connect, UDP connect and UDP sendto; it is counted.
. "$(dirname "$0")/lib.sh"

topo_up 1 || { not_ok "topology"; finish; exit 1; }
write_objects "$(svc default empty 10.96.0.40 'http:80:8080:TCP dns:53:5353:UDP')" \
	"$(svc default notready 10.96.0.41 ':80:8080:TCP')" \
	"$(slice default notready notready-1 IPv4 ':8080:TCP' '10.244.0.11/false')" \
	"$(svc default fine 10.96.0.42 ':80:8080:TCP')" \
	"$(slice default fine fine-1 IPv4 ':8080:TCP' '10.244.0.11')"
agent_start || { not_ok "agent start"; cat "$AGENT_LOG"; finish; exit 1; }

check "TCP to a service with no endpoints: ECONNREFUSED" test "$(probe tcp 10.96.0.40 80)" = "ERR ECONNREFUSED"
check "TCP to a service whose endpoints are all not ready: ECONNREFUSED" test "$(probe tcp 10.96.0.41 80)" = "ERR ECONNREFUSED"
check "connected UDP to a service with no endpoints: ECONNREFUSED" test "$(probe udp 10.96.0.40 53 --connected)" = "ERR ECONNREFUSED"
check "UDP sendto to a service with no endpoints: ECONNREFUSED" test "$(probe udp 10.96.0.40 53)" = "ERR ECONNREFUSED"
check "the service with a ready endpoint still works" test "$(probe tcp 10.96.0.42 80)" = "pod1:8080"

# Fails fast: 20 refused connects take far less than one connect timeout.
start=$(date +%s%N)
probe tcp 10.96.0.40 80 --count 20 >/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "20 refused connects return at once (${ms} ms total)" test "$ms" -lt 1500

list=$("$BPFSVC" list --pin-path "$PIN")
check "list counts the rejects" grep -Eq '^TCP +10.96.0.40:80 +default/empty:http +0 +2[0-9]$' <<<"$list"
check "list marks the service as without backends" grep -q 'no backends' <<<"$list"
finish
