#!/usr/bin/env bash
# API server faults: after each one the agent recovers and the next change reaches the
# datapath, while a client connecting in a tight loop throughout never fails (the last good
# state keeps serving). A normal watch end resumes without a relist; 410 relists and changes
# nothing that did not change.
. "$(dirname "$0")/lib.sh"

topo_up 2 || { not_ok "topology"; finish; exit 1; }
# A BOOKMARK every second keeps healthy watches inside the agent's short idle timeout
# (--watch-idle-timeout 2 below; the fake's default is kube-apiserver's one a minute).
api_up --bookmark-interval 1 || { not_ok "fake API server"; finish; exit 1; }
kubeconfig_write "    tokenFile: token"
api_apply "$(svc default web 10.96.0.10 'http:80:8080:TCP')"
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11')"
# Backoff capped at 2 s so that many faults in a row keep the test short.
api_agent_start --watch-idle-timeout 2 --api-backoff-max 2 || { not_ok "agent start"; tail -20 "$AGENT_LOG"; finish; exit 1; }
api_watchers 2 || { not_ok "watches open"; finish; exit 1; }

loop_start 10.96.0.10 80 240

# end_watches: the server ends every open watch (as a timeoutSeconds expiry does).
end_watches() { api_fault '{"type":"end_watch"}'; }

# First, while no failure has grown the backoff yet.
sleep 1.2
mark=$(api_last_id)
api_fault '{"type":"server_error","resource":"endpointslices","on":"watch","count":2}'
end_watches
check "500 twice: backed off and recovered" toggle
gaps=$(reqlog "$mark" | grep ' endpointslices watch ' | sed 's/.* t=//' | head -n 3 | tr '\n' ' ')
# Each failure doubles the delay from 0.8 s (jitter 0.75..1.25).
check "  retries back off exponentially (0.8 s, then 1.6 s, jittered): $gaps" python3 -c "
t=[float(x) for x in '$gaps'.split()]
d=[b-a for a,b in zip(t,t[1:])]
import sys; sys.exit(0 if len(d)==2 and 0.55<=d[0]<=1.1 and 1.15<=d[1]/d[0]<=3.4 else 1)"

mark=$(api_last_id)
end_watches
api_watchers 2
check "normal watch end: the change after it arrives" toggle
after=$(reqlog "$mark")
check "  resumed without a relist" test "$(grep -c ' list ' <<<"$after")" -eq 0
check "  the new watches resume from a resourceVersion" test "$(grep ' watch ' <<<"$after" | grep -vc ' rv=-')" -ge 2

api_fault '{"type":"split_events","resource":"endpointslices","count":2}'
end_watches
api_watchers 2
check "events split into 1..7-byte chunks" toggle

api_fault '{"type":"pack_events","resource":"endpointslices","count":2}'
end_watches
api_watchers 2
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11 10.244.0.12')"
check "several events packed in one chunk: the last one wins" toggle

api_fault '{"type":"close_mid_event","resource":"endpointslices","after":0}'
end_watches
api_watchers 2
check "connection closed in the middle of an event: recovered" toggle
check "  the broken watch was logged" grep -q 'msg="watch broken, resuming"' "$AGENT_LOG"

api_fault '{"type":"malformed_event","resource":"endpointslices"}'
end_watches
api_watchers 2
check "a malformed event line: recovered" toggle
check "  and logged" grep -q 'msg="malformed watch event, resuming the watch"' "$AGENT_LOG"

mark=$(api_last_id)
before=$(syncs)
api_fault '{"type":"gone_watch","resource":"endpointslices"}'
end_watches
wait_for "relist after 410" 100 synced_past "$before"
check "410 on a watch: relisted" test "$(reqlog "$mark" | grep -c ' endpointslices list 200 ')" -ge 1
check "  and the relist changed nothing that did not change" \
	grep -q 'reason=resync .*added=0 updated=0 removed=0 .*writes=0' <<<"$(last_sync)"
check "  later changes still arrive" toggle

mark=$(api_last_id)
api_fault '{"type":"gone_list","resource":"services"}'
api_fault '{"type":"gone_watch","resource":"services"}'
end_watches
relisted() { [ "$(reqlog "$mark" | grep -c ' services list 200 ')" -ge 1 ]; }
wait_for "services relisted" 150 relisted
api_watchers 2
check "410 on the list after a 410 watch: listed again" \
	test "$(reqlog "$mark" | grep -c ' services list 410 ')" -eq 1 -a "$(reqlog "$mark" | grep -c ' services list 200 ')" -ge 1
check "  later changes still arrive" toggle

mark=$(api_last_id)
api_fault '{"type":"too_many_requests","resource":"endpointslices","on":"watch","retry_after":2}'
end_watches
api_watchers 2 15
t429=$(reqlog "$mark" | grep ' endpointslices watch 429 ' | head -n1 | sed 's/.* t=//')
tnext=$(reqlog "$mark" | grep ' endpointslices watch 200 ' | head -n1 | sed 's/.* t=//')
check "429 with Retry-After: 2 is honoured (next watch after $(python3 -c "print(round(${tnext:-0} - ${t429:-0}, 2))") s)" \
	python3 -c "import sys; sys.exit(0 if ${tnext:-0} - ${t429:-99999} >= 1.9 else 1)"
check "  later changes still arrive" toggle


mark=$(api_last_id)
api_fault '{"type":"unauthorized_until_token_changes"}'
end_watches
got_401() { [[ $(reqlog "$mark") == *" watch 401 "* ]]; }
wait_for "a 401" 100 got_401
check "the agent was refused with 401" got_401
printf 'rotated-%s\n' "$RUN" >"$TOKEN_FILE.tmp" && mv "$TOKEN_FILE.tmp" "$TOKEN_FILE"
check "401 until the token file is rotated: the agent re-reads it and recovers" toggle

api_fault '{"type":"stall","resource":"endpointslices","on":"watch","phase":"after_headers","seconds":60}'
end_watches
sleep 0.5
check "a stalled watch is dropped after the idle timeout and resumed" toggle

loop_stop "every fault"
json=$("$BPFSVC" list --pin-path "$PIN" --json)
check "final state matches the server" \
	test "$(tr -d ' \n' <<<"$json" | grep -o '"backends":\[[^]]*\]')" = "\"backends\":[{\"ip\":\"10.244.0.1$current\",\"port\":8080}]"
finish
