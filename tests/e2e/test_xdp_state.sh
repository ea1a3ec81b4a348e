#!/usr/bin/env bash
# The XDP fast path follows TURN state, through the real daemon:
#   1. ChannelData is carried by XDP, not the daemon (kernel counters move,
#      the daemon's userspace relay counters do not), and arrives intact;
#   2. the maps hold exactly the daemon's live channels (the invariant);
#   3. a channel binding that expires stops being forwarded, and its map
#      entries go, while its allocation lives on;
#   4. deleting the allocations empties the maps.
# Usage: tests/e2e/test_xdp_state.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland
ALLOCS=2 CHANS=3 RATE=3000 PEER_PORT=4000

xt_init "${1:-build}"
[ "$XT_SERVER" = xturnd ] || xt_skip "xturnd only (XT_SERVER=$XT_SERVER)"
xt_topology

# 1 + 2: a short flood with channels that live long enough.
start_server --user=$USER:$PASS --stats-socket="$XT_SOCK" --channel-lifetime=4 \
	--permission-lifetime=300
xt_spawn "$XT_TMP/peer.json" ip netns exec "$NS_P" "$XT_BUILD/xturngen" --peer \
	-L $P4:$PEER_PORT --ports $CHANS -d 12 --json
PEER=$XT_BG_PID
# Its last port open: all are (one socket each).
xt_wait_udp "$NS_P" $((PEER_PORT + CHANS - 1)) 1 || die "xturngen peer does not listen"
xt_spawn "$XT_TMP/gen.json" ip netns exec "$NS_C" "$XT_BUILD/xturngen" -s $R4C:$XT_PORT \
	-u $USER -w $PASS -p $P4:$PEER_PORT -a $ALLOCS -c $CHANS -r $RATE -d 7 -l 200 --json
GEN=$XT_BG_PID

# While the flood runs (channels bound, not yet expired):
sleep 2
xt_stat_json
chans=$(xt_field channels) inkern=$(xt_field channels_in_kernel)
c2p=$(xt_map_entries xt_c2p) p2c=$(xt_map_entries xt_p2c)
want=$((ALLOCS * CHANS))
[ "$chans" = $want ] && [ "$inkern" = $want ] && [ "$c2p" = $want ] && [ "$p2c" = $want ] &&
	pass "maps hold the daemon's $want live channels (c2p $c2p, p2c $p2c)" ||
	fail "channels: daemon $chans (in kernel $inkern), maps c2p $c2p p2c $p2c, want $want"
[ "$(xt_map_entries xt_relays)" = $ALLOCS ] && pass "one relay entry per allocation" ||
	fail "xt_relays has $(xt_map_entries xt_relays) entries, want $ALLOCS"
fwd=$(xt_field xdp_forwarded_c2p_packets) us=$(xt_field c2p_udp_packets)
[ "${fwd:-0}" -gt 1000 ] && [ "${us:-1}" = 0 ] &&
	pass "XDP carried $fwd packets, the daemon none" ||
	fail "XDP forwarded ${fwd:-?} c2p, daemon relayed ${us:-?} (want >1000 and 0)"

# 3: channel-lifetime is 4 s; by now the bindings have expired mid-flood.
xt_wait $GEN || fail "xturngen exited with an error"
sleep 1.5
xt_stat_json
[ "$(xt_field channels)" = 0 ] && [ "$(xt_map_entries xt_c2p)" = 0 ] && [ "$(xt_map_entries xt_p2c)" = 0 ] &&
	pass "expired channels left the daemon and the maps" ||
	fail "after expiry: daemon $(xt_field channels) channels, maps c2p $(xt_map_entries xt_c2p)"
sent=$(gen_field "$XT_TMP/gen.json" sent)
dropped=$(xt_field dropped_no_alloc)
[ "${dropped:-0}" -gt 0 ] && pass "ChannelData after expiry went to the daemon and was dropped ($dropped)" ||
	fail "no ChannelData reached the daemon after the channels expired"

# 4: xturngen deletes its allocations when it ends; everything goes.
xt_wait $PEER
received=$(gen_field "$XT_TMP/peer.json" received)
fwd=$(xt_field xdp_forwarded_c2p_packets)
# Everything the peer got came through XDP (the daemon relayed nothing), and
# forwarding stopped at expiry: well short of what was sent over 7 s.
[ -n "$received" ] && [ "$received" -le "$fwd" ] && [ "$received" -lt $((sent * 3 / 4)) ] &&
	[ "$received" -gt $((sent / 3)) ] &&
	pass "peer got $received of $sent: forwarded until the bindings expired" || {
	fail "peer got ${received:-?} of ${sent:-?} (XDP forwarded ${fwd:-?})"
	# Where did they go? (about one suite run in five lost them all here)
	echo "peer: $(tail -n 1 "$XT_TMP/peer.json")"
	xt_ns "$NS_P" ip -s link show p0
	xt_ns "$NS_P" nstat -az 'Udp*' 'IpInAddrErrors' 'IpInHdrErrors' 'IpInDiscards' | grep -v ' 0 '
	xt_ns "$NS_R" ip -s link show r1
	xt_ns "$NS_R" ip link show xturn0
}
xt_stat_json
[ "$(xt_field allocations)" = 0 ] && [ "$(xt_map_entries xt_relays)" = 0 ] &&
	[ "$(xt_map_entries xt_perms)" = 0 ] && pass "deleted allocations emptied the maps" ||
	fail "after delete: $(xt_field allocations) allocations, relays $(xt_map_entries xt_relays), perms $(xt_map_entries xt_perms)"
stop_server
[ ! -e "$XT_PIN_DIR/xt_c2p" ] && pass "pins removed on exit" || fail "pins left in $XT_PIN_DIR"
xt_finish
