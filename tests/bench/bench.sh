#!/usr/bin/env bash
# make bench: beep-signal behind Caddy, beep-signal behind nginx (FastCGI
# keep-alive, conf/nginx.conf), Nchan, and the "limit" systems (the same
# front and configuration in front of bench-limit, the cheapest FastCGI
# responder: tests/bench/limit.c), the "design" systems (the same again in
# front of bench-design, the cheapest responder of the design issue 14
# keeps: libfcgi, worker threads, kept connections parked between
# requests, a thread per stream woken through a condition variable:
# tests/bench/design.c), one after another,
# through the same scenarios with the same load generator on this
# machine's loopback.
#
# Per run the load generator reports, for the measured interval, the CPU
# per delivered post of each process (backend, front, itself; user and
# system from /proc/PID/stat) and its context switches per post.
#
# Writes bench/results/<UTC date-time>.json and .png (gnuplot: latency
# percentiles per system and scenario), prints one Markdown table with
# ratios against Nchan and the issue's targets, met or not.
#
# Each (system, scenario) run starts its servers afresh, so memory figures
# are those of a fresh process; servers are stopped by pid and the temp
# directory removed on every exit path.
#
# Environment:
#   BEEP_BIN          backend binary (build/beep-signal)
#   LOADGEN           load generator (build/loadgen)
#   LIMIT_BIN         the limit systems' backend (build/bench-limit)
#   DESIGN_BIN        the design systems' backend (build/bench-design)
#   BENCH_BEEP_BIN_B  another backend binary for systems caddy-b and
#                     nginx-b: a before/after in one run (BEEP_BIN)
#   BENCH_NGINX_CONF_B  the server block system nginx-b runs
#                     (BENCH_NGINX_CONF): a configuration's before/after
#   BENCH_SYSTEMS     subset of "caddy caddy-limit caddy-design nginx
#                     nginx-limit nginx-design nchan cluster3" (cluster3: three nodes joined by a
#                     redis-server; subscribers on node A through its Caddy,
#                     every POST through a front Caddy spreading them over
#                     nodes B and C: all cross-node; scenarios S1 and S4 only),
#                     plus, not run unless named, "lighttpd lighttpd-limit
#                     lighttpd-design" (conf/lighttpd.conf as shipped: its
#                     Lua scripts, a FastCGI connection per request; not
#                     S3: 9,000 streams take more descriptors than it
#                     keeps under 20,000)
#   BENCH_SCENARIOS   subset of "S1 S2 S4 S3"
#   BENCH_REPEAT      runs per (system, scenario); the median run is kept (3)
#   BENCH_S1_POSTS    S1's measured posts (20000): more for an A/B of CPU
#                     per post that a second's noise would drown
#   BENCH_S3_POSTS    S3's measured posts (10000, about half a second): the
#                     same, and for a profile of S3's posts rather than of
#                     its 9,000 subscriptions
#   BENCH_OUT         results directory (bench/results)
#   BENCH_CADDYFILE   Caddyfile (Caddyfile at the root)
#   BENCH_NGINX_CONF  beep-signal's nginx server block (conf/nginx.conf)
#   BENCH_NGINX_WORKERS  nginx worker_processes for both nginx systems (1)
#   BENCH_NGINX_KEEPALIVE  override the upstream keepalive of conf/nginx.conf
#   BENCH_PERF        1: perf record the backend during S1 of every system
#                     with a backend (BENCH_OUT/perf-SYSTEM-S1.data;
#                     perf report -i FILE)
#   BENCH_PERF_OPTS   perf record's options ("-e cpu-clock -F 999
#                     --call-graph dwarf,16384"; e.g. -e cpu-clock:u for
#                     the backend's own code only)
#   BENCH_STRACE      1: strace -c -f the backend during S1 (slows it:
#                     for syscall counts per post only;
#                     BENCH_OUT/strace-SYSTEM-S1.txt)
#   BENCH_PROFILE_SCENARIOS  the scenarios BENCH_PERF and BENCH_STRACE
#                     watch (S1)
#   BENCH_BACKEND_CPUS  run the backends (ours, bench-limit) on these
#                     CPUs only (taskset -c LIST; e.g. 1): every thread
#                     of ours on one CPU wakes the others without an
#                     inter-processor interrupt (README, Performance)
#   BEEP_*            passed to the backend (e.g. BEEP_MIN_IDLE)
set -euo pipefail
# The POST rate limit (per client address: the load generator is one) is
# off: this measures throughput.
export BEEP_RATE=${BEEP_RATE:-0}
# So are streams per client address: every stream comes from the loader.
export BEEP_MAX_STREAMS_PER_ADDRESS=${BEEP_MAX_STREAMS_PER_ADDRESS:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/bench"
BEEP_BIN=${BEEP_BIN:-$ROOT/build/beep-signal}
LOADGEN=${LOADGEN:-$ROOT/build/loadgen}
LIMIT_BIN=${LIMIT_BIN:-$ROOT/build/bench-limit}
DESIGN_BIN=${DESIGN_BIN:-$ROOT/build/bench-design}
SYSTEMS=${BENCH_SYSTEMS:-caddy caddy-limit caddy-design nginx nginx-limit nginx-design nchan cluster3}
SCENARIOS=${BENCH_SCENARIOS:-S1 S2 S4 S3}
REPEAT=${BENCH_REPEAT:-3}
OUT=${BENCH_OUT:-$ROOT/bench/results}
CADDYFILE=${BENCH_CADDYFILE:-$ROOT/Caddyfile}
NGINX_CONF=${BENCH_NGINX_CONF:-$ROOT/conf/nginx.conf}
NGINX_CONF_B=${BENCH_NGINX_CONF_B:-$NGINX_CONF}
BEEP_BIN_B=${BENCH_BEEP_BIN_B:-$BEEP_BIN}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-1}
NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
# The backends (ours and the limit responder) on these CPUs only.
PIN=
[ -n "${BENCH_BACKEND_CPUS:-}" ] && PIN="taskset -c $BENCH_BACKEND_CPUS"

# The scenarios (issue 3), plus S4: the targets' latency point.
declare -A DESC=(
	[S1]="1,000 subscribers (100 x 10), ${BENCH_S1_POSTS:-20,000} posts at max rate, 8 conns"
	[S2]="1,000 subscribers, 2,000 posts/s for 10 s"
	[S4]="1,000 subscribers, 500 posts/s for 10 s"
	[S3]="9,000 subscribers (900 x 10), ${BENCH_S3_POSTS:-10,000} posts at max rate"
)
declare -A ARGS=(
	[S1]="--users 100 --devices 10 --posts ${BENCH_S1_POSTS:-20000} --warmup 2000 --rate 0"
	[S2]="--users 100 --devices 10 --posts 20000 --warmup 1000 --rate 2000"
	[S4]="--users 100 --devices 10 --posts 5000 --warmup 500 --rate 500"
	[S3]="--users 900 --devices 10 --posts ${BENCH_S3_POSTS:-10000} --warmup 1000 --rate 0 --settle 2000"
)
COMMON="--conns 8 --timeout 150 --drain 5000 --quiet"

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- dependencies (Debian packages) ---------------------------------------
need=()
command -v caddy >/dev/null || need+=(caddy)
command -v nginx >/dev/null || need+=(nginx)
[ -e "$NCHAN_MODULE" ] || need+=(libnginx-mod-nchan)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v jq >/dev/null || need+=(jq)
command -v curl >/dev/null || need+=(curl)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "missing: ${need[*]} (apt-get install them)"
	log "installing ${need[*]}"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends "${need[@]}" >/dev/null
fi
[ -x "$BEEP_BIN" ] || die "no backend at $BEEP_BIN (make)"
[ -x "$LOADGEN" ] || die "no load generator at $LOADGEN (make build/loadgen)"
case " $SYSTEMS " in *-limit\ *)
	[ -x "$LIMIT_BIN" ] || die "no limit backend at $LIMIT_BIN (make build/bench-limit)";;
esac
case " $SYSTEMS " in *-design\ *)
	[ -x "$DESIGN_BIN" ] || die "no design backend at $DESIGN_BIN (make build/bench-design)";;
esac
[ -f "$CADDYFILE" ] || die "no Caddyfile at $CADDYFILE"
[ -f "$NGINX_CONF" ] || die "no nginx config at $NGINX_CONF"

# Everything started here may use as many files as the hard limit allows.
ulimit -n "$(ulimit -Hn)"

# --- processes and clean-up -------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/beep-bench.XXXXXX")
PIDS=()

# Stops the given pids: SIGTERM, then SIGKILL after 5 s.
stop_pids() {
	local p i
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for i in $(seq 50); do
		local alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for p in "$@"; do
		if kill -0 "$p" 2>/dev/null; then
			log "pid $p ignored SIGTERM: killing it"
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# Drops pids (exact matches) from PIDS, the list cleanup() stops.
forget_pids() {
	local keep=() p q
	for p in "${PIDS[@]}"; do
		for q in "$@"; do [ "$p" = "$q" ] && continue 2; done
		keep+=("$p")
	done
	PIDS=("${keep[@]+"${keep[@]}"}")
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ ${#PIDS[@]} -gt 0 ] && stop_pids "${PIDS[@]}"
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$LOADGEN" --free-port; }

# Waits until a command succeeds (10 s), while pid $1 lives.
wait_for() {
	local pid=$1 what=$2 i
	shift 2
	for i in $(seq 200); do
		"$@" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || { log "$what exited"; return 1; }
		sleep 0.05
	done
	log "$what not ready after 10 s"
	return 1
}

healthz() { curl -fsS -m 2 "http://127.0.0.1:$PORT/healthz"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

# A fresh run directory per run; sets PORT, RUN, BACKEND_PID, FRONT_PID,
# PIDS_ARG (for the load generator) and STARTED (pids to stop).
start_backend() {
	BEEP_LOG_LEVEL=${BEEP_LOG_LEVEL:-warn} $PIN "${1:-$BEEP_BIN}" \
	    --listen "unix:$RUN/beep.sock" >"$RUN/backend.log" 2>&1 &
	BACKEND_PID=$!
	STARTED+=("$BACKEND_PID")
	PIDS+=("$BACKEND_PID")
	wait_for "$BACKEND_PID" backend test -S "$RUN/beep.sock"
}

# The limit (or, with DESIGN_BIN, design) systems' backend on the same
# socket path.
start_limit() {
	$PIN "${1:-$LIMIT_BIN}" "$RUN/beep.sock" >"$RUN/backend.log" 2>&1 &
	BACKEND_PID=$!
	STARTED+=("$BACKEND_PID")
	PIDS+=("$BACKEND_PID")
	wait_for "$BACKEND_PID" "$(basename "${1:-$LIMIT_BIN}")" \
	    test -S "$RUN/beep.sock"
}

start_caddy() {
	mkdir -p "$RUN/home"
	env SITE_ADDRESS=":$PORT" CADDY_BIND=127.0.0.1 CADDY_ADMIN=off \
	    OPS_PORT="$(free_port)" \
	    BEEP_SOCKET="$RUN/beep.sock" HOME="$RUN/home" \
	    XDG_DATA_HOME="$RUN/home/data" XDG_CONFIG_HOME="$RUN/home/config" \
	    XDG_CACHE_HOME="$RUN/home/cache" \
	    caddy run --config "$CADDYFILE" --adapter caddyfile \
	    >"$RUN/front.log" 2>&1 &
	FRONT_PID=$!
	STARTED+=("$FRONT_PID")
	PIDS+=("$FRONT_PID")
	wait_for "$FRONT_PID" caddy healthz
}

# lighttpd 1.4 with a main configuration like Debian 12's (as the tests'
# fronts.mjs writes it) around conf/lighttpd.conf, its scripts from this
# checkout, our socket: the shipped file as it runs.
start_lighttpd() {
	local dir="$RUN/lighttpd"
	mkdir -p "$dir/www"
	sed -e "s#^var.beep_signal_scripts = .*#var.beep_signal_scripts = \"$ROOT/conf\"#" \
	    -e "s#/run/beep-signal/beep.sock#$RUN/beep.sock#" \
	    "$ROOT/conf/lighttpd.conf" >"$dir/beep-signal.conf"
	grep -q "$RUN/beep.sock" "$dir/beep-signal.conf" ||
	    die "conf/lighttpd.conf: no socket path to rewrite"
	cat >"$dir/lighttpd.conf" <<-EOF
	server.modules = ( "mod_indexfile", "mod_access", "mod_alias", "mod_redirect" )
	server.document-root = "$dir/www"
	server.bind = "127.0.0.1"
	server.port = $PORT
	server.pid-file = "$dir/lighttpd.pid"
	server.upload-dirs = ( "$dir" )
	server.errorlog = "$RUN/front.log"
	server.max-fds = $(ulimit -Hn)
	server.max-connections = $(( ($(ulimit -Hn) - 100) / 2 ))
	server.http-parseopts = (
	  "header-strict" => "enable", "host-strict" => "enable",
	  "host-normalize" => "enable", "url-normalize-unreserved" => "enable",
	  "url-normalize-required" => "enable", "url-ctrls-reject" => "enable",
	  "url-path-2f-decode" => "enable", "url-path-dotseg-remove" => "enable",
	)
	include "$dir/beep-signal.conf"
	server.modules += ( "mod_staticfile" )
	EOF
	lighttpd -D -f "$dir/lighttpd.conf" >>"$RUN/front.log" 2>&1 &
	FRONT_PID=$!
	STARTED+=("$FRONT_PID")
	PIDS+=("$FRONT_PID")
	wait_for "$FRONT_PID" lighttpd healthz
}

# nginx with a generated main configuration around server block $1.
start_nginx() {
	local server=$1 module=$2 user=
	mkdir -p "$RUN/nginx/tmp"
	cp /etc/nginx/fastcgi_params "$RUN/nginx/fastcgi_params"
	cp "$server" "$RUN/nginx/server.conf"
	[ "$(id -u)" -eq 0 ] && user="user $(id -un) $(id -gn);"
	cat >"$RUN/nginx/nginx.conf" <<-EOF
	$module
	$user
	worker_processes $NGINX_WORKERS;
	worker_rlimit_nofile $(ulimit -Hn);
	pid $RUN/nginx/nginx.pid;
	error_log $RUN/front.log warn;
	events {
		worker_connections $(( $(ulimit -Hn) - 100 ));
	}
	http {
		access_log off;
		keepalive_requests 1000000;
		client_body_temp_path $RUN/nginx/tmp/body;
		proxy_temp_path $RUN/nginx/tmp/proxy;
		fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
		uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
		scgi_temp_path $RUN/nginx/tmp/scgi;
		include server.conf;
	}
	EOF
	nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -g 'daemon off;' \
	    >>"$RUN/front.log" 2>&1 &
	FRONT_PID=$!
	STARTED+=("$FRONT_PID")
	PIDS+=("$FRONT_PID")
	if [ -n "$module" ]; then
		wait_for "$FRONT_PID" nginx port_open || return 1
	else
		wait_for "$FRONT_PID" nginx healthz || return 1
	fi
	wait_for "$FRONT_PID" "nginx workers" nginx_workers
}

# The nginx worker pids (what serves connections), comma-separated.
nginx_workers() { pgrep -d, -P "$FRONT_PID" -f 'worker process'; }

# conf/nginx.conf (or server block $1) on our port and socket: the port in
# every `listen`, the socket path in `server unix:`.
beep_nginx_conf() {
	local conf=${1:-$NGINX_CONF}
	sed -e "s#^\([[:space:]]*\)listen[[:space:]]\{1,\}1837;#\1listen 127.0.0.1:$PORT;#" \
	    -e "/^[[:space:]]*listen[[:space:]]\{1,\}\[::\]/d" \
	    -e "s#unix:/run/beep-signal/beep.sock#unix:$RUN/beep.sock#" \
	    "$conf" >"$RUN/beep-nginx.conf"
	if [ -n "${BENCH_NGINX_KEEPALIVE:-}" ]; then
		sed -i "s#^\([[:space:]]*\)keepalive [0-9]*;#\1keepalive $BENCH_NGINX_KEEPALIVE;#" \
		    "$RUN/beep-nginx.conf"
	fi
	grep -q "listen 127.0.0.1:$PORT;" "$RUN/beep-nginx.conf" ||
	    die "$conf: no 'listen 1837;' line to rewrite"
}

# Three nodes and a redis-server: node A (beep.sock, its Caddy on PORT)
# serves the subscribers; a front Caddy (conf/Caddyfile.cluster) on
# POST_PORT spreads the POSTs over nodes B and C.
start_cluster3() {
	local i sockets=
	redis-server --port 0 --unixsocket "$RUN/redis.sock" --save '' \
	    --appendonly no --dir "$RUN" >"$RUN/redis.log" 2>&1 &
	STARTED+=($!)
	PIDS+=($!)
	wait_for "$!" redis test -S "$RUN/redis.sock" || return 1
	export BEEP_REDIS_URL="unix://$RUN/redis.sock"
	start_backend && start_caddy || return 1
	for i in b c; do
		BEEP_LOG_LEVEL=${BEEP_LOG_LEVEL:-warn} "$BEEP_BIN" \
		    --listen "unix:$RUN/$i.sock" >"$RUN/backend-$i.log" 2>&1 &
		STARTED+=($!)
		PIDS+=($!)
		wait_for "$!" "node $i" test -S "$RUN/$i.sock" || return 1
		sockets="$sockets unix/$RUN/$i.sock"
	done
	unset BEEP_REDIS_URL
	POST_PORT=$(free_port)
	mkdir -p "$RUN/front-home"
	env SITE_ADDRESS=":$POST_PORT" CADDY_BIND=127.0.0.1 CADDY_ADMIN=off \
	    OPS_PORT="$(free_port)" BEEP_UPSTREAMS="${sockets# }" \
	    HOME="$RUN/front-home" XDG_DATA_HOME="$RUN/front-home/data" \
	    XDG_CONFIG_HOME="$RUN/front-home/config" \
	    XDG_CACHE_HOME="$RUN/front-home/cache" \
	    caddy run --config "$ROOT/conf/Caddyfile.cluster" \
	    --adapter caddyfile >"$RUN/front2.log" 2>&1 &
	STARTED+=($!)
	PIDS+=($!)
	wait_for "$!" "front caddy" \
	    curl -fsS -m 2 "http://127.0.0.1:$POST_PORT/healthz"
}

# A system is a front and a backend: FRONT[-BACKEND], FRONT one of caddy,
# nginx and lighttpd, BACKEND none (ours, BEEP_BIN), b (ours,
# BEEP_BIN_B), limit or design; and the two that are neither: cluster3
# and nchan.
start_system() {
	local sys=$1 front=${1%%-*} backend=${1#*-}
	STARTED=()
	PORT=$(free_port)
	POST_PORT=
	STYLE=beep
	case $sys in
	cluster3)
		start_cluster3 || return 1
		PIDS_ARG="backend=$BACKEND_PID,front=$FRONT_PID"
		;;
	nchan)
		sed -e "s#listen 127.0.0.1:1837;#listen 127.0.0.1:$PORT;#" \
		    "$HERE/nchan.conf" >"$RUN/nchan.conf"
		start_nginx "$RUN/nchan.conf" "load_module $NCHAN_MODULE;" ||
		    return 1
		BACKEND_PID=
		PIDS_ARG="backend=$(nginx_workers)"
		STYLE=nchan
		;;
	*)
		[ "$backend" = "$sys" ] && backend=ours
		case $backend in
		ours) start_backend ;;
		b) start_backend "$BEEP_BIN_B" ;;
		limit) start_limit ;;
		design) start_limit "$DESIGN_BIN" ;;
		*) die "unknown system $sys" ;;
		esac || return 1
		case $front in
		caddy) start_caddy ;;
		lighttpd) start_lighttpd ;;
		nginx)
			if [ "$backend" = b ]; then
				beep_nginx_conf "$NGINX_CONF_B"
			else
				beep_nginx_conf
			fi
			start_nginx "$RUN/beep-nginx.conf" ""
			;;
		*) die "unknown system $sys" ;;
		esac || return 1
		if [ "$front" = nginx ]; then
			PIDS_ARG="backend=$BACKEND_PID,front=$(nginx_workers)"
		else
			PIDS_ARG="backend=$BACKEND_PID,front=$FRONT_PID"
		fi
		;;
	esac
	# Several nginx workers: name them backend, backend2, ...
	PIDS_ARG=$(echo "$PIDS_ARG" | awk -F, '{
		for (i = 1; i <= NF; i++) {
			if ($i !~ /=/) { n[last]++; $i = last n[last] "=" $i }
			else { split($i, kv, "="); last = kv[1] }
		}
		OFS = ","; $1 = $1; print }')
}

stop_system() {
	if [ ${#STARTED[@]} -gt 0 ]; then
		stop_pids "${STARTED[@]}"
		forget_pids "${STARTED[@]}"
	fi
	STARTED=()
}

# --- versions and machine ---------------------------------------------------
ver() { "$@" 2>&1 | head -1 || true; }
MACHINE=$(jq -n \
    --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
    --arg cores "$(nproc)" --arg kernel "$(uname -sr)" \
    --arg mem "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
    --arg os "$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)" \
    --arg nofile "$(ulimit -Hn)" \
    '{cpu:$cpu, cores:($cores|tonumber), kernel:$kernel, memory:$mem,
      os:$os, nofile:($nofile|tonumber)}')
VERSIONS=$(jq -n \
    --arg beep "$(ver "$BEEP_BIN" --version)" \
    --arg git "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo none)" \
    --arg caddy "$(ver caddy version)" \
    --arg nginx "$(ver nginx -v | sed 's/^nginx version: //')" \
    --arg nchan "$(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo unknown)" \
    --arg lighttpd "$(command -v lighttpd >/dev/null && ver lighttpd -v || echo none)" \
    '{beep_signal:$beep, git:$git, caddy:$caddy, nginx:$nginx,
      nchan:$nchan, lighttpd:$lighttpd}')

# --- runs ---------------------------------------------------------------------
RUNS="$TMP/runs.jsonl"
: >"$RUNS"
t0=$(date +%s)
# Repeats outermost: each system's runs spread over the whole time, so a
# burst of load from elsewhere on the machine does not land on one system.
for rep in $(seq "$REPEAT"); do
	for sc in $SCENARIOS; do
		[ -n "${ARGS[$sc]:-}" ] || die "unknown scenario $sc"
		for sys in $SYSTEMS; do
			# The cluster: throughput (S1) and latency at 500
			# posts/s (S4).
			[ "$sys" = cluster3 ] &&
			    [[ " S1 S4 " != *" $sc "* ]] && continue
			# lighttpd holds two descriptors per stream and
			# stops accepting ("out-of-fds") near 90% of its
			# max-fds: 9,000 streams do not fit in 20,000.
			[[ $sys == lighttpd* ]] && [ "$sc" = S3 ] && continue
			RUN="$TMP/$sys-$sc-$rep"
			mkdir -p "$RUN"
			if ! start_system "$sys"; then
				log "$sys did not start; logs:"
				tail -n 20 "$RUN"/*.log >&2 || true
				exit 1
			fi
			perf_pid=
			if [ "${BENCH_PERF:-0}" = 1 ] &&
			    [[ " ${BENCH_PROFILE_SCENARIOS:-S1} " == *" $sc "* ]] &&
			    [ -n "$BACKEND_PID" ]; then
				mkdir -p "$OUT"
				# The backend's threads, those it starts
				# later included (perf inherits), DWARF
				# stacks (-O2 keeps no frame pointers), the
				# software clock (no hardware counters in
				# these VMs): perf report -i FILE.
				# shellcheck disable=SC2086
				perf record -p "$BACKEND_PID" \
				    ${BENCH_PERF_OPTS:--e cpu-clock -F 999 --call-graph dwarf,16384} \
				    -o "$OUT/perf-$sys-$sc.data" \
				    >"$RUN/perf.log" 2>&1 &
				perf_pid=$!
				PIDS+=("$perf_pid")
				sleep 1
			fi
			strace_pid=
			if [ "${BENCH_STRACE:-0}" = 1 ] &&
			    [[ " ${BENCH_PROFILE_SCENARIOS:-S1} " == *" $sc "* ]] &&
			    [ -n "$BACKEND_PID" ]; then
				mkdir -p "$OUT"
				# Syscall counts (it slows the backend down:
				# not with the figures that matter).
				strace -c -f -q -p "$BACKEND_PID" \
				    -o "$OUT/strace-$sys-$sc.txt" \
				    >"$RUN/strace.log" 2>&1 &
				strace_pid=$!
				PIDS+=("$strace_pid")
				sleep 1
			fi
			log "$sys $sc #$rep: ${DESC[$sc]}"
			# In the background, so that a signal is handled at
			# once (bash runs traps only between commands).
			# shellcheck disable=SC2086
			"$LOADGEN" --port "$PORT" --style "$STYLE" \
			    --label "$sys-$sc" --pids "$PIDS_ARG" \
			    ${POST_PORT:+--post-port "$POST_PORT"} \
			    ${ARGS[$sc]} $COMMON >"$RUN/loadgen.out" \
			    2>"$RUN/loadgen.err" &
			lg_pid=$!
			PIDS+=("$lg_pid")
			wait "$lg_pid" || true
			forget_pids "$lg_pid"
			if [ -n "$strace_pid" ]; then
				kill -INT "$strace_pid" 2>/dev/null || true
				wait "$strace_pid" 2>/dev/null || true
				forget_pids "$strace_pid"
			fi
			if [ -n "$perf_pid" ]; then
				stop_pids "$perf_pid"
				forget_pids "$perf_pid"
			fi
			errors=$(grep -ciE ' (warn|error) ' \
			    "$RUN/backend.log" 2>/dev/null || true)
			stop_system
			line=$(tail -n 1 "$RUN/loadgen.out")
			if ! jq -e . >/dev/null 2>&1 <<<"$line"; then
				log "$sys $sc: no result; loadgen said:"
				cat "$RUN/loadgen.out" "$RUN/loadgen.err" >&2
				exit 1
			fi
			sed '$d' "$RUN/loadgen.out" | sed -n '2,7p' >&2
			jq -c --arg sys "$sys" --arg sc "$sc" \
			    --argjson rep "$rep" --argjson err "${errors:-0}" \
			    '{system:$sys, scenario:$sc, repeat:$rep,
			      backend_log_problems:$err, result:.}' \
			    <<<"$line" >>"$RUNS"
		done
	done
done
elapsed=$(( $(date +%s) - t0 ))

# --- results ------------------------------------------------------------------
mkdir -p "$OUT"
stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
json="$OUT/$stamp.json"
png="$OUT/$stamp.png"
scen_json=$(for sc in $SCENARIOS; do
	jq -n --arg id "$sc" --arg d "${DESC[$sc]}" \
	    --arg a "${ARGS[$sc]} $COMMON" '{id:$id, description:$d, loadgen:$a}'
done | jq -s .)

# The summary keeps, per (system, scenario), the run with the median posts/s
# (fixed-rate scenarios: the median p99).
jq -s --argjson machine "$MACHINE" --argjson versions "$VERSIONS" \
    --argjson scenarios "$scen_json" --arg date "$stamp" \
    --argjson elapsed "$elapsed" --arg systems "$SYSTEMS" \
    --arg nginx_workers "$NGINX_WORKERS" \
    --arg env "$(env | grep -E '^(BEEP_|BENCH_)' | sort | tr '\n' ' ')" '
def pick: sort_by(if .result.rate > 0 then .result.latency_ms.p99
                  else .result.posts_per_s end) | .[(length / 2 | floor)];
def rss($n): [.result.rss[] | select(.name | startswith($n))];
def sum_per_sub($n): (rss($n) | map(.per_sub_kib) | add) // null;
def sum_before($n): (rss($n) | map(.before_kib) | add) // null;
{
  date: $date, command: "make bench", env: $env, elapsed_s: $elapsed,
  machine: $machine, versions: $versions, scenarios: $scenarios,
  nginx_workers: ($nginx_workers | tonumber),
  systems: {
    caddy: "beep-signal behind Caddy (fastcgi transport, unix socket)",
    nginx: "beep-signal behind nginx (conf/nginx.conf, FastCGI keep-alive)",
    nchan: "Nchan (nginx module), same routes (tests/bench/nchan.conf)",
    "caddy-limit": "Caddy (same Caddyfile) in front of bench-limit, the cheapest FastCGI responder (tests/bench/limit.c)",
    "nginx-limit": "nginx (same conf/nginx.conf) in front of bench-limit",
    "caddy-design": "Caddy (same Caddyfile) in front of bench-design, the cheapest responder of the design kept (libfcgi, worker threads, kept connections parked, a thread per stream, condition variables; tests/bench/design.c)",
    "nginx-design": "nginx (same conf/nginx.conf) in front of bench-design",
    lighttpd: "beep-signal behind lighttpd (conf/lighttpd.conf, its Lua scripts, a FastCGI connection per request)",
    "lighttpd-limit": "lighttpd (same conf/lighttpd.conf) in front of bench-limit",
    "lighttpd-design": "lighttpd (same conf/lighttpd.conf) in front of bench-design",
    cluster3: "three beep-signal nodes and Redis: streams on node A (its Caddy), POSTs through a round-robin Caddy to nodes B and C: every delivery cross-node"
  },
  runs: .,
  summary: (group_by(.system + " " + .scenario) | map(pick | {
    system, scenario, ok: .result.ok,
    posts_per_s: .result.posts_per_s,
    latency_ms: .result.latency_ms, post_rtt_ms: .result.post_rtt_ms,
    subscribers: .result.subscribers.ok,
    lost: .result.lost, duplicated: .result.duplicated,
    out_of_order: .result.out_of_order, corrupt: .result.corrupt,
    post_errors: .result.post_errors,
    backend_kib_per_sub: sum_per_sub("backend"),
    front_kib_per_sub: sum_per_sub("front"),
    backend_idle_kib: sum_before("backend"),
    front_idle_kib: sum_before("front"),
    backend_log_problems,
    cpu: (.result.cpu // null)
  }))
}' "$RUNS" >"$json"

# --- plot: one panel per scenario, latency by percentile, a line per system --
dat="$TMP/plot"
mkdir -p "$dat"
for sc in $SCENARIOS; do
	jq -r --arg sc "$sc" --arg systems "$SYSTEMS" '
	    [.summary[] | select(.scenario == $sc)] as $r
	    | ($systems | split(" ") | map(select(length > 0))) as $s
	    | ["pct"] + $s, (["p50","p90","p99","p999","max"][] as $p
	    | [if $p == "p999" then "p99.9" else $p end] +
	      ($s | map(. as $x | ($r[] | select(.system == $x)
	      | .latency_ms[$p]) // "NaN")))
	    | @tsv' "$json" >"$dat/$sc.tsv"
done
nsc=$(echo "$SCENARIOS" | wc -w)
cols=$(( nsc > 1 ? 2 : 1 )); rows=$(( (nsc + 1) / 2 ))
{
	echo "set terminal pngcairo size $((cols * 640)),$((rows * 420)) font 'sans,10'"
	echo "set output '$png'"
	echo "set multiplot layout $rows,$cols title 'Delivery latency (POST sent -> event received), $stamp'"
	echo "set logscale y; set grid ytics mytics; set ylabel 'ms'"
	echo "set key top left; set style data linespoints"
	for sc in $SCENARIOS; do
		echo "set title '$sc: ${DESC[$sc]}' noenhanced"
		n=$(echo "$SYSTEMS" | wc -w)
		plots=()
		for i in $(seq 2 $((n + 1))); do
			plots+=("'$dat/$sc.tsv' using $i:xtic(1) title columnheader($i) lw 2")
		done
		(IFS=,; echo "plot ${plots[*]}")
	done
	echo "unset multiplot"
} >"$dat/plot.gp"
gnuplot "$dat/plot.gp" 2>"$dat/gnuplot.err" ||
    { log "gnuplot failed:"; cat "$dat/gnuplot.err" >&2; }

# --- table --------------------------------------------------------------------
echo
echo "### make bench, $stamp ($(jq -r '.machine | "\(.cores) cores, \(.cpu)"' "$json"))"
echo
jq -r --arg order "$SCENARIOS" '
def r2: if . == null then "–" else (. * 100 | round / 100 | tostring) end;
def r0: if . == null then "–" else (. | round | tostring) end;
def ratio($a; $b): if $a == null or $b == null or $b == 0 then "–"
                   else ($a / $b * 100 | round / 100 | tostring) + "×" end;
.summary as $s
| def nchan($sc): ($s[] | select(.system == "nchan" and .scenario == $sc));
"| scenario | system | posts/s | vs Nchan | p50 ms | p90 ms | p99 ms | p99 vs Nchan | p99.9 ms | max ms | lost/dup/ooo | backend KiB/sub | front KiB/sub | backend idle MiB |",
"|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
($order | split(" ") | map(select(length > 0))) as $o
| ($s | sort_by((.scenario as $x | $o | index($x)), (.system | {"caddy":0,"caddy-b":1,"caddy-design":2,"caddy-limit":3,"nginx":4,"nginx-b":5,"nginx-design":6,"nginx-limit":7,"lighttpd":8,"lighttpd-design":9,"lighttpd-limit":10,"nchan":11,"cluster3":12}[.])) | .[]
 | (nchan(.scenario) // null) as $n
 | "| \(.scenario) | \(.system) | \(.posts_per_s | r0) | \(ratio(.posts_per_s; $n.posts_per_s)) | \(.latency_ms.p50 | r2) | \(.latency_ms.p90 | r2) | \(.latency_ms.p99 | r2) | \(ratio(.latency_ms.p99; $n.latency_ms.p99)) | \(.latency_ms.p999 | r2) | \(.latency_ms.max | r2) | \(.lost)/\(.duplicated)/\(.out_of_order)\(if .ok then "" else " ✗" end) | \(.backend_kib_per_sub | r2) | \(.front_kib_per_sub | r2) | \(if .backend_idle_kib then (.backend_idle_kib / 1024 | r2) else "–" end) |")
' "$json"

# CPU per delivered post by process, and ours against the limit systems.
echo
jq -r --arg order "$SCENARIOS" '
def r1: if . == null then "–" else (. * 10 | round / 10 | tostring) end;
def r2: if . == null then "–" else (. * 100 | round / 100 | tostring) end;
def ratio($a; $b): if $a == null or $b == null or $b == 0 then "–"
                   else ($a / $b * 100 | round / 100 | tostring) + "×" end;
def proc($n): [(.cpu.procs // [])[] | select(.name == $n or (.name | startswith($n) and ($n == "backend" or $n == "front")))];
def us($n): (proc($n) | map(.us_per_post) | if length == 0 or any(. == null) then null else add end);
def ut($n): (proc($n) | map(.user_us_per_post) | if length == 0 or any(. == null) then null else add end);
def st($n): (proc($n) | map(.sys_us_per_post) | if length == 0 or any(. == null) then null else add end);
def cs($n): (proc($n) | map(.cs_per_post) | if length == 0 or any(. == null) then null else add end);
def cell($n): "\(us($n) | r1) (\(ut($n) | r1)+\(st($n) | r1))";
.summary as $s
| def lim($sys; $sc): ($s[] | select(.system == ($sys + "-limit") and .scenario == $sc));
def des($sys; $sc): ($s[] | select(.system == ($sys + "-design") and .scenario == $sc));
"CPU per delivered post, µs (user+system), and context switches per post, over the measured interval:",
"",
"| scenario | system | posts/s | vs limit | vs design | backend µs | front µs | loadgen µs | total µs | backend cs | front cs |",
"|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
($order | split(" ") | map(select(length > 0))) as $o
| ($s | sort_by((.scenario as $x | $o | index($x)), (.system | {"caddy":0,"caddy-b":1,"caddy-design":2,"caddy-limit":3,"nginx":4,"nginx-b":5,"nginx-design":6,"nginx-limit":7,"lighttpd":8,"lighttpd-design":9,"lighttpd-limit":10,"nchan":11,"cluster3":12}[.])) | .[]
 | (if (.system | test("^(caddy|nginx|lighttpd)(-b|-design)?$")) then ([lim(.system | sub("-(b|design)$"; ""); .scenario)] | .[0]) else null end) as $l
 | (if (.system | test("^(caddy|nginx|lighttpd)(-b)?$")) then ([des(.system | sub("-b$"; ""); .scenario)] | .[0]) else null end) as $d
 | "| \(.scenario) | \(.system) | \(.posts_per_s | round) | \(if $l then ratio(.posts_per_s; $l.posts_per_s) else "–" end) | \(if $d then ratio(.posts_per_s; $d.posts_per_s) else "–" end) | \(cell("backend")) | \(cell("front")) | \(cell("loadgen")) | \([us("backend"), us("front"), us("loadgen")] | map(select(. != null)) | add | r1) | \(cs("backend") | r2) | \(cs("front") | r2) |")
' "$json"

# The issue's targets.
echo
jq -r '
.summary as $s
| def get($sys; $sc): ($s[] | select(.system == $sys and .scenario == $sc));
def chk($name; $cond; $val):
  if $cond == null then "- [?] \($name): not measured"
  elif $cond then "- [x] \($name): \($val)"
  else "- [ ] \($name): \($val)" end;
def n2: if . == null then null else (. * 100 | round / 100) end;
"Targets (issue 3):",
chk("Caddy S1 ≥ 4,000 posts/s"; (get("caddy";"S1").posts_per_s // null) as $v | if $v then $v >= 4000 else null end; "\(get("caddy";"S1").posts_per_s | n2) posts/s"),
chk("Caddy p99 ≤ 2 ms at 500 posts/s (S4)"; (get("caddy";"S4").latency_ms.p99 // null) as $v | if $v then $v <= 2 else null end; "\(get("caddy";"S4").latency_ms.p99 | n2) ms"),
chk("Caddy S3 p99 ≤ 5 ms"; (get("caddy";"S3").latency_ms.p99 // null) as $v | if $v then $v <= 5 else null end; "\(get("caddy";"S3").latency_ms.p99 | n2) ms"),
chk("nginx S1 posts/s ≥ Nchan"; (get("nginx";"S1").posts_per_s // null) as $v | (get("nchan";"S1").posts_per_s // null) as $n | if $v and $n then $v >= $n else null end; "\(get("nginx";"S1").posts_per_s | n2) vs \(get("nchan";"S1").posts_per_s | n2)"),
chk("nginx p99 at 500 posts/s ≤ 1.5 × Nchan (S4)"; (get("nginx";"S4").latency_ms.p99 // null) as $v | (get("nchan";"S4").latency_ms.p99 // null) as $n | if $v and $n then $v <= 1.5 * $n else null end; "\(get("nginx";"S4").latency_ms.p99 | n2) vs \(get("nchan";"S4").latency_ms.p99 | n2) ms"),
chk("nginx S3 posts/s ≥ Nchan"; (get("nginx";"S3").posts_per_s // null) as $v | (get("nchan";"S3").posts_per_s // null) as $n | if $v and $n then $v >= $n else null end; "\(get("nginx";"S3").posts_per_s | n2) vs \(get("nchan";"S3").posts_per_s | n2)"),
(["caddy","nginx"][] as $sys | get($sys;"S3") as $r | if $r then
  chk("backend KiB per stream ≤ 11 (never > 16), behind \($sys) (S3)"; $r.backend_kib_per_sub <= 11; "\($r.backend_kib_per_sub | n2) KiB") else empty end),
(["caddy","nginx"][] as $sys | get($sys;"S3") as $r | if $r then
  chk("idle backend RSS ≤ 8 MiB, behind \($sys)"; $r.backend_idle_kib <= 8192; "\($r.backend_idle_kib / 1024 | n2) MiB") else empty end),
chk("cluster3 p99 cross-node at 500 posts/s ≤ one node (Caddy) + 1 ms (S4, issue 10)"; (get("cluster3";"S4").latency_ms.p99 // null) as $v | (get("caddy";"S4").latency_ms.p99 // null) as $n | if $v and $n then $v <= $n + 1 else null end; "\(get("cluster3";"S4").latency_ms.p99 | n2) vs \(get("caddy";"S4").latency_ms.p99 | n2) ms"),
chk("cluster3 posts/s cross-node vs one node (S1, measured)"; (get("cluster3";"S1").posts_per_s // null) as $v | if $v then true else null end; "\(get("cluster3";"S1").posts_per_s | n2) vs \(get("caddy";"S1").posts_per_s | n2) posts/s"),
chk("zero lost, duplicated or reordered, every run"; ([.runs[].result | .lost + .duplicated + .out_of_order + .corrupt] | add) == 0; "\([.runs[] | select(.result.ok | not) | "\(.system) \(.scenario)"] | if length == 0 then "all runs clean" else "failed: " + join(", ") end)")
' "$json"
# Issue 14's targets: ours against Nchan and the limit systems.
echo
jq -r '
.summary as $s
| def get($sys; $sc): ([$s[] | select(.system == $sys and .scenario == $sc)] | .[0]);
def cpu($r; $n): if $r == null or $r.cpu == null then null else
  ([$r.cpu.procs[] | select(.name | startswith($n)) | .us_per_post]
   | if length == 0 or any(. == null) then null else add end) end;
def n2: if . == null then null else (. * 100 | round / 100) end;
def ratio($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
def chk($name; $v; $ok; $text):
  if $v == null then "- [?] \($name): not measured"
  elif $ok then "- [x] \($name): \($text)" else "- [ ] \($name): \($text)" end;
def info($name; $v; $text):
  if $v == null then "- \($name): not measured" else "- \($name): \($text)" end;
get("nginx";"S1") as $n1 | get("nchan";"S1") as $c1 | get("nginx-limit";"S1") as $l1
| get("nginx-design";"S1") as $d1 | get("nginx-design";"S3") as $d3
| get("nginx";"S3") as $n3 | get("nchan";"S3") as $c3
| get("caddy";"S1") as $k1 | get("caddy-limit";"S1") as $kl1
| cpu($n1; "backend") as $b | cpu($n1; "front") as $f
| "Targets (issue 14, behind nginx unless named):",
chk("backend CPU per post ≤ 15 µs and ≤ nginx'"'"'s (S1)"; $b;
    ($b // 1e9) <= 15 and ($b // 1e9) <= ($f // 0);
    "\($b | n2) µs, nginx \($f | n2) µs"),
chk("S1 posts/s ≥ 0.7 × Nchan"; ratio($n1.posts_per_s; $c1.posts_per_s);
    (ratio($n1.posts_per_s; $c1.posts_per_s) // 0) >= 0.7;
    "\(ratio($n1.posts_per_s; $c1.posts_per_s) | n2)×"),
chk("S1 posts/s ≥ 0.8 × the nginx limit system"; ratio($n1.posts_per_s; $l1.posts_per_s);
    (ratio($n1.posts_per_s; $l1.posts_per_s) // 0) >= 0.8;
    "\(ratio($n1.posts_per_s; $l1.posts_per_s) | n2)×"),
chk("S3 posts/s ≥ 0.5 × Nchan"; ratio($n3.posts_per_s; $c3.posts_per_s);
    (ratio($n3.posts_per_s; $c3.posts_per_s) // 0) >= 0.5;
    "\(ratio($n3.posts_per_s; $c3.posts_per_s) | n2)×"),
chk("S3 p99 ≤ 2 ms"; $n3.latency_ms.p99; ($n3.latency_ms.p99 // 1e9) <= 2;
    "\($n3.latency_ms.p99 | n2) ms"),
chk("behind Caddy, S1 posts/s ≥ 0.9 × the Caddy limit system"; ratio($k1.posts_per_s; $kl1.posts_per_s);
    (ratio($k1.posts_per_s; $kl1.posts_per_s) // 0) >= 0.9;
    "\(ratio($k1.posts_per_s; $kl1.posts_per_s) | n2)×"),
"",
"The design kept (nginx-design: libfcgi, worker threads, kept connections parked, a thread per stream) against the limit, and ours against it (measured, no target):",
info("S1: the design system / the limit system"; ratio($d1.posts_per_s; $l1.posts_per_s);
    "\(ratio($d1.posts_per_s; $l1.posts_per_s) | n2)×, backend \(cpu($d1; "backend") | n2) µs per post against \(cpu($l1; "backend") | n2)"),
info("S1: ours / the design system"; ratio($n1.posts_per_s; $d1.posts_per_s);
    "\(ratio($n1.posts_per_s; $d1.posts_per_s) | n2)×, backend \($b | n2) µs per post against \(cpu($d1; "backend") | n2)"),
info("S3: ours / the design system"; ratio($n3.posts_per_s; $d3.posts_per_s);
    "\(ratio($n3.posts_per_s; $d3.posts_per_s) | n2)×, p99 \($n3.latency_ms.p99 | n2) ms against \($d3.latency_ms.p99 | n2)")
' "$json"
echo
echo "Results: $json"
[ -s "$png" ] && echo "Plot:    $png"
log "done in ${elapsed}s of runs"
