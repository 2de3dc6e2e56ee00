#!/usr/bin/env bash
# One benchmark step: MODE (iptables | nftables | bpfsvc) at N services x M endpoints, in
# namespaces of its own, removed on exit. Prints CSV rows "mode,n,m,metric,value" on stdout;
# progress and diagnostics go to stderr.
#
#   bench/step.sh MODE N M DATADIR BUDGET_S SAMPLES
#
# DATADIR holds bench/gen.py's output for N and M. A load that exceeds BUDGET_S is reported
# as metric "status" value "over_budget" and exit status 3.
#
# Topology: client namespace ${RUN}n (the "node": kube-proxy's rules live here, or the
# client runs in the test cgroup where bpfsvc is attached) --veth-- backend namespace ${RUN}b
# holding every pod address and bench-server (TCP 8080, UDP 5353).
set -u
MODE=$1 N=$2 M=$3 DATA=$4 BUDGET=$5 SAMPLES=$6
RUN=bsvcb$$
. "$(dirname "$0")/../tests/e2e/lib.sh"
BENCH=$TOP/build/bench
BPFSVC=${BPFSVC_BENCH:-$TOP/build/bpfsvc}
BACK=${RUN}b

row() { printf '%s,%s,%s,%s,%s\n' "$MODE" "$N" "$M" "$1" "$2"; }
say() { printf '  [%s n=%s] %s\n' "$MODE" "$N" "$*" >&2; }

# Kernel memory of the rules or maps: the loader runs in a memory cgroup of its own, and
# netfilter rules and BPF maps are charged to the memory cgroup of the process that made them
# (so the figure is theirs alone, not the whole machine's). cgroup v2 where its memory
# controller is on, else the v1 memory hierarchy.
MEMCG=""
memcg_up() {
	local root
	root=$(cgroup2_root)
	if [ -n "$root" ] && grep -qw memory "$root/cgroup.subtree_control" 2>/dev/null; then
		MEMCG=$root/bpfsvc-bench-$RUN
	elif [ -f /sys/fs/cgroup/memory/memory.kmem.usage_in_bytes ]; then
		MEMCG=/sys/fs/cgroup/memory/bpfsvc-bench-$RUN
	else
		return 1
	fi
	mkdir "$MEMCG" && EXTRA_CGROUPS+=("$MEMCG")
}
kmem_kb() {
	if [ -f "$MEMCG/memory.kmem.usage_in_bytes" ]; then
		echo $(($(cat "$MEMCG/memory.kmem.usage_in_bytes") / 1024))
	else
		awk '$1 == "kernel" { print int($2 / 1024) }' "$MEMCG/memory.stat"
	fi
}
# "${MEMCG_RUN[@]}" CMD...: run CMD charged to the memory cgroup (an external command, so
# it can stand under timeout and /usr/bin/time).
MEMCG_RUN=()

# timed LIMIT OUTFILE [MEMCG_RUN...] CMD...: run CMD under /usr/bin/time; "elapsed_s
# maxrss_kb" in OUTFILE. Returns 124 when LIMIT seconds passed first. timeout stands right
# above CMD, so what it kills is the loader itself, not a wrapper that would leave it running.
timed() {
	local limit=$1 out=$2
	shift 2
	"${MEMCG_RUN[@]}" /usr/bin/time -f '%e %M' -o "$out" timeout "$limit" "$@"
}

topo() {
	local j
	infra_up || return 1
	ip netns add "$NODE" && ip netns add "$BACK" || return 1
	PODS+=("$BACK")
	ip -n "$NODE" link set lo up
	ip -n "$BACK" link set lo up
	ip link add c0 netns "$NODE" type veth peer name b0 netns "$BACK" || return 1
	ip -n "$NODE" addr add 10.200.0.1/24 dev c0
	ip -n "$BACK" addr add 10.200.0.2/24 dev b0
	ip -n "$NODE" link set c0 up
	ip -n "$BACK" link set b0 up
	ip -n "$NODE" route add 10.244.0.0/16 via 10.200.0.2
	# A node has a route covering the service range (its default route): the kernel routes
	# a packet before the nat OUTPUT hook may rewrite it. The same for every mode.
	ip -n "$NODE" route add 10.96.0.0/12 via 10.200.0.2
	for j in $(python3 -c "import sys; sys.path.insert(0, '$TOP/bench'); import gen; print(' '.join(gen.pods($M) + [gen.CHANGED_IP]))"); do
		ip -n "$BACK" addr add "$j/32" dev lo
	done
	ip netns exec "$BACK" $PIN_CPU "$BENCH/bench-server" --tcp 8080 --udp 5353 >"$TMP/server.out" 2>&1 &
	PIDS+=($!)
	wait_for "bench-server" 50 grep -q ready "$TMP/server.out"
}

# Client and server share one CPU: a wake-up of the other, idle vCPU costs tens of
# microseconds on this kind of VM and would swamp what is measured.
PIN_CPU=""
[ "$(nproc)" -ge 2 ] && PIN_CPU="taskset -c 1"

# client CMD...: run in the client namespace (inside the test cgroup for bpfsvc).
client() {
	if [ "$MODE" = bpfsvc ]; then in_cg $PIN_CPU "$@"; else ip netns exec "$NODE" $PIN_CPU "$@"; fi
}

FIRST=$(python3 -c "import sys; sys.path.insert(0, '$TOP/bench'); import gen; print(gen.vip(0))")
LAST=$(python3 -c "import sys; sys.path.insert(0, '$TOP/bench'); import gen; print(gen.vip($N - 1))")
POD=10.244.0.10

topo || { say "topology failed"; exit 1; }
if memcg_up; then
	MEMCG_RUN=(sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$MEMCG")
else
	say "no memory cgroup: kernel memory not measured"
fi

# ---- load ----
case $MODE in
iptables | nftables)
	if [ "$MODE" = iptables ]; then
		timed "$BUDGET" "$TMP/load.time" ip netns exec "$NODE" iptables-restore "$DATA/iptables.rules"
	else
		timed "$BUDGET" "$TMP/load.time" ip netns exec "$NODE" nft -f "$DATA/nft.rules"
	fi
	rc=$?
	if [ "$rc" -eq 124 ]; then
		row status over_budget
		say "load over budget (${BUDGET} s)"
		exit 3
	fi
	[ "$rc" -eq 0 ] || { say "load failed ($rc)"; row status failed; exit 1; }
	read -r load_s rss_kb <"$TMP/load.time"
	row load_s "$load_s"
	row load_rss_kb "$rss_kb"
	;;
bpfsvc)
	# The fake API server is CPU-hungry Python: keep it off the agent's core, so the change
	# latency is the agent's own work, not time spent waiting for a shared core.
	if [ "$(nproc)" -ge 2 ]; then
		export API_CPU=0 AGENT_CPU=1
	fi
	api_up --bookmark-interval 30 --gzip-threshold -1 || { say "fake API server failed"; exit 1; }
	kubeconfig_write "    tokenFile: token"
	ctl_file POST /control/apply "$DATA/objects.json" >/dev/null || { say "loading objects failed"; exit 1; }
	t0=$(date +%s%N)
	SYNC_TRIES=$((BUDGET * 10)) AGENT_MEMCG=$MEMCG api_agent_start --max-services $((N * 2 + 1024)) \
		--max-backends $((N * (M + 1) + 1024)) --max-sockets 65536
	rc=$?
	if [ "$rc" -ne 0 ]; then
		row status over_budget
		say "agent not synced within ${BUDGET} s"
		exit 3
	fi
	wall=$(python3 -c "print(round(($(date +%s%N) - $t0) / 1e9, 3))")
	# The agent's own programming time: model build + map writes once the lists are in,
	# what iptables-restore / nft -f are to a generated ruleset.
	read -r build_us sync_us < <(grep 'reason=resync' "$AGENT_LOG" | head -n 1 |
		sed 's/.*parse_us=\([0-9]*\) sync_us=\([0-9]*\).*/\1 \2/')
	row load_s "$(python3 -c "print(round(($build_us + $sync_us) / 1e6, 3))")"
	row load_wall_s "$wall"
	row load_rss_kb "$(awk '/^VmHWM:/ {print $2}' "/proc/$AGENT_PID/status")"
	row bpf_memlock_kb "$(bpftool -j map show | python3 -c "
import json, sys
print(sum(m.get('bytes_memlock', 0) for m in json.load(sys.stdin) if m.get('name', '').startswith('bpfsvc_')) // 1024)")"
	;;
esac
[ -n "$MEMCG" ] && row kmem_kb "$(kmem_kb)"
say "loaded"

# ---- data path ----
parse() { # parse FILE TARGET KEY -> value
	grep "target=$2 " "$1" | head -n 1 | tr ' ' '\n' | sed -n "s/^$3=//p"
}
client "$BENCH/bench-client" connect --count "$SAMPLES" "$FIRST:80" "$LAST:80" "$POD:8080" >"$TMP/conn" 2>&1 ||
	say "connect: $(tr '\n' ' ' <"$TMP/conn")"
for t in first:$FIRST:80 last:$LAST:80 direct:$POD:8080; do
	name=${t%%:*} target=${t#*:}
	row "conn_${name}_p50_us" "$(parse "$TMP/conn" "$target" p50_us)"
	row "conn_${name}_p99_us" "$(parse "$TMP/conn" "$target" p99_us)"
	row "conn_${name}_fail" "$(parse "$TMP/conn" "$target" fail)"
done
client "$BENCH/bench-client" udp --count "$SAMPLES" "$FIRST:53" "$LAST:53" "$POD:5353" >"$TMP/udp" 2>&1 ||
	say "udp: $(tr '\n' ' ' <"$TMP/udp")"
for t in first:$FIRST:53 last:$LAST:53 direct:$POD:5353; do
	name=${t%%:*} target=${t#*:}
	row "udp_${name}_p50_us" "$(parse "$TMP/udp" "$target" p50_us)"
	row "udp_${name}_p99_us" "$(parse "$TMP/udp" "$target" p99_us)"
done
for t in last:$LAST:80 direct:$POD:8080; do
	name=${t%%:*} target=${t#*:}
	client "$BENCH/bench-client" rps --seconds 2 "$target" >"$TMP/rps" 2>&1
	row "rps_${name}" "$(parse "$TMP/rps" "$target" rps)"
done
say "data path measured"

# ---- one endpoint change at size N ----
case $MODE in
iptables)
	# kube-proxy's sync writes the whole nat table with iptables-restore --noflush.
	runs=$([ "$N" -le 10000 ] && echo 3 || echo 1)
	times=()
	for ((r = 0; r < runs; r++)); do
		f=$DATA/iptables-change.rules
		[ $((r % 2)) -eq 1 ] && f=$DATA/iptables.rules
		timed "$BUDGET" "$TMP/chg.time" ip netns exec "$NODE" iptables-restore --noflush "$f"
		rc=$?
		if [ "$rc" -eq 124 ]; then
			row change_status over_budget
			say "endpoint change over budget (${BUDGET} s)"
			break
		fi
		[ "$rc" -eq 0 ] || break
		times+=("$(cut -d' ' -f1 <"$TMP/chg.time")")
	done
	;;
nftables)
	times=()
	for ((r = 0; r < 5; r++)); do
		f=$DATA/nft-change.rules
		[ $((r % 2)) -eq 1 ] && f=$DATA/nft-change-back.rules
		s0=$(date +%s%N)
		ip netns exec "$NODE" nft -f "$f" || break
		times+=("$(python3 -c "print(($(date +%s%N) - $s0) / 1e9)")")
	done
	;;
bpfsvc)
	# The agent's own event-to-map time, per watch event.
	mark=$(grep -c 'msg="events applied"' "$AGENT_LOG")
	changes=100
	for ((r = 0; r < changes; r++)); do
		f=$DATA/change-a.json
		[ $((r % 2)) -eq 1 ] && f=$DATA/change-b.json
		ctl_file POST /control/apply "$f" >/dev/null
		applied() { [ "$(grep -c 'msg="events applied"' "$AGENT_LOG")" -gt $((mark + r)) ]; }
		wait_for "change applied" 100 applied || break
	done
	mapfile -t times < <(grep 'msg="events applied"' "$AGENT_LOG" | tail -n +"$((mark + 1))" |
		sed 's/.*latency_us=//' | awk '{ print $1 / 1e6 }')
	;;
esac
if [ "${#times[@]}" -gt 0 ]; then
	printf '%s\n' "${times[@]}" | sort -g | awk -v mode="$MODE" -v n="$N" -v m="$M" '
		{ v[NR] = $1 } END {
			p50 = v[int((NR - 1) * 0.5) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
			printf "%s,%s,%s,change_p50_ms,%.3f\n", mode, n, m, p50 * 1000
			printf "%s,%s,%s,change_p99_ms,%.3f\n", mode, n, m, p99 * 1000
			printf "%s,%s,%s,change_runs,%d\n", mode, n, m, NR }'
fi
row status ok
say "done"
