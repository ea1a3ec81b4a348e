#!/usr/bin/env bash
# Runs every test: cmocka unit and XDP packet tests (build/tests/test_*),
# then the end-to-end scripts (tests/e2e/*.sh). Prints one closing line
# "N passed, N failed" and exits non-zero if anything failed.
# Usage: tests/run-all.sh BUILD_DIR [unit|e2e]
set -u
build=${1:-build}
only=${2:-all}
here=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0 failures=()

run() {
	local name=$1; shift
	local log="$build/test-logs/$name.log"
	mkdir -p "$(dirname "$log")"
	local t0=$SECONDS
	if "$@" >"$log" 2>&1; then
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

[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
