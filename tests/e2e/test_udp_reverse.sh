#!/usr/bin/env bash
# UDP through a VIP: replies appear to come from the VIP, for unconnected (sendto/recvfrom)
# and connected sockets, IPv4 and IPv6.
. "$(dirname "$0")/lib.sh"

topo_up 2 || { not_ok "topology"; finish; exit 1; }
write_objects "$(svc kube-system dns '10.96.0.53,fd00:96::53' 'dns:53:5353:UDP dns-tcp:53:8080:TCP' '"ipFamilies":["IPv4","IPv6"],"ipFamilyPolicy":"PreferDualStack"')" \
	"$(slice kube-system dns dns-v4 IPv4 'dns:5353:UDP dns-tcp:8080:TCP' '10.244.0.11 10.244.0.12')" \
	"$(slice kube-system dns dns-v6 IPv6 'dns:5353:UDP dns-tcp:8080:TCP' 'fd00_244__11 fd00_244__12')"
agent_start || { not_ok "agent start"; cat "$AGENT_LOG"; finish; exit 1; }

out=$(probe udp 10.96.0.53 53 --count 20)
check "unconnected UDP v4: 20 replies" test "$(grep -c '^pod[12]:5353 ' <<<"$out")" -eq 20
check "unconnected UDP v4: every reply from the VIP" test "$(grep -c ' from=10.96.0.53:53$' <<<"$out")" -eq 20
check "unconnected UDP v4: both backends answered" test "$(cut -d: -f1 <<<"$out" | sort -u | wc -l)" -eq 2

out=$(probe udp 10.96.0.53 53 --count 10 --connected)
check "connected UDP v4: reply from and peer are the VIP" \
	test "$(grep -c ' from=10.96.0.53:53 peer=10.96.0.53:53$' <<<"$out")" -eq 10

out=$(probe udp fd00:96::53 53 --count 10)
check "unconnected UDP v6: every reply from the VIP" test "$(grep -c ' from=\[fd00:96::53\]:53$' <<<"$out")" -eq 10
out=$(probe udp fd00:96::53 53 --count 10 --connected)
check "connected UDP v6: from and peer are the VIP" \
	test "$(grep -c ' from=\[fd00:96::53\]:53 peer=\[fd00:96::53\]:53$' <<<"$out")" -eq 10

out=$(probe udp ::ffff:10.96.0.53 53 --count 10)
check "AF_INET6 socket to ::ffff:VIP, unconnected UDP: replies from the mapped VIP" \
	test "$(grep -c '^pod[12]:5353 from=\[::ffff:10.96.0.53\]:53$' <<<"$out")" -eq 10
out=$(probe udp ::ffff:10.96.0.53 53 --count 10 --connected)
check "AF_INET6 socket to ::ffff:VIP, connected UDP: peer is the mapped VIP" \
	test "$(grep -c 'peer=\[::ffff:10.96.0.53\]:53$' <<<"$out")" -eq 10

out=$(probe tcp 10.96.0.53 53 --peer)
check "same VIP, TCP port: TCP backend answers, peer is the VIP ($out)" \
	grep -Eq '^pod[12]:8080 peer=10.96.0.53:53$' <<<"$out"

finish
