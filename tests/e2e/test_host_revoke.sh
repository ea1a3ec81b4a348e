#!/usr/bin/env bash
# A peer that becomes one of this host's own addresses is revoked: while
# ChannelData flows through XDP, the peer's address is added to the relay
# host (rtnetlink reports it); within a second the daemon deletes the
# permission and the channels, and the maps drop their bindings, as when a
# reload denies a peer.
# Usage: tests/e2e/test_host_revoke.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland
CHANS=2 PEER_PORT=4000

xt_init "${1:-build}"
[ "$XT_SERVER" = xturnd ] || xt_skip "xturnd only (XT_SERVER=$XT_SERVER)"
xt_topology


start_server --user=$USER:$PASS --stats-socket="$XT_SOCK"
xt_spawn "$XT_TMP/peer.json" ip netns exec "$NS_P" "$XT_BUILD/xturngen" --peer \
	-L $P4:$PEER_PORT --ports $CHANS -d 10 --json
PEER=$XT_BG_PID
# Its last port open: all are (one socket each).
xt_wait_udp "$NS_P" $((PEER_PORT + CHANS - 1)) 1 || die "xturngen peer does not listen"
xt_spawn "$XT_TMP/gen.json" ip netns exec "$NS_C" "$XT_BUILD/xturngen" -s $R4C:$XT_PORT \
	-u $USER -w $PASS -p $P4:$PEER_PORT -a 1 -c $CHANS -r 2000 -d 6 -l 200 --json
GEN=$XT_BG_PID

sleep 2
xt_stat_json
[ "$(xt_field channels)" = $CHANS ] && [ "$(xt_map_entries xt_c2p)" = $CHANS ] &&
	[ "$(xt_field revoked)" = 0 ] && pass "$CHANS channels to $P4, in the maps" ||
	fail "before: daemon $(xt_field channels) channels, c2p $(xt_map_entries xt_c2p), revoked $(xt_field revoked)"

# The peer's address becomes the relay host's own.
ip -n "$NS_R" addr add $P4/32 dev lo || die "addr add $P4 on the relay"
sleep 1.5
xt_stat_json
[ "$(xt_field channels)" = 0 ] && [ "$(xt_field permissions)" = 0 ] &&
	[ "$(xt_map_entries xt_c2p)" = 0 ] && [ "$(xt_map_entries xt_p2c)" = 0 ] &&
	[ "$(xt_map_entries xt_perms)" = 0 ] && [ "$(xt_field allocations)" = 1 ] &&
	pass "the host's new address revoked the permission and the channels (maps empty)" ||
	fail "after: daemon $(xt_field channels) channels, $(xt_field permissions) permissions, maps c2p $(xt_map_entries xt_c2p) p2c $(xt_map_entries xt_p2c) perms $(xt_map_entries xt_perms)"
[ "$(xt_field revoked)" = $((CHANS + 1)) ] && pass "revoked $((CHANS + 1)) (1 permission, $CHANS channels)" ||
	fail "revoked $(xt_field revoked), want $((CHANS + 1))"
ip -n "$NS_R" addr del $P4/32 dev lo
xt_wait $GEN || fail "xturngen exited with an error"
xt_wait $PEER
stop_server
xt_finish
