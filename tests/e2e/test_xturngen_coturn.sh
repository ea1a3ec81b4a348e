#!/usr/bin/env bash
# xturngen against coturn (the reference server), loopback only:
#  1. 2 allocations x 2 channels at 2000 pps for 2 s through coturn to an
#     echoing xturngen peer: the client offered what was asked, the peer got
#     >= 99 % of it, the echoes came back (long-term credentials).
#  2. TURN REST credentials (-W) against a coturn with a static auth secret.
#  3. A wrong password ends with the server's 401.
#  4. --pcap writes valid IPv4/UDP ChannelData packets (checked by tcpdump).
# Usage: tests/e2e/test_xturngen_coturn.sh BUILD_DIR
set -eu
build=${1:-build}
gen=$build/xturngen
[ -x "$gen" ] || { echo "missing $gen (make BUILD=$build)"; exit 1; }
command -v turnserver >/dev/null || { echo "coturn's turnserver is not installed"; exit 1; }

. "$(dirname "$0")/loopback.sh"
lo_init xturngen-e2e
# A numeric field of a flat JSON object.
# A number only: null, true or a string come out empty, and check fails on
# an empty operand (awk's syntax error) instead of reading it as 0.
field() { sed -n "s/.*\"$2\":\(-\{0,1\}[0-9][0-9.e+-]*\)[,}].*/\1/p" "$1"; }
# awk evaluates the float comparisons.
check() { awk "BEGIN { exit !($1) }" || fail "$2 ($1)"; }

port_free() { ! ss -Hlun "sport = :$1" | grep -q .; }
wait_listen() {
	for _ in $(seq 50); do
		ss -Hlun "sport = :$1" | grep -q . && return 0
		sleep 0.1
	done
	fail "nothing listens on udp port $1"
}

# Random free ports: other tests (and other coturns) may run at the same
# time on this host.
pick_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		port_free "$p" && port_free $((p + 1)) && { echo "$p"; return; }
	done
	fail "no free udp port"
}
TURN_PORT=$(pick_port)
REST_PORT=$(pick_port)
PEER_PORT=$(pick_port)
RELAY_MIN=$((40000 + RANDOM % 100 * 200))

coturn() { # port min-port log extra-args...
	local port=$1 min=$2 log=$3; shift 3
	turnserver -n --no-tls --no-dtls --no-cli --realm=xturn \
		--listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$port" \
		--min-port="$min" --max-port=$((min + 99)) --allow-loopback-peers \
		--db="$tmp/turndb-$port" --pidfile="$tmp/turn-$port.pid" --log-file=stdout \
		"$@" >"$tmp/$log" 2>&1 &
	pids+=($!)
	wait_listen "$port"
}
coturn $TURN_PORT $RELAY_MIN coturn.log --lt-cred-mech --user=u:p
coturn $REST_PORT $((RELAY_MIN + 101)) coturn-rest.log --use-auth-secret --static-auth-secret=s3cret

start_peer() { # json-file
	"$gen" --peer -L 127.0.0.1:$PEER_PORT --ports 2 --echo --json >"$1" 2>"$tmp/peer.err" &
	peer=$!
	pids+=("$peer")
	wait_listen $PEER_PORT
}
stop_peer() {
	kill -INT "$peer"
	wait "$peer" || fail "peer exited with an error"
}

# 1. Long-term credentials; one peer address, channel j goes to port + j.
start_peer "$tmp/peer.json"
"$gen" -s 127.0.0.1:$TURN_PORT -u u -w p -a 2 -c 2 -p 127.0.0.1:$PEER_PORT \
	-r 2000 -d 2 -t 2 --json >"$tmp/client.json" 2>"$tmp/client.err" ||
	fail "xturngen client failed"
stop_peer
cat "$tmp/client.json" "$tmp/peer.json"
sent=$(field "$tmp/client.json" sent)
echoed=$(field "$tmp/client.json" echo_received)
got=$(field "$tmp/peer.json" received)
flows=$(field "$tmp/peer.json" flows)
# The pacer sends rate x duration, give or take the last packet.
check "$sent >= 0.95 * 2000 * 2 && $sent <= 2000 * 2 + 32" "client offered $sent, asked 4000"
check "$(field "$tmp/client.json" send_errors) == 0" "send errors"
check "$got >= 0.99 * $sent" "peer received $got of $sent"
check "$flows == 4" "peer saw $flows flows, want 4 (2 allocations x 2 channels)"
check "$echoed >= 0.99 * $got" "client got $echoed echoes of $got"
check "$(field "$tmp/client.json" rtt_p50_us) > 0" "no round-trip samples"

# 2. TURN REST credentials.
start_peer "$tmp/peer-rest.json"
"$gen" -s 127.0.0.1:$REST_PORT -u alice -W s3cret -a 1 -c 1 -p 127.0.0.1:$PEER_PORT \
	-r 500 -d 1 --json >"$tmp/client-rest.json" 2>"$tmp/client-rest.err" ||
	fail "xturngen with REST credentials failed"
stop_peer
sent=$(field "$tmp/client-rest.json" sent)
got=$(field "$tmp/peer-rest.json" received)
check "$sent > 0 && $got >= 0.99 * $sent" "REST: peer received $got of $sent"

# 3. Wrong password: the server's 401 is reported, no data sent.
if "$gen" -s 127.0.0.1:$TURN_PORT -u u -w wrong -p 127.0.0.1:$PEER_PORT -d 1 \
	>"$tmp/client-bad.json" 2>"$tmp/client-bad.err"; then
	fail "a wrong password was accepted"
fi
grep -q "server error 401" "$tmp/client-bad.err" || fail "wrong password: no 401 reported"

# 4. pcap: 8 packets, 2 x 2 flows round robin, valid IP and UDP checksums.
"$gen" -s 127.0.0.1:$TURN_PORT -u u -w p -a 2 -c 2 -p 127.0.0.1:$PEER_PORT -d 0 \
	--pcap "$tmp/gen.pcap" --pcap-count 8 2>"$tmp/client-pcap.err" || fail "--pcap run failed"
# make deps installs tcpdump: without it this fails, it does not check less.
tcpdump -r "$tmp/gen.pcap" -nn -vv >"$tmp/pcap.txt" 2>/dev/null || fail "tcpdump cannot read the pcap"
cat "$tmp/pcap.txt"
[ "$(grep -c "> 127.0.0.1.$TURN_PORT: " "$tmp/pcap.txt")" = 8 ] || fail "pcap: want 8 packets to the server"
[ "$(grep -c "udp sum ok" "$tmp/pcap.txt")" = 8 ] || fail "pcap: bad UDP checksums"
! grep -q "bad cksum" "$tmp/pcap.txt" || fail "pcap: bad IP checksum"
# Bytes 28..31 (after IPv4 and UDP): ChannelData channel 0x4000 or 0x4001,
# length 64; then flow id and sequence number.
[ "$(tcpdump -r "$tmp/gen.pcap" -nn -x 2>/dev/null | grep -cE "^\s+0x0010: ( [0-9a-f]{4}){6} 400[01] 0040$")" = 8 ] ||
	fail "pcap: ChannelData headers"
echo "PASS"
