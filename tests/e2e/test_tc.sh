#!/usr/bin/env bash
# The TC fast path (xturn_tc), where XDP cannot deliver: the relay's veths
# have plain veths on their other ends (no XDP program, as a container's
# host end), so XDP_TX and redirects into them would be lost. xturnd in auto
# mode must pick TC there and say why; ChannelData client -> peer and the
# peer's echoes -> client are relayed by the TC program (the daemon may
# relay a first datagram or so, sent while the binding is written), IPv4
# and IPv6 clients. Datagrams with CHECKSUM_PARTIAL sums (a local
# socket's, tx offload on) are the daemon's (forward.h), and still arrive.
# At exit the filter is gone.
# Usage: tests/e2e/test_tc.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland
ALLOCS=2 CHANS=3 RATE=10000 PEER_PORT=4000

xt_init "${1:-build}"
[ "$XT_SERVER" = xturnd ] || xt_skip "xturnd only (XT_SERVER=$XT_SERVER)"
XT_PEER_XDP=0 xt_topology
# Full checksums, as datagrams from other hosts carry.
xt_tx_csum "$NS_C" c0 off
xt_tx_csum "$NS_P" p0 off
# GRO on the relay's veths, as on a NIC: the kernel must not make trains of
# the clients' datagrams, which the TC program would have to pass.
xt_ns "$NS_R" ethtool -K r0 gro on >/dev/null || die "gro on r0"
xt_ns "$NS_R" ethtool -K r1 gro on >/dev/null || die "gro on r1"
XT_XDP_MODE=auto start_server --user=$USER:$PASS --stats-socket="$XT_SOCK"

for dev in r0 r1; do
	if grep -q "fast path: $dev: TC ingress (not XDP: a veth whose other end is in another namespace)" \
		"$XT_SERVER_LOG" && xt_ns "$NS_R" tc filter show dev $dev ingress | grep -q xturn_tc; then
		pass "auto mode: $dev gets the TC program, and the log says why"
	else
		fail "auto mode on $dev: $(grep "fast path: $dev" "$XT_SERVER_LOG")"
	fi
done

grep -q "fast path: UDP GRO off on our sockets" "$XT_SERVER_LOG" &&
	pass "UDP GRO off on xturnd's sockets, and the log says so" ||
	fail "no log line: UDP GRO off"

# run NAME SERVER PEER: one second of ChannelData to an echoing peer.
run() {
	local name=$1 server=$2 peer=$3
	xt_spawn "$XT_TMP/peer-$name.json" ip netns exec "$NS_P" "$XT_BUILD/xturngen" --peer \
		-L "$peer:$PEER_PORT" --ports $CHANS --echo -d 20 --json
	PEER=$XT_BG_PID
	xt_wait_udp "$NS_P" $PEER_PORT 1 || die "xturngen peer does not listen"
	xt_ns "$NS_C" "$XT_BUILD/xturngen" -s "$server:$XT_PORT" -u $USER -w $PASS \
		-p "$peer:$PEER_PORT" -a $ALLOCS -c $CHANS -r $RATE -d 1 -l 200 \
		--json >"$XT_TMP/gen-$name.json" 2>"$XT_TMP/gen-$name.err" ||
		fail "$name: xturngen: $(tail -n 3 "$XT_TMP/gen-$name.err")"
	sleep 0.2
	kill -TERM "$PEER"
	xt_wait "$PEER"
	sent=$(gen_field "$XT_TMP/gen-$name.json" sent)
	echoed=$(gen_field "$XT_TMP/gen-$name.json" echo_received)
	rx=$(gen_field "$XT_TMP/peer-$name.json" received)
}

for fam in 4 6; do
	server=$R4C
	[ $fam = 6 ] && server="[$R6C]"
	c2p0=$(xt_xdp_count 0) p2c0=$(xt_xdp_count 1)
	xt_stat_json
	us0=$(xt_field c2p_udp_packets)
	run v$fam "$server" $P4
	c2p=$(($(xt_xdp_count 0) - c2p0)) p2c=$(($(xt_xdp_count 1) - p2c0))
	xt_stat_json
	us=$(($(xt_field c2p_udp_packets) - us0))
	if [ "${sent:-0}" -ge $((RATE / 2)) ] && [ "$rx" = "$sent" ] && [ "$echoed" = "$sent" ] &&
		[ $((c2p + us)) = "$sent" ] && [ "$us" -le $((sent / 1000)) ] && [ "$p2c" -ge $((echoed - echoed / 1000)) ]; then
		pass "IPv$fam client: $rx/$sent to the peer and $echoed back, by TC ($c2p c2p, $p2c p2c), $us by the daemon"
	else
		fail "IPv$fam client: sent ${sent:-?}, peer got ${rx:-?}, echoed ${echoed:-?}; TC c2p $c2p, p2c $p2c; daemon c2p ${us:-?}"
	fi
done

# A local socket's datagrams: the pseudo-header sum only. The TC program
# leaves them to the kernel (XT_CNT_PASS_UNUSUAL, once per skb: r0's GRO
# may have made one train of several), the daemon relays them.
xt_tx_csum "$NS_C" c0 on
c2p0=$(xt_xdp_count 0) odd0=$(xt_xdp_count 5)
xt_stat_json
us0=$(xt_field c2p_udp_packets)
run partial $R4C $P4
c2p=$(($(xt_xdp_count 0) - c2p0)) odd=$(($(xt_xdp_count 5) - odd0))
xt_stat_json
us=$(($(xt_field c2p_udp_packets) - us0))
if [ "${sent:-0}" -ge $((RATE / 2)) ] && [ "$rx" = "$sent" ] && [ "$c2p" = 0 ] &&
	[ "$us" = "$sent" ] && [ "$odd" -gt 0 ]; then
	pass "CHECKSUM_PARTIAL: $rx/$sent arrived, all by the daemon (TC passed $odd skbs: GRO may have made trains of them)"
else
	fail "CHECKSUM_PARTIAL: sent ${sent:-?}, peer got ${rx:-?}; TC c2p $c2p, passed $odd; daemon c2p ${us:-?}"
fi

stop_server
if xt_ns "$NS_R" tc filter show dev r0 ingress | grep -q xturn_tc; then
	fail "the TC filter is left on r0 after exit"
else
	pass "no TC filter left on r0 after exit"
fi
xt_finish
