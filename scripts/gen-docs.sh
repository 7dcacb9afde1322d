#!/bin/sh
# Regenerate what is derived from the option table (src/config_option.c), so it
# cannot drift from the binary:
#   conf/beep-signal.conf      beep-signal --print-config, with no BEEP_*
#                              variable set (every key at its default)
#   man/beep-signal.8          the OPTIONS list, from beep-signal --help,
#                              between the "BEGIN OPTIONS" and "END OPTIONS"
#                              marker lines
# Usage: gen-docs.sh BINARY [OUTDIR]   (make docs; OUTDIR defaults to the
# source tree; tests/integration/26-* writes to a temporary OUTDIR and
# compares).
set -eu
bin=$1
out=${2:-.}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out/conf" "$out/man"

env -i PATH="$PATH" "$bin" --print-config >"$out/conf/beep-signal.conf.tmp"
mv "$out/conf/beep-signal.conf.tmp" "$out/conf/beep-signal.conf"

# --help lists each option as
#   "  --FLAG  BEEP_VAR  default: VALUE" then "      help text".
env -i PATH="$PATH" "$bin" --help | awk '
function esc(s) {
	gsub(/\\/, "\\e", s)
	return s
}
/^  --[a-z0-9-]+ +BEEP_[A-Z0-9_]+ +default: / {
	flag = $1; sub(/^--/, "", flag)
	env = $2
	def = $0; sub(/^.*default: /, "", def)
	getline help
	sub(/^ +/, "", help)
	help = toupper(substr(help, 1, 1)) substr(help, 2)
	if (help !~ /\.$/)
		help = help "."
	printf ".It Fl \\-%s Ar value\n", flag
	printf "%s\nEnvironment:\n.Ev %s ;\ndefault:\n.Ql %s .\n", esc(help), env, esc(def)
}' >"$out/man/options.tmp"
awk -v opts="$out/man/options.tmp" '
/^\.\\" BEGIN OPTIONS/ { print; while ((getline l < opts) > 0) print l; skip = 1; next }
/^\.\\" END OPTIONS/ { skip = 0 }
!skip { print }' "$here/man/beep-signal.8" >"$out/man/beep-signal.8.tmp"
rm -f "$out/man/options.tmp"
mv "$out/man/beep-signal.8.tmp" "$out/man/beep-signal.8"
