#!/usr/bin/env bash
# The agent follows a (fake) API server: paged lists with kube-proxy's label selector, watches
# from the list's resourceVersion, changes reaching new connections within a second, nothing
# programmed before both lists are in, an idle agent asleep.
. "$(dirname "$0")/lib.sh"

topo_up 3 || { not_ok "topology"; finish; exit 1; }
api_up || { not_ok "fake API server"; finish; exit 1; }
kubeconfig_write "    tokenFile: token"

api_apply "$(svc default web 10.96.0.10 'http:80:8080:TCP')"
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11')"
# 1100 more services: the initial list takes three pages of 500.
{
	printf '{"kind":"List","items":['
	for i in $(seq 1 1100); do
		[ "$i" -gt 1 ] && printf ','
		svc bulk "s$i" "10.97.$((i / 250)).$((i % 250 + 1))" ':80:80:TCP'
	done
	printf ']}'
} >"$TMP/bulk.json"
ctl_file POST /control/apply "$TMP/bulk.json" >/dev/null
# Not ours: another proxy's service and a headless one's slice are filtered by the server.
api_apply '{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"default","name":"other","labels":{"service.kubernetes.io/service-proxy-name":"foo"}},"spec":{"clusterIP":"10.96.0.99","clusterIPs":["10.96.0.99"],"ports":[{"port":80}]}}'

list_rv=$(api_rv)
api_agent_start || { not_ok "agent start"; tail -20 "$AGENT_LOG"; finish; exit 1; }
check "service reachable through the VIP after the initial lists" reaches 10.96.0.10 80 '^pod1:8080$'

log_lines=$(reqlog)
svc_lists=$(grep -c ' services list 200 ' <<<"$log_lines")
check "services listed in pages ($svc_lists requests, limit 500)" test "$svc_lists" -eq 3
check "  later pages carry the continue token" test "$(grep ' services list 200 ' <<<"$log_lines" | grep -c 'continue=1')" -eq 2
check "lists and watches use kube-proxy's label selector" \
	test "$(grep -vc 'selector=!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless' <<<"$log_lines")" -eq 0
check "list requests were authenticated with the token file" test "$(grep -c 'auth=token' <<<"$log_lines")" -eq "$(wc -l <<<"$log_lines")"
watch_line=$(grep ' services watch ' <<<"$log_lines" | head -n 1)
check "watch requests ask for bookmarks" grep -q 'bookmarks=true' <<<"$watch_line"
timeout_s=$(sed 's/.* timeout=\([0-9]*\).*/\1/' <<<"$watch_line")
check "watch timeoutSeconds drawn from 300..600 ($timeout_s)" test "$timeout_s" -ge 300 -a "$timeout_s" -le 600
check "the other proxy's service is not programmed" grep -q '^ERR' <<<"$(probe tcp 10.96.0.99 80 --timeout-ms 300)"
n=$("$BPFSVC" list --pin-path "$PIN" --json | grep -c '"vip"')
check "all 1101 frontends programmed ($n)" test "$n" -eq 1101
check "the watch started from the list's resourceVersion ($list_rv)" grep -q " rv=$list_rv " <<<"$watch_line"

# Scale up: new connections follow within a second.
start=$(date +%s%N)
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11 10.244.0.12 10.244.0.13')"
reaches 10.96.0.10 80 '^pod3:8080$' 200
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "scale up reaches new connections within 1 s (${ms} ms)" test "$ms" -lt 1000
start=$(date +%s%N)
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.12')"
reaches 10.96.0.10 80 '^pod2:8080$' 200
sleep 0.05
ms=$(( ($(date +%s%N) - start) / 1000000 ))
out=$(probe tcp 10.96.0.10 80 --count 20)
check "scale down: within 1 s (${ms} ms) only the remaining endpoint answers" \
	test "$ms" -lt 1000 -a "$(grep -c '^pod2:8080$' <<<"$out")" -eq 20

api_delete EndpointSlice default web-1
check "endpoints deleted: ECONNREFUSED" reaches 10.96.0.10 80 '^ERR ECONNREFUSED$' 100
api_delete Service default web
check "service deleted: the VIP is no longer translated" reaches 10.96.0.10 80 '^ERR ENETUNREACH$' 100
check "per-event latency is logged" grep -q 'msg="events applied".*latency_us=' "$AGENT_LOG"

# Idle: asleep in epoll (nothing arrives but the odd bookmark).
pid=$AGENT_PID
t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
sleep 3
t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
check "idle agent uses ~0% CPU ($((t1 - t0)) ticks in 3 s)" test $((t1 - t0)) -le 6

# Restart with the endpoint-slice list stalled: what is pinned keeps serving, untouched, until
# both lists are in.
api_apply "$(svc default web 10.96.0.10 'http:80:8080:TCP')"
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11')"
reaches 10.96.0.10 80 '^pod1:8080$' 200
agent_stop
api_fault '{"type":"stall","resource":"endpointslices","on":"list","phase":"before_headers","seconds":3}'
before=$(syncs)
"$BPFSVC" agent --kubeconfig "$KUBECONFIG_FILE" --cgroup "$CG" --pin-path "$PIN" --node-name node1 -v 2>>"$AGENT_LOG" &
AGENT_PID=$!
sleep 1.5
check "while the slice list stalls, nothing is programmed" test "$(syncs)" -eq "$before"
check "  and the pinned state keeps serving (no transient rejects)" \
	test "$(probe tcp 10.96.0.10 80 --count 20 | grep -c '^pod1:8080$')" -eq 20
wait_for "sync after the stall" 100 synced_past "$before"
check "after the stall the restarted agent changes nothing that did not change" \
	grep -q 'reason=resync .*added=0 updated=0 removed=0 .*writes=0' <<<"$(last_sync)"
finish
