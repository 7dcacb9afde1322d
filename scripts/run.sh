#!/bin/sh
# make run: the backend and Caddy in the foreground until Ctrl-C/SIGTERM.
# Every BEEP_* variable in the environment reaches the backend.  The
# backend's socket and Caddy's operations port follow PORT, so several
# `make run PORT=...` in one checkout (a local cluster, with one
# BEEP_REDIS_URL) never collide.
set -eu
: "${PORT:=1837}"
: "${BEEP_BIN:=build/beep-signal}"
rundir=${BEEP_RUN_DIR:-$(pwd)/build/run}
mkdir -p "$rundir"
sock="$rundir/beep-$PORT.sock"
export SITE_ADDRESS="${SITE_ADDRESS:-:$PORT}"
export BEEP_SOCKET="$sock"
# The operations site (/metrics, /readyz) next to the public port.
export OPS_PORT="${OPS_PORT:-$((PORT + 7343))}"
export BEEP_WEB_ROOT="${BEEP_WEB_ROOT:-$(pwd)/web}"

"$BEEP_BIN" --listen "unix:$sock" &
backend=$!
caddy=
stop() {
	trap - INT TERM EXIT
	[ -n "$caddy" ] && kill -TERM "$caddy" 2>/dev/null
	kill -TERM "$backend" 2>/dev/null
	wait 2>/dev/null
	exit 0
}
trap stop INT TERM EXIT

# Wait for the backend's socket before Caddy can route to it.
i=0
while [ ! -S "$sock" ] || ! kill -0 "$backend" 2>/dev/null; do
	kill -0 "$backend" 2>/dev/null || { echo "beep-signal failed to start" >&2; exit 1; }
	i=$((i + 1)); [ $i -gt 100 ] && { echo "no socket at $sock" >&2; exit 1; }
	sleep 0.05
done
caddy run --config "$(pwd)/Caddyfile" --adapter caddyfile &
caddy=$!
echo "beep-signal: serving on $SITE_ADDRESS (Ctrl-C to stop)" >&2
# Either process ending ends both.
while kill -0 "$backend" 2>/dev/null && kill -0 "$caddy" 2>/dev/null; do
	wait -n 2>/dev/null || sleep 1
done
stop
