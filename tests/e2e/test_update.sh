#!/usr/bin/env bash
# Backend changes: SIGHUP and file-change reloads are followed by new connections, and a
# connect loop running through 100 edits never fails (the atomic set switch).
. "$(dirname "$0")/lib.sh"

topo_up 3 || { not_ok "topology"; finish; exit 1; }

# objects_with "11 12": service web with backends 10.244.0.11 and .12
objects_with() {
	local eps="" i
	for i in $1; do eps="$eps 10.244.0.$i"; done
	write_objects "$(svc default web 10.96.0.10 'http:80:8080:TCP')" \
		"$(slice default web web-1 IPv4 'http:8080:TCP' "$eps")"
}
objects_with "11 12"
agent_start || { not_ok "agent start"; cat "$AGENT_LOG"; finish; exit 1; }

out=$(probe tcp 10.96.0.10 80 --count 60)
check "before: only pod1 and pod2" test "$(grep -c '^pod[12]:8080$' <<<"$out")" -eq 60

mark=$(syncs)
objects_with "12 13"
reload
out=$(probe tcp 10.96.0.10 80 --count 60)
check "SIGHUP after removing pod1, adding pod3: new connects follow" \
	test "$(grep -c '^pod[23]:8080$' <<<"$out")" -eq 60
check "  and pod3 is reached" test "$(count_of pod3 <(echo "$out"))" -gt 0
# The file watch may reload before the SIGHUP does; together they changed one frontend.
changes=$(syncs_since "$mark")
check "  one frontend updated, nothing else written" \
	test "$(grep -c 'added=0 updated=1 removed=0' <<<"$changes")" -eq 1 -a \
	"$(grep -c 'added=0 updated=0 removed=0' <<<"$changes")" -eq "$(($(wc -l <<<"$changes") - 1))"

before=$(syncs)
objects_with "13"
wait_for "reload on file change" 50 synced_past "$before"
out=$(probe tcp 10.96.0.10 80 --count 30)
check "file change without SIGHUP is picked up: only pod3" test "$(count_of pod3 <(echo "$out"))" -eq 30

reload
check "a reload with nothing changed writes nothing" grep -q 'unchanged=1 failed=0 writes=0' <<<"$(last_sync)"

# 100 edits while a client connects in a tight loop.
stop=$TMP/stop
in_cg "$TOOLS/bsvc-probe" loop 10.96.0.10 80 --stop-file "$stop" --max-seconds 120 >"$TMP/loop.out" 2>&1 &
loop_pid=$!
PIDS+=("$loop_pid")
sets=("11" "11 12" "11 12 13" "12 13" "13" "11 13" "12")
for ((i = 0; i < 100; i++)); do
	objects_with "${sets[i % ${#sets[@]}]}"
	reload || break
done
touch "$stop"
wait "$loop_pid"
loop_out=$(cat "$TMP/loop.out")
log "$loop_out"
check "100 edits done" test "$i" -eq 100
attempts=$(sed -n 's/^attempts=\([0-9]*\).*/\1/p' <<<"$loop_out")
check "the connect loop ran during the edits (${attempts:-0} connects)" test "${attempts:-0}" -ge 200
check "zero failed connects during 100 backend edits" grep -q 'failed=0$' <<<"$loop_out"

# Replaced sets are reclaimed after the grace period: only the live set's slots remain.
sleep 1.5
live=$(wc -w <<<"${sets[99 % ${#sets[@]}]}")
left=$(bpftool -j map dump pinned "$PIN/v1_bpfsvc_slots" | grep -o '"set_id"' | wc -l)
check "old backend sets reclaimed ($left slots left, $live live)" test "$left" -eq "$live"

finish
