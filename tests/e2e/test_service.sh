#!/usr/bin/env bash
# What running xturnd as a service relies on, loopback only:
#  1. --version: every binary prints "NAME VERSION", the same version, exit 0.
#  2. Logs under systemd: with JOURNAL_STREAM naming xturnd's stderr, every
#     line starts with its syslog priority (<6> info, <4> warning...) and
#     has no timestamp; with JOURNAL_STREAM naming another stream (what a
#     child with redirected stderr inherits), lines are timestamped.
#  3. --check-config: a good file passes while another xturnd holds the port,
#     and no pin dir is made (nothing bound or loaded); a bad one exits 2
#     naming its line.
# Usage: tests/e2e/test_service.sh BUILD_DIR
set -eu
build=${1:-build}
xturnd=$build/xturnd
for b in xturnd xturngen xturnstat; do
	[ -x "$build/$b" ] || { echo "missing $build/$b (make BUILD=$build)"; exit 1; }
done

. "$(dirname "$0")/loopback.sh"
lo_init xturn-service

# 1
v=$("$xturnd" --version) || fail "xturnd --version exited $?"
[[ $v =~ ^xturnd\ [[:graph:]]+$ ]] || fail "xturnd --version printed '$v'"
ver=${v#xturnd }
for b in xturngen xturnstat; do
	out=$("$build/$b" --version) || fail "$b --version exited $?"
	[ "$out" = "$b $ver" ] || fail "$b --version printed '$out', want '$b $ver'"
done
echo "PASS: --version: $ver, the same for all three"

# 2: xturnd up until it listens, then stopped; its log as it wrote it.
run_logged() { # LOG JOURNAL_STREAM-value|"" : starts xturnd, waits, stops it
	local log=$1 js=$2 port=$((20000 + RANDOM % 20000)) pid
	: >"$log"
	[ "$js" = this ] && js=$(stat -c %d:%i "$log")
	JOURNAL_STREAM=$js "$xturnd" --listening-ip=127.0.0.1 --listening-port=$port \
		--relay-ip=127.0.0.1 --no-xdp --no-tcp --user=u:p 2>>"$log" &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 50); do
		grep -q "listening on 127.0.0.1:$port/udp" "$log" && break
		sleep 0.1
	done
	kill "$pid"
	wait "$pid" || fail "xturnd exited $? on SIGTERM"
	grep -q "listening on 127.0.0.1:$port/udp" "$log" || fail "xturnd did not listen"
}
run_logged "$tmp/journal.log" this
grep -vq '^<[3467]>' "$tmp/journal.log" &&
	fail "a line without a priority prefix: $(grep -v '^<[3467]>' "$tmp/journal.log" | head -1)"
grep -q '^<6>listening on 127.0.0.1:[0-9]*/udp$' "$tmp/journal.log" ||
	fail "no '<6>listening on ...' line"
grep -q '^<6>[0-9]\{4\}-' "$tmp/journal.log" && fail "a journal line carries a timestamp"
echo "PASS: journal lines: $(wc -l <"$tmp/journal.log") with a priority, no timestamp"
run_logged "$tmp/plain.log" "1:1"
grep -q '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9:.]*Z info  listening on' "$tmp/plain.log" ||
	fail "another stream's JOURNAL_STREAM: no timestamped lines"
grep -q '^<' "$tmp/plain.log" && fail "another stream's JOURNAL_STREAM: priority prefixes"
echo "PASS: JOURNAL_STREAM of another stream: timestamped lines"

# 3: --check-config reads and checks, binds and loads nothing: it passes while
# another xturnd holds the port (a real start would exit 1), creates no pin
# dir, and a bad file fails with 2 naming its line.
printf 'realm = example.org\nuser = alice:secret\n' >"$tmp/good.conf"
printf 'realm = example.org\nmin-port = 70000\n' >"$tmp/bad.conf"
port=$((20000 + RANDOM % 20000))
"$xturnd" --listening-ip=127.0.0.1 --listening-port=$port --relay-ip=127.0.0.1 --no-xdp \
	--no-tcp --user=u:p 2>"$tmp/holder.log" &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$tmp/holder.log" && break; sleep 0.1; done
out=$("$xturnd" --check-config -c "$tmp/good.conf" --listening-ip=127.0.0.1 \
	--listening-port=$port --relay-ip=127.0.0.1 --bpf-pin-dir="$tmp/pins" 2>&1) ||
	fail "--check-config of a good file exited $?: $out"
[ "$out" = "xturnd: configuration $tmp/good.conf is good" ] || fail "--check-config said '$out'"
[ -e "$tmp/pins" ] && fail "--check-config created the pin dir"
[ "$(ss -Hlnu "sport = :$port" | wc -l)" = "$(nproc)" ] ||
	fail "--check-config left sockets on port $port: $(ss -Hlnu "sport = :$port" | wc -l)"
set +e
out=$("$xturnd" --check-config -c "$tmp/bad.conf" 2>&1)
rc=$?
set -e
[ $rc = 2 ] || fail "--check-config of a bad file exited $rc, want 2"
[[ $out == *"$tmp/bad.conf:2: key 'min-port'"* ]] || fail "--check-config said '$out'"
echo "PASS: --check-config: good (port held by another xturnd, no pins made), bad exits 2 at line 2"
