#!/usr/bin/env bash
# make soak: beep-signal behind Caddy (the shipped Caddyfile) for a long run
# with churn, checked end to end by the load generator.
#
#   SOAK_STREAMS   streams (9000: users x 10 devices), one per device
#   SOAK_RATE      posts per second in all (1000), to random devices
#   SOAK_CHURN     streams cut per second at random (20); each reconnects at
#                  once with Last-Event-ID, as EventSource does
#   SOAK_SECONDS   how long the posts run (600)
#   SOAK_WARMUP    seconds excluded from the flatness check (SOAK_SECONDS/5)
#   SOAK_OUT       output directory (bench/soak/)
#   BEEP_BIN, LOADGEN, CADDYFILE; BEEP_* are passed to the backend.
#
# Pass/fail: loadgen's own verdict (every accepted message delivered exactly
# once and in order per device, no reset, no timeout), no `error` line or
# sanitizer report in the backend's log, and flat curves after the warm-up:
# the mean of the last quarter of the samples against the mean of the
# quarter after the warm-up, RSS within 5% + 8 MiB and threads within
# 2% of SOAK_STREAMS + 32 (ghost streams, whose departure Caddy reveals
# only after a few writes, come and go with the churn).  The RSS bound
# fails the steady rise of glibc's per-thread caches (155 -> 179 MiB in
# 10 minutes at 9,000 streams, before the backend turned them off: see
# src/alloc_tune.c), which the earlier 10% + 16 MiB let pass.
#
# Writes SOAK_OUT/soak-<UTC time>.{tsv,json,png,log}: the time series
# (seconds; RSS KiB, threads, fds of the backend, then of Caddy; p99 and max
# latency in ms of the events received in each second; delivered, resumed,
# resets so far), the load generator's report with the settings and the
# flatness figures, the plot, and the backend's log.
set -euo pipefail

# The plot of time series $1.tsv into $1.png, titled $2.
plot() {
	# The columns after the processes' (RSS, threads, fds each, as many
	# processes as the load generator watches): p99, max, delivered,
	# resumed, resets.
	local nf p99 max
	nf=$(awk 'NR == 1 { print NF; exit }' "$1.tsv")
	p99=$((nf - 4))
	max=$((nf - 3))
	gnuplot <<EOF
set terminal pngcairo size 1000,900 font ",10"
set output "$1.png"
set multiplot layout 3,1 title "beep-signal soak: $2"
set grid
set xlabel "seconds"
set ylabel "backend RSS MiB"
set y2label "caddy RSS MiB"
set ytics nomirror
set y2tics
plot "$1.tsv" using 1:(\$2/1024) axes x1y1 with lines title "backend (left)", \
     "" using 1:(\$5/1024) axes x1y2 with lines title "caddy (right)"
unset y2tics
unset y2label
set ytics mirror
set ylabel "threads / fds"
plot "$1.tsv" using 1:3 with lines title "backend threads", \
     "" using 1:4 with lines title "backend fds"
set ylabel "ms"
set logscale y
plot "$1.tsv" using 1:(\$$p99 > 0 ? \$$p99 : 1/0) with lines title "p99 POST->event (per second)", \
     "" using 1:(\$$max > 0 ? \$$max : 1/0) with lines title "max"
unset multiplot
EOF
}

# tests/load/soak.sh --plot BASE redraws BASE.png from BASE.tsv and BASE.json.
if [ "${1:-}" = --plot ]; then
	plot "$2" "$(jq -r .settings "$2.json") ($(basename "$2"))"
	exit 0
fi

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BEEP_BIN=${BEEP_BIN:-$ROOT/build/beep-signal}
LOADGEN=${LOADGEN:-$ROOT/build/loadgen}
CADDYFILE=${CADDYFILE:-$ROOT/Caddyfile}
STREAMS=${SOAK_STREAMS:-9000}
RATE=${SOAK_RATE:-1000}
CHURN=${SOAK_CHURN:-20}
SECONDS_=${SOAK_SECONDS:-600}
WARMUP=${SOAK_WARMUP:-$((SECONDS_ / 5))}
OUT=${SOAK_OUT:-$ROOT/bench/soak}

# A departure behind Caddy costs about 4 keepalive intervals (DESIGN.md):
# at 2 s a cut stream's ghost lasts ~8 s, so 20 cuts/s keep ~160 ghosts
# (each a backend thread and two Caddy descriptors) under the 20,000 open
# files these machines allow. The defaults otherwise, but the per-address
# limits (every client here is 127.0.0.1).
export BEEP_KEEPALIVE=${BEEP_KEEPALIVE:-2}
export BEEP_RATE=${BEEP_RATE:-0}
export BEEP_MAX_STREAMS_PER_ADDRESS=${BEEP_MAX_STREAMS_PER_ADDRESS:-0}
export BEEP_MAX_STREAMS=${BEEP_MAX_STREAMS:-$((STREAMS + 3000))}

log() { printf 'soak: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
[ -x "$BEEP_BIN" ] || die "no backend at $BEEP_BIN (make)"
[ -x "$LOADGEN" ] || die "no load generator at $LOADGEN (make loadgen)"
command -v caddy >/dev/null || die "caddy missing (make deps)"
command -v gnuplot >/dev/null || die "gnuplot missing (scripts/deps.sh soak)"
command -v jq >/dev/null || die "jq missing (scripts/deps.sh soak)"
ulimit -n "$(ulimit -Hn)"

mkdir -p "$OUT"
STAMP=$(date -u +%Y-%m-%dT%H-%M-%SZ)
BASE="$OUT/soak-$STAMP"
RUN=$(mktemp -d "${TMPDIR:-/tmp}/beep-soak.XXXXXX")
PIDS=()
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$RUN"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$("$LOADGEN" --free-port)
OPS=$("$LOADGEN" --free-port)
"$BEEP_BIN" --listen "unix:$RUN/beep.sock" >"$RUN/backend.log" 2>&1 &
BACKEND_PID=$!
PIDS+=("$BACKEND_PID")
for _ in $(seq 200); do [ -S "$RUN/beep.sock" ] && break; sleep 0.05; done
[ -S "$RUN/beep.sock" ] || die "backend did not start: $(cat "$RUN/backend.log")"
mkdir -p "$RUN/home"
env SITE_ADDRESS=":$PORT" CADDY_BIND=127.0.0.1 CADDY_ADMIN=off \
    OPS_PORT="$OPS" BEEP_SOCKET="$RUN/beep.sock" HOME="$RUN/home" \
    XDG_DATA_HOME="$RUN/home/data" XDG_CONFIG_HOME="$RUN/home/config" \
    XDG_CACHE_HOME="$RUN/home/cache" \
    caddy run --config "$CADDYFILE" --adapter caddyfile >"$RUN/caddy.log" 2>&1 &
CADDY_PID=$!
PIDS+=("$CADDY_PID")
for _ in $(seq 200); do
	curl -fsS -m 2 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
	sleep 0.05
done
curl -fsS -m 2 "http://127.0.0.1:$PORT/healthz" >/dev/null || die "caddy not ready"

USERS=$(( (STREAMS + 9) / 10 ))
log "$((USERS * 10)) streams, $RATE posts/s, $CHURN cuts/s for $SECONDS_ s (warm-up $WARMUP s) on port $PORT"
set +e
"$LOADGEN" --port "$PORT" --users "$USERS" --devices 10 \
    --posts $((RATE * SECONDS_)) --rate "$RATE" --conns 16 \
    --churn "$CHURN" --sub-concurrency 256 --settle 2000 --drain 30000 \
    --timeout $((SECONDS_ + 600)) --samples "$BASE.tsv" --sample-ms 1000 \
    --pids "beep=$BACKEND_PID,caddy=$CADDY_PID" --label soak \
    >"$RUN/loadgen.out"
LG_RC=$?
set -e
cat "$RUN/loadgen.out" | grep -v '^{' >&2 || true
HEALTH=$(curl -fsS -m 5 "http://127.0.0.1:$PORT/healthz" || echo '{}')
kill -TERM "$BACKEND_PID" "$CADDY_PID" 2>/dev/null || true
wait "$BACKEND_PID" 2>/dev/null || true
wait "$CADDY_PID" 2>/dev/null || true
PIDS=()
cp "$RUN/backend.log" "$BASE.log"

# The posting phase in the time series: from the first sample after the
# subscriptions (delivered > 0) on. Flatness over the samples after the
# warm-up: first quarter against last quarter (means).
FLAT=$(awk -v warm="$WARMUP" -v streams="$STREAMS" '
	$(NF - 2) > 0 && t0 == "" { t0 = $1 }
	t0 != "" && $1 - t0 >= warm { n++; t[n] = $1; rss[n] = $2; th[n] = $3 }
	END {
		if (n < 8) { print "{\"samples_after_warmup\":" n ",\"flat\":false}"; exit }
		q = int(n / 4)
		for (i = 1; i <= q; i++) { r1 += rss[i]; t1 += th[i] }
		for (i = n - q + 1; i <= n; i++) { r2 += rss[i]; t2 += th[i] }
		r1 /= q; r2 /= q; t1 /= q; t2 /= q
		rok = (r2 - r1) <= 0.05 * r1 + 8192
		tok = (t2 - t1) <= 0.02 * streams + 32 && (t1 - t2) <= 0.02 * streams + 32
		printf "{\"samples_after_warmup\":%d,\"rss_kib_first_quarter\":%.0f,\"rss_kib_last_quarter\":%.0f,\"threads_first_quarter\":%.1f,\"threads_last_quarter\":%.1f,\"rss_flat\":%s,\"threads_flat\":%s,\"flat\":%s}\n", n, r1, r2, t1, t2, rok ? "true" : "false", tok ? "true" : "false", (rok && tok) ? "true" : "false"
	}' "$BASE.tsv")
LOG_PROBLEMS=$(grep -cE ' error |Sanitizer|runtime error:' "$BASE.log" || true)
REPORT=$(grep '^{' "$RUN/loadgen.out" | tail -1)
[ -n "$REPORT" ] || REPORT='{}'
jq -n --argjson report "$REPORT" --argjson flat "$FLAT" \
    --argjson health "$HEALTH" --arg rc "$LG_RC" \
    --arg log_problems "$LOG_PROBLEMS" \
    --arg git "$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)" \
    --arg caddy "$(caddy version 2>/dev/null | head -1)" \
    --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
    --arg cores "$(nproc)" \
    --arg settings "streams=$((USERS * 10)) rate=$RATE churn=$CHURN seconds=$SECONDS_ warmup=$WARMUP keepalive=$BEEP_KEEPALIVE" \
    '{settings:$settings, git:$git, caddy:$caddy, cpu:$cpu, cores:$cores,
      loadgen_exit:($rc|tonumber), log_problems:($log_problems|tonumber),
      flatness:$flat, healthz_at_end:$health, loadgen:$report}' >"$BASE.json"

plot "$BASE" "$((USERS * 10)) streams behind Caddy, $RATE posts/s, $CHURN cuts/s ($STAMP)"

log "wrote $BASE.{tsv,json,png,log}"
jq -c '{loadgen_exit, log_problems, flatness}' "$BASE.json" >&2
[ "$LG_RC" = 0 ] || die "FAIL: the load generator found loss, duplicates, resets or a timeout"
[ "$LOG_PROBLEMS" = 0 ] || die "FAIL: errors in the backend log"
jq -e '.flatness.flat' "$BASE.json" >/dev/null || die "FAIL: RSS or threads not flat after the warm-up"
log "PASS"
