#!/usr/bin/env bash
# xturngen --live-frames through xturnd's XDP path, IPv4 and IPv6: frames
# the injector XDP program builds and sends out of the client's veth
# (XDP_TX, BPF_PROG_RUN live frames) are relayed by the relay's XDP program
# (its checksums derive from the injector's, so the peer's kernel checks
# ours) and reach the peer with every flow, every packet the generator
# counted, in order: exactly as many as XDP forwarded, none through the
# daemon (its userspace c2p stays 0).
# Usage: tests/e2e/test_xturngen_live.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland
ALLOCS=2 CHANS=3 RATE=20000 PEER_PORT=4000
# One injector: lib.sh's veths have one queue, and two CPUs injecting into
# one 256-frame ring can overflow it (the bench gives each CPU a queue).
THREADS=1

xt_init "${1:-build}"
[ "$XT_SERVER" = xturnd ] || xt_skip "xturnd only (XT_SERVER=$XT_SERVER)"
xt_topology
start_server --user=$USER:$PASS --stats-socket="$XT_SOCK"
xt_xdp_attached "$NS_R" r0 || die "no XDP program on r0"

# Frames the kernel could not put on the relay's veth ring (256 frames: a
# scheduling hiccup of the relay's CPU at 20 kpps fills it). The kernel's
# loss, counted by the veth, not the relay's: the test accounts for it.
ring_drops() {
	xt_ns "$NS_C" ethtool -S c0 | awk '/tx_queue_[0-9]+_xdp_xmit_errors/ { s += $2 } END { print s + 0 }'
}

for fam in 4 6; do
	# IPv6 frames to the listener, relayed to the IPv4 peer (xturngen
	# allocates the default IPv4 relayed address).
	server=$R4C peer=$P4
	[ $fam = 6 ] && server="[$R6C]"
	c2p0=$(xt_xdp_count 0) ring0=$(ring_drops)
	xt_spawn "$XT_TMP/peer$fam.json" ip netns exec "$NS_P" "$XT_BUILD/xturngen" --peer \
		-L "$peer:$PEER_PORT" --ports $CHANS -d 20 --json
	PEER=$XT_BG_PID
	xt_wait_udp "$NS_P" $PEER_PORT 1 || die "xturngen peer does not listen"
	xt_ns "$NS_C" "$XT_BUILD/xturngen" -s "$server:$XT_PORT" -u $USER -w $PASS \
		-p "$peer:$PEER_PORT" -a $ALLOCS -c $CHANS -r $RATE -d 1 -l 200 -t $THREADS \
		--live-frames c0 --json >"$XT_TMP/gen$fam.json" 2>"$XT_TMP/gen$fam.err"
	rc=$?
	# Some kernels refuse live frames (EPERM, seen on a machine of this
	# kind): then xturngen must say so and fail, not report 0 pps.
	if grep -q 'the kernel refuses BPF_PROG_RUN live frames' "$XT_TMP/gen$fam.err"; then
		kill -TERM "$PEER"
		xt_wait "$PEER"
		[ $rc != 0 ] && pass "IPv$fam: the kernel refuses live frames: xturngen says so and exits $rc" ||
			fail "IPv$fam: the kernel refuses live frames, yet xturngen exits 0"
		continue
	fi
	[ $rc = 0 ] || fail "IPv$fam: xturngen --live-frames: $(tail -n 3 "$XT_TMP/gen$fam.err")"
	sleep 0.2
	kill -TERM "$PEER"
	xt_wait "$PEER"
	sent=$(gen_field "$XT_TMP/gen$fam.json" sent)
	rx=$(gen_field "$XT_TMP/peer$fam.json" received)
	lost=$(gen_field "$XT_TMP/peer$fam.json" lost)
	reorder=$(gen_field "$XT_TMP/peer$fam.json" reorder)
	flows=$(gen_field "$XT_TMP/peer$fam.json" flows)
	bad=$(gen_field "$XT_TMP/peer$fam.json" bad)
	c2p=$(($(xt_xdp_count 0) - c2p0)) ring=$(($(ring_drops) - ring0))
	xt_stat_json
	us=$(xt_field c2p_udp_packets)
	# Every frame either reached the peer through XDP or was one the
	# kernel counted as not fitting the ring (at most 1 %).
	if [ "${sent:-0}" -ge $((RATE / 2)) ] && [ "$rx" = $((sent - ring)) ] &&
		[ "$lost" = "$ring" ] && [ "$ring" -le $((sent / 100)) ] &&
		[ "$reorder" = 0 ] && [ "$bad" = 0 ] && [ "$flows" = $((ALLOCS * CHANS)) ] &&
		[ "$c2p" = "$rx" ] && [ "$us" = 0 ]; then
		pass "IPv$fam: $rx/$sent live frames in $flows flows reached the peer, in order, $c2p by XDP, none by the daemon ($ring not taken by the veth ring)"
	else
		fail "IPv$fam: sent ${sent:-?}, peer got ${rx:-?} in ${flows:-?} flows (lost ${lost:-?}, reorder ${reorder:-?}, bad ${bad:-?}); XDP c2p $c2p, daemon c2p ${us:-?}; veth ring drops $ring"
		tail -n 5 "$XT_TMP/gen$fam.err"
	fi
done
stop_server
xt_finish
