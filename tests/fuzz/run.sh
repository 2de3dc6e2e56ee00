#!/usr/bin/env bash
# make fuzz: run every fuzz target for SECONDS each, one after the other, seeded with the
# committed corpus. New corpus entries and crash artifacts go under FUZZDIR (the build
# directory), never into tests/fuzz/corpus. Exits non-zero if any target found something.
# Usage: tests/fuzz/run.sh FUZZDIR SECONDS
set -u
FUZZ_SRC=$(cd "$(dirname "$0")" && pwd)
. "$FUZZ_SRC/lib.sh"
dir=${1:?usage: run.sh FUZZDIR SECONDS}
secs=${2:-60}
bad=()

for t in $(fuzz_targets); do
	bin=$dir/fuzz_$t
	dict=$(fuzz_dict "$t")
	mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t"
	echo "=== fuzz_$t for ${secs}s (new inputs: $dir/corpus/$t)"
	if [ ! -x "$bin" ]; then
		echo "fuzz_$t: $bin not built"
		bad+=("$t")
		continue
	fi
	if ! "$bin" "${FUZZ_FLAGS[@]}" ${dict:+-dict="$dict"} -max_total_time="$secs" \
		-print_final_stats=1 -artifact_prefix="$dir/artifacts/$t/" \
		"$dir/corpus/$t" "$FUZZ_SRC/corpus/$t" 2>"$dir/fuzz_$t.log"; then
		tail -n 40 "$dir/fuzz_$t.log"
		echo "fuzz_$t: FAILED, input under $dir/artifacts/$t/"
		bad+=("$t")
		continue
	fi
	grep -E '^#[0-9]+ +DONE|^stat::number_of_executed_units|^stat::average_exec_per_sec' \
		"$dir/fuzz_$t.log"
done
if [ ${#bad[@]} -gt 0 ]; then
	echo "fuzz: findings or failures in: ${bad[*]}"
	exit 1
fi
echo "fuzz: no findings"
