#!/usr/bin/env bash
# The agent against an API server speaking HTTP/2, as kube-apiserver does: both watches and
# the lists share one connection; the connection's health is checked as client-go does (a
# probe after --http2-read-idle-timeout of silence, dropped --http2-ping-timeout later); and
# GOAWAY (graceful and abrupt), RST_STREAM on a watch and on a list, a stalled connection and
# a large burst through flow control each end with the next change reaching the datapath,
# while a client connecting in a tight loop throughout never fails.
. "$(dirname "$0")/lib.sh"

topo_up 2 || { not_ok "topology"; finish; exit 1; }
api_up --bookmark-interval 60 || { not_ok "fake API server"; finish; exit 1; }
kubeconfig_write "    tokenFile: token"
api_apply "$(svc default web 10.96.0.10 'http:80:8080:TCP')"
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11')"
api_agent_start --http2-read-idle-timeout 2 --http2-ping-timeout 2 --api-backoff-max 2 ||
	{ not_ok "agent start"; tail -20 "$AGENT_LOG"; finish; exit 1; }
api_watchers 2 || { not_ok "watches open"; finish; exit 1; }

loop_start 10.96.0.10 80 300

# api_lines [SINCE]: the Service/EndpointSlice requests (not the health probes).
api_lines() { reqlog "${1:-}" | grep -E ' (list|watch) '; }
# conns: the distinct HTTP/2 connection ids in reqlog lines on stdin.
conns() { sed -n 's/.* conn=\([0-9-]*\) .*/\1/p' | sort -u | tr '\n' ' ' | sed 's/ $//'; }
# lists_past N [RESOURCE]: more than N "list complete" lines (for wait_for: evaluated each try).
lists_past() { [ "$(grep -c "msg=\"list complete\" resource=${2:-}" "$AGENT_LOG")" -gt "$1" ]; }
# watches_since MARK N: at least N watch requests after request MARK.
watches_since() { [ "$(api_lines "$1" | grep -c ' watch ')" -ge "$2" ]; }
h2stat() { ctl GET /control/state | python3 -c "import json,sys; print(json.load(sys.stdin)['h2']['$1'])"; }
watch_conns() { ctl GET /control/watchers | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(sorted({w["peer"] for w in d["watches"]})))'; }

all=$(api_lines)
check "lists and both watches went over HTTP/2 ($(grep -c 'proto=h2' <<<"$all") of $(wc -l <<<"$all"))" \
	test "$(grep -vc 'proto=h2' <<<"$all")" -eq 0
check "  all on one connection (conn $(conns <<<"$all"))" test "$(conns <<<"$all" | wc -w)" -eq 1

# A quiet connection is probed (GET /version on it) and kept.
mark=$(api_last_id)
sleep 5
probes=$(reqlog "$mark" | grep ' other ')
check "a quiet connection gets health probes ($(wc -l <<<"$probes") GET /version in 5 s)" \
	test "$(grep -c ' 200 ' <<<"$probes")" -ge 1
check "  on the same connection, which is kept (no new watch)" \
	test "$(conns <<<"$probes")" = "$(conns <<<"$all")" -a "$(api_lines "$mark" | grep -c ' watch ')" -eq 0

# A stalled connection (no frame either way, PINGs unanswered, TCP up): the health check
# drops it after 2 s + 2 s and both watches resume on a new connection.
mark=$(api_last_id)
stalled_conn=$(api_lines | grep ' watch ' | tail -n 1 | conns)
logged=$(wc -l <"$AGENT_LOG")
t0=$(date +%s.%N)
api_fault '{"type":"stall_connection","seconds":60}'
check "stalled connection: the next change still arrives" toggle
t1=$(date +%s.%N)
stall_s=$(python3 -c "print(round($t1 - $t0, 1))")
check "  within 10 s ($stall_s s), long before the stall ends (60 s)" python3 -c "import sys; sys.exit(0 if $stall_s < 10 else 1)"
check "  the agent says why it dropped the connection" grep -q 'HTTP/2 connection unresponsive' <(tail -n +"$((logged + 1))" "$AGENT_LOG")
wait_for "both watches resumed" 100 watches_since "$mark" 2
after=$(api_lines "$mark")
check "  both watches resumed on a new connection (not $stalled_conn: $(grep ' watch ' <<<"$after" | conns)), no relist" \
	test "$(grep -c ' watch ' <<<"$after")" -ge 2 -a "$(grep ' watch ' <<<"$after" | conns | grep -cw "$stalled_conn")" -eq 0 -a "$(grep -c ' list ' <<<"$after")" -eq 0

# Graceful GOAWAY: the watches go on over the old connection, new requests go to a new one.
mark=$(api_last_id)
api_fault '{"type":"goaway"}'
check "GOAWAY (graceful): the next change arrives over the running watches" toggle
logged=$(wc -l <"$AGENT_LOG")
sleep 6
check "  no watch was restarted for it, nor in 6 s of quiet (the draining connection cannot be probed, and is not called unresponsive)" \
	test "$(api_lines "$mark" | grep -c ' watch ')" -eq 0 -a "$(tail -n +"$((logged + 1))" "$AGENT_LOG" | grep -c 'HTTP/2 connection')" -eq 0
old_conn=$(api_lines | grep ' watch ' | tail -n 1 | conns)
# Silent 4 x (2 s + 2 s), the unprobeable connection is given up and its watches move.
wait_for "watches moved off the draining connection" 250 watches_since "$mark" 2
check "  silent 16 s, the draining connection is left: the agent says so (not 'unresponsive')" \
	grep -q 'HTTP/2 connection draining' <(tail -n +"$((logged + 1))" "$AGENT_LOG")
check "  the next change arrives" toggle
after=$(api_lines "$mark")
check "    both watches on a new connection ($(grep ' watch ' <<<"$after" | conns), not $old_conn), without a relist" \
	test "$(grep ' watch ' <<<"$after" | conns | grep -cw "$old_conn")" -eq 0 -a "$(grep -c ' list ' <<<"$after")" -eq 0

# Abrupt GOAWAY: the connection is gone with both watches; they resume, no relist.
mark=$(api_last_id)
api_fault '{"type":"goaway","abrupt":true}'
wait_for "both watches resumed" 100 watches_since "$mark" 2
check "GOAWAY then a dropped connection: the next change arrives" toggle
after=$(api_lines "$mark")
check "  both watches resumed from a resourceVersion, without a relist" \
	test "$(grep ' watch ' <<<"$after" | grep -vc ' rv=-')" -ge 2 -a "$(grep -c ' list ' <<<"$after")" -eq 0

# RST_STREAM on one watch: the other stream and the connection are unaffected.
api_fault '{"type":"rst_stream","resource":"endpointslices","on":"watch","phase":"after_events","after":1,"error":"INTERNAL_ERROR"}'
api_fault '{"type":"end_watch","resource":"endpointslices"}'
api_watchers 2
mark=$(api_last_id)
svc_conn=$(api_lines | grep ' services watch ' | tail -n 1 | conns)
check "RST_STREAM on the slices watch after one event: that change arrives" toggle
api_watchers 2
check "  and the next one, over the resumed watch" toggle
after=$(api_lines "$mark")
check "  the slices watch resumed on the same connection, no relist" \
	test "$(grep ' endpointslices watch ' <<<"$after" | conns)" = "$svc_conn" -a "$(grep -c ' list ' <<<"$after")" -eq 0

# RST_STREAM (REFUSED_STREAM) on a list page: retried.
mark=$(api_last_id)
lists0=$(grep -c 'msg="list complete" resource=services' "$AGENT_LOG")
t0=$(date +%s.%N)
api_fault '{"type":"rst_stream","resource":"services","on":"list","error":"REFUSED_STREAM"}'
api_fault '{"type":"gone_watch","resource":"services"}'
api_fault '{"type":"end_watch","resource":"services"}'
wait_for "services relisted" 150 lists_past "$lists0" services
after=$(api_lines "$mark")
check "RST_STREAM on a list: the list is retried and completes ($(grep -c ' services list ' <<<"$after") list requests, $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s)" \
	test "$(grep -c 'msg="list complete" resource=services' "$AGENT_LOG")" -gt "$lists0" -a "$(grep -c ' services list ' <<<"$after")" -ge 2
api_watchers 2
check "  the next change arrives" toggle

# Flow control: 2000 Services of ~24 KB arrive as one burst of watch events, about 48 MB
# on one stream: more than the whole window the agent's libcurl opens (32 MB; the server
# cannot send past it), so the burst only gets through if the agent keeps granting more with
# WINDOW_UPDATE as it reads. Then again as a paged relist.
python3 - "$TMP/burst.json" <<'PY'
import json, sys
items = []
for i in range(2000):
    items.append({"kind": "Service", "apiVersion": "v1",
                  "metadata": {"name": "b%04d" % i, "namespace": "burst",
                               "annotations": {"pad": "x" * 24000}},
                  "spec": {"clusterIP": "10.98.%d.%d" % (i // 200, i % 200 + 1),
                           "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    items.append({"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                  "metadata": {"name": "b%04d-1" % i, "namespace": "burst",
                               "labels": {"kubernetes.io/service-name": "b%04d" % i}},
                  "addressType": "IPv4",
                  "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                  "endpoints": [{"addresses": ["10.244.0.11"], "conditions": {"ready": True}}]})
json.dump(items, open(sys.argv[1], "w"))
PY
fe_count() { "$BPFSVC" list --pin-path "$PIN" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
fe_at_least() { [ "$(fe_count)" -ge "$1" ]; }
fe0=$(fe_count)
sent0=$(ctl GET /control/state | python3 -c "import json,sys; print(sum(c['data_sent'] for c in json.load(sys.stdin)['h2']['conns']))")
ctl_file POST /control/apply "$TMP/burst.json" >/dev/null
wait_for "burst programmed" 300 fe_at_least $((fe0 + 2000))
read -r window sent < <(ctl GET /control/state | python3 -c "
import json, sys
cs = json.load(sys.stdin)['h2']['conns']
print(max(c['client_initial_window'] for c in cs), sum(c['data_sent'] for c in cs))")
check "a burst of watch events $(((sent - sent0) / 1048576)) MB, the agent's stream window $((window / 1048576)) MB: all 2000 services programmed ($(fe_count) frontends)" \
	test "$(fe_count)" -eq $((fe0 + 2000)) -a $((sent - sent0)) -gt "$window"
check "  a VIP from the burst answers" reaches 10.98.1.200 80 '^pod1:8080$' 300
lists0=$(grep -c 'msg="list complete"' "$AGENT_LOG")
api_fault '{"type":"gone_watch"}'
api_fault '{"type":"gone_watch"}'
api_fault '{"type":"end_watch"}'
wait_for "relist" 300 lists_past $((lists0 + 1))
api_watchers 2
check "  a paged relist of it changes nothing ($(fe_count) frontends)" test "$(fe_count)" -eq $((fe0 + 2000))
log "server waited for a flow-control window $(h2stat window_waits) times; $(h2stat pings) PINGs received"
check "the next change arrives" toggle

loop_stop "every HTTP/2 fault"
finish
