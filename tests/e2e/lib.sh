# shellcheck shell=bash
# End-to-end test library: a throwaway "node" in network namespaces, the real agent, real
# sockets. Source it from a test_*.sh scenario; everything it makes is named after $RUN and
# removed by the EXIT trap, even when the test fails.
#
# Topology (all inside namespaces this library creates; no route leaves them):
#
#   ${RUN}n  "node": bridge br0 10.244.0.1/24 fd00:244::1/64; clients run here, in the
#            test cgroup where bpfsvc is attached (or outside it, to prove it is unaffected)
#   ${RUN}p1..pN  "pods": eth0 10.244.0.1N/24 fd00:244::1N/64, bsvc-serve answering "podN"
#
# Service VIPs (10.96.x.x, fd00:96::x) exist nowhere: the socket programs rewrite them.

set -u
# Debian's python3 first: python3-h2 and python3-kubernetes are installed for it, and a
# python3 from pyenv or a venv earlier in PATH would not see them.
PATH=/usr/bin:$PATH
set -o pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BPFSVC=${BPFSVC:-$TOP/build/bpfsvc}
TOOLS=${TOOLS:-$TOP/build/tools}
RUN=${RUN:-bsvc$$}
NODE=${RUN}n
TMP=$(mktemp -d "/tmp/${RUN}.XXXXXX")
PIN=$TMP/bpffs/pins
OBJS=$TMP/objects.json
AGENT_LOG=$TMP/agent.log
CG=""
AGENT_PID=""
PIDS=()
PODS=()
EXTRA_CGROUPS=() # other cgroups this run made (e.g. a memory cgroup), removed on exit
PASSED=0
FAILED=0

log() { printf '# %s\n' "$*"; }

ok() {
	PASSED=$((PASSED + 1))
	printf 'ok - %s\n' "$1"
}

not_ok() {
	FAILED=$((FAILED + 1))
	printf 'not ok - %s\n' "$1"
	shift
	for line in "$@"; do printf '#   %s\n' "$line"; done
}

# check DESC CMD...: pass if CMD exits 0.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc" "command failed: $*"; fi
}

# A missing kernel feature is a failure in CI and a loud note elsewhere; never a silent pass.
require() {
	local what=$1
	shift
	if ! "$@" >/dev/null 2>&1; then
		if [ "${CI:-}" = true ]; then
			not_ok "required: $what"
		else
			printf '# MISSING (not counted as passed): %s\n' "$what"
		fi
		return 1
	fi
}

finish() {
	agent_stop
	# The agent runs under ASan/UBSan in `make test`: any report fails the scenario.
	if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$AGENT_LOG" 2>/dev/null; then
		not_ok "agent ran clean under the sanitizers" "$(grep -Em3 'Sanitizer|runtime error' "$AGENT_LOG")"
	fi
	printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
	[ "$FAILED" -eq 0 ]
}

cleanup() {
	local pid ns cg
	set +e
	for pid in "${PIDS[@]}" $AGENT_PID; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}" $AGENT_PID; do wait "$pid" 2>/dev/null; done
	if [ -d "$PIN" ]; then "$BPFSVC" cleanup --pin-path "$PIN" >/dev/null 2>&1; fi
	mountpoint -q "$TMP/bpffs" && umount "$TMP/bpffs"
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		# Anything still in the test cgroup was started by this test.
		for pid in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
	fi
	for ns in "${PODS[@]}" "$NODE"; do ip netns del "$ns" 2>/dev/null; done
	for cg in "${EXTRA_CGROUPS[@]}"; do
		for pid in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

cgroup2_root() { awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts; }

# infra_up: a private bpffs for the pins and a test cgroup for the programs.
infra_up() {
	local root
	mkdir -p "$TMP/bpffs"
	mount -t bpf bpf "$TMP/bpffs" || return 1
	root=$(cgroup2_root)
	[ -n "$root" ] || { echo "no cgroup2 mount" >&2; return 1; }
	CG=$root/bpfsvc-test-$RUN
	mkdir "$CG"
}

# topo_up N: the node namespace, N pods with servers, a test cgroup, a private bpffs.
topo_up() {
	local n=$1 i
	infra_up || return 1
	ip netns add "$NODE" || return 1
	ip -n "$NODE" link set lo up
	ip -n "$NODE" link add br0 type bridge
	ip -n "$NODE" addr add 10.244.0.1/24 dev br0
	ip -n "$NODE" addr add fd00:244::1/64 dev br0 nodad
	ip -n "$NODE" link set br0 up
	for i in $(seq 1 "$n"); do pod_add "$i" || return 1; done
}

# pod_add I [extra serve args]: pod I at .1I with TCP 8080 8081, UDP 5353, HTTP 80.
pod_add() {
	local i=$1 ns=${RUN}p$1
	shift
	ip netns add "$ns" || return 1
	PODS+=("$ns")
	ip -n "$ns" link set lo up
	ip link add "${RUN}v$i" netns "$NODE" type veth peer name eth0 netns "$ns" || return 1
	ip -n "$NODE" link set "${RUN}v$i" master br0 up
	ip -n "$ns" addr add "10.244.0.1$i/24" dev eth0
	ip -n "$ns" addr add "fd00:244::1$i/64" dev eth0 nodad
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via 10.244.0.1
	ip -n "$ns" -6 route add default via fd00:244::1
	ip netns exec "$ns" "$TOOLS/bsvc-serve" --name "pod$i" --tcp 8080 --tcp 8081 \
		--udp 5353 --http 80 "$@" >"$TMP/serve$i.out" 2>&1 &
	PIDS+=($!)
	wait_for "pod$i server ready" 50 grep -q ready "$TMP/serve$i.out"
}

# wait_for DESC TRIES CMD...: retry CMD every 0.1 s.
wait_for() {
	local desc=$1 tries=$2 i
	shift 2
	for ((i = 0; i < tries; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $desc" >&2
	return 1
}

# in_cg CMD...: run CMD in the node namespace, inside the attached test cgroup.
# Join the cgroup first: `ip netns exec` mounts a fresh /sys, which hides the cgroup fs.
in_cg() {
	sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" ip netns exec "$NODE" "$@"
}

# out_cg CMD...: the same namespace, outside the test cgroup.
out_cg() { ip netns exec "$NODE" "$@"; }

probe() { in_cg "$TOOLS/bsvc-probe" "$@"; }

syncs() { grep -c 'msg="sync done"' "$AGENT_LOG" 2>/dev/null || true; }
synced_past() { [ "$(syncs)" -gt "$1" ]; }

# agent_start [extra args]: start the agent on $OBJS and wait for its first sync.
agent_start() {
	local before
	: >>"$AGENT_LOG"
	before=$(syncs)
	"$BPFSVC" agent --from-file "$OBJS" --cgroup "$CG" --pin-path "$PIN" \
		--node-name node1 "$@" 2>>"$AGENT_LOG" &
	AGENT_PID=$!
	wait_for "agent sync" 100 synced_past "$before"
}

agent_stop() {
	local rc
	[ -n "$AGENT_PID" ] || return 0
	kill "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	rc=$?
	AGENT_PID=""
	[ "$rc" -eq 0 ] || not_ok "agent exited 0 on SIGTERM" "exit status $rc"
}

# reload: SIGHUP the agent and wait until it has synced again.
reload() {
	local before
	before=$(syncs)
	kill -HUP "$AGENT_PID"
	wait_for "agent resync" 100 synced_past "$before"
}

# syncs_since N: the sync lines after the first N.
syncs_since() { grep 'msg="sync done"' "$AGENT_LOG" | tail -n +"$(($1 + 1))"; }

last_sync() { grep 'msg="sync done"' "$AGENT_LOG" | tail -n 1; }

# write_objects OBJ...: replace $OBJS atomically with a kubectl-style List of OBJ.
write_objects() {
	local IFS=,
	printf '{"apiVersion":"v1","kind":"List","items":[%s]}\n' "$*" >"$OBJS.tmp"
	mv "$OBJS.tmp" "$OBJS"
}

# svc NS NAME IPS PORTS [extra spec json]: a v1 Service.
#   IPS: comma-separated clusterIPs; PORTS: space-separated name:port:targetPort:PROTO
#   (name may be empty, e.g. ":80:8080:TCP"; targetPort a number or a name).
svc() {
	local ns=$1 name=$2 ips=$3 ports=$4 extra=${5:-} p pj="" ipj=""
	local pname port target proto ip
	for ip in ${ips//,/ }; do ipj="$ipj${ipj:+,}\"$ip\""; done
	for p in $ports; do
		IFS=: read -r pname port target proto <<<"$p"
		[[ $target =~ ^[0-9]+$ ]] || target="\"$target\""
		pj="$pj${pj:+,}{\"name\":\"$pname\",\"port\":$port,\"targetPort\":$target,\"protocol\":\"$proto\"}"
	done
	printf '{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"%s","name":"%s"},"spec":{"type":"ClusterIP","clusterIP":"%s","clusterIPs":[%s],"ports":[%s]%s}}' \
		"$ns" "$name" "${ips%%,*}" "$ipj" "$pj" "${extra:+,$extra}"
}

# slice NS SVC NAME FAMILY PORTS ENDPOINTS: a discovery.k8s.io/v1 EndpointSlice.
#   FAMILY: IPv4|IPv6; PORTS: space-separated name:port:PROTO;
#   ENDPOINTS: space-separated addr[/ready][/node], ready one of true|false|unset.
#   IPv6 addresses use '_' for ':' here, e.g. fd00_244__11/true.
slice() {
	local ns=$1 svcname=$2 name=$3 fam=$4 ports=$5 eps=$6 p e pj="" ej=""
	local pname port proto addr ready node cond
	for p in $ports; do
		IFS=: read -r pname port proto <<<"$p"
		pj="$pj${pj:+,}{\"name\":\"$pname\",\"port\":$port,\"protocol\":\"$proto\"}"
	done
	for e in $eps; do
		IFS=/ read -r addr ready node <<<"$e"
		addr=${addr//_/:}
		case ${ready:-true} in
		unset) cond="{}" ;;
		*) cond="{\"ready\":${ready:-true}}" ;;
		esac
		ej="$ej${ej:+,}{\"addresses\":[\"$addr\"],\"conditions\":$cond${node:+,\"nodeName\":\"$node\"}}"
	done
	printf '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"namespace":"%s","name":"%s","labels":{"kubernetes.io/service-name":"%s"}},"addressType":"%s","ports":[%s],"endpoints":[%s]}' \
		"$ns" "$name" "$svcname" "$fam" "$pj" "$ej"
}

# count_of NAME FILE: how many lines of FILE start with NAME: (a server's answer).
count_of() { grep -c "^$1:" "$2" || true; }

# ---- fake API server (tests/apiserver) ----
PKI=$TMP/pki
TOKEN_FILE=$TMP/token
KUBECONFIG_FILE=$TMP/kubeconfig
API_PORT=""
CTL=""

# api_up [extra fake_apiserver args]: certificates, a token, the fake API server on loopback.
api_up() {
	bash "$TOP/tests/apiserver/mkcerts.sh" "$PKI" >/dev/null 2>&1 || { echo "mkcerts failed" >&2; return 1; }
	printf 'token-%s\n' "$RUN" >"$TOKEN_FILE"
	${API_CPU:+taskset -c $API_CPU} python3 "$TOP/tests/apiserver/fake_apiserver.py" --listen 127.0.0.1 --port 0 --control-port 0 \
		--cert "$PKI/server.crt" --key "$PKI/server.key" --client-ca "$PKI/ca.crt" \
		--token-file "$TOKEN_FILE" --port-file "$TMP/ports.json" "$@" >"$TMP/api.out" 2>"$TMP/api.err" &
	PIDS+=($!)
	wait_for "fake API server" 100 test -s "$TMP/ports.json" || return 1
	API_PORT=$(sed 's/.*"port": *\([0-9]*\).*/\1/' "$TMP/ports.json")
	CTL=http://127.0.0.1:$(sed 's/.*"control_port": *\([0-9]*\).*/\1/' "$TMP/ports.json")
}

# kubeconfig_write USER_YAML: a kubeconfig for the fake server with the given user body.
kubeconfig_write() {
	cat >"$KUBECONFIG_FILE" <<KC
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: fake
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: pki/ca.crt
users:
- name: agent
  user:
$1
contexts:
- name: test
  context: {cluster: fake, user: agent}
KC
}

ctl() { curl -sf -X "$1" "$CTL$2" ${3:+-d "$3"}; }
# ctl_file METHOD PATH FILE: a large body from a file.
ctl_file() { curl -sf -X "$1" "$CTL$2" --data-binary "@$3"; }
api_rv() { ctl GET /control/state | grep -o '"rv": *[0-9]*' | grep -o '[0-9]*$'; }
api_apply() { ctl POST /control/apply "$1" >/dev/null; }
api_delete() { ctl POST /control/delete "{\"kind\":\"$1\",\"namespace\":\"$2\",\"name\":\"$3\"}" >/dev/null; }
api_fault() { ctl POST /control/fault "$1" >/dev/null; }
api_requests() { ctl GET "/control/requests${1:+?since=$1}"; }
api_last_id() { api_requests | grep -o '"id": *[0-9]*' | tail -n 1 | grep -o '[0-9]*$' || echo 0; }
# api_watchers N: wait until N watches are open.
api_watchers() { ctl GET "/control/watchers?wait=$1&timeout=${2:-10}" | grep -q '"satisfied": *true'; }
watchers_open() { ctl GET /control/watchers | grep -o '"total": *[0-9]*' | grep -o '[0-9]*$'; }

# api_agent_start [extra args]: the agent on the kubeconfig, waiting for its first sync.
api_agent_start() {
	local before
	: >>"$AGENT_LOG"
	before=$(syncs)
	local wrap=()
	# Benchmarks: charge the agent to a memory cgroup, pin it to a CPU.
	[ -n "${AGENT_MEMCG:-}" ] && wrap=(sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$AGENT_MEMCG")
	[ -n "${AGENT_CPU:-}" ] && wrap+=(taskset -c "$AGENT_CPU")
	# API_HTTP=1.1 runs a test over HTTP/1.1 (tests/run.sh does, for the API tests); the
	# default is the agent's: HTTP/2.
	"${wrap[@]}" "$BPFSVC" agent --kubeconfig "$KUBECONFIG_FILE" --cgroup "$CG" --pin-path "$PIN" \
		--node-name node1 ${API_HTTP:+--api-http-version "$API_HTTP"} -v "$@" 2>>"$AGENT_LOG" &
	AGENT_PID=$!
	wait_for "agent sync" "${SYNC_TRIES:-100}" synced_past "$before"
}

# reaches VIP PORT WANT [tries]: poll (10 ms apart) until a connect answers WANT (a regex).
reaches() {
	local vip=$1 port=$2 want=$3 tries=${4:-100} i out
	for ((i = 0; i < tries; i++)); do
		out=$(probe tcp "$vip" "$port" --timeout-ms 300)
		[[ $out =~ $want ]] && return 0
		sleep 0.01
	done
	echo "last answer: $out" >&2
	return 1
}
# ---- a Service whose endpoint moves while faults happen ----
# The API scenarios: Service default/web 10.96.0.10:80 with one endpoint, pod1 or pod2.
current=1
# toggle: move web's endpoint to the other pod; true once every new connection lands there.
toggle() {
	current=$((3 - current))
	api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' "10.244.0.1$current")"
	reaches 10.96.0.10 80 "^pod$current:8080\$" 2500 &&
		test "$(probe tcp 10.96.0.10 80 --count 10 | grep -c "^pod$current:8080$")" -eq 10
}

# loop_start VIP PORT [MAX_S]: a client connecting in a tight loop, in the test cgroup, until
# loop_stop.
LOOP_PID=""
loop_start() {
	in_cg "$TOOLS/bsvc-probe" loop "$1" "$2" --stop-file "$TMP/loop.stop" \
		--max-seconds "${3:-240}" >"$TMP/loop.out" 2>&1 &
	LOOP_PID=$!
	PIDS+=("$LOOP_PID")
}
# loop_stop WHAT: stop it; it must have run (500 connects or more) without a failure.
loop_stop() {
	local out attempts
	touch "$TMP/loop.stop"
	wait "$LOOP_PID"
	out=$(cat "$TMP/loop.out")
	log "$out"
	attempts=$(sed -n 's/^attempts=\([0-9]*\).*/\1/p' <<<"$out")
	check "a client connected throughout (${attempts:-0} connects)" test "${attempts:-0}" -ge 500
	check "zero failed connects through $1" grep -q 'failed=0$' <<<"$out"
}

# reqlog [SINCE_ID]: the request log, one line per request (see reqlog.py).
reqlog() { api_requests "${1:-}" | python3 "$TOP/tests/e2e/reqlog.py"; }
