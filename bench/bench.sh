#!/usr/bin/env bash
# bpfsvc against kube-proxy's iptables and nftables modes, side by side in one run.
#
#   bench/bench.sh [--quick | --full] [--out DIR] [--modes "iptables nftables bpfsvc"]
#                  [--sizes "1 1000 10000"] [--endpoints M] [--samples K] [--budget S]
#
# --quick (make bench): N in 1 1000 10000, load budget 120 s a step, 2000 samples.
# --full (make bench-full): N up to 100000, budget 600 s a step, 5000 samples.
# Every (mode, N) step runs in fresh namespaces (bench/step.sh). A load over budget is
# reported as such and that mode skips the larger sizes; nothing is dropped silently.
# Output in DIR: results.csv (every raw figure), results.md (tables), *.png (gnuplot).
set -u
cd "$(dirname "$0")/.."
preset=quick out="" modes="iptables nftables bpfsvc" sizes="" m=10 samples="" budget=""
while [ $# -gt 0 ]; do
	case $1 in
	--quick) preset=quick ;;
	--full) preset=full ;;
	--out) out=$2; shift ;;
	--modes) modes=$2; shift ;;
	--sizes) sizes=$2; shift ;;
	--endpoints) m=$2; shift ;;
	--samples) samples=$2; shift ;;
	--budget) budget=$2; shift ;;
	*) echo "bench.sh: unknown argument \"$1\"" >&2; exit 2 ;;
	esac
	shift
done
if [ "$preset" = quick ]; then
	sizes=${sizes:-"1 1000 10000"} samples=${samples:-2000} budget=${budget:-120}
else
	sizes=${sizes:-"1 1000 10000 30000 100000"} samples=${samples:-5000} budget=${budget:-600}
fi
out=${out:-build/bench-results/$preset}
mkdir -p "$out"
csv=$out/results.csv
work=$(mktemp -d /tmp/bsvc-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

{
	echo "# machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr), $(. /etc/os-release; echo "$PRETTY_NAME")"
	echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "# command: bench/bench.sh --$preset --sizes \"$sizes\" --endpoints $m --samples $samples --budget $budget"
	echo "mode,n,m,metric,value"
} >"$csv"

declare -A stopped=()
total=0
for n in $sizes; do for mode in $modes; do total=$((total + 1)); done; done
step=0
start=$(date +%s)
for n in $sizes; do
	data=$work/n$n
	printf '[%3ds] generating %s services x %s endpoints\n' $(($(date +%s) - start)) "$n" "$m"
	python3 bench/gen.py "$n" "$m" "$data" || { echo "bench: generating n=$n failed" >&2; exit 1; }
	for mode in $modes; do
		step=$((step + 1))
		if [ -n "${stopped[$mode]:-}" ]; then
			printf '%s,%s,%s,status,skipped_after_budget\n' "$mode" "$n" "$m" >>"$csv"
			printf '[%3ds] %d/%d %-8s n=%-6s skipped (a smaller size ran over budget)\n' \
				$(($(date +%s) - start)) "$step" "$total" "$mode" "$n"
			continue
		fi
		printf '[%3ds] %d/%d %-8s n=%-6s ...\n' $(($(date +%s) - start)) "$step" "$total" "$mode" "$n"
		bash bench/step.sh "$mode" "$n" "$m" "$data" "$budget" "$samples" >>"$csv"
		rc=$?
		if [ "$rc" -eq 3 ]; then
			stopped[$mode]=1
		elif [ "$rc" -ne 0 ]; then
			printf '%s,%s,%s,status,failed\n' "$mode" "$n" "$m" >>"$csv"
		fi
	done
	rm -rf "$data"
done
printf '[%3ds] done; writing %s\n' $(($(date +%s) - start)) "$out"
python3 bench/report.py "$csv" "$out"
