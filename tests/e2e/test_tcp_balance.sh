#!/usr/bin/env bash
# TCP to a ClusterIP: fair spread over ready backends, not-ready never chosen, getpeername()
# shows the VIP, and a client outside the attached cgroup is untouched.
. "$(dirname "$0")/lib.sh"

topo_up 4 || { not_ok "topology"; finish; exit 1; }
write_objects "$(svc default web 10.96.0.10 'http:80:8080:TCP')" \
	"$(slice default web web-abc IPv4 'http:8080:TCP' '10.244.0.11 10.244.0.12/unset 10.244.0.13/true 10.244.0.14/false')"
agent_start || { not_ok "agent start"; cat "$AGENT_LOG"; finish; exit 1; }

out=$TMP/tcp300
probe tcp 10.96.0.10 80 --count 300 >"$out"
check "300 connects to the VIP all succeed" test "$(grep -c '^pod[0-9]:8080$' "$out")" -eq 300
for i in 1 2 3; do
	n=$(count_of "pod$i" "$out")
	# Uniform random: 100 expected, sd ~8.2; 60..140 is a ~5 sd band.
	if [ "$n" -ge 60 ] && [ "$n" -le 140 ]; then ok "pod$i got a fair share ($n/300)"
	else not_ok "pod$i got a fair share" "got $n of 300"; fi
done
check "not-ready pod4 never chosen" test "$(count_of pod4 "$out")" -eq 0

peer=$(probe tcp 10.96.0.10 80 --peer)
check "getpeername() on a TCP socket returns the VIP ($peer)" grep -q 'peer=10.96.0.10:80$' <<<"$peer"

list=$("$BPFSVC" list --pin-path "$PIN")
check "list shows the service and counts 301 connects" grep -Eq '^TCP +10.96.0.10:80 +default/web:http +301 +0$' <<<"$list"
check "list shows only ready backends" test "$(grep -c -- '->.*:8080' <<<"$list")" -eq 3

direct=$(out_cg "$TOOLS/bsvc-probe" tcp 10.244.0.14 8080)
check "outside the cgroup: pod IP reached directly ($direct)" test "$direct" = "pod4:8080"
outside=$(out_cg "$TOOLS/bsvc-probe" tcp 10.96.0.10 80 --timeout-ms 500)
check "outside the cgroup: the VIP is not translated ($outside)" grep -q '^ERR' <<<"$outside"
nonsvc=$(probe tcp 10.244.0.14 8081)
check "inside the cgroup: a non-service address is untouched ($nonsvc)" test "$nonsvc" = "pod4:8081"

finish
