# Shared by run.sh and smoke.sh: the targets (from the sources, so a target that failed to
# build is noticed) and the dictionary of each.
fuzz_targets() {
	local f
	for f in "$FUZZ_SRC"/fuzz_*.c; do
		f=${f##*/fuzz_}
		echo "${f%.c}"
	done
}

fuzz_dict() {
	case $1 in
	source | model) echo "$FUZZ_SRC/objects.dict" ;;
	*) [ -f "$FUZZ_SRC/$1.dict" ] && echo "$FUZZ_SRC/$1.dict" ;;
	esac
}

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
FUZZ_FLAGS=(-rss_limit_mb=2048 -timeout=10)
