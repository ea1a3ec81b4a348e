#!/usr/bin/env bash
# Runs every test: cmocka unit and XDP packet tests (build/tests/test_*),
# then the end-to-end scripts (tests/e2e/*.sh). Prints one closing line
# "N passed, N failed" and exits non-zero if anything failed.
# Usage: tests/run-all.sh BUILD_DIR [unit|e2e]
# With XT_DEPS_BUILD and XT_DEPS_TEST set (make test), every test runs under
# strace, a scratch build too, and the package audit (deps-audit.py) checks
# every file they opened against those package lists.
set -u
build=${1:-build}
only=${2:-all}
here=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0 failures=()

audit=
if [ -n "${XT_DEPS_TEST:-}" ]; then
	command -v strace >/dev/null || { echo "run-all: no strace (make deps installs it)"; exit 1; }
	audit=$build/audit
	rm -rf "$audit" && mkdir -p "$audit"
fi
# traced NAME CMD...: CMD, its execs and opens logged to $audit/NAME.trace.
# Only those calls stop the process (seccomp filter), so tests run at speed.
traced() {
	local name=$1; shift
	if [ -z "$audit" ]; then "$@"; return; fi
	strace -f -qq --seccomp-bpf -o "$audit/$name.trace" -e status=successful \
		-e trace=execve,execveat,open,openat,openat2 "$@"
}

run() {
	local name=$1; shift
	local log="$build/test-logs/$name.log"
	mkdir -p "$(dirname "$log")"
	local t0=$SECONDS
	if traced "${name//\//-}" "$@" >"$log" 2>&1; then
		passed=$((passed + 1)); printf '  PASS  %-32s %3ds\n' "$name" $((SECONDS - t0))
	else
		failed=$((failed + 1)); failures+=("$name")
		printf '  FAIL  %-32s %3ds (log: %s)\n' "$name" $((SECONDS - t0)) "$log"
		tail -n 40 "$log" | sed 's/^/        | /'
	fi
}

if [ "$only" != e2e ]; then
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		run "$(basename "$t")" "$t"
	done
fi
if [ "$only" != unit ]; then
	for t in "$here"/e2e/test_*.sh; do
		[ -f "$t" ] || continue
		run "e2e/$(basename "$t" .sh)" bash "$t" "$build"
	done
fi

if [ -n "$audit" ]; then
	# A build from scratch in a directory of its own: the one above may
	# have had nothing left to do. `all` is what make run builds.
	scratch=$(cd "$build" && pwd)/audit/build
	run build make -C "$here/.." -B BUILD="$scratch" all
	run unit-build make -C "$here/.." BUILD="$scratch" unit-tests
	audit=
	run deps-audit python3 "$here/deps-audit.py" "$build/audit"
fi

[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
