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
#  4. sd_notify to a socket of the test's: READY=1 once bound, STATUS,
#     RELOADING=1/READY=1 around SIGHUP, STOPPING=1.
#  5. make install/uninstall into a DESTDIR: the unit passes systemd-analyze
#     verify, the sample config refuses to start without credentials and
#     loads with its keys on, a reinstall keeps it, uninstall leaves it.
# Usage: tests/e2e/test_service.sh BUILD_DIR
set -eu
build=${1:-build}
xturnd=$build/xturnd
for b in xturnd xturngen xturnstat xturnctl; do
	[ -x "$build/$b" ] || { echo "missing $build/$b (make BUILD=$build)"; exit 1; }
done

. "$(dirname "$0")/loopback.sh"
lo_init xturn-service

# 1
v=$("$xturnd" --version) || fail "xturnd --version exited $?"
[[ $v =~ ^xturnd\ [[:graph:]]+$ ]] || fail "xturnd --version printed '$v'"
ver=${v#xturnd }
for b in xturngen xturnstat xturnctl; do
	out=$("$build/$b" --version) || fail "$b --version exited $?"
	[ "$out" = "$b $ver" ] || fail "$b --version printed '$out', want '$b $ver'"
done
echo "PASS: --version: $ver, the same for all four"

# 2: xturnd up until it listens, then stopped; its log as it wrote it.
run_logged() { # LOG JOURNAL_STREAM-value|"" : starts xturnd, waits, stops it
	local log=$1 js=$2 port=$((20000 + RANDOM % 20000)) pid
	: >"$log"
	[ "$js" = this ] && js=$(stat -c %d:%i "$log")
	JOURNAL_STREAM=$js "$xturnd" --no-journal --listening-ip=127.0.0.1 --listening-port=$port \
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
"$xturnd" --no-journal --listening-ip=127.0.0.1 --listening-port=$port --relay-ip=127.0.0.1 --no-xdp \
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

# 4: sd_notify: READY=1 only once the listeners are bound, a STATUS= line,
# RELOADING=1 (with MONOTONIC_USEC) then READY=1 around SIGHUP, STOPPING=1
# on SIGTERM; a manager's socket played by a few lines of Python.
cat >"$tmp/notify.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "a") as out:
    try:
        while True:
            out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
            out.flush()
    except socket.timeout:
        pass
PY
: >"$tmp/notify.out"
python3 "$tmp/notify.py" "$tmp/notify.sock" "$tmp/notify.out" &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/notify.sock" ] && break; sleep 0.1; done
wait_for() { # PATTERN: a notify message matching it, within 5 s
	for _ in $(seq 50); do grep -q "$1" "$tmp/notify.out" && return 0; sleep 0.1; done
	fail "no notify message '$1' (got: $(tr '\n' '|' <"$tmp/notify.out"))"
}
port=$((20000 + RANDOM % 20000))
NOTIFY_SOCKET=$tmp/notify.sock "$xturnd" --no-journal --listening-ip=127.0.0.1 --listening-port=$port \
	--relay-ip=127.0.0.1 --no-xdp --no-tcp --user=u:p 2>"$tmp/notify.log" &
xpid=$!
pids+=($xpid)
wait_for '^READY=1$'
[ "$(ss -Hlnu "sport = :$port" | wc -l)" -ge 1 ] || fail "READY=1 before the listener was bound"
grep -q '^STATUS=0 allocations, 0 channels (0 in XDP); fast path off$' "$tmp/notify.out" ||
	fail "no STATUS line (got: $(tr '\n' '|' <"$tmp/notify.out"))"
kill -HUP $xpid
wait_for '^RELOADING=1 MONOTONIC_USEC=[0-9][0-9]*$'
[ "$(grep -A1 '^RELOADING=1' "$tmp/notify.out" | tail -n 1)" = "READY=1" ] ||
	fail "no READY=1 after RELOADING=1"
kill $xpid
wait_for '^STOPPING=1$'
wait $xpid || fail "xturnd exited $? on SIGTERM"
echo "PASS: sd_notify: READY=1 (listener bound), STATUS, RELOADING=1/READY=1 on SIGHUP, STOPPING=1"

# 5: make install into a DESTDIR: binaries, the unit (PREFIX substituted,
# clean for systemd-analyze verify), the sample config, which a reinstall
# keeps and uninstall leaves; the sample refuses to start until it has
# credentials, and passes with its commented keys turned on.
root=$tmp/root src=$(cd "$(dirname "$0")/../.." && pwd)
make -s -C "$src" BUILD="$(cd "$build" && pwd)" install DESTDIR="$root" >"$tmp/install.log" 2>&1 ||
	fail "make install: $(cat "$tmp/install.log")"
unit=$root/usr/local/lib/systemd/system/xturnd.service
for f in usr/local/sbin/xturnd usr/local/bin/xturngen usr/local/bin/xturnstat usr/local/bin/xturnctl; do
	[ -x "$root/$f" ] || fail "make install: no $f"
done
[ -f "$unit" ] && [ -f "$root/etc/xturn/xturn.conf" ] || fail "make install: no unit or config"
for f in man1/xturngen.1 man5/xturn.conf.5 man8/xturnd.8 man8/xturnctl.8 man8/xturnstat.8; do
	[ -s "$root/usr/local/share/man/$f" ] || fail "make install: no man page $f"
done
grep -q '^ExecStart=/usr/local/sbin/xturnd -c /etc/xturn/xturn.conf ' "$unit" ||
	fail "unit: ExecStart not under PREFIX"
grep -q '^Type=notify$' "$unit" || fail "unit: not Type=notify"
# Verified against systemd's own targets only (SYSTEMD_UNIT_PATH), not every
# unit this host happens to have.
mkdir -p "$tmp/units"
for u in sysinit.target basic.target shutdown.target network-online.target multi-user.target; do
	cp "/lib/systemd/system/$u" "$tmp/units/"
done
sed "s|/usr/local|$root/usr/local|g" "$unit" >"$tmp/units/xturnd.service"
SYSTEMD_UNIT_PATH=$tmp/units systemd-analyze verify --man=no "$tmp/units/xturnd.service" \
	>"$tmp/verify.log" 2>&1 ||
	fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
set +e
out=$("$root/usr/local/sbin/xturnd" --check-config -c "$root/etc/xturn/xturn.conf" 2>&1)
rc=$?
set -e
[ $rc = 2 ] && [[ $out == *"no credentials"* ]] ||
	fail "the sample config as shipped: exit $rc, '$out' (want 2, no credentials)"
sed 's/^#\([a-z]\)/\1/; s/\t#.*//' "$root/etc/xturn/xturn.conf" | grep -v '^cert\|^pkey' \
	>"$tmp/all.conf"
"$xturnd" --check-config -c "$tmp/all.conf" >/dev/null || fail "the sample's keys do not load"
echo "# mine" >>"$root/etc/xturn/xturn.conf"
make -s -C "$src" BUILD="$(cd "$build" && pwd)" install DESTDIR="$root" >"$tmp/install.log" 2>&1
tail -n 1 "$root/etc/xturn/xturn.conf" | grep -q '^# mine$' || fail "reinstall overwrote the config"
make -s -C "$src" BUILD="$(cd "$build" && pwd)" uninstall DESTDIR="$root" >"$tmp/install.log" 2>&1
left=$(cd "$root" && find . -type f | sort | tr '\n' ' ')
[ "$left" = "./etc/xturn/xturn.conf " ] || fail "after uninstall: $left"
echo "PASS: make install/uninstall: unit verified, sample config refused until configured, kept"
