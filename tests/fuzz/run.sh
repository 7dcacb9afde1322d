#!/bin/sh
# Run one libFuzzer driver for $FUZZ_SECONDS (default 30) seconds:
#   tests/fuzz/run.sh NAME BINARY
# The committed seeds (tests/fuzz/corpus/NAME) are only read: the fuzzer
# works on a scratch copy of them, removed afterwards.  A crash, leak,
# timeout or out-of-memory fails the run; the input that caused it is
# left in build/fuzz/artifacts/ and the log's end is printed.
set -eu
name=$1
bin=$2
seconds=${FUZZ_SECONDS:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
seeds=$top/tests/fuzz/corpus/$name
artifacts=$top/build/fuzz/artifacts
log=$top/build/fuzz/$name.log
work=$(mktemp -d "${TMPDIR:-/tmp}/beep-fuzz-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$artifacts"
cp "$seeds"/* "$work"/

dict=
[ -f "$top/tests/fuzz/$name.dict" ] && dict="-dict=$top/tests/fuzz/$name.dict"

echo "fuzz $name: ${seconds}s (log: build/fuzz/$name.log)"
# shellcheck disable=SC2086
if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
	LSAN_OPTIONS=suppressions=$top/tests/fuzz/lsan.supp \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	"$bin" -max_total_time="$seconds" -timeout=10 \
	-print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
	$dict "$work" >"$log" 2>&1; then
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" |
		sed "s/^/fuzz $name: /" || true
	exit 0
fi
echo "fuzz $name: FAILED; the end of build/fuzz/$name.log:" >&2
tail -n 60 "$log" >&2
exit 1
