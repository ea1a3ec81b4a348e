#!/usr/bin/env bash
# Runs every test: the include check of the layers (test_layers.sh); the
# cmocka programs of each tier, one for each tests/TIER/test_*.c (a missing
# one fails): unit (as an unprivileged user when run as root: it needs no
# root, no daemon, no network), kernel (BPF programs and the loader),
# daemon (against a running xturnd); then the end-to-end scripts
# (tests/e2e/test_*.sh). A test that exits 77 was skipped: skips are
# counted and fail the run unless XT_ALLOW_SKIP=1. Each test has
# XT_TEST_LIMIT seconds (default 300). Prints one closing line
# "N passed, N failed, N skipped" and exits non-zero on a failure, on a
# skip not allowed, or when nothing ran.
# Usage: tests/run-all.sh BUILD_DIR [unit|kernel|daemon|e2e]
# With XT_DEPS_BUILD and XT_DEPS_TEST set (make test), every test runs under
# strace, a scratch build too, and the package audit (deps-audit.py) checks
# every file they opened against those package lists.
set -u
build=${1:-build}
only=${2:-all}
here=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0 skipped=0 failures=() skips=()
limit=${XT_TEST_LIMIT:-300}

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
	local rc=0
	if [ "$1" = missing ]; then
		echo "no program $2 (make test-progs builds it)" >"$log"
		rc=1
	else
		# timeout's own 124 (and 137 after -k) tells a hang from a failure
		traced "${name//\//-}" timeout -k 10 "$limit" "$@" >"$log" 2>&1 || rc=$?
	fi
	if [ $rc = 0 ]; then
		passed=$((passed + 1)); printf '  PASS  %-32s %3ds\n' "$name" $((SECONDS - t0))
	elif [ $rc = 77 ]; then
		skipped=$((skipped + 1)); skips+=("$name")
		printf '  SKIP  %-32s %3ds (%s)\n' "$name" $((SECONDS - t0)) "$(tail -n 1 "$log")"
	else
		failed=$((failed + 1)); failures+=("$name")
		[ $rc = 124 ] || [ $rc = 137 ] && echo "timed out after ${limit}s" >>"$log"
		printf '  FAIL  %-32s %3ds (log: %s)\n' "$name" $((SECONDS - t0)) "$log"
		tail -n 40 "$log" | sed 's/^/        | /'
	fi
}

# The unit tier runs as nobody when we are root, from a copy of its
# program in a directory nobody can reach (the build may sit under /root).
as_nobody=
[ "$(id -u)" = 0 ] && as_nobody=$(mktemp -d /tmp/xturn-unit.XXXXXX) && chmod 755 "$as_nobody"

for tier in unit kernel daemon; do
	[ "$only" = all ] || [ "$only" = "$tier" ] || continue
	[ $tier = unit ] && run layers bash "$here/test_layers.sh"
	[ $tier = unit ] && run man bash "$here/test_man.sh" "$build"
	for src in "$here"/$tier/test_*.c; do
		t=$build/tests/$tier/$(basename "$src" .c)
		if [ ! -x "$t" ]; then
			run "$tier/$(basename "$t")" missing "$t"
		elif [ $tier = unit ] && [ -n "$as_nobody" ]; then
			cp "$t" "$as_nobody/"
			run "$tier/$(basename "$t")" env -C "$as_nobody" \
				setpriv --reuid=65534 --regid=65534 --clear-groups "$as_nobody/$(basename "$t")"
		else
			run "$tier/$(basename "$t")" "$t"
		fi
	done
done
[ -n "$as_nobody" ] && rm -rf "$as_nobody"
if [ "$only" = all ] || [ "$only" = e2e ]; then
	for t in "$here"/e2e/test_*.sh; do
		run "e2e/$(basename "$t" .sh)" bash "$t" "$build"
	done
fi

if [ -n "$audit" ]; then
	# A build from scratch in a directory of its own: the one above may
	# have had nothing left to do. `all` is what make run builds.
	scratch=$(cd "$build" && pwd)/audit/build
	run build make -C "$here/.." -B BUILD="$scratch" all
	run test-build make -C "$here/.." BUILD="$scratch" test-progs
	audit=
	run deps-audit python3 "$here/deps-audit.py" "$build/audit"
fi

[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
[ ${#skips[@]} -gt 0 ] && echo "skipped: ${skips[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
if [ $((passed + failed + skipped)) = 0 ]; then
	echo "nothing ran"
	exit 1
fi
if [ "$skipped" -gt 0 ] && [ "${XT_ALLOW_SKIP:-0}" != 1 ]; then
	echo "a skipped test is not a passed one (XT_ALLOW_SKIP=1 to allow skips)"
	exit 1
fi
[ "$failed" -eq 0 ]
