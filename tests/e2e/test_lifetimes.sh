#!/usr/bin/env bash
# The kernel enforces TURN lifetimes by itself (issue 13, SIGKILL and no
# restart): with channel-lifetime=8, a ChannelData flow of 2000 pps both ways
# through XDP goes on after xturnd is killed with SIGKILL, and stops 8 s
# (+-2 s) after its ChannelBind, with no daemon to end it. Then a start with
# no-xdp removes what the killed daemon left: its program on the relay's
# interfaces, its pins and its lookup device.
# Usage: tests/e2e/test_lifetimes.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland PEER_PORT=4000 LIFETIME=8

xt_init "${1:-build}"
[ "$XT_SERVER" = xturnd ] || xt_skip "xturnd only (XT_SERVER=$XT_SERVER)"
xt_topology
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

start_server --user=$USER:$PASS --stats-socket="$XT_SOCK" --channel-lifetime=$LIFETIME
xt_spawn "$XT_TMP/peer.json" ip netns exec "$NS_P" "$XT_BUILD/xturngen" --peer --echo \
	-L $P4:$PEER_PORT --ports 2 -d 20 --json
xt_wait_udp "$NS_P" $((PEER_PORT + 1)) 1 || die "xturngen peer does not listen"
c0=$(xt_xdp_count 0) p0=$(xt_xdp_count 1)
t_start=$(now)
# Both channels are bound before the first datagram: the flow's start bounds
# the ChannelBind from above. 1000 pps each way per channel.
xt_spawn "$XT_TMP/gen.json" ip netns exec "$NS_C" "$XT_BUILD/xturngen" -s $R4C:$XT_PORT \
	-u $USER -w $PASS -p $P4:$PEER_PORT -a 1 -c 2 -r 2000 -d 16 -l 100 --json
for _ in $(seq 50); do [ "$(xt_xdp_count 0)" -gt "$c0" ] && break; sleep 0.1; done
t_flow=$(now)
[ "$(xt_xdp_count 0)" -gt "$c0" ] || die "no ChannelData through XDP"
sleep 2

# SIGKILL: no cleanup, no expiry by the daemon. XT_SERVER_PID is timeout(1)'s.
read -r pid _ </proc/"$XT_SERVER_PID"/task/"$XT_SERVER_PID"/children
kill -KILL "$pid"
xt_wait "$XT_SERVER_PID"
XT_SERVER_PID=
t_kill=$(now)
c_kill=$(xt_xdp_count 0) p_kill=$(xt_xdp_count 1)
# Sampled every 0.2 s until the counters stand still for 2 s.
last_c=$c_kill last_p=$p_kill t_stop=$t_kill still=0
for _ in $(seq 100); do
	sleep 0.2
	c=$(xt_xdp_count 0) p=$(xt_xdp_count 1)
	if [ "$c" != "$last_c" ] || [ "$p" != "$last_p" ]; then
		last_c=$c last_p=$p t_stop=$(now) still=0
	else
		still=$((still + 1))
		[ $still -ge 10 ] && break
	fi
done
after_c=$((last_c - c_kill)) after_p=$((last_p - p_kill))
[ $after_c -gt 1000 ] && [ $after_p -gt 1000 ] &&
	pass "with xturnd killed, XDP went on relaying: $after_c c2p, $after_p p2c" ||
	fail "after SIGKILL: XDP relayed $after_c c2p, $after_p p2c (want > 1000 each)"
# The ChannelBind was between t_start and t_flow: the stop is LIFETIME after it.
lo=$(elapsed "$t_start" "$t_stop") hi=$(elapsed "$t_flow" "$t_stop")
awk -v lo="$lo" -v hi="$hi" -v l=$LIFETIME 'BEGIN { exit !(hi >= l - 2 && lo <= l + 2) }' &&
	pass "XDP stopped ${hi}-${lo} s after the ChannelBind (channel-lifetime $LIFETIME, no daemon)" ||
	fail "XDP stopped ${hi}-${lo} s after the ChannelBind, want $LIFETIME +- 2"
xt_xdp_attached "$NS_R" r0 || fail "the killed daemon's program is not on r0 any more?"

# no-xdp: what it left goes.
start_server --user=$USER:$PASS --stats-socket="$XT_SOCK" --no-xdp
for dev in r0 r1; do
	xt_xdp_attached "$NS_R" $dev && fail "no-xdp start: XDP still on $dev" ||
		pass "no-xdp start: the stale program is off $dev"
done
[ -z "$(ls -A "$XT_PIN_DIR" 2>/dev/null)" ] && pass "no-xdp start: the stale pins are gone" ||
	fail "no-xdp start: pins left: $(ls "$XT_PIN_DIR")"
ip -n "$NS_R" link show xturn0 >/dev/null 2>&1 && fail "no-xdp start: lookup device left" ||
	pass "no-xdp start: the stale lookup device is gone"
grep -q "removed the .* pins a stopped xturnd left" "$XT_SERVER_LOG" ||
	fail "no-xdp start: no log line for the pins"
stop_server
xt_finish
