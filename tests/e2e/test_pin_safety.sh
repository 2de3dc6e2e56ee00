#!/usr/bin/env bash
# The pin directory is trusted only when no other user can touch it (issue 7, items 5 and 6):
# the agent refuses a pin directory, or a directory above it on bpffs, that another user owns
# or can write, never walks through a symlink there, and creates what is missing 0700;
# cleanup acts only on bpffs, removes only bpfsvc's own pins and never follows a symlink.
# The unprivileged user is `nobody`.
. "$(dirname "$0")/lib.sh"

topo_up 1 || { not_ok "topology"; finish; exit 1; }
write_objects "$(svc default web 10.96.0.10 'http:80:8080:TCP')" \
	"$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11')"
BPF=$TMP/bpffs
# nobody must reach the bpffs mount (mode 1777, as /sys/fs/bpf often is) to attack it.
chmod 0711 "$TMP"
# Agents expected to refuse get a cgroup of their own: should one accept (as before the fix),
# what it attaches there cannot be mistaken for the datapath under test.
RCG=${CG}-refused
mkdir "$RCG" && EXTRA_CGROUPS+=("$RCG")

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
bpfsvc_attached() { bpftool cgroup show "${1:-$CG}" | grep -c 'bpfsvc_'; }
translated() { test "$(probe tcp 10.96.0.10 80 --timeout-ms 300)" = "pod1:8080"; }
not_translated() { grep -q '^ERR' <<<"$(probe tcp 10.96.0.10 80 --timeout-ms 300)"; }

# refused_agent DIR NAME: run the agent on DIR, expecting it to give up; its stderr in
# $TMP/NAME.err (and in the agent log, so sanitizer reports count). A refusal is quick;
# an agent that accepted the directory runs until the timeout (status 124).
refused_agent() {
	local rc
	timeout 20 "$BPFSVC" agent --from-file "$OBJS" --cgroup "$RCG" --pin-path "$1" \
		--node-name node1 2>"$TMP/$2.err"
	rc=$?
	cat "$TMP/$2.err" >>"$AGENT_LOG"
	return "$rc"
}

# (a) A pin directory another user made 0777 (where they could unpin the links, detaching
#     the datapath, or hold the lock): refused, nothing pinned or attached.
D=$BPF/by-nobody
as_nobody mkdir -m 0777 "$D"
refused_agent "$D" a
rc=$?
check "pin dir made 0777 by nobody: the agent refuses (exit 1, was $rc)" test "$rc" -eq 1
check "  saying whose it is" grep -q "pin directory $D is owned by uid 65534, not root; refusing" "$TMP/a.err"
check "  and pins nothing there" test -z "$(ls -A "$D")"
check "  and attaches nothing" test "$(bpfsvc_attached "$RCG")" -eq 0

D=$BPF/open-root
mkdir -m 0777 "$D"
refused_agent "$D" a2
check "root-owned pin dir writable by others: refused naming its mode" \
	grep -q "pin directory $D is writable by others (mode 0777); refusing" "$TMP/a2.err"
check "  and pins nothing there" test -z "$(ls -A "$D")"

# Readable is enough to hold the agent's flock: nobody's `flock` would keep it from starting.
D=$BPF/readable
mkdir -m 0755 "$D"
refused_agent "$D" a3
check "root-owned pin dir open to others (0755): refused, since anyone could hold its lock" \
	grep -q "pin directory $D is open to other users (mode 0755).*lock" "$TMP/a3.err"
check "  and pins nothing there" test -z "$(ls -A "$D")"

# (b) A directory above the pin directory that nobody owns: they could swap the pin
#     directory for their own.
as_nobody mkdir -m 0755 "$BPF/nobody-parent"
refused_agent "$BPF/nobody-parent/pins" b
rc=$?
check "parent dir owned by nobody: the agent refuses (exit 1, was $rc)" test "$rc" -eq 1
check "  naming the parent" grep -q "directory above the pin directory $BPF/nobody-parent is owned by uid 65534, not root; refusing" "$TMP/b.err"
check "  and creates nothing in it" test ! -e "$BPF/nobody-parent/pins"

# A symlink nobody planted on bpffs, pointing at a directory of theirs.
as_nobody mkdir -m 0700 "$BPF/nobody-real"
as_nobody ln -s "$BPF/nobody-real" "$BPF/nobody-link"
refused_agent "$BPF/nobody-link/pins" b2
check "a symlink on the way below the bpffs mount: refused" \
	grep -q "directory above the pin directory $BPF/nobody-link is a symlink; refusing" "$TMP/b2.err"
check "  and nothing created at its target" test ! -e "$BPF/nobody-real/pins"

mkdir -m 0700 "$TMP/plain"
refused_agent "$TMP/plain/pins" b3
check "a pin path off bpffs: refused" grep -q "pin path $TMP/plain/pins is not on a bpf filesystem" "$TMP/b3.err"

# (c) A fresh path: created 0700 (whatever the umask), owned by root, and the agent works.
MAIN_PIN=$PIN
PIN=$BPF/fresh/deeper/pins
umask 000
agent_start
check "fresh pin path two directories deep: the agent starts" test $? -eq 0
umask 022
for d in "$PIN" "$BPF/fresh/deeper" "$BPF/fresh"; do
	check "  $d is created 0700 and root's ($(stat -c '%a %u' "$d"))" test "$(stat -c '%a %u' "$d")" = "700 0"
done
check "  the VIP is translated" translated
agent_stop
"$BPFSVC" cleanup --pin-path "$PIN"
check "  and cleanup takes it all away again" test $? -eq 0 -a ! -e "$PIN" -a "$(bpfsvc_attached)" -eq 0
PIN=$MAIN_PIN
agent_start
check "fresh pin path: the agent starts" test $? -eq 0
check "  the pin directory is created 0700 and root's ($(stat -c '%a %u' "$PIN"))" test "$(stat -c '%a %u' "$PIN")" = "700 0"
check "  the VIP is translated" translated
as_nobody rm -f "$PIN/v1_link_connect4" 2>/dev/null
check "  nobody cannot unpin its links" test -e "$PIN/v1_link_connect4"
as_nobody sh -c "exec flock -n '$PIN' true" 2>/dev/null
check "  nobody cannot even open the pin directory to take its lock" test $? -ne 0
agent_stop

# (d) cleanup on an ordinary directory: refused, its files untouched.
echo keep >"$TMP/plain/important.conf"
echo keep >"$TMP/plain/data.db"
"$BPFSVC" cleanup --pin-path "$TMP/plain" 2>"$TMP/d.err"
rc=$?
check "cleanup on an ordinary directory: refused (exit 1, was $rc)" test "$rc" -eq 1
check "  saying it is not bpffs" grep -q "pin path $TMP/plain is not on a bpf filesystem" "$TMP/d.err"
check "  and its files are intact" test -s "$TMP/plain/important.conf" -a -s "$TMP/plain/data.db"
ln -s "$TMP/plain" "$BPF/to-plain"
"$BPFSVC" cleanup --pin-path "$BPF/to-plain" 2>"$TMP/d2.err"
rc=$?
check "cleanup through a symlink on bpffs to an ordinary directory: refused (exit $rc)" \
	test "$rc" -eq 1 -a -s "$TMP/plain/important.conf" -a -s "$TMP/plain/data.db"
check "  saying it is a symlink" grep -q "pin directory $BPF/to-plain is a symlink; refusing" "$TMP/d2.err"

# (f) Symlinks named like bpfsvc's pins, pointing at the live datapath's pins: cleanup of
#     their directory must not follow them (it used to detach the links they point at).
mkdir -m 0700 "$BPF/decoy"
ln -s "$PIN/v1_link_connect4" "$BPF/decoy/v1_link_connect4"
ln -s "$PIN/v1_bpfsvc_fe" "$BPF/decoy/v1_bpfsvc_fe"
check "(before) the stopped agent's datapath serves" translated
"$BPFSVC" cleanup --pin-path "$BPF/decoy" 2>"$TMP/f.err"
rc=$?
check "cleanup of a directory of symlinks named like pins: refused (exit 1, was $rc)" test "$rc" -eq 1
check "  naming the symlink" grep -Eq "$BPF/decoy/(v1_link_connect4|v1_bpfsvc_fe) is a symlink, not a bpfsvc pin; refusing" "$TMP/f.err"
check "  the links they point at stay attached: the VIP is still translated" translated
check "  and the symlinks are left" test -L "$BPF/decoy/v1_link_connect4" -a -L "$BPF/decoy/v1_bpfsvc_fe"
check "  and their targets too" test -e "$PIN/v1_link_connect4" -a -e "$PIN/v1_bpfsvc_fe"
rm -r "$BPF/decoy"

# (g) Normal cleanup after a normal run removes everything and detaches.
agent_start || not_ok "agent restart on the created pin path"
agent_stop
"$BPFSVC" cleanup --pin-path "$PIN" 2>"$TMP/g.err"
rc=$?
check "normal cleanup exits 0 (was $rc)" test "$rc" -eq 0
check "  says nothing" test ! -s "$TMP/g.err"
check "  removes the pin directory" test ! -e "$PIN"
check "  detaches the programs" test "$(bpfsvc_attached)" -eq 0
check "  the VIP is no longer translated" not_translated
"$BPFSVC" cleanup --pin-path "$PIN"
check "cleanup of a pin path that is gone: exit 0" test $? -eq 0

# Pins of a partial attach (or an older bpfsvc) lack some names: cleanup still removes the rest.
agent_start || not_ok "agent start for a partial cleanup"
agent_stop
rm "$PIN/v1_link_getpeername6"
"$BPFSVC" cleanup --pin-path "$PIN" 2>"$TMP/p.err"
rc=$?
check "cleanup with a pin missing: exit 0 (was $rc), directory gone" test "$rc" -eq 0 -a ! -e "$PIN"
check "  the programs are detached" test "$(bpfsvc_attached)" -eq 0

# (e) A bpffs directory that also holds another tool's map: only bpfsvc's pins go.
agent_start || not_ok "agent start for (e)"
agent_stop
bpftool map create "$PIN/othermap" type hash key 4 value 4 entries 8 name othermap
"$BPFSVC" cleanup --pin-path "$PIN" 2>"$TMP/e.err"
rc=$?
check "cleanup beside another tool's map: exit 0 (was $rc)" test "$rc" -eq 0
check "  the other map stays" test -e "$PIN/othermap"
check "  it is all that stays ($(ls "$PIN" | tr '\n' ' '))" test "$(ls -A "$PIN")" = othermap
check "  the directory is kept, and cleanup says why" grep -q "kept $PIN: it holds entries that are not bpfsvc's" "$TMP/e.err"
check "  the programs are detached" test "$(bpfsvc_attached)" -eq 0

mkdir -m 0700 "$BPF/other"
bpftool map create "$BPF/other/othermap" type hash key 4 value 4 entries 8 name othermap
"$BPFSVC" cleanup --pin-path "$BPF/other" 2>"$TMP/e2.err"
rc=$?
check "cleanup of a bpffs directory without bpfsvc pins: refused (exit 1, was $rc)" test "$rc" -eq 1
check "  saying so" grep -q "$BPF/other holds no bpfsvc pins; refusing" "$TMP/e2.err"
check "  the map stays" test -e "$BPF/other/othermap"

# A map of another tool that happens to be pinned under a bpfsvc name.
bpftool map create "$BPF/other/v1_bpfsvc_fe" type hash key 4 value 4 entries 8 name notours
"$BPFSVC" cleanup --pin-path "$BPF/other" 2>"$TMP/e3.err"
check "a foreign map under a bpfsvc pin name: refused" grep -q "$BPF/other/v1_bpfsvc_fe is not bpfsvc's map; refusing" "$TMP/e3.err"
check "  and both maps stay" test -e "$BPF/other/v1_bpfsvc_fe" -a -e "$BPF/other/othermap"
# list reads only what it can trust: a map of another layout under a bpfsvc name would have
# its values copied into bpfsvc's structs.
for n in bpfsvc_slots bpfsvc_svcs bpfsvc_stats; do
	bpftool map create "$BPF/other/v1_$n" type hash key 4 value 4 entries 8 name "$n"
done
"$BPFSVC" list --pin-path "$BPF/other" >/dev/null 2>"$TMP/l.err"
rc=$?
check "list on maps of another layout: refused (exit $rc)" test "$rc" -ne 0
check "  naming the map" grep -q "$BPF/other/v1_bpfsvc_fe is not a map of this bpfsvc" "$TMP/l.err"
"$BPFSVC" list --pin-path "$BPF/nobody-parent/x" >/dev/null 2>"$TMP/l2.err"
check "list below a directory nobody owns: refused" grep -q "owned by uid 65534, not root; refusing" "$TMP/l2.err"

bpftool map create "$BPF/rootmap" type hash key 4 value 4 entries 8 name rootmap
"$BPFSVC" cleanup --pin-path "$BPF" 2>"$TMP/e4.err"
rc=$?
check "cleanup of the bpffs mount root (1777): refused (exit 1, was $rc)" test "$rc" -eq 1
check "  saying why" grep -q "pin directory $BPF is writable by others (mode 1777); refusing" "$TMP/e4.err"
check "  another tool's map there stays" test -e "$BPF/rootmap"

"$BPFSVC" cleanup --pin-path "$BPF/by-nobody" 2>"$TMP/e5.err"
check "cleanup of a directory another user owns: refused" \
	grep -q "pin directory $BPF/by-nobody is owned by uid 65534, not root; refusing" "$TMP/e5.err"
finish
