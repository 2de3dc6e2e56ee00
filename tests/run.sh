#!/usr/bin/env bash
# Run unit and/or end-to-end tests and print one final line "N passed, N failed".
# Each test program prints "ok - ..." / "not ok - ..." lines and its own "N passed, N failed";
# a program that dies without that line, or exits non-zero, counts as a failure.
set -u
# Debian's python3 first: python3-h2 and python3-kubernetes are installed for it, and a
# python3 from pyenv or a venv earlier in PATH would not see them.
PATH=/usr/bin:$PATH
cd "$(dirname "$0")/.."
what=${1:-all}
total_pass=0
total_fail=0
failed_names=()

run_one() {
	local name=$1 out rc line p f
	shift
	out=$(mktemp)
	printf '=== %s\n' "$name"
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "not ok - $name ended without a result line (exit $rc)"
		total_fail=$((total_fail + 1))
		failed_names+=("$name")
		return
	fi
	p=${line%% passed*}
	f=${line#*passed, }
	f=${f%% failed*}
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited $rc"
		total_fail=$((total_fail + 1))
	fi
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then failed_names+=("$name"); fi
}

if [ "$what" = unit ] || [ "$what" = all ]; then
	for t in build/asan/tests/test_*; do
		[ -x "$t" ] || continue
		case $t in *.d) continue ;; esac
		run_one "unit/$(basename "$t")" "$t"
	done
fi

if [ "$what" = fuzz ] || [ "$what" = all ]; then
	# Each libFuzzer target replays its committed corpus (past crash inputs included) and
	# fuzzes a few seconds, so the targets keep building and old findings stay fixed.
	run_one "fuzz/smoke" bash tests/fuzz/smoke.sh "${FUZZ_DIR:-build/fuzz}"
fi

if [ "$what" = e2e ] || [ "$what" = all ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "not ok - e2e tests need root (namespaces, BPF)"
		total_fail=$((total_fail + 1))
	else
		# The agent runs under ASan/UBSan in the end-to-end tests too.
		export BPFSVC=${BPFSVC:-$PWD/build/asan/bpfsvc}
		export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
		export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
		for t in tests/e2e/test_*.sh; do
			run_one "e2e/$(basename "$t" .sh)" bash "$t"
		done
		# The agent speaks HTTP/2 by default; HTTP/1.1 (--api-http-version 1.1) stays a
		# tested mode for the watch and fault scenarios.
		for t in test_api_watch test_api_faults; do
			run_one "e2e/$t@http1.1" env API_HTTP=1.1 bash "tests/e2e/$t.sh"
		done
		# The fake API server the e2e tests rely on is itself checked against curl.
		run_one "apiserver/selftest" bash tests/apiserver/selftest.sh
	fi
fi

if [ ${#failed_names[@]} -gt 0 ]; then
	printf '# failing: %s\n' "${failed_names[*]}"
fi
printf '%d passed, %d failed\n' "$total_pass" "$total_fail"
[ "$total_fail" -eq 0 ]
