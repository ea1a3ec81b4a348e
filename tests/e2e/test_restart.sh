#!/usr/bin/env bash
# Calls survive a daemon's death (issue 13, SIGKILL and restart): while a
# ChannelData flow of 2000 pps runs both ways through XDP, xturnd is killed
# with SIGKILL and started again at once. No packet of the flow is lost
# (the kernel forwards on, the new daemon adopts the maps and its journal
# and puts its program in place of the old one in one step), and a client's
# allocation made before the kill refreshes and relays Send indications
# after it (its relayed port bound again), as if nothing happened.
# Usage: tests/e2e/test_restart.sh BUILD_DIR
. "$(dirname "$0")/lib.sh"

USER=alice PASS=wonderland PEER_PORT=4000

xt_init "${1:-build}"
[ "$XT_SERVER" = xturnd ] || xt_skip "xturnd only (XT_SERVER=$XT_SERVER)"
xt_topology

args=(--user=$USER:$PASS --stats-socket="$XT_SOCK" --relay-threads=2)
start_server "${args[@]}"
xt_spawn "$XT_TMP/peer.json" ip netns exec "$NS_P" "$XT_BUILD/xturngen" --peer --echo \
	-L $P4:$PEER_PORT --ports 3 -d 14 --json
xt_wait_udp "$NS_P" $((PEER_PORT + 2)) 1 || die "xturngen peer does not listen"
# The probe's allocation: made, permitted and used before the kill.
coproc PROBE { ip netns exec "$NS_C" python3 "$(dirname "$0")/turnprobe.py" $R4C $XT_PORT \
	$USER $PASS $P4 $((PEER_PORT + 2)) 2>&1; }
probe() { echo "$1" >&"${PROBE[1]}"; read -r -t 10 line <&"${PROBE[0]}"; echo "$line"; }
for c in alloc perm send; do
	out=$(probe $c)
	[[ $out == ok* ]] || die "probe before the kill: $c: $out"
done
pass "a client allocated, permitted and relayed a Send indication"
c0=$(xt_xdp_count 0)
xt_spawn "$XT_TMP/gen.json" ip netns exec "$NS_C" "$XT_BUILD/xturngen" -s $R4C:$XT_PORT \
	-u $USER -w $PASS -p $P4:$PEER_PORT -a 1 -c 2 -r 2000 -d 8 -l 100 --json
GEN=$XT_BG_PID
for _ in $(seq 50); do [ "$(xt_xdp_count 0)" -gt "$c0" ] && break; sleep 0.1; done
sleep 2

read -r pid _ </proc/"$XT_SERVER_PID"/task/"$XT_SERVER_PID"/children
t0=$(date +%s%N)
kill -KILL "$pid"
xt_wait "$XT_SERVER_PID"
XT_SERVER_PID=
start_server "${args[@]}"
t1=$(date +%s%N)
pass "killed and answering STUN again in $(( (t1 - t0) / 1000000 )) ms"
grep -q "adopted .* allocations from its journal" "$XT_SERVER_LOG" ||
	fail "no allocation adopted: $(grep -i journal "$XT_SERVER_LOG" | head -3)"
grep -q "in place of the program a stopped xturnd left" "$XT_SERVER_LOG" ||
	fail "the program was not replaced in place"

xt_wait $GEN || fail "xturngen exited with an error"
sent=$(gen_field "$XT_TMP/gen.json" sent) echoed=$(gen_field "$XT_TMP/gen.json" echo_received)
[ -n "$sent" ] && [ "$sent" -gt 10000 ] && [ "$echoed" = "$sent" ] &&
	pass "the flow lost nothing across the kill: $sent sent, $echoed came back" ||
	fail "the flow across the kill: ${sent:-?} sent, ${echoed:-?} came back"

out=$(probe refresh)
[[ $out == "ok lifetime 600" ]] && pass "the probe's allocation refreshed after the restart" ||
	fail "refresh after the restart: $out"
out=$(probe send)
[[ $out == "ok echoed" ]] && pass "and relays Send indications again" ||
	fail "send after the restart: $out"
eval "exec ${PROBE[1]}>&-"
stop_server
xt_finish
