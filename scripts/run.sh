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
# A Unix socket's path holds 107 bytes: from a checkout deeper than that,
# the socket goes to a directory of its own under TMPDIR, removed at the end.
tmprun=
if [ "${#sock}" -gt 107 ]; then
	tmprun=$(mktemp -d "${TMPDIR:-/tmp}/beep-run.XXXXXX")
	sock="$tmprun/beep-$PORT.sock"
fi
export SITE_ADDRESS="${SITE_ADDRESS:-:$PORT}"
export BEEP_SOCKET="$sock"
# The operations site (/metrics, /readyz) next to the public port.
export OPS_PORT="${OPS_PORT:-$((PORT + 7343))}"
export BEEP_WEB_ROOT="${BEEP_WEB_ROOT:-$(pwd)/web}"

"$BEEP_BIN" --listen "unix:$sock" &
backend=$!
caddy=
# Stops both and waits for them, then exits with $1.  Either may be gone
# already (it ended by itself, or a signal to the group stopped it): a
# failed kill must not end this function under set -e before the other is
# stopped and both are waited for.
stop() {
	trap - HUP INT TERM EXIT
	[ -z "$caddy" ] || kill -TERM "$caddy" 2>/dev/null || :
	kill -TERM "$backend" 2>/dev/null || :
	wait 2>/dev/null || :
	[ -z "$tmprun" ] || rm -rf "$tmprun"
	exit "$1"
}
# SIGHUP too: the terminal closing signals the whole group, and Caddy does
# not stop on SIGHUP.
trap 'stop 0' HUP INT TERM
trap 'stop $?' EXIT

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
# Either process ending ends both, and is a failure.
while kill -0 "$backend" 2>/dev/null && kill -0 "$caddy" 2>/dev/null; do
	wait -n 2>/dev/null || sleep 1
done
kill -0 "$caddy" 2>/dev/null || echo "beep-signal: caddy exited" >&2
kill -0 "$backend" 2>/dev/null || echo "beep-signal: the backend exited" >&2
stop 1
