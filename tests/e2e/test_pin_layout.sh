#!/usr/bin/env bash
# Pin names carry the layout version (issue 9): every pin is "v1_<name>". Pins of the
# unversioned layout an older bpfsvc left ("bpfsvc_fe", "link_connect4") are the same layout:
# the agent renames them and adopts their state, the links staying attached throughout;
# cleanup removes them too.
. "$(dirname "$0")/lib.sh"

topo_up 1 || { not_ok "topology"; finish; exit 1; }
write_objects "$(svc default web 10.96.0.10 'http:80:8080:TCP')" \
	"$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11')"
bpfsvc_attached() { bpftool cgroup show "$CG" | grep -c 'bpfsvc_'; }
translated() { test "$(probe tcp 10.96.0.10 80 --timeout-ms 300)" = "pod1:8080"; }
link_ids() { bpftool -j link show | grep -o '"id":[0-9]*' | sort | tr '\n' ' '; }

agent_start || { not_ok "agent start"; finish; exit 1; }
agent_stop
check "every pin is versioned ($(ls "$PIN" | tr '\n' ' '))" \
	test "$(ls "$PIN" | grep -vc '^v1_')" -eq 0 -a "$(ls "$PIN" | wc -l)" -eq 14

# Make it the unversioned layout of the release before, as that release pinned it.
for f in "$PIN"/v1_*; do mv "$f" "$PIN/$(basename "$f" | sed 's/^v1_//')"; done
check "(before) the unversioned layout serves" translated
links=$(link_ids)
agent_start || not_ok "agent start on the unversioned layout"
check "the agent adopts it: the VIP is translated" translated
check "  its pins now carry the version ($(ls "$PIN" | tr '\n' ' '))" \
	test "$(ls "$PIN" | grep -vc '^v1_')" -eq 0 -a "$(ls "$PIN" | wc -l)" -eq 14
check "  the same links stay, their programs replaced in place (no second attach)" \
	test "$(link_ids)" = "$links" -a "$(bpfsvc_attached)" -eq 8
check "  the frontend was adopted, not re-created" \
	grep -q 'msg="datapath ready".*adopted_frontends=1 ' "$AGENT_LOG"
"$BPFSVC" list --pin-path "$PIN" >"$TMP/list.out" 2>&1
check "  list reads the versioned pins" grep -q 'default/web' "$TMP/list.out"
agent_stop

# cleanup of the unversioned layout (a node never upgraded, then cleaned by the new binary).
for f in "$PIN"/v1_*; do mv "$f" "$PIN/$(basename "$f" | sed 's/^v1_//')"; done
"$BPFSVC" cleanup --pin-path "$PIN" 2>"$TMP/c.err"
rc=$?
check "cleanup removes the unversioned layout: exit 0 (was $rc), directory gone" \
	test "$rc" -eq 0 -a ! -e "$PIN"
check "  and detaches its programs" test "$(bpfsvc_attached)" -eq 0
finish
