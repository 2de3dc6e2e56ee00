#!/usr/bin/env bash
# API source hardening (issue 7 items 8-11), against the fake API server:
#  - kubeconfig and token files others can write are named in a warning;
#  - 429 with Retry-After: 0, repeated, is retried with growing (jittered) gaps;
#  - a watch line that never ends is dropped at the line cap within seconds, with bounded
#    memory (given back afterwards) and little CPU, while the datapath keeps serving;
#  - an exec credential plugin that hangs (and leaves a child) does not block the event loop:
#    events and signals are still handled, SIGTERM ends the agent at once, and neither the
#    plugin nor its child survives; one that answers after 2 s leads to a normal sync.
. "$(dirname "$0")/lib.sh"

topo_up 2 || { not_ok "topology"; finish; exit 1; }
# A BOOKMARK every second keeps healthy watches inside the agent's short idle timeout
# (--watch-idle-timeout 5 below; the fake's default is kube-apiserver's one a minute).
api_up --bookmark-interval 1 || { not_ok "fake API server"; finish; exit 1; }
api_apply "$(svc default web 10.96.0.10 'http:80:8080:TCP')"
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11')"

now() { date +%s.%N; }
elapsed() { python3 -c "print(round($2 - $1, 2))"; }
# cpu_ticks PID: user + system time in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# A live process (a zombie has exited; it only waits for its parent).
alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" != Z ]; }

# ---- item 8: files others can write ----
kubeconfig_write "    tokenFile: token"
chmod 0666 "$KUBECONFIG_FILE"
chmod 0620 "$TOKEN_FILE"
# The small quarantine lets ASan hand freed memory back at once, as glibc does, so the RSS
# after the dropped line below measures bpfsvc, not the sanitizer.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
api_agent_start --watch-idle-timeout 5 --api-backoff-max 4 || { not_ok "agent start"; tail -20 "$AGENT_LOG"; finish; exit 1; }
check "world-writable kubeconfig: warned, naming the file" \
	grep -q "level=warn msg=\"insecure file permissions\" warning=\"kubeconfig $KUBECONFIG_FILE is world-writable (mode 0666)" "$AGENT_LOG"
check "group-writable token file: warned, naming the file" \
	grep -q "level=warn msg=\"insecure file permissions\" warning=\"token file $TMP/token is group-writable (mode 0620)" "$AGENT_LOG"
chmod 0600 "$KUBECONFIG_FILE" "$TOKEN_FILE"
api_watchers 2 || { not_ok "watches open"; finish; exit 1; }

loop_start 10.96.0.10 80 200

# ---- item 10: 429 with Retry-After: 0 ----
# A watch ended within a second of its start without an event counts as a failure itself:
# let the watches age (and see a bookmark) first, so the 429s alone drive the backoff.
sleep 1.5
mark=$(api_last_id)
logmark=$(wc -l <"$AGENT_LOG")
api_fault '{"type":"too_many_requests","resource":"endpointslices","on":"watch","retry_after":0,"count":4}'
api_fault '{"type":"end_watch","resource":"endpointslices"}'
api_watchers 2 20
times=$(reqlog "$mark" | grep ' endpointslices watch ' | sed 's/.* t=//' | head -n 5 | tr '\n' ' ')
statuses=$(reqlog "$mark" | grep ' endpointslices watch ' | awk '{ print $4 }' | head -n 5 | tr '\n' ' ')
gaps=$(python3 -c "
t=[float(x) for x in '$times'.split()]
print(' '.join('%.2f' % (b - a) for a, b in zip(t, t[1:])))")
waits=$(tail -n +"$((logmark + 1))" "$AGENT_LOG" | grep 'msg="retrying later" resource=endpointslices' |
	sed -n 's/.* in_ms=\([0-9]*\).*/\1/p' | head -n 4 | tr '\n' ' ')
log "watch statuses: $statuses gaps: $gaps s; the agent's waits: $waits ms"
# After each 429: 0.8, 1.6, 3.2, then the 4 s cap, each jittered by 25 %; before the fix,
# 1.0 s every time.
check "429 Retry-After: 0 four times: the agent's waits grow ($waits ms)" python3 -c "
import sys
w=[int(x) for x in '$waits'.split()]
sys.exit(0 if len(w) == 4 and 600 <= w[0] <= 1000 and 1200 <= w[1] <= 2000 and
         2400 <= w[2] <= 4000 and 3000 <= w[3] <= 5000 else 1)"
# The requests as the server saw them (scheduling on a busy machine only adds delay).
check "  and so do the gaps between the requests the server saw ($gaps s)" python3 -c "
import sys
s='$statuses'.split(); d=[float(x) for x in '$gaps'.split()]
sys.exit(0 if s == ['429'] * 4 + ['200'] and len(d) == 4 and d[0] >= 0.55 and
         d[1] >= 1.15 and d[2] >= 2.35 and d[3] >= 2.9 and d[3] >= d[0] + 1.0 else 1)"
check "  and the watch recovered: changes arrive" toggle

# ---- item 9: a watch line without a newline ----
sleep 1
pid=$AGENT_PID
rss0=$(rss_kb "$pid")
(
	peak=0
	while [ ! -e "$TMP/rss.stop" ] && [ -r "/proc/$pid/status" ]; do
		r=$(rss_kb "$pid")
		[ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" >"$TMP/rss.peak"
		sleep 0.05
	done
) &
PIDS+=($!)
drops_before=$(grep -c 'msg="watch event too large, dropping the watch"' "$AGENT_LOG")
dropped() { [ "$(grep -c 'msg="watch event too large, dropping the watch"' "$AGENT_LOG")" -gt "$drops_before" ]; }
api_fault '{"type":"endless_line","resource":"endpointslices","on":"watch"}'
cpu0=$(cpu_ticks "$pid")
t0=$(now)
api_fault '{"type":"end_watch","resource":"endpointslices"}'
wait_for "the oversized line dropped" 600 dropped
t1=$(now)
drop_s=$(elapsed "$t0" "$t1")
# CPU over a fixed 5 s from the fault on: the drop, the backoff, the new watch.
sleep "$(python3 -c "print(max(0, 5 - ($t1 - $t0)))")"
t2=$(now)
cpu1=$(cpu_ticks "$pid")
touch "$TMP/rss.stop"
sleep 0.2
peak=$(cat "$TMP/rss.peak" 2>/dev/null || echo 0)
rss_after=$(rss_kb "$pid")
hz=$(getconf CLK_TCK)
cpu_pct=$(python3 -c "print(round(100.0 * ($cpu1 - $cpu0) / $hz / ($t2 - $t0), 1))")
log "endless line: dropped after $drop_s s; RSS before ${rss0} kB, peak ${peak} kB, after ${rss_after} kB; CPU ${cpu_pct}% over $(elapsed "$t0" "$t2") s"
check "endless watch line: dropped within 10 s ($drop_s s)" python3 -c "import sys; sys.exit(0 if $drop_s < 10 else 1)"
check "  with a clear error naming the limit" \
	grep -q 'msg="watch event too large, dropping the watch" resource=endpointslices limit_bytes=16777216' "$AGENT_LOG"
check "  RSS grew by at most 64 MiB meanwhile ($(((peak - rss0) / 1024)) MiB)" test $((peak - rss0)) -le 65536
check "  and the memory was given back (RSS $(((rss_after - rss0) / 1024)) MiB above before)" test $((rss_after - rss0)) -le 8192
check "  CPU ${cpu_pct}% over the $(elapsed "$t0" "$t2") s from the fault (was 93% for ~2 min)" python3 -c "import sys; sys.exit(0 if $cpu_pct < 15 else 1)"
api_watchers 2 10
check "  the watch resumed: changes arrive" toggle

loop_stop "the 429s and the endless line"
agent_stop

# ---- item 11: exec credential plugins that hang or answer late ----
# term_while_hanging NOTE: SIGTERM the agent while its plugin ($ppid, child $gpid) hangs; the
# agent ends at once, exit 0, and takes the plugin and the plugin's child with it.
term_while_hanging() {
	local t0 rc term_s
	t0=$(now)
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID"
	rc=$?
	AGENT_PID=""
	term_s=$(elapsed "$t0" "$(now)")
	check "  SIGTERM ends the agent in $term_s s$1, exit 0 (got $rc)" \
		python3 -c "import sys; sys.exit(0 if $term_s < 2.5 and $rc == 0 else 1)"
	check "  the plugin is gone" wait_for "plugin gone" 20 eval '! alive "$ppid"'
	check "  and so is the child it started" wait_for "child gone" 20 eval '! alive "$gpid"'
}

P=$TMP/plugin
mkdir -p "$P"
cat >"$P/plugin.sh" <<'PLUGIN'
#!/bin/sh
# hang: leave a child behind (holding stdout) and never answer; delay: answer after N s.
d=$PLUGIN_DIR
echo run >>"$d/runs"
echo $$ >"$d/plugin.pid"
printf 'debug: token=%s\nlevel=error msg="forged by the plugin"\n' "$(cat "$d/token")" >&2
if [ -f "$d/hang" ]; then
	sleep 100000 &
	echo $! >"$d/grandchild.pid"
	sleep 100000
fi
[ -f "$d/delay" ] && sleep "$(cat "$d/delay")"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\n' \
	"$(cat "$d/token")"
PLUGIN
chmod 0755 "$P/plugin.sh"
tr -d '\n' <"$TOKEN_FILE" >"$P/token"
kubeconfig_write "    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: plugin/plugin.sh
      env: [{name: PLUGIN_DIR, value: $P}]"

# A plugin that hangs from the start: nothing goes out without a credential, and SIGTERM
# still ends the agent at once.
touch "$P/hang"
mark=$(api_last_id)
"$BPFSVC" agent --kubeconfig "$KUBECONFIG_FILE" --cgroup "$CG" --pin-path "$PIN" --node-name node1 \
	-v 2>>"$AGENT_LOG" &
AGENT_PID=$!
wait_for "the plugin's child" 100 test -s "$P/grandchild.pid"
sleep 1
ppid=$(cat "$P/plugin.pid" 2>/dev/null)
gpid=$(cat "$P/grandchild.pid" 2>/dev/null)
check "hanging plugin: running, with its child (pids $ppid $gpid)" alive "$ppid"
check "  no request went out without its credential (queued, not sent)" test -z "$(reqlog "$mark")"
term_while_hanging " (was 59 s)"

# Synced with a working plugin, then a 401 makes the agent re-run it and the re-run hangs:
# the open watch still delivers events and signals are still served meanwhile.
rm -f "$P/hang" "$P/grandchild.pid" "$P/runs"
api_agent_start || { not_ok "agent start with the exec plugin"; tail -20 "$AGENT_LOG"; finish; exit 1; }
api_watchers 2 || { not_ok "watches open"; finish; exit 1; }
check "exec plugin: synced, one run" test "$(wc -l <"$P/runs")" -eq 1
touch "$P/hang"
mark=$(api_last_id)
api_fault '{"type":"unauthorized_until_token_changes"}'
api_fault '{"type":"end_watch","resource":"services"}'
wait_for "the re-run plugin's child" 100 test -s "$P/grandchild.pid"
ppid=$(cat "$P/plugin.pid" 2>/dev/null)
gpid=$(cat "$P/grandchild.pid" 2>/dev/null)
check "a 401 re-ran the plugin, which hangs (pids $ppid $gpid)" \
	test "$(reqlog "$mark" | grep -c ' services watch 401 ')" -ge 1 -a "$(wc -l <"$P/runs")" -eq 2
# Within ~3 s (a blocked loop would take the plugin's whole 30 s timeout).
toggle_fast() {
	current=$((3 - current))
	api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' "10.244.0.1$current")"
	reaches 10.96.0.10 80 "^pod$current:8080\$" 150
}
check "  while it hangs, an event on the open watch still reaches the datapath at once" toggle_fast
before=$(syncs)
kill -HUP "$AGENT_PID"
check "  and SIGHUP is still served (a resync)" wait_for "resync" 20 synced_past "$before"
check "  the plugin is still hanging (not given up on or blocking)" alive "$ppid"
term_while_hanging ""
ctl POST /control/faults/clear '{}' >/dev/null

# A plugin answering after 2 s: the requests wait for it, then a normal sync.
rm -f "$P/hang" "$P/runs"
echo 2 >"$P/delay"
mark=$(api_last_id)
t0=$(now)
api_agent_start || { not_ok "agent start with a slow exec plugin"; tail -20 "$AGENT_LOG"; }
sync_s=$(elapsed "$t0" "$(now)")
lines=$(reqlog "$mark")
check "slow plugin (2 s): synced after $sync_s s, one run" \
	python3 -c "import sys; sys.exit(0 if 2 <= $sync_s < 10 and $(wc -l <"$P/runs") == 1 else 1)"
check "  every request waited for the token: all authenticated, lists 200" \
	test "$(grep -c ' auth=token ' <<<"$lines")" -eq "$(wc -l <<<"$lines")" -a \
	"$(grep -c ' list 200 ' <<<"$lines")" -ge 2
check "  service traffic works" reaches 10.96.0.10 80 "^pod$current:8080\$"
check "  the plugin's stderr (a token, a forged line) never reaches the log" \
	bash -c "! grep -q -e 'forged by the plugin' -e '$(cat "$P/token")' '$AGENT_LOG'"
agent_stop
finish
