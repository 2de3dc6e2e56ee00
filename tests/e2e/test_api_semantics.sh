#!/usr/bin/env bash
# kube-apiserver behaviour the agent has to live with, against the real agent:
#   (a) 403 (RBAC) on the services list: one warning naming verb, resource and group; retries
#       back off (growing gaps); what is programmed keeps serving; recovery is logged;
#   (b) an outage longer than the watch-cache window: the resumed watch gets 410, the agent
#       relists and the datapath ends right;
#   (c) 504 "Too large resource version" on a list or in a watch: no spinning (Retry-After,
#       backoff), and a failed watch is followed by a list, not the same watch again.
. "$(dirname "$0")/lib.sh"

topo_up 2 || { not_ok "topology"; finish; exit 1; }
# A 2 s watch cache makes an outage "longer than the window" short.
api_up --watch-cache-seconds 2 || { not_ok "fake API server"; finish; exit 1; }
kubeconfig_write "    tokenFile: token"
api_apply "$(svc default web 10.96.0.10 'http:80:8080:TCP')"
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11')"
api_agent_start --api-backoff-max 4 || { not_ok "agent start"; tail -20 "$AGENT_LOG"; finish; exit 1; }
api_watchers 2 || { not_ok "watches open"; finish; exit 1; }
check "the VIP answers pod1" reaches 10.96.0.10 80 '^pod1:8080$' 300

# req_times RESOURCE VERB STATUS MARK: the request times the fake logged since MARK.
req_times() { reqlog "$4" | awk -v r="$1" -v v="$2" -v s="$3" '$2 == r && $3 == v && $4 == s' | sed 's/.* t=//' | tr '\n' ' '; }
# gaps T...: the differences between consecutive times.
gaps() { python3 -c "import sys; t=[float(x) for x in sys.argv[1:]]; print(' '.join('%.2f' % (b - a) for a, b in zip(t, t[1:])))" "$@"; }

# Let the watches age past a second: a watch that ends sooner without an event is a failure.
sleep 1.2

# ---- (a) 403 on the services list --------------------------------------------------------
mark=$(api_last_id)
logmark=$(wc -l <"$AGENT_LOG")
api_fault '{"type":"forbidden","resource":"services","on":"list","count":-1}'
# A 410 on the services watch makes the agent list services again.
api_fault '{"type":"gone_watch","resource":"services"}'
api_fault '{"type":"end_watch","resource":"services"}'
got_403s() { [ "$(req_times services list 403 "$mark" | wc -w)" -ge "$1" ]; }
wait_for "three 403s" 150 got_403s 3
check "while services are forbidden, the VIP keeps answering pod1" \
	test "$(probe tcp 10.96.0.10 80 --count 20 | grep -c '^pod1:8080$')" -eq 20
check "  and a slice change still reaches the datapath" toggle
wait_for "four 403s" 100 got_403s 4
t403=$(req_times services list 403 "$mark")
g=$(gaps $t403)
log "403 list times: $t403 gaps: $g"
# Backoff 0.8 s doubling to the 4 s cap, jittered 0.75..1.25: the first gaps must grow.
check "403: the list is retried with growing gaps ($g s)" python3 -c "
import sys
d=[float(x) for x in '$g'.split()]
sys.exit(0 if len(d) >= 3 and d[0] >= 0.55 and d[1] >= 1.15 * d[0] and min(d) >= 0.55 else 1)"
new_log=$(tail -n +"$((logmark + 1))" "$AGENT_LOG")
check "the 403 is logged once, as a warning naming verb, resource and group" test "$(grep -c \
	'level=warn msg="forbidden by the API server: grant list/watch on this resource (RBAC)" resource=services group="" verb=list message="services is forbidden: User' \
	<<<"$new_log")" -eq 1
check "  and no other warning line repeats it" test "$(grep -c 'resource=services op=list status=403' <<<"$new_log")" -eq 0
ctl POST /control/faults/clear >/dev/null
listed() { [ -n "$(req_times services list 200 "$mark")" ]; }
wait_for "services listed again" 100 listed
api_watchers 2
check "recovery: the list succeeds and the agent says so once" test "$(grep -c \
	'level=info msg="API access granted again" resource=services group="" verb=list' "$AGENT_LOG")" -eq 1
check "  and changes arrive again" toggle

# ---- (b) an outage longer than the watch-cache window ------------------------------------
sleep 1.2
mark=$(api_last_id)
logmark=$(wc -l <"$AGENT_LOG")
before=$(syncs)
api_fault '{"type":"unavailable","resource":"endpointslices","on":"watch","count":-1}'
api_fault '{"type":"end_watch","resource":"endpointslices"}'
got_503() { [ -n "$(req_times endpointslices watch 503 "$mark")" ]; }
wait_for "the slice watch refused" 50 got_503
# The change the agent cannot see, then more than the 2 s window.
current=$((3 - current))
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' "10.244.0.1$current")"
sleep 2.5
ctl GET /control/state >"$TMP/state.json"
check "the fake's watch cache has dropped the change" python3 -c "
import json, sys
d = json.load(open('$TMP/state.json'))
sys.exit(0 if d['watchCache']['endpointslices']['events'] == 0 and d['watchCache']['endpointslices']['tooOldBelow'] == d['rv'] else 1)"
ctl POST /control/faults/clear >/dev/null
relisted() { [ -n "$(req_times endpointslices list 200 "$mark")" ]; }
wait_for "slices relisted" 150 relisted
check "after the outage the resumed watch got 410 Expired" grep -q \
	'msg="watch error event" resource=endpointslices code=410 message="too old resource version' <<<"$(tail -n +"$((logmark + 1))" "$AGENT_LOG")"
check "  and the agent listed the slices again" relisted
check "  the datapath ends right: the change made during the outage is served" \
	reaches 10.96.0.10 80 "^pod$current:8080\$" 2500
wait_for "sync after the relist" 100 synced_past "$before"
api_watchers 2
check "  and later changes still arrive" toggle

# ---- (c) 504 Too large resource version ----------------------------------------------------
sleep 1.2
mark=$(api_last_id)
api_fault '{"type":"too_large_rv","resource":"services","on":"list","seconds":0,"count":-1}'
api_fault '{"type":"gone_watch","resource":"services"}'
api_fault '{"type":"end_watch","resource":"services"}'
sleep 10
ctl POST /control/faults/clear >/dev/null
t504=$(req_times services list 504 "$mark")
n504=$(wc -w <<<"$t504")
g=$(gaps $t504)
log "504 list times: $t504 gaps: $g"
check "504 on the list for 10 s: retried, but not spinning ($n504 lists, gaps $g s)" python3 -c "
import sys
d=[float(x) for x in '$g'.split()]
sys.exit(0 if 2 <= $n504 <= 6 and min(d) >= 0.95 else 1)"
wait_for "services listed again" 100 listed
api_watchers 2
check "  recovered: changes arrive" toggle

sleep 1.2
mark=$(api_last_id)
logmark=$(wc -l <"$AGENT_LOG")
api_fault '{"type":"too_large_rv","resource":"endpointslices","on":"watch","seconds":0,"count":3}'
api_fault '{"type":"end_watch","resource":"endpointslices"}'
three_done() { [ "$(reqlog "$mark" | awk '$2 == "endpointslices" && $3 == "watch"' | wc -l)" -ge 4 ]; }
wait_for "the faults used up" 300 three_done
api_watchers 2
seq=$(reqlog "$mark" | awk '$2 == "endpointslices" { print $3 }' | tr '\n' ' ')
tw=$(reqlog "$mark" | awk '$2 == "endpointslices"' | sed 's/.* t=//' | tr '\n' ' ')
g=$(gaps $tw)
log "endpointslices requests: $seq gaps: $g"
check "504 ERROR events in the watch: each followed by a list, not the same watch ($seq)" \
	test "$seq" = "watch list watch list watch list watch "
check "  logged as watch error events with code 504" test "$(tail -n +"$((logmark + 1))" "$AGENT_LOG" |
	grep -c 'msg="watch error event" resource=endpointslices code=504 message="Timeout: Too large resource version')" -eq 3
check "  and not spinning: the relists wait for Retry-After (gaps $g s)" python3 -c "
import sys
d=[float(x) for x in '$g'.split()]
sys.exit(0 if min(d[0::2]) >= 0.95 else 1)"
check "  recovered: changes arrive" toggle

json=$("$BPFSVC" list --pin-path "$PIN" --json)
check "final state matches the server" \
	test "$(tr -d ' \n' <<<"$json" | grep -o '"backends":\[[^]]*\]')" = "\"backends\":[{\"ip\":\"10.244.0.1$current\",\"port\":8080}]"
finish
