#!/usr/bin/env bash
# xturnstat and the daemon's metrics, loopback only:
#  1. xturnd (userspace relaying, --prometheus, a private stats socket) and
#     xturngen (2 allocations x 2 channels, 1000 pps for 2 s to an echoing
#     xturngen peer): while the client runs, xturnstat --json shows its
#     allocations, permissions, channels and user; afterwards the relayed
#     packet counts agree with what the client sent and the peer received.
#     Malformed datagrams are counted.
#  2. GET /metrics returns exactly what xturnstat --prometheus prints (the
#     same numbers under the same names); other paths get 404.
#  3. The table, the live view with rates, the error for a missing socket;
#     a second xturnd on the same port exits 1 naming it.
#  4. xturnstat reads counters from pinned maps made by bpftool in a private
#     bpffs (global and per-channel), no daemon needed; without a bpffs the
#     test ends skipped (77), never passed.
# Usage: tests/e2e/test_stats.sh BUILD_DIR
set -eu
build=${1:-build}
xturnd=$build/xturnd gen=$build/xturngen stat=$build/xturnstat
for b in "$xturnd" "$gen" "$stat"; do
	[ -x "$b" ] || { echo "missing $b (make BUILD=$build)"; exit 1; }
done

. "$(dirname "$0")/loopback.sh"
lo_init xturn-stats
# A numeric field of a flat JSON object.
# A number only: null, true or a string come out empty, and check fails on
# an empty operand (awk's syntax error) instead of reading it as 0.
field() { sed -n "s/.*\"$2\":\(-\{0,1\}[0-9][0-9.e+-]*\)[,}].*/\1/p" "$1"; }
check() { awk "BEGIN { exit !($1) }" || fail "$2 ($1)"; }

free_port() { # proto port
	! ss -Hln"$1" "sport = :$2" | grep -q .
}
pick_port() { # proto
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		free_port "$1" "$p" && free_port "$1" $((p + 1)) && { echo "$p"; return; }
	done
	fail "no free $1 port"
}
wait_listen() { # proto port
	for _ in $(seq 50); do
		free_port "$1" "$2" || return 0
		sleep 0.1
	done
	fail "nothing listens on $1 port $2"
}

TURN_PORT=$(pick_port u)
PEER_PORT=$(pick_port u)
PROM_PORT=$(pick_port t)
RELAY_MIN=$((40000 + RANDOM % 100 * 200))
SOCK=$tmp/run/xturnd.sock	# run/ does not exist: xturnd makes it
NOPINS=$tmp/no-pins		# so pinned maps of another xturnd are not read

"$xturnd" --no-journal --listening-ip=127.0.0.1 --listening-port=$TURN_PORT --min-port=$RELAY_MIN \
	--max-port=$((RELAY_MIN + 99)) --no-xdp --user=u:p --allowed-peer-ip=127.0.0.1 \
	--prometheus --prometheus-port=$PROM_PORT --stats-socket="$SOCK" >"$tmp/xturnd.log" 2>&1 &
xpid=$!
pids+=($xpid)
wait_listen u $TURN_PORT
wait_listen t $PROM_PORT
# prometheus-ip defaults to loopback: bound there, not on every address (a
# client on 127.0.0.1 would reach a 0.0.0.0 listener too).
[ "$(ss -Hltn "sport = :$PROM_PORT" | awk '{ print $4 }')" = "127.0.0.1:$PROM_PORT" ] ||
	fail "metrics endpoint not on 127.0.0.1 only: $(ss -Hltn "sport = :$PROM_PORT")"
[ -S "$SOCK" ] || fail "no stats socket at $SOCK"

"$gen" --peer -L 127.0.0.1:$PEER_PORT --ports 2 --echo --json >"$tmp/peer.json" 2>"$tmp/peer.err" &
peer=$!
pids+=($peer)
wait_listen u $PEER_PORT

# 1. Live state while the client runs.
"$gen" -s 127.0.0.1:$TURN_PORT -u u -w p -a 2 -c 2 -p 127.0.0.1:$PEER_PORT -r 1000 -d 2 \
	--json >"$tmp/client.json" 2>"$tmp/client.err" &
client=$!
pids+=($client)
live=
for _ in $(seq 40); do
	"$stat" --socket "$SOCK" --pin-dir "$NOPINS" --json >"$tmp/live.json" 2>"$tmp/stat.err" ||
		fail "xturnstat --json failed"
	if [ "$(field "$tmp/live.json" channels)" = 4 ]; then live=1; break; fi
	sleep 0.1
done
[ -n "$live" ] || fail "never saw the 4 channels"
cat "$tmp/live.json"
check "$(field "$tmp/live.json" allocations) == 2" "live allocations"
# Both channels of an allocation go to one peer IP: one permission each.
check "$(field "$tmp/live.json" permissions) == 2" "live permissions"
check "$(field "$tmp/live.json" users) == 1" "live users"
check "$(field "$tmp/live.json" fastpath) == 0" "fast path should be off"
grep -q '"xdp_' "$tmp/live.json" && fail "XDP counters with the fast path off"
# The live view: one refresh with rates while the client still sends.
"$stat" --socket "$SOCK" --pin-dir "$NOPINS" --watch --count 1 >"$tmp/watch.txt" 2>"$tmp/stat.err" ||
	fail "xturnstat --watch failed"
cat "$tmp/watch.txt"
rate=$(awk '/^userspace relayed c2p udp/ { print $7 }' "$tmp/watch.txt")
check "${rate:-0} > 0" "--watch: no c2p rate while traffic flows"
wait "$client" || fail "xturngen client failed"
kill -INT "$peer"
wait "$peer" || fail "peer failed"

# Malformed datagrams are dropped and counted (the README says so): a STUN
# header whose length runs past the datagram (twice), a ChannelData header
# whose length does.
malformed() {
	"$stat" --socket "$SOCK" --pin-dir "$NOPINS" --json >"$tmp/m.json" 2>"$tmp/stat.err" ||
		fail "xturnstat --json failed"
	field "$tmp/m.json" malformed
}
m0=$(malformed)
for _ in 1 2; do
	printf '\x00\x01\x00\x08\x21\x12\xa4\x42malformed-ab' >/dev/udp/127.0.0.1/$TURN_PORT
done
printf '\x40\x00\x00\x10abcd' >/dev/udp/127.0.0.1/$TURN_PORT
for _ in $(seq 20); do
	[ "$(malformed)" = $((m0 + 3)) ] && break
	sleep 0.1
done
check "$(malformed) == $m0 + 3" "malformed datagrams counted"

"$stat" --socket "$SOCK" --pin-dir "$NOPINS" --json >"$tmp/after.json" 2>"$tmp/stat.err" ||
	fail "xturnstat --json failed"
cat "$tmp/client.json" "$tmp/peer.json" "$tmp/after.json"
sent=$(field "$tmp/client.json" sent)
echoed=$(field "$tmp/client.json" echo_received)
got=$(field "$tmp/peer.json" received)
c2p=$(field "$tmp/after.json" c2p_udp_packets)
p2c=$(field "$tmp/after.json" p2c_udp_packets)
check "$sent > 1000" "the client sent only $sent"
# Userspace relays everything: what it relayed lies between what the peer
# got and what the client sent (equal on a quiet loopback).
check "$c2p >= $got && $c2p <= $sent" "relayed c2p $c2p, client sent $sent, peer got $got"
check "$p2c >= $echoed && $p2c <= $got" "relayed p2c $p2c, peer echoed $got, client got $echoed"
check "$(field "$tmp/after.json" c2p_udp_bytes) == $c2p * 64" "c2p bytes: 64-byte payloads"
check "$(field "$tmp/after.json" allocations_created) == 2" "allocations created"
check "$(field "$tmp/after.json" allocations) == 0" "allocations left after the client's exit"
check "$(field "$tmp/after.json" channels) == 0" "channels left"
check "$(field "$tmp/after.json" auth_failures) == 0" "auth failures"

# 2. The endpoint and xturnstat --prometheus: same text (the counters are
#    still now), in the exposition format.
curl -sS -D "$tmp/headers.txt" "http://127.0.0.1:$PROM_PORT/metrics" >"$tmp/metrics.txt" ||
	fail "GET /metrics"
"$stat" --socket "$SOCK" --pin-dir "$NOPINS" --prometheus >"$tmp/stat-prom.txt" 2>"$tmp/stat.err" ||
	fail "xturnstat --prometheus"
grep -q "^HTTP/1.0 200" "$tmp/headers.txt" || fail "GET /metrics: not 200"
diff "$tmp/metrics.txt" "$tmp/stat-prom.txt" || fail "/metrics and xturnstat --prometheus differ"
grep -qx "xturn_relayed_packets_total{path=\"userspace\",direction=\"c2p\",transport=\"udp\"} $c2p" \
	"$tmp/metrics.txt" || fail "/metrics: c2p packets are not $c2p"
grep -qx "xturn_relayed_packets_total{path=\"userspace\",direction=\"p2c\",transport=\"udp\"} $p2c" \
	"$tmp/metrics.txt" || fail "/metrics: p2c packets are not $p2c"
grep -qx "xturn_allocations_created_total 2" "$tmp/metrics.txt" || fail "/metrics: allocations created"
grep -qx "# TYPE xturn_allocations gauge" "$tmp/metrics.txt" || fail "/metrics: TYPE lines"
# Prometheus' own parser reads it all: every family has samples of its type,
# the build's version and the start time are there, relayed traffic is one
# family labelled by path, direction and transport.
python3 - "$tmp/metrics.txt" "$("$xturnd" --version | cut -d' ' -f2)" <<'PY' ||
import sys, time
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
assert all(f.samples for f in fams.values()), "a family without samples"
info = fams["xturn_build_info"].samples[0]
assert info.labels["version"] == sys.argv[2] and info.value == 1, info
start = fams["process_start_time_seconds"].samples[0].value
assert time.time() - 600 < start <= time.time(), start
rel = fams["xturn_relayed_packets"]
assert rel.type == "counter"
paths = {(s.labels["path"], s.labels["direction"], s.labels["transport"]) for s in rel.samples}
assert ("userspace", "c2p", "tls") in paths and ("userspace", "p2c", "udp") in paths, paths
assert {s.labels["path"] for s in fams["xturn_dropped_packets"].samples} == {"userspace"}
print("PASS: prometheus_client parses %d families" % len(fams))
PY
	fail "prometheus_client does not accept /metrics"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PROM_PORT/")
[ "$code" = 404 ] || fail "GET / answered $code, want 404"

# 3. The table, and a missing socket named.
"$stat" --socket "$SOCK" --pin-dir "$NOPINS" >"$tmp/table.txt" 2>"$tmp/stat.err" || fail "xturnstat table"
cat "$tmp/table.txt"
grep -qE "^userspace relayed c2p udp +$c2p " "$tmp/table.txt" || fail "table: c2p row"
grep -q "fast path off" "$tmp/table.txt" || fail "table: fast path state"
if "$stat" --socket "$tmp/none.sock" --pin-dir "$NOPINS" >/dev/null 2>"$tmp/none.err"; then
	fail "xturnstat succeeded with neither maps nor daemon"
fi
grep -q "no pinned maps in $NOPINS" "$tmp/none.err" && grep -q "no daemon on $tmp/none.sock" "$tmp/none.err" ||
	fail "missing-source errors: $(cat "$tmp/none.err")"

# A second daemon on the same port is refused, naming the port (its
# SO_REUSEPORT listeners would have joined the first's); the first lives on.
rc=0
timeout 10 "$xturnd" --no-journal --listening-ip=127.0.0.1 --listening-port=$TURN_PORT --no-xdp --user=u:p \
	--stats-socket="$tmp/second.sock" >"$tmp/second.log" 2>&1 || rc=$?
[ $rc = 1 ] || fail "second xturnd on port $TURN_PORT: exit $rc, want 1"
grep -q "127.0.0.1:$TURN_PORT/udp is in use by another process" "$tmp/second.log" ||
	fail "second xturnd: no message naming the port"
"$stat" --socket "$SOCK" --pin-dir "$NOPINS" >/dev/null 2>&1 || fail "first xturnd gone"

# The socket file goes with the daemon.
kill -TERM "$xpid"
wait "$xpid" || fail "xturnd exited with an error"
[ ! -e "$SOCK" ] || fail "stats socket left behind"

# 4. Pinned maps made by hand in a private bpffs.
pinned_check() {
	set -eu
	local d=$tmp/bpffs ncpu
	mkdir -p "$d"
	mount -t bpf none "$d" || return 77	# the one real skip: no bpffs here
	ncpu=$(nproc --all)
	bpftool map create "$d/xt_stats" type percpu_array key 4 value 16 entries 11 name xt_stats
	# XT_CNT_C2P (0): 5 packets, 200 bytes on every CPU
	bpftool map update pinned "$d/xt_stats" key 0 0 0 0 value 5 0 0 0 0 0 0 0 200 0 0 0 0 0 0 0
	bpftool map create "$d/xt_c2p" type hash key 40 value 104 entries 16 name xt_c2p
	bpftool map create "$d/xt_p2c" type hash key 40 value 104 entries 16 name xt_p2c
	# client ::ffff:10.0.0.1:4660, listener ::ffff:10.0.0.2:3478, channel 0x4000
	# -> relay ::ffff:10.0.0.2:50000, peer ::ffff:10.0.0.3:3480: 7 packets,
	# 700 bytes; its p2c twin: 3 packets, 300 bytes; no next hop cached, expiry slot 0
	local m="0 0 0 0 0 0 0 0 0 0 255 255 10 0 0" nh
	nh=$(printf '0 %.0s' $(seq 48))	# and exp_slot, pad
	bpftool map update pinned "$d/xt_c2p" key $m 1 $m 2 0x12 0x34 0x0d 0x96 0x40 0 0 0 \
		value $m 2 $m 3 0xc3 0x50 0x0d 0x98 0 0 0 0 7 0 0 0 0 0 0 0 188 2 0 0 0 0 0 0 $nh
	bpftool map update pinned "$d/xt_p2c" key $m 3 $m 2 0x0d 0x98 0xc3 0x50 0 0 0 0 \
		value $m 1 $m 2 0x12 0x34 0x0d 0x96 0x40 0 0 0 3 0 0 0 0 0 0 0 44 1 0 0 0 0 0 0 $nh
	"$stat" --pin-dir "$d" --socket "$tmp/none.sock" --json >"$tmp/pinned.json" 2>"$tmp/pinned.err"
	cat "$tmp/pinned.json"
	check "$(field "$tmp/pinned.json" xdp_forwarded_c2p_packets) == 5 * $ncpu" "pinned: packets summed over CPUs"
	check "$(field "$tmp/pinned.json" xdp_forwarded_c2p_bytes) == 200 * $ncpu" "pinned: bytes"
	check "$(field "$tmp/pinned.json" xdp_passed_not_ours_packets) == 0" "pinned: other counters"
	grep -q '"allocations"' "$tmp/pinned.json" && fail "pinned: daemon fields without a daemon"
	grep -q "no daemon on" "$tmp/pinned.err" || fail "pinned: missing socket not reported"
	"$stat" --pin-dir "$d" --channels >"$tmp/channels.txt"
	cat "$tmp/channels.txt"
	grep -qE "^10\.0\.0\.1:4660 +0x4000 +10\.0\.0\.2:50000 +10\.0\.0\.3:3480 +7 +700 +3 +300$" \
		"$tmp/channels.txt" || fail "pinned: channel row"
}
export -f pinned_check check field fail
export tmp stat
rc=0
unshare -m bash -c pinned_check || rc=$?
if [ $rc = 77 ]; then
	echo "no private bpffs here: pinned-map check skipped"
	exit 77
fi
[ $rc = 0 ] || fail "pinned-map check (exit $rc)"
echo "PASS"
