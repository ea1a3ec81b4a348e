#!/usr/bin/env bash
# The man pages: groff -man -ww finds nothing to warn about in any, and each
# documents what its program's --help lists, so neither can drift from the
# other: xturn.conf(5) every key (it is built from the key table; this
# proves the build did), xturnd(8) its own options, xturnctl(8) every
# command, xturnstat(8) and xturngen(1) every option.
# Usage: tests/test_man.sh BUILD_DIR
set -u
build=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
bad=0
fail() { echo "FAIL: $*"; bad=1; }
pages=("$build/man/xturn.conf.5" "$src/userspace/daemon/xturnd.8" "$src/tools/xturnctl.8"
	"$src/tools/xturnstat.8" "$src/tools/xturngen/xturngen.1")
for p in "${pages[@]}"; do
	[ -f "$p" ] || { fail "no $p (make builds it)"; continue; }
	out=$(groff -man -ww -z "$p" 2>&1)
	[ -z "$out" ] || fail "groff -man -ww: $p: $out"
done
# The page as text (ASCII hyphens), and the words of --help that must be in it.
text() { groff -man -Tascii -P-cbou "$1" 2>/dev/null; }
expect() { # PAGE WORD...: each WORD appears in PAGE's text
	local page=$1 t w; shift
	t=$(text "$page")
	for w in "$@"; do
		grep -qF -- "$w" <<<"$t" || fail "$(basename "$page") does not document $w"
	done
}
mapfile -t keys < <("$build/xturnd" --help | sed -n 's/^  --\([A-Za-z0-9_-]*\).*/\1/p')
[ "${#keys[@]}" -gt 100 ] || fail "xturnd --help lists only ${#keys[@]} keys"
conf_keys=()
for k in "${keys[@]}"; do
	case $k in config|demo|check-config|help|version|help-man) ;; *) conf_keys+=("$k") ;; esac
done
expect "$build/man/xturn.conf.5" "${conf_keys[@]}"
expect "$src/userspace/daemon/xturnd.8" -c --check-config --demo -v --help --version \
	--help-man SIGHUP SIGUSR1 SIGTERM
mapfile -t cmds < <("$build/xturnctl" --help | sed -n 's/^  \([a-z]\+\).*/\1/p')
[ "${#cmds[@]}" -ge 5 ] || fail "xturnctl --help lists only ${#cmds[@]} commands"
expect "$src/tools/xturnctl.8" "${cmds[@]}" --socket --json --user --timeout
mapfile -t opts < <("$build/xturnstat" --help | grep -o -- '--[a-z-]*' | sort -u)
expect "$src/tools/xturnstat.8" "${opts[@]}"
mapfile -t opts < <("$build/xturngen" --help | grep -oE -- '(^| )--?[a-zA-Z][a-z-]*' | tr -d ' ' |
	sort -u)
[ "${#opts[@]}" -gt 20 ] || fail "xturngen --help lists only ${#opts[@]} options"
expect "$src/tools/xturngen/xturngen.1" "${opts[@]}"
[ $bad = 0 ] && echo "PASS: ${#pages[@]} man pages clean, ${#conf_keys[@]} keys and every option documented"
exit $bad
