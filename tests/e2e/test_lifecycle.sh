#!/usr/bin/env bash
# Agent lifecycle: bad objects are skipped and logged, a broken file changes nothing, the
# datapath keeps serving with the agent stopped, a new agent adopts without rewriting, YAML
# input, cleanup removes everything; CLI usage errors.
. "$(dirname "$0")/lib.sh"

topo_up 2 || { not_ok "topology"; finish; exit 1; }
write_objects "$(svc default web 10.96.0.10 'http:80:8080:TCP')" \
	"$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11 10.244.0.12')" \
	"$(svc default badip 10.96.0.300 'http:80:8080:TCP')" \
	"$(svc default badport 10.96.0.11 'http:70000:8080:TCP')" \
	"$(svc default badproto 10.96.0.12 'http:80:8080:FOO')" \
	"$(svc default badslice 10.96.0.13 'http:80:8080:TCP')" \
	"$(slice default badslice badslice-1 IPv4 'http:8080:TCP' '10.244.0.999')" \
	"$(svc other api 10.96.0.14 'https:443:8080:TCP')" \
	"$(slice other api api-1 IPv4 'https:8080:TCP' '10.244.0.12')"
agent_start || { not_ok "agent start"; cat "$AGENT_LOG"; finish; exit 1; }

for what in "default/badip.*bad clusterIP" "default/badport.*out of range" \
	"default/badproto.*unknown protocol" "default/badslice-1.*bad IPv4 address"; do
	check "bad object logged: $what" grep -Eq "level=warn msg=\"object skipped\".*object=$what" "$AGENT_LOG"
done
check "the good services are programmed despite the bad ones" test "$(probe tcp 10.96.0.14 443)" = "pod2:8080"
check "service with a bad slice: programmed without it (refuses)" test "$(probe tcp 10.96.0.13 80)" = "ERR ECONNREFUSED"

cp "$OBJS" "$TMP/good.json"
printf '{"kind":"List","items":[{"kind":"Service"' >"$OBJS.tmp" && mv "$OBJS.tmp" "$OBJS"
reload_fail_mark=$(grep -c 'cannot read objects' "$AGENT_LOG")
kill -HUP "$AGENT_PID"
wait_for "parse error logged" 50 test "$(grep -c 'cannot read objects' "$AGENT_LOG")" -gt "$reload_fail_mark"
check "an unparseable file is reported with its position" grep -q 'cannot read objects, keeping the current state.*line 1' "$AGENT_LOG"
check "  and the datapath keeps serving" grep -Eq '^pod[12]:8080$' <<<"$(probe tcp 10.96.0.10 80)"

agent_stop
check "agent stopped: the datapath keeps serving" test "$(probe tcp 10.96.0.10 80 --count 20 | grep -c '^pod[12]:8080$')" -eq 20
check "agent stopped: list still works" grep -q 'default/web:http' <<<"$("$BPFSVC" list --pin-path "$PIN")"

# The same state as YAML (the 'good' file without the bad objects' effect: they add nothing).
cat >"$OBJS.tmp" <<'YAML'
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {namespace: default, name: web}
  spec:
    clusterIP: 10.96.0.10
    clusterIPs: [10.96.0.10]
    ports:
    - {name: http, port: 80, targetPort: 8080, protocol: TCP}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    namespace: default
    name: web-1
    labels: {kubernetes.io/service-name: web}
  addressType: IPv4
  ports: [{name: http, port: 8080, protocol: TCP}]
  endpoints:
  - addresses: ["10.244.0.11"]
    conditions: {ready: true}
  - addresses: ["10.244.0.12"]
- kind: Service
  apiVersion: v1
  metadata: {namespace: default, name: badslice}
  spec:
    clusterIPs: ["10.96.0.13"]
    ports: [{name: http, port: 80, targetPort: 8080}]
- apiVersion: v1
  kind: Service
  metadata: {namespace: other, name: api}
  spec:
    clusterIPs: ["10.96.0.14"]
    ports: [{name: https, port: 443, targetPort: 8080, protocol: TCP}]
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    namespace: other
    name: api-1
    labels: {kubernetes.io/service-name: api}
  addressType: IPv4
  ports: [{name: https, port: 8080, protocol: TCP}]
  endpoints:
  - addresses: ["10.244.0.12"]
YAML
mv "$OBJS.tmp" "$OBJS"
agent_start || { not_ok "agent restart"; cat "$AGENT_LOG"; finish; exit 1; }
"$BPFSVC" agent --from-file "$OBJS" --cgroup "$CG" --pin-path "$PIN" 2>"$TMP/second.err"
check "a second agent on the same pin path refuses to start" \
	test $? -eq 1 -a "$(grep -c 'another bpfsvc agent is running on this pin path' "$TMP/second.err")" -eq 1
check "  and the first one still serves" grep -Eq '^pod[12]:8080$' <<<"$(probe tcp 10.96.0.10 80)"
check "restarted agent adopts the pinned state" grep -q 'msg="datapath ready".*adopted_frontends=3 gc_slots=0' "$AGENT_LOG"
check "restarted agent on the same objects (as YAML) writes nothing" grep -q 'reason=start frontends=3 added=0 updated=0 removed=0 unchanged=3 failed=0 writes=0' <<<"$(last_sync)"
check "  and serves" grep -Eq '^pod[12]:8080$' <<<"$(probe tcp 10.96.0.10 80)"
links=$(bpftool cgroup show "$CG" | grep -c 'bpfsvc_')
check "exactly 8 programs attached to the test cgroup after restart ($links)" test "$links" -eq 8

agent_stop
"$BPFSVC" cleanup --pin-path "$PIN"
check "cleanup exits 0" test $? -eq 0
check "cleanup removed the pins" test ! -e "$PIN"
check "cleanup detached the programs" test "$(bpftool cgroup show "$CG" | grep -c 'bpfsvc_')" -eq 0
check "after cleanup the VIP is not translated" grep -q '^ERR' <<<"$(probe tcp 10.96.0.10 80 --timeout-ms 300)"
"$BPFSVC" list --pin-path "$PIN" >/dev/null 2>"$TMP/list.err"
check "list without pins fails with a clear error" grep -q 'open pinned map.*No such file' "$TMP/list.err"

# CLI
"$BPFSVC" --help | grep -q '^Usage: bpfsvc <command>'
check "bpfsvc --help" test $? -eq 0
"$BPFSVC" agent --help | grep -q -- '--from-file'
check "bpfsvc agent --help" test $? -eq 0
"$BPFSVC" version | grep -q '^bpfsvc '
check "bpfsvc version" test $? -eq 0
"$BPFSVC" list --bogus >/dev/null 2>&1
check "unknown flag: exit 2" test $? -eq 2
env -u KUBECONFIG -u KUBERNETES_SERVICE_HOST "$BPFSVC" agent --cgroup "$CG" --pin-path "$PIN" 2>"$TMP/nosrc.err"
check "agent with no source at all: fails before attaching, saying why" \
	test $? -eq 1 -a ! -e "$PIN" -a "$(grep -c 'no kubeconfig' "$TMP/nosrc.err")" -eq 1
"$BPFSVC" agent --from-file x --kubeconfig y >/dev/null 2>&1
check "agent with two sources: exit 2" test $? -eq 2
"$BPFSVC" frobnicate >/dev/null 2>&1
check "unknown command: exit 2" test $? -eq 2
"$BPFSVC" agent --from-file x --max-services nope >/dev/null 2>"$TMP/usage.err"
check "bad number: exit 2 naming it" grep -q 'bad number "nope"' "$TMP/usage.err"
finish
