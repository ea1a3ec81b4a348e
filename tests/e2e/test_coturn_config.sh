#!/usr/bin/env bash
# coturn's configurations load, and its logging and process keys do what
# they do in coturn (loopback only):
#  1. Debian's stock /etc/turnserver.conf (syslog, no-rfc5780... on) passes
#     --check-config.
#  2. coturn's example configuration with every key uncommented: every line
#     parses (the one error left is the cross-key one: no-udp, no-tcp and
#     no-tls leave nothing to listen on), each key that does not apply is
#     warned about once, naming its line, and no key xturn applies is.
#  3. The same without those three keys, with a test certificate and an
#     encrypted key opened by pkey-pwd: exit 0.
#  4. A run with -v, log-file, pidfile and no-udp: the pid file holds the
#     pid, debug lines reach the file, no UDP socket but TCP; after the file
#     is moved and SIGHUP, lines go to a new file; the pid file goes at exit.
#  5. syslog: the lines reach /dev/log (a socket of the test's, bind-mounted
#     over /dev in a mount namespace of its own) with the daemon facility.
# Usage: tests/e2e/test_coturn_config.sh BUILD_DIR
set -eu
build=${1:-build}
xturnd=$build/xturnd
[ -x "$xturnd" ] || { echo "missing $xturnd (make BUILD=$build)"; exit 1; }
example=/usr/share/doc/coturn/examples/etc/turnserver.conf
[ -r "$example" ] || { echo "missing $example (make deps installs coturn)"; exit 1; }

. "$(dirname "$0")/loopback.sh"
lo_init xturn-coturn-conf

# 1
out=$("$xturnd" --check-config -c /etc/turnserver.conf --user=u:p 2>&1) ||
	fail "Debian's /etc/turnserver.conf: exit $?: $out"
echo "PASS: Debian's /etc/turnserver.conf loads ($(grep -c '^[^#]' /etc/turnserver.conf) keys on)"

# 2: the lines that are on, and every commented-out "#key" or "#key=value".
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 1 -subj /CN=localhost \
	-passout pass:coturn-test -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
grep -q ENCRYPTED "$tmp/key.pem" || fail "openssl wrote an unencrypted key"
{
	grep -v '^#' "$example" | grep .
	sed -nE 's/^#[[:space:]]?([A-Za-z][A-Za-z0-9_-]*([[:space:]]*=.*)?)$/\1/p' "$example"
} | sed -E "s|^cert=.*|cert=$tmp/cert.pem|; s|^pkey=.*|pkey=$tmp/key.pem|;
	s|^pkey-pwd=.*|pkey-pwd=coturn-test|" >"$tmp/all.conf"
nkeys=$(cut -d= -f1 "$tmp/all.conf" | sort -u | wc -l)
[ "$nkeys" -gt 80 ] || fail "only $nkeys keys uncommented from $example"
rc=0
out=$("$xturnd" --check-config -c "$tmp/all.conf" 2>&1) || rc=$?
[ $rc = 2 ] || fail "every key uncommented: exit $rc, want 2: $out"
[ "$(grep -vc '^xturnd: warning: ' <<<"$out")" = 1 ] &&
	grep -qx 'xturnd: no-udp, no-tcp and no-tls: nothing to listen on' <<<"$out" ||
	fail "every key uncommented: not only the listener error: $(grep -v warning: <<<"$out")"
warned=$(sed -nE "s/^xturnd: warning: [^:]*:[0-9]+: key '([^']*)' does not apply.*/\1/p" \
	<<<"$out")
[ -n "$warned" ] || fail "no key warned about"
dup=$(sort <<<"$warned" | uniq -d)
[ -z "$dup" ] || fail "warned more than once: $dup"
for k in $warned; do
	line=$(grep -nE "^$k([[:space:]=]|$)" "$tmp/all.conf" | head -1 | cut -d: -f1)
	grep -q "warning: $tmp/all.conf:$line: key '$k'" <<<"$out" ||
		fail "the warning for $k does not name its first line $line"
done
for k in realm user relay-ip stale-nonce syslog log-file pidfile alternate-server; do
	grep -qx "$k" <<<"$warned" && fail "$k is applied, yet warned about as not applying"
done
echo "PASS: every key of coturn's example: $nkeys keys parse, $(wc -l <<<"$warned") warned once"

# 3
grep -Ev '^no-(udp|tcp|tls)$' "$tmp/all.conf" >"$tmp/some.conf"
out=$("$xturnd" --check-config -c "$tmp/some.conf" 2>&1) ||
	fail "without no-udp/no-tcp/no-tls: exit $?: $(grep -v warning: <<<"$out")"
sed 's/^pkey-pwd=.*/pkey-pwd=wrong/' "$tmp/some.conf" >"$tmp/badpwd.conf"
rc=0
out=$("$xturnd" --check-config -c "$tmp/badpwd.conf" 2>&1) || rc=$?
[ $rc = 2 ] && grep -q "key 'pkey'" <<<"$out" || fail "a wrong pkey-pwd: exit $rc: $out"
echo "PASS: coturn's example loads, TLS key opened with pkey-pwd (a wrong one refused)"

# 4
port=$((20000 + RANDOM % 20000))
"$xturnd" -v --no-journal --listening-ip=127.0.0.1 --listening-port=$port --relay-ip=127.0.0.1 --no-xdp \
	--user=u:p --no-udp --log-file="$tmp/turn.log" --pidfile="$tmp/xturnd.pid" \
	--stats-socket="$tmp/stats.sock" 2>"$tmp/stderr.err" &
pid=$!
pids+=("$pid")
for _ in $(seq 50); do grep -q "listening on" "$tmp/turn.log" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on 127.0.0.1:$port/tcp" "$tmp/turn.log" || fail "no TCP listener logged"
# A Binding request with an unknown comprehension-required attribute: its
# 420 is a debug line.
python3 - $port <<'PY' || fail "no answer to a Binding request over TCP"
import os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(bytes.fromhex("000100082112a442") + os.urandom(12) + bytes.fromhex("0030000400000000"))
assert len(s.recv(2048)) >= 20
PY
for _ in $(seq 50); do grep -q ' debug ' "$tmp/turn.log" && break; sleep 0.1; done
grep -q ' debug .*error 420' "$tmp/turn.log" || fail "-v: no debug line for the 420 in the log file"
[ ! -s "$tmp/stderr.err" ] || fail "log-file: lines on stderr too"
[ "$(cat "$tmp/xturnd.pid")" = "$pid" ] || fail "pidfile holds '$(cat "$tmp/xturnd.pid")', pid $pid"
[ -z "$(ss -Hlnu "sport = :$port")" ] || fail "no-udp: a UDP socket on $port"
[ -n "$(ss -Hlnt "sport = :$port")" ] || fail "no TCP socket on $port"
mv "$tmp/turn.log" "$tmp/turn.log.1"
kill -HUP "$pid"
for _ in $(seq 50); do grep -q "reloaded" "$tmp/turn.log" 2>/dev/null && break; sleep 0.1; done
grep -q "reloaded" "$tmp/turn.log" || fail "after SIGHUP: no new log file with the reload"
grep -q "reloaded" "$tmp/turn.log.1" && fail "after SIGHUP: the moved file still written"
kill "$pid"
wait "$pid" || fail "xturnd exited $? on SIGTERM"
[ -e "$tmp/xturnd.pid" ] && fail "the pid file is left after exit"
echo "PASS: -v, log-file (reopened on SIGHUP), pidfile, no-udp"

# 5: a datagram socket of ours as /dev/log, seen only by xturnd's namespace.
mkdir "$tmp/dev"
python3 - "$tmp/dev/log" "$tmp/syslog.out" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(10)
with open(sys.argv[2], "wb", buffering=0) as out:
    try:
        while True:
            out.write(s.recv(4096) + b"\n")
    except socket.timeout:
        pass
EOF
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/dev/log" ] && break; sleep 0.1; done
for d in null zero urandom random; do touch "$tmp/dev/$d"; done
port=$((20000 + RANDOM % 20000))
unshare -m bash -c '
	mount --make-rprivate /
	for d in null zero urandom random; do mount --bind /dev/$d "$1/dev/$d"; done
	mount --bind "$1/dev" /dev
	shift
	exec "$@"' - "$tmp" "$xturnd" --no-journal --syslog --listening-ip=127.0.0.1 --listening-port=$port \
	--relay-ip=127.0.0.1 --no-xdp --no-tcp --user=u:p --stats-socket="$tmp/stats2.sock" \
	2>"$tmp/stderr2.err" &
pid=$!
pids+=("$pid")
for _ in $(seq 50); do grep -q "listening on" "$tmp/syslog.out" 2>/dev/null && break; sleep 0.1; done
# <30>: facility daemon (3) * 8 + priority info (6).
grep -q "^<30>.*xturnd\[[0-9]*\]: listening on 127.0.0.1:$port/udp" "$tmp/syslog.out" ||
	fail "syslog: no '<30>... xturnd[PID]: listening on' datagram: $(head -3 "$tmp/syslog.out")"
[ ! -s "$tmp/stderr2.err" ] || fail "syslog: lines on stderr too"
kill "$pid"
wait "$pid" || fail "xturnd exited $? on SIGTERM"
echo "PASS: syslog: $(wc -l <"$tmp/syslog.out") lines to /dev/log, daemon facility"
