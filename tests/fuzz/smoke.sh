#!/usr/bin/env bash
# CI smoke of the fuzz targets, so that they keep building and the committed corpus (which
# holds past crash inputs) still passes: each target replays its corpus, then fuzzes for a
# few seconds. Prints "ok - ..." / "not ok - ..." per target and "N passed, N failed".
# Usage: tests/fuzz/smoke.sh [FUZZDIR] (default build/fuzz)
set -u
FUZZ_SRC=$(cd "$(dirname "$0")" && pwd)
. "$FUZZ_SRC/lib.sh"
dir=${1:-build/fuzz}
secs=${FUZZ_SMOKE_SECS:-5}
passed=0
failed=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

for t in $(fuzz_targets); do
	bin=$dir/fuzz_$t
	dict=$(fuzz_dict "$t")
	if [ ! -x "$bin" ]; then
		echo "not ok - fuzz_$t: $bin not built"
		failed=$((failed + 1))
		continue
	fi
	mkdir -p "$scratch/$t"
	log=$scratch/$t.log
	if "$bin" "${FUZZ_FLAGS[@]}" ${dict:+-dict="$dict"} -max_total_time="$secs" \
		-print_final_stats=1 -artifact_prefix="$scratch/$t-" \
		"$scratch/$t" "$FUZZ_SRC/corpus/$t" >"$log" 2>&1; then
		n=$(find "$FUZZ_SRC/corpus/$t" -type f | wc -l)
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "ok - fuzz_$t: $n committed inputs replayed, ${runs:-?} runs in ${secs}s, no finding"
		passed=$((passed + 1))
	else
		grep -E 'ERROR|SUMMARY|property violated|^ +#[0-9]+ ' "$log" | head -n 30
		echo "not ok - fuzz_$t: finding (see above; rerun: $bin $FUZZ_SRC/corpus/$t)"
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
