#!/usr/bin/env bash
# Issue 7, data safety: input that is not what it claims to be changes nothing, a newcomer
# cannot take a VIP from its holder, log lines cannot be forged, a full map names what it left
# out and retries only that, and `list` shows a set of 70,000 backends as it is.
. "$(dirname "$0")/lib.sh"

topo_up 2 || { not_ok "topology up"; finish; exit 1; }

WEB=$(svc default web 10.96.0.10 "http:80:8080:TCP")
WEB_EPS=$(slice default web web-1 IPv4 "http:8080:TCP" "10.244.0.11")
DNS=$(svc default dns 10.96.0.20 "d:80:8080:TCP")
DNS_EPS=$(slice default dns dns-1 IPv4 "d:8080:TCP" "10.244.0.12")
write_objects "$WEB" "$WEB_EPS" "$DNS" "$DNS_EPS"
agent_start || { not_ok "agent started"; finish; exit 1; }
check "web reaches pod1" reaches 10.96.0.10 80 '^pod1:8080$'

stop=$TMP/stop
in_cg "$TOOLS/bsvc-probe" loop 10.96.0.10 80 --stop-file "$stop" --max-seconds 120 >"$TMP/loop.out" 2>&1 &
loop_pid=$!
PIDS+=("$loop_pid")

# put_file NAME CONTENT: replace the object file the way a failed `kubectl ... > file` does.
errors() { grep -c 'msg="cannot read objects, keeping the current state"' "$AGENT_LOG" || true; }
put_file() {
	local name=$1 before
	before=$(errors)
	printf '%s' "$2" >"$OBJS"
	if wait_for "$name rejected" 50 test "$(errors)" -gt "$before"; then
		ok "$name: rejected ($(grep 'cannot read objects' "$AGENT_LOG" | tail -n 1 | sed 's/.*error=//'))"
	else
		not_ok "$name: rejected"
	fi
	check "$name: web still served" reaches 10.96.0.10 80 '^pod1:8080$' 5
	[ -z "${NO_DNS:-}" ] || return 0
	check "$name: dns still served" reaches 10.96.0.20 80 '^pod2:8080$' 5
}
put_file "an empty file" ""
put_file "null" "null"
put_file "an empty object" "{}"
put_file "a bare word" "Unauthorized"
put_file "a kubectl error line" "error: You must be logged in to the server (Unauthorized)"
put_file "an HTML error page" $'<html><head><title>502 Bad Gateway</title></head>\n<body><center>nginx</center></body></html>\n'
put_file "truncated JSON" '{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Serv'
put_file "a duplicate key" '{"apiVersion":"v1","kind":"List","items":[],"kind":"List"}'
put_file "an API error body (Status 401)" '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}'
put_file "a List of Pods (the wrong kubectl get)" '{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}]}'
put_file "a NUL in a name" '{"apiVersion":"v1","kind":"Service","metadata":{"name":"web\u0000evil"}}'
check "no frontend was removed by any of them" bash -c "! grep 'msg=\"sync done\"' '$AGENT_LOG' | grep -v 'removed=0' | grep -q ."
touch "$stop"
wait "$loop_pid"
loop_out=$(cat "$TMP/loop.out")
log "$loop_out"
check "zero failed connects while bad files came and went" grep -q 'failed=0$' <<<"$loop_out"

# Conflicts: the holder keeps its VIP whatever the newcomer's name or spelling.
STEAL=$(svc aaa steal 10.96.0.10 "http:80:8080:TCP")
STEAL_EPS=$(slice aaa steal steal-1 IPv4 "http:8080:TCP" "10.244.0.12")
MAPPED=$(svc aaa mapped ::ffff:10.96.0.10 "http:80:8080:TCP")
before=$(syncs)
write_objects "$WEB" "$WEB_EPS" "$DNS" "$DNS_EPS" "$STEAL" "$STEAL_EPS" "$MAPPED"
wait_for "sync" 50 synced_past "$before"
check "a newcomer on web's VIP (sorting first) does not take it" \
	test "$(probe tcp 10.96.0.10 80 --count 10 | grep -c '^pod1:8080$')" -eq 10
check "the newcomer is warned about, naming the holder" \
	grep -q 'object=aaa/steal reason="frontend 10.96.0.10:80/TCP held by default/web, ignored"' "$AGENT_LOG"
check "a v4-mapped clusterIP is skipped with a warning" \
	grep -q 'object=aaa/mapped reason="clusterIP \\"::ffff:10.96.0.10\\" is an IPv4-mapped' "$AGENT_LOG"
before=$(syncs)
kill -HUP "$AGENT_PID"
wait_for "sync" 50 synced_past "$before"
check "...and after a reload web still holds it" \
	test "$(probe tcp 10.96.0.10 80 --count 10 | grep -c '^pod1:8080$')" -eq 10

# Log injection: a newline in a value stays inside its line.
before=$(syncs)
EVIL='{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"default","name":"evil"},"spec":{"clusterIP":"10.0.0.1\ntime=x level=error msg=\"forged\"","ports":[{"name":"http","port":80,"protocol":"TCP"}]}}'
write_objects "$WEB" "$WEB_EPS" "$EVIL"
wait_for "sync" 50 synced_past "$before"
check "every log line is a real one (no forged line)" bash -c "! grep -v '^time=[0-9T:.-]*Z level=' '$AGENT_LOG' | grep -q ."
check "the value is escaped inside the warning" grep -q 'bad clusterIP \\"10.0.0.1\\ntime=x level=error' "$AGENT_LOG"

# Thousands of bad objects (or an alias bomb) get a sample and a count, not a line each.
bad=()
for i in $(seq 1 200); do bad+=("$(svc default "bad$i" "10.96.3.$i" "http:0:8080:TCP")"); done
skipped_before=$(grep -c 'msg="object skipped"' "$AGENT_LOG")
before=$(syncs)
write_objects "$WEB" "$WEB_EPS" "${bad[@]}"
wait_for "sync" 50 synced_past "$before"
skipped=$(($(grep -c 'msg="object skipped"' "$AGENT_LOG") - skipped_before))
check "200 bad services: 50 warnings ($skipped) and one line counting the rest" \
	bash -c "test $skipped -eq 50 && grep -q 'msg=\"more objects skipped, not logged one by one\" count=150' '$AGENT_LOG'"
bomb='apiVersion: v1
kind: List
items:
- &s {kind: Service, apiVersion: v1, metadata: {name: x}, spec: {clusterIP: bad}}
- &a {kind: List, apiVersion: v1, items: [*s, *s, *s, *s, *s, *s, *s, *s, *s, *s]}
- &b {kind: List, apiVersion: v1, items: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]}
- &c {kind: List, apiVersion: v1, items: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]}
- &d {kind: List, apiVersion: v1, items: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]}
- &e {kind: List, apiVersion: v1, items: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}
'
lines=$(wc -l <"$AGENT_LOG")
NO_DNS=1 put_file "a YAML alias bomb" "$bomb"
check "the alias bomb cost one log line ($(($(wc -l <"$AGENT_LOG") - lines)))" \
	test "$(tail -n +$((lines + 1)) "$AGENT_LOG" | grep -c .)" -eq 1

# Only a well-formed empty List empties the datapath, and says so.
before=$(syncs)
write_objects
wait_for "sync" 50 synced_past "$before"
check "an empty List removes every service" test "$(probe tcp 10.96.0.20 80 --timeout-ms 300)" != "pod2:8080"
check "...with a warning counting what was removed" \
	grep -q 'level=warn msg="the source holds no services: every frontend was removed" removed=1' "$AGENT_LOG"
agent_stop

# Capacity: --max-services 16 (the least it takes) with 19 service ports. The log names the map, its size and the
# services left out; the retry writes only those, on a backoff, without re-reading the file.
"$BPFSVC" cleanup --pin-path "$PIN" >/dev/null 2>&1
objs=()
for i in $(seq 1 19); do
	objs+=("$(svc default "s$i" "10.96.1.$i" "http:80:8080:TCP")" "$(slice default "s$i" "s$i-1" IPv4 "http:8080:TCP" "10.244.0.11")")
done
write_objects "${objs[@]}"
: >"$AGENT_LOG"
agent_start --max-services 16
check "capacity: the full map is named with its size and the services left out" \
	grep -q 'msg="map full: frontends left out, retrying" map=bpfsvc_svcs capacity=16 frontends=3 services=3 first="default/s17 default/s18 default/s19" more=0' "$AGENT_LOG"
check "capacity: the services that fit are served" reaches 10.96.1.16 80 '^pod1:8080$'
sleep 13
retries=$(grep -c 'msg="retried frontends that failed"' "$AGENT_LOG")
reads=$(grep -c 'msg="sync done"' "$AGENT_LOG")
check "capacity: retried on a backoff (5 s, then 10 s: $retries retries in 13 s), the file read once ($reads)" \
	test "$retries" -ge 1 -a "$retries" -le 2 -a "$reads" -eq 1
check "capacity: a retry touches only the 3 that failed" \
	grep -q 'msg="retried frontends that failed" retried=3 added=0 updated=0 failed=3' "$AGENT_LOG"
before=$(syncs)
write_objects "${objs[@]:0:32}"
wait_for "sync" 50 synced_past "$before"
check "capacity: once the file fits, no more failures" bash -c "last_sync() { grep 'msg=\"sync done\"' '$AGENT_LOG' | tail -n 1; }; last_sync | grep -q 'failed=0'"
n=$(grep -c 'msg="map full' "$AGENT_LOG")
sleep 6
check "capacity: and no more retries" test "$(grep -c 'msg="map full' "$AGENT_LOG")" -eq "$n"
agent_stop

# One slice of 70,000 endpoints: programmed, and `list` shows all of them.
"$BPFSVC" cleanup --pin-path "$PIN" >/dev/null 2>&1
python3 - "$OBJS" <<'PY'
import json, sys
eps = [{"addresses": ["10.%d.%d.%d" % (1 + i // 65536, (i // 256) % 256, i % 256)]} for i in range(70000)]
objs = [{"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "default", "name": "big"},
         "spec": {"clusterIP": "10.96.2.1", "clusterIPs": ["10.96.2.1"], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"namespace": "default", "name": "big-1", "labels": {"kubernetes.io/service-name": "big"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}], "endpoints": eps}]
json.dump({"apiVersion": "v1", "kind": "List", "items": objs}, open(sys.argv[1] + ".tmp", "w"))
PY
mv "$OBJS.tmp" "$OBJS"
agent_start
n=$("$BPFSVC" list --pin-path "$PIN" --json | python3 -c 'import json,sys; print(sum(len(r["backends"]) for r in json.load(sys.stdin) if r["name"] == "big"))')
check "list --json shows all 70000 backends (got $n)" test "$n" = 70000
check "the table too" bash -c "'$BPFSVC' list --pin-path '$PIN' | grep -c '^  -> 10\\.' | grep -qx 70000"
agent_stop
# A restarted agent adopts the set as it is (not dirty, nothing rewritten).
: >"$AGENT_LOG"
agent_start
check "a restart adopts the 70000-backend set unchanged" grep -q 'unchanged=1 failed=0 writes=0' "$AGENT_LOG"
agent_stop

# Memory is given back when the file shrinks (the agent kept its peak, 248 MB here, before).
# The plain build: the sanitizers' allocator keeps freed memory on purpose.
"$BPFSVC" cleanup --pin-path "$PIN" >/dev/null 2>&1
python3 - "$OBJS" 30000 <<'PY'
import json, sys
n = int(sys.argv[2]); objs = []
for i in range(n):
    name = "s%d" % i
    objs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "default", "name": name},
                 "spec": {"clusterIP": "10.%d.%d.%d" % (100 + i // 65536, (i // 256) % 256, i % 256),
                          "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    objs.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"namespace": "default", "name": name + "-1", "labels": {"kubernetes.io/service-name": name}},
                 "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                 "endpoints": [{"addresses": ["10.244.%d.%d" % (j, i % 250 + 1)]} for j in range(3)]})
json.dump({"apiVersion": "v1", "kind": "List", "items": objs}, open(sys.argv[1] + ".tmp", "w"))
PY
mv "$OBJS.tmp" "$OBJS"
# The plain build beside the sanitized one under test (build/asan/bpfsvc -> build/bpfsvc).
case $BPFSVC in */asan/bpfsvc) plain=${BPFSVC%/asan/bpfsvc}/bpfsvc ;; *) plain=$BPFSVC ;; esac
BPFSVC=$plain agent_start
before=$(syncs)
write_objects "$WEB" "$WEB_EPS"
wait_for "sync" 100 synced_past "$before"
peak=$(awk '/VmHWM/ { print $2 }' "/proc/$AGENT_PID/status")
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$AGENT_PID/status")
log "30000 services x 3 endpoints, then 1: peak ${peak} kB, now ${rss} kB"
check "memory is given back when the file shrinks (${rss} kB of a ${peak} kB peak)" test "$rss" -lt $((peak / 4))

finish
