#!/usr/bin/env bash
# Peer policy and quotas, seen from a TURN client (turnutils_uclient):
#   denied-peer-ip (single IP, range, CIDR): ChannelBind refused with 403 and
#     not one datagram reaches the peer; a peer not in the list still works
#   xturnd only: private peers are denied by default (no allowed-peer-ip)
#   user-quota refuses the allocation over a user's limit with 486 (other
#     users unaffected); total-quota refuses everyone's once full
# coturn has no default deny, so that part runs against xturnd only.
# Usage: tests/e2e/test_policy.sh BUILD_DIR   (XT_SERVER=coturn|xturnd)
. "$(dirname "$0")/lib.sh"

PASS=wonderland

xt_init "${1:-build}"
xt_topology
start_peer

# refused NAME FAMILY CODE uclient-args...: uclient must fail with "error
# CODE" (an ERE) and the peer must receive nothing during the run.
refused() {
	local name=$1 fam=$2 code=$3; shift 3
	local out=$XT_TMP/$name.out n0 n1 rc
	n0=$(xt_peer_udp_in)
	xt_uclient_bg "$out" "$fam" "$@" -n 50 -l 100 -z 5
	xt_wait "$XT_BG_PID"; rc=$?
	n1=$(xt_peer_udp_in)
	if [ $rc -ne 0 ] && grep -qE "error $code" "$out" && [ "$n1" -eq "$n0" ]; then
		pass "$name: refused with $code, peer received nothing"
	else
		fail "$name: exit $rc, $(grep -cE "error $code" "$out") '$code' errors, peer received $((n1 - n0)) datagrams"
		xt_uclient_tail "$out"
	fi
}

# echoed NAME FAMILY uclient-args...: the control case, every message echoed.
echoed() {
	local name=$1 fam=$2; shift 2
	local out=$XT_TMP/$name.out
	xt_uclient_bg "$out" "$fam" "$@" -m 1 -n 50 -l 100 -z 5
	xt_wait "$XT_BG_PID"
	xt_uclient_verdict "$name" "$out" $? 50
}

# Explicit deny lists only: xturnd's default deny of private peers is off.
deny_args=()
[ "$XT_SERVER" = xturnd ] && deny_args=(--allow-special-peers)

XT_ALLOW_PEERS=0 start_server --user=alice:$PASS "${deny_args[@]}" \
	--denied-peer-ip=$P4
refused deny-ip-v4 4 403 -u alice -w $PASS -m 1
echoed not-denied-v6 6 -u alice -w $PASS
stop_server

# coturn 4.6.1 ignores the CIDR form (the peer stays reachable); it only
# knows single addresses and ranges.
deny6=fd00:71:2::/64
[ "$XT_SERVER" = coturn ] && deny6=fd00:71:2::-fd00:71:2::ffff
XT_ALLOW_PEERS=0 start_server --user=alice:$PASS "${deny_args[@]}" \
	--denied-peer-ip=10.71.2.0-10.71.2.255 --denied-peer-ip=$deny6
refused deny-range-v4 4 403 -u alice -w $PASS -m 1
refused deny-net-v6 6 403 -u alice -w $PASS -m 1
stop_server

# Quotas. Quirk: one turnutils_uclient session makes two allocations (-v
# shows two "allocate sent"... "success" rounds), so a quota of 2 admits one
# session. A refused uclient exits without deallocating, so what it did get
# stays allocated for the rest of the server's life.
# user-quota: alice's second session is over her quota; bob has his own.
start_server --user=alice:$PASS --user=bob:$PASS --user-quota=2
refused user-quota 4 486 -u alice -w $PASS -m 2
echoed user-quota-other-user 6 -u bob -w $PASS
stop_server

# total-quota: alice's leftovers fill the server, so bob is refused too.
# RFC 8656 allows 486 (quota) or 508 (capacity) for this; coturn says 486.
start_server --user=alice:$PASS --user=bob:$PASS --total-quota=2
refused total-quota 4 '(486|508)' -u alice -w $PASS -m 2
refused total-quota-other-user 6 '(486|508)' -u bob -w $PASS -m 1
stop_server

if [ "$XT_SERVER" = xturnd ]; then
	XT_ALLOW_PEERS=0 start_server --user=alice:$PASS
	refused default-deny-v4 4 403 -u alice -w $PASS -m 1
	refused default-deny-v6 6 403 -u alice -w $PASS -m 1
	stop_server
else
	xt_log "coturn has no default deny of private peers: that check is xturnd's only"
fi
xt_finish
