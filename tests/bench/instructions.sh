#!/usr/bin/env bash
# Instructions per delivered post: S1 behind nginx, each backend under
# valgrind's callgrind, which counts the instructions it executes.  The
# count does not depend on what else the machine runs, so an A/B of two
# binaries needs one run each, where CPU time per post (make bench) needs
# many: it is the measure for a change that cuts work, not waits.  It does
# not see cache misses or the kernel (system time, context switches):
# make bench stays the measure of speed.
#
# Environment (as tests/bench/bench.sh, which runs the systems):
#   BEEP_BIN          our backend (build/beep-signal)
#   BENCH_BEEP_BIN_B  another of ours, counted too (system nginx-b)
#   INSTR_TUNABLES_B  its allocator settings, when they are not this tree's
#                     (GLIBC_TUNABLES' value, e.g. an older alloc_tune.h's)
#   DESIGN_BIN        the design system's backend (build/bench-design)
#   LOADGEN           as bench.sh
#   BENCH_S1_POSTS    S1's measured posts (20000)
#   BENCH_OUT         where the callgrind files go (bench/tmp/instructions)
#   INSTR_TOP         functions listed per system, by own count (12)
#
# Ours runs with the allocator settings it gives itself (alloc_tune.h's),
# which it does not under valgrind: they are set here.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BEEP_BIN=${BEEP_BIN:-$ROOT/build/beep-signal}
DESIGN_BIN=${DESIGN_BIN:-$ROOT/build/bench-design}
OUT=${BENCH_OUT:-$ROOT/bench/tmp/instructions}
TOP=${INSTR_TOP:-12}
command -v valgrind >/dev/null ||
	{ echo "instructions: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
TUNABLES=$(sed -n 's/^#define ALLOC_TUNE_\(TCACHE\|NNS\|STATIC_TLS\) "\(.*\)"$/\2/p' \
	"$ROOT/include/alloc_tune.h" | paste -sd: -)
[ -n "$TUNABLES" ] || { echo "instructions: no settings in alloc_tune.h" >&2; exit 1; }

mkdir -p "$OUT"
WRAP=$(mktemp -d /tmp/beep-instr.XXXXXX)
trap 'rm -rf "$WRAP"' EXIT

# wrap NAME BINARY TUNABLES: a script that runs BINARY under callgrind.
wrap() {
	cat >"$WRAP/$1" <<EOF
#!/bin/sh
GLIBC_TUNABLES=$3 exec valgrind --tool=callgrind --max-threads=4000 -q \\
    --callgrind-out-file=$OUT/$1.callgrind "$2" "\$@"
EOF
	chmod +x "$WRAP/$1"
	rm -f "$OUT/$1.callgrind"
}

systems="nginx nginx-design"
wrap nginx "$BEEP_BIN" "$TUNABLES"
wrap nginx-design "$DESIGN_BIN" "${GLIBC_TUNABLES:-}"
if [ -n "${BENCH_BEEP_BIN_B:-}" ]; then
	systems="nginx nginx-b nginx-design"
	wrap nginx-b "$BENCH_BEEP_BIN_B" "${INSTR_TUNABLES_B:-$TUNABLES}"
fi

env BEEP_BIN="$WRAP/nginx" DESIGN_BIN="$WRAP/nginx-design" \
    ${BENCH_BEEP_BIN_B:+BENCH_BEEP_BIN_B="$WRAP/nginx-b"} \
    BENCH_SYSTEMS="$systems" BENCH_SCENARIOS=S1 BENCH_REPEAT=1 \
    BENCH_OUT="$OUT" bash "$ROOT/tests/bench/bench.sh" >"$OUT/bench.log" 2>&1 ||
	{ tail -n 30 "$OUT/bench.log" >&2; exit 1; }
grep -E '^  (delivery|posts) ' "$OUT/bench.log" >&2 || true

# Every POST, warm-up included, and the 1,000 subscriptions and start-up
# (a few per cent) are in the count: per post is total / posts sent.
json=$(find "$OUT" -maxdepth 1 -name '*.json' -newer "$WRAP/nginx" | head -n 1)
sent=$(jq '.runs[0].result.sent' "$json")
for sys in $systems; do
	callgrind_annotate "$OUT/$sys.callgrind" >"$OUT/$sys.txt" 2>/dev/null
done
printf '\n| system | instructions per post |\n|---|--:|\n'
for sys in $systems; do
	total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' \
	    "$OUT/$sys.txt")
	printf '| %s | %s |\n' "$sys" "$((total / sent))"
done
for sys in $systems; do
	printf '\n%s: the top %s functions, own instructions per post\n' \
	    "$sys" "$TOP"
	awk -v n="$sent" -v top="$TOP" '
	    /file:function/ { on = 1; next }
	    on && /^ *[0-9,]+ / && shown < top {
		v = $1; gsub(",", "", v)
		fn = $0; sub(/^ *[0-9,]+ \([^)]*\) +/, "", fn)
		printf "%8d  %s\n", v / n, fn; shown++ }' "$OUT/$sys.txt"
done
