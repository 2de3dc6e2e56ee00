#!/usr/bin/env bash
# Self-test of the fake API server with curl: starts it on 127.0.0.1 (and ::1 if available) with
# random free ports, checks every feature and fault, prints "ok - ..."/"not ok - ..." lines and
# "N passed, N failed"; exits non-zero on any failure. Needs python3, openssl and curl.
# The bash -c snippets below are single-quoted on purpose (they get their values as "$1"...).
# shellcheck disable=SC2016
set -u
# Debian's python3 first: python3-h2 and python3-kubernetes are installed for it, and a
# python3 from pyenv or a venv earlier in PATH would not see them.
PATH=/usr/bin:$PATH
here=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/fake-apiserver-selftest.XXXXXX)
pass=0
fail=0
pids=()   # servers we started
bgpids=() # background curls

cleanup() {
	[ -n "${KEEP:-}" ] && cp -r "$T" /tmp/selftest-keep
	local p
	for p in "${bgpids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() {
	echo "ok - $*"
	pass=$((pass + 1))
}
nok() {
	echo "not ok - $*"
	fail=$((fail + 1))
}
check() { # DESC CMD...
	local d=$1
	shift
	if "$@"; then ok "$d"; else nok "$d"; fi
}

# ------------------------------------------------------------------------------------------
# JSON / chunk helpers (python3, stdlib)
cat >"$T/h.py" <<'EOF'
import json, sys

def parse_lines(data):
    raw = data.split(b"\n")
    partial = raw[-1] != b""
    if not partial:
        raw = raw[:-1]
    evs = []
    for line in raw:
        try:
            evs.append(json.loads(line))
        except ValueError:
            evs.append(None)
    return evs, [r.decode("utf-8", "replace") for r in raw], partial

def dechunk(data):
    sizes, body, i, term, ok = [], b"", 0, False, True
    while i < len(data):
        j = data.find(b"\r\n", i)
        if j < 0:
            ok = False
            break
        n = int(data[i:j].split(b";")[0], 16)
        if n == 0:
            term = data[j:j + 4] == b"\r\n\r\n"
            break
        chunk = data[j + 2:j + 2 + n]
        if len(chunk) < n or data[j + 2 + n:j + 4 + n] != b"\r\n":
            ok = False
            body += chunk
            break
        sizes.append(n)
        body += chunk
        i = j + 4 + n
    return sizes, body, term, ok

mode, path, expr = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(path, "rb").read()
env = {}
if mode == "jt":
    env["d"] = json.loads(data)
elif mode == "lines":
    env["evs"], env["raw"], env["partial"] = parse_lines(data)
elif mode == "chunks":
    env["sizes"], env["body"], env["term"], env["framing_ok"] = dechunk(data)
    env["evs"], env["raw"], env["partial"] = parse_lines(env["body"])
try:
    r = eval(expr, env)
except Exception as e:
    print("helper: %s: %r" % (expr, e), file=sys.stderr)
    sys.exit(2)
if len(sys.argv) > 4:
    print(r)
    sys.exit(0)
if not r:
    print("helper: false: %s" % expr, file=sys.stderr)
sys.exit(0 if r else 1)
EOF
jt() { python3 "$T/h.py" jt "$@"; }
jl() { python3 "$T/h.py" lines "$@"; }
jc() { python3 "$T/h.py" chunks "$@"; }
jget() { python3 "$T/h.py" jt "$1" "$2" print; }

# ------------------------------------------------------------------------------------------
# PKI and server

PKI=$T/pki
"$here/mkcerts.sh" "$PKI" >/dev/null 2>"$T/mkcerts.err"
check "mkcerts.sh makes ca/server/client certs and keys" \
	test -s "$PKI/ca.crt" -a -s "$PKI/ca.key" -a -s "$PKI/server.crt" -a -s "$PKI/server.key" \
	-a -s "$PKI/client.crt" -a -s "$PKI/client.key"
san=$(openssl x509 -in "$PKI/server.crt" -noout -ext subjectAltName 2>/dev/null | tail -n +2)
check "server cert SAN has IP 127.0.0.1, IP ::1, DNS localhost" \
	bash -c '[[ "$1" == *"IP Address:127.0.0.1"* && "$1" == *"IP Address:0:0:0:0:0:0:0:1"* && "$1" == *"DNS:localhost"* ]]' _ "$san"
subj=$(openssl x509 -in "$PKI/client.crt" -noout -subject -nameopt RFC2253 2>/dev/null)
check "client cert subject is O=system:nodes, CN=bpfsvc" \
	bash -c '[[ "$1" == *"CN=bpfsvc"* && "$1" == *"O=system:nodes"* ]]' _ "$subj"
check "server and client certs verify against the CA" \
	bash -c 'openssl verify -CAfile "$1/ca.crt" "$1/server.crt" "$1/client.crt" >/dev/null' _ "$PKI"
# A client cert from an unrelated CA (must be rejected in the handshake).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rogue.key" \
	-out "$T/rogue.crt" -subj "/CN=rogue" -days 1 >/dev/null 2>&1

TOKEN=$T/token
printf 'tok-1\n' >"$TOKEN"

# start_server NAME LISTEN [extra args]: sets SRV_PID, PORT, CPORT
start_server() {
	local name=$1 listen=$2 i
	shift 2
	rm -f "$T/$name.ports"
	python3 "$here/fake_apiserver.py" --listen "$listen" --port 0 --control-port 0 \
		--cert "$PKI/server.crt" --key "$PKI/server.key" --client-ca "$PKI/ca.crt" \
		--token-file "$TOKEN" --port-file "$T/$name.ports" "$@" \
		>"$T/$name.out" 2>"$T/$name.err" &
	SRV_PID=$!
	pids+=("$SRV_PID")
	for i in $(seq 100); do
		[ -s "$T/$name.ports" ] && break
		sleep 0.1
	done
	PORT=$(jget "$T/$name.ports" 'd["port"]' 2>/dev/null)
	CPORT=$(jget "$T/$name.ports" 'd["control_port"]' 2>/dev/null)
	[ -n "$PORT" ] && [ -n "$CPORT" ]
}

if ! start_server main 127.0.0.1 --bookmark-interval 0.5; then
	nok "server starts and writes its port file"
	cat "$T/main.err" >&2
	echo "$pass passed, $fail failed"
	exit 1
fi
MAIN_PID=$SRV_PID
ok "server starts and writes its port file (port $PORT, control $CPORT)"
sleep 0.2
check "server prints 'ready port=P control_port=C'" \
	grep -qx "ready port=$PORT control_port=$CPORT" "$T/main.out"

BASE=https://127.0.0.1:$PORT
# --http1.1: these checks look at HTTP/1.1 chunk framing; selftest_h2.py covers HTTP/2.
CA=(--cacert "$PKI/ca.crt" --http1.1)
CERT=(--cert "$PKI/client.crt" --key "$PKI/client.key")

tok() { cat "$TOKEN"; }
# api OUT PATH [curl args]: token auth; prints the HTTP status
api() {
	local out=$1 p=$2
	shift 2
	[ "$out" = /dev/null ] || : >"$out"
	curl -sS "${CA[@]}" -H "Authorization: Bearer $(tok)" -o "$out" -w '%{http_code}' "$@" "$BASE$p"
}
# apic OUT PATH [curl args]: client-cert auth
apic() {
	local out=$1 p=$2
	shift 2
	[ "$out" = /dev/null ] || : >"$out"
	curl -sS "${CA[@]}" "${CERT[@]}" -o "$out" -w '%{http_code}' "$@" "$BASE$p"
}
# ctl METHOD PATH [JSON] -> body on stdout
ctl() {
	if [ $# -ge 3 ]; then
		curl -sS -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "http://127.0.0.1:$CPORT$2"
	else
		curl -sS -X "$1" "http://127.0.0.1:$CPORT$2"
	fi
}
ctlf() { ctl "$@" >"$T/ctl.json"; }
fault() { ctl POST /control/fault "$1" >/dev/null; }
state_rv() { ctl GET /control/state | python3 -c 'import json,sys; print(json.load(sys.stdin)["rv"])'; }
# wcurl OUT PATH [curl args]: a watch with token auth, body to OUT, returns curl's exit code
wcurl() {
	local out=$1 p=$2
	shift 2
	: >"$out"
	curl -sS -N "${CA[@]}" -H "Authorization: Bearer $(tok)" --max-time 15 -o "$out" "$@" "$BASE$p" 2>"$out.err"
}
wait_watchers() { # N [RESOURCE]
	ctl GET "/control/watchers?wait=$1&timeout=5${2:+&resource=$2}" >"$T/ww.json"
	jt "$T/ww.json" 'd["satisfied"]'
}
svc() { # NAME NS LABELS-JSON [CLUSTERIP]
	printf '{"kind":"Service","apiVersion":"v1","metadata":{"name":"%s","namespace":"%s","labels":%s},"spec":{"type":"ClusterIP","clusterIP":"%s","ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080}]}}' \
		"$1" "$2" "$3" "${4:-10.96.0.10}"
}
eps() { # NAME NS SERVICE
	printf '{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"%s","namespace":"%s","labels":{"kubernetes.io/service-name":"%s"}},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":true}}],"ports":[{"name":"http","protocol":"TCP","port":8080}]}' \
		"$1" "$2" "$3"
}

# ------------------------------------------------------------------------------------------
# Auth

code=$(curl -sS "${CA[@]}" -o "$T/b" -w '%{http_code}' "$BASE/api/v1/services")
check "no credentials: 401 with the exact v1 Status body" bash -c \
	'[ "$1" = 401 ] && [ "$(cat "$2")" = '"'"'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}'"'"' ]' _ "$code" "$T/b"
code=$(curl -sS "${CA[@]}" -H "Authorization: Bearer nope" -o "$T/b" -w '%{http_code}' "$BASE/api/v1/services")
check "wrong bearer token: 401" test "$code" = 401
code=$(api "$T/b" /api/v1/services)
check "bearer token (file content, stripped): 200 ServiceList at rv 0" bash -c \
	'[ "$1" = 200 ] && python3 "$2" jt "$3" "d[\"kind\"]==\"ServiceList\" and d[\"apiVersion\"]==\"v1\" and d[\"metadata\"]=={\"resourceVersion\":\"0\"} and d[\"items\"]==[]"' _ "$code" "$T/h.py" "$T/b"
code=$(apic "$T/b" /api/v1/services)
check "client certificate signed by the client CA: 200" test "$code" = 200
curl -sS "${CA[@]}" --cert "$T/rogue.crt" --key "$T/rogue.key" -o /dev/null "$BASE/api/v1/services" 2>/dev/null
rc=$?
check "client certificate from another CA: TLS handshake rejected (curl rc $rc)" test "$rc" -ne 0
printf 'tok-2' >"$TOKEN"
code1=$(curl -sS "${CA[@]}" -H "Authorization: Bearer tok-1" -o /dev/null -w '%{http_code}' "$BASE/api/v1/services")
code2=$(api /dev/null /api/v1/services)
check "token file is re-read per request (old token $code1, new token $code2)" test "$code1" = 401 -a "$code2" = 200
code=$(curl -sS -o "$T/b" -w '%{http_code}' "${CA[@]}" "$BASE/healthz")
check "/healthz answers ok without credentials" test "$code" = 200 -a "$(cat "$T/b")" = ok
n=$(curl -sS "${CA[@]}" -H "Authorization: Bearer $(tok)" -o /dev/null -o /dev/null -w '%{num_connects}\n' \
	"$BASE/api/v1/services" "$BASE/api/v1/services" | awk '{s+=$1} END {print s}')
check "HTTP/1.1 keep-alive: two requests share one connection (connects: $n)" test "$n" = 1

# ------------------------------------------------------------------------------------------
# Objects and lists

ctlf POST /control/apply "{\"kind\":\"List\",\"items\":[
 $(svc web default '{"app":"web","tier":"front"}' 10.96.0.11),
 $(svc api default '{"app":"api","tier":"back"}' 10.96.0.12),
 $(svc db default '{"app":"db","tier":"back","service.kubernetes.io/headless":""}' None),
 $(svc dns kube-system '{"app":"dns"}' 10.96.0.10),
 $(svc proxy other '{"app":"proxy","service.kubernetes.io/service-proxy-name":"foo"}' 10.96.0.13),
 $(eps web-abc default web), $(eps api-abc default api)]}"
check "control apply of a List assigns rvs 1..7" jt "$T/ctl.json" \
	'd["resourceVersion"]=="7" and [i["resourceVersion"] for i in d["items"]]==[str(i) for i in range(1,8)] and all(i["type"]=="ADDED" for i in d["items"])'
code=$(api "$T/b" /api/v1/services)
check "ServiceList: 5 items sorted by namespace/name, list rv = global rv 7" jt "$T/b" \
	'd["metadata"]["resourceVersion"]=="7" and [(i["metadata"]["namespace"],i["metadata"]["name"]) for i in d["items"]]==[("default","api"),("default","db"),("default","web"),("kube-system","dns"),("other","proxy")]'
check "list items carry no kind/apiVersion but metadata rv/uid/creationTimestamp" jt "$T/b" \
	'all("kind" not in i and "apiVersion" not in i and i["metadata"]["resourceVersion"] and i["metadata"]["uid"] and i["metadata"]["creationTimestamp"].endswith("Z") for i in d["items"])'
check "list has no continue/remainingItemCount without limit" jt "$T/b" 'set(d["metadata"])=={"resourceVersion"}'
code=$(api "$T/b" /apis/discovery.k8s.io/v1/endpointslices)
check "EndpointSliceList apiVersion discovery.k8s.io/v1, 2 items" jt "$T/b" \
	'd["kind"]=="EndpointSliceList" and d["apiVersion"]=="discovery.k8s.io/v1" and len(d["items"])==2 and d["metadata"]["resourceVersion"]=="7"'
code=$(api "$T/b" /api/v1/namespaces/default/services)
check "namespaced list /api/v1/namespaces/default/services" jt "$T/b" \
	'[i["metadata"]["name"] for i in d["items"]]==["api","db","web"]'
code=$(api "$T/b" /apis/discovery.k8s.io/v1/namespaces/other/endpointslices)
check "namespaced endpointslices list (empty namespace)" test "$code" = 200
code=$(api "$T/b" /api/v1/namespaces/default/services/web)
check "GET one object: 200 with kind/apiVersion" jt "$T/b" \
	'd["kind"]=="Service" and d["apiVersion"]=="v1" and d["metadata"]["name"]=="web" and d["spec"]["clusterIP"]=="10.96.0.11"'
code=$(api "$T/b" /api/v1/namespaces/default/services/nope)
check "GET a missing object: 404 NotFound Status" bash -c '[ "$1" = 404 ] && python3 "$2" jt "$3" "d[\"reason\"]==\"NotFound\" and d[\"code\"]==404"' _ "$code" "$T/h.py" "$T/b"
code=$(api "$T/b" /api/v1/pods)
check "unknown resource: 404 Status" test "$code" = 404

sel() { # SELECTOR EXPECTED-NAMES(space separated)
	local got
	api "$T/sel" "/api/v1/services" -G --data-urlencode "labelSelector=$1" >/dev/null
	got=$(jget "$T/sel" '" ".join(i["metadata"]["name"] for i in d["items"])')
	if [ "$got" = "$2" ]; then ok "labelSelector '$1' -> [$got]"; else nok "labelSelector '$1' -> [$got], want [$2]"; fi
}
sel 'tier' "api db web"
sel '!tier' "dns proxy"
sel 'tier=back' "api db"
sel 'tier==back' "api db"
sel 'tier!=back' "web dns proxy"
sel 'tier=back,!service.kubernetes.io/headless' "api"
sel '!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name' "api web dns"
sel 'app in (web,dns)' "web dns"
sel 'app notin (web,dns),tier' "api db"
code=$(api "$T/b" "/api/v1/services" -G --data-urlencode "labelSelector=a=b=c,,")
check "malformed labelSelector: 400 BadRequest Status" bash -c '[ "$1" = 400 ] && python3 "$2" jt "$3" "d[\"reason\"]==\"BadRequest\""' _ "$code" "$T/h.py" "$T/b"

# ------------------------------------------------------------------------------------------
# Pagination

api "$T/p1" "/api/v1/services?limit=2" >/dev/null
check "page 1 (limit=2): 2 items, continue token, remainingItemCount=3, rv 7" jt "$T/p1" \
	'len(d["items"])==2 and d["metadata"]["continue"] and d["metadata"]["remainingItemCount"]==3 and d["metadata"]["resourceVersion"]=="7"'
c1=$(jget "$T/p1" 'd["metadata"]["continue"]')
# Change an object that is still to come, and add one: the continued list stays at rv 7.
ctl POST /control/apply "$(svc web default '{"app":"web","tier":"front","v":"2"}' 10.96.0.99)" >/dev/null
ctl POST /control/apply "$(svc zzz other '{"app":"zzz"}')" >/dev/null
api "$T/p2" "/api/v1/services?limit=2" -G --data-urlencode "continue=$c1" >/dev/null
check "page 2: same list rv 7, snapshot contents (web still at rv 1), remainingItemCount=1" jt "$T/p2" \
	'd["metadata"]["resourceVersion"]=="7" and [i["metadata"]["name"] for i in d["items"]]==["web","dns"] and d["items"][0]["spec"]["clusterIP"]=="10.96.0.11" and d["items"][0]["metadata"]["resourceVersion"]=="1" and d["metadata"]["remainingItemCount"]==1'
c2=$(jget "$T/p2" 'd["metadata"]["continue"]')
api "$T/p3" "/api/v1/services?limit=2" -G --data-urlencode "continue=$c2" >/dev/null
check "page 3 (last): 1 item, no continue, no remainingItemCount" jt "$T/p3" \
	'[i["metadata"]["name"] for i in d["items"]]==["proxy"] and "continue" not in d["metadata"] and "remainingItemCount" not in d["metadata"] and d["metadata"]["resourceVersion"]=="7"'
api "$T/p1s" "/api/v1/services?limit=1" -G --data-urlencode "labelSelector=tier" >/dev/null
check "paged list with a selector: continue but no remainingItemCount" jt "$T/p1s" \
	'len(d["items"])==1 and d["metadata"]["continue"] and "remainingItemCount" not in d["metadata"]'
code=$(api "$T/b" "/api/v1/services?limit=2&continue=not-a-token")
check "garbage continue token: 400" test "$code" = 400
code=$(api "$T/b" "/api/v1/services?limit=2&resourceVersion=5" -G --data-urlencode "continue=$c1")
check "continue with a non-zero resourceVersion: 400" test "$code" = 400
code=$(api "$T/b" "/api/v1/services?limit=2&resourceVersion=3&resourceVersionMatch=Exact")
check "limit + resourceVersion=3 (Exact): list at rv 3" jt "$T/b" \
	'd["metadata"]["resourceVersion"]=="3" and [i["metadata"]["name"] for i in d["items"]]==["api","db"] and "continue" in d["metadata"]'
RV_BEFORE_COMPACT=$(state_rv)
ctlf POST /control/compact '{}'
check "control compact sets the compaction point to the current rv ($RV_BEFORE_COMPACT)" jt "$T/ctl.json" \
	"d['compacted']==$RV_BEFORE_COMPACT"
code=$(api "$T/b" "/api/v1/services?limit=2" -G --data-urlencode "continue=$c1")
check "continue token older than the compaction: 410 Expired with an inconsistent continue" bash -c \
	'[ "$1" = 410 ] && python3 "$2" jt "$3" "d[\"kind\"]==\"Status\" and d[\"reason\"]==\"Expired\" and d[\"code\"]==410 and d[\"metadata\"][\"continue\"] and \"too old\" in d[\"message\"]"' _ "$code" "$T/h.py" "$T/b"
c3=$(jget "$T/b" 'd["metadata"]["continue"]')
api "$T/p2b" "/api/v1/services?limit=2" -G --data-urlencode "continue=$c3" >/dev/null
check "the inconsistent continue token resumes from the current state" jt "$T/p2b" \
	"d['metadata']['resourceVersion']=='$RV_BEFORE_COMPACT' and [i['metadata']['name'] for i in d['items']]==['web','dns'] and d['items'][0]['spec']['clusterIP']=='10.96.0.99'"
code=$(api "$T/b" "/api/v1/services?limit=2&resourceVersion=3&resourceVersionMatch=Exact")
check "Exact list at a compacted rv: 410 Expired" test "$code" = 410

# ------------------------------------------------------------------------------------------
# Watch

RV0=$(state_rv)
ctl POST /control/apply "$(svc w1 default '{"app":"w1"}')" >/dev/null
ctl POST /control/apply "$(eps w1-x default w1)" >/dev/null
ctl POST /control/apply "$(svc w1 default '{"app":"w1","v":"2"}')" >/dev/null
ctl POST /control/delete '{"kind":"Service","namespace":"default","name":"w1"}' >/dev/null
t0=$(date +%s.%N)
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RV0&timeoutSeconds=1" -D "$T/wh"
rc=$?
t1=$(date +%s.%N)
check "watch with timeoutSeconds=1 ends cleanly (curl rc $rc) after ~1s" \
	python3 -c "import sys; sys.exit(0 if $rc==0 and 0.9 <= $t1-$t0 < 4 else 1)"
check "watch response: 200, Content-Type application/json, Transfer-Encoding chunked" bash -c \
	'grep -qi "^HTTP/1.1 200" "$1" && grep -qi "^content-type: application/json" "$1" && grep -qi "^transfer-encoding: chunked" "$1"' _ "$T/wh"
check "watch from rv $RV0 replays ADDED, MODIFIED, DELETED of services only, in rv order" jl "$T/w" \
	"[e['type'] for e in evs]==['ADDED','MODIFIED','DELETED'] and [int(e['object']['metadata']['resourceVersion']) for e in evs]==[$RV0+1,$RV0+3,$RV0+4]"
check "watch event objects carry kind and apiVersion" jl "$T/w" \
	'all(e["object"]["kind"]=="Service" and e["object"]["apiVersion"]=="v1" for e in evs)'
check "watch: one JSON event per line" jl "$T/w" 'len(raw)==3 and not partial and all(e is not None for e in evs)'
wcurl "$T/w" "/apis/discovery.k8s.io/v1/endpointslices?watch=true&resourceVersion=$RV0&timeoutSeconds=1"
check "endpointslices watch replays its own kind" jl "$T/w" \
	'[(e["type"],e["object"]["kind"],e["object"]["apiVersion"]) for e in evs]==[("ADDED","EndpointSlice","discovery.k8s.io/v1")]'
wcurl "$T/w" "/api/v1/services?watch=1&timeoutSeconds=1"
check "watch without resourceVersion: synthetic ADDED for the 6 current services" jl "$T/w" \
	'[e["type"] for e in evs]==["ADDED"]*6'
wcurl "$T/w" "/api/v1/namespaces/default/services?watch=1&resourceVersion=0&timeoutSeconds=1"
check "namespaced watch with resourceVersion=0: ADDED for that namespace only" jl "$T/w" \
	'sorted(e["object"]["metadata"]["name"] for e in evs)==["api","db","web"]'

# Live events.
RV1=$(state_rv)
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RV1&timeoutSeconds=3" &
wp=$!
bgpids+=("$wp")
wait_watchers 1 services
ctl POST /control/apply "$(svc live default '{"app":"live"}')" >/dev/null
ctl POST /control/apply "$(eps live-1 default live)" >/dev/null
ctl POST /control/apply "$(svc live default '{"app":"live","v":"2"}')" >/dev/null
ctl POST /control/delete '{"kind":"Service","namespace":"default","name":"live"}' >/dev/null
wait "$wp"
rc=$?
check "live watch: ADDED, MODIFIED, DELETED as they happen (rc $rc)" jl "$T/w" \
	"[e['type'] for e in evs]==['ADDED','MODIFIED','DELETED'] and [e['object']['metadata']['resourceVersion'] for e in evs]==['$((RV1 + 1))','$((RV1 + 3))','$((RV1 + 4))']"
check "DELETED carries the last state with a new resourceVersion" jl "$T/w" \
	'evs[2]["object"]["metadata"]["labels"]=={"app":"live","v":"2"} and evs[2]["object"]["metadata"]["uid"]==evs[0]["object"]["metadata"]["uid"]'

# Label selector on a watch: objects entering/leaving the selection.
RV1=$(state_rv)
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RV1&timeoutSeconds=3" -G --data-urlencode "labelSelector=sel=yes" &
wp=$!
bgpids+=("$wp")
wait_watchers 1 services
ctl POST /control/apply "$(svc s1 default '{"sel":"no"}')" >/dev/null
ctl POST /control/apply "$(svc s1 default '{"sel":"yes"}')" >/dev/null
ctl POST /control/apply "$(svc s1 default '{"sel":"yes","x":"1"}')" >/dev/null
ctl POST /control/apply "$(svc s1 default '{"sel":"no"}')" >/dev/null
ctl POST /control/delete '{"kind":"Service","namespace":"default","name":"s1"}' >/dev/null
wait "$wp"
check "selector watch: entering -> ADDED, change -> MODIFIED, leaving -> DELETED, hidden delete not sent" jl "$T/w" \
	"[(e['type'],e['object']['metadata']['resourceVersion']) for e in evs]==[('ADDED','$((RV1 + 2))'),('MODIFIED','$((RV1 + 3))'),('DELETED','$((RV1 + 4))')]"

# Expired watch.
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$((RV_BEFORE_COMPACT - 2))&timeoutSeconds=5"
rc=$?
check "watch from an rv older than the compaction: one ERROR 410 Expired event, clean end (rc $rc)" jl "$T/w" \
	"$rc==0 and len(evs)==1 and evs[0]['type']=='ERROR' and evs[0]['object']=={'kind':'Status','apiVersion':'v1','metadata':{},'status':'Failure','message':'too old resource version: $((RV_BEFORE_COMPACT - 2)) ($RV_BEFORE_COMPACT)','reason':'Expired','code':410}"
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RV_BEFORE_COMPACT&timeoutSeconds=1"
check "watch from exactly the compaction point is fine" jl "$T/w" 'all(e["type"]!="ERROR" for e in evs)'

# Bookmarks (--bookmark-interval 0.5).
RV2=$(state_rv)
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RV2&allowWatchBookmarks=true&timeoutSeconds=2"
check "allowWatchBookmarks: periodic BOOKMARKs with only kind/apiVersion/metadata.resourceVersion" jl "$T/w" \
	"len(evs)>=2 and all(e['type']=='BOOKMARK' and e['object']=={'kind':'Service','apiVersion':'v1','metadata':{'resourceVersion':'$RV2'}} for e in evs)"
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RV2&timeoutSeconds=2"
check "no BOOKMARKs without allowWatchBookmarks" test ! -s "$T/w"
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RV2&timeoutSeconds=3" &
wp=$!
bgpids+=("$wp")
wait_watchers 1 services
ctl POST /control/apply "$(eps bm-1 default bm)" >/dev/null
ctl POST /control/fault '{"type":"bookmark_now"}' >"$T/ctl.json"
ctl POST /control/fault '{"type":"bookmark_now","force":true}' >/dev/null
wait "$wp"
check "bookmark_now: only forced BOOKMARK reaches a watch without allowWatchBookmarks, at the newest rv" jl "$T/w" \
	"[(e['type'],e['object']['metadata']['resourceVersion']) for e in evs]==[('BOOKMARK','$((RV2 + 1))')]"

# end_watch, watcher counts.
wcurl "$T/wa" "/api/v1/services?watch=1" &
wa=$!
wcurl "$T/wb" "/api/v1/services?watch=1&resourceVersion=$RV2" &
wb=$!
wcurl "$T/wc" "/apis/discovery.k8s.io/v1/endpointslices?watch=1&resourceVersion=$RV2" &
wc=$!
bgpids+=("$wa" "$wb" "$wc")
wait_watchers 3
ctl GET /control/watchers >"$T/ctl.json"
check "/control/watchers counts open streams per resource" jt "$T/ctl.json" \
	'd["services"]==2 and d["endpointslices"]==1 and d["total"]==3 and len(d["watches"])==3'
t0=$(date +%s.%N)
ctl POST /control/fault '{"type":"end_watch","resource":"endpointslices"}' >"$T/ctl.json"
wait "$wc"
rc=$?
check "end_watch resource=endpointslices ends that watch cleanly (rc $rc)" test "$rc" = 0
ctl POST /control/fault '{"type":"end_watch"}' >/dev/null
wait "$wa"
rca=$?
wait "$wb"
rcb=$?
t1=$(date +%s.%N)
check "end_watch ends all watches cleanly and promptly (rc $rca $rcb)" \
	python3 -c "import sys; sys.exit(0 if $rca==0 and $rcb==0 and $t1-$t0 < 3 else 1)"
sleep 0.3
ctl GET /control/watchers >"$T/ctl.json"
check "no open watches afterwards" jt "$T/ctl.json" 'd["total"]==0'
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RV2" &
wp=$!
bgpids+=("$wp")
wait_watchers 1
ctl POST /control/fault '{"type":"end_watch","abrupt":true}' >/dev/null
wait "$wp"
rc=$?
check "end_watch abrupt: connection dropped without terminating chunk (curl rc $rc = 18)" test "$rc" = 18
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RV2" --max-time 1
ctl GET /control/watchers?wait=0 >/dev/null
sleep 0.5
ctl GET /control/watchers >"$T/ctl.json"
check "a watch whose client went away is unregistered" jt "$T/ctl.json" 'd["total"]==0'

# ------------------------------------------------------------------------------------------
# Watch faults

# Defaults on a live watch: close_mid_event cuts the 2nd event; pack_events window groups events.
RVL=$(state_rv)
fault '{"type":"close_mid_event"}'
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RVL" &
wp=$!
bgpids+=("$wp")
wait_watchers 1 services
ctl POST /control/apply "$(svc cut1 default '{"app":"cut"}')" >/dev/null
ctl POST /control/apply "$(svc cut2 default '{"app":"cut"}')" >/dev/null
wait "$wp"
rc=$?
check "close_mid_event default (after=1) on a live watch: 1 event, half of the next, drop (rc $rc)" jl "$T/w" \
	"$rc==18 and partial and len(raw)==2 and evs[0]['object']['metadata']['name']=='cut1' and evs[1] is None"
RVL=$(state_rv)
fault '{"type":"pack_events","window":0.5}'
wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$RVL&timeoutSeconds=2" --raw &
wp=$!
bgpids+=("$wp")
wait_watchers 1 services
ctl POST /control/apply "{\"kind\":\"List\",\"items\":[$(svc cut1 default '{"a":"1"}'),$(svc cut2 default '{"a":"1"}')]}" >/dev/null
ctl POST /control/apply "$(svc cut1 default '{"a":"2"}')" >/dev/null
wait "$wp"
check "pack_events window=0.5 on a live watch: 3 events arrive in one chunk" jc "$T/w" \
	'term and sizes and len(evs)==3 and all(evs) and sizes[0]==len(body)'
# Four replayable service events after RVF.
RVF=$(state_rv)
for i in 1 2 3 4; do ctl POST /control/apply "$(svc f$i default '{"app":"f"}')" >/dev/null; done
WF="/api/v1/services?watch=1&resourceVersion=$RVF&timeoutSeconds=1"
wcurl "$T/wref" "$WF"
check "reference watch has 4 events" jl "$T/wref" 'len(evs)==4'

fault '{"type":"close_mid_event","after":2}'
wcurl "$T/w" "$WF"
rc=$?
check "close_mid_event: 2 events, then half of the 3rd, then the connection drops (rc $rc = 18)" jl "$T/w" \
	"$rc==18 and partial and len(raw)==3 and evs[0] and evs[1] and evs[2] is None and len(raw[2])>10"
fault '{"type":"close_mid_event","after":1,"mode":"chunk"}'
wcurl "$T/w" "$WF" --raw
rc=$?
check "close_mid_event mode=chunk: a complete chunk with half an event, no terminator (rc $rc)" jc "$T/w" \
	"$rc==18 and framing_ok and not term and len(sizes)==2 and evs[0] and partial"
wcurl "$T/w" "$WF"
check "close_mid_event is consumed (count 1): next watch is whole" cmp -s "$T/w" "$T/wref"

fault '{"type":"split_events","count":2,"seed":7}'
wcurl "$T/w" "$WF" --raw
check "split_events: every chunk is 1..7 bytes, stream terminated" jc "$T/w" \
	'framing_ok and term and len(sizes)>50 and all(1<=s<=7 for s in sizes)'
check "split_events: reassembled stream equals the unsplit one" bash -c \
	'python3 "$1" chunks "$2" "body==open(\"$3\",\"rb\").read()"' _ "$T/h.py" "$T/w" "$T/wref"
wcurl "$T/w" "$WF"
check "split_events count=2: second watch also split (decoded the same)" cmp -s "$T/w" "$T/wref"
wcurl "$T/w" "$WF" --raw
check "split_events used up: third watch has one chunk per event" jc "$T/w" 'term and len(sizes)==4'

fault '{"type":"pack_events"}'
wcurl "$T/w" "$WF" --raw
check "pack_events: 4 replayed events in a single chunk" jc "$T/w" \
	'term and len(sizes)==1 and len(evs)==4 and all(evs)'
fault '{"type":"pack_events","chunk_size":100}'
wcurl "$T/w" "$WF" --raw
check "pack_events chunk_size=100: chunks cut across event boundaries, stream intact" jc "$T/w" \
	'term and all(s==100 for s in sizes[:-1]) and len(evs)==4 and all(evs) and body==open("'"$T/wref"'","rb").read()'

fault '{"type":"malformed_event","after":1}'
wcurl "$T/w" "$WF"
rc=$?
check "malformed_event: one non-JSON line after 1 event, then the rest (rc $rc)" jl "$T/w" \
	'len(evs)==5 and evs[0] and evs[1] is None and raw[1].startswith("{") and all(evs[2:]) and not partial'

fault '{"type":"malformed_event"}'
wcurl "$T/w" "$WF"
check "malformed_event default (after=0): the bad line comes first" jl "$T/w" \
	'len(evs)==5 and evs[0] is None and all(evs[1:])'

fault '{"type":"endless_line","after":1,"bytes":300000,"chunk_size":4096}'
wcurl "$T/w" "$WF"
check "endless_line bytes=300000: a 300000-byte line after 1 event, then the rest" jl "$T/w" \
	'len(evs)==5 and evs[0] and len(raw[1])==300000+5 and evs[1]["object"]["metadata"]["name"]=="endless" and all(evs[2:])'
fault '{"type":"endless_line"}'
wcurl "$T/w" "$WF" --max-time 2 --max-filesize 100000000
rc=$?
check "endless_line without bytes: a line with no end, until the client goes (rc $rc)" bash -c \
	'[ "$1" = 28 ] && python3 "$2" lines "$3" "len(raw)==1 and partial and len(raw[0])>1000000 and raw[0].endswith(\"xxxx\")"' _ "$rc" "$T/h.py" "$T/w"
wcurl "$T/w" "$WF"
check "endless_line is consumed (count 1): next watch is whole" cmp -s "$T/w" "$T/wref"

fault '{"type":"gone_watch"}'
wcurl "$T/w" "$WF"
rc=$?
check "gone_watch: single ERROR 410 Expired event, clean end (rc $rc)" jl "$T/w" \
	'len(evs)==1 and evs[0]["type"]=="ERROR" and evs[0]["object"]["code"]==410 and evs[0]["object"]["reason"]=="Expired" and evs[0]["object"]["message"].startswith("too old resource version: ")'
code=$(api "$T/b" /api/v1/services)
check "gone_watch does not touch lists" test "$code" = 200

fault '{"type":"split_events","resource":"endpointslices"}'
wcurl "$T/w" "$WF" --raw
check "fault with resource=endpointslices leaves services watches alone" jc "$T/w" 'len(sizes)==4'
wcurl "$T/w" "/apis/discovery.k8s.io/v1/endpointslices?watch=1&timeoutSeconds=1" --raw
check "...and hits the next endpointslices watch" jc "$T/w" 'term and all(1<=s<=7 for s in sizes)'

# ------------------------------------------------------------------------------------------
# Response faults

fault '{"type":"gone_list"}'
code=$(api "$T/b" /api/v1/services)
check "gone_list: 410 Status reason Expired" bash -c \
	'[ "$1" = 410 ] && python3 "$2" jt "$3" "d[\"kind\"]==\"Status\" and d[\"reason\"]==\"Expired\" and d[\"code\"]==410"' _ "$code" "$T/h.py" "$T/b"
code=$(api "$T/b" /api/v1/services)
check "gone_list consumed: next list 200" test "$code" = 200
fault '{"type":"gone_list","continue":true}'
api "$T/p1" "/api/v1/services?limit=3" >/dev/null
c1=$(jget "$T/p1" 'd["metadata"]["continue"]')
check "gone_list continue=true spares the first page" jt "$T/p1" 'len(d["items"])==3'
code=$(api "$T/b" "/api/v1/services?limit=3" -G --data-urlencode "continue=$c1")
check "...and expires the continued page: 410 with metadata.continue" bash -c \
	'[ "$1" = 410 ] && python3 "$2" jt "$3" "d[\"reason\"]==\"Expired\" and d[\"metadata\"][\"continue\"]"' _ "$code" "$T/h.py" "$T/b"

fault '{"type":"too_many_requests","count":2,"retry_after":3}'
c1=$(api "$T/b" /api/v1/services -D "$T/hdr")
check "too_many_requests: 429, Retry-After: 3, Status TooManyRequests" bash -c \
	'[ "$1" = 429 ] && grep -qi "^retry-after: 3" "$2" && python3 "$3" jt "$4" "d[\"kind\"]==\"Status\" and d[\"reason\"]==\"TooManyRequests\" and d[\"code\"]==429 and d[\"details\"][\"retryAfterSeconds\"]==3"' _ "$c1" "$T/hdr" "$T/h.py" "$T/b"
c2=$(wcurl "$T/b" "/api/v1/services?watch=1" -w '%{http_code}')
c3=$(api "$T/b" /api/v1/services)
check "too_many_requests count=2 hits list and watch, then 200 ($c1 $c2 $c3)" test "$c2" = 429 -a "$c3" = 200
fault '{"type":"unavailable"}'
code=$(api "$T/b" /apis/discovery.k8s.io/v1/endpointslices -D "$T/hdr")
check "unavailable: 503 with Retry-After: 1 and Status ServiceUnavailable" bash -c \
	'[ "$1" = 503 ] && grep -qi "^retry-after: 1" "$2" && python3 "$3" jt "$4" "d[\"reason\"]==\"ServiceUnavailable\" and d[\"code\"]==503"' _ "$code" "$T/hdr" "$T/h.py" "$T/b"
fault '{"type":"server_error"}'
code=$(api "$T/b" /api/v1/services)
check "server_error: 500 Status InternalError" bash -c \
	'[ "$1" = 500 ] && python3 "$2" jt "$3" "d[\"reason\"]==\"InternalError\" and d[\"code\"]==500"' _ "$code" "$T/h.py" "$T/b"
fault '{"type":"server_error","resource":"endpointslices","on":"watch"}'
c1=$(api "$T/b" /api/v1/services)
c2=$(api "$T/b" /apis/discovery.k8s.io/v1/endpointslices)
c3=$(wcurl "$T/b" "/api/v1/services?watch=1&timeoutSeconds=1" -w '%{http_code}')
c4=$(wcurl "$T/b" "/apis/discovery.k8s.io/v1/endpointslices?watch=1&timeoutSeconds=1" -w '%{http_code}')
check "resource/on filters: only the endpointslices watch fails ($c1 $c2 $c3 $c4)" \
	test "$c1$c2$c3$c4" = 200200200500
fault '{"type":"unavailable","count":-1}'
c1=$(api "$T/b" /api/v1/services)
c2=$(api "$T/b" /api/v1/services)
ctl GET /control/faults >"$T/ctl.json"
check "count=-1 keeps failing until cleared ($c1 $c2)" jt "$T/ctl.json" \
	"'$c1$c2'=='503503' and len(d)==1 and d[0]['type']=='unavailable'"
ctl POST /control/faults/clear >/dev/null
code=$(api "$T/b" /api/v1/services)
check "faults/clear: 200 again" test "$code" = 200

# unauthorized_until_token_changes
fault '{"type":"unauthorized_until_token_changes"}'
c1=$(api "$T/b" /api/v1/services)
c2=$(api "$T/b" /api/v1/services)
c3=$(apic "$T/b" /api/v1/services)
printf 'tok-3\n' >"$TOKEN"
c4=$(api "$T/b" /api/v1/services)
c5=$(api "$T/b" /api/v1/services)
check "unauthorized_until_token_changes: token 401 until the file changes, cert unaffected ($c1 $c2 $c3 $c4 $c5)" \
	test "$c1$c2$c3$c4$c5" = 401401200200200
ctl POST /control/auth '{"token":false}' >/dev/null
c1=$(api "$T/b" /api/v1/services)
c2=$(apic "$T/b" /api/v1/services)
ctl POST /control/auth '{"token":true}' >/dev/null
c3=$(api "$T/b" /api/v1/services)
check "control auth: token auth off -> 401, cert still 200, back on -> 200 ($c1 $c2 $c3)" \
	test "$c1$c2$c3" = 401200200

# stall
fault '{"type":"stall","phase":"before_headers"}'
t0=$(date +%s.%N)
code=$(curl -sS "${CA[@]}" -H "Authorization: Bearer $(tok)" --max-time 2 -o "$T/b" -D "$T/hdr" -w '%{http_code}' "$BASE/api/v1/services" 2>/dev/null)
rc=$?
check "stall before_headers: no response at all until the client gives up (rc $rc, status $code)" \
	test "$rc" = 28 -a "$code" = 000 -a ! -s "$T/hdr"
sleep 0.5
check "the stalled handler notices the client left" grep -q "stalled client went away" "$T/main.err"
code=$(api "$T/b" /api/v1/services --max-time 5)
check "server still answers after a stall" test "$code" = 200
fault '{"type":"stall","phase":"after_headers","on":"watch"}'
rm -f "$T/w"
code=$(wcurl "$T/w" "/api/v1/services?watch=1&allowWatchBookmarks=1" --max-time 2 -D "$T/hdr" -w '%{http_code}')
rc=$?
check "stall after_headers on a watch: 200 headers, then silence (rc $rc, no bytes, no bookmarks)" \
	bash -c '[ "$1" = 28 ] && [ "$2" = 200 ] && [ ! -s "$3" ] && grep -qi "^HTTP/1.1 200" "$4"' _ "$rc" "$code" "$T/w" "$T/hdr"
fault '{"type":"stall","phase":"after_headers","seconds":1,"on":"list"}'
t0=$(date +%s.%N)
code=$(api "$T/b" /api/v1/services --max-time 5)
t1=$(date +%s.%N)
check "stall seconds=1 on a list: delayed ~1s, then the normal list ($code)" \
	python3 -c "import json,sys; d=json.load(open('$T/b')); sys.exit(0 if '$code'=='200' and d['kind']=='ServiceList' and 0.9 <= $t1-$t0 < 4 else 1)"

# chunked / gzip lists
fault '{"type":"chunked_list","chunk_size":64}'
code=$(api "$T/b" /api/v1/services --raw -D "$T/hdr")
check "chunked_list: chunked transfer of 64-byte chunks, valid ServiceList" bash -c \
	'grep -qi "^transfer-encoding: chunked" "$1" && python3 "$2" chunks "$3" "term and all(s==64 for s in sizes[:-1]) and len(sizes)>5 and __import__(\"json\").loads(body)[\"kind\"]==\"ServiceList\""' _ "$T/hdr" "$T/h.py" "$T/b"
fault '{"type":"gzip_list"}'
code=$(api "$T/b" /api/v1/services --compressed -D "$T/hdr")
check "gzip_list with Accept-Encoding gzip: Content-Encoding gzip, decodes to the list" bash -c \
	'grep -qi "^content-encoding: gzip" "$1" && python3 "$2" jt "$3" "d[\"kind\"]==\"ServiceList\""' _ "$T/hdr" "$T/h.py" "$T/b"

# ------------------------------------------------------------------------------------------
# Control API bookkeeping

ctl POST /control/requests/clear >/dev/null
api /dev/null "/api/v1/services?limit=1&labelSelector=app" >/dev/null
apic /dev/null "/apis/discovery.k8s.io/v1/endpointslices" >/dev/null
curl -sS "${CA[@]}" -o /dev/null "$BASE/api/v1/services"
ctl GET /control/requests >"$T/ctl.json"
check "/control/requests records method, path, query, auth, status, time" jt "$T/ctl.json" \
	'len(d)==3 and [(r["method"],r["path"],r["auth"],r["status"]) for r in d]==[("GET","/api/v1/services","token",200),("GET","/apis/discovery.k8s.io/v1/endpointslices","cert",200),("GET","/api/v1/services","none",401)] and d[0]["query"]=={"limit":"1","labelSelector":"app"} and all(isinstance(r["time"],float) for r in d)'
ctl GET /control/state >"$T/ctl.json"
check "/control/state reports rv, compaction point and counts" jt "$T/ctl.json" \
	"d['rv']==$(state_rv) and d['compacted']==$RV_BEFORE_COMPACT and d['counts']['services']>=6 and d['counts']['endpointslices']>=3"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data '{"type":"nope"}' "http://127.0.0.1:$CPORT/control/fault")
check "unknown fault type: 400" test "$code" = 400
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data '{"kind":"Pod","metadata":{"name":"x"}}' "http://127.0.0.1:$CPORT/control/apply")
check "apply of an unsupported kind: 400" test "$code" = 400
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data '{"kind":"Service","namespace":"default","name":"none"}' "http://127.0.0.1:$CPORT/control/delete")
check "delete of a missing object: 404" test "$code" = 404

# Big list: gzip by size (> 128 KiB) when the client accepts gzip, as kube-apiserver does.
python3 - "$T/big.json" <<'EOF'
import json, sys
items = [{"kind": "Service", "metadata": {"name": "big-%03d" % i, "namespace": "big",
          "annotations": {"pad": "x" * 1000}}, "spec": {"clusterIP": "10.97.0.%d" % (i % 250 + 1)}}
         for i in range(200)]
json.dump({"kind": "List", "items": items}, open(sys.argv[1], "w"))
EOF
curl -sS -X POST --data-binary @"$T/big.json" "http://127.0.0.1:$CPORT/control/apply" >/dev/null
code=$(api "$T/b" /api/v1/namespaces/big/services --compressed -D "$T/hdr")
check "list > 128 KiB with Accept-Encoding gzip is gzip-encoded" bash -c \
	'grep -qi "^content-encoding: gzip" "$1" && python3 "$2" jt "$3" "len(d[\"items\"])==200"' _ "$T/hdr" "$T/h.py" "$T/b"
code=$(api "$T/b" /api/v1/namespaces/big/services -D "$T/hdr")
check "...and plain without Accept-Encoding" bash -c \
	'! grep -qi "^content-encoding" "$1" && python3 "$2" jt "$3" "len(d[\"items\"])==200"' _ "$T/hdr" "$T/h.py" "$T/b"
ctlf POST /control/reset
check "control reset deletes every object" jt "$T/ctl.json" 'd["deleted"]>=200'

# ------------------------------------------------------------------------------------------
# Objects as kube-apiserver serves them (k8s_objects.py): defaulted, allocated, managedFields

ctlf POST /control/apply '{"kind":"List","items":[
 {"kind":"Service","apiVersion":"v1","metadata":{"name":"mini","namespace":"shape"},"spec":{"selector":{"app":"mini"},"ports":[{"port":80}]}},
 {"kind":"Service","apiVersion":"v1","metadata":{"name":"np","namespace":"shape"},"spec":{"type":"NodePort","ports":[{"name":"a","port":80,"protocol":"UDP"},{"name":"b","port":80}]}},
 {"kind":"Service","apiVersion":"v1","metadata":{"name":"lb","namespace":"shape"},"spec":{"type":"LoadBalancer","externalTrafficPolicy":"Local","ipFamilyPolicy":"PreferDualStack","ports":[{"port":443,"targetPort":"https"}]}},
 {"kind":"Service","apiVersion":"v1","metadata":{"name":"hl","namespace":"shape"},"spec":{"clusterIP":"None","selector":{"app":"hl"},"ports":[{"port":5432}]}},
 {"kind":"Service","apiVersion":"v1","metadata":{"name":"ext","namespace":"shape"},"spec":{"type":"ExternalName","externalName":"example.com"}},
 {"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"mini-1","namespace":"shape","labels":{"kubernetes.io/service-name":"mini"}},"addressType":"IPv4","endpoints":[],"ports":[{"port":80}]}]}'
api "$T/mini" /api/v1/namespaces/shape/services/mini >/dev/null
check "served Service: spec defaulted in Go field order (ports, selector, clusterIP, clusterIPs, type, ...)" jt "$T/mini" \
	'list(d["spec"])==["ports","selector","clusterIP","clusterIPs","type","sessionAffinity","ipFamilies","ipFamilyPolicy","internalTrafficPolicy"] and d["spec"]["ports"]==[{"protocol":"TCP","port":80,"targetPort":80}] and d["spec"]["type"]=="ClusterIP" and d["spec"]["sessionAffinity"]=="None" and d["spec"]["internalTrafficPolicy"]=="Cluster" and d["status"]=={"loadBalancer":{}}'
check "served Service: clusterIP allocated from 10.96.0.0/16 (upper band), clusterIPs, SingleStack IPv4" jt "$T/mini" \
	'__import__("ipaddress").ip_address(d["spec"]["clusterIP"]) in __import__("ipaddress").ip_network("10.96.0.0/16") and not d["spec"]["clusterIP"].startswith("10.96.0.") and d["spec"]["clusterIPs"]==[d["spec"]["clusterIP"]] and d["spec"]["ipFamilies"]==["IPv4"] and d["spec"]["ipFamilyPolicy"]=="SingleStack"'
check "served Service: metadata has no generation; managedFields Update FieldsV1 without allocated fields" jt "$T/mini" \
	'"generation" not in d["metadata"] and [(m["manager"],m["operation"],m["apiVersion"],m["fieldsType"]) for m in d["metadata"]["managedFields"]]==[("kubectl-client-side-apply","Update","v1","FieldsV1")] and d["metadata"]["managedFields"][0]["time"].endswith("Z") and d["metadata"]["managedFields"][0]["fieldsV1"]=={"f:spec":{"f:internalTrafficPolicy":{},"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:selector":{},"f:sessionAffinity":{},"f:type":{}}}'
api "$T/b" /api/v1/namespaces/shape/services >/dev/null
ip_mini=$(jget "$T/mini" 'd["spec"]["clusterIP"]')
check "served NodePort/LoadBalancer: nodePorts (one per port number), healthCheckNodePort, eTP, allocateLoadBalancerNodePorts, dual-stack" jt "$T/b" \
	'(lambda s: (lambda np, lb: np["externalTrafficPolicy"]=="Cluster" and np["ports"][0]["nodePort"]==np["ports"][1]["nodePort"] and 30000<=np["ports"][0]["nodePort"]<=32767 and lb["allocateLoadBalancerNodePorts"] is True and lb["externalTrafficPolicy"]=="Local" and 30000<=lb["healthCheckNodePort"]<=32767 and lb["healthCheckNodePort"]!=lb["ports"][0]["nodePort"] and lb["ports"][0]["targetPort"]=="https" and lb["ipFamilies"]==["IPv4","IPv6"] and lb["clusterIPs"][1].startswith("fd00:10:96::") and len(set(x["clusterIP"] for x in s.values() if "clusterIP" in x))==4)(s["np"], s["lb"]))({i["metadata"]["name"]:i["spec"] for i in d["items"]})'
check "served headless/ExternalName: clusterIPs [None] and families, no clusterIP for ExternalName" jt "$T/b" \
	'(lambda s: s["hl"]["clusterIPs"]==["None"] and s["hl"]["ipFamilyPolicy"]=="SingleStack" and "clusterIP" not in s["ext"] and "ipFamilies" not in s["ext"] and "internalTrafficPolicy" not in s["ext"])({i["metadata"]["name"]:i["spec"] for i in d["items"]})'
ctl POST /control/apply '{"kind":"Service","apiVersion":"v1","metadata":{"name":"mini","namespace":"shape","labels":{"v":"2"}},"spec":{"selector":{"app":"mini"},"ports":[{"port":80}]}}' >/dev/null
api "$T/b" /api/v1/namespaces/shape/services/mini >/dev/null
check "an update without clusterIP keeps the allocated one ($ip_mini)" jt "$T/b" \
	'd["spec"]["clusterIP"]=="'"$ip_mini"'" and d["metadata"]["labels"]=={"v":"2"}'
api "$T/b" /apis/discovery.k8s.io/v1/namespaces/shape/endpointslices/mini-1 >/dev/null
check "served EndpointSlice: \"endpoints\":null, ports defaulted (name \"\", TCP), generation 1, controller's managedFields" bash -c \
	'grep -q "\"endpoints\":null" "$2" && python3 "$1" jt "$2" "list(d)==[\"kind\",\"apiVersion\",\"metadata\",\"addressType\",\"endpoints\",\"ports\"] and d[\"ports\"]==[{\"name\":\"\",\"protocol\":\"TCP\",\"port\":80}] and d[\"metadata\"][\"generation\"]==1 and d[\"metadata\"][\"managedFields\"][0][\"manager\"]==\"kube-controller-manager\" and d[\"metadata\"][\"managedFields\"][0][\"fieldsV1\"]=={\"f:addressType\":{},\"f:metadata\":{\"f:labels\":{\".\":{},\"f:kubernetes.io/service-name\":{}}},\"f:ports\":{}}"' _ "$T/h.py" "$T/b"
ctl POST /control/apply '{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"mini-1","namespace":"shape","labels":{"kubernetes.io/service-name":"mini"}},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.9"],"conditions":{"ready":null}}]}' >/dev/null
api "$T/b" /apis/discovery.k8s.io/v1/namespaces/shape/endpointslices/mini-1 >/dev/null
check "EndpointSlice update: generation 2, \"ports\":null, null conditions dropped to {}" jt "$T/b" \
	'd["metadata"]["generation"]==2 and d["ports"] is None and d["endpoints"]==[{"addresses":["10.0.0.9"],"conditions":{}}]'

# ------------------------------------------------------------------------------------------
# SIGTERM with an open watch

wcurl "$T/w" "/api/v1/services?watch=1" &
wp=$!
bgpids+=("$wp")
wait_watchers 1
t0=$(date +%s.%N)
kill -TERM "$MAIN_PID"
wait "$MAIN_PID"
src=$?
wait "$wp"
rc=$?
t1=$(date +%s.%N)
check "SIGTERM: server exits 0 promptly, open watch ended cleanly (exit $src, curl rc $rc)" \
	python3 -c "import sys; sys.exit(0 if $src==0 and $rc==0 and $t1-$t0 < 4 else 1)"
check "the server logged one line per request" bash -c \
	'[ "$(grep -c "\"GET /api/v1/services?limit=1&labelSelector=app HTTP/1.1\" 200" "$1")" = 1 ]' _ "$T/main.err"

# ------------------------------------------------------------------------------------------
# HTTP/2 (selftest_h2.py: its own servers, an h2 client that sees the frames)

"$here/selftest_h2.py" "$PKI" "$TOKEN" >"$T/h2.out" 2>"$T/h2.err"
h2rc=$?
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "h2: ${line#ok - }" ;;
	"not ok - "*) nok "h2: ${line#not ok - }" ;;
	esac
done <"$T/h2.out"
grep -q "^ok - " "$T/h2.out" || { nok "h2: selftest_h2.py ran (rc $h2rc)"; tail -5 "$T/h2.err"; }
[ "$h2rc" = 0 ] || grep -q "^not ok" "$T/h2.out" || { nok "h2: selftest_h2.py exited $h2rc"; tail -5 "$T/h2.err"; }

# ------------------------------------------------------------------------------------------
# kube-apiserver 1.30 semantics: bookmarks, the watch-cache window, paging with a selector,
# resourceVersion edge cases, 403, discovery, control bodies on keep-alive connections.
# A server of its own with the default bookmark interval and a tiny watch cache.

if start_server sem 127.0.0.1 --watch-cache-events 3 --watch-cache-seconds 4; then
	BASE=https://127.0.0.1:$PORT

	# Bookmarks: none for 60 s by default, but one 2 s before timeoutSeconds ends.
	wcurl "$T/bm1" "/api/v1/services?watch=1&allowWatchBookmarks=true&timeoutSeconds=4" --max-time 1.5
	check "default bookmark interval: no BOOKMARK in the first 1.5 s of a 4 s watch" test ! -s "$T/bm1"
	t0=$(date +%s.%N)
	wcurl "$T/bm2" "/api/v1/services?watch=1&allowWatchBookmarks=true&timeoutSeconds=4"
	t1=$(date +%s.%N)
	check "one BOOKMARK shortly before timeoutSeconds, then a clean end after ~4 s" bash -c \
		'python3 "$1" lines "$2" "[e[\"type\"] for e in evs]==[\"BOOKMARK\"]" &&
		 python3 -c "import sys; sys.exit(0 if 3.5 < $4 - $3 < 6 else 1)"' _ "$T/h.py" "$T/bm2" "$t0" "$t1"
	wcurl "$T/bm3" "/api/v1/services?watch=1&timeoutSeconds=3"
	check "...and none without allowWatchBookmarks" test ! -s "$T/bm3"

	# The watch-cache window: 3 events per resource, 4 s.
	for n in w1 w2 w3 w4 w5; do ctl POST /control/apply "$(svc "$n" win '{}')" >/dev/null; done
	rv5=$(state_rv)
	rv1=$((rv5 - 4))
	ctl GET /control/state >"$T/st.json"
	check "/control/state reports the window per resource" jt "$T/st.json" \
		"d['watchCache']['maxEvents']==3 and d['watchCache']['seconds']==4 and d['watchCache']['services']=={'events':3,'oldestResourceVersion':$((rv1 + 2)),'tooOldBelow':$((rv1 + 1))} and d['watchCache']['endpointslices']['tooOldBelow']==0"
	wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$rv1&timeoutSeconds=1"
	check "a watch from before the last 3 events: ERROR 410 'too old resource version: $rv1 ($((rv1 + 1)))'" jl "$T/w" \
		"len(evs)==1 and evs[0]['type']=='ERROR' and evs[0]['object']['code']==410 and evs[0]['object']['reason']=='Expired' and evs[0]['object']['message']=='too old resource version: $rv1 ($((rv1 + 1)))'"
	wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$((rv1 + 1))&timeoutSeconds=1"
	check "a watch from the window's start replays the 3 cached events" jl "$T/w" \
		"[int(e['object']['metadata']['resourceVersion']) for e in evs]==[$((rv1 + 2)),$((rv1 + 3)),$rv5]"
	sleep 4.2
	wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$((rv5 - 1))&timeoutSeconds=1"
	check "after 4 s every event aged out: a watch from rv-1 gets 410 '($rv5)'" jl "$T/w" \
		"len(evs)==1 and evs[0]['type']=='ERROR' and evs[0]['object']['message']=='too old resource version: $((rv5 - 1)) ($rv5)'"
	wcurl "$T/w" "/api/v1/services?watch=1&resourceVersion=$rv5&timeoutSeconds=1"
	check "...while a watch from the newest rv is fine (nothing to replay, clean end)" test ! -s "$T/w"
	code=$(api "$T/b" "/api/v1/namespaces/win/services?resourceVersion=$rv1&resourceVersionMatch=Exact")
	check "a list at an exact rv outside the window still works (etcd keeps the history)" jt "$T/b" \
		"'$code'=='200' and d['metadata']['resourceVersion']=='$rv1' and [i['metadata']['name'] for i in d['items']]==['w1']"

	# Paging with a selector reads `limit` matches, then continue if any key remains.
	ctl POST /control/apply "[$(svc a pg '{"x":"1"}'),$(svc b pg '{"x":"1"}'),$(svc c pg '{}'),$(svc d pg '{}')]" >/dev/null
	api "$T/p1" "/api/v1/namespaces/pg/services?limit=2&labelSelector=x" >/dev/null
	check "selector page 1: the 2 matches and a continue (unmatched keys remain)" jt "$T/p1" \
		'[i["metadata"]["name"] for i in d["items"]]==["a","b"] and d["metadata"].get("continue") and "remainingItemCount" not in d["metadata"]'
	api "$T/p2" "/api/v1/namespaces/pg/services?limit=2&labelSelector=x" -G --data-urlencode "continue=$(jget "$T/p1" 'd["metadata"]["continue"]')" >/dev/null
	check "selector page 2: empty, no continue" jt "$T/p2" 'd["items"]==[] and "continue" not in d["metadata"]'
	api "$T/p1" "/api/v1/namespaces/pg/services?limit=2" >/dev/null
	check "without a selector: continue and remainingItemCount=2 as before" jt "$T/p1" \
		'len(d["items"])==2 and d["metadata"]["remainingItemCount"]==2'

	# resourceVersion edge cases.
	rv=$(state_rv)
	t0=$(date +%s.%N)
	code=$(api "$T/b" "/api/v1/services?resourceVersion=$((rv + 5))&resourceVersionMatch=NotOlderThan" -D "$T/hdr")
	t1=$(date +%s.%N)
	check "NotOlderThan a future rv: 504 Timeout after ~3 s, Retry-After: 1, retryAfterSeconds 1" bash -c \
		'[ "$1" = 504 ] && grep -qi "^retry-after: 1" "$2" && python3 -c "import sys; sys.exit(0 if 2.7 < $5 - $4 < 5 else 1)" &&
		 python3 "$3" jt "$6" "d[\"reason\"]==\"Timeout\" and d[\"code\"]==504 and d[\"message\"]==\"Timeout: Too large resource version: $7, current: $8\" and d[\"details\"][\"retryAfterSeconds\"]==1 and d[\"details\"][\"causes\"][0][\"reason\"]==\"ResourceVersionTooLarge\""' \
		_ "$code" "$T/hdr" "$T/h.py" "$t0" "$t1" "$T/b" "$((rv + 5))" "$rv"
	(sleep 1; ctl POST /control/apply "$(svc late pg '{}')" >/dev/null) &
	bgpids+=($!)
	code=$(api "$T/b" "/api/v1/services?resourceVersion=$((rv + 1))")
	check "a plain rv without limit reached within the wait: served (200, rv $((rv + 1)))" jt "$T/b" \
		"'$code'=='200' and d['metadata']['resourceVersion']=='$((rv + 1))'"
	rv=$(state_rv)
	wcurl "$T/w" "/api/v1/services?watch=1&allowWatchBookmarks=true&resourceVersion=$((rv + 2))&timeoutSeconds=3" &
	wp=$!
	bgpids+=("$wp")
	wait_watchers 1 services
	for n in f1 f2 f3; do ctl POST /control/apply "$(svc "$n" pg '{}')" >/dev/null; done
	wait "$wp"
	check "a watch from a future rv is accepted (as 1.30's cacher): only events past it, no bookmark behind it" jl "$T/w" \
		"[(e['type'],e['object']['metadata'].get('name')) for e in evs if e['type']!='BOOKMARK']==[('ADDED','f3')] and all(int(e['object']['metadata']['resourceVersion'])>=$((rv + 2)) for e in evs)"
	code=$(api "$T/b" "/api/v1/services?resourceVersionMatch=NotOlderThan")
	check "resourceVersionMatch without resourceVersion: 422 Invalid (ValidateListOptions)" bash -c \
		'[ "$1" = 422 ] && python3 "$2" jt "$3" "d[\"reason\"]==\"Invalid\" and \"resourceVersionMatch is forbidden unless resourceVersion is provided\" in d[\"message\"] and d[\"details\"][\"causes\"][0][\"field\"]==\"resourceVersionMatch\""' _ "$code" "$T/h.py" "$T/b"
	code=$(api "$T/b" "/api/v1/services?limit=1&resourceVersion=0&resourceVersionMatch=NotOlderThan" -G --data-urlencode "continue=$(jget "$T/p1" 'd["metadata"]["continue"]')")
	check "resourceVersionMatch with continue: 422" bash -c \
		'[ "$1" = 422 ] && grep -q "resourceVersionMatch is forbidden when continue is provided" "$2"' _ "$code" "$T/b"
	fault '{"type":"too_large_rv","resource":"services","on":"list","seconds":0.5}'
	code=$(api "$T/b" "/api/v1/services" -D "$T/hdr")
	check "too_large_rv fault on a list: 504 Timeout with Retry-After" bash -c \
		'[ "$1" = 504 ] && grep -qi "^retry-after: 1" "$2" && grep -q "Too large resource version" "$3"' _ "$code" "$T/hdr" "$T/b"
	fault '{"type":"too_large_rv","resource":"services","on":"watch","seconds":0.5}'
	code=$(api "$T/w" "/api/v1/services?watch=1&resourceVersion=$rv" --max-time 5)
	check "too_large_rv fault on a watch: 200 and one ERROR event with the 504 Status" bash -c \
		'[ "$1" = 200 ] && python3 "$2" lines "$3" "len(evs)==1 and evs[0][\"type\"]==\"ERROR\" and evs[0][\"object\"][\"code\"]==504 and evs[0][\"object\"][\"reason\"]==\"Timeout\""' _ "$code" "$T/h.py" "$T/w"

	# 403 Forbidden (RBAC), as kube-apiserver words it.
	fault '{"type":"forbidden","resource":"services","on":"list","count":-1}'
	code=$(api "$T/b" "/api/v1/services")
	check "forbidden on a token list: 403, the service account, cluster scope" bash -c \
		'[ "$1" = 403 ] && python3 "$2" jt "$3" "d[\"reason\"]==\"Forbidden\" and d[\"code\"]==403 and d[\"details\"]=={\"kind\":\"services\"} and d[\"message\"]==\"services is forbidden: User \\\"system:serviceaccount:kube-system:bpfsvc\\\" cannot list resource \\\"services\\\" in API group \\\"\\\" at the cluster scope\""' _ "$code" "$T/h.py" "$T/b"
	code=$(apic "$T/b" "/api/v1/namespaces/pg/services")
	check "...with a client cert: the CN, in the namespace (count -1 keeps firing)" bash -c \
		'[ "$1" = 403 ] && python3 "$2" jt "$3" "d[\"message\"].endswith(\"User \\\"bpfsvc\\\" cannot list resource \\\"services\\\" in API group \\\"\\\" in the namespace \\\"pg\\\"\")"' _ "$code" "$T/h.py" "$T/b"
	code=$(api "$T/w" "/api/v1/services?watch=1&timeoutSeconds=1")
	check "...a watch is not affected by an on:list fault" test "$code" = 200
	ctl POST /control/faults/clear >/dev/null
	code=$(api /dev/null "/api/v1/services")
	check "...until the faults are cleared" test "$code" = 200
	fault '{"type":"forbidden","resource":"endpointslices","on":"watch"}'
	code=$(api "$T/b" "/apis/discovery.k8s.io/v1/endpointslices?watch=1")
	check "forbidden on an endpointslices watch: group discovery.k8s.io in details and message" bash -c \
		'[ "$1" = 403 ] && python3 "$2" jt "$3" "d[\"details\"]=={\"group\":\"discovery.k8s.io\",\"kind\":\"endpointslices\"} and \"cannot watch resource \\\"endpointslices\\\" in API group \\\"discovery.k8s.io\\\" at the cluster scope\" in d[\"message\"]"' _ "$code" "$T/h.py" "$T/b"
	fault '{"type":"forbidden","on":"get"}'
	code=$(api "$T/b" "/api/v1/namespaces/pg/services/a")
	check "forbidden on a get: names the object and the namespace" bash -c \
		'[ "$1" = 403 ] && python3 "$2" jt "$3" "d[\"details\"]=={\"kind\":\"services\",\"name\":\"a\"} and d[\"message\"].startswith(\"services \\\"a\\\" is forbidden: \") and d[\"message\"].endswith(\"cannot get resource \\\"services\\\" in API group \\\"\\\" in the namespace \\\"pg\\\"\")"' _ "$code" "$T/h.py" "$T/b"

	# Discovery, authenticated like the rest.
	api "$T/d1" /api >/dev/null
	api "$T/d2" /apis >/dev/null
	api "$T/d3" /api/v1 >/dev/null
	code=$(api "$T/d4" /apis/discovery.k8s.io/v1 -H 'Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' -D "$T/hdr")
	check "discovery: /api APIVersions, /apis APIGroupList with discovery.k8s.io" bash -c \
		'python3 "$1" jt "$2" "d[\"kind\"]==\"APIVersions\" and d[\"versions\"]==[\"v1\"]" &&
		 python3 "$1" jt "$3" "d[\"kind\"]==\"APIGroupList\" and d[\"groups\"][0][\"name\"]==\"discovery.k8s.io\" and d[\"groups\"][0][\"preferredVersion\"][\"groupVersion\"]==\"discovery.k8s.io/v1\""' _ "$T/h.py" "$T/d1" "$T/d2"
	check "discovery: /api/v1 and /apis/discovery.k8s.io/v1 APIResourceLists (plain JSON for an aggregated Accept)" bash -c \
		'[ "$1" = 200 ] && grep -qi "^content-type: application/json" "$2" &&
		 python3 "$3" jt "$4" "d[\"kind\"]==\"APIResourceList\" and any(r[\"name\"]==\"services\" and r[\"kind\"]==\"Service\" and r[\"shortNames\"]==[\"svc\"] and \"watch\" in r[\"verbs\"] for r in d[\"resources\"])" &&
		 python3 "$3" jt "$5" "d[\"groupVersion\"]==\"discovery.k8s.io/v1\" and d[\"resources\"][0][\"name\"]==\"endpointslices\" and d[\"resources\"][0][\"kind\"]==\"EndpointSlice\" and \"list\" in d[\"resources\"][0][\"verbs\"]"' \
		_ "$code" "$T/hdr" "$T/h.py" "$T/d3" "$T/d4"
	code=$(curl -sS "${CA[@]}" -o /dev/null -w '%{http_code}' "$BASE/api")
	check "discovery without credentials: 401" test "$code" = 401

	# Control POST bodies on one keep-alive connection, to endpoints that ignore them.
	check "control: POSTs with bodies on one keep-alive connection all answer JSON 200" python3 - "$CPORT" <<'EOF'
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
codes = []
for path in ("/control/faults/clear", "/control/requests/clear", "/control/faults/clear"):
    c.request("POST", path, body=json.dumps({"ignored": "x" * 100}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    json.loads(r.read())
    codes.append(r.status)
c.request("GET", "/control/state")
r = c.getresponse()
json.loads(r.read())
codes.append(r.status)
sys.exit(0 if codes == [200] * 4 else 1)
EOF
	kill -TERM "$SRV_PID"
	wait "$SRV_PID"
	check "the semantics server exits 0 on SIGTERM" test $? = 0
else
	nok "server starts with --watch-cache-events/--watch-cache-seconds"
fi

# ------------------------------------------------------------------------------------------
# IPv6 loopback

if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
	if start_server v6 ::1; then
		code=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(tok)" -o "$T/b" -w '%{http_code}' "https://[::1]:$PORT/api/v1/services")
		check "listening on [::1]: token list works, cert SAN ::1 verifies" test "$code" = 200
		kill -TERM "$SRV_PID"
		wait "$SRV_PID"
		check "the ::1 server exits 0 on SIGTERM" test $? = 0
	else
		nok "server starts on ::1"
	fi
elif [ "${CI:-}" = true ]; then
	nok "IPv6 loopback available (CI must run every check)"
else
	echo "# SKIP no IPv6 loopback (not counted)"
fi

# ------------------------------------------------------------------------------------------
# The official Python client (python3-kubernetes) against its own fake: pyclient_test.py

pyc=""
for py in python3 /usr/bin/python3; do
	if "$py" -c 'import kubernetes' 2>/dev/null; then pyc=$py; break; fi
done
if [ -z "$pyc" ]; then
	if [ "${CI:-}" = true ]; then nok "python3-kubernetes is installed (make deps)"; else echo "# MISSING (not counted as passed): python3-kubernetes, pyclient_test.py not run"; fi
else
	"$pyc" "$here/pyclient_test.py" >"$T/pyc.out" 2>&1
	rc=$?
	grep -E '^(ok|not ok) - |^#' "$T/pyc.out" | sed 's/^\(not \)\{0,1\}ok - /&pyclient: /'
	p=$(grep -c '^ok - ' "$T/pyc.out")
	f=$(grep -c '^not ok - ' "$T/pyc.out")
	pass=$((pass + p))
	fail=$((fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		nok "pyclient_test.py exited $rc"
		tail -n 20 "$T/pyc.out" | sed 's/^/#   /'
	fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
