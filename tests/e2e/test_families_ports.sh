#!/usr/bin/env bash
# IPv6 and dual-stack services, AF_INET6 sockets to ::ffff:VIP, multi-port services with a
# named targetPort.
. "$(dirname "$0")/lib.sh"

topo_up 2 || { not_ok "topology"; finish; exit 1; }
write_objects \
	"$(svc default v6only fd00:96::10 'http:80:8080:TCP' '"ipFamilies":["IPv6"]')" \
	"$(slice default v6only v6only-1 IPv6 'http:8080:TCP' 'fd00_244__11 fd00_244__12')" \
	"$(svc default dual '10.96.0.20,fd00:96::20' 'http:80:8080:TCP' '"ipFamilies":["IPv4","IPv6"],"ipFamilyPolicy":"RequireDualStack"')" \
	"$(slice default dual dual-v4 IPv4 'http:8080:TCP' '10.244.0.11')" \
	"$(slice default dual dual-v6 IPv6 'http:8080:TCP' 'fd00_244__12')" \
	"$(svc default multi 10.96.0.30 'http:80:web:TCP alt:81:8081:TCP')" \
	"$(slice default multi multi-1 IPv4 'http:8080:TCP alt:8081:TCP' '10.244.0.11 10.244.0.12')"
agent_start || { not_ok "agent start"; cat "$AGENT_LOG"; finish; exit 1; }

out=$(probe tcp fd00:96::10 80 --count 40 --peer)
check "IPv6 service: 40 connects land on IPv6 backends" test "$(grep -c '^pod[12]:8080 peer=\[fd00:96::10\]:80$' <<<"$out")" -eq 40
check "IPv6 service: both backends used" test "$(cut -d: -f1 <<<"$out" | sort -u | wc -l)" -eq 2

check "dual-stack, IPv4 VIP: the IPv4 slice's backend" test "$(probe tcp 10.96.0.20 80 --count 10 | sort -u)" = "pod1:8080"
check "dual-stack, IPv6 VIP: the IPv6 slice's backend" test "$(probe tcp fd00:96::20 80 --count 10 | sort -u)" = "pod2:8080"

out=$(probe tcp ::ffff:10.96.0.30 80 --count 40 --peer)
check "AF_INET6 socket to ::ffff:VIP (TCP): balanced like the IPv4 service" \
	test "$(grep -c '^pod[12]:8080 peer=\[::ffff:10.96.0.30\]:80$' <<<"$out")" -eq 40
check "AF_INET6 socket to ::ffff:VIP (TCP): both backends used" test "$(cut -d: -f1 <<<"$out" | sort -u | wc -l)" -eq 2

check "multi-port: port 80 (named targetPort web) goes to 8080" test "$(probe tcp 10.96.0.30 80 --count 10 | cut -d: -f2 | sort -u)" = "8080"
check "multi-port: port 81 (targetPort 8081) goes to 8081" test "$(probe tcp 10.96.0.30 81 --count 10 | cut -d: -f2 | sort -u)" = "8081"

json=$("$BPFSVC" list --pin-path "$PIN" --json)
check "list --json names the v6 frontend" grep -q '"vip": "fd00:96::10"' <<<"$json"
check "list --json has one entry per frontend (5)" test "$(grep -c '"vip"' <<<"$json")" -eq 5
check "list --json port names" test "$(grep -c '"port_name": "alt"' <<<"$json")" -eq 1
finish
